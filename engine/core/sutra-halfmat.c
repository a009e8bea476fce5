/* sutra-halfmat.c: f16 / bf16 weight products (see sutra-halfmat.h for the summation order).
 *
 * The matrix-vector kernels stream the 16-bit rows once, converting in registers (F16C
 * vcvtph2ps; bf16 is the top half of an f32, so a zero-extension and a 16-bit shift) and
 * accumulating with FMA into four independent 16-lane accumulators per row (the FMA latency is
 * covered and the row is read sequentially, which streams best here). One row at a time:
 * interleaving rows measured slower on this machine (more concurrent streams for the
 * prefetchers). Measured on a Zen 4 core: 25 GB/s of f16 weights from DRAM, about the
 * streaming-read bandwidth of one core. */
#include "sutra-halfmat.h"
#include "sutra-error.h"
#include "sutra-pool.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define TILE_BYTES (384u * 1024u)   /* f32 tile per thread for the N > 1 products */
#define SCRATCH_TILE 6              /* sutra_thread_scratch slot (the quant tiles use it too;
                                     * never live at the same time on one thread) */

/* ------------------------------------------------------------------------------------------ */
/* dispatch                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static SutraSimdChoice kernel_choice = SUTRA_SIMD_CHOICE_INIT ("SUTRA_HALF_KERNEL");

_Static_assert ((int) SUTRA_HALF_KERNEL_AVX512 == (int) SUTRA_SIMD_AVX512
                && (int) SUTRA_HALF_KERNEL_AUTO == (int) SUTRA_SIMD_AUTO,
                "kernel levels follow SutraSimdLevel");

SutraHalfKernel
sutra_half_set_kernel (SutraHalfKernel k)
{
  return (SutraHalfKernel) sutra_simd_choice_set (&kernel_choice, (SutraSimdLevel) k);
}

SutraHalfKernel
sutra_half_get_kernel (void)
{
  return (SutraHalfKernel) sutra_simd_choice_get (&kernel_choice);
}

const char *
sutra_half_kernel_name (SutraHalfKernel k)
{
  return sutra_simd_level_name ((SutraSimdLevel) k);
}

/* ------------------------------------------------------------------------------------------ */
/* reference order                                                                            */
/* ------------------------------------------------------------------------------------------ */

static inline float
half_value (uint16_t h, SutraDType t)
{
  return t == SUTRA_BF16 ? sutra_bf16_to_f32 (h) : sutra_f16_to_f32 (h);
}

/* the documented reduction of the four 16-lane accumulators */
static float
reduce4x16 (const float a[4][16])
{
  float u[8];
  for (int l = 0; l < 8; l++) {
    float lo = (a[0][l] + a[1][l]) + (a[2][l] + a[3][l]);
    float hi = (a[0][l + 8] + a[1][l + 8]) + (a[2][l + 8] + a[3][l + 8]);
    u[l] = lo + hi;
  }
  return ((u[0] + u[4]) + (u[2] + u[6])) + ((u[1] + u[5]) + (u[3] + u[7]));
}

void
sutra_half_matvec_naive (const uint16_t *W, SutraDType t, const float *x, float *y, int M, int K,
                         bool accumulate)
{
  SUTRA_ASSERT (t == SUTRA_F16 || t == SUTRA_BF16);
  for (int r = 0; r < M; r++) {
    const uint16_t *w = W + (size_t) r * K;
    float a[4][16] = { { 0 } };
    for (int e = 0; e < K; e++)
      a[(e % 64) / 16][e % 16] = fmaf (half_value (w[e], t), x[e], a[(e % 64) / 16][e % 16]);
    float v = reduce4x16 (a);
    y[r] = accumulate ? y[r] + v : v;
  }
}

/* the portable kernel: chunk by chunk, lane by lane (fmaf: slow without FMA hardware, but only
 * CPUs without AVX2 run it) */
static void
rows_scalar (const uint16_t *W, SutraDType t, const float *x, float *y, int r0, int r1, int K,
             bool acc)
{
  for (int r = r0; r < r1; r++) {
    const uint16_t *w = W + (size_t) r * K;
    float a[4][16] = { { 0 } };
    for (int c = 0; c < K; c += 64)
      for (int v = 0; v < 4; v++)
        for (int l = 0; l < 16; l++) {
          int e = c + 16 * v + l;
          if (e < K)
            a[v][l] = fmaf (half_value (w[e], t), x[e], a[v][l]);
        }
    float s = reduce4x16 (a);
    y[r] = acc ? y[r] + s : s;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* AVX2 (+ F16C)                                                                              */
/* ------------------------------------------------------------------------------------------ */
#if defined(__x86_64__)
#define AVX2_F16 __attribute__ ((target ("avx2,fma,f16c")))

AVX2_F16 static inline __m256
load8 (const uint16_t *p, bool bf)
{
  __m128i h = _mm_loadu_si128 ((const __m128i *) p);
  if (bf)
    return _mm256_castsi256_ps (_mm256_slli_epi32 (_mm256_cvtepu16_epi32 (h), 16));
  return _mm256_cvtph_ps (h);
}

/* lanes 0-7 of the documented reduction from (lo, hi) halves of the 16-lane sum */
AVX2_F16 static inline float
reduce_avx2 (__m256 lo, __m256 hi)
{
  __m256 u = _mm256_add_ps (lo, hi);
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (u), _mm256_extractf128_ps (u, 1));
  __m128 q = _mm_add_ps (s, _mm_movehl_ps (s, s));
  return _mm_cvtss_f32 (_mm_add_ss (q, _mm_shuffle_ps (q, q, 1)));
}

/* one 64-element chunk into the eight half-accumulators: aN0/aN1 = lanes 0-7 / 8-15 of a_N */
#define AVX2_FMA8(w, x, a) a = _mm256_fmadd_ps (load8 (w, bf), _mm256_loadu_ps (x), a)
#define AVX2_CHUNK(w, x)                                                                          \
  do {                                                                                            \
    AVX2_FMA8 ((w), (x), a00);                                                                    \
    AVX2_FMA8 ((w) + 8, (x) + 8, a01);                                                            \
    AVX2_FMA8 ((w) + 16, (x) + 16, a10);                                                          \
    AVX2_FMA8 ((w) + 24, (x) + 24, a11);                                                          \
    AVX2_FMA8 ((w) + 32, (x) + 32, a20);                                                          \
    AVX2_FMA8 ((w) + 40, (x) + 40, a21);                                                          \
    AVX2_FMA8 ((w) + 48, (x) + 48, a30);                                                          \
    AVX2_FMA8 ((w) + 56, (x) + 56, a31);                                                          \
  } while (0)

AVX2_F16 static inline __attribute__ ((always_inline)) void
rows_avx2_body (const uint16_t *W, bool bf, const float *x, float *y, int r0, int r1, int K,
                bool acc)
{
  int full = K / 64, rem = K % 64;
  float xt[64];
  uint16_t wt[64];
  if (rem) {
    memset (xt, 0, sizeof xt);
    memcpy (xt, x + (size_t) full * 64, sizeof (float) * (size_t) rem);
  }
  for (int r = r0; r < r1; r++) {
    const uint16_t *w = W + (size_t) r * K;
    __m256 a00 = _mm256_setzero_ps (), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
    __m256 a30 = a00, a31 = a00;
    for (int c = 0; c < full; c++)
      AVX2_CHUNK (w + 64 * c, x + 64 * c);
    if (rem) {                   /* the tail through zero-padded copies (zeros change nothing) */
      memset (wt, 0, sizeof wt);
      memcpy (wt, w + (size_t) full * 64, sizeof (uint16_t) * (size_t) rem);
      AVX2_CHUNK (wt, xt);
    }
    __m256 lo = _mm256_add_ps (_mm256_add_ps (a00, a10), _mm256_add_ps (a20, a30));
    __m256 hi = _mm256_add_ps (_mm256_add_ps (a01, a11), _mm256_add_ps (a21, a31));
    float s = reduce_avx2 (lo, hi);
    y[r] = acc ? y[r] + s : s;
  }
}

AVX2_F16 static void
rows_avx2_f16 (const uint16_t *W, const float *x, float *y, int r0, int r1, int K, bool acc)
{
  rows_avx2_body (W, false, x, y, r0, r1, K, acc);
}

AVX2_F16 static void
rows_avx2_bf16 (const uint16_t *W, const float *x, float *y, int r0, int r1, int K, bool acc)
{
  rows_avx2_body (W, true, x, y, r0, r1, K, acc);
}

/* ------------------------------------------------------------------------------------------ */
/* AVX-512                                                                                    */
/* ------------------------------------------------------------------------------------------ */
#define AVX512 __attribute__ ((target ("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

AVX512 static inline __m512
cvt16 (__m256i h, bool bf)
{
  if (bf)
    return _mm512_castsi512_ps (_mm512_slli_epi32 (_mm512_cvtepu16_epi32 (h), 16));
  return _mm512_cvtph_ps (h);
}

AVX512 static inline __attribute__ ((always_inline)) void
rows_avx512_body (const uint16_t *W, bool bf, const float *x, float *y, int r0, int r1, int K,
                  bool acc)
{
  int full = K / 64, rem = K % 64;
  __mmask16 m[4];
  for (int v = 0; v < 4; v++) {
    int n = rem - 16 * v;
    m[v] = (__mmask16) (n <= 0 ? 0 : n >= 16 ? 0xFFFF : (1u << n) - 1);
  }
  const float *xr = x + (size_t) full * 64;
  for (int r = r0; r < r1; r++) {
    const uint16_t *w = W + (size_t) r * K;
    __m512 a0 = _mm512_setzero_ps (), a1 = a0, a2 = a0, a3 = a0;
    for (int c = 0; c < full; c++) {
      const uint16_t *wc = w + 64 * c;
      const float *xc = x + 64 * c;
      a0 = _mm512_fmadd_ps (cvt16 (_mm256_loadu_si256 ((const __m256i *) wc), bf),
                            _mm512_loadu_ps (xc), a0);
      a1 = _mm512_fmadd_ps (cvt16 (_mm256_loadu_si256 ((const __m256i *) (wc + 16)), bf),
                            _mm512_loadu_ps (xc + 16), a1);
      a2 = _mm512_fmadd_ps (cvt16 (_mm256_loadu_si256 ((const __m256i *) (wc + 32)), bf),
                            _mm512_loadu_ps (xc + 32), a2);
      a3 = _mm512_fmadd_ps (cvt16 (_mm256_loadu_si256 ((const __m256i *) (wc + 48)), bf),
                            _mm512_loadu_ps (xc + 48), a3);
    }
    if (rem) {                   /* masked tail: missing lanes are 0 x 0 */
      const uint16_t *wc = w + (size_t) full * 64;
#define TAIL(v, a)                                                                                \
      if (m[v])                                                                                   \
        a = _mm512_fmadd_ps (cvt16 (_mm256_maskz_loadu_epi16 (m[v], wc + 16 * v), bf),            \
                             _mm512_maskz_loadu_ps (m[v], xr + 16 * v), a)
      TAIL (0, a0);
      TAIL (1, a1);
      TAIL (2, a2);
      TAIL (3, a3);
#undef TAIL
    }
    __m512 t = _mm512_add_ps (_mm512_add_ps (a0, a1), _mm512_add_ps (a2, a3));
    float s = reduce_avx2 (_mm512_castps512_ps256 (t),
                           _mm256_castpd_ps (_mm512_extractf64x4_pd (_mm512_castps_pd (t), 1)));
    y[r] = acc ? y[r] + s : s;
  }
}

AVX512 static void
rows_avx512_f16 (const uint16_t *W, const float *x, float *y, int r0, int r1, int K, bool acc)
{
  rows_avx512_body (W, false, x, y, r0, r1, K, acc);
}

AVX512 static void
rows_avx512_bf16 (const uint16_t *W, const float *x, float *y, int r0, int r1, int K, bool acc)
{
  rows_avx512_body (W, true, x, y, r0, r1, K, acc);
}
#endif

void
sutra_half_matvec_rows (const uint16_t *W, SutraDType t, const float *x, float *y, int r0, int r1,
                        int K, bool accumulate)
{
  SUTRA_ASSERT (t == SUTRA_F16 || t == SUTRA_BF16);
  bool bf = t == SUTRA_BF16;
#if defined(__x86_64__)
  SutraHalfKernel k = sutra_half_get_kernel ();
  if (k == SUTRA_HALF_KERNEL_AVX512) {
    (bf ? rows_avx512_bf16 : rows_avx512_f16) (W, x, y, r0, r1, K, accumulate);
    return;
  }
  if (k == SUTRA_HALF_KERNEL_AVX2 && (bf || sutra_cpu_has_f16c ())) {
    (bf ? rows_avx2_bf16 : rows_avx2_f16) (W, x, y, r0, r1, K, accumulate);
    return;
  }
#endif
  (void) bf;
  rows_scalar (W, t, x, y, r0, r1, K, accumulate);
}

typedef struct {
  const uint16_t *W;
  SutraDType t;
  const float *x;
  float *y;
  int K;
  bool acc;
} MatvecJob;

static void
matvec_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const MatvecJob *j = ctx;
  (void) ti;
  sutra_half_matvec_rows (j->W, j->t, j->x, j->y, (int) r0, (int) r1, j->K, j->acc);
}

void
sutra_half_matvec (const uint16_t *W, SutraDType t, const float *x, float *y, int M, int K,
                   bool accumulate)
{
  MatvecJob j = { W, t, x, y, K, accumulate };
  /* at least ~32k weights per thread, or the hand-off costs more than it saves */
  sutra_parallel_for (M, 4 + 32768 / (K > 0 ? K : 1), matvec_range, &j);
}

/* ------------------------------------------------------------------------------------------ */
/* conversion and the N > 1 products                                                          */
/* ------------------------------------------------------------------------------------------ */

void
sutra_half_to_f32_rows (const uint16_t *W, SutraDType t, int K, int row0, int nrows, float *dst)
{
  sutra_to_f32_n (dst, W + (size_t) row0 * K, t, (size_t) nrows * K);
}

int64_t
sutra_half_first_non_finite (const uint16_t *W, SutraDType t, size_t n)
{
  uint16_t mask = t == SUTRA_BF16 ? 0x7F80u : 0x7C00u;   /* exponent all ones: inf or NaN */
  for (size_t b = 0; b < n; b += 4096) {
    size_t e = b + 4096 < n ? b + 4096 : n;
    unsigned any = 0;
    for (size_t i = b; i < e; i++)
      any |= (unsigned) ((W[i] & mask) == mask);
    if (any)
      for (size_t i = b; i < e; i++)
        if ((W[i] & mask) == mask)
          return (int64_t) i;
  }
  return -1;
}

typedef struct {
  const uint16_t *W;
  SutraDType t;
  const float *in;       /* forward: in [N, K]; backward: dout [N, M] */
  float *out;            /* forward: out [N, M]; backward: din [N, K] */
  int N, M, K;
  bool acc;
  int tile_rows;
  int col_unit;
} TileJob;

/* forward over rows [r0, r1) of W: out[:, r] (+)= in W[r, :]^T, a tile at a time */
static void
forward_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const TileJob *j = ctx;
  float *tile = sutra_thread_scratch (SCRATCH_TILE, (size_t) j->tile_rows * j->K);
  (void) ti;
  for (int64_t r = r0; r < r1; r += j->tile_rows) {
    int nr = (int) (r1 - r < j->tile_rows ? r1 - r : j->tile_rows);
    sutra_half_to_f32_rows (j->W, j->t, j->K, (int) r, nr, tile);
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, j->N, nr, j->K, 1.f, j->in, j->K, tile,
                 j->K, j->acc ? 1.f : 0.f, j->out + r, j->M);
  }
}

void
sutra_half_matmul (const uint16_t *W, SutraDType t, const float *in, float *out, int N, int M,
                   int K, bool accumulate)
{
  if (N <= 0 || M <= 0)
    return;
  if (N == 1) {
    sutra_half_matvec (W, t, in, out, M, K, accumulate);
    return;
  }
  TileJob j = { W, t, in, out, N, M, K, accumulate, 0, 0 };
  int tr = (int) (TILE_BYTES / (sizeof (float) * (size_t) (K > 0 ? K : 1)));
  j.tile_rows = tr < 16 ? 16 : tr & ~15;
  sutra_parallel_for (M, 16, forward_range, &j);
}

/* input gradient over column units [u0, u1): din[:, c0:c1] += dout W[:, c0:c1] */
static void
backward_range (void *ctx, int64_t u0, int64_t u1, int ti)
{
  const TileJob *j = ctx;
  int c0 = (int) u0 * j->col_unit;
  int c1 = (int) u1 * j->col_unit < j->K ? (int) u1 * j->col_unit : j->K;
  int cw = c1 - c0;
  int tr = (int) (TILE_BYTES / (sizeof (float) * (size_t) cw));
  tr = tr < 16 ? 16 : tr & ~15;
  float *tile = sutra_thread_scratch (SCRATCH_TILE, (size_t) tr * cw);
  (void) ti;
  for (int r = 0; r < j->M; r += tr) {
    int nr = j->M - r < tr ? j->M - r : tr;
    for (int i = 0; i < nr; i++)
      sutra_to_f32_n (tile + (size_t) i * cw, j->W + (size_t) (r + i) * j->K + c0, j->t,
                      (size_t) cw);
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, j->N, cw, nr, 1.f, j->in + r, j->M,
                 tile, cw, 1.f, j->out + c0, j->K);
  }
}

void
sutra_half_matmul_t (const uint16_t *W, SutraDType t, const float *dout, float *din, int N, int M,
                     int K)
{
  if (N <= 0 || K <= 0 || M <= 0)
    return;
  TileJob j = { W, t, dout, din, N, M, K, true, 0, 64 };
  int units = (K + j.col_unit - 1) / j.col_unit;
  sutra_parallel_for (units, 1, backward_range, &j);
}
