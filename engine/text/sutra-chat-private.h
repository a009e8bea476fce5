/* sutra-chat-private.h: internals shared by sutra-chat.c (render), sutra-chat-load.c (model
 * folders), sutra-chat-spans.c (assistant spans, family matching) and sutra-chat-families.c
 * (built-in templates). Not a public header. */
#pragma once
#include "sutra-chat.h"
#include "sutra-jinja.h"

#include <stddef.h>

#define SUTRA_CHAT_N_TOKENS 7
extern const char *const SUTRA_CHAT_TOKEN_KEYS[SUTRA_CHAT_N_TOKENS];   /* bos_token ... */

struct SutraChatTemplate {
  char *source;
  SutraJinjaTemplate *tpl;
  char *label;                    /* "chat template" or "chat template 'llama-3'" in errors */
  char *tokens[SUTRA_CHAT_N_TOKENS];
  char **additional;
  size_t n_additional;
  char **var_names, **var_json;   /* extra variables (JSON texts, parsed per render) */
  size_t n_vars;
  bool has_now;
  int64_t now;
  bool fallback;
  const char *builtin;            /* family name when built from a family */
  SutraJinjaOptions limits;       /* render limits (zero = sutra-jinja defaults); fuzzers lower them */
};

struct json_object;
SutraStatus sutra_chat_template_new_labeled (const char *source, const char *label,
                                             SutraChatTemplate **out, SutraError *err);
void        sutra_chat_set_token_at  (SutraChatTemplate *t, int k, const char *value);
int         sutra_chat_token_index   (const char *key);
/* Renders with messages (a JSON array the caller keeps owning). */
SutraStatus sutra_chat_render_array  (const SutraChatTemplate *t, struct json_object *messages,
                                      bool agp, char **out, size_t *out_len, SutraError *err);
struct json_object *sutra_chat_messages_json (const SutraChatMessage *msgs, size_t n);
SutraStatus sutra_chat_check_messages (const SutraChatMessage *msgs, size_t n, SutraError *err);

typedef struct {
  const char *name;
  const char *description;
  const char *bos_token, *eos_token;   /* used when the model does not set them (may be NULL) */
  const char *source;                  /* Jinja text */
} SutraChatFamily;

const SutraChatFamily *sutra_chat_family_find  (const char *name);
size_t                 sutra_chat_family_count (void);
const SutraChatFamily *sutra_chat_family_at    (size_t i);
