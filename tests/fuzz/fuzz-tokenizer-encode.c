/* fuzz-tokenizer-encode.c: fixed small tokenizers built in memory, arbitrary input text
 * (invalid UTF-8 included). Byte 0 picks the tokenizer, byte 1 the flags, the rest is the
 * text. Checks: encode succeeds or reports an error; offsets lie inside the input with
 * start <= end; decode is valid UTF-8; streaming the ids adds up to the full decode and
 * never emits invalid UTF-8. A violated check aborts (a finding). */
#include "sutra-tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tokenizers ---- */

static const char *const fixed_json[] = {
  /* SentencePiece-style BPE with byte fallback and fused unk */
  "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,"
  "\"normalized\":false},{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
  "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false,\"rstrip\":true}],"
  "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},"
  "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]},"
  "\"pre_tokenizer\":null,\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":"
  "[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
  "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},"
  "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":"
  "\"\\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\","
  "\"content\":\" \",\"start\":1,\"stop\":0}]},\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\","
  "\"fuse_unk\":true,\"byte_fallback\":true,\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2,"
  "\"<0x41>\":3,\"<0xC3>\":4,\"<0xA9>\":5,\"<0xE2>\":6,\"<0x82>\":7,\"<0xAC>\":8,\"\\u2581\":9,"
  "\"a\":10,\"b\":11,\"ab\":12,\"\\u2581a\":13,\"\\u2581ab\":14,\"c\":15},"
  "\"merges\":[\"a b\",\"\\u2581 a\",\"\\u2581a b\"]}}",
  /* WordPiece, BERT pipeline */
  "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"[UNK]\",\"special\":true,"
  "\"normalized\":false},{\"id\":1,\"content\":\"[CLS]\",\"special\":true,\"normalized\":false},"
  "{\"id\":2,\"content\":\"[SEP]\",\"special\":true,\"normalized\":false}],"
  "\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"
  "\"strip_accents\":null,\"lowercase\":true},\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
  "\"post_processor\":{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",2],\"cls\":[\"[CLS]\",1]},"
  "\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true},"
  "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\","
  "\"max_input_chars_per_word\":20,\"vocab\":{\"[UNK]\":0,\"[CLS]\":1,\"[SEP]\":2,\"a\":3,\"##b\":4,"
  "\"ab\":5,\"##a\":6,\"!\":7,\"\\u4e2d\":8,\"e\":9,\"##e\":10}}}",
  /* Unigram with Nmt + NFKC + Replace regex and Metaspace */
  "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<pad>\",\"special\":true,"
  "\"normalized\":false},{\"id\":1,\"content\":\"</s>\",\"special\":true,\"normalized\":false}],"
  "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Nmt\"},{\"type\":\"NFKC\"},"
  "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"}]},"
  "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"first\","
  "\"split\":true},\"post_processor\":null,\"decoder\":{\"type\":\"Metaspace\",\"replacement\":"
  "\"\\u2581\",\"prepend_scheme\":\"first\",\"split\":true},\"model\":{\"type\":\"Unigram\","
  "\"unk_id\":2,\"byte_fallback\":true,\"vocab\":[[\"<pad>\",0.0],[\"</s>\",0.0],[\"<unk>\",0.0],"
  "[\"\\u2581\",-1.0],[\"a\",-2.0],[\"b\",-2.5],[\"ab\",-2.0],[\"\\u2581a\",-1.5],[\"<0xC3>\",-9.0],"
  "[\"<0xA9>\",-9.0]]}}",
  /* every split behavior, char classes and decoders in one pipeline */
  "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<mask>\",\"special\":true,"
  "\"normalized\":false,\"lstrip\":true,\"rstrip\":true,\"single_word\":true},{\"id\":1,"
  "\"content\":\"ab\",\"normalized\":true}],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":["
  "{\"type\":\"NFD\"},{\"type\":\"StripAccents\"},{\"type\":\"Lowercase\"},{\"type\":\"Strip\","
  "\"strip_left\":true,\"strip_right\":false},{\"type\":\"NFC\"}]},\"pre_tokenizer\":{\"type\":"
  "\"Sequence\",\"pretokenizers\":[{\"type\":\"Punctuation\",\"behavior\":\"Contiguous\"},"
  "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"behavior\":\"MergedWithNext\","
  "\"invert\":false},{\"type\":\"Split\",\"pattern\":{\"String\":\"x\"},\"behavior\":"
  "\"MergedWithPrevious\",\"invert\":true},{\"type\":\"Digits\",\"individual_digits\":true},"
  "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:a|\\\\p{Lu})*\"},\"behavior\":\"Removed\","
  "\"invert\":false},{\"type\":\"FixedLength\",\"length\":3}]},\"post_processor\":null,"
  "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"CTC\",\"pad_token\":\"b\","
  "\"word_delimiter_token\":\"|\",\"cleanup\":true},{\"type\":\"Strip\",\"content\":\"a\",\"start\":2,"
  "\"stop\":5},{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"c+\"},\"content\":\"C\"},"
  "{\"type\":\"BPEDecoder\",\"suffix\":\"d\"}]},\"model\":{\"type\":\"BPE\",\"unk_token\":\"<u>\","
  "\"continuing_subword_prefix\":\"##\",\"end_of_word_suffix\":\"</w>\",\"vocab\":{\"<u>\":2,"
  "\"a\":3,\"##b\":4,\"a##b\":5,\"c</w>\":6,\"##c</w>\":7,\"1\":8,\" \":9,\"##a\":10},"
  "\"merges\":[]}}",
};

/* Byte-level BPE over the full GPT-2 byte alphabet, built at run time. */
static char *
byte_level_json (void)
{
  size_t cap = 1 << 16, n = 0;
  char *s = malloc (cap);
  n += (size_t) snprintf (s + n, cap - n,
    "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<|endoftext|>\",\"special\":true,"
    "\"normalized\":false},{\"id\":1,\"content\":\"  \",\"normalized\":true},{\"id\":2,\"content\":"
    "\"<|im_end|>\",\"special\":true,\"normalized\":false,\"lstrip\":true}],\"normalizer\":"
    "{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
    "\"trim_offsets\":true,\"use_regex\":true},\"post_processor\":{\"type\":\"ByteLevel\","
    "\"add_prefix_space\":true,\"trim_offsets\":true},\"decoder\":{\"type\":\"ByteLevel\"},"
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"<|endoftext|>\":0,\"  \":1,\"<|im_end|>\":2");
  /* GPT-2 bytes_to_unicode */
  int k = 0;
  for (int b = 0; b < 256; b++) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    unsigned cp = printable ? (unsigned) b : 256u + (unsigned) k++;
    if (cp == '"' || cp == '\\')
      n += (size_t) snprintf (s + n, cap - n, ",\"\\%c\":%d", (char) cp, 3 + b);
    else
      n += (size_t) snprintf (s + n, cap - n, ",\"\\u%04x\":%d", cp, 3 + b);
  }
  n += (size_t) snprintf (s + n, cap - n,
    ",\"\\u0120t\":259,\"he\":260,\"\\u0120the\":261,\"in\":262},"
    "\"merges\":[\"\\u0120 t\",\"h e\",\"\\u0120t he\",\"i n\"]}}");
  return s;
}

#define N_TOK 5
static SutraTokenizer *toks[N_TOK];

static void
init (void)
{
  for (int i = 0; i < N_TOK; i++) {
    char *owned = NULL;
    const char *j = i < 4 ? fixed_json[i] : (owned = byte_level_json ());
    SutraError err;
    if (sutra_tokenizer_load_json (j, strlen (j), NULL, 0, "fuzz-fixed.json", &toks[i], &err)
        != SUTRA_OK) {
      fprintf (stderr, "fixed tokenizer %d does not load: %s\n", i, err.message);
      abort ();
    }
    free (owned);
  }
}

/* ---- checks ---- */

static int
utf8_ok (const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *) s;
  size_t i = 0;
  while (i < n) {
    unsigned c = u[i];
    int k;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF)
      k = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
      k = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      k = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else
      return 0;
    for (int j = 1; j <= k; j++) {
      if (i + (size_t) j >= n || u[i + (size_t) j] < lo || u[i + (size_t) j] > hi)
        return 0;
      lo = 0x80;
      hi = 0xBF;
    }
    i += (size_t) k + 1;
  }
  return 1;
}

static void
check_stream (const SutraTokenizer *tok, const int32_t *ids, size_t n, unsigned flags)
{
  char *full = NULL;
  size_t fl = 0;
  SutraError err;
  if (sutra_tokenizer_decode (tok, ids, n, flags, &full, &fl, &err) != SUTRA_OK)
    return;
  if (!utf8_ok (full, fl))
    abort ();
  SutraDetokenizer *d = sutra_detokenizer_new (tok, flags);
  char *acc = malloc (fl + 1);
  size_t al = 0;
  int ok = 1;
  for (size_t i = 0; i <= n && ok; i++) {
    size_t len;
    const char *p = i < n ? sutra_detokenizer_feed (d, ids[i], &len) : sutra_detokenizer_flush (d, &len);
    if (!utf8_ok (p, len) || al + len > fl)
      ok = 0;
    else {
      memcpy (acc + al, p, len);
      al += len;
    }
  }
  if (!ok || al != fl || memcmp (acc, full, fl) != 0)
    abort ();
  sutra_detokenizer_free (d);
  free (acc);
  free (full);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static int ready;
  if (!ready) {
    init ();
    ready = 1;
  }
  if (size < 2)
    return 0;
  const SutraTokenizer *tok = toks[data[0] % N_TOK];
  unsigned flags = data[1] & 3;
  const char *text = (const char *) data + 2;
  size_t len = size - 2;
  SutraEncoding enc = { 0 };
  SutraError err;
  if (sutra_tokenizer_encode (tok, text, len, flags, &enc, &err) == SUTRA_OK) {
    for (size_t i = 0; i < enc.n; i++)
      if (enc.starts[i] > enc.ends[i] || enc.ends[i] > len || enc.ids[i] < 0
          || (size_t) enc.ids[i] >= sutra_tokenizer_vocab_size (tok))
        abort ();
    check_stream (tok, enc.ids, enc.n, (data[1] >> 2) & 1);
    sutra_encoding_clear (&enc);
  }
  /* the same bytes read as ids */
  size_t nid = len / 2 < 64 ? len / 2 : 64;
  int32_t ids[64];
  size_t nv = sutra_tokenizer_vocab_size (tok);
  for (size_t i = 0; i < nid; i++)
    ids[i] = (int32_t) (((unsigned) (uint8_t) text[2 * i] | ((unsigned) (uint8_t) text[2 * i + 1] << 8))
                        % (nv + 3));   /* a few ids past the vocabulary too */
  check_stream (tok, ids, nid, (data[1] >> 3) & 1);
  return 0;
}
