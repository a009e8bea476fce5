/* sutra-safetensors-write.c: the streaming atomic safetensors writer (declared in
 * sutra-safetensors.h; the reader is sutra-safetensors.c).
 *
 * Follows the reference `serialize` (huggingface/safetensors, safetensors/src/tensor.rs):
 * data laid out by descending element size, then name, so every tensor is aligned to its
 * element size; the header is compact JSON padded with spaces to a multiple of 8 so the
 * buffer starts 8-byte aligned in the file. Header keys: __metadata__ first, then tensors
 * sorted by name. Data is streamed from the callers' buffers through sutra_atomic_*. */
#include "sutra-safetensors.h"
#include "sutra-fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONVERT_CHUNK 16384                    /* f32 elements converted per write */
/* The reference reader's header limit (100e6 bytes, a little under our reading limit of
 * 100 MiB): the writer keeps to it so that every file it makes loads in Python. */
#define REFERENCE_MAX_HEADER 100000000u

typedef struct {
  char *key, *value;
} WMeta;

static int
wmeta_cmp (const void *a, const void *b)
{
  return strcmp (((const WMeta *) a)->key, ((const WMeta *) b)->key);
}

typedef struct {
  char *name;
  SutraDType dtype;       /* as stored */
  bool from_f32;          /* data is float[] converted to dtype while writing */
  int ndim;
  int64_t shape[SUTRA_MAX_DIMS];
  const void *data;
  uint64_t nbytes;        /* stored size */
  uint64_t begin;         /* assigned at write time */
} WEntry;

struct SutraSafetensorsWriter {
  WEntry *e;
  size_t n, cap;
  WMeta *meta;
  size_t n_meta;
};

SutraSafetensorsWriter *
sutra_safetensors_writer_new (void)
{
  return sutra_xcalloc (1, sizeof (SutraSafetensorsWriter));
}

void
sutra_safetensors_writer_free (SutraSafetensorsWriter *w)
{
  if (!w)
    return;
  for (size_t i = 0; i < w->n; i++)
    free (w->e[i].name);
  free (w->e);
  for (size_t i = 0; i < w->n_meta; i++) {
    free (w->meta[i].key);
    free (w->meta[i].value);
  }
  free (w->meta);
  free (w);
}

static void
writer_push (SutraSafetensorsWriter *w, const char *name, SutraDType stored, bool from_f32,
             int ndim, const int64_t *shape, const void *data)
{
  SUTRA_ASSERT (name && ndim >= 0 && ndim <= SUTRA_MAX_DIMS && (ndim == 0 || shape));
  SUTRA_ASSERT ((unsigned) stored < SUTRA_DTYPE_COUNT);
  WEntry e = { .name = sutra_xstrdup (name), .dtype = stored, .from_f32 = from_f32, .ndim = ndim,
               .data = data };
  uint64_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    SUTRA_ASSERT (shape[i] >= 0);
    e.shape[i] = shape[i];
    SUTRA_ASSERT (!__builtin_mul_overflow (numel, (uint64_t) shape[i], &numel));
  }
  SUTRA_ASSERT (!__builtin_mul_overflow (numel, (uint64_t) sutra_dtype_size (stored), &e.nbytes));
  SUTRA_ASSERT (data || e.nbytes == 0);
  if (w->n == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 64;
    w->e = sutra_xrealloc (w->e, w->cap * sizeof *w->e);
  }
  w->e[w->n++] = e;
}

void
sutra_safetensors_writer_add (SutraSafetensorsWriter *w, const char *name, SutraDType dtype,
                              int ndim, const int64_t *shape, const void *data)
{
  writer_push (w, name, dtype, false, ndim, shape, data);
}

void
sutra_safetensors_writer_add_f32_as (SutraSafetensorsWriter *w, const char *name,
                                     SutraDType stored, int ndim, const int64_t *shape,
                                     const float *data)
{
  SUTRA_ASSERT (stored == SUTRA_F32 || stored == SUTRA_F16 || stored == SUTRA_BF16);
  writer_push (w, name, stored, stored != SUTRA_F32, ndim, shape, data);
}

void
sutra_safetensors_writer_metadata (SutraSafetensorsWriter *w, const char *key, const char *value)
{
  SUTRA_ASSERT (key && value);
  for (size_t i = 0; i < w->n_meta; i++)
    if (!strcmp (w->meta[i].key, key)) {       /* setting a key again replaces it */
      free (w->meta[i].value);
      w->meta[i].value = sutra_xstrdup (value);
      return;
    }
  w->meta = sutra_xrealloc (w->meta, (w->n_meta + 1) * sizeof *w->meta);
  w->meta[w->n_meta].key = sutra_xstrdup (key);
  w->meta[w->n_meta].value = sutra_xstrdup (value);
  w->n_meta++;
}

/* Growable byte buffer for the header. */
typedef struct {
  char *p;
  size_t n, cap;
} Buf;

static void
buf_put (Buf *b, const char *s, size_t n)
{
  if (b->n + n + 1 > b->cap) {
    while (b->n + n + 1 > b->cap)
      b->cap = b->cap ? b->cap * 2 : 4096;
    b->p = sutra_xrealloc (b->p, b->cap);
  }
  memcpy (b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void
buf_str (Buf *b, const char *s)
{
  buf_put (b, s, strlen (s));
}

/* A JSON string literal (RFC 8259 section 7: '"', '\\' and control characters escaped). */
static void
buf_json_string (Buf *b, const char *s)
{
  buf_put (b, "\"", 1);
  for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
    char esc[8];
    switch (*c) {
    case '"': buf_put (b, "\\\"", 2); break;
    case '\\': buf_put (b, "\\\\", 2); break;
    case '\n': buf_put (b, "\\n", 2); break;
    case '\r': buf_put (b, "\\r", 2); break;
    case '\t': buf_put (b, "\\t", 2); break;
    case '\b': buf_put (b, "\\b", 2); break;
    case '\f': buf_put (b, "\\f", 2); break;
    default:
      if (*c < 0x20) {
        snprintf (esc, sizeof esc, "\\u%04x", *c);
        buf_put (b, esc, 6);
      } else {
        buf_put (b, (const char *) c, 1);
      }
    }
  }
  buf_put (b, "\"", 1);
}

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF): the reference reader rejects
 * headers that are not valid UTF-8. */
static bool
utf8_valid (const char *str)
{
  const unsigned char *s = (const unsigned char *) str;
  while (*s) {
    unsigned c = *s;
    int n;
    unsigned cp;
    if (c < 0x80) { s++; continue; }
    else if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
    else return false;
    for (int i = 1; i <= n; i++) {
      if ((s[i] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff))
        || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    s += n + 1;
  }
  return true;
}

/* Data layout order: descending element size, then name (the reference writer's order), so
 * each tensor starts at a multiple of its element size. */
static int
wentry_layout_cmp (const void *a, const void *b)
{
  const WEntry *x = *(const WEntry *const *) a, *y = *(const WEntry *const *) b;
  size_t sx = sutra_dtype_size (x->dtype), sy = sutra_dtype_size (y->dtype);
  if (sx != sy)
    return sx > sy ? -1 : 1;
  return strcmp (x->name, y->name);
}

static int
wentry_name_cmp (const void *a, const void *b)
{
  return strcmp ((*(const WEntry *const *) a)->name, (*(const WEntry *const *) b)->name);
}

/* Writes one tensor's bytes, converting f32 sources in chunks. */
static SutraStatus
write_tensor (SutraAtomicFile *af, const WEntry *e, SutraError *err)
{
  if (!e->from_f32)
    return sutra_atomic_write (af, e->data, (size_t) e->nbytes, err);
  uint16_t tmp[CONVERT_CHUNK];
  const float *src = e->data;
  size_t n = (size_t) (e->nbytes / 2);
  for (size_t i = 0; i < n; i += CONVERT_CHUNK) {
    size_t m = n - i < CONVERT_CHUNK ? n - i : CONVERT_CHUNK;
    if (e->dtype == SUTRA_F16)
      sutra_f32_to_f16_n (tmp, src + i, m);
    else
      sutra_f32_to_bf16_n (tmp, src + i, m);
    SutraStatus st = sutra_atomic_write (af, tmp, m * 2, err);
    if (st)
      return st;
  }
  return SUTRA_OK;
}

SutraStatus
sutra_safetensors_writer_write (SutraSafetensorsWriter *w, const char *path, SutraError *err)
{
  SutraStatus st = SUTRA_OK;
  WEntry **layout = sutra_xmalloc ((w->n ? w->n : 1) * sizeof *layout);
  WEntry **by_name = sutra_xmalloc ((w->n ? w->n : 1) * sizeof *by_name);
  WMeta *meta = NULL;
  Buf h = { 0 };
  for (size_t i = 0; i < w->n; i++)
    layout[i] = by_name[i] = &w->e[i];

  /* names: unique, not the metadata key, valid UTF-8 */
  qsort (by_name, w->n, sizeof *by_name, wentry_name_cmp);
  for (size_t i = 0; i < w->n; i++) {
    const char *nm = by_name[i]->name;
    if (i > 0 && !strcmp (nm, by_name[i - 1]->name)) {
      st = sutra_error_set (err, SUTRA_ERR_INVALID, "%s: tensor '%s' added twice", path, nm);
      goto out;
    }
    if (!strcmp (nm, "__metadata__") || !utf8_valid (nm)) {
      st = sutra_error_set (err, SUTRA_ERR_INVALID, "%s: '%s' cannot be a tensor name%s", path, nm,
                            utf8_valid (nm) ? " (reserved)" : " (not valid UTF-8)");
      goto out;
    }
  }
  for (size_t i = 0; i < w->n_meta; i++)
    if (!utf8_valid (w->meta[i].key) || !utf8_valid (w->meta[i].value)) {
      st = sutra_error_set (err, SUTRA_ERR_INVALID, "%s: metadata '%s' is not valid UTF-8", path,
                            w->meta[i].key);
      goto out;
    }

  /* offsets in layout order */
  qsort (layout, w->n, sizeof *layout, wentry_layout_cmp);
  uint64_t off = 0;
  for (size_t i = 0; i < w->n; i++) {
    layout[i]->begin = off;
    off += layout[i]->nbytes;
  }

  /* header: __metadata__ first (keys sorted), then tensors by name; compact like serde_json */
  buf_str (&h, "{");
  if (w->n_meta) {
    meta = sutra_xmalloc (w->n_meta * sizeof *meta);
    memcpy (meta, w->meta, w->n_meta * sizeof *meta);
    qsort (meta, w->n_meta, sizeof *meta, wmeta_cmp);
    buf_str (&h, "\"__metadata__\":{");
    for (size_t i = 0; i < w->n_meta; i++) {
      if (i)
        buf_str (&h, ",");
      buf_json_string (&h, meta[i].key);
      buf_str (&h, ":");
      buf_json_string (&h, meta[i].value);
    }
    buf_str (&h, "}");
  }
  for (size_t i = 0; i < w->n; i++) {
    const WEntry *e = by_name[i];
    char num[96];
    if (i || w->n_meta)
      buf_str (&h, ",");
    buf_json_string (&h, e->name);
    buf_str (&h, ":{\"dtype\":\"");
    buf_str (&h, sutra_dtype_name (e->dtype));
    buf_str (&h, "\",\"shape\":[");
    for (int d = 0; d < e->ndim; d++) {
      snprintf (num, sizeof num, d ? ",%lld" : "%lld", (long long) e->shape[d]);
      buf_str (&h, num);
    }
    snprintf (num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long) e->begin,
              (unsigned long long) (e->begin + e->nbytes));
    buf_str (&h, num);
  }
  buf_str (&h, "}");
  while (h.n % 8)                       /* the buffer then starts 8-byte aligned */
    buf_put (&h, " ", 1);
  if (h.n > REFERENCE_MAX_HEADER) {
    st = sutra_error_set (err, SUTRA_ERR_INVALID, "%s: the header would be %zu bytes, over the "
                          "%u-byte limit readers accept", path, h.n, REFERENCE_MAX_HEADER);
    goto out;
  }

  /* stream: length, header, tensors in layout order */
  SutraAtomicFile af;
  if ((st = sutra_atomic_open (&af, path, err)))
    goto out;
  unsigned char len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (unsigned char) ((uint64_t) h.n >> (8 * i));
  st = sutra_atomic_write (&af, len8, 8, err);
  if (!st)
    st = sutra_atomic_write (&af, h.p, h.n, err);
  for (size_t i = 0; !st && i < w->n; i++)
    st = write_tensor (&af, layout[i], err);
  if (st)
    sutra_atomic_abort (&af);
  else
    st = sutra_atomic_commit (&af, err);

out:
  free (h.p);
  free (meta);
  free (layout);
  free (by_name);
  return st;
}
