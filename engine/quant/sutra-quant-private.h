/* sutra-quant-private.h: the packed layouts, shared between the engine/quant/ .c files only.
 *
 * Every 4-bit format is built from one 32-value sub-block (ggml's q4_0 nibble order):
 *   byte j (0..15) = code[j] | code[j + 16] << 4
 * so the 16 low nibbles are elements 0..15 and the 16 high nibbles elements 16..31, and a SIMD
 * kernel turns 16 loaded bytes into four chunks of 8 consecutive elements. A row of `cols`
 * values is ngroups = ceil(cols / group) groups; the last one may be partial and is padded with
 * code 0 (its padding never reaches an output: x is zero-padded and dequantization stops at cols).
 *
 *   NF4  group 64 = 2 sub-blocks; absmax per group (f32), or double-quantized: one u8 code per
 *        group and, per 256 consecutive groups of the flattened [rows * ngroups] array, an f32
 *        scale and offset: absmax = fmaf (code, dq_scale, dq_offset).  value = NF4[code] * absmax
 *   INT4 group G in {32, 64, 128} = G/32 sub-blocks; scale (f32) and integer zero point (u8,
 *        0..15) per group.  value = (code - zero) * scale   (GPTQ/AWQ convention)
 *   INT8 per row: scale (f32); codes int8 in [-127, 127], row-major [rows, cols] unpadded.
 *        value = code * scale
 * INT4 from AWQ may carry in_scale [cols]: the layer computes Q (x * in_scale), for channels
 * whose AWQ scale could not be folded into a preceding operation.
 *
 * Matrix-vector products follow one summation order per format that the scalar, AVX2, AVX-512
 * and naive code all implement (which makes them bit-identical; see sutra-qmatmul.c, and
 * sutra-int4.c for INT4, whose products take x as 8-bit codes). */
#pragma once
#include "sutra-quant.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#define SUTRA_Q4_SUB 32           /* values per 4-bit sub-block */
#define SUTRA_NF4_GROUP 64        /* QLoRA block size */
#define SUTRA_NF4_DQ_BLOCK 256    /* absmax values per double-quantization block */
#define SUTRA_INT8_CHUNKS 32      /* INT8 partial sums are formed over 32 values */

/* 32 4-bit codes (see the nibble order above) */
typedef struct {
  uint8_t qs[SUTRA_Q4_SUB / 2];
} SutraQ4Sub;
static_assert (sizeof (SutraQ4Sub) == 16, "4-bit sub-block must be 16 bytes");

/* one NF4 block of 64 values: the unit QLoRA scales by one absmax */
typedef struct {
  SutraQ4Sub sub[SUTRA_NF4_GROUP / SUTRA_Q4_SUB];
} SutraNF4Block;
static_assert (sizeof (SutraNF4Block) == 32, "NF4 block must be 32 bytes");

/* 32 INT8 codes: the unit of the INT8 partial sums */
typedef struct {
  int8_t qs[SUTRA_INT8_CHUNKS];
} SutraI8Block;
static_assert (sizeof (SutraI8Block) == 32, "INT8 block must be 32 bytes");

/* The NF4 code book (QLoRA appendix E; the float32 values bitsandbytes uses). */
extern const float sutra_nf4_code[16];

struct SutraQWeight {
  SutraQuantParams p;       /* p.group_size: the real group (64 NF4, G INT4, 0 INT8) */
  int rows, cols;
  int group;                /* values per scale: 64, G, or cols (INT8) */
  int ngroups;              /* groups per row (INT8: 1) */
  size_t row_bytes;         /* packed code bytes per row: ngroups * group / 2, or cols (INT8) */
  const uint8_t *qs;        /* [rows, row_bytes] codes */
  const float *scales;      /* [rows, ngroups]: NF4 absmax (not with DQ), INT4 scale, INT8 [rows] */
  const uint8_t *zeros;     /* INT4 [rows, ngroups] zero points */
  const uint8_t *absmax_q;  /* NF4 DQ [rows * ngroups] */
  const float *dq_scale;    /* NF4 DQ [ceil(rows * ngroups / 256)] */
  const float *dq_offset;   /* NF4 DQ, same shape */
  const float *in_scale;    /* INT4 [cols] or NULL */
  void *owned[8];           /* buffers freed with the weight (64-byte aligned) */
  int n_owned;
};

/* Allocates an empty weight of the given shape with zeroed owned buffers for every part of
 * its format (in_scale only when with_in_scale). Fails on bad parameters or no memory. */
SutraStatus sutra_qweight_alloc (const SutraQuantParams *p, int rows, int cols, bool with_in_scale,
                                 SutraQWeight **out, SutraError *err);
/* Mutable views of an allocated (owned) weight's buffers. */
static inline uint8_t *sq_qs_mut (SutraQWeight *q) { return (uint8_t *) q->qs; }
static inline float *sq_scales_mut (SutraQWeight *q) { return (float *) q->scales; }
static inline uint8_t *sq_zeros_mut (SutraQWeight *q) { return (uint8_t *) q->zeros; }

/* NF4 absmax of group g of row r (double-quantized or stored). */
static inline float
sq_nf4_absmax (const SutraQWeight *q, int r, int g)
{
  size_t i = (size_t) r * q->ngroups + g;
  if (!q->p.double_quant)
    return q->scales[i];
  return fmaf ((float) q->absmax_q[i], q->dq_scale[i / SUTRA_NF4_DQ_BLOCK],
               q->dq_offset[i / SUTRA_NF4_DQ_BLOCK]);
}

/* Software prefetch for the NF4 matvec kernels, which walk rows in pairs, group by group:
 * while the pair at row r works on group g, fetch slice g of the pair at r_ahead (a pair's
 * 2 * row_bytes bytes cut in ngroups slices of `group` bytes: each row holds a group in
 * group / 2 bytes), so the pair arrives in cache as the kernel reaches
 * it. Measured: NF4 streaming 8.4 -> 10.7 GB/s on one Zen 4 core with r_ahead = r + 4. */
#define SQ_PREFETCH_ROWS 4
static inline void
sq_prefetch_ahead (const SutraQWeight *q, int r_ahead, int g)
{
  size_t slice = (size_t) q->group;
  size_t off = (size_t) r_ahead * q->row_bytes + (size_t) g * slice;
  size_t total = (size_t) q->rows * q->row_bytes;
  for (size_t o = off; o < off + slice && o < total; o += 64)
    __builtin_prefetch (q->qs + o, 0, 3);
}

/* Code of element e (0 .. group-1) of a 4-bit group starting at byte pointer d. */
static inline int
sq_q4_code (const uint8_t *d, int e)
{
  const uint8_t *sub = d + (e / SUTRA_Q4_SUB) * (SUTRA_Q4_SUB / 2);
  int j = e % SUTRA_Q4_SUB;
  return j < 16 ? sub[j] & 15 : sub[j - 16] >> 4;
}
/* Stores code c for element e of the group at d (d must start zeroed). */
static inline void
sq_q4_set (uint8_t *d, int e, int c)
{
  uint8_t *sub = d + (e / SUTRA_Q4_SUB) * (SUTRA_Q4_SUB / 2);
  int j = e % SUTRA_Q4_SUB;
  if (j < 16)
    sub[j] = (uint8_t) ((sub[j] & 0xF0) | c);
  else
    sub[j - 16] = (uint8_t) ((sub[j - 16] & 0x0F) | (c << 4));
}

/* ---- per-format quantizers (round to nearest) ---- */
/* w [rows, cols]; q allocated by sutra_qweight_alloc. Rows are split across the sutra pool. */
SutraStatus sutra_nf4_quantize_rows  (SutraQWeight *q, const float *w, SutraError *err);
void        sutra_int4_quantize_rows (SutraQWeight *q, const float *w);
void        sutra_int8_quantize_rows (SutraQWeight *q, const float *w);
/* INT4 group parameters (asymmetric, range widened to contain 0 as GPTQ does) and code. */
void sutra_int4_group_params (const float *x, int n, float *scale, int *zero);
static inline int
sutra_int4_code (float w, float scale, int zero)
{
  if (!(scale > 0.f))
    return zero;
  float t = nearbyintf (w / scale) + (float) zero;   /* clamped in float: NaN becomes 0 */
  if (!(t >= 0.f))
    t = 0.f;
  return t > 15.f ? 15 : (int) t;
}

/* ---- INT4 matrix-vector input ----
 * INT4 products take the input as 8-bit integers (ggml's q8_0 rule per 32-value block:
 * d = max |x| / 127, q = round (x * (1 / d))), so a row's 4-bit codes meet x in integer dot
 * products (exact) and floats only appear once per 4 x 8 values. The prepared input holds,
 * per pair of sub-blocks (64 values, k = 2p and 2p + 1), what the kernels' 32-byte weight
 * loads line up with: their low nibbles are elements 0..15 of k then of k + 1, their high
 * nibbles 16..31. */
typedef struct {
  int8_t lo[32];      /* x codes of elements 0..15 of sub-block 2p, then of 2p + 1 */
  int8_t hi[32];      /* elements 16..31 of 2p, then of 2p + 1 */
  float d[8];         /* lanes 0..3: the block scale of 2p, lanes 4..7: of 2p + 1 */
  float zq[16][8];    /* [z][L]: z times the sum of the 8 x codes lane L's dot takes (see
                         sutra-int4.c), for every zero point z: small integers, exact in
                         float, so D - z * S is one exact subtraction of a looked-up row */
} SqInt4XPair;
static_assert (sizeof (SqInt4XPair) == 608, "INT4 input pair must be 608 bytes");

/* Sub-blocks per padded INT4 row, and pairs of them (the last one half empty when odd). */
static inline int
sq_int4_nsub (const SutraQWeight *q)
{
  return q->ngroups * q->group / SUTRA_Q4_SUB;
}
static inline int
sq_int4_npairs (const SutraQWeight *q)
{
  return (sq_int4_nsub (q) + 1) / 2;
}

/* Block k (values 32k .. 32k + 31) of a row's input x [cols], times in_scale when the weight has
 * one (values past cols taken as 0), to codes[32] and scale *d: q8_0's rule. A NaN or infinite
 * value makes *d NaN and every code 0, so the products it feeds are NaN as they are in float. */
void sutra_int4_q8_block (const SutraQWeight *q, const float *x, int k, int8_t codes[32], float *d);
/* xp [sq_int4_npairs] from x [cols] (and in_scale). */
void sutra_int4_prepare_x (const SutraQWeight *q, const float *x, SqInt4XPair *xp);

/* ---- kernels, per format ----
 * matvec over rows [r0, r1): y[r] (+)= row r . xp, with xp the zero-padded (and in_scale'd)
 * input of length ngroups * group (INT8: cols rounded up to 32); INT4: xp is the
 * SqInt4XPair array sutra_int4_prepare_x made (the prepared buffer is opaque to callers).
 * dequant: dst[0 .. c1-c0) = row r, columns [c0, c1); c0 a multiple of the group (INT8: any). */
typedef void (*SqMatvecFn)  (const SutraQWeight *q, const float *xp, float *y, int r0, int r1,
                             bool acc);
typedef void (*SqDequantFn) (const SutraQWeight *q, int r, int c0, int c1, float *dst);

typedef struct {
  SqMatvecFn matvec;
  SqDequantFn dequant;
} SqKernels;

/* [0 = scalar, 1 = avx2, 2 = avx2 + avx512vl]; NULL when not compiled for x86-64. */
extern const SqKernels sutra_nf4_kernels[3], sutra_int4_kernels[3], sutra_int8_kernels[3];
/* The reference row kernels the _naive twins use (per format). */
float sutra_nf4_row_dot_naive  (const SutraQWeight *q, int r, const float *xp);
/* INT4: xq [padded cols] natural-order x codes, d [padded cols / 32] their block scales */
float sutra_int4_row_dot_naive (const SutraQWeight *q, int r, const int8_t *xq, const float *d);
float sutra_int8_row_dot_naive (const SutraQWeight *q, int r, const float *xp);

/* Horizontal sum of 8 lanes in the order every kernel uses:
 * ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)). */
static inline float
sq_hsum8 (const float *v)
{
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

/* Padded input length the matvec kernels read. */
static inline size_t
sq_padded_cols (const SutraQWeight *q)
{
  if (q->p.type == SUTRA_QUANT_INT8)
    return ((size_t) q->cols + SUTRA_INT8_CHUNKS - 1) / SUTRA_INT8_CHUNKS * SUTRA_INT8_CHUNKS;
  return (size_t) q->ngroups * q->group;
}

/* Scratch slots of sutra_thread_scratch used by the quant kernels. */
#define SQ_SCRATCH_X 5            /* padded input of a matvec (caller thread) */
#define SQ_SCRATCH_TILE 6         /* dequantized tile of a matmul (each thread) */
#define SQ_SCRATCH_NAIVE 7        /* dequantized rows of the naive twins */
