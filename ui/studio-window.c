/* studio-window.c: the main window (construction, errors, closing, persistence). */
#define G_LOG_DOMAIN "studio"

#include "studio-chat-page.h"
#include "studio-data-page.h"
#include "studio-export-page.h"
#include "studio-model-page.h"
#include "studio-paths.h"
#include "studio-quant-page.h"
#include "studio-train-page.h"
#include "studio-window-private.h"

G_DEFINE_FINAL_TYPE (StudioWindow, studio_window, ADW_TYPE_APPLICATION_WINDOW)

/* Toast titles are one short line; anything longer also goes into a Details dialog. */
#define TOAST_MAX_CHARS 90

void
studio_window_show_toast (StudioWindow *self, const char *text)
{
  g_autofree char *escaped = g_markup_escape_text (text, -1);
  AdwToast *toast = adw_toast_new (escaped);

  adw_toast_set_timeout (toast, 4);
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

void
studio_window_show_error (StudioWindow *self, const GError *error)
{
  AdwToast *toast;
  g_autofree char *title = NULL;
  g_autofree char *escaped = NULL;
  glong len = g_utf8_strlen (error->message, -1);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  g_message ("%s", error->message);
  if (len > TOAST_MAX_CHARS)
    {
      g_autofree char *head = g_utf8_substring (error->message, 0, TOAST_MAX_CHARS - 1);
      title = g_strconcat (head, "…", NULL);
    }
  else
    title = g_strdup (error->message);
  /* Toast titles are markup: engine messages contain quotes and angle brackets. */
  escaped = g_markup_escape_text (title, -1);
  toast = adw_toast_new (escaped);
  adw_toast_set_priority (toast, ADW_TOAST_PRIORITY_HIGH);
  adw_toast_set_timeout (toast, len > TOAST_MAX_CHARS ? 0 : 8);
  if (len > TOAST_MAX_CHARS)
    {
      adw_toast_set_button_label (toast, "Details");
      adw_toast_set_action_name (toast, "win.show-error");
      adw_toast_set_action_target_value (toast, g_variant_new_string (error->message));
    }
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

static void
on_workspace_error (StudioWorkspace *workspace, const GError *error, StudioWindow *self)
{
  studio_window_show_error (self, error);
}

GtkWidget *
studio_window_get_page (StudioWindow *self, const char *name)
{
  return adw_view_stack_get_child_by_name (self->stack, name);
}

void
studio_window_show_page (StudioWindow *self, const char *name)
{
  adw_view_stack_set_visible_child_name (self->stack, name);
}

StudioWorkspace *
studio_window_get_workspace (StudioWindow *self)
{
  return self->workspace;
}

void
studio_window_open_model_file (StudioWindow *self, GFile *folder)
{
  g_autofree char *path = g_file_get_path (folder);

  if (path == NULL)
    {
      studio_window_show_toast (self, "Only local folders can be opened");
      return;
    }
  studio_workspace_open_model (self->workspace, path);
}

void
studio_window_open_dataset_file (StudioWindow *self, GFile *file)
{
  g_autofree char *path = g_file_get_path (file);

  if (path == NULL)
    {
      studio_window_show_toast (self, "Only local files can be opened");
      return;
    }
  studio_workspace_set_dataset_path (self->workspace, path);
}

void
studio_window_open_run_folder (StudioWindow *self, GFile *folder)
{
  g_autofree char *path = g_file_get_path (folder);
  g_autoptr(GError) error = NULL;

  if (path == NULL || !studio_workspace_open_run (self->workspace, path, &error))
    {
      if (error)
        studio_window_show_error (self, error);
      return;
    }
  studio_window_show_page (self, "train");
}

void
studio_window_open_paths (StudioWindow *self, const char *model, const char *dataset)
{
  g_autofree char *def_model = model ? NULL : studio_paths_default_model ();
  g_autofree char *def_data = dataset ? NULL : studio_paths_default_dataset ();

  if (model || def_model)
    studio_workspace_open_model (self->workspace, model ? model : def_model);
  if (dataset)
    {
      g_autoptr(GFile) f = g_file_new_for_commandline_arg (dataset);
      studio_window_open_dataset_file (self, f);
    }
  else if (def_data)
    studio_workspace_set_dataset_path (self->workspace, def_data);
}

/* ---- first-run hint ---------------------------------------------------------------------- */

static void
setup_hint (StudioWindow *self)
{
  g_autofree char *def_model = studio_paths_default_model ();

  if (g_settings_get_boolean (self->settings, "first-run-done"))
    return;
  if (def_model)
    gtk_label_set_markup (self->hint_label,
                          "<b>New here?</b> The built-in model and a sample dataset are open. "
                          "Go to <b>Train</b> and press <b>Start</b>: the loss falls within a "
                          "minute; then ask the result something on <b>Chat</b>.");
  else
    gtk_label_set_markup (self->hint_label,
                          "<b>New here?</b> Open a model folder (Ctrl+O) or download a small "
                          "model on the <b>Model</b> page, open a dataset on <b>Data</b>, then "
                          "press <b>Start</b> on <b>Train</b>.");
  gtk_widget_set_visible (self->hint_start_button, def_model != NULL);
  gtk_revealer_set_reveal_child (self->hint_revealer, TRUE);
}

/* ---- run state in the header bar --------------------------------------------------------- */

static void
update_run_status (StudioWindow *self)
{
  StudioTrainingSession *s = self->watched;
  g_autofree char *text = NULL;

  if (s && studio_training_session_is_active (s))
    {
      StudioTrainState st = studio_training_session_get_state (s);
      double f = studio_training_session_get_fraction (s);
      const char *what = st == STUDIO_TRAIN_PAUSED ? "Paused"
                       : st == STUDIO_TRAIN_STOPPING ? "Stopping"
                       : st == STUDIO_TRAIN_LOADING ? "Loading" : "Training";
      text = g_strdup_printf ("%s %.0f%%", what, 100 * f);
    }
  gtk_label_set_text (self->run_status, text ? text : "");
  gtk_widget_set_visible (GTK_WIDGET (self->run_status), text != NULL);
}

static void
on_session_changed (StudioTrainingSession *session, GParamSpec *pspec, StudioWindow *self)
{
  studio_window_update_actions (self);
  update_run_status (self);
}

static void
on_session_finished (StudioTrainingSession *session, StudioWindow *self)
{
  StudioTrainState st = studio_training_session_get_state (session);

  if (self->close_after_stop)
    {
      gtk_window_close (GTK_WINDOW (self));
      return;
    }
  if (st == STUDIO_TRAIN_FINISHED)
    studio_window_show_toast (self, "Training finished: the result is ready on Chat and Export");
  else if (st == STUDIO_TRAIN_STOPPED)
    studio_window_show_toast (self, "Training stopped; a checkpoint was saved");
  else if (st == STUDIO_TRAIN_FAILED && studio_training_session_get_error (session))
    studio_window_show_error (self, studio_training_session_get_error (session));
}

static void
watch_session (StudioWindow *self, StudioTrainingSession *session)
{
  if (self->watched)
    {
      g_signal_handlers_disconnect_by_data (self->watched, self);
      g_clear_object (&self->watched);
    }
  if (session)
    {
      self->watched = g_object_ref (session);
      g_signal_connect (session, "notify::state", G_CALLBACK (on_session_changed), self);
      g_signal_connect (session, "notify::active", G_CALLBACK (on_session_changed), self);
      g_signal_connect (session, "notify::fraction", G_CALLBACK (on_session_changed), self);
      g_signal_connect (session, "notify::model-borrowed", G_CALLBACK (on_session_changed), self);
      g_signal_connect (session, "finished", G_CALLBACK (on_session_finished), self);
    }
  studio_window_update_actions (self);
  update_run_status (self);
}

static void
on_workspace_session (StudioWorkspace *workspace, GParamSpec *pspec, StudioWindow *self)
{
  watch_session (self, studio_workspace_get_session (workspace));
}

static void
on_workspace_inputs (StudioWorkspace *workspace, GParamSpec *pspec, StudioWindow *self)
{
  studio_window_update_actions (self);
}

/* ---- closing ----------------------------------------------------------------------------- */

static void
save_window_state (StudioWindow *self)
{
  int width, height;

  gtk_window_get_default_size (GTK_WINDOW (self), &width, &height);
  g_settings_set_boolean (self->settings, "window-maximized",
                          gtk_window_is_maximized (GTK_WINDOW (self)));
  if (!gtk_window_is_maximized (GTK_WINDOW (self)) && width > 0 && height > 0)
    {
      g_settings_set_int (self->settings, "window-width", width);
      g_settings_set_int (self->settings, "window-height", height);
    }
  g_settings_set_string (self->settings, "last-page",
                         adw_view_stack_get_visible_child_name (self->stack));
}

static void
close_response (AdwMessageDialog *dialog, const char *response, StudioWindow *self)
{
  StudioTrainingSession *s = studio_workspace_get_session (self->workspace);

  if (g_strcmp0 (response, "stop") != 0 || s == NULL)
    return;
  /* The trainer saves a checkpoint on stop; the window closes when the thread is done. */
  self->close_after_stop = TRUE;
  studio_training_session_stop (s);
  if (!studio_training_session_is_active (s))
    gtk_window_close (GTK_WINDOW (self));
}

static gboolean
studio_window_close_request (GtkWindow *window)
{
  StudioWindow *self = STUDIO_WINDOW (window);
  StudioTrainingSession *s = studio_workspace_get_session (self->workspace);
  GtkWidget *dialog;

  save_window_state (self);
  if (s == NULL || !studio_training_session_is_active (s))
    return GTK_WINDOW_CLASS (studio_window_parent_class)->close_request (window);
  if (self->close_after_stop)
    return TRUE;   /* already stopping: keep the window until the checkpoint is written */

  dialog = adw_message_dialog_new (window, "Training Is Still Running",
                                   "Stop the run and close? A checkpoint is saved first, so the "
                                   "run can be resumed later from the Train page.");
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "keep", "_Keep Training",
                                    "stop", "_Stop and Close",
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "stop",
                                              ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "keep");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "keep");
  g_signal_connect (dialog, "response", G_CALLBACK (close_response), self);
  gtk_window_present (GTK_WINDOW (dialog));
  return TRUE;
}

/* ---- construction ------------------------------------------------------------------------ */

static void
studio_window_constructed (GObject *object)
{
  StudioWindow *self = STUDIO_WINDOW (object);
  g_autofree char *page = NULL;

  G_OBJECT_CLASS (studio_window_parent_class)->constructed (object);
  gtk_window_set_default_size (GTK_WINDOW (self),
                               g_settings_get_int (self->settings, "window-width"),
                               g_settings_get_int (self->settings, "window-height"));
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));
  page = g_settings_get_string (self->settings, "last-page");
  if (adw_view_stack_get_child_by_name (self->stack, page))
    adw_view_stack_set_visible_child_name (self->stack, page);
  setup_hint (self);
}

static void
studio_window_dispose (GObject *object)
{
  StudioWindow *self = STUDIO_WINDOW (object);

  watch_session (self, NULL);
  if (self->workspace)
    g_signal_handlers_disconnect_by_data (self->workspace, self);
  /* libadwaita 1.2 logs a critical when a view switcher outlives its stack's pages during
   * disposal: detach both switchers first. */
  if (self->switcher_title)
    adw_view_switcher_title_set_stack (self->switcher_title, NULL);
  if (self->switcher_bar)
    adw_view_switcher_bar_set_stack (self->switcher_bar, NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), STUDIO_TYPE_WINDOW);
  g_clear_object (&self->workspace);
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (studio_window_parent_class)->dispose (object);
}

static void
studio_window_class_init (StudioWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->constructed = studio_window_constructed;
  object_class->dispose = studio_window_dispose;
  window_class->close_request = studio_window_close_request;

  g_type_ensure (STUDIO_TYPE_MODEL_PAGE);
  g_type_ensure (STUDIO_TYPE_DATA_PAGE);
  g_type_ensure (STUDIO_TYPE_TRAIN_PAGE);
  g_type_ensure (STUDIO_TYPE_CHAT_PAGE);
  g_type_ensure (STUDIO_TYPE_QUANT_PAGE);
  g_type_ensure (STUDIO_TYPE_EXPORT_PAGE);

  gtk_widget_class_set_template_from_resource (widget_class, STUDIO_RESOURCE_PATH "/studio-window.ui");
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, stack);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, switcher_title);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, switcher_bar);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, hint_revealer);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, hint_label);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, hint_start_button);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, run_status);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, model_page);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, data_page);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, train_page);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, chat_page);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, quant_page);
  gtk_widget_class_bind_template_child (widget_class, StudioWindow, export_page);
}

static void
studio_window_init (StudioWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->settings = studio_settings_new ();
  self->workspace = studio_workspace_new (self->settings);
  g_signal_connect (self->workspace, "error", G_CALLBACK (on_workspace_error), self);
  g_signal_connect (self->workspace, "notify::session", G_CALLBACK (on_workspace_session), self);
  g_signal_connect (self->workspace, "notify::model", G_CALLBACK (on_workspace_inputs), self);
  g_signal_connect (self->workspace, "notify::dataset-path", G_CALLBACK (on_workspace_inputs), self);

  studio_model_page_set_workspace (STUDIO_MODEL_PAGE (self->model_page), self->workspace);
  studio_data_page_set_workspace (STUDIO_DATA_PAGE (self->data_page), self->workspace);
  studio_train_page_set_workspace (STUDIO_TRAIN_PAGE (self->train_page), self->workspace);
  studio_chat_page_set_workspace (STUDIO_CHAT_PAGE (self->chat_page), self->workspace);
  studio_quant_page_set_workspace (STUDIO_QUANT_PAGE (self->quant_page), self->workspace);
  studio_export_page_set_workspace (STUDIO_EXPORT_PAGE (self->export_page), self->workspace);

  studio_window_actions_init (self);
}

StudioWindow *
studio_window_new (GtkApplication *application)
{
  return g_object_new (STUDIO_TYPE_WINDOW, "application", application, NULL);
}
