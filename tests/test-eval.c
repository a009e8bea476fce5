/* test-eval.c: evaluation loss against transformers' logits (hf-refs llama-tiny) computed here in
 * double, label masking, KL divergence between models (mean, 99th percentile, hand-computed row),
 * and reading llama.cpp's --kl-divergence-base file (written here in its layout). */
#include "test-util.h"
#include "sutra-eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LOSS_REL_TOL 1e-4      /* model logits are within 1e-4 of transformers' */
#define KL_ABS_TOL 1e-9        /* same computation, different order of sums */
#define QUANT_KL_TOL 1e-6      /* llama.cpp's 16-bit log-prob rows vs the exact ones */

static int *
ref_ids (const SutraSafetensors *refs, const char *name, int *n)
{
  const SutraTensor *t = sutra_safetensors_find (refs, name);
  g_assert_nonnull (t);
  *n = (int) sutra_tensor_numel (t);
  int *ids = g_new (int, *n);
  for (int i = 0; i < *n; i++) {
    int64_t v;
    memcpy (&v, (const char *) t->data + 8 * i, 8);
    ids[i] = (int) v;
  }
  return ids;
}

static double
lse_d (const float *x, int V)
{
  double m = x[0], s = 0;
  for (int i = 1; i < V; i++)
    m = fmax (m, x[i]);
  for (int i = 0; i < V; i++)
    s += exp (x[i] - m);
  return m + log (s);
}

static void
test_kl_row_hand (void)
{
  float p[2] = { 0.f, logf (3.f) }, q[2] = { 5.f, 5.f };
  double want = 0.25 * log (0.5) + 0.75 * log (1.5);
  g_assert_cmpfloat (fabs (sutra_eval_kl_row (p, q, 2) - want), <, 1e-7);
  g_assert_cmpfloat (sutra_eval_kl_row (p, p, 2), ==, 0.0);
  /* shifting all logits changes nothing */
  float p2[2] = { 10.f, 10.f + logf (3.f) };
  g_assert_cmpfloat (fabs (sutra_eval_kl_row (p2, q, 2) - want), <, 1e-6);
}

static void
test_loss_matches_hf_logits (void)
{
  const char *dir = test_shared_path ("hf-refs/llama-tiny");
  if (!dir)
    return;
  SutraError err;
  SutraModel *m;
  test_assert_ok (sutra_model_load (dir, &m, &err), &err);
  char *rp = g_build_filename (dir, "refs.safetensors", NULL);
  SutraSafetensors *refs;
  test_assert_ok (sutra_safetensors_open (rp, &refs, &err), &err);
  g_free (rp);
  int T, V = m->cfg.vocab_size;
  int *ids = ref_ids (refs, "input_ids", &T);
  float *logits = g_new (float, (size_t) T * V);
  int64_t shape[2] = { T, V };
  test_assert_ok (sutra_safetensors_read_f32 (refs, "logits", logits, 2, shape, &err), &err);
  /* two examples: all tokens carry loss; only the second half does (prompt masked) */
  int *lab2 = g_new (int, T);
  for (int t = 0; t < T; t++)
    lab2[t] = t < T / 2 ? -100 : ids[t];
  SutraExample ex[2] = { { ids, ids, T, 1 }, { ids, lab2, T, 2 } };
  double nll = 0;
  int64_t count = 0;
  for (int e = 0; e < 2; e++)
    for (int t = 0; t + 1 < T; t++) {
      int y = ex[e].labels[t + 1];
      if (y < 0)
        continue;
      const float *row = logits + (size_t) t * V;
      nll += lse_d (row, V) - row[y];
      count++;
    }
  SutraEvalResult r;
  test_assert_ok (sutra_eval_examples (m, ex, 2, NULL, &r, &err), &err);
  g_assert_cmpint (r.tokens, ==, count);
  g_assert_cmpint (r.tokens, ==, (T - 1) + (T - T / 2));
  g_assert_cmpint (r.examples, ==, 2);
  double want = nll / (double) count;
  g_test_message ("loss %.6f (transformers' logits: %.6f), perplexity %.3f", r.loss, want, r.perplexity);
  g_assert_cmpfloat (fabs (r.loss - want) / want, <=, LOSS_REL_TOL);
  g_assert_cmpfloat (fabs (r.perplexity - exp (r.loss)), <=, 1e-9 * r.perplexity);
  g_assert_false (r.has_reference);
  /* errors: label outside the vocabulary, longer than the context */
  int *bad = g_memdup2 (ids, sizeof (int) * (size_t) T);
  bad[3] = V + 5;
  SutraExample exb = { ids, bad, T, 17 };
  g_assert_cmpint (sutra_eval_examples (m, &exb, 1, NULL, &r, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "line 17"));
  int L = m->cfg.max_position_embeddings + 1;
  int *longids = g_new0 (int, L);
  SutraExample exl = { longids, longids, L, 4 };
  g_assert_cmpint (sutra_eval_examples (m, &exl, 1, NULL, &r, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "context"));
  g_free (longids);
  g_free (bad);
  g_free (lab2);
  g_free (ids);
  g_free (logits);
  sutra_safetensors_free (refs);
  sutra_model_free (m);
}

static gint
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

static void
test_kl_between_models (void)
{
  const char *dir = test_shared_path ("hf-refs/llama-tiny");
  if (!dir)
    return;
  SutraError err;
  SutraModel *m, *other;
  test_assert_ok (sutra_model_load (dir, &m, &err), &err);
  SutraModelConfig cfg = m->cfg;
  test_assert_ok (sutra_model_new_random (&cfg, 0.3f, 11, &other, &err), &err);
  enum { N = 3, T = 40 };
  int ids[N][T];
  SutraExample ex[N];
  for (int e = 0; e < N; e++) {
    for (int t = 0; t < T; t++)
      ids[e][t] = (t * 37 + e * 101 + 5) % cfg.vocab_size;
    ex[e] = (SutraExample) { ids[e], ids[e], T - e * 7, e + 1 };
  }
  /* a model against itself: no divergence */
  SutraEvalOptions o = { .reference = m };
  SutraEvalResult r;
  test_assert_ok (sutra_eval_examples (m, ex, N, &o, &r, &err), &err);
  g_assert_true (r.has_reference);
  g_assert_cmpfloat (r.kl_mean, <=, 1e-12);
  g_assert_cmpfloat (r.top1_agreement, ==, 1.0);
  g_assert_cmpfloat (fabs (r.ref_loss - r.loss), <=, 1e-12);
  /* against another model: recompute every per-token KL here */
  o.reference = other;
  test_assert_ok (sutra_eval_examples (m, ex, N, &o, &r, &err), &err);
  int V = cfg.vocab_size;
  GArray *kls = g_array_new (FALSE, FALSE, sizeof (double));
  double sum = 0;
  for (int e = 0; e < N; e++) {
    SutraBatch b = { 1, ex[e].n, ex[e].ids, NULL, NULL };
    float *lg;
    test_assert_ok (sutra_model_forward (other, &b, false, &lg, &err), &err);
    float *refl = g_memdup2 (lg, sizeof (float) * (size_t) ex[e].n * V);
    test_assert_ok (sutra_model_forward (m, &b, false, &lg, &err), &err);
    for (int t = 0; t + 1 < ex[e].n; t++) {
      const float *p = refl + (size_t) t * V, *q = lg + (size_t) t * V;
      double lp = lse_d (p, V), lq = lse_d (q, V), kl = 0;
      for (int v = 0; v < V; v++)
        kl += exp (p[v] - lp) * ((p[v] - lp) - (q[v] - lq));
      g_array_append_val (kls, kl);
      sum += kl;
    }
    g_free (refl);
  }
  g_assert_cmpint (r.tokens, ==, (gint64) kls->len);
  g_array_sort (kls, cmp_double);
  double *v = (double *) kls->data;
  size_t rank = (size_t) ceil (0.99 * kls->len);
  g_test_message ("KL mean %.4f p99 %.4f max %.4f, top-1 agreement %.3f", r.kl_mean, r.kl_p99,
                  r.kl_max, r.top1_agreement);
  g_assert_cmpfloat (fabs (r.kl_mean - sum / kls->len), <=, KL_ABS_TOL);
  g_assert_cmpfloat (fabs (r.kl_p99 - v[rank - 1]), <=, KL_ABS_TOL);
  g_assert_cmpfloat (fabs (r.kl_max - v[kls->len - 1]), <=, KL_ABS_TOL);
  g_assert_cmpfloat (r.kl_mean, >, 0.01);
  g_assert_cmpfloat (r.top1_agreement, <, 1.0);
  g_array_free (kls, TRUE);
  /* vocabulary mismatch */
  SutraModelConfig c2 = cfg;
  c2.vocab_size = cfg.vocab_size + 1;
  SutraModel *wide;
  test_assert_ok (sutra_model_new_random (&c2, 0.02f, 1, &wide, &err), &err);
  o.reference = wide;
  g_assert_cmpint (sutra_eval_examples (m, ex, N, &o, &r, &err), ==, SUTRA_ERR_INVALID);
  sutra_model_free (wide);
  sutra_model_free (other);
  sutra_model_free (m);
}

/* writes a llama-perplexity logits file from our own model's logits, quantized as llama.cpp does */
static void
write_kld_file (SutraModel *m, const char *path, int n_ctx, int n_chunk, const int *tokens, int bos)
{
  int V = m->cfg.vocab_size, first = n_ctx / 2;
  size_t nv = 2 * (((size_t) V + 1) / 2) + 4;
  FILE *fp = fopen (path, "wb");
  g_assert_nonnull (fp);
  fwrite ("_logits_", 1, 8, fp);
  int32_t h[3] = { n_ctx, V, n_chunk };
  fwrite (h, 4, 3, fp);
  for (int i = 0; i < n_chunk * n_ctx; i++) {
    int32_t t = tokens[i];
    fwrite (&t, 4, 1, fp);
  }
  uint16_t *row = g_new0 (uint16_t, nv);
  int *ids = g_new (int, n_ctx);
  for (int c = 0; c < n_chunk; c++) {
    memcpy (ids, tokens + c * n_ctx, sizeof (int) * (size_t) n_ctx);
    ids[0] = bos;
    SutraBatch b = { 1, n_ctx, ids, NULL, NULL };
    float *lg;
    SutraError err;
    test_assert_ok (sutra_model_forward (m, &b, false, &lg, &err), &err);
    for (int t = first; t < n_ctx - 1; t++) {
      const float *x = lg + (size_t) t * V;
      float mx = x[0], mn = x[0];
      for (int v = 1; v < V; v++) {
        mx = fmaxf (mx, x[v]);
        mn = fminf (mn, x[v]);
      }
      mn = fmaxf (mn, mx - 16);
      double s = 0;
      for (int v = 0; v < V; v++)
        s += expf (x[v] - mx);
      float lse = (float) log (s), minlp = mn - mx - lse, scale = (mx - mn) / 65535.f;
      memcpy (row, &scale, 4);
      memcpy (row + 2, &minlp, 4);
      for (int v = 0; v < V; v++)
        row[4 + v] = x[v] > mn ? (uint16_t) lrintf ((x[v] - mn) / scale) : 0;
      fwrite (row, 2, nv, fp);
    }
  }
  fclose (fp);
  g_free (row);
  g_free (ids);
}

static void
test_llamacpp_file (void)
{
  const char *dir = test_shared_path ("hf-refs/llama-tiny");
  if (!dir)
    return;
  SutraError err;
  SutraModel *m;
  test_assert_ok (sutra_model_load (dir, &m, &err), &err);
  enum { CTX = 32, CH = 2 };
  int tokens[CTX * CH];
  for (int i = 0; i < CTX * CH; i++)
    tokens[i] = (i * 53 + 7) % m->cfg.vocab_size;
  char *path = g_build_filename (test_tmpdir (), "base.kld", NULL);
  write_kld_file (m, path, CTX, CH, tokens, 1);
  SutraEvalResult r;
  test_assert_ok (sutra_eval_llamacpp_logits (m, path, 1, &r, &err), &err);
  g_test_message ("self vs 16-bit rows: ppl %.4f vs %.4f, KL mean %.2g max %.2g", r.perplexity,
                  r.ref_perplexity, r.kl_mean, r.kl_max);
  g_assert_cmpint (r.tokens, ==, CH * (CTX - 1 - CTX / 2));
  g_assert_cmpfloat (r.kl_max, <=, QUANT_KL_TOL);
  g_assert_cmpfloat (fabs (r.loss - r.ref_loss), <=, 1e-3);
  g_assert_cmpfloat (r.top1_agreement, ==, 1.0);
  /* without the BOS substitution the first token differs: the model sees another context */
  test_assert_ok (sutra_eval_llamacpp_logits (m, path, -1, &r, &err), &err);
  g_assert_cmpfloat (r.kl_max, >, QUANT_KL_TOL);
  /* truncated and foreign files */
  gchar *data;
  gsize len;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_assert_true (g_file_set_contents (path, data, (gssize) len - 10, NULL));
  g_assert_cmpint (sutra_eval_llamacpp_logits (m, path, 1, &r, &err), ==, SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "truncated"));
  g_assert_true (g_file_set_contents (path, "hello world, not logits", -1, NULL));
  g_assert_cmpint (sutra_eval_llamacpp_logits (m, path, 1, &r, &err), ==, SUTRA_ERR_FORMAT);
  g_free (data);
  g_free (path);
  sutra_model_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/eval/kl-row-hand", test_kl_row_hand);
  g_test_add_func ("/engine/eval/loss-matches-hf-logits", test_loss_matches_hf_logits);
  g_test_add_func ("/engine/eval/kl-between-models", test_kl_between_models);
  g_test_add_func ("/engine/eval/llamacpp-logits-file", test_llamacpp_file);
  return g_test_run ();
}
