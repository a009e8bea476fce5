/* sutra-gguf-export.h: a Llama-family model (+ its attached LoRA adapter, merged on the fly)
 * as a GGUF file that llama.cpp and Ollama load, following llama.cpp's convert_hf_to_gguf.py:
 *   tensors   token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
 *             ffn_gate, ffn_up, ffn_down}.weight (+ attn_q/k/v(.output) .bias), output_norm,
 *             output (omitted when tied to token_embd), rope_freqs (Llama-3 rope scaling)
 *   layout    Llama ("llama"): attn_q / attn_k rows permuted from transformers' rotate_half
 *             order into llama.cpp's interleaved pairs (convert_hf_to_gguf.py LlamaModel.permute);
 *             Qwen2 ("qwen2") is stored unpermuted (llama.cpp runs it in NEOX rope mode)
 *   metadata  general.*, <arch>.context_length / embedding_length / block_count /
 *             feed_forward_length / attention.head_count(_kv) / attention.layer_norm_rms_epsilon
 *             / rope.freq_base / rope.dimension_count / vocab_size, rope scaling (linear)
 *   tokenizer tokenizer.ggml.model "gpt2" (byte-level BPE: tokens, token_type, merges, pre) or
 *             "llama" (SentencePiece-style BPE: tokens, scores, token_type), BOS/EOS/UNK/PAD ids,
 *             add_bos/add_eos, the chat template, and the template's end-of-turn token as
 *             eot_token_id when it is not EOS (llama.cpp then stops on it)
 * Types: "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k" for 2-D weights; 1-D tensors stay
 * f32. A weight whose row length does not fit the type's blocks falls back (k-quants -> q8_0,
 * then f16). q4_0 / q4_k store the output head (or tied token_embd) as q6_k, as llama-quantize
 * does. See docs/gguf.md for the mapping table and the pre-tokenizer choice. */
#pragma once
#include "sutra-gguf.h"
#include "sutra-model.h"

/* Writes `out_path` atomically. tokenizer_dir holds tokenizer.json (+ tokenizer_config.json,
 * generation_config.json, chat template); NULL means the model's own folder. progress may be
 * NULL (it may cancel: SUTRA_ERR_CANCELLED). The model is not modified (usable on the trainer's
 * model while paused); an attached, enabled LoRA adapter is merged into the written weights. */
SutraStatus sutra_gguf_export_model (SutraModel *m, const char *tokenizer_dir, const char *out_path,
                                     const char *type, SutraGgufProgressFunc progress, void *user,
                                     SutraError *err);

/* The reverse: replaces the model's weights by a GGUF file's (as this exporter names and lays
 * them out: dequantized to f32, attn_q/attn_k rows un-permuted), checking the architecture and
 * every name and shape. Our model then runs exactly the (quantized) weights llama.cpp runs: the
 * llama.cpp check uses it, and it is how a GGUF export is compared with its source. Borrowed
 * weights become owned copies; rope_freqs is recomputed from config.json, not read. */
SutraStatus sutra_gguf_import_weights (SutraModel *m, const char *path, SutraError *err);

/* The pre-tokenizer name written for a byte-level BPE tokenizer (llama.cpp's tokenizer.ggml.pre),
 * decided from its split regexes and a digit probe: "gpt-2", "smollm", "llama-bpe", "qwen2",
 * "falcon"... or "default" when unrecognised. */
struct SutraTokenizer;
const char *sutra_gguf_pre_tokenizer_name (const struct SutraTokenizer *tok);
