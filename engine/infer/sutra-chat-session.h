/* sutra-chat-session.h: a multi-turn conversation with a model through its chat template, for
 * `sutra chat` and the studio's Chat page.
 *
 * Each turn renders the whole conversation with the template (add_generation_prompt, as
 * transformers' apply_chat_template), tokenizes it without adding special tokens (the template
 * writes them), and generates with sutra-generate.h: the KV cache / recurrent state is reused
 * when the new prompt extends what the state holds (token-id prefix match), else recomputed.
 * Generation also stops on the template's end-of-turn token (<|im_end|>, <|eot_id|>, <|end|>...),
 * found by rendering a probe conversation. The model, tokenizer and template are borrowed: the
 * session never frees them and may run on a model someone else owns (the trainer's, while
 * paused; call sutra_chat_session_invalidate after its weights change). A session chooses
 * whether the attached LoRA adapter is used for its replies; it sets the model's adapter switch
 * for each reply and restores it afterwards, so a base session and a tuned session can share one
 * model (one at a time: a model serves one generation at a time). */
#pragma once
#include "sutra-chat.h"
#include "sutra-generate.h"
#include "sutra-tokenizer.h"

typedef struct {
  const char *system;          /* system prompt, or NULL */
  int max_ctx;                 /* tokens of context; 0 = min(the model's limit, 4096) */
  bool use_adapter;            /* replies with the attached adapter (default true) */
} SutraChatSessionOptions;

void sutra_chat_session_options_init (SutraChatSessionOptions *o);

typedef struct SutraChatSession SutraChatSession;

SutraStatus sutra_chat_session_new  (SutraModel *m, const SutraTokenizer *tok,
                                     const SutraChatTemplate *tmpl, const SutraChatSessionOptions *o,
                                     SutraChatSession **out, SutraError *err);
void        sutra_chat_session_free (SutraChatSession *s);

/* Adds the user's message, generates the assistant's reply (streamed through cb, which may be
 * NULL) and appends it to the conversation. p: sampling and limits (EOS ids are extended with
 * the template's end-of-turn token). On error or cancellation before any token the user message
 * is taken back. */
SutraStatus sutra_chat_session_send (SutraChatSession *s, const char *user_text,
                                     const SutraGenParams *p, SutraGenTokenFunc cb, void *user,
                                     SutraGenResult *res, SutraError *err);
/* The last reply (borrowed until the next send), "" before the first. */
const char *sutra_chat_session_reply (const SutraChatSession *s);

/* Conversation access: messages after the system prompt (user, assistant, user, ...). */
size_t      sutra_chat_session_n_messages (const SutraChatSession *s);
const SutraChatMessage *sutra_chat_session_message (const SutraChatSession *s, size_t i);

/* Forgets the conversation (keeps the system prompt); the cached state is kept and reused as
 * far as the next prompt matches it. */
void        sutra_chat_session_clear (SutraChatSession *s);
/* Replaces the system prompt (NULL: none). */
void        sutra_chat_session_set_system (SutraChatSession *s, const char *system);
/* Replies with or without the attached adapter from the next send on. */
void        sutra_chat_session_use_adapter (SutraChatSession *s, bool use);
/* The model's weights changed: the cached state is stale. */
void        sutra_chat_session_invalidate (SutraChatSession *s);
/* Thread-safe: stops the running reply within one token. */
void        sutra_chat_session_cancel (SutraChatSession *s);

/* The template's end-of-turn token: the first special token the template writes after an
 * assistant message (rendering a probe conversation), or -1. */
int         sutra_chat_template_eot_id (const SutraChatTemplate *tmpl, const SutraTokenizer *tok);
