/* sutra-cli-tokenizer-train.c: `sutra tokenizer-train`, byte-level BPE training.
 *
 *   sutra tokenizer-train --input FILE [--input FILE...] --vocab-size N [--special TOKEN...]
 *                         [--min-frequency N] --out tokenizer.json
 * Writes a Hugging Face tokenizer.json (see engine/text/sutra-bpe-train.h) and prints one
 * line: {"vocab_size":N,"merges":M,"out":"..."} (vocab size as loaded back). */
#include "sutra-bpe-train.h"
#include "sutra-cli.h"
#include "sutra-tokenizer.h"
#include "sutra-tokenizer-export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
cmd_tokenizer_train (int argc, char **argv)
{
  static const SutraCliOptSpec spec[] = {
    { "input", true }, { "vocab-size", true }, { "special", true }, { "min-frequency", true },
    { "out", true }, { NULL, false },
  };
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, spec))
    return 2;
  if (a.npos != 0)
    return sutra_cli_usage_error (a.command, "unexpected argument '%s'", a.pos[0]);
  const char *files[SUTRA_CLI_MAX_OPTS], *specials[SUTRA_CLI_MAX_OPTS];
  size_t nf = 0, ns = 0;
  for (int i = 0; i < a.nopts; i++) {
    if (strcmp (a.opt_name[i], "input") == 0)
      files[nf++] = a.opt_value[i];
    else if (strcmp (a.opt_name[i], "special") == 0)
      specials[ns++] = a.opt_value[i];
  }
  const char *out = sutra_cli_opt (&a, "out");
  long long vocab = 0, minf = 2;
  if (!sutra_cli_opt_int (&a, "vocab-size", 256, (1 << 24) - 1, &vocab)
      || !sutra_cli_opt_int (&a, "min-frequency", 1, 1LL << 40, &minf))
    return 2;
  if (nf == 0 || !out || vocab == 0)
    return sutra_cli_usage_error (a.command, "--input, --vocab-size and --out are required");
  SutraBpeTrainOptions o = {
    .files = files, .n_files = nf, .vocab_size = (size_t) vocab,
    .min_frequency = (size_t) minf, .special_tokens = specials, .n_special = ns,
  };
  SutraError err = { 0 };
  if (sutra_tokenizer_train_bpe (&o, out, &err) != SUTRA_OK)
    return sutra_cli_fail (&err);
  SutraTokenizer *tok = NULL;
  if (sutra_tokenizer_load (out, &tok, &err) != SUTRA_OK)
    return sutra_cli_fail (&err);
  printf ("{\"vocab_size\":%zu,\"merges\":%zu,\"out\":\"%s\"}\n", sutra_tokenizer_vocab_size (tok),
          sutra_tokenizer_n_merges (tok), out);
  sutra_tokenizer_free (tok);
  return 0;
}

SUTRA_CLI_COMMAND (tokenizer_train, "tokenizer-train",
                   "--input FILE [--input FILE...] --vocab-size N [--special TOKEN...] "
                   "[--min-frequency N] --out tokenizer.json",
                   "train a byte-level BPE tokenizer.json on text files", cmd_tokenizer_train)
