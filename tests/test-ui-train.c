/* test-ui-train.c: training from the window, as a user does it: open a model and a dataset
 * through the dialogs' code paths, press Start (win.start-training), watch the chart's series
 * and metrics.jsonl grow, Pause/Resume/Save/Stop, reopen the run and resume it from a
 * checkpoint, the close-during-a-run dialog, and the main loop's latency while training. */
#include <math.h>
#include <time.h>

#include "studio-test.h"
#include "studio-train-page.h"

/* The main loop must answer within this while a run is training (issue 8). */
#define LATENCY_P99_MAX_MS 50.0

typedef struct {
  StudioWindow *win;
  StudioWorkspace *ws;
  char *model, *dataset;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->model = (STUDIO_HAVE_TRAINER) ? studio_test_make_model ("tiny") : NULL;
  if (!(STUDIO_HAVE_TRAINER))
    g_test_skip ("this tree has no trainer (engine/train/sutra-trainer.c)");
  f->win = studio_test_window_new ();
  f->ws = studio_window_get_workspace (f->win);
  if (f->model == NULL)
    return;
  f->dataset = studio_test_make_dataset ("train.jsonl", 64, 0);
  g_signal_connect (f->ws, "error", G_CALLBACK (studio_test_fail_on_error), NULL);
  studio_test_open_model (f->win, f->model);
  {
    g_autoptr(GFile) file = g_file_new_for_path (f->dataset);
    studio_window_open_dataset_file (f->win, file);
  }
  /* Small and fast: a few dozen ms per step on one core. */
  studio_workspace_set_preset (f->ws, "quick");
  static const char *const kv[][2] = {
    { "seq_len", "32" }, { "micro_batch_size", "2" }, { "max_steps", "400" },
    { "eval_every", "5" }, { "save_every", "0" }, { "warmup_steps", "2" }, { "val_split", "0.1" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (kv); i++)
    if (!studio_workspace_set_train_value (f->ws, kv[i][0], kv[i][1], &error))
      g_error ("%s = %s: %s", kv[i][0], kv[i][1], error->message);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  StudioTrainingSession *s = studio_workspace_get_session (f->ws);

  if (s && studio_training_session_is_active (s))
    {
      studio_training_session_stop (s);
      WAIT_UNTIL (!studio_training_session_is_active (s), 30000);
    }
  g_signal_handlers_disconnect_by_func (f->ws, studio_test_fail_on_error, NULL);
  studio_test_window_destroy (f->win);
  g_free (f->model);
  g_free (f->dataset);
}

static void
activate (Fixture *f, const char *action)
{
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->win), action));
  g_action_group_activate_action (G_ACTION_GROUP (f->win), action, NULL);
}

static goffset
file_size (const char *path)
{
  GStatBuf st;

  return g_stat (path, &st) == 0 ? (goffset) st.st_size : -1;
}

static guint
n_points (Fixture *f)
{
  StudioLossSeries *s = studio_workspace_get_series (f->ws);

  return s ? studio_loss_series_get_n_points (s) : 0;
}

static StudioTrainState
state (Fixture *f)
{
  return studio_training_session_get_state (studio_workspace_get_session (f->ws));
}

static void
test_start_pause_resume_stop (Fixture *f, gconstpointer data)
{
  StudioTrainingSession *s;
  StudioTrainPage *page;
  g_autofree char *metrics = NULL;
  goffset size1, size2;
  guint n1;
  gint64 paused_step;
  StudioChartMap map;
  g_autofree char *progress = NULL;
  const char *ckpt;

  if (f->model == NULL)
    return;
  page = STUDIO_TRAIN_PAGE (studio_window_get_page (f->win, "train"));
  activate (f, "start-training");
  s = studio_workspace_get_session (f->ws);
  g_assert_nonnull (s);
  g_assert_true (studio_training_session_is_active (s));
  /* Start is disabled while a run is active */
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->win), "start-training"));

  /* the chart's series fills as steps arrive; metrics.jsonl grows */
  WAIT_UNTIL (n_points (f) >= 3, 60000);
  g_assert_true (studio_loss_chart_get_series (studio_train_page_get_chart (page)) ==
                 studio_training_session_get_series (s));
  metrics = g_build_filename (studio_training_session_get_run_dir (s), "metrics.jsonl", NULL);
  size1 = file_size (metrics);
  g_assert_cmpint (size1, >, 0);
  n1 = n_points (f);
  WAIT_UNTIL (n_points (f) >= n1 + 3, 60000);
  WAIT_UNTIL ((size2 = file_size (metrics)) > size1, 60000);
  /* one metrics line per step */
  {
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    g_assert_true (g_file_get_contents (metrics, &text, NULL, NULL));
    lines = g_strsplit (g_strstrip (text), "\n", -1);
    g_assert_cmpuint (g_strv_length (lines), >=, n1 + 3);
    g_assert_nonnull (strstr (lines[0], "\"loss\""));
  }
  g_assert_cmpint (studio_training_session_get_max_steps (s), ==, 400);
  g_assert_cmpfloat (studio_training_session_get_fraction (s), >, 0);
  progress = studio_training_session_dup_progress_text (s);
  g_assert_true (g_str_has_prefix (progress, "Step "));
  g_assert_nonnull (strstr (progress, "/ 400"));
  /* eval every 5 steps: eval points on the chart */
  {
    guint ne;
    studio_loss_series_get_evals (studio_training_session_get_series (s), &ne);
    g_assert_cmpuint (ne, >=, 1);
  }
  g_assert_true (studio_loss_chart_get_map (studio_train_page_get_chart (page), &map) ||
                 !gtk_widget_get_mapped (GTK_WIDGET (page)));

  /* Pause: the step count stops moving */
  activate (f, "pause-training");
  WAIT_UNTIL (state (f) == STUDIO_TRAIN_PAUSED, 30000);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->win), "resume-training"));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->win), "pause-training"));
  studio_test_spin (300);
  paused_step = studio_training_session_get_step (s);
  studio_test_spin (400);
  g_assert_cmpint (studio_training_session_get_step (s), ==, paused_step);
  /* the weights can be borrowed while paused (chat with the current weights) */
  g_assert_nonnull (studio_training_session_borrow_model (s));
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->win), "resume-training"));
  studio_training_session_release_model (s);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->win), "resume-training"));

  /* Save now while paused writes a checkpoint */
  activate (f, "save-checkpoint");
  WAIT_UNTIL (studio_training_session_get_last_checkpoint (s) != NULL, 30000);
  g_assert_true (g_file_test (studio_training_session_get_last_checkpoint (s), G_FILE_TEST_IS_DIR));

  /* Resume: steps move again */
  activate (f, "resume-training");
  WAIT_UNTIL (studio_training_session_get_step (s) > paused_step + 2, 60000);
  g_assert_cmpint (state (f), ==, STUDIO_TRAIN_RUNNING);

  /* Stop: a checkpoint is saved, the thread joins, the adapter is offered to Chat/Export */
  activate (f, "stop-training");
  WAIT_UNTIL (!studio_training_session_is_active (s), 60000);
  g_assert_cmpint (state (f), ==, STUDIO_TRAIN_STOPPED);
  ckpt = studio_training_session_get_result_path (s);
  g_assert_nonnull (ckpt);
  g_assert_true (g_file_test (ckpt, G_FILE_TEST_IS_DIR));
  g_assert_cmpstr (studio_workspace_get_adapter_dir (f->ws), ==, ckpt);
  /* the chart holds every step the run made */
  g_assert_cmpuint (n_points (f), ==, (guint) studio_training_session_get_step (s));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->win), "start-training"));
}

static void
test_reopen_and_resume (Fixture *f, gconstpointer data)
{
  StudioTrainingSession *s;
  g_autofree char *run = NULL;
  g_autofree char *ckpt = NULL;
  gint64 stopped_at;
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) run_file = NULL;
  const StudioLossPoint *pts;
  guint n;

  if (f->model == NULL)
    return;
  activate (f, "start-training");
  s = studio_workspace_get_session (f->ws);
  WAIT_UNTIL (n_points (f) >= 6, 60000);
  activate (f, "stop-training");
  WAIT_UNTIL (!studio_training_session_is_active (s), 60000);
  run = g_strdup (studio_training_session_get_run_dir (s));
  ckpt = g_strdup (studio_training_session_get_last_checkpoint (s));
  stopped_at = studio_training_session_get_step (s);
  g_assert_nonnull (ckpt);

  /* reopen the run folder (the Open Run dialog's response): the chart comes from metrics.jsonl */
  run_file = g_file_new_for_path (run);
  studio_window_open_run_folder (f->win, run_file);
  g_assert_null (studio_workspace_get_session (f->ws));
  g_assert_cmpstr (studio_workspace_get_run_dir (f->ws), ==, run);
  g_assert_cmpuint (n_points (f), ==, (guint) stopped_at);
  g_assert_nonnull (studio_workspace_get_adapter_dir (f->ws));

  /* resume from the checkpoint: the history is kept, new steps continue it */
  g_assert_true (studio_workspace_resume_training (f->ws, run, ckpt, &error));
  g_assert_no_error (error);
  s = studio_workspace_get_session (f->ws);
  WAIT_UNTIL (studio_training_session_get_step (s) >= stopped_at + 3, 60000);
  pts = studio_loss_series_get_points (studio_workspace_get_series (f->ws), &n);
  g_assert_cmpfloat (pts[0].step, ==, 1);
  for (guint i = 1; i < n; i++)
    g_assert_cmpfloat (pts[i].step, ==, pts[i - 1].step + 1);
  g_assert_cmpstr (studio_training_session_get_run_dir (s), ==, run);
  activate (f, "stop-training");
  WAIT_UNTIL (!studio_training_session_is_active (s), 60000);
}

static AdwMessageDialog *
find_dialog (void)
{
  GListModel *tops = gtk_window_get_toplevels ();

  for (guint i = 0; i < g_list_model_get_n_items (tops); i++)
    {
      g_autoptr(GObject) w = g_list_model_get_item (tops, i);
      if (ADW_IS_MESSAGE_DIALOG (w) && gtk_widget_get_visible (GTK_WIDGET (w)))
        return ADW_MESSAGE_DIALOG (w);
    }
  return NULL;
}

static void
on_destroy (GtkWidget *w, gboolean *flag)
{
  *flag = TRUE;
}

static void
test_close_during_run_asks (Fixture *f, gconstpointer data)
{
  StudioTrainingSession *s;
  AdwMessageDialog *dialog;
  gboolean destroyed = FALSE;

  if (f->model == NULL)
    return;
  activate (f, "start-training");
  s = g_object_ref (studio_workspace_get_session (f->ws));
  WAIT_UNTIL (n_points (f) >= 2, 60000);
  g_signal_connect (f->win, "destroy", G_CALLBACK (on_destroy), &destroyed);

  /* "Keep Training": the window stays, the run goes on */
  gtk_window_close (GTK_WINDOW (f->win));
  WAIT_UNTIL ((dialog = find_dialog ()) != NULL, 5000);
  adw_message_dialog_response (dialog, "keep");
  studio_test_spin (200);
  g_assert_false (destroyed);
  g_assert_true (studio_training_session_is_active (s));

  /* "Stop and Close": a checkpoint is saved, then the window closes by itself */
  gtk_window_close (GTK_WINDOW (f->win));
  WAIT_UNTIL ((dialog = find_dialog ()) != NULL, 5000);
  adw_message_dialog_response (dialog, "stop");
  WAIT_UNTIL (destroyed, 60000);
  g_assert_false (studio_training_session_is_active (s));
  g_assert_cmpint (studio_training_session_get_state (s), ==, STUDIO_TRAIN_STOPPED);
  g_assert_nonnull (studio_training_session_get_last_checkpoint (s));
  g_object_unref (s);
  /* teardown needs a window */
  f->win = studio_test_window_new ();
  f->ws = studio_window_get_workspace (f->win);
}

/* ---- main-loop latency --------------------------------------------------------------------
 * A 5 ms timeout records when it actually runs; the lateness beyond its period is how long
 * the main loop was busy (drawing the chart, applying training events). Measured for 3 s of
 * training on the Train page, with the chart visible and redrawn on every batch of steps. */
typedef struct {
  GArray *late_ms;
  gint64 last;
} Probe;

static gboolean
probe_tick (gpointer data)
{
  Probe *p = data;
  gint64 now = g_get_monotonic_time ();

  if (p->last)
    {
      double late = (now - p->last) / 1000.0 - 5.0;
      g_array_append_val (p->late_ms, late);
    }
  p->last = now;
  return G_SOURCE_CONTINUE;
}

static const char *
load_average (void)
{
  static char buf[64];
  g_autofree char *text = NULL;

  if (!g_file_get_contents ("/proc/loadavg", &text, NULL, NULL))
    return "?";
  g_strlcpy (buf, text, sizeof buf);
  *strchrnul (buf, ' ') = '\0';
  return buf;
}

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

/* One window of measurement: p99 lateness in ms (and the details in a test message). */
static double
measure_window (Fixture *f, int ms)
{
  Probe p = { g_array_new (FALSE, FALSE, sizeof (double)), 0 };
  guint id, steps_before = n_points (f);
  double p50, p99, worst, main_cpu_ms;
  struct timespec cpu0, cpu1;

  id = g_timeout_add (5, probe_tick, &p);
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &cpu0);
  studio_test_spin (ms);
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &cpu1);
  g_source_remove (id);
  main_cpu_ms = (cpu1.tv_sec - cpu0.tv_sec) * 1e3 + (cpu1.tv_nsec - cpu0.tv_nsec) / 1e6;
  g_assert_cmpuint (n_points (f), >, steps_before);   /* it was really training */
  g_assert_cmpuint (p.late_ms->len, >, 20);
  g_array_sort (p.late_ms, cmp_double);
  p50 = g_array_index (p.late_ms, double, p.late_ms->len / 2);
  p99 = g_array_index (p.late_ms, double, (guint) floor (0.99 * (p.late_ms->len - 1)));
  worst = g_array_index (p.late_ms, double, p.late_ms->len - 1);
  g_test_message ("main-loop lateness over %u ticks while training (%u steps): p50 %.2f ms, "
                  "p99 %.2f ms, worst %.2f ms; main thread busy %.0f ms of %d (load average %s)",
                  p.late_ms->len, n_points (f) - steps_before, p50, p99, worst, main_cpu_ms, ms,
                  load_average ());
  g_array_unref (p.late_ms);
  return p99;
}

static void
test_main_loop_latency (Fixture *f, gconstpointer data)
{
  double best = G_MAXDOUBLE;

  if (f->model == NULL)
    return;
  studio_window_show_page (f->win, "train");
  g_settings_set_boolean (studio_workspace_get_settings (f->ws), "chart-show-lr", TRUE);
  activate (f, "start-training");
  WAIT_UNTIL (n_points (f) >= 2, 60000);
  /* Up to three 2-second windows: a machine shared with other jobs can take the CPU away
   * from any process for a while, but a main loop that stalls itself fails all three. */
  for (guint i = 0; i < 3 && best >= LATENCY_P99_MAX_MS; i++)
    {
      double p99 = measure_window (f, 2000);
      best = MIN (best, p99);
    }
  g_assert_cmpfloat (best, <, LATENCY_P99_MAX_MS);
}

int
main (int argc, char **argv)
{
  int rc;

  studio_test_init (&argc, &argv);
  g_test_add ("/ui/train/start-pause-resume-stop", Fixture, NULL, setup,
              test_start_pause_resume_stop, teardown);
  g_test_add ("/ui/train/reopen-and-resume", Fixture, NULL, setup, test_reopen_and_resume, teardown);
  g_test_add ("/ui/train/close-during-run-asks", Fixture, NULL, setup, test_close_during_run_asks,
              teardown);
  g_test_add ("/ui/train/main-loop-latency", Fixture, NULL, setup, test_main_loop_latency, teardown);
  rc = g_test_run ();
  studio_test_cleanup ();
  return rc;
}
