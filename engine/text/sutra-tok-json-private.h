/* sutra-tok-json-private.h: JSON helpers shared by the tokenizer.json loader files
 * (sutra-tok-json.c, sutra-tok-load.c, sutra-tok-load-pipeline.c). Every accessor
 * returns SUTRA_OK or fills the error with "<file>: <path>: <problem>". */
#pragma once
#include <json-c/json.h>

#include "sutra-tokenizer-private.h"

typedef struct {
  SutraTokenizer *tok;
  SutraError *err;
} Ld;

SutraStatus tj_bad (Ld *l, SutraStatus st, const char *path, const char *fmt, ...)
  __attribute__ ((format (printf, 4, 5)));
json_object *tj_get (json_object *o, const char *key);          /* NULL when absent */
bool         tj_null (json_object *v);                          /* absent or null */
const char  *tj_type (json_object *v);                          /* type name for messages */
SutraStatus  tj_bool (Ld *l, json_object *o, const char *key, bool def, const char *path,
                      bool *out);
SutraStatus  tj_int (Ld *l, json_object *o, const char *key, int64_t def, int64_t lo, int64_t hi,
                     const char *path, int64_t *out);
/* A string value, checked to be valid UTF-8. */
SutraStatus  tj_str_of (Ld *l, json_object *v, const char *path, const char **s, size_t *n);
/* Optional string member (*s = NULL when absent or null). */
SutraStatus  tj_str (Ld *l, json_object *o, const char *key, const char *path, const char **s,
                     size_t *n);
/* Member holding exactly one character. */
SutraStatus  tj_char (Ld *l, json_object *o, const char *key, uint32_t def, const char *path,
                      uint32_t *cp);
char        *tj_dup_opt (const char *s, size_t n);
/* "pattern": {"String": s} | {"Regex": r} compiled into a regex slot. */
SutraStatus  tj_pattern (Ld *l, json_object *o, const char *path, SutraTokPattern *pat);
SutraStatus  tj_type_of (Ld *l, json_object *o, const char *path, const char **type);
SutraStatus  tj_array (Ld *l, json_object *o, const char *key, const char *path,
                       json_object **arr);
SutraStatus  tj_behavior (Ld *l, json_object *o, const char *path, SutraTokBehavior def,
                          SutraTokBehavior *b);
uint8_t     *tj_b64_decode (const char *s, size_t n, size_t *out_len);   /* NULL if invalid */
/* Parses a whole JSON document (must be an object, valid UTF-8, nothing after it). */
json_object *tj_parse (Ld *l, const char *text, size_t len, const char *what, SutraStatus *st);

/* ---- pipeline parts (sutra-tok-load-pipeline.c) ---- */
SutraStatus   sutra_tok_load_normalizer (Ld *l, json_object *o, const char *path, int depth);
SutraStatus   sutra_tok_load_pretok (Ld *l, json_object *o, const char *path, int depth);
SutraStatus   sutra_tok_load_post (Ld *l, json_object *o, const char *path, int depth);
SutraStatus   sutra_tok_load_decoder (Ld *l, json_object *o, const char *path, int depth);
SutraTokPost *sutra_tok_push_post (SutraTokenizer *tok, SutraTokPostKind kind);
void          sutra_tok_seq_one (SutraTokSpecialSeq *sq, const char *tokstr, size_t n, int32_t id);
void          sutra_tok_free_posts (SutraTokenizer *tok);
