/* test-ui-job.c: StudioJob, the bridge every short background job uses: streamed text and
 * progress arrive in order and complete before the finish callback, a burst of reports is
 * coalesced into few main-loop wake-ups, and cancellation reaches the flags the engine polls. */
#include "studio-job.h"
#include "studio-test.h"

#define CHUNKS 5000

static gpointer
chatty (StudioJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  for (guint i = 0; i < CHUNKS; i++)
    {
      char buf[16];
      int n = g_snprintf (buf, sizeof buf, "%u,", i);
      studio_job_emit_text (job, buf, n);
      studio_job_report (job, (double) (i + 1) / CHUNKS, NULL);
    }
  studio_job_report (job, 1.0, "done");
  return g_strdup ("result");
}

typedef struct {
  GString *text;
  guint signals;
  gboolean finished;
  char *result;
  double fraction_at_finish;
  char *text_at_finish;
  GError *error;
} Seen;

static void
on_streamed (StudioJob *job, const char *text, Seen *seen)
{
  g_assert_false (seen->finished);   /* never after the finish callback */
  g_string_append (seen->text, text);
  seen->signals++;
}

static void
on_finished (GObject *source, GAsyncResult *result, gpointer data)
{
  Seen *seen = data;

  seen->result = studio_job_finish (STUDIO_JOB (source), result, &seen->error);
  seen->fraction_at_finish = studio_job_get_fraction (STUDIO_JOB (source));
  seen->text_at_finish = g_strdup (studio_job_get_text (STUDIO_JOB (source)));
  seen->finished = TRUE;
}

static void
test_stream_order_and_coalescing (void)
{
  g_autoptr(StudioJob) job = studio_job_new ("chatty");
  Seen seen = { .text = g_string_new (NULL) };
  GString *expected = g_string_new (NULL);

  for (guint i = 0; i < CHUNKS; i++)
    g_string_append_printf (expected, "%u,", i);
  g_signal_connect (job, "streamed", G_CALLBACK (on_streamed), &seen);
  studio_job_run (job, chatty, NULL, NULL, g_free, on_finished, &seen);
  g_assert_true (studio_job_get_running (job));
  WAIT_UNTIL (seen.finished, 10000);
  g_assert_no_error (seen.error);
  g_assert_cmpstr (seen.result, ==, "result");
  /* every chunk, in order, delivered before the finish callback */
  g_assert_cmpstr (seen.text->str, ==, expected->str);
  g_assert_cmpfloat (seen.fraction_at_finish, ==, 1.0);
  g_assert_cmpstr (seen.text_at_finish, ==, "done");
  /* coalesced: far fewer main-loop deliveries than worker reports */
  g_test_message ("%u chunks arrived in %u deliveries", CHUNKS, seen.signals);
  g_assert_cmpuint (seen.signals, <, CHUNKS / 2);
  g_assert_false (studio_job_get_running (job));
  g_string_free (seen.text, TRUE);
  g_string_free (expected, TRUE);
  g_free (seen.result);
  g_free (seen.text_at_finish);
}

static gpointer
waits_for_cancel (StudioJob *job, gpointer data, GCancellable *cancellable, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  /* What an engine loop does: poll the flags between units of work. */
  while (!atomic_load (studio_job_cancel_flag (job)))
    {
      if (g_get_monotonic_time () > deadline)
        return g_strdup ("never cancelled");
      g_usleep (1000);
    }
  g_assert_cmpint (*studio_job_cancel_int (job), ==, 1);
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
  return NULL;
}

static void
test_cancel (void)
{
  g_autoptr(StudioJob) job = studio_job_new ("cancel me");
  Seen seen = { .text = g_string_new (NULL) };

  studio_job_run (job, waits_for_cancel, NULL, NULL, g_free, on_finished, &seen);
  studio_test_spin (20);
  studio_job_cancel (job);
  WAIT_UNTIL (seen.finished, 10000);
  g_assert_null (seen.result);
  g_assert_error (seen.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&seen.error);
  g_free (seen.text_at_finish);

  /* the same job runs again with fresh flags */
  seen.finished = FALSE;
  studio_job_run (job, chatty, NULL, NULL, g_free, on_finished, &seen);
  WAIT_UNTIL (seen.finished, 10000);
  g_assert_no_error (seen.error);
  g_assert_cmpstr (seen.result, ==, "result");
  g_free (seen.result);
  g_free (seen.text_at_finish);
  g_string_free (seen.text, TRUE);
}

int
main (int argc, char **argv)
{
  int rc;

  studio_test_init (&argc, &argv);
  g_test_add_func ("/ui/job/stream-order-and-coalescing", test_stream_order_and_coalescing);
  g_test_add_func ("/ui/job/cancel", test_cancel);
  rc = g_test_run ();
  studio_test_cleanup ();
  return rc;
}
