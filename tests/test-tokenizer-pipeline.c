/* test-tokenizer-pipeline.c: each tokenizer.json component in isolation, with the expected
 * splits / offsets / decodes of Hugging Face tokenizers' own unit tests (the pre_tokenizers,
 * tokenizer/added_vocabulary.rs, byte_level.rs) plus cases worked out from its rules.
 *
 * The splits are observed through a BPE model with ignore_merges and a vocabulary made of
 * the expected pieces: a piece the pipeline produces whole maps to its id; anything else
 * falls apart into <unk> characters and the comparison fails. */
#include "test-util.h"
#include "sutra-tokenizer.h"
#include "sutra-tokenizer-export.h"

#include <json-c/json.h>
#include <string.h>

/* expectation tables leave trailing fields zero */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

typedef struct {
  const char *piece;   /* the normalized piece (a model token) */
  long s, e;           /* original byte offsets; s < 0: not checked */
  const char *added;   /* expect this added token's id instead */
} Exp;

#define END { NULL, 0, 0, NULL }

static json_object *
parse_or_null (const char *s)
{
  if (!s)
    return NULL;
  json_object *o = json_tokener_parse (s);
  g_assert_nonnull (o);
  return o;
}

/* Builds a tokenizer.json: given components, a BPE vocab of <unk> + extra pieces. */
static SutraTokenizer *
build (const char *normalizer, const char *pretok, const char *post, const char *decoder,
       const char *added, const char *model_extra, const char *const *pieces, size_t n_pieces)
{
  json_object *root = json_object_new_object ();
  json_object_object_add (root, "version", json_object_new_string ("1.0"));
  json_object_object_add (root, "added_tokens", added ? parse_or_null (added) : json_object_new_array ());
  json_object_object_add (root, "normalizer", parse_or_null (normalizer));
  json_object_object_add (root, "pre_tokenizer", parse_or_null (pretok));
  json_object_object_add (root, "post_processor", parse_or_null (post));
  json_object_object_add (root, "decoder", parse_or_null (decoder));
  json_object *model = model_extra ? parse_or_null (model_extra) : json_object_new_object ();
  json_object *vocab = json_object_new_object ();
  json_object_object_add (vocab, "<unk>", json_object_new_int (0));
  int next = 1;
  for (size_t i = 0; i < n_pieces; i++)
    if (!json_object_object_get_ex (vocab, pieces[i], NULL))
      json_object_object_add (vocab, pieces[i], json_object_new_int (next++));
  if (!json_object_object_get_ex (model, "type", NULL)) {
    json_object_object_add (model, "type", json_object_new_string ("BPE"));
    json_object_object_add (model, "unk_token", json_object_new_string ("<unk>"));
    json_object_object_add (model, "ignore_merges", json_object_new_boolean (1));
    json_object_object_add (model, "merges", json_object_new_array ());
  }
  json_object_object_add (model, "vocab", vocab);
  json_object_object_add (root, "model", model);
  const char *text = json_object_to_json_string_ext (root, JSON_C_TO_STRING_PLAIN);
  SutraTokenizer *tok = NULL;
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_load_json (text, strlen (text), NULL, 0, "test.json", &tok, &err),
                  &err);
  json_object_put (root);
  return tok;
}

static void
check (const char *normalizer, const char *pretok, const char *added, const char *text,
       size_t text_len, unsigned flags, const Exp *exp)
{
  const char *pieces[64];
  size_t n = 0;
  for (const Exp *e = exp; e->piece || e->added; e++)
    if (!e->added)
      pieces[n++] = e->piece;
  SutraTokenizer *tok = build (normalizer, pretok, NULL, NULL, added, NULL, pieces, n);
  SutraEncoding enc = { 0 };
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_encode (tok, text, text_len, flags, &enc, &err), &err);
  size_t k = 0;
  for (const Exp *e = exp; e->piece || e->added; e++, k++) {
    if (k >= enc.n)
      g_error ("text '%s': only %zu tokens, expected more (next '%s')", text, enc.n,
               e->added ? e->added : e->piece);
    const char *want = e->added ? e->added : e->piece;
    int32_t id = sutra_tokenizer_token_to_id (tok, want, strlen (want));
    if (enc.ids[k] != id)
      g_error ("text '%s': token %zu is '%s', expected '%s'", text, k,
               sutra_tokenizer_id_to_token (tok, enc.ids[k]), want);
    if (e->s >= 0 && ((long) enc.starts[k] != e->s || (long) enc.ends[k] != e->e))
      g_error ("text '%s': token %zu '%s' offsets (%zu,%zu), expected (%ld,%ld)", text, k, want,
               enc.starts[k], enc.ends[k], e->s, e->e);
  }
  if (k != enc.n)
    g_error ("text '%s': %zu tokens, expected %zu", text, enc.n, k);
  sutra_encoding_clear (&enc);
  sutra_tokenizer_free (tok);
}

#define CHECK(norm, pre, added, text, flags, ...)                                \
  do {                                                                           \
    static const Exp e_[] = { __VA_ARGS__, END };                                \
    check (norm, pre, added, text, strlen (text), flags, e_);                    \
  } while (0)

/* ---------------------------------------------------------------------------------------
 * pre-tokenizers (vectors from the tests in tokenizers/src/pre_tokenizers) */

static void
test_split_behaviors (void)
{
  const char *t = "How are you doing?";
#define SPLIT(b) "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+|[^\\\\w\\\\s]+\"}," \
                 "\"behavior\":\"" b "\",\"invert\":true}"
  CHECK (NULL, SPLIT ("Removed"), NULL, t, 0, { "How", 0, 3 }, { "are", 4, 7 },
         { "you", 8, 11 }, { "doing", 12, 17 }, { "?", 17, 18 });
  CHECK (NULL, SPLIT ("Isolated"), NULL, t, 0, { "How", 0, 3 }, { " ", 3, 4 }, { "are", 4, 7 },
         { " ", 7, 8 }, { "you", 8, 11 }, { " ", 11, 12 }, { "doing", 12, 17 }, { "?", 17, 18 });
  CHECK (NULL, SPLIT ("MergedWithPrevious"), NULL, t, 0, { "How ", 0, 4 }, { "are ", 4, 8 },
         { "you ", 8, 12 }, { "doing", 12, 17 }, { "?", 17, 18 });
  CHECK (NULL, SPLIT ("MergedWithNext"), NULL, t, 0, { "How", 0, 3 }, { " are", 3, 7 },
         { " you", 7, 11 }, { " doing", 11, 17 }, { "?", 17, 18 });
  CHECK (NULL, SPLIT ("Contiguous"), NULL, t, 0, { "How", 0, 3 }, { " ", 3, 4 }, { "are", 4, 7 },
         { " ", 7, 8 }, { "you", 8, 11 }, { " ", 11, 12 }, { "doing?", 12, 18 });
#undef SPLIT
  /* a String pattern and a \s+ regex split alike; invert on "Hello" equals splitting on " " */
  CHECK (NULL, "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Removed\",\"invert\":false}",
         NULL, "Hey, man!", 0, { "Hey,", 0, 4 }, { "man!", 5, 9 });
  CHECK (NULL, "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"behavior\":\"Removed\",\"invert\":false}",
         NULL, "Hey, man!", 0, { "Hey,", 0, 4 }, { "man!", 5, 9 });
  CHECK (NULL, "{\"type\":\"Split\",\"pattern\":{\"String\":\"Hello\"},\"behavior\":\"Removed\",\"invert\":true}",
         NULL, "Hello Hello Hello", 0, { "Hello", 0, 5 }, { "Hello", 6, 11 }, { "Hello", 12, 17 });
}

static void
test_metaspace (void)
{
  const char *ms = "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"always\",\"split\":true}";
  CHECK (NULL, ms, NULL, "Hey friend!", 0, { "\u2581Hey", 0, 3 }, { "\u2581friend!", 3, 11 });
  CHECK (NULL, ms, NULL, "Hey   friend!", 0, { "\u2581Hey", 0, 3 }, { "\u2581", 3, 4 },
         { "\u2581", 4, 5 }, { "\u2581friend!", 5, 13 });
  /* prepend_scheme "first": only the piece starting the input gets a prefix */
  CHECK (NULL, "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"first\",\"split\":false}",
         "[{\"id\":100,\"content\":\"<s>\",\"special\":true,\"normalized\":false}]",
         "Hey my friend <s>how\u2581are you", 0, { "\u2581Hey\u2581my\u2581friend\u2581", 0, 14 },
         { NULL, 14, 17, "<s>" }, { "how\u2581are\u2581you", 17, 30 });
  /* legacy add_prefix_space=false == never */
  CHECK (NULL, "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"add_prefix_space\":false}", NULL,
         "a b", 0, { "a", 0, 1 }, { "\u2581b", 1, 3 });
}

static void
test_char_pretokenizers (void)
{
  CHECK (NULL, "{\"type\":\"Digits\",\"individual_digits\":false}", NULL, "Hey 123 friend!", 0,
         { "Hey ", 0, 4 }, { "123", 4, 7 }, { " friend!", 7, 15 });
  CHECK (NULL, "{\"type\":\"Digits\",\"individual_digits\":true}", NULL, "Hey 123 friend!", 0,
         { "Hey ", 0, 4 }, { "1", 4, 5 }, { "2", 5, 6 }, { "3", 6, 7 }, { " friend!", 7, 15 });
  CHECK (NULL, "{\"type\":\"Punctuation\"}", NULL, "Hey friend!     How are you?!?", 0,
         { "Hey friend", 0, 10 }, { "!", 10, 11 }, { "     How are you", 11, 27 }, { "?", 27, 28 },
         { "!", 28, 29 }, { "?", 29, 30 });
  CHECK (NULL, "{\"type\":\"Whitespace\"}", NULL, "Hey man!", 0, { "Hey", 0, 3 }, { "man", 4, 7 },
         { "!", 7, 8 });
  CHECK (NULL, "{\"type\":\"Whitespace\"}", NULL, "How are you doing?", 0, { "How", 0, 3 },
         { "are", 4, 7 }, { "you", 8, 11 }, { "doing", 12, 17 }, { "?", 17, 18 });
  CHECK (NULL, "{\"type\":\"WhitespaceSplit\"}", NULL, "Hey, man, Good?", 0, { "Hey,", 0, 4 },
         { "man,", 5, 9 }, { "Good?", 10, 15 });
  CHECK (NULL, "{\"type\":\"BertPreTokenizer\"}", NULL, "Hey friend!     How are you?!?", 0,
         { "Hey", 0, 3 }, { "friend", 4, 10 }, { "!", 10, 11 }, { "How", 16, 19 },
         { "are", 20, 23 }, { "you", 24, 27 }, { "?", 27, 28 }, { "!", 28, 29 }, { "?", 29, 30 });
  CHECK (NULL, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},"
               "{\"type\":\"Digits\",\"individual_digits\":true}]}", NULL, "abc 12x", 0,
         { "abc", 0, 3 }, { "1", 4, 5 }, { "2", 5, 6 }, { "x", 6, 7 });
  CHECK (NULL, "{\"type\":\"CharDelimiterSplit\",\"delimiter\":\"-\"}", NULL, "a-bc--d", 0,
         { "a", 0, 1 }, { "bc", 2, 4 }, { "d", 6, 7 });
  CHECK (NULL, "{\"type\":\"FixedLength\",\"length\":2}", NULL, "h\u00e9llo", 0, { "h\u00e9", 0, 3 },
         { "ll", 3, 5 }, { "o", 5, 6 });
}

static void
test_whitespace_only (void)
{
  /* "\n" under Whitespace gives no pre-token at all */
  const char *none[] = { "x" };
  SutraTokenizer *tok = build (NULL, "{\"type\":\"Whitespace\"}", NULL, NULL, NULL, NULL, none, 1);
  SutraEncoding enc = { 0 };
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_encode (tok, "\n", 1, 0, &enc, &err), &err);
  g_assert_cmpuint (enc.n, ==, 0);
  sutra_encoding_clear (&enc);
  sutra_tokenizer_free (tok);
}

/* ---------------------------------------------------------------------------------------
 * added tokens (tokenizer/added_vocabulary.rs tests, with a Lowercase normalizer) */

#define LOWER "{\"type\":\"Lowercase\"}"

static void
test_added_tokens (void)
{
  const char *added =
    "[{\"id\":100,\"content\":\"<mask>\",\"special\":true,\"normalized\":false,\"lstrip\":true,"
    "\"rstrip\":true,\"single_word\":true},"
    "{\"id\":101,\"content\":\"ask>\",\"special\":false,\"normalized\":true},"
    "{\"id\":102,\"content\":\"<pad>\",\"special\":true,\"normalized\":false}]";
  const char *text = "Hi <mask> there\t<mask>\t<mask>\u2000 <pad> <mask><pad><pad>";
  CHECK (LOWER, NULL, added, text, 0, { "hi", 0, 2 }, { NULL, 2, 10, "<mask>" },
         { "there", 10, 15 }, { NULL, 15, 23, "<mask>" }, { NULL, 23, 33, "<mask>" },
         { NULL, 33, 38, "<pad>" }, { NULL, 38, 45, "<mask>" }, { NULL, 45, 50, "<pad>" },
         { NULL, 50, 55, "<pad>" });
  /* special tokens as plain text (encode_special_tokens) */
  CHECK (LOWER, NULL, added, text, SUTRA_ENCODE_NO_PARSE_SPECIAL, { "hi <m", -1, 0 },
         { NULL, -1, 0, "ask>" }, { " there\t<m", -1, 0 }, { NULL, -1, 0, "ask>" },
         { "\t<m", -1, 0 }, { NULL, -1, 0, "ask>" }, { "\u2000 <pad> <m", -1, 0 },
         { NULL, -1, 0, "ask>" }, { "<pad><pad>", -1, 0 });
  CHECK (LOWER, NULL,
         "[{\"id\":100,\"content\":\"my\",\"lstrip\":true,\"rstrip\":true},"
         "{\"id\":101,\"content\":\"name\"},{\"id\":102,\"content\":\"ony\",\"single_word\":true},"
         "{\"id\":103,\"content\":\"[CLS]\",\"special\":true,\"normalized\":false},"
         "{\"id\":104,\"content\":\"[SEP]\",\"special\":true,\"normalized\":false}]",
         "[CLS] My name is Anthony [SEP]", 0, { NULL, 0, 5, "[CLS]" }, { NULL, 5, 9, "my" },
         { NULL, 9, 13, "name" }, { " is anthony ", 13, 25 }, { NULL, 25, 30, "[SEP]" });
  const char *sw = "[{\"id\":100,\"content\":\"<mask>\",\"single_word\":true}]";
  CHECK (LOWER, NULL, sw, "<mask> My name <mask> A<mask> <mask>ony <mask>", 0,
         { NULL, -1, 0, "<mask>" }, { " my name ", -1, 0 }, { NULL, -1, 0, "<mask>" },
         { " a<mask> <mask>ony ", -1, 0 }, { NULL, -1, 0, "<mask>" });
  CHECK (LOWER, NULL, sw, "<mask>, <mask>- \u25cc\u0330<mask>", 0, { NULL, -1, 0, "<mask>" },
         { ", ", -1, 0 }, { NULL, -1, 0, "<mask>" }, { "- \u25cc\u0330<mask>", -1, 0 });
}

/* ---------------------------------------------------------------------------------------
 * normalizers: content and alignments */

#define CHARS "{\"type\":\"Split\",\"pattern\":{\"Regex\":\".\"},\"behavior\":\"Isolated\",\"invert\":false}"

static void
test_normalizers (void)
{
  /* NFKC expands the ligature: both chars align to its 3 bytes */
  CHECK ("{\"type\":\"NFKC\"}", CHARS, NULL, "\ufb01ne", 0, { "f", 0, 3 }, { "i", 0, 3 },
         { "n", 3, 4 }, { "e", 4, 5 });
  /* NFC: the composed char keeps the alignment of its first source char only (HF) */
  CHECK ("{\"type\":\"NFC\"}", CHARS, NULL, "e\u0301x", 0, { "\u00e9", 0, 1 }, { "x", 3, 4 });
  CHECK ("{\"type\":\"NFD\"}", CHARS, NULL, "\u00e9", 0, { "e", 0, 2 }, { "\u0301", 0, 2 });
  CHECK ("{\"type\":\"NFKD\"}", CHARS, NULL, "\u00bd", 0, { "1", 0, 2 }, { "\u2044", 0, 2 },
         { "2", 0, 2 });
  CHECK ("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFD\"},{\"type\":\"StripAccents\"},"
         LOWER "]}", "{\"type\":\"WhitespaceSplit\"}", NULL, "H\u00e9llo W\u00f6rld", 0,
         { "hello", 0, 6 }, { "world", 7, 13 });
  CHECK (LOWER, CHARS, NULL, "\u0130x", 0, { "i", 0, 2 }, { "\u0307", 0, 2 }, { "x", 2, 3 });
  /* Replace: the replacement aligns to the last byte of the match */
  CHECK ("{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"}", CHARS, NULL,
         "a   b", 0, { "a", 0, 1 }, { " ", 3, 4 }, { "b", 4, 5 });
  CHECK ("{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true}", CHARS, NULL, "  ab  ", 0,
         { "a", 2, 3 }, { "b", 3, 4 });
  CHECK ("{\"type\":\"Strip\",\"strip_left\":false,\"strip_right\":true}", CHARS, NULL, " ab ", 0,
         { " ", 0, 1 }, { "a", 1, 2 }, { "b", 2, 3 });
  CHECK ("{\"type\":\"Prepend\",\"prepend\":\"\u2581\"}", CHARS, NULL, "ab", 0, { "\u2581", 0, 1 },
         { "a", 0, 1 }, { "b", 1, 2 });
  CHECK ("{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"
         "\"strip_accents\":null,\"lowercase\":true}", "{\"type\":\"BertPreTokenizer\"}", NULL,
         "A\u4e2d\u00c9\tb", 0, { "a", 0, 1 }, { "\u4e2d", 1, 4 }, { "e", 4, 6 }, { "b", 7, 8 });
  CHECK ("{\"type\":\"Nmt\"}", "{\"type\":\"WhitespaceSplit\"}", NULL, "a\x01" "b\tc", 0,
         { "ab", 0, 3 }, { "c", 4, 5 });
  /* the one multi-char lowercase mapping and a Unicode space */
  CHECK (NULL, "{\"type\":\"WhitespaceSplit\"}", NULL, "a\u3000b\xc2\x85" "c", 0, { "a", 0, 1 },
         { "b", 4, 5 }, { "c", 7, 8 });
}

/* ---------------------------------------------------------------------------------------
 * ByteLevel pre-tokenizer and post-processor offsets (byte_level.rs) */

static void
test_byte_level_offsets (void)
{
  const char *pieces[] = { "\u0120\u0120\u0120\u0120Hello\u0120\u0120", "\u0120" };
  SutraTokenizer *tok = build (NULL, "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                               "\"trim_offsets\":true,\"use_regex\":false}",
                               "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true}",
                               "{\"type\":\"ByteLevel\"}", NULL, NULL, pieces, 2);
  SutraEncoding enc = { 0 };
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_encode (tok, "    Hello  ", 11, 0, &enc, &err), &err);
  g_assert_cmpuint (enc.n, ==, 1);
  g_assert_cmpuint (enc.starts[0], ==, 4);
  g_assert_cmpuint (enc.ends[0], ==, 9);
  sutra_encoding_clear (&enc);
  /* a lone prefix-space token keeps its start, its end is trimmed */
  test_assert_ok (sutra_tokenizer_encode (tok, " ", 1, 0, &enc, &err), &err);
  g_assert_cmpuint (enc.n, ==, 1);
  g_assert_cmpuint (enc.starts[0], ==, 0);
  g_assert_cmpuint (enc.ends[0], ==, 0);
  sutra_encoding_clear (&enc);
  g_assert_true (sutra_tokenizer_is_byte_level (tok));
  sutra_tokenizer_free (tok);
}

/* ---------------------------------------------------------------------------------------
 * post-processors */

static void
test_post_processors (void)
{
  const char *pieces[] = { "hello", "[CLS]", "[SEP]" };
  const char *added = "[{\"id\":2,\"content\":\"[CLS]\",\"special\":true,\"normalized\":false},"
                      "{\"id\":3,\"content\":\"[SEP]\",\"special\":true,\"normalized\":false}]";
  const char *posts[] = {
    "{\"type\":\"TemplateProcessing\",\"single\":\"[CLS]:0 $A:0 [SEP]:0\",\"pair\":\"$A $B\","
    "\"special_tokens\":{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[2],\"tokens\":[\"[CLS]\"]},"
    "\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[3],\"tokens\":[\"[SEP]\"]}}}",
    "{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",3],\"cls\":[\"[CLS]\",2]}",
    "{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\",\"trim_offsets\":false},"
    "{\"type\":\"RobertaProcessing\",\"sep\":[\"[SEP]\",3],\"cls\":[\"[CLS]\",2]}]}",
  };
  for (size_t i = 0; i < G_N_ELEMENTS (posts); i++) {
    SutraTokenizer *tok = build (NULL, NULL, posts[i], NULL, added, NULL, pieces, 3);
    SutraEncoding enc = { 0 };
    SutraError err = { 0 };
    test_assert_ok (sutra_tokenizer_encode (tok, "hello", 5, SUTRA_ENCODE_ADD_SPECIAL, &enc, &err),
                    &err);
    g_assert_cmpuint (enc.n, ==, 3);
    g_assert_cmpint (enc.ids[0], ==, 2);
    g_assert_cmpint (enc.ids[1], ==, 1);
    g_assert_cmpint (enc.ids[2], ==, 3);
    g_assert_cmpuint (enc.starts[0] + enc.ends[0] + enc.starts[2] + enc.ends[2], ==, 0);
    g_assert_cmpuint (enc.ends[1], ==, 5);
    sutra_encoding_clear (&enc);
    test_assert_ok (sutra_tokenizer_encode (tok, "hello", 5, 0, &enc, &err), &err);
    g_assert_cmpuint (enc.n, ==, 1);
    sutra_encoding_clear (&enc);
    g_assert_true (sutra_tokenizer_adds_bos (tok));
    g_assert_true (sutra_tokenizer_adds_eos (tok));
    g_assert_cmpint (sutra_tokenizer_role_id (tok, SUTRA_TOK_BOS), ==, 2);
    g_assert_cmpint (sutra_tokenizer_role_id (tok, SUTRA_TOK_EOS), ==, 3);
    sutra_tokenizer_free (tok);
  }
}

/* ---------------------------------------------------------------------------------------
 * decoders */

static void
check_decode (const char *decoder, const char *model_extra, const char *const *pieces, size_t n,
              const char *want)
{
  SutraTokenizer *tok = build (NULL, NULL, NULL, decoder, NULL, model_extra, pieces, n);
  int32_t ids[32];
  for (size_t i = 0; i < n; i++)
    ids[i] = sutra_tokenizer_token_to_id (tok, pieces[i], strlen (pieces[i]));
  char *out = NULL;
  size_t olen = 0;
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_decode (tok, ids, n, 0, &out, &olen, &err), &err);
  if (olen != strlen (want) || memcmp (out, want, olen) != 0)
    g_error ("decoder %s: got '%s', expected '%s'", decoder, out, want);
  free (out);
  sutra_tokenizer_free (tok);
}

static void
test_decoders (void)
{
  const char *wp[] = { "hello", "##world", ",", "do", "n't", "." };
  check_decode ("{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":true}", NULL, wp, 6,
                "helloworld, don't.");
  check_decode ("{\"type\":\"WordPiece\",\"prefix\":\"##\",\"cleanup\":false}", NULL, wp, 6,
                "helloworld , do n't .");
  const char *ms[] = { "\u2581\u2581a", "\u2581b", "c" };
  check_decode ("{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"always\"}",
                NULL, ms, 3, "a bc");
  check_decode ("{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"never\"}",
                NULL, ms, 3, "  a bc");
  const char *bf[] = { "<0xE2>", "<0x82>", "a", "<0xC3>", "<0xA9>" };
  check_decode ("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}",
                NULL, bf, 5, "\ufffd\ufffda\u00e9");
  const char *st[] = { "  x  ", " y" };
  check_decode ("{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":2}", NULL, st, 2, " xy");
  const char *ctc[] = { "<pad>", "h", "h", "<pad>", "e", "|", "l", "l", "<pad>", "l", "o" };
  check_decode ("{\"type\":\"CTC\",\"pad_token\":\"<pad>\",\"word_delimiter_token\":\"|\",\"cleanup\":true}",
                NULL, ctc, 11, "he llo");
  const char *bpe[] = { "hel", "lo</w>", "wor", "ld</w>" };
  check_decode ("{\"type\":\"BPEDecoder\",\"suffix\":\"</w>\"}", NULL, bpe, 4, "hello world");
  const char *rep[] = { "a_b", "_c" };
  check_decode ("{\"type\":\"Replace\",\"pattern\":{\"String\":\"_\"},\"content\":\" \"}", NULL, rep, 2,
                "a b c");
  /* byte-level: a character split across tokens is joined; a lone byte becomes U+FFFD */
  const char *bl[] = { "\u00e6\u0139", "\u00a5", "a\u00e6" };
  check_decode ("{\"type\":\"ByteLevel\"}", NULL, bl, 3, "\u65e5a\ufffd");
  /* no decoder: tokens joined with spaces */
  const char *nd[] = { "a", "b" };
  check_decode (NULL, NULL, nd, 2, "a b");
}

/* ---------------------------------------------------------------------------------------
 * models: WordPiece and Unigram on small vocabularies */

static void
test_wordpiece_model (void)
{
  const char *pieces[] = { "[UNK]", "un", "##aff", "##able", "a" };
  SutraTokenizer *tok = build (NULL, "{\"type\":\"WhitespaceSplit\"}", NULL, NULL, NULL,
                               "{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\","
                               "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":9}",
                               pieces, 5);
  SutraEncoding enc = { 0 };
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_encode (tok, "unaffable xyz aaaaaaaaaa a", 26, 0, &enc, &err), &err);
  /* unaffable -> un ##aff ##able; xyz -> [UNK]; 10 chars > 9 -> [UNK]; a */
  g_assert_cmpuint (enc.n, ==, 6);
  const char *want[] = { "un", "##aff", "##able", "[UNK]", "[UNK]", "a" };
  for (int i = 0; i < 6; i++)
    g_assert_cmpstr (sutra_tokenizer_id_to_token (tok, enc.ids[i]), ==, want[i]);
  g_assert_cmpuint (enc.starts[3], ==, 10);
  g_assert_cmpuint (enc.ends[3], ==, 13);
  sutra_encoding_clear (&enc);
  sutra_tokenizer_free (tok);
}

static void
test_unigram_model (void)
{
  /* scores make "ab" + "c" beat "a" + "bc"; "x" is unknown: fused unk */
  const char *json =
    "{\"version\":\"1.0\",\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":null,"
    "\"post_processor\":null,\"decoder\":null,\"model\":{\"type\":\"Unigram\",\"unk_id\":0,"
    "\"vocab\":[[\"<unk>\",0.0],[\"a\",-2.0],[\"b\",-2.0],[\"c\",-2.0],[\"ab\",-1.0],[\"bc\",-2.5],"
    "[\"<0x78>\",-5.0]]}}";
  SutraTokenizer *tok = NULL;
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_load_json (json, strlen (json), NULL, 0, "u.json", &tok, &err), &err);
  SutraEncoding enc = { 0 };
  test_assert_ok (sutra_tokenizer_encode (tok, "abcxxa", 6, 0, &enc, &err), &err);
  const int32_t want[] = { 4, 3, 0, 1 };
  g_assert_cmpuint (enc.n, ==, 4);
  for (int i = 0; i < 4; i++)
    g_assert_cmpint (enc.ids[i], ==, want[i]);
  g_assert_cmpuint (enc.starts[2], ==, 3);
  g_assert_cmpuint (enc.ends[2], ==, 5);
  sutra_encoding_clear (&enc);
  g_assert_cmpfloat (sutra_tokenizer_token_score (tok, 4), ==, -1.0f);
  g_assert_cmpint (sutra_tokenizer_token_type (tok, 0), ==, SUTRA_TOKEN_TYPE_UNKNOWN);
  sutra_tokenizer_free (tok);
  /* the same with byte_fallback: the unknown run becomes its bytes */
  char *j2 = g_strdup (json);
  char *p = strstr (j2, "\"unk_id\":0,");
  memcpy (p, "\"unk_id\":0,", 11);
  char *j3 = g_strdup_printf ("%.*s\"byte_fallback\":true,%s", (int) (p - j2), j2, p);
  test_assert_ok (sutra_tokenizer_load_json (j3, strlen (j3), NULL, 0, "u.json", &tok, &err), &err);
  test_assert_ok (sutra_tokenizer_encode (tok, "xx", 2, 0, &enc, &err), &err);
  g_assert_cmpuint (enc.n, ==, 2);
  g_assert_cmpint (enc.ids[0], ==, 6);
  g_assert_cmpint (enc.ids[1], ==, 6);
  g_assert_cmpint (sutra_tokenizer_token_type (tok, 6), ==, SUTRA_TOKEN_TYPE_BYTE);
  sutra_encoding_clear (&enc);
  sutra_tokenizer_free (tok);
  g_free (j2);
  g_free (j3);
}

/* The Llama-3 and Qwen2 split patterns (Split + ByteLevel without its own regex) */
static void
test_llama3_qwen2_patterns (void)
{
  const char *llama3 =
    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?"
    "\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
    "\"behavior\":\"Isolated\",\"invert\":false}";
  const char *text = "Hello world's 12345 test\n\n  x IT'S";
  CHECK (NULL, llama3, NULL, text, 0, { "Hello", 0, 5 }, { " world", 5, 11 }, { "'s", 11, 13 },
         { " ", 13, 14 }, { "123", 14, 17 }, { "45", 17, 19 }, { " test", 19, 24 },
         { "\n\n", 24, 26 }, { " ", 26, 27 }, { " x", 27, 29 }, { " IT", 29, 32 }, { "'S", 32, 34 });
  /* Qwen2: single digits */
  char *qwen = g_strdup (llama3);
  char *p = strstr (qwen, "{1,3}");
  memmove (p, p + 5, strlen (p + 5) + 1);
  CHECK (NULL, qwen, NULL, "a 2024!", 0, { "a", 0, 1 }, { " ", 1, 2 }, { "2", 2, 3 }, { "0", 3, 4 },
         { "2", 4, 5 }, { "4", 5, 6 }, { "!", 6, 7 });
  g_free (qwen);
  /* with the byte-level map after it (Llama-3 layout): pieces are byte-level strings */
  char *seq = g_strdup_printf ("{\"type\":\"Sequence\",\"pretokenizers\":[%s,{\"type\":\"ByteLevel\","
                               "\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]}",
                               llama3);
  CHECK (NULL, seq, NULL, "Hi  \u00e9t\u00e9\n", 0, { "Hi", 0, 2 }, { "\u0120", 2, 3 },
         { "\u0120\u00c3\u00a9t\u00c3\u00a9", 3, 9 }, { "\u010a", 9, 10 });
  g_free (seq);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/tokenizer/split-behaviors", test_split_behaviors);
  g_test_add_func ("/engine/tokenizer/metaspace", test_metaspace);
  g_test_add_func ("/engine/tokenizer/llama3-qwen2-patterns", test_llama3_qwen2_patterns);
  g_test_add_func ("/engine/tokenizer/char-pretokenizers", test_char_pretokenizers);
  g_test_add_func ("/engine/tokenizer/whitespace-only", test_whitespace_only);
  g_test_add_func ("/engine/tokenizer/added-tokens", test_added_tokens);
  g_test_add_func ("/engine/tokenizer/normalizers", test_normalizers);
  g_test_add_func ("/engine/tokenizer/byte-level-offsets", test_byte_level_offsets);
  g_test_add_func ("/engine/tokenizer/post-processors", test_post_processors);
  g_test_add_func ("/engine/tokenizer/decoders", test_decoders);
  g_test_add_func ("/engine/tokenizer/wordpiece-model", test_wordpiece_model);
  g_test_add_func ("/engine/tokenizer/unigram-model", test_unigram_model);
  return g_test_run ();
}
