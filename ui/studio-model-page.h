/* studio-model-page.h: the Model page: open a folder, the Hugging Face cache, downloads with
 * progress and cancel, known small models, and what the open model is (architecture,
 * parameters, dtype, context, memory for LoRA/QLoRA/full at the Train page's settings). */
#pragma once

#include <adwaita.h>

#include "studio-job.h"
#include "studio-workspace.h"

G_BEGIN_DECLS

#define STUDIO_TYPE_MODEL_PAGE (studio_model_page_get_type ())
G_DECLARE_FINAL_TYPE (StudioModelPage, studio_model_page, STUDIO, MODEL_PAGE, AdwBin)

void studio_model_page_set_workspace (StudioModelPage *self, StudioWorkspace *workspace);
/* Starts downloading repo_id into the Hugging Face cache and opens it when done. */
void studio_model_page_download      (StudioModelPage *self, const char *repo_id);
/* The download job ("fraction", "text", "running"; panel.cancel-download cancels it). */
StudioJob *studio_model_page_get_download_job (StudioModelPage *self);

G_END_DECLS
