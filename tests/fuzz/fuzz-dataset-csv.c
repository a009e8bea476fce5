/* fuzz-dataset-csv.c: libFuzzer target for the dataset loader's CSV / TSV reader (RFC 4180
 * quoting, header row, JSON cells for messages / input_ids / labels) and the row shapes
 * behind it. Byte 0 = options, byte 1 = ".csv" or ".tsv"; see fuzz-dataset-common.h. */
#include "fuzz-dataset-common.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *const exts[] = { ".csv", ".tsv" };
  return fz_run (data, size, exts, 2);
}
