/* studio-main.c: entry point of sutra-studio. */
#define G_LOG_DOMAIN "studio"

#include "studio-application.h"

int
main (int argc, char **argv)
{
  g_autoptr(StudioApplication) app = studio_application_new ();

  return g_application_run (G_APPLICATION (app), argc, argv);
}
