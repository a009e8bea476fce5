/* test-tokenizer-threads.c: one loaded tokenizer encoding and decoding from several threads
 * at once (shared BPE cache, regexes, vocab) gives the same results as one thread. Runs
 * under TSan in the thread-test build. */
#include "test-util.h"
#include "sutra-tokenizer.h"

#include <pthread.h>
#include <string.h>

#define N_THREADS 4
#define N_TEXTS   64

typedef struct {
  const SutraTokenizer *tok;
  char **texts;
  SutraEncoding *want;
  int failures;
} Job;

static void *
worker (void *arg)
{
  Job *j = arg;
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < N_TEXTS; i++) {
      SutraEncoding e = { 0 };
      SutraError err = { 0 };
      if (sutra_tokenizer_encode (j->tok, j->texts[i], strlen (j->texts[i]), SUTRA_ENCODE_ADD_SPECIAL,
                                  &e, &err) != SUTRA_OK) {
        j->failures++;
        continue;
      }
      if (e.n != j->want[i].n || memcmp (e.ids, j->want[i].ids, e.n * sizeof *e.ids) != 0
          || memcmp (e.starts, j->want[i].starts, e.n * sizeof *e.starts) != 0)
        j->failures++;
      char *out = NULL;
      if (sutra_tokenizer_decode (j->tok, e.ids, e.n, 0, &out, NULL, &err) != SUTRA_OK)
        j->failures++;
      free (out);
      sutra_encoding_clear (&e);
    }
  return NULL;
}

static void
run_for (const char *path)
{
  SutraTokenizer *tok = NULL;
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_load (path, &tok, &err), &err);
  char *texts[N_TEXTS];
  SutraEncoding want[N_TEXTS];
  GRand *r = g_rand_new_with_seed (7);
  static const char *const words[] = { "hello", "world", "  ", "tokens", "\u00e9t\u00e9", "42",
                                       "\u65e5\u672c", "\n", "don't", "<s>", "!!", "\U0001F642" };
  for (int i = 0; i < N_TEXTS; i++) {
    GString *s = g_string_new (NULL);
    int n = g_rand_int_range (r, 1, 40);
    for (int k = 0; k < n; k++) {
      g_string_append (s, words[g_rand_int_range (r, 0, G_N_ELEMENTS (words))]);
      g_string_append_c (s, ' ');
    }
    texts[i] = g_string_free (s, FALSE);
    memset (&want[i], 0, sizeof want[i]);
    test_assert_ok (sutra_tokenizer_encode (tok, texts[i], strlen (texts[i]), SUTRA_ENCODE_ADD_SPECIAL,
                                            &want[i], &err), &err);
  }
  /* a fresh tokenizer so the BPE cache starts empty and gets filled concurrently */
  SutraTokenizer *tok2 = NULL;
  test_assert_ok (sutra_tokenizer_load (path, &tok2, &err), &err);
  pthread_t th[N_THREADS];
  Job jobs[N_THREADS];
  for (int t = 0; t < N_THREADS; t++) {
    jobs[t] = (Job) { tok2, texts, want, 0 };
    g_assert_cmpint (pthread_create (&th[t], NULL, worker, &jobs[t]), ==, 0);
  }
  for (int t = 0; t < N_THREADS; t++) {
    pthread_join (th[t], NULL);
    g_assert_cmpint (jobs[t].failures, ==, 0);
  }
  for (int i = 0; i < N_TEXTS; i++) {
    g_free (texts[i]);
    sutra_encoding_clear (&want[i]);
  }
  g_rand_free (r);
  sutra_tokenizer_free (tok);
  sutra_tokenizer_free (tok2);
}

static void
test_concurrent (void)
{
  const char *root = test_shared_path ("tokenizers");
  if (!root)
    return;
  const char *names[] = { "gpt2", "llama-spm", "t5-small", "bert-base-uncased" };
  for (size_t i = 0; i < G_N_ELEMENTS (names); i++) {
    char *p = g_build_filename (root, names[i], NULL);
    run_for (p);
    g_free (p);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/tokenizer/concurrent", test_concurrent);
  return g_test_run ();
}
