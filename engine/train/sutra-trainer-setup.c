/* sutra-trainer-setup.c: everything a run needs before its first step: the run folder, the
 * model (loaded, or fresh from a config for full training), the method (LoRA adapters, a packed
 * QLoRA base, or trainable weights), the data, the optimizer; and the memory estimate. */
#include "sutra-trainer-private.h"
#include "sutra-fsutil.h"
#include "sutra-hub.h"
#include "sutra-pool.h"
#include "sutra-tokenizer.h"
#include "sutra-chat.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool
folder_has_weights (const char *dir)
{
  DIR *d = opendir (dir);
  if (!d)
    return false;
  struct dirent *e;
  bool found = false;
  while (!found && (e = readdir (d))) {
    size_t n = strlen (e->d_name);
    found = n > 12 && strcmp (e->d_name + n - 12, ".safetensors") == 0;
  }
  closedir (d);
  return found;
}

static SutraStatus
open_run_folder (SutraTrainer *t, bool resuming, SutraError *err)
{
  SutraStatus st = sutra_mkdir_p (t->run_dir, err);
  if (st)
    return st;
  char *metrics = sutra_path_join (t->run_dir, "metrics.jsonl");
  char *ckpts = sutra_path_join (t->run_dir, "checkpoints");
  if (!resuming && (sutra_path_exists (metrics) || sutra_path_exists (ckpts))) {
    st = sutra_error_set (err, SUTRA_ERR_INVALID,
                          "%s already holds a training run: continue it with `sutra resume %s` or "
                          "choose another output_dir", t->run_dir, t->run_dir);
  }
  if (!st)
    st = sutra_mkdir_p (ckpts, err);
  if (!st && !resuming) {
    char *cfg = sutra_train_config_to_json (&t->cfg);
    char *path = sutra_path_join (t->run_dir, "config.json");
    st = sutra_write_file_atomic (path, cfg, strlen (cfg), err);
    free (path);
    free (cfg);
  }
  if (!st) {
    char *log = sutra_path_join (t->run_dir, "train.log");
    t->log_fp = fopen (log, "a");
    if (!t->log_fp)
      st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot open %s", log);
    free (log);
  }
  free (metrics);
  free (ckpts);
  return st;
}

static void
lora_config_from_settings (SutraTrainer *t)
{
  SutraLoraConfig *l = &t->lora;
  sutra_lora_config_clear (l);
  l->r = t->cfg.lora_r;
  l->alpha = (float) t->cfg.lora_alpha;
  l->dropout = (float) t->cfg.lora_dropout;
  if (t->cfg.n_lora_targets == 1 && !strcmp (t->cfg.lora_targets[0], "all-linear")) {
    l->all_linear = true;
    return;
  }
  l->targets = sutra_xcalloc ((size_t) t->cfg.n_lora_targets, sizeof (char *));
  for (int i = 0; i < t->cfg.n_lora_targets; i++)
    l->targets[i] = sutra_xstrdup (t->cfg.lora_targets[i]);
  l->n_targets = t->cfg.n_lora_targets;
}

static void
add_opt (SutraTrainer *t, const char *name, float *data, float *grad, size_t n, bool decay)
{
  t->opt_t = sutra_xrealloc (t->opt_t, sizeof (SutraOptTensor) * (t->n_opt + 1));
  t->opt_names = sutra_xrealloc (t->opt_names, sizeof (char *) * (t->n_opt + 1));
  t->opt_names[t->n_opt] = sutra_xstrdup (name);
  t->opt_t[t->n_opt] = (SutraOptTensor) { t->opt_names[t->n_opt], data, grad, n, decay };
  t->n_opt++;
}

static SutraStatus
setup_method (SutraTrainer *t, SutraError *err)
{
  SutraModel *m = t->model;
  SutraStatus st = SUTRA_OK;
  if (t->cfg.method == SUTRA_METHOD_FULL) {
    if ((st = sutra_model_make_trainable (m, err)))
      return st;
    /* HF Trainer convention: no weight decay on biases and norm weights */
    for (size_t i = 0; i < m->n_params; i++) {
      SutraParam *p = m->params[i];
      size_t n = 1;
      for (int d = 0; d < p->ndim; d++)
        n *= (size_t) p->shape[d];
      bool decay = p->ndim >= 2;
      add_opt (t, p->name, p->data, p->grad, n, decay);
    }
    for (size_t i = 0; i < m->n_linears; i++) {
      SutraLinear *l = m->linears[i];
      if (l->dw_shared)
        continue;                     /* tied to the embedding, already listed */
      char *wn = sutra_xasprintf ("%s.weight", l->name);
      add_opt (t, wn, l->w, l->dw, (size_t) l->in * l->out, true);
      free (wn);
      if (l->bias) {
        char *bn = sutra_xasprintf ("%s.bias", l->name);
        add_opt (t, bn, l->bias, l->dbias, (size_t) l->out, false);
        free (bn);
      }
    }
    return SUTRA_OK;
  }
  if (t->cfg.method == SUTRA_METHOD_QLORA) {
    SutraQuantParams qp = { t->cfg.quant, SUTRA_QMETHOD_RTN, 64, t->cfg.quant == SUTRA_QUANT_NF4 };
    size_t before = sutra_model_weight_bytes (m);
    int kept = 0;
    for (size_t i = 0; i < m->n_linears; i++) {
      SutraLinear *l = m->linears[i];
      if (l == m->tied_linear || !strcmp (l->name, "lm_head") || !strcmp (l->name, "head"))
        continue;                     /* the output head stays in full precision */
      st = sutra_linear_quantize (l, &qp, err);
      if (st == SUTRA_ERR_UNSUPPORTED) {
        /* a row the block layout cannot hold (Mamba's dt_proj: in = time_step_rank, e.g. 48):
         * that small layer keeps its f32 base */
        sutra_log (SUTRA_LOG_INFO, "%s", err ? err->message : l->name);
        kept++;
        st = SUTRA_OK;
        continue;
      }
      if (st)
        return st;
      if (atomic_load (&t->stop_req))
        return sutra_error_set (err, SUTRA_ERR_CANCELLED, "cancelled while quantizing");
    }
    sutra_trainer_log (t, "QLoRA base: %s, weights %.1f MiB -> %.1f MiB%s",
                       sutra_quant_type_name (t->cfg.quant), (double) before / 1048576.0,
                       (double) sutra_model_weight_bytes (m) / 1048576.0,
                       kept ? " (layers the block layout cannot hold stay f32)" : "");
  }
  lora_config_from_settings (t);
  const char *adapter = t->resume_from ? t->resume_from : t->cfg.init_adapter;
  if (adapter) {
    SutraLoraConfig loaded;
    if ((st = sutra_lora_load (m, adapter, &loaded, err)))
      return st;
    /* the adapter's own shape wins (r, alpha, targets); dropout stays the run's setting */
    float dropout = t->lora.dropout;
    sutra_lora_config_clear (&t->lora);
    t->lora = loaded;
    t->lora.dropout = dropout;
    for (size_t i = 0; i < m->n_linears; i++)
      if (m->linears[i]->lora)
        m->linears[i]->lora->dropout = dropout;
  } else {
    int n;
    if ((st = sutra_lora_attach (m, &t->lora, t->cfg.seed, &n, err)))
      return st;
  }
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (!l->lora)
      continue;
    char *ka = sutra_lora_key (l->name, true), *kb = sutra_lora_key (l->name, false);
    add_opt (t, ka, l->lora->A, l->lora->dA, (size_t) l->lora->r * l->in, true);
    add_opt (t, kb, l->lora->B, l->lora->dB, (size_t) l->out * l->lora->r, true);
    free (ka);
    free (kb);
  }
  m->train_mode = SUTRA_TRAIN_LORA;
  return SUTRA_OK;
}

static SutraStatus
load_model (SutraTrainer *t, SutraError *err)
{
  SutraStatus st = sutra_hub_resolve_model (t->cfg.model, &t->model_dir, err);
  if (st)
    return st;
  sutra_trainer_log (t, "loading model %s", t->model_dir);
  bool fresh = !folder_has_weights (t->model_dir);
  if (t->cfg.method == SUTRA_METHOD_FULL && t->resume_from)
    return sutra_model_load (t->resume_from, &t->model, err);   /* the checkpoint's weights */
  if (fresh) {
    if (t->cfg.method != SUTRA_METHOD_FULL)
      return sutra_error_set (err, SUTRA_ERR_INVALID,
                              "%s has a config but no weights: only method \"full\" can train a "
                              "model from a fresh initialisation", t->model_dir);
    SutraModelConfig mc;
    if ((st = sutra_model_config_load (t->model_dir, &mc, err)))
      return st;
    sutra_trainer_log (t, "fresh %s initialised with std %g (seed %llu)", mc.architecture,
                       t->cfg.init_std, (unsigned long long) t->cfg.seed);
    return sutra_model_new_random (&mc, (float) t->cfg.init_std, t->cfg.seed, &t->model, err);
  }
  return sutra_model_load (t->model_dir, &t->model, err);
}

static SutraStatus
load_data (SutraTrainer *t, SutraError *err)
{
  SutraDatasetOptions o;
  sutra_dataset_options_init (&o);
  o.seq_len = t->cfg.seq_len;
  o.mask_prompt = t->cfg.mask_prompt;
  o.stop_on_bad_row = t->cfg.stop_on_bad_row;
  o.vocab_size = t->model->cfg.vocab_size;
  o.tokenizer = t->tokenizer;
  o.chat = t->chat;
  o.cancel = (const volatile int *) &t->stop_req;
  SutraStatus st = sutra_dataset_load (t->cfg.data, &o, &t->all_ds, err);
  if (st)
    return st;
  const SutraBadRow *bad;
  sutra_dataset_bad_rows (t->all_ds, &bad);
  size_t nbad = sutra_dataset_bad_row_total (t->all_ds);
  for (size_t i = 0; i < nbad && i < 20; i++)
    sutra_trainer_log (t, "skipped %s", bad[i].message);
  if (nbad > 20)
    sutra_trainer_log (t, "... and %zu more bad rows", nbad - 20);
  if (t->cfg.eval_data) {
    if ((st = sutra_dataset_load (t->cfg.eval_data, &o, &t->eval_ds, err)))
      return st;
    t->train_ds = t->all_ds;
  } else if (t->cfg.val_split > 0) {
    if ((st = sutra_dataset_split (t->all_ds, t->cfg.val_split, t->cfg.seed, &t->train_ds,
                                   &t->eval_ds, err)))
      return st;
  } else {
    t->train_ds = t->all_ds;
  }
  if (sutra_dataset_count (t->train_ds) == 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: no usable training rows (%zu bad)",
                            t->cfg.data, nbad);
  int64_t tok, loss_tok;
  sutra_dataset_token_counts (t->train_ds, &tok, &loss_tok);
  sutra_trainer_log (t, "data: %zu %s rows, %lld tokens (%lld with loss), %zu bad, %zu truncated; "
                     "eval rows: %zu", sutra_dataset_count (t->train_ds),
                     sutra_row_shape_name (sutra_dataset_shape (t->all_ds)), (long long) tok,
                     (long long) loss_tok, nbad, sutra_dataset_truncated (t->all_ds),
                     t->eval_ds ? sutra_dataset_count (t->eval_ds) : 0);
  return SUTRA_OK;
}

SutraStatus
sutra_trainer_setup (SutraTrainer *t, SutraError *err)
{
  bool resuming = t->resume_from != NULL;
  SutraStatus st = open_run_folder (t, resuming, err);
  if (st)
    return st;
  sutra_set_threads (t->cfg.threads);
  t->best_eval = INFINITY;
  if ((st = load_model (t, err)))
    return st;
  t->model->grad_checkpointing = t->cfg.gradient_checkpointing;
  /* the tokenizer and chat template come from the base model's folder */
  if (sutra_is_file (t->model_dir) == false) {
    char *tj = sutra_path_join (t->model_dir, "tokenizer.json");
    if (sutra_path_exists (tj)) {
      SutraTokenizer *tok;
      if ((st = sutra_tokenizer_load (t->model_dir, &tok, err))) {
        free (tj);
        return st;
      }
      t->tokenizer = tok;
      SutraChatTemplate *chat = NULL;
      st = sutra_chat_template_load (t->model_dir, t->cfg.template_name, &chat, err);
      if (st) {
        /* a broken template only matters for chat data; the dataset reports that. A template
         * the user asked for by name must exist. */
        if (t->cfg.template_name) {
          free (tj);
          return st;
        }
        sutra_trainer_log (t, "chat template unusable: %s", err->message);
        chat = NULL;
        st = SUTRA_OK;
      }
      t->chat = chat;
    }
    free (tj);
  }
  if ((st = setup_method (t, err)))
    return st;
  if ((st = load_data (t, err)))
    return st;
  size_t nbuf = (size_t) t->cfg.micro_batch_size * (size_t) t->cfg.seq_len;
  t->ids = sutra_xmalloc (sizeof (int) * nbuf);
  t->labels = sutra_xmalloc (sizeof (int) * nbuf);
  t->targets = sutra_xmalloc (sizeof (int) * nbuf);
  t->pos = sutra_xmalloc (sizeof (int) * nbuf);
  t->doc = sutra_xmalloc (sizeof (int) * nbuf);
  sutra_trainer_build_rows (t);
  int64_t per = sutra_trainer_micro_per_epoch (t);
  t->max_steps = t->cfg.max_steps > 0
                   ? t->cfg.max_steps
                   : (int64_t) ceil (t->cfg.epochs * (double) per / (double) t->cfg.grad_accum);
  if (t->max_steps < 1)
    t->max_steps = 1;
  SutraOptConfig oc = { t->cfg.optimizer, t->cfg.lr, t->cfg.beta1, t->cfg.beta2, t->cfg.eps,
                        t->cfg.weight_decay, t->cfg.momentum, t->cfg.nesterov };
  if ((st = sutra_optimizer_new (&oc, t->opt_t, t->n_opt, &t->opt, err)))
    return st;
  if (resuming && (st = sutra_trainer_load_checkpoint (t, err)))
    return st;
  /* reserve activations once for the largest micro-batch */
  if ((st = t->model->vt->reserve (t->model, t->cfg.micro_batch_size, t->cfg.seq_len, true, err)))
    return st;
  char *metrics = sutra_path_join (t->run_dir, "metrics.jsonl");
  t->metrics_fp = fopen (metrics, "a");
  if (!t->metrics_fp)
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot open %s", metrics);
  free (metrics);
  if (st)
    return st;
  int64_t trainable = 0;
  for (size_t i = 0; i < t->n_opt; i++)
    trainable += (int64_t) t->opt_t[i].n;
  sutra_trainer_log (t, "%s %s: %lld trainable of %lld parameters (%.2f%%), %lld steps of %d x %d "
                     "rows (accumulation %d), %d threads",
                     resuming ? "resuming" : "training",
                     t->cfg.method == SUTRA_METHOD_FULL ? "full" : t->cfg.method == SUTRA_METHOD_LORA ? "lora" : "qlora",
                     (long long) trainable, (long long) sutra_model_param_count (t->model),
                     100.0 * (double) trainable / (double) sutra_model_param_count (t->model),
                     (long long) t->max_steps, t->cfg.micro_batch_size, t->cfg.seq_len,
                     t->cfg.grad_accum, sutra_get_threads ());
  return SUTRA_OK;
}

void
sutra_trainer_teardown (SutraTrainer *t)
{
  if (t->metrics_fp)
    fclose (t->metrics_fp);
  if (t->log_fp)
    fclose (t->log_fp);
  t->metrics_fp = t->log_fp = NULL;
  sutra_optimizer_free (t->opt);
  t->opt = NULL;
  for (size_t i = 0; i < t->n_opt; i++)
    free (t->opt_names[i]);
  free (t->opt_names);
  free (t->opt_t);
  t->opt_names = NULL;
  t->opt_t = NULL;
  t->n_opt = 0;
  if (t->train_ds != t->all_ds)
    sutra_dataset_free (t->train_ds);
  if (t->eval_ds)
    sutra_dataset_free (t->eval_ds);
  sutra_dataset_free (t->all_ds);
  t->train_ds = t->eval_ds = t->all_ds = NULL;
  sutra_chat_template_free (t->chat);
  sutra_tokenizer_free (t->tokenizer);
  t->chat = t->tokenizer = NULL;
  sutra_model_free (t->model);
  t->model = NULL;
  sutra_lora_config_clear (&t->lora);
  free (t->ids);
  free (t->labels);
  free (t->targets);
  free (t->pos);
  free (t->doc);
  free (t->order);
  free (t->row_start);
  free (t->model_dir);
  free (t->last_checkpoint);
  free (t->final_path);
  t->ids = t->labels = t->targets = t->pos = t->doc = NULL;
  t->order = t->row_start = NULL;
  t->model_dir = t->last_checkpoint = t->final_path = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* memory estimate                                                                            */
/* ------------------------------------------------------------------------------------------ */

SutraStatus
sutra_train_estimate_memory (const SutraModelConfig *mc, const SutraTrainConfig *tc,
                             SutraTrainMemory *out, SutraError *err)
{
  /* from the config alone: no weights are loaded for an estimate */
  memset (out, 0, sizeof *out);
  double C = mc->hidden_size, L = mc->n_layers, V = mc->vocab_size;
  double lin_params = 0, other = V * C * (mc->tie_word_embeddings ? 1 : 2) + C;
  double lora_params = 0, r = tc->lora_r;
  double act_per_token = 0;
  switch (mc->arch) {
  case SUTRA_ARCH_LLAMA: {
    double H = (double) mc->n_heads * mc->head_dim, KV = (double) mc->n_kv_heads * mc->head_dim;
    double F = mc->intermediate_size;
    lin_params = L * (C * H + 2 * C * KV + H * C + 3 * C * F);
    other += L * 2 * C;
    lora_params = L * r * ((C + H) + 2 * (C + KV) + (H + C) + 2 * (C + F) + (F + C));
    act_per_token = 5 * C + 2 * H + 2 * KV + 3 * F + mc->n_heads * (double) tc->seq_len;
    break;
  }
  case SUTRA_ARCH_RWKV4: {
    double F = mc->intermediate_size;
    lin_params = L * (4 * C * C + C * F + F * C + C * C);
    other += L * 12 * C;
    lora_params = L * r * 4 * (2 * C);
    act_per_token = 20 * C + 2 * F;
    break;
  }
  case SUTRA_ARCH_MAMBA: {
    double E = mc->intermediate_mamba, R = mc->time_step_rank, S = mc->state_size;
    lin_params = L * (C * 2 * E + E * (R + 2 * S) + R * E + E * C);
    other += L * (E * mc->conv_kernel + E * S + 3 * E + C);
    lora_params = L * r * ((C + 2 * E) + (E + R + 2 * S));
    act_per_token = 10 * E + 2 * E * S + 4 * C;
    break;
  }
  }
  double tokens = (double) tc->micro_batch_size * tc->seq_len;
  double total_params = lin_params + other;
  double trainable = tc->method == SUTRA_METHOD_FULL ? total_params : lora_params;
  double bytes_per_w = 4;
  if (tc->method == SUTRA_METHOD_QLORA)
    bytes_per_w = tc->quant == SUTRA_QUANT_INT8 ? 1.0 + 4.0 / C : 0.5 + 4.0 / 64 + (tc->quant == SUTRA_QUANT_INT4 ? 4.0 / 64 : 0);
  out->weights = (size_t) (lin_params * bytes_per_w + other * 4);
  out->trainable = tc->method == SUTRA_METHOD_FULL ? 0 : (size_t) (trainable * 4);
  out->gradients = (size_t) (trainable * 4);
  out->optimizer = (size_t) (trainable * 4 * (tc->optimizer == SUTRA_OPT_SGD ? (tc->momentum ? 1 : 0) : 2));
  double act = tokens * act_per_token * L * 4;
  if (tc->gradient_checkpointing)
    act = tokens * (C * L + act_per_token) * 4;
  act += tokens * V * 4 * 1.0;   /* logits */
  out->activations = (size_t) act;
  out->trainable_params = (int64_t) trainable;
  out->total = out->weights + out->trainable + out->gradients + out->optimizer + out->activations;
  (void) err;
  return SUTRA_OK;
}
