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
 * Kernels (summation order in sutra-qmatvec.c's header comment): for each block a partial sum
 * p[8] over its 8 chunks of 8 values, p = w x, then p = fma (w, x, p); acc = fma (absmax, p,
 * acc); y = hsum8 (acc). The AVX2 lookup of the 16 codes is two permutes and a blend. */
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
  float acc[8] = { 0 };
  for (int g = 0; g < q->ngroups; g++) {
    const uint8_t *blk = row + (size_t) g * (SUTRA_NF4_GROUP / 2);
    const float *x = xp + (size_t) g * SUTRA_NF4_GROUP;
    float p[8];
    /* element e joins lane e % 8; the first chunk starts the sums with a product */
    for (int e = 0; e < SUTRA_NF4_GROUP; e++) {
      float wv = sutra_nf4_code[sq_q4_code (blk, e)];
      p[e % 8] = e < 8 ? wv * x[e] : fmaf (wv, x[e], p[e % 8]);
    }
    float d = sq_nf4_absmax (q, r, g);
    for (int l = 0; l < 8; l++)
      acc[l] = fmaf (d, p[l], acc[l]);
  }
  return sq_hsum8 (acc);
}

static void
nf4_matvec_scalar (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)
{
  for (int r = r0; r < r1; r++) {
    const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
    float acc[8] = { 0 };
    for (int g = 0; g < q->ngroups; g++) {
      const uint8_t *blk = row + (size_t) g * (SUTRA_NF4_GROUP / 2);
      const float *x = xp + (size_t) g * SUTRA_NF4_GROUP;
      float p[8];
      /* chunk c = sub-block c / 4; within it: low nibbles of bytes 0-7, 8-15, high of 0-7, 8-15 */
      for (int c = 0; c < 8; c++) {
        const uint8_t *b = blk + (c / 4) * 16 + (c & 1) * 8;
        int shift = (c & 2) ? 4 : 0;
        for (int l = 0; l < 8; l++) {
          float wv = sutra_nf4_code[(b[l] >> shift) & 15];
          p[l] = c == 0 ? wv * x[8 * c + l] : fmaf (wv, x[8 * c + l], p[l]);
        }
      }
      float d = sq_nf4_absmax (q, r, g);
      for (int l = 0; l < 8; l++)
        acc[l] = fmaf (d, p[l], acc[l]);
    }
    float v = sq_hsum8 (acc);
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
 * MATVEC: each block's partial sum is a chain of its own; only acc carries from block to block,
 * so the out-of-order core overlaps blocks, and two rows interleaved (sharing the x loads) give
 * it more to overlap. The row pair SQ_PREFETCH_ROWS ahead is prefetched group by group.
 *
 * DEQUANT: whole sub-blocks of 32 vectorised, the partial tail of a row scalar. */
#define NF4_KERNELS(ATTR, LUT, SUB_DOT, MATVEC, DEQUANT)                                       \
ATTR static inline __attribute__ ((always_inline)) __m256                                     \
SUB_DOT (const uint8_t *b, const float *x, __m256 p, bool first, __m256 tlo, __m256 thi)      \
{                                                                                             \
  __m256i b0 = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) b));                  \
  __m256i b1 = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) (b + 8)));            \
  __m256 w0 = LUT (b0, tlo, thi);                                                             \
  p = first ? _mm256_mul_ps (w0, _mm256_loadu_ps (x))                                         \
            : _mm256_fmadd_ps (w0, _mm256_loadu_ps (x), p);                                   \
  p = _mm256_fmadd_ps (LUT (b1, tlo, thi), _mm256_loadu_ps (x + 8), p);                       \
  p = _mm256_fmadd_ps (LUT (_mm256_srli_epi32 (b0, 4), tlo, thi), _mm256_loadu_ps (x + 16), p); \
  p = _mm256_fmadd_ps (LUT (_mm256_srli_epi32 (b1, 4), tlo, thi), _mm256_loadu_ps (x + 24), p); \
  return p;                                                                                   \
}                                                                                             \
                                                                                              \
ATTR static void                                                                              \
MATVEC (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)         \
{                                                                                             \
  const __m256 tlo = _mm256_loadu_ps (sutra_nf4_code), thi = _mm256_loadu_ps (sutra_nf4_code + 8); \
  int r = r0;                                                                                 \
  for (; r + 2 <= r1; r += 2) {                                                               \
    const uint8_t *ra = q->qs + (size_t) r * q->row_bytes, *rb = ra + q->row_bytes;           \
    __m256 acca = _mm256_setzero_ps (), accb = _mm256_setzero_ps ();                          \
    for (int g = 0; g < q->ngroups; g++) {                                                    \
      const float *x = xp + (size_t) g * SUTRA_NF4_GROUP;                                     \
      sq_prefetch_ahead (q, r + SQ_PREFETCH_ROWS, g);                                         \
      __m256 pa = SUB_DOT (ra + (size_t) g * 32, x, _mm256_setzero_ps (), true, tlo, thi);    \
      __m256 pb = SUB_DOT (rb + (size_t) g * 32, x, _mm256_setzero_ps (), true, tlo, thi);    \
      pa = SUB_DOT (ra + (size_t) g * 32 + 16, x + 32, pa, false, tlo, thi);                  \
      pb = SUB_DOT (rb + (size_t) g * 32 + 16, x + 32, pb, false, tlo, thi);                  \
      acca = _mm256_fmadd_ps (_mm256_set1_ps (sq_nf4_absmax (q, r, g)), pa, acca);            \
      accb = _mm256_fmadd_ps (_mm256_set1_ps (sq_nf4_absmax (q, r + 1, g)), pb, accb);        \
    }                                                                                         \
    float va = hsum_avx (acca), vb = hsum_avx (accb);                                         \
    y[r] = accum ? y[r] + va : va;                                                            \
    y[r + 1] = accum ? y[r + 1] + vb : vb;                                                    \
  }                                                                                           \
  for (; r < r1; r++) {                                                                       \
    const uint8_t *row = q->qs + (size_t) r * q->row_bytes;                                   \
    __m256 acc = _mm256_setzero_ps ();                                                        \
    for (int g = 0; g < q->ngroups; g++) {                                                    \
      const uint8_t *b = row + (size_t) g * 32;                                               \
      const float *x = xp + (size_t) g * SUTRA_NF4_GROUP;                                     \
      __m256 p = SUB_DOT (b, x, _mm256_setzero_ps (), true, tlo, thi);                        \
      p = SUB_DOT (b + 16, x + 32, p, false, tlo, thi);                                       \
      acc = _mm256_fmadd_ps (_mm256_set1_ps (sq_nf4_absmax (q, r, g)), p, acc);               \
    }                                                                                         \
    float v = hsum_avx (acc);                                                                 \
    y[r] = accum ? y[r] + v : v;                                                              \
  }                                                                                           \
}                                                                                             \
                                                                                              \
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

NF4_KERNELS (AVX2, nf4_lut, nf4_sub_dot, nf4_matvec_avx2, nf4_dequant_avx2)

/* AVX-512VL: the same kernel with the lookup done by one two-table permute (vpermt2ps on
 * 8 lanes), same lanes, same order, same results. */
#define AVX512 __attribute__ ((target ("avx2,fma,avx512f,avx512vl")))

AVX512 static inline __m256
nf4_lut512 (__m256i idx, __m256 tlo, __m256 thi)
{
  return _mm256_permutex2var_ps (tlo, idx, thi);
}

NF4_KERNELS (AVX512, nf4_lut512, nf4_sub_dot512, nf4_matvec_avx512, nf4_dequant_avx512)
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
