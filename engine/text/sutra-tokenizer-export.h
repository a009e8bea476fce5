/* sutra-tokenizer-export.h: what a GGUF writer needs from a loaded tokenizer.json
 * (tokenizer.ggml.model / tokens / scores / token_type / merges / pre-tokenizer), plus the
 * encode benchmark behind `sutra bench tokenize`.
 *
 * Token types use llama.cpp's numbering (llama_token_type / gguf-py TokenType).
 * Scores: Unigram -> the piece's log-probability from the file. BPE -> the "-rank"
 * convention: a token produced by merge number r (0-based, file order) scores -(r + 1);
 * tokens no merge produces (single characters, bytes, added tokens) score 0. With
 * llama.cpp's SentencePiece tokenizer, which merges the highest-scoring pair first, this
 * reproduces the merge order. WordPiece -> 0. */
#pragma once
#include "sutra-tokenizer.h"

typedef enum {
  SUTRA_TOK_MODEL_BPE,
  SUTRA_TOK_MODEL_WORDPIECE,
  SUTRA_TOK_MODEL_UNIGRAM,
} SutraTokModelType;

typedef enum {
  SUTRA_TOKEN_TYPE_NORMAL       = 1,
  SUTRA_TOKEN_TYPE_UNKNOWN      = 2,   /* the model's unk token */
  SUTRA_TOKEN_TYPE_CONTROL      = 3,   /* special added tokens */
  SUTRA_TOKEN_TYPE_USER_DEFINED = 4,   /* non-special added tokens */
  SUTRA_TOKEN_TYPE_UNUSED       = 5,   /* an id with no token (gap) */
  SUTRA_TOKEN_TYPE_BYTE         = 6,   /* <0xNN> byte-fallback tokens */
} SutraTokenType;

SutraTokModelType sutra_tokenizer_model_type (const SutraTokenizer *tok);
/* True when the pipeline is GPT-2 byte-level (ByteLevel pre-tokenizer or decoder). */
bool              sutra_tokenizer_is_byte_level (const SutraTokenizer *tok);
/* BPE merges in rank order, each "a b" (borrowed). 0 for other models. */
size_t            sutra_tokenizer_n_merges   (const SutraTokenizer *tok);
const char       *sutra_tokenizer_merge      (const SutraTokenizer *tok, size_t i);
float             sutra_tokenizer_token_score (const SutraTokenizer *tok, int32_t id);
SutraTokenType    sutra_tokenizer_token_type  (const SutraTokenizer *tok, int32_t id);
/* The split regexes the pre-tokenizer runs, in order, as written in tokenizer.json
 * (ByteLevel's built-in GPT-2 pattern included). Borrowed. */
size_t            sutra_tokenizer_n_pretok_regexes (const SutraTokenizer *tok);
const char       *sutra_tokenizer_pretok_regex     (const SutraTokenizer *tok, size_t i);

/* ---- benchmark ---- */
typedef struct {
  double mb_per_s;       /* input MB (1e6 bytes) per second of encode time (wall clock) */
  double seconds;
  double cpu_seconds;    /* CPU time of the calling thread over the same span */
  size_t bytes;          /* bytes encoded per pass */
  size_t tokens;         /* tokens produced per pass */
  int passes;
} SutraTokBenchResult;

/* Encodes text (in `chunk`-byte pieces cut at newlines; 0 = one call) on the calling
 * thread, repeating until min_seconds have passed (at least once). */
SutraStatus sutra_tokenizer_bench (const SutraTokenizer *tok, const char *text, size_t len,
                                   size_t chunk, double min_seconds, SutraTokBenchResult *out,
                                   SutraError *err);
