/* fuzz-recurrent.c: libFuzzer target for the recurrent architectures: the input is a
 * config.json; when it parses as a small RWKV-4 or Mamba model, a random model of that config
 * runs a training forward + backward (full fine-tuning, two rows, a packed document boundary)
 * and the recurrent step, so odd settings (conv_kernel 1, state_size 1, huge rescale_every,
 * time_step_rank "auto", untied heads, missing biases ...) go through every code path. */
#include "sutra-model.h"
#include "sutra-pool.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static bool
small_enough (const SutraModelConfig *c)
{
  if (c->arch == SUTRA_ARCH_LLAMA)
    return false;
  if (c->hidden_size > 48 || c->n_layers > 3 || c->vocab_size > 300 || c->intermediate_size > 160)
    return false;
  if (c->arch == SUTRA_ARCH_MAMBA)
    return c->state_size <= 24 && c->conv_kernel <= 8 && c->time_step_rank <= 64 &&
           c->intermediate_mamba <= 160;
  return true;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  SutraModelConfig cfg;
  SutraError err = { 0 };
  if (sutra_model_config_parse ((const char *) data, size, "fuzz.json", &cfg, &err) != SUTRA_OK) {
    SUTRA_ASSERT (err.message[0]);
    return 0;
  }
  if (!small_enough (&cfg))
    return 0;
  sutra_set_threads (1);
  SutraModel *m;
  if (sutra_model_new_random (&cfg, 0.5f, 7, &m, &err) != SUTRA_OK)
    return 0;                      /* refused settings (e.g. attention_hidden_size) */
  if (sutra_model_make_trainable (m, &err) != SUTRA_OK) {
    sutra_model_free (m);
    return 0;
  }
  int V = cfg.vocab_size, ids[10], doc[10];
  for (int i = 0; i < 10; i++) {
    ids[i] = (i * 7 + 1) % V;
    doc[i] = i < 3 ? 0 : 1;
  }
  SutraBatch b = { 2, 5, ids, NULL, doc };
  float *logits;
  if (sutra_model_forward (m, &b, true, &logits, &err) == SUTRA_OK) {
    float *dl = calloc ((size_t) 10 * V, sizeof (float));
    for (int i = 0; i < 10 * V; i += 3)
      dl[i] = 0.01f;
    SUTRA_ASSERT (sutra_model_backward (m, dl, &err) == SUTRA_OK);
    free (dl);
  }
  SutraGenState *st;
  if (m->vt->state_new (m, 16, &st, &err) == SUTRA_OK) {
    float *lg = malloc (sizeof (float) * (size_t) V * 4);
    m->vt->step (m, st, ids, 3, lg, true, &err);
    m->vt->step (m, st, ids + 3, 1, lg, false, &err);
    m->vt->state_free (st);
    free (lg);
  }
  sutra_model_free (m);
  return 0;
}
