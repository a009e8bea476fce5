/* sutra-json.c: json-c parsing with positioned errors, a duplicate-key scanner and typed
 * getters (see sutra-json.h). */
#include "sutra-json.h"
#include "sutra-fsutil.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JSON_FILE_MAX ((size_t) 64 << 20)
#define SCAN_MAX_DEPTH 64              /* json-c stops at 32; deeper input never gets here */
#define KEY_SHOWN_MAX 120              /* bytes of a key quoted in a message */

static bool
is_ws (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* 1-based line and column (in bytes) of byte offset off. */
static void
line_col (const char *text, size_t len, size_t off, int *line, int *col)
{
  int l = 1;
  size_t last_nl = (size_t) -1;
  if (off > len)
    off = len;
  for (size_t i = 0; i < off; i++)
    if (text[i] == '\n') {
      l++;
      last_nl = i;
    }
  *line = l;
  *col = (int) (off - (last_nl + 1)) + 1;
}

/* A key made safe to quote in a one-line message: control bytes become '?', long keys are
 * cut with "...". Writes into buf. */
static const char *
shown (const char *s, size_t n, char *buf, size_t cap)
{
  size_t o = 0;
  for (size_t i = 0; i < n && o + 4 < cap; i++) {
    if (i == KEY_SHOWN_MAX) {
      memcpy (buf + o, "...", 3);
      o += 3;
      break;
    }
    unsigned char c = (unsigned char) s[i];
    buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
  }
  buf[o] = '\0';
  return buf;
}

/* ---- duplicate-key scanner ----
 * json-c's object keeps the last of two equal keys without telling us, so the raw text is
 * walked once more: every object's keys are decoded (escapes included, so "a" and "\u0061"
 * are the same key), sorted and compared. Runs only on text json-c already accepted. */
typedef struct {
  const char *s;
  size_t n, i;
  /* the problem found, if any */
  const char *what;      /* "duplicate key" or "key contains a NUL character (\\u0000)" */
  char *key;
  size_t key_len, pos;
} Scan;

typedef struct {
  char *key;
  size_t len, pos;
} KeyRec;

static void
skip_ws (Scan *sc)
{
  while (sc->i < sc->n && is_ws (sc->s[sc->i]))
    sc->i++;
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool
read_hex4 (Scan *sc, unsigned *u)
{
  if (sc->i + 4 > sc->n)
    return false;
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexval (sc->s[sc->i + (size_t) k]);
    if (h < 0)
      return false;
    v = v * 16 + (unsigned) h;
  }
  sc->i += 4;
  *u = v;
  return true;
}

static size_t
put_utf8 (char *d, unsigned cp)
{
  if (cp < 0x80) { d[0] = (char) cp; return 1; }
  if (cp < 0x800) { d[0] = (char) (0xc0 | (cp >> 6)); d[1] = (char) (0x80 | (cp & 0x3f)); return 2; }
  if (cp < 0x10000) {
    d[0] = (char) (0xe0 | (cp >> 12)); d[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
    d[2] = (char) (0x80 | (cp & 0x3f));
    return 3;
  }
  d[0] = (char) (0xf0 | (cp >> 18)); d[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
  d[2] = (char) (0x80 | ((cp >> 6) & 0x3f)); d[3] = (char) (0x80 | (cp & 0x3f));
  return 4;
}

/* Decodes the string whose opening quote is at sc->i; NULL when malformed. The decoded form
 * is never longer than the raw one (an escape of 6 bytes gives at most 3, two of 12 give 4). */
static char *
scan_string (Scan *sc, size_t *len_out)
{
  size_t start = ++sc->i;
  size_t end = start;
  while (end < sc->n && sc->s[end] != '"')
    end += sc->s[end] == '\\' ? 2 : 1;
  if (end >= sc->n)
    return NULL;
  char *d = sutra_xmalloc (end - start + 1);
  size_t o = 0;
  while (sc->i < end) {
    char c = sc->s[sc->i++];
    if (c != '\\') {
      d[o++] = c;
      continue;
    }
    char e = sc->s[sc->i++];
    switch (e) {
    case 'b': d[o++] = '\b'; break;
    case 'f': d[o++] = '\f'; break;
    case 'n': d[o++] = '\n'; break;
    case 'r': d[o++] = '\r'; break;
    case 't': d[o++] = '\t'; break;
    case 'u': {
      unsigned cp, lo;
      if (!read_hex4 (sc, &cp)) {
        free (d);
        return NULL;
      }
      /* a high surrogate followed by \uDC00..\uDFFF is one code point (RFC 8259 section 7) */
      if (cp >= 0xd800 && cp < 0xdc00 && sc->i + 6 <= end && sc->s[sc->i] == '\\'
          && sc->s[sc->i + 1] == 'u') {
        size_t save = sc->i;
        sc->i += 2;
        if (read_hex4 (sc, &lo) && lo >= 0xdc00 && lo < 0xe000)
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        else
          sc->i = save;
      }
      o += put_utf8 (d + o, cp);
      break;
    }
    default: d[o++] = e; break;      /* \" \\ \/ */
    }
  }
  sc->i = end + 1;
  d[o] = '\0';
  *len_out = o;
  return d;
}

static int
keyrec_cmp (const void *a, const void *b)
{
  const KeyRec *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp (x->key, y->key, n);
  if (c)
    return c;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Returns 1 when a problem was found (recorded in sc), 0 when the value is fine, -1 when
 * the text is not something this scanner understands (it then gives up silently). */
static int scan_value (Scan *sc, int depth);

static int
scan_object (Scan *sc, int depth)
{
  KeyRec *keys = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  sc->i++;                                   /* '{' */
  skip_ws (sc);
  if (sc->i < sc->n && sc->s[sc->i] == '}') {
    sc->i++;
    return 0;
  }
  for (;;) {
    skip_ws (sc);
    if (sc->i >= sc->n || sc->s[sc->i] != '"') {
      rc = -1;
      break;
    }
    size_t pos = sc->i, klen;
    char *k = scan_string (sc, &klen);
    if (!k) {
      rc = -1;
      break;
    }
    if (memchr (k, '\0', klen)) {
      sc->what = "key contains a NUL character (\\u0000)";
      sc->key = k;
      sc->key_len = klen;
      sc->pos = pos;
      rc = 1;
      break;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      keys = sutra_xrealloc (keys, cap * sizeof *keys);
    }
    keys[n++] = (KeyRec) { k, klen, pos };
    skip_ws (sc);
    if (sc->i >= sc->n || sc->s[sc->i] != ':') {
      rc = -1;
      break;
    }
    sc->i++;
    if ((rc = scan_value (sc, depth + 1)) != 0)
      break;
    skip_ws (sc);
    if (sc->i < sc->n && sc->s[sc->i] == ',') {
      sc->i++;
      continue;
    }
    if (sc->i < sc->n && sc->s[sc->i] == '}') {
      sc->i++;
      break;
    }
    rc = -1;
    break;
  }
  if (rc == 0 && n > 1) {
    qsort (keys, n, sizeof *keys, keyrec_cmp);
    for (size_t j = 1; j < n; j++)
      if (keys[j].len == keys[j - 1].len && !memcmp (keys[j].key, keys[j - 1].key, keys[j].len)) {
        sc->what = "duplicate key";
        sc->key = keys[j].key;       /* the later occurrence */
        sc->key_len = keys[j].len;
        sc->pos = keys[j].pos;
        keys[j].key = NULL;
        rc = 1;
        break;
      }
  }
  for (size_t j = 0; j < n; j++)
    free (keys[j].key);
  free (keys);
  return rc;
}

static int
scan_value (Scan *sc, int depth)
{
  if (depth > SCAN_MAX_DEPTH)
    return -1;
  skip_ws (sc);
  if (sc->i >= sc->n)
    return -1;
  char c = sc->s[sc->i];
  if (c == '{')
    return scan_object (sc, depth);
  if (c == '"') {
    size_t len;
    char *s = scan_string (sc, &len);
    free (s);
    return s ? 0 : -1;
  }
  if (c == '[') {
    sc->i++;
    skip_ws (sc);
    if (sc->i < sc->n && sc->s[sc->i] == ']') {
      sc->i++;
      return 0;
    }
    for (;;) {
      int rc = scan_value (sc, depth + 1);
      if (rc)
        return rc;
      skip_ws (sc);
      if (sc->i < sc->n && sc->s[sc->i] == ',') {
        sc->i++;
        continue;
      }
      if (sc->i < sc->n && sc->s[sc->i] == ']') {
        sc->i++;
        return 0;
      }
      return -1;
    }
  }
  /* number, true, false, null */
  size_t start = sc->i;
  while (sc->i < sc->n && !is_ws (sc->s[sc->i]) && sc->s[sc->i] != ',' && sc->s[sc->i] != ']'
         && sc->s[sc->i] != '}')
    sc->i++;
  return sc->i > start ? 0 : -1;
}

static SutraStatus
check_unique_keys (const char *text, size_t len, const char *name, SutraError *err)
{
  Scan sc = { .s = text, .n = len };
  if (scan_value (&sc, 0) != 1)
    return SUTRA_OK;
  int line, col;
  line_col (text, len, sc.pos, &line, &col);
  char buf[KEY_SHOWN_MAX + 8];
  SutraStatus st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: line %d, column %d: %s \"%s\"",
                                    name, line, col, sc.what,
                                    shown (sc.key, sc.key_len, buf, sizeof buf));
  free (sc.key);
  return st;
}

/* json-c accepts NaN and Infinity even in strict mode; RFC 8259 has neither. */
static bool
has_non_finite (json_object *v)
{
  switch (json_object_get_type (v)) {
  case json_type_double:
    return !isfinite (json_object_get_double (v));
  case json_type_array:
    for (size_t i = 0, n = json_object_array_length (v); i < n; i++)
      if (has_non_finite (json_object_array_get_idx (v, i)))
        return true;
    return false;
  case json_type_object: {
    json_object_object_foreach (v, key, val) {
      (void) key;
      if (has_non_finite (val))
        return true;
    }
    return false;
  }
  default:
    return false;
  }
}

/* ---- parsing ---- */
SutraStatus
sutra_json_parse (const char *text, size_t len, const char *name, unsigned flags,
                  json_object **out, SutraError *err)
{
  if (!name)
    name = "JSON";
  if (len >= INT_MAX)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %zu bytes of JSON is too large", name, len);
  /* json-c needs to see the end of the input to finish a bare top-level number, and the
   * documented way is to pass the terminating NUL; text need not have one, so copy. */
  char *buf = sutra_xmalloc (len + 1);
  if (len)
    memcpy (buf, text, len);
  buf[len] = '\0';
  json_tokener *tok = json_tokener_new_ex (JSON_TOKENER_DEFAULT_DEPTH);
  SUTRA_ASSERT (tok);
  if (flags & SUTRA_JSON_STRICT)
    json_tokener_set_flags (tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  json_object *obj = json_tokener_parse_ex (tok, buf, (int) len + 1);
  enum json_tokener_error jerr = json_tokener_get_error (tok);
  size_t end = json_tokener_get_parse_end (tok);
  json_tokener_free (tok);
  SutraStatus st = SUTRA_OK;
  int line, col;
  if (!obj || jerr != json_tokener_success) {
    json_object_put (obj);
    if (end > len)
      end = len;
    line_col (buf, len, end, &line, &col);
    const char *why = jerr == json_tokener_continue || end >= len
                        ? "unexpected end of data" : json_tokener_error_desc (jerr);
    if (len == 0)
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: empty, expected JSON", name);
    else
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: line %d, column %d: %s", name, line, col,
                            why);
    free (buf);
    return st;
  }
  /* only whitespace may follow the value (a safetensors header is padded with spaces) */
  if (end > len)
    end = len;
  while (end < len && is_ws (buf[end]))
    end++;
  if (end < len) {
    line_col (buf, len, end, &line, &col);
    st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                          "%s: line %d, column %d: unexpected data after the JSON value", name,
                          line, col);
  } else if ((flags & SUTRA_JSON_STRICT) && has_non_finite (obj)) {
    st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: NaN or Infinity is not valid JSON", name);
  } else if ((flags & SUTRA_JSON_OBJECT) && !json_object_is_type (obj, json_type_object)) {
    st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: expected a JSON object at the top level, got %s",
                          name, sutra_json_type_name (obj));
  } else if (flags & SUTRA_JSON_UNIQUE_KEYS) {
    st = check_unique_keys (buf, len, name, err);
  }
  free (buf);
  if (st) {
    json_object_put (obj);
    return st;
  }
  *out = obj;
  return SUTRA_OK;
}

SutraStatus
sutra_json_load (const char *path, unsigned flags, json_object **out, SutraError *err)
{
  char *text;
  size_t len;
  SutraStatus st = sutra_read_file (path, JSON_FILE_MAX, &text, &len, err);
  if (st)
    return st;
  st = sutra_json_parse (text, len, path, flags, out, err);
  free (text);
  return st;
}

/* ---- getters ---- */
const char *
sutra_json_type_name (json_object *v)
{
  switch (json_object_get_type (v)) {
  case json_type_null: return "null";
  case json_type_boolean: return "boolean";
  case json_type_double: return "number";
  case json_type_int: return "integer";
  case json_type_object: return "object";
  case json_type_array: return "array";
  case json_type_string: return "string";
  }
  return "?";
}

/* The value under key, or NULL when obj is NULL, the key is absent or its value is null. */
static json_object *
lookup (json_object *obj, const char *key)
{
  if (!obj)
    return NULL;
  SUTRA_ASSERT (json_object_is_type (obj, json_type_object));
  json_object *v = NULL;
  if (!json_object_object_get_ex (obj, key, &v))
    return NULL;
  return v;                 /* json-c represents null as a NULL json_object */
}

bool
sutra_json_has (json_object *obj, const char *key)
{
  return obj && json_object_is_type (obj, json_type_object) && lookup (obj, key) != NULL;
}

static SutraStatus
type_error (SutraError *err, const char *where, const char *key, const char *expected,
            json_object *got)
{
  if (where)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s: expected %s, got %s", where, key,
                            expected, sutra_json_type_name (got));
  return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: expected %s, got %s", key, expected,
                          sutra_json_type_name (got));
}

/* One integer value (an int, or a double with an integral value in range). */
static SutraStatus
as_int (json_object *v, const char *where, const char *key, int64_t *out, SutraError *err)
{
  if (json_object_is_type (v, json_type_int)) {
    int64_t x = json_object_get_int64 (v);
    /* json-c stores values above INT64_MAX as uint64 and clamps get_int64 */
    if (x == INT64_MAX && json_object_get_uint64 (v) != (uint64_t) INT64_MAX)
      goto range;
    *out = x;
    return SUTRA_OK;
  }
  if (json_object_is_type (v, json_type_double)) {
    double d = json_object_get_double (v);
    if (d != trunc (d) || !isfinite (d))
      return type_error (err, where, key, "an integer", v);
    if (fabs (d) >= 0x1p63)
      goto range;
    *out = (int64_t) d;
    return SUTRA_OK;
  }
  return type_error (err, where, key, "an integer", v);
range:
  return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s%s%s: integer out of range",
                          where ? where : "", where ? ": " : "", key);
}

SutraStatus
sutra_json_get_int (json_object *obj, const char *where, const char *key, int64_t def,
                    int64_t *out, SutraError *err)
{
  json_object *v = lookup (obj, key);
  if (!v) {
    *out = def;
    return SUTRA_OK;
  }
  return as_int (v, where, key, out, err);
}

SutraStatus
sutra_json_get_double (json_object *obj, const char *where, const char *key, double def,
                       double *out, SutraError *err)
{
  json_object *v = lookup (obj, key);
  if (!v) {
    *out = def;
    return SUTRA_OK;
  }
  if (!json_object_is_type (v, json_type_double) && !json_object_is_type (v, json_type_int))
    return type_error (err, where, key, "a number", v);
  *out = json_object_get_double (v);
  return SUTRA_OK;
}

SutraStatus
sutra_json_get_bool (json_object *obj, const char *where, const char *key, bool def, bool *out,
                     SutraError *err)
{
  json_object *v = lookup (obj, key);
  if (!v) {
    *out = def;
    return SUTRA_OK;
  }
  if (!json_object_is_type (v, json_type_boolean))
    return type_error (err, where, key, "true or false", v);
  *out = json_object_get_boolean (v);
  return SUTRA_OK;
}

SutraStatus
sutra_json_get_string (json_object *obj, const char *where, const char *key, const char *def,
                       const char **out, SutraError *err)
{
  json_object *v = lookup (obj, key);
  if (!v) {
    *out = def;
    return SUTRA_OK;
  }
  if (!json_object_is_type (v, json_type_string))
    return type_error (err, where, key, "a string", v);
  *out = json_object_get_string (v);
  return SUTRA_OK;
}

SutraStatus
sutra_json_get_int_array (json_object *obj, const char *where, const char *key, int64_t **out,
                          size_t *n, SutraError *err)
{
  json_object *v = lookup (obj, key);
  if (!v) {
    *out = NULL;
    *n = 0;
    return SUTRA_OK;
  }
  if (!json_object_is_type (v, json_type_array))
    return type_error (err, where, key, "an array of integers", v);
  size_t len = json_object_array_length (v);
  int64_t *a = sutra_xmalloc ((len ? len : 1) * sizeof *a);
  for (size_t i = 0; i < len; i++) {
    char ekey[256];
    snprintf (ekey, sizeof ekey, "%s[%zu]", key, i);
    json_object *e = json_object_array_get_idx (v, i);
    SutraStatus st = e ? as_int (e, where, ekey, &a[i], err)
                       : type_error (err, where, ekey, "an integer", e);
    if (st) {
      free (a);
      return st;
    }
  }
  *out = a;
  *n = len;
  return SUTRA_OK;
}

SutraStatus
sutra_json_get_object (json_object *obj, const char *where, const char *key, json_object **out,
                       SutraError *err)
{
  json_object *v = lookup (obj, key);
  if (v && !json_object_is_type (v, json_type_object))
    return type_error (err, where, key, "an object", v);
  *out = v;
  return SUTRA_OK;
}
