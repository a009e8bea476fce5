/* sutra-fsutil.c: whole-file reads, atomic file and directory replacement, path checks. */
#include "sutra-fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

SutraStatus
sutra_read_file (const char *path, size_t max_size, char **out, size_t *out_len, SutraError *err)
{
  if (max_size == 0)
    max_size = (size_t) 1 << 30;
  FILE *fp = fopen (path, "rb");
  if (!fp)
    return sutra_error_set_sys (err, errno == ENOENT ? SUTRA_ERR_NOT_FOUND : SUTRA_ERR_IO, errno,
                                "%s", path);
  struct stat st;
  if (fstat (fileno (fp), &st) != 0) {
    int e = errno;
    fclose (fp);
    return sutra_error_set_sys (err, SUTRA_ERR_IO, e, "%s", path);
  }
  if (S_ISDIR (st.st_mode)) {
    fclose (fp);
    return sutra_error_set (err, SUTRA_ERR_IO, "%s: is a directory, expected a file", path);
  }
  if ((size_t) st.st_size > max_size) {
    fclose (fp);
    return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: %lld bytes is larger than the %zu allowed",
                            path, (long long) st.st_size, max_size);
  }
  size_t cap = (size_t) st.st_size + 1, len = 0;
  char *buf = sutra_xmalloc (cap);
  for (;;) {
    if (len + 1 >= cap) {
      if (cap > max_size) {
        free (buf);
        fclose (fp);
        return sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: larger than the %zu bytes allowed",
                                path, max_size);
      }
      cap *= 2;
      buf = sutra_xrealloc (buf, cap);
    }
    size_t n = fread (buf + len, 1, cap - len - 1, fp);
    len += n;
    if (n == 0)
      break;
  }
  if (ferror (fp)) {
    int e = errno;
    free (buf);
    fclose (fp);
    return sutra_error_set_sys (err, SUTRA_ERR_IO, e, "%s: read failed", path);
  }
  fclose (fp);
  buf[len] = '\0';
  *out = buf;
  if (out_len)
    *out_len = len;
  return SUTRA_OK;
}

bool
sutra_path_exists (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0;
}

bool
sutra_is_dir (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

bool
sutra_is_file (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

char *
sutra_path_join (const char *a, const char *b)
{
  size_t la = strlen (a);
  while (la > 1 && a[la - 1] == '/')
    la--;
  while (*b == '/')
    b++;
  if (la == 0)
    return sutra_xstrdup (b);
  return sutra_xasprintf ("%.*s/%s", (int) la, a, b);
}

const char *
sutra_path_basename (const char *path)
{
  const char *s = strrchr (path, '/');
  return s ? s + 1 : path;
}

char *
sutra_path_dirname (const char *path)
{
  const char *s = strrchr (path, '/');
  if (!s)
    return sutra_xstrdup (".");
  if (s == path)
    return sutra_xstrdup ("/");
  return sutra_xstrndup (path, (size_t) (s - path));
}

SutraStatus
sutra_mkdir_p (const char *path, SutraError *err)
{
  char *p = sutra_xstrdup (path);
  size_t len = strlen (p);
  for (size_t i = 1; i <= len; i++) {
    if (p[i] == '/' || p[i] == '\0') {
      char c = p[i];
      p[i] = '\0';
      if (mkdir (p, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        SutraStatus st = sutra_error_set_sys (err, SUTRA_ERR_IO, e, "cannot create folder %s", p);
        free (p);
        return st;
      }
      p[i] = c;
    }
  }
  free (p);
  if (!sutra_is_dir (path))
    return sutra_error_set (err, SUTRA_ERR_IO, "%s exists and is not a folder", path);
  return SUTRA_OK;
}

bool
sutra_path_is_safe_relative (const char *name)
{
  if (!name || !*name || name[0] == '/')
    return false;
  const char *s = name;
  while (*s) {
    const char *e = strchr (s, '/');
    size_t n = e ? (size_t) (e - s) : strlen (s);
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
      return false;
    for (size_t i = 0; i < n; i++)
      if ((unsigned char) s[i] < 0x20 || s[i] == '\\' || s[i] == 0x7f)
        return false;
    if (!e)
      break;
    s = e + 1;
  }
  return true;
}

SutraStatus
sutra_path_check_inside (const char *root, const char *path, SutraError *err)
{
  char real_root[PATH_MAX];
  if (!realpath (root, real_root))
    return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s", root);
  /* Resolve the deepest existing ancestor of path (the file may not exist yet). */
  char *probe = sutra_xstrdup (path);
  char resolved[PATH_MAX];
  for (;;) {
    if (realpath (probe, resolved))
      break;
    char *parent = sutra_path_dirname (probe);
    bool stuck = strcmp (parent, probe) == 0;
    free (probe);
    probe = parent;
    if (stuck) {
      free (probe);
      return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: cannot resolve", path);
    }
  }
  free (probe);
  size_t lr = strlen (real_root);
  if (strncmp (resolved, real_root, lr) != 0 || (resolved[lr] != '/' && resolved[lr] != '\0'))
    return sutra_error_set (err, SUTRA_ERR_INVALID,
                            "%s: resolves to %s, outside %s (symlink?); refusing to write", path,
                            resolved, real_root);
  return SUTRA_OK;
}

/* path made absolute from the working folder with "." and ".." folded lexically. */
static char *
lexical_abs (const char *path)
{
  char cwd[PATH_MAX];
  char *full = path[0] == '/' || !getcwd (cwd, sizeof cwd) ? sutra_xstrdup (path)
                                                            : sutra_path_join (cwd, path);
  size_t n = strlen (full);
  char *out = sutra_xmalloc (n + 2);
  size_t o = 0;
  for (const char *s = full; *s;) {
    while (*s == '/')
      s++;
    const char *e = strchr (s, '/');
    size_t len = e ? (size_t) (e - s) : strlen (s);
    if (len == 0 || (len == 1 && s[0] == '.')) {
      /* skip */
    } else if (len == 2 && s[0] == '.' && s[1] == '.') {
      while (o > 0 && out[o - 1] != '/')
        o--;
      if (o > 0)
        o--;                                        /* drop the slash too */
    } else {
      out[o++] = '/';
      memcpy (out + o, s, len);
      o += len;
    }
    s += len;
  }
  if (o == 0)
    out[o++] = '/';
  out[o] = '\0';
  free (full);
  return out;
}

SutraStatus
sutra_path_check_write (const char *root, const char *path, SutraError *err)
{
  if (!root || !path || !sutra_is_dir (root))
    return SUTRA_OK;
  char *r = lexical_abs (root), *p = lexical_abs (path);
  size_t lr = strlen (r);
  bool inside = strncmp (p, r, lr) == 0 && (p[lr] == '/' || p[lr] == '\0' || lr == 1);
  free (r);
  free (p);
  return inside ? sutra_path_check_inside (root, path, err) : SUTRA_OK;
}

SutraStatus
sutra_fsync_dir (const char *dir, SutraError *err)
{
  int fd = open (dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s", dir);
  int rc = fsync (fd);
  int e = errno;
  close (fd);
  if (rc != 0 && e != EINVAL)    /* some file systems do not fsync directories */
    return sutra_error_set_sys (err, SUTRA_ERR_IO, e, "fsync %s", dir);
  return SUTRA_OK;
}

static atomic_uint tmp_counter;

static void recover_leftovers (const char *final_dir, size_t len);

/* Test hook (documented in docs/reliability.md): SUTRA_TEST_SLOW_WRITE_MS=N sleeps N ms before
 * each atomic rename, so crash tests can kill a process while a checkpoint or an export is
 * being written. Unset (always, outside tests) it costs one getenv per committed file. */
static void
test_slow_write (void)
{
  const char *e = getenv ("SUTRA_TEST_SLOW_WRITE_MS");
  long ms = e ? strtol (e, NULL, 10) : 0;
  if (ms > 0 && ms <= 10000) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep (&ts, &ts) != 0 && errno == EINTR)
      ;
  }
}

SutraStatus
sutra_atomic_open (SutraAtomicFile *f, const char *path, SutraError *err)
{
  memset (f, 0, sizeof *f);
  /* the rename at commit would fail only after all the work: refuse a folder now */
  struct stat sb;
  if (lstat (path, &sb) == 0 && S_ISDIR (sb.st_mode))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s is a folder; expected a file name", path);
  /* a writer of the same file that died (killed, power cut) left its temporary beside it */
  recover_leftovers (path, strlen (path));
  char *tmp = sutra_xasprintf ("%s.tmp-%d-%u", path, (int) getpid (),
                               atomic_fetch_add (&tmp_counter, 1));
  int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    SutraStatus st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot create %s", tmp);
    free (tmp);
    return st;
  }
  f->fp = fdopen (fd, "wb");
  if (!f->fp) {
    int e = errno;
    close (fd);
    unlink (tmp);
    free (tmp);
    return sutra_error_set_sys (err, SUTRA_ERR_IO, e, "%s", path);
  }
  f->path = sutra_xstrdup (path);
  f->tmp_path = tmp;
  return SUTRA_OK;
}

SutraStatus
sutra_atomic_write (SutraAtomicFile *f, const void *data, size_t n, SutraError *err)
{
  if (f->failed)
    return sutra_error_set_sys (err, SUTRA_ERR_IO, f->saved_errno, "writing %s", f->path);
  if (n && fwrite (data, 1, n, f->fp) != n) {
    f->failed = true;
    f->saved_errno = errno ? errno : EIO;
    return sutra_error_set_sys (err, SUTRA_ERR_IO, f->saved_errno, "writing %s", f->path);
  }
  return SUTRA_OK;
}

void
sutra_atomic_abort (SutraAtomicFile *f)
{
  if (f->fp) {
    fclose (f->fp);
    f->fp = NULL;
  }
  if (f->tmp_path) {
    unlink (f->tmp_path);
    free (f->tmp_path);
    f->tmp_path = NULL;
  }
  free (f->path);
  f->path = NULL;
}

SutraStatus
sutra_atomic_commit (SutraAtomicFile *f, SutraError *err)
{
  SutraStatus st = SUTRA_OK;
  if (f->failed) {
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, f->saved_errno, "writing %s", f->path);
    goto fail;
  }
  if (fflush (f->fp) != 0 || fsync (fileno (f->fp)) != 0) {
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "writing %s", f->path);
    goto fail;
  }
  if (fclose (f->fp) != 0) {
    f->fp = NULL;
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "writing %s", f->path);
    goto fail;
  }
  f->fp = NULL;
  test_slow_write ();
  if (rename (f->tmp_path, f->path) != 0) {
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot rename into %s", f->path);
    goto fail;
  }
  {
    char *dir = sutra_path_dirname (f->path);
    st = sutra_fsync_dir (dir, err);
    free (dir);
  }
  free (f->tmp_path);
  f->tmp_path = NULL;
  free (f->path);
  f->path = NULL;
  return st;
fail:
  sutra_atomic_abort (f);
  return st;
}

SutraStatus
sutra_write_file_atomic (const char *path, const void *data, size_t n, SutraError *err)
{
  SutraAtomicFile f;
  SutraStatus st = sutra_atomic_open (&f, path, err);
  if (st)
    return st;
  st = sutra_atomic_write (&f, data, n, err);
  if (st) {
    sutra_atomic_abort (&f);
    return st;
  }
  return sutra_atomic_commit (&f, err);
}

/* Leftovers of a writer that died (killed, power cut) beside final (a folder, or a single file
 * written by sutra_atomic_open): "<final>.tmp-<pid>-<n>" (an unfinished new version) and
 * "<final>.del-<pid>-<n>" (a removal cut short): removed; "<final>.old-<pid>-<n>" (the previous version,
 * moved aside by the fallback path of sutra_tmpdir_commit: put back when final is missing,
 * else removed). Entries of live processes are left alone. */
static void
recover_leftovers (const char *final_dir, size_t len)
{
  char *base_path = sutra_xstrndup (final_dir, len);
  char *parent = sutra_path_dirname (base_path);
  const char *base = sutra_path_basename (base_path);
  size_t blen = strlen (base);
  DIR *d = opendir (parent);
  struct dirent *e;
  while (d && (e = readdir (d))) {
    const char *n = e->d_name;
    if (strncmp (n, base, blen) != 0)
      continue;
    bool is_tmp = !strncmp (n + blen, ".tmp-", 5) || !strncmp (n + blen, ".del-", 5);
    bool is_old = !strncmp (n + blen, ".old-", 5);
    if (!is_tmp && !is_old)
      continue;
    char *end;
    long pid = strtol (n + blen + 5, &end, 10);
    if (pid <= 0 || *end != '-' || pid == (long) getpid () ||
        kill ((pid_t) pid, 0) == 0 || errno != ESRCH)
      continue;                                  /* ours, alive, or not ours to judge */
    char *p = sutra_path_join (parent, n);
    if (is_old && !sutra_path_exists (base_path) && rename (p, base_path) == 0)
      sutra_log (SUTRA_LOG_WARN, "%s: restored the previous version left by an interrupted write",
                 base_path);
    else
      sutra_rm_rf (p, NULL);
    free (p);
  }
  if (d)
    closedir (d);
  free (parent);
  free (base_path);
}

SutraStatus
sutra_tmpdir_begin (const char *final_dir, char **tmp_dir, SutraError *err)
{
  size_t len = strlen (final_dir);
  while (len > 1 && final_dir[len - 1] == '/')
    len--;
  char *tmp = sutra_xasprintf ("%.*s.tmp-%d-%u", (int) len, final_dir, (int) getpid (),
                               atomic_fetch_add (&tmp_counter, 1));
  char *parent = sutra_path_dirname (tmp);
  SutraStatus st = sutra_mkdir_p (parent, err);
  free (parent);
  if (st) {
    free (tmp);
    return st;
  }
  recover_leftovers (final_dir, len);
  if (mkdir (tmp, 0755) != 0) {
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot create %s", tmp);
    free (tmp);
    return st;
  }
  *tmp_dir = tmp;
  return SUTRA_OK;
}

static SutraStatus
fsync_tree (const char *dir, SutraError *err)
{
  DIR *d = opendir (dir);
  if (!d)
    return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s", dir);
  struct dirent *e;
  SutraStatus st = SUTRA_OK;
  while (!st && (e = readdir (d))) {
    if (!strcmp (e->d_name, ".") || !strcmp (e->d_name, ".."))
      continue;
    char *p = sutra_path_join (dir, e->d_name);
    if (sutra_is_dir (p))
      st = fsync_tree (p, err);
    else {
      int fd = open (p, O_RDONLY);
      if (fd < 0 || fsync (fd) != 0)
        st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "fsync %s", p);
      if (fd >= 0)
        close (fd);
    }
    free (p);
  }
  closedir (d);
  if (!st)
    st = sutra_fsync_dir (dir, err);
  return st;
}

SutraStatus
sutra_tmpdir_commit (const char *tmp_dir, const char *final_dir, SutraError *err)
{
  SutraStatus st = fsync_tree (tmp_dir, err);
  if (st)
    return st;
  test_slow_write ();
  char *old = NULL;
  if (sutra_path_exists (final_dir)) {
    /* Linux: swap the two folders in one step (renameat2 RENAME_EXCHANGE), so final_dir is
     * never missing; tmp_dir then holds the previous version, removed after a directory sync */
    if (renameat2 (AT_FDCWD, tmp_dir, AT_FDCWD, final_dir, RENAME_EXCHANGE) == 0) {
      char *parent = sutra_path_dirname (final_dir);
      st = sutra_fsync_dir (parent, err);
      free (parent);
      sutra_rm_rf (tmp_dir, NULL);
      return st;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP && errno != EOPNOTSUPP)
      return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot replace %s", final_dir);
    /* no exchange on this file system: move the old version aside first */
    old = sutra_xasprintf ("%s.old-%d-%u", final_dir, (int) getpid (),
                           atomic_fetch_add (&tmp_counter, 1));
    if (rename (final_dir, old) != 0) {
      st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot move %s aside", final_dir);
      free (old);
      return st;
    }
  }
  if (rename (tmp_dir, final_dir) != 0) {
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot rename %s to %s", tmp_dir,
                              final_dir);
    if (old)
      rename (old, final_dir);       /* put the previous version back */
    free (old);
    return st;
  }
  char *parent = sutra_path_dirname (final_dir);
  st = sutra_fsync_dir (parent, err);
  free (parent);
  if (old) {
    sutra_rm_rf (old, NULL);
    free (old);
  }
  return st;
}

SutraStatus
sutra_rm_rf (const char *path, SutraError *err)
{
  struct stat st;
  if (lstat (path, &st) != 0)
    return errno == ENOENT ? SUTRA_OK : sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s", path);
  if (S_ISDIR (st.st_mode)) {
    DIR *d = opendir (path);
    if (!d)
      return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s", path);
    struct dirent *e;
    SutraStatus s = SUTRA_OK;
    while (!s && (e = readdir (d))) {
      if (!strcmp (e->d_name, ".") || !strcmp (e->d_name, ".."))
        continue;
      char *p = sutra_path_join (path, e->d_name);
      s = sutra_rm_rf (p, err);
      free (p);
    }
    closedir (d);
    if (s)
      return s;
    if (rmdir (path) != 0)
      return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot remove %s", path);
    return SUTRA_OK;
  }
  if (unlink (path) != 0)
    return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot remove %s", path);
  return SUTRA_OK;
}

SutraStatus
sutra_rm_rf_atomic (const char *path, SutraError *err)
{
  size_t len = strlen (path);
  while (len > 1 && path[len - 1] == '/')
    len--;
  char *doomed = sutra_xasprintf ("%.*s.del-%d-%u", (int) len, path, (int) getpid (),
                                  atomic_fetch_add (&tmp_counter, 1));
  SutraStatus st;
  if (rename (path, doomed) != 0)
    st = errno == ENOENT ? SUTRA_OK : sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot remove %s", path);
  else
    st = sutra_rm_rf (doomed, err);
  free (doomed);
  return st;
}

SutraStatus
sutra_copy_file (const char *src, const char *dst, SutraError *err)
{
  FILE *in = fopen (src, "rb");
  if (!in)
    return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s", src);
  SutraAtomicFile f;
  SutraStatus st = sutra_atomic_open (&f, dst, err);
  if (st) {
    fclose (in);
    return st;
  }
  char buf[1 << 16];
  size_t n;
  while (!st && (n = fread (buf, 1, sizeof buf, in)) > 0)
    st = sutra_atomic_write (&f, buf, n, err);
  if (!st && ferror (in))
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "reading %s", src);
  fclose (in);
  if (st) {
    sutra_atomic_abort (&f);
    return st;
  }
  return sutra_atomic_commit (&f, err);
}
