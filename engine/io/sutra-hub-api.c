/* sutra-hub-api.c: JSON and header parsers for the Hub API (see sutra-hub-api.h). No I/O. */
#include "sutra-hub-api.h"
#include "sutra-hub-private.h"
#include "sutra-fsutil.h"
#include "sutra-json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATH_LEN 4096                 /* longer names are refused (FORMAT) */
#define MAX_FILES    1000000              /* a listing with more entries is refused */
#define MAX_SIZE     ((uint64_t) 1 << 50) /* 1 PiB: any larger size is nonsense */

const char *
sutra_hub_quote (const char *s, char *buf, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (n < 8) {
    if (n)
      buf[0] = '\0';
    return buf;
  }
  for (const unsigned char *p = (const unsigned char *) (s ? s : "(null)"); *p; p++) {
    if (o + 8 >= n) {          /* room for "\xNN" or "..." and the NUL */
      memcpy (buf + o, "...", 3);
      o += 3;
      break;
    }
    if (*p < 0x20 || *p == 0x7f || *p == '\'') {
      buf[o++] = '\\';
      buf[o++] = 'x';
      buf[o++] = hex[*p >> 4];
      buf[o++] = hex[*p & 15];
    } else {
      buf[o++] = (char) *p;
    }
  }
  buf[o] = '\0';
  return buf;
}

bool
sutra_hub_is_hex (const char *s, size_t n)
{
  if (!s)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isxdigit ((unsigned char) s[i]))
      return false;
  return s[n] == '\0';
}

static void
lower_copy (char *dst, const char *src, size_t n)
{
  for (size_t i = 0; i < n; i++)
    dst[i] = (char) tolower ((unsigned char) src[i]);
  dst[n] = '\0';
}

/* ---- file list ---- */

void
sutra_hub_file_list_clear (SutraHubFileList *list)
{
  if (!list)
    return;
  for (size_t i = 0; i < list->n; i++)
    free (list->files[i].path);
  free (list->files);
  memset (list, 0, sizeof *list);
}

static int
cmp_file (const void *a, const void *b)
{
  return strcmp (((const SutraHubFile *) a)->path, ((const SutraHubFile *) b)->path);
}

SutraHubFile *
sutra_hub_file_list_find (const SutraHubFileList *list, const char *path)
{
  if (!list->n)
    return NULL;
  SutraHubFile key = { .path = (char *) path };
  return bsearch (&key, list->files, list->n, sizeof key, cmp_file);
}

/* Entries appended by one parse call are sorted in at the end of that call (the list stays
 * sorted between calls, so find() can bisect). */
typedef struct {
  SutraHubFileList *list;
  size_t sorted_n;     /* list->files[0 .. sorted_n) is sorted */
} Adder;

static SutraHubFile *
adder_get (Adder *a, const char *path, SutraError *err, const char *what)
{
  SutraHubFileList probe = { a->list->files, a->sorted_n, a->sorted_n };
  SutraHubFile *f = sutra_hub_file_list_find (&probe, path);
  if (!f)
    for (size_t i = a->sorted_n; i < a->list->n; i++)
      if (strcmp (a->list->files[i].path, path) == 0)
        return &a->list->files[i];   /* duplicate in the same response: merge into it */
  if (f)
    return f;
  if (a->list->n >= MAX_FILES) {
    sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: more than %d files listed", what, MAX_FILES);
    return NULL;
  }
  if (a->list->n == a->list->cap) {
    a->list->cap = a->list->cap ? a->list->cap * 2 : 16;
    a->list->files = sutra_xrealloc (a->list->files, a->list->cap * sizeof (SutraHubFile));
  }
  f = &a->list->files[a->list->n++];
  memset (f, 0, sizeof *f);
  f->path = sutra_xstrdup (path);
  return f;
}

static void
adder_finish (Adder *a)
{
  if (a->list->n != a->sorted_n)
    qsort (a->list->files, a->list->n, sizeof (SutraHubFile), cmp_file);
}

/* ---- JSON helpers ---- */

/* Strict RFC 8259 through the project's json-c front end (positioned messages, only
 * whitespace after the value). */
static json_object *
parse_json (const char *json, size_t len, const char *what, SutraError *err)
{
  json_object *root = NULL;
  if (sutra_json_parse (json, len, what, SUTRA_JSON_STRICT, &root, err) != SUTRA_OK)
    return NULL;
  return root;
}

/* A string member that must be a safe relative path. */
static const char *
get_path (json_object *obj, const char *key, const char *what, const char *ctx, SutraError *err)
{
  json_object *v;
  char q[120];
  if (!json_object_object_get_ex (obj, key, &v) || !json_object_is_type (v, json_type_string)) {
    sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s: missing string \"%s\"", what, ctx, key);
    return NULL;
  }
  const char *s = json_object_get_string (v);
  size_t n = (size_t) json_object_get_string_len (v);
  if (n != strlen (s)) {
    sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s.%s contains a NUL byte", what, ctx, key);
    return NULL;
  }
  if (n > MAX_PATH_LEN || !sutra_path_is_safe_relative (s)) {
    sutra_error_set (err, SUTRA_ERR_FORMAT,
                     "%s: %s.%s: unsafe file name '%s' from the server (absolute, '..', "
                     "backslash or control character); refusing the whole listing",
                     what, ctx, key, sutra_hub_quote (s, q, sizeof q));
    return NULL;
  }
  return s;
}

static bool
get_size (json_object *obj, const char *key, uint64_t *out, bool *present, const char *what,
          const char *ctx, SutraError *err)
{
  json_object *v;
  *present = false;
  if (!json_object_object_get_ex (obj, key, &v) || json_object_is_type (v, json_type_null))
    return true;
  if (!json_object_is_type (v, json_type_int)) {
    sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s.%s is not an integer", what, ctx, key);
    return false;
  }
  /* json-c saturates out-of-range integers to INT64_MIN/MAX; both fail the range test. */
  int64_t x = json_object_get_int64 (v);
  if (x < 0 || (uint64_t) x > MAX_SIZE) {
    sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s.%s = %lld is out of range", what, ctx, key,
                     (long long) x);
    return false;
  }
  *out = (uint64_t) x;
  *present = true;
  return true;
}

/* An optional hex member of n digits ("" when absent); present but malformed fails. */
static bool
get_hex (json_object *obj, const char *key, size_t n, char *out, bool required,
         const char *what, const char *ctx, SutraError *err)
{
  json_object *v;
  out[0] = '\0';
  if (!json_object_object_get_ex (obj, key, &v) || json_object_is_type (v, json_type_null)) {
    if (required)
      sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s: missing \"%s\"", what, ctx, key);
    return !required;
  }
  const char *s = json_object_is_type (v, json_type_string) ? json_object_get_string (v) : NULL;
  if (!s || !sutra_hub_is_hex (s, n)) {
    char q[100];
    sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s.%s = '%s' is not %zu hex digits", what, ctx,
                     key, sutra_hub_quote (s ? s : json_object_to_json_string (v), q, sizeof q),
                     n);
    return false;
  }
  lower_copy (out, s, n);
  return true;
}

/* ---- revision endpoint ---- */

SutraStatus
sutra_hub_parse_revision (const char *json, size_t len, const char *what, char commit[41],
                          SutraHubFileList *files, SutraError *err)
{
  json_object *root = parse_json (json, len, what, err);
  if (!root)
    return SUTRA_ERR_FORMAT;
  SutraStatus st = SUTRA_ERR_FORMAT;
  char sha[41];
  Adder a = { files, files->n };
  if (!json_object_is_type (root, json_type_object)) {
    sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: expected a JSON object from the revision API",
                     what);
    goto out;
  }
  if (!get_hex (root, "sha", 40, sha, true, what, "revision", err))
    goto out;
  json_object *sib;
  if (json_object_object_get_ex (root, "siblings", &sib) &&
      !json_object_is_type (sib, json_type_null)) {
    if (!json_object_is_type (sib, json_type_array)) {
      sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: \"siblings\" is not an array", what);
      goto out;
    }
    size_t n = json_object_array_length (sib);
    for (size_t i = 0; i < n; i++) {
      json_object *e = json_object_array_get_idx (sib, i);
      char ctx[48];
      snprintf (ctx, sizeof ctx, "siblings[%zu]", i);
      if (!json_object_is_type (e, json_type_object)) {
        sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s is not an object", what, ctx);
        goto out;
      }
      const char *path = get_path (e, "rfilename", what, ctx, err);
      if (!path || !adder_get (&a, path, err, what))
        goto out;
    }
  }
  memcpy (commit, sha, sizeof sha);
  st = SUTRA_OK;
out:
  adder_finish (&a);
  json_object_put (root);
  return st;
}

/* ---- tree endpoint ---- */

SutraStatus
sutra_hub_parse_tree (const char *json, size_t len, const char *what, SutraHubFileList *files,
                      SutraError *err)
{
  json_object *root = parse_json (json, len, what, err);
  if (!root)
    return SUTRA_ERR_FORMAT;
  SutraStatus st = SUTRA_ERR_FORMAT;
  Adder a = { files, files->n };
  if (!json_object_is_type (root, json_type_array)) {
    sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: expected a JSON array from the tree API", what);
    goto out;
  }
  size_t n = json_object_array_length (root);
  for (size_t i = 0; i < n; i++) {
    json_object *e = json_object_array_get_idx (root, i), *v;
    char ctx[48];
    snprintf (ctx, sizeof ctx, "[%zu]", i);
    if (!json_object_is_type (e, json_type_object)) {
      sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s is not an object", what, ctx);
      goto out;
    }
    const char *path = get_path (e, "path", what, ctx, err);
    if (!path)
      goto out;
    if (!json_object_object_get_ex (e, "type", &v) || !json_object_is_type (v, json_type_string)) {
      sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s: missing string \"type\"", what, ctx);
      goto out;
    }
    if (strcmp (json_object_get_string (v), "file") != 0)
      continue;                            /* "directory" (or a future kind): nothing to fetch */
    uint64_t size = 0, lfs_size = 0;
    bool has_size, has_lfs_size = false;
    char oid[41], sha[65] = "";
    if (!get_size (e, "size", &size, &has_size, what, ctx, err))
      goto out;
    /* "oid" is the Git blob id; for LFS files it is the id of the pointer file. */
    if (!get_hex (e, "oid", 40, oid, false, what, ctx, err))
      goto out;
    json_object *lfs;
    if (json_object_object_get_ex (e, "lfs", &lfs) && !json_object_is_type (lfs, json_type_null)) {
      char lctx[64];
      snprintf (lctx, sizeof lctx, "%s.lfs", ctx);
      if (!json_object_is_type (lfs, json_type_object)) {
        sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s is not an object", what, lctx);
        goto out;
      }
      if (!get_hex (lfs, "oid", 64, sha, true, what, lctx, err) ||
          !get_size (lfs, "size", &lfs_size, &has_lfs_size, what, lctx, err))
        goto out;
      if (has_lfs_size && has_size && lfs_size != size) {
        sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %s: size %llu disagrees with lfs.size %llu",
                         what, ctx, (unsigned long long) size, (unsigned long long) lfs_size);
        goto out;
      }
      if (has_lfs_size) {
        size = lfs_size;
        has_size = true;
      }
    }
    SutraHubFile *f = adder_get (&a, path, err, what);
    if (!f)
      goto out;
    f->size = size;
    f->has_size = has_size;
    memcpy (f->git_oid, oid, sizeof oid);
    memcpy (f->sha256, sha, sizeof sha);
  }
  st = SUTRA_OK;
out:
  adder_finish (&a);
  json_object_put (root);
  return st;
}

/* ---- headers ---- */

char *
sutra_hub_parse_link_next (const char *value)
{
  /* Link: <url1>; rel="next", <url2>; rel="last"  (RFC 8288; params may be unquoted) */
  const char *p = value;
  while (p && *p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (*p != '<')
      return NULL;
    const char *u0 = p + 1, *u1 = strchr (u0, '>');
    if (!u1)
      return NULL;
    p = u1 + 1;
    bool next = false;
    /* parameters up to the next link (a ',' outside quotes) */
    while (*p && *p != ',') {
      while (*p == ' ' || *p == '\t' || *p == ';')
        p++;
      const char *k0 = p;
      while (*p && *p != '=' && *p != ';' && *p != ',')
        p++;
      size_t kl = (size_t) (p - k0);
      while (kl && (k0[kl - 1] == ' ' || k0[kl - 1] == '\t'))
        kl--;
      const char *v0 = NULL;
      size_t vl = 0;
      if (*p == '=') {
        p++;
        while (*p == ' ' || *p == '\t')
          p++;
        if (*p == '"') {
          v0 = ++p;
          while (*p && *p != '"')
            p++;
          vl = (size_t) (p - v0);
          if (*p == '"')
            p++;
        } else {
          v0 = p;
          while (*p && *p != ';' && *p != ',' && *p != ' ')
            p++;
          vl = (size_t) (p - v0);
        }
      }
      if (kl == 3 && strncasecmp (k0, "rel", 3) == 0 && v0) {
        /* rel may hold several space-separated relation types */
        for (const char *t = v0; t < v0 + vl;) {
          while (t < v0 + vl && *t == ' ')
            t++;
          const char *te = t;
          while (te < v0 + vl && *te != ' ')
            te++;
          if (te - t == 4 && strncasecmp (t, "next", 4) == 0)
            next = true;
          t = te;
        }
      }
      while (*p && *p != ';' && *p != ',')
        p++;
    }
    if (next && u1 > u0)
      return sutra_xstrndup (u0, (size_t) (u1 - u0));
  }
  return NULL;
}

static bool
parse_u64 (const char **pp, uint64_t *out)
{
  const char *p = *pp;
  if (!isdigit ((unsigned char) *p))
    return false;
  uint64_t x = 0;
  while (isdigit ((unsigned char) *p)) {
    if (x > (UINT64_MAX - 9) / 10)
      return false;
    x = x * 10 + (uint64_t) (*p++ - '0');
  }
  *out = x;
  *pp = p;
  return true;
}

bool
sutra_hub_parse_content_range (const char *value, uint64_t *start, uint64_t *end,
                               uint64_t *total)
{
  const char *p = value;
  uint64_t s = UINT64_MAX, e = UINT64_MAX, t = UINT64_MAX;
  while (*p == ' ')
    p++;
  if (strncasecmp (p, "bytes", 5) != 0)
    return false;
  p += 5;
  while (*p == ' ')
    p++;
  if (*p == '*') {
    p++;
  } else {
    if (!parse_u64 (&p, &s) || *p++ != '-' || !parse_u64 (&p, &e) || e < s)
      return false;
  }
  if (*p++ != '/')
    return false;
  if (*p == '*')
    p++;
  else if (!parse_u64 (&p, &t) || (e != UINT64_MAX && e >= t))
    return false;
  while (*p == ' ' || *p == '\r' || *p == '\n')
    p++;
  if (*p)
    return false;
  *start = s;
  *end = e;
  *total = t;
  return true;
}

bool
sutra_hub_parse_etag (const char *value, char out[65])
{
  const char *p = value;
  while (*p == ' ')
    p++;
  if (p[0] == 'W' && p[1] == '/')
    p += 2;
  bool quoted = *p == '"';
  if (quoted)
    p++;
  size_t n = 0;
  while (isxdigit ((unsigned char) p[n]))
    n++;
  if (n != 40 && n != 64)
    return false;
  const char *q = p + n;
  if (quoted && *q++ != '"')
    return false;
  while (*q == ' ' || *q == '\r' || *q == '\n')
    q++;
  if (*q)
    return false;
  lower_copy (out, p, n);
  return true;
}
