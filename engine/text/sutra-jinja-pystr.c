/* sutra-jinja-pystr.c: UTF-8 helpers and the Python 3 str methods chat templates call
 * (strip, split, splitlines, replace, find, upper/lower/title/capitalize with the full
 * SpecialCasing mappings and the Final_Sigma rule, isalpha ...), on code points as CPython's
 * unicodeobject.c defines them. Character properties come from utf8proc. */
#include "sutra-jinja-private.h"
#include "sutra-tokenizer-private.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

#include "sutra-jinja-casetab.inc"

/* ---- UTF-8 ------------------------------------------------------------------------------ */

uint32_t
jn_utf8_next (const char *s, size_t n, size_t *i)
{
  const unsigned char *p = (const unsigned char *) s + *i;
  size_t left = n - *i;
  unsigned c = p[0];
  if (c < 0x80) {
    (*i)++;
    return c;
  }
  int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (len == 0 || (size_t) len > left) {
    (*i)++;
    return 0xFFFD;
  }
  uint32_t cp = c & (0x3F >> (len - 1));
  for (int k = 1; k < len; k++) {
    if ((p[k] & 0xC0) != 0x80) {
      (*i)++;
      return 0xFFFD;
    }
    cp = (cp << 6) | (p[k] & 0x3F);
  }
  *i += (size_t) len;
  return cp;
}

size_t
jn_utf8_put (char *out, uint32_t cp)
{
  return sutra_utf8_encode (cp, out);   /* the tokenizers' encoder (sutra-tok-util.c) */
}

/* Length of the valid UTF-8 sequence at s[i], 0 if invalid (RFC 3629: no overlongs,
 * no surrogates, at most U+10FFFF). */
static size_t
valid_seq (const unsigned char *s, size_t n, size_t i)
{
  unsigned c = s[i];
  if (c < 0x80)
    return 1;
  size_t len;
  uint32_t min;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > n)
    return 0;
  uint32_t cp = c & (0x3F >> (len - 1));
  for (size_t k = 1; k < len; k++) {
    if ((s[i + k] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i + k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

bool
jn_utf8_valid (const char *s, size_t n, size_t *bad_at)
{
  const unsigned char *u = (const unsigned char *) s;
  for (size_t i = 0; i < n;) {
    size_t k = valid_seq (u, n, i);
    if (!k) {
      if (bad_at)
        *bad_at = i;
      return false;
    }
    i += k;
  }
  return true;
}

char *
jn_utf8_sanitize (JnRun *r, const char *s, size_t n, size_t *out_n)
{
  if (jn_utf8_valid (s, n, NULL)) {
    *out_n = n;
    return (char *) s;
  }
  const unsigned char *u = (const unsigned char *) s;
  char *o = jn_alloc (r, n * 3 + 1);
  size_t m = 0;
  for (size_t i = 0; i < n;) {
    size_t k = valid_seq (u, n, i);
    if (k) {
      memcpy (o + m, s + i, k);
      m += k;
      i += k;
    } else {
      m += jn_utf8_put (o + m, 0xFFFD);
      i++;
    }
  }
  o[m] = '\0';
  *out_n = m;
  return o;
}

bool
jn_py_isspace (uint32_t cp)
{
  if (cp < 0x80)
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  switch (cp) {
  case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
  case 0x3000:
    return true;
  default:
    return cp >= 0x2000 && cp <= 0x200A;
  }
}

size_t
jn_cp_offset (JStr *s, int64_t idx)
{
  if (jstr_ncp (s) == (int64_t) s->len)
    return (size_t) idx;                   /* ASCII */
  size_t i = 0;
  for (int64_t k = 0; k < idx && i < s->len; k++)
    jn_utf8_next (s->data, s->len, &i);
  return i;
}

/* Decodes s into an arena array of code points. */
static uint32_t *
decode (JnRun *r, const JStr *s, size_t *n)
{
  uint32_t *cps = jn_alloc (r, (s->len + 1) * sizeof *cps);
  size_t k = 0;
  for (size_t i = 0; i < s->len;)
    cps[k++] = jn_utf8_next (s->data, s->len, &i);
  *n = k;
  return cps;
}

/* ---- case mapping ------------------------------------------------------------------------ */

static int
special_index (uint32_t cp)
{
  size_t lo = 0, hi = sizeof SPECIAL_CASE / sizeof SPECIAL_CASE[0];
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (SPECIAL_CASE[mid].cp == cp)
      return (int) mid;
    if (SPECIAL_CASE[mid].cp < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

static bool
is_cased (uint32_t cp)
{
  if (cp < 0x80)
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  utf8proc_category_t c = utf8proc_category ((utf8proc_int32_t) cp);
  if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT)
    return true;
  return utf8proc_tolower ((utf8proc_int32_t) cp) != (utf8proc_int32_t) cp ||
         utf8proc_toupper ((utf8proc_int32_t) cp) != (utf8proc_int32_t) cp;
}

static bool
is_case_ignorable (uint32_t cp)
{
  switch (cp) {
  case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x5F4: case 0x2018: case 0x2019:
  case 0x2024: case 0x2027: case 0xFE13: case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E:
  case 0xFF1A:
    return true;
  default:
    break;
  }
  if (cp < 0x80)
    return cp == '^' || cp == '`';
  utf8proc_category_t c = utf8proc_category ((utf8proc_int32_t) cp);
  return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_ME || c == UTF8PROC_CATEGORY_CF ||
         c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_SK;
}

static bool
is_lower (uint32_t cp)
{
  return is_cased (cp) && utf8proc_category ((utf8proc_int32_t) cp) != UTF8PROC_CATEGORY_LU &&
         utf8proc_category ((utf8proc_int32_t) cp) != UTF8PROC_CATEGORY_LT &&
         utf8proc_toupper ((utf8proc_int32_t) cp) != (utf8proc_int32_t) cp;
}

static bool
is_upper (uint32_t cp)
{
  return is_cased (cp) && utf8proc_category ((utf8proc_int32_t) cp) != UTF8PROC_CATEGORY_LL &&
         utf8proc_category ((utf8proc_int32_t) cp) != UTF8PROC_CATEGORY_LT &&
         utf8proc_tolower ((utf8proc_int32_t) cp) != (utf8proc_int32_t) cp;
}

enum { TO_UPPER, TO_LOWER, TO_TITLE };

/* Final_Sigma: capital sigma at cps[i] becomes U+03C2 when preceded by a cased letter and not
 * followed by one (case-ignorable characters skipped), as CPython's handle_capital_sigma. */
static uint32_t
lower_sigma (const uint32_t *cps, size_t n, size_t i)
{
  size_t j = i;
  uint32_t c = 0;
  while (j > 0) {
    c = cps[--j];
    if (!is_case_ignorable (c))
      break;
  }
  bool final = i > 0 && !is_case_ignorable (c) && is_cased (c);
  if (final) {
    size_t k = i + 1;
    while (k < n && is_case_ignorable (cps[k]))
      k++;
    final = k == n || !is_cased (cps[k]);
  }
  return final ? 0x3C2 : 0x3C3;
}

static void
map_cp (JBuf *b, const uint32_t *cps, size_t n, size_t i, int how)
{
  uint32_t cp = cps[i];
  if (how == TO_LOWER && cp == 0x3A3) {
    jbuf_add_cp (b, lower_sigma (cps, n, i));
    return;
  }
  int k = cp >= 0xDF ? special_index (cp) : -1;
  if (k >= 0) {
    const char *m = how == TO_UPPER ? SPECIAL_CASE[k].upper : how == TO_LOWER ? SPECIAL_CASE[k].lower
                                                                            : SPECIAL_CASE[k].title;
    jbuf_add (b, m, strlen (m));
    return;
  }
  utf8proc_int32_t c = (utf8proc_int32_t) cp;
  uint32_t m = (uint32_t) (how == TO_UPPER ? utf8proc_toupper (c) : how == TO_LOWER
                                                                       ? utf8proc_tolower (c)
                                                                       : utf8proc_totitle (c));
  jbuf_add_cp (b, m);
}

static JVal
map_all (JnRun *r, JStr *s, int how)
{
  size_t n;
  uint32_t *cps = decode (r, s, &n);
  JBuf b;
  jbuf_init (&b, r, (size_t) -1);
  for (size_t i = 0; i < n; i++)
    map_cp (&b, cps, n, i, how);
  return jbuf_to_str (&b);
}

JVal
jn_str_upper (JnRun *r, JStr *s)
{
  return map_all (r, s, TO_UPPER);
}

JVal
jn_str_lower (JnRun *r, JStr *s)
{
  return map_all (r, s, TO_LOWER);
}

JVal
jn_str_title (JnRun *r, JStr *s)
{
  size_t n;
  uint32_t *cps = decode (r, s, &n);
  JBuf b;
  jbuf_init (&b, r, (size_t) -1);
  bool prev_cased = false;
  for (size_t i = 0; i < n; i++) {
    map_cp (&b, cps, n, i, prev_cased ? TO_LOWER : TO_TITLE);
    prev_cased = is_cased (cps[i]);
  }
  return jbuf_to_str (&b);
}

JVal
jn_str_capitalize (JnRun *r, JStr *s)
{
  size_t n;
  uint32_t *cps = decode (r, s, &n);
  JBuf b;
  jbuf_init (&b, r, (size_t) -1);
  for (size_t i = 0; i < n; i++)
    map_cp (&b, cps, n, i, i == 0 ? TO_TITLE : TO_LOWER);
  return jbuf_to_str (&b);
}

JVal
jn_str_swapcase (JnRun *r, JStr *s)
{
  size_t n;
  uint32_t *cps = decode (r, s, &n);
  JBuf b;
  jbuf_init (&b, r, (size_t) -1);
  for (size_t i = 0; i < n; i++) {
    if (is_upper (cps[i]))
      map_cp (&b, cps, n, i, TO_LOWER);
    else if (is_lower (cps[i]))
      map_cp (&b, cps, n, i, TO_UPPER);
    else
      jbuf_add_cp (&b, cps[i]);
  }
  return jbuf_to_str (&b);
}

/* ---- strip / split / replace / find -------------------------------------------------- */

static bool
in_set (uint32_t cp, const uint32_t *set, size_t nset)
{
  if (!set)
    return jn_py_isspace (cp);
  for (size_t i = 0; i < nset; i++)
    if (set[i] == cp)
      return true;
  return false;
}

JVal
jn_str_strip (JnRun *r, JStr *s, JVal chars, bool left, bool right, int line)
{
  uint32_t *set = NULL;
  size_t nset = 0;
  if (chars.t == JV_STR) {
    set = decode (r, chars.v.s, &nset);
  } else if (chars.t != JV_NONE && chars.t != JV_UNDEF) {
    jn_fail (r, SUTRA_ERR_FORMAT, line, "strip arg must be None or str");
  }
  size_t a = 0, b = s->len;
  if (left)
    while (a < b) {
      size_t j = a;
      uint32_t cp = jn_utf8_next (s->data, b, &j);
      if (!in_set (cp, set, nset))
        break;
      a = j;
    }
  if (right)
    while (b > a) {
      size_t j = b - 1;
      while (j > a && ((unsigned char) s->data[j] & 0xC0) == 0x80)
        j--;
      size_t k = j;
      uint32_t cp = jn_utf8_next (s->data, b, &k);
      if (!in_set (cp, set, nset))
        break;
      b = j;
    }
  if (a == 0 && b == s->len) {
    JVal v = { .t = JV_STR, .v.s = s };
    return v;
  }
  return jv_str (r, s->data + a, b - a);
}

/* Appends to a growable list value. */
static void
list_push (JnRun *r, JVal *l, size_t *cap, JVal item)
{
  JList *x = l->v.l;
  if (x->n == *cap) {
    size_t nc = *cap ? *cap * 2 : 8;
    JVal *v = jn_alloc (r, nc * sizeof *v);
    if (x->n)
      memcpy (v, x->items, x->n * sizeof *v);
    x->items = v;
    *cap = nc;
  }
  x->items[x->n++] = item;
}

static const char *
memfind (const char *h, size_t hn, const char *nd, size_t nn)
{
  if (nn == 0)
    return h;
  if (nn > hn)
    return NULL;
  return memmem (h, hn, nd, nn);
}

static const char *
memrfind (const char *h, size_t hn, const char *nd, size_t nn)
{
  if (nn > hn)
    return NULL;
  for (size_t i = hn - nn + 1; i-- > 0;)
    if (memcmp (h + i, nd, nn) == 0)
      return h + i;
  return NULL;
}

/* Splits on runs of whitespace (sep=None). */
static JVal
split_ws (JnRun *r, JStr *s, int64_t maxsplit, bool from_right)
{
  JVal out = jv_list (r, 0, false);
  size_t cap = 0;
  /* collect [a,b) words */
  size_t nw = 0, wcap = 16;
  size_t *wa = jn_alloc (r, wcap * sizeof *wa), *wb = jn_alloc (r, wcap * sizeof *wb);
  size_t i = 0;
  while (i < s->len) {
    size_t j = i;
    uint32_t cp = jn_utf8_next (s->data, s->len, &j);
    if (jn_py_isspace (cp)) {
      i = j;
      continue;
    }
    size_t a = i;
    while (i < s->len) {
      size_t k = i;
      uint32_t c2 = jn_utf8_next (s->data, s->len, &k);
      if (jn_py_isspace (c2))
        break;
      i = k;
    }
    if (nw == wcap) {
      size_t nc = wcap * 2;
      size_t *na = jn_alloc (r, nc * sizeof *na), *nb = jn_alloc (r, nc * sizeof *nb);
      memcpy (na, wa, nw * sizeof *na);
      memcpy (nb, wb, nw * sizeof *nb);
      wa = na;
      wb = nb;
      wcap = nc;
    }
    wa[nw] = a;
    wb[nw] = i;
    nw++;
  }
  if (maxsplit < 0 || (size_t) maxsplit >= nw || nw == 0) {
    for (size_t k = 0; k < nw; k++)
      list_push (r, &out, &cap, jv_str (r, s->data + wa[k], wb[k] - wa[k]));
    return out;
  }
  size_t m = (size_t) maxsplit;
  if (!from_right) {
    for (size_t k = 0; k < m; k++)
      list_push (r, &out, &cap, jv_str (r, s->data + wa[k], wb[k] - wa[k]));
    /* the rest, from the next word to the end (trailing whitespace kept) */
    list_push (r, &out, &cap, jv_str (r, s->data + wa[m], s->len - wa[m]));
  } else {
    size_t first = nw - m;               /* words [first, nw) split off; rest before */
    list_push (r, &out, &cap, jv_str (r, s->data, wb[first - 1]));
    for (size_t k = first; k < nw; k++)
      list_push (r, &out, &cap, jv_str (r, s->data + wa[k], wb[k] - wa[k]));
  }
  return out;
}

JVal
jn_str_split (JnRun *r, JStr *s, JVal sep, int64_t maxsplit, bool from_right, int line)
{
  if (sep.t == JV_NONE || sep.t == JV_UNDEF)
    return split_ws (r, s, maxsplit, from_right);
  if (sep.t != JV_STR)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "must be str or None, not %s", jv_type_name (sep));
  JStr *p = sep.v.s;
  if (p->len == 0)
    jn_fail (r, SUTRA_ERR_FORMAT, line, "empty separator");
  JVal out = jv_list (r, 0, false);
  size_t cap = 0;
  if (!from_right) {
    size_t a = 0;
    int64_t done = 0;
    for (;;) {
      const char *hit = (maxsplit < 0 || done < maxsplit)
                          ? memfind (s->data + a, s->len - a, p->data, p->len) : NULL;
      if (!hit) {
        list_push (r, &out, &cap, jv_str (r, s->data + a, s->len - a));
        break;
      }
      size_t h = (size_t) (hit - s->data);
      list_push (r, &out, &cap, jv_str (r, s->data + a, h - a));
      a = h + p->len;
      done++;
    }
    return out;
  }
  /* rsplit: collect from the right, then reverse */
  size_t b = s->len;
  int64_t done = 0;
  for (;;) {
    const char *hit = (maxsplit < 0 || done < maxsplit) ? memrfind (s->data, b, p->data, p->len)
                                                        : NULL;
    if (!hit) {
      list_push (r, &out, &cap, jv_str (r, s->data, b));
      break;
    }
    size_t h = (size_t) (hit - s->data);
    list_push (r, &out, &cap, jv_str (r, s->data + h + p->len, b - h - p->len));
    b = h;
    done++;
  }
  JList *l = out.v.l;
  for (size_t i = 0; i < l->n / 2; i++) {
    JVal t = l->items[i];
    l->items[i] = l->items[l->n - 1 - i];
    l->items[l->n - 1 - i] = t;
  }
  return out;
}

static bool
is_linebreak (uint32_t cp)
{
  return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C || cp == 0x1D ||
         cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

JVal
jn_str_splitlines (JnRun *r, JStr *s, bool keepends)
{
  JVal out = jv_list (r, 0, false);
  size_t cap = 0;
  size_t a = 0, i = 0;
  while (i < s->len) {
    size_t j = i;
    uint32_t cp = jn_utf8_next (s->data, s->len, &j);
    if (!is_linebreak (cp)) {
      i = j;
      continue;
    }
    size_t end = j;
    if (cp == '\r' && end < s->len && s->data[end] == '\n')
      end++;
    list_push (r, &out, &cap, jv_str (r, s->data + a, (keepends ? end : i) - a));
    a = i = end;
  }
  if (a < s->len)
    list_push (r, &out, &cap, jv_str (r, s->data + a, s->len - a));
  return out;
}

JVal
jn_str_replace (JnRun *r, JStr *s, JStr *old, JStr *rep, int64_t count)
{
  JBuf b;
  jbuf_init (&b, r, (size_t) -1);
  if (old->len == 0) {                     /* insert between code points */
    int64_t done = 0;
    size_t i = 0;
    for (;;) {
      if (count < 0 || done < count) {
        jbuf_add (&b, rep->data, rep->len);
        done++;
      }
      if (i >= s->len)
        break;
      size_t j = i;
      jn_utf8_next (s->data, s->len, &j);
      jbuf_add (&b, s->data + i, j - i);
      i = j;
    }
    return jbuf_to_str (&b);
  }
  size_t a = 0;
  int64_t done = 0;
  for (;;) {
    const char *hit = (count < 0 || done < count)
                        ? memfind (s->data + a, s->len - a, old->data, old->len) : NULL;
    if (!hit)
      break;
    size_t h = (size_t) (hit - s->data);
    jbuf_add (&b, s->data + a, h - a);
    jbuf_add (&b, rep->data, rep->len);
    a = h + old->len;
    done++;
  }
  jbuf_add (&b, s->data + a, s->len - a);
  return jbuf_to_str (&b);
}

static int64_t
cp_index_of (const JStr *s, size_t byte)
{
  int64_t n = 0;
  for (size_t i = 0; i < byte; i++)
    n += ((unsigned char) s->data[i] & 0xC0) != 0x80;
  return n;
}

int64_t
jn_str_find (JStr *s, JStr *sub, bool from_right)
{
  const char *hit = from_right ? memrfind (s->data, s->len, sub->data, sub->len)
                               : memfind (s->data, s->len, sub->data, sub->len);
  if (!hit)
    return -1;
  return cp_index_of (s, (size_t) (hit - s->data));
}

int64_t
jn_str_count (JStr *s, JStr *sub)
{
  if (sub->len == 0)
    return jstr_ncp (s) + 1;
  int64_t n = 0;
  size_t a = 0;
  const char *hit;
  while ((hit = memfind (s->data + a, s->len - a, sub->data, sub->len))) {
    n++;
    a = (size_t) (hit - s->data) + sub->len;
  }
  return n;
}

JVal
jn_str_slice (JnRun *r, JStr *s, int64_t start, int64_t step, int64_t count)
{
  if (count <= 0)
    return jv_str (r, "", 0);
  if (step == 1) {
    size_t a = jn_cp_offset (s, start);
    size_t b = a;
    for (int64_t k = 0; k < count && b < s->len; k++)
      jn_utf8_next (s->data, s->len, &b);
    return jv_str (r, s->data + a, b - a);
  }
  size_t n;
  uint32_t *cps = decode (r, s, &n);
  JBuf b;
  jbuf_init (&b, r, (size_t) -1);
  for (int64_t k = 0, i = start; k < count; k++, i += step)
    jbuf_add_cp (&b, cps[i]);
  return jbuf_to_str (&b);
}

JVal
jn_str_char_at (JnRun *r, JStr *s, int64_t i)
{
  size_t a = jn_cp_offset (s, i);
  size_t b = a;
  jn_utf8_next (s->data, s->len, &b);
  return jv_str (r, s->data + a, b - a);
}

static bool
is_digit_cp (uint32_t cp)
{
  utf8proc_category_t c = utf8proc_category ((utf8proc_int32_t) cp);
  if (c == UTF8PROC_CATEGORY_ND)
    return true;
  return cp == 0xB2 || cp == 0xB3 || cp == 0xB9 || (cp >= 0x2070 && cp <= 0x2079) ||
         (cp >= 0x2080 && cp <= 0x2089) || (cp >= 0x2460 && cp <= 0x2468) ||
         (cp >= 0x2474 && cp <= 0x247C) || (cp >= 0x2488 && cp <= 0x2490) ||
         (cp >= 0x24F5 && cp <= 0x24FD) || cp == 0x24EA || cp == 0x24FF ||
         (cp >= 0x2776 && cp <= 0x277E) || (cp >= 0x2780 && cp <= 0x2788) ||
         (cp >= 0x278A && cp <= 0x2792);
}

bool
jn_str_is (JStr *s, const char *what)
{
  size_t i = 0;
  bool any_cased = false, prev_cased = false;
  if (strcmp (what, "ascii") == 0) {
    for (size_t k = 0; k < s->len; k++)
      if ((unsigned char) s->data[k] >= 0x80)
        return false;
    return true;
  }
  if (s->len == 0)
    return false;
  bool title_ok = true;
  while (i < s->len) {
    uint32_t cp = jn_utf8_next (s->data, s->len, &i);
    utf8proc_category_t c = utf8proc_category ((utf8proc_int32_t) cp);
    bool alpha = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
    bool decimal = c == UTF8PROC_CATEGORY_ND;
    bool numeric = decimal || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
    if (strcmp (what, "alpha") == 0 && !alpha)
      return false;
    if (strcmp (what, "decimal") == 0 && !decimal)
      return false;
    if (strcmp (what, "digit") == 0 && !is_digit_cp (cp))
      return false;
    if (strcmp (what, "numeric") == 0 && !numeric)
      return false;
    if (strcmp (what, "alnum") == 0 && !(alpha || numeric || is_digit_cp (cp)))
      return false;
    if (strcmp (what, "space") == 0 && !jn_py_isspace (cp))
      return false;
    if (strcmp (what, "lower") == 0 && is_upper (cp))
      return false;
    if (strcmp (what, "upper") == 0 && is_lower (cp))
      return false;
    if (is_cased (cp))
      any_cased = true;
    if (strcmp (what, "title") == 0) {
      bool up = is_upper (cp) || c == UTF8PROC_CATEGORY_LT;
      if (up && prev_cased)
        title_ok = false;
      if (is_lower (cp) && !prev_cased)
        title_ok = false;
      prev_cased = is_cased (cp);
    }
  }
  if (strcmp (what, "lower") == 0 || strcmp (what, "upper") == 0)
    return any_cased;
  if (strcmp (what, "title") == 0)
    return title_ok && any_cased;
  return true;
}

/* ---- Python float() / int() of a str -------------------------------------------------- */

/* Python float(str): surrounding whitespace, underscores between digits, inf/nan words. */
bool
jn_parse_py_float (JStr *s, double *out)
{
  char buf[128];
  size_t a = 0, b = s->len;
  while (a < b && jn_py_isspace ((unsigned char) s->data[a]))
    a++;
  while (b > a && jn_py_isspace ((unsigned char) s->data[b - 1]))
    b--;
  if (b - a == 0 || b - a >= sizeof buf)
    return false;
  size_t k = 0;
  for (size_t i = a; i < b; i++) {
    char ch = s->data[i];
    if (ch == '_') {
      bool ok = i > a && i + 1 < b && s->data[i - 1] >= '0' && s->data[i - 1] <= '9' &&
                s->data[i + 1] >= '0' && s->data[i + 1] <= '9';
      if (!ok)
        return false;
      continue;
    }
    if ((unsigned char) ch >= 0x80 || ch == 'x' || ch == 'X' || ch == 'p' || ch == 'P')
      return false;                        /* no hex floats in Python's float() */
    buf[k++] = ch;
  }
  buf[k] = '\0';
  const char *w = buf + (buf[0] == '+' || buf[0] == '-');
  if (!strcasecmp (w, "inf") || !strcasecmp (w, "infinity") || !strcasecmp (w, "nan")) {
    double v = (w[0] == 'n' || w[0] == 'N') ? NAN : INFINITY;
    *out = buf[0] == '-' ? -v : v;
    return true;
  }
  for (const char *p = w; *p; p++)
    if (!strchr ("0123456789.eE+-", *p))
      return false;
  char *end;
  errno = 0;
  double v = strtod (buf, &end);
  if (*end || end == buf)
    return false;
  *out = v;
  return true;
}

/* Python int(str, base) for base 10 (and 2/8/16 with their prefixes). */
bool
jn_parse_py_int (JStr *s, int base, int64_t *out)
{
  size_t a = 0, b = s->len;
  while (a < b && jn_py_isspace ((unsigned char) s->data[a]))
    a++;
  while (b > a && jn_py_isspace ((unsigned char) s->data[b - 1]))
    b--;
  if (a == b)
    return false;
  bool neg = false;
  if (s->data[a] == '+' || s->data[a] == '-') {
    neg = s->data[a] == '-';
    a++;
  }
  if (base == 16 || base == 8 || base == 2 || base == 0) {
    if (b - a > 2 && s->data[a] == '0') {
      char k = (char) (s->data[a + 1] | 0x20);
      int pb = k == 'x' ? 16 : k == 'o' ? 8 : k == 'b' ? 2 : 0;
      if (pb && (base == 0 || base == pb)) {
        base = pb;
        a += 2;
        if (a < b && s->data[a] == '_')
          a++;
      }
    }
    if (base == 0)
      base = 10;
  }
  if (base < 2 || base > 36 || a == b)
    return false;
  uint64_t v = 0;
  bool prev_digit = false;
  for (size_t i = a; i < b; i++) {
    char ch = s->data[i];
    if (ch == '_' && prev_digit && i + 1 < b) {
      prev_digit = false;
      continue;
    }
    int d = ch >= '0' && ch <= '9' ? ch - '0' : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z'
                                                  ? (ch | 0x20) - 'a' + 10 : 99;
    if (d >= base)
      return false;
    if (v > (UINT64_C (0x7fffffffffffffff) - (uint64_t) d) / (uint64_t) base)
      return false;
    v = v * (uint64_t) base + (uint64_t) d;
    prev_digit = true;
  }
  if (!prev_digit)
    return false;
  *out = neg ? -(int64_t) v : (int64_t) v;
  return true;
}
