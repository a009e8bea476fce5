/* sutra-qsimd.h: AVX2 helpers shared by the packed-format kernels (engine/quant only): codes
 * decoded with per-lane variable shifts of a 64-bit broadcast (load port and vector ALUs, no
 * byte shuffles), the input permuted to match, and the lane-paired reduction that keeps the
 * documented summation order (see SQ_LANE_ELEMS in sutra-quant-private.h). */
#pragma once
#if defined(__x86_64__)
#include "sutra-quant-private.h"
#include "sutra-pool.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define SQ_AVX2 __attribute__ ((target ("avx2,fma")))

/* xperm [n] = xp [n] with every chunk of 8 permuted to the kernel lanes (n a multiple of 8),
 * in this thread's scratch */
SQ_AVX2 static inline const float *
sq_permute_x (const float *xp, size_t n)
{
  float *xq = sutra_thread_scratch (SQ_SCRATCH_XPERM, n);
  const __m256i perm = _mm256_setr_epi32 (SQ_LANE_ELEMS);
  for (size_t i = 0; i < n; i += 8)
    _mm256_store_ps (xq + i, _mm256_permutevar8x32_ps (_mm256_loadu_ps (xp + i), perm));
  return xq;
}

/* the 8 bytes at p broadcast to every 64-bit lane */
SQ_AVX2 static inline __m256i
sq_bcast8 (const uint8_t *p)
{
  int64_t v;
  memcpy (&v, p, 8);
  return _mm256_set1_epi64x (v);
}

/* Per-lane shifts that bring byte k (lane 2k) and byte 4 + k (lane 2k + 1) of a broadcast to
 * bits 0..7; + 4 for the high nibbles. */
SQ_AVX2 static inline __m256i
sq_shifts_lo (void)
{
  return _mm256_setr_epi32 (0, 0, 8, 8, 16, 16, 24, 24);
}

SQ_AVX2 static inline __m256i
sq_shifts_hi (void)
{
  return _mm256_setr_epi32 (4, 4, 12, 12, 20, 20, 28, 28);
}

/* The documented hsum8 ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) of class sums a held
 * in lane order (class SQ_LANE_ELEMS[i] in lane i): ((v0 + v1) + (v4 + v5)) + ((v2 + v3) +
 * (v6 + v7)). */
SQ_AVX2 static inline float
sq_hsum_perm (__m256 v)
{
  __m256 h = _mm256_hadd_ps (v, v);     /* v0+v1, v2+v3, ., ., v4+v5, v6+v7, ., . */
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (h), _mm256_extractf128_ps (h, 1));
  return _mm_cvtss_f32 (_mm_add_ss (s, _mm_shuffle_ps (s, s, 1)));
}
#endif
