/* sutra-cli-bench-tokenize.c: the encode-speed benchmark, as `sutra bench tokenize`
 * (a SUTRA_BENCH_KIND) and as the stand-alone `sutra bench-tokenize` (DESIGN.md section 6).
 *
 *   sutra bench tokenize [--tokenizer PATH|trained] [--text-file FILE] [--mb N]
 *                        [--chunk BYTES] [--seconds S]
 *   sutra bench-tokenize [TOKENIZER] [--text-file FILE] [--mb N] [--chunk BYTES]
 *                        [--seconds S] [--train]
 * Builds a text of at least N MB (default 10) by repeating FILE, or else the licence texts in
 * /usr/share/common-licenses, or else generated words; encodes it on one thread in pieces
 * of about BYTES (default 4096, cut after a newline; 0 = one call) for at least S seconds
 * (default 2) and prints one JSON object:
 *   {"mb_per_s":..,"tokens_per_s":..,"threads":1,"shape":"tokenize","tokenizer":"..",
 *    "vocab_size":..,"bytes":..,"tokens":..,"chunk":..,"seconds":..,"peak_rss_mb":..}
 * Without TOKENIZER it uses ../shared/testdata/tokenizers/gpt2 under the source tree when
 * present, else (or with --train / --tokenizer trained) trains a 32768-token byte-level BPE
 * first, on the seed text plus generated pseudo-words (the licences alone hold too few
 * distinct words). The encode runs on the calling thread only. */
#include "sutra-bpe-train.h"
#include "sutra-cli.h"
#include "sutra-cli-bench.h"
#include "sutra-pool.h"
#include "sutra-fsutil.h"
#include "sutra-tokenizer.h"
#include "sutra-tokenizer-export.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct {
  char *p;
  size_t n, cap;
} Text;

static void
text_add (Text *t, const char *s, size_t n)
{
  if (t->n + n + 1 > t->cap) {
    t->cap = (t->n + n + 1) * 2;
    t->p = sutra_xrealloc (t->p, t->cap);
  }
  memcpy (t->p + t->n, s, n);
  t->n += n;
  t->p[t->n] = '\0';
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* One copy of the seed text: FILE, the licence folder, or generated prose. */
static void
seed_text (Text *seed, const char *file, SutraError *err, bool *ok)
{
  *ok = true;
  if (file) {
    char *buf;
    size_t n;
    if (sutra_read_file (file, 0, &buf, &n, err) != SUTRA_OK) {
      *ok = false;
      return;
    }
    text_add (seed, buf, n);
    free (buf);
    return;
  }
  const char *dir = "/usr/share/common-licenses";
  DIR *d = opendir (dir);
  if (d) {
    char *names[256];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir (d)) && nn < 256)
      if (e->d_name[0] != '.')
        names[nn++] = sutra_xstrdup (e->d_name);
    closedir (d);
    qsort (names, (size_t) nn, sizeof *names, cmp_str);
    for (int i = 0; i < nn; i++) {
      char *path = sutra_path_join (dir, names[i]);
      char *buf;
      size_t n;
      if (sutra_is_file (path) && sutra_read_file (path, 0, &buf, &n, NULL) == SUTRA_OK) {
        text_add (seed, buf, n);
        free (buf);
      }
      free (path);
      free (names[i]);
    }
  }
  if (seed->n == 0) {
    static const char *const words[] = {
      "the", "model", "learns", "from", "data", "and", "tokens", "are", "counted", "while",
      "training", "runs", "on", "two", "cores", "with", "a", "small", "batch", "of", "text",
      "numbers", "like", "2024", "or", "3.14", "appear", "too", "quickly", "enough", "Hello",
      "world", "naïve", "café", "über", "日本語", "你好", "emoji", "🙂", "end",
    };
    uint32_t x = 12345;
    for (int i = 0; i < 200000; i++) {
      x = x * 1103515245u + 12345u;
      const char *w = words[(x >> 16) % (sizeof words / sizeof *words)];
      text_add (seed, w, strlen (w));
      text_add (seed, (x >> 8) % 13 == 0 ? ".\n" : (x >> 8) % 7 == 0 ? ", " : " ", (x >> 8) % 13 == 0 ? 2 : (x >> 8) % 7 == 0 ? 2 : 1);
    }
  }
}

/* Runs the benchmark with the options in `a` on tokenizer `tok_path` (NULL: default,
 * "trained": train one) and fills `out`. Returns 0, or 1 after printing the error. */
static int
run_bench (const SutraCliArgs *a, const char *tok_path, bool train, json_object *out)
{
  long long mb = 10, chunk = 4096;
  double seconds = 2.0;
  if (!sutra_cli_opt_int (a, "mb", 1, 4096, &mb) || !sutra_cli_opt_int (a, "chunk", 0, 1LL << 32, &chunk)
      || !sutra_cli_opt_double (a, "seconds", &seconds))
    return 2;
  SutraError err = { 0 };
  Text seed = { 0 }, text = { 0 };
  bool ok;
  seed_text (&seed, sutra_cli_opt (a, "text-file"), &err, &ok);
  if (!ok)
    return sutra_cli_fail (&err);
  if (seed.n == 0)
    return sutra_cli_error ("the benchmark text is empty");
  while (text.n < (size_t) mb * 1000000)
    text_add (&text, seed.p, seed.n);

  const char *path = tok_path;
  char *owned = NULL;
  bool trained = false;
  if (path && strcmp (path, "trained") == 0) {
    train = true;
    path = NULL;
  }
  if (!path) {
    char *shared = sutra_xasprintf ("%s/../shared/testdata/tokenizers/gpt2", SUTRA_SOURCE_DIR);
    if (sutra_is_dir (shared) && !train)
      path = owned = shared;
    else {
      free (shared);
      owned = sutra_xasprintf ("/tmp/sutra-bench-bpe-%d.json", (int) getpid ());
      /* pseudo-words from syllables give the trainer enough distinct material */
      Text extra = { 0 };
      static const char *const syl[] = { "ka", "lo", "min", "tra", "se", "qu", "an", "dor", "pe",
                                          "li", "ves", "un", "ho", "ri", "zet", "ma", "no", "bu" };
      uint32_t x = 7;
      while (extra.n < 3000000) {
        int len = 1 + (int) ((x >> 16) % 4);
        text_add (&extra, " ", 1);
        for (int k = 0; k < len; k++) {
          x = x * 1103515245u + 12345u;
          const char *sy = syl[(x >> 16) % (sizeof syl / sizeof *syl)];
          text_add (&extra, sy, strlen (sy));
        }
      }
      const char *specials[] = { "<|endoftext|>" };
      const char *texts[] = { seed.p, extra.p };
      size_t lens[] = { seed.n, extra.n };
      SutraBpeTrainOptions o = { .texts = texts, .text_lens = lens, .n_texts = 2,
                                 .vocab_size = 32768, .special_tokens = specials, .n_special = 1 };
      SutraStatus st = sutra_tokenizer_train_bpe (&o, owned, &err);
      free (extra.p);
      if (st != SUTRA_OK) {
        free (owned);
        free (seed.p);
        free (text.p);
        return sutra_cli_fail (&err);
      }
      path = owned;
      trained = true;
    }
  }
  SutraTokenizer *tok = NULL;
  SutraTokBenchResult r;
  int rc = 0;
  if (sutra_tokenizer_load (path, &tok, &err) != SUTRA_OK)
    rc = sutra_cli_fail (&err);
  else if (sutra_tokenizer_bench (tok, text.p, text.n, (size_t) chunk, seconds, &r, &err) != SUTRA_OK)
    rc = sutra_cli_fail (&err);
  else {
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    json_object_object_add (out, "mb_per_s", json_object_new_double (r.mb_per_s));
    json_object_object_add (out, "tokens_per_s",
                            json_object_new_double ((double) r.tokens * r.passes / r.seconds));
    json_object_object_add (out, "threads", json_object_new_int (1));
    json_object_object_add (out, "shape", json_object_new_string ("tokenize"));
    json_object_object_add (out, "gflops", NULL);
    json_object_object_add (out, "sgemm_gflops", NULL);
    json_object_object_add (out, "tokenizer",
                            json_object_new_string (trained ? "trained byte-level BPE" : path));
    json_object_object_add (out, "vocab_size",
                            json_object_new_int64 ((int64_t) sutra_tokenizer_vocab_size (tok)));
    json_object_object_add (out, "byte_level",
                            json_object_new_boolean (sutra_tokenizer_is_byte_level (tok)));
    json_object_object_add (out, "bytes", json_object_new_int64 ((int64_t) r.bytes));
    json_object_object_add (out, "tokens", json_object_new_int64 ((int64_t) r.tokens));
    json_object_object_add (out, "chunk", json_object_new_int64 (chunk));
    json_object_object_add (out, "seconds", json_object_new_double (r.seconds));
    /* on a busy machine the thread's CPU time is the steadier figure */
    json_object_object_add (out, "mb_per_cpu_s",
                            json_object_new_double (r.cpu_seconds > 0
                                                      ? (double) r.bytes * r.passes / 1e6 / r.cpu_seconds
                                                      : 0.0));
    json_object_object_add (out, "peak_rss_mb", json_object_new_double ((double) ru.ru_maxrss / 1024.0));
  }
  sutra_tokenizer_free (tok);
  if (trained)
    remove (owned);
  free (owned);
  free (seed.p);
  free (text.p);
  return rc;
}

static int
cmd_bench_tokenize (int argc, char **argv)
{
  static const SutraCliOptSpec spec[] = {
    { "text-file", true }, { "mb", true }, { "chunk", true }, { "seconds", true },
    { "train", false }, { NULL, false },
  };
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, spec))
    return 2;
  if (a.npos > 1)
    return sutra_cli_usage_error (a.command, "expected at most one TOKENIZER");
  json_object *out = json_object_new_object ();
  int rc = run_bench (&a, a.npos ? a.pos[0] : NULL, sutra_cli_flag (&a, "train"), out);
  if (rc == 0)
    printf ("%s\n", json_object_to_json_string_ext (out, JSON_C_TO_STRING_PLAIN
                                                         | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (out);
  return rc;
}

/* `sutra bench tokenize`: single-threaded by nature, so the reported thread count is 1. */
static int
bench_kind_tokenize (const SutraBenchOptions *o, json_object *out)
{
  int rc = run_bench (o->args, sutra_cli_opt (o->args, "tokenizer"), false, out);
  sutra_set_threads (1);
  return rc;
}

SUTRA_CLI_COMMAND (bench_tokenize, "bench-tokenize",
                   "[TOKENIZER] [--text-file FILE] [--mb N] [--chunk BYTES] [--seconds S] [--train]",
                   "encode speed of a tokenizer on one thread (MB/s), one JSON object",
                   cmd_bench_tokenize)
SUTRA_BENCH_KIND (tokenize, "tokenize",
                  "tokenizer encode MB/s on one thread (--tokenizer PATH|trained, --mb, --chunk, "
                  "--seconds, --text-file)", bench_kind_tokenize)
