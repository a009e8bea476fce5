/* test-ui-quant.c: the Quantize page: INT8 without data, then INT4 AWQ with calibration text,
 * each written to a folder that loads again, with the quality report (perplexity before and
 * after, KL divergence) when text was given. */
#include "studio-quant-page.h"
#include "studio-test.h"

typedef struct {
  StudioWindow *win;
  StudioWorkspace *ws;
  StudioQuantPage *page;
  char *model;
} Fixture;

static void
setup (Fixture *f, gconstpointer data)
{
  f->model = (STUDIO_HAVE_QUANTIZE) ? studio_test_make_model ("tiny") : NULL;
  if (!(STUDIO_HAVE_QUANTIZE))
    g_test_skip ("this tree has no model quantizer (sutra_quantize_to_folder, engine/model/sutra-quantize.c)");
  f->win = studio_test_window_new ();
  f->ws = studio_window_get_workspace (f->win);
  f->page = STUDIO_QUANT_PAGE (studio_window_get_page (f->win, "quantize"));
  if (f->model == NULL)
    return;
  g_signal_connect (f->ws, "error", G_CALLBACK (studio_test_fail_on_error), NULL);
  studio_test_open_model (f->win, f->model);
}

static void
teardown (Fixture *f, gconstpointer data)
{
  g_signal_handlers_disconnect_by_func (f->ws, studio_test_fail_on_error, NULL);
  studio_test_window_destroy (f->win);
  g_free (f->model);
}

static void
quantize (Fixture *f)
{
  gtk_widget_activate_action (GTK_WIDGET (f->page), "panel.quantize", NULL);
  g_assert_true (studio_quant_page_is_busy (f->page));
  WAIT_UNTIL (!studio_quant_page_is_busy (f->page), 120000);
}

static void
assert_loads (const char *dir)
{
  SutraModel *m = NULL;
  SutraError err = { 0 };

  test_assert_ok (sutra_model_load (dir, &m, &err), &err);
  sutra_model_free (m);
}

static void
test_int8 (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL;

  if (f->model == NULL)
    return;
  out = studio_test_path ("q-int8");
  studio_quant_page_set_options (f->page, 4, 1, NULL, out);
  quantize (f);
  g_assert_cmpuint (studio_quant_page_get_report_rows (f->page), >=, 4);
  assert_loads (out);
  /* the open model is untouched: quantization ran on its own copy */
  g_assert_false (studio_workspace_get_model (f->ws) == NULL);
}

static void
test_awq_with_report (Fixture *f, gconstpointer data)
{
  g_autofree char *out = NULL, *calib = NULL;
  GString *text = g_string_new (NULL);
  guint rows_without;

  if (f->model == NULL)
    return;
  for (guint i = 0; i < 80; i++)
    g_string_append_printf (text, "The river runs past stone number %u under a green light. ", i);
  calib = studio_test_path ("calib.txt");
  g_assert_true (g_file_set_contents (calib, text->str, text->len, NULL));
  g_string_free (text, TRUE);
  out = studio_test_path ("q-awq");
  studio_quant_page_set_options (f->page, 2, 0, calib, out);
  quantize (f);
  rows_without = 4;
  /* perplexity, KL and top-1 rows on top of the size rows */
  g_assert_cmpuint (studio_quant_page_get_report_rows (f->page), >=, rows_without + 3);
  assert_loads (out);
}

static void
count_error (StudioWorkspace *ws, const GError *error, char **last)
{
  g_free (*last);
  *last = g_strdup (error->message);
}

static void
test_awq_needs_calibration (Fixture *f, gconstpointer data)
{
  g_autofree char *message = NULL;

  if (f->model == NULL)
    return;
  studio_quant_page_set_options (f->page, 2, 0, NULL, NULL);
  g_signal_handlers_disconnect_by_func (f->ws, studio_test_fail_on_error, NULL);
  g_signal_connect (f->ws, "error", G_CALLBACK (count_error), &message);
  gtk_widget_activate_action (GTK_WIDGET (f->page), "panel.quantize", NULL);
  g_assert_nonnull (message);
  g_assert_nonnull (strstr (message, "calibration"));
  g_assert_false (studio_quant_page_is_busy (f->page));
  g_signal_handlers_disconnect_by_data (f->ws, &message);
  g_signal_connect (f->ws, "error", G_CALLBACK (studio_test_fail_on_error), NULL);
}

int
main (int argc, char **argv)
{
  int rc;

  studio_test_init (&argc, &argv);
  g_test_add ("/ui/quant/int8", Fixture, NULL, setup, test_int8, teardown);
  g_test_add ("/ui/quant/awq-with-report", Fixture, NULL, setup, test_awq_with_report, teardown);
  g_test_add ("/ui/quant/awq-needs-calibration", Fixture, NULL, setup, test_awq_needs_calibration,
              teardown);
  rc = g_test_run ();
  studio_test_cleanup ();
  return rc;
}
