/* test-ui-chat.c: the Chat page: a streamed answer from the base model, Stop, base and
 * fine-tuned side by side after a short run, and an answer from the weights of a paused run
 * (Resume waits for it). The tiny model is random, so the tests check the plumbing (tokens
 * arrive, both columns answer, the run is left consistent), not the words. */
#include "studio-chat-page.h"
#include "studio-test.h"

typedef struct {
  StudioWindow *win;
  StudioWorkspace *ws;
  StudioChatPage *page;
  char *model;
  guint chunks;
} Fixture;

static void
count_chunk (StudioJob *job, const char *text, guint *chunks)
{
  (*chunks)++;
}

static void
setup (Fixture *f, gconstpointer data)
{
  GSettings *settings;

  f->model = STUDIO_HAVE_CHAT ? studio_test_make_model ("tiny") : NULL;
  if (!STUDIO_HAVE_CHAT)
    g_test_skip ("this tree has no generation loop (engine/infer/sutra-generate.c, sutra-chat-session.c)");
  f->win = studio_test_window_new ();
  f->ws = studio_window_get_workspace (f->win);
  f->page = STUDIO_CHAT_PAGE (studio_window_get_page (f->win, "chat"));
  if (f->model == NULL)
    return;
  settings = studio_workspace_get_settings (f->ws);
  g_settings_set_int (settings, "chat-max-tokens", 12);
  g_settings_set_double (settings, "chat-temperature", 0.8);
  g_signal_connect (f->ws, "error", G_CALLBACK (studio_test_fail_on_error), NULL);
  studio_test_open_model (f->win, f->model);
  studio_window_show_page (f->win, "chat");
}

static void
teardown (Fixture *f, gconstpointer data)
{
  StudioTrainingSession *s = studio_workspace_get_session (f->ws);

  if (s && studio_training_session_is_active (s))
    {
      studio_training_session_stop (s);
      WAIT_UNTIL (!studio_training_session_is_active (s), 60000);
    }
  g_signal_handlers_disconnect_by_func (f->ws, studio_test_fail_on_error, NULL);
  studio_test_window_destroy (f->win);
  g_free (f->model);
}

static void
train_briefly (Fixture *f, const char *max_steps)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dataset = studio_test_make_dataset ("train.jsonl", 16, 0);
  static const char *const kv[][2] = {
    { "seq_len", "32" }, { "micro_batch_size", "2" }, { "eval_every", "0" }, { "save_every", "0" },
    { "val_split", "0" }, { "warmup_steps", "0" },
  };

  studio_workspace_set_dataset_path (f->ws, dataset);
  studio_workspace_set_preset (f->ws, "quick");
  for (guint i = 0; i < G_N_ELEMENTS (kv); i++)
    g_assert_true (studio_workspace_set_train_value (f->ws, kv[i][0], kv[i][1], &error));
  g_assert_true (studio_workspace_set_train_value (f->ws, "max_steps", max_steps, &error));
  g_action_group_activate_action (G_ACTION_GROUP (f->win), "start-training", NULL);
  g_assert_nonnull (studio_workspace_get_session (f->ws));
}

static void
test_base_streams (Fixture *f, gconstpointer data)
{
  g_autofree char *answer = NULL;

  if (f->model == NULL)
    return;
  g_signal_connect (studio_chat_page_get_job (f->page), "streamed",
                    G_CALLBACK (count_chunk), &f->chunks);
  studio_chat_page_set_mode (f->page, 0);
  g_assert_true (studio_chat_page_send (f->page, "Hello, who are you?"));
  g_assert_true (studio_chat_page_is_busy (f->page));
  /* one message at a time */
  g_assert_false (studio_chat_page_send (f->page, "again"));
  WAIT_UNTIL (!studio_chat_page_is_busy (f->page), 60000);
  answer = studio_chat_page_dup_last_answer (f->page, 0);
  g_assert_nonnull (answer);
  g_assert_cmpuint (f->chunks, >=, 1);
  g_assert_cmpuint (strlen (answer), >, 0);
  /* a second turn continues the conversation */
  g_clear_pointer (&answer, g_free);
  g_assert_true (studio_chat_page_send (f->page, "And then?"));
  WAIT_UNTIL (!studio_chat_page_is_busy (f->page), 60000);
  answer = studio_chat_page_dup_last_answer (f->page, 0);
  g_assert_nonnull (answer);
}

static void
test_stop (Fixture *f, gconstpointer data)
{
  g_autofree char *answer = NULL;

  if (f->model == NULL)
    return;
  g_settings_set_int (studio_workspace_get_settings (f->ws), "chat-max-tokens", 4000);
  g_assert_true (studio_chat_page_send (f->page, "Tell me a long story."));
  gtk_widget_activate_action (GTK_WIDGET (f->page), "panel.stop", NULL);
  WAIT_UNTIL (!studio_chat_page_is_busy (f->page), 60000);
  answer = studio_chat_page_dup_last_answer (f->page, 0);
  g_assert_nonnull (answer);
  /* the tiny model may reach its 128-token context before the stop lands; either way the
   * page is ready for the next message */
  g_assert_true (studio_chat_page_send (f->page, "Short, please."));
  WAIT_UNTIL (!studio_chat_page_is_busy (f->page), 60000);
}

static void
test_side_by_side (Fixture *f, gconstpointer data)
{
  StudioTrainingSession *s;
  g_autofree char *left = NULL, *right = NULL;

  if (f->model == NULL)
    return;
  train_briefly (f, "4");
  s = studio_workspace_get_session (f->ws);
  WAIT_UNTIL (!studio_training_session_is_active (s), 120000);
  g_assert_nonnull (studio_workspace_get_adapter_dir (f->ws));
  studio_chat_page_set_mode (f->page, 2);
  g_assert_true (studio_chat_page_send (f->page, "Say apple twice:"));
  WAIT_UNTIL (!studio_chat_page_is_busy (f->page), 120000);
  left = studio_chat_page_dup_last_answer (f->page, 0);
  right = studio_chat_page_dup_last_answer (f->page, 1);
  g_assert_nonnull (left);
  g_assert_nonnull (right);
}

static void
test_paused_training_weights (Fixture *f, gconstpointer data)
{
  StudioTrainingSession *s;
  g_autofree char *answer = NULL;
  gint64 step;

  if (f->model == NULL)
    return;
  train_briefly (f, "400");
  s = studio_workspace_get_session (f->ws);
  WAIT_UNTIL (studio_training_session_get_step (s) >= 2, 60000);

  /* before a pause the page says what to do, and nothing runs */
  studio_chat_page_set_mode (f->page, 3);
  g_assert_true (studio_chat_page_send (f->page, "Hi"));
  WAIT_UNTIL (!studio_chat_page_is_busy (f->page), 5000);
  answer = studio_chat_page_dup_last_answer (f->page, 0);
  g_assert_cmpstr (answer, ==, "");

  g_action_group_activate_action (G_ACTION_GROUP (f->win), "pause-training", NULL);
  WAIT_UNTIL (studio_training_session_get_state (s) == STUDIO_TRAIN_PAUSED, 30000);
  step = studio_training_session_get_step (s);
  g_assert_true (studio_chat_page_send (f->page, "Hi again"));
  /* Resume waits while the reply runs on the trainer's weights */
  if (studio_chat_page_is_busy (f->page))
    g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (f->win), "resume-training"));
  WAIT_UNTIL (!studio_chat_page_is_busy (f->page), 60000);
  g_clear_pointer (&answer, g_free);
  answer = studio_chat_page_dup_last_answer (f->page, 0);
  g_assert_nonnull (answer);
  g_assert_cmpint (studio_training_session_get_step (s), ==, step);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (f->win), "resume-training"));
  g_action_group_activate_action (G_ACTION_GROUP (f->win), "resume-training", NULL);
  WAIT_UNTIL (studio_training_session_get_step (s) > step, 60000);
}

int
main (int argc, char **argv)
{
  int rc;

  studio_test_init (&argc, &argv);
  g_test_add ("/ui/chat/base-streams", Fixture, NULL, setup, test_base_streams, teardown);
  g_test_add ("/ui/chat/stop", Fixture, NULL, setup, test_stop, teardown);
  g_test_add ("/ui/chat/side-by-side", Fixture, NULL, setup, test_side_by_side, teardown);
  g_test_add ("/ui/chat/paused-training-weights", Fixture, NULL, setup,
              test_paused_training_weights, teardown);
  rc = g_test_run ();
  studio_test_cleanup ();
  return rc;
}
