/* sutra-unigram.c: the Unigram model of HF tokenizers (models/unigram/model.rs,
 * encode_optimized), i.e. SentencePiece's Viterbi segmentation (Kudo 2018, "Subword
 * Regularization"): best[j] = max over vocab pieces w = s[i..j) of best[i] + score(w);
 * a char with no single-char piece gets the unk piece with score min_score - 10;
 * consecutive unk pieces are fused; a string not in the vocab falls back to <0xNN> byte
 * pieces (byte_fallback) or the unk id. Ties keep the first candidate found (starts in
 * increasing order, prefixes by increasing length), exactly as HF does. */
#include "sutra-tokenizer-private.h"

#include <stdlib.h>
#include <string.h>

#define K_UNK_PENALTY 10.0   /* sentencepiece unigram_model.cc kUnkPenalty */

void
sutra_unigram_build_trie (SutraTokModel *m)
{
  sutra_u64map_init (&m->trie_edges, m->n_ids * 4 + 16);
  size_t cap = m->n_ids * 2 + 16;
  m->trie_term = sutra_xmalloc (cap * sizeof *m->trie_term);
  m->trie_term[0] = -1;
  m->trie_nodes = 1;
  for (size_t id = 0; id < m->n_ids; id++) {
    const char *s = m->vocab_r[id];
    if (!s)
      continue;
    size_t len = m->vocab_r_len[id];
    if (len == 0)
      continue;   /* the root is never reported by common_prefix_search */
    uint64_t node = 0;
    for (size_t i = 0; i < len; i++) {
      uint64_t key = (node << 8) | (unsigned char) s[i], child;
      if (!sutra_u64map_get (&m->trie_edges, key, &child)) {
        if (m->trie_nodes == cap) {
          cap *= 2;
          m->trie_term = sutra_xrealloc (m->trie_term, cap * sizeof *m->trie_term);
        }
        child = m->trie_nodes++;
        m->trie_term[child] = -1;
        sutra_u64map_put (&m->trie_edges, key, child);
      }
      node = child;
    }
    /* token_to_ids keeps the LAST id of a duplicated piece */
    m->trie_term[node] = sutra_strmap_get (&m->vocab, s, len);
  }
}

typedef struct {
  double score;
  int64_t starts_at;   /* -1: None */
  int32_t id;
} Node;

typedef struct {
  size_t a, b;
} Span;

static bool
emit_string (SutraTokCtx *c, const SutraPiece *p, const SutraTokModel *m, size_t a, size_t b)
{
  int32_t id = sutra_strmap_get (&m->vocab, p->s + a, b - a);
  if (id >= 0) {
    sutra_tok_emit_piece (c, p, id, a, b, NULL, 0);
    return true;
  }
  if (m->byte_fallback) {
    bool all = true;
    for (size_t k = a; k < b && all; k++)
      all = m->byte_ids[(unsigned char) p->s[k]] >= 0;
    if (all) {
      /* every byte piece gets the offsets of the whole string */
      for (size_t k = a; k < b; k++)
        sutra_tok_emit_piece (c, p, m->byte_ids[(unsigned char) p->s[k]], a, b, NULL, 0);
      return true;
    }
  }
  if (m->unk_id < 0) {
    sutra_tok_fail (c, SUTRA_ERR_INVALID, "Unigram model has no unk_id for '%.*s'",
                    (int) (b - a > 40 ? 40 : b - a), p->s + a);
    return false;
  }
  sutra_tok_emit_piece (c, p, m->unk_id, a, b, p->s + a, b - a);
  return true;
}

bool
sutra_unigram_tokenize (SutraTokCtx *c, const SutraPiece *p)
{
  const SutraTokModel *m = &c->tok->model;
  const char *s = p->s;
  size_t n = p->len;
  if (n == 0)
    return true;
  Node *best = sutra_tok_scratch (c, 1, (n + 1) * sizeof *best);
  for (size_t i = 0; i <= n; i++)
    best[i] = (Node) { 0.0, -1, 0 };
  double unk_score = m->min_score - K_UNK_PENALTY;
  for (size_t st = 0; st < n;) {
    double here = best[st].score;
    size_t mblen = sutra_utf8_len_at (s + st);
    bool single = false;
    uint64_t node = 0;
    for (size_t k = st; k < n; k++) {
      uint64_t child;
      if (!sutra_u64map_get (&m->trie_edges, (node << 8) | (unsigned char) s[k], &child))
        break;
      node = child;
      int32_t id = m->trie_term[node];
      if (id < 0)
        continue;
      size_t key_pos = k + 1;
      Node *t = &best[key_pos];
      double cand = m->scores[id] + here;
      if (t->starts_at < 0 || cand > t->score) {
        t->score = cand;
        t->starts_at = (int64_t) st;
        t->id = id;
      }
      if (key_pos - st == mblen)
        single = true;
    }
    if (!single) {
      if (m->unk_id < 0) {
        sutra_tok_fail (c, SUTRA_ERR_INVALID, "Unigram model has no unk_id for '%.*s'",
                        (int) mblen, s + st);
        return false;
      }
      Node *t = &best[st + mblen];
      double cand = unk_score + here;
      if (t->starts_at < 0 || cand > t->score) {
        t->score = cand;
        t->starts_at = (int64_t) st;
        t->id = m->unk_id;
      }
    }
    st += mblen;
  }
  /* backtrack, fusing consecutive unk nodes */
  Span *spans = sutra_tok_scratch (c, 2, (n + 1) * sizeof *spans);
  size_t ns = 0;
  bool fusing = false;
  size_t end = n;
  while (end > 0) {
    Node *nd = &best[end];
    size_t st = nd->starts_at < 0 ? 0 : (size_t) nd->starts_at;
    if (m->unk_id >= 0 && nd->id == m->unk_id) {
      if (fusing)
        spans[ns - 1].a = st;
      else {
        spans[ns++] = (Span) { st, end };
        fusing = true;
      }
    } else {
      spans[ns++] = (Span) { st, end };
      fusing = false;
    }
    end = st;
  }
  for (size_t i = ns; i-- > 0;)
    if (!emit_string (c, p, m, spans[i].a, spans[i].b))
      return false;
  return true;
}
