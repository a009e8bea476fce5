/* sutra-hub-store.c: writing the Hugging Face cache for the downloader: file selection,
 * blob verification (SHA-256, Git blob ids), huggingface_hub-compatible locks, snapshot
 * links and refs. No network (see sutra-hub.c) and no JSON (see sutra-hub-api.c). */
#include "sutra-hub-private.h"
#include "sutra-fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HASH_CHUNK   (1 << 20)
#define LOCK_POLL_MS 100

static atomic_uint link_counter;   /* unique temporary link names across threads */

/* ---- selection ---- */

/* fnmatch without FNM_PATHNAME, like Python's fnmatch that huggingface_hub uses: "*" also
 * crosses "/", so "*.json" matches "sub/x.json". A trailing "/" means the whole folder. */
static bool
glob_match (const char *pat, const char *path)
{
  size_t n = strlen (pat);
  if (n && pat[n - 1] == '/') {
    char *p2 = sutra_xasprintf ("%s*", pat);
    bool m = fnmatch (p2, path, 0) == 0;
    free (p2);
    return m;
  }
  return fnmatch (pat, path, 0) == 0;
}

/* Weight formats other than safetensors (PyTorch pickles, TF/Flax, ONNX, GGUF, ...). */
static bool
is_other_weight (const char *path)
{
  static const char *const pats[] = { "*.bin", "*.pth", "*.pt", "*.ckpt", "*.h5", "*.msgpack",
                                      "*.onnx", "*.onnx_data", "*.onnx.data", "*.gguf",
                                      "*.tflite", "*.ot", NULL };
  for (const char *const *p = pats; *p; p++)
    if (fnmatch (*p, path, 0) == 0)
      return true;
  return false;
}

bool
sutra_hub_select (const char *path, const char *const *include, const char *const *exclude,
                  bool prefer_st, bool repo_has_st)
{
  bool any_include = include && include[0];
  if (any_include) {
    bool m = false;
    for (const char *const *g = include; *g && !m; g++)
      m = glob_match (*g, path);
    if (!m)
      return false;
  }
  for (const char *const *g = exclude; g && *g; g++)
    if (glob_match (*g, path))
      return false;
  return !(prefer_st && repo_has_st && !any_include && is_other_weight (path));
}

/* ---- blobs ---- */

const char *
sutra_hub_etag_of (const SutraHubFile *f)
{
  return f->sha256[0] ? f->sha256 : f->git_oid;
}

/* stat, not lstat: newer huggingface_hub may make blobs/<etag> a symlink into a shared store. */
bool
sutra_hub_blob_ok (const char *blob, const SutraHubFile *f)
{
  struct stat st;
  return stat (blob, &st) == 0 && S_ISREG (st.st_mode) &&
         (!f->has_size || (uint64_t) st.st_size == f->size);
}

SutraStatus
sutra_hub_hash_prefix (int fd, uint64_t n, SutraSha256 *sha, const char *path,
                       SutraHubCancelFunc cancel, void *data, SutraError *err)
{
  char *buf = sutra_xmalloc (HASH_CHUNK);
  uint64_t off = 0;
  SutraStatus st = SUTRA_OK;
  while (off < n) {
    if (cancel && cancel (data)) {
      st = sutra_error_set (err, SUTRA_ERR_CANCELLED, "%s: cancelled while checking the part "
                            "already downloaded", path);
      break;
    }
    size_t want = n - off < HASH_CHUNK ? (size_t) (n - off) : HASH_CHUNK;
    ssize_t got = pread (fd, buf, want, (off_t) off);
    if (got <= 0) {
      st = sutra_error_set_sys (err, SUTRA_ERR_IO, got < 0 ? errno : EIO, "reading %s", path);
      break;
    }
    sutra_sha256_update (sha, buf, (size_t) got);
    off += (uint64_t) got;
  }
  free (buf);
  return st;
}

SutraStatus
sutra_hub_git_blob_id (int fd, uint64_t size, char out[41], const char *path, SutraError *err)
{
  SutraSha1 s;
  sutra_sha1_init (&s);
  char hdr[48];
  int hn = snprintf (hdr, sizeof hdr, "blob %llu", (unsigned long long) size);
  sutra_sha1_update (&s, hdr, (size_t) hn + 1);       /* the header includes its NUL */
  char *buf = sutra_xmalloc (HASH_CHUNK);
  uint64_t off = 0;
  while (off < size) {
    size_t want = size - off < HASH_CHUNK ? (size_t) (size - off) : HASH_CHUNK;
    ssize_t got = pread (fd, buf, want, (off_t) off);
    if (got <= 0) {
      free (buf);
      return sutra_error_set_sys (err, SUTRA_ERR_IO, got < 0 ? errno : EIO, "reading %s", path);
    }
    sutra_sha1_update (&s, buf, (size_t) got);
    off += (uint64_t) got;
  }
  free (buf);
  uint8_t d[20];
  sutra_sha1_final (&s, d);
  sutra_hex_encode (d, 20, out);
  return SUTRA_OK;
}

/* ---- locks ---- */

SutraStatus
sutra_hub_lock_blob (const char *locks_dir, const char *etag, int *fd_out,
                     SutraHubCancelFunc cancel, void *data, SutraError *err)
{
  SutraStatus st = sutra_mkdir_p (locks_dir, err);
  if (st)
    return st;
  char *name = sutra_xasprintf ("%s.lock", etag);
  char *p = sutra_path_join (locks_dir, name);
  free (name);
  int fd = open (p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot create the lock file %s", p);
    free (p);
    return st;
  }
  bool told = false;
  while (flock (fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot lock %s", p);
      break;
    }
    if (!told) {
      sutra_log (SUTRA_LOG_INFO, "hub: waiting for another download of the same file (%s)", p);
      told = true;
    }
    if (cancel && cancel (data)) {
      st = sutra_error_set (err, SUTRA_ERR_CANCELLED, "cancelled while waiting for %s", p);
      break;
    }
    struct timespec ts = { 0, LOCK_POLL_MS * 1000000L };
    nanosleep (&ts, NULL);
  }
  free (p);
  if (st) {
    close (fd);
    return st;
  }
  *fd_out = fd;
  return SUTRA_OK;
}

void
sutra_hub_unlock_blob (int fd)
{
  if (fd >= 0) {
    flock (fd, LOCK_UN);
    close (fd);
  }
}

/* ---- snapshot links and refs ---- */

SutraStatus
sutra_hub_link_snapshot (const char *repo_dir, const char *snapshot_dir, const SutraHubFile *f,
                         SutraError *err)
{
  char *dst = sutra_path_join (snapshot_dir, f->path);
  char *parent = sutra_path_dirname (dst);
  SutraStatus st = sutra_mkdir_p (parent, err);
  if (!st)
    st = sutra_path_check_inside (repo_dir, parent, err);
  if (st)
    goto out;
  /* snapshots/<commit>/a/b.json -> ../../../blobs/<etag>: two levels up to the repo folder,
   * plus one per folder inside the snapshot */
  size_t depth = 0;
  for (const char *p = f->path; *p; p++)
    depth += *p == '/';
  size_t cap = (depth + 2) * 3 + 80;
  char *target = sutra_xmalloc (cap), *t = target;
  for (size_t i = 0; i < depth + 2; i++, t += 3)
    memcpy (t, "../", 3);
  snprintf (t, cap - (size_t) (t - target), "blobs/%s", sutra_hub_etag_of (f));
  char *tmp = sutra_xasprintf ("%s.tmp-link-%d-%u", dst, (int) getpid (),
                               atomic_fetch_add (&link_counter, 1));
  unlink (tmp);
  if (symlink (target, tmp) != 0) {
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot create the link %s", tmp);
  } else if (rename (tmp, dst) != 0) {
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot rename %s to %s", tmp, dst);
    unlink (tmp);
  }
  free (tmp);
  free (target);
out:
  free (parent);
  free (dst);
  return st;
}

SutraStatus
sutra_hub_write_ref (const char *repo_dir, const char *revision, const char *commit,
                     SutraError *err)
{
  char *refs = sutra_path_join (repo_dir, "refs");
  char *ref = sutra_path_join (refs, revision);      /* "refs/pr/1" nests folders */
  char *parent = sutra_path_dirname (ref);
  SutraStatus st = sutra_mkdir_p (parent, err);
  if (!st)
    st = sutra_path_check_inside (repo_dir, parent, err);
  if (!st)
    st = sutra_write_file_atomic (ref, commit, strlen (commit), err);
  free (parent);
  free (ref);
  free (refs);
  return st;
}
