/* sutra-model.h: the model interface shared by every architecture, and config.json.
 *
 * A model is loaded from a Hugging Face folder (config.json + safetensors weights). Each
 * architecture (Llama family, RWKV-4, Mamba) implements SutraModelVTable:
 *   forward  a batch [B, T] of token ids -> logits [B*T, vocab]; optionally keeping the
 *            activations that backward needs;
 *   backward dlogits -> gradients of the trainable tensors (LoRA A/B, or every parameter);
 *   step     incremental generation over a SutraGenState (KV cache or recurrent state).
 * Projections are SutraLinear layers named by their Hugging Face module names; other
 * parameters (embeddings, norms, RWKV mixes, Mamba A_log ...) are SutraParams. Both are
 * enumerable so LoRA targets, full fine-tuning, merges and exports work for every architecture. */
#pragma once
#include <time.h>
#include "sutra-linear.h"
#include "sutra-ops.h"
#include "sutra-safetensors.h"

typedef enum { SUTRA_ARCH_LLAMA, SUTRA_ARCH_RWKV4, SUTRA_ARCH_MAMBA } SutraArch;

#define SUTRA_MAX_EOS 8

typedef struct {
  SutraArch arch;
  char architecture[64];          /* "LlamaForCausalLM", "Qwen2ForCausalLM", ... */
  char model_type[32];            /* "llama", "mistral", "qwen2", "rwkv", "mamba" */
  int vocab_size, hidden_size, n_layers, intermediate_size;
  int max_position_embeddings;    /* context length (RWKV/Mamba: 0 = unbounded) */
  SutraDType dtype;               /* checkpoint dtype from config (torch_dtype / dtype) */
  bool tie_word_embeddings;
  int bos_token_id, pad_token_id; /* -1 when unset */
  int eos_token_ids[SUTRA_MAX_EOS], n_eos;
  /* Llama family */
  int n_heads, n_kv_heads, head_dim;
  float rms_norm_eps;
  SutraAct hidden_act;
  bool attention_bias;            /* q/k/v (and o for Llama's attention_bias) biases */
  bool o_bias, mlp_bias;
  SutraRope rope;
  int sliding_window;             /* Mistral/Qwen2: 0 = none */
  /* RWKV-4 */
  int attention_hidden_size, rescale_every;
  float layer_norm_epsilon;
  /* Mamba */
  int state_size, expand, conv_kernel, time_step_rank, intermediate_mamba;
  bool use_bias, use_conv_bias, residual_in_fp32;
} SutraModelConfig;

/* Parses <dir>/config.json (transformers v4 and v5 forms). Unsupported architectures or settings
 * are SUTRA_ERR_UNSUPPORTED naming them. */
SutraStatus sutra_model_config_load  (const char *dir, SutraModelConfig *cfg, SutraError *err);
SutraStatus sutra_model_config_parse (const char *json, size_t len, const char *name,
                                      SutraModelConfig *cfg, SutraError *err);
/* Writes the config back in transformers form (for merged exports and fresh models). */
char       *sutra_model_config_to_json (const SutraModelConfig *cfg);

typedef struct {
  char *name;                     /* HF tensor name: "model.norm.weight" */
  float *data, *grad;             /* grad allocated when trainable */
  int ndim;
  int64_t shape[4];
  bool owned, trainable;
} SutraParam;

/* One training/eval batch. pos/doc are NULL for plain rows (positions 0..T-1, one document). */
typedef struct {
  int B, T;
  const int *ids;                 /* [B*T] */
  const int *pos;                 /* [B*T] position ids (packing restarts them) or NULL */
  const int *doc;                 /* [B*T] document ids for packed rows or NULL */
} SutraBatch;

typedef struct SutraModel SutraModel;
typedef struct SutraGenState SutraGenState;

typedef enum { SUTRA_TRAIN_NONE, SUTRA_TRAIN_LORA, SUTRA_TRAIN_FULL } SutraTrainMode;

/* Wall time of forward/backward by kind of work, accumulated while SutraModel.profile is set
 * (benchmarks say where the time goes); architectures that do not report leave it at zero. */
typedef enum {
  SUTRA_PROF_MATMUL,              /* projections (SutraLinear, incl. LoRA) and the head */
  SUTRA_PROF_RECURRENCE,          /* sequence mixing: WKV / selective scan / causal conv /
                                   * causal self-attention (with RoPE) */
  SUTRA_PROF_NORM,                /* LayerNorm / RMSNorm */
  SUTRA_PROF_OTHER,               /* token shift, activations, gates, residuals, embedding */
  SUTRA_PROF_COUNT
} SutraProfKind;
typedef struct { double seconds[SUTRA_PROF_COUNT]; } SutraModelProfile;

typedef struct {
  const char *arch_name;
  SutraStatus (*load)      (SutraModel *m, SutraError *err);   /* cfg + weights are set */
  void        (*free_impl) (SutraModel *m);
  /* Reserves activation memory for batches up to B x T (called before forward). */
  SutraStatus (*reserve)   (SutraModel *m, int B, int T, bool for_backward, SutraError *err);
  /* logits [B*T, V], borrowed until the next forward. */
  SutraStatus (*forward)   (SutraModel *m, const SutraBatch *b, bool for_backward, float **logits,
                            SutraError *err);
  /* dlogits [B*T, V] of the last forward(for_backward = true); adds into trainable grads. */
  SutraStatus (*backward)  (SutraModel *m, const float *dlogits, SutraError *err);
  /* Generation state for one sequence of up to max_ctx tokens (KV cache / recurrent state). */
  SutraStatus (*state_new) (SutraModel *m, int max_ctx, SutraGenState **out, SutraError *err);
  void        (*state_free)(SutraGenState *st);
  void        (*state_reset)(SutraGenState *st);
  size_t      (*state_bytes)(const SutraGenState *st);
  int         (*state_pos) (const SutraGenState *st);        /* tokens consumed so far */
  /* Optional (NULL: unsupported): keeps only the first n <= pos tokens, so a new prompt that
   * shares a prefix with what the state holds recomputes only the rest (a KV cache can; a
   * recurrent state cannot, and leaves this NULL). Returns false when it cannot. */
  bool        (*state_truncate) (SutraGenState *st, int n);
  /* Feeds n tokens; logits [n, V] for every fed position when all_logits, else [V] for the
   * last one only. */
  SutraStatus (*step)      (SutraModel *m, SutraGenState *st, const int *ids, int n,
                            float *logits, bool all_logits, SutraError *err);
  /* Bytes of activations kept for backward at B x T (for memory estimates). */
  size_t      (*activation_bytes) (const SutraModel *m, int B, int T, bool checkpointing);
} SutraModelVTable;

struct SutraModel {
  const SutraModelVTable *vt;
  SutraModelConfig cfg;
  char *dir;                      /* folder it was loaded from (NULL for fresh models) */
  SutraSafetensors *weights;      /* mmapped checkpoint (NULL for fresh models) */
  SutraLinear **linears;          /* every projection, in HF order */
  size_t n_linears;
  SutraParam **params;            /* every non-linear parameter (embeddings, norms, ...) */
  size_t n_params;
  SutraTrainMode train_mode;
  bool grad_checkpointing;
  uint64_t dropout_rng;           /* LoRA dropout state (saved in checkpoints) */
  SutraLinear *tied_linear;       /* lm_head sharing tied_param's data (tied embeddings) */
  SutraParam *tied_param;
  SutraModelProfile *profile;     /* NULL = off (borrowed; see SutraProfKind) */
  void *impl;
};

/* Profiling clock for SutraModel.profile: sutra_model_prof adds the time since *t0 to kind
 * (when profiling is on) and restarts the clock. */
static inline double
sutra_model_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* the clock at the start of a profiled stretch (0, and no clock read, when profiling is off) */
static inline double
sutra_model_prof_start (const SutraModel *m)
{
  return m->profile ? sutra_model_now () : 0;
}

static inline void
sutra_model_prof (SutraModel *m, SutraProfKind kind, double *t0)
{
  if (!m->profile)
    return;
  double t = sutra_model_now ();
  m->profile->seconds[kind] += t - *t0;
  *t0 = t;
}

/* Loads a model folder (or a HF repo id resolved by the caller). */
SutraStatus sutra_model_load   (const char *dir, SutraModel **out, SutraError *err);
/* A fresh model from a config with weights initialised as transformers does (normal(0, std)
 * for projections and embeddings, ones for norms), seeded. */
SutraStatus sutra_model_new_random (const SutraModelConfig *cfg, float init_std, uint64_t seed,
                                    SutraModel **out, SutraError *err);
void        sutra_model_free   (SutraModel *m);

SutraLinear *sutra_model_find_linear (const SutraModel *m, const char *name);
SutraParam  *sutra_model_find_param  (const SutraModel *m, const char *name);
int64_t      sutra_model_param_count (const SutraModel *m);    /* all weights */
/* Bytes of base weights as stored now (f32, f16/bf16 and packed). */
size_t       sutra_model_weight_bytes (const SutraModel *m);

/* Full fine-tuning: make every weight owned f32 and allocate its gradient. */
SutraStatus  sutra_model_make_trainable (SutraModel *m, SutraError *err);
/* Zeroes every gradient (LoRA and full). */
void         sutra_model_zero_grad (SutraModel *m);

/* Convenience wrappers over the vtable. */
SutraStatus sutra_model_forward  (SutraModel *m, const SutraBatch *b, bool for_backward,
                                  float **logits, SutraError *err);
SutraStatus sutra_model_backward (SutraModel *m, const float *dlogits, SutraError *err);


/* ---- for architecture implementations ---- */
/* Registers a linear named `name` whose weight (and bias when has_bias) come from the
 * checkpoint "<name>.weight"/"<name>.bias" (or are allocated when the model is fresh). F32
 * and F16/BF16 weights are borrowed from the map as stored (SUTRA_WEIGHTS_F32=1: half ones
 * converted into owned f32 instead); biases are f32. */
SutraStatus sutra_model_add_linear (SutraModel *m, const char *name, int in, int out,
                                    bool has_bias, SutraLinear **out_l, SutraError *err);
/* A linear that shares another tensor as its weight (tied lm_head = embedding table). When
 * the checkpoint stores that table in F16/BF16, the head reads the mapped half table. */
SutraStatus sutra_model_add_tied_linear (SutraModel *m, const char *name, SutraParam *weight,
                                         SutraLinear **out_l, SutraError *err);
/* Registers a parameter loaded from "<name>" with the given shape (converted to f32). */
SutraStatus sutra_model_add_param  (SutraModel *m, const char *name, int ndim,
                                    const int64_t *shape, SutraParam **out_p, SutraError *err);
/* Writes config.json and model.safetensors into an existing folder, each file atomically
 * (exports wrap this in a temporary folder renamed into place). */
SutraStatus sutra_model_write_files (SutraModel *m, const char *dir, SutraDType dtype,
                                     SutraError *err);
