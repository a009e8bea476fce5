/* fuzz-lora-load.c: libFuzzer target for the PEFT adapter loader (sutra_lora_load: the
 * adapter_config.json reader and the adapter_model.safetensors matcher) against a tiny Llama
 * made in memory (2 layers, hidden 16, GQA, untied head). Input: a little-endian u16 length L,
 * then L bytes of adapter_config.json, then the adapter_model.safetensors image (absent when
 * the input ends there). Both are written to a private temporary folder. An adapter that loads
 * must have attached A/B with shapes that fit its layer; a forward pass then runs through them
 * before they are detached again. */
#include "sutra-fsutil.h"
#include "sutra-lora.h"
#include "sutra-pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char *tiny_json =
  "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":16,\"intermediate_size\":24,"
  "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":40,"
  "\"max_position_embeddings\":64,\"tie_word_embeddings\":false,\"rms_norm_eps\":1e-5}";

static SutraModel *model;
static char *dir, *cfg_path, *st_path;

static void
cleanup (void)
{
  unlink (cfg_path);
  unlink (st_path);
  rmdir (dir);
  sutra_model_free (model);
}

static void
write_file (const char *p, const void *d, size_t n)
{
  FILE *fp = fopen (p, "wb");
  SUTRA_ASSERT (fp && fwrite (d, 1, n, fp) == n && fclose (fp) == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  SutraError err = { 0 };
  if (!model) {
    SutraModelConfig c;
    SUTRA_ASSERT (sutra_model_config_parse (tiny_json, strlen (tiny_json), "tiny", &c, &err) == SUTRA_OK);
    SUTRA_ASSERT (sutra_model_new_random (&c, 0.2f, 1, &model, &err) == SUTRA_OK);
    SUTRA_ASSERT (model->vt->reserve (model, 1, 4, false, &err) == SUTRA_OK);
    char tmpl[] = "/tmp/sutra-fuzz-lora-XXXXXX";
    dir = sutra_xstrdup (mkdtemp (tmpl));
    cfg_path = sutra_path_join (dir, "adapter_config.json");
    st_path = sutra_path_join (dir, "adapter_model.safetensors");
    atexit (cleanup);
    sutra_set_threads (1);
  }
  if (size < 2)
    return 0;
  size_t L = (size_t) data[0] | (size_t) data[1] << 8;
  if (L > size - 2)
    L = size - 2;
  write_file (cfg_path, data + 2, L);
  unlink (st_path);
  if (2 + L < size)
    write_file (st_path, data + 2 + L, size - 2 - L);
  SutraLoraConfig lc;
  if (sutra_lora_load (model, dir, &lc, &err) != SUTRA_OK) {
    SUTRA_ASSERT (err.message[0]);
    for (size_t i = 0; i < model->n_linears; i++)   /* a failed load leaves nothing attached */
      SUTRA_ASSERT (model->linears[i]->lora == NULL);
    return 0;
  }
  int attached = 0;
  for (size_t i = 0; i < model->n_linears; i++) {
    const SutraLinear *l = model->linears[i];
    if (l->lora) {
      SUTRA_ASSERT (l->lora->r >= 1);
      attached++;
    }
  }
  SUTRA_ASSERT (attached > 0);
  int ids[4] = { 1, 2, 3, 39 };
  SutraBatch b = { 1, 4, ids, NULL, NULL };
  float *logits;
  (void) sutra_model_forward (model, &b, false, &logits, &err);
  for (size_t i = 0; i < model->n_linears; i++)
    sutra_linear_detach_lora (model->linears[i]);
  model->train_mode = SUTRA_TRAIN_NONE;
  sutra_lora_config_clear (&lc);
  return 0;
}
