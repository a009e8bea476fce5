/* test-chat-session.c: multi-turn chat through a real chat template (Phi-3's, from
 * ../shared/testdata) on a random model with that tokenizer's vocabulary: the end-of-turn token,
 * state reuse across turns giving the same replies as a fresh session, the adapter switch
 * (two sessions, base and tuned, on one model), borrowed-model lifetime, /reset semantics. */
#include "test-util.h"
#include "sutra-chat-session.h"
#include "sutra-lora.h"

#include <string.h>

typedef struct {
  SutraTokenizer *tok;
  SutraChatTemplate *tmpl;
  SutraModel *m;
} Fx;

static bool
fx_open (Fx *f)
{
  memset (f, 0, sizeof *f);
  const char *tdir = test_shared_path ("tokenizers/phi-3-mini");
  const char *mdir = test_shared_path ("hf-refs/llama-tiny");
  if (!tdir || !mdir)
    return false;
  SutraError err;
  test_assert_ok (sutra_tokenizer_load (tdir, &f->tok, &err), &err);
  test_assert_ok (sutra_chat_template_load (tdir, NULL, &f->tmpl, &err), &err);
  SutraModelConfig cfg;
  test_assert_ok (sutra_model_config_load (mdir, &cfg, &err), &err);
  cfg.vocab_size = (int) sutra_tokenizer_vocab_size (f->tok);
  cfg.max_position_embeddings = 512;
  test_assert_ok (sutra_model_new_random (&cfg, 0.3f, 21, &f->m, &err), &err);
  return true;
}

static void
fx_close (Fx *f)
{
  sutra_model_free (f->m);
  sutra_chat_template_free (f->tmpl);
  sutra_tokenizer_free (f->tok);
}

static SutraGenParams
greedy (int n)
{
  SutraGenParams p;
  sutra_gen_params_init (&p, NULL);
  p.max_new_tokens = n;
  return p;
}

static void
test_eot_token (void)
{
  Fx f;
  if (!fx_open (&f))
    return;
  int eot = sutra_chat_template_eot_id (f.tmpl, f.tok);
  g_assert_cmpint (eot, ==, sutra_tokenizer_token_to_id (f.tok, "<|end|>", 7));
  g_assert_cmpint (eot, >=, 0);
  /* chatml: <|im_end|> (a built-in family with its own tokens, over the same tokenizer the
   * token is unknown: no end-of-turn id) */
  SutraChatTemplate *cm;
  SutraError err;
  test_assert_ok (sutra_chat_template_new_family ("chatml", &cm, &err), &err);
  g_assert_cmpint (sutra_chat_template_eot_id (cm, f.tok), ==, -1);
  sutra_chat_template_free (cm);
  fx_close (&f);
}

static void
test_turns_reuse_state (void)
{
  Fx f;
  if (!fx_open (&f))
    return;
  SutraError err;
  SutraChatSessionOptions o;
  sutra_chat_session_options_init (&o);
  o.system = "Answer briefly.";
  SutraChatSession *s, *fresh;
  test_assert_ok (sutra_chat_session_new (f.m, f.tok, f.tmpl, &o, &s, &err), &err);
  SutraGenParams p = greedy (10);
  SutraGenResult r1, r2, r3;
  test_assert_ok (sutra_chat_session_send (s, "Hello there", &p, NULL, NULL, &r1, &err), &err);
  g_assert_cmpint (r1.n_reused, ==, 0);
  g_assert_cmpint (r1.n_generated, >, 0);
  char *reply1 = g_strdup (sutra_chat_session_reply (s));
  g_assert_cmpuint (sutra_chat_session_n_messages (s), ==, 2);
  g_assert_cmpstr (sutra_chat_session_message (s, 0)->role, ==, "user");
  g_assert_cmpstr (sutra_chat_session_message (s, 1)->role, ==, "assistant");
  g_assert_cmpstr (sutra_chat_session_message (s, 1)->content, ==, reply1);
  test_assert_ok (sutra_chat_session_send (s, "And then?", &p, NULL, NULL, &r2, &err), &err);
  g_test_message ("turn 2: %d prompt tokens, %d reused", r2.n_prompt, r2.n_reused);
  /* the second prompt shares at least the first one with the state (the reply itself may
   * tokenize differently once rendered: SentencePiece drops the leading space on decode) */
  g_assert_cmpint (r2.n_reused, >=, r1.n_prompt);
  char *reply2 = g_strdup (sutra_chat_session_reply (s));
  /* a fresh session fed the same history replies the same (reuse changes nothing) */
  test_assert_ok (sutra_chat_session_new (f.m, f.tok, f.tmpl, &o, &fresh, &err), &err);
  test_assert_ok (sutra_chat_session_send (fresh, "Hello there", &p, NULL, NULL, &r3, &err), &err);
  g_assert_cmpstr (sutra_chat_session_reply (fresh), ==, reply1);
  sutra_chat_session_invalidate (fresh);             /* recompute everything this time */
  test_assert_ok (sutra_chat_session_send (fresh, "And then?", &p, NULL, NULL, &r3, &err), &err);
  g_assert_cmpint (r3.n_reused, ==, 0);
  g_assert_cmpstr (sutra_chat_session_reply (fresh), ==, reply2);
  /* clear: the conversation is gone, the next prompt is the first turn's again */
  sutra_chat_session_clear (s);
  g_assert_cmpuint (sutra_chat_session_n_messages (s), ==, 0);
  test_assert_ok (sutra_chat_session_send (s, "Hello there", &p, NULL, NULL, &r3, &err), &err);
  g_assert_cmpstr (sutra_chat_session_reply (s), ==, reply1);
  sutra_chat_session_free (s);
  sutra_chat_session_free (fresh);
  /* the model was borrowed: still usable */
  SutraBatch b = { 1, 2, (int[]) { 1, 2 }, NULL, NULL };
  float *lg;
  test_assert_ok (sutra_model_forward (f.m, &b, false, &lg, &err), &err);
  g_free (reply1);
  g_free (reply2);
  fx_close (&f);
}

static void
test_adapter_switch (void)
{
  Fx f;
  if (!fx_open (&f))
    return;
  SutraError err;
  SutraChatSessionOptions o;
  sutra_chat_session_options_init (&o);
  /* no adapter yet: the base reply */
  SutraChatSession *plain;
  test_assert_ok (sutra_chat_session_new (f.m, f.tok, f.tmpl, &o, &plain, &err), &err);
  SutraGenParams p = greedy (12);
  test_assert_ok (sutra_chat_session_send (plain, "Tell me a story", &p, NULL, NULL, NULL, &err), &err);
  char *base = g_strdup (sutra_chat_session_reply (plain));
  sutra_chat_session_free (plain);
  /* an adapter with non-zero B (PEFT starts B at zero, which would change nothing) */
  SutraLoraConfig lc = { .r = 4, .alpha = 64.f, .all_linear = true };
  int n;
  test_assert_ok (sutra_lora_attach (f.m, &lc, 5, &n, &err), &err);
  for (size_t i = 0; i < f.m->n_linears; i++) {
    SutraLora *a = f.m->linears[i]->lora;
    if (a)
      test_fill_uniform (a->B, (size_t) f.m->linears[i]->out * a->r, -0.5f, 0.5f, (guint32) i + 1);
  }
  SutraChatSession *tuned, *off;
  test_assert_ok (sutra_chat_session_new (f.m, f.tok, f.tmpl, &o, &tuned, &err), &err);
  o.use_adapter = false;
  test_assert_ok (sutra_chat_session_new (f.m, f.tok, f.tmpl, &o, &off, &err), &err);
  test_assert_ok (sutra_chat_session_send (tuned, "Tell me a story", &p, NULL, NULL, NULL, &err), &err);
  test_assert_ok (sutra_chat_session_send (off, "Tell me a story", &p, NULL, NULL, NULL, &err), &err);
  g_assert_cmpstr (sutra_chat_session_reply (off), ==, base);
  g_assert_cmpstr (sutra_chat_session_reply (tuned), !=, base);
  /* the model's switch is restored after each reply (the trainer's adapter stays on) */
  g_assert_true (f.m->linears[0]->lora->enabled);
  /* switching a session drops its state (it was computed with the other weights) */
  char *tuned1 = g_strdup (sutra_chat_session_reply (tuned));
  sutra_chat_session_clear (tuned);
  sutra_chat_session_use_adapter (tuned, false);
  SutraGenResult r;
  test_assert_ok (sutra_chat_session_send (tuned, "Tell me a story", &p, NULL, NULL, &r, &err), &err);
  g_assert_cmpint (r.n_reused, ==, 0);
  g_assert_cmpstr (sutra_chat_session_reply (tuned), ==, base);
  sutra_chat_session_use_adapter (tuned, true);
  sutra_chat_session_clear (tuned);
  test_assert_ok (sutra_chat_session_send (tuned, "Tell me a story", &p, NULL, NULL, &r, &err), &err);
  g_assert_cmpstr (sutra_chat_session_reply (tuned), ==, tuned1);
  sutra_chat_session_free (tuned);
  sutra_chat_session_free (off);
  sutra_lora_config_clear (&lc);
  g_free (tuned1);
  g_free (base);
  fx_close (&f);
}

static bool
stop_now (void *user, int id, const char *text, size_t len)
{
  (void) user; (void) id; (void) text; (void) len;
  return false;
}

static void
test_errors_take_back_message (void)
{
  Fx f;
  if (!fx_open (&f))
    return;
  SutraError err;
  SutraChatSessionOptions o;
  sutra_chat_session_options_init (&o);
  o.max_ctx = 16;                                  /* too small for any rendered prompt */
  SutraChatSession *s;
  test_assert_ok (sutra_chat_session_new (f.m, f.tok, f.tmpl, &o, &s, &err), &err);
  SutraGenParams p = greedy (4);
  g_assert_cmpint (sutra_chat_session_send (s, "A message long enough to overflow a context of sixteen tokens, which it does by a wide margin",
                                            &p, NULL, NULL, NULL, &err), ==, SUTRA_ERR_INVALID);
  g_assert_cmpuint (sutra_chat_session_n_messages (s), ==, 0);
  sutra_chat_session_free (s);
  /* a callback stopping at the first token still records the one-token reply */
  o.max_ctx = 0;
  test_assert_ok (sutra_chat_session_new (f.m, f.tok, f.tmpl, &o, &s, &err), &err);
  SutraGenResult r;
  test_assert_ok (sutra_chat_session_send (s, "Hi", &p, stop_now, NULL, &r, &err), &err);
  g_assert_cmpint (r.reason, ==, SUTRA_STOP_CALLBACK);
  g_assert_cmpint (r.n_generated, ==, 1);
  g_assert_cmpuint (sutra_chat_session_n_messages (s), ==, 2);
  sutra_chat_session_free (s);
  fx_close (&f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/chat-session/eot-token", test_eot_token);
  g_test_add_func ("/engine/chat-session/turns-reuse-state", test_turns_reuse_state);
  g_test_add_func ("/engine/chat-session/adapter-switch", test_adapter_switch);
  g_test_add_func ("/engine/chat-session/errors-take-back-message", test_errors_take_back_message);
  return g_test_run ();
}
