/* sutra-qfile.c: packed linear weights in safetensors (see sutra-qfile.h). */
#include "sutra-qfile.h"
#include "sutra-fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
file_of (const SutraSafetensors *st, const char *tensor)
{
  const char *p = tensor ? sutra_safetensors_path (st, tensor) : NULL;
  return p ? sutra_path_basename (p) : "model.safetensors";
}

/* the first "*.qweight" tensor, or NULL */
static const char *
first_packed (const SutraSafetensors *st)
{
  size_t n = sutra_safetensors_count (st);
  for (size_t i = 0; i < n; i++) {
    const char *name = sutra_safetensors_name (st, i);
    size_t len = strlen (name);
    if (len > 8 && !strcmp (name + len - 8, ".qweight"))
      return name;
  }
  return NULL;
}

SutraStatus
sutra_qfile_params (const SutraSafetensors *st, bool *present, SutraQuantParams *p,
                    SutraError *err)
{
  const char *packed = first_packed (st);
  const char *ver = sutra_safetensors_metadata (st, "sutra_quant");
  if (!packed && !ver) {
    *present = false;
    return SUTRA_OK;
  }
  const char *f = file_of (st, packed);
  if (!ver || !*ver)
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: packed tensor %s but no quantization metadata "
                            "(__metadata__ sutra_quant)", f, packed);
  if (strcmp (ver, SUTRA_QFILE_VERSION) != 0)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                            "%s: quantized layout version '%s' is not supported (this build "
                            "reads version %s)", f, ver, SUTRA_QFILE_VERSION);
  SutraQuantParams q = { 0 };
  const char *type = sutra_safetensors_metadata (st, "quant_type");
  const char *method = sutra_safetensors_metadata (st, "quant_method");
  const char *group = sutra_safetensors_metadata (st, "group_size");
  const char *dq = sutra_safetensors_metadata (st, "double_quant");
  if (!sutra_quant_type_from_name (type, &q.type))
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: __metadata__ quant_type '%s' is unknown (nf4, int4, int8)", f,
                            type ? type : "(missing)");
  if (!sutra_quant_method_from_name (method, &q.method))
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: __metadata__ quant_method '%s' is unknown (rtn, awq, gptq)", f,
                            method ? method : "(missing)");
  char *end = NULL;
  long g = group ? strtol (group, &end, 10) : -1;
  if (!group || !*group || *end || g < 0 || g > 1024)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: __metadata__ group_size '%s' is not a "
                            "group size", f, group ? group : "(missing)");
  q.group_size = q.type == SUTRA_QUANT_INT8 ? 0 : (int) g;
  if (dq && strcmp (dq, "true") && strcmp (dq, "false"))
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: __metadata__ double_quant '%s' is not true or false", f, dq);
  q.double_quant = dq && !strcmp (dq, "true");
  SutraStatus s = sutra_quant_params_check (&q, err);
  if (s) {
    sutra_error_prefix (err, "%s: __metadata__", f);
    return SUTRA_ERR_FORMAT;
  }
  *p = q;
  *present = true;
  return SUTRA_OK;
}

bool
sutra_qfile_has_packed (const SutraSafetensors *st, const char *module)
{
  char name[512];
  snprintf (name, sizeof name, "%s.qweight", module);
  return sutra_safetensors_find (st, name) != NULL;
}

SutraStatus
sutra_qfile_load_linear (const SutraSafetensors *st, const char *module, int rows, int cols,
                         SutraQWeight **out, SutraError *err)
{
  bool present;
  SutraQuantParams p;
  SutraStatus s = sutra_qfile_params (st, &present, &p, err);
  if (s)
    return s;
  char qname[512];
  snprintf (qname, sizeof qname, "%s.qweight", module);
  if (!present || !sutra_safetensors_find (st, qname))
    return sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: no packed tensor %s",
                            file_of (st, NULL), qname);
  /* collect "<module>.<part>" for every part name a format may use */
  SutraQPart parts[16];
  int np = 0;
  const char *const *names = sutra_qweight_part_names ();
  for (int i = 0; names[i]; i++) {
    char tn[512];
    snprintf (tn, sizeof tn, "%s.%s", module, names[i]);
    const SutraTensor *t = sutra_safetensors_find (st, tn);
    if (!t)
      continue;
    SutraQPart *pt = &parts[np++];
    pt->name = names[i];
    pt->dtype = t->dtype;
    pt->ndim = t->ndim;
    pt->shape[0] = t->ndim > 0 ? t->shape[0] : 1;
    pt->shape[1] = t->ndim > 1 ? t->shape[1] : 1;
    if (t->ndim < 1 || t->ndim > 2) {
      pt->ndim = 3;        /* never matches: reported as a shape mismatch */
    }
    pt->data = t->data;
  }
  s = sutra_qweight_from_parts (&p, rows, cols, parts, np, true, out, err);
  if (s) {
    sutra_error_prefix (err, "%s: %s", file_of (st, qname), module);
    return s == SUTRA_ERR_NOMEM ? s : SUTRA_ERR_FORMAT;
  }
  return SUTRA_OK;
}

void
sutra_qfile_add_linear (SutraSafetensorsWriter *w, const char *module, const SutraQWeight *q)
{
  SutraQPart parts[SUTRA_QPARTS_MAX];
  int n = sutra_qweight_parts (q, parts);
  for (int i = 0; i < n; i++) {
    char *name = sutra_xasprintf ("%s.%s", module, parts[i].name);
    sutra_safetensors_writer_add (w, name, parts[i].dtype, parts[i].ndim, parts[i].shape,
                                  parts[i].data);
    free (name);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* writing a model                                                                            */
/* ------------------------------------------------------------------------------------------ */

static bool
same_params (const SutraQuantParams *a, const SutraQuantParams *b)
{
  return a->type == b->type && a->method == b->method && a->group_size == b->group_size &&
         a->double_quant == b->double_quant;
}

SutraStatus
sutra_model_write_quantized_files (SutraModel *m, const char *dir, SutraDType float_dtype,
                                   SutraError *err)
{
  if (float_dtype != SUTRA_F32 && float_dtype != SUTRA_F16 && float_dtype != SUTRA_BF16)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "float tensors can be saved as F32, F16 or BF16");
  /* one parameter set for every packed linear */
  const SutraQuantParams *qp = NULL;
  size_t npacked = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    const SutraLinear *l = m->linears[i];
    if (!l->qw)
      continue;
    const SutraQuantParams *p = sutra_qweight_params (l->qw);
    if (qp && !same_params (qp, p))
      return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                              "%s is %s/%s g%d but other layers are %s/%s g%d: one file holds one "
                              "quantization", l->name, sutra_quant_type_name (p->type),
                              sutra_quant_method_name (p->method), p->group_size,
                              sutra_quant_type_name (qp->type), sutra_quant_method_name (qp->method),
                              qp->group_size);
    qp = p;
    npacked++;
  }
  if (!qp)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "no quantized layer to write");
  /* config.json: the source's own file when there is one (keeps every key), else generated */
  char *cpath = sutra_path_join (dir, "config.json");
  SutraStatus st;
  char *src = m->dir ? sutra_path_join (m->dir, "config.json") : NULL;
  if (src && sutra_is_file (src)) {
    st = sutra_copy_file (src, cpath, err);
  } else {
    char *json = sutra_model_config_to_json (&m->cfg);
    st = sutra_write_file_atomic (cpath, json, strlen (json), err);
    free (json);
  }
  free (src);
  free (cpath);
  if (st)
    return st;
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  float **tmps = NULL;                 /* f32 copies of half bases, freed after writing */
  size_t ntmp = 0;
  char num[32];
  sutra_safetensors_writer_metadata (w, "format", "pt");
  sutra_safetensors_writer_metadata (w, "sutra_quant", SUTRA_QFILE_VERSION);
  sutra_safetensors_writer_metadata (w, "quant_type", sutra_quant_type_name (qp->type));
  sutra_safetensors_writer_metadata (w, "quant_method", sutra_quant_method_name (qp->method));
  snprintf (num, sizeof num, "%d", qp->type == SUTRA_QUANT_INT8 ? 0 : qp->group_size);
  sutra_safetensors_writer_metadata (w, "group_size", num);
  sutra_safetensors_writer_metadata (w, "double_quant", qp->double_quant ? "true" : "false");
  snprintf (num, sizeof num, "%zu", npacked);
  sutra_safetensors_writer_metadata (w, "quantized_modules", num);
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (l == m->tied_linear && !l->qw)
      continue;                       /* tied f32 lm_head: the embedding is saved */
    if (l->qw) {
      sutra_qfile_add_linear (w, l->name, l->qw);
    } else {
      char *wn = sutra_xasprintf ("%s.weight", l->name);
      int64_t shape[2] = { l->out, l->in };
      const float *wdata = l->w;
      if (!wdata) {                   /* a half base: written from an f32 copy */
        float *tmp = sutra_try_alloc (sizeof (float) * (size_t) l->out * l->in, l->name, err);
        if (!tmp) {
          free (wn);
          st = SUTRA_ERR_NOMEM;
          goto out;
        }
        sutra_linear_base_rows (l, 0, l->out, tmp);
        ntmp++;
        tmps = sutra_xrealloc (tmps, sizeof (float *) * ntmp);
        tmps[ntmp - 1] = tmp;
        wdata = tmp;
      }
      sutra_safetensors_writer_add_f32_as (w, wn, float_dtype, 2, shape, wdata);
      free (wn);
    }
    if (l->bias) {
      char *bn = sutra_xasprintf ("%s.bias", l->name);
      int64_t bs[1] = { l->out };
      sutra_safetensors_writer_add_f32_as (w, bn, SUTRA_F32, 1, bs, l->bias);
      free (bn);
    }
  }
  for (size_t i = 0; i < m->n_params; i++) {
    SutraParam *p = m->params[i];
    sutra_safetensors_writer_add_f32_as (w, p->name, p->ndim == 1 ? SUTRA_F32 : float_dtype,
                                         p->ndim, p->shape, p->data);
  }
  char *wpath = sutra_path_join (dir, "model.safetensors");
  st = sutra_safetensors_writer_write (w, wpath, err);
  free (wpath);
out:
  sutra_safetensors_writer_free (w);
  for (size_t i = 0; i < ntmp; i++)
    sutra_aligned_free (tmps[i]);
  free (tmps);
  return st;
}
