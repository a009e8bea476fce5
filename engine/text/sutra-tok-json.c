/* sutra-tok-json.c: JSON accessors with path-naming errors, base64, and whole-document
 * parsing for the tokenizer.json / tokenizer_config.json loader (json-c). */
#include "sutra-tok-json-private.h"
#include "sutra-json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


SutraStatus
tj_bad (Ld *l, SutraStatus st, const char *path, const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));

SutraStatus
tj_bad (Ld *l, SutraStatus st, const char *path, const char *fmt, ...)
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

json_object *
tj_get (json_object *o, const char *key)
{
  json_object *v = NULL;
  if (!o || !json_object_is_type (o, json_type_object) || !json_object_object_get_ex (o, key, &v))
    return NULL;
  return v;
}

bool
tj_null (json_object *v)
{
  return !v || json_object_is_type (v, json_type_null);
}

const char *
tj_type (json_object *v)
{
  return v ? json_type_to_name (json_object_get_type (v)) : "missing";
}

SutraStatus
tj_bool (Ld *l, json_object *o, const char *key, bool def, const char *path, bool *out)
{
  json_object *v = tj_get (o, key);
  if (tj_null (v)) {
    *out = def;
    return SUTRA_OK;
  }
  if (!json_object_is_type (v, json_type_boolean))
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "'%s' must be a boolean, not %s", key, tj_type (v));
  *out = json_object_get_boolean (v);
  return SUTRA_OK;
}

SutraStatus
tj_int (Ld *l, json_object *o, const char *key, int64_t def, int64_t lo, int64_t hi,
        const char *path, int64_t *out)
{
  json_object *v = tj_get (o, key);
  if (tj_null (v)) {
    *out = def;
    return SUTRA_OK;
  }
  if (!json_object_is_type (v, json_type_int))
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "'%s' must be an integer, not %s", key, tj_type (v));
  int64_t x = json_object_get_int64 (v);
  if (x < lo || x > hi)
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "'%s' = %lld is out of range [%lld, %lld]", key,
                   (long long) x, (long long) lo, (long long) hi);
  *out = x;
  return SUTRA_OK;
}

/* A JSON string value as (pointer, length), checked to be valid UTF-8. */
SutraStatus
tj_str_of (Ld *l, json_object *v, const char *path, const char **s, size_t *n)
{
  if (!v || !json_object_is_type (v, json_type_string))
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "expected a string, not %s", tj_type (v));
  *s = json_object_get_string (v);
  *n = (size_t) json_object_get_string_len (v);
  if (sutra_utf8_valid_prefix (*s, *n) != *n)
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "string is not valid UTF-8");
  return SUTRA_OK;
}

/* Optional string member: *s = NULL when absent or null. */
SutraStatus
tj_str (Ld *l, json_object *o, const char *key, const char *path, const char **s, size_t *n)
{
  json_object *v = tj_get (o, key);
  *s = NULL;
  *n = 0;
  if (tj_null (v))
    return SUTRA_OK;
  char p[256];
  snprintf (p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
  return tj_str_of (l, v, p, s, n);
}

/* A member that must hold exactly one char (Metaspace replacement, Strip content). */
SutraStatus
tj_char (Ld *l, json_object *o, const char *key, uint32_t def, const char *path, uint32_t *cp)
{
  const char *s;
  size_t n;
  SutraStatus st = tj_str (l, o, key, path, &s, &n);
  if (st)
    return st;
  if (!s) {
    *cp = def;
    return SUTRA_OK;
  }
  size_t adv = 0;
  if (n == 0 || (*cp = sutra_utf8_decode (s, &adv), adv != n))
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "'%s' must be a single character", key);
  return SUTRA_OK;
}

char *
tj_dup_opt (const char *s, size_t n)
{
  return s ? sutra_xstrndup (s, n) : NULL;
}

/* {"String": s} or {"Regex": r} -> a compiled pattern slot */
SutraStatus
tj_pattern (Ld *l, json_object *o, const char *path, SutraTokPattern *pat)
{
  json_object *p = tj_get (o, "pattern");
  char where[256];
  snprintf (where, sizeof where, "%s.pattern", path);
  if (!p || !json_object_is_type (p, json_type_object))
    return tj_bad (l, SUTRA_ERR_FORMAT, where, "expected {\"String\": ...} or {\"Regex\": ...}");
  const char *s;
  size_t n;
  json_object *v;
  bool regex;
  if ((v = tj_get (p, "String")))
    regex = false;
  else if ((v = tj_get (p, "Regex")))
    regex = true;
  else
    return tj_bad (l, SUTRA_ERR_FORMAT, where, "expected {\"String\": ...} or {\"Regex\": ...}");
  SutraStatus st = tj_str_of (l, v, where, &s, &n);
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

SutraStatus
tj_type_of (Ld *l, json_object *o, const char *path, const char **type)
{
  if (!o || !json_object_is_type (o, json_type_object))
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "expected an object, not %s", tj_type (o));
  json_object *t = tj_get (o, "type");
  if (!t || !json_object_is_type (t, json_type_string))
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "missing \"type\"");
  *type = json_object_get_string (t);
  return SUTRA_OK;
}

SutraStatus
tj_array (Ld *l, json_object *o, const char *key, const char *path, json_object **arr)
{
  json_object *a = tj_get (o, key);
  if (!a || !json_object_is_type (a, json_type_array))
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "'%s' must be an array, not %s", key, tj_type (a));
  *arr = a;
  return SUTRA_OK;
}

SutraStatus
tj_behavior (Ld *l, json_object *o, const char *path, SutraTokBehavior def, SutraTokBehavior *b)
{
  const char *s;
  size_t n;
  SutraStatus st = tj_str (l, o, "behavior", path, &s, &n);
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
  return tj_bad (l, SUTRA_ERR_UNSUPPORTED, path, "behavior '%s' is not supported", s);
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

uint8_t *
tj_b64_decode (const char *s, size_t n, size_t *out_len)
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


json_object *
tj_parse (Ld *l, const char *text, size_t len, const char *what, SutraStatus *st)
{
  if (len > ((size_t) 1 << 30)) {
    *st = tj_bad (l, SUTRA_ERR_FORMAT, what, "file too large (%zu bytes)", len);
    return NULL;
  }
  /* serde_json (what HF uses) is strict: RFC 8259, valid UTF-8, nothing after the value */
  char *name = what && *what ? sutra_xasprintf ("%s: %s", l->tok->name, what)
                             : sutra_xstrdup (l->tok->name);
  json_object *o = NULL;
  *st = sutra_json_parse (text, len, name, SUTRA_JSON_STRICT | SUTRA_JSON_OBJECT, &o, l->err);
  free (name);
  return *st == SUTRA_OK ? o : NULL;
}
