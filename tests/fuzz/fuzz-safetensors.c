/* fuzz-safetensors.c: libFuzzer target for the safetensors reader. The input is a whole
 * file image; when it opens, every tensor's bytes, every float tensor through read_f32,
 * every lookup and every metadata pair are touched so ASan sees any view that points
 * outside the input. */
#include "sutra-safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  SutraSafetensors *st = NULL;
  SutraError err = { 0 };
  if (sutra_safetensors_open_memory (data, size, "fuzz.safetensors", &st, &err) != SUTRA_OK) {
    SUTRA_ASSERT (st == NULL && err.code != SUTRA_OK && err.message[0]);
    return 0;
  }
  volatile unsigned sum = 0;
  for (size_t i = 0; i < sutra_safetensors_count (st); i++) {
    const char *name = sutra_safetensors_name (st, i);
    const SutraTensor *t = sutra_safetensors_tensor (st, i);
    SUTRA_ASSERT (sutra_safetensors_find (st, name) == t);
    SUTRA_ASSERT (sutra_safetensors_path (st, name) != NULL);
    size_t nb = sutra_tensor_nbytes (t);
    /* the views tile the input after the header, so they all lie inside it */
    SUTRA_ASSERT ((const uint8_t *) t->data >= data && (const uint8_t *) t->data + nb <= data + size);
    for (size_t b = 0; b < nb; b++)
      sum += ((const uint8_t *) t->data)[b];
    if (sutra_dtype_is_float (t->dtype)) {
      size_t n = (size_t) sutra_tensor_numel (t);
      float *dst = malloc ((n ? n : 1) * sizeof *dst);
      SUTRA_ASSERT (sutra_safetensors_read_f32 (st, name, dst, t->ndim, t->shape, &err) == SUTRA_OK);
      for (size_t k = 0; k < n; k++)
        sum += (unsigned) (dst[k] == dst[k]);
      free (dst);
    }
  }
  for (size_t i = 0; i < sutra_safetensors_metadata_count (st); i++) {
    const char *k, *v;
    sutra_safetensors_metadata_at (st, i, &k, &v);
    SUTRA_ASSERT (sutra_safetensors_metadata (st, k) == v);
    sum += (unsigned) strlen (k) + (unsigned) strlen (v);
  }
  (void) sum;
  sutra_safetensors_free (st);
  return 0;
}
