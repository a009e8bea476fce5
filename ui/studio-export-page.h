/* studio-export-page.h: the Export page: a PEFT adapter, a merged model (F32/F16/BF16) or a
 * GGUF file, written atomically by the engine with progress and cancel, then an optional
 * self-test that loads the result and answers one prompt. */
#pragma once

#include <adwaita.h>

#include "studio-workspace.h"

G_BEGIN_DECLS

#define STUDIO_TYPE_EXPORT_PAGE (studio_export_page_get_type ())
G_DECLARE_FINAL_TYPE (StudioExportPage, studio_export_page, STUDIO, EXPORT_PAGE, AdwBin)

void        studio_export_page_set_workspace (StudioExportPage *self, StudioWorkspace *workspace);
/* What panel.export does (tests call it directly). */
gboolean    studio_export_page_start         (StudioExportPage *self, GError **error);
gboolean    studio_export_page_is_busy       (StudioExportPage *self);
/* Output path (what the save dialog's response sets). */
void        studio_export_page_set_output    (StudioExportPage *self, const char *path);
/* kind: 0 PEFT, 1 merged, 2 GGUF; dtype (merged): 0 F32, 1 F16, 2 BF16. */
void        studio_export_page_set_kind      (StudioExportPage *self, guint kind, guint dtype);
/* The self-test's verdict (or why it did not run) of the last export, or NULL. */
const char *studio_export_page_get_selftest  (StudioExportPage *self);
/* The path written by the last successful export, or NULL. */
const char *studio_export_page_get_result    (StudioExportPage *self);

G_END_DECLS
