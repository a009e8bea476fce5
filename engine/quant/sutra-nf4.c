/* sutra-nf4.c: NF4 (QLoRA, Dettmers et al. 2023, section 3 and appendix E).
 *
 * Blocks of 64 values along a row; absmax c = max |w| of the block; each value becomes the index
 * of the nearest NF4 code to w / c (the code book holds 16 quantiles of N(0, 1) scaled to
 * [-1, 1], with an exact 0). Double quantization (QLoRA section 3, "Double Quantization";
 * bitsandbytes' compress_statistics) quantizes the absmax values themselves: per 256
 * consecutive blocks, 8-bit codes with an f32 scale and offset (linear, asymmetric:
 * absmax ~= code * scale + offset). The 4-bit codes are then chosen against the absmax as
 * dequantized, so the stored values are the nearest the format can express.
 *
 * Kernels (summation order in sutra-qmatmul.c's header comment): for each block a partial sum
 * p[16], value e of the block in lane e % 16, p = w x for the first 16, then p = fma (w, x, p);
 * acc[16] = fma (absmax, p, acc); y = hsum8 (acc[l] + acc[l + 8]). Sixteen lanes so that the
 * AVX-512 kernel holds them in one register and looks a sub-block's 16 low (then 16 high)
 * nibbles up in one vpermps; the AVX2 kernels keep lanes 0-7 and 8-15 in two registers (whose
 * chains then also overlap). The AVX2 lookup of the 16 codes is two permutes and a blend. */
#include "sutra-quant-private.h"
#include "sutra-pool.h"

#include <math.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

const float sutra_nf4_code[16] = {
  -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
  -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
  0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
  0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

/* Index of the nearest code to v in [-1, 1]: the number of midpoints below v (a value exactly
 * on a midpoint takes the lower code, as bitsandbytes' comparison tree does). */
static inline int
nf4_nearest (float v)
{
  int c = 0;
  for (int k = 0; k < 15; k++)
    c += v > 0.5f * (sutra_nf4_code[k] + sutra_nf4_code[k + 1]);
  return c;
}

/* ------------------------------------------------------------------------------------------ */
/* quantization                                                                               */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  SutraQWeight *q;
  const float *w;
  float *absmax;     /* [rows * ngroups]: pass 1 output (double quantization only) */
} Nf4Job;

/* absmax of group g of row r (the partial last group uses only its valid values) */
static float
group_absmax (const SutraQWeight *q, const float *w, int r, int g)
{
  const float *x = w + (size_t) r * q->cols + (size_t) g * SUTRA_NF4_GROUP;
  int n = q->cols - g * SUTRA_NF4_GROUP < SUTRA_NF4_GROUP ? q->cols - g * SUTRA_NF4_GROUP
                                                          : SUTRA_NF4_GROUP;
  float amax = 0.f;
  for (int i = 0; i < n; i++)
    amax = fmaxf (amax, fabsf (x[i]));
  return amax;
}

static void
absmax_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  Nf4Job *j = ctx;
  (void) ti;
  for (int64_t r = r0; r < r1; r++)
    for (int g = 0; g < j->q->ngroups; g++)
      j->absmax[r * j->q->ngroups + g] = group_absmax (j->q, j->w, (int) r, g);
}

static void
codes_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  Nf4Job *j = ctx;
  SutraQWeight *q = j->q;
  (void) ti;
  for (int64_t r = r0; r < r1; r++) {
    uint8_t *row = sq_qs_mut (q) + (size_t) r * q->row_bytes;
    for (int g = 0; g < q->ngroups; g++) {
      float d;
      if (q->p.double_quant) {
        d = sq_nf4_absmax (q, (int) r, g);
      } else {
        d = group_absmax (q, j->w, (int) r, g);
        sq_scales_mut (q)[r * q->ngroups + g] = d;
      }
      const float *x = j->w + (size_t) r * q->cols + (size_t) g * SUTRA_NF4_GROUP;
      int n = q->cols - g * SUTRA_NF4_GROUP < SUTRA_NF4_GROUP ? q->cols - g * SUTRA_NF4_GROUP
                                                              : SUTRA_NF4_GROUP;
      uint8_t *blk = row + (size_t) g * (SUTRA_NF4_GROUP / 2);
      for (int e = 0; e < n; e++)   /* padding keeps code 0 (the buffer starts zeroed) */
        sq_q4_set (blk, e, d > 0.f ? nf4_nearest (x[e] / d) : 7);   /* code 7 is exactly 0 */
    }
  }
}

/* Double quantization of absmax [n] in blocks of 256: offset = min, scale = (max - min) / 255. */
static void
double_quantize (SutraQWeight *q, const float *absmax)
{
  size_t n = (size_t) q->rows * q->ngroups;
  uint8_t *codes = (uint8_t *) q->absmax_q;
  float *sc = (float *) q->dq_scale, *off = (float *) q->dq_offset;
  for (size_t b = 0; b * SUTRA_NF4_DQ_BLOCK < n; b++) {
    size_t i0 = b * SUTRA_NF4_DQ_BLOCK, i1 = i0 + SUTRA_NF4_DQ_BLOCK < n ? i0 + SUTRA_NF4_DQ_BLOCK : n;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = i0; i < i1; i++) {
      lo = fminf (lo, absmax[i]);
      hi = fmaxf (hi, absmax[i]);
    }
    if (!(lo <= hi)) {          /* NaN weights: keep the block finite */
      lo = 0.f;
      hi = 0.f;
    }
    float s = (hi - lo) / 255.f;
    sc[b] = s;
    off[b] = lo;
    for (size_t i = i0; i < i1; i++) {
      float t = s > 0.f ? nearbyintf ((absmax[i] - lo) / s) : 0.f;
      if (!(t >= 0.f))
        t = 0.f;
      codes[i] = (uint8_t) (t > 255.f ? 255 : (int) t);
    }
  }
}

SutraStatus
sutra_nf4_quantize_rows (SutraQWeight *q, const float *w, SutraError *err)
{
  Nf4Job j = { q, w, NULL };
  int64_t grain = 1 + 65536 / q->cols;
  if (q->p.double_quant) {
    j.absmax = sutra_try_alloc (sizeof (float) * (size_t) q->rows * q->ngroups, "nf4 absmax", err);
    if (!j.absmax)
      return SUTRA_ERR_NOMEM;
    sutra_parallel_for (q->rows, grain, absmax_range, &j);
    double_quantize (q, j.absmax);
    sutra_aligned_free (j.absmax);
  }
  sutra_parallel_for (q->rows, grain, codes_range, &j);
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* reference (naive) row dot and the scalar kernels                                           */
/* ------------------------------------------------------------------------------------------ */

float
sutra_nf4_row_dot_naive (const SutraQWeight *q, int r, const float *xp)
{
  const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
  float acc[16] = { 0 }, a8[8];
  for (int g = 0; g < q->ngroups; g++) {
    const uint8_t *blk = row + (size_t) g * (SUTRA_NF4_GROUP / 2);
    const float *x = xp + (size_t) g * SUTRA_NF4_GROUP;
    float p[16];
    /* element e joins lane e % 16; the first 16 start the sums with a product */
    for (int e = 0; e < SUTRA_NF4_GROUP; e++) {
      float wv = sutra_nf4_code[sq_q4_code (blk, e)];
      p[e % 16] = e < 16 ? wv * x[e] : fmaf (wv, x[e], p[e % 16]);
    }
    float d = sq_nf4_absmax (q, r, g);
    for (int l = 0; l < 16; l++)
      acc[l] = fmaf (d, p[l], acc[l]);
  }
  for (int l = 0; l < 8; l++)
    a8[l] = acc[l] + acc[l + 8];
  return sq_hsum8 (a8);
}

static void
nf4_matvec_scalar (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)
{
  for (int r = r0; r < r1; r++) {
    const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
    float acc[16] = { 0 }, a8[8];
    for (int g = 0; g < q->ngroups; g++) {
      const uint8_t *blk = row + (size_t) g * (SUTRA_NF4_GROUP / 2);
      const float *x = xp + (size_t) g * SUTRA_NF4_GROUP;
      float p[16];
      /* chunk c = sub-block c / 4; within it: low nibbles of bytes 0-7, 8-15, high of 0-7, 8-15;
       * its elements are 32 (c / 4) + 16 ((c >> 1) & 1) + 8 (c & 1) + l: lanes 8 (c & 1) + l */
      for (int c = 0; c < 8; c++) {
        const uint8_t *b = blk + (c / 4) * 16 + (c & 1) * 8;
        int shift = (c & 2) ? 4 : 0;
        float *pc = p + 8 * (c & 1);
        const float *xc = x + 32 * (c / 4) + 16 * ((c >> 1) & 1) + 8 * (c & 1);
        for (int l = 0; l < 8; l++) {
          float wv = sutra_nf4_code[(b[l] >> shift) & 15];
          pc[l] = c < 2 ? wv * xc[l] : fmaf (wv, xc[l], pc[l]);
        }
      }
      float d = sq_nf4_absmax (q, r, g);
      for (int l = 0; l < 16; l++)
        acc[l] = fmaf (d, p[l], acc[l]);
    }
    for (int l = 0; l < 8; l++)
      a8[l] = acc[l] + acc[l + 8];
    float v = sq_hsum8 (a8);
    y[r] = accum ? y[r] + v : v;
  }
}

static void
nf4_dequant_scalar (const SutraQWeight *q, int r, int c0, int c1, float *dst)
{
  const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
  for (int c = c0; c < c1;) {
    int g = c / SUTRA_NF4_GROUP;
    float d = sq_nf4_absmax (q, r, g);
    const uint8_t *blk = row + (size_t) g * (SUTRA_NF4_GROUP / 2);
    int end = (g + 1) * SUTRA_NF4_GROUP < c1 ? (g + 1) * SUTRA_NF4_GROUP : c1;
    for (; c < end; c++)
      dst[c - c0] = sutra_nf4_code[sq_q4_code (blk, c - g * SUTRA_NF4_GROUP)] * d;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* AVX2 / FMA                                                                                 */
/* ------------------------------------------------------------------------------------------ */
#if defined(__x86_64__)
#define AVX2 __attribute__ ((target ("avx2,fma")))

/* the 16-entry code book lookup: low 3 bits through two permutes, bit 3 picks the half */
AVX2 static inline __m256
nf4_lut (__m256i idx, __m256 tlo, __m256 thi)
{
  __m256 lo = _mm256_permutevar8x32_ps (tlo, idx);
  __m256 hi = _mm256_permutevar8x32_ps (thi, idx);
  return _mm256_blendv_ps (lo, hi, _mm256_castsi256_ps (_mm256_slli_epi32 (idx, 28)));
}

/* hsum8 in the documented order */
AVX2 static inline float
hsum_avx (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  __m128 t = _mm_add_ps (s, _mm_movehl_ps (s, s));
  return _mm_cvtss_f32 (_mm_add_ss (t, _mm_shuffle_ps (t, t, 1)));
}

/* The kernels, generated once per instruction set from the code book lookup LUT (same lanes,
 * same order, same results for every LUT).
 *
 * SUB_DOT: p = sum over the four chunks of sub-block b (x: its 32 inputs), continuing p unless
 * first. Byte j of the sub-block holds code j (low nibble) and code j + 16 (high nibble). The
 * lookups read only the low 4 bits of each 32-bit index (AVX2 permutes: bits 0-2, the half
 * select: bit 3 shifted to the sign; vpermt2ps: bits 0-3), so the zero-extended bytes serve as
 * the indices of codes 0-15 as they are, and shifted right by 4 as those of codes 16-31: no
 * masking, two byte spreads instead of four plus two byte shifts.
 *
 * MATVEC (AVX2): each block's partial sums (lanes 0-7 and 8-15) are chains of their own; only
 * acc carries from block to block, so the out-of-order core overlaps blocks, and two rows
 * interleaved (sharing the x loads) give it more to overlap. The row pair SQ_PREFETCH_ROWS
 * ahead is prefetched group by group.
 *
 * DEQUANT: whole sub-blocks of 32 vectorised, the partial tail of a row scalar. */
#define NF4_MATVEC_KERNEL(ATTR, LUT, SUB_DOT, MATVEC)                                          \
ATTR static inline __attribute__ ((always_inline)) void                                       \
SUB_DOT (const uint8_t *b, const float *x, __m256 *p0, __m256 *p1, bool first, __m256 tlo,    \
         __m256 thi)                                                                          \
{                                                                                             \
  __m256i b0 = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) b));                  \
  __m256i b1 = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) (b + 8)));            \
  __m256 w0 = LUT (b0, tlo, thi), w1 = LUT (b1, tlo, thi);                                    \
  *p0 = first ? _mm256_mul_ps (w0, _mm256_loadu_ps (x))                                       \
              : _mm256_fmadd_ps (w0, _mm256_loadu_ps (x), *p0);                               \
  *p1 = first ? _mm256_mul_ps (w1, _mm256_loadu_ps (x + 8))                                   \
              : _mm256_fmadd_ps (w1, _mm256_loadu_ps (x + 8), *p1);                           \
  *p0 = _mm256_fmadd_ps (LUT (_mm256_srli_epi32 (b0, 4), tlo, thi), _mm256_loadu_ps (x + 16), *p0); \
  *p1 = _mm256_fmadd_ps (LUT (_mm256_srli_epi32 (b1, 4), tlo, thi), _mm256_loadu_ps (x + 24), *p1); \
}                                                                                             \
                                                                                              \
ATTR static void                                                                              \
MATVEC (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)         \
{                                                                                             \
  const __m256 tlo = _mm256_loadu_ps (sutra_nf4_code), thi = _mm256_loadu_ps (sutra_nf4_code + 8); \
  int r = r0;                                                                                 \
  for (; r + 2 <= r1; r += 2) {                                                               \
    const uint8_t *ra = q->qs + (size_t) r * q->row_bytes, *rb = ra + q->row_bytes;           \
    __m256 a0 = _mm256_setzero_ps (), a1 = a0, b0 = a0, b1 = a0;                              \
    for (int g = 0; g < q->ngroups; g++) {                                                    \
      const float *x = xp + (size_t) g * SUTRA_NF4_GROUP;                                     \
      sq_prefetch_ahead (q, r + SQ_PREFETCH_ROWS, g);                                         \
      __m256 pa0, pa1, pb0, pb1;                                                              \
      SUB_DOT (ra + (size_t) g * 32, x, &pa0, &pa1, true, tlo, thi);                          \
      SUB_DOT (rb + (size_t) g * 32, x, &pb0, &pb1, true, tlo, thi);                          \
      SUB_DOT (ra + (size_t) g * 32 + 16, x + 32, &pa0, &pa1, false, tlo, thi);               \
      SUB_DOT (rb + (size_t) g * 32 + 16, x + 32, &pb0, &pb1, false, tlo, thi);               \
      __m256 da = _mm256_set1_ps (sq_nf4_absmax (q, r, g));                                   \
      __m256 db = _mm256_set1_ps (sq_nf4_absmax (q, r + 1, g));                               \
      a0 = _mm256_fmadd_ps (da, pa0, a0);                                                     \
      a1 = _mm256_fmadd_ps (da, pa1, a1);                                                     \
      b0 = _mm256_fmadd_ps (db, pb0, b0);                                                     \
      b1 = _mm256_fmadd_ps (db, pb1, b1);                                                     \
    }                                                                                         \
    float va = hsum_avx (_mm256_add_ps (a0, a1)), vb = hsum_avx (_mm256_add_ps (b0, b1));     \
    y[r] = accum ? y[r] + va : va;                                                            \
    y[r + 1] = accum ? y[r + 1] + vb : vb;                                                    \
  }                                                                                           \
  for (; r < r1; r++) {                                                                       \
    const uint8_t *row = q->qs + (size_t) r * q->row_bytes;                                   \
    __m256 a0 = _mm256_setzero_ps (), a1 = a0;                                                \
    for (int g = 0; g < q->ngroups; g++) {                                                    \
      const uint8_t *b = row + (size_t) g * 32;                                               \
      const float *x = xp + (size_t) g * SUTRA_NF4_GROUP;                                     \
      __m256 p0, p1;                                                                          \
      SUB_DOT (b, x, &p0, &p1, true, tlo, thi);                                               \
      SUB_DOT (b + 16, x + 32, &p0, &p1, false, tlo, thi);                                    \
      __m256 d = _mm256_set1_ps (sq_nf4_absmax (q, r, g));                                    \
      a0 = _mm256_fmadd_ps (d, p0, a0);                                                       \
      a1 = _mm256_fmadd_ps (d, p1, a1);                                                       \
    }                                                                                         \
    float v = hsum_avx (_mm256_add_ps (a0, a1));                                              \
    y[r] = accum ? y[r] + v : v;                                                              \
  }                                                                                           \
}

#define NF4_DEQUANT_KERNEL(ATTR, LUT, DEQUANT)                                                 \
ATTR static void                                                                              \
DEQUANT (const SutraQWeight *q, int r, int c0, int c1, float *dst)                            \
{                                                                                             \
  const __m256 tlo = _mm256_loadu_ps (sutra_nf4_code), thi = _mm256_loadu_ps (sutra_nf4_code + 8); \
  const uint8_t *row = q->qs + (size_t) r * q->row_bytes;                                     \
  int c = c0;                                                                                 \
  while (c + SUTRA_Q4_SUB <= c1) {                                                            \
    __m256 d = _mm256_set1_ps (sq_nf4_absmax (q, r, c / SUTRA_NF4_GROUP));                    \
    const uint8_t *b = row + (size_t) c / 2;                                                  \
    __m256i b0 = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) b));                \
    __m256i b1 = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) (b + 8)));          \
    __m256i idx[4] = { b0, b1, _mm256_srli_epi32 (b0, 4), _mm256_srli_epi32 (b1, 4) };        \
    for (int k = 0; k < 4; k++)                                                               \
      _mm256_storeu_ps (dst + (c - c0) + 8 * k, _mm256_mul_ps (LUT (idx[k], tlo, thi), d));   \
    c += SUTRA_Q4_SUB;                                                                        \
  }                                                                                           \
  if (c < c1)                                                                                 \
    nf4_dequant_scalar (q, r, c, c1, dst + (c - c0));                                         \
}

NF4_MATVEC_KERNEL (AVX2, nf4_lut, nf4_sub_dot, nf4_matvec_avx2)
NF4_DEQUANT_KERNEL (AVX2, nf4_lut, nf4_dequant_avx2)

/* AVX-512VL dequantization: the lookup done by one two-table permute (vpermt2ps on 8 lanes),
 * same values as the AVX2 lookup. */
#define AVX512 __attribute__ ((target ("avx2,fma,avx512f,avx512vl")))

AVX512 static inline __m256
nf4_lut512 (__m256i idx, __m256 tlo, __m256 thi)
{
  return _mm256_permutex2var_ps (tlo, idx, thi);
}

NF4_DEQUANT_KERNEL (AVX512, nf4_lut512, nf4_dequant_avx512)

/* AVX-512F matvec on 16 lanes: the order's 16 lanes are one register, and a sub-block is two
 * lookups: the zero-extended bytes index the 16-entry code book in one vpermps (it reads bits
 * 0-3 of each index: the low nibbles, elements 0..15) and shifted right by 4 the high nibbles
 * (elements 16..31). Half the lookups and fmas of the 8-lane kernels, same results. */
AVX512 static inline __attribute__ ((always_inline)) __m512
nf4_sub_dot_zmm (const uint8_t *b, const float *x, __m512 p, bool first, __m512 book)
{
  __m512i idx = _mm512_cvtepu8_epi32 (_mm_loadu_si128 ((const __m128i *) b));
  __m512 w0 = _mm512_permutexvar_ps (idx, book);
  p = first ? _mm512_mul_ps (w0, _mm512_loadu_ps (x)) : _mm512_fmadd_ps (w0, _mm512_loadu_ps (x), p);
  __m512 w1 = _mm512_permutexvar_ps (_mm512_srli_epi32 (idx, 4), book);
  return _mm512_fmadd_ps (w1, _mm512_loadu_ps (x + 16), p);
}

/* acc[l] + acc[l + 8], then hsum8 */
AVX512 static inline float
hsum16 (__m512 acc)
{
  __m256 hi = _mm256_castpd_ps (_mm512_extractf64x4_pd (_mm512_castps_pd (acc), 1));
  return hsum_avx (_mm256_add_ps (_mm512_castps512_ps256 (acc), hi));
}

AVX512 static void
nf4_matvec_avx512 (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)
{
  const __m512 book = _mm512_loadu_ps (sutra_nf4_code);
  int r = r0;
  for (; r + 2 <= r1; r += 2) {   /* two rows interleaved, as the 8-lane kernels */
    const uint8_t *ra = q->qs + (size_t) r * q->row_bytes, *rb = ra + q->row_bytes;
    __m512 acca = _mm512_setzero_ps (), accb = acca;
    for (int g = 0; g < q->ngroups; g++) {
      const float *x = xp + (size_t) g * SUTRA_NF4_GROUP;
      sq_prefetch_ahead (q, r + SQ_PREFETCH_ROWS, g);
      __m512 pa = nf4_sub_dot_zmm (ra + (size_t) g * 32, x, _mm512_setzero_ps (), true, book);
      __m512 pb = nf4_sub_dot_zmm (rb + (size_t) g * 32, x, _mm512_setzero_ps (), true, book);
      pa = nf4_sub_dot_zmm (ra + (size_t) g * 32 + 16, x + 32, pa, false, book);
      pb = nf4_sub_dot_zmm (rb + (size_t) g * 32 + 16, x + 32, pb, false, book);
      acca = _mm512_fmadd_ps (_mm512_set1_ps (sq_nf4_absmax (q, r, g)), pa, acca);
      accb = _mm512_fmadd_ps (_mm512_set1_ps (sq_nf4_absmax (q, r + 1, g)), pb, accb);
    }
    float va = hsum16 (acca), vb = hsum16 (accb);
    y[r] = accum ? y[r] + va : va;
    y[r + 1] = accum ? y[r + 1] + vb : vb;
  }
  for (; r < r1; r++) {
    const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
    __m512 acc = _mm512_setzero_ps ();
    for (int g = 0; g < q->ngroups; g++) {
      const float *x = xp + (size_t) g * SUTRA_NF4_GROUP;
      __m512 p = nf4_sub_dot_zmm (row + (size_t) g * 32, x, _mm512_setzero_ps (), true, book);
      p = nf4_sub_dot_zmm (row + (size_t) g * 32 + 16, x + 32, p, false, book);
      acc = _mm512_fmadd_ps (_mm512_set1_ps (sq_nf4_absmax (q, r, g)), p, acc);
    }
    float v = hsum16 (acc);
    y[r] = accum ? y[r] + v : v;
  }
}
#endif

const SqKernels sutra_nf4_kernels[3] = {
  { nf4_matvec_scalar, nf4_dequant_scalar },
#if defined(__x86_64__)
  { nf4_matvec_avx2, nf4_dequant_avx2 },
  { nf4_matvec_avx512, nf4_dequant_avx512 },
#else
  { NULL, NULL },
  { NULL, NULL },
#endif
};
