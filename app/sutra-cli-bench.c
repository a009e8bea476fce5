/* sutra-cli-bench.c: `sutra bench KIND`, the shared helpers, and the matmul and forward
 * benchmarks of the foundation. Other kinds register from their own files. */
#include "sutra-cli-bench.h"
#include "sutra-model.h"
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_KINDS 16
static const SutraBenchKind *kinds[MAX_KINDS];
static int nkinds;

void
sutra_bench_register (const SutraBenchKind *k)
{
  SUTRA_ASSERT (nkinds < MAX_KINDS);
  kinds[nkinds++] = k;
}

double
sutra_bench_now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

double
sutra_bench_peak_rss_mb (void)
{
  FILE *fp = fopen ("/proc/self/status", "r");
  if (!fp)
    return 0;
  char line[256];
  double kb = 0;
  while (fgets (line, sizeof line, fp))
    if (sscanf (line, "VmHWM: %lf kB", &kb) == 1)
      break;
  fclose (fp);
  return kb / 1024.0;
}

static float *
bench_buf (size_t n, float v)
{
  float *p = sutra_try_alloc (n * sizeof (float), "bench", NULL);
  SUTRA_ASSERT (p);
  for (size_t i = 0; i < n; i++)
    p[i] = v * (float) ((i % 13) - 6);
  return p;
}

double
sutra_bench_sgemm_gflops (int M, int N, int K, double seconds)
{
  float *A = bench_buf ((size_t) M * K, 0.01f), *B = bench_buf ((size_t) N * K, 0.01f);
  float *C = bench_buf ((size_t) M * N, 0.f);
  /* OpenBLAS on its own threads: the reference rate */
  openblas_set_num_threads (sutra_get_threads ());
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, A, K, B, K, 0.f, C, N);
  int reps = 0;
  double t0 = sutra_bench_now (), t;
  do {
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, A, K, B, K, 0.f, C, N);
    reps++;
  } while ((t = sutra_bench_now () - t0) < seconds);
  openblas_set_num_threads (1);
  sutra_aligned_free (A);
  sutra_aligned_free (B);
  sutra_aligned_free (C);
  return 2.0 * M * N * K * reps / t / 1e9;
}

bool
sutra_bench_llama_shape (const char *name, void *out)
{
  SutraModelConfig *c = out;
  memset (c, 0, sizeof *c);
  c->arch = SUTRA_ARCH_LLAMA;
  snprintf (c->architecture, sizeof c->architecture, "LlamaForCausalLM");
  snprintf (c->model_type, sizeof c->model_type, "llama");
  c->rms_norm_eps = 1e-5f;
  c->hidden_act = SUTRA_ACT_SILU;
  c->rope.type = SUTRA_ROPE_DEFAULT;
  c->rope.theta = 100000;
  c->bos_token_id = c->pad_token_id = -1;
  c->dtype = SUTRA_F32;
  if (!strcmp (name, "smollm2-135m")) {
    /* HuggingFaceTB/SmolLM2-135M: hidden 576, 30 layers, 9 heads, 3 KV heads, FFN 1536 */
    c->vocab_size = 49152;
    c->hidden_size = 576;
    c->n_layers = 30;
    c->n_heads = 9;
    c->n_kv_heads = 3;
    c->intermediate_size = 1536;
    c->max_position_embeddings = 8192;
    c->tie_word_embeddings = true;
  } else if (!strcmp (name, "tiny")) {
    c->vocab_size = 512;
    c->hidden_size = 64;
    c->n_layers = 2;
    c->n_heads = 4;
    c->n_kv_heads = 2;
    c->intermediate_size = 172;
    c->max_position_embeddings = 2048;
  } else {
    return false;
  }
  c->head_dim = c->hidden_size / c->n_heads;
  c->rope.rot_dim = c->head_dim;
  return true;
}

bool
sutra_bench_recurrent_shape (const char *name, void *out)
{
  SutraModelConfig *c = out;
  memset (c, 0, sizeof *c);
  c->bos_token_id = c->pad_token_id = -1;
  c->dtype = SUTRA_F32;
  c->layer_norm_epsilon = 1e-5f;
  c->hidden_size = 768;
  if (!strcmp (name, "rwkv4-169m")) {
    c->arch = SUTRA_ARCH_RWKV4;
    snprintf (c->architecture, sizeof c->architecture, "RwkvForCausalLM");
    snprintf (c->model_type, sizeof c->model_type, "rwkv");
    c->vocab_size = 50277;
    c->n_layers = 12;
    c->attention_hidden_size = 768;
    c->intermediate_size = 3072;
    c->rescale_every = 6;
    c->max_position_embeddings = 1024;
  } else if (!strcmp (name, "mamba-130m")) {
    c->arch = SUTRA_ARCH_MAMBA;
    snprintf (c->architecture, sizeof c->architecture, "MambaForCausalLM");
    snprintf (c->model_type, sizeof c->model_type, "mamba");
    c->vocab_size = 50280;
    c->n_layers = 24;
    c->state_size = 16;
    c->expand = 2;
    c->intermediate_mamba = c->intermediate_size = 1536;
    c->conv_kernel = 4;
    c->time_step_rank = 48;
    c->use_conv_bias = true;
    c->residual_in_fp32 = true;
    c->tie_word_embeddings = true;
  } else {
    return false;
  }
  return true;
}

bool
sutra_bench_model_shape (const char *name, void *out)
{
  return sutra_bench_llama_shape (name, out) || sutra_bench_recurrent_shape (name, out);
}

/* ---- matmul: our pool-split sgemm against OpenBLAS's own threading, on model shapes ---- */
static int
bench_matmul (const SutraBenchOptions *o, json_object *out)
{
  if (o->quant && strcmp (o->quant, "f32") != 0)
    return sutra_bench_qmatmul (o, out);
  static const int shapes[][3] = { { 256, 576, 576 }, { 256, 1536, 576 }, { 256, 576, 1536 },
                                   { 256, 49152, 576 }, { 1024, 1024, 1024 } };
  json_object *arr = json_object_new_array ();
  double tot_flops = 0, tot_ours = 0, tot_blas = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    float *A = bench_buf ((size_t) M * K, 0.01f), *B = bench_buf ((size_t) N * K, 0.01f);
    float *C = bench_buf ((size_t) M * N, 0.f);
    sutra_sgemm (false, true, M, N, K, 1.f, A, K, B, K, 0.f, C, N);
    int reps = 0;
    double t0 = sutra_bench_now (), t;
    do {
      sutra_sgemm (false, true, M, N, K, 1.f, A, K, B, K, 0.f, C, N);
      reps++;
    } while ((t = sutra_bench_now () - t0) < 0.5);
    double flops = 2.0 * M * N * K;
    double ours = flops * reps / t / 1e9;
    double blas = sutra_bench_sgemm_gflops (M, N, K, 0.5);
    json_object *e = json_object_new_object ();
    json_object_object_add (e, "m", json_object_new_int (M));
    json_object_object_add (e, "n", json_object_new_int (N));
    json_object_object_add (e, "k", json_object_new_int (K));
    json_object_object_add (e, "gflops", json_object_new_double (ours));
    json_object_object_add (e, "sgemm_gflops", json_object_new_double (blas));
    json_object_array_add (arr, e);
    tot_flops += flops;
    tot_ours += flops / ours;
    tot_blas += flops / blas;
    sutra_aligned_free (A);
    sutra_aligned_free (B);
    sutra_aligned_free (C);
  }
  json_object_object_add (out, "shape", json_object_new_string ("model matmuls"));
  json_object_object_add (out, "gflops", json_object_new_double (tot_flops / tot_ours));
  json_object_object_add (out, "sgemm_gflops", json_object_new_double (tot_flops / tot_blas));
  json_object_object_add (out, "shapes", arr);
  (void) o;
  return 0;
}

SUTRA_BENCH_KIND (matmul, "matmul", "sgemm on model shapes: our pool split vs OpenBLAS threads",
                  bench_matmul)

/* FLOPs of one Llama forward over T tokens (attention counted as computed: full T x T). */
static double
llama_forward_flops (const SutraModelConfig *c, int T)
{
  double C = c->hidden_size, H = (double) c->n_heads * c->head_dim;
  double KV = (double) c->n_kv_heads * c->head_dim, F = c->intermediate_size;
  double per_layer = 2.0 * T * (C * H + 2 * C * KV + H * C + 3 * C * F) +
                     2.0 * 2.0 * T * T * H;
  return per_layer * c->n_layers + 2.0 * T * C * c->vocab_size;
}

/* Time-weighted sgemm rate over the forward's own matmul shapes (one of each per layer). */
static double
llama_sgemm_rate (const SutraModelConfig *c, int T)
{
  int C = c->hidden_size, H = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
  int F = c->intermediate_size;
  const int sh[][4] = { { T, H, C, 1 }, { T, KV, C, 2 }, { T, C, H, 1 }, { T, F, C, 2 },
                        { T, C, F, 1 } };
  double flops = 0, secs = 0;
  for (int i = 0; i < 5; i++) {
    double f = 2.0 * sh[i][0] * sh[i][1] * sh[i][2] * sh[i][3] * c->n_layers;
    double g = sutra_bench_sgemm_gflops (sh[i][0], sh[i][1], sh[i][2], 0.3);
    flops += f;
    secs += f / (g * 1e9);
  }
  double f = 2.0 * T * C * c->vocab_size;
  flops += f;
  secs += f / (sutra_bench_sgemm_gflops (T, c->vocab_size, C, 0.3) * 1e9);
  return flops / secs / 1e9;
}

static int
bench_forward (const SutraBenchOptions *o, json_object *out)
{
  const char *shape = o->shape ? o->shape : "smollm2-135m";
  SutraModelConfig cfg;
  if (sutra_bench_recurrent_shape (shape, &cfg))
    return sutra_bench_forward_recurrent (o, &cfg, out);
  if (!sutra_bench_llama_shape (shape, &cfg))
    return sutra_cli_usage_error ("bench", "forward: unknown shape '%s' (smollm2-135m, tiny, "
                                  "rwkv4-169m, mamba-130m)", shape);
  int T = o->seq > 0 ? o->seq : 256;
  int steps = o->steps > 0 ? o->steps : 5;
  SutraModel *m;
  SutraError err;
  if (sutra_model_new_random (&cfg, 0.02f, 42, &m, &err))
    return sutra_cli_fail (&err);
  int *ids = sutra_xmalloc (sizeof (int) * (size_t) T);
  for (int i = 0; i < T; i++)
    ids[i] = (i * 7919) % cfg.vocab_size;
  SutraBatch b = { 1, T, ids, NULL, NULL };
  float *logits;
  if (sutra_model_forward (m, &b, false, &logits, &err))   /* warm-up: reserves memory */
    return sutra_cli_fail (&err);
  double t0 = sutra_bench_now ();
  for (int s = 0; s < steps; s++)
    if (sutra_model_forward (m, &b, false, &logits, &err))
      return sutra_cli_fail (&err);
  double t = (sutra_bench_now () - t0) / steps;
  double flops = llama_forward_flops (&cfg, T);
  double sg = llama_sgemm_rate (&cfg, T);
  json_object_object_add (out, "shape", json_object_new_string (shape));
  json_object_object_add (out, "seq", json_object_new_int (T));
  json_object_object_add (out, "tokens_per_s", json_object_new_double (T / t));
  json_object_object_add (out, "ms_per_forward", json_object_new_double (t * 1e3));
  json_object_object_add (out, "gflops", json_object_new_double (flops / t / 1e9));
  json_object_object_add (out, "sgemm_gflops", json_object_new_double (sg));
  json_object_object_add (out, "sgemm_fraction", json_object_new_double (flops / t / 1e9 / sg));
  free (ids);
  sutra_model_free (m);
  return 0;
}

SUTRA_BENCH_KIND (forward, "forward", "model forward pass, batch 1 x seq tokens", bench_forward)

static const SutraCliOptSpec bench_opts[] = {
  { "shape", true }, { "method", true }, { "quant", true }, { "threads", true }, { "seq", true },
  { "steps", true }, { "*", true }, { NULL, false },
};

static int
cmd_bench (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, bench_opts))
    return 2;
  if (a.npos != 1) {
    fprintf (stderr, "sutra bench: kinds:");
    for (int i = 0; i < nkinds; i++)
      fprintf (stderr, " %s", kinds[i]->kind);
    fputc ('\n', stderr);
    return sutra_cli_usage_error ("bench", "expected one benchmark kind");
  }
  SutraBenchOptions o = { .args = &a };
  o.shape = sutra_cli_opt (&a, "shape");
  o.method = sutra_cli_opt (&a, "method");
  o.quant = sutra_cli_opt (&a, "quant");
  long long v = 0;
  if (!sutra_cli_opt_int (&a, "threads", 0, 64, &v))
    return 2;
  o.threads = (int) v;
  v = 0;
  if (!sutra_cli_opt_int (&a, "seq", 0, 1 << 20, &v))
    return 2;
  o.seq = (int) v;
  v = 0;
  if (!sutra_cli_opt_int (&a, "steps", 0, 1 << 20, &v))
    return 2;
  o.steps = (int) v;
  sutra_set_threads (o.threads);
  for (int i = 0; i < nkinds; i++) {
    if (strcmp (kinds[i]->kind, a.pos[0]) != 0)
      continue;
    json_object *out = json_object_new_object ();
    json_object_object_add (out, "bench", json_object_new_string (kinds[i]->kind));
    int rc = kinds[i]->func (&o, out);
    if (rc == 0) {
      json_object_object_add (out, "threads", json_object_new_int (sutra_get_threads ()));
      json_object_object_add (out, "openblas_core", json_object_new_string (openblas_get_corename ()));
      json_object_object_add (out, "peak_rss_mb", json_object_new_double (sutra_bench_peak_rss_mb ()));
      printf ("%s\n", json_object_to_json_string_ext (out, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    json_object_put (out);
    return rc;
  }
  return sutra_cli_usage_error ("bench", "unknown benchmark kind '%s'", a.pos[0]);
}

SUTRA_CLI_COMMAND (bench, "bench", "KIND [--shape S] [--method M] [--quant Q] [--threads N] "
                   "[--seq N] [--steps N]",
                   "benchmarks; prints one JSON object (kinds: matmul forward train generate "
                   "tokenize)", cmd_bench)
