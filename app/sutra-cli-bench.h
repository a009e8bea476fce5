/* sutra-cli-bench.h: `sutra bench KIND`: each benchmark kind lives in its own
 * app/sutra-cli-bench-<kind>.c and registers with SUTRA_BENCH_KIND. Every benchmark prints
 * one JSON object on stdout (DESIGN.md section 6): at least "tokens_per_s" or "mb_per_s",
 * "threads", "shape", "gflops", "sgemm_gflops", "peak_rss_mb". */
#pragma once
#include "sutra-cli.h"
#include <json-c/json.h>

typedef struct {
  const char *shape;     /* smollm2-135m | rwkv4-169m | mamba-130m | tiny (default per kind) */
  const char *method;    /* lora | qlora | full */
  const char *quant;     /* f32 | nf4 | int4 | int8 */
  int threads;           /* 0 = all cores */
  int seq;               /* 0 = kind default */
  int steps;             /* 0 = kind default */
  const SutraCliArgs *args;  /* for kind-specific options */
} SutraBenchOptions;

/* Fills `out` (a JSON object) and returns 0, or prints an error and returns 1/2. */
typedef int (*SutraBenchFunc) (const SutraBenchOptions *o, json_object *out);

typedef struct {
  const char *kind;
  const char *summary;
  SutraBenchFunc func;
} SutraBenchKind;

void sutra_bench_register (const SutraBenchKind *k);

#define SUTRA_BENCH_KIND(ident, kind_, summary_, func_)                                   \
  static const SutraBenchKind sutra_bench_kind_##ident = { kind_, summary_, func_ };     \
  __attribute__ ((constructor)) static void sutra_bench_register_##ident (void)          \
  { sutra_bench_register (&sutra_bench_kind_##ident); }

/* ---- helpers shared by benchmarks ---- */
double sutra_bench_now (void);                 /* monotonic seconds */
double sutra_bench_peak_rss_mb (void);         /* VmHWM of this process */
/* GFLOP/s of single cblas_sgemm calls (threads as configured) on C[M,N] = A[M,K] B[N,K]^T,
 * run for about `seconds`; the figure benchmarks compare against. */
double sutra_bench_sgemm_gflops (int M, int N, int K, double seconds);
/* Best read bandwidth (GB/s) over ~seconds of summing a 512 MB buffer on the pool's threads. */
double sutra_bench_read_bandwidth_gbs (double seconds);
/* `bench matmul --quant nf4|int4|int8` (app/sutra-cli-bench-quant.c). */
int    sutra_bench_qmatmul (const SutraBenchOptions *o, json_object *out);
/* A SmolLM2-135M / tiny shaped Llama config by name; false if unknown. */
bool   sutra_bench_llama_shape (const char *name, void *cfg /* SutraModelConfig* */);
/* `sutra bench generate` for Llama shapes or --model DIR (app/sutra-cli-bench-generate-llama.c):
 * prefill tokens/s over --seq (256), decode tokens/s over --steps (128), bandwidth bound. */
int    sutra_bench_generate_llama (const SutraBenchOptions *o, json_object *out);
/* RWKV-4-169M ("rwkv4-169m") / Mamba-130M ("mamba-130m") shaped configs (the Hub configs of
 * RWKV/rwkv-4-169m-pile and state-spaces/mamba-130m-hf); false if unknown. */
bool   sutra_bench_recurrent_shape (const char *name, void *cfg /* SutraModelConfig* */);
/* Any shape: Llama or recurrent. */
bool   sutra_bench_model_shape (const char *name, void *cfg /* SutraModelConfig* */);
/* `bench forward` for recurrent shapes: training forward + backward at batch 1 x seq with
 * per-op timing (app/sutra-cli-bench-recurrent.c). */
int    sutra_bench_forward_recurrent (const SutraBenchOptions *o, const void *cfg, json_object *out);
