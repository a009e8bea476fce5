/* sutra-cli-bench-generate-llama.c: the Llama (KV cache) branch of `sutra bench generate`:
 * prefill and decode speed of the generation step on random weights of a model's shape, batch 1.
 *
 *   prefill: one step over a --seq token prompt (default 256), best of 3 after a warm-up
 *   decode:  --steps single-token steps (default 128) after that prompt; tokens_per_s is the
 *            decode rate (the number people quote for chat)
 * Decode reads every weight once per token, so its ceiling is memory bandwidth: the report
 * includes the weight bytes read per token, the machine's streaming-read bandwidth measured
 * here on the same threads, and the bound bandwidth / bytes. Llama shapes come from
 * sutra_bench_llama_shape (smollm2-135m default); --model DIR benchmarks a model folder
 * instead (the same weights llama-bench runs after a GGUF export), as stored (an F16 checkpoint
 * decodes from its half-precision weights). --quant nf4|int4|int8 packs every projection and the
 * output head with the quant module (round to nearest; INT4 groups of 64), as llama.cpp's
 * quantized files hold the head quantized too; --quant f32|f16|bf16 converts them. */
#include "sutra-cli-bench.h"
#include "sutra-model.h"
#include "sutra-pool.h"
#include "sutra-quant.h"

#include <stdlib.h>
#include <string.h>

int
sutra_bench_generate_llama (const SutraBenchOptions *o, json_object *out)
{
  const char *shape = o->shape ? o->shape : "smollm2-135m";
  const char *mdir = sutra_cli_opt (o->args, "model");
  SutraModelConfig cfg;
  if (!mdir && !sutra_bench_llama_shape (shape, &cfg))
    return sutra_cli_usage_error ("bench", "generate: unknown shape '%s' (smollm2-135m, tiny)", shape);
  /* --quant: f32 / f16 / bf16 convert every projection's base to that storage, nf4 / int4 /
   * int8 pack it; absent, the weights stay as loaded (a random shape is f32; a folder keeps
   * its F16/BF16 checkpoint in half precision) */
  const char *quant = o->quant;
  SutraQuantParams qp = { .type = SUTRA_QUANT_NONE, .group_size = 64 };
  SutraDType half = SUTRA_F32;
  if (quant && !strcmp (quant, "f16"))
    half = SUTRA_F16;
  else if (quant && !strcmp (quant, "bf16"))
    half = SUTRA_BF16;
  else if (quant && strcmp (quant, "f32") != 0 && !sutra_quant_type_from_name (quant, &qp.type))
    return sutra_cli_usage_error ("bench", "generate: --quant %s (f32, f16, bf16, nf4, int4, "
                                  "int8)", quant);
  int P = o->seq > 0 ? o->seq : 256, G = o->steps > 0 ? o->steps : 128;
  SutraModel *m;
  SutraError err;
  if (mdir) {
    /* --model DIR: a real folder (e.g. the one exported to GGUF for llama-bench) */
    int rc = sutra_cli_open_model (mdir, &m);
    if (rc)
      return rc;
    cfg = m->cfg;
    shape = mdir;
  } else if (sutra_model_new_random (&cfg, 0.02f, 42, &m, &err))
    return sutra_cli_fail (&err);
  for (size_t i = 0; quant && i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    SutraStatus qs = qp.type != SUTRA_QUANT_NONE ? sutra_linear_quantize (l, &qp, &err)
                     : half != SUTRA_F32         ? sutra_linear_to_half (l, half, &err)
                                                 : sutra_linear_own_f32 (l, &err);
    if (qs) {
      sutra_model_free (m);
      return sutra_cli_fail (&err);
    }
  }
  /* what the projections are stored as now (the first one speaks for all unless mixed) */
  const char *storage = NULL;
  for (size_t i = 0; i < m->n_linears; i++) {
    const SutraLinear *l = m->linears[i];
    const char *k = l->qw ? sutra_quant_type_name (sutra_qweight_params (l->qw)->type)
                  : l->w16 ? (l->w16_type == SUTRA_BF16 ? "bf16" : "f16") : "f32";
    storage = !storage || !strcmp (storage, k) ? k : "mixed";
  }
  if (!quant)
    quant = storage ? storage : "f32";
  SutraGenState *st;
  if (m->vt->state_new (m, P + G + 1, &st, &err)) {
    sutra_model_free (m);
    return sutra_cli_fail (&err);
  }
  int V = cfg.vocab_size;
  int *ids = sutra_xmalloc (sizeof (int) * (size_t) (P + G));
  for (int i = 0; i < P + G; i++)
    ids[i] = (i * 7919 + 13) % V;
  float *logits = sutra_xmalloc (sizeof (float) * (size_t) V);
  /* prefill: warm-up, then the best of 3 */
  double prefill = 1e30;
  SutraStatus s = SUTRA_OK;
  for (int r = 0; r < 4 && !s; r++) {
    m->vt->state_reset (st);
    double t0 = sutra_bench_now ();
    s = m->vt->step (m, st, ids, P, logits, false, &err);
    double t = sutra_bench_now () - t0;
    if (r > 0 && t < prefill)
      prefill = t;
  }
  /* decode: G single-token steps after the prompt (one warm-up step outside the timing) */
  double decode = 0;
  if (!s) {
    m->vt->state_reset (st);
    s = m->vt->step (m, st, ids, P, logits, false, &err);
  }
  if (!s)
    s = m->vt->step (m, st, ids + P, 1, logits, false, &err);
  if (!s) {
    double t0 = sutra_bench_now ();
    for (int i = 1; i < G && !s; i++)
      s = m->vt->step (m, st, ids + P + i, 1, logits, false, &err);
    decode = sutra_bench_now () - t0;
  }
  int rc = 0;
  if (s) {
    rc = sutra_cli_fail (&err);
  } else {
    double dec_tps = (G - 1) / decode, pre_tps = P / prefill;
    /* bytes of weights one decode step reads: every projection (as stored: f32 or packed), the
     * head (a tied head is the embedding table, or its packed copy) and the norms; the embedding
     * table itself is read one row per token, so it does not count */
    double wbytes = 0;
    for (size_t i = 0; i < m->n_linears; i++)
      wbytes += (double) sutra_linear_weight_bytes (m->linears[i]) +
                (m->linears[i]->bias ? 4.0 * m->linears[i]->out : 0);
    for (size_t i = 0; i < m->n_params; i++)
      if (!strstr (m->params[i]->name, "embed"))
        wbytes += 4.0 * (double) m->params[i]->shape[0] * (m->params[i]->ndim > 1 ? m->params[i]->shape[1] : 1);
    double bw = sutra_bench_read_bandwidth_gbs (1.0);
    double params = (double) sutra_model_param_count (m);
    json_object_object_add (out, "shape", json_object_new_string (shape));
    json_object_object_add (out, "quant", json_object_new_string (quant));
    json_object_object_add (out, "weights", json_object_new_string (storage ? storage : "f32"));
    json_object_object_add (out, "prompt_tokens", json_object_new_int (P));
    json_object_object_add (out, "new_tokens", json_object_new_int (G));
    json_object_object_add (out, "tokens_per_s", json_object_new_double (dec_tps));
    json_object_object_add (out, "decode_tokens_per_s", json_object_new_double (dec_tps));
    json_object_object_add (out, "prefill_tokens_per_s", json_object_new_double (pre_tps));
    json_object_object_add (out, "ms_per_token", json_object_new_double (1e3 / dec_tps));
    json_object_object_add (out, "weight_mb_per_token", json_object_new_double (wbytes / 1e6));
    json_object_object_add (out, "weight_gb_per_s", json_object_new_double (wbytes * dec_tps / 1e9));
    json_object_object_add (out, "read_bandwidth_gb_per_s", json_object_new_double (bw));
    json_object_object_add (out, "bandwidth_bound_tokens_per_s",
                            json_object_new_double (bw > 0 ? bw * 1e9 / wbytes : 0));
    json_object_object_add (out, "gflops", json_object_new_double (2.0 * params * dec_tps / 1e9));
    json_object_object_add (out, "prefill_gflops", json_object_new_double (2.0 * params * pre_tps / 1e9));
    json_object_object_add (out, "sgemm_gflops",
                            json_object_new_double (sutra_bench_sgemm_gflops (P, cfg.intermediate_size,
                                                                              cfg.hidden_size, 0.3)));
    json_object_object_add (out, "state_mb", json_object_new_double ((double) m->vt->state_bytes (st) / 1e6));
  }
  free (ids);
  free (logits);
  m->vt->state_free (st);
  sutra_model_free (m);
  return rc;
}
