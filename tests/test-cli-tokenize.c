/* test-cli-tokenize.c: `sutra tokenize`, `detokenize`, `tokenizer-train` and
 * `bench-tokenize` through the real binary: exact output, exit codes, error lines. */
#include "test-util.h"

#include <string.h>

/* Path of a shared test tokenizer (kept until exit), or NULL when ../shared is absent. */
static const char *
tok_dir (const char *name)
{
  static GPtrArray *keep;
  const char *root = test_shared_path ("tokenizers");
  if (!root)
    return NULL;
  if (!keep)
    keep = g_ptr_array_new ();
  char *p = g_build_filename (root, name, NULL);
  g_ptr_array_add (keep, p);
  return p;
}

/* Runs the CLI; *err is reduced to its last line (warnings may precede the error). */
static int
run (char **out, char **err, const char *const *argv)
{
  int rc = test_run_cli (out, err, argv);
  char *e = *err;
  size_t n = strlen (e);
  while (n > 0 && e[n - 1] == '\n')
    n--;
  size_t start = n;
  while (start > 0 && e[start - 1] != '\n')
    start--;
  char *last = g_strndup (e + start, n - start);
  g_free (e);
  *err = last;
  return rc;
}

static void
test_tokenize (void)
{
  const char *gpt2 = tok_dir ("gpt2");
  if (!gpt2)
    return;
  char *out, *err;
  g_assert_cmpint (run (&out, &err, (const char *[]) { "tokenize", gpt2, "--text", "Hello world", NULL }),
                   ==, 0);
  g_assert_cmpstr (out, ==, "[15496,995]\n");
  g_free (out);
  g_free (err);
  const char *llama = tok_dir ("llama-spm");
  g_assert_cmpint (run (&out, &err, (const char *[]) { "tokenize", llama, "--text", "Hello world",
                                                        "--add-special", NULL }), ==, 0);
  g_assert_cmpstr (out, ==, "[1,15043,3186]\n");
  g_free (out);
  g_free (err);
  g_assert_cmpint (run (&out, &err, (const char *[]) { "tokenize", llama, "--text", "Hi there",
                                                        "--offsets", NULL }), ==, 0);
  g_assert_true (g_str_has_prefix (out, "{\"ids\":["));
  g_assert_nonnull (strstr (out, "\"offsets\":[[0,2],"));
  g_free (out);
  g_free (err);
  /* --text-file, with a special token parsed or not */
  char *f = g_build_filename (test_tmpdir (), "in.txt", NULL);
  g_assert_true (g_file_set_contents (f, "a<|endoftext|>", -1, NULL));
  g_assert_cmpint (run (&out, &err, (const char *[]) { "tokenize", gpt2, "--text-file", f, NULL }), ==, 0);
  g_assert_cmpstr (out, ==, "[64,50256]\n");
  g_free (out);
  g_free (err);
  g_assert_cmpint (run (&out, &err, (const char *[]) { "tokenize", gpt2, "--text-file", f,
                                                        "--no-parse-special", NULL }), ==, 0);
  g_assert_null (strstr (out, "50256"));
  g_free (out);
  g_free (err);
  g_free (f);
}

static void
test_detokenize (void)
{
  const char *llama = tok_dir ("llama-spm");
  if (!llama)
    return;
  char *out, *err;
  g_assert_cmpint (run (&out, &err, (const char *[]) { "detokenize", llama, "--ids", "1 15043 3186", NULL }),
                   ==, 0);
  g_assert_cmpstr (out, ==, "<s> Hello world");   /* exact: no newline added */
  g_free (out);
  g_free (err);
  g_assert_cmpint (run (&out, &err, (const char *[]) { "detokenize", llama, "--ids", "1,15043,3186",
                                                        "--skip-special", NULL }), ==, 0);
  g_assert_cmpstr (out, ==, "Hello world");
  g_free (out);
  g_free (err);
}

static void
test_errors (void)
{
  const char *gpt2 = tok_dir ("gpt2");
  if (!gpt2)
    return;
  char *out, *err;
  /* runtime errors: exit 1, one "sutra: error:" line naming the file */
  g_assert_cmpint (run (&out, &err, (const char *[]) { "tokenize", "/nonexistent/tok.json", "--text", "x",
                                                        NULL }), ==, 1);
  g_assert_true (g_str_has_prefix (err, "sutra: error: /nonexistent/tok.json: "));
  g_assert_cmpstr (out, ==, "");
  g_free (out);
  g_free (err);
  g_assert_cmpint (run (&out, &err, (const char *[]) { "detokenize", gpt2, "--ids", "1 99999999", NULL }),
                   ==, 1);
  g_assert_true (g_str_has_prefix (err, "sutra: error: "));
  g_assert_nonnull (strstr (err, "99999999"));
  g_free (out);
  g_free (err);
  char *bad = g_build_filename (test_tmpdir (), "bad.json", NULL);
  g_assert_true (g_file_set_contents (bad, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},"
                                           "\"merges\":[\"a b\"]}}", -1, NULL));
  g_assert_cmpint (run (&out, &err, (const char *[]) { "tokenize", bad, "--text", "a", NULL }), ==, 1);
  g_assert_nonnull (strstr (err, "model.merges[0]: unknown token 'b'"));
  g_assert_true (g_str_has_prefix (err, "sutra: error: "));
  g_free (out);
  g_free (err);
  g_free (bad);
  /* usage errors: exit 2 */
  const char *const *usage[] = {
    (const char *[]) { "tokenize", NULL },
    (const char *[]) { "tokenize", gpt2, NULL },
    (const char *[]) { "tokenize", gpt2, "--text", "a", "--text-file", "b", NULL },
    (const char *[]) { "detokenize", gpt2, "--ids", "one two", NULL },
    (const char *[]) { "detokenize", gpt2, NULL },
    (const char *[]) { "tokenizer-train", "--input", "x", NULL },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (usage); i++) {
    g_assert_cmpint (run (&out, &err, usage[i]), ==, 2);
    g_assert_true (g_str_has_prefix (err, "sutra: error: "));
    g_free (out);
    g_free (err);
  }
}

static void
test_train_and_bench (void)
{
  char *corpus = g_build_filename (test_tmpdir (), "corpus.txt", NULL);
  char *outp = g_build_filename (test_tmpdir (), "trained", "tokenizer.json", NULL);
  char *dir = g_path_get_dirname (outp);
  g_mkdir_with_parents (dir, 0755);
  GString *s = g_string_new (NULL);
  for (int i = 0; i < 500; i++)
    g_string_append_printf (s, "line %d of the small training corpus, again and again.\n", i);
  g_assert_true (g_file_set_contents (corpus, s->str, (gssize) s->len, NULL));
  g_string_free (s, TRUE);
  char *out, *err;
  g_assert_cmpint (run (&out, &err, (const char *[]) { "tokenizer-train", "--input", corpus, "--vocab-size",
                                                        "320", "--special", "<|endoftext|>", "--out",
                                                        outp, NULL }), ==, 0);
  g_assert_true (g_str_has_prefix (out, "{\"vocab_size\":"));
  g_free (out);
  g_free (err);
  /* the folder form of TOKENIZER */
  g_assert_cmpint (run (&out, &err, (const char *[]) { "tokenize", dir, "--text", "<|endoftext|>line",
                                                        NULL }), ==, 0);
  g_assert_true (g_str_has_prefix (out, "[0,"));
  g_free (out);
  g_free (err);
  g_assert_cmpint (run (&out, &err, (const char *[]) { "bench-tokenize", outp, "--mb", "1", "--seconds",
                                                        "0.05", NULL }), ==, 0);
  g_assert_true (g_str_has_prefix (out, "{\"mb_per_s\":"));
  g_assert_nonnull (strstr (out, "\"threads\":1"));
  g_free (out);
  g_free (err);
  /* the same as a `sutra bench` kind */
  g_assert_cmpint (run (&out, &err, (const char *[]) { "bench", "tokenize", "--tokenizer", outp, "--mb",
                                                        "1", "--seconds", "0.05", NULL }), ==, 0);
  g_assert_true (g_str_has_prefix (out, "{\"bench\":\"tokenize\",\"mb_per_s\":"));
  g_assert_nonnull (strstr (out, "\"threads\":1"));
  g_free (out);
  g_free (err);
  g_free (corpus);
  g_free (outp);
  g_free (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/tokenize/tokenize", test_tokenize);
  g_test_add_func ("/cli/tokenize/detokenize", test_detokenize);
  g_test_add_func ("/cli/tokenize/errors", test_errors);
  g_test_add_func ("/cli/tokenize/train-and-bench", test_train_and_bench);
  return g_test_run ();
}
