/* test-tokenizer.c: tokenizer.json conformance against Hugging Face reference encodings
 * (../shared/testdata/hf-refs/tokenizers and ../shared/testdata/tokenizers), round trips,
 * streaming decode, offsets, special-token handling. */
#include "test-util.h"
#include "sutra-tokenizer.h"
#include "sutra-tokenizer-export.h"
#include "sutra-tokenizer-private.h"   /* white-box: meta_split switch */

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

/* ---------------------------------------------------------------------------------------
 * properties */

/* Random text from a pool of troublesome pieces plus random scalar values. */
static GString *
random_text (GRand *r, bool allow_metaspace_char)
{
  static const char *const pool[] = {
    "a", "Z", "the", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", ".", ",", "'s", "'", "\"",
    "123", "4", "3.14", "-", "_", "\u00e9", "e\u0301", "\u00df", "\u00c5", "\u65e5\u672c",
    "\u4f60\u597d", "\ud55c", "\u0627\u0644", "\u0928\u092e", "\U0001F642", "\U0001F469\u200d\U0001F469",
    "\u00a0", "\u3000", "\u200b", "\ufeff", "\xc2\x85", "<", ">", "|", "<|", "|>", "\u2581\u2581",
    "\U0001D400", "\u1160", "\x7f", "\x01",
  };
  GString *s = g_string_new (NULL);
  int n = g_rand_int_range (r, 0, 24);
  for (int i = 0; i < n; i++) {
    if (g_rand_int_range (r, 0, 4) == 0) {
      gunichar c;
      do
        c = (gunichar) g_rand_int_range (r, 1, 0x30000);
      while ((c >= 0xD800 && c <= 0xDFFF) || (!allow_metaspace_char && c == 0x2581));
      g_string_append_unichar (s, c);
    } else {
      const char *p = pool[g_rand_int_range (r, 0, G_N_ELEMENTS (pool))];
      if (!allow_metaspace_char && strstr (p, "\u2581"))
        continue;
      g_string_append (s, p);
    }
  }
  return s;
}

/* decode(encode(s)) == s for tokenizers that lose nothing: byte-level BPE without a
 * normalizer, SentencePiece BPE with byte fallback (except U+2581, which decodes to ' '). */
static void
test_round_trip (void)
{
  const char *root = test_shared_path ("tokenizers");
  if (!root)
    return;
  const char *names[] = { "gpt2", "falcon-7b", "roberta-base", "llama-spm", "phi-3-mini" };
  GRand *r = g_rand_new_with_seed (1234);
  for (size_t k = 0; k < G_N_ELEMENTS (names); k++) {
    char *path = g_build_filename (root, names[k], NULL);
    SutraTokenizer *tok = load_tok (path);
    bool spm = sutra_tokenizer_model_type (tok) == SUTRA_TOK_MODEL_BPE && !sutra_tokenizer_is_byte_level (tok);
    for (int it = 0; it < 300; it++) {
      GString *s = random_text (r, !spm);
      if (spm && strstr (s->str, "<s>")) {   /* special tokens decode as themselves */
        g_string_free (s, TRUE);
        continue;
      }
      SutraEncoding enc = { 0 };
      SutraError err = { 0 };
      test_assert_ok (sutra_tokenizer_encode (tok, s->str, s->len, SUTRA_ENCODE_NO_PARSE_SPECIAL,
                                              &enc, &err), &err);
      char *out = NULL;
      size_t olen = 0;
      test_assert_ok (sutra_tokenizer_decode (tok, enc.ids, enc.n, 0, &out, &olen, &err), &err);
      if (olen != s->len || memcmp (out, s->str, olen) != 0)
        g_error ("%s: round trip of '%s' gave '%s'", names[k], s->str, out);
      /* offsets are within the text, ordered by start, and cover every byte */
      size_t covered = 0;
      for (size_t i = 0; i < enc.n; i++) {
        g_assert_cmpuint (enc.starts[i], <=, enc.ends[i]);
        g_assert_cmpuint (enc.ends[i], <=, s->len);
        if (i)
          g_assert_cmpuint (enc.starts[i], >=, enc.starts[i - 1]);
        if (enc.ends[i] > covered)
          covered = enc.ends[i];
      }
      g_assert_cmpuint (covered, ==, s->len);
      g_assert_true (stream_matches (tok, enc.ids, enc.n, 0, out, olen));
      free (out);
      sutra_encoding_clear (&enc);
      g_string_free (s, TRUE);
    }
    sutra_tokenizer_free (tok);
    g_free (path);
  }
  g_rand_free (r);
}

/* Streaming random ids (byte-level pieces of split characters, byte-fallback tokens, specials)
 * never emits invalid UTF-8 and always adds up to the full decode. */
static void
test_stream_random_ids (void)
{
  const char *root = test_shared_path ("tokenizers");
  if (!root)
    return;
  const char *names[] = { "gpt2", "llama-spm", "t5-small", "bert-base-uncased", "gpt-neox-20b" };
  GRand *r = g_rand_new_with_seed (99);
  for (size_t k = 0; k < G_N_ELEMENTS (names); k++) {
    char *path = g_build_filename (root, names[k], NULL);
    SutraTokenizer *tok = load_tok (path);
    size_t nv = sutra_tokenizer_vocab_size (tok);
    for (int it = 0; it < 200; it++) {
      int32_t ids[40];
      size_t n = (size_t) g_rand_int_range (r, 0, 40);
      for (size_t i = 0; i < n; i++)   /* small ids are bytes / byte-fallback tokens */
        ids[i] = g_rand_boolean (r) ? g_rand_int_range (r, 0, 300) : g_rand_int_range (r, 0, (gint32) nv);
      for (unsigned flags = 0; flags < 2; flags++) {
        char *out = NULL;
        size_t olen = 0;
        SutraError err = { 0 };
        test_assert_ok (sutra_tokenizer_decode (tok, ids, n, flags, &out, &olen, &err), &err);
        g_assert_true (valid_utf8 (out, olen));
        if (!stream_matches (tok, ids, n, flags, out, olen)) {
          show_ids ("ids", ids, n);
          g_error ("%s: streamed text differs from decode '%s'", names[k], out);
        }
        free (out);
      }
    }
    sutra_tokenizer_free (tok);
    g_free (path);
  }
  g_rand_free (r);
}

/* Invalid UTF-8 is replaced like Python's bytes.decode('utf-8', 'replace'), and offsets
 * point into the original bytes. */
static void
test_invalid_utf8 (void)
{
  const char *root = test_shared_path ("tokenizers/gpt2");
  if (!root)
    return;
  SutraTokenizer *tok = load_tok (root);
  static const struct { const char *raw; const char *py; } cases[] = {
    { "a\xff" "b", "a\ufffd" "b" },
    { "\xe2\x82", "\ufffd" },                           /* truncated sequence: one U+FFFD */
    { "\xe2\x28\xa1", "\ufffd(\ufffd" },
    { "\xf0\x9f\x98", "\ufffd" },
    { "\xc0\xaf", "\ufffd\ufffd" },                      /* overlong: two */
    { "\xed\xa0\x80", "\ufffd\ufffd\ufffd" },            /* surrogate: three */
    { "ok\xf4\x90\x80\x80!", "ok\ufffd\ufffd\ufffd\ufffd!" },
    { "\x80\x80 x", "\ufffd\ufffd x" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    SutraEncoding a = { 0 }, b = { 0 };
    SutraError err = { 0 };
    size_t rl = strlen (cases[i].raw);
    test_assert_ok (sutra_tokenizer_encode (tok, cases[i].raw, rl, 0, &a, &err), &err);
    test_assert_ok (sutra_tokenizer_encode (tok, cases[i].py, strlen (cases[i].py), 0, &b, &err), &err);
    g_assert_cmpuint (a.n, ==, b.n);
    for (size_t k = 0; k < a.n; k++) {
      g_assert_cmpint (a.ids[k], ==, b.ids[k]);
      g_assert_cmpuint (a.ends[k], <=, rl);
    }
    if (a.n)
      g_assert_cmpuint (a.ends[a.n - 1], ==, rl);
    sutra_encoding_clear (&a);
    sutra_encoding_clear (&b);
  }
  /* "a\xff" "b": the U+FFFD tokens span exactly the bad byte */
  SutraEncoding e = { 0 };
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_encode (tok, "a\xff" "b", 3, 0, &e, &err), &err);
  for (size_t k = 0; k < e.n; k++)
    if (e.starts[k] == 1)
      g_assert_cmpuint (e.ends[k], ==, 2);
  sutra_encoding_clear (&e);
  sutra_tokenizer_free (tok);
}

/* Special tokens in user text: parsed by default, plain text on request. */
static void
test_special_parsing (void)
{
  const char *root = test_shared_path ("tokenizers/gpt2");
  if (!root)
    return;
  SutraTokenizer *tok = load_tok (root);
  const char *text = "hi<|endoftext|>";
  SutraEncoding a = { 0 }, b = { 0 };
  SutraError err = { 0 };
  test_assert_ok (sutra_tokenizer_encode (tok, text, strlen (text), 0, &a, &err), &err);
  test_assert_ok (sutra_tokenizer_encode (tok, text, strlen (text), SUTRA_ENCODE_NO_PARSE_SPECIAL,
                                          &b, &err), &err);
  int32_t eot = sutra_tokenizer_token_to_id (tok, "<|endoftext|>", 13);
  g_assert_cmpint (eot, ==, 50256);
  g_assert_cmpint (a.ids[a.n - 1], ==, eot);
  g_assert_cmpuint (a.starts[a.n - 1], ==, 2);
  g_assert_cmpuint (a.ends[a.n - 1], ==, 15);
  g_assert_cmpuint (b.n, >, a.n);
  for (size_t k = 0; k < b.n; k++)
    g_assert_cmpint (b.ids[k], !=, eot);
  g_assert_true (sutra_tokenizer_is_special (tok, eot));
  g_assert_false (sutra_tokenizer_is_special (tok, 0));
  /* skip_special drops it when decoding */
  char *out = NULL;
  test_assert_ok (sutra_tokenizer_decode (tok, a.ids, a.n, SUTRA_DECODE_SKIP_SPECIAL, &out, NULL, &err),
                  &err);
  g_assert_cmpstr (out, ==, "hi");
  free (out);
  sutra_encoding_clear (&a);
  sutra_encoding_clear (&b);
  sutra_tokenizer_free (tok);
}

/* Special-token roles and add_bos/add_eos from tokenizer_config.json or the template. */
static void
test_roles (void)
{
  const char *root = test_shared_path ("tokenizers");
  if (!root)
    return;
  static const struct { const char *name; const char *bos, *eos, *pad, *unk; bool abos, aeos; } cases[] = {
    { "llama-spm", "<s>", "</s>", "<unk>", "<unk>", true, false },
    { "phi-3-mini", "<s>", "<|endoftext|>", "<|endoftext|>", "<unk>", false, false },
    { "t5-small", NULL, "</s>", "<pad>", "<unk>", false, true },
    { "bert-base-uncased", "[CLS]", "[SEP]", "[PAD]", "[UNK]", true, true },
    { "roberta-base", "<s>", "</s>", "<pad>", "<unk>", true, true },
    { "gpt2", "<|endoftext|>", "<|endoftext|>", NULL, NULL, false, false },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    char *path = g_build_filename (root, cases[i].name, NULL);
    SutraTokenizer *tok = load_tok (path);
    const char *want[4] = { cases[i].bos, cases[i].eos, cases[i].pad, cases[i].unk };
    for (int r = 0; r < 4; r++) {
      const char *got = sutra_tokenizer_role_token (tok, (SutraTokRole) r);
      if (g_strcmp0 (got, want[r]) != 0)
        g_error ("%s: role %d is '%s', expected '%s'", cases[i].name, r, got, want[r]);
      if (want[r])
        g_assert_cmpint (sutra_tokenizer_role_id (tok, (SutraTokRole) r), ==,
                         sutra_tokenizer_token_to_id (tok, want[r], strlen (want[r])));
    }
    g_assert_cmpint (sutra_tokenizer_adds_bos (tok), ==, cases[i].abos);
    g_assert_cmpint (sutra_tokenizer_adds_eos (tok), ==, cases[i].aeos);
    sutra_tokenizer_free (tok);
    g_free (path);
  }
}

/* GGUF accessors: merges in file order, scores, token types, pre-tokenizer regexes. */
static void
test_export (void)
{
  const char *root = test_shared_path ("tokenizers");
  if (!root)
    return;
  char *p = g_build_filename (root, "llama-spm", NULL);
  SutraTokenizer *tok = load_tok (p);
  g_assert_cmpint (sutra_tokenizer_model_type (tok), ==, SUTRA_TOK_MODEL_BPE);
  g_assert_false (sutra_tokenizer_is_byte_level (tok));
  g_assert_cmpuint (sutra_tokenizer_n_merges (tok), ==, 61249);
  g_assert_cmpstr (sutra_tokenizer_merge (tok, 0), ==, "\u2581 t");
  int32_t t = sutra_tokenizer_token_to_id (tok, "\u2581t", strlen ("\u2581t"));
  g_assert_cmpfloat (sutra_tokenizer_token_score (tok, t), ==, -1.0f);
  g_assert_cmpint (sutra_tokenizer_token_type (tok, 0), ==, SUTRA_TOKEN_TYPE_UNKNOWN);
  g_assert_cmpint (sutra_tokenizer_token_type (tok, 1), ==, SUTRA_TOKEN_TYPE_CONTROL);
  g_assert_cmpint (sutra_tokenizer_token_type (tok, 3), ==, SUTRA_TOKEN_TYPE_BYTE);
  g_assert_cmpint (sutra_tokenizer_token_type (tok, t), ==, SUTRA_TOKEN_TYPE_NORMAL);
  g_assert_cmpint (sutra_tokenizer_token_type (tok, 40000), ==, SUTRA_TOKEN_TYPE_UNUSED);
  g_assert_cmpuint (sutra_tokenizer_n_pretok_regexes (tok), ==, 0);
  sutra_tokenizer_free (tok);
  g_free (p);
  p = g_build_filename (root, "falcon-7b", NULL);
  tok = load_tok (p);
  g_assert_true (sutra_tokenizer_is_byte_level (tok));
  g_assert_cmpuint (sutra_tokenizer_n_pretok_regexes (tok), ==, 2);
  g_assert_cmpstr (sutra_tokenizer_pretok_regex (tok, 1), ==, "[0-9][0-9][0-9]");
  g_assert_nonnull (strstr (sutra_tokenizer_pretok_regex (tok, 0), "\\p{L}+"));
  sutra_tokenizer_free (tok);
  g_free (p);
  p = g_build_filename (root, "t5-small", NULL);
  tok = load_tok (p);
  g_assert_cmpint (sutra_tokenizer_model_type (tok), ==, SUTRA_TOK_MODEL_UNIGRAM);
  g_assert_cmpuint (sutra_tokenizer_n_merges (tok), ==, 0);
  g_assert_cmpfloat (sutra_tokenizer_token_score (tok, 5), <, 0.0f);
  g_assert_cmpuint (sutra_tokenizer_vocab_size (tok), ==, 32100);
  sutra_tokenizer_free (tok);
  g_free (p);
}

/* ---------------------------------------------------------------------------------------
 * malformed files */

static void
expect_load_error (const char *json, SutraStatus code, const char *needle)
{
  SutraTokenizer *tok = NULL;
  SutraError err = { 0 };
  SutraStatus st = sutra_tokenizer_load_json (json, strlen (json), NULL, 0, "bad.json", &tok, &err);
  if (st != code || !strstr (err.message, needle))
    g_error ("loading %.80s: got %s '%s', expected %s containing '%s'", json,
             sutra_status_name (st), err.message, sutra_status_name (code), needle);
  g_assert_null (tok);
  g_assert_true (g_str_has_prefix (err.message, "bad.json: "));
}

#define BPE_MODEL(vocab, merges) \
  "{\"version\":\"1.0\",\"added_tokens\":[],\"model\":{\"type\":\"BPE\",\"vocab\":" vocab \
  ",\"merges\":" merges "}"

static void
test_malformed (void)
{
  expect_load_error ("", SUTRA_ERR_FORMAT, "empty");
  expect_load_error ("{\"model\": {", SUTRA_ERR_FORMAT, "unexpected end of data");
  expect_load_error ("[1,2]", SUTRA_ERR_FORMAT, "JSON object");
  expect_load_error ("{} x", SUTRA_ERR_FORMAT, "bad.json: line 1, column 4");
  expect_load_error ("{\"a\":1,}", SUTRA_ERR_FORMAT, "line 1, column");
  expect_load_error ("{\"a\":NaN}", SUTRA_ERR_FORMAT, "NaN");
  expect_load_error ("{\"a\":\"\xff\"}", SUTRA_ERR_FORMAT, "bad.json: line 1");
  expect_load_error ("{}", SUTRA_ERR_FORMAT, "model");
  expect_load_error (BPE_MODEL ("{\"a\":0,\"b\":1,\"ab\":2}", "[\"a c\"]") "}", SUTRA_ERR_FORMAT,
                     "model.merges[0]: unknown token 'c'");
  expect_load_error (BPE_MODEL ("{\"a\":0,\"b\":1,\"ab\":2}", "[\"a b\",\"ab\"]") "}", SUTRA_ERR_FORMAT,
                     "model.merges[1]");
  expect_load_error (BPE_MODEL ("{\"a\":0,\"b\":0}", "[]") "}", SUTRA_ERR_FORMAT, "both have id 0");
  expect_load_error (BPE_MODEL ("{\"a\":-1}", "[]") "}", SUTRA_ERR_FORMAT, "id -1");
  expect_load_error (BPE_MODEL ("{\"a\":4000000000}", "[]") "}", SUTRA_ERR_FORMAT, "id 4000000000");
  expect_load_error (BPE_MODEL ("{\"a\":\"x\"}", "[]") "}", SUTRA_ERR_FORMAT, "must be an integer");
  expect_load_error (BPE_MODEL ("[]", "[]") "}", SUTRA_ERR_FORMAT, "vocab");
  expect_load_error (BPE_MODEL ("{\"a\":0}", "{}") "}", SUTRA_ERR_FORMAT, "'merges' must be an array");
  expect_load_error (BPE_MODEL ("{\"a\":0}", "[7]") "}", SUTRA_ERR_FORMAT, "model.merges[0]");
  expect_load_error (BPE_MODEL ("{\"a\":0}", "[]") ",\"version\":\"2.0\"}", SUTRA_ERR_UNSUPPORTED,
                     "version");
  expect_load_error (BPE_MODEL ("{\"a\":0}", "[]")
                     ",\"pre_tokenizer\":{\"type\":\"UnicodeScripts\"}}", SUTRA_ERR_UNSUPPORTED,
                     "pre_tokenizer.type 'UnicodeScripts' is not supported");
  expect_load_error (BPE_MODEL ("{\"a\":0}", "[]")
                     ",\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Upper\"}]}}",
                     SUTRA_ERR_UNSUPPORTED, "normalizer.normalizers[0].type 'Upper' is not supported");
  expect_load_error (BPE_MODEL ("{\"a\":0}", "[]") ",\"normalizer\":{\"type\":\"Precompiled\","
                     "\"precompiled_charsmap\":\"@@@\"}}", SUTRA_ERR_FORMAT, "base64");
  expect_load_error (BPE_MODEL ("{\"a\":0}", "[]") ",\"pre_tokenizer\":{\"type\":\"Split\","
                     "\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\",\"invert\":false}}",
                     SUTRA_ERR_UNSUPPORTED, "does not compile");
  expect_load_error (BPE_MODEL ("{\"a\":0}", "[]") ",\"decoder\":{\"type\":\"Strip\",\"content\":\"ab\"}}",
                     SUTRA_ERR_FORMAT, "single character");
  expect_load_error (BPE_MODEL ("{\"a\":0}", "[]") ",\"post_processor\":{\"type\":\"TemplateProcessing\","
                     "\"single\":[{\"SpecialToken\":{\"id\":\"[X]\"}}],\"special_tokens\":{}}}",
                     SUTRA_ERR_FORMAT, "special token '[X]'");
  expect_load_error ("{\"model\":{\"type\":\"BPE\",\"dropout\":0.1,\"vocab\":{},\"merges\":[]}}",
                     SUTRA_ERR_UNSUPPORTED, "dropout");
  expect_load_error ("{\"model\":{\"type\":\"WordLevel\",\"vocab\":{}}}", SUTRA_ERR_UNSUPPORTED,
                     "model.type 'WordLevel' is not supported");
  expect_load_error ("{\"model\":{\"type\":\"Unigram\",\"unk_id\":5,\"vocab\":[[\"a\",0.0]]}}",
                     SUTRA_ERR_FORMAT, "unk_id");
  expect_load_error ("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\"]]}}", SUTRA_ERR_FORMAT,
                     "model.vocab[0]");
  expect_load_error (BPE_MODEL ("{\"a\":0}", "[]") ",\"added_tokens\":[{\"content\":\"x\"}]}",
                     SUTRA_ERR_FORMAT, "added_tokens[0]: missing 'id'");
  /* deep nesting is refused, not a stack overflow */
  GString *deep = g_string_new ("{\"model\":");
  for (int i = 0; i < 2000; i++)
    g_string_append_c (deep, '[');
  expect_load_error (deep->str, SUTRA_ERR_FORMAT, "bad.json: line 1");
  g_string_free (deep, TRUE);
  /* a missing file */
  SutraTokenizer *tok = NULL;
  SutraError err = { 0 };
  g_assert_cmpint (sutra_tokenizer_load ("/nonexistent/tokenizer.json", &tok, &err), ==,
                   SUTRA_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, "/nonexistent/tokenizer.json"));
}

/* Cutting SentencePiece BPE pieces before each word's U+2581 (a speed-up) gives exactly the
 * ids of running BPE over the whole piece. */
static void
test_meta_split_equivalence (void)
{
  const char *root = test_shared_path ("tokenizers/llama-spm");
  if (!root)
    return;
  SutraTokenizer *cut = load_tok (root), *whole = load_tok (root);
  g_assert_true (cut->model.meta_split);
  whole->model.meta_split = false;
  GRand *r = g_rand_new_with_seed (77);
  for (int it = 0; it < 400; it++) {
    GString *s = random_text (r, true);
    SutraEncoding a = { 0 }, b = { 0 };
    SutraError err = { 0 };
    test_assert_ok (sutra_tokenizer_encode (cut, s->str, s->len, 0, &a, &err), &err);
    test_assert_ok (sutra_tokenizer_encode (whole, s->str, s->len, 0, &b, &err), &err);
    g_assert_cmpuint (a.n, ==, b.n);
    g_assert_true (memcmp (a.ids, b.ids, a.n * sizeof *a.ids) == 0);
    g_assert_true (memcmp (a.starts, b.starts, a.n * sizeof *a.starts) == 0);
    g_assert_true (memcmp (a.ends, b.ends, a.n * sizeof *a.ends) == 0);
    sutra_encoding_clear (&a);
    sutra_encoding_clear (&b);
    g_string_free (s, TRUE);
  }
  g_rand_free (r);
  sutra_tokenizer_free (cut);
  sutra_tokenizer_free (whole);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/tokenizer/hf-refs", test_hf_refs);
  g_test_add_func ("/engine/tokenizer/real-tokenizers", test_real_tokenizers);
  g_test_add_func ("/engine/tokenizer/round-trip", test_round_trip);
  g_test_add_func ("/engine/tokenizer/stream-random-ids", test_stream_random_ids);
  g_test_add_func ("/engine/tokenizer/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/engine/tokenizer/special-parsing", test_special_parsing);
  g_test_add_func ("/engine/tokenizer/roles", test_roles);
  g_test_add_func ("/engine/tokenizer/export", test_export);
  g_test_add_func ("/engine/tokenizer/malformed", test_malformed);
  g_test_add_func ("/engine/tokenizer/meta-split-equivalence", test_meta_split_equivalence);
  return g_test_run ();
}
