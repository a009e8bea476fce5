/* sutra-trainer-private.h: the trainer's state, shared by sutra-trainer.c (loop),
 * sutra-trainer-setup.c (loading) and sutra-checkpoint.c (checkpoints, resume). */
#pragma once
#include "sutra-trainer.h"
#include "sutra-dataset.h"
#include "sutra-lora.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

struct SutraTrainer {
  SutraTrainConfig cfg;
  SutraTrainCallback cb;
  void *user_data;
  char *run_dir;
  char *resume_from;           /* checkpoint folder when resuming */
  char *model_dir;             /* resolved model folder */
  /* controls */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  atomic_int pause_req, stop_req, save_req, paused, started;
  /* loaded */
  SutraModel *model;
  void *tokenizer;             /* struct SutraTokenizer * (text datasets) */
  void *chat;                  /* struct SutraChatTemplate * */
  SutraDataset *all_ds, *train_ds, *eval_ds;
  SutraLoraConfig lora;
  SutraOptTensor *opt_t;
  char **opt_names;
  size_t n_opt;
  SutraOptimizer *opt;
  FILE *metrics_fp, *log_fp;
  /* batch buffers [micro_batch_size * seq_len] */
  int *ids, *labels, *targets, *pos, *doc;
  bool batch_packed;
  /* data order */
  size_t *order, *row_start, rows_in_epoch;
  int built_epoch;
  /* progress */
  int64_t step, max_steps, first_step, micro_done, saved_step;
  double elapsed_before, elapsed_at_start, paused_s;
  double best_eval;
  int evals_without_gain;
  char *last_checkpoint, *final_path;
};

void    sutra_trainer_emit (SutraTrainer *t, SutraTrainEvent *ev);
void    sutra_trainer_log (SutraTrainer *t, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
size_t  sutra_trainer_rss (void);
int64_t sutra_trainer_micro_per_epoch (SutraTrainer *t);
void    sutra_trainer_build_rows (SutraTrainer *t);
SutraStatus sutra_trainer_evaluate (SutraTrainer *t, double *loss, SutraError *err);
/* sutra-trainer-setup.c */
SutraStatus sutra_trainer_setup (SutraTrainer *t, SutraError *err);
void        sutra_trainer_teardown (SutraTrainer *t);
/* sutra-checkpoint.c */
SutraStatus sutra_trainer_save_checkpoint (SutraTrainer *t, SutraError *err);
SutraStatus sutra_trainer_save_final (SutraTrainer *t, SutraError *err);
SutraStatus sutra_trainer_load_checkpoint (SutraTrainer *t, SutraError *err);
