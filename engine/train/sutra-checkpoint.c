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

/* Removes leftovers of interrupted writes (*.tmp-*, *.old-*) from checkpoints/. */
static void
clean_leftovers (const char *run_dir)
{
  char *dir = sutra_path_join (run_dir, "checkpoints");
  DIR *d = opendir (dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir (d)))
      if (strstr (e->d_name, ".tmp-") || strstr (e->d_name, ".old-")) {
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
      sutra_rm_rf (list[i], NULL);
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
  /* keep complete lines whose step is <= the checkpoint's */
  char *out = sutra_xmalloc (len + 1);
  size_t olen = 0;
  char *line = text;
  while (line < text + len) {
    char *nl = memchr (line, '\n', (size_t) (text + len - line));
    if (!nl)
      break;                                    /* a torn last line */
    long long s = -1;
    const char *k = strstr (line, "\"step\":");
    if (k && k < nl)
      s = strtoll (k + 7, NULL, 10);
    if (s >= 0 && s <= step) {
      memcpy (out + olen, line, (size_t) (nl - line + 1));
      olen += (size_t) (nl - line + 1);
    }
    line = nl + 1;
  }
  st = sutra_write_file_atomic (path, out, olen, err);
  free (out);
  free (text);
  free (path);
  return st;
}

SutraStatus
sutra_trainer_load_checkpoint (SutraTrainer *t, SutraError *err)
{
  const char *dir = t->resume_from;
  char *spath = sutra_path_join (dir, "trainer_state.json");
  json_object *o;
  SutraStatus st = sutra_json_load (spath, SUTRA_JSON_OBJECT, &o, err);
  if (st) {
    free (spath);
    return st;
  }
  int64_t step = 0, micro = 0, format = 0, patience = 0;
  const char *rng = NULL;
  double elapsed = 0;
  st = sutra_json_get_int (o, spath, "format", 0, &format, err);
  if (!st && format != STATE_FORMAT)
    st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: state format %lld (expected %d)", spath,
                          (long long) format, STATE_FORMAT);
  if (!st)
    st = sutra_json_get_int (o, spath, "step", 0, &step, err);
  if (!st)
    st = sutra_json_get_int (o, spath, "micro_batches_done", 0, &micro, err);
  if (!st)
    st = sutra_json_get_string (o, spath, "dropout_rng", "0", &rng, err);
  if (!st)
    st = sutra_json_get_double (o, spath, "elapsed_s", 0, &elapsed, err);
  if (!st)
    st = sutra_json_get_int (o, spath, "evals_without_improvement", 0, &patience, err);
  if (!st) {
    json_object *b = json_object_object_get (o, "best_eval_loss");
    t->best_eval = b && (json_object_is_type (b, json_type_double) || json_object_is_type (b, json_type_int))
                     ? json_object_get_double (b) : INFINITY;
    t->step = step;
    t->saved_step = step;
    t->micro_done = micro;
    t->model->dropout_rng = strtoull (rng, NULL, 16);
    t->elapsed_before = elapsed;
    t->evals_without_gain = (int) patience;
  }
  json_object_put (o);
  free (spath);
  if (st)
    return st;
  /* optimizer state */
  char *opath = sutra_path_join (dir, "optimizer.safetensors");
  SutraSafetensors *os;
  st = sutra_safetensors_open (opath, &os, err);
  if (!st) {
    const char *steps = sutra_safetensors_metadata (os, "step");
    sutra_optimizer_set_steps_done (t->opt, steps ? strtoll (steps, NULL, 10) : step);
    int slots = sutra_optimizer_slots (t->opt);
    for (size_t i = 0; i < t->n_opt && !st; i++)
      for (int s = 0; s < slots && !st; s++) {
        char *name = sutra_xasprintf ("%s.%s", t->opt_names[i], sutra_optimizer_slot_name (t->opt, s));
        int64_t shape[1] = { (int64_t) t->opt_t[i].n };
        st = sutra_safetensors_read_f32 (os, name, sutra_optimizer_state (t->opt, i, s), 1, shape, err);
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
  SutraStatus st = sutra_train_config_load (&c, cpath, err);
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
    if (!st && n == 0)
      st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND,
                            "%s/checkpoints holds no complete checkpoint to resume from", run_dir);
    if (!st) {
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
