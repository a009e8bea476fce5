/* sutra-trainer.c: the training run: set-up (model, method, data, optimizer), the step loop
 * (gradient accumulation, clipping, schedule, NaN guard), evaluation, control requests, metrics.
 * Checkpoints and resume live in sutra-checkpoint.c.
 *
 * Data order: the training examples form one stream of micro-batches. Each epoch draws a
 * permutation of the examples from (seed, epoch) when shuffling; rows are the examples in that
 * order (or, with packing, consecutive examples greedily packed into seq_len rows); micro-batches
 * are consecutive groups of micro_batch_size rows, the last one of an epoch possibly smaller.
 * An optimizer step consumes grad_accum micro-batches, continuing across epoch boundaries, so
 * the position in the data is one counter (micro-batches consumed) that checkpoints store. */
#include "sutra-trainer-private.h"
#include "sutra-fsutil.h"
#include "sutra-hub.h"
#include "sutra-loss.h"
#include "sutra-pool.h"
#include "sutra-rng.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_s (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

size_t
sutra_trainer_rss (void)
{
  FILE *fp = fopen ("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (fp) {
    if (fscanf (fp, "%ld %ld", &pages, &rss) != 2)
      rss = 0;
    fclose (fp);
  }
  return (size_t) rss * (size_t) sysconf (_SC_PAGESIZE);
}

void
sutra_trainer_emit (SutraTrainer *t, SutraTrainEvent *ev)
{
  ev->rss_bytes = sutra_trainer_rss ();
  if (t->cb)
    t->cb (ev, t->user_data);
}

void
sutra_trainer_log (SutraTrainer *t, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  if (t->log_fp) {
    time_t now = time (NULL);
    struct tm tm;
    char ts[32];
    localtime_r (&now, &tm);
    strftime (ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf (t->log_fp, "%s %s\n", ts, buf);
    fflush (t->log_fp);
  }
  SutraTrainEvent ev = { .kind = SUTRA_TRAIN_EV_LOG, .message = buf, .step = t->step };
  sutra_trainer_emit (t, &ev);
}

/* ------------------------------------------------------------------------------------------ */
/* construction and controls                                                                  */
/* ------------------------------------------------------------------------------------------ */

SutraStatus
sutra_trainer_new (const SutraTrainConfig *c, SutraTrainCallback cb, void *user_data,
                   SutraTrainer **out, SutraError *err)
{
  SutraStatus st = sutra_train_config_validate (c, err);
  if (st)
    return st;
  SutraTrainer *t = sutra_xcalloc (1, sizeof *t);
  sutra_train_config_copy (&t->cfg, c);
  t->cb = cb;
  t->user_data = user_data;
  t->run_dir = sutra_xstrdup (c->output_dir);
  pthread_mutex_init (&t->lock, NULL);
  pthread_cond_init (&t->cond, NULL);
  *out = t;
  return SUTRA_OK;
}

void
sutra_trainer_free (SutraTrainer *t)
{
  if (!t)
    return;
  sutra_trainer_teardown (t);
  sutra_train_config_clear (&t->cfg);
  free (t->run_dir);
  free (t->resume_from);
  pthread_mutex_destroy (&t->lock);
  pthread_cond_destroy (&t->cond);
  free (t);
}

void
sutra_trainer_request_pause (SutraTrainer *t)
{
  atomic_store (&t->pause_req, 1);
}

void
sutra_trainer_request_resume (SutraTrainer *t)
{
  pthread_mutex_lock (&t->lock);
  atomic_store (&t->pause_req, 0);
  pthread_cond_broadcast (&t->cond);
  pthread_mutex_unlock (&t->lock);
}

void
sutra_trainer_request_stop (SutraTrainer *t)
{
  pthread_mutex_lock (&t->lock);
  atomic_store (&t->stop_req, 1);
  pthread_cond_broadcast (&t->cond);
  pthread_mutex_unlock (&t->lock);
}

void
sutra_trainer_request_save (SutraTrainer *t)
{
  atomic_store (&t->save_req, 1);
}

bool
sutra_trainer_is_paused (SutraTrainer *t)
{
  return atomic_load (&t->paused) != 0;
}

SutraModel *
sutra_trainer_model (SutraTrainer *t)
{
  return atomic_load (&t->started) ? t->model : NULL;
}

const char *
sutra_trainer_run_dir (const SutraTrainer *t)
{
  return t->run_dir;
}

const char *
sutra_trainer_result_path (const SutraTrainer *t)
{
  return t->final_path;
}

/* ------------------------------------------------------------------------------------------ */
/* data order                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* Rows are fixed for the run: row r covers examples [row_start[r], row_start[r + 1]) in
 * dataset order (one example per row, or consecutive examples greedily packed into seq_len).
 * An epoch visits the rows in order[] (a seeded permutation when shuffling). */
void
sutra_trainer_build_rows (SutraTrainer *t)
{
  size_t n = sutra_dataset_count (t->train_ds);
  t->row_start = sutra_xrealloc (t->row_start, sizeof (size_t) * (n + 1));
  size_t rows = 0;
  if (!t->cfg.packing) {
    for (size_t i = 0; i <= n; i++)
      t->row_start[i] = i;
    rows = n;
  } else {
    size_t i = 0;
    while (i < n) {
      t->row_start[rows++] = i;
      int used = 0;
      while (i < n) {
        int len = sutra_dataset_get (t->train_ds, i)->n;
        if (used > 0 && used + len > t->cfg.seq_len)
          break;
        used += len;
        i++;
      }
    }
    t->row_start[rows] = n;
  }
  t->rows_in_epoch = rows;
  t->order = sutra_xrealloc (t->order, sizeof (size_t) * (rows ? rows : 1));
  t->built_epoch = -1;
}

static void
build_epoch (SutraTrainer *t, int epoch)
{
  size_t n = t->rows_in_epoch;
  for (size_t i = 0; i < n; i++)
    t->order[i] = i;
  if (t->cfg.shuffle && n > 1) {
    uint64_t s = t->cfg.seed ^ (0xD1B54A32D192ED03ULL * (uint64_t) (epoch + 1));
    for (size_t i = n - 1; i > 0; i--) {       /* Fisher-Yates */
      size_t j = (size_t) (sutra_splitmix64 (&s) % (i + 1));
      size_t tmp = t->order[i];
      t->order[i] = t->order[j];
      t->order[j] = tmp;
    }
  }
  t->built_epoch = epoch;
}

int64_t
sutra_trainer_micro_per_epoch (SutraTrainer *t)
{
  return (t->rows_in_epoch + (size_t) t->cfg.micro_batch_size - 1) / (size_t) t->cfg.micro_batch_size;
}

/* Fills the batch buffers with micro-batch number `mb` of the stream; returns rows B, length T. */
static void
fill_micro_batch (SutraTrainer *t, int64_t mb, int *B_out, int *T_out, int64_t *tokens)
{
  int64_t per = sutra_trainer_micro_per_epoch (t);
  int epoch = (int) (mb / per);
  if (epoch != t->built_epoch)
    build_epoch (t, epoch);
  int64_t k = mb % per;
  size_t r0 = (size_t) k * (size_t) t->cfg.micro_batch_size;
  size_t r1 = r0 + (size_t) t->cfg.micro_batch_size;
  if (r1 > t->rows_in_epoch)
    r1 = t->rows_in_epoch;
  int B = (int) (r1 - r0), T = 1;
  for (size_t r = r0; r < r1; r++) {
    size_t row = t->order[r];
    int len = 0;
    for (size_t e = t->row_start[row]; e < t->row_start[row + 1]; e++)
      len += sutra_dataset_get (t->train_ds, e)->n;
    T = len > T ? len : T;
  }
  if (T > t->cfg.seq_len)
    T = t->cfg.seq_len;
  int pad = t->model->cfg.pad_token_id >= 0 ? t->model->cfg.pad_token_id : 0;
  int64_t ntok = 0;
  bool packed = false;
  for (int b = 0; b < B; b++) {
    size_t row = t->order[r0 + (size_t) b];
    int off = 0, doc = 0;
    for (size_t e = t->row_start[row]; e < t->row_start[row + 1] && off < T; e++, doc++) {
      const SutraExample *ex = sutra_dataset_get (t->train_ds, e);
      for (int i = 0; i < ex->n && off < T; i++, off++) {
        t->ids[b * T + off] = ex->ids[i];
        t->labels[b * T + off] = ex->labels[i];
        t->pos[b * T + off] = i;
        t->doc[b * T + off] = doc;
      }
      if (doc > 0)
        packed = true;
    }
    ntok += off;
    for (; off < T; off++) {                       /* right padding: no loss, never attended */
      t->ids[b * T + off] = pad;
      t->labels[b * T + off] = SUTRA_IGNORE_INDEX;
      t->pos[b * T + off] = off;
      t->doc[b * T + off] = -1;
    }
  }
  sutra_shift_labels (t->targets, t->labels, B, T);
  /* the last token of a packed document does not predict the next document's first token */
  for (int b = 0; b < B; b++)
    for (int i = 0; i + 1 < T; i++)
      if (t->doc[b * T + i] != t->doc[b * T + i + 1])
        t->targets[b * T + i] = SUTRA_IGNORE_INDEX;
  t->batch_packed = packed;
  *B_out = B;
  *T_out = T;
  *tokens = ntok;
}

/* ------------------------------------------------------------------------------------------ */
/* evaluation                                                                                 */
/* ------------------------------------------------------------------------------------------ */

SutraStatus
sutra_trainer_evaluate (SutraTrainer *t, double *loss_out, SutraError *err)
{
  SutraDataset *ds = t->eval_ds;
  size_t n = ds ? sutra_dataset_count (ds) : 0;
  if (n == 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "no evaluation data");
  double sum = 0;
  int64_t count = 0;
  int V = t->model->cfg.vocab_size;
  for (size_t i = 0; i < n; i += (size_t) t->cfg.micro_batch_size) {
    size_t j1 = i + (size_t) t->cfg.micro_batch_size < n ? i + (size_t) t->cfg.micro_batch_size : n;
    int B = (int) (j1 - i), T = 1;
    for (size_t j = i; j < j1; j++) {
      int len = sutra_dataset_get (ds, j)->n;
      T = len > T ? len : T;
    }
    if (T > t->cfg.seq_len)
      T = t->cfg.seq_len;
    for (int b = 0; b < B; b++) {
      const SutraExample *ex = sutra_dataset_get (ds, i + (size_t) b);
      for (int k = 0; k < T; k++) {
        bool in = k < ex->n;
        t->ids[b * T + k] = in ? ex->ids[k] : 0;
        t->labels[b * T + k] = in ? ex->labels[k] : SUTRA_IGNORE_INDEX;
      }
    }
    sutra_shift_labels (t->targets, t->labels, B, T);
    SutraBatch batch = { B, T, t->ids, NULL, NULL };
    float *logits;
    SutraStatus st = sutra_model_forward (t->model, &batch, false, &logits, err);
    if (st)
      return st;
    SutraLossResult r;
    double s;
    st = sutra_lm_loss (logits, t->targets, B * T, V, t->cfg.loss == SUTRA_LOSS_MSE, &r, &s, err);
    if (st)
      return st;
    sum += s;
    count += r.n_valid;
    if (atomic_load (&t->stop_req))
      return sutra_error_set (err, SUTRA_ERR_CANCELLED, "evaluation cancelled");
  }
  *loss_out = count ? sum / (double) count : NAN;
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* the loop                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* One metrics.jsonl line; a failed write (a full disk) stops the run rather than losing
 * metrics silently. */
static SutraStatus
write_metrics (SutraTrainer *t, const SutraTrainEvent *ev, double eval_loss, SutraError *err)
{
  if (!t->metrics_fp)
    return SUTRA_OK;
  fprintf (t->metrics_fp,
           "{\"step\": %lld, \"epoch\": %.6f, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, "
           "\"tokens\": %lld, \"tokens_per_s\": %.3f, \"elapsed_s\": %.3f",
           (long long) ev->step, ev->epoch, ev->loss, ev->lr, ev->grad_norm, (long long) ev->tokens,
           ev->tokens_per_s, ev->elapsed_s);
  if (!isnan (eval_loss))
    fprintf (t->metrics_fp, ", \"eval_loss\": %.9g, \"eval_ppl\": %.9g", eval_loss, exp (eval_loss));
  fprintf (t->metrics_fp, "}\n");
  if (fflush (t->metrics_fp) != 0 || ferror (t->metrics_fp)) {
    int e = errno ? errno : EIO;
    clearerr (t->metrics_fp);
    return sutra_error_set_sys (err, SUTRA_ERR_IO, e, "%s/metrics.jsonl: cannot write step %lld "
                                "(the last checkpoint is intact)", t->run_dir, (long long) ev->step);
  }
  return SUTRA_OK;
}

/* Blocks while paused; returns true when a stop was requested. */
static bool
honour_pause (SutraTrainer *t)
{
  if (!atomic_load (&t->pause_req))
    return atomic_load (&t->stop_req) != 0;
  double t0 = now_s ();
  atomic_store (&t->paused, 1);
  SutraTrainEvent ev = { .kind = SUTRA_TRAIN_EV_PAUSED, .step = t->step, .max_steps = t->max_steps };
  sutra_trainer_emit (t, &ev);
  sutra_trainer_log (t, "paused at step %lld", (long long) t->step);
  pthread_mutex_lock (&t->lock);
  while (atomic_load (&t->pause_req) && !atomic_load (&t->stop_req)) {
    pthread_mutex_unlock (&t->lock);
    /* a save request while paused is served here too */
    if (atomic_exchange (&t->save_req, 0)) {
      SutraError e2;
      if (sutra_trainer_save_checkpoint (t, &e2))
        sutra_trainer_log (t, "checkpoint failed: %s", e2.message);
    }
    pthread_mutex_lock (&t->lock);
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait (&t->cond, &t->lock, &ts);
  }
  pthread_mutex_unlock (&t->lock);
  atomic_store (&t->paused, 0);
  t->paused_s += now_s () - t0;
  if (atomic_load (&t->stop_req))
    return true;
  SutraTrainEvent ev2 = { .kind = SUTRA_TRAIN_EV_RESUMED, .step = t->step, .max_steps = t->max_steps };
  sutra_trainer_emit (t, &ev2);
  sutra_trainer_log (t, "resumed at step %lld", (long long) t->step);
  return false;
}

static bool
grads_finite (SutraTrainer *t)
{
  for (size_t i = 0; i < t->n_opt; i++)
    for (size_t j = 0; j < t->opt_t[i].n; j++)
      if (!isfinite (t->opt_t[i].grad[j]))
        return false;
  return true;
}

static SutraStatus
train_loop (SutraTrainer *t, SutraError *err)
{
  SutraModel *m = t->model;
  int V = m->cfg.vocab_size;
  bool mse = t->cfg.loss == SUTRA_LOSS_MSE;
  double t_start = now_s () - t->elapsed_before;
  t->elapsed_at_start = t->elapsed_before;
  t->first_step = t->step;
  t->paused_s = 0;
  while (t->step < t->max_steps) {
    if (honour_pause (t))
      return SUTRA_ERR_CANCELLED;
    double ts0 = now_s ();
    sutra_model_zero_grad (m);
    double loss_sum = 0;
    int64_t tokens = 0;
    for (int a = 0; a < t->cfg.grad_accum; a++) {
      int B, T;
      int64_t ntok;
      fill_micro_batch (t, t->micro_done, &B, &T, &ntok);
      t->micro_done++;
      SutraBatch batch = { B, T, t->ids, t->batch_packed ? t->pos : NULL, t->batch_packed ? t->doc : NULL };
      float *logits;
      SutraStatus st = sutra_model_forward (m, &batch, true, &logits, err);
      if (st)
        return st;
      SutraLossResult r;
      st = sutra_lm_loss_backward (logits, t->targets, B * T, V, mse, 1.f / (float) t->cfg.grad_accum,
                                   &r, err);
      if (st)
        return st;
      if (!isfinite (r.loss))
        return sutra_error_set (err, SUTRA_ERR_NUMERIC,
                                "the loss became %s at step %lld (micro-batch %lld): training stopped; "
                                "the last checkpoint is intact (try a lower lr)",
                                isnan (r.loss) ? "NaN" : "infinite", (long long) t->step + 1,
                                (long long) t->micro_done);
      st = sutra_model_backward (m, logits, err);
      if (st)
        return st;
      loss_sum += r.loss;
      tokens += ntok;
    }
    if (!grads_finite (t))
      return sutra_error_set (err, SUTRA_ERR_NUMERIC,
                              "gradients became NaN or infinite at step %lld: training stopped; the last "
                              "checkpoint is intact (try a lower lr or max_grad_norm)",
                              (long long) t->step + 1);
    double norm = sutra_clip_grad_norm (t->opt_t, t->n_opt, t->cfg.max_grad_norm);
    double lr = sutra_schedule_lr (t->cfg.schedule, t->cfg.lr, t->step, t->cfg.warmup_steps,
                                   t->max_steps, 1);
    sutra_optimizer_step (t->opt, lr);
    t->step++;
    double now = now_s ();
    double step_s = now - ts0;
    SutraTrainEvent ev = { .kind = SUTRA_TRAIN_EV_STEP };
    ev.step = t->step;
    ev.max_steps = t->max_steps;
    ev.epoch = (double) t->micro_done / (double) sutra_trainer_micro_per_epoch (t);
    ev.loss = loss_sum / t->cfg.grad_accum;
    ev.lr = lr;
    ev.grad_norm = norm;
    ev.tokens = tokens;
    ev.tokens_per_s = step_s > 0 ? (double) tokens / step_s : 0;
    ev.elapsed_s = now - t_start - t->paused_s;
    double session_s = now - t_start - t->paused_s - t->elapsed_at_start;
    int64_t session_steps = t->step - t->first_step;
    ev.eta_s = session_steps > 0 ? session_s / (double) session_steps * (double) (t->max_steps - t->step) : 0;
    t->elapsed_before = ev.elapsed_s;
    double eval_loss = NAN;
    bool do_eval = t->eval_ds && ((t->cfg.eval_every > 0 && t->step % t->cfg.eval_every == 0) ||
                                  t->step == t->max_steps);
    if (do_eval) {
      SutraStatus st = sutra_trainer_evaluate (t, &eval_loss, err);
      if (st && st != SUTRA_ERR_CANCELLED)
        return st;
    }
    SutraStatus mst = write_metrics (t, &ev, eval_loss, err);
    if (mst)
      return mst;
    sutra_trainer_emit (t, &ev);
    if (t->step % t->cfg.log_every == 0 || t->step == t->max_steps)
      sutra_trainer_log (t, "step %lld/%lld loss %.4f lr %.3g grad_norm %.3f %.0f tok/s",
                         (long long) t->step, (long long) t->max_steps, ev.loss, lr, norm,
                         ev.tokens_per_s);
    if (!isnan (eval_loss)) {
      SutraTrainEvent ee = { .kind = SUTRA_TRAIN_EV_EVAL, .step = t->step, .max_steps = t->max_steps,
                             .eval_loss = eval_loss, .eval_ppl = exp (eval_loss), .epoch = ev.epoch };
      sutra_trainer_emit (t, &ee);
      sutra_trainer_log (t, "eval at step %lld: loss %.4f perplexity %.3f", (long long) t->step,
                         eval_loss, exp (eval_loss));
      if (eval_loss < t->best_eval) {
        t->best_eval = eval_loss;
        t->evals_without_gain = 0;
      } else if (t->cfg.early_stopping_patience > 0 &&
                 ++t->evals_without_gain >= t->cfg.early_stopping_patience) {
        sutra_trainer_log (t, "early stopping: %d evaluations without improvement",
                           t->evals_without_gain);
        t->max_steps = t->step;   /* finish normally */
      }
    }
    bool save = (t->cfg.save_every > 0 && t->step % t->cfg.save_every == 0) ||
                atomic_exchange (&t->save_req, 0);
    if (save && t->step < t->max_steps) {
      SutraStatus st = sutra_trainer_save_checkpoint (t, err);
      if (st)
        return st;
    }
    if (atomic_load (&t->stop_req))
      return SUTRA_ERR_CANCELLED;
  }
  return SUTRA_OK;
}

SutraStatus
sutra_trainer_run (SutraTrainer *t, SutraError *err)
{
  SutraError local;
  if (!err)
    err = &local;
  SutraStatus st = sutra_trainer_setup (t, err);
  if (!st) {
    atomic_store (&t->started, 1);
    SutraTrainEvent ev = { .kind = SUTRA_TRAIN_EV_STARTED, .step = t->step, .max_steps = t->max_steps };
    sutra_trainer_emit (t, &ev);
    st = train_loop (t, err);
  }
  if (st == SUTRA_OK) {
    st = sutra_trainer_save_final (t, err);
    if (!st) {
      SutraTrainEvent ev = { .kind = SUTRA_TRAIN_EV_FINISHED, .step = t->step,
                             .max_steps = t->max_steps, .path = t->final_path };
      sutra_trainer_log (t, "finished at step %lld; saved %s", (long long) t->step, t->final_path);
      sutra_trainer_emit (t, &ev);
      return SUTRA_OK;
    }
  }
  if (st == SUTRA_ERR_CANCELLED && t->opt) {
    /* a stop request: save where we are so the run can be resumed */
    SutraError e2;
    SutraStatus s2 = t->step > t->saved_step ? sutra_trainer_save_checkpoint (t, &e2) : SUTRA_OK;
    if (s2) {
      *err = e2;
      st = s2;
    } else {
      sutra_error_set (err, SUTRA_ERR_CANCELLED, "stopped at step %lld; resume with: sutra resume %s",
                       (long long) t->step, t->run_dir);
      SutraTrainEvent ev = { .kind = SUTRA_TRAIN_EV_STOPPED, .step = t->step,
                             .max_steps = t->max_steps, .path = t->last_checkpoint };
      sutra_trainer_log (t, "stopped at step %lld", (long long) t->step);
      sutra_trainer_emit (t, &ev);
      return SUTRA_ERR_CANCELLED;
    }
  }
  SutraTrainEvent ev = { .kind = SUTRA_TRAIN_EV_FAILED, .step = t->step, .max_steps = t->max_steps,
                         .message = err->message, .status = st };
  if (t->log_fp)
    sutra_trainer_log (t, "failed: %s", err->message);
  sutra_trainer_emit (t, &ev);
  return st;
}
