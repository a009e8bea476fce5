/* sutra-gguf.h: read and write GGUF v3, the llama.cpp / ggml model file (ggml include/gguf.h):
 *   "GGUF" | u32 version (3) | i64 n_tensors | i64 n_kv
 *   n_kv x { string key | i32 type | value }            value: scalar, string, or
 *                                                        { i32 elem_type | u64 n | n elements }
 *   n_tensors x { string name | u32 n_dims | i64 ne[n_dims] | i32 ggml_type | u64 offset }
 *   padding to the alignment | tensor data (each tensor at data_start + offset)
 * Strings are u64 length + bytes (no NUL); bools one byte; all little-endian. The alignment is
 * the u32 key "general.alignment" (a power of two), default 32. ne[0] is the contiguous
 * dimension: a Hugging Face weight [out, in] is stored with ne = {in, out}.
 *
 * Reading maps the file and validates every count, length, type, dimension and offset before
 * use: a truncated or corrupt file is SUTRA_ERR_FORMAT with a message naming the file and the
 * key or tensor, never a crash. Writing is atomic (temp, fsync, rename) and streams the data:
 * each tensor's bytes come from a callback at write time (convert / quantize on the fly).
 * ggml tensor types and our quantizers are in sutra-ggml-quant.h. */
#pragma once
#include "sutra-error.h"
#include "sutra-ggml-quant.h"

typedef enum {
  SUTRA_GGUF_UINT8 = 0, SUTRA_GGUF_INT8 = 1, SUTRA_GGUF_UINT16 = 2, SUTRA_GGUF_INT16 = 3,
  SUTRA_GGUF_UINT32 = 4, SUTRA_GGUF_INT32 = 5, SUTRA_GGUF_FLOAT32 = 6, SUTRA_GGUF_BOOL = 7,
  SUTRA_GGUF_STRING = 8, SUTRA_GGUF_ARRAY = 9, SUTRA_GGUF_UINT64 = 10, SUTRA_GGUF_INT64 = 11,
  SUTRA_GGUF_FLOAT64 = 12, SUTRA_GGUF_TYPE_COUNT
} SutraGgufType;

#define SUTRA_GGUF_DEFAULT_ALIGNMENT 32
#define SUTRA_GGUF_MAX_DIMS 4
#define SUTRA_GGUF_MAX_NAME 63          /* ggml's GGML_MAX_NAME - 1 bytes */

const char *sutra_gguf_type_name (SutraGgufType t);      /* "uint32", "string", ... */

/* ---- reading ---- */
typedef struct SutraGguf SutraGguf;

typedef struct {
  const char *name;                   /* NUL-terminated copy */
  int n_dims;
  int64_t ne[SUTRA_GGUF_MAX_DIMS];    /* unused dims are 1 */
  int type;                           /* ggml type (SutraGgmlType) */
  uint64_t offset;                    /* from the data section's start */
  size_t size;                        /* bytes */
  const void *data;                   /* borrowed from the map */
} SutraGgufTensor;

SutraStatus sutra_gguf_open (const char *path, SutraGguf **out, SutraError *err);
/* Parses an image in memory (borrowed: must outlive the result). name is for messages. */
SutraStatus sutra_gguf_open_memory (const void *data, size_t size, const char *name,
                                    SutraGguf **out, SutraError *err);
void        sutra_gguf_free (SutraGguf *g);

uint32_t    sutra_gguf_version   (const SutraGguf *g);
size_t      sutra_gguf_alignment (const SutraGguf *g);
size_t      sutra_gguf_data_offset (const SutraGguf *g);   /* file offset of the data section */

size_t        sutra_gguf_kv_count (const SutraGguf *g);
const char   *sutra_gguf_kv_key   (const SutraGguf *g, size_t i);
SutraGgufType sutra_gguf_kv_type  (const SutraGguf *g, size_t i);
/* Index of key, or -1. */
int64_t       sutra_gguf_find_key (const SutraGguf *g, const char *key);
/* Scalar getters. Integers and bools convert between widths when the value fits; floats
 * between f32/f64. Return false (no write to *out) on a type or range mismatch. */
bool sutra_gguf_kv_int    (const SutraGguf *g, size_t i, int64_t *out);
bool sutra_gguf_kv_uint   (const SutraGguf *g, size_t i, uint64_t *out);
bool sutra_gguf_kv_float  (const SutraGguf *g, size_t i, double *out);
bool sutra_gguf_kv_bool   (const SutraGguf *g, size_t i, bool *out);
/* Borrowed string bytes (not NUL-terminated in general) and length. */
bool sutra_gguf_kv_string (const SutraGguf *g, size_t i, const char **s, size_t *len);
/* Arrays: element type and count; element access by index. */
bool sutra_gguf_kv_array  (const SutraGguf *g, size_t i, SutraGgufType *elem, uint64_t *n);
bool sutra_gguf_kv_array_int    (const SutraGguf *g, size_t i, uint64_t j, int64_t *out);
bool sutra_gguf_kv_array_float  (const SutraGguf *g, size_t i, uint64_t j, double *out);
bool sutra_gguf_kv_array_string (const SutraGguf *g, size_t i, uint64_t j, const char **s,
                                 size_t *len);
/* A printable rendering of value i (arrays abbreviated to their first `max_items` items).
 * Caller frees. */
char *sutra_gguf_kv_to_string (const SutraGguf *g, size_t i, int max_items);

size_t                 sutra_gguf_tensor_count (const SutraGguf *g);
const SutraGgufTensor *sutra_gguf_tensor  (const SutraGguf *g, size_t i);
const SutraGgufTensor *sutra_gguf_find_tensor (const SutraGguf *g, const char *name);
/* Dequantizes a tensor of a supported type into dst (numel floats). */
SutraStatus sutra_gguf_tensor_to_f32 (const SutraGguf *g, const SutraGgufTensor *t, float *dst,
                                      SutraError *err);

/* ---- writing ---- */
typedef struct SutraGgufWriter SutraGgufWriter;
/* Produces a tensor's bytes (exactly `size`) into dst at write time. */
typedef SutraStatus (*SutraGgufFillFunc) (void *user, void *dst, size_t size, SutraError *err);
/* fraction done (0..1) and what is being written; return false to cancel. */
typedef bool (*SutraGgufProgressFunc) (double fraction, const char *what, void *user_data);

SutraGgufWriter *sutra_gguf_writer_new  (void);
void             sutra_gguf_writer_free (SutraGgufWriter *w);
/* Setting an existing key replaces its value (the key keeps its position). */
void sutra_gguf_writer_set_u32    (SutraGgufWriter *w, const char *key, uint32_t v);
void sutra_gguf_writer_set_i32    (SutraGgufWriter *w, const char *key, int32_t v);
void sutra_gguf_writer_set_u64    (SutraGgufWriter *w, const char *key, uint64_t v);
void sutra_gguf_writer_set_f32    (SutraGgufWriter *w, const char *key, float v);
void sutra_gguf_writer_set_bool   (SutraGgufWriter *w, const char *key, bool v);
void sutra_gguf_writer_set_string (SutraGgufWriter *w, const char *key, const char *v);
/* Any scalar type from raw little-endian bytes (tests and round trips). */
void sutra_gguf_writer_set_raw    (SutraGgufWriter *w, const char *key, SutraGgufType type,
                                   const void *v);
/* Numeric/bool array (elements copied, packed as stored: e.g. float for FLOAT32). */
void sutra_gguf_writer_set_array  (SutraGgufWriter *w, const char *key, SutraGgufType elem,
                                   const void *data, size_t n);
/* String array; lens may be NULL (NUL-terminated strings). */
void sutra_gguf_writer_set_string_array (SutraGgufWriter *w, const char *key,
                                         const char *const *strs, const size_t *lens, size_t n);
/* Adds a tensor (ne[0] contiguous; must be a multiple of the type's block size). Names must
 * be unique and at most SUTRA_GGUF_MAX_NAME bytes (checked at write). */
void sutra_gguf_writer_add_tensor (SutraGgufWriter *w, const char *name, int ggml_type,
                                   int n_dims, const int64_t *ne, SutraGgufFillFunc fill,
                                   void *user);
/* Same with bytes that stay valid until the write. */
void sutra_gguf_writer_add_tensor_data (SutraGgufWriter *w, const char *name, int ggml_type,
                                        int n_dims, const int64_t *ne, const void *data);
/* Writes the file atomically. The alignment is general.alignment when set (u32), else 32. */
SutraStatus sutra_gguf_writer_write (SutraGgufWriter *w, const char *path,
                                     SutraGgufProgressFunc progress, void *user,
                                     SutraError *err);
