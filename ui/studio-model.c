/* studio-model.c: loading a model folder with its tokenizer and chat template. */
#define G_LOG_DOMAIN "studio"

#include "studio-engine.h"
#include "studio-error.h"
#include "studio-model.h"

struct _StudioModel
{
  GObject parent_instance;

  /* Owned */
  char *path;
  char *name;
  SutraModel *model;
  struct SutraTokenizer *tokenizer;
  struct SutraChatTemplate *chat;
  char *tokenizer_note;
};

G_DEFINE_FINAL_TYPE (StudioModel, studio_model, G_TYPE_OBJECT)

static char *
display_name (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *parent = g_path_get_dirname (path);
  g_autofree char *pbase = g_path_get_basename (parent);
  g_autofree char *repo = NULL;
  g_autofree char *rbase = NULL;

  /* <cache>/models--org--name/snapshots/<commit> -> org/name */
  if (g_strcmp0 (pbase, "snapshots") == 0)
    {
      repo = g_path_get_dirname (parent);
      rbase = g_path_get_basename (repo);
      if (g_str_has_prefix (rbase, "models--"))
        {
          g_auto(GStrv) parts = g_strsplit (rbase + strlen ("models--"), "--", 2);
          return g_strjoinv ("/", parts);
        }
    }
  return g_steal_pointer (&base);
}

StudioModel *
studio_model_load (const char *path, GError **error)
{
  g_autoptr(StudioModel) self = NULL;
  SutraError err = { 0 };
  SutraModel *m = NULL;

  if (sutra_model_load (path, &m, &err) != SUTRA_OK)
    {
      studio_error_from_sutra (&err, error);
      return NULL;
    }
  self = g_object_new (STUDIO_TYPE_MODEL, NULL);
  self->model = m;
  self->path = g_strdup (path);
  self->name = display_name (path);

#if STUDIO_HAVE_TOKENIZER
  {
    g_autofree char *tok_path = g_build_filename (path, "tokenizer.json", NULL);
    if (!g_file_test (tok_path, G_FILE_TEST_IS_REGULAR))
      self->tokenizer_note = g_strdup ("This folder has no tokenizer.json: data and chat need one.");
    else if (sutra_tokenizer_load (path, &self->tokenizer, &err) != SUTRA_OK)
      self->tokenizer_note = g_strdup_printf ("Tokenizer not usable: %s", err.message);
  }
#else
  self->tokenizer_note = g_strdup_printf ("This build does not include %s yet.",
                                          STUDIO_MISSING_TOKENIZER);
#endif
#if STUDIO_HAVE_CHAT_TEMPLATE
  if (self->tokenizer)
    {
      /* Without a template of its own the engine falls back to a family it guesses;
       * the chat page says so. */
      if (sutra_chat_template_load (path, NULL, &self->chat, &err) != SUTRA_OK)
        g_debug ("%s: no chat template: %s", path, err.message);
    }
#endif
  return g_steal_pointer (&self);
}

static void
load_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  GError *error = NULL;
  StudioModel *model = studio_model_load (data, &error);

  if (model)
    g_task_return_pointer (task, model, g_object_unref);
  else
    g_task_return_error (task, error);
}

void
studio_model_load_async (const char *path, GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, studio_model_load_async);
  g_task_set_task_data (task, g_strdup (path), g_free);
  g_task_run_in_thread (task, load_thread);
}

StudioModel *
studio_model_load_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

const char *
studio_model_get_path (StudioModel *self)
{
  return self->path;
}

const char *
studio_model_get_name (StudioModel *self)
{
  return self->name;
}

SutraModel *
studio_model_get_sutra (StudioModel *self)
{
  return self->model;
}

const SutraModelConfig *
studio_model_get_config (StudioModel *self)
{
  return &self->model->cfg;
}

gint64
studio_model_get_n_params (StudioModel *self)
{
  return sutra_model_param_count (self->model);
}

gsize
studio_model_get_weight_bytes (StudioModel *self)
{
  return sutra_model_weight_bytes (self->model);
}

struct SutraTokenizer *
studio_model_get_tokenizer (StudioModel *self)
{
  return self->tokenizer;
}

struct SutraChatTemplate *
studio_model_get_chat_template (StudioModel *self)
{
  return self->chat;
}

const char *
studio_model_get_tokenizer_note (StudioModel *self)
{
  return self->tokenizer_note;
}

static void
studio_model_finalize (GObject *object)
{
  StudioModel *self = STUDIO_MODEL (object);

#if STUDIO_HAVE_CHAT_TEMPLATE
  sutra_chat_template_free (self->chat);
#endif
#if STUDIO_HAVE_TOKENIZER
  sutra_tokenizer_free (self->tokenizer);
#endif
  sutra_model_free (self->model);
  g_free (self->path);
  g_free (self->name);
  g_free (self->tokenizer_note);
  G_OBJECT_CLASS (studio_model_parent_class)->finalize (object);
}

static void
studio_model_class_init (StudioModelClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = studio_model_finalize;
}

static void
studio_model_init (StudioModel *self)
{
}

char *
studio_format_params (gint64 n)
{
  if (n >= 1000000000)
    return g_strdup_printf ("%.2f B", n / 1e9);
  if (n >= 1000000)
    return g_strdup_printf ("%.1f M", n / 1e6);
  if (n >= 1000)
    return g_strdup_printf ("%.1f K", n / 1e3);
  return g_strdup_printf ("%" G_GINT64_FORMAT, n);
}
