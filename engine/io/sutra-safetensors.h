/* sutra-safetensors.h: read and write the safetensors format
 * (https://github.com/huggingface/safetensors: 8-byte little-endian header length N, N bytes of
 * JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
 * then the byte buffer; offsets are relative to the start of the buffer).
 *
 * Reading mmaps the file; tensor data is borrowed zero-copy (valid until the file is freed).
 * The header parser rejects, with a message naming the file and tensor: header length beyond the
 * file or over 100 MB, invalid JSON, unknown dtype, shape/size mismatch, offsets out of range,
 * overlapping or leaving holes, truncated data. A sharded checkpoint (model.safetensors.index.json
 * with "weight_map") opens as one SutraSafetensors set. Writing is atomic (temp, fsync, rename). */
#pragma once
#include "sutra-error.h"
#include "sutra-tensor.h"

#define SUTRA_SAFETENSORS_MAX_HEADER (100u * 1024u * 1024u)

typedef struct SutraSafetensors SutraSafetensors;     /* opaque; one file or a shard set */

/* Opens one .safetensors file. */
SutraStatus sutra_safetensors_open (const char *path, SutraSafetensors **out, SutraError *err);
/* Opens the weights of a model folder: model.safetensors.index.json (all shards, each
 * mapped once; every weight_map entry must exist in its shard) if present, else
 * model.safetensors, else the single *.safetensors file in the folder (several: an error
 * listing them; none: SUTRA_ERR_NOT_FOUND). A .safetensors or .index.json path is opened
 * as such. */
SutraStatus sutra_safetensors_open_dir (const char *dir, SutraSafetensors **out, SutraError *err);
/* Parses a header from memory (used by the fuzzer): data is the whole file image. It is
 * borrowed, not copied: it must outlive the set. */
SutraStatus sutra_safetensors_open_memory (const void *data, size_t size, const char *name,
                                           SutraSafetensors **out, SutraError *err);
void        sutra_safetensors_free (SutraSafetensors *st);

size_t      sutra_safetensors_count (const SutraSafetensors *st);
/* Tensor i as a borrowed view (dtype, shape, data pointer into the map). Sorted by name. */
const char *sutra_safetensors_name  (const SutraSafetensors *st, size_t i);
const SutraTensor *sutra_safetensors_tensor (const SutraSafetensors *st, size_t i);
/* Lookup by name; NULL when absent. */
const SutraTensor *sutra_safetensors_find (const SutraSafetensors *st, const char *name);
/* The __metadata__ value for key, or NULL (borrowed). */
const char *sutra_safetensors_metadata (const SutraSafetensors *st, const char *key);
size_t      sutra_safetensors_metadata_count (const SutraSafetensors *st);
void        sutra_safetensors_metadata_at (const SutraSafetensors *st, size_t i,
                                           const char **key, const char **value);
/* The file a tensor came from (for error messages in shard sets). */
const char *sutra_safetensors_path  (const SutraSafetensors *st, const char *name);
/* true when t->data is aligned to its element size. Files from the reference writer (and
 * ours) always are. A hand-made file may hold misaligned tensors: they are still exposed,
 * and callers then read them with memcpy or sutra_safetensors_read_f32 (which copes), never
 * through a float/uint16_t pointer. */
static inline bool sutra_safetensors_is_aligned (const SutraTensor *t)
{ return (uintptr_t) t->data % sutra_dtype_size (t->dtype) == 0; }

/* Loads tensor `name` as f32 into dst (numel floats), converting F16/BF16/F64; checks the
 * expected shape (ndim + dims) and reports mismatches naming the tensor and both shapes. */
SutraStatus sutra_safetensors_read_f32 (const SutraSafetensors *st, const char *name, float *dst,
                                        int ndim, const int64_t *shape, SutraError *err);

/* ---- writing ---- */
typedef struct SutraSafetensorsWriter SutraSafetensorsWriter;
SutraSafetensorsWriter *sutra_safetensors_writer_new (void);
void sutra_safetensors_writer_free (SutraSafetensorsWriter *w);
/* Adds a tensor; data is copied only at write time, so it must stay valid until then. */
void sutra_safetensors_writer_add  (SutraSafetensorsWriter *w, const char *name, SutraDType dtype,
                                    int ndim, const int64_t *shape, const void *data);
/* Adds an f32 source stored as dtype (F32, F16 or BF16; converted while writing). */
void sutra_safetensors_writer_add_f32_as (SutraSafetensorsWriter *w, const char *name,
                                          SutraDType stored, int ndim, const int64_t *shape,
                                          const float *data);
void sutra_safetensors_writer_metadata (SutraSafetensorsWriter *w, const char *key, const char *value);
/* Writes atomically and streams the data (nothing is buffered whole). The header lists
 * __metadata__ first (keys sorted), then the tensors sorted by name; the data is laid out
 * by descending element size, then name, as the Python library does, so every tensor is
 * aligned to its element size; the header is padded with spaces to a multiple of 8.
 * Duplicate or reserved names give SUTRA_ERR_INVALID. */
SutraStatus sutra_safetensors_writer_write (SutraSafetensorsWriter *w, const char *path,
                                            SutraError *err);
