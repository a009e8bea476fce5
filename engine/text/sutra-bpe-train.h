/* sutra-bpe-train.h: train a byte-level BPE tokenizer (GPT-2 style) on text and write it
 * as a Hugging Face tokenizer.json.
 *
 * Training follows Sennrich et al. 2016 as the HF BpeTrainer does: text is split with the
 * GPT-2 ByteLevel regex, each pre-token mapped to GPT-2 byte characters, then the most
 * frequent adjacent pair (ties: the smallest pair of ids) is merged until the vocabulary
 * holds vocab_size tokens or no pair reaches min_frequency. Special tokens get ids
 * 0..k-1 and are cut out of the training text; the 256 byte characters follow, sorted
 * by code point. The output has version "1.0", added_tokens (special, normalized=false),
 * normalizer null, pre_tokenizer ByteLevel(add_prefix_space=false, use_regex=true),
 * post_processor and decoder ByteLevel, model BPE with the merges in the list-of-pairs
 * form [["a","b"], ...]. Identical input gives a byte-identical file. */
#pragma once
#include <stddef.h>

#include "sutra-error.h"

typedef struct {
  const char *const *files;          /* text files (UTF-8; invalid bytes become U+FFFD) */
  size_t n_files;
  const char *const *texts;          /* or in-memory texts, used after the files */
  const size_t *text_lens;
  size_t n_texts;
  size_t vocab_size;                 /* total, including special tokens and the 256 bytes */
  size_t min_frequency;              /* a pair must occur this often to be merged (0 = 2) */
  const char *const *special_tokens;
  size_t n_special;
} SutraBpeTrainOptions;

/* *json: malloc'ed tokenizer.json text (NUL-terminated). */
SutraStatus sutra_tokenizer_train_bpe_json (const SutraBpeTrainOptions *opts, char **json,
                                            size_t *json_len, SutraError *err);
/* Trains and writes out_path atomically. */
SutraStatus sutra_tokenizer_train_bpe      (const SutraBpeTrainOptions *opts,
                                            const char *out_path, SutraError *err);
