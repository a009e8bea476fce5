/* sutra-cli-download.c: `sutra download REPO_ID` into the Hugging Face cache; progress on
 * stderr, the snapshot folder on stdout (so `cd "$(sutra download org/name)"` works). */
#include "sutra-cli.h"
#include "sutra-hub.h"
#include "sutra-hub-cache.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_bool interrupted;

static void
on_sigint (int sig)
{
  (void) sig;
  atomic_store (&interrupted, true);
}

typedef struct {
  bool tty;
  int last_decile;      /* non-tty: last 10% step printed for the current file */
  size_t line_len;      /* tty: length of the live line */
} Printer;

static void
human (uint64_t b, char *buf, size_t n)
{
  if (b >= 1000000000ull)
    snprintf (buf, n, "%.2f GB", (double) b / 1e9);
  else if (b >= 1000000ull)
    snprintf (buf, n, "%.1f MB", (double) b / 1e6);
  else if (b >= 1000ull)
    snprintf (buf, n, "%.1f kB", (double) b / 1e3);
  else
    snprintf (buf, n, "%llu B", (unsigned long long) b);
}

static void
clear_live (Printer *p)
{
  if (p->tty && p->line_len) {
    fprintf (stderr, "\r%*s\r", (int) p->line_len, "");
    p->line_len = 0;
  }
}

static bool
on_progress (const SutraHubProgress *e, void *data)
{
  Printer *p = data;
  char a[32], b[32];
  switch (e->event) {
  case SUTRA_HUB_EVENT_LISTED:
    human (e->total, a, sizeof a);
    fprintf (stderr, "sutra: %s is commit %.12s: %zu file%s, %s\n", e->repo_id, e->commit,
             e->n_files, e->n_files == 1 ? "" : "s", a);
    break;
  case SUTRA_HUB_EVENT_FILE_START:
    p->last_decile = -1;
    if (e->file_done && e->file_total) {
      clear_live (p);
      fprintf (stderr, "[%zu/%zu] %s: resuming at %d%%\n", e->file_index + 1, e->n_files,
               e->file, (int) (100.0 * (double) e->file_done / (double) e->file_total));
    }
    /* fall through */
  case SUTRA_HUB_EVENT_FILE_PROGRESS: {
    if (!e->file_total)
      break;
    int pct = (int) (100.0 * (double) e->file_done / (double) e->file_total);
    if (p->tty) {
      human (e->file_done, a, sizeof a);
      human (e->file_total, b, sizeof b);
      int n = fprintf (stderr, "\r[%zu/%zu] %s %3d%% %s / %s", e->file_index + 1, e->n_files,
                       e->file, pct, a, b);
      if (n > 0 && (size_t) n - 1 < p->line_len)
        fprintf (stderr, "%*s", (int) (p->line_len - (size_t) n + 1), "");
      p->line_len = n > 0 ? (size_t) n : 0;
    } else if (e->file_total >= 10000000 && pct / 10 > p->last_decile && pct < 100) {
      p->last_decile = pct / 10;
      fprintf (stderr, "[%zu/%zu] %s %d%%\n", e->file_index + 1, e->n_files, e->file,
               p->last_decile * 10);
    }
    break;
  }
  case SUTRA_HUB_EVENT_FILE_DONE:
    clear_live (p);
    human (e->file_total ? e->file_total : e->file_done, a, sizeof a);
    fprintf (stderr, "[%zu/%zu] %s 100%% %s%s\n", e->file_index + 1, e->n_files, e->file, a,
             e->cached ? " (cached)" : "");
    break;
  case SUTRA_HUB_EVENT_RETRY:
    clear_live (p);
    fprintf (stderr, "sutra: %s; retrying in %.1f s\n", e->reason ? e->reason : "failed",
             e->retry_delay_s);
    break;
  }
  fflush (stderr);
  return true;
}

static int
cmd_download (int argc, char **argv)
{
  static const SutraCliOptSpec spec[] = {
    { "revision", true }, { "include", true }, { "exclude", true },
    { "all", false },      { NULL, false },
  };
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, spec))
    return 2;
  if (a.npos != 1)
    return sutra_cli_usage_error ("download", "expected one REPO_ID");
  const char *include[SUTRA_CLI_MAX_OPTS + 1], *exclude[SUTRA_CLI_MAX_OPTS + 1];
  size_t ni = 0, ne = 0;
  for (int i = 0; i < a.nopts; i++) {
    if (strcmp (a.opt_name[i], "include") == 0)
      include[ni++] = a.opt_value[i];
    else if (strcmp (a.opt_name[i], "exclude") == 0)
      exclude[ne++] = a.opt_value[i];
  }
  include[ni] = NULL;
  exclude[ne] = NULL;
  /* REPO_ID@REV is accepted like MODEL arguments elsewhere. */
  char *repo = strdup (a.pos[0]);
  char *at = strchr (repo, '@');
  const char *rev = sutra_cli_opt (&a, "revision");
  if (at) {
    *at = '\0';
    if (rev) {
      free (repo);
      return sutra_cli_usage_error ("download", "give the revision either as @REV or --revision");
    }
    rev = at + 1;
  }
  if (!sutra_hub_repo_id_is_valid (repo)) {
    free (repo);
    return sutra_cli_usage_error ("download", "'%s' is not a Hugging Face repo id (org/name)",
                                  a.pos[0]);
  }
  Printer pr = { .tty = isatty (STDERR_FILENO) == 1 };
  SutraHubOptions opts = {
    .prefer_safetensors = !sutra_cli_flag (&a, "all"),
    .exclude = ne ? exclude : NULL,
    .progress = on_progress,
    .user_data = &pr,
    .cancel = &interrupted,
  };
  struct sigaction sa = { 0 };
  sa.sa_handler = on_sigint;
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  char *dir = NULL;
  SutraError err = { 0 };
  SutraStatus st = sutra_hub_download (&opts, repo, rev, ni ? include : NULL, &dir, &err);
  clear_live (&pr);
  free (repo);
  if (st)
    return sutra_cli_fail (&err);
  printf ("%s\n", dir);
  free (dir);
  return 0;
}

SUTRA_CLI_COMMAND (download, "download",
                   "REPO_ID[@REV] [--revision REV] [--include GLOB ...] [--exclude GLOB ...] "
                   "[--all]",
                   "download a model from the Hugging Face Hub into the shared HF cache "
                   "(--all: also non-safetensors weights)",
                   cmd_download)
