/* sutra-cli-tokenize.c: `sutra tokenize` and `sutra detokenize` (DESIGN.md section 6).
 *
 *   sutra tokenize TOKENIZER (--text STR | --text-file FILE) [--add-special]
 *                  [--no-parse-special] [--offsets]
 *     prints the ids as one JSON array on one line ("[1,2,3]\n"); with --offsets, one JSON
 *     object {"ids":[...],"offsets":[[start,end],...]} (byte offsets into the text).
 *   sutra detokenize TOKENIZER --ids "1 2 3" [--skip-special] [--cleanup]
 *     prints the decoded text exactly, with no newline added.
 * TOKENIZER is a tokenizer.json path or a model folder. An id outside the vocabulary is an
 * error here (the library itself skips unknown ids, as Hugging Face does). */
#include "sutra-cli.h"
#include "sutra-fsutil.h"
#include "sutra-tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
cmd_tokenize (int argc, char **argv)
{
  static const SutraCliOptSpec spec[] = {
    { "text", true }, { "text-file", true }, { "add-special", false },
    { "no-parse-special", false }, { "offsets", false }, { NULL, false },
  };
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, spec))
    return 2;
  if (a.npos != 1)
    return sutra_cli_usage_error (a.command, "expected one TOKENIZER (tokenizer.json or model folder)");
  const char *text = sutra_cli_opt (&a, "text");
  const char *file = sutra_cli_opt (&a, "text-file");
  if (!text == !file)
    return sutra_cli_usage_error (a.command, "give exactly one of --text or --text-file");
  SutraError err = { 0 };
  char *buf = NULL;
  size_t len = text ? strlen (text) : 0;
  if (file && sutra_read_file (file, 0, &buf, &len, &err) != SUTRA_OK)
    return sutra_cli_fail (&err);
  SutraTokenizer *tok = NULL;
  if (sutra_tokenizer_load (a.pos[0], &tok, &err) != SUTRA_OK) {
    free (buf);
    return sutra_cli_fail (&err);
  }
  unsigned flags = (sutra_cli_flag (&a, "add-special") ? SUTRA_ENCODE_ADD_SPECIAL : 0)
                   | (sutra_cli_flag (&a, "no-parse-special") ? SUTRA_ENCODE_NO_PARSE_SPECIAL : 0);
  SutraEncoding enc = { 0 };
  int rc = 0;
  if (sutra_tokenizer_encode (tok, file ? buf : text, len, flags, &enc, &err) != SUTRA_OK)
    rc = sutra_cli_fail (&err);
  else {
    bool offs = sutra_cli_flag (&a, "offsets");
    fputs (offs ? "{\"ids\":[" : "[", stdout);
    for (size_t i = 0; i < enc.n; i++)
      printf ("%s%d", i ? "," : "", enc.ids[i]);
    if (offs) {
      fputs ("],\"offsets\":[", stdout);
      for (size_t i = 0; i < enc.n; i++)
        printf ("%s[%zu,%zu]", i ? "," : "", enc.starts[i], enc.ends[i]);
      fputs ("]}", stdout);
    } else
      fputs ("]", stdout);
    fputc ('\n', stdout);
    if (fflush (stdout) != 0)
      rc = sutra_cli_error ("writing the output failed");
  }
  sutra_encoding_clear (&enc);
  sutra_tokenizer_free (tok);
  free (buf);
  return rc;
}

static int
cmd_detokenize (int argc, char **argv)
{
  static const SutraCliOptSpec spec[] = {
    { "ids", true }, { "skip-special", false }, { "cleanup", false }, { NULL, false },
  };
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, spec))
    return 2;
  if (a.npos != 1)
    return sutra_cli_usage_error (a.command, "expected one TOKENIZER (tokenizer.json or model folder)");
  const char *ids_s = sutra_cli_opt (&a, "ids");
  if (!ids_s)
    return sutra_cli_usage_error (a.command, "--ids is required");
  int *ids = NULL, n = 0;
  if (!sutra_cli_parse_ids (ids_s, &ids, &n))
    return sutra_cli_usage_error (a.command, "--ids expects non-negative integers, got '%s'", ids_s);
  SutraError err = { 0 };
  SutraTokenizer *tok = NULL;
  if (sutra_tokenizer_load (a.pos[0], &tok, &err) != SUTRA_OK) {
    free (ids);
    return sutra_cli_fail (&err);
  }
  int rc = 0;
  size_t nv = sutra_tokenizer_vocab_size (tok);
  int32_t *v = malloc (sizeof *v * (size_t) (n ? n : 1));
  for (int i = 0; i < n && rc == 0; i++) {
    if ((size_t) ids[i] >= nv || !sutra_tokenizer_id_to_token (tok, ids[i]))
      rc = sutra_cli_error ("%s: id %d is not in the vocabulary (size %zu)", a.pos[0], ids[i], nv);
    v[i] = ids[i];
  }
  if (rc == 0) {
    unsigned flags = (sutra_cli_flag (&a, "skip-special") ? SUTRA_DECODE_SKIP_SPECIAL : 0)
                     | (sutra_cli_flag (&a, "cleanup") ? SUTRA_DECODE_CLEANUP : 0);
    char *out = NULL;
    size_t olen = 0;
    if (sutra_tokenizer_decode (tok, v, (size_t) n, flags, &out, &olen, &err) != SUTRA_OK)
      rc = sutra_cli_fail (&err);
    else {
      fwrite (out, 1, olen, stdout);
      if (fflush (stdout) != 0)
        rc = sutra_cli_error ("writing the output failed");
    }
    free (out);
  }
  free (v);
  free (ids);
  sutra_tokenizer_free (tok);
  return rc;
}

SUTRA_CLI_COMMAND (tokenize, "tokenize",
                   "TOKENIZER (--text STR | --text-file FILE) [--add-special] [--no-parse-special] [--offsets]",
                   "encode text with a tokenizer.json; prints the ids as a JSON array",
                   cmd_tokenize)
SUTRA_CLI_COMMAND (detokenize, "detokenize", "TOKENIZER --ids \"1 2 3\" [--skip-special] [--cleanup]",
                   "decode ids with a tokenizer.json; prints the text (no newline added)",
                   cmd_detokenize)
