/* sutra-safetensors.c: safetensors reader (mmap, zero-copy views) and shard sets.
 *
 * Format (https://github.com/huggingface/safetensors, README "Format"): u64 little-endian N,
 * N bytes of UTF-8 JSON starting with '{' (padded with spaces), then the data buffer.
 * Every check below mirrors what the reference reader (safetensors' Rust core, used by the
 * Python package) enforces in `read_metadata` + `Metadata::validate`:
 *   - N <= limit and 8 + N <= file size; header is valid UTF-8 JSON, an object, starts '{';
 *   - each tensor: known dtype, shape of non-negative ints, numel * size computed without
 *     overflow and equal to end - begin;
 *   - sorted by data_offsets the tensors tile the buffer exactly: the first starts at 0,
 *     each starts where the previous ends (no overlap, no hole) and the last ends at the end
 *     of the file (no trailing bytes);
 *   - duplicate keys are disallowed by the spec (serde/json-c would keep the last one).
 * The writer is in sutra-safetensors-write.c. */
#include "sutra-safetensors.h"
#include "sutra-fsutil.h"
#include "sutra-json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
#define CONVERT_CHUNK 16384                    /* bytes bounced per step in read_f32 */

typedef struct {
  char *path;                 /* shown in messages */
  const unsigned char *base;  /* the whole file image */
  size_t size;
  bool mapped;                /* munmap on free; else borrowed memory (open_memory) */
} StFile;

typedef struct {
  char *name;
  SutraTensor view;           /* borrowed, points into files[file].base */
  uint64_t begin, end;        /* data_offsets, relative to the buffer */
  size_t file;
} StEntry;

typedef struct {
  char *key, *value;
} StMeta;

struct SutraSafetensors {
  char *label;                /* the file, or the index file of a shard set */
  StFile *files;
  size_t n_files;
  StEntry *entries;           /* sorted by name (strcmp) */
  size_t n_entries;
  StMeta *meta;               /* sorted by key */
  size_t n_meta;
};

/* dtypes the safetensors format defines that Sutra does not handle (for a clear message) */
static const char *const unsupported_dtypes[] = {
  "U16", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E4M3FN", "F8_E8M0", "E8M0", "F4", "F6_E2M3",
  "F6_E3M2", "C64", "C128",
};

/* ---- small helpers ---- */
static int
entry_cmp_name (const void *a, const void *b)
{
  return strcmp (((const StEntry *) a)->name, ((const StEntry *) b)->name);
}

static int
entry_cmp_offset (const void *a, const void *b)
{
  const StEntry *x = *(const StEntry *const *) a, *y = *(const StEntry *const *) b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return 0;
}

static int
meta_cmp (const void *a, const void *b)
{
  return strcmp (((const StMeta *) a)->key, ((const StMeta *) b)->key);
}

static uint64_t
read_le64 (const unsigned char *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static void
entries_free (StEntry *e, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (e[i].name);
  free (e);
}

static void
meta_free (StMeta *m, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free (m[i].key);
    free (m[i].value);
  }
  free (m);
}

static void
file_close (StFile *f)
{
  if (f->mapped && f->base)
    munmap ((void *) f->base, f->size);
  free (f->path);
  memset (f, 0, sizeof *f);
}

/* A JSON integer >= 0 (safetensors offsets and dims are usize). json-c keeps values up to
 * UINT64_MAX exactly and clamps larger ones to it, which no file can satisfy anyway. */
static bool
json_uint (json_object *v, uint64_t *out)
{
  if (!json_object_is_type (v, json_type_int) || json_object_get_int64 (v) < 0)
    return false;
  *out = json_object_get_uint64 (v);
  return true;
}

/* ---- parsing one file image ---- */

/* Parses one tensor entry "name": {"dtype", "shape", "data_offsets"}; fills e (except data). */
static SutraStatus
parse_tensor (const char *path, const char *name, json_object *info, uint64_t data_size,
              StEntry *e, SutraError *err)
{
  if (!json_object_is_type (info, json_type_object))
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s': expected an object, got %s",
                            path, name, sutra_json_type_name (info));
  json_object *jd = NULL, *js = NULL, *jo = NULL;
  json_object_object_get_ex (info, "dtype", &jd);
  json_object_object_get_ex (info, "shape", &js);
  json_object_object_get_ex (info, "data_offsets", &jo);
  if (!json_object_is_type (jd, json_type_string))
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s': \"dtype\" must be a string%s",
                            path, name, jd ? "" : " and is missing");
  if (!json_object_is_type (js, json_type_array))
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: tensor '%s': \"shape\" must be an array of integers%s", path,
                            name, js ? "" : " and is missing");
  if (!json_object_is_type (jo, json_type_array))
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: tensor '%s': \"data_offsets\" must be [begin, end]%s", path,
                            name, jo ? "" : " and is missing");

  const char *dname = json_object_get_string (jd);
  SutraDType dtype;
  if (!sutra_dtype_from_name (dname, &dtype)) {
    for (size_t i = 0; i < sizeof unsupported_dtypes / sizeof *unsupported_dtypes; i++)
      if (!strcmp (dname, unsupported_dtypes[i]))
        return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                                "%s: tensor '%s': dtype %s is not supported (Sutra reads F32, "
                                "F16, BF16, F64, I8, U8, I16, I32, I64 and BOOL)",
                                path, name, dname);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.40s'", path,
                            name, dname);
  }

  size_t ndim = json_object_array_length (js);
  if (ndim > SUTRA_MAX_DIMS)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                            "%s: tensor '%s' has %zu dimensions; at most %d are supported", path,
                            name, ndim, SUTRA_MAX_DIMS);
  int64_t shape[SUTRA_MAX_DIMS];
  uint64_t numel = 1;
  bool overflow = false;
  for (size_t i = 0; i < ndim; i++) {
    json_object *d = json_object_array_get_idx (js, i);
    uint64_t v;
    if (!json_uint (d, &v)) {
      if (json_object_is_type (d, json_type_int))
        return sutra_error_set (err, SUTRA_ERR_FORMAT,
                                "%s: tensor '%s': shape[%zu] is %lld; dims must be >= 0", path,
                                name, i, (long long) json_object_get_int64 (d));
      return sutra_error_set (err, SUTRA_ERR_FORMAT,
                              "%s: tensor '%s': shape[%zu] is a %s; dims must be integers >= 0",
                              path, name, i, sutra_json_type_name (d));
    }
    if (v > (uint64_t) INT64_MAX)
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s': shape[%zu] is %llu, too "
                              "large", path, name, i, (unsigned long long) v);
    shape[i] = (int64_t) v;
    overflow |= __builtin_mul_overflow (numel, v, &numel);
  }
  uint64_t nbytes = 0;
  overflow |= __builtin_mul_overflow (numel, (uint64_t) sutra_dtype_size (dtype), &nbytes);
  char sbuf[128];
  if (overflow || numel > (uint64_t) INT64_MAX)
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: tensor '%s': shape %s has too many elements (overflow)", path,
                            name, sutra_shape_str (shape, (int) ndim, sbuf, sizeof sbuf));

  uint64_t begin, end;
  if (json_object_array_length (jo) != 2 || !json_uint (json_object_array_get_idx (jo, 0), &begin)
      || !json_uint (json_object_array_get_idx (jo, 1), &end))
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: tensor '%s': \"data_offsets\" must be two integers [begin, end] "
                            "with 0 <= begin <= end", path, name);
  if (end < begin)
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                            path, name, (unsigned long long) begin, (unsigned long long) end);
  if (end - begin != nbytes)
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: tensor '%s': shape %s of %s needs %llu bytes but data_offsets "
                            "[%llu, %llu] hold %llu", path, name,
                            sutra_shape_str (shape, (int) ndim, sbuf, sizeof sbuf), dname,
                            (unsigned long long) nbytes, (unsigned long long) begin,
                            (unsigned long long) end, (unsigned long long) (end - begin));
  if (end > data_size)
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets [%llu, %llu] go beyond the end of the "
                            "data (%llu bytes); truncated file?", path, name,
                            (unsigned long long) begin, (unsigned long long) end,
                            (unsigned long long) data_size);
  e->begin = begin;
  e->end = end;
  sutra_tensor_view (&e->view, dtype, NULL, (int) ndim, shape);
  return SUTRA_OK;
}

static SutraStatus
parse_metadata (const char *path, json_object *m, StMeta **out, size_t *n_out, SutraError *err)
{
  if (!json_object_is_type (m, json_type_object))
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: __metadata__ must be an object of strings, got %s", path,
                            sutra_json_type_name (m));
  size_t n = (size_t) json_object_object_length (m), i = 0;
  StMeta *meta = sutra_xcalloc (n ? n : 1, sizeof *meta);
  json_object_object_foreach (m, key, val) {
    if (!json_object_is_type (val, json_type_string)) {
      meta_free (meta, i);
      return sutra_error_set (err, SUTRA_ERR_FORMAT,
                              "%s: __metadata__: value of '%s' is %s; must be a string", path,
                              key, sutra_json_type_name (val));
    }
    meta[i].key = sutra_xstrdup (key);
    meta[i].value = sutra_xstrdup (json_object_get_string (val));
    i++;
  }
  qsort (meta, n, sizeof *meta, meta_cmp);
  *out = meta;
  *n_out = n;
  return SUTRA_OK;
}

/* Validates the image of f and returns its entries (sorted by name, views pointing into
 * f->base, file index = file_idx) and metadata. */
static SutraStatus
parse_image (const StFile *f, size_t file_idx, StEntry **out, size_t *n_out, StMeta **meta_out,
             size_t *n_meta_out, SutraError *err)
{
  const char *path = f->path;
  if (f->size == 0)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: empty file, not safetensors", path);
  if (f->size < 8)
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: %zu bytes is too short for safetensors (it starts with an 8-byte "
                            "header length)", path, f->size);
  uint64_t n = read_le64 (f->base);
  if (n > SUTRA_SAFETENSORS_MAX_HEADER)
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: header length %llu is over the %u-byte limit; not safetensors, "
                            "or corrupt", path, (unsigned long long) n,
                            SUTRA_SAFETENSORS_MAX_HEADER);
  if (n > f->size - 8)
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: header length %llu goes beyond the end of the file (%zu bytes); "
                            "truncated?", path, (unsigned long long) n, f->size);
  const char *hdr = (const char *) f->base + 8;
  if (n == 0)
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: the header is empty; not safetensors", path);
  if (hdr[0] != '{')
    return sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: the header does not start with '{'; not safetensors", path);
  uint64_t data_size = f->size - 8 - n;
  const unsigned char *data = f->base + 8 + n;

  char *hname = sutra_xasprintf ("%s: header", path);
  json_object *root = NULL;
  SutraStatus st = sutra_json_parse (hdr, (size_t) n, hname,
                                     SUTRA_JSON_STRICT | SUTRA_JSON_UNIQUE_KEYS | SUTRA_JSON_OBJECT,
                                     &root, err);
  free (hname);
  if (st)
    return st;

  size_t cap = (size_t) json_object_object_length (root), count = 0, n_meta = 0;
  StEntry *ents = sutra_xcalloc (cap ? cap : 1, sizeof *ents);
  StMeta *meta = NULL;
  StEntry **by_off = NULL;
  json_object_object_foreach (root, key, val) {
    if (!strcmp (key, "__metadata__")) {
      if (!val)                   /* null: no metadata (the reference reader's Option) */
        continue;
      if ((st = parse_metadata (path, val, &meta, &n_meta, err)))
        goto fail;
      continue;
    }
    StEntry *e = &ents[count];
    if ((st = parse_tensor (path, key, val, data_size, e, err)))
      goto fail;
    e->name = sutra_xstrdup (key);
    e->file = file_idx;
    count++;
  }

  /* The tensors, sorted by data_offsets, must tile [0, data_size) exactly. */
  by_off = sutra_xmalloc ((count ? count : 1) * sizeof *by_off);
  for (size_t i = 0; i < count; i++)
    by_off[i] = &ents[i];
  qsort (by_off, count, sizeof *by_off, entry_cmp_offset);
  uint64_t pos = 0;
  for (size_t i = 0; i < count; i++) {
    const StEntry *e = by_off[i];
    if (e->begin < pos) {
      const StEntry *p = by_off[i - 1];
      st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap", path,
                            p->name, (unsigned long long) p->begin, (unsigned long long) p->end,
                            e->name, (unsigned long long) e->begin, (unsigned long long) e->end);
      goto fail;
    }
    if (e->begin > pos) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: data bytes [%llu, %llu) before tensor '%s' belong to no tensor; "
                            "the format allows no holes", path, (unsigned long long) pos,
                            (unsigned long long) e->begin, e->name);
      goto fail;
    }
    pos = e->end;
  }
  if (pos != data_size) {
    st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                          "%s: %llu data bytes after the last tensor belong to no tensor; the "
                          "format requires the tensors to cover the buffer exactly", path,
                          (unsigned long long) (data_size - pos));
    goto fail;
  }
  free (by_off);
  json_object_put (root);

  for (size_t i = 0; i < count; i++)
    ents[i].view.data = (void *) (data + ents[i].begin);
  qsort (ents, count, sizeof *ents, entry_cmp_name);
  *out = ents;
  *n_out = count;
  *meta_out = meta;
  *n_meta_out = n_meta;
  return SUTRA_OK;

fail:
  free (by_off);
  entries_free (ents, count);
  meta_free (meta, n_meta);
  json_object_put (root);
  return st;
}

/* ---- opening ---- */
static SutraStatus
file_map (StFile *f, const char *path, SutraError *err)
{
  memset (f, 0, sizeof *f);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return sutra_error_set_sys (err, errno == ENOENT ? SUTRA_ERR_NOT_FOUND : SUTRA_ERR_IO, errno,
                                "%s", path);
  struct stat sb;
  if (fstat (fd, &sb) != 0) {
    int e = errno;
    close (fd);
    return sutra_error_set_sys (err, SUTRA_ERR_IO, e, "%s", path);
  }
  if (!S_ISREG (sb.st_mode)) {
    close (fd);
    return sutra_error_set (err, SUTRA_ERR_IO, "%s: not a regular file", path);
  }
  if ((uint64_t) sb.st_size > (uint64_t) SIZE_MAX) {
    close (fd);
    return sutra_error_set (err, SUTRA_ERR_IO, "%s: too large to map", path);
  }
  size_t size = (size_t) sb.st_size;
  void *p = NULL;
  if (size > 0) {          /* mmap of 0 bytes fails; parse_image reports the empty file */
    p = mmap (NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      close (fd);
      return sutra_error_set_sys (err, SUTRA_ERR_IO, e, "%s: mmap", path);
    }
  }
  close (fd);
  f->path = sutra_xstrdup (path);
  f->base = p;
  f->size = size;
  f->mapped = size > 0;
  return SUTRA_OK;
}

/* Names in messages come from files: keep the message on one line. */
static SutraStatus
one_line (SutraError *err, SutraStatus st)
{
  if (err && st)
    for (char *c = err->message; *c; c++)
      if ((unsigned char) *c < 0x20 || *c == 0x7f)
        *c = '?';
  return st;
}

/* Builds a one-file set from an opened StFile (takes it). */
static SutraStatus
set_from_file (StFile *f, SutraSafetensors **out, SutraError *err)
{
  StEntry *ents;
  StMeta *meta;
  size_t n, n_meta;
  SutraStatus st = parse_image (f, 0, &ents, &n, &meta, &n_meta, err);
  if (st) {
    file_close (f);
    return one_line (err, st);
  }
  SutraSafetensors *s = sutra_xcalloc (1, sizeof *s);
  s->label = sutra_xstrdup (f->path);
  s->files = sutra_xmalloc (sizeof *s->files);
  s->files[0] = *f;
  s->n_files = 1;
  s->entries = ents;
  s->n_entries = n;
  s->meta = meta;
  s->n_meta = n_meta;
  *out = s;
  return SUTRA_OK;
}

SutraStatus
sutra_safetensors_open (const char *path, SutraSafetensors **out, SutraError *err)
{
  StFile f;
  SutraStatus st = file_map (&f, path, err);
  if (st)
    return st;
  return set_from_file (&f, out, err);
}

SutraStatus
sutra_safetensors_open_memory (const void *data, size_t size, const char *name,
                               SutraSafetensors **out, SutraError *err)
{
  StFile f = { .path = sutra_xstrdup (name ? name : "<memory>"), .base = data, .size = size };
  return set_from_file (&f, out, err);
}

void
sutra_safetensors_free (SutraSafetensors *st)
{
  if (!st)
    return;
  for (size_t i = 0; i < st->n_files; i++)
    file_close (&st->files[i]);
  free (st->files);
  entries_free (st->entries, st->n_entries);
  meta_free (st->meta, st->n_meta);
  free (st->label);
  free (st);
}

/* ---- shard sets ---- */
typedef struct {
  char *tensor, *file;
} MapItem;

static int
str_ptr_cmp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static SutraStatus
open_index (const char *dir, const char *index_path, SutraSafetensors **out, SutraError *err)
{
  json_object *root;
  SutraStatus st = sutra_json_load (index_path, SUTRA_JSON_OBJECT | SUTRA_JSON_UNIQUE_KEYS, &root,
                                    err);
  if (st)
    return st;
  json_object *wm = NULL;
  if (!json_object_object_get_ex (root, "weight_map", &wm) || !json_object_is_type (wm, json_type_object)) {
    json_object_put (root);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: \"weight_map\" must be an object {tensor: file}",
                            index_path);
  }
  size_t n_map = (size_t) json_object_object_length (wm), k = 0;
  if (n_map == 0) {
    json_object_put (root);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: \"weight_map\" is empty", index_path);
  }
  MapItem *items = sutra_xcalloc (n_map, sizeof *items);
  char **shards = sutra_xcalloc (n_map, sizeof *shards);   /* unique shard names, sorted */
  size_t n_shards = 0;
  SutraSafetensors *s = NULL;
  StEntry **shard_ents = NULL;
  size_t *shard_n = NULL;
  StMeta **shard_meta = NULL;
  size_t *shard_nm = NULL;
  json_object_object_foreach (wm, tname, fval) {
    if (!json_object_is_type (fval, json_type_string)) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: weight_map['%s'] must be a file name, got %s",
                            index_path, tname, sutra_json_type_name (fval));
      goto done;
    }
    const char *fname = json_object_get_string (fval);
    if (!sutra_path_is_safe_relative (fname)) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: weight_map['%s']: '%s' is not a plain file name inside the folder",
                            index_path, tname, fname);
      goto done;
    }
    items[k].tensor = tname;
    items[k].file = (char *) fname;
    shards[k] = (char *) fname;
    k++;
  }
  qsort (shards, n_map, sizeof *shards, str_ptr_cmp);
  for (size_t i = 0; i < n_map; i++)
    if (n_shards == 0 || strcmp (shards[n_shards - 1], shards[i]))
      shards[n_shards++] = shards[i];

  /* open every shard once */
  s = sutra_xcalloc (1, sizeof *s);
  s->label = sutra_xstrdup (index_path);
  s->files = sutra_xcalloc (n_shards, sizeof *s->files);
  shard_ents = sutra_xcalloc (n_shards, sizeof *shard_ents);
  shard_n = sutra_xcalloc (n_shards, sizeof *shard_n);
  shard_meta = sutra_xcalloc (n_shards, sizeof *shard_meta);
  shard_nm = sutra_xcalloc (n_shards, sizeof *shard_nm);
  for (size_t i = 0; i < n_shards; i++) {
    char *p = sutra_path_join (dir, shards[i]);
    st = file_map (&s->files[i], p, err);
    free (p);
    if (st) {
      sutra_error_prefix (err, "%s lists shard %s", index_path, shards[i]);
      goto done;
    }
    s->n_files = i + 1;
    st = parse_image (&s->files[i], i, &shard_ents[i], &shard_n[i], &shard_meta[i], &shard_nm[i],
                      err);
    if (st)
      goto done;
  }

  /* one entry per weight_map item, taken from its shard */
  s->entries = sutra_xcalloc (n_map, sizeof *s->entries);
  size_t used_total = 0;
  for (size_t i = 0; i < n_map; i++) {
    char **hit = bsearch (&items[i].file, shards, n_shards, sizeof *shards, str_ptr_cmp);
    SUTRA_ASSERT (hit);
    size_t si = (size_t) (hit - shards);
    StEntry key = { .name = items[i].tensor };
    StEntry *e = bsearch (&key, shard_ents[si], shard_n[si], sizeof key, entry_cmp_name);
    if (!e) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: tensor '%s' is mapped to %s, which does not contain it",
                            index_path, items[i].tensor, items[i].file);
      goto done;
    }
    s->entries[s->n_entries] = *e;
    s->entries[s->n_entries].name = sutra_xstrdup (e->name);
    s->n_entries++;
  }
  qsort (s->entries, s->n_entries, sizeof *s->entries, entry_cmp_name);
  for (size_t i = 0; i < n_shards; i++)
    used_total += shard_n[i];
  if (used_total > n_map)
    sutra_log (SUTRA_LOG_WARN, "%s: %zu tensors in the shards are not in weight_map; ignored",
               index_path, used_total - n_map);

  /* metadata: the union of the shards' __metadata__, the first shard (by name) winning */
  size_t n_meta_all = 0;
  for (size_t i = 0; i < n_shards; i++)
    n_meta_all += shard_nm[i];
  s->meta = sutra_xcalloc (n_meta_all ? n_meta_all : 1, sizeof *s->meta);
  for (size_t i = 0; i < n_shards; i++)
    for (size_t j = 0; j < shard_nm[i]; j++) {
      StMeta *m = &shard_meta[i][j];
      if (s->n_meta && bsearch (m, s->meta, s->n_meta, sizeof *m, meta_cmp))
        continue;
      s->meta[s->n_meta].key = sutra_xstrdup (m->key);
      s->meta[s->n_meta].value = sutra_xstrdup (m->value);
      s->n_meta++;
      qsort (s->meta, s->n_meta, sizeof *s->meta, meta_cmp);
    }
  st = SUTRA_OK;

done:
  if (shard_ents)
    for (size_t i = 0; i < n_shards; i++) {
      entries_free (shard_ents[i], shard_n[i]);
      meta_free (shard_meta[i], shard_nm[i]);
    }
  free (shard_ents);
  free (shard_n);
  free (shard_meta);
  free (shard_nm);
  free (items);
  free (shards);
  json_object_put (root);
  if (st) {
    sutra_safetensors_free (s);
    return one_line (err, st);
  }
  *out = s;
  return SUTRA_OK;
}

static bool
has_suffix (const char *s, const char *suffix)
{
  size_t a = strlen (s), b = strlen (suffix);
  return a >= b && !strcmp (s + a - b, suffix);
}

SutraStatus
sutra_safetensors_open_dir (const char *dir, SutraSafetensors **out, SutraError *err)
{
  if (sutra_is_file (dir)) {          /* a weights file or an index given directly */
    if (has_suffix (dir, ".index.json")) {
      char *parent = sutra_path_dirname (dir);
      SutraStatus st = open_index (parent, dir, out, err);
      free (parent);
      return st;
    }
    return sutra_safetensors_open (dir, out, err);
  }
  if (!sutra_is_dir (dir))
    return sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: no such folder", dir);
  char *p = sutra_path_join (dir, INDEX_NAME);
  if (sutra_path_exists (p)) {
    SutraStatus st = open_index (dir, p, out, err);
    free (p);
    return st;
  }
  free (p);
  p = sutra_path_join (dir, SINGLE_NAME);
  if (sutra_path_exists (p)) {
    SutraStatus st = sutra_safetensors_open (p, out, err);
    free (p);
    return st;
  }
  free (p);

  DIR *d = opendir (dir);
  if (!d)
    return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s", dir);
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir (d))) {
    if (de->d_name[0] == '.' || !has_suffix (de->d_name, ".safetensors"))
      continue;
    char *fp = sutra_path_join (dir, de->d_name);
    bool ok = sutra_is_file (fp);
    free (fp);
    if (!ok)
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 8;
      names = sutra_xrealloc (names, cap * sizeof *names);
    }
    names[n++] = sutra_xstrdup (de->d_name);
  }
  closedir (d);
  SutraStatus st;
  if (n == 0) {
    /* name the formats we do not read when they are what the folder holds */
    static const char *other[] = { "pytorch_model.bin", "pytorch_model.bin.index.json",
                                   "model.ckpt.index", "tf_model.h5", "flax_model.msgpack" };
    const char *found = NULL;
    for (size_t i = 0; !found && i < sizeof other / sizeof *other; i++) {
      char *op = sutra_path_join (dir, other[i]);
      if (sutra_path_exists (op))
        found = other[i];
      free (op);
    }
    if (found)
      st = sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "%s: no *.safetensors weights, only %s (a "
                            "format Sutra does not read; convert it to safetensors)", dir, found);
    else
      st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "no *.safetensors weights in %s", dir);
  } else if (n == 1) {
    p = sutra_path_join (dir, names[0]);
    st = sutra_safetensors_open (p, out, err);
    free (p);
  } else {
    qsort (names, n, sizeof *names, str_ptr_cmp);
    char list[256];
    size_t off = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && off < sizeof list; i++)
      off += (size_t) snprintf (list + off, sizeof list - off, "%s%s", i ? ", " : "", names[i]);
    st = sutra_error_set (err, SUTRA_ERR_INVALID,
                          "%s: %zu *.safetensors files (%s) and no %s or %s; cannot tell which "
                          "hold the weights", dir, n, list, SINGLE_NAME, INDEX_NAME);
  }
  for (size_t i = 0; i < n; i++)
    free (names[i]);
  free (names);
  return st;
}

/* ---- queries ---- */
size_t
sutra_safetensors_count (const SutraSafetensors *st)
{
  return st->n_entries;
}

const char *
sutra_safetensors_name (const SutraSafetensors *st, size_t i)
{
  SUTRA_ASSERT (i < st->n_entries);
  return st->entries[i].name;
}

const SutraTensor *
sutra_safetensors_tensor (const SutraSafetensors *st, size_t i)
{
  SUTRA_ASSERT (i < st->n_entries);
  return &st->entries[i].view;
}

static const StEntry *
find_entry (const SutraSafetensors *st, const char *name)
{
  StEntry key = { .name = (char *) name };
  return bsearch (&key, st->entries, st->n_entries, sizeof key, entry_cmp_name);
}

const SutraTensor *
sutra_safetensors_find (const SutraSafetensors *st, const char *name)
{
  const StEntry *e = find_entry (st, name);
  return e ? &e->view : NULL;
}

const char *
sutra_safetensors_metadata (const SutraSafetensors *st, const char *key)
{
  StMeta k = { .key = (char *) key };
  const StMeta *m = st->n_meta ? bsearch (&k, st->meta, st->n_meta, sizeof k, meta_cmp) : NULL;
  return m ? m->value : NULL;
}

size_t
sutra_safetensors_metadata_count (const SutraSafetensors *st)
{
  return st->n_meta;
}

void
sutra_safetensors_metadata_at (const SutraSafetensors *st, size_t i, const char **key,
                               const char **value)
{
  SUTRA_ASSERT (i < st->n_meta);
  if (key)
    *key = st->meta[i].key;
  if (value)
    *value = st->meta[i].value;
}

const char *
sutra_safetensors_path (const SutraSafetensors *st, const char *name)
{
  const StEntry *e = find_entry (st, name);
  return e ? st->files[e->file].path : NULL;
}

SutraStatus
sutra_safetensors_read_f32 (const SutraSafetensors *st, const char *name, float *dst, int ndim,
                            const int64_t *shape, SutraError *err)
{
  const StEntry *e = find_entry (st, name);
  if (!e)
    return sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: tensor '%s' not found", st->label,
                            name);
  const SutraTensor *t = &e->view;
  const char *path = st->files[e->file].path;
  if (!sutra_dtype_is_float (t->dtype))
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                            "%s: tensor '%s' is %s; expected a float tensor (F32, F16, BF16 or F64)",
                            path, name, sutra_dtype_name (t->dtype));
  if (shape) {
    bool same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++)
      same = shape[i] == t->shape[i];
    if (!same) {
      char a[128], b[128];
      return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s",
                              path, name, sutra_shape_str (t->shape, t->ndim, a, sizeof a),
                              sutra_shape_str (shape, ndim, b, sizeof b));
    }
  }
  size_t n = (size_t) sutra_tensor_numel (t), esize = sutra_dtype_size (t->dtype);
  if (n == 0)
    return SUTRA_OK;
  if (t->dtype == SUTRA_F32 || (uintptr_t) t->data % esize == 0) {
    sutra_to_f32_n (dst, t->data, t->dtype, n);       /* F32 is a memmove: any alignment */
    return SUTRA_OK;
  }
  /* Misaligned 16/64-bit source (only in files not written like the reference writer):
   * bounce through an aligned buffer. */
  union { double d[CONVERT_CHUNK / 8]; unsigned char b[CONVERT_CHUNK]; } tmp;
  const unsigned char *src = t->data;
  size_t per = CONVERT_CHUNK / esize;
  for (size_t i = 0; i < n; i += per) {
    size_t m = n - i < per ? n - i : per;
    memcpy (tmp.b, src + i * esize, m * esize);
    sutra_to_f32_n (dst + i, tmp.b, t->dtype, m);
  }
  return SUTRA_OK;
}
