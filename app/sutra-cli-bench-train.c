/* sutra-cli-bench-train.c: `sutra bench train`: optimizer steps of LoRA, QLoRA or full
 * fine-tuning on a SmolLM2-135M-shaped model with random weights (seq 256, batch 1, LoRA r=8 on
 * all seven projections), the same code path as the trainer (forward with saved activations,
 * fused loss gradient, backward, clipping, AdamW). Prints tokens/s, ms/step, achieved GFLOP/s,
 * the OpenBLAS sgemm GFLOP/s measured in the same run on the step's own matmul shapes, weight
 * memory, peak RSS, and the time per phase (forward, loss, backward, optimizer) and per kind of
 * work inside forward + backward (matmul, attention, norm, other). */
#include "sutra-cli-bench.h"
#include "sutra-loss.h"
#include "sutra-lora.h"
#include "sutra-model.h"
#include "sutra-optim.h"
#include "sutra-pool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Useful FLOPs of one step: forward 2*T*P over the linears, backward 2*T*P for the input
 * gradients (+ 2*T*P for weight gradients in full), attention (QK^T and PV) 3x forward, and the
 * LoRA products (forward A, B; backward dA, dB, dx). */
static double
step_flops (const SutraModelConfig *c, int T, bool full, int r)
{
  double C = c->hidden_size, H = (double) c->n_heads * c->head_dim;
  double KV = (double) c->n_kv_heads * c->head_dim, F = c->intermediate_size;
  double P = c->n_layers * (C * H + 2 * C * KV + H * C + 3 * C * F) + C * c->vocab_size;
  double attn = c->n_layers * 2.0 * 2.0 * T * T * H;
  double lora_io = c->n_layers * ((C + H) + 2 * (C + KV) + (H + C) + 2 * (C + F) + (F + C));
  double lora = full ? 0 : 2.0 * T * r * lora_io * 4.0;   /* fwd x2 + bwd x2 (A, B) */
  return (full ? 6.0 : 4.0) * T * P + 3.0 * attn + lora;
}

/* sgemm rate over the forward and backward matmul shapes of one step (time-weighted) */
static double
step_sgemm_rate (const SutraModelConfig *c, int T, bool full)
{
  int C = c->hidden_size, H = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
  int F = c->intermediate_size, V = c->vocab_size;
  /* forward [T, in] x [out, in]^T; backward dx [T, out] x [out, in]; full adds dW [out, T] x [T, in] */
  const int lin[][3] = { { H, C, 1 }, { KV, C, 2 }, { C, H, 1 }, { F, C, 2 }, { C, F, 1 } };
  double flops = 0, secs = 0;
  for (int i = 0; i < 5; i++) {
    int out = lin[i][0], in = lin[i][1];
    double mult = lin[i][2] * c->n_layers * 2.0;
    double f1 = 2.0 * T * out * in * mult;
    double g1 = sutra_bench_sgemm_gflops (T, out, in, 0.2);
    double g2 = sutra_bench_sgemm_gflops (T, in, out, 0.2);
    flops += 2 * f1 / 2;
    secs += f1 / 2 / (g1 * 1e9) + f1 / 2 / (g2 * 1e9);
    if (full) {
      double g3 = sutra_bench_sgemm_gflops (out, in, T, 0.2);
      flops += f1 / 2;
      secs += f1 / 2 / (g3 * 1e9);
    }
  }
  double fh = 2.0 * T * C * V;
  double gh = sutra_bench_sgemm_gflops (T, V, C, 0.2), gh2 = sutra_bench_sgemm_gflops (T, C, V, 0.2);
  flops += 2 * fh;
  secs += fh / (gh * 1e9) + fh / (gh2 * 1e9);
  return flops / secs / 1e9;
}

static int
bench_train (const SutraBenchOptions *o, json_object *out)
{
  const char *shape = o->shape ? o->shape : "smollm2-135m";
  const char *method = o->method ? o->method : "lora";
  SutraModelConfig cfg;
  if (!sutra_bench_llama_shape (shape, &cfg))
    return sutra_cli_usage_error ("bench", "train: unknown shape '%s' (smollm2-135m, tiny)", shape);
  bool full = !strcmp (method, "full"), qlora = !strcmp (method, "qlora");
  if (!full && !qlora && strcmp (method, "lora"))
    return sutra_cli_usage_error ("bench", "train: --method lora, qlora or full");
  int T = o->seq > 0 ? o->seq : 256, steps = o->steps > 0 ? o->steps : 5, r = 8;
  bool ckpt = o->args && sutra_cli_flag (o->args, "checkpointing");
  SutraModel *m;
  SutraError err;
  if (sutra_model_new_random (&cfg, 0.02f, 42, &m, &err))
    return sutra_cli_fail (&err);
  m->grad_checkpointing = ckpt;
  size_t w_f32 = sutra_model_weight_bytes (m);
  if (qlora) {
    SutraQuantType qt = SUTRA_QUANT_NF4;
    if (o->quant && strcmp (o->quant, "f32") && !sutra_quant_type_from_name (o->quant, &qt))
      return sutra_cli_usage_error ("bench", "train: --quant nf4, int4 or int8");
    SutraQuantParams qp = { qt, SUTRA_QMETHOD_RTN, 64, qt == SUTRA_QUANT_NF4 };
    for (size_t i = 0; i < m->n_linears; i++)
      if (m->linears[i] != m->tied_linear && sutra_linear_quantize (m->linears[i], &qp, &err))
        return sutra_cli_fail (&err);
  }
  /* trainable tensors and AdamW, as the trainer builds them */
  SutraOptTensor *ts = NULL;
  size_t nt = 0;
  if (full) {
    if (sutra_model_make_trainable (m, &err))
      return sutra_cli_fail (&err);
    ts = calloc (m->n_params + m->n_linears, sizeof *ts);
    for (size_t i = 0; i < m->n_params; i++) {
      SutraParam *p = m->params[i];
      ts[nt++] = (SutraOptTensor) { p->name, p->data, p->grad,
                                    (size_t) (p->shape[0] * (p->ndim > 1 ? p->shape[1] : 1)), true };
    }
    for (size_t i = 0; i < m->n_linears; i++)
      if (!m->linears[i]->dw_shared)
        ts[nt++] = (SutraOptTensor) { m->linears[i]->name, m->linears[i]->w, m->linears[i]->dw,
                                      (size_t) m->linears[i]->in * m->linears[i]->out, true };
  } else {
    const char *targets[] = { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" };
    SutraLoraConfig lc = { .r = r, .alpha = 16, .dropout = 0, .targets = (char **) targets, .n_targets = 7 };
    if (sutra_lora_attach (m, &lc, 1, NULL, &err))
      return sutra_cli_fail (&err);
    ts = calloc (2 * m->n_linears, sizeof *ts);
    for (size_t i = 0; i < m->n_linears; i++) {
      SutraLinear *l = m->linears[i];
      if (!l->lora)
        continue;
      ts[nt++] = (SutraOptTensor) { "A", l->lora->A, l->lora->dA, (size_t) r * l->in, true };
      ts[nt++] = (SutraOptTensor) { "B", l->lora->B, l->lora->dB, (size_t) l->out * r, true };
    }
  }
  SutraOptConfig oc = { SUTRA_OPT_ADAMW, 1e-4, 0.9, 0.999, 1e-8, 0.0, 0, false };
  SutraOptimizer *opt;
  if (sutra_optimizer_new (&oc, ts, nt, &opt, &err))
    return sutra_cli_fail (&err);
  int *ids = malloc (sizeof (int) * (size_t) (T + 1)), *targets = malloc (sizeof (int) * (size_t) T);
  for (int i = 0; i <= T; i++)
    ids[i] = (i * 7919 + 13) % cfg.vocab_size;
  memcpy (targets, ids + 1, sizeof (int) * (size_t) T);
  SutraBatch b = { 1, T, ids, NULL, NULL };
  double t_fwd = 0, t_loss = 0, t_bwd = 0, t_opt = 0, total = 0;
  SutraModelProfile pf = { { 0 } };              /* forward + backward by kind of work */
  for (int s = -1; s < steps; s++) {           /* step -1 warms up (reserves memory) */
    m->profile = s >= 0 ? &pf : NULL;
    double t0 = sutra_bench_now ();
    sutra_model_zero_grad (m);
    float *logits;
    if (sutra_model_forward (m, &b, true, &logits, &err))
      return sutra_cli_fail (&err);
    double t1 = sutra_bench_now ();
    SutraLossResult lr;
    if (sutra_lm_loss_backward (logits, targets, T, cfg.vocab_size, false, 1.f, &lr, &err))
      return sutra_cli_fail (&err);
    double t2 = sutra_bench_now ();
    if (sutra_model_backward (m, logits, &err))
      return sutra_cli_fail (&err);
    double t3 = sutra_bench_now ();
    sutra_clip_grad_norm (ts, nt, 1.0);
    sutra_optimizer_step (opt, 1e-4);
    double t4 = sutra_bench_now ();
    if (s >= 0) {
      t_fwd += t1 - t0;
      t_loss += t2 - t1;
      t_bwd += t3 - t2;
      t_opt += t4 - t3;
      total += t4 - t0;
    }
  }
  double step_s = total / steps;
  double flops = step_flops (&cfg, T, full, r);
  double sg = step_sgemm_rate (&cfg, T, full);
  json_object_object_add (out, "shape", json_object_new_string (shape));
  json_object_object_add (out, "method", json_object_new_string (method));
  if (qlora)
    json_object_object_add (out, "quant", json_object_new_string (o->quant ? o->quant : "nf4"));
  json_object_object_add (out, "seq", json_object_new_int (T));
  json_object_object_add (out, "steps", json_object_new_int (steps));
  json_object_object_add (out, "gradient_checkpointing", json_object_new_boolean (ckpt));
  json_object_object_add (out, "tokens_per_s", json_object_new_double (T / step_s));
  json_object_object_add (out, "ms_per_step", json_object_new_double (step_s * 1e3));
  json_object_object_add (out, "gflops", json_object_new_double (flops / step_s / 1e9));
  json_object_object_add (out, "sgemm_gflops", json_object_new_double (sg));
  json_object_object_add (out, "sgemm_fraction", json_object_new_double (flops / step_s / 1e9 / sg));
  json_object_object_add (out, "weight_mb", json_object_new_double ((double) sutra_model_weight_bytes (m) / 1048576.0));
  json_object_object_add (out, "weight_mb_f32", json_object_new_double ((double) w_f32 / 1048576.0));
  json_object_object_add (out, "activation_mb",
                          json_object_new_double ((double) m->vt->activation_bytes (m, 1, T, ckpt) / 1048576.0));
  json_object *prof = json_object_new_object ();
  json_object_object_add (prof, "forward_ms", json_object_new_double (t_fwd / steps * 1e3));
  json_object_object_add (prof, "loss_ms", json_object_new_double (t_loss / steps * 1e3));
  json_object_object_add (prof, "backward_ms", json_object_new_double (t_bwd / steps * 1e3));
  json_object_object_add (prof, "optimizer_ms", json_object_new_double (t_opt / steps * 1e3));
  /* forward + backward split by kind: projections incl. LoRA and lm_head (matmul),
   * attention with RoPE (attention), RMSNorm (norm), activations/residuals/embedding (other) */
  static const char *kinds[SUTRA_PROF_COUNT] = { "matmul_ms", "attention_ms", "norm_ms", "other_ms" };
  for (int k = 0; k < SUTRA_PROF_COUNT; k++)
    json_object_object_add (prof, kinds[k], json_object_new_double (pf.seconds[k] / steps * 1e3));
  json_object_object_add (out, "profile", prof);
  m->profile = NULL;
  sutra_optimizer_free (opt);
  free (ts);
  free (ids);
  free (targets);
  sutra_model_free (m);
  return 0;
}

SUTRA_BENCH_KIND (train, "train", "optimizer steps of lora/qlora/full fine-tuning (--checkpointing)",
                  bench_train)
