/* studio-export-page.c: PEFT adapter, merged model and GGUF exports with a self-test. */
#define G_LOG_DOMAIN "studio"

#include "studio-engine.h"
#include "studio-error.h"
#include "studio-export-page.h"

#include <math.h>
#include "studio-file-chooser.h"
#include "studio-job.h"

typedef enum { KIND_PEFT, KIND_MERGED, KIND_GGUF } Kind;

struct _StudioExportPage
{
  AdwBin parent_instance;

  /* Template widgets */
  GtkWidget *missing_group;
  AdwActionRow *missing_row, *source_row, *base_row, *output_row, *result_row, *selftest_row;
  AdwComboRow *kind_row, *dtype_row, *gguf_row;
  GtkSwitch *selftest_switch;
  AdwEntryRow *prompt_row;
  GtkProgressBar *progress_bar;
  GtkWidget *cancel_button, *result_group;

  /* Owned */
  StudioWorkspace *workspace;
  StudioJob *job;
  char *source;         /* adapter folder, run folder, or NULL (the base model itself) */
  char *output;
  gboolean output_chosen;
};

G_DEFINE_FINAL_TYPE (StudioExportPage, studio_export_page, ADW_TYPE_BIN)

static Kind
get_kind (StudioExportPage *self)
{
  return (Kind) adw_combo_row_get_selected (self->kind_row);
}

/* A default output name beside the runs: "<output folder>/exports/<source>-<kind>". */
static void
update_default_output (StudioExportPage *self)
{
  g_autofree char *folder = NULL;
  g_autofree char *base = NULL;
  g_autofree char *name = NULL;
  StudioModel *model;

  if (self->output_chosen || self->workspace == NULL)
    return;
  folder = studio_workspace_dup_output_folder (self->workspace);
  model = studio_workspace_get_model (self->workspace);
  if (self->source)
    {
      g_autofree char *parent = g_path_get_dirname (self->source);
      g_autofree char *leaf = g_path_get_basename (self->source);
      /* ".../run-X/adapter" and ".../run-X/model" read better as "run-X". */
      base = g_str_equal (leaf, "adapter") || g_str_equal (leaf, "model")
           ? g_path_get_basename (parent) : g_strdup (leaf);
    }
  else
    base = g_strdup (model ? studio_model_get_name (model) : "model");
  g_strdelimit (base, "/", '-');
  switch (get_kind (self))
    {
    case KIND_PEFT: name = g_strdup_printf ("%s-peft", base); break;
    case KIND_MERGED: name = g_strdup_printf ("%s-merged", base); break;
    case KIND_GGUF: name = g_strdup_printf ("%s.gguf", base); break;
    }
  g_free (self->output);
  self->output = g_build_filename (folder, "exports", name, NULL);
  adw_action_row_set_subtitle (self->output_row, self->output);
}

static void
update_rows (StudioExportPage *self)
{
  StudioModel *model = self->workspace ? studio_workspace_get_model (self->workspace) : NULL;
  Kind kind = get_kind (self);

  adw_action_row_set_subtitle (self->source_row, self->source ? self->source
                               : "None: the base model is exported as it is (merged or GGUF)");
  adw_action_row_set_subtitle (self->base_row, model ? studio_model_get_path (model)
                                                     : "Open a model on the Model page");
  {
    static const char *const what[] = {
      "Small: only the trained adapter, loaded with the base model (PEFT layout)",
      "A complete Hugging Face model with the adapter folded into its weights",
      "One file for llama.cpp and Ollama, with the tokenizer inside",
    };
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->kind_row), what[kind]);
  }
  gtk_widget_set_visible (GTK_WIDGET (self->dtype_row), kind == KIND_MERGED);
  gtk_widget_set_visible (GTK_WIDGET (self->gguf_row), kind == KIND_GGUF);
#if !STUDIO_HAVE_GGUF_EXPORT
  adw_action_row_set_subtitle (ADW_ACTION_ROW (self->gguf_row),
                               "GGUF needs " STUDIO_MISSING_GGUF ", which this build does not "
                               "include yet");
#endif
  update_default_output (self);
}

static void
kind_changed_cb (StudioExportPage *self)
{
  update_rows (self);
}

static gboolean is_model_folder (const char *dir);

static void
on_adapter (StudioWorkspace *ws, GParamSpec *pspec, StudioExportPage *self)
{
  g_free (self->source);
  self->source = g_strdup (studio_workspace_get_adapter_dir (ws));
  /* A fully fine-tuned model has no adapter to export: offer it merged instead. */
  if (self->source && is_model_folder (self->source) && get_kind (self) == KIND_PEFT)
    adw_combo_row_set_selected (self->kind_row, KIND_MERGED);
  update_rows (self);
}

static void
on_model (StudioWorkspace *ws, GParamSpec *pspec, StudioExportPage *self)
{
  update_rows (self);
}

/* ---- choosing folders -------------------------------------------------------------------- */

static void
source_chosen (GFile *file, gpointer data)
{
  g_autoptr(StudioExportPage) self = data;

  if (file == NULL)
    return;
  g_free (self->source);
  self->source = g_file_get_path (file);
  update_rows (self);
}

static void
choose_source (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioExportPage *self = STUDIO_EXPORT_PAGE (widget);
  StudioChooseOptions opts = {
    .kind = STUDIO_CHOOSE_OPEN_FOLDER,
    .title = "Choose an Adapter or Run Folder",
  };

  studio_file_chooser_run (GTK_WINDOW (gtk_widget_get_root (widget)), &opts, source_chosen,
                           g_object_ref (self));
}

static void
output_chosen (GFile *file, gpointer data)
{
  g_autoptr(StudioExportPage) self = data;

  if (file == NULL)
    return;
  g_free (self->output);
  self->output = g_file_get_path (file);
  self->output_chosen = TRUE;
  adw_action_row_set_subtitle (self->output_row, self->output);
}

static void
choose_output (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioExportPage *self = STUDIO_EXPORT_PAGE (widget);
  g_autofree char *dir = self->output ? g_path_get_dirname (self->output) : NULL;
  g_autofree char *name = self->output ? g_path_get_basename (self->output) : NULL;
  g_autoptr(GFile) folder = dir && g_file_test (dir, G_FILE_TEST_IS_DIR) ? g_file_new_for_path (dir) : NULL;
  StudioChooseOptions opts = {
    .kind = STUDIO_CHOOSE_SAVE_FILE,
    .title = get_kind (self) == KIND_GGUF ? "Save the GGUF File" : "Name the Export Folder",
    .initial_folder = folder,
    .initial_name = name,
  };

  studio_file_chooser_run (GTK_WINDOW (gtk_widget_get_root (widget)), &opts, output_chosen,
                           g_object_ref (self));
}

/* ---- the export job ---------------------------------------------------------------------- */

typedef struct {
  char *source, *model_dir, *output, *gguf_type, *prompt;
  Kind kind;
  SutraDType dtype;
  gboolean selftest;
} ExportInput;

static void
export_input_free (gpointer data)
{
  ExportInput *in = data;
  g_free (in->source);
  g_free (in->model_dir);
  g_free (in->output);
  g_free (in->gguf_type);
  g_free (in->prompt);
  g_free (in);
}

/* A model folder (config.json) that is not an adapter folder. */
static gboolean
is_model_folder (const char *dir)
{
  g_autofree char *cfg = g_build_filename (dir, "config.json", NULL);
  g_autofree char *acfg = g_build_filename (dir, "adapter_config.json", NULL);

  return g_file_test (cfg, G_FILE_TEST_IS_REGULAR) && !g_file_test (acfg, G_FILE_TEST_IS_REGULAR);
}

#if STUDIO_HAVE_EXPORT
static bool
export_progress (double fraction, const char *what, void *data)   /* worker thread */
{
  StudioJob *job = data;

  studio_job_report (job, CLAMP (fraction, 0, 1), what);
  return !atomic_load (studio_job_cancel_flag (job));
}
#endif

#if STUDIO_HAVE_EXPORT && STUDIO_HAVE_GGUF_EXPORT
/* The weights a GGUF export writes: the base (or a full model) with the source's adapter. */
static SutraModel *
load_exported_source (ExportInput *in, SutraError *err)
{
  SutraModel *m = NULL;
  char *adapter = NULL;

  if (sutra_model_load (in->model_dir, &m, err) != SUTRA_OK)
    return NULL;
  if (in->source &&
      (sutra_export_find_adapter (in->source, &adapter, err) != SUTRA_OK ||
       sutra_lora_load (m, adapter, NULL, err) != SUTRA_OK))
    {
      free (adapter);
      sutra_model_free (m);
      return NULL;
    }
  free (adapter);
  return m;
}
#endif

/* Loads what was written, as someone receiving it would: the base model with the PEFT adapter,
 * the merged folder, or the base model with the GGUF file's weights imported (dequantized, as
 * llama.cpp would run them). */
static SutraModel *
load_export (ExportInput *in, SutraError *err)
{
  SutraModel *m = NULL;

  if (sutra_model_load (in->kind == KIND_MERGED ? in->output : in->model_dir, &m, err) != SUTRA_OK)
    return NULL;
  if (in->kind == KIND_PEFT && sutra_lora_load (m, in->output, NULL, err) != SUTRA_OK)
    goto fail;
#if STUDIO_HAVE_GGUF_EXPORT
  if (in->kind == KIND_GGUF && sutra_gguf_import_weights (m, in->output, err) != SUTRA_OK)
    goto fail;
#endif
  return m;
fail:
  sutra_model_free (m);
  return NULL;
}

/* Loads the export and answers the prompt with it (greedy, a short answer). Returns the verdict
 * line, or NULL with *error: the job then reports a failed test, not a failed export (the files
 * are written either way). Without the generation loop in this build it checks that the export
 * loads and that the prompt's next-token scores are finite. */
static char *
self_test (StudioJob *job, ExportInput *in, GError **error)
{
#if STUDIO_HAVE_TOKENIZER
  const char *tok_dir = in->kind == KIND_MERGED ? in->output : in->model_dir;
  g_autoptr(SutraModel) m = NULL;
  g_autoptr(SutraTokenizer) tok = NULL;
  SutraError err = { 0 };

  if ((m = load_export (in, &err)) == NULL || sutra_tokenizer_load (tok_dir, &tok, &err) != SUTRA_OK)
    {
      studio_error_from_sutra (&err, error);
      return NULL;
    }
#if STUDIO_HAVE_CHAT
  {
    g_autoptr(SutraChatTemplate) tmpl = NULL;
    g_autoptr(SutraChatSession) session = NULL;
    SutraChatSessionOptions o;
    SutraGenConfig gcfg;
    SutraGenParams p;
    SutraGenResult res;

    sutra_chat_session_options_init (&o);
    if (sutra_chat_template_load (tok_dir, NULL, &tmpl, &err) != SUTRA_OK ||
        sutra_chat_session_new (m, tok, tmpl, &o, &session, &err) != SUTRA_OK ||
        sutra_gen_config_load (tok_dir, &m->cfg, tok, &gcfg, &err) != SUTRA_OK)
      {
        studio_error_from_sutra (&err, error);
        return NULL;
      }
    sutra_gen_params_init (&p, &gcfg);
    p.sampler.do_sample = false;        /* greedy: the same export answers the same way */
    p.max_new_tokens = 48;
    if (sutra_chat_session_send (session, in->prompt, &p, NULL, NULL, &res, &err) != SUTRA_OK)
      {
        studio_error_from_sutra (&err, error);
        return NULL;
      }
    return g_strdup_printf ("Answered in %d tokens (%s): “%s”", res.n_generated,
                            sutra_stop_reason_name (res.reason), sutra_chat_session_reply (session));
  }
#else
  {
    SutraEncoding enc = { 0 };
    SutraGenState *st = NULL;
    g_autofree float *logits = NULL;
    size_t bad = 0, n;
    int V = m->cfg.vocab_size;

    if (sutra_tokenizer_encode (tok, in->prompt, strlen (in->prompt), SUTRA_ENCODE_ADD_SPECIAL,
                                &enc, &err) != SUTRA_OK)
      {
        studio_error_from_sutra (&err, error);
        return NULL;
      }
    n = enc.n;
    logits = g_new (float, V);
    if (n == 0 || m->vt->state_new (m, (int) n + 1, &st, &err) != SUTRA_OK ||
        m->vt->step (m, st, enc.ids, (int) n, logits, false, &err) != SUTRA_OK)
      {
        if (st)
          m->vt->state_free (st);
        sutra_encoding_clear (&enc);
        if (n == 0)
          g_set_error_literal (error, STUDIO_ERROR, STUDIO_ERROR_INVALID, "The prompt is empty");
        else
          studio_error_from_sutra (&err, error);
        return NULL;
      }
    m->vt->state_free (st);
    sutra_encoding_clear (&enc);
    for (int i = 0; i < V; i++)
      bad += !isfinite (logits[i]);
    if (bad)
      {
        g_set_error (error, STUDIO_ERROR, STUDIO_ERROR_NUMERIC,
                     "The export loads, but %zu of %d next-token scores are NaN or infinite: "
                     "the weights are broken", bad, V);
        return NULL;
      }
    return g_strdup_printf ("Loaded the export and ran the prompt (%zu tokens): every next-token "
                            "score is finite. A written answer needs %s, which this build does "
                            "not include yet.", n, STUDIO_MISSING_GENERATE);
  }
#endif
#else
  studio_error_missing_engine (STUDIO_MISSING_TOKENIZER, error);
  return NULL;
#endif
}

typedef struct {
  char *output;
  char *answer;
  char *test_error;
} ExportResult;

static void
export_result_free (gpointer data)
{
  ExportResult *r = data;
  g_free (r->output);
  g_free (r->answer);
  g_free (r->test_error);
  g_free (r);
}

static gpointer
export_thread (StudioJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  ExportInput *in = data;
  ExportResult *r;

#if STUDIO_HAVE_EXPORT
  SutraExportOptions o = { 0 };
  SutraError err = { 0 };
  g_autofree char *parent = g_path_get_dirname (in->output);

  if (g_mkdir_with_parents (parent, 0755) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "Could not create %s: %s",
                   parent, g_strerror (errno));
      return NULL;
    }
  if (in->kind == KIND_GGUF && !STUDIO_HAVE_GGUF_EXPORT)
    {
      studio_error_missing_engine (STUDIO_MISSING_GGUF, error);
      return NULL;
    }
  if (in->source && is_model_folder (in->source))
    {
      /* A full fine-tuning result is a model of its own: exported as it is. */
      if (in->kind == KIND_PEFT)
        {
          g_set_error (error, STUDIO_ERROR, STUDIO_ERROR_INVALID,
                       "%s is a fully fine-tuned model, not an adapter: export it as a merged "
                       "model or GGUF", in->source);
          return NULL;
        }
      g_free (in->model_dir);
      in->model_dir = g_steal_pointer (&in->source);
    }
  studio_job_report (job, 0, "Exporting…");
  if (in->kind == KIND_GGUF)
    {
#if STUDIO_HAVE_GGUF_EXPORT
      g_autoptr(SutraModel) m = load_exported_source (in, &err);
      if (m == NULL ||
          sutra_gguf_export_model (m, in->model_dir, in->output, in->gguf_type, export_progress, job,
                                   &err) != SUTRA_OK)
        {
          studio_error_from_sutra (&err, error);
          return NULL;
        }
#endif
    }
  else
    {
      o.kind = in->kind == KIND_PEFT ? SUTRA_EXPORT_PEFT : SUTRA_EXPORT_MERGED;
      o.dtype = in->dtype;
      o.progress = export_progress;
      o.user_data = job;
      if (sutra_export (in->source, in->model_dir, in->output, &o, &err) != SUTRA_OK)
        {
          studio_error_from_sutra (&err, error);
          return NULL;
        }
    }
#else
  studio_error_missing_engine (STUDIO_MISSING_EXPORT, error);
  return NULL;
#endif
  r = g_new0 (ExportResult, 1);
  r->output = g_strdup (in->output);
  if (in->selftest)
    {
      g_autoptr(GError) test_error = NULL;
      studio_job_report (job, -1, "Self-test: loading the export and answering the prompt…");
      r->answer = self_test (job, in, &test_error);
      if (r->answer == NULL)
        r->test_error = g_strdup (test_error->message);
    }
  return r;
}

static void
exported (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(StudioExportPage) self = data;
  g_autoptr(GError) error = NULL;
  ExportResult *r = studio_job_finish (STUDIO_JOB (source), result, &error);

  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), FALSE);
  gtk_widget_set_visible (self->cancel_button, FALSE);
  if (r == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_prefix_error (&error, "Export failed: ");
          studio_workspace_report_error (self->workspace, error);
        }
      return;
    }
  gtk_widget_set_visible (self->result_group, TRUE);
  adw_action_row_set_subtitle (self->result_row, r->output);
  gtk_widget_set_visible (GTK_WIDGET (self->selftest_row), r->answer || r->test_error);
  if (r->answer)
    {
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->selftest_row), "Self-test answer");
      adw_action_row_set_subtitle (self->selftest_row, r->answer);
    }
  else if (r->test_error)
    {
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->selftest_row), "Self-test not run");
      adw_action_row_set_subtitle (self->selftest_row, r->test_error);
    }
  export_result_free (r);
}

static void
on_progress (StudioJob *job, GParamSpec *pspec, StudioExportPage *self)
{
  double f = studio_job_get_fraction (job);

  if (f < 0)
    gtk_progress_bar_pulse (self->progress_bar);
  else
    gtk_progress_bar_set_fraction (self->progress_bar, f);
  gtk_progress_bar_set_text (self->progress_bar, studio_job_get_text (job));
}

static void
on_running (StudioJob *job, GParamSpec *pspec, StudioExportPage *self)
{
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "panel.export",
                                 STUDIO_HAVE_EXPORT && !studio_job_get_running (job));
}

gboolean
studio_export_page_start (StudioExportPage *self, GError **error)
{
  StudioModel *model = studio_workspace_get_model (self->workspace);
  ExportInput *in;
  static const SutraDType dtypes[] = { SUTRA_F32, SUTRA_F16, SUTRA_BF16 };
  static const char *const gguf_types[] = { "f16", "f32", "q8_0", "q4_0" };

  if (studio_job_get_running (self->job))
    return TRUE;
  if (model == NULL)
    {
      g_set_error_literal (error, STUDIO_ERROR, STUDIO_ERROR_INVALID,
                           "Open the base model first (Model page)");
      return FALSE;
    }
  if (get_kind (self) == KIND_PEFT && self->source == NULL)
    {
      g_set_error_literal (error, STUDIO_ERROR, STUDIO_ERROR_INVALID,
                           "A PEFT export needs an adapter: train one or choose a folder");
      return FALSE;
    }
  in = g_new0 (ExportInput, 1);
  in->source = g_strdup (self->source);
  in->model_dir = g_strdup (studio_model_get_path (model));
  in->output = g_strdup (self->output);
  in->kind = get_kind (self);
  in->dtype = dtypes[MIN (adw_combo_row_get_selected (self->dtype_row), 2)];
  in->gguf_type = g_strdup (gguf_types[MIN (adw_combo_row_get_selected (self->gguf_row), 3)]);
  in->selftest = gtk_switch_get_active (self->selftest_switch);
  in->prompt = g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->prompt_row)));
  gtk_widget_set_visible (self->result_group, FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->progress_bar), TRUE);
  gtk_widget_set_visible (self->cancel_button, TRUE);
  gtk_progress_bar_set_fraction (self->progress_bar, 0);
  studio_job_run (self->job, export_thread, in, export_input_free, export_result_free, exported,
                  g_object_ref (self));
  return TRUE;
}

static void
export_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioExportPage *self = STUDIO_EXPORT_PAGE (widget);
  g_autoptr(GError) error = NULL;

  if (!studio_export_page_start (self, &error))
    studio_workspace_report_error (self->workspace, error);
}

static void
cancel_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  studio_job_cancel (STUDIO_EXPORT_PAGE (widget)->job);
}

gboolean
studio_export_page_is_busy (StudioExportPage *self)
{
  return studio_job_get_running (self->job);
}

void
studio_export_page_set_output (StudioExportPage *self, const char *path)
{
  g_free (self->output);
  self->output = g_strdup (path);
  self->output_chosen = path != NULL;
  adw_action_row_set_subtitle (self->output_row, path ? path : "");
  update_default_output (self);
}

void
studio_export_page_set_kind (StudioExportPage *self, guint kind, guint dtype)
{
  adw_combo_row_set_selected (self->kind_row, kind);
  adw_combo_row_set_selected (self->dtype_row, dtype);
}

const char *
studio_export_page_get_selftest (StudioExportPage *self)
{
  return gtk_widget_get_visible (GTK_WIDGET (self->selftest_row))
    ? adw_action_row_get_subtitle (self->selftest_row) : NULL;
}

const char *
studio_export_page_get_result (StudioExportPage *self)
{
  return gtk_widget_get_visible (self->result_group) ? adw_action_row_get_subtitle (self->result_row)
                                                     : NULL;
}

void
studio_export_page_set_workspace (StudioExportPage *self, StudioWorkspace *workspace)
{
  g_return_if_fail (STUDIO_IS_EXPORT_PAGE (self));
  g_return_if_fail (self->workspace == NULL);
  self->workspace = g_object_ref (workspace);
  g_signal_connect_object (workspace, "notify::adapter-dir", G_CALLBACK (on_adapter), self, 0);
  g_signal_connect_object (workspace, "notify::model", G_CALLBACK (on_model), self, 0);
  on_adapter (workspace, NULL, self);
}

static void
studio_export_page_dispose (GObject *object)
{
  StudioExportPage *self = STUDIO_EXPORT_PAGE (object);

  if (self->job)
    studio_job_cancel (self->job);
  /* AdwBin (libadwaita 1.2) unparents its child again in its own dispose: let it go first. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), STUDIO_TYPE_EXPORT_PAGE);
  g_clear_object (&self->job);
  g_clear_object (&self->workspace);
  G_OBJECT_CLASS (studio_export_page_parent_class)->dispose (object);
}

static void
studio_export_page_finalize (GObject *object)
{
  StudioExportPage *self = STUDIO_EXPORT_PAGE (object);

  g_free (self->source);
  g_free (self->output);
  G_OBJECT_CLASS (studio_export_page_parent_class)->finalize (object);
}

static void
studio_export_page_class_init (StudioExportPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = studio_export_page_dispose;
  object_class->finalize = studio_export_page_finalize;
  gtk_widget_class_set_template_from_resource (widget_class,
                                               STUDIO_RESOURCE_PATH "/studio-export-page.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, StudioExportPage, name)
  BIND (missing_group); BIND (missing_row); BIND (source_row); BIND (base_row); BIND (output_row);
  BIND (result_row); BIND (selftest_row); BIND (kind_row); BIND (dtype_row); BIND (gguf_row);
  BIND (selftest_switch); BIND (prompt_row); BIND (progress_bar); BIND (cancel_button);
  BIND (result_group);
#undef BIND
  gtk_widget_class_bind_template_callback (widget_class, kind_changed_cb);
  gtk_widget_class_install_action (widget_class, "panel.choose-source", NULL, choose_source);
  gtk_widget_class_install_action (widget_class, "panel.choose-output", NULL, choose_output);
  gtk_widget_class_install_action (widget_class, "panel.export", NULL, export_action);
  gtk_widget_class_install_action (widget_class, "panel.cancel", NULL, cancel_action);
}

static void
studio_export_page_init (StudioExportPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->job = studio_job_new ("Exporting");
  g_signal_connect (self->job, "notify::fraction", G_CALLBACK (on_progress), self);
  g_signal_connect (self->job, "notify::text", G_CALLBACK (on_progress), self);
  g_signal_connect (self->job, "notify::running", G_CALLBACK (on_running), self);
  on_running (self->job, NULL, self);
#if !STUDIO_HAVE_EXPORT
  gtk_widget_set_visible (self->missing_group, TRUE);
  adw_action_row_set_subtitle (self->missing_row,
                               "Exporting needs " STUDIO_MISSING_EXPORT ", which has not landed in "
                               "this source tree yet. This page switches on by itself once it is "
                               "built in.");
#endif
  update_rows (self);
}
