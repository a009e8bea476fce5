/* studio-model-page.c: open, describe and download models. */
#define G_LOG_DOMAIN "studio"

#include "studio-engine.h"
#include "studio-error.h"
#include "studio-job.h"
#include "studio-model-page.h"

struct _StudioModelPage
{
  AdwBin parent_instance;

  /* Template widgets */
  AdwPreferencesGroup *info_group;
  GtkWidget *empty_row, *loading_row, *name_row, *arch_row, *params_row, *dtype_row;
  GtkWidget *context_row, *shape_row, *tokenizer_row;
  GtkSpinner *loading_spinner;
  GtkLabel *name_value, *arch_value, *params_value, *dtype_value, *context_value;
  AdwPreferencesGroup *memory_group;
  GtkLabel *lora_value, *qlora_value, *full_value, *trainable_value;
  AdwActionRow *lora_row, *trainable_row;
  GtkListBox *cache_list;
  GtkWidget *recent_group;
  GtkListBox *recent_list;
  AdwEntryRow *repo_entry;
  GtkWidget *download_row;
  GtkProgressBar *download_progress;
  AdwExpanderRow *known_row;

  /* Owned */
  StudioWorkspace *workspace;
  StudioJob *cache_job;
  StudioJob *download_job;
  char *downloading;
};

G_DEFINE_FINAL_TYPE (StudioModelPage, studio_model_page, ADW_TYPE_BIN)

/* ---- model description ------------------------------------------------------------------- */

static void
set_info_visible (StudioModelPage *self, gboolean have_model)
{
  GtkWidget *rows[] = { self->name_row, self->arch_row, self->params_row, self->dtype_row,
                        self->context_row, self->shape_row, self->tokenizer_row };

  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    gtk_widget_set_visible (rows[i], have_model);
}

static void
update_memory (StudioModelPage *self)
{
  StudioModel *model = studio_workspace_get_model (self->workspace);

  gtk_widget_set_visible (GTK_WIDGET (self->memory_group), model != NULL);
  if (model == NULL)
    return;
#if STUDIO_HAVE_TRAIN_ESTIMATE
  {
    const SutraModelConfig *mc = studio_model_get_config (model);
    static const char *const methods[] = { "lora", "qlora", "full" };
    GtkLabel *labels[] = { self->lora_value, self->qlora_value, self->full_value };
    g_autofree char *r = studio_workspace_dup_train_value (self->workspace, "lora_r");
    g_autofree char *alpha = studio_workspace_dup_train_value (self->workspace, "lora_alpha");
    g_autofree char *targets = studio_workspace_dup_train_value (self->workspace, "lora_targets");
    g_autofree char *mbs = studio_workspace_dup_train_value (self->workspace, "micro_batch_size");
    g_autofree char *seq = studio_workspace_dup_train_value (self->workspace, "seq_len");
    g_autofree char *desc = NULL;
    gint64 total = studio_model_get_n_params (model);

    for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
      {
        g_auto(SutraTrainConfig) tc;
        SutraTrainMemory mem;
        SutraError err = { 0 };
        g_autoptr(GError) error = NULL;
        g_autofree char *size = NULL;

        sutra_train_config_init (&tc);
        if (!studio_workspace_apply_train_settings (self->workspace, &tc, &error) ||
            sutra_train_config_set (&tc, "method", methods[i], &err) != SUTRA_OK ||
            sutra_train_estimate_memory (mc, &tc, &mem, &err) != SUTRA_OK)
          {
            gtk_label_set_text (labels[i], "–");
            gtk_widget_set_tooltip_text (GTK_WIDGET (labels[i]),
                                         error ? error->message : err.message);
            continue;
          }
        size = g_format_size (mem.total);
        gtk_label_set_text (labels[i], size);
        {
          g_autofree char *w = g_format_size (mem.weights);
          g_autofree char *g = g_format_size (mem.gradients + mem.optimizer);
          g_autofree char *a = g_format_size (mem.activations);
          g_autofree char *tip = g_strdup_printf ("weights %s · gradients + optimizer %s · "
                                                  "activations %s", w, g, a);
          gtk_widget_set_tooltip_text (GTK_WIDGET (labels[i]), tip);
        }
        if (i == 0)
          {
            g_autofree char *n = studio_format_params (mem.trainable_params);
            g_autofree char *all = studio_format_params (total);
            g_autofree char *text = g_strdup_printf ("%s (%.2f %% of %s)", n,
                                                     total ? 100.0 * mem.trainable_params / total : 0,
                                                     all);
            gtk_label_set_text (self->trainable_value, text);
          }
      }
    desc = g_strdup_printf ("Estimated at the Train page's settings: LoRA r = %s, alpha %s, "
                            "targets %s; micro-batch %s × %s tokens.",
                            r ? r : "?", alpha ? alpha : "?",
                            targets && *targets ? targets : "default", mbs ? mbs : "?",
                            seq ? seq : "?");
    adw_preferences_group_set_description (self->memory_group, desc);
  }
#else
  gtk_label_set_text (self->lora_value, "–");
  gtk_label_set_text (self->qlora_value, "–");
  gtk_label_set_text (self->full_value, "–");
  gtk_label_set_text (self->trainable_value, "–");
  adw_preferences_group_set_description (self->memory_group,
                                         "Estimates need " STUDIO_MISSING_TRAINER
                                         ", which this build does not include yet.");
#endif
}

static const char *
arch_family (const SutraModelConfig *c)
{
  switch (c->arch)
    {
    case SUTRA_ARCH_LLAMA: return "Llama family";
    case SUTRA_ARCH_RWKV4: return "RWKV-4";
    case SUTRA_ARCH_MAMBA: return "Mamba";
    default: return "";
    }
}

static void
update_model (StudioModelPage *self)
{
  StudioModel *model = studio_workspace_get_model (self->workspace);
  gboolean loading = studio_workspace_get_model_loading (self->workspace);
  const SutraModelConfig *c;
  g_autofree char *text = NULL;
  g_autofree char *size = NULL;

  gtk_widget_set_visible (self->loading_row, loading);
  gtk_spinner_set_spinning (self->loading_spinner, loading);
  if (loading)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->loading_row),
                                 studio_workspace_get_model_path (self->workspace));
  gtk_widget_set_visible (self->empty_row, model == NULL && !loading);
  set_info_visible (self, model != NULL);
  update_memory (self);
  if (model == NULL)
    return;

  c = studio_model_get_config (model);
  gtk_label_set_text (self->name_value, studio_model_get_name (model));
  adw_action_row_set_subtitle (ADW_ACTION_ROW (self->name_row), studio_model_get_path (model));
  text = g_strdup_printf ("%s (%s)", c->architecture, arch_family (c));
  gtk_label_set_text (self->arch_value, text);
  g_clear_pointer (&text, g_free);
  text = studio_format_params (studio_model_get_n_params (model));
  gtk_label_set_text (self->params_value, text);
  g_clear_pointer (&text, g_free);
  size = g_format_size (studio_model_get_weight_bytes (model));
  text = g_strdup_printf ("%s on disk · %s in memory", sutra_dtype_name (c->dtype), size);
  gtk_label_set_text (self->dtype_value, text);
  g_clear_pointer (&text, g_free);
  if (c->max_position_embeddings > 0)
    text = g_strdup_printf ("%d tokens", c->max_position_embeddings);
  else
    text = g_strdup ("unbounded (recurrent)");
  gtk_label_set_text (self->context_value, text);
  g_clear_pointer (&text, g_free);
  if (c->arch == SUTRA_ARCH_LLAMA)
    text = g_strdup_printf ("%d layers · hidden %d · %d heads (%d KV) · FFN %d · vocabulary %d",
                            c->n_layers, c->hidden_size, c->n_heads, c->n_kv_heads,
                            c->intermediate_size, c->vocab_size);
  else
    text = g_strdup_printf ("%d layers · hidden %d · vocabulary %d", c->n_layers, c->hidden_size,
                            c->vocab_size);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (self->shape_row), text);
  g_clear_pointer (&text, g_free);
  if (studio_model_get_tokenizer (model))
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->tokenizer_row), "tokenizer.json loaded");
  else
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->tokenizer_row),
                                 studio_model_get_tokenizer_note (model));
}

static void update_recent (StudioModelPage *self);

static void
on_model_changed (StudioWorkspace *ws, GParamSpec *pspec, StudioModelPage *self)
{
  update_model (self);
  update_recent (self);
}

static void
on_train_changed (StudioWorkspace *ws, const char *key, StudioModelPage *self)
{
  update_memory (self);
}

/* ---- recent models (GSettings) ---------------------------------------------------------- */

static void clear_list (GtkListBox *list);
static GtkWidget *action_button (const char *label, const char *action, const char *target);

static void
update_recent (StudioModelPage *self)
{
  GSettings *settings = studio_workspace_get_settings (self->workspace);
  g_auto(GStrv) recent = g_settings_get_strv (settings, "recent-models");
  const char *current = studio_workspace_get_model_path (self->workspace);
  guint shown = 0;

  clear_list (self->recent_list);
  for (guint i = 0; recent[i]; i++)
    {
      GtkWidget *row;
      g_autofree char *name = NULL;

      /* The open model is described above; folders that went away are not offered. */
      if (g_strcmp0 (recent[i], current) == 0 || !g_file_test (recent[i], G_FILE_TEST_IS_DIR))
        continue;
      row = adw_action_row_new ();
      name = g_path_get_basename (recent[i]);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), name);
      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), recent[i]);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row),
                                 action_button ("Open", "panel.open-cached", recent[i]));
      gtk_list_box_append (self->recent_list, row);
      shown++;
    }
  gtk_widget_set_visible (self->recent_group, shown > 0);
}

static void
on_recent_changed (GSettings *settings, const char *key, StudioModelPage *self)
{
  update_recent (self);
}

/* ---- the Hugging Face cache -------------------------------------------------------------- */

static gpointer
scan_cache (StudioJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  SutraHubCache *cache = NULL;
  SutraError err = { 0 };

  if (sutra_hub_cache_scan (NULL, &cache, &err) != SUTRA_OK)
    {
      studio_error_from_sutra (&err, error);
      return NULL;
    }
  return cache;
}

static void
clear_list (GtkListBox *list)
{
  GtkWidget *child;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (list))))
    gtk_list_box_remove (list, child);
}

static GtkWidget *
action_button (const char *label, const char *action, const char *target)
{
  GtkWidget *button = gtk_button_new_with_label (label);

  gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (button), action);
  gtk_actionable_set_action_target (GTK_ACTIONABLE (button), "s", target);
  return button;
}

static void
cache_scanned (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(StudioModelPage) self = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(SutraHubCache) cache = studio_job_finish (STUDIO_JOB (source), result, &error);
  guint shown = 0;

  clear_list (self->cache_list);
  if (cache == NULL)
    {
      GtkWidget *row = adw_action_row_new ();
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), "The cache could not be read");
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), error->message);
      gtk_list_box_append (self->cache_list, row);
      return;
    }
  for (size_t i = 0; i < cache->n_repos; i++)
    {
      const SutraHubCachedRepo *repo = &cache->repos[i];
      const SutraHubSnapshot *snap = repo->n_snapshots ? &repo->snapshots[0] : NULL;
      GtkWidget *row = adw_action_row_new ();
      g_autofree char *size = g_format_size (repo->blobs_size);
      g_autofree char *subtitle = NULL;

      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), repo->repo_id);
      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
      if (snap && snap->loadable)
        subtitle = g_strdup_printf ("%s · %zu files%s", size, snap->n_files,
                                    repo->incomplete_size ? " · a download is unfinished" : "");
      else
        subtitle = g_strdup_printf ("%s · not loadable yet (no config.json and safetensors "
                                    "in the latest snapshot)", size);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
      if (snap && snap->loadable)
        adw_action_row_add_suffix (ADW_ACTION_ROW (row),
                                   action_button ("Open", "panel.open-cached", snap->path));
      gtk_list_box_append (self->cache_list, row);
      shown++;
    }
  if (shown == 0)
    {
      GtkWidget *row = adw_action_row_new ();
      g_autofree char *sub = g_strdup_printf ("Nothing in %s yet. Download a model below.",
                                              cache->cache_dir);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), "No cached models");
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), sub);
      gtk_list_box_append (self->cache_list, row);
    }
}

static void
refresh_cache (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioModelPage *self = STUDIO_MODEL_PAGE (widget);

  if (studio_job_get_running (self->cache_job))
    return;
  studio_job_run (self->cache_job, scan_cache, NULL, NULL,
                  (GDestroyNotify) sutra_hub_cache_free, cache_scanned, g_object_ref (self));
}

static void
open_cached (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioModelPage *self = STUDIO_MODEL_PAGE (widget);

  studio_workspace_open_model (self->workspace, g_variant_get_string (param, NULL));
}

/* ---- downloads --------------------------------------------------------------------------- */

static bool
download_progress (const SutraHubProgress *p, void *data)   /* download thread */
{
  StudioJob *job = data;
  g_autofree char *done = g_format_size (p->done);
  g_autofree char *total = g_format_size (p->total);
  g_autofree char *text = NULL;
  double fraction = p->total ? (double) p->done / p->total : -1;

  if (p->event == SUTRA_HUB_EVENT_RETRY)
    text = g_strdup_printf ("Retrying (attempt %d): %s", p->attempt, p->reason ? p->reason : "");
  else if (p->file)
    text = g_strdup_printf ("%s of %s · %s (%zu/%zu)", done, total, p->file, p->file_index + 1,
                            p->n_files);
  else
    text = g_strdup_printf ("Listing %s…", p->repo_id);
  studio_job_report (job, fraction, text);
  return !atomic_load (studio_job_cancel_flag (job));
}

static gpointer
download_thread (StudioJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  SutraHubOptions opts = { 0 };
  SutraError err = { 0 };
  char *snapshot = NULL;
  char *result;

  opts.prefer_safetensors = true;
  opts.progress = download_progress;
  opts.user_data = job;
  opts.cancel = studio_job_cancel_flag (job);
  if (sutra_hub_download (&opts, data, NULL, NULL, &snapshot, &err) != SUTRA_OK)
    {
      studio_error_from_sutra (&err, error);
      return NULL;
    }
  result = g_strdup (snapshot);
  free (snapshot);
  return result;
}

static void
download_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(StudioModelPage) self = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *snapshot = studio_job_finish (STUDIO_JOB (source), result, &error);

  gtk_widget_set_visible (self->download_row, FALSE);
  gtk_widget_set_sensitive (GTK_WIDGET (self->repo_entry), TRUE);
  g_clear_pointer (&self->downloading, g_free);
  refresh_cache (GTK_WIDGET (self), NULL, NULL);
  if (snapshot == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_prefix_error (&error, "Download failed: ");
          studio_workspace_report_error (self->workspace, error);
        }
      return;
    }
  studio_workspace_open_model (self->workspace, snapshot);
}

static void
on_download_progress (StudioJob *job, GParamSpec *pspec, StudioModelPage *self)
{
  double f = studio_job_get_fraction (job);

  if (f < 0)
    gtk_progress_bar_pulse (self->download_progress);
  else
    gtk_progress_bar_set_fraction (self->download_progress, f);
  if (studio_job_get_text (job))
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->download_row), studio_job_get_text (job));
}

void
studio_model_page_download (StudioModelPage *self, const char *repo_id)
{
  g_autofree char *title = NULL;

  g_return_if_fail (STUDIO_IS_MODEL_PAGE (self));
  if (studio_job_get_running (self->download_job))
    return;
  if (!sutra_hub_repo_id_is_valid (repo_id))
    {
      g_autoptr(GError) error = g_error_new (STUDIO_ERROR, STUDIO_ERROR_INVALID,
                                             "“%s” is not a Hugging Face repository id "
                                             "(expected org/name)", repo_id);
      studio_workspace_report_error (self->workspace, error);
      return;
    }
  self->downloading = g_strdup (repo_id);
  title = g_strdup_printf ("Downloading %s", repo_id);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->download_row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (self->download_row), "Starting…");
  gtk_progress_bar_set_fraction (self->download_progress, 0);
  gtk_widget_set_visible (self->download_row, TRUE);
  gtk_widget_set_sensitive (GTK_WIDGET (self->repo_entry), FALSE);
  studio_job_run (self->download_job, download_thread, g_strdup (repo_id), g_free, g_free,
                  download_done, g_object_ref (self));
}

StudioJob *
studio_model_page_get_download_job (StudioModelPage *self)
{
  return self->download_job;
}

static void
download_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioModelPage *self = STUDIO_MODEL_PAGE (widget);
  const char *repo = g_variant_get_string (param, NULL);

  gtk_editable_set_text (GTK_EDITABLE (self->repo_entry), repo);
  studio_model_page_download (self, repo);
}

static void
cancel_download (GtkWidget *widget, const char *action_name, GVariant *param)
{
  studio_job_cancel (STUDIO_MODEL_PAGE (widget)->download_job);
}

static void
repo_entry_apply_cb (StudioModelPage *self)
{
  g_autofree char *repo = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->repo_entry))));

  if (*repo)
    studio_model_page_download (self, repo);
}

static void
fill_known_models (StudioModelPage *self)
{
  size_t n = 0;
  const SutraHubKnownModel *known = sutra_hub_known_models (&n);

  for (size_t i = 0; i < n; i++)
    {
      GtkWidget *row = adw_action_row_new ();
      g_autofree char *params = studio_format_params ((gint64) (known[i].params_m * 1e6));
      g_autofree char *size = g_format_size ((guint64) (known[i].download_mb * 1e6));
      g_autofree char *subtitle = g_strdup_printf ("%s · %s parameters · %s download · %s%s%s%s",
                                                   known[i].architecture, params, size,
                                                   known[i].licence,
                                                   known[i].gated ? " · gated (needs HF_TOKEN)" : "",
                                                   known[i].note ? "\n" : "",
                                                   known[i].note ? known[i].note : "");

      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), known[i].repo_id);
      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
      adw_action_row_add_suffix (ADW_ACTION_ROW (row),
                                 action_button ("Download", "panel.download", known[i].repo_id));
      adw_expander_row_add_row (self->known_row, row);
    }
}

/* ---- object ------------------------------------------------------------------------------ */

void
studio_model_page_set_workspace (StudioModelPage *self, StudioWorkspace *workspace)
{
  g_return_if_fail (STUDIO_IS_MODEL_PAGE (self));
  g_return_if_fail (self->workspace == NULL);
  self->workspace = g_object_ref (workspace);
  g_signal_connect_object (workspace, "notify::model", G_CALLBACK (on_model_changed), self, 0);
  g_signal_connect_object (workspace, "notify::model-loading", G_CALLBACK (on_model_changed), self, 0);
  g_signal_connect_object (workspace, "train-changed", G_CALLBACK (on_train_changed), self, 0);
  g_signal_connect_object (studio_workspace_get_settings (workspace), "changed::recent-models",
                           G_CALLBACK (on_recent_changed), self, 0);
  update_model (self);
  update_recent (self);
  refresh_cache (GTK_WIDGET (self), NULL, NULL);
}

static void
studio_model_page_dispose (GObject *object)
{
  StudioModelPage *self = STUDIO_MODEL_PAGE (object);

  if (self->download_job)
    studio_job_cancel (self->download_job);
  /* AdwBin (libadwaita 1.2) unparents its child again in its own dispose: let it go first. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), STUDIO_TYPE_MODEL_PAGE);
  g_clear_object (&self->cache_job);
  g_clear_object (&self->download_job);
  g_clear_object (&self->workspace);
  G_OBJECT_CLASS (studio_model_page_parent_class)->dispose (object);
}

static void
studio_model_page_finalize (GObject *object)
{
  g_free (STUDIO_MODEL_PAGE (object)->downloading);
  G_OBJECT_CLASS (studio_model_page_parent_class)->finalize (object);
}

static void
studio_model_page_class_init (StudioModelPageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = studio_model_page_dispose;
  object_class->finalize = studio_model_page_finalize;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               STUDIO_RESOURCE_PATH "/studio-model-page.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, StudioModelPage, name)
  BIND (info_group); BIND (empty_row); BIND (loading_row); BIND (name_row); BIND (arch_row);
  BIND (params_row); BIND (dtype_row); BIND (context_row); BIND (shape_row);
  BIND (tokenizer_row); BIND (loading_spinner); BIND (name_value); BIND (arch_value);
  BIND (params_value); BIND (dtype_value); BIND (context_value); BIND (memory_group); BIND (lora_value); BIND (qlora_value);
  BIND (full_value); BIND (trainable_value); BIND (lora_row); BIND (trainable_row);
  BIND (cache_list); BIND (repo_entry); BIND (download_row); BIND (download_progress);
  BIND (known_row); BIND (recent_group); BIND (recent_list);
#undef BIND
  gtk_widget_class_bind_template_callback (widget_class, repo_entry_apply_cb);

  gtk_widget_class_install_action (widget_class, "panel.refresh-cache", NULL, refresh_cache);
  gtk_widget_class_install_action (widget_class, "panel.open-cached", "s", open_cached);
  gtk_widget_class_install_action (widget_class, "panel.download", "s", download_action);
  gtk_widget_class_install_action (widget_class, "panel.cancel-download", NULL, cancel_download);
}

static void
studio_model_page_init (StudioModelPage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->cache_job = studio_job_new ("Scanning the Hugging Face cache");
  self->download_job = studio_job_new ("Downloading a model");
  g_signal_connect (self->download_job, "notify::fraction", G_CALLBACK (on_download_progress), self);
  g_signal_connect (self->download_job, "notify::text", G_CALLBACK (on_download_progress), self);
  fill_known_models (self);
}
