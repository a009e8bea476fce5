/* fuzz-gguf.c: libFuzzer target for the GGUF reader. The input is a whole file image; when
 * it opens, every key is looked up and rendered, every array element read, and every tensor's
 * bytes touched (and dequantized when the type is supported and small), so ASan sees any
 * value or view that points outside the input. */
#include "sutra-gguf.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  SutraGguf *g = NULL;
  SutraError err = { 0 };
  if (sutra_gguf_open_memory (data, size, "fuzz.gguf", &g, &err) != SUTRA_OK) {
    SUTRA_ASSERT (g == NULL && err.code != SUTRA_OK && err.message[0]);
    return 0;
  }
  volatile unsigned sum = 0;
  for (size_t i = 0; i < sutra_gguf_kv_count (g); i++) {
    const char *key = sutra_gguf_kv_key (g, i);
    SUTRA_ASSERT (sutra_gguf_find_key (g, key) == (int64_t) i);
    char *s = sutra_gguf_kv_to_string (g, i, 8);
    sum += (unsigned) strlen (s);
    free (s);
    SutraGgufType et;
    uint64_t n;
    if (sutra_gguf_kv_array (g, i, &et, &n)) {
      for (uint64_t j = 0; j < n && j < 4096; j++) {
        const char *str;
        size_t len;
        int64_t v;
        double f;
        if (sutra_gguf_kv_array_string (g, i, j, &str, &len)) {
          SUTRA_ASSERT ((const uint8_t *) str >= data && (const uint8_t *) str + len <= data + size);
          sum += len ? (unsigned char) str[len - 1] : 0;
        } else if (sutra_gguf_kv_array_int (g, i, j, &v))
          sum += (unsigned) v;
        else if (sutra_gguf_kv_array_float (g, i, j, &f))
          sum += f == f;
      }
    }
  }
  for (size_t i = 0; i < sutra_gguf_tensor_count (g); i++) {
    const SutraGgufTensor *t = sutra_gguf_tensor (g, i);
    SUTRA_ASSERT (sutra_gguf_find_tensor (g, t->name) == t);
    SUTRA_ASSERT ((const uint8_t *) t->data >= data && (const uint8_t *) t->data + t->size <= data + size);
    for (size_t b = 0; b < t->size; b++)
      sum += ((const uint8_t *) t->data)[b];
    int64_t numel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    if (sutra_ggml_type_supported (t->type) && numel <= 1 << 16) {
      float *dst = malloc (sizeof (float) * (size_t) (numel ? numel : 1));
      SUTRA_ASSERT (sutra_gguf_tensor_to_f32 (g, t, dst, &err) == SUTRA_OK);
      for (int64_t k = 0; k < numel; k++)
        sum += dst[k] == dst[k];
      free (dst);
    }
  }
  (void) sum;
  sutra_gguf_free (g);
  return 0;
}
