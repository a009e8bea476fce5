/* studio-application.h: the AdwApplication of Sutra Studio.
 *
 * `sutra-studio [MODEL] [DATASET]`: opens a window on those (MODEL a folder or an "org/name"
 * in the Hugging Face cache), else on the embedded default model and sample dataset when the
 * tree has them. App actions: app.preferences, app.about, app.quit; accelerators for the
 * window actions (studio-window.h) are set here. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define STUDIO_TYPE_APPLICATION (studio_application_get_type ())
G_DECLARE_FINAL_TYPE (StudioApplication, studio_application, STUDIO, APPLICATION, AdwApplication)

StudioApplication *studio_application_new (void);

G_END_DECLS
