/* sutra-checkpoint.c: checkpoints (atomic folders), the final result, resume, and reading run
 * folders back (metrics, checkpoint lists).
 *
 * checkpoints/step-NNNNNN/
 *   adapter_model.safetensors + adapter_config.json   (lora, qlora: a PEFT adapter)
 *   config.json + model.safetensors                   (full: the whole model, F32)
 *   optimizer.safetensors   "<tensor>.exp_avg", "<tensor>.exp_avg_sq" | "<tensor>.momentum_buffer"
 *                           (F32; __metadata__ "step" = optimizer steps taken)
 *   trainer_state.json      step, micro-batches consumed (the data position), dropout RNG state,
 *                           elapsed time, early-stopping state
 * A checkpoint is built in a temporary sibling folder and renamed into place after every file
 * is fsync'ed, so a crash leaves either the previous checkpoint set or the new one, never half. */
#include "sutra-trainer-private.h"
#include "sutra-fsutil.h"
#include "sutra-json.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STATE_FORMAT 1

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Complete checkpoint folders (named step-*, holding trainer_state.json), oldest first. */
SutraStatus
sutra_run_list_checkpoints (const char *run_dir, char ***paths, size_t *n, SutraError *err)
{
  char *dir = sutra_path_join (run_dir, "checkpoints");
  *paths = NULL;
  *n = 0;
  DIR *d = opendir (dir);
  if (!d) {
    free (dir);
    return SUTRA_OK;                    /* no checkpoints yet */
  }
  struct dirent *e;
  char **list = NULL;
  size_t cnt = 0;
  while ((e = readdir (d))) {
    if (strncmp (e->d_name, "step-", 5) || strchr (e->d_name, '.'))
      continue;                         /* skips step-N.tmp-* and step-N.old-* */
    char *p = sutra_path_join (dir, e->d_name);
    char *state = sutra_path_join (p, "trainer_state.json");
    if (sutra_is_file (state)) {
      list = sutra_xrealloc (list, sizeof (char *) * (cnt + 1));
      list[cnt++] = p;
    } else {
      free (p);
    }
    free (state);
  }
  closedir (d);
  free (dir);
  if (cnt)
    qsort (list, cnt, sizeof (char *), cmp_str);
  *paths = list;
  *n = cnt;
  (void) err;
  return SUTRA_OK;
}

static void
free_list (char **l, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (l[i]);
  free (l);
}

/* Removes leftovers of interrupted writes and removals (*.tmp-*, *.old-*, *.del-*) from
 * checkpoints/ (one trainer per run folder: none of them can belong to a live writer). */
static void
clean_leftovers (const char *run_dir)
{
  char *dir = sutra_path_join (run_dir, "checkpoints");
  DIR *d = opendir (dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir (d)))
      if (strstr (e->d_name, ".tmp-") || strstr (e->d_name, ".old-") || strstr (e->d_name, ".del-")) {
        char *p = sutra_path_join (dir, e->d_name);
        sutra_rm_rf (p, NULL);
        free (p);
      }
    closedir (d);
  }
  free (dir);
}

static SutraStatus
write_optimizer (SutraTrainer *t, const char *dir, SutraError *err)
{
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  char steps[32];
  snprintf (steps, sizeof steps, "%lld", (long long) sutra_optimizer_steps_done (t->opt));
  sutra_safetensors_writer_metadata (w, "step", steps);
  sutra_safetensors_writer_metadata (w, "optimizer", sutra_opt_kind_name (t->cfg.optimizer));
  int slots = sutra_optimizer_slots (t->opt);
  for (size_t i = 0; i < t->n_opt; i++)
    for (int s = 0; s < slots; s++) {
      char *name = sutra_xasprintf ("%s.%s", t->opt_names[i], sutra_optimizer_slot_name (t->opt, s));
      int64_t shape[1] = { (int64_t) t->opt_t[i].n };
      sutra_safetensors_writer_add (w, name, SUTRA_F32, 1, shape, sutra_optimizer_state (t->opt, i, s));
      free (name);
    }
  char *path = sutra_path_join (dir, "optimizer.safetensors");
  SutraStatus st = sutra_safetensors_writer_write (w, path, err);
  free (path);
  sutra_safetensors_writer_free (w);
  return st;
}

static SutraStatus
write_state (SutraTrainer *t, const char *dir, SutraError *err)
{
  char rng[32];
  snprintf (rng, sizeof rng, "%016" PRIx64, t->model->dropout_rng);
  char *text = sutra_xasprintf (
    "{\n  \"format\": %d,\n  \"step\": %lld,\n  \"max_steps\": %lld,\n  \"micro_batches_done\": %lld,\n"
    "  \"epoch\": %.9g,\n  \"dropout_rng\": \"%s\",\n  \"seed\": %llu,\n  \"elapsed_s\": %.3f,\n"
    "  \"best_eval_loss\": %s%.9g%s,\n  \"evals_without_improvement\": %d\n}\n",
    STATE_FORMAT, (long long) t->step, (long long) t->max_steps, (long long) t->micro_done,
    (double) t->micro_done / (double) sutra_trainer_micro_per_epoch (t), rng,
    (unsigned long long) t->cfg.seed, t->elapsed_before, isfinite (t->best_eval) ? "" : "\"",
    isfinite (t->best_eval) ? t->best_eval : 0.0, isfinite (t->best_eval) ? "" : "\"",
    t->evals_without_gain);
  char *path = sutra_path_join (dir, "trainer_state.json");
  SutraStatus st = sutra_write_file_atomic (path, text, strlen (text), err);
  free (path);
  free (text);
  return st;
}

static SutraStatus
write_weights (SutraTrainer *t, const char *dir, SutraError *err)
{
  if (t->cfg.method == SUTRA_METHOD_FULL)
    return sutra_model_write_files (t->model, dir, SUTRA_F32, err);
  return sutra_lora_write_files (t->model, &t->lora, t->cfg.model, dir, err);
}

SutraStatus
sutra_trainer_save_checkpoint (SutraTrainer *t, SutraError *err)
{
  clean_leftovers (t->run_dir);
  char *name = sutra_xasprintf ("checkpoints/step-%06lld", (long long) t->step);
  char *final = sutra_path_join (t->run_dir, name);
  free (name);
  char *tmp;
  SutraStatus st = sutra_tmpdir_begin (final, &tmp, err);
  if (st) {
    free (final);
    return st;
  }
  st = write_weights (t, tmp, err);
  if (!st)
    st = write_optimizer (t, tmp, err);
  if (!st)
    st = write_state (t, tmp, err);
  if (!st)
    st = sutra_tmpdir_commit (tmp, final, err);
  if (st) {
    sutra_rm_rf (tmp, NULL);
    sutra_error_prefix (err, "checkpoint at step %lld not saved (the previous one is intact)",
                        (long long) t->step);
    free (tmp);
    free (final);
    return st;
  }
  free (tmp);
  /* keep the newest keep_checkpoints */
  char **list;
  size_t n;
  if (t->cfg.keep_checkpoints > 0 && !sutra_run_list_checkpoints (t->run_dir, &list, &n, NULL)) {
    for (size_t i = 0; i + (size_t) t->cfg.keep_checkpoints < n; i++)
      sutra_rm_rf_atomic (list[i], NULL);       /* never half-removed under its name */
    free_list (list, n);
  }
  free (t->last_checkpoint);
  t->last_checkpoint = final;
  t->saved_step = t->step;
  SutraTrainEvent ev = { .kind = SUTRA_TRAIN_EV_CHECKPOINT, .step = t->step, .max_steps = t->max_steps,
                         .path = final };
  sutra_trainer_emit (t, &ev);
  sutra_trainer_log (t, "saved checkpoint %s", final);
  return SUTRA_OK;
}

SutraStatus
sutra_trainer_save_final (SutraTrainer *t, SutraError *err)
{
  SutraStatus st;
  char *out;
  if (t->cfg.method == SUTRA_METHOD_FULL) {
    out = sutra_path_join (t->run_dir, "model");
    char *tmp;
    st = sutra_tmpdir_begin (out, &tmp, err);
    if (!st) {
      st = sutra_model_write_files (t->model, tmp, SUTRA_F32, err);
      /* a complete model folder: tokenizer and generation config from the base */
      static const char *extra[] = { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                     "chat_template.jinja", "generation_config.json" };
      for (size_t i = 0; !st && i < sizeof extra / sizeof extra[0]; i++) {
        char *src = sutra_path_join (t->model_dir, extra[i]);
        if (sutra_is_file (src)) {
          char *dst = sutra_path_join (tmp, extra[i]);
          st = sutra_copy_file (src, dst, err);
          free (dst);
        }
        free (src);
      }
      if (!st)
        st = sutra_tmpdir_commit (tmp, out, err);
      if (st)
        sutra_rm_rf (tmp, NULL);
      free (tmp);
    }
  } else {
    out = sutra_path_join (t->run_dir, "adapter");
    st = sutra_lora_save (t->model, &t->lora, t->cfg.model, out, err);
  }
  if (st) {
    free (out);
    return st;
  }
  free (t->final_path);
  t->final_path = out;
  return SUTRA_OK;
}

/* ---- resume ---- */

size_t
sutra_metrics_truncate_text (char *text, size_t len, int64_t step)
{
  size_t olen = 0;
  char *line = text;
  while (line < text + len) {
    char *nl = memchr (line, '\n', (size_t) (text + len - line));
    if (!nl)
      break;                                    /* a torn last line */
    long long s = -1;
    char *k = memmem (line, (size_t) (nl - line), "\"step\":", 7);
    if (k) {
      char *e;
      s = strtoll (k + 7, &e, 10);
      if (e == k + 7 || e > nl)
        s = -1;
    }
    size_t n = (size_t) (nl - line + 1);
    if (s >= 0 && s <= step) {
      memmove (text + olen, line, n);           /* olen <= line - text: never overlaps ahead */
      olen += n;
    }
    line = nl + 1;
  }
  return olen;
}

static SutraStatus
truncate_metrics (const char *run_dir, int64_t step, SutraError *err)
{
  char *path = sutra_path_join (run_dir, "metrics.jsonl");
  char *text;
  size_t len;
  SutraStatus st = sutra_read_file (path, 0, &text, &len, err);
  if (st == SUTRA_ERR_NOT_FOUND) {
    free (path);
    return SUTRA_OK;
  }
  if (st) {
    free (path);
    return st;
  }
  size_t olen = sutra_metrics_truncate_text (text, len, step);
  st = sutra_write_file_atomic (path, text, olen, err);
  free (text);
  free (path);
  return st;
}

/* Largest step count a checkpoint may claim (exactly representable as a double). */
#define STATE_MAX_COUNT ((int64_t) 1 << 53)

SutraStatus
sutra_trainer_state_parse (const char *text, size_t len, const char *name, SutraTrainerState *out,
                           SutraError *err)
{
  json_object *o;
  SutraStatus st = sutra_json_parse (text, len, name, SUTRA_JSON_OBJECT, &o, err);
  if (st)
    return st;
  SutraTrainerState s = { 0 };
  int64_t format = 0;
  const char *rng = NULL;
  st = sutra_json_get_int (o, name, "format", 0, &format, err);
  if (!st && format != STATE_FORMAT)
    st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: state format %lld (expected %d)", name,
                          (long long) format, STATE_FORMAT);
  if (!st)
    st = sutra_json_get_int (o, name, "step", 0, &s.step, err);
  if (!st)
    st = sutra_json_get_int (o, name, "micro_batches_done", 0, &s.micro_batches_done, err);
  if (!st)
    st = sutra_json_get_string (o, name, "dropout_rng", "0", &rng, err);
  if (!st)
    st = sutra_json_get_double (o, name, "elapsed_s", 0, &s.elapsed_s, err);
  if (!st)
    st = sutra_json_get_int (o, name, "evals_without_improvement", 0, &s.evals_without_improvement, err);
  if (!st) {
    const char *bad = NULL;
    if (s.step < 0 || s.step > STATE_MAX_COUNT)
      bad = "step";
    else if (s.micro_batches_done < 0 || s.micro_batches_done > STATE_MAX_COUNT)
      bad = "micro_batches_done";
    else if (!isfinite (s.elapsed_s) || s.elapsed_s < 0)
      bad = "elapsed_s";
    else if (s.evals_without_improvement < 0 || s.evals_without_improvement > INT32_MAX)
      bad = "evals_without_improvement";
    if (bad)
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s is out of range", name, bad);
  }
  if (!st) {
    /* 1 to 16 hex digits, nothing else */
    size_t n = strlen (rng);
    bool ok = n >= 1 && n <= 16 && strspn (rng, "0123456789abcdefABCDEF") == n;
    if (!ok)
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: dropout_rng: expected 1-16 hex digits", name);
    else
      s.dropout_rng = strtoull (rng, NULL, 16);
  }
  if (!st) {
    json_object *b = json_object_object_get (o, "best_eval_loss");
    s.best_eval_loss = b && (json_object_is_type (b, json_type_double) ||
                             json_object_is_type (b, json_type_int))
                         ? json_object_get_double (b) : INFINITY;
    if (isnan (s.best_eval_loss))
      s.best_eval_loss = INFINITY;
    *out = s;
  }
  json_object_put (o);
  return st;
}

SutraStatus
sutra_checkpoint_parse_opt_steps (const char *text, const char *name, int64_t *out, SutraError *err)
{
  char *e;
  errno = 0;
  long long v = text && *text >= '0' && *text <= '9' ? strtoll (text, &e, 10) : -1;
  if (v < 0 || errno || *e || v > STATE_MAX_COUNT)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: metadata step: expected a step count", name);
  *out = v;
  return SUTRA_OK;
}

SutraStatus
sutra_trainer_load_checkpoint (SutraTrainer *t, SutraError *err)
{
  const char *dir = t->resume_from;
  if (!dir) {
    /* no checkpoint yet: start over with the run's settings, dropping the old metrics */
    sutra_trainer_log (t, "no checkpoint in %s yet: starting from step 0", t->run_dir);
    return truncate_metrics (t->run_dir, 0, err);
  }
  char *spath = sutra_path_join (dir, "trainer_state.json");
  char *text;
  size_t len;
  SutraTrainerState s;
  SutraStatus st = sutra_read_file (spath, 1 << 20, &text, &len, err);
  if (!st) {
    st = sutra_trainer_state_parse (text, len, spath, &s, err);
    free (text);
  }
  if (st)
    sutra_error_prefix (err, "checkpoint %s cannot be resumed (an earlier one can: sutra resume "
                        "--checkpoint DIR)", dir);
  if (!st && (s.micro_batches_done % t->cfg.grad_accum != 0 ||
              s.micro_batches_done / t->cfg.grad_accum != s.step))
    st = sutra_error_set (err, SUTRA_ERR_INVALID,
                          "%s: %lld micro-batches for %lld steps does not match this run's "
                          "grad_accum %d", spath, (long long) s.micro_batches_done,
                          (long long) s.step, t->cfg.grad_accum);
  free (spath);
  if (st)
    return st;
  t->step = s.step;
  t->saved_step = s.step;
  t->micro_done = s.micro_batches_done;
  t->model->dropout_rng = s.dropout_rng;
  t->elapsed_before = s.elapsed_s;
  t->evals_without_gain = (int) s.evals_without_improvement;
  t->best_eval = s.best_eval_loss;
  /* optimizer state */
  char *opath = sutra_path_join (dir, "optimizer.safetensors");
  SutraSafetensors *os;
  st = sutra_safetensors_open (opath, &os, err);
  if (!st) {
    const char *steps = sutra_safetensors_metadata (os, "step");
    int64_t done = t->step;
    if (steps)
      st = sutra_checkpoint_parse_opt_steps (steps, opath, &done, err);
    if (!st)
      sutra_optimizer_set_steps_done (t->opt, done);
    int slots = sutra_optimizer_slots (t->opt);
    for (size_t i = 0; i < t->n_opt && !st; i++)
      for (int k = 0; k < slots && !st; k++) {
        char *name = sutra_xasprintf ("%s.%s", t->opt_names[i], sutra_optimizer_slot_name (t->opt, k));
        int64_t shape[1] = { (int64_t) t->opt_t[i].n };
        st = sutra_safetensors_read_f32 (os, name, sutra_optimizer_state (t->opt, i, k), 1, shape, err);
        if (st)
          sutra_error_prefix (err, "checkpoint does not match this run's settings");
        free (name);
      }
    sutra_safetensors_free (os);
  }
  free (opath);
  if (st)
    return st;
  if (t->step > t->max_steps)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s is at step %lld, beyond max_steps %lld", dir,
                            (long long) t->step, (long long) t->max_steps);
  free (t->last_checkpoint);
  t->last_checkpoint = sutra_xstrdup (dir);
  sutra_trainer_log (t, "resuming from %s (step %lld)", dir, (long long) t->step);
  return truncate_metrics (t->run_dir, t->step, err);
}

SutraStatus
sutra_trainer_new_resume (const char *run_dir, const char *checkpoint, SutraTrainCallback cb,
                          void *user_data, SutraTrainer **out, SutraError *err)
{
  char *cpath = sutra_path_join (run_dir, "config.json");
  SutraTrainConfig c;
  sutra_train_config_init (&c);
  /* a run folder's config.json holds training settings (output_dir among them), not a model's */
  json_object *probe;
  SutraStatus st = sutra_json_load (cpath, SUTRA_JSON_OBJECT, &probe, err);
  if (!st) {
    if (!json_object_object_get_ex (probe, "output_dir", NULL))
      st = sutra_error_set (err, SUTRA_ERR_INVALID, "%s is not a training run folder: its config.json "
                            "holds no training settings (a model folder?)", run_dir);
    json_object_put (probe);
  }
  if (!st)
    st = sutra_train_config_load (&c, cpath, err);
  free (cpath);
  if (st) {
    sutra_train_config_clear (&c);
    return st;
  }
  free (c.output_dir);
  c.output_dir = sutra_xstrdup (run_dir);   /* the folder may have moved */
  char *ckpt = NULL;
  if (checkpoint) {
    char *state = sutra_path_join (checkpoint, "trainer_state.json");
    if (!sutra_is_file (state))
      st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s is not a complete checkpoint (no "
                            "trainer_state.json)", checkpoint);
    free (state);
    ckpt = sutra_xstrdup (checkpoint);
  } else {
    char **list;
    size_t n;
    st = sutra_run_list_checkpoints (run_dir, &list, &n, err);
    if (!st && n > 0) {
      ckpt = sutra_xstrdup (list[n - 1]);
      free_list (list, n);
    }
  }
  SutraTrainer *t = NULL;
  if (!st)
    st = sutra_trainer_new (&c, cb, user_data, &t, err);
  sutra_train_config_clear (&c);
  if (st) {
    free (ckpt);
    return st;
  }
  t->resume_from = ckpt;
  t->restart = ckpt == NULL;      /* stopped (or killed) before the first checkpoint */
  *out = t;
  return SUTRA_OK;
}

SutraStatus
sutra_run_read_metrics (const char *run_dir, SutraMetricRow **rows, size_t *n, SutraError *err)
{
  char *path = sutra_path_join (run_dir, "metrics.jsonl");
  char *text;
  size_t len;
  SutraStatus st = sutra_read_file (path, 0, &text, &len, err);
  free (path);
  if (st)
    return st;
  SutraMetricRow *out = NULL;
  size_t cnt = 0, cap = 0;
  char *line = text;
  while (line < text + len) {
    char *nl = memchr (line, '\n', (size_t) (text + len - line));
    if (!nl)
      break;
    char *one = sutra_xstrndup (line, (size_t) (nl - line));
    json_object *j = json_tokener_parse (one);
    free (one);
    if (j && json_object_is_type (j, json_type_object)) {
      if (cnt == cap)
        out = sutra_xrealloc (out, sizeof *out * (cap = cap ? cap * 2 : 64));
      SutraMetricRow *r = &out[cnt++];
      memset (r, 0, sizeof *r);
      json_object *v;
#define GETD(k, f) r->f = json_object_object_get_ex (j, k, &v) ? json_object_get_double (v) : NAN
      r->step = json_object_object_get_ex (j, "step", &v) ? json_object_get_int64 (v) : 0;
      r->tokens = json_object_object_get_ex (j, "tokens", &v) ? json_object_get_int64 (v) : 0;
      GETD ("epoch", epoch);
      GETD ("loss", loss);
      GETD ("lr", lr);
      GETD ("grad_norm", grad_norm);
      GETD ("tokens_per_s", tokens_per_s);
      GETD ("elapsed_s", elapsed_s);
      GETD ("eval_loss", eval_loss);
#undef GETD
    }
    if (j)
      json_object_put (j);
    line = nl + 1;
  }
  free (text);
  *rows = out;
  *n = cnt;
  return SUTRA_OK;
}
