/* test-bpe-train.c: byte-level BPE training: the file loads back, round-trips any text,
 * learns the frequent words, honours vocab size and special tokens, and is deterministic. */
#include "test-util.h"
#include "sutra-bpe-train.h"
#include "sutra-fsutil.h"
#include "sutra-tokenizer.h"
#include "sutra-tokenizer-export.h"

#include <string.h>

static char *
corpus (size_t *len)
{
  GString *s = g_string_new (NULL);
  GRand *r = g_rand_new_with_seed (3);
  static const char *const words[] = { "the", "cat", "sat", "on", "mat", "hello", "world",
                                       "token", "tokenizer", "training", "\u00e9t\u00e9", "42",
                                       "\u65e5\u672c\u8a9e", "don't", "it's" };
  for (int i = 0; i < 4000; i++) {
    g_string_append (s, words[g_rand_int_range (r, 0, G_N_ELEMENTS (words))]);
    g_string_append (s, i % 11 == 10 ? ".\n" : " ");
    if (i % 97 == 0)
      g_string_append (s, "<|endoftext|>");
  }
  g_rand_free (r);
  *len = s->len;
  return g_string_free (s, FALSE);
}

static const char *const specials[] = { "<|endoftext|>", "<|im_start|>", "<|im_end|>" };

static char *
train_json (const char *text, size_t len, size_t vocab, size_t *jl)
{
  const char *texts[] = { text };
  size_t lens[] = { len };
  SutraBpeTrainOptions o = { .texts = texts, .text_lens = lens, .n_texts = 1, .vocab_size = vocab,
                             .special_tokens = specials, .n_special = 3 };
  char *json = NULL;
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_train_bpe_json (&o, &json, jl, &err), &err);
  return json;
}

static void
test_train_roundtrip (void)
{
  size_t len, jl;
  char *text = corpus (&len);
  char *json = train_json (text, len, 400, &jl);
  SutraTokenizer *tok = NULL;
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_load_json (json, jl, NULL, 0, "trained.json", &tok, &err), &err);
  g_assert_cmpuint (sutra_tokenizer_vocab_size (tok), <=, 400);
  g_assert_cmpuint (sutra_tokenizer_vocab_size (tok), >, 300);
  g_assert_true (sutra_tokenizer_is_byte_level (tok));
  for (int k = 0; k < 3; k++) {
    g_assert_cmpint (sutra_tokenizer_token_to_id (tok, specials[k], strlen (specials[k])), ==, k);
    g_assert_true (sutra_tokenizer_is_special (tok, k));
  }
  /* frequent words are single tokens (with the byte-level space) */
  g_assert_cmpint (sutra_tokenizer_token_to_id (tok, "\u0120tokenizer", strlen ("\u0120tokenizer")), >=, 0);
  g_assert_cmpint (sutra_tokenizer_token_to_id (tok, "hello", 5), >=, 0);
  /* special tokens never took part in merges: no merged token contains "<|" */
  for (size_t i = 0; i < sutra_tokenizer_n_merges (tok); i++)
    g_assert_null (strstr (sutra_tokenizer_merge (tok, i), "endoftext"));
  /* round trip, with and without unseen characters and specials */
  const char *probes[] = { "the cat sat on the mat.", "Unseen \u00fcml\u00e4uts and \U0001F642 emoji",
                           "<|im_start|>user\nhello<|im_end|>", "", "   spaces\t\ttabs\r\n" };
  for (size_t i = 0; i < G_N_ELEMENTS (probes); i++) {
    SutraEncoding enc = { 0 };
    test_assert_ok (sutra_tokenizer_encode (tok, probes[i], strlen (probes[i]), 0, &enc, &err), &err);
    char *out = NULL;
    test_assert_ok (sutra_tokenizer_decode (tok, enc.ids, enc.n, 0, &out, NULL, &err), &err);
    g_assert_cmpstr (out, ==, probes[i]);
    if (i == 0)
      g_assert_cmpuint (enc.n, <=, 8);   /* learned words: far fewer tokens than bytes */
    if (i == 2)
      g_assert_cmpint (enc.ids[0], ==, 1);
    free (out);
    sutra_encoding_clear (&enc);
  }
  sutra_tokenizer_free (tok);
  free (json);
  g_free (text);
}

static void
test_train_deterministic (void)
{
  size_t len, j1, j2;
  char *text = corpus (&len);
  char *a = train_json (text, len, 350, &j1);
  char *b = train_json (text, len, 350, &j2);
  g_assert_cmpuint (j1, ==, j2);
  g_assert_true (memcmp (a, b, j1) == 0);
  /* training from a file gives the same bytes */
  char *in = g_build_filename (test_tmpdir (), "corpus.txt", NULL);
  char *out = g_build_filename (test_tmpdir (), "tokenizer.json", NULL);
  g_assert_true (g_file_set_contents (in, text, (gssize) len, NULL));
  const char *files[] = { in };
  SutraBpeTrainOptions o = { .files = files, .n_files = 1, .vocab_size = 350,
                             .special_tokens = specials, .n_special = 3 };
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_train_bpe (&o, out, &err), &err);
  gchar *c = NULL;
  gsize cl = 0;
  g_assert_true (g_file_get_contents (out, &c, &cl, NULL));
  g_assert_cmpuint (cl, ==, j1);
  g_assert_true (memcmp (c, a, j1) == 0);
  g_free (c);
  free (a);
  free (b);
  g_free (in);
  g_free (out);
  g_free (text);
}

static void
test_train_errors (void)
{
  const char *texts[] = { "abc" };
  size_t lens[] = { 3 };
  SutraBpeTrainOptions o = { .texts = texts, .text_lens = lens, .n_texts = 1, .vocab_size = 100 };
  char *json = NULL;
  size_t jl;
  SutraError err = { 0 };
  g_assert_cmpint (sutra_tokenizer_train_bpe_json (&o, &json, &jl, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "vocab size 100"));
  const char *files[] = { "/nonexistent/corpus.txt" };
  SutraBpeTrainOptions f = { .files = files, .n_files = 1, .vocab_size = 300 };
  g_assert_cmpint (sutra_tokenizer_train_bpe_json (&f, &json, &jl, &err), !=, SUTRA_OK);
  g_assert_nonnull (strstr (err.message, "/nonexistent/corpus.txt"));
  /* invalid UTF-8 in the corpus is replaced, never a failure */
  const char *bad[] = { "ab\xff\xfe cd \xe2\x82" };
  size_t bl[] = { 10 };
  SutraBpeTrainOptions g = { .texts = bad, .text_lens = bl, .n_texts = 1, .vocab_size = 260 };
  test_assert_ok (sutra_tokenizer_train_bpe_json (&g, &json, &jl, &err), &err);
  free (json);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/bpe-train/roundtrip", test_train_roundtrip);
  g_test_add_func ("/engine/bpe-train/deterministic", test_train_deterministic);
  g_test_add_func ("/engine/bpe-train/errors", test_train_errors);
  return g_test_run ();
}
