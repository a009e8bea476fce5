/* sutra-qcalib.c: input statistics, GPTQ and the AWQ scale search (see sutra-qcalib.h).
 *
 * GPTQ follows the paper's Algorithm 1 and its reference implementation (gptq.py fasterquant):
 *   H += damp * mean(diag H) * I;  U = upper Cholesky factor of H^-1 (H^-1 = U^T U)
 *   for each block of B columns [i1, i2):
 *     for i in block:  (group params from the current W at each group start)
 *       q_i = quant(w_i);  e = (w_i - q_i) / U_ii;  W[:, i+1:i2] -= e U_i,i+1:i2;  E[:, i] = e
 *     W[:, i2:] -= E U[i1:i2, i2:]                       (the lazy batch update, one sgemm)
 * U comes from one Cholesky of the index-reversed H: if J H J = L L^T then U = J L^-1 J
 * (upper, positive diagonal, and U^T U = J L^-T L^-1 J = (J H J)^-1 reversed = H^-1).
 * Rows are independent inside a block (each row's update uses only its own errors), so a
 * block's column loop runs in parallel over rows. */
#include "sutra-qcalib.h"
#include "sutra-quant-private.h"
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool
cancelled (const atomic_bool *c)
{
  return c && atomic_load_explicit (c, memory_order_relaxed);
}

/* ------------------------------------------------------------------------------------------ */
/* statistics                                                                                 */
/* ------------------------------------------------------------------------------------------ */

SutraStatus
sutra_qstats_init (SutraQStats *s, int in, bool with_hessian, SutraError *err)
{
  memset (s, 0, sizeof *s);
  s->in = in;
  s->abs_sum = sutra_try_alloc (sizeof (double) * (size_t) in, "activation statistics", err);
  if (!s->abs_sum)
    return SUTRA_ERR_NOMEM;
  if (with_hessian) {
    s->H = sutra_try_alloc (sizeof (float) * (size_t) in * in, "Hessian statistics", err);
    if (!s->H) {
      sutra_qstats_clear (s);
      return SUTRA_ERR_NOMEM;
    }
  }
  return SUTRA_OK;
}

void
sutra_qstats_clear (SutraQStats *s)
{
  sutra_aligned_free (s->H);
  sutra_aligned_free (s->abs_sum);
  memset (s, 0, sizeof *s);
}

void
sutra_qstats_add (SutraQStats *s, const float *x, int N)
{
  int C = s->in;
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
      s->abs_sum[c] += fabsf (x[(size_t) n * C + c]);
  s->tokens += N;
  if (s->H)   /* H [C, C] += x^T x */
    sutra_sgemm (true, false, C, C, N, 1.f, x, C, x, C, 1.f, s->H, C);
}

/* ------------------------------------------------------------------------------------------ */
/* dense linear algebra in double                                                             */
/* ------------------------------------------------------------------------------------------ */

/* In-place lower Cholesky A = L L^T (row-major n x n; only the lower triangle is read or
 * written). Right-looking, blocks of 64: the diagonal block unblocked, the panel below by a
 * triangular solve, the trailing matrix by a rank-64 update. Returns false on a non-positive
 * pivot. */
static bool
cholesky_lower (double *A, int n)
{
  const int NB = 64;
  for (int k = 0; k < n; k += NB) {
    int kb = n - k < NB ? n - k : NB;
    for (int j = k; j < k + kb; j++) {
      double d = A[(size_t) j * n + j];
      for (int p = k; p < j; p++)
        d -= A[(size_t) j * n + p] * A[(size_t) j * n + p];
      if (!(d > 0.0) || !isfinite (d))
        return false;
      d = sqrt (d);
      A[(size_t) j * n + j] = d;
      for (int i = j + 1; i < k + kb; i++) {
        double v = A[(size_t) i * n + j];
        for (int p = k; p < j; p++)
          v -= A[(size_t) i * n + p] * A[(size_t) j * n + p];
        A[(size_t) i * n + j] = v / d;
      }
    }
    int m = n - k - kb;
    if (m > 0) {
      double *A21 = A + (size_t) (k + kb) * n + k;
      /* A21 = A21 L11^-T */
      cblas_dtrsm (CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, m, kb, 1.0,
                   A + (size_t) k * n + k, n, A21, n);
      /* A22 -= A21 A21^T */
      cblas_dsyrk (CblasRowMajor, CblasLower, CblasNoTrans, m, kb, -1.0, A21, n, 1.0,
                   A + (size_t) (k + kb) * n + k + kb, n);
    }
  }
  return true;
}

/* U [n, n] (float, upper) with H^-1 = U^T U, from H [n, n] (double, symmetric, damped).
 * work: 2 n^2 doubles. */
static bool
inverse_upper_factor (const double *H, int n, float *U, double *work)
{
  double *A = work, *X = work + (size_t) n * n;
  /* A = J H J (index reversal) */
  for (int i = 0; i < n; i++)
    for (int j = 0; j <= i; j++)
      A[(size_t) i * n + j] = H[(size_t) (n - 1 - i) * n + (n - 1 - j)];
  if (!cholesky_lower (A, n))
    return false;
  /* X = L^-1 (solve L X = I) */
  memset (X, 0, sizeof (double) * (size_t) n * n);
  for (int i = 0; i < n; i++)
    X[(size_t) i * n + i] = 1.0;
  cblas_dtrsm (CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, n, n, 1.0, A, n,
               X, n);
  /* U = J X J */
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      U[(size_t) i * n + j] = j >= i ? (float) X[(size_t) (n - 1 - i) * n + (n - 1 - j)] : 0.f;
  return true;
}

/* ------------------------------------------------------------------------------------------ */
/* GPTQ                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  SutraQWeight *q;
  float *W;          /* [rows, cols] working copy (lazy updates land here) */
  const float *U;    /* [cols, cols] */
  float *E;          /* [rows, B] scaled errors of the block */
  int B, i1, count;
} GptqBlock;

static void
gptq_block_rows (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const GptqBlock *j = ctx;
  SutraQWeight *q = j->q;
  int cols = q->cols, G = q->group;
  (void) ti;
  for (int64_t r = r0; r < r1; r++) {
    float *w = j->W + (size_t) r * cols + j->i1;    /* this row's block, updated in place */
    float *e = j->E + (size_t) r * j->B;
    float s = 0.f;
    int z = 0;
    uint8_t *row = sq_qs_mut (q) + (size_t) r * q->row_bytes;
    for (int i = 0; i < j->count; i++) {
      int col = j->i1 + i, g = col / G;
      if (col % G == 0) {       /* a group starts: its parameters from the current weights */
        int n = cols - col < G ? cols - col : G;
        sutra_int4_group_params (w + i, n, &s, &z);
        sq_scales_mut (q)[(size_t) r * q->ngroups + g] = s;
        sq_zeros_mut (q)[(size_t) r * q->ngroups + g] = (uint8_t) z;
      }
      int c = sutra_int4_code (w[i], s, z);
      sq_q4_set (row + (size_t) g * G / 2, col - g * G, c);
      float deq = (float) (c - z) * s;
      /* error feedback: e = (w - q) / U_ii; w[i+1:] -= e U[i, i+1:] */
      const float *Ui = j->U + (size_t) col * cols;
      float ei = (w[i] - deq) / Ui[col];
      e[i] = ei;
      for (int k = i + 1; k < j->count; k++)
        w[k] -= ei * Ui[j->i1 + k];
    }
  }
}

SutraStatus
sutra_gptq_quantize (const float *w, int rows, int cols, const SutraQStats *st,
                     const SutraQuantParams *p, const SutraGptqOptions *o, SutraQWeight **out,
                     SutraError *err)
{
  SutraGptqOptions def = { 0 };
  if (!o)
    o = &def;
  if (p->type != SUTRA_QUANT_INT4 || !st->H || st->in != cols)
    return sutra_error_set (err, SUTRA_ERR_INVALID,
                            "gptq: needs int4 parameters and a [%d, %d] Hessian", cols, cols);
  SutraQuantParams qp = *p;
  qp.method = SUTRA_QMETHOD_GPTQ;
  SutraQWeight *q;
  SutraStatus status = sutra_qweight_alloc (&qp, rows, cols, false, &q, err);
  if (status)
    return status;
  int B = o->block > 0 ? o->block : 128;
  if (B % q->group != 0)
    B = q->group * ((B + q->group - 1) / q->group);
  size_t n2 = (size_t) cols * cols;
  float *W = sutra_try_alloc (sizeof (float) * (size_t) rows * cols, "gptq weights", err);
  float *U = sutra_try_alloc (sizeof (float) * n2, "gptq inverse Hessian", err);
  float *E = sutra_try_alloc (sizeof (float) * (size_t) rows * B, "gptq errors", err);
  double *H = sutra_try_alloc (sizeof (double) * n2 * 3, "gptq Hessian", err);
  if (!W || !U || !E || !H) {
    status = SUTRA_ERR_NOMEM;
    goto out;
  }
  memcpy (W, w, sizeof (float) * (size_t) rows * cols);
  /* H in double; dead channels (never active) get H_ii = 1 and zero weights */
  double mean_diag = 0.0;
  for (int i = 0; i < cols; i++) {
    for (int j = 0; j < cols; j++)
      H[(size_t) i * cols + j] = st->H[(size_t) i * cols + j];
    if (H[(size_t) i * cols + i] == 0.0) {
      H[(size_t) i * cols + i] = 1.0;
      for (int r = 0; r < rows; r++)
        W[(size_t) r * cols + i] = 0.f;
    }
    mean_diag += H[(size_t) i * cols + i];
  }
  mean_diag /= cols;
  /* dampening: the paper's 1% of the mean diagonal, raised tenfold while H stays indefinite */
  double damp = (o->damp > 0.f ? o->damp : 0.01f) * mean_diag, added = 0.0;
  bool ok = false;
  for (int attempt = 0; attempt < 5 && !ok; attempt++, damp *= 10.0) {
    for (int i = 0; i < cols; i++)
      H[(size_t) i * cols + i] += damp - added;
    added = damp;
    ok = inverse_upper_factor (H, cols, U, H + n2);
  }
  if (!ok) {
    status = sutra_error_set (err, SUTRA_ERR_NUMERIC,
                              "gptq: the input Hessian is not positive definite even with "
                              "dampening %.3g (calibration inputs degenerate?)", damp / 10.0);
    goto out;
  }
  for (int i1 = 0; i1 < cols; i1 += B) {
    if (cancelled (o->cancel)) {
      status = sutra_error_set (err, SUTRA_ERR_CANCELLED, "gptq: cancelled");
      goto out;
    }
    int count = cols - i1 < B ? cols - i1 : B;
    GptqBlock job = { q, W, U, E, B, i1, count };
    sutra_parallel_for (rows, 8, gptq_block_rows, &job);
    int rest = cols - i1 - count;
    if (rest > 0)   /* W[:, i2:] -= E [rows, count] U[i1:i2, i2:] */
      sutra_sgemm (false, false, rows, rest, count, -1.f, E, B, U + (size_t) i1 * cols + i1 + count,
                   cols, 1.f, W + i1 + count, cols);
  }
out:
  sutra_aligned_free (W);
  sutra_aligned_free (U);
  sutra_aligned_free (E);
  sutra_aligned_free (H);
  if (status) {
    sutra_qweight_free (q);
    return status;
  }
  *out = q;
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* AWQ                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* D [rows, cols] = W - Q(W diag s) diag(1/s), with Q the INT4 round to nearest of groups G */
static void
awq_fake_error (const float *w, int rows, int cols, int G, const float *s, float *D)
{
  float tmp[128];
  for (int r = 0; r < rows; r++)
    for (int g0 = 0; g0 < cols; g0 += G) {
      int n = cols - g0 < G ? cols - g0 : G;
      const float *x = w + (size_t) r * cols + g0;
      for (int i = 0; i < n; i++)
        tmp[i] = x[i] * s[g0 + i];
      float sc;
      int z;
      sutra_int4_group_params (tmp, n, &sc, &z);
      for (int i = 0; i < n; i++) {
        float deq = (float) (sutra_int4_code (tmp[i], sc, z) - z) * sc;
        D[(size_t) r * cols + g0 + i] = x[i] - deq / s[g0 + i];
      }
    }
}

/* sum_r d_r^T H d_r; DH: [rows, cols] scratch */
static double
quad_error (const float *D, int rows, int cols, const float *H, float *DH)
{
  sutra_sgemm (false, false, rows, cols, cols, 1.f, D, cols, H, cols, 0.f, DH, cols);
  double e = 0.0;
  for (size_t i = 0; i < (size_t) rows * cols; i++)
    e += (double) D[i] * DH[i];
  return e;
}

SutraStatus
sutra_awq_search (const float *const *w, const int *rows, int n, int cols, const SutraQStats *st,
                  const SutraQuantParams *p, const SutraAwqOptions *o, float *s_out,
                  SutraAwqResult *res, SutraError *err)
{
  SutraAwqOptions def = { 0 };
  if (!o)
    o = &def;
  if (p->type != SUTRA_QUANT_INT4 || !st->H || st->in != cols)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "awq: needs int4 parameters and statistics of "
                            "%d channels with H", cols);
  int G = p->group_size ? p->group_size : 64, grid = o->grid > 0 ? o->grid : 20;
  int maxr = 0;
  for (int i = 0; i < n; i++)
    maxr = rows[i] > maxr ? rows[i] : maxr;
  float *D = sutra_try_alloc (sizeof (float) * (size_t) maxr * cols, "awq scratch", err);
  float *DH = sutra_try_alloc (sizeof (float) * (size_t) maxr * cols, "awq scratch", err);
  float *xmax = sutra_try_alloc (sizeof (float) * (size_t) cols * 2, "awq scales", err);
  SutraStatus status = SUTRA_OK;
  if (!D || !DH || !xmax) {
    status = SUTRA_ERR_NOMEM;
    goto out;
  }
  float *s = xmax + cols;
  /* x_max = mean |x| per channel; tied channels share their class mean */
  double tok = st->tokens > 0 ? st->tokens : 1.0;
  for (int c = 0; c < cols; c++)
    xmax[c] = (float) (st->abs_sum[c] / tok);
  if (o->tie) {
    double *sum = sutra_xcalloc ((size_t) o->n_classes, sizeof (double));
    int *cnt = sutra_xcalloc ((size_t) o->n_classes, sizeof (int));
    for (int c = 0; c < cols; c++) {
      sum[o->tie[c]] += xmax[c];
      cnt[o->tie[c]]++;
    }
    for (int c = 0; c < cols; c++)
      xmax[c] = (float) (sum[o->tie[c]] / cnt[o->tie[c]]);
    free (sum);
    free (cnt);
  }
  double best = INFINITY;
  for (int k = 0; k < grid; k++) {
    if (cancelled (o->cancel)) {
      status = sutra_error_set (err, SUTRA_ERR_CANCELLED, "awq: cancelled");
      goto out;
    }
    /* s = clamp (x_max^alpha, 1e-4); s /= sqrt (max s * min s) */
    float alpha = (float) k / (float) grid, smax = 0.f, smin = INFINITY;
    for (int c = 0; c < cols; c++) {
      float v = powf (xmax[c], alpha);
      v = v < 1e-4f ? 1e-4f : v;
      s[c] = v;
      smax = fmaxf (smax, v);
      smin = fminf (smin, v);
    }
    float norm = sqrtf (smax * smin);
    for (int c = 0; c < cols; c++)
      s[c] /= norm;
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
      awq_fake_error (w[i], rows[i], cols, G, s, D);
      loss += quad_error (D, rows[i], cols, st->H, DH);
    }
    if (k == 0)
      res->loss_rtn = loss;
    if (loss < best) {
      best = loss;
      res->alpha = alpha;
      res->loss = loss;
      memcpy (s_out, s, sizeof (float) * (size_t) cols);
    }
  }
out:
  sutra_aligned_free (D);
  sutra_aligned_free (DH);
  sutra_aligned_free (xmax);
  return status;
}

#define CLIP_STEPS 10      /* llm-awq auto_clip: max_shrink 0.5 over a grid of 20 */

/* Clips ws [rows, cols] (= W diag s) group by group to the range with the least output error
 * on the scaled inputs: for group g, H' = diag(1/s) H_gg diag(1/s); every row's CLIP_STEPS
 * candidates d = ws_g - Q(clamp(ws_g, +-m)) go through one sgemm D H' per group. */
static SutraStatus
awq_clip (float *ws, int rows, int cols, int G, const float *s, const SutraQStats *st,
          SutraError *err)
{
  size_t nd = (size_t) rows * CLIP_STEPS * G;
  float *D = sutra_try_alloc (sizeof (float) * nd * 2, "awq clipping", err);
  float *Hg = sutra_try_alloc (sizeof (float) * (size_t) G * G, "awq clipping", err);
  if (!D || !Hg) {
    sutra_aligned_free (D);
    sutra_aligned_free (Hg);
    return SUTRA_ERR_NOMEM;
  }
  float *DH = D + nd, tmp[128];
  for (int g0 = 0; g0 < cols; g0 += G) {
    int n = cols - g0 < G ? cols - g0 : G;
    for (int a = 0; a < n; a++)
      for (int b = 0; b < n; b++)
        Hg[a * n + b] = st->H[(size_t) (g0 + a) * cols + g0 + b] / (s[g0 + a] * s[g0 + b]);
    for (int r = 0; r < rows; r++) {
      const float *x = ws + (size_t) r * cols + g0;
      float amax = 0.f;
      for (int i = 0; i < n; i++)
        amax = fmaxf (amax, fabsf (x[i]));
      for (int k = 0; k < CLIP_STEPS; k++) {
        float mv = amax * (1.f - (float) k / 20.f), sc;
        int z;
        for (int i = 0; i < n; i++)
          tmp[i] = fminf (fmaxf (x[i], -mv), mv);
        sutra_int4_group_params (tmp, n, &sc, &z);
        float *d = D + ((size_t) r * CLIP_STEPS + k) * n;
        for (int i = 0; i < n; i++)
          d[i] = x[i] - (float) (sutra_int4_code (tmp[i], sc, z) - z) * sc;
      }
    }
    /* DH [rows * steps, n] = D H'; error = row . row */
    sutra_sgemm (false, false, rows * CLIP_STEPS, n, n, 1.f, D, n, Hg, n, 0.f, DH, n);
    for (int r = 0; r < rows; r++) {
      double best = INFINITY;
      int bk = 0;
      for (int k = 0; k < CLIP_STEPS; k++) {
        const float *d = D + ((size_t) r * CLIP_STEPS + k) * n, *dh = DH + ((size_t) r * CLIP_STEPS + k) * n;
        double e = 0;
        for (int i = 0; i < n; i++)
          e += (double) d[i] * dh[i];
        if (e < best) {
          best = e;
          bk = k;
        }
      }
      float *x = ws + (size_t) r * cols + g0, amax = 0.f;
      for (int i = 0; i < n; i++)
        amax = fmaxf (amax, fabsf (x[i]));
      float mv = amax * (1.f - (float) bk / 20.f);
      for (int i = 0; i < n; i++)
        x[i] = fminf (fmaxf (x[i], -mv), mv);
    }
  }
  sutra_aligned_free (D);
  sutra_aligned_free (Hg);
  return SUTRA_OK;
}

SutraStatus
sutra_awq_quantize (const float *w, int rows, int cols, const float *s, bool keep_in_scale,
                    const SutraQStats *clip, const SutraQuantParams *p, SutraQWeight **out,
                    SutraError *err)
{
  SutraQuantParams qp = *p;
  qp.method = SUTRA_QMETHOD_AWQ;
  float *ws = sutra_try_alloc (sizeof (float) * (size_t) rows * cols, "awq scaled weights", err);
  if (!ws)
    return SUTRA_ERR_NOMEM;
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++)
      ws[(size_t) r * cols + c] = w[(size_t) r * cols + c] * s[c];
  SutraQWeight *q;
  SutraStatus st = SUTRA_OK;
  if (clip && clip->H && clip->in == cols)
    st = awq_clip (ws, rows, cols, p->group_size ? p->group_size : 64, s, clip, err);
  if (!st)
    st = sutra_qweight_alloc (&qp, rows, cols, keep_in_scale, &q, err);
  if (!st) {
    sutra_int4_quantize_rows (q, ws);
    if (keep_in_scale)
      for (int c = 0; c < cols; c++)
        ((float *) q->in_scale)[c] = 1.f / s[c];
    *out = q;
  }
  sutra_aligned_free (ws);
  return st;
}

double
sutra_qstats_output_error (const SutraQStats *st, const float *w, const SutraQWeight *q)
{
  int rows = q->rows, cols = q->cols;
  SUTRA_ASSERT (st->H && st->in == cols);
  float *D = sutra_xmalloc (sizeof (float) * (size_t) rows * cols * 2);
  sutra_qweight_dequant_rows (q, 0, rows, D);
  for (size_t i = 0; i < (size_t) rows * cols; i++)
    D[i] = w[i] - D[i];
  double e = quad_error (D, rows, cols, st->H, D + (size_t) rows * cols);
  free (D);
  return e;
}
