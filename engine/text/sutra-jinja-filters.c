/* sutra-jinja-filters.c: Jinja2 3.1's builtin filters and tests (jinja2/filters.py and
 * tests.py define the semantics reproduced here), with transformers' tojson:
 * json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
 * Filters returning generators in Jinja (select, map, reverse, items ...) return lists. */
#include "sutra-jinja-private.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

typedef enum {
  F_ABS, F_ATTR, F_BATCH, F_CAPITALIZE, F_CENTER, F_COUNT, F_DEFAULT, F_DICTSORT, F_ESCAPE,
  F_FIRST, F_FLOAT, F_FORMAT, F_INDENT, F_INT, F_ITEMS, F_JOIN, F_LAST, F_LENGTH, F_LIST,
  F_LOWER, F_MAP, F_MAX, F_MIN, F_REJECT, F_REJECTATTR, F_REPLACE, F_REVERSE, F_ROUND, F_SAFE,
  F_SELECT, F_SELECTATTR, F_SORT, F_STRING, F_SUM, F_TITLE, F_TOJSON, F_TRIM, F_TRUNCATE,
  F_UNIQUE, F_UPPER, F_WORDCOUNT, F_FORCEESCAPE,
} FilterId;

static const struct { const char *name; FilterId id; } FILTERS[] = {
  { "abs", F_ABS }, { "attr", F_ATTR }, { "batch", F_BATCH }, { "capitalize", F_CAPITALIZE },
  { "center", F_CENTER }, { "count", F_COUNT }, { "d", F_DEFAULT }, { "default", F_DEFAULT },
  { "dictsort", F_DICTSORT }, { "e", F_ESCAPE }, { "escape", F_ESCAPE },
  { "forceescape", F_FORCEESCAPE }, { "first", F_FIRST }, { "float", F_FLOAT },
  { "format", F_FORMAT }, { "indent", F_INDENT }, { "int", F_INT }, { "items", F_ITEMS },
  { "join", F_JOIN }, { "last", F_LAST }, { "length", F_LENGTH }, { "list", F_LIST },
  { "lower", F_LOWER }, { "map", F_MAP }, { "max", F_MAX }, { "min", F_MIN },
  { "reject", F_REJECT }, { "rejectattr", F_REJECTATTR }, { "replace", F_REPLACE },
  { "reverse", F_REVERSE }, { "round", F_ROUND }, { "safe", F_SAFE }, { "select", F_SELECT },
  { "selectattr", F_SELECTATTR }, { "sort", F_SORT }, { "string", F_STRING }, { "sum", F_SUM },
  { "title", F_TITLE }, { "tojson", F_TOJSON }, { "trim", F_TRIM }, { "truncate", F_TRUNCATE },
  { "unique", F_UNIQUE }, { "upper", F_UPPER }, { "wordcount", F_WORDCOUNT },
};
/* Jinja builtins we do not implement: a template using them is rejected as unsupported. */
static const char *const UNSUPPORTED_FILTERS[] = {
  "filesizeformat", "groupby", "pprint", "random", "slice", "striptags", "urlencode", "urlize",
  "wordwrap", "xmlattr", NULL,
};

int
jn_filter_id (const char *name, bool *known_but_unsupported)
{
  for (size_t i = 0; i < sizeof FILTERS / sizeof FILTERS[0]; i++)
    if (strcmp (FILTERS[i].name, name) == 0)
      return (int) FILTERS[i].id;
  for (int i = 0; UNSUPPORTED_FILTERS[i]; i++)
    if (strcmp (UNSUPPORTED_FILTERS[i], name) == 0)
      *known_but_unsupported = true;
  return -1;
}


/* ---- argument helpers ------------------------------------------------------------------- */

/* Positional argument i (after the filtered value) or keyword `name`; `def` when absent. */
static JVal
arg (const JnCallArgs *a, size_t i, const char *name, JVal def)
{
  if (i < a->n)
    return a->v[i];
  for (size_t k = 0; k < a->nkw; k++)
    if (name && strcmp (a->kw[k], name) == 0)
      return a->kwv[k];
  return def;
}

static void
check_arity (JnCtx *c, const JnCallArgs *a, size_t max_pos, const char *const *kw_ok,
             const char *what, int line)
{
  JnRun *r = jn_ctx_run (c);
  if (a->n > max_pos)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "%s() takes at most %zu arguments (%zu given)", what,
             max_pos, a->n);
  for (size_t k = 0; k < a->nkw; k++) {
    bool ok = false;
    for (int j = 0; kw_ok && kw_ok[j]; j++)
      if (strcmp (a->kw[k], kw_ok[j]) == 0)
        ok = true;
    if (!ok)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "%s() got an unexpected keyword argument '%s'", what,
               a->kw[k]);
  }
}

static int64_t
int_arg (JnCtx *c, JVal v, const char *what, int line)
{
  if (v.t == JV_INT)
    return v.v.i;
  if (v.t == JV_BOOL)
    return v.v.b;
  if (v.t == JV_UNDEF)
    jn_fail_undefined (c, v, line);
  jn_fail (jn_ctx_run (c), SUTRA_ERR_FORMAT, line, "%s: an integer is required, not '%s'", what,
           jv_type_name (v));
}

static JStr *
soft_str (JnCtx *c, JVal v)
{
  return jv_to_str (jn_ctx_run (c), v).v.s;
}

static JVal
str_val (JStr *s)
{
  JVal v = { .t = JV_STR, .v.s = s };
  return v;
}

/* Jinja's make_attrgetter: "a.b.0" walks getitem per part (digit parts are ints). */
static JVal
get_attribute (JnCtx *c, JVal item, JVal attribute, JVal def, int line)
{
  JnRun *r = jn_ctx_run (c);
  if (attribute.t == JV_NONE || attribute.t == JV_UNDEF)
    return item;
  if (attribute.t == JV_INT) {
    item = jn_getitem (c, item, attribute, line);
    if (def.t != JV_NONE && item.t == JV_UNDEF)
      item = def;
    return item;
  }
  JStr *path = soft_str (c, attribute);
  size_t a = 0;
  for (;;) {
    const char *dot = memchr (path->data + a, '.', path->len - a);
    size_t b = dot ? (size_t) (dot - path->data) : path->len;
    JVal part = jv_str (r, path->data + a, b - a);
    bool digits = b > a;
    for (size_t i = a; i < b; i++)
      if (path->data[i] < '0' || path->data[i] > '9')
        digits = false;
    if (digits && b - a < 18)
      part = jv_int (strtoll (part.v.s->data, NULL, 10));
    item = jn_getitem (c, item, part, line);
    if (def.t != JV_NONE && item.t == JV_UNDEF)
      item = def;
    if (!dot)
      break;
    a = b + 1;
  }
  return item;
}

static JVal
list_from (JnCtx *c, JList *src, size_t n)
{
  JVal out = jv_list (jn_ctx_run (c), n, false);
  if (n)
    memcpy (out.v.l->items, src->items, n * sizeof (JVal));
  return out;
}

/* Sort key: lower-cased strings unless case_sensitive (Jinja's ignore_case). */
static JVal
sort_key (JnCtx *c, JVal v, JVal attribute, bool case_sensitive, int line)
{
  v = get_attribute (c, v, attribute, jv_none (), line);
  if (!case_sensitive && v.t == JV_STR)
    v = jn_str_lower (jn_ctx_run (c), v.v.s);
  return v;
}

/* Stable merge sort of items by keys (Python's sorted is stable). */
static void
stable_sort (JnCtx *c, JVal *items, JVal *keys, size_t n, bool reverse, int line)
{
  JnRun *r = jn_ctx_run (c);
  if (n < 2)
    return;
  JVal *ti = jn_alloc (r, n * sizeof *ti), *tk = jn_alloc (r, n * sizeof *tk);
  for (size_t width = 1; width < n; width *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * width) {
      size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        /* take from the right only when strictly before (stability); reverse keeps
         * Python's semantics of reverse=True (stable w.r.t. equal keys) */
        bool right_first = reverse ? jv_cmp (r, OP_LT, keys[i], keys[j], line)
                                   : jv_cmp (r, OP_LT, keys[j], keys[i], line);
        if (right_first) {
          ti[k] = items[j];
          tk[k++] = keys[j++];
        } else {
          ti[k] = items[i];
          tk[k++] = keys[i++];
        }
      }
      while (i < mid) {
        ti[k] = items[i];
        tk[k++] = keys[i++];
      }
      while (j < hi) {
        ti[k] = items[j];
        tk[k++] = keys[j++];
      }
    }
    memcpy (items, ti, n * sizeof *ti);
    memcpy (keys, tk, n * sizeof *tk);
    jn_step (c, n / 8 + 1, line);
  }
}




static JVal
filter_tojson (JnCtx *c, JVal x, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  static const char *const kws[] = { "ensure_ascii", "indent", "separators", "sort_keys", NULL };
  check_arity (c, a, 4, kws, "tojson", line);
  JJsonOpts o = { .item_sep = ", ", .key_sep = ": " };
  o.ensure_ascii = jv_truthy (arg (a, 0, "ensure_ascii", jv_bool (false)));
  JVal indent = arg (a, 1, "indent", jv_none ());
  JVal seps = arg (a, 2, "separators", jv_none ());
  o.sort_keys = jv_truthy (arg (a, 3, "sort_keys", jv_bool (false)));
  if (indent.t == JV_INT || indent.t == JV_BOOL) {
    int64_t k = indent.t == JV_INT ? indent.v.i : indent.v.b;
    if (k > 64)
      jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "tojson indent of %lld is not supported",
               (long long) k);
    char *sp = jn_alloc (r, (size_t) (k > 0 ? k : 0) + 1);
    memset (sp, ' ', (size_t) (k > 0 ? k : 0));
    o.indent = sp;
  } else if (indent.t == JV_STR) {
    o.indent = indent.v.s->data;
  } else if (indent.t != JV_NONE) {
    jn_fail (r, SUTRA_ERR_FORMAT, line, "tojson: indent must be an integer or a string");
  }
  if (o.indent)
    o.item_sep = ",";
  if (seps.t == JV_LIST) {
    if (seps.v.l->n != 2 || seps.v.l->items[0].t != JV_STR || seps.v.l->items[1].t != JV_STR)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "tojson: separators must be a pair of strings");
    o.item_sep = seps.v.l->items[0].v.s->data;
    o.key_sep = seps.v.l->items[1].v.s->data;
  } else if (seps.t != JV_NONE) {
    jn_fail (r, SUTRA_ERR_FORMAT, line, "tojson: separators must be a pair of strings");
  }
  JBuf b;
  jbuf_init (&b, r, jn_max_output (c));
  jv_json_into (&b, x, &o, 0, line);
  jn_step (c, b.n / 64, line);
  return jbuf_to_str (&b);
}

static JVal
filter_indent (JnCtx *c, JVal x, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  static const char *const kws[] = { "width", "first", "blank", NULL };
  check_arity (c, a, 3, kws, "indent", line);
  JVal width = arg (a, 0, "width", jv_int (4));
  bool first = jv_truthy (arg (a, 1, "first", jv_bool (false)));
  bool blank = jv_truthy (arg (a, 2, "blank", jv_bool (false)));
  JStr *ind;
  if (width.t == JV_STR) {
    ind = width.v.s;
  } else {
    int64_t w = int_arg (c, width, "indent", line);
    if (w > 4096)
      jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "indent width too large");
    ind = jstr_new (r, (size_t) (w > 0 ? w : 0));
    memset (ind->data, ' ', ind->len);
  }
  if (x.t == JV_UNDEF)
    jn_fail_undefined (c, x, line);
  if (x.t == JV_LIST && x.v.l->kind == LK_PLAIN && !x.v.l->tuple)   /* list += "\n" works */
    jn_fail (r, SUTRA_ERR_FORMAT, line, "'list' object has no attribute 'splitlines'");
  if (x.t != JV_STR)                      /* Jinja's indent does s += "\n" on the value */
    jn_fail (r, SUTRA_ERR_FORMAT, line, "unsupported operand type(s) for +=: '%s' and 'str'",
             jv_type_name (x));
  JStr *s0 = x.v.s;
  JBuf t;
  jbuf_init (&t, r, (size_t) -1);
  jbuf_add (&t, s0->data, s0->len);
  jbuf_addc (&t, '\n');                    /* Jinja's quirk: s += "\n" before splitlines */
  JList *lines = jn_str_splitlines (r, jbuf_to_str (&t).v.s, false).v.l;
  JBuf b;
  jbuf_init (&b, r, jn_max_output (c));
  if (first)
    jbuf_add (&b, ind->data, ind->len);
  for (size_t i = 0; i < lines->n; i++) {
    JStr *ln = lines->items[i].v.s;
    if (i > 0) {
      jbuf_addc (&b, '\n');
      if (blank || ln->len)
        jbuf_add (&b, ind->data, ind->len);
    }
    jbuf_add (&b, ln->data, ln->len);
  }
  return jbuf_to_str (&b);
}

static JVal
filter_select (JnCtx *c, FilterId id, JVal x, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  bool by_attr = id == F_SELECTATTR || id == F_REJECTATTR;
  bool want = id == F_SELECT || id == F_SELECTATTR;
  if (!jv_truthy (x))                      /* Jinja: `if value:` before anything else */
    return jv_list_as (r, jv_list (r, 0, false), LK_GEN, "generator");
  JList *items = jn_iterate (c, x, line);
  size_t first_test = by_attr ? 1 : 0;
  JVal attribute = by_attr ? (a->n ? a->v[0] : jv_undef ()) : jv_none ();
  if (by_attr && a->n == 0)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "Missing parameter for attribute name");
  int test = -1;
  JnCallArgs ta = { 0 };
  if (a->n > first_test) {
    JVal name = a->v[first_test];
    if (name.t != JV_STR)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "test name must be a string");
    bool unsup = false;
    test = jn_test_id (name.v.s->data, &unsup);
    if (test < 0)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "No test named '%s'.", name.v.s->data);
    ta.n = a->n - first_test - 1;
    ta.v = a->v + first_test + 1;
    ta.nkw = a->nkw;
    ta.kw = a->kw;
    ta.kwv = a->kwv;
  }
  JVal out = jv_list (r, items->n, false);
  size_t k = 0;
  for (size_t i = 0; i < items->n; i++) {
    JVal v = by_attr ? get_attribute (c, items->items[i], attribute, jv_none (), line)
                     : items->items[i];
    bool ok = test < 0 ? jv_truthy (v) : jn_apply_test (c, test, v, &ta, line);
    if (ok == want)
      out.v.l->items[k++] = items->items[i];
  }
  out.v.l->n = k;
  jn_step (c, items->n, line);
  return jv_list_as (r, out, LK_GEN, "generator");
}

static JVal
filter_map (JnCtx *c, JVal x, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  if (!jv_truthy (x))                      /* Jinja: `if value:` before anything else */
    return jv_list_as (r, jv_list (r, 0, false), LK_GEN, "generator");
  JList *items = jn_iterate (c, x, line);
  JVal out = jv_list (r, items->n, false);
  JVal attribute = arg (a, 99, "attribute", jv_undef ());
  if (attribute.t != JV_UNDEF || a->n == 0) {
    if (a->n)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "map(): positional arguments with attribute=");
    JVal def = arg (a, 99, "default", jv_none ());
    for (size_t i = 0; i < items->n; i++)
      out.v.l->items[i] = attribute.t == JV_UNDEF ? items->items[i]
                                                   : get_attribute (c, items->items[i],
                                                                    attribute, def, line);
    return jv_list_as (r, out, LK_GEN, "generator");
  }
  if (a->v[0].t != JV_STR)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "map(): the filter name must be a string");
  bool unsup = false;
  int fid = jn_filter_id (a->v[0].v.s->data, &unsup);
  if (fid < 0)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "No filter named '%s'.", a->v[0].v.s->data);
  JnCallArgs fa = { a->n - 1, a->v + 1, a->nkw, a->kw, a->kwv };
  for (size_t i = 0; i < items->n; i++)
    out.v.l->items[i] = jn_apply_filter (c, fid, items->items[i], &fa, line);
  return jv_list_as (r, out, LK_GEN, "generator");
}

static JVal
filter_minmax (JnCtx *c, bool is_max, JVal x, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  static const char *const kws[] = { "case_sensitive", "attribute", NULL };
  check_arity (c, a, 2, kws, is_max ? "max" : "min", line);
  bool cs = jv_truthy (arg (a, 0, "case_sensitive", jv_bool (false)));
  JVal attribute = arg (a, 1, "attribute", jv_none ());
  JList *items = jn_iterate (c, x, line);
  if (items->n == 0)
    return jv_undef_hint (r, "No aggregated item, sequence was empty.", false);
  size_t best = 0;
  JVal bk = sort_key (c, items->items[0], attribute, cs, line);
  for (size_t i = 1; i < items->n; i++) {
    JVal k = sort_key (c, items->items[i], attribute, cs, line);
    if (jv_cmp (r, is_max ? OP_GT : OP_LT, k, bk, line)) {
      best = i;
      bk = k;
    }
  }
  return items->items[best];
}

static JVal
round_value (JnCtx *c, JVal x, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  static const char *const kws[] = { "precision", "method", NULL };
  check_arity (c, a, 2, kws, "round", line);
  int64_t prec = int_arg (c, arg (a, 0, "precision", jv_int (0)), "round", line);
  JVal method = arg (a, 1, "method", jv_cstr (r, "common"));
  if (method.t != JV_STR || (strcmp (method.v.s->data, "common") && strcmp (method.v.s->data, "ceil")
                             && strcmp (method.v.s->data, "floor")))
    jn_fail (r, SUTRA_ERR_FORMAT, line, "method must be common, ceil or floor");
  if (x.t != JV_INT && x.t != JV_BOOL && x.t != JV_FLOAT)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "type %s doesn't define __round__ method",
             jv_type_name (x));
  if (prec > 300)
    prec = 300;
  if (prec < -300)
    prec = -300;
  if (method.v.s->data[0] == 'c' && method.v.s->data[1] == 'o') {
    if (x.t != JV_FLOAT)                  /* round(int, n) stays an int */
      return x.t == JV_BOOL ? jv_int (x.v.b) : x;
    double f = x.v.f;
    if (!isfinite (f))
      return x;
    if (prec >= 0) {
      char buf[400];
      snprintf (buf, sizeof buf, "%.*f", (int) prec, f);   /* correctly rounded, ties even */
      return jv_float (strtod (buf, NULL));
    }
    double p = pow (10.0, (double) -prec);
    double q = f / p, rq = nearbyint (q);
    return jv_float (rq * p);
  }
  double f = x.t == JV_FLOAT ? x.v.f : (double) (x.t == JV_INT ? x.v.i : x.v.b);
  double p = pow (10.0, (double) prec);
  double v = method.v.s->data[0] == 'c' ? ceil (f * p) : floor (f * p);
  return jv_float (v / p);
}

static JVal apply_filter (JnCtx *c, int fid, JVal x, const JnCallArgs *a, int line);

/* Generator filters run eagerly here, but a type error they meet is kept and raised only when
 * the generator is iterated, as Python would (a generator that is only tested for truth or
 * printed never fails). Render limits still stop at once. */
static JVal
generator_filter (JnCtx *c, int fid, const char *func, JVal x, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  jmp_buf saved;
  memcpy (saved, r->jb, sizeof saved);
  JVal *res = jn_alloc (r, sizeof *res);
  if (setjmp (r->jb) == 0) {
    *res = apply_filter (c, fid, x, a, line);
    memcpy (r->jb, saved, sizeof saved);
  } else {
    memcpy (r->jb, saved, sizeof saved);
    if (r->code != SUTRA_ERR_FORMAT || r->raised)
      longjmp (r->jb, 1);
    *res = jv_list_as (r, jv_list (r, 0, false), LK_GEN, "generator");
    res->v.l->lazy_error = jn_strndup (r, r->msg, strlen (r->msg));
  }
  res->v.l->func = func;
  return *res;
}

JVal
jn_apply_filter (JnCtx *c, int fid, JVal x, const JnCallArgs *a, int line)
{
  switch ((FilterId) fid) {
  case F_SELECT: case F_REJECT: case F_SELECTATTR: case F_REJECTATTR:
    return generator_filter (c, fid, "select_or_reject", x, a, line);
  case F_MAP: return generator_filter (c, fid, "sync_do_map", x, a, line);
  case F_UNIQUE: return generator_filter (c, fid, "sync_do_unique", x, a, line);
  case F_BATCH: return generator_filter (c, fid, "do_batch", x, a, line);
  case F_ITEMS: return generator_filter (c, fid, "do_items", x, a, line);
  default: return apply_filter (c, fid, x, a, line);
  }
}

static JVal
apply_filter (JnCtx *c, int fid, JVal x, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  jn_step (c, 1, line);
  switch ((FilterId) fid) {
  case F_ABS:
    if (x.t == JV_INT) {
      if (x.v.i == INT64_MIN)
        jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "integer result beyond 64 bits");
      return jv_int (x.v.i < 0 ? -x.v.i : x.v.i);
    }
    if (x.t == JV_BOOL) return jv_int (x.v.b);
    if (x.t == JV_FLOAT) return jv_float (fabs (x.v.f));
    jn_fail (r, SUTRA_ERR_FORMAT, line, "bad operand type for abs(): '%s'", jv_type_name (x));
  case F_ATTR: {
    JStr *name = soft_str (c, arg (a, 0, "name", jv_undef ()));
    if (x.t == JV_DICT) {
      bool unsafe = false;
      if (jn_has_method (x, name->data, &unsafe))
        return jn_getattr (c, x, name->data, line);
      return jv_undef_attr (r, x, str_val (name));
    }
    return jn_getattr (c, x, name->data, line);
  }
  case F_BATCH: {
    int64_t n = int_arg (c, arg (a, 0, "linecount", jv_undef ()), "batch", line);
    if (n <= 0)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "batch: linecount must be positive");
    JVal fill = arg (a, 1, "fill_with", jv_none ());
    JList *items = jn_iterate (c, x, line);
    size_t groups = (items->n + (size_t) n - 1) / (size_t) n;
    JVal out = jv_list (r, groups, false);
    for (size_t g = 0; g < groups; g++) {
      size_t start = g * (size_t) n, cnt = items->n - start < (size_t) n ? items->n - start
                                                                          : (size_t) n;
      size_t len = fill.t != JV_NONE ? (size_t) n : cnt;
      JVal row = jv_list (r, len, false);
      for (size_t k = 0; k < len; k++)
        row.v.l->items[k] = k < cnt ? items->items[start + k] : fill;
      out.v.l->items[g] = row;
    }
    return jv_list_as (r, out, LK_GEN, "generator");
  }
  case F_CAPITALIZE:                      /* soft_str keeps a Markup, and its methods too */
    return jv_as_markup (jn_str_capitalize (r, soft_str (c, x)), x.t == JV_STR && x.markup);
  case F_CENTER: {
    JStr *s = soft_str (c, x);
    int64_t w = int_arg (c, arg (a, 0, "width", jv_int (80)), "center", line);
    int64_t len = jstr_ncp (s);
    if (w > 1 << 20)
      jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "center width too large");
    if (w <= len)
      return str_val (s);
    int64_t marg = w - len, left = marg / 2 + (marg & w & 1);
    JBuf b;
    jbuf_init (&b, r, (size_t) -1);
    for (int64_t i = 0; i < left; i++)
      jbuf_addc (&b, ' ');
    jbuf_add (&b, s->data, s->len);
    for (int64_t i = 0; i < marg - left; i++)
      jbuf_addc (&b, ' ');
    return jbuf_to_str (&b);
  }
  case F_COUNT:
  case F_LENGTH:
    return jv_int (jn_len (c, x, line));
  case F_DEFAULT: {
    JVal def = arg (a, 0, "default_value", jv_str (r, "", 0));
    bool boolean = jv_truthy (arg (a, 1, "boolean", jv_bool (false)));
    if (x.t == JV_UNDEF || (boolean && !jv_truthy (x)))
      return def;
    return x;
  }
  case F_DICTSORT: {
    static const char *const kws[] = { "case_sensitive", "by", "reverse", NULL };
    check_arity (c, a, 3, kws, "dictsort", line);
    bool cs = jv_truthy (arg (a, 0, "case_sensitive", jv_bool (false)));
    JVal by = arg (a, 1, "by", jv_cstr (r, "key"));
    bool rev = jv_truthy (arg (a, 2, "reverse", jv_bool (false)));
    int pos;
    if (by.t == JV_STR && !strcmp (by.v.s->data, "key"))
      pos = 0;
    else if (by.t == JV_STR && !strcmp (by.v.s->data, "value"))
      pos = 1;
    else
      jn_fail (r, SUTRA_ERR_FORMAT, line, "You can only sort by either 'key' or 'value'");
    if (x.t == JV_UNDEF)
      jn_fail_undefined (c, x, line);
    if (x.t != JV_DICT)                   /* Jinja calls value.items() */
      jn_fail (r, SUTRA_ERR_FORMAT, line, "'%s' object has no attribute 'items'",
               jv_type_name (x));
    size_t n = x.v.d->n;
    JVal *items = jn_alloc (r, (n ? n : 1) * sizeof *items);
    JVal *keys = jn_alloc (r, (n ? n : 1) * sizeof *keys);
    for (size_t i = 0; i < n; i++) {
      JVal t = jv_list (r, 2, true);
      t.v.l->items[0] = x.v.d->keys[i];
      t.v.l->items[1] = x.v.d->vals[i];
      items[i] = t;
      keys[i] = sort_key (c, pos ? x.v.d->vals[i] : x.v.d->keys[i], jv_none (), cs, line);
    }
    stable_sort (c, items, keys, n, rev, line);
    JVal out = jv_list (r, n, false);
    memcpy (out.v.l->items, items, n * sizeof *items);
    return out;
  }
  case F_ESCAPE:                          /* markupsafe.escape: a Markup stays as it is */
    if (x.t == JV_STR && x.markup)
      return x;
    /* fall through */
  case F_FORCEESCAPE: {
    JVal e = { .t = JV_STR, .markup = 1 };
    e.v.s = jn_html_escape (r, soft_str (c, x));
    return e;
  }
  case F_FIRST: {
    if (x.t == JV_LIST && (x.v.l->kind == LK_GEN || x.v.l->kind == LK_ITER)) {
      JList *g = x.v.l;                     /* next(gen): consumes one item */
      if (g->lazy_error)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "%s", g->lazy_error);
      if (g->pos < g->n)
        return g->items[g->pos++];
      return jv_undef_hint (r, "No first item, sequence was empty.", false);
    }
    JList *l = jn_iterate (c, x, line);
    return l->n ? l->items[0] : jv_undef_hint (r, "No first item, sequence was empty.", false);
  }
  case F_LAST: {
    if ((x.t != JV_STR && x.t != JV_LIST && x.t != JV_DICT && x.t != JV_UNDEF) ||
        (x.t == JV_LIST && (x.v.l->kind == LK_GEN || x.v.l->kind == LK_ITER)))
      jn_fail (r, SUTRA_ERR_FORMAT, line, "'%s' object is not reversible", jv_type_name (x));
    JList *l = jn_iterate (c, x, line);
    return l->n ? l->items[l->n - 1] : jv_undef_hint (r, "No last item, sequence was empty.",
                                                      false);
  }
  case F_FLOAT: {
    JVal def = arg (a, 0, "default", jv_float (0.0));
    jn_check_defined (c, x, line);         /* float(Undefined) raises */
    double f;
    switch (x.t) {
    case JV_FLOAT: return x;
    case JV_INT: return jv_float ((double) x.v.i);
    case JV_BOOL: return jv_float (x.v.b);
    case JV_STR: return jn_parse_py_float (x.v.s, &f) ? jv_float (f) : def;
    default: return def;
    }
  }
  case F_INT: {
    JVal def = arg (a, 0, "default", jv_int (0));
    int64_t base = int_arg (c, arg (a, 1, "base", jv_int (10)), "int", line);
    jn_check_defined (c, x, line);         /* int(Undefined) raises */
    int64_t i;
    double f;
    switch (x.t) {
    case JV_INT: return x;
    case JV_BOOL: return jv_int (x.v.b);
    case JV_FLOAT:
      if (isnan (x.v.f))
        return def;
      if (isinf (x.v.f) || fabs (x.v.f) >= 9.2e18)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "cannot convert float infinity to integer");
      return jv_int ((int64_t) x.v.f);
    case JV_STR:
      if (jn_parse_py_int (x.v.s, (int) base, &i))
        return jv_int (i);
      if (jn_parse_py_float (x.v.s, &f)) {     /* Jinja's quirk: "42.23"|int gives 42 */
        if (isnan (f))
          return def;
        if (isinf (f) || fabs (f) >= 9.2e18)
          jn_fail (r, SUTRA_ERR_FORMAT, line, "cannot convert float infinity to integer");
        return jv_int ((int64_t) f);
      }
      return def;
    default:
      return def;
    }
  }
  case F_FORMAT: {
    JVal fmtv = jv_as_markup (jv_to_str (r, x), x.t == JV_STR && x.markup);
    JStr *fmt = fmtv.v.s;
    if (a->nkw && a->n)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "can't handle positional and keyword arguments at the "
               "same time");
    if (a->nkw) {
      JVal d = jv_dict (r);
      for (size_t k = 0; k < a->nkw; k++)
        jdict_set (r, d.v.d, jv_cstr (r, a->kw[k]), a->kwv[k]);
      return jn_binop (c, OP_MOD, fmtv, d, line);
    }
    (void) fmt;
    JVal t = jv_list (r, a->n, true);
    memcpy (t.v.l->items, a->v, a->n * sizeof (JVal));
    return jn_binop (c, OP_MOD, fmtv, t, line);
  }
  case F_INDENT:
    return jv_as_markup (filter_indent (c, x, a, line), x.t == JV_STR && x.markup);
  case F_ITEMS: {
    /* a generator function in Jinja 3.1: the type error only surfaces when iterated */
    if (x.t == JV_UNDEF)
      return jv_list_as (r, jv_list (r, 0, false), LK_GEN, "generator");
    if (x.t != JV_DICT) {
      JVal g = jv_list_as (r, jv_list (r, 0, false), LK_GEN, "generator");
      g.v.l->lazy_error = "Can only get item pairs from a mapping.";
      return g;
    }
    JVal out = jv_list (r, x.v.d->n, false);
    for (size_t i = 0; i < x.v.d->n; i++) {
      JVal t = jv_list (r, 2, true);
      t.v.l->items[0] = x.v.d->keys[i];
      t.v.l->items[1] = x.v.d->vals[i];
      out.v.l->items[i] = t;
    }
    return jv_list_as (r, out, LK_GEN, "generator");
  }
  case F_JOIN: {
    JVal sep = arg (a, 0, "d", jv_str (r, "", 0));
    JVal attribute = arg (a, 1, "attribute", jv_none ());
    JList *items = jn_iterate (c, x, line);
    JStr *sp = soft_str (c, sep);
    JBuf b;
    jbuf_init (&b, r, jn_max_output (c));
    for (size_t i = 0; i < items->n; i++) {
      if (i)
        jbuf_add (&b, sp->data, sp->len);
      jv_str_into (&b, get_attribute (c, items->items[i], attribute, jv_none (), line));
    }
    jn_step (c, b.n / 64 + items->n, line);
    return jbuf_to_str (&b);
  }
  case F_LIST: {
    JList *l = jn_iterate (c, x, line);
    return list_from (c, l, l->n);
  }
  case F_LOWER:
    return jv_as_markup (jn_str_lower (r, soft_str (c, x)), x.t == JV_STR && x.markup);
  case F_UPPER:
    return jv_as_markup (jn_str_upper (r, soft_str (c, x)), x.t == JV_STR && x.markup);
  case F_MAP:
    return filter_map (c, x, a, line);
  case F_MAX:
  case F_MIN:
    return filter_minmax (c, fid == F_MAX, x, a, line);
  case F_REJECT: case F_REJECTATTR: case F_SELECT: case F_SELECTATTR:
    return filter_select (c, (FilterId) fid, x, a, line);
  case F_REPLACE: {
    JStr *s = soft_str (c, x);
    JVal old = arg (a, 0, "old", jv_undef ()), rep = arg (a, 1, "new", jv_undef ());
    JVal count = arg (a, 2, "count", jv_none ());
    if (old.t == JV_UNDEF || rep.t == JV_UNDEF)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "replace() missing required arguments");
    int64_t cnt = count.t == JV_NONE ? -1 : int_arg (c, count, "replace", line);
    JVal out = jn_str_replace (r, s, soft_str (c, old), soft_str (c, rep), cnt);
    jn_step (c, out.v.s->len / 64, line);
    return out;
  }
  case F_REVERSE: {
    if (x.t == JV_STR) {
      int64_t n = jstr_ncp (x.v.s);
      return jn_str_slice (r, x.v.s, n - 1, -1, n);
    }
    /* reversed(seq) is an iterator; a generator is not reversible, so Jinja lists it */
    bool once = x.t == JV_LIST && (x.v.l->kind == LK_GEN || x.v.l->kind == LK_ITER);
    if (x.t != JV_LIST && x.t != JV_DICT && x.t != JV_UNDEF)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "argument must be iterable");
    JList *l = jn_iterate (c, x, line);
    JVal out = jv_list (r, l->n, false);
    for (size_t i = 0; i < l->n; i++)
      out.v.l->items[i] = l->items[l->n - 1 - i];
    if (once)
      return out;
    const char *name = x.t == JV_DICT ? "dict_reversekeyiterator" : x.t == JV_UNDEF
                       ? "list_reverseiterator" : x.v.l->kind == LK_RANGE ? "range_iterator"
                       : x.v.l->kind == LK_VIEW ? "dict_reverseitemiterator"
                       : x.v.l->tuple ? "reversed" : "list_reverseiterator";
    return jv_list_as (r, out, LK_ITER, name);
  }
  case F_ROUND:
    return round_value (c, x, a, line);
  case F_SAFE:                            /* Markup(value) */
    return jv_as_markup (jv_to_str (r, x), true);
  case F_SORT: {
    static const char *const kws[] = { "reverse", "case_sensitive", "attribute", NULL };
    check_arity (c, a, 3, kws, "sort", line);
    bool rev = jv_truthy (arg (a, 0, "reverse", jv_bool (false)));
    bool cs = jv_truthy (arg (a, 1, "case_sensitive", jv_bool (false)));
    JVal attribute = arg (a, 2, "attribute", jv_none ());
    JList *l = jn_iterate (c, x, line);
    JVal out = list_from (c, l, l->n);
    JVal *keys = jn_alloc (r, (l->n ? l->n : 1) * sizeof *keys);
    for (size_t i = 0; i < l->n; i++)
      keys[i] = sort_key (c, l->items[i], attribute, cs, line);
    stable_sort (c, out.v.l->items, keys, l->n, rev, line);
    return out;
  }
  case F_STRING:
    return jv_as_markup (jv_to_str (r, x), x.t == JV_STR && x.markup);
  case F_SUM: {
    JVal attribute = arg (a, 0, "attribute", jv_none ());
    JVal acc = arg (a, 1, "start", jv_int (0));
    JList *l = jn_iterate (c, x, line);
    for (size_t i = 0; i < l->n; i++)
      acc = jn_binop (c, OP_ADD, acc, get_attribute (c, l->items[i], attribute, jv_none (), line),
                      line);
    return acc;
  }
  case F_TITLE: {
    /* Jinja's do_title: split on runs of [-\s({[<] (kept), then item[0].upper() +
     * item[1:].lower() for every piece */
    JStr *s = soft_str (c, x);
    JBuf b;
    jbuf_init (&b, r, (size_t) -1);
    size_t i = 0;
    while (i < s->len) {
      size_t j = i;
      uint32_t cp = jn_utf8_next (s->data, s->len, &j);
      bool sep = jn_py_isspace (cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' ||
                 cp == '<';
      size_t k = j;
      while (k < s->len) {
        size_t m = k;
        uint32_t c2 = jn_utf8_next (s->data, s->len, &m);
        bool sep2 = jn_py_isspace (c2) || c2 == '-' || c2 == '(' || c2 == '{' || c2 == '[' ||
                    c2 == '<';
        if (sep2 != sep)
          break;
        k = m;
      }
      JVal head = jn_str_upper (r, jv_str (r, s->data + i, j - i).v.s);
      JVal tail = jn_str_lower (r, jv_str (r, s->data + j, k - j).v.s);
      jbuf_add (&b, head.v.s->data, head.v.s->len);
      jbuf_add (&b, tail.v.s->data, tail.v.s->len);
      i = k;
    }
    return jbuf_to_str (&b);
  }
  case F_TOJSON:
    return filter_tojson (c, x, a, line);
  case F_TRIM:
    return jv_as_markup (jn_str_strip (r, soft_str (c, x), arg (a, 0, "chars", jv_none ()), true,
                                       true, line), x.t == JV_STR && x.markup);
  case F_TRUNCATE: {
    if (x.t != JV_STR) {                  /* Jinja measures len(s) on the value itself */
      int64_t n = jn_len (c, x, line);
      int64_t lim = int_arg (c, arg (a, 0, "length", jv_int (255)), "truncate", line) +
                    int_arg (c, arg (a, 3, "leeway", jv_int (5)), "truncate", line);
      if (n <= lim)
        return x;
      jn_fail (r, SUTRA_ERR_FORMAT, line, "truncate: '%s' object cannot be truncated",
               jv_type_name (x));
    }
    JStr *s = x.v.s;
    int64_t length = int_arg (c, arg (a, 0, "length", jv_int (255)), "truncate", line);
    bool kill = jv_truthy (arg (a, 1, "killwords", jv_bool (false)));
    JStr *end = soft_str (c, arg (a, 2, "end", jv_cstr (r, "...")));
    int64_t leeway = int_arg (c, arg (a, 3, "leeway", jv_int (5)), "truncate", line);
    int64_t endlen = jstr_ncp (end);
    if (length < endlen)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "expected length >= %lld, got %lld",
               (long long) endlen, (long long) length);
    if (leeway < 0)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "expected leeway >= 0, got %lld", (long long) leeway);
    if (jstr_ncp (s) <= length + leeway)
      return str_val (s);
    JVal head = jn_str_slice (r, s, 0, 1, length - endlen);
    if (!kill) {
      JList *parts = jn_str_split (r, head.v.s, jv_cstr (r, " "), 1, true, line).v.l;
      head = parts->items[0];
    }
    return jn_binop (c, OP_ADD, head, str_val (end), line);
  }
  case F_UNIQUE: {
    static const char *const kws[] = { "case_sensitive", "attribute", NULL };
    check_arity (c, a, 2, kws, "unique", line);
    bool cs = jv_truthy (arg (a, 0, "case_sensitive", jv_bool (false)));
    JVal attribute = arg (a, 1, "attribute", jv_none ());
    JList *l = jn_iterate (c, x, line);
    JVal out = jv_list (r, l->n, false);
    JVal *seen = jn_alloc (r, (l->n ? l->n : 1) * sizeof *seen);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
      JVal key = sort_key (c, l->items[i], attribute, cs, line);
      if (!jv_hashable (key))
        jn_fail (r, SUTRA_ERR_FORMAT, line, "unhashable type: '%s'", jv_type_name (key));
      bool dup = false;
      for (size_t j = 0; j < k && !dup; j++)
        dup = jv_equal (r, seen[j], key);
      jn_step (c, k / 16, line);
      if (!dup) {
        seen[k] = key;
        out.v.l->items[k++] = l->items[i];
      }
    }
    out.v.l->n = k;
    return jv_list_as (r, out, LK_GEN, "generator");
  }
  case F_WORDCOUNT: {
    JStr *s = soft_str (c, x);
    int64_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < s->len;) {
      uint32_t cp = jn_utf8_next (s->data, s->len, &i);
      utf8proc_category_t cat = utf8proc_category ((utf8proc_int32_t) cp);
      bool w = cp == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
               (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
      if (w && !in_word)
        words++;
      in_word = w;
    }
    return jv_int (words);
  }
  }
  jn_fail (r, SUTRA_ERR_FORMAT, line, "unknown filter");
}

/* ---- tests -------------------------------------------------------------------------------- */


