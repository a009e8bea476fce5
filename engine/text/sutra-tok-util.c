/* sutra-tok-util.c: UTF-8 coding, Unicode character classes, an arena and two hash maps
 * used by the tokenizer files.
 *
 * Character classes mirror what the Rust `tokenizers` crate calls: char::is_whitespace
 * (White_Space property), char::is_numeric (Nd|Nl|No), unicode_categories (P*, C*, Mn),
 * regex \w (UTS #18 word: Alphabetic|Mark|Nd|Pc|Join_Control). General categories come
 * from utf8proc. */
#include "sutra-tokenizer-private.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---------------------------------------------------------------------------------------
 * UTF-8 */

uint32_t
sutra_utf8_decode (const char *s, size_t *adv)
{
  const unsigned char *u = (const unsigned char *) s;
  if (u[0] < 0x80) {
    *adv = 1;
    return u[0];
  }
  if (u[0] < 0xE0) {
    *adv = 2;
    return ((uint32_t) (u[0] & 0x1F) << 6) | (u[1] & 0x3F);
  }
  if (u[0] < 0xF0) {
    *adv = 3;
    return ((uint32_t) (u[0] & 0x0F) << 12) | ((uint32_t) (u[1] & 0x3F) << 6) | (u[2] & 0x3F);
  }
  *adv = 4;
  return ((uint32_t) (u[0] & 0x07) << 18) | ((uint32_t) (u[1] & 0x3F) << 12)
         | ((uint32_t) (u[2] & 0x3F) << 6) | (u[3] & 0x3F);
}

size_t
sutra_utf8_encode (uint32_t cp, char *out)
{
  unsigned char *o = (unsigned char *) out;
  if (cp < 0x80) {
    o[0] = (unsigned char) cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (unsigned char) (0xC0 | (cp >> 6));
    o[1] = (unsigned char) (0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (unsigned char) (0xE0 | (cp >> 12));
    o[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
    o[2] = (unsigned char) (0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (unsigned char) (0xF0 | (cp >> 18));
  o[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
  o[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
  o[3] = (unsigned char) (0x80 | (cp & 0x3F));
  return 4;
}

/* Length of the valid sequence at s[0..n), or -k when the first k bytes are a maximal
 * invalid subpart (Unicode 15 §3.9 "U+FFFD substitution of maximal subparts", which is
 * what Python's 'replace' error handler and Rust's from_utf8_lossy implement). */
static int
utf8_seq (const unsigned char *s, size_t n)
{
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  int need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF)
    need = 1;
  else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else
    return -1;
  for (int i = 1; i <= need; i++) {
    if ((size_t) i >= n)
      return -i;
    unsigned char b = s[i];
    if (b < lo || b > hi)
      return -i;
    lo = 0x80;   /* only the second byte has the narrowed range */
    hi = 0xBF;
  }
  return need + 1;
}

size_t
sutra_utf8_valid_prefix (const char *s, size_t n)
{
  const unsigned char *u = (const unsigned char *) s;
  size_t i = 0;
  while (i < n) {
    /* ASCII fast path, 8 bytes at a time */
    while (i + 8 <= n) {
      uint64_t w;
      memcpy (&w, u + i, 8);
      if (w & 0x8080808080808080ULL)
        break;
      i += 8;
    }
    if (i >= n)
      break;
    int k = utf8_seq (u + i, n - i);
    if (k < 0)
      return i;
    i += (size_t) k;
  }
  return n;
}

char *
sutra_utf8_sanitize (const char *s, size_t n, size_t *out_len, size_t **map)
{
  const unsigned char *u = (const unsigned char *) s;
  /* each invalid byte becomes at most 3 bytes */
  char *out = sutra_xmalloc (n * 3 + 1);
  size_t *m = map ? sutra_xmalloc ((n * 3 + 1) * sizeof *m) : NULL;
  size_t o = 0, i = 0;
  while (i < n) {
    int k = utf8_seq (u + i, n - i);
    if (k > 0) {
      for (int j = 0; j < k; j++) {
        if (m)
          m[o] = i + (size_t) j;
        out[o++] = (char) u[i + (size_t) j];
      }
      i += (size_t) k;
    } else {
      static const char rep[3] = { (char) 0xEF, (char) 0xBF, (char) 0xBD };
      for (int j = 0; j < 3; j++) {
        if (m)
          m[o] = i;
        out[o++] = rep[j];
      }
      i += (size_t) -k;
    }
  }
  if (m)
    m[o] = n;
  out[o] = '\0';
  *out_len = o;
  if (map)
    *map = m;
  return out;
}

/* ---------------------------------------------------------------------------------------
 * Character classes */

bool
sutra_uc_is_whitespace (uint32_t c)
{
  /* Unicode White_Space (PropList.txt), the set Rust's char::is_whitespace and regex \s use */
  if (c <= 0x20)
    return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85)
    return false;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028
         || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool
sutra_uc_is_alphabetic (uint32_t c)
{
  if (c < 0x80)
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  utf8proc_category_t k = utf8proc_category ((utf8proc_int32_t) c);
  if (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO)
    return true;
  if (k == UTF8PROC_CATEGORY_NL)
    return true;
  /* Other_Alphabetic outside the marks: circled / squared Latin letters (So) */
  return (c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149)
         || (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
}

bool
sutra_uc_is_numeric (uint32_t c)
{
  if (c < 0x80)
    return c >= '0' && c <= '9';
  utf8proc_category_t k = utf8proc_category ((utf8proc_int32_t) c);
  return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool
sutra_uc_is_punctuation (uint32_t c)
{
  if (c < 0x80)   /* char::is_ascii_punctuation: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ */
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60)
           || (c >= 0x7B && c <= 0x7E);
  utf8proc_category_t k = utf8proc_category ((utf8proc_int32_t) c);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

bool
sutra_uc_is_other (uint32_t c)
{
  /* unicode_categories 0.1.1 (what HF's BertNormalizer calls): Cc | Cf | Co, where its
   * tables are the lines of UnicodeData.txt, so of each private-use range only the
   * <First> and <Last> code points are listed. Unassigned (Cn) is not "other". */
  utf8proc_category_t k = utf8proc_category ((utf8proc_int32_t) c);
  if (k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF)
    return true;
  return c == 0xE000 || c == 0xF8FF || c == 0xF0000 || c == 0xFFFFD || c == 0x100000
         || c == 0x10FFFD;
}

bool
sutra_uc_is_mark (uint32_t c)
{
  if (c < 0x300)
    return false;
  utf8proc_category_t k = utf8proc_category ((utf8proc_int32_t) c);
  return k >= UTF8PROC_CATEGORY_MN && k <= UTF8PROC_CATEGORY_ME;
}

bool
sutra_uc_is_mark_nonspacing (uint32_t c)
{
  if (c < 0x300)
    return false;
  return utf8proc_category ((utf8proc_int32_t) c) == UTF8PROC_CATEGORY_MN;
}

bool
sutra_uc_is_word (uint32_t c)
{
  if (c < 0x80)
    return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '_';
  if (c == 0x200C || c == 0x200D)   /* Join_Control */
    return true;
  utf8proc_category_t k = utf8proc_category ((utf8proc_int32_t) c);
  if ((k >= UTF8PROC_CATEGORY_MN && k <= UTF8PROC_CATEGORY_ND) || k == UTF8PROC_CATEGORY_PC)
    return true;
  return sutra_uc_is_alphabetic (c);
}

bool
sutra_uc_is_chinese (uint32_t c)
{
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF)
         || (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F)
         || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF)
         || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* ---------------------------------------------------------------------------------------
 * Arena */

struct SutraTokArenaBlock {
  SutraTokArenaBlock *next;
  size_t size, used;
  _Alignas (16) unsigned char data[];
};

#define ARENA_MIN_BLOCK ((size_t) 64 << 10)

void *
sutra_tok_arena_alloc (SutraTokArena *a, size_t n)
{
  n = (n + 15) & ~(size_t) 15;
  if (n == 0)
    n = 16;
  SutraTokArenaBlock *b = a->cur;
  if (b && b->size - b->used >= n) {
    void *p = b->data + b->used;
    b->used += n;
    return p;
  }
  /* reuse a following block if it is big enough */
  if (b && b->next && b->next->size >= n) {
    b = b->next;
    b->used = n;
    a->cur = b;
    return b->data;
  }
  size_t want = ARENA_MIN_BLOCK;
  if (b && b->size * 2 > want)
    want = b->size * 2;
  if (want > ((size_t) 64 << 20))
    want = (size_t) 64 << 20;
  if (want < n)
    want = n;
  SutraTokArenaBlock *nb = sutra_xmalloc (sizeof *nb + want);
  nb->size = want;
  nb->used = n;
  if (b) {
    nb->next = b->next;
    b->next = nb;
  } else {
    nb->next = a->first;
    a->first = nb;
  }
  a->cur = nb;
  return nb->data;
}

char *
sutra_tok_arena_strndup (SutraTokArena *a, const char *s, size_t n)
{
  char *p = sutra_tok_arena_alloc (a, n + 1);
  if (n)
    memcpy (p, s, n);
  p[n] = '\0';
  return p;
}

SutraTokArenaMark
sutra_tok_arena_mark (const SutraTokArena *a)
{
  return (SutraTokArenaMark) { a->cur, a->cur ? a->cur->used : 0 };
}

void
sutra_tok_arena_reset (SutraTokArena *a, SutraTokArenaMark m)
{
  if (!m.blk) {
    a->cur = a->first;
    if (a->cur)
      a->cur->used = 0;
    return;
  }
  a->cur = m.blk;
  m.blk->used = m.used;
}

void
sutra_tok_arena_free (SutraTokArena *a)
{
  SutraTokArenaBlock *b = a->first;
  while (b) {
    SutraTokArenaBlock *n = b->next;
    free (b);
    b = n;
  }
  a->first = a->cur = NULL;
}

/* ---------------------------------------------------------------------------------------
 * Hashing: 8 bytes at a time, multiply-xorshift mixing (in the style of wyhash/murmur). */

static inline uint64_t
mix64 (uint64_t x)
{
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  x *= 0xd6e8feb86659fd93ULL;
  x ^= x >> 32;
  return x;
}

uint64_t
sutra_hash_bytes (const void *p, size_t n)
{
  const unsigned char *s = p;
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
  while (n >= 8) {
    uint64_t w;
    memcpy (&w, s, 8);
    h = (h ^ mix64 (w)) * 0x9e3779b97f4a7c15ULL;
    s += 8;
    n -= 8;
  }
  uint64_t w = 0;
  if (n)
    memcpy (&w, s, n);
  h = (h ^ mix64 (w ^ ((uint64_t) n << 56))) * 0x9e3779b97f4a7c15ULL;
  return mix64 (h);
}

/* ---------------------------------------------------------------------------------------
 * String map */

static size_t
pow2_at_least (size_t n)
{
  size_t c = 16;
  while (c < n)
    c <<= 1;
  return c;
}

void
sutra_strmap_init (SutraStrMap *m, size_t expect)
{
  memset (m, 0, sizeof *m);
  m->cap = pow2_at_least (expect * 2 + 1);
  m->ents = sutra_xcalloc (m->cap, sizeof *m->ents);
}

void
sutra_strmap_free (SutraStrMap *m)
{
  free (m->ents);
  sutra_tok_arena_free (&m->keys);
  memset (m, 0, sizeof *m);
}

static SutraStrEnt *
strmap_find (const SutraStrMap *m, const char *k, size_t len, uint64_t h)
{
  size_t mask = m->cap - 1;
  for (size_t i = (size_t) h & mask;; i = (i + 1) & mask) {
    SutraStrEnt *e = &m->ents[i];
    if (!e->key)
      return e;
    if (e->hash == h && e->len == len && memcmp (e->key, k, len) == 0)
      return e;
  }
}

int32_t
sutra_strmap_get (const SutraStrMap *m, const char *k, size_t len)
{
  if (!m->ents)
    return -1;
  SutraStrEnt *e = strmap_find (m, k, len, sutra_hash_bytes (k, len));
  return e->key ? e->val : -1;
}

const char *
sutra_strmap_key (const SutraStrMap *m, const char *k, size_t len)
{
  if (!m->ents)
    return NULL;
  SutraStrEnt *e = strmap_find (m, k, len, sutra_hash_bytes (k, len));
  return e->key;
}

int32_t
sutra_strmap_put (SutraStrMap *m, const char *k, size_t len, int32_t val)
{
  if (!m->ents)
    sutra_strmap_init (m, 16);
  if ((m->count + 1) * 2 > m->cap) {   /* grow at 50% load */
    SutraStrEnt *old = m->ents;
    size_t oc = m->cap;
    m->cap *= 2;
    m->ents = sutra_xcalloc (m->cap, sizeof *m->ents);
    for (size_t i = 0; i < oc; i++)
      if (old[i].key)
        *strmap_find (m, old[i].key, old[i].len, old[i].hash) = old[i];
    free (old);
  }
  uint64_t h = sutra_hash_bytes (k, len);
  SutraStrEnt *e = strmap_find (m, k, len, h);
  if (e->key) {
    int32_t prev = e->val;
    e->val = val;
    return prev;
  }
  e->key = sutra_tok_arena_strndup (&m->keys, k, len);
  e->len = (uint32_t) len;
  e->hash = h;
  e->val = val;
  m->count++;
  return -1;
}

/* ---------------------------------------------------------------------------------------
 * u64 -> u64 map */

void
sutra_u64map_init (SutraU64Map *m, size_t expect)
{
  m->cap = pow2_at_least (expect * 2 + 1);
  m->count = 0;
  m->ents = sutra_xmalloc (m->cap * sizeof *m->ents);
  for (size_t i = 0; i < m->cap; i++)
    m->ents[i].k = UINT64_MAX;
}

void
sutra_u64map_free (SutraU64Map *m)
{
  free (m->ents);
  memset (m, 0, sizeof *m);
}

static void
u64map_insert (SutraU64Map *m, uint64_t k, uint64_t v)
{
  size_t mask = m->cap - 1;
  for (size_t i = sutra_u64_slot (k, mask);; i = (i + 1) & mask) {
    if (m->ents[i].k == k) {
      m->ents[i].v = v;
      return;
    }
    if (m->ents[i].k == UINT64_MAX) {
      m->ents[i].k = k;
      m->ents[i].v = v;
      m->count++;
      return;
    }
  }
}

void
sutra_u64map_put (SutraU64Map *m, uint64_t k, uint64_t v)
{
  SUTRA_ASSERT (k != UINT64_MAX);
  if (!m->ents)
    sutra_u64map_init (m, 16);
  if ((m->count + 1) * 2 > m->cap) {
    SutraU64Ent *old = m->ents;
    size_t oc = m->cap;
    m->cap *= 2;
    m->count = 0;
    m->ents = sutra_xmalloc (m->cap * sizeof *m->ents);
    for (size_t i = 0; i < m->cap; i++)
      m->ents[i].k = UINT64_MAX;
    for (size_t i = 0; i < oc; i++)
      if (old[i].k != UINT64_MAX)
        u64map_insert (m, old[i].k, old[i].v);
    free (old);
  }
  u64map_insert (m, k, v);
}
