/* sutra-ops.c: matrix products, linear layers, elementwise ops, softmax, norms, embedding,
 * cross-entropy. Attention and RoPE live in sutra-attention.c.
 *
 * Parallelism: sutra_sgemm splits the output across the sutra pool and calls single-threaded
 * OpenBLAS on each block; elementwise and row-wise kernels split rows across the pool. */
#include "sutra-dtype.h"
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this many multiply-adds a product runs on one thread (splitting costs more). */
#define SGEMM_SPLIT_MIN_FLOPS (1 << 18)
/* Elementwise work per thread below which a loop runs inline. */
#define ELEM_GRAIN 16384

/* ------------------------------------------------------------------------------------------ */
/* sgemm                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  bool ta, tb;
  int M, N, K;
  float alpha, beta;
  const float *A, *B;
  float *C;
  int lda, ldb, ldc;
  bool split_n;   /* split columns of C (else rows) */
} GemmJob;

static void
gemm_range (void *ctx, int64_t begin, int64_t end, int thread_index)
{
  const GemmJob *j = ctx;
  (void) thread_index;
  /* align split points to 16 columns/rows so blocks keep full SIMD panels */
  int b = (int) begin, e = (int) end;
  int total = j->split_n ? j->N : j->M;
  b = b & ~15;
  e = e == total ? total : (e & ~15);
  if (b >= e)
    return;
  if (j->split_n) {
    /* columns [b, e) of C use columns [b, e) of op(B) */
    const float *B = j->tb ? j->B + (size_t) b * j->ldb : j->B + b;
    cblas_sgemm (CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                 j->M, e - b, j->K, j->alpha, j->A, j->lda, B, j->ldb, j->beta, j->C + b, j->ldc);
  } else {
    /* rows [b, e) of C use rows [b, e) of op(A) */
    const float *A = j->ta ? j->A + b : j->A + (size_t) b * j->lda;
    cblas_sgemm (CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                 e - b, j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb, j->beta,
                 j->C + (size_t) b * j->ldc, j->ldc);
  }
}

void
sutra_sgemm (bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc)
{
  if (M <= 0 || N <= 0)
    return;
  if (K <= 0) {   /* C = beta * C */
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++)
        C[(size_t) i * ldc + j] = beta == 0.f ? 0.f : beta * C[(size_t) i * ldc + j];
    return;
  }
  GemmJob job = { trans_a, trans_b, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc, false };
  double flops = (double) M * N * K;
  int threads = sutra_get_threads ();
  if (threads <= 1 || flops < SGEMM_SPLIT_MIN_FLOPS) {
    cblas_sgemm (CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                 trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  /* Split the larger output dimension; each block needs at least 16 lines per thread. */
  job.split_n = N >= M;
  int64_t extent = job.split_n ? N : M;
  /* the range function aligns to 16, so give each thread a multiple of 16 */
  int64_t per = ((extent + threads - 1) / threads + 15) & ~(int64_t) 15;
  if (per >= extent) {
    cblas_sgemm (CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                 trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  sutra_parallel_for (extent, per, gemm_range, &job);
}

void
sutra_sgemm_naive (bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      double acc = 0;
      for (int p = 0; p < K; p++) {
        float a = trans_a ? A[(size_t) p * lda + i] : A[(size_t) i * lda + p];
        float b = trans_b ? B[(size_t) j * ldb + p] : B[(size_t) p * ldb + j];
        acc += (double) a * b;
      }
      float *c = &C[(size_t) i * ldc + j];
      *c = (float) (alpha * acc + (beta == 0.f ? 0.0 : (double) beta * *c));
    }
}

/* y[i] (+)= A[i, :] . x for rows [r0, r1): the decode matrix-vector product. Decode reads every
 * weight once per token, so this loop is memory bound: one row at a time (sequential streaming
 * measured fastest here: 23 GB/s on one core against 12-15 GB/s when two or four rows are
 * interleaved, and 10-13 GB/s for OpenBLAS's sgemv), four independent 8-wide FMA accumulators
 * to cover the FMA latency, x in L1. Run-time dispatch on AVX2+FMA; OpenBLAS otherwise. Sums
 * run in a different order than cblas_sgemv (the same result to rounding). */
__attribute__ ((target ("avx2,fma"))) static inline float
hsum8 (__m256 v)
{
  __m128 s = _mm_add_ps (_mm256_castps256_ps128 (v), _mm256_extractf128_ps (v, 1));
  s = _mm_add_ps (s, _mm_movehl_ps (s, s));
  s = _mm_add_ss (s, _mm_movehdup_ps (s));
  return _mm_cvtss_f32 (s);
}

__attribute__ ((target ("avx2,fma"))) static void
sgemv_rows_avx2 (float *y, const float *A, const float *x, int r0, int r1, int K, bool acc)
{
  int K32 = K & ~31, K8 = K & ~7;
  for (int r = r0; r < r1; r++) {
    const float *a = A + (size_t) r * K;
    __m256 s0 = _mm256_setzero_ps (), s1 = s0, s2 = s0, s3 = s0;
    int k = 0;
    for (; k < K32; k += 32) {
      s0 = _mm256_fmadd_ps (_mm256_loadu_ps (a + k), _mm256_loadu_ps (x + k), s0);
      s1 = _mm256_fmadd_ps (_mm256_loadu_ps (a + k + 8), _mm256_loadu_ps (x + k + 8), s1);
      s2 = _mm256_fmadd_ps (_mm256_loadu_ps (a + k + 16), _mm256_loadu_ps (x + k + 16), s2);
      s3 = _mm256_fmadd_ps (_mm256_loadu_ps (a + k + 24), _mm256_loadu_ps (x + k + 24), s3);
    }
    for (; k < K8; k += 8)
      s0 = _mm256_fmadd_ps (_mm256_loadu_ps (a + k), _mm256_loadu_ps (x + k), s0);
    float d = hsum8 (_mm256_add_ps (_mm256_add_ps (s0, s1), _mm256_add_ps (s2, s3)));
    for (; k < K; k++)
      d += a[k] * x[k];
    y[r] = acc ? y[r] + d : d;
  }
}

typedef struct {
  float *y;
  const float *A, *x;
  int K;
  bool acc, avx2;
} GemvJob;

static void
gemv_range (void *ctx, int64_t begin, int64_t end, int ti)
{
  const GemvJob *j = ctx;
  (void) ti;
  if (j->avx2) {
    sgemv_rows_avx2 (j->y, j->A, j->x, (int) begin, (int) end, j->K, j->acc);
    return;
  }
  cblas_sgemv (CblasRowMajor, CblasNoTrans, (int) (end - begin), j->K, 1.f,
               j->A + (size_t) begin * j->K, j->K, j->x, 1, j->acc ? 1.f : 0.f, j->y + begin, 1);
}

void
sutra_sgemv_rows (float *y, const float *A, const float *x, int r0, int r1, int K, bool accumulate)
{
  GemvJob job = { y, A, x, K, accumulate, sutra_cpu_has_avx2_fma () };
  gemv_range (&job, r0, r1, 0);
}

void
sutra_sgemv (float *y, const float *A, const float *x, int M, int K, bool accumulate)
{
  GemvJob job = { y, A, x, K, accumulate, sutra_cpu_has_avx2_fma () };
  sutra_parallel_for (M, 64, gemv_range, &job);
}

void
sutra_sgemv_naive (float *y, const float *A, const float *x, int M, int K, bool accumulate)
{
  for (int i = 0; i < M; i++) {
    double d = 0;
    for (int k = 0; k < K; k++)
      d += (double) A[(size_t) i * K + k] * x[k];
    y[i] = (float) (accumulate ? y[i] + d : d);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* matmul and linear                                                                          */
/* ------------------------------------------------------------------------------------------ */

void
sutra_matmul_forward (float *out, const float *a, const float *b, bool ta, bool tb, int M, int N,
                      int K)
{
  sutra_sgemm (ta, tb, M, N, K, 1.f, a, ta ? M : K, b, tb ? K : N, 0.f, out, N);
}

void
sutra_matmul_backward (float *da, float *db, const float *dout, const float *a, const float *b,
                       bool ta, bool tb, int M, int N, int K)
{
  /* out = op(a) op(b): d op(a) = dout op(b)^T [M,K]; d op(b) = op(a)^T dout [K,N]. */
  if (da) {
    if (!ta)   /* da[M,K] += dout[M,N] op(b)^T */
      sutra_sgemm (false, !tb, M, K, N, 1.f, dout, N, b, tb ? K : N, 1.f, da, K);
    else       /* a stored [K,M]: da[K,M] += op(b) dout^T */
      sutra_sgemm (tb, true, K, M, N, 1.f, b, tb ? K : N, dout, N, 1.f, da, M);
  }
  if (db) {
    if (!tb)   /* db[K,N] += op(a)^T dout */
      sutra_sgemm (!ta, false, K, N, M, 1.f, a, ta ? M : K, dout, N, 1.f, db, N);
    else       /* b stored [N,K]: db[N,K] += dout^T op(a) */
      sutra_sgemm (true, ta, N, K, M, 1.f, dout, N, a, ta ? M : K, 1.f, db, K);
  }
}

void
sutra_dense_forward (float *out, const float *inp, const float *W, const float *bias, int N, int C,
                      int OC)
{
  /* out[N,OC] = inp[N,C] @ W[OC,C]^T (+ bias broadcast over rows) */
  if (bias) {
    for (int n = 0; n < N; n++)
      memcpy (out + (size_t) n * OC, bias, sizeof (float) * (size_t) OC);
  }
  if (N == 1) {                       /* decode: a matrix-vector product (+ the bias copied above) */
    sutra_sgemv (out, W, inp, OC, C, bias != NULL);
    return;
  }
  sutra_sgemm (false, true, N, OC, C, 1.f, inp, C, W, C, bias ? 1.f : 0.f, out, OC);
}

void
sutra_dense_backward (float *dinp, float *dW, float *dbias, const float *dout, const float *inp,
                       const float *W, int N, int C, int OC)
{
  if (dinp)    /* dinp[N,C] += dout[N,OC] @ W[OC,C] */
    sutra_sgemm (false, false, N, C, OC, 1.f, dout, OC, W, C, 1.f, dinp, C);
  if (dW)      /* dW[OC,C] += dout^T[OC,N] @ inp[N,C] */
    sutra_sgemm (true, false, OC, C, N, 1.f, dout, OC, inp, C, 1.f, dW, C);
  if (dbias)
    for (int n = 0; n < N; n++) {
      const float *d = dout + (size_t) n * OC;
      for (int o = 0; o < OC; o++)
        dbias[o] += d[o];
    }
}

/* ------------------------------------------------------------------------------------------ */
/* elementwise                                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef enum { EW_ADD, EW_ADD_BWD, EW_MUL, EW_MUL_BWD, EW_SCALE, EW_ACC, EW_ACT, EW_ACT_BWD,
               EW_SWIGLU, EW_SWIGLU_BWD } EwKind;

typedef struct {
  EwKind kind;
  SutraAct act;
  float *o1, *o2;
  const float *i1, *i2, *i3;
  float s;
} EwJob;

static inline float
sigmoidf (float x)
{
  return 1.f / (1.f + expf (-x));
}

#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_C 0.044715f
#define INV_SQRT2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f

static inline float
act_f (SutraAct act, float x)
{
  switch (act) {
  case SUTRA_ACT_SILU: return x * sigmoidf (x);
  case SUTRA_ACT_GELU_ERF: return 0.5f * x * (1.f + erff (x * INV_SQRT2));
  case SUTRA_ACT_GELU_TANH: {
    float u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
    return 0.5f * x * (1.f + tanhf (u));
  }
  case SUTRA_ACT_RELU: return x > 0.f ? x : 0.f;
  case SUTRA_ACT_RELU2: return x > 0.f ? x * x : 0.f;
  case SUTRA_ACT_SIGMOID: return sigmoidf (x);
  case SUTRA_ACT_TANH: return tanhf (x);
  case SUTRA_ACT_EXP: return expf (x);
  case SUTRA_ACT_SOFTPLUS: return x > 20.f ? x : log1pf (expf (x));   /* torch threshold 20 */
  default: return 0.f;
  }
}

/* d act / dx at x */
static inline float
act_df (SutraAct act, float x)
{
  switch (act) {
  case SUTRA_ACT_SILU: {
    float s = sigmoidf (x);
    return s * (1.f + x * (1.f - s));
  }
  case SUTRA_ACT_GELU_ERF:   /* Phi(x) + x phi(x) */
    return 0.5f * (1.f + erff (x * INV_SQRT2)) + x * INV_SQRT_2PI * expf (-0.5f * x * x);
  case SUTRA_ACT_GELU_TANH: {
    float u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
    float t = tanhf (u);
    float du = SQRT_2_OVER_PI * (1.f + 3.f * GELU_C * x * x);
    return 0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * du;
  }
  case SUTRA_ACT_RELU: return x > 0.f ? 1.f : 0.f;
  case SUTRA_ACT_RELU2: return x > 0.f ? 2.f * x : 0.f;
  case SUTRA_ACT_SIGMOID: {
    float s = sigmoidf (x);
    return s * (1.f - s);
  }
  case SUTRA_ACT_TANH: {
    float t = tanhf (x);
    return 1.f - t * t;
  }
  case SUTRA_ACT_EXP: return expf (x);
  case SUTRA_ACT_SOFTPLUS: return x > 20.f ? 1.f : sigmoidf (x);
  default: return 0.f;
  }
}

static void
ew_range (void *ctx, int64_t b, int64_t e, int ti)
{
  const EwJob *j = ctx;
  (void) ti;
  float *o1 = j->o1, *o2 = j->o2;
  const float *a = j->i1, *c = j->i2, *d = j->i3;
  switch (j->kind) {
  case EW_ADD:
    for (int64_t i = b; i < e; i++) o1[i] = a[i] + c[i];
    break;
  case EW_ADD_BWD:
    if (o1) for (int64_t i = b; i < e; i++) o1[i] += a[i];
    if (o2) for (int64_t i = b; i < e; i++) o2[i] += a[i];
    break;
  case EW_MUL:
    for (int64_t i = b; i < e; i++) o1[i] = a[i] * c[i];
    break;
  case EW_MUL_BWD:   /* a = dout, c = x, d = y */
    if (o1) for (int64_t i = b; i < e; i++) o1[i] += a[i] * d[i];
    if (o2) for (int64_t i = b; i < e; i++) o2[i] += a[i] * c[i];
    break;
  case EW_SCALE:
    for (int64_t i = b; i < e; i++) o1[i] = a[i] * j->s;
    break;
  case EW_ACC:
    for (int64_t i = b; i < e; i++) o1[i] += a[i] * j->s;
    break;
  case EW_ACT:
    switch (j->act) {   /* the common cases get their own loops so they vectorise */
    case SUTRA_ACT_RELU:
      for (int64_t i = b; i < e; i++) o1[i] = a[i] > 0.f ? a[i] : 0.f;
      break;
    default:
      for (int64_t i = b; i < e; i++) o1[i] = act_f (j->act, a[i]);
    }
    break;
  case EW_ACT_BWD:   /* a = dout, c = x */
    for (int64_t i = b; i < e; i++) o1[i] += a[i] * act_df (j->act, c[i]);
    break;
  case EW_SWIGLU:    /* a = gate, c = up */
    for (int64_t i = b; i < e; i++) {
      float g = a[i];
      o1[i] = g / (1.f + expf (-g)) * c[i];
    }
    break;
  case EW_SWIGLU_BWD: /* a = dout, c = gate, d = up */
    for (int64_t i = b; i < e; i++) {
      float g = c[i], s = sigmoidf (g), silu = g * s;
      o1[i] += a[i] * d[i] * s * (1.f + g * (1.f - s));
      o2[i] += a[i] * silu;
    }
    break;
  }
}

static void
ew_run (EwJob *j, int64_t n)
{
  sutra_parallel_for (n, ELEM_GRAIN, ew_range, j);
}

void
sutra_add_forward (float *out, const float *a, const float *b, int64_t n)
{
  EwJob j = { .kind = EW_ADD, .o1 = out, .i1 = a, .i2 = b };
  ew_run (&j, n);
}

void
sutra_add_backward (float *da, float *db, const float *dout, int64_t n)
{
  EwJob j = { .kind = EW_ADD_BWD, .o1 = da, .o2 = db, .i1 = dout };
  ew_run (&j, n);
}

void
sutra_mul_forward (float *out, const float *a, const float *b, int64_t n)
{
  EwJob j = { .kind = EW_MUL, .o1 = out, .i1 = a, .i2 = b };
  ew_run (&j, n);
}

void
sutra_mul_backward (float *da, float *db, const float *dout, const float *a, const float *b,
                    int64_t n)
{
  EwJob j = { .kind = EW_MUL_BWD, .o1 = da, .o2 = db, .i1 = dout, .i2 = a, .i3 = b };
  ew_run (&j, n);
}

void
sutra_scale_forward (float *out, const float *a, float s, int64_t n)
{
  EwJob j = { .kind = EW_SCALE, .o1 = out, .i1 = a, .s = s };
  ew_run (&j, n);
}

void
sutra_scale_backward (float *da, const float *dout, float s, int64_t n)
{
  EwJob j = { .kind = EW_ACC, .o1 = da, .i1 = dout, .s = s };
  ew_run (&j, n);
}

void
sutra_accumulate (float *dst, const float *src, int64_t n)
{
  EwJob j = { .kind = EW_ACC, .o1 = dst, .i1 = src, .s = 1.f };
  ew_run (&j, n);
}

const char *
sutra_act_name (SutraAct act)
{
  static const char *names[SUTRA_ACT_COUNT] = { "silu", "gelu", "gelu_tanh", "relu", "relu2",
                                                "sigmoid", "tanh", "exp", "softplus" };
  return (unsigned) act < SUTRA_ACT_COUNT ? names[act] : "?";
}

void
sutra_act_forward (SutraAct act, float *out, const float *x, int64_t n)
{
  EwJob j = { .kind = EW_ACT, .act = act, .o1 = out, .i1 = x };
  ew_run (&j, n);
}

void
sutra_act_forward_naive (SutraAct act, float *out, const float *x, int64_t n)
{
  for (int64_t i = 0; i < n; i++)
    out[i] = act_f (act, x[i]);
}

void
sutra_act_backward (SutraAct act, float *dx, const float *dout, const float *x, int64_t n)
{
  EwJob j = { .kind = EW_ACT_BWD, .act = act, .o1 = dx, .i1 = dout, .i2 = x };
  ew_run (&j, n);
}

void
sutra_swiglu_forward (float *out, const float *gate, const float *up, int64_t n)
{
  EwJob j = { .kind = EW_SWIGLU, .o1 = out, .i1 = gate, .i2 = up };
  ew_run (&j, n);
}

void
sutra_swiglu_backward (float *dgate, float *dup, const float *dout, const float *gate,
                       const float *up, int64_t n)
{
  EwJob j = { .kind = EW_SWIGLU_BWD, .o1 = dgate, .o2 = dup, .i1 = dout, .i2 = gate, .i3 = up };
  ew_run (&j, n);
}

/* ------------------------------------------------------------------------------------------ */
/* row-wise kernels: softmax, RMSNorm, LayerNorm                                             */
/* ------------------------------------------------------------------------------------------ */

typedef enum { ROW_SOFTMAX, ROW_SOFTMAX_BWD, ROW_RMS, ROW_LN } RowKind;

typedef struct {
  RowKind kind;
  float *out, *s1, *s2;
  const float *x, *w, *b, *d;
  float eps;
  int C;
} RowJob;

static void
row_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const RowJob *j = ctx;
  (void) ti;
  int C = j->C;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = j->x + (size_t) r * C;
    float *o = j->out + (size_t) r * C;
    switch (j->kind) {
    case ROW_SOFTMAX: {
      float m = -INFINITY;
      for (int i = 0; i < C; i++)
        m = x[i] > m ? x[i] : m;
      if (m == -INFINITY) {          /* a fully masked row: all zeros, never NaN */
        memset (o, 0, sizeof (float) * (size_t) C);
        break;
      }
      float sum = 0.f;
      for (int i = 0; i < C; i++) {
        o[i] = expf (x[i] - m);
        sum += o[i];
      }
      float inv = 1.f / sum;
      for (int i = 0; i < C; i++)
        o[i] *= inv;
      break;
    }
    case ROW_SOFTMAX_BWD: {          /* x = dout row, d = softmax out row; o = dx row */
      const float *y = j->d + (size_t) r * C;
      float dot = 0.f;
      for (int i = 0; i < C; i++)
        dot += x[i] * y[i];
      for (int i = 0; i < C; i++)
        o[i] += y[i] * (x[i] - dot);
      break;
    }
    case ROW_RMS: {
      /* rstd = 1 / sqrt(mean(x^2) + eps); out = w * (x * rstd) (LlamaRMSNorm) */
      float ss = 0.f;
      for (int i = 0; i < C; i++)
        ss += x[i] * x[i];
      float rstd = 1.f / sqrtf (ss / (float) C + j->eps);
      j->s1[r] = rstd;
      for (int i = 0; i < C; i++)
        o[i] = j->w[i] * (x[i] * rstd);
      break;
    }
    case ROW_LN: {
      float mean = 0.f;
      for (int i = 0; i < C; i++)
        mean += x[i];
      mean /= (float) C;
      float var = 0.f;
      for (int i = 0; i < C; i++) {
        float t = x[i] - mean;
        var += t * t;
      }
      var /= (float) C;                       /* biased variance, as torch */
      float rstd = 1.f / sqrtf (var + j->eps);
      j->s1[r] = mean;
      j->s2[r] = rstd;
      for (int i = 0; i < C; i++)
        o[i] = (x[i] - mean) * rstd * j->w[i] + (j->b ? j->b[i] : 0.f);
      break;
    }
    }
  }
}

static int64_t
row_grain (int C)
{
  int64_t g = ELEM_GRAIN / (C > 0 ? C : 1);
  return g < 1 ? 1 : g;
}

void
sutra_softmax_forward (float *out, const float *x, int N, int C)
{
  RowJob j = { .kind = ROW_SOFTMAX, .out = out, .x = x, .C = C };
  sutra_parallel_for (N, row_grain (C), row_range, &j);
}

void
sutra_softmax_backward (float *dx, const float *dout, const float *out, int N, int C)
{
  RowJob j = { .kind = ROW_SOFTMAX_BWD, .out = dx, .x = dout, .d = out, .C = C };
  sutra_parallel_for (N, row_grain (C), row_range, &j);
}

void
sutra_rmsnorm_forward (float *out, float *rstd, const float *x, const float *w, float eps, int N,
                       int C)
{
  RowJob j = { .kind = ROW_RMS, .out = out, .s1 = rstd, .x = x, .w = w, .eps = eps, .C = C };
  sutra_parallel_for (N, row_grain (C), row_range, &j);
}

/* Row-parallel norm backward: dx rows are independent; dw (and db) are summed per part into
 * partials [parts][C] and reduced in part order afterwards (deterministic for a thread count). */
typedef struct {
  bool layer;                 /* LayerNorm (else RMSNorm) */
  float *dx, *partial;        /* partial: [parts][2][C] (dw, db) */
  const float *dout, *x, *w, *mean, *rstd;
  int C;
  bool want_dw, want_db;
} NormBwdJob;

static void
norm_bwd_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const NormBwdJob *j = ctx;
  int C = j->C;
  float *pdw = j->partial + (size_t) ti * 2 * C, *pdb = pdw + C;
  for (int64_t n = r0; n < r1; n++) {
    const float *xr = j->x + (size_t) n * C, *dr = j->dout + (size_t) n * C;
    float *dxr = j->dx ? j->dx + (size_t) n * C : NULL;
    float rs = j->rstd[n];
    if (!j->layer) {
      /* y = w * xhat, xhat = x * rstd; dx = rstd * (dout*w - xhat * mean(dout*w*xhat)) */
      float dot = 0.f;
      for (int i = 0; i < C; i++)
        dot += dr[i] * j->w[i] * xr[i] * rs;
      dot /= (float) C;
      if (dxr)
        for (int i = 0; i < C; i++)
          dxr[i] += rs * (dr[i] * j->w[i] - xr[i] * rs * dot);
      if (j->want_dw)
        for (int i = 0; i < C; i++)
          pdw[i] += dr[i] * xr[i] * rs;
    } else {
      /* llm.c layernorm.md: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
      float mu = j->mean[n], m1 = 0.f, m2 = 0.f;
      for (int i = 0; i < C; i++) {
        float xhat = (xr[i] - mu) * rs, dxhat = dr[i] * j->w[i];
        m1 += dxhat;
        m2 += dxhat * xhat;
      }
      m1 /= (float) C;
      m2 /= (float) C;
      for (int i = 0; i < C; i++) {
        float xhat = (xr[i] - mu) * rs;
        if (dxr)
          dxr[i] += rs * (dr[i] * j->w[i] - m1 - xhat * m2);
        if (j->want_dw)
          pdw[i] += dr[i] * xhat;
        if (j->want_db)
          pdb[i] += dr[i];
      }
    }
  }
}

static void
norm_backward (bool layer, float *dx, float *dw, float *db, const float *dout, const float *x,
               const float *w, const float *mean, const float *rstd, int N, int C)
{
  int parts = sutra_get_threads ();
  float *partial = sutra_thread_scratch (5, (size_t) parts * 2 * C);
  memset (partial, 0, sizeof (float) * (size_t) parts * 2 * C);
  NormBwdJob j = { layer, dx, partial, dout, x, w, mean, rstd, C, dw != NULL, db != NULL };
  sutra_parallel_for (N, row_grain (C), norm_bwd_range, &j);
  for (int p = 0; p < parts; p++) {
    const float *pdw = partial + (size_t) p * 2 * C, *pdb = pdw + C;
    if (dw)
      for (int i = 0; i < C; i++)
        dw[i] += pdw[i];
    if (db)
      for (int i = 0; i < C; i++)
        db[i] += pdb[i];
  }
}

void
sutra_rmsnorm_backward (float *dx, float *dw, const float *dout, const float *x, const float *w,
                        const float *rstd, int N, int C)
{
  norm_backward (false, dx, dw, NULL, dout, x, w, NULL, rstd, N, C);
}

void
sutra_layernorm_forward (float *out, float *mean, float *rstd, const float *x, const float *w,
                         const float *b, float eps, int N, int C)
{
  RowJob j = { .kind = ROW_LN, .out = out, .s1 = mean, .s2 = rstd, .x = x, .w = w, .b = b,
               .eps = eps, .C = C };
  sutra_parallel_for (N, row_grain (C), row_range, &j);
}

void
sutra_layernorm_backward (float *dx, float *dw, float *db, const float *dout, const float *x,
                          const float *w, const float *mean, const float *rstd, int N, int C)
{
  norm_backward (true, dx, dw, db, dout, x, w, mean, rstd, N, C);
}

/* ------------------------------------------------------------------------------------------ */
/* embedding                                                                                  */
/* ------------------------------------------------------------------------------------------ */

SutraStatus
sutra_embedding_forward (float *out, const int *ids, const float *table, int N, int V, int C,
                         SutraError *err)
{
  for (int n = 0; n < N; n++)
    if (ids[n] < 0 || ids[n] >= V)
      return sutra_error_set (err, SUTRA_ERR_INVALID,
                              "token id %d at position %d is outside the vocabulary (size %d)",
                              ids[n], n, V);
  for (int n = 0; n < N; n++)
    memcpy (out + (size_t) n * C, table + (size_t) ids[n] * C, sizeof (float) * (size_t) C);
  return SUTRA_OK;
}

void
sutra_embedding_backward (float *dtable, const float *dout, const int *ids, int N, int C)
{
  for (int n = 0; n < N; n++) {
    float *row = dtable + (size_t) ids[n] * C;
    const float *d = dout + (size_t) n * C;
    for (int i = 0; i < C; i++)
      row[i] += d[i];
  }
}

/* ------------------------------------------------------------------------------------------ */
/* cross-entropy                                                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  float *dl;
  const float *logits;
  const int *targets;
  int V;
  double *row_loss;    /* forward: per-row loss */
  float scale;         /* backward: dloss / n_valid */
} CeJob;

/* log-sum-exp of a row, stable */
static double
row_lse (const float *x, int V)
{
  float m = -INFINITY;
  for (int i = 0; i < V; i++)
    m = x[i] > m ? x[i] : m;
  float s = 0.f;
  for (int i = 0; i < V; i++)
    s += expf (x[i] - m);
  return (double) m + log ((double) s);
}

static void
ce_fwd_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const CeJob *j = ctx;
  (void) ti;
  for (int64_t r = r0; r < r1; r++) {
    int t = j->targets[r];
    if (t == SUTRA_IGNORE_INDEX) {
      j->row_loss[r] = 0.0;
      continue;
    }
    const float *x = j->logits + (size_t) r * j->V;
    j->row_loss[r] = row_lse (x, j->V) - (double) x[t];
  }
}

SutraStatus
sutra_cross_entropy_forward (float *loss, int *n_valid, const float *logits, const int *targets,
                             int N, int V, SutraError *err)
{
  int valid = 0;
  for (int n = 0; n < N; n++) {
    if (targets[n] == SUTRA_IGNORE_INDEX)
      continue;
    if (targets[n] < 0 || targets[n] >= V)
      return sutra_error_set (err, SUTRA_ERR_INVALID,
                              "label %d at position %d is outside the vocabulary (size %d)",
                              targets[n], n, V);
    valid++;
  }
  double *row_loss = sutra_xmalloc (sizeof (double) * (size_t) (N > 0 ? N : 1));
  CeJob j = { .logits = logits, .targets = targets, .V = V, .row_loss = row_loss };
  sutra_parallel_for (N, 1 + 4096 / (V > 0 ? V : 1), ce_fwd_range, &j);
  double sum = 0.0;
  for (int n = 0; n < N; n++)
    sum += row_loss[n];
  free (row_loss);
  *loss = valid ? (float) (sum / valid) : 0.f;
  *n_valid = valid;
  return SUTRA_OK;
}

static void
ce_bwd_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const CeJob *j = ctx;
  (void) ti;
  int V = j->V;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = j->logits + (size_t) r * V;
    float *d = j->dl + (size_t) r * V;
    int t = j->targets[r];
    if (t == SUTRA_IGNORE_INDEX) {
      memset (d, 0, sizeof (float) * (size_t) V);
      continue;
    }
    float m = -INFINITY;
    for (int i = 0; i < V; i++)
      m = x[i] > m ? x[i] : m;
    float sum = 0.f;
    for (int i = 0; i < V; i++) {
      float e = expf (x[i] - m);
      d[i] = e;                      /* safe when d aliases x: x[i] is not read again */
      sum += e;
    }
    float k = j->scale / sum;
    for (int i = 0; i < V; i++)
      d[i] *= k;
    d[t] -= j->scale;
  }
}

void
sutra_cross_entropy_backward (float *dlogits, const float *logits, const int *targets, float dloss,
                              int n_valid, int N, int V)
{
  CeJob j = { .dl = dlogits, .logits = logits, .targets = targets, .V = V,
              .scale = n_valid > 0 ? dloss / (float) n_valid : 0.f };
  sutra_parallel_for (N, 1 + 4096 / (V > 0 ? V : 1), ce_bwd_range, &j);
}
