/* sutra-export.h: turning a training result into something others load.
 *   PEFT adapter   adapter_config.json + adapter_model.safetensors (PEFT loads it)
 *   merged model   Hugging Face folder: config.json, model.safetensors (F32/F16/BF16) with
 *                  W + scale B A folded in, tokenizer files and generation_config.json copied
 *   GGUF           llama.cpp / Ollama file (engine/io/sutra-gguf*, written by the GGUF exporter)
 * The source is a run folder (its final adapter, or its latest checkpoint when the run did not
 * finish), an adapter folder, or nothing (the base model itself, for GGUF/dtype conversion).
 * Every export is written to a temporary sibling and renamed into place: never half-written. */
#pragma once
#include "sutra-model.h"

typedef enum { SUTRA_EXPORT_PEFT, SUTRA_EXPORT_MERGED, SUTRA_EXPORT_GGUF } SutraExportKind;

typedef bool (*SutraProgressFunc) (double fraction, const char *what, void *user_data); /* false = cancel */

typedef struct {
  SutraExportKind kind;
  SutraDType dtype;          /* merged: F32 (default), F16 or BF16 */
  const char *gguf_type;     /* gguf: "f32", "f16" (default), "q8_0", "q4_0", ... */
  SutraProgressFunc progress;
  void *user_data;
} SutraExportOptions;

/* Finds the adapter folder of a run folder or adapter folder (caller frees). */
SutraStatus sutra_export_find_adapter (const char *source, char **adapter_dir, SutraError *err);
/* source: run folder, adapter folder, or NULL; model: base model folder (or repo id resolved by
 * the caller); out: folder (PEFT, merged) or .gguf file. */
SutraStatus sutra_export (const char *source, const char *model_dir, const char *out,
                          const SutraExportOptions *o, SutraError *err);
/* Copies tokenizer.json, tokenizer_config.json, special_tokens_map.json, chat_template.jinja,
 * generation_config.json (those present) from src_dir to dst_dir. */
SutraStatus sutra_export_copy_tokenizer_files (const char *src_dir, const char *dst_dir,
                                               SutraError *err);
