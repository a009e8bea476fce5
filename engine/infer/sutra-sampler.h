/* sutra-sampler.h: next-token selection from a logits row, with transformers' semantics.
 *
 * Order of operations (transformers' GenerationMixin._get_logits_processor: processors first,
 * then the sampling warpers in this order):
 *   1. repetition penalty (HF RepetitionPenaltyLogitsProcessor): for every distinct token of the
 *      prompt and the generated text, logit = logit > 0 ? logit / r : logit * r (r = 1: off)
 *   2. frequency / presence penalties (OpenAI semantics, over generated tokens only):
 *      logit -= count * frequency + (count > 0) * presence                (0: off)
 *   then greedy (do_sample false) takes the argmax (lowest id on ties, as torch.argmax); or:
 *   3. temperature: logit /= T
 *   4. top-k: keep logits >= the k-th largest (ties kept, as TopKLogitsWarper)   (0: off)
 *   5. top-p: sort ascending, drop tokens whose cumulative probability is <= 1 - p, always
 *      keeping the most likely token (TopPLogitsWarper)                        (1: off)
 *   6. min-p: drop tokens with probability < min_p * max probability (MinPLogitsWarper) (0: off)
 *   7. draw from softmax of what is left with a seeded xoshiro256** generator.
 * Tokens more than 50 nats below the maximum logit (probability < 2e-22 each) are never
 * candidates for sampling (a speed shortcut; their total mass is below double precision of
 * the draw). The same seed and inputs give the same tokens. Nothing is allocated per token. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "sutra-error.h"

typedef struct {
  bool do_sample;             /* false: greedy */
  float temperature;          /* > 0 (1 = unchanged) */
  int top_k;                  /* 0 = off */
  float top_p;                /* (0, 1]; 1 = off */
  float min_p;                /* [0, 1); 0 = off */
  float repetition_penalty;   /* > 0; 1 = off */
  float frequency_penalty;    /* 0 = off */
  float presence_penalty;     /* 0 = off */
  uint64_t seed;
} SutraSamplerParams;

/* transformers' GenerationConfig defaults: greedy, temperature 1, top_k 50, top_p 1, no
 * min_p, no penalties; seed 0. */
void        sutra_sampler_params_init (SutraSamplerParams *p);
/* SUTRA_ERR_INVALID naming the first out-of-range value. */
SutraStatus sutra_sampler_params_check (const SutraSamplerParams *p, SutraError *err);

typedef struct SutraSampler SutraSampler;

SutraStatus sutra_sampler_new   (int vocab_size, const SutraSamplerParams *p, SutraSampler **out,
                                 SutraError *err);
void        sutra_sampler_free  (SutraSampler *s);
/* New parameters (checked by the caller), re-seeds the generator and forgets every token. */
void        sutra_sampler_reset (SutraSampler *s, const SutraSamplerParams *p);
/* Records prompt tokens (repetition penalty only) and generated tokens (all penalties).
 * Ids outside [0, vocab) are ignored. */
void        sutra_sampler_accept_prompt (SutraSampler *s, const int *ids, int n);
void        sutra_sampler_accept (SutraSampler *s, int id);
/* Picks the next token from logits [vocab] (modified in place: the penalties are applied to
 * it). Does not record the token: call sutra_sampler_accept. */
int         sutra_sampler_sample (SutraSampler *s, float *logits);
/* The distribution step 7 draws from, written as probs [vocab] (0 for filtered tokens);
 * logits is modified as in sample. Greedy gives a one-hot. For tests and a "token
 * probabilities" view. */
void        sutra_sampler_probs  (SutraSampler *s, float *logits, float *probs);
/* Uniform double in [0, 1) from the sampler's generator (tests). */
double      sutra_sampler_uniform (SutraSampler *s);
