/* fuzz-model-config.c: libFuzzer target for config.json (sutra_model_config_parse, every
 * architecture). A config that parses must write back (sutra_model_config_to_json) into a
 * config that parses to the same settings; a small Llama-family config then builds a random
 * model that runs one forward pass, so odd shapes (head_dim, GQA ratios, rope scaling, biases,
 * untied heads) reach the code that uses them. (fuzz-recurrent covers RWKV/Mamba forwards.) */
#include "sutra-model.h"
#include "sutra-pool.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static bool
small_llama (const SutraModelConfig *c)
{
  return c->arch == SUTRA_ARCH_LLAMA && c->hidden_size <= 64 && c->n_layers <= 2 &&
         c->vocab_size <= 128 && c->intermediate_size <= 128 && c->n_heads <= 8 &&
         (int64_t) c->n_heads * c->head_dim <= 256;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  SutraModelConfig cfg;
  SutraError err = { 0 };
  if (sutra_model_config_parse ((const char *) data, size, "config.json", &cfg, &err) != SUTRA_OK) {
    SUTRA_ASSERT (err.code != SUTRA_OK && err.message[0]);
    SUTRA_ASSERT (strncmp (err.message, "config.json", 11) == 0);   /* names the file */
    return 0;
  }
  /* round trip: what we write for merged exports must read back the same */
  char *json = sutra_model_config_to_json (&cfg);
  SutraModelConfig again;
  if (sutra_model_config_parse (json, strlen (json), "written config.json", &again, &err) != SUTRA_OK)
    sutra_assert_fail (__FILE__, __LINE__, err.message);
  char *json2 = sutra_model_config_to_json (&again);
  SUTRA_ASSERT (strcmp (json, json2) == 0);
  free (json);
  free (json2);
  if (!small_llama (&cfg))
    return 0;
  sutra_set_threads (1);
  SutraModel *m;
  if (sutra_model_new_random (&cfg, 0.5f, 3, &m, &err) != SUTRA_OK)
    return 0;
  int V = cfg.vocab_size, ids[6];
  for (int i = 0; i < 6; i++)
    ids[i] = (i * 5 + 1) % V;
  SutraBatch b = { 2, 3, ids, NULL, NULL };
  float *logits;
  if (m->vt->reserve (m, 2, 3, false, &err) == SUTRA_OK)
    (void) sutra_model_forward (m, &b, false, &logits, &err);
  sutra_model_free (m);
  return 0;
}
