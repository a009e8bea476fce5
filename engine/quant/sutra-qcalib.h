/* sutra-qcalib.h: calibration-based INT4 quantization of one weight matrix W [rows, cols] from
 * statistics of the layer's inputs x [N, cols] (never the activations themselves):
 *
 *   statistics   H = sum_n x_n x_n^T [cols, cols] and mean |x| per channel (SutraQStats).
 *   GPTQ         Frantar et al. 2022, Algorithm 1: Hessian 2 X^T X (the factor 2 cancels)
 *                with dampening, the upper Cholesky factor of H^-1, column-by-column
 *                quantization with error feedback to the columns not yet quantized, lazy batch
 *                updates every 128 columns; group scales are computed from the current (updated)
 *                weights as the columns reach each group. No act-order (desc_act).
 *   AWQ          Lin et al. 2023, section 3.2: per-input-channel scales s = mean|x|^alpha,
 *                normalised by sqrt(max s * min s), alpha from a grid of 20 in [0, 1) chosen to
 *                minimise the output error of the matrices sharing the input; the error of each
 *                candidate, sum ||(W - Q(W diag s) diag s^-1) x||^2, is computed exactly from H
 *                as sum_r d_r^T H d_r. alpha = 0 is plain round-to-nearest, so the search never
 *                does worse than RTN on the calibration data. Then llm-awq's clipping search
 *                (auto_clip) on the scaled weights, also through H.
 * Both produce the INT4 layout of sutra-quant.h (method recorded). */
#pragma once
#include <stdatomic.h>
#include "sutra-quant.h"

typedef struct {
  int in;                  /* channels */
  double tokens;           /* rows of x accumulated */
  float *H;                /* [in, in] sum of x x^T (full, symmetric), or NULL */
  double *abs_sum;         /* [in] sum of |x| */
} SutraQStats;

/* with_hessian: also accumulate H (in * in floats). */
SutraStatus sutra_qstats_init  (SutraQStats *s, int in, bool with_hessian, SutraError *err);
void        sutra_qstats_clear (SutraQStats *s);
/* Accumulates x [N, in] (H through the pool-split sgemm). */
void        sutra_qstats_add   (SutraQStats *s, const float *x, int N);

typedef struct {
  float damp;              /* fraction of mean(diag H) added to the diagonal (0: 0.01) */
  int block;               /* lazy-batch width (0: 128; a multiple of the group size) */
  const atomic_bool *cancel;   /* checked between batches of columns (may be NULL) */
} SutraGptqOptions;

/* GPTQ of w [rows, cols] (not modified) with s->H; p must be INT4. Returns the INT4 weight
 * (method GPTQ). SUTRA_ERR_NUMERIC if H stays indefinite after raising the dampening. */
SutraStatus sutra_gptq_quantize (const float *w, int rows, int cols, const SutraQStats *s,
                                 const SutraQuantParams *p, const SutraGptqOptions *o,
                                 SutraQWeight **out, SutraError *err);

typedef struct {
  int grid;                /* number of alpha values (0: 20) */
  /* channels whose scales must be equal (a grouped-query v -> o fold): tie[c] is the class of
   * channel c (0 .. n_classes-1); NULL: every channel on its own */
  const int *tie;
  int n_classes;
  const atomic_bool *cancel;   /* checked between grid points */
} SutraAwqOptions;

typedef struct {
  float alpha;             /* the exponent chosen */
  double loss_rtn;         /* output error at alpha = 0 (round to nearest) */
  double loss;             /* output error at the chosen alpha */
} SutraAwqResult;

/* Searches the scales s [cols] for the n matrices w[i] [rows[i], cols] that share the input
 * described by st (H and abs_sum). */
SutraStatus sutra_awq_search (const float *const *w, const int *rows, int n, int cols,
                              const SutraQStats *st, const SutraQuantParams *p,
                              const SutraAwqOptions *o, float *s, SutraAwqResult *res,
                              SutraError *err);
/* INT4 round-to-nearest of W diag(s) (method AWQ). keep_in_scale: store in_scale = 1 / s so
 * the weight computes W x by itself (the scale could not be folded into the layer feeding x);
 * otherwise the caller has divided that layer's output by s. clip (may be NULL): statistics of
 * x for llm-awq's weight clipping search: per row and group, the range [-m, m] with
 * m = max|w| (1 - i/20), i = 0..9, that minimises the group's output error d^T H_gg d on the
 * scaled inputs x / s. */
SutraStatus sutra_awq_quantize (const float *w, int rows, int cols, const float *s,
                                bool keep_in_scale, const SutraQStats *clip,
                                const SutraQuantParams *p, SutraQWeight **out, SutraError *err);
/* sum_r d_r^T H d_r for D = W - dequant(Q): the output error of q on the calibration inputs. */
double      sutra_qstats_output_error (const SutraQStats *s, const float *w, const SutraQWeight *q);
