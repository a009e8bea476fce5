/* sutra-bpe.c: the BPE model of HF tokenizers (models/bpe/model.rs, word.rs).
 *
 * A pre-token (one split) becomes one symbol per char (with continuing_subword_prefix
 * on non-first chars and end_of_word_suffix on the last; byte_fallback to <0xNN>; unk,
 * optionally fused), then merge_all: repeatedly apply the adjacent pair with the lowest
 * merge rank, leftmost first (Sennrich et al. 2016, "Neural Machine Translation of Rare
 * Words with Subword Units"; HF's priority queue orders by (rank, position)).
 * Results for short words are kept in a sharded, bounded cache (mutex per shard, taken
 * with trylock so threads never wait on each other). */
#include "sutra-tokenizer-private.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Cache */

#define CACHE_SHARDS 64
#define CACHE_SLOTS  512          /* per shard, direct mapped */
#define CACHE_KMAX   40           /* longest cached word, bytes */
#define CACHE_NMAX   12           /* most symbols in a cached result */

typedef struct {
  uint64_t hash;
  uint8_t klen, nsym;
  uint8_t lens[CACHE_NMAX];
  char key[CACHE_KMAX];
  int32_t ids[CACHE_NMAX];
} CacheEnt;

struct SutraBpeCache {
  struct {
    pthread_mutex_t mu;
    CacheEnt *slots;
  } shard[CACHE_SHARDS];
};

SutraBpeCache *
sutra_bpe_cache_new (void)
{
  SutraBpeCache *c = sutra_xcalloc (1, sizeof *c);
  for (int i = 0; i < CACHE_SHARDS; i++)
    pthread_mutex_init (&c->shard[i].mu, NULL);
  return c;
}

void
sutra_bpe_cache_free (SutraBpeCache *c)
{
  if (!c)
    return;
  for (int i = 0; i < CACHE_SHARDS; i++) {
    pthread_mutex_destroy (&c->shard[i].mu);
    free (c->shard[i].slots);
  }
  free (c);
}

static bool
cache_get (SutraBpeCache *cache, uint64_t h, const char *w, size_t n, int32_t *ids,
           uint8_t *lens, size_t *nsym)
{
  size_t s = h & (CACHE_SHARDS - 1);
  if (pthread_mutex_trylock (&cache->shard[s].mu) != 0)
    return false;
  bool hit = false;
  CacheEnt *slots = cache->shard[s].slots;
  if (slots) {
    CacheEnt *e = &slots[(h >> 6) & (CACHE_SLOTS - 1)];
    if (e->klen == n && e->hash == h && memcmp (e->key, w, n) == 0) {
      *nsym = e->nsym;
      memcpy (ids, e->ids, e->nsym * sizeof *ids);
      memcpy (lens, e->lens, e->nsym);
      hit = true;
    }
  }
  pthread_mutex_unlock (&cache->shard[s].mu);
  return hit;
}

static void
cache_put (SutraBpeCache *cache, uint64_t h, const char *w, size_t n, const int32_t *ids,
           const uint8_t *lens, size_t nsym)
{
  size_t s = h & (CACHE_SHARDS - 1);
  if (pthread_mutex_trylock (&cache->shard[s].mu) != 0)
    return;
  if (!cache->shard[s].slots)
    cache->shard[s].slots = calloc (CACHE_SLOTS, sizeof (CacheEnt));
  if (cache->shard[s].slots) {
    CacheEnt *e = &cache->shard[s].slots[(h >> 6) & (CACHE_SLOTS - 1)];
    e->hash = h;
    e->klen = (uint8_t) n;
    e->nsym = (uint8_t) nsym;
    memcpy (e->key, w, n);
    memcpy (e->ids, ids, nsym * sizeof *ids);
    memcpy (e->lens, lens, nsym);
  }
  pthread_mutex_unlock (&cache->shard[s].mu);
}

/* ---------------------------------------------------------------------------------------
 * Symbols and the merge queue */

typedef struct {
  int32_t id;
  int32_t prev, next;   /* -1: none */
  uint32_t len;         /* bytes of the word; 0 = merged away */
} Sym;

/* Queue entry: key = rank << 32 | pos, so one integer compare gives HF's (rank, pos)
 * order; a 4-ary min-heap keeps the tree shallow (HF uses a QuaternaryHeap too). */
typedef struct {
  uint64_t key;
  int32_t new_id;
} Merge;

#define MKEY(rank, pos) (((uint64_t) (rank) << 32) | (uint32_t) (pos))

static inline void
sift_down (Merge *h, size_t n, size_t i)
{
  Merge x = h[i];
  for (;;) {
    size_t c = 4 * i + 1;
    if (c >= n)
      break;
    size_t m = c;
    size_t e = c + 4 < n ? c + 4 : n;
    for (size_t k = c + 1; k < e; k++)
      if (h[k].key < h[m].key)
        m = k;
    if (h[m].key >= x.key)
      break;
    h[i] = h[m];
    i = m;
  }
  h[i] = x;
}

static inline void
heap_push (Merge *h, size_t *n, Merge m)
{
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 4;
    if (h[p].key <= m.key)
      break;
    h[i] = h[p];
    i = p;
  }
  h[i] = m;
}

static inline Merge
heap_pop (Merge *h, size_t *n)
{
  Merge top = h[0];
  h[0] = h[--(*n)];
  if (*n)
    sift_down (h, *n, 0);
  return top;
}

static inline bool
merge_lookup (const SutraTokModel *m, int32_t a, int32_t b, uint32_t *rank, int32_t *new_id)
{
  uint64_t v;
  if (!sutra_u64map_get (&m->merges, ((uint64_t) (uint32_t) a << 32) | (uint32_t) b, &v))
    return false;
  *rank = (uint32_t) (v >> 32);
  *new_id = (int32_t) (uint32_t) v;
  return true;
}

typedef struct {
  Sym *sym;
  size_t n, cap;
} Word;

static void
word_add (Word *w, int32_t id, uint32_t len)
{
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 64;
    w->sym = sutra_xrealloc (w->sym, w->cap * sizeof *w->sym);
  }
  Sym *s = &w->sym[w->n];
  s->id = id;
  s->len = len;
  s->prev = (int32_t) w->n - 1;
  s->next = -1;
  if (w->n)
    w->sym[w->n - 1].next = (int32_t) w->n;
  w->n++;
}

/* HF Word::merge_all without dropout. */
static void
merge_all (const SutraTokModel *m, Word *w, Merge *heap)
{
  size_t hn = 0;
  for (size_t i = 0; i + 1 < w->n; i++) {
    uint32_t rank;
    int32_t nid;
    if (merge_lookup (m, w->sym[i].id, w->sym[i + 1].id, &rank, &nid))
      heap[hn++] = (Merge) { MKEY (rank, i), nid };
  }
  for (size_t i = hn / 4 + 1; i-- > 0;)   /* heapify bottom-up, O(n) */
    if (i < hn)
      sift_down (heap, hn, i);
  while (hn) {
    Merge top = heap_pop (heap, &hn);
    uint32_t top_pos = (uint32_t) top.key;
    Sym *cur = &w->sym[top_pos];
    if (cur->len == 0 || cur->next < 0)
      continue;
    Sym right = w->sym[cur->next];
    uint32_t rank;
    int32_t nid;
    if (!merge_lookup (m, cur->id, right.id, &rank, &nid) || nid != top.new_id)
      continue;   /* stale entry */
    int32_t next_pos = cur->next;
    cur->id = top.new_id;
    cur->len += right.len;
    cur->next = right.next;
    w->sym[next_pos].len = 0;
    if (right.next >= 0 && (size_t) right.next < w->n)
      w->sym[right.next].prev = (int32_t) top_pos;
    if (cur->prev >= 0) {
      Sym *pv = &w->sym[cur->prev];
      if (merge_lookup (m, pv->id, cur->id, &rank, &nid))
        heap_push (heap, &hn, (Merge) { MKEY (rank, cur->prev), nid });
    }
    if (cur->next >= 0 && (size_t) cur->next < w->n) {
      if (merge_lookup (m, cur->id, w->sym[cur->next].id, &rank, &nid))
        heap_push (heap, &hn, (Merge) { MKEY (rank, top_pos), nid });
    }
  }
}

/* ---------------------------------------------------------------------------------------
 * tokenize */

static int32_t
char_id (const SutraTokModel *m, const char *s, size_t cl)
{
  if (m->char_table) {
    size_t adv;
    uint32_t cp = sutra_utf8_decode (s, &adv);
    if (cp < 2048)
      return m->char_ids[cp];
  }
  return sutra_strmap_get (&m->vocab, s, cl);
}

/* Builds the initial symbols of w (HF BPE::merge_word before merge_all). */
static bool
build_word (SutraTokCtx *c, const SutraTokModel *m, const char *w, size_t n, Word *word)
{
  bool affix = !m->char_table;
  char *buf = NULL;
  if (affix)
    buf = sutra_tok_scratch (c, 1, m->prefix_len + m->suffix_len + 8);
  int32_t unk_id = -1;
  uint32_t unk_len = 0;
  bool have_unk = false;
  for (size_t i = 0; i < n;) {
    size_t cl = sutra_utf8_len_at (w + i);
    bool first = i == 0, last = i + cl >= n;
    const char *s = w + i;
    size_t sl = cl;
    if (affix) {
      sl = 0;
      if (!first && m->prefix_len) {
        memcpy (buf, m->prefix, m->prefix_len);
        sl = m->prefix_len;
      }
      memcpy (buf + sl, w + i, cl);
      sl += cl;
      if (last && m->suffix_len) {
        memcpy (buf + sl, m->suffix, m->suffix_len);
        sl += m->suffix_len;
      }
      s = buf;
    }
    int32_t id = affix ? sutra_strmap_get (&m->vocab, s, sl) : char_id (m, s, sl);
    if (id >= 0) {
      if (have_unk) {
        word_add (word, unk_id, unk_len);
        have_unk = false;
      }
      word_add (word, id, (uint32_t) cl);
      i += cl;
      continue;
    }
    if (m->byte_fallback) {
      bool all = true;
      for (size_t k = 0; k < sl && all; k++)
        all = m->byte_ids[(unsigned char) s[k]] >= 0;
      if (all) {
        for (size_t k = 0; k < sl; k++)
          word_add (word, m->byte_ids[(unsigned char) s[k]], 1);
        i += cl;
        continue;
      }
    }
    if (m->unk_token) {
      int32_t uid = sutra_strmap_get (&m->vocab, m->unk_token, strlen (m->unk_token));
      if (have_unk && m->fuse_unk)
        unk_len += (uint32_t) cl;
      else {
        if (uid < 0) {
          sutra_tok_fail (c, SUTRA_ERR_INVALID, "unk token '%s' is not in the model vocabulary",
                          m->unk_token);
          return false;
        }
        if (have_unk)
          word_add (word, unk_id, unk_len);
        unk_id = uid;
        unk_len = (uint32_t) cl;
        have_unk = true;
      }
    }
    i += cl;
  }
  if (have_unk)
    word_add (word, unk_id, unk_len);
  return true;
}

/* Tokenizes bytes [a, b) of the piece as one word and emits its tokens. */
static bool
bpe_word (SutraTokCtx *c, const SutraPiece *p, size_t a, size_t b)
{
  const SutraTokModel *m = &c->tok->model;
  const char *w = p->s + a;
  size_t n = b - a;
  int32_t cids[CACHE_NMAX];
  uint8_t clens[CACHE_NMAX];
  size_t cn = 0;
  uint64_t h = 0;
  bool cacheable = m->cache && n <= CACHE_KMAX;
  if (cacheable) {
    h = sutra_hash_bytes (w, n);
    if (cache_get (m->cache, h, w, n, cids, clens, &cn)) {
      size_t pos = a;
      for (size_t i = 0; i < cn; i++) {
        sutra_tok_emit_piece (c, p, cids[i], pos, pos + clens[i], NULL, 0);
        pos += clens[i];
      }
      return true;
    }
  }
  Word word = { c->scr[0], 0, c->scr_cap[0] / sizeof (Sym) };
  bool ok = build_word (c, m, w, n, &word);
  c->scr[0] = word.sym;
  c->scr_cap[0] = word.cap * sizeof (Sym);
  if (!ok)
    return false;
  Merge *heap = sutra_tok_scratch (c, 2, (word.n * 2 + 4) * sizeof (Merge) * 2);
  merge_all (m, &word, heap);
  size_t pos = a;
  cn = 0;
  bool fits = cacheable;
  for (size_t i = 0; i < word.n; i++) {
    Sym *sy = &word.sym[i];
    if (sy->len == 0)
      continue;
    sutra_tok_emit_piece (c, p, sy->id, pos, pos + sy->len, NULL, 0);
    pos += sy->len;
    if (fits && cn < CACHE_NMAX && sy->len < 256) {
      cids[cn] = sy->id;
      clens[cn++] = (uint8_t) sy->len;
    } else
      fits = false;
  }
  if (fits)
    cache_put (m->cache, h, w, n, cids, clens, cn);
  return true;
}

#define META "\xE2\x96\x81"   /* U+2581, SentencePiece's space */

bool
sutra_bpe_tokenize (SutraTokCtx *c, const SutraPiece *p)
{
  const SutraTokModel *m = &c->tok->model;
  size_t n = p->len;
  if (n == 0)
    return true;
  if (m->ignore_merges) {
    int32_t id = sutra_strmap_get (&m->vocab, p->s, n);
    if (id >= 0) {
      sutra_tok_emit_piece (c, p, id, 0, n, NULL, 0);
      return true;
    }
  }
  if (!m->meta_split)
    return bpe_word (c, p, 0, n);
  /* No vocab token has U+2581 right after another char, so no merge can join the text
   * before such a U+2581 with the U+2581: each segment is an independent BPE word (the
   * merges inside one segment never see the others, so HF's global (rank, position)
   * order gives the same result) and can use the word cache. */
  size_t start = 0;
  for (size_t i = 1; i + 3 <= n; i++) {
    if (memcmp (p->s + i, META, 3) != 0)
      continue;
    if (i >= 3 && memcmp (p->s + i - 3, META, 3) == 0)
      continue;
    if (!bpe_word (c, p, start, i))
      return false;
    start = i;
  }
  return bpe_word (c, p, start, n);
}
