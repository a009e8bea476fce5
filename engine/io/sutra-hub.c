/* sutra-hub.c: the HTTP transport of the Hub downloader, the only code in libsutra that
 * uses libcurl (the network). One request = one curl easy handle run through a multi handle
 * polled every 100 ms, so a cancel flag is seen quickly even when the server stalls.
 * Redirects are followed by hand so the Authorization header goes only to the endpoint's
 * own scheme+host+port and https never downgrades to http; every message that may carry
 * server text is scrubbed of the token. The download logic is in sutra-hub-download.c. */
#include "sutra-hub-private.h"
#include "sutra-hub-api.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_REDIRECTS      10
#define POLL_MS            100                  /* cancel latency bound while waiting */
#define PROGRESS_PERIOD_S  0.1

_Static_assert (CURL_ERROR_SIZE <= sizeof ((SutraHubRequest *) 0)->curl_err,
                "curl error buffer too small");

/* ---- small helpers ---- */

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

bool
sutra_hub_cancelled (SutraHubSession *h)
{
  return h->cancel_cb || (h->o->cancel && atomic_load (h->o->cancel));
}

/* Replaces every occurrence of the token in s (in place) by "***". Every message built from
 * server data passes through here, so even a server echoing our header cannot leak it. */
void
sutra_hub_redact (const SutraHubSession *h, char *s)
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

void
sutra_hub_log (const SutraHubSession *h, SutraLogLevel level, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  sutra_hub_redact (h, buf);
  sutra_log (level, "%s", buf);
}

/* Sleeps d seconds in POLL_MS slices; false when cancelled meanwhile. */
bool
sutra_hub_sleep (SutraHubSession *h, double d)
{
  double end = now_s () + d;
  for (;;) {
    if (sutra_hub_cancelled (h))
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
char *
sutra_hub_url_quote (const char *s, bool keep_slash)
{
  static const char hex[] = "0123456789ABCDEF";
  char *out = sutra_xmalloc (strlen (s) * 3 + 1), *o = out;
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    if (isalnum (*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
        (keep_slash && *p == '/'))
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

bool
sutra_hub_same_origin (const char *a, const char *b)
{
  Origin x, y;
  bool ok = origin_of (a, &x, NULL) && origin_of (b, &y, NULL) &&
            strcmp (x.scheme, y.scheme) == 0 &&
            strcmp (x.host, y.host) == 0 && x.port == y.port;
  origin_clear (&x);
  origin_clear (&y);
  return ok;
}

/* "host" of url for messages (redirect URLs carry signed query strings: never shown). */
void
sutra_hub_host_of (const char *url, char *buf, size_t n)
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
req_reset_response (SutraHubRequest *r)
{
  char **hdrs[] = { &r->h_content_range, &r->h_link, &r->h_etag, &r->h_linked_etag,
                    &r->h_linked_size, &r->h_length, &r->h_error_code, &r->h_error_message,
                    &r->h_retry_after };
  for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
    free (*hdrs[i]);
    *hdrs[i] = NULL;
  }
  r->status = 0;
  r->mode = SUTRA_HUB_BODY_NONE;
  r->mem_len = 0;
  r->errbody_len = 0;
  r->errbody[0] = '\0';
  r->received = 0;
  r->range_mismatch = false;
  r->curl_err[0] = '\0';
}

void
sutra_hub_request_clear (SutraHubRequest *r)
{
  req_reset_response (r);
  free (r->mem);
  r->mem = NULL;
  r->mem_cap = 0;
}

/* The body mode is decided once the headers of a final response are in. */
static bool
decide_body (SutraHubRequest *r)
{
  if (r->head)
    return true;
  if (r->status < 200 || r->status >= 300) {
    r->mode = SUTRA_HUB_BODY_ERR;
    return true;
  }
  if (r->sink == SUTRA_HUB_SINK_MEM) {
    r->mode = SUTRA_HUB_BODY_MEM;
    return true;
  }
  if (r->status == 206) {
    uint64_t s, e, t;
    if (!r->h_content_range || !sutra_hub_parse_content_range (r->h_content_range, &s, &e, &t) ||
        s != r->offset) {
      r->range_mismatch = true;     /* the write callback aborts the transfer */
      r->mode = SUTRA_HUB_BODY_ERR;
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
  r->mode = SUTRA_HUB_BODY_FILE;
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
  SutraHubRequest *r = data;
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
    { "Content-Range", offsetof (SutraHubRequest, h_content_range) },
    { "Link", offsetof (SutraHubRequest, h_link) },
    { "ETag", offsetof (SutraHubRequest, h_etag) },
    { "X-Linked-Etag", offsetof (SutraHubRequest, h_linked_etag) },
    { "X-Linked-Size", offsetof (SutraHubRequest, h_linked_size) },
    { "Content-Length", offsetof (SutraHubRequest, h_length) },
    { "X-Error-Code", offsetof (SutraHubRequest, h_error_code) },
    { "X-Error-Message", offsetof (SutraHubRequest, h_error_message) },
    { "Retry-After", offsetof (SutraHubRequest, h_retry_after) },
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
  SutraHubRequest *r = data;
  size_t n = size * nitems;
  if (sutra_hub_cancelled (r->h))
    return 0;
  switch (r->mode) {
  case SUTRA_HUB_BODY_MEM:
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
  case SUTRA_HUB_BODY_FILE:
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
  case SUTRA_HUB_BODY_ERR:
    if (r->range_mismatch)
      return 0;
    if (r->errbody_len < SUTRA_HUB_MAX_ERR_BODY) {
      size_t room = SUTRA_HUB_MAX_ERR_BODY - r->errbody_len, take = room < n ? room : n;
      memcpy (r->errbody + r->errbody_len, buf, take);
      r->errbody_len += take;
      r->errbody[r->errbody_len] = '\0';
    }
    return n;
  case SUTRA_HUB_BODY_NONE:
    break;
  }
  return n;
}

void
sutra_hub_report (SutraHubSession *h, SutraHubEvent ev)
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
  SutraHubRequest *r = data;
  SutraHubSession *h = r->h;
  if (sutra_hub_cancelled (h))
    return 1;
  if (r->sink == SUTRA_HUB_SINK_FILE && r->mode == SUTRA_HUB_BODY_FILE) {
    double t = now_s ();
    if (t - h->last_report >= PROGRESS_PERIOD_S) {
      h->last_report = t;
      h->prog.file_done = r->offset + (uint64_t) (dlnow > 0 ? dlnow : 0);
      if (!h->prog.file_total && dltotal > 0)
        h->prog.file_total = r->offset + (uint64_t) dltotal;
      sutra_hub_report (h, SUTRA_HUB_EVENT_FILE_PROGRESS);
    }
  }
  return sutra_hub_cancelled (h) ? 1 : 0;
}

/* Runs one transfer on the multi handle, checking the cancel flag every POLL_MS. */
static CURLcode
run_transfer (SutraHubSession *h, bool *was_cancelled)
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
    if (sutra_hub_cancelled (h)) {
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
  if (sutra_hub_cancelled (h))
    *was_cancelled = true;
  return res;
}

/* One request with redirects followed by hand. The token rides only on requests to the
 * endpoint's own origin; https never downgrades to http. */
SutraHubXfer
sutra_hub_http_request (SutraHubSession *h, const char *url0, SutraHubRequest *r, char *reason,
                        size_t reason_n, SutraError *err)
{
  char *url = sutra_xstrdup (url0);
  SutraHubXfer x = SUTRA_HUB_XFER_FAIL;
  for (int hop = 0;; hop++) {
    req_reset_response (r);
    r->restarted = false;
    curl_easy_reset ((CURL *) h->curl);
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
    /* API JSON may come compressed; file bytes and HEAD sizes must not (Range offsets and
     * Content-Length refer to the stored bytes, as huggingface_hub also insists). */
    bool identity = r->head || r->sink == SUTRA_HUB_SINK_FILE;
    if (!identity)
      curl_easy_setopt (c, CURLOPT_ACCEPT_ENCODING, "");
    if (r->sink == SUTRA_HUB_SINK_FILE)
      curl_easy_setopt (c, CURLOPT_BUFFERSIZE, 256L * 1024);  /* fewer write(2) calls */
    char range[64];
    if (r->sink == SUTRA_HUB_SINK_FILE && !r->head && r->offset > 0) {
      snprintf (range, sizeof range, "%llu-", (unsigned long long) r->offset);
      curl_easy_setopt (c, CURLOPT_RANGE, range);
    }
    struct curl_slist *hdrs = NULL;
    bool own = h->auth_header && sutra_hub_same_origin (url, h->endpoint);
    if (own)
      hdrs = curl_slist_append (hdrs, h->auth_header);
    hdrs = curl_slist_append (hdrs, "Accept: application/json, */*");
    if (identity)
      hdrs = curl_slist_append (hdrs, "Accept-Encoding: identity");
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, hdrs);
    char where[160];
    sutra_hub_host_of (url, where, sizeof where);
    if (own || !h->auth_header)
      sutra_hub_log (h, SUTRA_LOG_DEBUG, "hub: %s %s%s", r->head ? "HEAD" : "GET",
                     sutra_hub_same_origin (url, h->endpoint) ? url : where,
                     own ? " (with token)" : "");
    else
      sutra_hub_log (h, SUTRA_LOG_DEBUG, "hub: %s %s (redirect target, no token)",
                     r->head ? "HEAD" : "GET", where);

    bool was_cancelled;
    CURLcode rc = run_transfer (h, &was_cancelled);
    curl_easy_setopt (c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all (hdrs);
    if (was_cancelled) {
      x = SUTRA_HUB_XFER_CANCELLED;
      break;
    }
    if (r->write_errno) {
      sutra_error_set_sys (err, SUTRA_ERR_IO, r->write_errno, "%s: writing the download", h->what);
      x = SUTRA_HUB_XFER_FAIL;
      break;
    }
    if (r->range_mismatch) {
      snprintf (reason, reason_n, "%s answered a Range request with another range (%s)", where,
                r->h_content_range ? r->h_content_range : "no Content-Range");
      x = SUTRA_HUB_XFER_RETRY;
      break;
    }
    if (rc == CURLE_WRITE_ERROR && r->sink == SUTRA_HUB_SINK_MEM && r->mem_len + 1 > r->mem_max) {
      sutra_error_set (err, SUTRA_ERR_FORMAT,
                       "%s: the Hub API response is larger than %zu MB",
                       h->what, r->mem_max >> 20);
      x = SUTRA_HUB_XFER_FAIL;
      break;
    }
    if (rc != CURLE_OK) {
      snprintf (reason, reason_n, "%s: %s%s%s", where, curl_easy_strerror (rc),
                r->curl_err[0] ? ": " : "", r->curl_err);
      x = SUTRA_HUB_XFER_RETRY;
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
      sutra_hub_host_of (loc, target, sizeof target);
      Origin from, to;
      bool ok_from = origin_of (url, &from, NULL), ok_to = origin_of (loc, &to, NULL);
      bool downgrade = ok_from && ok_to && strcmp (from.scheme, "https") == 0 &&
                       strcmp (to.scheme, "https") != 0;
      bool bad_scheme = !ok_to || (strcmp (to.scheme, "http") != 0 &&
                                   strcmp (to.scheme, "https") != 0);
      bool foreign = !ok_to || !sutra_hub_same_origin (loc, h->endpoint);
      origin_clear (&from);
      origin_clear (&to);
      if (bad_scheme || downgrade) {
        sutra_error_set (err, SUTRA_ERR_NETWORK, "%s: refusing a redirect from %s to %s%s",
                         h->what, where, target, downgrade ? " (https to http)" : "");
        break;
      }
      if (r->stop_at_foreign_redirect && foreign) {
        x = SUTRA_HUB_XFER_OK;         /* the caller reads this 3xx's X-Linked-* headers */
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
    x = SUTRA_HUB_XFER_OK;
    break;
  }
  free (url);
  if (x == SUTRA_HUB_XFER_RETRY)
    sutra_hub_redact (h, reason);
  return x;
}

/* The server's own words about an error: X-Error-Message or {"error": "..."}; quoted. */

bool
sutra_hub_url_check (const char *url, bool *plain_remote, bool *has_credentials)
{
  Origin o;
  bool creds = false;
  if (!origin_of (url, &o, &creds))
    return false;
  bool ok = strcmp (o.scheme, "http") == 0 || strcmp (o.scheme, "https") == 0;
  *plain_remote = strcmp (o.scheme, "http") == 0 && strcmp (o.host, "127.0.0.1") != 0 &&
                  strcmp (o.host, "localhost") != 0 && strcmp (o.host, "[::1]") != 0;
  *has_credentials = creds;
  origin_clear (&o);
  return ok;
}

SutraStatus
sutra_hub_net_open (SutraHubSession *h, SutraError *err)
{
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

void
sutra_hub_net_close (SutraHubSession *h)
{
  if (h->curl)
    curl_easy_cleanup (h->curl);
  if (h->multi)
    curl_multi_cleanup (h->multi);
  h->curl = h->multi = NULL;
}
