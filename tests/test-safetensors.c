/* test-safetensors.c: safetensors round trips, the real Hugging Face files in
 * ../shared/testdata, shard sets, every malformed-header rule, truncation at every length
 * and the atomic writer under an injected write failure. */
#include "test-util.h"
#include "sutra-json.h"
#include "sutra-safetensors.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* ---- helpers ---- */

/* A file image: u64 LE header length, the header bytes as given, data_len pattern bytes. */
static guint8 *
make_image (const char *header, size_t data_len, size_t *len)
{
  size_t n = strlen (header);
  *len = 8 + n + data_len;
  guint8 *b = g_malloc (*len ? *len : 1);
  for (int i = 0; i < 8; i++)
    b[i] = (guint8) ((guint64) n >> (8 * i));
  memcpy (b + 8, header, n);
  for (size_t i = 0; i < data_len; i++)
    b[8 + n + i] = (guint8) (i * 7 + 1);
  return b;
}

static char *
write_tmp (const char *dir, const char *name, const void *data, size_t len)
{
  char *p = g_build_filename (dir, name, NULL);
  GError *error = NULL;
  g_file_set_contents (p, data, (gssize) len, &error);
  g_assert_no_error (error);
  return p;
}

/* Opens an image from memory (exact-size heap copy, so ASan sees any overread) and from a
 * file (mmap path); both must fail with `code` and a message containing `words`. */
static void
expect_fail_image (const guint8 *img, size_t len, SutraStatus code, const char *words)
{
  guint8 *copy = g_memdup2 (img, len);
  SutraSafetensors *st = NULL;
  SutraError err = { 0 };
  SutraStatus s = sutra_safetensors_open_memory (copy, len, "bad.safetensors", &st, &err);
  if (s == SUTRA_OK)
    g_error ("expected %s (%s), got OK", sutra_status_name (code), words);
  g_assert_null (st);
  if (s != code || !strstr (err.message, words))
    g_error ("expected %s with '%s', got %s: %s", sutra_status_name (code), words,
             sutra_status_name (s), err.message);
  g_assert_nonnull (strstr (err.message, "bad.safetensors"));
  g_assert_null (strchr (err.message, '\n'));
  g_free (copy);

  char *p = write_tmp (test_tmpdir (), "bad.safetensors", img, len);
  s = sutra_safetensors_open (p, &st, &err);
  g_assert_cmpint (s, ==, code);
  g_assert_nonnull (strstr (err.message, words));
  g_assert_nonnull (strstr (err.message, p));
  g_free (p);
}

static void
expect_fail (const char *header, size_t data_len, SutraStatus code, const char *words)
{
  size_t len;
  guint8 *img = make_image (header, data_len, &len);
  expect_fail_image (img, len, code, words);
  g_free (img);
}

static SutraSafetensors *
open_ok_header (const char *header, size_t data_len, guint8 **keep)
{
  size_t len;
  *keep = make_image (header, data_len, &len);
  SutraSafetensors *st = NULL;
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_open_memory (*keep, len, "ok.safetensors", &st, &err), &err);
  return st;
}

static guint64
header_len (const char *path, char **header)
{
  gchar *contents;
  gsize len;
  GError *error = NULL;
  g_assert_true (g_file_get_contents (path, &contents, &len, &error));
  g_assert_cmpuint (len, >=, 8);
  guint64 n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | (guint8) contents[i];
  if (header)
    *header = g_strndup (contents + 8, (gsize) n);
  g_free (contents);
  return n;
}

/* ---- round trips ---- */

static void
fill_bytes (guint8 *p, size_t n, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  for (size_t i = 0; i < n; i++)
    p[i] = (guint8) g_rand_int (r);
  g_rand_free (r);
}

/* Every dtype in shapes [3,5], [] (a scalar), [7] (odd), [0] and [2,0,3] (zero-size). */
static void
test_roundtrip_dtypes (void)
{
  static const int64_t shapes[][3] = { { 3, 5, 0 }, { 0, 0, 0 }, { 7, 0, 0 }, { 0, 0, 0 },
                                       { 2, 0, 3 } };
  static const int ndims[] = { 2, 0, 1, 1, 3 };
  enum { NS = 5 };
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  guint8 *bufs[SUTRA_DTYPE_COUNT][NS];
  for (int t = 0; t < SUTRA_DTYPE_COUNT; t++)
    for (int s = 0; s < NS; s++) {
      SutraTensor tmp;
      sutra_tensor_view (&tmp, (SutraDType) t, NULL, ndims[s], shapes[s]);
      size_t nb = sutra_tensor_nbytes (&tmp);
      bufs[t][s] = g_malloc (nb ? nb : 1);
      fill_bytes (bufs[t][s], nb, (guint32) (t * 16 + s));
      char name[64];
      snprintf (name, sizeof name, "%s.s%d", sutra_dtype_name ((SutraDType) t), s);
      sutra_safetensors_writer_add (w, name, (SutraDType) t, ndims[s], shapes[s], bufs[t][s]);
    }
  sutra_safetensors_writer_metadata (w, "format", "pt");
  char *path = g_build_filename (test_tmpdir (), "all.safetensors", NULL);
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_writer_write (w, path, &err), &err);
  sutra_safetensors_writer_free (w);

  /* the header: padded to 8, __metadata__ first, tensor names in sorted order */
  char *hdr;
  guint64 n = header_len (path, &hdr);
  g_assert_cmpuint (n % 8, ==, 0);
  g_assert_true (g_str_has_prefix (hdr, "{\"__metadata__\":{\"format\":\"pt\"},"));
  for (int t = 0; t < SUTRA_DTYPE_COUNT; t++) {
    /* names sort as BF16.*, BOOL.*, F16.*, ...; check pairwise order of s0..s4 within a dtype */
    char name[64];
    for (int s = 0; s < NS; s++) {
      snprintf (name, sizeof name, "\"%s.s%d\"", sutra_dtype_name ((SutraDType) t), s);
      g_assert_nonnull (strstr (hdr, name));
      if (s > 0) {
        char prev[64];
        snprintf (prev, sizeof prev, "\"%s.s%d\"", sutra_dtype_name ((SutraDType) t), s - 1);
        g_assert_true (strstr (hdr, prev) < strstr (hdr, name));
      }
    }
  }
  json_object *root;
  test_assert_ok (sutra_json_parse (hdr, strlen (hdr), "hdr", SUTRA_JSON_STRICT | SUTRA_JSON_OBJECT,
                                    &root, &err), &err);
  const char *prev_key = NULL;
  json_object_object_foreach (root, key, val) {
    (void) val;
    if (prev_key && strcmp (prev_key, "__metadata__"))
      g_assert_cmpint (strcmp (prev_key, key), <, 0);
    prev_key = key;
  }
  json_object_put (root);
  g_free (hdr);

  SutraSafetensors *st;
  test_assert_ok (sutra_safetensors_open (path, &st, &err), &err);
  g_assert_cmpuint (sutra_safetensors_count (st), ==, SUTRA_DTYPE_COUNT * NS);
  for (size_t i = 1; i < sutra_safetensors_count (st); i++)
    g_assert_cmpint (strcmp (sutra_safetensors_name (st, i - 1), sutra_safetensors_name (st, i)),
                     <, 0);
  for (int t = 0; t < SUTRA_DTYPE_COUNT; t++)
    for (int s = 0; s < NS; s++) {
      char name[64];
      snprintf (name, sizeof name, "%s.s%d", sutra_dtype_name ((SutraDType) t), s);
      const SutraTensor *x = sutra_safetensors_find (st, name);
      g_assert_nonnull (x);
      g_assert_cmpint (x->dtype, ==, t);
      g_assert_cmpint (x->ndim, ==, ndims[s]);
      for (int d = 0; d < ndims[s]; d++)
        g_assert_cmpint (x->shape[d], ==, shapes[s][d]);
      g_assert_nonnull (x->data);
      g_assert_false (x->owned);
      /* our writer's layout keeps every tensor aligned to its element size */
      g_assert_true (sutra_safetensors_is_aligned (x));
      g_assert_cmpmem (x->data, sutra_tensor_nbytes (x), bufs[t][s], sutra_tensor_nbytes (x));
      g_assert_cmpstr (sutra_safetensors_path (st, name), ==, path);
    }
  g_assert_null (sutra_safetensors_find (st, "nope"));
  g_assert_null (sutra_safetensors_path (st, "nope"));
  g_assert_cmpstr (sutra_safetensors_metadata (st, "format"), ==, "pt");
  sutra_safetensors_free (st);
  for (int t = 0; t < SUTRA_DTYPE_COUNT; t++)
    for (int s = 0; s < NS; s++)
      g_free (bufs[t][s]);
  g_free (path);
}

/* f32 sources stored as F16/BF16 are converted exactly like the scalar converters, across
 * several conversion chunks; reading back with read_f32 widens them again. */
static void
test_f32_as_half (void)
{
  enum { N = 40000 + 3 };
  float *x = g_new (float, N);
  test_fill_uniform (x, N, -70000.f, 70000.f, 7);
  x[0] = 0.f; x[1] = -0.f; x[2] = 1e-8f;
  int64_t shape[2] = { 1, N };
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_add_f32_as (w, "h", SUTRA_F16, 2, shape, x);
  sutra_safetensors_writer_add_f32_as (w, "b", SUTRA_BF16, 2, shape, x);
  sutra_safetensors_writer_add_f32_as (w, "f", SUTRA_F32, 2, shape, x);
  char *path = g_build_filename (test_tmpdir (), "half.safetensors", NULL);
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_writer_write (w, path, &err), &err);
  sutra_safetensors_writer_free (w);

  SutraSafetensors *st;
  test_assert_ok (sutra_safetensors_open (path, &st, &err), &err);
  const SutraTensor *h = sutra_safetensors_find (st, "h"), *b = sutra_safetensors_find (st, "b"),
                    *f = sutra_safetensors_find (st, "f");
  g_assert_cmpint (h->dtype, ==, SUTRA_F16);
  g_assert_cmpint (b->dtype, ==, SUTRA_BF16);
  g_assert_cmpint (f->dtype, ==, SUTRA_F32);
  const uint16_t *hp = h->data, *bp = b->data;
  for (size_t i = 0; i < N; i++) {
    g_assert_cmphex (hp[i], ==, sutra_f32_to_f16 (x[i]));
    g_assert_cmphex (bp[i], ==, sutra_f32_to_bf16 (x[i]));
  }
  g_assert_cmpmem (f->data, N * 4, x, N * 4);
  float *y = g_new (float, N);
  test_assert_ok (sutra_safetensors_read_f32 (st, "h", y, 2, shape, &err), &err);
  for (size_t i = 0; i < N; i++)
    g_assert_cmpfloat (y[i], ==, sutra_f16_to_f32 (hp[i]));
  test_assert_ok (sutra_safetensors_read_f32 (st, "b", y, 2, shape, &err), &err);
  for (size_t i = 0; i < N; i++)
    g_assert_cmpfloat (y[i], ==, sutra_bf16_to_f32 (bp[i]));
  test_assert_ok (sutra_safetensors_read_f32 (st, "f", y, 0, NULL, &err), &err);
  g_assert_cmpmem (y, N * 4, x, N * 4);
  sutra_safetensors_free (st);
  g_free (y);
  g_free (x);
  g_free (path);
}

static void
test_metadata_roundtrip (void)
{
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_metadata (w, "zeta", "last");
  sutra_safetensors_writer_metadata (w, "format", "np");
  sutra_safetensors_writer_metadata (w, "format", "pt");          /* replaces */
  sutra_safetensors_writer_metadata (w, "quote\"back\\slash", "line\nbreak\ttab\x01 é 日本");
  sutra_safetensors_writer_metadata (w, "empty", "");
  float one = 1.f;
  sutra_safetensors_writer_add (w, "scalar", SUTRA_F32, 0, NULL, &one);
  char *path = g_build_filename (test_tmpdir (), "meta.safetensors", NULL);
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_writer_write (w, path, &err), &err);
  sutra_safetensors_writer_free (w);
  SutraSafetensors *st;
  test_assert_ok (sutra_safetensors_open (path, &st, &err), &err);
  g_assert_cmpuint (sutra_safetensors_metadata_count (st), ==, 4);
  const char *k, *v;
  sutra_safetensors_metadata_at (st, 0, &k, &v);
  g_assert_cmpstr (k, ==, "empty");
  g_assert_cmpstr (v, ==, "");
  sutra_safetensors_metadata_at (st, 3, &k, &v);
  g_assert_cmpstr (k, ==, "zeta");
  g_assert_cmpstr (sutra_safetensors_metadata (st, "format"), ==, "pt");
  g_assert_cmpstr (sutra_safetensors_metadata (st, "quote\"back\\slash"), ==,
                   "line\nbreak\ttab\x01 é 日本");
  g_assert_null (sutra_safetensors_metadata (st, "missing"));
  const SutraTensor *s = sutra_safetensors_find (st, "scalar");
  g_assert_cmpint (s->ndim, ==, 0);
  g_assert_cmpint (sutra_tensor_numel (s), ==, 1);
  g_assert_cmpfloat (*(const float *) s->data, ==, 1.f);
  sutra_safetensors_free (st);

  /* no metadata and no tensors: the reference library's empty file {} + 6 spaces */
  w = sutra_safetensors_writer_new ();
  test_assert_ok (sutra_safetensors_writer_write (w, path, &err), &err);
  sutra_safetensors_writer_free (w);
  char *hdr;
  g_assert_cmpuint (header_len (path, &hdr), ==, 8);
  g_assert_cmpstr (hdr, ==, "{}      ");
  g_free (hdr);
  test_assert_ok (sutra_safetensors_open (path, &st, &err), &err);
  g_assert_cmpuint (sutra_safetensors_count (st), ==, 0);
  g_assert_cmpuint (sutra_safetensors_metadata_count (st), ==, 0);
  sutra_safetensors_free (st);
  g_free (path);
}

/* The exact bytes of the reference library's own serialization test ("attn.0", F32 [1,2,3]):
 * our writer must produce the same file. */
static void
test_reference_bytes (void)
{
  static const guint8 expect[] = {
    64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121,
    112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50,
    44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48,
    44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64,
    0, 0, 160, 64 };
  float x[6] = { 0, 1, 2, 3, 4, 5 };
  int64_t shape[3] = { 1, 2, 3 };
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_add (w, "attn.0", SUTRA_F32, 3, shape, x);
  char *path = g_build_filename (test_tmpdir (), "ref.safetensors", NULL);
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_writer_write (w, path, &err), &err);
  sutra_safetensors_writer_free (w);
  gchar *got;
  gsize len;
  g_assert_true (g_file_get_contents (path, &got, &len, NULL));
  g_assert_cmpmem (got, len, expect, sizeof expect);
  g_free (got);
  g_free (path);
}

/* Mixed element sizes: the data is laid out by descending element size, so an odd-sized
 * U8 tensor never misaligns the F32/F64 ones after it. */
static void
test_layout_alignment (void)
{
  guint8 u[3] = { 1, 2, 3 };
  uint16_t h[5] = { 0 };
  double d[2] = { 1.5, -2.5 };
  float f[3] = { 1, 2, 3 };
  int64_t s3 = 3, s5 = 5, s2 = 2;
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_add (w, "a_u8", SUTRA_U8, 1, &s3, u);
  sutra_safetensors_writer_add (w, "b_f16", SUTRA_F16, 1, &s5, h);
  sutra_safetensors_writer_add (w, "c_f32", SUTRA_F32, 1, &s3, f);
  sutra_safetensors_writer_add (w, "d_f64", SUTRA_F64, 1, &s2, d);
  char *path = g_build_filename (test_tmpdir (), "mixed.safetensors", NULL);
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_writer_write (w, path, &err), &err);
  sutra_safetensors_writer_free (w);
  char *hdr;
  header_len (path, &hdr);
  /* F64 first, then F32, F16, U8 */
  g_assert_nonnull (strstr (hdr, "\"d_f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}"));
  g_assert_nonnull (strstr (hdr, "\"c_f32\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}"));
  g_assert_nonnull (strstr (hdr, "\"b_f16\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[28,38]}"));
  g_assert_nonnull (strstr (hdr, "\"a_u8\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[38,41]}"));
  g_free (hdr);
  SutraSafetensors *st;
  test_assert_ok (sutra_safetensors_open (path, &st, &err), &err);
  for (size_t i = 0; i < sutra_safetensors_count (st); i++)
    g_assert_true (sutra_safetensors_is_aligned (sutra_safetensors_tensor (st, i)));
  float y[2];
  test_assert_ok (sutra_safetensors_read_f32 (st, "d_f64", y, 1, &s2, &err), &err);
  g_assert_cmpfloat (y[0], ==, 1.5f);
  g_assert_cmpfloat (y[1], ==, -2.5f);
  sutra_safetensors_free (st);
  g_free (path);
}

/* A hand-made file whose F16/F32/F64 tensors sit at odd offsets: they are exposed as they
 * are, and read_f32 still converts them (run under UBSan in the sanitizer build). */
static void
test_misaligned (void)
{
  /* header of 8*k bytes (padded); data: U8[1] @0, F16[3] @1, F32[2] @7, F64[1] @15 */
  char *hdr = g_strdup ("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                        "\"b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[1,7]},"
                        "\"c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[7,15]},"
                        "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[15,23]}}");
  GString *padded = g_string_new (hdr);
  while (padded->len % 8)
    g_string_append_c (padded, ' ');
  size_t len;
  guint8 *img = make_image (padded->str, 23, &len);
  guint8 *data = img + 8 + padded->len;
  data[0] = 9;
  uint16_t hv[3] = { sutra_f32_to_f16 (1.5f), sutra_f32_to_f16 (-2.f), sutra_f32_to_f16 (0.25f) };
  float fv[2] = { 3.25f, -4.5f };
  double dv = 6.125;
  memcpy (data + 1, hv, 6);
  memcpy (data + 7, fv, 8);
  memcpy (data + 15, &dv, 8);
  SutraSafetensors *st;
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_open_memory (img, len, "odd.safetensors", &st, &err), &err);
  g_assert_false (sutra_safetensors_is_aligned (sutra_safetensors_find (st, "b")));
  g_assert_false (sutra_safetensors_is_aligned (sutra_safetensors_find (st, "c")));
  g_assert_false (sutra_safetensors_is_aligned (sutra_safetensors_find (st, "d")));
  float y[3];
  int64_t s3 = 3, s2 = 2, s1 = 1;
  test_assert_ok (sutra_safetensors_read_f32 (st, "b", y, 1, &s3, &err), &err);
  g_assert_cmpfloat (y[0], ==, 1.5f);
  g_assert_cmpfloat (y[1], ==, -2.f);
  g_assert_cmpfloat (y[2], ==, 0.25f);
  test_assert_ok (sutra_safetensors_read_f32 (st, "c", y, 1, &s2, &err), &err);
  g_assert_cmpfloat (y[0], ==, 3.25f);
  g_assert_cmpfloat (y[1], ==, -4.5f);
  test_assert_ok (sutra_safetensors_read_f32 (st, "d", y, 1, &s1, &err), &err);
  g_assert_cmpfloat (y[0], ==, 6.125f);
  /* errors of read_f32 */
  g_assert_cmpint (sutra_safetensors_read_f32 (st, "a", y, 1, &s1, &err), ==, SUTRA_ERR_UNSUPPORTED);
  g_assert_nonnull (strstr (err.message, "'a' is U8"));
  g_assert_cmpint (sutra_safetensors_read_f32 (st, "zz", y, 1, &s1, &err), ==, SUTRA_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, "'zz' not found"));
  g_assert_nonnull (strstr (err.message, "odd.safetensors"));
  int64_t wrong[2] = { 3, 1 };
  g_assert_cmpint (sutra_safetensors_read_f32 (st, "b", y, 2, wrong, &err), ==, SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "'b' has shape [3], expected [3, 1]"));
  sutra_safetensors_free (st);
  g_free (img);
  g_string_free (padded, TRUE);
  g_free (hdr);
}

/* ---- real Hugging Face files ---- */

static void
test_real_llama_tiny (void)
{
  const char *dir = test_shared_path ("hf-refs/llama-tiny");
  if (!dir)
    return;
  SutraError err = { 0 };
  char *cfg_path = g_build_filename (dir, "config.json", NULL);
  json_object *cfg;
  test_assert_ok (sutra_json_load (cfg_path, SUTRA_JSON_OBJECT, &cfg, &err), &err);
  int64_t hidden, inter, heads, kv, head_dim, vocab, layers;
  bool tied;
  test_assert_ok (sutra_json_get_int (cfg, "config.json", "hidden_size", -1, &hidden, &err), &err);
  test_assert_ok (sutra_json_get_int (cfg, "config.json", "intermediate_size", -1, &inter, &err), &err);
  test_assert_ok (sutra_json_get_int (cfg, "config.json", "num_attention_heads", -1, &heads, &err), &err);
  test_assert_ok (sutra_json_get_int (cfg, "config.json", "num_key_value_heads", heads, &kv, &err), &err);
  test_assert_ok (sutra_json_get_int (cfg, "config.json", "head_dim", hidden / heads, &head_dim, &err), &err);
  test_assert_ok (sutra_json_get_int (cfg, "config.json", "vocab_size", -1, &vocab, &err), &err);
  test_assert_ok (sutra_json_get_int (cfg, "config.json", "num_hidden_layers", -1, &layers, &err), &err);
  test_assert_ok (sutra_json_get_bool (cfg, "config.json", "tie_word_embeddings", false, &tied, &err), &err);
  json_object_put (cfg);
  g_free (cfg_path);

  SutraSafetensors *st;
  test_assert_ok (sutra_safetensors_open_dir (dir, &st, &err), &err);
  /* embed + norm + 9 per layer (+ lm_head when untied) */
  g_assert_cmpuint (sutra_safetensors_count (st), ==, (size_t) (2 + 9 * layers + (tied ? 0 : 1)));
  g_assert_cmpstr (sutra_safetensors_metadata (st, "format"), ==, "pt");
  struct { const char *name; int ndim; int64_t d0, d1; } want[] = {
    { "model.embed_tokens.weight", 2, vocab, hidden },
    { "model.norm.weight", 1, hidden, 0 },
    { "model.layers.0.self_attn.q_proj.weight", 2, heads * head_dim, hidden },
    { "model.layers.0.self_attn.k_proj.weight", 2, kv * head_dim, hidden },
    { "model.layers.1.self_attn.v_proj.weight", 2, kv * head_dim, hidden },
    { "model.layers.1.self_attn.o_proj.weight", 2, hidden, heads * head_dim },
    { "model.layers.1.mlp.gate_proj.weight", 2, inter, hidden },
    { "model.layers.1.mlp.down_proj.weight", 2, hidden, inter },
    { "model.layers.0.input_layernorm.weight", 1, hidden, 0 },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (want); i++) {
    const SutraTensor *t = sutra_safetensors_find (st, want[i].name);
    g_assert_nonnull (t);
    g_assert_cmpint (t->dtype, ==, SUTRA_F32);
    g_assert_cmpint (t->ndim, ==, want[i].ndim);
    g_assert_cmpint (t->shape[0], ==, want[i].d0);
    if (want[i].ndim == 2)
      g_assert_cmpint (t->shape[1], ==, want[i].d1);
    g_assert_true (sutra_safetensors_is_aligned (t));
  }
  /* read_f32 of an F32 tensor is its bytes; RMSNorm weights are finite and not all zero */
  const SutraTensor *nw = sutra_safetensors_find (st, "model.norm.weight");
  float *y = g_new (float, hidden);
  test_assert_ok (sutra_safetensors_read_f32 (st, "model.norm.weight", y, 1, &hidden, &err), &err);
  g_assert_cmpmem (y, hidden * 4, nw->data, hidden * 4);
  g_free (y);
  sutra_safetensors_free (st);

  /* refs.safetensors: logits [n_ids, vocab] F32 and input_ids I64 as refs.json lists them */
  char *refs_json = g_build_filename (dir, "refs.json", NULL);
  json_object *refs;
  test_assert_ok (sutra_json_load (refs_json, SUTRA_JSON_OBJECT, &refs, &err), &err);
  int64_t *ids, *lshape;
  size_t n_ids, n_lshape;
  test_assert_ok (sutra_json_get_int_array (refs, "refs.json", "input_ids", &ids, &n_ids, &err), &err);
  test_assert_ok (sutra_json_get_int_array (refs, "refs.json", "logits_shape", &lshape, &n_lshape, &err), &err);
  json_object_put (refs);
  char *refs_st = g_build_filename (dir, "refs.safetensors", NULL);
  test_assert_ok (sutra_safetensors_open (refs_st, &st, &err), &err);
  const SutraTensor *lg = sutra_safetensors_find (st, "logits");
  g_assert_nonnull (lg);
  g_assert_cmpint (lg->dtype, ==, SUTRA_F32);
  g_assert_cmpint (lg->ndim, ==, (int) n_lshape);
  g_assert_cmpint (lg->shape[0], ==, lshape[0]);
  g_assert_cmpint (lg->shape[1], ==, lshape[1]);
  g_assert_cmpint (lshape[1], ==, vocab);
  const SutraTensor *ii = sutra_safetensors_find (st, "input_ids");
  g_assert_nonnull (ii);
  g_assert_cmpint (ii->dtype, ==, SUTRA_I64);
  g_assert_cmpint (sutra_tensor_numel (ii), ==, (int64_t) n_ids);
  for (size_t i = 0; i < n_ids; i++) {
    int64_t v;
    memcpy (&v, (const char *) ii->data + 8 * i, 8);
    g_assert_cmpint (v, ==, ids[i]);
  }
  sutra_safetensors_free (st);
  g_free (ids);
  g_free (lshape);
  g_free (refs_st);
  g_free (refs_json);
}

static void
open_all_under (const char *dir, int *n_files)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  const char *name;
  while ((name = g_dir_read_name (d))) {
    char *p = g_build_filename (dir, name, NULL);
    if (g_file_test (p, G_FILE_TEST_IS_DIR)) {
      open_all_under (p, n_files);
    } else if (g_str_has_suffix (name, ".safetensors")) {
      SutraSafetensors *st;
      SutraError err = { 0 };
      test_assert_ok (sutra_safetensors_open (p, &st, &err), &err);
      g_assert_cmpuint (sutra_safetensors_count (st), >, 0);
      sutra_safetensors_free (st);
      (*n_files)++;
    }
    g_free (p);
  }
  g_dir_close (d);
}

/* Every safetensors file made by the real Python library opens under our checks. */
static void
test_real_all_files (void)
{
  const char *root = test_shared_path ("");
  if (!root)
    return;
  int n = 0;
  open_all_under (root, &n);
  g_assert_cmpint (n, >=, 10);
}

/* ---- shard sets and folders ---- */

static void
write_simple (const char *path, const char *const *names, int n, float base)
{
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  float *vals = g_new (float, (gsize) n * 4);
  int64_t shape[2] = { 2, 2 };
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < 4; j++)
      vals[i * 4 + j] = base + (float) (i * 4 + j);
    sutra_safetensors_writer_add (w, names[i], SUTRA_F32, 2, shape, vals + i * 4);
  }
  sutra_safetensors_writer_metadata (w, "format", "pt");
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_writer_write (w, path, &err), &err);
  sutra_safetensors_writer_free (w);
  g_free (vals);
}

static void
write_index (const char *dir, const char *weight_map_json)
{
  char *json = g_strdup_printf ("{\"metadata\": {\"total_size\": 48},\n \"weight_map\": %s}\n",
                                weight_map_json);
  g_free (write_tmp (dir, "model.safetensors.index.json", json, strlen (json)));
  g_free (json);
}

static void
expect_dir_fail (const char *dir, SutraStatus code, const char *w1, const char *w2)
{
  SutraSafetensors *st = NULL;
  SutraError err = { 0 };
  SutraStatus s = sutra_safetensors_open_dir (dir, &st, &err);
  if (s != code || !strstr (err.message, w1) || (w2 && !strstr (err.message, w2)))
    g_error ("expected %s with '%s'/'%s', got %s: %s", sutra_status_name (code), w1,
             w2 ? w2 : "", sutra_status_name (s), err.message);
  g_assert_null (st);
}

static void
test_sharded (void)
{
  const char *dir = test_tmpdir ();
  const char *const s1[] = { "model.layers.0.w", "model.embed" };
  const char *const s2[] = { "model.layers.1.w" };
  char *p1 = g_build_filename (dir, "model-00001-of-00002.safetensors", NULL);
  char *p2 = g_build_filename (dir, "model-00002-of-00002.safetensors", NULL);
  write_simple (p1, s1, 2, 0.f);
  write_simple (p2, s2, 1, 100.f);
  write_index (dir, "{\"model.embed\": \"model-00001-of-00002.safetensors\","
                    " \"model.layers.0.w\": \"model-00001-of-00002.safetensors\","
                    " \"model.layers.1.w\": \"model-00002-of-00002.safetensors\"}");
  SutraSafetensors *st;
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_open_dir (dir, &st, &err), &err);
  g_assert_cmpuint (sutra_safetensors_count (st), ==, 3);
  g_assert_cmpstr (sutra_safetensors_name (st, 0), ==, "model.embed");
  g_assert_cmpstr (sutra_safetensors_name (st, 2), ==, "model.layers.1.w");
  g_assert_cmpstr (sutra_safetensors_path (st, "model.embed"), ==, p1);
  g_assert_cmpstr (sutra_safetensors_path (st, "model.layers.1.w"), ==, p2);
  g_assert_cmpstr (sutra_safetensors_metadata (st, "format"), ==, "pt");
  float y[4];
  int64_t shape[2] = { 2, 2 };
  test_assert_ok (sutra_safetensors_read_f32 (st, "model.layers.1.w", y, 2, shape, &err), &err);
  g_assert_cmpfloat (y[0], ==, 100.f);
  g_assert_cmpfloat (y[3], ==, 103.f);
  test_assert_ok (sutra_safetensors_read_f32 (st, "model.layers.0.w", y, 2, shape, &err), &err);
  g_assert_cmpfloat (y[0], ==, 0.f);                /* first tensor written into shard 1 */
  sutra_safetensors_free (st);

  /* the index path itself opens the same set */
  char *ip = g_build_filename (dir, "model.safetensors.index.json", NULL);
  test_assert_ok (sutra_safetensors_open_dir (ip, &st, &err), &err);
  g_assert_cmpuint (sutra_safetensors_count (st), ==, 3);
  sutra_safetensors_free (st);

  /* a tensor mapped to a shard that lacks it: the message names both */
  write_index (dir, "{\"model.embed\": \"model-00002-of-00002.safetensors\","
                    " \"model.layers.1.w\": \"model-00002-of-00002.safetensors\"}");
  expect_dir_fail (dir, SUTRA_ERR_FORMAT, "'model.embed'", "model-00002-of-00002.safetensors");
  /* unsafe shard names */
  write_index (dir, "{\"model.embed\": \"../model-00001-of-00002.safetensors\"}");
  expect_dir_fail (dir, SUTRA_ERR_FORMAT, "not a plain file name", "../model-00001");
  write_index (dir, "{\"model.embed\": \"/etc/passwd\"}");
  expect_dir_fail (dir, SUTRA_ERR_FORMAT, "not a plain file name", "/etc/passwd");
  /* a missing shard */
  write_index (dir, "{\"model.embed\": \"model-00003-of-00003.safetensors\"}");
  expect_dir_fail (dir, SUTRA_ERR_NOT_FOUND, "model-00003-of-00003.safetensors", NULL);
  /* shape of the index */
  write_index (dir, "{}");
  expect_dir_fail (dir, SUTRA_ERR_FORMAT, "weight_map", "empty");
  write_index (dir, "[1]");
  expect_dir_fail (dir, SUTRA_ERR_FORMAT, "weight_map", NULL);
  write_index (dir, "{\"model.embed\": 3}");
  expect_dir_fail (dir, SUTRA_ERR_FORMAT, "weight_map['model.embed']", NULL);
  write_index (dir, "{\"a\": \"x.safetensors\", \"a\": \"y.safetensors\"}");
  expect_dir_fail (dir, SUTRA_ERR_FORMAT, "duplicate key \"a\"", NULL);
  g_free (write_tmp (dir, "model.safetensors.index.json", "{\"weight_map\": {", 16));
  expect_dir_fail (dir, SUTRA_ERR_FORMAT, "model.safetensors.index.json: line 1", NULL);
  /* a corrupt shard names the shard */
  write_index (dir, "{\"model.embed\": \"model-00001-of-00002.safetensors\","
                    " \"model.layers.1.w\": \"model-00002-of-00002.safetensors\"}");
  g_free (write_tmp (dir, "model-00002-of-00002.safetensors", "\x10\0\0\0\0\0\0\0{", 9));
  expect_dir_fail (dir, SUTRA_ERR_FORMAT, "model-00002-of-00002.safetensors", "beyond the end");
  g_free (ip);
  g_free (p1);
  g_free (p2);
}

static void
test_dir_choice (void)
{
  SutraSafetensors *st;
  SutraError err = { 0 };
  const char *const one[] = { "w" };
  /* none */
  const char *d0 = test_tmpdir ();
  g_free (write_tmp (d0, "config.json", "{}", 2));
  expect_dir_fail (d0, SUTRA_ERR_NOT_FOUND, "no *.safetensors weights in", d0);
  /* missing folder */
  char *nope = g_build_filename (d0, "nope", NULL);
  expect_dir_fail (nope, SUTRA_ERR_NOT_FOUND, "nope", NULL);
  g_free (nope);
  /* exactly one, any name */
  const char *d1 = test_tmpdir ();
  char *p = g_build_filename (d1, "weights.safetensors", NULL);
  write_simple (p, one, 1, 0.f);
  test_assert_ok (sutra_safetensors_open_dir (d1, &st, &err), &err);
  g_assert_cmpstr (sutra_safetensors_path (st, "w"), ==, p);
  sutra_safetensors_free (st);
  /* a file path opens that file */
  test_assert_ok (sutra_safetensors_open_dir (p, &st, &err), &err);
  sutra_safetensors_free (st);
  g_free (p);
  /* several and no index: an error listing them */
  p = g_build_filename (d1, "other.safetensors", NULL);
  write_simple (p, one, 1, 0.f);
  g_free (p);
  expect_dir_fail (d1, SUTRA_ERR_INVALID, "other.safetensors, weights.safetensors",
                   "cannot tell");
  /* model.safetensors wins */
  p = g_build_filename (d1, "model.safetensors", NULL);
  write_simple (p, one, 1, 0.f);
  test_assert_ok (sutra_safetensors_open_dir (d1, &st, &err), &err);
  g_assert_cmpstr (sutra_safetensors_path (st, "w"), ==, p);
  sutra_safetensors_free (st);
  g_free (p);
}

/* ---- malformed headers ---- */

#define T(name, dtype, shape, b, e) \
  "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void
test_malformed (void)
{
  /* sizes and the header length */
  expect_fail_image ((const guint8 *) "", 0, SUTRA_ERR_FORMAT, "empty file");
  expect_fail_image ((const guint8 *) "\x02\0\0\0\0", 5, SUTRA_ERR_FORMAT, "too short");
  {
    guint8 img[16] = { 0, 0, 0, 0, 0, 0, 0, 0x80 };           /* 2^63 */
    expect_fail_image (img, sizeof img, SUTRA_ERR_FORMAT, "over the");
    guint8 img2[16] = { 0, 0, 0, 0x40 };                       /* 1 GiB > limit */
    expect_fail_image (img2, sizeof img2, SUTRA_ERR_FORMAT, "over the");
    guint8 img3[16] = { 9, 0, 0, 0, 0, 0, 0, 0, '{', '}' };   /* 9 > 8 bytes left */
    expect_fail_image (img3, sizeof img3, SUTRA_ERR_FORMAT, "beyond the end of the file");
  }
  expect_fail ("", 0, SUTRA_ERR_FORMAT, "header is empty");
  /* JSON */
  expect_fail ("{\"a\":", 0, SUTRA_ERR_FORMAT, "header: line 1, column");
  expect_fail ("{\"a\" 1}", 0, SUTRA_ERR_FORMAT, "header: line 1, column 6");
  expect_fail ("[1, 2]", 0, SUTRA_ERR_FORMAT, "does not start with '{'");
  expect_fail (" {}", 0, SUTRA_ERR_FORMAT, "does not start with '{'");
  expect_fail ("{} x", 0, SUTRA_ERR_FORMAT, "header: line 1, column 4");
  {
    guint8 img[16] = { 8, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, 0, 0, 0, 0, 0 };   /* NUL padding */
    expect_fail_image (img, sizeof img, SUTRA_ERR_FORMAT, "header: line 1, column 3");
  }
  expect_fail ("{\"a\":NaN}", 0, SUTRA_ERR_FORMAT, "header: NaN or Infinity");
  expect_fail ("{\"\xff\":{}}", 0, SUTRA_ERR_FORMAT, "header: line 1");   /* not UTF-8 */
  expect_fail ("{\"a\":1}", 0, SUTRA_ERR_FORMAT, "tensor 'a': expected an object, got integer");
  /* dtype */
  expect_fail ("{" T ("w", "F8_E4M3", "[2]", 0, 2) "}", 2, SUTRA_ERR_UNSUPPORTED,
               "tensor 'w': dtype F8_E4M3 is not supported");
  expect_fail ("{" T ("w", "U32", "[2]", 0, 8) "}", 8, SUTRA_ERR_UNSUPPORTED,
               "dtype U32 is not supported");
  expect_fail ("{" T ("w", "FLOAT", "[2]", 0, 8) "}", 8, SUTRA_ERR_FORMAT,
               "tensor 'w': unknown dtype 'FLOAT'");
  expect_fail ("{" T ("w", "f32", "[2]", 0, 8) "}", 8, SUTRA_ERR_FORMAT, "unknown dtype 'f32'");
  expect_fail ("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SUTRA_ERR_FORMAT,
               "tensor 'w': \"dtype\" must be a string and is missing");
  expect_fail ("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SUTRA_ERR_FORMAT,
               "\"dtype\" must be a string");
  /* shape */
  expect_fail ("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, SUTRA_ERR_FORMAT,
               "tensor 'w': \"shape\" must be an array of integers and is missing");
  expect_fail ("{" T ("w", "F32", "[-1]", 0, 4) "}", 4, SUTRA_ERR_FORMAT,
               "tensor 'w': shape[0] is -1; dims must be >= 0");
  expect_fail ("{" T ("w", "F32", "[1.0]", 0, 4) "}", 4, SUTRA_ERR_FORMAT, "shape[0] is a number");
  expect_fail ("{" T ("w", "F32", "[\"1\"]", 0, 4) "}", 4, SUTRA_ERR_FORMAT, "shape[0] is a string");
  expect_fail ("{" T ("w", "F32", "[4294967296,4294967296,4294967296]", 0, 4) "}", 4,
               SUTRA_ERR_FORMAT, "tensor 'w': shape [4294967296, 4294967296, 4294967296] has too "
               "many elements (overflow)");
  expect_fail ("{" T ("w", "F64", "[4611686018427387904]", 0, 4) "}", 4, SUTRA_ERR_FORMAT,
               "overflow");                                /* numel fits, bytes do not */
  expect_fail ("{" T ("w", "F32", "[99999999999999999999]", 0, 4) "}", 4, SUTRA_ERR_FORMAT,
               "tensor 'w'");                              /* beyond uint64 */
  expect_fail ("{" T ("w", "F32", "[1,1,1,1,1]", 0, 4) "}", 4, SUTRA_ERR_UNSUPPORTED,
               "tensor 'w' has 5 dimensions; at most 4");
  /* shape * dtype size vs offsets */
  expect_fail ("{" T ("w", "F32", "[2,3]", 0, 20) "}", 20, SUTRA_ERR_FORMAT,
               "tensor 'w': shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 20] hold 20");
  expect_fail ("{" T ("w", "F32", "[]", 0, 0) "}", 0, SUTRA_ERR_FORMAT, "needs 4 bytes");
  /* offsets */
  expect_fail ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, SUTRA_ERR_FORMAT,
               "tensor 'w': \"data_offsets\" must be two integers");
  expect_fail ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8,
               SUTRA_ERR_FORMAT, "\"data_offsets\" must be two integers");
  expect_fail ("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"a\":0}}}", 4,
               SUTRA_ERR_FORMAT, "\"data_offsets\" must be [begin, end]");
  expect_fail ("{" T ("w", "F32", "[1]", -4, 0) "}", 4, SUTRA_ERR_FORMAT,
               "\"data_offsets\" must be two integers");
  expect_fail ("{" T ("w", "U8", "[0]", 4, 0) "}", 4, SUTRA_ERR_FORMAT, "end before they begin");
  expect_fail ("{" T ("w", "F32", "[2]", 0, 8) "}", 4, SUTRA_ERR_FORMAT,
               "tensor 'w': data_offsets [0, 8] go beyond the end of the data (4 bytes)");
  expect_fail ("{" T ("w", "F32", "[2]", 18446744073709551608, 18446744073709551615) "}", 4,
               SUTRA_ERR_FORMAT, "tensor 'w'");
  /* overlap, holes, trailing bytes */
  expect_fail ("{" T ("a", "F32", "[2]", 0, 8) "," T ("b", "F32", "[2]", 4, 12) "}", 12,
               SUTRA_ERR_FORMAT, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
  expect_fail ("{" T ("a", "F32", "[2]", 0, 8) "," T ("b", "F32", "[2]", 0, 8) "}", 8,
               SUTRA_ERR_FORMAT, "overlap");
  expect_fail ("{" T ("a", "F32", "[2]", 0, 8) "," T ("z", "U8", "[0]", 4, 4) "}", 8,
               SUTRA_ERR_FORMAT, "overlap");                /* empty tensor inside another */
  expect_fail ("{" T ("a", "F32", "[1]", 0, 4) "," T ("b", "F32", "[1]", 8, 12) "}", 12,
               SUTRA_ERR_FORMAT, "data bytes [4, 8) before tensor 'b' belong to no tensor");
  expect_fail ("{" T ("a", "F32", "[1]", 4, 8) "}", 8, SUTRA_ERR_FORMAT, "[0, 4) before tensor 'a'");
  expect_fail ("{" T ("a", "F32", "[1]", 0, 4) "}", 6, SUTRA_ERR_FORMAT,
               "2 data bytes after the last tensor");
  expect_fail ("{}", 1, SUTRA_ERR_FORMAT, "1 data bytes after the last tensor");
  /* duplicates (the spec forbids them; json-c alone would keep the last) */
  expect_fail ("{" T ("a", "F32", "[1]", 0, 4) "," T ("a", "F32", "[1]", 4, 8) "}", 8,
               SUTRA_ERR_FORMAT, "duplicate key \"a\"");
  expect_fail ("{" T ("a", "F32", "[1]", 0, 4) "," T ("\\u0061", "F32", "[1]", 4, 8) "}", 8,
               SUTRA_ERR_FORMAT, "duplicate key \"a\"");
  expect_fail ("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               SUTRA_ERR_FORMAT, "duplicate key \"dtype\"");
  expect_fail ("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, SUTRA_ERR_FORMAT,
               "duplicate key \"k\"");
  expect_fail ("{" T ("a\\u0000b", "F32", "[1]", 0, 4) "}", 4, SUTRA_ERR_FORMAT, "NUL character");
  /* __metadata__ */
  expect_fail ("{\"__metadata__\":{\"k\":1}}", 0, SUTRA_ERR_FORMAT,
               "__metadata__: value of 'k' is integer; must be a string");
  expect_fail ("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, SUTRA_ERR_FORMAT, "value of 'k' is object");
  expect_fail ("{\"__metadata__\":[\"k\"]}", 0, SUTRA_ERR_FORMAT,
               "__metadata__ must be an object of strings, got array");
  expect_fail ("{\"__metadata__\":\"pt\"}", 0, SUTRA_ERR_FORMAT, "__metadata__ must be an object");
  /* control characters in a name stay out of the one-line message */
  expect_fail ("{" T ("a\\nb", "F32", "[2]", 0, 8) "}", 4, SUTRA_ERR_FORMAT, "tensor 'a?b'");
}

/* Legal corner cases the reference reader accepts. */
static void
test_legal_corners (void)
{
  guint8 *img;
  /* zero-size tensors at boundaries, including at the very end and at 0 */
  SutraSafetensors *st = open_ok_header ("{" T ("e0", "F32", "[0,3]", 0, 0) ","
                                         T ("a", "F32", "[2]", 0, 8) ","
                                         T ("e1", "I64", "[5,0]", 8, 8) ","
                                         T ("s", "U8", "[]", 8, 9) ","
                                         T ("e2", "BF16", "[0]", 9, 9) "}   ", 9, &img);
  g_assert_cmpuint (sutra_safetensors_count (st), ==, 5);
  const SutraTensor *e1 = sutra_safetensors_find (st, "e1");
  g_assert_cmpint (e1->ndim, ==, 2);
  g_assert_cmpint (e1->shape[0], ==, 5);
  g_assert_cmpint (e1->shape[1], ==, 0);
  g_assert_cmpint (sutra_tensor_numel (e1), ==, 0);
  g_assert_nonnull (e1->data);
  float y[1];
  int64_t z[1] = { 0 };
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_read_f32 (st, "e2", y, 1, z, &err), &err);
  g_assert_cmpint (sutra_safetensors_find (st, "s")->ndim, ==, 0);
  sutra_safetensors_free (st);
  g_free (img);
  /* no padding, null metadata, extra keys ignored (serde ignores unknown fields) */
  st = open_ok_header ("{\"__metadata__\":null," "\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
                       "\"data_offsets\":[0,1],\"extra\":[1,{}]}}", 1, &img);
  g_assert_cmpuint (sutra_safetensors_metadata_count (st), ==, 0);
  sutra_safetensors_free (st);
  g_free (img);
  /* whitespace inside and after the JSON; escaped names */
  st = open_ok_header ("{ \"w\\u00e9\" : { \"dtype\" : \"I16\" , \"shape\" : [ 1 ] ,"
                       " \"data_offsets\" : [ 0 , 2 ] } }\n\t ", 2, &img);
  g_assert_nonnull (sutra_safetensors_find (st, "w\xc3\xa9"));
  sutra_safetensors_free (st);
  g_free (img);
}

/* A small valid file cut at every length never opens and never crashes (heap copies of
 * the exact length for ASan; and through files for the mmap path). */
static void
test_truncated_every_length (void)
{
  float a[3] = { 1, 2, 3 };
  uint16_t b[2] = { 1, 2 };
  int64_t s3 = 3, s2 = 2;
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_add (w, "a", SUTRA_F32, 1, &s3, a);
  sutra_safetensors_writer_add (w, "b", SUTRA_BF16, 1, &s2, b);
  sutra_safetensors_writer_metadata (w, "format", "pt");
  const char *dir = test_tmpdir ();
  char *path = g_build_filename (dir, "small.safetensors", NULL);
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_writer_write (w, path, &err), &err);
  sutra_safetensors_writer_free (w);
  gchar *full;
  gsize len;
  g_assert_true (g_file_get_contents (path, &full, &len, NULL));
  for (gsize n = 0; n < len; n++) {
    guint8 *copy = g_memdup2 (full, n);
    SutraSafetensors *st = NULL;
    SutraStatus s = sutra_safetensors_open_memory (copy, n, "cut", &st, &err);
    g_assert_cmpint (s, ==, SUTRA_ERR_FORMAT);
    g_assert_null (st);
    g_free (copy);
    g_assert_true (g_file_set_contents (path, full, (gssize) n, NULL));
    g_assert_cmpint (sutra_safetensors_open (path, &st, &err), ==, SUTRA_ERR_FORMAT);
  }
  /* a byte too many is an error as well (the buffer must be covered exactly) */
  gchar *more = g_malloc (len + 1);
  memcpy (more, full, len);
  more[len] = 0;
  SutraSafetensors *st = NULL;
  g_assert_cmpint (sutra_safetensors_open_memory (more, len + 1, "more", &st, &err), ==,
                   SUTRA_ERR_FORMAT);
  test_assert_ok (sutra_safetensors_open_memory (more, len, "exact", &st, &err), &err);
  sutra_safetensors_free (st);
  g_free (more);
  g_free (full);
  g_free (path);
}

/* ---- the writer ---- */

static int
count_entries (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  int n = 0;
  while (g_dir_read_name (d))
    n++;
  g_dir_close (d);
  return n;
}

/* A write that fails half-way (file size limit: EFBIG) leaves the old file intact and no
 * temporary behind; so does a target folder that does not exist. */
static void
test_atomic_failure (void)
{
  const char *dir = test_tmpdir ();
  char *path = g_build_filename (dir, "keep.safetensors", NULL);
  const char *const names[] = { "old" };
  write_simple (path, names, 1, 42.f);
  g_assert_cmpint (count_entries (dir), ==, 1);

  enum { BIG = 1 << 18 };                   /* 1 MiB of f32, over the 64 KiB limit below */
  float *x = g_new0 (float, BIG);
  int64_t shape = BIG;
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_add (w, "new", SUTRA_F32, 1, &shape, x);
  SutraError err = { 0 };

  struct rlimit old_lim, lim;
  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &old_lim), ==, 0);
  void (*old_handler) (int) = signal (SIGXFSZ, SIG_IGN);
  lim = old_lim;
  lim.rlim_cur = 64 * 1024;
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &lim), ==, 0);
  SutraStatus s = sutra_safetensors_writer_write (w, path, &err);
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &old_lim), ==, 0);
  signal (SIGXFSZ, old_handler);
  g_assert_cmpint (s, ==, SUTRA_ERR_IO);
  g_assert_nonnull (strstr (err.message, path));
  g_assert_cmpint (count_entries (dir), ==, 1);           /* no temporary left */

  SutraSafetensors *st;
  test_assert_ok (sutra_safetensors_open (path, &st, &err), &err);
  g_assert_nonnull (sutra_safetensors_find (st, "old"));
  g_assert_null (sutra_safetensors_find (st, "new"));
  sutra_safetensors_free (st);

  char *bad = g_build_filename (dir, "no-such-dir", "x.safetensors", NULL);
  g_assert_cmpint (sutra_safetensors_writer_write (w, bad, &err), ==, SUTRA_ERR_IO);
  g_assert_nonnull (strstr (err.message, "no-such-dir"));
  g_free (bad);

  /* without the limit the same writer succeeds and replaces the file */
  test_assert_ok (sutra_safetensors_writer_write (w, path, &err), &err);
  test_assert_ok (sutra_safetensors_open (path, &st, &err), &err);
  g_assert_nonnull (sutra_safetensors_find (st, "new"));
  sutra_safetensors_free (st);
  g_assert_cmpint (count_entries (dir), ==, 1);
  sutra_safetensors_writer_free (w);
  g_free (x);
  g_free (path);
}

/* Rewriting a file that is open (mmapped) keeps the open set valid: rename replaces the
 * directory entry, the old inode stays mapped. */
static void
test_rewrite_while_open (void)
{
  const char *dir = test_tmpdir ();
  char *path = g_build_filename (dir, "m.safetensors", NULL);
  const char *const names[] = { "w" };
  write_simple (path, names, 1, 1.f);
  SutraSafetensors *st;
  SutraError err = { 0 };
  test_assert_ok (sutra_safetensors_open (path, &st, &err), &err);
  write_simple (path, names, 1, 500.f);
  const float *old = sutra_safetensors_find (st, "w")->data;
  g_assert_cmpfloat (old[0], ==, 1.f);
  sutra_safetensors_free (st);
  test_assert_ok (sutra_safetensors_open (path, &st, &err), &err);
  g_assert_cmpfloat (((const float *) sutra_safetensors_find (st, "w")->data)[0], ==, 500.f);
  sutra_safetensors_free (st);
  g_free (path);
}

static void
test_writer_errors (void)
{
  float x = 1;
  char *path = g_build_filename (test_tmpdir (), "e.safetensors", NULL);
  SutraError err = { 0 };
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_add (w, "a", SUTRA_F32, 0, NULL, &x);
  sutra_safetensors_writer_add_f32_as (w, "a", SUTRA_F16, 0, NULL, &x);
  g_assert_cmpint (sutra_safetensors_writer_write (w, path, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "tensor 'a' added twice"));
  sutra_safetensors_writer_free (w);
  w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_add (w, "__metadata__", SUTRA_F32, 0, NULL, &x);
  g_assert_cmpint (sutra_safetensors_writer_write (w, path, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "reserved"));
  sutra_safetensors_writer_free (w);
  w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_add (w, "bad\xff", SUTRA_F32, 0, NULL, &x);
  g_assert_cmpint (sutra_safetensors_writer_write (w, path, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "UTF-8"));
  sutra_safetensors_writer_free (w);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  sutra_safetensors_writer_free (NULL);
  sutra_safetensors_free (NULL);
  g_free (path);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/safetensors/roundtrip-dtypes", test_roundtrip_dtypes);
  g_test_add_func ("/engine/safetensors/f32-as-half", test_f32_as_half);
  g_test_add_func ("/engine/safetensors/metadata-roundtrip", test_metadata_roundtrip);
  g_test_add_func ("/engine/safetensors/reference-bytes", test_reference_bytes);
  g_test_add_func ("/engine/safetensors/layout-alignment", test_layout_alignment);
  g_test_add_func ("/engine/safetensors/misaligned", test_misaligned);
  g_test_add_func ("/engine/safetensors/real-llama-tiny", test_real_llama_tiny);
  g_test_add_func ("/engine/safetensors/real-all-files", test_real_all_files);
  g_test_add_func ("/engine/safetensors/sharded", test_sharded);
  g_test_add_func ("/engine/safetensors/dir-choice", test_dir_choice);
  g_test_add_func ("/engine/safetensors/malformed", test_malformed);
  g_test_add_func ("/engine/safetensors/legal-corners", test_legal_corners);
  g_test_add_func ("/engine/safetensors/truncated-every-length", test_truncated_every_length);
  g_test_add_func ("/engine/safetensors/atomic-failure", test_atomic_failure);
  g_test_add_func ("/engine/safetensors/rewrite-while-open", test_rewrite_while_open);
  g_test_add_func ("/engine/safetensors/writer-errors", test_writer_errors);
  return g_test_run ();
}
