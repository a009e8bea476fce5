/* sutra-loss.c: shifted causal-LM losses (cross-entropy and Brier/MSE) with fused gradients. */
#include "sutra-loss.h"
#include "sutra-pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void
sutra_shift_labels (int *targets, const int *labels, int B, int T)
{
  for (int b = 0; b < B; b++) {
    for (int t = 0; t + 1 < T; t++)
      targets[b * T + t] = labels[b * T + t + 1];
    targets[b * T + T - 1] = SUTRA_IGNORE_INDEX;
  }
}

/* Brier: L_n = sum_v (p_v - y_v)^2; dL/dz_j = 2 p_j ((p_j - y_j) - sum_v p_v (p_v - y_v)) */
typedef struct {
  float *logits;
  const float *in;
  const int *targets;
  int V;
  double *row;       /* per-row loss */
  float scale;       /* gradient scale (0 = no gradient) */
} MseJob;

static void
mse_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  MseJob *j = ctx;
  int V = j->V;
  (void) ti;
  for (int64_t r = r0; r < r1; r++) {
    int t = j->targets[r];
    const float *x = j->in + (size_t) r * V;
    float *d = j->logits ? j->logits + (size_t) r * V : NULL;
    if (t == SUTRA_IGNORE_INDEX) {
      j->row[r] = 0;
      if (d)
        memset (d, 0, sizeof (float) * (size_t) V);
      continue;
    }
    float m = -INFINITY;
    for (int i = 0; i < V; i++)
      m = x[i] > m ? x[i] : m;
    double s = 0;
    for (int i = 0; i < V; i++)
      s += exp ((double) x[i] - m);
    double loss = 0, dot = 0;
    for (int i = 0; i < V; i++) {
      double p = exp ((double) x[i] - m) / s, e = p - (i == t ? 1.0 : 0.0);
      loss += e * e;
      dot += p * e;
    }
    j->row[r] = loss;
    if (d) {
      for (int i = 0; i < V; i++) {
        double p = exp ((double) x[i] - m) / s, e = p - (i == t ? 1.0 : 0.0);
        d[i] = (float) (j->scale * 2.0 * p * (e - dot));
      }
    }
  }
}

static SutraStatus
check_targets (const int *targets, int N, int V, int *valid, SutraError *err)
{
  int n = 0;
  for (int i = 0; i < N; i++) {
    if (targets[i] == SUTRA_IGNORE_INDEX)
      continue;
    if (targets[i] < 0 || targets[i] >= V)
      return sutra_error_set (err, SUTRA_ERR_INVALID, "label %d at position %d is outside the "
                              "vocabulary (size %d)", targets[i], i, V);
    n++;
  }
  *valid = n;
  return SUTRA_OK;
}

static SutraStatus
mse_run (float *grad_out, const float *logits, const int *targets, int N, int V, float scale,
         SutraLossResult *out, double *sum, SutraError *err)
{
  int valid = 0;
  SutraStatus st = check_targets (targets, N, V, &valid, err);
  if (st)
    return st;
  double *row = sutra_xmalloc (sizeof (double) * (size_t) (N > 0 ? N : 1));
  MseJob j = { grad_out, logits, targets, V, row, valid ? scale / (float) valid : 0.f };
  sutra_parallel_for (N, 1, mse_range, &j);
  double s = 0;
  for (int i = 0; i < N; i++)
    s += row[i];
  free (row);
  out->loss = valid ? (float) (s / valid) : 0.f;
  out->n_valid = valid;
  if (sum)
    *sum = s;
  return SUTRA_OK;
}

SutraStatus
sutra_lm_loss_backward (float *logits, const int *targets, int N, int V, bool mse, float scale,
                        SutraLossResult *out, SutraError *err)
{
  if (mse)
    return mse_run (logits, logits, targets, N, V, scale, out, NULL, err);
  SutraStatus st = sutra_cross_entropy_forward (&out->loss, &out->n_valid, logits, targets, N, V, err);
  if (st)
    return st;
  sutra_cross_entropy_backward (logits, logits, targets, scale, out->n_valid, N, V);
  return SUTRA_OK;
}

SutraStatus
sutra_lm_loss (const float *logits, const int *targets, int N, int V, bool mse,
               SutraLossResult *out, double *sum, SutraError *err)
{
  if (mse)
    return mse_run (NULL, logits, targets, N, V, 0.f, out, sum, err);
  SutraStatus st = sutra_cross_entropy_forward (&out->loss, &out->n_valid, logits, targets, N, V, err);
  if (!st && sum)
    *sum = (double) out->loss * out->n_valid;
  return st;
}
