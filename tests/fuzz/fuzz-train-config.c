/* fuzz-train-config.c: libFuzzer target for training settings files (sutra_train_config_load,
 * the `sutra train CONFIG.json` input and every run folder's config.json that `sutra resume`
 * reads back). The input is written to a settings file in a private temporary folder; when it
 * loads, validation runs, and the resolved JSON (sutra_train_config_to_json) must load back to
 * the same settings. */
#include "sutra-fsutil.h"
#include "sutra-trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *dir, *path;

static void
cleanup (void)
{
  unlink (path);
  rmdir (dir);
}

static void
write_file (const char *p, const void *d, size_t n)
{
  FILE *fp = fopen (p, "wb");
  SUTRA_ASSERT (fp && fwrite (d, 1, n, fp) == n && fclose (fp) == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (!dir) {
    char tmpl[] = "/tmp/sutra-fuzz-tc-XXXXXX";
    dir = sutra_xstrdup (mkdtemp (tmpl));
    path = sutra_path_join (dir, "train.json");
    atexit (cleanup);
  }
  write_file (path, data, size);
  SutraTrainConfig c;
  sutra_train_config_init (&c);
  SutraError err = { 0 };
  if (sutra_train_config_load (&c, path, &err) != SUTRA_OK) {
    SUTRA_ASSERT (err.message[0]);
    sutra_train_config_clear (&c);
    return 0;
  }
  (void) sutra_train_config_validate (&c, &err);
  char *json = sutra_train_config_to_json (&c);
  write_file (path, json, strlen (json));
  SutraTrainConfig d;
  sutra_train_config_init (&d);
  if (sutra_train_config_load (&d, path, &err) != SUTRA_OK)
    sutra_assert_fail (__FILE__, __LINE__, err.message);
  char *json2 = sutra_train_config_to_json (&d);
  if (strcmp (json, json2) != 0) {
    fprintf (stderr, "first:\n%s\nsecond:\n%s\n", json, json2);
    SUTRA_ASSERT (!"settings do not survive a round trip");
  }
  free (json);
  free (json2);
  sutra_train_config_clear (&c);
  sutra_train_config_clear (&d);
  return 0;
}
