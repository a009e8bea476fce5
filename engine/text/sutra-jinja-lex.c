/* sutra-jinja-lex.c: the Jinja2 3.1 lexer with transformers' settings.
 *
 * Follows jinja2/lexer.py (read for the rules, not copied): newlines are normalised to "\n"
 * and one trailing newline is dropped (keep_trailing_newline=False); data runs until the
 * earliest "{{", "{%" or "{#"; a "-" after an opening delimiter strips all whitespace before
 * it, a "-" before a closing one all whitespace after it; trim_blocks drops the first "\n"
 * after a block or comment end ("%}", "#}", not "}}"); lstrip_blocks drops spaces and tabs
 * between the start of a line and a block or comment opening (not "{{"), unless "{%+".
 * Inside tags, end delimiters only count while brackets are balanced. String literals are
 * decoded like Python's unicode-escape. Whitespace is Python's str.isspace set. */
#include "sutra-jinja-private.h"

#include <string.h>
#include <utf8proc.h>

typedef struct {
  JnRun *r;
  const char *s;         /* normalised source */
  size_t n;
  size_t pos;
  int line;              /* line at pos */
  bool line_starting;    /* the previous match ended with "\n" (or nothing matched yet) */
  JnToks *out;
} Lexer;

static void
advance (Lexer *lx, size_t to)
{
  for (size_t i = lx->pos; i < to; i++)
    if (lx->s[i] == '\n')
      lx->line++;
  lx->pos = to;
}

static JnTok *
emit (Lexer *lx, JnTokKind kind, int line)
{
  JnToks *t = lx->out;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    JnTok *v = jn_alloc (lx->r, cap * sizeof *v);
    if (t->n)
      memcpy (v, t->v, t->n * sizeof *v);
    t->v = v;
    t->cap = cap;
  }
  JnTok *tok = &t->v[t->n++];
  memset (tok, 0, sizeof *tok);
  tok->kind = (uint8_t) kind;
  tok->line = line;
  return tok;
}

/* Length of the whitespace code point at s[i], 0 if none. */
static size_t
space_at (const char *s, size_t n, size_t i)
{
  if (i >= n)
    return 0;
  unsigned char c = (unsigned char) s[i];
  if (c < 0x80)
    return jn_py_isspace (c) ? 1 : 0;
  size_t j = i;
  uint32_t cp = jn_utf8_next (s, n, &j);
  return jn_py_isspace (cp) ? j - i : 0;
}

static size_t
skip_space (const char *s, size_t n, size_t i)
{
  size_t k;
  while ((k = space_at (s, n, i)) > 0)
    i += k;
  return i;
}

/* Length of the text [a, b) once trailing whitespace is removed (str.rstrip()). */
static size_t
rstrip_end (const char *s, size_t a, size_t b)
{
  size_t end = b;
  size_t i = a, last_nonspace_end = a;
  while (i < end) {
    size_t k = space_at (s, end, i);
    if (k) {
      i += k;
    } else {
      size_t j = i;
      jn_utf8_next (s, end, &j);
      i = j;
      last_nonspace_end = i;
    }
  }
  return last_nonspace_end;
}

/* Emits data text [a, b) ahead of a tag with strip sign `sign`; lstrip applies to blocks,
 * comments and raw ends (lstrip_ok). */
static void
emit_data (Lexer *lx, size_t a, size_t b, char sign, bool lstrip_ok, JnTokKind kind)
{
  int line = lx->line;
  size_t end = b;
  if (sign == '-') {
    end = rstrip_end (lx->s, a, b);
  } else if (sign != '+' && lstrip_ok) {
    size_t l_pos = a;
    for (size_t i = b; i > a; i--)
      if (lx->s[i - 1] == '\n') {
        l_pos = i;
        break;
      }
    if ((l_pos > a || lx->line_starting) && l_pos < b && skip_space (lx->s, b, l_pos) == b)
      end = l_pos;
  }
  if (end > a) {
    JnTok *t = emit (lx, kind, line);
    t->s = lx->s + a;
    t->len = end - a;
  }
}

/* ---- literals ---------------------------------------------------------------------------- */

static int
hexval (char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes the body of a string literal as Python's
 * s.encode("ascii", "backslashreplace").decode("unicode-escape") does. */
static void
decode_string (Lexer *lx, const char *s, size_t n, int line, JnTok *tok)
{
  JBuf b;
  jbuf_init (&b, lx->r, (size_t) -1);
  for (size_t i = 0; i < n;) {
    if (s[i] != '\\') {
      size_t j = i;
      jn_utf8_next (s, n, &j);
      jbuf_add (&b, s + i, j - i);
      i = j;
      continue;
    }
    i++;                                   /* the regex guarantees a character follows */
    unsigned char c = (unsigned char) s[i];
    if (c >= 0x80) {                       /* backslashreplace turned it into an escape text */
      size_t j = i;
      uint32_t cp = jn_utf8_next (s, n, &j);
      jbuf_addc (&b, '\\');
      if (cp < 0x100)
        jbuf_addf (&b, "x%02x", cp);
      else if (cp < 0x10000)
        jbuf_addf (&b, "u%04x", cp);
      else
        jbuf_addf (&b, "U%08x", cp);
      i = j;
      continue;
    }
    i++;
    uint32_t cp;
    switch (c) {
    case '\n': continue;                   /* line continuation */
    case '\\': cp = '\\'; break;
    case '\'': cp = '\''; break;
    case '"': cp = '"'; break;
    case 'a': cp = 7; break;
    case 'b': cp = 8; break;
    case 'f': cp = 12; break;
    case 'n': cp = '\n'; break;
    case 'r': cp = '\r'; break;
    case 't': cp = '\t'; break;
    case 'v': cp = 11; break;
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
      cp = (uint32_t) (c - '0');
      for (int k = 0; k < 2 && i < n && s[i] >= '0' && s[i] <= '7'; k++)
        cp = cp * 8 + (uint32_t) (s[i++] - '0');
      break;
    case 'x': case 'u': case 'U': {
      int digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
      cp = 0;
      for (int k = 0; k < digits; k++) {
        int h = i < n ? hexval (s[i]) : -1;
        if (h < 0)
          jn_fail (lx->r, SUTRA_ERR_FORMAT, line, "truncated \\%c escape in a string literal", c);
        cp = cp * 16 + (uint32_t) h;
        i++;
      }
      if (cp > 0x10FFFF)
        jn_fail (lx->r, SUTRA_ERR_FORMAT, line, "illegal Unicode character in a string literal");
      break;
    }
    case 'N':
      jn_fail (lx->r, SUTRA_ERR_UNSUPPORTED, line,
               "\\N{...} named escapes in string literals are not supported");
    default:                               /* unknown escapes stay as written */
      jbuf_addc (&b, '\\');
      cp = c;
      break;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
      cp = 0xFFFD;                         /* a lone surrogate cannot be UTF-8 */
    jbuf_add_cp (&b, cp);
  }
  tok->s = b.p ? b.p : "";
  tok->len = b.n;
}

static bool
is_digit (char c)
{
  return c >= '0' && c <= '9';
}

/* (\d+_)*\d+ : returns the end, or start when no digit. */
static size_t
digits_us (const char *s, size_t n, size_t i)
{
  size_t start = i;
  if (i >= n || !is_digit (s[i]))
    return start;
  while (i < n) {
    if (is_digit (s[i])) {
      i++;
    } else if (s[i] == '_' && i + 1 < n && is_digit (s[i + 1])) {
      i += 2;
    } else {
      break;
    }
  }
  return i;
}

/* Jinja's float_re at i; returns the end or i. */
static size_t
match_float (const char *s, size_t n, size_t i)
{
  if (i > 0 && s[i - 1] == '.')
    return i;
  size_t a = digits_us (s, n, i);
  if (a == i)
    return i;
  size_t frac = a;
  if (a < n && s[a] == '.') {
    size_t b = digits_us (s, n, a + 1);
    if (b > a + 1)
      frac = b;
  }
  if (frac < n && (s[frac] == 'e' || s[frac] == 'E')) {
    size_t e = frac + 1;
    if (e < n && (s[e] == '+' || s[e] == '-'))
      e++;
    size_t f = digits_us (s, n, e);
    if (f > e)
      return f;
  }
  return frac > a ? frac : i;
}

static size_t
match_int (const char *s, size_t n, size_t i, int *base)
{
  *base = 10;
  if (i + 1 < n && s[i] == '0' && strchr ("bBoOxX", s[i + 1]) && s[i + 1]) {
    char k = (char) (s[i + 1] | 0x20);
    *base = k == 'b' ? 2 : k == 'o' ? 8 : 16;
    size_t j = i + 2;
    size_t end = i;
    for (;;) {
      size_t t = j;
      if (t < n && s[t] == '_')
        t++;
      int h = t < n ? hexval (s[t]) : -1;
      if (h < 0 || h >= *base)
        break;
      j = end = t + 1;
    }
    if (end > i)
      return end;
    *base = 10;
  }
  if (i < n && s[i] >= '1' && s[i] <= '9')
    return digits_us (s, n, i);
  if (i < n && s[i] == '0') {
    size_t j = i + 1;
    while (j < n && (s[j] == '0' || (s[j] == '_' && j + 1 < n && s[j + 1] == '0')))
      j += s[j] == '_' ? 2 : 1;
    return j;
  }
  return i;
}

static bool
ident_start (uint32_t cp)
{
  if (cp < 0x80)
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
  utf8proc_category_t c = utf8proc_category ((utf8proc_int32_t) cp);
  return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) || c == UTF8PROC_CATEGORY_NL;
}

static bool
ident_cont (uint32_t cp)
{
  if (cp < 0x80)
    return ident_start (cp) || (cp >= '0' && cp <= '9');
  utf8proc_category_t c = utf8proc_category ((utf8proc_int32_t) cp);
  return ident_start (cp) || c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC ||
         c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_PC;
}

/* ---- inside {{ }} / {% %} ------------------------------------------------------------------ */

static const char *const OPS2[] = { "**", "//", "==", "!=", ">=", "<=", NULL };
static const char OPS1[] = "+-/*%~[](){}><=.:|,;";

/* Lexes tokens until the closing delimiter; returns after emitting the end token. */
static void
lex_tag (Lexer *lx, bool block, int open_line)
{
  const char *s = lx->s;
  size_t n = lx->n;
  char stack[256];
  int depth = 0;
  for (;;) {
    size_t p = lx->pos;
    if (p >= n)
      jn_fail (lx->r, SUTRA_ERR_FORMAT, open_line, "unexpected end of template: '%s' opened "
               "here is never closed", block ? "{%" : "{{");
    if (depth == 0) {
      if (block) {
        if (p + 2 < n && s[p] == '+' && s[p + 1] == '%' && s[p + 2] == '}') {
          advance (lx, p + 3);
          emit (lx, T_BLOCK_END, lx->line);
          lx->line_starting = false;
          return;
        }
        if (p + 2 < n && s[p] == '-' && s[p + 1] == '%' && s[p + 2] == '}') {
          int line = lx->line;
          size_t e = skip_space (s, n, p + 3);
          lx->line_starting = e > p + 3 && s[e - 1] == '\n';
          advance (lx, e);
          emit (lx, T_BLOCK_END, line);
          return;
        }
        if (p + 1 < n && s[p] == '%' && s[p + 1] == '}') {
          int line = lx->line;
          size_t e = p + 2;
          lx->line_starting = e < n && s[e] == '\n';
          if (lx->line_starting)
            e++;
          advance (lx, e);
          emit (lx, T_BLOCK_END, line);
          return;
        }
      } else {
        if (p + 2 < n && s[p] == '-' && s[p + 1] == '}' && s[p + 2] == '}') {
          int line = lx->line;
          size_t e = skip_space (s, n, p + 3);
          lx->line_starting = e > p + 3 && s[e - 1] == '\n';
          advance (lx, e);
          emit (lx, T_VAR_END, line);
          return;
        }
        if (p + 1 < n && s[p] == '}' && s[p + 1] == '}') {
          advance (lx, p + 2);
          emit (lx, T_VAR_END, lx->line);
          lx->line_starting = false;
          return;
        }
      }
    }
    size_t e = skip_space (s, n, p);
    if (e > p) {
      lx->line_starting = s[e - 1] == '\n';
      advance (lx, e);
      continue;
    }
    lx->line_starting = false;
    int line = lx->line;
    unsigned char c = (unsigned char) s[p];
    /* numbers */
    if (is_digit ((char) c)) {
      size_t fe = match_float (s, n, p);
      if (fe > p) {
        char buf[128];
        size_t k = 0;
        for (size_t i = p; i < fe && k + 1 < sizeof buf; i++)
          if (s[i] != '_')
            buf[k++] = s[i];
        buf[k] = '\0';
        JnTok *t = emit (lx, T_FLOAT, line);
        t->f = strtod (buf, NULL);
        advance (lx, fe);
        continue;
      }
      int base;
      size_t ie = match_int (s, n, p, &base);
      if (ie > p) {
        uint64_t v = 0;
        size_t i = p + (base == 10 ? 0 : 2);
        for (; i < ie; i++) {
          if (s[i] == '_')
            continue;
          uint64_t d = (uint64_t) hexval (s[i]);
          if (v > (UINT64_C (0x7fffffffffffffff) - d) / (uint64_t) base)
            jn_fail (lx->r, SUTRA_ERR_UNSUPPORTED, line,
                     "integer literal beyond 64 bits is not supported");
          v = v * (uint64_t) base + d;
        }
        JnTok *t = emit (lx, T_INT, line);
        t->i = (int64_t) v;
        advance (lx, ie);
        continue;
      }
    }
    /* names */
    {
      size_t j = p;
      uint32_t cp = jn_utf8_next (s, n, &j);
      if (ident_start (cp)) {
        size_t k = j;
        while (k < n) {
          size_t m = k;
          uint32_t c2 = jn_utf8_next (s, n, &m);
          if (!ident_cont (c2))
            break;
          k = m;
        }
        JnTok *t = emit (lx, T_NAME, line);
        t->s = s + p;
        t->len = k - p;
        advance (lx, k);
        continue;
      }
    }
    /* strings */
    if (c == '\'' || c == '"') {
      size_t i = p + 1;
      while (i < n && s[i] != (char) c) {
        if (s[i] == '\\' && i + 1 < n)
          i++;
        i++;
      }
      if (i < n) {
        JnTok *t = emit (lx, T_STRING, line);
        decode_string (lx, s + p + 1, i - p - 1, line, t);
        advance (lx, i + 1);
        continue;
      }
      /* unterminated: falls through to "unexpected char" like Jinja */
    }
    /* operators */
    size_t len = 0;
    for (int k = 0; OPS2[k] && !len; k++)
      if (p + 1 < n && s[p] == OPS2[k][0] && s[p + 1] == OPS2[k][1])
        len = 2;
    if (!len && c && strchr (OPS1, c))
      len = 1;
    if (len) {
      if (len == 1 && (c == '(' || c == '[' || c == '{')) {
        if (depth >= (int) sizeof stack)
          jn_fail (lx->r, SUTRA_ERR_UNSUPPORTED, line, "brackets nested too deeply");
        stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
      } else if (len == 1 && (c == ')' || c == ']' || c == '}')) {
        if (depth == 0)
          jn_fail (lx->r, SUTRA_ERR_FORMAT, line, "unexpected '%c'", c);
        if (stack[depth - 1] != (char) c)
          jn_fail (lx->r, SUTRA_ERR_FORMAT, line, "unexpected '%c', expected '%c'", c,
                   stack[depth - 1]);
        depth--;
      }
      JnTok *t = emit (lx, T_OP, line);
      t->s = s + p;                         /* points into the source: "==" etc. */
      t->len = len;
      advance (lx, p + len);
      continue;
    }
    if (c >= 0x20 && c < 0x7f)
      jn_fail (lx->r, SUTRA_ERR_FORMAT, line, "unexpected char '%c'", c);
    jn_fail (lx->r, SUTRA_ERR_FORMAT, line, "unexpected char U+%04X",
             (unsigned) jn_utf8_next (s, n, &p));
  }
}

/* {% raw %} ... {% endraw %}: returns true (and lexes it) when a raw block starts at p. */
static bool
lex_raw (Lexer *lx, size_t tag, char sign_after_open)
{
  const char *s = lx->s;
  size_t n = lx->n;
  size_t i = tag + 2 + (sign_after_open ? 1 : 0);
  i = skip_space (s, n, i);
  if (i + 3 > n || memcmp (s + i, "raw", 3) != 0)
    return false;
  i = skip_space (s, n, i + 3);
  size_t body;
  if (i + 2 < n && s[i] == '-' && s[i + 1] == '%' && s[i + 2] == '}') {
    body = skip_space (s, n, i + 3);
  } else if (i + 1 < n && s[i] == '%' && s[i + 1] == '}') {
    body = i + 2;
  } else {
    return false;
  }
  int open_line = lx->line;
  lx->line_starting = body > tag && s[body - 1] == '\n';
  advance (lx, body);
  /* find the earliest {%[-+]?\s*endraw\s*(+%}|-%}|%}) */
  for (size_t q = body; q + 1 < n; q++) {
    if (s[q] != '{' || s[q + 1] != '%')
      continue;
    size_t j = q + 2;
    char sign = 0;
    if (j < n && (s[j] == '-' || s[j] == '+'))
      sign = s[j++];
    j = skip_space (s, n, j);
    if (j + 6 > n || memcmp (s + j, "endraw", 6) != 0)
      continue;
    j = skip_space (s, n, j + 6);
    size_t end;
    if (j + 2 < n && s[j] == '+' && s[j + 1] == '%' && s[j + 2] == '}')
      end = j + 3;
    else if (j + 2 < n && s[j] == '-' && s[j + 1] == '%' && s[j + 2] == '}')
      end = skip_space (s, n, j + 3);
    else if (j + 1 < n && s[j] == '%' && s[j + 1] == '}')
      end = j + 2 + ((j + 2 < n && s[j + 2] == '\n') ? 1 : 0);
    else
      continue;
    emit_data (lx, body, q, sign, true, T_DATA);
    lx->line_starting = s[end - 1] == '\n';
    advance (lx, end);
    return true;
  }
  jn_fail (lx->r, SUTRA_ERR_FORMAT, open_line, "Missing end of raw directive");
}

void
jn_lex (JnRun *r, const char *src, size_t len, JnToks *out)
{
  /* newline normalisation + keep_trailing_newline=False */
  char *s = jn_alloc (r, len + 1);
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (src[i] == '\r') {
      s[n++] = '\n';
      if (i + 1 < len && src[i + 1] == '\n')
        i++;
    } else {
      s[n++] = src[i];
    }
  }
  if (n > 0 && s[n - 1] == '\n')
    n--;
  s[n] = '\0';
  size_t bad;
  if (!jn_utf8_valid (s, n, &bad)) {
    int line = 1;
    for (size_t i = 0; i < bad; i++)
      line += s[i] == '\n';
    jn_fail (r, SUTRA_ERR_FORMAT, line, "template is not valid UTF-8 (byte %zu)", bad);
  }

  Lexer lx = { .r = r, .s = s, .n = n, .pos = 0, .line = 1, .line_starting = true, .out = out };
  while (lx.pos < n) {
    size_t p = lx.pos;
    /* the earliest tag opening */
    size_t q = p;
    while (q + 1 < n && !(s[q] == '{' && (s[q + 1] == '{' || s[q + 1] == '%' || s[q + 1] == '#')))
      q++;
    if (q + 1 >= n) {                       /* the rest is data */
      JnTok *t = emit (&lx, T_DATA, lx.line);
      t->s = s + p;
      t->len = n - p;
      advance (&lx, n);
      break;
    }
    char kind = s[q + 1];
    char sign = (q + 2 < n && (s[q + 2] == '-' || s[q + 2] == '+')) ? s[q + 2] : 0;
    if (kind == '%') {
      /* the data before it strips the same way for a raw block and any other block */
      emit_data (&lx, p, q, sign, true, T_DATA);
      advance (&lx, q);
      if (lex_raw (&lx, q, sign))           /* a raw block is tried first, as in Jinja */
        continue;
      int line = lx.line;
      advance (&lx, q + 2 + (sign ? 1 : 0));
      emit (&lx, T_BLOCK_BEGIN, line);
      lex_tag (&lx, true, line);
      continue;
    }
    emit_data (&lx, p, q, sign, kind == '#', T_DATA);
    advance (&lx, q);
    int line = lx.line;
    if (kind == '{') {
      advance (&lx, q + 2 + (sign ? 1 : 0));
      emit (&lx, T_VAR_BEGIN, line);
      lex_tag (&lx, false, line);
      continue;
    }
    /* comment: up to the first "#}", with "-#}" / "+#}" forms */
    size_t body = q + 2 + (sign ? 1 : 0);
    size_t e = body;
    while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}'))
      e++;
    if (e + 1 >= n)
      jn_fail (r, SUTRA_ERR_FORMAT, line, "Missing end of comment tag");
    size_t end;
    if (e > body && s[e - 1] == '-')
      end = skip_space (s, n, e + 2);
    else if (e > body && s[e - 1] == '+')
      end = e + 2;
    else
      end = e + 2 + ((e + 2 < n && s[e + 2] == '\n') ? 1 : 0);
    lx.line_starting = s[end - 1] == '\n';
    advance (&lx, end);
  }
  emit (&lx, T_EOF, lx.line);
}
