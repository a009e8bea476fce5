/* sutra-generate.c: the generation loop (prefill, decode, stop rules, streaming text,
 * cancellation), generation_config.json, and the stop-string matcher. See sutra-generate.h. */
#include "sutra-generate.h"
#include "sutra-fsutil.h"
#include "sutra-json.h"
#include "sutra-tokenizer.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFILL_CHUNK 64          /* tokens per prefill step (cancellation is checked between) */
#define RNN_DEFAULT_CTX 4096      /* history length for models without a context limit */
#define DEFAULT_MAX_NEW 256

static double
now_s (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + (double) t.tv_nsec * 1e-9;
}

const char *
sutra_stop_reason_name (SutraStopReason r)
{
  static const char *names[] = { "none", "eos", "stop_string", "max_tokens", "context",
                                 "cancelled", "callback" };
  return (unsigned) r < sizeof names / sizeof names[0] ? names[r] : "unknown";
}

/* ------------------------------------------------------------------------------------------ */
/* generation_config.json                                                                     */
/* ------------------------------------------------------------------------------------------ */

SutraStatus
sutra_gen_config_load (const char *dir, const SutraModelConfig *mcfg, const SutraTokenizer *tok,
                       SutraGenConfig *out, SutraError *err)
{
  SutraGenConfig c;
  memset (&c, 0, sizeof c);
  sutra_sampler_params_init (&c.sampler);
  c.bos_id = mcfg ? mcfg->bos_token_id : -1;
  c.pad_id = mcfg ? mcfg->pad_token_id : -1;
  bool have_eos = false;
  char *path = dir ? sutra_path_join (dir, "generation_config.json") : NULL;
  if (path && sutra_is_file (path)) {
    json_object *o;
    SutraStatus st = sutra_json_load (path, SUTRA_JSON_OBJECT, &o, err);
    if (st) {
      free (path);
      return st;
    }
    const char *w = "generation_config.json";
    bool ds = false;
    double t = 1, tp = 1, mp = 0, rp = 1;
    int64_t tk = 50, mnt = 0, ml = 0, bos = c.bos_id, pad = c.pad_id;
    if (!(st = sutra_json_get_bool (o, w, "do_sample", false, &ds, err)) &&
        !(st = sutra_json_get_double (o, w, "temperature", 1.0, &t, err)) &&
        !(st = sutra_json_get_double (o, w, "top_p", 1.0, &tp, err)) &&
        !(st = sutra_json_get_double (o, w, "min_p", 0.0, &mp, err)) &&
        !(st = sutra_json_get_double (o, w, "repetition_penalty", 1.0, &rp, err)) &&
        !(st = sutra_json_get_int (o, w, "top_k", 50, &tk, err)) &&
        !(st = sutra_json_get_int (o, w, "max_new_tokens", 0, &mnt, err)) &&
        !(st = sutra_json_get_int (o, w, "max_length", 0, &ml, err)) &&
        !(st = sutra_json_get_int (o, w, "bos_token_id", c.bos_id, &bos, err)) &&
        !(st = sutra_json_get_int (o, w, "pad_token_id", c.pad_id, &pad, err))) {
      /* eos_token_id: an int or a list of ints */
      json_object *e = json_object_object_get (o, "eos_token_id");
      if (e && json_object_is_type (e, json_type_int)) {
        c.eos_ids[c.n_eos++] = json_object_get_int (e);
        have_eos = true;
      } else if (e && json_object_is_type (e, json_type_array)) {
        size_t n = json_object_array_length (e);
        for (size_t i = 0; i < n && !st; i++) {
          json_object *x = json_object_array_get_idx (e, i);
          if (!json_object_is_type (x, json_type_int))
            st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: eos_token_id[%zu] is not an integer",
                                  path, i);
          else if (c.n_eos < SUTRA_MAX_EOS)
            c.eos_ids[c.n_eos++] = json_object_get_int (x);
        }
        have_eos = !st;
      } else if (e && !json_object_is_type (e, json_type_null)) {
        st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: eos_token_id: expected an integer or a "
                              "list", path);
      }
    }
    json_object_put (o);
    if (st) {
      if (err && !strstr (err->message, "generation_config"))
        sutra_error_prefix (err, "%s", path);
      free (path);
      return st;
    }
    c.sampler.do_sample = ds;
    c.sampler.temperature = (float) t;
    c.sampler.top_p = (float) tp;
    c.sampler.min_p = (float) mp;
    c.sampler.repetition_penalty = (float) rp;
    c.sampler.top_k = tk < 0 ? 0 : tk > 1 << 30 ? 1 << 30 : (int) tk;
    c.max_new_tokens = mnt > 0 ? (int) (mnt < 1 << 30 ? mnt : 1 << 30)
                               : ml > 1 ? (int) (ml - 1 < 1 << 30 ? ml - 1 : 1 << 30) : 0;
    c.bos_id = (int) bos;
    c.pad_id = (int) pad;
    if ((st = sutra_sampler_params_check (&c.sampler, err))) {
      sutra_error_prefix (err, "%s", path);
      free (path);
      return st;
    }
  }
  free (path);
  if (!have_eos && mcfg && mcfg->n_eos > 0) {
    for (int i = 0; i < mcfg->n_eos; i++)
      c.eos_ids[c.n_eos++] = mcfg->eos_token_ids[i];
    have_eos = true;
  }
  if (!have_eos && tok) {
    int32_t e = sutra_tokenizer_role_id (tok, SUTRA_TOK_EOS);
    if (e >= 0)
      c.eos_ids[c.n_eos++] = e;
  }
  *out = c;
  return SUTRA_OK;
}

void
sutra_gen_params_init (SutraGenParams *p, const SutraGenConfig *cfg)
{
  memset (p, 0, sizeof *p);
  if (cfg) {
    p->sampler = cfg->sampler;
    p->max_new_tokens = cfg->max_new_tokens > 0 ? cfg->max_new_tokens : DEFAULT_MAX_NEW;
    memcpy (p->eos_ids, cfg->eos_ids, sizeof p->eos_ids);
    p->n_eos = cfg->n_eos;
  } else {
    sutra_sampler_params_init (&p->sampler);
    p->max_new_tokens = DEFAULT_MAX_NEW;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* stop strings                                                                               */
/* ------------------------------------------------------------------------------------------ */

struct SutraStopMatcher {
  char **stop;
  size_t *len, n;
  char *buf;                /* held text, then scratch for what is emitted */
  size_t hold, cap;         /* bytes held */
  char *out;                /* emitted text of the last push */
  size_t out_cap;
};

SutraStopMatcher *
sutra_stop_matcher_new (const char *const *stop, size_t n_stop)
{
  SutraStopMatcher *s = sutra_xcalloc (1, sizeof *s);
  s->stop = sutra_xcalloc (n_stop + 1, sizeof (char *));
  s->len = sutra_xcalloc (n_stop + 1, sizeof (size_t));
  size_t maxlen = 0;
  for (size_t i = 0; i < n_stop; i++) {
    if (!stop[i] || !stop[i][0])
      continue;                            /* an empty stop string would stop at once: ignored */
    s->stop[s->n] = sutra_xstrdup (stop[i]);
    s->len[s->n] = strlen (stop[i]);
    maxlen = s->len[s->n] > maxlen ? s->len[s->n] : maxlen;
    s->n++;
  }
  s->cap = 256 + 2 * maxlen;
  s->buf = sutra_xmalloc (s->cap);
  s->out_cap = s->cap;
  s->out = sutra_xmalloc (s->out_cap);
  return s;
}

void
sutra_stop_matcher_free (SutraStopMatcher *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    free (s->stop[i]);
  free (s->stop);
  free (s->len);
  free (s->buf);
  free (s->out);
  free (s);
}

static void
grow (char **p, size_t *cap, size_t need)
{
  if (need <= *cap)
    return;
  while (*cap < need)
    *cap *= 2;
  *p = sutra_xrealloc (*p, *cap);
}

bool
sutra_stop_matcher_push (SutraStopMatcher *s, const char *text, size_t len, const char **out,
                         size_t *out_len)
{
  grow (&s->buf, &s->cap, s->hold + len + 1);
  memcpy (s->buf + s->hold, text, len);
  size_t n = s->hold + len;
  /* earliest complete stop string in the held text + the new piece */
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < s->n; i++) {
    if (s->len[i] > n)
      continue;
    void *hit = memmem (s->buf, n, s->stop[i], s->len[i]);
    if (hit && (size_t) ((char *) hit - s->buf) < best)
      best = (size_t) ((char *) hit - s->buf);
  }
  size_t emit;
  bool matched = best != SIZE_MAX;
  if (matched) {
    emit = best;
  } else {
    /* hold back the longest suffix that is a proper prefix of some stop string */
    size_t keep = 0;
    for (size_t i = 0; i < s->n; i++) {
      size_t lim = s->len[i] - 1 < n ? s->len[i] - 1 : n;
      for (size_t k = lim; k > keep; k--)
        if (memcmp (s->buf + n - k, s->stop[i], k) == 0) {
          keep = k;
          break;
        }
    }
    emit = n - keep;
  }
  grow (&s->out, &s->out_cap, emit + 1);
  memcpy (s->out, s->buf, emit);
  s->out[emit] = 0;
  if (matched) {
    s->hold = 0;
  } else {
    memmove (s->buf, s->buf + emit, n - emit);
    s->hold = n - emit;
  }
  *out = s->out;
  *out_len = emit;
  return matched;
}

const char *
sutra_stop_matcher_flush (SutraStopMatcher *s, size_t *len)
{
  grow (&s->buf, &s->cap, s->hold + 1);
  s->buf[s->hold] = 0;
  *len = s->hold;
  s->hold = 0;
  return s->buf;
}

/* ------------------------------------------------------------------------------------------ */
/* generator                                                                                  */
/* ------------------------------------------------------------------------------------------ */

struct SutraGenerator {
  SutraModel *m;
  const SutraTokenizer *tok;
  SutraGenState *st;
  int ctx, V;
  int *hist, n_hist;        /* [ctx] ids the state has consumed, in order */
  bool hist_valid;          /* false: the state must be reset before use */
  int *out, n_out;          /* [ctx] ids generated by the last run */
  float *logits;            /* [V] */
  SutraSampler *sampler;
  char *text;               /* emitted text of the last run */
  size_t text_len, text_cap;
  atomic_bool cancel;
};

SutraStatus
sutra_generator_new (SutraModel *m, const SutraTokenizer *tok, int max_ctx, SutraGenerator **out,
                     SutraError *err)
{
  int limit = m->cfg.max_position_embeddings;
  int ctx = max_ctx > 0 && (limit <= 0 || max_ctx <= limit) ? max_ctx
            : limit > 0 ? limit : RNN_DEFAULT_CTX;
  SutraGenerator *g = sutra_xcalloc (1, sizeof *g);
  g->m = m;
  g->tok = tok;
  g->ctx = ctx;
  g->V = m->cfg.vocab_size;
  SutraStatus st = m->vt->state_new (m, ctx, &g->st, err);
  if (st) {
    free (g);
    return st;
  }
  SutraSamplerParams sp;
  sutra_sampler_params_init (&sp);
  if ((st = sutra_sampler_new (g->V, &sp, &g->sampler, err))) {
    m->vt->state_free (g->st);
    free (g);
    return st;
  }
  g->hist = sutra_xmalloc (sizeof (int) * (size_t) ctx);
  g->out = sutra_xmalloc (sizeof (int) * (size_t) ctx);
  g->logits = sutra_try_alloc (sizeof (float) * (size_t) g->V, "logits", err);
  if (!g->logits) {
    sutra_generator_free (g);
    return SUTRA_ERR_NOMEM;
  }
  g->text_cap = 4096;
  g->text = sutra_xmalloc (g->text_cap);
  g->text[0] = 0;
  atomic_init (&g->cancel, false);
  *out = g;
  return SUTRA_OK;
}

void
sutra_generator_free (SutraGenerator *g)
{
  if (!g)
    return;
  if (g->st)
    g->m->vt->state_free (g->st);
  sutra_sampler_free (g->sampler);
  free (g->hist);
  free (g->out);
  sutra_aligned_free (g->logits);
  free (g->text);
  free (g);
}

int sutra_generator_context (const SutraGenerator *g) { return g->ctx; }

const int *
sutra_generator_tokens (const SutraGenerator *g, int *n)
{
  *n = g->n_out;
  return g->out;
}

const char *
sutra_generator_text (const SutraGenerator *g, size_t *len)
{
  if (len)
    *len = g->text_len;
  return g->text;
}

void
sutra_generator_cancel (SutraGenerator *g)
{
  atomic_store (&g->cancel, true);
}

void
sutra_generator_reset (SutraGenerator *g)
{
  g->hist_valid = false;
  g->n_hist = 0;
}

static void
text_append (SutraGenerator *g, const char *s, size_t n)
{
  grow (&g->text, &g->text_cap, g->text_len + n + 1);
  memcpy (g->text + g->text_len, s, n);
  g->text_len += n;
  g->text[g->text_len] = 0;
}

/* Feeds ids to the state in chunks (checking cancellation between them); logits of the last. */
static SutraStatus
feed (SutraGenerator *g, const int *ids, int n, bool *cancelled, SutraError *err)
{
  for (int off = 0; off < n; off += PREFILL_CHUNK) {
    if (atomic_load (&g->cancel)) {
      *cancelled = true;
      return SUTRA_OK;
    }
    int k = n - off < PREFILL_CHUNK ? n - off : PREFILL_CHUNK;
    bool last = off + k == n;
    SutraStatus st = g->m->vt->step (g->m, g->st, ids + off, k, last ? g->logits : NULL, false, err);
    if (st) {
      g->hist_valid = false;           /* the state may be half-updated */
      return st;
    }
    memcpy (g->hist + g->n_hist, ids + off, sizeof (int) * (size_t) k);
    g->n_hist += k;
  }
  return SUTRA_OK;
}

static bool
is_eos (const SutraGenParams *p, int id)
{
  for (int i = 0; i < p->n_eos; i++)
    if (p->eos_ids[i] == id)
      return true;
  return false;
}

SutraStatus
sutra_generator_run (SutraGenerator *g, const int *prompt, int n_prompt, const SutraGenParams *p,
                     SutraGenTokenFunc cb, void *user, SutraGenResult *res, SutraError *err)
{
  atomic_store (&g->cancel, false);
  g->n_out = 0;
  g->text_len = 0;
  g->text[0] = 0;
  SutraGenResult r = { .n_prompt = n_prompt };
  if (n_prompt <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "generation needs a prompt of at least one "
                            "token (add the BOS token for an empty text)");
  if (p->max_new_tokens <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "max_new_tokens must be positive, got %d",
                            p->max_new_tokens);
  if (n_prompt >= g->ctx)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "the prompt has %d tokens but the context holds "
                            "%d (including at least one new token); shorten the prompt",
                            n_prompt, g->ctx);
  for (int i = 0; i < n_prompt; i++)
    if (prompt[i] < 0 || prompt[i] >= g->V)
      return sutra_error_set (err, SUTRA_ERR_INVALID, "prompt token %d at position %d is outside "
                              "the vocabulary (%d)", prompt[i], i, g->V);
  if (p->n_stop > 0 && !g->tok)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "stop strings need a tokenizer");
  SutraStatus st = sutra_sampler_params_check (&p->sampler, err);
  if (st)
    return st;
  sutra_sampler_reset (g->sampler, &p->sampler);
  sutra_sampler_accept_prompt (g->sampler, prompt, n_prompt);

  /* reuse the state for the longest common prefix of what it holds and the prompt (at least
   * one prompt token is always fed, for its logits): when the prompt extends the history
   * nothing is recomputed; a shorter common prefix needs a state that can rewind (KV cache) */
  double t0 = now_s ();
  int common = -1;                     /* -1: the state is not known to match g->hist */
  if (g->hist_valid && g->m->vt->state_pos (g->st) == g->n_hist) {
    int lim = g->n_hist < n_prompt - 1 ? g->n_hist : n_prompt - 1;
    common = 0;
    while (common < lim && g->hist[common] == prompt[common])
      common++;
  }
  if (common < g->n_hist || common < 0) {
    if (common > 0 && g->m->vt->state_truncate && g->m->vt->state_truncate (g->st, common))
      g->n_hist = common;
    else {
      g->m->vt->state_reset (g->st);
      g->n_hist = 0;
    }
  }
  g->hist_valid = true;
  r.n_reused = g->n_hist;
  bool cancelled = false;
  st = feed (g, prompt + g->n_hist, n_prompt - g->n_hist, &cancelled, err);
  r.prefill_s = now_s () - t0;
  if (st)
    return st;
  if (cancelled) {
    g->hist_valid = false;             /* stopped mid-prompt: the state is of no use later */
    r.reason = SUTRA_STOP_CANCELLED;
    if (res)
      *res = r;
    return SUTRA_OK;
  }

  SutraDetokenizer *dt = NULL;
  SutraStopMatcher *sm = NULL;
  if (g->tok) {
    dt = sutra_detokenizer_new (g->tok, p->keep_special ? 0 : SUTRA_DECODE_SKIP_SPECIAL);
    sm = sutra_stop_matcher_new (p->stop, p->n_stop);
  }
  double t1 = now_s ();
  SutraStopReason reason = SUTRA_STOP_NONE;
  while (reason == SUTRA_STOP_NONE) {
    if (atomic_load (&g->cancel)) {
      reason = SUTRA_STOP_CANCELLED;
      break;
    }
    if (p->on_logits)
      p->on_logits (p->logits_user, g->logits, g->n_hist);
    int id = sutra_sampler_sample (g->sampler, g->logits);
    sutra_sampler_accept (g->sampler, id);
    g->out[g->n_out++] = id;
    /* text that became safe to show */
    const char *piece = "";
    size_t plen = 0;
    if (dt) {
      size_t dl;
      const char *d = sutra_detokenizer_feed (dt, id, &dl);
      if (sutra_stop_matcher_push (sm, d, dl, &piece, &plen))
        reason = SUTRA_STOP_STRING;
      text_append (g, piece, plen);
    }
    if (cb && !cb (user, id, piece, plen) && reason == SUTRA_STOP_NONE)
      reason = SUTRA_STOP_CALLBACK;
    if (reason != SUTRA_STOP_NONE)
      break;
    if (!p->ignore_eos && is_eos (p, id))
      reason = SUTRA_STOP_EOS;
    else if (g->n_out >= p->max_new_tokens)
      reason = SUTRA_STOP_MAX_TOKENS;
    else if (g->n_hist >= g->ctx)      /* no room for the token just sampled */
      reason = SUTRA_STOP_CONTEXT;
    else if (atomic_load (&g->cancel))
      reason = SUTRA_STOP_CANCELLED;
    if (reason != SUTRA_STOP_NONE)
      break;
    /* decode: feed the token, get the next logits */
    if ((st = g->m->vt->step (g->m, g->st, &id, 1, g->logits, false, err))) {
      g->hist_valid = false;
      break;
    }
    g->hist[g->n_hist++] = id;
  }
  r.decode_s = now_s () - t1;
  /* the rest of the text: the detokenizer's tail and what the matcher held back */
  if (dt && !st && reason != SUTRA_STOP_STRING) {
    size_t dl, hl;
    const char *d = sutra_detokenizer_flush (dt, &dl);
    const char *piece;
    size_t plen;
    bool hit = sutra_stop_matcher_push (sm, d, dl, &piece, &plen);
    text_append (g, piece, plen);
    if (!hit) {
      const char *h = sutra_stop_matcher_flush (sm, &hl);
      text_append (g, h, hl);
      /* the final callback carries everything not shown yet */
      size_t tail = plen + hl;
      if (cb && tail > 0)
        cb (user, -1, g->text + g->text_len - tail, tail);
    } else {
      if (cb && plen > 0)
        cb (user, -1, piece, plen);
      reason = reason == SUTRA_STOP_NONE ? SUTRA_STOP_STRING : reason;
    }
  }
  sutra_detokenizer_free (dt);
  sutra_stop_matcher_free (sm);
  if (st)
    return st;
  r.reason = reason;
  r.n_generated = g->n_out;
  if (res)
    *res = r;
  return SUTRA_OK;
}
