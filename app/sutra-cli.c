/* sutra-cli.c: `sutra` entry point, command dispatch and option parsing. */
#include "sutra-cli.h"
#include "sutra-pool.h"
#include "sutra-hub.h"
#include "sutra-model.h"
#include "sutra-lora.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COMMANDS 64
static const SutraCliCommand *commands[MAX_COMMANDS];
static int ncommands;

void
sutra_cli_register (const SutraCliCommand *cmd)
{
  SUTRA_ASSERT (ncommands < MAX_COMMANDS);
  commands[ncommands++] = cmd;
}

static int
cmp_cmd (const void *a, const void *b)
{
  return strcmp ((*(const SutraCliCommand *const *) a)->name,
                 (*(const SutraCliCommand *const *) b)->name);
}

static void
print_help (FILE *fp)
{
  qsort (commands, (size_t) ncommands, sizeof commands[0], cmp_cmd);
  fprintf (fp, "usage: sutra COMMAND [ARGS...]\n\n"
               "Sutra Studio command line: fine-tune and run small language models.\n\n"
               "commands:\n");
  for (int i = 0; i < ncommands; i++)
    fprintf (fp, "  %-14s %s\n", commands[i]->name, commands[i]->summary);
  fprintf (fp, "\nsutra COMMAND --help shows a command's arguments. Exit status: 0 success, "
               "1 runtime error, 2 usage error.\n"
               "Environment: SUTRA_THREADS (worker threads), SUTRA_VERBOSE=1 (progress logs).\n");
}

int
sutra_cli_error (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fputs ("sutra: error: ", stderr);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
  return 1;
}

int
sutra_cli_usage_error (const char *command, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fputs ("sutra: error: ", stderr);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  for (int i = 0; i < ncommands; i++)
    if (command && strcmp (commands[i]->name, command) == 0) {
      fprintf (stderr, " (usage: sutra %s %s)", command, commands[i]->usage);
      break;
    }
  fputc ('\n', stderr);
  return 2;
}

int
sutra_cli_fail (const SutraError *err)
{
  return sutra_cli_error ("%s", err->message[0] ? err->message : sutra_status_name (err->code));
}

static void
log_to_stderr (SutraLogLevel level, const char *message, void *user_data)
{
  bool verbose = user_data != NULL;
  if (level >= SUTRA_LOG_WARN)
    fprintf (stderr, "sutra: %s: %s\n", level == SUTRA_LOG_WARN ? "warning" : "error", message);
  else if (verbose)
    fprintf (stderr, "sutra: %s\n", message);
}

void
sutra_cli_setup_logging (void)
{
  const char *v = getenv ("SUTRA_VERBOSE");
  sutra_log_set (log_to_stderr, (v && strcmp (v, "1") == 0) ? (void *) 1 : NULL);
}

bool
sutra_cli_parse (SutraCliArgs *a, int argc, char **argv, const SutraCliOptSpec *spec)
{
  memset (a, 0, sizeof *a);
  a->command = argv[0];
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strncmp (arg, "--", 2) != 0 || arg[2] == '\0') {
      if (a->npos >= 16) {
        sutra_cli_usage_error (a->command, "too many arguments");
        return false;
      }
      a->pos[a->npos++] = arg;
      continue;
    }
    const char *name = arg + 2;
    const char *eq = strchr (name, '=');
    size_t nlen = eq ? (size_t) (eq - name) : strlen (name);
    const SutraCliOptSpec *s = NULL;
    bool wildcard = false;
    for (const SutraCliOptSpec *p = spec; p && p->name; p++) {
      if (strlen (p->name) == nlen && strncmp (p->name, name, nlen) == 0) {
        s = p;
        break;
      }
      if (strcmp (p->name, "*") == 0)
        wildcard = true;
    }
    if (!s && !wildcard) {
      sutra_cli_usage_error (a->command, "unknown option --%.*s", (int) nlen, name);
      return false;
    }
    if (a->nopts >= SUTRA_CLI_MAX_OPTS) {
      sutra_cli_usage_error (a->command, "too many options");
      return false;
    }
    const char *value = NULL;
    bool takes = s ? s->takes_value : true;
    if (takes) {
      if (eq)
        value = eq + 1;
      else if (i + 1 < argc)
        value = argv[++i];
      else {
        sutra_cli_usage_error (a->command, "--%.*s needs a value", (int) nlen, name);
        return false;
      }
    } else if (eq) {
      sutra_cli_usage_error (a->command, "--%.*s takes no value", (int) nlen, name);
      return false;
    }
    if (!s) {
      if (nlen >= sizeof a->wild_names[0]) {
        sutra_cli_usage_error (a->command, "option --%.*s is too long", (int) nlen, name);
        return false;
      }
      memcpy (a->wild_names[a->nopts], name, nlen);
      a->wild_names[a->nopts][nlen] = '\0';
    }
    a->opt_name[a->nopts] = s ? s->name : a->wild_names[a->nopts];
    a->opt_value[a->nopts] = value;
    a->nopts++;
  }
  return true;
}

const char *
sutra_cli_opt (const SutraCliArgs *a, const char *name)
{
  for (int i = a->nopts - 1; i >= 0; i--)
    if (strcmp (a->opt_name[i], name) == 0)
      return a->opt_value[i];
  return NULL;
}

bool
sutra_cli_flag (const SutraCliArgs *a, const char *name)
{
  for (int i = 0; i < a->nopts; i++)
    if (strcmp (a->opt_name[i], name) == 0)
      return true;
  return false;
}

bool
sutra_cli_opt_int (const SutraCliArgs *a, const char *name, long long lo, long long hi,
                   long long *out)
{
  const char *v = sutra_cli_opt (a, name);
  if (!v)
    return true;
  char *end;
  errno = 0;
  long long x = strtoll (v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi) {
    sutra_cli_usage_error (a->command, "--%s expects an integer in [%lld, %lld], got '%s'", name,
                           lo, hi, v);
    return false;
  }
  *out = x;
  return true;
}

bool
sutra_cli_opt_double (const SutraCliArgs *a, const char *name, double *out)
{
  const char *v = sutra_cli_opt (a, name);
  if (!v)
    return true;
  char *end;
  errno = 0;
  double x = strtod (v, &end);
  if (errno || end == v || *end || x != x) {
    sutra_cli_usage_error (a->command, "--%s expects a number, got '%s'", name, v);
    return false;
  }
  *out = x;
  return true;
}

bool
sutra_cli_parse_ids (const char *s, int **ids, int *n)
{
  int cap = 16, len = 0;
  int *v = sutra_xmalloc (sizeof (int) * (size_t) cap);
  const char *p = s;
  for (;;) {
    while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n' || *p == '[' || *p == ']')
      p++;
    if (!*p)
      break;
    char *end;
    errno = 0;
    long x = strtol (p, &end, 10);
    if (end == p || errno || x < 0 || x > 0x7fffffff) {
      free (v);
      return false;
    }
    if (len == cap)
      v = sutra_xrealloc (v, sizeof (int) * (size_t) (cap *= 2));
    v[len++] = (int) x;
    p = end;
  }
  *ids = v;
  *n = len;
  return true;
}

int
sutra_cli_open_model (const char *arg, SutraModel **out)
{
  SutraError err;
  char *dir;
  if (sutra_hub_resolve_model (arg, &dir, &err))
    return sutra_cli_fail (&err);
  SutraStatus st = sutra_model_load (dir, out, &err);
  free (dir);
  if (st)
    return sutra_cli_fail (&err);
  return 0;
}

SutraStatus
sutra_cli_attach_adapter (SutraModel *m, const char *dir, SutraError *err)
{
  return sutra_lora_load (m, dir, NULL, err);
}

int
main (int argc, char **argv)
{
  sutra_cli_setup_logging ();
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 ||
      strcmp (argv[1], "help") == 0) {
    print_help (argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp (argv[1], "--version") == 0) {
    printf ("sutra %s\n", SUTRA_VERSION);
    return 0;
  }
  for (int i = 0; i < ncommands; i++) {
    if (strcmp (commands[i]->name, argv[1]) != 0)
      continue;
    if (argc >= 3 && (strcmp (argv[2], "--help") == 0 || strcmp (argv[2], "-h") == 0)) {
      printf ("usage: sutra %s %s\n\n%s\n", commands[i]->name, commands[i]->usage,
              commands[i]->summary);
      return 0;
    }
    return commands[i]->func (argc - 1, argv + 1);
  }
  return sutra_cli_usage_error (NULL, "unknown command '%s' (sutra --help lists them)", argv[1]);
}
