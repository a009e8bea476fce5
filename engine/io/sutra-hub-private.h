/* sutra-hub-private.h: helpers shared by the hub's .c files. sutra-hub.c talks to the network
 * (the only file using libcurl); sutra-hub-store.c writes the cache (locks, verification,
 * links, refs); sutra-hub-api.c parses; sutra-hub-cache.c reads the cache. */
#pragma once
#include "sutra-error.h"
#include "sutra-hash.h"
#include "sutra-hub-api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copies s into buf (size n) for an error message: non-printable bytes become \xNN and
 * long names are cut with "...", so a server cannot inject terminal escapes into logs. */
const char *sutra_hub_quote (const char *s, char *buf, size_t n);

/* Polled while waiting or hashing; true = stop (the caller reports SUTRA_ERR_CANCELLED). */
typedef bool (*SutraHubCancelFunc) (void *data);

/* Include globs (NULL/empty = all; "dir/" = "dir/ *"), exclude globs, and the
 * prefer_safetensors rule (applies only without include globs, when repo_has_st). */
bool        sutra_hub_select (const char *path, const char *const *include,
                              const char *const *exclude, bool prefer_st, bool repo_has_st);
/* Blob name: the LFS sha256, else the Git blob id. */
const char *sutra_hub_etag_of (const SutraHubFile *f);
/* blobs/<etag> exists (following a symlink) as a regular file of the listed size. */
bool        sutra_hub_blob_ok (const char *blob, const SutraHubFile *f);
/* Adds the first n bytes of fd to sha (resuming a download). */
SutraStatus sutra_hub_hash_prefix (int fd, uint64_t n, SutraSha256 *sha, const char *path,
                                   SutraHubCancelFunc cancel, void *data, SutraError *err);
/* Git blob id of fd's first `size` bytes: SHA-1("blob <size>\0" + bytes), lower-case hex. */
SutraStatus sutra_hub_git_blob_id (int fd, uint64_t size, char out[41], const char *path,
                                   SutraError *err);
/* flock(2) on <locks_dir>/<etag>.lock (huggingface_hub's lock), waiting while another process
 * holds it. *fd_out is released with sutra_hub_unlock_blob. SUTRA_ERR_CANCELLED when cancel
 * says so while waiting. */
SutraStatus sutra_hub_lock_blob   (const char *locks_dir, const char *etag, int *fd_out,
                                   SutraHubCancelFunc cancel, void *data, SutraError *err);
void        sutra_hub_unlock_blob (int fd);
/* snapshot_dir/<path> -> relative link to ../../blobs/<etag> (one more ../ per folder in
 * path), made beside the target and renamed over it; parents must stay inside repo_dir. */
SutraStatus sutra_hub_link_snapshot (const char *repo_dir, const char *snapshot_dir,
                                     const SutraHubFile *f, SutraError *err);
/* refs/<revision> = commit (40 hex, no newline, as huggingface_hub writes it), atomically. */
SutraStatus sutra_hub_write_ref (const char *repo_dir, const char *revision,
                                 const char *commit, SutraError *err);

/* ---- download session and HTTP transport ---- */
#include "sutra-hub.h"

#define SUTRA_HUB_MAX_ERR_BODY 16384   /* kept from error responses for the message */
#define SUTRA_HUB_MAX_BACKOFF_S 30.0


typedef struct SutraHubSession {
  const SutraHubOptions *o;
  char *endpoint;           /* no trailing '/' */
  char *token;              /* NULL: none */
  char *auth_header;        /* "Authorization: Bearer <token>" or NULL */
  char *cache, *repo_dir, *blobs_dir, *locks_dir, *snap_dir;
  const char *repo_id, *revision;
  char what[256];           /* "org/name@rev" for messages */
  char commit[41];
  void *curl;               /* CURL * (only sutra-hub.c sees libcurl) */
  void *multi;              /* CURLM * */
  int max_tries;
  double backoff_s, stall_s, connect_s;
  bool cancel_cb;           /* the progress callback returned false */
  /* progress */
  SutraHubProgress prog;
  uint64_t done_before;     /* bytes of the files finished before the current one */
  double last_report;
} SutraHubSession;         /* one download (sutra-hub-download.c) */

typedef enum { SUTRA_HUB_SINK_MEM, SUTRA_HUB_SINK_FILE } SutraHubSink;
typedef enum {
  SUTRA_HUB_BODY_NONE, SUTRA_HUB_BODY_MEM, SUTRA_HUB_BODY_FILE, SUTRA_HUB_BODY_ERR
} SutraHubBody;

typedef struct SutraHubRequest {
  struct SutraHubSession *h;
  /* request */
  SutraHubSink sink;
  bool head;
  bool stop_at_foreign_redirect;   /* HEAD metadata: read X-Linked-* from the CDN redirect */
  uint64_t offset;                 /* FILE: resume position (Range: bytes=offset-) */
  int fd;                          /* FILE */
  SutraSha256 *sha;                /* FILE: running hash of the file's bytes, or NULL */
  size_t mem_max;
  /* response */
  long status;
  SutraHubBody mode;
  char *mem;
  size_t mem_len, mem_cap;
  char errbody[SUTRA_HUB_MAX_ERR_BODY + 1];
  size_t errbody_len;
  char *h_content_range, *h_link, *h_etag, *h_linked_etag, *h_linked_size, *h_length,
       *h_error_code, *h_error_message, *h_retry_after;
  uint64_t received;               /* FILE: body bytes written by this response */
  bool restarted;                  /* FILE: server ignored Range; file truncated to 0 */
  bool range_mismatch;             /* FILE: 206 for another range: transfer aborted */
  int write_errno;                 /* FILE: a local write failed */
  char curl_err[256];              /* CURL_ERROR_SIZE */
} SutraHubRequest;         /* one HTTP exchange, redirects included */

typedef enum {
  SUTRA_HUB_XFER_OK,         /* a final HTTP response arrived (any status): see r->status */
  SUTRA_HUB_XFER_RETRY,      /* network trouble: a retry may help (reason filled) */
  SUTRA_HUB_XFER_FAIL,       /* err set */
  SUTRA_HUB_XFER_CANCELLED,
} SutraHubXfer;

/* sutra-hub.c (libcurl): */
SutraStatus  sutra_hub_net_open   (SutraHubSession *h, SutraError *err);
void         sutra_hub_net_close  (SutraHubSession *h);
/* One request, redirects followed by hand: the token only to the endpoint's origin, never
 * from https down to http; stop_at_foreign_redirect returns the first 3xx leaving it. */
SutraHubXfer sutra_hub_http_request (SutraHubSession *h, const char *url, SutraHubRequest *r,
                                     char *reason, size_t reason_n, SutraError *err);
void         sutra_hub_request_clear (SutraHubRequest *r);
bool         sutra_hub_cancelled   (SutraHubSession *h);
void         sutra_hub_report      (SutraHubSession *h, SutraHubEvent ev);
/* Replaces the token by "***" in s (in place). */
void         sutra_hub_redact      (const SutraHubSession *h, char *s);
void         sutra_hub_log         (const SutraHubSession *h, SutraLogLevel level,
                                    const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
/* Sleeps d seconds in short slices; false when cancelled meanwhile. */
bool         sutra_hub_sleep       (SutraHubSession *h, double d);
/* Percent-encodes all but RFC 3986 unreserved characters (and '/' when keep_slash). */
char        *sutra_hub_url_quote   (const char *s, bool keep_slash);
bool         sutra_hub_same_origin (const char *a, const char *b);
/* "scheme://host" of url, for messages (signed CDN query strings are never shown). */
void         sutra_hub_host_of     (const char *url, char *buf, size_t n);
/* Parses an endpoint URL: false unless http(s); *plain_remote = http to a non-loopback host. */
bool         sutra_hub_url_check   (const char *url, bool *plain_remote, bool *has_credentials);
