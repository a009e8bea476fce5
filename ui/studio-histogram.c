/* studio-histogram.c: token-length histogram. */
#define G_LOG_DOMAIN "studio"

#include "studio-histogram.h"

#define MAX_BINS 24

struct _StudioHistogram
{
  GtkWidget parent_instance;

  /* Owned */
  guint counts[MAX_BINS];
  guint n_bins;
  int lo, hi, width, limit;
  guint total;
};

G_DEFINE_FINAL_TYPE (StudioHistogram, studio_histogram, GTK_TYPE_WIDGET)

int
studio_histogram_bin (const int *values, guint n, guint n_bins, guint *counts, int *lo, int *hi)
{
  int w;

  memset (counts, 0, n_bins * sizeof *counts);
  if (n == 0)
    {
      *lo = *hi = 0;
      return 1;
    }
  *lo = *hi = values[0];
  for (guint i = 1; i < n; i++)
    *lo = MIN (*lo, values[i]), *hi = MAX (*hi, values[i]);
  w = (*hi - *lo + 1 + (int) n_bins - 1) / (int) n_bins;
  w = MAX (w, 1);
  for (guint i = 0; i < n; i++)
    counts[MIN ((guint) ((values[i] - *lo) / w), n_bins - 1)]++;
  return w;
}

void
studio_histogram_set_values (StudioHistogram *self, const int *values, guint n, int limit)
{
  int lo, hi;

  self->n_bins = MAX_BINS;
  self->width = studio_histogram_bin (values, n, MAX_BINS, self->counts, &lo, &hi);
  /* Fewer, wider bars when the lengths span fewer integers than bins. */
  while (self->n_bins > 1 && (guint) ((hi - lo) / self->width + 1) < self->n_bins)
    self->n_bins--;
  self->lo = lo;
  self->hi = hi;
  self->total = n;
  self->limit = limit;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
studio_histogram_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  StudioHistogram *self = STUDIO_HISTOGRAM (widget);
  int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  double left = 8, right = 8, top = 8, bottom = 22;
  double pw = width - left - right, ph = height - top - bottom;
  guint max = 1;
  GdkRGBA fg;
  cairo_t *cr;
  PangoLayout *layout;
  char buf[64];
  int tw, th;

  if (width <= 0 || height <= 0)
    return;
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &fg);
  G_GNUC_END_IGNORE_DEPRECATIONS
  cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  layout = gtk_widget_create_pango_layout (widget, NULL);

  if (self->total == 0)
    {
      pango_layout_set_text (layout, "No examples", -1);
      pango_layout_get_pixel_size (layout, &tw, &th);
      cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.5);
      cairo_move_to (cr, (width - tw) / 2.0, (height - th) / 2.0);
      pango_cairo_show_layout (cr, layout);
      goto out;
    }
  for (guint i = 0; i < self->n_bins; i++)
    max = MAX (max, self->counts[i]);
  for (guint i = 0; i < self->n_bins; i++)
    {
      double bw = pw / self->n_bins;
      double bh = ph * self->counts[i] / max;
      gboolean over = self->limit > 0 && self->lo + (int) i * self->width >= self->limit;

      /* Bins past the sequence length are truncated examples: orange instead of blue. */
      if (over)
        cairo_set_source_rgba (cr, 0.90, 0.38, 0.0, 0.85);
      else
        cairo_set_source_rgba (cr, 0.21, 0.52, 0.89, 0.85);
      cairo_rectangle (cr, left + i * bw + 1, top + ph - bh, MAX (bw - 2, 1), bh);
      cairo_fill (cr);
    }
  cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.35);
  cairo_set_line_width (cr, 1);
  cairo_move_to (cr, left, top + ph + 0.5);
  cairo_line_to (cr, left + pw, top + ph + 0.5);
  cairo_stroke (cr);

  cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.7);
  g_snprintf (buf, sizeof buf, "%d", self->lo);
  pango_layout_set_text (layout, buf, -1);
  cairo_move_to (cr, left, top + ph + 3);
  pango_cairo_show_layout (cr, layout);
  g_snprintf (buf, sizeof buf, "%d tokens", self->lo + (int) self->n_bins * self->width - 1);
  pango_layout_set_text (layout, buf, -1);
  pango_layout_get_pixel_size (layout, &tw, &th);
  cairo_move_to (cr, left + pw - tw, top + ph + 3);
  pango_cairo_show_layout (cr, layout);
  g_snprintf (buf, sizeof buf, "max %u", max);
  pango_layout_set_text (layout, buf, -1);
  pango_layout_get_pixel_size (layout, &tw, &th);
  cairo_move_to (cr, left + pw - tw, top);
  pango_cairo_show_layout (cr, layout);
out:
  g_object_unref (layout);
  cairo_destroy (cr);
}

static void
studio_histogram_measure (GtkWidget *widget, GtkOrientation orientation, int for_size,
                          int *minimum, int *natural, int *min_baseline, int *nat_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 160 : 90;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 360 : 120;
}

static void
studio_histogram_class_init (StudioHistogramClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  widget_class->snapshot = studio_histogram_snapshot;
  widget_class->measure = studio_histogram_measure;
  gtk_widget_class_set_css_name (widget_class, "histogram");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
studio_histogram_init (StudioHistogram *self)
{
}

GtkWidget *
studio_histogram_new (void)
{
  return g_object_new (STUDIO_TYPE_HISTOGRAM, NULL);
}
