/* sutra-tokenizer.c: loading a tokenizer from a file or model folder, vocabulary and
 * special-token queries, the GGUF export accessors and the encode benchmark.
 * The pipeline itself lives in sutra-tok-*.c, sutra-normalizer.c, sutra-pretok.c and the
 * model files; see sutra-tokenizer-private.h for the data layout. */
#include "sutra-tokenizer-private.h"
#include "sutra-fsutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TOKENIZER_FILE ((size_t) 1 << 30)

SutraStatus
sutra_tokenizer_load_json (const char *json, size_t len, const char *config, size_t config_len,
                           const char *name, SutraTokenizer **out, SutraError *err)
{
  SUTRA_ASSERT (out && (json || len == 0));
  SutraTokenizer *tok = sutra_xcalloc (1, sizeof *tok);
  tok->name = sutra_xstrdup (name ? name : "tokenizer.json");
  SutraStatus st = sutra_tok_build_from_json (tok, json ? json : "", len, config, config_len, err);
  if (st != SUTRA_OK) {
    sutra_tokenizer_free (tok);
    return st;
  }
  *out = tok;
  return SUTRA_OK;
}

SutraStatus
sutra_tokenizer_load (const char *path, SutraTokenizer **out, SutraError *err)
{
  SUTRA_ASSERT (path && out);
  char *json_path, *dir;
  if (sutra_is_dir (path)) {
    json_path = sutra_path_join (path, "tokenizer.json");
    dir = sutra_xstrdup (path);
  } else {
    json_path = sutra_xstrdup (path);
    dir = sutra_path_dirname (path);
  }
  SutraStatus st;
  char *json = NULL, *cfg = NULL;
  size_t jl = 0, cl = 0;
  if (!sutra_path_exists (json_path)) {
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: no such file%s", json_path,
                          sutra_is_dir (path) ? " (the folder has no tokenizer.json)" : "");
    goto out;
  }
  if ((st = sutra_read_file (json_path, MAX_TOKENIZER_FILE, &json, &jl, err)))
    goto out;
  char *cfg_path = sutra_path_join (dir, "tokenizer_config.json");
  if (sutra_is_file (cfg_path))
    st = sutra_read_file (cfg_path, MAX_TOKENIZER_FILE, &cfg, &cl, err);
  free (cfg_path);
  if (st)
    goto out;
  st = sutra_tokenizer_load_json (json, jl, cfg, cl, json_path, out, err);
out:
  free (json);
  free (cfg);
  free (json_path);
  free (dir);
  return st;
}

void
sutra_tokenizer_free (SutraTokenizer *tok)
{
  if (!tok)
    return;
  sutra_tok_destroy (tok);
  free (tok);
}

/* ---------------------------------------------------------------------------------------
 * Vocabulary */

size_t
sutra_tokenizer_vocab_size (const SutraTokenizer *tok)
{
  return tok->n_vocab;
}

const char *
sutra_tokenizer_id_to_token (const SutraTokenizer *tok, int32_t id)
{
  if (id < 0 || (size_t) id >= tok->n_vocab)
    return NULL;
  if (tok->added_by_id[id] >= 0)
    return tok->added[tok->added_by_id[id]].content;
  if ((size_t) id < tok->model.n_ids)
    return tok->model.vocab_r[id];
  return NULL;
}

int32_t
sutra_tokenizer_token_to_id (const SutraTokenizer *tok, const char *token, size_t len)
{
  int32_t ai = sutra_strmap_get (&tok->added_map, token, len);
  if (ai >= 0)
    return tok->added[ai].id;
  return sutra_strmap_get (&tok->model.vocab, token, len);
}

bool
sutra_tokenizer_is_special (const SutraTokenizer *tok, int32_t id)
{
  if (id < 0 || (size_t) id >= tok->n_vocab || tok->added_by_id[id] < 0)
    return false;
  return tok->added[tok->added_by_id[id]].special;
}

int32_t
sutra_tokenizer_role_id (const SutraTokenizer *tok, SutraTokRole role)
{
  return (unsigned) role < 4 ? tok->role_id[role] : -1;
}

const char *
sutra_tokenizer_role_token (const SutraTokenizer *tok, SutraTokRole role)
{
  return (unsigned) role < 4 ? tok->role_str[role] : NULL;
}

bool
sutra_tokenizer_adds_bos (const SutraTokenizer *tok)
{
  return tok->adds_bos;
}

bool
sutra_tokenizer_adds_eos (const SutraTokenizer *tok)
{
  return tok->adds_eos;
}

bool
sutra_tokenizer_cleanup_default (const SutraTokenizer *tok)
{
  return tok->cleanup_default;
}

/* ---------------------------------------------------------------------------------------
 * Export */

SutraTokModelType
sutra_tokenizer_model_type (const SutraTokenizer *tok)
{
  return tok->model.type;
}

bool
sutra_tokenizer_is_byte_level (const SutraTokenizer *tok)
{
  return tok->byte_level;
}

size_t
sutra_tokenizer_n_merges (const SutraTokenizer *tok)
{
  return tok->model.type == SUTRA_TOK_MODEL_BPE ? tok->model.n_merges : 0;
}

const char *
sutra_tokenizer_merge (const SutraTokenizer *tok, size_t i)
{
  return i < sutra_tokenizer_n_merges (tok) ? tok->model.merge_strs[i] : NULL;
}

float
sutra_tokenizer_token_score (const SutraTokenizer *tok, int32_t id)
{
  const SutraTokModel *m = &tok->model;
  if (id < 0 || (size_t) id >= m->n_ids || !m->vocab_r[id])
    return 0.0f;
  if (m->type == SUTRA_TOK_MODEL_UNIGRAM)
    return (float) m->scores[id];
  if (m->type == SUTRA_TOK_MODEL_BPE && m->rank_score)
    return m->rank_score[id];
  return 0.0f;
}

SutraTokenType
sutra_tokenizer_token_type (const SutraTokenizer *tok, int32_t id)
{
  const SutraTokModel *m = &tok->model;
  if (id < 0 || (size_t) id >= tok->n_vocab)
    return SUTRA_TOKEN_TYPE_UNUSED;
  if (id == tok->role_id[SUTRA_TOK_UNK] || (m->type == SUTRA_TOK_MODEL_UNIGRAM && id == m->unk_id))
    return SUTRA_TOKEN_TYPE_UNKNOWN;
  const char *s = sutra_tokenizer_id_to_token (tok, id);
  if (!s)
    return SUTRA_TOKEN_TYPE_UNUSED;
  if (m->byte_fallback) {
    for (int b = 0; b < 256; b++)
      if (m->byte_ids[b] == id)
        return SUTRA_TOKEN_TYPE_BYTE;
  }
  if (tok->added_by_id[id] >= 0)
    return tok->added[tok->added_by_id[id]].special ? SUTRA_TOKEN_TYPE_CONTROL
                                                    : SUTRA_TOKEN_TYPE_USER_DEFINED;
  return SUTRA_TOKEN_TYPE_NORMAL;
}

size_t
sutra_tokenizer_n_pretok_regexes (const SutraTokenizer *tok)
{
  size_t n = 0;
  for (size_t i = 0; i < tok->n_steps; i++)
    if (tok->steps[i].kind == SUTRA_STEP_SPLIT && tok->steps[i].src == SUTRA_SRC_REGEX)
      n++;
  return n;
}

const char *
sutra_tokenizer_pretok_regex (const SutraTokenizer *tok, size_t k)
{
  for (size_t i = 0; i < tok->n_steps; i++)
    if (tok->steps[i].kind == SUTRA_STEP_SPLIT && tok->steps[i].src == SUTRA_SRC_REGEX
        && k-- == 0)
      return tok->regex_sources[tok->steps[i].pat.slot];
  return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Benchmark */

static double
now_s (clockid_t clk)
{
  struct timespec ts;
  clock_gettime (clk, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

SutraStatus
sutra_tokenizer_bench (const SutraTokenizer *tok, const char *text, size_t len, size_t chunk,
                       double min_seconds, SutraTokBenchResult *out, SutraError *err)
{
  /* chunk boundaries: after a newline at or before `chunk` bytes, else at a char start */
  size_t nb = 0, cap = 16;
  size_t *bounds = sutra_xmalloc (cap * sizeof *bounds);
  bounds[nb++] = 0;
  size_t pos = 0;
  while (pos < len) {
    size_t end = chunk ? pos + chunk : len;
    if (end >= len)
      end = len;
    else {
      size_t e = end;
      while (e > pos && text[e - 1] != '\n')
        e--;
      if (e > pos)
        end = e;
      else
        while (end < len && ((unsigned char) text[end] & 0xC0) == 0x80)
          end++;
    }
    if (nb == cap) {
      cap *= 2;
      bounds = sutra_xrealloc (bounds, cap * sizeof *bounds);
    }
    bounds[nb++] = end;
    pos = end;
  }
  SutraTokBenchResult r = { 0 };
  r.bytes = len;
  double t0 = now_s (CLOCK_MONOTONIC), t = t0, c0 = now_s (CLOCK_THREAD_CPUTIME_ID);
  SutraStatus st = SUTRA_OK;
  do {
    size_t tokens = 0;
    for (size_t i = 0; i + 1 < nb && st == SUTRA_OK; i++) {
      SutraEncoding enc = { 0 };
      st = sutra_tokenizer_encode (tok, text + bounds[i], bounds[i + 1] - bounds[i], 0, &enc, err);
      tokens += enc.n;
      sutra_encoding_clear (&enc);
    }
    r.tokens = tokens;
    r.passes++;
    t = now_s (CLOCK_MONOTONIC);
  } while (st == SUTRA_OK && t - t0 < min_seconds);
  free (bounds);
  if (st != SUTRA_OK)
    return st;
  r.seconds = t - t0;
  r.cpu_seconds = now_s (CLOCK_THREAD_CPUTIME_ID) - c0;
  r.mb_per_s = r.seconds > 0 ? (double) r.bytes * r.passes / 1e6 / r.seconds : 0.0;
  *out = r;
  return SUTRA_OK;
}
