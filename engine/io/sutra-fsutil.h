/* sutra-fsutil.h: files written so that a crash never leaves a half-written result.
 *
 * Every file the engine produces (checkpoints, adapters, exports, downloads) is written to
 * a temporary sibling, fsync'ed, renamed over the target and the directory fsync'ed
 * (the POSIX recipe for an atomic replace). Directories of files (a checkpoint, a merged
 * model) are built under a temporary sibling directory and renamed into place whole. */
#pragma once
#include "sutra-error.h"

#include <stdio.h>
#include <sys/types.h>

/* ---- reading ---- */
/* Reads a whole file into a NUL-terminated buffer (caller frees). max_size guards against
 * reading something huge by mistake (0 = 1 GiB). */
SutraStatus sutra_read_file (const char *path, size_t max_size, char **out, size_t *out_len,
                             SutraError *err);
bool        sutra_path_exists (const char *path);
bool        sutra_is_dir (const char *path);
bool        sutra_is_file (const char *path);
/* Allocates "a/b" (no double slash). */
char       *sutra_path_join (const char *a, const char *b);
/* Basename pointer into path (no allocation). */
const char *sutra_path_basename (const char *path);
/* Allocated dirname. */
char       *sutra_path_dirname (const char *path);
SutraStatus sutra_mkdir_p (const char *path, SutraError *err);
/* true when `name` is a plain relative path inside its folder: no "..", no leading '/',
 * no empty or "." components, no backslashes, no control characters. */
bool        sutra_path_is_safe_relative (const char *name);
/* Fails with SUTRA_ERR_INVALID when `path` (or one of its parents up to `root`) is a
 * symlink that resolves outside `root`. Used before writing inside model folders. */
SutraStatus sutra_path_check_inside (const char *root, const char *path, SutraError *err);
/* Before writing `path`: when it lies inside folder `root` as written (made absolute, "." and
 * ".." folded, symlinks not followed), it must also resolve inside root (no symlink in root
 * leads the write elsewhere); a path outside root as written is not judged. root may be NULL
 * or not a folder (then nothing is checked). */
SutraStatus sutra_path_check_write (const char *root, const char *path, SutraError *err);

/* ---- atomic single file ---- */
typedef struct {
  FILE *fp;
  char *path;       /* final path */
  char *tmp_path;   /* path.tmp-XXXXXX beside it */
  bool failed;      /* a write failed; commit will refuse */
  int saved_errno;
} SutraAtomicFile;

/* Also removes temporaries of the same path left by writers that died ("<path>.tmp-<pid>-<n>"
 * of a pid no longer alive); those of live processes are left alone. */
SutraStatus sutra_atomic_open   (SutraAtomicFile *f, const char *path, SutraError *err);
/* Writes n bytes; on failure remembers it (commit reports it) and returns the status. */
SutraStatus sutra_atomic_write  (SutraAtomicFile *f, const void *data, size_t n, SutraError *err);
/* flush + fsync + rename + fsync(dir). On any failure the target is untouched. */
SutraStatus sutra_atomic_commit (SutraAtomicFile *f, SutraError *err);
/* Removes the temporary file (after an error); harmless after commit. */
void        sutra_atomic_abort  (SutraAtomicFile *f);
/* Whole-buffer convenience. */
SutraStatus sutra_write_file_atomic (const char *path, const void *data, size_t n, SutraError *err);

/* ---- atomic directory ---- */
/* Creates `<final>.tmp-<pid>-<n>` next to final and returns it (caller frees). */
SutraStatus sutra_tmpdir_begin  (const char *final_dir, char **tmp_dir, SutraError *err);
/* fsyncs every file in tmp_dir, then replaces final_dir by tmp_dir, then fsyncs the parent.
 * An existing final_dir is swapped out in one step (renameat2 RENAME_EXCHANGE); where the file
 * system cannot, it is moved aside first and removed only after the rename succeeded.
 * sutra_tmpdir_begin removes (or, for a missing final_dir, restores) what dead writers left.
 * Test hook: SUTRA_TEST_SLOW_WRITE_MS=N sleeps N ms before every atomic rename (crash tests). */
SutraStatus sutra_tmpdir_commit (const char *tmp_dir, const char *final_dir, SutraError *err);
/* Recursively removes a directory (used for aborted tmp dirs). */
SutraStatus sutra_rm_rf (const char *path, SutraError *err);
/* Removes a folder so that it is never seen half-removed under its own name: renamed to
 * "<path>.del-<pid>-<n>" first, then removed (pruned checkpoints). */
SutraStatus sutra_rm_rf_atomic (const char *path, SutraError *err);
/* Copies a file atomically (tokenizer files into exports). */
SutraStatus sutra_copy_file (const char *src, const char *dst, SutraError *err);
SutraStatus sutra_fsync_dir (const char *dir, SutraError *err);
