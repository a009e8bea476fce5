/* sutra-llama.c: the Llama family (Llama 2/3, Mistral, Qwen2, SmolLM2, TinyLlama) as
 * transformers' LlamaForCausalLM computes it:
 *
 *   x = embed(ids)
 *   per layer:  h = RMSNorm(x) ; q,k,v = h Wq^T (+bq), h Wk^T, h Wv^T ; RoPE(q, k)
 *               x = x + o_proj(softmax(q k^T / sqrt(hd) + causal) v)     (grouped-query heads)
 *               h = RMSNorm(x) ; x = x + down(silu(gate(h)) * up(h))
 *   logits = lm_head(RMSNorm(x))            (lm_head tied to embed when configured)
 *
 * Training forward keeps per-layer activations for the hand-written backward; with gradient
 * checkpointing only each layer's input is kept and the layer is recomputed in backward.
 * Generation keeps a KV cache [layers][ctx][kv_heads * head_dim] sized once. */
#include "sutra-model.h"
#include "sutra-pool.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  SutraParam *attn_norm, *mlp_norm;
  SutraLinear *q, *k, *v, *o, *gate, *up, *down;
} Layer;

#define N_PROJ 7

/* activations of one layer (training forward) */
typedef struct {
  float *x_in;            /* [N, C] layer input (residual stream) */
  float *h1, *rstd1;      /* [N, C], [N] */
  float *q, *k, *v;       /* [N, H], [N, KV], [N, KV] after RoPE */
  float *probs;           /* [B, NH, T, T] */
  float *att;             /* [N, H] attention output */
  float *x_mid;           /* [N, C] after the attention residual */
  float *h2, *rstd2;      /* [N, C], [N] */
  float *g, *u, *a;       /* [N, F] gate, up, silu(g) * u */
  SutraLinearSaved saved[N_PROJ];
  uint64_t rng_at_start;  /* dropout state at the layer's start (for recomputation) */
} Acts;

typedef struct {
  SutraParam *embed, *final_norm;
  SutraLinear *lm_head;
  Layer *layers;
  double *inv_freq;       /* [head_dim / 2] */
  /* reserved activation memory */
  SutraArena arena;
  int capB, capT;
  bool cap_bwd, cap_ckpt;
  size_t cap_lora;        /* LoRA saved floats per token per layer the arena was sized for */
  Acts *acts;             /* [L] (with checkpointing only x_in is per layer; the rest is acts[L]) */
  Acts work;              /* the recompute / inference set */
  float *x_out, *hf, *rstdf;  /* [N, C] final residual, final norm, [N] */
  float *logits;          /* [N, V] */
  float *cos_t, *sin_t;   /* [N, hd/2] */
  int *pos;               /* [N] */
  /* backward buffers */
  float *dx, *dh, *dF1, *dF2, *dF3, *dH, *dq, *dk, *dv, *lscratch;
  int lastB, lastT;
  int *last_ids, *last_doc;  /* copies of the batch's ids / doc ids for backward */
} Llama;

static inline Llama *LL (SutraModel *m) { return m->impl; }

static const char *proj_names[N_PROJ] = { "self_attn.q_proj", "self_attn.k_proj",
                                          "self_attn.v_proj", "self_attn.o_proj",
                                          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj" };

static SutraLinear **
layer_proj (Layer *ly, int i)
{
  SutraLinear **p[N_PROJ] = { &ly->q, &ly->k, &ly->v, &ly->o, &ly->gate, &ly->up, &ly->down };
  return p[i];
}

static void
llama_free_impl (SutraModel *m)
{
  Llama *L = LL (m);
  if (!L)
    return;
  sutra_arena_clear (&L->arena);
  free (L->acts);
  free (L->layers);
  free (L->inv_freq);
  free (L->last_ids);
  free (L->last_doc);
  free (L);
  m->impl = NULL;
}

static SutraStatus
llama_load (SutraModel *m, SutraError *err)
{
  const SutraModelConfig *c = &m->cfg;
  Llama *L = sutra_xcalloc (1, sizeof *L);
  m->impl = L;
  int C = c->hidden_size, H = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
  int F = c->intermediate_size, V = c->vocab_size;
  SutraStatus st;
  int64_t eshape[2] = { V, C }, nshape[1] = { C };
  st = sutra_model_add_param (m, "model.embed_tokens.weight", 2, eshape, &L->embed, err);
  if (st)
    return st;
  L->layers = sutra_xcalloc ((size_t) c->n_layers, sizeof (Layer));
  for (int i = 0; i < c->n_layers; i++) {
    Layer *ly = &L->layers[i];
    char name[128];
    snprintf (name, sizeof name, "model.layers.%d.input_layernorm.weight", i);
    if ((st = sutra_model_add_param (m, name, 1, nshape, &ly->attn_norm, err)))
      return st;
    snprintf (name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", i);
    if ((st = sutra_model_add_param (m, name, 1, nshape, &ly->mlp_norm, err)))
      return st;
    const int in[N_PROJ] = { C, C, C, H, C, C, F };
    const int out[N_PROJ] = { H, KV, KV, C, F, F, C };
    const bool bias[N_PROJ] = { c->attention_bias, c->attention_bias, c->attention_bias, c->o_bias,
                                c->mlp_bias, c->mlp_bias, c->mlp_bias };
    for (int p = 0; p < N_PROJ; p++) {
      snprintf (name, sizeof name, "model.layers.%d.%s", i, proj_names[p]);
      if ((st = sutra_model_add_linear (m, name, in[p], out[p], bias[p], layer_proj (ly, p), err)))
        return st;
    }
  }
  if ((st = sutra_model_add_param (m, "model.norm.weight", 1, nshape, &L->final_norm, err)))
    return st;
  bool tied = c->tie_word_embeddings;
  if (!tied && m->weights && !sutra_safetensors_find (m->weights, "lm_head.weight"))
    tied = true;   /* some checkpoints tie without saying so; transformers would fail instead */
  if (tied)
    st = sutra_model_add_tied_linear (m, "lm_head", L->embed, &L->lm_head, err);
  else
    st = sutra_model_add_linear (m, "lm_head", C, V, false, &L->lm_head, err);
  if (st)
    return st;
  if (!m->weights) {          /* fresh model: norms start at one */
    for (size_t i = 0; i < m->n_params; i++)
      if (strstr (m->params[i]->name, "norm"))
        for (int j = 0; j < C; j++)
          m->params[i]->data[j] = 1.f;
  }
  L->inv_freq = sutra_xmalloc (sizeof (double) * (size_t) (c->head_dim / 2));
  SutraRope rope = c->rope;
  rope.rot_dim = c->head_dim;
  sutra_rope_inv_freq (L->inv_freq, &rope);
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* activation memory                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* LoRA saved floats per token for layer ly */
static size_t
lora_floats_per_token (Layer *ly)
{
  size_t n = 0;
  for (int p = 0; p < N_PROJ; p++)
    n += sutra_linear_saved_per_token (*layer_proj (ly, p));
  return n;
}

static size_t
acts_bytes (const SutraModelConfig *c, int B, int T, size_t lora_pt, bool full)
{
  size_t N = (size_t) B * T, C = c->hidden_size, H = (size_t) c->n_heads * c->head_dim;
  size_t KV = (size_t) c->n_kv_heads * c->head_dim, F = c->intermediate_size;
  size_t f = 0;
  f += N * C;                                  /* x_in */
  if (full) {
    f += N * C + N + N * H + 2 * N * KV + (size_t) B * c->n_heads * T * T + N * H + N * C +
         N * C + N + 3 * N * F + N * lora_pt;
  }
  return f * sizeof (float) + 64 * 32;
}

static size_t
llama_activation_bytes (const SutraModel *m, int B, int T, bool ckpt)
{
  const SutraModelConfig *c = &m->cfg;
  Llama *L = m->impl;
  size_t lora = 0;
  for (int i = 0; i < c->n_layers; i++) {
    size_t n = lora_floats_per_token (&L->layers[i]);
    lora = n > lora ? n : lora;
  }
  size_t per = acts_bytes (c, B, T, lora, !ckpt);
  size_t total = per * (size_t) c->n_layers;
  if (ckpt)
    total += acts_bytes (c, B, T, lora, true);
  return total;
}

static void
carve_acts (SutraArena *a, Acts *x, Layer *ly, const SutraModelConfig *c, int B, int T, bool full)
{
  size_t N = (size_t) B * T, C = c->hidden_size, H = (size_t) c->n_heads * c->head_dim;
  size_t KV = (size_t) c->n_kv_heads * c->head_dim, F = c->intermediate_size;
  x->x_in = sutra_arena_floats (a, N * C);
  if (!full)
    return;
  x->h1 = sutra_arena_floats (a, N * C);
  x->rstd1 = sutra_arena_floats (a, N);
  x->q = sutra_arena_floats (a, N * H);
  x->k = sutra_arena_floats (a, N * KV);
  x->v = sutra_arena_floats (a, N * KV);
  x->probs = sutra_arena_floats (a, (size_t) B * c->n_heads * T * T);
  x->att = sutra_arena_floats (a, N * H);
  x->x_mid = sutra_arena_floats (a, N * C);
  x->h2 = sutra_arena_floats (a, N * C);
  x->rstd2 = sutra_arena_floats (a, N);
  x->g = sutra_arena_floats (a, N * F);
  x->u = sutra_arena_floats (a, N * F);
  x->a = sutra_arena_floats (a, N * F);
  for (int p = 0; p < N_PROJ; p++)
    sutra_linear_saved_carve (&x->saved[p], *layer_proj (ly, p), a, N);
}

static SutraStatus
llama_reserve (SutraModel *m, int B, int T, bool for_backward, SutraError *err)
{
  Llama *L = LL (m);
  const SutraModelConfig *c = &m->cfg;
  if (m->cfg.sliding_window > 0 && T > m->cfg.sliding_window)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                            "sequence length %d exceeds the sliding window (%d); use a shorter "
                            "seq_len", T, m->cfg.sliding_window);
  size_t lora = 0;
  for (int i = 0; i < c->n_layers; i++) {
    size_t n = lora_floats_per_token (&L->layers[i]);
    lora = n > lora ? n : lora;
  }
  bool ckpt = m->grad_checkpointing;
  if (L->arena.base && B * T <= L->capB * L->capT && B <= L->capB && T <= L->capT &&
      (!for_backward || L->cap_bwd) && ckpt == L->cap_ckpt && lora <= L->cap_lora)
    return SUTRA_OK;
  sutra_arena_clear (&L->arena);
  free (L->acts);
  L->acts = NULL;
  size_t N = (size_t) B * T, C = c->hidden_size, H = (size_t) c->n_heads * c->head_dim;
  size_t KV = (size_t) c->n_kv_heads * c->head_dim, F = c->intermediate_size, V = c->vocab_size;
  size_t r_max = 0, in_max = C > F ? C : F;
  for (size_t i = 0; i < m->n_linears; i++)
    if (m->linears[i]->lora && (size_t) m->linears[i]->lora->r > r_max)
      r_max = (size_t) m->linears[i]->lora->r;
  size_t bytes = 0;
  if (for_backward) {
    size_t per_layer = acts_bytes (c, B, T, lora, !ckpt) + 64 * 32 * 2;
    bytes += per_layer * (size_t) c->n_layers;
    /* the work set: recomputation with checkpointing, and eval forwards in between */
    bytes += acts_bytes (c, B, T, lora, true) + 64 * 32 * 2;
    /* backward buffers */
    bytes += sizeof (float) * (2 * N * C + 3 * N * F + 2 * N * H + 2 * N * KV +
                               N * (r_max + in_max + 16)) + 64 * 16;
  } else {
    bytes += acts_bytes (c, B, T, 0, true) + 64 * 32 * 2;
  }
  bytes += sizeof (float) * (3 * N * C + N + N * V + N * c->head_dim) + sizeof (int) * N + 64 * 16;
  SutraStatus st = sutra_arena_init (&L->arena, bytes, "activations", err);
  if (st) {
    sutra_error_prefix (err, "batch %d x %d", B, T);
    return st;
  }
  SutraArena *a = &L->arena;
  if (for_backward) {
    L->acts = sutra_xcalloc ((size_t) c->n_layers, sizeof (Acts));
    for (int i = 0; i < c->n_layers; i++)
      carve_acts (a, &L->acts[i], &L->layers[i], c, B, T, !ckpt);
    carve_acts (a, &L->work, &L->layers[0], c, B, T, true);
    L->dx = sutra_arena_floats (a, N * C);
    L->dh = sutra_arena_floats (a, N * C);
    L->dF1 = sutra_arena_floats (a, N * F);
    L->dF2 = sutra_arena_floats (a, N * F);
    L->dF3 = sutra_arena_floats (a, N * F);
    L->dH = sutra_arena_floats (a, N * H);
    L->dq = sutra_arena_floats (a, N * H);
    L->dk = sutra_arena_floats (a, N * KV);
    L->dv = sutra_arena_floats (a, N * KV);
    L->lscratch = sutra_arena_floats (a, N * (r_max + in_max + 16));
  } else {
    carve_acts (a, &L->work, &L->layers[0], c, B, T, true);
  }
  L->x_out = sutra_arena_floats (a, N * C);
  L->hf = sutra_arena_floats (a, N * C);
  L->rstdf = sutra_arena_floats (a, N);
  L->logits = sutra_arena_floats (a, N * V);
  L->cos_t = sutra_arena_floats (a, N * (size_t) c->head_dim / 2);
  L->sin_t = sutra_arena_floats (a, N * (size_t) c->head_dim / 2);
  L->pos = sutra_arena_alloc (a, sizeof (int) * N);
  L->capB = B;
  L->capT = T;
  L->cap_bwd = for_backward;
  L->cap_ckpt = ckpt;
  L->cap_lora = lora;
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* forward                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* One layer: x_in -> x_out (may alias nothing). acts receives everything backward needs.
 * The saved LoRA buffers of `acts` must be carved for this layer's adapters. */
static void
layer_forward (SutraModel *m, Layer *ly, Acts *A, float *x_out, int B, int T, const int *doc,
               uint64_t *rng)
{
  Llama *L = LL (m);
  const SutraModelConfig *c = &m->cfg;
  int N = B * T, C = c->hidden_size, NH = c->n_heads, NKV = c->n_kv_heads, HS = c->head_dim;
  int H = NH * HS, F = c->intermediate_size, half = HS / 2;
  A->rng_at_start = rng ? *rng : 0;
  double t0 = sutra_model_prof_start (m);
  sutra_rmsnorm_forward (A->h1, A->rstd1, A->x_in, ly->attn_norm->data, c->rms_norm_eps, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  sutra_linear_forward (ly->q, A->q, A->h1, N, &A->saved[0], rng);
  sutra_linear_forward (ly->k, A->k, A->h1, N, &A->saved[1], rng);
  sutra_linear_forward (ly->v, A->v, A->h1, N, &A->saved[2], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  sutra_rope_forward (A->q, L->cos_t, L->sin_t, N, NH, HS, half);
  sutra_rope_forward (A->k, L->cos_t, L->sin_t, N, NKV, HS, half);
  SutraAttnDims d = { B, T, NH, NKV, HS, 1.f / sqrtf ((float) HS) };
  sutra_attention_forward (A->att, A->probs, A->q, A->k, A->v, doc, &d);
  sutra_model_prof (m, SUTRA_PROF_RECURRENCE, &t0);
  sutra_linear_forward (ly->o, A->x_mid, A->att, N, &A->saved[3], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  sutra_add_forward (A->x_mid, A->x_mid, A->x_in, (int64_t) N * C);      /* residual */
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  sutra_rmsnorm_forward (A->h2, A->rstd2, A->x_mid, ly->mlp_norm->data, c->rms_norm_eps, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  sutra_linear_forward (ly->gate, A->g, A->h2, N, &A->saved[4], rng);
  sutra_linear_forward (ly->up, A->u, A->h2, N, &A->saved[5], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  if (c->hidden_act == SUTRA_ACT_SILU) {
    sutra_swiglu_forward (A->a, A->g, A->u, (int64_t) N * F);
  } else {
    sutra_act_forward (c->hidden_act, A->a, A->g, (int64_t) N * F);
    sutra_mul_forward (A->a, A->a, A->u, (int64_t) N * F);
  }
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  sutra_linear_forward (ly->down, x_out, A->a, N, &A->saved[6], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  sutra_add_forward (x_out, x_out, A->x_mid, (int64_t) N * C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  (void) H;
}

static SutraStatus
llama_forward (SutraModel *m, const SutraBatch *b, bool for_backward, float **logits,
               SutraError *err)
{
  Llama *L = LL (m);
  const SutraModelConfig *c = &m->cfg;
  SutraStatus st = llama_reserve (m, b->B, b->T, for_backward, err);
  if (st)
    return st;
  int N = b->B * b->T, C = c->hidden_size, half = c->head_dim / 2;
  for (int i = 0; i < N; i++) {
    L->pos[i] = b->pos ? b->pos[i] : i % b->T;
    if (L->pos[i] < 0)
      return sutra_error_set (err, SUTRA_ERR_INVALID, "negative position id at %d", i);
  }
  sutra_rope_table (L->cos_t, L->sin_t, L->pos, N, L->inv_freq, half);
  bool ckpt = m->grad_checkpointing && for_backward;
  uint64_t *rng = for_backward && m->train_mode == SUTRA_TRAIN_LORA ? &m->dropout_rng : NULL;
  /* the embedding writes the first layer's input */
  float *x0 = for_backward ? L->acts[0].x_in : L->work.x_in;
  st = sutra_embedding_forward (x0, b->ids, L->embed->data, N, c->vocab_size, C, err);
  if (st)
    return st;
  for (int i = 0; i < c->n_layers; i++) {
    Acts *A;
    float *x_out;
    if (!for_backward) {
      A = &L->work;
      x_out = L->x_out;   /* then copied back as the next input */
    } else {
      A = ckpt ? &L->work : &L->acts[i];
      if (ckpt && A->x_in != L->acts[i].x_in)
        memcpy (A->x_in, L->acts[i].x_in, sizeof (float) * (size_t) N * C);
      x_out = i + 1 < c->n_layers ? L->acts[i + 1].x_in : L->x_out;
    }
    /* The shared work set serves every layer: its LoRA buffers were carved for layer 0's
     * adapters, and PEFT targets attach the same adapter shape to every layer. */
    if (ckpt)
      L->acts[i].rng_at_start = rng ? *rng : 0;
    layer_forward (m, &L->layers[i], A, x_out, b->B, b->T, b->doc, rng);
    if (!for_backward && i + 1 < c->n_layers)
      memcpy (L->work.x_in, L->x_out, sizeof (float) * (size_t) N * C);
  }
  double t0 = sutra_model_prof_start (m);
  sutra_rmsnorm_forward (L->hf, L->rstdf, L->x_out, L->final_norm->data, c->rms_norm_eps, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  sutra_linear_forward (L->lm_head, L->logits, L->hf, N, NULL, NULL);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  if (for_backward) {
    L->lastB = b->B;
    L->lastT = b->T;
    L->last_ids = sutra_xrealloc (L->last_ids, sizeof (int) * (size_t) N);
    memcpy (L->last_ids, b->ids, sizeof (int) * (size_t) N);
    free (L->last_doc);
    L->last_doc = NULL;
    if (b->doc) {
      L->last_doc = sutra_xmalloc (sizeof (int) * (size_t) N);
      memcpy (L->last_doc, b->doc, sizeof (int) * (size_t) N);
    }
  }
  *logits = L->logits;
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* backward                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static SutraStatus
llama_backward (SutraModel *m, const float *dlogits, SutraError *err)
{
  Llama *L = LL (m);
  const SutraModelConfig *c = &m->cfg;
  if (!L->cap_bwd || !L->acts)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "backward without a training forward");
  int B = L->lastB, T = L->lastT, N = B * T;
  int C = c->hidden_size, NH = c->n_heads, NKV = c->n_kv_heads, HS = c->head_dim;
  int H = NH * HS, KV = NKV * HS, F = c->intermediate_size, half = HS / 2;
  bool ckpt = m->grad_checkpointing;
  float *dx = L->dx, *dh = L->dh;
  /* lm_head and the final norm */
  double t0 = sutra_model_prof_start (m);
  memset (dh, 0, sizeof (float) * (size_t) N * C);
  sutra_linear_backward (L->lm_head, dh, dlogits, L->hf, N, NULL, NULL);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  memset (dx, 0, sizeof (float) * (size_t) N * C);
  sutra_rmsnorm_backward (dx, L->final_norm->grad, dh, L->x_out, L->final_norm->data, L->rstdf, N,
                          C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  SutraAttnDims d = { B, T, NH, NKV, HS, 1.f / sqrtf ((float) HS) };
  for (int i = c->n_layers - 1; i >= 0; i--) {
    Layer *ly = &L->layers[i];
    Acts *A = &L->acts[i];
    if (ckpt) {
      /* recompute the layer from its saved input, with the same dropout draws; its output
       * is not needed, so dh (about to be reset) takes it */
      Acts *W = &L->work;
      memcpy (W->x_in, A->x_in, sizeof (float) * (size_t) N * C);
      uint64_t rng = A->rng_at_start;
      layer_forward (m, ly, W, dh, B, T, L->last_doc,
                     m->train_mode == SUTRA_TRAIN_LORA ? &rng : NULL);
      A = W;
      t0 = sutra_model_prof_start (m);   /* layer_forward profiled itself */
    }
    /* MLP: x_out = x_mid + down(a), a = act(g) * u */
    int64_t nf = (int64_t) N * F;
    float *da = L->dF1, *dg = L->dF2;
    memset (da, 0, sizeof (float) * (size_t) nf);
    sutra_linear_backward (ly->down, da, dx, A->a, N, &A->saved[6], L->lscratch);
    sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
    if (c->hidden_act == SUTRA_ACT_SILU) {
      /* a = silu(g) u: dg = da u silu'(g), du = da silu(g) (du lands in dF3) */
      memset (dg, 0, sizeof (float) * (size_t) nf);
      memset (L->dF3, 0, sizeof (float) * (size_t) nf);
      sutra_swiglu_backward (dg, L->dF3, da, A->g, A->u, nf);
      memcpy (da, L->dF3, sizeof (float) * (size_t) nf);
    } else {
      float *t = sutra_thread_scratch (4, (size_t) nf);
      sutra_act_forward (c->hidden_act, t, A->g, nf);    /* act(g) */
      for (int64_t j = 0; j < nf; j++) {
        float ag = t[j];
        t[j] = da[j] * A->u[j];                          /* d act(g) */
        da[j] = da[j] * ag;                              /* du */
      }
      memset (dg, 0, sizeof (float) * (size_t) nf);
      sutra_act_backward (c->hidden_act, dg, t, A->g, nf);
    }
    sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
    memset (dh, 0, sizeof (float) * (size_t) N * C);
    sutra_linear_backward (ly->gate, dh, dg, A->h2, N, &A->saved[4], L->lscratch);
    sutra_linear_backward (ly->up, dh, L->dF1, A->h2, N, &A->saved[5], L->lscratch);
    sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
    /* dx is d x_out = d x_mid (residual) ; add the norm path */
    sutra_rmsnorm_backward (dx, ly->mlp_norm->grad, dh, A->x_mid, ly->mlp_norm->data, A->rstd2, N,
                            C);
    sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
    /* attention: x_mid = x_in + o(att) */
    memset (L->dH, 0, sizeof (float) * (size_t) N * H);
    sutra_linear_backward (ly->o, L->dH, dx, A->att, N, &A->saved[3], L->lscratch);
    sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
    memset (L->dq, 0, sizeof (float) * (size_t) N * H);
    memset (L->dk, 0, sizeof (float) * (size_t) N * KV);
    memset (L->dv, 0, sizeof (float) * (size_t) N * KV);
    sutra_attention_backward (L->dq, L->dk, L->dv, L->dH, A->probs, A->q, A->k, A->v, &d);
    /* positions of the last batch are still in L->pos / cos / sin */
    sutra_rope_backward (L->dq, L->cos_t, L->sin_t, N, NH, HS, half);
    sutra_rope_backward (L->dk, L->cos_t, L->sin_t, N, NKV, HS, half);
    sutra_model_prof (m, SUTRA_PROF_RECURRENCE, &t0);
    memset (dh, 0, sizeof (float) * (size_t) N * C);
    sutra_linear_backward (ly->q, dh, L->dq, A->h1, N, &A->saved[0], L->lscratch);
    sutra_linear_backward (ly->k, dh, L->dk, A->h1, N, &A->saved[1], L->lscratch);
    sutra_linear_backward (ly->v, dh, L->dv, A->h1, N, &A->saved[2], L->lscratch);
    sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
    sutra_rmsnorm_backward (dx, ly->attn_norm->grad, dh, A->x_in, ly->attn_norm->data, A->rstd1, N,
                            C);
    sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  }
  if (L->embed->grad)
    sutra_embedding_backward (L->embed->grad, dx, L->last_ids, N, C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* generation: KV cache                                                                       */
/* ------------------------------------------------------------------------------------------ */

struct SutraGenState {
  SutraModel *m;
  int max_ctx, pos;
  float *kc, *vc;          /* [L][max_ctx][KV] */
  /* per-step scratch for up to chunk tokens */
  int chunk;
  float *x, *h, *q, *k, *v, *att, *g, *u, *scores, *cos_t, *sin_t, *tmp;
  int *posv;
  SutraArena arena;
};

#define PREFILL_CHUNK 64

static SutraStatus
llama_state_new (SutraModel *m, int max_ctx, SutraGenState **out, SutraError *err)
{
  const SutraModelConfig *c = &m->cfg;
  if (max_ctx <= 0 || max_ctx > c->max_position_embeddings)
    max_ctx = c->max_position_embeddings;
  SutraGenState *s = sutra_xcalloc (1, sizeof *s);
  s->m = m;
  s->max_ctx = max_ctx;
  s->chunk = PREFILL_CHUNK;
  size_t C = c->hidden_size, H = (size_t) c->n_heads * c->head_dim;
  size_t KV = (size_t) c->n_kv_heads * c->head_dim, F = c->intermediate_size;
  size_t n = (size_t) s->chunk;
  size_t cache = (size_t) c->n_layers * max_ctx * KV;
  size_t bytes = sizeof (float) * (2 * cache + n * (3 * C + H + 2 * KV + H + 2 * F) +
                                   (size_t) c->n_heads * n * max_ctx + n * c->head_dim) +
                 sizeof (int) * n + 64 * 20;
  SutraStatus st = sutra_arena_init (&s->arena, bytes, "KV cache", err);
  if (st) {
    free (s);
    return st;
  }
  SutraArena *a = &s->arena;
  s->kc = sutra_arena_floats (a, cache);
  s->vc = sutra_arena_floats (a, cache);
  s->x = sutra_arena_floats (a, n * C);
  s->h = sutra_arena_floats (a, n * C);
  s->tmp = sutra_arena_floats (a, n * C);
  s->q = sutra_arena_floats (a, n * H);
  s->k = sutra_arena_floats (a, n * KV);
  s->v = sutra_arena_floats (a, n * KV);
  s->att = sutra_arena_floats (a, n * H);
  s->g = sutra_arena_floats (a, n * F);
  s->u = sutra_arena_floats (a, n * F);
  s->scores = sutra_arena_floats (a, (size_t) c->n_heads * n * max_ctx);
  s->cos_t = sutra_arena_floats (a, n * c->head_dim / 2);
  s->sin_t = sutra_arena_floats (a, n * c->head_dim / 2);
  s->posv = sutra_arena_alloc (a, sizeof (int) * n);
  *out = s;
  return SUTRA_OK;
}

static void
llama_state_free (SutraGenState *s)
{
  if (!s)
    return;
  sutra_arena_clear (&s->arena);
  free (s);
}

static void llama_state_reset (SutraGenState *s) { s->pos = 0; }
/* positions >= n of the cache are simply overwritten by the next step */
static bool
llama_state_truncate (SutraGenState *s, int n)
{
  if (n < 0 || n > s->pos)
    return false;
  s->pos = n;
  return true;
}
static int llama_state_pos (const SutraGenState *s) { return s->pos; }
static size_t
llama_state_bytes (const SutraGenState *s)
{
  return s->arena.size;
}

typedef struct {
  SutraGenState *s;
  const SutraModelConfig *c;
  int layer, n, p0;
} StepAttn;

/* attention of n new queries (positions p0..p0+n-1) over the cache, one task per query head */
static void
step_attn_range (void *ctx, int64_t h0, int64_t h1, int ti)
{
  const StepAttn *j = ctx;
  SutraGenState *s = j->s;
  const SutraModelConfig *c = j->c;
  int NH = c->n_heads, NKV = c->n_kv_heads, HS = c->head_dim, KV = NKV * HS, H = NH * HS;
  int group = NH / NKV, win = c->sliding_window;
  float scale = 1.f / sqrtf ((float) HS);
  const float *kc = s->kc + (size_t) j->layer * s->max_ctx * KV;
  const float *vc = s->vc + (size_t) j->layer * s->max_ctx * KV;
  (void) ti;
  for (int64_t h = h0; h < h1; h++) {
    int g = (int) h / group;
    for (int i = 0; i < j->n; i++) {
      int p = j->p0 + i;                    /* attends to positions [start, p] */
      int start = win > 0 && p - win + 1 > 0 ? p - win + 1 : 0;
      int len = p + 1 - start;
      const float *q = s->q + (size_t) i * H + (size_t) h * HS;
      float *sc = s->scores + ((size_t) h * s->chunk + i) * s->max_ctx;
      /* scores = K[start..p] q */
      cblas_sgemv (CblasRowMajor, CblasNoTrans, len, HS, scale, kc + (size_t) start * KV + g * HS,
                   KV, q, 1, 0.f, sc, 1);
      float mx = -INFINITY;
      for (int t = 0; t < len; t++)
        mx = sc[t] > mx ? sc[t] : mx;
      float sum = 0.f;
      for (int t = 0; t < len; t++) {
        sc[t] = expf (sc[t] - mx);
        sum += sc[t];
      }
      float inv = 1.f / sum;
      for (int t = 0; t < len; t++)
        sc[t] *= inv;
      /* out = V[start..p]^T scores */
      float *o = s->att + (size_t) i * H + (size_t) h * HS;
      cblas_sgemv (CblasRowMajor, CblasTrans, len, HS, 1.f, vc + (size_t) start * KV + g * HS, KV,
                   sc, 1, 0.f, o, 1);
    }
  }
}

static SutraStatus
llama_step_chunk (SutraModel *m, SutraGenState *s, const int *ids, int n, float *logits,
                  bool all_logits, SutraError *err)
{
  Llama *L = LL (m);
  const SutraModelConfig *c = &m->cfg;
  int C = c->hidden_size, NH = c->n_heads, NKV = c->n_kv_heads, HS = c->head_dim;
  int KV = NKV * HS, F = c->intermediate_size, V = c->vocab_size, half = HS / 2;
  SutraStatus st = sutra_embedding_forward (s->x, ids, L->embed->data, n, V, C, err);
  if (st)
    return st;
  for (int i = 0; i < n; i++)
    s->posv[i] = s->pos + i;
  sutra_rope_table (s->cos_t, s->sin_t, s->posv, n, L->inv_freq, half);
  float rstd[PREFILL_CHUNK];
  for (int li = 0; li < c->n_layers; li++) {
    Layer *ly = &L->layers[li];
    sutra_rmsnorm_forward (s->h, rstd, s->x, ly->attn_norm->data, c->rms_norm_eps, n, C);
    /* q/k/v read the same input: one pool hand-off for the three when decoding one token */
    SutraLinear *qkv[3] = { ly->q, ly->k, ly->v };
    float *qkv_out[3] = { s->q, s->k, s->v };
    sutra_linear_forward_many (qkv, qkv_out, 3, s->h, n);
    sutra_rope_forward (s->q, s->cos_t, s->sin_t, n, NH, HS, half);
    sutra_rope_forward (s->k, s->cos_t, s->sin_t, n, NKV, HS, half);
    float *kc = s->kc + ((size_t) li * s->max_ctx + s->pos) * KV;
    float *vc = s->vc + ((size_t) li * s->max_ctx + s->pos) * KV;
    memcpy (kc, s->k, sizeof (float) * (size_t) n * KV);
    memcpy (vc, s->v, sizeof (float) * (size_t) n * KV);
    StepAttn job = { s, c, li, n, s->pos };
    sutra_parallel_for (NH, 1, step_attn_range, &job);
    sutra_linear_forward (ly->o, s->tmp, s->att, n, NULL, NULL);
    sutra_add_forward (s->x, s->x, s->tmp, (int64_t) n * C);
    sutra_rmsnorm_forward (s->h, rstd, s->x, ly->mlp_norm->data, c->rms_norm_eps, n, C);
    SutraLinear *gu[2] = { ly->gate, ly->up };
    float *gu_out[2] = { s->g, s->u };
    sutra_linear_forward_many (gu, gu_out, 2, s->h, n);
    if (c->hidden_act == SUTRA_ACT_SILU)
      sutra_swiglu_forward (s->g, s->g, s->u, (int64_t) n * F);
    else {
      sutra_act_forward (c->hidden_act, s->g, s->g, (int64_t) n * F);
      sutra_mul_forward (s->g, s->g, s->u, (int64_t) n * F);
    }
    sutra_linear_forward (ly->down, s->tmp, s->g, n, NULL, NULL);
    sutra_add_forward (s->x, s->x, s->tmp, (int64_t) n * C);
  }
  s->pos += n;
  if (all_logits) {
    sutra_rmsnorm_forward (s->h, rstd, s->x, L->final_norm->data, c->rms_norm_eps, n, C);
    sutra_linear_forward (L->lm_head, logits, s->h, n, NULL, NULL);
  } else if (logits) {
    const float *last = s->x + (size_t) (n - 1) * C;
    sutra_rmsnorm_forward (s->h, rstd, last, L->final_norm->data, c->rms_norm_eps, 1, C);
    sutra_linear_forward (L->lm_head, logits, s->h, 1, NULL, NULL);
  }
  return SUTRA_OK;
}

static SutraStatus
llama_step (SutraModel *m, SutraGenState *s, const int *ids, int n, float *logits, bool all_logits,
            SutraError *err)
{
  if (n <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "no tokens to feed");
  if (s->pos + n > s->max_ctx)
    return sutra_error_set (err, SUTRA_ERR_INVALID,
                            "context full: %d tokens would exceed the %d-token context", s->pos + n,
                            s->max_ctx);
  int V = m->cfg.vocab_size;
  for (int off = 0; off < n; off += s->chunk) {
    int k = n - off < s->chunk ? n - off : s->chunk;
    bool last_chunk = off + k == n;
    float *lg = all_logits ? logits + (size_t) off * V : (last_chunk ? logits : NULL);
    SutraStatus st = llama_step_chunk (m, s, ids + off, k, lg, all_logits, err);
    if (st)
      return st;
  }
  return SUTRA_OK;
}

const SutraModelVTable sutra_llama_vtable = {
  .arch_name = "llama",
  .load = llama_load,
  .free_impl = llama_free_impl,
  .reserve = llama_reserve,
  .forward = llama_forward,
  .backward = llama_backward,
  .state_new = llama_state_new,
  .state_free = llama_state_free,
  .state_reset = llama_state_reset,
  .state_bytes = llama_state_bytes,
  .state_pos = llama_state_pos,
  .state_truncate = llama_state_truncate,
  .step = llama_step,
  .activation_bytes = llama_activation_bytes,
};
