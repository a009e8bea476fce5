/* sutra-cli-bench-quant.c: quantization benchmarks.
 *   sutra bench matmul --quant nf4|int4|int8   matrix-vector kernels on SmolLM2-135M-shaped
 *       matrices: GB/s of packed weights per shape (cache-resident) and streaming through all
 *       30 layers' matrices in decode order, against the read bandwidth measured in the same
 *       run; plus the f32 sgemv on the same matrices.
 *   sutra bench qdecode --quant Q        decode tokens/s (KV-cache step, one token at a time)
 *       of a random SmolLM2-135M-shaped model in f32 and quantized (all linears; with and
 *       without the tied lm_head), and the speed-up.
 *   sutra bench qlora [--quant nf4]      forward + backward of one batch (seq 256) with LoRA
 *       r=8 on the seven projections: f32 base vs packed base, time and weight memory. */
#include "sutra-cli-bench.h"
#include "sutra-lora.h"
#include "sutra-model.h"
#include "sutra-ops.h"
#include "sutra-pool.h"
#include "sutra-quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- read bandwidth: every thread sums its slice of a buffer far larger than the caches ---- */

typedef struct {
  const uint64_t *buf;
  size_t n;              /* uint64 words */
  uint64_t sums[64];
} ReadJob;

#if defined(__x86_64__)
__attribute__ ((target ("avx2"))) static uint64_t
read_slice_avx2 (const uint64_t *p, size_t n)
{
  __m256i a = _mm256_setzero_si256 (), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a = _mm256_add_epi64 (a, _mm256_loadu_si256 ((const __m256i *) (p + i)));
    b = _mm256_add_epi64 (b, _mm256_loadu_si256 ((const __m256i *) (p + i + 4)));
    c = _mm256_add_epi64 (c, _mm256_loadu_si256 ((const __m256i *) (p + i + 8)));
    d = _mm256_add_epi64 (d, _mm256_loadu_si256 ((const __m256i *) (p + i + 12)));
  }
  uint64_t t[4];
  _mm256_storeu_si256 ((__m256i *) t, _mm256_add_epi64 (_mm256_add_epi64 (a, b),
                                                        _mm256_add_epi64 (c, d)));
  uint64_t s = t[0] + t[1] + t[2] + t[3];
  for (; i < n; i++)
    s += p[i];
  return s;
}
#endif

static void
read_range (void *ctx, int64_t b, int64_t e, int ti)
{
  ReadJob *j = ctx;
  uint64_t s = 0;
#if defined(__x86_64__)
  if (sutra_cpu_has_avx2_fma ())
    s = read_slice_avx2 (j->buf + b, (size_t) (e - b));
  else
#endif
    for (int64_t i = b; i < e; i++)
      s += j->buf[i];
  j->sums[ti & 63] += s;
}

/* A 512 MiB buffer, written once (page faults out of the way), read in timed passes. */
typedef struct {
  ReadJob job;
  uint64_t *buf;
} BandwidthProbe;

static bool
probe_open (BandwidthProbe *b)
{
  size_t bytes = (size_t) 512 << 20;
  b->buf = sutra_try_alloc (bytes, "bandwidth buffer", NULL);
  if (!b->buf)
    return false;
  for (size_t i = 0; i < bytes / 8; i++)
    b->buf[i] = i;
  b->job = (ReadJob) { b->buf, bytes / 8, { 0 } };
  sutra_parallel_for ((int64_t) b->job.n, 1 << 16, read_range, &b->job);   /* warm */
  return true;
}

/* best pass (GB/s) over `seconds` */
static double
probe_sample (BandwidthProbe *b, double seconds)
{
  double best = 0;
  double t0 = sutra_bench_now ();
  do {
    double t1 = sutra_bench_now ();
    sutra_parallel_for ((int64_t) b->job.n, 1 << 16, read_range, &b->job);
    double gbs = (double) b->job.n * 8 / (sutra_bench_now () - t1) / 1e9;
    best = gbs > best ? gbs : best;
  } while (sutra_bench_now () - t0 < seconds);
  return best;
}

static void
probe_close (BandwidthProbe *b)
{
  sutra_aligned_free (b->buf);
}

double
sutra_bench_read_bandwidth_gbs (double seconds)
{
  BandwidthProbe b;
  if (!probe_open (&b))
    return 0;
  double best = probe_sample (&b, seconds);
  probe_close (&b);
  return best;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* ---- matmul --quant ---- */

/* CPU seconds of the whole process (all threads; pool workers spinning count too) */
static double
cpu_now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

static void
fill_weights (float *w, size_t n, uint64_t seed)
{
  uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    w[i] = ((float) (s >> 40) * 0x1p-24f - 0.5f) * 0.08f;
  }
}

static bool
parse_quant (const char *name, SutraQuantParams *p)
{
  memset (p, 0, sizeof *p);
  if (!strcmp (name, "nf4-dq")) {
    p->type = SUTRA_QUANT_NF4;
    p->double_quant = true;
    return true;
  }
  if (!sutra_quant_type_from_name (name, &p->type))
    return false;
  p->group_size = p->type == SUTRA_QUANT_INT4 ? 64 : 0;
  return true;
}

/* SmolLM2-135M projections: name, rows (out), cols (in) */
static const struct { const char *name; int rows, cols; } smol[] = {
  { "q_proj", 576, 576 }, { "k_proj", 192, 576 }, { "v_proj", 192, 576 }, { "o_proj", 576, 576 },
  { "gate_proj", 1536, 576 }, { "up_proj", 1536, 576 }, { "down_proj", 576, 1536 },
};
#define N_SMOL 7
#define SMOL_LAYERS 30

int
sutra_bench_qmatmul (const SutraBenchOptions *o, json_object *out)
{
  SutraQuantParams p;
  if (!parse_quant (o->quant, &p))
    return sutra_cli_usage_error ("bench", "matmul: unknown --quant '%s' (f32, nf4, nf4-dq, int4, "
                                  "int8)", o->quant);
  SutraError err;
  json_object *arr = json_object_new_array ();
  /* every layer's seven matrices, quantized once */
  SutraQWeight *qw[SMOL_LAYERS][N_SMOL];
  size_t qbytes = 0, fbytes = 0;
  float *w = sutra_xmalloc (sizeof (float) * 1536 * 576);
  for (int l = 0; l < SMOL_LAYERS; l++)
    for (int k = 0; k < N_SMOL; k++) {
      fill_weights (w, (size_t) smol[k].rows * smol[k].cols, (uint64_t) (l * 16 + k));
      if (sutra_qweight_quantize (w, smol[k].rows, smol[k].cols, &p, &qw[l][k], &err)) {
        free (w);
        return sutra_cli_fail (&err);
      }
      qbytes += sutra_qweight_bytes (qw[l][k]);
      fbytes += sizeof (float) * (size_t) smol[k].rows * smol[k].cols;
    }
  float *x = sutra_xmalloc (sizeof (float) * 1536), *y = sutra_xmalloc (sizeof (float) * 1536);
  for (int i = 0; i < 1536; i++)
    x[i] = (float) ((i % 17) - 8) * 0.1f;
  /* per shape, cache-resident: the same matrix again and again */
  for (int k = 0; k < N_SMOL; k++) {
    int reps = 0;
    double t0 = sutra_bench_now (), t, c0 = cpu_now ();
    do {
      sutra_qweight_matvec (qw[0][k], x, y, false);
      reps++;
    } while ((t = sutra_bench_now () - t0) < 0.2);
    double gbs = (double) sutra_qweight_bytes (qw[0][k]) * reps / t / 1e9;
    double gbs_cpu = (double) sutra_qweight_bytes (qw[0][k]) * reps / (cpu_now () - c0) / 1e9;
    json_object *e = json_object_new_object ();
    json_object_object_add (e, "matrix", json_object_new_string (smol[k].name));
    json_object_object_add (e, "rows", json_object_new_int (smol[k].rows));
    json_object_object_add (e, "cols", json_object_new_int (smol[k].cols));
    json_object_object_add (e, "gb_per_s_cached", json_object_new_double (gbs));
    json_object_object_add (e, "gb_per_cpu_s_cached", json_object_new_double (gbs_cpu));
    json_object_object_add (e, "gweights_per_s",
                            json_object_new_double ((double) smol[k].rows * smol[k].cols * reps /
                                                    t / 1e9));
    json_object_array_add (arr, e);
  }
  /* streaming: all layers in decode order, as one token of decode reads them, in rounds that
   * alternate with read-bandwidth samples, so both see the same machine (a shared VM's memory
   * bandwidth moves by 1.5x from minute to minute); each side is summarised by its median */
  enum { ROUNDS = 9 };
  double bw_s[ROUNDS], st_s[ROUNDS], st_cpu = 0, st_wall = 0, st_weights = 0;
  BandwidthProbe probe;
  bool have_probe = probe_open (&probe);
  for (int rd = 0; rd < ROUNDS; rd++) {
    bw_s[rd] = have_probe ? probe_sample (&probe, 0.15) : 0;
    int passes = 0;
    double t0 = sutra_bench_now (), t, c0 = cpu_now ();
    do {
      for (int l = 0; l < SMOL_LAYERS; l++)
        for (int k = 0; k < N_SMOL; k++)
          sutra_qweight_matvec (qw[l][k], x, y, false);
      passes++;
    } while ((t = sutra_bench_now () - t0) < 0.25);
    st_s[rd] = (double) qbytes * passes / t / 1e9;
    st_cpu += cpu_now () - c0;
    st_wall += t;
    st_weights += (double) fbytes / 4 * passes;
  }
  if (have_probe)
    probe_close (&probe);
  json_object *rounds = json_object_new_array ();
  for (int rd = 0; rd < ROUNDS; rd++) {
    json_object *e = json_object_new_object ();
    json_object_object_add (e, "read_bandwidth_gb_per_s", json_object_new_double (bw_s[rd]));
    json_object_object_add (e, "stream_gb_per_s", json_object_new_double (st_s[rd]));
    json_object_array_add (rounds, e);
  }
  qsort (bw_s, ROUNDS, sizeof (double), cmp_double);
  qsort (st_s, ROUNDS, sizeof (double), cmp_double);
  double bw = bw_s[ROUNDS / 2], stream = st_s[ROUNDS / 2];
  double stream_cpu = stream * st_wall / st_cpu;
  /* f32 sgemv over the same shapes (one layer's worth re-used: 14 MB, mostly cache) */
  float *wf = sutra_xmalloc (sizeof (float) * 1536 * 576);
  fill_weights (wf, 1536 * 576, 99);
  int reps = 0;
  double t0 = sutra_bench_now (), t;
  do {
    for (int k = 0; k < N_SMOL; k++)
      sutra_sgemv (y, wf, x, smol[k].rows, smol[k].cols, false);
    reps++;
  } while ((t = sutra_bench_now () - t0) < 0.5);
  double f32_gbs = (double) fbytes / SMOL_LAYERS * reps / t / 1e9;
  json_object_object_add (out, "shape", json_object_new_string ("smollm2-135m projections"));
  json_object_object_add (out, "quant", json_object_new_string (o->quant));
  json_object_object_add (out, "kernel",
                          json_object_new_string (sutra_quant_kernel_name (sutra_quant_get_kernel ())));
  json_object_object_add (out, "bits_per_weight",
                          json_object_new_double (8.0 * (double) qbytes / ((double) fbytes / 4)));
  json_object_object_add (out, "read_bandwidth_gb_per_s", json_object_new_double (bw));
  json_object_object_add (out, "stream_gb_per_s", json_object_new_double (stream));
  json_object_object_add (out, "stream_fraction_of_bandwidth", json_object_new_double (stream / bw));
  /* the most favourable pairing for the bandwidth: best stream round over best bandwidth */
  json_object_object_add (out, "stream_best_fraction_of_best_bandwidth",
                          json_object_new_double (st_s[ROUNDS - 1] / bw_s[ROUNDS - 1]));
  json_object_object_add (out, "rounds", rounds);
  /* per CPU-second: what the kernels do when they get the cores (a loaded machine's wall
   * clock says little); with more than one thread, spinning workers count as busy */
  json_object_object_add (out, "stream_gb_per_cpu_s", json_object_new_double (stream_cpu));
  json_object_object_add (out, "stream_mb", json_object_new_double ((double) qbytes / 1048576.0));
  json_object_object_add (out, "stream_gweights_per_s",
                          json_object_new_double (st_weights / st_wall / 1e9));
  json_object_object_add (out, "f32_sgemv_gb_per_s_cached", json_object_new_double (f32_gbs));
  json_object_object_add (out, "mb_per_s", json_object_new_double (stream * 1e3));
  json_object_object_add (out, "gflops", json_object_new_double (2.0 * st_weights / st_wall / 1e9));
  json_object_object_add (out, "sgemm_gflops", json_object_new_double (0));
  json_object_object_add (out, "shapes", arr);
  for (int l = 0; l < SMOL_LAYERS; l++)
    for (int k = 0; k < N_SMOL; k++)
      sutra_qweight_free (qw[l][k]);
  free (w);
  free (wf);
  free (x);
  free (y);
  return 0;
}

/* ---- decode ---- */

/* tokens/s of one-token steps after a short prompt */
static int
decode_rate (SutraModel *m, int ntok, double *tps, SutraError *err)
{
  SutraGenState *st;
  if (m->vt->state_new (m, 512, &st, err))
    return 1;
  float *logits = sutra_xmalloc (sizeof (float) * (size_t) m->cfg.vocab_size);
  int prompt[8] = { 1, 17, 400, 3000, 12, 99, 7, 5 };
  SutraStatus s = m->vt->step (m, st, prompt, 8, logits, false, err);
  int id = 42;
  double t0 = sutra_bench_now ();
  for (int i = 0; !s && i < ntok; i++) {
    s = m->vt->step (m, st, &id, 1, logits, false, err);
    id = (id * 7919 + 13) % m->cfg.vocab_size;
  }
  *tps = ntok / (sutra_bench_now () - t0);
  free (logits);
  m->vt->state_free (st);
  return s ? 1 : 0;
}

static int
quantize_linears (SutraModel *m, const SutraQuantParams *p, bool lm_head, SutraError *err)
{
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (!lm_head && !strcmp (l->name, "lm_head"))
      continue;
    if (sutra_linear_quantize (l, p, err))
      return 1;
  }
  return 0;
}

/* Three copies of the model (f32; linears packed; linears and head packed), measured in
 * turns, best of `rounds` each, so a busy machine slows all three alike. */
static int
bench_qdecode (const SutraBenchOptions *o, json_object *out)
{
  const char *shape = o->shape ? o->shape : "smollm2-135m";
  const char *qname = o->quant ? o->quant : "nf4";
  SutraQuantParams p;
  if (!parse_quant (qname, &p))
    return sutra_cli_usage_error ("bench", "qdecode: unknown --quant '%s'", qname);
  SutraModelConfig cfg;
  if (!sutra_bench_llama_shape (shape, &cfg))
    return sutra_cli_usage_error ("bench", "qdecode: unknown shape '%s'", shape);
  int ntok = o->steps > 0 ? o->steps : 32, rounds = 5;
  SutraError err;
  SutraModel *m[3];
  for (int k = 0; k < 3; k++) {
    if (sutra_model_new_random (&cfg, 0.02f, 42, &m[k], &err))
      return sutra_cli_fail (&err);
    if (k > 0 && quantize_linears (m[k], &p, k == 2, &err))
      return sutra_cli_fail (&err);
  }
  double best[3] = { 0, 0, 0 };
  for (int r = 0; r < rounds; r++)
    for (int k = 0; k < 3; k++) {
      double tps;
      if (decode_rate (m[k], ntok, &tps, &err))
        return sutra_cli_fail (&err);
      best[k] = tps > best[k] ? tps : best[k];
    }
  /* bytes of weights one decode step reads: every linear + one embedding row */
  size_t read[3];
  for (int k = 0; k < 3; k++) {
    read[k] = 0;
    for (size_t i = 0; i < m[k]->n_linears; i++)
      read[k] += sutra_linear_weight_bytes (m[k]->linears[i]);
  }
  double bw = sutra_bench_read_bandwidth_gbs (1.0);
  json_object_object_add (out, "shape", json_object_new_string (shape));
  json_object_object_add (out, "quant", json_object_new_string (qname));
  json_object_object_add (out, "kernel",
                          json_object_new_string (sutra_quant_kernel_name (sutra_quant_get_kernel ())));
  json_object_object_add (out, "tokens", json_object_new_int (ntok));
  json_object_object_add (out, "f32_tokens_per_s", json_object_new_double (best[0]));
  json_object_object_add (out, "quant_tokens_per_s", json_object_new_double (best[1]));
  json_object_object_add (out, "speedup", json_object_new_double (best[1] / best[0]));
  json_object_object_add (out, "quant_lm_head_tokens_per_s", json_object_new_double (best[2]));
  json_object_object_add (out, "speedup_lm_head_too", json_object_new_double (best[2] / best[0]));
  json_object_object_add (out, "tokens_per_s", json_object_new_double (best[1]));
  json_object_object_add (out, "read_bandwidth_gb_per_s", json_object_new_double (bw));
  static const char *lab[3] = { "f32", "quant", "quant_lm_head" };
  for (int k = 0; k < 3; k++) {
    char key[64];
    snprintf (key, sizeof key, "weights_read_mb_per_token_%s", lab[k]);
    json_object_object_add (out, key, json_object_new_double ((double) read[k] / 1048576.0));
    /* the bandwidth bound: tokens/s if weights streamed at the measured read bandwidth */
    snprintf (key, sizeof key, "bandwidth_bound_tokens_per_s_%s", lab[k]);
    json_object_object_add (out, key, json_object_new_double (bw * 1e9 / (double) read[k]));
  }
  json_object_object_add (out, "gflops", json_object_new_double (0));
  json_object_object_add (out, "sgemm_gflops", json_object_new_double (0));
  for (int k = 0; k < 3; k++)
    sutra_model_free (m[k]);
  return 0;
}

SUTRA_BENCH_KIND (qdecode, "qdecode", "decode tokens/s, f32 vs quantized (--quant nf4|int4|int8)",
                  bench_qdecode)

/* ---- QLoRA step: forward + backward, f32 base vs packed base ---- */

/* seconds of one forward + CE + backward */
static int
lora_step (SutraModel *m, const SutraBatch *b, const int *targets, double *secs, SutraError *err)
{
  float *logits, loss;
  int V = m->cfg.vocab_size, N = b->B * b->T, nv;
  double t0 = sutra_bench_now ();
  if (sutra_model_forward (m, b, true, &logits, err) ||
      sutra_cross_entropy_forward (&loss, &nv, logits, targets, N, V, err))
    return 1;
  sutra_cross_entropy_backward (logits, logits, targets, 1.f, nv, N, V);
  sutra_model_zero_grad (m);
  if (sutra_model_backward (m, logits, err))
    return 1;
  *secs = sutra_bench_now () - t0;
  return 0;
}

/* Two copies (f32 base; packed base), LoRA r=8 on the seven projections, stepped in turns;
 * best of `steps` each. */
static int
bench_qlora (const SutraBenchOptions *o, json_object *out)
{
  const char *shape = o->shape ? o->shape : "smollm2-135m";
  const char *qname = o->quant ? o->quant : "nf4-dq";
  SutraQuantParams p;
  if (!parse_quant (qname, &p))
    return sutra_cli_usage_error ("bench", "qlora: unknown --quant '%s'", qname);
  SutraModelConfig cfg;
  if (!sutra_bench_llama_shape (shape, &cfg))
    return sutra_cli_usage_error ("bench", "qlora: unknown shape '%s'", shape);
  int T = o->seq > 0 ? o->seq : 256, steps = o->steps > 0 ? o->steps : 3;
  SutraError err;
  SutraModel *m[2];
  char *targets[] = { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" };
  SutraLoraConfig lc = { .r = 8, .alpha = 16, .targets = targets, .n_targets = 7 };
  size_t wbytes[2];
  for (int k = 0; k < 2; k++) {
    if (sutra_model_new_random (&cfg, 0.02f, 42, &m[k], &err))
      return sutra_cli_fail (&err);
    if (k == 1 && quantize_linears (m[k], &p, false, &err))
      return sutra_cli_fail (&err);
    if (sutra_lora_attach (m[k], &lc, 1, NULL, &err))
      return sutra_cli_fail (&err);
    wbytes[k] = sutra_model_weight_bytes (m[k]);
  }
  int *ids = sutra_xmalloc (sizeof (int) * (size_t) T), *tg = sutra_xmalloc (sizeof (int) * (size_t) T);
  for (int i = 0; i < T; i++) {
    ids[i] = (i * 7919 + 3) % cfg.vocab_size;
    tg[i] = i + 1 < T ? (i * 7919 + 7922) % cfg.vocab_size : SUTRA_IGNORE_INDEX;
  }
  SutraBatch b = { 1, T, ids, NULL, NULL };
  double best[2] = { INFINITY, INFINITY };
  for (int s = 0; s <= steps; s++)       /* step 0 warms up (reserves activations) */
    for (int k = 0; k < 2; k++) {
      double t;
      if (lora_step (m[k], &b, tg, &t, &err))
        return sutra_cli_fail (&err);
      if (s > 0 && t < best[k])
        best[k] = t;
    }
  /* the base weights only (packed linears + f32 embeddings and norms) */
  json_object_object_add (out, "shape", json_object_new_string (shape));
  json_object_object_add (out, "quant", json_object_new_string (qname));
  json_object_object_add (out, "seq", json_object_new_int (T));
  json_object_object_add (out, "lora_ms_per_fwd_bwd", json_object_new_double (best[0] * 1e3));
  json_object_object_add (out, "qlora_ms_per_fwd_bwd", json_object_new_double (best[1] * 1e3));
  json_object_object_add (out, "speed_ratio_qlora_vs_lora", json_object_new_double (best[0] / best[1]));
  json_object_object_add (out, "weights_mb_lora", json_object_new_double ((double) wbytes[0] / 1048576.0));
  json_object_object_add (out, "weights_mb_qlora", json_object_new_double ((double) wbytes[1] / 1048576.0));
  json_object_object_add (out, "weight_memory_ratio",
                          json_object_new_double ((double) wbytes[1] / (double) wbytes[0]));
  json_object_object_add (out, "tokens_per_s", json_object_new_double (T / best[1]));
  json_object_object_add (out, "gflops", json_object_new_double (0));
  json_object_object_add (out, "sgemm_gflops", json_object_new_double (0));
  free (ids);
  free (tg);
  for (int k = 0; k < 2; k++)
    sutra_model_free (m[k]);
  return 0;
}

SUTRA_BENCH_KIND (qlora, "qlora", "LoRA forward+backward, f32 base vs packed base (--quant)",
                  bench_qlora)
