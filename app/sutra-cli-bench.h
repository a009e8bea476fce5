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
/* A SmolLM2-135M / tiny shaped Llama config by name; false if unknown. */
bool   sutra_bench_llama_shape (const char *name, void *cfg /* SutraModelConfig* */);
/* `sutra bench generate` for Llama shapes or --model DIR (app/sutra-cli-bench-generate-llama.c):
 * prefill tokens/s over --seq (256), decode tokens/s over --steps (128), bandwidth bound. */
int    sutra_bench_generate_llama (const SutraBenchOptions *o, json_object *out);
