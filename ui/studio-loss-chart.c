/* studio-loss-chart.c: cairo drawing of the loss series, hover read-out, PNG/SVG export. */
#define G_LOG_DOMAIN "studio"

#include <cairo-svg.h>
#include <math.h>

#include "studio-loss-chart.h"

/* ---- pure mapping ---------------------------------------------------------------------- */

#define LOG_FLOOR 1e-12

static double
ty (const StudioChartMap *m, double y)
{
  if (!m->log_y)
    return y;
  return log10 (MAX (y, m->y_min));
}

void
studio_chart_map_init (StudioChartMap *m, double x_min, double x_max, double y_min, double y_max,
                       gboolean log_y, double left, double top, double width, double height)
{
  if (!isfinite (x_min) || !isfinite (x_max))
    x_min = 0, x_max = 1;
  if (x_max <= x_min)
    x_max = x_min + 1;
  if (!isfinite (y_min) || !isfinite (y_max))
    y_min = log_y ? 0.1 : 0, y_max = 1;
  if (log_y)
    {
      y_min = MAX (y_min, LOG_FLOOR);
      y_max = MAX (y_max, y_min);
      if (y_max <= y_min * 1.0001)
        y_min /= 2, y_max *= 2;
    }
  else if (y_max <= y_min)
    {
      double pad = fabs (y_min) > 0 ? fabs (y_min) * 0.1 : 0.5;
      y_min -= pad;
      y_max += pad;
    }
  m->x_min = x_min;
  m->x_max = x_max;
  m->y_min = y_min;
  m->y_max = y_max;
  m->log_y = log_y;
  m->left = left;
  m->top = top;
  m->width = MAX (width, 1);
  m->height = MAX (height, 1);
}

double
studio_chart_map_x (const StudioChartMap *m, double x)
{
  return m->left + (x - m->x_min) / (m->x_max - m->x_min) * m->width;
}

double
studio_chart_map_y (const StudioChartMap *m, double y)
{
  double t0 = ty (m, m->y_min), t1 = ty (m, m->y_max);
  return m->top + m->height - (ty (m, y) - t0) / (t1 - t0) * m->height;
}

double
studio_chart_unmap_x (const StudioChartMap *m, double px)
{
  return m->x_min + (px - m->left) / m->width * (m->x_max - m->x_min);
}

double
studio_chart_unmap_y (const StudioChartMap *m, double py)
{
  double t0 = ty (m, m->y_min), t1 = ty (m, m->y_max);
  double t = t0 + (m->top + m->height - py) / m->height * (t1 - t0);
  return m->log_y ? pow (10, t) : t;
}

guint
studio_chart_decimate (const StudioChartMap *m, const double *x, const double *y, guint n,
                       double *px, double *py)
{
  guint out = 0;
  long column = G_MINLONG;
  double sx = 0, sy = 0;
  guint count = 0;
  long last_col = (long) ceil (m->width) - 1;

  for (guint i = 0; i < n; i++)
    {
      double X, Y;
      long c;

      if (!isfinite (x[i]) || !isfinite (y[i]) || (m->log_y && y[i] <= 0))
        continue;
      X = studio_chart_map_x (m, x[i]);
      Y = studio_chart_map_y (m, y[i]);
      c = CLAMP ((long) floor (X - m->left), 0, last_col);
      if (c != column && count)
        {
          px[out] = sx / count;
          py[out] = sy / count;
          out++;
          sx = sy = 0;
          count = 0;
        }
      column = c;
      sx += X;
      sy += Y;
      count++;
    }
  if (count)
    {
      px[out] = sx / count;
      py[out] = sy / count;
      out++;
    }
  return out;
}

/* Ticks at mult x 10^d inside [lo, hi] for the multipliers given; returns the count (all of
 * them counted, at most max written). */
static guint
log_ticks (double lo, double hi, const double *mult, guint n_mult, guint max, double *out)
{
  int d0 = (int) floor (log10 (MAX (lo, LOG_FLOOR))), d1 = (int) ceil (log10 (hi));
  guint n = 0;

  for (int d = d0; d <= d1; d++)
    for (guint k = 0; k < n_mult; k++)
      {
        double v = mult[k] * pow (10, d);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
          {
            if (n < max)
              out[n] = v;
            n++;
          }
      }
  return n;
}

guint
studio_chart_ticks (double lo, double hi, gboolean log_y, guint max_ticks, double *out)
{
  static const double steps[] = { 1, 2, 5 };
  double range = hi - lo;
  guint n = 0;

  if (!(hi > lo) || max_ticks == 0)
    return 0;
  if (log_y)
    {
      static const double decades[] = { 1 }, nice[] = { 1, 2, 5 };
      /* Decades when they give at least two ticks, else 1-2-5 within the limit (a range of
       * less than a decade or two), else linear ticks, which always fit. */
      n = log_ticks (lo, hi, decades, 1, max_ticks, out);
      if (n >= 2 && n <= max_ticks)
        return n;
      /* Log ticks crowd the low end less than linear ones: allow a few more. */
      n = log_ticks (lo, hi, nice, 3, max_ticks + 2, out);
      if (n >= 2 && n <= max_ticks + 2)
        return n;
      n = 0;
    }
  /* The smallest 1-2-5 x 10^k step that gives at most max_ticks ticks. */
  for (int e = (int) floor (log10 (range)) - 2; e <= (int) ceil (log10 (range)) + 1; e++)
    for (guint k = 0; k < G_N_ELEMENTS (steps); k++)
      {
        double step = steps[k] * pow (10, e);
        double first = ceil (lo / step - 1e-9) * step;
        guint count = (guint) floor ((hi - first) / step + 1e-9) + 1;

        if (first > hi + step * 1e-9 || count > max_ticks)
          continue;
        for (n = 0; n < count; n++)
          {
            double v = first + n * step;
            out[n] = fabs (v) < step * 1e-9 ? 0 : v;
          }
        return n;
      }
  return 0;
}

void
studio_chart_pad_range (double *lo, double *hi, gboolean log_y)
{
  if (log_y)
    {
      *lo = MAX (*lo, LOG_FLOOR) / 1.15;
      *hi = MAX (*hi, *lo) * 1.15;
    }
  else
    {
      double pad = (*hi - *lo) * 0.05;
      if (pad <= 0)
        pad = fabs (*hi) > 0 ? fabs (*hi) * 0.05 : 0.5;
      *lo -= pad;
      *hi += pad;
    }
}

/* ---- the widget ------------------------------------------------------------------------ */

struct _StudioLossChart
{
  GtkWidget parent_instance;

  /* Owned */
  StudioLossSeries *series;
  gulong changed_id;
  double hover_px;              /* < 0: no hover */
  gboolean log_scale;
  gboolean show_raw, show_smoothed, show_eval;
  gboolean show_lr, show_grad_norm, show_tokens_per_s;
};

G_DEFINE_FINAL_TYPE (StudioLossChart, studio_loss_chart, GTK_TYPE_WIDGET)

enum {
  PROP_0,
  PROP_SERIES,
  PROP_LOG_SCALE,
  PROP_SHOW_RAW,
  PROP_SHOW_SMOOTHED,
  PROP_SHOW_EVAL,
  PROP_SHOW_LR,
  PROP_SHOW_GRAD_NORM,
  PROP_SHOW_TOKENS_PER_S,
  N_PROPS
};
static GParamSpec *properties[N_PROPS];

typedef enum { METRIC_LR, METRIC_GRAD_NORM, METRIC_TOKENS_PER_S, N_METRICS } Metric;

typedef struct { double r, g, b; } Rgb;

/* GNOME palette: blue for the loss, orange for eval, then green/purple/brown. */
static const Rgb color_loss = { 0.21, 0.52, 0.89 };
static const Rgb color_eval = { 0.90, 0.38, 0.00 };
static const Rgb color_metric[N_METRICS] = {
  { 0.18, 0.76, 0.49 }, { 0.57, 0.25, 0.67 }, { 0.60, 0.42, 0.27 },
};
static const char *const metric_names[N_METRICS] = { "learning rate", "grad norm", "tokens/s" };

#define MARGIN_LEFT   64.0
#define MARGIN_RIGHT  16.0
#define MARGIN_TOP    26.0   /* room for the legend */
#define MARGIN_BOTTOM 30.0
#define STRIP_GAP     12.0

typedef struct {
  cairo_t *cr;
  PangoFontDescription *font;
  Rgb fg;
  double width, height;
} Ctx;

static double
metric_value (const StudioLossPoint *p, Metric m)
{
  switch (m)
    {
    case METRIC_LR: return p->lr;
    case METRIC_GRAD_NORM: return p->grad_norm;
    case METRIC_TOKENS_PER_S: return p->tokens_per_s;
    default: return NAN;
    }
}

static gboolean
metric_shown (StudioLossChart *self, Metric m)
{
  return m == METRIC_LR ? self->show_lr
       : m == METRIC_GRAD_NORM ? self->show_grad_norm
       : self->show_tokens_per_s;
}

static void
format_value (char *buf, gsize size, double v)
{
  double a = fabs (v);

  if (v == 0)
    g_snprintf (buf, size, "0");
  else if (a >= 1e5 || a < 1e-3)
    g_snprintf (buf, size, "%.2g", v);
  else if (a >= 100)
    g_snprintf (buf, size, "%.0f", v);
  else if (a >= 10)
    g_snprintf (buf, size, "%.1f", v);
  else
    g_snprintf (buf, size, "%.3g", v);
}

static void
set_rgb (cairo_t *cr, Rgb c, double alpha)
{
  cairo_set_source_rgba (cr, c.r, c.g, c.b, alpha);
}

/* Draws text with its top-left (or, with align 1, its top-right; 0.5 centred) at x, y. */
static void
draw_text (Ctx *c, const char *text, double x, double y, double align, Rgb color, double alpha)
{
  PangoLayout *layout = pango_cairo_create_layout (c->cr);
  int w, h;

  pango_layout_set_font_description (layout, c->font);
  pango_layout_set_text (layout, text, -1);
  pango_layout_get_pixel_size (layout, &w, &h);
  set_rgb (c->cr, color, alpha);
  cairo_move_to (c->cr, x - align * w, y);
  pango_cairo_show_layout (c->cr, layout);
  g_object_unref (layout);
}

/* A label on a translucent box, readable over the curves. */
static void
draw_label_box (Ctx *c, const char *text, double x, double y, Rgb color)
{
  PangoLayout *layout = pango_cairo_create_layout (c->cr);
  int w, h;

  pango_layout_set_font_description (layout, c->font);
  pango_layout_set_text (layout, text, -1);
  pango_layout_get_pixel_size (layout, &w, &h);
  cairo_set_source_rgba (c->cr, 1 - c->fg.r, 1 - c->fg.g, 1 - c->fg.b, 0.8);
  cairo_rectangle (c->cr, x, y, w + 8, h + 2);
  cairo_fill (c->cr);
  set_rgb (c->cr, color, 1.0);
  cairo_move_to (c->cr, x + 4, y + 1);
  pango_cairo_show_layout (c->cr, layout);
  g_object_unref (layout);
}

static int
text_height (Ctx *c)
{
  PangoLayout *layout = pango_cairo_create_layout (c->cr);
  int w, h;

  pango_layout_set_font_description (layout, c->font);
  pango_layout_set_text (layout, "0", -1);
  pango_layout_get_pixel_size (layout, &w, &h);
  g_object_unref (layout);
  return h;
}

/* Range of the values the main panel shows (raw/smoothed/eval as switched on). */
static gboolean
loss_range (StudioLossChart *self, double *lo, double *hi)
{
  guint n, ne;
  const StudioLossPoint *p = studio_loss_series_get_points (self->series, &n);
  const StudioEvalPoint *e = studio_loss_series_get_evals (self->series, &ne);

  *lo = INFINITY;
  *hi = -INFINITY;
  for (guint i = 0; i < n; i++)
    {
      if (self->show_raw && isfinite (p[i].loss) && (!self->log_scale || p[i].loss > 0))
        *lo = MIN (*lo, p[i].loss), *hi = MAX (*hi, p[i].loss);
      if ((self->show_smoothed || !self->show_raw) && isfinite (p[i].smoothed) &&
          (!self->log_scale || p[i].smoothed > 0))
        *lo = MIN (*lo, p[i].smoothed), *hi = MAX (*hi, p[i].smoothed);
    }
  for (guint i = 0; self->show_eval && i < ne; i++)
    if (isfinite (e[i].loss) && (!self->log_scale || e[i].loss > 0))
      *lo = MIN (*lo, e[i].loss), *hi = MAX (*hi, e[i].loss);
  return *lo <= *hi;
}

static void
x_range (StudioLossChart *self, double *x0, double *x1)
{
  guint n, ne;
  const StudioLossPoint *p = studio_loss_series_get_points (self->series, &n);
  const StudioEvalPoint *e = studio_loss_series_get_evals (self->series, &ne);

  *x0 = n ? p[0].step : 0;
  *x1 = n ? p[n - 1].step : 1;
  if (ne)
    *x0 = MIN (*x0, e[0].step), *x1 = MAX (*x1, e[ne - 1].step);
}

static guint
n_strips (StudioLossChart *self)
{
  guint k = 0;
  for (Metric m = 0; m < N_METRICS; m++)
    k += metric_shown (self, m);
  return k;
}

/* Plot rectangles: the main panel, then one strip per metric shown. */
static void
layout_panels (StudioLossChart *self, double width, double height, double *main_h, double *strip_h)
{
  guint k = n_strips (self);
  double avail = height - MARGIN_TOP - MARGIN_BOTTOM;

  *strip_h = k ? MAX (40, avail * 0.2) : 0;
  *main_h = MAX (40, avail - k * (*strip_h + STRIP_GAP));
}

static gboolean
main_map (StudioLossChart *self, double width, double height, StudioChartMap *m)
{
  double lo, hi, x0, x1, main_h, strip_h;

  if (self->series == NULL || studio_loss_series_get_n_points (self->series) == 0)
    return FALSE;
  if (!loss_range (self, &lo, &hi))
    lo = 0.1, hi = 1;
  studio_chart_pad_range (&lo, &hi, self->log_scale);
  x_range (self, &x0, &x1);
  layout_panels (self, width, height, &main_h, &strip_h);
  studio_chart_map_init (m, x0, x1, lo, hi, self->log_scale, MARGIN_LEFT, MARGIN_TOP,
                         width - MARGIN_LEFT - MARGIN_RIGHT, main_h);
  return TRUE;
}

static void
draw_axes (Ctx *c, const StudioChartMap *m, gboolean x_labels, guint max_y_ticks)
{
  cairo_t *cr = c->cr;
  double ticks[64];
  guint nt = studio_chart_ticks (m->y_min, m->y_max, m->log_y, MIN (max_y_ticks, 64), ticks);
  int th = text_height (c);

  cairo_set_line_width (cr, 1);
  set_rgb (cr, c->fg, 0.12);
  for (guint i = 0; i < nt; i++)
    {
      double y = round (studio_chart_map_y (m, ticks[i])) + 0.5;
      char buf[32];

      cairo_move_to (cr, m->left, y);
      cairo_line_to (cr, m->left + m->width, y);
      cairo_stroke (cr);
      format_value (buf, sizeof buf, ticks[i]);
      draw_text (c, buf, m->left - 6, y - th / 2.0, 1, c->fg, 0.7);
      set_rgb (cr, c->fg, 0.12);
    }
  set_rgb (cr, c->fg, 0.35);
  cairo_rectangle (cr, round (m->left) + 0.5, round (m->top) + 0.5, round (m->width),
                   round (m->height));
  cairo_stroke (cr);

  if (x_labels)
    {
      guint nx = studio_chart_ticks (m->x_min, m->x_max, FALSE,
                                     CLAMP ((guint) (m->width / 90), 2, 12), ticks);
      for (guint i = 0; i < nx; i++)
        {
          double x = round (studio_chart_map_x (m, ticks[i])) + 0.5;
          char buf[32];

          set_rgb (cr, c->fg, 0.35);
          cairo_move_to (cr, x, m->top + m->height);
          cairo_line_to (cr, x, m->top + m->height + 4);
          cairo_stroke (cr);
          g_snprintf (buf, sizeof buf, "%.0f", ticks[i]);
          draw_text (c, buf, x, m->top + m->height + 6, 0.5, c->fg, 0.7);
        }
    }
}

static void
stroke_series (Ctx *c, const StudioChartMap *m, const double *x, const double *y, guint n,
               Rgb color, double alpha, double line_width)
{
  g_autofree double *px = g_new (double, MAX (n, 1));
  g_autofree double *py = g_new (double, MAX (n, 1));
  guint k = studio_chart_decimate (m, x, y, n, px, py);

  if (k == 0)
    return;
  cairo_save (c->cr);
  cairo_rectangle (c->cr, m->left, m->top, m->width, m->height);
  cairo_clip (c->cr);
  set_rgb (c->cr, color, alpha);
  cairo_set_line_width (c->cr, line_width);
  cairo_set_line_join (c->cr, CAIRO_LINE_JOIN_ROUND);
  if (k == 1)
    {
      cairo_arc (c->cr, px[0], py[0], line_width + 1, 0, 2 * G_PI);
      cairo_fill (c->cr);
    }
  else
    {
      cairo_move_to (c->cr, px[0], py[0]);
      for (guint i = 1; i < k; i++)
        cairo_line_to (c->cr, px[i], py[i]);
      cairo_stroke (c->cr);
    }
  cairo_restore (c->cr);
}

static void
draw_legend (StudioLossChart *self, Ctx *c)
{
  struct { const char *name; Rgb color; double alpha; gboolean on; } items[] = {
    { "loss", color_loss, 0.35, self->show_raw },
    { "smoothed", color_loss, 1.0, self->show_smoothed },
    { "eval loss", color_eval, 1.0, self->show_eval },
  };
  double x = MARGIN_LEFT;
  int th = text_height (c);

  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    {
      PangoLayout *layout;
      int w, h;

      if (!items[i].on)
        continue;
      set_rgb (c->cr, items[i].color, items[i].alpha);
      cairo_rectangle (c->cr, x, 4 + th / 2.0 - 2, 14, 4);
      cairo_fill (c->cr);
      draw_text (c, items[i].name, x + 18, 4, 0, c->fg, 0.8);
      layout = pango_cairo_create_layout (c->cr);
      pango_layout_set_font_description (layout, c->font);
      pango_layout_set_text (layout, items[i].name, -1);
      pango_layout_get_pixel_size (layout, &w, &h);
      g_object_unref (layout);
      x += 18 + w + 16;
    }
}

static char *
readout_for (StudioLossChart *self, int i)
{
  guint n;
  const StudioLossPoint *p = studio_loss_series_get_points (self->series, &n);
  const StudioEvalPoint *e = studio_loss_series_eval_at (self->series, p[i].step);
  GString *s = g_string_new (NULL);
  char buf[32];

  g_string_append_printf (s, "step %.0f", p[i].step);
  format_value (buf, sizeof buf, p[i].loss);
  g_string_append_printf (s, "\nloss %s", buf);
  format_value (buf, sizeof buf, p[i].smoothed);
  g_string_append_printf (s, "\nsmoothed %s", buf);
  if (e)
    {
      format_value (buf, sizeof buf, e->loss);
      g_string_append_printf (s, "\neval loss %s", buf);
    }
  for (Metric m = 0; m < N_METRICS; m++)
    if (metric_shown (self, m) && isfinite (metric_value (&p[i], m)))
      {
        format_value (buf, sizeof buf, metric_value (&p[i], m));
        g_string_append_printf (s, "\n%s %s", metric_names[m], buf);
      }
  return g_string_free (s, FALSE);
}

static void
draw_hover (StudioLossChart *self, Ctx *c, const StudioChartMap *m, double total_bottom)
{
  guint n;
  const StudioLossPoint *p = studio_loss_series_get_points (self->series, &n);
  int i = studio_loss_series_nearest (self->series, studio_chart_unmap_x (m, self->hover_px));
  g_autofree char *text = NULL;
  PangoLayout *layout;
  int w, h;
  double x, bx, by;

  if (i < 0)
    return;
  x = round (studio_chart_map_x (m, p[i].step)) + 0.5;
  set_rgb (c->cr, c->fg, 0.45);
  cairo_set_line_width (c->cr, 1);
  cairo_move_to (c->cr, x, m->top);
  cairo_line_to (c->cr, x, total_bottom);
  cairo_stroke (c->cr);
  if (isfinite (p[i].smoothed))
    {
      set_rgb (c->cr, color_loss, 1);
      cairo_arc (c->cr, x, studio_chart_map_y (m, p[i].smoothed), 3.5, 0, 2 * G_PI);
      cairo_fill (c->cr);
    }

  text = readout_for (self, i);
  layout = pango_cairo_create_layout (c->cr);
  pango_layout_set_font_description (layout, c->font);
  pango_layout_set_text (layout, text, -1);
  pango_layout_get_pixel_size (layout, &w, &h);
  /* Keep the box inside the plot, flipping to the left of the line near the right edge. */
  bx = x + 10 + w + 12 > m->left + m->width ? x - 10 - w - 12 : x + 10;
  by = m->top + 8;
  cairo_rectangle (c->cr, bx, by, w + 12, h + 8);
  cairo_set_source_rgba (c->cr, 1 - c->fg.r, 1 - c->fg.g, 1 - c->fg.b, 0.92);
  cairo_fill_preserve (c->cr);
  set_rgb (c->cr, c->fg, 0.3);
  cairo_stroke (c->cr);
  set_rgb (c->cr, c->fg, 0.9);
  cairo_move_to (c->cr, bx + 6, by + 4);
  pango_cairo_show_layout (c->cr, layout);
  g_object_unref (layout);
}

static void
draw_chart (StudioLossChart *self, Ctx *c)
{
  StudioChartMap m;
  guint n, ne;
  const StudioLossPoint *p;
  const StudioEvalPoint *e;
  g_autofree double *xs = NULL, *ys = NULL;
  double main_h, strip_h, y0, bottom;

  if (!main_map (self, c->width, c->height, &m))
    {
      int th = text_height (c);
      draw_text (c, "No training steps yet", c->width / 2, c->height / 2 - th, 0.5, c->fg, 0.55);
      draw_text (c, "The loss curve appears here as soon as training starts.", c->width / 2,
                 c->height / 2 + 2, 0.5, c->fg, 0.4);
      return;
    }
  p = studio_loss_series_get_points (self->series, &n);
  e = studio_loss_series_get_evals (self->series, &ne);
  xs = g_new (double, MAX (n, ne) + 1);
  ys = g_new (double, MAX (n, ne) + 1);
  layout_panels (self, c->width, c->height, &main_h, &strip_h);

  draw_legend (self, c);
  draw_axes (c, &m, n_strips (self) == 0, CLAMP ((guint) (m.height / 32), 2, 10));
  for (guint i = 0; i < n; i++)
    xs[i] = p[i].step;
  if (self->show_raw)
    {
      for (guint i = 0; i < n; i++)
        ys[i] = p[i].loss;
      stroke_series (c, &m, xs, ys, n, color_loss, 0.35, 1.0);
    }
  if (self->show_smoothed)
    {
      for (guint i = 0; i < n; i++)
        ys[i] = p[i].smoothed;
      stroke_series (c, &m, xs, ys, n, color_loss, 1.0, 2.0);
    }
  if (self->show_eval && ne)
    {
      for (guint i = 0; i < ne; i++)
        xs[i] = e[i].step, ys[i] = e[i].loss;
      stroke_series (c, &m, xs, ys, ne, color_eval, 1.0, 2.0);
      set_rgb (c->cr, color_eval, 1);
      for (guint i = 0; i < ne; i++)
        if (isfinite (e[i].loss) && (!m.log_y || e[i].loss > 0))
          {
            cairo_arc (c->cr, studio_chart_map_x (&m, e[i].step), studio_chart_map_y (&m, e[i].loss),
                       3, 0, 2 * G_PI);
            cairo_fill (c->cr);
          }
      for (guint i = 0; i < n; i++)
        xs[i] = p[i].step;
    }

  /* One strip per metric, each with its own linear y axis. */
  y0 = m.top + m.height + STRIP_GAP;
  bottom = m.top + m.height;
  for (Metric k = 0; k < N_METRICS; k++)
    {
      StudioChartMap sm;
      double lo = INFINITY, hi = -INFINITY;
      guint left_strips = 0;

      if (!metric_shown (self, k))
        continue;
      for (Metric j = k + 1; j < N_METRICS; j++)
        left_strips += metric_shown (self, j);
      for (guint i = 0; i < n; i++)
        {
          ys[i] = metric_value (&p[i], k);
          if (isfinite (ys[i]))
            lo = MIN (lo, ys[i]), hi = MAX (hi, ys[i]);
        }
      if (!(lo <= hi))
        lo = 0, hi = 1;
      studio_chart_pad_range (&lo, &hi, FALSE);
      if (lo < 0 && studio_loss_series_get_n_points (self->series) && hi > 0 && lo > -hi * 0.06)
        lo = 0;   /* rates and norms are never negative: keep the axis at 0 */
      studio_chart_map_init (&sm, m.x_min, m.x_max, lo, hi, FALSE, m.left, y0, m.width, strip_h);
      draw_axes (c, &sm, left_strips == 0, 3);
      stroke_series (c, &sm, xs, ys, n, color_metric[k], 1.0, 1.5);
      draw_label_box (c, metric_names[k], sm.left + 4, sm.top + 3, color_metric[k]);
      bottom = sm.top + sm.height;
      y0 += strip_h + STRIP_GAP;
    }
  if (self->hover_px >= m.left && self->hover_px <= m.left + m.width)
    draw_hover (self, c, &m, bottom);
}

static void
studio_loss_chart_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  StudioLossChart *self = STUDIO_LOSS_CHART (widget);
  int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  GdkRGBA fg;
  Ctx c;

  if (width <= 0 || height <= 0)
    return;
  /* The theme's text colour keeps the axes readable in dark mode. */
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &fg);
  G_GNUC_END_IGNORE_DEPRECATIONS
  c.cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  c.font = pango_font_description_copy (
    pango_context_get_font_description (gtk_widget_get_pango_context (widget)));
  pango_font_description_set_size (c.font, (int) (pango_font_description_get_size (c.font) * 0.85));
  c.fg = (Rgb) { fg.red, fg.green, fg.blue };
  c.width = width;
  c.height = height;
  draw_chart (self, &c);
  pango_font_description_free (c.font);
  cairo_destroy (c.cr);
}

gboolean
studio_loss_chart_export (StudioLossChart *self, const char *path, int width, int height,
                          GError **error)
{
  cairo_surface_t *surface;
  cairo_status_t status;
  gboolean svg = g_str_has_suffix (path, ".svg") || g_str_has_suffix (path, ".SVG");
  Ctx c;

  g_return_val_if_fail (STUDIO_IS_LOSS_CHART (self), FALSE);
  if (svg)
    surface = cairo_svg_surface_create (path, width, height);
  else
    surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, width, height);
  c.cr = cairo_create (surface);
  /* Exports are for documents: always dark text on white, whatever the window theme. */
  cairo_set_source_rgb (c.cr, 1, 1, 1);
  cairo_paint (c.cr);
  c.font = pango_font_description_from_string ("Sans 9");
  c.fg = (Rgb) { 0.15, 0.15, 0.15 };
  c.width = width;
  c.height = height;
  {
    double hover = self->hover_px;
    self->hover_px = -1;
    draw_chart (self, &c);
    self->hover_px = hover;
  }
  pango_font_description_free (c.font);
  cairo_destroy (c.cr);
  cairo_surface_flush (surface);
  if (svg)
    {
      cairo_surface_finish (surface);
      status = cairo_surface_status (surface);
    }
  else
    status = cairo_surface_write_to_png (surface, path);
  cairo_surface_destroy (surface);
  if (status != CAIRO_STATUS_SUCCESS)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Could not write %s: %s", path,
                   cairo_status_to_string (status));
      return FALSE;
    }
  return TRUE;
}

gboolean
studio_loss_chart_get_map (StudioLossChart *self, StudioChartMap *map)
{
  int width = gtk_widget_get_width (GTK_WIDGET (self));
  int height = gtk_widget_get_height (GTK_WIDGET (self));

  if (width <= 0 || height <= 0)
    return FALSE;
  return main_map (self, width, height, map);
}

char *
studio_loss_chart_readout (StudioLossChart *self, double step)
{
  int i;

  if (self->series == NULL)
    return NULL;
  i = studio_loss_series_nearest (self->series, step);
  return i < 0 ? NULL : readout_for (self, i);
}

void
studio_loss_chart_set_hover (StudioLossChart *self, double px)
{
  if (px == self->hover_px)
    return;
  self->hover_px = px;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_motion (GtkEventControllerMotion *motion, double x, double y, StudioLossChart *self)
{
  studio_loss_chart_set_hover (self, x);
}

static void
on_leave (GtkEventControllerMotion *motion, StudioLossChart *self)
{
  studio_loss_chart_set_hover (self, -1);
}

static void
on_series_changed (StudioLossSeries *series, StudioLossChart *self)
{
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
studio_loss_chart_set_series (StudioLossChart *self, StudioLossSeries *series)
{
  g_return_if_fail (STUDIO_IS_LOSS_CHART (self));
  if (self->series == series)
    return;
  if (self->series)
    g_clear_signal_handler (&self->changed_id, self->series);
  g_set_object (&self->series, series);
  if (series)
    self->changed_id = g_signal_connect (series, "changed", G_CALLBACK (on_series_changed), self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERIES]);
}

StudioLossSeries *
studio_loss_chart_get_series (StudioLossChart *self)
{
  return self->series;
}

static gboolean *
flag_for (StudioLossChart *self, guint prop_id)
{
  switch (prop_id)
    {
    case PROP_LOG_SCALE: return &self->log_scale;
    case PROP_SHOW_RAW: return &self->show_raw;
    case PROP_SHOW_SMOOTHED: return &self->show_smoothed;
    case PROP_SHOW_EVAL: return &self->show_eval;
    case PROP_SHOW_LR: return &self->show_lr;
    case PROP_SHOW_GRAD_NORM: return &self->show_grad_norm;
    case PROP_SHOW_TOKENS_PER_S: return &self->show_tokens_per_s;
    default: return NULL;
    }
}

static void
studio_loss_chart_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  StudioLossChart *self = STUDIO_LOSS_CHART (object);
  gboolean *flag = flag_for (self, prop_id);

  if (prop_id == PROP_SERIES)
    g_value_set_object (value, self->series);
  else if (flag)
    g_value_set_boolean (value, *flag);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
studio_loss_chart_set_property (GObject *object, guint prop_id, const GValue *value,
                                GParamSpec *pspec)
{
  StudioLossChart *self = STUDIO_LOSS_CHART (object);
  gboolean *flag = flag_for (self, prop_id);

  if (prop_id == PROP_SERIES)
    studio_loss_chart_set_series (self, g_value_get_object (value));
  else if (flag)
    {
      gboolean v = g_value_get_boolean (value);
      if (*flag == v)
        return;
      *flag = v;
      gtk_widget_queue_draw (GTK_WIDGET (self));
      g_object_notify_by_pspec (object, pspec);
    }
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
studio_loss_chart_dispose (GObject *object)
{
  StudioLossChart *self = STUDIO_LOSS_CHART (object);

  if (self->series)
    g_clear_signal_handler (&self->changed_id, self->series);
  g_clear_object (&self->series);
  G_OBJECT_CLASS (studio_loss_chart_parent_class)->dispose (object);
}

static void
studio_loss_chart_measure (GtkWidget *widget, GtkOrientation orientation, int for_size,
                           int *minimum, int *natural, int *min_baseline, int *nat_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 280 : 200;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 640 : 320;
}

static GParamSpec *
flag_pspec (const char *name, gboolean def)
{
  return g_param_spec_boolean (name, NULL, NULL, def,
                               G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
}

static void
studio_loss_chart_class_init (StudioLossChartClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = studio_loss_chart_dispose;
  object_class->get_property = studio_loss_chart_get_property;
  object_class->set_property = studio_loss_chart_set_property;
  widget_class->snapshot = studio_loss_chart_snapshot;
  widget_class->measure = studio_loss_chart_measure;

  properties[PROP_SERIES] =
    g_param_spec_object ("series", NULL, NULL, STUDIO_TYPE_LOSS_SERIES,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_LOG_SCALE] = flag_pspec ("log-scale", FALSE);
  properties[PROP_SHOW_RAW] = flag_pspec ("show-raw", TRUE);
  properties[PROP_SHOW_SMOOTHED] = flag_pspec ("show-smoothed", TRUE);
  properties[PROP_SHOW_EVAL] = flag_pspec ("show-eval", TRUE);
  properties[PROP_SHOW_LR] = flag_pspec ("show-lr", FALSE);
  properties[PROP_SHOW_GRAD_NORM] = flag_pspec ("show-grad-norm", FALSE);
  properties[PROP_SHOW_TOKENS_PER_S] = flag_pspec ("show-tokens-per-s", FALSE);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_css_name (widget_class, "losschart");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
studio_loss_chart_init (StudioLossChart *self)
{
  GtkEventController *motion = gtk_event_controller_motion_new ();

  self->hover_px = -1;
  self->show_raw = self->show_smoothed = self->show_eval = TRUE;
  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (motion, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), motion);
}

GtkWidget *
studio_loss_chart_new (void)
{
  return g_object_new (STUDIO_TYPE_LOSS_CHART, NULL);
}
