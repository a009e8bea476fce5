/* test-dtype.c: f16/bf16 conversions against exhaustive properties. */
#include "test-util.h"
#include "sutra-dtype.h"

#include <math.h>
#include <string.h>

/* Every f16 bit pattern survives f16 -> f32 -> f16 (NaNs stay NaNs). */
static void
test_f16_roundtrip (void)
{
  for (uint32_t h = 0; h < 65536; h++) {
    float f = sutra_f16_to_f32 ((uint16_t) h);
    uint16_t back = sutra_f32_to_f16 (f);
    if (isnan (f))
      g_assert_true (isnan (sutra_f16_to_f32 (back)));
    else
      g_assert_cmphex (back, ==, h);
  }
}

/* Rounding to f16 is to nearest, ties to even: check midpoints between neighbours. */
static void
test_f16_rounding (void)
{
  for (uint32_t h = 0x0000; h < 0x7bff; h++) {
    float a = sutra_f16_to_f32 ((uint16_t) h), b = sutra_f16_to_f32 ((uint16_t) (h + 1));
    double mid = ((double) a + (double) b) / 2;
    uint16_t r = sutra_f32_to_f16 ((float) mid);
    if ((double) (float) mid == mid)   /* the midpoint is representable in f32: a tie */
      g_assert_cmphex (r, ==, (h & 1) ? h + 1 : h);
    float above = nextafterf ((float) mid, INFINITY), below = nextafterf ((float) mid, -INFINITY);
    g_assert_cmphex (sutra_f32_to_f16 (above), ==, h + 1);
    g_assert_cmphex (sutra_f32_to_f16 (below), ==, h);
  }
  g_assert_cmphex (sutra_f32_to_f16 (65520.0f), ==, 0x7c00);
  g_assert_cmphex (sutra_f32_to_f16 (65519.0f), ==, 0x7bff);
  g_assert_cmphex (sutra_f32_to_f16 (-1e9f), ==, 0xfc00);
}

static void
test_bf16 (void)
{
  g_assert_cmphex (sutra_f32_to_bf16 (1.0f), ==, 0x3f80);
  /* 1 + 2^-8 is exactly between 1 and 1 + 2^-7: ties to even -> 1 */
  g_assert_cmphex (sutra_f32_to_bf16 (1.00390625f), ==, 0x3f80);
  g_assert_cmphex (sutra_f32_to_bf16 (1.01171875f), ==, 0x3f82);   /* 1+3*2^-8 -> up to even */
  g_assert_true (isnan (sutra_bf16_to_f32 (sutra_f32_to_bf16 (NAN))));
  for (uint32_t h = 0; h < 65536; h++) {
    float f = sutra_bf16_to_f32 ((uint16_t) h);
    if (!isnan (f))
      g_assert_cmphex (sutra_f32_to_bf16 (f), ==, h);
  }
}

/* The vectorised bulk paths agree bit for bit with the scalar conversions. */
static void
test_bulk_matches_scalar (void)
{
  enum { N = 65536 + 7 };
  uint16_t *h = g_new (uint16_t, N), *h2 = g_new (uint16_t, N);
  float *f = g_new (float, N);
  for (int i = 0; i < N; i++)
    h[i] = (uint16_t) (i * 40503u);
  sutra_f16_to_f32_n (f, h, N);
  for (int i = 0; i < N; i++) {
    float s = sutra_f16_to_f32 (h[i]);
    g_assert_true ((isnan (s) && isnan (f[i])) || memcmp (&s, &f[i], 4) == 0);
  }
  test_fill_uniform (f, N, -70000.f, 70000.f, 7);
  for (int i = 0; i < 100; i++)
    f[i] *= 1e-6f;                    /* some subnormals */
  sutra_f32_to_f16_n (h2, f, N);
  for (int i = 0; i < N; i++)
    g_assert_cmphex (h2[i], ==, sutra_f32_to_f16 (f[i]));
  g_free (h);
  g_free (h2);
  g_free (f);
}

static void
test_names (void)
{
  SutraDType t;
  g_assert_true (sutra_dtype_from_name ("BF16", &t));
  g_assert_cmpint (t, ==, SUTRA_BF16);
  g_assert_false (sutra_dtype_from_name ("F8_E4M3", &t));
  g_assert_cmpuint (sutra_dtype_size (SUTRA_I64), ==, 8);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/dtype/f16-roundtrip", test_f16_roundtrip);
  g_test_add_func ("/engine/dtype/f16-rounding", test_f16_rounding);
  g_test_add_func ("/engine/dtype/bf16", test_bf16);
  g_test_add_func ("/engine/dtype/bulk-matches-scalar", test_bulk_matches_scalar);
  g_test_add_func ("/engine/dtype/names", test_names);
  return g_test_run ();
}
