/* sutra-quantize-report.c: what quantization cost, measured: the float and the quantized model
 * scored on the same token windows (perplexity of each, per-position KL divergence of the next-
 * token distributions, llama.cpp's --kl-divergence quantities), and the quantize-to-folder job
 * that writes the result atomically and fills the report. */
#include "sutra-quantize.h"
#include "sutra-fsutil.h"
#include "sutra-pool.h"
#include "sutra-qfile.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------------------------------ */
/* comparison                                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  const float *lr, *lq;    /* logits [T, V] of the reference and the quantized model */
  const int *ids;          /* [T] the window; position t predicts ids[t + 1] */
  int V;
  double *kl, *nll_r, *nll_q;   /* [T - 1] */
  uint8_t *agree;               /* [T - 1] */
} CmpJob;

/* log-sum-exp of a row, max-shifted (expf per element, summed in double) */
static double
lse (const float *x, int V, int *argmax)
{
  float mx = x[0];
  int am = 0;
  for (int v = 1; v < V; v++)
    if (x[v] > mx) {
      mx = x[v];
      am = v;
    }
  double s = 0;
  for (int v = 0; v < V; v++)
    s += expf (x[v] - mx);
  *argmax = am;
  return mx + log (s);
}

static void
cmp_range (void *ctx, int64_t t0, int64_t t1, int ti)
{
  const CmpJob *j = ctx;
  (void) ti;
  for (int64_t t = t0; t < t1; t++) {
    const float *r = j->lr + (size_t) t * j->V, *q = j->lq + (size_t) t * j->V;
    int ar, aq;
    double zr = lse (r, j->V, &ar), zq = lse (q, j->V, &aq);
    /* KL(P || Q) = sum_v p_v (log p_v - log q_v), log p_v = r_v - zr; the difference of the
     * two log-probabilities is formed first (it is small; the logs are not) */
    float dz = (float) (zr - zq);
    double kl = 0;
    for (int v = 0; v < j->V; v++) {
      float lp = r[v] - (float) zr;
      kl += (double) (expf (lp) * ((r[v] - q[v]) - dz));
    }
    int y = j->ids[t + 1];
    j->kl[t] = kl > 0 ? kl : 0;    /* rounding can leave -1e-17 */
    j->nll_r[t] = zr - r[y];
    j->nll_q[t] = zq - q[y];
    j->agree[t] = ar == aq;
  }
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

SutraStatus
sutra_quant_compare (SutraModel *ref, SutraModel *quant, const int *ids, int n, int ctx,
                     const SutraQuantizeOptions *o, SutraQuantCompare *out, SutraError *err)
{
  int V = ref->cfg.vocab_size;
  if (quant->cfg.vocab_size != V)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "the models have different vocabularies "
                            "(%d and %d)", V, quant->cfg.vocab_size);
  if (ctx <= 1)
    ctx = 512;
  if (ref->cfg.max_position_embeddings > 0 && ctx > ref->cfg.max_position_embeddings)
    ctx = ref->cfg.max_position_embeddings;
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= V)
      return sutra_error_set (err, SUTRA_ERR_INVALID, "evaluation id %d at position %d is outside "
                              "the vocabulary (0..%d)", ids[i], i, V - 1);
  int64_t total = 0;
  int windows = 0;
  for (int off = 0; off + 1 < n; off += ctx) {
    int T = n - off < ctx ? n - off : ctx;
    total += T - 1;
    windows++;
  }
  if (total <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "evaluation needs at least 2 token ids");
  double *kl = sutra_try_alloc (sizeof (double) * (size_t) total * 3, "evaluation", err);
  uint8_t *agree = sutra_try_alloc ((size_t) total, "evaluation", err);
  if (!kl || !agree) {
    sutra_aligned_free (kl);
    sutra_aligned_free (agree);
    return SUTRA_ERR_NOMEM;
  }
  double *nr = kl + total, *nq = kl + 2 * total;
  SutraStatus st = SUTRA_OK;
  int64_t pos = 0;
  int w = 0;
  for (int off = 0; off + 1 < n && !st; off += ctx, w++) {
    if (o && o->cancel && atomic_load (o->cancel)) {
      st = sutra_error_set (err, SUTRA_ERR_CANCELLED, "evaluation cancelled");
      break;
    }
    int T = n - off < ctx ? n - off : ctx;
    SutraBatch b = { 1, T, ids + off, NULL, NULL };
    float *lr, *lq;
    st = sutra_model_forward (ref, &b, false, &lr, err);
    if (!st)
      st = sutra_model_forward (quant, &b, false, &lq, err);
    if (st)
      break;
    CmpJob job = { lr, lq, ids + off, V, kl + pos, nr + pos, nq + pos, agree + pos };
    sutra_parallel_for (T - 1, 8, cmp_range, &job);
    pos += T - 1;
    if (o && o->progress) {
      SutraQuantizeProgress p = { SUTRA_QPHASE_EVALUATE, w + 1, windows, NULL,
                                  (double) (w + 1) / windows };
      if (!o->progress (&p, o->user_data))
        st = sutra_error_set (err, SUTRA_ERR_CANCELLED, "evaluation cancelled");
    }
  }
  if (!st) {
    SutraQuantCompare c = { .tokens = total };
    double sr = 0, sq = 0, sk = 0, ag = 0;
    for (int64_t i = 0; i < total; i++) {
      sr += nr[i];
      sq += nq[i];
      sk += kl[i];
      ag += agree[i];
    }
    c.ppl_ref = exp (sr / total);
    c.ppl_quant = exp (sq / total);
    c.kl_mean = sk / total;
    c.top1_agree = ag / total;
    qsort (kl, (size_t) total, sizeof (double), cmp_double);
    int64_t k99 = (int64_t) ceil (0.99 * (double) total) - 1;
    c.kl_p99 = kl[k99 < 0 ? 0 : k99];
    c.kl_max = kl[total - 1];
    *out = c;
  }
  sutra_aligned_free (kl);
  sutra_aligned_free (agree);
  return st;
}

/* ------------------------------------------------------------------------------------------ */
/* quantize to a folder                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* files besides the weights that make a model folder usable */
static const char *const side_files[] = {
  "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
  "tokenizer.model", "vocab.json", "merges.txt", "vocab.txt", "added_tokens.json",
  "chat_template.jinja", "chat_template.json", NULL,
};

/* bytes of the *.safetensors files in dir */
static size_t
weights_bytes (const char *dir)
{
  size_t total = 0;
  DIR *d = opendir (dir);
  if (!d)
    return 0;
  struct dirent *e;
  while ((e = readdir (d))) {
    size_t len = strlen (e->d_name);
    if (len < 12 || strcmp (e->d_name + len - 12, ".safetensors") != 0)
      continue;
    char *p = sutra_path_join (dir, e->d_name);
    struct stat sb;
    if (stat (p, &sb) == 0)
      total += (size_t) sb.st_size;
    free (p);
  }
  closedir (d);
  return total;
}

static bool
dir_is_empty (const char *dir)
{
  DIR *d = opendir (dir);
  if (!d)
    return false;
  struct dirent *e;
  bool empty = true;
  while (empty && (e = readdir (d)))
    if (strcmp (e->d_name, ".") && strcmp (e->d_name, ".."))
      empty = false;
  closedir (d);
  return empty;
}

SutraStatus
sutra_quantize_to_folder (SutraModel *m, const char *out_dir, bool overwrite,
                          const SutraQuantizeOptions *o, const int *eval_ids, int n_eval,
                          int eval_ctx, SutraQuantReport *rep, SutraError *err)
{
  memset (rep, 0, sizeof *rep);
  if (!m->dir)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "quantize: the model was not loaded from a "
                            "folder");
  char rs[PATH_MAX], ro[PATH_MAX];
  if (realpath (m->dir, rs) && realpath (out_dir, ro) && !strcmp (rs, ro))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: the output folder is the model's own "
                            "folder; choose another", out_dir);
  /* an output inside the model folder must stay there (no symlink out of it) */
  SutraStatus cst = sutra_path_check_write (m->dir, out_dir, err);
  if (cst)
    return cst;
  if (sutra_path_exists (out_dir) && !overwrite &&
      (!sutra_is_dir (out_dir) || !dir_is_empty (out_dir)))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s already exists and is not an empty "
                            "folder (remove it or allow overwriting)", out_dir);
  rep->source_file_bytes = weights_bytes (m->dir);
  SutraStatus st = sutra_model_quantize (m, o, &rep->summary, err);
  if (st)
    return st;
  /* write into a temporary sibling, then rename it into place */
  if (o->progress) {
    SutraQuantizeProgress p = { SUTRA_QPHASE_WRITE, 0, 1, NULL, 1.0 };
    if (!o->progress (&p, o->user_data))
      return sutra_error_set (err, SUTRA_ERR_CANCELLED, "quantization cancelled before writing");
  }
  char *tmp = NULL;
  if ((st = sutra_tmpdir_begin (out_dir, &tmp, err)))
    return st;
  SutraDType fd = m->cfg.dtype == SUTRA_F16 || m->cfg.dtype == SUTRA_BF16 ? m->cfg.dtype : SUTRA_F32;
  st = sutra_model_write_quantized_files (m, tmp, fd, err);
  for (int i = 0; !st && side_files[i]; i++) {
    char *src = sutra_path_join (m->dir, side_files[i]);
    if (sutra_is_file (src)) {
      char *dst = sutra_path_join (tmp, side_files[i]);
      st = sutra_copy_file (src, dst, err);
      free (dst);
    }
    free (src);
  }
  if (!st && o->cancel && atomic_load (o->cancel))
    st = sutra_error_set (err, SUTRA_ERR_CANCELLED, "quantization cancelled before writing");
  if (!st)
    st = sutra_tmpdir_commit (tmp, out_dir, err);
  if (st) {
    sutra_rm_rf (tmp, NULL);
    free (tmp);
    if (st != SUTRA_ERR_CANCELLED)
      sutra_error_prefix (err, "%s not written (a previous output there is intact)", out_dir);
    return st;
  }
  free (tmp);
  /* sizes */
  rep->file_bytes = weights_bytes (out_dir);
  rep->params = sutra_model_param_count (m);
  size_t qbytes = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    const SutraLinear *l = m->linears[i];
    if (l->qw) {
      rep->params_quantized += (int64_t) l->in * l->out;
      qbytes += sutra_qweight_bytes (l->qw);
    }
  }
  rep->bits_per_weight = rep->params_quantized ? 8.0 * (double) qbytes / (double) rep->params_quantized : 0;
  rep->bits_per_param_file = 8.0 * (double) rep->file_bytes / (double) rep->params;
  rep->ratio_vs_f32 = 4.0 * (double) rep->params / (double) rep->file_bytes;
  rep->ratio_vs_f16 = 2.0 * (double) rep->params / (double) rep->file_bytes;
  if (eval_ids && n_eval > 1) {
    SutraModel *ref = NULL, *q = NULL;
    st = sutra_model_load (m->dir, &ref, err);
    if (!st)
      st = sutra_model_load (out_dir, &q, err);
    if (!st)
      st = sutra_quant_compare (ref, q, eval_ids, n_eval, eval_ctx, o, &rep->eval, err);
    sutra_model_free (ref);
    sutra_model_free (q);
    if (st)
      return st;
    rep->evaluated = true;
  }
  return SUTRA_OK;
}
