/* studio-preferences-window.c: preferences bound to GSettings. */
#define G_LOG_DOMAIN "studio"

#include "studio-file-chooser.h"
#include "studio-paths.h"
#include "studio-preferences-window.h"

struct _StudioPreferencesWindow
{
  AdwPreferencesWindow parent_instance;

  /* Template widgets */
  GtkSpinButton *threads_spin;
  GtkAdjustment *threads_adjustment;
  AdwActionRow *output_row;

  /* Owned */
  GSettings *settings;
};

G_DEFINE_FINAL_TYPE (StudioPreferencesWindow, studio_preferences_window, ADW_TYPE_PREFERENCES_WINDOW)

enum { PROP_0, PROP_SETTINGS, N_PROPS };
static GParamSpec *properties[N_PROPS];

static void
update_output (StudioPreferencesWindow *self)
{
  g_autofree char *v = g_settings_get_string (self->settings, "output-folder");
  g_autofree char *def = studio_paths_default_output ();

  adw_action_row_set_subtitle (self->output_row, v && *v ? v : def);
}

static void
on_output_changed (GSettings *settings, const char *key, StudioPreferencesWindow *self)
{
  update_output (self);
}

static void
output_chosen (GFile *file, gpointer data)
{
  g_autoptr(StudioPreferencesWindow) self = data;
  g_autofree char *path = file ? g_file_get_path (file) : NULL;

  if (path)
    g_settings_set_string (self->settings, "output-folder", path);
}

static void
choose_output (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioChooseOptions opts = { .kind = STUDIO_CHOOSE_OPEN_FOLDER, .title = "Choose the Output Folder" };

  studio_file_chooser_run (GTK_WINDOW (widget), &opts, output_chosen, g_object_ref (widget));
}

static void
reset_output (GtkWidget *widget, const char *action_name, GVariant *param)
{
  g_settings_reset (STUDIO_PREFERENCES_WINDOW (widget)->settings, "output-folder");
}

static void
forget_recent (GtkWidget *widget, const char *action_name, GVariant *param)
{
  StudioPreferencesWindow *self = STUDIO_PREFERENCES_WINDOW (widget);

  g_settings_reset (self->settings, "recent-models");
  g_settings_reset (self->settings, "recent-datasets");
  adw_preferences_window_add_toast (ADW_PREFERENCES_WINDOW (self), adw_toast_new ("Recent files forgotten"));
}

static void
studio_preferences_window_constructed (GObject *object)
{
  StudioPreferencesWindow *self = STUDIO_PREFERENCES_WINDOW (object);

  G_OBJECT_CLASS (studio_preferences_window_parent_class)->constructed (object);
  /* More threads than cores only adds contention: cap the spin at the core count. */
  gtk_adjustment_set_upper (self->threads_adjustment, g_get_num_processors ());
  g_settings_bind (self->settings, "threads", self->threads_spin, "value", G_SETTINGS_BIND_DEFAULT);
  g_signal_connect_object (self->settings, "changed::output-folder",
                           G_CALLBACK (on_output_changed), self, 0);
  update_output (self);
}

static void
studio_preferences_window_set_property (GObject *object, guint prop_id, const GValue *value,
                                        GParamSpec *pspec)
{
  StudioPreferencesWindow *self = STUDIO_PREFERENCES_WINDOW (object);

  switch (prop_id)
    {
    case PROP_SETTINGS: self->settings = g_value_dup_object (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
studio_preferences_window_dispose (GObject *object)
{
  StudioPreferencesWindow *self = STUDIO_PREFERENCES_WINDOW (object);

  gtk_widget_dispose_template (GTK_WIDGET (self), STUDIO_TYPE_PREFERENCES_WINDOW);
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (studio_preferences_window_parent_class)->dispose (object);
}

static void
studio_preferences_window_class_init (StudioPreferencesWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->constructed = studio_preferences_window_constructed;
  object_class->dispose = studio_preferences_window_dispose;
  object_class->set_property = studio_preferences_window_set_property;
  properties[PROP_SETTINGS] =
    g_param_spec_object ("settings", NULL, NULL, G_TYPE_SETTINGS,
                         G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               STUDIO_RESOURCE_PATH "/studio-preferences-window.ui");
  gtk_widget_class_bind_template_child (widget_class, StudioPreferencesWindow, threads_spin);
  gtk_widget_class_bind_template_child (widget_class, StudioPreferencesWindow, threads_adjustment);
  gtk_widget_class_bind_template_child (widget_class, StudioPreferencesWindow, output_row);
  gtk_widget_class_install_action (widget_class, "prefs.choose-output", NULL, choose_output);
  gtk_widget_class_install_action (widget_class, "prefs.reset-output", NULL, reset_output);
  gtk_widget_class_install_action (widget_class, "prefs.forget-recent", NULL, forget_recent);
}

static void
studio_preferences_window_init (StudioPreferencesWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

GtkWidget *
studio_preferences_window_new (GtkWindow *parent, GSettings *settings)
{
  return g_object_new (STUDIO_TYPE_PREFERENCES_WINDOW, "transient-for", parent, "modal", TRUE,
                       "settings", settings, NULL);
}
