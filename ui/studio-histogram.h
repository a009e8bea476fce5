/* studio-histogram.h: a small cairo bar chart of token lengths (the Data page). */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define STUDIO_TYPE_HISTOGRAM (studio_histogram_get_type ())
G_DECLARE_FINAL_TYPE (StudioHistogram, studio_histogram, STUDIO, HISTOGRAM, GtkWidget)

GtkWidget *studio_histogram_new        (void);
/* Copies n values; bins them into up to 24 equal-width integer bins. limit (> 0) draws a
 * marker line there (the sequence length: longer examples are truncated). */
void       studio_histogram_set_values (StudioHistogram *self, const int *values, guint n, int limit);
/* Bins values into n_bins counts over [*lo, *hi] (filled in: min and max of the values); each
 * bin spans ceil((hi - lo + 1) / n_bins) integers. Returns the bin width. */
int        studio_histogram_bin        (const int *values, guint n, guint n_bins, guint *counts,
                                        int *lo, int *hi);

G_END_DECLS
