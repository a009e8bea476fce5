/* test-trainer-threads.c: the trainer's control requests from other threads (pause, resume,
 * save now, stop), the way the studio drives it: the run on a worker thread, the controls from
 * the test's main thread and from a hammering third thread. Small enough for the TSan build
 * (label `thread`), where any data race between the trainer and its controllers fails it.
 * Every case also proves the controls do not change the math: the metrics (without timings)
 * and the final adapter equal those of an undisturbed run. */
#include "test-util.h"
#include "sutra-fsutil.h"
#include "sutra-pool.h"
#include "sutra-trainer.h"

#include <json-c/json.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdatomic.h>
#include <string.h>

#define WAIT_LIMIT_US (120 * G_USEC_PER_SEC)   /* generous: TSan runs ~10x slower */

/* pthread primitives, not GMutex/GCond: GLib's futex-based locks are invisible to TSan, which
 * would then report the data they protect as racy. */
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int64_t last_step;
  int started, paused_events, resumed_events, checkpoints, finished, stopped;
  int64_t pause_at, stop_at;     /* request from the callback at this step (0 = never) */
  SutraTrainer *t;
} Watch;

static void
watch_init (Watch *w)
{
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->cond, NULL);
}

static void
watch_clear (Watch *w)
{
  pthread_mutex_destroy (&w->lock);
  pthread_cond_destroy (&w->cond);
}

static void
on_event (const SutraTrainEvent *ev, void *data)    /* trainer thread */
{
  Watch *w = data;
  pthread_mutex_lock (&w->lock);
  switch (ev->kind) {
  case SUTRA_TRAIN_EV_STARTED: w->started = 1; break;
  case SUTRA_TRAIN_EV_STEP:
    w->last_step = ev->step;
    break;
  case SUTRA_TRAIN_EV_PAUSED: w->paused_events++; break;
  case SUTRA_TRAIN_EV_RESUMED: w->resumed_events++; break;
  case SUTRA_TRAIN_EV_CHECKPOINT: w->checkpoints++; break;
  case SUTRA_TRAIN_EV_FINISHED: w->finished = 1; break;
  case SUTRA_TRAIN_EV_STOPPED: w->stopped = 1; break;
  default: break;
  }
  pthread_cond_broadcast (&w->cond);
  pthread_mutex_unlock (&w->lock);
}

/* Waits (main thread) until pred holds; fails the test after WAIT_LIMIT_US. */
static void
wait_for (Watch *w, gboolean (*pred) (Watch *, gconstpointer), gconstpointer arg, const char *what)
{
  struct timespec end;
  clock_gettime (CLOCK_REALTIME, &end);
  end.tv_sec += WAIT_LIMIT_US / G_USEC_PER_SEC;
  pthread_mutex_lock (&w->lock);
  while (!pred (w, arg))
    if (pthread_cond_timedwait (&w->cond, &w->lock, &end) == ETIMEDOUT && !pred (w, arg)) {
      pthread_mutex_unlock (&w->lock);
      g_error ("timed out waiting for %s", what);
    }
  pthread_mutex_unlock (&w->lock);
}

static gboolean
at_step (Watch *w, gconstpointer step)
{
  return w->last_step >= GPOINTER_TO_INT (step) || w->finished;
}

static gboolean
is_started (Watch *w, gconstpointer u)
{
  return w->started;
}

typedef struct {
  SutraTrainer *t;
  SutraStatus st;
  SutraError err;
} RunArgs;

static gpointer
run_thread (gpointer data)
{
  RunArgs *a = data;
  a->st = sutra_trainer_run (a->t, &a->err);
  return NULL;
}

static SutraTrainConfig
settings (const char *tmp, const char *model, const char *data, const char *run)
{
  SutraTrainConfig c;
  sutra_train_config_init (&c);
  SutraError err;
  const char *kv[][2] = { { "model", model }, { "data", data }, { "output_dir", run },
                          { "lora_r", "4" }, { "lora_dropout", "0.1" }, { "lr", "0.01" },
                          { "max_steps", "12" }, { "micro_batch_size", "3" }, { "grad_accum", "2" },
                          { "seq_len", "16" }, { "save_every", "5" }, { "keep_checkpoints", "0" },
                          { "warmup_steps", "2" }, { "threads", "2" }, { "val_split", "0.2" },
                          { "eval_every", "4" } };
  for (size_t i = 0; i < G_N_ELEMENTS (kv); i++)
    test_assert_ok (sutra_train_config_set (&c, kv[i][0], kv[i][1], &err), &err);
  return c;
}

/* metrics.jsonl without timings, and the final adapter's bytes */
static void
read_result (const char *run, char **metrics, GBytes **adapter)
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
  *metrics = g_string_free (o, FALSE);
  char *ap = g_build_filename (run, "adapter", "adapter_model.safetensors", NULL), *bytes;
  gsize n;
  g_assert_true (g_file_get_contents (ap, &bytes, &n, NULL));
  *adapter = g_bytes_new_take (bytes, n);
  g_free (ap);
}

typedef struct {
  char *tmp, *model, *data;
  char *ref_metrics;
  GBytes *ref_adapter;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer u)
{
  f->tmp = g_strdup (test_tmpdir ());
  f->model = test_tiny_model_folder (f->tmp, "model", 16, 2, 32, 11);
  f->data = test_tiny_dataset (f->tmp, "rows.jsonl", 30, 7, 32);
  /* the undisturbed run, on this thread */
  char *run = g_build_filename (f->tmp, "straight", NULL);
  SutraTrainConfig c = settings (f->tmp, f->model, f->data, run);
  SutraTrainer *t;
  SutraError err;
  test_assert_ok (sutra_trainer_new (&c, NULL, NULL, &t, &err), &err);
  test_assert_ok (sutra_trainer_run (t, &err), &err);
  sutra_trainer_free (t);
  sutra_train_config_clear (&c);
  read_result (run, &f->ref_metrics, &f->ref_adapter);
  g_free (run);
}

static void
fixture_teardown (Fixture *f, gconstpointer u)
{
  g_free (f->tmp);
  g_free (f->model);
  g_free (f->data);
  g_free (f->ref_metrics);
  g_bytes_unref (f->ref_adapter);
}

static void
assert_same_as_straight (Fixture *f, const char *run)
{
  char *m;
  GBytes *a;
  read_result (run, &m, &a);
  g_assert_cmpstr (m, ==, f->ref_metrics);
  g_assert_true (g_bytes_equal (a, f->ref_adapter));
  g_free (m);
  g_bytes_unref (a);
}

/* Pause from the main thread, use the paused model (a forward pass, as the studio's chat does),
 * save a checkpoint while paused, resume; the run finishes as if undisturbed. */
static void
test_pause_use_save_resume (Fixture *f, gconstpointer u)
{
  char *run = g_build_filename (f->tmp, "paused", NULL);
  SutraTrainConfig c = settings (f->tmp, f->model, f->data, run);
  Watch w = { 0 };
  watch_init (&w);
  RunArgs a = { 0 };
  test_assert_ok (sutra_trainer_new (&c, on_event, &w, &a.t, &a.err), &a.err);
  GThread *th = g_thread_new ("trainer", run_thread, &a);
  wait_for (&w, is_started, NULL, "STARTED");
  wait_for (&w, at_step, GINT_TO_POINTER (3), "step 3");
  sutra_trainer_request_pause (a.t);
  gint64 end = g_get_monotonic_time () + WAIT_LIMIT_US;
  while (!sutra_trainer_is_paused (a.t)) {
    g_assert_cmpint (g_get_monotonic_time (), <, end);
    g_usleep (1000);
  }
  /* the trainer is parked between steps: its model may be used from here */
  SutraModel *m = sutra_trainer_model (a.t);
  g_assert_nonnull (m);
  int ids[5] = { 3, 4, 5, 6, 7 };
  SutraBatch b = { 1, 5, ids, NULL, NULL };
  float *logits;
  SutraError err;
  test_assert_ok (sutra_model_forward (m, &b, false, &logits, &err), &err);
  for (int i = 0; i < 5 * 32; i++)
    g_assert_true (logits[i] == logits[i]);
  pthread_mutex_lock (&w.lock);
  int64_t paused_at = w.last_step;
  int ck = w.checkpoints;
  pthread_mutex_unlock (&w.lock);
  sutra_trainer_request_save (a.t);           /* served while paused */
  end = g_get_monotonic_time () + WAIT_LIMIT_US;
  for (;;) {
    pthread_mutex_lock (&w.lock);
    bool saved = w.checkpoints > ck;
    g_assert_cmpint (w.last_step, ==, paused_at);   /* no step while paused */
    pthread_mutex_unlock (&w.lock);
    if (saved)
      break;
    g_assert_cmpint (g_get_monotonic_time (), <, end);
    g_usleep (1000);
  }
  sutra_trainer_request_resume (a.t);
  g_thread_join (th);
  test_assert_ok (a.st, &a.err);
  g_assert_true (w.finished);
  g_assert_cmpint (w.paused_events, ==, 1);
  g_assert_cmpint (w.resumed_events, ==, 1);
  /* the extra checkpoint is at the paused step and complete */
  char *name = g_strdup_printf ("step-%06d", (int) paused_at);
  char *state = g_build_filename (run, "checkpoints", name, "trainer_state.json", NULL);
  g_assert_true (g_file_test (state, G_FILE_TEST_IS_REGULAR));
  g_free (state);
  g_free (name);
  sutra_trainer_free (a.t);
  sutra_train_config_clear (&c);
  assert_same_as_straight (f, run);
  watch_clear (&w);
  g_free (run);
}

/* Stop from another thread while paused and while running; resume continues exactly. */
static void
test_stop_then_resume (Fixture *f, gconstpointer u)
{
  char *run = g_build_filename (f->tmp, "stopped", NULL);
  SutraTrainConfig c = settings (f->tmp, f->model, f->data, run);
  SutraError err;
  for (int round = 0; round < 3; round++) {
    Watch w = { 0 };
    watch_init (&w);
    RunArgs a = { 0 };
    if (round == 0)
      test_assert_ok (sutra_trainer_new (&c, on_event, &w, &a.t, &err), &err);
    else
      test_assert_ok (sutra_trainer_new_resume (run, NULL, on_event, &w, &a.t, &err), &err);
    GThread *th = g_thread_new ("trainer", run_thread, &a);
    if (round == 0) {
      /* stop while running, at once after step 2 */
      wait_for (&w, at_step, GINT_TO_POINTER (2), "step 2");
      sutra_trainer_request_stop (a.t);
    } else if (round == 1) {
      /* pause, then stop while paused */
      wait_for (&w, at_step, GINT_TO_POINTER (7), "step 7");
      sutra_trainer_request_pause (a.t);
      for (;;) {
        pthread_mutex_lock (&w.lock);
        bool fin = w.finished;
        pthread_mutex_unlock (&w.lock);
        if (fin || sutra_trainer_is_paused (a.t))
          break;
        g_usleep (500);
      }
      sutra_trainer_request_stop (a.t);
    }
    g_thread_join (th);
    if (round < 2) {
      g_assert_cmpint (a.st, ==, SUTRA_ERR_CANCELLED);
      g_assert_true (w.stopped);
      g_assert_nonnull (strstr (a.err.message, "sutra resume"));
    } else {
      test_assert_ok (a.st, &a.err);
      g_assert_true (w.finished);
    }
    sutra_trainer_free (a.t);
    watch_clear (&w);
  }
  sutra_train_config_clear (&c);
  assert_same_as_straight (f, run);
  g_free (run);
}

/* A third thread hammers pause/resume/save while the main thread watches: no deadlock, no
 * race, and the run ends as if undisturbed. */
typedef struct {
  SutraTrainer *t;
  atomic_int *done;
  int toggles;
} Hammer;

static gpointer
hammer_thread (gpointer data)
{
  Hammer *h = data;
  GRand *r = g_rand_new_with_seed (17);
  while (!atomic_load (h->done)) {
    switch (g_rand_int_range (r, 0, 4)) {
    case 0: sutra_trainer_request_pause (h->t); break;
    case 1: sutra_trainer_request_resume (h->t); break;
    case 2: sutra_trainer_request_save (h->t); break;
    default: (void) sutra_trainer_is_paused (h->t); break;
    }
    h->toggles++;
    g_usleep ((gulong) g_rand_int_range (r, 50, 2000));
  }
  sutra_trainer_request_resume (h->t);
  g_rand_free (r);
  return NULL;
}

static void
test_hammer_controls (Fixture *f, gconstpointer u)
{
  char *run = g_build_filename (f->tmp, "hammered", NULL);
  SutraTrainConfig c = settings (f->tmp, f->model, f->data, run);
  Watch w = { 0 };
  watch_init (&w);
  RunArgs a = { 0 };
  test_assert_ok (sutra_trainer_new (&c, on_event, &w, &a.t, &a.err), &a.err);
  atomic_int done = 0;
  Hammer h = { a.t, &done, 0 };
  GThread *th = g_thread_new ("trainer", run_thread, &a);
  GThread *hm = g_thread_new ("hammer", hammer_thread, &h);
  /* keep un-pausing from here too until the run ends (the hammer may leave it paused) */
  gint64 end = g_get_monotonic_time () + WAIT_LIMIT_US;
  for (;;) {
    pthread_mutex_lock (&w.lock);
    bool fin = w.finished;
    pthread_mutex_unlock (&w.lock);
    if (fin)
      break;
    g_assert_cmpint (g_get_monotonic_time (), <, end);
    sutra_trainer_request_resume (a.t);
    g_usleep (10000);
  }
  atomic_store (&done, 1);
  g_thread_join (hm);
  g_thread_join (th);
  test_assert_ok (a.st, &a.err);
  g_test_message ("%d control requests; %d pauses, %d extra checkpoint events", h.toggles,
                  w.paused_events, w.checkpoints);
  g_assert_cmpint (w.paused_events, ==, w.resumed_events);
  sutra_trainer_free (a.t);
  sutra_train_config_clear (&c);
  assert_same_as_straight (f, run);
  watch_clear (&w);
  g_free (run);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  sutra_set_threads (2);
  g_test_add ("/engine/trainer-threads/pause-use-save-resume", Fixture, NULL, fixture_setup,
              test_pause_use_save_resume, fixture_teardown);
  g_test_add ("/engine/trainer-threads/stop-then-resume", Fixture, NULL, fixture_setup,
              test_stop_then_resume, fixture_teardown);
  g_test_add ("/engine/trainer-threads/hammer-controls", Fixture, NULL, fixture_setup,
              test_hammer_controls, fixture_teardown);
  return g_test_run ();
}
