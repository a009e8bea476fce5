/* sutra-int4.c: INT4 group-wise asymmetric quantization (the layout GPTQ and AWQ checkpoints
 * use: per group of G values a scale and an integer zero point, value = (code - zero) * scale).
 *
 * Group parameters follow GPTQ's quantizer (Frantar et al. 2022, reference gptq/quant.py
 * find_params): the range [min, max] of the group is widened to contain 0, scale = (max - min)
 * / 15, zero = round (-min / scale), code = clamp (round (w / scale) + zero, 0, 15). Round to
 * nearest applies that to every group; GPTQ and AWQ (sutra-qcalib.c) reuse it.
 *
 * Kernels: per group a partial sum p[8] over its G/8 chunks of (code - zero) * x (the first
 * chunk a product, then fma), acc = fma (scale, p, acc), y = hsum8 (acc). (code - zero) is a
 * small integer, exact in float, formed in the byte domain by the AVX2 path. */
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
/* reference (naive) row dot and the scalar kernels                                           */
/* ------------------------------------------------------------------------------------------ */

float
sutra_int4_row_dot_naive (const SutraQWeight *q, int r, const float *xp)
{
  int G = q->group;
  const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
  float acc[8] = { 0 };
  for (int g = 0; g < q->ngroups; g++) {
    size_t gi = (size_t) r * q->ngroups + g;
    int z = q->zeros[gi];
    const uint8_t *blk = row + (size_t) g * G / 2;
    const float *x = xp + (size_t) g * G;
    float p[8];
    for (int e = 0; e < G; e++) {
      float wv = (float) (sq_q4_code (blk, e) - z);
      p[e % 8] = e < 8 ? wv * x[e] : fmaf (wv, x[e], p[e % 8]);
    }
    for (int l = 0; l < 8; l++)
      acc[l] = fmaf (q->scales[gi], p[l], acc[l]);
  }
  return sq_hsum8 (acc);
}

static void
int4_matvec_scalar (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)
{
  int G = q->group, chunks = G / 8;
  for (int r = r0; r < r1; r++) {
    const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
    float acc[8] = { 0 };
    for (int g = 0; g < q->ngroups; g++) {
      size_t gi = (size_t) r * q->ngroups + g;
      int z = q->zeros[gi];
      const uint8_t *blk = row + (size_t) g * G / 2;
      const float *x = xp + (size_t) g * G;
      float p[8];
      for (int c = 0; c < chunks; c++) {
        const uint8_t *b = blk + (c / 4) * 16 + (c & 1) * 8;
        int shift = (c & 2) ? 4 : 0;
        for (int l = 0; l < 8; l++) {
          float wv = (float) (((b[l] >> shift) & 15) - z);
          p[l] = c == 0 ? wv * x[8 * c + l] : fmaf (wv, x[8 * c + l], p[l]);
        }
      }
      for (int l = 0; l < 8; l++)
        acc[l] = fmaf (q->scales[gi], p[l], acc[l]);
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
/* AVX2 / FMA                                                                                 */
/* ------------------------------------------------------------------------------------------ */
#if defined(__x86_64__)
#define AVX2 __attribute__ ((target ("avx2,fma")))

AVX2 static inline float
hsum_avx (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  __m128 t = _mm_add_ps (s, _mm_movehl_ps (s, s));
  return _mm_cvtss_f32 (_mm_add_ss (t, _mm_shuffle_ps (t, t, 1)));
}

/* (code - zero) as floats for the four chunks of one sub-block */
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

/* p (+)= the group's G/32 sub-blocks of (code - zero) . x, starting the chain with a product */
AVX2 static inline __attribute__ ((always_inline)) __m256
int4_group_dot (const uint8_t *b, const float *x, int subs, __m128i zv)
{
  __m256 w[4];
  sub_values (b, zv, w);
  __m256 p = _mm256_mul_ps (w[0], _mm256_loadu_ps (x));
  p = _mm256_fmadd_ps (w[1], _mm256_loadu_ps (x + 8), p);
  p = _mm256_fmadd_ps (w[2], _mm256_loadu_ps (x + 16), p);
  p = _mm256_fmadd_ps (w[3], _mm256_loadu_ps (x + 24), p);
  for (int s = 1; s < subs; s++) {
    sub_values (b + 16 * s, zv, w);
    p = _mm256_fmadd_ps (w[0], _mm256_loadu_ps (x + 32 * s), p);
    p = _mm256_fmadd_ps (w[1], _mm256_loadu_ps (x + 32 * s + 8), p);
    p = _mm256_fmadd_ps (w[2], _mm256_loadu_ps (x + 32 * s + 16), p);
    p = _mm256_fmadd_ps (w[3], _mm256_loadu_ps (x + 32 * s + 24), p);
  }
  return p;
}

/* two rows at a time (interleaved chains, shared x loads), then the odd one */
AVX2 static void
int4_matvec_avx2 (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)
{
  int G = q->group, subs = G / SUTRA_Q4_SUB;
  int r = r0;
  for (; r + 2 <= r1; r += 2) {
    const uint8_t *ra = q->qs + (size_t) r * q->row_bytes, *rb = ra + q->row_bytes;
    const float *sa = q->scales + (size_t) r * q->ngroups, *sb = sa + q->ngroups;
    const uint8_t *za = q->zeros + (size_t) r * q->ngroups, *zb = za + q->ngroups;
    __m256 acca = _mm256_setzero_ps (), accb = _mm256_setzero_ps ();
    for (int g = 0; g < q->ngroups; g++) {
      const float *x = xp + (size_t) g * G;
      sq_prefetch_ahead (q, r + SQ_PREFETCH_ROWS, g);
      __m256 pa = int4_group_dot (ra + (size_t) g * G / 2, x, subs, _mm_set1_epi8 ((char) za[g]));
      __m256 pb = int4_group_dot (rb + (size_t) g * G / 2, x, subs, _mm_set1_epi8 ((char) zb[g]));
      acca = _mm256_fmadd_ps (_mm256_set1_ps (sa[g]), pa, acca);
      accb = _mm256_fmadd_ps (_mm256_set1_ps (sb[g]), pb, accb);
    }
    float va = hsum_avx (acca), vb = hsum_avx (accb);
    y[r] = accum ? y[r] + va : va;
    y[r + 1] = accum ? y[r + 1] + vb : vb;
  }
  for (; r < r1; r++) {
    const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
    const float *sc = q->scales + (size_t) r * q->ngroups;
    const uint8_t *zr = q->zeros + (size_t) r * q->ngroups;
    __m256 acc = _mm256_setzero_ps ();
    for (int g = 0; g < q->ngroups; g++) {
      __m256 p = int4_group_dot (row + (size_t) g * G / 2, xp + (size_t) g * G, subs,
                                 _mm_set1_epi8 ((char) zr[g]));
      acc = _mm256_fmadd_ps (_mm256_set1_ps (sc[g]), p, acc);
    }
    float v = hsum_avx (acc);
    y[r] = accum ? y[r] + v : v;
  }
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
/* AVX-512VL: (code - zero) looked up instead of computed: per group a 16-entry table
 * {0 - zero, ..., 15 - zero} (exact small integers) in two registers, and the two-table permute
 * vpermt2ps, which reads only bits 0-3 of each 32-bit index, so zero-extended bytes index the
 * low-nibble codes as they are and shifted right by 4 the high ones. Same values, same order,
 * same results as the AVX2 kernel; fewer byte shuffles and no int-to-float conversions. */
#define AVX512 __attribute__ ((target ("avx2,fma,avx512f,avx512vl")))

AVX512 static inline __attribute__ ((always_inline)) __m256
int4_group_dot512 (const uint8_t *b, const float *x, int subs, __m256 tlo, __m256 thi)
{
  __m256 p = _mm256_setzero_ps ();
  for (int s = 0; s < subs; s++) {
    const uint8_t *bs = b + 16 * s;
    const float *xs = x + 32 * s;
    __m256i b0 = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) bs));
    __m256i b1 = _mm256_cvtepu8_epi32 (_mm_loadl_epi64 ((const __m128i *) (bs + 8)));
    __m256 w0 = _mm256_permutex2var_ps (tlo, b0, thi);
    p = s == 0 ? _mm256_mul_ps (w0, _mm256_loadu_ps (xs)) : _mm256_fmadd_ps (w0, _mm256_loadu_ps (xs), p);
    p = _mm256_fmadd_ps (_mm256_permutex2var_ps (tlo, b1, thi), _mm256_loadu_ps (xs + 8), p);
    p = _mm256_fmadd_ps (_mm256_permutex2var_ps (tlo, _mm256_srli_epi32 (b0, 4), thi),
                         _mm256_loadu_ps (xs + 16), p);
    p = _mm256_fmadd_ps (_mm256_permutex2var_ps (tlo, _mm256_srli_epi32 (b1, 4), thi),
                         _mm256_loadu_ps (xs + 24), p);
  }
  return p;
}

AVX512 static void
int4_matvec_avx512 (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)
{
  int G = q->group, subs = G / SUTRA_Q4_SUB;
  const __m256 ilo = _mm256_setr_ps (0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 ihi = _mm256_setr_ps (8, 9, 10, 11, 12, 13, 14, 15);
  int r = r0;
  for (; r + 2 <= r1; r += 2) {
    const uint8_t *ra = q->qs + (size_t) r * q->row_bytes, *rb = ra + q->row_bytes;
    const float *sa = q->scales + (size_t) r * q->ngroups, *sb = sa + q->ngroups;
    const uint8_t *za = q->zeros + (size_t) r * q->ngroups, *zb = za + q->ngroups;
    __m256 acca = _mm256_setzero_ps (), accb = _mm256_setzero_ps ();
    for (int g = 0; g < q->ngroups; g++) {
      const float *x = xp + (size_t) g * G;
      sq_prefetch_ahead (q, r + SQ_PREFETCH_ROWS, g);
      __m256 zfa = _mm256_set1_ps ((float) za[g]), zfb = _mm256_set1_ps ((float) zb[g]);
      __m256 pa = int4_group_dot512 (ra + (size_t) g * G / 2, x, subs, _mm256_sub_ps (ilo, zfa),
                                     _mm256_sub_ps (ihi, zfa));
      __m256 pb = int4_group_dot512 (rb + (size_t) g * G / 2, x, subs, _mm256_sub_ps (ilo, zfb),
                                     _mm256_sub_ps (ihi, zfb));
      acca = _mm256_fmadd_ps (_mm256_set1_ps (sa[g]), pa, acca);
      accb = _mm256_fmadd_ps (_mm256_set1_ps (sb[g]), pb, accb);
    }
    float va = hsum_avx (acca), vb = hsum_avx (accb);
    y[r] = accum ? y[r] + va : va;
    y[r + 1] = accum ? y[r + 1] + vb : vb;
  }
  for (; r < r1; r++) {
    const uint8_t *row = q->qs + (size_t) r * q->row_bytes;
    const float *sc = q->scales + (size_t) r * q->ngroups;
    const uint8_t *zr = q->zeros + (size_t) r * q->ngroups;
    __m256 acc = _mm256_setzero_ps ();
    for (int g = 0; g < q->ngroups; g++) {
      __m256 zf = _mm256_set1_ps ((float) zr[g]);
      __m256 p = int4_group_dot512 (row + (size_t) g * G / 2, xp + (size_t) g * G, subs,
                                    _mm256_sub_ps (ilo, zf), _mm256_sub_ps (ihi, zf));
      acc = _mm256_fmadd_ps (_mm256_set1_ps (sc[g]), p, acc);
    }
    float v = hsum_avx (acc);
    y[r] = accum ? y[r] + v : v;
  }
}
#endif

/* [2]: AVX-512VL matvec (table lookup), AVX2 dequantization */
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
