/* sutra-hub.c: Hugging Face Hub downloads over libcurl (the only network code in libsutra).
 *
 * One download = list (revision API, then the paginated tree API, or HEAD per file when the
 * tree API is absent), select (include/exclude globs, prefer_safetensors), then per file:
 * lock, resume blobs/<etag>.incomplete with HTTP Range, verify (size, SHA-256 or Git blob
 * id), rename into blobs/<etag>, link snapshots/<commit>/<path>; finally write refs/<rev>.
 * Transfers run through a curl multi handle polled every 100 ms so a cancel flag is seen
 * quickly even when the server stalls. Redirects are followed by hand so the Authorization
 * header goes only to the endpoint's own scheme+host+port. See docs/hub.md. */
#include "sutra-hub.h"
#include "sutra-hub-api.h"
#include "sutra-hub-cache.h"
#include "sutra-hub-private.h"
#include "sutra-fsutil.h"
#include "sutra-hash.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ENDPOINT   "https://huggingface.co"
#define DEFAULT_TRIES      5
#define DEFAULT_BACKOFF_S  1.0
#define MAX_BACKOFF_S      30.0
#define DEFAULT_STALL_S    60.0
#define DEFAULT_CONNECT_S  30.0
#define MAX_REDIRECTS      10
#define MAX_TREE_PAGES     10000
#define MAX_API_BODY       ((size_t) 64 << 20)  /* a JSON listing larger than this is refused */
#define MAX_ERR_BODY       16384                /* kept from error responses for the message */
#define MAX_TOTAL_ATTEMPTS 1000                 /* per file, even while making progress */
#define POLL_MS            100                  /* cancel latency bound while waiting */
#define PROGRESS_PERIOD_S  0.1
#define HASH_CHUNK         (1 << 20)

/* ---- state ---- */

typedef struct {
  const SutraHubOptions *o;
  char *endpoint;           /* no trailing '/' */
  char *token;              /* NULL: none */
  char *auth_header;        /* "Authorization: Bearer <token>" or NULL */
  char *cache, *repo_dir, *blobs_dir, *locks_dir, *snap_dir;
  const char *repo_id, *revision;
  char what[256];           /* "org/name@rev" for messages */
  char commit[41];
  CURL *curl;
  CURLM *multi;
  int max_tries;
  double backoff_s, stall_s, connect_s;
  bool cancel_cb;           /* the progress callback returned false */
  /* progress */
  SutraHubProgress prog;
  uint64_t done_before;     /* bytes of the files finished before the current one */
  double last_report;
} Hub;

typedef enum { SINK_MEM, SINK_FILE } SinkKind;
typedef enum { BODY_NONE, BODY_MEM, BODY_FILE, BODY_ERR } BodyMode;

typedef struct {
  Hub *h;
  /* request */
  SinkKind sink;
  bool head;
  bool stop_at_foreign_redirect;   /* HEAD metadata: read X-Linked-* from the CDN redirect */
  uint64_t offset;                 /* FILE: resume position (Range: bytes=offset-) */
  int fd;                          /* FILE */
  SutraSha256 *sha;                /* FILE: running hash of the file's bytes, or NULL */
  size_t mem_max;
  /* response */
  long status;
  BodyMode mode;
  char *mem;
  size_t mem_len, mem_cap;
  char errbody[MAX_ERR_BODY + 1];
  size_t errbody_len;
  char *h_content_range, *h_link, *h_etag, *h_linked_etag, *h_linked_size, *h_length,
       *h_error_code, *h_error_message, *h_retry_after;
  uint64_t received;               /* FILE: body bytes written by this response */
  bool restarted;                  /* FILE: server ignored Range; file truncated to 0 */
  bool range_mismatch;             /* FILE: 206 for another range: transfer aborted */
  int write_errno;                 /* FILE: a local write failed */
  char curl_err[CURL_ERROR_SIZE];
} Req;

/* ---- small helpers ---- */

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static bool
cancelled (Hub *h)
{
  return h->cancel_cb || (h->o->cancel && atomic_load (h->o->cancel));
}

/* Replaces every occurrence of the token in s (in place) by "***". Every message built from
 * server data passes through here, so even a server echoing our header cannot leak it. */
static void
redact (const Hub *h, char *s)
{
  if (!h->token || !*h->token)
    return;
  size_t tl = strlen (h->token);
  char *p;
  while ((p = strstr (s, h->token))) {
    memcpy (p, "***", 3);
    memmove (p + 3, p + tl, strlen (p + tl) + 1);
  }
}

static void
hlog (const Hub *h, SutraLogLevel level, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
hlog (const Hub *h, SutraLogLevel level, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  redact (h, buf);
  sutra_log (level, "%s", buf);
}

/* Sleeps d seconds in POLL_MS slices; false when cancelled meanwhile. */
static bool
sleep_cancellable (Hub *h, double d)
{
  double end = now_s () + d;
  for (;;) {
    if (cancelled (h))
      return false;
    double left = end - now_s ();
    if (left <= 0)
      return true;
    double step = left < POLL_MS / 1000.0 ? left : POLL_MS / 1000.0;
    struct timespec ts = { (time_t) step, (long) ((step - (double) (time_t) step) * 1e9) };
    nanosleep (&ts, NULL);
  }
}

/* Percent-encodes everything but RFC 3986 unreserved characters (and '/' when keep_slash). */
static char *
url_quote (const char *s, bool keep_slash)
{
  static const char hex[] = "0123456789ABCDEF";
  char *out = sutra_xmalloc (strlen (s) * 3 + 1), *o = out;
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    if (isalnum (*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' || (keep_slash && *p == '/'))
      *o++ = (char) *p;
    else {
      *o++ = '%';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  *o = '\0';
  return out;
}

typedef struct {
  char *scheme, *host;
  long port;
} Origin;

static void
origin_clear (Origin *o)
{
  curl_free (o->scheme);
  curl_free (o->host);
  memset (o, 0, sizeof *o);
}

/* scheme, host (lower-case) and port (defaulted) of url; false when it does not parse. */
static bool
origin_of (const char *url, Origin *o, bool *has_credentials)
{
  memset (o, 0, sizeof *o);
  CURLU *u = curl_url ();
  char *port = NULL, *user = NULL, *pass = NULL;
  bool ok = curl_url_set (u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get (u, CURLUPART_SCHEME, &o->scheme, 0) == CURLUE_OK &&
            curl_url_get (u, CURLUPART_HOST, &o->host, 0) == CURLUE_OK &&
            curl_url_get (u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
  if (ok) {
    o->port = strtol (port, NULL, 10);
    for (char *c = o->host; *c; c++)
      *c = (char) tolower ((unsigned char) *c);
    for (char *c = o->scheme; *c; c++)
      *c = (char) tolower ((unsigned char) *c);
    if (has_credentials)
      *has_credentials = curl_url_get (u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
                         curl_url_get (u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK;
  } else {
    origin_clear (o);
  }
  curl_free (port);
  curl_free (user);
  curl_free (pass);
  curl_url_cleanup (u);
  return ok;
}

static bool
same_origin (const char *a, const char *b)
{
  Origin x, y;
  bool ok = origin_of (a, &x, NULL) && origin_of (b, &y, NULL) && strcmp (x.scheme, y.scheme) == 0 &&
            strcmp (x.host, y.host) == 0 && x.port == y.port;
  origin_clear (&x);
  origin_clear (&y);
  return ok;
}

/* "host" of url for messages (redirect URLs carry signed query strings: never shown). */
static void
host_of (const char *url, char *buf, size_t n)
{
  Origin o;
  if (origin_of (url, &o, NULL)) {
    snprintf (buf, n, "%s://%s", o.scheme, o.host);
    origin_clear (&o);
  } else {
    snprintf (buf, n, "(unparsable URL)");
  }
}

/* ---- curl plumbing ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_init_once (void)
{
  curl_init_rc = curl_global_init (CURL_GLOBAL_DEFAULT);
}

static void
req_reset_response (Req *r)
{
  char **hdrs[] = { &r->h_content_range, &r->h_link, &r->h_etag, &r->h_linked_etag,
                    &r->h_linked_size, &r->h_length, &r->h_error_code, &r->h_error_message,
                    &r->h_retry_after };
  for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
    free (*hdrs[i]);
    *hdrs[i] = NULL;
  }
  r->status = 0;
  r->mode = BODY_NONE;
  r->mem_len = 0;
  r->errbody_len = 0;
  r->errbody[0] = '\0';
  r->received = 0;
  r->range_mismatch = false;
  r->curl_err[0] = '\0';
}

static void
req_clear (Req *r)
{
  req_reset_response (r);
  free (r->mem);
  r->mem = NULL;
  r->mem_cap = 0;
}

/* The body mode is decided once the headers of a final response are in. */
static bool
decide_body (Req *r)
{
  if (r->head)
    return true;
  if (r->status < 200 || r->status >= 300) {
    r->mode = BODY_ERR;
    return true;
  }
  if (r->sink == SINK_MEM) {
    r->mode = BODY_MEM;
    return true;
  }
  if (r->status == 206) {
    uint64_t s, e, t;
    if (!r->h_content_range || !sutra_hub_parse_content_range (r->h_content_range, &s, &e, &t) ||
        s != r->offset) {
      r->range_mismatch = true;     /* the write callback aborts the transfer */
      r->mode = BODY_ERR;
      return true;
    }
  } else if (r->offset > 0) {
    /* 200 to a Range request: the server sends the whole file; start over. */
    if (ftruncate (r->fd, 0) != 0 || lseek (r->fd, 0, SEEK_SET) != 0) {
      r->write_errno = errno;
      return false;
    }
    r->offset = 0;
    r->restarted = true;
    if (r->sha)
      sutra_sha256_init (r->sha);
  }
  r->mode = BODY_FILE;
  return true;
}

static bool
header_is (const char *line, size_t n, const char *name, const char **value, size_t *vlen)
{
  size_t k = strlen (name);
  if (n <= k || strncasecmp (line, name, k) != 0 || line[k] != ':')
    return false;
  const char *v = line + k + 1, *e = line + n;
  while (v < e && (*v == ' ' || *v == '\t'))
    v++;
  while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
    e--;
  *value = v;
  *vlen = (size_t) (e - v);
  return true;
}

static size_t
header_cb (char *buf, size_t size, size_t nitems, void *data)
{
  Req *r = data;
  size_t n = size * nitems;
  if (n >= 5 && strncmp (buf, "HTTP/", 5) == 0) {
    /* a new response (1xx interim ones included): forget the previous headers */
    req_reset_response (r);
    const char *sp = memchr (buf, ' ', n);
    r->status = sp ? strtol (sp + 1, NULL, 10) : 0;
    return n;
  }
  if ((n == 2 && buf[0] == '\r') || (n == 1 && buf[0] == '\n')) {
    if (r->status >= 200)
      return decide_body (r) ? n : 0;
    return n;
  }
  static const struct {
    const char *name;
    size_t off;
  } wanted[] = {
    { "Content-Range", offsetof (Req, h_content_range) },
    { "Link", offsetof (Req, h_link) },
    { "ETag", offsetof (Req, h_etag) },
    { "X-Linked-Etag", offsetof (Req, h_linked_etag) },
    { "X-Linked-Size", offsetof (Req, h_linked_size) },
    { "Content-Length", offsetof (Req, h_length) },
    { "X-Error-Code", offsetof (Req, h_error_code) },
    { "X-Error-Message", offsetof (Req, h_error_message) },
    { "Retry-After", offsetof (Req, h_retry_after) },
  };
  for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
    const char *v;
    size_t vl;
    if (header_is (buf, n, wanted[i].name, &v, &vl)) {
      char **slot = (char **) ((char *) r + wanted[i].off);
      free (*slot);
      *slot = sutra_xstrndup (v, vl > 8192 ? 8192 : vl);
      break;
    }
  }
  return n;
}

static size_t
write_cb (char *buf, size_t size, size_t nitems, void *data)
{
  Req *r = data;
  size_t n = size * nitems;
  if (cancelled (r->h))
    return 0;
  switch (r->mode) {
  case BODY_MEM:
    if (r->mem_len + n > r->mem_max)
      return 0;                                  /* too large: CURLE_WRITE_ERROR */
    if (r->mem_len + n + 1 > r->mem_cap) {
      r->mem_cap = (r->mem_len + n + 1) * 2;
      r->mem = sutra_xrealloc (r->mem, r->mem_cap);
    }
    memcpy (r->mem + r->mem_len, buf, n);
    r->mem_len += n;
    r->mem[r->mem_len] = '\0';
    return n;
  case BODY_FILE:
    for (size_t done = 0; done < n;) {
      ssize_t w = write (r->fd, buf + done, n - done);
      if (w < 0) {
        if (errno == EINTR)
          continue;
        r->write_errno = errno;
        return 0;
      }
      done += (size_t) w;
    }
    if (r->sha)
      sutra_sha256_update (r->sha, buf, n);
    r->received += n;
    return n;
  case BODY_ERR:
    if (r->range_mismatch)
      return 0;
    if (r->errbody_len < MAX_ERR_BODY) {
      size_t take = MAX_ERR_BODY - r->errbody_len < n ? MAX_ERR_BODY - r->errbody_len : n;
      memcpy (r->errbody + r->errbody_len, buf, take);
      r->errbody_len += take;
      r->errbody[r->errbody_len] = '\0';
    }
    return n;
  case BODY_NONE:
    break;
  }
  return n;
}

static void
report (Hub *h, SutraHubEvent ev)
{
  if (!h->o->progress)
    return;
  h->prog.event = ev;
  h->prog.done = h->done_before + h->prog.file_done;
  if (h->prog.file_total && h->prog.file_done > h->prog.file_total)
    h->prog.done = h->done_before + h->prog.file_total;
  if (!h->o->progress (&h->prog, h->o->user_data))
    h->cancel_cb = true;
}

static int
xferinfo_cb (void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
  Req *r = data;
  Hub *h = r->h;
  if (cancelled (h))
    return 1;
  if (r->sink == SINK_FILE && r->mode == BODY_FILE) {
    double t = now_s ();
    if (t - h->last_report >= PROGRESS_PERIOD_S) {
      h->last_report = t;
      h->prog.file_done = r->offset + (uint64_t) (dlnow > 0 ? dlnow : 0);
      if (!h->prog.file_total && dltotal > 0)
        h->prog.file_total = r->offset + (uint64_t) dltotal;
      report (h, SUTRA_HUB_EVENT_FILE_PROGRESS);
    }
  }
  return cancelled (h) ? 1 : 0;
}

/* Runs one transfer on the multi handle, checking the cancel flag every POLL_MS. */
static CURLcode
run_transfer (Hub *h, bool *was_cancelled)
{
  CURLcode res = CURLE_OK;
  *was_cancelled = false;
  curl_multi_add_handle (h->multi, h->curl);
  int running = 1;
  while (running) {
    CURLMcode mc = curl_multi_perform (h->multi, &running);
    if (mc != CURLM_OK) {
      res = CURLE_RECV_ERROR;
      break;
    }
    if (cancelled (h)) {
      *was_cancelled = true;
      break;
    }
    if (running && curl_multi_poll (h->multi, NULL, 0, POLL_MS, NULL) != CURLM_OK) {
      res = CURLE_RECV_ERROR;
      break;
    }
  }
  if (!*was_cancelled) {
    CURLMsg *m;
    int q;
    while ((m = curl_multi_info_read (h->multi, &q)))
      if (m->msg == CURLMSG_DONE)
        res = m->data.result;
  }
  curl_multi_remove_handle (h->multi, h->curl);
  if (cancelled (h))
    *was_cancelled = true;
  return res;
}

typedef enum {
  XFER_OK,          /* a final HTTP response arrived (any status): look at r->status */
  XFER_RETRY,       /* network trouble: retry may help (reason filled) */
  XFER_FAIL,        /* err set */
  XFER_CANCELLED,
} Xfer;

/* One request with redirects followed by hand. The token rides only on requests to the
 * endpoint's own origin; https never downgrades to http. */
static Xfer
http_request (Hub *h, const char *url0, Req *r, char *reason, size_t reason_n, SutraError *err)
{
  char *url = sutra_xstrdup (url0);
  Xfer x = XFER_FAIL;
  for (int hop = 0;; hop++) {
    req_reset_response (r);
    r->restarted = false;
    curl_easy_reset (h->curl);
    CURL *c = h->curl;
    curl_easy_setopt (c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt (c, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (c, CURLOPT_USERAGENT, "sutra-studio/" SUTRA_VERSION);
    curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT_MS, (long) (h->connect_s * 1000));
    curl_easy_setopt (c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt (c, CURLOPT_LOW_SPEED_TIME, (long) (h->stall_s < 1 ? 1 : h->stall_s));
    curl_easy_setopt (c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt (c, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt (c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt (c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt (c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
    curl_easy_setopt (c, CURLOPT_XFERINFODATA, r);
    curl_easy_setopt (c, CURLOPT_NOPROGRESS, 0L);
    if (r->head)
      curl_easy_setopt (c, CURLOPT_NOBODY, 1L);
    if (r->sink == SINK_MEM)
      curl_easy_setopt (c, CURLOPT_ACCEPT_ENCODING, "");   /* JSON may come compressed */
    char range[64];
    if (r->sink == SINK_FILE && !r->head && r->offset > 0) {
      snprintf (range, sizeof range, "%llu-", (unsigned long long) r->offset);
      curl_easy_setopt (c, CURLOPT_RANGE, range);
    }
    struct curl_slist *hdrs = NULL;
    bool own = h->auth_header && same_origin (url, h->endpoint);
    if (own)
      hdrs = curl_slist_append (hdrs, h->auth_header);
    hdrs = curl_slist_append (hdrs, "Accept: application/json, */*");
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, hdrs);
    char where[160];
    host_of (url, where, sizeof where);
    if (own || !h->auth_header)
      hlog (h, SUTRA_LOG_DEBUG, "hub: %s %s%s", r->head ? "HEAD" : "GET",
            same_origin (url, h->endpoint) ? url : where, own ? " (with token)" : "");
    else
      hlog (h, SUTRA_LOG_DEBUG, "hub: %s %s (redirect target, no token)",
            r->head ? "HEAD" : "GET", where);

    bool was_cancelled;
    CURLcode rc = run_transfer (h, &was_cancelled);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all (hdrs);
    if (was_cancelled) {
      x = XFER_CANCELLED;
      break;
    }
    if (r->write_errno) {
      sutra_error_set_sys (err, SUTRA_ERR_IO, r->write_errno, "%s: writing the download", h->what);
      x = XFER_FAIL;
      break;
    }
    if (r->range_mismatch) {
      snprintf (reason, reason_n, "%s answered a Range request with another range (%s)", where,
                r->h_content_range ? r->h_content_range : "no Content-Range");
      x = XFER_RETRY;
      break;
    }
    if (rc == CURLE_WRITE_ERROR && r->sink == SINK_MEM && r->mem_len + 1 > r->mem_max) {
      sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: the Hub API response is larger than %zu MB",
                       h->what, r->mem_max >> 20);
      x = XFER_FAIL;
      break;
    }
    if (rc != CURLE_OK) {
      snprintf (reason, reason_n, "%s: %s%s%s", where, curl_easy_strerror (rc),
                r->curl_err[0] ? ": " : "", r->curl_err);
      x = XFER_RETRY;
      break;
    }
    long code = 0;
    curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &code);
    r->status = code;
    if (code >= 300 && code < 400 && code != 304) {
      char *loc = NULL;
      curl_easy_getinfo (c, CURLINFO_REDIRECT_URL, &loc);
      if (!loc) {
        sutra_error_set (err, SUTRA_ERR_NETWORK, "%s: HTTP %ld from %s without a Location",
                         h->what, code, where);
        break;
      }
      char target[160];
      host_of (loc, target, sizeof target);
      Origin from, to;
      bool ok_from = origin_of (url, &from, NULL), ok_to = origin_of (loc, &to, NULL);
      bool downgrade = ok_from && ok_to && strcmp (from.scheme, "https") == 0 &&
                       strcmp (to.scheme, "https") != 0;
      bool bad_scheme = !ok_to || (strcmp (to.scheme, "http") != 0 && strcmp (to.scheme, "https") != 0);
      bool foreign = !ok_to || !same_origin (loc, h->endpoint);
      origin_clear (&from);
      origin_clear (&to);
      if (bad_scheme || downgrade) {
        sutra_error_set (err, SUTRA_ERR_NETWORK, "%s: refusing a redirect from %s to %s%s",
                         h->what, where, target, downgrade ? " (https to http)" : "");
        break;
      }
      if (r->stop_at_foreign_redirect && foreign) {
        x = XFER_OK;                 /* the caller reads the X-Linked-* headers of this 3xx */
        break;
      }
      if (hop + 1 >= MAX_REDIRECTS) {
        sutra_error_set (err, SUTRA_ERR_NETWORK, "%s: more than %d redirects (last to %s)",
                         h->what, MAX_REDIRECTS, target);
        break;
      }
      char *next = sutra_xstrdup (loc);
      free (url);
      url = next;
      continue;
    }
    x = XFER_OK;
    break;
  }
  free (url);
  if (x == XFER_RETRY)
    redact (h, reason);
  return x;
}

/* The server's own words about an error: X-Error-Message or {"error": "..."}; quoted. */
static void
server_message (const Hub *h, const Req *r, char *buf, size_t n)
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
  redact (h, raw);
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
http_error (Hub *h, const Req *r, const char *what, SutraError *err)
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
  redact (h, err ? err->message : said);
  return st;
}

static double
retry_delay (Hub *h, int attempt, const Req *r)
{
  double d = h->backoff_s;
  for (int i = 2; i < attempt && d < MAX_BACKOFF_S; i++)
    d *= 2;
  if (d > MAX_BACKOFF_S)
    d = MAX_BACKOFF_S;
  if (r && r->h_retry_after) {             /* 429/503 may say how long to wait (seconds) */
    char *end;
    double ra = strtod (r->h_retry_after, &end);
    if (end != r->h_retry_after && ra > d)
      d = ra < MAX_BACKOFF_S ? ra : MAX_BACKOFF_S;
  }
  return d;
}

/* Tells the caller and waits before `attempt`; false when cancelled. */
static bool
announce_retry (Hub *h, int attempt, const Req *r, const char *reason)
{
  double d = retry_delay (h, attempt, r);
  hlog (h, SUTRA_LOG_WARN, "hub: %s; retry %d of %d in %.2g s", reason, attempt - 1,
        h->max_tries - 1, d);
  h->prog.attempt = attempt;
  h->prog.retry_delay_s = d;
  h->prog.reason = reason;
  report (h, SUTRA_HUB_EVENT_RETRY);
  h->prog.reason = NULL;
  return sleep_cancellable (h, d);
}

static SutraStatus
cancelled_error (Hub *h, SutraError *err)
{
  return sutra_error_set (err, SUTRA_ERR_CANCELLED, "%s: download cancelled%s", h->what,
                          h->prog.file ? "; partial files are kept and resume next time" : "");
}

/* GET (or HEAD) into memory with retries. On success r->status is 2xx (or the 3xx kept by
 * stop_at_foreign_redirect); statuses in `pass` are returned to the caller unmapped. */
static SutraStatus
api_request (Hub *h, const char *url, Req *r, const char *what, const long *pass, SutraError *err)
{
  char reason[600];
  for (int attempt = 1;; attempt++) {
    reason[0] = '\0';
    Xfer x = http_request (h, url, r, reason, sizeof reason, err);
    if (x == XFER_CANCELLED)
      return cancelled_error (h, err);
    if (x == XFER_FAIL)
      return err ? err->code : SUTRA_ERR_NETWORK;
    if (x == XFER_OK) {
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
        redact (h, err->message);
      return st;
    }
    if (!announce_retry (h, attempt + 1, r, reason))
      return cancelled_error (h, err);
  }
}

/* ---- listing ---- */

static SutraStatus
list_files (Hub *h, SutraHubFileList *files, SutraError *err)
{
  char *qrev = url_quote (h->revision, false);
  char *url = sutra_xasprintf ("%s/api/models/%s/revision/%s", h->endpoint, h->repo_id, qrev);
  free (qrev);
  Req r = { .h = h, .sink = SINK_MEM, .mem_max = MAX_API_BODY, .fd = -1 };
  SutraStatus st = api_request (h, url, &r, h->what, NULL, err);
  free (url);
  if (!st)
    st = sutra_hub_parse_revision (r.mem ? r.mem : "", r.mem_len, h->what, h->commit, files, err);
  if (st) {
    req_clear (&r);
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
      hlog (h, SUTRA_LOG_INFO, "hub: %s has no tree API; reading file metadata one by one",
            h->endpoint);
      break;
    }
    st = sutra_hub_parse_tree (r.mem ? r.mem : "", r.mem_len, what, files, err);
    if (st)
      break;
    char *next = r.h_link ? sutra_hub_parse_link_next (r.h_link) : NULL;
    free (url);
    url = NULL;
    if (next && !same_origin (next, h->endpoint)) {
      char where[160];
      host_of (next, where, sizeof where);
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: the next listing page points to %s, "
                            "outside %s; refusing", h->what, where, h->endpoint);
      free (next);
      break;
    }
    url = next;
  }
  free (url);
  req_clear (&r);
  return st;
}

/* HEAD {endpoint}/{repo}/resolve/{commit}/{path}: ETag / X-Linked-Etag / X-Linked-Size, the
 * metadata huggingface_hub itself reads, for files the tree API did not describe. */
static SutraStatus
head_metadata (Hub *h, SutraHubFile *f, SutraError *err)
{
  char *qpath = url_quote (f->path, true);
  char *url = sutra_xasprintf ("%s/%s/resolve/%s/%s", h->endpoint, h->repo_id, h->commit, qpath);
  free (qpath);
  char what[600], q[300];
  snprintf (what, sizeof what, "%s: %s", h->what, sutra_hub_quote (f->path, q, sizeof q));
  Req r = { .h = h, .sink = SINK_MEM, .head = true, .stop_at_foreign_redirect = true,
            .mem_max = MAX_ERR_BODY, .fd = -1 };
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
  req_clear (&r);
  return st;
}

/* ---- selection ---- */

static bool
glob_match (const char *pat, const char *path)
{
  size_t n = strlen (pat);
  if (n && pat[n - 1] == '/') {                    /* "dir/" means everything under dir */
    char *p2 = sutra_xasprintf ("%s*", pat);
    bool m = fnmatch (p2, path, 0) == 0;
    free (p2);
    return m;
  }
  return fnmatch (pat, path, 0) == 0;
}

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

static bool
selected (const Hub *h, const char *path, const char *const *include, bool has_st)
{
  bool any_include = include && include[0];
  if (any_include) {
    bool m = false;
    for (const char *const *g = include; *g && !m; g++)
      m = glob_match (*g, path);
    if (!m)
      return false;
  }
  for (const char *const *g = h->o->exclude; g && *g; g++)
    if (glob_match (*g, path))
      return false;
  if (h->o->prefer_safetensors && has_st && !any_include && is_other_weight (path))
    return false;
  return true;
}

/* ---- one file ---- */

static const char *
etag_of (const SutraHubFile *f)
{
  return f->sha256[0] ? f->sha256 : f->git_oid;
}

/* Hashes the first n bytes of fd into sha (resuming a download). */
static SutraStatus
hash_prefix (Hub *h, int fd, uint64_t n, SutraSha256 *sha, const char *path, SutraError *err)
{
  char *buf = sutra_xmalloc (HASH_CHUNK);
  uint64_t off = 0;
  SutraStatus st = SUTRA_OK;
  while (off < n) {
    if (cancelled (h)) {
      st = cancelled_error (h, err);
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

/* Git blob id of the whole file: SHA-1("blob <size>\0" + bytes). */
static SutraStatus
git_blob_id (int fd, uint64_t size, char out[41], const char *path, SutraError *err)
{
  SutraSha1 s;
  sutra_sha1_init (&s);
  char hdr[48];
  int hn = snprintf (hdr, sizeof hdr, "blob %llu", (unsigned long long) size);
  sutra_sha1_update (&s, hdr, (size_t) hn + 1);       /* includes the NUL */
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

/* flock on .locks/models--org--name/<etag>.lock, the lock huggingface_hub also takes, so two
 * processes never write the same blob. Waits (cancellably) while another holds it. */
static SutraStatus
lock_blob (Hub *h, const char *etag, int *fd_out, SutraError *err)
{
  SutraStatus st = sutra_mkdir_p (h->locks_dir, err);
  if (st)
    return st;
  char *name = sutra_xasprintf ("%s.lock", etag);
  char *p = sutra_path_join (h->locks_dir, name);
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
      hlog (h, SUTRA_LOG_INFO, "hub: waiting for another download of the same file (%s)", p);
      told = true;
    }
    if (!sleep_cancellable (h, POLL_MS / 1000.0)) {
      st = cancelled_error (h, err);
      break;
    }
  }
  free (p);
  if (st) {
    close (fd);
    return st;
  }
  *fd_out = fd;
  return SUTRA_OK;
}

static void
unlock_blob (int fd)
{
  if (fd >= 0) {
    flock (fd, LOCK_UN);
    close (fd);
  }
}

static bool
blob_ok (const char *blob, const SutraHubFile *f)
{
  struct stat st;
  return lstat (blob, &st) == 0 && S_ISREG (st.st_mode) &&
         (!f->has_size || (uint64_t) st.st_size == f->size);
}

/* Downloads f into blobs/<etag> (resuming <etag>.incomplete), verified; lock held by caller. */
static SutraStatus
fetch_blob (Hub *h, SutraHubFile *f, const char *blob, const char *what, SutraError *err)
{
  char *inc = sutra_xasprintf ("%s.incomplete", blob);
  char *qpath = url_quote (f->path, true);
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
    hlog (h, SUTRA_LOG_INFO, "hub: resuming %s at byte %llu", what, (unsigned long long) have);
    if (lfs && (st = hash_prefix (h, fd, have, &sha, inc, err)))
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
  report (h, SUTRA_HUB_EVENT_FILE_START);

  Req r = { .h = h, .sink = SINK_FILE, .fd = fd, .sha = lfs ? &sha : NULL };
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
      Xfer x = http_request (h, url, &r, reason, sizeof reason, err);
      struct stat now;
      uint64_t size_now = fstat (fd, &now) == 0 ? (uint64_t) now.st_size : have;
      bool progressed = size_now > have || r.restarted;
      have = size_now;
      if (x == XFER_CANCELLED) {
        st = cancelled_error (h, err);
        break;
      }
      if (x == XFER_FAIL) {
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
      if (x == XFER_OK) {
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
            redact (h, err->message);
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
      if ((st = git_blob_id (fd, have, id, inc, err)))
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
  req_clear (&r);
out:
  if (fd >= 0)
    close (fd);
  free (inc);
  free (url);
  return st;
}

/* snapshots/<commit>/<path> -> ../../blobs/<etag> (one more "../" per folder in path),
 * created beside the target and renamed over it. */
static SutraStatus
link_snapshot (Hub *h, const SutraHubFile *f, SutraError *err)
{
  char *dst = sutra_path_join (h->snap_dir, f->path);
  char *parent = sutra_path_dirname (dst);
  SutraStatus st = sutra_mkdir_p (parent, err);
  if (!st)
    st = sutra_path_check_inside (h->repo_dir, parent, err);
  if (st)
    goto out;
  size_t depth = 0;
  for (const char *p = f->path; *p; p++)
    depth += *p == '/';
  size_t cap = (depth + 2) * 3 + 80;
  char *target = sutra_xmalloc (cap), *t = target;
  for (size_t i = 0; i < depth + 2; i++, t += 3)
    memcpy (t, "../", 3);
  snprintf (t, cap - (size_t) (t - target), "blobs/%s", etag_of (f));
  char *tmp = sutra_xasprintf ("%s.tmp-link-%d", dst, (int) getpid ());
  unlink (tmp);
  if (symlink (target, tmp) != 0)
    st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot create the link %s", tmp);
  else if (rename (tmp, dst) != 0) {
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

static SutraStatus
get_file (Hub *h, SutraHubFile *f, SutraError *err)
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
    report (h, SUTRA_HUB_EVENT_FILE_DONE);
    return cancelled (h) ? cancelled_error (h, err) : SUTRA_OK;
  }
  char *blob = sutra_path_join (h->blobs_dir, etag_of (f));
  SutraStatus st = SUTRA_OK;
  bool cached = blob_ok (blob, f);
  if (!cached) {
    int lock = -1;
    st = lock_blob (h, etag_of (f), &lock, err);
    if (!st) {
      cached = blob_ok (blob, f);                  /* another process may have finished it */
      if (!cached)
        st = fetch_blob (h, f, blob, what, err);
      unlock_blob (lock);
    }
  }
  free (blob);
  if (!st)
    st = link_snapshot (h, f, err);
  if (!st) {
    h->prog.file_done = h->prog.file_total = f->size;
    h->prog.cached = cached;
    report (h, SUTRA_HUB_EVENT_FILE_DONE);
    hlog (h, SUTRA_LOG_INFO, "hub: %s %s (%llu bytes)", cached ? "cached" : "downloaded", what,
          (unsigned long long) f->size);
  }
  return st;
}

/* ---- the whole download ---- */

static SutraStatus
hub_setup (Hub *h, const SutraHubOptions *o, const char *repo_id, const char *revision,
           SutraError *err)
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
  Origin org;
  bool creds = false;
  if (!origin_of (h->endpoint, &org, &creds) ||
      (strcmp (org.scheme, "http") != 0 && strcmp (org.scheme, "https") != 0) ||
      strpbrk (h->endpoint, "?#")) {
    origin_clear (&org);
    return sutra_error_set (err, SUTRA_ERR_INVALID,
                            "HF_ENDPOINT '%s' is not an http(s) URL without query",
                            sutra_hub_quote (h->endpoint, q, sizeof q));
  }
  bool plain = strcmp (org.scheme, "http") == 0 && strcmp (org.host, "127.0.0.1") != 0 &&
               strcmp (org.host, "localhost") != 0 && strcmp (org.host, "[::1]") != 0;
  origin_clear (&org);
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
      hlog (h, SUTRA_LOG_WARN, "hub: HF_ENDPOINT %s is plain http: the token travels "
            "unencrypted", h->endpoint);
  }

  h->cache = o->cache_dir ? sutra_xstrdup (o->cache_dir) : sutra_hub_cache_dir ();
  h->repo_dir = sutra_hub_repo_dir (h->cache, repo_id);
  h->blobs_dir = sutra_path_join (h->repo_dir, "blobs");
  char *locks = sutra_path_join (h->cache, ".locks");
  h->locks_dir = sutra_path_join (locks, sutra_path_basename (h->repo_dir));
  free (locks);

  pthread_once (&curl_once, curl_init_once);
  if (curl_init_rc != CURLE_OK)
    return sutra_error_set (err, SUTRA_ERR_NETWORK, "libcurl failed to initialise: %s",
                            curl_easy_strerror (curl_init_rc));
  h->curl = curl_easy_init ();
  h->multi = curl_multi_init ();
  if (!h->curl || !h->multi)
    return sutra_error_set (err, SUTRA_ERR_NOMEM, "libcurl: cannot create a transfer handle");
  return SUTRA_OK;
}

static void
hub_clear (Hub *h)
{
  if (h->curl)
    curl_easy_cleanup (h->curl);
  if (h->multi)
    curl_multi_cleanup (h->multi);
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
  Hub h = { 0 };
  SutraHubFileList files = { 0 };
  SutraHubFile **sel = NULL;
  SutraStatus st = hub_setup (&h, opts ? opts : &defaults, repo_id, revision, err);
  if (st)
    goto out;
  hlog (&h, SUTRA_LOG_INFO, "hub: listing %s from %s", h.what, h.endpoint);
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
    if (selected (&h, files.files[i].path, include, has_st))
      sel[n_sel++] = &files.files[i];
  if (n_sel == 0) {
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND, "%s: no file matches the include/exclude "
                          "patterns (%zu files in the repo)", h.what, files.n);
    goto out;
  }
  /* Metadata for files the tree API did not describe. */
  for (size_t i = 0; i < n_sel; i++)
    if (!etag_of (sel[i])[0] && (st = head_metadata (&h, sel[i], err)))
      goto out;

  char *snaps = sutra_path_join (h.repo_dir, "snapshots");
  h.snap_dir = sutra_path_join (snaps, h.commit);
  free (snaps);
  if ((st = sutra_mkdir_p (h.blobs_dir, err)) || (st = sutra_mkdir_p (h.snap_dir, err)))
    goto out;

  h.prog.n_files = n_sel;
  for (size_t i = 0; i < n_sel; i++)
    h.prog.total += sel[i]->has_size ? sel[i]->size : 0;
  report (&h, SUTRA_HUB_EVENT_LISTED);
  hlog (&h, SUTRA_LOG_INFO, "hub: %s is commit %s; %zu of %zu files selected, %.1f MB", h.what,
        h.commit, n_sel, files.n, h.prog.total / 1e6);
  for (size_t i = 0; i < n_sel; i++) {
    if (cancelled (&h)) {
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
  if (strcmp (h.revision, h.commit) != 0) {
    char *refs = sutra_path_join (h.repo_dir, "refs");
    char *ref = sutra_path_join (refs, h.revision);
    char *parent = sutra_path_dirname (ref);
    st = sutra_mkdir_p (parent, err);
    if (!st)
      st = sutra_path_check_inside (h.repo_dir, parent, err);
    if (!st)
      st = sutra_write_file_atomic (ref, h.commit, 40, err);
    free (parent);
    free (ref);
    free (refs);
    if (st)
      goto out;
  }
  *snapshot_dir = sutra_xstrdup (h.snap_dir);
out:
  if (st && err)
    redact (&h, err->message);
  free (sel);
  sutra_hub_file_list_clear (&files);
  hub_clear (&h);
  return st;
}
