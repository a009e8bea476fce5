/* sutra-quantize.h: quantizing a whole model (any architecture, through its SutraLinear
 * registry) and the quality report the CLI and the studio's Quantize panel show.
 *
 * Every linear except the output head (optional) is quantized; embeddings and norms stay f32.
 * RTN/NF4/INT8 need no data. AWQ and GPTQ run calibration batches (token ids) through the
 * model's own forward with SutraLinear observers that accumulate, per distinct layer input,
 * mean |x| per channel and H = X^T X (sutra-qcalib.h); activations are never stored.
 *   GPTQ goes layer by layer as the paper does: layer l is calibrated with layers < l already
 *        quantized (one forward pass over the calibration data per layer), unless gptq_one_pass.
 *   AWQ  takes every layer's statistics from the float model (scaling is exact, so the paper's
 *        block-by-block order gives the same inputs), in as few passes as the memory budget
 *        allows. Scales are folded into the operation feeding each group of linears where the
 *        architecture's fold table (sutra_awq_folds) allows; other linears keep explicit input
 *        scales in their weights. Nothing is dropped silently: the summary lists both.
 * On any failure or cancellation the model is restored exactly as it was. */
#pragma once
#include <stdatomic.h>
#include "sutra-model.h"

/* ---- AWQ fold table: where an architecture lets per-channel scales be folded ----
 * Names are printf patterns with one %d for the layer index (or none: applied once). */
typedef enum {
  SUTRA_AWQ_PREV_NORM,      /* prev = a norm weight param (and prev_bias): divided by s */
  SUTRA_AWQ_PREV_LINEAR,    /* prev = a linear module: its output rows (and bias) divided by s */
} SutraAwqPrevKind;
typedef struct {
  SutraAwqPrevKind kind;
  const char *prev;
  const char *prev_bias;    /* LayerNorm bias param, or NULL */
  const char *linears[4];   /* the modules reading prev's output directly (NULL-terminated) */
  bool repeat_kv;           /* prev = v_proj and the reader sees its heads repeated (GQA): the
                             * reader's channels are tied per kv head */
} SutraAwqFold;
/* The table for an architecture (*n entries; NULL/0 when it has none: every linear then keeps
 * explicit input scales). Edit sutra-quantize.c to add one. */
const SutraAwqFold *sutra_awq_folds (SutraArch arch, int *n);

typedef enum { SUTRA_QPHASE_CALIBRATE, SUTRA_QPHASE_QUANTIZE, SUTRA_QPHASE_EVALUATE,
               SUTRA_QPHASE_WRITE } SutraQuantizePhase;
typedef struct {
  SutraQuantizePhase phase;
  int done, total;          /* tensors quantized / calibration or evaluation batches */
  const char *name;         /* the tensor just quantized (QUANTIZE), else NULL */
  double fraction;          /* of the whole job, 0..1 */
} SutraQuantizeProgress;
/* Called on the quantizing thread; return false to cancel. */
typedef bool (*SutraQuantizeProgressFunc) (const SutraQuantizeProgress *p, void *user_data);

typedef struct {
  SutraQuantParams params;  /* type; method (AWQ/GPTQ need int4); group_size; double_quant */
  bool quantize_lm_head;    /* default off: the head sets the logits directly and, when tied,
                             * would need a second (packed) copy of the embedding table */
  const SutraBatch *calib;  /* AWQ/GPTQ calibration batches */
  int n_calib;
  bool gptq_one_pass;       /* GPTQ statistics of all layers from the float model at once */
  float gptq_damp;          /* 0: 0.01 */
  int awq_grid;             /* 0: 20 */
  bool awq_no_fold;         /* keep every AWQ scale in the weights (ignore the fold table) */
  size_t stats_budget;      /* bytes of statistics per calibration pass (0: 1 GiB) */
  SutraQuantizeProgressFunc progress;
  void *user_data;
  const atomic_bool *cancel;
} SutraQuantizeOptions;

typedef struct {
  int n_quantized;          /* linears now packed */
  int n_awq_folded;         /* AWQ linears whose scales were folded */
  int n_awq_explicit;       /* AWQ linears keeping explicit input scales */
  int calib_passes;         /* forward passes over the calibration data */
  int64_t calib_tokens;     /* tokens per pass */
  double seconds;
  size_t bytes_before, bytes_after;   /* sutra_model_weight_bytes */
  char notes[1024];         /* skipped folds, explicit-scale layers, ... (lines, truncated) */
} SutraQuantizeSummary;

SutraStatus sutra_model_quantize (SutraModel *m, const SutraQuantizeOptions *o,
                                  SutraQuantizeSummary *sum, SutraError *err);

/* ---- quality ---- */
typedef struct {
  int64_t tokens;           /* positions scored (each window of ctx ids scores ctx - 1) */
  double ppl_ref, ppl_quant;          /* exp (mean next-token NLL) */
  double kl_mean, kl_p99, kl_max;     /* per position KL(P_ref || P_quant) in nats */
  double top1_agree;                  /* fraction of positions with the same argmax */
} SutraQuantCompare;

/* Scores ids [n] in windows of ctx tokens with both models. */
SutraStatus sutra_quant_compare (SutraModel *ref, SutraModel *quant, const int *ids, int n, int ctx,
                                 const SutraQuantizeOptions *o, SutraQuantCompare *out,
                                 SutraError *err);

typedef struct {
  SutraQuantizeSummary summary;
  size_t file_bytes, source_file_bytes;   /* model weights files */
  int64_t params, params_quantized;
  double bits_per_weight;         /* packed linears: storage bits / weights */
  double bits_per_param_file;     /* file bits / all parameters */
  double ratio_vs_f32, ratio_vs_f16;  /* params * 4 (or 2) / file bytes */
  bool evaluated;
  SutraQuantCompare eval;
} SutraQuantReport;

/* The whole job behind `sutra quantize` and the Quantize panel: m (loaded from m->dir) is
 * quantized in place, written to out_dir atomically (a temporary folder renamed into place)
 * with config.json, generation_config.json and the tokenizer files copied, and, when eval ids
 * are given, the written folder is loaded and compared with a fresh load of m->dir. out_dir
 * must not exist or be empty unless overwrite. */
SutraStatus sutra_quantize_to_folder (SutraModel *m, const char *out_dir, bool overwrite,
                                      const SutraQuantizeOptions *o, const int *eval_ids,
                                      int n_eval, int eval_ctx, SutraQuantReport *rep,
                                      SutraError *err);
