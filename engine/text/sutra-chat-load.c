/* sutra-chat-load.c: a model's chat template and special tokens, read the way transformers'
 * tokenizer from_pretrained + apply_chat_template read them (see sutra-chat.c's header). */
#include "sutra-chat-private.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_TEMPLATE_FILE ((size_t) 16 << 20)
#define MAX_NAMED 64

typedef struct {
  char *dir;
  char *config_path;           /* may not exist */
  struct json_object *cfg;     /* NULL without tokenizer_config.json */
  char *default_src;
  size_t n_named;
  char *names[MAX_NAMED], *srcs[MAX_NAMED];
} Model;

static void
model_clear (Model *m)
{
  free (m->dir);
  free (m->config_path);
  json_object_put (m->cfg);
  free (m->default_src);
  for (size_t i = 0; i < m->n_named; i++) {
    free (m->names[i]);
    free (m->srcs[i]);
  }
}

static bool
is_file (const char *p)
{
  struct stat st;
  return stat (p, &st) == 0 && S_ISREG (st.st_mode);
}

/* Reads a whole text file (at most MAX_TEMPLATE_FILE bytes). */
static SutraStatus
read_text (const char *path, char **out, SutraError *err)
{
  FILE *fp = fopen (path, "rb");
  if (!fp)
    return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s", path);
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      buf = sutra_xrealloc (buf, cap);
    }
    size_t got = fread (buf + n, 1, cap - n - 1, fp);
    n += got;
    if (n > MAX_TEMPLATE_FILE) {
      fclose (fp);
      free (buf);
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: larger than %zu MiB; not a chat "
                              "template", path, MAX_TEMPLATE_FILE >> 20);
    }
    if (got == 0)
      break;
  }
  bool bad = ferror (fp);
  fclose (fp);
  if (bad) {
    free (buf);
    return sutra_error_set (err, SUTRA_ERR_IO, "%s: read error", path);
  }
  buf[n] = '\0';
  if (strlen (buf) != n) {
    free (buf);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: contains a NUL byte", path);
  }
  *out = buf;
  return SUTRA_OK;
}

static void
add_named (Model *m, const char *name, char *src)
{
  for (size_t i = 0; i < m->n_named; i++)
    if (strcmp (m->names[i], name) == 0) {      /* a later definition wins */
      free (m->srcs[i]);
      m->srcs[i] = src;
      return;
    }
  if (m->n_named == MAX_NAMED) {
    free (src);
    return;
  }
  m->names[m->n_named] = sutra_xstrdup (name);
  m->srcs[m->n_named] = src;
  m->n_named++;
}

static SutraStatus
read_model (const char *path, Model *m, SutraError *err)
{
  struct stat st;
  if (stat (path, &st) != 0)
    return sutra_error_set_sys (err, errno == ENOENT ? SUTRA_ERR_NOT_FOUND : SUTRA_ERR_IO, errno,
                                "%s", path);
  const char *base = strrchr (path, '/') ? strrchr (path, '/') + 1 : path;
  bool tokenizer_json = !S_ISDIR (st.st_mode) && strcmp (base, "tokenizer.json") == 0;
  if (tokenizer_json) {                   /* a tokenizer.json path names its model folder */
    m->dir = base > path ? sutra_xstrndup (path, (size_t) (base - path - 1) + (base - path == 1))
                         : sutra_xstrdup (".");
    m->config_path = sutra_xasprintf ("%s/tokenizer_config.json", m->dir);
  } else if (S_ISDIR (st.st_mode)) {
    m->dir = sutra_xstrdup (path);
    m->config_path = sutra_xasprintf ("%s/tokenizer_config.json", path);
  } else {
    m->config_path = sutra_xstrdup (path);
    const char *slash = strrchr (path, '/');
    m->dir = slash ? sutra_xstrndup (path, (size_t) (slash - path) + (slash == path)) : sutra_xstrdup (".");
  }
  if (is_file (m->config_path)) {
    m->cfg = json_object_from_file (m->config_path);
    if (!m->cfg)
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: not valid JSON (%s)", m->config_path,
                              json_util_get_last_err ());
    if (!json_object_is_type (m->cfg, json_type_object))
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: expected a JSON object", m->config_path);
    struct json_object *ct;
    if (json_object_object_get_ex (m->cfg, "chat_template", &ct) && ct) {
      if (json_object_is_type (ct, json_type_string)) {
        m->default_src = sutra_xstrdup (json_object_get_string (ct));
      } else if (json_object_is_type (ct, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length (ct); i++) {
          struct json_object *e = json_object_array_get_idx (ct, i), *nm, *tx;
          if (!json_object_is_type (e, json_type_object) ||
              !json_object_object_get_ex (e, "name", &nm) || !json_object_is_type (nm, json_type_string) ||
              !json_object_object_get_ex (e, "template", &tx) || !json_object_is_type (tx, json_type_string))
            return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: chat_template[%zu]: expected an "
                                    "object with string \"name\" and \"template\"",
                                    m->config_path, i);
          add_named (m, json_object_get_string (nm), sutra_xstrdup (json_object_get_string (tx)));
        }
      } else {
        return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: chat_template must be a string or a "
                                "list of {\"name\", \"template\"}", m->config_path);
      }
    }
  } else if (!S_ISDIR (st.st_mode) && !tokenizer_json) {
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: not a tokenizer_config.json", path);
  }
  /* transformers >= 4.50: chat_template.jinja clobbers the config's (default) template and
   * additional_chat_templates/NAME.jinja adds named ones */
  char *jpath = sutra_xasprintf ("%s/chat_template.jinja", m->dir);
  if (is_file (jpath)) {
    char *src;
    SutraStatus s = read_text (jpath, &src, err);
    if (s != SUTRA_OK) {
      free (jpath);
      return s;
    }
    free (m->default_src);
    m->default_src = src;
  }
  free (jpath);
  char *adir = sutra_xasprintf ("%s/additional_chat_templates", m->dir);
  DIR *d = opendir (adir);
  if (d) {
    struct dirent *de;
    while ((de = readdir (d))) {
      size_t len = strlen (de->d_name);
      if (len <= 6 || strcmp (de->d_name + len - 6, ".jinja") != 0)
        continue;
      char *p = sutra_xasprintf ("%s/%s", adir, de->d_name);
      char *src;
      SutraStatus s = read_text (p, &src, err);
      free (p);
      if (s != SUTRA_OK) {
        closedir (d);
        free (adir);
        return s;
      }
      char *nm = sutra_xstrndup (de->d_name, len - 6);
      add_named (m, nm, src);
      free (nm);
    }
    closedir (d);
  }
  free (adir);
  if (!m->cfg && !m->default_src && m->n_named == 0)
    return sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: no tokenizer_config.json or "
                            "chat_template.jinja", path);
  return SUTRA_OK;
}

/* ---- special tokens ---------------------------------------------------------------------- */

/* A token value: a string, or an AddedToken object's "content". NULL otherwise. */
static const char *
token_text (struct json_object *v)
{
  if (json_object_is_type (v, json_type_string))
    return json_object_get_string (v);
  struct json_object *c;
  if (json_object_is_type (v, json_type_object) && json_object_object_get_ex (v, "content", &c) &&
      json_object_is_type (c, json_type_string))
    return json_object_get_string (c);
  return NULL;
}

/* __init__ defaults of common tokenizer classes, for keys a config leaves out. */
static void
class_defaults (SutraChatTemplate *t, const char *cls)
{
  static const struct { const char *cls; const char *tok[SUTRA_CHAT_N_TOKENS]; } DEFAULTS[] = {
    { "LlamaTokenizer", { "<s>", "</s>", "<unk>" } },
    { "CodeLlamaTokenizer", { "<s>", "</s>", "<unk>" } },
    { "GPT2Tokenizer", { "<|endoftext|>", "<|endoftext|>", "<|endoftext|>" } },
    { "GPTNeoXTokenizer", { "<|endoftext|>", "<|endoftext|>", "<|endoftext|>" } },
    { "Qwen2Tokenizer", { NULL, "<|endoftext|>", "<|endoftext|>", NULL, "<|endoftext|>" } },
    { "GemmaTokenizer", { "<bos>", "<eos>", "<unk>", NULL, "<pad>" } },
    { "T5Tokenizer", { NULL, "</s>", "<unk>", NULL, "<pad>" } },
    { "BertTokenizer", { NULL, NULL, "[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]" } },
  };
  if (!cls)
    return;
  size_t n = strlen (cls);
  if (n > 4 && strcmp (cls + n - 4, "Fast") == 0)
    n -= 4;
  for (size_t i = 0; i < sizeof DEFAULTS / sizeof DEFAULTS[0]; i++)
    if (strlen (DEFAULTS[i].cls) == n && strncmp (DEFAULTS[i].cls, cls, n) == 0)
      for (int k = 0; k < SUTRA_CHAT_N_TOKENS; k++)
        sutra_chat_set_token_at (t, k, DEFAULTS[i].tok[k]);
}

static void
apply_tokens (SutraChatTemplate *t, struct json_object *obj, bool merge_additional)
{
  for (int k = 0; k < SUTRA_CHAT_N_TOKENS; k++) {
    struct json_object *v;
    if (json_object_object_get_ex (obj, SUTRA_CHAT_TOKEN_KEYS[k], &v))
      sutra_chat_set_token_at (t, k, v ? token_text (v) : NULL);
  }
  struct json_object *a;
  if (!json_object_object_get_ex (obj, "additional_special_tokens", &a) || !a)
    return;
  if (!json_object_is_type (a, json_type_array))
    return;
  size_t n = json_object_array_length (a);
  const char **list = sutra_xcalloc (t->n_additional + n + 1, sizeof *list);
  size_t k = 0;
  if (merge_additional)
    for (size_t i = 0; i < t->n_additional; i++)
      list[k++] = t->additional[i];
  for (size_t i = 0; i < n; i++) {
    const char *s = token_text (json_object_array_get_idx (a, i));
    bool dup = false;
    for (size_t j = 0; s && j < k; j++)
      dup |= strcmp (list[j], s) == 0;
    if (s && !dup)
      list[k++] = s;
  }
  /* copy before freeing the old list, which `list` may point into */
  char **fresh = k ? sutra_xcalloc (k, sizeof *fresh) : NULL;
  for (size_t i = 0; i < k; i++)
    fresh[i] = sutra_xstrdup (list[i]);
  free (list);
  for (size_t i = 0; i < t->n_additional; i++)
    free (t->additional[i]);
  free (t->additional);
  t->additional = fresh;
  t->n_additional = k;
}

static void
load_tokens (SutraChatTemplate *t, const Model *m)
{
  for (int k = 0; k < SUTRA_CHAT_N_TOKENS; k++)
    sutra_chat_set_token_at (t, k, NULL);
  sutra_chat_template_set_additional_tokens (t, NULL, 0);
  struct json_object *cls;
  if (json_object_object_get_ex (m->cfg, "tokenizer_class", &cls) &&
      json_object_is_type (cls, json_type_string))
    class_defaults (t, json_object_get_string (cls));
  apply_tokens (t, m->cfg, false);
  /* legacy configs (no added_tokens_decoder): special_tokens_map.json overrides */
  if (json_object_object_get_ex (m->cfg, "added_tokens_decoder", NULL))
    return;
  char *p = sutra_xasprintf ("%s/special_tokens_map.json", m->dir);
  if (is_file (p)) {
    struct json_object *map = json_object_from_file (p);
    if (map && json_object_is_type (map, json_type_object))
      apply_tokens (t, map, true);
    else
      sutra_log (SUTRA_LOG_WARN, "%s: not a JSON object; ignored", p);
    json_object_put (map);
  }
  free (p);
}

/* Which family a model without a template most likely speaks, from its special tokens. */
static const char *
guess_family (const Model *m)
{
  static const struct { const char *marker, *family; } MARKERS[] = {
    { "<|im_start|>", "chatml" }, { "<|start_header_id|>", "llama-3" },
    { "<start_of_turn>", "gemma" }, { "<｜User｜>", "deepseek-r1" }, { "[INST]", "mistral" },
    { "<|end|>", "phi-3" }, { "<|end_of_turn|>", "openchat" },
  };
  const char *text = m->cfg ? json_object_to_json_string_ext (m->cfg, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE)
                            : "";
  for (size_t i = 0; i < sizeof MARKERS / sizeof MARKERS[0]; i++)
    if (strstr (text, MARKERS[i].marker))
      return MARKERS[i].family;
  return "chatml";
}

SutraStatus
sutra_chat_template_load (const char *path, const char *name, SutraChatTemplate **out,
                          SutraError *err)
{
  SUTRA_ASSERT (path && out);
  Model m = { 0 };
  SutraStatus st = read_model (path, &m, err);
  if (st != SUTRA_OK) {
    model_clear (&m);
    return st;
  }
  const char *src = NULL, *family = NULL;
  char label[160];
  snprintf (label, sizeof label, "chat template");
  bool fallback = false;
  if (name) {
    for (size_t i = 0; i < m.n_named && !src; i++)
      if (strcmp (m.names[i], name) == 0) {
        src = m.srcs[i];
        snprintf (label, sizeof label, "chat template '%.100s'", name);
      }
    if (!src && strcmp (name, "default") == 0)
      src = m.default_src;
    if (!src) {
      if (sutra_chat_family_find (name)) {
        family = name;
      } else {
        char have[256] = "";
        for (size_t i = 0; i < m.n_named; i++) {
          size_t len = strlen (have);
          snprintf (have + len, sizeof have - len, "%s%s", i ? ", " : "", m.names[i]);
        }
        st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: no chat template named '%s' (the "
                              "model has: %s; built-in families: sutra chat-template "
                              "--list-templates)", path, name, have[0] ? have : "none");
        model_clear (&m);
        return st;
      }
    }
  } else if (m.default_src) {
    src = m.default_src;
  } else {
    for (size_t i = 0; i < m.n_named && !src; i++)
      if (strcmp (m.names[i], "default") == 0)
        src = m.srcs[i];
    if (!src && m.n_named) {
      char have[256] = "";
      for (size_t i = 0; i < m.n_named; i++) {
        size_t len = strlen (have);
        snprintf (have + len, sizeof have - len, "%s%s", i ? ", " : "", m.names[i]);
      }
      st = sutra_error_set (err, SUTRA_ERR_INVALID, "%s: the model has several chat templates "
                            "and none is named 'default' (%s); pick one by name", path, have);
      model_clear (&m);
      return st;
    }
    if (!src) {
      family = guess_family (&m);
      fallback = true;
      sutra_log (SUTRA_LOG_WARN, "%s has no chat template; using the built-in '%s' template "
                 "(choose another by name; see sutra chat-template --list-templates)", path,
                 family);
    }
  }
  SutraChatTemplate *t;
  st = family ? sutra_chat_template_new_family (family, &t, err)
              : sutra_chat_template_new_labeled (src, label, &t, err);
  if (st != SUTRA_OK) {
    sutra_error_prefix (err, "%s", m.cfg ? m.config_path : path);
    model_clear (&m);
    return st;
  }
  if (m.cfg)
    load_tokens (t, &m);
  t->fallback = fallback;
  model_clear (&m);
  *out = t;
  return SUTRA_OK;
}
