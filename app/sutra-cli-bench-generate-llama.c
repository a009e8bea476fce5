/* sutra-cli-bench-generate-llama.c: the Llama (KV cache) branch of `sutra bench generate`:
 * prefill and decode speed of the generation step on random weights of a model's shape, batch 1.
 *
 *   prefill: one step over a --seq token prompt (default 256), best of 3 after a warm-up
 *   decode:  --steps single-token steps (default 128) after that prompt; tokens_per_s is the
 *            decode rate (the number people quote for chat)
 * Decode reads every weight once per token, so its ceiling is memory bandwidth: the report
 * includes the weight bytes read per token, the machine's streaming-read bandwidth measured
 * here on the same threads, and the bound bandwidth / bytes. Llama shapes come from
 * sutra_bench_llama_shape (smollm2-135m default); other architectures add a branch to
 * shape_config. --model DIR benchmarks a model folder instead (the same weights llama-bench runs
 * after a GGUF export). --quant f32 only for now: quantized bases join with the quant module. */
#include "sutra-cli-bench.h"
#include "sutra-model.h"
#include "sutra-pool.h"
#include "sutra-dtype.h"

#include <cblas.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

/* A model config for a bench shape name; false when unknown for this benchmark. RWKV and Mamba
 * shapes go here next to the Llama ones. */
static bool
shape_config (const char *name, SutraModelConfig *cfg)
{
  return sutra_bench_llama_shape (name, cfg);
}

typedef struct {
  const float *buf;
  size_t n;
  double *sums;
} ReadJob;

/* a streaming read of the range: four 8-wide accumulators (AVX2 when present, as the decode
 * matrix-vector kernel), else OpenBLAS's vectorised sum of |x| */
__attribute__ ((target ("avx2"))) static float
sum_avx2 (const float *p, int64_t n)
{
  __m256 a = _mm256_setzero_ps (), b = a, c = a, d = a;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a = _mm256_add_ps (a, _mm256_loadu_ps (p + i));
    b = _mm256_add_ps (b, _mm256_loadu_ps (p + i + 8));
    c = _mm256_add_ps (c, _mm256_loadu_ps (p + i + 16));
    d = _mm256_add_ps (d, _mm256_loadu_ps (p + i + 24));
  }
  float t[8];
  _mm256_storeu_ps (t, _mm256_add_ps (_mm256_add_ps (a, b), _mm256_add_ps (c, d)));
  float s = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
  for (; i < n; i++)
    s += p[i];
  return s;
}

static void
read_range (void *ctx, int64_t b, int64_t e, int ti)
{
  const ReadJob *j = ctx;
  j->sums[ti] += sutra_cpu_has_avx2_fma () ? sum_avx2 (j->buf + b, e - b)
                                           : cblas_sasum ((int) (e - b), j->buf + b, 1);
}

/* GB/s of reading a buffer larger than the caches, split over the pool's threads */
static double
read_bandwidth (size_t bytes)
{
  size_t n = bytes / sizeof (float);
  float *buf = sutra_try_alloc (bytes, "bandwidth buffer", NULL);
  if (!buf)
    return 0;
  for (size_t i = 0; i < n; i++)
    buf[i] = (float) (i & 7);
  double sums[64] = { 0 };
  ReadJob j = { buf, n, sums };
  sutra_parallel_for ((int64_t) n, 1 << 16, read_range, &j);
  double best = 0;
  for (int r = 0; r < 5; r++) {
    double t0 = sutra_bench_now ();
    sutra_parallel_for ((int64_t) n, 1 << 16, read_range, &j);
    double t = sutra_bench_now () - t0;
    double gbs = (double) bytes / t / 1e9;
    best = gbs > best ? gbs : best;
  }
  sutra_aligned_free (buf);
  return best;
}

int
sutra_bench_generate_llama (const SutraBenchOptions *o, json_object *out)
{
  const char *shape = o->shape ? o->shape : "smollm2-135m";
  const char *mdir = sutra_cli_opt (o->args, "model");
  SutraModelConfig cfg;
  if (!mdir && !shape_config (shape, &cfg))
    return sutra_cli_usage_error ("bench", "generate: unknown shape '%s' (smollm2-135m, tiny)", shape);
  if (o->quant && strcmp (o->quant, "f32") != 0)
    return sutra_cli_usage_error ("bench", "generate: --quant %s is not available yet (f32)", o->quant);
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
    /* bytes of weights one decode step reads: every projection and norm, and the head; an untied
     * embedding table is read one row per token, so it does not count */
    double wbytes = (double) sutra_model_weight_bytes (m);
    if (!m->tied_linear)
      wbytes -= 4.0 * cfg.vocab_size * cfg.hidden_size;
    double bw = read_bandwidth ((size_t) 512 << 20);
    double params = (double) sutra_model_param_count (m);
    json_object_object_add (out, "shape", json_object_new_string (shape));
    json_object_object_add (out, "quant", json_object_new_string ("f32"));
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
