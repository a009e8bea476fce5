/* sutra-cli-model.c: `sutra info MODEL` and `sutra logits MODEL --ids ... --out FILE`. */
#include "sutra-cli.h"
#include "sutra-model.h"
#include "sutra-pool.h"
#include "sutra-qfile.h"
#include "sutra-safetensors.h"
#include "sutra-trainer.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
arch_family (const SutraModelConfig *c)
{
  return c->arch == SUTRA_ARCH_LLAMA ? "llama-family" : c->arch == SUTRA_ARCH_RWKV4 ? "rwkv-4" : "mamba";
}

static const SutraCliOptSpec info_opts[] = { { "json", false }, { NULL, false } };

static int
cmd_info (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, info_opts))
    return 2;
  if (a.npos != 1)
    return sutra_cli_usage_error ("info", "expected one MODEL");
  SutraModel *m;
  int rc = sutra_cli_open_model (a.pos[0], &m);
  if (rc)
    return rc;
  const SutraModelConfig *c = &m->cfg;
  /* tensor counts by stored dtype */
  size_t by_dtype[SUTRA_DTYPE_COUNT] = { 0 };
  size_t n = sutra_safetensors_count (m->weights);
  for (size_t i = 0; i < n; i++)
    by_dtype[sutra_safetensors_tensor (m->weights, i)->dtype]++;
  int64_t params = sutra_model_param_count (m);
  size_t wbytes = sutra_model_weight_bytes (m);
  json_object *o = json_object_new_object ();
  json_object_object_add (o, "model", json_object_new_string (m->dir));
  json_object_object_add (o, "architecture", json_object_new_string (c->architecture));
  json_object_object_add (o, "family", json_object_new_string (arch_family (c)));
  json_object_object_add (o, "parameters", json_object_new_int64 (params));
  json_object_object_add (o, "vocab_size", json_object_new_int (c->vocab_size));
  json_object_object_add (o, "hidden_size", json_object_new_int (c->hidden_size));
  json_object_object_add (o, "layers", json_object_new_int (c->n_layers));
  if (c->arch == SUTRA_ARCH_LLAMA) {
    json_object_object_add (o, "heads", json_object_new_int (c->n_heads));
    json_object_object_add (o, "kv_heads", json_object_new_int (c->n_kv_heads));
    json_object_object_add (o, "head_dim", json_object_new_int (c->head_dim));
    json_object_object_add (o, "intermediate_size", json_object_new_int (c->intermediate_size));
  }
  json_object_object_add (o, "context_length", json_object_new_int (c->max_position_embeddings));
  json_object_object_add (o, "tied_embeddings", json_object_new_boolean (c->tie_word_embeddings));
  json_object *dt = json_object_new_object ();
  for (int t = 0; t < SUTRA_DTYPE_COUNT; t++)
    if (by_dtype[t])
      json_object_object_add (dt, sutra_dtype_name ((SutraDType) t), json_object_new_int64 ((int64_t) by_dtype[t]));
  json_object_object_add (o, "tensor_dtypes", dt);
  json_object_object_add (o, "weights_mb_f32", json_object_new_double ((double) wbytes / 1048576.0));
  bool packed = false;
  SutraQuantParams qp;
  if (sutra_qfile_params (m->weights, &packed, &qp, NULL) == SUTRA_OK && packed) {
    json_object *q = json_object_new_object ();
    json_object_object_add (q, "type", json_object_new_string (sutra_quant_type_name (qp.type)));
    json_object_object_add (q, "method", json_object_new_string (sutra_quant_method_name (qp.method)));
    json_object_object_add (q, "group_size", json_object_new_int (qp.group_size));
    json_object_object_add (q, "double_quant", json_object_new_boolean (qp.double_quant));
    json_object_object_add (o, "quantization", q);
  }
  /* generation state at a 1k-token context (constant for RWKV/Mamba) */
  int ctx = 1024;
  if (c->max_position_embeddings > 0 && c->max_position_embeddings < ctx)
    ctx = c->max_position_embeddings;
  SutraGenState *st = NULL;
  SutraError err;
  if (m->vt->state_new (m, ctx, &st, &err) == SUTRA_OK) {
    json_object_object_add (o, "generation_state_mb", json_object_new_double ((double) m->vt->state_bytes (st) / 1048576.0));
    json_object_object_add (o, "generation_state_ctx", json_object_new_int (ctx));
    m->vt->state_free (st);
  }
  /* training memory at the default settings (LoRA r=8 on all linears, batch 4 x 256) */
  json_object *tm = json_object_new_object ();
  const char *methods[] = { "lora", "qlora", "full" };
  for (int i = 0; i < 3; i++) {
    SutraTrainConfig tc;
    sutra_train_config_init (&tc);
    sutra_train_config_set (&tc, "method", methods[i], NULL);
    SutraTrainMemory mem;
    if (sutra_train_estimate_memory (c, &tc, &mem, NULL) == SUTRA_OK)
      json_object_object_add (tm, methods[i], json_object_new_double ((double) mem.total / 1048576.0));
    sutra_train_config_clear (&tc);
  }
  json_object_object_add (o, "training_mb_estimate", tm);
  if (sutra_cli_flag (&a, "json")) {
    printf ("%s\n", json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
  } else {
    printf ("model:         %s\n", m->dir);
    printf ("architecture:  %s (%s)\n", c->architecture, arch_family (c));
    printf ("parameters:    %lld (%.1f M)\n", (long long) params, (double) params / 1e6);
    printf ("layers:        %d, hidden %d", c->n_layers, c->hidden_size);
    if (c->arch == SUTRA_ARCH_LLAMA)
      printf (", heads %d (kv %d, dim %d), ffn %d", c->n_heads, c->n_kv_heads, c->head_dim,
              c->intermediate_size);
    printf ("\nvocabulary:    %d%s\n", c->vocab_size, c->tie_word_embeddings ? " (tied embeddings)" : "");
    if (c->max_position_embeddings)
      printf ("context:       %d tokens\n", c->max_position_embeddings);
    printf ("weights:       %zu tensors:", n);
    for (int t = 0; t < SUTRA_DTYPE_COUNT; t++)
      if (by_dtype[t])
        printf (" %zu %s", by_dtype[t], sutra_dtype_name ((SutraDType) t));
    if (packed)
      printf ("\nquantization:  %s (%s, group %d%s)", sutra_quant_type_name (qp.type),
              sutra_quant_method_name (qp.method), qp.group_size,
              qp.double_quant ? ", double-quantized scales" : "");
    printf ("\nmemory:        %.1f MiB of weights in use", (double) wbytes / 1048576.0);
    json_object *g = json_object_object_get (o, "generation_state_mb");
    if (g)
      printf (", %.1f MiB generation state at %d tokens", json_object_get_double (g), ctx);
    printf ("\ntraining:      about %.0f MiB for LoRA, %.0f MiB for QLoRA, %.0f MiB for full "
            "fine-tuning (batch 4 x 256)",
            json_object_get_double (json_object_object_get (tm, "lora")),
            json_object_get_double (json_object_object_get (tm, "qlora")),
            json_object_get_double (json_object_object_get (tm, "full")));
    printf ("\n");
  }
  json_object_put (o);
  sutra_model_free (m);
  return 0;
}

SUTRA_CLI_COMMAND (info, "info", "MODEL [--json]",
                   "architecture, parameter count, dtypes, memory estimate", cmd_info)

static const SutraCliOptSpec logits_opts[] = {
  { "ids", true }, { "adapter", true }, { "out", true }, { NULL, false },
};

static int
cmd_logits (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, logits_opts))
    return 2;
  const char *ids_s = sutra_cli_opt (&a, "ids"), *outp = sutra_cli_opt (&a, "out");
  if (a.npos != 1 || !ids_s || !outp)
    return sutra_cli_usage_error ("logits", "expected MODEL, --ids and --out");
  int *ids, n;
  if (!sutra_cli_parse_ids (ids_s, &ids, &n) || n == 0)
    return sutra_cli_usage_error ("logits", "--ids expects token ids like \"1 2 3\"");
  SutraModel *m;
  int rc = sutra_cli_open_model (a.pos[0], &m);
  if (rc) {
    free (ids);
    return rc;
  }
  SutraError err;
  const char *adapter = sutra_cli_opt (&a, "adapter");
  if (adapter && sutra_cli_attach_adapter (m, adapter, &err)) {
    rc = sutra_cli_fail (&err);
    goto out;
  }
  SutraBatch b = { 1, n, ids, NULL, NULL };
  float *logits;
  if (sutra_model_forward (m, &b, false, &logits, &err)) {
    rc = sutra_cli_fail (&err);
    goto out;
  }
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  int64_t shape[2] = { n, m->cfg.vocab_size };
  sutra_safetensors_writer_add (w, "logits", SUTRA_F32, 2, shape, logits);
  if (sutra_safetensors_writer_write (w, outp, &err))
    rc = sutra_cli_fail (&err);
  sutra_safetensors_writer_free (w);
out:
  free (ids);
  sutra_model_free (m);
  return rc;
}

SUTRA_CLI_COMMAND (logits, "logits", "MODEL --ids \"1 2 3\" [--adapter DIR] --out FILE.safetensors",
                   "writes the logits (tensor \"logits\", F32, [n_ids, vocab])", cmd_logits)
