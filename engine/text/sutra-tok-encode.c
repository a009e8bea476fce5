/* sutra-tok-encode.c: the encode pipeline of HF tokenizers (TokenizerImpl::encode_single_
 * sequence): AddedVocabulary::extract_and_normalize (added tokens matched leftmost-longest
 * on the raw text, then the normalizer on each remaining piece, then normalized added
 * tokens on the normalized text; lstrip / rstrip / single_word as in find_matches),
 * pre-tokenizer + model (sutra-pretok.c), then the post-processors (TemplateProcessing,
 * ByteLevel / Roberta offset trimming, Roberta / Bert special tokens).
 * Offsets are computed in bytes of the (UTF-8 sanitized) input, then mapped back to the
 * caller's bytes when the input needed U+FFFD replacement. */
#include "sutra-tokenizer-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Context */

void
sutra_tok_ctx_init (SutraTokCtx *c, const SutraTokenizer *tok, SutraError *err)
{
  memset (c, 0, sizeof *c);
  c->tok = tok;
  c->err = err;
  c->status = SUTRA_OK;
  c->parse_special = true;
}

void
sutra_tok_ctx_clear (SutraTokCtx *c)
{
  if (c->md)
    pcre2_match_data_free (c->md);
  sutra_tok_arena_free (&c->arena);
  free (c->cps);
  free (c->chg);
  free (c->ids);
  free (c->starts);
  free (c->ends);
  free (c->lead);
  free (c->trail);
  for (int i = 0; i < 4; i++)
    free (c->scr[i]);
  memset (c, 0, sizeof *c);
}

void *
sutra_tok_scratch (SutraTokCtx *c, int which, size_t n)
{
  if (n > c->scr_cap[which]) {
    size_t cap = c->scr_cap[which] ? c->scr_cap[which] : 256;
    while (cap < n)
      cap *= 2;
    c->scr[which] = sutra_xrealloc (c->scr[which], cap);
    c->scr_cap[which] = cap;
  }
  return c->scr[which];
}

SutraStatus
sutra_tok_fail (SutraTokCtx *c, SutraStatus st, const char *fmt, ...)
{
  if (c->status != SUTRA_OK)
    return c->status;
  char msg[SUTRA_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  c->status = st;
  sutra_error_set (c->err, st, "%s: %s", c->tok->name, msg);
  return st;
}

void
sutra_tok_trim_counts (const char *s, size_t n, uint16_t *lead, uint16_t *trail)
{
  /* HF byte_level::process_offsets: chars equal to 'Ġ' (the byte-level space) or
   * whitespace, counted in chars from each end */
  size_t l = 0, t = 0, i = 0;
  while (i < n) {
    size_t adv;
    uint32_t cp = sutra_utf8_decode (s + i, &adv);
    if (cp != 0x120 && !sutra_uc_is_whitespace (cp))
      break;
    l++;
    i += adv;
  }
  size_t e = n;
  while (e > 0) {
    size_t b = e - 1;
    while (b > 0 && ((unsigned char) s[b] & 0xC0) == 0x80)
      b--;
    size_t adv;
    uint32_t cp = sutra_utf8_decode (s + b, &adv);
    if (cp != 0x120 && !sutra_uc_is_whitespace (cp))
      break;
    t++;
    e = b;
  }
  *lead = (uint16_t) (l > 65535 ? 65535 : l);
  *trail = (uint16_t) (t > 65535 ? 65535 : t);
}

static void
out_reserve (SutraTokCtx *c, size_t n)
{
  if (n <= c->cap)
    return;
  size_t cap = c->cap ? c->cap : 64;
  while (cap < n)
    cap *= 2;
  c->ids = sutra_xrealloc (c->ids, cap * sizeof *c->ids);
  c->starts = sutra_xrealloc (c->starts, cap * sizeof *c->starts);
  c->ends = sutra_xrealloc (c->ends, cap * sizeof *c->ends);
  c->lead = sutra_xrealloc (c->lead, cap * sizeof *c->lead);
  c->trail = sutra_xrealloc (c->trail, cap * sizeof *c->trail);
  c->cap = cap;
}

void
sutra_tok_emit (SutraTokCtx *c, int32_t id, size_t start, size_t end, const char *value,
                size_t vlen)
{
  out_reserve (c, c->n + 1);
  size_t i = c->n++;
  c->ids[i] = id;
  c->starts[i] = start;
  c->ends[i] = end;
  c->lead[i] = c->trail[i] = 0;
  if (c->tok->needs_trim) {
    if (value)
      sutra_tok_trim_counts (value, vlen, &c->lead[i], &c->trail[i]);
    else if (id >= 0 && (size_t) id < c->tok->n_vocab) {
      c->lead[i] = c->tok->trim_lead[id];
      c->trail[i] = c->tok->trim_trail[id];
    }
  }
}

void
sutra_tok_emit_piece (SutraTokCtx *c, const SutraPiece *p, int32_t id, size_t a, size_t b,
                      const char *value, size_t vlen)
{
  size_t s, e;
  if (a >= b) {   /* NormalizedString::convert_offsets: an empty range maps to itself */
    s = p->ostart + a;
    e = p->ostart + b;
  } else if (b <= p->len) {
    s = sutra_piece_align (p, a).s;
    e = sutra_piece_align (p, b - 1).e;
  } else {   /* out of range: HF keeps the raw offsets */
    s = a;
    e = b;
  }
  sutra_tok_emit (c, id, s, e, value, vlen);
}

/* ---------------------------------------------------------------------------------------
 * Added-token tries */

void
sutra_tok_trie_build (SutraTokTrie *t, const SutraTokenizer *tok, bool normalized)
{
  memset (t, 0, sizeof *t);
  sutra_u64map_init (&t->edges, 64);
  t->cap_nodes = 64;
  t->term = sutra_xmalloc (t->cap_nodes * sizeof *t->term);
  t->term[0] = -1;
  t->n_nodes = 1;
  t->empty = true;
  for (size_t i = 0; i < tok->n_added; i++) {
    const SutraTokAdded *a = &tok->added[i];
    /* HF builds the tries from added_tokens_map_r (id -> token): a token whose id was
     * taken over by a later one is never matched */
    if (a->normalized != normalized || tok->added_by_id[a->id] != (int32_t) i)
      continue;
    const char *pat = a->norm ? a->norm : a->content;
    size_t len = a->norm ? a->norm_len : a->len;
    if (len == 0)
      continue;
    uint64_t node = 0;
    for (size_t k = 0; k < len; k++) {
      uint64_t key = (node << 8) | (unsigned char) pat[k], child;
      if (!sutra_u64map_get (&t->edges, key, &child)) {
        if (t->n_nodes == t->cap_nodes) {
          t->cap_nodes *= 2;
          t->term = sutra_xrealloc (t->term, t->cap_nodes * sizeof *t->term);
        }
        child = t->n_nodes++;
        t->term[child] = -1;
        sutra_u64map_put (&t->edges, key, child);
      }
      node = child;
    }
    t->term[node] = (int32_t) i;
    t->first[(unsigned char) pat[0]] = 1;
    t->empty = false;
  }
}

void
sutra_tok_trie_free (SutraTokTrie *t)
{
  sutra_u64map_free (&t->edges);
  free (t->term);
  memset (t, 0, sizeof *t);
}

/* Longest token starting at s[i]; returns its length (0: none) and added index. */
static size_t
trie_longest (const SutraTokTrie *t, const char *s, size_t n, size_t i, int32_t *idx)
{
  uint64_t node = 0;
  size_t best = 0;
  for (size_t k = i; k < n; k++) {
    uint64_t child;
    if (!sutra_u64map_get (&t->edges, (node << 8) | (unsigned char) s[k], &child))
      break;
    node = child;
    if (t->term[node] >= 0) {
      best = k + 1 - i;
      *idx = t->term[node];
    }
  }
  return best;
}

static uint32_t
last_char (const char *s, size_t end)
{
  size_t b = end - 1;
  while (b > 0 && ((unsigned char) s[b] & 0xC0) == 0x80)
    b--;
  size_t adv;
  return sutra_utf8_decode (s + b, &adv);
}

/* AddedVocabulary::find_matches as an iterator: yields (a, b, idx) with idx -1 for the
 * text between tokens. */
typedef struct {
  const SutraTokTrie *t;
  const char *s;
  size_t n;
  size_t i;             /* scan position (the raw match end, as daachorse continues) */
  size_t start_offset;
  bool has_tok, done;
  size_t ta, tb;
  int32_t tidx;
} AddIter;

static bool
add_next (SutraTokCtx *c, AddIter *it, size_t *a, size_t *b, int32_t *idx)
{
  if (it->has_tok) {
    it->has_tok = false;
    *a = it->ta;
    *b = it->tb;
    *idx = it->tidx;
    return true;
  }
  if (it->done)
    return false;
  const SutraTokenizer *tok = c->tok;
  const char *s = it->s;
  size_t n = it->n;
  while (!it->t->empty && it->i < n) {
    size_t i = it->i;
    if (!it->t->first[(unsigned char) s[i]]) {
      it->i++;
      continue;
    }
    int32_t ai = -1;
    size_t len = trie_longest (it->t, s, n, i, &ai);
    if (!len) {
      it->i++;
      continue;
    }
    size_t start = i, stop = i + len;
    it->i = stop;
    const SutraTokAdded *ad = &tok->added[ai];
    if (!c->parse_special && ad->special)
      continue;
    if (ad->single_word) {
      bool start_space = start == 0 || !sutra_uc_is_word (last_char (s, start));
      bool stop_space = true;
      if (stop < n) {
        size_t adv;
        stop_space = !sutra_uc_is_word (sutra_utf8_decode (s + stop, &adv));
      }
      if (!start_space || !stop_space)
        continue;
    }
    if (ad->lstrip) {
      size_t ns = start;
      while (ns > 0 && sutra_uc_is_whitespace (last_char (s, ns))) {
        size_t b2 = ns - 1;
        while (b2 > 0 && ((unsigned char) s[b2] & 0xC0) == 0x80)
          b2--;
        ns = b2;
      }
      start = ns > it->start_offset ? ns : it->start_offset;
    }
    if (ad->rstrip) {
      while (stop < n) {
        size_t adv;
        if (!sutra_uc_is_whitespace (sutra_utf8_decode (s + stop, &adv)))
          break;
        stop += adv;
      }
    }
    bool gap = it->start_offset < start;
    size_t gs = it->start_offset;
    it->start_offset = stop;
    if (gap) {
      it->has_tok = true;
      it->ta = start;
      it->tb = stop;
      it->tidx = ai;
      *a = gs;
      *b = start;
      *idx = -1;
      return true;
    }
    *a = start;
    *b = stop;
    *idx = ai;
    return true;
  }
  it->done = true;
  if (it->start_offset != n) {
    *a = it->start_offset;
    *b = n;
    *idx = -1;
    it->start_offset = n;
    return true;
  }
  return false;
}

static SutraPiece
slice (const SutraPiece *p, size_t a, size_t b)
{
  SutraPiece q = { p->s + a, b - a, p->al ? p->al + a : NULL, 0, 0 };
  if (a >= b) {
    q.ostart = q.oend = p->ostart + a;
  } else if (p->al) {
    q.ostart = p->al[a].s;
    q.oend = p->al[b - 1].e;
  } else {
    q.ostart = p->ostart + a;
    q.oend = p->ostart + b;
  }
  return q;
}

static bool
phase2 (SutraTokCtx *c, SutraPiece q)
{
  SutraTokArenaMark mark = sutra_tok_arena_mark (&c->arena);
  bool ok = sutra_tok_normalize (c, &q);
  if (ok && q.len > 0) {
    AddIter it = { &c->tok->trie_norm, q.s, q.len, 0, 0, false, false, 0, 0, 0 };
    size_t a, b;
    int32_t idx;
    while (ok && add_next (c, &it, &a, &b, &idx)) {
      if (a >= b)
        continue;   /* empty splits are dropped */
      if (idx >= 0)
        sutra_tok_emit_piece (c, &q, c->tok->added[idx].id, a, b, q.s + a, b - a);
      else {
        SutraPiece r = slice (&q, a, b);
        ok = sutra_tok_pretokenize_and_model (c, &r);
      }
    }
  }
  sutra_tok_arena_reset (&c->arena, mark);
  return ok && c->status == SUTRA_OK;
}

/* ---------------------------------------------------------------------------------------
 * Post-processing */

static void
trim_offsets (SutraTokCtx *c, bool add_prefix_space)
{
  for (size_t i = 0; i < c->n; i++) {
    size_t lead = c->lead[i], trail = c->trail[i];
    if (lead == 0 && trail == 0)
      continue;
    if (lead > 0) {
      bool first = i == 0 || c->starts[i] == 0;
      if (first && add_prefix_space && lead == 1)
        lead = 0;
      c->starts[i] = c->starts[i] + lead < c->ends[i] ? c->starts[i] + lead : c->ends[i];
    }
    if (trail > 0 && c->ends[i] >= trail)
      c->ends[i] = c->ends[i] - trail > c->starts[i] ? c->ends[i] - trail : c->starts[i];
  }
}

static void
insert_specials (SutraTokCtx *c, size_t at, const SutraTokSpecialSeq *sq)
{
  if (sq->n == 0)
    return;
  out_reserve (c, c->n + sq->n);
  memmove (c->ids + at + sq->n, c->ids + at, (c->n - at) * sizeof *c->ids);
  memmove (c->starts + at + sq->n, c->starts + at, (c->n - at) * sizeof *c->starts);
  memmove (c->ends + at + sq->n, c->ends + at, (c->n - at) * sizeof *c->ends);
  memmove (c->lead + at + sq->n, c->lead + at, (c->n - at) * sizeof *c->lead);
  memmove (c->trail + at + sq->n, c->trail + at, (c->n - at) * sizeof *c->trail);
  for (size_t k = 0; k < sq->n; k++) {
    c->ids[at + k] = sq->ids[k];
    c->starts[at + k] = c->ends[at + k] = 0;
    sutra_tok_trim_counts (sq->tokens[k], strlen (sq->tokens[k]), &c->lead[at + k],
                           &c->trail[at + k]);
  }
  c->n += sq->n;
}

static void
apply_template (SutraTokCtx *c, const SutraTokPost *pp)
{
  /* count the specials placed before the sequence, insert them, then those after */
  size_t seq_n = c->n, before = 0;
  bool seen = false;
  for (size_t i = 0; i < pp->n_items; i++) {
    if (pp->is_seq[i]) {
      seen = true;
      continue;
    }
    if (!seen) {
      insert_specials (c, before, &pp->items[i]);
      before += pp->items[i].n;
    } else
      insert_specials (c, c->n, &pp->items[i]);
  }
  (void) seq_n;
  if (!seen)   /* a template without $A: only the specials remain (HF drops the text) */
  {
    /* remove the original sequence, which sits right after the leading specials */
    size_t after = c->n - before - seq_n;
    memmove (c->ids + before, c->ids + before + seq_n, after * sizeof *c->ids);
    memmove (c->starts + before, c->starts + before + seq_n, after * sizeof *c->starts);
    memmove (c->ends + before, c->ends + before + seq_n, after * sizeof *c->ends);
    memmove (c->lead + before, c->lead + before + seq_n, after * sizeof *c->lead);
    memmove (c->trail + before, c->trail + before + seq_n, after * sizeof *c->trail);
    c->n -= seq_n;
  }
}

static void
post_process (SutraTokCtx *c, bool add_special)
{
  for (size_t k = 0; k < c->tok->n_posts; k++) {
    const SutraTokPost *pp = &c->tok->posts[k];
    switch (pp->kind) {
    case SUTRA_POST_BYTELEVEL:
      if (pp->trim_offsets)
        trim_offsets (c, pp->add_prefix_space);
      break;
    case SUTRA_POST_ROBERTA:
      if (pp->trim_offsets)
        trim_offsets (c, pp->add_prefix_space);
      /* fall through */
    case SUTRA_POST_BERT:
      if (add_special) {
        insert_specials (c, 0, &pp->cls);
        insert_specials (c, c->n, &pp->sep);
      }
      break;
    case SUTRA_POST_TEMPLATE:
      if (add_special)
        apply_template (c, pp);
      break;
    }
  }
}

/* ---------------------------------------------------------------------------------------
 * Public encode */

SutraStatus
sutra_tokenizer_encode (const SutraTokenizer *tok, const char *text, size_t len, unsigned flags,
                        SutraEncoding *out, SutraError *err)
{
  SUTRA_ASSERT (tok && out && (text || len == 0));
  if (len > SUTRA_TOK_MAX_INPUT)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: input of %zu bytes is too large",
                            tok->name, len);
  const char *s = text ? text : "";
  size_t n = len;
  char *clean = NULL;
  size_t *map = NULL;
  if (sutra_utf8_valid_prefix (s, n) != n) {
    clean = sutra_utf8_sanitize (s, n, &n, &map);
    s = clean;
    if (n > SUTRA_TOK_MAX_INPUT) {
      free (clean);
      free (map);
      return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: input is too large", tok->name);
    }
  }
  SutraTokCtx c;
  sutra_tok_ctx_init (&c, tok, err);
  c.parse_special = !(flags & SUTRA_ENCODE_NO_PARSE_SPECIAL);
  SutraPiece root = { s, n, NULL, 0, n };
  AddIter it = { &tok->trie_raw, s, n, 0, 0, false, false, 0, 0, 0 };
  size_t a, b;
  int32_t idx;
  bool ok = true;
  while (ok && add_next (&c, &it, &a, &b, &idx)) {
    if (a >= b)
      continue;
    if (idx >= 0)
      sutra_tok_emit_piece (&c, &root, tok->added[idx].id, a, b, s + a, b - a);
    else
      ok = phase2 (&c, slice (&root, a, b));
  }
  if (ok && c.status == SUTRA_OK)
    post_process (&c, flags & SUTRA_ENCODE_ADD_SPECIAL);
  SutraStatus st = c.status;
  if (st == SUTRA_OK) {
    if (map)
      for (size_t i = 0; i < c.n; i++) {
        c.starts[i] = map[c.starts[i] <= n ? c.starts[i] : n];
        c.ends[i] = map[c.ends[i] <= n ? c.ends[i] : n];
      }
    out->ids = c.ids;
    out->starts = c.starts;
    out->ends = c.ends;
    out->n = c.n;
    if (!out->ids) {   /* empty result: still hand out valid pointers */
      out->ids = sutra_xmalloc (sizeof *out->ids);
      out->starts = sutra_xmalloc (sizeof *out->starts);
      out->ends = sutra_xmalloc (sizeof *out->ends);
    }
    c.ids = NULL;
    c.starts = c.ends = NULL;
  }
  sutra_tok_ctx_clear (&c);
  free (clean);
  free (map);
  return st;
}

void
sutra_encoding_clear (SutraEncoding *enc)
{
  if (!enc)
    return;
  free (enc->ids);
  free (enc->starts);
  free (enc->ends);
  memset (enc, 0, sizeof *enc);
}
