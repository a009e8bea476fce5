/* sutra-cli-generate.c: `sutra generate` (one continuation, streamed) and `sutra chat`
 * (interactive conversation through the model's chat template; works with piped input).
 *
 * Sampling defaults come from generation_config.json. --temperature 0 means greedy; any other
 * --temperature, or --top-k/--top-p/--min-p, turns sampling on. The seed defaults to the clock
 * (pass --seed for reproducible samples). --print-ids prints only the new ids, space-separated,
 * instead of the text. */
#include "sutra-chat-session.h"
#include "sutra-cli.h"
#include "sutra-fsutil.h"
#include "sutra-generate.h"
#include "sutra-model.h"
#include "sutra-pool.h"
#include "sutra-tokenizer.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SAMPLING_OPTS                                                                        \
  { "max-tokens", true }, { "temperature", true }, { "top-k", true }, { "top-p", true },     \
  { "min-p", true }, { "repeat-penalty", true }, { "seed", true }, { "adapter", true },      \
  { "ignore-eos", false }, { "threads", true }

/* Applies the sampling flags over the generation_config.json defaults; false on a usage error. */
static bool
sampling_from_flags (const SutraCliArgs *a, const char *cmd, SutraGenParams *p)
{
  double v;
  long long n;
  SutraSamplerParams *s = &p->sampler;
  bool sample_flag = false;
  if (sutra_cli_opt (a, "top-k")) {
    if (!sutra_cli_opt_int (a, "top-k", 0, 1 << 30, &n))
      return false;
    s->top_k = (int) n;
    sample_flag = true;
  }
  if (sutra_cli_opt (a, "top-p")) {
    if (!sutra_cli_opt_double (a, "top-p", &v))
      return false;
    s->top_p = (float) v;
    sample_flag = true;
  }
  if (sutra_cli_opt (a, "min-p")) {
    if (!sutra_cli_opt_double (a, "min-p", &v))
      return false;
    s->min_p = (float) v;
    sample_flag = true;
  }
  if (sample_flag)
    s->do_sample = true;
  if (sutra_cli_opt (a, "temperature")) {
    if (!sutra_cli_opt_double (a, "temperature", &v))
      return false;
    if (v < 0) {
      sutra_cli_usage_error (cmd, "--temperature must be >= 0 (0 = greedy)");
      return false;
    }
    if (v == 0) {
      s->do_sample = false;
      s->temperature = 1.f;
    } else {
      s->do_sample = true;
      s->temperature = (float) v;
    }
  }
  if (sutra_cli_opt (a, "repeat-penalty")) {
    if (!sutra_cli_opt_double (a, "repeat-penalty", &v))
      return false;
    s->repetition_penalty = (float) v;
  }
  s->seed = (uint64_t) time (NULL) ^ ((uint64_t) getpid () << 32);
  if (sutra_cli_opt (a, "seed")) {
    if (!sutra_cli_opt_int (a, "seed", 0, INT64_MAX, &n))
      return false;
    s->seed = (uint64_t) n;
  }
  if (sutra_cli_opt (a, "max-tokens")) {
    if (!sutra_cli_opt_int (a, "max-tokens", 1, 1 << 24, &n))
      return false;
    p->max_new_tokens = (int) n;
  }
  p->ignore_eos = sutra_cli_flag (a, "ignore-eos");
  SutraError err;
  if (sutra_sampler_params_check (s, &err)) {
    sutra_cli_usage_error (cmd, "%s", err.message);
    return false;
  }
  return true;
}

/* Model, optional adapter, tokenizer (when the folder has one), generation config. */
static int
open_all (const SutraCliArgs *a, SutraModel **m, SutraTokenizer **tok, SutraGenConfig *gc)
{
  long long threads = 0;
  if (!sutra_cli_opt_int (a, "threads", 0, 256, &threads))
    return 2;
  if (threads > 0)
    sutra_set_threads ((int) threads);
  int rc = sutra_cli_open_model (a->pos[0], m);
  if (rc)
    return rc;
  SutraError err;
  const char *adapter = sutra_cli_opt (a, "adapter");
  *tok = NULL;
  SutraStatus st = adapter ? sutra_cli_attach_adapter (*m, adapter, &err) : SUTRA_OK;
  char *tj = sutra_path_join ((*m)->dir, "tokenizer.json");
  if (!st && sutra_is_file (tj))
    st = sutra_tokenizer_load ((*m)->dir, tok, &err);
  free (tj);
  if (!st)
    st = sutra_gen_config_load ((*m)->dir, &(*m)->cfg, *tok, gc, &err);
  if (st) {
    sutra_tokenizer_free (*tok);
    sutra_model_free (*m);
    return sutra_cli_fail (&err);
  }
  return 0;
}

/* Ctrl-C stops the running generation (an atomic store: safe in a signal handler); with
 * nothing running it ends the program. */
static SutraGenerator *volatile running;
static SutraChatSession *volatile chatting;

static void
on_sigint (int sig)
{
  (void) sig;
  SutraGenerator *g = running;
  SutraChatSession *c = chatting;
  if (g)
    sutra_generator_cancel (g);
  else if (c)
    sutra_chat_session_cancel (c);
  else
    _exit (130);
}

static bool
print_piece (void *user, int id, const char *text, size_t len)
{
  (void) user;
  (void) id;
  if (len) {
    fwrite (text, 1, len, stdout);
    fflush (stdout);
  }
  return true;
}

static const SutraCliOptSpec generate_opts[] = {
  { "prompt", true }, { "prompt-ids", true }, { "print-ids", false }, SAMPLING_OPTS, { NULL, false },
};

static int
cmd_generate (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, generate_opts))
    return 2;
  const char *prompt = sutra_cli_opt (&a, "prompt"), *pids = sutra_cli_opt (&a, "prompt-ids");
  if (a.npos != 1 || !prompt == !pids)
    return sutra_cli_usage_error ("generate", "expected MODEL and one of --prompt or --prompt-ids");
  int *ids = NULL, n = 0;
  if (pids && (!sutra_cli_parse_ids (pids, &ids, &n) || n == 0))
    return sutra_cli_usage_error ("generate", "--prompt-ids expects token ids like \"1 2 3\"");
  SutraModel *m;
  SutraTokenizer *tok;
  SutraGenConfig gc;
  int rc = open_all (&a, &m, &tok, &gc);
  if (rc) {
    free (ids);
    return rc;
  }
  SutraGenParams p;
  sutra_gen_params_init (&p, &gc);
  SutraError err;
  SutraGenerator *g = NULL;
  bool print_ids = sutra_cli_flag (&a, "print-ids");
  if (!sampling_from_flags (&a, "generate", &p)) {
    rc = 2;
    goto out;
  }
  if (prompt) {
    if (!tok) {
      rc = sutra_cli_error ("%s has no tokenizer.json: use --prompt-ids", m->dir);
      goto out;
    }
    SutraEncoding enc;
    if (sutra_tokenizer_encode (tok, prompt, strlen (prompt), SUTRA_ENCODE_ADD_SPECIAL, &enc, &err)) {
      rc = sutra_cli_fail (&err);
      goto out;
    }
    n = (int) enc.n;
    ids = sutra_xmalloc (sizeof (int) * (size_t) (n ? n : 1));
    for (int i = 0; i < n; i++)
      ids[i] = enc.ids[i];
    sutra_encoding_clear (&enc);
    if (n == 0) {
      rc = sutra_cli_error ("the prompt encodes to no tokens");
      goto out;
    }
  }
  /* a state just large enough for the prompt and the new tokens */
  if (sutra_generator_new (m, print_ids ? NULL : tok, n + p.max_new_tokens + 1, &g, &err)) {
    rc = sutra_cli_fail (&err);
    goto out;
  }
  running = g;
  signal (SIGINT, on_sigint);
  SutraGenResult r;
  SutraStatus st = sutra_generator_run (g, ids, n, &p, print_ids || !tok ? NULL : print_piece, NULL,
                                        &r, &err);
  running = NULL;
  if (st) {
    rc = sutra_cli_fail (&err);
    goto out;
  }
  if (print_ids || !tok) {
    int k;
    const int *out = sutra_generator_tokens (g, &k);
    for (int i = 0; i < k; i++)
      printf ("%s%d", i ? " " : "", out[i]);
  }
  printf ("\n");
  if (isatty (STDERR_FILENO) || getenv ("SUTRA_VERBOSE"))
    fprintf (stderr, "[%d prompt tokens (%d reused) %.1f tok/s; %d new %.1f tok/s; stop: %s]\n",
             r.n_prompt, r.n_reused, r.prefill_s > 0 ? (r.n_prompt - r.n_reused) / r.prefill_s : 0,
             r.n_generated, r.decode_s > 0 && r.n_generated > 1 ? (r.n_generated - 1) / r.decode_s : 0,
             sutra_stop_reason_name (r.reason));
out:
  sutra_generator_free (g);
  free (ids);
  sutra_tokenizer_free (tok);
  sutra_model_free (m);
  return rc;
}

SUTRA_CLI_COMMAND (generate, "generate",
                   "MODEL (--prompt STR | --prompt-ids \"1 2 3\") [--max-tokens N] [--temperature T] "
                   "[--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] "
                   "[--adapter DIR] [--ignore-eos] [--print-ids] [--threads N]",
                   "continues a prompt, streaming the text (--print-ids: the new ids)", cmd_generate)

/* ---- chat ---- */

static const SutraCliOptSpec chat_opts[] = {
  { "system", true }, { "template", true }, SAMPLING_OPTS, { NULL, false },
};

/* one line from stdin without its newline (NULL at EOF); caller frees */
static char *
read_line (void)
{
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline (&line, &cap, stdin);
  if (n < 0) {
    free (line);
    return NULL;
  }
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = 0;
  return line;
}

static int
cmd_chat (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, chat_opts))
    return 2;
  if (a.npos != 1)
    return sutra_cli_usage_error ("chat", "expected one MODEL");
  SutraModel *m;
  SutraTokenizer *tok;
  SutraGenConfig gc;
  int rc = open_all (&a, &m, &tok, &gc);
  if (rc)
    return rc;
  SutraGenParams p;
  sutra_gen_params_init (&p, &gc);
  SutraError err;
  SutraChatTemplate *tmpl = NULL;
  SutraChatSession *s = NULL;
  if (!sampling_from_flags (&a, "chat", &p)) {
    rc = 2;
    goto out;
  }
  if (!tok) {
    rc = sutra_cli_error ("%s has no tokenizer.json: chat needs one", m->dir);
    goto out;
  }
  if (sutra_chat_template_load (m->dir, sutra_cli_opt (&a, "template"), &tmpl, &err)) {
    rc = sutra_cli_fail (&err);
    goto out;
  }
  SutraChatSessionOptions so;
  sutra_chat_session_options_init (&so);
  so.system = sutra_cli_opt (&a, "system");
  if (sutra_chat_session_new (m, tok, tmpl, &so, &s, &err)) {
    rc = sutra_cli_fail (&err);
    goto out;
  }
  bool tty = isatty (STDIN_FILENO);
  if (tty)
    fprintf (stderr, "chatting with %s (/reset clears the conversation, /quit or Ctrl-D ends)\n",
             m->dir);
  signal (SIGINT, on_sigint);
  for (;;) {
    if (tty)
      fputs ("> ", stderr);
    char *line = read_line ();
    if (!line)
      break;
    if (!strcmp (line, "/quit") || !strcmp (line, "/exit")) {
      free (line);
      break;
    }
    if (!strcmp (line, "/reset")) {
      sutra_chat_session_clear (s);
      if (tty)
        fprintf (stderr, "(conversation cleared)\n");
      free (line);
      continue;
    }
    if (!line[0]) {
      free (line);
      continue;
    }
    SutraGenResult r;
    chatting = s;
    SutraStatus st = sutra_chat_session_send (s, line, &p, print_piece, NULL, &r, &err);
    chatting = NULL;
    free (line);
    if (st) {
      rc = sutra_cli_fail (&err);
      break;
    }
    printf ("\n");
    fflush (stdout);
    if (getenv ("SUTRA_VERBOSE"))
      fprintf (stderr, "[%d prompt tokens, %d reused, %d new; stop: %s]\n", r.n_prompt, r.n_reused,
               r.n_generated, sutra_stop_reason_name (r.reason));
  }
out:
  sutra_chat_session_free (s);
  sutra_chat_template_free (tmpl);
  sutra_tokenizer_free (tok);
  sutra_model_free (m);
  return rc;
}

SUTRA_CLI_COMMAND (chat, "chat",
                   "MODEL [--adapter DIR] [--system STR] [--template NAME] [--max-tokens N] "
                   "[--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] "
                   "[--seed S] [--threads N]",
                   "interactive chat through the model's chat template (/reset, /quit)", cmd_chat)
