/* test-ui-chart.c: the loss chart: its pure data-to-pixel mapping, decimation, ticks, the
 * series (smoothing, resumed runs), the hover read-out and PNG/SVG export of the widget. */
#include <math.h>

#include "studio-loss-chart.h"
#include "studio-test.h"
#include "sutra-fsutil.h"

#define PIXEL_TOL 1e-9
#define VALUE_REL_TOL 1e-12

static void
test_map_linear (void)
{
  StudioChartMap m;

  studio_chart_map_init (&m, 0, 100, 1, 3, FALSE, 50, 10, 400, 200);
  /* corners: x range -> [left, left+width], y range -> [top+height, top] (up is smaller) */
  g_assert_cmpfloat_with_epsilon (studio_chart_map_x (&m, 0), 50, PIXEL_TOL);
  g_assert_cmpfloat_with_epsilon (studio_chart_map_x (&m, 100), 450, PIXEL_TOL);
  g_assert_cmpfloat_with_epsilon (studio_chart_map_y (&m, 1), 210, PIXEL_TOL);
  g_assert_cmpfloat_with_epsilon (studio_chart_map_y (&m, 3), 10, PIXEL_TOL);
  g_assert_cmpfloat_with_epsilon (studio_chart_map_y (&m, 2), 110, PIXEL_TOL);
  g_assert_cmpfloat_with_epsilon (studio_chart_map_x (&m, 25), 150, PIXEL_TOL);
  /* the inverse round-trips anywhere, also outside the range */
  for (double v = -50; v <= 150; v += 7.3)
    {
      g_assert_cmpfloat_with_epsilon (studio_chart_unmap_x (&m, studio_chart_map_x (&m, v)), v, 1e-9);
      g_assert_cmpfloat_with_epsilon (studio_chart_unmap_y (&m, studio_chart_map_y (&m, v / 10)),
                                      v / 10, 1e-9);
    }
}

static void
test_map_log (void)
{
  StudioChartMap m;

  studio_chart_map_init (&m, 1, 11, 0.01, 100, TRUE, 0, 0, 100, 400);
  /* four decades over 400 px: 100 px per decade, 0.01 at the bottom */
  g_assert_cmpfloat_with_epsilon (studio_chart_map_y (&m, 0.01), 400, PIXEL_TOL);
  g_assert_cmpfloat_with_epsilon (studio_chart_map_y (&m, 0.1), 300, 1e-9);
  g_assert_cmpfloat_with_epsilon (studio_chart_map_y (&m, 1), 200, 1e-9);
  g_assert_cmpfloat_with_epsilon (studio_chart_map_y (&m, 100), 0, 1e-9);
  g_assert_cmpfloat_with_epsilon (studio_chart_unmap_y (&m, 250), pow (10, -0.5), 1e-12);
  /* non-positive values clamp to the bottom instead of producing NaN */
  g_assert_cmpfloat_with_epsilon (studio_chart_map_y (&m, 0), 400, PIXEL_TOL);
  g_assert_cmpfloat_with_epsilon (studio_chart_map_y (&m, -3), 400, PIXEL_TOL);
}

static void
test_map_degenerate (void)
{
  StudioChartMap m;

  /* one point: a zero-width x range and a zero-height y range must still map finitely */
  studio_chart_map_init (&m, 5, 5, 2.5, 2.5, FALSE, 0, 0, 300, 100);
  g_assert_true (isfinite (studio_chart_map_x (&m, 5)));
  g_assert_true (isfinite (studio_chart_map_y (&m, 2.5)));
  g_assert_cmpfloat (studio_chart_map_y (&m, 2.5), >, 0);
  g_assert_cmpfloat (studio_chart_map_y (&m, 2.5), <, 100);
  studio_chart_map_init (&m, 0, 10, 0, 0, TRUE, 0, 0, 300, 100);
  g_assert_cmpfloat (m.y_min, >, 0);
  g_assert_true (isfinite (studio_chart_map_y (&m, 1)));
  studio_chart_map_init (&m, NAN, INFINITY, NAN, 1, FALSE, 0, 0, 300, 100);
  g_assert_true (isfinite (studio_chart_map_x (&m, 0.5)));
}

static void
test_decimate (void)
{
  const guint n = 100000;
  g_autofree double *x = g_new (double, n), *y = g_new (double, n);
  g_autofree double *px = g_new (double, n), *py = g_new (double, n);
  StudioChartMap m;
  guint k;

  for (guint i = 0; i < n; i++)
    {
      x[i] = i;
      y[i] = 3.0 * exp (-(double) i / n) + 0.1 * sin (i);
    }
  y[17] = NAN;   /* a diverged step is skipped, not drawn */
  studio_chart_map_init (&m, 0, n - 1, 0, 4, FALSE, 40, 0, 300.5, 200);
  k = studio_chart_decimate (&m, x, y, n, px, py);
  /* at most one point per pixel column, and one per column when every column has data */
  g_assert_cmpuint (k, <=, (guint) ceil (m.width));
  g_assert_cmpuint (k, >=, (guint) floor (m.width) - 1);
  for (guint i = 0; i < k; i++)
    {
      g_assert_true (isfinite (px[i]) && isfinite (py[i]));
      g_assert_cmpfloat (px[i], >=, m.left);
      g_assert_cmpfloat (px[i], <=, m.left + m.width);
      if (i)
        {
          g_assert_cmpfloat (px[i], >, px[i - 1]);
          /* distinct columns */
          g_assert_cmpint ((int) floor (px[i] - m.left), >, (int) floor (px[i - 1] - m.left));
        }
    }
  /* fewer points than columns: all kept exactly */
  studio_chart_map_init (&m, 0, 4, 0, 4, FALSE, 40, 0, 300.5, 200);
  k = studio_chart_decimate (&m, x, y, 5, px, py);
  g_assert_cmpuint (k, ==, 5);
  for (guint i = 0; i < 5; i++)
    g_assert_cmpfloat_with_epsilon (py[i], studio_chart_map_y (&m, y[i]), PIXEL_TOL);
  /* log scale drops non-positive values */
  y[0] = 0;
  y[1] = -1;
  studio_chart_map_init (&m, 0, 4, 0.1, 4, TRUE, 0, 0, 300, 200);
  k = studio_chart_decimate (&m, x, y, 5, px, py);
  g_assert_cmpuint (k, ==, 3);
}

static void
test_ticks (void)
{
  double t[32];
  guint n = studio_chart_ticks (0.13, 2.9, FALSE, 6, t);

  g_assert_cmpuint (n, >=, 2);
  g_assert_cmpuint (n, <=, 6);
  for (guint i = 0; i < n; i++)
    {
      double step = t[1] - t[0];
      double mant = step / pow (10, floor (log10 (step) + 1e-9));
      g_assert_cmpfloat (t[i], >=, 0.13 - 1e-12);
      g_assert_cmpfloat (t[i], <=, 2.9 + 1e-12);
      /* evenly spaced by a nice step: 1, 2 or 5 x 10^k */
      if (i)
        g_assert_cmpfloat_with_epsilon (t[i] - t[i - 1], step, 1e-9);
      g_assert_true (fabs (mant - 1) < 1e-9 || fabs (mant - 2) < 1e-9 || fabs (mant - 5) < 1e-9);
    }
  n = studio_chart_ticks (0.05, 20, TRUE, 12, t);
  g_assert_cmpuint (n, >=, 3);
  for (guint i = 0; i < n; i++)
    {
      double mant = t[i] / pow (10, floor (log10 (t[i]) + 1e-9));
      g_assert_true (fabs (mant - 1) < 1e-9 || fabs (mant - 2) < 1e-9 || fabs (mant - 5) < 1e-9);
    }
  /* inside one decade the log axis falls back to linear ticks */
  n = studio_chart_ticks (2.1, 2.9, TRUE, 5, t);
  g_assert_cmpuint (n, >=, 2);
  g_assert_cmpuint (studio_chart_ticks (1, 1, FALSE, 5, t), ==, 0);
}

static void
test_series_smoothing (void)
{
  g_autoptr(StudioLossSeries) s = studio_loss_series_new ();
  StudioLossPoint pts[50];
  const StudioLossPoint *got;
  guint n;
  double ema = 0;

  for (guint i = 0; i < 50; i++)
    pts[i] = (StudioLossPoint) { .step = i + 1, .loss = 5.0 - 0.05 * i + (i % 2 ? 0.3 : -0.3) };
  studio_loss_series_append (s, pts, 20);
  studio_loss_series_append (s, pts + 20, 30);
  got = studio_loss_series_get_points (s, &n);
  g_assert_cmpuint (n, ==, 50);
  for (guint i = 0; i < n; i++)
    {
      /* TensorBoard's debiased EMA, recomputed here from its definition */
      ema = 0.9 * ema + 0.1 * pts[i].loss;
      g_assert_cmpfloat_with_epsilon (got[i].smoothed, ema / (1 - pow (0.9, i + 1)),
                                      VALUE_REL_TOL * 10);
    }
  /* the first smoothed value is the first loss (no pull towards zero) */
  g_assert_cmpfloat_with_epsilon (got[0].smoothed, pts[0].loss, 1e-12);
  /* smoothing 0 shows the raw loss */
  studio_loss_series_set_smoothing (s, 0);
  got = studio_loss_series_get_points (s, &n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpfloat (got[i].smoothed, ==, got[i].loss);
  g_assert_cmpint (studio_loss_series_nearest (s, 10.4), ==, 9);
  g_assert_cmpint (studio_loss_series_nearest (s, 10.6), ==, 10);
  g_assert_cmpint (studio_loss_series_nearest (s, -5), ==, 0);
  g_assert_cmpint (studio_loss_series_nearest (s, 1e9), ==, 49);
}

static void
count_changed (guint *count)
{
  (*count)++;
}

static void
test_series_resume_replaces (void)
{
  g_autoptr(StudioLossSeries) s = studio_loss_series_new ();
  StudioLossPoint pts[10];
  const StudioLossPoint *got;
  guint n, changed = 0;

  g_signal_connect_swapped (s, "changed", G_CALLBACK (count_changed), &changed);
  for (guint i = 0; i < 10; i++)
    pts[i] = (StudioLossPoint) { .step = i + 1, .loss = 10 - i };
  studio_loss_series_append (s, pts, 10);
  /* a run resumed from step 6 repeats steps 7.. with new values: they replace the old ones */
  for (guint i = 0; i < 3; i++)
    pts[i] = (StudioLossPoint) { .step = 7 + i, .loss = 100 + i };
  studio_loss_series_append (s, pts, 3);
  got = studio_loss_series_get_points (s, &n);
  g_assert_cmpuint (n, ==, 9);
  g_assert_cmpfloat (got[5].step, ==, 6);
  g_assert_cmpfloat (got[6].loss, ==, 100);
  g_assert_cmpfloat (got[8].step, ==, 9);
  studio_loss_series_append_eval (s, 5, 2.5);
  studio_loss_series_append_eval (s, 8, 2.0);
  g_assert_nonnull (studio_loss_series_eval_at (s, 8));
  g_assert_null (studio_loss_series_eval_at (s, 7));
  /* one notification per appended batch, not per point */
  g_assert_cmpuint (changed, ==, 4);
}

static gboolean
png_size (const char *path, int *w, int *h)
{
  cairo_surface_t *s = cairo_image_surface_create_from_png (path);
  gboolean ok = cairo_surface_status (s) == CAIRO_STATUS_SUCCESS;

  *w = cairo_image_surface_get_width (s);
  *h = cairo_image_surface_get_height (s);
  cairo_surface_destroy (s);
  return ok;
}

/* Counts pixels that are neither white nor grey: the coloured curves. */
static guint
coloured_pixels (const char *path)
{
  cairo_surface_t *s = cairo_image_surface_create_from_png (path);
  int w = cairo_image_surface_get_width (s), h = cairo_image_surface_get_height (s);
  int stride = cairo_image_surface_get_stride (s);
  const guint8 *d = cairo_image_surface_get_data (s);
  guint count = 0;

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      {
        const guint8 *p = d + y * stride + 4 * x;   /* B G R A */
        int mx = MAX (p[0], MAX (p[1], p[2])), mn = MIN (p[0], MIN (p[1], p[2]));
        count += mx - mn > 60;
      }
  cairo_surface_destroy (s);
  return count;
}

static void
test_widget_export_and_readout (void)
{
  g_autoptr(StudioLossSeries) s = studio_loss_series_new ();
  GtkWidget *win = gtk_window_new ();
  GtkWidget *chart = studio_loss_chart_new ();
  StudioLossPoint pts[400];
  g_autofree char *png = studio_test_path ("chart.png");
  g_autofree char *png_empty = studio_test_path ("empty.png");
  g_autofree char *svg = studio_test_path ("chart.svg");
  g_autofree char *svg_text = NULL;
  g_autofree char *readout = NULL;
  g_autoptr(GError) error = NULL;
  StudioChartMap map;
  int w, h;

  g_object_ref_sink (chart);
  gtk_window_set_child (GTK_WINDOW (win), chart);
  gtk_window_set_default_size (GTK_WINDOW (win), 700, 420);
  gtk_window_present (GTK_WINDOW (win));

  /* empty: the chart says so instead of drawing axes over nothing */
  g_assert_true (studio_loss_chart_export (STUDIO_LOSS_CHART (chart), png_empty, 600, 300, &error));
  g_assert_cmpuint (coloured_pixels (png_empty), ==, 0);
  g_assert_null (studio_loss_chart_readout (STUDIO_LOSS_CHART (chart), 1));

  for (guint i = 0; i < 400; i++)
    pts[i] = (StudioLossPoint) { .step = i + 1, .loss = 4 * exp (-(double) i / 120.0) + 0.2 * ((i * 7919) % 13) / 13.0,
                                 .lr = 1e-3 * (i < 20 ? i / 20.0 : 1), .grad_norm = 1 + (i % 5),
                                 .tokens_per_s = 800 + i };
  studio_loss_series_append (s, pts, 400);
  studio_loss_series_append_eval (s, 200, 1.5);
  studio_loss_chart_set_series (STUDIO_LOSS_CHART (chart), s);
  g_object_set (chart, "show-lr", TRUE, "show-grad-norm", TRUE, NULL);
  WAIT_UNTIL (gtk_widget_get_width (chart) > 0, 5000);
  studio_test_spin (100);

  g_assert_true (studio_loss_chart_get_map (STUDIO_LOSS_CHART (chart), &map));
  g_assert_cmpfloat (map.x_min, ==, 1);
  g_assert_cmpfloat (map.x_max, ==, 400);
  g_assert_cmpfloat (map.width, <, gtk_widget_get_width (chart));

  /* hover over step 200 shows its values, the eval loss and the metrics switched on */
  studio_loss_chart_set_hover (STUDIO_LOSS_CHART (chart), studio_chart_map_x (&map, 200));
  readout = studio_loss_chart_readout (STUDIO_LOSS_CHART (chart), 200);
  g_assert_true (g_str_has_prefix (readout, "step 200\nloss "));
  g_assert_nonnull (strstr (readout, "eval loss 1.5"));
  g_assert_nonnull (strstr (readout, "learning rate 0.001"));
  g_assert_nonnull (strstr (readout, "grad norm"));
  g_assert_null (strstr (readout, "tokens/s"));
  studio_test_spin (50);

  g_assert_true (studio_loss_chart_export (STUDIO_LOSS_CHART (chart), png, 900, 500, &error));
  g_assert_no_error (error);
  g_assert_true (png_size (png, &w, &h));
  g_assert_cmpint (w, ==, 900);
  g_assert_cmpint (h, ==, 500);
  g_assert_cmpuint (coloured_pixels (png), >, 500);
  g_assert_true (studio_loss_chart_export (STUDIO_LOSS_CHART (chart), svg, 900, 500, &error));
  g_assert_true (g_file_get_contents (svg, &svg_text, NULL, NULL));
  g_assert_nonnull (strstr (svg_text, "<svg"));
  g_assert_nonnull (strstr (svg_text, "width=\"900"));

  /* log scale and every strip at once still draw (no NaN from the mapping) */
  g_object_set (chart, "log-scale", TRUE, "show-tokens-per-s", TRUE, NULL);
  g_assert_true (studio_loss_chart_export (STUDIO_LOSS_CHART (chart), png, 640, 480, &error));
  g_assert_cmpuint (coloured_pixels (png), >, 500);
  /* an unwritable path is an error, not a crash */
  g_assert_false (studio_loss_chart_export (STUDIO_LOSS_CHART (chart), "/nonexistent/dir/c.png",
                                            100, 100, &error));
  g_assert_nonnull (error);

  gtk_window_destroy (GTK_WINDOW (win));
  g_object_unref (chart);
}

int
main (int argc, char **argv)
{
  int rc;

  studio_test_init (&argc, &argv);
  g_test_add_func ("/ui/chart/map-linear", test_map_linear);
  g_test_add_func ("/ui/chart/map-log", test_map_log);
  g_test_add_func ("/ui/chart/map-degenerate", test_map_degenerate);
  g_test_add_func ("/ui/chart/decimate-one-point-per-column", test_decimate);
  g_test_add_func ("/ui/chart/ticks", test_ticks);
  g_test_add_func ("/ui/chart/series-smoothing", test_series_smoothing);
  g_test_add_func ("/ui/chart/series-resume-replaces", test_series_resume_replaces);
  g_test_add_func ("/ui/chart/widget-export-readout", test_widget_export_and_readout);
  rc = g_test_run ();
  studio_test_cleanup ();
  return rc;
}
