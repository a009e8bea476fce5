/* sutra-linear.h: the linear layer, where LoRA and quantization meet.
 *
 * out = x W^T + b  +  scale * dropout(x) A^T B^T          (LoRA, Hu et al. 2021; PEFT layout)
 * The frozen base W [out, in] is f32 (borrowed from the mmapped checkpoint or owned) or a packed
 * SutraQWeight (QLoRA: NF4 base dequantized tile by tile, never whole). A [r, in] and B [out, r]
 * are f32 and trainable; scale = lora_alpha / r. In full fine-tuning W and b are trainable and
 * dw/db receive gradients. Every architecture builds its projections from this struct, named by
 * their Hugging Face module names, so LoRA targets resolve the way PEFT resolves them. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "sutra-error.h"
#include "sutra-quant.h"
#include "sutra-tensor.h"

typedef struct SutraLinear SutraLinear;

typedef struct {
  int r;
  float alpha, scale;            /* scale = alpha / r */
  float dropout;                 /* probability; 0 = off */
  float *A, *B;                  /* [r, in], [out, r] (owned, one allocation) */
  float *dA, *dB;                /* gradients, same shapes (owned) */
  bool enabled;                  /* false: the adapter is bypassed (chat base vs tuned) */
} SutraLora;

/* Called in forward with the layer's input when set (calibration for AWQ/GPTQ). */
typedef void (*SutraLinearObserver) (void *user_data, SutraLinear *l, const float *in, int N);

struct SutraLinear {
  char *name;                    /* "model.layers.0.self_attn.q_proj" (HF module name) */
  int in, out;
  float *w;                      /* [out, in] f32 base, or NULL when qw is set */
  SutraQWeight *qw;              /* packed base (owned) */
  float *bias;                   /* [out] or NULL */
  bool w_owned, bias_owned;
  bool trainable;                /* full fine-tuning: gradients for w and bias */
  float *dw, *dbias;             /* full fine-tuning gradients (owned unless dw_shared) */
  bool dw_shared;                /* w/dw belong to a tied parameter (lm_head = embeddings) */
  SutraLora *lora;               /* attached adapter or NULL (owned) */
  SutraLinearObserver observer;
  void *observer_data;
};

/* Saved per call for backward: the LoRA intermediate (x A^T) and dropout mask/input. */
typedef struct {
  float *xa;                     /* [N, r]: dropout(x) A^T */
  float *xd;                     /* [N, in]: dropout(x), or NULL when dropout is off */
  uint8_t *mask;                 /* [N, in]: 1 where kept (with xd), or NULL */
  bool dropped;                  /* set by forward: dropout was applied in this call */
} SutraLinearSaved;

/* Frees owned buffers and the name; leaves borrowed ones. */
void sutra_linear_clear (SutraLinear *l);

/* out [N, out] = layer(x [N, in]). saved may be NULL (inference); when given, its buffers must
 * hold N*r (xa) and, with dropout, N*in (xd floats, mask bytes); rng drives dropout (NULL: no
 * dropout, as in eval mode). */
void sutra_linear_forward  (SutraLinear *l, float *out, const float *x, int N,
                            SutraLinearSaved *saved, uint64_t *rng);
/* dx [N, in] += d layer / dx (dx may be NULL); adds into lora->dA/dB, or dw/dbias when
 * trainable. scratch: at least N * r floats, plus N * in when dropout was applied. */
void sutra_linear_backward (SutraLinear *l, float *dx, const float *dout, const float *x, int N,
                            const SutraLinearSaved *saved, float *scratch);

/* Attaches a zero-initialised adapter of rank r (caller initialises A and B). */
SutraStatus sutra_linear_attach_lora (SutraLinear *l, int r, float alpha, float dropout,
                                      SutraError *err);
void        sutra_linear_detach_lora (SutraLinear *l);
/* Replaces the f32 base by a packed one (frees an owned f32 base). */
SutraStatus sutra_linear_quantize (SutraLinear *l, const SutraQuantParams *p, SutraError *err);
/* Makes the base owned, writable f32 (dequantizing if packed) and allocates dw/dbias. */
SutraStatus sutra_linear_make_trainable (SutraLinear *l, SutraError *err);
/* W += scale * B A into an owned f32 base (for merged exports); the adapter stays attached. */
SutraStatus sutra_linear_merge_lora (SutraLinear *l, SutraError *err);
/* Bytes of base weight storage (f32 or packed). */
size_t      sutra_linear_weight_bytes (const SutraLinear *l);

/* Floats per token that sutra_linear_saved_carve takes for this layer (its adapter's u and, with
 * dropout, the dropped input and mask; with slack for alignment); 0 without an adapter. */
size_t      sutra_linear_saved_per_token (const SutraLinear *l);
/* Carves the saved buffers of one call over N tokens from an arena (none without an adapter). */
void        sutra_linear_saved_carve (SutraLinearSaved *s, const SutraLinear *l, SutraArena *a,
                                      size_t N);
