/* sutra-jinja-value.c: the arena, value constructors and Python value semantics used by the
 * Jinja interpreter: truthiness, ==, ordering, str(), repr(), repr(float) (shortest
 * round-trip digits, exponent form when decpt <= -4 or > 16, as CPython's float_repr), and
 * json.dumps as transformers' tojson filter calls it. */
#include "sutra-jinja-private.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define CHUNK_MIN (16 * 1024)     /* first chunk; later ones double up to CHUNK_MAX */
#define CHUNK_MAX (1024 * 1024)
#define MAX_VALUE_DEPTH 400    /* nesting for ==, repr, json (Python: RecursionError) */

struct JnChunk {
  JnChunk *next;
  size_t used, cap;
  max_align_t data[];
};

void *
jn_alloc (JnRun *r, size_t n)
{
  size_t a = sizeof (max_align_t);
  n = (n + a - 1) / a * a;
  if (n == 0)
    n = a;
  JnChunk *h = r->head;
  if (!h || h->cap - h->used < n) {
    if (r->limit && (r->total + n > r->limit || n > r->limit))
      jn_fail (r, SUTRA_ERR_UNSUPPORTED, -1, "template needs more than %zu MiB of temporary "
               "memory (render limit)", r->limit >> 20);
    size_t want = r->total < CHUNK_MIN ? CHUNK_MIN : r->total < CHUNK_MAX ? r->total : CHUNK_MAX;
    size_t cap = n > want ? n : want;
    h = calloc (1, sizeof *h + cap);
    if (!h)
      jn_fail (r, SUTRA_ERR_NOMEM, -1, "out of memory (%zu bytes)", cap);
    h->cap = cap;
    h->next = r->head;
    r->head = h;
    r->total += cap;
  }
  void *p = (char *) h->data + h->used;
  h->used += n;
  return p;
}

char *
jn_strndup (JnRun *r, const char *s, size_t n)
{
  char *p = jn_alloc (r, n + 1);
  memcpy (p, s, n);
  p[n] = '\0';
  return p;
}

void
jn_arena_free (JnRun *r)
{
  JnChunk *h = r->head;
  while (h) {
    JnChunk *next = h->next;
    free (h);
    h = next;
  }
  r->head = NULL;
  r->total = 0;
}

void
jn_fail (JnRun *r, SutraStatus code, int line, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (r->msg, sizeof r->msg, fmt, ap);
  va_end (ap);
  r->code = code;
  r->line = line > 0 ? line : r->cur_line;
  longjmp (r->jb, 1);
}

/* ---- constructors --------------------------------------------------------------------- */

JStr *
jstr_new (JnRun *r, size_t n)
{
  if (n > ((size_t) 1 << 40))
    jn_fail (r, SUTRA_ERR_UNSUPPORTED, -1, "string too large");
  JStr *s = jn_alloc (r, sizeof *s + n + 1);
  s->len = n;
  s->ncp = -1;
  s->data[n] = '\0';
  return s;
}

JVal
jv_str (JnRun *r, const char *s, size_t n)
{
  JStr *p = jstr_new (r, n);
  if (n)
    memcpy (p->data, s, n);
  JVal v = { .t = JV_STR, .v.s = p };
  return v;
}

JStr *
jn_html_escape (JnRun *r, const JStr *s)
{
  size_t extra = 0;
  for (size_t i = 0; i < s->len; i++)
    switch (s->data[i]) {
    case '&': case '"': case '\'': extra += 4; break;
    case '<': case '>': extra += 3; break;
    default: break;
    }
  JStr *o = jstr_new (r, s->len + extra);
  char *w = o->data;
  for (size_t i = 0; i < s->len; i++) {
    const char *rep = NULL;
    switch (s->data[i]) {
    case '&': rep = "&amp;"; break;
    case '<': rep = "&lt;"; break;
    case '>': rep = "&gt;"; break;
    case '"': rep = "&#34;"; break;
    case '\'': rep = "&#39;"; break;
    default: *w++ = s->data[i]; continue;
    }
    size_t k = strlen (rep);
    memcpy (w, rep, k);
    w += k;
  }
  return o;
}

JVal
jv_cstr (JnRun *r, const char *s)
{
  return jv_str (r, s, strlen (s));
}

JVal
jv_list (JnRun *r, size_t n, bool tuple)
{
  if (n > ((size_t) 1 << 32))
    jn_fail (r, SUTRA_ERR_UNSUPPORTED, -1, "list too large");
  JList *l = jn_alloc (r, sizeof *l);
  l->n = n;
  l->tuple = tuple;
  l->items = jn_alloc (r, (n ? n : 1) * sizeof (JVal));   /* zeroed = undefined */
  JVal v = { .t = JV_LIST, .v.l = l };
  return v;
}

JVal
jv_list_as (JnRun *r, JVal list, JListKind kind, const char *name)
{
  JList *l = jn_alloc (r, sizeof *l);
  *l = *list.v.l;
  l->kind = (uint8_t) kind;
  l->name = name;
  l->pos = 0;
  l->tuple = false;
  JVal v = { .t = JV_LIST, .v.l = l };
  return v;
}

JVal
jv_range (JnRun *r, int64_t start, int64_t stop, int64_t step, size_t n)
{
  JVal v = jv_list (r, n, false);
  JList *l = v.v.l;
  l->kind = LK_RANGE;
  l->name = "range";
  l->rstart = start;
  l->rstop = stop;
  l->rstep = step;
  for (size_t i = 0; i < n; i++)
    l->items[i] = jv_int (start + (int64_t) i * step);
  return v;
}

JVal
jv_dict (JnRun *r)
{
  JDict *d = jn_alloc (r, sizeof *d);
  JVal v = { .t = JV_DICT, .v.d = d };
  return v;
}

JVal
jv_undef_name (JnRun *r, const char *name)
{
  JUndef *u = jn_alloc (r, sizeof *u);
  u->kind = JU_NAME;
  u->name = name;
  JVal v = { .t = JV_UNDEF, .v.u = u };
  return v;
}

JVal
jv_undef_attr (JnRun *r, JVal obj, JVal key)
{
  JUndef *u = jn_alloc (r, sizeof *u);
  u->kind = JU_ATTR;
  u->obj = obj;
  u->key = key;
  JVal v = { .t = JV_UNDEF, .v.u = u };
  return v;
}

JVal
jv_undef_hint (JnRun *r, const char *hint, bool security)
{
  JUndef *u = jn_alloc (r, sizeof *u);
  u->kind = JU_HINT;
  u->name = hint;
  u->security = security;
  JVal v = { .t = JV_UNDEF, .v.u = u };
  return v;
}

/* Jinja's object_type_repr: "None", "dict object", "str object" ... */
static void
object_type_repr (JVal v, char *buf, size_t size)
{
  if (v.t == JV_NONE)
    snprintf (buf, size, "None");
  else if (v.t == JV_NS)
    snprintf (buf, size, "jinja2.utils.Namespace object");
  else if (v.t == JV_LOOP)
    snprintf (buf, size, "jinja2.runtime.LoopContext object");
  else if (v.t == JV_UNDEF)
    snprintf (buf, size, "jinja2.runtime.Undefined object");
  else
    snprintf (buf, size, "%s object", jv_type_name (v));
}

/* repr() of a primitive key into a small buffer (undefined messages). */
static void
small_repr (JVal v, char *buf, size_t size)
{
  JnRun tmp;
  memset (&tmp, 0, sizeof tmp);
  if (setjmp (tmp.jb)) {
    snprintf (buf, size, "?");
    jn_arena_free (&tmp);
    return;
  }
  tmp.limit = 1 << 20;
  JBuf b;
  jbuf_init (&b, &tmp, size > 1 ? size - 1 : 0);
  if (v.t == JV_STR && v.v.s->len > size / 2) {   /* long keys: show a prefix */
    snprintf (buf, size, "'%.*s...'", (int) (size / 2), v.v.s->data);
    jn_arena_free (&tmp);
    return;
  }
  jv_repr_into (&b, v, 0);
  snprintf (buf, size, "%.*s", (int) b.n, b.p ? b.p : "");
  jn_arena_free (&tmp);
}

void
jv_undef_message (JVal u, char *buf, size_t size)
{
  JUndef *x = u.v.u;
  if (!x) {
    snprintf (buf, size, "undefined value");
    return;
  }
  if (x->kind == JU_HINT) {
    snprintf (buf, size, "%s", x->name);
  } else if (x->kind == JU_NAME) {
    snprintf (buf, size, "'%s' is undefined", x->name);
  } else {
    char otr[64], key[160];
    object_type_repr (x->obj, otr, sizeof otr);
    small_repr (x->key, key, sizeof key);
    if (x->key.t == JV_STR)
      snprintf (buf, size, "'%s' has no attribute %s", otr, key);
    else
      snprintf (buf, size, "%s has no element %s", otr, key);
  }
}

/* ---- dicts -------------------------------------------------------------------------- */

/* Python ==. r (may be NULL) receives the RecursionError of absurdly nested values. */
static bool
key_eq (JnRun *r, JVal a, JVal b, int depth)
{
  if (depth > MAX_VALUE_DEPTH) {
    if (r)
      jn_fail (r, SUTRA_ERR_FORMAT, -1, "maximum recursion depth exceeded in comparison");
    return false;
  }
  bool an = a.t == JV_BOOL || a.t == JV_INT || a.t == JV_FLOAT;
  bool bn = b.t == JV_BOOL || b.t == JV_INT || b.t == JV_FLOAT;
  if (an && bn) {
    if (a.t == JV_FLOAT || b.t == JV_FLOAT) {
      double x = a.t == JV_FLOAT ? a.v.f : a.t == JV_INT ? (double) a.v.i : a.v.b;
      double y = b.t == JV_FLOAT ? b.v.f : b.t == JV_INT ? (double) b.v.i : b.v.b;
      /* exact int/float equality: compare as double only when the int is exact in double */
      if (a.t == JV_INT && (a.v.i > (INT64_C (1) << 53) || a.v.i < -(INT64_C (1) << 53)))
        return y == floor (y) && fabs (y) < 9.3e18 && (int64_t) y == a.v.i;
      if (b.t == JV_INT && (b.v.i > (INT64_C (1) << 53) || b.v.i < -(INT64_C (1) << 53)))
        return x == floor (x) && fabs (x) < 9.3e18 && (int64_t) x == b.v.i;
      return x == y;
    }
    int64_t x = a.t == JV_INT ? a.v.i : a.v.b;
    int64_t y = b.t == JV_INT ? b.v.i : b.v.b;
    return x == y;
  }
  if (a.t != b.t)
    return a.t == JV_UNDEF && b.t == JV_UNDEF;
  switch (a.t) {
  case JV_UNDEF:
  case JV_NONE:
    return true;
  case JV_STR:
    return a.v.s->len == b.v.s->len && memcmp (a.v.s->data, b.v.s->data, a.v.s->len) == 0;
  case JV_LIST:
    if (a.v.l->kind == LK_GEN || a.v.l->kind == LK_ITER || a.v.l->kind == LK_VIEW ||
        b.v.l->kind == LK_GEN || b.v.l->kind == LK_ITER || b.v.l->kind == LK_VIEW)
      return a.v.l == b.v.l;                /* identity, as for Python iterators */
    if ((a.v.l->kind == LK_RANGE) != (b.v.l->kind == LK_RANGE))
      return false;
    if (a.v.l->tuple != b.v.l->tuple || a.v.l->n != b.v.l->n)
      return false;
    for (size_t i = 0; i < a.v.l->n; i++)
      if (!key_eq (r, a.v.l->items[i], b.v.l->items[i], depth + 1))
        return false;
    return true;
  case JV_DICT: {
    if (a.v.d->n != b.v.d->n)
      return false;
    for (size_t i = 0; i < a.v.d->n; i++) {
      bool found = false;
      for (size_t j = 0; j < b.v.d->n && !found; j++)
        if (key_eq (r, a.v.d->keys[i], b.v.d->keys[j], depth + 1)) {
          if (!key_eq (r, a.v.d->vals[i], b.v.d->vals[j], depth + 1))
            return false;
          found = true;
        }
      if (!found)
        return false;
    }
    return true;
  }
  case JV_NS: return a.v.ns == b.v.ns;
  case JV_LOOP: return a.v.loop == b.v.loop;
  case JV_FUNC: return a.v.fn == b.v.fn;
  default: return false;
  }
}

JVal *
jdict_get (const JDict *d, JVal key)
{
  if (key.t == JV_STR) {                   /* the common case: string keys */
    for (size_t i = 0; i < d->n; i++)
      if (d->keys[i].t == JV_STR && d->keys[i].v.s->len == key.v.s->len &&
          memcmp (d->keys[i].v.s->data, key.v.s->data, key.v.s->len) == 0)
        return &d->vals[i];
    return NULL;
  }
  for (size_t i = 0; i < d->n; i++)
    if (key_eq (NULL, d->keys[i], key, 0))
      return &d->vals[i];
  return NULL;
}

JVal *
jdict_get_str (const JDict *d, const char *key)
{
  size_t n = strlen (key);
  for (size_t i = 0; i < d->n; i++)
    if (d->keys[i].t == JV_STR && d->keys[i].v.s->len == n && memcmp (d->keys[i].v.s->data, key, n) == 0)
      return &d->vals[i];
  return NULL;
}

void
jdict_set (JnRun *r, JDict *d, JVal key, JVal val)
{
  JVal *slot = jdict_get (d, key);
  if (slot) {
    *slot = val;
    return;
  }
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 4;
    JVal *k = jn_alloc (r, cap * sizeof *k), *v = jn_alloc (r, cap * sizeof *v);
    if (d->n) {
      memcpy (k, d->keys, d->n * sizeof *k);
      memcpy (v, d->vals, d->n * sizeof *v);
    }
    d->keys = k;
    d->vals = v;
    d->cap = cap;
  }
  d->keys[d->n] = key;
  d->vals[d->n] = val;
  d->n++;
}

/* ---- Python semantics --------------------------------------------------------------- */

bool
jv_truthy (JVal v)
{
  switch (v.t) {
  case JV_UNDEF: case JV_NONE: return false;
  case JV_BOOL: return v.v.b;
  case JV_INT: return v.v.i != 0;
  case JV_FLOAT: return v.v.f != 0.0;
  case JV_STR: return v.v.s->len > 0;
  case JV_LIST: return v.v.l->kind == LK_GEN || v.v.l->kind == LK_ITER || v.v.l->n > 0;
  case JV_DICT: return v.v.d->n > 0;
  default: return true;
  }
}

const char *
jv_type_name (JVal v)
{
  switch (v.t) {
  case JV_UNDEF: return "Undefined";
  case JV_NONE: return "NoneType";
  case JV_BOOL: return "bool";
  case JV_INT: return "int";
  case JV_FLOAT: return "float";
  case JV_STR: return "str";
  case JV_LIST: return v.v.l->kind != LK_PLAIN ? v.v.l->name : v.v.l->tuple ? "tuple" : "list";
  case JV_DICT: return "dict";
  case JV_NS: return "Namespace";
  case JV_LOOP: return "LoopContext";
  default: return "function";
  }
}

bool
jv_hashable (JVal v)
{
  if (v.t == JV_LIST && (v.v.l->kind == LK_RANGE || v.v.l->kind == LK_GEN || v.v.l->kind == LK_ITER))
    return true;
  if (v.t == JV_DICT || (v.t == JV_LIST && !v.v.l->tuple))
    return false;
  if (v.t == JV_LIST)
    for (size_t i = 0; i < v.v.l->n; i++)
      if (!jv_hashable (v.v.l->items[i]))
        return false;
  return true;
}

bool
jv_equal (JnRun *r, JVal a, JVal b)
{
  return key_eq (r, a, b, 0);
}

static bool
is_num (JVal v)
{
  return v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT;
}

static bool
cmp_result (int op, int c)
{
  switch (op) {
  case OP_LT: return c < 0;
  case OP_LE: return c <= 0;
  case OP_GT: return c > 0;
  default: return c >= 0;
  }
}

static const char *
op_text (int op)
{
  switch (op) {
  case OP_LT: return "<";
  case OP_LE: return "<=";
  case OP_GT: return ">";
  default: return ">=";
  }
}

static bool
cmp_depth (JnRun *r, int op, JVal a, JVal b, int line, int depth)
{
  if (depth > MAX_VALUE_DEPTH)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "maximum recursion depth exceeded in comparison");
  if (a.t == JV_UNDEF || b.t == JV_UNDEF) {
    char m[300];
    jv_undef_message (a.t == JV_UNDEF ? a : b, m, sizeof m);
    jn_fail (r, SUTRA_ERR_FORMAT, line, "%s", m);
  }
  if (is_num (a) && is_num (b)) {
    if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
      int64_t x = a.t == JV_INT ? a.v.i : a.v.b, y = b.t == JV_INT ? b.v.i : b.v.b;
      return cmp_result (op, x < y ? -1 : x > y ? 1 : 0);
    }
    double x = a.t == JV_FLOAT ? a.v.f : a.t == JV_INT ? (double) a.v.i : a.v.b;
    double y = b.t == JV_FLOAT ? b.v.f : b.t == JV_INT ? (double) b.v.i : b.v.b;
    switch (op) {                           /* NaN: every ordering is false */
    case OP_LT: return x < y;
    case OP_LE: return x <= y;
    case OP_GT: return x > y;
    default: return x >= y;
    }
  }
  if (a.t == JV_STR && b.t == JV_STR) {
    size_t n = a.v.s->len < b.v.s->len ? a.v.s->len : b.v.s->len;
    int c = memcmp (a.v.s->data, b.v.s->data, n);   /* UTF-8 order = code point order */
    if (c == 0)
      c = a.v.s->len < b.v.s->len ? -1 : a.v.s->len > b.v.s->len ? 1 : 0;
    return cmp_result (op, c);
  }
  if (a.t == JV_LIST && b.t == JV_LIST && a.v.l->tuple == b.v.l->tuple &&
      a.v.l->kind == LK_PLAIN && b.v.l->kind == LK_PLAIN) {
    size_t n = a.v.l->n < b.v.l->n ? a.v.l->n : b.v.l->n;
    for (size_t i = 0; i < n; i++)
      if (!key_eq (r, a.v.l->items[i], b.v.l->items[i], depth + 1))
        return cmp_depth (r, op, a.v.l->items[i], b.v.l->items[i], line, depth + 1);
    int c = a.v.l->n < b.v.l->n ? -1 : a.v.l->n > b.v.l->n ? 1 : 0;
    return cmp_result (op, c);
  }
  jn_fail (r, SUTRA_ERR_FORMAT, line, "'%s' not supported between instances of '%s' and '%s'",
           op_text (op), jv_type_name (a), jv_type_name (b));
}

bool
jv_cmp (JnRun *r, int op, JVal a, JVal b, int line)
{
  return cmp_depth (r, op, a, b, line, 0);
}

int64_t
jstr_ncp (JStr *s)
{
  if (s->ncp < 0) {
    int64_t n = 0;
    for (size_t i = 0; i < s->len; i++)
      n += ((unsigned char) s->data[i] & 0xC0) != 0x80;
    s->ncp = n;
  }
  return s->ncp;
}

/* ---- buffers -------------------------------------------------------------------------- */

void
jbuf_init (JBuf *b, JnRun *r, size_t max)
{
  b->r = r;
  b->p = NULL;
  b->n = b->cap = 0;
  b->max = max;
}

static void
jbuf_reserve (JBuf *b, size_t extra)
{
  if (extra > b->max - b->n || b->n + extra < b->n)
    jn_fail (b->r, SUTRA_ERR_UNSUPPORTED, -1, "rendered text exceeds the limit of %zu bytes",
             b->max);
  size_t need = b->n + extra + 1;
  if (need <= b->cap)
    return;
  size_t cap = b->cap ? b->cap * 2 : 64;
  while (cap < need)
    cap *= 2;
  char *p = jn_alloc (b->r, cap);
  if (b->n)
    memcpy (p, b->p, b->n);
  b->p = p;
  b->cap = cap;
}

void
jbuf_add (JBuf *b, const char *s, size_t n)
{
  if (n == 0)
    return;
  jbuf_reserve (b, n);
  memcpy (b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

void
jbuf_addc (JBuf *b, char c)
{
  jbuf_add (b, &c, 1);
}

void
jbuf_addf (JBuf *b, const char *fmt, ...)
{
  char tmp[256];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (tmp, sizeof tmp, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  if ((size_t) n < sizeof tmp) {
    jbuf_add (b, tmp, (size_t) n);
    return;
  }
  char *big = jn_alloc (b->r, (size_t) n + 1);
  va_start (ap, fmt);
  vsnprintf (big, (size_t) n + 1, fmt, ap);
  va_end (ap);
  jbuf_add (b, big, (size_t) n);
}

void
jbuf_add_cp (JBuf *b, uint32_t cp)
{
  char tmp[4];
  jbuf_add (b, tmp, jn_utf8_put (tmp, cp));
}

JVal
jbuf_to_str (JBuf *b)
{
  return jv_str (b->r, b->p ? b->p : "", b->n);
}

/* ---- str() and repr() ------------------------------------------------------------------ */

void
jv_float_repr (double f, char out[32])
{
  if (isnan (f)) {
    strcpy (out, "nan");
    return;
  }
  if (isinf (f)) {
    strcpy (out, f < 0 ? "-inf" : "inf");
    return;
  }
  if (f == 0) {
    strcpy (out, signbit (f) ? "-0.0" : "0.0");
    return;
  }
  char buf[48];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf (buf, sizeof buf, "%.*e", prec - 1, f);
    if (strtod (buf, NULL) == f)
      break;
  }
  /* buf = [-]d[.ddd]e(+|-)XX */
  char digits[24];
  int nd = 0;
  const char *p = buf;
  bool neg = *p == '-';
  if (neg)
    p++;
  for (; *p && *p != 'e'; p++)
    if (*p >= '0' && *p <= '9')
      digits[nd++] = *p;
  int exp10 = atoi (p + 1);
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  digits[nd] = '\0';
  int decpt = exp10 + 1;                   /* value = 0.d1d2... * 10^decpt */
  char *o = out;
  if (neg)
    *o++ = '-';
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      *o++ = '0';
      *o++ = '.';
      for (int i = 0; i < -decpt; i++)
        *o++ = '0';
      memcpy (o, digits, (size_t) nd);
      o += nd;
    } else if (decpt >= nd) {
      memcpy (o, digits, (size_t) nd);
      o += nd;
      for (int i = nd; i < decpt; i++)
        *o++ = '0';
      *o++ = '.';
      *o++ = '0';
    } else {
      memcpy (o, digits, (size_t) decpt);
      o += decpt;
      *o++ = '.';
      memcpy (o, digits + decpt, (size_t) (nd - decpt));
      o += nd - decpt;
    }
    *o = '\0';
  } else {
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      memcpy (o, digits + 1, (size_t) (nd - 1));
      o += nd - 1;
    }
    int e = decpt - 1;
    sprintf (o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
  }
}

static bool
py_isprintable (uint32_t cp)
{
  if (cp < 0x80)
    return cp >= 0x20 && cp < 0x7f;
  switch (utf8proc_category ((utf8proc_int32_t) cp)) {
  case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
  case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL:
  case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
    return false;
  default:
    return true;
  }
}

static void
str_repr (JBuf *b, const JStr *s)
{
  bool has_sq = memchr (s->data, '\'', s->len) != NULL;
  bool has_dq = memchr (s->data, '"', s->len) != NULL;
  char q = has_sq && !has_dq ? '"' : '\'';
  jbuf_addc (b, q);
  for (size_t i = 0; i < s->len;) {
    uint32_t cp = jn_utf8_next (s->data, s->len, &i);
    if (cp == (uint32_t) q || cp == '\\') {
      jbuf_addc (b, '\\');
      jbuf_addc (b, (char) cp);
    } else if (cp == '\t') {
      jbuf_add (b, "\\t", 2);
    } else if (cp == '\n') {
      jbuf_add (b, "\\n", 2);
    } else if (cp == '\r') {
      jbuf_add (b, "\\r", 2);
    } else if (py_isprintable (cp)) {
      jbuf_add_cp (b, cp);
    } else if (cp < 0x100) {
      jbuf_addf (b, "\\x%02x", cp);
    } else if (cp < 0x10000) {
      jbuf_addf (b, "\\u%04x", cp);
    } else {
      jbuf_addf (b, "\\U%08x", cp);
    }
  }
  jbuf_addc (b, q);
}

static void
misc_repr (JBuf *b, JVal v)
{
  switch (v.t) {
  case JV_UNDEF: jbuf_add (b, "Undefined", 9); break;
  case JV_NS:
    jbuf_add (b, "<Namespace ", 11);
    {
      JVal d = { .t = JV_DICT, .v.d = v.v.ns->attrs };
      jv_repr_into (b, d, 1);
    }
    jbuf_addc (b, '>');
    break;
  case JV_LOOP: jbuf_add (b, "<LoopContext>", 13); break;
  default: jbuf_add (b, "<function>", 10); break;
  }
}

void
jv_repr_into (JBuf *b, JVal v, int depth)
{
  if (depth > MAX_VALUE_DEPTH)
    jn_fail (b->r, SUTRA_ERR_FORMAT, -1, "maximum recursion depth exceeded while getting the "
             "repr of an object");
  switch (v.t) {
  case JV_STR:
    if (v.markup)
      jbuf_add (b, "Markup(", 7);
    str_repr (b, v.v.s);
    if (v.markup)
      jbuf_addc (b, ')');
    break;
  case JV_LIST: {
    JList *l = v.v.l;
    if (l->kind == LK_RANGE) {
      if (l->rstep == 1)
        jbuf_addf (b, "range(%lld, %lld)", (long long) l->rstart, (long long) l->rstop);
      else
        jbuf_addf (b, "range(%lld, %lld, %lld)", (long long) l->rstart, (long long) l->rstop,
                   (long long) l->rstep);
      break;
    }
    if (l->kind == LK_GEN) {
      jbuf_addf (b, "<generator object %s>", l->func ? l->func : "genexpr");
      break;
    }
    if (l->kind == LK_ITER) {
      jbuf_addf (b, "<%s object>", l->name);
      break;
    }
    if (l->kind == LK_VIEW) {
      jbuf_addf (b, "%s([", l->name);
      for (size_t i = 0; i < l->n; i++) {
        if (i)
          jbuf_add (b, ", ", 2);
        jv_repr_into (b, l->items[i], depth + 1);
      }
      jbuf_add (b, "])", 2);
      break;
    }
    jbuf_addc (b, l->tuple ? '(' : '[');
    for (size_t i = 0; i < l->n; i++) {
      if (i)
        jbuf_add (b, ", ", 2);
      jv_repr_into (b, l->items[i], depth + 1);
    }
    if (l->tuple && l->n == 1)
      jbuf_addc (b, ',');
    jbuf_addc (b, l->tuple ? ')' : ']');
    break;
  }
  case JV_DICT: {
    JDict *d = v.v.d;
    jbuf_addc (b, '{');
    for (size_t i = 0; i < d->n; i++) {
      if (i)
        jbuf_add (b, ", ", 2);
      jv_repr_into (b, d->keys[i], depth + 1);
      jbuf_add (b, ": ", 2);
      jv_repr_into (b, d->vals[i], depth + 1);
    }
    jbuf_addc (b, '}');
    break;
  }
  case JV_UNDEF: case JV_NS: case JV_LOOP: case JV_FUNC:
    misc_repr (b, v);
    break;
  default:
    jv_str_into (b, v);
  }
}

void
jv_str_into (JBuf *b, JVal v)
{
  switch (v.t) {
  case JV_UNDEF: break;
  case JV_NONE: jbuf_add (b, "None", 4); break;
  case JV_BOOL: v.v.b ? jbuf_add (b, "True", 4) : jbuf_add (b, "False", 5); break;
  case JV_INT: jbuf_addf (b, "%lld", (long long) v.v.i); break;
  case JV_FLOAT: {
    char tmp[32];
    jv_float_repr (v.v.f, tmp);
    jbuf_add (b, tmp, strlen (tmp));
    break;
  }
  case JV_STR: jbuf_add (b, v.v.s->data, v.v.s->len); break;
  case JV_LOOP: jbuf_add (b, "<LoopContext>", 13); break;
  default: jv_repr_into (b, v, 0); break;
  }
}

JVal
jv_to_str (JnRun *r, JVal v)
{
  if (v.t == JV_STR)
    return v;
  JBuf b;
  jbuf_init (&b, r, (size_t) -1);
  jv_str_into (&b, v);
  return jbuf_to_str (&b);
}







