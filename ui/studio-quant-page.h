/* studio-quant-page.h: the Quantize page: method (NF4, INT4 RTN/AWQ/GPTQ, INT8), group size,
 * calibration text, progress and cancel, the quality report (size, bits per weight,
 * perplexity before and after, KL divergence) and where the quantized model is saved. */
#pragma once

#include <adwaita.h>

#include "studio-workspace.h"

G_BEGIN_DECLS

#define STUDIO_TYPE_QUANT_PAGE (studio_quant_page_get_type ())
G_DECLARE_FINAL_TYPE (StudioQuantPage, studio_quant_page, STUDIO, QUANT_PAGE, AdwBin)

void     studio_quant_page_set_workspace (StudioQuantPage *self, StudioWorkspace *workspace);
/* What panel.quantize does. */
gboolean studio_quant_page_start         (StudioQuantPage *self, GError **error);
gboolean studio_quant_page_is_busy       (StudioQuantPage *self);
/* Rows of the last report ("Size", "3.1 MB → 0.9 MB", ...), for tests; NULL before one. */
guint    studio_quant_page_get_report_rows (StudioQuantPage *self);

G_END_DECLS
