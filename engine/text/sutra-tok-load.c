/* sutra-tok-load.c: tokenizer.json (serialization "1.0" of HF tokenizers) and
 * tokenizer_config.json into the structures of sutra-tokenizer-private.h.
 *
 * Follows the serde deserializers in tokenizers/src: untyped "model" objects are inferred
 * (merges -> BPE, a list vocab -> Unigram, else WordPiece); BPE merges are "a b" strings
 * (lines starting "#version" skipped) or ["a", "b"] pairs; added tokens get their ids the
 * way AddedVocabulary::add_tokens assigns them (the model's id when the content is in
 * the vocab, else the next id after the model's vocab size), normalized ones are matched
 * by their normalized form; Metaspace's legacy add_prefix_space maps to prepend_scheme.
 * Anything we do not implement is a load error naming it, never a silent difference. */
#include "sutra-tokenizer-private.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  SutraTokenizer *tok;
  SutraError *err;
} Ld;

static const char GPT2_PATTERN[] =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static SutraStatus
bad (Ld *l, SutraStatus st, const char *path, const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));

static SutraStatus
bad (Ld *l, SutraStatus st, const char *path, const char *fmt, ...)
{
  char msg[SUTRA_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  if (path && *path)
    return sutra_error_set (l->err, st, "%s: %s: %s", l->tok->name, path, msg);
  return sutra_error_set (l->err, st, "%s: %s", l->tok->name, msg);
}

/* ---------------------------------------------------------------------------------------
 * JSON accessors. Each returns SUTRA_OK or an error naming path.key. */

static json_object *
jget (json_object *o, const char *key)
{
  json_object *v = NULL;
  if (!o || !json_object_is_type (o, json_type_object) || !json_object_object_get_ex (o, key, &v))
    return NULL;
  return v;
}

static bool
jnull (json_object *v)
{
  return !v || json_object_is_type (v, json_type_null);
}

static const char *
jtype (json_object *v)
{
  return v ? json_type_to_name (json_object_get_type (v)) : "missing";
}

static SutraStatus
get_bool (Ld *l, json_object *o, const char *key, bool def, const char *path, bool *out)
{
  json_object *v = jget (o, key);
  if (jnull (v)) {
    *out = def;
    return SUTRA_OK;
  }
  if (!json_object_is_type (v, json_type_boolean))
    return bad (l, SUTRA_ERR_FORMAT, path, "'%s' must be a boolean, not %s", key, jtype (v));
  *out = json_object_get_boolean (v);
  return SUTRA_OK;
}

static SutraStatus
get_int (Ld *l, json_object *o, const char *key, int64_t def, int64_t lo, int64_t hi,
         const char *path, int64_t *out)
{
  json_object *v = jget (o, key);
  if (jnull (v)) {
    *out = def;
    return SUTRA_OK;
  }
  if (!json_object_is_type (v, json_type_int))
    return bad (l, SUTRA_ERR_FORMAT, path, "'%s' must be an integer, not %s", key, jtype (v));
  int64_t x = json_object_get_int64 (v);
  if (x < lo || x > hi)
    return bad (l, SUTRA_ERR_FORMAT, path, "'%s' = %lld is out of range [%lld, %lld]", key,
                (long long) x, (long long) lo, (long long) hi);
  *out = x;
  return SUTRA_OK;
}

/* A JSON string value as (pointer, length), checked to be valid UTF-8. */
static SutraStatus
str_of (Ld *l, json_object *v, const char *path, const char **s, size_t *n)
{
  if (!v || !json_object_is_type (v, json_type_string))
    return bad (l, SUTRA_ERR_FORMAT, path, "expected a string, not %s", jtype (v));
  *s = json_object_get_string (v);
  *n = (size_t) json_object_get_string_len (v);
  if (sutra_utf8_valid_prefix (*s, *n) != *n)
    return bad (l, SUTRA_ERR_FORMAT, path, "string is not valid UTF-8");
  return SUTRA_OK;
}

/* Optional string member: *s = NULL when absent or null. */
static SutraStatus
get_str (Ld *l, json_object *o, const char *key, const char *path, const char **s, size_t *n)
{
  json_object *v = jget (o, key);
  *s = NULL;
  *n = 0;
  if (jnull (v))
    return SUTRA_OK;
  char p[256];
  snprintf (p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
  return str_of (l, v, p, s, n);
}

/* A member that must hold exactly one char (Metaspace replacement, Strip content). */
static SutraStatus
get_char (Ld *l, json_object *o, const char *key, uint32_t def, const char *path, uint32_t *cp)
{
  const char *s;
  size_t n;
  SutraStatus st = get_str (l, o, key, path, &s, &n);
  if (st)
    return st;
  if (!s) {
    *cp = def;
    return SUTRA_OK;
  }
  size_t adv = 0;
  if (n == 0 || (*cp = sutra_utf8_decode (s, &adv), adv != n))
    return bad (l, SUTRA_ERR_FORMAT, path, "'%s' must be a single character", key);
  return SUTRA_OK;
}

static char *
dup_opt (const char *s, size_t n)
{
  return s ? sutra_xstrndup (s, n) : NULL;
}

/* {"String": s} or {"Regex": r} -> a compiled pattern slot */
static SutraStatus
get_pattern (Ld *l, json_object *o, const char *path, SutraTokPattern *pat)
{
  json_object *p = jget (o, "pattern");
  char where[256];
  snprintf (where, sizeof where, "%s.pattern", path);
  if (!p || !json_object_is_type (p, json_type_object))
    return bad (l, SUTRA_ERR_FORMAT, where, "expected {\"String\": ...} or {\"Regex\": ...}");
  const char *s;
  size_t n;
  json_object *v;
  bool regex;
  if ((v = jget (p, "String")))
    regex = false;
  else if ((v = jget (p, "Regex")))
    regex = true;
  else
    return bad (l, SUTRA_ERR_FORMAT, where, "expected {\"String\": ...} or {\"Regex\": ...}");
  SutraStatus st = str_of (l, v, where, &s, &n);
  if (st)
    return st;
  int slot = sutra_tok_regex_add (l->tok, s, n, !regex, where, l->err);
  if (slot < 0)
    return l->err ? l->err->code : SUTRA_ERR_UNSUPPORTED;
  pat->source = sutra_xstrndup (s, n);
  pat->is_regex = regex;
  pat->slot = slot;
  return SUTRA_OK;
}

static SutraStatus
get_type (Ld *l, json_object *o, const char *path, const char **type)
{
  if (!o || !json_object_is_type (o, json_type_object))
    return bad (l, SUTRA_ERR_FORMAT, path, "expected an object, not %s", jtype (o));
  json_object *t = jget (o, "type");
  if (!t || !json_object_is_type (t, json_type_string))
    return bad (l, SUTRA_ERR_FORMAT, path, "missing \"type\"");
  *type = json_object_get_string (t);
  return SUTRA_OK;
}

static SutraStatus
get_array (Ld *l, json_object *o, const char *key, const char *path, json_object **arr)
{
  json_object *a = jget (o, key);
  if (!a || !json_object_is_type (a, json_type_array))
    return bad (l, SUTRA_ERR_FORMAT, path, "'%s' must be an array, not %s", key, jtype (a));
  *arr = a;
  return SUTRA_OK;
}

static SutraStatus
get_behavior (Ld *l, json_object *o, const char *path, SutraTokBehavior def, SutraTokBehavior *b)
{
  const char *s;
  size_t n;
  SutraStatus st = get_str (l, o, "behavior", path, &s, &n);
  if (st)
    return st;
  if (!s) {
    *b = def;
    return SUTRA_OK;
  }
  static const struct { const char *name; SutraTokBehavior b; } names[] = {
    { "Removed", SUTRA_SPLIT_REMOVED }, { "Isolated", SUTRA_SPLIT_ISOLATED },
    { "MergedWithPrevious", SUTRA_SPLIT_MERGED_PREV }, { "MergedWithNext", SUTRA_SPLIT_MERGED_NEXT },
    { "Contiguous", SUTRA_SPLIT_CONTIGUOUS },
  };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp (s, names[i].name) == 0) {
      *b = names[i].b;
      return SUTRA_OK;
    }
  return bad (l, SUTRA_ERR_UNSUPPORTED, path, "behavior '%s' is not supported", s);
}

/* ---------------------------------------------------------------------------------------
 * base64 (RFC 4648 standard alphabet, padded) */

static int
b64v (char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

static uint8_t *
b64_decode (const char *s, size_t n, size_t *out_len)
{
  if (n % 4)
    return NULL;
  uint8_t *out = sutra_xmalloc (n / 4 * 3 + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      if (s[i + k] == '=' && i + 4 == n && k >= 2) {
        v[k] = 0;
        pad++;
        continue;
      }
      if (pad || (v[k] = b64v (s[i + k])) < 0) {
        free (out);
        return NULL;
      }
    }
    uint32_t w = ((uint32_t) v[0] << 18) | ((uint32_t) v[1] << 12) | ((uint32_t) v[2] << 6)
                 | (uint32_t) v[3];
    out[o++] = (uint8_t) (w >> 16);
    if (pad < 2)
      out[o++] = (uint8_t) (w >> 8);
    if (pad < 1)
      out[o++] = (uint8_t) w;
  }
  *out_len = o;
  return out;
}

/* ---------------------------------------------------------------------------------------
 * Normalizers */

static SutraTokNorm *
push_norm (SutraTokenizer *tok, SutraTokNormKind kind)
{
  tok->norms = sutra_xrealloc (tok->norms, (tok->n_norms + 1) * sizeof *tok->norms);
  SutraTokNorm *nm = &tok->norms[tok->n_norms++];
  memset (nm, 0, sizeof *nm);
  nm->kind = kind;
  return nm;
}

static SutraStatus
load_normalizer (Ld *l, json_object *o, const char *path, int depth)
{
  const char *type;
  SutraStatus st = get_type (l, o, path, &type);
  if (st)
    return st;
  if (depth > 16)
    return bad (l, SUTRA_ERR_FORMAT, path, "too deeply nested");
  static const struct { const char *name; SutraTokNormKind k; } simple[] = {
    { "NFC", SUTRA_NORM_NFC }, { "NFD", SUTRA_NORM_NFD }, { "NFKC", SUTRA_NORM_NFKC },
    { "NFKD", SUTRA_NORM_NFKD }, { "Lowercase", SUTRA_NORM_LOWERCASE },
    { "StripAccents", SUTRA_NORM_STRIP_ACCENTS }, { "Nmt", SUTRA_NORM_NMT },
    { "ByteLevel", SUTRA_NORM_BYTELEVEL },
  };
  for (size_t i = 0; i < sizeof simple / sizeof *simple; i++)
    if (strcmp (type, simple[i].name) == 0) {
      push_norm (l->tok, simple[i].k);
      return SUTRA_OK;
    }
  if (strcmp (type, "Sequence") == 0) {
    json_object *arr;
    if ((st = get_array (l, o, "normalizers", path, &arr)))
      return st;
    for (size_t i = 0; i < json_object_array_length (arr); i++) {
      char p[256];
      snprintf (p, sizeof p, "%s.normalizers[%zu]", path, i);
      if ((st = load_normalizer (l, json_object_array_get_idx (arr, i), p, depth + 1)))
        return st;
    }
    return SUTRA_OK;
  }
  if (strcmp (type, "BertNormalizer") == 0) {
    bool clean, chinese, lower, strip;
    if ((st = get_bool (l, o, "clean_text", true, path, &clean))
        || (st = get_bool (l, o, "handle_chinese_chars", true, path, &chinese))
        || (st = get_bool (l, o, "lowercase", true, path, &lower)))
      return st;
    /* strip_accents: null follows lowercase */
    if ((st = get_bool (l, o, "strip_accents", lower, path, &strip)))
      return st;
    SutraTokNorm *nm = push_norm (l->tok, SUTRA_NORM_BERT);
    nm->clean_text = clean;
    nm->handle_chinese = chinese;
    nm->lowercase = lower;
    nm->strip_accents = strip;
    return SUTRA_OK;
  }
  if (strcmp (type, "Strip") == 0) {
    bool left, right;
    if ((st = get_bool (l, o, "strip_left", true, path, &left))
        || (st = get_bool (l, o, "strip_right", true, path, &right)))
      return st;
    SutraTokNorm *nm = push_norm (l->tok, SUTRA_NORM_STRIP);
    nm->strip_left = left;
    nm->strip_right = right;
    return SUTRA_OK;
  }
  if (strcmp (type, "Prepend") == 0) {
    const char *s;
    size_t n;
    if ((st = get_str (l, o, "prepend", path, &s, &n)))
      return st;
    if (!s)
      return bad (l, SUTRA_ERR_FORMAT, path, "Prepend needs 'prepend'");
    SutraTokNorm *nm = push_norm (l->tok, SUTRA_NORM_PREPEND);
    nm->str = sutra_xstrndup (s, n);
    nm->str_len = n;
    return SUTRA_OK;
  }
  if (strcmp (type, "Replace") == 0) {
    const char *s;
    size_t n;
    if ((st = get_str (l, o, "content", path, &s, &n)))
      return st;
    if (!s)
      return bad (l, SUTRA_ERR_FORMAT, path, "Replace needs 'content'");
    SutraTokPattern pat;
    if ((st = get_pattern (l, o, path, &pat)))
      return st;
    SutraTokNorm *nm = push_norm (l->tok, SUTRA_NORM_REPLACE);
    nm->str = sutra_xstrndup (s, n);
    nm->str_len = n;
    nm->pat = pat;
    return SUTRA_OK;
  }
  if (strcmp (type, "Precompiled") == 0) {
    const char *s;
    size_t n;
    if ((st = get_str (l, o, "precompiled_charsmap", path, &s, &n)))
      return st;
    if (!s)
      return bad (l, SUTRA_ERR_UNSUPPORTED, path,
                  "Precompiled without a precompiled_charsmap is not supported");
    size_t bl;
    uint8_t *bytes = b64_decode (s, n, &bl);
    if (!bytes)
      return bad (l, SUTRA_ERR_FORMAT, path, "precompiled_charsmap is not valid base64");
    SutraTokCharsmap cm;
    st = sutra_tok_charsmap_parse (&cm, bytes, bl);
    free (bytes);
    if (st)
      return bad (l, SUTRA_ERR_FORMAT, path, "cannot parse precompiled_charsmap");
    SutraTokNorm *nm = push_norm (l->tok, SUTRA_NORM_PRECOMPILED);
    nm->cmap = cm;
    return SUTRA_OK;
  }
  return bad (l, SUTRA_ERR_UNSUPPORTED, NULL, "%s.type '%s' is not supported", path, type);
}

/* ---------------------------------------------------------------------------------------
 * Pre-tokenizers */

static SutraTokStep *
push_step (SutraTokenizer *tok, SutraTokStepKind kind)
{
  tok->steps = sutra_xrealloc (tok->steps, (tok->n_steps + 1) * sizeof *tok->steps);
  SutraTokStep *s = &tok->steps[tok->n_steps++];
  memset (s, 0, sizeof *s);
  s->kind = kind;
  s->pat.slot = -1;
  return s;
}

static void
push_split (SutraTokenizer *tok, SutraTokSrc src, SutraTokBehavior b, bool invert)
{
  SutraTokStep *s = push_step (tok, SUTRA_STEP_SPLIT);
  s->src = src;
  s->behavior = b;
  s->invert = invert;
}

static SutraStatus
get_prepend_scheme (Ld *l, json_object *o, const char *path, SutraTokPrepend *out)
{
  const char *s;
  size_t n;
  SutraStatus st = get_str (l, o, "prepend_scheme", path, &s, &n);
  if (st)
    return st;
  SutraTokPrepend ps = SUTRA_PREPEND_ALWAYS;
  if (s) {
    if (strcmp (s, "always") == 0)
      ps = SUTRA_PREPEND_ALWAYS;
    else if (strcmp (s, "first") == 0)
      ps = SUTRA_PREPEND_FIRST;
    else if (strcmp (s, "never") == 0)
      ps = SUTRA_PREPEND_NEVER;
    else
      return bad (l, SUTRA_ERR_UNSUPPORTED, path, "prepend_scheme '%s' is not supported", s);
  }
  json_object *aps = jget (o, "add_prefix_space");
  if (!jnull (aps)) {
    if (!json_object_is_type (aps, json_type_boolean))
      return bad (l, SUTRA_ERR_FORMAT, path, "'add_prefix_space' must be a boolean");
    if (!json_object_get_boolean (aps)) {
      if (ps != SUTRA_PREPEND_NEVER && s)
        return bad (l, SUTRA_ERR_FORMAT, path,
                    "add_prefix_space does not match declared prepend_scheme");
      ps = SUTRA_PREPEND_NEVER;
    }
  }
  *out = ps;
  return SUTRA_OK;
}

static SutraStatus
load_pretok (Ld *l, json_object *o, const char *path, int depth)
{
  const char *type;
  SutraStatus st = get_type (l, o, path, &type);
  if (st)
    return st;
  if (depth > 16)
    return bad (l, SUTRA_ERR_FORMAT, path, "too deeply nested");
  SutraTokenizer *tok = l->tok;
  if (strcmp (type, "Sequence") == 0) {
    json_object *arr;
    if ((st = get_array (l, o, "pretokenizers", path, &arr)))
      return st;
    for (size_t i = 0; i < json_object_array_length (arr); i++) {
      char p[256];
      snprintf (p, sizeof p, "%s.pretokenizers[%zu]", path, i);
      if ((st = load_pretok (l, json_object_array_get_idx (arr, i), p, depth + 1)))
        return st;
    }
    return SUTRA_OK;
  }
  if (strcmp (type, "ByteLevel") == 0) {
    bool aps, use_regex;
    if ((st = get_bool (l, o, "add_prefix_space", true, path, &aps))
        || (st = get_bool (l, o, "use_regex", true, path, &use_regex)))
      return st;
    if (aps)
      push_step (tok, SUTRA_STEP_PREFIX_SPACE);
    if (use_regex) {
      char where[256];
      snprintf (where, sizeof where, "%s (ByteLevel)", path);
      int slot = sutra_tok_regex_add (tok, GPT2_PATTERN, strlen (GPT2_PATTERN), false, where,
                                      l->err);
      if (slot < 0)
        return l->err ? l->err->code : SUTRA_ERR_UNSUPPORTED;
      SutraTokStep *s = push_step (tok, SUTRA_STEP_SPLIT);
      s->src = SUTRA_SRC_REGEX;
      s->pat.slot = slot;
      s->pat.is_regex = true;
      s->behavior = SUTRA_SPLIT_ISOLATED;
    }
    push_step (tok, SUTRA_STEP_BYTE_MAP);
    tok->byte_level = true;
    return SUTRA_OK;
  }
  if (strcmp (type, "Split") == 0) {
    SutraTokBehavior b;
    bool invert;
    SutraTokPattern pat;
    if ((st = get_behavior (l, o, path, SUTRA_SPLIT_ISOLATED, &b))
        || (st = get_bool (l, o, "invert", false, path, &invert))
        || (st = get_pattern (l, o, path, &pat)))
      return st;
    SutraTokStep *s = push_step (tok, SUTRA_STEP_SPLIT);
    s->src = SUTRA_SRC_REGEX;
    s->pat = pat;
    s->behavior = b;
    s->invert = invert;
    return SUTRA_OK;
  }
  if (strcmp (type, "Metaspace") == 0) {
    uint32_t rep;
    SutraTokPrepend ps;
    bool split;
    if ((st = get_char (l, o, "replacement", 0x2581, path, &rep))
        || (st = get_prepend_scheme (l, o, path, &ps))
        || (st = get_bool (l, o, "split", true, path, &split)))
      return st;
    SutraTokStep *s = push_step (tok, SUTRA_STEP_METASPACE);
    s->cp = rep;
    s->prepend = ps;
    if (split) {
      s = push_step (tok, SUTRA_STEP_SPLIT);
      s->src = SUTRA_SRC_CHAR;
      s->cp = rep;
      s->behavior = SUTRA_SPLIT_MERGED_NEXT;
    }
    return SUTRA_OK;
  }
  if (strcmp (type, "Whitespace") == 0) {
    push_split (tok, SUTRA_SRC_WORDS, SUTRA_SPLIT_REMOVED, true);
    return SUTRA_OK;
  }
  if (strcmp (type, "WhitespaceSplit") == 0) {
    push_split (tok, SUTRA_SRC_WS, SUTRA_SPLIT_REMOVED, false);
    return SUTRA_OK;
  }
  if (strcmp (type, "BertPreTokenizer") == 0) {
    push_split (tok, SUTRA_SRC_WS, SUTRA_SPLIT_REMOVED, false);
    push_split (tok, SUTRA_SRC_PUNCT, SUTRA_SPLIT_ISOLATED, false);
    return SUTRA_OK;
  }
  if (strcmp (type, "Digits") == 0) {
    bool indiv;
    if ((st = get_bool (l, o, "individual_digits", false, path, &indiv)))
      return st;
    push_split (tok, SUTRA_SRC_NUMERIC, indiv ? SUTRA_SPLIT_ISOLATED : SUTRA_SPLIT_CONTIGUOUS,
                false);
    return SUTRA_OK;
  }
  if (strcmp (type, "Punctuation") == 0) {
    SutraTokBehavior b;
    if ((st = get_behavior (l, o, path, SUTRA_SPLIT_ISOLATED, &b)))
      return st;
    push_split (tok, SUTRA_SRC_PUNCT, b, false);
    return SUTRA_OK;
  }
  if (strcmp (type, "CharDelimiterSplit") == 0 || strcmp (type, "Delimiter") == 0) {
    uint32_t d;
    if ((st = get_char (l, o, "delimiter", 0xFFFFFFFF, path, &d)))
      return st;
    if (d == 0xFFFFFFFF)
      return bad (l, SUTRA_ERR_FORMAT, path, "CharDelimiterSplit needs 'delimiter'");
    SutraTokStep *s = push_step (tok, SUTRA_STEP_SPLIT);
    s->src = SUTRA_SRC_CHAR;
    s->cp = d;
    s->behavior = SUTRA_SPLIT_REMOVED;
    return SUTRA_OK;
  }
  if (strcmp (type, "FixedLength") == 0) {
    int64_t len;
    if ((st = get_int (l, o, "length", 5, 1, 1 << 20, path, &len)))
      return st;
    SutraTokStep *s = push_step (tok, SUTRA_STEP_FIXED);
    s->length = (size_t) len;
    return SUTRA_OK;
  }
  return bad (l, SUTRA_ERR_UNSUPPORTED, NULL, "%s.type '%s' is not supported", path, type);
}

/* ---------------------------------------------------------------------------------------
 * Model */

static SutraStatus
vocab_set (Ld *l, SutraTokModel *m, const char *s, size_t n, int64_t id, const char *path)
{
  if (id < 0 || id >= SUTRA_TOK_MAX_ID)
    return bad (l, SUTRA_ERR_FORMAT, path, "token '%.*s' has id %lld (allowed 0..%d)",
                (int) (n > 60 ? 60 : n), s, (long long) id, SUTRA_TOK_MAX_ID - 1);
  if ((size_t) id >= m->n_ids) {
    size_t nn = (size_t) id + 1;
    size_t cap = m->n_ids ? m->n_ids : 1024;
    while (cap < nn)
      cap *= 2;
    m->vocab_r = sutra_xrealloc (m->vocab_r, cap * sizeof *m->vocab_r);
    m->vocab_r_len = sutra_xrealloc (m->vocab_r_len, cap * sizeof *m->vocab_r_len);
    for (size_t i = m->n_ids; i < cap; i++) {
      m->vocab_r[i] = NULL;
      m->vocab_r_len[i] = 0;
    }
    m->n_ids = nn;
  }
  sutra_strmap_put (&m->vocab, s, n, (int32_t) id);
  m->vocab_r[id] = (char *) sutra_strmap_key (&m->vocab, s, n);
  m->vocab_r_len[id] = (uint32_t) n;
  return SUTRA_OK;
}

static SutraStatus
load_bpe_merges (Ld *l, json_object *model)
{
  SutraTokModel *m = &l->tok->model;
  json_object *arr;
  SutraStatus st = get_array (l, model, "merges", "model", &arr);
  if (st)
    return st;
  size_t n = json_object_array_length (arr);
  sutra_u64map_init (&m->merges, n + 16);
  m->merge_strs = sutra_xmalloc ((n + 1) * sizeof *m->merge_strs);
  m->rank_score = sutra_xcalloc (m->n_ids ? m->n_ids : 1, sizeof *m->rank_score);
  char *buf = NULL;
  size_t bcap = 0;
  size_t rank = 0;
  for (size_t i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx (arr, i);
    char path[64];
    snprintf (path, sizeof path, "model.merges[%zu]", i);
    const char *a, *b;
    size_t an, bn;
    if (e && json_object_is_type (e, json_type_string)) {
      const char *s;
      size_t sn;
      if ((st = str_of (l, e, path, &s, &sn)))
        goto out;
      if (sn >= 8 && memcmp (s, "#version", 8) == 0)
        continue;
      const char *sp = memchr (s, ' ', sn);
      if (!sp || memchr (sp + 1, ' ', sn - (size_t) (sp + 1 - s))) {
        st = bad (l, SUTRA_ERR_FORMAT, path, "merge '%.*s' is not two tokens separated by one space",
                  (int) (sn > 60 ? 60 : sn), s);
        goto out;
      }
      a = s;
      an = (size_t) (sp - s);
      b = sp + 1;
      bn = sn - an - 1;
    } else if (e && json_object_is_type (e, json_type_array) && json_object_array_length (e) == 2) {
      if ((st = str_of (l, json_object_array_get_idx (e, 0), path, &a, &an))
          || (st = str_of (l, json_object_array_get_idx (e, 1), path, &b, &bn)))
        goto out;
    } else {
      st = bad (l, SUTRA_ERR_FORMAT, path, "expected \"a b\" or [\"a\", \"b\"], not %s",
                jtype (e));
      goto out;
    }
    int32_t ia = sutra_strmap_get (&m->vocab, a, an), ib = sutra_strmap_get (&m->vocab, b, bn);
    if (ia < 0 || ib < 0) {
      const char *u = ia < 0 ? a : b;
      size_t un = ia < 0 ? an : bn;
      st = bad (l, SUTRA_ERR_FORMAT, path, "unknown token '%.*s'", (int) (un > 60 ? 60 : un), u);
      goto out;
    }
    /* merged token = a + b without b's continuing_subword_prefix */
    size_t pl = m->prefix ? m->prefix_len : 0;
    if (pl > bn)
      pl = bn;
    size_t mn = an + bn - pl;
    if (mn + 1 > bcap) {
      bcap = (mn + 1) * 2;
      buf = sutra_xrealloc (buf, bcap);
    }
    memcpy (buf, a, an);
    memcpy (buf + an, b + pl, bn - pl);
    int32_t nid = sutra_strmap_get (&m->vocab, buf, mn);
    if (nid < 0) {
      /* HF refuses the whole file here (MergeTokenOutOfVocabulary); such a merge could
       * never apply, so we drop it and say so. It keeps its rank slot. */
      sutra_log (SUTRA_LOG_WARN, "%s: %s: merged token '%.*s' is not in the vocabulary; "
                 "merge ignored", l->tok->name, path, (int) (mn > 60 ? 60 : mn), buf);
      m->merge_strs[m->n_merges++] = sutra_xasprintf ("%.*s %.*s", (int) an, a, (int) bn, b);
      rank++;
      continue;
    }
    sutra_u64map_put (&m->merges, ((uint64_t) (uint32_t) ia << 32) | (uint32_t) ib,
                      ((uint64_t) rank << 32) | (uint32_t) nid);
    if (m->rank_score[nid] == 0.0f)
      m->rank_score[nid] = -(float) (rank + 1);
    m->merge_strs[m->n_merges] = sutra_xasprintf ("%.*s %.*s", (int) an, a, (int) bn, b);
    m->n_merges++;
    rank++;
  }
  st = SUTRA_OK;
out:
  free (buf);
  return st;
}

static SutraStatus
load_model (Ld *l, json_object *model)
{
  SutraTokenizer *tok = l->tok;
  SutraTokModel *m = &tok->model;
  SutraStatus st;
  if (!model || !json_object_is_type (model, json_type_object))
    return bad (l, SUTRA_ERR_FORMAT, "model", "expected an object, not %s", jtype (model));
  json_object *tv = jget (model, "type");
  json_object *vocab = jget (model, "vocab");
  const char *type = NULL;
  if (tv) {
    if (!json_object_is_type (tv, json_type_string))
      return bad (l, SUTRA_ERR_FORMAT, "model", "'type' must be a string");
    type = json_object_get_string (tv);
  } else if (jget (model, "merges"))
    type = "BPE";
  else if (vocab && json_object_is_type (vocab, json_type_array))
    type = "Unigram";
  else
    type = "WordPiece";
  m->unk_id = -1;
  for (int i = 0; i < 256; i++)
    m->byte_ids[i] = -1;
  if (strcmp (type, "BPE") == 0)
    m->type = SUTRA_TOK_MODEL_BPE;
  else if (strcmp (type, "WordPiece") == 0)
    m->type = SUTRA_TOK_MODEL_WORDPIECE;
  else if (strcmp (type, "Unigram") == 0)
    m->type = SUTRA_TOK_MODEL_UNIGRAM;
  else
    return bad (l, SUTRA_ERR_UNSUPPORTED, NULL, "model.type '%s' is not supported", type);

  if (m->type == SUTRA_TOK_MODEL_UNIGRAM) {
    if (!vocab || !json_object_is_type (vocab, json_type_array))
      return bad (l, SUTRA_ERR_FORMAT, "model", "Unigram 'vocab' must be a list of [piece, score]");
    size_t n = json_object_array_length (vocab);
    if (n >= SUTRA_TOK_MAX_ID)
      return bad (l, SUTRA_ERR_FORMAT, "model.vocab", "%zu entries exceed the limit", n);
    sutra_strmap_init (&m->vocab, n);
    m->scores = sutra_xmalloc ((n ? n : 1) * sizeof *m->scores);
    m->min_score = 1e300;
    for (size_t i = 0; i < n; i++) {
      json_object *e = json_object_array_get_idx (vocab, i);
      char path[64];
      snprintf (path, sizeof path, "model.vocab[%zu]", i);
      json_object *sc;
      if (!e || !json_object_is_type (e, json_type_array) || json_object_array_length (e) != 2
          || !(sc = json_object_array_get_idx (e, 1))
          || !(json_object_is_type (sc, json_type_double) || json_object_is_type (sc, json_type_int)))
        return bad (l, SUTRA_ERR_FORMAT, path, "expected [piece, score]");
      const char *s;
      size_t sn;
      if ((st = str_of (l, json_object_array_get_idx (e, 0), path, &s, &sn))
          || (st = vocab_set (l, m, s, sn, (int64_t) i, path)))
        return st;
      m->scores[i] = json_object_get_double (sc);
      if (m->scores[i] < m->min_score)
        m->min_score = m->scores[i];
    }
    m->n_entries = n;
    int64_t unk;
    if ((st = get_int (l, model, "unk_id", -1, -1, (int64_t) n - 1, "model", &unk)))
      return st;
    if (unk >= 0 && n == 0)
      return bad (l, SUTRA_ERR_FORMAT, "model", "unk_id set but the vocabulary is empty");
    m->unk_id = (int32_t) unk;
    if ((st = get_bool (l, model, "byte_fallback", false, "model", &m->byte_fallback)))
      return st;
    m->fuse_unk = true;
    sutra_unigram_build_trie (m);
  } else {
    if (!vocab || !json_object_is_type (vocab, json_type_object))
      return bad (l, SUTRA_ERR_FORMAT, "model", "'vocab' must be an object of token -> id");
    size_t n = (size_t) json_object_object_length (vocab);
    sutra_strmap_init (&m->vocab, n);
    /* detect duplicate ids */
    json_object_object_foreach (vocab, key, val) {
      if (!val || !json_object_is_type (val, json_type_int))
        return bad (l, SUTRA_ERR_FORMAT, "model.vocab", "id of '%.60s' must be an integer, not %s",
                    key, jtype (val));
      size_t kl = strlen (key);
      if (sutra_utf8_valid_prefix (key, kl) != kl)
        return bad (l, SUTRA_ERR_FORMAT, "model.vocab", "token is not valid UTF-8");
      int64_t id = json_object_get_int64 (val);
      if (id >= 0 && (size_t) id < m->n_ids && m->vocab_r[id])
        return bad (l, SUTRA_ERR_FORMAT, "model.vocab", "tokens '%.60s' and '%.60s' both have id %lld",
                    m->vocab_r[id], key, (long long) id);
      if ((st = vocab_set (l, m, key, kl, id, "model.vocab")))
        return st;
    }
    m->n_entries = m->vocab.count;
    const char *s;
    size_t sn;
    if ((st = get_str (l, model, "unk_token", "model", &s, &sn)))
      return st;
    m->unk_token = dup_opt (s, sn);
    if (m->type == SUTRA_TOK_MODEL_WORDPIECE) {
      if (!m->unk_token)
        m->unk_token = sutra_xstrdup ("[UNK]");
      if ((st = get_str (l, model, "continuing_subword_prefix", "model", &s, &sn)))
        return st;
      m->prefix = s ? sutra_xstrndup (s, sn) : sutra_xstrdup ("##");
      m->prefix_len = s ? sn : 2;
      int64_t mx;
      if ((st = get_int (l, model, "max_input_chars_per_word", 100, 0, INT32_MAX, "model", &mx)))
        return st;
      m->max_input_chars = (size_t) mx;
    } else {
      if ((st = get_str (l, model, "continuing_subword_prefix", "model", &s, &sn)))
        return st;
      m->prefix = dup_opt (s, sn);
      m->prefix_len = sn;
      if ((st = get_str (l, model, "end_of_word_suffix", "model", &s, &sn)))
        return st;
      m->suffix = dup_opt (s, sn);
      m->suffix_len = sn;
      if ((st = get_bool (l, model, "fuse_unk", false, "model", &m->fuse_unk))
          || (st = get_bool (l, model, "byte_fallback", false, "model", &m->byte_fallback))
          || (st = get_bool (l, model, "ignore_merges", false, "model", &m->ignore_merges)))
        return st;
      json_object *dr = jget (model, "dropout");
      if (!jnull (dr)) {
        if (!json_object_is_type (dr, json_type_double) && !json_object_is_type (dr, json_type_int))
          return bad (l, SUTRA_ERR_FORMAT, "model", "'dropout' must be a number or null");
        double p = json_object_get_double (dr);
        if (p < 0.0 || p > 1.0)
          return bad (l, SUTRA_ERR_FORMAT, "model", "dropout %g is not in [0, 1]", p);
        if (p > 0.0)
          return bad (l, SUTRA_ERR_UNSUPPORTED, NULL,
                      "model.dropout %g is not supported (BPE dropout is random; use null)", p);
      }
      if ((st = load_bpe_merges (l, model)))
        return st;
      /* fast single-char lookups when no affix changes the strings */
      m->char_table = m->prefix_len == 0 && m->suffix_len == 0;
      if (m->char_table)
        for (uint32_t cp = 0; cp < 2048; cp++) {
          char u[4];
          size_t ul = sutra_utf8_encode (cp, u);
          m->char_ids[cp] = sutra_strmap_get (&m->vocab, u, ul);
        }
      m->cache = sutra_bpe_cache_new ();
    }
  }
  for (int b = 0; b < 256; b++) {
    char name[8];
    snprintf (name, sizeof name, "<0x%02X>", b);
    m->byte_ids[b] = sutra_strmap_get (&m->vocab, name, 6);
  }
  return SUTRA_OK;
}

/* ---------------------------------------------------------------------------------------
 * Post-processors */

static SutraTokPost *
push_post (SutraTokenizer *tok, SutraTokPostKind kind)
{
  tok->posts = sutra_xrealloc (tok->posts, (tok->n_posts + 1) * sizeof *tok->posts);
  SutraTokPost *p = &tok->posts[tok->n_posts++];
  memset (p, 0, sizeof *p);
  p->kind = kind;
  return p;
}

static void
seq_one (SutraTokSpecialSeq *sq, const char *tokstr, size_t n, int32_t id)
{
  sq->n = 1;
  sq->ids = sutra_xmalloc (sizeof *sq->ids);
  sq->tokens = sutra_xmalloc (sizeof *sq->tokens);
  sq->ids[0] = id;
  sq->tokens[0] = sutra_xstrndup (tokstr, n);
}

/* ["<s>", 0] */
static SutraStatus
get_pair (Ld *l, json_object *o, const char *key, const char *path, SutraTokSpecialSeq *sq)
{
  json_object *a = jget (o, key);
  char p[128];
  snprintf (p, sizeof p, "%s.%s", path, key);
  if (!a || !json_object_is_type (a, json_type_array) || json_object_array_length (a) != 2)
    return bad (l, SUTRA_ERR_FORMAT, p, "expected [token, id]");
  const char *s;
  size_t n;
  SutraStatus st = str_of (l, json_object_array_get_idx (a, 0), p, &s, &n);
  if (st)
    return st;
  json_object *iv = json_object_array_get_idx (a, 1);
  if (!iv || !json_object_is_type (iv, json_type_int) || json_object_get_int64 (iv) < 0
      || json_object_get_int64 (iv) >= SUTRA_TOK_MAX_ID)
    return bad (l, SUTRA_ERR_FORMAT, p, "expected [token, id] with a valid id");
  seq_one (sq, s, n, (int32_t) json_object_get_int64 (iv));
  return SUTRA_OK;
}

/* One template piece, either {"Sequence": {"id": "A"}} / {"SpecialToken": {"id": ".."}}
 * or the string form "$A:0" / "[CLS]:0". *name = NULL for a sequence. */
static SutraStatus
template_piece (Ld *l, json_object *e, const char *path, bool *is_seq, bool *is_b, char **name)
{
  *name = NULL;
  *is_b = false;
  if (e && json_object_is_type (e, json_type_string)) {
    const char *s = json_object_get_string (e);
    size_t n = (size_t) json_object_get_string_len (e);
    const char *colon = memrchr (s, ':', n);
    size_t idl = colon ? (size_t) (colon - s) : n;
    if (idl > 0 && s[0] == '$') {
      *is_seq = true;
      *is_b = idl == 2 && (s[1] == 'B' || s[1] == 'b');
      return SUTRA_OK;
    }
    *is_seq = false;
    *name = sutra_xstrndup (s, idl);
    return SUTRA_OK;
  }
  json_object *v;
  if ((v = jget (e, "Sequence"))) {
    *is_seq = true;
    json_object *id = jget (v, "id");
    *is_b = id && json_object_is_type (id, json_type_string)
            && strcmp (json_object_get_string (id), "B") == 0;
    return SUTRA_OK;
  }
  if ((v = jget (e, "SpecialToken"))) {
    const char *s;
    size_t n;
    SutraStatus st = get_str (l, v, "id", path, &s, &n);
    if (st)
      return st;
    if (!s)
      return bad (l, SUTRA_ERR_FORMAT, path, "SpecialToken without id");
    *is_seq = false;
    *name = sutra_xstrndup (s, n);
    return SUTRA_OK;
  }
  return bad (l, SUTRA_ERR_FORMAT, path, "expected a Sequence or SpecialToken piece");
}

static SutraStatus
load_template (Ld *l, json_object *o, const char *path)
{
  json_object *single = jget (o, "single");
  json_object *specials = jget (o, "special_tokens");
  char p[256];
  snprintf (p, sizeof p, "%s.single", path);
  json_object *items = single;
  json_object *tmp = NULL;
  if (single && json_object_is_type (single, json_type_string)) {
    /* "[CLS] $A [SEP]": split on spaces */
    tmp = json_object_new_array ();
    const char *s = json_object_get_string (single);
    while (*s) {
      while (*s == ' ')
        s++;
      const char *e = s;
      while (*e && *e != ' ')
        e++;
      if (e > s)
        json_object_array_add (tmp, json_object_new_string_len (s, (int) (e - s)));
      s = e;
    }
    items = tmp;
  }
  if (!items || !json_object_is_type (items, json_type_array)) {
    json_object_put (tmp);
    return bad (l, SUTRA_ERR_FORMAT, p, "expected a list of template pieces");
  }
  SutraTokPost *pp = push_post (l->tok, SUTRA_POST_TEMPLATE);
  size_t n = json_object_array_length (items);
  pp->items = sutra_xcalloc (n + 1, sizeof *pp->items);
  pp->is_seq = sutra_xcalloc (n + 1, sizeof *pp->is_seq);
  SutraStatus st = SUTRA_OK;
  for (size_t i = 0; i < n && st == SUTRA_OK; i++) {
    char q[300];
    snprintf (q, sizeof q, "%s[%zu]", p, i);
    bool is_seq = false, is_b = false;
    char *name = NULL;
    if ((st = template_piece (l, json_object_array_get_idx (items, i), q, &is_seq, &is_b, &name)))
      break;
    if (is_seq) {
      if (is_b)
        continue;   /* only single sequences are encoded */
      pp->is_seq[pp->n_items++] = true;
      continue;
    }
    json_object *sp = jget (specials, name);
    if (!sp) {
      st = bad (l, SUTRA_ERR_FORMAT, q, "special token '%.60s' is missing from special_tokens",
                name);
      free (name);
      break;
    }
    free (name);
    json_object *ids = jget (sp, "ids"), *toks = jget (sp, "tokens");
    if (!ids || !toks || !json_object_is_type (ids, json_type_array)
        || !json_object_is_type (toks, json_type_array)
        || json_object_array_length (ids) != json_object_array_length (toks)) {
      st = bad (l, SUTRA_ERR_FORMAT, q, "special token needs 'ids' and 'tokens' of equal length");
      break;
    }
    SutraTokSpecialSeq *sq = &pp->items[pp->n_items++];
    size_t k = json_object_array_length (ids);
    sq->ids = sutra_xcalloc (k + 1, sizeof *sq->ids);
    sq->tokens = sutra_xcalloc (k + 1, sizeof *sq->tokens);
    for (size_t j = 0; j < k; j++) {
      json_object *iv = json_object_array_get_idx (ids, j);
      const char *ts;
      size_t tn;
      if (!iv || !json_object_is_type (iv, json_type_int) || json_object_get_int64 (iv) < 0
          || json_object_get_int64 (iv) >= SUTRA_TOK_MAX_ID) {
        st = bad (l, SUTRA_ERR_FORMAT, q, "special token ids must be integers in range");
        break;
      }
      if ((st = str_of (l, json_object_array_get_idx (toks, j), q, &ts, &tn)))
        break;
      sq->ids[j] = (int32_t) json_object_get_int64 (iv);
      sq->tokens[j] = sutra_xstrndup (ts, tn);
      sq->n++;
    }
  }
  json_object_put (tmp);
  return st;
}

static SutraStatus
load_post (Ld *l, json_object *o, const char *path, int depth)
{
  const char *type;
  SutraStatus st = get_type (l, o, path, &type);
  if (st)
    return st;
  if (depth > 16)
    return bad (l, SUTRA_ERR_FORMAT, path, "too deeply nested");
  if (strcmp (type, "Sequence") == 0) {
    json_object *arr;
    if ((st = get_array (l, o, "processors", path, &arr)))
      return st;
    for (size_t i = 0; i < json_object_array_length (arr); i++) {
      char p[256];
      snprintf (p, sizeof p, "%s.processors[%zu]", path, i);
      if ((st = load_post (l, json_object_array_get_idx (arr, i), p, depth + 1)))
        return st;
    }
    return SUTRA_OK;
  }
  if (strcmp (type, "TemplateProcessing") == 0)
    return load_template (l, o, path);
  if (strcmp (type, "ByteLevel") == 0) {
    bool aps, trim;
    if ((st = get_bool (l, o, "add_prefix_space", true, path, &aps))
        || (st = get_bool (l, o, "trim_offsets", true, path, &trim)))
      return st;
    SutraTokPost *pp = push_post (l->tok, SUTRA_POST_BYTELEVEL);
    pp->add_prefix_space = aps;
    pp->trim_offsets = trim;
    return SUTRA_OK;
  }
  if (strcmp (type, "RobertaProcessing") == 0 || strcmp (type, "BertProcessing") == 0) {
    bool roberta = type[0] == 'R';
    SutraTokSpecialSeq cls = { 0 }, sep = { 0 };
    bool aps = true, trim = true;
    if ((st = get_pair (l, o, "cls", path, &cls)) || (st = get_pair (l, o, "sep", path, &sep)))
      goto fail_pair;
    if (roberta && ((st = get_bool (l, o, "add_prefix_space", true, path, &aps))
                    || (st = get_bool (l, o, "trim_offsets", true, path, &trim))))
      goto fail_pair;
    SutraTokPost *pp = push_post (l->tok, roberta ? SUTRA_POST_ROBERTA : SUTRA_POST_BERT);
    pp->cls = cls;
    pp->sep = sep;
    pp->add_prefix_space = aps;
    pp->trim_offsets = roberta && trim;
    return SUTRA_OK;
  fail_pair:
    for (SutraTokSpecialSeq *q = &cls; q; q = q == &cls ? &sep : NULL) {
      if (q->n) {
        free (q->tokens[0]);
        free (q->tokens);
        free (q->ids);
      }
    }
    return st;
  }
  return bad (l, SUTRA_ERR_UNSUPPORTED, NULL, "%s.type '%s' is not supported", path, type);
}

/* ---------------------------------------------------------------------------------------
 * Decoders */

static SutraTokDec *
push_dec (SutraTokenizer *tok, SutraTokDecKind kind)
{
  tok->decs = sutra_xrealloc (tok->decs, (tok->n_decs + 1) * sizeof *tok->decs);
  SutraTokDec *d = &tok->decs[tok->n_decs++];
  memset (d, 0, sizeof *d);
  d->kind = kind;
  d->pat.slot = -1;
  return d;
}

static SutraStatus
load_decoder (Ld *l, json_object *o, const char *path, int depth)
{
  const char *type;
  SutraStatus st = get_type (l, o, path, &type);
  if (st)
    return st;
  if (depth > 16)
    return bad (l, SUTRA_ERR_FORMAT, path, "too deeply nested");
  SutraTokenizer *tok = l->tok;
  const char *s;
  size_t n;
  if (strcmp (type, "Sequence") == 0) {
    json_object *arr;
    if ((st = get_array (l, o, "decoders", path, &arr)))
      return st;
    for (size_t i = 0; i < json_object_array_length (arr); i++) {
      char p[256];
      snprintf (p, sizeof p, "%s.decoders[%zu]", path, i);
      if ((st = load_decoder (l, json_object_array_get_idx (arr, i), p, depth + 1)))
        return st;
    }
    return SUTRA_OK;
  }
  if (strcmp (type, "ByteLevel") == 0) {
    push_dec (tok, SUTRA_DEC_BYTELEVEL);
    tok->byte_level = true;
    return SUTRA_OK;
  }
  if (strcmp (type, "ByteFallback") == 0) {
    push_dec (tok, SUTRA_DEC_BYTEFALLBACK);
    return SUTRA_OK;
  }
  if (strcmp (type, "Fuse") == 0) {
    push_dec (tok, SUTRA_DEC_FUSE);
    return SUTRA_OK;
  }
  if (strcmp (type, "Metaspace") == 0) {
    uint32_t rep;
    SutraTokPrepend ps;
    if ((st = get_char (l, o, "replacement", 0x2581, path, &rep))
        || (st = get_prepend_scheme (l, o, path, &ps)))
      return st;
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_METASPACE);
    d->cp = rep;
    d->prepend = ps;
    return SUTRA_OK;
  }
  if (strcmp (type, "WordPiece") == 0) {
    bool cleanup;
    if ((st = get_str (l, o, "prefix", path, &s, &n))
        || (st = get_bool (l, o, "cleanup", true, path, &cleanup)))
      return st;
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_WORDPIECE);
    d->str = s ? sutra_xstrndup (s, n) : sutra_xstrdup ("##");
    d->cleanup = cleanup;
    return SUTRA_OK;
  }
  if (strcmp (type, "Strip") == 0) {
    uint32_t cp;
    int64_t a, b;
    if ((st = get_char (l, o, "content", ' ', path, &cp))
        || (st = get_int (l, o, "start", 0, 0, INT32_MAX, path, &a))
        || (st = get_int (l, o, "stop", 0, 0, INT32_MAX, path, &b)))
      return st;
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_STRIP);
    d->cp = cp;
    d->start = (size_t) a;
    d->stop = (size_t) b;
    return SUTRA_OK;
  }
  if (strcmp (type, "Replace") == 0) {
    SutraTokPattern pat;
    if ((st = get_str (l, o, "content", path, &s, &n)))
      return st;
    if (!s)
      return bad (l, SUTRA_ERR_FORMAT, path, "Replace needs 'content'");
    char *content = sutra_xstrndup (s, n);
    if ((st = get_pattern (l, o, path, &pat))) {
      free (content);
      return st;
    }
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_REPLACE);
    d->str = content;
    d->pat = pat;
    return SUTRA_OK;
  }
  if (strcmp (type, "CTC") == 0) {
    const char *s2;
    size_t n2;
    bool cleanup;
    if ((st = get_str (l, o, "pad_token", path, &s, &n))
        || (st = get_str (l, o, "word_delimiter_token", path, &s2, &n2))
        || (st = get_bool (l, o, "cleanup", true, path, &cleanup)))
      return st;
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_CTC);
    d->str = s ? sutra_xstrndup (s, n) : sutra_xstrdup ("<pad>");
    d->str2 = s2 ? sutra_xstrndup (s2, n2) : sutra_xstrdup ("|");
    d->cleanup = cleanup;
    return SUTRA_OK;
  }
  if (strcmp (type, "BPEDecoder") == 0) {
    if ((st = get_str (l, o, "suffix", path, &s, &n)))
      return st;
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_BPE);
    d->str = s ? sutra_xstrndup (s, n) : sutra_xstrdup ("</w>");
    return SUTRA_OK;
  }
  return bad (l, SUTRA_ERR_UNSUPPORTED, NULL, "%s.type '%s' is not supported", path, type);
}

/* ---------------------------------------------------------------------------------------
 * Added tokens (AddedVocabulary::add_tokens) */

static SutraStatus
load_added (Ld *l, json_object *arr)
{
  SutraTokenizer *tok = l->tok;
  SutraTokModel *m = &tok->model;
  if (jnull (arr))
    return SUTRA_OK;
  if (!json_object_is_type (arr, json_type_array))
    return bad (l, SUTRA_ERR_FORMAT, "added_tokens", "expected a list, not %s", jtype (arr));
  size_t n = json_object_array_length (arr);
  tok->added = sutra_xcalloc (n + 1, sizeof *tok->added);
  sutra_strmap_init (&tok->added_map, n + 1);
  sutra_strmap_init (&tok->special_set, n + 1);
  int64_t next_id = (int64_t) m->n_entries;
  /* id per added index, to build added_by_id once n_vocab is known */
  SutraStatus st;
  for (size_t i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx (arr, i);
    char path[64];
    snprintf (path, sizeof path, "added_tokens[%zu]", i);
    if (!e || !json_object_is_type (e, json_type_object))
      return bad (l, SUTRA_ERR_FORMAT, path, "expected an object, not %s", jtype (e));
    const char *content;
    size_t cn;
    int64_t jid;
    SutraTokAdded a = { 0 };
    if ((st = get_str (l, e, "content", path, &content, &cn))
        || (st = get_int (l, e, "id", -1, 0, SUTRA_TOK_MAX_ID - 1, path, &jid))
        || (st = get_bool (l, e, "single_word", false, path, &a.single_word))
        || (st = get_bool (l, e, "lstrip", false, path, &a.lstrip))
        || (st = get_bool (l, e, "rstrip", false, path, &a.rstrip))
        || (st = get_bool (l, e, "normalized", true, path, &a.normalized))
        || (st = get_bool (l, e, "special", false, path, &a.special)))
      return st;
    if (!content)
      return bad (l, SUTRA_ERR_FORMAT, path, "missing 'content'");
    if (jid < 0)
      return bad (l, SUTRA_ERR_FORMAT, path, "missing 'id'");
    if (cn == 0)
      continue;   /* HF ignores empty added tokens */
    int32_t prev = sutra_strmap_get (&tok->added_map, content, cn);
    int64_t id;
    if (prev >= 0) {
      SutraTokAdded *p = &tok->added[prev];
      if (p->special == a.special && p->lstrip == a.lstrip && p->rstrip == a.rstrip
          && p->normalized == a.normalized && p->single_word == a.single_word)
        continue;   /* identical duplicate */
      id = p->id;
    } else {
      int32_t mid = sutra_strmap_get (&m->vocab, content, cn);
      id = mid >= 0 ? mid : next_id++;
    }
    if (id >= SUTRA_TOK_MAX_ID)
      return bad (l, SUTRA_ERR_FORMAT, path, "token id %lld exceeds the limit", (long long) id);
    if (id != jid)
      sutra_log (SUTRA_LOG_WARN, "%s: %s: token '%.60s' has id %lld in the file but %lld as "
                 "Hugging Face tokenizers assigns it; using %lld", tok->name, path, content,
                 (long long) jid, (long long) id, (long long) id);
    a.content = sutra_xstrndup (content, cn);
    a.len = cn;
    a.id = (int32_t) id;
    if (a.normalized && tok->n_norms) {
      size_t nl;
      char *norm = sutra_tok_normalize_string (tok, content, cn, &nl, l->err);
      if (!norm) {
        free (a.content);
        return l->err ? l->err->code : SUTRA_ERR_INVALID;
      }
      if (nl != cn || memcmp (norm, content, cn) != 0) {
        a.norm = norm;
        a.norm_len = nl;
      } else
        free (norm);
    }
    if (a.special)
      sutra_strmap_put (&tok->special_set, content, cn, 1);
    if (prev >= 0) {
      SutraTokAdded *p = &tok->added[prev];
      free (p->content);
      free (p->norm);
      *p = a;
    } else {
      sutra_strmap_put (&tok->added_map, content, cn, (int32_t) tok->n_added);
      tok->added[tok->n_added++] = a;
    }
  }
  return SUTRA_OK;
}

/* ---------------------------------------------------------------------------------------
 * tokenizer_config.json */

static const char *const role_keys[4] = { "bos_token", "eos_token", "pad_token", "unk_token" };

static int32_t
lookup_id (const SutraTokenizer *tok, const char *s, size_t n)
{
  int32_t ai = sutra_strmap_get (&tok->added_map, s, n);
  if (ai >= 0)
    return tok->added[ai].id;
  return sutra_strmap_get (&tok->model.vocab, s, n);
}

static void
set_role (SutraTokenizer *tok, int role, const char *s, size_t n)
{
  free (tok->role_str[role]);
  tok->role_str[role] = sutra_xstrndup (s, n);
  tok->role_id[role] = lookup_id (tok, s, n);
}

static bool
template_edges (const SutraTokenizer *tok, int32_t *first, const char **first_s, int32_t *last,
                const char **last_s)
{
  *first = *last = -1;
  bool any = false;
  for (size_t k = 0; k < tok->n_posts; k++) {
    const SutraTokPost *p = &tok->posts[k];
    if (p->kind == SUTRA_POST_ROBERTA || p->kind == SUTRA_POST_BERT) {
      *first = p->cls.ids[0];
      *first_s = p->cls.tokens[0];
      *last = p->sep.ids[0];
      *last_s = p->sep.tokens[0];
      any = true;
    } else if (p->kind == SUTRA_POST_TEMPLATE) {
      bool seen = false;
      for (size_t i = 0; i < p->n_items; i++) {
        if (p->is_seq[i]) {
          seen = true;
          continue;
        }
        if (p->items[i].n == 0)
          continue;
        if (!seen && *first < 0) {
          *first = p->items[i].ids[0];
          *first_s = p->items[i].tokens[0];
        }
        if (seen) {
          *last = p->items[i].ids[p->items[i].n - 1];
          *last_s = p->items[i].tokens[p->items[i].n - 1];
        }
      }
      any = true;
    }
  }
  return any;
}

static void
free_posts (SutraTokenizer *tok)
{
  for (size_t k = 0; k < tok->n_posts; k++) {
    SutraTokPost *p = &tok->posts[k];
    for (size_t i = 0; i < p->n_items; i++) {
      for (size_t j = 0; j < p->items[i].n; j++)
        free (p->items[i].tokens[j]);
      free (p->items[i].tokens);
      free (p->items[i].ids);
    }
    free (p->items);
    free (p->is_seq);
    SutraTokSpecialSeq *pair[2] = { &p->cls, &p->sep };
    for (int q = 0; q < 2; q++) {
      for (size_t j = 0; j < pair[q]->n; j++)
        free (pair[q]->tokens[j]);
      free (pair[q]->tokens);
      free (pair[q]->ids);
    }
  }
  free (tok->posts);
  tok->posts = NULL;
  tok->n_posts = 0;
}

static SutraStatus
load_config (Ld *l, json_object *cfg)
{
  SutraTokenizer *tok = l->tok;
  for (int r = 0; r < 4; r++) {
    json_object *v = jget (cfg, role_keys[r]);
    if (jnull (v))
      continue;
    if (json_object_is_type (v, json_type_object))
      v = jget (v, "content");
    if (!v || !json_object_is_type (v, json_type_string))
      return bad (l, SUTRA_ERR_FORMAT, "tokenizer_config.json",
                  "'%s' must be a string or {\"content\": ...}", role_keys[r]);
    const char *s;
    size_t n;
    SutraStatus st = str_of (l, v, role_keys[r], &s, &n);
    if (st)
      return st;
    set_role (tok, r, s, n);
  }
  bool cleanup;
  SutraStatus st = get_bool (l, cfg, "clean_up_tokenization_spaces", true,
                             "tokenizer_config.json", &cleanup);
  if (st)
    return st;
  tok->cleanup_default = cleanup;
  /* transformers' LlamaTokenizerFast / GemmaTokenizerFast rebuild the post-processor from
   * add_bos_token / add_eos_token (update_post_processor) */
  json_object *cls = jget (cfg, "tokenizer_class");
  const char *cn = cls && json_object_is_type (cls, json_type_string) ? json_object_get_string (cls)
                                                                       : "";
  static const char *const llama_like[] = {
    "LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast",
    "GemmaTokenizer", "GemmaTokenizerFast",
  };
  bool is_llama = false;
  for (size_t i = 0; i < sizeof llama_like / sizeof *llama_like; i++)
    is_llama |= strcmp (cn, llama_like[i]) == 0;
  if (is_llama) {
    bool add_bos, add_eos;
    if ((st = get_bool (l, cfg, "add_bos_token", true, "tokenizer_config.json", &add_bos))
        || (st = get_bool (l, cfg, "add_eos_token", false, "tokenizer_config.json", &add_eos)))
      return st;
    if ((add_bos && !tok->role_str[SUTRA_TOK_BOS]) || (add_eos && !tok->role_str[SUTRA_TOK_EOS])) {
      sutra_log (SUTRA_LOG_WARN, "%s: %s asks for add_bos/add_eos without the token; keeping "
                 "tokenizer.json's post-processor", tok->name, cn);
      return SUTRA_OK;
    }
    free_posts (tok);
    SutraTokPost *pp = push_post (tok, SUTRA_POST_TEMPLATE);
    pp->items = sutra_xcalloc (3, sizeof *pp->items);
    pp->is_seq = sutra_xcalloc (3, sizeof *pp->is_seq);
    if (add_bos)
      seq_one (&pp->items[pp->n_items++], tok->role_str[SUTRA_TOK_BOS],
               strlen (tok->role_str[SUTRA_TOK_BOS]), tok->role_id[SUTRA_TOK_BOS]);
    pp->is_seq[pp->n_items++] = true;
    if (add_eos)
      seq_one (&pp->items[pp->n_items++], tok->role_str[SUTRA_TOK_EOS],
               strlen (tok->role_str[SUTRA_TOK_EOS]), tok->role_id[SUTRA_TOK_EOS]);
    tok->has_post = true;
    if (!jnull (jget (cfg, "add_prefix_space")))
      sutra_log (SUTRA_LOG_WARN, "%s: add_prefix_space in tokenizer_config.json makes "
                 "transformers rebuild this tokenizer from the slow one; using tokenizer.json as is",
                 tok->name);
  }
  return SUTRA_OK;
}

static void
role_fallbacks (SutraTokenizer *tok)
{
  static const char *const names[4][6] = {
    { "<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<|endoftext|>", NULL },
    { "</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>", "<|im_end|>", NULL },
    { "<pad>", "[PAD]", "<|padding|>", "<|pad|>", NULL, NULL },
    { "<unk>", "[UNK]", NULL, NULL, NULL, NULL },
  };
  int32_t first, last;
  const char *fs = NULL, *ls = NULL;
  template_edges (tok, &first, &fs, &last, &ls);
  if (!tok->role_str[SUTRA_TOK_BOS] && first >= 0)
    set_role (tok, SUTRA_TOK_BOS, fs, strlen (fs));
  if (!tok->role_str[SUTRA_TOK_EOS] && last >= 0)
    set_role (tok, SUTRA_TOK_EOS, ls, strlen (ls));
  const SutraTokModel *m = &tok->model;
  if (!tok->role_str[SUTRA_TOK_UNK]) {
    if (m->unk_token && sutra_strmap_get (&m->vocab, m->unk_token, strlen (m->unk_token)) >= 0)
      set_role (tok, SUTRA_TOK_UNK, m->unk_token, strlen (m->unk_token));
    else if (m->unk_id >= 0 && m->vocab_r[m->unk_id])
      set_role (tok, SUTRA_TOK_UNK, m->vocab_r[m->unk_id], m->vocab_r_len[m->unk_id]);
  }
  for (int r = 0; r < 4; r++) {
    if (tok->role_str[r])
      continue;
    for (int k = 0; k < 6 && names[r][k]; k++)
      if (sutra_strmap_get (&tok->added_map, names[r][k], strlen (names[r][k])) >= 0) {
        set_role (tok, r, names[r][k], strlen (names[r][k]));
        break;
      }
  }
}

/* ---------------------------------------------------------------------------------------
 * Entry point */

static json_object *
parse_json (Ld *l, const char *text, size_t len, const char *what, SutraStatus *st)
{
  if (len > ((size_t) 1 << 30)) {
    *st = bad (l, SUTRA_ERR_FORMAT, what, "file too large (%zu bytes)", len);
    return NULL;
  }
  size_t bad_at = sutra_utf8_valid_prefix (text, len);
  if (bad_at != len) {
    *st = bad (l, SUTRA_ERR_FORMAT, what, "not valid UTF-8 at byte %zu", bad_at);
    return NULL;
  }
  json_tokener *jt = json_tokener_new_ex (64);
  json_object *o = json_tokener_parse_ex (jt, text, (int) len);
  enum json_tokener_error je = json_tokener_get_error (jt);
  size_t used = jt->char_offset;
  json_tokener_free (jt);
  if (!o || je != json_tokener_success) {
    json_object_put (o);
    *st = bad (l, SUTRA_ERR_FORMAT, what, "invalid JSON near byte %zu: %s", used,
               je == json_tokener_continue ? "unexpected end of file" : json_tokener_error_desc (je));
    return NULL;
  }
  for (size_t i = used; i < len; i++)
    if (!strchr (" \t\r\n", text[i]) || text[i] == '\0') {
      json_object_put (o);
      *st = bad (l, SUTRA_ERR_FORMAT, what, "invalid JSON: trailing characters at byte %zu", i);
      return NULL;
    }
  if (!json_object_is_type (o, json_type_object)) {
    json_object_put (o);
    *st = bad (l, SUTRA_ERR_FORMAT, what, "expected a JSON object at the top level");
    return NULL;
  }
  return o;
}

SutraStatus
sutra_tok_build_from_json (SutraTokenizer *tok, const char *json, size_t len, const char *config,
                           size_t config_len, SutraError *err)
{
  Ld l = { tok, err };
  SutraStatus st = SUTRA_OK;
  for (int r = 0; r < 4; r++)
    tok->role_id[r] = -1;
  tok->cleanup_default = true;
  json_object *root = parse_json (&l, json, len, "", &st);
  if (!root)
    return st;
  json_object *cfg = NULL;
  json_object *v = jget (root, "version");
  if (v && (!json_object_is_type (v, json_type_string) || strcmp (json_object_get_string (v), "1.0"))) {
    st = bad (&l, SUTRA_ERR_UNSUPPORTED, NULL, "tokenizer version '%s' is not supported (want 1.0)",
              json_object_get_string (v));
    goto out;
  }
  if ((st = load_model (&l, jget (root, "model"))))
    goto out;
  if (!jnull (v = jget (root, "normalizer")) && (st = load_normalizer (&l, v, "normalizer", 0)))
    goto out;
  if (!jnull (v = jget (root, "pre_tokenizer")) && (st = load_pretok (&l, v, "pre_tokenizer", 0)))
    goto out;
  if (!jnull (v = jget (root, "post_processor"))) {
    if ((st = load_post (&l, v, "post_processor", 0)))
      goto out;
    tok->has_post = true;
  }
  if (!jnull (v = jget (root, "decoder"))) {
    if ((st = load_decoder (&l, v, "decoder", 0)))
      goto out;
    tok->has_decoder = true;
  }
  if ((st = load_added (&l, jget (root, "added_tokens"))))
    goto out;
  if (!tok->added) {
    tok->added = sutra_xcalloc (1, sizeof *tok->added);
    sutra_strmap_init (&tok->added_map, 1);
    sutra_strmap_init (&tok->special_set, 1);
  }
  /* ids: model and added */
  size_t nv = tok->model.n_ids;
  for (size_t i = 0; i < tok->n_added; i++)
    if ((size_t) tok->added[i].id + 1 > nv)
      nv = (size_t) tok->added[i].id + 1;
  tok->n_vocab = nv;
  tok->added_by_id = sutra_xmalloc ((nv ? nv : 1) * sizeof *tok->added_by_id);
  for (size_t i = 0; i < nv; i++)
    tok->added_by_id[i] = -1;
  for (size_t i = 0; i < tok->n_added; i++)
    tok->added_by_id[tok->added[i].id] = (int32_t) i;
  sutra_tok_trie_build (&tok->trie_raw, tok, false);
  sutra_tok_trie_build (&tok->trie_norm, tok, true);
  if (config && config_len) {
    cfg = parse_json (&l, config, config_len, "tokenizer_config.json", &st);
    if (!cfg)
      goto out;
    if ((st = load_config (&l, cfg)))
      goto out;
  }
  role_fallbacks (tok);
  /* what add_special_tokens adds */
  {
    int32_t first, last;
    const char *fs, *ls;
    template_edges (tok, &first, &fs, &last, &ls);
    tok->adds_bos = first >= 0;
    tok->adds_eos = last >= 0;
  }
  /* offset trimming tables */
  for (size_t k = 0; k < tok->n_posts; k++)
    if ((tok->posts[k].kind == SUTRA_POST_BYTELEVEL || tok->posts[k].kind == SUTRA_POST_ROBERTA)
        && tok->posts[k].trim_offsets)
      tok->needs_trim = true;
  if (tok->needs_trim) {
    tok->trim_lead = sutra_xcalloc (nv ? nv : 1, sizeof *tok->trim_lead);
    tok->trim_trail = sutra_xcalloc (nv ? nv : 1, sizeof *tok->trim_trail);
    for (size_t id = 0; id < nv; id++) {
      const char *s = NULL;
      size_t n = 0;
      if (id < tok->model.n_ids && tok->model.vocab_r[id]) {
        s = tok->model.vocab_r[id];
        n = tok->model.vocab_r_len[id];
      } else if (tok->added_by_id[id] >= 0) {
        s = tok->added[tok->added_by_id[id]].content;
        n = strlen (s);
      }
      if (s)
        sutra_tok_trim_counts (s, n, &tok->trim_lead[id], &tok->trim_trail[id]);
    }
  }
  for (size_t i = 0; i < tok->n_norms; i++)
    if (tok->norms[i].kind == SUTRA_NORM_BYTELEVEL)
      tok->byte_level = true;
out:
  json_object_put (root);
  json_object_put (cfg);
  return st;
}

void
sutra_tok_destroy (SutraTokenizer *tok)
{
  SutraTokModel *m = &tok->model;
  sutra_strmap_free (&m->vocab);
  free (m->vocab_r);
  free (m->vocab_r_len);
  sutra_u64map_free (&m->merges);
  for (size_t i = 0; i < m->n_merges; i++)
    free (m->merge_strs[i]);
  free (m->merge_strs);
  free (m->unk_token);
  free (m->prefix);
  free (m->suffix);
  sutra_bpe_cache_free (m->cache);
  free (m->rank_score);
  free (m->scores);
  sutra_u64map_free (&m->trie_edges);
  free (m->trie_term);
  for (size_t i = 0; i < tok->n_added; i++) {
    free (tok->added[i].content);
    free (tok->added[i].norm);
  }
  free (tok->added);
  sutra_strmap_free (&tok->added_map);
  sutra_strmap_free (&tok->special_set);
  free (tok->added_by_id);
  sutra_tok_trie_free (&tok->trie_raw);
  sutra_tok_trie_free (&tok->trie_norm);
  for (size_t i = 0; i < tok->n_norms; i++) {
    free (tok->norms[i].str);
    free (tok->norms[i].pat.source);
    sutra_tok_charsmap_free (&tok->norms[i].cmap);
  }
  free (tok->norms);
  for (size_t i = 0; i < tok->n_steps; i++)
    free (tok->steps[i].pat.source);
  free (tok->steps);
  free_posts (tok);
  for (size_t i = 0; i < tok->n_decs; i++) {
    sutra_tok_dec_free (&tok->decs[i]);
    free (tok->decs[i].pat.source);
  }
  free (tok->decs);
  for (size_t i = 0; i < tok->n_regexes; i++) {
    pcre2_code_free (tok->regexes[i]);
    free (tok->regex_sources[i]);
  }
  free (tok->regexes);
  free (tok->regex_sources);
  free (tok->trim_lead);
  free (tok->trim_trail);
  for (int r = 0; r < 4; r++)
    free (tok->role_str[r]);
  free (tok->name);
}
