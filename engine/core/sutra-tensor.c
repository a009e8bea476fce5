/* sutra-tensor.c: tensor views and arenas. */
#include "sutra-tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t
sutra_tensor_numel (const SutraTensor *t)
{
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++)
    n *= t->shape[i];
  return n;
}

size_t
sutra_tensor_nbytes (const SutraTensor *t)
{
  return (size_t) sutra_tensor_numel (t) * sutra_dtype_size (t->dtype);
}

void
sutra_tensor_view (SutraTensor *t, SutraDType dtype, void *data, int ndim, const int64_t *shape)
{
  SUTRA_ASSERT (ndim >= 0 && ndim <= SUTRA_MAX_DIMS);
  memset (t, 0, sizeof *t);
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < SUTRA_MAX_DIMS; i++)
    t->shape[i] = i < ndim ? shape[i] : 1;
  t->data = data;
  t->owned = false;
}

SutraStatus
sutra_tensor_alloc (SutraTensor *t, SutraDType dtype, int ndim, const int64_t *shape,
                    const char *what, SutraError *err)
{
  SutraTensor tmp;
  sutra_tensor_view (&tmp, dtype, NULL, ndim, shape);
  void *p = sutra_try_alloc (sutra_tensor_nbytes (&tmp), what, err);
  if (!p)
    return SUTRA_ERR_NOMEM;
  tmp.data = p;
  tmp.owned = true;
  *t = tmp;
  return SUTRA_OK;
}

void
sutra_tensor_clear (SutraTensor *t)
{
  if (t->owned)
    sutra_aligned_free (t->data);
  memset (t, 0, sizeof *t);
}

const char *
sutra_shape_str (const int64_t *shape, int ndim, char *buf, size_t len)
{
  size_t off = 0;
  off += (size_t) snprintf (buf + off, len - off, "[");
  for (int i = 0; i < ndim && off < len; i++)
    off += (size_t) snprintf (buf + off, len - off, i ? ", %lld" : "%lld", (long long) shape[i]);
  if (off < len)
    snprintf (buf + off, len - off, "]");
  return buf;
}

SutraStatus
sutra_arena_init (SutraArena *a, size_t size, const char *what, SutraError *err)
{
  memset (a, 0, sizeof *a);
  a->base = sutra_try_alloc (size, what, err);
  if (!a->base)
    return SUTRA_ERR_NOMEM;
  a->size = size;
  return SUTRA_OK;
}

void
sutra_arena_clear (SutraArena *a)
{
  sutra_aligned_free (a->base);
  memset (a, 0, sizeof *a);
}

void *
sutra_arena_alloc (SutraArena *a, size_t n)
{
  size_t r = sutra_arena_round (n);
  SUTRA_ASSERT (a->used + r <= a->size);
  void *p = a->base + a->used;
  a->used += r;
  if (a->used > a->peak)
    a->peak = a->used;
  return p;
}

float *
sutra_arena_floats (SutraArena *a, size_t n)
{
  return sutra_arena_alloc (a, n * sizeof (float));
}

void
sutra_arena_reset_to (SutraArena *a, size_t mark)
{
  SUTRA_ASSERT (mark <= a->used);
  a->used = mark;
}
