/* test-gguf-export.c: the Llama-family GGUF exporter read back with our reader: llama.cpp's
 * tensor names and shapes, the attn_q/attn_k row permutation checked element by element against
 * convert_hf_to_gguf.py's formula, Qwen2 biases unpermuted, tied embeddings, Llama-3 rope_freqs,
 * metadata, tokenizer metadata (GPT-2 byte-level, SentencePiece-style, Phi-3 chat template and
 * end-of-turn token), merged LoRA adapters, and the import round trip (logits unchanged for
 * f32, close for f16, q8_0 within its rounding). */
#include "test-util.h"
#include "sutra-gguf-export.h"
#include "sutra-lora.h"
#include "sutra-tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define F16_LOGIT_REL_TOL 2e-3     /* f16 weights (10-bit mantissa) through two layers */
#define Q8_LOGIT_REL_TOL 4e-2

static char *
tmp_path (const char *name)
{
  return g_build_filename (test_tmpdir (), name, NULL);
}

static SutraModel *
random_model (const char *mdir, int vocab, const char *model_type, bool tie, int rope_type,
              bool bias, guint32 seed)
{
  SutraModelConfig cfg;
  SutraError err;
  test_assert_ok (sutra_model_config_load (mdir, &cfg, &err), &err);
  cfg.vocab_size = vocab;
  snprintf (cfg.model_type, sizeof cfg.model_type, "%s", model_type);
  cfg.tie_word_embeddings = tie;
  cfg.attention_bias = bias;
  if (rope_type == SUTRA_ROPE_LLAMA3) {
    cfg.rope.type = SUTRA_ROPE_LLAMA3;
    cfg.rope.theta = 500000;
    cfg.rope.factor = 8;
    cfg.rope.low_freq_factor = 1;
    cfg.rope.high_freq_factor = 4;
    cfg.rope.original_max_position = 64;
  }
  SutraModel *m;
  test_assert_ok (sutra_model_new_random (&cfg, 0.1f, seed, &m, &err), &err);
  /* non-trivial norms and biases, so a mix-up shows */
  for (size_t i = 0; i < m->n_params; i++)
    if (strstr (m->params[i]->name, "norm"))
      test_fill_uniform (m->params[i]->data, (size_t) m->params[i]->shape[0], 0.5f, 1.5f, seed + (guint32) i);
  for (size_t i = 0; i < m->n_linears; i++)
    if (m->linears[i]->bias)
      test_fill_uniform (m->linears[i]->bias, (size_t) m->linears[i]->out, -0.5f, 0.5f, seed + 100 + (guint32) i);
  return m;
}

static const char *
kv_str (SutraGguf *g, const char *key, char *buf, size_t cap)
{
  int64_t i = sutra_gguf_find_key (g, key);
  const char *s;
  size_t len;
  if (i < 0 || !sutra_gguf_kv_string (g, (size_t) i, &s, &len))
    return NULL;
  snprintf (buf, cap, "%.*s", (int) len, s);
  return buf;
}

static int64_t
kv_int (SutraGguf *g, const char *key)
{
  int64_t i = sutra_gguf_find_key (g, key), v;
  if (i < 0 || !sutra_gguf_kv_int (g, (size_t) i, &v))
    return -12345;
  return v;
}

static float *
tensor_f32 (SutraGguf *g, const char *name, int64_t cols, int64_t rows)
{
  const SutraGgufTensor *t = sutra_gguf_find_tensor (g, name);
  if (!t)
    g_error ("tensor %s missing", name);
  g_assert_cmpint (t->ne[0], ==, cols);
  g_assert_cmpint (t->ne[1], ==, rows);
  float *x = g_new (float, (size_t) (cols * rows));
  SutraError err;
  test_assert_ok (sutra_gguf_tensor_to_f32 (g, t, x, &err), &err);
  return x;
}

/* llama: GPT-2 tokenizer; names, shapes, permutation, metadata */
static void
test_llama_layout (void)
{
  const char *mdir = test_shared_path ("hf-refs/llama-tiny");
  const char *tdir = test_shared_path ("tokenizers/gpt2");
  if (!mdir || !tdir)
    return;
  SutraError err;
  SutraModel *m = random_model (mdir, 50257, "llama", false, SUTRA_ROPE_DEFAULT, false, 3);
  char *path = tmp_path ("llama.gguf");
  test_assert_ok (sutra_gguf_export_model (m, tdir, path, "f32", NULL, NULL, &err), &err);
  SutraGguf *g;
  test_assert_ok (sutra_gguf_open (path, &g, &err), &err);
  const SutraModelConfig *c = &m->cfg;
  char b[128];
  g_assert_cmpstr (kv_str (g, "general.architecture", b, sizeof b), ==, "llama");
  g_assert_cmpint (kv_int (g, "llama.block_count"), ==, c->n_layers);
  g_assert_cmpint (kv_int (g, "llama.embedding_length"), ==, c->hidden_size);
  g_assert_cmpint (kv_int (g, "llama.feed_forward_length"), ==, c->intermediate_size);
  g_assert_cmpint (kv_int (g, "llama.attention.head_count"), ==, c->n_heads);
  g_assert_cmpint (kv_int (g, "llama.attention.head_count_kv"), ==, c->n_kv_heads);
  g_assert_cmpint (kv_int (g, "llama.rope.dimension_count"), ==, c->head_dim);
  g_assert_cmpint (kv_int (g, "llama.context_length"), ==, c->max_position_embeddings);
  g_assert_cmpint (kv_int (g, "llama.vocab_size"), ==, 50257);
  g_assert_cmpint (kv_int (g, "general.file_type"), ==, 0);
  g_assert_cmpstr (kv_str (g, "tokenizer.ggml.model", b, sizeof b), ==, "gpt2");
  g_assert_cmpstr (kv_str (g, "tokenizer.ggml.pre", b, sizeof b), ==, "gpt-2");
  g_assert_cmpint (kv_int (g, "tokenizer.ggml.eos_token_id"), ==, 50256);
  SutraGgufType et;
  uint64_t n;
  g_assert_true (sutra_gguf_kv_array (g, (size_t) sutra_gguf_find_key (g, "tokenizer.ggml.tokens"), &et, &n));
  g_assert_cmpuint (n, ==, 50257);
  g_assert_true (sutra_gguf_kv_array (g, (size_t) sutra_gguf_find_key (g, "tokenizer.ggml.merges"), &et, &n));
  g_assert_cmpuint (n, >, 40000);
  g_assert_cmpint (sutra_gguf_find_key (g, "tokenizer.ggml.scores"), ==, -1);
  g_assert_cmpint (sutra_gguf_find_key (g, "tokenizer.chat_template"), ==, -1);   /* GPT-2 has none */
  /* every weight is there with llama.cpp's name and [in, out] shape */
  int C = c->hidden_size, H = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
  int F = c->intermediate_size, hd = c->head_dim;
  g_assert_nonnull (sutra_gguf_find_tensor (g, "output.weight"));
  g_assert_nonnull (sutra_gguf_find_tensor (g, "output_norm.weight"));
  g_assert_null (sutra_gguf_find_tensor (g, "rope_freqs.weight"));
  g_assert_cmpuint (sutra_gguf_tensor_count (g), ==, 3 + 9 * (size_t) c->n_layers);
  for (int l = 0; l < c->n_layers; l++) {
    char name[64], hf[96];
    /* attn_q: GGUF row h hd + 2 j + s = HF row h hd + s hd/2 + j (convert_hf_to_gguf.py permute) */
    snprintf (name, sizeof name, "blk.%d.attn_q.weight", l);
    float *q = tensor_f32 (g, name, C, H);
    snprintf (hf, sizeof hf, "model.layers.%d.self_attn.q_proj", l);
    const SutraLinear *lq = sutra_model_find_linear (m, hf);
    for (int h = 0; h < c->n_heads; h++)
      for (int j = 0; j < hd / 2; j++)
        for (int s = 0; s < 2; s++)
          g_assert_cmpmem (q + (size_t) (h * hd + 2 * j + s) * C, sizeof (float) * (size_t) C,
                           lq->w + (size_t) (h * hd + s * hd / 2 + j) * C, sizeof (float) * (size_t) C);
    g_free (q);
    /* attn_k: the same with the KV heads */
    snprintf (name, sizeof name, "blk.%d.attn_k.weight", l);
    float *k = tensor_f32 (g, name, C, KV);
    snprintf (hf, sizeof hf, "model.layers.%d.self_attn.k_proj", l);
    const SutraLinear *lk = sutra_model_find_linear (m, hf);
    for (int h = 0; h < c->n_kv_heads; h++)
      for (int j = 0; j < hd / 2; j++)
        g_assert_cmpmem (k + (size_t) (h * hd + 2 * j + 1) * C, sizeof (float) * (size_t) C,
                         lk->w + (size_t) (h * hd + hd / 2 + j) * C, sizeof (float) * (size_t) C);
    g_free (k);
    /* v, o, MLP unpermuted */
    const char *plain[4][2] = { { "attn_v", "self_attn.v_proj" }, { "attn_output", "self_attn.o_proj" },
                                { "ffn_gate", "mlp.gate_proj" }, { "ffn_down", "mlp.down_proj" } };
    int in[4] = { C, H, C, F }, out[4] = { KV, C, F, C };
    for (int t = 0; t < 4; t++) {
      snprintf (name, sizeof name, "blk.%d.%s.weight", l, plain[t][0]);
      snprintf (hf, sizeof hf, "model.layers.%d.%s", l, plain[t][1]);
      float *w = tensor_f32 (g, name, in[t], out[t]);
      g_assert_cmpmem (w, sizeof (float) * (size_t) in[t] * out[t], sutra_model_find_linear (m, hf)->w,
                       sizeof (float) * (size_t) in[t] * out[t]);
      g_free (w);
    }
    snprintf (name, sizeof name, "blk.%d.ffn_norm.weight", l);
    snprintf (hf, sizeof hf, "model.layers.%d.post_attention_layernorm.weight", l);
    const SutraGgufTensor *nt = sutra_gguf_find_tensor (g, name);
    g_assert_true (nt && nt->n_dims == 1 && nt->type == SUTRA_GGML_F32);
    g_assert_cmpmem (nt->data, nt->size, sutra_model_find_param (m, hf)->data, sizeof (float) * (size_t) C);
  }
  sutra_gguf_free (g);
  /* import into a fresh model with other weights: identical logits */
  SutraModel *m2 = random_model (mdir, 50257, "llama", false, SUTRA_ROPE_DEFAULT, false, 99);
  test_assert_ok (sutra_gguf_import_weights (m2, path, &err), &err);
  int ids[6] = { 464, 2068, 7586, 21831, 18045, 625 };
  SutraBatch bt = { 1, 6, ids, NULL, NULL };
  float *l1, *l2;
  test_assert_ok (sutra_model_forward (m, &bt, false, &l1, &err), &err);
  float *keep = g_memdup2 (l1, sizeof (float) * 6 * 50257);
  test_assert_ok (sutra_model_forward (m2, &bt, false, &l2, &err), &err);
  g_assert_cmpfloat (test_rel_max_err (l2, keep, 6 * 50257), ==, 0.0);
  /* f16 and q8_0 exports: close to the f32 logits, q8_0 blocks identical to a fresh quantization */
  const char *types[2] = { "f16", "q8_0" };
  double tol[2] = { F16_LOGIT_REL_TOL, Q8_LOGIT_REL_TOL };
  for (int t = 0; t < 2; t++) {
    test_assert_ok (sutra_gguf_export_model (m, tdir, path, types[t], NULL, NULL, &err), &err);
    test_assert_ok (sutra_gguf_import_weights (m2, path, &err), &err);
    test_assert_ok (sutra_model_forward (m2, &bt, false, &l2, &err), &err);
    double rel = test_rel_max_err (l2, keep, 6 * 50257);
    g_test_message ("%s export: logits rel err %.3g", types[t], rel);
    g_assert_cmpfloat (rel, <=, tol[t]);
    g_assert_cmpfloat (rel, >, 0.0);
  }
  test_assert_ok (sutra_gguf_open (path, &g, &err), &err);
  g_assert_cmpint (kv_int (g, "general.file_type"), ==, 7);
  g_assert_cmpint (kv_int (g, "general.quantization_version"), ==, 2);
  g_assert_cmpint (sutra_gguf_find_tensor (g, "blk.0.ffn_up.weight")->type, ==, SUTRA_GGML_Q8_0);
  /* the FFN width of llama-tiny (172) is not a multiple of 32: ffn_down falls back to f16 */
  g_assert_cmpint (sutra_gguf_find_tensor (g, "blk.0.ffn_down.weight")->type, ==,
                   c->intermediate_size % 32 ? SUTRA_GGML_F16 : SUTRA_GGML_Q8_0);
  g_assert_cmpint (sutra_gguf_find_tensor (g, "blk.0.attn_norm.weight")->type, ==, SUTRA_GGML_F32);
  sutra_gguf_free (g);
  /* bad requests */
  g_assert_cmpint (sutra_gguf_export_model (m, tdir, path, "q3_k", NULL, NULL, &err), ==, SUTRA_ERR_INVALID);
  g_assert_cmpint (sutra_gguf_export_model (m, mdir, path, "f32", NULL, NULL, &err), ==, SUTRA_ERR_NOT_FOUND);
  g_free (keep);
  sutra_model_free (m2);
  sutra_model_free (m);
  g_free (path);
}

/* qwen2: unpermuted q/k with biases, tied embeddings (no output tensor) */
static void
test_qwen2_tied_and_adapter (void)
{
  const char *mdir = test_shared_path ("hf-refs/llama-tiny");
  const char *tdir = test_shared_path ("hf-refs/tokenizers/bpe-bytelevel");
  if (!mdir || !tdir)
    return;
  SutraError err;
  SutraModel *m = random_model (mdir, 1200, "qwen2", true, SUTRA_ROPE_DEFAULT, true, 5);
  char *path = tmp_path ("qwen2.gguf");
  test_assert_ok (sutra_gguf_export_model (m, tdir, path, "f32", NULL, NULL, &err), &err);
  SutraGguf *g;
  test_assert_ok (sutra_gguf_open (path, &g, &err), &err);
  char b[64];
  g_assert_cmpstr (kv_str (g, "general.architecture", b, sizeof b), ==, "qwen2");
  g_assert_cmpint (kv_int (g, "qwen2.block_count"), ==, m->cfg.n_layers);
  g_assert_null (sutra_gguf_find_tensor (g, "output.weight"));
  const SutraLinear *q = sutra_model_find_linear (m, "model.layers.0.self_attn.q_proj");
  int C = m->cfg.hidden_size, H = m->cfg.n_heads * m->cfg.head_dim;
  float *w = tensor_f32 (g, "blk.0.attn_q.weight", C, H);
  g_assert_cmpmem (w, sizeof (float) * (size_t) C * H, q->w, sizeof (float) * (size_t) C * H);
  g_free (w);
  const SutraGgufTensor *bq = sutra_gguf_find_tensor (g, "blk.0.attn_q.bias");
  g_assert_true (bq && bq->n_dims == 1 && bq->ne[0] == H);
  g_assert_cmpmem (bq->data, bq->size, q->bias, sizeof (float) * (size_t) H);
  g_assert_nonnull (sutra_gguf_find_tensor (g, "blk.1.attn_v.bias"));
  sutra_gguf_free (g);
  /* q4_0 on a tied model: the embedding doubles as the head and is stored as q6_K when its rows
   * fit (64 does not fit q6_K's 256: q8_0) */
  test_assert_ok (sutra_gguf_export_model (m, tdir, path, "q4_0", NULL, NULL, &err), &err);
  test_assert_ok (sutra_gguf_open (path, &g, &err), &err);
  g_assert_cmpint (sutra_gguf_find_tensor (g, "token_embd.weight")->type, ==,
                   C % 256 == 0 ? SUTRA_GGML_Q6_K : SUTRA_GGML_Q8_0);
  g_assert_cmpint (sutra_gguf_find_tensor (g, "blk.0.attn_q.weight")->type, ==, SUTRA_GGML_Q4_0);
  sutra_gguf_free (g);
  /* an attached adapter is merged into the written weights; the model itself is untouched */
  int ids[5] = { 5, 17, 300, 2, 911 };
  SutraBatch bt = { 1, 5, ids, NULL, NULL };
  float *lg;
  SutraLoraConfig lc = { .r = 4, .alpha = 8.f, .all_linear = true };
  int na;
  test_assert_ok (sutra_lora_attach (m, &lc, 9, &na, &err), &err);
  for (size_t i = 0; i < m->n_linears; i++)
    if (m->linears[i]->lora)
      test_fill_uniform (m->linears[i]->lora->B, (size_t) m->linears[i]->out * 4, -0.3f, 0.3f, (guint32) i);
  test_assert_ok (sutra_model_forward (m, &bt, false, &lg, &err), &err);
  float *tuned = g_memdup2 (lg, sizeof (float) * 5 * 1200);
  float *w0 = g_memdup2 (q->w, sizeof (float) * (size_t) C * H);
  test_assert_ok (sutra_gguf_export_model (m, tdir, path, "f32", NULL, NULL, &err), &err);
  g_assert_cmpmem (q->w, sizeof (float) * (size_t) C * H, w0, sizeof (float) * (size_t) C * H);
  SutraModel *m2 = random_model (mdir, 1200, "qwen2", true, SUTRA_ROPE_DEFAULT, true, 77);
  test_assert_ok (sutra_gguf_import_weights (m2, path, &err), &err);
  test_assert_ok (sutra_model_forward (m2, &bt, false, &lg, &err), &err);
  double rel = test_rel_max_err (lg, tuned, 5 * 1200);
  g_test_message ("merged adapter through GGUF: logits rel err %.3g", rel);
  g_assert_cmpfloat (rel, <=, 1e-5);
  /* the wrong architecture is refused on import */
  SutraModel *ll = random_model (mdir, 1200, "llama", true, SUTRA_ROPE_DEFAULT, true, 1);
  g_assert_cmpint (sutra_gguf_import_weights (ll, path, &err), ==, SUTRA_ERR_INVALID);
  sutra_model_free (ll);
  sutra_lora_config_clear (&lc);
  g_free (w0);
  g_free (tuned);
  sutra_model_free (m2);
  sutra_model_free (m);
  g_free (path);
}

/* Llama-3 rope scaling and a SentencePiece-style tokenizer with a chat template (Phi-3) */
static void
test_llama3_rope_and_phi3_template (void)
{
  const char *mdir = test_shared_path ("hf-refs/llama-tiny");
  const char *tdir = test_shared_path ("tokenizers/phi-3-mini");
  if (!mdir || !tdir)
    return;
  SutraError err;
  SutraTokenizer *tok;
  test_assert_ok (sutra_tokenizer_load (tdir, &tok, &err), &err);
  int V = (int) sutra_tokenizer_vocab_size (tok) + 3;        /* padded embeddings: [PAD] ids */
  SutraModel *m = random_model (mdir, V, "llama", false, SUTRA_ROPE_LLAMA3, false, 8);
  char *path = tmp_path ("phi3.gguf");
  test_assert_ok (sutra_gguf_export_model (m, tdir, path, "f16", NULL, NULL, &err), &err);
  SutraGguf *g;
  test_assert_ok (sutra_gguf_open (path, &g, &err), &err);
  char b[256];
  g_assert_cmpstr (kv_str (g, "tokenizer.ggml.model", b, sizeof b), ==, "llama");
  g_assert_nonnull (kv_str (g, "tokenizer.chat_template", b, sizeof b));
  int end = sutra_tokenizer_token_to_id (tok, "<|end|>", 7);
  g_assert_cmpint (kv_int (g, "tokenizer.ggml.eot_token_id"), ==, end);
  g_assert_cmpint (kv_int (g, "tokenizer.ggml.eos_token_id"), ==,
                   sutra_tokenizer_token_to_id (tok, "<|endoftext|>", 13));
  int64_t ti = sutra_gguf_find_key (g, "tokenizer.ggml.token_type"), tt;
  g_assert_true (sutra_gguf_kv_array_int (g, (size_t) ti, (uint64_t) end, &tt) && tt == 3);   /* control */
  g_assert_true (sutra_gguf_kv_array_int (g, (size_t) ti, 2, &tt) && tt == 3);        /* </s> made control */
  g_assert_true (sutra_gguf_kv_array_int (g, (size_t) ti, 3, &tt) && tt == 6);        /* <0x00>: byte */
  g_assert_true (sutra_gguf_kv_array_int (g, (size_t) ti, (uint64_t) V - 1, &tt) && tt == 5); /* padding */
  int64_t tk = sutra_gguf_find_key (g, "tokenizer.ggml.tokens");
  const char *s;
  size_t len;
  g_assert_true (sutra_gguf_kv_array_string (g, (size_t) tk, (uint64_t) V - 1, &s, &len));
  g_assert_cmpint (strncmp (s, "[PAD", 4), ==, 0);
  bool add_bos;
  g_assert_true (sutra_gguf_kv_bool (g, (size_t) sutra_gguf_find_key (g, "tokenizer.ggml.add_bos_token"), &add_bos));
  g_assert_cmpint (add_bos, ==, sutra_tokenizer_adds_bos (tok));
  /* rope_freqs: 1 at high frequencies, `factor` at low ones, smooth in between */
  const SutraGgufTensor *rf = sutra_gguf_find_tensor (g, "rope_freqs.weight");
  int half = m->cfg.head_dim / 2;
  g_assert_true (rf && rf->type == SUTRA_GGML_F32 && rf->ne[0] == half);
  const float *f = rf->data;
  for (int i = 0; i < half; i++) {
    double freq = 1.0 / pow (500000.0, 2.0 * i / m->cfg.head_dim), wl = 2 * M_PI / freq;
    double want = wl < 64 / 4.0 ? 1.0 : wl > 64 ? 8.0 : 1.0 / ((1 - (64 / wl - 1) / 3) / 8 + (64 / wl - 1) / 3);
    g_assert_cmpfloat (fabs (f[i] - want), <=, 1e-5 * want);
  }
  g_assert_cmpfloat (f[0], ==, 1.f);
  g_assert_cmpfloat (f[half - 1], ==, 8.f);
  sutra_gguf_free (g);
  sutra_model_free (m);
  sutra_tokenizer_free (tok);
  g_free (path);
}

static void
test_pre_tokenizer_names (void)
{
  const struct { const char *dir, *want; } cases[] = {
    { "tokenizers/gpt2", "gpt-2" }, { "tokenizers/gpt-neox-20b", "gpt-2" },
    { "tokenizers/falcon-7b", "falcon" }, { "hf-refs/tokenizers/bpe-bytelevel", "gpt-2" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    const char *d = test_shared_path (cases[i].dir);
    if (!d)
      return;
    SutraTokenizer *tok;
    SutraError err;
    test_assert_ok (sutra_tokenizer_load (d, &tok, &err), &err);
    g_assert_cmpstr (sutra_gguf_pre_tokenizer_name (tok), ==, cases[i].want);
    sutra_tokenizer_free (tok);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/gguf-export/llama-layout", test_llama_layout);
  g_test_add_func ("/engine/gguf-export/qwen2-tied-adapter", test_qwen2_tied_and_adapter);
  g_test_add_func ("/engine/gguf-export/llama3-rope-phi3-template", test_llama3_rope_and_phi3_template);
  g_test_add_func ("/engine/gguf-export/pre-tokenizer-names", test_pre_tokenizer_names);
  return g_test_run ();
}
