/* sutra-chat.c: loading chat templates and special tokens from a model, rendering
 * conversations through sutra-jinja, family matching, and assistant spans for loss masks.
 *
 * Loading mirrors transformers' PreTrainedTokenizerBase.from_pretrained + apply_chat_template:
 * tokenizer_config.json "chat_template" (a string, or a list of {"name","template"} from which
 * "default" is taken unless a name is asked for), chat_template.jinja beside it replacing the
 * default, additional_chat_templates/NAME.jinja adding named ones; special tokens from the config
 * (strings or AddedToken objects), from special_tokens_map.json only for legacy configs without
 * "added_tokens_decoder" (transformers' legacy branch), and the tokenizer class's defaults for
 * keys the config leaves out. Render variables: messages, tools=None, documents=None,
 * add_generation_prompt and every special token that is set (non-empty). */
#include "sutra-chat.h"
#include "sutra-chat-private.h"
#include "sutra-jinja.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const SUTRA_CHAT_TOKEN_KEYS[SUTRA_CHAT_N_TOKENS] = {
  "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
};
#define TOKEN_KEYS SUTRA_CHAT_TOKEN_KEYS
#define CHAT_MAX_STEPS ((size_t) 20000000)
#define N_TOKENS SUTRA_CHAT_N_TOKENS

/* ---- construction ------------------------------------------------------------------------ */

SutraStatus
sutra_chat_template_new_labeled (const char *source, const char *label, SutraChatTemplate **out, SutraError *err)
{
  SutraJinjaTemplate *tpl;
  SutraStatus st = sutra_jinja_parse (source, strlen (source), &tpl, err);
  if (st != SUTRA_OK) {
    sutra_error_prefix (err, "%s", label);
    return st;
  }
  SutraChatTemplate *t = sutra_xcalloc (1, sizeof *t);
  /* a chat render needs thousands of steps per message; 20 million bounds a hostile template
   * to about a second (the other limits keep sutra-jinja's defaults) */
  t->limits.max_steps = CHAT_MAX_STEPS;
  t->source = sutra_xstrdup (source);
  t->tpl = tpl;
  t->label = sutra_xstrdup (label);
  *out = t;
  return SUTRA_OK;
}

SutraStatus
sutra_chat_template_new (const char *source, SutraChatTemplate **out, SutraError *err)
{
  SUTRA_ASSERT (source && out);
  return sutra_chat_template_new_labeled (source, "chat template", out, err);
}

void
sutra_chat_set_token_at (SutraChatTemplate *t, int k, const char *value)
{
  free (t->tokens[k]);
  t->tokens[k] = value && *value ? sutra_xstrdup (value) : NULL;
}

SutraStatus
sutra_chat_template_new_family (const char *family, SutraChatTemplate **out, SutraError *err)
{
  SUTRA_ASSERT (out);
  const SutraChatFamily *f = sutra_chat_family_find (family);
  if (!f) {
    size_t n;
    const char *const *names = sutra_chat_family_names (&n);
    char list[512] = "";
    for (size_t i = 0; i < n; i++) {
      size_t len = strlen (list);
      snprintf (list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    }
    return sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "unknown chat template family '%s' "
                            "(known: %s)", family ? family : "(null)", list);
  }
  char label[96];
  snprintf (label, sizeof label, "chat template '%s'", f->name);
  SutraStatus st = sutra_chat_template_new_labeled (f->source, label, out, err);
  if (st != SUTRA_OK)
    return st;
  (*out)->builtin = f->name;
  sutra_chat_set_token_at (*out, 0, f->bos_token);
  sutra_chat_set_token_at (*out, 1, f->eos_token);
  return SUTRA_OK;
}

void
sutra_chat_template_free (SutraChatTemplate *t)
{
  if (!t)
    return;
  sutra_jinja_free (t->tpl);
  free (t->source);
  free (t->label);
  for (int k = 0; k < N_TOKENS; k++)
    free (t->tokens[k]);
  for (size_t i = 0; i < t->n_additional; i++)
    free (t->additional[i]);
  free (t->additional);
  for (size_t i = 0; i < t->n_vars; i++) {
    free (t->var_names[i]);
    free (t->var_json[i]);
  }
  free (t->var_names);
  free (t->var_json);
  free (t);
}

int
sutra_chat_token_index (const char *key)
{
  for (int k = 0; key && k < N_TOKENS; k++)
    if (strcmp (TOKEN_KEYS[k], key) == 0)
      return k;
  return -1;
}

SutraStatus
sutra_chat_template_set_token (SutraChatTemplate *t, const char *key, const char *value,
                               SutraError *err)
{
  int k = sutra_chat_token_index (key);
  if (k < 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "unknown special token '%s' (expected "
                            "bos_token, eos_token, unk_token, sep_token, pad_token, cls_token "
                            "or mask_token)", key ? key : "(null)");
  sutra_chat_set_token_at (t, k, value);
  return SUTRA_OK;
}

void
sutra_chat_template_set_additional_tokens (SutraChatTemplate *t, const char *const *tokens,
                                           size_t n)
{
  for (size_t i = 0; i < t->n_additional; i++)
    free (t->additional[i]);
  free (t->additional);
  t->additional = n ? sutra_xcalloc (n, sizeof *t->additional) : NULL;
  t->n_additional = n;
  for (size_t i = 0; i < n; i++)
    t->additional[i] = sutra_xstrdup (tokens[i] ? tokens[i] : "");
}

const char *
sutra_chat_template_token (const SutraChatTemplate *t, const char *key)
{
  int k = sutra_chat_token_index (key);
  return k < 0 ? NULL : t->tokens[k];
}

SutraStatus
sutra_chat_template_set_var (SutraChatTemplate *t, const char *name, const char *json_value,
                             SutraError *err)
{
  if (!name || !*name || !strcmp (name, "messages") || !strcmp (name, "add_generation_prompt"))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "cannot set the template variable '%s'",
                            name ? name : "(null)");
  struct json_object *o = json_value ? json_tokener_parse (json_value) : NULL;
  if (!o && (!json_value || strcmp (json_value, "null") != 0))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "template variable '%s': not valid JSON",
                            name);
  json_object_put (o);
  for (size_t i = 0; i < t->n_vars; i++)
    if (strcmp (t->var_names[i], name) == 0) {
      free (t->var_json[i]);
      t->var_json[i] = sutra_xstrdup (json_value);
      return SUTRA_OK;
    }
  t->var_names = sutra_xrealloc (t->var_names, (t->n_vars + 1) * sizeof *t->var_names);
  t->var_json = sutra_xrealloc (t->var_json, (t->n_vars + 1) * sizeof *t->var_json);
  t->var_names[t->n_vars] = sutra_xstrdup (name);
  t->var_json[t->n_vars] = sutra_xstrdup (json_value);
  t->n_vars++;
  return SUTRA_OK;
}

void
sutra_chat_template_set_now (SutraChatTemplate *t, int64_t unix_seconds)
{
  t->has_now = true;
  t->now = unix_seconds;
}

const char *
sutra_chat_template_source (const SutraChatTemplate *t)
{
  return t->source;
}

bool
sutra_chat_template_is_fallback (const SutraChatTemplate *t)
{
  return t->fallback;
}

/* ---- rendering ------------------------------------------------------------------------------ */

static void
clock_for (const SutraChatTemplate *t, SutraJinjaOptions *o)
{
  const char *sde = getenv ("SOURCE_DATE_EPOCH");
  if (sde && *sde) {
    char *end;
    errno = 0;
    long long v = strtoll (sde, &end, 10);
    if (!errno && !*end) {
      o->now = v;
      o->now_local = false;
      return;
    }
    sutra_log (SUTRA_LOG_WARN, "SOURCE_DATE_EPOCH='%s' is not an integer; ignored", sde);
  }
  if (t->has_now) {
    o->now = t->now;
    o->now_local = false;
  } else {
    o->now = (int64_t) time (NULL);
    o->now_local = true;
  }
}

SutraStatus
sutra_chat_render_array (const SutraChatTemplate *t, struct json_object *messages, bool agp, char **out,
                 size_t *out_len, SutraError *err)
{
  struct json_object *vars = json_object_new_object ();
  json_object_object_add (vars, "messages", json_object_get (messages));
  json_object_object_add (vars, "tools", NULL);
  json_object_object_add (vars, "documents", NULL);
  json_object_object_add (vars, "add_generation_prompt", json_object_new_boolean (agp));
  for (int k = 0; k < N_TOKENS; k++)
    if (t->tokens[k])
      json_object_object_add (vars, TOKEN_KEYS[k], json_object_new_string (t->tokens[k]));
  if (t->n_additional) {
    struct json_object *a = json_object_new_array ();
    for (size_t i = 0; i < t->n_additional; i++)
      json_object_array_add (a, json_object_new_string (t->additional[i]));
    json_object_object_add (vars, "additional_special_tokens", a);
  }
  for (size_t i = 0; i < t->n_vars; i++)
    json_object_object_add (vars, t->var_names[i], json_tokener_parse (t->var_json[i]));
  SutraJinjaOptions o = t->limits;
  clock_for (t, &o);
  size_t len;
  char *res;
  SutraStatus st = sutra_jinja_render (t->tpl, vars, &o, &res, &len, err);
  /* the caller's array stays alive: drop our reference without freeing it */
  json_object_put (vars);
  if (st != SUTRA_OK) {
    sutra_error_prefix (err, "%s", t->label);
    return st;
  }
  if (strlen (res) != len) {              /* the API hands out C strings and byte offsets */
    free (res);
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: the rendered text contains a NUL "
                            "character", t->label);
  }
  *out = res;
  if (out_len)
    *out_len = len;
  return SUTRA_OK;
}

struct json_object *
sutra_chat_messages_json (const SutraChatMessage *msgs, size_t n)
{
  struct json_object *a = json_object_new_array_ext ((int) n);
  for (size_t i = 0; i < n; i++) {
    struct json_object *m = json_object_new_object ();
    json_object_object_add (m, "role", json_object_new_string (msgs[i].role));
    json_object_object_add (m, "content",
                            msgs[i].content ? json_object_new_string (msgs[i].content) : NULL);
    json_object_array_add (a, m);
  }
  return a;
}

SutraStatus
sutra_chat_check_messages (const SutraChatMessage *msgs, size_t n, SutraError *err)
{
  for (size_t i = 0; i < n; i++)
    if (!msgs[i].role)
      return sutra_error_set (err, SUTRA_ERR_INVALID, "chat message %zu has no role", i);
  return SUTRA_OK;
}

SutraStatus
sutra_chat_render (const SutraChatTemplate *t, const SutraChatMessage *msgs, size_t n,
                   bool add_generation_prompt, char **out, SutraError *err)
{
  SUTRA_ASSERT (t && out && (msgs || n == 0));
  SutraStatus st = sutra_chat_check_messages (msgs, n, err);
  if (st != SUTRA_OK)
    return st;
  struct json_object *a = sutra_chat_messages_json (msgs, n);
  st = sutra_chat_render_array (t, a, add_generation_prompt, out, NULL, err);
  json_object_put (a);
  return st;
}

SutraStatus
sutra_chat_render_json (const SutraChatTemplate *t, const char *messages_json_text,
                        bool add_generation_prompt, char **out, SutraError *err)
{
  SUTRA_ASSERT (t && messages_json_text && out);
  struct json_tokener *tok = json_tokener_new_ex (64);
  struct json_object *a = json_tokener_parse_ex (tok, messages_json_text,
                                                 (int) strlen (messages_json_text));
  enum json_tokener_error jerr = json_tokener_get_error (tok);
  json_tokener_free (tok);
  if (!a || jerr != json_tokener_success) {
    json_object_put (a);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "messages: not valid JSON (%s)",
                            json_tokener_error_desc (jerr));
  }
  if (!json_object_is_type (a, json_type_array)) {
    json_object_put (a);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "messages: expected a JSON array of "
                            "{\"role\", \"content\"} objects");
  }
  for (size_t i = 0; i < json_object_array_length (a); i++) {
    struct json_object *m = json_object_array_get_idx (a, i), *role;
    if (!json_object_is_type (m, json_type_object) ||
        !json_object_object_get_ex (m, "role", &role) || !json_object_is_type (role, json_type_string)) {
      json_object_put (a);
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "messages[%zu]: expected an object with a "
                              "string \"role\"", i);
    }
  }
  SutraStatus st = sutra_chat_render_array (t, a, add_generation_prompt, out, NULL, err);
  json_object_put (a);
  return st;
}
