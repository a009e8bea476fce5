/* sutra-gguf-export.c: Llama-family model -> GGUF (llama.cpp's convert_hf_to_gguf.py naming,
 * permutation and metadata; see sutra-gguf-export.h). Tensor bytes are produced while the file
 * is written, row by row across the thread pool: nothing holds a second copy of the model. */
#include "sutra-gguf-export.h"
#include "sutra-chat-session.h"
#include "sutra-fsutil.h"
#include "sutra-generate.h"
#include "sutra-pool.h"
#include "sutra-tokenizer-export.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's llama_ftype values (gguf-py LlamaFileType) */
enum { FTYPE_ALL_F32 = 0, FTYPE_F16 = 1, FTYPE_Q4_0 = 2, FTYPE_Q8_0 = 7, FTYPE_Q4_K_S = 14,
       FTYPE_Q6_K = 18, FTYPE_BF16 = 32 };

typedef struct {
  const char *name;
  SutraGgmlType type;
  int ftype;
} TypeChoice;

static const TypeChoice choices[] = {
  { "f32", SUTRA_GGML_F32, FTYPE_ALL_F32 },  { "f16", SUTRA_GGML_F16, FTYPE_F16 },
  { "bf16", SUTRA_GGML_BF16, FTYPE_BF16 },   { "q8_0", SUTRA_GGML_Q8_0, FTYPE_Q8_0 },
  { "q4_0", SUTRA_GGML_Q4_0, FTYPE_Q4_0 },   { "q4_k", SUTRA_GGML_Q4_K, FTYPE_Q4_K_S },
  { "q6_k", SUTRA_GGML_Q6_K, FTYPE_Q6_K },
};

/* ------------------------------------------------------------------------------------------ */
/* tensor sources                                                                             */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  SutraParam *param;          /* the parameter behind `data` (import writes into it) */
  const SutraLinear *lin;     /* a projection's weight (rows = out features) ... */
  const float *data;          /* ... or plain f32 data [rows, cols] (params, biases, rope_freqs) */
  bool bias;                  /* lin's bias instead of its weight */
  int rows, cols;
  int type;
  int head_dim;               /* > 0: rows permuted within heads of head_dim (Llama q/k) */
  char name[SUTRA_GGUF_MAX_NAME + 1];
} Src;

/* Row r of the GGUF tensor comes from HF row src_row(r): llama.cpp's permute() maps HF's
 * rotate_half layout [x0..x_{d/2-1} | x_{d/2}..x_{d-1}] of each head to interleaved pairs
 * (x0, x_{d/2}, x1, x_{d/2+1}, ...): new[h d + 2 j + s] = old[h d + s d/2 + j]. */
static int
src_row (const Src *s, int r)
{
  if (s->head_dim <= 0)
    return r;
  int d = s->head_dim, h = r / d, w = r % d;
  return h * d + (w % 2) * (d / 2) + w / 2;
}

/* f32 row r (source order already applied) into dst [cols] */
static void
load_row (const Src *s, int r, float *dst)
{
  int sr = src_row (s, r);
  if (s->data) {
    memcpy (dst, s->data + (size_t) sr * s->cols, sizeof (float) * (size_t) s->cols);
    return;
  }
  const SutraLinear *l = s->lin;
  if (s->bias) {                      /* a bias as a [1, out] tensor: r is the column block 0 */
    for (int c = 0; c < s->cols; c++)
      dst[c] = l->bias[src_row (s, c)];
    return;
  }
  sutra_linear_base_rows (l, sr, 1, dst);      /* f32, half or packed */
  const SutraLora *a = l->lora;
  if (a && a->enabled) {
    /* merged weight row: W[sr] + scale * B[sr, :] A   (PEFT merge_and_unload) */
    for (int k = 0; k < a->r; k++) {
      float bk = a->scale * a->B[(size_t) sr * a->r + k];
      const float *ak = a->A + (size_t) k * l->in;
      for (int c = 0; c < l->in; c++)
        dst[c] += bk * ak[c];
    }
  }
}

typedef struct {
  const Src *s;
  uint8_t *dst;
  size_t row_bytes;
} FillJob;

static void
fill_rows (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const FillJob *j = ctx;
  (void) ti;
  float *row = sutra_thread_scratch (5, (size_t) j->s->cols);
  for (int64_t r = r0; r < r1; r++) {
    load_row (j->s, (int) r, row);
    sutra_ggml_quantize_row (j->s->type, j->dst + (size_t) r * j->row_bytes, row, j->s->cols);
  }
}

static SutraStatus
fill_tensor (void *user, void *dst, size_t size, SutraError *err)
{
  const Src *s = user;
  FillJob j = { s, dst, sutra_ggml_row_bytes (s->type, s->cols) };
  (void) err;
  SUTRA_ASSERT (j.row_bytes * (size_t) s->rows == size);
  sutra_parallel_for (s->rows, 16, fill_rows, &j);
  return SUTRA_OK;
}

/* The type a 2-D weight gets: the requested one, or a fallback when its rows do not split into
 * the type's blocks (k-quants need 256, legacy quants 32). */
static int
weight_type (int want, int cols)
{
  if (want == SUTRA_GGML_F32 || want == SUTRA_GGML_F16 || want == SUTRA_GGML_BF16)
    return want;
  if (cols % sutra_ggml_block_size (want) == 0)
    return want;
  if ((want == SUTRA_GGML_Q4_K || want == SUTRA_GGML_Q6_K) && cols % SUTRA_QK8_0 == 0)
    return SUTRA_GGML_Q8_0;
  return SUTRA_GGML_F16;
}

typedef struct {
  Src *src;
  size_t n, cap;
  int n_fallback;
  float *rope_f;              /* owned rope_freqs data */
} Plan;

static Src *
plan_add (Plan *p, const char *name, int rows, int cols, int type)
{
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 64;
    p->src = sutra_xrealloc (p->src, sizeof (Src) * p->cap);
  }
  Src *s = &p->src[p->n++];
  memset (s, 0, sizeof *s);
  snprintf (s->name, sizeof s->name, "%s", name);
  s->rows = rows;
  s->cols = cols;
  s->type = type;
  return s;
}

static void
plan_weight (Plan *p, const char *name, const SutraLinear *l, int want, int head_dim)
{
  int t = weight_type (want, l->in);
  if (t != want)
    p->n_fallback++;
  Src *s = plan_add (p, name, l->out, l->in, t);
  s->lin = l;
  s->head_dim = head_dim;
}

static void
plan_bias (Plan *p, const char *name, const SutraLinear *l, int head_dim)
{
  Src *s = plan_add (p, name, 1, l->out, SUTRA_GGML_F32);
  s->lin = l;
  s->bias = true;
  s->head_dim = head_dim;
}

static void
plan_f32 (Plan *p, const char *name, const float *data, int rows, int cols, int type)
{
  Src *s = plan_add (p, name, rows, cols, type);
  s->data = data;
}

/* ------------------------------------------------------------------------------------------ */
/* tokenizer metadata                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* HF ByteLevel's GPT-2 split, llama-3's and qwen2's (tokenizer.json spellings) */
static const char RE_GPT2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char RE_GPT2_SHORT[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
static const char RE_LLAMA3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* true when every digit of " 12 345" comes out as its own token (digits split individually,
 * as SmolLM's Digits(individual_digits) pre-tokenizer does) */
static bool
digits_split (const SutraTokenizer *tok)
{
  SutraEncoding enc;
  const char *probe = " 12 345";
  if (sutra_tokenizer_encode (tok, probe, strlen (probe), 0, &enc, NULL) != SUTRA_OK)
    return false;
  bool split = true;
  for (size_t i = 0; i < enc.n; i++) {
    int digits = 0;
    for (size_t b = enc.starts[i]; b < enc.ends[i]; b++)
      digits += isdigit ((unsigned char) probe[b]) != 0;
    if (digits > 1 || (digits == 1 && enc.ends[i] - enc.starts[i] > 1))
      split = false;
  }
  sutra_encoding_clear (&enc);
  return split;
}

const char *
sutra_gguf_pre_tokenizer_name (const SutraTokenizer *tok)
{
  size_t n = sutra_tokenizer_n_pretok_regexes (tok);
  const char *r0 = n > 0 ? sutra_tokenizer_pretok_regex (tok, 0) : "";
  if (n == 1 && (!strcmp (r0, RE_GPT2) || !strcmp (r0, RE_GPT2_SHORT)))
    return digits_split (tok) ? "smollm" : "gpt-2";
  if (n == 1 && !strcmp (r0, RE_LLAMA3))
    return "llama-bpe";
  if (n == 1 && !strcmp (r0, RE_QWEN2))
    return "qwen2";
  /* Falcon: Punctuation, ByteLevel (GPT-2), Digits, then 3-digit groups split off */
  if (n == 2 && !strcmp (r0, RE_GPT2) &&
      !strcmp (sutra_tokenizer_pretok_regex (tok, 1), "[0-9][0-9][0-9]"))
    return "falcon";
  return "default";
}

static bool
looks_special (const char *s)
{
  size_t n = strlen (s);
  if (!strcmp (s, "<pad>") || !strcmp (s, "<mask>") || !strcmp (s, "<2mass>") || !strcmp (s, "[@BOS@]"))
    return true;
  /* SentencePiece's own control pieces (Phi-3's tokenizer.json marks </s> as not special, while
   * its tokenizer.model, which convert_hf_to_gguf.py reads, has it as control) */
  if (!strcmp (s, "<s>") || !strcmp (s, "</s>"))
    return true;
  if (n >= 4 && !strncmp (s, "<|", 2) && !strcmp (s + n - 2, "|>"))
    return true;
  /* fullwidth bars: <｜ ... ｜> */
  if (n >= 8 && !strncmp (s, "<\xef\xbd\x9c", 4) && !strcmp (s + n - 4, "\xef\xbd\x9c>"))
    return true;
  return n >= 8 && !strncmp (s, "<unused", 7) && s[n - 1] == '>';
}

/* SentencePiece-style vocabularies: does encoding "a" produce a "▁"-prefixed token? */
static bool
adds_space_prefix (const SutraTokenizer *tok)
{
  SutraEncoding enc;
  if (sutra_tokenizer_encode (tok, "a", 1, 0, &enc, NULL) != SUTRA_OK)
    return false;
  bool pre = false;
  for (size_t i = 0; i < enc.n; i++) {
    const char *s = sutra_tokenizer_id_to_token (tok, enc.ids[i]);
    if (s && !strncmp (s, "\xe2\x96\x81", 3))
      pre = true;
  }
  sutra_encoding_clear (&enc);
  return pre;
}

static SutraStatus
write_tokenizer (SutraGgufWriter *w, const char *dir, const SutraModel *m, SutraError *err)
{
  SutraTokenizer *tok;
  SutraStatus st = sutra_tokenizer_load (dir, &tok, err);
  if (st) {
    sutra_error_prefix (err, "GGUF export needs the model's tokenizer");
    return st;
  }
  int V = m->cfg.vocab_size;
  size_t tv = sutra_tokenizer_vocab_size (tok);
  if (tv > (size_t) V) {
    sutra_tokenizer_free (tok);
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: the tokenizer has %zu tokens but the model "
                            "only %d embeddings", dir, tv, V);
  }
  SutraTokModelType mt = sutra_tokenizer_model_type (tok);
  bool byte_level = sutra_tokenizer_is_byte_level (tok);
  if (mt != SUTRA_TOK_MODEL_BPE) {
    sutra_tokenizer_free (tok);
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: GGUF export handles BPE tokenizers "
                            "(byte-level or SentencePiece-style); this one is %s", dir,
                            mt == SUTRA_TOK_MODEL_UNIGRAM ? "Unigram" : "WordPiece");
  }
  int role[4] = { sutra_tokenizer_role_id (tok, SUTRA_TOK_BOS), sutra_tokenizer_role_id (tok, SUTRA_TOK_EOS),
                  sutra_tokenizer_role_id (tok, SUTRA_TOK_UNK), sutra_tokenizer_role_id (tok, SUTRA_TOK_PAD) };
  /* tokens, token types (llama.cpp numbering), scores; ids without a token are [PAD<i>] */
  char **strs = sutra_xcalloc ((size_t) V, sizeof (char *));
  int32_t *types = sutra_xmalloc (sizeof (int32_t) * (size_t) V);
  float *scores = sutra_xmalloc (sizeof (float) * (size_t) V);
  for (int i = 0; i < V; i++) {
    const char *s = (size_t) i < tv ? sutra_tokenizer_id_to_token (tok, i) : NULL;
    if (s) {
      strs[i] = sutra_xstrdup (s);
      types[i] = (int32_t) sutra_tokenizer_token_type (tok, i);
      scores[i] = sutra_tokenizer_token_score (tok, i);
      /* BOS/EOS/PAD are control tokens whatever tokenizer.json says, and added tokens that look
       * special are too (convert_hf_to_gguf.py's does_token_look_special: <|...|>, <pad>,
       * <mask>, <unused...>; and <s>, </s>) */
      bool is_role = i == role[0] || i == role[1] || i == role[3];
      if ((types[i] == SUTRA_TOKEN_TYPE_USER_DEFINED || (is_role && types[i] == SUTRA_TOKEN_TYPE_NORMAL)) &&
          (is_role || looks_special (s)))
        types[i] = SUTRA_TOKEN_TYPE_CONTROL;
    } else {
      strs[i] = sutra_xasprintf ("[PAD%d]", i);
      types[i] = SUTRA_TOKEN_TYPE_UNUSED;
      scores[i] = 0.f;
    }
  }
  if (byte_level) {
    sutra_gguf_writer_set_string (w, "tokenizer.ggml.model", "gpt2");
    const char *pre = sutra_gguf_pre_tokenizer_name (tok);
    if (!strcmp (pre, "default"))
      sutra_log (SUTRA_LOG_WARN, "GGUF export: the tokenizer's pre-tokenizer matches none llama.cpp "
                 "knows; writing \"default\" (llama.cpp may split text differently)");
    sutra_gguf_writer_set_string (w, "tokenizer.ggml.pre", pre);
  } else {
    sutra_gguf_writer_set_string (w, "tokenizer.ggml.model", "llama");
    sutra_gguf_writer_set_string (w, "tokenizer.ggml.pre", "default");
  }
  sutra_gguf_writer_set_string_array (w, "tokenizer.ggml.tokens", (const char *const *) strs, NULL,
                                      (size_t) V);
  if (!byte_level)
    sutra_gguf_writer_set_array (w, "tokenizer.ggml.scores", SUTRA_GGUF_FLOAT32, scores, (size_t) V);
  sutra_gguf_writer_set_array (w, "tokenizer.ggml.token_type", SUTRA_GGUF_INT32, types, (size_t) V);
  if (byte_level) {
    size_t nm = sutra_tokenizer_n_merges (tok);
    const char **merges = sutra_xmalloc (sizeof (char *) * (nm + 1));
    for (size_t i = 0; i < nm; i++)
      merges[i] = sutra_tokenizer_merge (tok, i);
    sutra_gguf_writer_set_string_array (w, "tokenizer.ggml.merges", merges, NULL, nm);
    free (merges);
  } else {
    sutra_gguf_writer_set_bool (w, "tokenizer.ggml.add_space_prefix", adds_space_prefix (tok));
  }
  for (int i = 0; i < V; i++)
    free (strs[i]);
  free (strs);
  free (types);
  free (scores);
  /* special ids: the tokenizer's roles, EOS falling back to generation_config / config.json */
  SutraGenConfig gc;
  if ((st = sutra_gen_config_load (dir, &m->cfg, tok, &gc, err))) {
    sutra_tokenizer_free (tok);
    return st;
  }
  int bos = role[0], eos = role[1], unk = role[2], pad = role[3];
  if (bos < 0)
    bos = gc.bos_id;
  if (eos < 0 && gc.n_eos > 0)
    eos = gc.eos_ids[0];
  if (pad < 0)
    pad = gc.pad_id;
  if (bos >= 0)
    sutra_gguf_writer_set_u32 (w, "tokenizer.ggml.bos_token_id", (uint32_t) bos);
  if (eos >= 0)
    sutra_gguf_writer_set_u32 (w, "tokenizer.ggml.eos_token_id", (uint32_t) eos);
  if (unk >= 0)
    sutra_gguf_writer_set_u32 (w, "tokenizer.ggml.unknown_token_id", (uint32_t) unk);
  if (pad >= 0)
    sutra_gguf_writer_set_u32 (w, "tokenizer.ggml.padding_token_id", (uint32_t) pad);
  sutra_gguf_writer_set_bool (w, "tokenizer.ggml.add_bos_token", sutra_tokenizer_adds_bos (tok));
  sutra_gguf_writer_set_bool (w, "tokenizer.ggml.add_eos_token", sutra_tokenizer_adds_eos (tok));
  /* the chat template and its end-of-turn token (not for a built-in fallback guess) */
  SutraChatTemplate *ct = NULL;
  if (sutra_chat_template_load (dir, NULL, &ct, NULL) == SUTRA_OK && !sutra_chat_template_is_fallback (ct)) {
    sutra_gguf_writer_set_string (w, "tokenizer.chat_template", sutra_chat_template_source (ct));
    int eot = sutra_chat_template_eot_id (ct, tok);
    if (eot >= 0 && eot != eos)
      sutra_gguf_writer_set_u32 (w, "tokenizer.ggml.eot_token_id", (uint32_t) eot);
  }
  sutra_chat_template_free (ct);
  sutra_tokenizer_free (tok);
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */

/* rope_freqs for Llama-3 scaling (convert_hf_to_gguf.py LlamaModel.generate_extra_tensors):
 * per frequency a divisor: 1 above the high-frequency wavelength, `factor` below the low one,
 * and 1 / ((1 - s) / factor + s) in between with s the smooth interpolation. */
static float *
llama3_rope_factors (const SutraRope *r, int head_dim)
{
  int half = head_dim / 2;
  float *f = sutra_xmalloc (sizeof (float) * (size_t) half);
  double old = r->original_max_position, lo = old / r->low_freq_factor, hi = old / r->high_freq_factor;
  for (int i = 0; i < half; i++) {
    float freq = (float) (1.0 / pow (r->theta, (2.0 * i) / head_dim));   /* torch float32 */
    double wavelen = 2 * M_PI / freq;
    if (wavelen < hi)
      f[i] = 1.f;
    else if (wavelen > lo)
      f[i] = (float) r->factor;
    else {
      double s = (old / wavelen - r->low_freq_factor) / (r->high_freq_factor - r->low_freq_factor);
      f[i] = (float) (1.0 / ((1 - s) / r->factor + s));
    }
  }
  return f;
}

/* Every tensor of the file in llama.cpp's usual order, with its source and type. `want` is the
 * requested type of 2-D weights (the import passes F32: types come from the file). */
static void
build_plan (SutraModel *m, int want, Plan *pp)
{
  Plan *p = pp;
  const SutraModelConfig *c = &m->cfg;
  bool qwen2 = !strcmp (c->model_type, "qwen2");
  int C = c->hidden_size, V = c->vocab_size;
  bool low_bit = want == SUTRA_GGML_Q4_0 || want == SUTRA_GGML_Q4_K;
  int head_type = low_bit ? weight_type (SUTRA_GGML_Q6_K, C) : weight_type (want, C);
  SutraParam *embed = sutra_model_find_param (m, "model.embed_tokens.weight");
  const SutraLinear *lm_head = sutra_model_find_linear (m, "lm_head");
  bool tied = m->tied_linear && m->tied_linear == lm_head;
  SUTRA_ASSERT (embed && lm_head);
  /* token_embd: with tied embeddings it is also the output head, and gets the head's type */
  plan_f32 (p, "token_embd.weight", embed->data, V, C, tied ? head_type : weight_type (want, C));
  p->src[p->n - 1].param = embed;
  if (c->rope.type == SUTRA_ROPE_LLAMA3) {
    p->rope_f = llama3_rope_factors (&c->rope, c->head_dim);
    plan_f32 (p, "rope_freqs.weight", p->rope_f, 1, c->head_dim / 2, SUTRA_GGML_F32);
  }
  int qk_perm = qwen2 ? 0 : c->head_dim;
  for (int i = 0; i < c->n_layers; i++) {
    char hf[128], gg[64];
#define HF(s) (snprintf (hf, sizeof hf, "model.layers.%d.%s", i, s), hf)
#define GG(s) (snprintf (gg, sizeof gg, "blk.%d.%s", i, s), gg)
    SutraParam *an = sutra_model_find_param (m, HF ("input_layernorm.weight"));
    SutraParam *fn = sutra_model_find_param (m, HF ("post_attention_layernorm.weight"));
    const SutraLinear *q = sutra_model_find_linear (m, HF ("self_attn.q_proj"));
    const SutraLinear *k = sutra_model_find_linear (m, HF ("self_attn.k_proj"));
    const SutraLinear *v = sutra_model_find_linear (m, HF ("self_attn.v_proj"));
    const SutraLinear *o = sutra_model_find_linear (m, HF ("self_attn.o_proj"));
    const SutraLinear *g = sutra_model_find_linear (m, HF ("mlp.gate_proj"));
    const SutraLinear *u = sutra_model_find_linear (m, HF ("mlp.up_proj"));
    const SutraLinear *d = sutra_model_find_linear (m, HF ("mlp.down_proj"));
    SUTRA_ASSERT (an && fn && q && k && v && o && g && u && d);
    plan_f32 (p, GG ("attn_norm.weight"), an->data, 1, C, SUTRA_GGML_F32);
    p->src[p->n - 1].param = an;
    plan_weight (p, GG ("attn_q.weight"), q, want, qk_perm);
    plan_weight (p, GG ("attn_k.weight"), k, want, qk_perm);
    plan_weight (p, GG ("attn_v.weight"), v, want, 0);
    plan_weight (p, GG ("attn_output.weight"), o, want, 0);
    if (q->bias)
      plan_bias (p, GG ("attn_q.bias"), q, qk_perm);
    if (k->bias)
      plan_bias (p, GG ("attn_k.bias"), k, qk_perm);
    if (v->bias)
      plan_bias (p, GG ("attn_v.bias"), v, 0);
    if (o->bias)
      plan_bias (p, GG ("attn_output.bias"), o, 0);
    plan_f32 (p, GG ("ffn_norm.weight"), fn->data, 1, C, SUTRA_GGML_F32);
    p->src[p->n - 1].param = fn;
    plan_weight (p, GG ("ffn_gate.weight"), g, want, 0);
    plan_weight (p, GG ("ffn_up.weight"), u, want, 0);
    plan_weight (p, GG ("ffn_down.weight"), d, want, 0);
#undef HF
#undef GG
  }
  SutraParam *norm = sutra_model_find_param (m, "model.norm.weight");
  SUTRA_ASSERT (norm);
  plan_f32 (p, "output_norm.weight", norm->data, 1, C, SUTRA_GGML_F32);
  p->src[p->n - 1].param = norm;
  if (!tied)
    plan_weight (p, "output.weight", lm_head, head_type, 0);
}

SutraStatus
sutra_gguf_export_model (SutraModel *m, const char *tokenizer_dir, const char *out_path,
                         const char *type, SutraGgufProgressFunc progress, void *user,
                         SutraError *err)
{
  const SutraModelConfig *c = &m->cfg;
  if (c->arch != SUTRA_ARCH_LLAMA)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "GGUF export covers the Llama family "
                            "(Llama, Mistral, Qwen2, SmolLM); %s is not supported", c->architecture);
  const TypeChoice *tc = NULL;
  for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++) {
    const char *a = choices[i].name, *b = type ? type : "f16";
    while (*a && tolower ((unsigned char) *b) == *a)
      a++, b++;
    if (!*a && !*b)
      tc = &choices[i];
  }
  if (!tc)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "unknown GGUF type '%s' (f32, f16, bf16, q8_0, "
                            "q4_0, q4_k, q6_k)", type);
  if (c->mlp_bias)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "GGUF export: MLP biases (mlp_bias) have no "
                            "llama.cpp tensor in the llama architecture");
  if (c->rope.type != SUTRA_ROPE_DEFAULT && c->rope.type != SUTRA_ROPE_LINEAR &&
      c->rope.type != SUTRA_ROPE_LLAMA3)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "GGUF export: unsupported rope scaling");
  bool qwen2 = !strcmp (c->model_type, "qwen2");
  const char *arch = qwen2 ? "qwen2" : "llama";
  if (c->sliding_window > 0 && c->sliding_window < c->max_position_embeddings)
    sutra_log (SUTRA_LOG_WARN, "GGUF export: sliding-window attention (%d) is not recorded; "
               "llama.cpp attends to the full context", c->sliding_window);
  const char *tdir = tokenizer_dir ? tokenizer_dir : m->dir;
  if (!tdir)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "GGUF export needs a tokenizer folder for a model "
                            "that was not loaded from one");

  SutraGgufWriter *w = sutra_gguf_writer_new ();
  char key[128];
#define K(fmt) (snprintf (key, sizeof key, fmt, arch), key)
  sutra_gguf_writer_set_string (w, "general.architecture", arch);
  sutra_gguf_writer_set_string (w, "general.type", "model");
  const char *base = m->dir ? sutra_path_basename (m->dir) : "model";
  sutra_gguf_writer_set_string (w, "general.name", base && *base ? base : "model");
  sutra_gguf_writer_set_u32 (w, "general.alignment", SUTRA_GGUF_DEFAULT_ALIGNMENT);
  sutra_gguf_writer_set_u32 (w, K ("%s.block_count"), (uint32_t) c->n_layers);
  sutra_gguf_writer_set_u32 (w, K ("%s.context_length"), (uint32_t) c->max_position_embeddings);
  sutra_gguf_writer_set_u32 (w, K ("%s.embedding_length"), (uint32_t) c->hidden_size);
  sutra_gguf_writer_set_u32 (w, K ("%s.feed_forward_length"), (uint32_t) c->intermediate_size);
  sutra_gguf_writer_set_u32 (w, K ("%s.attention.head_count"), (uint32_t) c->n_heads);
  sutra_gguf_writer_set_u32 (w, K ("%s.attention.head_count_kv"), (uint32_t) c->n_kv_heads);
  sutra_gguf_writer_set_f32 (w, K ("%s.attention.layer_norm_rms_epsilon"), c->rms_norm_eps);
  sutra_gguf_writer_set_f32 (w, K ("%s.rope.freq_base"), (float) c->rope.theta);
  sutra_gguf_writer_set_u32 (w, K ("%s.rope.dimension_count"), (uint32_t) c->head_dim);
  if (c->head_dim * c->n_heads != c->hidden_size) {
    sutra_gguf_writer_set_u32 (w, K ("%s.attention.key_length"), (uint32_t) c->head_dim);
    sutra_gguf_writer_set_u32 (w, K ("%s.attention.value_length"), (uint32_t) c->head_dim);
  }
  if (c->rope.type == SUTRA_ROPE_LINEAR) {
    sutra_gguf_writer_set_string (w, K ("%s.rope.scaling.type"), "linear");
    sutra_gguf_writer_set_f32 (w, K ("%s.rope.scaling.factor"), (float) c->rope.factor);
  }
  sutra_gguf_writer_set_u32 (w, K ("%s.vocab_size"), (uint32_t) c->vocab_size);
  sutra_gguf_writer_set_u32 (w, "general.file_type", (uint32_t) tc->ftype);
  if (tc->type != SUTRA_GGML_F32 && tc->type != SUTRA_GGML_F16 && tc->type != SUTRA_GGML_BF16)
    sutra_gguf_writer_set_u32 (w, "general.quantization_version", 2);
#undef K
  SutraStatus st = write_tokenizer (w, tdir, m, err);
  if (st) {
    sutra_gguf_writer_free (w);
    return st;
  }

  Plan p = { 0 };
  build_plan (m, tc->type, &p);
  if (p.n_fallback)
    sutra_log (SUTRA_LOG_INFO, "GGUF export: %d weights kept in a wider type (rows not a multiple "
               "of the %s block)", p.n_fallback, tc->name);
  for (size_t i = 0; i < p.n; i++) {
    Src *s = &p.src[i];
    int64_t ne[2] = { s->cols, s->rows };
    bool one_d = s->rows == 1;
    sutra_gguf_writer_add_tensor (w, s->name, s->type, one_d ? 1 : 2, ne, fill_tensor, s);
  }
  st = sutra_gguf_writer_write (w, out_path, progress, user, err);
  sutra_gguf_writer_free (w);
  free (p.src);
  free (p.rope_f);
  return st;
}

/* ------------------------------------------------------------------------------------------ */
/* import                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* An owned, writable f32 copy of *data (n floats) when it is borrowed (mmapped checkpoint). */
static SutraStatus
own_floats (float **data, bool *owned, size_t n, const char *what, SutraError *err)
{
  if (*owned)
    return SUTRA_OK;
  float *copy = sutra_try_alloc (sizeof (float) * n, what, err);
  if (!copy)
    return SUTRA_ERR_NOMEM;
  memcpy (copy, *data, sizeof (float) * n);
  *data = copy;
  *owned = true;
  return SUTRA_OK;
}

SutraStatus
sutra_gguf_import_weights (SutraModel *m, const char *path, SutraError *err)
{
  const SutraModelConfig *c = &m->cfg;
  if (c->arch != SUTRA_ARCH_LLAMA)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "GGUF import covers the Llama family");
  SutraGguf *g;
  SutraStatus st = sutra_gguf_open (path, &g, err);
  if (st)
    return st;
  const char *want_arch = !strcmp (c->model_type, "qwen2") ? "qwen2" : "llama", *arch;
  size_t alen;
  int64_t ai = sutra_gguf_find_key (g, "general.architecture");
  if (ai < 0 || !sutra_gguf_kv_string (g, (size_t) ai, &arch, &alen) || alen != strlen (want_arch) ||
      memcmp (arch, want_arch, alen) != 0) {
    sutra_gguf_free (g);
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: general.architecture is not \"%s\"", path,
                            want_arch);
  }
  Plan p = { 0 };
  build_plan (m, SUTRA_GGML_F32, &p);
  for (size_t i = 0; i < p.n && !st; i++) {
    Src *s = &p.src[i];
    if (!strcmp (s->name, "rope_freqs.weight"))
      continue;
    const SutraGgufTensor *t = sutra_gguf_find_tensor (g, s->name);
    if (!t) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s' is missing", path, s->name);
      break;
    }
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    if (t->ne[0] != s->cols || rows != s->rows) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s' is %" PRId64 " x %" PRId64
                            ", the model needs %d x %d", path, s->name, t->ne[0], rows, s->cols,
                            s->rows);
      break;
    }
    float *buf = sutra_try_alloc (sizeof (float) * (size_t) s->rows * s->cols, s->name, err);
    if (!buf) {
      st = SUTRA_ERR_NOMEM;
      break;
    }
    if ((st = sutra_gguf_tensor_to_f32 (g, t, buf, err))) {
      sutra_aligned_free (buf);
      break;
    }
    /* destination: un-permute rows (weights) or columns (1-D biases) */
    SutraLinear *l = (SutraLinear *) s->lin;
    size_t n = (size_t) s->rows * s->cols;
    float *dst = NULL;
    if (s->param) {
      float *old = s->param->data;
      st = own_floats (&s->param->data, &s->param->owned, n, s->name, err);
      /* a tied head shares the embedding table: keep it pointing at the same data (dropping
       * a half copy of the table it may have read from the checkpoint) */
      if (!st && m->tied_linear && (m->tied_linear->w == old || m->tied_param == s->param))
        sutra_linear_set_f32_base (m->tied_linear, s->param->data, false);
      dst = s->param->data;
    } else if (s->bias) {
      st = own_floats (&l->bias, &l->bias_owned, (size_t) l->out, s->name, err);
      dst = l->bias;
    } else if (l->qw) {
      st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: quantized in memory; import into an "
                            "f32 model", l->name);
    } else {
      st = sutra_linear_own_f32 (l, err);    /* f32 or half base: an owned f32 copy */
      dst = l->w;
    }
    if (!st) {
      if (s->bias)
        for (int col = 0; col < s->cols; col++)
          dst[src_row (s, col)] = buf[col];
      else
        for (int r = 0; r < s->rows; r++)
          memcpy (dst + (size_t) src_row (s, r) * s->cols, buf + (size_t) r * s->cols,
                  sizeof (float) * (size_t) s->cols);
    }
    sutra_aligned_free (buf);
  }
  free (p.src);
  free (p.rope_f);
  sutra_gguf_free (g);
  return st;
}
