/* studio-quant-page.c: quantizing the open model, with the engine's quality report. */
#define G_LOG_DOMAIN "studio"

#include "studio-engine.h"
#include "studio-error.h"
#include "studio-file-chooser.h"
#include "studio-job.h"
#include "studio-quant-page.h"

/* Order of the Method row. */
static const char *const method_names[] = { "nf4", "int4", "awq", "gptq", "int8" };
static const int group_sizes[] = { 32, 64, 128 };

struct _StudioQuantPage
{
  AdwBin parent_instance;

  /* Template widgets */
  GtkWidget *missing_group, *report_group, *cancel_button;
  AdwActionRow *missing_row, *model_row, *calib_row, *output_row;
  AdwComboRow *method_row, *group_row;
  GtkProgressBar *progress_bar;
  GtkListBox *report_list;

  /* Owned */
  StudioWorkspace *workspace;
  StudioJob *job;
  char *calibration;
  char *output;
  gboolean output_chosen;
  guint report_rows;
};

G_DEFINE_FINAL_TYPE (StudioQuantPage, studio_quant_page, ADW_TYPE_BIN)

static void
update_output (StudioQuantPage *self)
{
  StudioModel *model = self->workspace ? studio_workspace_get_model (self->workspace) : NULL;
  g_autofree char *folder = NULL;
  g_autofree char *name = NULL;
  g_autofree char *base = NULL;

  if (self->output_chosen || model == NULL)
    {
      adw_action_row_set_subtitle (self->output_row, self->output ? self->output : "");
      return;
    }
  folder = studio_workspace_dup_output_folder (self->workspace);
  base = g_strdup (studio_model_get_name (model));
  g_strdelimit (base, "/", '-');
  name = g_strdup_printf ("%s-%s", base,
                          method_names[MIN (adw_combo_row_get_selected (self->method_row), 4)]);
  g_free (self->output);
  self->output = g_build_filename (folder, "quantized", name, NULL);
  adw_action_row_set_subtitle (self->output_row, self->output);
}

static void
update_rows (StudioQuantPage *self)
{
  StudioModel *model = self->workspace ? studio_workspace_get_model (self->workspace) : NULL;
  guint method = adw_combo_row_get_selected (self->method_row);

  adw_action_row_set_subtitle (self->model_row, model ? studio_model_get_path (model)
                                                      : "Open a model on the Model page");
  /* NF4 blocks are fixed at 64 and INT8 is per channel: the group size is an INT4 setting. */
  gtk_widget_set_sensitive (GTK_WIDGET (self->group_row), method >= 1 && method <= 3);
  if (self->calibration)
    adw_action_row_set_subtitle (self->calib_row, self->calibration);
  update_output (self);
}

static void
method_changed_cb (StudioQuantPage *self)
{
  update_rows (self);
}

static void
on_model (StudioWorkspace *ws, GParamSpec *pspec, StudioQuantPage *self)
{
  update_rows (self);
}

static void
calibration_chosen (GFile *file, gpointer data)
{
  g_autoptr(StudioQuantPage) self = data;

  if (file == NULL)
    return;
  g_free (self->calibration);
  self->calibration = g_file_get_path (file);
  update_rows (self);
}

static void
choose_calibration (GtkWidget *widget, const char *action_name, GVariant *param)
{
  static const char *const patterns[] = { "*.txt", "*.jsonl", "*.json", "*.csv", NULL };
  StudioChooseOptions opts = {
    .kind = STUDIO_CHOOSE_OPEN_FILE,
    .title = "Choose Calibration Text",
    .filter_name = "Text and datasets",
    .patterns = patterns,
  };

  studio_file_chooser_run (GTK_WINDOW (gtk_widget_get_root (widget)), &opts, calibration_chosen,
                           g_object_ref (widget));
}

static void
output_chosen (GFile *file, gpointer data)
{
  g_autoptr(StudioQuantPage) self = data;

  if (file == NULL)
    return;
  g_free (self->output);
  self->output = g_file_get_path (file);
  self->output_chosen = TRUE;
  update_rows (self);
}

static void
choose_output (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioQuantPage *self = STUDIO_QUANT_PAGE (widget);
  g_autofree char *name = self->output ? g_path_get_basename (self->output) : NULL;
  StudioChooseOptions opts = {
    .kind = STUDIO_CHOOSE_SAVE_FILE,
    .title = "Name the Quantized Model Folder",
    .initial_name = name,
  };

  studio_file_chooser_run (GTK_WINDOW (gtk_widget_get_root (widget)), &opts, output_chosen,
                           g_object_ref (self));
}

/* ---- the job ----------------------------------------------------------------------------- */

typedef struct {
  char *model_dir, *output, *calibration, *method;
  int group_size;
} QuantInput;

static void
quant_input_free (gpointer data)
{
  QuantInput *in = data;
  g_free (in->model_dir);
  g_free (in->output);
  g_free (in->calibration);
  g_free (in->method);
  g_free (in);
}

/* The report as (label, value) pairs, NULL-terminated. */
static gpointer
quant_thread (StudioJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  studio_error_missing_engine (STUDIO_MISSING_QUANTIZE, error);
  return NULL;
}

static void
add_report_row (StudioQuantPage *self, const char *label, const char *value)
{
  GtkWidget *row = adw_action_row_new ();
  GtkWidget *v = gtk_label_new (value);

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), label);
  gtk_widget_add_css_class (v, "numeric");
  gtk_label_set_selectable (GTK_LABEL (v), TRUE);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), v);
  gtk_list_box_append (self->report_list, row);
  self->report_rows++;
}

static void
quantized (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(StudioQuantPage) self = data;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) report = studio_job_finish (STUDIO_JOB (source), result, &error);
  GtkWidget *child;

  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), FALSE);
  gtk_widget_set_visible (self->cancel_button, FALSE);
  if (report == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_prefix_error (&error, "Quantization failed: ");
          studio_workspace_report_error (self->workspace, error);
        }
      return;
    }
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->report_list))))
    gtk_list_box_remove (self->report_list, child);
  self->report_rows = 0;
  for (guint i = 0; report[i] && report[i + 1]; i += 2)
    add_report_row (self, report[i], report[i + 1]);
  gtk_widget_set_visible (self->report_group, TRUE);
}

static void
on_progress (StudioJob *job, GParamSpec *pspec, StudioQuantPage *self)
{
  double f = studio_job_get_fraction (job);

  if (f < 0)
    gtk_progress_bar_pulse (self->progress_bar);
  else
    gtk_progress_bar_set_fraction (self->progress_bar, f);
  gtk_progress_bar_set_text (self->progress_bar, studio_job_get_text (job));
}

static void
on_running (StudioJob *job, GParamSpec *pspec, StudioQuantPage *self)
{
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "panel.quantize",
                                 STUDIO_HAVE_QUANTIZE && !studio_job_get_running (job));
}

gboolean
studio_quant_page_start (StudioQuantPage *self, GError **error)
{
  StudioModel *model = studio_workspace_get_model (self->workspace);
  guint method = MIN (adw_combo_row_get_selected (self->method_row), 4);
  QuantInput *in;

  if (!STUDIO_HAVE_QUANTIZE)
    return studio_error_missing_engine (STUDIO_MISSING_QUANTIZE, error);
  if (studio_job_get_running (self->job))
    return TRUE;
  if (model == NULL)
    {
      g_set_error_literal (error, STUDIO_ERROR, STUDIO_ERROR_INVALID,
                           "Open a model first (Model page)");
      return FALSE;
    }
  if ((method == 2 || method == 3) && self->calibration == NULL)
    {
      g_set_error_literal (error, STUDIO_ERROR, STUDIO_ERROR_INVALID,
                           "AWQ and GPTQ need calibration text: choose a file");
      return FALSE;
    }
  in = g_new0 (QuantInput, 1);
  in->model_dir = g_strdup (studio_model_get_path (model));
  in->output = g_strdup (self->output);
  in->calibration = g_strdup (self->calibration);
  in->method = g_strdup (method_names[method]);
  in->group_size = group_sizes[MIN (adw_combo_row_get_selected (self->group_row), 2)];
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), TRUE);
  gtk_widget_set_visible (self->cancel_button, TRUE);
  studio_job_run (self->job, quant_thread, in, quant_input_free, (GDestroyNotify) g_strfreev,
                  quantized, g_object_ref (self));
  return TRUE;
}

static void
quantize_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioQuantPage *self = STUDIO_QUANT_PAGE (widget);
  g_autoptr(GError) error = NULL;

  if (!studio_quant_page_start (self, &error))
    studio_workspace_report_error (self->workspace, error);
}

static void
cancel_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  studio_job_cancel (STUDIO_QUANT_PAGE (widget)->job);
}

gboolean
studio_quant_page_is_busy (StudioQuantPage *self)
{
  return studio_job_get_running (self->job);
}

guint
studio_quant_page_get_report_rows (StudioQuantPage *self)
{
  return self->report_rows;
}

void
studio_quant_page_set_workspace (StudioQuantPage *self, StudioWorkspace *workspace)
{
  g_return_if_fail (STUDIO_IS_QUANT_PAGE (self));
  g_return_if_fail (self->workspace == NULL);
  self->workspace = g_object_ref (workspace);
  g_signal_connect_object (workspace, "notify::model", G_CALLBACK (on_model), self, 0);
  update_rows (self);
}

static void
studio_quant_page_dispose (GObject *object)
{
  StudioQuantPage *self = STUDIO_QUANT_PAGE (object);

  if (self->job)
    studio_job_cancel (self->job);
  /* AdwBin (libadwaita 1.2) unparents its child again in its own dispose: let it go first. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), STUDIO_TYPE_QUANT_PAGE);
  g_clear_object (&self->job);
  g_clear_object (&self->workspace);
  G_OBJECT_CLASS (studio_quant_page_parent_class)->dispose (object);
}

static void
studio_quant_page_finalize (GObject *object)
{
  StudioQuantPage *self = STUDIO_QUANT_PAGE (object);

  g_free (self->calibration);
  g_free (self->output);
  G_OBJECT_CLASS (studio_quant_page_parent_class)->finalize (object);
}

static void
studio_quant_page_class_init (StudioQuantPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = studio_quant_page_dispose;
  object_class->finalize = studio_quant_page_finalize;
  gtk_widget_class_set_template_from_resource (widget_class,
                                               STUDIO_RESOURCE_PATH "/studio-quant-page.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, StudioQuantPage, name)
  BIND (missing_group); BIND (report_group); BIND (cancel_button); BIND (missing_row);
  BIND (model_row); BIND (calib_row); BIND (output_row); BIND (method_row); BIND (group_row);
  BIND (progress_bar); BIND (report_list);
#undef BIND
  gtk_widget_class_bind_template_callback (widget_class, method_changed_cb);
  gtk_widget_class_install_action (widget_class, "panel.choose-calibration", NULL, choose_calibration);
  gtk_widget_class_install_action (widget_class, "panel.choose-output", NULL, choose_output);
  gtk_widget_class_install_action (widget_class, "panel.quantize", NULL, quantize_action);
  gtk_widget_class_install_action (widget_class, "panel.cancel", NULL, cancel_action);
}

static void
studio_quant_page_init (StudioQuantPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->job = studio_job_new ("Quantizing");
  g_signal_connect (self->job, "notify::fraction", G_CALLBACK (on_progress), self);
  g_signal_connect (self->job, "notify::text", G_CALLBACK (on_progress), self);
  g_signal_connect (self->job, "notify::running", G_CALLBACK (on_running), self);
  on_running (self->job, NULL, self);
#if !STUDIO_HAVE_QUANTIZE
  gtk_widget_set_visible (self->missing_group, TRUE);
  adw_action_row_set_subtitle (self->missing_row,
                               "Quantizing a whole model needs " STUDIO_MISSING_QUANTIZE
                               " and its quality report, which have not landed in this source "
                               "tree yet. This page switches on by itself once they are built in.");
#endif
}
