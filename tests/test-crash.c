/* test-crash.c: no lost work when `sutra` dies at any moment, and a full disk is an error,
 * not damage (label `slow`: it runs in the normal suite only; ~1 minute).
 *
 * kill-resume: a reference run trains uninterrupted. A second run of the same settings is
 * SIGKILLed again and again (right after start, during a step, during a checkpoint write, and
 * an export of it during its write), each time restarted with `sutra resume` (or `sutra train`
 * when the kill came before the run folder existed). After every kill: each checkpoints/step-*
 * folder is complete and loads; the final adapter and the exports are absent or complete and
 * load. At the end the run's metrics (loss, lr, grad_norm, eval, tokens) and adapter bytes
 * equal the reference run's, and its merged export equals the reference export byte for byte.
 * SUTRA_TEST_SLOW_WRITE_MS (sutra-fsutil.h) stretches each atomic rename so kills can land
 * inside checkpoint and export writes.
 *
 * full-disk: the run folder (then an export) on a small tmpfs mounted in a private mount
 * namespace (as root, or in a user namespace otherwise); where mounting is impossible the
 * child runs under RLIMIT_FSIZE instead (writes beyond it fail with EFBIG). A checkpoint that
 * does not fit is a one-line error naming the checkpoint and the cause; the previous
 * checkpoint stays complete, nothing temporary is left, and after space is freed `sutra resume`
 * finishes the run identical to the reference. A re-export that does not fit leaves the
 * previous export byte-identical.
 *
 * gguf-export-kill / quantize-kill: `sutra export RUN --gguf OUT.gguf` and `sutra quantize MODEL
 * --method nf4 --out DIR` SIGKILLed at random moments and inside their writes: the output is
 * absent or complete (opens / loads) and equal byte for byte to an uninterrupted run's, and the
 * next run leaves no temporary of the killed ones. gguf-quantize-full-disk: both on a full disk
 * beside a previous output: one error line naming the file, the previous output intact. */
#include "test-util.h"
#include "sutra-fsutil.h"
#include "sutra-gguf.h"
#include "sutra-lora.h"
#include "sutra-model.h"
#include "sutra-trainer-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-c/json.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define SLOW_WRITE_MS 25          /* per atomic rename while kills are aimed at writes */
#define KILLS_PER_KIND 7          /* step, checkpoint, export: 21 kills + 1 right at start */
#define WAIT_LIMIT_S 120          /* a wait that never ends fails the test (loaded machines) */
#define MAX_STEPS 72
#define SAVE_EVERY 3

typedef struct {
  char *tmp, *model, *data, *run, *ref_run, *ref_merged;
  SutraModel *base;               /* for loading adapters while checking */
  int kills[4], kills_in_ckpt_write, kills_in_export_write, resumes, trains, completions;
} Crash;

enum { K_START, K_STEP, K_CKPT, K_EXPORT };
static const char *kind_names[] = { "at start", "during a step", "during a checkpoint write",
                                    "during an export" };

static char *
settings_file (const char *tmp, const char *name, const char *model, const char *data,
               const char *run, int keep)
{
  char *json = g_strdup_printf (
    "{\"model\": \"%s\", \"data\": \"%s\", \"output_dir\": \"%s\", \"lora_r\": 4,\n"
    " \"lora_dropout\": 0.1, \"lr\": 0.01, \"max_steps\": %d, \"micro_batch_size\": 4,\n"
    " \"grad_accum\": 2, \"seq_len\": 32, \"save_every\": %d, \"keep_checkpoints\": %d,\n"
    " \"warmup_steps\": 3, \"threads\": 1, \"val_split\": 0.1, \"eval_every\": 10, \"seed\": 3}\n",
    model, data, run, MAX_STEPS, SAVE_EVERY, keep);
  char *path = g_build_filename (tmp, name, NULL);
  g_assert_true (g_file_set_contents (path, json, -1, NULL));
  g_free (json);
  return path;
}

/* ---- children ---- */

static void
child_limit_fsize (gpointer data)
{
  /* a size-limited "disk" when no tmpfs can be mounted: writes past the limit fail (EFBIG) */
  struct rlimit rl = { GPOINTER_TO_SIZE (data), GPOINTER_TO_SIZE (data) };
  signal (SIGXFSZ, SIG_IGN);
  setrlimit (RLIMIT_FSIZE, &rl);
}

static GPid
spawn_cli (const char *const *argv, bool slow)
{
  GPtrArray *args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) test_cli_path ());
  for (int i = 0; argv[i]; i++)
    g_ptr_array_add (args, (gpointer) argv[i]);
  g_ptr_array_add (args, NULL);
  char **envp = g_get_environ ();
  if (slow)
    envp = g_environ_setenv (envp, "SUTRA_TEST_SLOW_WRITE_MS", G_STRINGIFY (SLOW_WRITE_MS), TRUE);
  GPid pid;
  GError *error = NULL;
  g_spawn_async (NULL, (char **) args->pdata, envp,
                 G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                 NULL, NULL, &pid, &error);
  g_assert_no_error (error);
  g_strfreev (envp);
  g_ptr_array_free (args, TRUE);
  return pid;
}

/* true (and *status) when the child has exited */
static bool
reaped (GPid pid, int *status)
{
  pid_t r = waitpid (pid, status, WNOHANG);
  g_assert_cmpint (r, >=, 0);
  return r == pid;
}

static void
kill_child (GPid pid)
{
  kill (pid, SIGKILL);
  int status;
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
}

/* ---- looking at a run folder ---- */

/* Step of the last complete metrics line (0 when none). */
static int
last_metrics_step (const char *run)
{
  char *p = g_build_filename (run, "metrics.jsonl", NULL), *text = NULL;
  gsize n = 0;
  int step = 0;
  if (g_file_get_contents (p, &text, &n, NULL)) {
    char *end = text + n;
    while (end > text && end[-1] != '\n')
      end--;                               /* drop a torn line */
    *end = '\0';
    char *last = g_strrstr (text, "{\"step\": ");
    if (last)
      step = atoi (last + 9);
  }
  g_free (text);
  g_free (p);
  return step;
}

/* Latest complete checkpoint's step (0 when none). */
static int
latest_checkpoint (const char *run)
{
  char **list;
  size_t n;
  SutraError err;
  test_assert_ok (sutra_run_list_checkpoints (run, &list, &n, &err), &err);
  int step = n ? atoi (strrchr (list[n - 1], '-') + 1) : 0;
  for (size_t i = 0; i < n; i++)
    free (list[i]);
  free (list);
  return step;
}

/* Does dir hold an entry starting with prefix and containing ".tmp-<pid>-" (any pid when
 * pid is 0)? Leftovers of killed writers carry their dead pid, so a live write is told apart. */
static bool
has_tmp (const char *dir, const char *prefix, GPid pid)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (!d)
    return false;
  char *mark = pid ? g_strdup_printf (".tmp-%d-", (int) pid) : g_strdup (".tmp-");
  const char *n;
  bool found = false;
  while (!found && (n = g_dir_read_name (d)))
    found = g_str_has_prefix (n, prefix) && strstr (n, mark);
  g_dir_close (d);
  g_free (mark);
  return found;
}

static void
check_adapter (Crash *c, const char *dir)
{
  SutraError err;
  SutraStatus st = sutra_lora_load (c->base, dir, NULL, &err);
  if (st)
    g_error ("%s is not a complete adapter: %s", dir, err.message);
  for (size_t i = 0; i < c->base->n_linears; i++)
    sutra_linear_detach_lora (c->base->linears[i]);
  c->base->train_mode = SUTRA_TRAIN_NONE;
}

static void
check_checkpoint (Crash *c, const char *dir)
{
  check_adapter (c, dir);
  char *sp = g_build_filename (dir, "trainer_state.json", NULL), *text;
  gsize n;
  g_assert_true (g_file_get_contents (sp, &text, &n, NULL));
  SutraTrainerState s;
  SutraError err;
  test_assert_ok (sutra_trainer_state_parse (text, n, sp, &s, &err), &err);
  g_assert_cmpint (s.step, ==, atoi (strrchr (dir, '-') + 1));
  g_free (text);
  g_free (sp);
  char *op = g_build_filename (dir, "optimizer.safetensors", NULL);
  SutraSafetensors *os;
  test_assert_ok (sutra_safetensors_open (op, &os, &err), &err);
  g_assert_cmpuint (sutra_safetensors_count (os), >, 0);
  sutra_safetensors_free (os);
  g_free (op);
}

static void
check_merged (const char *dir)
{
  SutraModel *m;
  SutraError err;
  SutraStatus st = sutra_model_load (dir, &m, &err);
  if (st)
    g_error ("%s is not a complete merged export: %s", dir, err.message);
  sutra_model_free (m);
  char *gen = g_build_filename (dir, "generation_config.json", NULL);
  g_assert_true (g_file_test (gen, G_FILE_TEST_IS_REGULAR));   /* copied last but one */
  g_free (gen);
}

/* The invariants that must hold after any kill. */
static void
check_run_folder (Crash *c)
{
  char *ck = g_build_filename (c->run, "checkpoints", NULL);
  GDir *d = g_dir_open (ck, 0, NULL);
  if (d) {
    const char *n;
    while ((n = g_dir_read_name (d))) {
      if (strchr (n, '.'))
        continue;                      /* step-N.tmp-* / .del-*: never listed, cleaned on resume */
      g_assert_true (g_str_has_prefix (n, "step-"));
      char *p = g_build_filename (ck, n, NULL);
      check_checkpoint (c, p);
      g_free (p);
    }
    g_dir_close (d);
  }
  g_free (ck);
  char *ad = g_build_filename (c->run, "adapter", NULL);
  if (g_file_test (ad, G_FILE_TEST_EXISTS))
    check_adapter (c, ad);
  g_free (ad);
  char *em = g_build_filename (c->tmp, "exp-merged", NULL), *ep = g_build_filename (c->tmp, "exp-peft", NULL);
  if (g_file_test (em, G_FILE_TEST_EXISTS))
    check_merged (em);
  if (g_file_test (ep, G_FILE_TEST_EXISTS))
    check_adapter (c, ep);
  g_free (em);
  g_free (ep);
}

/* metrics.jsonl without timings */
static char *
metrics_of (const char *run)
{
  char *mp = g_build_filename (run, "metrics.jsonl", NULL), *text;
  g_assert_true (g_file_get_contents (mp, &text, NULL, NULL));
  GString *o = g_string_new (NULL);
  char **lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i] && *lines[i]; i++) {
    json_object *j = json_tokener_parse (lines[i]);
    g_assert_nonnull (j);
    json_object_object_del (j, "tokens_per_s");
    json_object_object_del (j, "elapsed_s");
    g_string_append_printf (o, "%s\n", json_object_to_json_string (j));
    json_object_put (j);
  }
  g_strfreev (lines);
  g_free (text);
  g_free (mp);
  return g_string_free (o, FALSE);
}

static GBytes *
file_bytes (const char *a, const char *b)
{
  char *p = g_build_filename (a, b, NULL), *d;
  gsize n;
  g_assert_true (g_file_get_contents (p, &d, &n, NULL));
  g_free (p);
  return g_bytes_new_take (d, n);
}

static void
assert_same_files (const char *dir_a, const char *dir_b, const char *name)
{
  GBytes *a = file_bytes (dir_a, name), *b = file_bytes (dir_b, name);
  if (!g_bytes_equal (a, b))
    g_error ("%s/%s differs from %s/%s", dir_a, name, dir_b, name);
  g_bytes_unref (a);
  g_bytes_unref (b);
}

static void
assert_same_as_reference (Crash *c, const char *run)
{
  char *m1 = metrics_of (c->ref_run), *m2 = metrics_of (run);
  g_assert_cmpstr (m2, ==, m1);
  int lines = 0;
  for (const char *p = m1; *p; p++)
    lines += *p == '\n';
  g_assert_cmpint (lines, ==, MAX_STEPS);
  g_free (m1);
  g_free (m2);
  char *a1 = g_build_filename (c->ref_run, "adapter", NULL), *a2 = g_build_filename (run, "adapter", NULL);
  assert_same_files (a1, a2, "adapter_model.safetensors");
  assert_same_files (a1, a2, "adapter_config.json");
  g_free (a1);
  g_free (a2);
}

/* ---- fixture: model, data, the reference run and its merged export ---- */

static void
crash_setup (Crash *c, gconstpointer u)
{
  memset (c, 0, sizeof *c);
  c->tmp = g_strdup (test_tmpdir ());
  c->model = test_tiny_model_folder (c->tmp, "model", 64, 2, 64, 5);
  char *gen = g_build_filename (c->model, "generation_config.json", NULL);
  g_assert_true (g_file_set_contents (gen, "{\"bos_token_id\": 1, \"eos_token_id\": 2}\n", -1, NULL));
  g_free (gen);
  c->data = test_tiny_dataset (c->tmp, "rows.jsonl", 80, 27, 64);
  c->ref_run = g_build_filename (c->tmp, "ref", NULL);
  c->run = g_build_filename (c->tmp, "run", NULL);
  c->ref_merged = g_build_filename (c->tmp, "ref-merged", NULL);
  char *cfg = settings_file (c->tmp, "ref.json", c->model, c->data, c->ref_run, 2);
  char *errs = NULL;
  const char *argv[] = { "train", cfg, "--quiet", NULL };
  if (test_run_cli (NULL, &errs, argv) != 0)
    g_error ("reference run failed: %s", errs);
  g_free (errs);
  const char *eargv[] = { "export", c->ref_run, "--model", c->model, "--merged", c->ref_merged, NULL };
  if (test_run_cli (NULL, &errs, eargv) != 0)
    g_error ("reference export failed: %s", errs);
  g_free (errs);
  g_free (cfg);
  SutraError err;
  test_assert_ok (sutra_model_load (c->model, &c->base, &err), &err);
}

static void
crash_teardown (Crash *c, gconstpointer u)
{
  sutra_model_free (c->base);
  g_free (c->tmp); g_free (c->model); g_free (c->data); g_free (c->run); g_free (c->ref_run);
  g_free (c->ref_merged);
}

/* ---- kill and resume ---- */

static GPid
start_training (Crash *c, const char *cfg)
{
  char *cj = g_build_filename (c->run, "config.json", NULL);
  bool exists = g_file_test (cj, G_FILE_TEST_IS_REGULAR);
  g_free (cj);
  if (exists) {
    c->resumes++;
    const char *argv[] = { "resume", c->run, "--quiet", NULL };
    return spawn_cli (argv, true);
  }
  c->trains++;                            /* killed before the run folder had its settings */
  const char *argv[] = { "train", cfg, "--quiet", NULL };
  return spawn_cli (argv, true);
}

/* Sleeps 1 ms; fails after WAIT_LIMIT_S since t0. */
static void
tick (gint64 t0, const char *what)
{
  if (g_get_monotonic_time () - t0 > (gint64) WAIT_LIMIT_S * G_USEC_PER_SEC)
    g_error ("timed out waiting %s", what);
  g_usleep (1000);
}

/* One training child killed at a moment of the given kind; false when it finished first. */
static bool
kill_training (Crash *c, const char *cfg, int kind)
{
  int ck0 = latest_checkpoint (c->run);
  GPid pid = start_training (c, cfg);
  gint64 t0 = g_get_monotonic_time ();
  char *ckdir = g_build_filename (c->run, "checkpoints", NULL);
  int status;
  bool killed = false;
  gint64 start_delay = g_test_rand_int_range (0, 150) * 1000;
  for (;;) {
    if (reaped (pid, &status)) {
      g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
      c->completions++;
      break;
    }
    bool now = false;
    if (kind == K_START)
      now = g_get_monotonic_time () - t0 > start_delay;
    else if (kind == K_STEP) {
      /* past a new checkpoint (progress is kept), then inside the next step's compute */
      int ck = latest_checkpoint (c->run);
      now = ck > ck0 && last_metrics_step (c->run) >= ck;
      if (now)
        g_usleep ((gulong) g_test_rand_int_range (0, 4000));
    } else if (kind == K_CKPT) {
      now = has_tmp (ckdir, "step-", pid);
      if (now)     /* a checkpoint takes >= 4 slowed renames: stay inside its window */
        g_usleep ((gulong) g_test_rand_int_range (0, 2 * SLOW_WRITE_MS * 1000));
    }
    if (now) {
      bool in_write = has_tmp (ckdir, "step-", pid);
      kill_child (pid);
      c->kills[kind]++;
      c->kills_in_ckpt_write += in_write;
      killed = true;
      break;
    }
    tick (t0, kind_names[kind]);
  }
  g_free (ckdir);
  return killed;
}

/* An export of the run (its adapter or latest checkpoint) killed during its write. The first
 * export of each kind completes, so every killed one replaces an existing export. */
static void
kill_export (Crash *c, bool merged)
{
  char *out = g_build_filename (c->tmp, merged ? "exp-merged" : "exp-peft", NULL);
  const char *argv[] = { "export", c->run, "--model", c->model, merged ? "--merged" : "--peft", out, NULL };
  if (!g_file_test (out, G_FILE_TEST_EXISTS)) {
    char *errs = NULL;
    if (test_run_cli (NULL, &errs, argv) != 0)
      g_error ("export failed: %s", errs);
    g_free (errs);
  }
  GPid pid = spawn_cli (argv, true);
  gint64 t0 = g_get_monotonic_time ();
  const char *base = merged ? "exp-merged" : "exp-peft";
  int status;
  for (;;) {
    if (reaped (pid, &status)) {
      g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
      c->completions++;
      break;
    }
    if (has_tmp (c->tmp, base, pid)) {
      g_usleep ((gulong) g_test_rand_int_range (0, 2 * SLOW_WRITE_MS * 1000));
      c->kills_in_export_write += has_tmp (c->tmp, base, pid);
      kill_child (pid);
      c->kills[K_EXPORT]++;
      break;
    }
    tick (t0, "an export write");
  }
  g_assert_true (g_file_test (out, G_FILE_TEST_IS_DIR));   /* replaced atomically: never absent */
  g_free (out);
}

static void
test_kill_resume (Crash *c, gconstpointer u)
{
  char *cfg = settings_file (c->tmp, "run.json", c->model, c->data, c->run, 2);
  gint64 t0 = g_get_monotonic_time ();
  kill_training (c, cfg, K_START);
  check_run_folder (c);
  int rounds = 0;
  while (c->kills[K_STEP] < KILLS_PER_KIND || c->kills[K_CKPT] < KILLS_PER_KIND ||
         c->kills[K_EXPORT] < KILLS_PER_KIND) {
    g_assert_cmpint (++rounds, <, 10 * KILLS_PER_KIND);
    if (c->kills[K_STEP] < KILLS_PER_KIND)
      kill_training (c, cfg, K_STEP);
    check_run_folder (c);
    if (c->kills[K_CKPT] < KILLS_PER_KIND)
      kill_training (c, cfg, K_CKPT);
    check_run_folder (c);
    if (c->kills[K_EXPORT] < KILLS_PER_KIND && latest_checkpoint (c->run) > 0) {
      kill_export (c, c->kills[K_EXPORT] % 2 == 0);
      check_run_folder (c);
    }
  }
  /* finish: resume (no more kills) until the run completes */
  int finals = 0;
  for (;;) {
    char *errs = NULL;
    const char *argv[] = { "resume", c->run, "--quiet", NULL };
    int rc = test_run_cli (NULL, &errs, argv);
    c->resumes++;
    g_assert_cmpint (++finals, <=, 2);
    g_free (errs);
    if (rc == 0)
      break;
  }
  check_run_folder (c);
  int total = c->kills[K_START] + c->kills[K_STEP] + c->kills[K_CKPT] + c->kills[K_EXPORT];
  g_test_message ("%d kills (%d %s, %d %s, %d %s (%d with a checkpoint folder half-built), %d %s "
                  "(%d mid-write)), %d resumes, %d fresh starts, %d children finished before "
                  "their kill; %.1f s", total, c->kills[K_START], kind_names[K_START],
                  c->kills[K_STEP], kind_names[K_STEP], c->kills[K_CKPT], kind_names[K_CKPT],
                  c->kills_in_ckpt_write, c->kills[K_EXPORT], kind_names[K_EXPORT],
                  c->kills_in_export_write, c->resumes, c->trains, c->completions,
                  (double) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC);
  /* a loaded machine may land a kill aimed at a write just after it; most must be inside */
  g_assert_cmpint (c->kills_in_ckpt_write, >=, KILLS_PER_KIND - 2);
  g_assert_cmpint (c->kills_in_export_write, >=, KILLS_PER_KIND - 2);
  assert_same_as_reference (c, c->run);
  /* the merged export of the resumed run equals the reference export, byte for byte */
  char *out = g_build_filename (c->tmp, "final-merged", NULL), *errs = NULL;
  const char *eargv[] = { "export", c->run, "--model", c->model, "--merged", out, NULL };
  if (test_run_cli (NULL, &errs, eargv) != 0)
    g_error ("export failed: %s", errs);
  assert_same_files (c->ref_merged, out, "model.safetensors");
  assert_same_files (c->ref_merged, out, "config.json");
  g_free (errs);
  g_free (out);
  g_free (cfg);
}

/* ---- SIGINT / SIGTERM: a clean stop with a checkpoint ---- */

static void
test_stop_signals (Crash *c, gconstpointer u)
{
  const int sigs[2] = { SIGTERM, SIGINT };
  char *cfg = settings_file (c->tmp, "sig.json", c->model, c->data, c->run, 2);
  for (int k = 0; k < 2; k++) {
    int before = last_metrics_step (c->run);
    GPid pid = start_training (c, cfg);
    gint64 t0 = g_get_monotonic_time ();
    while (last_metrics_step (c->run) < before + 2) {
      int status;
      g_assert_false (reaped (pid, &status));
      tick (t0, "two steps");
    }
    kill (pid, sigs[k]);
    int status;
    g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
    /* a stop on request is exit 1 ("stopped at step N; resume with ...") after a checkpoint */
    if (!WIFEXITED (status))
      g_error ("%s killed the trainer (signal %d) instead of stopping it",
               k ? "SIGINT" : "SIGTERM", WIFSIGNALED (status) ? WTERMSIG (status) : 0);
    g_assert_cmpint (WEXITSTATUS (status), ==, 1);
    int ck = latest_checkpoint (c->run), step = last_metrics_step (c->run);
    g_test_message ("%s at step %d: checkpoint step-%06d", k ? "SIGINT" : "SIGTERM", step, ck);
    g_assert_cmpint (ck, ==, step);                     /* saved exactly where it stopped */
    check_run_folder (c);
  }
  const char *argv[] = { "resume", c->run, "--quiet", NULL };
  char *errs = NULL;
  if (test_run_cli (NULL, &errs, argv) != 0)
    g_error ("resume failed: %s", errs);
  g_free (errs);
  assert_same_as_reference (c, c->run);
  g_free (cfg);
}

/* ---- full disk ---- */

static bool
write_proc (const char *path, const char *text)
{
  return g_file_set_contents (path, text, -1, NULL);
}

/* A private mount namespace for this process (and its children): mounts made here are
 * invisible to the rest of the system and vanish with the process. */
static bool
enter_mount_namespace (void)
{
  uid_t uid = getuid ();
  gid_t gid = getgid ();
  if (unshare (CLONE_NEWNS) != 0) {
    if (unshare (CLONE_NEWUSER | CLONE_NEWNS) != 0)
      return false;
    char *um = g_strdup_printf ("0 %u 1", (unsigned) uid), *gm = g_strdup_printf ("0 %u 1", (unsigned) gid);
    bool ok = write_proc ("/proc/self/setgroups", "deny") && write_proc ("/proc/self/uid_map", um) &&
              write_proc ("/proc/self/gid_map", gm);
    g_free (um);
    g_free (gm);
    if (!ok)
      return false;
  }
  return mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

static size_t
dir_pages_bytes (const char *dir)
{
  /* what the files of a folder take on tmpfs: each rounded up to whole 4 KiB pages */
  GDir *d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  size_t total = 4096;
  const char *n;
  while ((n = g_dir_read_name (d))) {
    char *p = g_build_filename (dir, n, NULL);
    GStatBuf st;
    g_assert_cmpint (g_stat (p, &st), ==, 0);
    total += ((size_t) st.st_size + 4095) / 4096 * 4096;
    g_free (p);
  }
  g_dir_close (d);
  return total;
}

typedef struct {
  bool tmpfs;                  /* else RLIMIT_FSIZE */
  size_t limit;                /* rlimit bytes for the child */
} Disk;

static int
run_limited (const Disk *dk, char **errs, const char *const *argv)
{
  if (dk->tmpfs)
    return test_run_cli (NULL, errs, argv);
  GPtrArray *args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) test_cli_path ());
  for (int i = 0; argv[i]; i++)
    g_ptr_array_add (args, (gpointer) argv[i]);
  g_ptr_array_add (args, NULL);
  int status;
  GError *error = NULL;
  g_spawn_sync (NULL, (char **) args->pdata, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, child_limit_fsize,
                GSIZE_TO_POINTER (dk->limit), NULL, errs, &status, &error);
  g_assert_no_error (error);
  g_ptr_array_free (args, TRUE);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* exit 1 and, as the last line of stderr (train prints its progress there before), one line
 * "sutra: error: <...>" naming the cause */
static void
assert_disk_error (int rc, const char *errs, const char *what)
{
  const char *last = errs + strlen (errs);
  g_assert_true (last > errs && last[-1] == '\n');
  for (last--; last > errs && last[-1] != '\n'; last--)
    ;
  g_test_message ("%s: exit %d: %s", what, rc, last);
  g_assert_cmpint (rc, ==, 1);
  g_assert_true (g_str_has_prefix (last, "sutra: error: "));
  g_assert_true (strstr (errs, "sutra: error") == last);     /* the only error line */
  g_assert_true (strstr (last, "No space left on device") || strstr (last, "File too large"));
}

static void
test_full_disk (Crash *c, gconstpointer u)
{
  /* sizes from the reference run: one checkpoint, one merged export */
  char *ck1 = g_strdup_printf ("%s/checkpoints/step-%06d", c->ref_run, MAX_STEPS - SAVE_EVERY);
  size_t ck_bytes = dir_pages_bytes (ck1), exp_bytes = dir_pages_bytes (c->ref_merged);
  g_free (ck1);
  char *small = g_build_filename (c->tmp, "small", NULL);
  g_assert_cmpint (g_mkdir_with_parents (small, 0755), ==, 0);
  /* SUTRA_TEST_NO_TMPFS=1 tries the fallback where mounting is possible too */
  Disk dk = { !g_getenv ("SUTRA_TEST_NO_TMPFS") && enter_mount_namespace (), 0 };
  /* room for the settings, logs, metrics and one checkpoint, not two */
  size_t fs_size = 16 * 1024 + ck_bytes * 3 / 2;
  if (dk.tmpfs) {
    char *opt = g_strdup_printf ("size=%zu", fs_size);
    dk.tmpfs = mount ("tmpfs", small, "tmpfs", 0, opt) == 0;
    g_free (opt);
  }
  g_test_message ("full disk by %s; checkpoint %zu bytes, merged export %zu bytes",
                  dk.tmpfs ? "a small tmpfs in a private mount namespace"
                           : "RLIMIT_FSIZE (no tmpfs could be mounted here)", ck_bytes, exp_bytes);
  /* RLIMIT_FSIZE fallback: a file limit below the optimizer state, above the metrics */
  dk.limit = ck_bytes / 4;
  char *run = g_build_filename (small, "run", NULL);
  char *cfg = settings_file (c->tmp, "small.json", c->model, c->data, run, 1);
  char *errs = NULL;
  const char *argv[] = { "train", cfg, "--quiet", NULL };
  int rc = run_limited (&dk, &errs, argv);
  assert_disk_error (rc, errs, "checkpoint on a full disk");
  g_assert_nonnull (strstr (errs, "not saved (the previous one is intact)"));
  g_free (errs);
  /* what is there is whole: the previous checkpoint (if one fitted) loads, nothing temporary */
  char *ckdir = g_build_filename (run, "checkpoints", NULL);
  int latest = latest_checkpoint (run);
  g_assert_false (has_tmp (ckdir, "step-", 0));
  if (dk.tmpfs)
    g_assert_cmpint (latest, ==, SAVE_EVERY);     /* the first fitted, the second did not */
  if (latest > 0) {
    char *p = g_strdup_printf ("%s/step-%06d", ckdir, latest);
    check_checkpoint (c, p);
    g_free (p);
  }
  /* space again: the run resumes and ends exactly like the reference */
  if (dk.tmpfs)
    g_assert_cmpint (mount (NULL, small, NULL, MS_REMOUNT, "size=64m"), ==, 0);
  const char *rargv[] = { "resume", run, "--quiet", NULL };
  rc = test_run_cli (NULL, &errs, rargv);
  if (rc != 0)
    g_error ("resume after freeing space failed: %s", errs);
  g_free (errs);
  assert_same_as_reference (c, run);
  /* export: the first fits, replacing it does not (old + new at once); the old one stays */
  char *out = g_build_filename (small, "merged", NULL);
  const char *eargv[] = { "export", c->ref_run, "--model", c->model, "--merged", out, NULL };
  if (dk.tmpfs) {
    sutra_rm_rf (run, NULL);
    g_assert_cmpint (mount (NULL, small, NULL, MS_REMOUNT, "size=64m"), ==, 0);
    rc = test_run_cli (NULL, &errs, eargv);
    g_assert_cmpint (rc, ==, 0);
    g_free (errs);
    char *opt = g_strdup_printf ("size=%zu", exp_bytes * 3 / 2);
    g_assert_cmpint (mount (NULL, small, NULL, MS_REMOUNT, opt), ==, 0);
    g_free (opt);
  } else {
    rc = test_run_cli (NULL, &errs, eargv);
    g_assert_cmpint (rc, ==, 0);
    g_free (errs);
    dk.limit = exp_bytes / 4;
  }
  rc = run_limited (&dk, &errs, eargv);
  assert_disk_error (rc, errs, "re-export on a full disk");
  g_free (errs);
  assert_same_files (c->ref_merged, out, "model.safetensors");
  assert_same_files (c->ref_merged, out, "config.json");
  g_assert_false (has_tmp (small, "merged", 0));
  if (dk.tmpfs)
    umount2 (small, MNT_DETACH);
  g_free (out);
  g_free (ckdir);
  g_free (cfg);
  g_free (run);
  g_free (small);
}

/* ---- GGUF exports and `sutra quantize`: killed at random moments, and on a full disk ---- */

#define GGUF_KILLS 8              /* per command: half at a random moment, half inside the write */

typedef struct {
  char *tmp, *model, *run, *out_dir, *ref_gguf, *ref_quant;
  size_t gguf_bytes, quant_bytes;
} Gguf;

static void
gguf_setup (Gguf *g, gconstpointer u)
{
  memset (g, 0, sizeof *g);
  g->tmp = g_strdup (test_tmpdir ());
  /* hidden 128: every linear splits into NF4's blocks of 64; vocab 320 holds the tokenizer */
  g->model = test_tiny_model_folder (g->tmp, "model", 128, 2, 320, 11);
  GString *corpus = g_string_new (NULL);
  for (int i = 0; i < 40; i++)
    g_string_append_printf (corpus, "the quick brown fox jumps over the lazy dog %d\n", i);
  char *cp = g_build_filename (g->tmp, "corpus.txt", NULL), *tok = g_build_filename (g->model, "tokenizer.json", NULL);
  g_assert_true (g_file_set_contents (cp, corpus->str, -1, NULL));
  g_string_free (corpus, TRUE);
  char *errs = NULL;
  const char *targv[] = { "tokenizer-train", "--input", cp, "--vocab-size", "300", "--out", tok, NULL };
  if (test_run_cli (NULL, &errs, targv) != 0)
    g_error ("tokenizer-train failed: %s", errs);
  g_free (errs);
  g_free (cp);
  g_free (tok);
  /* a short LoRA run: its adapter is what `sutra export RUN --gguf` merges */
  char *data = test_tiny_dataset (g->tmp, "rows.jsonl", 40, 10, 64);
  g->run = g_build_filename (g->tmp, "run", NULL);
  char *json = g_strdup_printf ("{\"model\": \"%s\", \"data\": \"%s\", \"output_dir\": \"%s\", "
                                "\"lora_r\": 4, \"max_steps\": 4, \"micro_batch_size\": 2, "
                                "\"seq_len\": 16, \"save_every\": 0, \"threads\": 1, \"seed\": 5}",
                                g->model, data, g->run);
  char *cfg = g_build_filename (g->tmp, "run.json", NULL);
  g_assert_true (g_file_set_contents (cfg, json, -1, NULL));
  const char *argv[] = { "train", cfg, "--quiet", NULL };
  if (test_run_cli (NULL, &errs, argv) != 0)
    g_error ("training failed: %s", errs);
  g_free (errs);
  g_free (json);
  g_free (cfg);
  g_free (data);
  /* the uninterrupted results everything is compared with */
  g->ref_gguf = g_build_filename (g->tmp, "ref.gguf", NULL);
  const char *eargv[] = { "export", g->run, "--model", g->model, "--gguf", g->ref_gguf, NULL };
  if (test_run_cli (NULL, &errs, eargv) != 0)
    g_error ("reference GGUF export failed: %s", errs);
  g_free (errs);
  g->ref_quant = g_build_filename (g->tmp, "ref-nf4", NULL);
  const char *qargv[] = { "quantize", g->model, "--method", "nf4", "--out", g->ref_quant, NULL };
  if (test_run_cli (NULL, &errs, qargv) != 0)
    g_error ("reference quantize failed: %s", errs);
  g_free (errs);
  GStatBuf st;
  g_assert_cmpint (g_stat (g->ref_gguf, &st), ==, 0);
  g->gguf_bytes = (size_t) st.st_size;
  g->quant_bytes = dir_pages_bytes (g->ref_quant);
  g->out_dir = g_build_filename (g->tmp, "out", NULL);
  g_assert_cmpint (g_mkdir_with_parents (g->out_dir, 0755), ==, 0);
}

static void
gguf_teardown (Gguf *g, gconstpointer u)
{
  g_free (g->tmp); g_free (g->model); g_free (g->run); g_free (g->out_dir); g_free (g->ref_gguf);
  g_free (g->ref_quant);
}

static void
assert_same_file (const char *a, const char *b)
{
  char *da, *db;
  gsize na, nb;
  g_assert_true (g_file_get_contents (a, &da, &na, NULL));
  g_assert_true (g_file_get_contents (b, &db, &nb, NULL));
  if (na != nb || memcmp (da, db, na))
    g_error ("%s differs from %s (%zu vs %zu bytes)", b, a, nb, na);
  g_free (da);
  g_free (db);
}

/* out.gguf is complete: our reader opens it and it equals the uninterrupted export */
static void
check_gguf (Gguf *g, const char *path)
{
  SutraGguf *f;
  SutraError err;
  if (sutra_gguf_open (path, &f, &err))
    g_error ("%s is not a complete GGUF file: %s", path, err.message);
  sutra_gguf_free (f);
  assert_same_file (g->ref_gguf, path);
}

/* the quantized folder is complete: it loads, and every file equals the uninterrupted one's */
static void
check_quant (Gguf *g, const char *dir)
{
  SutraModel *m;
  SutraError err;
  if (sutra_model_load (dir, &m, &err))
    g_error ("%s is not a complete quantized model: %s", dir, err.message);
  sutra_model_free (m);
  GDir *d = g_dir_open (g->ref_quant, 0, NULL);
  const char *n;
  int files = 0;
  while ((n = g_dir_read_name (d))) {
    char *a = g_build_filename (g->ref_quant, n, NULL), *b = g_build_filename (dir, n, NULL);
    assert_same_file (a, b);
    files++;
    g_free (a);
    g_free (b);
  }
  g_dir_close (d);
  g_assert_cmpint (files, >=, 3);                 /* weights, config, tokenizer */
}

/* argv's child killed GGUF_KILLS times, each after a random delay within an uninterrupted
 * run's duration or, every other time, inside its write (the temporary `base`.tmp-<pid>-<n>
 * exists). After each kill the output is absent (never, once it existed) or complete. The last
 * run is not killed: it must give the uninterrupted result and leave no temporary behind,
 * including those of the killed writers. */
static void
kill_writes (Gguf *g, const char *const *argv, const char *base, bool folder)
{
  char *out = g_build_filename (g->out_dir, base, NULL);
  /* how long one uninterrupted (slowed) run takes */
  gint64 t0 = g_get_monotonic_time ();
  GPid pid = spawn_cli (argv, true);
  int status;
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
  gint64 t_run = g_get_monotonic_time () - t0;
  sutra_rm_rf (out, NULL);
  int kills = 0, in_write = 0, finished = 0, leftovers = 0;
  bool existed = false;
  for (int i = 0; i < GGUF_KILLS; i++) {
    pid = spawn_cli (argv, true);
    t0 = g_get_monotonic_time ();
    gint64 delay = g_test_rand_int_range (0, (gint32) t_run);
    bool aimed = i % 2 == 1;
    for (;;) {
      if (reaped (pid, &status)) {
        g_assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
        finished++;
        break;
      }
      bool now = aimed ? has_tmp (g->out_dir, base, pid) : g_get_monotonic_time () - t0 > delay;
      if (now) {
        if (aimed)
          g_usleep ((gulong) g_test_rand_int_range (0, SLOW_WRITE_MS * 1000));
        in_write += has_tmp (g->out_dir, base, pid);
        kill_child (pid);
        kills++;
        leftovers += has_tmp (g->out_dir, base, pid);
        break;
      }
      tick (t0, "a GGUF export or quantize write");
    }
    bool exists = g_file_test (out, G_FILE_TEST_EXISTS);
    g_assert_true (exists || !existed);            /* a replaced output is never missing */
    if (exists) {
      if (folder)
        check_quant (g, out);
      else
        check_gguf (g, out);
    }
    existed = exists;
  }
  char *errs = NULL;
  if (test_run_cli (NULL, &errs, argv) != 0)
    g_error ("%s after the kills failed: %s", argv[0], errs);
  g_free (errs);
  if (folder)
    check_quant (g, out);
  else
    check_gguf (g, out);
  g_assert_false (has_tmp (g->out_dir, base, 0));  /* dead writers' temporaries cleaned too */
  g_test_message ("sutra %s: %d kills (%d inside the write, %d left a temporary behind), %d "
                  "runs finished before their kill; one run %.2f s", argv[0], kills, in_write,
                  leftovers, finished, (double) t_run / G_USEC_PER_SEC);
  g_assert_cmpint (kills, >=, GGUF_KILLS / 2);
  g_assert_cmpint (in_write, >=, GGUF_KILLS / 2 - 2);  /* loaded machines may land a few late */
  if (!folder)
    g_assert_cmpint (leftovers, >=, 1);            /* the cleaning was exercised */
  g_free (out);
}

static void
test_gguf_kill (Gguf *g, gconstpointer u)
{
  char *out = g_build_filename (g->out_dir, "model.gguf", NULL);
  const char *argv[] = { "export", g->run, "--model", g->model, "--gguf", out, NULL };
  kill_writes (g, argv, "model.gguf", false);
  g_free (out);
}

static void
test_quantize_kill (Gguf *g, gconstpointer u)
{
  char *out = g_build_filename (g->out_dir, "nf4", NULL);
  const char *argv[] = { "quantize", g->model, "--method", "nf4", "--out", out, "--overwrite", NULL };
  kill_writes (g, argv, "nf4", true);
  g_free (out);
}

/* A GGUF export and a quantize that do not fit beside their previous output: one line naming
 * the file and the cause, exit 1, the previous output byte-identical, nothing temporary left. */
static void
test_gguf_full_disk (Gguf *g, gconstpointer u)
{
  char *small = g_build_filename (g->tmp, "small", NULL);
  g_assert_cmpint (g_mkdir_with_parents (small, 0755), ==, 0);
  Disk dk = { !g_getenv ("SUTRA_TEST_NO_TMPFS") && enter_mount_namespace (), 0 };
  if (dk.tmpfs)
    dk.tmpfs = mount ("tmpfs", small, "tmpfs", 0, "size=64m") == 0;
  g_test_message ("full disk by %s; GGUF %zu bytes, NF4 folder %zu bytes",
                  dk.tmpfs ? "a small tmpfs in a private mount namespace"
                           : "RLIMIT_FSIZE (no tmpfs could be mounted here)", g->gguf_bytes,
                  g->quant_bytes);
  char *out = g_build_filename (small, "model.gguf", NULL), *qout = g_build_filename (small, "nf4", NULL);
  const char *eargv[] = { "export", g->run, "--model", g->model, "--gguf", out, NULL };
  const char *qargv[] = { "quantize", g->model, "--method", "nf4", "--out", qout, "--overwrite", NULL };
  for (int k = 0; k < 2; k++) {
    const char *const *argv = k ? qargv : eargv;
    const char *target = k ? qout : out;
    char *errs = NULL;
    if (dk.tmpfs)
      g_assert_cmpint (mount (NULL, small, NULL, MS_REMOUNT, "size=64m"), ==, 0);
    if (test_run_cli (NULL, &errs, argv) != 0)        /* the first fits */
      g_error ("%s failed: %s", argv[0], errs);
    g_free (errs);
    if (dk.tmpfs) {
      /* room for the previous output and half of a new one */
      size_t used = (g->gguf_bytes + 4095) / 4096 * 4096 + (k ? g->quant_bytes : 0) + 2 * 4096;
      size_t want = used + (k ? g->quant_bytes : g->gguf_bytes) / 2;
      char *opt = g_strdup_printf ("size=%zu", (want + 4095) / 4096 * 4096);
      g_assert_cmpint (mount (NULL, small, NULL, MS_REMOUNT, opt), ==, 0);
      g_free (opt);
    } else {
      dk.limit = (k ? g->quant_bytes : g->gguf_bytes) / 4;
    }
    int rc = run_limited (&dk, &errs, argv);
    assert_disk_error (rc, errs, k ? "quantize on a full disk" : "GGUF export on a full disk");
    g_assert_nonnull (strstr (errs, target));        /* the error names the file */
    g_assert_nonnull (strstr (errs, "not written (a previous"));   /* and what is safe */
    g_free (errs);
    if (k)
      check_quant (g, qout);
    else
      check_gguf (g, out);
    g_assert_false (has_tmp (small, k ? "nf4" : "model.gguf", 0));
  }
  if (dk.tmpfs)
    umount2 (small, MNT_DETACH);
  g_free (out);
  g_free (qout);
  g_free (small);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/slow/crash/kill-resume", Crash, NULL, crash_setup, test_kill_resume, crash_teardown);
  g_test_add ("/slow/crash/stop-signals", Crash, NULL, crash_setup, test_stop_signals, crash_teardown);
  g_test_add ("/slow/crash/full-disk", Crash, NULL, crash_setup, test_full_disk, crash_teardown);
  g_test_add ("/slow/crash/gguf-export-kill", Gguf, NULL, gguf_setup, test_gguf_kill, gguf_teardown);
  g_test_add ("/slow/crash/quantize-kill", Gguf, NULL, gguf_setup, test_quantize_kill, gguf_teardown);
  g_test_add ("/slow/crash/gguf-quantize-full-disk", Gguf, NULL, gguf_setup, test_gguf_full_disk,
              gguf_teardown);
  return g_test_run ();
}
