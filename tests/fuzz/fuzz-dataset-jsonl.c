/* fuzz-dataset-jsonl.c: libFuzzer target for the dataset loader on JSON input: JSON Lines,
 * a JSON array (sniffed from a leading '[') and, with the ".txt" name, the plain-text path.
 * Every row shape runs, through two tiny in-memory tokenizers or none (pre-tokenized rows).
 * Byte 0 = options, byte 1 = file name; see fuzz-dataset-common.h for the checks. */
#include "fuzz-dataset-common.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const char *const exts[] = { ".jsonl", ".json", ".txt" };
  return fz_run (data, size, exts, 3);
}
