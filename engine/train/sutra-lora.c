/* sutra-lora.c: PEFT-compatible LoRA adapters: target resolution, initialisation, loading,
 * saving, merging. */
#include "sutra-lora.h"
#include "sutra-fsutil.h"
#include "sutra-json.h"
#include "sutra-rng.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sutra_lora_config_clear (SutraLoraConfig *c)
{
  for (int i = 0; i < c->n_targets; i++)
    free (c->targets[i]);
  free (c->targets);
  free (c->regex);
  memset (c, 0, sizeof *c);
}

void
sutra_lora_config_copy (SutraLoraConfig *dst, const SutraLoraConfig *src)
{
  *dst = *src;
  dst->targets = NULL;
  if (src->n_targets) {
    dst->targets = sutra_xcalloc ((size_t) src->n_targets, sizeof (char *));
    for (int i = 0; i < src->n_targets; i++)
      dst->targets[i] = sutra_xstrdup (src->targets[i]);
  }
  dst->regex = sutra_xstrdup (src->regex);
}

static bool
is_output_head (const SutraModel *m, const char *name)
{
  /* PEFT's all-linear excludes the output embedding layer */
  return strcmp (name, "lm_head") == 0 || strcmp (name, "head") == 0 ||
         (m->tied_linear && strcmp (m->tied_linear->name, name) == 0);
}

static bool
regex_full_match (const char *re, const char *s)
{
  int ec;
  PCRE2_SIZE eo;
  pcre2_code *code = pcre2_compile ((PCRE2_SPTR) re, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                                    &ec, &eo, NULL);
  if (!code)
    return false;
  pcre2_match_data *md = pcre2_match_data_create_from_pattern (code, NULL);
  int rc = pcre2_match (code, (PCRE2_SPTR) s, strlen (s), 0, 0, md, NULL);
  pcre2_match_data_free (md);
  pcre2_code_free (code);
  return rc >= 0;
}

bool
sutra_lora_matches (const SutraLoraConfig *c, const SutraModel *m, const char *name)
{
  if (c->all_linear)
    return !is_output_head (m, name);
  if (c->regex)
    return regex_full_match (c->regex, name);
  size_t ln = strlen (name);
  for (int i = 0; i < c->n_targets; i++) {
    const char *t = c->targets[i];
    size_t lt = strlen (t);
    if (strcmp (name, t) == 0)
      return true;
    if (ln > lt && name[ln - lt - 1] == '.' && strcmp (name + ln - lt, t) == 0)
      return true;
  }
  return false;
}

static float
scale_for (const SutraLoraConfig *c)
{
  return c->use_rslora ? c->alpha / sqrtf ((float) c->r) : c->alpha / (float) c->r;
}

static char *
describe_targets (const SutraLoraConfig *c)
{
  if (c->all_linear)
    return sutra_xstrdup ("all-linear");
  if (c->regex)
    return sutra_xstrdup (c->regex);
  size_t len = 1;
  for (int i = 0; i < c->n_targets; i++)
    len += strlen (c->targets[i]) + 2;
  char *s = sutra_xcalloc (1, len);
  for (int i = 0; i < c->n_targets; i++) {
    if (i)
      strcat (s, ", ");
    strcat (s, c->targets[i]);
  }
  return s;
}

SutraStatus
sutra_lora_attach (SutraModel *m, const SutraLoraConfig *c, uint64_t seed, int *n_attached,
                   SutraError *err)
{
  if (c->r <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "lora_r must be positive (got %d)", c->r);
  if (c->dropout < 0.f || c->dropout >= 1.f)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "lora_dropout must be in [0, 1) (got %g)",
                            (double) c->dropout);
  uint64_t s = seed ? seed : 0x5EED;
  int n = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (!sutra_lora_matches (c, m, l->name))
      continue;
    SutraStatus st = sutra_linear_attach_lora (l, c->r, c->alpha, c->dropout, err);
    if (st)
      return st;
    l->lora->scale = scale_for (c);
    float bound = 1.f / sqrtf ((float) l->in);
    size_t na = (size_t) c->r * l->in;
    for (size_t j = 0; j < na; j++)
      l->lora->A[j] = ((float) ((sutra_splitmix64 (&s) >> 40) * 0x1p-24) * 2.f - 1.f) * bound;
    memset (l->lora->B, 0, sizeof (float) * (size_t) l->out * c->r);
    n++;
  }
  if (n == 0) {
    char *t = describe_targets (c);
    SutraStatus st = sutra_error_set (err, SUTRA_ERR_INVALID,
                                      "LoRA targets [%s] match no linear layer of this %s model",
                                      t, m->cfg.architecture);
    free (t);
    return st;
  }
  m->train_mode = SUTRA_TRAIN_LORA;
  if (n_attached)
    *n_attached = n;
  return SUTRA_OK;
}

char *
sutra_lora_key (const char *module, bool is_a)
{
  return sutra_xasprintf ("base_model.model.%s.lora_%s.weight", module, is_a ? "A" : "B");
}

/* adapter_config.json -> SutraLoraConfig, refusing options that would change the math */
SutraStatus
sutra_lora_config_load (const char *dir, SutraLoraConfig *out, SutraError *err)
{
  char *path = sutra_path_join (dir, "adapter_config.json");
  json_object *o;
  SutraStatus st = sutra_json_load (path, SUTRA_JSON_OBJECT, &o, err);
  if (st) {
    free (path);
    return st;
  }
  SutraLoraConfig c = { 0 };
  const char *s;
  int64_t r = 0;
  double alpha = 0, dropout = 0;
  bool b;
  st = sutra_json_get_string (o, path, "peft_type", "LORA", &s, err);
  if (!st && strcmp (s, "LORA"))
    st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: peft_type '%s' is not supported (LORA)", path, s);
  if (!st)
    st = sutra_json_get_int (o, path, "r", 8, &r, err);
  if (!st && (r <= 0 || r > 65536))
    st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: r = %lld is out of range", path, (long long) r);
  if (!st)
    st = sutra_json_get_double (o, path, "lora_alpha", 8, &alpha, err);
  if (!st)
    st = sutra_json_get_double (o, path, "lora_dropout", 0, &dropout, err);
  if (!st)
    st = sutra_json_get_bool (o, path, "use_rslora", false, &c.use_rslora, err);
  if (!st)
    st = sutra_json_get_bool (o, path, "use_dora", false, &b, err);
  if (!st && b)
    st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: use_dora (DoRA) is not supported", path);
  if (!st)
    st = sutra_json_get_bool (o, path, "fan_in_fan_out", false, &b, err);
  if (!st && b)
    st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: fan_in_fan_out is not supported", path);
  if (!st)
    st = sutra_json_get_string (o, path, "bias", "none", &s, err);
  if (!st && strcmp (s, "none"))
    st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: bias '%s' is not supported (none)", path, s);
  /* options that select or reshape modules: refuse when set */
  static const char *refused[] = { "modules_to_save", "layers_to_transform", "layer_replication",
                                   "exclude_modules", "target_parameters", "trainable_token_indices" };
  for (size_t i = 0; !st && i < sizeof refused / sizeof refused[0]; i++)
    if (sutra_json_has (o, refused[i]))
      st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: %s is not supported", path, refused[i]);
  static const char *empty_maps[] = { "rank_pattern", "alpha_pattern" };
  for (size_t i = 0; !st && i < 2; i++) {
    json_object *v = json_object_object_get (o, empty_maps[i]);
    if (v && json_object_is_type (v, json_type_object) && json_object_object_length (v) > 0)
      st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: %s is not supported", path, empty_maps[i]);
  }
  if (!st) {
    json_object *t = json_object_object_get (o, "target_modules");
    if (!t)
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: target_modules is missing", path);
    else if (json_object_is_type (t, json_type_string)) {
      const char *ts = json_object_get_string (t);
      if (!strcmp (ts, "all-linear"))
        c.all_linear = true;
      else
        c.regex = sutra_xstrdup (ts);
    } else if (json_object_is_type (t, json_type_array)) {
      size_t n = json_object_array_length (t);
      c.targets = sutra_xcalloc (n ? n : 1, sizeof (char *));
      for (size_t i = 0; i < n && !st; i++) {
        json_object *e = json_object_array_get_idx (t, i);
        if (!json_object_is_type (e, json_type_string))
          st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: target_modules[%zu] is not a string", path, i);
        else
          c.targets[c.n_targets++] = sutra_xstrdup (json_object_get_string (e));
      }
    } else {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: target_modules must be a list or a string", path);
    }
  }
  json_object_put (o);
  free (path);
  if (st) {
    sutra_lora_config_clear (&c);
    return st;
  }
  c.r = (int) r;
  c.alpha = (float) alpha;
  c.dropout = (float) dropout;
  *out = c;
  return SUTRA_OK;
}

SutraStatus
sutra_lora_load (SutraModel *m, const char *dir, SutraLoraConfig *cfg_out, SutraError *err)
{
  SutraLoraConfig c;
  SutraStatus st = sutra_lora_config_load (dir, &c, err);
  if (st)
    return st;
  char *wpath = sutra_path_join (dir, "adapter_model.safetensors");
  SutraSafetensors *w = NULL;
  if (!sutra_path_exists (wpath)) {
    char *bin = sutra_path_join (dir, "adapter_model.bin");
    st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                          sutra_path_exists (bin) ? "%s: only adapter_model.safetensors is supported "
                                                    "(found the pickle adapter_model.bin)"
                                                  : "%s: adapter_model.safetensors is missing", dir);
    free (bin);
    goto out;
  }
  st = sutra_safetensors_open (wpath, &w, err);
  if (st)
    goto out;
  /* every tensor in the file must belong to a module of this model */
  size_t nt = sutra_safetensors_count (w), used = 0;
  for (size_t i = 0; i < m->n_linears && !st; i++) {
    SutraLinear *l = m->linears[i];
    char *ka = sutra_lora_key (l->name, true), *kb = sutra_lora_key (l->name, false);
    const SutraTensor *ta = sutra_safetensors_find (w, ka), *tb = sutra_safetensors_find (w, kb);
    if (!ta && !tb) {
      free (ka);
      free (kb);
      continue;
    }
    if (!ta || !tb) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s has no matching %s", wpath,
                            ta ? ka : kb, ta ? "lora_B" : "lora_A");
    } else if (ta->ndim != 2 || ta->shape[1] != l->in || tb->ndim != 2 || tb->shape[0] != l->out ||
               ta->shape[0] != tb->shape[1]) {
      st = sutra_error_set (err, SUTRA_ERR_INVALID,
                            "%s: %s has shape [%lld, %lld] but this model's %s takes %d inputs and "
                            "gives %d outputs: the adapter was made for another base model",
                            wpath, ka, (long long) ta->shape[0], (long long) ta->shape[1], l->name,
                            l->in, l->out);
    } else {
      int r = (int) ta->shape[0];
      st = sutra_linear_attach_lora (l, r, c.alpha, c.dropout, err);
      if (!st) {
        l->lora->scale = c.use_rslora ? c.alpha / sqrtf ((float) r) : c.alpha / (float) r;
        int64_t sa[2] = { r, l->in }, sb[2] = { l->out, r };
        st = sutra_safetensors_read_f32 (w, ka, l->lora->A, 2, sa, err);
        if (!st)
          st = sutra_safetensors_read_f32 (w, kb, l->lora->B, 2, sb, err);
        for (int ab = 0; !st && ab < 2; ab++) {
          const float *x = ab ? l->lora->B : l->lora->A;
          size_t cnt = (size_t) r * (size_t) (ab ? l->out : l->in);
          for (size_t k = 0; k < cnt; k++)
            if (!isfinite (x[k])) {
              st = sutra_error_set (err, SUTRA_ERR_NUMERIC, "%s: tensor %s holds NaN or infinite "
                                    "values (first at element %zu): the adapter is damaged", wpath,
                                    ab ? kb : ka, k);
              break;
            }
        }
      }
      used += 2;
    }
    free (ka);
    free (kb);
  }
  if (!st && used == 0)
    st = sutra_error_set (err, SUTRA_ERR_INVALID,
                          "%s: no tensor matches a module of this %s model: the adapter was made "
                          "for another base model", wpath, m->cfg.architecture);
  if (!st && used < nt) {
    for (size_t i = 0; i < nt; i++) {
      const char *name = sutra_safetensors_name (w, i);
      const char *mod_end = strstr (name, ".lora_");
      if (!mod_end || strncmp (name, "base_model.model.", 17)) {
        st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: tensor %s is not a LoRA A/B weight",
                              wpath, name);
        break;
      }
      char *mod = sutra_xstrndup (name + 17, (size_t) (mod_end - name - 17));
      bool found = sutra_model_find_linear (m, mod) != NULL;
      free (mod);
      if (!found) {
        st = sutra_error_set (err, SUTRA_ERR_INVALID,
                              "%s: tensor %s names a module this model does not have: the "
                              "adapter was made for another base model", wpath, name);
        break;
      }
    }
  }
  if (!st) {
    m->train_mode = SUTRA_TRAIN_LORA;
    if (cfg_out) {
      *cfg_out = c;
      memset (&c, 0, sizeof c);
    }
  } else {
    for (size_t i = 0; i < m->n_linears; i++)
      sutra_linear_detach_lora (m->linears[i]);
  }
out:
  sutra_safetensors_free (w);
  free (wpath);
  sutra_lora_config_clear (&c);
  return st;
}

SutraStatus
sutra_lora_write_files (const SutraModel *m, const SutraLoraConfig *c, const char *base_model,
                        const char *dir, SutraError *err)
{
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_metadata (w, "format", "pt");
  json_object *targets = json_object_new_array ();
  int n = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    const SutraLinear *l = m->linears[i];
    if (!l->lora)
      continue;
    char *ka = sutra_lora_key (l->name, true), *kb = sutra_lora_key (l->name, false);
    int64_t sa[2] = { l->lora->r, l->in }, sb[2] = { l->out, l->lora->r };
    sutra_safetensors_writer_add (w, ka, SUTRA_F32, 2, sa, l->lora->A);
    sutra_safetensors_writer_add (w, kb, SUTRA_F32, 2, sb, l->lora->B);
    free (ka);
    free (kb);
    n++;
  }
  if (n == 0) {
    sutra_safetensors_writer_free (w);
    json_object_put (targets);
    return sutra_error_set (err, SUTRA_ERR_INVALID, "the model has no LoRA adapter to save");
  }
  if (c->all_linear)
    json_object_put (targets), targets = json_object_new_string ("all-linear");
  else if (c->regex)
    json_object_put (targets), targets = json_object_new_string (c->regex);
  else
    for (int i = 0; i < c->n_targets; i++)
      json_object_array_add (targets, json_object_new_string (c->targets[i]));
  json_object *o = json_object_new_object ();
  json_object_object_add (o, "alpha_pattern", json_object_new_object ());
  json_object_object_add (o, "base_model_name_or_path", base_model ? json_object_new_string (base_model) : NULL);
  json_object_object_add (o, "bias", json_object_new_string ("none"));
  json_object_object_add (o, "fan_in_fan_out", json_object_new_boolean (0));
  json_object_object_add (o, "inference_mode", json_object_new_boolean (1));
  json_object_object_add (o, "init_lora_weights", json_object_new_boolean (1));
  json_object_object_add (o, "layers_pattern", NULL);
  json_object_object_add (o, "layers_to_transform", NULL);
  json_object_object_add (o, "lora_alpha", json_object_new_double (c->alpha));
  json_object_object_add (o, "lora_dropout", json_object_new_double (c->dropout));
  json_object_object_add (o, "modules_to_save", NULL);
  json_object_object_add (o, "peft_type", json_object_new_string ("LORA"));
  json_object_object_add (o, "r", json_object_new_int (c->r));
  json_object_object_add (o, "rank_pattern", json_object_new_object ());
  json_object_object_add (o, "revision", NULL);
  json_object_object_add (o, "target_modules", targets);
  json_object_object_add (o, "task_type", json_object_new_string ("CAUSAL_LM"));
  json_object_object_add (o, "use_dora", json_object_new_boolean (0));
  json_object_object_add (o, "use_rslora", json_object_new_boolean (c->use_rslora));
  const char *text = json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
  char *cpath = sutra_path_join (dir, "adapter_config.json");
  char *wpath = sutra_path_join (dir, "adapter_model.safetensors");
  SutraStatus st = sutra_safetensors_writer_write (w, wpath, err);
  if (!st)
    st = sutra_write_file_atomic (cpath, text, strlen (text), err);
  free (cpath);
  free (wpath);
  json_object_put (o);
  sutra_safetensors_writer_free (w);
  return st;
}

SutraStatus
sutra_lora_save (const SutraModel *m, const SutraLoraConfig *c, const char *base_model,
                 const char *dir, SutraError *err)
{
  char *tmp;
  SutraStatus st = sutra_tmpdir_begin (dir, &tmp, err);
  if (st)
    return st;
  st = sutra_lora_write_files (m, c, base_model, tmp, err);
  if (!st)
    st = sutra_tmpdir_commit (tmp, dir, err);
  if (st)
    sutra_rm_rf (tmp, NULL);
  free (tmp);
  return st;
}

void
sutra_lora_set_enabled (SutraModel *m, bool enabled)
{
  for (size_t i = 0; i < m->n_linears; i++)
    if (m->linears[i]->lora)
      m->linears[i]->lora->enabled = enabled;
}

SutraStatus
sutra_lora_merge (SutraModel *m, SutraError *err)
{
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (!l->lora)
      continue;
    SutraStatus st = sutra_linear_merge_lora (l, err);
    if (st)
      return st;
    sutra_linear_detach_lora (l);
  }
  if (m->train_mode == SUTRA_TRAIN_LORA)
    m->train_mode = SUTRA_TRAIN_NONE;
  return SUTRA_OK;
}

int64_t
sutra_lora_param_count (const SutraModel *m)
{
  int64_t n = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    const SutraLinear *l = m->linears[i];
    if (l->lora)
      n += (int64_t) l->lora->r * (l->in + l->out);
  }
  return n;
}
