/* sutra-halfmat.h: products with a weight matrix W [M, K] stored in 16 bits (IEEE 754 binary16
 * "f16" or bfloat16 "bf16", as a half-precision checkpoint holds it), f32 activations and f32
 * accumulation. Halving the bytes per weight is what makes decode faster: a matrix-vector
 * product reads every weight once per token.
 *
 * Matrix-vector (decode), one summation order implemented by the scalar, AVX2 (+F16C) and
 * AVX-512 kernels and the _naive twin, which therefore agree bit for bit:
 *   element e of a row, e = 64 c + 16 v + l (chunk c, vector v = 0..3, lane l = 0..15), joins
 *   a_v[l] = fma (w_e, x_e, a_v[l]) in increasing c, every a_v starting at +0;
 *   row = hsum16 ((a_0 + a_1) + (a_2 + a_3)), hsum16 (t) = hsum8 (t[l] + t[l + 8], l < 8),
 *   hsum8 (u) = ((u0 + u4) + (u2 + u6)) + ((u1 + u5) + (u3 + u7)); accumulate adds y[r] last.
 *   (A missing tail element is the same as a zero weight times a zero input.)
 * Rows are split across the sutra pool; each row is one thread's, so the result does not
 * depend on the thread count.
 * Matrix-matrix (N > 1: prefill, training): each thread converts tiles of W's rows to f32 in
 * its scratch and calls single-threaded cblas_sgemm; the transposed product (input gradient)
 * converts column ranges. W is never converted whole. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "sutra-dtype.h"

typedef enum {
  SUTRA_HALF_KERNEL_AUTO = 0,     /* the best the CPU has */
  SUTRA_HALF_KERNEL_SCALAR,
  SUTRA_HALF_KERNEL_AVX2,         /* AVX2 + FMA (+ F16C for f16) */
  SUTRA_HALF_KERNEL_AVX512        /* AVX-512 F/BW/VL */
} SutraHalfKernel;

/* Forces a kernel (tests, benchmarks); returns the one that will run (a path the CPU lacks
 * falls back to the next one down). SUTRA_HALF_KERNEL=scalar|avx2|avx512 does the same. */
SutraHalfKernel sutra_half_set_kernel (SutraHalfKernel k);
SutraHalfKernel sutra_half_get_kernel (void);
const char     *sutra_half_kernel_name (SutraHalfKernel k);

/* t is SUTRA_F16 or SUTRA_BF16 everywhere below. */

/* y[M] (+)= W[M, K] x[K], rows across the pool. */
void sutra_half_matvec       (const uint16_t *W, SutraDType t, const float *x, float *y, int M,
                              int K, bool accumulate);
/* Rows [r0, r1) on the calling thread (for callers that split work themselves). */
void sutra_half_matvec_rows  (const uint16_t *W, SutraDType t, const float *x, float *y, int r0,
                              int r1, int K, bool accumulate);
void sutra_half_matvec_naive (const uint16_t *W, SutraDType t, const float *x, float *y, int M,
                              int K, bool accumulate);

/* out [N, M] (+)= in [N, K] W^T  (N == 1 runs the matrix-vector kernel). */
void sutra_half_matmul   (const uint16_t *W, SutraDType t, const float *in, float *out, int N,
                          int M, int K, bool accumulate);
/* din [N, K] += dout [N, M] W */
void sutra_half_matmul_t (const uint16_t *W, SutraDType t, const float *dout, float *din, int N,
                          int M, int K);

/* dst [nrows, K] = rows [row0, row0 + nrows) of W as f32 (exact). */
void sutra_half_to_f32_rows (const uint16_t *W, SutraDType t, int K, int row0, int nrows,
                             float *dst);
/* Index of the first NaN or infinity among n values, or -1. */
int64_t sutra_half_first_non_finite (const uint16_t *W, SutraDType t, size_t n);
