/* sutra-quant.h: packed low-bit weight matrices and the kernels that read them directly.
 *
 * A SutraQWeight holds one linear layer's weight W [rows = out_features, cols = in_features]
 * in one of these layouts (block structs with static_assert'ed sizes in sutra-quant-private.h):
 *   NF4   QLoRA (Dettmers et al. 2023): blocks of 64 values along a row, one absmax scale per
 *         block, 4-bit indices into the NF4 code book; optional double quantization of the
 *         scales (8-bit, blocks of 256, as bitsandbytes).
 *   INT4  group-wise asymmetric: per group of G (32/64/128) values a scale and a zero point,
 *         two values per byte. Produced by round-to-nearest, AWQ (Lin et al. 2023) or GPTQ
 *         (Frantar et al. 2022); the method is recorded, the layout is the same.
 *   INT8  per-output-channel (per-row) symmetric scale.
 * Kernels: matrix-vector (decode) reading packed data with AVX2/FMA when the CPU has it
 * (chosen at run time) and scalar otherwise; matrix-matrix (prefill, training) dequantizing
 * row tiles into a small buffer and calling cblas_sgemm. Every kernel has a _naive twin. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "sutra-error.h"

typedef enum {
  SUTRA_QUANT_NONE = 0,
  SUTRA_QUANT_NF4,
  SUTRA_QUANT_INT4,
  SUTRA_QUANT_INT8,
} SutraQuantType;

typedef enum {
  SUTRA_QMETHOD_RTN = 0,   /* round to nearest */
  SUTRA_QMETHOD_AWQ,
  SUTRA_QMETHOD_GPTQ,
} SutraQuantMethod;

typedef struct {
  SutraQuantType type;
  SutraQuantMethod method;
  int group_size;          /* INT4: 32, 64 or 128 (default 64); NF4: fixed 64; INT8: ignored */
  bool double_quant;       /* NF4: quantize the block scales too */
} SutraQuantParams;

typedef struct SutraQWeight SutraQWeight;

const char *sutra_quant_type_name (SutraQuantType t);            /* "nf4", "int4", "int8" */
bool        sutra_quant_type_from_name (const char *name, SutraQuantType *out);

/* Quantizes w [rows, cols] (round to nearest). cols must be a multiple of the block/group size
 * for NF4/INT4 (else SUTRA_ERR_UNSUPPORTED naming both numbers). */
SutraStatus sutra_qweight_quantize (const float *w, int rows, int cols, const SutraQuantParams *p,
                                    SutraQWeight **out, SutraError *err);
void        sutra_qweight_free (SutraQWeight *q);
int         sutra_qweight_rows (const SutraQWeight *q);
int         sutra_qweight_cols (const SutraQWeight *q);
SutraQuantType sutra_qweight_type (const SutraQWeight *q);
/* Bytes of packed storage (data + scales + zeros), for memory reports. */
size_t      sutra_qweight_bytes (const SutraQWeight *q);

/* dst [nrows, cols] = dequantized rows [row0, row0 + nrows). */
void sutra_qweight_dequant_rows (const SutraQWeight *q, int row0, int nrows, float *dst);
/* y [rows] = W x (x [cols]); accumulate adds into y. */
void sutra_qweight_matvec       (const SutraQWeight *q, const float *x, float *y, bool accumulate);
void sutra_qweight_matvec_naive (const SutraQWeight *q, const float *x, float *y, bool accumulate);
/* out [N, rows] (+)= in [N, cols] W^T  (a linear layer's forward). */
void sutra_qweight_matmul       (const SutraQWeight *q, const float *in, float *out, int N,
                                 bool accumulate);
/* din [N, cols] += dout [N, rows] W  (a linear layer's input gradient; W frozen). */
void sutra_qweight_matmul_t     (const SutraQWeight *q, const float *dout, float *din, int N);
