/* sutra-trainer.h: the background trainer (LoRA, QLoRA, full fine-tuning) and its settings.
 *
 * Settings are DESIGN.md section 5's keys; the GUI and the CLI share them through
 * sutra_train_config_set (one key, one string value, validated) and the JSON form written to
 * the run folder. A trainer runs on the caller's thread (sutra_trainer_run blocks) and reports
 * through a callback on that thread; the control requests (pause, resume, stop, save now) may
 * come from any thread and are honoured within one optimizer step.
 *
 * Run folder (DESIGN.md section 3): config.json (resolved settings), metrics.jsonl (one object
 * per step), train.log, checkpoints/step-NNNNNN/ (adapter or model + optimizer.safetensors +
 * trainer_state.json), adapter/ (final LoRA adapter) or model/ (final full model). Every file
 * and checkpoint is written atomically; resuming continues exactly as if never interrupted. */
#pragma once
#include "sutra-model.h"
#include "sutra-optim.h"
#include "sutra-quant.h"

typedef enum { SUTRA_METHOD_LORA, SUTRA_METHOD_QLORA, SUTRA_METHOD_FULL } SutraTrainMethod;
typedef enum { SUTRA_LOSS_CE, SUTRA_LOSS_MSE } SutraLossKind;

typedef struct {
  char *model;              /* model folder or HF repo id in the cache */
  char *data;               /* training data file */
  char *eval_data;          /* evaluation file, or NULL to use val_split */
  double val_split;         /* fraction of data held out when eval_data is NULL (0 = none) */
  char *output_dir;         /* the run folder */
  SutraTrainMethod method;
  int lora_r;
  double lora_alpha, lora_dropout;
  char **lora_targets;      /* HF module names, or the single entry "all-linear" */
  int n_lora_targets;
  char *init_adapter;       /* PEFT folder to start from, or NULL */
  SutraQuantType quant;     /* qlora base: nf4 (default), int4, int8 */
  SutraOptKind optimizer;
  double lr, beta1, beta2, eps, weight_decay, momentum;
  bool nesterov;
  SutraSchedKind schedule;
  int warmup_steps;
  int max_steps;            /* 0 = from epochs */
  double epochs;
  int micro_batch_size, grad_accum;
  double max_grad_norm;     /* 0 = no clipping */
  int seq_len;
  bool packing, mask_prompt, shuffle;
  char *template_name;      /* chat template family override, or NULL */
  uint64_t seed;
  int eval_every, save_every, keep_checkpoints, threads;   /* 0 = off / all cores */
  SutraLossKind loss;
  /* beyond DESIGN.md section 5 (documented in docs/training.md) */
  bool gradient_checkpointing;
  int early_stopping_patience;  /* evaluations without improvement before stopping; 0 = off */
  bool stop_on_bad_row;
  double init_std;              /* full fine-tuning from a config without weights */
  int log_every;                /* train.log line every N steps (metrics.jsonl gets every step) */
} SutraTrainConfig;

void        sutra_train_config_init  (SutraTrainConfig *c);   /* defaults */
void        sutra_train_config_clear (SutraTrainConfig *c);
void        sutra_train_config_copy  (SutraTrainConfig *dst, const SutraTrainConfig *src);
/* Sets one key from its string form ("lr" "2e-4", "lora_targets" "q_proj,v_proj",
 * "betas" "0.9,0.999"); unknown keys and bad values are SUTRA_ERR_INVALID naming them. */
SutraStatus sutra_train_config_set   (SutraTrainConfig *c, const char *key, const char *value,
                                      SutraError *err);
/* Loads a JSON settings file (keys as above; values of their JSON types or strings). */
SutraStatus sutra_train_config_load  (SutraTrainConfig *c, const char *path, SutraError *err);
/* The resolved settings as pretty JSON (caller frees). */
char       *sutra_train_config_to_json (const SutraTrainConfig *c);
/* Checks cross-key consistency (data given, sizes positive, ...). */
SutraStatus sutra_train_config_validate (const SutraTrainConfig *c, SutraError *err);
/* Every key with a one-line help text, for --help and the studio's per-field help. */
typedef struct { const char *key, *type, *help; } SutraTrainKeyInfo;
const SutraTrainKeyInfo *sutra_train_config_keys (size_t *n);

typedef enum {
  SUTRA_TRAIN_EV_STARTED,      /* model and data loaded; max_steps known */
  SUTRA_TRAIN_EV_STEP,         /* one optimizer step done (metrics filled) */
  SUTRA_TRAIN_EV_EVAL,         /* eval_loss / eval_ppl filled */
  SUTRA_TRAIN_EV_CHECKPOINT,   /* path = the checkpoint folder */
  SUTRA_TRAIN_EV_PAUSED,
  SUTRA_TRAIN_EV_RESUMED,
  SUTRA_TRAIN_EV_LOG,          /* message = a progress line (loading, quantizing, ...) */
  SUTRA_TRAIN_EV_FINISHED,     /* path = the final adapter/model folder */
  SUTRA_TRAIN_EV_STOPPED,      /* stopped on request; path = the checkpoint saved */
  SUTRA_TRAIN_EV_FAILED,       /* message = the error; status = its code */
} SutraTrainEventKind;

typedef struct {
  SutraTrainEventKind kind;
  int64_t step, max_steps;
  double epoch;
  double loss, lr, grad_norm;
  int64_t tokens;              /* tokens processed in this step */
  double tokens_per_s, elapsed_s, eta_s;
  double eval_loss, eval_ppl;
  size_t rss_bytes;            /* resident memory of the process */
  const char *path;
  const char *message;
  SutraStatus status;
} SutraTrainEvent;

typedef void (*SutraTrainCallback) (const SutraTrainEvent *ev, void *user_data);

typedef struct SutraTrainer SutraTrainer;

/* Validates and copies the settings; loading happens in run (off the caller's main loop). */
SutraStatus sutra_trainer_new (const SutraTrainConfig *c, SutraTrainCallback cb, void *user_data,
                               SutraTrainer **out, SutraError *err);
/* A trainer that continues run_dir from checkpoint (a folder under checkpoints/, or NULL for
 * the latest complete one). */
SutraStatus sutra_trainer_new_resume (const char *run_dir, const char *checkpoint,
                                      SutraTrainCallback cb, void *user_data, SutraTrainer **out,
                                      SutraError *err);
void        sutra_trainer_free (SutraTrainer *t);
/* Loads, trains, saves; blocks. SUTRA_ERR_CANCELLED after a stop request (a checkpoint has
 * been saved). */
SutraStatus sutra_trainer_run (SutraTrainer *t, SutraError *err);

/* Thread-safe controls. */
void sutra_trainer_request_pause  (SutraTrainer *t);
void sutra_trainer_request_resume (SutraTrainer *t);
void sutra_trainer_request_stop   (SutraTrainer *t);
void sutra_trainer_request_save   (SutraTrainer *t);
bool sutra_trainer_is_paused      (SutraTrainer *t);
/* The model being trained (borrowed). Use it from another thread only while paused
 * (chat with the current weights); NULL before STARTED. */
SutraModel *sutra_trainer_model (SutraTrainer *t);
const char *sutra_trainer_run_dir (const SutraTrainer *t);
/* The final adapter (lora, qlora) or model (full) folder, once the run finished; else NULL. */
const char *sutra_trainer_result_path (const SutraTrainer *t);

/* Memory a run would use, by part (bytes). */
typedef struct {
  size_t weights, trainable, gradients, optimizer, activations, total;
  int64_t trainable_params;
} SutraTrainMemory;
SutraStatus sutra_train_estimate_memory (const SutraModelConfig *mc, const SutraTrainConfig *tc,
                                         SutraTrainMemory *out, SutraError *err);

/* ---- run folders (reopening past runs) ---- */
typedef struct {
  int64_t step;
  double epoch, loss, lr, grad_norm, tokens_per_s, elapsed_s;
  int64_t tokens;
  double eval_loss;            /* NAN when not evaluated at this step */
} SutraMetricRow;
/* Reads metrics.jsonl (skipping a torn last line); caller frees *rows. */
SutraStatus sutra_run_read_metrics (const char *run_dir, SutraMetricRow **rows, size_t *n,
                                    SutraError *err);
/* Complete checkpoints of a run, oldest first ("<run>/checkpoints/step-000010"); caller frees
 * each string and the array. */
SutraStatus sutra_run_list_checkpoints (const char *run_dir, char ***paths, size_t *n,
                                        SutraError *err);
