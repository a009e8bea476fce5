/* sutra-quant.h: packed low-bit weight matrices and the kernels that read them directly.
 *
 * A SutraQWeight holds one linear layer's weight W [rows = out_features, cols = in_features]
 * in one of these layouts (block structs with static_assert'ed sizes in sutra-quant-private.h;
 * byte layouts in docs/quantization.md):
 *   NF4   QLoRA (Dettmers et al. 2023): blocks of 64 values along a row, one absmax scale per
 *         block, 4-bit indices into the NF4 code book; optional double quantization of the
 *         scales (8-bit codes, an f32 scale and offset per 256 blocks).
 *   INT4  group-wise asymmetric: per group of G (32/64/128) values a scale and an integer zero
 *         point, two values per byte. Produced by round-to-nearest, AWQ (Lin et al. 2023) or
 *         GPTQ (Frantar et al. 2022, sutra-qcalib.h); the method is recorded, the layout is the
 *         same. AWQ scales that cannot be folded into a preceding layer stay as an explicit
 *         per-input-channel multiplier of x.
 *   INT8  per-output-channel (per-row) symmetric scale.
 * Any cols works: the last group of a row may be partial.
 * Kernels: matrix-vector (decode) reading packed data with AVX2/FMA when the CPU has it
 * (chosen at run time) and scalar otherwise, bit-identical to each other and to the _naive
 * twin; matrix-matrix (prefill, training) dequantizing row tiles into a per-thread buffer and
 * calling cblas_sgemm, split across the sutra pool. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "sutra-dtype.h"
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
const char *sutra_quant_method_name (SutraQuantMethod m);        /* "rtn", "awq", "gptq" */
bool        sutra_quant_method_from_name (const char *name, SutraQuantMethod *out);
/* Checks a parameter set (type, group size, double_quant only with NF4, AWQ/GPTQ only INT4). */
SutraStatus sutra_quant_params_check (const SutraQuantParams *p, SutraError *err);

/* Quantizes w [rows, cols] (round to nearest; p->method is recorded as given). */
SutraStatus sutra_qweight_quantize (const float *w, int rows, int cols, const SutraQuantParams *p,
                                    SutraQWeight **out, SutraError *err);
void        sutra_qweight_free (SutraQWeight *q);
int         sutra_qweight_rows (const SutraQWeight *q);
int         sutra_qweight_cols (const SutraQWeight *q);
SutraQuantType sutra_qweight_type (const SutraQWeight *q);
const SutraQuantParams *sutra_qweight_params (const SutraQWeight *q);   /* borrowed */
bool        sutra_qweight_has_in_scale (const SutraQWeight *q);
/* Bytes of packed storage (codes + scales + zeros + in_scale), for memory reports. */
size_t      sutra_qweight_bytes (const SutraQWeight *q);
/* sutra_qweight_bytes * 8 / (rows * cols). */
double      sutra_qweight_bits_per_weight (const SutraQWeight *q);

/* dst [nrows, cols] = dequantized rows [row0, row0 + nrows) (GGUF export, merges, tests). */
void sutra_qweight_dequant_rows (const SutraQWeight *q, int row0, int nrows, float *dst);
/* y [rows] = W x (x [cols]); accumulate adds into y. Allocation-free after the first call. */
void sutra_qweight_matvec       (const SutraQWeight *q, const float *x, float *y, bool accumulate);
void sutra_qweight_matvec_naive (const SutraQWeight *q, const float *x, float *y, bool accumulate);
/* The matvec in two steps, for callers that split one token's products across threads
 * themselves (several matrices in one parallel_for): prepare the input once (xsize floats:
 * the padded, reordered x the kernels read), then rows [r0, r1) on the calling thread.
 * sutra_qweight_matvec = prepare + rows across the pool; same results. */
size_t sutra_qweight_matvec_xsize   (const SutraQWeight *q);
void   sutra_qweight_matvec_prepare (const SutraQWeight *q, const float *x, float *xp);
void   sutra_qweight_matvec_rows    (const SutraQWeight *q, const float *xp, float *y, int r0,
                                     int r1, bool accumulate);
/* Whether a and b prepare the same x into the same buffer contents (same format, length and
 * padding, no input scales), so one prepared input serves both. */
bool   sutra_qweight_matvec_same_input (const SutraQWeight *a, const SutraQWeight *b);
/* out [N, rows] (+)= in [N, cols] W^T  (a linear layer's forward; N == 1 is the matvec). */
void sutra_qweight_matmul       (const SutraQWeight *q, const float *in, float *out, int N,
                                 bool accumulate);
void sutra_qweight_matmul_naive (const SutraQWeight *q, const float *in, float *out, int N,
                                 bool accumulate);
/* din [N, cols] += dout [N, rows] W  (a linear layer's input gradient; W frozen). */
void sutra_qweight_matmul_t       (const SutraQWeight *q, const float *dout, float *din, int N);
void sutra_qweight_matmul_t_naive (const SutraQWeight *q, const float *dout, float *din, int N);

/* ---- kernel selection ----
 * AUTO picks the best the CPU has: AVX512 (the AVX2 kernels with AVX-512VL's two-table
 * permute for the NF4 code book lookup), AVX2/FMA, or scalar. All give identical results.
 * The environment variable SUTRA_QUANT_KERNEL (scalar | avx2 | avx512 | auto), read once,
 * sets the initial choice. */
typedef enum {
  SUTRA_QKERNEL_AUTO = 0, SUTRA_QKERNEL_SCALAR, SUTRA_QKERNEL_AVX2, SUTRA_QKERNEL_AVX512
} SutraQuantKernel;
/* Returns the kernel now in effect (one the CPU lacks falls back to the best it has below
 * it). Not while another thread is inside a kernel. */
SutraQuantKernel sutra_quant_set_kernel (SutraQuantKernel k);
SutraQuantKernel sutra_quant_get_kernel (void);              /* never AUTO */
const char      *sutra_quant_kernel_name (SutraQuantKernel k);

/* ---- serialisation: a weight as named parts (engine/model/sutra-qfile.c stores each part as
 * the safetensors tensor "<module>.<name>") ----
 *   NF4  qweight U8 [rows, ngroups*32], absmax F32 [rows, ngroups]
 *        or absmax_q U8 [rows, ngroups], absmax_scale F32 [nb], absmax_offset F32 [nb]
 *   INT4 qweight U8 [rows, ngroups*G/2], scales F32 [rows, ngroups], zeros U8 [rows, ngroups],
 *        optional in_scale F32 [cols]
 *   INT8 qweight I8 [rows, cols], scales F32 [rows] */
#define SUTRA_QPARTS_MAX 5
typedef struct {
  const char *name;        /* "qweight", "scales", ... (static string) */
  SutraDType dtype;        /* SUTRA_U8, SUTRA_I8 or SUTRA_F32 */
  int ndim;
  int64_t shape[2];
  const void *data;
} SutraQPart;
/* Fills parts (at most SUTRA_QPARTS_MAX, borrowed from q) and returns their count. */
int         sutra_qweight_parts (const SutraQWeight *q, SutraQPart *parts);
/* The part names a format uses (NULL-terminated static list; optional ones included). */
const char *const *sutra_qweight_part_names (void);
/* Builds a weight from parts found by name. Checks that exactly the format's parts are there
 * with the right dtype and shape for rows x cols, and their values (zero points <= 15, finite
 * scales); messages name the part. borrow: keep pointers to the data (it must outlive the
 * weight; F32 parts must be 4-byte aligned, else they are copied); else copy everything. */
SutraStatus sutra_qweight_from_parts (const SutraQuantParams *p, int rows, int cols,
                                      const SutraQPart *parts, int nparts, bool borrow,
                                      SutraQWeight **out, SutraError *err);
