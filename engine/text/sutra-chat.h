/* sutra-chat.h: chat templates, rendered as transformers' tokenizer.apply_chat_template(
 * messages, tokenize=False, add_generation_prompt=...) renders them.
 *
 * A template comes from a model (tokenizer_config.json "chat_template": a string or the list
 * of {"name","template"}; chat_template.jinja beside it wins, as in transformers >= 4.50) or
 * from a built-in family (chatml, llama-3, mistral ... : Jinja texts of our own that render like
 * the real templates). The special-token variables are those transformers passes: bos_token,
 * eos_token, unk_token, sep_token, pad_token, cls_token, mask_token, additional_special_tokens,
 * each only when set (strings or {"content": ...} objects; special_tokens_map.json overrides).
 * Rendering goes through sutra-jinja.h, so one path serves model and built-in templates.
 * A template is immutable once set up: renders may run on several threads at once. */
#pragma once
#include "sutra-error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct SutraChatTemplate SutraChatTemplate;   /* opaque */

typedef struct {
  const char *role;        /* "system", "user", "assistant", "tool" ... (required) */
  const char *content;     /* UTF-8 (invalid bytes become U+FFFD); NULL is JSON null */
} SutraChatMessage;

typedef struct {
  size_t start, end;       /* byte range [start, end) of the rendered text */
  size_t message;          /* index of the assistant message it belongs to */
} SutraChatSpan;

/* Loads from PATH: a model folder, a folder holding tokenizer_config.json, or the file itself.
 * name NULL picks the model's template ("default" of a named list); otherwise a named template
 * of the model or, failing that, a built-in family. A model without any template falls back to
 * a built-in family guessed from its special tokens (chatml when nothing matches) and logs a
 * SUTRA_LOG_WARN naming it; sutra_chat_template_is_fallback() then says so. */
SutraStatus sutra_chat_template_load       (const char *path, const char *name,
                                            SutraChatTemplate **out, SutraError *err);
/* A template from its Jinja source, with no special tokens set. */
SutraStatus sutra_chat_template_new        (const char *source, SutraChatTemplate **out,
                                            SutraError *err);
/* A built-in family with that family's usual bos/eos tokens. */
SutraStatus sutra_chat_template_new_family (const char *family, SutraChatTemplate **out,
                                            SutraError *err);
void        sutra_chat_template_free       (SutraChatTemplate *t);

/* Special tokens (key "bos_token" ... "mask_token"); value NULL or "" unsets, as transformers
 * only passes tokens that are set. Not thread-safe against concurrent renders. */
SutraStatus sutra_chat_template_set_token  (SutraChatTemplate *t, const char *key,
                                            const char *value, SutraError *err);
void        sutra_chat_template_set_additional_tokens (SutraChatTemplate *t,
                                                       const char *const *tokens, size_t n);
const char *sutra_chat_template_token      (const SutraChatTemplate *t, const char *key);
/* An extra template variable from JSON text, e.g. ("enable_thinking", "false"). */
SutraStatus sutra_chat_template_set_var    (SutraChatTemplate *t, const char *name,
                                            const char *json_value, SutraError *err);
/* Clock for strftime_now(): SOURCE_DATE_EPOCH (env) when set, else this moment (UTC), else the
 * real clock in local time. */
void        sutra_chat_template_set_now    (SutraChatTemplate *t, int64_t unix_seconds);

const char *sutra_chat_template_source     (const SutraChatTemplate *t);   /* borrowed */
/* Built-in family this template renders exactly like on probe conversations (with its own
 * tokens), else the family its text looks like (*exact = false), else NULL. */
const char *sutra_chat_template_family     (const SutraChatTemplate *t, bool *exact);
bool        sutra_chat_template_is_fallback (const SutraChatTemplate *t);

/* Renders to a malloc'd NUL-terminated string. raise_exception() in the template is
 * SUTRA_ERR_INVALID with the template's message; messages start "chat template: ". */
SutraStatus sutra_chat_render      (const SutraChatTemplate *t, const SutraChatMessage *msgs,
                                    size_t n, bool add_generation_prompt, char **out,
                                    SutraError *err);
/* Same with messages given as a JSON array text (objects may carry tool_calls etc.). */
SutraStatus sutra_chat_render_json (const SutraChatTemplate *t, const char *messages_json,
                                    bool add_generation_prompt, char **out, SutraError *err);

/* For training: renders msgs with add_generation_prompt=false into *text and returns one span
 * per assistant message covering its content and the end-of-turn text the template writes
 * after it (e.g. "<|im_end|>"), but not its header (docs/chat-templates.md: the span is what
 * the model must generate after render(msgs[:i], add_generation_prompt=true)). *spans is
 * malloc'd (NULL when there are none). */
SutraStatus sutra_chat_assistant_spans (const SutraChatTemplate *t, const SutraChatMessage *msgs,
                                        size_t n, char **text, SutraChatSpan **spans,
                                        size_t *n_spans, SutraError *err);

/* Built-in families. */
const char *const *sutra_chat_family_names       (size_t *n);       /* static, NULL-terminated */
const char        *sutra_chat_family_description (const char *family);
const char        *sutra_chat_family_source      (const char *family);
/* The family a template text looks like (markers such as <|im_start|>, [INST]), or NULL. */
const char        *sutra_chat_family_detect      (const char *template_source);
