/* sutra-tok-load.c: tokenizer.json (serialization "1.0" of HF tokenizers) and
 * tokenizer_config.json into the structures of sutra-tokenizer-private.h.
 *
 * Follows the serde deserializers in tokenizers/src: untyped "model" objects are inferred
 * (merges -> BPE, a list vocab -> Unigram, else WordPiece); BPE merges are "a b" strings
 * (lines starting "#version" skipped) or ["a", "b"] pairs; added tokens get their ids the
 * way AddedVocabulary::add_tokens assigns them (the model's id when the content is in
 * the vocab, else the next id after the model's vocab size), normalized ones are matched
 * by their normalized form; Metaspace's legacy add_prefix_space maps to prepend_scheme.
 * Anything we do not implement is a load error naming it, never a silent difference. */
#include "sutra-tok-json-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Model */

static SutraStatus
vocab_set (Ld *l, SutraTokModel *m, const char *s, size_t n, int64_t id, const char *path)
{
  if (id < 0 || id >= SUTRA_TOK_MAX_ID)
    return tj_bad (l, SUTRA_ERR_FORMAT, path, "token '%.*s' has id %lld (allowed 0..%d)",
                   (int) (n > 60 ? 60 : n), s, (long long) id, SUTRA_TOK_MAX_ID - 1);
  if ((size_t) id >= m->n_ids) {
    size_t nn = (size_t) id + 1;
    if (nn > m->vocab_cap) {
      size_t cap = m->vocab_cap ? m->vocab_cap : 1024;
      while (cap < nn)
        cap *= 2;
      m->vocab_r = sutra_xrealloc (m->vocab_r, cap * sizeof *m->vocab_r);
      m->vocab_r_len = sutra_xrealloc (m->vocab_r_len, cap * sizeof *m->vocab_r_len);
      for (size_t i = m->vocab_cap; i < cap; i++) {
        m->vocab_r[i] = NULL;
        m->vocab_r_len[i] = 0;
      }
      m->vocab_cap = cap;
    }
    m->n_ids = nn;
  }
  sutra_strmap_put (&m->vocab, s, n, (int32_t) id);
  m->vocab_r[id] = (char *) sutra_strmap_key (&m->vocab, s, n);
  m->vocab_r_len[id] = (uint32_t) n;
  return SUTRA_OK;
}

static SutraStatus
load_bpe_merges (Ld *l, json_object *model)
{
  SutraTokModel *m = &l->tok->model;
  json_object *arr;
  SutraStatus st = tj_array (l, model, "merges", "model", &arr);
  if (st)
    return st;
  size_t n = json_object_array_length (arr);
  sutra_u64map_init (&m->merges, n + 16);
  m->merge_strs = sutra_xmalloc ((n + 1) * sizeof *m->merge_strs);
  m->rank_score = sutra_xcalloc (m->n_ids ? m->n_ids : 1, sizeof *m->rank_score);
  char *buf = NULL;
  size_t bcap = 0;
  size_t rank = 0;
  for (size_t i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx (arr, i);
    char path[64];
    snprintf (path, sizeof path, "model.merges[%zu]", i);
    const char *a, *b;
    size_t an, bn;
    if (e && json_object_is_type (e, json_type_string)) {
      const char *s;
      size_t sn;
      if ((st = tj_str_of (l, e, path, &s, &sn)))
        goto out;
      if (sn >= 8 && memcmp (s, "#version", 8) == 0)
        continue;
      const char *sp = memchr (s, ' ', sn);
      if (!sp || memchr (sp + 1, ' ', sn - (size_t) (sp + 1 - s))) {
        st = tj_bad (l, SUTRA_ERR_FORMAT, path, "merge '%.*s' is not two tokens separated by one space",
                     (int) (sn > 60 ? 60 : sn), s);
        goto out;
      }
      a = s;
      an = (size_t) (sp - s);
      b = sp + 1;
      bn = sn - an - 1;
    } else if (e && json_object_is_type (e, json_type_array) && json_object_array_length (e) == 2) {
      if ((st = tj_str_of (l, json_object_array_get_idx (e, 0), path, &a, &an))
          || (st = tj_str_of (l, json_object_array_get_idx (e, 1), path, &b, &bn)))
        goto out;
    } else {
      st = tj_bad (l, SUTRA_ERR_FORMAT, path, "expected \"a b\" or [\"a\", \"b\"], not %s",
                   tj_type (e));
      goto out;
    }
    int32_t ia = sutra_strmap_get (&m->vocab, a, an), ib = sutra_strmap_get (&m->vocab, b, bn);
    if (ia < 0 || ib < 0) {
      const char *u = ia < 0 ? a : b;
      size_t un = ia < 0 ? an : bn;
      st = tj_bad (l, SUTRA_ERR_FORMAT, path, "unknown token '%.*s'", (int) (un > 60 ? 60 : un), u);
      goto out;
    }
    /* merged token = a + b without b's continuing_subword_prefix */
    size_t pl = m->prefix ? m->prefix_len : 0;
    if (pl > bn)
      pl = bn;
    size_t mn = an + bn - pl;
    if (mn + 1 > bcap) {
      bcap = (mn + 1) * 2;
      buf = sutra_xrealloc (buf, bcap);
    }
    memcpy (buf, a, an);
    memcpy (buf + an, b + pl, bn - pl);
    int32_t nid = sutra_strmap_get (&m->vocab, buf, mn);
    if (nid < 0) {
      /* HF refuses the whole file here (MergeTokenOutOfVocabulary); such a merge could
       * never apply, so we drop it and say so. It keeps its rank slot. */
      sutra_log (SUTRA_LOG_WARN, "%s: %s: merged token '%.*s' is not in the vocabulary; "
                 "merge ignored", l->tok->name, path, (int) (mn > 60 ? 60 : mn), buf);
      m->merge_strs[m->n_merges++] = sutra_xasprintf ("%.*s %.*s", (int) an, a, (int) bn, b);
      rank++;
      continue;
    }
    sutra_u64map_put (&m->merges, ((uint64_t) (uint32_t) ia << 32) | (uint32_t) ib,
                      ((uint64_t) rank << 32) | (uint32_t) nid);
    if (m->rank_score[nid] == 0.0f)
      m->rank_score[nid] = -(float) (rank + 1);
    m->merge_strs[m->n_merges] = sutra_xasprintf ("%.*s %.*s", (int) an, a, (int) bn, b);
    m->n_merges++;
    rank++;
  }
  st = SUTRA_OK;
out:
  free (buf);
  return st;
}

static SutraStatus
load_model (Ld *l, json_object *model)
{
  SutraTokenizer *tok = l->tok;
  SutraTokModel *m = &tok->model;
  SutraStatus st;
  if (!model || !json_object_is_type (model, json_type_object))
    return tj_bad (l, SUTRA_ERR_FORMAT, "model", "expected an object, not %s", tj_type (model));
  json_object *tv = tj_get (model, "type");
  json_object *vocab = tj_get (model, "vocab");
  const char *type = NULL;
  if (tv) {
    if (!json_object_is_type (tv, json_type_string))
      return tj_bad (l, SUTRA_ERR_FORMAT, "model", "'type' must be a string");
    type = json_object_get_string (tv);
  } else if (tj_get (model, "merges"))
    type = "BPE";
  else if (vocab && json_object_is_type (vocab, json_type_array))
    type = "Unigram";
  else
    type = "WordPiece";
  m->unk_id = -1;
  for (int i = 0; i < 256; i++)
    m->byte_ids[i] = -1;
  if (strcmp (type, "BPE") == 0)
    m->type = SUTRA_TOK_MODEL_BPE;
  else if (strcmp (type, "WordPiece") == 0)
    m->type = SUTRA_TOK_MODEL_WORDPIECE;
  else if (strcmp (type, "Unigram") == 0)
    m->type = SUTRA_TOK_MODEL_UNIGRAM;
  else
    return tj_bad (l, SUTRA_ERR_UNSUPPORTED, NULL, "model.type '%s' is not supported", type);

  if (m->type == SUTRA_TOK_MODEL_UNIGRAM) {
    if (!vocab || !json_object_is_type (vocab, json_type_array))
      return tj_bad (l, SUTRA_ERR_FORMAT, "model", "Unigram 'vocab' must be a list of [piece, score]");
    size_t n = json_object_array_length (vocab);
    if (n >= SUTRA_TOK_MAX_ID)
      return tj_bad (l, SUTRA_ERR_FORMAT, "model.vocab", "%zu entries exceed the limit", n);
    sutra_strmap_init (&m->vocab, n);
    m->scores = sutra_xmalloc ((n ? n : 1) * sizeof *m->scores);
    m->min_score = 1e300;
    for (size_t i = 0; i < n; i++) {
      json_object *e = json_object_array_get_idx (vocab, i);
      char path[64];
      snprintf (path, sizeof path, "model.vocab[%zu]", i);
      json_object *sc;
      if (!e || !json_object_is_type (e, json_type_array) || json_object_array_length (e) != 2
          || !(sc = json_object_array_get_idx (e, 1))
          || !(json_object_is_type (sc, json_type_double) || json_object_is_type (sc, json_type_int)))
        return tj_bad (l, SUTRA_ERR_FORMAT, path, "expected [piece, score]");
      const char *s;
      size_t sn;
      if ((st = tj_str_of (l, json_object_array_get_idx (e, 0), path, &s, &sn))
          || (st = vocab_set (l, m, s, sn, (int64_t) i, path)))
        return st;
      m->scores[i] = json_object_get_double (sc);
      if (m->scores[i] < m->min_score)
        m->min_score = m->scores[i];
    }
    m->n_entries = n;
    int64_t unk;
    if ((st = tj_int (l, model, "unk_id", -1, -1, (int64_t) n - 1, "model", &unk)))
      return st;
    if (unk >= 0 && n == 0)
      return tj_bad (l, SUTRA_ERR_FORMAT, "model", "unk_id set but the vocabulary is empty");
    m->unk_id = (int32_t) unk;
    if ((st = tj_bool (l, model, "byte_fallback", false, "model", &m->byte_fallback)))
      return st;
    m->fuse_unk = true;
    sutra_unigram_build_trie (m);
  } else {
    if (!vocab || !json_object_is_type (vocab, json_type_object))
      return tj_bad (l, SUTRA_ERR_FORMAT, "model", "'vocab' must be an object of token -> id");
    size_t n = (size_t) json_object_object_length (vocab);
    sutra_strmap_init (&m->vocab, n);
    /* detect duplicate ids */
    json_object_object_foreach (vocab, key, val) {
      if (!val || !json_object_is_type (val, json_type_int))
        return tj_bad (l, SUTRA_ERR_FORMAT, "model.vocab", "id of '%.60s' must be an integer, not %s",
                       key, tj_type (val));
      size_t kl = strlen (key);
      if (sutra_utf8_valid_prefix (key, kl) != kl)
        return tj_bad (l, SUTRA_ERR_FORMAT, "model.vocab", "token is not valid UTF-8");
      int64_t id = json_object_get_int64 (val);
      if (id >= 0 && (size_t) id < m->n_ids && m->vocab_r[id])
        return tj_bad (l, SUTRA_ERR_FORMAT, "model.vocab", "tokens '%.60s' and '%.60s' both have id %lld",
                       m->vocab_r[id], key, (long long) id);
      if ((st = vocab_set (l, m, key, kl, id, "model.vocab")))
        return st;
    }
    m->n_entries = m->vocab.count;
    const char *s;
    size_t sn;
    if ((st = tj_str (l, model, "unk_token", "model", &s, &sn)))
      return st;
    m->unk_token = tj_dup_opt (s, sn);
    if (m->type == SUTRA_TOK_MODEL_WORDPIECE) {
      if (!m->unk_token)
        m->unk_token = sutra_xstrdup ("[UNK]");
      if ((st = tj_str (l, model, "continuing_subword_prefix", "model", &s, &sn)))
        return st;
      m->prefix = s ? sutra_xstrndup (s, sn) : sutra_xstrdup ("##");
      m->prefix_len = s ? sn : 2;
      int64_t mx;
      if ((st = tj_int (l, model, "max_input_chars_per_word", 100, 0, INT32_MAX, "model", &mx)))
        return st;
      m->max_input_chars = (size_t) mx;
    } else {
      if ((st = tj_str (l, model, "continuing_subword_prefix", "model", &s, &sn)))
        return st;
      m->prefix = tj_dup_opt (s, sn);
      m->prefix_len = sn;
      if ((st = tj_str (l, model, "end_of_word_suffix", "model", &s, &sn)))
        return st;
      m->suffix = tj_dup_opt (s, sn);
      m->suffix_len = sn;
      if ((st = tj_bool (l, model, "fuse_unk", false, "model", &m->fuse_unk))
          || (st = tj_bool (l, model, "byte_fallback", false, "model", &m->byte_fallback))
          || (st = tj_bool (l, model, "ignore_merges", false, "model", &m->ignore_merges)))
        return st;
      json_object *dr = tj_get (model, "dropout");
      if (!tj_null (dr)) {
        if (!json_object_is_type (dr, json_type_double) && !json_object_is_type (dr, json_type_int))
          return tj_bad (l, SUTRA_ERR_FORMAT, "model", "'dropout' must be a number or null");
        double p = json_object_get_double (dr);
        if (p < 0.0 || p > 1.0)
          return tj_bad (l, SUTRA_ERR_FORMAT, "model", "dropout %g is not in [0, 1]", p);
        if (p > 0.0)
          return tj_bad (l, SUTRA_ERR_UNSUPPORTED, NULL,
                         "model.dropout %g is not supported (BPE dropout is random; use null)", p);
      }
      if ((st = load_bpe_merges (l, model)))
        return st;
      /* fast single-char lookups when no affix changes the strings */
      m->char_table = m->prefix_len == 0 && m->suffix_len == 0;
      if (m->char_table)
        for (uint32_t cp = 0; cp < 2048; cp++) {
          char u[4];
          size_t ul = sutra_utf8_encode (cp, u);
          m->char_ids[cp] = sutra_strmap_get (&m->vocab, u, ul);
        }
      m->cache = sutra_bpe_cache_new ();
      /* SentencePiece-style vocabularies where U+2581 only ever follows U+2581 inside a
       * token: pieces can be cut before each word's U+2581 (sutra-bpe.c) */
      m->meta_split = !m->prefix_len && !m->suffix_len && !m->ignore_merges
                      && sutra_strmap_get (&m->vocab, "\xE2\x96\x81", 3) >= 0;
      for (size_t id = 0; m->meta_split && id < m->n_ids; id++) {
        const char *t = m->vocab_r[id];
        size_t tl = m->vocab_r_len[id];
        for (size_t k = 1; t && k + 3 <= tl; k++)
          if (memcmp (t + k, "\xE2\x96\x81", 3) == 0
              && !(k >= 3 && memcmp (t + k - 3, "\xE2\x96\x81", 3) == 0)) {
            m->meta_split = false;
            break;
          }
      }
    }
  }
  for (int b = 0; b < 256; b++) {
    char name[8];
    snprintf (name, sizeof name, "<0x%02X>", b);
    m->byte_ids[b] = sutra_strmap_get (&m->vocab, name, 6);
  }
  return SUTRA_OK;
}

/* ---------------------------------------------------------------------------------------
 * Added tokens (AddedVocabulary::add_tokens) */

static SutraStatus
load_added (Ld *l, json_object *arr)
{
  SutraTokenizer *tok = l->tok;
  SutraTokModel *m = &tok->model;
  if (tj_null (arr))
    return SUTRA_OK;
  if (!json_object_is_type (arr, json_type_array))
    return tj_bad (l, SUTRA_ERR_FORMAT, "added_tokens", "expected a list, not %s", tj_type (arr));
  size_t n = json_object_array_length (arr);
  tok->added = sutra_xcalloc (n + 1, sizeof *tok->added);
  sutra_strmap_init (&tok->added_map, n + 1);
  sutra_strmap_init (&tok->special_set, n + 1);
  int64_t next_id = (int64_t) m->n_entries;
  /* id per added index, to build added_by_id once n_vocab is known */
  SutraStatus st;
  for (size_t i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx (arr, i);
    char path[64];
    snprintf (path, sizeof path, "added_tokens[%zu]", i);
    if (!e || !json_object_is_type (e, json_type_object))
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "expected an object, not %s", tj_type (e));
    const char *content;
    size_t cn;
    int64_t jid;
    SutraTokAdded a = { 0 };
    if ((st = tj_str (l, e, "content", path, &content, &cn))
        || (st = tj_int (l, e, "id", -1, 0, SUTRA_TOK_MAX_ID - 1, path, &jid))
        || (st = tj_bool (l, e, "single_word", false, path, &a.single_word))
        || (st = tj_bool (l, e, "lstrip", false, path, &a.lstrip))
        || (st = tj_bool (l, e, "rstrip", false, path, &a.rstrip))
        || (st = tj_bool (l, e, "normalized", true, path, &a.normalized))
        || (st = tj_bool (l, e, "special", false, path, &a.special)))
      return st;
    if (!content)
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "missing 'content'");
    if (jid < 0)
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "missing 'id'");
    if (cn == 0)
      continue;   /* HF ignores empty added tokens */
    int32_t prev = sutra_strmap_get (&tok->added_map, content, cn);
    int64_t id;
    if (prev >= 0) {
      SutraTokAdded *p = &tok->added[prev];
      if (p->special == a.special && p->lstrip == a.lstrip && p->rstrip == a.rstrip
          && p->normalized == a.normalized && p->single_word == a.single_word)
        continue;   /* identical duplicate */
      id = p->id;
    } else {
      int32_t mid = sutra_strmap_get (&m->vocab, content, cn);
      id = mid >= 0 ? mid : next_id++;
    }
    if (id >= SUTRA_TOK_MAX_ID)
      return tj_bad (l, SUTRA_ERR_FORMAT, path, "token id %lld exceeds the limit", (long long) id);
    if (id != jid)
      sutra_log (SUTRA_LOG_WARN, "%s: %s: token '%.60s' has id %lld in the file but %lld as "
                 "Hugging Face tokenizers assigns it; using %lld", tok->name, path, content,
                 (long long) jid, (long long) id, (long long) id);
    a.content = sutra_xstrndup (content, cn);
    a.len = cn;
    a.id = (int32_t) id;
    if (a.normalized && tok->n_norms) {
      size_t nl;
      char *norm = sutra_tok_normalize_string (tok, content, cn, &nl, l->err);
      if (!norm) {
        free (a.content);
        return l->err ? l->err->code : SUTRA_ERR_INVALID;
      }
      if (nl != cn || memcmp (norm, content, cn) != 0) {
        a.norm = norm;
        a.norm_len = nl;
      } else
        free (norm);
    }
    if (a.special)
      sutra_strmap_put (&tok->special_set, content, cn, 1);
    if (prev >= 0) {
      SutraTokAdded *p = &tok->added[prev];
      free (p->content);
      free (p->norm);
      *p = a;
    } else {
      sutra_strmap_put (&tok->added_map, content, cn, (int32_t) tok->n_added);
      tok->added[tok->n_added++] = a;
    }
  }
  return SUTRA_OK;
}

/* ---------------------------------------------------------------------------------------
 * tokenizer_config.json */

static const char *const role_keys[4] = { "bos_token", "eos_token", "pad_token", "unk_token" };

static int32_t
lookup_id (const SutraTokenizer *tok, const char *s, size_t n)
{
  int32_t ai = sutra_strmap_get (&tok->added_map, s, n);
  if (ai >= 0)
    return tok->added[ai].id;
  return sutra_strmap_get (&tok->model.vocab, s, n);
}

static void
set_role (SutraTokenizer *tok, int role, const char *s, size_t n)
{
  free (tok->role_str[role]);
  tok->role_str[role] = sutra_xstrndup (s, n);
  tok->role_id[role] = lookup_id (tok, s, n);
}

static bool
template_edges (const SutraTokenizer *tok, int32_t *first, const char **first_s, int32_t *last,
                const char **last_s)
{
  *first = *last = -1;
  bool any = false;
  for (size_t k = 0; k < tok->n_posts; k++) {
    const SutraTokPost *p = &tok->posts[k];
    if (p->kind == SUTRA_POST_ROBERTA || p->kind == SUTRA_POST_BERT) {
      *first = p->cls.ids[0];
      *first_s = p->cls.tokens[0];
      *last = p->sep.ids[0];
      *last_s = p->sep.tokens[0];
      any = true;
    } else if (p->kind == SUTRA_POST_TEMPLATE) {
      bool seen = false;
      for (size_t i = 0; i < p->n_items; i++) {
        if (p->is_seq[i]) {
          seen = true;
          continue;
        }
        if (p->items[i].n == 0)
          continue;
        if (!seen && *first < 0) {
          *first = p->items[i].ids[0];
          *first_s = p->items[i].tokens[0];
        }
        if (seen) {
          *last = p->items[i].ids[p->items[i].n - 1];
          *last_s = p->items[i].tokens[p->items[i].n - 1];
        }
      }
      any = true;
    }
  }
  return any;
}


static SutraStatus
load_config (Ld *l, json_object *cfg)
{
  SutraTokenizer *tok = l->tok;
  for (int r = 0; r < 4; r++) {
    json_object *v = tj_get (cfg, role_keys[r]);
    if (tj_null (v))
      continue;
    if (json_object_is_type (v, json_type_object))
      v = tj_get (v, "content");
    if (!v || !json_object_is_type (v, json_type_string))
      return tj_bad (l, SUTRA_ERR_FORMAT, "tokenizer_config.json",
                     "'%s' must be a string or {\"content\": ...}", role_keys[r]);
    const char *s;
    size_t n;
    SutraStatus st = tj_str_of (l, v, role_keys[r], &s, &n);
    if (st)
      return st;
    set_role (tok, r, s, n);
  }
  bool cleanup;
  SutraStatus st = tj_bool (l, cfg, "clean_up_tokenization_spaces", true,
                            "tokenizer_config.json", &cleanup);
  if (st)
    return st;
  tok->cleanup_default = cleanup;
  /* transformers' LlamaTokenizerFast / GemmaTokenizerFast rebuild the post-processor from
   * add_bos_token / add_eos_token (update_post_processor) */
  json_object *cls = tj_get (cfg, "tokenizer_class");
  const char *cn = cls && json_object_is_type (cls, json_type_string) ? json_object_get_string (cls)
                                                                       : "";
  static const char *const llama_like[] = {
    "LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast",
    "GemmaTokenizer", "GemmaTokenizerFast",
  };
  bool is_llama = false;
  for (size_t i = 0; i < sizeof llama_like / sizeof *llama_like; i++)
    is_llama |= strcmp (cn, llama_like[i]) == 0;
  if (is_llama) {
    bool add_bos, add_eos;
    if ((st = tj_bool (l, cfg, "add_bos_token", true, "tokenizer_config.json", &add_bos))
        || (st = tj_bool (l, cfg, "add_eos_token", false, "tokenizer_config.json", &add_eos)))
      return st;
    if ((add_bos && !tok->role_str[SUTRA_TOK_BOS]) || (add_eos && !tok->role_str[SUTRA_TOK_EOS])) {
      sutra_log (SUTRA_LOG_WARN, "%s: %s asks for add_bos/add_eos without the token; keeping "
                 "tokenizer.json's post-processor", tok->name, cn);
      return SUTRA_OK;
    }
    sutra_tok_free_posts (tok);
    SutraTokPost *pp = sutra_tok_push_post (tok, SUTRA_POST_TEMPLATE);
    pp->items = sutra_xcalloc (3, sizeof *pp->items);
    pp->is_seq = sutra_xcalloc (3, sizeof *pp->is_seq);
    if (add_bos)
      sutra_tok_seq_one (&pp->items[pp->n_items++], tok->role_str[SUTRA_TOK_BOS],
                         strlen (tok->role_str[SUTRA_TOK_BOS]), tok->role_id[SUTRA_TOK_BOS]);
    pp->is_seq[pp->n_items++] = true;
    if (add_eos)
      sutra_tok_seq_one (&pp->items[pp->n_items++], tok->role_str[SUTRA_TOK_EOS],
                         strlen (tok->role_str[SUTRA_TOK_EOS]), tok->role_id[SUTRA_TOK_EOS]);
    tok->has_post = true;
    if (!tj_null (tj_get (cfg, "add_prefix_space")))
      sutra_log (SUTRA_LOG_WARN, "%s: add_prefix_space in tokenizer_config.json makes "
                 "transformers rebuild this tokenizer from the slow one; using tokenizer.json as is",
                 tok->name);
  }
  return SUTRA_OK;
}

static void
role_fallbacks (SutraTokenizer *tok)
{
  static const char *const names[4][6] = {
    { "<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<|endoftext|>", NULL },
    { "</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>", "<|im_end|>", NULL },
    { "<pad>", "[PAD]", "<|padding|>", "<|pad|>", NULL, NULL },
    { "<unk>", "[UNK]", NULL, NULL, NULL, NULL },
  };
  int32_t first, last;
  const char *fs = NULL, *ls = NULL;
  template_edges (tok, &first, &fs, &last, &ls);
  if (!tok->role_str[SUTRA_TOK_BOS] && first >= 0)
    set_role (tok, SUTRA_TOK_BOS, fs, strlen (fs));
  if (!tok->role_str[SUTRA_TOK_EOS] && last >= 0)
    set_role (tok, SUTRA_TOK_EOS, ls, strlen (ls));
  const SutraTokModel *m = &tok->model;
  if (!tok->role_str[SUTRA_TOK_UNK]) {
    if (m->unk_token && sutra_strmap_get (&m->vocab, m->unk_token, strlen (m->unk_token)) >= 0)
      set_role (tok, SUTRA_TOK_UNK, m->unk_token, strlen (m->unk_token));
    else if (m->unk_id >= 0 && m->vocab_r[m->unk_id])
      set_role (tok, SUTRA_TOK_UNK, m->vocab_r[m->unk_id], m->vocab_r_len[m->unk_id]);
  }
  for (int r = 0; r < 4; r++) {
    if (tok->role_str[r])
      continue;
    for (int k = 0; k < 6 && names[r][k]; k++)
      if (sutra_strmap_get (&tok->added_map, names[r][k], strlen (names[r][k])) >= 0) {
        set_role (tok, r, names[r][k], strlen (names[r][k]));
        break;
      }
  }
}

/* ---------------------------------------------------------------------------------------
 * Entry point */


SutraStatus
sutra_tok_build_from_json (SutraTokenizer *tok, const char *json, size_t len, const char *config,
                           size_t config_len, SutraError *err)
{
  Ld l = { tok, err };
  SutraStatus st = SUTRA_OK;
  for (int r = 0; r < 4; r++)
    tok->role_id[r] = -1;
  tok->cleanup_default = true;
  json_object *root = tj_parse (&l, json, len, "", &st);
  if (!root)
    return st;
  json_object *cfg = NULL;
  json_object *v = tj_get (root, "version");
  if (v && (!json_object_is_type (v, json_type_string) || strcmp (json_object_get_string (v), "1.0"))) {
    st = tj_bad (&l, SUTRA_ERR_UNSUPPORTED, NULL, "tokenizer version '%s' is not supported (want 1.0)",
                 json_object_get_string (v));
    goto out;
  }
  if ((st = load_model (&l, tj_get (root, "model"))))
    goto out;
  if (!tj_null (v = tj_get (root, "normalizer")) && (st = sutra_tok_load_normalizer (&l, v, "normalizer", 0)))
    goto out;
  if (!tj_null (v = tj_get (root, "pre_tokenizer")) && (st = sutra_tok_load_pretok (&l, v, "pre_tokenizer", 0)))
    goto out;
  if (!tj_null (v = tj_get (root, "post_processor"))) {
    if ((st = sutra_tok_load_post (&l, v, "post_processor", 0)))
      goto out;
    tok->has_post = true;
  }
  if (!tj_null (v = tj_get (root, "decoder"))) {
    if ((st = sutra_tok_load_decoder (&l, v, "decoder", 0)))
      goto out;
    tok->has_decoder = true;
  }
  if ((st = load_added (&l, tj_get (root, "added_tokens"))))
    goto out;
  if (!tok->added) {
    tok->added = sutra_xcalloc (1, sizeof *tok->added);
    sutra_strmap_init (&tok->added_map, 1);
    sutra_strmap_init (&tok->special_set, 1);
  }
  /* ids: model and added */
  size_t nv = tok->model.n_ids;
  for (size_t i = 0; i < tok->n_added; i++)
    if ((size_t) tok->added[i].id + 1 > nv)
      nv = (size_t) tok->added[i].id + 1;
  tok->n_vocab = nv;
  tok->added_by_id = sutra_xmalloc ((nv ? nv : 1) * sizeof *tok->added_by_id);
  for (size_t i = 0; i < nv; i++)
    tok->added_by_id[i] = -1;
  for (size_t i = 0; i < tok->n_added; i++)
    tok->added_by_id[tok->added[i].id] = (int32_t) i;
  sutra_tok_trie_build (&tok->trie_raw, tok, false);
  sutra_tok_trie_build (&tok->trie_norm, tok, true);
  if (config && config_len) {
    cfg = tj_parse (&l, config, config_len, "tokenizer_config.json", &st);
    if (!cfg)
      goto out;
    if ((st = load_config (&l, cfg)))
      goto out;
  }
  role_fallbacks (tok);
  /* what add_special_tokens adds */
  {
    int32_t first, last;
    const char *fs, *ls;
    template_edges (tok, &first, &fs, &last, &ls);
    tok->adds_bos = first >= 0;
    tok->adds_eos = last >= 0;
  }
  /* offset trimming tables */
  for (size_t k = 0; k < tok->n_posts; k++)
    if ((tok->posts[k].kind == SUTRA_POST_BYTELEVEL || tok->posts[k].kind == SUTRA_POST_ROBERTA)
        && tok->posts[k].trim_offsets)
      tok->needs_trim = true;
  if (tok->needs_trim) {
    tok->trim_lead = sutra_xcalloc (nv ? nv : 1, sizeof *tok->trim_lead);
    tok->trim_trail = sutra_xcalloc (nv ? nv : 1, sizeof *tok->trim_trail);
    for (size_t id = 0; id < nv; id++) {
      const char *s = NULL;
      size_t n = 0;
      if (id < tok->model.n_ids && tok->model.vocab_r[id]) {
        s = tok->model.vocab_r[id];
        n = tok->model.vocab_r_len[id];
      } else if (tok->added_by_id[id] >= 0) {
        s = tok->added[tok->added_by_id[id]].content;
        n = strlen (s);
      }
      if (s)
        sutra_tok_trim_counts (s, n, &tok->trim_lead[id], &tok->trim_trail[id]);
    }
  }
  for (size_t i = 0; i < tok->n_norms; i++)
    if (tok->norms[i].kind == SUTRA_NORM_BYTELEVEL)
      tok->byte_level = true;
out:
  json_object_put (root);
  json_object_put (cfg);
  return st;
}

void
sutra_tok_destroy (SutraTokenizer *tok)
{
  SutraTokModel *m = &tok->model;
  sutra_strmap_free (&m->vocab);
  free (m->vocab_r);
  free (m->vocab_r_len);
  sutra_u64map_free (&m->merges);
  for (size_t i = 0; i < m->n_merges; i++)
    free (m->merge_strs[i]);
  free (m->merge_strs);
  free (m->unk_token);
  free (m->prefix);
  free (m->suffix);
  sutra_bpe_cache_free (m->cache);
  free (m->rank_score);
  free (m->scores);
  sutra_u64map_free (&m->trie_edges);
  free (m->trie_term);
  for (size_t i = 0; i < tok->n_added; i++) {
    free (tok->added[i].content);
    free (tok->added[i].norm);
  }
  free (tok->added);
  sutra_strmap_free (&tok->added_map);
  sutra_strmap_free (&tok->special_set);
  free (tok->added_by_id);
  sutra_tok_trie_free (&tok->trie_raw);
  sutra_tok_trie_free (&tok->trie_norm);
  for (size_t i = 0; i < tok->n_norms; i++) {
    free (tok->norms[i].str);
    free (tok->norms[i].pat.source);
    sutra_tok_charsmap_free (&tok->norms[i].cmap);
  }
  free (tok->norms);
  for (size_t i = 0; i < tok->n_steps; i++)
    free (tok->steps[i].pat.source);
  free (tok->steps);
  sutra_tok_free_posts (tok);
  for (size_t i = 0; i < tok->n_decs; i++) {
    sutra_tok_dec_free (&tok->decs[i]);
    free (tok->decs[i].pat.source);
  }
  free (tok->decs);
  for (size_t i = 0; i < tok->n_regexes; i++) {
    pcre2_code_free (tok->regexes[i]);
    free (tok->regex_sources[i]);
  }
  free (tok->regexes);
  free (tok->regex_sources);
  free (tok->trim_lead);
  free (tok->trim_trail);
  for (int r = 0; r < 4; r++)
    free (tok->role_str[r]);
  free (tok->name);
}

