/* test-mamba.c: Mamba against transformers (hf-refs/mamba-tiny), PEFT (hf-refs/lora-mamba) and a
 * double-precision reference written here from MambaMixer.slow_forward, over config variants
 * (tied / untied head, in/out biases, conv bias, state sizes, conv widths, time_step_rank
 * "auto"), plus finite-difference gradients for full fine-tuning (A_log, D, conv, dt_proj ...). */
#include "test-lm-common.h"
#include "sutra-recurrent-private.h"

#define REF_REL_TOL 1e-5           /* ours vs the double reference (random models) */
#define FD_REL_TOL 2e-3            /* analytic vs central differences, per tensor */

static void test_hf_refs (void) { lm_check_hf_refs ("hf-refs/mamba-tiny"); }
static void test_peft (void) { lm_check_peft ("hf-refs/lora-mamba"); }
static void test_qlora (void) { lm_check_qlora ("hf-refs/lora-mamba"); }
static void test_trajectory (void) { lm_check_trajectory ("hf-refs/lora-mamba"); }

/* ---------------------------------------------------------------------------------------- */
/* a double-precision Mamba from transformers' MambaMixer.slow_forward                      */
/* ---------------------------------------------------------------------------------------- */

static SutraLinear *
Lin (SutraModel *m, const char *fmt, int i)
{
  char name[160];
  snprintf (name, sizeof name, fmt, i);
  SutraLinear *l = sutra_model_find_linear (m, name);
  if (!l)
    g_error ("no linear %s", name);
  return l;
}

static const float *
Par (SutraModel *m, const char *fmt, int i)
{
  char name[160];
  snprintf (name, sizeof name, fmt, i);
  SutraParam *p = sutra_model_find_param (m, name);
  return p ? p->data : NULL;
}

static void
lin_d (double *y, const SutraLinear *l, const double *x)
{
  for (int o = 0; o < l->out; o++) {
    double acc = l->bias ? l->bias[o] : 0;
    for (int i = 0; i < l->in; i++) acc += (double) l->w[(size_t) o * l->in + i] * x[i];
    y[o] = acc;
  }
}

static double silu_d (double x) { return x / (1 + exp (-x)); }
static double softplus_d (double x) { return x > 20 ? x : log1p (exp (x)); }

static double *
mamba_ref (SutraModel *m, const int *ids, int B, int T)
{
  const SutraModelConfig *c = &m->cfg;
  int C = c->hidden_size, I = c->intermediate_mamba, S = c->state_size, R = c->time_step_rank;
  int K = c->conv_kernel, V = c->vocab_size, L = c->n_layers;
  double *out = g_new (double, (size_t) B * T * V);
  double *x = g_new (double, (size_t) T * C), *h = g_new (double, C);
  double *xz = g_new (double, (size_t) T * 2 * I), *u = g_new (double, (size_t) T * I);
  double *dbc = g_new (double, R + 2 * S), *dt = g_new (double, I), *g = g_new (double, I);
  double *o = g_new (double, C), *s = g_new (double, (size_t) I * S);
  const float *emb = sutra_model_find_param (m, "backbone.embeddings.weight")->data;
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < T; t++)
      for (int j = 0; j < C; j++) x[t * C + j] = emb[(size_t) ids[b * T + t] * C + j];
    for (int l = 0; l < L; l++) {
      const float *nw = Par (m, "backbone.layers.%d.norm.weight", l);
      SutraLinear *inp = Lin (m, "backbone.layers.%d.mixer.in_proj", l);
      SutraLinear *xp = Lin (m, "backbone.layers.%d.mixer.x_proj", l);
      SutraLinear *dtp = Lin (m, "backbone.layers.%d.mixer.dt_proj", l);
      SutraLinear *op = Lin (m, "backbone.layers.%d.mixer.out_proj", l);
      const float *cw = Par (m, "backbone.layers.%d.mixer.conv1d.weight", l);
      const float *cb = Par (m, "backbone.layers.%d.mixer.conv1d.bias", l);
      const float *Alog = Par (m, "backbone.layers.%d.mixer.A_log", l);
      const float *D = Par (m, "backbone.layers.%d.mixer.D", l);
      for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int j = 0; j < C; j++) ss += x[t * C + j] * x[t * C + j];
        double r = 1 / sqrt (ss / C + c->layer_norm_epsilon);
        for (int j = 0; j < C; j++) h[j] = nw[j] * x[t * C + j] * r;
        lin_d (xz + (size_t) t * 2 * I, inp, h);
      }
      /* conv1d(padding K-1)[..., :T] then silu */
      for (int t = 0; t < T; t++)
        for (int i = 0; i < I; i++) {
          double acc = cb ? cb[i] : 0;
          for (int k = 0; k < K; k++) {
            int src = t - (K - 1) + k;
            if (src >= 0) acc += (double) cw[i * K + k] * xz[(size_t) src * 2 * I + i];
          }
          u[(size_t) t * I + i] = silu_d (acc);
        }
      memset (s, 0, sizeof (double) * (size_t) I * S);
      for (int t = 0; t < T; t++) {
        lin_d (dbc, xp, u + (size_t) t * I);
        lin_d (dt, dtp, dbc);    /* dt_proj reads the first R entries */
        for (int i = 0; i < I; i++) {
          double d = softplus_d (dt[i]), uu = u[(size_t) t * I + i], y = 0;
          for (int k = 0; k < S; k++) {
            double A = -exp ((double) Alog[i * S + k]);
            s[i * S + k] = exp (d * A) * s[i * S + k] + d * dbc[R + k] * uu;
            y += s[i * S + k] * dbc[R + S + k];
          }
          y += D[i] * uu;
          g[i] = y * silu_d (xz[(size_t) t * 2 * I + I + i]);
        }
        lin_d (o, op, g);
        for (int j = 0; j < C; j++) x[t * C + j] += o[j];
      }
    }
    const float *nf = Par (m, "backbone.norm_f.weight", 0);
    SutraLinear *head = sutra_model_find_linear (m, "lm_head");
    for (int t = 0; t < T; t++) {
      double ss = 0;
      for (int j = 0; j < C; j++) ss += x[t * C + j] * x[t * C + j];
      double r = 1 / sqrt (ss / C + c->layer_norm_epsilon);
      for (int j = 0; j < C; j++) h[j] = nf[j] * x[t * C + j] * r;
      lin_d (out + ((size_t) b * T + t) * V, head, h);
    }
  }
  g_free (x); g_free (h); g_free (xz); g_free (u); g_free (dbc); g_free (dt); g_free (g);
  g_free (o); g_free (s);
  return out;
}

typedef struct { const char *label, *json; } Variant;

static const Variant variants[] = {
  { "tied-S16-K4", "{\"architectures\":[\"MambaForCausalLM\"],\"vocab_size\":29,\"hidden_size\":16,"
    "\"num_hidden_layers\":2,\"state_size\":16,\"expand\":2,\"conv_kernel\":4,\"time_step_rank\":4,"
    "\"layer_norm_epsilon\":1e-5,\"tie_word_embeddings\":true}" },
  { "untied-bias-noconvbias-S5-K3-auto", "{\"architectures\":[\"MambaForCausalLM\"],\"vocab_size\":31,"
    "\"hidden_size\":20,\"num_hidden_layers\":3,\"state_size\":5,\"expand\":2,\"intermediate_size\":36,"
    "\"conv_kernel\":3,\"time_step_rank\":\"auto\",\"use_bias\":true,\"use_conv_bias\":false,"
    "\"layer_norm_epsilon\":1e-5,\"tie_word_embeddings\":false,\"residual_in_fp32\":false}" },
  { "K1-S1", "{\"model_type\":\"mamba\",\"vocab_size\":17,\"hidden_size\":8,\"num_hidden_layers\":1,"
    "\"state_size\":1,\"expand\":1,\"conv_kernel\":1,\"time_step_rank\":2,\"tie_word_embeddings\":true}" },
};

static SutraModel *
random_mamba (const Variant *v, guint32 seed)
{
  SutraModelConfig cfg;
  SutraError err;
  test_assert_ok (sutra_model_config_parse (v->json, strlen (v->json), v->label, &cfg, &err), &err);
  SutraModel *m;
  test_assert_ok (sutra_model_new_random (&cfg, 0.3f, seed, &m, &err), &err);
  for (size_t i = 0; i < m->n_params; i++) {
    SutraParam *p = m->params[i];
    size_t n = (size_t) p->shape[0] * p->shape[1] * p->shape[2];
    const char *nm = p->name;
    float lo = -0.5f, hi = 0.5f;
    if (strstr (nm, "A_log")) lo = -1.f, hi = 2.5f;
    else if (strstr (nm, "norm")) lo = 0.6f, hi = 1.4f;
    else if (strstr (nm, "embeddings")) lo = -1.f, hi = 1.f;
    else if (g_str_has_suffix (nm, ".D")) lo = -1.f, hi = 1.f;
    test_fill_uniform (p->data, n, lo, hi, seed * 17 + (guint32) i);
  }
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (!l->bias)
      continue;
    bool dt = strstr (l->name, "dt_proj") != NULL;
    test_fill_uniform (l->bias, l->out, dt ? -4.f : -0.3f, dt ? 0.5f : 0.3f, seed + (guint32) i);
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

static void
test_reference_variants (void)
{
  int T = 19, ids[19];
  for (size_t v = 0; v < G_N_ELEMENTS (variants); v++) {
    SutraModel *m = random_mamba (&variants[v], 21 + v);
    int V = m->cfg.vocab_size;
    for (int t = 0; t < T; t++) ids[t] = (t * 7 + 3) % V;
    size_t n = (size_t) T * V;
    double *rd = mamba_ref (m, ids, 1, T);
    float *ref = to_float (rd, n);
    float *lg = lm_forward_copy (m, ids, 1, T, false);
    double r_inf = test_rel_max_err (lg, ref, n);
    g_free (lg);
    lg = lm_forward_copy (m, ids, 1, T, true);
    double r_train = test_rel_max_err (lg, ref, n);
    g_free (lg);
    static const int one[] = { 1, 0 }, chunks[] = { 2, 5, 1, 3, 0 };
    lg = lm_step_logits (m, ids, T, one);
    double r_one = test_rel_max_err (lg, ref, n);
    g_free (lg);
    lg = lm_step_logits (m, ids, T, chunks);
    double r_chunk = test_rel_max_err (lg, ref, n);
    g_free (lg);
    g_test_message ("%s (time_step_rank %d): inference %.3g, training %.3g, step %.3g, chunked %.3g",
                    variants[v].label, m->cfg.time_step_rank, r_inf, r_train, r_one, r_chunk);
    g_assert_cmpfloat (r_inf, <=, REF_REL_TOL);
    g_assert_cmpfloat (r_train, <=, REF_REL_TOL);
    g_assert_cmpfloat (r_one, <=, REF_REL_TOL);
    g_assert_cmpfloat (r_chunk, <=, REF_REL_TOL);
    lm_check_roundtrip (m, ids, T);
    if (v == 1)
      lm_check_long_step (m, 200);
    g_free (rd); g_free (ref);
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
  double *lg = mamba_ref (m, c->ids, c->B, c->T), loss = 0;
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

static void
test_gradients_fd (void)
{
  for (size_t v = 0; v < 2; v++) {
    SutraModel *m = random_mamba (&variants[v], 91 + v);
    SutraError err;
    test_assert_ok (sutra_model_make_trainable (m, &err), &err);
    int V = m->cfg.vocab_size, B = 2, T = 9, ids[18], tg[18];
    for (int i = 0; i < B * T; i++) {
      ids[i] = (i * 5 + 1) % V;
      tg[i] = i % T == T - 1 ? SUTRA_IGNORE_INDEX : (i * 11 + 4) % V;
    }
    lm_loss_backward (m, ids, tg, B, T);
    LossCtx ctx = { ids, tg, B, T };
    double worst = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < m->n_params; i++) {
      SutraParam *p = m->params[i];
      size_t n = (size_t) p->shape[0] * p->shape[1] * p->shape[2];
      bool ssm = strstr (p->name, "A_log") || g_str_has_suffix (p->name, ".D") || strstr (p->name, "conv1d");
      size_t stride = ssm ? (n > 64 ? 3 : 1) : (strstr (p->name, "embeddings") ? 37 : 5);
      double r = lm_fd_check (m, ref_loss, &ctx, p->data, p->grad, n, stride, 1e-3);
      if (r > worst) worst = r, worst_name = p->name;
      if (r > FD_REL_TOL)
        g_error ("%s: analytic vs finite differences rel %.3g", p->name, r);
    }
    for (size_t i = 0; i < m->n_linears; i++) {
      SutraLinear *l = m->linears[i];
      if (l == m->tied_linear)
        continue;
      bool dt = strstr (l->name, "dt_proj") != NULL;
      double r = lm_fd_check (m, ref_loss, &ctx, l->w, l->dw, (size_t) l->in * l->out, dt ? 3 : 29, 1e-3);
      if (l->bias)
        r = fmax (r, lm_fd_check (m, ref_loss, &ctx, l->bias, l->dbias, (size_t) l->out, dt ? 1 : 7, 1e-3));
      if (r > worst) worst = r, worst_name = l->name;
      if (r > FD_REL_TOL)
        g_error ("%s: analytic vs finite differences rel %.3g", l->name, r);
    }
    g_test_message ("finite differences (%s): worst rel %.3g (%s)", variants[v].label, worst, worst_name);
    sutra_model_free (m);
  }
}

/* LoRA on every Mamba target (B = 0: dB = scale dW A^T against full fine-tuning), and gradient
 * checkpointing reproducing the stored-activation gradients */
static void
test_lora_and_checkpointing (void)
{
  SutraModel *m = random_mamba (&variants[1], 5), *f = random_mamba (&variants[1], 5);
  SutraError err;
  test_assert_ok (sutra_model_make_trainable (f, &err), &err);
  SutraLoraConfig lc = { .r = 2, .alpha = 5 };
  char *targets[] = { "in_proj", "x_proj", "dt_proj", "out_proj" };
  lc.targets = targets;
  lc.n_targets = 4;
  int na;
  test_assert_ok (sutra_lora_attach (m, &lc, 9, &na, &err), &err);
  g_assert_cmpint (na, ==, 3 * 4);
  int V = m->cfg.vocab_size, B = 2, T = 11, ids[22], tg[22];
  for (int i = 0; i < B * T; i++) {
    ids[i] = (i * 3 + 2) % V;
    tg[i] = (i * 13 + 1) % V;
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
  for (size_t v = 0; v < 2; v++) {
    SutraModel *m = random_mamba (&variants[v], 3);
    SutraError err;
    test_assert_ok (sutra_model_make_trainable (m, &err), &err);
    int V = m->cfg.vocab_size, ids[14];
    for (int t = 0; t < 14; t++) ids[t] = (t * 9 + 2) % V;
    lm_check_packing (m, ids, 14, 2);     /* a first document shorter than the conv window */
    float *both = lm_forward_copy (m, ids, 2, 7, false);
    for (int r = 0; r < 2; r++) {
      float *one = lm_forward_copy (m, ids + 7 * r, 1, 7, false);
      g_assert_cmpfloat (test_rel_max_err (both + (size_t) r * 7 * V, one, (size_t) 7 * V), <=, 1e-6);
      g_free (one);
    }
    g_free (both);
    sutra_model_free (m);
  }
}

static void
test_config_and_errors (void)
{
  const char *cases[] = {
    "{\"architectures\":[\"MambaForCausalLM\"],\"time_step_rank\":\"big\"}",
    "{\"architectures\":[\"MambaForCausalLM\"],\"hidden_act\":\"gelu\"}",
    "{\"architectures\":[\"MambaForCausalLM\"],\"state_size\":0}",
  };
  const char *words[] = { "time_step_rank", "gelu", "state_size" };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    SutraModelConfig cfg;
    SutraError err = { 0 };
    g_assert_cmpint (sutra_model_config_parse (cases[i], strlen (cases[i]), "cfg", &cfg, &err), !=, SUTRA_OK);
    if (!strstr (err.message, words[i]))
      g_error ("case %zu: '%s' does not name %s", i, err.message, words[i]);
  }
  const char *aut = "{\"architectures\":[\"MambaForCausalLM\"],\"hidden_size\":768,\"time_step_rank\":\"auto\"}";
  SutraModelConfig cfg;
  SutraError err;
  test_assert_ok (sutra_model_config_parse (aut, strlen (aut), "cfg", &cfg, &err), &err);
  g_assert_cmpint (cfg.time_step_rank, ==, 48);
  g_assert_true (cfg.tie_word_embeddings);
  SutraModel *m = random_mamba (&variants[0], 1);
  int ids[3] = { 1, 29, 2 };
  SutraBatch b = { 1, 3, ids, NULL, NULL };
  float *lg;
  g_assert_cmpint (sutra_model_forward (m, &b, false, &lg, &err), ==, SUTRA_ERR_INVALID);
  float *out = g_new (float, 29);
  g_assert_cmpint (m->vt->backward (m, out, &err), ==, SUTRA_ERR_INVALID);
  g_free (out);
  sutra_model_free (m);
}

/* the vectorised scan kernels against their scalar twins (S = 16 and S = 5, 45 channels:
 * vector groups and a scalar tail, unaligned ranges, segments, a carried state) */
static void
test_scan_kernels (void)
{
  enum { B = 2, T = 29, I = 45, R = 3 };
  for (int S = 5; S <= 16; S += 11) {
    int ldb = R + 2 * S;
    size_t NI = (size_t) B * T * I;
    float *u = g_new (float, NI), *dl = g_new (float, NI), *dbc = g_new (float, (size_t) B * T * ldb);
    float *At = g_new (float, (size_t) S * I), *D = g_new (float, I);
    test_fill_uniform (u, NI, -2, 2, 1);
    test_fill_uniform (dl, NI, 0.001f, 0.7f, 2);
    test_fill_uniform (dbc, (size_t) B * T * ldb, -1, 1, 3);
    test_fill_uniform (At, (size_t) S * I, -12, -0.2f, 4);
    test_fill_uniform (D, I, -1, 1, 5);
    int seg[B * T], doc[B * T];
    for (int i = 0; i < B * T; i++) doc[i] = i / T * 10 + (i % T >= 11);
    sutra_rnn_segments (seg, doc, B, T);
    size_t np = (size_t) B * T * 2 * S * SUTRA_SCAN_LANES;
    float *y[2], *gy[2], *du[2], *dd[2], *dA[2], *dD[2], *part[2], *dbcsum[2];
    for (int f = 0; f < 2; f++) {
      y[f] = g_new0 (float, NI); gy[f] = g_new0 (float, NI); du[f] = g_new0 (float, NI);
      dd[f] = g_new0 (float, NI); dA[f] = g_new0 (float, (size_t) I * S); dD[f] = g_new0 (float, I);
      part[f] = g_new0 (float, np); dbcsum[f] = g_new0 (float, (size_t) B * T * 2 * S);
      SutraScanArgs a = { .u = u, .delta = dl, .dbc = dbc, .ldb = ldb, .R = R, .At = At, .D = D,
                          .y = y[f], .seg = seg, .B = B, .T = T, .I = I, .S = S };
      int cuts[] = { 0, 3, 19, 45 };
      for (int r = 0; r < 3; r++)
        (f ? sutra_ssm_scan_forward : sutra_ssm_scan_forward_naive) (&a, cuts[r], cuts[r + 1]);
      test_fill_uniform (gy[f], NI, -1, 1, 6);
      a.gy = gy[f];
      a.du = du[f];
      a.ddelta = dd[f];
      a.dA = dA[f];
      a.dD = dD[f];
      for (int r = 0; r < 3; r++)
        (f ? sutra_ssm_scan_backward : sutra_ssm_scan_backward_naive) (&a, cuts[r], cuts[r + 1], part[f]);
      for (size_t i = 0; i < (size_t) B * T * 2 * S; i++)
        for (int l = 0; l < SUTRA_SCAN_LANES; l++)
          dbcsum[f][i] += part[f][i * SUTRA_SCAN_LANES + l];
    }
    double e[6] = { test_rel_max_err (y[1], y[0], NI), test_rel_max_err (du[1], du[0], NI),
                    test_rel_max_err (dd[1], dd[0], NI), test_rel_max_err (dA[1], dA[0], (size_t) I * S),
                    test_rel_max_err (dD[1], dD[0], I),
                    test_rel_max_err (dbcsum[1], dbcsum[0], (size_t) B * T * 2 * S) };
    g_test_message ("scan S=%d fast vs naive: y %.3g du %.3g ddelta %.3g dA %.3g dD %.3g dB|dC %.3g",
                    S, e[0], e[1], e[2], e[3], e[4], e[5]);
    for (int q = 0; q < 6; q++)
      g_assert_cmpfloat (e[q], <=, 1e-5);
    /* carried state: two pieces equal the whole */
    float *s0 = g_new0 (float, (size_t) I * S), *s1 = g_new0 (float, (size_t) I * S);
    float *ya = g_new (float, (size_t) T * I), *yb = g_new (float, (size_t) T * I);
    int seg0[T] = { 0 };
    SutraScanArgs w = { .u = u, .delta = dl, .dbc = dbc, .ldb = ldb, .R = R, .At = At, .D = D,
                        .y = ya, .state = s0, .seg = seg0, .B = 1, .T = T, .I = I, .S = S };
    sutra_ssm_scan_forward (&w, 0, I);
    SutraScanArgs p1 = w, p2 = w;
    p1.y = yb; p1.state = s1; p1.T = 12;
    sutra_ssm_scan_forward (&p1, 0, I);
    p2.u = u + 12 * I; p2.delta = dl + 12 * I; p2.dbc = dbc + 12 * ldb; p2.y = yb + 12 * I;
    p2.state = s1; p2.T = T - 12;
    sutra_ssm_scan_forward_naive (&p2, 0, I);
    g_assert_cmpfloat (test_rel_max_err (yb, ya, (size_t) T * I), <=, 1e-5);
    g_assert_cmpfloat (test_rel_max_err (s1, s0, (size_t) I * S), <=, 1e-5);
    g_free (s0); g_free (s1); g_free (ya); g_free (yb);
    for (int f = 0; f < 2; f++) {
      g_free (y[f]); g_free (gy[f]); g_free (du[f]); g_free (dd[f]); g_free (dA[f]); g_free (dD[f]);
      g_free (part[f]); g_free (dbcsum[f]);
    }
    g_free (u); g_free (dl); g_free (dbc); g_free (At); g_free (D);
  }
  /* elementwise helpers against libm */
  enum { NE = 203 };
  float x[NE], o[NE], d[NE], ref;
  test_fill_uniform (x, NE, -30, 30, 9);
  sutra_rnn_softplus (o, x, NE);
  double worst = 0;
  for (int i = 0; i < NE; i++) {
    ref = x[i] > 20.f ? x[i] : log1pf (expf (x[i]));
    worst = fmax (worst, fabs (o[i] - ref) / fmax (fabs (ref), 1e-30));
  }
  sutra_rnn_silu (o, x, NE);
  for (int i = 0; i < NE; i++) {
    ref = x[i] / (1.f + expf (-x[i]));
    worst = fmax (worst, fabs (o[i] - ref) / fmax (fabs (ref), 1e-30));
    d[i] = 1.f;
  }
  sutra_rnn_silu_backward (d, x, NE);
  for (int i = 0; i < NE; i++) {
    float s = 1.f / (1.f + expf (-x[i]));
    ref = s * (1.f + x[i] * (1.f - s));
    worst = fmax (worst, fabs (d[i] - ref) / fmax (fabs (ref), 1e-30));
  }
  g_test_message ("softplus / silu / silu' vs libm: worst rel %.3g", worst);
  g_assert_cmpfloat (worst, <=, 1e-5);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  sutra_set_threads (2);
  g_test_add_func ("/engine/mamba/hf-refs", test_hf_refs);
  g_test_add_func ("/engine/mamba/peft-lora", test_peft);
  g_test_add_func ("/engine/mamba/qlora-bases", test_qlora);
  g_test_add_func ("/engine/mamba/peft-trajectory", test_trajectory);
  g_test_add_func ("/engine/mamba/reference-variants", test_reference_variants);
  g_test_add_func ("/engine/mamba/gradients-fd", test_gradients_fd);
  g_test_add_func ("/engine/mamba/lora-and-checkpointing", test_lora_and_checkpointing);
  g_test_add_func ("/engine/mamba/packing", test_packing);
  g_test_add_func ("/engine/mamba/config-and-errors", test_config_and_errors);
  g_test_add_func ("/engine/mamba/scan-kernels", test_scan_kernels);
  return g_test_run ();
}
