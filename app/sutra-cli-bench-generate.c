/* sutra-cli-bench-generate.c: `sutra bench generate --shape S [--seq MAX] [--steps K]`: token
 * by token generation through the model's generation state (SutraModelVTable state_new/step) as
 * the context grows. One state per context point is filled (prefill, in chunks) to 64, 1k, 4k
 * and 16k tokens (those <= --seq, default 16384); then K rounds (default 16) each time one
 * single-token step (with its logits) on every state in turn (rotating the order), so a busy
 * machine slows all points alike. Prints the median and minimum ms per token at each context, prefill tokens/s
 * and each state's memory: for the recurrent shapes (rwkv4-169m, mamba-130m) time and memory
 * stay flat.
 *
 * Llama shapes (smollm2-135m, tiny) and --model DIR go to sutra_bench_generate_llama
 * (app/sutra-cli-bench-generate-llama.c): prefill tokens/s over a --seq prompt (256) and decode
 * tokens/s over --steps new tokens (128), with the memory-bandwidth bound. */
#include "sutra-cli-bench.h"
#include "sutra-model.h"
#include "sutra-pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFILL_CHUNK 512

static const int default_contexts[] = { 64, 1024, 4096, 16384 };

/* Floats of the recurrent state proper (what grows for a KV cache; here per layer:
 * RWKV-4 att_x, aa, bb, pp, ffn_x; Mamba the conv window and the scan state). */
static size_t
recurrent_state_bytes (const SutraModelConfig *c)
{
  size_t L = c->n_layers;
  if (c->arch == SUTRA_ARCH_RWKV4)
    return sizeof (float) * L * (2 * (size_t) c->hidden_size + 3 * (size_t) c->attention_hidden_size);
  if (c->arch == SUTRA_ARCH_MAMBA)
    return sizeof (float) * L * ((size_t) (c->conv_kernel - 1) + c->state_size) *
           (size_t) c->intermediate_mamba;
  return 0;
}

typedef struct {
  int context;
  double ms_median, ms_min;
  size_t state_bytes;
} Point;

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* Fills st[p] to contexts[p], then `steps` interleaved rounds of one timed step per state. */
static SutraStatus
measure_contexts (SutraModel *m, SutraGenState **st, const int *contexts, int npts, int steps,
                  Point *pts, double *prefill_tok_s, SutraError *err)
{
  int V = m->cfg.vocab_size;
  float *logits = sutra_xmalloc (sizeof (float) * (size_t) V);
  int *ids = sutra_xmalloc (sizeof (int) * PREFILL_CHUNK);
  double *times = sutra_xcalloc ((size_t) npts * steps, sizeof (double));
  int *tok = sutra_xcalloc ((size_t) npts, sizeof (int));
  uint64_t s = 12345;
  double prefill_t = 0;
  long prefill_n = 0;
  SutraStatus rc = SUTRA_OK;
  for (int p = 0; p < npts && !rc; p++) {
    int pos = 0;
    while (pos < contexts[p] && !rc) {
      int n = contexts[p] - pos < PREFILL_CHUNK ? contexts[p] - pos : PREFILL_CHUNK;
      for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int) ((s >> 33) % (uint64_t) V);
      }
      double t0 = sutra_bench_now ();
      rc = m->vt->step (m, st[p], ids, n, NULL, false, err);
      prefill_t += sutra_bench_now () - t0;
      prefill_n += n;
      pos += n;
    }
    tok[p] = ids[0];
  }
  for (int k = 0; k < steps && !rc; k++)
    for (int q = 0; q < npts && !rc; q++) {
      int p = (q + k) % npts;                        /* rotate who goes first in each round */
      double t0 = sutra_bench_now ();
      rc = m->vt->step (m, st[p], &tok[p], 1, logits, false, err);
      times[(size_t) p * steps + k] = sutra_bench_now () - t0;
      int arg = 0;                                   /* greedy: feed back the argmax */
      for (int v = 1; v < V; v++)
        if (logits[v] > logits[arg])
          arg = v;
      tok[p] = arg;
    }
  for (int p = 0; p < npts && !rc; p++) {
    double *t = times + (size_t) p * steps;
    qsort (t, (size_t) steps, sizeof (double), cmp_double);
    pts[p].context = contexts[p];
    pts[p].ms_median = (steps % 2 ? t[steps / 2] : 0.5 * (t[steps / 2 - 1] + t[steps / 2])) * 1e3;
    pts[p].ms_min = t[0] * 1e3;
    pts[p].state_bytes = m->vt->state_bytes (st[p]);
  }
  *prefill_tok_s = prefill_t > 0 ? prefill_n / prefill_t : 0;
  free (times);
  free (tok);
  free (ids);
  free (logits);
  return rc;
}

static int
bench_generate (const SutraBenchOptions *o, json_object *out)
{
  const char *shape = o->shape ? o->shape : "rwkv4-169m";
  SutraModelConfig cfg;
  /* Llama shapes and model folders: prefill / decode tokens/s of the KV-cache step
   * (app/sutra-cli-bench-generate-llama.c) */
  if (sutra_cli_opt (o->args, "model"))
    return sutra_bench_generate_llama (o, out);
  if (!sutra_bench_model_shape (shape, &cfg))
    return sutra_cli_usage_error ("bench", "generate: unknown shape '%s' (rwkv4-169m, mamba-130m, "
                                  "smollm2-135m, tiny)", shape);
  if (cfg.arch == SUTRA_ARCH_LLAMA)
    return sutra_bench_generate_llama (o, out);
  int max_ctx = o->seq > 0 ? o->seq : 16384;
  int steps = o->steps > 0 ? o->steps : 16;
  int contexts[8], npts = 0;
  for (size_t i = 0; i < sizeof default_contexts / sizeof default_contexts[0]; i++)
    if (default_contexts[i] <= max_ctx)
      contexts[npts++] = default_contexts[i];
  if (npts == 0 || contexts[npts - 1] != max_ctx)
    contexts[npts++] = max_ctx;
  SutraModel *m;
  SutraError err;
  if (sutra_model_new_random (&cfg, 0.02f, 42, &m, &err))
    return sutra_cli_fail (&err);
  SutraGenState *st[8] = { NULL };
  SutraStatus rc = SUTRA_OK;
  for (int p = 0; p < npts && !rc; p++)
    rc = m->vt->state_new (m, contexts[p] + steps, &st[p], &err);
  Point pts[8];
  double prefill = 0;
  if (!rc)
    rc = measure_contexts (m, st, contexts, npts, steps, pts, &prefill, &err);
  if (rc) {
    for (int p = 0; p < npts; p++)
      if (st[p])
        m->vt->state_free (st[p]);
    sutra_model_free (m);
    return sutra_cli_fail (&err);
  }
  /* decode work: every projection once per token (the head included) */
  double macs = 0;
  for (size_t i = 0; i < m->n_linears; i++)
    macs += (double) m->linears[i]->in * m->linears[i]->out;
  double last_ms = pts[npts - 1].ms_median;
  json_object *arr = json_object_new_array ();
  for (int p = 0; p < npts; p++) {
    json_object *e = json_object_new_object ();
    json_object_object_add (e, "context", json_object_new_int (pts[p].context));
    json_object_object_add (e, "ms_per_token", json_object_new_double (pts[p].ms_median));
    json_object_object_add (e, "ms_per_token_min", json_object_new_double (pts[p].ms_min));
    json_object_object_add (e, "state_bytes", json_object_new_int64 ((int64_t) pts[p].state_bytes));
    json_object_array_add (arr, e);
  }
  json_object_object_add (out, "shape", json_object_new_string (shape));
  json_object_object_add (out, "arch", json_object_new_string (cfg.architecture));
  json_object_object_add (out, "decode_steps", json_object_new_int (steps));
  json_object_object_add (out, "tokens_per_s", json_object_new_double (1e3 / last_ms));
  json_object_object_add (out, "prefill_tokens_per_s", json_object_new_double (prefill));
  /* median ms per token at the largest context over that at the smallest */
  json_object_object_add (out, "flatness", json_object_new_double (last_ms / pts[0].ms_median));
  json_object_object_add (out, "gflops", json_object_new_double (2.0 * macs / (last_ms * 1e-3) / 1e9));
  /* the matrix-vector rate a decode step is bound by (one of the model's projections) */
  json_object_object_add (out, "sgemm_gflops", json_object_new_double (
    sutra_bench_sgemm_gflops (1, cfg.intermediate_size, cfg.hidden_size, 0.3)));
  json_object_object_add (out, "recurrent_state_bytes",
                          json_object_new_int64 ((int64_t) recurrent_state_bytes (&cfg)));
  json_object_object_add (out, "contexts", arr);
  for (int p = 0; p < npts; p++)
    m->vt->state_free (st[p]);
  sutra_model_free (m);
  return 0;
}

SUTRA_BENCH_KIND (generate, "generate", "token-by-token generation time and state memory as the "
                  "context grows (64 .. 16k)", bench_generate)
