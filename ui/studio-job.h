/* studio-job.h: a short background job (open a model, load a dataset, download, quantize,
 * export, generate an answer) with progress, streamed text and cancellation.
 *
 * STYLE.md section 8: the work runs in GTask's thread pool (g_task_run_in_thread); the
 * worker reports progress and text through studio_job_report/studio_job_emit_text, which
 * copy under a lock and schedule at most one idle; the idle (main thread) updates the
 * "fraction"/"text" properties and emits "streamed". Before the finish callback runs, any
 * pending progress and text are delivered, so the callback always sees the last chunk.
 * Long-lived work (a training run) uses its own GThread instead (StudioTrainingSession). */
#pragma once

#include <gio/gio.h>
#include <stdatomic.h>
#include <stdbool.h>

G_BEGIN_DECLS

#define STUDIO_TYPE_JOB (studio_job_get_type ())
G_DECLARE_FINAL_TYPE (StudioJob, studio_job, STUDIO, JOB, GObject)

/* Runs on a worker thread. Returns the result (owned, freed with result_free when nobody
 * takes it) or NULL with *error set. */
typedef gpointer (*StudioJobFunc) (StudioJob    *job,
                                   gpointer      data,
                                   GCancellable *cancellable,
                                   GError      **error);

StudioJob   *studio_job_new         (const char *title);
/* Starts the job; callback (main thread) then calls studio_job_finish. */
void         studio_job_run         (StudioJob          *job,
                                     StudioJobFunc       func,
                                     gpointer            data,
                                     GDestroyNotify      data_free,
                                     GDestroyNotify      result_free,
                                     GAsyncReadyCallback callback,
                                     gpointer            user_data);
gpointer     studio_job_finish      (StudioJob *job, GAsyncResult *result, GError **error);
void         studio_job_cancel      (StudioJob *job);

/* Worker side (any thread). */
void         studio_job_report      (StudioJob *job, double fraction, const char *text);
void         studio_job_emit_text   (StudioJob *job, const char *text, gssize len);
/* Flags the engine polls; set when the job is cancelled. */
atomic_bool *studio_job_cancel_flag (StudioJob *job);
const volatile int *studio_job_cancel_int (StudioJob *job);

/* Main thread. */
const char  *studio_job_get_title    (StudioJob *job);
double       studio_job_get_fraction (StudioJob *job);   /* -1 = unknown (pulse) */
const char  *studio_job_get_text     (StudioJob *job);
gboolean     studio_job_get_running  (StudioJob *job);

G_END_DECLS
