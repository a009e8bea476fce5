/* studio-training-session.c: the training thread and its bridge to the main loop. */
#define G_LOG_DOMAIN "studio"

#include <math.h>

#include "studio-engine.h"
#include "studio-error.h"
#include "studio-training-session.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Upper bound on UI refreshes from a run: 10 a second. */
#define DRAIN_INTERVAL_MS 100
/* The training thread yields to the main loop when both want a core (setpriority on this
 * thread only; its worker threads inherit it). */
#define TRAIN_THREAD_NICE 5

G_DEFINE_ENUM_TYPE (StudioTrainState, studio_train_state,
  G_DEFINE_ENUM_VALUE (STUDIO_TRAIN_IDLE, "idle"),
  G_DEFINE_ENUM_VALUE (STUDIO_TRAIN_LOADING, "loading"),
  G_DEFINE_ENUM_VALUE (STUDIO_TRAIN_RUNNING, "running"),
  G_DEFINE_ENUM_VALUE (STUDIO_TRAIN_PAUSING, "pausing"),
  G_DEFINE_ENUM_VALUE (STUDIO_TRAIN_PAUSED, "paused"),
  G_DEFINE_ENUM_VALUE (STUDIO_TRAIN_STOPPING, "stopping"),
  G_DEFINE_ENUM_VALUE (STUDIO_TRAIN_FINISHED, "finished"),
  G_DEFINE_ENUM_VALUE (STUDIO_TRAIN_STOPPED, "stopped"),
  G_DEFINE_ENUM_VALUE (STUDIO_TRAIN_FAILED, "failed"))

/* A copy of one SutraTrainEvent (its strings are borrowed only during the callback). */
typedef struct {
  SutraTrainEventKind kind;
  gint64 step, max_steps;
  double epoch, loss, lr, grad_norm, tokens_per_s, elapsed_s, eta_s, eval_loss;
  gsize rss_bytes;
  char *path, *message;
} Event;

static void
event_clear (gpointer data)
{
  Event *e = data;
  g_free (e->path);
  g_free (e->message);
}

struct _StudioTrainingSession
{
  GObject parent_instance;

  /* Owned */
  SutraTrainConfig config;
  gboolean have_config;
  char *resume_dir, *resume_checkpoint;
  SutraTrainer *trainer;
  GThread *thread;
  StudioLossSeries *series;
  StudioTrainState state;
  gint64 step, max_steps;
  double epoch, loss, lr, grad_norm, tokens_per_s, elapsed, eta;
  gsize rss_bytes;
  char *run_dir, *result_path, *last_checkpoint, *message;
  GError *error;
  gboolean held;
  guint borrowed;
  gboolean resume_pending;

  /* Shared with the training thread, under lock */
  GMutex lock;
  GArray *pending;          /* Event */
  guint drain_id;
  gint64 last_drain;        /* monotonic µs */
};

G_DEFINE_FINAL_TYPE (StudioTrainingSession, studio_training_session, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_STATE,
  PROP_ACTIVE,
  PROP_STEP,
  PROP_MAX_STEPS,
  PROP_EPOCH,
  PROP_LOSS,
  PROP_LR,
  PROP_TOKENS_PER_S,
  PROP_ELAPSED,
  PROP_ETA,
  PROP_RSS_BYTES,
  PROP_FRACTION,
  PROP_PROGRESS_TEXT,
  PROP_RUN_DIR,
  PROP_RESULT_PATH,
  PROP_LAST_CHECKPOINT,
  PROP_MESSAGE,
  PROP_MODEL_BORROWED,
  PROP_SERIES,
  N_PROPS
};
static GParamSpec *properties[N_PROPS];

enum { FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

char *
studio_format_duration (double seconds)
{
  long s;

  if (!isfinite (seconds) || seconds < 0)
    return g_strdup ("–");
  s = lround (seconds);
  if (s >= 3600)
    return g_strdup_printf ("%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return g_strdup_printf ("%ld:%02ld", s / 60, s % 60);
}

static void
set_state (StudioTrainingSession *self, StudioTrainState state)
{
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

static void
set_string (StudioTrainingSession *self, char **field, const char *value, guint prop)
{
  if (g_strcmp0 (*field, value) == 0)
    return;
  g_free (*field);
  *field = g_strdup (value);
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

/* ---- worker side ------------------------------------------------------------------------ */

static gboolean drain_cb (gpointer data) G_GNUC_UNUSED;
static gboolean result_cb (gpointer data) G_GNUC_UNUSED;

typedef struct {
  StudioTrainingSession *self;   /* strong: the last unref happens on the main thread */
  SutraStatus status;
  SutraError err;
} Result;

#if STUDIO_HAVE_TRAINER
static void
on_event (const SutraTrainEvent *ev, void *data)      /* training thread */
{
  StudioTrainingSession *self = data;
  Event e = {
    .kind = ev->kind, .step = ev->step, .max_steps = ev->max_steps, .epoch = ev->epoch,
    .loss = ev->loss, .lr = ev->lr, .grad_norm = ev->grad_norm, .tokens_per_s = ev->tokens_per_s,
    .elapsed_s = ev->elapsed_s, .eta_s = ev->eta_s, .eval_loss = ev->eval_loss,
    .rss_bytes = ev->rss_bytes,
    .path = g_strdup (ev->path), .message = g_strdup (ev->message),
  };

  g_mutex_lock (&self->lock);
  g_array_append_val (self->pending, e);                   /* copy; never keep ev */
  if (self->drain_id == 0)                                 /* at most one source */
    {
      /* A tiny model makes dozens of steps a second: the UI is refreshed at most every
       * DRAIN_INTERVAL_MS, which no eye can tell from live, and the chart redraws and label
       * relayouts stay off the main loop's back. */
      gint64 wait_ms = (self->last_drain + DRAIN_INTERVAL_MS * 1000 - g_get_monotonic_time ()) / 1000;
      if (wait_ms > 0 && ev->kind == SUTRA_TRAIN_EV_STEP)
        self->drain_id = g_timeout_add_full (G_PRIORITY_LOW, (guint) wait_ms, drain_cb,
                                             g_object_ref (self), g_object_unref);
      else
        self->drain_id = g_idle_add_full (G_PRIORITY_LOW, drain_cb, g_object_ref (self),
                                          g_object_unref);
    }
  g_mutex_unlock (&self->lock);
}

static gpointer
train_thread (gpointer data)
{
  StudioTrainingSession *self = data;
  Result *r = g_new0 (Result, 1);

  r->self = self;
#ifdef SYS_gettid
  if (setpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid), TRAIN_THREAD_NICE) != 0)
    g_debug ("could not lower the training thread's priority: %s", g_strerror (errno));
#endif
  r->status = sutra_trainer_run (self->trainer, &r->err);
  g_idle_add_full (G_PRIORITY_DEFAULT, result_cb, r, g_free);
  return NULL;
}
#endif

/* ---- main thread ------------------------------------------------------------------------ */

static void
studio_training_session_drain (StudioTrainingSession *self)
{
  g_autoptr(GArray) events = NULL;
  g_autoptr(GArray) points = g_array_new (FALSE, FALSE, sizeof (StudioLossPoint));
  GObject *obj = G_OBJECT (self);

  g_mutex_lock (&self->lock);
  events = self->pending;                                  /* swap out under the lock */
  self->pending = g_array_new (FALSE, FALSE, sizeof (Event));
  g_array_set_clear_func (self->pending, event_clear);
  self->drain_id = 0;
  self->last_drain = g_get_monotonic_time ();
  g_mutex_unlock (&self->lock);

  g_object_freeze_notify (obj);
  for (guint i = 0; i < events->len; i++)
    {
      Event *e = &g_array_index (events, Event, i);

      switch (e->kind)
        {
        case SUTRA_TRAIN_EV_STARTED:
          self->max_steps = e->max_steps;
          g_object_notify_by_pspec (obj, properties[PROP_MAX_STEPS]);
          if (self->state == STUDIO_TRAIN_LOADING)
            set_state (self, STUDIO_TRAIN_RUNNING);
          break;
        case SUTRA_TRAIN_EV_STEP:
          {
            StudioLossPoint p = { (double) e->step, e->loss, 0, e->lr, e->grad_norm,
                                  e->tokens_per_s, e->elapsed_s };
            g_array_append_val (points, p);
            self->step = e->step;
            if (e->max_steps > 0)
              self->max_steps = e->max_steps;
            self->epoch = e->epoch;
            self->loss = e->loss;
            self->lr = e->lr;
            self->grad_norm = e->grad_norm;
            self->tokens_per_s = e->tokens_per_s;
            self->elapsed = e->elapsed_s;
            self->eta = e->eta_s;
            self->rss_bytes = e->rss_bytes;
            if (self->state == STUDIO_TRAIN_LOADING)
              set_state (self, STUDIO_TRAIN_RUNNING);
          }
          break;
        case SUTRA_TRAIN_EV_EVAL:
          /* Keep order: the steps before this evaluation go into the series first. */
          studio_loss_series_append (self->series, (StudioLossPoint *) points->data, points->len);
          g_array_set_size (points, 0);
          studio_loss_series_append_eval (self->series, (double) e->step, e->eval_loss);
          break;
        case SUTRA_TRAIN_EV_CHECKPOINT:
          set_string (self, &self->last_checkpoint, e->path, PROP_LAST_CHECKPOINT);
          break;
        case SUTRA_TRAIN_EV_PAUSED:
          if (self->state != STUDIO_TRAIN_STOPPING)
            set_state (self, STUDIO_TRAIN_PAUSED);
          break;
        case SUTRA_TRAIN_EV_RESUMED:
          if (self->state != STUDIO_TRAIN_STOPPING)
            set_state (self, STUDIO_TRAIN_RUNNING);
          break;
        case SUTRA_TRAIN_EV_LOG:
          set_string (self, &self->message, e->message, PROP_MESSAGE);
          break;
        case SUTRA_TRAIN_EV_FINISHED:
        case SUTRA_TRAIN_EV_STOPPED:
          set_string (self, &self->result_path, e->path, PROP_RESULT_PATH);
          if (e->kind == SUTRA_TRAIN_EV_STOPPED && e->path)
            set_string (self, &self->last_checkpoint, e->path, PROP_LAST_CHECKPOINT);
          break;
        case SUTRA_TRAIN_EV_FAILED:
          set_string (self, &self->message, e->message, PROP_MESSAGE);
          break;
        default:
          break;
        }
    }
  if (points->len)
    {
      studio_loss_series_append (self->series, (StudioLossPoint *) points->data, points->len);
      g_object_notify_by_pspec (obj, properties[PROP_STEP]);
      g_object_notify_by_pspec (obj, properties[PROP_EPOCH]);
      g_object_notify_by_pspec (obj, properties[PROP_LOSS]);
      g_object_notify_by_pspec (obj, properties[PROP_LR]);
      g_object_notify_by_pspec (obj, properties[PROP_TOKENS_PER_S]);
      g_object_notify_by_pspec (obj, properties[PROP_ELAPSED]);
      g_object_notify_by_pspec (obj, properties[PROP_ETA]);
      g_object_notify_by_pspec (obj, properties[PROP_RSS_BYTES]);
      g_object_notify_by_pspec (obj, properties[PROP_FRACTION]);
      g_object_notify_by_pspec (obj, properties[PROP_PROGRESS_TEXT]);
    }
  g_object_thaw_notify (obj);
}

static gboolean
drain_cb (gpointer data)
{
  studio_training_session_drain (data);
  return G_SOURCE_REMOVE;
}

static gboolean
result_cb (gpointer data)
{
  Result *r = data;
  g_autoptr(StudioTrainingSession) self = r->self;   /* the thread's reference */

  g_thread_join (self->thread);
  self->thread = NULL;
  /* Events posted just before the run returned are applied before the final state. */
  g_mutex_lock (&self->lock);
  g_clear_handle_id (&self->drain_id, g_source_remove);
  g_mutex_unlock (&self->lock);
  studio_training_session_drain (self);

  if (r->status == SUTRA_OK)
    set_state (self, STUDIO_TRAIN_FINISHED);
  else if (r->status == SUTRA_ERR_CANCELLED)
    set_state (self, STUDIO_TRAIN_STOPPED);
  else
    {
      g_clear_error (&self->error);
      studio_error_from_status (r->status, &r->err, &self->error);
      set_string (self, &self->message, self->error->message, PROP_MESSAGE);
      set_state (self, STUDIO_TRAIN_FAILED);
    }
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PROGRESS_TEXT]);
  g_signal_emit (self, signals[FINISHED], 0);
  if (self->held)
    {
      self->held = FALSE;
      if (g_application_get_default ())
        g_application_release (g_application_get_default ());
    }
  return G_SOURCE_REMOVE;
}

gboolean
studio_training_session_start (StudioTrainingSession *self, GError **error)
{
#if STUDIO_HAVE_TRAINER
  SutraError err = { 0 };
  SutraStatus st;

  g_return_val_if_fail (STUDIO_IS_TRAINING_SESSION (self), FALSE);
  g_return_val_if_fail (self->state == STUDIO_TRAIN_IDLE, FALSE);

  if (self->resume_dir)
    st = sutra_trainer_new_resume (self->resume_dir, self->resume_checkpoint, on_event, self,
                                   &self->trainer, &err);
  else
    st = sutra_trainer_new (&self->config, on_event, self, &self->trainer, &err);
  if (st != SUTRA_OK)
    return studio_error_from_sutra (&err, error);

  set_string (self, &self->run_dir, sutra_trainer_run_dir (self->trainer), PROP_RUN_DIR);
  if (self->resume_dir)
    {
      /* The chart continues the run's history; the trainer appends from the checkpoint on. */
      g_autoptr(GError) load_error = NULL;
      if (!studio_loss_series_load_run (self->series, self->resume_dir, &load_error))
        g_debug ("%s: no earlier metrics: %s", self->resume_dir, load_error->message);
    }
  set_state (self, STUDIO_TRAIN_LOADING);
  if (g_application_get_default ())
    {
      g_application_hold (g_application_get_default ());
      self->held = TRUE;
    }
  self->thread = g_thread_new ("sutra-train", train_thread, g_object_ref (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE]);
  return TRUE;
#else
  return studio_error_missing_engine (STUDIO_MISSING_TRAINER, error);
#endif
}

void
studio_training_session_pause (StudioTrainingSession *self)
{
  g_return_if_fail (STUDIO_IS_TRAINING_SESSION (self));
  if (self->state != STUDIO_TRAIN_RUNNING && self->state != STUDIO_TRAIN_LOADING)
    return;
  self->resume_pending = FALSE;
#if STUDIO_HAVE_TRAINER
  sutra_trainer_request_pause (self->trainer);
#endif
  set_state (self, STUDIO_TRAIN_PAUSING);
}

void
studio_training_session_resume (StudioTrainingSession *self)
{
  g_return_if_fail (STUDIO_IS_TRAINING_SESSION (self));
  if (self->state != STUDIO_TRAIN_PAUSED && self->state != STUDIO_TRAIN_PAUSING)
    return;
  if (self->borrowed)
    {
      /* A chat answer is being generated from these weights: resume when it is done. */
      self->resume_pending = TRUE;
      return;
    }
#if STUDIO_HAVE_TRAINER
  sutra_trainer_request_resume (self->trainer);
#endif
  /* RUNNING is set when the trainer confirms (RESUMED), but the buttons flip now. */
  set_state (self, STUDIO_TRAIN_RUNNING);
}

void
studio_training_session_stop (StudioTrainingSession *self)
{
  g_return_if_fail (STUDIO_IS_TRAINING_SESSION (self));
  if (!studio_training_session_is_active (self) || self->state == STUDIO_TRAIN_STOPPING)
    return;
#if STUDIO_HAVE_TRAINER
  /* A paused trainer sees the stop request too and saves a checkpoint. A chat answer that
   * borrowed the weights may still be running: saving only reads them, and the trainer (and
   * its model) lives until the chat page drops its reference to this session. */
  sutra_trainer_request_stop (self->trainer);
#endif
  self->resume_pending = FALSE;
  set_state (self, STUDIO_TRAIN_STOPPING);
}

void
studio_training_session_save_now (StudioTrainingSession *self)
{
  g_return_if_fail (STUDIO_IS_TRAINING_SESSION (self));
#if STUDIO_HAVE_TRAINER
  if (studio_training_session_is_active (self))
    sutra_trainer_request_save (self->trainer);
#endif
}

SutraModel *
studio_training_session_borrow_model (StudioTrainingSession *self)
{
  SutraModel *m = NULL;

  g_return_val_if_fail (STUDIO_IS_TRAINING_SESSION (self), NULL);
#if STUDIO_HAVE_TRAINER
  if (self->state == STUDIO_TRAIN_PAUSED && sutra_trainer_is_paused (self->trainer))
    m = sutra_trainer_model (self->trainer);
#endif
  if (m)
    {
      self->borrowed++;
      if (self->borrowed == 1)
        g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_BORROWED]);
    }
  return m;
}

void
studio_training_session_release_model (StudioTrainingSession *self)
{
  g_return_if_fail (STUDIO_IS_TRAINING_SESSION (self));
  g_return_if_fail (self->borrowed > 0);
  if (--self->borrowed)
    return;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_BORROWED]);
  if (self->resume_pending)
    {
      self->resume_pending = FALSE;
      studio_training_session_resume (self);
    }
}

StudioTrainState
studio_training_session_get_state (StudioTrainingSession *self)
{
  return self->state;
}

gboolean
studio_training_session_is_active (StudioTrainingSession *self)
{
  return self->thread != NULL;
}

StudioLossSeries *
studio_training_session_get_series (StudioTrainingSession *self)
{
  return self->series;
}

const char *
studio_training_session_get_run_dir (StudioTrainingSession *self)
{
  return self->run_dir;
}

const char *
studio_training_session_get_result_path (StudioTrainingSession *self)
{
  return self->result_path;
}

const char *
studio_training_session_get_last_checkpoint (StudioTrainingSession *self)
{
  return self->last_checkpoint;
}

const char *
studio_training_session_get_message (StudioTrainingSession *self)
{
  return self->message;
}

const GError *
studio_training_session_get_error (StudioTrainingSession *self)
{
  return self->error;
}

gint64
studio_training_session_get_step (StudioTrainingSession *self)
{
  return self->step;
}

gint64
studio_training_session_get_max_steps (StudioTrainingSession *self)
{
  return self->max_steps;
}

double
studio_training_session_get_fraction (StudioTrainingSession *self)
{
  if (self->state == STUDIO_TRAIN_FINISHED)
    return 1.0;
  return self->max_steps > 0 ? CLAMP ((double) self->step / self->max_steps, 0, 1) : 0;
}

char *
studio_training_session_dup_progress_text (StudioTrainingSession *self)
{
  g_autofree char *elapsed = studio_format_duration (self->elapsed);
  g_autofree char *eta = studio_format_duration (self->eta);

  switch (self->state)
    {
    case STUDIO_TRAIN_IDLE:
      return g_strdup ("Not started");
    case STUDIO_TRAIN_LOADING:
      return g_strdup (self->message ? self->message : "Loading the model and data…");
    case STUDIO_TRAIN_FINISHED:
      return g_strdup_printf ("Finished: %" G_GINT64_FORMAT " steps in %s", self->step, elapsed);
    case STUDIO_TRAIN_STOPPED:
      return g_strdup_printf ("Stopped at step %" G_GINT64_FORMAT " after %s (checkpoint saved)",
                              self->step, elapsed);
    case STUDIO_TRAIN_FAILED:
      return g_strdup_printf ("Failed at step %" G_GINT64_FORMAT, self->step);
    default:
      break;
    }
  if (self->max_steps > 0)
    return g_strdup_printf ("Step %" G_GINT64_FORMAT " / %" G_GINT64_FORMAT " · %s elapsed · %s left",
                            self->step, self->max_steps, elapsed, eta);
  return g_strdup_printf ("Step %" G_GINT64_FORMAT " · %s elapsed", self->step, elapsed);
}

static void
studio_training_session_finalize (GObject *object)
{
  StudioTrainingSession *self = STUDIO_TRAINING_SESSION (object);

  /* The thread holds a reference until result_cb: no run can be in flight here. */
  g_assert (self->thread == NULL);
  g_clear_handle_id (&self->drain_id, g_source_remove);
#if STUDIO_HAVE_TRAINER
  sutra_trainer_free (self->trainer);
  if (self->have_config)
    sutra_train_config_clear (&self->config);
#endif
  g_array_unref (self->pending);
  g_clear_object (&self->series);
  g_free (self->resume_dir);
  g_free (self->resume_checkpoint);
  g_free (self->run_dir);
  g_free (self->result_path);
  g_free (self->last_checkpoint);
  g_free (self->message);
  g_clear_error (&self->error);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (studio_training_session_parent_class)->finalize (object);
}

static void
studio_training_session_get_property (GObject *object, guint prop_id, GValue *value,
                                      GParamSpec *pspec)
{
  StudioTrainingSession *self = STUDIO_TRAINING_SESSION (object);

  switch (prop_id)
    {
    case PROP_STATE: g_value_set_enum (value, self->state); break;
    case PROP_ACTIVE: g_value_set_boolean (value, self->thread != NULL); break;
    case PROP_STEP: g_value_set_int64 (value, self->step); break;
    case PROP_MAX_STEPS: g_value_set_int64 (value, self->max_steps); break;
    case PROP_EPOCH: g_value_set_double (value, self->epoch); break;
    case PROP_LOSS: g_value_set_double (value, self->loss); break;
    case PROP_LR: g_value_set_double (value, self->lr); break;
    case PROP_TOKENS_PER_S: g_value_set_double (value, self->tokens_per_s); break;
    case PROP_ELAPSED: g_value_set_double (value, self->elapsed); break;
    case PROP_ETA: g_value_set_double (value, self->eta); break;
    case PROP_RSS_BYTES: g_value_set_uint64 (value, self->rss_bytes); break;
    case PROP_FRACTION: g_value_set_double (value, studio_training_session_get_fraction (self)); break;
    case PROP_PROGRESS_TEXT:
      g_value_take_string (value, studio_training_session_dup_progress_text (self));
      break;
    case PROP_RUN_DIR: g_value_set_string (value, self->run_dir); break;
    case PROP_RESULT_PATH: g_value_set_string (value, self->result_path); break;
    case PROP_LAST_CHECKPOINT: g_value_set_string (value, self->last_checkpoint); break;
    case PROP_MESSAGE: g_value_set_string (value, self->message); break;
    case PROP_MODEL_BORROWED: g_value_set_boolean (value, self->borrowed > 0); break;
    case PROP_SERIES: g_value_set_object (value, self->series); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
studio_training_session_class_init (StudioTrainingSessionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = studio_training_session_finalize;
  object_class->get_property = studio_training_session_get_property;

  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, STUDIO_TYPE_TRAIN_STATE,
                                              STUDIO_TRAIN_IDLE, ro);
  properties[PROP_ACTIVE] = g_param_spec_boolean ("active", NULL, NULL, FALSE, ro);
  properties[PROP_STEP] = g_param_spec_int64 ("step", NULL, NULL, 0, G_MAXINT64, 0, ro);
  properties[PROP_MAX_STEPS] = g_param_spec_int64 ("max-steps", NULL, NULL, 0, G_MAXINT64, 0, ro);
  properties[PROP_EPOCH] = g_param_spec_double ("epoch", NULL, NULL, 0, G_MAXDOUBLE, 0, ro);
  properties[PROP_LOSS] = g_param_spec_double ("loss", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0, ro);
  properties[PROP_LR] = g_param_spec_double ("lr", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0, ro);
  properties[PROP_TOKENS_PER_S] = g_param_spec_double ("tokens-per-s", NULL, NULL, 0, G_MAXDOUBLE, 0, ro);
  properties[PROP_ELAPSED] = g_param_spec_double ("elapsed", NULL, NULL, 0, G_MAXDOUBLE, 0, ro);
  properties[PROP_ETA] = g_param_spec_double ("eta", NULL, NULL, -G_MAXDOUBLE, G_MAXDOUBLE, 0, ro);
  properties[PROP_RSS_BYTES] = g_param_spec_uint64 ("rss-bytes", NULL, NULL, 0, G_MAXUINT64, 0, ro);
  properties[PROP_FRACTION] = g_param_spec_double ("fraction", NULL, NULL, 0, 1, 0, ro);
  properties[PROP_PROGRESS_TEXT] = g_param_spec_string ("progress-text", NULL, NULL, NULL, ro);
  properties[PROP_RUN_DIR] = g_param_spec_string ("run-dir", NULL, NULL, NULL, ro);
  properties[PROP_RESULT_PATH] = g_param_spec_string ("result-path", NULL, NULL, NULL, ro);
  properties[PROP_LAST_CHECKPOINT] = g_param_spec_string ("last-checkpoint", NULL, NULL, NULL, ro);
  properties[PROP_MESSAGE] = g_param_spec_string ("message", NULL, NULL, NULL, ro);
  properties[PROP_MODEL_BORROWED] = g_param_spec_boolean ("model-borrowed", NULL, NULL, FALSE, ro);
  properties[PROP_SERIES] = g_param_spec_object ("series", NULL, NULL, STUDIO_TYPE_LOSS_SERIES, ro);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* The thread has been joined; state is FINISHED, STOPPED or FAILED. */
  signals[FINISHED] = g_signal_new ("finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                    NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
studio_training_session_init (StudioTrainingSession *self)
{
  g_mutex_init (&self->lock);
  self->pending = g_array_new (FALSE, FALSE, sizeof (Event));
  g_array_set_clear_func (self->pending, event_clear);
  self->series = studio_loss_series_new ();
  self->eta = -1;
}

StudioTrainingSession *
studio_training_session_new (const SutraTrainConfig *config)
{
  StudioTrainingSession *self = g_object_new (STUDIO_TYPE_TRAINING_SESSION, NULL);

#if STUDIO_HAVE_TRAINER
  sutra_train_config_copy (&self->config, config);
  self->have_config = TRUE;
#endif
  return self;
}

StudioTrainingSession *
studio_training_session_new_resume (const char *run_dir, const char *checkpoint)
{
  StudioTrainingSession *self = g_object_new (STUDIO_TYPE_TRAINING_SESSION, NULL);

  self->resume_dir = g_strdup (run_dir);
  self->resume_checkpoint = g_strdup (checkpoint);
  return self;
}
