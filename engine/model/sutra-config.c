/* sutra-config.c: config.json of the supported architectures, in the transformers v4 form
 * (rope_theta, rope_scaling) and the v5 form (rope_parameters), and back.
 *
 * Defaults are those of the transformers config classes (LlamaConfig, MistralConfig,
 * Qwen2Config, RwkvConfig, MambaConfig). Anything we cannot honour exactly is an error that
 * names the key, never a silent difference. */
#include "sutra-model.h"
#include "sutra-fsutil.h"
#include "sutra-json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  json_object *o;
  const char *where;
  SutraError *err;
  SutraStatus st;
} Reader;

static int
rd_int (Reader *r, const char *key, int64_t def, int64_t lo, int64_t hi)
{
  int64_t v = def;
  if (r->st)
    return (int) def;
  r->st = sutra_json_get_int (r->o, r->where, key, def, &v, r->err);
  if (!r->st && (v < lo || v > hi)) {
    r->st = sutra_error_set (r->err, SUTRA_ERR_FORMAT, "%s: %s = %lld is out of range [%lld, %lld]",
                             r->where, key, (long long) v, (long long) lo, (long long) hi);
  }
  /* after an error, a value in range: later defaults are computed from it (4 * hidden_size)
   * before the error stops the parse (fuzz: a huge hidden_size overflowed the int) */
  return r->st ? (int) lo : (int) v;
}

static double
rd_double (Reader *r, const char *key, double def)
{
  double v = def;
  if (!r->st)
    r->st = sutra_json_get_double (r->o, r->where, key, def, &v, r->err);
  if (!r->st && !isfinite (v))
    r->st = sutra_error_set (r->err, SUTRA_ERR_FORMAT, "%s: %s is not finite", r->where, key);
  return v;
}

/* A normalisation epsilon: stored as a float, added under a square root, so in (0, 1]
 * (checkpoints use 1e-12 .. 1e-5); anything else would overflow the float or give NaN. */
static float
rd_eps (Reader *r, const char *key, double def)
{
  double v = rd_double (r, key, def);
  if (!r->st && !(v > 0 && v <= 1 && (float) v > 0))
    r->st = sutra_error_set (r->err, SUTRA_ERR_FORMAT, "%s: %s = %g is out of range (0, 1]", r->where,
                             key, v);
  return (float) v;
}

static bool
rd_bool (Reader *r, const char *key, bool def)
{
  bool v = def;
  if (!r->st)
    r->st = sutra_json_get_bool (r->o, r->where, key, def, &v, r->err);
  return v;
}

static const char *
rd_str (Reader *r, const char *key, const char *def)
{
  const char *v = def;
  if (!r->st)
    r->st = sutra_json_get_string (r->o, r->where, key, def, &v, r->err);
  return v;
}

/* eos_token_id: an int or a list of ints */
static void
rd_eos (Reader *r, SutraModelConfig *c)
{
  c->n_eos = 0;
  if (r->st || !sutra_json_has (r->o, "eos_token_id"))
    return;
  json_object *v = json_object_object_get (r->o, "eos_token_id");
  if (json_object_is_type (v, json_type_int)) {
    c->eos_token_ids[c->n_eos++] = json_object_get_int (v);
    return;
  }
  if (json_object_is_type (v, json_type_array)) {
    size_t n = json_object_array_length (v);
    for (size_t i = 0; i < n && c->n_eos < SUTRA_MAX_EOS; i++) {
      json_object *e = json_object_array_get_idx (v, i);
      if (!json_object_is_type (e, json_type_int)) {
        r->st = sutra_error_set (r->err, SUTRA_ERR_FORMAT, "%s: eos_token_id[%zu] is not an integer",
                                 r->where, i);
        return;
      }
      c->eos_token_ids[c->n_eos++] = json_object_get_int (e);
    }
    return;
  }
  r->st = sutra_error_set (r->err, SUTRA_ERR_FORMAT, "%s: eos_token_id: expected an integer or a list",
                           r->where);
}

static SutraStatus
parse_dtype (Reader *r, SutraModelConfig *c)
{
  const char *d = rd_str (r, "dtype", NULL);
  if (!d)
    d = rd_str (r, "torch_dtype", "float32");
  if (r->st)
    return r->st;
  if (!strcmp (d, "float32"))
    c->dtype = SUTRA_F32;
  else if (!strcmp (d, "float16"))
    c->dtype = SUTRA_F16;
  else if (!strcmp (d, "bfloat16"))
    c->dtype = SUTRA_BF16;
  else
    c->dtype = SUTRA_F32;   /* the weights' own dtypes decide; this is informational */
  return SUTRA_OK;
}

/* rope settings: v5 rope_parameters or v4 rope_theta + rope_scaling */
static void
parse_rope (Reader *r, SutraModelConfig *c)
{
  json_object *params = NULL, *scaling = NULL;
  if (r->st)
    return;
  r->st = sutra_json_get_object (r->o, r->where, "rope_parameters", &params, r->err);
  if (!r->st)
    r->st = sutra_json_get_object (r->o, r->where, "rope_scaling", &scaling, r->err);
  if (r->st)
    return;
  double theta = rd_double (r, "rope_theta", 10000.0);
  json_object *src = params ? params : scaling;
  char where[160];
  snprintf (where, sizeof where, "%s: %s", r->where, params ? "rope_parameters" : "rope_scaling");
  Reader sub = { src, where, r->err, SUTRA_OK };
  const char *type = "default";
  if (src) {
    type = rd_str (&sub, "rope_type", NULL);
    if (!type)
      type = rd_str (&sub, "type", "default");
    if (params)
      theta = rd_double (&sub, "rope_theta", theta);
  }
  double partial = rd_double (r, "partial_rotary_factor", 1.0);
  if (src && !sub.st) {
    double p2 = rd_double (&sub, "partial_rotary_factor", partial);
    partial = p2;
  }
  if (sub.st) {
    r->st = sub.st;
    return;
  }
  if (partial != 1.0) {
    r->st = sutra_error_set (r->err, SUTRA_ERR_UNSUPPORTED,
                             "%s: partial_rotary_factor %g is not supported (only 1.0)", r->where,
                             partial);
    return;
  }
  c->rope.theta = theta;
  c->rope.rot_dim = c->head_dim;
  c->rope.factor = 1.0;
  if (!strcmp (type, "default")) {
    c->rope.type = SUTRA_ROPE_DEFAULT;
  } else if (!strcmp (type, "linear")) {
    c->rope.type = SUTRA_ROPE_LINEAR;
    c->rope.factor = rd_double (&sub, "factor", 1.0);
  } else if (!strcmp (type, "llama3")) {
    c->rope.type = SUTRA_ROPE_LLAMA3;
    c->rope.factor = rd_double (&sub, "factor", 8.0);
    c->rope.low_freq_factor = rd_double (&sub, "low_freq_factor", 1.0);
    c->rope.high_freq_factor = rd_double (&sub, "high_freq_factor", 4.0);
    c->rope.original_max_position = rd_int (&sub, "original_max_position_embeddings", 8192, 1,
                                            1 << 24);
    if (!sub.st && c->rope.high_freq_factor <= c->rope.low_freq_factor)
      sub.st = sutra_error_set (r->err, SUTRA_ERR_FORMAT,
                                "%s: high_freq_factor must exceed low_freq_factor", where);
  } else {
    r->st = sutra_error_set (r->err, SUTRA_ERR_UNSUPPORTED,
                             "%s: rope type '%s' is not supported (default, linear, llama3)", where,
                             type);
    return;
  }
  if (sub.st)
    r->st = sub.st;
  else if (c->rope.factor <= 0)
    r->st = sutra_error_set (r->err, SUTRA_ERR_FORMAT, "%s: factor must be positive", where);
  else if (!(c->rope.theta > 0))
    r->st = sutra_error_set (r->err, SUTRA_ERR_FORMAT, "%s: rope_theta must be positive", r->where);
}

static void
parse_llama (Reader *r, SutraModelConfig *c)
{
  bool qwen2 = !strcmp (c->model_type, "qwen2");
  bool mistral = !strcmp (c->model_type, "mistral");
  c->vocab_size = rd_int (r, "vocab_size", 32000, 1, 1 << 24);
  c->hidden_size = rd_int (r, "hidden_size", 4096, 1, 1 << 20);
  c->intermediate_size = rd_int (r, "intermediate_size", 11008, 1, 1 << 22);
  c->n_layers = rd_int (r, "num_hidden_layers", 32, 1, 4096);
  c->n_heads = rd_int (r, "num_attention_heads", 32, 1, 4096);
  c->n_kv_heads = rd_int (r, "num_key_value_heads", c->n_heads, 1, 4096);
  if (r->st)
    return;
  if (c->n_heads % c->n_kv_heads != 0) {
    r->st = sutra_error_set (r->err, SUTRA_ERR_FORMAT,
                             "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                             r->where, c->n_heads, c->n_kv_heads);
    return;
  }
  int def_hd = c->hidden_size / c->n_heads;
  c->head_dim = rd_int (r, "head_dim", def_hd, 2, 1 << 16);
  if (!r->st && c->head_dim % 2) {
    r->st = sutra_error_set (r->err, SUTRA_ERR_FORMAT, "%s: head_dim %d must be even", r->where,
                             c->head_dim);
    return;
  }
  c->max_position_embeddings = rd_int (r, "max_position_embeddings", 2048, 1, 1 << 24);
  c->rms_norm_eps = rd_eps (r, "rms_norm_eps", 1e-6);
  c->tie_word_embeddings = rd_bool (r, "tie_word_embeddings", false);
  const char *act = rd_str (r, "hidden_act", "silu");
  if (r->st)
    return;
  if (!strcmp (act, "silu") || !strcmp (act, "swish"))
    c->hidden_act = SUTRA_ACT_SILU;
  else if (!strcmp (act, "gelu"))
    c->hidden_act = SUTRA_ACT_GELU_ERF;
  else if (!strcmp (act, "gelu_pytorch_tanh") || !strcmp (act, "gelu_new"))
    c->hidden_act = SUTRA_ACT_GELU_TANH;
  else {
    r->st = sutra_error_set (r->err, SUTRA_ERR_UNSUPPORTED,
                             "%s: hidden_act '%s' is not supported (silu, gelu, gelu_pytorch_tanh)",
                             r->where, act);
    return;
  }
  if (qwen2) {
    c->attention_bias = true;     /* Qwen2 always has q/k/v biases, never an o_proj bias */
    c->o_bias = false;
    c->mlp_bias = false;
  } else if (mistral) {
    c->attention_bias = c->o_bias = false;
    c->mlp_bias = false;
  } else {
    c->attention_bias = rd_bool (r, "attention_bias", false);
    c->o_bias = c->attention_bias;
    c->mlp_bias = rd_bool (r, "mlp_bias", false);
  }
  c->sliding_window = 0;
  if (mistral || qwen2) {
    bool use_sw = qwen2 ? rd_bool (r, "use_sliding_window", false) : true;
    if (!r->st && use_sw && sutra_json_has (r->o, "sliding_window"))
      c->sliding_window = rd_int (r, "sliding_window", 0, 0, 1 << 24);
  }
  int pretraining_tp = rd_int (r, "pretraining_tp", 1, 1, 64);
  (void) pretraining_tp;   /* transformers ignores it at inference when the weights are whole */
  parse_rope (r, c);
}

static void
parse_rwkv (Reader *r, SutraModelConfig *c)
{
  c->vocab_size = rd_int (r, "vocab_size", 50277, 1, 1 << 24);
  c->hidden_size = rd_int (r, "hidden_size", 4096, 1, 1 << 20);
  c->n_layers = rd_int (r, "num_hidden_layers", 32, 1, 4096);
  c->attention_hidden_size = rd_int (r, "attention_hidden_size", c->hidden_size, 1, 1 << 20);
  c->intermediate_size = rd_int (r, "intermediate_size", 4 * c->hidden_size, 1, 1 << 22);
  c->layer_norm_epsilon = rd_eps (r, "layer_norm_epsilon", 1e-5);
  c->rescale_every = rd_int (r, "rescale_every", 6, 0, 1 << 20);
  c->tie_word_embeddings = rd_bool (r, "tie_word_embeddings", false);
  c->max_position_embeddings = rd_int (r, "context_length", 1024, 1, 1 << 24);
  if (!r->st && c->attention_hidden_size != c->hidden_size)
    r->st = sutra_error_set (r->err, SUTRA_ERR_UNSUPPORTED,
                             "%s: attention_hidden_size %d differs from hidden_size %d (not supported)",
                             r->where, c->attention_hidden_size, c->hidden_size);
}

static void
parse_mamba (Reader *r, SutraModelConfig *c)
{
  c->vocab_size = rd_int (r, "vocab_size", 50280, 1, 1 << 24);
  c->hidden_size = rd_int (r, "hidden_size", 768, 1, 1 << 20);
  c->n_layers = rd_int (r, "num_hidden_layers", 32, 1, 4096);
  c->state_size = rd_int (r, "state_size", 16, 1, 4096);
  c->expand = rd_int (r, "expand", 2, 1, 64);
  c->conv_kernel = rd_int (r, "conv_kernel", 4, 1, 64);
  c->intermediate_mamba = rd_int (r, "intermediate_size", c->expand * c->hidden_size, 1, 1 << 22);
  c->intermediate_size = c->intermediate_mamba;
  c->layer_norm_epsilon = rd_eps (r, "layer_norm_epsilon", 1e-5);
  c->use_bias = rd_bool (r, "use_bias", false);
  c->use_conv_bias = rd_bool (r, "use_conv_bias", true);
  c->residual_in_fp32 = rd_bool (r, "residual_in_fp32", true);
  c->tie_word_embeddings = rd_bool (r, "tie_word_embeddings", true);
  c->max_position_embeddings = 0;
  const char *act = rd_str (r, "hidden_act", "silu");
  if (!r->st && strcmp (act, "silu") && strcmp (act, "swish"))
    r->st = sutra_error_set (r->err, SUTRA_ERR_UNSUPPORTED,
                             "%s: hidden_act '%s' is not supported for Mamba (silu)", r->where, act);
  if (r->st)
    return;
  /* time_step_rank: an integer or "auto" = ceil(hidden_size / 16) */
  json_object *v = json_object_object_get (r->o, "time_step_rank");
  if (v && json_object_is_type (v, json_type_string)) {
    if (strcmp (json_object_get_string (v), "auto")) {
      r->st = sutra_error_set (r->err, SUTRA_ERR_FORMAT, "%s: time_step_rank: expected an integer or \"auto\"",
                               r->where);
      return;
    }
    c->time_step_rank = (c->hidden_size + 15) / 16;
  } else {
    c->time_step_rank = rd_int (r, "time_step_rank", (c->hidden_size + 15) / 16, 1, 1 << 20);
  }
}

static const struct {
  const char *arch, *model_type;
  SutraArch kind;
} known[] = {
  { "LlamaForCausalLM", "llama", SUTRA_ARCH_LLAMA },
  { "MistralForCausalLM", "mistral", SUTRA_ARCH_LLAMA },
  { "Qwen2ForCausalLM", "qwen2", SUTRA_ARCH_LLAMA },
  { "RwkvForCausalLM", "rwkv", SUTRA_ARCH_RWKV4 },
  { "MambaForCausalLM", "mamba", SUTRA_ARCH_MAMBA },
};

SutraStatus
sutra_model_config_parse (const char *json, size_t len, const char *name, SutraModelConfig *out,
                          SutraError *err)
{
  json_object *o;
  SutraStatus st = sutra_json_parse (json, len, name, SUTRA_JSON_OBJECT, &o, err);
  if (st)
    return st;
  SutraModelConfig c;
  memset (&c, 0, sizeof c);
  Reader r = { o, name, err, SUTRA_OK };
  /* architectures[0] names the class; model_type the family */
  const char *arch = NULL;
  json_object *archs = json_object_object_get (o, "architectures");
  if (archs && json_object_is_type (archs, json_type_array) && json_object_array_length (archs) > 0) {
    json_object *a0 = json_object_array_get_idx (archs, 0);
    if (json_object_is_type (a0, json_type_string))
      arch = json_object_get_string (a0);
  }
  const char *mt = rd_str (&r, "model_type", NULL);
  if (r.st)
    goto out;
  int found = -1;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if ((arch && !strcmp (arch, known[i].arch)) || (!arch && mt && !strcmp (mt, known[i].model_type)))
      found = (int) i;
  if (found < 0) {
    if (!arch && !mt)
      r.st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                              "%s: neither \"architectures\" nor \"model_type\" is given", name);
    else
      r.st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                              "%s: architecture '%s' is not supported (Llama, Mistral, Qwen2, "
                              "RWKV-4, Mamba)", name, arch ? arch : mt);
    goto out;
  }
  c.arch = known[found].kind;
  snprintf (c.architecture, sizeof c.architecture, "%s", known[found].arch);
  snprintf (c.model_type, sizeof c.model_type, "%s", known[found].model_type);
  c.bos_token_id = rd_int (&r, "bos_token_id", -1, -1, 1 << 24);
  c.pad_token_id = rd_int (&r, "pad_token_id", -1, -1, 1 << 24);
  rd_eos (&r, &c);
  parse_dtype (&r, &c);
  switch (c.arch) {
  case SUTRA_ARCH_LLAMA: parse_llama (&r, &c); break;
  case SUTRA_ARCH_RWKV4: parse_rwkv (&r, &c); break;
  case SUTRA_ARCH_MAMBA: parse_mamba (&r, &c); break;
  }
  if (!r.st)
    *out = c;
out:
  json_object_put (o);
  return r.st;
}

SutraStatus
sutra_model_config_load (const char *dir, SutraModelConfig *cfg, SutraError *err)
{
  char *path = sutra_path_join (dir, "config.json");
  char *text;
  size_t len;
  SutraStatus st = sutra_read_file (path, 16u << 20, &text, &len, err);
  if (!st) {
    st = sutra_model_config_parse (text, len, path, cfg, err);
    free (text);
  }
  free (path);
  return st;
}

/* A float as the shortest decimal that reads back the same (1e-05, not 9.99999974738e-06). */
static json_object *
new_float (float f)
{
  char buf[32];
  for (int prec = 6; prec <= 9; prec++) {
    snprintf (buf, sizeof buf, "%.*g", prec, (double) f);
    if (strtof (buf, NULL) == f)
      break;
  }
  return json_object_new_double_s (strtod (buf, NULL), buf);
}

static const char *
dtype_torch_name (SutraDType t)
{
  return t == SUTRA_F16 ? "float16" : t == SUTRA_BF16 ? "bfloat16" : "float32";
}

char *
sutra_model_config_to_json (const SutraModelConfig *c)
{
  json_object *o = json_object_new_object ();
  json_object *archs = json_object_new_array ();
  json_object_array_add (archs, json_object_new_string (c->architecture));
  json_object_object_add (o, "architectures", archs);
  json_object_object_add (o, "model_type", json_object_new_string (c->model_type));
  json_object_object_add (o, "vocab_size", json_object_new_int (c->vocab_size));
  json_object_object_add (o, "hidden_size", json_object_new_int (c->hidden_size));
  json_object_object_add (o, "num_hidden_layers", json_object_new_int (c->n_layers));
  json_object_object_add (o, "tie_word_embeddings", json_object_new_boolean (c->tie_word_embeddings));
  if (c->bos_token_id >= 0)
    json_object_object_add (o, "bos_token_id", json_object_new_int (c->bos_token_id));
  if (c->pad_token_id >= 0)
    json_object_object_add (o, "pad_token_id", json_object_new_int (c->pad_token_id));
  if (c->n_eos == 1)
    json_object_object_add (o, "eos_token_id", json_object_new_int (c->eos_token_ids[0]));
  else if (c->n_eos > 1) {
    json_object *e = json_object_new_array ();
    for (int i = 0; i < c->n_eos; i++)
      json_object_array_add (e, json_object_new_int (c->eos_token_ids[i]));
    json_object_object_add (o, "eos_token_id", e);
  }
  json_object_object_add (o, "torch_dtype", json_object_new_string (dtype_torch_name (c->dtype)));
  switch (c->arch) {
  case SUTRA_ARCH_LLAMA: {
    json_object_object_add (o, "intermediate_size", json_object_new_int (c->intermediate_size));
    json_object_object_add (o, "num_attention_heads", json_object_new_int (c->n_heads));
    json_object_object_add (o, "num_key_value_heads", json_object_new_int (c->n_kv_heads));
    json_object_object_add (o, "head_dim", json_object_new_int (c->head_dim));
    json_object_object_add (o, "max_position_embeddings", json_object_new_int (c->max_position_embeddings));
    json_object_object_add (o, "rms_norm_eps", new_float (c->rms_norm_eps));
    json_object_object_add (o, "hidden_act", json_object_new_string (
      c->hidden_act == SUTRA_ACT_SILU ? "silu" : c->hidden_act == SUTRA_ACT_GELU_ERF ? "gelu"
                                                                                  : "gelu_pytorch_tanh"));
    if (strcmp (c->model_type, "llama") == 0) {
      json_object_object_add (o, "attention_bias", json_object_new_boolean (c->attention_bias));
      json_object_object_add (o, "mlp_bias", json_object_new_boolean (c->mlp_bias));
    }
    if (c->sliding_window > 0)
      json_object_object_add (o, "sliding_window", json_object_new_int (c->sliding_window));
    else if (strcmp (c->model_type, "mistral") == 0)
      json_object_object_add (o, "sliding_window", NULL);
    /* v4 form: read by every transformers version (v5 converts it) */
    json_object_object_add (o, "rope_theta", json_object_new_double (c->rope.theta));
    if (c->rope.type != SUTRA_ROPE_DEFAULT) {
      json_object *s = json_object_new_object ();
      json_object_object_add (s, "rope_type", json_object_new_string (
        c->rope.type == SUTRA_ROPE_LINEAR ? "linear" : "llama3"));
      json_object_object_add (s, "factor", json_object_new_double (c->rope.factor));
      if (c->rope.type == SUTRA_ROPE_LLAMA3) {
        json_object_object_add (s, "low_freq_factor", json_object_new_double (c->rope.low_freq_factor));
        json_object_object_add (s, "high_freq_factor", json_object_new_double (c->rope.high_freq_factor));
        json_object_object_add (s, "original_max_position_embeddings",
                                json_object_new_int (c->rope.original_max_position));
      }
      json_object_object_add (o, "rope_scaling", s);
    }
    break;
  }
  case SUTRA_ARCH_RWKV4:
    json_object_object_add (o, "attention_hidden_size", json_object_new_int (c->attention_hidden_size));
    json_object_object_add (o, "intermediate_size", json_object_new_int (c->intermediate_size));
    json_object_object_add (o, "layer_norm_epsilon", new_float (c->layer_norm_epsilon));
    json_object_object_add (o, "rescale_every", json_object_new_int (c->rescale_every));
    json_object_object_add (o, "context_length", json_object_new_int (c->max_position_embeddings));
    break;
  case SUTRA_ARCH_MAMBA:
    json_object_object_add (o, "state_size", json_object_new_int (c->state_size));
    json_object_object_add (o, "expand", json_object_new_int (c->expand));
    json_object_object_add (o, "conv_kernel", json_object_new_int (c->conv_kernel));
    json_object_object_add (o, "intermediate_size", json_object_new_int (c->intermediate_mamba));
    json_object_object_add (o, "time_step_rank", json_object_new_int (c->time_step_rank));
    json_object_object_add (o, "layer_norm_epsilon", new_float (c->layer_norm_epsilon));
    json_object_object_add (o, "use_bias", json_object_new_boolean (c->use_bias));
    json_object_object_add (o, "use_conv_bias", json_object_new_boolean (c->use_conv_bias));
    json_object_object_add (o, "residual_in_fp32", json_object_new_boolean (c->residual_in_fp32));
    json_object_object_add (o, "hidden_act", json_object_new_string ("silu"));
    break;
  }
  char *s = sutra_xstrdup (json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (o);
  return s;
}
