/* sutra-ops.h: the math kernels of libsutra, each with a forward and a backward.
 *
 * Conventions (llm.c style): outputs first, then const inputs, then dims. Buffers are
 * contiguous row-major float32; every buffer has its shape in a comment. Backward kernels ADD
 * (+=) into their gradient outputs (the trainer zeroes gradients once per step), so one input
 * used twice simply receives both contributions. The big products go to OpenBLAS
 * (cblas_sgemm), split across the sutra pool; everything else is loops the compiler
 * vectorises, also split across the pool. Every fast path has a `_naive` twin (tests compare).
 *
 * Formulas follow PyTorch/transformers: GELU (erf and tanh forms as torch.nn.GELU),
 * RMSNorm as LlamaRMSNorm, LayerNorm as torch.nn.LayerNorm, RoPE as transformers'
 * rotate_half convention with `default`, `linear` and `llama3` frequency scaling,
 * cross-entropy as torch.nn.CrossEntropyLoss(ignore_index=-100, reduction="mean"). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "sutra-error.h"

#define SUTRA_IGNORE_INDEX (-100)

/* ---- matrix products ----
 * C[M,N] = alpha * op(A) @ op(B) + beta * C, row-major; op(A) is [M,K], op(B) is [K,N].
 * lda/ldb/ldc are row strides of the stored matrices (A stored [M,K] or, transposed, [K,M]). */
void sutra_sgemm       (bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta,
                        float *C, int ldc);
void sutra_sgemm_naive (bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta,
                        float *C, int ldc);
/* y[M] = A[M,K] x[K] (+ y when accumulate): matrix-vector for decode (AVX2/FMA kernel when the
 * CPU has it, else OpenBLAS), rows split across the pool. */
void sutra_sgemv       (float *y, const float *A, const float *x, int M, int K, bool accumulate);
/* Rows [r0, r1) of sutra_sgemv on the calling thread (callers that split work themselves). */
void sutra_sgemv_rows  (float *y, const float *A, const float *x, int r0, int r1, int K,
                        bool accumulate);
void sutra_sgemv_naive (float *y, const float *A, const float *x, int M, int K, bool accumulate);

/* out[M,N] = op(a) @ op(b) (overwrites out). Backward adds into da/db (either may be NULL). */
void sutra_matmul_forward  (float *out, const float *a, const float *b, bool trans_a, bool trans_b,
                            int M, int N, int K);
void sutra_matmul_backward (float *da, float *db, const float *dout, const float *a, const float *b,
                            bool trans_a, bool trans_b, int M, int N, int K);

/* Dense layer as torch.nn.Linear: out[N,OC] = inp[N,C] @ W[OC,C]^T + bias[OC] (bias may be NULL).
 * Backward adds dinp[N,C] += dout @ W, dW[OC,C] += dout^T @ inp, dbias[OC] += sum_n dout
 * (each gradient output may be NULL when not needed). */
void sutra_dense_forward  (float *out, const float *inp, const float *W, const float *bias,
                            int N, int C, int OC);
void sutra_dense_backward (float *dinp, float *dW, float *dbias, const float *dout,
                            const float *inp, const float *W, int N, int C, int OC);

/* ---- elementwise (n elements) ---- */
void sutra_add_forward   (float *out, const float *a, const float *b, int64_t n);
void sutra_add_backward  (float *da, float *db, const float *dout, int64_t n);   /* either NULL */
void sutra_mul_forward   (float *out, const float *a, const float *b, int64_t n);
void sutra_mul_backward  (float *da, float *db, const float *dout, const float *a, const float *b,
                          int64_t n);
void sutra_scale_forward (float *out, const float *a, float s, int64_t n);
void sutra_scale_backward(float *da, const float *dout, float s, int64_t n);
/* dst[n] += src[n] */
void sutra_accumulate    (float *dst, const float *src, int64_t n);

typedef enum {
  SUTRA_ACT_SILU,       /* x * sigmoid(x) */
  SUTRA_ACT_GELU_ERF,   /* 0.5 x (1 + erf(x / sqrt 2)) */
  SUTRA_ACT_GELU_TANH,  /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
  SUTRA_ACT_RELU,
  SUTRA_ACT_RELU2,      /* relu(x)^2 (RWKV channel mixing) */
  SUTRA_ACT_SIGMOID,
  SUTRA_ACT_TANH,
  SUTRA_ACT_EXP,
  SUTRA_ACT_SOFTPLUS,   /* log(1 + e^x), = x for x > 20 as torch */
  SUTRA_ACT_COUNT
} SutraAct;

const char *sutra_act_name (SutraAct act);
/* out[n] = act(x[n]); out may alias x. */
void  sutra_act_forward  (SutraAct act, float *out, const float *x, int64_t n);
/* dx[n] += act'(x) * dout (x is the forward input). */
void  sutra_act_backward (SutraAct act, float *dx, const float *dout, const float *x, int64_t n);
void  sutra_act_forward_naive (SutraAct act, float *out, const float *x, int64_t n);
/* SwiGLU: out[n] = silu(gate) * up; backward adds into dgate and dup. */
void  sutra_swiglu_forward  (float *out, const float *gate, const float *up, int64_t n);
void  sutra_swiglu_backward (float *dgate, float *dup, const float *dout, const float *gate,
                             const float *up, int64_t n);

/* ---- softmax over the last dim: x, out: [N, C] ---- */
void sutra_softmax_forward  (float *out, const float *x, int N, int C);
/* dx += out * (dout - sum(dout * out)) */
void sutra_softmax_backward (float *dx, const float *dout, const float *out, int N, int C);

/* ---- normalisation over the last dim ---- */
/* RMSNorm: out = w * x / sqrt(mean(x^2) + eps). x, out: [N, C]; w: [C]; rstd: [N] kept. */
void sutra_rmsnorm_forward  (float *out, float *rstd, const float *x, const float *w, float eps,
                             int N, int C);
void sutra_rmsnorm_backward (float *dx, float *dw, const float *dout, const float *x,
                             const float *w, const float *rstd, int N, int C);
/* LayerNorm: out = (x - mean) * rstd * w + b. mean, rstd: [N] kept. b may be NULL. */
void sutra_layernorm_forward  (float *out, float *mean, float *rstd, const float *x, const float *w,
                               const float *b, float eps, int N, int C);
void sutra_layernorm_backward (float *dx, float *dw, float *db, const float *dout, const float *x,
                               const float *w, const float *mean, const float *rstd, int N, int C);

/* ---- rotary position embedding (transformers' rotate_half layout) ---- */
typedef enum { SUTRA_ROPE_DEFAULT, SUTRA_ROPE_LINEAR, SUTRA_ROPE_LLAMA3 } SutraRopeType;
typedef struct {
  SutraRopeType type;
  int   rot_dim;                  /* rotated dims per head (= head_dim for Llama) */
  double theta;                   /* base, e.g. 10000 or 500000 */
  double factor;                  /* linear / llama3 */
  double low_freq_factor, high_freq_factor;   /* llama3 */
  int   original_max_position;    /* llama3 */
} SutraRope;
/* inv_freq[rot_dim/2], in double as the angle table is built in double precision. */
void sutra_rope_inv_freq (double *inv_freq, const SutraRope *rope);
/* cos, sin: [T, rot_dim/2] for positions pos[T]. */
void sutra_rope_table    (float *cos_t, float *sin_t, const int *pos, int T, const double *inv_freq,
                          int half);
/* In place on x: [T, NH, HS], rotating the first 2*half dims of each head:
 * (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) with x1 = x[:half], x2 = x[half:2 half]. */
void sutra_rope_forward  (float *x, const float *cos_t, const float *sin_t, int T, int NH, int HS,
                          int half);
/* In place on dx: the transpose (rotation by -angle). */
void sutra_rope_backward (float *dx, const float *cos_t, const float *sin_t, int T, int NH, int HS,
                          int half);

/* ---- embedding ---- */
/* out[N, C] = table[ids[n]]; fails with SUTRA_ERR_INVALID naming the position when an id is
 * outside [0, V). */
SutraStatus sutra_embedding_forward (float *out, const int *ids, const float *table, int N, int V,
                                     int C, SutraError *err);
/* dtable[ids[n]] += dout[n] */
void sutra_embedding_backward (float *dtable, const float *dout, const int *ids, int N, int C);

/* ---- causal self-attention with grouped-query heads ----
 * q: [B, T, NH, HS]; k, v: [B, T, NKV, HS] (NH % NKV == 0, query head h reads kv head
 * h / (NH / NKV)); out: [B, T, NH, HS]; probs: [B, NH, T, T] softmax(q k^T * scale + mask),
 * kept for backward. doc: [B, T] document ids of packed rows (a token attends only to earlier
 * tokens of the same document) or NULL. */
typedef struct { int B, T, NH, NKV, HS; float scale; } SutraAttnDims;
void sutra_attention_forward  (float *out, float *probs, const float *q, const float *k,
                               const float *v, const int *doc, const SutraAttnDims *d);
void sutra_attention_forward_naive (float *out, float *probs, const float *q, const float *k,
                                    const float *v, const int *doc, const SutraAttnDims *d);
/* Adds into dq, dk, dv (same shapes as q, k, v). */
void sutra_attention_backward (float *dq, float *dk, float *dv, const float *dout,
                               const float *probs, const float *q, const float *k, const float *v,
                               const SutraAttnDims *d);

/* ---- cross-entropy (causal-LM loss) ----
 * logits: [N, V]; targets: [N] (SUTRA_IGNORE_INDEX = no loss). Returns the mean loss over
 * targets that are not ignored (0 when none) and their count in *n_valid. Fails with
 * SUTRA_ERR_INVALID naming the row when a target is outside [0, V). */
SutraStatus sutra_cross_entropy_forward (float *loss, int *n_valid, const float *logits,
                                         const int *targets, int N, int V, SutraError *err);
/* dlogits[N, V] = dloss / n_valid * (softmax(logits) - onehot(target)); ignored rows get 0.
 * Overwrites (the one gradient that nothing else feeds), and may alias logits: the fused
 * in-place form that keeps a single [N, V] buffer. */
void sutra_cross_entropy_backward (float *dlogits, const float *logits, const int *targets,
                                   float dloss, int n_valid, int N, int V);
