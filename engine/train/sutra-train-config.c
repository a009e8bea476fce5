/* sutra-train-config.c: the training settings: defaults, one-key setters shared by the CLI
 * (--KEY VALUE) and the studio's form, JSON files, validation, and the help table. */
#include "sutra-trainer.h"
#include "sutra-fsutil.h"
#include "sutra-json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const SutraTrainKeyInfo keys[] = {
  { "model", "path", "Model folder (Hugging Face layout) or a repo id in the Hugging Face cache" },
  { "data", "path", "Training data: JSONL, JSON, CSV or TXT (row shapes in docs/datasets.md)" },
  { "eval_data", "path", "Evaluation data file; when absent, val_split holds out part of data" },
  { "val_split", "number", "Fraction of the training rows held out for evaluation (0 = none)" },
  { "output_dir", "path", "Run folder: config, metrics.jsonl, checkpoints, final adapter" },
  { "method", "lora|qlora|full", "LoRA adapters, LoRA over a 4-bit base (QLoRA), or every weight" },
  { "lora_r", "integer", "LoRA rank r: adapter size; 8-16 is typical" },
  { "lora_alpha", "number", "LoRA alpha; updates are scaled by alpha / r" },
  { "lora_dropout", "number", "Dropout on the adapter input during training (0 = off)" },
  { "lora_targets", "list", "Modules that get adapters (q_proj,v_proj,... or all-linear)" },
  { "init_adapter", "path", "PEFT adapter folder to start from instead of a fresh adapter" },
  { "quant", "nf4|int4|int8", "Storage of the frozen base for qlora" },
  { "optimizer", "adamw|adam|sgd", "Optimizer (AdamW: decoupled weight decay)" },
  { "lr", "number", "Peak learning rate" },
  { "betas", "list", "Adam betas, e.g. 0.9,0.999" },
  { "eps", "number", "Adam epsilon" },
  { "weight_decay", "number", "Weight decay (not applied to norms and biases in full fine-tuning)" },
  { "momentum", "number", "SGD momentum" },
  { "nesterov", "boolean", "SGD with Nesterov momentum" },
  { "schedule", "cosine|linear|constant", "Learning-rate schedule after warm-up" },
  { "warmup_steps", "integer", "Steps of linear warm-up from 0 to lr" },
  { "max_steps", "integer", "Optimizer steps to run (0 = derive from epochs)" },
  { "epochs", "number", "Passes over the training data when max_steps is 0" },
  { "micro_batch_size", "integer", "Rows per forward/backward pass" },
  { "grad_accum", "integer", "Micro-batches per optimizer step (effective batch = product)" },
  { "max_grad_norm", "number", "Global gradient-norm clipping threshold (0 = off)" },
  { "seq_len", "integer", "Maximum tokens per row; longer examples are truncated" },
  { "packing", "boolean", "Pack several examples into each row (no attention across them)" },
  { "mask_prompt", "boolean", "No loss on prompts (prompt/completion, Alpaca); chat always masks" },
  { "template", "name", "Chat template family to use instead of the model's own" },
  { "shuffle", "boolean", "Shuffle the training rows every epoch (seeded)" },
  { "seed", "integer", "Seed for shuffling, adapter initialisation and dropout" },
  { "eval_every", "integer", "Evaluate every N steps (0 = only at the end)" },
  { "save_every", "integer", "Save a checkpoint every N steps (0 = only at the end)" },
  { "keep_checkpoints", "integer", "How many checkpoints to keep (oldest are removed; 0 = all)" },
  { "threads", "integer", "Worker threads (0 = all cores)" },
  { "loss", "ce|mse", "Cross-entropy, or mean squared error of the probabilities (Brier)" },
  { "gradient_checkpointing", "boolean", "Recompute activations in backward: less memory, ~30% slower" },
  { "early_stopping_patience", "integer", "Stop after N evaluations without improvement (0 = off)" },
  { "stop_on_bad_row", "boolean", "Stop loading at the first bad data row instead of skipping it" },
  { "init_std", "number", "Standard deviation of fresh weights (full training from a config only)" },
  { "log_every", "integer", "Write a train.log line every N steps" },
};

const SutraTrainKeyInfo *
sutra_train_config_keys (size_t *n)
{
  *n = sizeof keys / sizeof keys[0];
  return keys;
}

void
sutra_train_config_init (SutraTrainConfig *c)
{
  memset (c, 0, sizeof *c);
  c->method = SUTRA_METHOD_LORA;
  c->lora_r = 8;
  c->lora_alpha = 16;
  c->lora_dropout = 0.05;
  c->lora_targets = sutra_xcalloc (1, sizeof (char *));
  c->lora_targets[0] = sutra_xstrdup ("all-linear");
  c->n_lora_targets = 1;
  c->quant = SUTRA_QUANT_NF4;
  c->optimizer = SUTRA_OPT_ADAMW;
  c->lr = 2e-4;
  c->beta1 = 0.9;
  c->beta2 = 0.999;
  c->eps = 1e-8;
  c->weight_decay = 0.0;
  c->momentum = 0.9;
  c->schedule = SUTRA_SCHED_COSINE;
  c->warmup_steps = 5;
  c->epochs = 1;
  c->micro_batch_size = 4;
  c->grad_accum = 1;
  c->max_grad_norm = 1.0;
  c->seq_len = 256;
  c->mask_prompt = true;
  c->shuffle = true;
  c->seed = 42;
  c->save_every = 100;
  c->keep_checkpoints = 3;
  c->loss = SUTRA_LOSS_CE;
  c->init_std = 0.02;
  c->log_every = 1;
}

static void
free_targets (SutraTrainConfig *c)
{
  for (int i = 0; i < c->n_lora_targets; i++)
    free (c->lora_targets[i]);
  free (c->lora_targets);
  c->lora_targets = NULL;
  c->n_lora_targets = 0;
}

void
sutra_train_config_clear (SutraTrainConfig *c)
{
  free (c->model);
  free (c->data);
  free (c->eval_data);
  free (c->output_dir);
  free (c->init_adapter);
  free (c->template_name);
  free_targets (c);
  memset (c, 0, sizeof *c);
}

void
sutra_train_config_copy (SutraTrainConfig *d, const SutraTrainConfig *s)
{
  *d = *s;
  d->model = sutra_xstrdup (s->model);
  d->data = sutra_xstrdup (s->data);
  d->eval_data = sutra_xstrdup (s->eval_data);
  d->output_dir = sutra_xstrdup (s->output_dir);
  d->init_adapter = sutra_xstrdup (s->init_adapter);
  d->template_name = sutra_xstrdup (s->template_name);
  d->lora_targets = sutra_xcalloc ((size_t) (s->n_lora_targets ? s->n_lora_targets : 1), sizeof (char *));
  for (int i = 0; i < s->n_lora_targets; i++)
    d->lora_targets[i] = sutra_xstrdup (s->lora_targets[i]);
}

/* ---- value parsers ---- */

static SutraStatus
p_double (const char *key, const char *v, double lo, double hi, double *out, SutraError *err)
{
  char *end;
  errno = 0;
  double x = strtod (v, &end);
  while (*end == ' ')
    end++;
  if (errno || end == v || *end || !isfinite (x) || x < lo || x > hi)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: expected a number in [%g, %g], got '%s'",
                            key, lo, hi, v);
  *out = x;
  return SUTRA_OK;
}

static SutraStatus
p_int (const char *key, const char *v, long long lo, long long hi, long long *out, SutraError *err)
{
  char *end;
  errno = 0;
  long long x = strtoll (v, &end, 10);
  if (!errno && end != v && *end == '.') {   /* "10.0" from a JSON float */
    double d = strtod (v, &end);
    if (!*end && d == floor (d))
      x = (long long) d;
    else
      end = (char *) v;
  }
  if (errno || end == v || *end || x < lo || x > hi)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: expected an integer in [%lld, %lld], got '%s'",
                            key, lo, hi, v);
  *out = x;
  return SUTRA_OK;
}

static SutraStatus
p_bool (const char *key, const char *v, bool *out, SutraError *err)
{
  if (!strcmp (v, "true") || !strcmp (v, "1") || !strcmp (v, "yes") || !strcmp (v, "on"))
    *out = true;
  else if (!strcmp (v, "false") || !strcmp (v, "0") || !strcmp (v, "no") || !strcmp (v, "off"))
    *out = false;
  else
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: expected true or false, got '%s'", key, v);
  return SUTRA_OK;
}

static void
set_str (char **dst, const char *v)
{
  free (*dst);
  *dst = (v && *v) ? sutra_xstrdup (v) : NULL;
}

/* Splits "a, b,c" or "[\"a\",\"b\"]" into trimmed items. */
static char **
split_list (const char *v, int *n)
{
  char **items = NULL;
  int cnt = 0;
  const char *p = v;
  while (*p) {
    while (*p == ' ' || *p == ',' || *p == '[' || *p == ']' || *p == '"' || *p == '\'')
      p++;
    const char *s = p;
    while (*p && *p != ',' && *p != ']' && *p != '"' && *p != '\'')
      p++;
    const char *e = p;
    while (e > s && e[-1] == ' ')
      e--;
    if (e > s) {
      items = sutra_xrealloc (items, sizeof (char *) * (size_t) (cnt + 1));
      items[cnt++] = sutra_xstrndup (s, (size_t) (e - s));
    }
  }
  *n = cnt;
  return items;
}

SutraStatus
sutra_train_config_set (SutraTrainConfig *c, const char *key, const char *v, SutraError *err)
{
  long long i = 0;
  double d = 0;
  SutraStatus st = SUTRA_OK;
#define INT(k, lo, hi, field) \
  if (!strcmp (key, k)) { if (!(st = p_int (key, v, lo, hi, &i, err))) c->field = (int) i; return st; }
#define DBL(k, lo, hi, field) \
  if (!strcmp (key, k)) { if (!(st = p_double (key, v, lo, hi, &d, err))) c->field = d; return st; }
#define BOOL(k, field) \
  if (!strcmp (key, k)) return p_bool (key, v, &c->field, err);
#define STR(k, field) \
  if (!strcmp (key, k)) { set_str (&c->field, v); return SUTRA_OK; }
  STR ("model", model)
  STR ("data", data)
  STR ("eval_data", eval_data)
  STR ("output_dir", output_dir)
  STR ("init_adapter", init_adapter)
  STR ("template", template_name)
  DBL ("val_split", 0, 0.9, val_split)
  INT ("lora_r", 1, 4096, lora_r)
  DBL ("lora_alpha", 1e-6, 1e6, lora_alpha)
  DBL ("lora_dropout", 0, 0.95, lora_dropout)
  DBL ("lr", 0, 1e6, lr)
  DBL ("eps", 0, 1, eps)
  DBL ("weight_decay", 0, 10, weight_decay)
  DBL ("momentum", 0, 0.9999, momentum)
  BOOL ("nesterov", nesterov)
  INT ("warmup_steps", 0, 100000000, warmup_steps)
  INT ("max_steps", 0, 100000000, max_steps)
  DBL ("epochs", 0, 100000, epochs)
  INT ("micro_batch_size", 1, 4096, micro_batch_size)
  INT ("grad_accum", 1, 65536, grad_accum)
  DBL ("max_grad_norm", 0, 1e9, max_grad_norm)
  INT ("seq_len", 2, 1 << 20, seq_len)
  BOOL ("packing", packing)
  BOOL ("mask_prompt", mask_prompt)
  BOOL ("shuffle", shuffle)
  INT ("eval_every", 0, 100000000, eval_every)
  INT ("save_every", 0, 100000000, save_every)
  INT ("keep_checkpoints", 0, 1000000, keep_checkpoints)
  INT ("threads", 0, 64, threads)
  BOOL ("gradient_checkpointing", gradient_checkpointing)
  INT ("early_stopping_patience", 0, 1000000, early_stopping_patience)
  BOOL ("stop_on_bad_row", stop_on_bad_row)
  DBL ("init_std", 1e-6, 10, init_std)
  INT ("log_every", 1, 100000000, log_every)
#undef INT
#undef DBL
#undef BOOL
#undef STR
  if (!strcmp (key, "seed")) {
    if (!(st = p_int (key, v, 0, (long long) 0x7fffffffffffffffLL, &i, err)))
      c->seed = (uint64_t) i;
    return st;
  }
  if (!strcmp (key, "method")) {
    if (!strcmp (v, "lora")) c->method = SUTRA_METHOD_LORA;
    else if (!strcmp (v, "qlora")) c->method = SUTRA_METHOD_QLORA;
    else if (!strcmp (v, "full")) c->method = SUTRA_METHOD_FULL;
    else return sutra_error_set (err, SUTRA_ERR_INVALID, "method: expected lora, qlora or full, got '%s'", v);
    return SUTRA_OK;
  }
  if (!strcmp (key, "quant")) {
    if (!sutra_quant_type_from_name (v, &c->quant))
      return sutra_error_set (err, SUTRA_ERR_INVALID, "quant: expected nf4, int4 or int8, got '%s'", v);
    return SUTRA_OK;
  }
  if (!strcmp (key, "optimizer")) {
    if (!sutra_opt_kind_from_name (v, &c->optimizer))
      return sutra_error_set (err, SUTRA_ERR_INVALID, "optimizer: expected adamw, adam or sgd, got '%s'", v);
    return SUTRA_OK;
  }
  if (!strcmp (key, "schedule")) {
    if (!sutra_sched_kind_from_name (v, &c->schedule))
      return sutra_error_set (err, SUTRA_ERR_INVALID,
                              "schedule: expected cosine, linear or constant, got '%s'", v);
    return SUTRA_OK;
  }
  if (!strcmp (key, "loss")) {
    if (!strcmp (v, "ce")) c->loss = SUTRA_LOSS_CE;
    else if (!strcmp (v, "mse")) c->loss = SUTRA_LOSS_MSE;
    else return sutra_error_set (err, SUTRA_ERR_INVALID, "loss: expected ce or mse, got '%s'", v);
    return SUTRA_OK;
  }
  if (!strcmp (key, "betas")) {
    int n;
    char **it = split_list (v, &n);
    double b[2];
    if (n != 2)
      st = sutra_error_set (err, SUTRA_ERR_INVALID, "betas: expected two numbers like 0.9,0.999, got '%s'", v);
    for (int k = 0; k < n && !st; k++)
      st = p_double ("betas", it[k], 0, 0.999999, &b[k], err);
    for (int k = 0; k < n; k++)
      free (it[k]);
    free (it);
    if (!st) {
      c->beta1 = b[0];
      c->beta2 = b[1];
    }
    return st;
  }
  if (!strcmp (key, "lora_targets")) {
    int n;
    char **it = split_list (v, &n);
    if (n == 0) {
      free (it);
      return sutra_error_set (err, SUTRA_ERR_INVALID, "lora_targets: expected module names or all-linear");
    }
    free_targets (c);
    c->lora_targets = it;
    c->n_lora_targets = n;
    return SUTRA_OK;
  }
  return sutra_error_set (err, SUTRA_ERR_INVALID, "unknown setting '%s' (sutra train --help lists them)",
                          key);
}

SutraStatus
sutra_train_config_load (SutraTrainConfig *c, const char *path, SutraError *err)
{
  json_object *o;
  SutraStatus st = sutra_json_load (path, SUTRA_JSON_OBJECT | SUTRA_JSON_UNIQUE_KEYS, &o, err);
  if (st)
    return st;
  char *dir = sutra_path_dirname (path);
  json_object_object_foreach (o, key, val) {
    if (json_object_is_type (val, json_type_null))
      continue;
    const char *s;
    char *owned = NULL;
    if (json_object_is_type (val, json_type_string))
      s = json_object_get_string (val);
    else if (json_object_is_type (val, json_type_array)) {
      size_t n = json_object_array_length (val), len = 1;
      for (size_t k = 0; k < n; k++)
        len += strlen (json_object_get_string (json_object_array_get_idx (val, k))) + 1;
      owned = sutra_xcalloc (1, len);
      for (size_t k = 0; k < n; k++) {
        if (k)
          strcat (owned, ",");
        strcat (owned, json_object_get_string (json_object_array_get_idx (val, k)));
      }
      s = owned;
    } else if (json_object_is_type (val, json_type_double)) {
      owned = sutra_xasprintf ("%.17g", json_object_get_double (val));
      s = owned;
    } else {
      s = json_object_get_string (val);
    }
    /* a relative path in a settings file is taken relative to the file when it exists
     * there; otherwise it stays as given (relative to the working folder, or a repo id) */
    bool is_path = !strcmp (key, "data") || !strcmp (key, "eval_data") ||
                   !strcmp (key, "init_adapter") || !strcmp (key, "model");
    char *joined = NULL;
    if (is_path && s[0] != '/' && s[0] != '\0') {
      joined = sutra_path_join (dir, s);
      if (!sutra_path_exists (joined)) {
        free (joined);
        joined = NULL;
      }
    }
    st = sutra_train_config_set (c, key, joined ? joined : s, err);
    free (joined);
    free (owned);
    if (st) {
      sutra_error_prefix (err, "%s", path);
      break;
    }
  }
  free (dir);
  json_object_put (o);
  return st;
}

char *
sutra_train_config_to_json (const SutraTrainConfig *c)
{
  json_object *o = json_object_new_object ();
#define S(k, v) json_object_object_add (o, k, (v) ? json_object_new_string (v) : NULL)
#define I(k, v) json_object_object_add (o, k, json_object_new_int64 (v))
#define D(k, v) json_object_object_add (o, k, json_object_new_double (v))
#define B(k, v) json_object_object_add (o, k, json_object_new_boolean (v))
  S ("model", c->model);
  S ("data", c->data);
  S ("eval_data", c->eval_data);
  D ("val_split", c->val_split);
  S ("output_dir", c->output_dir);
  S ("method", c->method == SUTRA_METHOD_LORA ? "lora" : c->method == SUTRA_METHOD_QLORA ? "qlora" : "full");
  I ("lora_r", c->lora_r);
  D ("lora_alpha", c->lora_alpha);
  D ("lora_dropout", c->lora_dropout);
  json_object *t = json_object_new_array ();
  for (int i = 0; i < c->n_lora_targets; i++)
    json_object_array_add (t, json_object_new_string (c->lora_targets[i]));
  json_object_object_add (o, "lora_targets", t);
  S ("init_adapter", c->init_adapter);
  S ("quant", sutra_quant_type_name (c->quant));
  S ("optimizer", sutra_opt_kind_name (c->optimizer));
  D ("lr", c->lr);
  json_object *b = json_object_new_array ();
  json_object_array_add (b, json_object_new_double (c->beta1));
  json_object_array_add (b, json_object_new_double (c->beta2));
  json_object_object_add (o, "betas", b);
  D ("eps", c->eps);
  D ("weight_decay", c->weight_decay);
  D ("momentum", c->momentum);
  B ("nesterov", c->nesterov);
  S ("schedule", sutra_sched_kind_name (c->schedule));
  I ("warmup_steps", c->warmup_steps);
  I ("max_steps", c->max_steps);
  D ("epochs", c->epochs);
  I ("micro_batch_size", c->micro_batch_size);
  I ("grad_accum", c->grad_accum);
  D ("max_grad_norm", c->max_grad_norm);
  I ("seq_len", c->seq_len);
  B ("packing", c->packing);
  B ("mask_prompt", c->mask_prompt);
  S ("template", c->template_name);
  B ("shuffle", c->shuffle);
  I ("seed", (int64_t) c->seed);
  I ("eval_every", c->eval_every);
  I ("save_every", c->save_every);
  I ("keep_checkpoints", c->keep_checkpoints);
  I ("threads", c->threads);
  S ("loss", c->loss == SUTRA_LOSS_CE ? "ce" : "mse");
  B ("gradient_checkpointing", c->gradient_checkpointing);
  I ("early_stopping_patience", c->early_stopping_patience);
  B ("stop_on_bad_row", c->stop_on_bad_row);
  D ("init_std", c->init_std);
  I ("log_every", c->log_every);
#undef S
#undef I
#undef D
#undef B
  char *s = sutra_xstrdup (json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (o);
  return s;
}

SutraStatus
sutra_train_config_validate (const SutraTrainConfig *c, SutraError *err)
{
  if (!c->model)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "no model given (setting \"model\")");
  if (!c->data)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "no training data given (setting \"data\")");
  if (!c->output_dir)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "no run folder given (setting \"output_dir\")");
  if (c->max_steps == 0 && c->epochs <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "set max_steps or a positive epochs");
  if (c->method != SUTRA_METHOD_FULL && c->n_lora_targets == 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "lora_targets is empty");
  if (c->method == SUTRA_METHOD_FULL && c->init_adapter)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "init_adapter needs method lora or qlora");
  if (c->loss == SUTRA_LOSS_MSE && c->method == SUTRA_METHOD_QLORA && c->quant == SUTRA_QUANT_NONE)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "qlora needs a quant type");
  return SUTRA_OK;
}
