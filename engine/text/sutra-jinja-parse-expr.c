/* sutra-jinja-parse-expr.c: the expression half of the parser (tokens -> AST nodes).
 *
 * The grammar and its precedence follow jinja2/parser.py (3.1): condexpr < or < and < not <
 * compare (==, !=, <, in, not in, chained) < + - < ~ < * / // % < ** (left-associative) <
 * unary - + < primary with postfix .attr [sub] (call) and then filters `|f` and tests `is t`
 * (so `-x|abs` is `(-x)|abs` and `not x is defined` is `not (x is defined)`). `if` and `for`
 * heads parse without a conditional expression, so `for x in xs if cond` is a loop filter.
 * Unknown filters and tests are errors here, as in Jinja's compiler. Nesting is bounded. */
#include "sutra-jinja-parse-private.h"

static JnNode *parse_unary (Parser *p, bool with_filter);
static JnNode *parse_postfix (Parser *p, JnNode *node);

static bool
tuple_end (Parser *p, const char *extra_end)
{
  const JnTok *t = cur (p);
  if (t->kind == T_VAR_END || t->kind == T_BLOCK_END || tok_is_op (t, ")"))
    return true;
  return extra_end && tok_is_name (t, extra_end);
}

JnNode *
jn_parse_tuple (Parser *p, bool simplified, bool with_condexpr, const char *extra_end,
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
    JnNode *e = simplified ? jn_parse_primary (p) : jn_parse_expression (p, with_condexpr);
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

void
jn_parse_call_args (Parser *p, JnArgs *a)
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
      a->dyn_args = jn_parse_expression (p, true);
    } else if (is_op (p, "**")) {
      if (a->dyn_kwargs)
        jn_fail (p->r, SUTRA_ERR_FORMAT, line, "invalid syntax for function call expression");
      next (p);
      a->dyn_kwargs = jn_parse_expression (p, true);
    } else if (cur (p)->kind == T_NAME && tok_is_op (look (p), "=")) {
      if (a->dyn_args || a->dyn_kwargs)
        jn_fail (p->r, SUTRA_ERR_FORMAT, line, "invalid syntax for function call expression");
      const char *key = expect_name (p);
      next (p);
      JnNode *val = jn_parse_expression (p, true);
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
      nodes_push (p, &a->args, jn_parse_expression (p, true), &cap);
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
    JnNode *e = jn_parse_expression (p, true);
    if (!is_op (p, ":"))
      return e;
    next (p);
    args[0] = e;
  }
  if (is_op (p, ":")) {
    /* stop omitted */
  } else if (!is_op (p, "]") && !is_op (p, ",")) {
    args[1] = jn_parse_expression (p, true);
  }
  if (is_op (p, ":")) {
    next (p);
    if (!is_op (p, "]") && !is_op (p, ","))
      args[2] = jn_parse_expression (p, true);
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
  jn_parse_call_args (p, &c->u.call.a);
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

JnNode *
jn_parse_filter (Parser *p, JnNode *node, bool start_inline)
{
  while (is_op (p, "|") || start_inline) {
    if (!start_inline)
      next (p);
    start_inline = false;
    int line = cur (p)->line;
    const char *name = dotted_name (p);
    bool unsupported = false;
    int id = jn_filter_id (name, &unsupported);   /* unknown: checked by jn_check_tree */
    JnNode *f = node_new (p, N_FILTER, line);
    f->u.flt.obj = node;
    f->u.flt.name = name;
    f->u.flt.id = id;
    f->u.flt.unsupported = unsupported;
    if (is_op (p, "("))
      jn_parse_call_args (p, &f->u.flt.a);
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
  int id = jn_test_id (name, &unsupported);       /* unknown: checked by jn_check_tree */
  JnNode *t = node_new (p, N_TEST, line);
  t->u.flt.obj = node;
  t->u.flt.name = name;
  t->u.flt.id = id;
  t->u.flt.unsupported = unsupported;
  t->u.flt.negated = negated;
  const JnTok *c = cur (p);
  if (is_op (p, "(")) {
    jn_parse_call_args (p, &t->u.flt.a);
  } else if ((c->kind == T_NAME || c->kind == T_STRING || c->kind == T_INT ||
              c->kind == T_FLOAT || tok_is_op (c, "(") || tok_is_op (c, "[") ||
              tok_is_op (c, "{")) &&
             !tok_is_name (c, "else") && !tok_is_name (c, "or") && !tok_is_name (c, "and")) {
    if (tok_is_name (c, "is"))
      jn_fail (p->r, SUTRA_ERR_FORMAT, c->line, "you cannot chain multiple tests with is");
    JnNode *arg = parse_postfix (p, jn_parse_primary (p));
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
      node = jn_parse_filter (p, node, false);
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

JnNode *
jn_parse_primary (Parser *p)
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
    node = jn_parse_tuple (p, false, true, NULL, true);
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
      nodes_push (p, &node->u.items, jn_parse_expression (p, true), &cap);
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
      nodes_push (p, &node->u.dict.keys, jn_parse_expression (p, true), &kc);
      expect_op (p, ":");
      nodes_push (p, &node->u.dict.vals, jn_parse_expression (p, true), &vc);
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
    node = jn_parse_primary (p);
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

JnNode *
jn_parse_expression (Parser *p, bool with_condexpr)
{
  enter (p);
  JnNode *e = with_condexpr ? parse_condexpr (p) : parse_or (p);
  p->depth--;
  return e;
}
