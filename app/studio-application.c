/* studio-application.c: command line, app actions, accelerators, About. */
#define G_LOG_DOMAIN "studio"

#include "studio-application.h"
#include "studio-error.h"
#include "studio-paths.h"
#include "studio-preferences-window.h"
#include "studio-window.h"

struct _StudioApplication
{
  AdwApplication parent_instance;
};

G_DEFINE_FINAL_TYPE (StudioApplication, studio_application, ADW_TYPE_APPLICATION)

static const struct { const char *action; const char *accels[3]; } accels[] = {
  { "win.open-model", { "<Control>o", NULL } },
  { "win.open-dataset", { "<Control><Shift>o", NULL } },
  { "win.open-run", { "<Control><Shift>r", NULL } },
  { "win.start-training", { "<Control>Return", NULL } },
  { "win.pause-training", { "<Control>p", NULL } },
  { "win.resume-training", { "<Control>r", NULL } },
  { "win.stop-training", { "<Control>period", NULL } },
  { "win.save-checkpoint", { "<Control>s", NULL } },
  { "win.show-page::model", { "<Alt>1", NULL } },
  { "win.show-page::data", { "<Alt>2", NULL } },
  { "win.show-page::train", { "<Alt>3", NULL } },
  { "win.show-page::chat", { "<Alt>4", NULL } },
  { "win.show-page::quantize", { "<Alt>5", NULL } },
  { "win.show-page::export", { "<Alt>6", NULL } },
  { "app.preferences", { "<Control>comma", NULL } },
  { "app.quit", { "<Control>q", NULL } },
  { "window.close", { "<Control>w", NULL } },
};

static void
preferences (GSimpleAction *action, GVariant *param, gpointer data)
{
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (data));
  GSettings *settings = parent && STUDIO_IS_WINDOW (parent)
    ? studio_workspace_get_settings (studio_window_get_workspace (STUDIO_WINDOW (parent))) : NULL;
  g_autoptr(GSettings) own = settings ? NULL : studio_settings_new ();

  gtk_window_present (GTK_WINDOW (studio_preferences_window_new (parent, settings ? settings : own)));
}

static void
about (GSimpleAction *action, GVariant *param, gpointer data)
{
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (data));
  static const char *developers[] = { "The Sutra Studio contributors", NULL };

  adw_show_about_window (parent,
                         "application-name", "Sutra Studio",
                         "application-icon", STUDIO_APP_ID,
                         "version", SUTRA_VERSION,
                         "comments", "Fine-tune small language models on an ordinary computer: "
                                     "LoRA, QLoRA and full training on the CPU, with a live loss "
                                     "chart, chat, quantization and export.",
                         "developer-name", "The Sutra Studio contributors",
                         "developers", developers,
                         "website", "https://github.com/sutra-studio/sutra-studio",
                         NULL);
}

static void
quit (GSimpleAction *action, GVariant *param, gpointer data)
{
  /* Close each window: a window with a run in progress asks first (and may stay open). */
  GList *windows = g_list_copy (gtk_application_get_windows (GTK_APPLICATION (data)));

  for (GList *l = windows; l; l = l->next)
    gtk_window_close (l->data);
  g_list_free (windows);
}

static const GActionEntry app_entries[] = {
  { .name = "preferences", .activate = preferences },
  { .name = "about", .activate = about },
  { .name = "quit", .activate = quit },
};

static void
studio_application_startup (GApplication *app)
{
  G_APPLICATION_CLASS (studio_application_parent_class)->startup (app);
  studio_engine_log_init ();
  g_action_map_add_action_entries (G_ACTION_MAP (app), app_entries, G_N_ELEMENTS (app_entries), app);
  for (guint i = 0; i < G_N_ELEMENTS (accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (app), accels[i].action, accels[i].accels);
}

static int
studio_application_command_line (GApplication *app, GApplicationCommandLine *cmdline)
{
  static const char *const pages[] = { "model", "data", "train", "chat", "quantize", "export", NULL };
  g_auto(GStrv) argv = g_application_command_line_get_arguments (cmdline, NULL);
  guint argc = g_strv_length (argv);
  GtkWindow *existing = gtk_application_get_active_window (GTK_APPLICATION (app));
  StudioWindow *win;
  g_autofree char *model = NULL;
  g_autofree char *dataset = NULL;
  g_autofree char *page = NULL;
  g_autofree char *run = NULL;
  GVariantDict *options = g_application_command_line_get_options_dict (cmdline);

  if (argc > 3)
    {
      g_application_command_line_printerr (cmdline, "usage: sutra-studio [MODEL] [DATASET]\n");
      return 2;
    }
  /* Paths are relative to the invoking shell, which may not be ours (a second instance). */
  if (argc > 1)
    {
      g_autoptr(GFile) f = g_application_command_line_create_file_for_arg (cmdline, argv[1]);
      model = g_file_query_exists (f, NULL) ? g_file_get_path (f) : g_strdup (argv[1]);
    }
  if (argc > 2)
    {
      g_autoptr(GFile) f = g_application_command_line_create_file_for_arg (cmdline, argv[2]);
      dataset = g_file_get_path (f);
    }
  g_variant_dict_lookup (options, "page", "s", &page);
  g_variant_dict_lookup (options, "run", "^ay", &run);
  if (page && !g_strv_contains (pages, page))
    {
      g_application_command_line_printerr (cmdline, "sutra-studio: unknown page '%s' (model, data, "
                                           "train, chat, quantize or export)\n", page);
      return 2;
    }
  if (existing && argc == 1 && page == NULL && run == NULL)
    {
      gtk_window_present (existing);
      return 0;
    }
  win = studio_window_new (GTK_APPLICATION (app));
  studio_window_open_paths (win, model, dataset);
  if (run)
    {
      g_autoptr(GFile) f = g_application_command_line_create_file_for_arg (cmdline, run);
      studio_window_open_run_folder (win, f);
    }
  if (page)
    studio_window_show_page (win, page);
  gtk_window_present (GTK_WINDOW (win));
  return 0;
}

static void
studio_application_class_init (StudioApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  app_class->startup = studio_application_startup;
  app_class->command_line = studio_application_command_line;
}

static void
studio_application_init (StudioApplication *self)
{
  static const GOptionEntry options[] = {
    { "version", 0, 0, G_OPTION_ARG_NONE, NULL, "Print the version and exit", NULL },
    { "page", 0, 0, G_OPTION_ARG_STRING, NULL,
      "Page to show: model, data, train, chat, quantize or export", "NAME" },
    { "run", 0, 0, G_OPTION_ARG_FILENAME, NULL, "Reopen a past training run folder", "DIR" },
    { NULL },
  };

  g_application_add_main_option_entries (G_APPLICATION (self), options);
  g_application_set_option_context_parameter_string (G_APPLICATION (self), "[MODEL] [DATASET]");
  g_application_set_option_context_summary (G_APPLICATION (self),
    "MODEL is a model folder or an org/name from the Hugging Face cache; DATASET a JSONL, JSON,\n"
    "CSV or TXT file. Without them the built-in model and sample dataset are opened.");
}

static int
handle_local_options (GApplication *app, GVariantDict *options, gpointer data)
{
  if (g_variant_dict_contains (options, "version"))
    {
      g_print ("sutra-studio %s\n", SUTRA_VERSION);
      return 0;
    }
  return -1;
}

StudioApplication *
studio_application_new (void)
{
  StudioApplication *app = g_object_new (STUDIO_TYPE_APPLICATION,
                                         "application-id", STUDIO_APP_ID,
                                         "flags", G_APPLICATION_HANDLES_COMMAND_LINE,
                                         "resource-base-path", STUDIO_RESOURCE_PATH,
                                         NULL);

  g_signal_connect (app, "handle-local-options", G_CALLBACK (handle_local_options), NULL);
  return app;
}
