/* sutra-generate.h: text generation over any model's step() (KV cache or recurrent state).
 *
 * A run: batched prefill of the prompt (skipped for the longest prefix it shares with what the
 * state already holds: all of it when the prompt extends the history; a shorter common prefix
 * when the model's state can rewind, i.e. a KV cache; otherwise the state restarts), then one
 * decode step per new token; sampling by sutra-sampler.h; stop on
 *   EOS ids (generation_config.json eos_token_id, an int or a list; else config.json; else the
 *   tokenizer's EOS) unless ignore_eos; a user stop string, matched in the detokenized text
 *   across token boundaries (text that could be the start of a stop string is held back and
 *   the stop string itself is never shown); max_new_tokens; the context being full (the run
 *   ends with SUTRA_STOP_CONTEXT; a prompt that does not fit is SUTRA_ERR_INVALID); the callback
 *   returning false; or sutra_generator_cancel() from any thread (checked before every token
 *   and between prefill chunks: the run ends within one token, with SUTRA_STOP_CANCELLED).
 * Generated ids include the EOS token or the token that completed a stop string (as
 * transformers' generate() returns EOS); text pieces skip special tokens and are always whole
 * UTF-8 (the tokenizer's streaming detokenizer). Buffers are sized once per generator: the
 * decode loop allocates nothing per token. The model is borrowed: a generator may run on a
 * model someone else owns (the trainer's, while paused), never concurrently with its training. */
#pragma once
#include "sutra-model.h"
#include "sutra-sampler.h"

struct SutraTokenizer;

/* generation_config.json with config.json / tokenizer fallbacks */
typedef struct {
  SutraSamplerParams sampler;   /* do_sample, temperature, top_k, top_p, min_p, repetition_penalty */
  int max_new_tokens;           /* max_new_tokens, or max_length - 1 when only that is set; 0 unset */
  int eos_ids[SUTRA_MAX_EOS];
  int n_eos;
  int bos_id, pad_id;           /* -1 when unknown */
} SutraGenConfig;

/* dir may be NULL (config / tokenizer only); a missing generation_config.json is not an error,
 * a malformed one is SUTRA_ERR_FORMAT naming the key. tok may be NULL. */
SutraStatus sutra_gen_config_load (const char *dir, const SutraModelConfig *mcfg,
                                   const struct SutraTokenizer *tok, SutraGenConfig *out,
                                   SutraError *err);

typedef enum {
  SUTRA_STOP_NONE = 0,
  SUTRA_STOP_EOS,               /* an EOS id was generated */
  SUTRA_STOP_STRING,            /* a stop string appeared in the text */
  SUTRA_STOP_MAX_TOKENS,
  SUTRA_STOP_CONTEXT,           /* the context (KV cache) is full */
  SUTRA_STOP_CANCELLED,         /* sutra_generator_cancel */
  SUTRA_STOP_CALLBACK,          /* the token callback returned false */
} SutraStopReason;
const char *sutra_stop_reason_name (SutraStopReason r);   /* "eos", "stop_string", ... */

/* Called once per generated token with its id and the text that became safe to show (may be
 * empty), and once more at the end with id -1 and the rest of the text (only when non-empty).
 * Return false to stop. text is borrowed for the call. */
typedef bool (*SutraGenTokenFunc) (void *user, int id, const char *text, size_t len);
/* Called with the raw logits [vocab] the next token is chosen from (before any penalty), pos =
 * the number of tokens in the state. For tests and probability views; may be NULL. */
typedef void (*SutraGenLogitsFunc) (void *user, const float *logits, int pos);

typedef struct {
  SutraSamplerParams sampler;
  int max_new_tokens;           /* > 0 */
  bool ignore_eos;
  int eos_ids[SUTRA_MAX_EOS];
  int n_eos;
  const char *const *stop;      /* stop strings (borrowed during the run) */
  size_t n_stop;
  bool keep_special;            /* show special tokens' text (default off, as TextStreamer) */
  SutraGenLogitsFunc on_logits;
  void *logits_user;
} SutraGenParams;

/* Defaults from cfg (NULL: transformers' defaults, greedy, 256 tokens, no EOS). */
void sutra_gen_params_init (SutraGenParams *p, const SutraGenConfig *cfg);

typedef struct {
  SutraStopReason reason;
  int n_prompt;                 /* tokens in the prompt */
  int n_reused;                 /* prompt tokens the state already held (not recomputed) */
  int n_generated;
  double prefill_s, decode_s;   /* wall time of prefill and of the decode loop */
} SutraGenResult;

typedef struct SutraGenerator SutraGenerator;

/* max_ctx: tokens the state holds (<= 0 or beyond the model's limit: the model's limit; RNNs
 * without one: 4096). tok may be NULL (ids only: no text, no stop strings). */
SutraStatus sutra_generator_new  (SutraModel *m, const struct SutraTokenizer *tok, int max_ctx,
                                  SutraGenerator **out, SutraError *err);
void        sutra_generator_free (SutraGenerator *g);
int         sutra_generator_context (const SutraGenerator *g);
SutraStatus sutra_generator_run  (SutraGenerator *g, const int *prompt, int n_prompt,
                                  const SutraGenParams *p, SutraGenTokenFunc cb, void *user,
                                  SutraGenResult *res, SutraError *err);
/* Ids generated by the last run (borrowed until the next run). */
const int  *sutra_generator_tokens (const SutraGenerator *g, int *n);
/* Text generated by the last run, stop string excluded (NUL-terminated, borrowed). */
const char *sutra_generator_text (const SutraGenerator *g, size_t *len);
/* Thread-safe: makes the current run stop before its next token. Cleared when a run starts. */
void        sutra_generator_cancel (SutraGenerator *g);
/* Forgets the state (the next run prefills everything), e.g. after the weights changed. */
void        sutra_generator_reset (SutraGenerator *g);

/* ---- stop strings on a text stream (used by the generator; public for tests) ---- */
typedef struct SutraStopMatcher SutraStopMatcher;
SutraStopMatcher *sutra_stop_matcher_new  (const char *const *stop, size_t n_stop);
void              sutra_stop_matcher_free (SutraStopMatcher *s);
/* Appends a piece; *out/out_len receive the text that can no longer be part of a stop string
 * (borrowed until the next call). Returns true when a stop string completed: *out is then the
 * text before it, and the matcher must not be fed again. */
bool sutra_stop_matcher_push  (SutraStopMatcher *s, const char *text, size_t len,
                               const char **out, size_t *out_len);
/* The held-back text at the end of a run (no stop string matched). */
const char *sutra_stop_matcher_flush (SutraStopMatcher *s, size_t *len);
