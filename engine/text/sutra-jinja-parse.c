/* sutra-jinja-parse.c: the statement half of the parser: {% for %}, {% if %}, {% set %},
 * {% macro %}, {% call %}, {% filter %}, {% with %}, loop controls, {% generation %}, and the
 * public sutra_jinja_parse(). Unknown tags are errors; tags we do not implement (include,
 * extends, block, import ...) are SUTRA_ERR_UNSUPPORTED. Expression grammar:
 * sutra-jinja-parse-expr.c. */
#include "sutra-jinja-parse-private.h"

#include <setjmp.h>
#include <stdlib.h>

static JnNodes subparse (Parser *p, const char *const *end_names);

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
    target = with_tuple ? jn_parse_tuple (p, true, true, extra_end, false) : jn_parse_primary (p);
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
      defs[n] = jn_parse_expression (p, true);
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
  f->u.for_.iter = jn_parse_tuple (p, false, false, "recursive", false);
  if (skip_name (p, "if"))
    f->u.for_.filter = jn_parse_expression (p, true);
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
    node->u.if_.test = jn_parse_tuple (p, false, false, NULL, false);
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
    s->u.set.value = jn_parse_tuple (p, false, true, NULL, false);
    return s;
  }
  JnNode *s = node_new (p, N_SETBLOCK, line);
  s->u.setblock.target = target;
  if (is_op (p, "|")) {
    JnNode *chain = jn_parse_filter (p, NULL, false);
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
      JnNode *call = jn_parse_expression (p, true);
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
    node->u.filterblock.filters = flatten_filters (p, jn_parse_filter (p, NULL, true));
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
      nodes_push (p, &node->u.with.values, jn_parse_expression (p, true), &vc);
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
      o->u.body.v[0] = jn_parse_tuple (p, false, true, NULL, false);
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

/* ---- compile-time checks ------------------------------------------------------------------ */

#define MAX_CHECK_DEPTH 2000   /* the evaluator's expression depth limit */

static void check_expr (JnRun *r, const JnNode *n, bool soft, int depth);
static void check_body (JnRun *r, const JnNodes *b, bool soft);

static void
check_nodes (JnRun *r, const JnNodes *v, bool soft, int depth)
{
  for (size_t i = 0; i < v->n; i++)
    check_expr (r, v->v[i], soft, depth);
}

static void
check_args (JnRun *r, const JnArgs *a, bool soft, int depth)
{
  check_nodes (r, &a->args, soft, depth);
  for (size_t i = 0; i < a->nkw; i++)
    check_expr (r, a->kw_vals[i], soft, depth);
  check_expr (r, a->dyn_args, soft, depth);
  check_expr (r, a->dyn_kwargs, soft, depth);
}

static void
check_expr (JnRun *r, const JnNode *n, bool soft, int depth)
{
  if (!n)
    return;
  if (depth > MAX_CHECK_DEPTH)
    jn_fail (r, SUTRA_ERR_UNSUPPORTED, n->line, "expression nests too deeply (render limit)");
  depth++;
  switch ((JnNodeKind) n->kind) {
  case N_GETATTR: check_expr (r, n->u.ga.obj, soft, depth); break;
  case N_GETITEM:
    check_expr (r, n->u.gi.obj, soft, depth);
    check_expr (r, n->u.gi.idx, soft, depth);
    break;
  case N_SLICE:
    check_expr (r, n->u.sl.start, soft, depth);
    check_expr (r, n->u.sl.stop, soft, depth);
    check_expr (r, n->u.sl.step, soft, depth);
    break;
  case N_BINOP: case N_AND: case N_OR:
    check_expr (r, n->u.bin.a, soft, depth);
    check_expr (r, n->u.bin.b, soft, depth);
    break;
  case N_NEG: case N_POS: case N_NOT: check_expr (r, n->u.un, soft, depth); break;
  case N_COMPARE:
    check_expr (r, n->u.cmp.first, soft, depth);
    for (size_t i = 0; i < n->u.cmp.n; i++)
      check_expr (r, n->u.cmp.rhs[i], soft, depth);
    break;
  case N_COND:                              /* a conditional expression is a soft frame */
    check_expr (r, n->u.cond.a, true, depth);
    check_expr (r, n->u.cond.test, true, depth);
    check_expr (r, n->u.cond.b, true, depth);
    break;
  case N_FILTER: case N_TEST:
    if (n->u.flt.id < 0 && !soft) {
      const char *what = n->kind == N_FILTER ? "filter" : "test";
      if (n->u.flt.unsupported)
        jn_fail (r, SUTRA_ERR_UNSUPPORTED, n->line, "the '%s' %s is not supported",
                 n->u.flt.name, what);
      jn_fail (r, SUTRA_ERR_FORMAT, n->line, "No %s named '%s'.", what, n->u.flt.name);
    }
    check_expr (r, n->u.flt.obj, soft, depth);
    check_args (r, &n->u.flt.a, soft, depth);
    break;
  case N_CALL:
    check_expr (r, n->u.call.fn, soft, depth);
    check_args (r, &n->u.call.a, soft, depth);
    break;
  case N_LIST: case N_TUPLE: case N_CONCAT: check_nodes (r, &n->u.items, soft, depth); break;
  case N_DICT:
    check_nodes (r, &n->u.dict.keys, soft, depth);
    check_nodes (r, &n->u.dict.vals, soft, depth);
    break;
  default:
    break;
  }
}

/* Frames as Jinja's code generator makes them: `if` (test and branches) stays soft; loop
 * bodies, macro and block bodies are new frames, never soft. */
static void
check_stmt (JnRun *r, const JnNode *n, bool soft)
{
  switch ((JnNodeKind) n->kind) {
  case N_OUTPUT: check_nodes (r, &n->u.body, soft, 0); break;
  case N_IF:
    check_expr (r, n->u.if_.test, true, 0);
    check_body (r, &n->u.if_.body, true);
    check_body (r, &n->u.if_.else_body, true);
    break;
  case N_FOR:
    check_expr (r, n->u.for_.iter, soft, 0);
    check_expr (r, n->u.for_.filter, false, 0);
    check_body (r, &n->u.for_.body, false);
    check_body (r, &n->u.for_.else_body, false);
    break;
  case N_SET: check_expr (r, n->u.set.value, soft, 0); break;
  case N_SETBLOCK:
    check_nodes (r, &n->u.setblock.filters, false, 0);
    check_body (r, &n->u.setblock.body, false);
    break;
  case N_MACRO:
    for (size_t i = 0; i < n->u.macro.nparams; i++)
      check_expr (r, n->u.macro.defaults[i], false, 0);
    check_body (r, &n->u.macro.body, false);
    break;
  case N_CALLBLOCK:
    check_expr (r, n->u.callblock.call, soft, 0);
    for (size_t i = 0; i < n->u.callblock.nparams; i++)
      check_expr (r, n->u.callblock.defaults[i], false, 0);
    check_body (r, &n->u.callblock.body, false);
    break;
  case N_FILTERBLOCK:
    check_nodes (r, &n->u.filterblock.filters, false, 0);
    check_body (r, &n->u.filterblock.body, false);
    break;
  case N_WITH:
    check_nodes (r, &n->u.with.values, soft, 0);
    check_body (r, &n->u.with.body, false);
    break;
  case N_GENERATION: check_body (r, &n->u.body, false); break;
  default: break;
  }
}

static void
check_body (JnRun *r, const JnNodes *b, bool soft)
{
  for (size_t i = 0; i < b->n; i++)
    check_stmt (r, b->v[i], soft);
}

void
jn_check_tree (JnRun *r, const JnNodes *body)
{
  check_body (r, body, false);
}

void
jn_parse (SutraJinjaTemplate *t, const JnToks *toks)
{
  Parser p = { .r = &t->run, .tok = toks->v, .n = toks->n };
  t->body = subparse (&p, NULL);
}

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
  jn_check_tree (&t->run, &t->body);
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
