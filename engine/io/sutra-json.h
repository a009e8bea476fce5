/* sutra-json.h: small helpers over json-c (RFC 8259 JSON) shared by every reader of
 * config-like files (config.json, adapter_config.json, tokenizer_config.json, index files,
 * safetensors headers).
 *
 * Loading reports errors as "<file>: line L, column C: <json-c's reason>". Typed getters
 * take a default for a missing key (a JSON null counts as missing, as transformers writes
 * "pad_token_id": null for "unset") and report a wrong type naming the file and key:
 * "config.json: hidden_size: expected an integer, got string". json-c keeps the last of
 * duplicate keys silently; SUTRA_JSON_UNIQUE_KEYS rejects them instead. */
#pragma once
#include "sutra-error.h"

#include <json-c/json.h>

/* Parse flags (combine with |). */
#define SUTRA_JSON_STRICT      1u  /* RFC 8259 only (no NaN, comments, 'quotes') + valid UTF-8 */
#define SUTRA_JSON_UNIQUE_KEYS 2u  /* no object may repeat a key; keys may not contain \u0000 */
#define SUTRA_JSON_OBJECT      4u  /* the top-level value must be an object */

/* Parses text[0..len) (need not be NUL-terminated). Only whitespace may follow the value.
 * name prefixes every message (a file name, or "model.safetensors: header"). The caller
 * releases *out with json_object_put. */
SutraStatus sutra_json_parse (const char *text, size_t len, const char *name, unsigned flags,
                              json_object **out, SutraError *err);
/* Reads and parses a file (at most 64 MiB); messages start with the path. */
SutraStatus sutra_json_load  (const char *path, unsigned flags, json_object **out,
                              SutraError *err);

/* "string", "integer", "number", "boolean", "array", "object" or "null". */
const char *sutra_json_type_name (json_object *v);
/* true when obj is an object holding key with a non-null value. */
bool        sutra_json_has (json_object *obj, const char *key);

/* Typed getters on an object. where (may be NULL) starts each message, e.g. the file name
 * or "config.json: rope_scaling". A missing or null key gives the default with SUTRA_OK;
 * a wrong type gives SUTRA_ERR_FORMAT. *out is written only on success. */
/* Integers; a number with an integral value (4096.0) is accepted too. */
SutraStatus sutra_json_get_int    (json_object *obj, const char *where, const char *key,
                                   int64_t def, int64_t *out, SutraError *err);
/* Any number. */
SutraStatus sutra_json_get_double (json_object *obj, const char *where, const char *key,
                                   double def, double *out, SutraError *err);
/* true/false only (not 0/1). */
SutraStatus sutra_json_get_bool   (json_object *obj, const char *where, const char *key,
                                   bool def, bool *out, SutraError *err);
/* Borrowed from obj (valid while obj lives). */
SutraStatus sutra_json_get_string (json_object *obj, const char *where, const char *key,
                                   const char *def, const char **out, SutraError *err);
/* An array of integers; allocated (caller frees). Missing or null: *out = NULL, *n = 0. */
SutraStatus sutra_json_get_int_array (json_object *obj, const char *where, const char *key,
                                      int64_t **out, size_t *n, SutraError *err);
/* A nested object (borrowed); missing or null: *out = NULL. */
SutraStatus sutra_json_get_object (json_object *obj, const char *where, const char *key,
                                   json_object **out, SutraError *err);
