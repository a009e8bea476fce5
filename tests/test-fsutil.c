/* test-fsutil.c: atomic files and folders (replace, leftovers of dead writers), and the path
 * checks that keep names from model and dataset files inside their folders. */
#include "test-util.h"
#include "sutra-fsutil.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *
read_text (const char *path)
{
  char *s = NULL;
  g_assert_true (g_file_get_contents (path, &s, NULL, NULL));
  return s;
}

/* Names in dir other than those listed (NULL-terminated): leftovers. */
static int
count_others (const char *dir, const char *const *expected)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  const char *n;
  int others = 0;
  while ((n = g_dir_read_name (d))) {
    bool known = false;
    for (int i = 0; expected[i]; i++)
      known |= !strcmp (n, expected[i]);
    if (!known) {
      g_test_message ("unexpected entry %s", n);
      others++;
    }
  }
  g_dir_close (d);
  return others;
}

static void
test_atomic_file (void)
{
  const char *tmp = test_tmpdir ();
  char *p = g_build_filename (tmp, "f.json", NULL);
  SutraError err;
  test_assert_ok (sutra_write_file_atomic (p, "one", 3, &err), &err);
  test_assert_ok (sutra_write_file_atomic (p, "two!", 4, &err), &err);
  char *s = read_text (p);
  g_assert_cmpstr (s, ==, "two!");
  g_free (s);
  /* an aborted write leaves the target as it was, and no temporary file */
  SutraAtomicFile f;
  test_assert_ok (sutra_atomic_open (&f, p, &err), &err);
  test_assert_ok (sutra_atomic_write (&f, "three", 5, &err), &err);
  sutra_atomic_abort (&f);
  s = read_text (p);
  g_assert_cmpstr (s, ==, "two!");
  g_free (s);
  const char *only[] = { "f.json", NULL };
  g_assert_cmpint (count_others (tmp, only), ==, 0);
  /* writing into a missing folder fails with a message naming it */
  char *bad = g_build_filename (tmp, "missing", "x", NULL);
  g_assert_cmpint (sutra_write_file_atomic (bad, "x", 1, &err), ==, SUTRA_ERR_IO);
  g_assert_nonnull (strstr (err.message, "missing"));
  g_free (bad);
  g_free (p);
}

static void
make_folder (const char *dir, const char *content)
{
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  char *f = g_build_filename (dir, "weights.bin", NULL);
  g_assert_true (g_file_set_contents (f, content, -1, NULL));
  g_free (f);
}

static void
test_tmpdir_replace (void)
{
  const char *tmp = test_tmpdir ();
  char *final = g_build_filename (tmp, "export", NULL);
  SutraError err;
  for (int round = 0; round < 3; round++) {
    char *t;
    test_assert_ok (sutra_tmpdir_begin (final, &t, &err), &err);
    char *content = g_strdup_printf ("version %d", round);
    make_folder (t, content);
    test_assert_ok (sutra_tmpdir_commit (t, final, &err), &err);
    char *wp = g_build_filename (final, "weights.bin", NULL);
    char *s = read_text (wp);
    g_assert_cmpstr (s, ==, content);      /* the new version, whole */
    g_free (s);
    g_free (wp);
    g_free (content);
    g_free (t);
    const char *only[] = { "export", NULL };
    g_assert_cmpint (count_others (tmp, only), ==, 0);    /* no .tmp-/.old- left */
  }
  g_free (final);
}

/* The pid of a process that has exited (a reaped child). */
static int
dead_pid (void)
{
  pid_t pid = fork ();
  if (pid == 0)
    _exit (0);
  g_assert_cmpint (pid, >, 0);
  int status;
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  return (int) pid;
}

static void
test_recover_leftovers (void)
{
  const char *tmp = test_tmpdir ();
  char *final = g_build_filename (tmp, "merged", NULL);
  int dead = dead_pid (), live = (int) getppid ();
  /* a writer died between moving the previous version aside and renaming the new one in
   * (the fallback path): the previous version comes back; its unfinished new one goes */
  char *old = g_strdup_printf ("%s.old-%d-3", final, dead);
  char *dtmp = g_strdup_printf ("%s.tmp-%d-2", final, dead);
  char *ltmp = g_strdup_printf ("%s.tmp-%d-9", final, live);
  make_folder (old, "previous");
  make_folder (dtmp, "half");
  make_folder (ltmp, "someone else's, still being written");
  SutraError err;
  char *t;
  test_assert_ok (sutra_tmpdir_begin (final, &t, &err), &err);
  char *wp = g_build_filename (final, "weights.bin", NULL);
  char *s = read_text (wp);
  g_assert_cmpstr (s, ==, "previous");
  g_free (s);
  g_assert_false (g_file_test (old, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (dtmp, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (ltmp, G_FILE_TEST_IS_DIR));     /* a live writer's: untouched */
  make_folder (t, "new");
  test_assert_ok (sutra_tmpdir_commit (t, final, &err), &err);
  s = read_text (wp);
  g_assert_cmpstr (s, ==, "new");
  g_free (s);
  /* with final present, a dead writer's moved-aside copy is just removed */
  make_folder (old, "stale");
  g_free (t);
  test_assert_ok (sutra_tmpdir_begin (final, &t, &err), &err);
  g_assert_false (g_file_test (old, G_FILE_TEST_EXISTS));
  s = read_text (wp);
  g_assert_cmpstr (s, ==, "new");
  g_free (s);
  sutra_rm_rf (t, NULL);
  sutra_rm_rf (ltmp, NULL);
  g_free (t);
  g_free (wp);
  g_free (old);
  g_free (dtmp);
  g_free (ltmp);
  g_free (final);
}

/* A single-file writer (a GGUF export) killed mid-write left "<file>.tmp-<pid>-<n>": the next
 * write of the same file removes it; a live writer's temporary and other files' stay. */
static void
test_recover_file_leftovers (void)
{
  char *dir = g_build_filename (test_tmpdir (), "single", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  char *final = g_build_filename (dir, "model.gguf", NULL);
  int dead = dead_pid (), live = (int) getppid ();
  char *dtmp = g_strdup_printf ("%s.tmp-%d-4", final, dead);
  char *ltmp = g_strdup_printf ("%s.tmp-%d-5", final, live);
  char *other = g_strdup_printf ("%s/other.gguf.tmp-%d-6", dir, dead);
  char *odd = g_strdup_printf ("%s.tmp-x-%d", final, dead);          /* not a writer's name */
  const char *made[] = { dtmp, ltmp, other, odd };
  for (size_t i = 0; i < G_N_ELEMENTS (made); i++)
    g_assert_true (g_file_set_contents (made[i], "half", -1, NULL));
  SutraError err;
  test_assert_ok (sutra_write_file_atomic (final, "whole", 5, &err), &err);
  char *s = read_text (final);
  g_assert_cmpstr (s, ==, "whole");
  g_free (s);
  g_assert_false (g_file_test (dtmp, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (ltmp, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (odd, G_FILE_TEST_EXISTS));
  sutra_rm_rf (dir, NULL);
  g_free (dtmp);
  g_free (ltmp);
  g_free (other);
  g_free (odd);
  g_free (final);
  g_free (dir);
}

static void
test_safe_relative (void)
{
  static const struct { const char *name; bool ok; } cases[] = {
    { "model-00001-of-00002.safetensors", true }, { "sub/dir/file.json", true },
    { "../model.safetensors", false }, { "a/../../b", false }, { "/etc/passwd", false },
    { "", false }, { "./x", false }, { "a//b", false }, { "a/", true }, { "a\\..\\b", false },
    { "a\nb", false }, { "..", false }, { "...", true }, { "a/..b", true },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    if (sutra_path_is_safe_relative (cases[i].name) != cases[i].ok)
      g_error ("sutra_path_is_safe_relative (\"%s\") != %d", cases[i].name, cases[i].ok);
  g_assert_false (sutra_path_is_safe_relative (NULL));
}

static void
test_check_inside (void)
{
  const char *tmp = test_tmpdir ();
  char *root = g_build_filename (tmp, "model", NULL), *outside = g_build_filename (tmp, "outside", NULL);
  char *sub = g_build_filename (root, "sub", NULL);
  g_assert_cmpint (g_mkdir_with_parents (sub, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (outside, 0755), ==, 0);
  char *link_out = g_build_filename (root, "escape", NULL), *link_in = g_build_filename (root, "alias", NULL);
  char *file_link = g_build_filename (root, "config.json", NULL), *target = g_build_filename (outside, "victim", NULL);
  g_assert_cmpint (symlink (outside, link_out), ==, 0);
  g_assert_cmpint (symlink (sub, link_in), ==, 0);
  g_assert_cmpint (symlink (target, file_link), ==, 0);   /* dangling, pointing out */
  SutraError err;
  struct { const char *rel; bool ok; } cases[] = {
    { "sub/new.safetensors", true }, { "new/deeper/file", true }, { "alias/x", true },
    { "escape/x", false }, { "escape", false }, { "escape/a/b/c", false },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    char *p = g_build_filename (root, cases[i].rel, NULL);
    SutraStatus st = sutra_path_check_inside (root, p, &err);
    if ((st == SUTRA_OK) != cases[i].ok)
      g_error ("check_inside %s: %s", cases[i].rel, st ? err.message : "accepted");
    if (st)
      g_assert_nonnull (strstr (err.message, "refusing to write"));
    g_free (p);
  }
  /* check_write judges only paths inside root as written, however they are spelled */
  struct { const char *path; bool ok; } writes[] = {
    { "escape/out", false }, { "sub/../escape/out", false }, { "./escape//out", false },
    { "sub/out", true }, { "../outside/x", true },          /* outside as written: not ours */
  };
  for (size_t i = 0; i < G_N_ELEMENTS (writes); i++) {
    char *p = g_build_filename (root, writes[i].path, NULL);
    if ((sutra_path_check_write (root, p, &err) == SUTRA_OK) != writes[i].ok)
      g_error ("check_write %s: expected %s", writes[i].path, writes[i].ok ? "ok" : "refusal");
    g_free (p);
  }
  char *cwd = g_get_current_dir ();
  g_assert_cmpint (chdir (root), ==, 0);                    /* relative spellings */
  g_assert_cmpint (sutra_path_check_write ("../model", "escape/x", &err), ==, SUTRA_ERR_INVALID);
  g_assert_cmpint (sutra_path_check_write (".", "sub/x", &err), ==, SUTRA_OK);
  g_assert_cmpint (chdir (cwd), ==, 0);
  g_free (cwd);
  g_assert_cmpint (sutra_path_check_write (NULL, "/anything", &err), ==, SUTRA_OK);
  /* a symlinked file pointing out of the folder: writing "through" it is refused too */
  g_assert_cmpint (g_file_set_contents (target, "x", -1, NULL), ==, TRUE);
  g_assert_cmpint (sutra_path_check_inside (root, file_link, &err), ==, SUTRA_ERR_INVALID);
  g_free (root); g_free (outside); g_free (sub); g_free (link_out); g_free (link_in);
  g_free (file_link); g_free (target);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/fsutil/atomic-file", test_atomic_file);
  g_test_add_func ("/engine/fsutil/tmpdir-replace", test_tmpdir_replace);
  g_test_add_func ("/engine/fsutil/recover-leftovers", test_recover_leftovers);
  g_test_add_func ("/engine/fsutil/recover-file-leftovers", test_recover_file_leftovers);
  g_test_add_func ("/engine/fsutil/safe-relative", test_safe_relative);
  g_test_add_func ("/engine/fsutil/check-inside", test_check_inside);
  return g_test_run ();
}
