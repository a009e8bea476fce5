/* test-util.c: paths to test data, temporary folders, running the CLI, error metrics. */
#include "test-util.h"
#include "sutra-fsutil.h"
#include "sutra-model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char *tmp_root;

const char *
test_source_dir (void)
{
  const char *e = g_getenv ("SUTRA_SOURCE_DIR");
  return e && *e ? e : SUTRA_SOURCE_DIR;
}

static const char *
keep (char *s)
{
  static GPtrArray *kept;
  if (!kept)
    kept = g_ptr_array_new ();       /* lives until exit by design */
  g_ptr_array_add (kept, s);
  return s;
}

const char *
test_shared_path (const char *sub)
{
  const char *root = g_getenv ("SUTRA_SHARED_DIR");
  char *p = root && *root ? g_build_filename (root, "testdata", sub, NULL)
                          : g_build_filename (test_source_dir (), "..", "shared", "testdata", sub, NULL);
  if (g_file_test (p, G_FILE_TEST_EXISTS))
    return keep (p);
  if (g_strcmp0 (g_getenv ("SUTRA_REQUIRE_SHARED"), "1") == 0)
    g_error ("%s is missing but SUTRA_REQUIRE_SHARED=1 (CI): conformance data must be present", p);
  char *msg = g_strdup_printf ("%s not found: ../shared (conformance data) is absent in this clone; "
                               "skipping", p);
  g_test_skip (msg);
  g_free (msg);
  g_free (p);
  return NULL;
}

const char *
test_source_path (const char *sub)
{
  return keep (g_build_filename (test_source_dir (), sub, NULL));
}

static void
cleanup_tmp (void)
{
  if (tmp_root && g_strcmp0 (g_getenv ("SUTRA_KEEP_TMP"), "1") != 0)
    sutra_rm_rf (tmp_root, NULL);
}

const char *
test_tmpdir (void)
{
  if (!tmp_root) {
    GError *error = NULL;
    tmp_root = g_dir_make_tmp ("sutra-test-XXXXXX", &error);
    g_assert_no_error (error);
    atexit (cleanup_tmp);
  }
  static int n;
  char *d = g_strdup_printf ("%s/%d", tmp_root, n++);
  g_assert_cmpint (g_mkdir_with_parents (d, 0755), ==, 0);
  return keep (d);
}

const char *
test_cli_path (void)
{
  const char *e = g_getenv ("SUTRA_CLI");
  g_assert_nonnull (e);
  return e;
}

int
test_run_cli (char **out, char **errout, const char *const *argv)
{
  return test_run_cli_env (out, errout, NULL, argv);
}

int
test_run_cli_env (char **out, char **errout, const char *const *env, const char *const *argv)
{
  char **envp = g_get_environ ();
  for (int i = 0; env && env[i]; i++) {
    const char *eq = strchr (env[i], '=');
    g_assert_nonnull (eq);
    char *key = g_strndup (env[i], (gsize) (eq - env[i]));
    envp = eq[1] ? g_environ_setenv (envp, key, eq + 1, TRUE) : g_environ_unsetenv (envp, key);
    g_free (key);
  }
  GPtrArray *args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) test_cli_path ());
  for (int i = 0; argv[i]; i++)
    g_ptr_array_add (args, (gpointer) argv[i]);
  g_ptr_array_add (args, NULL);
  int status = 0;
  GError *error = NULL;
  char *o = NULL, *e = NULL;
  gboolean ok = g_spawn_sync (NULL, (char **) args->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL, &o,
                              &e, &status, &error);
  g_strfreev (envp);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_ptr_array_free (args, TRUE);
  if (out)
    *out = o;
  else
    g_free (o);
  if (errout)
    *errout = e;
  else
    g_free (e);
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return -1;
}

double
test_max_abs_err (const float *a, const float *b, size_t n)
{
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs ((double) a[i] - (double) b[i]);
    if (isnan (d))
      return INFINITY;
    if (d > m)
      m = d;
  }
  return m;
}

double
test_rel_max_err (const float *a, const float *b, size_t n)
{
  double mb = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs (b[i]) > mb)
      mb = fabs (b[i]);
  double d = test_max_abs_err (a, b, n);
  if (mb == 0)
    return d == 0 ? 0 : INFINITY;
  return d / mb;
}

void
test_fill_uniform (float *x, size_t n, float lo, float hi, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  for (size_t i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (r, lo, hi);
  g_rand_free (r);
}

char *
test_tiny_model_folder (const char *dir, const char *name, int hidden, int layers, int vocab,
                        guint32 seed)
{
  char *json = g_strdup_printf (
    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":%d,\"intermediate_size\":%d,"
    "\"num_hidden_layers\":%d,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
    "\"vocab_size\":%d,\"max_position_embeddings\":512,\"tie_word_embeddings\":true,"
    "\"rms_norm_eps\":1e-5,\"bos_token_id\":1,\"eos_token_id\":2}", hidden, hidden * 3 / 2, layers, vocab);
  SutraModelConfig c;
  SutraError err;
  test_assert_ok (sutra_model_config_parse (json, strlen (json), "tiny", &c, &err), &err);
  g_free (json);
  SutraModel *m;
  test_assert_ok (sutra_model_new_random (&c, 0.5f, seed, &m, &err), &err);
  char *out = g_build_filename (dir, name, NULL);
  g_assert_cmpint (g_mkdir_with_parents (out, 0755), ==, 0);
  test_assert_ok (sutra_model_write_files (m, out, SUTRA_F32, &err), &err);
  sutra_model_free (m);
  return out;
}

char *
test_tiny_dataset (const char *dir, const char *name, int rows, int spread, int vocab)
{
  GString *s = g_string_new (NULL);
  for (int row = 0; row < rows; row++) {
    int len = 6 + row % spread;
    g_string_append (s, "{\"input_ids\": [");
    for (int t = 0; t < len; t++)   /* counting with a row-specific start: learnable */
      g_string_append_printf (s, "%s%d", t ? "," : "", (row * 3 + t) % vocab);
    g_string_append (s, "]}\n");
  }
  char *path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, s->str, -1, NULL));
  g_string_free (s, TRUE);
  return path;
}
