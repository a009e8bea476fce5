/* sutra-optim.c: AdamW, Adam, SGD, clipping and learning-rate schedules. */
#include "sutra-optim.h"
#include "sutra-pool.h"

#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct SutraOptimizer {
  SutraOptConfig cfg;
  SutraOptTensor *t;
  size_t n;
  float **m, **v;     /* [n] state buffers (v only for Adam kinds) */
  int64_t step;
  bool momentum_started;
  struct OptChunk *ch;  /* the update's work list (opt_chunks over t), built once */
  int64_t nch;
};

static const char *opt_names[] = { "adamw", "adam", "sgd" };
static const char *sched_names[] = { "constant", "linear", "cosine", "cosine_with_restarts" };

/* Element-wise work (the optimizer update, the gradient norm and clipping) runs on the pool over
 * chunks of OPT_CHUNK elements of each tensor. The chunks do not depend on the thread count, and
 * the norm's partial sums are added in chunk order, so results are the same for any number of
 * threads (checkpoints resume exactly on another machine). */
#define OPT_CHUNK 32768

typedef struct OptChunk { uint32_t tensor; size_t j0, j1; } OptChunk;

static OptChunk *
opt_chunks (const SutraOptTensor *t, size_t n, int64_t *count)
{
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += (t[i].n + OPT_CHUNK - 1) / OPT_CHUNK;
  OptChunk *ch = sutra_xmalloc (sizeof *ch * (c ? c : 1));
  c = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < t[i].n; j += OPT_CHUNK)
      ch[c++] = (OptChunk) { (uint32_t) i, j, j + OPT_CHUNK < t[i].n ? j + OPT_CHUNK : t[i].n };
  *count = (int64_t) c;
  return ch;
}

bool
sutra_opt_kind_from_name (const char *name, SutraOptKind *out)
{
  for (int i = 0; i < 3; i++)
    if (!strcmp (name, opt_names[i])) {
      *out = (SutraOptKind) i;
      return true;
    }
  return false;
}

const char *sutra_opt_kind_name (SutraOptKind k) { return opt_names[k]; }

bool
sutra_sched_kind_from_name (const char *name, SutraSchedKind *out)
{
  for (int i = 0; i < 4; i++)
    if (!strcmp (name, sched_names[i])) {
      *out = (SutraSchedKind) i;
      return true;
    }
  if (!strcmp (name, "constant_with_warmup")) {
    *out = SUTRA_SCHED_CONSTANT;
    return true;
  }
  return false;
}

const char *sutra_sched_kind_name (SutraSchedKind k) { return sched_names[k]; }

SutraStatus
sutra_optimizer_new (const SutraOptConfig *cfg, const SutraOptTensor *t, size_t n,
                     SutraOptimizer **out, SutraError *err)
{
  SutraOptimizer *o = sutra_xcalloc (1, sizeof *o);
  o->cfg = *cfg;
  o->n = n;
  o->t = sutra_xcalloc (n ? n : 1, sizeof *o->t);
  memcpy (o->t, t, n * sizeof *t);
  o->ch = opt_chunks (o->t, n, &o->nch);
  o->m = sutra_xcalloc (n ? n : 1, sizeof (float *));
  o->v = sutra_xcalloc (n ? n : 1, sizeof (float *));
  bool adam = cfg->kind != SUTRA_OPT_SGD;
  bool need_m = adam || cfg->momentum != 0;
  for (size_t i = 0; i < n; i++) {
    if (need_m && !(o->m[i] = sutra_try_alloc (t[i].n * sizeof (float), "optimizer state", err)))
      goto nomem;
    if (adam && !(o->v[i] = sutra_try_alloc (t[i].n * sizeof (float), "optimizer state", err)))
      goto nomem;
  }
  *out = o;
  return SUTRA_OK;
nomem:
  sutra_optimizer_free (o);
  return SUTRA_ERR_NOMEM;
}

void
sutra_optimizer_free (SutraOptimizer *o)
{
  if (!o)
    return;
  for (size_t i = 0; i < o->n; i++) {
    sutra_aligned_free (o->m[i]);
    sutra_aligned_free (o->v[i]);
  }
  free (o->m);
  free (o->v);
  free (o->t);
  free (o->ch);
  free (o);
}

typedef struct {
  SutraOptimizer *o;
  const OptChunk *ch;
  double lr, step_size, bc2_sqrt;
  bool first;
} StepJob;

static void
sgd_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  const StepJob *jb = ctx;
  SutraOptimizer *o = jb->o;
  const SutraOptConfig *c = &o->cfg;
  double lr = jb->lr;
  (void) ti;
  for (int64_t k = c0; k < c1; k++) {
    size_t i = jb->ch[k].tensor;
    float *p = o->t[i].data, *g = o->t[i].grad, *buf = o->m[i];
    double wd = o->t[i].decay ? c->weight_decay : 0;
    for (size_t j = jb->ch[k].j0; j < jb->ch[k].j1; j++) {
      double d = (double) g[j] + wd * p[j];
      if (buf) {
        double bv = jb->first ? d : c->momentum * buf[j] + d;
        buf[j] = (float) bv;
        d = c->nesterov ? d + c->momentum * bv : bv;
      }
      p[j] = (float) (p[j] - lr * d);
    }
  }
}

static void
adam_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  const StepJob *jb = ctx;
  SutraOptimizer *o = jb->o;
  const SutraOptConfig *c = &o->cfg;
  double b1 = c->beta1, b2 = c->beta2, lr = jb->lr;
  double step_size = jb->step_size, bc2_sqrt = jb->bc2_sqrt;
  bool decoupled = c->kind == SUTRA_OPT_ADAMW;
  (void) ti;
  for (int64_t k = c0; k < c1; k++) {
    size_t i = jb->ch[k].tensor;
    float *p = o->t[i].data, *g = o->t[i].grad, *m = o->m[i], *v = o->v[i];
    double wd = o->t[i].decay ? c->weight_decay : 0;
    double decay = decoupled ? 1.0 - lr * wd : 1.0;
    for (size_t j = jb->ch[k].j0; j < jb->ch[k].j1; j++) {
      double pj = p[j];
      double gj = decoupled ? g[j] : g[j] + wd * pj;
      pj *= decay;
      double mj = b1 * m[j] + (1 - b1) * gj;
      double vj = b2 * v[j] + (1 - b2) * gj * gj;
      m[j] = (float) mj;
      v[j] = (float) vj;
      pj -= step_size * mj / (sqrt (vj) / bc2_sqrt + c->eps);
      p[j] = (float) pj;
    }
  }
}

void
sutra_optimizer_step (SutraOptimizer *o, double lr)
{
  const SutraOptConfig *c = &o->cfg;
  o->step++;
  StepJob jb = { .o = o, .ch = o->ch, .lr = lr, .first = o->step == 1 };
  if (c->kind == SUTRA_OPT_SGD) {
    sutra_parallel_for (o->nch, 1, sgd_range, &jb);
  } else {
    double bc1 = 1.0 - pow (c->beta1, (double) o->step), bc2 = 1.0 - pow (c->beta2, (double) o->step);
    jb.step_size = lr / bc1;
    jb.bc2_sqrt = sqrt (bc2);
    sutra_parallel_for (o->nch, 1, adam_range, &jb);
  }
}

int64_t sutra_optimizer_steps_done (const SutraOptimizer *o) { return o->step; }
void sutra_optimizer_set_steps_done (SutraOptimizer *o, int64_t t) { o->step = t; }

int
sutra_optimizer_slots (const SutraOptimizer *o)
{
  if (o->cfg.kind == SUTRA_OPT_SGD)
    return o->cfg.momentum != 0 ? 1 : 0;
  return 2;
}

float *
sutra_optimizer_state (SutraOptimizer *o, size_t i, int slot)
{
  if (i >= o->n)
    return NULL;
  return slot == 0 ? o->m[i] : slot == 1 ? o->v[i] : NULL;
}

const char *
sutra_optimizer_slot_name (const SutraOptimizer *o, int slot)
{
  if (o->cfg.kind == SUTRA_OPT_SGD)
    return slot == 0 ? "momentum_buffer" : NULL;
  return slot == 0 ? "exp_avg" : slot == 1 ? "exp_avg_sq" : NULL;
}

typedef struct {
  const SutraOptTensor *t;
  const OptChunk *ch;
  double *partial;    /* [chunks] sums of squares */
  double coef;
} NormJob;

static void
sumsq_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  NormJob *jb = ctx;
  (void) ti;
  for (int64_t k = c0; k < c1; k++) {
    const float *g = jb->t[jb->ch[k].tensor].grad;
    double s = 0;
    for (size_t j = jb->ch[k].j0; j < jb->ch[k].j1; j++)
      s += (double) g[j] * g[j];
    jb->partial[k] = s;
  }
}

static void
scale_range (void *ctx, int64_t c0, int64_t c1, int ti)
{
  NormJob *jb = ctx;
  double coef = jb->coef;
  (void) ti;
  for (int64_t k = c0; k < c1; k++) {
    float *g = jb->t[jb->ch[k].tensor].grad;
    for (size_t j = jb->ch[k].j0; j < jb->ch[k].j1; j++)
      g[j] = (float) (g[j] * coef);
  }
}

double
sutra_clip_grad_norm (const SutraOptTensor *t, size_t n, double max_norm)
{
  int64_t nch;
  OptChunk *ch = opt_chunks (t, n, &nch);
  NormJob jb = { t, ch, sutra_xmalloc (sizeof (double) * (size_t) (nch ? nch : 1)), 1.0 };
  sutra_parallel_for (nch, 1, sumsq_range, &jb);
  double sumsq = 0;
  for (int64_t k = 0; k < nch; k++)      /* chunk order: the same sum for any thread count */
    sumsq += jb.partial[k];
  double norm = sqrt (sumsq);
  if (max_norm > 0) {
    /* torch: clip_coef = max_norm / (total_norm + 1e-6), applied when < 1 */
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
      jb.coef = coef;
      sutra_parallel_for (nch, 1, scale_range, &jb);
    }
  }
  free (jb.partial);
  free (ch);
  return norm;
}

double
sutra_grad_global_norm (const SutraOptTensor *t, size_t n)
{
  return sutra_clip_grad_norm (t, n, 0);   /* max_norm 0: measure only */
}

double
sutra_schedule_lr (SutraSchedKind k, double base, int64_t step, int64_t warmup, int64_t total,
                   int cycles)
{
  if (step < warmup)
    return base * (double) step / (double) (warmup > 1 ? warmup : 1);
  switch (k) {
  case SUTRA_SCHED_CONSTANT:
    return base;
  case SUTRA_SCHED_LINEAR: {
    double f = (double) (total - step) / (double) (total - warmup > 1 ? total - warmup : 1);
    return base * (f > 0 ? f : 0);
  }
  case SUTRA_SCHED_COSINE: {
    double progress = (double) (step - warmup) / (double) (total - warmup > 1 ? total - warmup : 1);
    double f = 0.5 * (1.0 + cos (M_PI * 0.5 * 2.0 * progress));   /* num_cycles = 0.5 */
    return base * (f > 0 ? f : 0);
  }
  case SUTRA_SCHED_COSINE_RESTARTS: {
    double progress = (double) (step - warmup) / (double) (total - warmup > 1 ? total - warmup : 1);
    if (progress >= 1.0)
      return 0.0;
    double c = (double) (cycles > 0 ? cycles : 1) * progress;
    return base * 0.5 * (1.0 + cos (M_PI * (c - floor (c))));
  }
  }
  return base;
}
