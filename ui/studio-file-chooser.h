/* studio-file-chooser.h: one helper for every file dialog of the studio.
 *
 * GTK 4.8 (Debian 12) has GtkFileChooserNative: portal-aware, and an in-process dialog when
 * no portal runs. Built against GTK >= 4.10 the same call uses GtkFileDialog. Either way the
 * caller receives a GFile (NULL when cancelled) in one callback on the main thread, which is
 * also what tests call directly to open files "through the dialog's code path". */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef enum {
  STUDIO_CHOOSE_OPEN_FILE,
  STUDIO_CHOOSE_OPEN_FOLDER,
  STUDIO_CHOOSE_SAVE_FILE,
} StudioChooseKind;

typedef void (*StudioFileChosenFunc) (GFile *file, gpointer user_data);

typedef struct {
  StudioChooseKind kind;
  const char *title;
  const char *accept_label;         /* NULL: "_Open" / "_Save" */
  const char *filter_name;          /* "Datasets"; NULL = no filter */
  const char *const *patterns;      /* NULL-terminated globs: "*.jsonl", ... */
  GFile *initial_folder;            /* may be NULL */
  const char *initial_name;         /* save: proposed file name */
} StudioChooseOptions;

/* Opens the dialog modal to parent; callback runs once. user_data is not referenced: pass an
 * object through g_object_ref and drop it in the callback when it may go away meanwhile. */
void studio_file_chooser_run (GtkWindow                 *parent,
                              const StudioChooseOptions *opts,
                              StudioFileChosenFunc       callback,
                              gpointer                   user_data);

G_END_DECLS
