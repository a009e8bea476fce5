/* studio-paths.c: data lookup, output folders and the settings schema. */
#define G_LOG_DOMAIN "studio"

#include "studio-paths.h"

#include <json-c/json.h>

static char *
data_root (guint i)
{
  const char *env;

  switch (i)
    {
    case 0:
      return g_strdup (SUTRA_DATADIR);
    case 1:
      env = g_getenv ("SUTRA_SOURCE_DIR");
      return env && *env ? g_build_filename (env, "data", NULL) : NULL;
    case 2:
      return g_build_filename (SUTRA_SOURCE_DIR, "data", NULL);
    default:
      return NULL;
    }
}

char *
studio_paths_find_data (const char *sub)
{
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *root = data_root (i);
      g_autofree char *path = NULL;

      if (root == NULL)
        continue;
      path = g_build_filename (root, sub, NULL);
      if (g_file_test (path, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&path);
    }
  return NULL;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

/* First entry (by name) of dir for which accept() holds; NULL when none. */
static char *
first_entry (const char *dir, gboolean (*accept) (const char *path))
{
  g_autoptr(GDir) d = dir ? g_dir_open (dir, 0, NULL) : NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (d == NULL)
    return NULL;
  while ((name = g_dir_read_name (d)))
    if (name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
      if (accept (path))
        return g_steal_pointer (&path);
    }
  return NULL;
}

static gboolean
is_model_dir (const char *path)
{
  g_autofree char *cfg = g_build_filename (path, "config.json", NULL);
  return g_file_test (cfg, G_FILE_TEST_IS_REGULAR);
}

static gboolean
is_dataset_file (const char *path)
{
  static const char *const exts[] = { ".jsonl", ".json", ".csv", ".txt" };

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (exts); i++)
    if (g_str_has_suffix (path, exts[i]))
      return TRUE;
  return FALSE;
}

/* "model" or "data" of data/examples/quick-lora.json (the README's walk-through), resolved
 * against the examples folder, when that file names something that exists. */
static char *
walkthrough_path (const char *key, gboolean (*accept) (const char *path))
{
  g_autofree char *file = studio_paths_find_data ("examples/quick-lora.json");
  g_autofree char *text = NULL;
  g_autofree char *dir = NULL;
  json_object *root, *v;
  char *path = NULL;

  if (file == NULL || !g_file_get_contents (file, &text, NULL, NULL))
    return NULL;
  root = json_tokener_parse (text);
  if (root && json_object_object_get_ex (root, key, &v) && json_object_is_type (v, json_type_string))
    {
      dir = g_path_get_dirname (file);
      path = g_canonicalize_filename (json_object_get_string (v), dir);
      if (!accept (path))
        g_clear_pointer (&path, g_free);
    }
  json_object_put (root);
  return path;
}

char *
studio_paths_default_model (void)
{
  g_autofree char *models = NULL;
  char *path = walkthrough_path ("model", is_model_dir);

  if (path)
    return path;
  models = studio_paths_find_data ("models");
  return first_entry (models, is_model_dir);
}

char *
studio_paths_default_dataset (void)
{
  g_autofree char *sets = NULL;
  char *path = walkthrough_path ("data", is_dataset_file);

  if (path)
    return path;
  sets = studio_paths_find_data ("datasets");
  return first_entry (sets, is_dataset_file);
}

char *
studio_paths_default_output (void)
{
  return g_build_filename (g_get_home_dir (), "sutra-runs", NULL);
}

char *
studio_paths_new_run_dir (const char *output)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stamp = g_date_time_format (now, "run-%Y%m%d-%H%M%S");
  char *path = g_build_filename (output, stamp, NULL);

  /* Two runs started within one second (tests do that) must not share a folder. */
  for (guint i = 2; g_file_test (path, G_FILE_TEST_EXISTS); i++)
    {
      g_free (path);
      path = g_strdup_printf ("%s%c%s-%u", output, G_DIR_SEPARATOR, stamp, i);
    }
  return path;
}

GSettings *
studio_settings_new (void)
{
  GSettingsSchemaSource *def = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchema) schema = NULL;

  if (def)
    schema = g_settings_schema_source_lookup (def, STUDIO_APP_ID, TRUE);
  if (schema == NULL)
    {
      /* Uninstalled: the schema cmake compiled into <build>/schemas. */
      g_autoptr(GError) error = NULL;
      g_autoptr(GSettingsSchemaSource) src =
        g_settings_schema_source_new_from_directory (STUDIO_BUILD_SCHEMA_DIR, def, FALSE, &error);
      if (src)
        schema = g_settings_schema_source_lookup (src, STUDIO_APP_ID, FALSE);
    }
  if (schema == NULL)
    g_error ("GSettings schema %s is neither installed nor in %s; reinstall Sutra Studio",
             STUDIO_APP_ID, STUDIO_BUILD_SCHEMA_DIR);
  return g_settings_new_full (schema, NULL, NULL);
}
