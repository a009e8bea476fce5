/* sutra-wordpiece.c: the WordPiece model of HF tokenizers (models/wordpiece/mod.rs),
 * greedy longest-match-first as in BERT (Devlin et al. 2019; Wu et al. 2016, "Google's
 * Neural Machine Translation System", section 4.1): from each position take the longest
 * vocab entry (non-initial pieces carry continuing_subword_prefix, "##"); a word with no
 * full cover, or longer than max_input_chars_per_word chars, becomes the unk token. */
#include "sutra-tokenizer-private.h"

#include <string.h>

typedef struct {
  int32_t id;
  size_t a, b;
} WpTok;

static bool
emit_unk (SutraTokCtx *c, const SutraPiece *p, const SutraTokModel *m)
{
  int32_t uid = m->unk_token ? sutra_strmap_get (&m->vocab, m->unk_token, strlen (m->unk_token))
                             : -1;
  if (uid < 0) {
    sutra_tok_fail (c, SUTRA_ERR_INVALID, "WordPiece unk token '%s' is not in the vocabulary",
                    m->unk_token ? m->unk_token : "(none)");
    return false;
  }
  sutra_tok_emit_piece (c, p, uid, 0, p->len, NULL, 0);
  return true;
}

bool
sutra_wordpiece_tokenize (SutraTokCtx *c, const SutraPiece *p)
{
  const SutraTokModel *m = &c->tok->model;
  const char *w = p->s;
  size_t n = p->len;
  size_t nchars = 0;
  for (size_t i = 0; i < n; i += sutra_utf8_len_at (w + i))
    nchars++;
  if (nchars > m->max_input_chars)
    return emit_unk (c, p, m);
  char *buf = sutra_tok_scratch (c, 1, m->prefix_len + n + 1);
  WpTok *toks = sutra_tok_scratch (c, 2, (nchars + 1) * sizeof *toks);
  size_t nt = 0;
  size_t start = 0;
  while (start < n) {
    size_t end = n;
    int32_t found = -1;
    while (start < end) {
      size_t sl = 0;
      if (start > 0 && m->prefix_len) {
        memcpy (buf, m->prefix, m->prefix_len);
        sl = m->prefix_len;
      }
      memcpy (buf + sl, w + start, end - start);
      sl += end - start;
      found = sutra_strmap_get (&m->vocab, buf, sl);
      if (found >= 0)
        break;
      /* drop the last char */
      size_t e = end - 1;
      while (e > start && ((unsigned char) w[e] & 0xC0) == 0x80)
        e--;
      end = e;
    }
    if (found < 0)
      return emit_unk (c, p, m);
    toks[nt++] = (WpTok) { found, start, end };
    start = end;
  }
  for (size_t i = 0; i < nt; i++)
    sutra_tok_emit_piece (c, p, toks[i].id, toks[i].a, toks[i].b, NULL, 0);
  return true;
}
