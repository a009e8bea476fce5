/* sutra-rwkv.c: RWKV-4 as transformers' RwkvForCausalLM (modeling_rwkv.py) computes it, with
 * BlinkDL's numerically stable WKV (running max pp with aa, bb; as rwkv.cpp and HF's CPU path).
 *
 *   x = LN(embed(ids); pre_ln)                                  (block 0's pre_ln)
 *   per block:  h = LN(x; ln1) ; p = h shifted one position (0 at a sequence start)
 *               xk = h*mk + p*(1-mk), xv, xr likewise (time_mix_key/value/receptance)
 *               k = key(xk), v = value(xv), r = sigmoid(receptance(xr))      [N, A]
 *               wkv_t = (sum_{i<t} e^{(t-1-i)w + k_i} v_i + e^{u+k_t} v_t) /
 *                       (sum_{i<t} e^{(t-1-i)w + k_i}     + e^{u+k_t})
 *                       w = -exp(time_decay), u = time_first (per channel)
 *               x = x + output(r * wkv)
 *               h = LN(x; ln2) ; p = shifted h ; xk, xr mixes (feed_forward.time_mix_*)
 *               x = x + sigmoid(receptance(xr)) * value(relu(key(xk))^2)
 *   logits = head(LN(x; ln_out))                 (ln_out: nn.LayerNorm default eps 1e-5)
 *
 * rescale_every R > 0: in eval mode transformers divides attention.output and
 * feed_forward.value of block i by 2^(i/R) and halves x after every block with (i+1) % R == 0;
 * in training mode it does neither. The residual stream entering block i is then the
 * unscaled one divided by 2^(i/R), so the only change is that LayerNorm's eps acts on a
 * scaled input: LN(x/s; eps) = LN(x; eps s^2). We implement exactly that (block i's ln1/ln2 use
 * eps * 4^(i/R), ln_out 1e-5 * 4^(L/R)) for inference (forward without backward, step), and
 * plain eps when training, as transformers does. Weights are never modified, so LoRA deltas,
 * merges and quantized bases need no special care.
 *
 * Training: every projection is one matmul over all B*T positions; the WKV recurrence runs per
 * channel (channels split across the pool) and keeps the state before each position for an
 * exact backward (kernels and derivation in sutra-recurrent.c). Generation state per layer:
 * [att_x C | aa A | bb A | pp A | ffn_x C], constant size. */
#include "sutra-model.h"
#include "sutra-pool.h"
#include "sutra-recurrent-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PROJ 7
#define PP_INIT (-1e38f)          /* transformers' initial max state (as sutra-recurrent.c) */
#define STEP_CHUNK 64             /* tokens per step() batch */
#define LN_OUT_EPS 1e-5f

typedef struct {
  SutraParam *pre_w, *pre_b;                        /* [C] block 0 only */
  SutraParam *ln1_w, *ln1_b, *ln2_w, *ln2_b;        /* [C] */
  SutraParam *decay, *first;                        /* [A] raw time_decay, time_first */
  SutraParam *amk, *amv, *amr, *fmk, *fmr;          /* [1, 1, C] time mixes */
  SutraLinear *proj[N_PROJ];
} Block;

enum { P_KEY, P_VALUE, P_RECEPT, P_OUTPUT, P_FKEY, P_FRECEPT, P_FVALUE };
static const char *proj_names[N_PROJ] = { "attention.key", "attention.value",
                                          "attention.receptance", "attention.output",
                                          "feed_forward.key", "feed_forward.receptance",
                                          "feed_forward.value" };

/* activations of one block (training forward keeps one set per block) */
typedef struct {
  float *x_in;                    /* [N, C] block input (residual stream) */
  float *h1, *mean1, *rstd1;      /* [N, C], [N], [N] ln1 */
  float *xk, *xv, *xr;            /* [N, C] time-mixed inputs */
  float *k, *v, *r;               /* [N, A]; r = sigmoid(receptance) */
  float *sa, *sb, *sp;            /* [N, A] WKV state (aa, bb, pp) before each position */
  float *wkv;                     /* [N, A] */
  float *rw;                      /* [N, A] r * wkv */
  float *x_mid;                   /* [N, C] after the attention residual */
  float *h2, *mean2, *rstd2;      /* ln2 */
  float *fxk, *fxr;               /* [N, C] */
  float *fk;                      /* [N, F] key pre-activation */
  float *kk;                      /* [N, F] relu(fk)^2 */
  float *fr, *fv;                 /* [N, C] sigmoid(receptance), value(kk) */
  SutraLinearSaved saved[N_PROJ];
  uint64_t rng_at_start;
} Acts;

typedef struct {
  SutraParam *embed, *lnf_w, *lnf_b;
  SutraLinear *head;
  Block *blocks;
  float *wdecay;                  /* [L][A] -exp(time_decay), refreshed every forward */
  SutraArena arena;
  int capB, capT;
  bool cap_bwd, cap_ckpt;
  size_t cap_lora;
  Acts *acts;                     /* [L] (checkpointing: only x_in each) */
  Acts work;
  int *seg;                       /* [N] segment starts */
  float *emb, *mean0, *rstd0;     /* [N, C], [N], [N] embedding rows and pre_ln stats */
  float *x_out, *hf, *meanf, *rstdf, *logits;
  /* backward buffers */
  float *dx, *dh, *dC1, *dC2, *dC3, *dA1, *dA2, *dA3, *dA4, *dF, *lscratch;
  int lastB, lastT;
  int *last_ids;
} Rwkv;

static inline Rwkv *RW (SutraModel *m) { return m->impl; }

static void
rwkv_free_impl (SutraModel *m)
{
  Rwkv *R = RW (m);
  if (!R)
    return;
  sutra_arena_clear (&R->arena);
  free (R->acts);
  free (R->blocks);
  free (R->wdecay);
  free (R->last_ids);
  free (R);
  m->impl = NULL;
}

/* transformers' RwkvPreTrainedModel._init_weights for the time parameters of a fresh model
 * (time_first is set to ones there: `torch.ones_like(...)`), LayerNorms at (1, 0). */
static void
init_fresh (SutraModel *m)
{
  const SutraModelConfig *c = &m->cfg;
  Rwkv *R = RW (m);
  int C = c->hidden_size, A = c->attention_hidden_size, L = c->n_layers;
  for (int i = 0; i < L; i++) {
    Block *b = &R->blocks[i];
    double r01 = L > 1 ? (double) i / (L - 1) : 0.0, r10 = 1.0 - (double) i / L;
    for (int h = 0; h < A; h++) {
      b->decay->data[h] = (float) (-5 + 8 * pow (A > 1 ? (double) h / (A - 1) : 0.0, 0.7 + 1.3 * r01));
      b->first->data[h] = 1.f;
    }
    for (int j = 0; j < C; j++) {
      double tw = (double) j / C;
      b->amk->data[j] = (float) pow (tw, r10);
      b->amv->data[j] = (float) (pow (tw, r10) + 0.3 * r01);
      b->amr->data[j] = (float) pow (tw, 0.5 * r10);
      b->fmk->data[j] = b->fmr->data[j] = (float) pow (tw, r10);
    }
  }
  for (size_t i = 0; i < m->n_params; i++) {
    SutraParam *p = m->params[i];
    const char *n = p->name;
    size_t ln = strlen (n);
    bool is_ln = strstr (n, "ln") != NULL;
    if (is_ln && ln > 7 && !strcmp (n + ln - 7, ".weight"))
      for (int j = 0; j < C; j++)
        p->data[j] = 1.f;
    else if (is_ln && ln > 5 && !strcmp (n + ln - 5, ".bias"))
      memset (p->data, 0, sizeof (float) * (size_t) C);
  }
}

static SutraStatus
rwkv_load (SutraModel *m, SutraError *err)
{
  const SutraModelConfig *c = &m->cfg;
  Rwkv *R = sutra_xcalloc (1, sizeof *R);
  m->impl = R;
  int C = c->hidden_size, A = c->attention_hidden_size, F = c->intermediate_size;
  int V = c->vocab_size;
  if (A != C)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                            "RWKV-4: attention_hidden_size %d differs from hidden_size %d", A, C);
  SutraStatus st;
  int64_t eshape[2] = { V, C }, cshape[1] = { C }, ashape[1] = { A }, mshape[3] = { 1, 1, C };
  if ((st = sutra_model_add_param (m, "rwkv.embeddings.weight", 2, eshape, &R->embed, err)))
    return st;
  R->blocks = sutra_xcalloc ((size_t) c->n_layers, sizeof (Block));
  char name[160];
#define ADD(field, suffix, nd, shape)                                                       \
  do {                                                                                      \
    snprintf (name, sizeof name, "rwkv.blocks.%d.%s", i, suffix);                           \
    if ((st = sutra_model_add_param (m, name, nd, shape, &b->field, err)))                  \
      return st;                                                                            \
  } while (0)
  for (int i = 0; i < c->n_layers; i++) {
    Block *b = &R->blocks[i];
    if (i == 0) {
      ADD (pre_w, "pre_ln.weight", 1, cshape);
      ADD (pre_b, "pre_ln.bias", 1, cshape);
    }
    ADD (ln1_w, "ln1.weight", 1, cshape);
    ADD (ln1_b, "ln1.bias", 1, cshape);
    ADD (ln2_w, "ln2.weight", 1, cshape);
    ADD (ln2_b, "ln2.bias", 1, cshape);
    ADD (decay, "attention.time_decay", 1, ashape);
    ADD (first, "attention.time_first", 1, ashape);
    ADD (amk, "attention.time_mix_key", 3, mshape);
    ADD (amv, "attention.time_mix_value", 3, mshape);
    ADD (amr, "attention.time_mix_receptance", 3, mshape);
    ADD (fmk, "feed_forward.time_mix_key", 3, mshape);
    ADD (fmr, "feed_forward.time_mix_receptance", 3, mshape);
    const int in[N_PROJ] = { C, C, C, A, C, C, F };
    const int out[N_PROJ] = { A, A, A, C, F, C, C };
    for (int p = 0; p < N_PROJ; p++) {
      snprintf (name, sizeof name, "rwkv.blocks.%d.%s", i, proj_names[p]);
      if ((st = sutra_model_add_linear (m, name, in[p], out[p], false, &b->proj[p], err)))
        return st;
    }
  }
#undef ADD
  if ((st = sutra_model_add_param (m, "rwkv.ln_out.weight", 1, cshape, &R->lnf_w, err)) ||
      (st = sutra_model_add_param (m, "rwkv.ln_out.bias", 1, cshape, &R->lnf_b, err)))
    return st;
  bool tied = c->tie_word_embeddings;
  if (!tied && m->weights && !sutra_safetensors_find (m->weights, "head.weight"))
    tied = true;   /* a checkpoint saved with tied weights omits head.weight */
  if (tied)
    st = sutra_model_add_tied_linear (m, "head", R->embed, &R->head, err);
  else
    st = sutra_model_add_linear (m, "head", C, V, false, &R->head, err);
  if (st)
    return st;
  R->wdecay = sutra_xmalloc (sizeof (float) * (size_t) c->n_layers * A);
  if (!m->weights)
    init_fresh (m);
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* activation memory                                                                          */
/* ------------------------------------------------------------------------------------------ */

static size_t
lora_floats_per_token (const Block *b)
{
  size_t n = 0;
  for (int p = 0; p < N_PROJ; p++)
    n += sutra_linear_saved_per_token (b->proj[p]);
  return n;
}

static size_t
max_lora_per_token (const SutraModel *m)
{
  const Rwkv *R = m->impl;
  size_t mx = 0;
  for (int i = 0; i < m->cfg.n_layers; i++) {
    size_t n = lora_floats_per_token (&R->blocks[i]);
    mx = n > mx ? n : mx;
  }
  return mx;
}

/* floats of one activation set at N tokens (plus alignment slack) */
static size_t
acts_bytes (const SutraModelConfig *c, size_t N, size_t lora_pt, bool full)
{
  size_t C = c->hidden_size, A = c->attention_hidden_size, F = c->intermediate_size;
  size_t f = N * C;
  if (full)
    f += N * (12 * C + 9 * A + 2 * F + 6) + N * lora_pt;
  return f * sizeof (float) + 64 * 64;
}

static size_t
rwkv_activation_bytes (const SutraModel *m, int B, int T, bool ckpt)
{
  const SutraModelConfig *c = &m->cfg;
  size_t N = (size_t) B * T, lora = max_lora_per_token (m);
  size_t total = acts_bytes (c, N, lora, !ckpt) * (size_t) c->n_layers;
  if (ckpt)
    total += acts_bytes (c, N, lora, true);
  return total;
}

static void
carve_acts (SutraArena *a, Acts *x, const Block *b, const SutraModelConfig *c, size_t N, bool full,
            bool states)
{
  size_t C = c->hidden_size, A = c->attention_hidden_size, F = c->intermediate_size;
  memset (x, 0, sizeof *x);
  x->x_in = sutra_arena_floats (a, N * C);
  if (!full)
    return;
  x->h1 = sutra_arena_floats (a, N * C);
  x->mean1 = sutra_arena_floats (a, N);
  x->rstd1 = sutra_arena_floats (a, N);
  x->xk = sutra_arena_floats (a, N * C);
  x->xv = sutra_arena_floats (a, N * C);
  x->xr = sutra_arena_floats (a, N * C);
  x->k = sutra_arena_floats (a, N * A);
  x->v = sutra_arena_floats (a, N * A);
  x->r = sutra_arena_floats (a, N * A);
  if (states) {
    x->sa = sutra_arena_floats (a, N * A);
    x->sb = sutra_arena_floats (a, N * A);
    x->sp = sutra_arena_floats (a, N * A);
  }
  x->wkv = sutra_arena_floats (a, N * A);
  x->rw = sutra_arena_floats (a, N * A);
  x->x_mid = sutra_arena_floats (a, N * C);
  x->h2 = sutra_arena_floats (a, N * C);
  x->mean2 = sutra_arena_floats (a, N);
  x->rstd2 = sutra_arena_floats (a, N);
  x->fxk = sutra_arena_floats (a, N * C);
  x->fxr = sutra_arena_floats (a, N * C);
  x->fk = sutra_arena_floats (a, N * F);
  x->kk = sutra_arena_floats (a, N * F);
  x->fr = sutra_arena_floats (a, N * C);
  x->fv = sutra_arena_floats (a, N * C);
  if (!b)
    return;
  for (int p = 0; p < N_PROJ; p++)
    sutra_linear_saved_carve (&x->saved[p], b->proj[p], a, N);
}

static SutraStatus
rwkv_reserve (SutraModel *m, int B, int T, bool for_backward, SutraError *err)
{
  Rwkv *R = RW (m);
  const SutraModelConfig *c = &m->cfg;
  size_t lora = max_lora_per_token (m);
  bool ckpt = m->grad_checkpointing;
  if (R->arena.base && B * T <= R->capB * R->capT && B <= R->capB && T <= R->capT &&
      (!for_backward || R->cap_bwd) && ckpt == R->cap_ckpt && lora <= R->cap_lora)
    return SUTRA_OK;
  sutra_arena_clear (&R->arena);
  free (R->acts);
  R->acts = NULL;
  size_t N = (size_t) B * T, C = c->hidden_size, A = c->attention_hidden_size;
  size_t F = c->intermediate_size, V = c->vocab_size;
  size_t r_max = 0, in_max = C > F ? C : F;
  for (size_t i = 0; i < m->n_linears; i++)
    if (m->linears[i]->lora && (size_t) m->linears[i]->lora->r > r_max)
      r_max = (size_t) m->linears[i]->lora->r;
  size_t bytes = 0;
  if (for_backward) {
    bytes += acts_bytes (c, N, lora, !ckpt) * (size_t) c->n_layers;
    bytes += acts_bytes (c, N, lora, true);
    bytes += sizeof (float) * (5 * N * C + 4 * N * A + N * F + N * (r_max + in_max + 16)) +
             64 * 16;
  } else {
    bytes += acts_bytes (c, N, 0, true);
  }
  bytes += sizeof (float) * (3 * N * C + 4 * N + N * V) + sizeof (int) * N + 64 * 16;
  SutraStatus st = sutra_arena_init (&R->arena, bytes, "activations", err);
  if (st) {
    sutra_error_prefix (err, "batch %d x %d", B, T);
    return st;
  }
  SutraArena *a = &R->arena;
  if (for_backward) {
    R->acts = sutra_xcalloc ((size_t) c->n_layers, sizeof (Acts));
    for (int i = 0; i < c->n_layers; i++)
      carve_acts (a, &R->acts[i], &R->blocks[i], c, N, !ckpt, true);
    carve_acts (a, &R->work, &R->blocks[0], c, N, true, true);
    R->dx = sutra_arena_floats (a, N * C);
    R->dh = sutra_arena_floats (a, N * C);
    R->dC1 = sutra_arena_floats (a, N * C);
    R->dC2 = sutra_arena_floats (a, N * C);
    R->dC3 = sutra_arena_floats (a, N * C);
    R->dA1 = sutra_arena_floats (a, N * A);
    R->dA2 = sutra_arena_floats (a, N * A);
    R->dA3 = sutra_arena_floats (a, N * A);
    R->dA4 = sutra_arena_floats (a, N * A);
    R->dF = sutra_arena_floats (a, N * F);
    R->lscratch = sutra_arena_floats (a, N * (r_max + in_max + 16));
  } else {
    carve_acts (a, &R->work, NULL, c, N, true, false);
  }
  R->emb = sutra_arena_floats (a, N * C);
  R->x_out = sutra_arena_floats (a, N * C);
  R->hf = sutra_arena_floats (a, N * C);
  R->mean0 = sutra_arena_floats (a, N);
  R->rstd0 = sutra_arena_floats (a, N);
  R->meanf = sutra_arena_floats (a, N);
  R->rstdf = sutra_arena_floats (a, N);
  R->logits = sutra_arena_floats (a, N * V);
  R->seg = sutra_arena_alloc (a, sizeof (int) * N);
  R->capB = B;
  R->capT = T;
  R->cap_bwd = for_backward;
  R->cap_ckpt = ckpt;
  R->cap_lora = lora;
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* WKV recurrence (kernels in sutra-recurrent.c), channels split across the pool              */
/* ------------------------------------------------------------------------------------------ */

static void
wkv_forward_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  (void) ti;
  sutra_wkv_forward (ctx, (int) c0, (int) c1);
}

static void
wkv_backward_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  (void) ti;
  sutra_wkv_backward (ctx, (int) c0, (int) c1);
}

static int64_t
channel_grain (int A, int B, int T)
{
  /* at least 16 channels per task; fewer tasks for tiny sequences */
  int64_t g = (int64_t) 65536 / ((int64_t) B * T + 1);
  g = g < 16 ? 16 : g;
  return g > A ? A : g;
}

/* ------------------------------------------------------------------------------------------ */
/* forward                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Token shift and mix: out_m[n] = h[n] * mix + prev[n] * (1 - mix), prev[n] = h[n-1] inside a
 * segment, the carried x (state, B = 1) or zero at a segment start. Two or three mixes at once;
 * the backward adds into dh (the h[n] and the h[n-1] paths) and the mix gradients (may be
 * NULL; training has no carried state). Channels are split across the pool. */
typedef struct {
  float *o[3];                    /* forward outputs [N, C] (o[2] may be NULL) */
  const float *d[3];              /* backward: d outputs [N, C] (d[2] may be NULL) */
  float *dh, *dm[3];              /* backward: [N, C] +=, [C] += */
  const float *h, *m[3], *carry;
  const int *seg;
  int B, T, C, nmix;
} ShiftJob;

static void
shift_forward_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  const ShiftJob *j = ctx;
  int C = j->C;
  (void) ti;
  for (int b = 0; b < j->B; b++)
    for (int t = 0; t < j->T; t++) {
      size_t n = (size_t) b * j->T + t;
      const float *x = j->h + n * C;
      const float *p = t != j->seg[n] ? j->h + (n - 1) * C : (j->carry && t == 0 ? j->carry : NULL);
      for (int q = 0; q < j->nmix; q++) {
        float *o = j->o[q] + n * C;
        const float *mx = j->m[q];
        if (p)
          for (int64_t i = c0; i < c1; i++)
            o[i] = x[i] * mx[i] + p[i] * (1.f - mx[i]);
        else
          for (int64_t i = c0; i < c1; i++)
            o[i] = x[i] * mx[i];
      }
    }
}

static void
shift_backward_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  const ShiftJob *j = ctx;
  int C = j->C;
  (void) ti;
  for (int b = 0; b < j->B; b++)
    for (int t = 0; t < j->T; t++) {
      size_t n = (size_t) b * j->T + t;
      const float *x = j->h + n * C;
      const float *p = t != j->seg[n] ? j->h + (n - 1) * C : NULL;
      float *dx = j->dh + n * C, *dp = p ? j->dh + (n - 1) * C : NULL;
      for (int q = 0; q < j->nmix; q++) {
        const float *g = j->d[q] + n * C, *mx = j->m[q];
        float *dm = j->dm[q];
        for (int64_t i = c0; i < c1; i++) {
          dx[i] += g[i] * mx[i];
          if (dp)
            dp[i] += g[i] * (1.f - mx[i]);
          if (dm)
            dm[i] += g[i] * (x[i] - (p ? p[i] : 0.f));
        }
      }
    }
}

static void
shift_mix (float *o1, float *o2, float *o3, const float *h, const float *m1, const float *m2,
           const float *m3, const float *carry, const int *seg, int B, int T, int C)
{
  ShiftJob j = { .o = { o1, o2, o3 }, .h = h, .m = { m1, m2, m3 }, .carry = carry, .seg = seg,
                 .B = B, .T = T, .C = C, .nmix = o3 ? 3 : 2 };
  sutra_parallel_for (C, (int64_t) 65536 / ((int64_t) B * T + 1) + 16, shift_forward_range, &j);
}

/* elementwise steps of the block, split across the pool */
typedef enum { EWB_OUT, EWB_FFN_BWD, EWB_RELU2_BWD, EWB_ATT_BWD } EwbKind;
typedef struct {
  EwbKind kind;
  float *o1, *o2;
  const float *a, *b, *c, *d;
} EwbJob;

static void
ewb_range (void *ctx, int64_t i0, int64_t i1, int ti)
{
  const EwbJob *j = ctx;
  (void) ti;
  switch (j->kind) {
  case EWB_OUT:        /* x_out = x_mid + fr * fv */
    for (int64_t i = i0; i < i1; i++)
      j->o1[i] = j->a[i] + j->b[i] * j->c[i];
    break;
  case EWB_FFN_BWD:    /* a = dx, b = fr, c = fv: dfv = dx fr, dfr_pre = dx fv fr (1 - fr) */
    for (int64_t i = i0; i < i1; i++) {
      float g = j->a[i], s = j->b[i];
      j->o1[i] = g * s;
      j->o2[i] = g * j->c[i] * s * (1.f - s);
    }
    break;
  case EWB_RELU2_BWD:  /* o1 = dkk (in place), a = fk: d relu(fk)^2 */
    for (int64_t i = i0; i < i1; i++)
      j->o1[i] = j->a[i] > 0.f ? j->o1[i] * 2.f * j->a[i] : 0.f;
    break;
  case EWB_ATT_BWD:    /* a = drw, b = r, c = wkv: dy = drw r, dr_pre = drw wkv r (1 - r) */
    for (int64_t i = i0; i < i1; i++) {
      float g = j->a[i], r = j->b[i];
      j->o1[i] = g * r;
      j->o2[i] = g * j->c[i] * r * (1.f - r);
    }
    break;
  }
}

static void
ewb_run (EwbKind kind, float *o1, float *o2, const float *a, const float *b, const float *c,
         size_t n)
{
  EwbJob j = { kind, o1, o2, a, b, c, NULL };
  sutra_parallel_for ((int64_t) n, 16384, ewb_range, &j);
}

static inline float
block_eps (const SutraModelConfig *c, int i, bool rescale)
{
  if (!rescale || c->rescale_every <= 0)
    return c->layer_norm_epsilon;
  return ldexpf (c->layer_norm_epsilon, 2 * (i / c->rescale_every));
}

/* One block: A->x_in -> x_out. state: this layer's [2C + 3A] carried state (B = 1) or NULL. */
static void
block_forward (SutraModel *m, int li, Acts *X, float *x_out, int B, int T, const int *seg,
               uint64_t *rng, bool rescale, const float *wdecay, float *state)
{
  Rwkv *R = RW (m);
  const SutraModelConfig *c = &m->cfg;
  Block *bk = &R->blocks[li];
  int N = B * T, C = c->hidden_size, A = c->attention_hidden_size, F = c->intermediate_size;
  float eps = block_eps (c, li, rescale);
  double t0 = sutra_model_prof_start (m);
  X->rng_at_start = rng ? *rng : 0;
  /* time mixing */
  sutra_layernorm_forward (X->h1, X->mean1, X->rstd1, X->x_in, bk->ln1_w->data, bk->ln1_b->data,
                           eps, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  shift_mix (X->xk, X->xv, X->xr, X->h1, bk->amk->data, bk->amv->data, bk->amr->data,
             state, seg, B, T, C);
  if (state)
    memcpy (state, X->h1 + (size_t) (N - 1) * C, sizeof (float) * (size_t) C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  sutra_linear_forward (bk->proj[P_KEY], X->k, X->xk, N, &X->saved[P_KEY], rng);
  sutra_linear_forward (bk->proj[P_VALUE], X->v, X->xv, N, &X->saved[P_VALUE], rng);
  sutra_linear_forward (bk->proj[P_RECEPT], X->r, X->xr, N, &X->saved[P_RECEPT], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  sutra_rnn_sigmoid (X->r, X->r, (int64_t) N * A);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  SutraWkvArgs wj = { .k = X->k, .v = X->v, .w = wdecay, .u = bk->first->data, .y = X->wkv,
                      .sa = X->sa, .sb = X->sb, .sp = X->sp, .state = state ? state + C : NULL,
                      .seg = seg, .B = B, .T = T, .A = A };
  sutra_parallel_for (A, channel_grain (A, B, T), wkv_forward_range, &wj);
  sutra_model_prof (m, SUTRA_PROF_RECURRENCE, &t0);
  sutra_mul_forward (X->rw, X->r, X->wkv, (int64_t) N * A);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  sutra_linear_forward (bk->proj[P_OUTPUT], X->x_mid, X->rw, N, &X->saved[P_OUTPUT], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  sutra_add_forward (X->x_mid, X->x_mid, X->x_in, (int64_t) N * C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  /* channel mixing */
  sutra_layernorm_forward (X->h2, X->mean2, X->rstd2, X->x_mid, bk->ln2_w->data, bk->ln2_b->data,
                           eps, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  float *carry = state ? state + C + 3 * A : NULL;
  shift_mix (X->fxk, X->fxr, NULL, X->h2, bk->fmk->data, bk->fmr->data, NULL, carry, seg, B, T, C);
  if (carry)
    memcpy (carry, X->h2 + (size_t) (N - 1) * C, sizeof (float) * (size_t) C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  sutra_linear_forward (bk->proj[P_FKEY], X->fk, X->fxk, N, &X->saved[P_FKEY], rng);
  sutra_linear_forward (bk->proj[P_FRECEPT], X->fr, X->fxr, N, &X->saved[P_FRECEPT], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  sutra_act_forward (SUTRA_ACT_RELU2, X->kk, X->fk, (int64_t) N * F);
  sutra_rnn_sigmoid (X->fr, X->fr, (int64_t) N * C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  sutra_linear_forward (bk->proj[P_FVALUE], X->fv, X->kk, N, &X->saved[P_FVALUE], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  ewb_run (EWB_OUT, x_out, NULL, X->x_mid, X->fr, X->fv, (size_t) N * C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
}

/* w [L][A] = -exp(time_decay) (recomputed per call: training changes time_decay) */
static void
decay_table (const SutraModel *m, float *w)
{
  const Rwkv *R = m->impl;
  int A = m->cfg.attention_hidden_size;
  for (int i = 0; i < m->cfg.n_layers; i++)
    for (int h = 0; h < A; h++)
      w[(size_t) i * A + h] = -expf (R->blocks[i].decay->data[h]);
}

static SutraStatus
rwkv_forward (SutraModel *m, const SutraBatch *b, bool for_backward, float **logits,
              SutraError *err)
{
  Rwkv *R = RW (m);
  const SutraModelConfig *c = &m->cfg;
  SutraStatus st = rwkv_reserve (m, b->B, b->T, for_backward, err);
  if (st)
    return st;
  int N = b->B * b->T, C = c->hidden_size, L = c->n_layers;
  bool ckpt = m->grad_checkpointing && for_backward;
  bool rescale = !for_backward;
  uint64_t *rng = for_backward && m->train_mode == SUTRA_TRAIN_LORA ? &m->dropout_rng : NULL;
  double t0 = sutra_model_prof_start (m);
  sutra_rnn_segments (R->seg, b->doc, b->B, b->T);
  decay_table (m, R->wdecay);
  st = sutra_embedding_forward (R->emb, b->ids, R->embed->data, N, c->vocab_size, C, err);
  if (st)
    return st;
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  float *x0 = for_backward ? R->acts[0].x_in : R->work.x_in;
  sutra_layernorm_forward (x0, R->mean0, R->rstd0, R->emb, R->blocks[0].pre_w->data,
                           R->blocks[0].pre_b->data, c->layer_norm_epsilon, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  for (int i = 0; i < L; i++) {
    Acts *X;
    float *x_out;
    if (!for_backward) {
      X = &R->work;
      x_out = R->x_out;
    } else {
      X = ckpt ? &R->work : &R->acts[i];
      if (ckpt && X->x_in != R->acts[i].x_in)
        memcpy (X->x_in, R->acts[i].x_in, sizeof (float) * (size_t) N * C);
      x_out = i + 1 < L ? R->acts[i + 1].x_in : R->x_out;
    }
    if (ckpt)
      R->acts[i].rng_at_start = rng ? *rng : 0;
    block_forward (m, i, X, x_out, b->B, b->T, R->seg, rng, rescale,
                   R->wdecay + (size_t) i * c->attention_hidden_size, NULL);
    if (!for_backward && i + 1 < L)
      memcpy (R->work.x_in, R->x_out, sizeof (float) * (size_t) N * C);
  }
  t0 = sutra_model_prof_start (m);
  float eps_out = rescale && c->rescale_every > 0 ? ldexpf (LN_OUT_EPS, 2 * (L / c->rescale_every))
                                                  : LN_OUT_EPS;
  sutra_layernorm_forward (R->hf, R->meanf, R->rstdf, R->x_out, R->lnf_w->data, R->lnf_b->data,
                           eps_out, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  sutra_linear_forward (R->head, R->logits, R->hf, N, NULL, NULL);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  if (for_backward) {
    R->lastB = b->B;
    R->lastT = b->T;
    R->last_ids = sutra_xrealloc (R->last_ids, sizeof (int) * (size_t) N);
    memcpy (R->last_ids, b->ids, sizeof (int) * (size_t) N);
  }
  *logits = R->logits;
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* backward                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static void
shift_mix_backward (float *dh, float *dm1, float *dm2, float *dm3, const float *d1,
                    const float *d2, const float *d3, const float *h, const float *m1,
                    const float *m2, const float *m3, const int *seg, int B, int T, int C)
{
  ShiftJob j = { .d = { d1, d2, d3 }, .dh = dh, .dm = { dm1, dm2, dm3 }, .h = h,
                 .m = { m1, m2, m3 }, .seg = seg, .B = B, .T = T, .C = C, .nmix = d3 ? 3 : 2 };
  sutra_parallel_for (C, (int64_t) 65536 / ((int64_t) B * T + 1) + 16, shift_backward_range, &j);
}

static float *
grad_of (SutraParam *p)
{
  return p ? p->grad : NULL;
}

/* dx holds d x_out on entry and d x_in on return. */
static void
block_backward (SutraModel *m, int li, Acts *X, float *dx, int B, int T, const int *seg)
{
  Rwkv *R = RW (m);
  const SutraModelConfig *c = &m->cfg;
  Block *bk = &R->blocks[li];
  int N = B * T, C = c->hidden_size, A = c->attention_hidden_size, F = c->intermediate_size;
  size_t NC = (size_t) N * C, NA = (size_t) N * A, NF = (size_t) N * F;
  double t0 = sutra_model_prof_start (m);
  /* ---- channel mixing: x_out = x_mid + fr * fv ---- */
  float *dfv = R->dC1, *dfr = R->dC2;
  ewb_run (EWB_FFN_BWD, dfv, dfr, dx, X->fr, X->fv, NC);   /* dfr through the sigmoid */
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  float *dkk = R->dF;
  memset (dkk, 0, sizeof (float) * NF);
  sutra_linear_backward (bk->proj[P_FVALUE], dkk, dfv, X->kk, N, &X->saved[P_FVALUE], R->lscratch);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  ewb_run (EWB_RELU2_BWD, dkk, NULL, X->fk, NULL, NULL, NF);    /* relu(fk)^2 */
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  float *dfxk = R->dC1, *dfxr = R->dC3;
  memset (dfxr, 0, sizeof (float) * NC);
  sutra_linear_backward (bk->proj[P_FRECEPT], dfxr, dfr, X->fxr, N, &X->saved[P_FRECEPT],
                         R->lscratch);
  memset (dfxk, 0, sizeof (float) * NC);
  sutra_linear_backward (bk->proj[P_FKEY], dfxk, dkk, X->fxk, N, &X->saved[P_FKEY], R->lscratch);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  memset (R->dh, 0, sizeof (float) * NC);
  shift_mix_backward (R->dh, grad_of (bk->fmk), grad_of (bk->fmr), NULL, dfxk, dfxr, NULL, X->h2,
                      bk->fmk->data, bk->fmr->data, NULL, seg, B, T, C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  sutra_layernorm_backward (dx, grad_of (bk->ln2_w), grad_of (bk->ln2_b), R->dh, X->x_mid,
                            bk->ln2_w->data, X->mean2, X->rstd2, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  /* ---- time mixing: x_mid = x_in + output(r * wkv) ---- */
  float *drw = R->dA1;
  memset (drw, 0, sizeof (float) * NA);
  sutra_linear_backward (bk->proj[P_OUTPUT], drw, dx, X->rw, N, &X->saved[P_OUTPUT], R->lscratch);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  float *dy = R->dA2, *drp = R->dA1;
  ewb_run (EWB_ATT_BWD, dy, drp, drw, X->r, X->wkv, NA);   /* drp: receptance pre-activation */
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  float *dk = R->dA3, *dv = R->dA4;
  float *ddecay = grad_of (bk->decay);
  float *dwv = ddecay ? sutra_thread_scratch (5, (size_t) A) : NULL;
  if (dwv)
    memset (dwv, 0, sizeof (float) * (size_t) A);
  SutraWkvArgs bj = { .k = X->k, .v = X->v, .w = R->wdecay + (size_t) li * A,
                      .u = bk->first->data, .y = X->wkv, .sa = X->sa, .sb = X->sb, .sp = X->sp,
                      .gy = dy, .dk = dk, .dv = dv, .du = grad_of (bk->first), .dw = dwv,
                      .seg = seg, .B = B, .T = T, .A = A };
  sutra_parallel_for (A, channel_grain (A, B, T), wkv_backward_range, &bj);
  if (dwv)   /* w = -exp(time_decay): d time_decay = dw * w */
    for (int h = 0; h < A; h++)
      ddecay[h] += dwv[h] * R->wdecay[(size_t) li * A + h];
  sutra_model_prof (m, SUTRA_PROF_RECURRENCE, &t0);
  float *dxk = R->dC1, *dxv = R->dC2, *dxr = R->dC3;
  memset (dxr, 0, sizeof (float) * NC);
  sutra_linear_backward (bk->proj[P_RECEPT], dxr, drp, X->xr, N, &X->saved[P_RECEPT], R->lscratch);
  memset (dxk, 0, sizeof (float) * NC);
  sutra_linear_backward (bk->proj[P_KEY], dxk, dk, X->xk, N, &X->saved[P_KEY], R->lscratch);
  memset (dxv, 0, sizeof (float) * NC);
  sutra_linear_backward (bk->proj[P_VALUE], dxv, dv, X->xv, N, &X->saved[P_VALUE], R->lscratch);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  memset (R->dh, 0, sizeof (float) * NC);
  shift_mix_backward (R->dh, grad_of (bk->amk), grad_of (bk->amv), grad_of (bk->amr), dxk, dxv,
                      dxr, X->h1, bk->amk->data, bk->amv->data, bk->amr->data, seg, B, T, C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  sutra_layernorm_backward (dx, grad_of (bk->ln1_w), grad_of (bk->ln1_b), R->dh, X->x_in,
                            bk->ln1_w->data, X->mean1, X->rstd1, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
}

static SutraStatus
rwkv_backward (SutraModel *m, const float *dlogits, SutraError *err)
{
  Rwkv *R = RW (m);
  const SutraModelConfig *c = &m->cfg;
  if (!R->cap_bwd || !R->acts)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "backward without a training forward");
  int B = R->lastB, T = R->lastT, N = B * T, C = c->hidden_size;
  size_t NC = (size_t) N * C;
  double t0 = sutra_model_prof_start (m);
  memset (R->dh, 0, sizeof (float) * NC);
  sutra_linear_backward (R->head, R->dh, dlogits, R->hf, N, NULL, NULL);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  memset (R->dx, 0, sizeof (float) * NC);
  sutra_layernorm_backward (R->dx, grad_of (R->lnf_w), grad_of (R->lnf_b), R->dh, R->x_out,
                            R->lnf_w->data, R->meanf, R->rstdf, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  for (int i = c->n_layers - 1; i >= 0; i--) {
    Acts *X = &R->acts[i];
    if (m->grad_checkpointing) {
      /* recompute the block from its saved input with the same dropout draws; its output is
       * not needed, so dh (reset before use) takes it */
      Acts *W = &R->work;
      memcpy (W->x_in, X->x_in, sizeof (float) * NC);
      uint64_t rng = X->rng_at_start;
      block_forward (m, i, W, R->dh, B, T, R->seg, m->train_mode == SUTRA_TRAIN_LORA ? &rng : NULL,
                     false, R->wdecay + (size_t) i * c->attention_hidden_size, NULL);
      X = W;
    }
    block_backward (m, i, X, R->dx, B, T, R->seg);
  }
  /* pre_ln and the embedding */
  t0 = sutra_model_prof_start (m);
  Block *b0 = &R->blocks[0];
  memset (R->dh, 0, sizeof (float) * NC);
  sutra_layernorm_backward (R->dh, grad_of (b0->pre_w), grad_of (b0->pre_b), R->dx, R->emb,
                            b0->pre_w->data, R->mean0, R->rstd0, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  if (R->embed->grad)
    sutra_embedding_backward (R->embed->grad, R->dh, R->last_ids, N, C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* generation: recurrent state                                                                */
/* ------------------------------------------------------------------------------------------ */

struct SutraGenState {
  SutraModel *m;
  int pos;
  size_t per_layer;               /* 2C + 3A floats */
  float *state;                   /* [L][att_x C | aa A | bb A | pp A | ffn_x C] */
  float *wdecay;                  /* [L][A] -exp(time_decay) for this state's steps */
  Acts work;                      /* scratch for up to STEP_CHUNK tokens */
  float *x, *x_out, *emb, *hf, *mean, *rstd;
  int *seg;
  SutraArena arena;
};

static void
rwkv_state_reset (SutraGenState *s)
{
  const SutraModelConfig *c = &s->m->cfg;
  int C = c->hidden_size, A = c->attention_hidden_size;
  for (int i = 0; i < c->n_layers; i++) {
    float *st = s->state + (size_t) i * s->per_layer;
    memset (st, 0, sizeof (float) * s->per_layer);
    for (int h = 0; h < A; h++)
      st[C + 2 * A + h] = PP_INIT;
  }
  s->pos = 0;
}

static SutraStatus
rwkv_state_new (SutraModel *m, int max_ctx, SutraGenState **out, SutraError *err)
{
  const SutraModelConfig *c = &m->cfg;
  (void) max_ctx;                 /* a recurrent state has no context limit */
  SutraGenState *s = sutra_xcalloc (1, sizeof *s);
  s->m = m;
  size_t C = c->hidden_size, A = c->attention_hidden_size, V = c->vocab_size, n = STEP_CHUNK;
  s->per_layer = 2 * C + 3 * A;
  size_t bytes = sizeof (float) * ((size_t) c->n_layers * (s->per_layer + A) + 4 * n * C + 2 * n + V) +
                 acts_bytes (c, n, 0, true) + sizeof (int) * n + 64 * 16;
  SutraStatus st = sutra_arena_init (&s->arena, bytes, "recurrent state", err);
  if (st) {
    free (s);
    return st;
  }
  SutraArena *a = &s->arena;
  s->state = sutra_arena_floats (a, (size_t) c->n_layers * s->per_layer);
  s->wdecay = sutra_arena_floats (a, (size_t) c->n_layers * A);
  carve_acts (a, &s->work, NULL, c, n, true, false);
  s->x = s->work.x_in;
  s->x_out = sutra_arena_floats (a, n * C);
  s->emb = sutra_arena_floats (a, n * C);
  s->hf = sutra_arena_floats (a, n * C);
  s->mean = sutra_arena_floats (a, n);
  s->rstd = sutra_arena_floats (a, n);
  s->seg = sutra_arena_alloc (a, sizeof (int) * n);
  rwkv_state_reset (s);
  *out = s;
  return SUTRA_OK;
}

static void
rwkv_state_free (SutraGenState *s)
{
  if (!s)
    return;
  sutra_arena_clear (&s->arena);
  free (s);
}

static int rwkv_state_pos (const SutraGenState *s) { return s->pos; }
static size_t rwkv_state_bytes (const SutraGenState *s) { return s->arena.size; }

static SutraStatus
step_chunk (SutraModel *m, SutraGenState *s, const int *ids, int n, float *logits, bool all_logits,
            SutraError *err)
{
  Rwkv *R = RW (m);
  const SutraModelConfig *c = &m->cfg;
  int C = c->hidden_size, L = c->n_layers;
  SutraStatus st = sutra_embedding_forward (s->emb, ids, R->embed->data, n, c->vocab_size, C, err);
  if (st)
    return st;
  memset (s->seg, 0, sizeof (int) * (size_t) n);
  sutra_layernorm_forward (s->x, s->mean, s->rstd, s->emb, R->blocks[0].pre_w->data,
                           R->blocks[0].pre_b->data, c->layer_norm_epsilon, n, C);
  for (int i = 0; i < L; i++) {
    block_forward (m, i, &s->work, s->x_out, 1, n, s->seg, NULL, true,
                   s->wdecay + (size_t) i * c->attention_hidden_size,
                   s->state + (size_t) i * s->per_layer);
    memcpy (s->x, s->x_out, sizeof (float) * (size_t) n * C);
  }
  s->pos += n;
  float eps_out = c->rescale_every > 0 ? ldexpf (LN_OUT_EPS, 2 * (L / c->rescale_every)) : LN_OUT_EPS;
  if (all_logits) {
    sutra_layernorm_forward (s->hf, s->mean, s->rstd, s->x, R->lnf_w->data, R->lnf_b->data, eps_out,
                             n, C);
    sutra_linear_forward (R->head, logits, s->hf, n, NULL, NULL);
  } else if (logits) {
    sutra_layernorm_forward (s->hf, s->mean, s->rstd, s->x + (size_t) (n - 1) * C, R->lnf_w->data,
                             R->lnf_b->data, eps_out, 1, C);
    sutra_linear_forward (R->head, logits, s->hf, 1, NULL, NULL);
  }
  return SUTRA_OK;
}

static SutraStatus
rwkv_step (SutraModel *m, SutraGenState *s, const int *ids, int n, float *logits, bool all_logits,
           SutraError *err)
{
  if (n <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "no tokens to feed");
  decay_table (m, s->wdecay);
  int V = m->cfg.vocab_size;
  for (int off = 0; off < n; off += STEP_CHUNK) {
    int k = n - off < STEP_CHUNK ? n - off : STEP_CHUNK;
    bool last = off + k == n;
    float *lg = all_logits ? logits + (size_t) off * V : (last ? logits : NULL);
    SutraStatus st = step_chunk (m, s, ids + off, k, lg, all_logits, err);
    if (st)
      return st;
  }
  return SUTRA_OK;
}

const SutraModelVTable sutra_rwkv4_vtable = {
  .arch_name = "rwkv",
  .load = rwkv_load,
  .free_impl = rwkv_free_impl,
  .reserve = rwkv_reserve,
  .forward = rwkv_forward,
  .backward = rwkv_backward,
  .state_new = rwkv_state_new,
  .state_free = rwkv_state_free,
  .state_reset = rwkv_state_reset,
  .state_bytes = rwkv_state_bytes,
  .state_pos = rwkv_state_pos,
  .step = rwkv_step,
  .activation_bytes = rwkv_activation_bytes,
};
