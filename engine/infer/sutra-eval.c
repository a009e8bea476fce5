/* sutra-eval.c: token-weighted loss / perplexity, KL divergence between two models, and the
 * comparison with llama.cpp's saved log-probabilities (tools/perplexity --kl-divergence-base).
 * Every log-softmax is computed in double. */
#include "sutra-eval.h"
#include "sutra-fsutil.h"
#include "sutra-pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* log-sum-exp of a row, in double */
static double
row_lse (const float *x, int V)
{
  float mx = x[0];
  for (int i = 1; i < V; i++)
    mx = x[i] > mx ? x[i] : mx;
  double s = 0;
  for (int i = 0; i < V; i++)
    s += exp ((double) x[i] - mx);
  return mx + log (s);
}

static int
row_argmax (const float *x, int V)
{
  int b = 0;
  for (int i = 1; i < V; i++)
    if (x[i] > x[b])
      b = i;
  return b;
}

double
sutra_eval_kl_row (const float *p, const float *q, int V)
{
  double lp = row_lse (p, V), lq = row_lse (q, V), kl = 0;
  for (int i = 0; i < V; i++) {
    double a = (double) p[i] - lp;         /* log p_i */
    kl += exp (a) * (a - ((double) q[i] - lq));
  }
  return kl > 0 ? kl : 0;                  /* rounding can give -1e-17 for equal rows */
}

/* ---- per-row work, split across the pool ---- */
typedef struct {
  const float *lg, *ref;       /* [T, V] */
  const int *target;           /* [T] next-token label or -100 */
  int V;
  double *nll, *ref_nll, *kl;  /* [T] */
  uint8_t *agree;              /* [T] */
} RowJob;

static void
rows_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const RowJob *j = ctx;
  (void) ti;
  for (int64_t t = r0; t < r1; t++) {
    if (j->target[t] < 0)
      continue;
    const float *a = j->lg + (size_t) t * j->V;
    j->nll[t] = row_lse (a, j->V) - a[j->target[t]];
    if (j->ref) {
      const float *b = j->ref + (size_t) t * j->V;
      j->ref_nll[t] = row_lse (b, j->V) - b[j->target[t]];
      j->kl[t] = sutra_eval_kl_row (b, a, j->V);
      j->agree[t] = row_argmax (a, j->V) == row_argmax (b, j->V);
    }
  }
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* nearest-rank percentile of n sorted values */
static double
percentile (double *v, size_t n, double pct)
{
  if (n == 0)
    return 0;
  qsort (v, n, sizeof *v, cmp_double);
  size_t rank = (size_t) ceil (pct / 100.0 * (double) n);
  return v[rank == 0 ? 0 : rank - 1];
}

typedef struct {
  double nll, ref_nll, kl_sum, kl_max, lp_diff;
  int64_t tokens, agree;
  double *kl_all;
  size_t kl_n, kl_cap;
} Acc;

static void
acc_add_kl (Acc *a, double kl)
{
  if (a->kl_n == a->kl_cap) {
    a->kl_cap = a->kl_cap ? 2 * a->kl_cap : 4096;
    a->kl_all = sutra_xrealloc (a->kl_all, sizeof (double) * a->kl_cap);
  }
  a->kl_all[a->kl_n++] = kl;
  a->kl_sum += kl;
  a->kl_max = kl > a->kl_max ? kl : a->kl_max;
}

static void
acc_finish (Acc *a, bool has_ref, int64_t examples, SutraEvalResult *out)
{
  memset (out, 0, sizeof *out);
  out->tokens = a->tokens;
  out->examples = examples;
  out->loss = a->tokens ? a->nll / (double) a->tokens : 0;
  out->perplexity = exp (out->loss);
  out->has_reference = has_ref;
  if (has_ref) {
    out->ref_loss = a->tokens ? a->ref_nll / (double) a->tokens : 0;
    out->ref_perplexity = exp (out->ref_loss);
    out->kl_mean = a->tokens ? a->kl_sum / (double) a->tokens : 0;
    out->kl_max = a->kl_max;
    out->kl_p99 = percentile (a->kl_all, a->kl_n, 99.0);
    out->top1_agreement = a->tokens ? (double) a->agree / (double) a->tokens : 0;
    out->max_logprob_diff = a->lp_diff;
  }
  free (a->kl_all);
}

SutraStatus
sutra_eval_examples (SutraModel *m, const SutraExample *ex, size_t n, const SutraEvalOptions *o,
                     SutraEvalResult *out, SutraError *err)
{
  SutraModel *ref = o ? o->reference : NULL;
  int V = m->cfg.vocab_size;
  if (ref && ref->cfg.vocab_size != V)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "the reference model's vocabulary (%d) differs "
                            "from the model's (%d): KL needs the same tokens", ref->cfg.vocab_size, V);
  int ctx = m->cfg.max_position_embeddings;
  int maxT = 0;
  for (size_t i = 0; i < n; i++) {
    if (ex[i].n > maxT)
      maxT = ex[i].n;
    if (ctx > 0 && ex[i].n > ctx)
      return sutra_error_set (err, SUTRA_ERR_INVALID, "example at line %d has %d tokens, more than "
                              "the model's context (%d); load the data with a shorter seq_len",
                              ex[i].line, ex[i].n, ctx);
  }
  Acc a = { 0 };
  SutraStatus st = SUTRA_OK;
  size_t rows = (size_t) (maxT > 0 ? maxT : 1);
  float *ref_copy = NULL;
  double *nll = sutra_xmalloc (sizeof (double) * rows * 3);
  double *ref_nll = nll + rows, *kl = nll + 2 * rows;
  uint8_t *agree = sutra_xmalloc (rows);
  int *target = sutra_xmalloc (sizeof (int) * rows);
  if (ref) {
    ref_copy = sutra_try_alloc (sizeof (float) * rows * (size_t) V, "reference logits", err);
    if (!ref_copy)
      st = SUTRA_ERR_NOMEM;
  }
  int64_t examples = 0;
  for (size_t i = 0; i < n && !st; i++) {
    const SutraExample *e = &ex[i];
    if (o && o->progress && !o->progress ((double) i / (double) n, o->user_data)) {
      st = sutra_error_set (err, SUTRA_ERR_CANCELLED, "evaluation cancelled");
      break;
    }
    if (e->n < 2)
      continue;
    /* targets: position t predicts labels[t + 1] */
    int T = e->n, any = 0;
    for (int t = 0; t < T; t++) {
      target[t] = t + 1 < T ? e->labels[t + 1] : SUTRA_IGNORE_INDEX;
      if (target[t] >= V || (target[t] < 0 && target[t] != SUTRA_IGNORE_INDEX)) {
        st = sutra_error_set (err, SUTRA_ERR_INVALID, "example at line %d: label %d at position %d "
                              "is outside the vocabulary (%d)", e->line, target[t], t + 1, V);
        break;
      }
      any += target[t] >= 0;
    }
    if (st)
      break;
    examples++;
    if (!any)
      continue;
    SutraBatch b = { 1, T, e->ids, NULL, NULL };
    float *lg;
    if (ref) {
      if ((st = sutra_model_forward (ref, &b, false, &lg, err))) {
        sutra_error_prefix (err, "reference model, example at line %d", e->line);
        break;
      }
      memcpy (ref_copy, lg, sizeof (float) * (size_t) T * V);
    }
    if ((st = sutra_model_forward (m, &b, false, &lg, err))) {
      sutra_error_prefix (err, "example at line %d", e->line);
      break;
    }
    RowJob j = { lg, ref_copy, target, V, nll, ref_nll, kl, agree };
    sutra_parallel_for (T, 1, rows_range, &j);
    for (int t = 0; t < T; t++) {
      if (target[t] < 0)
        continue;
      a.tokens++;
      a.nll += nll[t];
      if (ref) {
        a.ref_nll += ref_nll[t];
        a.agree += agree[t];
        acc_add_kl (&a, kl[t]);
        double d = fabs (nll[t] - ref_nll[t]);
        a.lp_diff = d > a.lp_diff ? d : a.lp_diff;
      }
    }
  }
  free (nll);
  free (agree);
  free (target);
  sutra_aligned_free (ref_copy);
  if (st) {
    free (a.kl_all);
    return st;
  }
  acc_finish (&a, ref != NULL, examples, out);
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* llama.cpp's --kl-divergence-base file                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Row layout (tools/perplexity): nv = 2 * ((n_vocab + 1) / 2) + 4 uint16; the first 4 hold two
 * floats (scale, min_log_prob); then q[v]: log p(v) = min_log_prob + scale * q[v]. */
SutraStatus
sutra_eval_llamacpp_logits (SutraModel *m, const char *path, int bos_id, SutraEvalResult *out,
                            SutraError *err)
{
  char *buf;
  size_t len;
  SutraStatus st = sutra_read_file (path, (size_t) 16 << 30, &buf, &len, err);
  if (st)
    return st;
  int32_t hdr[3];
  if (len < 20 || memcmp (buf, "_logits_", 8) != 0) {
    free (buf);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: not a llama-perplexity logits file (no "
                            "\"_logits_\" magic)", path);
  }
  memcpy (hdr, buf + 8, 12);
  int n_ctx = hdr[0], n_vocab = hdr[1], n_chunk = hdr[2], V = m->cfg.vocab_size;
  if (n_ctx < 4 || n_vocab <= 0 || n_chunk < 0) {
    free (buf);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: bad header (n_ctx %d, n_vocab %d, n_chunk "
                            "%d)", path, n_ctx, n_vocab, n_chunk);
  }
  if (n_vocab != V) {
    free (buf);
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: llama.cpp's vocabulary has %d tokens, the "
                            "model %d", path, n_vocab, V);
  }
  int first = n_ctx / 2, rows = n_ctx - 1 - first;
  size_t nv = 2 * (((size_t) n_vocab + 1) / 2) + 4;
  size_t need = 20 + sizeof (int32_t) * (size_t) n_chunk * n_ctx +
                (size_t) n_chunk * rows * nv * sizeof (uint16_t);
  if (len < need) {
    free (buf);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %zu bytes, expected %zu for %d chunks of %d "
                            "tokens; truncated", path, len, need, n_chunk, n_ctx);
  }
  const char *tokp = buf + 20, *lpp = tokp + sizeof (int32_t) * (size_t) n_chunk * n_ctx;
  int *ids = sutra_xmalloc (sizeof (int) * (size_t) n_ctx);
  float *base = sutra_xmalloc (sizeof (float) * (size_t) V);
  Acc a = { 0 };
  for (int c = 0; c < n_chunk && !st; c++) {
    memcpy (ids, tokp + sizeof (int32_t) * (size_t) c * n_ctx, sizeof (int) * (size_t) n_ctx);
    for (int t = 0; t < n_ctx; t++)
      if (ids[t] < 0 || ids[t] >= V) {
        st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: chunk %d token %d is %d", path, c, t, ids[t]);
        break;
      }
    if (st)
      break;
    int orig0 = ids[0];
    if (bos_id >= 0)
      ids[0] = bos_id;
    SutraBatch b = { 1, n_ctx, ids, NULL, NULL };
    float *lg;
    if ((st = sutra_model_forward (m, &b, false, &lg, err)))
      break;
    ids[0] = orig0;
    for (int r = 0; r < rows; r++) {
      int t = first + r, next = ids[t + 1];
      const uint16_t *q = (const uint16_t *) (lpp + ((size_t) c * rows + r) * nv * sizeof (uint16_t));
      float scale, minlp;
      memcpy (&scale, q, 4);
      memcpy (&minlp, q + 2, 4);
      q += 4;
      for (int v = 0; v < V; v++)
        base[v] = minlp + scale * (float) q[v];   /* log p_llama(v) (already normalized) */
      const float *row = lg + (size_t) t * V;
      double lse = row_lse (row, V), blse = row_lse (base, V);
      double nll = lse - row[next], bnll = blse - base[next];
      a.tokens++;
      a.nll += nll;
      a.ref_nll += bnll;
      acc_add_kl (&a, sutra_eval_kl_row (base, row, V));
      a.agree += row_argmax (row, V) == row_argmax (base, V);
      double d = fabs (nll - bnll);
      a.lp_diff = d > a.lp_diff ? d : a.lp_diff;
    }
  }
  free (ids);
  free (base);
  free (buf);
  if (st) {
    free (a.kl_all);
    return st;
  }
  acc_finish (&a, true, n_chunk, out);
  return SUTRA_OK;
}
