/* sutra-chat-spans.c: which bytes of a rendered conversation are the assistant's (the trainer
 * computes the loss on those only), and which built-in family a template behaves like.
 *
 * Span of assistant message i, by prefix rendering (docs/chat-templates.md):
 *   P = render(msgs[:i], add_generation_prompt=true)    the prompt the model would be given
 *   T = render(msgs[:i+1], add_generation_prompt=false) the conversation ending with message i
 *   F = render(msgs, add_generation_prompt=false)       the training text
 * When P and T are prefixes of F, the span is F[len(P), len(T)): exactly what the model has to
 * generate after the generation prompt (content and end-of-turn text such as "<|im_end|>").
 * When a template renders a turn differently once later turns exist (Qwen3 drops the think
 * block of earlier turns, Phi-3 closes the last turn with eos_token), the content is located in
 * F after the common part of P and F, and extended by the end-of-turn text T and F share after
 * it. Either way, whitespace after the end-of-turn text ("\n" between turns) is left out, but
 * never the content's own. */
#include "sutra-chat-private.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static size_t
common_prefix (const char *a, size_t na, const char *b, size_t nb)
{
  size_t n = na < nb ? na : nb, i = 0;
  while (i < n && a[i] == b[i])
    i++;
  return i;
}

static bool
is_prefix (const char *p, size_t np, const char *s, size_t ns)
{
  return np <= ns && memcmp (p, s, np) == 0;
}

static bool
ascii_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Finds needle in hay[from, n); returns its offset or -1. An empty needle is found at from. */
static long
find_from (const char *hay, size_t n, size_t from, const char *needle, size_t nl)
{
  if (from > n)
    return -1;
  if (nl == 0)
    return (long) from;
  const char *p = memmem (hay + from, n - from, needle, nl);
  return p ? (long) (p - hay) : -1;
}

static long
rfind_in (const char *hay, size_t a, size_t b, const char *needle, size_t nl)
{
  if (nl == 0 || b < a || b - a < nl)
    return -1;
  for (size_t i = b - nl + 1; i-- > a;)
    if (memcmp (hay + i, needle, nl) == 0)
      return (long) i;
  return -1;
}

/* The forms an assistant content can take in the rendered text: as is, stripped (|trim,
 * .strip()), or its answer after a reasoning block (`content.split('</think>')[-1]`). */
typedef struct {
  const char *s;
  size_t n;
} Form;

static int
content_forms (const char *content, Form forms[3])
{
  size_t n = strlen (content);
  int k = 0;
  forms[k++] = (Form) { content, n };
  size_t a = 0, b = n;
  while (a < b && ascii_space (content[a]))
    a++;
  while (b > a && ascii_space (content[b - 1]))
    b--;
  if (a > 0 || b < n)
    forms[k++] = (Form) { content + a, b - a };
  const char *think = NULL;
  for (const char *p = strstr (content, "</think>"); p; p = strstr (p + 1, "</think>"))
    think = p;
  if (think) {
    const char *s = think + 8;
    size_t m = strlen (s), x = 0;
    while (x < m && ascii_space (s[x]))
      x++;
    while (m > x && ascii_space (s[m - 1]))
      m--;
    forms[k++] = (Form) { s + x, m - x };
  }
  return k;
}

/* Locates the first form of the content found at or after `from`. */
static bool
locate (const char *full, size_t fl, size_t from, const char *content, size_t *cs, size_t *ce,
        Form *which)
{
  Form forms[3];
  int k = content_forms (content, forms);
  for (int i = 0; i < k; i++) {
    if (forms[i].n == 0 && i > 0)
      continue;
    long at = find_from (full, fl, from, forms[i].s, forms[i].n);
    if (at >= 0) {
      *cs = (size_t) at;
      *ce = (size_t) at + forms[i].n;
      *which = forms[i];
      return true;
    }
  }
  return false;
}

/* Shortens an end-of-turn candidate that stops inside a "<...>" marker (the common part of
 * "<|end|>\n<|endoftext|>" and "<|end|>\n<|user|>" is "<|end|>\n<|"). */
static size_t
cut_partial_marker (const char *s, size_t n)
{
  for (size_t i = n; i-- > 0;) {
    if (s[i] == '>')
      return n;
    if (s[i] == '<')
      return i;
  }
  return n;
}

/* When the last turn is closed differently from the others (gpt-oss ends the final answer with
 * <|return|>, earlier ones with <|end|>), T says nothing about the end-of-turn text in F. Then a
 * "<...>" marker right after the content counts when the template closes an earlier message's
 * content with the same marker. Returns its length or 0. */
static size_t
same_closing_marker (const char *full, size_t fl, size_t start, size_t ce,
                     const SutraChatMessage *msgs, size_t i)
{
  if (ce >= fl || full[ce] != '<')
    return 0;
  size_t m = 1;
  while (ce + m < fl && m < 64 && full[ce + m] != '>' && full[ce + m] != '<')
    m++;
  if (ce + m >= fl || full[ce + m] != '>')
    return 0;
  m++;
  for (size_t j = 0; j < i; j++) {
    const char *c = msgs[j].content;
    size_t cl = c ? strlen (c) : 0;
    if (cl == 0)
      continue;
    for (long q = rfind_in (full, 0, start, full + ce, m); q >= (long) cl;
         q = rfind_in (full, 0, (size_t) q + m - 1, full + ce, m))
      if (memcmp (full + q - (long) cl, c, cl) == 0)
        return m;
  }
  return 0;
}

static SutraStatus
render_first (const SutraChatTemplate *t, const SutraChatMessage *msgs, size_t n, bool agp,
              char **out, size_t *len, SutraError *err)
{
  struct json_object *a = sutra_chat_messages_json (msgs, n);
  SutraStatus st = sutra_chat_render_array (t, a, agp, out, len, err);
  json_object_put (a);
  return st;
}

SutraStatus
sutra_chat_assistant_spans (const SutraChatTemplate *t, const SutraChatMessage *msgs, size_t n,
                            char **text, SutraChatSpan **spans, size_t *n_spans, SutraError *err)
{
  SUTRA_ASSERT (t && text && spans && n_spans && (msgs || n == 0));
  SutraStatus st = sutra_chat_check_messages (msgs, n, err);
  if (st != SUTRA_OK)
    return st;
  char *full;
  size_t fl;
  st = render_first (t, msgs, n, false, &full, &fl, err);
  if (st != SUTRA_OK)
    return st;
  SutraChatSpan *out = n ? sutra_xcalloc (n, sizeof *out) : NULL;
  size_t k = 0, lo = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp (msgs[i].role, "assistant") != 0)
      continue;
    const char *content = msgs[i].content ? msgs[i].content : "";
    char *P = NULL, *T = NULL;
    size_t pl = 0, tl = 0;
    bool okp = render_first (t, msgs, i, true, &P, &pl, NULL) == SUTRA_OK;
    bool okt = render_first (t, msgs, i + 1, false, &T, &tl, NULL) == SUTRA_OK;
    bool p_prefix = okp && pl >= lo && is_prefix (P, pl, full, fl);
    bool t_prefix = okt && is_prefix (T, tl, full, fl);
    size_t start, end;
    Form form = { content, strlen (content) };
    if (p_prefix && t_prefix && pl <= tl) {
      start = pl;
      end = tl;
    } else {
      size_t from = lo;
      if (p_prefix)
        from = pl;
      else if (okp) {
        size_t c = cut_partial_marker (full, common_prefix (P, pl, full, fl));
        if (c > from)
          from = c;
      }
      size_t cs, ce;
      if (!locate (full, fl, from, content, &cs, &ce, &form)) {
        free (P);
        free (T);
        free (full);
        free (out);
        return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "chat template: cannot find assistant "
                                "message %zu in the rendered text (the template rewrites it), so "
                                "its loss span is unknown", i);
      }
      start = p_prefix ? pl : cs;
      end = ce;
      /* end-of-turn text: what follows the content both when the turn ends the conversation
       * (T) and in the full text */
      long tpos = okt ? rfind_in (T, 0, tl, form.s, form.n) : -1;
      if (okt && form.n == 0)                /* empty content: T shares F's text up to it */
        tpos = cs <= tl && common_prefix (T, tl, full, fl) >= cs ? (long) cs : -1;
      if (tpos >= 0) {
        size_t after_t = (size_t) tpos + form.n;
        size_t c = common_prefix (T + after_t, tl - after_t, full + end, fl - end);
        end += cut_partial_marker (full + end, c);
      }
      if (end == ce)                         /* still no end-of-turn text: see below */
        end += same_closing_marker (full, fl, start, ce, msgs, i);
    }
    /* drop whitespace after the end-of-turn text, never the content's own */
    long cpos = rfind_in (full, start, end, form.s, form.n);
    size_t content_end = cpos >= 0 ? (size_t) cpos + form.n : start;
    while (end > content_end && end > start && ascii_space (full[end - 1]))
      end--;
    out[k].start = start;
    out[k].end = end;
    out[k].message = i;
    k++;
    lo = end;
    free (P);
    free (T);
  }
  *text = full;
  if (k == 0) {
    free (out);
    out = NULL;
  }
  *spans = out;
  *n_spans = k;
  return SUTRA_OK;
}

/* ---- family matching --------------------------------------------------------------------- */

static SutraJinjaTemplate **family_tpls;
static pthread_once_t family_once = PTHREAD_ONCE_INIT;

static void
parse_families (void)
{
  size_t n = sutra_chat_family_count ();
  family_tpls = sutra_xcalloc (n, sizeof *family_tpls);
  for (size_t i = 0; i < n; i++) {
    const char *src = sutra_chat_family_at (i)->source;
    SutraStatus st = sutra_jinja_parse (src, strlen (src), &family_tpls[i], NULL);
    SUTRA_ASSERT (st == SUTRA_OK);            /* our own texts: a failure is a bug */
  }
}

static bool
same_render (const SutraChatTemplate *a, const SutraChatTemplate *b, const SutraChatMessage *m,
             size_t n, bool agp)
{
  char *x = NULL, *y = NULL;
  SutraError ea = { 0 }, eb = { 0 };
  SutraStatus sa = sutra_chat_render (a, m, n, agp, &x, &ea);
  SutraStatus sb = sutra_chat_render (b, m, n, agp, &y, &eb);
  bool same;
  if (sa == SUTRA_OK && sb == SUTRA_OK) {
    same = strcmp (x, y) == 0;
  } else if (sa == SUTRA_ERR_INVALID && sb == SUTRA_ERR_INVALID) {   /* both raise_exception */
    const char *ma = strstr (ea.message, ": "), *mb = strstr (eb.message, ": ");
    same = ma && mb && strcmp (ma, mb) == 0;
  } else {
    same = false;
  }
  free (x);
  free (y);
  return same;
}

const char *
sutra_chat_template_family (const SutraChatTemplate *t, bool *exact)
{
  bool dummy;
  if (!exact)
    exact = &dummy;
  if (t->builtin) {
    *exact = true;
    return t->builtin;
  }
  static const SutraChatMessage P1[] = { { "user", "Hello" } };
  static const SutraChatMessage P2[] = { { "system", "Be brief." }, { "user", "Hi" },
                                         { "assistant", "Hello there!" }, { "user", "Bye" } };
  static const SutraChatMessage P3[] = { { "user", "Hi" }, { "assistant", "Hello there!" } };
  static const SutraChatMessage P4[] = { { "system", "" }, { "user", "Hi" } };  /* phi-3.5 */
  pthread_once (&family_once, parse_families);
  for (size_t i = 0; i < sutra_chat_family_count (); i++) {
    SutraChatTemplate probe = *t;            /* same tokens and clock, the family's text */
    probe.tpl = family_tpls[i];
    if (same_render (t, &probe, P1, 1, true) && same_render (t, &probe, P2, 4, true) &&
        same_render (t, &probe, P3, 2, false) && same_render (t, &probe, P1, 1, false) &&
        same_render (t, &probe, P4, 2, true)) {
      *exact = true;
      return sutra_chat_family_at (i)->name;
    }
  }
  *exact = false;
  return sutra_chat_family_detect (t->source);
}
