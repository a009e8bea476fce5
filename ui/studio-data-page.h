/* studio-data-page.h: the Data page: open a dataset and see how the engine reads it (row
 * shape, examples, token counts, a token-length histogram, a preview with the loss-carrying
 * tokens highlighted, skipped rows with line numbers) and set the validation split. */
#pragma once

#include <adwaita.h>

#include "studio-workspace.h"

G_BEGIN_DECLS

#define STUDIO_TYPE_DATA_PAGE (studio_data_page_get_type ())
G_DECLARE_FINAL_TYPE (StudioDataPage, studio_data_page, STUDIO, DATA_PAGE, AdwBin)

void      studio_data_page_set_workspace   (StudioDataPage *self, StudioWorkspace *workspace);
/* For tests: analysis in progress, examples found, the preview text (all, or loss only). */
gboolean  studio_data_page_is_busy         (StudioDataPage *self);
gsize     studio_data_page_get_n_examples  (StudioDataPage *self);
char     *studio_data_page_dup_preview_text (StudioDataPage *self, gboolean loss_only);

G_END_DECLS
