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
/* What the rows and file dialogs set: method 0 NF4, 1 INT4, 2 AWQ, 3 GPTQ, 4 INT8; group 0/1/2
 * = 32/64/128; calibration text (or NULL); output folder (NULL keeps the default). */
void     studio_quant_page_set_options   (StudioQuantPage *self, guint method, guint group,
                                          const char *calibration, const char *output);
/* Rows in the last quality report (0 before one). */
guint    studio_quant_page_get_report_rows (StudioQuantPage *self);

G_END_DECLS
