/* studio-paths.h: where the studio finds its data and settings schema, and where it writes.
 *
 * Data (the embedded default model and sample datasets) is looked up in one order everywhere:
 *   1. the installed data folder (SUTRA_DATADIR, e.g. /usr/share/sutra-studio),
 *   2. $SUTRA_SOURCE_DIR/data (a developer's checkout, set by ctest),
 *   3. the source tree this binary was built from (SUTRA_SOURCE_DIR compiled in).
 * So the studio switches to the default model by itself the day data/models/ appears. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* "<data>/<sub>" for the first data folder (order above) where it exists, else NULL. */
char      *studio_paths_find_data      (const char *sub);
/* The default model folder: the "model" of data/examples/quick-lora.json (the README's
 * walk-through) when it exists, else the first folder under data/models/ (by name) holding a
 * config.json; NULL when the tree has none yet. */
char      *studio_paths_default_model  (void);
/* The sample dataset opened at first: that file's "data", else the first file of
 * data/datasets/ by name; NULL when none. */
char      *studio_paths_default_dataset (void);
/* Default folder for run folders when the preference is empty: ~/sutra-runs. */
char      *studio_paths_default_output (void);
/* The GSettings object of the studio: the installed schema when present, else the schema
 * compiled into the build tree (uninstalled runs and tests). */
GSettings *studio_settings_new (void);
/* A fresh run folder name under output: "<output>/run-YYYYmmdd-HHMMSS" (not created). */
char      *studio_paths_new_run_dir (const char *output);

G_END_DECLS
