/* sutra-gguf.c: GGUF v3 reader (mmap, every field validated) and streaming atomic writer.
 * Format: ggml include/gguf.h (summarised in sutra-gguf.h). Host byte order is assumed
 * little-endian, as GGUF is (x86-64 and aarch64 Linux). */
#include "sutra-gguf.h"
#include "sutra-fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *name; int size; } kv_types[SUTRA_GGUF_TYPE_COUNT] = {
  { "uint8", 1 }, { "int8", 1 },   { "uint16", 2 }, { "int16", 2 },  { "uint32", 4 },
  { "int32", 4 }, { "float32", 4 }, { "bool", 1 },  { "string", 0 }, { "array", 0 },
  { "uint64", 8 }, { "int64", 8 }, { "float64", 8 },
};

const char *
sutra_gguf_type_name (SutraGgufType t)
{
  return (unsigned) t < SUTRA_GGUF_TYPE_COUNT ? kv_types[t].name : "unknown";
}

/* ------------------------------------------------------------------------------------------ */
/* a small string -> index hash set (duplicate keys / tensor names in O(n))                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  size_t cap;        /* power of two */
  int64_t *slot;     /* -1 empty, else an index into the caller's names */
} NameSet;

static uint64_t
fnv1a (const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char) *s) * 1099511628211ULL;
  return h;
}

static void
nameset_init (NameSet *ns, size_t n)
{
  ns->cap = 16;
  while (ns->cap < 2 * n)
    ns->cap *= 2;
  ns->slot = sutra_xmalloc (sizeof (int64_t) * ns->cap);
  for (size_t i = 0; i < ns->cap; i++)
    ns->slot[i] = -1;
}

/* Inserts names[idx]; returns the index of an equal name already present, or -1. */
static int64_t
nameset_add (NameSet *ns, const char *const *names, int64_t idx)
{
  size_t mask = ns->cap - 1, h = (size_t) fnv1a (names[idx]) & mask;
  while (ns->slot[h] >= 0) {
    if (strcmp (names[ns->slot[h]], names[idx]) == 0)
      return ns->slot[h];
    h = (h + 1) & mask;
  }
  ns->slot[h] = idx;
  return -1;
}

static int64_t
nameset_find (const NameSet *ns, const char *const *names, const char *name)
{
  if (!ns->slot)
    return -1;
  size_t mask = ns->cap - 1, h = (size_t) fnv1a (name) & mask;
  while (ns->slot[h] >= 0) {
    if (strcmp (names[ns->slot[h]], name) == 0)
      return ns->slot[h];
    h = (h + 1) & mask;
  }
  return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* reader                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  SutraGgufType type;
  SutraGgufType elem;      /* arrays */
  uint64_t n;              /* array length (1 for scalars) */
  const uint8_t *val;      /* scalar bytes / string length field / first array element */
  uint64_t *str_off;       /* string arrays: offset of element j's length field from val */
} Kv;

struct SutraGguf {
  char *name;
  const uint8_t *base;
  size_t size;
  void *map;               /* mmapped region (sutra_gguf_open) or NULL */
  uint32_t version;
  size_t alignment, data_off;
  size_t n_kv, n_tensors;
  char **keys;             /* [n_kv] */
  Kv *kv;                  /* [n_kv] */
  char **tnames;           /* [n_tensors] */
  SutraGgufTensor *tensors;
  NameSet key_set, tensor_set;
};

typedef struct {
  const uint8_t *p;
  size_t size, pos;
  const char *name;
  SutraError *err;
} Cur;

static SutraStatus
truncated (Cur *c, const char *what)
{
  return sutra_error_set (c->err, SUTRA_ERR_FORMAT,
                          "%s: truncated at byte %zu of %zu while reading %s; the file is "
                          "incomplete or not GGUF", c->name, c->pos, c->size, what);
}

static bool
take (Cur *c, void *dst, size_t n)
{
  if (n > c->size - c->pos)
    return false;
  memcpy (dst, c->p + c->pos, n);
  c->pos += n;
  return true;
}

static bool
skip (Cur *c, uint64_t n)
{
  if (n > c->size - c->pos)
    return false;
  c->pos += (size_t) n;
  return true;
}

/* A GGUF string: u64 length + bytes. Sets *s to the bytes in the image. */
static bool
take_string (Cur *c, const char **s, uint64_t *len)
{
  uint64_t n;
  if (!take (c, &n, 8) || n > c->size - c->pos)
    return false;
  *s = (const char *) c->p + c->pos;
  *len = n;
  c->pos += (size_t) n;
  return true;
}

void
sutra_gguf_free (SutraGguf *g)
{
  if (!g)
    return;
  for (size_t i = 0; i < g->n_kv; i++) {
    free (g->keys[i]);
    free (g->kv[i].str_off);
  }
  free (g->keys);
  free (g->kv);
  for (size_t i = 0; i < g->n_tensors; i++)
    free (g->tnames[i]);
  free (g->tnames);
  free (g->tensors);
  free (g->key_set.slot);
  free (g->tensor_set.slot);
  if (g->map)
    munmap (g->map, g->size);
  free (g->name);
  free (g);
}

static SutraStatus
parse_kv (SutraGguf *g, Cur *c, size_t i)
{
  SutraError *err = c->err;
  char what[96];
  snprintf (what, sizeof what, "key %zu", i);
  const char *ks;
  uint64_t klen;
  if (!take_string (c, &ks, &klen))
    return truncated (c, what);
  if (klen == 0)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: key %zu is empty", g->name, i);
  if (memchr (ks, 0, (size_t) klen))
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: key %zu contains a NUL byte", g->name, i);
  g->keys[i] = sutra_xstrndup (ks, (size_t) klen);
  g->n_kv = i + 1;                           /* owned from here (freed on error) */
  int64_t dup = nameset_add (&g->key_set, (const char *const *) g->keys, (int64_t) i);
  if (dup >= 0)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: duplicate key '%s' (entries %" PRId64
                            " and %zu)", g->name, g->keys[i], dup, i);
  snprintf (what, sizeof what, "the value of '%.60s'", g->keys[i]);
  int32_t type;
  if (!take (c, &type, 4))
    return truncated (c, what);
  Kv *kv = &g->kv[i];
  kv->n = 1;
  if (type < 0 || type >= SUTRA_GGUF_TYPE_COUNT)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: key '%s' has unknown value type %d",
                            g->name, g->keys[i], type);
  kv->type = (SutraGgufType) type;
  kv->elem = kv->type;
  if (kv->type == SUTRA_GGUF_ARRAY) {
    int32_t elem;
    uint64_t n;
    if (!take (c, &elem, 4) || !take (c, &n, 8))
      return truncated (c, what);
    if (elem < 0 || elem >= SUTRA_GGUF_TYPE_COUNT || elem == SUTRA_GGUF_ARRAY)
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: key '%s': invalid array element type %d",
                              g->name, g->keys[i], elem);
    kv->elem = (SutraGgufType) elem;
    kv->n = n;
  }
  kv->val = c->p + c->pos;
  if (kv->elem == SUTRA_GGUF_STRING) {
    /* every string needs at least its 8-byte length: bound n before allocating offsets */
    if (kv->n > (c->size - c->pos) / 8)
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: key '%s': %" PRIu64 " strings cannot fit "
                              "in the %zu bytes left; truncated or corrupt", g->name, g->keys[i],
                              kv->n, c->size - c->pos);
    if (kv->type == SUTRA_GGUF_ARRAY)
      kv->str_off = sutra_xmalloc (sizeof (uint64_t) * (kv->n ? (size_t) kv->n : 1));
    size_t start = c->pos;
    for (uint64_t j = 0; j < kv->n; j++) {
      const char *s;
      uint64_t len;
      if (kv->str_off)
        kv->str_off[j] = c->pos - start;
      if (!take_string (c, &s, &len))
        return truncated (c, what);
    }
    return SUTRA_OK;
  }
  uint64_t esize = (uint64_t) kv_types[kv->elem].size;
  if (kv->n > (c->size - c->pos) / esize || !skip (c, kv->n * esize))
    return truncated (c, what);
  return SUTRA_OK;
}

static SutraStatus
parse_tensor (SutraGguf *g, Cur *c, size_t i)
{
  SutraError *err = c->err;
  char what[128];
  snprintf (what, sizeof what, "tensor info %zu", i);
  const char *ns;
  uint64_t nlen;
  if (!take_string (c, &ns, &nlen))
    return truncated (c, what);
  if (nlen > SUTRA_GGUF_MAX_NAME)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor %zu: name of %" PRIu64 " bytes is "
                            "longer than ggml's limit of %d", g->name, i, nlen, SUTRA_GGUF_MAX_NAME);
  if (nlen == 0 || memchr (ns, 0, (size_t) nlen))
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor %zu: name is empty or contains a "
                            "NUL byte", g->name, i);
  g->tnames[i] = sutra_xstrndup (ns, (size_t) nlen);
  g->n_tensors = i + 1;
  SutraGgufTensor *t = &g->tensors[i];
  t->name = g->tnames[i];
  int64_t dup = nameset_add (&g->tensor_set, (const char *const *) g->tnames, (int64_t) i);
  if (dup >= 0)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: duplicate tensor name '%s'", g->name,
                            t->name);
  snprintf (what, sizeof what, "the info of tensor '%s'", t->name);
  uint32_t nd;
  if (!take (c, &nd, 4))
    return truncated (c, what);
  if (nd > SUTRA_GGUF_MAX_DIMS)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s' has %u dimensions (at most %d)",
                            g->name, t->name, nd, SUTRA_GGUF_MAX_DIMS);
  t->n_dims = (int) nd;
  /* the product of the non-zero dimensions must fit: then every partial product used later
   * (rows = ne1 ne2 ne3, even with ne0 = 0) fits too */
  uint64_t numel = 1, nz = 1;
  for (int d = 0; d < SUTRA_GGUF_MAX_DIMS; d++) {
    t->ne[d] = 1;
    if ((uint32_t) d < nd && !take (c, &t->ne[d], 8))
      return truncated (c, what);
    if (t->ne[d] < 0)
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s': dimension %d is negative "
                              "(%" PRId64 ")", g->name, t->name, d, t->ne[d]);
    if (t->ne[d] > 0 && nz > (uint64_t) INT64_MAX / (uint64_t) t->ne[d])
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s': element count overflows",
                              g->name, t->name);
    if (t->ne[d] > 0)
      nz *= (uint64_t) t->ne[d];
    numel *= (uint64_t) t->ne[d];
  }
  int32_t type;
  if (!take (c, &type, 4) || !take (c, &t->offset, 8))
    return truncated (c, what);
  t->type = type;
  int64_t blck = sutra_ggml_block_size (type);
  if (blck <= 0)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s' has unknown ggml type %d",
                            g->name, t->name, type);
  if (t->ne[0] % blck)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s': row of %" PRId64 " elements "
                            "is not a multiple of the %s block size %" PRId64, g->name, t->name,
                            t->ne[0], sutra_ggml_type_name (type), blck);
  uint64_t blocks = numel / (uint64_t) blck, bsize = sutra_ggml_type_size (type);
  if (blocks > SIZE_MAX / bsize)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s': byte size overflows", g->name,
                            t->name);
  t->size = (size_t) (blocks * bsize);
  return SUTRA_OK;
}

static SutraStatus
parse_image (SutraGguf *g, SutraError *err)
{
  Cur c = { g->base, g->size, 0, g->name, err };
  char magic[4];
  if (!take (&c, magic, 4))
    return truncated (&c, "the magic");
  if (memcmp (magic, "GGUF", 4) != 0)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: not a GGUF file (magic is not \"GGUF\")",
                            g->name);
  int64_t nt, nkv;
  if (!take (&c, &g->version, 4))
    return truncated (&c, "the version");
  if (g->version == 1)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: GGUF version 1 (32-bit counts) is "
                            "not supported; convert it with a newer llama.cpp", g->name);
  if (g->version != 2 && g->version != 3)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: unknown GGUF version %u (expected 3)",
                            g->name, g->version);
  if (!take (&c, &nt, 8) || !take (&c, &nkv, 8))
    return truncated (&c, "the tensor and key counts");
  /* smallest KV: 8 + 1 (key) + 4 (type) + 1 (value) bytes; smallest tensor info: 8 + 4 + 4 + 8 */
  size_t left = c.size - c.pos;
  if (nkv < 0 || (uint64_t) nkv > left / 14)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %" PRId64 " key-value pairs cannot fit in "
                            "%zu bytes; truncated or not GGUF", g->name, nkv, left);
  if (nt < 0 || (uint64_t) nt > left / 24)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %" PRId64 " tensors cannot fit in %zu "
                            "bytes; truncated or not GGUF", g->name, nt, left);
  g->keys = sutra_xcalloc ((size_t) nkv + 1, sizeof (char *));
  g->kv = sutra_xcalloc ((size_t) nkv + 1, sizeof (Kv));
  nameset_init (&g->key_set, (size_t) nkv);
  SutraStatus st;
  for (size_t i = 0; i < (size_t) nkv; i++)
    if ((st = parse_kv (g, &c, i)))
      return st;
  g->alignment = SUTRA_GGUF_DEFAULT_ALIGNMENT;
  int64_t ai = sutra_gguf_find_key (g, "general.alignment");
  if (ai >= 0) {
    const Kv *kv = &g->kv[ai];
    uint32_t a;
    if (kv->type != SUTRA_GGUF_UINT32)
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: general.alignment must be uint32, got %s",
                              g->name, sutra_gguf_type_name (kv->type));
    memcpy (&a, kv->val, 4);
    if (a == 0 || (a & (a - 1)) != 0)
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: general.alignment %u is not a power of two",
                              g->name, a);
    g->alignment = a;
  }
  g->tnames = sutra_xcalloc ((size_t) nt + 1, sizeof (char *));
  g->tensors = sutra_xcalloc ((size_t) nt + 1, sizeof (SutraGgufTensor));
  nameset_init (&g->tensor_set, (size_t) nt);
  for (size_t i = 0; i < (size_t) nt; i++)
    if ((st = parse_tensor (g, &c, i)))
      return st;
  /* the data section starts at the next multiple of the alignment */
  size_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
  g->data_off = c.pos + pad;
  if (nt > 0 && g->data_off > g->size)
    return truncated (&c, "the padding before the tensor data");
  size_t data_size = g->data_off <= g->size ? g->size - g->data_off : 0;
  for (size_t i = 0; i < g->n_tensors; i++) {
    SutraGgufTensor *t = &g->tensors[i];
    if (t->offset % g->alignment)
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s': data offset %" PRIu64 " is "
                              "not a multiple of the alignment %zu", g->name, t->name, t->offset,
                              g->alignment);
    if (t->offset > data_size || t->size > data_size - t->offset)
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s': data [%" PRIu64 ", +%zu) "
                              "lies beyond the end of the file (%zu data bytes); truncated",
                              g->name, t->name, t->offset, t->size, data_size);
    t->data = g->base + g->data_off + t->offset;
  }
  return SUTRA_OK;
}

SutraStatus
sutra_gguf_open_memory (const void *data, size_t size, const char *name, SutraGguf **out,
                        SutraError *err)
{
  SutraGguf *g = sutra_xcalloc (1, sizeof *g);
  g->name = sutra_xstrdup (name ? name : "gguf");
  g->base = data;
  g->size = size;
  SutraStatus st = parse_image (g, err);
  if (st) {
    sutra_gguf_free (g);
    return st;
  }
  *out = g;
  return SUTRA_OK;
}

SutraStatus
sutra_gguf_open (const char *path, SutraGguf **out, SutraError *err)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sutra_error_set_sys (err, errno == ENOENT ? SUTRA_ERR_NOT_FOUND : SUTRA_ERR_IO, errno,
                                "%s", path);
  struct stat sb;
  if (fstat (fd, &sb) != 0) {
    int e = errno;
    close (fd);
    return sutra_error_set_sys (err, SUTRA_ERR_IO, e, "%s: stat", path);
  }
  if (!S_ISREG (sb.st_mode)) {
    close (fd);
    return sutra_error_set (err, SUTRA_ERR_IO, "%s: not a regular file", path);
  }
  size_t size = (size_t) sb.st_size;
  void *p = NULL;
  if (size > 0) {
    p = mmap (NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      close (fd);
      return sutra_error_set_sys (err, SUTRA_ERR_IO, e, "%s: mmap", path);
    }
  }
  close (fd);
  SutraGguf *g = sutra_xcalloc (1, sizeof *g);
  g->name = sutra_xstrdup (path);
  g->base = p;
  g->size = size;
  g->map = p;
  SutraStatus st = parse_image (g, err);
  if (st) {
    sutra_gguf_free (g);
    return st;
  }
  *out = g;
  return SUTRA_OK;
}

uint32_t sutra_gguf_version (const SutraGguf *g) { return g->version; }
size_t sutra_gguf_alignment (const SutraGguf *g) { return g->alignment; }
size_t sutra_gguf_data_offset (const SutraGguf *g) { return g->data_off; }
size_t sutra_gguf_kv_count (const SutraGguf *g) { return g->n_kv; }
const char *sutra_gguf_kv_key (const SutraGguf *g, size_t i) { return i < g->n_kv ? g->keys[i] : NULL; }
SutraGgufType sutra_gguf_kv_type (const SutraGguf *g, size_t i) { return g->kv[i].type; }
size_t sutra_gguf_tensor_count (const SutraGguf *g) { return g->n_tensors; }

int64_t
sutra_gguf_find_key (const SutraGguf *g, const char *key)
{
  return nameset_find (&g->key_set, (const char *const *) g->keys, key);
}

const SutraGgufTensor *
sutra_gguf_tensor (const SutraGguf *g, size_t i)
{
  return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const SutraGgufTensor *
sutra_gguf_find_tensor (const SutraGguf *g, const char *name)
{
  int64_t i = nameset_find (&g->tensor_set, (const char *const *) g->tnames, name);
  return i >= 0 ? &g->tensors[i] : NULL;
}

/* ---- value access ---- */

/* Reads one numeric element as integer (ok = representable). */
static bool
elem_int (SutraGgufType t, const uint8_t *p, int64_t *out, uint64_t *uout, bool *is_unsigned)
{
  *is_unsigned = false;
  switch (t) {
  case SUTRA_GGUF_UINT8: *out = *p; return true;
  case SUTRA_GGUF_INT8: *out = (int8_t) *p; return true;
  case SUTRA_GGUF_BOOL: *out = *p != 0; return true;
  case SUTRA_GGUF_UINT16: { uint16_t v; memcpy (&v, p, 2); *out = v; return true; }
  case SUTRA_GGUF_INT16: { int16_t v; memcpy (&v, p, 2); *out = v; return true; }
  case SUTRA_GGUF_UINT32: { uint32_t v; memcpy (&v, p, 4); *out = v; return true; }
  case SUTRA_GGUF_INT32: { int32_t v; memcpy (&v, p, 4); *out = v; return true; }
  case SUTRA_GGUF_INT64: { int64_t v; memcpy (&v, p, 8); *out = v; return true; }
  case SUTRA_GGUF_UINT64: {
    uint64_t v;
    memcpy (&v, p, 8);
    *uout = v;
    *is_unsigned = true;
    return true;
  }
  default: return false;
  }
}

static bool
elem_float (SutraGgufType t, const uint8_t *p, double *out)
{
  if (t == SUTRA_GGUF_FLOAT32) {
    float v;
    memcpy (&v, p, 4);
    *out = v;
    return true;
  }
  if (t == SUTRA_GGUF_FLOAT64) {
    memcpy (out, p, 8);
    return true;
  }
  int64_t v;
  uint64_t u;
  bool uns;
  if (!elem_int (t, p, &v, &u, &uns))
    return false;
  *out = uns ? (double) u : (double) v;
  return true;
}

bool
sutra_gguf_kv_int (const SutraGguf *g, size_t i, int64_t *out)
{
  if (i >= g->n_kv || g->kv[i].type == SUTRA_GGUF_ARRAY)
    return false;
  int64_t v;
  uint64_t u;
  bool uns;
  if (!elem_int (g->kv[i].type, g->kv[i].val, &v, &u, &uns))
    return false;
  if (uns) {
    if (u > (uint64_t) INT64_MAX)
      return false;
    v = (int64_t) u;
  }
  *out = v;
  return true;
}

bool
sutra_gguf_kv_uint (const SutraGguf *g, size_t i, uint64_t *out)
{
  if (i >= g->n_kv || g->kv[i].type == SUTRA_GGUF_ARRAY)
    return false;
  int64_t v;
  uint64_t u;
  bool uns;
  if (!elem_int (g->kv[i].type, g->kv[i].val, &v, &u, &uns))
    return false;
  if (!uns) {
    if (v < 0)
      return false;
    u = (uint64_t) v;
  }
  *out = u;
  return true;
}

bool
sutra_gguf_kv_float (const SutraGguf *g, size_t i, double *out)
{
  if (i >= g->n_kv || g->kv[i].type == SUTRA_GGUF_ARRAY || g->kv[i].type == SUTRA_GGUF_STRING)
    return false;
  return elem_float (g->kv[i].type, g->kv[i].val, out);
}

bool
sutra_gguf_kv_bool (const SutraGguf *g, size_t i, bool *out)
{
  if (i >= g->n_kv || g->kv[i].type != SUTRA_GGUF_BOOL)
    return false;
  *out = g->kv[i].val[0] != 0;
  return true;
}

static void
read_str_at (const uint8_t *p, const char **s, size_t *len)
{
  uint64_t n;
  memcpy (&n, p, 8);
  *s = (const char *) p + 8;
  *len = (size_t) n;
}

bool
sutra_gguf_kv_string (const SutraGguf *g, size_t i, const char **s, size_t *len)
{
  if (i >= g->n_kv || g->kv[i].type != SUTRA_GGUF_STRING)
    return false;
  read_str_at (g->kv[i].val, s, len);
  return true;
}

bool
sutra_gguf_kv_array (const SutraGguf *g, size_t i, SutraGgufType *elem, uint64_t *n)
{
  if (i >= g->n_kv || g->kv[i].type != SUTRA_GGUF_ARRAY)
    return false;
  *elem = g->kv[i].elem;
  *n = g->kv[i].n;
  return true;
}

bool
sutra_gguf_kv_array_int (const SutraGguf *g, size_t i, uint64_t j, int64_t *out)
{
  if (i >= g->n_kv || g->kv[i].type != SUTRA_GGUF_ARRAY || j >= g->kv[i].n)
    return false;
  const Kv *kv = &g->kv[i];
  if (kv->elem == SUTRA_GGUF_STRING || kv->elem == SUTRA_GGUF_FLOAT32 ||
      kv->elem == SUTRA_GGUF_FLOAT64)
    return false;
  int64_t v;
  uint64_t u;
  bool uns;
  if (!elem_int (kv->elem, kv->val + j * (uint64_t) kv_types[kv->elem].size, &v, &u, &uns))
    return false;
  if (uns) {
    if (u > (uint64_t) INT64_MAX)
      return false;
    v = (int64_t) u;
  }
  *out = v;
  return true;
}

bool
sutra_gguf_kv_array_float (const SutraGguf *g, size_t i, uint64_t j, double *out)
{
  if (i >= g->n_kv || g->kv[i].type != SUTRA_GGUF_ARRAY || j >= g->kv[i].n ||
      g->kv[i].elem == SUTRA_GGUF_STRING)
    return false;
  const Kv *kv = &g->kv[i];
  return elem_float (kv->elem, kv->val + j * (uint64_t) kv_types[kv->elem].size, out);
}

bool
sutra_gguf_kv_array_string (const SutraGguf *g, size_t i, uint64_t j, const char **s, size_t *len)
{
  if (i >= g->n_kv || g->kv[i].type != SUTRA_GGUF_ARRAY || g->kv[i].elem != SUTRA_GGUF_STRING ||
      j >= g->kv[i].n)
    return false;
  read_str_at (g->kv[i].val + g->kv[i].str_off[j], s, len);
  return true;
}

/* ---- printable values ---- */

typedef struct { char *p; size_t n, cap; } Buf;

static void
buf_add (Buf *b, const char *s, size_t n)
{
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->p = sutra_xrealloc (b->p, b->cap);
  }
  memcpy (b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void
buf_printf (Buf *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void
buf_printf (Buf *b, const char *fmt, ...)
{
  char tmp[64];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (tmp, sizeof tmp, fmt, ap);
  va_end (ap);
  buf_add (b, tmp, n < (int) sizeof tmp ? (size_t) n : sizeof tmp - 1);
}

/* JSON-style quoted string, long strings cut at 60 bytes */
static void
buf_quote (Buf *b, const char *s, size_t len)
{
  size_t lim = len > 60 ? 60 : len;
  buf_add (b, "\"", 1);
  for (size_t k = 0; k < lim; k++) {
    unsigned char ch = (unsigned char) s[k];
    if (ch == '"' || ch == '\\')
      buf_printf (b, "\\%c", ch);
    else if (ch < 0x20)
      buf_printf (b, "\\u%04x", ch);
    else
      buf_add (b, (const char *) &ch, 1);
  }
  buf_add (b, "\"", 1);
  if (lim < len)
    buf_printf (b, "...(%zu bytes)", len);
}

static void
buf_elem (Buf *b, SutraGgufType t, const uint8_t *p)
{
  double f;
  int64_t v;
  uint64_t u;
  bool uns;
  if (t == SUTRA_GGUF_BOOL)
    buf_add (b, *p ? "true" : "false", *p ? 4 : 5);
  else if (t == SUTRA_GGUF_FLOAT32 || t == SUTRA_GGUF_FLOAT64) {
    elem_float (t, p, &f);
    buf_printf (b, "%.9g", f);
  } else if (elem_int (t, p, &v, &u, &uns)) {
    if (uns)
      buf_printf (b, "%" PRIu64, u);
    else
      buf_printf (b, "%" PRId64, v);
  }
}

char *
sutra_gguf_kv_to_string (const SutraGguf *g, size_t i, int max_items)
{
  Buf b = { 0 };
  buf_add (&b, "", 0);
  const Kv *kv = &g->kv[i];
  const char *s;
  size_t len;
  if (kv->type == SUTRA_GGUF_STRING) {
    read_str_at (kv->val, &s, &len);
    buf_quote (&b, s, len);
  } else if (kv->type != SUTRA_GGUF_ARRAY) {
    buf_elem (&b, kv->type, kv->val);
  } else {
    buf_printf (&b, "[%s x %" PRIu64 "] [", sutra_gguf_type_name (kv->elem), kv->n);
    uint64_t show = kv->n < (uint64_t) max_items ? kv->n : (uint64_t) max_items;
    for (uint64_t j = 0; j < show; j++) {
      if (j)
        buf_add (&b, ", ", 2);
      if (kv->elem == SUTRA_GGUF_STRING) {
        read_str_at (kv->val + kv->str_off[j], &s, &len);
        buf_quote (&b, s, len);
      } else {
        buf_elem (&b, kv->elem, kv->val + j * (uint64_t) kv_types[kv->elem].size);
      }
    }
    if (show < kv->n)
      buf_add (&b, ", ...", 5);
    buf_add (&b, "]", 1);
  }
  return b.p;
}

SutraStatus
sutra_gguf_tensor_to_f32 (const SutraGguf *g, const SutraGgufTensor *t, float *dst, SutraError *err)
{
  if (!sutra_ggml_type_supported (t->type))
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: tensor '%s': ggml type %s cannot be "
                            "converted (supported: f32 f16 bf16 q8_0 q4_0 q4_K q6_K)", g->name,
                            t->name, sutra_ggml_type_name (t->type));
  int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
  if (t->ne[0] == 0 || rows == 0)
    return SUTRA_OK;                   /* no elements (however many empty rows) */
  size_t rb = sutra_ggml_row_bytes (t->type, t->ne[0]);
  for (int64_t r = 0; r < rows; r++)
    sutra_ggml_dequantize_row (t->type, dst + r * t->ne[0], (const uint8_t *) t->data + (size_t) r * rb,
                               t->ne[0]);
  return SUTRA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* writer                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  char *key;
  SutraGgufType type;
  uint8_t *bytes;          /* serialized value as in the file (after the type field) */
  size_t n;
} WKv;

typedef struct {
  char *name;
  int type, n_dims;
  int64_t ne[SUTRA_GGUF_MAX_DIMS];
  SutraGgufFillFunc fill;
  void *user;
  const void *data;
  uint64_t offset;
  size_t size;
} WTensor;

struct SutraGgufWriter {
  WKv *kv;
  size_t n_kv, cap_kv;
  WTensor *t;
  size_t n_t, cap_t;
};

SutraGgufWriter *
sutra_gguf_writer_new (void)
{
  return sutra_xcalloc (1, sizeof (SutraGgufWriter));
}

void
sutra_gguf_writer_free (SutraGgufWriter *w)
{
  if (!w)
    return;
  for (size_t i = 0; i < w->n_kv; i++) {
    free (w->kv[i].key);
    free (w->kv[i].bytes);
  }
  free (w->kv);
  for (size_t i = 0; i < w->n_t; i++)
    free (w->t[i].name);
  free (w->t);
  free (w);
}

/* Sets key to a serialized value (takes ownership of bytes). */
static void
set_kv (SutraGgufWriter *w, const char *key, SutraGgufType type, uint8_t *bytes, size_t n)
{
  for (size_t i = 0; i < w->n_kv; i++)
    if (strcmp (w->kv[i].key, key) == 0) {
      free (w->kv[i].bytes);
      w->kv[i].type = type;
      w->kv[i].bytes = bytes;
      w->kv[i].n = n;
      return;
    }
  if (w->n_kv == w->cap_kv) {
    w->cap_kv = w->cap_kv ? 2 * w->cap_kv : 32;
    w->kv = sutra_xrealloc (w->kv, sizeof (WKv) * w->cap_kv);
  }
  w->kv[w->n_kv++] = (WKv) { sutra_xstrdup (key), type, bytes, n };
}

static void
set_scalar (SutraGgufWriter *w, const char *key, SutraGgufType type, const void *v)
{
  size_t n = (size_t) kv_types[type].size;
  uint8_t *b = sutra_xmalloc (n);
  memcpy (b, v, n);
  set_kv (w, key, type, b, n);
}

void sutra_gguf_writer_set_u32 (SutraGgufWriter *w, const char *k, uint32_t v) { set_scalar (w, k, SUTRA_GGUF_UINT32, &v); }
void sutra_gguf_writer_set_i32 (SutraGgufWriter *w, const char *k, int32_t v) { set_scalar (w, k, SUTRA_GGUF_INT32, &v); }
void sutra_gguf_writer_set_u64 (SutraGgufWriter *w, const char *k, uint64_t v) { set_scalar (w, k, SUTRA_GGUF_UINT64, &v); }
void sutra_gguf_writer_set_f32 (SutraGgufWriter *w, const char *k, float v) { set_scalar (w, k, SUTRA_GGUF_FLOAT32, &v); }

void
sutra_gguf_writer_set_bool (SutraGgufWriter *w, const char *key, bool v)
{
  uint8_t b = v ? 1 : 0;
  set_scalar (w, key, SUTRA_GGUF_BOOL, &b);
}

void
sutra_gguf_writer_set_raw (SutraGgufWriter *w, const char *key, SutraGgufType type, const void *v)
{
  SUTRA_ASSERT (type < SUTRA_GGUF_TYPE_COUNT && type != SUTRA_GGUF_STRING && type != SUTRA_GGUF_ARRAY);
  set_scalar (w, key, type, v);
}

void
sutra_gguf_writer_set_string (SutraGgufWriter *w, const char *key, const char *v)
{
  uint64_t len = strlen (v);
  uint8_t *b = sutra_xmalloc (8 + (size_t) len);
  memcpy (b, &len, 8);
  memcpy (b + 8, v, (size_t) len);
  set_kv (w, key, SUTRA_GGUF_STRING, b, 8 + (size_t) len);
}

void
sutra_gguf_writer_set_array (SutraGgufWriter *w, const char *key, SutraGgufType elem,
                             const void *data, size_t n)
{
  SUTRA_ASSERT (elem < SUTRA_GGUF_TYPE_COUNT && elem != SUTRA_GGUF_STRING && elem != SUTRA_GGUF_ARRAY);
  size_t es = (size_t) kv_types[elem].size, bytes = 12 + es * n;
  uint8_t *b = sutra_xmalloc (bytes);
  int32_t e = (int32_t) elem;
  uint64_t cnt = n;
  memcpy (b, &e, 4);
  memcpy (b + 4, &cnt, 8);
  if (n)
    memcpy (b + 12, data, es * n);
  set_kv (w, key, SUTRA_GGUF_ARRAY, b, bytes);
}

void
sutra_gguf_writer_set_string_array (SutraGgufWriter *w, const char *key, const char *const *strs,
                                    const size_t *lens, size_t n)
{
  size_t bytes = 12;
  for (size_t i = 0; i < n; i++)
    bytes += 8 + (lens ? lens[i] : strlen (strs[i]));
  uint8_t *b = sutra_xmalloc (bytes), *p = b + 12;
  int32_t e = SUTRA_GGUF_STRING;
  uint64_t cnt = n;
  memcpy (b, &e, 4);
  memcpy (b + 4, &cnt, 8);
  for (size_t i = 0; i < n; i++) {
    uint64_t len = lens ? lens[i] : strlen (strs[i]);
    memcpy (p, &len, 8);
    memcpy (p + 8, strs[i], (size_t) len);
    p += 8 + len;
  }
  set_kv (w, key, SUTRA_GGUF_ARRAY, b, bytes);
}

void
sutra_gguf_writer_add_tensor (SutraGgufWriter *w, const char *name, int ggml_type, int n_dims,
                              const int64_t *ne, SutraGgufFillFunc fill, void *user)
{
  SUTRA_ASSERT (n_dims >= 1 && n_dims <= SUTRA_GGUF_MAX_DIMS);
  if (w->n_t == w->cap_t) {
    w->cap_t = w->cap_t ? 2 * w->cap_t : 64;
    w->t = sutra_xrealloc (w->t, sizeof (WTensor) * w->cap_t);
  }
  WTensor *t = &w->t[w->n_t++];
  memset (t, 0, sizeof *t);
  t->name = sutra_xstrdup (name);
  t->type = ggml_type;
  t->n_dims = n_dims;
  for (int d = 0; d < SUTRA_GGUF_MAX_DIMS; d++)
    t->ne[d] = d < n_dims ? ne[d] : 1;
  t->fill = fill;
  t->user = user;
}

void
sutra_gguf_writer_add_tensor_data (SutraGgufWriter *w, const char *name, int ggml_type, int n_dims,
                                   const int64_t *ne, const void *data)
{
  sutra_gguf_writer_add_tensor (w, name, ggml_type, n_dims, ne, NULL, NULL);
  w->t[w->n_t - 1].data = data;
}

/* Validates tensors and lays out the data section; returns the largest tensor size. */
static SutraStatus
layout (SutraGgufWriter *w, const char *path, size_t align, size_t *max_size, uint64_t *total,
        SutraError *err)
{
  uint64_t off = 0;
  *max_size = 0;
  char **names = sutra_xmalloc (sizeof (char *) * (w->n_t + 1));
  NameSet ns;
  nameset_init (&ns, w->n_t);
  SutraStatus st = SUTRA_OK;
  for (size_t i = 0; i < w->n_t && !st; i++) {
    WTensor *t = &w->t[i];
    names[i] = t->name;
    if (strlen (t->name) > SUTRA_GGUF_MAX_NAME || !*t->name)
      st = sutra_error_set (err, SUTRA_ERR_INVALID, "%s: tensor name '%s' is empty or longer than "
                            "%d bytes", path, t->name, SUTRA_GGUF_MAX_NAME);
    else if (nameset_add (&ns, (const char *const *) names, (int64_t) i) >= 0)
      st = sutra_error_set (err, SUTRA_ERR_INVALID, "%s: duplicate tensor name '%s'", path, t->name);
    else if (!sutra_ggml_block_size (t->type) || t->ne[0] % sutra_ggml_block_size (t->type))
      st = sutra_error_set (err, SUTRA_ERR_INVALID, "%s: tensor '%s': %" PRId64 " columns do not "
                            "fit ggml type %d's blocks", path, t->name, t->ne[0], t->type);
    if (st)
      break;
    size_t row = sutra_ggml_row_bytes (t->type, t->ne[0]);
    uint64_t rows = (uint64_t) t->ne[1] * (uint64_t) t->ne[2] * (uint64_t) t->ne[3];
    t->size = (size_t) (row * rows);
    t->offset = off;
    off += t->size + (align - t->size % align) % align;
    if (t->size > *max_size)
      *max_size = t->size;
  }
  free (ns.slot);
  free (names);
  *total = off;
  return st;
}

static SutraStatus
wr (SutraAtomicFile *f, const void *p, size_t n, SutraError *err)
{
  return sutra_atomic_write (f, p, n, err);
}

static SutraStatus
wr_pad (SutraAtomicFile *f, uint64_t *pos, size_t align, SutraError *err)
{
  static const uint8_t zeros[256];
  size_t pad = (align - (size_t) (*pos % align)) % align;
  while (pad > 0) {
    size_t k = pad < sizeof zeros ? pad : sizeof zeros;
    SutraStatus st = wr (f, zeros, k, err);
    if (st)
      return st;
    pad -= k;
    *pos += k;
  }
  return SUTRA_OK;
}

SutraStatus
sutra_gguf_writer_write (SutraGgufWriter *w, const char *path, SutraGgufProgressFunc progress,
                         void *user, SutraError *err)
{
  size_t align = SUTRA_GGUF_DEFAULT_ALIGNMENT;
  for (size_t i = 0; i < w->n_kv; i++)
    if (strcmp (w->kv[i].key, "general.alignment") == 0) {
      uint32_t a;
      if (w->kv[i].type != SUTRA_GGUF_UINT32)
        return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: general.alignment must be uint32", path);
      memcpy (&a, w->kv[i].bytes, 4);
      if (a == 0 || (a & (a - 1)))
        return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: general.alignment %u is not a power "
                                "of two", path, a);
      align = a;
    }
  size_t max_size;
  uint64_t total;
  SutraStatus st = layout (w, path, align, &max_size, &total, err);
  if (st)
    return st;
  SutraAtomicFile f;
  if ((st = sutra_atomic_open (&f, path, err)))
    return st;
  uint8_t *buf = NULL;
  uint64_t pos = 0;
  /* header */
  uint32_t version = 3;
  int64_t nt = (int64_t) w->n_t, nkv = (int64_t) w->n_kv;
  st = wr (&f, "GGUF", 4, err);
  if (!st) st = wr (&f, &version, 4, err);
  if (!st) st = wr (&f, &nt, 8, err);
  if (!st) st = wr (&f, &nkv, 8, err);
  pos += 24;
  for (size_t i = 0; i < w->n_kv && !st; i++) {
    uint64_t kl = strlen (w->kv[i].key);
    int32_t type = (int32_t) w->kv[i].type;
    st = wr (&f, &kl, 8, err);
    if (!st) st = wr (&f, w->kv[i].key, (size_t) kl, err);
    if (!st) st = wr (&f, &type, 4, err);
    if (!st) st = wr (&f, w->kv[i].bytes, w->kv[i].n, err);
    pos += 12 + kl + w->kv[i].n;
  }
  for (size_t i = 0; i < w->n_t && !st; i++) {
    const WTensor *t = &w->t[i];
    uint64_t nl = strlen (t->name);
    uint32_t nd = (uint32_t) t->n_dims;
    int32_t type = t->type;
    st = wr (&f, &nl, 8, err);
    if (!st) st = wr (&f, t->name, (size_t) nl, err);
    if (!st) st = wr (&f, &nd, 4, err);
    if (!st) st = wr (&f, t->ne, 8 * (size_t) nd, err);
    if (!st) st = wr (&f, &type, 4, err);
    if (!st) st = wr (&f, &t->offset, 8, err);
    pos += 8 + nl + 4 + 8 * (uint64_t) nd + 4 + 8;
  }
  if (!st && w->n_t > 0)
    st = wr_pad (&f, &pos, align, err);
  if (!st && max_size > 0) {
    buf = sutra_try_alloc (max_size, "GGUF tensor buffer", err);
    if (!buf)
      st = SUTRA_ERR_NOMEM;
  }
  uint64_t done = 0;
  for (size_t i = 0; i < w->n_t && !st; i++) {
    const WTensor *t = &w->t[i];
    if (progress && !progress (total ? (double) done / (double) total : 0.0, t->name, user)) {
      st = sutra_error_set (err, SUTRA_ERR_CANCELLED, "%s: export cancelled", path);
      break;
    }
    const void *src = t->data;
    if (t->fill) {
      if ((st = t->fill (t->user, buf, t->size, err))) {
        sutra_error_prefix (err, "%s: tensor '%s'", path, t->name);
        break;
      }
      src = buf;
    }
    SUTRA_ASSERT (src || t->size == 0);
    if (t->size && (st = wr (&f, src, t->size, err)))
      break;
    pos += t->size;
    done += t->size;
    st = wr_pad (&f, &pos, align, err);     /* every tensor padded, the last one too (as gguf-py) */
  }
  sutra_aligned_free (buf);
  if (!st && progress)
    progress (1.0, "done", user);
  if (!st)
    st = sutra_atomic_commit (&f, err);
  else
    sutra_atomic_abort (&f);
  return st;
}
