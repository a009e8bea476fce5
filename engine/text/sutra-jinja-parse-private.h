/* sutra-jinja-parse-private.h: the parser state and token helpers shared by
 * sutra-jinja-parse.c (statements) and sutra-jinja-parse-expr.c (expressions). */
#pragma once
#include "sutra-jinja-private.h"

#include <stdio.h>
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

JnNode *jn_parse_expression (Parser *p, bool with_condexpr);
JnNode *jn_parse_tuple      (Parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                             bool explicit_parens);
JnNode *jn_parse_primary    (Parser *p);
JnNode *jn_parse_filter     (Parser *p, JnNode *node, bool start_inline);
void    jn_parse_call_args  (Parser *p, JnArgs *a);

static inline const JnTok *
cur (Parser *p)
{
  return &p->tok[p->pos];
}

static inline const JnTok *
look (Parser *p)
{
  return p->pos + 1 < p->n ? &p->tok[p->pos + 1] : &p->tok[p->n - 1];
}

static inline void
next (Parser *p)
{
  if (p->pos + 1 < p->n)
    p->pos++;
}

static inline bool
tok_is_op (const JnTok *t, const char *op)
{
  return t->kind == T_OP && t->len == strlen (op) && memcmp (t->s, op, t->len) == 0;
}

static inline bool
tok_is_name (const JnTok *t, const char *name)
{
  return t->kind == T_NAME && t->len == strlen (name) && memcmp (t->s, name, t->len) == 0;
}

static inline bool
is_op (Parser *p, const char *op)
{
  return tok_is_op (cur (p), op);
}

static inline bool
is_name (Parser *p, const char *name)
{
  return tok_is_name (cur (p), name);
}

static inline bool
skip_op (Parser *p, const char *op)
{
  if (!is_op (p, op))
    return false;
  next (p);
  return true;
}

static inline bool
skip_name (Parser *p, const char *name)
{
  if (!is_name (p, name))
    return false;
  next (p);
  return true;
}

static inline void
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

_Noreturn static inline void
fail_tok (Parser *p, const char *what)
{
  char d[64];
  describe (cur (p), d, sizeof d);
  jn_fail (p->r, SUTRA_ERR_FORMAT, cur (p)->line, "expected token '%s', got '%s'", what, d);
}

static inline void
expect_op (Parser *p, const char *op)
{
  if (!skip_op (p, op))
    fail_tok (p, op);
}

static inline void
expect_kind (Parser *p, JnTokKind k, const char *what)
{
  if (cur (p)->kind != k)
    fail_tok (p, what);
  next (p);
}

static inline const char *
expect_name (Parser *p)
{
  if (cur (p)->kind != T_NAME)
    fail_tok (p, "name");
  const char *s = jn_strndup (p->r, cur (p)->s, cur (p)->len);
  next (p);
  return s;
}

static inline JnNode *
node_new (Parser *p, JnNodeKind kind, int line)
{
  JnNode *n = jn_alloc (p->r, sizeof *n);
  n->kind = (uint8_t) kind;
  n->line = line;
  return n;
}

static inline void
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

static inline void
enter (Parser *p)
{
  if (++p->depth > MAX_NEST)
    jn_fail (p->r, SUTRA_ERR_UNSUPPORTED, cur (p)->line, "template nests more than %d levels",
             MAX_NEST);
}
