/* studio-loss-chart.h: the live training chart (STYLE.md section 9).
 *
 * Draws a StudioLossSeries with cairo through gtk_snapshot_append_cairo: raw and smoothed
 * training loss and eval loss in the main panel; learning rate, gradient norm and tokens/s
 * each in a strip below it when switched on. Linear or log y scale, a hover read-out of the
 * nearest step, and export to PNG or SVG through cairo surfaces (the same drawing code).
 * At most one point per pixel column is drawn: studio_chart_decimate averages the points
 * that fall into one column. The data-to-pixel mapping is the pure StudioChartMap below. */
#pragma once

#include <gtk/gtk.h>

#include "studio-loss-series.h"

G_BEGIN_DECLS

/* ---- the pure mapping (unit-tested) ---- */
typedef struct {
  double x_min, x_max;           /* data range along x (steps) */
  double y_min, y_max;           /* data range along y; y_min > 0 when log_y */
  gboolean log_y;
  double left, top, width, height;  /* plot rectangle, pixels */
} StudioChartMap;

/* Fills m; degenerate ranges are widened (x by one step, y around the value; log ranges
 * clamp y_min to a positive value) so that every mapping below is finite. */
void   studio_chart_map_init (StudioChartMap *m,
                              double x_min, double x_max, double y_min, double y_max,
                              gboolean log_y,
                              double left, double top, double width, double height);
double studio_chart_map_x    (const StudioChartMap *m, double x);
double studio_chart_map_y    (const StudioChartMap *m, double y);   /* larger y = smaller pixel */
double studio_chart_unmap_x  (const StudioChartMap *m, double px);
double studio_chart_unmap_y  (const StudioChartMap *m, double py);
/* Maps the n points (x[i], y[i]) and keeps at most one per pixel column of the plot: the
 * mean position of the finite points in that column. Writes to px/py (n entries available)
 * and returns how many were written (<= ceil (m->width), in increasing x). */
guint  studio_chart_decimate (const StudioChartMap *m, const double *x, const double *y, guint n,
                              double *px, double *py);
/* Up to max_ticks "nice" tick values (1, 2, 5 x 10^k steps; decades on a log scale) inside
 * [lo, hi]; returns the count. */
guint  studio_chart_ticks    (double lo, double hi, gboolean log_y, guint max_ticks, double *out);
/* The y range to show for values in [lo, hi]: padded by 5% (linear) or a factor (log). */
void   studio_chart_pad_range (double *lo, double *hi, gboolean log_y);

/* ---- the widget ---- */
#define STUDIO_TYPE_LOSS_CHART (studio_loss_chart_get_type ())
G_DECLARE_FINAL_TYPE (StudioLossChart, studio_loss_chart, STUDIO, LOSS_CHART, GtkWidget)

GtkWidget        *studio_loss_chart_new        (void);
void              studio_loss_chart_set_series (StudioLossChart *self, StudioLossSeries *series);
StudioLossSeries *studio_loss_chart_get_series (StudioLossChart *self);
/* The main panel's mapping at the current size (FALSE before the first allocation or when
 * the series is empty). */
gboolean          studio_loss_chart_get_map    (StudioLossChart *self, StudioChartMap *map);
/* The hover read-out for the step nearest to `step` ("step 12  loss 2.31  ..."); NULL when
 * the series is empty. */
char             *studio_loss_chart_readout    (StudioLossChart *self, double step);
/* Hover at a widget x coordinate (what the motion controller does); px < 0 clears it. */
void              studio_loss_chart_set_hover  (StudioLossChart *self, double px);
/* Writes the chart at width x height to a .png or .svg file (chosen by the extension). */
gboolean          studio_loss_chart_export     (StudioLossChart *self, const char *path,
                                                int width, int height, GError **error);

G_END_DECLS
