/* test-rwkv.c: RWKV-4 against rwkv.cpp's tiny trained model and synthetic model
 * (../shared/testdata/rwkv4-tiny), transformers (hf-refs/rwkv4-tiny), PEFT (hf-refs/lora-rwkv4),
 * and a double-precision reference written here from the formulas (transformers semantics,
 * including the literal eval-mode rescaling: weights divided, hidden state halved), which also
 * gives finite-difference gradients for full fine-tuning. */
#include "test-lm-common.h"
#include "sutra-recurrent-private.h"

#define RWKVCPP_MAX_ABS_TOL 1e-4   /* rwkv4-tiny README: max |ours - rwkv.cpp| */
#define RESCALE_MATCH_ABS_TOL 2e-5 /* below the 7e-5 that separates rescaled / plain logits */
#define REF_REL_TOL 1e-5           /* ours vs the double reference (random models) */
#define FD_REL_TOL 2e-3            /* analytic vs central differences, per tensor */

/* ---------------------------------------------------------------------------------------- */
/* rwkv.cpp                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static void
check_rwkvcpp (SutraModel *m, SutraSafetensors *refs, const char *logits_name, bool training,
               double tol, const char *label)
{
  int T, V = m->cfg.vocab_size;
  int *ids = lm_ref_ids (refs, "input_ids", &T);
  size_t n;
  float *ref = lm_ref_f32 (refs, logits_name, &n);
  g_assert_cmpuint (n, ==, (size_t) T * V);
  float *lg = lm_forward_copy (m, ids, 1, T, training);
  double d = test_max_abs_err (lg, ref, n);
  g_test_message ("%s: %s forward vs %s: max abs %.3g (%d positions)", label,
                  training ? "training" : "inference", logits_name, d, T);
  g_assert_cmpfloat (d, <=, tol);
  g_free (lg);
  if (!training) {   /* the recurrent state, one byte at a time and in chunks */
    static const int one[] = { 1, 0 }, chunks[] = { 2, 5, 1, 0 };
    for (int v = 0; v < 2; v++) {
      lg = lm_step_logits (m, ids, T, v ? chunks : one);
      d = test_max_abs_err (lg, ref, n);
      g_test_message ("%s: step (%s) vs %s: max abs %.3g", label, v ? "chunked" : "serial",
                      logits_name, d);
      g_assert_cmpfloat (d, <=, tol);
      g_free (lg);
    }
  }
  g_free (ids);
  g_free (ref);
}

static void
test_rwkvcpp_tiny (void)
{
  const char *dir = test_shared_path ("rwkv4-tiny");
  if (!dir)
    return;
  SutraModel *m = lm_load (dir, NULL);
  g_assert_cmpint (m->cfg.arch, ==, SUTRA_ARCH_RWKV4);
  const char *files[] = { "refs-inprompt.safetensors", "refs-quickfox.safetensors" };
  for (int f = 0; f < 2; f++) {
    SutraSafetensors *refs = lm_open (dir, files[f]);
    check_rwkvcpp (m, refs, "logits", false, RWKVCPP_MAX_ABS_TOL, files[f]);
    check_rwkvcpp (m, refs, "logits", true, RWKVCPP_MAX_ABS_TOL, files[f]);
    if (f == 0) {   /* the file rwkv.cpp's own test compares: the last position of "in */
      size_t n;
      float *last = lm_ref_f32 (refs, "expected_last_logits", &n);
      int T;
      int *ids = lm_ref_ids (refs, "input_ids", &T);
      float *lg = lm_forward_copy (m, ids, 1, T, false);
      double d = test_max_abs_err (lg + (size_t) (T - 1) * n, last, n);
      g_test_message ("expected-logits-4v0-660K: max abs %.3g, argmax %d", d,
                      lm_argmax (lg + (size_t) (T - 1) * n, (int) n));
      g_assert_cmpfloat (d, <=, RWKVCPP_MAX_ABS_TOL);
      g_assert_cmpint (lm_argmax (lg + (size_t) (T - 1) * n, (int) n), ==, lm_argmax (last, (int) n));
      g_free (lg); g_free (ids); g_free (last);
    }
    sutra_safetensors_free (refs);
  }
  sutra_model_free (m);
}

/* The synthetic model: 7 layers (rescale_every 6 triggers once), |k| up to ~300 (the
 * large-exponent path). rwkv.cpp never rescales: our training forward (no rescaling, as
 * transformers in train mode) matches it; our inference matches HF's eval-mode rescaling. */
static void
test_rwkvcpp_synthetic (void)
{
  const char *dir = test_shared_path ("rwkv4-tiny/synthetic");
  if (!dir)
    return;
  SutraModel *m = lm_load (dir, NULL);
  g_assert_cmpint (m->cfg.rescale_every, ==, 6);
  SutraSafetensors *refs = lm_open (dir, "refs.safetensors");
  check_rwkvcpp (m, refs, "logits", true, RWKVCPP_MAX_ABS_TOL, "synthetic");
  check_rwkvcpp (m, refs, "logits_reference_no_rescale", true, RESCALE_MATCH_ABS_TOL, "synthetic");
  check_rwkvcpp (m, refs, "logits_reference_hf_rescale", false, RESCALE_MATCH_ABS_TOL, "synthetic");
  sutra_safetensors_free (refs);
  sutra_model_free (m);
}

/* ---------------------------------------------------------------------------------------- */
/* transformers and PEFT                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void test_hf_refs (void) { lm_check_hf_refs ("hf-refs/rwkv4-tiny"); }
static void test_peft (void) { lm_check_peft ("hf-refs/lora-rwkv4"); }
static void test_qlora (void) { lm_check_qlora ("hf-refs/lora-rwkv4"); }
static void test_trajectory (void) { lm_check_trajectory ("hf-refs/lora-rwkv4"); }

/* ---------------------------------------------------------------------------------------- */
/* a double-precision RWKV-4 written from transformers' modeling_rwkv.py                    */
/* ---------------------------------------------------------------------------------------- */

static const float *
P (SutraModel *m, const char *fmt, int i)
{
  char name[160];
  snprintf (name, sizeof name, fmt, i);
  SutraLinear *l = sutra_model_find_linear (m, name);
  if (l) {
    g_assert_nonnull (l->w);
    return l->w;
  }
  SutraParam *p = sutra_model_find_param (m, name);
  if (!p)
    g_error ("no tensor %s", name);
  return p->data;
}

static void
ln_d (double *y, const double *x, const float *w, const float *b, double eps, int C)
{
  double mu = 0, var = 0;
  for (int i = 0; i < C; i++) mu += x[i];
  mu /= C;
  for (int i = 0; i < C; i++) var += (x[i] - mu) * (x[i] - mu);
  var /= C;
  for (int i = 0; i < C; i++) y[i] = (x[i] - mu) / sqrt (var + eps) * w[i] + b[i];
}

static void
mv_d (double *y, const float *W, const double *x, int out, int in, double scale)
{
  for (int o = 0; o < out; o++) {
    double acc = 0;
    for (int i = 0; i < in; i++) acc += (double) W[(size_t) o * in + i] * x[i];
    y[o] = acc / scale;
  }
}

static double sig_d (double x) { return 1 / (1 + exp (-x)); }

/* logits [B*T, V]; hf_eval: transformers' eval mode (rescale_every applied literally) */
static double *
rwkv_ref (SutraModel *m, const int *ids, int B, int T, bool hf_eval)
{
  const SutraModelConfig *c = &m->cfg;
  int C = c->hidden_size, A = c->attention_hidden_size, F = c->intermediate_size;
  int V = c->vocab_size, L = c->n_layers, R = hf_eval ? c->rescale_every : 0;
  double eps = c->layer_norm_epsilon;
  double *out = g_new (double, (size_t) B * T * V);
  double *x = g_new (double, C), *h = g_new (double, C), *xk = g_new (double, C);
  double *xv = g_new (double, C), *xr = g_new (double, C), *k = g_new (double, F);
  double *v = g_new (double, F), *r = g_new (double, C), *y = g_new (double, C);
  double *st = g_new (double, (size_t) L * (2 * C + 3 * A));
  for (int b = 0; b < B; b++) {
    for (int i = 0; i < L; i++) {
      double *s = st + (size_t) i * (2 * C + 3 * A);
      memset (s, 0, sizeof (double) * (2 * C + 3 * A));
      for (int j = 0; j < A; j++) s[C + 2 * A + j] = -1e38;
    }
    for (int t = 0; t < T; t++) {
      const float *e = P (m, "rwkv.embeddings.weight", 0) + (size_t) ids[b * T + t] * C;
      for (int j = 0; j < C; j++) h[j] = e[j];
      ln_d (x, h, P (m, "rwkv.blocks.0.pre_ln.weight", 0), P (m, "rwkv.blocks.0.pre_ln.bias", 0), eps, C);
      for (int i = 0; i < L; i++) {
        double *s = st + (size_t) i * (2 * C + 3 * A);
        double *ax = s, *aa = s + C, *bb = s + C + A, *pp = s + C + 2 * A, *fx = s + C + 3 * A;
        double scale = R > 0 ? ldexp (1.0, i / R) : 1.0;
        ln_d (h, x, P (m, "rwkv.blocks.%d.ln1.weight", i), P (m, "rwkv.blocks.%d.ln1.bias", i), eps, C);
        const float *mk = P (m, "rwkv.blocks.%d.attention.time_mix_key", i);
        const float *mvv = P (m, "rwkv.blocks.%d.attention.time_mix_value", i);
        const float *mr = P (m, "rwkv.blocks.%d.attention.time_mix_receptance", i);
        for (int j = 0; j < C; j++) {
          xk[j] = h[j] * mk[j] + ax[j] * (1 - mk[j]);
          xv[j] = h[j] * mvv[j] + ax[j] * (1 - mvv[j]);
          xr[j] = h[j] * mr[j] + ax[j] * (1 - mr[j]);
          ax[j] = h[j];
        }
        mv_d (k, P (m, "rwkv.blocks.%d.attention.key", i), xk, A, C, 1);
        mv_d (v, P (m, "rwkv.blocks.%d.attention.value", i), xv, A, C, 1);
        mv_d (r, P (m, "rwkv.blocks.%d.attention.receptance", i), xr, A, C, 1);
        const float *td = P (m, "rwkv.blocks.%d.attention.time_decay", i);
        const float *tf = P (m, "rwkv.blocks.%d.attention.time_first", i);
        for (int j = 0; j < A; j++) {
          double w = -exp ((double) td[j]), u = tf[j];
          double q = fmax (pp[j], u + k[j]), e1 = exp (pp[j] - q), e2 = exp (u + k[j] - q);
          y[j] = sig_d (r[j]) * (e1 * aa[j] + e2 * v[j]) / (e1 * bb[j] + e2);
          double q2 = fmax (pp[j] + w, k[j]);
          e1 = exp (pp[j] + w - q2);
          e2 = exp (k[j] - q2);
          aa[j] = e1 * aa[j] + e2 * v[j];
          bb[j] = e1 * bb[j] + e2;
          pp[j] = q2;
        }
        mv_d (h, P (m, "rwkv.blocks.%d.attention.output", i), y, C, A, scale);
        for (int j = 0; j < C; j++) x[j] += h[j];
        ln_d (h, x, P (m, "rwkv.blocks.%d.ln2.weight", i), P (m, "rwkv.blocks.%d.ln2.bias", i), eps, C);
        const float *fk = P (m, "rwkv.blocks.%d.feed_forward.time_mix_key", i);
        const float *fr = P (m, "rwkv.blocks.%d.feed_forward.time_mix_receptance", i);
        for (int j = 0; j < C; j++) {
          xk[j] = h[j] * fk[j] + fx[j] * (1 - fk[j]);
          xr[j] = h[j] * fr[j] + fx[j] * (1 - fr[j]);
          fx[j] = h[j];
        }
        mv_d (k, P (m, "rwkv.blocks.%d.feed_forward.key", i), xk, F, C, 1);
        for (int j = 0; j < F; j++) k[j] = k[j] > 0 ? k[j] * k[j] : 0;
        mv_d (v, P (m, "rwkv.blocks.%d.feed_forward.value", i), k, C, F, scale);
        mv_d (r, P (m, "rwkv.blocks.%d.feed_forward.receptance", i), xr, C, C, 1);
        for (int j = 0; j < C; j++) x[j] += sig_d (r[j]) * v[j];
        if (R > 0 && (i + 1) % R == 0)
          for (int j = 0; j < C; j++) x[j] /= 2;
      }
      ln_d (h, x, P (m, "rwkv.ln_out.weight", 0), P (m, "rwkv.ln_out.bias", 0), 1e-5, C);
      mv_d (out + ((size_t) b * T + t) * V, sutra_model_find_linear (m, "head")->w, h, V, C, 1);
    }
  }
  g_free (x); g_free (h); g_free (xk); g_free (xv); g_free (xr); g_free (k); g_free (v);
  g_free (r); g_free (y); g_free (st);
  return out;
}

static const char *tiny_json =
  "{\"architectures\":[\"RwkvForCausalLM\"],\"vocab_size\":23,\"hidden_size\":16,"
  "\"num_hidden_layers\":3,\"attention_hidden_size\":16,\"intermediate_size\":40,"
  "\"layer_norm_epsilon\":%g,\"rescale_every\":%d,\"context_length\":64,\"tie_word_embeddings\":%s}";

/* A random model with every parameter non-trivial; big_keys scales 3 key rows by 100 so |k|
 * reaches the range where e^k overflows float (the max-trick path). */
static SutraModel *
random_rwkv (double eps, int rescale_every, bool tied, bool big_keys, guint32 seed)
{
  char *json = g_strdup_printf (tiny_json, eps, rescale_every, tied ? "true" : "false");
  SutraModelConfig cfg;
  SutraError err;
  test_assert_ok (sutra_model_config_parse (json, strlen (json), "tiny", &cfg, &err), &err);
  g_free (json);
  SutraModel *m;
  test_assert_ok (sutra_model_new_random (&cfg, 0.4f, seed, &m, &err), &err);
  for (size_t i = 0; i < m->n_params; i++) {
    SutraParam *p = m->params[i];
    size_t n = (size_t) p->shape[0] * p->shape[1] * p->shape[2];
    const char *nm = p->name;
    float lo = -0.5f, hi = 0.5f;
    if (strstr (nm, "time_mix")) lo = 0.f, hi = 1.f;
    else if (strstr (nm, "time_decay")) lo = -3.f, hi = 1.5f;
    else if (strstr (nm, "time_first")) lo = -1.f, hi = 1.f;
    else if (strstr (nm, ".weight") && strstr (nm, "ln")) lo = 0.6f, hi = 1.4f;
    else if (strstr (nm, "embeddings")) lo = -1.f, hi = 1.f;
    test_fill_uniform (p->data, n, lo, hi, seed * 31 + (guint32) i);
  }
  if (big_keys)
    for (int l = 0; l < cfg.n_layers; l++) {
      char name[80];
      snprintf (name, sizeof name, "rwkv.blocks.%d.attention.key", l);
      SutraLinear *k = sutra_model_find_linear (m, name);
      for (int row = 1; row < k->out; row += 6)
        for (int j = 0; j < k->in; j++)
          k->w[(size_t) row * k->in + j] *= 100.f;
    }
  return m;
}

static float *
to_float (const double *d, size_t n)
{
  float *f = g_new (float, n);
  for (size_t i = 0; i < n; i++) f[i] = (float) d[i];
  return f;
}

/* forward (inference and training), step, chunked step against the reference; rescale_every
 * with a large eps so that the rescaled and plain logits differ clearly */
static void
test_reference_variants (void)
{
  struct { double eps; int R; bool tied, big; } vs[] = {
    { 1e-5, 0, false, false }, { 1e-5, 2, true, true }, { 3e-2, 2, false, false }, { 3e-2, 1, false, true },
  };
  int T = 17, ids[17];
  for (int t = 0; t < T; t++) ids[t] = (t * 7 + 3) % 23;
  for (size_t v = 0; v < G_N_ELEMENTS (vs); v++) {
    SutraModel *m = random_rwkv (vs[v].eps, vs[v].R, vs[v].tied, vs[v].big, 11 + v);
    int V = m->cfg.vocab_size;
    size_t n = (size_t) T * V;
    double *eval_d = rwkv_ref (m, ids, 1, T, true), *train_d = rwkv_ref (m, ids, 1, T, false);
    float *eval = to_float (eval_d, n), *train = to_float (train_d, n);
    float *lg = lm_forward_copy (m, ids, 1, T, false);
    double r_eval = test_rel_max_err (lg, eval, n), gap = test_rel_max_err (train, eval, n);
    g_free (lg);
    lg = lm_forward_copy (m, ids, 1, T, true);
    double r_train = test_rel_max_err (lg, train, n);
    g_free (lg);
    static const int chunks[] = { 4, 1, 5, 0 };
    lg = lm_step_logits (m, ids, T, chunks);
    double r_step = test_rel_max_err (lg, eval, n);
    g_free (lg);
    g_test_message ("variant %zu (eps %g, rescale_every %d%s%s): inference %.3g, training %.3g, "
                    "step %.3g; rescaled vs plain differ by %.3g", v, vs[v].eps, vs[v].R,
                    vs[v].tied ? ", tied" : "", vs[v].big ? ", big keys" : "", r_eval, r_train,
                    r_step, gap);
    g_assert_cmpfloat (r_eval, <=, REF_REL_TOL);
    g_assert_cmpfloat (r_train, <=, REF_REL_TOL);
    g_assert_cmpfloat (r_step, <=, REF_REL_TOL);
    if (vs[v].R > 0 && vs[v].eps > 1e-3)
      g_assert_cmpfloat (gap, >, 100 * REF_REL_TOL);     /* the test can tell them apart */
    if (v == 1)
      lm_check_roundtrip (m, ids, T);
    if (v == 1)
      lm_check_long_step (m, 200);
    g_free (eval_d); g_free (train_d); g_free (eval); g_free (train);
    sutra_model_free (m);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* gradients                                                                                */
/* ---------------------------------------------------------------------------------------- */

typedef struct { const int *ids, *tg; int B, T; } LossCtx;

static double
ref_loss (SutraModel *m, void *data)
{
  const LossCtx *c = data;
  int V = m->cfg.vocab_size, N = c->B * c->T, cnt = 0;
  double *lg = rwkv_ref (m, c->ids, c->B, c->T, false), loss = 0;
  for (int n = 0; n < N; n++) {
    if (c->tg[n] == SUTRA_IGNORE_INDEX)
      continue;
    const double *z = lg + (size_t) n * V;
    double mx = z[0], s = 0;
    for (int i = 1; i < V; i++) mx = fmax (mx, z[i]);
    for (int i = 0; i < V; i++) s += exp (z[i] - mx);
    loss += mx + log (s) - z[c->tg[n]];
    cnt++;
  }
  g_free (lg);
  return loss / cnt;
}

/* full fine-tuning gradients of every tensor (time_decay and time_first fully, a spread of
 * entries elsewhere) against central differences of the double reference */
static void
test_gradients_fd (void)
{
  for (int big = 0; big < 2; big++) {
    SutraModel *m = random_rwkv (1e-5, 2, big == 1, big == 1, 77 + big);
    SutraError err;
    test_assert_ok (sutra_model_make_trainable (m, &err), &err);
    int B = 2, T = 9, ids[18], tg[18];
    for (int i = 0; i < B * T; i++) {
      ids[i] = (i * 5 + 1) % 23;
      tg[i] = i % T == T - 1 ? SUTRA_IGNORE_INDEX : (i * 11 + 4) % 23;
    }
    lm_loss_backward (m, ids, tg, B, T);
    LossCtx ctx = { ids, tg, B, T };
    double worst = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < m->n_params; i++) {
      SutraParam *p = m->params[i];
      size_t n = (size_t) p->shape[0] * p->shape[1] * p->shape[2];
      bool full = strstr (p->name, "time_decay") || strstr (p->name, "time_first");
      size_t stride = full ? 1 : (strstr (p->name, "embeddings") ? 37 : 5);
      double r = lm_fd_check (m, ref_loss, &ctx, p->data, p->grad, n, stride, 1e-3);
      if (r > worst) worst = r, worst_name = p->name;
      if (r > FD_REL_TOL)
        g_error ("%s: analytic vs finite differences rel %.3g", p->name, r);
    }
    for (size_t i = 0; i < m->n_linears; i++) {
      SutraLinear *l = m->linears[i];
      if (l == m->tied_linear)
        continue;
      double r = lm_fd_check (m, ref_loss, &ctx, l->w, l->dw, (size_t) l->in * l->out, 29, 1e-3);
      if (r > worst) worst = r, worst_name = l->name;
      if (r > FD_REL_TOL)
        g_error ("%s: analytic vs finite differences rel %.3g", l->name, r);
    }
    g_test_message ("finite differences (%s): worst rel %.3g (%s)", big ? "big keys, tied" : "plain",
                    worst, worst_name);
    sutra_model_free (m);
  }
}

/* LoRA gradients through the recurrence equal full fine-tuning's chain rule: for an adapter
 * with B = 0, dB = scale * dW A^T (checked on every target), plus gradient checkpointing
 * gives the same gradients as the stored activations. */
static void
test_lora_and_checkpointing (void)
{
  SutraModel *m = random_rwkv (1e-5, 0, false, true, 5);
  SutraError err;
  SutraModel *f = random_rwkv (1e-5, 0, false, true, 5);
  test_assert_ok (sutra_model_make_trainable (f, &err), &err);
  SutraLoraConfig lc = { .r = 3, .alpha = 6 };
  char *targets[] = { "key", "value", "receptance", "output" };
  lc.targets = targets;
  lc.n_targets = 4;
  int na;
  test_assert_ok (sutra_lora_attach (m, &lc, 9, &na, &err), &err);
  g_assert_cmpint (na, ==, 3 * 7);
  int B = 2, T = 11, ids[22], tg[22];
  for (int i = 0; i < B * T; i++) {
    ids[i] = (i * 3 + 2) % 23;
    tg[i] = (i * 13 + 1) % 23;
  }
  lm_loss_backward (m, ids, tg, B, T);
  lm_loss_backward (f, ids, tg, B, T);
  double worst = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i], *lf = f->linears[i];
    if (!l->lora)
      continue;
    int r = l->lora->r;
    float *want = g_new0 (float, (size_t) l->out * r);
    for (int o = 0; o < l->out; o++)
      for (int k = 0; k < r; k++) {
        double acc = 0;
        for (int j = 0; j < l->in; j++)
          acc += (double) lf->dw[(size_t) o * l->in + j] * l->lora->A[(size_t) k * l->in + j];
        want[(size_t) o * r + k] = (float) (acc * l->lora->scale);
      }
    worst = fmax (worst, test_rel_max_err (l->lora->dB, want, (size_t) l->out * r));
    g_free (want);
  }
  g_test_message ("LoRA dB vs scale * dW A^T: worst rel %.3g", worst);
  g_assert_cmpfloat (worst, <=, 1e-4);
  /* gradient checkpointing: the same full gradients */
  GPtrArray *snap = g_ptr_array_new_with_free_func (g_free);
  for (size_t i = 0; i < f->n_params; i++)
    g_ptr_array_add (snap, g_memdup2 (f->params[i]->grad, sizeof (float) * f->params[i]->shape[0] *
                                                              f->params[i]->shape[1] * f->params[i]->shape[2]));
  f->grad_checkpointing = true;
  lm_loss_backward (f, ids, tg, B, T);
  for (size_t i = 0; i < f->n_params; i++) {
    SutraParam *p = f->params[i];
    double r = test_rel_max_err (p->grad, snap->pdata[i], p->shape[0] * p->shape[1] * p->shape[2]);
    if (r > 1e-6)
      g_error ("checkpointing: %s grad differs (rel %.3g)", p->name, r);
  }
  g_ptr_array_unref (snap);
  sutra_model_free (m);
  sutra_model_free (f);
}

static void
test_packing (void)
{
  SutraModel *m = random_rwkv (1e-5, 0, false, false, 3);
  SutraError err;
  test_assert_ok (sutra_model_make_trainable (m, &err), &err);
  int ids[14];
  for (int t = 0; t < 14; t++) ids[t] = (t * 9 + 2) % 23;
  lm_check_packing (m, ids, 14, 5);
  /* a batch of two rows equals the rows alone */
  float *both = lm_forward_copy (m, ids, 2, 7, false);
  for (int r = 0; r < 2; r++) {
    float *one = lm_forward_copy (m, ids + 7 * r, 1, 7, false);
    g_assert_cmpfloat (test_rel_max_err (both + (size_t) r * 7 * 23, one, 7 * 23), <=, 1e-6);
    g_free (one);
  }
  g_free (both);
  sutra_model_free (m);
}

static void
test_config_and_errors (void)
{
  const char *bad = "{\"architectures\":[\"RwkvForCausalLM\"],\"hidden_size\":16,\"attention_hidden_size\":8}";
  SutraModelConfig cfg;
  SutraError err = { 0 };
  g_assert_cmpint (sutra_model_config_parse (bad, strlen (bad), "cfg", &cfg, &err), ==, SUTRA_ERR_UNSUPPORTED);
  g_assert_nonnull (strstr (err.message, "attention_hidden_size"));
  SutraModel *m = random_rwkv (1e-5, 0, false, false, 1);
  int ids[3] = { 1, 23, 2 };
  SutraBatch b = { 1, 3, ids, NULL, NULL };
  float *lg;
  g_assert_cmpint (sutra_model_forward (m, &b, false, &lg, &err), ==, SUTRA_ERR_INVALID);
  SutraGenState *st;
  test_assert_ok (m->vt->state_new (m, 0, &st, &err), &err);
  float *out = g_new (float, 23);
  g_assert_cmpint (m->vt->step (m, st, ids, 3, out, false, &err), ==, SUTRA_ERR_INVALID);
  g_assert_cmpint (m->vt->step (m, st, ids, 0, out, false, &err), ==, SUTRA_ERR_INVALID);
  g_assert_cmpint (m->vt->backward (m, out, &err), ==, SUTRA_ERR_INVALID);   /* no training forward */
  m->vt->state_free (st);
  g_free (out);
  sutra_model_free (m);
}

/* the vectorised WKV kernels against their scalar twins: odd channel counts (vector + scalar
 * tail), ranges not aligned to 8, segments, a carried state, keys beyond e^88 */
static void
test_wkv_kernels (void)
{
  enum { B = 2, T = 37, A = 45 };
  size_t NA = (size_t) B * T * A;
  float *k = g_new (float, NA), *v = g_new (float, NA), *w = g_new (float, A), *u = g_new (float, A);
  test_fill_uniform (k, NA, -3, 3, 1);
  for (size_t i = 0; i < NA; i += 7) k[i] *= 60.f;
  test_fill_uniform (v, NA, -2, 2, 2);
  test_fill_uniform (w, A, -3, -0.01f, 3);
  test_fill_uniform (u, A, -1, 1, 4);
  int seg[B * T];
  int doc[B * T];
  for (int i = 0; i < B * T; i++) doc[i] = i / T * 10 + (i % T >= 20);
  sutra_rnn_segments (seg, doc, B, T);
  float *out[2][8];
  for (int f = 0; f < 2; f++) {
    for (int q = 0; q < 8; q++) out[f][q] = g_new0 (float, NA);
    SutraWkvArgs a = { .k = k, .v = v, .w = w, .u = u, .y = out[f][0], .sa = out[f][1],
                       .sb = out[f][2], .sp = out[f][3], .seg = seg, .B = B, .T = T, .A = A };
    int cuts[] = { 0, 13, 21, 45 };
    for (int r = 0; r < 3; r++)
      (f ? sutra_wkv_forward : sutra_wkv_forward_naive) (&a, cuts[r], cuts[r + 1]);
    test_fill_uniform (out[f][4], NA, -1, 1, 5);           /* gy */
    a.gy = out[f][4];
    a.dk = out[f][5];
    a.dv = out[f][6];
    a.du = out[f][7];
    a.dw = out[f][7] + A;
    for (int r = 0; r < 3; r++)
      (f ? sutra_wkv_backward : sutra_wkv_backward_naive) (&a, cuts[r], cuts[r + 1]);
  }
  const char *names[] = { "y", "aa", "bb", "pp", "gy", "dk", "dv", "du|dw" };
  for (int q = 0; q < 8; q++) {
    double r = test_rel_max_err (out[1][q], out[0][q], q == 7 ? 2 * A : NA);
    g_test_message ("wkv %s: fast vs naive rel %.3g", names[q], r);
    g_assert_cmpfloat (r, <=, 1e-5);
  }
  /* a carried state (B = 1) continues exactly: two halves equal the whole */
  float st[2][3 * A], y1[T * A], y2[T * A];
  for (int f = 0; f < 2; f++) {
    for (int i = 0; i < A; i++) { st[f][i] = st[f][A + i] = 0; st[f][2 * A + i] = -1e38f; }
  }
  int seg0[T] = { 0 };
  SutraWkvArgs whole = { .k = k, .v = v, .w = w, .u = u, .y = y1, .state = st[0], .seg = seg0, .B = 1, .T = T, .A = A };
  sutra_wkv_forward (&whole, 0, A);
  SutraWkvArgs h1 = { .k = k, .v = v, .w = w, .u = u, .y = y2, .state = st[1], .seg = seg0, .B = 1, .T = 10, .A = A };
  sutra_wkv_forward (&h1, 0, A);
  SutraWkvArgs h2 = { .k = k + 10 * A, .v = v + 10 * A, .w = w, .u = u, .y = y2 + 10 * A, .state = st[1], .seg = seg0, .B = 1, .T = T - 10, .A = A };
  sutra_wkv_forward_naive (&h2, 0, A);
  g_assert_cmpfloat (test_rel_max_err (y2, y1, (size_t) T * A), <=, 1e-5);
  g_assert_cmpfloat (test_rel_max_err (st[1], st[0], 2 * A), <=, 1e-5);
  for (int f = 0; f < 2; f++) for (int q = 0; q < 8; q++) g_free (out[f][q]);
  g_free (k); g_free (v); g_free (w); g_free (u);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  sutra_set_threads (2);
  g_test_add_func ("/engine/rwkv/rwkvcpp-tiny", test_rwkvcpp_tiny);
  g_test_add_func ("/engine/rwkv/rwkvcpp-synthetic-rescale", test_rwkvcpp_synthetic);
  g_test_add_func ("/engine/rwkv/hf-refs", test_hf_refs);
  g_test_add_func ("/engine/rwkv/peft-lora", test_peft);
  g_test_add_func ("/engine/rwkv/qlora-bases", test_qlora);
  g_test_add_func ("/engine/rwkv/peft-trajectory", test_trajectory);
  g_test_add_func ("/engine/rwkv/reference-variants", test_reference_variants);
  g_test_add_func ("/engine/rwkv/gradients-fd", test_gradients_fd);
  g_test_add_func ("/engine/rwkv/lora-and-checkpointing", test_lora_and_checkpointing);
  g_test_add_func ("/engine/rwkv/packing", test_packing);
  g_test_add_func ("/engine/rwkv/config-and-errors", test_config_and_errors);
  g_test_add_func ("/engine/rwkv/wkv-kernels", test_wkv_kernels);
  return g_test_run ();
}
