/* sutra-chat-session.c: conversations through a chat template over the generation loop
 * (see sutra-chat-session.h). */
#include "sutra-chat-session.h"
#include "sutra-lora.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHAT_CTX 4096

struct SutraChatSession {
  SutraModel *m;
  const SutraTokenizer *tok;
  const SutraChatTemplate *tmpl;
  SutraGenerator *gen;
  char *system;
  SutraChatMessage *msgs;      /* [n] owned role/content strings, after the system prompt */
  size_t n, cap;
  char *reply;
  int eot;                     /* template end-of-turn token or -1 */
  bool use_adapter;
  int state_adapter;           /* adapter setting the generator's state was built with, -1 none */
};

void
sutra_chat_session_options_init (SutraChatSessionOptions *o)
{
  memset (o, 0, sizeof *o);
  o->use_adapter = true;
}

int
sutra_chat_template_eot_id (const SutraChatTemplate *tmpl, const SutraTokenizer *tok)
{
  /* render [user, assistant(marker)] and take the first special token after the marker within
   * the assistant span (the span covers the reply and the template's end-of-turn text) */
  static const char marker[] = "Qz7Xr";
  SutraChatMessage msgs[2] = { { "user", "Hello" }, { "assistant", marker } };
  char *text;
  SutraChatSpan *spans;
  size_t n_spans;
  if (sutra_chat_assistant_spans (tmpl, msgs, 2, &text, &spans, &n_spans, NULL) != SUTRA_OK)
    return -1;
  int eot = -1;
  if (n_spans > 0) {
    char *hit = strstr (text + spans[0].start, marker);
    if (hit && (size_t) (hit - text) < spans[0].end) {
      const char *tail = hit + sizeof marker - 1;
      size_t tail_len = spans[0].end - (size_t) (tail - text);
      SutraEncoding enc;
      if (sutra_tokenizer_encode (tok, tail, tail_len, 0, &enc, NULL) == SUTRA_OK) {
        for (size_t i = 0; i < enc.n && eot < 0; i++)
          if (sutra_tokenizer_is_special (tok, enc.ids[i]))
            eot = enc.ids[i];
        sutra_encoding_clear (&enc);
      }
    }
  }
  free (spans);
  free (text);
  return eot;
}

SutraStatus
sutra_chat_session_new (SutraModel *m, const SutraTokenizer *tok, const SutraChatTemplate *tmpl,
                        const SutraChatSessionOptions *o, SutraChatSession **out, SutraError *err)
{
  SutraChatSessionOptions def;
  if (!o) {
    sutra_chat_session_options_init (&def);
    o = &def;
  }
  int limit = m->cfg.max_position_embeddings;
  int ctx = o->max_ctx > 0 ? o->max_ctx
            : limit > 0 && limit < DEFAULT_CHAT_CTX ? limit : DEFAULT_CHAT_CTX;
  SutraChatSession *s = sutra_xcalloc (1, sizeof *s);
  SutraStatus st = sutra_generator_new (m, tok, ctx, &s->gen, err);
  if (st) {
    free (s);
    return st;
  }
  s->m = m;
  s->tok = tok;
  s->tmpl = tmpl;
  s->system = o->system ? sutra_xstrdup (o->system) : NULL;
  s->reply = sutra_xstrdup ("");
  s->eot = sutra_chat_template_eot_id (tmpl, tok);
  s->use_adapter = o->use_adapter;
  s->state_adapter = -1;
  *out = s;
  return SUTRA_OK;
}

static void
free_messages (SutraChatSession *s)
{
  for (size_t i = 0; i < s->n; i++) {
    free ((char *) s->msgs[i].role);
    free ((char *) s->msgs[i].content);
  }
  s->n = 0;
}

void
sutra_chat_session_free (SutraChatSession *s)
{
  if (!s)
    return;
  sutra_generator_free (s->gen);
  free_messages (s);
  free (s->msgs);
  free (s->system);
  free (s->reply);
  free (s);
}

static void
push_message (SutraChatSession *s, const char *role, const char *content)
{
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 16;
    s->msgs = sutra_xrealloc (s->msgs, sizeof (SutraChatMessage) * s->cap);
  }
  s->msgs[s->n++] = (SutraChatMessage) { sutra_xstrdup (role), sutra_xstrdup (content) };
}

static void
pop_message (SutraChatSession *s)
{
  s->n--;
  free ((char *) s->msgs[s->n].role);
  free ((char *) s->msgs[s->n].content);
}

/* the model's adapter switch: -1 without an adapter, else 0 / 1 */
static int
adapter_state (const SutraModel *m)
{
  for (size_t i = 0; i < m->n_linears; i++)
    if (m->linears[i]->lora)
      return m->linears[i]->lora->enabled ? 1 : 0;
  return -1;
}

SutraStatus
sutra_chat_session_send (SutraChatSession *s, const char *user_text, const SutraGenParams *p,
                         SutraGenTokenFunc cb, void *user, SutraGenResult *res, SutraError *err)
{
  push_message (s, "user", user_text);
  /* system + conversation + the new user message, rendered for generation */
  size_t n = s->n + (s->system ? 1 : 0);
  SutraChatMessage *all = sutra_xmalloc (sizeof (SutraChatMessage) * n);
  size_t k = 0;
  if (s->system)
    all[k++] = (SutraChatMessage) { "system", s->system };
  memcpy (all + k, s->msgs, sizeof (SutraChatMessage) * s->n);
  char *text = NULL;
  SutraEncoding enc = { 0 };
  SutraStatus st = sutra_chat_render (s->tmpl, all, n, true, &text, err);
  free (all);
  if (!st)
    st = sutra_tokenizer_encode (s->tok, text, strlen (text), 0, &enc, err);
  free (text);
  if (st) {
    pop_message (s);
    return st;
  }
  int *ids = sutra_xmalloc (sizeof (int) * (enc.n ? enc.n : 1));
  for (size_t i = 0; i < enc.n; i++)
    ids[i] = enc.ids[i];
  int n_ids = (int) enc.n;
  sutra_encoding_clear (&enc);
  /* stop on the end-of-turn token too */
  SutraGenParams q = *p;
  bool have = false;
  for (int i = 0; i < q.n_eos; i++)
    have |= q.eos_ids[i] == s->eot;
  if (s->eot >= 0 && !have && q.n_eos < SUTRA_MAX_EOS)
    q.eos_ids[q.n_eos++] = s->eot;
  /* this session's adapter choice, for this reply only */
  int before = adapter_state (s->m), want = before < 0 ? -1 : s->use_adapter ? 1 : 0;
  if (want >= 0)
    sutra_lora_set_enabled (s->m, want == 1);
  if (want != s->state_adapter)
    sutra_generator_reset (s->gen);
  s->state_adapter = want;
  SutraGenResult r;
  st = sutra_generator_run (s->gen, ids, n_ids, &q, cb, user, &r, err);
  if (before >= 0)
    sutra_lora_set_enabled (s->m, before == 1);
  free (ids);
  if (st || r.n_generated == 0) {
    pop_message (s);
    if (!st && res)
      *res = r;
    return st;
  }
  free (s->reply);
  size_t len;
  s->reply = sutra_xstrdup (sutra_generator_text (s->gen, &len));
  push_message (s, "assistant", s->reply);
  if (res)
    *res = r;
  return SUTRA_OK;
}

const char *sutra_chat_session_reply (const SutraChatSession *s) { return s->reply; }
size_t sutra_chat_session_n_messages (const SutraChatSession *s) { return s->n; }

const SutraChatMessage *
sutra_chat_session_message (const SutraChatSession *s, size_t i)
{
  return i < s->n ? &s->msgs[i] : NULL;
}

void
sutra_chat_session_clear (SutraChatSession *s)
{
  free_messages (s);
  free (s->reply);
  s->reply = sutra_xstrdup ("");
}

void
sutra_chat_session_set_system (SutraChatSession *s, const char *system)
{
  free (s->system);
  s->system = system ? sutra_xstrdup (system) : NULL;
}

void sutra_chat_session_use_adapter (SutraChatSession *s, bool use) { s->use_adapter = use; }

void
sutra_chat_session_invalidate (SutraChatSession *s)
{
  sutra_generator_reset (s->gen);
}

void
sutra_chat_session_cancel (SutraChatSession *s)
{
  sutra_generator_cancel (s->gen);
}
