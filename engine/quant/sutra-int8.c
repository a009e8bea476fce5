/* sutra-int8.c: INT8 per-output-channel symmetric quantization (LLM.int8()'s vector-wise
 * scheme without the outlier decomposition; llama2.c runq.c uses the same per-row form with
 * groups): scale = max |w_row| / 127, code = clamp (round (w / scale), -127, 127),
 * value = code * scale.
 *
 * Kernels: the row is read in blocks of 32 codes (the last one zero-padded); per block a
 * partial sum p[8] over its 4 chunks of 8 (a product, then fma), acc = acc + p; finally
 * y = scale * hsum8 (acc). */
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

typedef struct {
  SutraQWeight *q;
  const float *w;
} Int8Job;

static void
quantize_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  Int8Job *j = ctx;
  SutraQWeight *q = j->q;
  (void) ti;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = j->w + (size_t) r * q->cols;
    float amax = 0.f;
    for (int i = 0; i < q->cols; i++)
      amax = fmaxf (amax, fabsf (x[i]));
    float s = isfinite (amax) ? amax / 127.f : 0.f;
    sq_scales_mut (q)[r] = s;
    int8_t *d = (int8_t *) sq_qs_mut (q) + (size_t) r * q->cols;
    for (int i = 0; i < q->cols; i++) {
      float t = s > 0.f ? nearbyintf (x[i] / s) : 0.f;
      if (!(t >= -127.f))      /* NaN too */
        t = t != t ? 0.f : -127.f;
      d[i] = (int8_t) (t > 127.f ? 127 : (int) t);
    }
  }
}

void
sutra_int8_quantize_rows (SutraQWeight *q, const float *w)
{
  Int8Job j = { q, w };
  sutra_parallel_for (q->rows, 1 + 65536 / q->cols, quantize_range, &j);
}

/* ------------------------------------------------------------------------------------------ */
/* reference (naive) row dot and the scalar kernels                                           */
/* ------------------------------------------------------------------------------------------ */

float
sutra_int8_row_dot_naive (const SutraQWeight *q, int r, const float *xp)
{
  const int8_t *row = (const int8_t *) q->qs + (size_t) r * q->cols;
  size_t n = sq_padded_cols (q);
  float acc[8] = { 0 };
  for (size_t b = 0; b < n; b += SUTRA_INT8_CHUNKS) {
    float p[8];
    for (int e = 0; e < SUTRA_INT8_CHUNKS; e++) {
      size_t i = b + (size_t) e;
      float wv = i < (size_t) q->cols ? (float) row[i] : 0.f;    /* padding codes are 0 */
      p[e % 8] = e < 8 ? wv * xp[i] : fmaf (wv, xp[i], p[e % 8]);
    }
    for (int l = 0; l < 8; l++)
      acc[l] = acc[l] + p[l];
  }
  return q->scales[r] * sq_hsum8 (acc);
}

/* The 32 codes of block b of row r, through a zero-padded copy for the row's partial tail. */
static inline const int8_t *
block_codes (const SutraQWeight *q, int r, size_t b, int8_t *pad)
{
  const int8_t *row = (const int8_t *) q->qs + (size_t) r * q->cols;
  if (b + SUTRA_INT8_CHUNKS <= (size_t) q->cols)
    return row + b;
  memset (pad, 0, SUTRA_INT8_CHUNKS);
  memcpy (pad, row + b, (size_t) q->cols - b);
  return pad;
}

static void
int8_matvec_scalar (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)
{
  size_t n = sq_padded_cols (q);
  int8_t pad[SUTRA_INT8_CHUNKS];
  for (int r = r0; r < r1; r++) {
    float acc[8] = { 0 };
    for (size_t b = 0; b < n; b += SUTRA_INT8_CHUNKS) {
      const int8_t *c = block_codes (q, r, b, pad);
      const float *x = xp + b;
      float p[8];
      for (int l = 0; l < 8; l++)
        p[l] = (float) c[l] * x[l];
      for (int k = 1; k < 4; k++)
        for (int l = 0; l < 8; l++)
          p[l] = fmaf ((float) c[8 * k + l], x[8 * k + l], p[l]);
      for (int l = 0; l < 8; l++)
        acc[l] = acc[l] + p[l];
    }
    float v = q->scales[r] * sq_hsum8 (acc);
    y[r] = accum ? y[r] + v : v;
  }
}

static void
int8_dequant_scalar (const SutraQWeight *q, int r, int c0, int c1, float *dst)
{
  const int8_t *row = (const int8_t *) q->qs + (size_t) r * q->cols;
  float s = q->scales[r];
  for (int c = c0; c < c1; c++)
    dst[c - c0] = (float) row[c] * s;
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

AVX2 static inline __m256
codes8 (const int8_t *c)
{
  return _mm256_cvtepi32_ps (_mm256_cvtepi8_epi32 (_mm_loadl_epi64 ((const __m128i *) c)));
}

AVX2 static void
int8_matvec_avx2 (const SutraQWeight *q, const float *xp, float *y, int r0, int r1, bool accum)
{
  size_t full = (size_t) q->cols / SUTRA_INT8_CHUNKS * SUTRA_INT8_CHUNKS, n = sq_padded_cols (q);
  int8_t pad[SUTRA_INT8_CHUNKS];
  for (int r = r0; r < r1; r++) {
    const int8_t *row = (const int8_t *) q->qs + (size_t) r * q->cols;
    __m256 acc = _mm256_setzero_ps ();
    for (size_t b = 0; b < n; b += SUTRA_INT8_CHUNKS) {
      const int8_t *c = b < full ? row + b : block_codes (q, r, b, pad);
      const float *x = xp + b;
      __m256 p = _mm256_mul_ps (codes8 (c), _mm256_loadu_ps (x));
      p = _mm256_fmadd_ps (codes8 (c + 8), _mm256_loadu_ps (x + 8), p);
      p = _mm256_fmadd_ps (codes8 (c + 16), _mm256_loadu_ps (x + 16), p);
      p = _mm256_fmadd_ps (codes8 (c + 24), _mm256_loadu_ps (x + 24), p);
      acc = _mm256_add_ps (acc, p);
    }
    float v = q->scales[r] * hsum_avx (acc);
    y[r] = accum ? y[r] + v : v;
  }
}

AVX2 static void
int8_dequant_avx2 (const SutraQWeight *q, int r, int c0, int c1, float *dst)
{
  const int8_t *row = (const int8_t *) q->qs + (size_t) r * q->cols;
  __m256 s = _mm256_set1_ps (q->scales[r]);
  int c = c0;
  for (; c + 8 <= c1; c += 8)
    _mm256_storeu_ps (dst + (c - c0), _mm256_mul_ps (codes8 (row + c), s));
  if (c < c1)
    int8_dequant_scalar (q, r, c, c1, dst + (c - c0));
}
#endif

/* [2] (AVX-512VL) is the AVX2 kernel: nothing in this format gains from it at 8 lanes */
const SqKernels sutra_int8_kernels[3] = {
  { int8_matvec_scalar, int8_dequant_scalar },
#if defined(__x86_64__)
  { int8_matvec_avx2, int8_dequant_avx2 },
  { int8_matvec_avx2, int8_dequant_avx2 },
#else
  { NULL, NULL },
  { NULL, NULL },
#endif
};
