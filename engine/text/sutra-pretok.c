/* sutra-pretok.c: pre-tokenizers (ByteLevel, Split, Metaspace, Whitespace,
 * WhitespaceSplit, BertPreTokenizer, Digits, Punctuation, CharDelimiterSplit,
 * FixedLength, Sequence) and the regex engine behind Split/Replace.
 *
 * HF runs each pre-tokenizer over the whole list of splits (PreTokenizedString::split);
 * every step only looks at one split at a time, so we run the steps depth-first per
 * split, which gives the same ordered result with memory bounded by one split.
 * Splitting follows NormalizedString::split: the pattern yields (range, is_match) items
 * covering the text (tokenizer/pattern.rs), then the behavior (Removed, Isolated,
 * MergedWithPrevious, MergedWithNext, Contiguous) groups them; empty results are dropped.
 * Regex patterns are Oniguruma syntax in tokenizer.json; we translate the few escapes
 * whose meaning differs (\s \S \w \W \h \H \uHHHH) and run PCRE2 (UTF, UCP, multiline
 * anchors as in Ruby syntax) with its JIT. Iteration copies onig's FindMatches: an empty
 * match right at the end of the previous match is skipped by advancing one char. */
#include "sutra-tokenizer-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sutra_piece_byte_map (SutraTokCtx *c, SutraPiece *p);

/* ---------------------------------------------------------------------------------------
 * Regex translation */

/* Oniguruma \s (Unicode): White_Space. PCRE2's \s also matches U+180E. */
#define WS_INNER "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}" \
                 "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
/* Oniguruma \w (Unicode): Letter | Mark | Number | Connector_Punctuation. */
#define W_INNER "\\p{L}\\p{M}\\p{N}\\p{Pc}"

typedef struct {
  char *p;
  size_t n, cap;
} Buf;

static void
buf_add (Buf *b, const char *s, size_t n)
{
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->p = sutra_xrealloc (b->p, b->cap);
  }
  memcpy (b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void
buf_str (Buf *b, const char *s)
{
  buf_add (b, s, strlen (s));
}

char *
sutra_tok_regex_translate (const char *src, size_t n, SutraError *err)
{
  Buf b = { 0 };
  buf_add (&b, "", 0);
  bool in_class = false;
  for (size_t i = 0; i < n;) {
    char ch = src[i];
    if (ch == '\\' && i + 1 < n) {
      char e = src[i + 1];
      switch (e) {
      case 's':
        buf_str (&b, in_class ? WS_INNER : "[" WS_INNER "]");
        break;
      case 'S':
        buf_str (&b, in_class ? "\\S" : "[^" WS_INNER "]");
        break;
      case 'w':
        buf_str (&b, in_class ? W_INNER : "[" W_INNER "]");
        break;
      case 'W':
        buf_str (&b, in_class ? "\\W" : "[^" W_INNER "]");
        break;
      case 'h':
        buf_str (&b, in_class ? "0-9a-fA-F" : "[0-9a-fA-F]");
        break;
      case 'H':
        if (in_class) {
          free (b.p);
          sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                           "regex construct \\H inside a character class is not supported");
          return NULL;
        }
        buf_str (&b, "[^0-9a-fA-F]");
        break;
      case 'u': {
        /* \uHHHH (Ruby) -> \x{HHHH} */
        size_t k = 0;
        while (k < 4 && i + 2 + k < n && strchr ("0123456789abcdefABCDEF", src[i + 2 + k])
               && src[i + 2 + k])
          k++;
        if (k != 4) {
          free (b.p);
          sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "regex escape \\u needs 4 hex digits");
          return NULL;
        }
        buf_str (&b, "\\x{");
        buf_add (&b, src + i + 2, 4);
        buf_str (&b, "}");
        i += 6;
        continue;
      }
      default:
        buf_add (&b, src + i, 2);
        break;
      }
      i += 2;
      continue;
    }
    if (ch == '[') {
      if (in_class) {
        if (i + 1 < n && src[i + 1] == ':') {   /* POSIX bracket [:alpha:] */
          const char *end = memmem (src + i, n - i, ":]", 2);
          if (end) {
            buf_add (&b, src + i, (size_t) (end - (src + i)) + 2);
            i = (size_t) (end - src) + 2;
            continue;
          }
        }
        free (b.p);
        sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                         "regex nested character classes are not supported");
        return NULL;
      }
      in_class = true;
      buf_add (&b, "[", 1);
      i++;
      if (i < n && src[i] == '^') {
        buf_add (&b, "^", 1);
        i++;
      }
      if (i < n && src[i] == ']') {   /* literal ']' first in a class */
        buf_add (&b, "\\]", 2);
        i++;
      }
      continue;
    }
    if (in_class && ch == ']')
      in_class = false;
    else if (in_class && ch == '&' && i + 1 < n && src[i + 1] == '&') {
      free (b.p);
      sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                       "regex class intersection '&&' is not supported");
      return NULL;
    }
    buf_add (&b, &ch, 1);
    i++;
  }
  return b.p;
}

int
sutra_tok_regex_add (SutraTokenizer *tok, const char *pattern, size_t n, bool literal,
                     const char *where, SutraError *err)
{
  char *pat;
  size_t plen;
  if (literal) {
    pat = sutra_xstrndup (pattern, n);
    plen = n;
  } else {
    pat = sutra_tok_regex_translate (pattern, n, err);
    if (!pat) {
      sutra_error_prefix (err, "%s: %s", tok->name, where);
      return -1;
    }
    plen = strlen (pat);
  }
  int ec;
  PCRE2_SIZE eo;
  uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP | PCRE2_MULTILINE);
  pcre2_code *re = pcre2_compile ((PCRE2_SPTR) pat, plen, opts, &ec, &eo, NULL);
  if (!re) {
    PCRE2_UCHAR msg[200];
    pcre2_get_error_message (ec, msg, sizeof msg);
    sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: %s: regex '%.*s' does not compile: %s at %zu",
                     tok->name, where, (int) (n > 120 ? 120 : n), pattern, (char *) msg,
                     (size_t) eo);
    free (pat);
    return -1;
  }
  pcre2_jit_compile (re, PCRE2_JIT_COMPLETE);   /* failure: the interpreter is used */
  tok->regexes = sutra_xrealloc (tok->regexes, (tok->n_regexes + 1) * sizeof *tok->regexes);
  tok->regex_sources = sutra_xrealloc (tok->regex_sources,
                                       (tok->n_regexes + 1) * sizeof *tok->regex_sources);
  tok->regexes[tok->n_regexes] = re;
  tok->regex_sources[tok->n_regexes] = sutra_xstrndup (pattern, n);
  free (pat);
  return (int) tok->n_regexes++;
}

bool
sutra_tok_regex_next (SutraTokCtx *c, int slot, const char *s, size_t n, size_t *pos,
                      size_t *last_end, size_t *ms, size_t *me)
{
  const pcre2_code *re = c->tok->regexes[slot];
  /* one small match block serves every pattern: only group 0 is read, and PCRE2 still
   * fills it (returning 0) when the vector is too short for the other groups. The JIT
   * runs on its default 32 KiB machine stack; a pattern needing more falls back to the
   * interpreter below. */
  if (!c->md)
    c->md = pcre2_match_data_create (1, NULL);
  for (;;) {
    if (*pos > n)
      return false;
    int rc = pcre2_match (re, (PCRE2_SPTR) s, n, *pos, PCRE2_NO_UTF_CHECK, c->md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
      rc = pcre2_match (re, (PCRE2_SPTR) s, n, *pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, c->md,
                        NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
      return false;
    if (rc < 0) {
      PCRE2_UCHAR msg[200];
      pcre2_get_error_message (rc, msg, sizeof msg);
      sutra_tok_fail (c, SUTRA_ERR_INVALID, "regex '%s' failed on the input: %s",
                      c->tok->regex_sources[slot], (char *) msg);
      return false;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer (c->md);
    size_t s0 = ov[0], e0 = ov[1];
    if (e0 < s0)   /* \K tricks; treat as empty at e0 */
      s0 = e0;
    if (s0 == e0 && *last_end == e0) {
      /* onig FindMatches: no empty match right after the previous match */
      *pos += *pos < n ? sutra_utf8_len_at (s + *pos) : 1;
      continue;
    }
    *pos = e0;
    *last_end = e0;
    *ms = s0;
    *me = e0;
    return true;
  }
}

/* ---------------------------------------------------------------------------------------
 * Raw (range, is_match) items of a pattern over one split */

typedef struct {
  SutraTokCtx *c;
  const SutraTokStep *st;
  const char *s;
  size_t n;
  size_t prev;            /* end of the last item emitted */
  size_t scan;            /* char sources: next char to look at */
  size_t rpos, rlast;     /* regex iteration state */
  bool pend;              /* a match found but not emitted yet (a gap came first) */
  size_t pms, pme;
  bool done;
} RawIter;

static bool
char_matches (const SutraTokStep *st, uint32_t cp)
{
  switch (st->src) {
  case SUTRA_SRC_WS:
    return sutra_uc_is_whitespace (cp);
  case SUTRA_SRC_PUNCT:
    return sutra_uc_is_punctuation (cp);
  case SUTRA_SRC_NUMERIC:
    return sutra_uc_is_numeric (cp);
  case SUTRA_SRC_CHAR:
    return cp == st->cp;
  default:
    return false;
  }
}

/* Class of a char for the Whitespace pre-tokenizer regex \w+|[^\w\s]+ (Rust regex):
 * 1 word, 2 other non-space, 0 whitespace. */
static int
word_class (uint32_t cp)
{
  if (sutra_uc_is_word (cp))
    return 1;
  return sutra_uc_is_whitespace (cp) ? 0 : 2;
}

/* Finds the next match (ms, me) at or after it->scan for the non-regex sources. */
static bool
next_char_match (RawIter *it, size_t *ms, size_t *me)
{
  while (it->scan < it->n) {
    size_t adv;
    uint32_t cp = sutra_utf8_decode (it->s + it->scan, &adv);
    if (it->st->src == SUTRA_SRC_WORDS) {
      int k = word_class (cp);
      if (k == 0) {
        it->scan += adv;
        continue;
      }
      size_t a = it->scan, b = it->scan + adv;
      while (b < it->n) {
        uint32_t c2 = sutra_utf8_decode (it->s + b, &adv);
        if (word_class (c2) != k)
          break;
        b += adv;
      }
      it->scan = b;
      *ms = a;
      *me = b;
      return true;
    }
    if (char_matches (it->st, cp)) {
      *ms = it->scan;
      *me = it->scan + adv;
      it->scan += adv;
      return true;
    }
    it->scan += adv;
  }
  return false;
}

static bool
raw_next (RawIter *it, size_t *a, size_t *b, bool *is_match)
{
  if (it->done)
    return false;
  bool m = false;
  if (!it->pend) {
    size_t ms, me;
    bool found = it->st->src == SUTRA_SRC_REGEX
                   ? sutra_tok_regex_next (it->c, it->st->pat.slot, it->s, it->n, &it->rpos,
                                           &it->rlast, &ms, &me)
                   : next_char_match (it, &ms, &me);
    if (found) {
      it->pend = true;
      it->pms = ms;
      it->pme = me;
    }
  }
  if (it->pend) {
    if (it->prev != it->pms) {   /* gap before the match */
      *a = it->prev;
      *b = it->pms;
      m = false;
      it->prev = it->pms;
    } else {
      *a = it->pms;
      *b = it->pme;
      m = true;
      it->prev = it->pme;
      it->pend = false;
    }
  } else {
    it->done = true;
    if (it->prev == it->n)
      return false;
    *a = it->prev;
    *b = it->n;
    m = false;
  }
  *is_match = it->st->invert ? !m : m;
  return true;
}

/* ---------------------------------------------------------------------------------------
 * Behaviors (NormalizedString::split) */

typedef struct {
  RawIter raw;
  SutraTokBehavior beh;
  bool has;          /* pending group */
  size_t ps, pe;
  bool pm;
  bool prev_match;
  bool ended;
} SplitIter;

static bool
split_next (SplitIter *it, size_t *a, size_t *b)
{
  for (;;) {
    size_t x, y;
    bool m;
    if (it->ended || !raw_next (&it->raw, &x, &y, &m)) {
      it->ended = true;
      if (it->has) {
        it->has = false;
        *a = it->ps;
        *b = it->pe;
        return true;
      }
      return false;
    }
    switch (it->beh) {
    case SUTRA_SPLIT_ISOLATED:
      *a = x;
      *b = y;
      return true;
    case SUTRA_SPLIT_REMOVED:
      if (m)
        continue;
      *a = x;
      *b = y;
      return true;
    case SUTRA_SPLIT_CONTIGUOUS:
      if (it->has && m == it->pm) {
        it->pe = y;
        continue;
      }
      if (it->has) {
        *a = it->ps;
        *b = it->pe;
        it->ps = x;
        it->pe = y;
        it->pm = m;
        return true;
      }
      it->has = true;
      it->ps = x;
      it->pe = y;
      it->pm = m;
      continue;
    case SUTRA_SPLIT_MERGED_PREV: {
      bool prev = it->prev_match;
      it->prev_match = m;
      if (m && !prev && it->has) {
        it->pe = y;
        continue;
      }
      if (it->has) {
        *a = it->ps;
        *b = it->pe;
        it->ps = x;
        it->pe = y;
        return true;
      }
      it->has = true;
      it->ps = x;
      it->pe = y;
      continue;
    }
    case SUTRA_SPLIT_MERGED_NEXT:
      /* a match joins the following item when that item is not a match */
      if (it->has) {          /* pending is always a match here */
        if (!m) {
          *a = it->ps;
          *b = y;
          it->has = false;
          return true;
        }
        *a = it->ps;
        *b = it->pe;
        it->ps = x;
        it->pe = y;
        return true;          /* the new match stays pending */
      }
      if (m) {
        it->has = true;
        it->ps = x;
        it->pe = y;
        continue;
      }
      *a = x;
      *b = y;
      return true;
    }
  }
}

/* ---------------------------------------------------------------------------------------
 * Depth-first driver */

static SutraPiece
piece_slice (SutraTokCtx *c, const SutraPiece *p, size_t a, size_t b)
{
  SutraPiece q = { p->s + a, b - a, NULL, 0, 0 };
  if (p->al) {
    q.al = p->al + a;
    q.ostart = p->al[a].s;
    q.oend = p->al[b - 1].e;
    return q;
  }
  bool boundary = (a == 0 || ((unsigned char) p->s[a] & 0xC0) != 0x80)
                  && (b == p->len || ((unsigned char) p->s[b] & 0xC0) != 0x80);
  if (boundary) {
    q.ostart = p->ostart + a;
    q.oend = p->ostart + b;
    return q;
  }
  /* not on char boundaries (never for valid matches): materialize the alignments */
  SutraTokAlign *al = sutra_tok_arena_alloc (&c->arena, (b - a) * sizeof *al);
  for (size_t i = a; i < b; i++)
    al[i - a] = sutra_piece_align (p, i);
  q.al = al;
  q.ostart = al[0].s;
  q.oend = al[b - a - 1].e;
  return q;
}

static bool
run_model (SutraTokCtx *c, const SutraPiece *p)
{
  switch (c->tok->model.type) {
  case SUTRA_TOK_MODEL_BPE:
    return sutra_bpe_tokenize (c, p);
  case SUTRA_TOK_MODEL_WORDPIECE:
    return sutra_wordpiece_tokenize (c, p);
  case SUTRA_TOK_MODEL_UNIGRAM:
    return sutra_unigram_tokenize (c, p);
  }
  return false;
}

static bool
run_steps (SutraTokCtx *c, const SutraPiece *p, size_t k)
{
  if (p->len == 0)
    return true;   /* PreTokenizedString::split drops empty splits */
  if (k == c->tok->n_steps)
    return run_model (c, p);
  const SutraTokStep *st = &c->tok->steps[k];
  SutraTokArenaMark mark = sutra_tok_arena_mark (&c->arena);
  bool ok = true;
  SutraPiece q = *p;
  switch (st->kind) {
  case SUTRA_STEP_PREFIX_SPACE:
    if (q.s[0] != ' ')
      sutra_piece_prepend (c, &q, " ", 1);
    ok = run_steps (c, &q, k + 1);
    break;
  case SUTRA_STEP_BYTE_MAP:
    sutra_piece_byte_map (c, &q);
    ok = run_steps (c, &q, k + 1);
    break;
  case SUTRA_STEP_METASPACE: {
    char rep[4];
    size_t rl = sutra_utf8_encode (st->cp, rep);
    sutra_piece_replace_char (c, &q, ' ', rep, rl);
    bool starts = q.len >= rl && memcmp (q.s, rep, rl) == 0;
    if ((st->prepend == SUTRA_PREPEND_ALWAYS && !starts)
        || (st->prepend == SUTRA_PREPEND_FIRST && !starts && q.ostart == 0))
      sutra_piece_prepend (c, &q, rep, rl);
    ok = run_steps (c, &q, k + 1);
    break;
  }
  case SUTRA_STEP_FIXED: {
    size_t i = 0;
    while (ok && i < q.len) {
      size_t j = i;
      for (size_t ch = 0; ch < st->length && j < q.len; ch++)
        j += sutra_utf8_len_at (q.s + j);
      SutraPiece r = piece_slice (c, p, i, j);
      ok = run_steps (c, &r, k + 1);
      i = j;
    }
    break;
  }
  case SUTRA_STEP_SPLIT: {
    SplitIter it;
    memset (&it, 0, sizeof it);
    it.raw.c = c;
    it.raw.st = st;
    it.raw.s = p->s;
    it.raw.n = p->len;
    it.raw.rlast = SIZE_MAX;
    it.beh = st->behavior;
    size_t a, b;
    while (ok && split_next (&it, &a, &b)) {
      if (a >= b)
        continue;
      SutraPiece r = piece_slice (c, p, a, b);
      ok = run_steps (c, &r, k + 1);
    }
    break;
  }
  }
  sutra_tok_arena_reset (&c->arena, mark);
  return ok && c->status == SUTRA_OK;
}

bool
sutra_tok_pretokenize_and_model (SutraTokCtx *c, const SutraPiece *p)
{
  return run_steps (c, p, 0);
}
