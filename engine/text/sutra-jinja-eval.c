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

Scope *
jn_scope_new (JnCtx *c, Scope *parent)
{
  Scope *s = jn_alloc (&c->run, sizeof *s);
  s->parent = parent;
  return s;
}

void
jn_scope_set (JnCtx *c, Scope *s, const char *name, JVal v)
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

JVal *
jn_scope_find (Scope *s, const char *name)
{
  for (; s; s = s->parent)
    for (size_t i = s->n; i-- > 0;)
      if (strcmp (s->names[i], name) == 0)
        return &s->vals[i];
  return NULL;
}

JVal
jn_func_value (JnCtx *c, FnKind kind)
{
  JFunc *f = jn_alloc (&c->run, sizeof *f);
  f->kind = kind;
  JVal v = { .t = JV_FUNC, .v.fn = f };
  return v;
}

static const char *
op_symbol (JnOp op)
{
  static const char *const s[] = { "+", "-", "*", "/", "//", "%", "**" };
  return op <= OP_POW ? s[op] : "?";
}

_Noreturn void
jn_overflow (JnCtx *c, int line)
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

JVal
jn_binop (JnCtx *c, JnOp op, JVal a, JVal b, int line)
{
  JnRun *r = &c->run;
  if (op == OP_MOD && a.t == JV_STR)      /* str.__mod__ runs first and accepts anything */
    return jn_percent_format (c, a.v.s, b, a.markup, line);
  if (a.t == JV_UNDEF)
    jn_fail_undefined (c, a, line);
  if (b.t == JV_UNDEF)
    jn_fail_undefined (c, b, line);
  if (jn_is_numeric (a) && jn_is_numeric (b)) {
    bool fl = a.t == JV_FLOAT || b.t == JV_FLOAT;
    int64_t x = jn_ival (a), y = jn_ival (b), z;
    double fx = jn_fval (a), fy = jn_fval (b);
    switch (op) {
    case OP_ADD:
      if (fl) return jv_float (fx + fy);
      if (__builtin_add_overflow (x, y, &z)) jn_overflow (c, line);
      return jv_int (z);
    case OP_SUB:
      if (fl) return jv_float (fx - fy);
      if (__builtin_sub_overflow (x, y, &z)) jn_overflow (c, line);
      return jv_int (z);
    case OP_MUL:
      if (fl) return jv_float (fx * fy);
      if (__builtin_mul_overflow (x, y, &z)) jn_overflow (c, line);
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
      if (x == INT64_MIN && y == -1) jn_overflow (c, line);
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
            if (__builtin_mul_overflow (acc, base, &acc)) jn_overflow (c, line);
          e >>= 1;
          if (e && __builtin_mul_overflow (base, base, &base)) jn_overflow (c, line);
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
      /* Markup + str and str + Markup escape the plain operand (markupsafe) */
      bool markup = a.markup || b.markup;
      const JStr *x = markup && !a.markup ? jn_html_escape (r, a.v.s) : a.v.s;
      const JStr *y = markup && !b.markup ? jn_html_escape (r, b.v.s) : b.v.s;
      JStr *s = jstr_new (r, x->len + y->len);
      memcpy (s->data, x->data, x->len);
      memcpy (s->data + x->len, y->data, y->len);
      jn_step (c, s->len / 64, line);
      JVal v = { .t = JV_STR, .markup = markup, .v.s = s };
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
      return jv_as_markup (repeat (c, a, jn_ival (b), line), a.t == JV_STR && a.markup);
    if (sb && (a.t == JV_INT || a.t == JV_BOOL))
      return jv_as_markup (repeat (c, b, jn_ival (a), line), b.t == JV_STR && b.markup);
  }
  if (op == OP_MUL && (a.t == JV_STR || (a.t == JV_LIST && a.v.l->kind == LK_PLAIN)))
    jn_fail (r, SUTRA_ERR_FORMAT, line, "can't multiply sequence by non-int of type '%s'",
             jv_type_name (b));
  if (op == OP_MUL && (b.t == JV_STR || (b.t == JV_LIST && b.v.l->kind == LK_PLAIN)))
    jn_fail (r, SUTRA_ERR_FORMAT, line, "can't multiply sequence by non-int of type '%s'",
             jv_type_name (a));
  jn_fail (r, SUTRA_ERR_FORMAT, line, "unsupported operand type(s) for %s: '%s' and '%s'",
           op_symbol (op), jv_type_name (a), jv_type_name (b));
}

static JVal
eval_compare (JnCtx *c, const JnNode *n, Scope *s)
{
  JnRun *r = &c->run;
  JVal left = jn_eval (c, n->u.cmp.first, s);
  for (size_t i = 0; i < n->u.cmp.n; i++) {
    JVal right = jn_eval (c, n->u.cmp.rhs[i], s);
    bool ok;
    switch (n->u.cmp.ops[i]) {
    case OP_EQ: ok = jv_equal (r, left, right); break;
    case OP_NE: ok = !jv_equal (r, left, right); break;
    case OP_IN: ok = jn_contains (c, left, right, n->line); break;
    case OP_NOTIN: ok = !jn_contains (c, left, right, n->line); break;
    default: ok = jv_cmp (r, n->u.cmp.ops[i], left, right, n->line); break;
    }
    if (!ok)
      return jv_bool (false);
    left = right;
  }
  return jv_bool (true);
}

/* Jinja's runtime stub for a filter/test that was only allowed because it sat in an if. */
_Noreturn static void
unknown_filter_or_test (JnCtx *c, const JnNode *n)
{
  const char *what = n->kind == N_FILTER ? "filter" : "test";
  if (n->u.flt.unsupported)
    jn_fail (&c->run, SUTRA_ERR_UNSUPPORTED, n->line, "the '%s' %s is not supported",
             n->u.flt.name, what);
  jn_fail (&c->run, SUTRA_ERR_FORMAT, n->line, "No %s named '%s' found.", what, n->u.flt.name);
}

JVal
jn_eval (JnCtx *c, const JnNode *n, Scope *s)
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
    JVal *p = jn_scope_find (s, n->u.name);
    v = p ? *p : jv_undef_name (r, n->u.name);
    break;
  }
  case N_GETATTR:
    v = jn_getattr (c, jn_eval (c, n->u.ga.obj, s), n->u.ga.attr, n->line);
    break;
  case N_GETITEM: {
    JVal obj = jn_eval (c, n->u.gi.obj, s);
    if (n->u.gi.idx->kind == N_SLICE)
      v = jn_eval_slice (c, obj, n->u.gi.idx, s, n->line);
    else
      v = jn_getitem (c, obj, jn_eval (c, n->u.gi.idx, s), n->line);
    break;
  }
  case N_BINOP:
    v = jn_eval (c, n->u.bin.a, s);
    v = jn_binop (c, n->u.bin.op, v, jn_eval (c, n->u.bin.b, s), n->line);
    break;
  case N_NEG:
  case N_POS: {
    JVal x = jn_eval (c, n->u.un, s);
    if (x.t == JV_UNDEF)
      jn_fail_undefined (c, x, n->line);
    if (!jn_is_numeric (x))
      jn_fail (r, SUTRA_ERR_FORMAT, n->line, "bad operand type for unary %c: '%s'",
               n->kind == N_NEG ? '-' : '+', jv_type_name (x));
    if (n->kind == N_POS)
      v = x.t == JV_BOOL ? jv_int (x.v.b) : x;
    else if (x.t == JV_FLOAT)
      v = jv_float (-x.v.f);
    else if (jn_ival (x) == INT64_MIN)
      jn_overflow (c, n->line);
    else
      v = jv_int (-jn_ival (x));
    break;
  }
  case N_NOT:
    v = jv_bool (!jv_truthy (jn_eval (c, n->u.un, s)));
    break;
  case N_AND:
    v = jn_eval (c, n->u.bin.a, s);
    if (jv_truthy (v))
      v = jn_eval (c, n->u.bin.b, s);
    break;
  case N_OR:
    v = jn_eval (c, n->u.bin.a, s);
    if (!jv_truthy (v))
      v = jn_eval (c, n->u.bin.b, s);
    break;
  case N_COMPARE:
    v = eval_compare (c, n, s);
    break;
  case N_COND:
    if (jv_truthy (jn_eval (c, n->u.cond.test, s)))
      v = jn_eval (c, n->u.cond.a, s);
    else
      v = n->u.cond.b ? jn_eval (c, n->u.cond.b, s)
                      : jv_undef_hint (r, "the inline if-expression evaluated to false and no "
                                       "else section was defined.", false);
    break;
  case N_FILTER: {
    JVal x = jn_eval (c, n->u.flt.obj, s);
    JnCallArgs a;
    jn_eval_args (c, &n->u.flt.a, s, &a, n->line);
    if (n->u.flt.id < 0)                     /* allowed to parse in an if; fails when run */
      unknown_filter_or_test (c, n);
    v = jn_apply_filter (c, n->u.flt.id, x, &a, n->line);
    break;
  }
  case N_TEST: {
    JVal x = jn_eval (c, n->u.flt.obj, s);
    JnCallArgs a;
    jn_eval_args (c, &n->u.flt.a, s, &a, n->line);
    if (n->u.flt.id < 0)
      unknown_filter_or_test (c, n);
    bool ok = jn_apply_test (c, n->u.flt.id, x, &a, n->line);
    v = jv_bool (n->u.flt.negated ? !ok : ok);
    break;
  }
  case N_CALL: {
    JVal fn = jn_eval (c, n->u.call.fn, s);
    JnCallArgs a;
    jn_eval_args (c, &n->u.call.a, s, &a, n->line);
    v = jn_call_value (c, fn, &a, n->line);
    break;
  }
  case N_LIST:
  case N_TUPLE:
    v = jv_list (r, n->u.items.n, n->kind == N_TUPLE);
    for (size_t i = 0; i < n->u.items.n; i++)
      v.v.l->items[i] = jn_eval (c, n->u.items.v[i], s);
    break;
  case N_DICT:
    v = jv_dict (r);
    for (size_t i = 0; i < n->u.dict.keys.n; i++) {
      JVal k = jn_eval (c, n->u.dict.keys.v[i], s);
      if (!jv_hashable (k))
        jn_fail (r, SUTRA_ERR_FORMAT, n->line, "unhashable type: '%s'", jv_type_name (k));
      jdict_set (r, v.v.d, k, jn_eval (c, n->u.dict.vals.v[i], s));
    }
    break;
  case N_CONCAT: {
    JBuf b;
    jbuf_init (&b, r, c->opts.max_output);
    for (size_t i = 0; i < n->u.items.n; i++)
      jv_str_into (&b, jn_eval (c, n->u.items.v[i], s));
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

static void
assign (JnCtx *c, const JnNode *target, JVal v, Scope *s)
{
  JnRun *r = &c->run;
  if (target->kind == N_NAME) {
    jn_scope_set (c, s, target->u.name, v);
    return;
  }
  if (target->kind == N_NSREF) {
    JVal *ns = jn_scope_find (s, target->u.nsref.ns);
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
    jn_eval_args (c, &f->u.flt.a, s, &a, f->line);
    v = jn_apply_filter (c, f->u.flt.id, v, &a, f->line);
  }
  return v;
}

JVal
jn_exec_for (JnCtx *c, const JnNode *n, JVal iterable, Scope *s, int depth0)
{
  JnRun *r = &c->run;
  JList *items = jn_iterate (c, iterable, n->line);
  if (n->u.for_.filter) {
    JList *kept = jv_list (r, items->n, false).v.l;
    size_t k = 0;
    for (size_t i = 0; i < items->n; i++) {
      jn_step (c, 1, n->line);
      Scope *fs = jn_scope_new (c, s);
      assign (c, n->u.for_.target, items->items[i], fs);
      if (jv_truthy (jn_eval (c, n->u.for_.filter, fs)))
        kept->items[k++] = items->items[i];
    }
    kept->n = k;
    items = kept;
  }
  if (items->n == 0) {
    if (n->u.for_.else_body.n)
      jn_exec_body (c, &n->u.for_.else_body, jn_scope_new (c, s));
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
    Scope *it = jn_scope_new (c, s);
    /* `loop` is the LoopContext; in a recursive loop calling it recurses (loop(children)) */
    jn_scope_set (c, it, "loop", lv);
    assign (c, n->u.for_.target, items->items[i], it);
    int rc = jn_exec_body (c, &n->u.for_.body, it);
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
    jv_str_into (c->out, jn_eval (c, n->u.body.v[0], s));
    return EXEC_NORMAL;
  case N_IF:
    if (jv_truthy (jn_eval (c, n->u.if_.test, s)))
      return jn_exec_body (c, &n->u.if_.body, s);
    return jn_exec_body (c, &n->u.if_.else_body, s);
  case N_FOR:
    jn_exec_for (c, n, jn_eval (c, n->u.for_.iter, s), s, 0);
    return EXEC_NORMAL;
  case N_SET:
    assign (c, n->u.set.target, jn_eval (c, n->u.set.value, s), s);
    return EXEC_NORMAL;
  case N_SETBLOCK: {
    JVal v = jn_render_capture (c, &n->u.setblock.body, jn_scope_new (c, s));
    v = apply_filter_chain (c, &n->u.setblock.filters, v, s);
    assign (c, n->u.setblock.target, v, s);
    return EXEC_NORMAL;
  }
  case N_MACRO: {
    JVal f = jn_func_value (c, FN_MACRO);
    f.v.fn->node = n;
    f.v.fn->name = n->u.macro.name;
    f.v.fn->closure = s;
    jn_scope_set (c, s, n->u.macro.name, f);
    return EXEC_NORMAL;
  }
  case N_CALLBLOCK: {
    const JnNode *call = n->u.callblock.call;
    JVal fn = jn_eval (c, call->u.call.fn, s);
    JnCallArgs a;
    jn_eval_args (c, &call->u.call.a, s, &a, call->line);
    JVal caller = jn_func_value (c, FN_CALLER);
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
    JVal v = jn_render_capture (c, &n->u.filterblock.body, jn_scope_new (c, s));
    jv_str_into (c->out, apply_filter_chain (c, &n->u.filterblock.filters, v, s));
    return EXEC_NORMAL;
  }
  case N_WITH: {
    Scope *ws = jn_scope_new (c, s);
    JVal *vals = jn_alloc (r, (n->u.with.values.n + 1) * sizeof *vals);
    for (size_t i = 0; i < n->u.with.values.n; i++)
      vals[i] = jn_eval (c, n->u.with.values.v[i], s);
    for (size_t i = 0; i < n->u.with.targets.n; i++)
      assign (c, n->u.with.targets.v[i], vals[i], ws);
    return jn_exec_body (c, &n->u.with.body, ws);
  }
  case N_BREAK:
    return EXEC_BREAK;
  case N_CONTINUE:
    return EXEC_CONTINUE;
  case N_GENERATION:
    jn_exec_body (c, &n->u.body, jn_scope_new (c, s));
    return EXEC_NORMAL;
  default:
    jn_fail (r, SUTRA_ERR_FORMAT, n->line, "not a statement");
  }
}

int
jn_exec_body (JnCtx *c, const JnNodes *body, Scope *s)
{
  for (size_t i = 0; i < body->n; i++) {
    int rc = exec_node (c, body->v[i], s);
    if (rc != EXEC_NORMAL)
      return rc;
  }
  return EXEC_NORMAL;
}

static void
add_builtin (JnCtx *c, const char *name, FnKind kind)
{
  jn_scope_set (c, c->builtins, name, jn_func_value (c, kind));
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
    c->builtins = jn_scope_new (c, NULL);
    add_builtin (c, "range", FN_RANGE);
    add_builtin (c, "dict", FN_DICT);
    add_builtin (c, "namespace", FN_NAMESPACE);
    add_builtin (c, "raise_exception", FN_RAISE);
    add_builtin (c, "strftime_now", FN_STRFTIME);
    add_builtin (c, "joiner", FN_JOINER);
    add_builtin (c, "cycler", FN_CYCLER);
    add_builtin (c, "lipsum", FN_LIPSUM);
    Scope *ctxvars = jn_scope_new (c, c->builtins);
    if (vars) {
      if (json_object_get_type ((struct json_object *) vars) != json_type_object)
        jn_fail (&c->run, SUTRA_ERR_INVALID, 0, "template variables must be a JSON object");
      JVal d = jv_from_json (&c->run, vars, 0);
      for (size_t i = 0; i < d.v.d->n; i++)
        jn_scope_set (c, ctxvars, d.v.d->keys[i].v.s->data, d.v.d->vals[i]);
    }
    Scope *top = jn_scope_new (c, ctxvars);
    JBuf buf;
    jbuf_init (&buf, &c->run, c->opts.max_output);
    c->out = &buf;
    jn_exec_body (c, &t->body, top);
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
