/* sutra-jinja-tests.c: Jinja2 3.1's builtin tests (`x is defined`, `is odd`, `is equalto` ...),
 * as jinja2/tests.py defines them on Python values. */
#include "sutra-jinja-private.h"

#include <string.h>

typedef enum {
  T_BOOLEAN, T_CALLABLE, T_DEFINED, T_DIVISIBLEBY, T_EQ, T_ESCAPED, T_EVEN, T_FALSE, T_FILTER,
  T_FLOATT, T_GE, T_GT, T_IN, T_INTEGER, T_ITERABLE, T_LE, T_LOWER, T_LT, T_MAPPING, T_NE,
  T_NONE, T_NUMBER, T_ODD, T_SAMEAS, T_SEQUENCE, T_STRINGT, T_TEST, T_TRUE, T_UNDEFINED, T_UPPER,
} TestId;

static const struct { const char *name; TestId id; } TESTS[] = {
  { "boolean", T_BOOLEAN }, { "callable", T_CALLABLE }, { "defined", T_DEFINED },
  { "divisibleby", T_DIVISIBLEBY }, { "eq", T_EQ }, { "equalto", T_EQ }, { "==", T_EQ },
  { "escaped", T_ESCAPED }, { "even", T_EVEN }, { "false", T_FALSE }, { "filter", T_FILTER },
  { "float", T_FLOATT }, { "ge", T_GE }, { ">=", T_GE }, { "gt", T_GT },
  { "greaterthan", T_GT }, { ">", T_GT }, { "in", T_IN }, { "integer", T_INTEGER },
  { "iterable", T_ITERABLE }, { "le", T_LE }, { "<=", T_LE }, { "lower", T_LOWER },
  { "lt", T_LT }, { "lessthan", T_LT }, { "<", T_LT }, { "mapping", T_MAPPING },
  { "ne", T_NE }, { "!=", T_NE }, { "none", T_NONE }, { "number", T_NUMBER }, { "odd", T_ODD },
  { "sameas", T_SAMEAS }, { "sequence", T_SEQUENCE }, { "string", T_STRINGT },
  { "test", T_TEST }, { "true", T_TRUE }, { "undefined", T_UNDEFINED }, { "upper", T_UPPER },
};


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

static JStr *
soft_str (JnCtx *c, JVal v)
{
  return jv_to_str (jn_ctx_run (c), v).v.s;
}

int
jn_test_id (const char *name, bool *known_but_unsupported)
{
  (void) known_but_unsupported;
  for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
    if (strcmp (TESTS[i].name, name) == 0)
      return (int) TESTS[i].id;
  return -1;
}

static bool
test_cmp (JnCtx *c, TestId id, JVal x, JVal y, int line)
{
  JnRun *r = jn_ctx_run (c);
  switch (id) {
  case T_EQ: return jv_equal (r, x, y);
  case T_NE: return !jv_equal (r, x, y);
  case T_LT: return jv_cmp (r, OP_LT, x, y, line);
  case T_LE: return jv_cmp (r, OP_LE, x, y, line);
  case T_GT: return jv_cmp (r, OP_GT, x, y, line);
  default: return jv_cmp (r, OP_GE, x, y, line);
  }
}

bool
jn_apply_test (JnCtx *c, int tid, JVal x, const JnCallArgs *a, int line)
{
  JnRun *r = jn_ctx_run (c);
  jn_step (c, 1, line);
  size_t want = (tid == T_DIVISIBLEBY || tid == T_SAMEAS || tid == T_IN || tid == T_EQ ||
                 tid == T_NE || tid == T_LT || tid == T_LE || tid == T_GT || tid == T_GE) ? 1 : 0;
  if (a->n + a->nkw != want) {
    const char *name = "?";
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
      if ((int) TESTS[i].id == tid)
        name = TESTS[i].name;
    /* Python's message for jinja2.tests.test_<name>(value[, arg]) */
    jn_fail (r, SUTRA_ERR_FORMAT, line, "test_%s() takes %zu positional argument%s but %zu were "
             "given", name, want + 1, want ? "s" : "", a->n + a->nkw + 1);
  }
  switch ((TestId) tid) {
  case T_BOOLEAN: return x.t == JV_BOOL;
  case T_CALLABLE: return x.t == JV_FUNC || x.t == JV_UNDEF || x.t == JV_LOOP;
  case T_DEFINED: return x.t != JV_UNDEF;
  case T_UNDEFINED: return x.t == JV_UNDEF;
  case T_NONE: return x.t == JV_NONE;
  case T_FALSE: return x.t == JV_BOOL && !x.v.b;
  case T_TRUE: return x.t == JV_BOOL && x.v.b;
  case T_INTEGER: return x.t == JV_INT;
  case T_FLOATT: return x.t == JV_FLOAT;
  case T_NUMBER: return x.t == JV_INT || x.t == JV_FLOAT || x.t == JV_BOOL;
  case T_STRINGT: return x.t == JV_STR;
  case T_MAPPING: return x.t == JV_DICT;
  case T_ITERABLE:
    return x.t == JV_STR || x.t == JV_LIST || x.t == JV_DICT || x.t == JV_UNDEF || x.t == JV_LOOP;
  case T_SEQUENCE:
    return x.t == JV_STR || x.t == JV_DICT || x.t == JV_UNDEF ||
           (x.t == JV_LIST && (x.v.l->kind == LK_PLAIN || x.v.l->kind == LK_RANGE));
  case T_ESCAPED: return x.t == JV_STR && x.markup;   /* has __html__ */
  case T_LOWER: return jn_str_is (soft_str (c, x), "lower");
  case T_UPPER: return jn_str_is (soft_str (c, x), "upper");
  case T_EVEN:
  case T_ODD: {
    if (x.t == JV_UNDEF)
      jn_fail_undefined (c, x, line);
    /* Jinja: value % 2 == 1 (odd), value % 2 == 0 (even); 3.5 is neither */
    JVal m = jn_binop (c, OP_MOD, x, jv_int (2), line);
    return jv_equal (r, m, jv_int (tid == T_ODD ? 1 : 0));
  }
  case T_DIVISIBLEBY: {
    JVal m = jn_binop (c, OP_MOD, x, arg (a, 0, "num", jv_undef ()), line);
    return jv_equal (r, m, jv_int (0));
  }
  case T_SAMEAS: {
    JVal y = arg (a, 0, "other", jv_undef ());
    if (x.t != y.t)
      return false;
    switch (x.t) {
    case JV_NONE: case JV_UNDEF: return x.t == JV_NONE ? true : x.v.u == y.v.u;
    case JV_BOOL: return x.v.b == y.v.b;
    case JV_INT: return x.v.i == y.v.i && x.v.i >= -5 && x.v.i <= 256;   /* CPython small ints */
    case JV_STR: return x.v.s == y.v.s;
    case JV_LIST: return x.v.l == y.v.l;
    case JV_DICT: return x.v.d == y.v.d;
    default: return x.v.fn == y.v.fn;
    }
  }
  case T_IN: {
    JVal hay = arg (a, 0, "seq", jv_undef ());
    JnCallArgs none = { 0 };
    (void) none;
    switch (hay.t) {
    case JV_UNDEF: return false;
    case JV_STR:
      if (x.t != JV_STR)
        jn_fail (r, SUTRA_ERR_FORMAT, line, "'in <string>' requires string as left operand, "
                 "not %s", jv_type_name (x));
      return x.v.s->len == 0 || memmem (hay.v.s->data, hay.v.s->len, x.v.s->data, x.v.s->len);
    case JV_DICT:
      return jv_hashable (x) && jdict_get (hay.v.d, x) != NULL;
    case JV_LIST:
      for (size_t i = 0; i < hay.v.l->n; i++)
        if (jv_equal (r, x, hay.v.l->items[i]))
          return true;
      return false;
    default:
      jn_fail (r, SUTRA_ERR_FORMAT, line, "argument of type '%s' is not iterable",
               jv_type_name (hay));
    }
  }
  case T_FILTER:
  case T_TEST: {
    if (x.t != JV_STR)
      return false;
    bool unsup = false;
    return tid == T_FILTER ? jn_filter_id (x.v.s->data, &unsup) >= 0
                           : jn_test_id (x.v.s->data, &unsup) >= 0;
  }
  case T_EQ: case T_NE: case T_LT: case T_LE: case T_GT: case T_GE: {
    if (a->n + a->nkw < 1)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "test expects one argument");
    return test_cmp (c, (TestId) tid, x, a->n ? a->v[0] : a->kwv[0], line);
  }
  }
  jn_fail (r, SUTRA_ERR_FORMAT, line, "unknown test");
}
