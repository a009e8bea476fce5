/* sutra-ggml-quant.h: ggml tensor types as GGUF files store them, and our own quantizers.
 *
 * Block layouts follow ggml's src/ggml-common.h (types are the ggml_type numbers):
 *   F32   0   plain float
 *   F16   1   IEEE binary16
 *   Q4_0  2   blocks of 32: { f16 d; u8 qs[16] }          x = (q - 8) * d; qs[j] low nibble is
 *             element j, high nibble element j + 16
 *   Q8_0  8   blocks of 32: { f16 d; i8 qs[32] }          x = q * d
 *   Q4_K 12   super-blocks of 256 = 8 sub-blocks of 32: { f16 d, dmin; u8 scales[12]; u8 qs[128] }
 *             x = d * sc_j * q - dmin * m_j, sc_j/m_j 6-bit, packed as ggml's get_scale_min_k4
 *   Q6_K 14   super-blocks of 256 = 16 sub-blocks of 16: { u8 ql[128]; u8 qh[64]; i8 sc[16]; f16 d }
 *             x = d * sc_j * (q - 32), q 6-bit (4 low bits in ql, 2 high bits in qh)
 *   BF16 30   top half of f32
 * Quantizers: Q8_0 and Q4_0 reproduce ggml's reference formulas (quantize_row_*_ref) bit for bit;
 * Q4_K and Q6_K are our own round-to-nearest with one least-squares refit of each sub-block's
 * scale (ggml searches harder; any quantizer producing the layout is a valid file). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  SUTRA_GGML_F32 = 0,
  SUTRA_GGML_F16 = 1,
  SUTRA_GGML_Q4_0 = 2,
  SUTRA_GGML_Q4_1 = 3,
  SUTRA_GGML_Q5_0 = 6,
  SUTRA_GGML_Q5_1 = 7,
  SUTRA_GGML_Q8_0 = 8,
  SUTRA_GGML_Q8_1 = 9,
  SUTRA_GGML_Q2_K = 10,
  SUTRA_GGML_Q3_K = 11,
  SUTRA_GGML_Q4_K = 12,
  SUTRA_GGML_Q5_K = 13,
  SUTRA_GGML_Q6_K = 14,
  SUTRA_GGML_Q8_K = 15,
  SUTRA_GGML_I8 = 24,
  SUTRA_GGML_I16 = 25,
  SUTRA_GGML_I32 = 26,
  SUTRA_GGML_I64 = 27,
  SUTRA_GGML_F64 = 28,
  SUTRA_GGML_BF16 = 30,
  SUTRA_GGML_TYPE_COUNT = 43,   /* ggml's count: ids at or above it are unknown */
} SutraGgmlType;

#define SUTRA_QK4_0 32
#define SUTRA_QK8_0 32
#define SUTRA_QK_K 256

/* Elements per block and bytes per block; 0 / 0 for ids ggml does not define (or retired).
 * Covers every type of ggml's table so a reader can size any tensor; only the ones listed
 * above can be converted. */
int64_t     sutra_ggml_block_size (int type);
size_t      sutra_ggml_type_size  (int type);
const char *sutra_ggml_type_name  (int type);            /* "q4_0", or NULL when unknown */
bool        sutra_ggml_type_from_name (const char *name, SutraGgmlType *out);
/* Bytes of n elements (n a multiple of the block size), or 0 on overflow / unknown type. */
size_t      sutra_ggml_row_bytes  (int type, int64_t n);
/* Can we quantize to / dequantize from this type? (F32 F16 BF16 Q4_0 Q8_0 Q4_K Q6_K) */
bool        sutra_ggml_type_supported (int type);

/* dst = n values of x in `type` (n a multiple of the block size; SUTRA_ASSERTed). */
void sutra_ggml_quantize_row   (int type, void *dst, const float *x, int64_t n);
/* y[n] = dequantized src. */
void sutra_ggml_dequantize_row (int type, float *y, const void *src, int64_t n);
