/* test-gguf.c: ggml block quantizers against ggml's reference formulas and error bounds, GGUF
 * write -> read round trips (every KV type, every tensor type, custom alignment), truncation
 * at every length, and each malformed-file rule (huge counts, bad alignment, unknown types,
 * bad dimensions and offsets, duplicates). */
#include "test-util.h"
#include "sutra-dtype.h"
#include "sutra-gguf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define Q8_0_BOUND 0.5625     /* |x - x^| <= d (1/2 + 127 * 2^-11): rounding + f16 scale */
#define Q4_0_BOUND 1.0080     /* <= d (1 + 8 * 2^-10): the clamped side loses one level */
#define Q4_K_MAX_RMSE 0.0185  /* RMSE / range on uniform data; plain rounding of a full-range sub-block gives 1/(15 sqrt 12) = 0.0192 */
#define Q6_K_MAX_RMSE 0.0095  /* RMSE / max|x|: plain rounding with step max/32 gives 1/(32 sqrt 12) = 0.0090 */

/* ---- independent transcriptions of ggml's quantize_row_q8_0_ref / q4_0_ref ---- */
static void
ref_q8_0 (uint8_t *out, const float *x)
{
  float amax = 0;
  for (int j = 0; j < 32; j++)
    amax = fmaxf (amax, fabsf (x[j]));
  float d = amax / 127.f, id = d ? 1.f / d : 0.f;
  uint16_t h = sutra_f32_to_f16 (d);
  memcpy (out, &h, 2);
  for (int j = 0; j < 32; j++)
    out[2 + j] = (uint8_t) (int8_t) roundf (x[j] * id);
}

static void
ref_q4_0 (uint8_t *out, const float *x)
{
  float amax = 0, max = 0;
  for (int j = 0; j < 32; j++)
    if (amax < fabsf (x[j])) {
      amax = fabsf (x[j]);
      max = x[j];
    }
  float d = max / -8, id = d ? 1.f / d : 0.f;
  uint16_t h = sutra_f32_to_f16 (d);
  memcpy (out, &h, 2);
  for (int j = 0; j < 16; j++) {
    int a = (int8_t) (x[j] * id + 8.5f), b = (int8_t) (x[16 + j] * id + 8.5f);
    out[2 + j] = (uint8_t) ((a > 15 ? 15 : a) | ((b > 15 ? 15 : b) << 4));
  }
}

static void
test_ggml_sizes (void)
{
  g_assert_cmpint (sutra_ggml_type_size (SUTRA_GGML_Q4_0), ==, 18);
  g_assert_cmpint (sutra_ggml_type_size (SUTRA_GGML_Q8_0), ==, 34);
  g_assert_cmpint (sutra_ggml_type_size (SUTRA_GGML_Q4_K), ==, 144);
  g_assert_cmpint (sutra_ggml_type_size (SUTRA_GGML_Q6_K), ==, 210);
  g_assert_cmpint (sutra_ggml_block_size (SUTRA_GGML_Q6_K), ==, 256);
  g_assert_cmpint (sutra_ggml_block_size (4), ==, 0);        /* retired q4_2 */
  g_assert_cmpint (sutra_ggml_block_size (-1), ==, 0);
  g_assert_cmpint (sutra_ggml_block_size (99), ==, 0);
  g_assert_cmpint (sutra_ggml_row_bytes (SUTRA_GGML_Q4_0, 64), ==, 36);
  g_assert_cmpint (sutra_ggml_row_bytes (SUTRA_GGML_Q4_0, 33), ==, 0);
  SutraGgmlType t;
  g_assert_true (sutra_ggml_type_from_name ("Q4_K", &t) && t == SUTRA_GGML_Q4_K);
  g_assert_true (sutra_ggml_type_from_name ("f16", &t) && t == SUTRA_GGML_F16);
  g_assert_false (sutra_ggml_type_from_name ("q4_k_m", &t));
}

static void
test_q8_0_q4_0_match_ggml (void)
{
  enum { N = 32 * 64 };
  float *x = g_new (float, N), *y = g_new (float, N);
  test_fill_uniform (x, N, -3.f, 2.f, 11);
  x[5] = 0;                       /* a few special blocks: all zero, one spike, ties */
  for (int j = 32; j < 64; j++)
    x[j] = 0.f;
  for (int j = 64; j < 96; j++)
    x[j] = j == 70 ? 5.f : 0.001f;
  for (int j = 96; j < 128; j++)
    x[j] = (j % 2) ? 1.f : -1.f;
  uint8_t ours[N / 32 * 34], ref[34];
  sutra_ggml_quantize_row (SUTRA_GGML_Q8_0, ours, x, N);
  for (int b = 0; b < N / 32; b++) {
    ref_q8_0 (ref, x + 32 * b);
    g_assert_cmpmem (ours + 34 * b, 34, ref, 34);
  }
  sutra_ggml_dequantize_row (SUTRA_GGML_Q8_0, y, ours, N);
  for (int b = 0; b < N / 32; b++) {
    float amax = 0;
    for (int j = 0; j < 32; j++)
      amax = fmaxf (amax, fabsf (x[32 * b + j]));
    for (int j = 0; j < 32; j++)
      g_assert_cmpfloat (fabsf (y[32 * b + j] - x[32 * b + j]), <=, amax / 127.f * Q8_0_BOUND + 1e-12);
  }
  uint8_t ours4[N / 32 * 18], ref4[18];
  sutra_ggml_quantize_row (SUTRA_GGML_Q4_0, ours4, x, N);
  for (int b = 0; b < N / 32; b++) {
    ref_q4_0 (ref4, x + 32 * b);
    g_assert_cmpmem (ours4 + 18 * b, 18, ref4, 18);
  }
  sutra_ggml_dequantize_row (SUTRA_GGML_Q4_0, y, ours4, N);
  for (int b = 0; b < N / 32; b++) {
    float amax = 0;
    for (int j = 0; j < 32; j++)
      amax = fmaxf (amax, fabsf (x[32 * b + j]));
    for (int j = 0; j < 32; j++)
      g_assert_cmpfloat (fabsf (y[32 * b + j] - x[32 * b + j]), <=, amax / 8.f * Q4_0_BOUND + 1e-12);
  }
  g_free (x);
  g_free (y);
}

/* the documented block layouts, decoded from hand-made bytes */
static void
test_block_layouts (void)
{
  /* q4_0: d = 0.5; qs[j] = j | (15 - j) << 4 -> x[j] = (j - 8) d, x[j + 16] = (7 - j) d */
  uint8_t b4[18];
  uint16_t h = sutra_f32_to_f16 (0.5f);
  memcpy (b4, &h, 2);
  for (int j = 0; j < 16; j++)
    b4[2 + j] = (uint8_t) (j | ((15 - j) << 4));
  float y[256];
  sutra_ggml_dequantize_row (SUTRA_GGML_Q4_0, y, b4, 32);
  for (int j = 0; j < 16; j++) {
    g_assert_cmpfloat (y[j], ==, (j - 8) * 0.5f);
    g_assert_cmpfloat (y[j + 16], ==, (7 - j) * 0.5f);
  }
  /* q8_0: d = 0.25, qs = -16..15 */
  uint8_t b8[34];
  h = sutra_f32_to_f16 (0.25f);
  memcpy (b8, &h, 2);
  for (int j = 0; j < 32; j++)
    b8[2 + j] = (uint8_t) (int8_t) (j - 16);
  sutra_ggml_dequantize_row (SUTRA_GGML_Q8_0, y, b8, 32);
  for (int j = 0; j < 32; j++)
    g_assert_cmpfloat (y[j], ==, (j - 16) * 0.25f);
  /* q6_K: d = 1, scales[s] = s + 1, every q = 33 -> x = (s + 1) * 1 for sub-block s */
  uint8_t b6[210] = { 0 };
  for (int i = 0; i < 128; i++)
    b6[i] = 0x11;                        /* low 4 bits of 33 = 1 in both nibbles */
  for (int i = 0; i < 64; i++)
    b6[128 + i] = 0xAA;                  /* high 2 bits of 33 = 2 in all four slots */
  for (int s = 0; s < 16; s++)
    b6[192 + s] = (uint8_t) (s + 1);
  h = sutra_f32_to_f16 (1.f);
  memcpy (b6 + 208, &h, 2);
  sutra_ggml_dequantize_row (SUTRA_GGML_Q6_K, y, b6, 256);
  for (int i = 0; i < 256; i++)
    g_assert_cmpfloat (y[i], ==, (float) (i / 16 + 1));
  /* q4_K: d = 1, dmin = 1, sub-block j scale j + 1 (6 bit), min 2j; q = 3 everywhere */
  uint8_t bk[144] = { 0 };
  h = sutra_f32_to_f16 (1.f);
  memcpy (bk, &h, 2);
  memcpy (bk + 2, &h, 2);
  int sc[8], mn[8];
  for (int j = 0; j < 8; j++) {
    sc[j] = j + 1 + (j >= 4 ? 40 : 0);   /* above 15 for j >= 4: exercises the high bits */
    mn[j] = 2 * j + (j >= 4 ? 33 : 0);
  }
  for (int j = 0; j < 4; j++) {
    bk[4 + j] = (uint8_t) (sc[j] | ((sc[j + 4] >> 4) << 6));
    bk[4 + j + 4] = (uint8_t) (mn[j] | ((mn[j + 4] >> 4) << 6));
    bk[4 + j + 8] = (uint8_t) ((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
  for (int i = 0; i < 128; i++)
    bk[16 + i] = 0x33;
  sutra_ggml_dequantize_row (SUTRA_GGML_Q4_K, y, bk, 256);
  for (int i = 0; i < 256; i++)
    g_assert_cmpfloat (y[i], ==, (float) (3 * sc[i / 32] - mn[i / 32]));
}

static void
test_k_quants_error (void)
{
  enum { N = 256 * 32 };
  float *x = g_new (float, N), *y = g_new (float, N);
  uint8_t *q = g_malloc (N);
  for (int rep = 0; rep < 3; rep++) {
    float lo = rep == 0 ? -1.f : rep == 1 ? 0.2f : -5.f, hi = rep == 0 ? 1.f : rep == 1 ? 3.f : -0.5f;
    test_fill_uniform (x, N, lo, hi, 77 + rep);
    for (int k = 0; k < 2; k++) {
      int type = k ? SUTRA_GGML_Q6_K : SUTRA_GGML_Q4_K;
      sutra_ggml_quantize_row (type, q, x, N);
      sutra_ggml_dequantize_row (type, y, q, N);
      double se = 0;
      for (int i = 0; i < N; i++)
        se += (double) (y[i] - x[i]) * (y[i] - x[i]);
      double rmse = sqrt (se / N);
      double ref = k ? fmax (fabs (lo), fabs (hi)) : (double) (fmaxf (hi, 0.f) - fminf (lo, 0.f));
      g_test_message ("%s on [%g, %g]: rmse %.5f (%.5f of range)", k ? "q6_K" : "q4_K", lo, hi,
                      rmse, rmse / ref);
      g_assert_cmpfloat (rmse / ref, <=, k ? Q6_K_MAX_RMSE : Q4_K_MAX_RMSE);
    }
  }
  /* zeros stay zero */
  memset (x, 0, sizeof (float) * 256);
  for (int k = 0; k < 2; k++) {
    int type = k ? SUTRA_GGML_Q6_K : SUTRA_GGML_Q4_K;
    sutra_ggml_quantize_row (type, q, x, 256);
    sutra_ggml_dequantize_row (type, y, q, 256);
    for (int i = 0; i < 256; i++)
      g_assert_cmpfloat (y[i], ==, 0.f);
  }
  g_free (x);
  g_free (y);
  g_free (q);
}

/* ---- round trip ---- */

typedef struct { const float *x; int type; int64_t n; } FillJob;

static SutraStatus
fill_quant (void *user, void *dst, size_t size, SutraError *err)
{
  const FillJob *j = user;
  (void) err;
  g_assert_cmpuint (size, ==, sutra_ggml_row_bytes (j->type, j->n));
  sutra_ggml_quantize_row (j->type, dst, j->x, j->n);
  return SUTRA_OK;
}

static char *
write_sample (const char *name, uint32_t align, float *x, size_t nx)
{
  SutraGgufWriter *w = sutra_gguf_writer_new ();
  sutra_gguf_writer_set_string (w, "general.architecture", "llama");
  if (align)
    sutra_gguf_writer_set_u32 (w, "general.alignment", align);
  sutra_gguf_writer_set_u32 (w, "llama.block_count", 2);
  sutra_gguf_writer_set_i32 (w, "t.i32", -7);
  sutra_gguf_writer_set_u64 (w, "t.u64", 1ULL << 40);
  sutra_gguf_writer_set_f32 (w, "t.f32", 1e-5f);
  sutra_gguf_writer_set_bool (w, "t.bool", true);
  for (int t = 0; t < SUTRA_GGUF_TYPE_COUNT; t++) {
    if (t == SUTRA_GGUF_STRING || t == SUTRA_GGUF_ARRAY)
      continue;
    uint8_t raw[8] = { 0x81, 0x82, 0x83, 0x84, 0x05, 0x06, 0x07, 0x88 };
    char key[32];
    snprintf (key, sizeof key, "raw.%s", sutra_gguf_type_name (t));
    sutra_gguf_writer_set_raw (w, key, t, raw);
  }
  float fl[3] = { 0.5f, -2.f, 3.25f };
  int32_t il[4] = { 1, -2, 3, 100000 };
  sutra_gguf_writer_set_array (w, "a.f32", SUTRA_GGUF_FLOAT32, fl, 3);
  sutra_gguf_writer_set_array (w, "a.i32", SUTRA_GGUF_INT32, il, 4);
  sutra_gguf_writer_set_array (w, "a.empty", SUTRA_GGUF_UINT8, NULL, 0);
  const char *strs[] = { "<s>", "", "h\xc3\xa9llo", "a b" };
  sutra_gguf_writer_set_string_array (w, "a.str", strs, NULL, 4);
  sutra_gguf_writer_set_string (w, "t.replaced", "first");
  sutra_gguf_writer_set_string (w, "t.replaced", "second");
  static FillJob jobs[8];
  int types[] = { SUTRA_GGML_F32, SUTRA_GGML_F16, SUTRA_GGML_BF16, SUTRA_GGML_Q8_0,
                  SUTRA_GGML_Q4_0, SUTRA_GGML_Q4_K, SUTRA_GGML_Q6_K };
  for (int k = 0; k < 7; k++) {
    int64_t ne[2] = { 256, 2 };
    g_assert_cmpuint (nx, >=, 512);
    jobs[k] = (FillJob) { x, types[k], 512 };
    char tname[32];
    snprintf (tname, sizeof tname, "blk.%d.w", k);
    sutra_gguf_writer_add_tensor (w, tname, types[k], 2, ne, fill_quant, &jobs[k]);
  }
  int64_t ne1[1] = { 3 };
  sutra_gguf_writer_add_tensor_data (w, "norm", SUTRA_GGML_F32, 1, ne1, fl);
  char *path = g_build_filename (test_tmpdir (), name, NULL);
  SutraError err;
  test_assert_ok (sutra_gguf_writer_write (w, path, NULL, NULL, &err), &err);
  sutra_gguf_writer_free (w);
  return path;
}

static void
test_round_trip (void)
{
  float x[512];
  test_fill_uniform (x, 512, -1.f, 1.f, 5);
  x[3] = 1e-8f;                      /* f16 subnormal territory */
  for (int a = 0; a < 2; a++) {
    char *path = write_sample (a ? "align64.gguf" : "default.gguf", a ? 64 : 0, x, 512);
    SutraGguf *g;
    SutraError err;
    test_assert_ok (sutra_gguf_open (path, &g, &err), &err);
    g_assert_cmpuint (sutra_gguf_version (g), ==, 3);
    g_assert_cmpuint (sutra_gguf_alignment (g), ==, a ? 64 : 32);
    g_assert_cmpuint (sutra_gguf_data_offset (g) % sutra_gguf_alignment (g), ==, 0);
    int64_t i = sutra_gguf_find_key (g, "llama.block_count");
    uint64_t u;
    int64_t v;
    double f;
    bool b;
    const char *s;
    size_t len;
    g_assert_true (i >= 0 && sutra_gguf_kv_type (g, i) == SUTRA_GGUF_UINT32);
    g_assert_true (sutra_gguf_kv_uint (g, i, &u) && u == 2);
    i = sutra_gguf_find_key (g, "t.i32");
    g_assert_true (sutra_gguf_kv_int (g, i, &v) && v == -7);
    g_assert_false (sutra_gguf_kv_uint (g, i, &u));        /* negative: no unsigned value */
    i = sutra_gguf_find_key (g, "t.u64");
    g_assert_true (sutra_gguf_kv_int (g, i, &v) && v == (1LL << 40));
    i = sutra_gguf_find_key (g, "t.f32");
    g_assert_true (sutra_gguf_kv_float (g, i, &f) && (float) f == 1e-5f);
    g_assert_false (sutra_gguf_kv_string (g, i, &s, &len));
    i = sutra_gguf_find_key (g, "t.bool");
    g_assert_true (sutra_gguf_kv_bool (g, i, &b) && b);
    i = sutra_gguf_find_key (g, "raw.int16");
    g_assert_true (sutra_gguf_kv_int (g, i, &v) && v == (int16_t) 0x8281);
    i = sutra_gguf_find_key (g, "raw.float64");
    g_assert_true (i >= 0 && sutra_gguf_kv_type (g, i) == SUTRA_GGUF_FLOAT64);
    i = sutra_gguf_find_key (g, "raw.uint64");
    g_assert_true (sutra_gguf_kv_uint (g, i, &u) && u == 0x8807060584838281ULL);
    g_assert_false (sutra_gguf_kv_int (g, i, &v));         /* above INT64_MAX */
    i = sutra_gguf_find_key (g, "t.replaced");
    g_assert_true (sutra_gguf_kv_string (g, i, &s, &len) && len == 6 && !memcmp (s, "second", 6));
    SutraGgufType et;
    i = sutra_gguf_find_key (g, "a.str");
    g_assert_true (sutra_gguf_kv_array (g, i, &et, &u) && et == SUTRA_GGUF_STRING && u == 4);
    g_assert_true (sutra_gguf_kv_array_string (g, i, 2, &s, &len) && len == 6 && !memcmp (s, "h\xc3\xa9llo", 6));
    g_assert_true (sutra_gguf_kv_array_string (g, i, 1, &s, &len) && len == 0);
    g_assert_false (sutra_gguf_kv_array_string (g, i, 4, &s, &len));
    i = sutra_gguf_find_key (g, "a.i32");
    g_assert_true (sutra_gguf_kv_array_int (g, i, 3, &v) && v == 100000);
    g_assert_true (sutra_gguf_kv_array_float (g, i, 1, &f) && f == -2);
    i = sutra_gguf_find_key (g, "a.f32");
    g_assert_true (sutra_gguf_kv_array_float (g, i, 2, &f) && f == 3.25);
    g_assert_false (sutra_gguf_kv_array_int (g, i, 2, &v));
    i = sutra_gguf_find_key (g, "a.empty");
    g_assert_true (sutra_gguf_kv_array (g, i, &et, &u) && u == 0);
    char *str = sutra_gguf_kv_to_string (g, sutra_gguf_find_key (g, "a.str"), 2);
    g_assert_cmpstr (str, ==, "[string x 4] [\"<s>\", \"\", ...]");
    g_free (str);
    g_assert_cmpint (sutra_gguf_find_key (g, "missing"), ==, -1);
    /* tensors: bytes identical to a fresh quantization; f32/f16/bf16 decode bit-exactly */
    g_assert_cmpuint (sutra_gguf_tensor_count (g), ==, 8);
    int types[] = { SUTRA_GGML_F32, SUTRA_GGML_F16, SUTRA_GGML_BF16, SUTRA_GGML_Q8_0,
                    SUTRA_GGML_Q4_0, SUTRA_GGML_Q4_K, SUTRA_GGML_Q6_K };
    for (int k = 0; k < 7; k++) {
      char tname[32];
      snprintf (tname, sizeof tname, "blk.%d.w", k);
      const SutraGgufTensor *t = sutra_gguf_find_tensor (g, tname);
      g_assert_nonnull (t);
      g_assert_cmpint (t->type, ==, types[k]);
      g_assert_cmpint (t->n_dims, ==, 2);
      g_assert_cmpint (t->ne[0], ==, 256);
      g_assert_cmpint (t->ne[1], ==, 2);
      g_assert_cmpuint (t->offset % sutra_gguf_alignment (g), ==, 0);
      size_t bytes = sutra_ggml_row_bytes (types[k], 512);
      g_assert_cmpuint (t->size, ==, bytes);
      guint8 *want = g_malloc (bytes);
      sutra_ggml_quantize_row (types[k], want, x, 512);
      g_assert_cmpmem (t->data, t->size, want, bytes);
      g_free (want);
      float back[512];
      test_assert_ok (sutra_gguf_tensor_to_f32 (g, t, back, &err), &err);
      if (types[k] == SUTRA_GGML_F32)
        g_assert_cmpmem (back, sizeof back, x, sizeof x);
      if (types[k] == SUTRA_GGML_F16)
        for (int e = 0; e < 512; e++)
          g_assert_cmpfloat (back[e], ==, sutra_f16_to_f32 (sutra_f32_to_f16 (x[e])));
    }
    const SutraGgufTensor *n = sutra_gguf_find_tensor (g, "norm");
    g_assert_true (n && n->n_dims == 1 && n->ne[0] == 3 && n->ne[1] == 1);
    g_assert_cmpfloat (((const float *) n->data)[2], ==, 3.25f);
    g_assert_null (sutra_gguf_find_tensor (g, "nope"));
    sutra_gguf_free (g);
    g_free (path);
  }
}

/* ---- malformed files ---- */

static guint8 *
read_all (const char *path, size_t *len)
{
  gchar *data;
  gsize n;
  GError *error = NULL;
  g_file_get_contents (path, &data, &n, &error);
  g_assert_no_error (error);
  *len = n;
  return (guint8 *) data;
}

static void
expect_fail_mem (const guint8 *img, size_t len, SutraStatus code, const char *words)
{
  guint8 *copy = g_memdup2 (img, len ? len : 1);
  SutraGguf *g = NULL;
  SutraError err = { 0 };
  SutraStatus s = sutra_gguf_open_memory (copy, len, "bad.gguf", &g, &err);
  if (s != code || (words && !strstr (err.message, words)))
    g_error ("expected %s with '%s', got %s: %s", sutra_status_name (code), words ? words : "",
             sutra_status_name (s), err.message);
  g_assert_null (g);
  g_assert_nonnull (strstr (err.message, "bad.gguf"));
  g_free (copy);
}

static void
test_truncated_everywhere (void)
{
  float x[512];
  test_fill_uniform (x, 512, -1.f, 1.f, 9);
  char *path = write_sample ("trunc.gguf", 0, x, 512);
  size_t len;
  guint8 *img = read_all (path, &len);
  /* every prefix fails cleanly (the last tensor's padding is not needed to read it) */
  SutraGguf *g;
  SutraError err;
  size_t need = len;
  test_assert_ok (sutra_gguf_open_memory (img, len, "ok.gguf", &g, &err), &err);
  for (size_t i = 0; i < sutra_gguf_tensor_count (g); i++) {
    const SutraGgufTensor *t = sutra_gguf_tensor (g, i);
    size_t end = sutra_gguf_data_offset (g) + t->offset + t->size;
    need = i == 0 || end > need ? end : need;
  }
  sutra_gguf_free (g);
  for (size_t n = 0; n < need; n++)
    expect_fail_mem (img, n, SUTRA_ERR_FORMAT, NULL);
  g_free (img);
  g_free (path);
}

/* A tiny hand-assembled file: one KV and one tensor, with knobs to break each field. */
typedef struct {
  const char *magic;
  uint32_t version;
  int64_t n_tensors, n_kv;
  int32_t kv_type;          /* type of the single KV ("general.alignment") */
  uint32_t align;
  uint64_t key_len_delta;
  int32_t arr_elem;
  uint64_t arr_n;
  uint32_t n_dims;
  int64_t ne0, ne1;
  int32_t ttype;
  uint64_t offset;
  bool dup_key;
} Knobs;

static guint8 *
assemble (const Knobs *k, size_t *len)
{
  GByteArray *b = g_byte_array_new ();
#define PUT(v) g_byte_array_append (b, (const guint8 *) &(v), sizeof (v))
  g_byte_array_append (b, (const guint8 *) k->magic, 4);
  PUT (k->version);
  PUT (k->n_tensors);
  PUT (k->n_kv);
  for (int r = 0; r < (k->dup_key ? 2 : 1); r++) {
    const char *key = "general.alignment";
    uint64_t kl = strlen (key) + k->key_len_delta;
    PUT (kl);
    g_byte_array_append (b, (const guint8 *) key, (guint) strlen (key));
    PUT (k->kv_type);
    if (k->kv_type == SUTRA_GGUF_ARRAY) {
      PUT (k->arr_elem);
      PUT (k->arr_n);
      uint32_t one = 1;
      PUT (one);
    } else {
      PUT (k->align);
    }
  }
  const char *tn = "w";
  uint64_t tl = 1;
  PUT (tl);
  g_byte_array_append (b, (const guint8 *) tn, 1);
  PUT (k->n_dims);
  PUT (k->ne0);
  if (k->n_dims > 1)
    PUT (k->ne1);
  for (uint32_t d = 2; d < k->n_dims && d < 8; d++) {
    int64_t one = 1;
    PUT (one);
  }
  PUT (k->ttype);
  PUT (k->offset);
  while (b->len % 32)
    g_byte_array_append (b, (const guint8 *) "", 1);
  float data[64] = { 0 };
  g_byte_array_append (b, (const guint8 *) data, sizeof data);
#undef PUT
  *len = b->len;
  return g_byte_array_free (b, FALSE);
}

static Knobs
good_knobs (void)
{
  return (Knobs) { "GGUF", 3, 1, 1, SUTRA_GGUF_UINT32, 32, 0, 0, 0, 2, 8, 2, SUTRA_GGML_F32, 0, false };
}

static void
expect_knobs (Knobs k, SutraStatus code, const char *words)
{
  size_t len;
  guint8 *img = assemble (&k, &len);
  if (code == SUTRA_OK) {
    SutraGguf *g;
    SutraError err;
    test_assert_ok (sutra_gguf_open_memory (img, len, "good.gguf", &g, &err), &err);
    sutra_gguf_free (g);
  } else {
    expect_fail_mem (img, len, code, words);
  }
  g_free (img);
}

static void
test_malformed (void)
{
  Knobs k = good_knobs ();
  expect_knobs (k, SUTRA_OK, NULL);
  k = good_knobs (); k.magic = "GGML";          expect_knobs (k, SUTRA_ERR_FORMAT, "not a GGUF");
  k = good_knobs (); k.version = 1;             expect_knobs (k, SUTRA_ERR_UNSUPPORTED, "version 1");
  k = good_knobs (); k.version = 4;             expect_knobs (k, SUTRA_ERR_FORMAT, "version 4");
  k = good_knobs (); k.n_kv = INT64_MAX;        expect_knobs (k, SUTRA_ERR_FORMAT, "key-value pairs cannot fit");
  k = good_knobs (); k.n_kv = -1;               expect_knobs (k, SUTRA_ERR_FORMAT, "key-value");
  k = good_knobs (); k.n_tensors = 1LL << 60;   expect_knobs (k, SUTRA_ERR_FORMAT, "tensors cannot fit");
  k = good_knobs (); k.key_len_delta = 1ULL << 62; expect_knobs (k, SUTRA_ERR_FORMAT, "truncated");
  k = good_knobs (); k.align = 0;               expect_knobs (k, SUTRA_ERR_FORMAT, "power of two");
  k = good_knobs (); k.align = 48;              expect_knobs (k, SUTRA_ERR_FORMAT, "power of two");
  k = good_knobs (); k.kv_type = SUTRA_GGUF_INT32; expect_knobs (k, SUTRA_ERR_FORMAT, "must be uint32");
  k = good_knobs (); k.kv_type = 13;            expect_knobs (k, SUTRA_ERR_FORMAT, "unknown value type");
  k = good_knobs (); k.kv_type = -5;            expect_knobs (k, SUTRA_ERR_FORMAT, "unknown value type");
  k = good_knobs (); k.kv_type = SUTRA_GGUF_ARRAY; k.arr_elem = SUTRA_GGUF_ARRAY; k.arr_n = 1;
  expect_knobs (k, SUTRA_ERR_FORMAT, "invalid array element type");
  k = good_knobs (); k.kv_type = SUTRA_GGUF_ARRAY; k.arr_elem = SUTRA_GGUF_UINT64; k.arr_n = 1ULL << 61;
  expect_knobs (k, SUTRA_ERR_FORMAT, "truncated");
  k = good_knobs (); k.kv_type = SUTRA_GGUF_ARRAY; k.arr_elem = SUTRA_GGUF_STRING; k.arr_n = UINT64_MAX;
  expect_knobs (k, SUTRA_ERR_FORMAT, "strings cannot fit");
  k = good_knobs (); k.dup_key = true; k.n_kv = 2; expect_knobs (k, SUTRA_ERR_FORMAT, "duplicate key");
  k = good_knobs (); k.n_dims = 5;              expect_knobs (k, SUTRA_ERR_FORMAT, "5 dimensions");
  k = good_knobs (); k.ne0 = -8;                expect_knobs (k, SUTRA_ERR_FORMAT, "negative");
  k = good_knobs (); k.ne0 = 1LL << 40; k.ne1 = 1LL << 40; expect_knobs (k, SUTRA_ERR_FORMAT, "overflows");
  k = good_knobs (); k.ttype = 4;               expect_knobs (k, SUTRA_ERR_FORMAT, "unknown ggml type 4");
  k = good_knobs (); k.ttype = 1000;            expect_knobs (k, SUTRA_ERR_FORMAT, "unknown ggml type");
  k = good_knobs (); k.ttype = SUTRA_GGML_Q4_0; expect_knobs (k, SUTRA_ERR_FORMAT, "block size");
  k = good_knobs (); k.offset = 16;             expect_knobs (k, SUTRA_ERR_FORMAT, "not a multiple of the alignment");
  k = good_knobs (); k.offset = 1ULL << 63;     expect_knobs (k, SUTRA_ERR_FORMAT, "beyond the end");
  k = good_knobs (); k.ne0 = 64; k.ne1 = 4;     expect_knobs (k, SUTRA_ERR_FORMAT, "beyond the end");
  k = good_knobs (); k.n_tensors = 2;           expect_knobs (k, SUTRA_ERR_FORMAT, "name is empty");
  /* unknown-but-valid ggml types (q5_K here) still open; only conversion refuses them */
  k = good_knobs (); k.ttype = SUTRA_GGML_Q5_K; k.ne0 = 256; k.ne1 = 1;
  size_t len;
  guint8 *img = assemble (&k, &len);
  img = g_realloc (img, len + 256);
  memset (img + len, 0, 256);
  SutraGguf *g;
  SutraError err;
  test_assert_ok (sutra_gguf_open_memory (img, len + 256, "q5k.gguf", &g, &err), &err);
  float out[256];
  g_assert_cmpint (sutra_gguf_tensor_to_f32 (g, sutra_gguf_tensor (g, 0), out, &err), ==,
                   SUTRA_ERR_UNSUPPORTED);
  g_assert_nonnull (strstr (err.message, "q5_K"));
  sutra_gguf_free (g);
  g_free (img);
  /* missing file */
  g_assert_cmpint (sutra_gguf_open ("/nonexistent/x.gguf", &g, &err), ==, SUTRA_ERR_NOT_FOUND);
}

static void
test_writer_rejects (void)
{
  float x[64] = { 0 };
  int64_t ne[1] = { 64 };
  SutraError err;
  char *path = g_build_filename (test_tmpdir (), "rej.gguf", NULL);
  SutraGgufWriter *w = sutra_gguf_writer_new ();
  sutra_gguf_writer_add_tensor_data (w, "a", SUTRA_GGML_F32, 1, ne, x);
  sutra_gguf_writer_add_tensor_data (w, "a", SUTRA_GGML_F32, 1, ne, x);
  g_assert_cmpint (sutra_gguf_writer_write (w, path, NULL, NULL, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "duplicate"));
  sutra_gguf_writer_free (w);
  w = sutra_gguf_writer_new ();
  int64_t ne2[1] = { 48 };
  sutra_gguf_writer_add_tensor_data (w, "b", SUTRA_GGML_Q8_0, 1, ne2, x);
  g_assert_cmpint (sutra_gguf_writer_write (w, path, NULL, NULL, &err), ==, SUTRA_ERR_INVALID);
  sutra_gguf_writer_free (w);
  w = sutra_gguf_writer_new ();
  sutra_gguf_writer_add_tensor_data (w, "this.name.is.far.too.long.for.ggml.which.allows.sixty.three.bytes", SUTRA_GGML_F32, 1, ne, x);
  g_assert_cmpint (sutra_gguf_writer_write (w, path, NULL, NULL, &err), ==, SUTRA_ERR_INVALID);
  sutra_gguf_writer_free (w);
  w = sutra_gguf_writer_new ();
  sutra_gguf_writer_set_u32 (w, "general.alignment", 24);
  g_assert_cmpint (sutra_gguf_writer_write (w, path, NULL, NULL, &err), ==, SUTRA_ERR_INVALID);
  sutra_gguf_writer_free (w);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));     /* nothing half-written */
  g_free (path);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/gguf/ggml-sizes", test_ggml_sizes);
  g_test_add_func ("/engine/gguf/q8_0-q4_0-match-ggml", test_q8_0_q4_0_match_ggml);
  g_test_add_func ("/engine/gguf/block-layouts", test_block_layouts);
  g_test_add_func ("/engine/gguf/k-quants-error", test_k_quants_error);
  g_test_add_func ("/engine/gguf/round-trip", test_round_trip);
  g_test_add_func ("/engine/gguf/truncated-everywhere", test_truncated_everywhere);
  g_test_add_func ("/engine/gguf/malformed", test_malformed);
  g_test_add_func ("/engine/gguf/writer-rejects", test_writer_rejects);
  return g_test_run ();
}
