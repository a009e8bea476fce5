/* studio-loss-series.h: the data behind the loss chart (STYLE.md section 9).
 *
 * One point per optimizer step (loss, learning rate, gradient norm, throughput), evaluation
 * points apart, and the smoothed loss the chart draws over the raw one: an exponential
 * moving average with the start-up bias divided out (TensorBoard's smoothing, so a curve's
 * first points are not dragged towards zero). Filled live by StudioTrainingSession or from a
 * past run's metrics.jsonl. Emits "changed" after every batch of appended points. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct {
  double step;
  double loss;
  double smoothed;       /* filled by the series */
  double lr;
  double grad_norm;
  double tokens_per_s;
  double elapsed_s;
} StudioLossPoint;

typedef struct {
  double step;
  double loss;
} StudioEvalPoint;

#define STUDIO_TYPE_LOSS_SERIES (studio_loss_series_get_type ())
G_DECLARE_FINAL_TYPE (StudioLossSeries, studio_loss_series, STUDIO, LOSS_SERIES, GObject)

StudioLossSeries      *studio_loss_series_new          (void);
void                   studio_loss_series_clear        (StudioLossSeries *self);
/* Copies n points (their smoothed field is computed here). A point whose step is not after
 * the last one (a resumed run replaying a step) replaces the points from that step on. */
void                   studio_loss_series_append       (StudioLossSeries      *self,
                                                        const StudioLossPoint *points,
                                                        guint                  n);
void                   studio_loss_series_append_eval  (StudioLossSeries *self,
                                                        double            step,
                                                        double            loss);
const StudioLossPoint *studio_loss_series_get_points   (StudioLossSeries *self, guint *n);
const StudioEvalPoint *studio_loss_series_get_evals    (StudioLossSeries *self, guint *n);
guint                  studio_loss_series_get_n_points (StudioLossSeries *self);
/* Index of the point whose step is nearest to step; -1 when empty. */
int                    studio_loss_series_nearest      (StudioLossSeries *self, double step);
/* Eval point at exactly that step, or NULL. */
const StudioEvalPoint *studio_loss_series_eval_at      (StudioLossSeries *self, double step);
/* EMA weight of the smoothing, 0 (none) .. 0.99; default 0.9. Recomputes every point. */
void                   studio_loss_series_set_smoothing (StudioLossSeries *self, double weight);
double                 studio_loss_series_get_smoothing (StudioLossSeries *self);
/* Replaces the content with a run folder's metrics.jsonl (through the engine's reader). */
gboolean               studio_loss_series_load_run     (StudioLossSeries *self,
                                                        const char       *run_dir,
                                                        GError          **error);

G_END_DECLS
