/* replay-main.c: runs a libFuzzer entry point over files given on the command line, or over
 * every file in the folders given, so the normal (gcc) test build replays the seed and
 * regression corpora of each fuzz target. Exit 0 when every input ran without a crash. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int
run_file (const char *path)
{
  FILE *fp = fopen (path, "rb");
  if (!fp) {
    fprintf (stderr, "replay: cannot open %s\n", path);
    return 1;
  }
  fseek (fp, 0, SEEK_END);
  long n = ftell (fp);
  fseek (fp, 0, SEEK_SET);
  uint8_t *buf = malloc (n > 0 ? (size_t) n : 1);
  size_t got = fread (buf, 1, (size_t) (n > 0 ? n : 0), fp);
  fclose (fp);
  LLVMFuzzerTestOneInput (buf, got);
  free (buf);
  return 0;
}

int
main (int argc, char **argv)
{
  int files = 0, failures = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat (argv[i], &st) != 0)
      continue;                          /* an absent corpus folder is not an error */
    if (S_ISDIR (st.st_mode)) {
      DIR *d = opendir (argv[i]);
      struct dirent *e;
      while (d && (e = readdir (d))) {
        if (e->d_name[0] == '.')
          continue;
        char path[4096];
        snprintf (path, sizeof path, "%s/%s", argv[i], e->d_name);
        failures += run_file (path);
        files++;
      }
      if (d)
        closedir (d);
    } else {
      failures += run_file (argv[i]);
      files++;
    }
  }
  printf ("replayed %d inputs\n", files);
  return failures ? 1 : 0;
}
