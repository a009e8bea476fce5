/* sutra-int4.c: INT4 group-wise asymmetric quantization (the layout GPTQ and AWQ checkpoints
 * use: per group of G values a scale and an integer zero point, value = (code - zero) * scale).
 *
 * Group parameters follow GPTQ's quantizer (Frantar et al. 2022, reference gptq/quant.py
 * find_params): the range [min, max] of the group is widened to contain 0, scale = (max - min)
 * / 15, zero = round (-min / scale), code = clamp (round (w / scale) + zero, 0, 15). Round to
 * nearest applies that to every group; GPTQ and AWQ (sutra-qcalib.c) reuse it.
 *
 * Matrix-vector kernels take x as 8-bit codes per 32-value block (sutra_int4_q8_block: q8_0's
 * rule, d = max |x| / 127), so the 4-bit codes meet x in exact integer dot products, the way
 * llama.cpp's q4_0 x q8_0 product works. One summation order, which the naive twin, the scalar
 * kernel and the AVX2 and AVX-512 VNNI kernels all follow (they agree bit for bit):
 *   sub-block k of a row (32 values, group g = 32k / G, scale s, zero z; x block scale d_k)
 *   feeds lane L = 4 (k mod 2) + m (m = 0..3) with its 8 elements j in {4m..4m+3} and
 *   {16+4m..16+4m+3}: D = sum code_j * xq_j, S = sum xq_j (int32, exact);
 *   acc[L] = fma (s * d_k, (float) (D - z * S), acc[L]) for k ascending (s * d_k rounded first);
 *   row value = sq_hsum8 (acc).
 * Lane L of a 256-bit integer dot over a 32-byte load of sub-blocks 2p, 2p + 1 is exactly
 * that set of 8 elements (bytes 4m..4m+3, both nibbles), which is why the order is this one.
 * Prefill and training products (dequantized tiles and sgemm) keep x in float. */
#include "sutra-quant-private.h"
#include "sutra-dtype.h"
#include "sutra-pool.h"

#include <math.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

void
sutra_int4_group_params (const float *x, int n, float *scale, int *zero)
{
  float lo = 0.f, hi = 0.f;          /* the range always contains 0 */
  for (int i = 0; i < n; i++) {
    lo = fminf (lo, x[i]);
    hi = fmaxf (hi, x[i]);
  }
  float s = (hi - lo) / 15.f;
  if (!(s > 0.f) || !isfinite (s)) {  /* all zero (or NaN/Inf): any code decodes to 0 */
    *scale = 0.f;
    *zero = 0;
    return;
  }
  float z = nearbyintf (-lo / s);
  *scale = s;
  *zero = z < 0.f ? 0 : z > 15.f ? 15 : (int) z;
}

typedef struct {
  SutraQWeight *q;
  const float *w;
} Int4Job;

static void
quantize_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  Int4Job *j = ctx;
  SutraQWeight *q = j->q;
  int G = q->group;
  (void) ti;
  for (int64_t r = r0; r < r1; r++)
    for (int g = 0; g < q->ngroups; g++) {
      const float *x = j->w + (size_t) r * q->cols + (size_t) g * G;
      int n = q->cols - g * G < G ? q->cols - g * G : G;
      float s;
      int z;
      sutra_int4_group_params (x, n, &s, &z);
      size_t gi = (size_t) r * q->ngroups + g;
      sq_scales_mut (q)[gi] = s;
      sq_zeros_mut (q)[gi] = (uint8_t) z;
      uint8_t *blk = sq_qs_mut (q) + (size_t) r * q->row_bytes + (size_t) g * G / 2;
      for (int e = 0; e < n; e++)
        sq_q4_set (blk, e, sutra_int4_code (x[e], s, z));
    }
}

void
sutra_int4_quantize_rows (SutraQWeight *q, const float *w)
{
  Int4Job j = { q, w };
  sutra_parallel_for (q->rows, 1 + 65536 / q->cols, quantize_range, &j);
}

/* ------------------------------------------------------------------------------------------ */
/* the 8-bit input, the reference (naive) row dot and the scalar kernels                      */
/* ------------------------------------------------------------------------------------------ */

void
sutra_int4_q8_block (const SutraQWeight *q, const float *x, int k, int8_t codes[32], float *d)
{
  int c0 = k * SUTRA_Q4_SUB, n = q->cols - c0 < SUTRA_Q4_SUB ? q->cols - c0 : SUTRA_Q4_SUB;
  const float *is = q->in_scale && n > 0 ? q->in_scale + c0 : NULL;
  float v[SUTRA_Q4_SUB], amax = 0.f;
  bool finite = true;
  for (int i = 0; i < SUTRA_Q4_SUB; i++) {
    v[i] = i < n ? (is ? x[c0 + i] * is[i] : x[c0 + i]) : 0.f;
    finite = finite && isfinite (v[i]);
    amax = fmaxf (amax, fabsf (v[i]));
  }
  memset (codes, 0, SUTRA_Q4_SUB);
  float s = amax / 127.f;
  if (!finite) {
    *d = NAN;
    return;
  }
  if (!(s > 0.f)) {                   /* all zero, padding (or too small to scale): codes 0 */
    *d = 0.f;
    return;
  }
  float id = 1.f / s;
  for (int i = 0; i < SUTRA_Q4_SUB; i++) {
    float t = nearbyintf (v[i] * id);
    codes[i] = (int8_t) (t > 127.f ? 127 : t < -127.f ? -127 : (int) t);
  }
  *d = s;
}

/* Half h of a pair from its block's codes and scale; S[4 h + m] = the lane sums. */
static void
pair_fill (SqInt4XPair *o, int h, const int8_t b[32], float d, float S[8])
{
  memcpy (o->lo + 16 * h, b, 16);
  memcpy (o->hi + 16 * h, b + 16, 16);
  for (int m = 0; m < 4; m++) {
    int sum = 0;
    for (int t = 0; t < 4; t++)
      sum += b[4 * m + t] + b[16 + 4 * m + t];
    o->d[4 * h + m] = d;
    S[4 * h + m] = (float) sum;
  }
}

/* zq[z] = z * S, lane by lane (exact: |z * S| <= 15 * 8 * 127) */
static void
pair_zq (SqInt4XPair *o, const float S[8])
{
  for (int z = 0; z < 16; z++)
    for (int L = 0; L < 8; L++)
      o->zq[z][L] = (float) z * S[L];
}

#if defined(__x86_64__)
/* sutra_int4_q8_block for a whole block of 32 inside the row, AVX2: the same operations on 8 lanes
 * (max is exact in any order; cvtps rounds to nearest even as nearbyintf does by default). */
__attribute__ ((target ("avx2,fma"))) static void
q8_block_avx2 (const float *x, const float *in_scale, int8_t q[32], float *d)
{
  const __m256 sign = _mm256_set1_ps (-0.f), inf = _mm256_set1_ps (INFINITY);
  __m256 v[4], amax = _mm256_setzero_ps (), ok = _mm256_castsi256_ps (_mm256_set1_epi32 (-1));
  for (int k = 0; k < 4; k++) {
    v[k] = _mm256_loadu_ps (x + 8 * k);
    if (in_scale)
      v[k] = _mm256_mul_ps (v[k], _mm256_loadu_ps (in_scale + 8 * k));
    __m256 a = _mm256_andnot_ps (sign, v[k]);
    ok = _mm256_and_ps (ok, _mm256_cmp_ps (a, inf, _CMP_LT_OQ));   /* false for NaN and Inf */
    amax = _mm256_max_ps (amax, a);
  }
  __m128 m = _mm_max_ps (_mm256_castps256_ps128 (amax), _mm256_extractf128_ps (amax, 1));
  m = _mm_max_ps (m, _mm_movehl_ps (m, m));
  m = _mm_max_ss (m, _mm_shuffle_ps (m, m, 1));
  float s = _mm_cvtss_f32 (m) / 127.f;
  memset (q, 0, SUTRA_Q4_SUB);
  if (_mm256_movemask_ps (ok) != 0xFF) {
    *d = NAN;
    return;
  }
  if (!(s > 0.f)) {
    *d = 0.f;
    return;
  }
  __m256 id = _mm256_set1_ps (1.f / s);
  __m256i c[4];
  for (int k = 0; k < 4; k++)
    c[k] = _mm256_cvtps_epi32 (_mm256_mul_ps (v[k], id));
  /* to bytes in order (packs works per 128-bit lane; the permute puts the lanes back) and
   * clamped to [-127, 127] (values are within it but for float rounding at the edge) */
  __m256i w = _mm256_packs_epi32 (c[0], c[1]), u = _mm256_packs_epi32 (c[2], c[3]);
  __m256i bytes = _mm256_permutevar8x32_epi32 (_mm256_packs_epi16 (w, u),
                                               _mm256_setr_epi32 (0, 4, 1, 5, 2, 6, 3, 7));
  bytes = _mm256_max_epi8 (bytes, _mm256_set1_epi8 (-127));
  _mm256_storeu_si256 ((__m256i *) q, bytes);
  *d = s;
}
#endif

void
sutra_int4_prepare_x (const SutraQWeight *q, const float *x, SqInt4XPair *xp)
{
  int nsub = sq_int4_nsub (q), npairs = sq_int4_npairs (q);
#if defined(__x86_64__)
  bool avx2 = sutra_quant_get_kernel () >= SUTRA_QKERNEL_AVX2;
#endif
  for (int p = 0; p < npairs; p++) {
    float S[8];
    for (int h = 0; h < 2; h++) {
      int k = 2 * p + h, c0 = k * SUTRA_Q4_SUB;
      int8_t b[SUTRA_Q4_SUB];
      float d;
#if defined(__x86_64__)
      if (avx2 && k < nsub && c0 + SUTRA_Q4_SUB <= q->cols)
        q8_block_avx2 (x + c0, q->in_scale ? q->in_scale + c0 : NULL, b, &d);
      else
#endif
        sutra_int4_q8_block (q, x, k, b, &d);    /* partial, padding, or the phantom half */
      pair_fill (&xp[p], h, b, d, S);
    }
    pair_zq (&xp[p], S);
  }
}

float
sutra_int4_row_dot_naive (const SutraQWeight *q, int r, const int8_t *xq, const float *d)
{
  int G = q->group, nsub = sq_int4_nsub (q);
  const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
  float acc[8] = { 0 };
  for (int k = 0; k < nsub; k++) {
    int g = k * SUTRA_Q4_SUB / G;
    size_t gi = (size_t) r * q->ngroups + g;
    int z = q->zeros[gi];
    float c = q->scales[gi] * d[k];
    const uint8_t *blk = row + (size_t) g * G / 2;
    for (int m = 0; m < 4; m++) {
      int32_t D = 0, S = 0;
      for (int t = 0; t < 8; t++) {
        int e = k * SUTRA_Q4_SUB + (t < 4 ? 4 * m + t : 16 + 4 * m + t - 4);  /* in the row */
        D += sq_q4_code (blk, e - g * G) * xq[e];
        S += xq[e];
      }
      int L = 4 * (k % 2) + m;
      acc[L] = fmaf (c, (float) (D - z * S), acc[L]);
    }
  }
  return sq_hsum8 (acc);
}

static void
int4_matvec_scalar (const SutraQWeight *q, const float *xpf, float *y, int r0, int r1, bool accum)
{
  const SqInt4XPair *xp = (const SqInt4XPair *) (const void *) xpf;
  int G = q->group, nsub = sq_int4_nsub (q);
  for (int r = r0; r < r1; r++) {
    const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
    float acc[8] = { 0 };
    for (int k = 0; k < nsub; k++) {
      const SqInt4XPair *x = &xp[k / 2];
      int h = k % 2;
      size_t gi = (size_t) r * q->ngroups + (size_t) (k * SUTRA_Q4_SUB / G);
      int z = q->zeros[gi];
      float c = q->scales[gi] * x->d[4 * h];
      const uint8_t *b = row + (size_t) k * (SUTRA_Q4_SUB / 2);
      for (int m = 0; m < 4; m++) {
        int32_t D = 0;
        for (int t = 0; t < 4; t++) {
          int j = 4 * m + t;
          D += (b[j] & 15) * x->lo[16 * h + j] + (b[j] >> 4) * x->hi[16 * h + j];
        }
        int L = 4 * h + m;
        acc[L] = fmaf (c, (float) D - x->zq[z][L], acc[L]);
      }
    }
    float v = sq_hsum8 (acc);
    y[r] = accum ? y[r] + v : v;
  }
}

static void
int4_dequant_scalar (const SutraQWeight *q, int r, int c0, int c1, float *dst)
{
  int G = q->group;
  const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
  for (int c = c0; c < c1;) {
    int g = c / G;
    size_t gi = (size_t) r * q->ngroups + g;
    float s = q->scales[gi];
    int z = q->zeros[gi];
    const uint8_t *blk = row + (size_t) g * G / 2;
    int end = (g + 1) * G < c1 ? (g + 1) * G : c1;
    for (; c < end; c++)
      dst[c - c0] = (float) (sq_q4_code (blk, c - g * G) - z) * s;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* AVX2 / FMA, and AVX-512 VNNI                                                               */
/* ------------------------------------------------------------------------------------------ */
#if defined(__x86_64__)
#define AVX2 __attribute__ ((target ("avx2,fma")))
#define VNNI __attribute__ ((target ("avx2,fma,avx512f,avx512vl,avx512vnni")))

AVX2 static inline float
hsum_avx (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  __m128 t = _mm_add_ps (s, _mm_movehl_ps (s, s));
  return _mm_cvtss_f32 (_mm_add_ss (t, _mm_shuffle_ps (t, t, 1)));
}

/* (code - zero) as floats for the four chunks of one sub-block (dequantization) */
AVX2 static inline void
sub_values (const uint8_t *b, __m128i zv, __m256 w[4])
{
  const __m128i m4 = _mm_set1_epi8 (15);
  __m128i raw = _mm_loadu_si128 ((const __m128i *) b);
  __m128i lo = _mm_sub_epi8 (_mm_and_si128 (raw, m4), zv);
  __m128i hi = _mm_sub_epi8 (_mm_and_si128 (_mm_srli_epi16 (raw, 4), m4), zv);
  w[0] = _mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (lo));
  w[1] = _mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (_mm_srli_si128 (lo, 8)));
  w[2] = _mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (hi));
  w[3] = _mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (_mm_srli_si128 (hi, 8)));
}

AVX2 static void
int4_dequant_avx2 (const SutraQWeight *q, int r, int c0, int c1, float *dst)
{
  int G = q->group;
  const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
  int c = c0;
  while (c + SUTRA_Q4_SUB <= c1) {
    size_t gi = (size_t) r * q->ngroups + c / G;
    __m256 s = _mm256_set1_ps (q->scales[gi]);
    __m256 wv[4];
    sub_values (row + (size_t) c / 2, _mm_set1_epi8 ((char) q->zeros[gi]), wv);
    for (int k = 0; k < 4; k++)
      _mm256_storeu_ps (dst + (c - c0) + 8 * k, _mm256_mul_ps (wv[k], s));
    c += SUTRA_Q4_SUB;
  }
  if (c < c1)
    int4_dequant_scalar (q, r, c, c1, dst + (c - c0));
}
/* The integer dots: lane l (32-bit) = sum over bytes 4l..4l+3 of lo * xlo + hi * xhi, codes
 * unsigned (0..15), x codes signed. AVX2 forms it with maddubs (pair sums, at most 2 * 15 * 127
 * each, two of them added: no 16-bit saturation) and madd; VNNI with dpbusd. Same integers. */
AVX2 static inline __m256i
dot256_avx2 (__m256i lo, __m256i hi, __m256i xlo, __m256i xhi)
{
  __m256i t = _mm256_add_epi16 (_mm256_maddubs_epi16 (lo, xlo), _mm256_maddubs_epi16 (hi, xhi));
  return _mm256_madd_epi16 (t, _mm256_set1_epi16 (1));
}
AVX2 static inline __m128i
dot128_avx2 (__m128i lo, __m128i hi, __m128i xlo, __m128i xhi)
{
  __m128i t = _mm_add_epi16 (_mm_maddubs_epi16 (lo, xlo), _mm_maddubs_epi16 (hi, xhi));
  return _mm_madd_epi16 (t, _mm_set1_epi16 (1));
}
VNNI static inline __m256i
dot256_vnni (__m256i lo, __m256i hi, __m256i xlo, __m256i xhi)
{
  return _mm256_dpbusd_epi32 (_mm256_dpbusd_epi32 (_mm256_setzero_si256 (), lo, xlo), hi, xhi);
}
VNNI static inline __m128i
dot128_vnni (__m128i lo, __m128i hi, __m128i xlo, __m128i xhi)
{
  return _mm_dpbusd_epi32 (_mm_dpbusd_epi32 (_mm_setzero_si128 (), lo, xlo), hi, xhi);
}

/* INT4_Q8_KERNEL (name, target, dot256, dot128) defines name (the SqMatvecFn): a row at a
 * time, a pair of sub-blocks (one 32-byte load) per step. G = 64 / 128: a pair lies in one
 * group; G = 32: lanes 0..3 belong to group 2p, 4..7 to 2p + 1 (their scales and zero-point
 * rows blended), and an odd last sub-block takes the 128-bit path (lanes 0..3). D - z * S is
 * the float D minus the input's precomputed row zq[z] (all small integers, exact: the same
 * value as the integer expression), which costs one subtraction and no per-group broadcast of
 * z. Two pairs (a cache line of the row) per loop step, the row SQ_INT4_AHEAD ahead prefetched
 * once per step. One row at a time keeps the weights one sequential stream; the rows' pairs
 * are independent, so the out-of-order core overlaps them and only the accumulator's fma is a
 * chain. Measured streaming on 2 Zen 4 cores, in turns in one process: one row 23.0 GB/s, two
 * 20.6, four 20.2 (the same pass of INT8: 28.1, read bandwidth 32.9); prefetch 8 rows ahead vs
 * none: 11.7 vs 10.0 GB/s on one core. */
#define SQ_INT4_AHEAD 8
#define INT4_Q8_KERNEL(NAME, TARGET, DOT256, DOT128)                                          \
  /* acc + (sv * d) * (D - zs): zs the zero points' row(s) of x->zq for the pair's lanes */    \
  TARGET static inline __attribute__ ((always_inline)) __m256                                 \
  NAME##_pair (const SqInt4XPair *x, const uint8_t *w, __m256 sv, __m256 zs, __m256 acc)       \
  {                                                                                            \
    const __m256i m4 = _mm256_set1_epi8 (15);                                                  \
    __m256i raw = _mm256_loadu_si256 ((const __m256i *) w);                                    \
    __m256i lo = _mm256_and_si256 (raw, m4);                                                   \
    __m256i hi = _mm256_and_si256 (_mm256_srli_epi16 (raw, 4), m4);                            \
    __m256i D = DOT256 (lo, hi, _mm256_loadu_si256 ((const __m256i *) x->lo),                  \
                        _mm256_loadu_si256 ((const __m256i *) x->hi));                         \
    __m256 v = _mm256_sub_ps (_mm256_cvtepi32_ps (D), zs);                                     \
    return _mm256_fmadd_ps (_mm256_mul_ps (sv, _mm256_loadu_ps (x->d)), v, acc);               \
  }                                                                                            \
  TARGET static void NAME (const SutraQWeight *q, const float *xpf, float *y, int r0, int r1, \
                           bool accum)                                                         \
  {                                                                                            \
    const SqInt4XPair *xp = (const SqInt4XPair *) (const void *) xpf;                         \
    int G = q->group, nsub = sq_int4_nsub (q), npairs = nsub / 2;                              \
    for (int r = r0; r < r1; r++) {                                                            \
      const uint8_t *rw = q->qs + (size_t) r * q->row_bytes;                                   \
      const float *sc = q->scales + (size_t) r * q->ngroups;                                   \
      const uint8_t *zr = q->zeros + (size_t) r * q->ngroups;                                  \
      const uint8_t *pf = rw + (r + SQ_INT4_AHEAD < q->rows ? SQ_INT4_AHEAD : 0) * q->row_bytes; \
      __m256 acc = _mm256_setzero_ps ();                                                       \
      if (G == 64) { /* pair p is group p */                                                   \
        int p = 0;                                                                             \
        for (; p + 2 <= npairs; p += 2) {                                                      \
          __builtin_prefetch (pf + 32 * (size_t) p, 0, 3);                                     \
          acc = NAME##_pair (&xp[p], rw + 32 * (size_t) p, _mm256_set1_ps (sc[p]),            \
                             _mm256_loadu_ps (xp[p].zq[zr[p]]), acc);                          \
          acc = NAME##_pair (&xp[p + 1], rw + 32 * (size_t) p + 32, _mm256_set1_ps (sc[p + 1]), \
                             _mm256_loadu_ps (xp[p + 1].zq[zr[p + 1]]), acc);                  \
        }                                                                                      \
        if (p < npairs)                                                                        \
          acc = NAME##_pair (&xp[p], rw + 32 * (size_t) p, _mm256_set1_ps (sc[p]),            \
                             _mm256_loadu_ps (xp[p].zq[zr[p]]), acc);                          \
      } else if (G == 128) { /* group g is pairs 2g, 2g + 1 */                                 \
        for (int g = 0; g < q->ngroups; g++) {                                                 \
          __m256 sv = _mm256_set1_ps (sc[g]);                                                  \
          __builtin_prefetch (pf + 64 * (size_t) g, 0, 3);                                     \
          acc = NAME##_pair (&xp[2 * g], rw + 64 * (size_t) g, sv,                             \
                             _mm256_loadu_ps (xp[2 * g].zq[zr[g]]), acc);                      \
          acc = NAME##_pair (&xp[2 * g + 1], rw + 64 * (size_t) g + 32, sv,                    \
                             _mm256_loadu_ps (xp[2 * g + 1].zq[zr[g]]), acc);                  \
        }                                                                                      \
      } else { /* G = 32: lanes 0..3 group 2p, 4..7 group 2p + 1 */                            \
        for (int p = 0; p < npairs; p++) {                                                     \
          if (!(p & 1))                                                                        \
            __builtin_prefetch (pf + 32 * (size_t) p, 0, 3);                                   \
          const SqInt4XPair *x = &xp[p];                                                       \
          __m256 zs = _mm256_blend_ps (_mm256_loadu_ps (x->zq[zr[2 * p]]),                     \
                                       _mm256_loadu_ps (x->zq[zr[2 * p + 1]]), 0xF0);          \
          __m256 sv = _mm256_setr_m128 (_mm_set1_ps (sc[2 * p]), _mm_set1_ps (sc[2 * p + 1])); \
          acc = NAME##_pair (x, rw + 32 * (size_t) p, sv, zs, acc);                            \
        }                                                                                      \
        if (nsub & 1) { /* odd: the last sub-block alone, in lanes 0..3 */                     \
          const SqInt4XPair *x = &xp[npairs];                                                  \
          const __m128i m4 = _mm_set1_epi8 (15);                                               \
          int g = q->ngroups - 1;                                                              \
          __m128i raw = _mm_loadu_si128 ((const __m128i *) (rw + 32 * (size_t) npairs));       \
          __m128i lo = _mm_and_si128 (raw, m4);                                                \
          __m128i hi = _mm_and_si128 (_mm_srli_epi16 (raw, 4), m4);                            \
          __m128i D = DOT128 (lo, hi, _mm_loadu_si128 ((const __m128i *) x->lo),               \
                              _mm_loadu_si128 ((const __m128i *) x->hi));                      \
          __m128 v = _mm_sub_ps (_mm_cvtepi32_ps (D), _mm_loadu_ps (x->zq[zr[g]]));            \
          __m128 a = _mm_fmadd_ps (_mm_mul_ps (_mm_set1_ps (sc[g]), _mm_loadu_ps (x->d)), v,   \
                                   _mm256_castps256_ps128 (acc));                              \
          acc = _mm256_insertf128_ps (acc, a, 0);                                              \
        }                                                                                      \
      }                                                                                        \
      float v = hsum_avx (acc);                                                                \
      y[r] = accum ? y[r] + v : v;                                                             \
    }                                                                                          \
  }

INT4_Q8_KERNEL (int4_matvec_avx2, AVX2, dot256_avx2, dot128_avx2)
INT4_Q8_KERNEL (int4_matvec_vnni, VNNI, dot256_vnni, dot128_vnni)

/* The AVX-512 level without VNNI (Skylake-SP) runs the AVX2 kernel: same results. */
static void
int4_matvec_avx512 (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)
{
  if (sutra_cpu_has_avx512vnni ())
    int4_matvec_vnni (q, xp, y, r0, r1, accum);
  else
    int4_matvec_avx2 (q, xp, y, r0, r1, accum);
}
#endif

/* [2]: AVX-512 VNNI matvec (AVX2 without VNNI), AVX2 dequantization */
const SqKernels sutra_int4_kernels[3] = {
  { int4_matvec_scalar, int4_dequant_scalar },
#if defined(__x86_64__)
  { int4_matvec_avx2, int4_dequant_avx2 },
  { int4_matvec_avx512, int4_dequant_avx2 },
#else
  { NULL, NULL },
  { NULL, NULL },
#endif
};
