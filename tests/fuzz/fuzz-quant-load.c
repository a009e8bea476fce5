/* fuzz-quant-load.c: libFuzzer target for the quantized-weight loader. The input is a whole
 * safetensors image; when it opens and carries quantization metadata, every "<m>.qweight"
 * module is loaded with the shapes its qweight suggests (whole groups, partial last groups),
 * and every weight the loader accepts is run through the kernels (matvec, naive matvec,
 * dequantization, a small matmul and matmul_t) so ASan sees any read the validation let
 * through, and the fast and naive matvec must agree bit for bit. */
#include "sutra-qfile.h"
#include "sutra-quant.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
exercise (const SutraQWeight *q, int rows, int cols)
{
  float *x = calloc ((size_t) cols * 2, sizeof (float));
  float *y = calloc ((size_t) rows * 2, sizeof (float));
  float *y2 = calloc ((size_t) rows * 2, sizeof (float));
  float *w = calloc ((size_t) cols * 2, sizeof (float));
  for (int i = 0; i < cols * 2; i++)
    x[i] = (float) ((i % 7) - 3) * 0.25f;
  sutra_qweight_matvec (q, x, y, false);
  sutra_qweight_matvec_naive (q, x, y2, false);
  for (int r = 0; r < rows; r++)      /* bit-exact, NaN included */
    SUTRA_ASSERT (memcmp (&y[r], &y2[r], sizeof (float)) == 0 || (y[r] != y[r] && y2[r] != y2[r]));
  sutra_qweight_dequant_rows (q, rows - 1, 1, w);
  sutra_qweight_matmul (q, x, y, 2, false);
  sutra_qweight_matmul_t (q, y, x, 2);
  free (x);
  free (y);
  free (y2);
  free (w);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  SutraSafetensors *st = NULL;
  SutraError err = { 0 };
  if (sutra_safetensors_open_memory (data, size, "fuzz.safetensors", &st, &err) != SUTRA_OK)
    return 0;
  bool present = false;
  SutraQuantParams p;
  SutraStatus s = sutra_qfile_params (st, &present, &p, &err);
  SUTRA_ASSERT (s == SUTRA_OK || (err.code != SUTRA_OK && err.message[0]));
  for (size_t i = 0; s == SUTRA_OK && present && i < sutra_safetensors_count (st); i++) {
    const char *name = sutra_safetensors_name (st, i);
    size_t len = strlen (name);
    if (len <= 8 || len > 400 || strcmp (name + len - 8, ".qweight") != 0)
      continue;
    char module[512];
    memcpy (module, name, len - 8);
    module[len - 8] = 0;
    const SutraTensor *t = sutra_safetensors_tensor (st, i);
    int64_t rows = t->ndim > 0 ? t->shape[0] : 1, w = t->ndim > 1 ? t->shape[1] : 1;
    if (rows < 1 || rows > 512 || w < 1 || w > 4096)
      continue;
    int64_t cands[3] = { t->dtype == SUTRA_I8 ? w : 2 * w, 2 * w - 1, 2 * w - 31 };
    for (int c = 0; c < 3; c++) {
      int cols = (int) cands[c];
      if (cols < 1)
        continue;
      SutraQWeight *q = NULL;
      SutraError e2 = { 0 };
      if (sutra_qfile_load_linear (st, module, (int) rows, cols, &q, &e2) == SUTRA_OK) {
        exercise (q, (int) rows, cols);
        sutra_qweight_free (q);
      } else {
        SUTRA_ASSERT (q == NULL && e2.message[0]);
      }
    }
  }
  sutra_safetensors_free (st);
  return 0;
}
