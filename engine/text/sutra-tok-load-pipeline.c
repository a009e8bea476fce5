/* sutra-tok-load-pipeline.c: the normalizer, pre_tokenizer, post_processor and decoder
 * objects of tokenizer.json (HF tokenizers serialization 1.0) into flat step lists.
 * A Sequence is flattened in order; an unknown "type" is SUTRA_ERR_UNSUPPORTED naming the
 * JSON path ("pre_tokenizer.type 'UnicodeScripts' is not supported"). */
#include "sutra-tok-json-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char GPT2_PATTERN[] =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

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

SutraStatus
sutra_tok_load_normalizer (Ld *l, json_object *o, const char *path, int depth)
{
  const char *type;
  SutraStatus st = tj_type_of (l, o, path, &type);
  if (st)
    return st;
  if (depth > 16)
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "too deeply nested");
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
    if ((st = tj_array (l, o, "normalizers", path, &arr)))
      return st;
    for (size_t i = 0; i < json_object_array_length (arr); i++) {
      char p[256];
      snprintf (p, sizeof p, "%s.normalizers[%zu]", path, i);
      if ((st = sutra_tok_load_normalizer (l, json_object_array_get_idx (arr, i), p, depth + 1)))
        return st;
    }
    return SUTRA_OK;
  }
  if (strcmp (type, "BertNormalizer") == 0) {
    bool clean, chinese, lower, strip;
    if ((st = tj_bool (l, o, "clean_text", true, path, &clean))
        || (st = tj_bool (l, o, "handle_chinese_chars", true, path, &chinese))
        || (st = tj_bool (l, o, "lowercase", true, path, &lower)))
      return st;
    /* strip_accents: null follows lowercase */
    if ((st = tj_bool (l, o, "strip_accents", lower, path, &strip)))
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
    if ((st = tj_bool (l, o, "strip_left", true, path, &left))
        || (st = tj_bool (l, o, "strip_right", true, path, &right)))
      return st;
    SutraTokNorm *nm = push_norm (l->tok, SUTRA_NORM_STRIP);
    nm->strip_left = left;
    nm->strip_right = right;
    return SUTRA_OK;
  }
  if (strcmp (type, "Prepend") == 0) {
    const char *s;
    size_t n;
    if ((st = tj_str (l, o, "prepend", path, &s, &n)))
      return st;
    if (!s)
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "Prepend needs 'prepend'");
    SutraTokNorm *nm = push_norm (l->tok, SUTRA_NORM_PREPEND);
    nm->str = sutra_xstrndup (s, n);
    nm->str_len = n;
    return SUTRA_OK;
  }
  if (strcmp (type, "Replace") == 0) {
    const char *s;
    size_t n;
    if ((st = tj_str (l, o, "content", path, &s, &n)))
      return st;
    if (!s)
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "Replace needs 'content'");
    SutraTokPattern pat;
    if ((st = tj_pattern (l, o, path, &pat)))
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
    if ((st = tj_str (l, o, "precompiled_charsmap", path, &s, &n)))
      return st;
    if (!s)
      return tj_bad (l, SUTRA_ERR_UNSUPPORTED, path,
                     "Precompiled without a precompiled_charsmap is not supported");
    size_t bl;
    uint8_t *bytes = tj_b64_decode (s, n, &bl);
    if (!bytes)
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "precompiled_charsmap is not valid base64");
    SutraTokCharsmap cm;
    st = sutra_tok_charsmap_parse (&cm, bytes, bl);
    free (bytes);
    if (st)
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "cannot parse precompiled_charsmap");
    SutraTokNorm *nm = push_norm (l->tok, SUTRA_NORM_PRECOMPILED);
    nm->cmap = cm;
    return SUTRA_OK;
  }
  return tj_bad (l, SUTRA_ERR_UNSUPPORTED, NULL, "%s.type '%s' is not supported", path, type);
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
  SutraStatus st = tj_str (l, o, "prepend_scheme", path, &s, &n);
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
      return tj_bad (l, SUTRA_ERR_UNSUPPORTED, path, "prepend_scheme '%s' is not supported", s);
  }
  json_object *aps = tj_get (o, "add_prefix_space");
  if (!tj_null (aps)) {
    if (!json_object_is_type (aps, json_type_boolean))
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "'add_prefix_space' must be a boolean");
    if (!json_object_get_boolean (aps)) {
      if (ps != SUTRA_PREPEND_NEVER && s)
        return tj_bad (l, SUTRA_ERR_FORMAT, path,
                       "add_prefix_space does not match declared prepend_scheme");
      ps = SUTRA_PREPEND_NEVER;
    }
  }
  *out = ps;
  return SUTRA_OK;
}

SutraStatus
sutra_tok_load_pretok (Ld *l, json_object *o, const char *path, int depth)
{
  const char *type;
  SutraStatus st = tj_type_of (l, o, path, &type);
  if (st)
    return st;
  if (depth > 16)
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "too deeply nested");
  SutraTokenizer *tok = l->tok;
  if (strcmp (type, "Sequence") == 0) {
    json_object *arr;
    if ((st = tj_array (l, o, "pretokenizers", path, &arr)))
      return st;
    for (size_t i = 0; i < json_object_array_length (arr); i++) {
      char p[256];
      snprintf (p, sizeof p, "%s.pretokenizers[%zu]", path, i);
      if ((st = sutra_tok_load_pretok (l, json_object_array_get_idx (arr, i), p, depth + 1)))
        return st;
    }
    return SUTRA_OK;
  }
  if (strcmp (type, "ByteLevel") == 0) {
    bool aps, use_regex;
    if ((st = tj_bool (l, o, "add_prefix_space", true, path, &aps))
        || (st = tj_bool (l, o, "use_regex", true, path, &use_regex)))
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
    if ((st = tj_behavior (l, o, path, SUTRA_SPLIT_ISOLATED, &b))
        || (st = tj_bool (l, o, "invert", false, path, &invert))
        || (st = tj_pattern (l, o, path, &pat)))
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
    if ((st = tj_char (l, o, "replacement", 0x2581, path, &rep))
        || (st = get_prepend_scheme (l, o, path, &ps))
        || (st = tj_bool (l, o, "split", true, path, &split)))
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
    if ((st = tj_bool (l, o, "individual_digits", false, path, &indiv)))
      return st;
    push_split (tok, SUTRA_SRC_NUMERIC, indiv ? SUTRA_SPLIT_ISOLATED : SUTRA_SPLIT_CONTIGUOUS,
                false);
    return SUTRA_OK;
  }
  if (strcmp (type, "Punctuation") == 0) {
    SutraTokBehavior b;
    if ((st = tj_behavior (l, o, path, SUTRA_SPLIT_ISOLATED, &b)))
      return st;
    push_split (tok, SUTRA_SRC_PUNCT, b, false);
    return SUTRA_OK;
  }
  if (strcmp (type, "CharDelimiterSplit") == 0 || strcmp (type, "Delimiter") == 0) {
    uint32_t d;
    if ((st = tj_char (l, o, "delimiter", 0xFFFFFFFF, path, &d)))
      return st;
    if (d == 0xFFFFFFFF)
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "CharDelimiterSplit needs 'delimiter'");
    SutraTokStep *s = push_step (tok, SUTRA_STEP_SPLIT);
    s->src = SUTRA_SRC_CHAR;
    s->cp = d;
    s->behavior = SUTRA_SPLIT_REMOVED;
    return SUTRA_OK;
  }
  if (strcmp (type, "FixedLength") == 0) {
    int64_t len;
    if ((st = tj_int (l, o, "length", 5, 1, 1 << 20, path, &len)))
      return st;
    SutraTokStep *s = push_step (tok, SUTRA_STEP_FIXED);
    s->length = (size_t) len;
    return SUTRA_OK;
  }
  return tj_bad (l, SUTRA_ERR_UNSUPPORTED, NULL, "%s.type '%s' is not supported", path, type);
}

/* ---------------------------------------------------------------------------------------
 * Post-processors */

SutraTokPost *
sutra_tok_push_post (SutraTokenizer *tok, SutraTokPostKind kind)
{
  tok->posts = sutra_xrealloc (tok->posts, (tok->n_posts + 1) * sizeof *tok->posts);
  SutraTokPost *p = &tok->posts[tok->n_posts++];
  memset (p, 0, sizeof *p);
  p->kind = kind;
  return p;
}

void
sutra_tok_seq_one (SutraTokSpecialSeq *sq, const char *tokstr, size_t n, int32_t id)
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
  json_object *a = tj_get (o, key);
  char p[128];
  snprintf (p, sizeof p, "%s.%s", path, key);
  if (!a || !json_object_is_type (a, json_type_array) || json_object_array_length (a) != 2)
    return tj_bad (l, SUTRA_ERR_FORMAT, p, "expected [token, id]");
  const char *s;
  size_t n;
  SutraStatus st = tj_str_of (l, json_object_array_get_idx (a, 0), p, &s, &n);
  if (st)
    return st;
  json_object *iv = json_object_array_get_idx (a, 1);
  if (!iv || !json_object_is_type (iv, json_type_int) || json_object_get_int64 (iv) < 0
      || json_object_get_int64 (iv) >= SUTRA_TOK_MAX_ID)
    return tj_bad (l, SUTRA_ERR_FORMAT, p, "expected [token, id] with a valid id");
  sutra_tok_seq_one (sq, s, n, (int32_t) json_object_get_int64 (iv));
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
  if ((v = tj_get (e, "Sequence"))) {
    *is_seq = true;
    json_object *id = tj_get (v, "id");
    *is_b = id && json_object_is_type (id, json_type_string)
            && strcmp (json_object_get_string (id), "B") == 0;
    return SUTRA_OK;
  }
  if ((v = tj_get (e, "SpecialToken"))) {
    const char *s;
    size_t n;
    SutraStatus st = tj_str (l, v, "id", path, &s, &n);
    if (st)
      return st;
    if (!s)
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "SpecialToken without id");
    *is_seq = false;
    *name = sutra_xstrndup (s, n);
    return SUTRA_OK;
  }
  return tj_bad (l, SUTRA_ERR_FORMAT, path, "expected a Sequence or SpecialToken piece");
}

static SutraStatus
load_template (Ld *l, json_object *o, const char *path)
{
  json_object *single = tj_get (o, "single");
  json_object *specials = tj_get (o, "special_tokens");
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
    return tj_bad (l, SUTRA_ERR_FORMAT, p, "expected a list of template pieces");
  }
  SutraTokPost *pp = sutra_tok_push_post (l->tok, SUTRA_POST_TEMPLATE);
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
    json_object *sp = tj_get (specials, name);
    if (!sp) {
      st = tj_bad (l, SUTRA_ERR_FORMAT, q, "special token '%.60s' is missing from special_tokens",
                   name);
      free (name);
      break;
    }
    free (name);
    json_object *ids = tj_get (sp, "ids"), *toks = tj_get (sp, "tokens");
    if (!ids || !toks || !json_object_is_type (ids, json_type_array)
        || !json_object_is_type (toks, json_type_array)
        || json_object_array_length (ids) != json_object_array_length (toks)) {
      st = tj_bad (l, SUTRA_ERR_FORMAT, q, "special token needs 'ids' and 'tokens' of equal length");
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
        st = tj_bad (l, SUTRA_ERR_FORMAT, q, "special token ids must be integers in range");
        break;
      }
      if ((st = tj_str_of (l, json_object_array_get_idx (toks, j), q, &ts, &tn)))
        break;
      sq->ids[j] = (int32_t) json_object_get_int64 (iv);
      sq->tokens[j] = sutra_xstrndup (ts, tn);
      sq->n++;
    }
  }
  json_object_put (tmp);
  return st;
}

SutraStatus
sutra_tok_load_post (Ld *l, json_object *o, const char *path, int depth)
{
  const char *type;
  SutraStatus st = tj_type_of (l, o, path, &type);
  if (st)
    return st;
  if (depth > 16)
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "too deeply nested");
  if (strcmp (type, "Sequence") == 0) {
    json_object *arr;
    if ((st = tj_array (l, o, "processors", path, &arr)))
      return st;
    for (size_t i = 0; i < json_object_array_length (arr); i++) {
      char p[256];
      snprintf (p, sizeof p, "%s.processors[%zu]", path, i);
      if ((st = sutra_tok_load_post (l, json_object_array_get_idx (arr, i), p, depth + 1)))
        return st;
    }
    return SUTRA_OK;
  }
  if (strcmp (type, "TemplateProcessing") == 0)
    return load_template (l, o, path);
  if (strcmp (type, "ByteLevel") == 0) {
    bool aps, trim;
    if ((st = tj_bool (l, o, "add_prefix_space", true, path, &aps))
        || (st = tj_bool (l, o, "trim_offsets", true, path, &trim)))
      return st;
    SutraTokPost *pp = sutra_tok_push_post (l->tok, SUTRA_POST_BYTELEVEL);
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
    if (roberta && ((st = tj_bool (l, o, "add_prefix_space", true, path, &aps))
                    || (st = tj_bool (l, o, "trim_offsets", true, path, &trim))))
      goto fail_pair;
    SutraTokPost *pp = sutra_tok_push_post (l->tok, roberta ? SUTRA_POST_ROBERTA : SUTRA_POST_BERT);
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
  return tj_bad (l, SUTRA_ERR_UNSUPPORTED, NULL, "%s.type '%s' is not supported", path, type);
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

SutraStatus
sutra_tok_load_decoder (Ld *l, json_object *o, const char *path, int depth)
{
  const char *type;
  SutraStatus st = tj_type_of (l, o, path, &type);
  if (st)
    return st;
  if (depth > 16)
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "too deeply nested");
  SutraTokenizer *tok = l->tok;
  const char *s;
  size_t n;
  if (strcmp (type, "Sequence") == 0) {
    json_object *arr;
    if ((st = tj_array (l, o, "decoders", path, &arr)))
      return st;
    for (size_t i = 0; i < json_object_array_length (arr); i++) {
      char p[256];
      snprintf (p, sizeof p, "%s.decoders[%zu]", path, i);
      if ((st = sutra_tok_load_decoder (l, json_object_array_get_idx (arr, i), p, depth + 1)))
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
    if ((st = tj_char (l, o, "replacement", 0x2581, path, &rep))
        || (st = get_prepend_scheme (l, o, path, &ps)))
      return st;
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_METASPACE);
    d->cp = rep;
    d->prepend = ps;
    return SUTRA_OK;
  }
  if (strcmp (type, "WordPiece") == 0) {
    bool cleanup;
    if ((st = tj_str (l, o, "prefix", path, &s, &n))
        || (st = tj_bool (l, o, "cleanup", true, path, &cleanup)))
      return st;
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_WORDPIECE);
    d->str = s ? sutra_xstrndup (s, n) : sutra_xstrdup ("##");
    d->cleanup = cleanup;
    return SUTRA_OK;
  }
  if (strcmp (type, "Strip") == 0) {
    uint32_t cp;
    int64_t a, b;
    if ((st = tj_char (l, o, "content", ' ', path, &cp))
        || (st = tj_int (l, o, "start", 0, 0, INT32_MAX, path, &a))
        || (st = tj_int (l, o, "stop", 0, 0, INT32_MAX, path, &b)))
      return st;
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_STRIP);
    d->cp = cp;
    d->start = (size_t) a;
    d->stop = (size_t) b;
    return SUTRA_OK;
  }
  if (strcmp (type, "Replace") == 0) {
    SutraTokPattern pat;
    if ((st = tj_str (l, o, "content", path, &s, &n)))
      return st;
    if (!s)
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "Replace needs 'content'");
    char *content = sutra_xstrndup (s, n);
    if ((st = tj_pattern (l, o, path, &pat))) {
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
    if ((st = tj_str (l, o, "pad_token", path, &s, &n))
        || (st = tj_str (l, o, "word_delimiter_token", path, &s2, &n2))
        || (st = tj_bool (l, o, "cleanup", true, path, &cleanup)))
      return st;
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_CTC);
    d->str = s ? sutra_xstrndup (s, n) : sutra_xstrdup ("<pad>");
    d->str2 = s2 ? sutra_xstrndup (s2, n2) : sutra_xstrdup ("|");
    d->cleanup = cleanup;
    return SUTRA_OK;
  }
  if (strcmp (type, "BPEDecoder") == 0) {
    if ((st = tj_str (l, o, "suffix", path, &s, &n)))
      return st;
    SutraTokDec *d = push_dec (tok, SUTRA_DEC_BPE);
    d->str = s ? sutra_xstrndup (s, n) : sutra_xstrdup ("</w>");
    return SUTRA_OK;
  }
  return tj_bad (l, SUTRA_ERR_UNSUPPORTED, NULL, "%s.type '%s' is not supported", path, type);
}


void
sutra_tok_free_posts (SutraTokenizer *tok)
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
