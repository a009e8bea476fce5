/* sutra-cli.h: the `sutra` command line: command registry and small helpers.
 *
 * Each command lives in app/sutra-cli-<command>.c and registers itself with
 * SUTRA_CLI_COMMAND (a constructor), so adding a command touches no shared table.
 * Exit codes (DESIGN.md section 6): 0 success, 1 runtime error, 2 usage error; errors go
 * to stderr as one line starting "sutra: error: ". */
#pragma once
#include <stdbool.h>
#include "sutra-error.h"

typedef int (*SutraCliFunc) (int argc, char **argv);   /* argv[0] is the command name */

typedef struct {
  const char *name;
  const char *usage;     /* "MODEL --ids \"1 2 3\" --out FILE.safetensors" */
  const char *summary;   /* one line */
  SutraCliFunc func;
} SutraCliCommand;

void sutra_cli_register (const SutraCliCommand *cmd);

#define SUTRA_CLI_COMMAND(ident, name_, usage_, summary_, func_)                              \
  static const SutraCliCommand sutra_cli_cmd_##ident = { name_, usage_, summary_, func_ };  \
  __attribute__ ((constructor)) static void sutra_cli_register_##ident (void)               \
  { sutra_cli_register (&sutra_cli_cmd_##ident); }

/* ---- option parsing ----
 * Options are "--name VALUE" or "--name=VALUE" or boolean "--flag"; everything else is a
 * positional. The spec lists the options a command accepts; anything else is a usage error. */
typedef struct {
  const char *name;      /* without the leading dashes */
  bool takes_value;
} SutraCliOptSpec;

#define SUTRA_CLI_MAX_OPTS 64
typedef struct {
  const char *command;
  int npos;
  const char *pos[16];
  int nopts;
  const char *opt_name[SUTRA_CLI_MAX_OPTS];
  const char *opt_value[SUTRA_CLI_MAX_OPTS];  /* NULL for flags */
  char wild_names[SUTRA_CLI_MAX_OPTS][64];    /* storage for names accepted by a "*" spec */
} SutraCliArgs;

/* Returns false (after printing a usage error) on a bad option. A spec with name "*" accepts
 * any "--key value" (used by `sutra train` for config overrides). */
bool        sutra_cli_parse (SutraCliArgs *a, int argc, char **argv, const SutraCliOptSpec *spec);
const char *sutra_cli_opt   (const SutraCliArgs *a, const char *name);      /* last value or NULL */
bool        sutra_cli_flag  (const SutraCliArgs *a, const char *name);
/* Parsed numeric options with range checks; on failure print a usage error and return false. */
bool sutra_cli_opt_int    (const SutraCliArgs *a, const char *name, long long lo, long long hi,
                           long long *out);
bool sutra_cli_opt_double (const SutraCliArgs *a, const char *name, double *out);
/* Parses "1 2 3" (spaces or commas) into a malloc'ed array. */
bool sutra_cli_parse_ids  (const char *s, int **ids, int *n);

/* Prints "sutra: error: <msg>" and returns 1 (runtime) — or 2 for usage. */
int sutra_cli_error (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
int sutra_cli_usage_error (const char *command, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
/* Prints the engine error and returns 1. */
int sutra_cli_fail (const SutraError *err);
/* Installs a log sink printing warnings (and info with SUTRA_VERBOSE=1) to stderr. */
void sutra_cli_setup_logging (void);

/* Resolves MODEL (a folder, or a repo id in the Hugging Face cache) and loads it. Returns 0,
 * or prints the error and returns the exit code. */
struct SutraModel;
int sutra_cli_open_model (const char *arg, struct SutraModel **out);
/* Loads a PEFT adapter folder onto the model (for --adapter). */
SutraStatus sutra_cli_attach_adapter (struct SutraModel *m, const char *dir, SutraError *err);
