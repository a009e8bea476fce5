/* sutra-mamba.c: Mamba (v1; Gu & Dao 2023) as transformers' MambaForCausalLM computes it on CPU
 * (MambaMixer.slow_forward, modeling_mamba.py).
 *
 *   x = embed(ids)
 *   per layer:  h = RMSNorm(x; norm)                                           [N, C]
 *               xs, z = split(in_proj(h))                                     [N, I] each
 *               xc_t = conv_b + sum_j conv_w[:, j] * xs_{t-(K-1)+j}   (causal depthwise, zero
 *                      before the sequence start)  ;  u = silu(xc)
 *               dt_r, B, C = split(x_proj(u), [R, S, S]) ; dt = softplus(dt_proj(dt_r))  [N, I]
 *               selective scan, per channel c with state s [S] (ZOH discretisation):
 *                 s_t = exp(dt_t A_c) * s_{t-1} + dt_t B_t u_t,   A = -exp(A_log)   [I, S]
 *                 y_t = <s_t, C_t> + D_c u_t
 *               x = x + out_proj(y * silu(z))
 *   logits = lm_head(RMSNorm(x; norm_f))       (lm_head tied to the embedding by default)
 * residual_in_fp32 changes nothing here: every activation is f32 already.
 *
 * Training keeps per-layer activations; the scan runs per channel (channels split across the
 * pool; kernels and the backward's derivation in sutra-recurrent.c). Its backward recomputes
 * the states of 8 channels at a time over the row (memory T x S x 8 per thread, never the
 * [N, I, S] states) and walks back in time.
 * Generation state per layer: the last K-1 conv inputs [K-1, I] and the scan state [I, S]. */
#include "sutra-model.h"
#include "sutra-pool.h"
#include "sutra-recurrent-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_PROJ 4
#define STEP_CHUNK 64

enum { P_IN, P_X, P_DT, P_OUT };
static const char *proj_names[N_PROJ] = { "in_proj", "x_proj", "dt_proj", "out_proj" };

typedef struct {
  SutraParam *norm;               /* [C] */
  SutraParam *conv_w, *conv_b;    /* [I, 1, K], [I] (NULL without use_conv_bias) */
  SutraParam *A_log, *D;          /* [I, S], [I] */
  SutraLinear *proj[N_PROJ];
} Layer;

typedef struct {
  float *x_in;                    /* [N, C] layer input */
  float *h, *rstd;                /* [N, C], [N] RMSNorm */
  float *xz;                      /* [N, 2I] in_proj: xs | z */
  float *xc, *u;                  /* [N, I] conv output, silu(xc) */
  float *dbc;                     /* [N, R + 2S] x_proj: dt_r | B | C */
  float *dtr;                     /* [N, R] dt_r, contiguous */
  float *dtp, *delta;             /* [N, I] dt_proj output, softplus of it */
  float *y;                       /* [N, I] scan output with the D skip */
  float *g;                       /* [N, I] y * silu(z) */
  SutraLinearSaved saved[N_PROJ];
  uint64_t rng_at_start;
} Acts;

typedef struct {
  SutraParam *embed, *norm_f;
  SutraLinear *lm_head;
  Layer *layers;
  float *A;                       /* [L][S, I] = -exp(A_log) transposed, refreshed every forward */
  SutraArena arena;
  int capB, capT;
  bool cap_bwd, cap_ckpt;
  size_t cap_lora;
  Acts *acts;
  Acts work;
  int *seg;
  float *x_out, *hf, *rstdf, *logits;
  float *dx, *dh, *dxz, *dI1, *dI2, *ddbc, *ddtr, *lscratch;
  float *partials;                /* [threads][N, 2S] dB, dC per thread (scan backward) */
  size_t partials_cap;
  int lastB, lastT;
  int *last_ids;
} Mamba;

static inline Mamba *MB (SutraModel *m) { return m->impl; }

static void
mamba_free_impl (SutraModel *m)
{
  Mamba *M = MB (m);
  if (!M)
    return;
  sutra_arena_clear (&M->arena);
  sutra_aligned_free (M->partials);
  free (M->acts);
  free (M->layers);
  free (M->A);
  free (M->last_ids);
  free (M);
  m->impl = NULL;
}

/* A fresh model as transformers' MambaPreTrainedModel._init_weights sets the SSM parameters:
 * A_log = log(1..S), D = 1, dt_proj.bias = softplus^-1(dt) with dt log-spaced in
 * [time_step_min, time_step_max] = [1e-3, 1e-1] (deterministic here instead of random),
 * conv weights uniform(+-1/sqrt(K)) from a fixed generator, conv bias 0, norms 1. */
static void
init_fresh (SutraModel *m)
{
  const SutraModelConfig *c = &m->cfg;
  Mamba *M = MB (m);
  int I = c->intermediate_mamba, S = c->state_size, K = c->conv_kernel;
  uint64_t s = 0x243F6A8885A308D3ULL;
  for (int l = 0; l < c->n_layers; l++) {
    Layer *ly = &M->layers[l];
    for (int i = 0; i < c->hidden_size; i++)
      ly->norm->data[i] = 1.f;
    for (int i = 0; i < I; i++) {
      for (int k = 0; k < S; k++)
        ly->A_log->data[(size_t) i * S + k] = logf ((float) (k + 1));
      ly->D->data[i] = 1.f;
      double dt = exp (log (1e-3) + (log (1e-1) - log (1e-3)) * (i + 0.5) / I);
      ly->proj[P_DT]->bias[i] = (float) (dt + log (-expm1 (-dt)));
      for (int k = 0; k < K; k++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double uni = (double) (s >> 11) * 0x1p-53 * 2.0 - 1.0;
        ly->conv_w->data[(size_t) i * K + k] = (float) (uni / sqrt ((double) K));
      }
      if (ly->conv_b)
        ly->conv_b->data[i] = 0.f;
    }
  }
  for (int i = 0; i < c->hidden_size; i++)
    M->norm_f->data[i] = 1.f;
}

static SutraStatus
mamba_load (SutraModel *m, SutraError *err)
{
  const SutraModelConfig *c = &m->cfg;
  Mamba *M = sutra_xcalloc (1, sizeof *M);
  m->impl = M;
  int C = c->hidden_size, I = c->intermediate_mamba, S = c->state_size, R = c->time_step_rank;
  int K = c->conv_kernel, V = c->vocab_size;
  SutraStatus st;
  int64_t eshape[2] = { V, C }, cshape[1] = { C }, ishape[1] = { I }, ashape[2] = { I, S };
  int64_t wshape[3] = { I, 1, K };
  /* some conversions name the embedding "embedding" (transformers renames it on load) */
  const char *ename = "backbone.embeddings.weight";
  if (m->weights && !sutra_safetensors_find (m->weights, ename) &&
      sutra_safetensors_find (m->weights, "backbone.embedding.weight"))
    ename = "backbone.embedding.weight";
  if ((st = sutra_model_add_param (m, ename, 2, eshape, &M->embed, err)))
    return st;
  M->layers = sutra_xcalloc ((size_t) c->n_layers, sizeof (Layer));
  char name[160];
  for (int l = 0; l < c->n_layers; l++) {
    Layer *ly = &M->layers[l];
    snprintf (name, sizeof name, "backbone.layers.%d.norm.weight", l);
    if ((st = sutra_model_add_param (m, name, 1, cshape, &ly->norm, err)))
      return st;
    const int in[N_PROJ] = { C, I, R, I };
    const int out[N_PROJ] = { 2 * I, R + 2 * S, I, C };
    const bool bias[N_PROJ] = { c->use_bias, false, true, c->use_bias };
    for (int p = 0; p < N_PROJ; p++) {
      snprintf (name, sizeof name, "backbone.layers.%d.mixer.%s", l, proj_names[p]);
      if ((st = sutra_model_add_linear (m, name, in[p], out[p], bias[p], &ly->proj[p], err)))
        return st;
    }
    snprintf (name, sizeof name, "backbone.layers.%d.mixer.conv1d.weight", l);
    if ((st = sutra_model_add_param (m, name, 3, wshape, &ly->conv_w, err)))
      return st;
    if (c->use_conv_bias) {
      snprintf (name, sizeof name, "backbone.layers.%d.mixer.conv1d.bias", l);
      if ((st = sutra_model_add_param (m, name, 1, ishape, &ly->conv_b, err)))
        return st;
    }
    snprintf (name, sizeof name, "backbone.layers.%d.mixer.A_log", l);
    if ((st = sutra_model_add_param (m, name, 2, ashape, &ly->A_log, err)))
      return st;
    snprintf (name, sizeof name, "backbone.layers.%d.mixer.D", l);
    if ((st = sutra_model_add_param (m, name, 1, ishape, &ly->D, err)))
      return st;
  }
  if ((st = sutra_model_add_param (m, "backbone.norm_f.weight", 1, cshape, &M->norm_f, err)))
    return st;
  bool tied = c->tie_word_embeddings;
  if (!tied && m->weights && !sutra_safetensors_find (m->weights, "lm_head.weight"))
    tied = true;
  if (tied)
    st = sutra_model_add_tied_linear (m, "lm_head", M->embed, &M->lm_head, err);
  else
    st = sutra_model_add_linear (m, "lm_head", C, V, false, &M->lm_head, err);
  if (st)
    return st;
  M->A = sutra_xmalloc (sizeof (float) * (size_t) c->n_layers * I * S);
  if (!m->weights)
    init_fresh (m);
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* activation memory                                                                          */
/* ------------------------------------------------------------------------------------------ */

static size_t
max_lora_per_token (const SutraModel *m)
{
  const Mamba *M = m->impl;
  size_t mx = 0;
  for (int l = 0; l < m->cfg.n_layers; l++) {
    size_t n = 0;
    for (int p = 0; p < N_PROJ; p++)
      n += sutra_linear_saved_per_token (M->layers[l].proj[p]);
    mx = n > mx ? n : mx;
  }
  return mx;
}

static size_t
acts_bytes (const SutraModelConfig *c, size_t N, size_t lora_pt, bool full)
{
  size_t C = c->hidden_size, I = c->intermediate_mamba, S = c->state_size;
  size_t R = c->time_step_rank;
  size_t f = N * C;
  if (full)
    f += N * (C + 1 + 2 * I + 6 * I + 2 * R + 2 * S) + N * lora_pt;
  return f * sizeof (float) + 64 * 32;
}

static size_t
mamba_activation_bytes (const SutraModel *m, int B, int T, bool ckpt)
{
  const SutraModelConfig *c = &m->cfg;
  size_t N = (size_t) B * T, lora = max_lora_per_token (m);
  size_t total = acts_bytes (c, N, lora, !ckpt) * (size_t) c->n_layers;
  if (ckpt)
    total += acts_bytes (c, N, lora, true);
  return total;
}

static void
carve_acts (SutraArena *a, Acts *x, const Layer *ly, const SutraModelConfig *c, size_t N, bool full)
{
  size_t C = c->hidden_size, I = c->intermediate_mamba, S = c->state_size;
  size_t R = c->time_step_rank;
  memset (x, 0, sizeof *x);
  x->x_in = sutra_arena_floats (a, N * C);
  if (!full)
    return;
  x->h = sutra_arena_floats (a, N * C);
  x->rstd = sutra_arena_floats (a, N);
  x->xz = sutra_arena_floats (a, N * 2 * I);
  x->xc = sutra_arena_floats (a, N * I);
  x->u = sutra_arena_floats (a, N * I);
  x->dbc = sutra_arena_floats (a, N * (R + 2 * S));
  x->dtr = sutra_arena_floats (a, N * R);
  x->dtp = sutra_arena_floats (a, N * I);
  x->delta = sutra_arena_floats (a, N * I);
  x->y = sutra_arena_floats (a, N * I);
  x->g = sutra_arena_floats (a, N * I);
  if (!ly)
    return;
  for (int p = 0; p < N_PROJ; p++)
    sutra_linear_saved_carve (&x->saved[p], ly->proj[p], a, N);
}

static SutraStatus
mamba_reserve (SutraModel *m, int B, int T, bool for_backward, SutraError *err)
{
  Mamba *M = MB (m);
  const SutraModelConfig *c = &m->cfg;
  size_t lora = max_lora_per_token (m);
  bool ckpt = m->grad_checkpointing;
  if (M->arena.base && B * T <= M->capB * M->capT && B <= M->capB && T <= M->capT &&
      (!for_backward || M->cap_bwd) && ckpt == M->cap_ckpt && lora <= M->cap_lora)
    return SUTRA_OK;
  sutra_arena_clear (&M->arena);
  free (M->acts);
  M->acts = NULL;
  size_t N = (size_t) B * T, C = c->hidden_size, I = c->intermediate_mamba, S = c->state_size;
  size_t R = c->time_step_rank, V = c->vocab_size;
  size_t r_max = 0, in_max = C > I ? C : I;
  for (size_t i = 0; i < m->n_linears; i++)
    if (m->linears[i]->lora && (size_t) m->linears[i]->lora->r > r_max)
      r_max = (size_t) m->linears[i]->lora->r;
  size_t bytes = 0;
  if (for_backward) {
    bytes += acts_bytes (c, N, lora, !ckpt) * (size_t) c->n_layers;
    bytes += acts_bytes (c, N, lora, true);
    bytes += sizeof (float) * (2 * N * C + 2 * N * I + 2 * N * I + N * (R + 2 * S) + N * R +
                               N * (r_max + in_max + 16)) + 64 * 16;
  } else {
    bytes += acts_bytes (c, N, 0, true);
  }
  bytes += sizeof (float) * (2 * N * C + N + N * V) + sizeof (int) * N + 64 * 8;
  SutraStatus st = sutra_arena_init (&M->arena, bytes, "activations", err);
  if (st) {
    sutra_error_prefix (err, "batch %d x %d", B, T);
    return st;
  }
  SutraArena *a = &M->arena;
  if (for_backward) {
    M->acts = sutra_xcalloc ((size_t) c->n_layers, sizeof (Acts));
    for (int i = 0; i < c->n_layers; i++)
      carve_acts (a, &M->acts[i], &M->layers[i], c, N, !ckpt);
    carve_acts (a, &M->work, &M->layers[0], c, N, true);
    M->dx = sutra_arena_floats (a, N * C);
    M->dh = sutra_arena_floats (a, N * C);
    M->dxz = sutra_arena_floats (a, N * 2 * I);
    M->dI1 = sutra_arena_floats (a, N * I);
    M->dI2 = sutra_arena_floats (a, N * I);
    M->ddbc = sutra_arena_floats (a, N * (R + 2 * S));
    M->ddtr = sutra_arena_floats (a, N * R);
    M->lscratch = sutra_arena_floats (a, N * (r_max + in_max + 16));
  } else {
    carve_acts (a, &M->work, NULL, c, N, true);
  }
  M->x_out = sutra_arena_floats (a, N * C);
  M->hf = sutra_arena_floats (a, N * C);
  M->rstdf = sutra_arena_floats (a, N);
  M->logits = sutra_arena_floats (a, N * V);
  M->seg = sutra_arena_alloc (a, sizeof (int) * N);
  M->capB = B;
  M->capT = T;
  M->cap_bwd = for_backward;
  M->cap_ckpt = ckpt;
  M->cap_lora = lora;
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* causal depthwise conv                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  const float *xz;                /* xs at xz[n * ldx + c] */
  const float *w, *bias;          /* [I, K], [I] or NULL */
  const float *win;               /* [K-1, I] carried inputs before position 0 (B = 1) or NULL */
  float *out;                     /* [N, I] */
  const float *dout;              /* backward: [N, I] */
  float *dxz, *dw, *db;           /* backward: dxs at dxz[n * ldx + c] (+=), [I, K], [I] (+=) */
  const int *seg;
  int B, T, I, K, ldx;
} ConvJob;

/* out_t = bias + sum_j w_j x_{t-(K-1)+j}; x before the segment start is 0 (or the window) */
static void
conv_forward_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  const ConvJob *j = ctx;
  int K = j->K, I = j->I;
  (void) ti;
  for (int b = 0; b < j->B; b++)
    for (int t = 0; t < j->T; t++) {
      size_t n = (size_t) b * j->T + t;
      int s0 = j->seg[n];
      float *o = j->out + n * I;
      for (int64_t c = c0; c < c1; c++)
        o[c] = j->bias ? j->bias[c] : 0.f;
      for (int k = 0; k < K; k++) {
        int src = t - (K - 1) + k;
        const float *x;
        if (src >= s0)
          x = j->xz + (n - (size_t) (t - src)) * j->ldx;
        else if (j->win && s0 == 0 && src < 0)
          x = j->win + (size_t) (K - 1 + src) * I;
        else
          continue;
        for (int64_t c = c0; c < c1; c++)
          o[c] += j->w[(size_t) c * K + k] * x[c];
      }
    }
}

static void
conv_backward_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  const ConvJob *j = ctx;
  int K = j->K, I = j->I;
  (void) ti;
  for (int b = 0; b < j->B; b++)
    for (int t = 0; t < j->T; t++) {
      size_t n = (size_t) b * j->T + t;
      int s0 = j->seg[n];
      const float *g = j->dout + n * I;
      if (j->db)
        for (int64_t c = c0; c < c1; c++)
          j->db[c] += g[c];
      for (int k = 0; k < K; k++) {
        int src = t - (K - 1) + k;
        if (src < s0)
          continue;
        size_t ns = n - (size_t) (t - src);
        const float *x = j->xz + ns * j->ldx;
        float *dx = j->dxz + ns * j->ldx;
        for (int64_t c = c0; c < c1; c++) {
          dx[c] += j->w[(size_t) c * K + k] * g[c];
          if (j->dw)
            j->dw[(size_t) c * K + k] += g[c] * x[c];
        }
      }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* selective scan (kernels in sutra-recurrent.c), channels split across the pool              */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  SutraScanArgs a;
  float *partials;                /* [threads][N, 2S, lanes] */
  size_t per_thread;
} ScanJob;

static void
scan_forward_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  (void) ti;
  sutra_ssm_scan_forward (&((ScanJob *) ctx)->a, (int) c0, (int) c1);
}

static void
scan_backward_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  ScanJob *j = ctx;
  sutra_ssm_scan_backward (&j->a, (int) c0, (int) c1, j->partials + (size_t) ti * j->per_thread);
}

/* ------------------------------------------------------------------------------------------ */
/* forward                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* At [L][S, I] = -exp(A_log) transposed (the scan reads 8 channels of one state dim) */
static void
a_table (const SutraModel *m, float *At)
{
  const Mamba *M = m->impl;
  int I = m->cfg.intermediate_mamba, S = m->cfg.state_size;
  for (int l = 0; l < m->cfg.n_layers; l++) {
    const float *Al = M->layers[l].A_log->data;
    float *o = At + (size_t) l * I * S;
    for (int c = 0; c < I; c++)
      for (int k = 0; k < S; k++)
        o[(size_t) k * I + c] = -expf (Al[(size_t) c * S + k]);
  }
}

static int64_t
channel_grain (int I, int N)
{
  int64_t g = (int64_t) 131072 / ((int64_t) N + 1);
  g = g < 16 ? 16 : g;
  return g > I ? I : g;
}

/* One layer: X->x_in -> x_out. state: this layer's [K-1, I] window then [I, S] scan state (B = 1)
 * or NULL. A: this layer's [I, S]. */
static void
layer_forward (SutraModel *m, int li, Acts *X, float *x_out, int B, int T, const int *seg,
               uint64_t *rng, const float *A, float *state)
{
  const SutraModelConfig *c = &m->cfg;
  Layer *ly = &MB (m)->layers[li];
  int N = B * T, C = c->hidden_size, I = c->intermediate_mamba, S = c->state_size;
  int R = c->time_step_rank, K = c->conv_kernel, ldb = R + 2 * S;
  double t0 = sutra_model_prof_start (m);
  X->rng_at_start = rng ? *rng : 0;
  sutra_rmsnorm_forward (X->h, X->rstd, X->x_in, ly->norm->data, c->layer_norm_epsilon, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  sutra_linear_forward (ly->proj[P_IN], X->xz, X->h, N, &X->saved[P_IN], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  float *win = state, *ssm = state ? state + (size_t) (K - 1) * I : NULL;
  ConvJob cj = { .xz = X->xz, .w = ly->conv_w->data, .bias = ly->conv_b ? ly->conv_b->data : NULL,
                 .win = win, .out = X->xc, .seg = seg, .B = B, .T = T, .I = I, .K = K,
                 .ldx = 2 * I };
  sutra_parallel_for (I, channel_grain (I, N), conv_forward_range, &cj);
  if (win) {   /* the window keeps the last K-1 inputs (B = 1) */
    for (int k = 0; k < K - 1; k++) {
      int src = N - (K - 1) + k;                     /* position in this chunk, < 0: old window */
      if (src < 0)
        memmove (win + (size_t) k * I, win + (size_t) (k + N) * I, sizeof (float) * (size_t) I);
      else
        memcpy (win + (size_t) k * I, X->xz + (size_t) src * 2 * I, sizeof (float) * (size_t) I);
    }
  }
  sutra_model_prof (m, SUTRA_PROF_RECURRENCE, &t0);
  sutra_rnn_silu (X->u, X->xc, (int64_t) N * I);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  sutra_linear_forward (ly->proj[P_X], X->dbc, X->u, N, &X->saved[P_X], rng);
  for (int n = 0; n < N; n++)
    memcpy (X->dtr + (size_t) n * R, X->dbc + (size_t) n * ldb, sizeof (float) * (size_t) R);
  sutra_linear_forward (ly->proj[P_DT], X->dtp, X->dtr, N, &X->saved[P_DT], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  sutra_rnn_softplus (X->delta, X->dtp, (int64_t) N * I);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  ScanJob sj = { .a = { .u = X->u, .delta = X->delta, .dbc = X->dbc, .ldb = ldb, .R = R, .At = A,
                       .D = ly->D->data, .y = X->y, .state = ssm, .seg = seg, .B = B, .T = T,
                       .I = I, .S = S } };
  sutra_parallel_for (I, channel_grain (I, N), scan_forward_range, &sj);
  sutra_model_prof (m, SUTRA_PROF_RECURRENCE, &t0);
  sutra_rnn_gate (X->g, X->y, X->xz + I, N, I, 2 * I);         /* g = y * silu(z) */
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  sutra_linear_forward (ly->proj[P_OUT], x_out, X->g, N, &X->saved[P_OUT], rng);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  sutra_add_forward (x_out, x_out, X->x_in, (int64_t) N * C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
}

static SutraStatus
mamba_forward (SutraModel *m, const SutraBatch *b, bool for_backward, float **logits,
               SutraError *err)
{
  Mamba *M = MB (m);
  const SutraModelConfig *c = &m->cfg;
  SutraStatus st = mamba_reserve (m, b->B, b->T, for_backward, err);
  if (st)
    return st;
  int N = b->B * b->T, C = c->hidden_size, L = c->n_layers;
  size_t IS = (size_t) c->intermediate_mamba * c->state_size;
  bool ckpt = m->grad_checkpointing && for_backward;
  uint64_t *rng = for_backward && m->train_mode == SUTRA_TRAIN_LORA ? &m->dropout_rng : NULL;
  double t0 = sutra_model_prof_start (m);
  sutra_rnn_segments (M->seg, b->doc, b->B, b->T);
  a_table (m, M->A);
  float *x0 = for_backward ? M->acts[0].x_in : M->work.x_in;
  st = sutra_embedding_forward (x0, b->ids, M->embed->data, N, c->vocab_size, C, err);
  if (st)
    return st;
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  for (int i = 0; i < L; i++) {
    Acts *X;
    float *x_out;
    if (!for_backward) {
      X = &M->work;
      x_out = M->x_out;
    } else {
      X = ckpt ? &M->work : &M->acts[i];
      if (ckpt && X->x_in != M->acts[i].x_in)
        memcpy (X->x_in, M->acts[i].x_in, sizeof (float) * (size_t) N * C);
      x_out = i + 1 < L ? M->acts[i + 1].x_in : M->x_out;
    }
    if (ckpt)
      M->acts[i].rng_at_start = rng ? *rng : 0;
    layer_forward (m, i, X, x_out, b->B, b->T, M->seg, rng, M->A + i * IS, NULL);
    if (!for_backward && i + 1 < L)
      memcpy (M->work.x_in, M->x_out, sizeof (float) * (size_t) N * C);
  }
  t0 = sutra_model_prof_start (m);
  sutra_rmsnorm_forward (M->hf, M->rstdf, M->x_out, M->norm_f->data, c->layer_norm_epsilon, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  sutra_linear_forward (M->lm_head, M->logits, M->hf, N, NULL, NULL);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  if (for_backward) {
    M->lastB = b->B;
    M->lastT = b->T;
    M->last_ids = sutra_xrealloc (M->last_ids, sizeof (int) * (size_t) N);
    memcpy (M->last_ids, b->ids, sizeof (int) * (size_t) N);
  }
  *logits = M->logits;
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* backward                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static float *grad_of (SutraParam *p) { return p ? p->grad : NULL; }

/* dx holds d x_out on entry and d x_in on return. */
static void
layer_backward (SutraModel *m, int li, Acts *X, float *dx, int B, int T, const int *seg,
                const float *A)
{
  Mamba *M = MB (m);
  const SutraModelConfig *c = &m->cfg;
  Layer *ly = &M->layers[li];
  int N = B * T, C = c->hidden_size, I = c->intermediate_mamba, S = c->state_size;
  int R = c->time_step_rank, K = c->conv_kernel, ldb = R + 2 * S;
  size_t NI = (size_t) N * I;
  double t0 = sutra_model_prof_start (m);
  /* out_proj and the gate */
  float *dg = M->dI1;
  memset (dg, 0, sizeof (float) * NI);
  sutra_linear_backward (ly->proj[P_OUT], dg, dx, X->g, N, &X->saved[P_OUT], M->lscratch);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  float *dy = M->dI2;   /* dy = dg silu(z); dz into the z half of dxz */
  sutra_rnn_gate_backward (dy, M->dxz + I, dg, X->y, X->xz + I, N, I, 2 * I);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  /* the scan: du [N, I] (into dI1, dg is consumed) and d delta, written over dy in place (each
   * (n, c) reads its dy before writing its d delta) */
  float *du = M->dI1;
  memset (du, 0, sizeof (float) * NI);
  int threads = sutra_get_threads ();
  size_t per = (size_t) N * 2 * S * SUTRA_SCAN_LANES, pn = (size_t) threads * per;
  if (pn > M->partials_cap) {
    sutra_aligned_free (M->partials);
    M->partials = sutra_try_alloc (sizeof (float) * pn, "scan partials", NULL);
    SUTRA_ASSERT (M->partials);
    M->partials_cap = pn;
  }
  memset (M->partials, 0, sizeof (float) * pn);
  float *dAv = ly->A_log->grad ? sutra_thread_scratch (5, (size_t) I * S) : NULL;
  if (dAv)
    memset (dAv, 0, sizeof (float) * (size_t) I * S);
  ScanJob sj = { .a = { .u = X->u, .delta = X->delta, .dbc = X->dbc, .ldb = ldb, .R = R, .At = A,
                        .D = ly->D->data, .gy = dy, .du = du, .ddelta = dy, .dA = dAv,
                        .dD = grad_of (ly->D), .seg = seg, .B = B, .T = T, .I = I, .S = S },
                 .partials = M->partials, .per_thread = per };
  sutra_parallel_for (I, channel_grain (I, N), scan_backward_range, &sj);
  if (dAv)   /* A = -exp(A_log): d A_log = dA * A */
    for (int ch = 0; ch < I; ch++)
      for (int k = 0; k < S; k++)
        ly->A_log->grad[(size_t) ch * S + k] += dAv[(size_t) ch * S + k] * A[(size_t) k * I + ch];
  /* ddbc = [d dt_r (below) | dB | dC summed over threads and lanes] */
  memset (M->ddbc, 0, sizeof (float) * (size_t) N * ldb);
  for (int t = 0; t < threads; t++) {
    const float *p = M->partials + (size_t) t * per;
    for (int n = 0; n < N; n++)
      for (int k = 0; k < 2 * S; k++) {
        const float *q = p + ((size_t) n * 2 * S + k) * SUTRA_SCAN_LANES;
        float sum = 0.f;
        for (int l = 0; l < SUTRA_SCAN_LANES; l++)
          sum += q[l];
        M->ddbc[(size_t) n * ldb + R + k] += sum;
      }
  }
  sutra_model_prof (m, SUTRA_PROF_RECURRENCE, &t0);
  /* softplus and dt_proj */
  float *ddtp = M->dI2;                              /* in place: d delta -> d dtp */
  sutra_rnn_softplus_backward (ddtp, X->dtp, (int64_t) NI);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  memset (M->ddtr, 0, sizeof (float) * (size_t) N * R);
  sutra_linear_backward (ly->proj[P_DT], M->ddtr, ddtp, X->dtr, N, &X->saved[P_DT], M->lscratch);
  for (int n = 0; n < N; n++)
    memcpy (M->ddbc + (size_t) n * ldb, M->ddtr + (size_t) n * R, sizeof (float) * (size_t) R);
  /* x_proj: du += */
  sutra_linear_backward (ly->proj[P_X], du, M->ddbc, X->u, N, &X->saved[P_X], M->lscratch);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  sutra_rnn_silu_backward (du, X->xc, (int64_t) NI);   /* dxc = du silu'(xc), in place */
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  /* conv: dxs into the x half of dxz */
  for (int n = 0; n < N; n++)
    memset (M->dxz + (size_t) n * 2 * I, 0, sizeof (float) * (size_t) I);
  ConvJob cj = { .xz = X->xz, .w = ly->conv_w->data, .dout = du, .dxz = M->dxz,
                 .dw = grad_of (ly->conv_w), .db = grad_of (ly->conv_b), .seg = seg, .B = B,
                 .T = T, .I = I, .K = K, .ldx = 2 * I };
  sutra_parallel_for (I, channel_grain (I, N), conv_backward_range, &cj);
  sutra_model_prof (m, SUTRA_PROF_RECURRENCE, &t0);
  memset (M->dh, 0, sizeof (float) * (size_t) N * C);
  sutra_linear_backward (ly->proj[P_IN], M->dh, M->dxz, X->h, N, &X->saved[P_IN], M->lscratch);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  sutra_rmsnorm_backward (dx, grad_of (ly->norm), M->dh, X->x_in, ly->norm->data, X->rstd, N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
}

static SutraStatus
mamba_backward (SutraModel *m, const float *dlogits, SutraError *err)
{
  Mamba *M = MB (m);
  const SutraModelConfig *c = &m->cfg;
  if (!M->cap_bwd || !M->acts)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "backward without a training forward");
  int B = M->lastB, T = M->lastT, N = B * T, C = c->hidden_size;
  size_t NC = (size_t) N * C, IS = (size_t) c->intermediate_mamba * c->state_size;
  double t0 = sutra_model_prof_start (m);
  memset (M->dh, 0, sizeof (float) * NC);
  sutra_linear_backward (M->lm_head, M->dh, dlogits, M->hf, N, NULL, NULL);
  sutra_model_prof (m, SUTRA_PROF_MATMUL, &t0);
  memset (M->dx, 0, sizeof (float) * NC);
  sutra_rmsnorm_backward (M->dx, grad_of (M->norm_f), M->dh, M->x_out, M->norm_f->data, M->rstdf,
                          N, C);
  sutra_model_prof (m, SUTRA_PROF_NORM, &t0);
  for (int i = c->n_layers - 1; i >= 0; i--) {
    Acts *X = &M->acts[i];
    if (m->grad_checkpointing) {
      Acts *W = &M->work;
      memcpy (W->x_in, X->x_in, sizeof (float) * NC);
      uint64_t rng = X->rng_at_start;
      layer_forward (m, i, W, M->dh, B, T, M->seg, m->train_mode == SUTRA_TRAIN_LORA ? &rng : NULL,
                     M->A + i * IS, NULL);
      X = W;
    }
    layer_backward (m, i, X, M->dx, B, T, M->seg, M->A + i * IS);
  }
  t0 = sutra_model_prof_start (m);
  if (M->embed->grad)
    sutra_embedding_backward (M->embed->grad, M->dx, M->last_ids, N, C);
  sutra_model_prof (m, SUTRA_PROF_OTHER, &t0);
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* generation: conv window + scan state                                                       */
/* ------------------------------------------------------------------------------------------ */

struct SutraGenState {
  SutraModel *m;
  int pos;
  size_t per_layer;               /* (K-1) I + I S floats */
  float *state;                   /* [L][window (K-1, I) | ssm (I, S)] */
  float *A;                       /* [L][S, I] (a_table) */
  Acts work;
  float *x_out, *hf, *rstd;
  int *seg;
  SutraArena arena;
};

static void
mamba_state_reset (SutraGenState *s)
{
  memset (s->state, 0, sizeof (float) * s->per_layer * (size_t) s->m->cfg.n_layers);
  s->pos = 0;
}

static SutraStatus
mamba_state_new (SutraModel *m, int max_ctx, SutraGenState **out, SutraError *err)
{
  const SutraModelConfig *c = &m->cfg;
  (void) max_ctx;                 /* no context limit */
  SutraGenState *s = sutra_xcalloc (1, sizeof *s);
  s->m = m;
  size_t C = c->hidden_size, I = c->intermediate_mamba, S = c->state_size, n = STEP_CHUNK;
  s->per_layer = (size_t) (c->conv_kernel - 1) * I + I * S;
  size_t L = c->n_layers;
  size_t bytes = sizeof (float) * (L * s->per_layer + L * I * S + 2 * n * C + n) +
                 acts_bytes (c, n, 0, true) + sizeof (int) * n + 64 * 8;
  SutraStatus st = sutra_arena_init (&s->arena, bytes, "recurrent state", err);
  if (st) {
    free (s);
    return st;
  }
  SutraArena *a = &s->arena;
  s->state = sutra_arena_floats (a, L * s->per_layer);
  s->A = sutra_arena_floats (a, L * I * S);
  carve_acts (a, &s->work, NULL, c, n, true);
  s->x_out = sutra_arena_floats (a, n * C);
  s->hf = sutra_arena_floats (a, n * C);
  s->rstd = sutra_arena_floats (a, n);
  s->seg = sutra_arena_alloc (a, sizeof (int) * n);
  mamba_state_reset (s);
  *out = s;
  return SUTRA_OK;
}

static void
mamba_state_free (SutraGenState *s)
{
  if (!s)
    return;
  sutra_arena_clear (&s->arena);
  free (s);
}

static int mamba_state_pos (const SutraGenState *s) { return s->pos; }
static size_t mamba_state_bytes (const SutraGenState *s) { return s->arena.size; }

static SutraStatus
step_chunk (SutraModel *m, SutraGenState *s, const int *ids, int n, float *logits, bool all_logits,
            SutraError *err)
{
  Mamba *M = MB (m);
  const SutraModelConfig *c = &m->cfg;
  int C = c->hidden_size;
  size_t IS = (size_t) c->intermediate_mamba * c->state_size;
  SutraStatus st = sutra_embedding_forward (s->work.x_in, ids, M->embed->data, n, c->vocab_size, C,
                                            err);
  if (st)
    return st;
  memset (s->seg, 0, sizeof (int) * (size_t) n);
  for (int i = 0; i < c->n_layers; i++) {
    layer_forward (m, i, &s->work, s->x_out, 1, n, s->seg, NULL, s->A + i * IS,
                   s->state + (size_t) i * s->per_layer);
    memcpy (s->work.x_in, s->x_out, sizeof (float) * (size_t) n * C);
  }
  s->pos += n;
  if (all_logits) {
    sutra_rmsnorm_forward (s->hf, s->rstd, s->work.x_in, M->norm_f->data, c->layer_norm_epsilon, n, C);
    sutra_linear_forward (M->lm_head, logits, s->hf, n, NULL, NULL);
  } else if (logits) {
    sutra_rmsnorm_forward (s->hf, s->rstd, s->work.x_in + (size_t) (n - 1) * C, M->norm_f->data,
                           c->layer_norm_epsilon, 1, C);
    sutra_linear_forward (M->lm_head, logits, s->hf, 1, NULL, NULL);
  }
  return SUTRA_OK;
}

static SutraStatus
mamba_step (SutraModel *m, SutraGenState *s, const int *ids, int n, float *logits, bool all_logits,
            SutraError *err)
{
  if (n <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "no tokens to feed");
  a_table (m, s->A);
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

const SutraModelVTable sutra_mamba_vtable = {
  .arch_name = "mamba",
  .load = mamba_load,
  .free_impl = mamba_free_impl,
  .reserve = mamba_reserve,
  .forward = mamba_forward,
  .backward = mamba_backward,
  .state_new = mamba_state_new,
  .state_free = mamba_state_free,
  .state_reset = mamba_state_reset,
  .state_bytes = mamba_state_bytes,
  .state_pos = mamba_state_pos,
  .step = mamba_step,
  .activation_bytes = mamba_activation_bytes,
};
