/* sutra-eval.h: held-out loss, perplexity, and the divergence between two models' next-token
 * distributions.
 *
 * Loss follows training (DESIGN.md section 4, transformers' causal-LM loss): the logits at
 * position t predict labels[t + 1]; positions whose label is -100 carry no loss. The reported
 * loss is the mean negative log-likelihood (nats) over every loss-carrying token of the data
 * (token-weighted, so perplexity = exp(loss) is the usual corpus perplexity), computed in double.
 * KL divergence per token is KL(P_ref || P_model) = sum_v p_ref(v) (log p_ref(v) - log p_model(v))
 * at the same positions (llama.cpp's --kl-divergence convention: the reference is the base);
 * kl_p99 is the nearest-rank 99th percentile over tokens. Each example is one forward pass. */
#pragma once
#include "sutra-model.h"
#include "sutra-dataset.h"

typedef struct {
  double loss, perplexity;        /* over loss-carrying tokens */
  int64_t tokens, examples;
  bool has_reference;
  double ref_loss, ref_perplexity;
  double kl_mean, kl_p99, kl_max; /* nats per token */
  double top1_agreement;          /* fraction of tokens where both models' argmax agree */
  double max_logprob_diff;        /* max |log p_model - log p_ref| of the actual next token */
} SutraEvalResult;

/* fraction done (0..1); return false to cancel (SUTRA_ERR_CANCELLED). */
typedef bool (*SutraEvalProgressFunc) (double fraction, void *user_data);

typedef struct {
  SutraModel *reference;          /* second model for KL (same vocabulary), or NULL */
  SutraEvalProgressFunc progress;
  void *user_data;
} SutraEvalOptions;

/* Evaluates n examples (ids + labels as sutra-dataset.h makes them). Examples longer than the
 * model's context are SUTRA_ERR_INVALID naming the example's line. */
SutraStatus sutra_eval_examples (SutraModel *m, const SutraExample *ex, size_t n,
                                 const SutraEvalOptions *o, SutraEvalResult *out, SutraError *err);

/* KL(P || Q) of one row of logits (softmax taken inside, in double). */
double      sutra_eval_kl_row (const float *ref_logits, const float *logits, int V);

/* Compares the model with llama.cpp on llama.cpp's own tokens: `path` is the file written by
 * `llama-perplexity --kl-divergence-base FILE` ("_logits_", n_ctx, n_vocab, n_chunk, the
 * tokens, then per chunk the log-probabilities of its second half, 16-bit quantized with a
 * per-row scale and minimum). Each chunk is run through our model (its first token replaced by
 * bos_id when bos_id >= 0, as llama-perplexity does for vocabularies that add BOS); the result
 * holds our loss/perplexity, llama.cpp's (ref_*), and KL(llama.cpp || ours) per token. */
SutraStatus sutra_eval_llamacpp_logits (SutraModel *m, const char *path, int bos_id,
                                        SutraEvalResult *out, SutraError *err);
