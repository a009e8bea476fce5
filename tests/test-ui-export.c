/* test-ui-export.c: the Export page after a short training run: a PEFT adapter and a merged
 * F16 model written through the engine, each loaded back by the self-test; GGUF says honestly
 * when this build cannot write it. */
#include "studio-export-page.h"
#include "studio-test.h"

typedef struct {
  StudioWindow *win;
  StudioWorkspace *ws;
  StudioExportPage *page;
  char *model;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dataset = NULL;
  StudioTrainingSession *s;
  static const char *const kv[][2] = {
    { "seq_len", "32" }, { "micro_batch_size", "2" }, { "max_steps", "6" }, { "eval_every", "0" },
    { "save_every", "0" }, { "val_split", "0" }, { "warmup_steps", "0" },
  };

  f->model = (STUDIO_HAVE_TRAINER && STUDIO_HAVE_EXPORT) ? studio_test_make_model ("tiny") : NULL;
  if (!(STUDIO_HAVE_TRAINER && STUDIO_HAVE_EXPORT))
    g_test_skip ("this tree has no trainer or exporter (engine/train/)");
  f->win = studio_test_window_new ();
  f->ws = studio_window_get_workspace (f->win);
  f->page = STUDIO_EXPORT_PAGE (studio_window_get_page (f->win, "export"));
  if (f->model == NULL)
    return;
  g_signal_connect (f->ws, "error", G_CALLBACK (studio_test_fail_on_error), NULL);
  dataset = studio_test_make_dataset ("train.jsonl", 16, 0);
  studio_test_open_model (f->win, f->model);
  studio_workspace_set_dataset_path (f->ws, dataset);
  studio_workspace_set_preset (f->ws, "quick");
  for (guint i = 0; i < G_N_ELEMENTS (kv); i++)
    if (!studio_workspace_set_train_value (f->ws, kv[i][0], kv[i][1], &error))
      g_error ("%s: %s", kv[i][0], error->message);
  g_action_group_activate_action (G_ACTION_GROUP (f->win), "start-training", NULL);
  s = studio_workspace_get_session (f->ws);
  g_assert_nonnull (s);
  WAIT_UNTIL (!studio_training_session_is_active (s), 120000);
  g_assert_cmpint (studio_training_session_get_state (s), ==, STUDIO_TRAIN_FINISHED);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  g_signal_handlers_disconnect_by_func (f->ws, studio_test_fail_on_error, NULL);
  studio_test_window_destroy (f->win);
  g_free (f->model);
}

/* With the generation loop the self-test answers the prompt; without it, it checks that the
 * export loads and runs. */
#define SELFTEST_PREFIX (STUDIO_HAVE_CHAT ? "Answered in " : "Loaded the export")

static void
run_export (Fixture *f)
{
  gtk_widget_activate_action (GTK_WIDGET (f->page), "panel.export", NULL);
  WAIT_UNTIL (!studio_export_page_is_busy (f->page), 120000);
}

static void
test_peft_adapter (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *cfg = NULL, *weights = NULL, *text = NULL;
  const char *adapter;

  if (f->model == NULL)
    return;
  /* the finished run's adapter is what Export offers */
  adapter = studio_workspace_get_adapter_dir (f->ws);
  g_assert_nonnull (adapter);
  g_assert_true (g_str_has_suffix (adapter, "adapter"));
  out = studio_test_path ("exports/peft");
  studio_export_page_set_kind (f->page, 0, 0);
  studio_export_page_set_output (f->page, out);
  run_export (f);
  g_assert_cmpstr (studio_export_page_get_result (f->page), ==, out);
  cfg = g_build_filename (out, "adapter_config.json", NULL);
  weights = g_build_filename (out, "adapter_model.safetensors", NULL);
  g_assert_true (g_file_test (weights, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_get_contents (cfg, &text, NULL, NULL));
  g_assert_nonnull (strstr (text, "\"LORA\""));
  /* the self-test loaded base + adapter and ran the prompt */
  g_assert_nonnull (studio_export_page_get_selftest (f->page));
  g_assert_true (g_str_has_prefix (studio_export_page_get_selftest (f->page), SELFTEST_PREFIX));
}

static void
test_merged_f16 (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *weights = NULL;
  SutraModel *m = NULL;
  SutraError err = { 0 };

  if (f->model == NULL)
    return;
  out = studio_test_path ("exports/merged");
  studio_export_page_set_kind (f->page, 1, 1);
  studio_export_page_set_output (f->page, out);
  run_export (f);
  g_assert_cmpstr (studio_export_page_get_result (f->page), ==, out);
  weights = g_build_filename (out, "tokenizer.json", NULL);
  g_assert_true (g_file_test (weights, G_FILE_TEST_IS_REGULAR));
  test_assert_ok (sutra_model_load (out, &m, &err), &err);
  g_assert_cmpint (sutra_safetensors_tensor (m->weights, 0)->dtype, ==, SUTRA_F16);
  sutra_model_free (m);
  g_assert_true (g_str_has_prefix (studio_export_page_get_selftest (f->page), SELFTEST_PREFIX));
}

static void
count_error (StudioWorkspace *ws, const GError *error, char **last)
{
  g_free (*last);
  *last = g_strdup (error->message);
}

static void
test_gguf (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL;
  g_autofree char *message = NULL;

  if (f->model == NULL)
    return;
  out = studio_test_path ("exports/model.gguf");
  studio_export_page_set_kind (f->page, 2, 0);   /* f16 */
  studio_export_page_set_output (f->page, out);
  g_signal_handlers_disconnect_by_func (f->ws, studio_test_fail_on_error, NULL);
  g_signal_connect (f->ws, "error", G_CALLBACK (count_error), &message);
  run_export (f);
#if STUDIO_HAVE_GGUF_EXPORT
  g_assert_null (message);
  g_assert_true (g_file_test (out, G_FILE_TEST_IS_REGULAR));
  /* the self-test imported the GGUF's weights into the base model and ran it */
  g_assert_true (g_str_has_prefix (studio_export_page_get_selftest (f->page), SELFTEST_PREFIX));
#else
  /* no writer in this build: an honest error, no file */
  g_assert_nonnull (message);
  g_assert_nonnull (strstr (message, "GGUF"));
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
#endif
  g_signal_handlers_disconnect_by_data (f->ws, &message);
  g_signal_connect (f->ws, "error", G_CALLBACK (studio_test_fail_on_error), NULL);
}

int
main (int argc, char **argv)
{
  int rc;

  studio_test_init (&argc, &argv);
  g_test_add ("/ui/export/peft-adapter", Fixture, NULL, setup, test_peft_adapter, teardown);
  g_test_add ("/ui/export/merged-f16", Fixture, NULL, setup, test_merged_f16, teardown);
  g_test_add ("/ui/export/gguf", Fixture, NULL, setup, test_gguf, teardown);
  rc = g_test_run ();
  studio_test_cleanup ();
  return rc;
}
