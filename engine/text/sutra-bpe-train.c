/* sutra-bpe-train.c: byte-level BPE training (see sutra-bpe-train.h).
 *
 * Data: unique pre-tokens ("words") with counts, each a list of symbol ids; for every
 * adjacent pair its total count and the words it occurs in. A max-heap of (count, pair)
 * with lazy updates picks the next merge (HF BpeTrainer: highest count, ties to the
 * smallest (left id, right id)); merging rewrites only the words that contain the pair and
 * adjusts the counts of the neighbouring pairs:
 *   ... p a b n ...  ->  ... p N n ...:  (p,a)--, (a,b)--, (b,n)--, (p,N)++, (N,n)++
 * all weighted by the word's count. */
#include "sutra-bpe-train.h"
#include "sutra-fsutil.h"
#include "sutra-tokenizer-private.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

const uint32_t *sutra_tok_byte_chars (void);

static const char GPT2_PATTERN[] =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
  int32_t *sym;
  uint32_t n;
  int64_t count;
} TWord;

typedef struct {
  uint64_t key;     /* left << 32 | right */
  int64_t count;
} HeapEnt;

typedef struct {
  /* vocabulary */
  char **str;
  size_t *len;
  size_t n_tok, cap_tok;
  SutraStrMap tok_map;
  /* words */
  SutraStrMap word_map;         /* raw bytes -> word index */
  TWord *words;
  size_t n_words, cap_words;
  /* pairs */
  SutraU64Map pair_idx;         /* key -> pair index */
  uint64_t *pair_key;
  int64_t *pair_count;
  int32_t **pw;                 /* words containing the pair (may hold stale entries) */
  uint32_t *pw_n, *pw_cap;
  uint32_t *pair_stamp;
  size_t n_pairs, cap_pairs;
  /* heap */
  HeapEnt *heap;
  size_t hn, hcap;
  /* merges */
  uint64_t *merges;
  size_t n_merges, cap_merges;
  int32_t byte_id[256];
} Trainer;

/* ---------------------------------------------------------------------------------------
 * vocabulary and words */

static int32_t
tok_add (Trainer *t, const char *s, size_t n)
{
  int32_t id = sutra_strmap_get (&t->tok_map, s, n);
  if (id >= 0)
    return id;
  if (t->n_tok == t->cap_tok) {
    t->cap_tok = t->cap_tok ? t->cap_tok * 2 : 1024;
    t->str = sutra_xrealloc (t->str, t->cap_tok * sizeof *t->str);
    t->len = sutra_xrealloc (t->len, t->cap_tok * sizeof *t->len);
  }
  id = (int32_t) t->n_tok++;
  t->str[id] = sutra_xstrndup (s, n);
  t->len[id] = n;
  sutra_strmap_put (&t->tok_map, s, n, id);
  return id;
}

static void
count_word (Trainer *t, const char *w, size_t n)
{
  if (n == 0)
    return;
  int32_t wi = sutra_strmap_get (&t->word_map, w, n);
  if (wi < 0) {
    if (t->n_words == t->cap_words) {
      t->cap_words = t->cap_words ? t->cap_words * 2 : 4096;
      t->words = sutra_xrealloc (t->words, t->cap_words * sizeof *t->words);
    }
    wi = (int32_t) t->n_words++;
    TWord *tw = &t->words[wi];
    tw->n = (uint32_t) n;
    tw->count = 0;
    tw->sym = sutra_xmalloc (n * sizeof *tw->sym);
    for (size_t i = 0; i < n; i++)
      tw->sym[i] = t->byte_id[(unsigned char) w[i]];
    sutra_strmap_put (&t->word_map, w, n, wi);
  }
  t->words[wi].count++;
}

/* Splits one text at the special tokens and counts the GPT-2 pre-tokens of each part. */
static SutraStatus
count_text (Trainer *t, const pcre2_code *re, pcre2_match_data *md,
            const SutraBpeTrainOptions *o, const char *text, size_t len, SutraError *err)
{
  size_t clean_len;
  char *clean = NULL;
  if (sutra_utf8_valid_prefix (text, len) != len) {
    clean = sutra_utf8_sanitize (text, len, &clean_len, NULL);
    text = clean;
    len = clean_len;
  }
  size_t pos = 0;
  while (pos <= len) {
    /* next special token occurrence */
    size_t cut = len, skip = 0;
    for (size_t k = 0; k < o->n_special; k++) {
      size_t sl = strlen (o->special_tokens[k]);
      const char *hit = memmem (text + pos, len - pos, o->special_tokens[k], sl);
      if (hit && (size_t) (hit - text) < cut) {
        cut = (size_t) (hit - text);
        skip = sl;
      }
    }
    size_t at = pos;
    while (at < cut) {
      int rc = pcre2_match (re, (PCRE2_SPTR) text, cut, at, PCRE2_NO_UTF_CHECK, md, NULL);
      if (rc == PCRE2_ERROR_NOMATCH)
        break;
      if (rc < 0) {
        free (clean);
        return sutra_error_set (err, SUTRA_ERR_INVALID, "BPE training: regex match failed (%d)", rc);
      }
      PCRE2_SIZE *ov = pcre2_get_ovector_pointer (md);
      if (ov[1] <= at) {   /* never for this pattern; guard against a loop */
        at += sutra_utf8_len_at (text + at);
        continue;
      }
      count_word (t, text + ov[0], ov[1] - ov[0]);
      at = ov[1];
    }
    if (cut == len)
      break;
    pos = cut + skip;
  }
  free (clean);
  return SUTRA_OK;
}

/* ---------------------------------------------------------------------------------------
 * pairs and heap */

static uint32_t
pair_get (Trainer *t, int32_t a, int32_t b)
{
  uint64_t key = ((uint64_t) (uint32_t) a << 32) | (uint32_t) b, v;
  if (sutra_u64map_get (&t->pair_idx, key, &v))
    return (uint32_t) v;
  if (t->n_pairs == t->cap_pairs) {
    t->cap_pairs = t->cap_pairs ? t->cap_pairs * 2 : 4096;
    t->pair_key = sutra_xrealloc (t->pair_key, t->cap_pairs * sizeof *t->pair_key);
    t->pair_count = sutra_xrealloc (t->pair_count, t->cap_pairs * sizeof *t->pair_count);
    t->pw = sutra_xrealloc (t->pw, t->cap_pairs * sizeof *t->pw);
    t->pw_n = sutra_xrealloc (t->pw_n, t->cap_pairs * sizeof *t->pw_n);
    t->pw_cap = sutra_xrealloc (t->pw_cap, t->cap_pairs * sizeof *t->pw_cap);
    t->pair_stamp = sutra_xrealloc (t->pair_stamp, t->cap_pairs * sizeof *t->pair_stamp);
  }
  uint32_t p = (uint32_t) t->n_pairs++;
  t->pair_key[p] = key;
  t->pair_count[p] = 0;
  t->pw[p] = NULL;
  t->pw_n[p] = t->pw_cap[p] = 0;
  t->pair_stamp[p] = 0;
  sutra_u64map_put (&t->pair_idx, key, p);
  return p;
}

static void
pair_add_word (Trainer *t, uint32_t p, int32_t w)
{
  if (t->pw_n[p] && t->pw[p][t->pw_n[p] - 1] == w)
    return;
  if (t->pw_n[p] == t->pw_cap[p]) {
    t->pw_cap[p] = t->pw_cap[p] ? t->pw_cap[p] * 2 : 4;
    t->pw[p] = sutra_xrealloc (t->pw[p], t->pw_cap[p] * sizeof *t->pw[p]);
  }
  t->pw[p][t->pw_n[p]++] = w;
}

static bool
heap_before (const HeapEnt *x, const HeapEnt *y)   /* x pops first */
{
  return x->count != y->count ? x->count > y->count : x->key < y->key;
}

static void
heap_push (Trainer *t, uint64_t key, int64_t count)
{
  if (t->hn == t->hcap) {
    t->hcap = t->hcap ? t->hcap * 2 : 4096;
    t->heap = sutra_xrealloc (t->heap, t->hcap * sizeof *t->heap);
  }
  size_t i = t->hn++;
  HeapEnt e = { key, count };
  while (i > 0) {
    size_t par = (i - 1) / 2;
    if (!heap_before (&e, &t->heap[par]))
      break;
    t->heap[i] = t->heap[par];
    i = par;
  }
  t->heap[i] = e;
}

static HeapEnt
heap_pop (Trainer *t)
{
  HeapEnt top = t->heap[0];
  HeapEnt x = t->heap[--t->hn];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const HeapEnt *best = &x;
    if (l < t->hn && heap_before (&t->heap[l], best)) {
      m = l;
      best = &t->heap[l];
    }
    if (r < t->hn && heap_before (&t->heap[r], best))
      m = r;
    if (m == i)
      break;
    t->heap[i] = t->heap[m];
    i = m;
  }
  if (t->hn)
    t->heap[i] = x;
  return top;
}

/* ---------------------------------------------------------------------------------------
 * training */

static void
count_pairs (Trainer *t)
{
  for (size_t w = 0; w < t->n_words; w++) {
    TWord *tw = &t->words[w];
    for (uint32_t i = 0; i + 1 < tw->n; i++) {
      uint32_t p = pair_get (t, tw->sym[i], tw->sym[i + 1]);
      t->pair_count[p] += tw->count;
      pair_add_word (t, p, (int32_t) w);
    }
  }
  for (size_t p = 0; p < t->n_pairs; p++)
    if (t->pair_count[p] > 0)
      heap_push (t, t->pair_key[p], t->pair_count[p]);
}

static void
train (Trainer *t, size_t vocab_size, int64_t min_freq)
{
  uint32_t stamp = 0;
  uint32_t *word_stamp = sutra_xcalloc (t->n_words ? t->n_words : 1, sizeof *word_stamp);
  uint32_t *touched = NULL;
  size_t n_touched = 0, cap_touched = 0;
  char *buf = NULL;
  size_t bcap = 0;
  while (t->n_tok < vocab_size && t->hn) {
    HeapEnt top = heap_pop (t);
    uint64_t pv = 0;
    bool found = sutra_u64map_get (&t->pair_idx, top.key, &pv);
    SUTRA_ASSERT (found);
    uint32_t p = (uint32_t) pv;
    if (t->pair_count[p] != top.count) {   /* stale: re-queue with the current count */
      if (t->pair_count[p] > 0)
        heap_push (t, top.key, t->pair_count[p]);
      continue;
    }
    if (top.count < min_freq)
      break;
    int32_t a = (int32_t) (top.key >> 32), b = (int32_t) (uint32_t) top.key;
    size_t nl = t->len[a] + t->len[b];
    if (nl + 1 > bcap) {
      bcap = (nl + 1) * 2;
      buf = sutra_xrealloc (buf, bcap);
    }
    memcpy (buf, t->str[a], t->len[a]);
    memcpy (buf + t->len[a], t->str[b], t->len[b]);
    int32_t nid = tok_add (t, buf, nl);
    if (t->n_merges == t->cap_merges) {
      t->cap_merges = t->cap_merges ? t->cap_merges * 2 : 1024;
      t->merges = sutra_xrealloc (t->merges, t->cap_merges * sizeof *t->merges);
    }
    t->merges[t->n_merges++] = top.key;
    stamp++;
    n_touched = 0;
    /* the list of words may grow while we iterate only for other pairs, never for p */
    for (uint32_t k = 0; k < t->pw_n[p]; k++) {
      int32_t w = t->pw[p][k];
      if (word_stamp[w] == stamp)
        continue;
      word_stamp[w] = stamp;
      TWord *tw = &t->words[w];
      int64_t c = tw->count;
      uint32_t out = 0, i = 0;
      while (i < tw->n) {
        if (i + 1 < tw->n && tw->sym[i] == a && tw->sym[i + 1] == b) {
          t->pair_count[p] -= c;
          if (out > 0) {
            int32_t prev = tw->sym[out - 1];
            t->pair_count[pair_get (t, prev, a)] -= c;
            uint32_t q = pair_get (t, prev, nid);
            t->pair_count[q] += c;
            pair_add_word (t, q, w);
            if (t->pair_stamp[q] != stamp) {
              t->pair_stamp[q] = stamp;
              if (n_touched == cap_touched) {
                cap_touched = cap_touched ? cap_touched * 2 : 256;
                touched = sutra_xrealloc (touched, cap_touched * sizeof *touched);
              }
              touched[n_touched++] = q;
            }
          }
          if (i + 2 < tw->n) {
            int32_t next = tw->sym[i + 2];
            t->pair_count[pair_get (t, b, next)] -= c;
            uint32_t q = pair_get (t, nid, next);
            t->pair_count[q] += c;
            pair_add_word (t, q, w);
            if (t->pair_stamp[q] != stamp) {
              t->pair_stamp[q] = stamp;
              if (n_touched == cap_touched) {
                cap_touched = cap_touched ? cap_touched * 2 : 256;
                touched = sutra_xrealloc (touched, cap_touched * sizeof *touched);
              }
              touched[n_touched++] = q;
            }
          }
          tw->sym[out++] = nid;
          i += 2;
        } else
          tw->sym[out++] = tw->sym[i++];
      }
      tw->n = out;
    }
    free (t->pw[p]);
    t->pw[p] = NULL;
    t->pw_n[p] = t->pw_cap[p] = 0;
    for (size_t k = 0; k < n_touched; k++)
      if (t->pair_count[touched[k]] > 0)
        heap_push (t, t->pair_key[touched[k]], t->pair_count[touched[k]]);
  }
  free (word_stamp);
  free (touched);
  free (buf);
}

/* ---------------------------------------------------------------------------------------
 * output */

static char *
to_json (const Trainer *t, const SutraBpeTrainOptions *o, size_t *out_len)
{
  json_object *root = json_object_new_object ();
  json_object_object_add (root, "version", json_object_new_string ("1.0"));
  json_object_object_add (root, "truncation", NULL);
  json_object_object_add (root, "padding", NULL);
  json_object *added = json_object_new_array ();
  for (size_t k = 0; k < o->n_special; k++) {
    json_object *a = json_object_new_object ();
    int32_t id = sutra_strmap_get (&t->tok_map, o->special_tokens[k], strlen (o->special_tokens[k]));
    json_object_object_add (a, "id", json_object_new_int (id));
    json_object_object_add (a, "content", json_object_new_string (o->special_tokens[k]));
    json_object_object_add (a, "single_word", json_object_new_boolean (0));
    json_object_object_add (a, "lstrip", json_object_new_boolean (0));
    json_object_object_add (a, "rstrip", json_object_new_boolean (0));
    json_object_object_add (a, "normalized", json_object_new_boolean (0));
    json_object_object_add (a, "special", json_object_new_boolean (1));
    json_object_array_add (added, a);
  }
  json_object_object_add (root, "added_tokens", added);
  json_object_object_add (root, "normalizer", NULL);
  const char *bl[3] = { "pre_tokenizer", "post_processor", "decoder" };
  const bool aps[3] = { false, true, true }, trim[3] = { true, false, true };
  for (int i = 0; i < 3; i++) {
    json_object *x = json_object_new_object ();
    json_object_object_add (x, "type", json_object_new_string ("ByteLevel"));
    json_object_object_add (x, "add_prefix_space", json_object_new_boolean (aps[i]));
    json_object_object_add (x, "trim_offsets", json_object_new_boolean (trim[i]));
    json_object_object_add (x, "use_regex", json_object_new_boolean (1));
    json_object_object_add (root, bl[i], x);
  }
  json_object *model = json_object_new_object ();
  json_object_object_add (model, "type", json_object_new_string ("BPE"));
  json_object_object_add (model, "dropout", NULL);
  json_object_object_add (model, "unk_token", NULL);
  json_object_object_add (model, "continuing_subword_prefix", NULL);
  json_object_object_add (model, "end_of_word_suffix", NULL);
  json_object_object_add (model, "fuse_unk", json_object_new_boolean (0));
  json_object_object_add (model, "byte_fallback", json_object_new_boolean (0));
  json_object_object_add (model, "ignore_merges", json_object_new_boolean (0));
  json_object *vocab = json_object_new_object ();
  for (size_t id = 0; id < t->n_tok; id++)
    json_object_object_add_ex (vocab, t->str[id], json_object_new_int ((int32_t) id),
                               JSON_C_OBJECT_ADD_KEY_IS_NEW);
  json_object_object_add (model, "vocab", vocab);
  json_object *merges = json_object_new_array ();
  for (size_t i = 0; i < t->n_merges; i++) {
    int32_t a = (int32_t) (t->merges[i] >> 32), b = (int32_t) (uint32_t) t->merges[i];
    json_object *pr = json_object_new_array ();
    json_object_array_add (pr, json_object_new_string_len (t->str[a], (int) t->len[a]));
    json_object_array_add (pr, json_object_new_string_len (t->str[b], (int) t->len[b]));
    json_object_array_add (merges, pr);
  }
  json_object_object_add (model, "merges", merges);
  json_object_object_add (root, "model", model);
  size_t n;
  const char *s = json_object_to_json_string_length (
    root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
  char *out = sutra_xmalloc (n + 2);
  memcpy (out, s, n);
  out[n] = '\n';
  out[n + 1] = '\0';
  *out_len = n + 1;
  json_object_put (root);
  return out;
}

static void
trainer_free (Trainer *t)
{
  for (size_t i = 0; i < t->n_tok; i++)
    free (t->str[i]);
  free (t->str);
  free (t->len);
  sutra_strmap_free (&t->tok_map);
  sutra_strmap_free (&t->word_map);
  for (size_t i = 0; i < t->n_words; i++)
    free (t->words[i].sym);
  free (t->words);
  sutra_u64map_free (&t->pair_idx);
  for (size_t p = 0; p < t->n_pairs; p++)
    free (t->pw[p]);
  free (t->pw);
  free (t->pw_n);
  free (t->pw_cap);
  free (t->pair_key);
  free (t->pair_count);
  free (t->pair_stamp);
  free (t->heap);
  free (t->merges);
}

static int
cmp_u32 (const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
  return x < y ? -1 : x > y;
}

SutraStatus
sutra_tokenizer_train_bpe_json (const SutraBpeTrainOptions *o, char **json, size_t *json_len,
                                SutraError *err)
{
  SUTRA_ASSERT (o && json);
  if (o->vocab_size < 256 + o->n_special || o->vocab_size >= SUTRA_TOK_MAX_ID)
    return sutra_error_set (err, SUTRA_ERR_INVALID,
                            "BPE training: vocab size %zu must be at least 256 + %zu special "
                            "tokens and below %d", o->vocab_size, o->n_special, SUTRA_TOK_MAX_ID);
  for (size_t k = 0; k < o->n_special; k++) {
    const char *s = o->special_tokens[k];
    size_t n = strlen (s);
    if (n == 0 || sutra_utf8_valid_prefix (s, n) != n)
      return sutra_error_set (err, SUTRA_ERR_INVALID,
                              "BPE training: special token %zu is empty or not UTF-8", k);
  }
  Trainer t;
  memset (&t, 0, sizeof t);
  sutra_strmap_init (&t.tok_map, o->vocab_size);
  sutra_strmap_init (&t.word_map, 1 << 16);
  sutra_u64map_init (&t.pair_idx, 1 << 16);
  for (size_t k = 0; k < o->n_special; k++)
    tok_add (&t, o->special_tokens[k], strlen (o->special_tokens[k]));
  /* the 256 byte characters, sorted by code point */
  const uint32_t *bc = sutra_tok_byte_chars ();
  uint32_t sorted[256];
  memcpy (sorted, bc, sizeof sorted);
  qsort (sorted, 256, sizeof *sorted, cmp_u32);
  for (int i = 0; i < 256; i++) {
    char u[4];
    size_t ul = sutra_utf8_encode (sorted[i], u);
    int32_t id = tok_add (&t, u, ul);
    for (int b = 0; b < 256; b++)
      if (bc[b] == sorted[i])
        t.byte_id[b] = id;
  }
  /* pre-tokenizer regex */
  SutraStatus st = SUTRA_OK;
  char *pat = sutra_tok_regex_translate (GPT2_PATTERN, strlen (GPT2_PATTERN), err);
  SUTRA_ASSERT (pat);
  int ec;
  PCRE2_SIZE eo;
  pcre2_code *re = pcre2_compile ((PCRE2_SPTR) pat, PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &ec, &eo, NULL);
  free (pat);
  SUTRA_ASSERT (re);
  pcre2_jit_compile (re, PCRE2_JIT_COMPLETE);
  pcre2_match_data *md = pcre2_match_data_create_from_pattern (re, NULL);
  for (size_t i = 0; i < o->n_files && st == SUTRA_OK; i++) {
    char *buf;
    size_t len;
    if ((st = sutra_read_file (o->files[i], 0, &buf, &len, err)))
      break;
    st = count_text (&t, re, md, o, buf, len, err);
    if (st)
      sutra_error_prefix (err, "%s", o->files[i]);
    free (buf);
  }
  for (size_t i = 0; i < o->n_texts && st == SUTRA_OK; i++)
    st = count_text (&t, re, md, o, o->texts[i], o->text_lens[i], err);
  pcre2_match_data_free (md);
  pcre2_code_free (re);
  if (st == SUTRA_OK) {
    count_pairs (&t);
    train (&t, o->vocab_size, o->min_frequency ? (int64_t) o->min_frequency : 2);
    *json = to_json (&t, o, json_len);
  }
  trainer_free (&t);
  return st;
}

SutraStatus
sutra_tokenizer_train_bpe (const SutraBpeTrainOptions *o, const char *out_path, SutraError *err)
{
  char *json;
  size_t n;
  SutraStatus st = sutra_tokenizer_train_bpe_json (o, &json, &n, err);
  if (st)
    return st;
  st = sutra_write_file_atomic (out_path, json, n, err);
  free (json);
  return st;
}
