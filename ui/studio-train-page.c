/* studio-train-page.c: training settings form, run controls, live chart, past runs. */
#define G_LOG_DOMAIN "studio"

#include <glib/gstdio.h>
#include <math.h>

#include "studio-engine.h"
#include "studio-error.h"
#include "studio-file-chooser.h"
#include "studio-job.h"
#include "studio-loss-chart.h"
#include "studio-train-page.h"

/* ---- the form -------------------------------------------------------------------------------
 * DESIGN.md section 5's keys (model, data, output_dir and threads come from elsewhere: the Model
 * and Data pages and the preferences; val_split is on the Data page). Help texts come from the
 * engine's sutra_train_config_keys, so the CLI's --help and the studio say the same thing. */
typedef enum { F_CHOICE, F_INT, F_FLOAT, F_TEXT, F_BOOL } FieldKind;

typedef struct {
  const char *key, *label;
  FieldKind kind;
  const char *choices;      /* F_CHOICE: "|"-separated */
  double lo, hi, step;
  int digits;
} Field;

typedef struct {
  const char *title;
  const Field *fields;
} FieldGroup;

#define CHOICE(k, l, c)             { .key = k, .label = l, .kind = F_CHOICE, .choices = c }
#define TEXT(k, l)                  { .key = k, .label = l, .kind = F_TEXT }
#define BOOL(k, l)                  { .key = k, .label = l, .kind = F_BOOL }
#define INT(k, l, a, b, s)          { .key = k, .label = l, .kind = F_INT, .lo = a, .hi = b, .step = s }
#define FLOAT(k, l, a, b, s, d)     { .key = k, .label = l, .kind = F_FLOAT, .lo = a, .hi = b, \
                                      .step = s, .digits = d }

static const Field fields_method[] = {
  CHOICE ("method", "Method", "lora|qlora|full"),
  CHOICE ("quant", "QLoRA base format", "nf4|int4|int8"),
  INT ("max_steps", "Steps", 0, 1e7, 10),
  FLOAT ("epochs", "Epochs", 0, 1000, 0.5, 1),
  INT ("micro_batch_size", "Micro-batch", 1, 4096, 1),
  INT ("grad_accum", "Gradient accumulation", 1, 4096, 1),
  INT ("seq_len", "Sequence length", 8, 131072, 64),
  { .key = NULL },
};
static const Field fields_lora[] = {
  INT ("lora_r", "Rank (r)", 1, 4096, 1),
  FLOAT ("lora_alpha", "Alpha", 0.1, 1e5, 1, 1),
  FLOAT ("lora_dropout", "Dropout", 0, 0.95, 0.05, 2),
  TEXT ("lora_targets", "Target modules"),
  TEXT ("init_adapter", "Start from adapter"),
  { .key = NULL },
};
static const Field fields_optim[] = {
  CHOICE ("optimizer", "Optimizer", "adamw|adam|sgd"),
  TEXT ("lr", "Learning rate"),
  CHOICE ("schedule", "Schedule", "cosine|linear|constant"),
  INT ("warmup_steps", "Warm-up steps", 0, 1e7, 5),
  FLOAT ("weight_decay", "Weight decay", 0, 10, 0.01, 3),
  FLOAT ("max_grad_norm", "Gradient clipping", 0, 1e4, 0.1, 2),
  TEXT ("betas", "Adam betas"),
  TEXT ("eps", "Adam epsilon"),
  FLOAT ("momentum", "SGD momentum", 0, 0.999, 0.05, 3),
  BOOL ("nesterov", "Nesterov momentum"),
  { .key = NULL },
};
static const Field fields_data[] = {
  TEXT ("eval_data", "Evaluation file"),
  BOOL ("packing", "Pack examples"),
  BOOL ("mask_prompt", "Loss on answers only"),
  BOOL ("shuffle", "Shuffle"),
  TEXT ("template", "Chat template"),
  INT ("seed", "Seed", 0, 4294967295.0, 1),
  CHOICE ("loss", "Loss", "ce|mse"),
  { .key = NULL },
};
static const Field fields_run[] = {
  INT ("eval_every", "Evaluate every", 0, 1e7, 10),
  INT ("save_every", "Checkpoint every", 0, 1e7, 10),
  INT ("keep_checkpoints", "Checkpoints kept", 0, 1000, 1),
  BOOL ("gradient_checkpointing", "Gradient checkpointing"),
  INT ("early_stopping_patience", "Early stopping patience", 0, 1000, 1),
  { .key = NULL },
};
static const FieldGroup field_groups[] = {
  { "Method and Length", fields_method },
  { "LoRA", fields_lora },
  { "Optimizer", fields_optim },
  { "Data", fields_data },
  { "Evaluation and Checkpoints", fields_run },
};

struct _StudioTrainPage
{
  AdwBin parent_instance;

  /* Template widgets */
  GtkStack *main_stack;
  AdwStatusPage *missing_page;
  AdwPreferencesPage *form_page;
  GtkListBox *runs_list;
  GtkLabel *inputs_label;
  GtkProgressBar *progress_bar;
  GtkLabel *progress_label, *stats_label, *message_label;
  StudioLossChart *chart;
  GtkCheckButton *log_check, *lr_check, *grad_check, *tps_check;

  /* Owned */
  StudioWorkspace *workspace;
  GHashTable *editors;          /* key -> editor widget (borrowed from the form) */
  GHashTable *rows;             /* key -> AdwActionRow */
  gboolean syncing;
  StudioTrainingSession *session;
  StudioJob *runs_job;
  char *preset;
};

G_DEFINE_FINAL_TYPE (StudioTrainPage, studio_train_page, ADW_TYPE_BIN)

enum { PROP_0, PROP_PRESET, N_PROPS };
static GParamSpec *properties[N_PROPS];

static const Field *
find_field (const char *key)
{
  for (guint g = 0; g < G_N_ELEMENTS (field_groups); g++)
    for (const Field *f = field_groups[g].fields; f->key; f++)
      if (g_str_equal (f->key, key))
        return f;
  return NULL;
}

static void
mark_row (StudioTrainPage *self, const char *key, const GError *error)
{
  GtkWidget *row = g_hash_table_lookup (self->rows, key);

  if (row == NULL)
    return;
  if (error)
    gtk_widget_add_css_class (row, "error");
  else
    gtk_widget_remove_css_class (row, "error");
  gtk_widget_set_tooltip_text (row, error ? error->message : NULL);
}

static void
commit (StudioTrainPage *self, const char *key, const char *value)
{
  g_autoptr(GError) error = NULL;

  if (self->syncing || self->workspace == NULL)
    return;
  if (!studio_workspace_set_train_value (self->workspace, key, value, &error))
    mark_row (self, key, error);
  else
    mark_row (self, key, NULL);
}

static void
on_choice_changed (GtkDropDown *dd, GParamSpec *pspec, StudioTrainPage *self)
{
  const char *key = g_object_get_data (G_OBJECT (dd), "key");
  GtkStringObject *item = gtk_drop_down_get_selected_item (dd);

  if (item)
    commit (self, key, gtk_string_object_get_string (item));
}

static void
on_spin_changed (GtkSpinButton *spin, StudioTrainPage *self)
{
  const char *key = g_object_get_data (G_OBJECT (spin), "key");
  const Field *f = find_field (key);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (f->kind == F_INT)
    g_snprintf (buf, sizeof buf, "%.0f", gtk_spin_button_get_value (spin));
  else
    g_ascii_formatd (buf, sizeof buf, "%.6g", gtk_spin_button_get_value (spin));
  commit (self, key, buf);
}

static void
on_entry_changed (GtkEditable *entry, StudioTrainPage *self)
{
  commit (self, g_object_get_data (G_OBJECT (entry), "key"), gtk_editable_get_text (entry));
}

static void
on_switch_changed (GtkSwitch *sw, GParamSpec *pspec, StudioTrainPage *self)
{
  commit (self, g_object_get_data (G_OBJECT (sw), "key"),
          gtk_switch_get_active (sw) ? "true" : "false");
}

static GtkWidget *
make_editor (StudioTrainPage *self, const Field *f)
{
  GtkWidget *w = NULL;

  switch (f->kind)
    {
    case F_CHOICE:
      {
        g_auto(GStrv) items = g_strsplit (f->choices, "|", -1);
        w = gtk_drop_down_new_from_strings ((const char *const *) items);
        g_signal_connect (w, "notify::selected", G_CALLBACK (on_choice_changed), self);
      }
      break;
    case F_INT:
    case F_FLOAT:
      w = gtk_spin_button_new_with_range (f->lo, f->hi, f->step);
      gtk_spin_button_set_digits (GTK_SPIN_BUTTON (w), f->digits);
      gtk_spin_button_set_numeric (GTK_SPIN_BUTTON (w), TRUE);
      g_signal_connect (w, "value-changed", G_CALLBACK (on_spin_changed), self);
      break;
    case F_TEXT:
      w = gtk_entry_new ();
      gtk_editable_set_width_chars (GTK_EDITABLE (w), 14);
      g_signal_connect (w, "changed", G_CALLBACK (on_entry_changed), self);
      break;
    case F_BOOL:
      w = gtk_switch_new ();
      g_signal_connect (w, "notify::active", G_CALLBACK (on_switch_changed), self);
      break;
    }
  gtk_widget_set_valign (w, GTK_ALIGN_CENTER);
  g_object_set_data (G_OBJECT (w), "key", (gpointer) f->key);
  return w;
}

static void
build_form (StudioTrainPage *self)
{
  g_autoptr(GHashTable) help = g_hash_table_new (g_str_hash, g_str_equal);

#if STUDIO_HAVE_TRAINER
  {
    size_t n = 0;
    const SutraTrainKeyInfo *keys = sutra_train_config_keys (&n);
    for (size_t i = 0; i < n; i++)
      g_hash_table_insert (help, (gpointer) keys[i].key, (gpointer) keys[i].help);
  }
#endif
  for (guint g = 0; g < G_N_ELEMENTS (field_groups); g++)
    {
      AdwPreferencesGroup *group = ADW_PREFERENCES_GROUP (adw_preferences_group_new ());

      adw_preferences_group_set_title (group, field_groups[g].title);
      for (const Field *f = field_groups[g].fields; f->key; f++)
        {
          GtkWidget *row = adw_action_row_new ();
          GtkWidget *editor = make_editor (self, f);
          const char *h = g_hash_table_lookup (help, f->key);

          adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), f->label);
          adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
          if (h)
            adw_action_row_set_subtitle (ADW_ACTION_ROW (row), h);
          adw_action_row_add_suffix (ADW_ACTION_ROW (row), editor);
          adw_action_row_set_activatable_widget (ADW_ACTION_ROW (row), editor);
          /* The config key is the name users see in config.json and on the command line. */
          gtk_widget_set_tooltip_text (row, f->key);
          adw_preferences_group_add (group, row);
          g_hash_table_insert (self->editors, (gpointer) f->key, editor);
          g_hash_table_insert (self->rows, (gpointer) f->key, row);
        }
      adw_preferences_page_add (self->form_page, group);
    }
}

/* Puts the workspace's values into the editors (after a preset or an outside change). */
static void
sync_form (StudioTrainPage *self)
{
  GHashTableIter it;
  gpointer key, editor;

  self->syncing = TRUE;
  g_hash_table_iter_init (&it, self->editors);
  while (g_hash_table_iter_next (&it, &key, &editor))
    {
      const Field *f = find_field (key);
      g_autofree char *v = studio_workspace_dup_train_value (self->workspace, key);

      if (v == NULL)
        continue;
      switch (f->kind)
        {
        case F_CHOICE:
          {
            GListModel *model = gtk_drop_down_get_model (editor);
            for (guint i = 0; i < g_list_model_get_n_items (model); i++)
              {
                g_autoptr(GtkStringObject) s = g_list_model_get_item (model, i);
                if (g_str_equal (gtk_string_object_get_string (s), v))
                  gtk_drop_down_set_selected (editor, i);
              }
          }
          break;
        case F_INT:
        case F_FLOAT:
          gtk_spin_button_set_value (editor, g_ascii_strtod (v, NULL));
          break;
        case F_TEXT:
          if (g_strcmp0 (gtk_editable_get_text (editor), v) != 0)
            gtk_editable_set_text (editor, v);
          break;
        case F_BOOL:
          gtk_switch_set_active (editor, g_str_equal (v, "true") || g_str_equal (v, "1"));
          break;
        }
      mark_row (self, key, NULL);
    }
  self->syncing = FALSE;
}

static void
on_train_changed (StudioWorkspace *ws, const char *key, StudioTrainPage *self)
{
  /* A single key changed from this form needs no sync; a preset (key NULL) or a change
   * from another page (val_split) does. */
  if (key == NULL || !g_hash_table_contains (self->editors, key))
    sync_form (self);
  if (key == NULL)
    {
      g_free (self->preset);
      self->preset = g_strdup (studio_workspace_get_preset (ws));
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PRESET]);
    }
}

/* ---- run display ------------------------------------------------------------------------- */

static void
update_progress (StudioTrainPage *self)
{
  StudioTrainingSession *s = self->session;
  g_autofree char *text = NULL;
  g_autofree char *stats = NULL;
  const char *message;

  if (s == NULL)
    {
      const char *run = studio_workspace_get_run_dir (self->workspace);
      g_autofree char *base = run ? g_path_get_basename (run) : NULL;
      StudioLossSeries *series = studio_workspace_get_series (self->workspace);
      g_autofree char *shown = base ? g_strdup_printf ("Showing %s (%u steps)", base,
                                                       series ? studio_loss_series_get_n_points (series) : 0)
                                    : NULL;
      gtk_progress_bar_set_fraction (self->progress_bar, 0);
      gtk_label_set_text (self->progress_label, shown ? shown : "Not started");
      gtk_label_set_text (self->stats_label, "");
      gtk_widget_set_visible (GTK_WIDGET (self->message_label), FALSE);
      return;
    }
  gtk_progress_bar_set_fraction (self->progress_bar, studio_training_session_get_fraction (s));
  text = studio_training_session_dup_progress_text (s);
  gtk_label_set_text (self->progress_label, text);
  {
    guint64 rss;
    double loss, tps, lr;
    g_object_get (s, "rss-bytes", &rss, "loss", &loss, "tokens-per-s", &tps, "lr", &lr, NULL);
    if (studio_training_session_get_step (s) > 0)
      {
        g_autofree char *mem = g_format_size (rss);
        stats = g_strdup_printf ("loss %.4g · lr %.2g · %.0f tokens/s · %s in use", loss, lr,
                                 tps, mem);
      }
  }
  gtk_label_set_text (self->stats_label, stats ? stats : "");
  message = studio_training_session_get_message (s);
  gtk_widget_set_visible (GTK_WIDGET (self->message_label), message != NULL);
  if (message)
    gtk_label_set_text (self->message_label, message);
}

static void
on_session_notify (StudioTrainingSession *s, GParamSpec *pspec, StudioTrainPage *self)
{
  update_progress (self);
}

static void refresh_runs (GtkWidget *widget, const char *action_name, GVariant *param);

static void
on_session_finished (StudioTrainingSession *s, StudioTrainPage *self)
{
  refresh_runs (GTK_WIDGET (self), NULL, NULL);
}

static void
on_workspace_session (StudioWorkspace *ws, GParamSpec *pspec, StudioTrainPage *self)
{
  StudioTrainingSession *s = studio_workspace_get_session (ws);

  if (self->session)
    g_signal_handlers_disconnect_by_data (self->session, self);
  g_set_object (&self->session, s);
  if (s)
    {
      g_signal_connect (s, "notify::progress-text", G_CALLBACK (on_session_notify), self);
      g_signal_connect (s, "notify::state", G_CALLBACK (on_session_notify), self);
      g_signal_connect (s, "notify::message", G_CALLBACK (on_session_notify), self);
      g_signal_connect (s, "finished", G_CALLBACK (on_session_finished), self);
    }
  update_progress (self);
}

static void
on_workspace_series (StudioWorkspace *ws, GParamSpec *pspec, StudioTrainPage *self)
{
  studio_loss_chart_set_series (self->chart, studio_workspace_get_series (ws));
  update_progress (self);
}

static void
update_inputs (StudioTrainPage *self)
{
  StudioModel *model = studio_workspace_get_model (self->workspace);
  const char *data = studio_workspace_get_dataset_path (self->workspace);
  g_autofree char *base = data ? g_path_get_basename (data) : NULL;
  g_autofree char *text = g_strdup_printf ("%s · %s", model ? studio_model_get_name (model) : "no model",
                                           base ? base : "no dataset");

  gtk_label_set_text (self->inputs_label, text);
}

static void
on_inputs (StudioWorkspace *ws, GParamSpec *pspec, StudioTrainPage *self)
{
  update_inputs (self);
}

/* ---- past runs --------------------------------------------------------------------------- */

typedef struct {
  char *name, *path;
  GPtrArray *checkpoints;     /* char* */
  gboolean finished;
  gint64 mtime;
} RunInfo;

static void
run_info_free (gpointer data)
{
  RunInfo *r = data;
  g_free (r->name);
  g_free (r->path);
  g_ptr_array_unref (r->checkpoints);
  g_free (r);
}

static int
run_newer_first (gconstpointer a, gconstpointer b)
{
  const RunInfo *x = *(RunInfo **) a, *y = *(RunInfo **) b;
  return (y->mtime > x->mtime) - (y->mtime < x->mtime);
}

static gpointer
scan_runs (StudioJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  const char *output = data;
  GPtrArray *runs = g_ptr_array_new_with_free_func (run_info_free);
  g_autoptr(GDir) dir = g_dir_open (output, 0, NULL);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    {
      g_autofree char *path = g_build_filename (output, name, NULL);
      g_autofree char *metrics = g_build_filename (path, "metrics.jsonl", NULL);
      g_autofree char *adapter = g_build_filename (path, "adapter", NULL);
      g_autofree char *full = g_build_filename (path, "model", NULL);
      GStatBuf st;
      RunInfo *r;

      if (g_stat (metrics, &st) != 0)
        continue;
      r = g_new0 (RunInfo, 1);
      r->name = g_strdup (name);
      r->path = g_steal_pointer (&path);
      r->mtime = st.st_mtime;
      r->finished = g_file_test (adapter, G_FILE_TEST_IS_DIR) || g_file_test (full, G_FILE_TEST_IS_DIR);
      r->checkpoints = g_ptr_array_new_with_free_func (g_free);
#if STUDIO_HAVE_TRAINER
      {
        char **paths = NULL;
        size_t n = 0;
        SutraError err = { 0 };
        if (sutra_run_list_checkpoints (r->path, &paths, &n, &err) == SUTRA_OK)
          {
            for (size_t i = 0; i < n; i++)
              {
                g_ptr_array_add (r->checkpoints, g_strdup (paths[i]));
                free (paths[i]);
              }
            free (paths);
          }
      }
#endif
      g_ptr_array_add (runs, r);
    }
  g_ptr_array_sort (runs, run_newer_first);
  return runs;
}

static void
runs_scanned (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(StudioTrainPage) self = data;
  g_autoptr(GPtrArray) runs = studio_job_finish (STUDIO_JOB (source), result, NULL);
  GtkWidget *child;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->runs_list))))
    gtk_list_box_remove (self->runs_list, child);
  for (guint i = 0; runs && i < runs->len && i < 20; i++)
    {
      RunInfo *r = runs->pdata[i];
      GtkWidget *row = adw_expander_row_new ();
      GtkWidget *show = gtk_button_new_with_label ("Show");
      g_autoptr(GDateTime) when = g_date_time_new_from_unix_local (r->mtime);
      g_autofree char *date = g_date_time_format (when, "%x %H:%M");
      g_autofree char *subtitle = g_strdup_printf ("%s · %s · %u checkpoint%s", date,
                                                   r->finished ? "finished" : "not finished",
                                                   r->checkpoints->len,
                                                   r->checkpoints->len == 1 ? "" : "s");

      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), r->name);
      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
      adw_expander_row_set_subtitle (ADW_EXPANDER_ROW (row), subtitle);
      gtk_widget_set_valign (show, GTK_ALIGN_CENTER);
      gtk_widget_set_tooltip_text (show, "Show this run's chart");
      gtk_actionable_set_action_name (GTK_ACTIONABLE (show), "panel.show-run");
      gtk_actionable_set_action_target (GTK_ACTIONABLE (show), "s", r->path);
      adw_expander_row_add_action (ADW_EXPANDER_ROW (row), show);
      for (guint k = r->checkpoints->len; k > 0; k--)
        {
          const char *ck = r->checkpoints->pdata[k - 1];
          GtkWidget *crow = adw_action_row_new ();
          GtkWidget *resume = gtk_button_new_with_label ("Resume");
          g_autofree char *base = g_path_get_basename (ck);

          adw_preferences_row_set_title (ADW_PREFERENCES_ROW (crow), base);
          gtk_widget_set_valign (resume, GTK_ALIGN_CENTER);
          gtk_actionable_set_action_name (GTK_ACTIONABLE (resume), "panel.resume-run");
          gtk_actionable_set_action_target (GTK_ACTIONABLE (resume), "(ss)", r->path, ck);
          adw_action_row_add_suffix (ADW_ACTION_ROW (crow), resume);
          adw_expander_row_add_row (ADW_EXPANDER_ROW (row), crow);
        }
      gtk_list_box_append (self->runs_list, row);
    }
  if (runs == NULL || runs->len == 0)
    {
      GtkWidget *row = adw_action_row_new ();
      g_autofree char *output = studio_workspace_dup_output_folder (self->workspace);
      g_autofree char *sub = g_strdup_printf ("Runs are saved in %s", output);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), "No runs yet");
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), sub);
      gtk_list_box_append (self->runs_list, row);
    }
}

static void
refresh_runs (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioTrainPage *self = STUDIO_TRAIN_PAGE (widget);

  if (self->workspace == NULL || studio_job_get_running (self->runs_job))
    return;
  studio_job_run (self->runs_job, scan_runs, studio_workspace_dup_output_folder (self->workspace),
                  g_free, (GDestroyNotify) g_ptr_array_unref, runs_scanned, g_object_ref (self));
}

static void
show_run (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioTrainPage *self = STUDIO_TRAIN_PAGE (widget);
  g_autoptr(GError) error = NULL;

  if (!studio_workspace_open_run (self->workspace, g_variant_get_string (param, NULL), &error))
    studio_workspace_report_error (self->workspace, error);
}

static void
resume_run (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioTrainPage *self = STUDIO_TRAIN_PAGE (widget);
  g_autoptr(GError) error = NULL;
  const char *run, *ck;

  g_variant_get (param, "(&s&s)", &run, &ck);
  if (!studio_workspace_resume_training (self->workspace, run, ck, &error))
    studio_workspace_report_error (self->workspace, error);
}

static void
on_output_folder (GSettings *settings, const char *key, StudioTrainPage *self)
{
  refresh_runs (GTK_WIDGET (self), NULL, NULL);
}

/* ---- chart export ------------------------------------------------------------------------ */

static void
chart_file_chosen (GFile *file, gpointer data)
{
  g_autoptr(StudioTrainPage) self = data;
  g_autofree char *path = file ? g_file_get_path (file) : NULL;
  g_autoptr(GError) error = NULL;

  if (path && !studio_loss_chart_export (self->chart, path, 1200, 720, &error))
    studio_workspace_report_error (self->workspace, error);
}

static void
export_chart (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioTrainPage *self = STUDIO_TRAIN_PAGE (widget);
  const char *fmt = g_variant_get_string (param, NULL);
  g_autofree char *name = g_strdup_printf ("loss-chart.%s", fmt);
  const char *run = studio_workspace_get_run_dir (self->workspace);
  g_autoptr(GFile) folder = run ? g_file_new_for_path (run) : NULL;
  StudioChooseOptions opts = {
    .kind = STUDIO_CHOOSE_SAVE_FILE,
    .title = g_str_equal (fmt, "svg") ? "Export the Chart as SVG" : "Export the Chart as PNG",
    .initial_folder = folder,
    .initial_name = name,
  };

  studio_file_chooser_run (GTK_WINDOW (gtk_widget_get_root (widget)), &opts, chart_file_chosen,
                           g_object_ref (self));
}

/* ---- object ------------------------------------------------------------------------------ */

void
studio_train_page_set_workspace (StudioTrainPage *self, StudioWorkspace *workspace)
{
  GSettings *settings = studio_workspace_get_settings (workspace);

  g_return_if_fail (STUDIO_IS_TRAIN_PAGE (self));
  g_return_if_fail (self->workspace == NULL);
  self->workspace = g_object_ref (workspace);
  g_free (self->preset);
  self->preset = g_strdup (studio_workspace_get_preset (workspace));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PRESET]);
  g_signal_connect_object (workspace, "train-changed", G_CALLBACK (on_train_changed), self, 0);
  g_signal_connect_object (workspace, "notify::session", G_CALLBACK (on_workspace_session), self, 0);
  g_signal_connect_object (workspace, "notify::series", G_CALLBACK (on_workspace_series), self, 0);
  g_signal_connect_object (workspace, "notify::run-dir", G_CALLBACK (on_workspace_series), self, 0);
  g_signal_connect_object (workspace, "notify::model", G_CALLBACK (on_inputs), self, 0);
  g_signal_connect_object (workspace, "notify::dataset-path", G_CALLBACK (on_inputs), self, 0);
  g_signal_connect_object (settings, "changed::output-folder", G_CALLBACK (on_output_folder), self, 0);
  g_settings_bind (settings, "chart-log-scale", self->log_check, "active", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "chart-show-lr", self->lr_check, "active", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "chart-show-grad-norm", self->grad_check, "active", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "chart-show-tokens-per-s", self->tps_check, "active", G_SETTINGS_BIND_DEFAULT);
  sync_form (self);
  update_inputs (self);
  on_workspace_session (workspace, NULL, self);
  on_workspace_series (workspace, NULL, self);
  refresh_runs (GTK_WIDGET (self), NULL, NULL);
}

StudioLossChart *
studio_train_page_get_chart (StudioTrainPage *self)
{
  return self->chart;
}

GtkWidget *
studio_train_page_get_editor (StudioTrainPage *self, const char *key)
{
  return g_hash_table_lookup (self->editors, key);
}

static void
studio_train_page_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  StudioTrainPage *self = STUDIO_TRAIN_PAGE (object);

  switch (prop_id)
    {
    case PROP_PRESET: g_value_set_string (value, self->preset); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
studio_train_page_set_property (GObject *object, guint prop_id, const GValue *value,
                                GParamSpec *pspec)
{
  StudioTrainPage *self = STUDIO_TRAIN_PAGE (object);

  switch (prop_id)
    {
    case PROP_PRESET:
      if (self->workspace && g_value_get_string (value))
        studio_workspace_set_preset (self->workspace, g_value_get_string (value));
      break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
studio_train_page_dispose (GObject *object)
{
  StudioTrainPage *self = STUDIO_TRAIN_PAGE (object);

  if (self->session)
    g_signal_handlers_disconnect_by_data (self->session, self);
  g_clear_object (&self->session);
  /* AdwBin (libadwaita 1.2) unparents its child again in its own dispose: let it go first. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), STUDIO_TYPE_TRAIN_PAGE);
  g_clear_object (&self->runs_job);
  g_clear_object (&self->workspace);
  G_OBJECT_CLASS (studio_train_page_parent_class)->dispose (object);
}

static void
studio_train_page_finalize (GObject *object)
{
  StudioTrainPage *self = STUDIO_TRAIN_PAGE (object);

  g_hash_table_unref (self->editors);
  g_hash_table_unref (self->rows);
  g_free (self->preset);
  G_OBJECT_CLASS (studio_train_page_parent_class)->finalize (object);
}

static void
studio_train_page_class_init (StudioTrainPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = studio_train_page_dispose;
  object_class->finalize = studio_train_page_finalize;
  object_class->get_property = studio_train_page_get_property;
  object_class->set_property = studio_train_page_set_property;

  properties[PROP_PRESET] =
    g_param_spec_string ("preset", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  g_type_ensure (STUDIO_TYPE_LOSS_CHART);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               STUDIO_RESOURCE_PATH "/studio-train-page.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, StudioTrainPage, name)
  BIND (main_stack); BIND (missing_page); BIND (form_page); BIND (runs_list); BIND (inputs_label);
  BIND (progress_bar); BIND (progress_label); BIND (stats_label); BIND (message_label);
  BIND (chart); BIND (log_check); BIND (lr_check); BIND (grad_check); BIND (tps_check);
#undef BIND
  gtk_widget_class_install_property_action (widget_class, "panel.preset", "preset");
  gtk_widget_class_install_action (widget_class, "panel.refresh-runs", NULL, refresh_runs);
  gtk_widget_class_install_action (widget_class, "panel.show-run", "s", show_run);
  gtk_widget_class_install_action (widget_class, "panel.resume-run", "(ss)", resume_run);
  gtk_widget_class_install_action (widget_class, "panel.export-chart", "s", export_chart);
}

static void
studio_train_page_init (StudioTrainPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->editors = g_hash_table_new (g_str_hash, g_str_equal);
  self->rows = g_hash_table_new (g_str_hash, g_str_equal);
  self->runs_job = studio_job_new ("Listing past runs");
  /* The panel.preset property action needs a string state before the workspace arrives. */
  self->preset = g_strdup ("quick");
  build_form (self);

  g_object_bind_property (self->log_check, "active", self->chart, "log-scale", G_BINDING_SYNC_CREATE);
  g_object_bind_property (self->lr_check, "active", self->chart, "show-lr", G_BINDING_SYNC_CREATE);
  g_object_bind_property (self->grad_check, "active", self->chart, "show-grad-norm", G_BINDING_SYNC_CREATE);
  g_object_bind_property (self->tps_check, "active", self->chart, "show-tokens-per-s", G_BINDING_SYNC_CREATE);

#if STUDIO_HAVE_TRAINER
  gtk_stack_set_visible_child_name (self->main_stack, "ready");
#else
  adw_status_page_set_description (self->missing_page,
                                   "Training needs " STUDIO_MISSING_TRAINER ", which has not "
                                   "landed in this source tree yet. The Model and Data pages "
                                   "work; this page switches on by itself once the trainer is "
                                   "built in.");
  gtk_stack_set_visible_child_name (self->main_stack, "missing");
#endif
}
