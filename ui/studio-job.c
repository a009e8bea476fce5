/* studio-job.c: GTask plus a coalesced progress/text bridge to the main loop. */
#define G_LOG_DOMAIN "studio"

#include "studio-job.h"

struct _StudioJob
{
  GObject parent_instance;

  /* Owned */
  char *title;
  GCancellable *cancellable;
  char *text;
  double fraction;
  gboolean running;
  gulong cancel_id;
  atomic_bool cancel_flag;
  volatile int cancel_int;

  /* Shared with the worker, under lock */
  GMutex lock;
  guint drain_id;
  gboolean have_progress;
  double pending_fraction;
  char *pending_text;
  GString *pending_stream;

  /* The run in flight */
  StudioJobFunc func;
  gpointer data;
  GDestroyNotify data_free;
  GDestroyNotify result_free;
  GAsyncReadyCallback callback;
  gpointer user_data;
};

G_DEFINE_FINAL_TYPE (StudioJob, studio_job, G_TYPE_OBJECT)

enum { PROP_0, PROP_TITLE, PROP_FRACTION, PROP_TEXT, PROP_RUNNING, N_PROPS };
static GParamSpec *properties[N_PROPS];

enum { STREAMED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
studio_job_drain (StudioJob *self)
{
  gboolean have_progress;
  double fraction;
  g_autofree char *text = NULL;
  g_autoptr(GString) stream = NULL;

  g_mutex_lock (&self->lock);
  self->drain_id = 0;
  have_progress = self->have_progress;
  fraction = self->pending_fraction;
  text = g_steal_pointer (&self->pending_text);
  if (self->pending_stream->len)
    {
      stream = self->pending_stream;
      self->pending_stream = g_string_new (NULL);
    }
  self->have_progress = FALSE;
  g_mutex_unlock (&self->lock);

  if (have_progress)
    {
      g_object_freeze_notify (G_OBJECT (self));
      if (fraction != self->fraction)
        {
          self->fraction = fraction;
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FRACTION]);
        }
      if (text && g_strcmp0 (text, self->text) != 0)
        {
          g_free (self->text);
          self->text = g_steal_pointer (&text);
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TEXT]);
        }
      g_object_thaw_notify (G_OBJECT (self));
    }
  if (stream)
    g_signal_emit (self, signals[STREAMED], 0, stream->str);
}

static gboolean
drain_cb (gpointer data)
{
  studio_job_drain (data);
  return G_SOURCE_REMOVE;
}

/* Called with the lock held. */
static void
schedule_drain (StudioJob *self)
{
  if (self->drain_id == 0)
    self->drain_id = g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, drain_cb, g_object_ref (self),
                                      g_object_unref);
}

void
studio_job_report (StudioJob *self, double fraction, const char *text)
{
  g_mutex_lock (&self->lock);
  self->have_progress = TRUE;
  self->pending_fraction = fraction;
  if (text)
    {
      g_free (self->pending_text);
      self->pending_text = g_strdup (text);
    }
  schedule_drain (self);
  g_mutex_unlock (&self->lock);
}

void
studio_job_emit_text (StudioJob *self, const char *text, gssize len)
{
  g_mutex_lock (&self->lock);
  g_string_append_len (self->pending_stream, text, len);
  schedule_drain (self);
  g_mutex_unlock (&self->lock);
}

atomic_bool *
studio_job_cancel_flag (StudioJob *self)
{
  return &self->cancel_flag;
}

const volatile int *
studio_job_cancel_int (StudioJob *self)
{
  return &self->cancel_int;
}

static void
on_cancelled (GCancellable *cancellable, gpointer data)
{
  StudioJob *self = data;

  /* May run on any thread: only the flags the engine polls are touched. */
  atomic_store (&self->cancel_flag, true);
  self->cancel_int = 1;
}

static void
job_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  StudioJob *self = source;
  GError *error = NULL;
  gpointer result = self->func (self, self->data, cancellable, &error);

  if (error)
    {
      if (result && self->result_free)
        self->result_free (result);
      g_task_return_error (task, error);
    }
  else
    g_task_return_pointer (task, result, self->result_free);
}

static void
job_done (GObject *source, GAsyncResult *result, gpointer data)
{
  StudioJob *self = STUDIO_JOB (source);
  GAsyncReadyCallback callback = self->callback;
  gpointer user_data = self->user_data;

  /* Deliver the last progress and text chunk before the caller sees the result. */
  g_mutex_lock (&self->lock);
  g_clear_handle_id (&self->drain_id, g_source_remove);
  self->have_progress = self->have_progress || self->pending_text != NULL;
  g_mutex_unlock (&self->lock);
  studio_job_drain (self);

  if (self->data_free)
    self->data_free (self->data);
  self->data = NULL;
  self->running = FALSE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUNNING]);
  if (callback)
    callback (source, result, user_data);
}

void
studio_job_run (StudioJob *self, StudioJobFunc func, gpointer data, GDestroyNotify data_free,
                GDestroyNotify result_free, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (STUDIO_IS_JOB (self));
  g_return_if_fail (!self->running);

  if (self->cancel_id)
    g_cancellable_disconnect (self->cancellable, self->cancel_id);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  atomic_store (&self->cancel_flag, false);
  self->cancel_int = 0;
  self->cancel_id = g_cancellable_connect (self->cancellable, G_CALLBACK (on_cancelled), self, NULL);

  self->func = func;
  self->data = data;
  self->data_free = data_free;
  self->result_free = result_free;
  self->callback = callback;
  self->user_data = user_data;
  self->fraction = -1;
  self->running = TRUE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_FRACTION]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUNNING]);

  task = g_task_new (self, self->cancellable, job_done, NULL);
  g_task_set_source_tag (task, studio_job_run);
  g_task_set_name (task, self->title);
  /* The worker reports errors itself (a cancelled engine call returns CANCELLED). */
  g_task_set_check_cancellable (task, FALSE);
  g_task_run_in_thread (task, job_thread);
}

gpointer
studio_job_finish (StudioJob *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
studio_job_cancel (StudioJob *self)
{
  g_return_if_fail (STUDIO_IS_JOB (self));
  if (self->cancellable)
    g_cancellable_cancel (self->cancellable);
}

const char *
studio_job_get_title (StudioJob *self)
{
  return self->title;
}

double
studio_job_get_fraction (StudioJob *self)
{
  return self->fraction;
}

const char *
studio_job_get_text (StudioJob *self)
{
  return self->text;
}

gboolean
studio_job_get_running (StudioJob *self)
{
  return self->running;
}

static void
studio_job_finalize (GObject *object)
{
  StudioJob *self = STUDIO_JOB (object);

  if (self->cancel_id)
    g_cancellable_disconnect (self->cancellable, self->cancel_id);
  g_clear_object (&self->cancellable);
  g_free (self->title);
  g_free (self->text);
  g_free (self->pending_text);
  g_string_free (self->pending_stream, TRUE);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (studio_job_parent_class)->finalize (object);
}

static void
studio_job_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  StudioJob *self = STUDIO_JOB (object);

  switch (prop_id)
    {
    case PROP_TITLE:    g_value_set_string (value, self->title); break;
    case PROP_FRACTION: g_value_set_double (value, self->fraction); break;
    case PROP_TEXT:     g_value_set_string (value, self->text); break;
    case PROP_RUNNING:  g_value_set_boolean (value, self->running); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
studio_job_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  StudioJob *self = STUDIO_JOB (object);

  switch (prop_id)
    {
    case PROP_TITLE:
      g_free (self->title);
      self->title = g_value_dup_string (value);
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
studio_job_class_init (StudioJobClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = studio_job_finalize;
  object_class->get_property = studio_job_get_property;
  object_class->set_property = studio_job_set_property;

  properties[PROP_TITLE] =
    g_param_spec_string ("title", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_FRACTION] =
    g_param_spec_double ("fraction", NULL, NULL, -1, 1, -1,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_TEXT] =
    g_param_spec_string ("text", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_RUNNING] =
    g_param_spec_boolean ("running", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* A chunk of streamed text (coalesced: several engine tokens may arrive in one chunk). */
  signals[STREAMED] = g_signal_new ("streamed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
studio_job_init (StudioJob *self)
{
  g_mutex_init (&self->lock);
  self->pending_stream = g_string_new (NULL);
  self->fraction = -1;
}

StudioJob *
studio_job_new (const char *title)
{
  return g_object_new (STUDIO_TYPE_JOB, "title", title, NULL);
}
