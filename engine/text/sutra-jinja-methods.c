/* sutra-jinja-methods.c: Python methods of str, dict and list/tuple callable from templates
 * (message.content.strip(), d.items(), s.split('x') ...), with the ImmutableSandboxedEnvironment
 * rule that mutating methods (list.append, dict.update ...) are unsafe, plus printf-style
 * `str % args` and a subset of str.format (positional/keyword fields, !r/!s, basic specs). */
#include "sutra-jinja-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static const char *const STR_METHODS[] = {
  "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find",
  "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
  "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join",
  "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix", "removesuffix",
  "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
  "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill", NULL,
};
static const char *const DICT_SAFE[] = { "copy", "fromkeys", "get", "items", "keys", "values",
                                         NULL };
static const char *const DICT_UNSAFE[] = { "clear", "pop", "popitem", "setdefault", "update",
                                           NULL };
static const char *const LIST_SAFE[] = { "copy", "count", "index", NULL };
static const char *const LIST_UNSAFE[] = { "append", "clear", "extend", "insert", "pop",
                                           "remove", "reverse", "sort", NULL };

static bool
in_list (const char *const *l, const char *name)
{
  for (int i = 0; l[i]; i++)
    if (strcmp (l[i], name) == 0)
      return true;
  return false;
}

bool
jn_has_method (JVal self, const char *name, bool *unsafe)
{
  *unsafe = false;
  switch (self.t) {
  case JV_STR:
    return in_list (STR_METHODS, name);
  case JV_DICT:
    if (in_list (DICT_UNSAFE, name))
      return *unsafe = true;
    return in_list (DICT_SAFE, name);
  case JV_LIST:
    if (self.v.l->tuple)
      return !strcmp (name, "count") || !strcmp (name, "index");
    if (in_list (LIST_UNSAFE, name))
      return *unsafe = true;
    return in_list (LIST_SAFE, name);
  default:
    return false;
  }
}

static JVal
marg (const JnCallArgs *a, size_t i, const char *name, JVal def)
{
  if (i < a->n)
    return a->v[i];
  for (size_t k = 0; k < a->nkw; k++)
    if (name && strcmp (a->kw[k], name) == 0)
      return a->kwv[k];
  return def;
}

static void
max_args (JnCtx *c, const JnCallArgs *a, size_t max, const char *type, const char *name,
          int line)
{
  if (a->n > max)
    jn_fail (jn_ctx_run (c), SUTRA_ERR_FORMAT, line, "%s.%s() takes at most %zu arguments (%zu "
             "given)", type, name, max, a->n);
}

static JStr *
need_str (JnCtx *c, JVal v, const char *what, int line)
{
  if (v.t == JV_UNDEF)
    jn_fail_undefined (c, v, line);
  if (v.t != JV_STR)
    jn_fail (jn_ctx_run (c), SUTRA_ERR_FORMAT, line, "%s must be str, not %s", what,
             jv_type_name (v));
  return v.v.s;
}

static int64_t
need_int (JnCtx *c, JVal v, const char *what, int line)
{
  if (v.t == JV_INT)
    return v.v.i;
  if (v.t == JV_BOOL)
    return v.v.b;
  if (v.t == JV_UNDEF)
    jn_fail_undefined (c, v, line);
  jn_fail (jn_ctx_run (c), SUTRA_ERR_FORMAT, line, "'%s' object cannot be interpreted as an "
           "integer (%s)", jv_type_name (v), what);
}

/* Python slice bounds for str.find(sub, start, end) etc.: clamps to [0, len]. */
static void
bounds (JnCtx *c, const JnCallArgs *a, size_t first, int64_t len, int64_t *lo, int64_t *hi,
        int line)
{
  JVal s = marg (a, first, NULL, jv_none ()), e = marg (a, first + 1, NULL, jv_none ());
  *lo = 0;
  *hi = len;
  if (s.t != JV_NONE) {
    *lo = need_int (c, s, "start", line);
    if (*lo < 0)
      *lo = *lo + len < 0 ? 0 : *lo + len;
  }
  if (e.t != JV_NONE) {
    *hi = need_int (c, e, "end", line);
    if (*hi < 0)
      *hi = *hi + len < 0 ? 0 : *hi + len;
  }
  if (*hi > len)
    *hi = len;
}

static JStr *
substr_cp (JnRun *r, JStr *s, int64_t lo, int64_t hi)
{
  if (lo >= hi)
    return jv_str (r, "", 0).v.s;
  return jn_str_slice (r, s, lo, 1, hi - lo).v.s;
}

static JVal
pad (JnCtx *c, JStr *s, int64_t width, JVal fill, int how, int line)
{
  JnRun *r = jn_ctx_run (c);
  const char *f = " ";
  size_t fl = 1;
  if (fill.t != JV_UNDEF) {
    JStr *fs = need_str (c, fill, "fill character", line);
    if (jstr_ncp (fs) != 1)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "The fill character must be exactly one character "
               "long");
    f = fs->data;
    fl = fs->len;
  }
  int64_t len = jstr_ncp (s);
  if (width > (1 << 20))
    jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "padding width too large");
  if (width <= len)
    return (JVal) { .t = JV_STR, .v.s = s };
  int64_t marg_ = width - len, left;
  if (how == 'l')
    left = 0;
  else if (how == 'r')
    left = marg_;
  else
    left = marg_ / 2 + (marg_ & width & 1);
  JBuf b;
  jbuf_init (&b, r, (size_t) -1);
  for (int64_t i = 0; i < left; i++)
    jbuf_add (&b, f, fl);
  jbuf_add (&b, s->data, s->len);
  for (int64_t i = 0; i < marg_ - left; i++)
    jbuf_add (&b, f, fl);
  return jbuf_to_str (&b);
}

static bool
affix_match (JnCtx *c, JStr *s, JVal affix, bool end, int64_t lo, int64_t hi, int line)
{
  JnRun *r = jn_ctx_run (c);
  JStr *sub = substr_cp (r, s, lo, hi);
  if (lo > jstr_ncp (s))
    return false;
  if (affix.t == JV_LIST && affix.v.l->tuple) {
    for (size_t i = 0; i < affix.v.l->n; i++)
      if (affix_match (c, sub, affix.v.l->items[i], end, 0, jstr_ncp (sub), line))
        return true;
    return false;
  }
  if (affix.t == JV_UNDEF)
    jn_fail_undefined (c, affix, line);
  if (affix.t != JV_STR)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "%s first arg must be str or a tuple of str, not %s",
             end ? "endswith" : "startswith", jv_type_name (affix));
  JStr *p = affix.v.s;
  if (p->len > sub->len)
    return false;
  return memcmp (end ? sub->data + sub->len - p->len : sub->data, p->data, p->len) == 0;
}

JVal jn_str_format (JnCtx *c, JStr *fmt, const JnCallArgs *a, int line);

static JVal
str_method (JnCtx *c, JStr *s, const char *name, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  JVal self = { .t = JV_STR, .v.s = s };
  if (!strcmp (name, "strip") || !strcmp (name, "lstrip") || !strcmp (name, "rstrip")) {
    max_args (c, a, 1, "str", name, line);
    return jn_str_strip (r, s, marg (a, 0, NULL, jv_none ()), name[0] != 'r', name[0] != 'l',
                         line);
  }
  if (!strcmp (name, "split") || !strcmp (name, "rsplit")) {
    max_args (c, a, 2, "str", name, line);
    JVal sep = marg (a, 0, "sep", jv_none ());
    int64_t maxsplit = need_int (c, marg (a, 1, "maxsplit", jv_int (-1)), "maxsplit", line);
    return jn_str_split (r, s, sep, maxsplit, name[0] == 'r', line);
  }
  if (!strcmp (name, "splitlines"))
    return jn_str_splitlines (r, s, jv_truthy (marg (a, 0, "keepends", jv_bool (false))));
  if (!strcmp (name, "startswith") || !strcmp (name, "endswith")) {
    max_args (c, a, 3, "str", name, line);
    int64_t lo, hi;
    bounds (c, a, 1, jstr_ncp (s), &lo, &hi, line);
    return jv_bool (affix_match (c, s, marg (a, 0, NULL, jv_undef ()), name[0] == 'e', lo, hi,
                                 line));
  }
  if (!strcmp (name, "upper")) return jn_str_upper (r, s);
  if (!strcmp (name, "lower") || !strcmp (name, "casefold")) return jn_str_lower (r, s);
  if (!strcmp (name, "title")) return jn_str_title (r, s);
  if (!strcmp (name, "capitalize")) return jn_str_capitalize (r, s);
  if (!strcmp (name, "swapcase")) return jn_str_swapcase (r, s);
  if (!strcmp (name, "replace")) {
    max_args (c, a, 3, "str", name, line);
    JStr *old = need_str (c, marg (a, 0, NULL, jv_undef ()), "replace() argument 1", line);
    JStr *rep = need_str (c, marg (a, 1, NULL, jv_undef ()), "replace() argument 2", line);
    int64_t count = need_int (c, marg (a, 2, "count", jv_int (-1)), "count", line);
    JVal out = jn_str_replace (r, s, old, rep, count);
    jn_step (c, out.v.s->len / 64, line);
    return out;
  }
  if (!strcmp (name, "find") || !strcmp (name, "rfind") || !strcmp (name, "index") ||
      !strcmp (name, "rindex") || !strcmp (name, "count")) {
    max_args (c, a, 3, "str", name, line);
    JStr *sub = need_str (c, marg (a, 0, NULL, jv_undef ()), "substring", line);
    int64_t lo, hi;
    bounds (c, a, 1, jstr_ncp (s), &lo, &hi, line);
    JStr *win = substr_cp (r, s, lo, hi);
    if (name[0] == 'c')
      return jv_int (lo > jstr_ncp (s) ? 0 : jn_str_count (win, sub));
    int64_t at = lo > jstr_ncp (s) ? -1 : jn_str_find (win, sub, name[0] == 'r');
    if (at < 0 && name[name[0] == 'r' ? 1 : 0] == 'i')
      jn_fail (r, SUTRA_ERR_FORMAT, line, "substring not found");
    return jv_int (at < 0 ? -1 : at + lo);
  }
  if (!strcmp (name, "join")) {
    max_args (c, a, 1, "str", name, line);
    JList *items = jn_iterate (c, marg (a, 0, NULL, jv_undef ()), line);
    JBuf b;
    jbuf_init (&b, r, jn_max_output (c));
    for (size_t i = 0; i < items->n; i++) {
      if (items->items[i].t != JV_STR)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "sequence item %zu: expected str instance, %s found",
                 i, jv_type_name (items->items[i]));
      if (i)
        jbuf_add (&b, s->data, s->len);
      jbuf_add (&b, items->items[i].v.s->data, items->items[i].v.s->len);
    }
    jn_step (c, b.n / 64 + items->n, line);
    return jbuf_to_str (&b);
  }
  if (!strncmp (name, "is", 2)) {
    if (!strcmp (name, "isidentifier")) {
      if (s->len == 0)
        return jv_bool (false);
      size_t i = 0;
      bool ok = true;
      for (bool first = true; i < s->len && ok; first = false) {
        uint32_t cp = jn_utf8_next (s->data, s->len, &i);
        utf8proc_category_t cat = utf8proc_category ((utf8proc_int32_t) cp);
        bool letter = cp == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO);
        ok = letter || (!first && (cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_MN ||
                                   cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_PC));
      }
      return jv_bool (ok);
    }
    if (!strcmp (name, "isprintable")) {
      JBuf b;
      jbuf_init (&b, r, (size_t) -1);
      jv_repr_into (&b, self, 0);
      return jv_bool (b.n == s->len + 2 && memchr (s->data, '\\', s->len) == NULL);
    }
    return jv_bool (jn_str_is (s, name + 2));
  }
  if (!strcmp (name, "center") || !strcmp (name, "ljust") || !strcmp (name, "rjust")) {
    max_args (c, a, 2, "str", name, line);
    int64_t w = need_int (c, marg (a, 0, NULL, jv_undef ()), "width", line);
    return pad (c, s, w, marg (a, 1, NULL, jv_undef ()), name[0] == 'c' ? 'c' : name[0], line);
  }
  if (!strcmp (name, "zfill")) {
    int64_t w = need_int (c, marg (a, 0, NULL, jv_undef ()), "width", line);
    int64_t len = jstr_ncp (s);
    if (w > (1 << 20))
      jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "zfill width too large");
    if (w <= len)
      return self;
    JBuf b;
    jbuf_init (&b, r, (size_t) -1);
    size_t i = 0;
    if (s->len && (s->data[0] == '+' || s->data[0] == '-'))
      jbuf_addc (&b, s->data[i++]);
    for (int64_t k = 0; k < w - len; k++)
      jbuf_addc (&b, '0');
    jbuf_add (&b, s->data + i, s->len - i);
    return jbuf_to_str (&b);
  }
  if (!strcmp (name, "partition") || !strcmp (name, "rpartition")) {
    JStr *sep = need_str (c, marg (a, 0, NULL, jv_undef ()), "separator", line);
    if (sep->len == 0)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "empty separator");
    JList *parts = jn_str_split (r, s, (JVal) { .t = JV_STR, .v.s = sep }, 1, name[0] == 'r',
                                 line).v.l;
    JVal t = jv_list (r, 3, true);
    if (parts->n == 2) {
      t.v.l->items[0] = parts->items[0];
      t.v.l->items[1] = (JVal) { .t = JV_STR, .v.s = sep };
      t.v.l->items[2] = parts->items[1];
    } else {
      JVal empty = jv_str (r, "", 0);
      t.v.l->items[0] = name[0] == 'r' ? empty : self;
      t.v.l->items[1] = empty;
      t.v.l->items[2] = name[0] == 'r' ? self : empty;
    }
    return t;
  }
  if (!strcmp (name, "removeprefix") || !strcmp (name, "removesuffix")) {
    JStr *p = need_str (c, marg (a, 0, NULL, jv_undef ()), name, line);
    bool pre = name[6] == 'p';
    if (p->len <= s->len &&
        memcmp (pre ? s->data : s->data + s->len - p->len, p->data, p->len) == 0)
      return jv_str (r, pre ? s->data + p->len : s->data, s->len - p->len);
    return self;
  }
  if (!strcmp (name, "format"))
    return jn_str_format (c, s, a, line);
  jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "str.%s() is not supported", name);
}

/* A method of a Markup, as markupsafe 3.0 defines them: the str-returning ones return Markup;
 * replace escapes its new text, ljust/rjust/center their fill character, format its arguments
 * and join its items; split & co return lists of Markup. */
static JVal
markup_method (JnCtx *c, JStr *self, const char *name, const JnCallArgs *a, int line)
{
  static const char *const RETURNS_MARKUP[] = {
    "capitalize", "title", "lower", "upper", "casefold", "replace", "ljust", "rjust", "center",
    "lstrip", "rstrip", "strip", "swapcase", "zfill", "format", "join", "removeprefix",
    "removesuffix", NULL,
  };
  static const char *const RETURNS_LIST[] = { "split", "rsplit", "splitlines", "partition",
                                              "rpartition", NULL };
  JnRun *r = jn_ctx_run (c);
  JnCallArgs ea = *a;
  ea.v = jn_alloc (r, (a->n + 1) * sizeof (JVal));
  ea.kwv = jn_alloc (r, (a->nkw + 1) * sizeof (JVal));
  memcpy (ea.v, a->v, a->n * sizeof (JVal));
  memcpy (ea.kwv, a->kwv, a->nkw * sizeof (JVal));
  size_t from = 0, to = 0;                  /* positional arguments to escape: [from, to) */
  if (!strcmp (name, "replace") || !strcmp (name, "ljust") || !strcmp (name, "rjust") ||
      !strcmp (name, "center")) {
    from = 1;
    to = 2;
  } else if (!strcmp (name, "format")) {
    to = ea.n;
    for (size_t i = 0; i < ea.nkw; i++)
      if (ea.kwv[i].t == JV_STR && !ea.kwv[i].markup)
        ea.kwv[i].v.s = jn_html_escape (r, ea.kwv[i].v.s);
  } else if (!strcmp (name, "join") && ea.n >= 1) {
    JList *items = jn_iterate (c, ea.v[0], line);
    JVal esc = jv_list (r, items->n, false);
    for (size_t i = 0; i < items->n; i++) {
      JVal it = items->items[i];
      esc.v.l->items[i] = it;                 /* escape(x) also stringifies non-strings */
      if (!(it.t == JV_STR && it.markup)) {
        esc.v.l->items[i].t = JV_STR;
        esc.v.l->items[i].v.s = jn_html_escape (r, jv_to_str (r, it).v.s);
      }
    }
    ea.v[0] = esc;
  }
  for (size_t i = from; i < to && i < ea.n; i++)
    if (ea.v[i].t == JV_STR && !ea.v[i].markup)
      ea.v[i].v.s = jn_html_escape (r, ea.v[i].v.s);
  JVal res = str_method (c, self, name, &ea, line);
  if (res.t == JV_STR && in_list (RETURNS_MARKUP, name))
    res.markup = 1;
  else if (res.t == JV_LIST && in_list (RETURNS_LIST, name)) {
    JVal copy = jv_list (r, res.v.l->n, res.v.l->tuple);
    for (size_t i = 0; i < res.v.l->n; i++)
      copy.v.l->items[i] = jv_as_markup (res.v.l->items[i], true);
    res = copy;
  }
  return res;
}

JVal
jn_call_method (JnCtx *c, JVal self, const char *name, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  jn_step (c, 1, line);
  if (self.t == JV_STR)
    return self.markup ? markup_method (c, self.v.s, name, a, line)
                       : str_method (c, self.v.s, name, a, line);
  if (self.t == JV_DICT) {
    JDict *d = self.v.d;
    if (!strcmp (name, "get")) {
      max_args (c, a, 2, "dict", name, line);
      JVal key = marg (a, 0, NULL, jv_undef ());
      if (!jv_hashable (key))
        jn_fail (r, SUTRA_ERR_FORMAT, line, "unhashable type: '%s'", jv_type_name (key));
      JVal *v = jdict_get (d, key);
      return v ? *v : marg (a, 1, NULL, jv_none ());
    }
    if (!strcmp (name, "items") || !strcmp (name, "keys") || !strcmp (name, "values")) {
      JVal out = jv_list (r, d->n, false);
      for (size_t i = 0; i < d->n; i++) {
        if (name[0] == 'k') {
          out.v.l->items[i] = d->keys[i];
        } else if (name[0] == 'v') {
          out.v.l->items[i] = d->vals[i];
        } else {
          JVal t = jv_list (r, 2, true);
          t.v.l->items[0] = d->keys[i];
          t.v.l->items[1] = d->vals[i];
          out.v.l->items[i] = t;
        }
      }
      return jv_list_as (r, out, LK_VIEW, name[0] == 'k' ? "dict_keys" : name[0] == 'v'
                                            ? "dict_values" : "dict_items");
    }
    if (!strcmp (name, "copy")) {
      JVal out = jv_dict (r);
      for (size_t i = 0; i < d->n; i++)
        jdict_set (r, out.v.d, d->keys[i], d->vals[i]);
      return out;
    }
    jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "dict.%s() is not supported", name);
  }
  if (self.t == JV_LIST) {
    JList *l = self.v.l;
    if (!strcmp (name, "copy")) {
      JVal out = jv_list (r, l->n, false);
      memcpy (out.v.l->items, l->items, l->n * sizeof (JVal));
      return out;
    }
    JVal x = marg (a, 0, NULL, jv_undef ());
    if (a->n < 1)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "%s() takes at least 1 argument", name);
    if (!strcmp (name, "count")) {
      int64_t n = 0;
      for (size_t i = 0; i < l->n; i++)
        n += jv_equal (r, x, l->items[i]);
      return jv_int (n);
    }
    int64_t lo, hi;
    bounds (c, a, 1, (int64_t) l->n, &lo, &hi, line);
    for (int64_t i = lo; i < hi; i++)
      if (jv_equal (r, x, l->items[i]))
        return jv_int (i);
    JBuf b;
    jbuf_init (&b, r, 200);
    jv_repr_into (&b, x, 0);
    jn_fail (r, SUTRA_ERR_FORMAT, line, "%s is not in %s", b.p ? b.p : "?",
             l->tuple ? "tuple" : "list");
  }
  jn_fail (r, SUTRA_ERR_FORMAT, line, "'%s' object has no method '%s'", jv_type_name (self), name);
}

/* ---- printf-style formatting: fmt % args ------------------------------------------------- */

static void
pad_field (JBuf *b, const char *s, size_t n, int64_t width, bool left, char fill)
{
  int64_t cps = 0;
  for (size_t i = 0; i < n; i++)
    cps += ((unsigned char) s[i] & 0xC0) != 0x80;
  if (!left)
    for (int64_t i = cps; i < width; i++)
      jbuf_addc (b, fill);
  jbuf_add (b, s, n);
  if (left)
    for (int64_t i = cps; i < width; i++)
      jbuf_addc (b, ' ');
}

JVal
jn_percent_format (JnCtx *c, JStr *fmt, JVal args, bool escape_args, int line)
{
  JnRun *r = jn_ctx_run (c);
  bool is_tuple = args.t == JV_LIST && args.v.l->tuple && args.v.l->kind == LK_PLAIN;
  /* CPython treats any non-tuple, non-str object with __getitem__ as a mapping here: no
   * "not all arguments converted" error for it */
  bool is_map = args.t == JV_DICT || args.t == JV_UNDEF ||
                (args.t == JV_LIST && !is_tuple && args.v.l->kind != LK_GEN &&
                 args.v.l->kind != LK_ITER && args.v.l->kind != LK_VIEW);
  size_t nargs = is_tuple ? args.v.l->n : 1, next = 0;
  JBuf b;
  jbuf_init (&b, r, jn_max_output (c));
  const char *s = fmt->data;
  size_t n = fmt->len;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      jbuf_addc (&b, s[i]);
      continue;
    }
    if (++i >= n)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "incomplete format");
    JVal v = jv_undef ();
    bool have = false;
    if (s[i] == '(') {
      size_t j = i + 1;
      while (j < n && s[j] != ')')
        j++;
      if (j >= n)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "incomplete format key");
      if (args.t != JV_DICT)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "format requires a mapping");
      JVal *p = jdict_get (args.v.d, jv_str (r, s + i + 1, j - i - 1));
      if (!p)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "KeyError: '%.*s'", (int) (j - i - 1), s + i + 1);
      v = *p;
      have = true;
      i = j + 1;
    }
    bool left = false, plus = false, space = false, zero = false, alt = false;
    for (; i < n && strchr ("-+ 0#", s[i]); i++) {
      if (s[i] == '-') left = true;
      else if (s[i] == '+') plus = true;
      else if (s[i] == ' ') space = true;
      else if (s[i] == '0') zero = true;
      else alt = true;
    }
    int64_t width = 0, prec = -1;
    while (i < n && s[i] >= '0' && s[i] <= '9' && width < 100000)
      width = width * 10 + (s[i++] - '0');
    if (i < n && s[i] == '.') {
      i++;
      prec = 0;
      while (i < n && s[i] >= '0' && s[i] <= '9' && prec < 1000)
        prec = prec * 10 + (s[i++] - '0');
    }
    if (width > 100000 || prec > 1000)
      jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "format width or precision too large");
    if (i >= n)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "incomplete format");
    char conv = s[i];
    if (conv == '%') {
      jbuf_addc (&b, '%');
      continue;
    }
    if (!have) {
      if (!is_tuple && next >= 1 && !is_map)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "not enough arguments for format string");
      if (!is_tuple)
        v = args;
      else if (next >= nargs)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "not enough arguments for format string");
      else
        v = is_tuple ? args.v.l->items[next] : args;
      next++;
    }
    char spec[64], tmp[1200];
    int sl = snprintf (spec, sizeof spec, "%%%s%s%s%s%s", left ? "-" : "", plus ? "+" : "",
                       space ? " " : "", zero && !left ? "0" : "", alt ? "#" : "");
    switch (conv) {
    case 's':
    case 'r':
    case 'a': {
      JBuf t;
      jbuf_init (&t, r, (size_t) -1);
      if (conv == 's')
        jv_str_into (&t, v);
      else
        jv_repr_into (&t, v, 0);
      if (escape_args && !(conv == 's' && v.t == JV_STR && v.markup)) {
        JStr *e = jn_html_escape (r, jbuf_to_str (&t).v.s);   /* markupsafe's escape helper */
        jbuf_init (&t, r, (size_t) -1);
        jbuf_add (&t, e->data, e->len);
      }
      size_t len = t.n;
      if (prec >= 0) {                      /* precision counts code points */
        size_t k = 0;
        for (int64_t cp = 0; k < t.n && cp < prec; cp++)
          jn_utf8_next (t.p, t.n, &k);
        len = k;
      }
      pad_field (&b, t.p ? t.p : "", len, width, left, ' ');
      break;
    }
    case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': case 'c': {
      int64_t iv;
      if (v.t == JV_INT) iv = v.v.i;
      else if (v.t == JV_BOOL) iv = v.v.b;
      else if (v.t == JV_FLOAT && conv != 'c' && (conv == 'd' || conv == 'i' || conv == 'u')) {
        if (!isfinite (v.v.f) || fabs (v.v.f) > 9.2e18)
          jn_fail (r, SUTRA_ERR_FORMAT, line, "cannot convert float to integer");
        iv = (int64_t) v.v.f;
      } else if (conv == 'c' && v.t == JV_STR && jstr_ncp (v.v.s) == 1) {
        pad_field (&b, v.v.s->data, v.v.s->len, width, left, ' ');
        break;
      } else {
        if (v.t == JV_UNDEF)
          jn_fail_undefined (c, v, line);
        jn_fail (r, SUTRA_ERR_FORMAT, line, "%%%c format: a real number is required, not %s",
                 conv, jv_type_name (v));
      }
      if (conv == 'c') {
        if (iv < 0 || iv > 0x10FFFF)
          jn_fail (r, SUTRA_ERR_FORMAT, line, "%%c arg not in range(0x110000)");
        char u[4];
        size_t k = jn_utf8_put (u, (uint32_t) iv);
        pad_field (&b, u, k, width, left, ' ');
        break;
      }
      char cv = conv == 'i' || conv == 'u' ? 'd' : conv;
      if (prec >= 0)
        snprintf (spec + sl, sizeof spec - (size_t) sl, "%lld.%lldll%c", (long long) width,
                  (long long) prec, cv);
      else
        snprintf (spec + sl, sizeof spec - (size_t) sl, "%lldll%c", (long long) width, cv);
      bool neg = iv < 0 && cv != 'd';
      long long pv = neg ? -(long long) iv : (long long) iv;
      int k = snprintf (tmp, sizeof tmp, spec, pv);
      if (neg) {                            /* Python prints -0x1f, C has no signed hex */
        jbuf_addc (&b, '-');
      }
      if (alt && cv == 'o') {               /* Python's alternate octal is 0o */
        char *z = strchr (tmp, '0');
        if (z) {
          memmove (z + 2, z + 1, strlen (z + 1) + 1);
          z[1] = 'o';
          k++;
        }
      }
      jbuf_add (&b, tmp, (size_t) (k > 0 ? k : 0));
      break;
    }
    case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
      double fv;
      if (v.t == JV_FLOAT) fv = v.v.f;
      else if (v.t == JV_INT) fv = (double) v.v.i;
      else if (v.t == JV_BOOL) fv = v.v.b;
      else {
        if (v.t == JV_UNDEF)
          jn_fail_undefined (c, v, line);
        jn_fail (r, SUTRA_ERR_FORMAT, line, "must be real number, not %s", jv_type_name (v));
      }
      snprintf (spec + sl, sizeof spec - (size_t) sl, "%lld.%lld%c", (long long) width,
                (long long) (prec < 0 ? 6 : prec), conv);
      int k = snprintf (tmp, sizeof tmp, spec, fv);
      jbuf_add (&b, tmp, (size_t) (k > 0 ? (size_t) k < sizeof tmp ? k : (int) sizeof tmp - 1 : 0));
      break;
    }
    default:
      jn_fail (r, SUTRA_ERR_FORMAT, line, "unsupported format character '%c'", conv);
    }
  }
  if (!is_map && next < nargs)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "not all arguments converted during string formatting");
  return jv_as_markup (jbuf_to_str (&b), escape_args);
}

/* ---- str.format: {} {0} {name} with !r/!s and [[fill]align][width][.prec][type] ---------- */

static void
format_one (JnCtx *c, JBuf *b, JVal v, const char *spec, size_t sn, char conv, int line)
{
  JnRun *r = jn_ctx_run (c);
  JBuf t;
  jbuf_init (&t, r, (size_t) -1);
  char fill = ' ', align = 0, type = 0;
  int64_t width = 0, prec = -1;
  size_t i = 0;
  if (sn >= 2 && strchr ("<>^=", spec[1])) {
    fill = spec[0];
    align = spec[1];
    i = 2;
  } else if (sn >= 1 && strchr ("<>^=", spec[0])) {
    align = spec[0];
    i = 1;
  }
  if (i < sn && spec[i] == '0' && !align) {
    fill = '0';
    align = '=';
    i++;
  }
  while (i < sn && spec[i] >= '0' && spec[i] <= '9' && width < 100000)
    width = width * 10 + (spec[i++] - '0');
  if (i < sn && spec[i] == '.') {
    i++;
    prec = 0;
    while (i < sn && spec[i] >= '0' && spec[i] <= '9' && prec < 1000)
      prec = prec * 10 + (spec[i++] - '0');
  }
  if (i < sn)
    type = spec[i++];
  if (i < sn || width > 100000 || prec > 1000)
    jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "str.format spec '%.*s' is not supported", (int) sn,
             spec);
  if (conv == 'r' || conv == 'a') {
    JBuf q;
    jbuf_init (&q, r, (size_t) -1);
    jv_repr_into (&q, v, 0);
    v = jbuf_to_str (&q);
  } else if (conv == 's')
    v = jv_to_str (r, v);
  bool numeric = v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
  char tmp[1200];
  if (type == 0 || type == 's') {
    if (type == 's' && v.t != JV_STR)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "Unknown format code 's' for object of type '%s'",
               jv_type_name (v));
    jv_str_into (&t, v);
    if (prec >= 0 && v.t == JV_STR) {
      size_t k = 0;
      for (int64_t cp = 0; k < t.n && cp < prec; cp++)
        jn_utf8_next (t.p, t.n, &k);
      t.n = k;
    }
  } else if (strchr ("dxXob", type)) {
    if (v.t != JV_INT && v.t != JV_BOOL)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "Unknown format code '%c' for object of type '%s'",
               type, jv_type_name (v));
    int64_t iv = v.t == JV_INT ? v.v.i : v.v.b;
    if (type == 'b') {
      char bits[80];
      int k = 0;
      uint64_t u = iv < 0 ? (uint64_t) -iv : (uint64_t) iv;
      do bits[k++] = (char) ('0' + (u & 1)); while (u >>= 1);
      if (iv < 0) jbuf_addc (&t, '-');
      while (k) jbuf_addc (&t, bits[--k]);
    } else {
      char f[8] = { '%', 'l', 'l', type == 'd' ? 'd' : type, 0 };
      if (iv < 0 && type != 'd') {
        jbuf_addc (&t, '-');
        snprintf (tmp, sizeof tmp, f, -(long long) iv);
      } else {
        snprintf (tmp, sizeof tmp, f, (long long) iv);
      }
      jbuf_add (&t, tmp, strlen (tmp));
    }
  } else if (strchr ("fFeEgG%", type)) {
    if (!numeric)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "Unknown format code '%c' for object of type '%s'",
               type, jv_type_name (v));
    double fv = v.t == JV_FLOAT ? v.v.f : (double) (v.t == JV_INT ? v.v.i : v.v.b);
    if (type == '%')
      fv *= 100;
    char f[16];
    snprintf (f, sizeof f, "%%.%d%c", (int) (prec < 0 ? 6 : prec), type == '%' ? 'f' : type);
    snprintf (tmp, sizeof tmp, f, fv);
    jbuf_add (&t, tmp, strlen (tmp));
    if (type == '%')
      jbuf_addc (&t, '%');
  } else {
    jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "str.format type '%c' is not supported", type);
  }
  if (!align)
    align = numeric ? '>' : '<';
  int64_t cps = 0;
  for (size_t k = 0; k < t.n; k++)
    cps += ((unsigned char) t.p[k] & 0xC0) != 0x80;
  int64_t padn = width > cps ? width - cps : 0, lpad = 0;
  if (align == '>' || align == '=') lpad = padn;
  else if (align == '^') lpad = padn / 2;
  size_t start = 0;
  if (align == '=' && t.n && (t.p[0] == '-' || t.p[0] == '+')) {
    jbuf_addc (b, t.p[0]);
    start = 1;
  }
  for (int64_t k = 0; k < lpad; k++)
    jbuf_addc (b, fill);
  jbuf_add (b, t.p ? t.p + start : "", t.n - start);
  for (int64_t k = lpad; k < padn; k++)
    jbuf_addc (b, fill);
}

JVal
jn_str_format (JnCtx *c, JStr *fmt, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  JBuf b;
  jbuf_init (&b, r, jn_max_output (c));
  const char *s = fmt->data;
  size_t n = fmt->len, auto_idx = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '}') {
      if (i + 1 < n && s[i + 1] == '}') {
        jbuf_addc (&b, '}');
        i++;
        continue;
      }
      jn_fail (r, SUTRA_ERR_FORMAT, line, "Single '}' encountered in format string");
    }
    if (s[i] != '{') {
      jbuf_addc (&b, s[i]);
      continue;
    }
    if (i + 1 < n && s[i + 1] == '{') {
      jbuf_addc (&b, '{');
      i++;
      continue;
    }
    size_t j = i + 1;
    while (j < n && s[j] != '}')
      j++;
    if (j >= n)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "Single '{' encountered in format string");
    const char *field = s + i + 1;
    size_t fl = j - i - 1, nl = 0;
    while (nl < fl && field[nl] != '!' && field[nl] != ':')
      nl++;
    char conv = 0;
    size_t k = nl;
    if (k < fl && field[k] == '!') {
      conv = k + 1 < fl ? field[k + 1] : 0;
      k += 2;
    }
    const char *spec = "";
    size_t sn = 0;
    if (k < fl && field[k] == ':') {
      spec = field + k + 1;
      sn = fl - k - 1;
    }
    if (memchr (field, '.', nl) || memchr (field, '[', nl))
      jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "str.format field '%.*s' is not supported",
               (int) nl, field);
    JVal v = jv_undef ();
    if (nl == 0) {
      if (auto_idx >= a->n)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "Replacement index %zu out of range for positional "
                 "args tuple", auto_idx);
      v = a->v[auto_idx++];
    } else if (field[0] >= '0' && field[0] <= '9') {
      size_t idx = (size_t) strtoul (field, NULL, 10);
      if (idx >= a->n)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "Replacement index %zu out of range for positional "
                 "args tuple", idx);
      v = a->v[idx];
    } else {
      bool found = false;
      for (size_t q = 0; q < a->nkw && !found; q++)
        if (strlen (a->kw[q]) == nl && memcmp (a->kw[q], field, nl) == 0) {
          v = a->kwv[q];
          found = true;
        }
      if (!found)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "KeyError: '%.*s'", (int) nl, field);
    }
    format_one (c, &b, v, spec, sn, conv, line);
    i = j;
  }
  return jbuf_to_str (&b);
}
