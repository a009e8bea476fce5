/* sutra-cli-bench-generate.c: `sutra bench generate`. Llama shapes (and --model DIR) run the
 * KV-cache benchmark of app/sutra-cli-bench-generate-llama.c (prefill and decode tokens/s,
 * bandwidth bound). The RWKV-4 / Mamba shapes (rwkv4-169m, mamba-130m: time per token as the
 * context grows) are another branch of this dispatcher, added with their model code. */
#include "sutra-cli-bench.h"

static int
bench_generate (const SutraBenchOptions *o, json_object *out)
{
  return sutra_bench_generate_llama (o, out);
}

SUTRA_BENCH_KIND (generate, "generate",
                  "generation: prefill (--seq prompt tokens) and decode (--steps new tokens) speed",
                  bench_generate)
