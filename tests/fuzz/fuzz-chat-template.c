/* fuzz-chat-template.c: the input bytes are a chat template source. It is parsed and rendered
 * on a fixed conversation (through the same path as a model's template: special tokens,
 * tools=None, add_generation_prompt), and its assistant spans are computed, all under small
 * render limits: any crash, hang, leak or sanitizer report is a bug. The first byte picks
 * add_generation_prompt and whether to compute spans. */
#include "sutra-chat-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const SutraChatMessage CONVERSATION[] = {
  { "system", "  Be brief.\n" },
  { "user", "Hello! caf\xc3\xa9 \xf0\x9f\xa6\x99 {{ not a tag }}" },
  { "assistant", "<think>hmm</think>Hi there" },
  { "user", "And then?" },
  { "assistant", "" },
};

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size == 0 || size > 65536)
    return 0;
  uint8_t mode = data[0];
  char *src = malloc (size);
  memcpy (src, data + 1, size - 1);
  src[size - 1] = '\0';                     /* a C string: stops at an embedded NUL */
  SutraChatTemplate *t;
  if (sutra_chat_template_new (src, &t, NULL) != SUTRA_OK) {
    free (src);
    return 0;
  }
  t->limits.max_output = 1 << 16;
  t->limits.max_steps = 100000;
  t->limits.max_memory = 16 << 20;
  t->limits.max_depth = 20;
  sutra_chat_template_set_token (t, "bos_token", "<s>", NULL);
  sutra_chat_template_set_token (t, "eos_token", "</s>", NULL);
  const char *extra[] = { "<|im_start|>", "<|im_end|>" };
  sutra_chat_template_set_additional_tokens (t, extra, 2);
  sutra_chat_template_set_now (t, 1736942400);
  size_t n = sizeof CONVERSATION / sizeof CONVERSATION[0];
  char *out = NULL;
  if (sutra_chat_render (t, CONVERSATION, n, mode & 1, &out, NULL) == SUTRA_OK)
    free (out);
  if (mode & 2) {
    char *text = NULL;
    SutraChatSpan *spans = NULL;
    size_t ns = 0;
    if (sutra_chat_assistant_spans (t, CONVERSATION, n, &text, &spans, &ns, NULL) == SUTRA_OK) {
      for (size_t i = 0; i < ns; i++)
        if (spans[i].start > spans[i].end || spans[i].end > strlen (text))
          abort ();                          /* spans must lie inside the text */
      free (text);
      free (spans);
    }
  }
  if (mode & 4) {
    bool exact;
    (void) sutra_chat_template_family (t, &exact);
  }
  sutra_chat_template_free (t);
  free (src);
  return 0;
}
