/* studio-train-page.h: the Train page: presets and the settings form (DESIGN.md section 5,
 * help texts from the engine), Start/Pause/Resume/Stop/Save-now, the live loss chart with its
 * options and PNG/SVG export, progress with ETA and memory, and past runs (reopen the chart,
 * resume from any checkpoint). */
#pragma once

#include <adwaita.h>

#include "studio-loss-chart.h"
#include "studio-workspace.h"

G_BEGIN_DECLS

#define STUDIO_TYPE_TRAIN_PAGE (studio_train_page_get_type ())
G_DECLARE_FINAL_TYPE (StudioTrainPage, studio_train_page, STUDIO, TRAIN_PAGE, AdwBin)

void             studio_train_page_set_workspace (StudioTrainPage *self, StudioWorkspace *workspace);
StudioLossChart *studio_train_page_get_chart     (StudioTrainPage *self);
/* The form's editor for a config key (GtkSpinButton, GtkEntry, GtkDropDown or GtkSwitch). */
GtkWidget       *studio_train_page_get_editor    (StudioTrainPage *self, const char *key);

G_END_DECLS
