/* sutra-model.c: the architecture-independent half of a model: loading a folder, registering
 * linears and parameters from the checkpoint, fresh initialisation, trainability, saving. */
#include "sutra-model.h"
#include "sutra-fsutil.h"
#include "sutra-rng.h"
#include "sutra-qfile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const SutraModelVTable sutra_llama_vtable, sutra_rwkv4_vtable, sutra_mamba_vtable;

static const SutraModelVTable *
vtable_for (SutraArch arch)
{
  switch (arch) {
  case SUTRA_ARCH_LLAMA: return &sutra_llama_vtable;
  case SUTRA_ARCH_RWKV4: return &sutra_rwkv4_vtable;
  case SUTRA_ARCH_MAMBA: return &sutra_mamba_vtable;
  default: return NULL;
  }
}

static const char *
arch_label (SutraArch arch)
{
  return arch == SUTRA_ARCH_LLAMA ? "Llama" : arch == SUTRA_ARCH_RWKV4 ? "RWKV-4" : "Mamba";
}

static SutraStatus
finish_load (SutraModel *m, SutraError *err)
{
  m->vt = vtable_for (m->cfg.arch);
  if (!m->vt)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s models are not supported in this build",
                            arch_label (m->cfg.arch));
  m->dropout_rng = 0x9E3779B97F4A7C15ULL;
  return m->vt->load (m, err);
}

SutraStatus
sutra_model_load (const char *dir, SutraModel **out, SutraError *err)
{
  if (!sutra_is_dir (dir))
    return sutra_error_set (err, sutra_path_exists (dir) ? SUTRA_ERR_INVALID : SUTRA_ERR_NOT_FOUND,
                            "%s: not a model folder (expected a folder with config.json and "
                            "*.safetensors)", dir);
  SutraModel *m = sutra_xcalloc (1, sizeof *m);
  m->dir = sutra_xstrdup (dir);
  SutraStatus st = sutra_model_config_load (dir, &m->cfg, err);
  if (!st)
    st = sutra_safetensors_open_dir (dir, &m->weights, err);
  if (!st)
    st = finish_load (m, err);
  if (st) {
    sutra_model_free (m);
    return st;
  }
  *out = m;
  return SUTRA_OK;
}

/* ---- seeded normal numbers for fresh weights (splitmix64 + Box-Muller) ---- */
static void
fill_normal (float *x, size_t n, float std, uint64_t *s)
{
  for (size_t i = 0; i < n; i += 2) {
    double u1 = ((sutra_splitmix64 (s) >> 11) + 1.0) * 0x1p-53;   /* (0, 1] */
    double u2 = (sutra_splitmix64 (s) >> 11) * 0x1p-53;
    double r = sqrt (-2.0 * log (u1));
    x[i] = (float) (r * cos (2 * M_PI * u2)) * std;
    if (i + 1 < n)
      x[i + 1] = (float) (r * sin (2 * M_PI * u2)) * std;
  }
}

SutraStatus
sutra_model_new_random (const SutraModelConfig *cfg, float init_std, uint64_t seed,
                        SutraModel **out, SutraError *err)
{
  SutraModel *m = sutra_xcalloc (1, sizeof *m);
  m->cfg = *cfg;
  SutraStatus st = finish_load (m, err);
  if (st) {
    sutra_model_free (m);
    return st;
  }
  /* transformers' _init_weights: projections and embeddings ~ N(0, std), biases 0; norms are
   * set by the architecture's load (ones) and left alone here. */
  uint64_t s = seed ? seed : 1;
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (l->w_owned)
      fill_normal (l->w, (size_t) l->in * l->out, init_std, &s);
  }
  for (size_t i = 0; i < m->n_params; i++) {
    SutraParam *p = m->params[i];
    if (strstr (p->name, "embed") || strstr (p->name, "embeddings"))
      fill_normal (p->data, (size_t) (p->shape[0] * (p->ndim > 1 ? p->shape[1] : 1)), init_std, &s);
  }
  *out = m;
  return SUTRA_OK;
}

void
sutra_model_free (SutraModel *m)
{
  if (!m)
    return;
  if (m->vt && m->vt->free_impl)
    m->vt->free_impl (m);
  for (size_t i = 0; i < m->n_linears; i++) {
    sutra_linear_clear (m->linears[i]);
    free (m->linears[i]);
  }
  free (m->linears);
  for (size_t i = 0; i < m->n_params; i++) {
    SutraParam *p = m->params[i];
    if (p->owned)
      sutra_aligned_free (p->data);
    sutra_aligned_free (p->grad);
    free (p->name);
    free (p);
  }
  free (m->params);
  sutra_safetensors_free (m->weights);
  free (m->dir);
  free (m);
}

/* Index of the first NaN or infinity in x[n], or -1. Exponent bits all ones = not finite
 * (IEEE 754 binary32); a branch-free OR over blocks keeps the scan at memory speed. */
static int64_t
first_non_finite (const float *x, size_t n)
{
  const uint32_t *u = (const uint32_t *) x;
  for (size_t b = 0; b < n; b += 4096) {
    size_t e = b + 4096 < n ? b + 4096 : n;
    uint32_t any = 0;
    for (size_t i = b; i < e; i++)
      any |= (uint32_t) ((u[i] & 0x7f800000u) == 0x7f800000u);
    if (any)
      for (size_t i = b; i < e; i++)
        if ((u[i] & 0x7f800000u) == 0x7f800000u)
          return (int64_t) i;
  }
  return -1;
}

/* Loads tensor `name` with the expected shape into an f32 pointer: borrowed when the file
 * holds aligned F32, else converted into an owned buffer. A checkpoint holding NaN or
 * infinite weights is refused here, naming the file and tensor (docs/reliability.md): it
 * would otherwise only surface as NaN logits or a NaN loss, far from its cause. */
static SutraStatus
load_f32 (SutraModel *m, const char *name, int ndim, const int64_t *shape, float **data,
          bool *owned, SutraError *err)
{
  size_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= (size_t) shape[i];
  if (!m->weights) {                /* fresh model */
    *data = sutra_try_alloc (n * sizeof (float), name, err);
    *owned = true;
    return *data ? SUTRA_OK : SUTRA_ERR_NOMEM;
  }
  const SutraTensor *t = sutra_safetensors_find (m->weights, name);
  if (!t)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor %s is missing",
                            m->dir ? m->dir : "model", name);
  if (t->dtype == SUTRA_F32 && sutra_safetensors_is_aligned (t)) {
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
      same = t->shape[i] == shape[i];
    if (same) {
      int64_t bad = first_non_finite (t->data, n);
      if (bad >= 0)
        return sutra_error_set (err, SUTRA_ERR_NUMERIC, "%s: tensor %s holds NaN or infinite values "
                                "(first at element %lld): the checkpoint is damaged",
                                sutra_safetensors_path (m->weights, name), name, (long long) bad);
      *data = t->data;
      *owned = false;
      return SUTRA_OK;
    }
  }
  float *buf = sutra_try_alloc (n * sizeof (float), name, err);
  if (!buf)
    return SUTRA_ERR_NOMEM;
  SutraStatus st = sutra_safetensors_read_f32 (m->weights, name, buf, ndim, shape, err);
  int64_t bad = st ? -1 : first_non_finite (buf, n);
  if (bad >= 0)
    st = sutra_error_set (err, SUTRA_ERR_NUMERIC, "%s: tensor %s holds NaN or infinite values (first "
                          "at element %lld): the checkpoint is damaged",
                          sutra_safetensors_path (m->weights, name), name, (long long) bad);
  if (st) {
    sutra_aligned_free (buf);
    return st;
  }
  *data = buf;
  *owned = true;
  return SUTRA_OK;
}

SutraStatus
sutra_model_add_linear (SutraModel *m, const char *name, int in, int out, bool has_bias,
                        SutraLinear **out_l, SutraError *err)
{
  SutraLinear *l = sutra_xcalloc (1, sizeof *l);
  l->name = sutra_xstrdup (name);
  l->in = in;
  l->out = out;
  SutraStatus st;
  if (m->weights && sutra_qfile_has_packed (m->weights, name)) {   /* a quantized model file */
    st = sutra_qfile_load_linear (m->weights, name, out, in, &l->qw, err);
  } else {
    char *wn = sutra_xasprintf ("%s.weight", name);
    int64_t wshape[2] = { out, in };
    st = load_f32 (m, wn, 2, wshape, &l->w, &l->w_owned, err);
    free (wn);
  }
  if (!st && has_bias) {
    char *bn = sutra_xasprintf ("%s.bias", name);
    int64_t bshape[1] = { out };
    st = load_f32 (m, bn, 1, bshape, &l->bias, &l->bias_owned, err);
    free (bn);
  }
  if (st) {
    sutra_linear_clear (l);
    free (l);
    return st;
  }
  m->linears = sutra_xrealloc (m->linears, sizeof (SutraLinear *) * (m->n_linears + 1));
  m->linears[m->n_linears++] = l;
  if (out_l)
    *out_l = l;
  return SUTRA_OK;
}

SutraStatus
sutra_model_add_tied_linear (SutraModel *m, const char *name, SutraParam *weight,
                             SutraLinear **out_l, SutraError *err)
{
  SUTRA_ASSERT (weight->ndim == 2);
  if (m->weights && sutra_qfile_has_packed (m->weights, name))   /* quantized head: not tied */
    return sutra_model_add_linear (m, name, (int) weight->shape[1], (int) weight->shape[0], false,
                                   out_l, err);
  SutraLinear *l = sutra_xcalloc (1, sizeof *l);
  l->name = sutra_xstrdup (name);
  l->out = (int) weight->shape[0];
  l->in = (int) weight->shape[1];
  l->w = weight->data;
  l->w_owned = false;
  m->linears = sutra_xrealloc (m->linears, sizeof (SutraLinear *) * (m->n_linears + 1));
  m->linears[m->n_linears++] = l;
  m->tied_linear = l;
  m->tied_param = weight;
  (void) err;
  if (out_l)
    *out_l = l;
  return SUTRA_OK;
}

SutraStatus
sutra_model_add_param (SutraModel *m, const char *name, int ndim, const int64_t *shape,
                       SutraParam **out_p, SutraError *err)
{
  SutraParam *p = sutra_xcalloc (1, sizeof *p);
  p->name = sutra_xstrdup (name);
  p->ndim = ndim;
  for (int i = 0; i < 4; i++)
    p->shape[i] = i < ndim ? shape[i] : 1;
  SutraStatus st = load_f32 (m, name, ndim, shape, &p->data, &p->owned, err);
  if (st) {
    free (p->name);
    free (p);
    return st;
  }
  m->params = sutra_xrealloc (m->params, sizeof (SutraParam *) * (m->n_params + 1));
  m->params[m->n_params++] = p;
  if (out_p)
    *out_p = p;
  return SUTRA_OK;
}

SutraLinear *
sutra_model_find_linear (const SutraModel *m, const char *name)
{
  for (size_t i = 0; i < m->n_linears; i++)
    if (strcmp (m->linears[i]->name, name) == 0)
      return m->linears[i];
  return NULL;
}

SutraParam *
sutra_model_find_param (const SutraModel *m, const char *name)
{
  for (size_t i = 0; i < m->n_params; i++)
    if (strcmp (m->params[i]->name, name) == 0)
      return m->params[i];
  return NULL;
}

static int64_t
param_numel (const SutraParam *p)
{
  int64_t n = 1;
  for (int i = 0; i < p->ndim; i++)
    n *= p->shape[i];
  return n;
}

int64_t
sutra_model_param_count (const SutraModel *m)
{
  int64_t n = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    const SutraLinear *l = m->linears[i];
    if (l == m->tied_linear)
      continue;                  /* counted once, as the embedding */
    n += (int64_t) l->in * l->out + (l->bias ? l->out : 0);
  }
  for (size_t i = 0; i < m->n_params; i++)
    n += param_numel (m->params[i]);
  return n;
}

size_t
sutra_model_weight_bytes (const SutraModel *m)
{
  size_t n = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    const SutraLinear *l = m->linears[i];
    if (l == m->tied_linear)
      continue;
    n += sutra_linear_weight_bytes (l) + (l->bias ? sizeof (float) * (size_t) l->out : 0);
  }
  for (size_t i = 0; i < m->n_params; i++)
    n += sizeof (float) * (size_t) param_numel (m->params[i]);
  return n;
}

SutraStatus
sutra_model_make_trainable (SutraModel *m, SutraError *err)
{
  for (size_t i = 0; i < m->n_params; i++) {
    SutraParam *p = m->params[i];
    size_t n = (size_t) param_numel (p);
    if (!p->owned) {
      float *d = sutra_try_alloc (n * sizeof (float), p->name, err);
      if (!d)
        return SUTRA_ERR_NOMEM;
      memcpy (d, p->data, n * sizeof (float));
      p->data = d;
      p->owned = true;
    }
    if (!p->grad && !(p->grad = sutra_try_alloc (n * sizeof (float), p->name, err)))
      return SUTRA_ERR_NOMEM;
    p->trainable = true;
  }
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (l == m->tied_linear) {
      l->w = m->tied_param->data;        /* the embedding may have moved into owned memory */
      l->dw = m->tied_param->grad;
      l->dw_shared = true;
      l->trainable = true;
      continue;
    }
    SutraStatus st = sutra_linear_make_trainable (l, err);
    if (st)
      return st;
  }
  m->train_mode = SUTRA_TRAIN_FULL;
  return SUTRA_OK;
}

void
sutra_model_zero_grad (SutraModel *m)
{
  for (size_t i = 0; i < m->n_params; i++) {
    SutraParam *p = m->params[i];
    if (p->grad)
      memset (p->grad, 0, sizeof (float) * (size_t) param_numel (p));
  }
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (l->dw && !l->dw_shared)
      memset (l->dw, 0, sizeof (float) * (size_t) l->in * l->out);
    if (l->dbias)
      memset (l->dbias, 0, sizeof (float) * (size_t) l->out);
    if (l->lora) {
      memset (l->lora->dA, 0, sizeof (float) * (size_t) l->lora->r * l->in);
      memset (l->lora->dB, 0, sizeof (float) * (size_t) l->out * l->lora->r);
    }
  }
}

SutraStatus
sutra_model_forward (SutraModel *m, const SutraBatch *b, bool for_backward, float **logits,
                     SutraError *err)
{
  return m->vt->forward (m, b, for_backward, logits, err);
}

SutraStatus
sutra_model_backward (SutraModel *m, const float *dlogits, SutraError *err)
{
  return m->vt->backward (m, dlogits, err);
}

SutraStatus
sutra_model_write_files (SutraModel *m, const char *dir, SutraDType dtype, SutraError *err)
{
  if (dtype != SUTRA_F32 && dtype != SUTRA_F16 && dtype != SUTRA_BF16)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "model weights can be saved as F32, F16 or BF16");
  SutraModelConfig cfg = m->cfg;
  cfg.dtype = dtype;
  char *json = sutra_model_config_to_json (&cfg);
  char *cpath = sutra_path_join (dir, "config.json");
  SutraStatus st = sutra_write_file_atomic (cpath, json, strlen (json), err);
  free (cpath);
  free (json);
  if (st)
    return st;
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  sutra_safetensors_writer_metadata (w, "format", "pt");
  float **tmp = sutra_xcalloc (m->n_linears + 1, sizeof (float *));
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (l == m->tied_linear)
      continue;                             /* transformers does not save a tied lm_head */
    const float *wdata = l->w;
    if (l->qw) {                            /* a packed base is written back as floats */
      tmp[i] = sutra_try_alloc (sizeof (float) * (size_t) l->in * l->out, l->name, err);
      if (!tmp[i]) {
        st = SUTRA_ERR_NOMEM;
        goto out;
      }
      sutra_qweight_dequant_rows (l->qw, 0, l->out, tmp[i]);
      wdata = tmp[i];
    }
    char *wn = sutra_xasprintf ("%s.weight", l->name);
    int64_t shape[2] = { l->out, l->in };
    sutra_safetensors_writer_add_f32_as (w, wn, dtype, 2, shape, wdata);
    free (wn);
    if (l->bias) {
      char *bn = sutra_xasprintf ("%s.bias", l->name);
      int64_t bs[1] = { l->out };
      sutra_safetensors_writer_add_f32_as (w, bn, dtype, 1, bs, l->bias);
      free (bn);
    }
  }
  for (size_t i = 0; i < m->n_params; i++) {
    SutraParam *p = m->params[i];
    sutra_safetensors_writer_add_f32_as (w, p->name, dtype, p->ndim, p->shape, p->data);
  }
  {
    char *wpath = sutra_path_join (dir, "model.safetensors");
    st = sutra_safetensors_writer_write (w, wpath, err);
    free (wpath);
  }
out:
  for (size_t i = 0; i < m->n_linears; i++)
    sutra_aligned_free (tmp[i]);
  free (tmp);
  sutra_safetensors_writer_free (w);
  return st;
}
