/* sutra-optim.h: optimizers as torch.optim computes them, schedules as transformers'
 * get_*_schedule_with_warmup, and global-norm gradient clipping (clip_grad_norm_).
 *
 *   AdamW (Loshchilov & Hutter): p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *          p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *   Adam:  as AdamW with g += wd*p instead of the decoupled decay (L2)
 *   SGD:   g += wd*p; buf = momentum buf + g (buf = g at the first step; no dampening);
 *          g = nesterov ? g + momentum buf : buf; p -= lr g
 * The optimizer works on a list of (data, grad, n) tensors and owns its state buffers
 * (allocated once, exposed for checkpoints). */
#pragma once
#include "sutra-error.h"

typedef enum { SUTRA_OPT_ADAMW, SUTRA_OPT_ADAM, SUTRA_OPT_SGD } SutraOptKind;
typedef enum { SUTRA_SCHED_CONSTANT, SUTRA_SCHED_LINEAR, SUTRA_SCHED_COSINE,
               SUTRA_SCHED_COSINE_RESTARTS } SutraSchedKind;

typedef struct {
  SutraOptKind kind;
  double lr, beta1, beta2, eps, weight_decay, momentum;
  bool nesterov;
} SutraOptConfig;

typedef struct {
  const char *name;   /* for checkpoints ("<name>.exp_avg") */
  float *data;
  float *grad;
  size_t n;
  bool decay;         /* weight decay applies (false for norms/biases when asked) */
} SutraOptTensor;

typedef struct SutraOptimizer SutraOptimizer;

bool        sutra_opt_kind_from_name (const char *name, SutraOptKind *out);
const char *sutra_opt_kind_name (SutraOptKind k);
bool        sutra_sched_kind_from_name (const char *name, SutraSchedKind *out);
const char *sutra_sched_kind_name (SutraSchedKind k);

/* The tensor list is copied (not the data). State buffers are allocated here. */
SutraStatus sutra_optimizer_new  (const SutraOptConfig *cfg, const SutraOptTensor *t, size_t n,
                                  SutraOptimizer **out, SutraError *err);
void        sutra_optimizer_free (SutraOptimizer *o);
/* One update with learning rate lr (the schedule's value for this step). */
void        sutra_optimizer_step (SutraOptimizer *o, double lr);
int64_t     sutra_optimizer_steps_done (const SutraOptimizer *o);
void        sutra_optimizer_set_steps_done (SutraOptimizer *o, int64_t t);
/* State tensors for checkpoints: for tensor i, slot 0 = exp_avg / momentum_buffer,
 * slot 1 = exp_avg_sq (Adam kinds). NULL when the kind has no such slot. */
int         sutra_optimizer_slots (const SutraOptimizer *o);
float      *sutra_optimizer_state (SutraOptimizer *o, size_t i, int slot);
const char *sutra_optimizer_slot_name (const SutraOptimizer *o, int slot);

/* L2 norm over every gradient (double accumulation). */
double sutra_grad_global_norm (const SutraOptTensor *t, size_t n);
/* Scales gradients by max_norm / (norm + 1e-6) when norm > max_norm (torch's formula);
 * returns the norm before clipping. max_norm <= 0 disables clipping. */
double sutra_clip_grad_norm (const SutraOptTensor *t, size_t n, double max_norm);

/* Learning rate in effect at step `step` (0-based) of `total`. */
double sutra_schedule_lr (SutraSchedKind k, double base_lr, int64_t step, int64_t warmup,
                          int64_t total, int cycles);
