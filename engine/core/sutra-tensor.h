/* sutra-tensor.h: a small tensor view and an arena for tensor sets.
 *
 * A SutraTensor describes contiguous row-major data of up to 4 dims. It either owns its
 * buffer (owned = true; freed by sutra_tensor_clear) or borrows it (mmapped weights, a view
 * into an arena). Math kernels take plain float pointers plus dims (llm.c style); tensors
 * are the currency of file I/O and of the model interface.
 *
 * An arena is one 64-byte-aligned allocation carved into views: each tensor set
 * (parameters, gradients, moments, activations) is one arena, allocated once per run. */
#pragma once
#include "sutra-dtype.h"
#include "sutra-error.h"

#define SUTRA_MAX_DIMS 4

typedef struct {
  SutraDType dtype;
  int ndim;
  int64_t shape[SUTRA_MAX_DIMS];  /* unused dims are 1 */
  void *data;
  bool owned;
} SutraTensor;

int64_t sutra_tensor_numel  (const SutraTensor *t);
size_t  sutra_tensor_nbytes (const SutraTensor *t);
/* Fills *t as a borrowed view of data. */
void    sutra_tensor_view   (SutraTensor *t, SutraDType dtype, void *data, int ndim,
                             const int64_t *shape);
/* Allocates a zeroed owned tensor; SUTRA_ERR_NOMEM names `what`. */
SutraStatus sutra_tensor_alloc (SutraTensor *t, SutraDType dtype, int ndim, const int64_t *shape,
                                const char *what, SutraError *err);
void    sutra_tensor_clear  (SutraTensor *t);   /* frees owned data; leaves an empty tensor */
/* "[2, 16]" into buf; returns buf. */
const char *sutra_shape_str (const int64_t *shape, int ndim, char *buf, size_t len);

/* ---- arena ---- */
typedef struct {
  unsigned char *base;
  size_t size, used;
  size_t peak;        /* largest `used` seen, for memory reports */
} SutraArena;

/* Reserves size bytes (aligned, zeroed). */
SutraStatus sutra_arena_init (SutraArena *a, size_t size, const char *what, SutraError *err);
void        sutra_arena_clear (SutraArena *a);
/* Returns a 64-byte-aligned block of n bytes; SUTRA_ASSERTs on overflow (size it first). */
void       *sutra_arena_alloc (SutraArena *a, size_t n);
float      *sutra_arena_floats (SutraArena *a, size_t n);
/* Rewinds to a mark taken with a->used (scratch that is reused every step). */
void        sutra_arena_reset_to (SutraArena *a, size_t mark);
/* Rounds n up to the arena alignment, for sizing passes. */
static inline size_t sutra_arena_round (size_t n) { return (n + 63) & ~(size_t) 63; }
