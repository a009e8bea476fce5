/* test-dataset.c: training datasets (engine/text/sutra-dataset*): every file format (JSONL,
 * JSON array, CSV/TSV, plain text), every row shape, bad rows of every kind, loss masks
 * against the real tokenizers of ../shared/testdata/tokenizers (expected ids from their
 * cases.jsonl, i.e. Python transformers), chat assistant-only labels with real chat templates,
 * the seeded split and the loss-highlighting preview. Fixtures are written to a temporary
 * folder by the tests themselves. */
#include "test-util.h"
#include "sutra-chat.h"
#include "sutra-dataset.h"
#include "sutra-tokenizer.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define IGN (-100)
#define END_OF_IDS INT32_MIN

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *
write_fixture (const char *name, const char *data, size_t len)
{
  char *path = g_build_filename (test_tmpdir (), name, NULL);
  GError *error = NULL;
  if (!g_file_set_contents (path, data, (gssize) len, &error))
    g_error ("%s: %s", path, error->message);
  static GPtrArray *keep;
  if (!keep)
    keep = g_ptr_array_new ();
  g_ptr_array_add (keep, path);            /* lives until exit */
  return path;
}

static const char *
fixture (const char *name, const char *text)
{
  return write_fixture (name, text, strlen (text));
}

static SutraDatasetOptions
opts (const SutraTokenizer *tok)
{
  SutraDatasetOptions o;
  sutra_dataset_options_init (&o);
  o.tokenizer = tok;
  return o;
}

static SutraDataset *
load_ok (const char *path, const SutraDatasetOptions *o)
{
  SutraError err = { 0 };
  SutraDataset *ds = NULL;
  test_assert_ok (sutra_dataset_load (path, o, &ds, &err), &err);
  g_assert_nonnull (ds);
  return ds;
}

static SutraStatus
load_fail (const char *path, const SutraDatasetOptions *o, SutraError *err)
{
  SutraDataset *ds = NULL;
  SutraStatus st = sutra_dataset_load (path, o, &ds, err);
  g_assert_cmpint (st, !=, SUTRA_OK);
  g_assert_null (ds);
  return st;
}

/* n ints from a list ending with END_OF_IDS. */
static int
ints_len (const int *v)
{
  int n = 0;
  while (v[n] != END_OF_IDS)
    n++;
  return n;
}

static void
assert_ints (const int *got, int n, const int *want, const char *what)
{
  int wn = ints_len (want);
  GString *g = g_string_new (NULL), *w = g_string_new (NULL);
  for (int i = 0; i < n; i++)
    g_string_append_printf (g, " %d", got[i]);
  for (int i = 0; i < wn; i++)
    g_string_append_printf (w, " %d", want[i]);
  if (n != wn || memcmp (got, want, (size_t) n * sizeof (int)) != 0)
    g_error ("%s:\n  got [%s ]\n want [%s ]", what, g->str, w->str);
  g_string_free (g, TRUE);
  g_string_free (w, TRUE);
}

static void
assert_example (const SutraDataset *ds, size_t i, const int *ids, const int *labels, int line)
{
  const SutraExample *e = sutra_dataset_get (ds, i);
  g_assert_nonnull (e);
  char what[64];
  snprintf (what, sizeof what, "example %zu ids", i);
  assert_ints (e->ids, e->n, ids, what);
  snprintf (what, sizeof what, "example %zu labels", i);
  assert_ints (e->labels, e->n, labels, what);
  if (line > 0)
    g_assert_cmpint (e->line, ==, line);
}

/* Bad row i: its line and a fragment of its message. */
static void
assert_bad (const SutraDataset *ds, size_t i, int line, const char *fragment)
{
  const SutraBadRow *rows;
  size_t n = sutra_dataset_bad_rows (ds, &rows);
  if (i >= n)
    g_error ("bad row %zu missing (%zu bad rows)", i, n);
  if (rows[i].line != line || !strstr (rows[i].message, fragment))
    g_error ("bad row %zu: line %d, \"%s\"; expected line %d with \"%s\"", i, rows[i].line,
             rows[i].message, line, fragment);
}

static void
dump_bad (const SutraDataset *ds)
{
  const SutraBadRow *rows;
  size_t n = sutra_dataset_bad_rows (ds, &rows);
  for (size_t i = 0; i < n; i++)
    g_test_message ("bad: %s", rows[i].message);
}

/* ---- real tokenizers (cached for the whole program) --------------------------------------- */

static SutraTokenizer *tok_cache[3];

static const SutraTokenizer *
tokenizer (const char *name)
{
  int k = !strcmp (name, "gpt2") ? 0 : !strcmp (name, "llama-spm") ? 1 : 2;
  if (tok_cache[k])
    return tok_cache[k];
  char *sub = g_strdup_printf ("tokenizers/%s", name);
  const char *dir = test_shared_path (sub);
  g_free (sub);
  if (!dir)
    return NULL;
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_load (dir, &tok_cache[k], &err), &err);
  return tok_cache[k];
}

/* GPT-2 with the ChatML tokens added as special tokens 50257/50258 (SmolLM2's layout: a
 * byte-level BPE whose <|im_start|>/<|im_end|> are added tokens). */
static SutraTokenizer *chatml_tok;

static const SutraTokenizer *
gpt2_chatml (void)
{
  if (chatml_tok)
    return chatml_tok;
  const char *dir = test_shared_path ("tokenizers/gpt2");
  if (!dir)
    return NULL;
  char *path = g_build_filename (dir, "tokenizer.json", NULL);
  json_object *root = json_object_from_file (path);
  g_assert_nonnull (root);
  g_free (path);
  json_object *added;
  g_assert_true (json_object_object_get_ex (root, "added_tokens", &added));
  const char *names[2] = { "<|im_start|>", "<|im_end|>" };
  for (int i = 0; i < 2; i++) {
    json_object *t = json_object_new_object ();
    json_object_object_add (t, "id", json_object_new_int (50257 + i));
    json_object_object_add (t, "content", json_object_new_string (names[i]));
    json_object_object_add (t, "single_word", json_object_new_boolean (0));
    json_object_object_add (t, "lstrip", json_object_new_boolean (0));
    json_object_object_add (t, "rstrip", json_object_new_boolean (0));
    json_object_object_add (t, "normalized", json_object_new_boolean (0));
    json_object_object_add (t, "special", json_object_new_boolean (1));
    json_object_array_add (added, t);
  }
  const char *json = json_object_to_json_string_ext (root, JSON_C_TO_STRING_PLAIN);
  const char *config = "{\"bos_token\": \"<|im_start|>\", \"eos_token\": \"<|im_end|>\"}";
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_load_json (json, strlen (json), config, strlen (config),
                                             "gpt2-chatml.json", &chatml_tok, &err), &err);
  json_object_put (root);
  return chatml_tok;
}

static SutraChatTemplate *
chat_template (const char *file, const char *bos, const char *eos)
{
  const char *dir = test_shared_path ("chat-templates/templates");
  if (!dir)
    return NULL;
  char *path = g_build_filename (dir, file, NULL), *src;
  g_assert_true (g_file_get_contents (path, &src, NULL, NULL));
  g_free (path);
  SutraError err = { 0 };
  SutraChatTemplate *t;
  test_assert_ok (sutra_chat_template_new (src, &t, &err), &err);
  g_free (src);
  if (bos)
    test_assert_ok (sutra_chat_template_set_token (t, "bos_token", bos, &err), &err);
  if (eos)
    test_assert_ok (sutra_chat_template_set_token (t, "eos_token", eos, &err), &err);
  return t;
}

/* The reference ids of a text in a tokenizer's cases.jsonl (Python transformers). */
static int *
case_ids (const char *tok_name, const char *text, bool add_special, int *n)
{
  char *sub = g_strdup_printf ("tokenizers/%s", tok_name);
  const char *dir = test_shared_path (sub);
  g_free (sub);
  g_assert_nonnull (dir);
  char *path = g_build_filename (dir, "cases.jsonl", NULL), *all;
  g_assert_true (g_file_get_contents (path, &all, NULL, NULL));
  g_free (path);
  int *out = NULL;
  char **lines = g_strsplit (all, "\n", -1);
  for (char **l = lines; *l && !out; l++) {
    json_object *c = json_tokener_parse (*l), *v;
    if (!c)
      continue;
    if (json_object_object_get_ex (c, "text", &v) && !strcmp (json_object_get_string (v), text) &&
        json_object_object_get_ex (c, "add_special_tokens", &v) &&
        json_object_get_boolean (v) == add_special && json_object_object_get_ex (c, "ids", &v)) {
      *n = (int) json_object_array_length (v);
      out = g_new (int, *n + 1);
      for (int i = 0; i < *n; i++)
        out[i] = json_object_get_int (json_object_array_get_idx (v, (size_t) i));
      out[*n] = END_OF_IDS;
    }
    json_object_put (c);
  }
  g_strfreev (lines);
  g_free (all);
  if (!out)
    g_error ("%s: no case for \"%s\"", tok_name, text);
  return out;
}

/* ids of text under our tokenizer (plain encode). */
static GArray *
encode (const SutraTokenizer *tok, const char *text, unsigned flags)
{
  SutraError err = { 0 };
  SutraEncoding enc = { 0 };
  test_assert_ok (sutra_tokenizer_encode (tok, text, strlen (text), flags, &enc, &err), &err);
  GArray *a = g_array_new (FALSE, FALSE, sizeof (int));
  for (size_t i = 0; i < enc.n; i++) {
    int id = enc.ids[i];
    g_array_append_val (a, id);
  }
  sutra_encoding_clear (&enc);
  return a;
}

static char *
decode (const SutraTokenizer *tok, const int *ids, int n)
{
  SutraError err = { 0 };
  char *s;
  test_assert_ok (sutra_tokenizer_decode (tok, (const int32_t *) ids, (size_t) n, 0, &s, NULL, &err), &err);
  return s;
}

/* The runs of consecutive loss tokens (positions t >= 1), decoded. */
static GPtrArray *
loss_runs (const SutraTokenizer *tok, const SutraExample *e)
{
  GPtrArray *runs = g_ptr_array_new_with_free_func (free);
  for (int t = 1; t < e->n;) {
    if (e->labels[t] == IGN) {
      t++;
      continue;
    }
    int a = t;
    while (t < e->n && e->labels[t] != IGN)
      t++;
    g_ptr_array_add (runs, decode (tok, e->ids + a, t - a));
  }
  return runs;
}

/* ---- options, errors ---------------------------------------------------------------------- */

static void
test_options (void)
{
  SutraDatasetOptions o;
  memset (&o, 0x5a, sizeof o);
  sutra_dataset_options_init (&o);
  g_assert_cmpint (o.seq_len, ==, 512);
  g_assert_true (o.mask_prompt && o.add_eos);
  g_assert_false (o.stop_on_bad_row);
  g_assert_null (o.tokenizer);
  g_assert_null (o.chat);
  g_assert_null (o.cancel);
  g_assert_cmpint (o.vocab_size, ==, 0);
  g_assert_cmpstr (sutra_row_shape_name (SUTRA_ROWS_CHAT), ==, "chat");
  g_assert_cmpstr (sutra_row_shape_name (SUTRA_ROWS_ALPACA), ==, "alpaca");
}

static void
test_file_errors (void)
{
  SutraDatasetOptions o = opts (NULL);
  SutraError err = { 0 };
  g_assert_cmpint (load_fail ("/nonexistent/data.jsonl", &o, &err), ==, SUTRA_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, "/nonexistent/data.jsonl"));
  g_assert_cmpint (load_fail (fixture ("empty.jsonl", ""), &o, &err), ==, SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "empty.jsonl: no examples"));
  g_assert_cmpint (load_fail (fixture ("blank.jsonl", "\n  \n\r\n"), &o, &err), ==, SUTRA_ERR_FORMAT);
  /* all rows bad: the error names the first one */
  load_fail (fixture ("allbad.jsonl", "{\"input_ids\": []}\n{\"input_ids\": \"x\"}\n"), &o, &err);
  g_assert_nonnull (strstr (err.message, "all 2 rows are bad; first: allbad.jsonl:1: \"input_ids\" is empty"));
  /* text rows without a tokenizer; chat rows without a template */
  g_assert_cmpint (load_fail (fixture ("t.jsonl", "{\"text\": \"hi\"}\n"), &o, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "t.jsonl:1: text rows need a tokenizer"));
  g_assert_cmpint (load_fail (fixture ("plain.txt", "hello\n"), &o, &err), ==, SUTRA_ERR_INVALID);
  o.seq_len = 1;
  g_assert_cmpint (load_fail (fixture ("ok.jsonl", "{\"input_ids\": [1, 2]}\n"), &o, &err), ==,
                   SUTRA_ERR_INVALID);
  const SutraTokenizer *tok = tokenizer ("gpt2");
  if (!tok)
    return;
  o = opts (tok);
  g_assert_cmpint (load_fail (fixture ("c.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"},"
                                                  "{\"role\": \"assistant\", \"content\": \"b\"}]}\n"),
                              &o, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "chat rows need a chat template"));
}

/* ---- pre-tokenized rows, JSONL, bad rows -------------------------------------------------- */

static void
test_tokens_jsonl (void)
{
  /* BOM, CRLF, blank lines, extra keys ignored, labels optional, null labels */
  const char *text =
    "\xef\xbb\xbf{\"input_ids\": [5, 6, 7], \"labels\": [-100, 6, 7]}\r\n"
    "\r\n"
    "   \n"
    "{\"input_ids\": [1, 2], \"attention_mask\": [1, 1]}\n"
    "{\"input_ids\": [9, 8, 7, 6], \"labels\": null}";      /* no final newline */
  SutraDatasetOptions o = opts (NULL);
  SutraDataset *ds = load_ok (fixture ("tok.jsonl", text), &o);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 3);
  g_assert_cmpint (sutra_dataset_shape (ds), ==, SUTRA_ROWS_TOKENS);
  g_assert_cmpstr (sutra_dataset_format_name (ds), ==, "jsonl");
  assert_example (ds, 0, (int[]) { 5, 6, 7, END_OF_IDS }, (int[]) { IGN, 6, 7, END_OF_IDS }, 1);
  assert_example (ds, 1, (int[]) { 1, 2, END_OF_IDS }, (int[]) { 1, 2, END_OF_IDS }, 4);
  assert_example (ds, 2, (int[]) { 9, 8, 7, 6, END_OF_IDS }, (int[]) { 9, 8, 7, 6, END_OF_IDS }, 5);
  g_assert_null (sutra_dataset_get (ds, 3));
  int64_t tokens, loss;
  sutra_dataset_token_counts (ds, &tokens, &loss);
  g_assert_cmpint (tokens, ==, 9);
  g_assert_cmpint (loss, ==, 2 + 1 + 3);         /* position 0 is never predicted */
  g_assert_cmpuint (sutra_dataset_bad_rows (ds, NULL), ==, 0);
  g_assert_cmpuint (sutra_dataset_truncated (ds), ==, 0);
  g_assert_true (g_str_has_suffix (sutra_dataset_path (ds), "tok.jsonl"));
  sutra_dataset_free (ds);
  sutra_dataset_free (NULL);
}

static void
test_tokens_bad_rows (void)
{
  GString *t = g_string_new (NULL);
  g_string_append (t, "{\"input_ids\": [1, 2, 3]}\n");                              /* 1 ok */
  g_string_append (t, "{\"input_ids\": [1, 2, 3], \"labels\": [1, 2]}\n");          /* 2 length */
  g_string_append (t, "{\"input_ids\": [1, 2, 100]}\n");                            /* 3 range */
  g_string_append (t, "{\"input_ids\": [1, \"2\"]}\n");                             /* 4 type */
  g_string_append (t, "{\"input_ids\": [1, 2.5]}\n");                               /* 5 type */
  g_string_append (t, "{\"input_ids\": [1, 2], \"labels\": [-100, -5]}\n");         /* 6 label */
  g_string_append (t, "{\"input_ids\": [1, 2], \"labels\": [1, -100]}\n");          /* 7 no loss */
  g_string_append (t, "{\"input_ids\": [1, 2,}\n");                                 /* 8 JSON */
  g_string_append (t, "[1, 2]\n");                                                  /* 9 array */
  g_string_append (t, "{\"input_ids\": [1, 2], \"x\": \"\xff\xfe\"}\n");            /* 10 UTF-8 */
  g_string_append (t, "{\"text\": \"hello\"}\n");                                   /* 11 shape */
  g_string_append (t, "{\"labels\": [1, 2]}\n");                                    /* 12 keys */
  g_string_append (t, "{\"input_ids\": []}\n");                                     /* 13 empty */
  g_string_append (t, "{\"input_ids\": [1, -3]}\n");                                /* 14 negative */
  g_string_append (t, "{\"input_ids\": \"1 2 3\"}\n");                              /* 15 type */
  g_string_append (t, "{\"input_ids\": [4, 5]} {\"input_ids\": [6]}\n");            /* 16 trailing */
  g_string_append (t, "{\"input_ids\": [7, 8, 9]}\n");                              /* 17 ok */
  SutraDatasetOptions o = opts (NULL);
  o.vocab_size = 50;
  SutraDataset *ds = load_ok (write_fixture ("bad.jsonl", t->str, t->len), &o);
  dump_bad (ds);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 2);
  assert_example (ds, 0, (int[]) { 1, 2, 3, END_OF_IDS }, (int[]) { 1, 2, 3, END_OF_IDS }, 1);
  assert_example (ds, 1, (int[]) { 7, 8, 9, END_OF_IDS }, (int[]) { 7, 8, 9, END_OF_IDS }, 17);
  g_assert_cmpuint (sutra_dataset_bad_rows (ds, NULL), ==, 15);
  g_assert_cmpuint (sutra_dataset_bad_row_total (ds), ==, 15);
  assert_bad (ds, 0, 2, "bad.jsonl:2: \"labels\" has 2 entries, \"input_ids\" has 3");
  assert_bad (ds, 1, 3, "\"input_ids\"[2] = 100 is outside [0, 50)");
  assert_bad (ds, 2, 4, "\"input_ids\"[1] is a string, expected an integer");
  assert_bad (ds, 3, 5, "\"input_ids\"[1] is a number, expected an integer");
  assert_bad (ds, 4, 6, "\"labels\"[1] = -5 is outside [0, 50) and not -100");
  assert_bad (ds, 5, 7, "no token carries loss");
  assert_bad (ds, 6, 8, "bad.jsonl:8: invalid JSON at column 21: unexpected character");
  assert_bad (ds, 7, 9, "expected a JSON object, got array");
  assert_bad (ds, 8, 10, "invalid UTF-8 at byte 29 of the line (file offset ");
  assert_bad (ds, 9, 11, "needs \"input_ids\" like the file's other rows (tokens)");
  assert_bad (ds, 10, 12, "needs \"input_ids\"");
  assert_bad (ds, 11, 13, "\"input_ids\" is empty");
  assert_bad (ds, 12, 14, "\"input_ids\"[1] = -3 is outside [0, 50)");
  assert_bad (ds, 13, 15, "\"input_ids\" is a string, expected an array of integers");
  assert_bad (ds, 14, 16, "invalid JSON at column 23");
  /* the file offset of the bad byte: lines 1..9 plus the 28 bytes before it on line 10 */
  const SutraBadRow *rows;
  sutra_dataset_bad_rows (ds, &rows);
  const char *nl = t->str;
  for (int i = 0; i < 9; i++)
    nl = strchr (nl, '\n') + 1;
  char want[64];
  snprintf (want, sizeof want, "file offset %zu)", (size_t) (nl - t->str) + 28);
  g_assert_nonnull (strstr (rows[8].message, want));
  sutra_dataset_free (ds);

  /* stop_on_bad_row: the load fails with the first bad row */
  o.stop_on_bad_row = true;
  SutraError err = { 0 };
  g_assert_cmpint (load_fail (write_fixture ("bad.jsonl", t->str, t->len), &o, &err), ==, SUTRA_ERR_FORMAT);
  g_assert_cmpstr (err.message, ==, "bad.jsonl:2: \"labels\" has 2 entries, \"input_ids\" has 3");
  g_string_free (t, TRUE);
}

static void
test_shape_detection (void)
{
  /* rows without known keys before the first valid row are bad; the first row that gives an
   * example fixes the shape; a bad row of another shape does not fix it */
  const char *text =
    "{\"id\": 1, \"note\": \"x\"}\n"
    "{\"text\": 5}\n"
    "{\"input_ids\": [3, 4]}\n"
    "{\"text\": \"a\"}\n"
    "{\"input_ids\": [5, 6], \"messages\": []}\n";
  SutraDatasetOptions o = opts (NULL);
  const SutraTokenizer *tok = tokenizer ("gpt2");
  if (!tok)
    return;
  o.tokenizer = tok;
  SutraDataset *ds = load_ok (fixture ("shapes.jsonl", text), &o);
  dump_bad (ds);
  g_assert_cmpint (sutra_dataset_shape (ds), ==, SUTRA_ROWS_TOKENS);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 1);
  assert_bad (ds, 0, 1, "no known keys: a row needs \"text\", \"prompt\"+\"completion\"");
  assert_bad (ds, 0, 1, "(found \"id\", \"note\")");
  assert_bad (ds, 1, 2, "\"text\" is an integer, expected a string");
  assert_bad (ds, 2, 4, "needs \"input_ids\" like the file's other rows (tokens)");
  assert_bad (ds, 3, 5, "has \"messages\", which makes it a chat row; the file's rows are tokens");
  sutra_dataset_free (ds);
}

/* ---- JSON array --------------------------------------------------------------------------- */

static void
test_json_array (void)
{
  const char *text =
    "\xef\xbb\xbf[\n"
    "  {\"input_ids\": [1, 2]},\n"                         /* element 0, line 2 */
    "  {\n"
    "    \"input_ids\": [3, 4, 5],\n"
    "    \"labels\": [-100, 4, 5]\n"
    "  },\n"                                              /* element 1, line 3 */
    "  {\"input_ids\": [1,\n"
    "     oops]},\n"                                      /* element 2, line 7: invalid */
    "  \"str, [with] {brackets}\",\n"                     /* element 3, line 9: not object */
    "  {\"input_ids\": [\"a]\"]},\n"                      /* element 4, line 10: type */
    "  {\"input_ids\": [6, 7]}\n"                          /* element 5, line 11 */
    "]\n\n";
  SutraDatasetOptions o = opts (NULL);
  SutraDataset *ds = load_ok (fixture ("arr.json", text), &o);
  dump_bad (ds);
  g_assert_cmpstr (sutra_dataset_format_name (ds), ==, "json");
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 3);
  assert_example (ds, 0, (int[]) { 1, 2, END_OF_IDS }, (int[]) { 1, 2, END_OF_IDS }, 2);
  assert_example (ds, 1, (int[]) { 3, 4, 5, END_OF_IDS }, (int[]) { IGN, 4, 5, END_OF_IDS }, 3);
  assert_example (ds, 2, (int[]) { 6, 7, END_OF_IDS }, (int[]) { 6, 7, END_OF_IDS }, 11);
  assert_bad (ds, 0, 7, "arr.json:7: element 2: invalid JSON (line 8, column 6): ");
  assert_bad (ds, 1, 9, "element 3: expected a JSON object, got string");
  assert_bad (ds, 2, 10, "\"input_ids\"[0] is a string");
  sutra_dataset_free (ds);

  /* a .jsonl whose content is an array is read as one; empty array; garbage after it;
   * an array that never closes */
  ds = load_ok (fixture ("arr2.jsonl", "[{\"input_ids\": [1, 2]}]"), &o);
  g_assert_cmpstr (sutra_dataset_format_name (ds), ==, "json");
  sutra_dataset_free (ds);
  SutraError err = { 0 };
  load_fail (fixture ("e.json", " [ ] "), &o, &err);
  g_assert_nonnull (strstr (err.message, "no examples"));
  load_fail (fixture ("g.json", "[{\"input_ids\": [1, 2]}]\n[]"), &o, &err);
  g_assert_cmpstr (err.message, ==, "g.json:2: unexpected data after the closing ] of the JSON array");
  ds = load_ok (fixture ("u.json", "[{\"input_ids\": [1, 2]},\n {\"input_ids\": [\"x]}]\n"), &o);
  assert_bad (ds, 0, 2, "element 1: unexpected end of file (unterminated string)");
  sutra_dataset_free (ds);
  ds = load_ok (fixture ("c.json", "[{\"input_ids\": [1, 2]},,{\"input_ids\": [3, 4]},]"), &o);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 2);
  assert_bad (ds, 0, 1, "element 1: missing value (an extra comma?)");
  assert_bad (ds, 1, 1, "element 3: missing value");
  sutra_dataset_free (ds);
  /* invalid UTF-8 inside an element */
  ds = load_ok (fixture ("v.json", "[{\"input_ids\": [1, 2]},\n{\"input_ids\": [3, 4], \"x\": \"\xc3\x28\"}]"), &o);
  assert_bad (ds, 0, 2, "element 1: invalid UTF-8 on line 2 (file offset 52)");
  sutra_dataset_free (ds);
}

/* ---- CSV ---------------------------------------------------------------------------------- */

static void
test_csv_rfc4180 (void)
{
  /* pre-tokenized rows through CSV: JSON cells; quoting, CRLF, BOM, embedded newlines */
  const char *text =
    "\xef\xbb\xbf" "id,input_ids,labels, note \r\n"                   /* line 1 */
    "a,\"[1, 2, 3]\",\"[-100, 2, 3]\",plain\r\n"                       /* line 2 */
    "b,\"[4,\r\n5]\",,\"multi\r\nline, \"\"quoted\"\"\"\r\n"            /* lines 3-5 */
    "\r\n"                                                             /* line 6: blank */
    "c,[6 7],,x\r\n"                                                   /* line 7: bad JSON */
    "d,\"[8, 9]\",\"\"\r\n"                                            /* line 8: 3 fields */
    "e,\"[10, 11]\",,\"x\"y\r\n"                                       /* line 9: after quote */
    "f,\"[12, 13]\",,\xe2\x82\r\n"                                     /* line 10: bad UTF-8 */
    "g,[14],,\"never closed\r\n"                                       /* line 11 */
    "h,[15],,z\r\n";                                                    /* inside quotes */
  SutraDatasetOptions o = opts (NULL);
  SutraDataset *ds = load_ok (fixture ("rows.csv", text), &o);
  dump_bad (ds);
  g_assert_cmpstr (sutra_dataset_format_name (ds), ==, "csv");
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 2);
  assert_example (ds, 0, (int[]) { 1, 2, 3, END_OF_IDS }, (int[]) { IGN, 2, 3, END_OF_IDS }, 2);
  assert_example (ds, 1, (int[]) { 4, 5, END_OF_IDS }, (int[]) { 4, 5, END_OF_IDS }, 3);
  assert_bad (ds, 0, 7, "rows.csv:7: column \"input_ids\": invalid JSON");
  assert_bad (ds, 1, 8, "3 fields, the header has 4");
  assert_bad (ds, 2, 9, "unexpected character after a closing quote");
  assert_bad (ds, 3, 10, "invalid UTF-8 on line 10 (file offset ");
  assert_bad (ds, 4, 11, "unterminated quoted field");
  /* the bad byte's offset: the lead byte 0xe2 */
  const SutraBadRow *rows;
  sutra_dataset_bad_rows (ds, &rows);
  char want[64];
  snprintf (want, sizeof want, "(file offset %zu)", (size_t) (strstr (text, "\xe2\x82") - text));
  g_assert_nonnull (strstr (rows[3].message, want));
  g_assert_cmpuint (sutra_dataset_bad_row_total (ds), ==, 5);
  sutra_dataset_free (ds);

  /* header problems are fatal */
  SutraError err = { 0 };
  load_fail (fixture ("dup.csv", "input_ids,input_ids\n[1],[2]\n"), &o, &err);
  g_assert_cmpstr (err.message, ==, "dup.csv:1: header row: column \"input_ids\" appears twice");
  load_fail (fixture ("hq.csv", "\"input_ids\n"), &o, &err);
  g_assert_nonnull (strstr (err.message, "hq.csv:1: header row: unterminated quoted field"));
  load_fail (fixture ("h.csv", "input_ids\n"), &o, &err);
  g_assert_nonnull (strstr (err.message, "no examples"));

  /* TSV, LF only, a lone CR line end */
  ds = load_ok (fixture ("rows.tsv", "input_ids\tlabels\n[1, 2]\t\"[-100, 2]\"\r[3, 4]\t\n"), &o);
  g_assert_cmpstr (sutra_dataset_format_name (ds), ==, "tsv");
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 2);
  assert_example (ds, 0, (int[]) { 1, 2, END_OF_IDS }, (int[]) { IGN, 2, END_OF_IDS }, 2);
  assert_example (ds, 1, (int[]) { 3, 4, END_OF_IDS }, (int[]) { 3, 4, END_OF_IDS }, 3);
  sutra_dataset_free (ds);
}

static void
test_csv_text_columns (void)
{
  const SutraTokenizer *tok = tokenizer ("gpt2");
  if (!tok)
    return;
  /* prompt/completion from CSV with commas and quotes inside the cells */
  const char *text =
    "prompt,completion\n"
    "\"Hello, y'all! How are you \",\"\xf0\x9f\x98\x81 ?\"\n"
    "Hello,\"\"\n";                                   /* empty completion: bad */
  SutraDatasetOptions o = opts (tok);
  SutraDataset *ds = load_ok (fixture ("pc.csv", text), &o);
  g_assert_cmpint (sutra_dataset_shape (ds), ==, SUTRA_ROWS_PROMPT_COMPLETION);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 1);
  /* transformers: "Hello, y'all! How are you 😁 ?..." starts [15496, 11, 331, 6, 439, 0, 1374,
   * 389, 345, 30325, 223, 5633]: " 😁" is 30325 223 (the space joins the emoji) */
  int n;
  int *ref = case_ids ("gpt2", "Hello, y'all! How are you \xf0\x9f\x98\x81 ?\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8"
                               "apple\xe5\xb7\xa5\xe4\xbd\x9c" "1314151\xe5\xa4\xa9\xef\xbd\x9e", false, &n);
  int ids[14], labels[14];
  memcpy (ids, ref, 12 * sizeof (int));
  ids[12] = 50256;
  ids[13] = END_OF_IDS;
  for (int i = 0; i < 13; i++)
    labels[i] = i >= 9 ? ids[i] : IGN;                /* " 😁" straddles the boundary: loss */
  labels[13] = END_OF_IDS;
  assert_example (ds, 0, ids, labels, 2);
  assert_bad (ds, 0, 3, "pc.csv:3: \"completion\" is empty");
  g_free (ref);
  sutra_dataset_free (ds);
}

/* ---- text rows ---------------------------------------------------------------------------- */

static void
test_text_rows (void)
{
  const SutraTokenizer *gpt2 = tokenizer ("gpt2"), *llama = tokenizer ("llama-spm");
  if (!gpt2 || !llama)
    return;
  int n;
  /* GPT-2 adds no BOS; EOS <|endoftext|> (50256) is appended */
  SutraDatasetOptions o = opts (gpt2);
  SutraDataset *ds = load_ok (fixture ("t.jsonl", "{\"text\": \"Hello world\"}\n"
                                                  "{\"text\": \"\"}\n"
                                                  "{\"text\": \"Hello world<|endoftext|>\"}\n"), &o);
  int *hw = case_ids ("gpt2", "Hello world", false, &n);
  g_assert_cmpint (n, ==, 2);
  int want[] = { hw[0], hw[1], 50256, END_OF_IDS };
  assert_example (ds, 0, want, want, 1);
  assert_example (ds, 1, want, want, 3);           /* EOS already there: not doubled */
  assert_bad (ds, 0, 2, "\"text\" is empty");
  sutra_dataset_free (ds);
  o.add_eos = false;
  ds = load_ok (fixture ("t.jsonl", "{\"text\": \"Hello world\"}\n"), &o);
  want[2] = END_OF_IDS;
  assert_example (ds, 0, want, want, 1);
  sutra_dataset_free (ds);
  g_free (hw);

  /* Llama (SentencePiece): the post-processor's BOS (1), EOS </s> (2) appended */
  o = opts (llama);
  ds = load_ok (fixture ("t.jsonl", "{\"text\": \"Hello World\"}\n{\"text\": \"<s>Hello World\"}\n"), &o);
  int *ref = case_ids ("llama-spm", "Hello World", true, &n);
  g_assert_cmpint (n, ==, 3);
  int want2[] = { ref[0], ref[1], ref[2], 2, END_OF_IDS };
  assert_example (ds, 0, want2, want2, 1);
  /* the text's own <s> and the post-processor's make one BOS (transformers would give two:
   * cases.jsonl "<s>Hello</s> <s> world<unk>" -> [1, 1, 15043, ...]) */
  assert_example (ds, 1, want2, want2, 2);
  g_free (ref);
  sutra_dataset_free (ds);
}

/* ---- prompt / completion ------------------------------------------------------------------ */

static void
test_prompt_completion (void)
{
  const SutraTokenizer *gpt2 = tokenizer ("gpt2"), *llama = tokenizer ("llama-spm");
  if (!gpt2 || !llama)
    return;
  const char *rows =
    "{\"prompt\": \"Hello\", \"completion\": \" world\"}\n"   /* boundary between tokens */
    "{\"prompt\": \"Hel\", \"completion\": \"lo world\"}\n"   /* inside "Hello": continuation */
    "{\"prompt\": \"\", \"completion\": \"Hello world\"}\n"
    "{\"prompt\": \"Hello world\", \"completion\": \"\"}\n"
    "{\"prompt\": \"Hello\"}\n";
  int n;
  int *hw = case_ids ("gpt2", "Hello world", false, &n);
  SutraDatasetOptions o = opts (gpt2);
  SutraDataset *ds = load_ok (fixture ("pc.jsonl", rows), &o);
  dump_bad (ds);
  int ids[] = { hw[0], hw[1], 50256, END_OF_IDS };
  /* the completion is tokenized as the continuation of the prompt: "Hel" + "lo world" gives
   * the same ids as "Hello world"; the straddling token "Hello" carries loss */
  assert_example (ds, 0, ids, (int[]) { IGN, hw[1], 50256, END_OF_IDS }, 1);
  assert_example (ds, 1, ids, ids, 2);
  assert_example (ds, 2, ids, ids, 3);
  assert_bad (ds, 0, 4, "\"completion\" is empty");
  assert_bad (ds, 1, 5, "needs \"prompt\" and \"completion\" like the file's other rows");
  sutra_dataset_free (ds);
  /* mask_prompt off: loss on the prompt too */
  o.mask_prompt = false;
  ds = load_ok (fixture ("pc.jsonl", rows), &o);
  assert_example (ds, 0, ids, ids, 1);
  sutra_dataset_free (ds);
  g_free (hw);

  /* Llama: BOS from the post-processor is prompt-side; "▁doing" starts at the space that
   * begins the completion, so it carries loss */
  int *ref = case_ids ("llama-spm", "How are you doing?", true, &n);   /* [1 1128 526 366 2599 29973] */
  g_assert_cmpint (n, ==, 6);
  o = opts (llama);
  ds = load_ok (fixture ("pc2.jsonl", "{\"prompt\": \"How are you\", \"completion\": \" doing?\"}\n"), &o);
  int want_ids[] = { ref[0], ref[1], ref[2], ref[3], ref[4], ref[5], 2, END_OF_IDS };
  int want_labels[] = { IGN, IGN, IGN, IGN, ref[4], ref[5], 2, END_OF_IDS };
  assert_example (ds, 0, want_ids, want_labels, 1);
  sutra_dataset_free (ds);
  g_free (ref);
}

/* ---- Alpaca ------------------------------------------------------------------------------- */

static void
test_alpaca (void)
{
  const SutraTokenizer *tok = tokenizer ("gpt2");
  if (!tok)
    return;
  const char *rows =
    "{\"instruction\": \"Name the capital of France.\", \"input\": \"\", \"output\": \"Paris.\"}\n"
    "{\"instruction\": \"Add the numbers.\", \"input\": \"2 and 3\", \"output\": \"5\"}\n"
    "{\"instruction\": \"Say hi.\", \"output\": \"Hi!\", \"input\": null}\n"
    "{\"instruction\": \"x\", \"input\": 3, \"output\": \"y\"}\n"
    "{\"instruction\": \"x\", \"output\": \"\"}\n";
  SutraDatasetOptions o = opts (tok);
  SutraDataset *ds = load_ok (fixture ("alpaca.jsonl", rows), &o);
  dump_bad (ds);
  g_assert_cmpint (sutra_dataset_shape (ds), ==, SUTRA_ROWS_ALPACA);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 3);
  /* Stanford Alpaca's prompt_no_input / prompt_input, written out here independently */
  const char *prompts[3] = {
    "Below is an instruction that describes a task. Write a response that appropriately completes "
    "the request.\n\n### Instruction:\nName the capital of France.\n\n### Response:\n",
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
    "Add the numbers.\n\n### Input:\n2 and 3\n\n### Response:\n",
    "Below is an instruction that describes a task. Write a response that appropriately completes "
    "the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n",
  };
  const char *outputs[3] = { "Paris.", "5", "Hi!" };
  for (int i = 0; i < 3; i++) {
    char *full = g_strconcat (prompts[i], outputs[i], NULL);
    GArray *want = encode (tok, full, SUTRA_ENCODE_ADD_SPECIAL);
    GArray *p = encode (tok, prompts[i], SUTRA_ENCODE_ADD_SPECIAL);
    int eos = 50256, end = END_OF_IDS;
    g_array_append_val (want, eos);
    GArray *labels = g_array_sized_new (FALSE, FALSE, sizeof (int), want->len);
    /* the prompt ends with "\n" and each output starts with a letter: GPT-2 never merges
     * across that, so the prompt's own tokens are the masked prefix */
    for (guint t = 0; t < want->len; t++) {
      int lab = t < p->len ? IGN : g_array_index (want, int, t);
      g_array_append_val (labels, lab);
    }
    g_array_append_val (want, end);
    g_array_append_val (labels, end);
    assert_example (ds, (size_t) i, (int *) want->data, (int *) labels->data, i + 1);
    /* the loss tokens decode to exactly the output + EOS */
    GPtrArray *runs = loss_runs (tok, sutra_dataset_get (ds, (size_t) i));
    g_assert_cmpuint (runs->len, ==, 1);
    char *out_eos = g_strconcat (outputs[i], "<|endoftext|>", NULL);
    g_assert_cmpstr (runs->pdata[0], ==, out_eos);
    g_free (out_eos);
    g_ptr_array_unref (runs);
    g_array_unref (want);
    g_array_unref (p);
    g_array_unref (labels);
    g_free (full);
  }
  assert_bad (ds, 0, 4, "\"input\" is an integer, expected a string");
  assert_bad (ds, 1, 5, "\"output\" is empty");
  sutra_dataset_free (ds);
}

/* ---- chat --------------------------------------------------------------------------------- */

/* Concatenates ids of specials and text segments: added tokens split the text first (HF),
 * so a rendered ChatML conversation encodes as the concatenation of its segments. */
static void
append_ids (GArray *ids, GArray *labels, GArray *part, bool loss)
{
  for (guint i = 0; i < part->len; i++) {
    int id = g_array_index (part, int, i), lab = loss ? id : IGN;
    g_array_append_val (ids, id);
    g_array_append_val (labels, lab);
  }
  g_array_unref (part);
}

static GArray *
one (int id)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (int));
  g_array_append_val (a, id);
  return a;
}

static void
test_chat_chatml (void)
{
  const SutraTokenizer *tok = gpt2_chatml ();
  SutraChatTemplate *tpl = chat_template ("smollm2.jinja", "<|im_start|>", "<|im_end|>");
  if (!tok || !tpl)
    return;
  const int S = 50257, E = 50258;
  const char *rows =
    "{\"messages\": [{\"role\": \"user\", \"content\": \"What is 2+2?\"},"
    " {\"role\": \"assistant\", \"content\": \"It is 4.\"},"
    " {\"role\": \"user\", \"content\": \"And 3+3?\"},"
    " {\"role\": \"assistant\", \"content\": \"6, of course.\"}]}\n"
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}]}\n"
    "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n"                      /* 3 */
    "{\"messages\": [{\"role\": \"bot\", \"content\": \"Hi\"}]}\n"                       /* 4 */
    "{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\", \"content\": \"x\"}]}\n"
    "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}\n"                           /* 6 */
    "{\"messages\": []}\n"                                                               /* 7 */
    "{\"messages\": \"hi\"}\n"                                                           /* 8 */
    "{\"messages\": [\"hi\"]}\n";                                                        /* 9 */
  SutraDatasetOptions o = opts (tok);
  o.chat = tpl;
  SutraDataset *ds = load_ok (fixture ("chat.jsonl", rows), &o);
  dump_bad (ds);
  g_assert_cmpint (sutra_dataset_shape (ds), ==, SUTRA_ROWS_CHAT);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 2);

  /* row 1: the template adds SmolLM's default system prompt */
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (int)), *labels = g_array_new (FALSE, FALSE, sizeof (int));
  const char *turns[][3] = {
    { "system", "You are a helpful AI assistant named SmolLM, trained by Hugging Face", NULL },
    { "user", "What is 2+2?", NULL }, { "assistant", "It is 4.", "" },
    { "user", "And 3+3?", NULL }, { "assistant", "6, of course.", "" },
  };
  for (int i = 0; i < 5; i++) {
    bool asst = turns[i][2] != NULL;
    append_ids (ids, labels, one (S), false);
    char *head = g_strconcat (turns[i][0], "\n", asst ? "" : turns[i][1], NULL);
    append_ids (ids, labels, encode (tok, head, 0), false);
    g_free (head);
    if (asst)                                 /* "\n" after "assistant" and the content are
                                               * separate pre-tokens in GPT-2 */
      append_ids (ids, labels, encode (tok, turns[i][1], 0), true);
    append_ids (ids, labels, one (E), asst);  /* <|im_end|> is part of the assistant's turn */
    append_ids (ids, labels, encode (tok, "\n", 0), false);
  }
  int end = END_OF_IDS;
  g_array_append_val (ids, end);
  g_array_append_val (labels, end);
  assert_example (ds, 0, (int *) ids->data, (int *) labels->data, 1);
  g_array_unref (ids);
  g_array_unref (labels);

  /* the loss tokens decode to exactly each assistant content + end of turn */
  GPtrArray *runs = loss_runs (tok, sutra_dataset_get (ds, 0));
  g_assert_cmpuint (runs->len, ==, 2);
  g_assert_cmpstr (runs->pdata[0], ==, "It is 4.<|im_end|>");
  g_assert_cmpstr (runs->pdata[1], ==, "6, of course.<|im_end|>");
  g_ptr_array_unref (runs);
  runs = loss_runs (tok, sutra_dataset_get (ds, 1));
  g_assert_cmpuint (runs->len, ==, 1);
  g_assert_cmpstr (runs->pdata[0], ==, "Hello!<|im_end|>");
  g_ptr_array_unref (runs);

  assert_bad (ds, 0, 3, "no assistant message");
  assert_bad (ds, 1, 4, "\"messages\"[0]: unknown role \"bot\"");
  assert_bad (ds, 2, 5, "\"messages\"[0] has no \"content\"");
  assert_bad (ds, 3, 6, "\"messages\"[0].content is an integer, expected a string");
  assert_bad (ds, 4, 7, "\"messages\" is empty");
  assert_bad (ds, 5, 8, "\"messages\" is a string, expected an array");
  assert_bad (ds, 6, 9, "\"messages\"[0] is a string, expected an object");
  sutra_dataset_free (ds);
  sutra_chat_template_free (tpl);
}

static void
test_chat_real_pairs (void)
{
  /* Phi-3-mini's own tokenizer and template: rstrip added tokens (<|end|> swallows the "\n"
   * after it), SentencePiece "▁" before the content, eos_token closing the conversation */
  const SutraTokenizer *tok = tokenizer ("phi-3-mini");
  SutraChatTemplate *tpl = chat_template ("phi-3-mini.jinja", "<s>", "<|endoftext|>");
  if (!tok || !tpl)
    return;
  SutraDatasetOptions o = opts (tok);
  o.chat = tpl;
  SutraDataset *ds = load_ok (fixture ("phi.jsonl",
                                       "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"},"
                                       " {\"role\": \"assistant\", \"content\": \"Hi there\"},"
                                       " {\"role\": \"user\", \"content\": \"Bye\"},"
                                       " {\"role\": \"assistant\", \"content\": \"Bye!\"}]}\n"), &o);
  const SutraExample *e = sutra_dataset_get (ds, 0);
  /* transformers: "<|user|>\nHello<|end|>\n<|assistant|>" -> 32010 15043 32007 32001 */
  g_assert_cmpint (e->ids[0], ==, 32010);
  g_assert_cmpint (e->ids[1], ==, 15043);
  g_assert_cmpint (e->ids[2], ==, 32007);
  g_assert_cmpint (e->ids[3], ==, 32001);
  for (int t = 0; t < 4; t++)
    g_assert_cmpint (e->labels[t], ==, IGN);
  g_assert_cmpint (e->ids[e->n - 1], ==, 32000);    /* <|endoftext|> closes the last turn */
  GPtrArray *runs = loss_runs (tok, e);
  g_assert_cmpuint (runs->len, ==, 2);
  g_assert_cmpstr (runs->pdata[0], ==, "Hi there<|end|>");
  g_assert_cmpstr (runs->pdata[1], ==, "Bye!<|end|><|endoftext|>");
  g_ptr_array_unref (runs);
  sutra_dataset_free (ds);
  sutra_chat_template_free (tpl);

  /* a template that refuses a conversation (raise_exception) makes that row bad */
  tok = tokenizer ("llama-spm");
  tpl = chat_template ("llama-2-chat.jinja", "<s>", "</s>");
  if (!tok || !tpl)
    return;
  o = opts (tok);
  o.chat = tpl;
  ds = load_ok (fixture ("l2.jsonl",
                         "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"},"
                         " {\"role\": \"assistant\", \"content\": \"Hello there\"}]}\n"
                         "{\"messages\": [{\"role\": \"assistant\", \"content\": \"Hi\"},"
                         " {\"role\": \"assistant\", \"content\": \"Hello\"}]}\n"), &o);
  dump_bad (ds);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 1);
  assert_bad (ds, 0, 2, "chat template: Conversation roles must alternate");
  e = sutra_dataset_get (ds, 0);
  g_assert_cmpint (e->ids[0], ==, 1);               /* the template's own <s>, only one */
  g_assert_cmpint (e->ids[1], !=, 1);
  runs = loss_runs (tok, e);
  g_assert_cmpuint (runs->len, ==, 1);
  g_assert_cmpstr (runs->pdata[0], ==, "Hello there </s>");
  g_ptr_array_unref (runs);
  sutra_dataset_free (ds);
  sutra_chat_template_free (tpl);
}

/* ---- plain text --------------------------------------------------------------------------- */

static void
test_plain_text (void)
{
  const SutraTokenizer *tok = tokenizer ("gpt2");
  if (!tok)
    return;
  GString *t = g_string_new (NULL);
  for (int i = 0; i < 40; i++)
    g_string_append_printf (t, "Line %d says hello to the world.\n", i);
  SutraDatasetOptions o = opts (tok);
  o.seq_len = 16;
  SutraDataset *ds = load_ok (write_fixture ("corpus.txt", t->str, t->len), &o);
  g_assert_cmpint (sutra_dataset_shape (ds), ==, SUTRA_ROWS_PLAIN_TEXT);
  g_assert_cmpstr (sutra_dataset_format_name (ds), ==, "text");
  /* one continuous stream: encode(file) + EOS, cut into windows of 16 */
  GArray *all = encode (tok, t->str, SUTRA_ENCODE_ADD_SPECIAL);
  int eos = 50256;
  g_array_append_val (all, eos);
  size_t nw = (all->len + 15) / 16;
  if (all->len % 16 == 1)
    nw--;                                 /* a last window of one token is dropped */
  g_assert_cmpuint (sutra_dataset_count (ds), ==, nw);
  size_t pos = 0;
  for (size_t w = 0; w < nw; w++) {
    const SutraExample *e = sutra_dataset_get (ds, w);
    g_assert_cmpint (e->n, ==, MIN (16, (int) (all->len - pos)));
    g_assert_cmpmem (e->ids, (size_t) e->n * sizeof (int), &g_array_index (all, int, pos),
                     (size_t) e->n * sizeof (int));
    g_assert_cmpmem (e->labels, (size_t) e->n * sizeof (int), e->ids, (size_t) e->n * sizeof (int));
    /* the line of the window's first token */
    char *before = decode (tok, (int *) all->data, (int) pos);
    int line = 1;
    for (char *c = before; *c; c++)
      line += *c == '\n';
    g_free (before);
    g_assert_cmpint (e->line, ==, line);
    pos += (size_t) e->n;
  }
  g_array_unref (all);
  sutra_dataset_free (ds);
  g_string_free (t, TRUE);

  /* Llama: BOS first (post-processor), invalid UTF-8 replaced (U+FFFD), BOM skipped, a last
   * window of two tokens kept */
  tok = tokenizer ("llama-spm");
  if (!tok)
    return;
  o = opts (tok);
  o.seq_len = 3;
  ds = load_ok (fixture ("bad.txt", "\xef\xbb\xbfHello\xff World"), &o);
  all = encode (tok, "Hello\xff World", SUTRA_ENCODE_ADD_SPECIAL);
  eos = 2;
  g_array_append_val (all, eos);
  g_assert_cmpint (g_array_index (all, int, 0), ==, 1);
  g_assert_cmpuint (all->len, ==, 5);          /* <s> ▁Hello U+FFFD ▁World </s> */
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 2);
  assert_example (ds, 0, (int[]) { g_array_index (all, int, 0), g_array_index (all, int, 1),
                                   g_array_index (all, int, 2), END_OF_IDS },
                  (int[]) { g_array_index (all, int, 0), g_array_index (all, int, 1),
                            g_array_index (all, int, 2), END_OF_IDS }, 1);
  assert_example (ds, 1, (int[]) { g_array_index (all, int, 3), 2, END_OF_IDS },
                  (int[]) { g_array_index (all, int, 3), 2, END_OF_IDS }, 1);
  char *text = decode (tok, sutra_dataset_get (ds, 0)->ids, 3);
  g_assert_cmpstr (text, ==, "<s> Hello\xef\xbf\xbd");
  g_free (text);
  g_array_unref (all);
  sutra_dataset_free (ds);
}

/* Files above the 4 MiB tokenization chunk: cut at a line break (the stream equals one
 * encode of the whole file for GPT-2, whose pre-tokenizer splits there anyway), and a single
 * line longer than a chunk (cut between characters: no U+FFFD, the text survives). */
static void
test_plain_text_chunks (void)
{
  const SutraTokenizer *tok = tokenizer ("gpt2");
  if (!tok)
    return;
  const size_t size = (4u << 20) + 300000;
  for (int long_line = 0; long_line < 2; long_line++) {
    const char *unit = long_line ? "mot \xe2\x82\xac\xe2\x82\xac, " : "Line says \xe2\x82\xac hello to the world.\n";
    GString *t = g_string_sized_new (size + 64);
    while (t->len < size)
      g_string_append (t, unit);
    SutraDatasetOptions o = opts (tok);
    o.seq_len = 1024;
    o.add_eos = false;
    SutraDataset *ds = load_ok (write_fixture ("big.txt", t->str, t->len), &o);
    GArray *stream = g_array_new (FALSE, FALSE, sizeof (int));
    for (size_t w = 0; w < sutra_dataset_count (ds); w++) {
      const SutraExample *e = sutra_dataset_get (ds, w);
      g_assert_cmpint (e->n, ==, w + 1 < sutra_dataset_count (ds) ? 1024 : e->n);
      g_array_append_vals (stream, e->ids, (guint) e->n);
    }
    char *text = decode (tok, (int *) stream->data, (int) stream->len);
    g_assert_true (strcmp (text, t->str) == 0);
    g_free (text);
    if (!long_line) {
      GArray *all = encode (tok, t->str, SUTRA_ENCODE_ADD_SPECIAL);
      g_assert_cmpuint (all->len, ==, stream->len);
      g_assert_true (memcmp (all->data, stream->data, all->len * sizeof (int)) == 0);
      g_assert_cmpint (sutra_dataset_get (ds, sutra_dataset_count (ds) - 1)->line, >, 100000);
      g_array_unref (all);
    } else
      g_assert_cmpint (sutra_dataset_get (ds, sutra_dataset_count (ds) - 1)->line, ==, 1);
    g_array_unref (stream);
    sutra_dataset_free (ds);
    g_string_free (t, TRUE);
  }
}

/* ---- truncation, huge lines, counts ------------------------------------------------------- */

static void
test_truncation (void)
{
  const SutraTokenizer *tok = tokenizer ("gpt2");
  if (!tok)
    return;
  /* a 1.5 MB text row (one JSONL line) cut to seq_len; a prompt that fills the window */
  GString *t = g_string_new ("{\"text\": \"");
  for (int i = 0; i < 150000; i++)
    g_string_append (t, "word word ");
  g_string_append (t, "\"}\n");
  g_string_append (t, "{\"text\": \"short\"}\n");
  g_string_append (t, "{\"prompt\": \"a b c d e f g h\", \"completion\": \" i\"}\n");
  SutraDatasetOptions o = opts (tok);
  o.seq_len = 8;
  SutraDataset *ds = load_ok (write_fixture ("huge.jsonl", t->str, t->len), &o);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 2);
  g_assert_cmpint (sutra_dataset_get (ds, 0)->n, ==, 8);
  g_assert_cmpuint (sutra_dataset_truncated (ds), ==, 1);
  assert_bad (ds, 0, 3, "needs \"text\"");
  sutra_dataset_free (ds);
  g_string_free (t, TRUE);

  ds = load_ok (fixture ("long.jsonl", "{\"prompt\": \"a b c d e f g h i j\", \"completion\": \" k\"}\n"
                                       "{\"prompt\": \"a\", \"completion\": \" b c d e f g h i j k l\"}\n"), &o);
  assert_bad (ds, 0, 1, "no token carries loss within the first 8 tokens (seq_len)");
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 1);
  g_assert_cmpuint (sutra_dataset_truncated (ds), ==, 1);
  int64_t tokens, loss;
  sutra_dataset_token_counts (ds, &tokens, &loss);
  g_assert_cmpint (tokens, ==, 8);
  g_assert_cmpint (loss, ==, 7);
  sutra_dataset_free (ds);

  /* a pre-tokenized row of 300000 ids on one line */
  GString *p = g_string_new ("{\"input_ids\": [");
  for (int i = 0; i < 300000; i++)
    g_string_append_printf (p, i ? ",%d" : "%d", i % 1000);
  g_string_append (p, "]}\n");
  o = opts (NULL);
  o.seq_len = 4096;
  ds = load_ok (write_fixture ("bigids.jsonl", p->str, p->len), &o);
  g_assert_cmpint (sutra_dataset_get (ds, 0)->n, ==, 4096);
  g_assert_cmpint (sutra_dataset_get (ds, 0)->ids[4095], ==, 95);
  sutra_dataset_free (ds);
  g_string_free (p, TRUE);
}

static void
test_cancel (void)
{
  GString *t = g_string_new (NULL);
  for (int i = 0; i < 1000; i++)
    g_string_append (t, "{\"input_ids\": [1, 2, 3]}\n");
  volatile int cancel = 1;
  SutraDatasetOptions o = opts (NULL);
  o.cancel = &cancel;
  SutraError err = { 0 };
  g_assert_cmpint (load_fail (write_fixture ("many.jsonl", t->str, t->len), &o, &err), ==,
                   SUTRA_ERR_CANCELLED);
  cancel = 0;
  SutraDataset *ds = load_ok (write_fixture ("many.jsonl", t->str, t->len), &o);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 1000);
  sutra_dataset_free (ds);
  g_string_free (t, TRUE);
}

static void
test_load_buffer (void)
{
  const char *text = "{\"input_ids\": [1, 2]}\n{\"input_ids\": [3]}\n";
  SutraDatasetOptions o = opts (NULL);
  SutraDataset *ds = NULL;
  SutraError err = { 0 };
  test_assert_ok (sutra_dataset_load_buffer (text, strlen (text), "mem.jsonl", &o, &ds, &err), &err);
  g_assert_cmpuint (sutra_dataset_count (ds), ==, 1);
  assert_bad (ds, 0, 2, "mem.jsonl:2: no token carries loss");
  sutra_dataset_free (ds);
  g_assert_cmpint (sutra_dataset_load_buffer ("", 0, "e.csv", &o, &ds, &err), ==, SUTRA_ERR_FORMAT);
}

/* ---- split -------------------------------------------------------------------------------- */

static void
test_split (void)
{
  GString *t = g_string_new (NULL);
  for (int i = 0; i < 101; i++)
    g_string_append_printf (t, "{\"input_ids\": [%d, %d]}\n", i, i + 1);
  SutraDatasetOptions o = opts (NULL);
  SutraDataset *ds = load_ok (write_fixture ("split.jsonl", t->str, t->len), &o);
  g_string_free (t, TRUE);
  SutraError err = { 0 };
  SutraDataset *tr, *va, *tr2, *va2, *tr3, *va3;
  test_assert_ok (sutra_dataset_split (ds, 0.1, 42, &tr, &va, &err), &err);
  test_assert_ok (sutra_dataset_split (ds, 0.1, 42, &tr2, &va2, &err), &err);
  test_assert_ok (sutra_dataset_split (ds, 0.1, 43, &tr3, &va3, &err), &err);
  g_assert_cmpuint (sutra_dataset_count (va), ==, 10);            /* round(10.1) */
  g_assert_cmpuint (sutra_dataset_count (tr), ==, 91);
  /* same seed: identical; halves disjoint and together the whole */
  bool seen[101] = { 0 };
  bool differs = false;
  for (size_t i = 0; i < 101; i++) {
    SutraDataset *h = i < 91 ? tr : va, *h2 = i < 91 ? tr2 : va2, *h3 = i < 91 ? tr3 : va3;
    size_t j = i < 91 ? i : i - 91;
    const SutraExample *e = sutra_dataset_get (h, j);
    g_assert_true (e == NULL ? false : e->ids == sutra_dataset_get (h2, j)->ids);
    differs |= e->ids != sutra_dataset_get (h3, j)->ids;
    int k = e->ids[0];
    g_assert_false (seen[k]);
    seen[k] = true;
    g_assert_cmpint (e->line, ==, k + 1);
  }
  g_assert_true (differs);
  int64_t a, b, c, d, x, y;
  sutra_dataset_token_counts (ds, &a, &b);
  sutra_dataset_token_counts (tr, &c, &d);
  sutra_dataset_token_counts (va, &x, &y);
  g_assert_cmpint (a, ==, c + x);
  g_assert_cmpint (b, ==, d + y);
  g_assert_cmpint (sutra_dataset_shape (va), ==, SUTRA_ROWS_TOKENS);
  SutraDataset *halves[] = { tr, va, tr2, va2, tr3, va3 };
  for (int i = 0; i < 6; i++)
    sutra_dataset_free (halves[i]);

  /* small fractions still give one example; fraction 1 leaves one for training; 0 none */
  test_assert_ok (sutra_dataset_split (ds, 0.001, 1, &tr, &va, &err), &err);
  g_assert_cmpuint (sutra_dataset_count (va), ==, 1);
  sutra_dataset_free (tr);
  sutra_dataset_free (va);
  test_assert_ok (sutra_dataset_split (ds, 1.0, 1, &tr, &va, &err), &err);
  g_assert_cmpuint (sutra_dataset_count (tr), ==, 1);
  g_assert_cmpuint (sutra_dataset_count (va), ==, 100);
  sutra_dataset_free (tr);
  sutra_dataset_free (va);
  test_assert_ok (sutra_dataset_split (ds, 0.0, 1, &tr, &va, &err), &err);
  g_assert_cmpuint (sutra_dataset_count (va), ==, 0);
  g_assert_cmpuint (sutra_dataset_count (tr), ==, 101);
  sutra_dataset_free (tr);
  sutra_dataset_free (va);
  tr = va = NULL;
  g_assert_cmpint (sutra_dataset_split (ds, -0.5, 1, &tr, &va, &err), ==, SUTRA_ERR_INVALID);
  g_assert_cmpint (sutra_dataset_split (ds, 0.0 / 0.0, 1, &tr, &va, &err), ==, SUTRA_ERR_INVALID);
  g_assert_null (tr);
  sutra_dataset_free (ds);
}

/* ---- preview ------------------------------------------------------------------------------ */

static void
assert_pieces_valid (SutraPreviewPiece *p, size_t n, const char *whole)
{
  GString *cat = g_string_new (NULL);
  for (size_t i = 0; i < n; i++) {
    g_assert_true (g_utf8_validate (p[i].text, -1, NULL));
    g_assert_cmpuint (strlen (p[i].text), >, 0);
    if (i > 0)
      g_assert_true (p[i].loss != p[i - 1].loss);
    g_string_append (cat, p[i].text);
  }
  g_assert_cmpstr (cat->str, ==, whole);
  g_string_free (cat, TRUE);
}

static void
test_preview (void)
{
  const SutraTokenizer *tok = tokenizer ("gpt2");
  if (!tok)
    return;
  SutraDatasetOptions o = opts (tok);
  int n;
  int *ids = case_ids ("gpt2", " this is \xf0\x9f\xa6\x99.cpp", false, &n);  /* 🦙 = 12520 99 247 */
  g_assert_cmpint (n, ==, 7);
  /* the emoji's three byte-level tokens carry different flags: it must stay whole */
  GString *t = g_string_new (NULL);
  g_string_append_printf (t, "{\"input_ids\": [%d,%d,%d,%d,%d,%d,%d], \"labels\": [-100,-100,%d,-100,%d,-100,%d]}\n",
                          ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[2], ids[4], ids[6]);
  g_string_append (t, "{\"input_ids\": [15496, 995], \"labels\": [-100, 995]}\n");
  SutraDataset *ds = load_ok (write_fixture ("pv.jsonl", t->str, t->len), &o);
  g_string_free (t, TRUE);
  SutraPreviewPiece *p;
  size_t np;
  SutraError err = { 0 };
  test_assert_ok (sutra_dataset_preview (ds, 0, &p, &np, &err), &err);
  assert_pieces_valid (p, np, " this is \xf0\x9f\xa6\x99.cpp");
  /* " this is" no loss; " 🦙" (completed by a loss token) loss; "." no loss; "cpp" loss */
  g_assert_cmpuint (np, ==, 4);
  g_assert_cmpstr (p[0].text, ==, " this is");
  g_assert_false (p[0].loss);
  g_assert_cmpstr (p[1].text, ==, " \xf0\x9f\xa6\x99");
  g_assert_true (p[1].loss);
  g_assert_cmpstr (p[2].text, ==, ".");
  g_assert_cmpstr (p[3].text, ==, "cpp");
  g_assert_true (p[3].loss);
  sutra_dataset_preview_free (p, np);
  test_assert_ok (sutra_dataset_preview (ds, 1, &p, &np, &err), &err);
  g_assert_cmpuint (np, ==, 2);
  g_assert_cmpstr (p[0].text, ==, "Hello");
  g_assert_false (p[0].loss);
  g_assert_cmpstr (p[1].text, ==, " world");
  g_assert_true (p[1].loss);
  sutra_dataset_preview_free (p, np);
  g_assert_cmpint (sutra_dataset_preview (ds, 2, &p, &np, &err), ==, SUTRA_ERR_INVALID);
  sutra_dataset_free (ds);
  g_free (ids);

  /* chat preview: the assistant text and <|im_end|> highlighted, the rest not */
  const SutraTokenizer *ct = gpt2_chatml ();
  SutraChatTemplate *tpl = chat_template ("smollm2.jinja", "<|im_start|>", "<|im_end|>");
  if (!ct || !tpl)
    return;
  o = opts (ct);
  o.chat = tpl;
  ds = load_ok (fixture ("pvc.jsonl", "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"},"
                                      "{\"role\": \"user\", \"content\": \"Q\"},"
                                      "{\"role\": \"assistant\", \"content\": \"A\"}]}\n"), &o);
  test_assert_ok (sutra_dataset_preview (ds, 0, &p, &np, &err), &err);
  assert_pieces_valid (p, np, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
                              "<|im_start|>assistant\nA<|im_end|>\n");
  g_assert_cmpuint (np, ==, 3);
  g_assert_cmpstr (p[1].text, ==, "A<|im_end|>");
  g_assert_true (p[1].loss);
  sutra_dataset_preview_free (p, np);
  sutra_dataset_free (ds);
  sutra_chat_template_free (tpl);

  /* without a tokenizer: the ids */
  o = opts (NULL);
  ds = load_ok (fixture ("pvn.jsonl", "{\"input_ids\": [7, 8, 9, 10], \"labels\": [-100, -100, 9, 10]}\n"), &o);
  test_assert_ok (sutra_dataset_preview (ds, 0, &p, &np, &err), &err);
  g_assert_cmpuint (np, ==, 2);
  g_assert_cmpstr (p[0].text, ==, "7 8");
  g_assert_cmpstr (p[1].text, ==, " 9 10");
  sutra_dataset_preview_free (p, np);
  sutra_dataset_free (ds);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/dataset/options", test_options);
  g_test_add_func ("/engine/dataset/file-errors", test_file_errors);
  g_test_add_func ("/engine/dataset/tokens-jsonl", test_tokens_jsonl);
  g_test_add_func ("/engine/dataset/tokens-bad-rows", test_tokens_bad_rows);
  g_test_add_func ("/engine/dataset/shape-detection", test_shape_detection);
  g_test_add_func ("/engine/dataset/json-array", test_json_array);
  g_test_add_func ("/engine/dataset/csv-rfc4180", test_csv_rfc4180);
  g_test_add_func ("/engine/dataset/csv-text-columns", test_csv_text_columns);
  g_test_add_func ("/engine/dataset/text-rows", test_text_rows);
  g_test_add_func ("/engine/dataset/prompt-completion", test_prompt_completion);
  g_test_add_func ("/engine/dataset/alpaca", test_alpaca);
  g_test_add_func ("/engine/dataset/chat-chatml", test_chat_chatml);
  g_test_add_func ("/engine/dataset/chat-real-pairs", test_chat_real_pairs);
  g_test_add_func ("/engine/dataset/plain-text", test_plain_text);
  g_test_add_func ("/engine/dataset/plain-text-chunks", test_plain_text_chunks);
  g_test_add_func ("/engine/dataset/truncation", test_truncation);
  g_test_add_func ("/engine/dataset/cancel", test_cancel);
  g_test_add_func ("/engine/dataset/load-buffer", test_load_buffer);
  g_test_add_func ("/engine/dataset/split", test_split);
  g_test_add_func ("/engine/dataset/preview", test_preview);
  int rc = g_test_run ();
  for (int i = 0; i < 3; i++)
    sutra_tokenizer_free (tok_cache[i]);
  sutra_tokenizer_free (chatml_tok);
  return rc;
}
