/* studio-file-chooser.c: GtkFileChooserNative (GTK 4.8) or GtkFileDialog (GTK >= 4.10). */
#define G_LOG_DOMAIN "studio"

#include "studio-file-chooser.h"

typedef struct {
  StudioFileChosenFunc callback;
  gpointer user_data;
} Pending;

static GtkFileFilter *
make_filter (const StudioChooseOptions *opts)
{
  GtkFileFilter *filter;

  if (opts->filter_name == NULL || opts->patterns == NULL)
    return NULL;
  filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, opts->filter_name);
  for (guint i = 0; opts->patterns[i]; i++)
    gtk_file_filter_add_pattern (filter, opts->patterns[i]);
  return filter;
}

#if GTK_CHECK_VERSION (4, 10, 0)

static void
dialog_done (GObject *source, GAsyncResult *result, gpointer data)
{
  Pending *p = data;
  GtkFileDialog *dialog = GTK_FILE_DIALOG (source);
  g_autoptr(GFile) file = NULL;
  g_autoptr(GError) error = NULL;
  StudioChooseKind kind = GPOINTER_TO_INT (g_object_get_data (source, "studio-kind"));

  if (kind == STUDIO_CHOOSE_OPEN_FOLDER)
    file = gtk_file_dialog_select_folder_finish (dialog, result, &error);
  else if (kind == STUDIO_CHOOSE_SAVE_FILE)
    file = gtk_file_dialog_save_finish (dialog, result, &error);
  else
    file = gtk_file_dialog_open_finish (dialog, result, &error);
  p->callback (file, p->user_data);
  g_free (p);
}

void
studio_file_chooser_run (GtkWindow *parent, const StudioChooseOptions *opts,
                         StudioFileChosenFunc callback, gpointer user_data)
{
  g_autoptr(GtkFileDialog) dialog = gtk_file_dialog_new ();
  g_autoptr(GtkFileFilter) filter = make_filter (opts);
  Pending *p = g_new0 (Pending, 1);

  p->callback = callback;
  p->user_data = user_data;
  gtk_file_dialog_set_title (dialog, opts->title);
  gtk_file_dialog_set_modal (dialog, TRUE);
  if (opts->accept_label)
    gtk_file_dialog_set_accept_label (dialog, opts->accept_label);
  if (filter)
    gtk_file_dialog_set_default_filter (dialog, filter);
  if (opts->initial_folder)
    gtk_file_dialog_set_initial_folder (dialog, opts->initial_folder);
  if (opts->initial_name)
    gtk_file_dialog_set_initial_name (dialog, opts->initial_name);
  g_object_set_data (G_OBJECT (dialog), "studio-kind", GINT_TO_POINTER (opts->kind));
  if (opts->kind == STUDIO_CHOOSE_OPEN_FOLDER)
    gtk_file_dialog_select_folder (dialog, parent, NULL, dialog_done, p);
  else if (opts->kind == STUDIO_CHOOSE_SAVE_FILE)
    gtk_file_dialog_save (dialog, parent, NULL, dialog_done, p);
  else
    gtk_file_dialog_open (dialog, parent, NULL, dialog_done, p);
}

#else

static void
native_response (GtkNativeDialog *native, int response, gpointer data)
{
  Pending *p = data;
  g_autoptr(GFile) file = NULL;

  if (response == GTK_RESPONSE_ACCEPT)
    file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (native));
  p->callback (file, p->user_data);
  g_free (p);
  gtk_native_dialog_destroy (native);
  /* The reference taken in studio_file_chooser_run keeps the dialog alive until here. */
  g_object_unref (native);
}

void
studio_file_chooser_run (GtkWindow *parent, const StudioChooseOptions *opts,
                         StudioFileChosenFunc callback, gpointer user_data)
{
  GtkFileChooserAction action = GTK_FILE_CHOOSER_ACTION_OPEN;
  const char *accept = opts->accept_label;
  GtkFileChooserNative *native;
  g_autoptr(GtkFileFilter) filter = make_filter (opts);
  Pending *p = g_new0 (Pending, 1);

  if (opts->kind == STUDIO_CHOOSE_OPEN_FOLDER)
    action = GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER;
  else if (opts->kind == STUDIO_CHOOSE_SAVE_FILE)
    action = GTK_FILE_CHOOSER_ACTION_SAVE;
  if (accept == NULL)
    accept = opts->kind == STUDIO_CHOOSE_SAVE_FILE ? "_Save" : "_Open";
  native = gtk_file_chooser_native_new (opts->title, parent, action, accept, "_Cancel");
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (native), TRUE);
  if (filter)
    gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (native), filter);
  if (opts->initial_folder)
    gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (native), opts->initial_folder, NULL);
  if (opts->initial_name)
    gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (native), opts->initial_name);
  p->callback = callback;
  p->user_data = user_data;
  g_signal_connect (native, "response", G_CALLBACK (native_response), p);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (native));
}

#endif
