/* test-chat.c: chat templates (engine/text/sutra-chat*) against the conformance data of
 * ../shared/testdata/chat-templates: the 320 reference renderings of cases.jsonl (jinja2 as
 * transformers configures it), llama.cpp's 36 test templates as rendered by jinja2
 * (llamacpp_comparison.json), the peers' published outputs (peer_refs.json); then the built-in
 * families against the same references, family detection, assistant spans on every template,
 * loading from model folders, the clock, and the `sutra chat-template` command. */
#include "test-util.h"
#include "sutra-chat.h"

#include <glib/gstdio.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define CT_DIR "chat-templates"

/* ---- helpers ------------------------------------------------------------------------------ */

static struct json_object *
load_json (const char *path)
{
  struct json_object *o = json_object_from_file (path);
  if (!o)
    g_error ("%s: %s", path, json_util_get_last_err ());
  return o;
}

static void
put_json (gpointer o)
{
  json_object_put (o);
}

/* cases.jsonl: one JSON object per line. */
static GPtrArray *
load_jsonl (const char *path)
{
  char *text;
  gsize len;
  GError *error = NULL;
  g_assert_true (g_file_get_contents (path, &text, &len, &error));
  GPtrArray *rows = g_ptr_array_new_with_free_func (put_json);
  char **lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    if (**l) {
      struct json_object *o = json_tokener_parse (*l);
      g_assert_nonnull (o);
      g_ptr_array_add (rows, o);
    }
  g_strfreev (lines);
  g_free (text);
  return rows;
}

static const char *
jstr (struct json_object *o, const char *key)
{
  struct json_object *v;
  if (!json_object_object_get_ex (o, key, &v) || !json_object_is_type (v, json_type_string))
    return NULL;
  return json_object_get_string (v);
}

static struct json_object *
jget (struct json_object *o, const char *key)
{
  struct json_object *v = NULL;
  json_object_object_get_ex (o, key, &v);
  return v;
}

static char *
template_source (const char *dir, const char *name)
{
  char *path = g_strdup_printf ("%s/templates/%s.jinja", dir, name);
  char *src;
  GError *error = NULL;
  if (!g_file_get_contents (path, &src, NULL, &error))
    g_error ("%s", error->message);
  g_free (path);
  return src;
}

/* "2025-01-15T12:00:00" -> seconds (taken as UTC, as the references freeze the clock there). */
static int64_t
parse_now (const char *iso)
{
  int y, mo, d, h, mi, s;
  g_assert_cmpint (sscanf (iso, "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &s), ==, 6);
  GDateTime *dt = g_date_time_new_utc (y, mo, d, h, mi, s);
  int64_t t = g_date_time_to_unix (dt);
  g_date_time_unref (dt);
  return t;
}

/* Sets the special tokens of a cases.jsonl "special_tokens" object. */
static void
apply_tokens (SutraChatTemplate *t, struct json_object *tokens)
{
  json_object_object_foreach (tokens, key, val) {
    if (json_object_is_type (val, json_type_array)) {
      size_t n = json_object_array_length (val);
      const char **list = g_new0 (const char *, n + 1);
      for (size_t i = 0; i < n; i++)
        list[i] = json_object_get_string (json_object_array_get_idx (val, i));
      sutra_chat_template_set_additional_tokens (t, list, n);
      g_free (list);
    } else {
      SutraError err = { 0 };
      test_assert_ok (sutra_chat_template_set_token (t, key, json_object_get_string (val), &err),
                      &err);
    }
  }
}

static SutraChatTemplate *
template_from (const char *src, struct json_object *tokens, int64_t now)
{
  SutraChatTemplate *t;
  SutraError err = { 0 };
  test_assert_ok (sutra_chat_template_new (src, &t, &err), &err);
  if (tokens)
    apply_tokens (t, tokens);
  sutra_chat_template_set_now (t, now);
  return t;
}

/* messages JSON array -> SutraChatMessage[] (borrowing the strings). */
static SutraChatMessage *
to_messages (struct json_object *arr, size_t *n)
{
  *n = json_object_array_length (arr);
  SutraChatMessage *m = g_new0 (SutraChatMessage, *n + 1);
  for (size_t i = 0; i < *n; i++) {
    struct json_object *o = json_object_array_get_idx (arr, i);
    m[i].role = jstr (o, "role");
    m[i].content = jstr (o, "content");
  }
  return m;
}

/* Renders both through the struct API and the JSON API; they must agree. Returns the
 * status; *out on success. */
static SutraStatus
render_both (SutraChatTemplate *t, struct json_object *msgs, bool agp, char **out,
             SutraError *err)
{
  size_t n;
  SutraChatMessage *m = to_messages (msgs, &n);
  SutraStatus st = sutra_chat_render (t, m, n, agp, out, err);
  g_free (m);
  char *out2 = NULL;
  SutraError err2 = { 0 };
  SutraStatus st2 = sutra_chat_render_json (t, json_object_to_json_string (msgs), agp, &out2,
                                            &err2);
  g_assert_cmpint (st, ==, st2);
  if (st == SUTRA_OK)
    g_assert_cmpstr (*out, ==, out2);
  else
    g_assert_cmpstr (err->message, ==, err2.message);
  free (out2);
  return st;
}

/* Checks one render against an "expected" or a "raises" reference; reports mismatches. */
static bool
check_case (SutraChatTemplate *t, struct json_object *msgs, bool agp, const char *expected,
            const char *raises, const char *what)
{
  char *out = NULL;
  SutraError err = { 0 };
  SutraStatus st = render_both (t, msgs, agp, &out, &err);
  bool ok;
  if (expected) {
    ok = st == SUTRA_OK && strcmp (out, expected) == 0;
    if (!ok)
      g_printerr ("%s: expected\n  %s\ngot\n  %s\n", what, expected,
                  st == SUTRA_OK ? out : err.message);
  } else {
    /* raise_exception: SUTRA_ERR_INVALID with the template's own message */
    ok = st == SUTRA_ERR_INVALID && g_str_has_suffix (err.message, raises) &&
         strlen (err.message) > strlen (raises) && err.message[strlen (err.message) -
                                                               strlen (raises) - 2] == ':';
    if (!ok)
      g_printerr ("%s: expected the error \"%s\", got %s\n", what, raises,
                  st == SUTRA_OK ? out : err.message);
  }
  free (out);
  return ok;
}

/* ---- conformance ------------------------------------------------------------------------- */

static void
test_cases_jsonl (void)
{
  const char *dir = test_shared_path (CT_DIR);
  if (!dir)
    return;
  char *path = g_build_filename (dir, "cases.jsonl", NULL);
  GPtrArray *rows = load_jsonl (path);
  size_t pass = 0, raises = 0;
  for (guint i = 0; i < rows->len; i++) {
    struct json_object *c = rows->pdata[i];
    char *src = template_source (dir, jstr (c, "template"));
    SutraChatTemplate *t = template_from (src, jget (c, "special_tokens"),
                                          parse_now (jstr (c, "now")));
    char *what = g_strdup_printf ("%s/%s/agp=%d", jstr (c, "template"), jstr (c, "case"),
                                  json_object_get_boolean (jget (c, "add_generation_prompt")));
    raises += jstr (c, "raises") != NULL;
    pass += check_case (t, jget (c, "messages"),
                        json_object_get_boolean (jget (c, "add_generation_prompt")),
                        jstr (c, "expected"), jstr (c, "raises"), what);
    g_free (what);
    sutra_chat_template_free (t);
    g_free (src);
  }
  g_printerr ("cases.jsonl: %zu/%u pass (%zu of them raise)\n", pass, rows->len, raises);
  g_assert_cmpuint (rows->len, ==, 320);
  g_assert_cmpuint (raises, ==, 24);
  g_assert_cmpuint (pass, ==, rows->len);
  g_ptr_array_unref (rows);
  g_free (path);
}

/* llama.cpp's test templates, compared with the jinja2 rendering of each (which is what
 * transformers gives; llama.cpp's own expectations differ where it folds system messages). */
static void
test_llamacpp (void)
{
  const char *dir = test_shared_path (CT_DIR);
  if (!dir)
    return;
  char *p1 = g_build_filename (dir, "llamacpp_cases.json", NULL);
  char *p2 = g_build_filename (dir, "llamacpp_comparison.json", NULL);
  struct json_object *cases = load_json (p1), *cmp = load_json (p2);
  struct json_object *conv = jget (cases, "conversation"), *list = jget (cases, "cases");
  bool agp = json_object_get_boolean (jget (cases, "add_generation_prompt"));
  size_t n = json_object_array_length (cmp), pass = 0;
  for (size_t i = 0; i < n; i++) {
    struct json_object *row = json_object_array_get_idx (cmp, i);
    const char *name = jstr (row, "name");
    /* the llama.cpp case of the same name gives the template text (unless the row renders one
     * of ours) and bos/eos ("" when it leaves them empty) */
    struct json_object *lc = NULL;
    for (size_t j = 0; j < json_object_array_length (list) && !lc; j++)
      if (!strcmp (jstr (json_object_array_get_idx (list, j), "name"), name))
        lc = json_object_array_get_idx (list, j);
    g_assert_nonnull (lc);
    bool ours = g_str_has_prefix (jstr (row, "rendered_template"), "ours:");
    char *src = ours ? template_source (dir, jstr (row, "our_template"))
                     : g_strdup (jstr (lc, "template_str"));
    SutraChatTemplate *t = template_from (src, NULL, 0);
    SutraError err = { 0 };
    for (int k = 0; k < 2; k++) {
      const char *key = k ? "eos_token" : "bos_token";
      const char *v = jstr (lc, key) ? jstr (lc, key) : "";
      struct json_object *s = json_object_new_string (v);
      test_assert_ok (sutra_chat_template_set_var (t, key, json_object_to_json_string (s), &err),
                      &err);
      json_object_put (s);
    }
    struct json_object *msgs = json_object_new_array ();
    for (size_t j = 0; j < json_object_array_length (conv); j++)
      json_object_array_add (msgs, json_object_get (json_object_array_get_idx (conv, j)));
    struct json_object *extra = ours ? NULL : jget (lc, "extra_conversation");
    for (size_t j = 0; extra && j < json_object_array_length (extra); j++)
      json_object_array_add (msgs, json_object_get (json_object_array_get_idx (extra, j)));
    struct json_object *ref = jget (row, "jinja2");
    const char *raises = jstr (ref, "raises");
    char *what = g_strdup_printf ("llama.cpp %s%s", name, ours ? " (ours)" : "");
    bool ok;
    if (raises && strcmp (jstr (ref, "raises_type"), "TemplateError") != 0) {
      /* jinja2 failed with another error (GigaChat: an undefined variable) */
      char *out = NULL;
      SutraStatus st = render_both (t, msgs, agp, &out, &err);
      ok = st == SUTRA_ERR_FORMAT && g_str_has_suffix (err.message, raises);
      if (!ok)
        g_printerr ("%s: expected the error \"%s\", got %s\n", what, raises,
                    st == SUTRA_OK ? out : err.message);
      free (out);
    } else {
      ok = check_case (t, msgs, agp, jstr (ref, "expected"), raises, what);
    }
    pass += ok;
    g_free (what);
    json_object_put (msgs);
    sutra_chat_template_free (t);
    g_free (src);
  }
  g_printerr ("llamacpp_comparison.json: %zu/%zu pass\n", pass, n);
  g_assert_cmpuint (n, ==, 39);
  g_assert_cmpuint (pass, ==, n);
  json_object_put (cases);
  json_object_put (cmp);
  g_free (p1);
  g_free (p2);
}

static void
test_peer_refs (void)
{
  const char *dir = test_shared_path (CT_DIR);
  if (!dir)
    return;
  char *path = g_build_filename (dir, "peer_refs.json", NULL);
  struct json_object *doc = load_json (path), *refs = jget (doc, "refs");
  size_t n = json_object_array_length (refs), pass = 0;
  for (size_t i = 0; i < n; i++) {
    struct json_object *r = json_object_array_get_idx (refs, i);
    char *src = template_source (dir, jstr (r, "template"));
    SutraChatTemplate *t = template_from (src, jget (r, "special_tokens"), 0);
    pass += check_case (t, jget (r, "messages"),
                        json_object_get_boolean (jget (r, "add_generation_prompt")),
                        jstr (r, "expected"), NULL, jstr (r, "peer"));
    sutra_chat_template_free (t);
    g_free (src);
  }
  g_printerr ("peer_refs.json: %zu/%zu pass\n", pass, n);
  g_assert_cmpuint (pass, ==, n);
  g_assert_cmpuint (n, >=, 8);
  json_object_put (doc);
  g_free (path);
}

/* ---- built-in families ------------------------------------------------------------------- */

/* Family -> the reference template it must render like. */
static const struct { const char *family, *reference; } FAMILY_REFS[] = {
  { "chatml", "chatml-openhermes" }, { "smollm2", "smollm2" }, { "qwen2.5", "qwen2.5" },
  { "qwen3", "qwen3" }, { "llama-2", "llama-2-chat" }, { "llama-3", "llama-3-instruct" },
  { "llama-3.1", "llama-3.1-instruct" }, { "llama-3.2", "llama-3.2-instruct" },
  { "mistral", "mistral-v1" }, { "mistral-v3", "mistral-v3" },
  { "mistral-legacy", "mistral-v0.2-legacy" }, { "zephyr", "tinyllama-zephyr" },
  { "phi-3", "phi-3-mini" }, { "phi-3.5", "phi-3.5-mini" }, { "gemma", "gemma-it" },
  { "gemma-3", "gemma-3" }, { "deepseek-coder", "deepseek-coder-instruct" },
  { "deepseek-r1", "deepseek-r1-distill" }, { "openchat", "openchat-3.5" },
  { "vicuna", "vicuna-1.1" },
};

static void
test_families_match_references (void)
{
  const char *dir = test_shared_path (CT_DIR);
  if (!dir)
    return;
  char *path = g_build_filename (dir, "cases.jsonl", NULL);
  GPtrArray *rows = load_jsonl (path);
  size_t pass = 0, total = 0;
  for (guint i = 0; i < rows->len; i++) {
    struct json_object *c = rows->pdata[i];
    for (size_t f = 0; f < G_N_ELEMENTS (FAMILY_REFS); f++) {
      if (strcmp (FAMILY_REFS[f].reference, jstr (c, "template")) != 0)
        continue;
      SutraChatTemplate *t = template_from (sutra_chat_family_source (FAMILY_REFS[f].family),
                                            jget (c, "special_tokens"),
                                            parse_now (jstr (c, "now")));
      char *what = g_strdup_printf ("family %s vs %s/%s", FAMILY_REFS[f].family,
                                    jstr (c, "template"), jstr (c, "case"));
      pass += check_case (t, jget (c, "messages"),
                          json_object_get_boolean (jget (c, "add_generation_prompt")),
                          jstr (c, "expected"), jstr (c, "raises"), what);
      total++;
      g_free (what);
      sutra_chat_template_free (t);
    }
  }
  g_printerr ("built-in families vs cases.jsonl: %zu/%zu pass\n", pass, total);
  g_assert_cmpuint (total, ==, 320);     /* every reference template has a family */
  g_assert_cmpuint (pass, ==, total);
  g_ptr_array_unref (rows);
  g_free (path);
}

/* Each reference template is recognised: by behaviour (exactly) and by its markers. */
static void
test_family_detection (void)
{
  const char *dir = test_shared_path (CT_DIR);
  if (!dir)
    return;
  for (size_t f = 0; f < G_N_ELEMENTS (FAMILY_REFS); f++) {
    char *src = template_source (dir, FAMILY_REFS[f].reference);
    char *meta_path = g_strdup_printf ("%s/templates/%s.json", dir, FAMILY_REFS[f].reference);
    struct json_object *meta = load_json (meta_path);
    SutraChatTemplate *t = template_from (src, jget (meta, "special_tokens"), 0);
    bool exact = false;
    const char *fam = sutra_chat_template_family (t, &exact);
    g_assert_cmpstr (fam, ==, FAMILY_REFS[f].family);
    g_assert_true (exact);
    g_assert_cmpstr (sutra_chat_family_detect (src), ==, FAMILY_REFS[f].family);
    sutra_chat_template_free (t);
    json_object_put (meta);
    g_free (meta_path);
    g_free (src);
  }
  /* something else entirely */
  SutraChatTemplate *t = template_from ("{% for m in messages %}<<{{ m.content }}>>{% endfor %}",
                                        NULL, 0);
  bool exact = true;
  g_assert_null (sutra_chat_template_family (t, &exact));
  g_assert_false (exact);
  sutra_chat_template_free (t);
  /* every family is listed, described and recognises itself */
  size_t n;
  const char *const *names = sutra_chat_family_names (&n);
  g_assert_cmpuint (n, >=, 20);
  g_assert_null (names[n]);
  for (size_t i = 0; i < n; i++) {
    SutraChatTemplate *ft;
    SutraError err = { 0 };
    test_assert_ok (sutra_chat_template_new_family (names[i], &ft, &err), &err);
    g_assert_nonnull (sutra_chat_family_description (names[i]));
    g_assert_cmpstr (sutra_chat_template_family (ft, &exact), ==, names[i]);
    g_assert_cmpstr (sutra_chat_family_detect (sutra_chat_family_source (names[i])), ==,
                     names[i]);
    sutra_chat_template_free (ft);
  }
  SutraError err = { 0 };
  g_assert_cmpint (sutra_chat_template_new_family ("no-such-family", &t, &err), ==,
                   SUTRA_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, "chatml"));
}

/* Alpaca (no reference in the test data): the layout documented in docs/chat-templates.md. */
static void
test_family_alpaca (void)
{
  SutraChatTemplate *t;
  SutraError err = { 0 };
  test_assert_ok (sutra_chat_template_new_family ("alpaca", &t, &err), &err);
  SutraChatMessage m[] = { { "user", "Add 2 and 2." }, { "assistant", "4" }, { "user", "Twice?" } };
  char *out;
  test_assert_ok (sutra_chat_render (t, m, 3, true, &out, &err), &err);
  g_assert_cmpstr (out, ==, "Below is an instruction that describes a task. Write a response that "
                   "appropriately completes the request.\n\n### Instruction:\nAdd 2 and 2.\n\n"
                   "### Response:\n4</s>\n\n### Instruction:\nTwice?\n\n### Response:\n");
  free (out);
  sutra_chat_template_free (t);
}

/* ---- assistant spans -------------------------------------------------------------------- */

/* The end-of-turn text each reference template writes after an assistant message. */
static const struct { const char *tpl, *eot; } EOT[] = {
  { "chatml-openhermes", "<|im_end|>" }, { "deepseek-coder-instruct", "<|EOT|>" },
  { "deepseek-r1-distill", "<｜end▁of▁sentence｜>" }, { "gemma-3", "<end_of_turn>" },
  { "gemma-it", "<end_of_turn>" }, { "llama-2-chat", "</s>" },
  { "llama-3-instruct", "<|eot_id|>" }, { "llama-3.1-instruct", "<|eot_id|>" },
  { "llama-3.2-instruct", "<|eot_id|>" }, { "mistral-v0.2-legacy", "</s>" },
  { "mistral-v1", "</s>" }, { "mistral-v3", "</s>" }, { "openchat-3.5", "<|end_of_turn|>" },
  { "phi-3-mini", "<|end|>" }, { "phi-3.5-mini", "<|end|>" }, { "qwen2.5", "<|im_end|>" },
  { "qwen3", "<|im_end|>" }, { "smollm2", "<|im_end|>" }, { "tinyllama-zephyr", "</s>" },
  { "vicuna-1.1", "</s>" },
};

/* Checks the spans of one conversation: one per assistant message, in order, each holding
 * the (possibly trimmed) content followed by the end-of-turn text, and no user text. */
static void
check_spans (SutraChatTemplate *t, const SutraChatMessage *m, size_t n, const char *eot,
             const char *what)
{
  char *text;
  SutraChatSpan *spans;
  size_t ns;
  SutraError err = { 0 };
  SutraStatus st = sutra_chat_assistant_spans (t, m, n, &text, &spans, &ns, &err);
  if (st != SUTRA_OK)
    g_error ("%s: %s", what, err.message);
  /* the text is the training render */
  char *full;
  test_assert_ok (sutra_chat_render (t, m, n, false, &full, &err), &err);
  g_assert_cmpstr (text, ==, full);
  free (full);
  size_t want = 0;
  for (size_t i = 0; i < n; i++)
    want += strcmp (m[i].role, "assistant") == 0;
  g_assert_cmpuint (ns, ==, want);
  size_t prev_end = 0, k = 0, tl = strlen (text);
  for (size_t i = 0; i < n; i++) {
    if (strcmp (m[i].role, "assistant") != 0)
      continue;
    SutraChatSpan s = spans[k++];
    g_assert_cmpuint (s.message, ==, i);
    g_assert_cmpuint (s.start, >=, prev_end);
    g_assert_cmpuint (s.start, <=, s.end);
    g_assert_cmpuint (s.end, <=, tl);
    char *span = g_strndup (text + s.start, s.end - s.start);
    /* the answer (after any reasoning block, trimmed) is inside */
    const char *answer = strstr (m[i].content, "</think>") ? strstr (m[i].content, "</think>") + 8
                                                           : m[i].content;
    char *core = g_strstrip (g_strdup (answer));
    if (!strstr (span, core))
      g_error ("%s: span %zu \"%s\" misses the content \"%s\"", what, k - 1, span, core);
    /* the end-of-turn text comes after the content, and the span stops right after it
     * (trailing text of the template such as "\n" is excluded) */
    const char *at = strstr (span, core);
    if (!strstr (at + strlen (core), eot))
      g_error ("%s: span \"%s\" lacks the end-of-turn text %s", what, span, eot);
    if (!g_str_has_suffix (span, eot) && !g_str_has_suffix (span, "<|endoftext|>"))
      g_error ("%s: span \"%s\" does not end with %s", what, span, eot);
    /* no user text leaks in */
    for (size_t j = 0; j < n; j++)
      if (strcmp (m[j].role, "assistant") != 0)
        g_assert_null (strstr (span, m[j].content));
    g_free (core);
    g_free (span);
    prev_end = s.end;
  }
  free (spans);
  free (text);
}

static void
run_span_conversations (SutraChatTemplate *t, bool system_ok, const char *eot, const char *name)
{
  const SutraChatMessage with_sys[] = {
    { "system", "SYSTEM-TEXT here." }, { "user", "USER-ONE asks" },
    { "assistant", "ANSWER-ONE is this." }, { "user", "USER-TWO asks" },
    { "assistant", "ANSWER-TWO final." },
  };
  const SutraChatMessage *conv = system_ok ? with_sys : with_sys + 1;
  size_t n = system_ok ? 5 : 4;
  char *what = g_strdup_printf ("%s (multi-turn)", name);
  check_spans (t, conv, n, eot, what);
  g_free (what);
  /* whitespace around the content (gemma trims it, chatml keeps it) and a reasoning block */
  const SutraChatMessage ws[] = {
    { "user", "USER-ONE asks" }, { "assistant", "  padded ANSWER  \n" },
    { "user", "USER-TWO asks" }, { "assistant", "<think>REASONING</think>\n\nFINAL answer" },
  };
  what = g_strdup_printf ("%s (whitespace, think)", name);
  check_spans (t, ws, 4, eot, what);
  g_free (what);
  /* an empty assistant message still gets its end-of-turn span */
  const SutraChatMessage empty[] = { { "user", "USER-ONE asks" }, { "assistant", "" } };
  char *text;
  SutraChatSpan *spans;
  size_t ns;
  SutraError err = { 0 };
  test_assert_ok (sutra_chat_assistant_spans (t, empty, 2, &text, &spans, &ns, &err), &err);
  g_assert_cmpuint (ns, ==, 1);
  if (!g_strstr_len (text + spans[0].start, (gssize) (spans[0].end - spans[0].start), eot))
    g_error ("%s (empty answer): span [%zu, %zu) of \"%s\" lacks %s", name, spans[0].start,
             spans[0].end, text, eot);
  free (spans);
  free (text);
}

static void
test_spans_reference_templates (void)
{
  const char *dir = test_shared_path (CT_DIR);
  if (!dir)
    return;
  for (size_t i = 0; i < G_N_ELEMENTS (EOT); i++) {
    char *src = template_source (dir, EOT[i].tpl);
    char *meta_path = g_strdup_printf ("%s/templates/%s.json", dir, EOT[i].tpl);
    struct json_object *meta = load_json (meta_path);
    SutraChatTemplate *t = template_from (src, jget (meta, "special_tokens"), 0);
    bool system_ok = strcmp (EOT[i].tpl, "gemma-it") != 0 &&
                     strcmp (EOT[i].tpl, "mistral-v0.2-legacy") != 0;
    run_span_conversations (t, system_ok, EOT[i].eot, EOT[i].tpl);
    sutra_chat_template_free (t);
    json_object_put (meta);
    g_free (meta_path);
    g_free (src);
  }
  g_printerr ("assistant spans: %zu reference templates checked\n", G_N_ELEMENTS (EOT));
}

static void
test_spans_families (void)
{
  size_t n;
  const char *const *names = sutra_chat_family_names (&n);
  for (size_t i = 0; i < n; i++) {
    SutraChatTemplate *t;
    SutraError err = { 0 };
    test_assert_ok (sutra_chat_template_new_family (names[i], &t, &err), &err);
    const char *eot = "<|im_end|>";
    if (g_str_has_prefix (names[i], "llama-3")) eot = "<|eot_id|>";
    else if (g_str_has_prefix (names[i], "gemma")) eot = "<end_of_turn>";
    else if (g_str_has_prefix (names[i], "phi")) eot = "<|end|>";
    else if (!strcmp (names[i], "deepseek-coder")) eot = "<|EOT|>";
    else if (!strcmp (names[i], "deepseek-r1")) eot = "<｜end▁of▁sentence｜>";
    else if (!strcmp (names[i], "openchat")) eot = "<|end_of_turn|>";
    else if (!g_str_has_prefix (names[i], "chatml") && !g_str_has_prefix (names[i], "qwen") &&
             strcmp (names[i], "smollm2") != 0) eot = "</s>";
    bool system_ok = strcmp (names[i], "gemma") != 0 && strcmp (names[i], "mistral-legacy") != 0;
    run_span_conversations (t, system_ok, eot, names[i]);
    sutra_chat_template_free (t);
  }
}

/* Exact spans for the plainest case, to pin the method. */
static void
test_spans_exact (void)
{
  SutraChatTemplate *t;
  SutraError err = { 0 };
  test_assert_ok (sutra_chat_template_new_family ("chatml", &t, &err), &err);
  const SutraChatMessage m[] = { { "user", "Hi" }, { "assistant", "Hello" },
                                 { "user", "More" }, { "assistant", "Sure" } };
  char *text;
  SutraChatSpan *s;
  size_t ns;
  test_assert_ok (sutra_chat_assistant_spans (t, m, 4, &text, &s, &ns, &err), &err);
  g_assert_cmpuint (ns, ==, 2);
  g_assert_cmpstr (text, ==, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>"
                   "\n<|im_start|>user\nMore<|im_end|>\n<|im_start|>assistant\nSure<|im_end|>\n");
  char *a = g_strndup (text + s[0].start, s[0].end - s[0].start);
  char *b = g_strndup (text + s[1].start, s[1].end - s[1].start);
  g_assert_cmpstr (a, ==, "Hello<|im_end|>");
  g_assert_cmpstr (b, ==, "Sure<|im_end|>");
  g_free (a);
  g_free (b);
  free (s);
  free (text);
  sutra_chat_template_free (t);
  /* a template that closes the final turn differently from the earlier ones: the earlier span
   * still ends with the marker the template closes other turns with */
  test_assert_ok (sutra_chat_template_new ("{% for m in messages %}<|start|>{{ m.role }}<|message|>"
                                           "{{ m.content }}{{ '<|return|>' if loop.last and m.role "
                                           "== 'assistant' else '<|end|>' }}{% endfor %}"
                                           "{% if add_generation_prompt %}<|start|>assistant"
                                           "{% endif %}", &t, &err), &err);
  test_assert_ok (sutra_chat_assistant_spans (t, m, 4, &text, &s, &ns, &err), &err);
  g_assert_cmpuint (ns, ==, 2);
  a = g_strndup (text + s[0].start, s[0].end - s[0].start);
  b = g_strndup (text + s[1].start, s[1].end - s[1].start);
  g_assert_cmpstr (a, ==, "<|message|>Hello<|end|>");
  g_assert_cmpstr (b, ==, "<|message|>Sure<|return|>");
  g_free (a);
  g_free (b);
  free (s);
  free (text);
  /* a conversation without assistant turns has no spans */
  test_assert_ok (sutra_chat_assistant_spans (t, m, 1, &text, &s, &ns, &err), &err);
  g_assert_cmpuint (ns, ==, 0);
  g_assert_null (s);
  free (text);
  sutra_chat_template_free (t);
}

/* ---- loading from model folders ---------------------------------------------------------- */

static void
write_file (const char *dir, const char *name, const char *text)
{
  char *p = g_build_filename (dir, name, NULL);
  GError *error = NULL;
  g_assert_true (g_file_set_contents (p, text, -1, &error));
  g_free (p);
}

static char *
render_cfg (const char *dir, const char *name, bool agp, SutraStatus *status, SutraError *err)
{
  SutraChatTemplate *t;
  *status = sutra_chat_template_load (dir, name, &t, err);
  if (*status != SUTRA_OK)
    return NULL;
  const SutraChatMessage m[] = { { "user", "Hi" } };
  char *out = NULL;
  *status = sutra_chat_render (t, m, 1, agp, &out, err);
  sutra_chat_template_free (t);
  return out;
}

static GString *captured_log;

static void
capture_log (SutraLogLevel level, const char *message, void *user_data)
{
  if (level >= SUTRA_LOG_WARN)
    g_string_append_printf (captured_log, "%s\n", message);
}

static void
test_load_model_folders (void)
{
  SutraError err = { 0 };
  SutraStatus st;
  char *out;
  /* a string template; AddedToken objects; a null token is not set */
  const char *d1 = test_tmpdir ();
  write_file (d1, "tokenizer_config.json",
              "{\"chat_template\": \"{{ bos_token }}[{{ eos_token }}]{{ unk_token is defined }}"
              "{% for m in messages %}{{ m.content }}{% endfor %}\", "
              "\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<B>\"}, "
              "\"eos_token\": \"<E>\", \"unk_token\": null, \"added_tokens_decoder\": {}}");
  out = render_cfg (d1, NULL, false, &st, &err);
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "<B>[<E>]FalseHi");
  free (out);
  /* the file path works too, and so does a tokenizer.json beside it */
  char *cfg = g_build_filename (d1, "tokenizer_config.json", NULL);
  out = render_cfg (cfg, NULL, false, &st, &err);
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "<B>[<E>]FalseHi");
  free (out);
  g_free (cfg);
  write_file (d1, "tokenizer.json", "{\"model\": {}}");
  char *tj = g_build_filename (d1, "tokenizer.json", NULL);
  out = render_cfg (tj, NULL, false, &st, &err);
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "<B>[<E>]FalseHi");
  free (out);
  g_free (tj);
  /* chat_template.jinja replaces the config's template */
  write_file (d1, "chat_template.jinja", "J:{{ messages[0].content }}\n");
  out = render_cfg (d1, NULL, false, &st, &err);
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "J:Hi");
  free (out);

  /* the named-list form: "default" unless a name is given; families by name */
  const char *d2 = test_tmpdir ();
  write_file (d2, "tokenizer_config.json",
              "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"}, "
              "{\"name\": \"default\", \"template\": \"D{{ eos_token }}\"}], \"eos_token\": \"</s>\"}");
  out = render_cfg (d2, NULL, false, &st, &err);
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "D</s>");
  free (out);
  out = render_cfg (d2, "tool_use", false, &st, &err);
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "T");
  free (out);
  out = render_cfg (d2, "zephyr", true, &st, &err);      /* family, with the model's eos */
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "<|user|>\nHi</s>\n<|assistant|>\n");
  free (out);
  out = render_cfg (d2, "nope", false, &st, &err);
  g_assert_cmpint (st, ==, SUTRA_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, "tool_use"));
  /* named templates only, none of them default: transformers refuses to guess */
  const char *d3 = test_tmpdir ();
  write_file (d3, "tokenizer_config.json",
              "{\"chat_template\": [{\"name\": \"a\", \"template\": \"A\"}, "
              "{\"name\": \"b\", \"template\": \"B\"}]}");
  out = render_cfg (d3, NULL, false, &st, &err);
  g_assert_cmpint (st, ==, SUTRA_ERR_INVALID);
  out = render_cfg (d3, "b", false, &st, &err);
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "B");
  free (out);
  /* additional_chat_templates/NAME.jinja */
  char *add = g_build_filename (d3, "additional_chat_templates", NULL);
  g_mkdir (add, 0755);
  write_file (add, "rag.jinja", "R");
  out = render_cfg (d3, "rag", false, &st, &err);
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "R");
  free (out);
  g_free (add);

  /* no template: a visible fallback to a family guessed from the tokens */
  const char *d4 = test_tmpdir ();
  write_file (d4, "tokenizer_config.json",
              "{\"added_tokens_decoder\": {\"0\": {\"content\": \"[INST]\"}}, "
              "\"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}");
  captured_log = g_string_new (NULL);
  sutra_log_set (capture_log, NULL);
  SutraChatTemplate *t;
  test_assert_ok (sutra_chat_template_load (d4, NULL, &t, &err), &err);
  sutra_log_set (NULL, NULL);
  g_assert_true (sutra_chat_template_is_fallback (t));
  g_assert_nonnull (strstr (captured_log->str, "'mistral'"));
  bool exact;
  g_assert_cmpstr (sutra_chat_template_family (t, &exact), ==, "mistral");
  sutra_chat_template_free (t);
  const char *d5 = test_tmpdir ();
  write_file (d5, "tokenizer_config.json", "{\"eos_token\": \"<|endoftext|>\"}");
  g_string_truncate (captured_log, 0);
  sutra_log_set (capture_log, NULL);
  test_assert_ok (sutra_chat_template_load (d5, NULL, &t, &err), &err);
  sutra_log_set (NULL, NULL);
  g_assert_nonnull (strstr (captured_log->str, "'chatml'"));
  g_string_free (captured_log, TRUE);
  sutra_chat_template_free (t);

  /* legacy configs take special_tokens_map.json; modern ones (added_tokens_decoder) do not;
   * keys a config leaves out get the tokenizer class's defaults */
  const char *d6 = test_tmpdir ();
  write_file (d6, "tokenizer_config.json",
              "{\"chat_template\": \"{{ bos_token }}|{{ eos_token }}|{{ unk_token }}\", "
              "\"tokenizer_class\": \"LlamaTokenizerFast\", \"eos_token\": \"<old>\"}");
  write_file (d6, "special_tokens_map.json", "{\"eos_token\": {\"content\": \"<new>\"}}");
  out = render_cfg (d6, NULL, false, &st, &err);
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "<s>|<new>|<unk>");
  free (out);
  write_file (d6, "tokenizer_config.json",
              "{\"chat_template\": \"{{ bos_token }}|{{ eos_token }}\", \"eos_token\": \"<old>\", "
              "\"added_tokens_decoder\": {}}");
  out = render_cfg (d6, NULL, false, &st, &err);
  test_assert_ok (st, &err);
  g_assert_cmpstr (out, ==, "|<old>");
  free (out);

  /* malformed inputs are clear errors */
  const char *d7 = test_tmpdir ();
  write_file (d7, "tokenizer_config.json", "{\"chat_template\": ");
  out = render_cfg (d7, NULL, false, &st, &err);
  g_assert_cmpint (st, ==, SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "tokenizer_config.json"));
  write_file (d7, "tokenizer_config.json", "{\"chat_template\": 42}");
  out = render_cfg (d7, NULL, false, &st, &err);
  g_assert_cmpint (st, ==, SUTRA_ERR_FORMAT);
  write_file (d7, "tokenizer_config.json", "{\"chat_template\": [{\"name\": 1}]}");
  out = render_cfg (d7, NULL, false, &st, &err);
  g_assert_cmpint (st, ==, SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "chat_template[0]"));
  write_file (d7, "tokenizer_config.json", "{\"chat_template\": \"{% for %}\"}");
  out = render_cfg (d7, NULL, false, &st, &err);
  g_assert_cmpint (st, ==, SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "template line 1"));
  out = render_cfg ("/nonexistent/model", NULL, false, &st, &err);
  g_assert_cmpint (st, ==, SUTRA_ERR_NOT_FOUND);
  const char *d8 = test_tmpdir ();
  out = render_cfg (d8, NULL, false, &st, &err);          /* an empty folder */
  g_assert_cmpint (st, ==, SUTRA_ERR_NOT_FOUND);
}

/* ---- API details ------------------------------------------------------------------------- */

static void
test_clock_and_vars (void)
{
  SutraChatTemplate *t = template_from ("{{ strftime_now('%Y-%m-%d') }}{% if enable_thinking is "
                                        "defined %} think={{ enable_thinking }}{% endif %}", NULL,
                                        parse_now ("2025-01-15T12:00:00"));
  char *out;
  SutraError err = { 0 };
  test_assert_ok (sutra_chat_render (t, NULL, 0, false, &out, &err), &err);
  g_assert_cmpstr (out, ==, "2025-01-15");
  free (out);
  g_setenv ("SOURCE_DATE_EPOCH", "0", TRUE);
  test_assert_ok (sutra_chat_template_set_var (t, "enable_thinking", "false", &err), &err);
  test_assert_ok (sutra_chat_render (t, NULL, 0, false, &out, &err), &err);
  g_unsetenv ("SOURCE_DATE_EPOCH");
  g_assert_cmpstr (out, ==, "1970-01-01 think=False");
  free (out);
  g_assert_cmpint (sutra_chat_template_set_var (t, "messages", "[]", &err), ==, SUTRA_ERR_INVALID);
  g_assert_cmpint (sutra_chat_template_set_var (t, "x", "{nope", &err), ==, SUTRA_ERR_INVALID);
  g_assert_cmpint (sutra_chat_template_set_token (t, "foo_token", "x", &err), ==,
                   SUTRA_ERR_INVALID);
  test_assert_ok (sutra_chat_template_set_token (t, "eos_token", "</s>", &err), &err);
  g_assert_cmpstr (sutra_chat_template_token (t, "eos_token"), ==, "</s>");
  test_assert_ok (sutra_chat_template_set_token (t, "eos_token", "", &err), &err);
  g_assert_null (sutra_chat_template_token (t, "eos_token"));
  /* bad messages */
  const SutraChatMessage bad[] = { { NULL, "x" } };
  g_assert_cmpint (sutra_chat_render (t, bad, 1, false, &out, &err), ==, SUTRA_ERR_INVALID);
  g_assert_cmpint (sutra_chat_render_json (t, "{\"role\": 1}", false, &out, &err), ==,
                   SUTRA_ERR_FORMAT);
  g_assert_cmpint (sutra_chat_render_json (t, "[{\"content\": \"x\"}]", false, &out, &err), ==,
                   SUTRA_ERR_FORMAT);
  g_assert_cmpint (sutra_chat_render_json (t, "[1,", false, &out, &err), ==, SUTRA_ERR_FORMAT);
  sutra_chat_template_free (t);
  /* a message with null content renders as None, as in Python */
  t = template_from ("{{ messages[0].content }}", NULL, 0);
  const SutraChatMessage nul[] = { { "assistant", NULL } };
  test_assert_ok (sutra_chat_render (t, nul, 1, false, &out, &err), &err);
  g_assert_cmpstr (out, ==, "None");
  free (out);
  sutra_chat_template_free (t);
}

/* ---- the CLI ------------------------------------------------------------------------------ */

static void
test_cli (void)
{
  const char *dir = test_shared_path (CT_DIR);
  if (!dir)
    return;
  /* a model folder holding smollm2's template and tokens */
  const char *model = test_tmpdir ();
  char *src = template_source (dir, "llama-3.2-instruct");
  struct json_object *cfg = json_object_new_object ();
  json_object_object_add (cfg, "chat_template", json_object_new_string (src));
  json_object_object_add (cfg, "bos_token", json_object_new_string ("<|begin_of_text|>"));
  json_object_object_add (cfg, "eos_token", json_object_new_string ("<|eot_id|>"));
  json_object_object_add (cfg, "added_tokens_decoder", json_object_new_object ());
  write_file (model, "tokenizer_config.json", json_object_to_json_string (cfg));
  json_object_put (cfg);
  g_free (src);
  const char *msgs_dir = test_tmpdir ();
  write_file (msgs_dir, "m.json", "[{\"role\": \"user\", \"content\": \"Hi \\u00e9\"}]");
  char *mpath = g_build_filename (msgs_dir, "m.json", NULL);

  /* SOURCE_DATE_EPOCH is handed to the child through the environment */
  g_setenv ("SOURCE_DATE_EPOCH", "1736942400", TRUE);
  char *out = NULL, *errs = NULL;
  const char *argv1[] = { "chat-template", model, "--messages", mpath, "--add-generation-prompt",
                          NULL };
  g_assert_cmpint (test_run_cli (&out, &errs, argv1), ==, 0);
  g_assert_cmpstr (out, ==, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                   "Cutting Knowledge Date: December 2023\nToday Date: 15 Jan 2025\n\n<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\nHi \xc3\xa9<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n");
  g_free (out);
  g_free (errs);
  g_unsetenv ("SOURCE_DATE_EPOCH");

  /* the CLI prints exactly what the library renders (no newline added) */
  SutraChatTemplate *t;
  SutraError err = { 0 };
  test_assert_ok (sutra_chat_template_load (model, "gemma", &t, &err), &err);
  char *lib;
  test_assert_ok (sutra_chat_render_json (t, "[{\"role\": \"user\", \"content\": \"Hi \\u00e9\"}]",
                                          false, &lib, &err), &err);
  sutra_chat_template_free (t);
  const char *argv2[] = { "chat-template", model, "--messages", mpath, "--template", "gemma", NULL };
  g_assert_cmpint (test_run_cli (&out, &errs, argv2), ==, 0);
  g_assert_cmpstr (out, ==, lib);
  g_assert_false (g_str_has_suffix (out, "\n\n"));
  free (lib);
  g_free (out);
  g_free (errs);

  /* raise_exception -> exit 1, one "sutra: error:" line */
  write_file (msgs_dir, "sys.json", "[{\"role\": \"system\", \"content\": \"S\"}, "
                                    "{\"role\": \"user\", \"content\": \"U\"}]");
  char *spath = g_build_filename (msgs_dir, "sys.json", NULL);
  const char *argv3[] = { "chat-template", model, "--messages", spath, "--template", "gemma", NULL };
  g_assert_cmpint (test_run_cli (&out, &errs, argv3), ==, 1);
  g_assert_cmpstr (out, ==, "");
  g_assert_true (g_str_has_prefix (errs, "sutra: error: "));
  g_assert_nonnull (strstr (errs, "System role not supported"));
  g_free (out);
  g_free (errs);

  /* bad messages file -> 1; usage errors -> 2 */
  write_file (msgs_dir, "bad.json", "{\"role\": \"user\"}");
  char *bpath = g_build_filename (msgs_dir, "bad.json", NULL);
  const char *argv4[] = { "chat-template", model, "--messages", bpath, NULL };
  g_assert_cmpint (test_run_cli (&out, &errs, argv4), ==, 1);
  g_assert_nonnull (strstr (errs, "bad.json"));
  g_free (out);
  g_free (errs);
  const char *argv5[] = { "chat-template", model, NULL };
  g_assert_cmpint (test_run_cli (&out, &errs, argv5), ==, 2);
  g_free (out);
  g_free (errs);
  const char *argv6[] = { "chat-template", model, "--messages", mpath, "--bogus", NULL };
  g_assert_cmpint (test_run_cli (&out, &errs, argv6), ==, 2);
  g_free (out);
  g_free (errs);

  /* --list-templates */
  const char *argv7[] = { "chat-template", "--list-templates", NULL };
  g_assert_cmpint (test_run_cli (&out, &errs, argv7), ==, 0);
  g_assert_true (g_str_has_prefix (out, "chatml "));
  g_assert_nonnull (strstr (out, "\nllama-3.2 "));
  g_assert_nonnull (strstr (out, "\nalpaca "));
  g_free (out);
  g_free (errs);
  g_free (mpath);
  g_free (spath);
  g_free (bpath);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_unsetenv ("SOURCE_DATE_EPOCH");        /* tests inject their clock */
  g_test_add_func ("/engine/chat/cases-jsonl", test_cases_jsonl);
  g_test_add_func ("/engine/chat/llamacpp", test_llamacpp);
  g_test_add_func ("/engine/chat/peer-refs", test_peer_refs);
  g_test_add_func ("/engine/chat/families-match-references", test_families_match_references);
  g_test_add_func ("/engine/chat/family-detection", test_family_detection);
  g_test_add_func ("/engine/chat/family-alpaca", test_family_alpaca);
  g_test_add_func ("/engine/chat/spans-exact", test_spans_exact);
  g_test_add_func ("/engine/chat/spans-reference-templates", test_spans_reference_templates);
  g_test_add_func ("/engine/chat/spans-families", test_spans_families);
  g_test_add_func ("/engine/chat/load-model-folders", test_load_model_folders);
  g_test_add_func ("/engine/chat/clock-and-vars", test_clock_and_vars);
  g_test_add_func ("/engine/chat/cli", test_cli);
  return g_test_run ();
}
