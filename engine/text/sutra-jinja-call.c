/* sutra-jinja-call.c: calls: argument evaluation, macros and call blocks (Jinja's
 * Macro.__call__ binding rules), recursive loops, loop.cycle/changed, bound methods, and the
 * globals range (sandboxed to 100000 items), dict, namespace, joiner, raise_exception and
 * strftime_now (Python's datetime.strftime on a naive datetime). */
#include "sutra-jinja-private.h"

#include <json-c/json.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RANGE 100000         /* jinja2.sandbox.MAX_RANGE */

static JVal strftime_now (JnCtx *c, JVal fmt, int line);

void
jn_eval_args (JnCtx *c, const JnArgs *a, Scope *s, JnCallArgs *out, int line)
{
  JnRun *r = &c->run;
  JVal dyn = a->dyn_args ? jn_eval (c, a->dyn_args, s) : jv_undef ();
  JList *extra = a->dyn_args ? jn_iterate (c, dyn, line) : NULL;
  size_t n = a->args.n + (extra ? extra->n : 0);
  out->n = n;
  out->v = jn_alloc (r, (n ? n : 1) * sizeof (JVal));
  for (size_t i = 0; i < a->args.n; i++)
    out->v[i] = jn_eval (c, a->args.v[i], s);
  if (extra)
    memcpy (out->v + a->args.n, extra->items, extra->n * sizeof (JVal));
  JDict *dk = NULL;
  if (a->dyn_kwargs) {
    JVal d = jn_eval (c, a->dyn_kwargs, s);
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
    out->kwv[i] = jn_eval (c, a->kw_vals[i], s);
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
        v = jn_eval (c, defaults[i], ms);
      } else {
        char *hint = jn_alloc (r, strlen (params[i]) + 40);
        sprintf (hint, "parameter '%s' was not provided", params[i]);
        v = jv_undef_hint (r, hint, false);
      }
    }
    jn_scope_set (c, ms, params[i], v);
  }
  if (a->n > np) {
    if (!uses_varargs)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "macro '%s' takes not more than %zu argument(s)", mname,
               np);
    JVal va = jv_list (r, a->n - np, true);
    memcpy (va.v.l->items, a->v + np, (a->n - np) * sizeof (JVal));
    jn_scope_set (c, ms, "varargs", va);
  } else if (uses_varargs) {
    jn_scope_set (c, ms, "varargs", jv_list (r, 0, true));
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
    jn_scope_set (c, ms, "kwargs", kw);
  if (uses_caller)
    jn_scope_set (c, ms, "caller", caller);
}

JVal
jn_render_capture (JnCtx *c, const JnNodes *body, Scope *s)
{
  JBuf buf;
  jbuf_init (&buf, &c->run, c->opts.max_output);
  JBuf *saved = c->out;
  c->out = &buf;
  jn_exec_body (c, body, s);
  c->out = saved;
  return jbuf_to_str (&buf);
}

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
      if (!jn_as_index (a->v[i], &v[i]))
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
    JVal j = jn_func_value (c, FN_JOINER_INST);
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
    jn_exec_for (c, l->node, a->v[0], l->scope, l->depth0 + 1);
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
    Scope *ms = jn_scope_new (c, f->closure);
    JVal out;
    if (f->kind == FN_MACRO) {
      bind_params (c, m->u.macro.name, m->u.macro.nparams, m->u.macro.params,
                   m->u.macro.defaults, m->u.macro.uses_varargs, m->u.macro.uses_kwargs,
                   m->u.macro.uses_caller, a, ms, line);
      out = jn_render_capture (c, &m->u.macro.body, ms);
    } else {
      bind_params (c, "caller", m->u.callblock.nparams, m->u.callblock.params,
                   m->u.callblock.defaults, m->u.callblock.uses_varargs,
                   m->u.callblock.uses_kwargs, false, a, ms, line);
      out = jn_render_capture (c, &m->u.callblock.body, ms);
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
