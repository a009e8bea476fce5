/* test-util.c: paths to test data, temporary folders, running the CLI, error metrics. */
#include "test-util.h"
#include "sutra-fsutil.h"

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
  GPtrArray *args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) test_cli_path ());
  for (int i = 0; argv[i]; i++)
    g_ptr_array_add (args, (gpointer) argv[i]);
  g_ptr_array_add (args, NULL);
  int status = 0;
  GError *error = NULL;
  char *o = NULL, *e = NULL;
  gboolean ok = g_spawn_sync (NULL, (char **) args->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &o,
                              &e, &status, &error);
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
