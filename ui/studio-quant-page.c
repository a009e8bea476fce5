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
  {
    static const char *const what[] = {
      "QLoRA's 4-bit normal float, blocks of 64: no data needed",
      "4-bit groups rounded to nearest: no data needed",
      "4-bit, activation-aware scaling (AWQ): needs calibration text",
      "4-bit with error correction (GPTQ): needs calibration text",
      "8 bits per weight, one scale per row: nearly lossless",
    };
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->method_row), what[MIN (method, 4)]);
  }
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

#if STUDIO_HAVE_QUANTIZE
static bool
quant_progress (const SutraQuantizeProgress *p, void *data)    /* worker thread */
{
  StudioJob *job = data;
  static const char *const phases[] = { "Calibrating", "Quantizing", "Measuring quality",
                                        "Writing" };
  g_autofree char *text = NULL;

  if (p->name)
    text = g_strdup_printf ("%s %s (%d/%d)", phases[p->phase], p->name, p->done, p->total);
  else
    text = g_strdup_printf ("%s (%d/%d)", phases[p->phase], p->done, p->total);
  studio_job_report (job, CLAMP (p->fraction, 0, 1), text);
  return !atomic_load (studio_job_cancel_flag (job));
}

/* Text through the model's tokenizer, special tokens added as the model expects (the same
 * reading as `sutra quantize --calib`). */
static int *
read_text_ids (const char *model_dir, const char *path, int *n, GError **error)
{
  g_autoptr(SutraTokenizer) tok = NULL;
  g_autofree char *text = NULL;
  gsize len;
  SutraEncoding enc = { 0 };
  SutraError err = { 0 };
  int *ids;

  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  if (sutra_tokenizer_load (model_dir, &tok, &err) != SUTRA_OK ||
      sutra_tokenizer_encode (tok, text, len, SUTRA_ENCODE_ADD_SPECIAL, &enc, &err) != SUTRA_OK)
    {
      sutra_error_prefix (&err, "%s", path);
      studio_error_from_sutra (&err, error);
      return NULL;
    }
  ids = g_new (int, MAX (enc.n, 1));
  for (size_t i = 0; i < enc.n; i++)
    ids[i] = enc.ids[i];
  *n = (int) enc.n;
  sutra_encoding_clear (&enc);
  return ids;
}

static char *
format_ratio (double before, double after)
{
  g_autofree char *a = g_format_size ((guint64) before);
  g_autofree char *b = g_format_size ((guint64) after);
  return g_strdup_printf ("%s → %s (%.1f× smaller)", a, b, after > 0 ? before / after : 0);
}
#endif

/* The report as (label, value) pairs, NULL-terminated. */
static gpointer
quant_thread (StudioJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
#if STUDIO_HAVE_QUANTIZE
  QuantInput *in = data;
  g_autoptr(SutraModel) m = NULL;
  g_autofree int *ids = NULL;
  g_autofree SutraBatch *batches = NULL;
  SutraQuantizeOptions o = { 0 };
  SutraQuantReport rep;
  SutraError err = { 0 };
  GPtrArray *rows;
  int n_ids = 0, T = 512, nb = 0;

  studio_job_report (job, -1, "Loading the model…");
  /* Quantization works in place: on a fresh load, never on the model the pages share. */
  if (sutra_model_load (in->model_dir, &m, &err) != SUTRA_OK)
    {
      studio_error_from_sutra (&err, error);
      return NULL;
    }
  if (g_str_equal (in->method, "nf4"))
    o.params.type = SUTRA_QUANT_NF4;
  else if (g_str_equal (in->method, "int8"))
    o.params.type = SUTRA_QUANT_INT8;
  else
    {
      o.params.type = SUTRA_QUANT_INT4;
      o.params.method = g_str_equal (in->method, "awq") ? SUTRA_QMETHOD_AWQ
                      : g_str_equal (in->method, "gptq") ? SUTRA_QMETHOD_GPTQ : SUTRA_QMETHOD_RTN;
      o.params.group_size = in->group_size;
    }
  if (m->cfg.max_position_embeddings > 0 && T > m->cfg.max_position_embeddings)
    T = m->cfg.max_position_embeddings;
  if (in->calibration)
    {
      ids = read_text_ids (in->model_dir, in->calibration, &n_ids, error);
      if (ids == NULL)
        return NULL;
    }
  if (o.params.method != SUTRA_QMETHOD_RTN)
    {
      /* Calibration windows of T tokens over at most 4096 tokens, as the CLI does. */
      int nc = MIN (n_ids, 4096);
      batches = g_new0 (SutraBatch, nc / T + 1);
      for (int off = 0; off + 1 < nc; off += T)
        batches[nb++] = (SutraBatch) { 1, MIN (nc - off, T), ids + off, NULL, NULL };
      if (nb == 0)
        {
          g_set_error (error, STUDIO_ERROR, STUDIO_ERROR_INVALID,
                       "%s holds fewer than 2 tokens: too little to calibrate on", in->calibration);
          return NULL;
        }
      o.calib = batches;
      o.n_calib = nb;
    }
  o.progress = quant_progress;
  o.user_data = job;
  o.cancel = studio_job_cancel_flag (job);
  if (sutra_quantize_to_folder (m, in->output, TRUE, &o, ids, n_ids, T, &rep, &err) != SUTRA_OK)
    {
      studio_error_from_sutra (&err, error);
      return NULL;
    }

  rows = g_ptr_array_new ();
#define ROW(label, ...) G_STMT_START { g_ptr_array_add (rows, g_strdup (label)); \
                                       g_ptr_array_add (rows, g_strdup_printf (__VA_ARGS__)); } G_STMT_END
  g_ptr_array_add (rows, g_strdup ("Weights file"));
  g_ptr_array_add (rows, format_ratio (rep.source_file_bytes, rep.file_bytes));
  ROW ("Bits per weight (quantized layers)", "%.2f", rep.bits_per_weight);
  ROW ("Bits per parameter (whole file)", "%.2f", rep.bits_per_param_file);
  ROW ("Layers quantized", "%d", rep.summary.n_quantized);
  if (rep.evaluated)
    {
      ROW ("Perplexity before → after", "%.3f → %.3f (%+.2f %%)", rep.eval.ppl_ref,
           rep.eval.ppl_quant, 100 * (rep.eval.ppl_quant / rep.eval.ppl_ref - 1));
      ROW ("KL divergence (mean / p99 / max)", "%.4f / %.4f / %.4f nats", rep.eval.kl_mean,
           rep.eval.kl_p99, rep.eval.kl_max);
      ROW ("Same top token", "%.1f %% of %" G_GINT64_FORMAT " positions",
           100 * rep.eval.top1_agree, (gint64) rep.eval.tokens);
    }
  else
    ROW ("Quality", "%s", "Not measured: choose a calibration text to compare perplexity and KL");
  ROW ("Time", "%.1f s", rep.summary.seconds);
  ROW ("Saved to", "%s", in->output);
  if (rep.summary.notes[0])
    ROW ("Notes", "%s", rep.summary.notes);
#undef ROW
  g_ptr_array_add (rows, NULL);
  return g_ptr_array_free (rows, FALSE);
#else
  studio_error_missing_engine (STUDIO_MISSING_QUANTIZE, error);
  return NULL;
#endif
}

static void
add_report_row (StudioQuantPage *self, const char *label, const char *value)
{
  GtkWidget *row = adw_action_row_new ();

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), label);
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  /* Short numbers line up on the right; paths and notes get the row's full width. */
  if (g_utf8_strlen (value, -1) <= 44)
    {
      GtkWidget *v = gtk_label_new (value);
      gtk_widget_add_css_class (v, "numeric");
      gtk_label_set_selectable (GTK_LABEL (v), TRUE);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), v);
    }
  else
    {
      g_autofree char *escaped = g_markup_escape_text (value, -1);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), escaped);
      adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 0);
    }
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

void
studio_quant_page_set_options (StudioQuantPage *self, guint method, guint group, const char *calibration,
                               const char *output)
{
  adw_combo_row_set_selected (self->method_row, method);
  adw_combo_row_set_selected (self->group_row, group);
  g_free (self->calibration);
  self->calibration = g_strdup (calibration);
  if (output)
    {
      g_free (self->output);
      self->output = g_strdup (output);
      self->output_chosen = TRUE;
    }
  update_rows (self);
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
