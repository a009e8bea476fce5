/* sutra-cli-init.c: `sutra init-random CONFIG --out DIR [--seed S] [--std X] [--vocab N]
 * [--tokenizer DIR]`: a model folder with freshly initialised weights (transformers' init:
 * normal(0, std), norms at one) from a config.json (a file or a model folder). Benchmarks and
 * the llama.cpp check use it to make models shaped like real ones; --vocab resizes the
 * vocabulary to match a tokenizer, whose files --tokenizer copies into the folder. */
#include "sutra-cli.h"
#include "sutra-fsutil.h"
#include "sutra-model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const SutraCliOptSpec opts[] = {
  { "out", true }, { "seed", true }, { "std", true }, { "vocab", true }, { "tokenizer", true },
  { NULL, false },
};

static int
cmd_init_random (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, opts))
    return 2;
  const char *out = sutra_cli_opt (&a, "out");
  if (a.npos != 1 || !out)
    return sutra_cli_usage_error ("init-random", "expected CONFIG (config.json or a folder) and --out DIR");
  long long seed = 42, vocab = 0;
  double std = 0.02;
  if (!sutra_cli_opt_int (&a, "seed", 0, INT64_MAX, &seed) ||
      !sutra_cli_opt_int (&a, "vocab", 0, 1 << 24, &vocab) || !sutra_cli_opt_double (&a, "std", &std))
    return 2;
  SutraError err;
  SutraModelConfig cfg;
  char *dir = sutra_is_dir (a.pos[0]) ? sutra_xstrdup (a.pos[0]) : sutra_path_dirname (a.pos[0]);
  SutraStatus st;
  if (sutra_is_dir (a.pos[0]))
    st = sutra_model_config_load (dir, &cfg, &err);
  else {
    char *text;
    size_t len;
    st = sutra_read_file (a.pos[0], 0, &text, &len, &err);
    if (!st) {
      st = sutra_model_config_parse (text, len, a.pos[0], &cfg, &err);
      free (text);
    }
  }
  free (dir);
  if (st)
    return sutra_cli_fail (&err);
  if (vocab > 0)
    cfg.vocab_size = (int) vocab;
  SutraModel *m;
  if ((st = sutra_model_new_random (&cfg, (float) std, (uint64_t) seed, &m, &err)))
    return sutra_cli_fail (&err);
  if (!st)
    st = sutra_mkdir_p (out, &err);
  if (!st)
    st = sutra_model_write_files (m, out, SUTRA_F32, &err);
  const char *tdir = sutra_cli_opt (&a, "tokenizer");
  static const char *const files[] = { "tokenizer.json", "tokenizer_config.json",
                                       "special_tokens_map.json", "chat_template.jinja",
                                       "generation_config.json" };
  for (size_t i = 0; !st && tdir && i < sizeof files / sizeof files[0]; i++) {
    char *src = sutra_path_join (tdir, files[i]), *dst = sutra_path_join (out, files[i]);
    if (sutra_is_file (src))
      st = sutra_copy_file (src, dst, &err);
    free (src);
    free (dst);
  }
  sutra_model_free (m);
  if (st)
    return sutra_cli_fail (&err);
  printf ("%s\n", out);
  return 0;
}

SUTRA_CLI_COMMAND (init_random, "init-random",
                   "CONFIG --out DIR [--seed S] [--std X] [--vocab N] [--tokenizer DIR]",
                   "writes a model folder with random weights shaped by a config.json",
                   cmd_init_random)
