/* sutra-loss.h: the causal language-modelling losses, Hugging Face convention:
 * logits at position t predict labels[t + 1]; positions whose shifted label is -100 carry no
 * loss; the loss of a micro-batch is the mean over its positions that carry loss.
 *   ce   cross-entropy (torch.nn.functional.cross_entropy, ignore_index = -100)
 *   mse  mean over those positions of sum_v (softmax(logits)_v - onehot(label)_v)^2 (the Brier
 *        score: a squared-error loss on the predicted distribution) */
#pragma once
#include "sutra-ops.h"

typedef struct {
  float loss;        /* mean over positions with a label */
  int n_valid;       /* positions with a label */
} SutraLossResult;

/* targets[B*T] = labels shifted left by one within each row (last position -100). */
void sutra_shift_labels (int *targets, const int *labels, int B, int T);

/* Computes the loss on logits [B*T, V] and overwrites them with d(scale * loss)/d logits
 * (the fused in-place form; scale = 1 / grad_accum for accumulation). */
SutraStatus sutra_lm_loss_backward (float *logits, const int *targets, int N, int V, bool mse,
                                    float scale, SutraLossResult *out, SutraError *err);
/* Loss only (evaluation); sum of per-position losses in *sum for exact dataset means. */
SutraStatus sutra_lm_loss (const float *logits, const int *targets, int N, int V, bool mse,
                           SutraLossResult *out, double *sum, SutraError *err);
