/* sutra-normalizer.c: HF NormalizedString edits with alignment tracking, and the
 * tokenizer.json normalizers (NFC/NFD/NFKC/NFKD, Lowercase, StripAccents, BertNormalizer,
 * Prepend, Replace, Strip, Nmt, Precompiled, ByteLevel).
 *
 * Every edit is expressed as HF's `transform(dest, initial_offset)`: dest lists the new
 * chars with a change each (0: replaces the next old char; +1: inserted, takes the
 * alignment of the byte before; -k: replaces the next old char and removes k more);
 * initial_offset old chars are dropped first (tokenizers/src/tokenizer/normalizer.rs).
 * Unicode normalization follows the unicode-normalization-alignments crate: full
 * decomposition, stable sort of each run of non-starters by combining class, then
 * canonical composition whose composed char carries `k.change + change - 1`.
 * Precompiled is SentencePiece's charsmap (darts-clone double array + NUL-separated
 * replacement strings) applied per extended grapheme cluster as spm_precompiled does. */
#include "sutra-tokenizer-private.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---------------------------------------------------------------------------------------
 * Scratch for (cp, change) lists */

static void
tscratch (SutraTokCtx *c, size_t n)
{
  if (n <= c->tcap)
    return;
  size_t cap = c->tcap ? c->tcap : 256;
  while (cap < n)
    cap *= 2;
  c->cps = sutra_xrealloc (c->cps, cap * sizeof *c->cps);
  c->chg = sutra_xrealloc (c->chg, cap * sizeof *c->chg);
  c->tcap = cap;
}

/* Copies the alignments of p's bytes [a, b) to dst (identity pieces computed). */
static void
copy_aligns (const SutraPiece *p, size_t a, size_t b, SutraTokAlign *dst)
{
  if (p->al) {
    memcpy (dst, p->al + a, (b - a) * sizeof *dst);
    return;
  }
  size_t i = a;
  while (i < b) {
    SutraTokAlign al = sutra_piece_align (p, i);
    /* all bytes of the char share al; clip to [a, b) */
    size_t ce = al.e - p->ostart;
    for (; i < ce && i < b; i++)
      *dst++ = al;
  }
}

/* ---------------------------------------------------------------------------------------
 * transform */

void
sutra_piece_transform (SutraTokCtx *c, SutraPiece *p, const uint32_t *cps, const int32_t *chg,
                       size_t n, size_t initial_offset)
{
  char *out = sutra_tok_arena_alloc (&c->arena, n * 4 + 1);
  SutraTokAlign *al = sutra_tok_arena_alloc (&c->arena, (n * 4 + 1) * sizeof *al);
  size_t rp = 0;   /* read position (bytes) in the old normalized string */
  for (size_t k = 0; k < initial_offset && rp < p->len; k++)
    rp += sutra_utf8_len_at (p->s + rp);
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int32_t ch = chg[i];
    SutraTokAlign a;
    if (ch > 0)   /* inserted: shares the alignment of the previous byte */
      a = rp < 1 ? (SutraTokAlign) { (uint32_t) p->ostart, (uint32_t) p->ostart }
                 : sutra_piece_align (p, rp - 1);
    else if (rp < p->len)
      a = sutra_piece_align (p, rp);
    else   /* HF would index out of bounds here; keep a sane value */
      a = (SutraTokAlign) { (uint32_t) p->oend, (uint32_t) p->oend };
    if (ch <= 0 && rp < p->len)
      rp += sutra_utf8_len_at (p->s + rp);
    for (int32_t k = 0; ch < 0 && k < -ch && rp < p->len; k++)
      rp += sutra_utf8_len_at (p->s + rp);
    size_t w = sutra_utf8_encode (cps[i], out + o);
    for (size_t j = 0; j < w; j++)
      al[o + j] = a;
    o += w;
  }
  p->s = out;
  p->len = o;
  p->al = al;
}

/* Loads p's chars into c->cps with change 0; returns the count. */
static size_t
load_chars (SutraTokCtx *c, const SutraPiece *p)
{
  tscratch (c, p->len + 1);
  size_t n = 0;
  for (size_t i = 0; i < p->len;) {
    size_t adv;
    c->cps[n] = sutra_utf8_decode (p->s + i, &adv);
    c->chg[n++] = 0;
    i += adv;
  }
  return n;
}

static bool
is_ascii (const char *s, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy (&w, s + i, 8);
    if (w & 0x8080808080808080ULL)
      return false;
  }
  for (; i < n; i++)
    if ((unsigned char) s[i] >= 0x80)
      return false;
  return true;
}

void
sutra_piece_prepend (SutraTokCtx *c, SutraPiece *p, const char *s, size_t n)
{
  if (p->len == 0 || n == 0)
    return;
  /* HF prepend = transform_range(first char, [(s0,0), (s1,+1)..., (first,+1)]): every
   * prepended byte takes the first char's alignment; the rest is unchanged. */
  char *out = sutra_tok_arena_alloc (&c->arena, n + p->len);
  SutraTokAlign *al = sutra_tok_arena_alloc (&c->arena, (n + p->len) * sizeof *al);
  SutraTokAlign a0 = sutra_piece_align (p, 0);
  memcpy (out, s, n);
  memcpy (out + n, p->s, p->len);
  for (size_t i = 0; i < n; i++)
    al[i] = a0;
  copy_aligns (p, 0, p->len, al + n);
  p->s = out;
  p->len += n;
  p->al = al;
}

/* ---------------------------------------------------------------------------------------
 * replace (HF NormalizedString::replace): gaps copied, each match replaced by `content`
 * whose chars all take the alignment of the match's last byte. */

typedef struct {
  char *out;
  SutraTokAlign *al;
  size_t o, last;
} ReplBuf;

static void
repl_gap (ReplBuf *r, const SutraPiece *p, size_t upto)
{
  memcpy (r->out + r->o, p->s + r->last, upto - r->last);
  copy_aligns (p, r->last, upto, r->al + r->o);
  r->o += upto - r->last;
}

static void
repl_match (ReplBuf *r, const SutraPiece *p, size_t ms, size_t me, const char *content,
            size_t clen)
{
  repl_gap (r, p, ms);
  SutraTokAlign a = me < 1 ? (SutraTokAlign) { (uint32_t) p->ostart, (uint32_t) p->ostart }
                           : sutra_piece_align (p, me - 1);
  memcpy (r->out + r->o, content, clen);
  for (size_t j = 0; j < clen; j++)
    r->al[r->o + j] = a;
  r->o += clen;
  r->last = me;
}

void
sutra_piece_replace_char (SutraTokCtx *c, SutraPiece *p, uint32_t from, const char *content,
                          size_t clen)
{
  char fb[4];
  size_t fl = sutra_utf8_encode (from, fb);
  /* count matches first (most pieces have none or a few) */
  size_t count = 0;
  for (size_t i = 0; i + fl <= p->len; i++)
    if (memcmp (p->s + i, fb, fl) == 0) {
      count++;
      i += fl - 1;
    }
  if (count == 0)
    return;
  size_t cap = p->len + count * clen;
  ReplBuf r = { sutra_tok_arena_alloc (&c->arena, cap + 1),
                sutra_tok_arena_alloc (&c->arena, (cap + 1) * sizeof (SutraTokAlign)), 0, 0 };
  for (size_t i = 0; i + fl <= p->len;) {
    if (memcmp (p->s + i, fb, fl) == 0) {
      repl_match (&r, p, i, i + fl, content, clen);
      i += fl;
    } else
      i++;
  }
  repl_gap (&r, p, p->len);
  p->s = r.out;
  p->len = r.o;
  p->al = r.al;
}

bool
sutra_piece_replace_pattern (SutraTokCtx *c, SutraPiece *p, const SutraTokPattern *pat,
                             const char *content, size_t clen)
{
  if (p->len == 0)
    return true;   /* find_matches("") -> one non-match: nothing replaced */
  /* first pass: count matches to size the output */
  size_t pos = 0, last = SIZE_MAX, ms, me, count = 0;
  while (sutra_tok_regex_next (c, pat->slot, p->s, p->len, &pos, &last, &ms, &me))
    count++;
  if (c->status != SUTRA_OK)
    return false;
  if (count == 0)
    return true;
  size_t cap = p->len + count * clen;
  ReplBuf r = { sutra_tok_arena_alloc (&c->arena, cap + 1),
                sutra_tok_arena_alloc (&c->arena, (cap + 1) * sizeof (SutraTokAlign)), 0, 0 };
  pos = 0;
  last = SIZE_MAX;
  while (sutra_tok_regex_next (c, pat->slot, p->s, p->len, &pos, &last, &ms, &me))
    repl_match (&r, p, ms, me, content, clen);
  if (c->status != SUTRA_OK)
    return false;
  repl_gap (&r, p, p->len);
  p->s = r.out;
  p->len = r.o;
  p->al = r.al;
  return true;
}

/* ---------------------------------------------------------------------------------------
 * filter / map (HF NormalizedString::filter / ::map) */

typedef bool (*KeepFn) (uint32_t c);

static void
piece_filter (SutraTokCtx *c, SutraPiece *p, KeepFn drop)
{
  /* quick scan: anything to drop? */
  bool any = false;
  for (size_t i = 0; i < p->len && !any;) {
    size_t adv;
    uint32_t cp = sutra_utf8_decode (p->s + i, &adv);
    any = drop (cp);
    i += adv;
  }
  if (!any)
    return;
  tscratch (c, p->len + 1);
  size_t n = 0, removed = 0, removed_start = 0;
  bool have_last = false;
  uint32_t last = 0;
  for (size_t i = 0; i < p->len;) {
    size_t adv;
    uint32_t cp = sutra_utf8_decode (p->s + i, &adv);
    i += adv;
    if (!drop (cp)) {
      if (have_last) {
        c->cps[n] = last;
        c->chg[n++] = -(int32_t) removed;
      } else
        removed_start = removed;
      last = cp;
      have_last = true;
      removed = 0;
    } else
      removed++;
  }
  if (have_last) {
    c->cps[n] = last;
    c->chg[n++] = -(int32_t) removed;
  }
  sutra_piece_transform (c, p, c->cps, c->chg, n, removed_start);
}

typedef uint32_t (*MapFn) (uint32_t c);

static void
piece_map (SutraTokCtx *c, SutraPiece *p, MapFn map)
{
  size_t n = load_chars (c, p);
  bool changed = false;
  for (size_t i = 0; i < n; i++) {
    uint32_t m = map (c->cps[i]);
    changed |= m != c->cps[i];
    c->cps[i] = m;
  }
  if (changed)
    sutra_piece_transform (c, p, c->cps, c->chg, n, 0);
}

/* ---------------------------------------------------------------------------------------
 * Unicode normalization forms */

static inline int
ccc (uint32_t cp)
{
  return cp < 0x300 ? 0 : utf8proc_get_property ((utf8proc_int32_t) cp)->combining_class;
}

/* Primary composite of (a, b), or 0. */
static uint32_t
compose_pair (uint32_t a, uint32_t b)
{
  utf8proc_int32_t buf[2] = { (utf8proc_int32_t) a, (utf8proc_int32_t) b };
  if (utf8proc_normalize_utf32 (buf, 2, UTF8PROC_COMPOSE) == 1)
    return (uint32_t) buf[0];
  return 0;
}

typedef struct {
  uint32_t *cp;
  int32_t *chg;
  uint8_t *cc;
  size_t n, cap;
} CharBuf;

static void
cb_push (CharBuf *b, uint32_t cp, int32_t chg, uint8_t cc)
{
  if (b->n == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 64;
    b->cp = sutra_xrealloc (b->cp, b->cap * sizeof *b->cp);
    b->chg = sutra_xrealloc (b->chg, b->cap * sizeof *b->chg);
    b->cc = sutra_xrealloc (b->cc, b->cap);
  }
  b->cp[b->n] = cp;
  b->chg[b->n] = chg;
  b->cc[b->n++] = cc;
}

static void
cb_free (CharBuf *b)
{
  free (b->cp);
  free (b->chg);
  free (b->cc);
}

/* Stable insertion sort of b[from..n) by combining class (runs are short). */
static void
sort_pending (CharBuf *b, size_t from)
{
  for (size_t i = from + 1; i < b->n; i++) {
    uint32_t cp = b->cp[i];
    int32_t ch = b->chg[i];
    uint8_t cc = b->cc[i];
    size_t j = i;
    while (j > from && b->cc[j - 1] > cc) {
      b->cp[j] = b->cp[j - 1];
      b->chg[j] = b->chg[j - 1];
      b->cc[j] = b->cc[j - 1];
      j--;
    }
    b->cp[j] = cp;
    b->chg[j] = ch;
    b->cc[j] = cc;
  }
}

static void
decompose (const SutraPiece *p, bool compat, CharBuf *out)
{
  size_t ready = 0;
  for (size_t i = 0; i < p->len;) {
    size_t adv;
    uint32_t cp = sutra_utf8_decode (p->s + i, &adv);
    i += adv;
    utf8proc_int32_t d[32];
    utf8proc_ssize_t nd;
    if (cp < 0xA0)   /* nothing below U+00A0 decomposes (canonically or compatibly) */
      nd = 0;
    else {
      int bc = 0;
      nd = utf8proc_decompose_char ((utf8proc_int32_t) cp, d, 32,
                                    UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0), &bc);
    }
    if (nd <= 0 || nd > 32) {
      d[0] = (utf8proc_int32_t) cp;
      nd = 1;
    }
    for (utf8proc_ssize_t k = 0; k < nd; k++) {
      uint32_t dc = (uint32_t) d[k];
      int cl = ccc (dc);
      if (cl == 0) {
        sort_pending (out, ready);
        ready = out->n;
      }
      cb_push (out, dc, k == 0 ? 0 : 1, (uint8_t) cl);
    }
  }
  sort_pending (out, ready);
}

/* unicode-normalization-alignments Recompositions, over the decomposed buffer. */
static void
recompose (const CharBuf *in, CharBuf *out)
{
  bool have_k = false;
  uint32_t kc = 0;
  int32_t kchg = 0;
  int last_ccc = -1;             /* -1: None */
  CharBuf buf = { 0 };
  for (size_t i = 0; i < in->n; i++) {
    uint32_t ch = in->cp[i];
    int32_t change = in->chg[i];
    int cl = in->cc[i];
    if (!have_k) {
      if (cl != 0) {
        cb_push (out, ch, change, (uint8_t) cl);
        continue;
      }
      have_k = true;
      kc = ch;
      kchg = change;
      continue;
    }
    if (last_ccc < 0) {
      uint32_t r = compose_pair (kc, ch);
      if (r) {
        kc = r;
        kchg = kchg + change - 1;
        continue;
      }
      if (cl == 0) {
        cb_push (out, kc, kchg, 0);
        kc = ch;
        kchg = change;
        continue;
      }
      cb_push (&buf, ch, change, (uint8_t) cl);
      last_ccc = cl;
      continue;
    }
    if (last_ccc >= cl) {   /* ch is blocked from the composee */
      if (cl == 0) {
        cb_push (out, kc, kchg, 0);
        for (size_t j = 0; j < buf.n; j++)
          cb_push (out, buf.cp[j], buf.chg[j], buf.cc[j]);
        buf.n = 0;
        kc = ch;
        kchg = change;
        last_ccc = -1;
        continue;
      }
      cb_push (&buf, ch, change, (uint8_t) cl);
      last_ccc = cl;
      continue;
    }
    uint32_t r = compose_pair (kc, ch);
    if (r) {
      kc = r;
      kchg = kchg + change - 1;
      continue;
    }
    cb_push (&buf, ch, change, (uint8_t) cl);
    last_ccc = cl;
  }
  if (have_k)
    cb_push (out, kc, kchg, 0);
  for (size_t j = 0; j < buf.n; j++)
    cb_push (out, buf.cp[j], buf.chg[j], buf.cc[j]);
  cb_free (&buf);
}

static void
piece_unicode_normalize (SutraTokCtx *c, SutraPiece *p, bool compat, bool compose)
{
  if (is_ascii (p->s, p->len))
    return;   /* ASCII is invariant under all four forms */
  CharBuf d = { 0 }, r = { 0 };
  decompose (p, compat, &d);
  CharBuf *res = &d;
  if (compose) {
    recompose (&d, &r);
    res = &r;
  }
  /* no-op check: same chars, all changes 0 */
  bool same = true;
  size_t i = 0, k = 0;
  for (; i < p->len && k < res->n; k++) {
    size_t adv;
    uint32_t cp = sutra_utf8_decode (p->s + i, &adv);
    i += adv;
    if (cp != res->cp[k] || res->chg[k] != 0) {
      same = false;
      break;
    }
  }
  if (!same || i != p->len || k != res->n)
    sutra_piece_transform (c, p, res->cp, res->chg, res->n, 0);
  cb_free (&d);
  cb_free (&r);
}

/* ---------------------------------------------------------------------------------------
 * Lowercase (Rust char::to_lowercase, per char: U+0130 is the one multi-char mapping) */

static void
piece_lowercase (SutraTokCtx *c, SutraPiece *p)
{
  bool changed = false;
  tscratch (c, p->len * 2 + 1);
  size_t n = 0;
  for (size_t i = 0; i < p->len;) {
    size_t adv;
    uint32_t cp = sutra_utf8_decode (p->s + i, &adv);
    i += adv;
    if (cp == 0x130) {
      c->cps[n] = 'i';
      c->chg[n++] = 0;
      c->cps[n] = 0x307;
      c->chg[n++] = 1;
      changed = true;
      continue;
    }
    uint32_t l = cp < 0x80 ? (cp >= 'A' && cp <= 'Z' ? cp + 32 : cp)
                           : (uint32_t) utf8proc_tolower ((utf8proc_int32_t) cp);
    changed |= l != cp;
    c->cps[n] = l;
    c->chg[n++] = 0;
  }
  if (changed)
    sutra_piece_transform (c, p, c->cps, c->chg, n, 0);
}

/* ---------------------------------------------------------------------------------------
 * Strip (HF lrstrip) */

static void
piece_strip (SutraTokCtx *c, SutraPiece *p, bool left, bool right)
{
  size_t n = load_chars (c, p);
  size_t lead = 0, trail = 0;
  if (left)
    while (lead < n && sutra_uc_is_whitespace (c->cps[lead]))
      lead++;
  if (right)
    while (trail < n && sutra_uc_is_whitespace (c->cps[n - 1 - trail]))
      trail++;
  if (lead == 0 && trail == 0)
    return;
  if (lead + trail > n)   /* all whitespace, stripped from both ends */
    trail = n - lead;
  /* kept chars [lead, n - trail); trailing removals only drop data at the end, so the
   * change on the last kept char does not affect any alignment */
  sutra_piece_transform (c, p, c->cps + lead, c->chg + lead, n - trail - lead, lead);
}

/* ---------------------------------------------------------------------------------------
 * Bert, Nmt, StripAccents predicates */

static bool
bert_drop (uint32_t cp)
{
  if (cp == 0 || cp == 0xFFFD)
    return true;
  if (cp == '\t' || cp == '\n' || cp == '\r')
    return false;
  if (cp >= 0x20 && cp < 0x7F)
    return false;
  return sutra_uc_is_other (cp);
}

static uint32_t
bert_space (uint32_t cp)
{
  return (cp == '\t' || cp == '\n' || cp == '\r' || sutra_uc_is_whitespace (cp)) ? ' ' : cp;
}

static bool
nmt_drop (uint32_t cp)
{
  return (cp >= 0x01 && cp <= 0x08) || cp == 0x0B || (cp >= 0x0E && cp <= 0x1F) || cp == 0x7F
         || cp == 0x8F || cp == 0x9F;
}

static uint32_t
nmt_map (uint32_t cp)
{
  switch (cp) {
  case 0x09: case 0x0A: case 0x0C: case 0x0D: case 0x1680: case 0x2028: case 0x2029:
  case 0x2581: case 0xFEFF: case 0xFFFD:
    return ' ';
  default:
    return (cp >= 0x200B && cp <= 0x200F) ? ' ' : cp;
  }
}

static bool
drop_mark (uint32_t cp)
{
  return sutra_uc_is_mark (cp);
}

static bool
drop_mn (uint32_t cp)
{
  return sutra_uc_is_mark_nonspacing (cp);
}

static void
piece_chinese (SutraTokCtx *c, SutraPiece *p)
{
  bool any = false;
  for (size_t i = 0; i < p->len && !any;) {
    size_t adv;
    any = sutra_uc_is_chinese (sutra_utf8_decode (p->s + i, &adv));
    i += adv;
  }
  if (!any)
    return;
  tscratch (c, p->len * 3 + 1);
  size_t n = 0;
  for (size_t i = 0; i < p->len;) {
    size_t adv;
    uint32_t cp = sutra_utf8_decode (p->s + i, &adv);
    i += adv;
    if (sutra_uc_is_chinese (cp)) {
      c->cps[n] = ' ';
      c->chg[n++] = 0;
      c->cps[n] = cp;
      c->chg[n++] = 1;
      c->cps[n] = ' ';
      c->chg[n++] = 1;
    } else {
      c->cps[n] = cp;
      c->chg[n++] = 0;
    }
  }
  sutra_piece_transform (c, p, c->cps, c->chg, n, 0);
}

/* ---------------------------------------------------------------------------------------
 * ByteLevel byte -> char map (GPT-2 bytes_to_unicode) */

static uint32_t byte_char[256];
static pthread_once_t byte_once = PTHREAD_ONCE_INIT;

static void
byte_init (void)
{
  int n = 0;
  for (int b = 0; b < 256; b++) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    byte_char[b] = printable ? (uint32_t) b : (uint32_t) (256 + n++);
  }
}

const uint32_t *sutra_tok_byte_chars (void);
const uint32_t *
sutra_tok_byte_chars (void)
{
  pthread_once (&byte_once, byte_init);
  return byte_char;
}

void sutra_piece_byte_map (SutraTokCtx *c, SutraPiece *p);
void
sutra_piece_byte_map (SutraTokCtx *c, SutraPiece *p)
{
  /* Each input char becomes one char per byte; the first replaces it (change 0), the
   * others are inserted (+1). All of them therefore align to the whole input char. */
  const uint32_t *bc = sutra_tok_byte_chars ();
  char *out = sutra_tok_arena_alloc (&c->arena, p->len * 2 + 1);
  SutraTokAlign *al = sutra_tok_arena_alloc (&c->arena, (p->len * 2 + 1) * sizeof *al);
  size_t o = 0;
  for (size_t i = 0; i < p->len;) {
    size_t cl = sutra_utf8_len_at (p->s + i);
    SutraTokAlign a = sutra_piece_align (p, i);
    for (size_t j = 0; j < cl; j++) {
      size_t w = sutra_utf8_encode (bc[(unsigned char) p->s[i + j]], out + o);
      for (size_t k = 0; k < w; k++)
        al[o + k] = a;
      o += w;
    }
    i += cl;
  }
  p->s = out;
  p->len = o;
  p->al = al;
}

/* ---------------------------------------------------------------------------------------
 * Precompiled charsmap */

SutraStatus
sutra_tok_charsmap_parse (SutraTokCharsmap *m, const uint8_t *data, size_t n)
{
  memset (m, 0, sizeof *m);
  if (n < 4)
    return SUTRA_ERR_FORMAT;
  uint32_t trie_size = (uint32_t) data[0] | ((uint32_t) data[1] << 8) | ((uint32_t) data[2] << 16)
                       | ((uint32_t) data[3] << 24);
  size_t units = trie_size / 4;
  if (units > (n - 4) / 4 || units == 0)
    return SUTRA_ERR_FORMAT;
  m->array = sutra_xmalloc (units * sizeof *m->array);
  for (size_t i = 0; i < units; i++) {
    const uint8_t *u = data + 4 + i * 4;
    m->array[i] = (uint32_t) u[0] | ((uint32_t) u[1] << 8) | ((uint32_t) u[2] << 16)
                  | ((uint32_t) u[3] << 24);
  }
  m->n_units = units;
  size_t off = 4 + units * 4;
  m->normalized_len = n - off;
  m->normalized = sutra_xmalloc (m->normalized_len + 1);
  memcpy (m->normalized, data + off, m->normalized_len);
  m->normalized[m->normalized_len] = '\0';
  if (sutra_utf8_valid_prefix (m->normalized, m->normalized_len) != m->normalized_len) {
    sutra_tok_charsmap_free (m);
    return SUTRA_ERR_FORMAT;
  }
  return SUTRA_OK;
}

void
sutra_tok_charsmap_free (SutraTokCharsmap *m)
{
  free (m->array);
  free (m->normalized);
  memset (m, 0, sizeof *m);
}

/* darts-clone unit fields (spm_precompiled ArrayUnit) */
static inline bool u_has_leaf (uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t u_value (uint32_t u) { return u & ((1u << 31) - 1); }
static inline uint32_t u_label (uint32_t u) { return u & ((1u << 31) | 0xFF); }
static inline size_t u_offset (uint32_t u) { return (size_t) (u >> 10) << ((u & (1u << 9)) >> 6); }

/* spm_precompiled Precompiled::transform: the FIRST (shortest) prefix of chunk found in
 * the trie selects the replacement for the whole chunk. */
static const char *
charsmap_lookup (const SutraTokCharsmap *m, const char *chunk, size_t n, size_t *out_len)
{
  size_t pos = 0;
  uint32_t unit = m->array[0];
  pos ^= u_offset (unit);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char) chunk[i];
    if (ch == 0)
      break;
    pos ^= ch;
    if (pos >= m->n_units)
      return NULL;
    unit = m->array[pos];
    if (u_label (unit) != ch)
      return NULL;
    pos ^= u_offset (unit);
    if (u_has_leaf (unit)) {
      if (pos >= m->n_units)
        return NULL;
      size_t idx = u_value (m->array[pos]);
      if (idx > m->normalized_len)
        return NULL;
      if (idx < m->normalized_len && ((unsigned char) m->normalized[idx] & 0xC0) == 0x80)
        return NULL;   /* not on a char boundary (Rust would panic) */
      size_t e = idx;
      while (e < m->normalized_len && m->normalized[e] != 0)
        e++;
      *out_len = e - idx;
      return m->normalized + idx;
    }
  }
  return NULL;
}

/* HF precompiled.rs `replace`: appends the new chars with change 0, then marks the last
 * `diff` of them +1 (growth) or adds `diff` to the very last change (shrink; this may be
 * an earlier grapheme's entry when the replacement is empty). */
static void
pc_replace (SutraTokCtx *c, size_t *n, size_t old_chars, const char *rep, size_t rep_len)
{
  size_t new_chars = 0;
  for (size_t i = 0; i < rep_len;) {
    size_t adv;
    uint32_t cp = sutra_utf8_decode (rep + i, &adv);
    i += adv;
    c->cps[*n] = cp;
    c->chg[(*n)++] = 0;
    new_chars++;
  }
  long diff = (long) new_chars - (long) old_chars;
  if (diff > 0) {
    for (long k = 0; k < diff && (size_t) k < *n; k++)
      c->chg[*n - 1 - (size_t) k] = 1;
  } else if (diff < 0 && *n > 0)
    c->chg[*n - 1] += (int32_t) diff;
}

static void
piece_precompiled (SutraTokCtx *c, SutraPiece *p, const SutraTokCharsmap *m)
{
  if (!m->n_units || p->len == 0)
    return;
  tscratch (c, p->len + 16);
  size_t n = 0;
  bool modified = false;
  utf8proc_int32_t state = 0;
  size_t gs = 0;   /* grapheme start */
  size_t adv;
  uint32_t prev = sutra_utf8_decode (p->s, &adv);
  size_t i = adv;
  for (;;) {
    bool end = i >= p->len;
    uint32_t cur = 0;
    size_t cadv = 0;
    if (!end)
      cur = sutra_utf8_decode (p->s + i, &cadv);
    if (end || utf8proc_grapheme_break_stateful ((utf8proc_int32_t) prev, (utf8proc_int32_t) cur,
                                                 &state)) {
      /* grapheme [gs, i) */
      const char *g = p->s + gs;
      size_t glen = i - gs;
      size_t gchars = 0;
      for (size_t k = 0; k < glen; k += sutra_utf8_len_at (g + k))
        gchars++;
      size_t rl;
      const char *rep = glen < 6 ? charsmap_lookup (m, g, glen, &rl) : NULL;
      if (rep) {
        modified = true;
        tscratch (c, n + rl + 1);   /* a replacement has at most rl chars */
        pc_replace (c, &n, gchars, rep, rl);
      } else {
        tscratch (c, n + gchars + 1);
        for (size_t k = 0; k < glen;) {
          size_t cl = sutra_utf8_len_at (g + k);
          const char *r2 = charsmap_lookup (m, g + k, cl, &rl);
          if (r2) {
            modified = true;
            tscratch (c, n + rl + (glen - k) + 1);
            pc_replace (c, &n, 1, r2, rl);
          } else {
            size_t a2;
            c->cps[n] = sutra_utf8_decode (g + k, &a2);
            c->chg[n++] = 0;
          }
          k += cl;
        }
      }
      gs = i;
    }
    if (end)
      break;
    prev = cur;
    i += cadv;
  }
  if (modified)
    sutra_piece_transform (c, p, c->cps, c->chg, n, 0);
}

/* ---------------------------------------------------------------------------------------
 * Dispatch */

static bool
apply_norm (SutraTokCtx *c, SutraPiece *p, const SutraTokNorm *nm)
{
  switch (nm->kind) {
  case SUTRA_NORM_NFC:
    piece_unicode_normalize (c, p, false, true);
    break;
  case SUTRA_NORM_NFD:
    piece_unicode_normalize (c, p, false, false);
    break;
  case SUTRA_NORM_NFKC:
    piece_unicode_normalize (c, p, true, true);
    break;
  case SUTRA_NORM_NFKD:
    piece_unicode_normalize (c, p, true, false);
    break;
  case SUTRA_NORM_LOWERCASE:
    piece_lowercase (c, p);
    break;
  case SUTRA_NORM_STRIP_ACCENTS:
    piece_filter (c, p, drop_mark);
    break;
  case SUTRA_NORM_BERT:
    if (nm->clean_text) {
      piece_filter (c, p, bert_drop);
      piece_map (c, p, bert_space);
    }
    if (nm->handle_chinese)
      piece_chinese (c, p);
    if (nm->strip_accents) {
      piece_unicode_normalize (c, p, false, false);
      piece_filter (c, p, drop_mn);
    }
    if (nm->lowercase)
      piece_lowercase (c, p);
    break;
  case SUTRA_NORM_PREPEND:
    sutra_piece_prepend (c, p, nm->str, nm->str_len);
    break;
  case SUTRA_NORM_REPLACE:
    return sutra_piece_replace_pattern (c, p, &nm->pat, nm->str, nm->str_len);
  case SUTRA_NORM_STRIP:
    piece_strip (c, p, nm->strip_left, nm->strip_right);
    break;
  case SUTRA_NORM_NMT:
    piece_filter (c, p, nmt_drop);
    piece_map (c, p, nmt_map);
    break;
  case SUTRA_NORM_PRECOMPILED:
    piece_precompiled (c, p, &nm->cmap);
    break;
  case SUTRA_NORM_BYTELEVEL:
    if (p->len)
      sutra_piece_byte_map (c, p);
    break;
  }
  return c->status == SUTRA_OK;
}

bool
sutra_tok_normalize (SutraTokCtx *c, SutraPiece *p)
{
  for (size_t i = 0; i < c->tok->n_norms; i++)
    if (!apply_norm (c, p, &c->tok->norms[i]))
      return false;
  return true;
}

char *
sutra_tok_normalize_string (const SutraTokenizer *tok, const char *s, size_t n, size_t *out_len,
                            SutraError *err)
{
  SutraTokCtx c;
  sutra_tok_ctx_init (&c, tok, err);
  SutraPiece p = { s, n, NULL, 0, n };
  char *out = NULL;
  if (sutra_tok_normalize (&c, &p)) {
    out = sutra_xstrndup (p.s, p.len);
    *out_len = p.len;
  }
  sutra_tok_ctx_clear (&c);
  return out;
}
