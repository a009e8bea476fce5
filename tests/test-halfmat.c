/* test-halfmat.c: products with f16 / bf16 weight matrices: the matrix-vector kernels (scalar,
 * AVX2, AVX-512, 1 and 2 threads) against the _naive twin bit for bit, the tiled products
 * against an f32 reference sgemm on the converted weights, and the helpers. */
#include "test-util.h"
#include "sutra-halfmat.h"
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <math.h>
#include <string.h>

/* Tiled products against convert + sgemm_naive (float vs double accumulation). */
#define MATMUL_REL_TOL 2e-5
/* The matrix-vector result against a double-precision dot product of the same (exact) f32
 * values: only f32 rounding of the sums, relative to sum |w x|. */
#define MATVEC_REL_TOL 1e-5

static const int shapes[][2] = { { 1, 1 },   { 3, 7 },    { 5, 16 },  { 4, 63 },  { 17, 64 },
                                 { 6, 65 },  { 13, 100 }, { 9, 172 }, { 33, 200 }, { 8, 257 },
                                 { 64, 576 }, { 21, 1536 } };

static uint16_t *
random_half (size_t n, SutraDType t, float std, guint32 seed)
{
  float *f = g_new (float, n);
  test_fill_uniform (f, n, -std, std, seed);
  uint16_t *h = g_new (uint16_t, n);
  for (size_t i = 0; i < n; i++)
    h[i] = t == SUTRA_BF16 ? sutra_f32_to_bf16 (f[i]) : sutra_f32_to_f16 (f[i]);
  if (n > 3)
    h[n / 3] = 0;                       /* exact zeros take part like any value */
  g_free (f);
  return h;
}

static void
matvec_case (SutraDType t, int M, int K, guint32 seed)
{
  uint16_t *W = random_half ((size_t) M * K, t, 0.5f, seed);
  float *x = g_new (float, K), *ref = g_new (float, M), *y = g_new (float, M);
  float *wf = g_new (float, (size_t) M * K);
  test_fill_uniform (x, K, -1.f, 1.f, seed + 1);
  sutra_half_to_f32_rows (W, t, K, 0, M, wf);
  /* accuracy of the defined order against double sums */
  sutra_half_matvec_naive (W, t, x, ref, M, K, false);
  for (int r = 0; r < M; r++) {
    double d = 0, mag = 0;
    for (int k = 0; k < K; k++) {
      d += (double) wf[(size_t) r * K + k] * x[k];
      mag += fabs ((double) wf[(size_t) r * K + k] * x[k]);
    }
    if (fabs (ref[r] - d) > MATVEC_REL_TOL * (mag + 1e-30))
      g_error ("%s [%d, %d] row %d: naive %.9g vs double %.9g", sutra_dtype_name (t), M, K, r,
               ref[r], d);
  }
  for (int acc = 0; acc < 2; acc++) {
    for (int r = 0; r < M; r++)
      ref[r] = (float) r * 0.25f;
    sutra_half_matvec_naive (W, t, x, ref, M, K, acc);
    for (int k = SUTRA_HALF_KERNEL_SCALAR; k <= SUTRA_HALF_KERNEL_AVX512; k++) {
      SutraHalfKernel got = sutra_half_set_kernel ((SutraHalfKernel) k);
      for (int threads = 1; threads <= 2; threads++) {
        sutra_set_threads (threads);
        for (int r = 0; r < M; r++)
          y[r] = (float) r * 0.25f;
        sutra_half_matvec (W, t, x, y, M, K, acc);
        if (memcmp (y, ref, sizeof (float) * M) != 0) {
          int r = 0;
          while (y[r] == ref[r])
            r++;
          g_error ("%s [%d, %d] %s kernel, %d threads, acc %d: row %d: %.9g != naive %.9g",
                   sutra_dtype_name (t), M, K, sutra_half_kernel_name (got), threads, acc, r, y[r],
                   ref[r]);
        }
        /* N == 1 through the matmul entry is the same kernel */
        for (int r = 0; r < M; r++)
          y[r] = (float) r * 0.25f;
        sutra_half_matmul (W, t, x, y, 1, M, K, acc);
        g_assert_cmpmem (y, sizeof (float) * M, ref, sizeof (float) * M);
      }
    }
  }
  sutra_half_set_kernel (SUTRA_HALF_KERNEL_AUTO);
  g_free (W);
  g_free (x);
  g_free (ref);
  g_free (y);
  g_free (wf);
}

static void
test_matvec_bit_exact (void)
{
  SutraHalfKernel best = sutra_half_set_kernel (SUTRA_HALF_KERNEL_AUTO);
  g_test_message ("best kernel on this CPU: %s", sutra_half_kernel_name (best));
  for (int t = 0; t < 2; t++)
    for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
      matvec_case (t ? SUTRA_BF16 : SUTRA_F16, shapes[s][0], shapes[s][1], (guint32) (t * 50 + s));
  sutra_set_threads (0);
}

/* Non-finite values give the same NaN/inf in every path (they are not masked away). */
static void
test_matvec_non_finite (void)
{
  const int M = 3, K = 70;
  uint16_t *W = random_half ((size_t) M * K, SUTRA_F16, 0.5f, 3);
  W[K + 5] = 0x7C00;                    /* +inf in row 1 */
  float x[70], ref[3], y[3];
  test_fill_uniform (x, K, 0.1f, 1.f, 4);
  sutra_half_matvec_naive (W, SUTRA_F16, x, ref, M, K, false);
  g_assert_true (isinf (ref[1]) && isfinite (ref[0]) && isfinite (ref[2]));
  for (int k = SUTRA_HALF_KERNEL_SCALAR; k <= SUTRA_HALF_KERNEL_AVX512; k++) {
    sutra_half_set_kernel ((SutraHalfKernel) k);
    sutra_half_matvec (W, SUTRA_F16, x, y, M, K, false);
    g_assert_cmpmem (y, sizeof y, ref, sizeof ref);
  }
  sutra_half_set_kernel (SUTRA_HALF_KERNEL_AUTO);
  g_assert_cmpint (sutra_half_first_non_finite (W, SUTRA_F16, (size_t) M * K), ==, K + 5);
  /* 0x7C00 read as bf16 is finite (its exponent is not all ones); 0x7FC1 is a NaN in both */
  for (size_t i = 0; i < (size_t) M * K; i++)
    W[i] &= 0x3FFF;                     /* all finite in both readings */
  W[K + 5] = 0x7C00;
  g_assert_cmpint (sutra_half_first_non_finite (W, SUTRA_BF16, (size_t) M * K), ==, -1);
  W[2 * K + 1] = 0x7FC1;
  g_assert_cmpint (sutra_half_first_non_finite (W, SUTRA_BF16, (size_t) M * K), ==, 2 * K + 1);
  g_free (W);
}

static void
test_matmul_vs_sgemm (void)
{
  static const int cases[][3] = { { 2, 17, 33 }, { 5, 64, 576 }, { 33, 70, 172 }, { 64, 96, 200 },
                                  { 7, 1100, 64 }, { 3, 5, 1000 } };
  for (int ti = 0; ti < 2; ti++)
    for (size_t c = 0; c < G_N_ELEMENTS (cases); c++) {
      SutraDType t = ti ? SUTRA_BF16 : SUTRA_F16;
      int N = cases[c][0], M = cases[c][1], K = cases[c][2];
      uint16_t *W = random_half ((size_t) M * K, t, 0.3f, (guint32) c);
      float *wf = g_new (float, (size_t) M * K), *in = g_new (float, (size_t) N * K);
      float *dout = g_new (float, (size_t) N * M);
      sutra_half_to_f32_rows (W, t, K, 0, M, wf);
      /* conversion is exact: row by row equals the scalar conversion */
      for (size_t i = 0; i < (size_t) M * K; i++)
        g_assert_true (wf[i] == (t == SUTRA_BF16 ? sutra_bf16_to_f32 (W[i]) : sutra_f16_to_f32 (W[i])));
      test_fill_uniform (in, (size_t) N * K, -1.f, 1.f, (guint32) c + 10);
      test_fill_uniform (dout, (size_t) N * M, -1.f, 1.f, (guint32) c + 20);
      float *ref = g_new (float, (size_t) N * M), *out = g_new (float, (size_t) N * M);
      float *dref = g_new (float, (size_t) N * K), *din = g_new (float, (size_t) N * K);
      for (int threads = 1; threads <= 2; threads++) {
        sutra_set_threads (threads);
        for (int acc = 0; acc < 2; acc++) {
          for (size_t i = 0; i < (size_t) N * M; i++)
            ref[i] = out[i] = 0.5f;
          sutra_sgemm_naive (false, true, N, M, K, 1.f, in, K, wf, K, acc ? 1.f : 0.f, ref, M);
          sutra_half_matmul (W, t, in, out, N, M, K, acc);
          double e = test_rel_max_err (out, ref, (size_t) N * M);
          if (e > MATMUL_REL_TOL)
            g_error ("%s matmul N=%d [%d, %d]: rel err %g", sutra_dtype_name (t), N, M, K, e);
        }
        for (size_t i = 0; i < (size_t) N * K; i++)
          dref[i] = din[i] = 0.25f;
        sutra_sgemm_naive (false, false, N, K, M, 1.f, dout, M, wf, K, 1.f, dref, K);
        sutra_half_matmul_t (W, t, dout, din, N, M, K);
        double e = test_rel_max_err (din, dref, (size_t) N * K);
        if (e > MATMUL_REL_TOL)
          g_error ("%s matmul_t N=%d [%d, %d]: rel err %g", sutra_dtype_name (t), N, M, K, e);
      }
      g_free (W);
      g_free (wf);
      g_free (in);
      g_free (dout);
      g_free (ref);
      g_free (out);
      g_free (dref);
      g_free (din);
    }
  sutra_set_threads (0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/halfmat/matvec-bit-exact", test_matvec_bit_exact);
  g_test_add_func ("/engine/halfmat/matvec-non-finite", test_matvec_non_finite);
  g_test_add_func ("/engine/halfmat/matmul-vs-sgemm", test_matmul_vs_sgemm);
  return g_test_run ();
}
