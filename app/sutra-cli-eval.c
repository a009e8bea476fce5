/* sutra-cli-eval.c: `sutra eval MODEL --data FILE [--adapter DIR] [--reference MODEL2]
 * [--seq-len N]` prints one JSON object: loss, perplexity, tokens, examples (and kl_mean,
 * kl_p99, kl_max, top1_agreement, reference_loss with --reference).
 * `sutra eval MODEL --llamacpp-logits FILE [--bos ID] [--adapter DIR]` compares the model
 * with llama.cpp on the file `llama-perplexity --kl-divergence-base FILE` wrote;
 * --gguf-weights X.gguf first replaces the model's weights by those of a GGUF export (so a
 * quantized file is compared with our model running the same quantized weights). */
#include "sutra-chat.h"
#include "sutra-cli.h"
#include "sutra-eval.h"
#include "sutra-fsutil.h"
#include "sutra-gguf-export.h"
#include "sutra-model.h"
#include "sutra-tokenizer.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

static const SutraCliOptSpec opts[] = {
  { "data", true }, { "adapter", true }, { "reference", true }, { "seq-len", true },
  { "llamacpp-logits", true }, { "bos", true }, { "gguf-weights", true }, { NULL, false },
};

/* Loads the data with the model's tokenizer and chat template (either may be absent for
 * pre-tokenized rows) and evaluates it. */
static int
eval_data (SutraModel *m, SutraModel *ref, const char *path, int seq_len, SutraEvalResult *r)
{
  SutraError err;
  SutraTokenizer *tok = NULL;
  SutraChatTemplate *chat = NULL;
  char *tj = m->dir ? sutra_path_join (m->dir, "tokenizer.json") : NULL;
  if (tj && sutra_is_file (tj)) {
    if (sutra_tokenizer_load (m->dir, &tok, &err)) {
      free (tj);
      return sutra_cli_fail (&err);
    }
    if (sutra_chat_template_load (m->dir, NULL, &chat, &err))
      chat = NULL;              /* only chat rows need it; the loader reports their absence */
  }
  free (tj);
  SutraDatasetOptions o;
  sutra_dataset_options_init (&o);
  o.tokenizer = tok;
  o.chat = chat;
  o.vocab_size = m->cfg.vocab_size;
  if (seq_len > 0)
    o.seq_len = seq_len;
  SutraDataset *ds = NULL;
  int rc = 0;
  if (sutra_dataset_load (path, &o, &ds, &err)) {
    rc = sutra_cli_fail (&err);
  } else {
    size_t n = sutra_dataset_count (ds);
    SutraExample *ex = sutra_xcalloc (n + 1, sizeof *ex);
    for (size_t i = 0; i < n; i++)
      ex[i] = *sutra_dataset_get (ds, i);
    const SutraBadRow *bad;
    size_t nbad = sutra_dataset_bad_rows (ds, &bad);
    if (nbad)
      fprintf (stderr, "sutra: warning: %zu rows skipped (first: %s)\n", nbad, bad[0].message);
    SutraEvalOptions eo = { .reference = ref };
    if (sutra_eval_examples (m, ex, n, &eo, r, &err))
      rc = sutra_cli_fail (&err);
    free (ex);
  }
  sutra_dataset_free (ds);
  sutra_chat_template_free (chat);
  sutra_tokenizer_free (tok);
  return rc;
}

static void
print_result (const SutraEvalResult *r, const char *ref_key)
{
  json_object *o = json_object_new_object ();
  json_object_object_add (o, "loss", json_object_new_double (r->loss));
  json_object_object_add (o, "perplexity", json_object_new_double (r->perplexity));
  json_object_object_add (o, "tokens", json_object_new_int64 (r->tokens));
  json_object_object_add (o, "examples", json_object_new_int64 (r->examples));
  if (r->has_reference) {
    char k1[64], k2[64];
    snprintf (k1, sizeof k1, "%s_loss", ref_key);
    snprintf (k2, sizeof k2, "%s_perplexity", ref_key);
    json_object_object_add (o, k1, json_object_new_double (r->ref_loss));
    json_object_object_add (o, k2, json_object_new_double (r->ref_perplexity));
    json_object_object_add (o, "kl_mean", json_object_new_double (r->kl_mean));
    json_object_object_add (o, "kl_p99", json_object_new_double (r->kl_p99));
    json_object_object_add (o, "kl_max", json_object_new_double (r->kl_max));
    json_object_object_add (o, "top1_agreement", json_object_new_double (r->top1_agreement));
    json_object_object_add (o, "max_logprob_diff", json_object_new_double (r->max_logprob_diff));
  }
  printf ("%s\n", json_object_to_json_string_ext (o, JSON_C_TO_STRING_PLAIN));
  json_object_put (o);
}

static int
cmd_eval (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, opts))
    return 2;
  const char *data = sutra_cli_opt (&a, "data"), *lcpp = sutra_cli_opt (&a, "llamacpp-logits");
  if (a.npos != 1 || (!data && !lcpp) || (data && lcpp))
    return sutra_cli_usage_error ("eval", "expected MODEL and one of --data FILE or "
                                  "--llamacpp-logits FILE");
  long long bos = -1, seq = 0;
  if (!sutra_cli_opt_int (&a, "bos", -1, 1 << 30, &bos) ||
      !sutra_cli_opt_int (&a, "seq-len", 0, 1 << 24, &seq))
    return 2;
  SutraModel *m, *ref = NULL;
  int rc = sutra_cli_open_model (a.pos[0], &m);
  if (rc)
    return rc;
  SutraError err;
  const char *adapter = sutra_cli_opt (&a, "adapter");
  if (adapter && sutra_cli_attach_adapter (m, adapter, &err)) {
    rc = sutra_cli_fail (&err);
    goto out;
  }
  const char *gw = sutra_cli_opt (&a, "gguf-weights");
  if (gw && sutra_gguf_import_weights (m, gw, &err)) {
    rc = sutra_cli_fail (&err);
    goto out;
  }
  SutraEvalResult r;
  if (lcpp) {
    if (sutra_eval_llamacpp_logits (m, lcpp, (int) bos, &r, &err)) {
      rc = sutra_cli_fail (&err);
      goto out;
    }
    print_result (&r, "llamacpp");
    goto out;
  }
  const char *refdir = sutra_cli_opt (&a, "reference");
  if (refdir && (rc = sutra_cli_open_model (refdir, &ref)))
    goto out;
  rc = eval_data (m, ref, data, (int) seq, &r);
  if (rc == 0)
    print_result (&r, "reference");
out:
  sutra_model_free (ref);
  sutra_model_free (m);
  return rc;
}

SUTRA_CLI_COMMAND (eval, "eval",
                   "MODEL (--data FILE [--reference MODEL2] [--seq-len N] | --llamacpp-logits FILE "
                   "[--bos ID]) [--adapter DIR] [--gguf-weights FILE.gguf]",
                   "prints JSON with loss, perplexity and tokens (and the KL divergence to a "
                   "reference model or to llama.cpp)", cmd_eval)
