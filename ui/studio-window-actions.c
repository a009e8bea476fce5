/* studio-window-actions.c: the win.* actions and their enabled states. */
#define G_LOG_DOMAIN "studio"

#include "studio-engine.h"
#include "studio-file-chooser.h"
#include "studio-paths.h"
#include "studio-window-private.h"

static void
model_chosen (GFile *file, gpointer data)
{
  g_autoptr(StudioWindow) self = data;

  if (file)
    studio_window_open_model_file (self, file);
}

static void
open_model (GSimpleAction *action, GVariant *param, gpointer data)
{
  StudioWindow *self = data;
  const char *current = studio_workspace_get_model_path (self->workspace);
  g_autofree char *parent = current ? g_path_get_dirname (current) : NULL;
  g_autoptr(GFile) folder = parent ? g_file_new_for_path (parent) : NULL;
  StudioChooseOptions opts = {
    .kind = STUDIO_CHOOSE_OPEN_FOLDER,
    .title = "Open a Model Folder",
    .initial_folder = folder,
  };

  studio_file_chooser_run (GTK_WINDOW (self), &opts, model_chosen, g_object_ref (self));
}

static void
dataset_chosen (GFile *file, gpointer data)
{
  g_autoptr(StudioWindow) self = data;

  if (file)
    {
      studio_window_open_dataset_file (self, file);
      studio_window_show_page (self, "data");
    }
}

static void
open_dataset (GSimpleAction *action, GVariant *param, gpointer data)
{
  StudioWindow *self = data;
  static const char *const patterns[] = { "*.jsonl", "*.json", "*.csv", "*.txt", NULL };
  const char *current = studio_workspace_get_dataset_path (self->workspace);
  g_autofree char *parent = current ? g_path_get_dirname (current) : NULL;
  g_autoptr(GFile) folder = parent ? g_file_new_for_path (parent) : NULL;
  StudioChooseOptions opts = {
    .kind = STUDIO_CHOOSE_OPEN_FILE,
    .title = "Open a Dataset",
    .filter_name = "Datasets (JSONL, JSON, CSV, TXT)",
    .patterns = patterns,
    .initial_folder = folder,
  };

  studio_file_chooser_run (GTK_WINDOW (self), &opts, dataset_chosen, g_object_ref (self));
}

static void
run_chosen (GFile *file, gpointer data)
{
  g_autoptr(StudioWindow) self = data;

  if (file)
    studio_window_open_run_folder (self, file);
}

static void
open_run (GSimpleAction *action, GVariant *param, gpointer data)
{
  StudioWindow *self = data;
  g_autofree char *output = studio_workspace_dup_output_folder (self->workspace);
  g_autoptr(GFile) folder = g_file_new_for_path (output);
  StudioChooseOptions opts = {
    .kind = STUDIO_CHOOSE_OPEN_FOLDER,
    .title = "Open a Training Run",
    .initial_folder = g_file_query_exists (folder, NULL) ? folder : NULL,
  };

  studio_file_chooser_run (GTK_WINDOW (self), &opts, run_chosen, g_object_ref (self));
}

static void
start_training (GSimpleAction *action, GVariant *param, gpointer data)
{
  StudioWindow *self = data;
  g_autoptr(GError) error = NULL;

  if (!studio_workspace_start_training (self->workspace, &error))
    {
      studio_window_show_error (self, error);
      return;
    }
  studio_window_show_page (self, "train");
}

static void
session_call (StudioWindow *self, void (*func) (StudioTrainingSession *))
{
  StudioTrainingSession *s = studio_workspace_get_session (self->workspace);

  if (s)
    func (s);
}

static void
pause_training (GSimpleAction *action, GVariant *param, gpointer data)
{
  session_call (data, studio_training_session_pause);
}

static void
resume_training (GSimpleAction *action, GVariant *param, gpointer data)
{
  session_call (data, studio_training_session_resume);
}

static void
stop_training (GSimpleAction *action, GVariant *param, gpointer data)
{
  session_call (data, studio_training_session_stop);
}

static void
save_checkpoint (GSimpleAction *action, GVariant *param, gpointer data)
{
  StudioWindow *self = data;

  session_call (self, studio_training_session_save_now);
  studio_window_show_toast (self, "A checkpoint will be saved after the current step");
}

static void
show_page (GSimpleAction *action, GVariant *param, gpointer data)
{
  studio_window_show_page (data, g_variant_get_string (param, NULL));
}

static void
dismiss_hint (GSimpleAction *action, GVariant *param, gpointer data)
{
  StudioWindow *self = data;

  g_settings_set_boolean (self->settings, "first-run-done", TRUE);
  gtk_revealer_set_reveal_child (self->hint_revealer, FALSE);
}

static void
open_sample (GSimpleAction *action, GVariant *param, gpointer data)
{
  StudioWindow *self = data;

  studio_window_open_paths (self, NULL, NULL);
  studio_window_show_page (self, "train");
  dismiss_hint (action, param, data);
}

static void
show_error (GSimpleAction *action, GVariant *param, gpointer data)
{
  StudioWindow *self = data;
  GtkWidget *dialog = adw_message_dialog_new (GTK_WINDOW (self), "Something Went Wrong", NULL);

  /* The engine's message names the file, line, tensor or key: show it whole and selectable. */
  adw_message_dialog_set_body (ADW_MESSAGE_DIALOG (dialog), g_variant_get_string (param, NULL));
  adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (dialog), "close", "_Close");
  gtk_window_present (GTK_WINDOW (dialog));
}

static const GActionEntry win_entries[] = {
  { .name = "open-model", .activate = open_model },
  { .name = "open-dataset", .activate = open_dataset },
  { .name = "open-run", .activate = open_run },
  { .name = "start-training", .activate = start_training },
  { .name = "pause-training", .activate = pause_training },
  { .name = "resume-training", .activate = resume_training },
  { .name = "stop-training", .activate = stop_training },
  { .name = "save-checkpoint", .activate = save_checkpoint },
  { .name = "show-page", .activate = show_page, .parameter_type = "s" },
  { .name = "dismiss-hint", .activate = dismiss_hint },
  { .name = "open-sample", .activate = open_sample },
  { .name = "show-error", .activate = show_error, .parameter_type = "s" },
};

static void
set_enabled (StudioWindow *self, const char *name, gboolean enabled)
{
  GAction *action = g_action_map_lookup_action (G_ACTION_MAP (self), name);

  g_simple_action_set_enabled (G_SIMPLE_ACTION (action), enabled);
}

void
studio_window_update_actions (StudioWindow *self)
{
  StudioTrainingSession *s = studio_workspace_get_session (self->workspace);
  gboolean active = s && studio_training_session_is_active (s);
  StudioTrainState st = s ? studio_training_session_get_state (s) : STUDIO_TRAIN_IDLE;
  gboolean have_inputs = studio_workspace_get_model (self->workspace) != NULL &&
                         studio_workspace_get_dataset_path (self->workspace) != NULL;
  gboolean borrowed = FALSE;

  if (s)
    g_object_get (s, "model-borrowed", &borrowed, NULL);
  set_enabled (self, "start-training", !active && have_inputs && STUDIO_HAVE_TRAINER);
  set_enabled (self, "pause-training", active && (st == STUDIO_TRAIN_RUNNING || st == STUDIO_TRAIN_LOADING));
  set_enabled (self, "resume-training", active && !borrowed &&
                                        (st == STUDIO_TRAIN_PAUSED || st == STUDIO_TRAIN_PAUSING));
  set_enabled (self, "stop-training", active && st != STUDIO_TRAIN_STOPPING);
  set_enabled (self, "save-checkpoint", active && st != STUDIO_TRAIN_STOPPING && st != STUDIO_TRAIN_LOADING);
  set_enabled (self, "open-run", !active);
}

void
studio_window_actions_init (StudioWindow *self)
{
  g_action_map_add_action_entries (G_ACTION_MAP (self), win_entries, G_N_ELEMENTS (win_entries),
                                   self);
  studio_window_update_actions (self);
}
