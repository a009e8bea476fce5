/* sutra-qmatmul.c: products with packed weights, kernel dispatch and the _naive twins.
 *
 * Matrix-vector (decode): x is copied once into a zero-padded buffer of the padded row length
 * (times in_scale for AWQ weights whose scales were not folded), then rows are split across
 * the sutra pool and each range runs the format's kernel.
 *
 * INT4 is the exception: its kernels take x as 8-bit codes per 32-value block and use integer
 * dot products (sutra_int4_prepare_x builds that input; the order is in sutra-int4.c).
 * Summation order of NF4 and INT8 (one definition each, implemented by the naive twin, the
 * scalar kernel and the SIMD kernels, which therefore agree bit for bit):
 *   INT8: element e of a 32-value block feeds lane e % 8 of a partial sum p[8]: p[l] = w_e * x_e
 *   for the first chunk (e < 8), then p[l] = fma (w_e, x_e, p[l]) in order of e;
 *   acc[l] = acc[l] + p[l]; row value = hsum8 (acc) times the row scale.
 *   NF4: the same with 16 lanes over a block of 64 (lane e % 16, product for e < 16), then
 *   acc[l] = fma (absmax, p[l], acc[l]) and row value = hsum8 (acc[l] + acc[l + 8]).
 *   hsum8 (a) = ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)); accumulate adds the row
 *   value to y[r] last.
 * Padding values (code 0 against x = 0) take part in the sums like any other value.
 *
 * Matrix-matrix: each thread dequantizes tiles of rows into its own scratch buffer and calls
 * single-threaded cblas_sgemm on them (forward: a row range of W per thread, so threads write
 * disjoint output columns; input gradient: a column range of W per thread, accumulating over
 * row tiles, so threads write disjoint columns of din). Tiles are sized to stay in L2. */
#include "sutra-quant-private.h"
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define TILE_BYTES (384u * 1024u)   /* dequantized tile size per thread */

/* ------------------------------------------------------------------------------------------ */
/* dispatch                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static SutraSimdChoice kernel_choice = SUTRA_SIMD_CHOICE_INIT ("SUTRA_QUANT_KERNEL");

_Static_assert ((int) SUTRA_QKERNEL_AVX512 == (int) SUTRA_SIMD_AVX512
                && (int) SUTRA_QKERNEL_AUTO == (int) SUTRA_SIMD_AUTO,
                "kernel levels follow SutraSimdLevel");

SutraQuantKernel
sutra_quant_set_kernel (SutraQuantKernel k)
{
  return (SutraQuantKernel) sutra_simd_choice_set (&kernel_choice, (SutraSimdLevel) k);
}

SutraQuantKernel
sutra_quant_get_kernel (void)
{
  return (SutraQuantKernel) sutra_simd_choice_get (&kernel_choice);
}

const char *
sutra_quant_kernel_name (SutraQuantKernel k)
{
  return sutra_simd_level_name ((SutraSimdLevel) k);
}

static const SqKernels *
kernels_variant (const SutraQWeight *q, int v)
{
  const SqKernels *k;
  switch (q->p.type) {
  case SUTRA_QUANT_NF4: k = &sutra_nf4_kernels[v]; break;
  case SUTRA_QUANT_INT4: k = &sutra_int4_kernels[v]; break;
  default: k = &sutra_int8_kernels[v]; break;
  }
  return k->matvec ? k : k - v;   /* not built for x86-64: the scalar entry */
}

static const SqKernels *
kernels_for (const SutraQWeight *q)
{
  return kernels_variant (q, (int) sutra_quant_get_kernel () - (int) SUTRA_QKERNEL_SCALAR);
}

/* dst [c1 - c0] = row r, columns [c0, c1), times in_scale when the weight has one */
static inline void
dequant (const SqKernels *k, const SutraQWeight *q, int r, int c0, int c1, float *dst)
{
  k->dequant (q, r, c0, c1, dst);
  if (q->in_scale)
    for (int c = c0; c < c1; c++)
      dst[c - c0] *= q->in_scale[c];
}

void
sutra_qweight_dequant_rows (const SutraQWeight *q, int row0, int nrows, float *dst)
{
  const SqKernels *k = kernels_for (q);
  SUTRA_ASSERT (row0 >= 0 && nrows >= 0 && row0 + nrows <= q->rows);
  for (int r = 0; r < nrows; r++)
    dequant (k, q, row0 + r, 0, q->cols, dst + (size_t) r * q->cols);
}

/* ------------------------------------------------------------------------------------------ */
/* matrix-vector                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* xp [padded cols] = x (times in_scale), zeros after cols */
static void
pad_input (const SutraQWeight *q, const float *x, float *xp)
{
  size_t n = sq_padded_cols (q);
  if (q->in_scale)
    for (int c = 0; c < q->cols; c++)
      xp[c] = x[c] * q->in_scale[c];
  else
    memcpy (xp, x, sizeof (float) * (size_t) q->cols);
  memset (xp + q->cols, 0, sizeof (float) * (n - (size_t) q->cols));
}

typedef struct {
  const SutraQWeight *q;
  const SqKernels *k;
  const float *xp;
  float *y;
  bool acc;
} MatvecJob;

static void
matvec_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const MatvecJob *j = ctx;
  (void) ti;
  j->k->matvec (j->q, j->xp, j->y, (int) r0, (int) r1, j->acc);
}

size_t
sutra_qweight_matvec_xsize (const SutraQWeight *q)
{
  if (q->p.type == SUTRA_QUANT_INT4)
    return (size_t) sq_int4_npairs (q) * (sizeof (SqInt4XPair) / sizeof (float));
  return sq_padded_cols (q);
}

void
sutra_qweight_matvec_prepare (const SutraQWeight *q, const float *x, float *xp)
{
  if (q->p.type == SUTRA_QUANT_INT4)
    sutra_int4_prepare_x (q, x, (SqInt4XPair *) (void *) xp);
  else
    pad_input (q, x, xp);
}

bool
sutra_qweight_matvec_same_input (const SutraQWeight *a, const SutraQWeight *b)
{
  return a->p.type == b->p.type && a->cols == b->cols && sq_padded_cols (a) == sq_padded_cols (b)
         && !a->in_scale && !b->in_scale;
}

void
sutra_qweight_matvec_rows (const SutraQWeight *q, const float *xp, float *y, int r0, int r1,
                           bool accumulate)
{
  kernels_for (q)->matvec (q, xp, y, r0, r1, accumulate);
}

void
sutra_qweight_matvec (const SutraQWeight *q, const float *x, float *y, bool accumulate)
{
  float *xp = sutra_thread_scratch (SQ_SCRATCH_X, sutra_qweight_matvec_xsize (q));
  sutra_qweight_matvec_prepare (q, x, xp);
  MatvecJob j = { q, kernels_for (q), xp, y, accumulate };
  /* at least ~32k weights per thread, or the hand-off costs more than it saves */
  int64_t grain = 4 + 32768 / q->cols;
  sutra_parallel_for (q->rows, grain, matvec_range, &j);
}

void
sutra_qweight_matvec_naive (const SutraQWeight *q, const float *x, float *y, bool accumulate)
{
  size_t n = sq_padded_cols (q);
  float *xp = NULL, *d = NULL;
  int8_t *xq = NULL;
  if (q->p.type == SUTRA_QUANT_INT4) {      /* x as 8-bit codes per block of 32, in order */
    xq = sutra_xmalloc (n);
    d = sutra_xmalloc (sizeof (float) * (n / SUTRA_Q4_SUB));
    for (size_t k = 0; k < n / SUTRA_Q4_SUB; k++)
      sutra_int4_q8_block (q, x, (int) k, xq + k * SUTRA_Q4_SUB, &d[k]);
  } else {
    xp = sutra_xcalloc (n, sizeof (float));
    for (int c = 0; c < q->cols; c++)
      xp[c] = q->in_scale ? x[c] * q->in_scale[c] : x[c];
  }
  for (int r = 0; r < q->rows; r++) {
    float v;
    switch (q->p.type) {
    case SUTRA_QUANT_NF4: v = sutra_nf4_row_dot_naive (q, r, xp); break;
    case SUTRA_QUANT_INT4: v = sutra_int4_row_dot_naive (q, r, xq, d); break;
    default: v = sutra_int8_row_dot_naive (q, r, xp); break;
    }
    y[r] = accumulate ? y[r] + v : v;
  }
  free (xp);
  free (xq);
  free (d);
}

/* ------------------------------------------------------------------------------------------ */
/* matrix-matrix                                                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  const SutraQWeight *q;
  const SqKernels *k;
  const float *in;      /* forward: in [N, cols]; backward: dout [N, rows] */
  float *out;           /* forward: out [N, rows]; backward: din [N, cols] */
  int N;
  bool acc;
  int tile_rows;
  int col_unit;         /* backward: columns are split in multiples of this */
} TileJob;

/* forward over rows [r0, r1): out[:, r] (+)= in W[r, :]^T, a tile of rows at a time */
static void
forward_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const TileJob *j = ctx;
  const SutraQWeight *q = j->q;
  float *tile = sutra_thread_scratch (SQ_SCRATCH_TILE, (size_t) j->tile_rows * q->cols);
  (void) ti;
  for (int64_t r = r0; r < r1; r += j->tile_rows) {
    int nr = (int) (r1 - r < j->tile_rows ? r1 - r : j->tile_rows);
    for (int i = 0; i < nr; i++)
      dequant (j->k, q, (int) r + i, 0, q->cols, tile + (size_t) i * q->cols);
    /* out [N, nr] (at column r) = in [N, cols] tile [nr, cols]^T */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, j->N, nr, q->cols, 1.f, j->in, q->cols,
                 tile, q->cols, j->acc ? 1.f : 0.f, j->out + r, q->rows);
  }
}

void
sutra_qweight_matmul (const SutraQWeight *q, const float *in, float *out, int N, bool accumulate)
{
  if (N <= 0)
    return;
  if (N == 1) {
    sutra_qweight_matvec (q, in, out, accumulate);
    return;
  }
  TileJob j = { q, kernels_for (q), in, out, N, accumulate, 0, 0 };
  int tr = (int) (TILE_BYTES / (sizeof (float) * (size_t) q->cols));
  j.tile_rows = tr < 16 ? 16 : tr & ~15;
  sutra_parallel_for (q->rows, 16, forward_range, &j);
}

/* input gradient over column units [u0, u1): din[:, cols] += dout W[:, cols] */
static void
backward_range (void *ctx, int64_t u0, int64_t u1, int ti)
{
  const TileJob *j = ctx;
  const SutraQWeight *q = j->q;
  int c0 = (int) u0 * j->col_unit;
  int c1 = (int) u1 * j->col_unit < q->cols ? (int) u1 * j->col_unit : q->cols;
  int cw = c1 - c0;
  int tr = (int) (TILE_BYTES / (sizeof (float) * (size_t) cw));
  tr = tr < 16 ? 16 : tr & ~15;
  float *tile = sutra_thread_scratch (SQ_SCRATCH_TILE, (size_t) tr * cw);
  (void) ti;
  for (int r = 0; r < q->rows; r += tr) {
    int nr = q->rows - r < tr ? q->rows - r : tr;
    for (int i = 0; i < nr; i++)
      dequant (j->k, q, r + i, c0, c1, tile + (size_t) i * cw);
    /* din [N, cw] (at column c0) += dout [N, nr] (at column r) tile [nr, cw] */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, j->N, cw, nr, 1.f, j->in + r, q->rows,
                 tile, cw, 1.f, j->out + c0, q->cols);
  }
}

void
sutra_qweight_matmul_t (const SutraQWeight *q, const float *dout, float *din, int N)
{
  if (N <= 0)
    return;
  TileJob j = { q, kernels_for (q), dout, din, N, true, 0, 0 };
  /* columns split at group boundaries (any column for INT8, rounded to 16) */
  j.col_unit = q->p.type == SUTRA_QUANT_INT8 ? 16 : q->group;
  int units = (q->cols + j.col_unit - 1) / j.col_unit;
  sutra_parallel_for (units, 1, backward_range, &j);
}

/* ---- naive twins: dequantize everything, then the reference sgemm ---- */

static float *
dequant_all (const SutraQWeight *q)
{
  const SqKernels *k = kernels_variant (q, 0);     /* the scalar dequantization */
  float *w = sutra_xmalloc (sizeof (float) * (size_t) q->rows * q->cols);
  for (int r = 0; r < q->rows; r++)
    dequant (k, q, r, 0, q->cols, w + (size_t) r * q->cols);
  return w;
}

void
sutra_qweight_matmul_naive (const SutraQWeight *q, const float *in, float *out, int N,
                            bool accumulate)
{
  float *w = dequant_all (q);
  sutra_sgemm_naive (false, true, N, q->rows, q->cols, 1.f, in, q->cols, w, q->cols,
                     accumulate ? 1.f : 0.f, out, q->rows);
  free (w);
}

void
sutra_qweight_matmul_t_naive (const SutraQWeight *q, const float *dout, float *din, int N)
{
  float *w = dequant_all (q);
  sutra_sgemm_naive (false, false, N, q->cols, q->rows, 1.f, dout, q->rows, w, q->cols, 1.f, din,
                     q->cols);
  free (w);
}
