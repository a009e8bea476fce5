/* fuzz-tokenizer-load.c: bytes = a tokenizer.json. Loading must succeed or fail with an
 * error, never crash; a file that loads is then used to encode and decode a few texts, so
 * whatever the loader accepted is also safe to run. */
#include "sutra-tokenizer.h"
#include "sutra-tokenizer-export.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
exercise (const SutraTokenizer *tok)
{
  static const char *const texts[] = {
    "Hello world", "  leading and <s> trailing  ", "\xe6\x97\xa5\xe6\x9c\xac 123 caf\xc3\xa9",
    ("a\xff" "b\xe2\x82"), "", "<|endoftext|>[CLS]</s>\n\n\t x",
  };
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
    for (unsigned flags = 0; flags < 4; flags++) {
      SutraEncoding enc = { 0 };
      SutraError err;
      if (sutra_tokenizer_encode (tok, texts[i], strlen (texts[i]), flags, &enc, &err) != SUTRA_OK)
        continue;
      char *out = NULL;
      if (sutra_tokenizer_decode (tok, enc.ids, enc.n, flags & 1, &out, NULL, &err) == SUTRA_OK)
        free (out);
      SutraDetokenizer *d = sutra_detokenizer_new (tok, 0);
      for (size_t k = 0; k < enc.n; k++)
        sutra_detokenizer_feed (d, enc.ids[k], NULL);
      sutra_detokenizer_flush (d, NULL);
      sutra_detokenizer_free (d);
      sutra_encoding_clear (&enc);
    }
  size_t nv = sutra_tokenizer_vocab_size (tok);
  for (size_t id = 0; id < nv && id < 64; id++) {
    sutra_tokenizer_id_to_token (tok, (int32_t) id);
    sutra_tokenizer_token_type (tok, (int32_t) id);
    sutra_tokenizer_token_score (tok, (int32_t) id);
  }
  for (size_t i = 0; i < sutra_tokenizer_n_merges (tok) && i < 16; i++)
    sutra_tokenizer_merge (tok, i);
  for (size_t i = 0; i < sutra_tokenizer_n_pretok_regexes (tok); i++)
    sutra_tokenizer_pretok_regex (tok, i);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  SutraTokenizer *tok = NULL;
  SutraError err;
  if (sutra_tokenizer_load_json ((const char *) data, size, NULL, 0, "fuzz.json", &tok, &err)
      == SUTRA_OK) {
    exercise (tok);
    sutra_tokenizer_free (tok);
  }
  return 0;
}
