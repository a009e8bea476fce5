/* sutra-hub-download.c: one Hub download (see sutra-hub.h): list (revision API, then the
 * paginated tree API, or HEAD per file when the tree API is absent), select (globs,
 * prefer_safetensors), then per file: lock, resume blobs/<etag>.incomplete with HTTP Range,
 * verify (size, SHA-256 or Git blob id), rename into blobs/<etag>, link
 * snapshots/<commit>/<path>; refs/<revision> last. Retries with exponential backoff on
 * network errors, 408/429/5xx. HTTP itself goes through sutra-hub.c (libcurl). */
#include "sutra-hub-private.h"
#include "sutra-hub-api.h"
#include "sutra-hub-cache.h"
#include "sutra-fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define DEFAULT_ENDPOINT   "https://huggingface.co"
#define DEFAULT_TRIES      5
#define DEFAULT_BACKOFF_S  1.0
#define DEFAULT_STALL_S    60.0
#define DEFAULT_CONNECT_S  30.0
#define MAX_TREE_PAGES     10000
#define MAX_API_BODY       ((size_t) 64 << 20)  /* a JSON listing larger than this is refused */
#define MAX_TOTAL_ATTEMPTS 1000                 /* per file, even while making progress */

static bool
cancel_cb (void *data)
{
  return sutra_hub_cancelled (data);
}

/* The server's own words about an error: X-Error-Message or {"error": "..."}, quoted and
 * scrubbed of the token (a hostile server could echo our Authorization header). */
static void
server_message (const SutraHubSession *h, const SutraHubRequest *r, char *buf, size_t n)
{
  char raw[512] = "";
  if (r->h_error_message) {
    snprintf (raw, sizeof raw, "%s", r->h_error_message);
  } else if (r->errbody_len) {
    const char *k = strstr (r->errbody, "\"error\"");
    if (k && (k = strchr (k + 7, '"'))) {
      const char *e = strchr (k + 1, '"');
      if (e)
        snprintf (raw, sizeof raw, "%.*s", (int) (e - k - 1 > 400 ? 400 : e - k - 1), k + 1);
    }
  }
  sutra_hub_redact (h, raw);
  char q[300];
  if (raw[0])
    snprintf (buf, n, " (server says: %s)", sutra_hub_quote (raw, q, sizeof q));
  else
    buf[0] = '\0';
}

static bool
status_retryable (long s)
{
  return s == 408 || s == 429 || (s >= 500 && s <= 599);
}

/* Maps a final non-2xx status to an error. `what` names the repo, revision or file. */
static SutraStatus
http_error (SutraHubSession *h, const SutraHubRequest *r, const char *what, SutraError *err)
{
  char said[400];
  server_message (h, r, said, sizeof said);
  const char *code = r->h_error_code ? r->h_error_code : "";
  long s = r->status;
  SutraStatus st;
  if (strcmp (code, "RepoNotFound") == 0)
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND,
                          "%s: repository not found on %s (HTTP %ld)%s; check the id, or set "
                          "HF_TOKEN if it is private", what, h->endpoint, s, said);
  else if (strcmp (code, "RevisionNotFound") == 0)
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: revision not found (HTTP %ld)%s", what,
                          s, said);
  else if (strcmp (code, "EntryNotFound") == 0)
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: file not found (HTTP %ld)%s", what, s,
                          said);
  else if (strcmp (code, "GatedRepo") == 0 || s == 401 || s == 403)
    st = sutra_error_set (err, SUTRA_ERR_AUTH,
                          "%s: access refused (HTTP %ld%s)%s; %s", what, s,
                          strcmp (code, "GatedRepo") == 0 ? ", gated repository" : "", said,
                          h->token ? "the token was refused: accept the model's licence on its "
                                     "Hub page and check that HF_TOKEN has read access"
                                   : "gated or private repository: accept its licence on the "
                                     "Hub page, then set HF_TOKEN (or log in with "
                                     "`huggingface-cli login`)");
  else if (s == 404)
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: not found (HTTP 404)%s", what, said);
  else
    st = sutra_error_set (err, SUTRA_ERR_NETWORK, "%s: HTTP %ld%s", what, s, said);
  sutra_hub_redact (h, err ? err->message : said);
  return st;
}

static double
retry_delay (SutraHubSession *h, int attempt, const SutraHubRequest *r)
{
  double d = h->backoff_s;
  for (int i = 2; i < attempt && d < SUTRA_HUB_MAX_BACKOFF_S; i++)
    d *= 2;
  if (d > SUTRA_HUB_MAX_BACKOFF_S)
    d = SUTRA_HUB_MAX_BACKOFF_S;
  if (r && r->h_retry_after) {             /* 429/503 may say how long to wait (seconds) */
    char *end;
    double ra = strtod (r->h_retry_after, &end);
    if (end != r->h_retry_after && ra > d)
      d = ra < SUTRA_HUB_MAX_BACKOFF_S ? ra : SUTRA_HUB_MAX_BACKOFF_S;
  }
  return d;
}

/* Tells the caller and waits before `attempt`; false when cancelled. */
static bool
announce_retry (SutraHubSession *h, int attempt, const SutraHubRequest *r, const char *reason)
{
  double d = retry_delay (h, attempt, r);
  sutra_hub_log (h, SUTRA_LOG_WARN, "hub: %s; retry %d of %d in %.2g s", reason, attempt - 1,
                 h->max_tries - 1, d);
  h->prog.attempt = attempt;
  h->prog.retry_delay_s = d;
  h->prog.reason = reason;
  sutra_hub_report (h, SUTRA_HUB_EVENT_RETRY);
  h->prog.reason = NULL;
  return sutra_hub_sleep (h, d);
}

static SutraStatus
cancelled_error (SutraHubSession *h, SutraError *err)
{
  return sutra_error_set (err, SUTRA_ERR_CANCELLED, "%s: download cancelled%s", h->what,
                          h->prog.file ? "; partial files are kept and resume next time" : "");
}

/* GET (or HEAD) into memory with retries. On success r->status is 2xx (or the 3xx kept by
 * stop_at_foreign_redirect); statuses in `pass` are returned to the caller unmapped. */
static SutraStatus
api_request (SutraHubSession *h, const char *url, SutraHubRequest *r, const char *what,
             const long *pass, SutraError *err)
{
  char reason[600];
  for (int attempt = 1;; attempt++) {
    reason[0] = '\0';
    SutraHubXfer x = sutra_hub_http_request (h, url, r, reason, sizeof reason, err);
    if (x == SUTRA_HUB_XFER_CANCELLED)
      return cancelled_error (h, err);
    if (x == SUTRA_HUB_XFER_FAIL)
      return err ? err->code : SUTRA_ERR_NETWORK;
    if (x == SUTRA_HUB_XFER_OK) {
      if ((r->status >= 200 && r->status < 300) ||
          (r->stop_at_foreign_redirect && r->status >= 300 && r->status < 400))
        return SUTRA_OK;
      for (const long *p = pass; p && *p; p++)
        if (*p == r->status)
          return SUTRA_OK;
      if (!status_retryable (r->status))
        return http_error (h, r, what, err);
      char said[400];
      server_message (h, r, said, sizeof said);
      snprintf (reason, sizeof reason, "%s: HTTP %ld%s", what, r->status, said);
    }
    if (attempt >= h->max_tries) {
      SutraStatus st = sutra_error_set (err, SUTRA_ERR_NETWORK, "%s (gave up after %d tries)",
                                        reason, attempt);
      if (err)
        sutra_hub_redact (h, err->message);
      return st;
    }
    if (!announce_retry (h, attempt + 1, r, reason))
      return cancelled_error (h, err);
  }
}

/* ---- listing ---- */

static SutraStatus
list_files (SutraHubSession *h, SutraHubFileList *files, SutraError *err)
{
  char *qrev = sutra_hub_url_quote (h->revision, false);
  char *url = sutra_xasprintf ("%s/api/models/%s/revision/%s", h->endpoint, h->repo_id, qrev);
  free (qrev);
  SutraHubRequest r = { .h = h, .sink = SUTRA_HUB_SINK_MEM, .mem_max = MAX_API_BODY, .fd = -1 };
  SutraStatus st = api_request (h, url, &r, h->what, NULL, err);
  free (url);
  if (!st)
    st = sutra_hub_parse_revision (r.mem ? r.mem : "", r.mem_len, h->what, h->commit, files, err);
  if (st) {
    sutra_hub_request_clear (&r);
    return st;
  }
  /* Tree pages at the resolved commit: sizes and hashes. */
  url = sutra_xasprintf ("%s/api/models/%s/tree/%s?recursive=true", h->endpoint, h->repo_id,
                         h->commit);
  for (int page = 0; url; page++) {
    if (page >= MAX_TREE_PAGES) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: more than %d tree pages", h->what,
                            MAX_TREE_PAGES);
      break;
    }
    static const long pass404[] = { 404, 0 };
    char what[300];
    snprintf (what, sizeof what, "%s: file listing", h->what);
    st = api_request (h, url, &r, what, pass404, err);
    if (st)
      break;
    if (r.status == 404) {
      if (page > 0) {
        st = http_error (h, &r, what, err);
        break;
      }
      /* Older servers and some mirrors have no tree API: HEAD each file instead. */
      sutra_hub_log (h, SUTRA_LOG_INFO,
                     "hub: %s has no tree API; reading file metadata one by one", h->endpoint);
      break;
    }
    st = sutra_hub_parse_tree (r.mem ? r.mem : "", r.mem_len, what, files, err);
    if (st)
      break;
    char *next = r.h_link ? sutra_hub_parse_link_next (r.h_link) : NULL;
    free (url);
    url = NULL;
    if (next && !sutra_hub_same_origin (next, h->endpoint)) {
      char where[160];
      sutra_hub_host_of (next, where, sizeof where);
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: the next listing page points to %s, "
                            "outside %s; refusing", h->what, where, h->endpoint);
      free (next);
      break;
    }
    url = next;
  }
  free (url);
  sutra_hub_request_clear (&r);
  return st;
}

/* HEAD {endpoint}/{repo}/resolve/{commit}/{path}: ETag / X-Linked-Etag / X-Linked-Size, the
 * metadata huggingface_hub itself reads, for files the tree API did not describe. */
static SutraStatus
head_metadata (SutraHubSession *h, SutraHubFile *f, SutraError *err)
{
  char *qpath = sutra_hub_url_quote (f->path, true);
  char *url = sutra_xasprintf ("%s/%s/resolve/%s/%s", h->endpoint, h->repo_id, h->commit, qpath);
  free (qpath);
  char what[600], q[300];
  snprintf (what, sizeof what, "%s: %s", h->what, sutra_hub_quote (f->path, q, sizeof q));
  SutraHubRequest r = { .h = h, .sink = SUTRA_HUB_SINK_MEM, .head = true,
                        .stop_at_foreign_redirect = true,
                        .mem_max = SUTRA_HUB_MAX_ERR_BODY, .fd = -1 };
  SutraStatus st = api_request (h, url, &r, what, NULL, err);
  free (url);
  if (!st) {
    char etag[65];
    const char *ev = r.h_linked_etag ? r.h_linked_etag : r.h_etag;
    if (!ev || !sutra_hub_parse_etag (ev, etag)) {
      st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                            "%s: the server gave no usable ETag (40 or 64 hex digits), so the "
                            "file cannot be named in the cache", what);
    } else {
      if (strlen (etag) == 64)
        memcpy (f->sha256, etag, 65);
      else
        memcpy (f->git_oid, etag, 41);
      const char *sv = r.h_linked_size ? r.h_linked_size
                                       : (r.status == 200 ? r.h_length : NULL);
      char *end;
      if (sv && *sv) {
        unsigned long long sz = strtoull (sv, &end, 10);
        if (*end == '\0') {
          f->size = sz;
          f->has_size = true;
        }
      }
    }
  }
  sutra_hub_request_clear (&r);
  return st;
}

/* Downloads f into blobs/<etag> (resuming <etag>.incomplete), verified; lock held by caller. */
static SutraStatus
fetch_blob (SutraHubSession *h, SutraHubFile *f, const char *blob, const char *what,
            SutraError *err)
{
  char *inc = sutra_xasprintf ("%s.incomplete", blob);
  char *qpath = sutra_hub_url_quote (f->path, true);
  char *url = sutra_xasprintf ("%s/%s/resolve/%s/%s", h->endpoint, h->repo_id, h->commit, qpath);
  free (qpath);
  SutraStatus st = SUTRA_OK;
  SutraSha256 sha;
  sutra_sha256_init (&sha);
  bool lfs = f->sha256[0] != '\0';
  int fd = open (inc, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot create %s", inc);
    goto out;
  }
  struct stat sb;
  if (fstat (fd, &sb) != 0) {
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s", inc);
    goto out;
  }
  uint64_t have = (uint64_t) sb.st_size;
  if (f->has_size && have > f->size) {            /* not ours to resume: start over */
    if (ftruncate (fd, 0) != 0) {
      st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "truncating %s", inc);
      goto out;
    }
    have = 0;
  }
  if (have > 0) {
    sutra_hub_log (h, SUTRA_LOG_INFO, "hub: resuming %s at byte %llu", what,
                   (unsigned long long) have);
    if (lfs && (st = sutra_hub_hash_prefix (fd, have, &sha, inc, cancel_cb, h, err)))
      goto out;
  }
  /* Room on disk for the rest (a clear error now beats ENOSPC half-way through). */
  struct statvfs vfs;
  if (f->has_size && fstatvfs (fd, &vfs) == 0) {
    uint64_t free_b = (uint64_t) vfs.f_bavail * vfs.f_frsize, need = f->size - have;
    if (need > free_b) {
      st = sutra_error_set (err, SUTRA_ERR_IO, "%s: needs %.1f MB more but only %.1f MB are "
                            "free in %s", what, (double) need / 1e6, (double) free_b / 1e6,
                            h->blobs_dir);
      goto out;
    }
  }
  h->prog.file_done = have;
  sutra_hub_report (h, SUTRA_HUB_EVENT_FILE_START);

  SutraHubRequest r = { .h = h, .sink = SUTRA_HUB_SINK_FILE, .fd = fd, .sha = lfs ? &sha : NULL };
  char reason[600];
  int fails = 0;                        /* consecutive failures without new bytes */
  for (int attempt = 1;; attempt++) {
    bool complete = f->has_size && have == f->size;
    if (!complete) {
      if (lseek (fd, (off_t) have, SEEK_SET) < 0) {
        st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "seeking in %s", inc);
        break;
      }
      r.offset = have;
      reason[0] = '\0';
      SutraHubXfer x = sutra_hub_http_request (h, url, &r, reason, sizeof reason, err);
      struct stat now;
      uint64_t size_now = fstat (fd, &now) == 0 ? (uint64_t) now.st_size : have;
      bool progressed = size_now > have || r.restarted;
      have = size_now;
      if (x == SUTRA_HUB_XFER_CANCELLED) {
        st = cancelled_error (h, err);
        break;
      }
      if (x == SUTRA_HUB_XFER_FAIL) {
        st = err ? err->code : SUTRA_ERR_NETWORK;
        break;
      }
      if (r.range_mismatch) {           /* the bytes we hold cannot be continued: restart */
        if (ftruncate (fd, 0) != 0) {
          st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "truncating %s", inc);
          break;
        }
        have = 0;
        sutra_sha256_init (&sha);
      }
      if (x == SUTRA_HUB_XFER_OK) {
        if (r.status == 416) {
          /* Nothing left to send from `have`: complete if the sizes agree, else restart. */
          uint64_t s, e, t = UINT64_MAX;
          if (r.h_content_range)
            sutra_hub_parse_content_range (r.h_content_range, &s, &e, &t);
          uint64_t want = f->has_size ? f->size : t;
          if (want != UINT64_MAX && have == want) {
            complete = true;
          } else {
            snprintf (reason, sizeof reason, "%s: HTTP 416 at byte %llu; starting over", what,
                      (unsigned long long) have);
            if (ftruncate (fd, 0) != 0) {
              st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "truncating %s", inc);
              break;
            }
            have = 0;
            sutra_sha256_init (&sha);
          }
        } else if (r.status == 200 || r.status == 206) {
          if (!f->has_size || have == f->size)
            complete = true;
          else if (have > f->size) {
            st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                                  "%s: the server sent %llu bytes, the listing says %llu; the "
                                  "partial download was deleted", what,
                                  (unsigned long long) have, (unsigned long long) f->size);
            unlink (inc);
            break;
          } else {
            snprintf (reason, sizeof reason, "%s: transfer ended at byte %llu of %llu", what,
                      (unsigned long long) have, (unsigned long long) f->size);
          }
        } else if (!status_retryable (r.status)) {
          char w2[700];
          snprintf (w2, sizeof w2, "%s", what);
          st = http_error (h, &r, w2, err);
          break;
        } else {
          char said[400];
          server_message (h, &r, said, sizeof said);
          snprintf (reason, sizeof reason, "%s: HTTP %ld%s", what, r.status, said);
        }
      }
      if (!complete) {
        fails = progressed ? 1 : fails + 1;
        if (fails >= h->max_tries || attempt >= MAX_TOTAL_ATTEMPTS) {
          st = sutra_error_set (err, SUTRA_ERR_NETWORK,
                                "%s (gave up after %d tries; %llu bytes kept in %s, the next "
                                "download resumes there)", reason, attempt,
                                (unsigned long long) have, inc);
          if (err)
            sutra_hub_redact (h, err->message);
          break;
        }
        if (!announce_retry (h, fails + 1, &r, reason)) {
          st = cancelled_error (h, err);
          break;
        }
        continue;
      }
    }
    /* complete: verify, then move into place */
    if (lfs) {
      uint8_t d[32];
      char hex[65];
      sutra_sha256_final (&sha, d);
      sutra_hex_encode (d, 32, hex);
      if (strcmp (hex, f->sha256) != 0) {
        unlink (inc);
        st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                              "%s: SHA-256 mismatch: the Hub lists %s, the download has %s; the "
                              "file was deleted (corrupted transfer or tampering: try again)",
                              what, f->sha256, hex);
        break;
      }
    } else {
      char id[41];
      if ((st = sutra_hub_git_blob_id (fd, have, id, inc, err)))
        break;
      if (strcmp (id, f->git_oid) != 0) {
        unlink (inc);
        st = sutra_error_set (err, SUTRA_ERR_FORMAT,
                              "%s: Git blob id mismatch: the Hub lists %s, the download has %s; "
                              "the file was deleted (try again)", what, f->git_oid, id);
        break;
      }
    }
    if (fsync (fd) != 0) {
      st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "fsync %s", inc);
      break;
    }
    if (rename (inc, blob) != 0) {
      st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot rename %s to %s", inc, blob);
      break;
    }
    st = sutra_fsync_dir (h->blobs_dir, err);
    if (!f->has_size) {
      f->size = have;
      f->has_size = true;
    }
    break;
  }
  sutra_hub_request_clear (&r);
out:
  if (fd >= 0)
    close (fd);
  free (inc);
  free (url);
  return st;
}

static SutraStatus
get_file (SutraHubSession *h, SutraHubFile *f, SutraError *err)
{
  char q[300], what[700];
  snprintf (what, sizeof what, "%s: %s", h->what, sutra_hub_quote (f->path, q, sizeof q));
  char *dst = sutra_path_join (h->snap_dir, f->path);
  h->prog.file = f->path;
  h->prog.file_total = f->has_size ? f->size : 0;
  h->prog.file_done = 0;
  h->prog.cached = false;
  struct stat sb;
  bool linked = stat (dst, &sb) == 0 && S_ISREG (sb.st_mode) &&
                (!f->has_size || (uint64_t) sb.st_size == f->size);
  free (dst);
  if (linked) {
    h->prog.file_done = (uint64_t) sb.st_size;
    h->prog.cached = true;
    sutra_hub_report (h, SUTRA_HUB_EVENT_FILE_DONE);
    return sutra_hub_cancelled (h) ? cancelled_error (h, err) : SUTRA_OK;
  }
  char *blob = sutra_path_join (h->blobs_dir, sutra_hub_etag_of (f));
  SutraStatus st = SUTRA_OK;
  bool cached = sutra_hub_blob_ok (blob, f);
  if (!cached) {
    int lock = -1;
    st = sutra_hub_lock_blob (h->locks_dir, sutra_hub_etag_of (f), &lock, cancel_cb, h, err);
    if (!st) {
      cached = sutra_hub_blob_ok (blob, f);        /* another process may have finished it */
      if (!cached)
        st = fetch_blob (h, f, blob, what, err);
      sutra_hub_unlock_blob (lock);
    }
  }
  free (blob);
  if (!st)
    st = sutra_hub_link_snapshot (h->repo_dir, h->snap_dir, f, err);
  if (!st) {
    h->prog.file_done = h->prog.file_total = f->size;
    h->prog.cached = cached;
    sutra_hub_report (h, SUTRA_HUB_EVENT_FILE_DONE);
    sutra_hub_log (h, SUTRA_LOG_INFO, "hub: %s %s (%llu bytes)",
                   cached ? "cached" : "downloaded", what, (unsigned long long) f->size);
  }
  return st;
}

/* ---- the whole download ---- */

static SutraStatus
hub_setup (SutraHubSession *h, const SutraHubOptions *o, const char *repo_id,
           const char *revision, SutraError *err)
{
  h->o = o;
  h->repo_id = repo_id;
  h->revision = revision ? revision : "main";
  h->max_tries = o->max_tries > 0 ? o->max_tries : DEFAULT_TRIES;
  h->backoff_s = o->backoff_s > 0 ? o->backoff_s : DEFAULT_BACKOFF_S;
  h->stall_s = o->stall_timeout_s > 0 ? o->stall_timeout_s : DEFAULT_STALL_S;
  h->connect_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : DEFAULT_CONNECT_S;
  char q[200];
  if (!repo_id || !sutra_hub_repo_id_is_valid (repo_id))
    return sutra_error_set (err, SUTRA_ERR_INVALID,
                            "'%s' is not a Hugging Face repo id (expected org/name)",
                            sutra_hub_quote (repo_id ? repo_id : "", q, sizeof q));
  if (!*h->revision || strlen (h->revision) > 255 || !sutra_path_is_safe_relative (h->revision))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "'%s' is not a valid revision",
                            sutra_hub_quote (h->revision, q, sizeof q));
  snprintf (h->what, sizeof h->what, "%s@%s", repo_id, h->revision);
  h->prog.repo_id = repo_id;

  const char *ep = o->endpoint ? o->endpoint : getenv ("HF_ENDPOINT");
  if (!ep || !*ep)
    ep = DEFAULT_ENDPOINT;
  size_t el = strlen (ep);
  while (el > 0 && ep[el - 1] == '/')
    el--;
  h->endpoint = sutra_xstrndup (ep, el);
  bool plain = false, creds = false;
  if (!sutra_hub_url_check (h->endpoint, &plain, &creds) || strpbrk (h->endpoint, "?#"))
    return sutra_error_set (err, SUTRA_ERR_INVALID,
                            "HF_ENDPOINT '%s' is not an http(s) URL without query",
                            sutra_hub_quote (h->endpoint, q, sizeof q));
  if (creds)   /* never echo it: the user part may be a secret */
    return sutra_error_set (err, SUTRA_ERR_INVALID,
                            "HF_ENDPOINT must not contain a user name or password; use HF_TOKEN");

  if (o->token) {
    h->token = *o->token ? sutra_xstrdup (o->token) : NULL;
  } else {
    SutraStatus st = sutra_hub_token_find (&h->token, err);
    if (st)
      return st;
  }
  if (h->token) {
    for (const char *p = h->token; *p; p++)
      if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e)
        return sutra_error_set (err, SUTRA_ERR_AUTH, "the Hugging Face token contains spaces "
                                "or control characters (it is not shown here)");
    h->auth_header = sutra_xasprintf ("Authorization: Bearer %s", h->token);
    if (plain)
      sutra_hub_log (h, SUTRA_LOG_WARN,
                     "hub: HF_ENDPOINT %s is plain http: the token travels unencrypted",
                     h->endpoint);
  }

  h->cache = o->cache_dir ? sutra_xstrdup (o->cache_dir) : sutra_hub_cache_dir ();
  h->repo_dir = sutra_hub_repo_dir (h->cache, repo_id);
  h->blobs_dir = sutra_path_join (h->repo_dir, "blobs");
  char *locks = sutra_path_join (h->cache, ".locks");
  h->locks_dir = sutra_path_join (locks, sutra_path_basename (h->repo_dir));
  free (locks);

  return sutra_hub_net_open (h, err);
}

static void
hub_clear (SutraHubSession *h)
{
  sutra_hub_net_close (h);
  if (h->token)
    explicit_bzero (h->token, strlen (h->token));
  if (h->auth_header)
    explicit_bzero (h->auth_header, strlen (h->auth_header));
  free (h->token);
  free (h->auth_header);
  free (h->endpoint);
  free (h->cache);
  free (h->repo_dir);
  free (h->blobs_dir);
  free (h->locks_dir);
  free (h->snap_dir);
}

SutraStatus
sutra_hub_download (const SutraHubOptions *opts, const char *repo_id, const char *revision,
                    const char *const *include, char **snapshot_dir, SutraError *err)
{
  static const SutraHubOptions defaults = { 0 };
  SutraHubSession h = { 0 };
  SutraHubFileList files = { 0 };
  SutraHubFile **sel = NULL;
  SutraStatus st = hub_setup (&h, opts ? opts : &defaults, repo_id, revision, err);
  if (st)
    goto out;
  sutra_hub_log (&h, SUTRA_LOG_INFO, "hub: listing %s from %s", h.what, h.endpoint);
  if ((st = list_files (&h, &files, err)))
    goto out;
  h.prog.commit = h.commit;

  bool has_st = false;
  for (size_t i = 0; i < files.n; i++)
    if (fnmatch ("*.safetensors", files.files[i].path, 0) == 0)
      has_st = true;
  sel = sutra_xcalloc (files.n + 1, sizeof *sel);
  size_t n_sel = 0;
  for (size_t i = 0; i < files.n; i++)
    if (sutra_hub_select (files.files[i].path, include, h.o->exclude, h.o->prefer_safetensors,
                          has_st))
      sel[n_sel++] = &files.files[i];
  if (n_sel == 0) {
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: no file matches the include/exclude "
                          "patterns (%zu files in the repo)", h.what, files.n);
    goto out;
  }
  /* Metadata for files the tree API did not describe. */
  for (size_t i = 0; i < n_sel; i++)
    if (!sutra_hub_etag_of (sel[i])[0] && (st = head_metadata (&h, sel[i], err)))
      goto out;

  char *snaps = sutra_path_join (h.repo_dir, "snapshots");
  h.snap_dir = sutra_path_join (snaps, h.commit);
  free (snaps);
  if ((st = sutra_mkdir_p (h.blobs_dir, err)) || (st = sutra_mkdir_p (h.snap_dir, err)))
    goto out;

  h.prog.n_files = n_sel;
  for (size_t i = 0; i < n_sel; i++)
    h.prog.total += sel[i]->has_size ? sel[i]->size : 0;
  sutra_hub_report (&h, SUTRA_HUB_EVENT_LISTED);
  sutra_hub_log (&h, SUTRA_LOG_INFO, "hub: %s is commit %s; %zu of %zu files selected, %.1f MB",
                 h.what, h.commit, n_sel, files.n, (double) h.prog.total / 1e6);
  for (size_t i = 0; i < n_sel; i++) {
    if (sutra_hub_cancelled (&h)) {
      st = cancelled_error (&h, err);
      goto out;
    }
    h.prog.file_index = i;
    h.prog.attempt = 1;
    if ((st = get_file (&h, sel[i], err)))
      goto out;
    h.done_before += sel[i]->size;
    h.prog.file_done = 0;
    h.prog.file_total = 0;
  }
  /* refs/<revision> last: it only ever names a complete snapshot. */
  if (strcmp (h.revision, h.commit) != 0 &&
      (st = sutra_hub_write_ref (h.repo_dir, h.revision, h.commit, err)))
    goto out;
  *snapshot_dir = sutra_xstrdup (h.snap_dir);
out:
  if (st && err)
    sutra_hub_redact (&h, err->message);
  free (sel);
  sutra_hub_file_list_clear (&files);
  hub_clear (&h);
  return st;
}
