/* studio-data-page.c: dataset analysis through the engine's loader. */
#define G_LOG_DOMAIN "studio"

#include <math.h>

#include "studio-data-page.h"
#include "studio-engine.h"
#include "studio-error.h"
#include "studio-histogram.h"
#include "studio-job.h"

struct _StudioDataPage
{
  AdwBin parent_instance;

  /* Template widgets */
  GtkWidget *empty_row, *file_row, *status_row, *shape_row, *count_row, *tokens_row;
  GtkSpinner *spinner;
  GtkImage *status_icon;
  GtkLabel *shape_value, *count_value, *tokens_value;
  GtkWidget *lengths_group;
  StudioHistogram *histogram;
  GtkLabel *lengths_label;
  GtkWidget *preview_group;
  GtkLabel *preview_position;
  GtkTextView *preview_view;
  GtkWidget *bad_group;
  GtkListBox *bad_list;
  GtkSpinButton *split_spin;
  GtkWidget *recent_group;
  GtkListBox *recent_list;

  /* Owned */
  StudioWorkspace *workspace;
  StudioJob *job;
  SutraDataset *dataset;
  StudioModel *dataset_model;     /* the tokenizer the dataset borrows stays alive */
  gsize preview_index;
  gboolean updating_split;
};

G_DEFINE_FINAL_TYPE (StudioDataPage, studio_data_page, ADW_TYPE_BIN)

static void
set_status (StudioDataPage *self, const char *icon, const char *title, const char *subtitle)
{
  gtk_widget_set_visible (self->status_row, title != NULL);
  if (title == NULL)
    return;
  gtk_image_set_from_icon_name (self->status_icon, icon);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->status_row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (self->status_row), subtitle ? subtitle : "");
}

static void
show_analysis (StudioDataPage *self, gboolean visible)
{
  gtk_widget_set_visible (self->shape_row, visible);
  gtk_widget_set_visible (self->count_row, visible);
  gtk_widget_set_visible (self->tokens_row, visible);
  gtk_widget_set_visible (self->lengths_group, visible);
  gtk_widget_set_visible (self->preview_group, visible);
  if (!visible)
    gtk_widget_set_visible (self->bad_group, FALSE);
}

static void
clear_dataset (StudioDataPage *self)
{
#if STUDIO_HAVE_DATASET
  g_clear_pointer (&self->dataset, sutra_dataset_free);
#endif
  g_clear_object (&self->dataset_model);
}

/* ---- preview ----------------------------------------------------------------------------- */

static void
show_preview (StudioDataPage *self)
{
#if STUDIO_HAVE_DATASET
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (self->preview_view);
  SutraPreviewPiece *pieces = NULL;
  size_t n = 0, count;
  SutraError err = { 0 };
  GtkTextIter end;
  g_autofree char *pos = NULL;
  const SutraExample *ex;

  gtk_text_buffer_set_text (buffer, "", 0);
  if (self->dataset == NULL || (count = sutra_dataset_count (self->dataset)) == 0)
    {
      gtk_label_set_text (self->preview_position, "");
      return;
    }
  self->preview_index = MIN (self->preview_index, count - 1);
  ex = sutra_dataset_get (self->dataset, self->preview_index);
  pos = g_strdup_printf ("%zu / %zu", self->preview_index + 1, count);
  gtk_label_set_text (self->preview_position, pos);
  {
    g_autofree char *tip = g_strdup_printf ("Line %d of the file", ex->line);
    gtk_widget_set_tooltip_text (GTK_WIDGET (self->preview_position), tip);
  }
  if (sutra_dataset_preview (self->dataset, self->preview_index, &pieces, &n, &err) != SUTRA_OK)
    {
      gtk_text_buffer_set_text (buffer, err.message, -1);
      return;
    }
  gtk_text_buffer_get_end_iter (buffer, &end);
  for (size_t i = 0; i < n; i++)
    {
      if (pieces[i].loss)
        gtk_text_buffer_insert_with_tags_by_name (buffer, &end, pieces[i].text, -1, "loss", NULL);
      else
        gtk_text_buffer_insert (buffer, &end, pieces[i].text, -1);
    }
  sutra_dataset_preview_free (pieces, n);
#endif
}

static void
preview_step (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioDataPage *self = STUDIO_DATA_PAGE (widget);

  if (g_str_equal (action_name, "panel.preview-next"))
    self->preview_index++;
  else if (self->preview_index > 0)
    self->preview_index--;
  show_preview (self);
}

/* ---- loading ----------------------------------------------------------------------------- */

#if STUDIO_HAVE_DATASET
typedef struct {
  char *path;
  StudioModel *model;
  int seq_len;
  gboolean mask_prompt;
} LoadInput;

static void
load_input_free (gpointer data)
{
  LoadInput *in = data;
  g_free (in->path);
  g_clear_object (&in->model);
  g_free (in);
}

static gpointer
load_thread (StudioJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  LoadInput *in = data;
  SutraDatasetOptions o;
  SutraDataset *ds = NULL;
  SutraError err = { 0 };

  sutra_dataset_options_init (&o);
  o.tokenizer = in->model ? studio_model_get_tokenizer (in->model) : NULL;
  o.chat = in->model ? studio_model_get_chat_template (in->model) : NULL;
  if (in->seq_len > 0)
    o.seq_len = in->seq_len;
  o.mask_prompt = in->mask_prompt;
  o.vocab_size = in->model ? studio_model_get_config (in->model)->vocab_size : 0;
  o.cancel = studio_job_cancel_int (job);
  studio_job_report (job, -1, "Reading and tokenizing…");
  if (sutra_dataset_load (in->path, &o, &ds, &err) != SUTRA_OK)
    {
      studio_error_from_sutra (&err, error);
      return NULL;
    }
  return ds;
}
#endif

#if STUDIO_HAVE_DATASET
static int
compare_int (const void *a, const void *b)
{
  return *(const int *) a - *(const int *) b;
}
#endif

static void
show_dataset (StudioDataPage *self)
{
#if STUDIO_HAVE_DATASET
  size_t n = sutra_dataset_count (self->dataset);
  const SutraBadRow *bad = NULL;
  size_t n_bad = sutra_dataset_bad_rows (self->dataset, &bad);
  size_t truncated = sutra_dataset_truncated (self->dataset);
  int64_t tokens = 0, loss_tokens = 0;
  g_autofree int *lengths = g_new (int, MAX (n, 1));
  g_autofree char *text = NULL;
  g_autofree char *seq = studio_workspace_dup_train_value (self->workspace, "seq_len");
  GtkWidget *child;

  for (size_t i = 0; i < n; i++)
    lengths[i] = sutra_dataset_get (self->dataset, i)->n;
  sutra_dataset_token_counts (self->dataset, &tokens, &loss_tokens);

  gtk_label_set_text (self->shape_value,
                      sutra_row_shape_name (sutra_dataset_shape (self->dataset)));
  if (n_bad)
    text = g_strdup_printf ("%zu (%zu row%s skipped)", n, n_bad, n_bad == 1 ? "" : "s");
  else
    text = g_strdup_printf ("%zu", n);
  gtk_label_set_text (self->count_value, text);
  g_clear_pointer (&text, g_free);
  text = g_strdup_printf ("%" G_GINT64_FORMAT " in all · %" G_GINT64_FORMAT " carry loss (%.0f %%)",
                          (gint64) tokens, (gint64) loss_tokens,
                          tokens ? 100.0 * loss_tokens / tokens : 0);
  gtk_label_set_text (self->tokens_value, text);
  g_clear_pointer (&text, g_free);

  studio_histogram_set_values (self->histogram, lengths, n, seq ? atoi (seq) : 0);
  if (n)
    {
      qsort (lengths, n, sizeof *lengths, compare_int);
      text = g_strdup_printf ("Shortest %d · median %d · longest %d tokens; %zu example%s longer "
                              "than the sequence length (%s) %s truncated.",
                              lengths[0], lengths[n / 2], lengths[n - 1], truncated,
                              truncated == 1 ? "" : "s", seq ? seq : "?",
                              truncated == 1 ? "is" : "are");
      gtk_label_set_text (self->lengths_label, text);
    }
  else
    gtk_label_set_text (self->lengths_label, "No usable examples.");

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->bad_list))))
    gtk_list_box_remove (self->bad_list, child);
  for (size_t i = 0; i < n_bad && i < 200; i++)
    {
      GtkWidget *row = adw_action_row_new ();
      g_autofree char *title = g_strdup_printf ("Line %d", bad[i].line);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), bad[i].message);
      gtk_list_box_append (self->bad_list, row);
    }
  gtk_widget_set_visible (self->bad_group, n_bad > 0);
  show_analysis (self, TRUE);
  self->preview_index = 0;
  show_preview (self);
#endif
}

static void reload (StudioDataPage *self);

static void
loaded (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(StudioDataPage) self = data;
  g_autoptr(GError) error = NULL;
  gpointer ds = studio_job_finish (STUDIO_JOB (source), result, &error);

  gtk_spinner_set_spinning (self->spinner, FALSE);
  if (ds == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          if (g_object_steal_data (source, "reload"))
            reload (self);
          return;
        }
      clear_dataset (self);
      set_status (self, "dialog-error-symbolic", "The dataset could not be read", error->message);
      show_analysis (self, FALSE);
      studio_workspace_report_error (self->workspace, error);
      return;
    }
  set_status (self, NULL, NULL, NULL);
  clear_dataset (self);
  self->dataset = ds;
  self->dataset_model = g_object_get_data (G_OBJECT (source), "model");
  if (self->dataset_model)
    g_object_ref (self->dataset_model);
  show_dataset (self);
}

static void
reload (StudioDataPage *self)
{
  const char *path = studio_workspace_get_dataset_path (self->workspace);
  StudioModel *model = studio_workspace_get_model (self->workspace);

  gtk_widget_set_visible (self->empty_row, path == NULL);
  gtk_widget_set_visible (self->file_row, path != NULL);
  if (studio_job_get_running (self->job))
    studio_job_cancel (self->job);
  if (path == NULL)
    {
      set_status (self, NULL, NULL, NULL);
      show_analysis (self, FALSE);
      return;
    }
  {
    g_autofree char *base = g_path_get_basename (path);
    adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->file_row), base);
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->file_row), path);
  }
#if STUDIO_HAVE_DATASET
  if (model == NULL && !studio_workspace_get_model_loading (self->workspace))
    {
      set_status (self, "dialog-information-symbolic", "Open a model to analyse this dataset",
                  "Token counts and the loss preview use the model's tokenizer. Training can "
                  "use this file as it is.");
      show_analysis (self, FALSE);
      return;
    }
  if (model == NULL)
    return;   /* analysed when the model has loaded */
  if (studio_job_get_running (self->job))
    {
      /* The cancelled run finishes first; the new one starts from its callback. */
      g_object_set_data (G_OBJECT (self->job), "reload", GINT_TO_POINTER (1));
      return;
    }
  {
    LoadInput *in = g_new0 (LoadInput, 1);
    g_autofree char *seq = studio_workspace_dup_train_value (self->workspace, "seq_len");
    g_autofree char *mask = studio_workspace_dup_train_value (self->workspace, "mask_prompt");

    in->path = g_strdup (path);
    in->model = g_object_ref (model);
    in->seq_len = seq ? atoi (seq) : 0;
    in->mask_prompt = mask == NULL || g_strcmp0 (mask, "false") != 0;
    g_object_set_data_full (G_OBJECT (self->job), "model", g_object_ref (model), g_object_unref);
    set_status (self, "content-loading-symbolic", "Reading…", NULL);
    gtk_spinner_set_spinning (self->spinner, TRUE);
    studio_job_run (self->job, load_thread, in, load_input_free,
                    (GDestroyNotify) sutra_dataset_free, loaded, g_object_ref (self));
  }
#else
  (void) model;
  (void) loaded;
  set_status (self, "dialog-warning-symbolic", "Analysis is not available in this build",
              "It needs " STUDIO_MISSING_DATASET ", which has not landed yet. Training can still "
              "use this file.");
  show_analysis (self, FALSE);
#endif
}

static void
update_recent (StudioDataPage *self)
{
  GSettings *settings = studio_workspace_get_settings (self->workspace);
  g_auto(GStrv) recent = g_settings_get_strv (settings, "recent-datasets");
  const char *current = studio_workspace_get_dataset_path (self->workspace);
  GtkWidget *child;
  guint shown = 0;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->recent_list))))
    gtk_list_box_remove (self->recent_list, child);
  for (guint i = 0; recent[i] && shown < 5; i++)
    {
      GtkWidget *row, *button;
      g_autofree char *name = NULL;

      if (g_strcmp0 (recent[i], current) == 0 || !g_file_test (recent[i], G_FILE_TEST_IS_REGULAR))
        continue;
      row = adw_action_row_new ();
      name = g_path_get_basename (recent[i]);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), name);
      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), recent[i]);
      button = gtk_button_new_with_label ("Open");
      gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
      gtk_actionable_set_action_name (GTK_ACTIONABLE (button), "panel.open-recent");
      gtk_actionable_set_action_target (GTK_ACTIONABLE (button), "s", recent[i]);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row), button);
      gtk_list_box_append (self->recent_list, row);
      shown++;
    }
  gtk_widget_set_visible (self->recent_group, shown > 0);
}

static void
on_recent_changed (GSettings *settings, const char *key, StudioDataPage *self)
{
  update_recent (self);
}

static void
open_recent (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioDataPage *self = STUDIO_DATA_PAGE (widget);

  studio_workspace_set_dataset_path (self->workspace, g_variant_get_string (param, NULL));
}

static void
on_inputs_changed (StudioWorkspace *ws, GParamSpec *pspec, StudioDataPage *self)
{
  update_recent (self);
  reload (self);
}

static void
on_train_changed (StudioWorkspace *ws, const char *key, StudioDataPage *self)
{
  g_autofree char *split = studio_workspace_dup_train_value (ws, "val_split");

  self->updating_split = TRUE;
  gtk_spin_button_set_value (self->split_spin, split ? round (g_ascii_strtod (split, NULL) * 100) : 0);
  self->updating_split = FALSE;
  if (key == NULL || g_str_equal (key, "seq_len") || g_str_equal (key, "mask_prompt"))
    reload (self);
}

static void
split_changed_cb (StudioDataPage *self)
{
  g_autoptr(GError) error = NULL;
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (self->updating_split || self->workspace == NULL)
    return;
  g_ascii_dtostr (buf, sizeof buf, gtk_spin_button_get_value (self->split_spin) / 100.0);
  if (!studio_workspace_set_train_value (self->workspace, "val_split", buf, &error))
    studio_workspace_report_error (self->workspace, error);
}

/* ---- object ------------------------------------------------------------------------------ */

void
studio_data_page_set_workspace (StudioDataPage *self, StudioWorkspace *workspace)
{
  g_return_if_fail (STUDIO_IS_DATA_PAGE (self));
  g_return_if_fail (self->workspace == NULL);
  self->workspace = g_object_ref (workspace);
  g_signal_connect_object (workspace, "notify::dataset-path", G_CALLBACK (on_inputs_changed), self, 0);
  g_signal_connect_object (workspace, "notify::model", G_CALLBACK (on_inputs_changed), self, 0);
  g_signal_connect_object (workspace, "train-changed", G_CALLBACK (on_train_changed), self, 0);
  g_signal_connect_object (studio_workspace_get_settings (workspace), "changed::recent-datasets",
                           G_CALLBACK (on_recent_changed), self, 0);
  on_train_changed (workspace, "val_split", self);
  update_recent (self);
  reload (self);
}

gboolean
studio_data_page_is_busy (StudioDataPage *self)
{
  return studio_job_get_running (self->job);
}

gsize
studio_data_page_get_n_examples (StudioDataPage *self)
{
#if STUDIO_HAVE_DATASET
  return self->dataset ? sutra_dataset_count (self->dataset) : 0;
#else
  return 0;
#endif
}

char *
studio_data_page_dup_preview_text (StudioDataPage *self, gboolean loss_only)
{
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (self->preview_view);
  GtkTextTag *tag = gtk_text_tag_table_lookup (gtk_text_buffer_get_tag_table (buffer), "loss");
  GtkTextIter it;
  GString *s = g_string_new (NULL);

  gtk_text_buffer_get_start_iter (buffer, &it);
  while (!gtk_text_iter_is_end (&it))
    {
      gunichar c = gtk_text_iter_get_char (&it);
      if (!loss_only || gtk_text_iter_has_tag (&it, tag))
        g_string_append_unichar (s, c);
      gtk_text_iter_forward_char (&it);
    }
  return g_string_free (s, FALSE);
}

static void
studio_data_page_dispose (GObject *object)
{
  StudioDataPage *self = STUDIO_DATA_PAGE (object);

  if (self->job)
    studio_job_cancel (self->job);
  /* AdwBin (libadwaita 1.2) unparents its child again in its own dispose: let it go first. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), STUDIO_TYPE_DATA_PAGE);
  clear_dataset (self);
  g_clear_object (&self->job);
  g_clear_object (&self->workspace);
  G_OBJECT_CLASS (studio_data_page_parent_class)->dispose (object);
}

static void
studio_data_page_class_init (StudioDataPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = studio_data_page_dispose;
  g_type_ensure (STUDIO_TYPE_HISTOGRAM);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               STUDIO_RESOURCE_PATH "/studio-data-page.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, StudioDataPage, name)
  BIND (empty_row); BIND (file_row); BIND (status_row); BIND (shape_row); BIND (count_row);
  BIND (tokens_row); BIND (spinner); BIND (status_icon); BIND (shape_value); BIND (count_value);
  BIND (tokens_value); BIND (lengths_group); BIND (histogram); BIND (lengths_label);
  BIND (preview_group); BIND (preview_position); BIND (preview_view); BIND (bad_group);
  BIND (bad_list); BIND (split_spin); BIND (recent_group); BIND (recent_list);
#undef BIND
  gtk_widget_class_bind_template_callback (widget_class, split_changed_cb);
  gtk_widget_class_install_action (widget_class, "panel.preview-next", NULL, preview_step);
  gtk_widget_class_install_action (widget_class, "panel.open-recent", "s", open_recent);
  gtk_widget_class_install_action (widget_class, "panel.preview-previous", NULL, preview_step);
}

static void
studio_data_page_init (StudioDataPage *self)
{
  GtkTextBuffer *buffer;

  gtk_widget_init_template (GTK_WIDGET (self));
  self->job = studio_job_new ("Reading a dataset");
  buffer = gtk_text_view_get_buffer (self->preview_view);
  /* Loss-carrying tokens stand out; prompt/context text stays plain. */
  gtk_text_buffer_create_tag (buffer, "loss", "background", "rgba(46,194,126,0.28)",
                              "weight", PANGO_WEIGHT_SEMIBOLD, NULL);
}
