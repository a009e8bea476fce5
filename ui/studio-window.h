/* studio-window.h: the main window: header bar, view switcher, the six pages, toasts.
 *
 * Window actions (studio-window-actions.c): win.open-model, win.open-dataset, win.open-run,
 * win.start-training, win.pause-training, win.resume-training, win.stop-training,
 * win.save-checkpoint, win.show-page::NAME, win.open-sample, win.dismiss-hint,
 * win.show-error (s). The open-* functions below are what the file dialogs' responses call,
 * so tests drive the same code path without a dialog. */
#pragma once

#include <adwaita.h>

#include "studio-workspace.h"

G_BEGIN_DECLS

#define STUDIO_TYPE_WINDOW (studio_window_get_type ())
G_DECLARE_FINAL_TYPE (StudioWindow, studio_window, STUDIO, WINDOW, AdwApplicationWindow)

StudioWindow    *studio_window_new             (GtkApplication *application);
StudioWorkspace *studio_window_get_workspace   (StudioWindow *self);
/* The page widget named "model", "data", "train", "chat", "quantize" or "export". */
GtkWidget       *studio_window_get_page        (StudioWindow *self, const char *name);
void             studio_window_show_page       (StudioWindow *self, const char *name);
/* File dialog responses (and the command line). */
void             studio_window_open_model_file   (StudioWindow *self, GFile *folder);
void             studio_window_open_dataset_file (StudioWindow *self, GFile *file);
void             studio_window_open_run_folder   (StudioWindow *self, GFile *folder);
/* `sutra-studio [MODEL] [DATASET]`: MODEL is a folder or an "org/name" in the HF cache. Either
 * may be NULL: the default model and sample dataset are opened then, when the tree has them. */
void             studio_window_open_paths      (StudioWindow *self, const char *model,
                                                const char *dataset);
/* A toast with the message; long engine messages get a Details button with the full text. */
void             studio_window_show_error      (StudioWindow *self, const GError *error);
void             studio_window_show_toast      (StudioWindow *self, const char *text);

G_END_DECLS
