/* sutra-cli-bench-recurrent.c: `sutra bench forward --shape rwkv4-169m|mamba-130m`: the
 * training forward + backward of a random model of that shape at batch 1 x seq (default 256),
 * with the achieved matmul GFLOP/s against the sgemm rate measured on the same shapes in the
 * same run, and where the time goes (SutraModel.profile: matmuls, recurrence, norms, other). */
#include "sutra-cli-bench.h"
#include "sutra-lora.h"
#include "sutra-model.h"
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* multiply-adds of every projection for one token (each linear runs once per token) */
static double
linear_macs (const SutraModel *m)
{
  double n = 0;
  for (size_t i = 0; i < m->n_linears; i++)
    n += (double) m->linears[i]->in * m->linears[i]->out;
  return n;
}

/* Time-weighted sgemm rate over the model's distinct projection shapes at T rows. */
static double
sgemm_rate (const SutraModel *m, int T)
{
  double flops = 0, secs = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    const SutraLinear *l = m->linears[i];
    bool seen = false;
    for (size_t j = 0; j < i && !seen; j++)
      seen = m->linears[j]->in == l->in && m->linears[j]->out == l->out;
    if (seen)
      continue;
    int count = 0;
    for (size_t j = 0; j < m->n_linears; j++)
      count += m->linears[j]->in == l->in && m->linears[j]->out == l->out;
    double f = 2.0 * T * l->in * l->out * count;
    double g = sutra_bench_sgemm_gflops (T, l->out, l->in, 0.25);
    flops += f;
    secs += f / (g * 1e9);
  }
  return flops / secs / 1e9;
}

static json_object *
profile_json (const SutraModelProfile *p, int steps)
{
  static const char *names[SUTRA_PROF_COUNT] = { "matmul_ms", "recurrence_ms", "norm_ms", "other_ms" };
  json_object *o = json_object_new_object ();
  for (int k = 0; k < SUTRA_PROF_COUNT; k++)
    json_object_object_add (o, names[k], json_object_new_double (p->seconds[k] * 1e3 / steps));
  return o;
}

int
sutra_bench_forward_recurrent (const SutraBenchOptions *o, const void *cfgp, json_object *out)
{
  const SutraModelConfig *cfg = cfgp;
  const char *method = o->method ? o->method : "full";
  bool lora = !strcmp (method, "lora");
  if (!lora && strcmp (method, "full"))
    return sutra_cli_usage_error ("bench", "forward: --method must be full or lora for %s",
                                  cfg->architecture);
  int T = o->seq > 0 ? o->seq : 256;
  int steps = o->steps > 0 ? o->steps : 3;
  SutraModel *m;
  SutraError err;
  if (sutra_model_new_random (cfg, 0.02f, 42, &m, &err))
    return sutra_cli_fail (&err);
  SutraStatus st;
  if (lora) {
    static char *rwkv_t[] = { "key", "value", "receptance", "output" };
    static char *mamba_t[] = { "in_proj", "x_proj", "dt_proj", "out_proj" };
    SutraLoraConfig lc = { .r = 8, .alpha = 16, .n_targets = 4 };
    lc.targets = cfg->arch == SUTRA_ARCH_RWKV4 ? rwkv_t : mamba_t;
    st = sutra_lora_attach (m, &lc, 1, NULL, &err);
  } else {
    st = sutra_model_make_trainable (m, &err);
  }
  if (st) {
    sutra_model_free (m);
    return sutra_cli_fail (&err);
  }
  int V = cfg->vocab_size;
  int *ids = sutra_xmalloc (sizeof (int) * (size_t) T), *tg = sutra_xmalloc (sizeof (int) * (size_t) T);
  for (int i = 0; i < T; i++) {
    ids[i] = (i * 7919) % V;
    tg[i] = (i * 104729 + 13) % V;
  }
  float *dl = sutra_try_alloc (sizeof (float) * (size_t) T * V, "dlogits", &err);
  if (!dl) {
    free (ids);
    free (tg);
    sutra_model_free (m);
    return sutra_cli_fail (&err);
  }
  SutraBatch b = { 1, T, ids, NULL, NULL };
  float *logits, loss;
  int nv;
  SutraModelProfile pf = { { 0 } }, pb = { { 0 } };   /* accumulated over the timed steps */
  double t_fwd = 0, t_bwd = 0, t_loss = 0, t_inf = 0;
  st = SUTRA_OK;
  for (int s = -1; s < steps && !st; s++) {   /* s = -1: warm-up (reserves memory) */
    m->profile = s >= 0 ? &pf : NULL;
    double t0 = sutra_bench_now ();
    if ((st = sutra_model_forward (m, &b, true, &logits, &err)))
      break;
    double t1 = sutra_bench_now ();
    if ((st = sutra_cross_entropy_forward (&loss, &nv, logits, tg, T, V, &err)))
      break;
    sutra_cross_entropy_backward (dl, logits, tg, 1.f, nv, T, V);
    double t2 = sutra_bench_now ();
    m->profile = s >= 0 ? &pb : NULL;
    sutra_model_zero_grad (m);
    st = sutra_model_backward (m, dl, &err);
    double t3 = sutra_bench_now ();
    if (s >= 0) {
      t_fwd += t1 - t0;
      t_loss += t2 - t1;
      t_bwd += t3 - t2;
    }
  }
  m->profile = NULL;
  if (!st) {
    /* the inference forward (no activations kept, eval-mode semantics) */
    sutra_model_forward (m, &b, false, &logits, &err);
    double t0 = sutra_bench_now ();
    for (int s = 0; s < steps && !st; s++)
      st = sutra_model_forward (m, &b, false, &logits, &err);
    t_inf = sutra_bench_now () - t0;
  }
  if (st) {
    sutra_aligned_free (dl);
    free (ids);
    free (tg);
    sutra_model_free (m);
    return sutra_cli_fail (&err);
  }
  t_fwd /= steps;
  t_bwd /= steps;
  t_loss /= steps;
  t_inf /= steps;
  double fwd_flops = 2.0 * T * linear_macs (m);
  /* backward: d input for every projection, plus d weight in full fine-tuning (LoRA's small
   * products are not counted) */
  double bwd_flops = fwd_flops * (lora ? 1.0 : 2.0);
  double sg = sgemm_rate (m, T);
  double fwd_g = fwd_flops / t_fwd / 1e9, train_g = (fwd_flops + bwd_flops) / (t_fwd + t_bwd) / 1e9;
  json_object_object_add (out, "shape", json_object_new_string (o->shape));
  json_object_object_add (out, "arch", json_object_new_string (cfg->architecture));
  json_object_object_add (out, "method", json_object_new_string (method));
  json_object_object_add (out, "seq", json_object_new_int (T));
  json_object_object_add (out, "params_m", json_object_new_double (sutra_model_param_count (m) / 1e6));
  json_object_object_add (out, "tokens_per_s", json_object_new_double (T / (t_fwd + t_bwd)));
  json_object_object_add (out, "ms_forward", json_object_new_double (t_fwd * 1e3));
  json_object_object_add (out, "ms_backward", json_object_new_double (t_bwd * 1e3));
  json_object_object_add (out, "ms_loss", json_object_new_double (t_loss * 1e3));
  json_object_object_add (out, "gflops", json_object_new_double (train_g));
  json_object_object_add (out, "forward_gflops", json_object_new_double (fwd_g));
  json_object_object_add (out, "sgemm_gflops", json_object_new_double (sg));
  json_object_object_add (out, "sgemm_fraction", json_object_new_double (fwd_g / sg));
  json_object_object_add (out, "train_sgemm_fraction", json_object_new_double (train_g / sg));
  json_object_object_add (out, "inference_tokens_per_s", json_object_new_double (T / t_inf));
  json_object_object_add (out, "activation_mb",
                          json_object_new_double (m->vt->activation_bytes (m, 1, T, false) / 1048576.0));
  json_object *prof = json_object_new_object ();
  json_object_object_add (prof, "forward", profile_json (&pf, steps));
  json_object_object_add (prof, "backward", profile_json (&pb, steps));
  json_object_object_add (out, "profile", prof);
  sutra_aligned_free (dl);
  free (ids);
  free (tg);
  sutra_model_free (m);
  return 0;
}
