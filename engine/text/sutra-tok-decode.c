/* sutra-tok-decode.c: decoding of HF tokenizers (TokenizerImpl::decode + the decoders in
 * tokenizers/src/decoders and pre_tokenizers/{byte_level,metaspace}.rs), transformers'
 * clean_up_tokenization, and the streaming detokenizer (HF DecodeStream).
 *
 * decode(ids): each id -> its token string (added tokens first, their normalized form when
 * they have one; unknown ids are skipped; special tokens optionally skipped), then the
 * decoder chain maps the list of strings to a list of strings, which is concatenated.
 * Without a decoder the tokens are joined with " ". */
#include "sutra-tokenizer-private.h"

#include <stdlib.h>
#include <string.h>

const uint32_t *sutra_tok_byte_chars (void);

/* ---------------------------------------------------------------------------------------
 * String lists (arena-backed) */

typedef struct {
  const char *s;
  size_t n;
} Str;

typedef struct {
  Str *v;
  size_t n, cap;
} StrList;

static void
sl_push (StrList *l, const char *s, size_t n)
{
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->v = sutra_xrealloc (l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = (Str) { s, n };
}

typedef struct {
  char *p;
  size_t n, cap;
} SBuf;

static void
sb_add (SBuf *b, const char *s, size_t n)
{
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->p = sutra_xrealloc (b->p, b->cap);
  }
  if (n)
    memcpy (b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}


/* Moves the buffer contents into the arena and appends them to the list. */
static void
sl_take (StrList *l, SutraTokArena *a, SBuf *b)
{
  sl_push (l, sutra_tok_arena_strndup (a, b->p ? b->p : "", b->n), b->n);
  b->n = 0;
}

/* Rust str::replace: every non-overlapping occurrence, left to right. */
static void
replace_all (SBuf *out, const char *s, size_t n, const char *from, size_t fl, const char *to,
             size_t tl)
{
  if (fl == 0) {
    sb_add (out, s, n);
    return;
  }
  size_t i = 0;
  while (i < n) {
    const char *hit = fl <= n - i ? memmem (s + i, n - i, from, fl) : NULL;
    if (!hit) {
      sb_add (out, s + i, n - i);
      return;
    }
    sb_add (out, s + i, (size_t) (hit - (s + i)));
    sb_add (out, to, tl);
    i = (size_t) (hit - s) + fl;
  }
}

/* A chain of literal replacements (WordPiece cleanup, transformers clean_up). */
static void
replace_chain (SBuf *out, const char *s, size_t n, const char *const (*pairs)[2], size_t np)
{
  SBuf a = { 0 }, b = { 0 };
  sb_add (&a, s, n);
  for (size_t k = 0; k < np; k++) {
    b.n = 0;
    replace_all (&b, a.p, a.n, pairs[k][0], strlen (pairs[k][0]), pairs[k][1],
                 strlen (pairs[k][1]));
    SBuf t = a;
    a = b;
    b = t;
  }
  sb_add (out, a.p, a.n);
  free (a.p);
  free (b.p);
}

static const char *const wp_cleanup[][2] = {
  { " .", "." }, { " ?", "?" }, { " !", "!" }, { " ,", "," }, { " ' ", "'" },
  { " n't", "n't" }, { " 'm", "'m" }, { " do not", " don't" }, { " 's", "'s" },
  { " 've", "'ve" }, { " 're", "'re" },
};

/* transformers PreTrainedTokenizerBase.clean_up_tokenization */
static const char *const tf_cleanup[][2] = {
  { " .", "." }, { " ?", "?" }, { " !", "!" }, { " ,", "," }, { " ' ", "'" },
  { " n't", "n't" }, { " 'm", "'m" }, { " 's", "'s" }, { " 've", "'ve" }, { " 're", "'re" },
};

/* ---------------------------------------------------------------------------------------
 * Decoders */

static int
hexval (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* "<0xNN>" -> byte (Rust u8::from_str_radix(&token[3..5], 16), which also takes "+N") */
static int
byte_token (const Str *t)
{
  if (t->n != 6 || memcmp (t->s, "<0x", 3) != 0 || t->s[5] != '>')
    return -1;
  if (t->s[3] == '+')
    return hexval (t->s[4]);
  int h = hexval (t->s[3]), l = hexval (t->s[4]);
  return (h < 0 || l < 0) ? -1 : h * 16 + l;
}

static void
flush_bytes (StrList *out, SutraTokArena *ar, SBuf *bytes)
{
  if (!bytes->n)
    return;
  if (sutra_utf8_valid_prefix (bytes->p, bytes->n) == bytes->n)
    sl_push (out, sutra_tok_arena_strndup (ar, bytes->p, bytes->n), bytes->n);
  else
    for (size_t k = 0; k < bytes->n; k++)
      sl_push (out, "\xEF\xBF\xBD", 3);
  bytes->n = 0;
}

static bool
apply_decoder (SutraTokCtx *c, const SutraTokDec *d, const StrList *in, StrList *out)
{
  SutraTokArena *ar = &c->arena;
  SBuf b = { 0 };
  switch (d->kind) {
  case SUTRA_DEC_BYTELEVEL: {
    /* each token: all chars in the GPT-2 byte alphabet -> those bytes, else its own UTF-8;
     * then String::from_utf8_lossy over the whole byte string */
    const uint32_t *bc = sutra_tok_byte_chars ();
    uint8_t inv_ok[0x144] = { 0 }, inv[0x144];
    for (int k = 0; k < 256; k++) {
      inv_ok[bc[k]] = 1;
      inv[bc[k]] = (uint8_t) k;
    }
    SBuf bytes = { 0 };
    for (size_t i = 0; i < in->n; i++) {
      const Str *t = &in->v[i];
      size_t start = bytes.n;
      bool all = true;
      for (size_t k = 0; k < t->n;) {
        size_t adv;
        uint32_t cp = sutra_utf8_decode (t->s + k, &adv);
        k += adv;
        if (cp >= 0x144 || !inv_ok[cp]) {
          all = false;
          break;
        }
        char by = (char) inv[cp];
        sb_add (&bytes, &by, 1);
      }
      if (!all) {
        bytes.n = start;
        sb_add (&bytes, t->s, t->n);
      }
    }
    size_t cl;
    char *clean = sutra_utf8_sanitize (bytes.p ? bytes.p : "", bytes.n, &cl, NULL);
    sl_push (out, sutra_tok_arena_strndup (ar, clean, cl), cl);
    free (clean);
    free (bytes.p);
    break;
  }
  case SUTRA_DEC_METASPACE:
    for (size_t i = 0; i < in->n; i++) {
      const Str *t = &in->v[i];
      for (size_t k = 0; k < t->n;) {
        size_t adv;
        uint32_t cp = sutra_utf8_decode (t->s + k, &adv);
        if (cp == d->cp) {
          if (!(i == 0 && d->prepend != SUTRA_PREPEND_NEVER))
            sb_add (&b, " ", 1);
        } else
          sb_add (&b, t->s + k, adv);
        k += adv;
      }
      sl_take (out, ar, &b);
    }
    break;
  case SUTRA_DEC_WORDPIECE: {
    size_t pl = strlen (d->str);
    for (size_t i = 0; i < in->n; i++) {
      const Str *t = &in->v[i];
      SBuf tok = { 0 };
      if (i != 0) {
        if (t->n >= pl && memcmp (t->s, d->str, pl) == 0)
          sb_add (&tok, t->s + pl, t->n - pl);
        else {
          sb_add (&tok, " ", 1);
          sb_add (&tok, t->s, t->n);
        }
      } else
        sb_add (&tok, t->s, t->n);
      if (d->cleanup)
        replace_chain (&b, tok.p, tok.n, wp_cleanup, sizeof wp_cleanup / sizeof *wp_cleanup);
      else
        sb_add (&b, tok.p, tok.n);
      free (tok.p);
      sl_take (out, ar, &b);
    }
    break;
  }
  case SUTRA_DEC_BYTEFALLBACK: {
    SBuf bytes = { 0 };
    for (size_t i = 0; i < in->n; i++) {
      int by = byte_token (&in->v[i]);
      if (by >= 0) {
        char ch = (char) by;
        sb_add (&bytes, &ch, 1);
        continue;
      }
      flush_bytes (out, ar, &bytes);
      sl_push (out, in->v[i].s, in->v[i].n);
    }
    flush_bytes (out, ar, &bytes);
    free (bytes.p);
    break;
  }
  case SUTRA_DEC_FUSE:
    for (size_t i = 0; i < in->n; i++)
      sb_add (&b, in->v[i].s, in->v[i].n);
    sl_take (out, ar, &b);
    break;
  case SUTRA_DEC_STRIP:
    for (size_t i = 0; i < in->n; i++) {
      const Str *t = &in->v[i];
      /* char boundaries */
      size_t nch = 0;
      for (size_t k = 0; k < t->n; k += sutra_utf8_len_at (t->s + k))
        nch++;
      size_t *pos = sutra_xmalloc ((nch + 1) * sizeof *pos);
      uint32_t *cps = sutra_xmalloc ((nch + 1) * sizeof *cps);
      size_t j = 0;
      for (size_t k = 0; k < t->n; j++) {
        size_t adv;
        pos[j] = k;
        cps[j] = sutra_utf8_decode (t->s + k, &adv);
        k += adv;
      }
      pos[nch] = t->n;
      size_t start_cut = 0, stop_cut = nch;
      for (size_t k = 0; k < d->start && k < nch; k++) {
        if (cps[k] != d->cp)
          break;
        start_cut = k + 1;
      }
      for (size_t k = 0; k < d->stop && k < nch; k++) {
        size_t index = nch - k - 1;
        if (cps[index] != d->cp)
          break;
        stop_cut = index;
      }
      if (stop_cut < start_cut)
        stop_cut = start_cut;
      sl_push (out, t->s + pos[start_cut], pos[stop_cut] - pos[start_cut]);
      free (pos);
      free (cps);
    }
    break;
  case SUTRA_DEC_REPLACE:
    for (size_t i = 0; i < in->n; i++) {
      const Str *t = &in->v[i];
      size_t p = 0, last = SIZE_MAX, ms, me, prev = 0;
      if (t->n > 0) {
        while (sutra_tok_regex_next (c, d->pat.slot, t->s, t->n, &p, &last, &ms, &me)) {
          sb_add (&b, t->s + prev, ms - prev);
          sb_add (&b, d->str, strlen (d->str));
          prev = me;
        }
        if (c->status != SUTRA_OK) {
          free (b.p);
          return false;
        }
      }
      sb_add (&b, t->s + prev, t->n - prev);
      sl_take (out, ar, &b);
    }
    break;
  case SUTRA_DEC_CTC:
    for (size_t i = 0; i < in->n; i++) {
      const Str *t = &in->v[i];
      if (i > 0 && in->v[i - 1].n == t->n && memcmp (in->v[i - 1].s, t->s, t->n) == 0)
        continue;   /* itertools dedup: consecutive duplicates */
      SBuf r = { 0 };
      replace_all (&r, t->s, t->n, d->str, strlen (d->str), "", 0);
      if (d->cleanup) {
        SBuf r2 = { 0 };
        replace_chain (&r2, r.p ? r.p : "", r.n, wp_cleanup,
                       sizeof wp_cleanup / sizeof *wp_cleanup);
        r.n = 0;
        replace_all (&r, r2.p ? r2.p : "", r2.n, d->str2, strlen (d->str2), " ", 1);
        free (r2.p);
      }
      if (r.n) {
        sb_add (&b, r.p, r.n);
        sl_take (out, ar, &b);
      }
      free (r.p);
    }
    break;
  case SUTRA_DEC_BPE:
    for (size_t i = 0; i < in->n; i++) {
      const Str *t = &in->v[i];
      const char *rep = i + 1 == in->n ? "" : " ";
      replace_all (&b, t->s, t->n, d->str, strlen (d->str), rep, strlen (rep));
      sl_take (out, ar, &b);
    }
    break;
  }
  free (b.p);
  return true;
}

/* ---------------------------------------------------------------------------------------
 * decode */

/* The string HF's decode uses for id (AddedVocabulary::simple_id_to_token, then the
 * model), or NULL. */
static const char *
decode_token (const SutraTokenizer *tok, int32_t id, size_t *len)
{
  if (id < 0 || (size_t) id >= tok->n_vocab)
    return NULL;
  int32_t ai = tok->added_by_id[id];
  if (ai >= 0) {
    const SutraTokAdded *a = &tok->added[ai];
    *len = a->norm ? a->norm_len : a->len;
    return a->norm ? a->norm : a->content;
  }
  if ((size_t) id < tok->model.n_ids && tok->model.vocab_r[id]) {
    *len = tok->model.vocab_r_len[id];
    return tok->model.vocab_r[id];
  }
  return NULL;
}

static SutraStatus
decode_impl (const SutraTokenizer *tok, const int32_t *ids, size_t n, unsigned flags, SBuf *res,
             SutraError *err)
{
  SutraTokCtx c;
  sutra_tok_ctx_init (&c, tok, err);
  StrList a = { 0 }, b = { 0 };
  for (size_t i = 0; i < n; i++) {
    size_t len;
    const char *s = decode_token (tok, ids[i], &len);
    if (!s)
      continue;
    if ((flags & SUTRA_DECODE_SKIP_SPECIAL) && sutra_strmap_get (&tok->special_set, s, len) >= 0)
      continue;
    sl_push (&a, s, len);
  }
  bool ok = true;
  if (tok->has_decoder) {
    for (size_t k = 0; k < tok->n_decs && ok; k++) {
      b.n = 0;
      ok = apply_decoder (&c, &tok->decs[k], &a, &b);
      StrList t = a;
      a = b;
      b = t;
    }
    for (size_t i = 0; ok && i < a.n; i++)
      sb_add (res, a.v[i].s, a.v[i].n);
  } else {
    for (size_t i = 0; i < a.n; i++) {
      if (i)
        sb_add (res, " ", 1);
      sb_add (res, a.v[i].s, a.v[i].n);
    }
  }
  sb_add (res, "", 0);
  if (ok && (flags & SUTRA_DECODE_CLEANUP)) {
    SBuf t = { 0 };
    replace_chain (&t, res->p, res->n, tf_cleanup, sizeof tf_cleanup / sizeof *tf_cleanup);
    free (res->p);
    *res = t;
    sb_add (res, "", 0);
  }
  SutraStatus st = c.status;
  free (a.v);
  free (b.v);
  sutra_tok_ctx_clear (&c);
  return st;
}

SutraStatus
sutra_tokenizer_decode (const SutraTokenizer *tok, const int32_t *ids, size_t n, unsigned flags,
                        char **out, size_t *out_len, SutraError *err)
{
  SUTRA_ASSERT (tok && out && (ids || n == 0));
  SBuf res = { 0 };
  SutraStatus st = decode_impl (tok, ids, n, flags, &res, err);
  if (st != SUTRA_OK) {
    free (res.p);
    return st;
  }
  *out = res.p;
  if (out_len)
    *out_len = res.n;
  return SUTRA_OK;
}

/* ---------------------------------------------------------------------------------------
 * Streaming (HF step_decode_stream) */

struct SutraDetokenizer {
  const SutraTokenizer *tok;
  unsigned flags;
  int32_t *ids;
  size_t n, cap;
  SBuf prefix;
  size_t prefix_index;
  SBuf out;
};

SutraDetokenizer *
sutra_detokenizer_new (const SutraTokenizer *tok, unsigned flags)
{
  SutraDetokenizer *d = sutra_xcalloc (1, sizeof *d);
  d->tok = tok;
  d->flags = flags & ~(unsigned) SUTRA_DECODE_CLEANUP;
  sb_add (&d->prefix, "", 0);
  sb_add (&d->out, "", 0);
  return d;
}

void
sutra_detokenizer_free (SutraDetokenizer *d)
{
  if (!d)
    return;
  free (d->ids);
  free (d->prefix.p);
  free (d->out.p);
  free (d);
}

static void
dt_decode (SutraDetokenizer *d, const int32_t *ids, size_t n, SBuf *res)
{
  res->n = 0;
  SBuf t = { 0 };
  if (decode_impl (d->tok, ids, n, d->flags, &t, NULL) != SUTRA_OK)
    t.n = 0;   /* a decoder regex failing on a token: emit nothing for it */
  sb_add (res, t.p ? t.p : "", t.n);
  free (t.p);
}

static bool
ends_with_fffd (const SBuf *b)
{
  return b->n >= 3 && memcmp (b->p + b->n - 3, "\xEF\xBF\xBD", 3) == 0;
}

/* True when the decoder chain has ByteFallback and the token list ends in a <0xNN> run:
 * ByteFallback turns a whole run into U+FFFDs if any later byte makes it invalid UTF-8,
 * so text from an open run may still change and is held back. */
static bool
open_byte_run (const SutraDetokenizer *d)
{
  const SutraTokenizer *tok = d->tok;
  bool bf = false;
  for (size_t k = 0; k < tok->n_decs; k++)
    bf |= tok->decs[k].kind == SUTRA_DEC_BYTEFALLBACK;
  if (!bf)
    return false;
  for (size_t i = d->n; i-- > 0;) {
    size_t len;
    const char *s = decode_token (tok, d->ids[i], &len);
    if (!s)
      continue;
    if ((d->flags & SUTRA_DECODE_SKIP_SPECIAL) && sutra_strmap_get (&tok->special_set, s, len) >= 0)
      continue;
    Str t = { s, len };
    return byte_token (&t) >= 0;
  }
  return false;
}

const char *
sutra_detokenizer_feed (SutraDetokenizer *d, int32_t id, size_t *len)
{
  d->out.n = 0;
  d->out.p[0] = '\0';
  if (d->prefix.n == 0 && d->n > 0) {
    SBuf np = { 0 };
    dt_decode (d, d->ids, d->n, &np);
    if (!ends_with_fffd (&np) && !open_byte_run (d)) {
      d->prefix.n = 0;
      sb_add (&d->prefix, np.p, np.n);
      d->prefix_index = d->n;
    }
    free (np.p);
  }
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 16;
    d->ids = sutra_xrealloc (d->ids, d->cap * sizeof *d->ids);
  }
  d->ids[d->n++] = id;
  SBuf s = { 0 };
  dt_decode (d, d->ids, d->n, &s);
  if (s.n > d->prefix.n && !ends_with_fffd (&s) && !open_byte_run (d)) {
    if (memcmp (s.p, d->prefix.p, d->prefix.n) != 0) {
      /* the decoder rewrote already-emitted text (not seen with the decoders we
       * support): restart the window at this id */
      dt_decode (d, &id, 1, &d->out);
      d->ids[0] = id;
      d->n = 1;
      d->prefix.n = 0;
      sb_add (&d->prefix, d->out.p, d->out.n);
      d->prefix_index = 1;
    } else {
      sb_add (&d->out, s.p + d->prefix.n, s.n - d->prefix.n);
      size_t new_prefix_index = d->n - d->prefix_index;
      memmove (d->ids, d->ids + d->prefix_index, (d->n - d->prefix_index) * sizeof *d->ids);
      d->n -= d->prefix_index;
      dt_decode (d, d->ids, d->n, &d->prefix);
      d->prefix_index = new_prefix_index;
    }
  }
  free (s.p);
  if (len)
    *len = d->out.n;
  return d->out.p;
}

const char *
sutra_detokenizer_flush (SutraDetokenizer *d, size_t *len)
{
  d->out.n = 0;
  d->out.p[0] = '\0';
  SBuf s = { 0 };
  dt_decode (d, d->ids, d->n, &s);
  if (s.n > d->prefix.n && memcmp (s.p, d->prefix.p, d->prefix.n) == 0)
    sb_add (&d->out, s.p + d->prefix.n, s.n - d->prefix.n);
  free (s.p);
  d->n = 0;
  d->prefix.n = 0;
  d->prefix.p[0] = '\0';
  d->prefix_index = 0;
  if (len)
    *len = d->out.n;
  return d->out.p;
}

void
sutra_tok_dec_free (SutraTokDec *d)
{
  free (d->str);
  free (d->str2);
}
