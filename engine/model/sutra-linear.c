/* sutra-linear.c: linear layer forward/backward with an optional LoRA adapter and an f32 or
 * packed base weight.
 *
 * LoRA (Hu et al. 2021) as PEFT computes it:
 *   y = x W^T + b + scale * (dropout(x) A^T) B^T,   scale = alpha / r
 * Backward (W frozen):  with u = dropout(x) A^T [N, r] and g = dout [N, out],
 *   dB += scale * g^T u         [out, r]
 *   du  = scale * g B           [N, r]
 *   dA += du^T dropout(x)       [r, in]
 *   dx += g W + (du A) * mask / (1 - p) */
#include "sutra-linear.h"
#include "sutra-halfmat.h"
#include "sutra-ops.h"
#include "sutra-pool.h"
#include "sutra-rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void
sutra_linear_clear (SutraLinear *l)
{
  if (!l)
    return;
  if (l->w_owned)
    sutra_aligned_free (l->w);
  if (l->w16_owned)
    sutra_aligned_free ((void *) l->w16);
  if (l->bias_owned)
    sutra_aligned_free (l->bias);
  sutra_qweight_free (l->qw);
  if (!l->dw_shared)
    sutra_aligned_free (l->dw);
  sutra_aligned_free (l->dbias);
  sutra_linear_detach_lora (l);
  free (l->name);
  memset (l, 0, sizeof *l);
}

static void
base_forward (SutraLinear *l, float *out, const float *x, int N)
{
  if (l->qw || l->w16) {
    if (l->bias)
      for (int n = 0; n < N; n++)
        memcpy (out + (size_t) n * l->out, l->bias, sizeof (float) * (size_t) l->out);
    if (l->qw)
      sutra_qweight_matmul (l->qw, x, out, N, l->bias != NULL);
    else
      sutra_half_matmul (l->w16, l->w16_type, x, out, N, l->out, l->in, l->bias != NULL);
  } else {
    sutra_dense_forward (out, x, l->w, l->bias, N, l->in, l->out);
  }
}

/* out += scale * dropout(x) A^T B^T (when an enabled adapter is attached) */
static void
lora_forward (SutraLinear *l, float *out, const float *x, int N, SutraLinearSaved *saved,
              uint64_t *rng)
{
  SutraLora *a = l->lora;
  if (!a || !a->enabled)
    return;
  int r = a->r;
  const float *xin = x;
  if (a->dropout > 0.f && rng && saved && saved->xd && saved->mask) {
    /* inverted dropout: keep with probability 1 - p, scale kept values by 1 / (1 - p) */
    float keep = 1.f - a->dropout, inv = 1.f / keep;
    uint64_t thresh = (uint64_t) ((double) keep * 18446744073709551615.0);
    size_t n = (size_t) N * l->in;
    for (size_t i = 0; i < n; i++) {
      saved->mask[i] = sutra_xorshift64s (rng) < thresh;
      saved->xd[i] = saved->mask[i] ? x[i] * inv : 0.f;
    }
    xin = saved->xd;
    saved->dropped = true;
  } else if (saved) {
    saved->dropped = false;    /* no dropout this call: backward uses x itself */
  }
  /* u [N, r] = xin A^T, kept for backward */
  float *u = saved ? saved->xa : NULL;
  float local[64];
  float *tmp = NULL;
  if (!u) {
    size_t need = (size_t) N * r;
    u = need <= 64 ? local : (tmp = sutra_xmalloc (sizeof (float) * need));
  }
  sutra_sgemm (false, true, N, r, l->in, 1.f, xin, l->in, a->A, l->in, 0.f, u, r);
  /* out += scale * u B^T */
  sutra_sgemm (false, true, N, l->out, r, a->scale, u, r, a->B, r, 1.f, out, l->out);
  free (tmp);
}

void
sutra_linear_forward (SutraLinear *l, float *out, const float *x, int N, SutraLinearSaved *saved,
                      uint64_t *rng)
{
  if (l->observer)
    l->observer (l->observer_data, l, x, N);
  base_forward (l, out, x, N);
  lora_forward (l, out, x, N, saved, rng);
}

/* ---- several linears on one input, one token: one parallel_for over all their rows ---- */

#define MANY_MAX 8

typedef struct {
  SutraLinear *const *ls;
  float *const *outs;
  const float *xin[MANY_MAX];    /* what each base kernel reads: x, or its prepared quant input */
  int64_t start[MANY_MAX + 1];   /* first row of linear i in the joint row space */
  int count;
} ManyJob;

static void
many_range (void *ctx, int64_t b, int64_t e, int ti)
{
  const ManyJob *j = ctx;
  (void) ti;
  for (int i = 0; i < j->count; i++) {
    int64_t lo = b > j->start[i] ? b : j->start[i], hi = e < j->start[i + 1] ? e : j->start[i + 1];
    if (lo >= hi)
      continue;
    SutraLinear *l = j->ls[i];
    int r0 = (int) (lo - j->start[i]), r1 = (int) (hi - j->start[i]);
    bool acc = l->bias != NULL;          /* the bias was copied into the output first */
    if (l->qw)
      sutra_qweight_matvec_rows (l->qw, j->xin[i], j->outs[i], r0, r1, acc);
    else if (l->w16)
      sutra_half_matvec_rows (l->w16, l->w16_type, j->xin[i], j->outs[i], r0, r1, l->in, acc);
    else
      sutra_sgemv_rows (j->outs[i], l->w, j->xin[i], r0, r1, l->in, acc);
  }
}

void
sutra_linear_forward_many (SutraLinear *const *ls, float *const *outs, int count, const float *x,
                           int N)
{
  if (N != 1 || count > MANY_MAX || count < 2) {
    for (int i = 0; i < count; i++)
      sutra_linear_forward (ls[i], outs[i], x, N, NULL, NULL);
    return;
  }
  ManyJob j = { .ls = ls, .outs = outs, .count = count };
  size_t xfloats = 0;
  for (int i = 0; i < count; i++) {
    SUTRA_ASSERT (ls[i]->in == ls[0]->in);
    if (ls[i]->qw)
      xfloats += sutra_qweight_matvec_xsize (ls[i]->qw) + 16;
  }
  float *xbuf = xfloats ? sutra_thread_scratch (5, xfloats) : NULL;
  j.start[0] = 0;
  for (int i = 0; i < count; i++) {
    SutraLinear *l = ls[i];
    if (l->observer)
      l->observer (l->observer_data, l, x, N);
    if (l->bias)
      memcpy (outs[i], l->bias, sizeof (float) * (size_t) l->out);
    if (l->qw) {
      int same = 0;                      /* an earlier linear whose prepared input fits this one */
      while (same < i && !(ls[same]->qw && sutra_qweight_matvec_same_input (ls[same]->qw, l->qw)))
        same++;
      if (same < i) {
        j.xin[i] = j.xin[same];
      } else {
        sutra_qweight_matvec_prepare (l->qw, x, xbuf);
        j.xin[i] = xbuf;
        xbuf += sutra_qweight_matvec_xsize (l->qw) + 16;
      }
    } else {
      j.xin[i] = x;
    }
    j.start[i + 1] = j.start[i] + l->out;
  }
  /* at least ~32k weights per thread, or the hand-off costs more than it saves */
  sutra_parallel_for (j.start[count], 4 + 32768 / ls[0]->in, many_range, &j);
  for (int i = 0; i < count; i++)
    lora_forward (ls[i], outs[i], x, N, NULL, NULL);
}

void
sutra_linear_backward (SutraLinear *l, float *dx, const float *dout, const float *x, int N,
                       const SutraLinearSaved *saved, float *scratch)
{
  SutraLora *a = l->lora;
  if (l->trainable) {
    /* full fine-tuning: dW += dout^T x, db += sum dout */
    SUTRA_ASSERT (l->w && l->dw);
    sutra_dense_backward (NULL, l->dw, l->bias ? l->dbias : NULL, dout, x, l->w, N, l->in, l->out);
  }
  if (dx) {
    if (l->qw)
      sutra_qweight_matmul_t (l->qw, dout, dx, N);
    else if (l->w16)
      sutra_half_matmul_t (l->w16, l->w16_type, dout, dx, N, l->out, l->in);
    else
      sutra_sgemm (false, false, N, l->in, l->out, 1.f, dout, l->out, l->w, l->in, 1.f, dx, l->in);
  }
  if (!a || !a->enabled)
    return;
  SUTRA_ASSERT (saved && saved->xa && scratch);
  int r = a->r;
  bool dropped = saved->dropped;
  const float *xin = dropped ? saved->xd : x;
  /* dB [out, r] += scale * dout^T u */
  sutra_sgemm (true, false, l->out, r, N, a->scale, dout, l->out, saved->xa, r, 1.f, a->dB, r);
  /* du [N, r] = scale * dout B */
  float *du = scratch;
  sutra_sgemm (false, false, N, r, l->out, a->scale, dout, l->out, a->B, r, 0.f, du, r);
  /* dA [r, in] += du^T xin */
  sutra_sgemm (true, false, r, l->in, N, 1.f, du, r, xin, l->in, 1.f, a->dA, l->in);
  if (dx) {
    if (dropped) {
      /* through the dropout mask: d xin = du A, then dx += d xin * mask / keep */
      float inv = 1.f / (1.f - a->dropout);
      float *dxin = scratch + (size_t) N * r;
      sutra_sgemm (false, false, N, l->in, r, 1.f, du, r, a->A, l->in, 0.f, dxin, l->in);
      size_t n = (size_t) N * l->in;
      for (size_t i = 0; i < n; i++)
        if (saved->mask[i])
          dx[i] += dxin[i] * inv;
    } else {
      sutra_sgemm (false, false, N, l->in, r, 1.f, du, r, a->A, l->in, 1.f, dx, l->in);
    }
  }
}

SutraStatus
sutra_linear_attach_lora (SutraLinear *l, int r, float alpha, float dropout, SutraError *err)
{
  if (r <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: LoRA rank must be positive, got %d",
                            l->name, r);
  sutra_linear_detach_lora (l);
  SutraLora *a = sutra_xcalloc (1, sizeof *a);
  size_t na = (size_t) r * l->in, nb = (size_t) l->out * r;
  float *buf = sutra_try_alloc (sizeof (float) * 2 * (na + nb), l->name, err);
  if (!buf) {
    free (a);
    return SUTRA_ERR_NOMEM;
  }
  a->r = r;
  a->alpha = alpha;
  a->scale = alpha / (float) r;
  a->dropout = dropout;
  a->A = buf;
  a->B = buf + na;
  a->dA = buf + na + nb;
  a->dB = buf + 2 * na + nb;
  a->enabled = true;
  l->lora = a;
  return SUTRA_OK;
}

void
sutra_linear_detach_lora (SutraLinear *l)
{
  if (l->lora) {
    sutra_aligned_free (l->lora->A);   /* one allocation holds A, B, dA, dB */
    free (l->lora);
    l->lora = NULL;
  }
}

/* drops a half base (freeing it when owned) */
static void
drop_w16 (SutraLinear *l)
{
  if (l->w16_owned)
    sutra_aligned_free ((void *) l->w16);
  l->w16 = NULL;
  l->w16_owned = false;
}

SutraStatus
sutra_linear_quantize (SutraLinear *l, const SutraQuantParams *p, SutraError *err)
{
  if (l->qw)
    return SUTRA_OK;
  const float *w = l->w;
  float *tmp = NULL;
  if (l->w16) {                  /* the quantizers read f32 rows */
    tmp = sutra_try_alloc (sizeof (float) * (size_t) l->out * l->in, l->name, err);
    if (!tmp)
      return SUTRA_ERR_NOMEM;
    sutra_half_to_f32_rows (l->w16, l->w16_type, l->in, 0, l->out, tmp);
    w = tmp;
  }
  SutraQWeight *q;
  SutraStatus st = sutra_qweight_quantize (w, l->out, l->in, p, &q, err);
  sutra_aligned_free (tmp);
  if (st) {
    sutra_error_prefix (err, "%s", l->name);
    return st;
  }
  if (l->w_owned)
    sutra_aligned_free (l->w);
  l->w = NULL;
  l->w_owned = false;
  drop_w16 (l);
  l->qw = q;
  return SUTRA_OK;
}

SutraStatus
sutra_linear_to_half (SutraLinear *l, SutraDType t, SutraError *err)
{
  if (t != SUTRA_F16 && t != SUTRA_BF16)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: a half base is F16 or BF16", l->name);
  if (l->qw)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: a packed base cannot become %s", l->name,
                            sutra_dtype_name (t));
  if (l->w16 && l->w16_type == t)
    return SUTRA_OK;
  size_t n = (size_t) l->out * l->in;
  uint16_t *h = sutra_try_alloc (n * sizeof (uint16_t), l->name, err);
  if (!h)
    return SUTRA_ERR_NOMEM;
  const float *w = l->w;
  float *tmp = NULL;
  if (l->w16) {
    tmp = sutra_try_alloc (n * sizeof (float), l->name, err);
    if (!tmp) {
      sutra_aligned_free (h);
      return SUTRA_ERR_NOMEM;
    }
    sutra_half_to_f32_rows (l->w16, l->w16_type, l->in, 0, l->out, tmp);
    w = tmp;
  }
  if (t == SUTRA_F16)
    sutra_f32_to_f16_n (h, w, n);
  else
    sutra_f32_to_bf16_n (h, w, n);
  sutra_aligned_free (tmp);
  if (l->w_owned)
    sutra_aligned_free (l->w);
  l->w = NULL;
  l->w_owned = false;
  drop_w16 (l);
  l->w16 = h;
  l->w16_type = t;
  l->w16_owned = true;
  return SUTRA_OK;
}

void
sutra_linear_base_rows (const SutraLinear *l, int row0, int nrows, float *dst)
{
  SUTRA_ASSERT (row0 >= 0 && nrows >= 0 && row0 + nrows <= l->out);
  if (l->qw)
    sutra_qweight_dequant_rows (l->qw, row0, nrows, dst);
  else if (l->w16)
    sutra_half_to_f32_rows (l->w16, l->w16_type, l->in, row0, nrows, dst);
  else
    memcpy (dst, l->w + (size_t) row0 * l->in, sizeof (float) * (size_t) nrows * l->in);
}

static SutraStatus
own_base (SutraLinear *l, SutraError *err)
{
  if (l->w && l->w_owned)
    return SUTRA_OK;
  size_t n = (size_t) l->out * l->in;
  float *w = sutra_try_alloc (n * sizeof (float), l->name, err);
  if (!w)
    return SUTRA_ERR_NOMEM;
  sutra_linear_base_rows (l, 0, l->out, w);
  sutra_qweight_free (l->qw);
  l->qw = NULL;
  drop_w16 (l);
  l->w = w;
  l->w_owned = true;
  return SUTRA_OK;
}

SutraStatus
sutra_linear_own_f32 (SutraLinear *l, SutraError *err)
{
  return own_base (l, err);
}

void
sutra_linear_set_f32_base (SutraLinear *l, float *w, bool owned)
{
  if (l->w_owned && l->w != w)
    sutra_aligned_free (l->w);
  sutra_qweight_free (l->qw);
  l->qw = NULL;
  drop_w16 (l);
  l->w = w;
  l->w_owned = owned;
}

SutraStatus
sutra_linear_make_trainable (SutraLinear *l, SutraError *err)
{
  SutraStatus st = own_base (l, err);
  if (st)
    return st;
  if (l->bias && !l->bias_owned) {
    float *b = sutra_try_alloc (sizeof (float) * (size_t) l->out, l->name, err);
    if (!b)
      return SUTRA_ERR_NOMEM;
    memcpy (b, l->bias, sizeof (float) * (size_t) l->out);
    l->bias = b;
    l->bias_owned = true;
  }
  if (!l->dw) {
    l->dw = sutra_try_alloc (sizeof (float) * (size_t) l->out * l->in, l->name, err);
    if (!l->dw)
      return SUTRA_ERR_NOMEM;
  }
  if (l->bias && !l->dbias) {
    l->dbias = sutra_try_alloc (sizeof (float) * (size_t) l->out, l->name, err);
    if (!l->dbias)
      return SUTRA_ERR_NOMEM;
  }
  l->trainable = true;
  return SUTRA_OK;
}

SutraStatus
sutra_linear_merge_lora (SutraLinear *l, SutraError *err)
{
  if (!l->lora)
    return SUTRA_OK;
  SutraStatus st = own_base (l, err);
  if (st)
    return st;
  /* W [out, in] += scale * B [out, r] A [r, in] */
  SutraLora *a = l->lora;
  sutra_sgemm (false, false, l->out, l->in, a->r, a->scale, a->B, a->r, a->A, l->in, 1.f, l->w,
               l->in);
  return SUTRA_OK;
}

size_t
sutra_linear_weight_bytes (const SutraLinear *l)
{
  if (l->qw)
    return sutra_qweight_bytes (l->qw);
  if (l->w16)
    return sizeof (uint16_t) * (size_t) l->in * l->out;
  return sizeof (float) * (size_t) l->in * l->out;
}

size_t
sutra_linear_saved_per_token (const SutraLinear *l)
{
  if (!l->lora)
    return 0;
  size_t n = (size_t) l->lora->r + 16;
  if (l->lora->dropout > 0.f)
    n += (size_t) l->in + (size_t) l->in / 4 + 16;   /* xd floats + mask bytes */
  return n;
}

void
sutra_linear_saved_carve (SutraLinearSaved *s, const SutraLinear *l, SutraArena *a, size_t N)
{
  memset (s, 0, sizeof *s);
  if (!l->lora)
    return;
  s->xa = sutra_arena_floats (a, N * (size_t) l->lora->r);
  if (l->lora->dropout > 0.f) {
    s->xd = sutra_arena_floats (a, N * (size_t) l->in);
    s->mask = sutra_arena_alloc (a, N * (size_t) l->in);
  }
}
