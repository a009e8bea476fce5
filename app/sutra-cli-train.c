/* sutra-cli-train.c: `sutra train CONFIG.json [--KEY VALUE ...]` and `sutra resume RUN_DIR`.
 * Progress goes to stderr (one line per step), the final adapter/model path to stdout.
 * SIGINT/SIGTERM stop the run cleanly: a checkpoint is saved and `sutra resume` continues it. */
#include "sutra-cli.h"
#include "sutra-trainer.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static SutraTrainer *current;
static sigset_t stop_signals;

/* Waits for SIGINT/SIGTERM on its own thread (signal handlers may not take locks). */
static void *
signal_thread (void *data)
{
  int sig;
  (void) data;
  while (sigwait (&stop_signals, &sig) == 0) {
    if (sig == SIGUSR1)
      return NULL;                    /* our own wake-up at exit */
    if (current) {
      fprintf (stderr, "\nsutra: stopping after the current step (a checkpoint will be saved)...\n");
      sutra_trainer_request_stop (current);
    }
  }
  return NULL;
}

static void
on_event (const SutraTrainEvent *ev, void *data)
{
  bool quiet = data != NULL;
  switch (ev->kind) {
  case SUTRA_TRAIN_EV_STEP:
    if (!quiet)
      fprintf (stderr, "step %lld/%lld  loss %.4f  lr %.3g  grad_norm %.3f  %.0f tok/s  eta %.0fs\n",
               (long long) ev->step, (long long) ev->max_steps, ev->loss, ev->lr, ev->grad_norm,
               ev->tokens_per_s, ev->eta_s);
    break;
  case SUTRA_TRAIN_EV_EVAL:
    fprintf (stderr, "eval  step %lld  loss %.4f  perplexity %.3f\n", (long long) ev->step,
             ev->eval_loss, ev->eval_ppl);
    break;
  case SUTRA_TRAIN_EV_CHECKPOINT:
    fprintf (stderr, "checkpoint %s\n", ev->path);
    break;
  case SUTRA_TRAIN_EV_LOG:
    if (strncmp (ev->message, "step ", 5) != 0)
      fprintf (stderr, "%s\n", ev->message);
    break;
  default:
    break;
  }
}

static int
run_trainer (SutraTrainer *t)
{
  sigemptyset (&stop_signals);
  sigaddset (&stop_signals, SIGINT);
  sigaddset (&stop_signals, SIGTERM);
  sigaddset (&stop_signals, SIGUSR1);
  pthread_sigmask (SIG_BLOCK, &stop_signals, NULL);
  pthread_t th;
  current = t;
  pthread_create (&th, NULL, signal_thread, NULL);
  SutraError err;
  SutraStatus st = sutra_trainer_run (t, &err);
  current = NULL;
  pthread_kill (th, SIGUSR1);
  pthread_join (th, NULL);
  int rc = 0;
  if (st)
    rc = sutra_cli_fail (&err);
  else
    printf ("%s\n", sutra_trainer_result_path (t));
  return rc;
}

static const SutraCliOptSpec train_opts[] = { { "quiet", false }, { "*", true }, { NULL, false } };

static int
cmd_train (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, train_opts))
    return 2;
  if (a.npos != 1) {
    fprintf (stderr, "settings (use as JSON keys or --KEY VALUE):\n");
    size_t n;
    const SutraTrainKeyInfo *k = sutra_train_config_keys (&n);
    for (size_t i = 0; i < n; i++)
      fprintf (stderr, "  %-24s %-22s %s\n", k[i].key, k[i].type, k[i].help);
    return sutra_cli_usage_error ("train", "expected one CONFIG.json");
  }
  SutraTrainConfig c;
  sutra_train_config_init (&c);
  SutraError err;
  SutraStatus st = sutra_train_config_load (&c, a.pos[0], &err);
  for (int i = 0; !st && i < a.nopts; i++) {
    if (!strcmp (a.opt_name[i], "quiet"))
      continue;
    st = sutra_train_config_set (&c, a.opt_name[i], a.opt_value[i], &err);
    if (st)
      sutra_error_prefix (&err, "--%s", a.opt_name[i]);
  }
  SutraTrainer *t = NULL;
  if (!st)
    st = sutra_trainer_new (&c, on_event, sutra_cli_flag (&a, "quiet") ? (void *) 1 : NULL, &t, &err);
  sutra_train_config_clear (&c);
  if (st)
    return st == SUTRA_ERR_INVALID ? (sutra_cli_fail (&err), 2) : sutra_cli_fail (&err);
  int rc = run_trainer (t);
  sutra_trainer_free (t);
  return rc;
}

SUTRA_CLI_COMMAND (train, "train", "CONFIG.json [--KEY VALUE ...] [--quiet]",
                   "fine-tune (LoRA, QLoRA or full); writes the run folder (settings: sutra train)",
                   cmd_train)

static const SutraCliOptSpec resume_opts[] = { { "checkpoint", true }, { "quiet", false },
                                               { NULL, false } };

static int
cmd_resume (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, resume_opts))
    return 2;
  if (a.npos != 1)
    return sutra_cli_usage_error ("resume", "expected one RUN_DIR");
  SutraTrainer *t;
  SutraError err;
  if (sutra_trainer_new_resume (a.pos[0], sutra_cli_opt (&a, "checkpoint"), on_event,
                                sutra_cli_flag (&a, "quiet") ? (void *) 1 : NULL, &t, &err))
    return sutra_cli_fail (&err);
  int rc = run_trainer (t);
  sutra_trainer_free (t);
  return rc;
}

SUTRA_CLI_COMMAND (resume, "resume", "RUN_DIR [--checkpoint DIR] [--quiet]",
                   "continue a run from its latest (or the given) checkpoint", cmd_resume)
