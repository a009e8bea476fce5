/* sutra-jinja-access.c: iteration, len(), and attribute / item / slice access under the rules
 * of Jinja's SandboxedEnvironment (getattr then getitem fallbacks, unsafe attributes, Undefined
 * for what is missing), plus Python's `in`. */
#include "sutra-jinja-private.h"

#include <json-c/json.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
  JVal f = jn_func_value (c, FN_METHOD);
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
    JVal f = jn_func_value (c, name[0] == 'c' && name[1] == 'y' ? FN_LOOP_CYCLE : FN_LOOP_CHANGED);
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

bool
jn_as_index (JVal k, int64_t *i)
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
    if ((obj.v.l->kind == LK_PLAIN || obj.v.l->kind == LK_RANGE) && jn_as_index (key, &i)) {
      int64_t n = (int64_t) obj.v.l->n;
      if (i < 0)
        i += n;
      if (i >= 0 && i < n)
        return obj.v.l->items[i];
    }
    break;
  case JV_STR:
    if (jn_as_index (key, &i)) {
      int64_t n = jstr_ncp (obj.v.s);
      if (i < 0)
        i += n;
      if (i >= 0 && i < n)                  /* Markup.__getitem__ keeps Markup */
        return jv_as_markup (jn_str_char_at (r, obj.v.s, i), obj.markup);
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
    jn_as_index (vstart, &st);
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
    jn_as_index (vstop, &sp);
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

JVal
jn_eval_slice (JnCtx *c, JVal obj, const JnNode *sl, Scope *s, int line)
{
  JnRun *r = &c->run;
  JVal parts[3];
  const JnNode *nodes[3] = { sl->u.sl.start, sl->u.sl.stop, sl->u.sl.step };
  bool ok = true;
  for (int k = 0; k < 3; k++) {
    parts[k] = nodes[k] ? jn_eval (c, nodes[k], s) : jv_none ();
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
    jn_as_index (parts[2], &step);
  if (step == 0)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "slice step cannot be zero");
  int64_t len = obj.t == JV_LIST ? (int64_t) obj.v.l->n : jstr_ncp (obj.v.s);
  int64_t start;
  int64_t count = adjust_slice (len, parts[0], parts[1], step, &start);
  jn_step (c, (size_t) (count > 0 ? count : 0) / 16, line);
  if (obj.t == JV_STR)
    return jv_as_markup (jn_str_slice (r, obj.v.s, start, step, count), obj.markup);
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

/* `needle in hay` */
bool
jn_contains (JnCtx *c, JVal needle, JVal hay, int line)
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
