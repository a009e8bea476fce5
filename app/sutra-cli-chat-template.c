/* sutra-cli-chat-template.c: `sutra chat-template` renders a conversation with a model's chat
 * template (or a built-in family) exactly as transformers' apply_chat_template(tokenize=False)
 * does, and prints it with no added newline. */
#include "sutra-chat.h"
#include "sutra-cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGES_FILE ((size_t) 256 << 20)

/* Reads a whole file ("-" is stdin) into a NUL-terminated buffer. */
static char *
read_all (const char *path, SutraError *err)
{
  FILE *fp = strcmp (path, "-") == 0 ? stdin : fopen (path, "rb");
  if (!fp) {
    sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s", path);
    return NULL;
  }
  size_t n = 0, cap = 65536;
  char *buf = sutra_xmalloc (cap);
  size_t got;
  while ((got = fread (buf + n, 1, cap - n - 1, fp)) > 0) {
    n += got;
    if (n > MAX_MESSAGES_FILE) {
      sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: larger than %zu MiB", path,
                       MAX_MESSAGES_FILE >> 20);
      free (buf);
      if (fp != stdin)
        fclose (fp);
      return NULL;
    }
    if (cap - n - 1 == 0)
      buf = sutra_xrealloc (buf, cap *= 2);
  }
  bool bad = ferror (fp);
  if (fp != stdin)
    fclose (fp);
  if (bad) {
    sutra_error_set (err, SUTRA_ERR_IO, "%s: read error", path);
    free (buf);
    return NULL;
  }
  buf[n] = '\0';
  if (strlen (buf) != n) {
    sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: contains a NUL byte; expected JSON", path);
    free (buf);
    return NULL;
  }
  return buf;
}

static int
list_templates (void)
{
  size_t n;
  const char *const *names = sutra_chat_family_names (&n);
  for (size_t i = 0; i < n; i++)
    printf ("%-16s %s\n", names[i], sutra_chat_family_description (names[i]));
  return 0;
}

static int
cmd_chat_template (int argc, char **argv)
{
  static const SutraCliOptSpec spec[] = {
    { "messages", true }, { "add-generation-prompt", false }, { "template", true },
    { "list-templates", false }, { NULL, false },
  };
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, spec))
    return 2;
  if (sutra_cli_flag (&a, "list-templates")) {
    if (a.npos || sutra_cli_opt (&a, "messages"))
      return sutra_cli_usage_error (a.command, "--list-templates takes no other arguments");
    return list_templates ();
  }
  const char *messages = sutra_cli_opt (&a, "messages");
  if (a.npos != 1)
    return sutra_cli_usage_error (a.command, "expected one TOKENIZER_OR_MODEL");
  if (!messages)
    return sutra_cli_usage_error (a.command, "--messages FILE.json is required");
  SutraError err = { 0 };
  SutraChatTemplate *t;
  if (sutra_chat_template_load (a.pos[0], sutra_cli_opt (&a, "template"), &t, &err) != SUTRA_OK)
    return sutra_cli_fail (&err);
  char *json = read_all (messages, &err);
  if (!json) {
    sutra_chat_template_free (t);
    return sutra_cli_fail (&err);
  }
  char *out = NULL;
  SutraStatus st = sutra_chat_render_json (t, json, sutra_cli_flag (&a, "add-generation-prompt"),
                                           &out, &err);
  free (json);
  sutra_chat_template_free (t);
  if (st != SUTRA_OK) {
    if (st == SUTRA_ERR_FORMAT && strncmp (err.message, "messages", 8) == 0)
      sutra_error_prefix (&err, "%s", messages);
    return sutra_cli_fail (&err);
  }
  size_t n = strlen (out);
  bool ok = fwrite (out, 1, n, stdout) == n && fflush (stdout) == 0;
  free (out);
  if (!ok)
    return sutra_cli_error ("writing the rendered prompt failed: %s", strerror (errno));
  return 0;
}

SUTRA_CLI_COMMAND (chat_template, "chat-template",
                   "TOKENIZER_OR_MODEL --messages FILE.json [--add-generation-prompt] "
                   "[--template NAME] | --list-templates",
                   "render a conversation with the model's chat template (exact, no newline added)",
                   cmd_chat_template)
