/* test-tokenizer.c: tokenizer.json conformance against Hugging Face reference encodings
 * (../shared/testdata/hf-refs/tokenizers and ../shared/testdata/tokenizers), round trips,
 * streaming decode, offsets, special-token handling. */
#include "test-util.h"
#include "sutra-tokenizer.h"
#include "sutra-tokenizer-export.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * helpers */

static SutraTokenizer *
load_tok (const char *path)
{
  SutraError err = { 0 };
  SutraTokenizer *tok = NULL;
  test_assert_ok (sutra_tokenizer_load (path, &tok, &err), &err);
  return tok;
}

/* Byte offset -> char offset the way tokenizers' BytesToCharOffsetConverter does (the
 * Python binding reports char offsets). */
static void
byte_to_char_offsets (const char *text, size_t len, size_t s, size_t e, long *cs, long *ce)
{
  /* map[b] = index of the char containing byte b */
  long ci = -1;
  long ms = -1, me = -1, mlast = -1;
  for (size_t b = 0; b < len; b++) {
    if (((unsigned char) text[b] & 0xC0) != 0x80)
      ci++;
    if (b == s)
      ms = ci;
    if (b == e)
      me = ci;
    if (e > 0 && b == e - 1)
      mlast = ci;
  }
  if (ms >= 0 && me >= 0) {
    *cs = ms;
    *ce = me;
  } else if (ms >= 0) {
    *cs = ms;
    *ce = (mlast >= 0 ? mlast : ms) + 1;
  } else {
    *cs = (long) s;   /* (0,0) on an empty text and the like */
    *ce = (long) e;
  }
  if (s == 0 && e == 0) {
    *cs = 0;
    *ce = 0;
  }
}

typedef struct {
  int total, ids_ok, tokens_ok, offsets_ok, decoded_ok, py_ok, py_total, stream_ok;
  int failures_shown;
} Tally;

static void
show_ids (const char *what, const int32_t *ids, size_t n)
{
  GString *s = g_string_new (NULL);
  for (size_t i = 0; i < n; i++)
    g_string_append_printf (s, "%s%d", i ? " " : "", ids[i]);
  g_printerr ("    %s: [%s]\n", what, s->str);
  g_string_free (s, TRUE);
}

/* Strict UTF-8 check that, unlike g_utf8_validate, accepts U+0000. */
static bool
valid_utf8 (const char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    if (s[i] == '\0') {
      i++;
      continue;
    }
    gunichar c = g_utf8_get_char_validated (s + i, (gssize) (n - i));
    if (c == (gunichar) -1 || c == (gunichar) -2)
      return false;
    i += (size_t) (g_utf8_next_char (s + i) - (s + i));
  }
  return true;
}

/* Streams ids through the detokenizer; checks pieces concatenate to the full decode and
 * every piece is valid UTF-8. */
static bool
stream_matches (const SutraTokenizer *tok, const int32_t *ids, size_t n, unsigned flags,
                const char *full, size_t full_len)
{
  SutraDetokenizer *d = sutra_detokenizer_new (tok, flags);
  GString *acc = g_string_new (NULL);
  bool ok = true;
  for (size_t i = 0; i < n; i++) {
    size_t len;
    const char *piece = sutra_detokenizer_feed (d, ids[i], &len);
    if (!valid_utf8 (piece, len))
      ok = false;
    g_string_append_len (acc, piece, (gssize) len);
  }
  size_t len;
  const char *rest = sutra_detokenizer_flush (d, &len);
  g_string_append_len (acc, rest, (gssize) len);
  ok = ok && acc->len == full_len && memcmp (acc->str, full, full_len) == 0;
  g_string_free (acc, TRUE);
  sutra_detokenizer_free (d);
  return ok;
}

static json_object *
jget (json_object *o, const char *k)
{
  json_object *v = NULL;
  return json_object_object_get_ex (o, k, &v) ? v : NULL;
}

/* Runs every case in dir/cases.jsonl. hf_refs: the case holds tokens/offsets and a
 * `decoded` made with skip_special_tokens=True. */
static void
run_cases (const char *dir, bool hf_refs, Tally *t)
{
  char *cases_path = g_build_filename (dir, "cases.jsonl", NULL);
  char *tok_path = hf_refs ? g_build_filename (dir, "tokenizer.json", NULL) : g_strdup (dir);
  gchar *contents = NULL;
  gsize clen = 0;
  g_assert_true (g_file_get_contents (cases_path, &contents, &clen, NULL));
  SutraTokenizer *tok = load_tok (tok_path);
  bool cleanup = sutra_tokenizer_cleanup_default (tok);
  gchar **lines = g_strsplit (contents, "\n", -1);
  for (int li = 0; lines[li]; li++) {
    if (!lines[li][0])
      continue;
    json_object *c = json_tokener_parse (lines[li]);
    g_assert_nonnull (c);
    json_object *jt = jget (c, "text");
    const char *text = json_object_get_string (jt);
    size_t tlen = (size_t) json_object_get_string_len (jt);
    bool add = json_object_get_boolean (jget (c, "add_special_tokens"));
    json_object *jids = jget (c, "ids");
    size_t n_exp = json_object_array_length (jids);
    t->total++;
    SutraEncoding enc = { 0 };
    SutraError err = { 0 };
    SutraStatus st = sutra_tokenizer_encode (tok, text, tlen, add ? SUTRA_ENCODE_ADD_SPECIAL : 0,
                                             &enc, &err);
    bool ids_ok = st == SUTRA_OK && enc.n == n_exp;
    int32_t *exp = g_new0 (int32_t, n_exp + 1);
    for (size_t i = 0; i < n_exp; i++)
      exp[i] = (int32_t) json_object_get_int (json_object_array_get_idx (jids, i));
    for (size_t i = 0; ids_ok && i < n_exp; i++)
      ids_ok = enc.ids[i] == exp[i];
    t->ids_ok += ids_ok;
    const char *case_id = jget (c, "id") ? json_object_get_string (jget (c, "id")) : "";
    if (!ids_ok && t->failures_shown++ < 12) {
      g_printerr ("  FAIL ids %s [%s] add=%d text=%s\n", dir, case_id, add, text);
      if (st != SUTRA_OK)
        g_printerr ("    error: %s\n", err.message);
      show_ids ("expected", exp, n_exp);
      show_ids ("got     ", enc.ids, enc.n);
    }
    /* tokens and offsets (hf-refs) */
    json_object *jtoks = jget (c, "tokens"), *joff = jget (c, "offsets");
    if (jtoks && ids_ok) {
      bool ok = true;
      for (size_t i = 0; i < n_exp; i++) {
        const char *want = json_object_get_string (json_object_array_get_idx (jtoks, i));
        const char *got = sutra_tokenizer_id_to_token (tok, enc.ids[i]);
        if (!got || strcmp (want, got) != 0)
          ok = false;
      }
      t->tokens_ok += ok;
    } else if (jtoks)
      ;
    else
      t->tokens_ok++;
    if (joff && ids_ok) {
      bool ok = true;
      for (size_t i = 0; i < n_exp && ok; i++) {
        json_object *pr = json_object_array_get_idx (joff, i);
        long ws = json_object_get_int (json_object_array_get_idx (pr, 0));
        long we = json_object_get_int (json_object_array_get_idx (pr, 1));
        long cs, ce;
        byte_to_char_offsets (text, tlen, enc.starts[i], enc.ends[i], &cs, &ce);
        if (cs != ws || ce != we) {
          ok = false;
          if (t->failures_shown++ < 12)
            g_printerr ("  FAIL offsets %s text=%s token %zu: want (%ld,%ld) got (%ld,%ld) bytes (%zu,%zu)\n",
                        dir, text, i, ws, we, cs, ce, enc.starts[i], enc.ends[i]);
        }
      }
      t->offsets_ok += ok;
    } else if (!joff)
      t->offsets_ok++;
    /* decoded */
    json_object *jd = jget (c, "decoded");
    if (jd) {
      char *out = NULL;
      size_t olen = 0;
      test_assert_ok (sutra_tokenizer_decode (tok, exp, n_exp, hf_refs ? SUTRA_DECODE_SKIP_SPECIAL : 0,
                                              &out, &olen, &err), &err);
      const char *want = json_object_get_string (jd);
      size_t wl = (size_t) json_object_get_string_len (jd);
      bool ok = olen == wl && memcmp (out, want, wl) == 0;
      t->decoded_ok += ok;
      if (!ok && t->failures_shown++ < 12)
        g_printerr ("  FAIL decoded %s [%s]: want \"%s\" got \"%s\"\n", dir, case_id, want, out);
      bool sok = stream_matches (tok, exp, n_exp, hf_refs ? SUTRA_DECODE_SKIP_SPECIAL : 0, out, olen);
      t->stream_ok += sok;
      if (!sok && t->failures_shown++ < 12)
        g_printerr ("  FAIL stream %s [%s]\n", dir, case_id);
      free (out);
    } else {
      t->decoded_ok++;
      t->stream_ok++;
    }
    /* transformers-level decode */
    const char *pyk[2] = { "py_decoded", "py_decoded_skip_special" };
    for (int k = 0; k < 2; k++) {
      json_object *jp = jget (c, pyk[k]);
      if (!jp)
        continue;
      t->py_total++;
      char *out = NULL;
      size_t olen = 0;
      unsigned fl = (cleanup ? SUTRA_DECODE_CLEANUP : 0) | (k ? SUTRA_DECODE_SKIP_SPECIAL : 0);
      test_assert_ok (sutra_tokenizer_decode (tok, exp, n_exp, fl, &out, &olen, &err), &err);
      const char *want = json_object_get_string (jp);
      bool ok = strlen (want) == olen && memcmp (out, want, olen) == 0;
      t->py_ok += ok;
      if (!ok && t->failures_shown++ < 12)
        g_printerr ("  FAIL %s %s [%s]: want \"%s\" got \"%s\"\n", pyk[k], dir, case_id, want, out);
      free (out);
    }
    g_free (exp);
    sutra_encoding_clear (&enc);
    json_object_put (c);
  }
  g_strfreev (lines);
  g_free (contents);
  sutra_tokenizer_free (tok);
  g_free (cases_path);
  g_free (tok_path);
}

static void
run_dir (const char *root, bool hf_refs)
{
  GDir *d = g_dir_open (root, 0, NULL);
  g_assert_nonnull (d);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  g_dir_close (d);
  g_ptr_array_sort (names, (GCompareFunc) g_strcmp0);
  int all_total = 0, all_bad = 0;
  for (guint i = 0; i < names->len; i++) {
    char *sub = g_build_filename (root, names->pdata[i], NULL);
    char *cases = g_build_filename (sub, "cases.jsonl", NULL);
    if (g_file_test (cases, G_FILE_TEST_EXISTS)) {
      Tally t = { 0 };
      run_cases (sub, hf_refs, &t);
      g_printerr ("%-22s ids %d/%d  tokens %d/%d  offsets %d/%d  decoded %d/%d  stream %d/%d"
                  "  py_decoded %d/%d\n", (char *) names->pdata[i], t.ids_ok, t.total,
                  t.tokens_ok, t.total, t.offsets_ok, t.total, t.decoded_ok, t.total,
                  t.stream_ok, t.total, t.py_ok, t.py_total);
      all_total += t.total;
      all_bad += (t.total - t.ids_ok) + (t.total - t.tokens_ok) + (t.total - t.offsets_ok)
                 + (t.total - t.decoded_ok) + (t.total - t.stream_ok) + (t.py_total - t.py_ok);
    }
    g_free (cases);
    g_free (sub);
  }
  g_ptr_array_unref (names);
  g_assert_cmpint (all_total, >, 0);
  g_assert_cmpint (all_bad, ==, 0);
}

static void
test_hf_refs (void)
{
  const char *root = test_shared_path ("hf-refs/tokenizers");
  if (!root)
    return;
  run_dir (root, true);
}

static void
test_real_tokenizers (void)
{
  const char *root = test_shared_path ("tokenizers");
  if (!root)
    return;
  run_dir (root, false);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/tokenizer/hf-refs", test_hf_refs);
  g_test_add_func ("/engine/tokenizer/real-tokenizers", test_real_tokenizers);
  return g_test_run ();
}
