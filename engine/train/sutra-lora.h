/* sutra-lora.h: LoRA adapters the way PEFT makes them (https://github.com/huggingface/peft,
 * LoraConfig / LoraModel), on the SutraLinear layers of any architecture.
 *
 * Targets resolve as PEFT's `target_modules`: a list of names matches a module whose full name
 * equals an entry or ends with "." + entry; a single string is a regular expression that must
 * match the whole module name; "all-linear" is every linear layer except the output head.
 * Initialisation is PEFT's default: A ~ kaiming_uniform(a = sqrt 5) = U(-1/sqrt(in), 1/sqrt(in)),
 * B = 0; scale = lora_alpha / r (or lora_alpha / sqrt(r) with use_rslora).
 * An adapter folder is adapter_config.json + adapter_model.safetensors with keys
 * "base_model.model.<module>.lora_A.weight" [r, in] and "....lora_B.weight" [out, r]. */
#pragma once
#include "sutra-model.h"

typedef struct {
  int r;
  float alpha;
  float dropout;
  bool use_rslora;
  char **targets;          /* module-name suffixes, or NULL with all_linear / regex */
  int n_targets;
  bool all_linear;
  char *regex;             /* target_modules given as one string (a full-match regex) */
} SutraLoraConfig;

void        sutra_lora_config_clear (SutraLoraConfig *c);
/* Deep copy. */
void        sutra_lora_config_copy (SutraLoraConfig *dst, const SutraLoraConfig *src);
/* Does module `name` match the targets? (PEFT's rule; lm_head never matches all-linear.) */
bool        sutra_lora_matches (const SutraLoraConfig *c, const SutraModel *m, const char *name);

/* Attaches adapters to every matching linear, PEFT-initialised from a seeded generator.
 * Fails naming the targets when nothing matches. Sets m->train_mode = SUTRA_TRAIN_LORA. */
SutraStatus sutra_lora_attach (SutraModel *m, const SutraLoraConfig *c, uint64_t seed,
                               int *n_attached, SutraError *err);
/* Loads a PEFT adapter folder: attaches with its config and copies its weights. Errors name
 * the file and tensor (unsupported options, missing modules, shape mismatches = an adapter
 * made for another base model). cfg_out (may be NULL) receives the adapter's config. */
SutraStatus sutra_lora_load (SutraModel *m, const char *dir, SutraLoraConfig *cfg_out,
                             SutraError *err);
/* Reads only adapter_config.json. */
SutraStatus sutra_lora_config_load (const char *dir, SutraLoraConfig *c, SutraError *err);
/* Writes a PEFT adapter folder (atomically: a temporary folder renamed into place).
 * base_model names the base in adapter_config.json (may be NULL). */
SutraStatus sutra_lora_save (const SutraModel *m, const SutraLoraConfig *c, const char *base_model,
                             const char *dir, SutraError *err);
/* Writes adapter_model.safetensors + adapter_config.json into an existing folder. */
SutraStatus sutra_lora_write_files (const SutraModel *m, const SutraLoraConfig *c,
                                    const char *base_model, const char *dir, SutraError *err);
/* Enables or bypasses every attached adapter (compare base and tuned without reloading). */
void        sutra_lora_set_enabled (SutraModel *m, bool enabled);
/* Merges every adapter into its base weight (W += scale B A) and detaches it. */
SutraStatus sutra_lora_merge (SutraModel *m, SutraError *err);
/* Trainable LoRA parameter count. */
int64_t     sutra_lora_param_count (const SutraModel *m);
/* "base_model.model.<module>.lora_A.weight" (caller frees). */
char       *sutra_lora_key (const char *module, bool is_a);
