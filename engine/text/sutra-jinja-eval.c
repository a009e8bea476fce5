/* sutra-jinja-eval.c: renders a parsed template (Jinja2 3.1 semantics, sandboxed as
 * transformers' ImmutableSandboxedEnvironment).
 *
 * Scoping follows Jinja's compiled frames: a for-loop iteration, a macro call, a call/filter/
 * set block body and `with` get a child scope; `set` writes the innermost scope; `if` opens
 * none. So a `set` inside a loop is gone after the loop (templates use namespace() for that),
 * and each iteration starts from the enclosing values. Attribute and item lookups go through
 * the sandbox rules (dict keys and safe methods; mutating methods such as list.append are
 * "unsafe"; a missing key is an Undefined that only fails when used). Every step, output byte,
 * temporary byte and nested call is counted against SutraJinjaOptions. */
#include "sutra-jinja-private.h"

#include <json-c/json.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_OUTPUT ((size_t) 64 << 20)
#define DEFAULT_MAX_STEPS ((size_t) 200000000)
#define DEFAULT_MAX_MEMORY ((size_t) 512 << 20)
#define DEFAULT_MAX_DEPTH 200
#define MAX_EXPR_DEPTH 2000      /* native recursion through nested expressions */
#define MAX_RANGE 100000         /* jinja2.sandbox.MAX_RANGE */

typedef struct Scope Scope;
struct Scope {
  Scope *parent;
  size_t n, cap;
  const char **names;
  JVal *vals;
};

typedef enum {
  FN_RANGE, FN_DICT, FN_NAMESPACE, FN_RAISE, FN_STRFTIME, FN_JOINER, FN_CYCLER, FN_LIPSUM,
  FN_METHOD,       /* self.name(...) */
  FN_MACRO, FN_CALLER, FN_LOOP_CYCLE, FN_LOOP_CHANGED, FN_JOINER_INST,
  FN_UNSAFE,       /* a sandboxed attribute: calling it is a SecurityError */
} FnKind;

struct JFunc {
  FnKind kind;
  const char *name;          /* FN_METHOD: method name; FN_MACRO: macro name */
  JVal self;                 /* FN_METHOD: the bound object */
  const JnNode *node;        /* FN_MACRO / FN_CALLER */
  Scope *closure;
  JLoop *loop;               /* FN_LOOP* */
  const char *sep;           /* FN_JOINER_INST */
  bool used;                 /* FN_JOINER_INST */
};

struct JLoop {
  JList *items;
  int64_t index0;
  int depth0;
  const JnNode *node;        /* the for statement (recursive loops) */
  Scope *scope;              /* where the for statement runs */
  JVal changed_last;
  bool changed_set;
};

struct JnCtx {
  JnRun run;
  SutraJinjaOptions opts;
  size_t steps;
  int depth;                 /* nested macro calls / recursive loops */
  int expr_depth;
  Scope *builtins;
  JBuf *out;
};

enum { EXEC_NORMAL, EXEC_BREAK, EXEC_CONTINUE };

static JVal eval (JnCtx *c, const JnNode *n, Scope *s);
static int exec_body (JnCtx *c, const JnNodes *body, Scope *s);

JnRun *
jn_ctx_run (JnCtx *c)
{
  return &c->run;
}

size_t
jn_max_output (JnCtx *c)
{
  return c->opts.max_output;
}

void
jn_step (JnCtx *c, size_t cost, int line)
{
  c->steps += cost;
  if (c->steps > c->opts.max_steps)
    jn_fail (&c->run, SUTRA_ERR_UNSUPPORTED, line, "template needs more than %zu evaluation "
             "steps (render limit)", c->opts.max_steps);
}

_Noreturn void
jn_fail_undefined (JnCtx *c, JVal u, int line)
{
  char m[400];
  jv_undef_message (u, m, sizeof m);
  jn_fail (&c->run, SUTRA_ERR_FORMAT, line, "%s", m);
}

void
jn_check_defined (JnCtx *c, JVal v, int line)
{
  if (v.t == JV_UNDEF)
    jn_fail_undefined (c, v, line);
}

/* ---- scopes ----------------------------------------------------------------------------- */

static Scope *
scope_new (JnCtx *c, Scope *parent)
{
  Scope *s = jn_alloc (&c->run, sizeof *s);
  s->parent = parent;
  return s;
}

static void
scope_set (JnCtx *c, Scope *s, const char *name, JVal v)
{
  for (size_t i = 0; i < s->n; i++)
    if (strcmp (s->names[i], name) == 0) {
      s->vals[i] = v;
      return;
    }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 4;
    const char **nn = jn_alloc (&c->run, cap * sizeof *nn);
    JVal *nv = jn_alloc (&c->run, cap * sizeof *nv);
    if (s->n) {
      memcpy (nn, s->names, s->n * sizeof *nn);
      memcpy (nv, s->vals, s->n * sizeof *nv);
    }
    s->names = nn;
    s->vals = nv;
    s->cap = cap;
  }
  s->names[s->n] = name;
  s->vals[s->n] = v;
  s->n++;
}

static JVal *
scope_find (Scope *s, const char *name)
{
  for (; s; s = s->parent)
    for (size_t i = s->n; i-- > 0;)
      if (strcmp (s->names[i], name) == 0)
        return &s->vals[i];
  return NULL;
}

static JVal
func_value (JnCtx *c, FnKind kind)
{
  JFunc *f = jn_alloc (&c->run, sizeof *f);
  f->kind = kind;
  JVal v = { .t = JV_FUNC, .v.fn = f };
  return v;
}

/* ---- iteration and length ------------------------------------------------------------------ */

JList *
jn_iterate (JnCtx *c, JVal v, int line)
{
  JnRun *r = &c->run;
  switch (v.t) {
  case JV_UNDEF:
    return jv_list (r, 0, false).v.l;
  case JV_LIST: {
    JList *l = v.v.l;
    if (l->kind != LK_GEN && l->kind != LK_ITER)
      return l;
    if (l->lazy_error)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "%s", l->lazy_error);
    /* a generator yields what is left once; the next iteration finds it exhausted */
    size_t from = l->pos < l->n ? l->pos : l->n;
    JList *rest = jv_list (r, l->n - from, false).v.l;
    memcpy (rest->items, l->items + from, (l->n - from) * sizeof (JVal));
    l->pos = l->n;
    return rest;
  }
  case JV_DICT: {
    JList *l = jv_list (r, v.v.d->n, false).v.l;
    memcpy (l->items, v.v.d->keys, v.v.d->n * sizeof (JVal));
    return l;
  }
  case JV_STR: {
    JStr *s = v.v.s;
    JList *l = jv_list (r, (size_t) jstr_ncp (s), false).v.l;
    size_t k = 0;
    for (size_t i = 0; i < s->len;) {
      size_t a = i;
      jn_utf8_next (s->data, s->len, &i);
      l->items[k++] = jv_str (r, s->data + a, i - a);
    }
    jn_step (c, k / 16, line);
    return l;
  }
  case JV_LOOP:
    return v.v.loop->items;
  default:
    jn_fail (r, SUTRA_ERR_FORMAT, line, "'%s' object is not iterable", jv_type_name (v));
  }
}

int64_t
jn_len (JnCtx *c, JVal v, int line)
{
  switch (v.t) {
  case JV_UNDEF: return 0;
  case JV_STR: return jstr_ncp (v.v.s);
  case JV_LIST:
    if (v.v.l->kind == LK_GEN || v.v.l->kind == LK_ITER)
      break;
    return (int64_t) v.v.l->n;
  case JV_DICT: return (int64_t) v.v.d->n;
  case JV_LOOP: return (int64_t) v.v.loop->items->n;
  default:
    break;
  }
  jn_fail (&c->run, SUTRA_ERR_FORMAT, line, "object of type '%s' has no len()",
           jv_type_name (v));
}

/* ---- attribute / item access (sandboxed) ---------------------------------------------------- */

static JVal
unsafe_attr (JnCtx *c, JVal obj, const char *name)
{
  char *hint = jn_alloc (&c->run, strlen (name) + 96);
  sprintf (hint, "access to attribute '%s' of '%s' object is unsafe.", name, jv_type_name (obj));
  return jv_undef_hint (&c->run, hint, true);
}

static JVal
method_value (JnCtx *c, JVal obj, const char *name)
{
  JVal f = func_value (c, FN_METHOD);
  f.v.fn->self = obj;
  f.v.fn->name = name;
  return f;
}

static JVal
loop_attr (JnCtx *c, JLoop *l, const char *name, bool *found)
{
  int64_t i = l->index0, n = (int64_t) l->items->n;
  *found = true;
  if (!strcmp (name, "index")) return jv_int (i + 1);
  if (!strcmp (name, "index0")) return jv_int (i);
  if (!strcmp (name, "revindex")) return jv_int (n - i);
  if (!strcmp (name, "revindex0")) return jv_int (n - i - 1);
  if (!strcmp (name, "first")) return jv_bool (i == 0);
  if (!strcmp (name, "last")) return jv_bool (i == n - 1);
  if (!strcmp (name, "length")) return jv_int (n);
  if (!strcmp (name, "depth")) return jv_int (l->depth0 + 1);
  if (!strcmp (name, "depth0")) return jv_int (l->depth0);
  if (!strcmp (name, "previtem"))
    return i > 0 ? l->items->items[i - 1] : jv_undef_hint (&c->run, "there is no previous item",
                                                           false);
  if (!strcmp (name, "nextitem"))
    return i + 1 < n ? l->items->items[i + 1] : jv_undef_hint (&c->run, "there is no next item",
                                                               false);
  if (!strcmp (name, "cycle") || !strcmp (name, "changed")) {
    JVal f = func_value (c, name[0] == 'c' && name[1] == 'y' ? FN_LOOP_CYCLE : FN_LOOP_CHANGED);
    f.v.fn->loop = l;
    return f;
  }
  *found = false;
  return jv_undef ();
}

static bool
is_dunder (const char *name)
{
  size_t n = strlen (name);
  return n >= 4 && name[0] == '_' && name[1] == '_' && name[n - 1] == '_' && name[n - 2] == '_';
}

JVal
jn_getattr (JnCtx *c, JVal obj, const char *name, int line)
{
  JnRun *r = &c->run;
  JVal key = jv_cstr (r, name);
  switch (obj.t) {
  case JV_UNDEF:
    jn_fail_undefined (c, obj, line);
  case JV_DICT: {
    bool unsafe = false;
    if (jn_has_method (obj, name, &unsafe))
      return unsafe ? unsafe_attr (c, obj, name) : method_value (c, obj, name);
    if (is_dunder (name))
      return unsafe_attr (c, obj, name);
    JVal *v = jdict_get (obj.v.d, key);
    return v ? *v : jv_undef_attr (r, obj, key);
  }
  case JV_NS: {
    JVal *v = jdict_get (obj.v.ns->attrs, key);
    return v ? *v : jv_undef_attr (r, obj, key);
  }
  case JV_LOOP: {
    bool found;
    JVal v = loop_attr (c, obj.v.loop, name, &found);
    return found ? v : jv_undef_attr (r, obj, key);
  }
  default: {
    bool unsafe = false;
    if (jn_has_method (obj, name, &unsafe))
      return unsafe ? unsafe_attr (c, obj, name) : method_value (c, obj, name);
    if (is_dunder (name))
      return unsafe_attr (c, obj, name);
    return jv_undef_attr (r, obj, key);
  }
  }
}

static bool
as_index (JVal k, int64_t *i)
{
  if (k.t == JV_INT) {
    *i = k.v.i;
    return true;
  }
  if (k.t == JV_BOOL) {
    *i = k.v.b;
    return true;
  }
  return false;
}

JVal
jn_getitem (JnCtx *c, JVal obj, JVal key, int line)
{
  JnRun *r = &c->run;
  int64_t i;
  switch (obj.t) {
  case JV_UNDEF:
    jn_fail_undefined (c, obj, line);
  case JV_DICT:
    if (jv_hashable (key)) {
      JVal *v = jdict_get (obj.v.d, key);
      if (v)
        return *v;
    }
    break;
  case JV_LIST:
    if ((obj.v.l->kind == LK_PLAIN || obj.v.l->kind == LK_RANGE) && as_index (key, &i)) {
      int64_t n = (int64_t) obj.v.l->n;
      if (i < 0)
        i += n;
      if (i >= 0 && i < n)
        return obj.v.l->items[i];
    }
    break;
  case JV_STR:
    if (as_index (key, &i)) {
      int64_t n = jstr_ncp (obj.v.s);
      if (i < 0)
        i += n;
      if (i >= 0 && i < n)
        return jn_str_char_at (r, obj.v.s, i);
    }
    break;
  default:
    break;
  }
  /* the sandbox then tries getattr(obj, key) for string keys */
  if (key.t == JV_STR && obj.t != JV_DICT) {
    JVal v = jn_getattr (c, obj, key.v.s->data, line);
    if (v.t != JV_UNDEF || (v.v.u && v.v.u->kind == JU_HINT))
      return v;
  } else if (key.t == JV_STR && obj.t == JV_DICT) {
    bool unsafe = false;
    if (jn_has_method (obj, key.v.s->data, &unsafe))
      return unsafe ? unsafe_attr (c, obj, key.v.s->data) : method_value (c, obj, key.v.s->data);
  }
  return jv_undef_attr (r, obj, key);
}

/* Python's PySlice_AdjustIndices; returns the number of selected items. */
static int64_t
adjust_slice (int64_t len, JVal vstart, JVal vstop, int64_t step, int64_t *start)
{
  int64_t st = 0, sp = 0;
  bool has_start = vstart.t != JV_NONE, has_stop = vstop.t != JV_NONE;
  if (!has_start) {
    st = step < 0 ? len - 1 : 0;
  } else {
    as_index (vstart, &st);
    if (st < 0) {
      st += len;
      if (st < 0)
        st = step < 0 ? -1 : 0;
    } else if (st >= len) {
      st = step < 0 ? len - 1 : len;
    }
  }
  if (!has_stop) {
    sp = step < 0 ? -1 : len;              /* "-1" here means before the start */
    if (step < 0) {
      *start = st;
      return st >= 0 ? (st - (-1) - 1) / (-step) + 1 : 0;
    }
  } else {
    as_index (vstop, &sp);
    if (sp < 0) {
      sp += len;
      if (sp < 0)
        sp = step < 0 ? -1 : 0;
    } else if (sp >= len) {
      sp = step < 0 ? len - 1 : len;
    }
  }
  *start = st;
  if (step < 0)
    return sp < st ? (st - sp - 1) / (-step) + 1 : 0;
  return st < sp ? (sp - st - 1) / step + 1 : 0;
}

static JVal
eval_slice (JnCtx *c, JVal obj, const JnNode *sl, Scope *s, int line)
{
  JnRun *r = &c->run;
  JVal parts[3];
  const JnNode *nodes[3] = { sl->u.sl.start, sl->u.sl.stop, sl->u.sl.step };
  bool ok = true;
  for (int k = 0; k < 3; k++) {
    parts[k] = nodes[k] ? eval (c, nodes[k], s) : jv_none ();
    if (parts[k].t != JV_NONE && parts[k].t != JV_INT && parts[k].t != JV_BOOL)
      ok = false;
  }
  /* Jinja compiles x[a:b] to a plain Python subscript (no sandbox getitem), so errors surface */
  if (obj.t == JV_UNDEF)
    jn_fail_undefined (c, obj, line);
  if (obj.t == JV_DICT)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "unhashable type: 'slice'");
  if ((obj.t != JV_LIST && obj.t != JV_STR) ||
      (obj.t == JV_LIST && obj.v.l->kind != LK_PLAIN && obj.v.l->kind != LK_RANGE))
    jn_fail (r, SUTRA_ERR_FORMAT, line, "'%s' object is not subscriptable", jv_type_name (obj));
  for (int k = 0; k < 3; k++)
    if (parts[k].t == JV_UNDEF)
      jn_fail_undefined (c, parts[k], line);
  if (!ok)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "slice indices must be integers or None or have an "
             "__index__ method");
  int64_t step = 1;
  if (parts[2].t != JV_NONE)
    as_index (parts[2], &step);
  if (step == 0)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "slice step cannot be zero");
  int64_t len = obj.t == JV_LIST ? (int64_t) obj.v.l->n : jstr_ncp (obj.v.s);
  int64_t start;
  int64_t count = adjust_slice (len, parts[0], parts[1], step, &start);
  jn_step (c, (size_t) (count > 0 ? count : 0) / 16, line);
  if (obj.t == JV_STR)
    return jn_str_slice (r, obj.v.s, start, step, count);
  if (obj.v.l->kind == LK_RANGE) {        /* a slice of a range is a range */
    JList *l = obj.v.l;
    int64_t nstart = l->rstart + start * l->rstep, nstep = l->rstep * step;
    int64_t nstop = l->rstart + (start + (count > 0 ? count : 0) * step) * l->rstep;
    return jv_range (r, nstart, nstop, nstep, (size_t) (count > 0 ? count : 0));
  }
  JVal out = jv_list (r, (size_t) (count > 0 ? count : 0), obj.v.l->tuple);
  for (int64_t k = 0; k < count; k++)
    out.v.l->items[k] = obj.v.l->items[start + k * step];
  return out;
}

/* ---- arithmetic ----------------------------------------------------------------------------- */

static bool
is_numeric (JVal v)
{
  return v.t == JV_INT || v.t == JV_BOOL || v.t == JV_FLOAT;
}

static int64_t
ival (JVal v)
{
  return v.t == JV_INT ? v.v.i : v.t == JV_BOOL ? (int64_t) v.v.b : 0;
}

static double
fval (JVal v)
{
  return v.t == JV_FLOAT ? v.v.f : (double) ival (v);
}

static const char *
op_symbol (JnOp op)
{
  static const char *const s[] = { "+", "-", "*", "/", "//", "%", "**" };
  return op <= OP_POW ? s[op] : "?";
}

_Noreturn static void
overflow (JnCtx *c, int line)
{
  jn_fail (&c->run, SUTRA_ERR_UNSUPPORTED, line, "integer result beyond 64 bits (Python would "
           "use a big integer; not supported)");
}

static JVal
repeat (JnCtx *c, JVal seq, int64_t times, int line)
{
  JnRun *r = &c->run;
  if (times < 0)
    times = 0;
  if (seq.t == JV_STR) {
    size_t len = seq.v.s->len;
    if (len && (uint64_t) times > c->opts.max_memory / len)
      jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "string repetition too large (render limit)");
    JStr *s = jstr_new (r, len * (size_t) times);
    for (int64_t k = 0; k < times; k++)
      memcpy (s->data + (size_t) k * len, seq.v.s->data, len);
    jn_step (c, len * (size_t) times / 64, line);
    JVal v = { .t = JV_STR, .v.s = s };
    return v;
  }
  size_t n = seq.v.l->n;
  if (n && (uint64_t) times > c->opts.max_memory / (n * sizeof (JVal)))
    jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "list repetition too large (render limit)");
  JVal out = jv_list (r, n * (size_t) times, seq.v.l->tuple);
  for (int64_t k = 0; k < times; k++)
    memcpy (out.v.l->items + (size_t) k * n, seq.v.l->items, n * sizeof (JVal));
  jn_step (c, n * (size_t) times / 16, line);
  return out;
}

JVal jn_percent_format (JnCtx *c, JStr *fmt, JVal args, int line);

JVal
jn_binop (JnCtx *c, JnOp op, JVal a, JVal b, int line)
{
  JnRun *r = &c->run;
  if (op == OP_MOD && a.t == JV_STR)      /* str.__mod__ runs first and accepts anything */
    return jn_percent_format (c, a.v.s, b, line);
  if (a.t == JV_UNDEF)
    jn_fail_undefined (c, a, line);
  if (b.t == JV_UNDEF)
    jn_fail_undefined (c, b, line);
  if (is_numeric (a) && is_numeric (b)) {
    bool fl = a.t == JV_FLOAT || b.t == JV_FLOAT;
    int64_t x = ival (a), y = ival (b), z;
    double fx = fval (a), fy = fval (b);
    switch (op) {
    case OP_ADD:
      if (fl) return jv_float (fx + fy);
      if (__builtin_add_overflow (x, y, &z)) overflow (c, line);
      return jv_int (z);
    case OP_SUB:
      if (fl) return jv_float (fx - fy);
      if (__builtin_sub_overflow (x, y, &z)) overflow (c, line);
      return jv_int (z);
    case OP_MUL:
      if (fl) return jv_float (fx * fy);
      if (__builtin_mul_overflow (x, y, &z)) overflow (c, line);
      return jv_int (z);
    case OP_DIV:
      if (fy == 0)
        jn_fail (r, SUTRA_ERR_FORMAT, line, fl ? "float division by zero" : "division by zero");
      return jv_float (fx / fy);
    case OP_FLOORDIV:
      if (fl) {
        if (fy == 0)
          jn_fail (r, SUTRA_ERR_FORMAT, line, "float floor division by zero");
        double m = fmod (fx, fy);
        double d = (fx - m) / fy;
        if (m != 0 && ((fy < 0) != (m < 0)))
          d -= 1.0;
        return jv_float (d == 0 ? copysign (0.0, fx / fy) : floor (d + 0.5 * (d != floor (d))));
      }
      if (y == 0)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) overflow (c, line);
      z = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0)))
        z--;
      return jv_int (z);
    case OP_MOD:
      if (fl) {
        if (fy == 0)
          jn_fail (r, SUTRA_ERR_FORMAT, line, "float modulo");
        double m = fmod (fx, fy);
        if (m != 0 && ((fy < 0) != (m < 0)))
          m += fy;
        else if (m == 0)
          m = copysign (0.0, fy);
        return jv_float (m);
      }
      if (y == 0)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "integer division or modulo by zero");
      if (y == -1)
        return jv_int (0);
      z = x % y;
      if (z != 0 && ((z < 0) != (y < 0)))
        z += y;
      return jv_int (z);
    case OP_POW:
      if (!fl && y >= 0) {
        int64_t acc = 1, base = x;
        int64_t e = y;
        while (e > 0) {
          if (e & 1)
            if (__builtin_mul_overflow (acc, base, &acc)) overflow (c, line);
          e >>= 1;
          if (e && __builtin_mul_overflow (base, base, &base)) overflow (c, line);
        }
        return jv_int (acc);
      }
      if (fx == 0 && fy < 0)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "0.0 cannot be raised to a negative power");
      if (fx < 0 && fy != floor (fy))
        jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "complex results are not supported");
      return jv_float (pow (fx, fy));
    default:
      break;
    }
  }
  if (op == OP_ADD) {
    if (a.t == JV_STR && b.t == JV_STR) {
      JStr *s = jstr_new (r, a.v.s->len + b.v.s->len);
      memcpy (s->data, a.v.s->data, a.v.s->len);
      memcpy (s->data + a.v.s->len, b.v.s->data, b.v.s->len);
      jn_step (c, s->len / 64, line);
      JVal v = { .t = JV_STR, .v.s = s };
      return v;
    }
    if (a.t == JV_LIST && b.t == JV_LIST && a.v.l->tuple == b.v.l->tuple &&
        a.v.l->kind == LK_PLAIN && b.v.l->kind == LK_PLAIN) {
      JVal out = jv_list (r, a.v.l->n + b.v.l->n, a.v.l->tuple);
      memcpy (out.v.l->items, a.v.l->items, a.v.l->n * sizeof (JVal));
      memcpy (out.v.l->items + a.v.l->n, b.v.l->items, b.v.l->n * sizeof (JVal));
      jn_step (c, out.v.l->n / 16, line);
      return out;
    }
    if (a.t == JV_STR || (a.t == JV_LIST && a.v.l->kind == LK_PLAIN))
      jn_fail (r, SUTRA_ERR_FORMAT, line, "can only concatenate %s (not \"%s\") to %s",
               jv_type_name (a), jv_type_name (b), jv_type_name (a));
  }
  if (op == OP_MUL) {
    bool sa = a.t == JV_STR || (a.t == JV_LIST && a.v.l->kind == LK_PLAIN);
    bool sb = b.t == JV_STR || (b.t == JV_LIST && b.v.l->kind == LK_PLAIN);
    if (sa && (b.t == JV_INT || b.t == JV_BOOL))
      return repeat (c, a, ival (b), line);
    if (sb && (a.t == JV_INT || a.t == JV_BOOL))
      return repeat (c, b, ival (a), line);
  }
  if (op == OP_MOD && a.t == JV_STR)
    return jn_percent_format (c, a.v.s, b, line);
  if (op == OP_MUL && (a.t == JV_STR || (a.t == JV_LIST && a.v.l->kind == LK_PLAIN)))
    jn_fail (r, SUTRA_ERR_FORMAT, line, "can't multiply sequence by non-int of type '%s'",
             jv_type_name (b));
  if (op == OP_MUL && (b.t == JV_STR || (b.t == JV_LIST && b.v.l->kind == LK_PLAIN)))
    jn_fail (r, SUTRA_ERR_FORMAT, line, "can't multiply sequence by non-int of type '%s'",
             jv_type_name (a));
  jn_fail (r, SUTRA_ERR_FORMAT, line, "unsupported operand type(s) for %s: '%s' and '%s'",
           op_symbol (op), jv_type_name (a), jv_type_name (b));
}

/* `needle in hay` */
static bool
contains (JnCtx *c, JVal needle, JVal hay, int line)
{
  JnRun *r = &c->run;
  switch (hay.t) {
  case JV_UNDEF:
    return false;
  case JV_STR:
    if (needle.t != JV_STR)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "'in <string>' requires string as left operand, not %s",
               jv_type_name (needle));
    return needle.v.s->len == 0 ||
           memmem (hay.v.s->data, hay.v.s->len, needle.v.s->data, needle.v.s->len) != NULL;
  case JV_LIST: {
    JList *l = jn_iterate (c, hay, line);  /* consumes a generator, as Python's `in` does */
    for (size_t i = 0; i < l->n; i++)
      if (jv_equal (r, needle, l->items[i]))
        return true;
    return false;
  }
  case JV_DICT:
    if (!jv_hashable (needle))
      jn_fail (r, SUTRA_ERR_FORMAT, line, "unhashable type: '%s'", jv_type_name (needle));
    return jdict_get (hay.v.d, needle) != NULL;
  case JV_LOOP: {
    JList *l = hay.v.loop->items;
    for (size_t i = 0; i < l->n; i++)
      if (jv_equal (r, needle, l->items[i]))
        return true;
    return false;
  }
  default:
    jn_fail (r, SUTRA_ERR_FORMAT, line, "argument of type '%s' is not iterable",
             jv_type_name (hay));
  }
}

/* ---- calls -------------------------------------------------------------------------------- */

static void
eval_args (JnCtx *c, const JnArgs *a, Scope *s, JnCallArgs *out, int line)
{
  JnRun *r = &c->run;
  JVal dyn = a->dyn_args ? eval (c, a->dyn_args, s) : jv_undef ();
  JList *extra = a->dyn_args ? jn_iterate (c, dyn, line) : NULL;
  size_t n = a->args.n + (extra ? extra->n : 0);
  out->n = n;
  out->v = jn_alloc (r, (n ? n : 1) * sizeof (JVal));
  for (size_t i = 0; i < a->args.n; i++)
    out->v[i] = eval (c, a->args.v[i], s);
  if (extra)
    memcpy (out->v + a->args.n, extra->items, extra->n * sizeof (JVal));
  JDict *dk = NULL;
  if (a->dyn_kwargs) {
    JVal d = eval (c, a->dyn_kwargs, s);
    if (d.t != JV_DICT)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "argument after ** must be a mapping, not %s",
               jv_type_name (d));
    dk = d.v.d;
  }
  size_t nk = a->nkw + (dk ? dk->n : 0);
  out->nkw = nk;
  out->kw = jn_alloc (r, (nk ? nk : 1) * sizeof (char *));
  out->kwv = jn_alloc (r, (nk ? nk : 1) * sizeof (JVal));
  for (size_t i = 0; i < a->nkw; i++) {
    out->kw[i] = a->kw_names[i];
    out->kwv[i] = eval (c, a->kw_vals[i], s);
  }
  for (size_t i = 0; dk && i < dk->n; i++) {
    if (dk->keys[i].t != JV_STR)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "keywords must be strings");
    out->kw[a->nkw + i] = dk->keys[i].v.s->data;
    out->kwv[a->nkw + i] = dk->vals[i];
  }
}

static void
enter_call (JnCtx *c, int line)
{
  if (++c->depth > c->opts.max_depth)
    jn_fail (&c->run, SUTRA_ERR_UNSUPPORTED, line, "calls nest deeper than %d (render limit)",
             c->opts.max_depth);
}

/* Binds arguments to a macro's (or call block's) parameters in scope ms, as Jinja's
 * Macro.__call__: positionals, then keywords, then defaults; varargs/kwargs when the body uses
 * them; "caller" for call blocks. */
static void
bind_params (JnCtx *c, const char *mname, size_t np, const char **params, JnNode **defaults,
             bool uses_varargs, bool uses_kwargs, bool uses_caller, const JnCallArgs *a,
             Scope *ms, int line)
{
  JnRun *r = &c->run;
  bool *kw_used = jn_alloc (r, (a->nkw ? a->nkw : 1) * sizeof (bool));
  JVal caller = jv_undef_hint (r, "No caller defined", false);
  for (size_t k = 0; k < a->nkw; k++)
    if (strcmp (a->kw[k], "caller") == 0 && uses_caller) {
      caller = a->kwv[k];
      kw_used[k] = true;
    }
  for (size_t i = 0; i < np; i++) {
    JVal v;
    bool have = false;
    if (i < a->n) {
      v = a->v[i];
      have = true;
    }
    for (size_t k = 0; k < a->nkw; k++)
      if (!kw_used[k] && strcmp (a->kw[k], params[i]) == 0) {
        if (have)
          jn_fail (r, SUTRA_ERR_FORMAT, line, "macro '%s' got multiple values for argument '%s'",
                   mname, params[i]);
        v = a->kwv[k];
        kw_used[k] = true;
        have = true;
      }
    if (!have) {
      if (defaults[i]) {
        v = eval (c, defaults[i], ms);
      } else {
        char *hint = jn_alloc (r, strlen (params[i]) + 40);
        sprintf (hint, "parameter '%s' was not provided", params[i]);
        v = jv_undef_hint (r, hint, false);
      }
    }
    scope_set (c, ms, params[i], v);
  }
  if (a->n > np) {
    if (!uses_varargs)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "macro '%s' takes not more than %zu argument(s)", mname,
               np);
    JVal va = jv_list (r, a->n - np, true);
    memcpy (va.v.l->items, a->v + np, (a->n - np) * sizeof (JVal));
    scope_set (c, ms, "varargs", va);
  } else if (uses_varargs) {
    scope_set (c, ms, "varargs", jv_list (r, 0, true));
  }
  JVal kw = jv_dict (r);
  for (size_t k = 0; k < a->nkw; k++) {
    if (kw_used[k])
      continue;
    if (!uses_kwargs)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "macro '%s' takes no keyword argument '%s'", mname,
               a->kw[k]);
    jdict_set (r, kw.v.d, jv_cstr (r, a->kw[k]), a->kwv[k]);
  }
  if (uses_kwargs)
    scope_set (c, ms, "kwargs", kw);
  if (uses_caller)
    scope_set (c, ms, "caller", caller);
}

static JVal
render_capture (JnCtx *c, const JnNodes *body, Scope *s)
{
  JBuf buf;
  jbuf_init (&buf, &c->run, c->opts.max_output);
  JBuf *saved = c->out;
  c->out = &buf;
  exec_body (c, body, s);
  c->out = saved;
  return jbuf_to_str (&buf);
}

static JVal exec_for (JnCtx *c, const JnNode *n, JVal iterable, Scope *s, int depth0);

static JVal strftime_now (JnCtx *c, JVal fmt, int line);

static JVal
call_builtin (JnCtx *c, JFunc *f, const JnCallArgs *a, int line)
{
  JnRun *r = &c->run;
  switch (f->kind) {
  case FN_RANGE: {
    if (a->n < 1 || a->n > 3 || a->nkw)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "range expected 1 to 3 integer arguments");
    int64_t v[3] = { 0, 0, 0 };
    for (size_t i = 0; i < a->n; i++) {
      if (a->v[i].t == JV_UNDEF)
        jn_fail_undefined (c, a->v[i], line);
      if (!as_index (a->v[i], &v[i]))
        jn_fail (r, SUTRA_ERR_FORMAT, line, "'%s' object cannot be interpreted as an integer",
                 jv_type_name (a->v[i]));
    }
    int64_t start = a->n == 1 ? 0 : v[0], stop = a->n == 1 ? v[0] : v[1];
    int64_t step = a->n == 3 ? v[2] : 1;
    if (step == 0)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "range() arg 3 must not be zero");
    double cnt = step > 0 ? ceil (((double) stop - (double) start) / (double) step)
                          : ceil (((double) start - (double) stop) / (double) -step);
    if (cnt < 0)
      cnt = 0;
    if (cnt > MAX_RANGE)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "Range too big. The sandbox blocks ranges larger than "
               "MAX_RANGE (%d).", MAX_RANGE);
    jn_step (c, (size_t) cnt / 16, line);
    return jv_range (r, start, stop, step, (size_t) cnt);
  }
  case FN_DICT:
  case FN_NAMESPACE: {
    JVal d = jv_dict (r);
    if (a->n > 1)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "%s expected at most 1 argument, got %zu",
               f->kind == FN_DICT ? "dict" : "namespace", a->n);
    if (a->n == 1) {
      JVal src = a->v[0];
      if (src.t == JV_DICT) {
        for (size_t i = 0; i < src.v.d->n; i++)
          jdict_set (r, d.v.d, src.v.d->keys[i], src.v.d->vals[i]);
      } else {
        JList *l = jn_iterate (c, src, line);
        for (size_t i = 0; i < l->n; i++) {
          JList *pair = jn_iterate (c, l->items[i], line);
          if (pair->n != 2)
            jn_fail (r, SUTRA_ERR_FORMAT, line, "dictionary update sequence element #%zu has "
                     "length %zu; 2 is required", i, pair->n);
          if (!jv_hashable (pair->items[0]))
            jn_fail (r, SUTRA_ERR_FORMAT, line, "unhashable type: '%s'",
                     jv_type_name (pair->items[0]));
          jdict_set (r, d.v.d, pair->items[0], pair->items[1]);
        }
      }
    }
    for (size_t k = 0; k < a->nkw; k++)
      jdict_set (r, d.v.d, jv_cstr (r, a->kw[k]), a->kwv[k]);
    if (f->kind == FN_DICT)
      return d;
    JNs *ns = jn_alloc (r, sizeof *ns);
    ns->attrs = d.v.d;
    JVal v = { .t = JV_NS, .v.ns = ns };
    return v;
  }
  case FN_RAISE: {
    JBuf b;
    jbuf_init (&b, r, (size_t) -1);
    if (a->n >= 1)
      jv_str_into (&b, a->v[0]);
    r->raised = true;
    jn_fail (r, SUTRA_ERR_INVALID, line, "%s", b.p ? b.p : "");
  }
  case FN_STRFTIME:
    if (a->n != 1)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "strftime_now() takes exactly one argument");
    return strftime_now (c, a->v[0], line);
  case FN_JOINER: {
    JVal j = func_value (c, FN_JOINER_INST);
    j.v.fn->sep = ", ";
    JVal sep = a->n ? a->v[0] : jv_undef ();
    for (size_t k = 0; k < a->nkw; k++)
      if (!strcmp (a->kw[k], "sep"))
        sep = a->kwv[k];
    if (sep.t != JV_UNDEF)
      j.v.fn->sep = jv_to_str (r, sep).v.s->data;
    return j;
  }
  case FN_JOINER_INST:
    if (!f->used) {
      f->used = true;
      return jv_str (r, "", 0);
    }
    return jv_cstr (r, f->sep);
  case FN_CYCLER:
  case FN_LIPSUM:
    jn_fail (r, SUTRA_ERR_UNSUPPORTED, line, "%s() is not supported",
             f->kind == FN_CYCLER ? "cycler" : "lipsum");
  default:
    jn_fail (r, SUTRA_ERR_FORMAT, line, "object is not callable");
  }
}

JVal
jn_call_value (JnCtx *c, JVal fn, const JnCallArgs *a, int line)
{
  JnRun *r = &c->run;
  if (fn.t == JV_UNDEF) {
    if (fn.v.u && fn.v.u->security)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "%s", fn.v.u->name);
    jn_fail_undefined (c, fn, line);
  }
  if (fn.t == JV_LOOP) {                   /* loop(children) in a recursive for */
    JLoop *l = fn.v.loop;
    if (!l->node->u.for_.recursive)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "Tried to call non recursive loop.  Maybe you forgot the "
               "'recursive' modifier.");
    if (a->n != 1 || a->nkw)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "loop() takes exactly one argument");
    enter_call (c, line);
    JBuf buf;
    jbuf_init (&buf, r, c->opts.max_output);
    JBuf *saved = c->out;
    c->out = &buf;
    exec_for (c, l->node, a->v[0], l->scope, l->depth0 + 1);
    c->out = saved;
    c->depth--;
    return jbuf_to_str (&buf);
  }
  if (fn.t != JV_FUNC)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "'%s' object is not callable", jv_type_name (fn));
  JFunc *f = fn.v.fn;
  switch (f->kind) {
  case FN_METHOD:
    return jn_call_method (c, f->self, f->name, a, line);
  case FN_MACRO:
  case FN_CALLER: {
    const JnNode *m = f->node;
    enter_call (c, line);
    Scope *ms = scope_new (c, f->closure);
    JVal out;
    if (f->kind == FN_MACRO) {
      bind_params (c, m->u.macro.name, m->u.macro.nparams, m->u.macro.params,
                   m->u.macro.defaults, m->u.macro.uses_varargs, m->u.macro.uses_kwargs,
                   m->u.macro.uses_caller, a, ms, line);
      out = render_capture (c, &m->u.macro.body, ms);
    } else {
      bind_params (c, "caller", m->u.callblock.nparams, m->u.callblock.params,
                   m->u.callblock.defaults, m->u.callblock.uses_varargs,
                   m->u.callblock.uses_kwargs, false, a, ms, line);
      out = render_capture (c, &m->u.callblock.body, ms);
    }
    c->depth--;
    return out;
  }
  case FN_LOOP_CYCLE:
    if (a->n == 0)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "no items for cycling given");
    return a->v[(size_t) f->loop->index0 % a->n];
  case FN_LOOP_CHANGED: {
    JVal now = jv_list (r, a->n, false);
    memcpy (now.v.l->items, a->v, a->n * sizeof (JVal));
    if (f->loop->changed_set && jv_equal (r, now, f->loop->changed_last))
      return jv_bool (false);
    f->loop->changed_last = now;
    f->loop->changed_set = true;
    return jv_bool (true);
  }
  default:
    return call_builtin (c, f, a, line);
  }
}

/* ---- strftime_now ------------------------------------------------------------------------ */

static JVal
strftime_now (JnCtx *c, JVal fmt, int line)
{
  JnRun *r = &c->run;
  if (fmt.t != JV_STR)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "strftime() argument 1 must be str, not %s",
             jv_type_name (fmt));
  time_t t = (time_t) c->opts.now;
  struct tm tm;
  if (c->opts.now_local)
    localtime_r (&t, &tm);
  else
    gmtime_r (&t, &tm);
  /* Python's datetime.strftime on a naive datetime: %f is microseconds, %z and %Z are empty;
   * everything else goes to the C library in the "C" locale. */
  JBuf f;
  jbuf_init (&f, r, 4096);
  const char *s = fmt.v.s->data;
  for (size_t i = 0; i < fmt.v.s->len; i++) {
    if (s[i] == '%' && i + 1 < fmt.v.s->len) {
      char k = s[i + 1];
      if (k == 'f') {
        jbuf_add (&f, "000000", 6);
        i++;
        continue;
      }
      if (k == 'z' || k == 'Z') {
        i++;
        continue;
      }
      jbuf_addc (&f, '%');
      jbuf_addc (&f, k);
      i++;
      continue;
    }
    jbuf_addc (&f, s[i]);
  }
  if (!f.p)
    return jv_str (r, "", 0);
  locale_t cl = newlocale (LC_ALL_MASK, "C", (locale_t) 0);
  size_t cap = 256 + f.n * 16;
  char *out = jn_alloc (r, cap);
  size_t n = cl ? strftime_l (out, cap, f.p, &tm, cl) : strftime (out, cap, f.p, &tm);
  if (cl)
    freelocale (cl);
  size_t clean_n;
  char *clean = jn_utf8_sanitize (r, out, n, &clean_n);
  return jv_str (r, clean, clean_n);
}

/* ---- expressions -------------------------------------------------------------------------- */

static JVal
eval_compare (JnCtx *c, const JnNode *n, Scope *s)
{
  JnRun *r = &c->run;
  JVal left = eval (c, n->u.cmp.first, s);
  for (size_t i = 0; i < n->u.cmp.n; i++) {
    JVal right = eval (c, n->u.cmp.rhs[i], s);
    bool ok;
    switch (n->u.cmp.ops[i]) {
    case OP_EQ: ok = jv_equal (r, left, right); break;
    case OP_NE: ok = !jv_equal (r, left, right); break;
    case OP_IN: ok = contains (c, left, right, n->line); break;
    case OP_NOTIN: ok = !contains (c, left, right, n->line); break;
    default: ok = jv_cmp (r, n->u.cmp.ops[i], left, right, n->line); break;
    }
    if (!ok)
      return jv_bool (false);
    left = right;
  }
  return jv_bool (true);
}

static JVal
eval (JnCtx *c, const JnNode *n, Scope *s)
{
  JnRun *r = &c->run;
  if (++c->expr_depth > MAX_EXPR_DEPTH)
    jn_fail (r, SUTRA_ERR_UNSUPPORTED, n->line, "expression nests too deeply (render limit)");
  jn_step (c, 1, n->line);
  r->cur_line = n->line;
  JVal v;
  switch ((JnNodeKind) n->kind) {
  case N_CONST:
    v = n->u.cval;
    break;
  case N_NAME: {
    JVal *p = scope_find (s, n->u.name);
    v = p ? *p : jv_undef_name (r, n->u.name);
    break;
  }
  case N_GETATTR:
    v = jn_getattr (c, eval (c, n->u.ga.obj, s), n->u.ga.attr, n->line);
    break;
  case N_GETITEM: {
    JVal obj = eval (c, n->u.gi.obj, s);
    if (n->u.gi.idx->kind == N_SLICE)
      v = eval_slice (c, obj, n->u.gi.idx, s, n->line);
    else
      v = jn_getitem (c, obj, eval (c, n->u.gi.idx, s), n->line);
    break;
  }
  case N_BINOP:
    v = eval (c, n->u.bin.a, s);
    v = jn_binop (c, n->u.bin.op, v, eval (c, n->u.bin.b, s), n->line);
    break;
  case N_NEG:
  case N_POS: {
    JVal x = eval (c, n->u.un, s);
    if (x.t == JV_UNDEF)
      jn_fail_undefined (c, x, n->line);
    if (!is_numeric (x))
      jn_fail (r, SUTRA_ERR_FORMAT, n->line, "bad operand type for unary %c: '%s'",
               n->kind == N_NEG ? '-' : '+', jv_type_name (x));
    if (n->kind == N_POS)
      v = x.t == JV_BOOL ? jv_int (x.v.b) : x;
    else if (x.t == JV_FLOAT)
      v = jv_float (-x.v.f);
    else if (ival (x) == INT64_MIN)
      overflow (c, n->line);
    else
      v = jv_int (-ival (x));
    break;
  }
  case N_NOT:
    v = jv_bool (!jv_truthy (eval (c, n->u.un, s)));
    break;
  case N_AND:
    v = eval (c, n->u.bin.a, s);
    if (jv_truthy (v))
      v = eval (c, n->u.bin.b, s);
    break;
  case N_OR:
    v = eval (c, n->u.bin.a, s);
    if (!jv_truthy (v))
      v = eval (c, n->u.bin.b, s);
    break;
  case N_COMPARE:
    v = eval_compare (c, n, s);
    break;
  case N_COND:
    if (jv_truthy (eval (c, n->u.cond.test, s)))
      v = eval (c, n->u.cond.a, s);
    else
      v = n->u.cond.b ? eval (c, n->u.cond.b, s)
                      : jv_undef_hint (r, "the inline if-expression evaluated to false and no "
                                       "else section was defined.", false);
    break;
  case N_FILTER: {
    JVal x = eval (c, n->u.flt.obj, s);
    JnCallArgs a;
    eval_args (c, &n->u.flt.a, s, &a, n->line);
    v = jn_apply_filter (c, n->u.flt.id, x, &a, n->line);
    break;
  }
  case N_TEST: {
    JVal x = eval (c, n->u.flt.obj, s);
    JnCallArgs a;
    eval_args (c, &n->u.flt.a, s, &a, n->line);
    bool ok = jn_apply_test (c, n->u.flt.id, x, &a, n->line);
    v = jv_bool (n->u.flt.negated ? !ok : ok);
    break;
  }
  case N_CALL: {
    JVal fn = eval (c, n->u.call.fn, s);
    JnCallArgs a;
    eval_args (c, &n->u.call.a, s, &a, n->line);
    v = jn_call_value (c, fn, &a, n->line);
    break;
  }
  case N_LIST:
  case N_TUPLE:
    v = jv_list (r, n->u.items.n, n->kind == N_TUPLE);
    for (size_t i = 0; i < n->u.items.n; i++)
      v.v.l->items[i] = eval (c, n->u.items.v[i], s);
    break;
  case N_DICT:
    v = jv_dict (r);
    for (size_t i = 0; i < n->u.dict.keys.n; i++) {
      JVal k = eval (c, n->u.dict.keys.v[i], s);
      if (!jv_hashable (k))
        jn_fail (r, SUTRA_ERR_FORMAT, n->line, "unhashable type: '%s'", jv_type_name (k));
      jdict_set (r, v.v.d, k, eval (c, n->u.dict.vals.v[i], s));
    }
    break;
  case N_CONCAT: {
    JBuf b;
    jbuf_init (&b, r, c->opts.max_output);
    for (size_t i = 0; i < n->u.items.n; i++)
      jv_str_into (&b, eval (c, n->u.items.v[i], s));
    jn_step (c, b.n / 64, n->line);
    v = jbuf_to_str (&b);
    break;
  }
  case N_SLICE:
    jn_fail (r, SUTRA_ERR_FORMAT, n->line, "a slice is only valid inside []");
  default:
    jn_fail (r, SUTRA_ERR_FORMAT, n->line, "not an expression");
  }
  c->expr_depth--;
  return v;
}

/* ---- statements -------------------------------------------------------------------------- */

static void
assign (JnCtx *c, const JnNode *target, JVal v, Scope *s)
{
  JnRun *r = &c->run;
  if (target->kind == N_NAME) {
    scope_set (c, s, target->u.name, v);
    return;
  }
  if (target->kind == N_NSREF) {
    JVal *ns = scope_find (s, target->u.nsref.ns);
    if (!ns || ns->t != JV_NS)
      jn_fail (r, SUTRA_ERR_FORMAT, target->line, "cannot assign attribute on non-namespace "
               "object");
    jdict_set (r, ns->v.ns->attrs, jv_cstr (r, target->u.nsref.attr), v);
    return;
  }
  /* tuple unpacking */
  if (v.t != JV_UNDEF && v.t != JV_STR && v.t != JV_LIST && v.t != JV_DICT && v.t != JV_LOOP)
    jn_fail (r, SUTRA_ERR_FORMAT, target->line, "cannot unpack non-iterable %s object",
             jv_type_name (v));
  JList *items = jn_iterate (c, v, target->line);
  size_t want = target->u.items.n;
  if (items->n < want)
    jn_fail (r, SUTRA_ERR_FORMAT, target->line, "not enough values to unpack (expected %zu, got "
             "%zu)", want, items->n);
  if (items->n > want)
    jn_fail (r, SUTRA_ERR_FORMAT, target->line, "too many values to unpack (expected %zu)", want);
  for (size_t i = 0; i < want; i++)
    assign (c, target->u.items.v[i], items->items[i], s);
}

static JVal
apply_filter_chain (JnCtx *c, const JnNodes *filters, JVal v, Scope *s)
{
  for (size_t i = 0; i < filters->n; i++) {
    const JnNode *f = filters->v[i];
    JnCallArgs a;
    eval_args (c, &f->u.flt.a, s, &a, f->line);
    v = jn_apply_filter (c, f->u.flt.id, v, &a, f->line);
  }
  return v;
}

static JVal
exec_for (JnCtx *c, const JnNode *n, JVal iterable, Scope *s, int depth0)
{
  JnRun *r = &c->run;
  JList *items = jn_iterate (c, iterable, n->line);
  if (n->u.for_.filter) {
    JList *kept = jv_list (r, items->n, false).v.l;
    size_t k = 0;
    for (size_t i = 0; i < items->n; i++) {
      jn_step (c, 1, n->line);
      Scope *fs = scope_new (c, s);
      assign (c, n->u.for_.target, items->items[i], fs);
      if (jv_truthy (eval (c, n->u.for_.filter, fs)))
        kept->items[k++] = items->items[i];
    }
    kept->n = k;
    items = kept;
  }
  if (items->n == 0) {
    if (n->u.for_.else_body.n)
      exec_body (c, &n->u.for_.else_body, scope_new (c, s));
    return jv_none ();
  }
  JLoop *loop = jn_alloc (r, sizeof *loop);
  loop->items = items;
  loop->depth0 = depth0;
  loop->node = n;
  loop->scope = s;
  JVal lv = { .t = JV_LOOP, .v.loop = loop };
  for (size_t i = 0; i < items->n; i++) {
    jn_step (c, 1, n->line);
    loop->index0 = (int64_t) i;
    Scope *it = scope_new (c, s);
    /* `loop` is the LoopContext; in a recursive loop calling it recurses (loop(children)) */
    scope_set (c, it, "loop", lv);
    assign (c, n->u.for_.target, items->items[i], it);
    int rc = exec_body (c, &n->u.for_.body, it);
    if (rc == EXEC_BREAK)
      break;
  }
  return jv_none ();
}

static int
exec_node (JnCtx *c, const JnNode *n, Scope *s)
{
  JnRun *r = &c->run;
  jn_step (c, 1, n->line);
  r->cur_line = n->line;
  switch ((JnNodeKind) n->kind) {
  case N_DATA:
    jbuf_add (c->out, n->u.data.text, n->u.data.len);
    jn_step (c, n->u.data.len / 64, n->line);
    return EXEC_NORMAL;
  case N_OUTPUT:
    jv_str_into (c->out, eval (c, n->u.body.v[0], s));
    return EXEC_NORMAL;
  case N_IF:
    if (jv_truthy (eval (c, n->u.if_.test, s)))
      return exec_body (c, &n->u.if_.body, s);
    return exec_body (c, &n->u.if_.else_body, s);
  case N_FOR:
    exec_for (c, n, eval (c, n->u.for_.iter, s), s, 0);
    return EXEC_NORMAL;
  case N_SET:
    assign (c, n->u.set.target, eval (c, n->u.set.value, s), s);
    return EXEC_NORMAL;
  case N_SETBLOCK: {
    JVal v = render_capture (c, &n->u.setblock.body, scope_new (c, s));
    v = apply_filter_chain (c, &n->u.setblock.filters, v, s);
    assign (c, n->u.setblock.target, v, s);
    return EXEC_NORMAL;
  }
  case N_MACRO: {
    JVal f = func_value (c, FN_MACRO);
    f.v.fn->node = n;
    f.v.fn->name = n->u.macro.name;
    f.v.fn->closure = s;
    scope_set (c, s, n->u.macro.name, f);
    return EXEC_NORMAL;
  }
  case N_CALLBLOCK: {
    const JnNode *call = n->u.callblock.call;
    JVal fn = eval (c, call->u.call.fn, s);
    JnCallArgs a;
    eval_args (c, &call->u.call.a, s, &a, call->line);
    JVal caller = func_value (c, FN_CALLER);
    caller.v.fn->node = n;
    caller.v.fn->closure = s;
    /* append caller= to the keywords */
    const char **kw = jn_alloc (r, (a.nkw + 1) * sizeof *kw);
    JVal *kwv = jn_alloc (r, (a.nkw + 1) * sizeof *kwv);
    if (a.nkw) {
      memcpy (kw, a.kw, a.nkw * sizeof *kw);
      memcpy (kwv, a.kwv, a.nkw * sizeof *kwv);
    }
    kw[a.nkw] = "caller";
    kwv[a.nkw] = caller;
    a.kw = kw;
    a.kwv = kwv;
    a.nkw++;
    jv_str_into (c->out, jn_call_value (c, fn, &a, n->line));
    return EXEC_NORMAL;
  }
  case N_FILTERBLOCK: {
    JVal v = render_capture (c, &n->u.filterblock.body, scope_new (c, s));
    jv_str_into (c->out, apply_filter_chain (c, &n->u.filterblock.filters, v, s));
    return EXEC_NORMAL;
  }
  case N_WITH: {
    Scope *ws = scope_new (c, s);
    JVal *vals = jn_alloc (r, (n->u.with.values.n + 1) * sizeof *vals);
    for (size_t i = 0; i < n->u.with.values.n; i++)
      vals[i] = eval (c, n->u.with.values.v[i], s);
    for (size_t i = 0; i < n->u.with.targets.n; i++)
      assign (c, n->u.with.targets.v[i], vals[i], ws);
    return exec_body (c, &n->u.with.body, ws);
  }
  case N_BREAK:
    return EXEC_BREAK;
  case N_CONTINUE:
    return EXEC_CONTINUE;
  case N_GENERATION:
    exec_body (c, &n->u.body, scope_new (c, s));
    return EXEC_NORMAL;
  default:
    jn_fail (r, SUTRA_ERR_FORMAT, n->line, "not a statement");
  }
}

static int
exec_body (JnCtx *c, const JnNodes *body, Scope *s)
{
  for (size_t i = 0; i < body->n; i++) {
    int rc = exec_node (c, body->v[i], s);
    if (rc != EXEC_NORMAL)
      return rc;
  }
  return EXEC_NORMAL;
}

/* ---- entry point --------------------------------------------------------------------------- */

static void
add_builtin (JnCtx *c, const char *name, FnKind kind)
{
  scope_set (c, c->builtins, name, func_value (c, kind));
}

SutraStatus
sutra_jinja_render (const SutraJinjaTemplate *t, const struct json_object *vars,
                    const SutraJinjaOptions *opts, char **out, size_t *out_len, SutraError *err)
{
  SUTRA_ASSERT (t && out);
  JnCtx *c = calloc (1, sizeof *c);
  if (!c)
    return sutra_error_set (err, SUTRA_ERR_NOMEM, "out of memory");
  if (opts)
    c->opts = *opts;
  else
    c->opts.now_local = true, c->opts.now = (int64_t) time (NULL);
  if (!c->opts.max_output) c->opts.max_output = DEFAULT_MAX_OUTPUT;
  if (!c->opts.max_steps) c->opts.max_steps = DEFAULT_MAX_STEPS;
  if (!c->opts.max_memory) c->opts.max_memory = DEFAULT_MAX_MEMORY;
  if (!c->opts.max_depth) c->opts.max_depth = DEFAULT_MAX_DEPTH;
  c->run.limit = c->opts.max_memory;
  SutraStatus st = SUTRA_OK;
  if (setjmp (c->run.jb) == 0) {
    c->builtins = scope_new (c, NULL);
    add_builtin (c, "range", FN_RANGE);
    add_builtin (c, "dict", FN_DICT);
    add_builtin (c, "namespace", FN_NAMESPACE);
    add_builtin (c, "raise_exception", FN_RAISE);
    add_builtin (c, "strftime_now", FN_STRFTIME);
    add_builtin (c, "joiner", FN_JOINER);
    add_builtin (c, "cycler", FN_CYCLER);
    add_builtin (c, "lipsum", FN_LIPSUM);
    Scope *ctxvars = scope_new (c, c->builtins);
    if (vars) {
      if (json_object_get_type ((struct json_object *) vars) != json_type_object)
        jn_fail (&c->run, SUTRA_ERR_INVALID, 0, "template variables must be a JSON object");
      JVal d = jv_from_json (&c->run, vars, 0);
      for (size_t i = 0; i < d.v.d->n; i++)
        scope_set (c, ctxvars, d.v.d->keys[i].v.s->data, d.v.d->vals[i]);
    }
    Scope *top = scope_new (c, ctxvars);
    JBuf buf;
    jbuf_init (&buf, &c->run, c->opts.max_output);
    c->out = &buf;
    exec_body (c, &t->body, top);
    char *res = malloc (buf.n + 1);
    if (!res)
      jn_fail (&c->run, SUTRA_ERR_NOMEM, 0, "out of memory (%zu bytes)", buf.n);
    if (buf.n)
      memcpy (res, buf.p, buf.n);
    res[buf.n] = '\0';
    *out = res;
    if (out_len)
      *out_len = buf.n;
  } else {
    st = c->run.code;
    if (c->run.raised)
      sutra_error_set (err, st, "%s", c->run.msg);
    else if (c->run.line > 0)
      sutra_error_set (err, st, "template line %d: %s", c->run.line, c->run.msg);
    else
      sutra_error_set (err, st, "template: %s", c->run.msg);
  }
  jn_arena_free (&c->run);
  free (c);
  return st;
}
