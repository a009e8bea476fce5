/* test-cli-generate.c: the inference commands as scripts use them: `sutra generate --print-ids`
 * reproducing transformers' greedy continuation, text generation with a tokenizer, `sutra chat`
 * on piped input (/reset, /quit), `sutra eval` JSON, `sutra gguf-export` + `sutra gguf-info`,
 * and usage errors (exit 2). */
#include "test-util.h"

#include <json-c/json.h>
#include <math.h>
#include <string.h>

static void
test_generate_print_ids (void)
{
  const char *dir = test_shared_path ("hf-refs/llama-tiny");
  if (!dir)
    return;
  /* greedy_prompt / greedy_20 from hf-refs/llama-tiny/refs.safetensors */
  const char *argv[] = { "generate", dir, "--prompt-ids", "409 191 80 91 337 439 269 332",
                         "--max-tokens", "20", "--ignore-eos", "--print-ids", "--temperature", "0",
                         NULL };
  char *out = NULL, *errs = NULL;
  int rc = test_run_cli (&out, &errs, argv);
  g_assert_cmpint (rc, ==, 0);
  g_assert_cmpstr (out, ==, "257 361 467 417 234 186 289 502 332 173 402 90 422 130 41 402 452 332 343 13\n");
  g_free (out);
  g_free (errs);
  /* usage errors */
  const char *bad1[] = { "generate", dir, NULL };
  g_assert_cmpint (test_run_cli (NULL, NULL, bad1), ==, 2);
  const char *bad2[] = { "generate", dir, "--prompt-ids", "1 x", NULL };
  g_assert_cmpint (test_run_cli (NULL, NULL, bad2), ==, 2);
  const char *bad3[] = { "generate", dir, "--prompt-ids", "1 2", "--top-p", "2", NULL };
  g_assert_cmpint (test_run_cli (NULL, &errs, bad3), ==, 2);
  g_assert_nonnull (strstr (errs, "top_p"));
  g_free (errs);
  /* no tokenizer: --prompt is a runtime error naming the way out */
  const char *bad4[] = { "generate", dir, "--prompt", "hello", NULL };
  g_assert_cmpint (test_run_cli (NULL, &errs, bad4), ==, 1);
  g_assert_nonnull (strstr (errs, "--prompt-ids"));
  g_free (errs);
  /* an id outside the vocabulary */
  const char *bad5[] = { "generate", dir, "--prompt-ids", "1 99999", NULL };
  g_assert_cmpint (test_run_cli (NULL, &errs, bad5), ==, 1);
  g_assert_nonnull (strstr (errs, "sutra: error:"));
  g_free (errs);
}

/* a random model with Phi-3's tokenizer and chat template */
static const char *
phi3_model (void)
{
  static char *dir;
  const char *tdir = test_shared_path ("tokenizers/phi-3-mini");
  const char *cfg = test_shared_path ("hf-refs/llama-tiny/config.json");
  if (!tdir || !cfg)
    return NULL;
  if (dir)
    return dir;
  dir = g_build_filename (test_tmpdir (), "phi3-random", NULL);
  const char *argv[] = { "init-random", cfg, "--out", dir, "--vocab", "32064", "--std", "0.2",
                         "--tokenizer", tdir, NULL };
  g_assert_cmpint (test_run_cli (NULL, NULL, argv), ==, 0);
  return dir;
}

/* runs `sutra chat` on the given stdin text; returns stdout (and stderr when asked) */
static char *
run_chat (const char *dir, const char *input_text, char **errs)
{
  char *input = g_build_filename (test_tmpdir (), "chat-in.txt", NULL);
  g_assert_true (g_file_set_contents (input, input_text, -1, NULL));
  char *cmd = g_strdup_printf ("SUTRA_VERBOSE=1 '%s' chat '%s' --max-tokens 6 --temperature 0 "
                               "--system 'Be brief.' < '%s'", test_cli_path (), dir, input);
  const char *sh[] = { "/bin/sh", "-c", cmd, NULL };
  gchar *sout = NULL, *serr = NULL;
  gint status;
  g_assert_true (g_spawn_sync (NULL, (gchar **) sh, NULL, 0, NULL, NULL, &sout, &serr, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  if (errs)
    *errs = serr;
  else
    g_free (serr);
  g_free (cmd);
  g_free (input);
  return sout;
}

static void
test_generate_text_and_chat (void)
{
  const char *dir = phi3_model ();
  if (!dir)
    return;
  char *out = NULL, *errs = NULL;
  const char *argv[] = { "generate", dir, "--prompt", "Once upon a time", "--max-tokens", "8",
                         "--seed", "3", "--temperature", "0.9", NULL };
  g_assert_cmpint (test_run_cli (&out, &errs, argv), ==, 0);
  g_assert_cmpuint (strlen (out), >, 1);
  g_assert_true (g_utf8_validate (out, -1, NULL));
  char *again = NULL;
  g_assert_cmpint (test_run_cli (&again, NULL, argv), ==, 0);
  g_assert_cmpstr (out, ==, again);                  /* same seed, same text */
  g_free (again);
  g_free (out);
  g_free (errs);
  /* chat on piped input: one turn alone, then two turns, /reset, the first turn again, /quit
   * (the line after it is never read). Replies may contain newlines, so compare whole outputs:
   * the long session starts and ends with the one-turn reply. */
  char *one = run_chat (dir, "Hello\n/quit\n", NULL);
  char *errs2 = NULL;
  char *many = run_chat (dir, "Hello\nAnd then?\n/reset\nHello\n/quit\nnever\n", &errs2);
  g_assert_cmpuint (strlen (one), >, 1);
  g_assert_cmpuint (strlen (many), >, 2 * strlen (one));
  g_assert_true (g_str_has_prefix (many, one));
  g_assert_true (g_str_has_suffix (many, one));
  g_assert_nonnull (strstr (errs2, "reused"));      /* SUTRA_VERBOSE turn statistics */
  g_free (one);
  g_free (many);
  g_free (errs2);
}

static void
test_eval_and_gguf (void)
{
  const char *dir = phi3_model ();
  if (!dir)
    return;
  /* pre-tokenized rows and plain text */
  char *data = g_build_filename (test_tmpdir (), "eval.jsonl", NULL);
  g_assert_true (g_file_set_contents (data, "{\"text\": \"The cat sat on the mat.\"}\n"
                                      "{\"text\": \"A stitch in time saves nine.\"}\n", -1, NULL));
  char *out = NULL;
  const char *argv[] = { "eval", dir, "--data", data, NULL };
  g_assert_cmpint (test_run_cli (&out, NULL, argv), ==, 0);
  json_object *o = json_tokener_parse (out);
  g_assert_nonnull (o);
  json_object *v;
  g_assert_true (json_object_object_get_ex (o, "loss", &v));
  double loss = json_object_get_double (v);
  g_assert_true (json_object_object_get_ex (o, "perplexity", &v));
  g_assert_cmpfloat (fabs (json_object_get_double (v) - exp (loss)), <, 1e-6 * exp (loss));
  g_assert_true (json_object_object_get_ex (o, "tokens", &v));
  g_assert_cmpint (json_object_get_int (v), >, 10);
  g_assert_false (json_object_object_get_ex (o, "kl_mean", &v));
  json_object_put (o);
  g_free (out);
  const char *argv2[] = { "eval", dir, "--data", data, "--reference", dir, NULL };
  g_assert_cmpint (test_run_cli (&out, NULL, argv2), ==, 0);
  o = json_tokener_parse (out);
  g_assert_true (json_object_object_get_ex (o, "kl_mean", &v));
  g_assert_cmpfloat (json_object_get_double (v), <, 1e-9);
  g_assert_true (json_object_object_get_ex (o, "kl_p99", &v));
  json_object_put (o);
  g_free (out);
  /* GGUF export and info */
  char *gguf = g_build_filename (test_tmpdir (), "phi3.gguf", NULL);
  const char *ex[] = { "gguf-export", dir, "--out", gguf, "--type", "q8_0", NULL };
  g_assert_cmpint (test_run_cli (NULL, NULL, ex), ==, 0);
  const char *info[] = { "gguf-info", gguf, "--json", NULL };
  g_assert_cmpint (test_run_cli (&out, NULL, info), ==, 0);
  o = json_tokener_parse (out);
  json_object *md;
  g_assert_true (json_object_object_get_ex (o, "metadata", &md));
  g_assert_true (json_object_object_get_ex (md, "tokenizer.ggml.eot_token_id", &v));
  g_assert_cmpstr (json_object_get_string (v), ==, "32007");
  g_assert_true (json_object_object_get_ex (md, "general.file_type", &v));
  g_assert_cmpstr (json_object_get_string (v), ==, "7");
  json_object_put (o);
  g_free (out);
  const char *bad[] = { "gguf-export", dir, "--out", gguf, "--type", "q2_k", NULL };
  g_assert_cmpint (test_run_cli (NULL, NULL, bad), ==, 1);
  const char *bad2[] = { "gguf-info", data, NULL };
  char *errs = NULL;
  g_assert_cmpint (test_run_cli (NULL, &errs, bad2), ==, 1);
  g_assert_nonnull (strstr (errs, "not a GGUF file"));
  g_free (errs);
  g_free (gguf);
  g_free (data);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cli/generate/print-ids", test_generate_print_ids);
  g_test_add_func ("/cli/generate/text-and-chat", test_generate_text_and_chat);
  g_test_add_func ("/cli/generate/eval-and-gguf", test_eval_and_gguf);
  return g_test_run ();
}
