/* studio-loss-series.c: loss chart data with debiased EMA smoothing. */
#define G_LOG_DOMAIN "studio"

#include <math.h>

#include "studio-engine.h"
#include "studio-error.h"
#include "studio-loss-series.h"

struct _StudioLossSeries
{
  GObject parent_instance;

  /* Owned */
  GArray *points;         /* StudioLossPoint, steps increasing */
  GArray *evals;          /* StudioEvalPoint, steps increasing */
  double smoothing;
  double ema;             /* running average of finite losses, biased towards 0 */
  guint ema_count;
};

G_DEFINE_FINAL_TYPE (StudioLossSeries, studio_loss_series, G_TYPE_OBJECT)

enum { PROP_0, PROP_N_POINTS, PROP_SMOOTHING, N_PROPS };
static GParamSpec *properties[N_PROPS];

enum { CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
smooth_one (StudioLossSeries *self, StudioLossPoint *p)
{
  /* TensorBoard's smoothing: ema_t = w ema_{t-1} + (1 - w) x_t, shown as ema_t / (1 - w^t).
   * Non-finite losses (a diverged step) are skipped so they do not poison the curve. */
  if (!isfinite (p->loss))
    {
      p->smoothed = self->ema_count ? self->ema / (1.0 - pow (self->smoothing, self->ema_count))
                                    : NAN;
      return;
    }
  self->ema = self->smoothing * self->ema + (1.0 - self->smoothing) * p->loss;
  self->ema_count++;
  p->smoothed = self->smoothing > 0 ? self->ema / (1.0 - pow (self->smoothing, self->ema_count))
                                    : p->loss;
}

static void
resmooth (StudioLossSeries *self)
{
  self->ema = 0;
  self->ema_count = 0;
  for (guint i = 0; i < self->points->len; i++)
    smooth_one (self, &g_array_index (self->points, StudioLossPoint, i));
}

static void
emit_changed (StudioLossSeries *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_POINTS]);
  g_signal_emit (self, signals[CHANGED], 0);
}

void
studio_loss_series_clear (StudioLossSeries *self)
{
  g_return_if_fail (STUDIO_IS_LOSS_SERIES (self));
  g_array_set_size (self->points, 0);
  g_array_set_size (self->evals, 0);
  self->ema = 0;
  self->ema_count = 0;
  emit_changed (self);
}

void
studio_loss_series_append (StudioLossSeries *self, const StudioLossPoint *points, guint n)
{
  gboolean rewound = FALSE;

  g_return_if_fail (STUDIO_IS_LOSS_SERIES (self));
  for (guint i = 0; i < n; i++)
    {
      StudioLossPoint p = points[i];
      guint len = self->points->len;

      if (len && p.step <= g_array_index (self->points, StudioLossPoint, len - 1).step)
        {
          /* A resumed run repeats steps after its checkpoint: drop what it replaces. */
          guint keep = len;
          while (keep && g_array_index (self->points, StudioLossPoint, keep - 1).step >= p.step)
            keep--;
          g_array_set_size (self->points, keep);
          rewound = TRUE;
        }
      if (rewound)
        {
          resmooth (self);
          rewound = FALSE;
        }
      smooth_one (self, &p);
      g_array_append_val (self->points, p);
    }
  if (n)
    emit_changed (self);
}

void
studio_loss_series_append_eval (StudioLossSeries *self, double step, double loss)
{
  StudioEvalPoint e = { step, loss };

  g_return_if_fail (STUDIO_IS_LOSS_SERIES (self));
  while (self->evals->len &&
         g_array_index (self->evals, StudioEvalPoint, self->evals->len - 1).step >= step)
    g_array_set_size (self->evals, self->evals->len - 1);
  g_array_append_val (self->evals, e);
  emit_changed (self);
}

const StudioLossPoint *
studio_loss_series_get_points (StudioLossSeries *self, guint *n)
{
  *n = self->points->len;
  return (const StudioLossPoint *) self->points->data;
}

const StudioEvalPoint *
studio_loss_series_get_evals (StudioLossSeries *self, guint *n)
{
  *n = self->evals->len;
  return (const StudioEvalPoint *) self->evals->data;
}

guint
studio_loss_series_get_n_points (StudioLossSeries *self)
{
  return self->points->len;
}

int
studio_loss_series_nearest (StudioLossSeries *self, double step)
{
  const StudioLossPoint *p = (const StudioLossPoint *) self->points->data;
  guint lo = 0, hi = self->points->len;

  if (hi == 0)
    return -1;
  /* First point with p.step >= step, then the closer of it and its predecessor. */
  while (lo < hi)
    {
      guint mid = (lo + hi) / 2;
      if (p[mid].step < step)
        lo = mid + 1;
      else
        hi = mid;
    }
  if (lo == self->points->len)
    return (int) lo - 1;
  if (lo > 0 && step - p[lo - 1].step <= p[lo].step - step)
    return (int) lo - 1;
  return (int) lo;
}

const StudioEvalPoint *
studio_loss_series_eval_at (StudioLossSeries *self, double step)
{
  for (guint i = 0; i < self->evals->len; i++)
    {
      const StudioEvalPoint *e = &g_array_index (self->evals, StudioEvalPoint, i);
      if (e->step == step)
        return e;
    }
  return NULL;
}

void
studio_loss_series_set_smoothing (StudioLossSeries *self, double weight)
{
  g_return_if_fail (STUDIO_IS_LOSS_SERIES (self));
  weight = CLAMP (weight, 0.0, 0.99);
  if (weight == self->smoothing)
    return;
  self->smoothing = weight;
  resmooth (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SMOOTHING]);
  g_signal_emit (self, signals[CHANGED], 0);
}

double
studio_loss_series_get_smoothing (StudioLossSeries *self)
{
  return self->smoothing;
}

gboolean
studio_loss_series_load_run (StudioLossSeries *self, const char *run_dir, GError **error)
{
#if STUDIO_HAVE_TRAINER
  SutraMetricRow *rows = NULL;
  size_t n = 0;
  SutraError err = { 0 };
  g_autoptr(GArray) pts = g_array_new (FALSE, FALSE, sizeof (StudioLossPoint));

  if (sutra_run_read_metrics (run_dir, &rows, &n, &err) != SUTRA_OK)
    return studio_error_from_sutra (&err, error);
  g_array_set_size (self->points, 0);
  g_array_set_size (self->evals, 0);
  self->ema = 0;
  self->ema_count = 0;
  for (size_t i = 0; i < n; i++)
    {
      StudioLossPoint p = { (double) rows[i].step, rows[i].loss, 0, rows[i].lr, rows[i].grad_norm,
                            rows[i].tokens_per_s, rows[i].elapsed_s };
      g_array_append_val (pts, p);
      if (isfinite (rows[i].eval_loss))
        {
          StudioEvalPoint e = { (double) rows[i].step, rows[i].eval_loss };
          g_array_append_val (self->evals, e);
        }
    }
  free (rows);
  /* append() emits "changed" once; an empty run still needs one notification. */
  if (pts->len)
    studio_loss_series_append (self, (StudioLossPoint *) pts->data, pts->len);
  else
    emit_changed (self);
  return TRUE;
#else
  return studio_error_missing_engine (STUDIO_MISSING_TRAINER, error);
#endif
}

static void
studio_loss_series_finalize (GObject *object)
{
  StudioLossSeries *self = STUDIO_LOSS_SERIES (object);

  g_array_unref (self->points);
  g_array_unref (self->evals);
  G_OBJECT_CLASS (studio_loss_series_parent_class)->finalize (object);
}

static void
studio_loss_series_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  StudioLossSeries *self = STUDIO_LOSS_SERIES (object);

  switch (prop_id)
    {
    case PROP_N_POINTS: g_value_set_uint (value, self->points->len); break;
    case PROP_SMOOTHING: g_value_set_double (value, self->smoothing); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
studio_loss_series_set_property (GObject *object, guint prop_id, const GValue *value,
                                 GParamSpec *pspec)
{
  switch (prop_id)
    {
    case PROP_SMOOTHING:
      studio_loss_series_set_smoothing (STUDIO_LOSS_SERIES (object), g_value_get_double (value));
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
studio_loss_series_class_init (StudioLossSeriesClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = studio_loss_series_finalize;
  object_class->get_property = studio_loss_series_get_property;
  object_class->set_property = studio_loss_series_set_property;

  properties[PROP_N_POINTS] =
    g_param_spec_uint ("n-points", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_SMOOTHING] =
    g_param_spec_double ("smoothing", NULL, NULL, 0, 0.99, 0.9,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                   NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
studio_loss_series_init (StudioLossSeries *self)
{
  self->points = g_array_new (FALSE, FALSE, sizeof (StudioLossPoint));
  self->evals = g_array_new (FALSE, FALSE, sizeof (StudioEvalPoint));
  self->smoothing = 0.9;
}

StudioLossSeries *
studio_loss_series_new (void)
{
  return g_object_new (STUDIO_TYPE_LOSS_SERIES, NULL);
}
