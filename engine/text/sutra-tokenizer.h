/* sutra-tokenizer.h: Hugging Face tokenizer.json (+ tokenizer_config.json), encoded and
 * decoded exactly as the Rust `tokenizers` crate does (added tokens, normalizers,
 * pre-tokenizers, BPE / WordPiece / Unigram, post-processors, decoders).
 *
 * Offsets are BYTE offsets into the caller's input text (HF's Python API reports
 * character offsets; the Rust core works in bytes, as we do). Post-processor tokens
 * ([CLS], <s>, ...) get (0, 0). Invalid UTF-8 in the input is replaced by U+FFFD the way
 * Python's bytes.decode('utf-8', 'replace') does, and offsets still point into the
 * original bytes. A loaded tokenizer is immutable: any number of threads may encode and
 * decode with it at once. Export accessors (GGUF) are in sutra-tokenizer-export.h. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sutra-error.h"

typedef struct SutraTokenizer SutraTokenizer;           /* opaque, const after load */

/* path: a tokenizer.json file, or a model folder holding one. tokenizer_config.json
 * beside it is read when present (special tokens, add_bos/add_eos, clean-up default).
 * A component or option we do not support fails with SUTRA_ERR_UNSUPPORTED naming it. */
SutraStatus sutra_tokenizer_load      (const char *path, SutraTokenizer **out, SutraError *err);
/* From memory. config may be NULL. name is used in error messages ("tokenizer.json"). */
SutraStatus sutra_tokenizer_load_json (const char *json, size_t len, const char *config,
                                       size_t config_len, const char *name,
                                       SutraTokenizer **out, SutraError *err);
void        sutra_tokenizer_free      (SutraTokenizer *tok);

/* ---- encode ---- */
typedef enum {
  SUTRA_ENCODE_ADD_SPECIAL   = 1 << 0,  /* run the post-processor (BOS/EOS, [CLS]/[SEP]) */
  SUTRA_ENCODE_NO_PARSE_SPECIAL = 1 << 1,  /* special added tokens in the text are plain text
                                          (HF encode_special_tokens=True) */
} SutraEncodeFlags;

typedef struct {
  int32_t *ids;       /* [n] */
  size_t *starts;     /* [n] byte offset of the token's first byte in the input */
  size_t *ends;       /* [n] one past its last byte; starts[i] == ends[i] == 0 for specials */
  size_t n;
} SutraEncoding;

SutraStatus sutra_tokenizer_encode (const SutraTokenizer *tok, const char *text, size_t len,
                                    unsigned flags, SutraEncoding *out, SutraError *err);
void        sutra_encoding_clear   (SutraEncoding *enc);    /* frees arrays, zeroes */

/* ---- decode ---- */
typedef enum {
  SUTRA_DECODE_SKIP_SPECIAL = 1 << 0,   /* drop special added tokens */
  SUTRA_DECODE_CLEANUP      = 1 << 1,   /* transformers' clean_up_tokenization (" ." -> ".") */
} SutraDecodeFlags;

/* Unknown ids are skipped (as HF does). *out is malloc'ed, NUL-terminated UTF-8;
 * out_len (optional) excludes the NUL (the text may contain U+0000). */
SutraStatus sutra_tokenizer_decode (const SutraTokenizer *tok, const int32_t *ids, size_t n,
                                    unsigned flags, char **out, size_t *out_len,
                                    SutraError *err);

/* Streaming detokenizer: feed ids one at a time; each call returns only text that is
 * complete (never half a UTF-8 sequence). The concatenation of all pieces plus the flush
 * equals sutra_tokenizer_decode of all ids (HF DecodeStream's window algorithm). */
typedef struct SutraDetokenizer SutraDetokenizer;
SutraDetokenizer *sutra_detokenizer_new   (const SutraTokenizer *tok, unsigned flags);
/* Returned text is borrowed until the next call; "" (len 0) when nothing is complete. */
const char       *sutra_detokenizer_feed  (SutraDetokenizer *d, int32_t id, size_t *len);
/* Everything still held back (may contain U+FFFD for an unfinished sequence). */
const char       *sutra_detokenizer_flush (SutraDetokenizer *d, size_t *len);
void              sutra_detokenizer_free  (SutraDetokenizer *d);

/* ---- vocabulary ---- */
/* Max id + 1 over the model vocab and added tokens (ids in a gap have no token). */
size_t      sutra_tokenizer_vocab_size  (const SutraTokenizer *tok);
/* Borrowed token string (added token content first, then model vocab), NULL if none. */
const char *sutra_tokenizer_id_to_token (const SutraTokenizer *tok, int32_t id);
int32_t     sutra_tokenizer_token_to_id (const SutraTokenizer *tok, const char *token,
                                         size_t len);                 /* -1 if absent */
bool        sutra_tokenizer_is_special  (const SutraTokenizer *tok, int32_t id);

typedef enum { SUTRA_TOK_BOS, SUTRA_TOK_EOS, SUTRA_TOK_PAD, SUTRA_TOK_UNK } SutraTokRole;
/* From tokenizer_config.json (string or {"content": ...}) when present, else from the
 * post-processor / model unk / well-known added-token names. -1 / NULL when none. */
int32_t     sutra_tokenizer_role_id     (const SutraTokenizer *tok, SutraTokRole role);
const char *sutra_tokenizer_role_token  (const SutraTokenizer *tok, SutraTokRole role);
/* Whether encode with SUTRA_ENCODE_ADD_SPECIAL puts a token before / after the text. */
bool        sutra_tokenizer_adds_bos    (const SutraTokenizer *tok);
bool        sutra_tokenizer_adds_eos    (const SutraTokenizer *tok);
/* tokenizer_config.json clean_up_tokenization_spaces (true when absent, as transformers
 * 4.x did); pass SUTRA_DECODE_CLEANUP to reproduce transformers' decode(). */
bool        sutra_tokenizer_cleanup_default (const SutraTokenizer *tok);
