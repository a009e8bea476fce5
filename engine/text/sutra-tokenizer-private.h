/* sutra-tokenizer-private.h: data structures shared by the engine/text tokenizer files
 * (loader, normalizers, pre-tokenizers, models, post-processors, decoders, trainer).
 *
 * The pipeline follows Hugging Face tokenizers (tokenizers/src/tokenizer/ in the Rust sources):
 *   added tokens (raw) -> normalizer -> added tokens (normalized) -> pre-tokenizer ->
 *   model -> post-processor;   decode: ids -> token strings -> decoder chain -> text.
 * A "piece" is HF's NormalizedString: normalized bytes plus, per byte, the byte range of
 * the original text it came from ("alignment"). We keep alignments ABSOLUTE (offsets into
 * the whole input), where HF keeps them relative to the slice plus an `original_shift`;
 * the two give the same final offsets. Not installed; only the engine/text sources include it. */
#pragma once
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sutra-error.h"
#include "sutra-tokenizer-export.h"

/* ---------------------------------------------------------------------------------------
 * Limits */
#define SUTRA_TOK_MAX_ID        (1 << 24)   /* ids at or above this are rejected at load */
#define SUTRA_TOK_MAX_INPUT     ((size_t) UINT32_MAX - 16)  /* one encode call, bytes */

/* ---------------------------------------------------------------------------------------
 * UTF-8 and Unicode helpers (sutra-tok-util.c). Strings handed to these are valid UTF-8
 * unless the name says otherwise. */
static inline size_t
sutra_utf8_len_at (const char *s)   /* byte length of the char starting at s (valid) */
{
  unsigned char c = (unsigned char) s[0];
  return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
uint32_t sutra_utf8_decode (const char *s, size_t *adv);       /* valid UTF-8 in */
size_t   sutra_utf8_encode (uint32_t cp, char *out);           /* out: 4 bytes */
/* Length of the valid-UTF-8 prefix; n if the whole buffer is valid. */
size_t   sutra_utf8_valid_prefix (const char *s, size_t n);
/* Python bytes.decode('utf-8', 'replace'): each maximal invalid subpart -> U+FFFD.
 * Returns a malloc'ed NUL-terminated string; *map (optional, malloc'ed, out_len+1
 * entries) gives for every output byte the input byte it came from. */
char    *sutra_utf8_sanitize (const char *s, size_t n, size_t *out_len, size_t **map);

bool sutra_uc_is_whitespace (uint32_t c);     /* Unicode White_Space (Rust char::is_whitespace) */
bool sutra_uc_is_alphabetic (uint32_t c);     /* approx. Alphabetic: L, Nl, Other_Alphabetic */
bool sutra_uc_is_numeric (uint32_t c);        /* Nd | Nl | No (Rust char::is_numeric) */
bool sutra_uc_is_punctuation (uint32_t c);    /* ASCII punctuation or P* */
bool sutra_uc_is_other (uint32_t c);          /* unicode_categories is_other: Cc, Cf, Co ends */
bool sutra_uc_is_mark (uint32_t c);           /* M* */
bool sutra_uc_is_mark_nonspacing (uint32_t c);/* Mn */
bool sutra_uc_is_word (uint32_t c);           /* Rust regex \w: Alphabetic|M|Nd|Pc|Join_Control */
bool sutra_uc_is_chinese (uint32_t c);        /* BertNormalizer's CJK ranges */

/* ---------------------------------------------------------------------------------------
 * Arena: bump allocator in chunks; pointers stay valid until reset past them. */
typedef struct SutraTokArenaBlock SutraTokArenaBlock;
typedef struct {
  SutraTokArenaBlock *first, *cur;
} SutraTokArena;
typedef struct {
  SutraTokArenaBlock *blk;
  size_t used;
} SutraTokArenaMark;
void          *sutra_tok_arena_alloc (SutraTokArena *a, size_t n);      /* 8-byte aligned */
char          *sutra_tok_arena_strndup (SutraTokArena *a, const char *s, size_t n);
SutraTokArenaMark sutra_tok_arena_mark (const SutraTokArena *a);
void           sutra_tok_arena_reset (SutraTokArena *a, SutraTokArenaMark m);
void           sutra_tok_arena_free (SutraTokArena *a);

/* ---------------------------------------------------------------------------------------
 * Hash maps (open addressing, linear probing). */
uint64_t sutra_hash_bytes (const void *p, size_t n);

typedef struct {
  uint64_t hash;
  const char *key;     /* owned by the map's arena */
  uint32_t len;
  int32_t val;
} SutraStrEnt;
typedef struct {
  SutraStrEnt *ents;   /* capacity entries, key == NULL when empty */
  size_t cap, count;
  SutraTokArena keys;
} SutraStrMap;
void    sutra_strmap_init (SutraStrMap *m, size_t expect);
void    sutra_strmap_free (SutraStrMap *m);
int32_t sutra_strmap_get (const SutraStrMap *m, const char *k, size_t len);   /* -1: absent */
/* Sets k -> val (overwriting). Returns the previous value or -1. */
int32_t sutra_strmap_put (SutraStrMap *m, const char *k, size_t len, int32_t val);
/* Borrowed key stored for k (stable pointer), or NULL. */
const char *sutra_strmap_key (const SutraStrMap *m, const char *k, size_t len);

typedef struct {
  uint64_t k;          /* UINT64_MAX = empty */
  uint64_t v;
} SutraU64Ent;
typedef struct {
  SutraU64Ent *ents;   /* key and value side by side: one cache line per probe */
  size_t cap, count;
} SutraU64Map;
void sutra_u64map_init (SutraU64Map *m, size_t expect);
void sutra_u64map_free (SutraU64Map *m);
void sutra_u64map_put (SutraU64Map *m, uint64_t k, uint64_t v);

/* Fibonacci hashing: one multiply, the high bits pick the slot. */
static inline size_t
sutra_u64_slot (uint64_t k, size_t mask)
{
  uint64_t h = (k ^ (k >> 29)) * 0x9E3779B97F4A7C15ULL;
  return (size_t) (h >> 32) & mask;
}

static inline bool
sutra_u64map_get (const SutraU64Map *m, uint64_t k, uint64_t *v)
{
  if (!m->ents)
    return false;
  size_t mask = m->cap - 1;
  for (size_t i = sutra_u64_slot (k, mask);; i = (i + 1) & mask) {
    if (m->ents[i].k == k) {
      *v = m->ents[i].v;
      return true;
    }
    if (m->ents[i].k == UINT64_MAX)
      return false;
  }
}

/* ---------------------------------------------------------------------------------------
 * Pieces (HF NormalizedString) */
typedef struct {
  uint32_t s, e;       /* original byte range of one normalized byte */
} SutraTokAlign;

typedef struct {
  const char *s;              /* normalized bytes, valid UTF-8, not NUL-terminated */
  size_t len;
  const SutraTokAlign *al;    /* per byte; NULL = identity: s equals original[ostart..oend] */
  size_t ostart, oend;        /* original range (HF offsets_original) */
} SutraPiece;

static inline SutraTokAlign
sutra_piece_align (const SutraPiece *p, size_t i)
{
  if (p->al)
    return p->al[i];
  size_t a = i, b = i + 1;
  while (a > 0 && ((unsigned char) p->s[a] & 0xC0) == 0x80)
    a--;
  while (b < p->len && ((unsigned char) p->s[b] & 0xC0) == 0x80)
    b++;
  return (SutraTokAlign) { (uint32_t) (p->ostart + a), (uint32_t) (p->ostart + b) };
}

/* ---------------------------------------------------------------------------------------
 * Patterns: Split/Replace regexes and literal strings (HF SysRegex = Oniguruma; we run the
 * translated pattern on PCRE2 with JIT). */
typedef struct {
  char *source;        /* as written in tokenizer.json */
  bool is_regex;       /* false: String pattern (a literal) */
  int slot;            /* index into tok->regexes: compiled code (literals too) */
} SutraTokPattern;

/* Match sources for splitting (HF Pattern impls). */
typedef enum {
  SUTRA_SRC_REGEX,     /* pattern.slot */
  SUTRA_SRC_WS,        /* each char::is_whitespace char is a match */
  SUTRA_SRC_PUNCT,     /* each ASCII/Unicode punctuation char */
  SUTRA_SRC_NUMERIC,   /* each char::is_numeric char */
  SUTRA_SRC_CHAR,      /* each occurrence of one code point */
  SUTRA_SRC_WORDS,     /* regex \w+|[^\w\s]+ (Whitespace pre-tokenizer), natively */
} SutraTokSrc;

typedef enum {
  SUTRA_SPLIT_REMOVED,
  SUTRA_SPLIT_ISOLATED,
  SUTRA_SPLIT_MERGED_PREV,
  SUTRA_SPLIT_MERGED_NEXT,
  SUTRA_SPLIT_CONTIGUOUS,
} SutraTokBehavior;

/* ---------------------------------------------------------------------------------------
 * Normalizers (flattened: a Sequence becomes consecutive entries). */
typedef enum {
  SUTRA_NORM_NFC, SUTRA_NORM_NFD, SUTRA_NORM_NFKC, SUTRA_NORM_NFKD,
  SUTRA_NORM_LOWERCASE, SUTRA_NORM_STRIP_ACCENTS, SUTRA_NORM_BERT, SUTRA_NORM_PREPEND,
  SUTRA_NORM_REPLACE, SUTRA_NORM_STRIP, SUTRA_NORM_NMT, SUTRA_NORM_PRECOMPILED,
  SUTRA_NORM_BYTELEVEL,
} SutraTokNormKind;

typedef struct {
  uint32_t *array;       /* darts-clone double array units */
  size_t n_units;
  char *normalized;      /* NUL-separated replacement strings */
  size_t normalized_len;
} SutraTokCharsmap;

typedef struct {
  SutraTokNormKind kind;
  /* Bert */
  bool clean_text, handle_chinese, strip_accents, lowercase;
  /* Strip */
  bool strip_left, strip_right;
  /* Prepend / Replace content */
  char *str;
  size_t str_len;
  SutraTokPattern pat;   /* Replace */
  SutraTokCharsmap cmap; /* Precompiled */
} SutraTokNorm;

/* ---------------------------------------------------------------------------------------
 * Pre-tokenizer steps (flattened). */
typedef enum {
  SUTRA_STEP_SPLIT,         /* src + behavior + invert */
  SUTRA_STEP_PREFIX_SPACE,  /* ByteLevel add_prefix_space: prepend " " unless it starts with ' ' */
  SUTRA_STEP_BYTE_MAP,      /* ByteLevel: every byte -> its GPT-2 printable char */
  SUTRA_STEP_METASPACE,     /* ' ' -> replacement, then prepend per scheme */
  SUTRA_STEP_FIXED,         /* FixedLength: chunks of `length` chars */
} SutraTokStepKind;

typedef enum { SUTRA_PREPEND_ALWAYS, SUTRA_PREPEND_FIRST, SUTRA_PREPEND_NEVER } SutraTokPrepend;

typedef struct {
  SutraTokStepKind kind;
  SutraTokSrc src;
  SutraTokPattern pat;       /* src == REGEX */
  uint32_t cp;               /* src == CHAR; Metaspace replacement */
  SutraTokBehavior behavior;
  bool invert;
  SutraTokPrepend prepend;   /* Metaspace */
  size_t length;             /* FixedLength */
} SutraTokStep;

/* ---------------------------------------------------------------------------------------
 * Post-processors (flattened Sequence). */
typedef enum {
  SUTRA_POST_TEMPLATE, SUTRA_POST_BYTELEVEL, SUTRA_POST_ROBERTA, SUTRA_POST_BERT,
} SutraTokPostKind;

typedef struct {
  int32_t *ids;              /* template special: its ids; Roberta/Bert: one id */
  char **tokens;             /* matching token strings (for offset trimming) */
  size_t n;
} SutraTokSpecialSeq;

typedef struct {
  SutraTokPostKind kind;
  bool trim_offsets, add_prefix_space;       /* ByteLevel / Roberta */
  /* Template single: items; item i is special seq i, or the sequence when seq_index == i */
  SutraTokSpecialSeq *items;                 /* n_items; .n == 0 and is_seq for $A */
  bool *is_seq;
  size_t n_items;
  SutraTokSpecialSeq cls, sep;               /* Roberta / Bert */
} SutraTokPost;

/* ---------------------------------------------------------------------------------------
 * Decoders (flattened Sequence). */
typedef enum {
  SUTRA_DEC_BYTELEVEL, SUTRA_DEC_METASPACE, SUTRA_DEC_WORDPIECE, SUTRA_DEC_BYTEFALLBACK,
  SUTRA_DEC_FUSE, SUTRA_DEC_STRIP, SUTRA_DEC_REPLACE, SUTRA_DEC_CTC, SUTRA_DEC_BPE,
} SutraTokDecKind;

typedef struct {
  SutraTokDecKind kind;
  uint32_t cp;               /* Metaspace replacement; Strip content */
  SutraTokPrepend prepend;   /* Metaspace */
  size_t start, stop;        /* Strip */
  char *str, *str2;          /* WordPiece prefix; Replace content; CTC pad / delimiter; BPE suffix */
  bool cleanup;              /* WordPiece / CTC */
  SutraTokPattern pat;       /* Replace */
} SutraTokDec;

/* ---------------------------------------------------------------------------------------
 * Added tokens (HF AddedVocabulary). */
typedef struct {
  char *content;
  size_t len;
  char *norm;                /* normalized form when normalized && it differs; else NULL */
  size_t norm_len;
  int32_t id;
  bool special, lstrip, rstrip, normalized, single_word;
} SutraTokAdded;

/* Byte trie for leftmost-longest matching of added tokens. */
typedef struct {
  SutraU64Map edges;         /* (node << 8 | byte) -> child node */
  int32_t *term;             /* node -> added index, or -1 */
  size_t n_nodes, cap_nodes;
  uint8_t first[256];        /* 1 when some token starts with this byte */
  bool empty;
} SutraTokTrie;

/* ---------------------------------------------------------------------------------------
 * Models */
typedef struct SutraBpeCache SutraBpeCache;

typedef struct {
  SutraTokModelType type;
  SutraStrMap vocab;         /* token -> id */
  char **vocab_r;            /* [n_ids] token string (NUL-terminated) or NULL */
  uint32_t *vocab_r_len;
  size_t n_ids;              /* max model id + 1 */
  size_t vocab_cap;          /* allocated entries of vocab_r */
  size_t n_entries;          /* HF get_vocab_size(): number of vocab entries */
  /* BPE */
  SutraU64Map merges;        /* (a << 32 | b) -> (rank << 32 | new_id) */
  char **merge_strs;         /* [n_merges] "a b" as in the file order */
  size_t n_merges;
  char *unk_token;           /* BPE / WordPiece */
  char *prefix, *suffix;     /* BPE continuing_subword_prefix / end_of_word_suffix; NULL or "" = none */
  size_t prefix_len, suffix_len;
  bool fuse_unk, byte_fallback, ignore_merges;
  int32_t byte_ids[256];     /* "<0xNN>" ids or -1 (byte fallback) */
  int32_t char_ids[2048];    /* id of the single char U+0000..U+07FF, -1 absent (no prefix/suffix) */
  bool char_table;
  bool meta_split;            /* BPE words may be cut before a U+2581 (see sutra-bpe.c) */
  SutraBpeCache *cache;
  float *rank_score;         /* [n_ids] export score: -rank of the producing merge, else 0 */
  /* WordPiece */
  size_t max_input_chars;
  /* Unigram */
  double *scores;            /* [n_ids] */
  double min_score;
  int32_t unk_id;            /* -1 none (Unigram) */
  SutraU64Map trie_edges;    /* (node << 8 | byte) -> child */
  int32_t *trie_term;        /* node -> id or -1 */
  size_t trie_nodes;
} SutraTokModel;

/* ---------------------------------------------------------------------------------------
 * The tokenizer */
struct SutraTokenizer {
  char *name;                        /* path used in messages */
  SutraTokModel model;
  SutraTokAdded *added;
  size_t n_added;
  SutraStrMap added_map;             /* content -> index into added[] */
  int32_t *added_by_id;              /* [n_vocab] -> index into added[] or -1 */
  SutraStrMap special_set;           /* contents of special added tokens */
  SutraTokTrie trie_raw, trie_norm;  /* non-normalized / normalized added tokens */

  SutraTokNorm *norms;
  size_t n_norms;
  SutraTokStep *steps;
  size_t n_steps;
  SutraTokPost *posts;
  size_t n_posts;
  bool has_post;
  SutraTokDec *decs;
  size_t n_decs;
  bool has_decoder;

  pcre2_code **regexes;
  size_t n_regexes;
  char **regex_sources;              /* translated pattern text, for export */

  size_t n_vocab;                    /* max id + 1 over model and added tokens */
  uint16_t *trim_lead, *trim_trail;  /* [n_vocab] when a post-processor trims offsets */
  bool needs_trim;

  int32_t role_id[4];                /* SutraTokRole */
  char *role_str[4];
  bool adds_bos, adds_eos;
  bool cleanup_default;              /* tokenizer_config clean_up_tokenization_spaces */
  bool byte_level;
};

/* ---------------------------------------------------------------------------------------
 * Encode context (one per call; owns every scratch buffer, so the tokenizer stays const). */
typedef struct {
  const SutraTokenizer *tok;
  SutraTokArena arena;
  pcre2_match_data *md;          /* created on first regex use; shared by all patterns */
  SutraError *err;
  SutraStatus status;
  bool parse_special;
  /* transform scratch */
  uint32_t *cps;
  int32_t *chg;
  size_t tcap;
  /* output */
  int32_t *ids;
  size_t *starts, *ends;
  uint16_t *lead, *trail;
  size_t n, cap;
  /* model scratch buffers (sutra_tok_scratch); scr[0] is BPE's symbol array */
  void *scr[4];
  size_t scr_cap[4];
} SutraTokCtx;

void  sutra_tok_ctx_init (SutraTokCtx *c, const SutraTokenizer *tok, SutraError *err);
void  sutra_tok_ctx_clear (SutraTokCtx *c);
void *sutra_tok_scratch (SutraTokCtx *c, int which, size_t n);   /* grows, contents lost */
SutraStatus sutra_tok_fail (SutraTokCtx *c, SutraStatus st, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* Appends one output token (offsets already in original bytes). value: token text used
 * for ByteLevel offset trimming (may be NULL when tok->needs_trim is false). */
void  sutra_tok_emit (SutraTokCtx *c, int32_t id, size_t start, size_t end,
                      const char *value, size_t vlen);
/* Converts model offsets [a,b) within piece p to original offsets and emits. */
void  sutra_tok_emit_piece (SutraTokCtx *c, const SutraPiece *p, int32_t id, size_t a, size_t b,
                            const char *value, size_t vlen);
void  sutra_tok_trim_counts (const char *s, size_t n, uint16_t *lead, uint16_t *trail);

/* ---- regex (sutra-pretok.c) ---- */
/* Translates an Oniguruma pattern (HF SysRegex) to PCRE2 syntax; malloc'ed or NULL with
 * err set (unsupported construct). */
char *sutra_tok_regex_translate (const char *src, size_t n, SutraError *err);
/* Compiles (translated) pattern text into tok->regexes; returns the slot or -1. */
int   sutra_tok_regex_add (SutraTokenizer *tok, const char *pattern, size_t n, bool literal,
                           const char *where, SutraError *err);
/* Next match at or after *pos following Oniguruma FindMatches semantics; false when none.
 * state: last match end or SIZE_MAX. Returns false and sets c->status on engine errors. */
bool  sutra_tok_regex_next (SutraTokCtx *c, int slot, const char *s, size_t n, size_t *pos,
                            size_t *last_end, size_t *ms, size_t *me);

/* ---- normalizers (sutra-normalizer.c) ---- */
/* HF NormalizedString::transform over the whole piece: (cps[i], chg[i]) for i < n. */
void sutra_piece_transform (SutraTokCtx *c, SutraPiece *p, const uint32_t *cps,
                            const int32_t *chg, size_t n, size_t initial_offset);
void sutra_piece_prepend (SutraTokCtx *c, SutraPiece *p, const char *s, size_t n);
/* Replace every match of src in p by content (HF NormalizedString::replace). */
bool sutra_piece_replace_pattern (SutraTokCtx *c, SutraPiece *p, const SutraTokPattern *pat,
                                  const char *content, size_t content_len);
void sutra_piece_replace_char (SutraTokCtx *c, SutraPiece *p, uint32_t from,
                               const char *content, size_t content_len);
bool sutra_tok_normalize (SutraTokCtx *c, SutraPiece *p);   /* all tok->norms in order */
/* Normalizes a plain string with the tokenizer's normalizer (added-token patterns). */
char *sutra_tok_normalize_string (const SutraTokenizer *tok, const char *s, size_t n,
                                  size_t *out_len, SutraError *err);
SutraStatus sutra_tok_charsmap_parse (SutraTokCharsmap *m, const uint8_t *data, size_t n);
void sutra_tok_charsmap_free (SutraTokCharsmap *m);

/* ---- pre-tokenizer + model driver (sutra-pretok.c) ---- */
bool sutra_tok_pretokenize_and_model (SutraTokCtx *c, const SutraPiece *p);

/* ---- models ---- */
bool sutra_bpe_tokenize (SutraTokCtx *c, const SutraPiece *p);        /* sutra-bpe.c */
bool sutra_wordpiece_tokenize (SutraTokCtx *c, const SutraPiece *p);  /* sutra-wordpiece.c */
bool sutra_unigram_tokenize (SutraTokCtx *c, const SutraPiece *p);    /* sutra-unigram.c */
SutraBpeCache *sutra_bpe_cache_new (void);
void sutra_bpe_cache_free (SutraBpeCache *cache);
void sutra_tok_model_free (SutraTokModel *m);
/* Builds Unigram's byte trie over vocab_r. */
void sutra_unigram_build_trie (SutraTokModel *m);

/* ---- trie of added tokens (sutra-tok-encode.c) ---- */
void sutra_tok_trie_build (SutraTokTrie *t, const SutraTokenizer *tok, bool normalized);
void sutra_tok_trie_free (SutraTokTrie *t);

/* ---- decoders (sutra-tok-decode.c) ---- */
void sutra_tok_dec_free (SutraTokDec *d);

/* ---- loader helpers (sutra-tok-load.c) ---- */
SutraStatus sutra_tok_build_from_json (SutraTokenizer *tok, const char *json, size_t len,
                                       const char *config, size_t config_len, SutraError *err);
void        sutra_tok_destroy (SutraTokenizer *tok);
