/* sutra-jinja-parse.c: recursive-descent parser from tokens to the AST of sutra-jinja-private.h.
 *
 * The grammar and its precedence follow jinja2/parser.py (3.1): condexpr < or < and < not <
 * compare (==, !=, <, in, not in, chained) < + - < ~ < * / // % < ** (left-associative) <
 * unary - + < primary with postfix .attr [sub] (call) and then filters `|f` and tests `is t`
 * (so `-x|abs` is `(-x)|abs` and `not x is defined` is `not (x is defined)`). `if` and `for`
 * heads parse without a conditional expression, so `for x in xs if cond` is a loop filter.
 * Unknown filters and tests are errors here, as in Jinja's compiler. Nesting is bounded. */
#include "sutra-jinja-private.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NEST 200             /* expression / block nesting (Python's own limit is ~1000) */
#define MAX_MACRO_STACK 32

typedef struct {
  JnRun *r;
  const JnTok *tok;
  size_t n, pos;
  int depth;
  int loop_depth;                /* for break/continue */
  JnNode *macros[MAX_MACRO_STACK];
  int nmacros;
} Parser;

static JnNode *parse_expression (Parser *p, bool with_condexpr);
static JnNode *parse_tuple (Parser *p, bool simplified, bool with_condexpr,
                            const char *extra_end, bool explicit_parens);
static JnNode *parse_unary (Parser *p, bool with_filter);
static JnNode *parse_primary (Parser *p);
static JnNode *parse_postfix (Parser *p, JnNode *node);
static JnNode *parse_filter (Parser *p, JnNode *node, bool start_inline);
static JnNodes subparse (Parser *p, const char *const *end_names);

/* ---- token helpers ------------------------------------------------------------------------ */

static const JnTok *
cur (Parser *p)
{
  return &p->tok[p->pos];
}

static const JnTok *
look (Parser *p)
{
  return p->pos + 1 < p->n ? &p->tok[p->pos + 1] : &p->tok[p->n - 1];
}

static void
next (Parser *p)
{
  if (p->pos + 1 < p->n)
    p->pos++;
}

static bool
tok_is_op (const JnTok *t, const char *op)
{
  return t->kind == T_OP && t->len == strlen (op) && memcmp (t->s, op, t->len) == 0;
}

static bool
tok_is_name (const JnTok *t, const char *name)
{
  return t->kind == T_NAME && t->len == strlen (name) && memcmp (t->s, name, t->len) == 0;
}

static bool
is_op (Parser *p, const char *op)
{
  return tok_is_op (cur (p), op);
}

static bool
is_name (Parser *p, const char *name)
{
  return tok_is_name (cur (p), name);
}

static bool
skip_op (Parser *p, const char *op)
{
  if (!is_op (p, op))
    return false;
  next (p);
  return true;
}

static bool
skip_name (Parser *p, const char *name)
{
  if (!is_name (p, name))
    return false;
  next (p);
  return true;
}

static void
describe (const JnTok *t, char *buf, size_t size)
{
  switch (t->kind) {
  case T_EOF: snprintf (buf, size, "end of template"); break;
  case T_BLOCK_BEGIN: snprintf (buf, size, "begin of statement block"); break;
  case T_BLOCK_END: snprintf (buf, size, "end of statement block"); break;
  case T_VAR_BEGIN: snprintf (buf, size, "begin of print statement"); break;
  case T_VAR_END: snprintf (buf, size, "end of print statement"); break;
  case T_DATA: snprintf (buf, size, "template data"); break;
  case T_STRING: snprintf (buf, size, "string"); break;
  case T_INT: snprintf (buf, size, "integer"); break;
  case T_FLOAT: snprintf (buf, size, "float"); break;
  default: snprintf (buf, size, "%.*s", (int) (t->len > 40 ? 40 : t->len), t->s); break;
  }
}

_Noreturn static void
fail_tok (Parser *p, const char *what)
{
  char d[64];
  describe (cur (p), d, sizeof d);
  jn_fail (p->r, SUTRA_ERR_FORMAT, cur (p)->line, "expected token '%s', got '%s'", what, d);
}

static void
expect_op (Parser *p, const char *op)
{
  if (!skip_op (p, op))
    fail_tok (p, op);
}

static void
expect_kind (Parser *p, JnTokKind k, const char *what)
{
  if (cur (p)->kind != k)
    fail_tok (p, what);
  next (p);
}

static const char *
expect_name (Parser *p)
{
  if (cur (p)->kind != T_NAME)
    fail_tok (p, "name");
  const char *s = jn_strndup (p->r, cur (p)->s, cur (p)->len);
  next (p);
  return s;
}

static JnNode *
node_new (Parser *p, JnNodeKind kind, int line)
{
  JnNode *n = jn_alloc (p->r, sizeof *n);
  n->kind = (uint8_t) kind;
  n->line = line;
  return n;
}

static void
nodes_push (Parser *p, JnNodes *v, JnNode *n, size_t *cap)
{
  if (v->n == *cap) {
    size_t c = *cap ? *cap * 2 : 4;
    JnNode **a = jn_alloc (p->r, c * sizeof *a);
    if (v->n)
      memcpy (a, v->v, v->n * sizeof *a);
    v->v = a;
    *cap = c;
  }
  v->v[v->n++] = n;
}

static void
enter (Parser *p)
{
  if (++p->depth > MAX_NEST)
    jn_fail (p->r, SUTRA_ERR_UNSUPPORTED, cur (p)->line, "template nests more than %d levels",
             MAX_NEST);
}

/* ---- expressions -------------------------------------------------------------------------- */

static bool
tuple_end (Parser *p, const char *extra_end)
{
  const JnTok *t = cur (p);
  if (t->kind == T_VAR_END || t->kind == T_BLOCK_END || tok_is_op (t, ")"))
    return true;
  return extra_end && tok_is_name (t, extra_end);
}

static JnNode *
parse_tuple (Parser *p, bool simplified, bool with_condexpr, const char *extra_end,
             bool explicit_parens)
{
  int line = cur (p)->line;
  JnNodes items = { 0 };
  size_t cap = 0;
  bool is_tuple = false;
  for (;;) {
    if (items.n)
      expect_op (p, ",");
    if (tuple_end (p, extra_end))
      break;
    JnNode *e = simplified ? parse_primary (p) : parse_expression (p, with_condexpr);
    nodes_push (p, &items, e, &cap);
    if (is_op (p, ","))
      is_tuple = true;
    else
      break;
  }
  if (!is_tuple) {
    if (items.n)
      return items.v[0];
    if (!explicit_parens) {
      char d[64];
      describe (cur (p), d, sizeof d);
      jn_fail (p->r, SUTRA_ERR_FORMAT, cur (p)->line, "Expected an expression, got '%s'", d);
    }
  }
  JnNode *t = node_new (p, N_TUPLE, line);
  t->u.items = items;
  return t;
}

static void
parse_call_args (Parser *p, JnArgs *a)
{
  expect_op (p, "(");
  size_t cap = 0, kwcap = 0;
  bool require_comma = false;
  memset (a, 0, sizeof *a);
  while (!is_op (p, ")")) {
    if (require_comma) {
      expect_op (p, ",");
      if (is_op (p, ")"))
        break;
    }
    int line = cur (p)->line;
    if (is_op (p, "*")) {
      if (a->dyn_args || a->dyn_kwargs)
        jn_fail (p->r, SUTRA_ERR_FORMAT, line, "invalid syntax for function call expression");
      next (p);
      a->dyn_args = parse_expression (p, true);
    } else if (is_op (p, "**")) {
      if (a->dyn_kwargs)
        jn_fail (p->r, SUTRA_ERR_FORMAT, line, "invalid syntax for function call expression");
      next (p);
      a->dyn_kwargs = parse_expression (p, true);
    } else if (cur (p)->kind == T_NAME && tok_is_op (look (p), "=")) {
      if (a->dyn_args || a->dyn_kwargs)
        jn_fail (p->r, SUTRA_ERR_FORMAT, line, "invalid syntax for function call expression");
      const char *key = expect_name (p);
      next (p);
      JnNode *val = parse_expression (p, true);
      if (a->nkw == kwcap) {
        size_t c = kwcap ? kwcap * 2 : 4;
        const char **kn = jn_alloc (p->r, c * sizeof *kn);
        JnNode **kv = jn_alloc (p->r, c * sizeof *kv);
        if (a->nkw) {
          memcpy (kn, a->kw_names, a->nkw * sizeof *kn);
          memcpy (kv, a->kw_vals, a->nkw * sizeof *kv);
        }
        a->kw_names = kn;
        a->kw_vals = kv;
        kwcap = c;
      }
      a->kw_names[a->nkw] = key;
      a->kw_vals[a->nkw] = val;
      a->nkw++;
    } else {
      if (a->dyn_args || a->dyn_kwargs || a->nkw)
        jn_fail (p->r, SUTRA_ERR_FORMAT, line, "invalid syntax for function call expression");
      nodes_push (p, &a->args, parse_expression (p, true), &cap);
    }
    require_comma = true;
  }
  expect_op (p, ")");
}

static JnNode *
parse_subscribed (Parser *p)
{
  int line = cur (p)->line;
  JnNode *args[3] = { NULL, NULL, NULL };
  if (is_op (p, ":")) {
    next (p);
  } else {
    JnNode *e = parse_expression (p, true);
    if (!is_op (p, ":"))
      return e;
    next (p);
    args[0] = e;
  }
  if (is_op (p, ":")) {
    /* stop omitted */
  } else if (!is_op (p, "]") && !is_op (p, ",")) {
    args[1] = parse_expression (p, true);
  }
  if (is_op (p, ":")) {
    next (p);
    if (!is_op (p, "]") && !is_op (p, ","))
      args[2] = parse_expression (p, true);
  }
  JnNode *s = node_new (p, N_SLICE, line);
  s->u.sl.start = args[0];
  s->u.sl.stop = args[1];
  s->u.sl.step = args[2];
  return s;
}

static JnNode *
parse_subscript (Parser *p, JnNode *node)
{
  int line = cur (p)->line;
  if (skip_op (p, ".")) {
    const JnTok *t = cur (p);
    if (t->kind == T_NAME) {
      JnNode *g = node_new (p, N_GETATTR, line);
      g->u.ga.obj = node;
      g->u.ga.attr = expect_name (p);
      return g;
    }
    if (t->kind != T_INT)
      jn_fail (p->r, SUTRA_ERR_FORMAT, t->line, "expected name or number");
    JnNode *c = node_new (p, N_CONST, line);
    c->u.cval = jv_int (t->i);
    next (p);
    JnNode *g = node_new (p, N_GETITEM, line);
    g->u.gi.obj = node;
    g->u.gi.idx = c;
    return g;
  }
  expect_op (p, "[");
  JnNodes args = { 0 };
  size_t cap = 0;
  while (!is_op (p, "]")) {
    if (args.n)
      expect_op (p, ",");
    nodes_push (p, &args, parse_subscribed (p), &cap);
  }
  expect_op (p, "]");
  JnNode *idx;
  if (args.n == 1) {
    idx = args.v[0];
  } else {
    idx = node_new (p, N_TUPLE, line);
    idx->u.items = args;
  }
  JnNode *g = node_new (p, N_GETITEM, line);
  g->u.gi.obj = node;
  g->u.gi.idx = idx;
  return g;
}

static JnNode *
parse_call (Parser *p, JnNode *fn)
{
  JnNode *c = node_new (p, N_CALL, cur (p)->line);
  c->u.call.fn = fn;
  parse_call_args (p, &c->u.call.a);
  return c;
}

static JnNode *
parse_postfix (Parser *p, JnNode *node)
{
  for (;;) {
    if (is_op (p, ".") || is_op (p, "["))
      node = parse_subscript (p, node);
    else if (is_op (p, "("))
      node = parse_call (p, node);
    else
      return node;
  }
}

static const char *
dotted_name (Parser *p)
{
  const char *name = expect_name (p);
  while (is_op (p, ".")) {
    next (p);
    const char *part = expect_name (p);
    size_t a = strlen (name), b = strlen (part);
    char *s = jn_alloc (p->r, a + b + 2);
    memcpy (s, name, a);
    s[a] = '.';
    memcpy (s + a + 1, part, b + 1);
    name = s;
  }
  return name;
}

static JnNode *
parse_filter (Parser *p, JnNode *node, bool start_inline)
{
  while (is_op (p, "|") || start_inline) {
    if (!start_inline)
      next (p);
    start_inline = false;
    int line = cur (p)->line;
    const char *name = dotted_name (p);
    bool unsupported = false;
    int id = jn_filter_id (name, &unsupported);
    if (id < 0) {
      if (unsupported)
        jn_fail (p->r, SUTRA_ERR_UNSUPPORTED, line, "the '%s' filter is not supported", name);
      jn_fail (p->r, SUTRA_ERR_FORMAT, line, "No filter named '%s'.", name);
    }
    JnNode *f = node_new (p, N_FILTER, line);
    f->u.flt.obj = node;
    f->u.flt.name = name;
    f->u.flt.id = id;
    if (is_op (p, "("))
      parse_call_args (p, &f->u.flt.a);
    node = f;
  }
  return node;
}

static JnNode *
parse_test (Parser *p, JnNode *node)
{
  int line = cur (p)->line;
  next (p);                                /* "is" */
  bool negated = skip_name (p, "not");
  const char *name = dotted_name (p);
  bool unsupported = false;
  int id = jn_test_id (name, &unsupported);
  if (id < 0) {
    if (unsupported)
      jn_fail (p->r, SUTRA_ERR_UNSUPPORTED, line, "the '%s' test is not supported", name);
    jn_fail (p->r, SUTRA_ERR_FORMAT, line, "No test named '%s'.", name);
  }
  JnNode *t = node_new (p, N_TEST, line);
  t->u.flt.obj = node;
  t->u.flt.name = name;
  t->u.flt.id = id;
  t->u.flt.negated = negated;
  const JnTok *c = cur (p);
  if (is_op (p, "(")) {
    parse_call_args (p, &t->u.flt.a);
  } else if ((c->kind == T_NAME || c->kind == T_STRING || c->kind == T_INT ||
              c->kind == T_FLOAT || tok_is_op (c, "(") || tok_is_op (c, "[") ||
              tok_is_op (c, "{")) &&
             !tok_is_name (c, "else") && !tok_is_name (c, "or") && !tok_is_name (c, "and")) {
    if (tok_is_name (c, "is"))
      jn_fail (p->r, SUTRA_ERR_FORMAT, c->line, "you cannot chain multiple tests with is");
    JnNode *arg = parse_postfix (p, parse_primary (p));
    size_t cap = 0;
    nodes_push (p, &t->u.flt.a.args, arg, &cap);
  }
  return t;
}

static JnNode *
parse_filter_expr (Parser *p, JnNode *node)
{
  for (;;) {
    if (is_op (p, "|"))
      node = parse_filter (p, node, false);
    else if (is_name (p, "is"))
      node = parse_test (p, node);
    else if (is_op (p, "("))
      node = parse_call (p, node);
    else
      return node;
  }
}

static void
note_special_name (Parser *p, const char *name)
{
  bool va = strcmp (name, "varargs") == 0, kw = strcmp (name, "kwargs") == 0,
       ca = strcmp (name, "caller") == 0;
  if (!va && !kw && !ca)
    return;
  for (int i = 0; i < p->nmacros; i++) {
    JnNode *m = p->macros[i];
    if (m->kind == N_MACRO) {
      m->u.macro.uses_varargs |= va;
      m->u.macro.uses_kwargs |= kw;
      m->u.macro.uses_caller |= ca;
    } else {
      m->u.callblock.uses_varargs |= va;
      m->u.callblock.uses_kwargs |= kw;
      m->u.callblock.uses_caller |= ca;
    }
  }
}

static JnNode *
parse_primary (Parser *p)
{
  enter (p);
  const JnTok *t = cur (p);
  int line = t->line;
  JnNode *node;
  if (t->kind == T_NAME) {
    node = node_new (p, N_CONST, line);
    if (tok_is_name (t, "true") || tok_is_name (t, "True")) {
      node->u.cval = jv_bool (true);
    } else if (tok_is_name (t, "false") || tok_is_name (t, "False")) {
      node->u.cval = jv_bool (false);
    } else if (tok_is_name (t, "none") || tok_is_name (t, "None")) {
      node->u.cval = jv_none ();
    } else {
      node->kind = N_NAME;
      node->u.name = jn_strndup (p->r, t->s, t->len);
      note_special_name (p, node->u.name);
    }
    next (p);
  } else if (t->kind == T_STRING) {
    JBuf b;
    jbuf_init (&b, p->r, (size_t) -1);
    while (cur (p)->kind == T_STRING) {
      jbuf_add (&b, cur (p)->s, cur (p)->len);
      next (p);
    }
    node = node_new (p, N_CONST, line);
    node->u.cval = jbuf_to_str (&b);
    jstr_ncp (node->u.cval.v.s);          /* cached now: renders share the AST read-only */
  } else if (t->kind == T_INT || t->kind == T_FLOAT) {
    node = node_new (p, N_CONST, line);
    node->u.cval = t->kind == T_INT ? jv_int (t->i) : jv_float (t->f);
    next (p);
  } else if (tok_is_op (t, "(")) {
    next (p);
    node = parse_tuple (p, false, true, NULL, true);
    expect_op (p, ")");
  } else if (tok_is_op (t, "[")) {
    next (p);
    node = node_new (p, N_LIST, line);
    size_t cap = 0;
    while (!is_op (p, "]")) {
      if (node->u.items.n)
        expect_op (p, ",");
      if (is_op (p, "]"))
        break;
      nodes_push (p, &node->u.items, parse_expression (p, true), &cap);
    }
    expect_op (p, "]");
  } else if (tok_is_op (t, "{")) {
    next (p);
    node = node_new (p, N_DICT, line);
    size_t kc = 0, vc = 0;
    while (!is_op (p, "}")) {
      if (node->u.dict.keys.n)
        expect_op (p, ",");
      if (is_op (p, "}"))
        break;
      nodes_push (p, &node->u.dict.keys, parse_expression (p, true), &kc);
      expect_op (p, ":");
      nodes_push (p, &node->u.dict.vals, parse_expression (p, true), &vc);
    }
    expect_op (p, "}");
  } else {
    char d[64];
    describe (t, d, sizeof d);
    jn_fail (p->r, SUTRA_ERR_FORMAT, line, "unexpected '%s'", d);
  }
  p->depth--;
  return node;
}

static JnNode *
parse_unary (Parser *p, bool with_filter)
{
  enter (p);
  int line = cur (p)->line;
  JnNode *node;
  if (is_op (p, "-") || is_op (p, "+")) {
    bool neg = is_op (p, "-");
    next (p);
    node = node_new (p, neg ? N_NEG : N_POS, line);
    node->u.un = parse_unary (p, false);
  } else {
    node = parse_primary (p);
  }
  node = parse_postfix (p, node);
  if (with_filter)
    node = parse_filter_expr (p, node);
  p->depth--;
  return node;
}

static JnNode *
binop (Parser *p, JnNodeKind kind, JnOp op, JnNode *a, JnNode *b, int line)
{
  JnNode *n = node_new (p, kind, line);
  n->u.bin.op = op;
  n->u.bin.a = a;
  n->u.bin.b = b;
  return n;
}

static JnNode *
parse_pow (Parser *p)
{
  JnNode *left = parse_unary (p, true);
  while (is_op (p, "**")) {
    int line = cur (p)->line;
    next (p);
    left = binop (p, N_BINOP, OP_POW, left, parse_unary (p, true), line);
  }
  return left;
}

static JnNode *
parse_math2 (Parser *p)
{
  JnNode *left = parse_pow (p);
  for (;;) {
    JnOp op;
    if (is_op (p, "*")) op = OP_MUL;
    else if (is_op (p, "/")) op = OP_DIV;
    else if (is_op (p, "//")) op = OP_FLOORDIV;
    else if (is_op (p, "%")) op = OP_MOD;
    else return left;
    int line = cur (p)->line;
    next (p);
    left = binop (p, N_BINOP, op, left, parse_pow (p), line);
  }
}

static JnNode *
parse_concat (Parser *p)
{
  int line = cur (p)->line;
  JnNode *first = parse_math2 (p);
  if (!is_op (p, "~"))
    return first;
  JnNode *c = node_new (p, N_CONCAT, line);
  size_t cap = 0;
  nodes_push (p, &c->u.items, first, &cap);
  while (skip_op (p, "~"))
    nodes_push (p, &c->u.items, parse_math2 (p), &cap);
  return c;
}

static JnNode *
parse_math1 (Parser *p)
{
  JnNode *left = parse_concat (p);
  for (;;) {
    JnOp op;
    if (is_op (p, "+")) op = OP_ADD;
    else if (is_op (p, "-")) op = OP_SUB;
    else return left;
    int line = cur (p)->line;
    next (p);
    left = binop (p, N_BINOP, op, left, parse_concat (p), line);
  }
}

static JnNode *
parse_compare (Parser *p)
{
  int line = cur (p)->line;
  JnNode *first = parse_math1 (p);
  JnOp ops[64];
  JnNode *rhs[64];
  size_t n = 0;
  for (;;) {
    JnOp op;
    if (is_op (p, "==")) op = OP_EQ;
    else if (is_op (p, "!=")) op = OP_NE;
    else if (is_op (p, "<")) op = OP_LT;
    else if (is_op (p, "<=")) op = OP_LE;
    else if (is_op (p, ">")) op = OP_GT;
    else if (is_op (p, ">=")) op = OP_GE;
    else if (is_name (p, "in")) op = OP_IN;
    else if (is_name (p, "not") && tok_is_name (look (p), "in")) {
      next (p);
      op = OP_NOTIN;
    } else break;
    next (p);
    if (n == 64)
      jn_fail (p->r, SUTRA_ERR_UNSUPPORTED, line, "comparison chain too long");
    ops[n] = op;
    rhs[n] = parse_math1 (p);
    n++;
  }
  if (n == 0)
    return first;
  JnNode *c = node_new (p, N_COMPARE, line);
  c->u.cmp.first = first;
  c->u.cmp.n = n;
  c->u.cmp.ops = jn_alloc (p->r, n * sizeof *ops);
  c->u.cmp.rhs = jn_alloc (p->r, n * sizeof *rhs);
  memcpy (c->u.cmp.ops, ops, n * sizeof *ops);
  memcpy (c->u.cmp.rhs, rhs, n * sizeof *rhs);
  return c;
}

static JnNode *
parse_not (Parser *p)
{
  if (is_name (p, "not")) {
    int line = cur (p)->line;
    next (p);
    enter (p);
    JnNode *n = node_new (p, N_NOT, line);
    n->u.un = parse_not (p);
    p->depth--;
    return n;
  }
  return parse_compare (p);
}

static JnNode *
parse_and (Parser *p)
{
  JnNode *left = parse_not (p);
  while (is_name (p, "and")) {
    int line = cur (p)->line;
    next (p);
    left = binop (p, N_AND, OP_ADD, left, parse_not (p), line);
  }
  return left;
}

static JnNode *
parse_or (Parser *p)
{
  JnNode *left = parse_and (p);
  while (is_name (p, "or")) {
    int line = cur (p)->line;
    next (p);
    left = binop (p, N_OR, OP_ADD, left, parse_and (p), line);
  }
  return left;
}

static JnNode *
parse_condexpr (Parser *p)
{
  int line = cur (p)->line;
  JnNode *a = parse_or (p);
  while (is_name (p, "if")) {
    next (p);
    enter (p);
    JnNode *c = node_new (p, N_COND, line);
    c->u.cond.a = a;
    c->u.cond.test = parse_or (p);
    c->u.cond.b = skip_name (p, "else") ? parse_condexpr (p) : NULL;
    p->depth--;
    a = c;
  }
  return a;
}

static JnNode *
parse_expression (Parser *p, bool with_condexpr)
{
  enter (p);
  JnNode *e = with_condexpr ? parse_condexpr (p) : parse_or (p);
  p->depth--;
  return e;
}

/* ---- statements -------------------------------------------------------------------------- */

static bool
can_assign (JnNode *t)
{
  if (t->kind == N_NAME || t->kind == N_NSREF)
    return true;
  if (t->kind == N_TUPLE) {
    for (size_t i = 0; i < t->u.items.n; i++)
      if (t->u.items.v[i]->kind != N_NAME && !(t->u.items.v[i]->kind == N_TUPLE &&
                                               can_assign (t->u.items.v[i])))
        return false;
    return true;
  }
  return false;
}

static JnNode *
parse_assign_target (Parser *p, bool with_tuple, bool name_only, const char *extra_end,
                     bool with_namespace)
{
  int line = cur (p)->line;
  JnNode *target;
  if (with_namespace && cur (p)->kind == T_NAME && tok_is_op (look (p), ".")) {
    target = node_new (p, N_NSREF, line);
    target->u.nsref.ns = expect_name (p);
    next (p);
    target->u.nsref.attr = expect_name (p);
  } else if (name_only) {
    target = node_new (p, N_NAME, line);
    target->u.name = expect_name (p);
  } else {
    target = with_tuple ? parse_tuple (p, true, true, extra_end, false) : parse_primary (p);
  }
  if (!can_assign (target) || (target->kind == N_NAME && (!strcmp (target->u.name, "true") ||
                                                          !strcmp (target->u.name, "false") ||
                                                          !strcmp (target->u.name, "none"))))
    jn_fail (p->r, SUTRA_ERR_FORMAT, line, "can't assign to this expression");
  return target;
}

static JnNodes
parse_statements (Parser *p, const char *const *end_names, bool drop_needle, int open_line,
                  const char *what)
{
  skip_op (p, ":");
  expect_kind (p, T_BLOCK_END, "end of statement block");
  JnNodes body = subparse (p, end_names);
  if (cur (p)->kind == T_EOF)
    jn_fail (p->r, SUTRA_ERR_FORMAT, open_line, "unexpected end of template: '{%% %s %%}' opened "
             "on this line is never closed (expected '{%% %s %%}')", what, end_names[0]);
  if (drop_needle)
    next (p);
  return body;
}

static void
parse_signature (Parser *p, size_t *nparams, const char ***params, JnNode ***defaults)
{
  const char *names[256];
  JnNode *defs[256];
  size_t n = 0;
  bool any_default = false;
  expect_op (p, "(");
  while (!is_op (p, ")")) {
    if (n)
      expect_op (p, ",");
    if (n == 256)
      jn_fail (p->r, SUTRA_ERR_UNSUPPORTED, cur (p)->line, "too many macro parameters");
    int line = cur (p)->line;
    names[n] = expect_name (p);
    defs[n] = NULL;
    if (skip_op (p, "=")) {
      defs[n] = parse_expression (p, true);
      any_default = true;
    } else if (any_default) {
      jn_fail (p->r, SUTRA_ERR_FORMAT, line, "non-default argument follows default argument");
    }
    n++;
  }
  expect_op (p, ")");
  *nparams = n;
  *params = jn_alloc (p->r, (n ? n : 1) * sizeof **params);
  *defaults = jn_alloc (p->r, (n ? n : 1) * sizeof **defaults);
  memcpy (*params, names, n * sizeof *names);
  memcpy (*defaults, defs, n * sizeof *defs);
}

static JnNode *
parse_for (Parser *p, int line)
{
  JnNode *f = node_new (p, N_FOR, line);
  f->u.for_.target = parse_assign_target (p, true, false, "in", false);
  if (!skip_name (p, "in"))
    fail_tok (p, "in");
  f->u.for_.iter = parse_tuple (p, false, false, "recursive", false);
  if (skip_name (p, "if"))
    f->u.for_.filter = parse_expression (p, true);
  f->u.for_.recursive = skip_name (p, "recursive");
  static const char *const ends[] = { "endfor", "else", NULL };
  static const char *const ends2[] = { "endfor", NULL };
  p->loop_depth++;
  f->u.for_.body = parse_statements (p, ends, false, line, "for");
  p->loop_depth--;
  bool is_else = is_name (p, "else");
  next (p);
  if (is_else)
    f->u.for_.else_body = parse_statements (p, ends2, true, line, "for");
  return f;
}

static JnNode *
parse_if (Parser *p, int line)
{
  static const char *const ends[] = { "endif", "elif", "else", NULL };
  static const char *const ends2[] = { "endif", NULL };
  JnNode *result = node_new (p, N_IF, line);
  JnNode *node = result;
  int depth0 = p->depth;
  for (;;) {
    node->u.if_.test = parse_tuple (p, false, false, NULL, false);
    node->u.if_.body = parse_statements (p, ends, false, line, "if");
    bool is_elif = is_name (p, "elif"), is_else = is_name (p, "else");
    int eline = cur (p)->line;
    next (p);
    if (is_elif) {
      enter (p);
      JnNode *e = node_new (p, N_IF, eline);
      node->u.if_.else_body.n = 1;
      node->u.if_.else_body.v = jn_alloc (p->r, sizeof (JnNode *));
      node->u.if_.else_body.v[0] = e;
      node = e;
      continue;
    }
    if (is_else)
      node->u.if_.else_body = parse_statements (p, ends2, true, line, "if");
    break;
  }
  p->depth = depth0;
  return result;
}

static JnNode *
parse_set (Parser *p, int line)
{
  JnNode *target = parse_assign_target (p, true, false, NULL, true);
  if (skip_op (p, "=")) {
    JnNode *s = node_new (p, N_SET, line);
    s->u.set.target = target;
    s->u.set.value = parse_tuple (p, false, true, NULL, false);
    return s;
  }
  JnNode *s = node_new (p, N_SETBLOCK, line);
  s->u.setblock.target = target;
  if (is_op (p, "|")) {
    JnNode *chain = parse_filter (p, NULL, false);
    /* flatten the chain innermost-first */
    JnNode *tmp[64];
    size_t n = 0;
    for (JnNode *f = chain; f && n < 64; f = f->u.flt.obj)
      tmp[n++] = f;
    s->u.setblock.filters.n = n;
    s->u.setblock.filters.v = jn_alloc (p->r, (n ? n : 1) * sizeof (JnNode *));
    for (size_t i = 0; i < n; i++)
      s->u.setblock.filters.v[i] = tmp[n - 1 - i];
  }
  static const char *const ends[] = { "endset", NULL };
  s->u.setblock.body = parse_statements (p, ends, true, line, "set");
  return s;
}

static JnNodes
flatten_filters (Parser *p, JnNode *chain)
{
  JnNode *tmp[64];
  size_t n = 0;
  for (JnNode *f = chain; f; f = f->u.flt.obj) {
    if (n == 64)
      jn_fail (p->r, SUTRA_ERR_UNSUPPORTED, f->line, "too many chained filters");
    tmp[n++] = f;
  }
  JnNodes v = { n, jn_alloc (p->r, (n ? n : 1) * sizeof (JnNode *)) };
  for (size_t i = 0; i < n; i++)
    v.v[i] = tmp[n - 1 - i];
  return v;
}

static JnNode *
parse_statement (Parser *p)
{
  const JnTok *t = cur (p);
  int line = t->line;
  if (t->kind != T_NAME)
    fail_tok (p, "name");
  enter (p);
  JnNode *node;
  if (skip_name (p, "for")) {
    node = parse_for (p, line);
  } else if (skip_name (p, "if")) {
    node = parse_if (p, line);
  } else if (skip_name (p, "set")) {
    node = parse_set (p, line);
  } else if (skip_name (p, "macro") || is_name (p, "call")) {
    bool is_call = is_name (p, "call");
    if (is_call)
      next (p);
    if (p->nmacros == MAX_MACRO_STACK)
      jn_fail (p->r, SUTRA_ERR_UNSUPPORTED, line, "macros nested too deeply");
    node = node_new (p, is_call ? N_CALLBLOCK : N_MACRO, line);
    int saved_loop = p->loop_depth;
    p->loop_depth = 0;
    if (!is_call) {
      node->u.macro.name = expect_name (p);
      parse_signature (p, &node->u.macro.nparams, &node->u.macro.params,
                       &node->u.macro.defaults);
      p->macros[p->nmacros++] = node;
      static const char *const ends[] = { "endmacro", NULL };
      node->u.macro.body = parse_statements (p, ends, true, line, "macro");
    } else {
      if (is_op (p, "("))
        parse_signature (p, &node->u.callblock.nparams, &node->u.callblock.params,
                         &node->u.callblock.defaults);
      JnNode *call = parse_expression (p, true);
      if (call->kind != N_CALL)
        jn_fail (p->r, SUTRA_ERR_FORMAT, line, "expected call");
      node->u.callblock.call = call;
      p->macros[p->nmacros++] = node;
      static const char *const ends[] = { "endcall", NULL };
      node->u.callblock.body = parse_statements (p, ends, true, line, "call");
    }
    p->nmacros--;
    p->loop_depth = saved_loop;
  } else if (skip_name (p, "filter")) {
    node = node_new (p, N_FILTERBLOCK, line);
    node->u.filterblock.filters = flatten_filters (p, parse_filter (p, NULL, true));
    static const char *const ends[] = { "endfilter", NULL };
    node->u.filterblock.body = parse_statements (p, ends, true, line, "filter");
  } else if (skip_name (p, "with")) {
    node = node_new (p, N_WITH, line);
    size_t tc = 0, vc = 0;
    while (cur (p)->kind != T_BLOCK_END) {
      if (node->u.with.targets.n)
        expect_op (p, ",");
      nodes_push (p, &node->u.with.targets, parse_assign_target (p, true, false, NULL, false),
                  &tc);
      expect_op (p, "=");
      nodes_push (p, &node->u.with.values, parse_expression (p, true), &vc);
    }
    static const char *const ends[] = { "endwith", NULL };
    node->u.with.body = parse_statements (p, ends, true, line, "with");
  } else if (is_name (p, "break") || is_name (p, "continue")) {
    bool brk = is_name (p, "break");
    if (p->loop_depth == 0)
      jn_fail (p->r, SUTRA_ERR_FORMAT, line, "'%s' outside a loop", brk ? "break" : "continue");
    next (p);
    node = node_new (p, brk ? N_BREAK : N_CONTINUE, line);
  } else if (skip_name (p, "generation")) {
    node = node_new (p, N_GENERATION, line);
    static const char *const ends[] = { "endgeneration", NULL };
    node->u.body = parse_statements (p, ends, true, line, "generation");
  } else {
    static const char *const unsupported[] = { "block", "extends", "include", "import", "from",
                                               "autoescape", "trans", "pluralize", "do", "print",
                                               NULL };
    for (int i = 0; unsupported[i]; i++)
      if (is_name (p, unsupported[i]))
        jn_fail (p->r, SUTRA_ERR_UNSUPPORTED, line, "the '{%% %s %%}' tag is not supported "
                 "(not used by chat templates)", unsupported[i]);
    jn_fail (p->r, SUTRA_ERR_FORMAT, line, "Encountered unknown tag '%.*s'.",
             (int) (t->len > 40 ? 40 : t->len), t->s);
  }
  p->depth--;
  return node;
}

static bool
at_end_name (Parser *p, const char *const *end_names)
{
  if (!end_names)
    return false;
  for (int i = 0; end_names[i]; i++)
    if (is_name (p, end_names[i]))
      return true;
  return false;
}

static JnNodes
subparse (Parser *p, const char *const *end_names)
{
  JnNodes body = { 0 };
  size_t cap = 0;
  for (;;) {
    const JnTok *t = cur (p);
    if (t->kind == T_EOF)
      return body;
    if (t->kind == T_DATA) {
      JnNode *d = node_new (p, N_DATA, t->line);
      d->u.data.text = t->s;
      d->u.data.len = t->len;
      nodes_push (p, &body, d, &cap);
      next (p);
    } else if (t->kind == T_VAR_BEGIN) {
      next (p);
      JnNode *o = node_new (p, N_OUTPUT, t->line);
      o->u.body.n = 1;
      o->u.body.v = jn_alloc (p->r, sizeof (JnNode *));
      o->u.body.v[0] = parse_tuple (p, false, true, NULL, false);
      expect_kind (p, T_VAR_END, "end of print statement");
      nodes_push (p, &body, o, &cap);
    } else if (t->kind == T_BLOCK_BEGIN) {
      next (p);
      if (at_end_name (p, end_names))
        return body;
      nodes_push (p, &body, parse_statement (p), &cap);
      expect_kind (p, T_BLOCK_END, "end of statement block");
    } else {
      char d[64];
      describe (t, d, sizeof d);
      jn_fail (p->r, SUTRA_ERR_FORMAT, t->line, "unexpected '%s'", d);
    }
  }
}

void
jn_parse (SutraJinjaTemplate *t, const JnToks *toks)
{
  Parser p = { .r = &t->run, .tok = toks->v, .n = toks->n };
  t->body = subparse (&p, NULL);
}

/* ---- public entry points ------------------------------------------------------------------- */

SutraStatus
sutra_jinja_parse (const char *source, size_t len, SutraJinjaTemplate **out, SutraError *err)
{
  SUTRA_ASSERT (source && out);
  SutraJinjaTemplate *t = calloc (1, sizeof *t);
  if (!t)
    return sutra_error_set (err, SUTRA_ERR_NOMEM, "out of memory");
  t->run.limit = len * 64 + ((size_t) 16 << 20);
  if (setjmp (t->run.jb)) {
    SutraStatus st = t->run.code;
    sutra_error_set (err, st, "template line %d: %s", t->run.line, t->run.msg);
    jn_arena_free (&t->run);
    free (t);
    return st;
  }
  JnToks toks = { 0 };
  jn_lex (&t->run, source, len, &toks);
  jn_parse (t, &toks);
  *out = t;
  return SUTRA_OK;
}

void
sutra_jinja_free (SutraJinjaTemplate *t)
{
  if (!t)
    return;
  jn_arena_free (&t->run);
  free (t);
}
