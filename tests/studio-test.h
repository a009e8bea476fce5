/* studio-test.h: helpers shared by the GUI tests (tests/test-ui-*.c), header-only because
 * tests/CMakeLists.txt builds each test from its one file.
 *
 * Every GUI test runs under Xvfb with a private D-Bus and GSETTINGS_BACKEND=memory
 * (tests/run-all.sh, HEADLESS.md); g_test makes every warning fatal, so a test also fails
 * when the studio logs a warning or a critical. */
#pragma once

#include <adwaita.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "studio-engine.h"
#include "studio-error.h"
#include "studio-paths.h"
#include "studio-window.h"
#include "sutra-fsutil.h"
#include "test-util.h"

/* Iterates the default main context until cond holds; fails the test after timeout_ms. */
#define WAIT_UNTIL(cond, timeout_ms)                                                          \
  G_STMT_START {                                                                              \
    gint64 _deadline = g_get_monotonic_time () + (gint64) (timeout_ms) * 1000;                \
    while (!(cond))                                                                           \
      {                                                                                       \
        if (g_get_monotonic_time () > _deadline)                                              \
          g_error ("%s:%d: timed out after %d ms waiting for %s", __FILE__, __LINE__,         \
                   (int) (timeout_ms), #cond);                                                \
        if (!g_main_context_iteration (NULL, FALSE))                                          \
          g_usleep (2000);                                                                    \
      }                                                                                       \
  } G_STMT_END

/* Runs the main loop for ms milliseconds. */
static inline void
studio_test_spin (int ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < end)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (2000);
}

static GtkApplication *studio_test_app;
static char *studio_test_root;

/* g_test + GTK + libadwaita, an isolated HOME/HF cache, and a registered application
 * (non-unique: tests run in parallel on one session bus). */
static inline void
studio_test_init (int *argc, char ***argv)
{
  g_autoptr(GError) error = NULL;
  char *id;

  /* Before any GLib call caches them: the user's runs and HF cache stay out of the tests. */
  studio_test_root = g_dir_make_tmp ("sutra-ui-XXXXXX", NULL);
  g_assert_nonnull (studio_test_root);
  g_setenv ("HF_HOME", studio_test_root, TRUE);
  g_unsetenv ("HF_HUB_CACHE");
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);

  gtk_test_init (argc, argv, NULL);
  adw_init ();
  studio_engine_log_init ();

  id = g_strdup_printf ("io.github.sutra.Studio.Test%d", (int) getpid ());
  studio_test_app = GTK_APPLICATION (g_object_new (ADW_TYPE_APPLICATION, "application-id", id,
                                                   "flags", G_APPLICATION_NON_UNIQUE,
                                                   "resource-base-path", STUDIO_RESOURCE_PATH,
                                                   NULL));
  g_free (id);
  if (!g_application_register (G_APPLICATION (studio_test_app), NULL, &error))
    g_error ("registering the test application: %s", error->message);
}

static inline void
studio_test_cleanup (void)
{
  g_autoptr(GError) error = NULL;

  if (g_strcmp0 (g_getenv ("SUTRA_KEEP_TMP"), "1") != 0)
    sutra_rm_rf (studio_test_root, NULL);
  g_clear_object (&studio_test_app);
  g_free (studio_test_root);
}

/* "<test root>/<name>" (allocated). */
static inline char *
studio_test_path (const char *name)
{
  return g_build_filename (studio_test_root, name, NULL);
}

/* A new window with its output folder inside the test root; shown. */
static inline StudioWindow *
studio_test_window_new (void)
{
  StudioWindow *win = studio_window_new (studio_test_app);
  GSettings *settings = studio_workspace_get_settings (studio_window_get_workspace (win));
  g_autofree char *runs = studio_test_path ("runs");

  g_settings_set_string (settings, "output-folder", runs);
  g_settings_set_int (settings, "threads", 1);
  gtk_window_present (GTK_WINDOW (win));
  return win;
}

/* Destroys a window (no close dialog: tests stop their runs first). */
static inline void
studio_test_window_destroy (StudioWindow *win)
{
  gtk_window_destroy (GTK_WINDOW (win));
  studio_test_spin (50);
}

/* Fails the test when the workspace reports an error (connect with g_signal_connect). */
static inline void
studio_test_fail_on_error (StudioWorkspace *ws, const GError *error, gpointer data)
{
  g_error ("the studio reported an error: %s", error->message);
}

/* Copies a file; fails the test on error. */
static inline void
studio_test_copy (const char *from, const char *to)
{
  g_autofree char *data = NULL;
  gsize len;
  g_autoptr(GError) error = NULL;

  if (!g_file_get_contents (from, &data, &len, &error) ||
      !g_file_set_contents (to, data, len, &error))
    g_error ("copying %s to %s: %s", from, to, error->message);
}

/* A tiny random Llama model with the GPT-2 tokenizer from ../shared, in <root>/<name>.
 * Returns the folder, or NULL (test skipped) when ../shared is absent. */
static inline char *
studio_test_make_model (const char *name)
{
  static const char config[] =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":32,"
    "\"intermediate_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
    "\"num_key_value_heads\":2,\"vocab_size\":50257,\"max_position_embeddings\":128,"
    "\"rms_norm_eps\":1e-5,\"rope_theta\":10000.0,\"tie_word_embeddings\":true,"
    "\"bos_token_id\":50256,\"eos_token_id\":50256,\"torch_dtype\":\"float32\"}";
  const char *tok = test_shared_path ("tokenizers/gpt2");
  char *dir;
  SutraModelConfig cfg;
  SutraModel *m = NULL;
  SutraError err = { 0 };
  g_autofree char *from = NULL, *to = NULL;

  if (tok == NULL)
    return NULL;
  dir = studio_test_path (name);
  g_mkdir_with_parents (dir, 0755);
  test_assert_ok (sutra_model_config_parse (config, strlen (config), "tiny", &cfg, &err), &err);
  test_assert_ok (sutra_model_new_random (&cfg, 0.02f, 7, &m, &err), &err);
  test_assert_ok (sutra_model_write_files (m, dir, SUTRA_F32, &err), &err);
  sutra_model_free (m);
  from = g_build_filename (tok, "tokenizer.json", NULL);
  to = g_build_filename (dir, "tokenizer.json", NULL);
  studio_test_copy (from, to);
  g_free (from);
  g_free (to);
  from = g_build_filename (tok, "tokenizer_config.json", NULL);
  to = g_build_filename (dir, "tokenizer_config.json", NULL);
  studio_test_copy (from, to);
  return dir;
}

/* A prompt/completion JSONL file of n rows (a toy task the model can learn: repeat a word). */
static inline char *
studio_test_make_dataset (const char *name, guint n, guint bad_rows)
{
  static const char *const words[] = { "apple", "river", "stone", "cloud", "light", "green",
                                       "music", "house", "sleep", "north" };
  GString *s = g_string_new (NULL);
  char *path = studio_test_path (name);
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < n; i++)
    {
      g_string_append_printf (s, "{\"prompt\": \"Say %s twice:\", \"completion\": \" %s %s\"}\n",
                              words[i % 10], words[i % 10], words[i % 10]);
      if (i == 2 && bad_rows)
        for (guint k = 0; k < bad_rows; k++)
          g_string_append (s, "{\"prompt\": 5}\n");
    }
  if (!g_file_set_contents (path, s->str, s->len, &error))
    g_error ("%s", error->message);
  g_string_free (s, TRUE);
  return path;
}

/* Opens the model folder through the dialog's response path and waits for it to load. */
static inline void
studio_test_open_model (StudioWindow *win, const char *dir)
{
  g_autoptr(GFile) f = g_file_new_for_path (dir);
  StudioWorkspace *ws = studio_window_get_workspace (win);

  studio_window_open_model_file (win, f);
  WAIT_UNTIL (studio_workspace_get_model (ws) != NULL &&
              g_strcmp0 (studio_model_get_path (studio_workspace_get_model (ws)), dir) == 0,
              20000);
}
