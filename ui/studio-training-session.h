/* studio-training-session.h: one training run driven from the UI (STYLE.md section 8).
 *
 * Owns the engine's SutraTrainer and the one GThread that runs it (a run is long-lived, so it
 * does not take a slot in GTask's shared pool). The trainer's events arrive on that thread;
 * they are copied under a lock and at most one low-priority idle is pending at a time, which
 * drains them on the main thread into the properties below and the StudioLossSeries. The end
 * of the run comes through one more idle that joins the thread. g_application_hold spans the
 * run; worker code never touches a widget. */
#pragma once

#include <gio/gio.h>

#include "studio-loss-series.h"
#include "sutra-trainer.h"

G_BEGIN_DECLS

typedef enum {
  STUDIO_TRAIN_IDLE,        /* created, not started */
  STUDIO_TRAIN_LOADING,     /* the thread is loading model and data */
  STUDIO_TRAIN_RUNNING,
  STUDIO_TRAIN_PAUSING,     /* pause requested, the current step finishes */
  STUDIO_TRAIN_PAUSED,
  STUDIO_TRAIN_STOPPING,    /* stop requested: a checkpoint is being saved */
  STUDIO_TRAIN_FINISHED,
  STUDIO_TRAIN_STOPPED,
  STUDIO_TRAIN_FAILED,
} StudioTrainState;

#define STUDIO_TYPE_TRAIN_STATE (studio_train_state_get_type ())
GType studio_train_state_get_type (void);

#define STUDIO_TYPE_TRAINING_SESSION (studio_training_session_get_type ())
G_DECLARE_FINAL_TYPE (StudioTrainingSession, studio_training_session, STUDIO, TRAINING_SESSION,
                      GObject)

/* A new run with these settings (copied). */
StudioTrainingSession *studio_training_session_new        (const SutraTrainConfig *config);
/* Continues run_dir from checkpoint (NULL: its latest complete checkpoint). */
StudioTrainingSession *studio_training_session_new_resume (const char *run_dir,
                                                           const char *checkpoint);

/* Validates the settings (errors name the key) and starts the thread. */
gboolean          studio_training_session_start   (StudioTrainingSession *self, GError **error);
void              studio_training_session_pause   (StudioTrainingSession *self);
void              studio_training_session_resume  (StudioTrainingSession *self);
void              studio_training_session_stop    (StudioTrainingSession *self);
void              studio_training_session_save_now (StudioTrainingSession *self);

StudioTrainState  studio_training_session_get_state (StudioTrainingSession *self);
/* TRUE from start until the thread has been joined. */
gboolean          studio_training_session_is_active (StudioTrainingSession *self);
StudioLossSeries *studio_training_session_get_series (StudioTrainingSession *self);
const char       *studio_training_session_get_run_dir (StudioTrainingSession *self);
/* Final adapter/model folder (finished) or the checkpoint saved on stop; NULL otherwise. */
const char       *studio_training_session_get_result_path (StudioTrainingSession *self);
const char       *studio_training_session_get_last_checkpoint (StudioTrainingSession *self);
const char       *studio_training_session_get_message (StudioTrainingSession *self);
const GError     *studio_training_session_get_error (StudioTrainingSession *self);
gint64            studio_training_session_get_step (StudioTrainingSession *self);
gint64            studio_training_session_get_max_steps (StudioTrainingSession *self);
/* "step 12 / 100 · 0:32 elapsed · 2:10 left" */
char             *studio_training_session_dup_progress_text (StudioTrainingSession *self);
double            studio_training_session_get_fraction (StudioTrainingSession *self);

/* The weights being trained, for chatting while paused (NULL unless paused). While borrowed,
 * a resume request waits until studio_training_session_release_model. */
SutraModel       *studio_training_session_borrow_model  (StudioTrainingSession *self);
void              studio_training_session_release_model (StudioTrainingSession *self);

/* "2:05", "1:02:03" */
char             *studio_format_duration (double seconds);

G_END_DECLS
