/* sutra-quant.c: the SutraQWeight object: parameters, allocation, round-to-nearest entry point,
 * accessors and the parts used for files. Layouts are in sutra-quant-private.h; quantizers and
 * kernels per format in sutra-nf4.c, sutra-int4.c, sutra-int8.c; products in sutra-qmatmul.c. */
#include "sutra-quant-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
sutra_quant_type_name (SutraQuantType t)
{
  switch (t) {
  case SUTRA_QUANT_NF4: return "nf4";
  case SUTRA_QUANT_INT4: return "int4";
  case SUTRA_QUANT_INT8: return "int8";
  default: return "none";
  }
}

bool
sutra_quant_type_from_name (const char *name, SutraQuantType *out)
{
  for (int t = SUTRA_QUANT_NF4; t <= SUTRA_QUANT_INT8; t++)
    if (name && strcmp (name, sutra_quant_type_name ((SutraQuantType) t)) == 0) {
      *out = (SutraQuantType) t;
      return true;
    }
  return false;
}

const char *
sutra_quant_method_name (SutraQuantMethod m)
{
  switch (m) {
  case SUTRA_QMETHOD_AWQ: return "awq";
  case SUTRA_QMETHOD_GPTQ: return "gptq";
  default: return "rtn";
  }
}

bool
sutra_quant_method_from_name (const char *name, SutraQuantMethod *out)
{
  for (int m = SUTRA_QMETHOD_RTN; m <= SUTRA_QMETHOD_GPTQ; m++)
    if (name && strcmp (name, sutra_quant_method_name ((SutraQuantMethod) m)) == 0) {
      *out = (SutraQuantMethod) m;
      return true;
    }
  return false;
}

/* The group a parameter set means (0 for INT8, whose group is the row). */
static int
effective_group (const SutraQuantParams *p)
{
  switch (p->type) {
  case SUTRA_QUANT_NF4: return SUTRA_NF4_GROUP;
  case SUTRA_QUANT_INT4: return p->group_size ? p->group_size : 64;
  default: return 0;
  }
}

SutraStatus
sutra_quant_params_check (const SutraQuantParams *p, SutraError *err)
{
  if (p->type != SUTRA_QUANT_NF4 && p->type != SUTRA_QUANT_INT4 && p->type != SUTRA_QUANT_INT8)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "quantize: unknown quantization type %d",
                            (int) p->type);
  if (p->method != SUTRA_QMETHOD_RTN && p->method != SUTRA_QMETHOD_AWQ &&
      p->method != SUTRA_QMETHOD_GPTQ)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "quantize: unknown method %d", (int) p->method);
  if (p->type == SUTRA_QUANT_INT4) {
    int g = effective_group (p);
    if (g != 32 && g != 64 && g != 128)
      return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "int4 group size %d (use 32, 64 or 128)",
                              g);
  } else if (p->type == SUTRA_QUANT_NF4) {
    if (p->group_size && p->group_size != SUTRA_NF4_GROUP)
      return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                              "nf4 uses blocks of %d values (group size %d asked for)",
                              SUTRA_NF4_GROUP, p->group_size);
  }
  if (p->double_quant && p->type != SUTRA_QUANT_NF4)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "double quantization applies to nf4 only");
  if (p->method != SUTRA_QMETHOD_RTN && p->type != SUTRA_QUANT_INT4)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s produces int4 weights, not %s",
                            sutra_quant_method_name (p->method), sutra_quant_type_name (p->type));
  return SUTRA_OK;
}

static void *
own (SutraQWeight *q, size_t bytes, const char *what, SutraError *err)
{
  SUTRA_ASSERT (q->n_owned < (int) (sizeof q->owned / sizeof q->owned[0]));
  void *p = sutra_try_alloc (bytes ? bytes : 1, what, err);
  if (p)
    q->owned[q->n_owned++] = p;
  return p;
}

static size_t
dq_blocks (const SutraQWeight *q)
{
  size_t n = (size_t) q->rows * q->ngroups;
  return (n + SUTRA_NF4_DQ_BLOCK - 1) / SUTRA_NF4_DQ_BLOCK;
}

/* Fills the shape fields of q from p, rows and cols (no buffers). */
static SutraStatus
shape_init (SutraQWeight *q, const SutraQuantParams *p, int rows, int cols, SutraError *err)
{
  SutraStatus st = sutra_quant_params_check (p, err);
  if (st)
    return st;
  if (rows <= 0 || cols <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "quantize: bad matrix shape [%d, %d]", rows,
                            cols);
  q->p = *p;
  q->p.group_size = effective_group (p);
  q->rows = rows;
  q->cols = cols;
  if (p->type == SUTRA_QUANT_INT8) {
    q->group = cols;
    q->ngroups = 1;
    q->row_bytes = (size_t) cols;
  } else {
    q->group = q->p.group_size;
    q->ngroups = (cols + q->group - 1) / q->group;
    q->row_bytes = (size_t) q->ngroups * q->group / 2;
  }
  return SUTRA_OK;
}

SutraStatus
sutra_qweight_alloc (const SutraQuantParams *p, int rows, int cols, bool with_in_scale,
                     SutraQWeight **out, SutraError *err)
{
  SutraQWeight *q = sutra_xcalloc (1, sizeof *q);
  SutraStatus st = shape_init (q, p, rows, cols, err);
  if (st) {
    free (q);
    return st;
  }
  size_t ng = (size_t) rows * q->ngroups;
  bool ok = (q->qs = own (q, (size_t) rows * q->row_bytes, "quantized weights", err)) != NULL;
  if (ok && p->type == SUTRA_QUANT_NF4 && p->double_quant) {
    ok = (q->absmax_q = own (q, ng, "quantized scales", err)) &&
         (q->dq_scale = own (q, dq_blocks (q) * sizeof (float), "quantized scales", err)) &&
         (q->dq_offset = own (q, dq_blocks (q) * sizeof (float), "quantized scales", err));
  } else if (ok) {
    ok = (q->scales = own (q, ng * sizeof (float), "quantization scales", err)) != NULL;
  }
  if (ok && p->type == SUTRA_QUANT_INT4)
    ok = (q->zeros = own (q, ng, "zero points", err)) != NULL;
  if (ok && with_in_scale) {
    SUTRA_ASSERT (p->type == SUTRA_QUANT_INT4);
    ok = (q->in_scale = own (q, (size_t) cols * sizeof (float), "input scales", err)) != NULL;
  }
  if (!ok) {
    sutra_qweight_free (q);
    return SUTRA_ERR_NOMEM;
  }
  *out = q;
  return SUTRA_OK;
}

SutraStatus
sutra_qweight_quantize (const float *w, int rows, int cols, const SutraQuantParams *p,
                        SutraQWeight **out, SutraError *err)
{
  SutraQWeight *q;
  SutraStatus st = sutra_qweight_alloc (p, rows, cols, false, &q, err);
  if (st)
    return st;
  switch (p->type) {
  case SUTRA_QUANT_NF4:
    if ((st = sutra_nf4_quantize_rows (q, w, err))) {
      sutra_qweight_free (q);
      return st;
    }
    break;
  case SUTRA_QUANT_INT4: sutra_int4_quantize_rows (q, w); break;
  default: sutra_int8_quantize_rows (q, w); break;
  }
  *out = q;
  return SUTRA_OK;
}

void
sutra_qweight_free (SutraQWeight *q)
{
  if (!q)
    return;
  for (int i = 0; i < q->n_owned; i++)
    sutra_aligned_free (q->owned[i]);
  free (q);
}

int sutra_qweight_rows (const SutraQWeight *q) { return q->rows; }
int sutra_qweight_cols (const SutraQWeight *q) { return q->cols; }
SutraQuantType sutra_qweight_type (const SutraQWeight *q) { return q->p.type; }
const SutraQuantParams *sutra_qweight_params (const SutraQWeight *q) { return &q->p; }
bool sutra_qweight_has_in_scale (const SutraQWeight *q) { return q->in_scale != NULL; }

size_t
sutra_qweight_bytes (const SutraQWeight *q)
{
  SutraQPart parts[SUTRA_QPARTS_MAX];
  int n = sutra_qweight_parts (q, parts);
  size_t bytes = 0;
  for (int i = 0; i < n; i++)
    bytes += (size_t) parts[i].shape[0] * (parts[i].ndim > 1 ? (size_t) parts[i].shape[1] : 1) *
             sutra_dtype_size (parts[i].dtype);
  return bytes;
}

double
sutra_qweight_bits_per_weight (const SutraQWeight *q)
{
  return 8.0 * (double) sutra_qweight_bytes (q) / ((double) q->rows * q->cols);
}

/* ------------------------------------------------------------------------------------------ */
/* parts                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static const char *const part_names[] = { "qweight", "absmax", "absmax_q", "absmax_scale",
                                          "absmax_offset", "scales", "zeros", "in_scale", NULL };

const char *const *
sutra_qweight_part_names (void)
{
  return part_names;
}

static void
part (SutraQPart *p, const char *name, SutraDType dt, int64_t d0, int64_t d1, const void *data)
{
  p->name = name;
  p->dtype = dt;
  p->ndim = d1 > 0 ? 2 : 1;
  p->shape[0] = d0;
  p->shape[1] = d1 > 0 ? d1 : 1;
  p->data = data;
}

/* The parts a weight of this shape needs; data pointers from q (NULL for a template). */
static int
layout_parts (const SutraQWeight *q, bool with_in_scale, SutraQPart *pt)
{
  int n = 0;
  int64_t R = q->rows, G = q->ngroups;
  switch (q->p.type) {
  case SUTRA_QUANT_NF4:
    part (&pt[n++], "qweight", SUTRA_U8, R, (int64_t) q->row_bytes, q->qs);
    if (q->p.double_quant) {
      part (&pt[n++], "absmax_q", SUTRA_U8, R, G, q->absmax_q);
      part (&pt[n++], "absmax_scale", SUTRA_F32, (int64_t) dq_blocks (q), 0, q->dq_scale);
      part (&pt[n++], "absmax_offset", SUTRA_F32, (int64_t) dq_blocks (q), 0, q->dq_offset);
    } else {
      part (&pt[n++], "absmax", SUTRA_F32, R, G, q->scales);
    }
    break;
  case SUTRA_QUANT_INT4:
    part (&pt[n++], "qweight", SUTRA_U8, R, (int64_t) q->row_bytes, q->qs);
    part (&pt[n++], "scales", SUTRA_F32, R, G, q->scales);
    part (&pt[n++], "zeros", SUTRA_U8, R, G, q->zeros);
    if (with_in_scale)
      part (&pt[n++], "in_scale", SUTRA_F32, q->cols, 0, q->in_scale);
    break;
  default:
    part (&pt[n++], "qweight", SUTRA_I8, R, q->cols, q->qs);
    part (&pt[n++], "scales", SUTRA_F32, R, 0, q->scales);
    break;
  }
  return n;
}

int
sutra_qweight_parts (const SutraQWeight *q, SutraQPart *parts)
{
  return layout_parts (q, q->in_scale != NULL, parts);
}

static size_t
part_bytes (const SutraQPart *p)
{
  size_t n = sutra_dtype_size (p->dtype);
  for (int i = 0; i < p->ndim; i++)
    n *= (size_t) p->shape[i];
  return n;
}

static const SutraQPart *
find_part (const SutraQPart *parts, int n, const char *name)
{
  for (int i = 0; i < n; i++)
    if (parts[i].name && strcmp (parts[i].name, name) == 0)
      return &parts[i];
  return NULL;
}

static const char *
shape_text (const SutraQPart *p, char *buf, size_t len)
{
  if (p->ndim == 1)
    snprintf (buf, len, "[%lld]", (long long) p->shape[0]);
  else
    snprintf (buf, len, "[%lld, %lld]", (long long) p->shape[0], (long long) p->shape[1]);
  return buf;
}

/* Value checks of a part that the kernels rely on (or that would poison every output). */
static SutraStatus
check_values (const SutraQWeight *q, const SutraQPart *want, const void *data, SutraError *err)
{
  size_t n = part_bytes (want) / sutra_dtype_size (want->dtype);
  if (want->dtype == SUTRA_F32) {
    for (size_t i = 0; i < n; i++) {
      float v;
      memcpy (&v, (const char *) data + 4 * i, 4);
      if (!isfinite (v))
        return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s[%zu] is not finite", want->name, i);
    }
  } else if (!strcmp (want->name, "zeros")) {
    const uint8_t *z = data;
    for (size_t i = 0; i < n; i++)
      if (z[i] > 15)
        return sutra_error_set (err, SUTRA_ERR_FORMAT, "zeros[%zu] = %d is not a 4-bit zero point",
                                i, z[i]);
  } else if (q->p.type == SUTRA_QUANT_INT8 && !strcmp (want->name, "qweight")) {
    const int8_t *c = data;
    for (size_t i = 0; i < n; i++)
      if (c[i] == -128)
        return sutra_error_set (err, SUTRA_ERR_FORMAT,
                                "qweight[%zu] = -128 is outside the symmetric int8 range", i);
  }
  return SUTRA_OK;
}

SutraStatus
sutra_qweight_from_parts (const SutraQuantParams *p, int rows, int cols, const SutraQPart *parts,
                          int nparts, bool borrow, SutraQWeight **out, SutraError *err)
{
  SutraQWeight *q = sutra_xcalloc (1, sizeof *q);
  SutraStatus st = shape_init (q, p, rows, cols, err);
  if (st) {
    free (q);
    return st;
  }
  bool with_in = find_part (parts, nparts, "in_scale") != NULL;
  if (with_in && p->type != SUTRA_QUANT_INT4) {
    free (q);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "in_scale is only valid for int4 weights");
  }
  SutraQPart want[SUTRA_QPARTS_MAX];
  int nw = layout_parts (q, with_in, want);
  /* every given part must be one the format uses */
  for (int i = 0; i < nparts; i++)
    if (!find_part (want, nw, parts[i].name)) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "unexpected part '%s' for a %s%s weight",
                            parts[i].name, sutra_quant_type_name (p->type),
                            p->double_quant ? " (double-quantized)" : "");
      goto fail;
    }
  const void *data[SUTRA_QPARTS_MAX];
  for (int i = 0; i < nw; i++) {
    const SutraQPart *g = find_part (parts, nparts, want[i].name);
    char a[48], b[48];
    if (!g) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "missing part '%s' (%s %s)", want[i].name,
                            sutra_dtype_name (want[i].dtype), shape_text (&want[i], a, sizeof a));
      goto fail;
    }
    bool same = g->dtype == want[i].dtype && g->ndim == want[i].ndim;
    for (int d = 0; same && d < g->ndim; d++)
      same = g->shape[d] == want[i].shape[d];
    if (!same) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "part '%s' is %s %s, expected %s %s for a [%d, %d] %s weight (wrong "
                            "block count or truncated)", want[i].name, sutra_dtype_name (g->dtype),
                            shape_text (g, a, sizeof a), sutra_dtype_name (want[i].dtype),
                            shape_text (&want[i], b, sizeof b), rows, cols,
                            sutra_quant_type_name (p->type));
      goto fail;
    }
    if (!g->data) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "part '%s' has no data", want[i].name);
      goto fail;
    }
    if ((st = check_values (q, &want[i], g->data, err)))
      goto fail;
    size_t nb = part_bytes (&want[i]);
    bool aligned = want[i].dtype != SUTRA_F32 || (uintptr_t) g->data % 4 == 0;
    if (borrow && aligned) {
      data[i] = g->data;
    } else {
      void *copy = own (q, nb, want[i].name, err);
      if (!copy) {
        st = SUTRA_ERR_NOMEM;
        goto fail;
      }
      memcpy (copy, g->data, nb);
      data[i] = copy;
    }
  }
  for (int i = 0; i < nw; i++) {
    const char *n = want[i].name;
    if (!strcmp (n, "qweight")) q->qs = data[i];
    else if (!strcmp (n, "absmax") || !strcmp (n, "scales")) q->scales = data[i];
    else if (!strcmp (n, "absmax_q")) q->absmax_q = data[i];
    else if (!strcmp (n, "absmax_scale")) q->dq_scale = data[i];
    else if (!strcmp (n, "absmax_offset")) q->dq_offset = data[i];
    else if (!strcmp (n, "zeros")) q->zeros = data[i];
    else if (!strcmp (n, "in_scale")) q->in_scale = data[i];
  }
  *out = q;
  return SUTRA_OK;
fail:
  sutra_qweight_free (q);
  return st;
}
