/* test-llama.c: the Llama family against transformers (llama-tiny refs) and against a
 * double-precision reference written here from the formulas, over config variants. */
#include "test-util.h"
#include "sutra-model.h"
#include "sutra-pool.h"
#include "sutra-fsutil.h"

#include <math.h>
#include <string.h>

#define HF_LOGITS_REL_TOL 1e-4     /* issue: max |ours - ref| / max |ref| */
#define KV_STEP_REL_TOL 1e-5       /* decode-step logits vs full-sequence forward */

typedef struct { SutraModel *model; SutraSafetensors *refs; } Tiny;

static void
tiny_setup (Tiny *f, gconstpointer data)
{
  memset (f, 0, sizeof *f);
  const char *dir = test_shared_path ("hf-refs/llama-tiny");
  if (!dir)
    return;
  SutraError err;
  test_assert_ok (sutra_model_load (dir, &f->model, &err), &err);
  char *refs = g_build_filename (dir, "refs.safetensors", NULL);
  test_assert_ok (sutra_safetensors_open (refs, &f->refs, &err), &err);
  g_free (refs);
}

static void
tiny_teardown (Tiny *f, gconstpointer data)
{
  sutra_model_free (f->model);
  sutra_safetensors_free (f->refs);
}

static int *
ref_ids (const SutraSafetensors *refs, const char *name, int *n)
{
  const SutraTensor *t = sutra_safetensors_find (refs, name);
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, SUTRA_I64);
  *n = (int) sutra_tensor_numel (t);
  int *ids = g_new (int, *n);
  for (int i = 0; i < *n; i++) {
    int64_t v;
    memcpy (&v, (const char *) t->data + 8 * i, 8);
    ids[i] = (int) v;
  }
  return ids;
}

static void
test_forward_matches_hf (Tiny *f, gconstpointer data)
{
  if (!f->model)
    return;
  int T;
  int *ids = ref_ids (f->refs, "input_ids", &T);
  int V = f->model->cfg.vocab_size;
  float *ref = g_new (float, (size_t) T * V);
  SutraError err;
  int64_t shape[2] = { T, V };
  test_assert_ok (sutra_safetensors_read_f32 (f->refs, "logits", ref, 2, shape, &err), &err);
  SutraBatch b = { 1, T, ids, NULL, NULL };
  float *logits;
  for (int threads = 1; threads <= 2; threads++) {
    sutra_set_threads (threads);
    test_assert_ok (sutra_model_forward (f->model, &b, false, &logits, &err), &err);
    double rel = test_rel_max_err (logits, ref, (size_t) T * V);
    g_test_message ("llama-tiny logits: rel max err %.3g (%d threads)", rel, threads);
    g_assert_cmpfloat (rel, <=, HF_LOGITS_REL_TOL);
    /* the training forward computes the same logits */
    test_assert_ok (sutra_model_forward (f->model, &b, true, &logits, &err), &err);
    g_assert_cmpfloat (test_rel_max_err (logits, ref, (size_t) T * V), <=, HF_LOGITS_REL_TOL);
  }
  g_free (ids);
  g_free (ref);
}

/* decode one token at a time through the KV cache: each step's logits equal the row of the
 * full forward; then a chunked prefill gives the same */
static void
test_kv_cache_matches_forward (Tiny *f, gconstpointer data)
{
  if (!f->model)
    return;
  int T;
  int *ids = ref_ids (f->refs, "input_ids", &T);
  int V = f->model->cfg.vocab_size;
  SutraError err;
  SutraBatch b = { 1, T, ids, NULL, NULL };
  float *full_view;
  test_assert_ok (sutra_model_forward (f->model, &b, false, &full_view, &err), &err);
  float *full = g_memdup2 (full_view, sizeof (float) * T * V);
  SutraGenState *st;
  test_assert_ok (f->model->vt->state_new (f->model, 64, &st, &err), &err);
  float *lg = g_new (float, (size_t) T * V);
  for (int t = 0; t < T; t++) {
    test_assert_ok (f->model->vt->step (f->model, st, ids + t, 1, lg, false, &err), &err);
    g_assert_cmpfloat (test_rel_max_err (lg, full + (size_t) t * V, V), <=, KV_STEP_REL_TOL);
  }
  g_assert_cmpint (f->model->vt->state_pos (st), ==, T);
  f->model->vt->state_reset (st);
  /* prefill 5, then the rest in one call with all logits */
  test_assert_ok (f->model->vt->step (f->model, st, ids, 5, lg, true, &err), &err);
  test_assert_ok (f->model->vt->step (f->model, st, ids + 5, T - 5, lg + 5 * V, true, &err), &err);
  g_assert_cmpfloat (test_rel_max_err (lg, full, (size_t) T * V), <=, KV_STEP_REL_TOL);
  /* overflowing the context is an error, not a crash */
  int many[80] = { 0 };
  f->model->vt->state_reset (st);
  g_assert_cmpint (f->model->vt->step (f->model, st, many, 80, lg, false, &err), ==, SUTRA_ERR_INVALID);
  f->model->vt->state_free (st);
  g_free (full); g_free (lg); g_free (ids);
}

/* greedy decoding reproduces transformers' generate(do_sample=False) */
static void
test_greedy_matches_hf (Tiny *f, gconstpointer data)
{
  if (!f->model)
    return;
  int P, G;
  int *prompt = ref_ids (f->refs, "greedy_prompt", &P);
  int *want = ref_ids (f->refs, "greedy_20", &G);
  int V = f->model->cfg.vocab_size;
  SutraError err;
  SutraGenState *st;
  test_assert_ok (f->model->vt->state_new (f->model, P + G + 1, &st, &err), &err);
  float *lg = g_new (float, V);
  test_assert_ok (f->model->vt->step (f->model, st, prompt, P, lg, false, &err), &err);
  for (int i = 0; i < G; i++) {
    int best = 0;
    for (int v = 1; v < V; v++)
      if (lg[v] > lg[best])
        best = v;
    g_assert_cmpint (best, ==, want[i]);
    test_assert_ok (f->model->vt->step (f->model, st, &best, 1, lg, false, &err), &err);
  }
  f->model->vt->state_free (st);
  g_free (lg); g_free (prompt); g_free (want);
}

/* ---------------------------------------------------------------------------------------- */
/* an independent double-precision Llama written from the formulas                          */
/* ---------------------------------------------------------------------------------------- */

static const float *
W (SutraModel *m, const char *fmt, int i)
{
  char name[128];
  snprintf (name, sizeof name, fmt, i);
  SutraLinear *l = sutra_model_find_linear (m, name);
  if (l)
    return l->w;
  SutraParam *p = sutra_model_find_param (m, name);
  g_assert_nonnull (p);
  return p->data;
}

static const float *
Bias (SutraModel *m, const char *fmt, int i)
{
  char name[128];
  snprintf (name, sizeof name, fmt, i);
  SutraLinear *l = sutra_model_find_linear (m, name);
  g_assert_nonnull (l);
  return l->bias;
}

static void
lin_d (double *y, const double *x, const float *w, const float *b, int N, int in, int out)
{
  for (int n = 0; n < N; n++)
    for (int o = 0; o < out; o++) {
      double acc = b ? b[o] : 0;
      for (int i = 0; i < in; i++)
        acc += x[(size_t) n * in + i] * w[(size_t) o * in + i];
      y[(size_t) n * out + o] = acc;
    }
}

static void
rms_d (double *y, const double *x, const float *w, double eps, int N, int C)
{
  for (int n = 0; n < N; n++) {
    double ss = 0;
    for (int i = 0; i < C; i++) ss += x[n * C + i] * x[n * C + i];
    double r = 1 / sqrt (ss / C + eps);
    for (int i = 0; i < C; i++) y[n * C + i] = w[i] * x[n * C + i] * r;
  }
}

static double
act_ref (SutraAct a, double x)
{
  if (a == SUTRA_ACT_SILU) return x / (1 + exp (-x));
  if (a == SUTRA_ACT_GELU_ERF) return 0.5 * x * (1 + erf (x / sqrt (2.0)));
  return 0.5 * x * (1 + tanh (sqrt (2 / M_PI) * (x + 0.044715 * x * x * x)));
}

static double *
reference_logits (SutraModel *m, const int *ids, int T)
{
  const SutraModelConfig *c = &m->cfg;
  int C = c->hidden_size, NH = c->n_heads, NKV = c->n_kv_heads, HS = c->head_dim;
  int H = NH * HS, KV = NKV * HS, F = c->intermediate_size, V = c->vocab_size;
  double *x = g_new0 (double, T * C), *h = g_new (double, T * C), *q = g_new (double, T * H);
  double *k = g_new (double, T * KV), *v = g_new (double, T * KV), *att = g_new (double, T * H);
  double *o = g_new (double, T * C), *g = g_new (double, T * F), *u = g_new (double, T * F);
  const float *emb = W (m, "model.embed_tokens.weight", 0);
  for (int t = 0; t < T; t++)
    for (int i = 0; i < C; i++) x[t * C + i] = emb[(size_t) ids[t] * C + i];
  double inv[256];
  SutraRope rope = c->rope;
  rope.rot_dim = HS;
  sutra_rope_inv_freq (inv, &rope);
  for (int l = 0; l < c->n_layers; l++) {
    rms_d (h, x, W (m, "model.layers.%d.input_layernorm.weight", l), c->rms_norm_eps, T, C);
    lin_d (q, h, W (m, "model.layers.%d.self_attn.q_proj", l), Bias (m, "model.layers.%d.self_attn.q_proj", l), T, C, H);
    lin_d (k, h, W (m, "model.layers.%d.self_attn.k_proj", l), Bias (m, "model.layers.%d.self_attn.k_proj", l), T, C, KV);
    lin_d (v, h, W (m, "model.layers.%d.self_attn.v_proj", l), Bias (m, "model.layers.%d.self_attn.v_proj", l), T, C, KV);
    for (int t = 0; t < T; t++) {   /* rotate_half RoPE */
      for (int hh = 0; hh < NH + NKV; hh++) {
        double *r = hh < NH ? q + t * H + hh * HS : k + t * KV + (hh - NH) * HS;
        for (int i = 0; i < HS / 2; i++) {
          double a = t * inv[i], x1 = r[i], x2 = r[i + HS / 2];
          r[i] = x1 * cos (a) - x2 * sin (a);
          r[i + HS / 2] = x2 * cos (a) + x1 * sin (a);
        }
      }
    }
    for (int hh = 0; hh < NH; hh++) {
      int gg = hh / (NH / NKV);
      for (int i = 0; i < T; i++) {
        double s[256], mx = -INFINITY, sum = 0;
        for (int j = 0; j <= i; j++) {
          double acc = 0;
          for (int e = 0; e < HS; e++) acc += q[i * H + hh * HS + e] * k[j * KV + gg * HS + e];
          s[j] = acc / sqrt ((double) HS);
          mx = fmax (mx, s[j]);
        }
        for (int j = 0; j <= i; j++) sum += exp (s[j] - mx);
        for (int e = 0; e < HS; e++) {
          double acc = 0;
          for (int j = 0; j <= i; j++) acc += exp (s[j] - mx) / sum * v[j * KV + gg * HS + e];
          att[i * H + hh * HS + e] = acc;
        }
      }
    }
    lin_d (o, att, W (m, "model.layers.%d.self_attn.o_proj", l), Bias (m, "model.layers.%d.self_attn.o_proj", l), T, H, C);
    for (int i = 0; i < T * C; i++) x[i] += o[i];
    rms_d (h, x, W (m, "model.layers.%d.post_attention_layernorm.weight", l), c->rms_norm_eps, T, C);
    lin_d (g, h, W (m, "model.layers.%d.mlp.gate_proj", l), Bias (m, "model.layers.%d.mlp.gate_proj", l), T, C, F);
    lin_d (u, h, W (m, "model.layers.%d.mlp.up_proj", l), Bias (m, "model.layers.%d.mlp.up_proj", l), T, C, F);
    for (int i = 0; i < T * F; i++) g[i] = act_ref (c->hidden_act, g[i]) * u[i];
    lin_d (o, g, W (m, "model.layers.%d.mlp.down_proj", l), Bias (m, "model.layers.%d.mlp.down_proj", l), T, F, C);
    for (int i = 0; i < T * C; i++) x[i] += o[i];
  }
  rms_d (h, x, W (m, "model.norm.weight", 0), c->rms_norm_eps, T, C);
  double *logits = g_new (double, (size_t) T * V);
  lin_d (logits, h, sutra_model_find_linear (m, "lm_head")->w, NULL, T, C, V);
  g_free (x); g_free (h); g_free (q); g_free (k); g_free (v); g_free (att); g_free (o); g_free (g); g_free (u);
  return logits;
}

typedef struct { const char *label, *json; } Variant;

/* config.json texts covering the family's switches */
static const Variant variants[] = {
  { "llama-mha-v4-rope", "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":32,\"intermediate_size\":48,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":97,\"max_position_embeddings\":64,"
    "\"rms_norm_eps\":1e-6,\"rope_theta\":500.0}" },
  { "llama-gqa-llama3-tied", "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":32,\"intermediate_size\":40,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":64,"
    "\"max_position_embeddings\":64,\"tie_word_embeddings\":true,\"rope_theta\":500000.0,"
    "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
    "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":16}}" },
  { "llama-mqa-linear-headdim-bias", "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":24,"
    "\"intermediate_size\":40,\"num_hidden_layers\":1,\"num_attention_heads\":3,\"num_key_value_heads\":1,"
    "\"head_dim\":10,\"vocab_size\":50,\"max_position_embeddings\":64,\"attention_bias\":true,"
    "\"mlp_bias\":true,\"hidden_act\":\"gelu_pytorch_tanh\","
    "\"rope_parameters\":{\"rope_type\":\"linear\",\"factor\":2.0,\"rope_theta\":10000.0}}" },
  { "qwen2-bias-tied", "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":32,\"intermediate_size\":48,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":70,"
    "\"max_position_embeddings\":64,\"tie_word_embeddings\":true,\"rope_theta\":1000000.0,"
    "\"use_sliding_window\":false,\"sliding_window\":32}" },
  { "mistral-window", "{\"architectures\":[\"MistralForCausalLM\"],\"hidden_size\":32,\"intermediate_size\":48,"
    "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":1,\"vocab_size\":70,"
    "\"max_position_embeddings\":64,\"sliding_window\":64,\"rope_theta\":10000.0}" },
};

static void
test_variants_match_reference (void)
{
  for (size_t vi = 0; vi < G_N_ELEMENTS (variants); vi++) {
    SutraModelConfig cfg;
    SutraError err;
    test_assert_ok (sutra_model_config_parse (variants[vi].json, strlen (variants[vi].json),
                                              variants[vi].label, &cfg, &err), &err);
    SutraModel *m;
    test_assert_ok (sutra_model_new_random (&cfg, 0.3f, 1234 + vi, &m, &err), &err);
    /* random biases and norm weights too, so every term shows */
    for (size_t i = 0; i < m->n_linears; i++)
      if (m->linears[i]->bias)
        test_fill_uniform (m->linears[i]->bias, m->linears[i]->out, -0.5, 0.5, 7 + i);
    for (size_t i = 0; i < m->n_params; i++)
      if (strstr (m->params[i]->name, "norm"))
        test_fill_uniform (m->params[i]->data, m->params[i]->shape[0], 0.5, 1.5, 99 + i);
    /* save and load back: the loaded model is what is compared */
    const char *dir = test_tmpdir ();
    test_assert_ok (sutra_model_write_files (m, dir, SUTRA_F32, &err), &err);
    SutraModel *m2;
    test_assert_ok (sutra_model_load (dir, &m2, &err), &err);
    g_assert_cmpint (sutra_model_param_count (m2), ==, sutra_model_param_count (m));
    int T = 20, ids[20];
    for (int t = 0; t < T; t++)
      ids[t] = (t * 37 + 5) % cfg.vocab_size;
    double *ref = reference_logits (m2, ids, T);
    float *refs = g_new (float, (size_t) T * cfg.vocab_size);
    for (int i = 0; i < T * cfg.vocab_size; i++)
      refs[i] = (float) ref[i];
    SutraBatch b = { 1, T, ids, NULL, NULL };
    float *logits;
    test_assert_ok (sutra_model_forward (m2, &b, false, &logits, &err), &err);
    double rel = test_rel_max_err (logits, refs, (size_t) T * cfg.vocab_size);
    g_test_message ("%s: rel max err %.3g", variants[vi].label, rel);
    g_assert_cmpfloat (rel, <=, HF_LOGITS_REL_TOL);
    /* and the KV cache path */
    SutraGenState *st;
    test_assert_ok (m2->vt->state_new (m2, 32, &st, &err), &err);
    float *lg = g_new (float, (size_t) T * cfg.vocab_size);
    test_assert_ok (m2->vt->step (m2, st, ids, 7, lg, true, &err), &err);
    for (int t = 7; t < T; t++)
      test_assert_ok (m2->vt->step (m2, st, ids + t, 1, lg + (size_t) t * cfg.vocab_size, false, &err), &err);
    g_assert_cmpfloat (test_rel_max_err (lg, refs, (size_t) T * cfg.vocab_size), <=, HF_LOGITS_REL_TOL);
    m2->vt->state_free (st);
    g_free (lg); g_free (ref); g_free (refs);
    sutra_model_free (m2);
    sutra_model_free (m);
  }
}

/* a batch of two rows equals the rows run alone; packed documents equal separate rows */
static void
test_batch_and_packing (void)
{
  const char *json = variants[1].json;
  SutraModelConfig cfg;
  SutraError err;
  test_assert_ok (sutra_model_config_parse (json, strlen (json), "cfg", &cfg, &err), &err);
  SutraModel *m;
  test_assert_ok (sutra_model_new_random (&cfg, 0.3f, 5, &m, &err), &err);
  int V = cfg.vocab_size, T = 12;
  int ids[24], pos[24], doc[24];
  for (int i = 0; i < 24; i++)
    ids[i] = (i * 13 + 1) % V;
  float *lg;
  SutraBatch two = { 2, T, ids, NULL, NULL };
  test_assert_ok (sutra_model_forward (m, &two, false, &lg, &err), &err);
  float *both = g_memdup2 (lg, sizeof (float) * 2 * T * V);
  for (int r = 0; r < 2; r++) {
    SutraBatch one = { 1, T, ids + r * T, NULL, NULL };
    test_assert_ok (sutra_model_forward (m, &one, false, &lg, &err), &err);
    g_assert_cmpfloat (test_rel_max_err (both + (size_t) r * T * V, lg, (size_t) T * V), <=, 1e-5);
  }
  /* one row packing [ids 0..4] and [ids 5..11] as two documents with restarting positions */
  for (int i = 0; i < T; i++) {
    doc[i] = i < 5 ? 0 : 1;
    pos[i] = i < 5 ? i : i - 5;
  }
  SutraBatch packed = { 1, T, ids, pos, doc };
  test_assert_ok (sutra_model_forward (m, &packed, false, &lg, &err), &err);
  float *pk = g_memdup2 (lg, sizeof (float) * T * V);
  SutraBatch d0 = { 1, 5, ids, NULL, NULL }, d1 = { 1, 7, ids + 5, NULL, NULL };
  test_assert_ok (sutra_model_forward (m, &d0, false, &lg, &err), &err);
  g_assert_cmpfloat (test_rel_max_err (pk, lg, 5 * V), <=, 1e-5);
  test_assert_ok (sutra_model_forward (m, &d1, false, &lg, &err), &err);
  g_assert_cmpfloat (test_rel_max_err (pk + 5 * V, lg, 7 * V), <=, 1e-5);
  /* out-of-vocabulary ids are an error */
  int bad[3] = { 1, V, 2 };
  SutraBatch b3 = { 1, 3, bad, NULL, NULL };
  g_assert_cmpint (sutra_model_forward (m, &b3, false, &lg, &err), ==, SUTRA_ERR_INVALID);
  g_free (both); g_free (pk);
  sutra_model_free (m);
}

/* config.json errors name the key; unsupported settings are refused */
static void
test_config_errors (void)
{
  struct { const char *json; SutraStatus st; const char *words; } cases[] = {
    { "{\"architectures\":[\"GPT2LMHeadModel\"]}", SUTRA_ERR_UNSUPPORTED, "GPT2LMHeadModel" },
    { "{\"model_type\":\"llama\",\"hidden_size\":\"big\"}", SUTRA_ERR_FORMAT, "hidden_size" },
    { "{\"model_type\":\"llama\",\"num_attention_heads\":4,\"num_key_value_heads\":3}", SUTRA_ERR_FORMAT, "num_key_value_heads" },
    { "{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}", SUTRA_ERR_UNSUPPORTED, "yarn" },
    { "{\"model_type\":\"llama\",\"hidden_act\":\"relu6\"}", SUTRA_ERR_UNSUPPORTED, "relu6" },
    { "{\"model_type\":\"llama\",\"partial_rotary_factor\":0.5}", SUTRA_ERR_UNSUPPORTED, "partial_rotary_factor" },
    { "{\"model_type\":\"llama\",\"hidden_size\":-4}", SUTRA_ERR_FORMAT, "hidden_size" },
    { "[1,2]", SUTRA_ERR_FORMAT, "object" },
    { "{\"model_type\":\"llama\",", SUTRA_ERR_FORMAT, "cfg.json" },
    { "{}", SUTRA_ERR_FORMAT, "architectures" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    SutraModelConfig cfg;
    SutraError err = { 0 };
    SutraStatus st = sutra_model_config_parse (cases[i].json, strlen (cases[i].json), "cfg.json", &cfg, &err);
    if (st != cases[i].st || !strstr (err.message, cases[i].words))
      g_error ("case %zu: got %s '%s', want %s with '%s'", i, sutra_status_name (st), err.message,
               sutra_status_name (cases[i].st), cases[i].words);
  }
  /* v5 rope_parameters and v4 rope_theta give the same frequencies */
  const char *v4 = "{\"model_type\":\"llama\",\"rope_theta\":123.0,\"rope_scaling\":{\"type\":\"linear\",\"factor\":3}}";
  const char *v5 = "{\"model_type\":\"llama\",\"rope_parameters\":{\"rope_theta\":123.0,\"rope_type\":\"linear\",\"factor\":3}}";
  SutraModelConfig a, b;
  SutraError err;
  test_assert_ok (sutra_model_config_parse (v4, strlen (v4), "v4", &a, &err), &err);
  test_assert_ok (sutra_model_config_parse (v5, strlen (v5), "v5", &b, &err), &err);
  g_assert_cmpfloat (a.rope.theta, ==, 123.0);
  g_assert_cmpfloat (b.rope.theta, ==, 123.0);
  g_assert_cmpint (a.rope.type, ==, SUTRA_ROPE_LINEAR);
  g_assert_cmpint (b.rope.type, ==, SUTRA_ROPE_LINEAR);
  g_assert_cmpfloat (a.rope.factor, ==, 3.0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  sutra_set_threads (2);
  g_test_add ("/engine/llama/forward-matches-hf", Tiny, NULL, tiny_setup, test_forward_matches_hf, tiny_teardown);
  g_test_add ("/engine/llama/kv-cache-matches-forward", Tiny, NULL, tiny_setup, test_kv_cache_matches_forward, tiny_teardown);
  g_test_add ("/engine/llama/greedy-matches-hf", Tiny, NULL, tiny_setup, test_greedy_matches_hf, tiny_teardown);
  g_test_add_func ("/engine/llama/variants-match-reference", test_variants_match_reference);
  g_test_add_func ("/engine/llama/batch-and-packing", test_batch_and_packing);
  g_test_add_func ("/engine/llama/config-errors", test_config_errors);
  return g_test_run ();
}
