/* studio-workspace.c: shared window state, training settings and runs. */
#define G_LOG_DOMAIN "studio"

#include <json-c/json.h>

#include "studio-engine.h"
#include "studio-error.h"
#include "studio-paths.h"
#include "studio-workspace.h"

#define MAX_RECENT 8

struct _StudioWorkspace
{
  GObject parent_instance;

  /* Owned */
  GSettings *settings;
  StudioModel *model;
  char *model_path;
  GCancellable *model_cancellable;
  char *dataset_path;
  GHashTable *defaults;          /* key -> engine default value (text) */
  GHashTable *changed;           /* key -> value the user set */
  char *preset;
  StudioTrainingSession *session;
  gulong session_finished_id;
  StudioLossSeries *series;      /* shown on the Train page */
  char *run_dir;
  char *adapter_dir;
};

G_DEFINE_FINAL_TYPE (StudioWorkspace, studio_workspace, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_SETTINGS,
  PROP_MODEL,
  PROP_MODEL_LOADING,
  PROP_MODEL_PATH,
  PROP_DATASET_PATH,
  PROP_PRESET,
  PROP_SESSION,
  PROP_SERIES,
  PROP_RUN_DIR,
  PROP_ADAPTER_DIR,
  N_PROPS
};
static GParamSpec *properties[N_PROPS];

enum { ERROR, TRAIN_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

/* ---- presets ------------------------------------------------------------------------------
 * Quick test: a minute on the default model, enough to see the loss fall. Balanced: a real
 * LoRA run on a small dataset. Thorough: more capacity, longer context, more passes. */
typedef struct { const char *key, *value; } KV;

static const KV preset_quick[] = {
  /* data/examples/quick-lora.json, the README's five-minute walk-through */
  { "method", "lora" }, { "lora_r", "8" }, { "lora_alpha", "16" }, { "lora_dropout", "0" },
  { "lora_targets", "all-linear" }, { "lr", "2e-3" }, { "max_steps", "60" }, { "epochs", "1" },
  { "micro_batch_size", "8" }, { "grad_accum", "1" }, { "seq_len", "128" },
  { "warmup_steps", "5" }, { "schedule", "cosine" }, { "val_split", "0.1" },
  { "eval_every", "20" }, { "save_every", "20" }, { "keep_checkpoints", "2" }, { NULL, NULL },
};
static const KV preset_balanced[] = {
  { "method", "lora" }, { "lora_r", "16" }, { "lora_alpha", "32" }, { "lora_dropout", "0.05" },
  { "lr", "5e-4" }, { "max_steps", "0" }, { "epochs", "2" }, { "micro_batch_size", "4" },
  { "grad_accum", "2" }, { "seq_len", "512" }, { "warmup_steps", "20" }, { "schedule", "cosine" },
  { "val_split", "0.1" }, { "eval_every", "50" }, { "save_every", "100" },
  { "keep_checkpoints", "3" }, { NULL, NULL },
};
static const KV preset_thorough[] = {
  { "method", "lora" }, { "lora_r", "32" }, { "lora_alpha", "64" }, { "lora_dropout", "0.05" },
  { "lr", "2e-4" }, { "max_steps", "0" }, { "epochs", "3" }, { "micro_batch_size", "8" },
  { "grad_accum", "4" }, { "seq_len", "1024" }, { "warmup_steps", "50" }, { "schedule", "cosine" },
  { "val_split", "0.1" }, { "eval_every", "100" }, { "save_every", "200" },
  { "keep_checkpoints", "3" }, { NULL, NULL },
};

static const char *const preset_names[] = { "quick", "balanced", "thorough", NULL };

const char *const *
studio_workspace_preset_names (void)
{
  return preset_names;
}

static const KV *
preset_table (const char *name)
{
  if (g_strcmp0 (name, "balanced") == 0)
    return preset_balanced;
  if (g_strcmp0 (name, "thorough") == 0)
    return preset_thorough;
  return preset_quick;
}

static const char *
preset_value (const char *preset, const char *key)
{
  for (const KV *kv = preset_table (preset); kv->key; kv++)
    if (strcmp (kv->key, key) == 0)
      return kv->value;
  return NULL;
}

/* Engine defaults as text, from the resolved JSON of a default config. */
static GHashTable *
load_defaults (void)
{
  GHashTable *t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
#if STUDIO_HAVE_TRAINER
  g_auto(SutraTrainConfig) c;
  char *json;
  json_object *root;

  sutra_train_config_init (&c);
  json = sutra_train_config_to_json (&c);
  root = json ? json_tokener_parse (json) : NULL;
  free (json);
  if (root && json_object_is_type (root, json_type_object))
    {
      json_object_object_foreach (root, key, val)
        {
          GString *s = g_string_new (NULL);

          if (val == NULL)
            ;
          else if (json_object_is_type (val, json_type_array))
            for (size_t i = 0; i < json_object_array_length (val); i++)
              {
                json_object *item = json_object_array_get_idx (val, i);
                if (i)
                  g_string_append_c (s, ',');
                g_string_append (s, json_object_get_string (item));
              }
          else
            g_string_append (s, json_object_get_string (val));
          g_hash_table_insert (t, g_strdup (key), g_string_free (s, FALSE));
        }
    }
  json_object_put (root);
#endif
  return t;
}

/* ---- model ------------------------------------------------------------------------------- */

static void
model_loaded (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr(StudioWorkspace) self = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(StudioModel) model = studio_model_load_finish (result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  g_clear_object (&self->model_cancellable);
  if (model == NULL)
    {
      g_prefix_error (&error, "Could not open the model: ");
      studio_workspace_report_error (self, error);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_LOADING]);
      return;
    }
  g_set_object (&self->model, model);
  studio_workspace_add_recent (self, "recent-models", studio_model_get_path (model));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_LOADING]);
}

void
studio_workspace_open_model (StudioWorkspace *self, const char *path)
{
  g_autofree char *dir = NULL;

  g_return_if_fail (STUDIO_IS_WORKSPACE (self));
  g_return_if_fail (path != NULL);

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    dir = g_strdup (path);
  else
    {
      /* "org/name" from the Hugging Face cache (no network: a file system lookup). */
      SutraError err = { 0 };
      char *resolved = NULL;
      g_autoptr(GError) error = NULL;

      if (sutra_hub_resolve_model (path, &resolved, &err) != SUTRA_OK)
        {
          studio_error_from_sutra (&err, &error);
          g_prefix_error (&error, "Could not open the model: ");
          studio_workspace_report_error (self, error);
          return;
        }
      dir = g_strdup (resolved);
      free (resolved);
    }

  if (self->model_cancellable)
    g_cancellable_cancel (self->model_cancellable);
  g_clear_object (&self->model_cancellable);
  self->model_cancellable = g_cancellable_new ();
  g_free (self->model_path);
  self->model_path = g_steal_pointer (&dir);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_PATH]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL_LOADING]);
  studio_model_load_async (self->model_path, self->model_cancellable, model_loaded,
                           g_object_ref (self));
}

StudioModel *
studio_workspace_get_model (StudioWorkspace *self)
{
  return self->model;
}

gboolean
studio_workspace_get_model_loading (StudioWorkspace *self)
{
  return self->model_cancellable != NULL;
}

const char *
studio_workspace_get_model_path (StudioWorkspace *self)
{
  return self->model_path;
}

/* ---- dataset ----------------------------------------------------------------------------- */

void
studio_workspace_set_dataset_path (StudioWorkspace *self, const char *path)
{
  g_return_if_fail (STUDIO_IS_WORKSPACE (self));
  if (g_strcmp0 (self->dataset_path, path) == 0)
    return;
  g_free (self->dataset_path);
  self->dataset_path = g_strdup (path);
  if (path)
    studio_workspace_add_recent (self, "recent-datasets", path);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DATASET_PATH]);
}

const char *
studio_workspace_get_dataset_path (StudioWorkspace *self)
{
  return self->dataset_path;
}

/* ---- training settings ------------------------------------------------------------------- */

const char *
studio_workspace_get_preset (StudioWorkspace *self)
{
  return self->preset;
}

static void
save_changed (StudioWorkspace *self)
{
  GVariantBuilder b;
  GHashTableIter it;
  gpointer k, v;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{ss}"));
  g_hash_table_iter_init (&it, self->changed);
  while (g_hash_table_iter_next (&it, &k, &v))
    g_variant_builder_add (&b, "{ss}", k, v);
  g_settings_set_value (self->settings, "train-values", g_variant_builder_end (&b));
}

void
studio_workspace_set_preset (StudioWorkspace *self, const char *preset)
{
  g_return_if_fail (STUDIO_IS_WORKSPACE (self));
  g_return_if_fail (g_strv_contains (preset_names, preset));
  g_free (self->preset);
  self->preset = g_strdup (preset);
  g_hash_table_remove_all (self->changed);
  g_settings_set_string (self->settings, "train-preset", preset);
  save_changed (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PRESET]);
  g_signal_emit (self, signals[TRAIN_CHANGED], 0, NULL);
}

char *
studio_workspace_dup_train_value (StudioWorkspace *self, const char *key)
{
  const char *v = g_hash_table_lookup (self->changed, key);

  if (v == NULL)
    v = preset_value (self->preset, key);
  if (v == NULL)
    v = g_hash_table_lookup (self->defaults, key);
  return g_strdup (v);
}

gboolean
studio_workspace_set_train_value (StudioWorkspace *self, const char *key, const char *value,
                                  GError **error)
{
#if STUDIO_HAVE_TRAINER
  g_auto(SutraTrainConfig) scratch;
  SutraError err = { 0 };
  g_autofree char *current = studio_workspace_dup_train_value (self, key);

  sutra_train_config_init (&scratch);
  if (sutra_train_config_set (&scratch, key, value, &err) != SUTRA_OK)
    return studio_error_from_sutra (&err, error);
  if (g_strcmp0 (current, value) == 0)
    return TRUE;
  g_hash_table_insert (self->changed, g_strdup (key), g_strdup (value));
  save_changed (self);
  g_signal_emit (self, signals[TRAIN_CHANGED], g_quark_from_string (key), key);
  return TRUE;
#else
  return studio_error_missing_engine (STUDIO_MISSING_TRAINER, error);
#endif
}

char *
studio_workspace_dup_output_folder (StudioWorkspace *self)
{
  g_autofree char *pref = g_settings_get_string (self->settings, "output-folder");

  if (pref && *pref)
    return g_steal_pointer (&pref);
  return studio_paths_default_output ();
}

#if STUDIO_HAVE_TRAINER
static gboolean
config_set (SutraTrainConfig *c, const char *key, const char *value, GError **error)
{
  SutraError err = { 0 };

  if (sutra_train_config_set (c, key, value, &err) != SUTRA_OK)
    return studio_error_from_sutra (&err, error);
  return TRUE;
}
#endif

gboolean
studio_workspace_apply_train_settings (StudioWorkspace *self, SutraTrainConfig *config,
                                       GError **error)
{
#if STUDIO_HAVE_TRAINER
  GHashTableIter it;
  gpointer k, v;

  for (const KV *kv = preset_table (self->preset); kv->key; kv++)
    if (!config_set (config, kv->key, kv->value, error))
      return FALSE;
  g_hash_table_iter_init (&it, self->changed);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (!config_set (config, k, v, error))
      return FALSE;
  return TRUE;
#else
  return studio_error_missing_engine (STUDIO_MISSING_TRAINER, error);
#endif
}

gboolean
studio_workspace_build_train_config (StudioWorkspace *self, SutraTrainConfig *config,
                                     GError **error)
{
#if STUDIO_HAVE_TRAINER
  g_auto(SutraTrainConfig) c;
  g_autofree char *output = NULL;
  g_autofree char *run_dir = NULL;
  g_autofree char *threads = NULL;
  SutraError err = { 0 };

  if (self->model == NULL)
    {
      g_set_error_literal (error, STUDIO_ERROR, STUDIO_ERROR_INVALID,
                           "Open a model first (Model page)");
      return FALSE;
    }
  if (self->dataset_path == NULL)
    {
      g_set_error_literal (error, STUDIO_ERROR, STUDIO_ERROR_INVALID,
                           "Open a dataset first (Data page)");
      return FALSE;
    }
  sutra_train_config_init (&c);
  if (!studio_workspace_apply_train_settings (self, &c, error))
    return FALSE;
  output = studio_workspace_dup_output_folder (self);
  run_dir = studio_paths_new_run_dir (output);
  threads = g_strdup_printf ("%d", g_settings_get_int (self->settings, "threads"));
  if (!config_set (&c, "model", studio_model_get_path (self->model), error) ||
      !config_set (&c, "data", self->dataset_path, error) ||
      !config_set (&c, "output_dir", run_dir, error) ||
      !config_set (&c, "threads", threads, error))
    return FALSE;
  if (sutra_train_config_validate (&c, &err) != SUTRA_OK)
    return studio_error_from_sutra (&err, error);
  sutra_train_config_copy (config, &c);
  return TRUE;
#else
  return studio_error_missing_engine (STUDIO_MISSING_TRAINER, error);
#endif
}

/* ---- runs -------------------------------------------------------------------------------- */

static void
set_run_dir (StudioWorkspace *self, const char *dir)
{
  if (g_strcmp0 (self->run_dir, dir) == 0)
    return;
  g_free (self->run_dir);
  self->run_dir = g_strdup (dir);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUN_DIR]);
}

static void
set_series (StudioWorkspace *self, StudioLossSeries *series)
{
  if (g_set_object (&self->series, series))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERIES]);
}

static void
session_finished (StudioTrainingSession *session, StudioWorkspace *self)
{
  const char *result = studio_training_session_get_result_path (session);

  /* A stopped run's checkpoint is a usable adapter too: chat and export pick it up. */
  if (result)
    studio_workspace_set_adapter_dir (self, result);
}

static void
set_session (StudioWorkspace *self, StudioTrainingSession *session)
{
  if (self->session)
    g_clear_signal_handler (&self->session_finished_id, self->session);
  g_set_object (&self->session, session);
  if (session)
    {
      self->session_finished_id = g_signal_connect (session, "finished",
                                                    G_CALLBACK (session_finished), self);
      set_series (self, studio_training_session_get_series (session));
      set_run_dir (self, studio_training_session_get_run_dir (session));
    }
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SESSION]);
}

static gboolean
check_idle (StudioWorkspace *self, GError **error)
{
  if (self->session && studio_training_session_is_active (self->session))
    {
      g_set_error_literal (error, STUDIO_ERROR, STUDIO_ERROR_INVALID,
                           "A training run is already in progress; stop it first");
      return FALSE;
    }
  return TRUE;
}

gboolean
studio_workspace_start_training (StudioWorkspace *self, GError **error)
{
#if STUDIO_HAVE_TRAINER
  g_auto(SutraTrainConfig) c = { 0 };   /* filled by build_train_config (a copy) */
  g_autoptr(StudioTrainingSession) session = NULL;

  if (!check_idle (self, error))
    return FALSE;
  if (!studio_workspace_build_train_config (self, &c, error))
    return FALSE;
  session = studio_training_session_new (&c);
  if (!studio_training_session_start (session, error))
    return FALSE;
  set_session (self, session);
  return TRUE;
#else
  return studio_error_missing_engine (STUDIO_MISSING_TRAINER, error);
#endif
}

gboolean
studio_workspace_resume_training (StudioWorkspace *self, const char *run_dir,
                                  const char *checkpoint, GError **error)
{
  g_autoptr(StudioTrainingSession) session = NULL;

  if (!check_idle (self, error))
    return FALSE;
  session = studio_training_session_new_resume (run_dir, checkpoint);
  if (!studio_training_session_start (session, error))
    return FALSE;
  set_session (self, session);
  return TRUE;
}

gboolean
studio_workspace_open_run (StudioWorkspace *self, const char *run_dir, GError **error)
{
  g_autoptr(StudioLossSeries) series = studio_loss_series_new ();
  g_autofree char *adapter = NULL;

  if (!check_idle (self, error))
    return FALSE;
  if (!studio_loss_series_load_run (series, run_dir, error))
    return FALSE;
  set_session (self, NULL);
  set_run_dir (self, run_dir);
  set_series (self, series);
  /* The run's adapter (final, else its latest checkpoint) becomes the one to chat with. */
#if STUDIO_HAVE_EXPORT
  {
    SutraError err = { 0 };
    char *found = NULL;
    if (sutra_export_find_adapter (run_dir, &found, &err) == SUTRA_OK)
      adapter = g_strdup (found);
    free (found);
  }
#endif
  if (adapter == NULL)
    {
      /* A full fine-tuning run has no adapter but a model of its own. */
      g_autofree char *model = g_build_filename (run_dir, "model", "config.json", NULL);
      if (g_file_test (model, G_FILE_TEST_IS_REGULAR))
        adapter = g_path_get_dirname (model);
    }
  if (adapter)
    studio_workspace_set_adapter_dir (self, adapter);
  return TRUE;
}

StudioTrainingSession *
studio_workspace_get_session (StudioWorkspace *self)
{
  return self->session;
}

const char *
studio_workspace_get_run_dir (StudioWorkspace *self)
{
  return self->run_dir;
}

StudioLossSeries *
studio_workspace_get_series (StudioWorkspace *self)
{
  return self->series;
}

const char *
studio_workspace_get_adapter_dir (StudioWorkspace *self)
{
  return self->adapter_dir;
}

void
studio_workspace_set_adapter_dir (StudioWorkspace *self, const char *dir)
{
  if (g_strcmp0 (self->adapter_dir, dir) == 0)
    return;
  g_free (self->adapter_dir);
  self->adapter_dir = g_strdup (dir);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ADAPTER_DIR]);
}

/* ---- misc -------------------------------------------------------------------------------- */

void
studio_workspace_add_recent (StudioWorkspace *self, const char *key, const char *path)
{
  g_auto(GStrv) old = g_settings_get_strv (self->settings, key);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) list = NULL;
  guint n = 1;

  g_strv_builder_add (b, path);
  for (guint i = 0; old[i] && n < MAX_RECENT; i++)
    if (g_strcmp0 (old[i], path) != 0)
      {
        g_strv_builder_add (b, old[i]);
        n++;
      }
  list = g_strv_builder_end (b);
  g_settings_set_strv (self->settings, key, (const char *const *) list);
}

void
studio_workspace_report_error (StudioWorkspace *self, const GError *error)
{
  g_signal_emit (self, signals[ERROR], 0, error);
}

GSettings *
studio_workspace_get_settings (StudioWorkspace *self)
{
  return self->settings;
}

static void
studio_workspace_constructed (GObject *object)
{
  StudioWorkspace *self = STUDIO_WORKSPACE (object);
  g_autoptr(GVariant) values = NULL;
  GVariantIter it;
  const char *k, *v;

  G_OBJECT_CLASS (studio_workspace_parent_class)->constructed (object);
  g_assert (self->settings != NULL);
  self->preset = g_settings_get_string (self->settings, "train-preset");
  if (!g_strv_contains (preset_names, self->preset))
    {
      g_free (self->preset);
      self->preset = g_strdup ("quick");
    }
  values = g_settings_get_value (self->settings, "train-values");
  g_variant_iter_init (&it, values);
  while (g_variant_iter_next (&it, "{&s&s}", &k, &v))
    g_hash_table_insert (self->changed, g_strdup (k), g_strdup (v));
}

static void
studio_workspace_dispose (GObject *object)
{
  StudioWorkspace *self = STUDIO_WORKSPACE (object);

  if (self->model_cancellable)
    g_cancellable_cancel (self->model_cancellable);
  g_clear_object (&self->model_cancellable);
  set_session (self, NULL);
  g_clear_object (&self->series);
  g_clear_object (&self->model);
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (studio_workspace_parent_class)->dispose (object);
}

static void
studio_workspace_finalize (GObject *object)
{
  StudioWorkspace *self = STUDIO_WORKSPACE (object);

  g_free (self->model_path);
  g_free (self->dataset_path);
  g_free (self->preset);
  g_free (self->run_dir);
  g_free (self->adapter_dir);
  g_hash_table_unref (self->defaults);
  g_hash_table_unref (self->changed);
  G_OBJECT_CLASS (studio_workspace_parent_class)->finalize (object);
}

static void
studio_workspace_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  StudioWorkspace *self = STUDIO_WORKSPACE (object);

  switch (prop_id)
    {
    case PROP_SETTINGS: g_value_set_object (value, self->settings); break;
    case PROP_MODEL: g_value_set_object (value, self->model); break;
    case PROP_MODEL_LOADING: g_value_set_boolean (value, self->model_cancellable != NULL); break;
    case PROP_MODEL_PATH: g_value_set_string (value, self->model_path); break;
    case PROP_DATASET_PATH: g_value_set_string (value, self->dataset_path); break;
    case PROP_PRESET: g_value_set_string (value, self->preset); break;
    case PROP_SESSION: g_value_set_object (value, self->session); break;
    case PROP_SERIES: g_value_set_object (value, self->series); break;
    case PROP_RUN_DIR: g_value_set_string (value, self->run_dir); break;
    case PROP_ADAPTER_DIR: g_value_set_string (value, self->adapter_dir); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
studio_workspace_set_property (GObject *object, guint prop_id, const GValue *value,
                               GParamSpec *pspec)
{
  StudioWorkspace *self = STUDIO_WORKSPACE (object);

  switch (prop_id)
    {
    case PROP_SETTINGS: self->settings = g_value_dup_object (value); break;
    case PROP_DATASET_PATH: studio_workspace_set_dataset_path (self, g_value_get_string (value)); break;
    case PROP_PRESET: studio_workspace_set_preset (self, g_value_get_string (value)); break;
    case PROP_ADAPTER_DIR: studio_workspace_set_adapter_dir (self, g_value_get_string (value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
studio_workspace_class_init (StudioWorkspaceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->constructed = studio_workspace_constructed;
  object_class->dispose = studio_workspace_dispose;
  object_class->finalize = studio_workspace_finalize;
  object_class->get_property = studio_workspace_get_property;
  object_class->set_property = studio_workspace_set_property;

  properties[PROP_SETTINGS] =
    g_param_spec_object ("settings", NULL, NULL, G_TYPE_SETTINGS,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_MODEL] = g_param_spec_object ("model", NULL, NULL, STUDIO_TYPE_MODEL, ro);
  properties[PROP_MODEL_LOADING] = g_param_spec_boolean ("model-loading", NULL, NULL, FALSE, ro);
  properties[PROP_MODEL_PATH] = g_param_spec_string ("model-path", NULL, NULL, NULL, ro);
  properties[PROP_DATASET_PATH] = g_param_spec_string ("dataset-path", NULL, NULL, NULL, rw);
  properties[PROP_PRESET] = g_param_spec_string ("preset", NULL, NULL, "quick", rw);
  properties[PROP_SESSION] = g_param_spec_object ("session", NULL, NULL,
                                                  STUDIO_TYPE_TRAINING_SESSION, ro);
  properties[PROP_SERIES] = g_param_spec_object ("series", NULL, NULL, STUDIO_TYPE_LOSS_SERIES, ro);
  properties[PROP_RUN_DIR] = g_param_spec_string ("run-dir", NULL, NULL, NULL, ro);
  properties[PROP_ADAPTER_DIR] = g_param_spec_string ("adapter-dir", NULL, NULL, NULL, rw);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[ERROR] = g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                 NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
  /* Detail: the key that changed; no detail (key NULL) after a preset. */
  signals[TRAIN_CHANGED] = g_signal_new ("train-changed", G_TYPE_FROM_CLASS (klass),
                                         G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED, 0, NULL, NULL,
                                         NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
studio_workspace_init (StudioWorkspace *self)
{
  self->defaults = load_defaults ();
  self->changed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

StudioWorkspace *
studio_workspace_new (GSettings *settings)
{
  return g_object_new (STUDIO_TYPE_WORKSPACE, "settings", settings, NULL);
}
