/* studio-window-private.h: the window struct, shared by studio-window.c and
 * studio-window-actions.c (one class split in two files, STYLE.md section 9). */
#pragma once

#include "studio-window.h"

struct _StudioWindow
{
  AdwApplicationWindow parent_instance;

  /* Template widgets */
  AdwToastOverlay *toast_overlay;
  AdwViewStack *stack;
  AdwViewSwitcherTitle *switcher_title;
  AdwViewSwitcherBar *switcher_bar;
  GtkRevealer *hint_revealer;
  GtkLabel *hint_label;
  GtkWidget *hint_start_button;
  GtkLabel *run_status;
  GtkWidget *model_page;
  GtkWidget *data_page;
  GtkWidget *train_page;
  GtkWidget *chat_page;
  GtkWidget *quant_page;
  GtkWidget *export_page;

  /* Owned */
  GSettings *settings;
  StudioWorkspace *workspace;
  StudioTrainingSession *watched;    /* the session whose state drives the actions */
  gulong watched_state_id;
  gboolean close_after_stop;
};

void studio_window_actions_init   (StudioWindow *self);
void studio_window_update_actions (StudioWindow *self);
