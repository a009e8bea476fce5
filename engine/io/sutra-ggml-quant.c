/* sutra-ggml-quant.c: ggml block layouts (ggml src/ggml-common.h), their sizes, and our
 * quantizers / dequantizers for the types GGUF export writes.
 *
 * Q8_0 and Q4_0 follow ggml's reference quantizers exactly (same scale choice, same rounding,
 * f16 rounded to nearest even), so a file we write is byte-identical to what
 * quantize_row_q8_0_ref / quantize_row_q4_0_ref produce. Q4_K and Q6_K are our own
 * round-to-nearest quantizers (with a least-squares refit) in ggml's layout. */
#include "sutra-ggml-quant.h"
#include "sutra-dtype.h"
#include "sutra-error.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint16_t d; uint8_t qs[SUTRA_QK4_0 / 2]; } BlockQ4_0;
typedef struct { uint16_t d; int8_t qs[SUTRA_QK8_0]; } BlockQ8_0;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[SUTRA_QK_K / 2]; } BlockQ4K;
typedef struct { uint8_t ql[SUTRA_QK_K / 2]; uint8_t qh[SUTRA_QK_K / 4]; int8_t scales[SUTRA_QK_K / 16];
                 uint16_t d; } BlockQ6K;
static_assert (sizeof (BlockQ4_0) == 18, "q4_0 block is 18 bytes");
static_assert (sizeof (BlockQ8_0) == 34, "q8_0 block is 34 bytes");
static_assert (sizeof (BlockQ4K) == 144, "q4_K block is 144 bytes");
static_assert (sizeof (BlockQ6K) == 210, "q6_K block is 210 bytes");

/* ggml's type table: name, elements per block, bytes per block (ggml-common.h block structs) */
typedef struct { const char *name; int blck; int size; } TypeInfo;
static const TypeInfo types[SUTRA_GGML_TYPE_COUNT] = {
  [0] = { "f32", 1, 4 },        [1] = { "f16", 1, 2 },        [2] = { "q4_0", 32, 18 },
  [3] = { "q4_1", 32, 20 },     [6] = { "q5_0", 32, 22 },     [7] = { "q5_1", 32, 24 },
  [8] = { "q8_0", 32, 34 },     [9] = { "q8_1", 32, 36 },     [10] = { "q2_K", 256, 84 },
  [11] = { "q3_K", 256, 110 },  [12] = { "q4_K", 256, 144 },  [13] = { "q5_K", 256, 176 },
  [14] = { "q6_K", 256, 210 },  [15] = { "q8_K", 256, 292 },  [16] = { "iq2_xxs", 256, 66 },
  [17] = { "iq2_xs", 256, 74 }, [18] = { "iq3_xxs", 256, 98 }, [19] = { "iq1_s", 256, 50 },
  [20] = { "iq4_nl", 32, 18 },  [21] = { "iq3_s", 256, 110 }, [22] = { "iq2_s", 256, 82 },
  [23] = { "iq4_xs", 256, 136 }, [24] = { "i8", 1, 1 },       [25] = { "i16", 1, 2 },
  [26] = { "i32", 1, 4 },       [27] = { "i64", 1, 8 },       [28] = { "f64", 1, 8 },
  [29] = { "iq1_m", 256, 56 },  [30] = { "bf16", 1, 2 },      [34] = { "tq1_0", 256, 54 },
  [35] = { "tq2_0", 256, 66 },  [39] = { "mxfp4", 32, 17 },   [40] = { "nvfp4", 64, 36 },
  [41] = { "q1_0", 128, 18 },   [42] = { "q2_0", 64, 18 },
};

static const TypeInfo *
info (int type)
{
  if (type < 0 || type >= SUTRA_GGML_TYPE_COUNT || !types[type].name)
    return NULL;
  return &types[type];
}

int64_t sutra_ggml_block_size (int type) { const TypeInfo *t = info (type); return t ? t->blck : 0; }
size_t sutra_ggml_type_size (int type) { const TypeInfo *t = info (type); return t ? (size_t) t->size : 0; }
const char *sutra_ggml_type_name (int type) { const TypeInfo *t = info (type); return t ? t->name : NULL; }

bool
sutra_ggml_type_from_name (const char *name, SutraGgmlType *out)
{
  for (int i = 0; i < SUTRA_GGML_TYPE_COUNT; i++) {
    if (!types[i].name)
      continue;
    const char *a = types[i].name, *b = name;
    while (*a && *b && (*a | 0x20) == (*b | 0x20))   /* ASCII case-insensitive: "Q4_K" = "q4_K" */
      a++, b++;
    if (!*a && !*b) {
      *out = (SutraGgmlType) i;
      return true;
    }
  }
  return false;
}

size_t
sutra_ggml_row_bytes (int type, int64_t n)
{
  const TypeInfo *t = info (type);
  if (!t || n < 0 || n % t->blck)
    return 0;
  uint64_t blocks = (uint64_t) (n / t->blck);
  if (blocks > SIZE_MAX / (uint64_t) t->size)
    return 0;
  return (size_t) blocks * (size_t) t->size;
}

bool
sutra_ggml_type_supported (int type)
{
  switch (type) {
  case SUTRA_GGML_F32: case SUTRA_GGML_F16: case SUTRA_GGML_BF16: case SUTRA_GGML_Q4_0:
  case SUTRA_GGML_Q8_0: case SUTRA_GGML_Q4_K: case SUTRA_GGML_Q6_K:
    return true;
  default:
    return false;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Q8_0 and Q4_0: ggml's reference formulas                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Q8_0: d = max|x| / 127, q = round(x / d) (roundf: half away from zero) */
static void
quantize_q8_0 (BlockQ8_0 *y, const float *x, int64_t n)
{
  for (int64_t b = 0; b < n / SUTRA_QK8_0; b++, x += SUTRA_QK8_0) {
    float amax = 0.f;
    for (int j = 0; j < SUTRA_QK8_0; j++)
      amax = fmaxf (amax, fabsf (x[j]));
    float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
    y[b].d = sutra_f32_to_f16 (d);
    for (int j = 0; j < SUTRA_QK8_0; j++)
      y[b].qs[j] = (int8_t) roundf (x[j] * id);
  }
}

/* Q4_0: m = the value of largest magnitude (first one on ties), d = m / -8,
 * q = min(15, trunc(x / d + 8.5)): so m itself maps to 0 and the range is [-8 d, 7 d]. */
static void
quantize_q4_0 (BlockQ4_0 *y, const float *x, int64_t n)
{
  const int half = SUTRA_QK4_0 / 2;
  for (int64_t b = 0; b < n / SUTRA_QK4_0; b++, x += SUTRA_QK4_0) {
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < SUTRA_QK4_0; j++)
      if (amax < fabsf (x[j])) {
        amax = fabsf (x[j]);
        max = x[j];
      }
    float d = max / -8.f, id = d != 0.f ? 1.f / d : 0.f;
    y[b].d = sutra_f32_to_f16 (d);
    for (int j = 0; j < half; j++) {
      int q0 = (int8_t) (x[j] * id + 8.5f), q1 = (int8_t) (x[j + half] * id + 8.5f);
      q0 = q0 > 15 ? 15 : q0;
      q1 = q1 > 15 ? 15 : q1;
      y[b].qs[j] = (uint8_t) (q0 | (q1 << 4));
    }
  }
}

static void
dequantize_q8_0 (float *y, const BlockQ8_0 *x, int64_t n)
{
  for (int64_t b = 0; b < n / SUTRA_QK8_0; b++) {
    float d = sutra_f16_to_f32 (x[b].d);
    for (int j = 0; j < SUTRA_QK8_0; j++)
      *y++ = (float) x[b].qs[j] * d;
  }
}

static void
dequantize_q4_0 (float *y, const BlockQ4_0 *x, int64_t n)
{
  const int half = SUTRA_QK4_0 / 2;
  for (int64_t b = 0; b < n / SUTRA_QK4_0; b++, y += SUTRA_QK4_0) {
    float d = sutra_f16_to_f32 (x[b].d);
    for (int j = 0; j < half; j++) {
      y[j] = (float) ((x[b].qs[j] & 0x0F) - 8) * d;
      y[j + half] = (float) ((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Q4_K                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* 6-bit scale sc[j] and min m[j] of sub-block j (0..7) from the 12 packed bytes:
 *   bytes 0..3 : sc[0..3] low 6 bits, top 2 bits = sc[4..7] >> 4
 *   bytes 4..7 : m[0..3]  low 6 bits, top 2 bits = m[4..7]  >> 4
 *   bytes 8..11: sc[4..7] & 15 (low nibble), m[4..7] & 15 (high nibble) */
static void
q4k_get_scale_min (int j, const uint8_t *q, int *sc, int *m)
{
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

static void
q4k_pack_scales (uint8_t *q, const int *sc, const int *m)
{
  for (int j = 0; j < 4; j++) {
    q[j] = (uint8_t) ((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    q[j + 4] = (uint8_t) ((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    q[j + 8] = (uint8_t) ((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

static inline int
clampi (int v, int lo, int hi)
{
  return v < lo ? lo : v > hi ? hi : v;
}

/* One sub-block of 32 as x ~ s * q - mn with q in 0..15 and mn >= 0 (ggml keeps the min
 * non-positive: the offset is -mn). Round to nearest on [min(x, 0), max(x)], then refit s and mn
 * by least squares for the chosen q (a few rounds, keeping the best). */
static void
q4k_fit_sub (const float *x, float *scale, float *mn)
{
  float lo = 0.f, hi = x[0];
  for (int i = 0; i < 32; i++) {
    lo = fminf (lo, x[i]);
    hi = fmaxf (hi, x[i]);
  }
  if (hi <= lo) {
    *scale = 0.f;
    *mn = -lo;
    return;
  }
  float s = (hi - lo) / 15.f, off = lo;       /* x ~ s q + off, off <= 0 */
  float best_err = INFINITY, best_s = s, best_off = off;
  for (int it = 0; it < 4; it++) {
    /* quantize with the current (s, off) and measure */
    double sq = 0, sq2 = 0, sx = 0, sqx = 0, err = 0;
    for (int i = 0; i < 32; i++) {
      int q = clampi ((int) lrintf ((x[i] - off) / s), 0, 15);
      float e = s * q + off - x[i];
      err += e * e;
      sq += q;
      sq2 += (double) q * q;
      sx += x[i];
      sqx += (double) q * x[i];
    }
    if (err < best_err) {
      best_err = (float) err;
      best_s = s;
      best_off = off;
    }
    /* least squares for x ~ s q + off given q */
    double det = 32 * sq2 - sq * sq;
    if (det <= 0)
      break;
    double ns = (32 * sqx - sq * sx) / det, noff = (sx - ns * sq) / 32;
    if (noff > 0) {             /* keep the offset non-positive: refit s alone */
      noff = 0;
      ns = sq2 > 0 ? sqx / sq2 : s;
    }
    if (ns <= 0)
      break;
    s = (float) ns;
    off = (float) noff;
  }
  *scale = best_s;
  *mn = -best_off;
}

static void
quantize_q4_k (BlockQ4K *y, const float *x, int64_t n)
{
  for (int64_t b = 0; b < n / SUTRA_QK_K; b++, x += SUTRA_QK_K) {
    float scales[8], mins[8], max_s = 0.f, max_m = 0.f;
    for (int j = 0; j < 8; j++) {
      q4k_fit_sub (x + 32 * j, &scales[j], &mins[j]);
      max_s = fmaxf (max_s, scales[j]);
      max_m = fmaxf (max_m, mins[j]);
    }
    /* super-block scales: 6-bit sub-scales in units of d and dmin */
    float d = max_s / 63.f, dmin = max_m / 63.f;
    uint16_t dh = sutra_f32_to_f16 (d), dminh = sutra_f32_to_f16 (dmin);
    d = sutra_f16_to_f32 (dh);
    dmin = sutra_f16_to_f32 (dminh);
    int sc[8], m[8];
    for (int j = 0; j < 8; j++) {
      sc[j] = d > 0.f ? clampi ((int) lrintf (scales[j] / d), 0, 63) : 0;
      m[j] = dmin > 0.f ? clampi ((int) lrintf (mins[j] / dmin), 0, 63) : 0;
    }
    y[b].d = dh;
    y[b].dmin = dminh;
    q4k_pack_scales (y[b].scales, sc, m);
    /* requantize against the scales as stored */
    uint8_t q[SUTRA_QK_K];
    for (int j = 0; j < 8; j++) {
      float ds = d * (float) sc[j], dm = dmin * (float) m[j];
      for (int i = 0; i < 32; i++)
        q[32 * j + i] = ds > 0.f ? (uint8_t) clampi ((int) lrintf ((x[32 * j + i] + dm) / ds), 0, 15) : 0;
    }
    /* each 64 values: 32 bytes, low nibbles = first 32, high nibbles = next 32 */
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++)
        y[b].qs[32 * c + l] = (uint8_t) (q[64 * c + l] | (q[64 * c + 32 + l] << 4));
  }
}

static void
dequantize_q4_k (float *y, const BlockQ4K *x, int64_t n)
{
  for (int64_t b = 0; b < n / SUTRA_QK_K; b++) {
    float d = sutra_f16_to_f32 (x[b].d), dmin = sutra_f16_to_f32 (x[b].dmin);
    const uint8_t *q = x[b].qs;
    for (int c = 0; c < 4; c++, q += 32) {
      int sc, m;
      q4k_get_scale_min (2 * c, x[b].scales, &sc, &m);
      float d1 = d * (float) sc, m1 = dmin * (float) m;
      q4k_get_scale_min (2 * c + 1, x[b].scales, &sc, &m);
      float d2 = d * (float) sc, m2 = dmin * (float) m;
      for (int l = 0; l < 32; l++)
        *y++ = d1 * (float) (q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; l++)
        *y++ = d2 * (float) (q[l] >> 4) - m2;
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Q6_K                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* Sub-block of 16 as x ~ s * q, q in -32..31: s = m / -32 where m is the value of largest
 * magnitude (the ggml convention: m maps to -32, the side with one more level), then a least
 * squares refit of s for the chosen q. */
static float
q6k_fit_sub (const float *x)
{
  float amax = 0.f, max = 0.f;
  for (int i = 0; i < 16; i++)
    if (fabsf (x[i]) > amax) {
      amax = fabsf (x[i]);
      max = x[i];
    }
  if (amax == 0.f)
    return 0.f;
  float s = max / -32.f;
  double sqx = 0, sq2 = 0;
  for (int i = 0; i < 16; i++) {
    int q = clampi ((int) lrintf (x[i] / s), -32, 31);
    sqx += (double) q * x[i];
    sq2 += (double) q * q;
  }
  return sq2 > 0 ? (float) (sqx / sq2) : s;
}

static void
quantize_q6_k (BlockQ6K *y, const float *x, int64_t n)
{
  for (int64_t b = 0; b < n / SUTRA_QK_K; b++, x += SUTRA_QK_K) {
    float scales[16], max_scale = 0.f, amax = 0.f;
    for (int j = 0; j < 16; j++) {
      scales[j] = q6k_fit_sub (x + 16 * j);
      if (fabsf (scales[j]) > amax) {
        amax = fabsf (scales[j]);
        max_scale = scales[j];
      }
    }
    memset (&y[b], 0, sizeof y[b]);
    if (amax == 0.f)
      continue;          /* all zero: d = 0 and zero scales decode to 0 whatever q holds */
    /* int8 sub-scales in units of d: the largest maps to -128 (ggml's choice) */
    float iscale = -128.f / max_scale;
    float d = 1.f / iscale;
    uint16_t dh = sutra_f32_to_f16 (d);
    d = sutra_f16_to_f32 (dh);
    y[b].d = dh;
    uint8_t q[SUTRA_QK_K];
    for (int j = 0; j < 16; j++) {
      int sc = clampi ((int) lrintf (iscale * scales[j]), -128, 127);
      y[b].scales[j] = (int8_t) sc;
      float ds = d * (float) sc;
      for (int i = 0; i < 16; i++)
        q[16 * j + i] = (uint8_t) (ds != 0.f ? clampi ((int) lrintf (x[16 * j + i] / ds), -32, 31) + 32 : 32);
    }
    /* per 128 values: ql[l] = q[l] low | q[l+64] low << 4; ql[l+32] = q[l+32] low | q[l+96] low << 4;
     * qh[l] = the 2 high bits of q[l], q[l+32], q[l+64], q[l+96] at bits 0, 2, 4, 6 */
    for (int h = 0; h < 2; h++) {
      const uint8_t *qq = q + 128 * h;
      uint8_t *ql = y[b].ql + 64 * h, *qh = y[b].qh + 32 * h;
      for (int l = 0; l < 32; l++) {
        ql[l] = (uint8_t) ((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
        ql[l + 32] = (uint8_t) ((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
        qh[l] = (uint8_t) ((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) |
                           ((qq[l + 96] >> 4) << 6));
      }
    }
  }
}

static void
dequantize_q6_k (float *y, const BlockQ6K *x, int64_t n)
{
  for (int64_t b = 0; b < n / SUTRA_QK_K; b++) {
    float d = sutra_f16_to_f32 (x[b].d);
    for (int h = 0; h < 2; h++, y += 128) {
      const uint8_t *ql = x[b].ql + 64 * h, *qh = x[b].qh + 32 * h;
      const int8_t *sc = x[b].scales + 8 * h;
      for (int l = 0; l < 32; l++) {
        int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
        int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
        int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        int is = l / 16;
        y[l] = d * (float) sc[is] * (float) q1;
        y[l + 32] = d * (float) sc[is + 2] * (float) q2;
        y[l + 64] = d * (float) sc[is + 4] * (float) q3;
        y[l + 96] = d * (float) sc[is + 6] * (float) q4;
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------ */

void
sutra_ggml_quantize_row (int type, void *dst, const float *x, int64_t n)
{
  SUTRA_ASSERT (sutra_ggml_type_supported (type) && n % sutra_ggml_block_size (type) == 0);
  switch (type) {
  case SUTRA_GGML_F32:
    memcpy (dst, x, sizeof (float) * (size_t) n);
    break;
  case SUTRA_GGML_F16:
    sutra_f32_to_f16_n (dst, x, (size_t) n);
    break;
  case SUTRA_GGML_BF16:
    sutra_f32_to_bf16_n (dst, x, (size_t) n);
    break;
  case SUTRA_GGML_Q8_0:
    quantize_q8_0 (dst, x, n);
    break;
  case SUTRA_GGML_Q4_0:
    quantize_q4_0 (dst, x, n);
    break;
  case SUTRA_GGML_Q4_K:
    quantize_q4_k (dst, x, n);
    break;
  case SUTRA_GGML_Q6_K:
    quantize_q6_k (dst, x, n);
    break;
  }
}

void
sutra_ggml_dequantize_row (int type, float *y, const void *src, int64_t n)
{
  SUTRA_ASSERT (sutra_ggml_type_supported (type) && n % sutra_ggml_block_size (type) == 0);
  if (type != SUTRA_GGML_F32 && ((uintptr_t) src & 1)) {
    /* every block holds uint16_t fields (f16 scales, f16/bf16 values): a file whose
     * general.alignment is 1 can place a tensor at an odd address, read in place from the map;
     * such a row is copied to an aligned buffer first (fuzz-gguf, misaligned-q8_0.gguf) */
    size_t rb = sutra_ggml_row_bytes (type, n);
    void *copy = sutra_xmalloc (rb);
    memcpy (copy, src, rb);
    sutra_ggml_dequantize_row (type, y, copy, n);
    free (copy);
    return;
  }
  switch (type) {
  case SUTRA_GGML_F32:
    memcpy (y, src, sizeof (float) * (size_t) n);
    break;
  case SUTRA_GGML_F16:
    sutra_f16_to_f32_n (y, src, (size_t) n);
    break;
  case SUTRA_GGML_BF16:
    sutra_bf16_to_f32_n (y, src, (size_t) n);
    break;
  case SUTRA_GGML_Q8_0:
    dequantize_q8_0 (y, src, n);
    break;
  case SUTRA_GGML_Q4_0:
    dequantize_q4_0 (y, src, n);
    break;
  case SUTRA_GGML_Q4_K:
    dequantize_q4_k (y, src, n);
    break;
  case SUTRA_GGML_Q6_K:
    dequantize_q6_k (y, src, n);
    break;
  }
}
