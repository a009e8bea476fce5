/* studio-preferences-window.h: threads and the default output folder, stored in GSettings
 * (schema io.github.sutra.Studio, docs/studio.md). Colour scheme follows the system through
 * AdwStyleManager, so there is no setting for it. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define STUDIO_TYPE_PREFERENCES_WINDOW (studio_preferences_window_get_type ())
G_DECLARE_FINAL_TYPE (StudioPreferencesWindow, studio_preferences_window, STUDIO,
                      PREFERENCES_WINDOW, AdwPreferencesWindow)

GtkWidget *studio_preferences_window_new (GtkWindow *parent, GSettings *settings);

G_END_DECLS
