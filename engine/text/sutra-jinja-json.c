/* sutra-jinja-json.c: JSON in and out of template values: json.dumps(x, ensure_ascii, indent,
 * separators, sort_keys) exactly as Python's json module writes it (transformers' tojson filter;
 * floats with repr(), non-ASCII kept unless ensure_ascii, only control characters, quote and
 * backslash escaped), and json-c objects to values (strings repaired to valid UTF-8). */
#include "sutra-jinja-private.h"

#include <json-c/json.h>
#include <math.h>
#include <string.h>

#define MAX_VALUE_DEPTH 400    /* Python: RecursionError */

static void
json_str (JBuf *b, const char *s, size_t n, bool ascii)
{
  jbuf_addc (b, '"');
  for (size_t i = 0; i < n;) {
    size_t start = i;
    uint32_t cp = jn_utf8_next (s, n, &i);
    switch (cp) {
    case '"': jbuf_add (b, "\\\"", 2); continue;
    case '\\': jbuf_add (b, "\\\\", 2); continue;
    case '\n': jbuf_add (b, "\\n", 2); continue;
    case '\r': jbuf_add (b, "\\r", 2); continue;
    case '\t': jbuf_add (b, "\\t", 2); continue;
    case '\b': jbuf_add (b, "\\b", 2); continue;
    case '\f': jbuf_add (b, "\\f", 2); continue;
    default: break;
    }
    if (cp < 0x20 || (ascii && cp >= 0x7f)) {
      if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        jbuf_addf (b, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        jbuf_addf (b, "\\u%04x", cp);
      }
    } else {
      jbuf_add (b, s + start, i - start);
    }
  }
  jbuf_addc (b, '"');
}

static void
json_float (JBuf *b, double f)
{
  if (isnan (f))
    jbuf_add (b, "NaN", 3);
  else if (isinf (f))
    f < 0 ? jbuf_add (b, "-Infinity", 9) : jbuf_add (b, "Infinity", 8);
  else {
    char tmp[32];
    jv_float_repr (f, tmp);
    jbuf_add (b, tmp, strlen (tmp));
  }
}

static void
json_newline (JBuf *b, const JJsonOpts *o, int level)
{
  jbuf_addc (b, '\n');
  for (int i = 0; i < level; i++)
    jbuf_add (b, o->indent, strlen (o->indent));
}

/* Sort order of dict items for sort_keys (insertion sort: dicts here are small). */
static size_t *
sorted_order (JBuf *b, const JDict *d, int line)
{
  size_t *idx = jn_alloc (b->r, (d->n ? d->n : 1) * sizeof *idx);
  for (size_t i = 0; i < d->n; i++) {
    size_t j = i;
    while (j > 0 && jv_cmp (b->r, OP_LT, d->keys[i], d->keys[idx[j - 1]], line)) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = i;
  }
  return idx;
}

void
jv_json_into (JBuf *b, JVal v, const JJsonOpts *o, int depth, int line)
{
  if (depth > MAX_VALUE_DEPTH)
    jn_fail (b->r, SUTRA_ERR_FORMAT, line, "maximum recursion depth exceeded while encoding a "
             "JSON object");
  switch (v.t) {
  case JV_NONE: jbuf_add (b, "null", 4); return;
  case JV_BOOL: v.v.b ? jbuf_add (b, "true", 4) : jbuf_add (b, "false", 5); return;
  case JV_INT: jbuf_addf (b, "%lld", (long long) v.v.i); return;
  case JV_FLOAT: json_float (b, v.v.f); return;
  case JV_STR: json_str (b, v.v.s->data, v.v.s->len, o->ensure_ascii); return;
  case JV_LIST: {
    JList *l = v.v.l;
    if (l->kind != LK_PLAIN)
      jn_fail (b->r, SUTRA_ERR_FORMAT, line, "Object of type %s is not JSON serializable",
               l->name);
    if (l->n == 0) {
      jbuf_add (b, "[]", 2);
      return;
    }
    jbuf_addc (b, '[');
    for (size_t i = 0; i < l->n; i++) {
      if (i)
        jbuf_add (b, o->item_sep, strlen (o->item_sep));
      if (o->indent)
        json_newline (b, o, depth + 1);
      jv_json_into (b, l->items[i], o, depth + 1, line);
    }
    if (o->indent)
      json_newline (b, o, depth);
    jbuf_addc (b, ']');
    return;
  }
  case JV_DICT: {
    JDict *d = v.v.d;
    if (d->n == 0) {
      jbuf_add (b, "{}", 2);
      return;
    }
    size_t *order = o->sort_keys ? sorted_order (b, d, line) : NULL;
    jbuf_addc (b, '{');
    for (size_t k = 0; k < d->n; k++) {
      size_t i = order ? order[k] : k;
      JVal key = d->keys[i];
      if (k)
        jbuf_add (b, o->item_sep, strlen (o->item_sep));
      if (o->indent)
        json_newline (b, o, depth + 1);
      if (key.t == JV_STR) {
        json_str (b, key.v.s->data, key.v.s->len, o->ensure_ascii);
      } else if (key.t == JV_INT || key.t == JV_BOOL || key.t == JV_NONE) {
        jbuf_addc (b, '"');
        if (key.t == JV_INT)
          jbuf_addf (b, "%lld", (long long) key.v.i);
        else if (key.t == JV_NONE)
          jbuf_add (b, "null", 4);
        else
          key.v.b ? jbuf_add (b, "true", 4) : jbuf_add (b, "false", 5);
        jbuf_addc (b, '"');
      } else if (key.t == JV_FLOAT) {
        jbuf_addc (b, '"');
        json_float (b, key.v.f);
        jbuf_addc (b, '"');
      } else {
        jn_fail (b->r, SUTRA_ERR_FORMAT, line, "keys must be str, int, float, bool or None, "
                 "not %s", jv_type_name (key));
      }
      jbuf_add (b, o->key_sep, strlen (o->key_sep));
      jv_json_into (b, d->vals[i], o, depth + 1, line);
    }
    if (o->indent)
      json_newline (b, o, depth);
    jbuf_addc (b, '}');
    return;
  }
  default:
    if (v.t == JV_UNDEF)
      jn_fail (b->r, SUTRA_ERR_FORMAT, line, "Object of type Undefined is not JSON serializable");
    jn_fail (b->r, SUTRA_ERR_FORMAT, line, "Object of type %s is not JSON serializable",
             jv_type_name (v));
  }
}

JVal
jv_from_json (JnRun *r, const struct json_object *co, int depth)
{
  struct json_object *o = (struct json_object *) co;   /* json-c getters are not const */
  if (depth > MAX_VALUE_DEPTH)
    jn_fail (r, SUTRA_ERR_INVALID, 0, "template variables nest too deeply");
  switch (json_object_get_type (o)) {
  case json_type_null: return jv_none ();
  case json_type_boolean: return jv_bool (json_object_get_boolean (o));
  case json_type_int: return jv_int (json_object_get_int64 (o));
  case json_type_double: return jv_float (json_object_get_double (o));
  case json_type_string: {
    size_t n;
    const char *s = json_object_get_string (o);
    size_t len = (size_t) json_object_get_string_len (o);
    char *clean = jn_utf8_sanitize (r, s, len, &n);
    JVal v = jv_str (r, clean, n);
    return v;
  }
  case json_type_array: {
    size_t n = json_object_array_length (o);
    JVal l = jv_list (r, n, false);
    for (size_t i = 0; i < n; i++)
      l.v.l->items[i] = jv_from_json (r, json_object_array_get_idx (o, i), depth + 1);
    return l;
  }
  case json_type_object: {
    JVal d = jv_dict (r);
    json_object_object_foreach (o, key, val) {
      size_t kn;
      char *k = jn_utf8_sanitize (r, key, strlen (key), &kn);
      jdict_set (r, d.v.d, jv_str (r, k, kn), jv_from_json (r, val, depth + 1));
    }
    return d;
  }
  default:
    return jv_none ();
  }
}
