/* test-hub.c: the Hugging Face Hub downloader against a fake Hub served by this test on
 * 127.0.0.1 (plain sockets + one GThread): revision and tree APIs (paginated), resolve with
 * Range, LFS redirects to a "CDN" on another host name (localhost), an interrupted body,
 * 401 for a gated repo, 404, 503-then-success, an unsafe file name, a wrong sha256, a
 * stalled transfer that is cancelled and then resumed, a server without the tree API.
 * Checks the cache layout on disk and that the token never reaches a log line, an error
 * message or the CDN. Also: SHA-256/SHA-1 vectors, env rules, parsers, resolve, scan, CLI. */
#include "test-util.h"
#include "sutra-fsutil.h"
#include "sutra-hash.h"
#include "sutra-hub.h"
#include "sutra-hub-api.h"
#include "sutra-hub-cache.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOKEN          "hf_TESTtokenSECRETvalue0123456789"
#define BACKOFF_S      0.01      /* retries in tests wait 10 ms, 20 ms, ... */
#define CANCEL_MAX_S   0.5       /* a cancel must stop a stalled transfer within this */
#define STALL_PREFIX   65536     /* bytes the "slow" file sends before stalling */
#define MAX_FILES      8

/* ---------------------------------------------------------------------------------------
 * The fake Hub
 * ------------------------------------------------------------------------------------- */

typedef struct {
  const char *path;
  GBytes *data;
  gboolean lfs;
  char sha256[65];     /* true sha256 of data */
  char oid[41];        /* Git blob id of data */
  gboolean wrong_sha;  /* the listing advertises a wrong sha256 */
} TFile;

typedef struct {
  const char *id;
  const char *commit;
  TFile files[MAX_FILES];
  int n;
  gboolean gated;      /* 401 without the right token */
  gboolean echo;       /* 403 echoing the Authorization header back (must be redacted) */
  gboolean paginate;   /* tree API in two pages linked by a Link header */
  gboolean no_tree;    /* tree API answers 404: client must HEAD each file */
  gboolean evil;       /* tree lists "../evil" */
  int fail_revision;   /* revision API answers 503 this many times first */
  int fail_resolve;    /* the first LFS resolve answers 503 this many times */
  gboolean interrupt;  /* first full GET of LFS files closes mid-body */
  gboolean stall;      /* first GET of LFS files sends STALL_PREFIX bytes, then stalls */
  gboolean always_503;
  gboolean ignore_range; /* the CDN answers Range requests with 200 and the whole file */
} TRepo;

typedef struct {
  int listen_fd;
  int port;
  GThread *thread;
  gint stop;
  GMutex lock;
  GPtrArray *log;            /* one line per request (under lock) */
  int cdn_auth_seen;         /* CDN requests that carried Authorization (must stay 0) */
  int endpoint_token_seen;   /* endpoint requests with our token */
  GPtrArray *ranges;         /* Range headers received by GET resolve/cdn, "-" when none */
  TRepo repos[16];
  int n_repos;
} Server;

static Server srv;
static char *endpoint (void);

static void
bytes_hashes (GBytes *b, char sha256[65], char oid[41])
{
  gsize n;
  const guint8 *d = g_bytes_get_data (b, &n);
  char *h = g_compute_checksum_for_data (G_CHECKSUM_SHA256, d, n);
  g_strlcpy (sha256, h, 65);
  g_free (h);
  GChecksum *c = g_checksum_new (G_CHECKSUM_SHA1);
  char hdr[64];
  int hn = g_snprintf (hdr, sizeof hdr, "blob %" G_GSIZE_FORMAT, n);
  g_checksum_update (c, (const guchar *) hdr, hn + 1);
  g_checksum_update (c, d, n);
  g_strlcpy (oid, g_checksum_get_string (c), 41);
  g_checksum_free (c);
}

static GBytes *
random_bytes (gsize n, guint32 seed)
{
  guint8 *d = g_malloc (n);
  GRand *r = g_rand_new_with_seed (seed);
  for (gsize i = 0; i < n; i++)
    d[i] = (guint8) g_rand_int (r);
  g_rand_free (r);
  return g_bytes_new_take (d, n);
}

static void
add_file (TRepo *r, const char *path, GBytes *data, gboolean lfs)
{
  g_assert_cmpint (r->n, <, MAX_FILES);
  TFile *f = &r->files[r->n++];
  f->path = path;
  f->data = data;
  f->lfs = lfs;
  bytes_hashes (data, f->sha256, f->oid);
}

static GBytes *
text (const char *s)
{
  return g_bytes_new_static (s, strlen (s));
}

static TRepo *
add_repo (const char *id, const char *commit)
{
  TRepo *r = &srv.repos[srv.n_repos++];
  memset (r, 0, sizeof *r);
  r->id = id;
  r->commit = commit;
  return r;
}

static void
build_repos (void)
{
  static const char *cfg = "{\"model_type\": \"llama\", \"hidden_size\": 64}\n";
  TRepo *r = add_repo ("org/tiny", "1111111111111111111111111111111111111111");
  r->paginate = TRUE;
  add_file (r, "config.json", text (cfg), FALSE);
  add_file (r, "model.safetensors", random_bytes (200000, 1), TRUE);
  add_file (r, "pytorch_model.bin", random_bytes (3000, 2), TRUE);
  add_file (r, "sub/dir/extra.txt", text ("nested file\n"), FALSE);
  add_file (r, "tokenizer.json", text ("{\"model\": {\"type\": \"BPE\"}}\n"), FALSE);

  r = add_repo ("org/gated", "2222222222222222222222222222222222222222");
  r->gated = TRUE;
  add_file (r, "config.json", text (cfg), FALSE);
  add_file (r, "model.safetensors", random_bytes (50000, 3), TRUE);

  r = add_repo ("org/flaky", "3333333333333333333333333333333333333333");
  r->fail_revision = 2;
  r->fail_resolve = 1;
  add_file (r, "config.json", text (cfg), FALSE);
  add_file (r, "model.safetensors", random_bytes (40000, 4), TRUE);

  r = add_repo ("org/interrupt", "4444444444444444444444444444444444444444");
  r->interrupt = TRUE;
  add_file (r, "model.safetensors", random_bytes (300000, 5), TRUE);

  r = add_repo ("org/evil", "5555555555555555555555555555555555555555");
  r->evil = TRUE;
  add_file (r, "config.json", text (cfg), FALSE);

  r = add_repo ("org/badsha", "6666666666666666666666666666666666666666");
  add_file (r, "config.json", text (cfg), FALSE);
  add_file (r, "model.safetensors", random_bytes (30000, 6), TRUE);
  r->files[1].wrong_sha = TRUE;

  r = add_repo ("org/slow", "7777777777777777777777777777777777777777");
  r->stall = TRUE;
  add_file (r, "model.safetensors", random_bytes (4 * STALL_PREFIX, 7), TRUE);

  r = add_repo ("org/notree", "8888888888888888888888888888888888888888");
  r->no_tree = TRUE;
  add_file (r, "config.json", text (cfg), FALSE);
  add_file (r, "model.safetensors", random_bytes (20000, 8), TRUE);

  r = add_repo ("org/echo", "9999999999999999999999999999999999999999");
  r->echo = TRUE;
  add_file (r, "config.json", text (cfg), FALSE);

  r = add_repo ("org/norange", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
  r->interrupt = TRUE;
  r->ignore_range = TRUE;
  add_file (r, "model.safetensors", random_bytes (120000, 9), TRUE);

  r = add_repo ("org/down", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  r->always_503 = TRUE;
  add_file (r, "config.json", text (cfg), FALSE);
}

static TRepo *
find_repo (const char *id)
{
  for (int i = 0; i < srv.n_repos; i++)
    if (strcmp (srv.repos[i].id, id) == 0)
      return &srv.repos[i];
  return NULL;
}

static TFile *
find_file (TRepo *r, const char *path)
{
  for (int i = 0; i < r->n; i++)
    if (strcmp (r->files[i].path, path) == 0)
      return &r->files[i];
  return NULL;
}

static void
send_all (int fd, const void *buf, size_t n)
{
  const char *p = buf;
  while (n) {
    ssize_t w = send (fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return;
    p += w;
    n -= (size_t) w;
  }
}

static void
respond (int fd, int status, const char *headers, const void *body, size_t len, gboolean head)
{
  char *h = g_strdup_printf ("HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                             status, len, headers ? headers : "");
  send_all (fd, h, strlen (h));
  g_free (h);
  if (!head && len)
    send_all (fd, body, len);
}

static void
respond_error (int fd, int status, const char *code, const char *msg, gboolean head)
{
  char *hd = g_strdup_printf ("X-Error-Code: %s\r\nX-Error-Message: %s\r\n"
                              "Content-Type: application/json\r\n", code, msg);
  char *body = g_strdup_printf ("{\"error\": \"%s\"}", msg);
  respond (fd, status, code[0] ? hd : "Content-Type: application/json\r\n", body, strlen (body),
           head);
  g_free (hd);
  g_free (body);
}

static const char *
hdr_get (GHashTable *h, const char *name)
{
  return g_hash_table_lookup (h, name);
}

/* Waits until the client closes the connection (or 10 s) without sending anything. */
static void
stall_until_closed (int fd)
{
  for (int i = 0; i < 500; i++) {
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll (&p, 1, 20) > 0) {
      char c;
      if (recv (fd, &c, 1, MSG_DONTWAIT) <= 0)
        return;
    }
  }
}

/* Serves data with Range support; the interrupt/stall behaviours apply to the first GET. */
static void
serve_bytes (int fd, GBytes *data, const char *range, gboolean head, gboolean *interrupt,
             gboolean *stall, const char *extra)
{
  gsize n;
  const char *d = g_bytes_get_data (data, &n);
  gsize start = 0;
  if (range && g_str_has_prefix (range, "bytes=")) {
    start = g_ascii_strtoull (range + 6, NULL, 10);
    if (start >= n) {
      char *h = g_strdup_printf ("Content-Range: bytes */%zu\r\n", n);
      respond (fd, 416, h, NULL, 0, head);
      g_free (h);
      return;
    }
    char *h = g_strdup_printf ("Content-Range: bytes %zu-%zu/%zu\r\n%s", start, n - 1, n,
                               extra ? extra : "");
    respond (fd, 206, h, d + start, n - start, head);
    g_free (h);
    return;
  }
  if (!head && interrupt && *interrupt) {
    *interrupt = FALSE;
    char *h = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
    send_all (fd, h, strlen (h));
    g_free (h);
    send_all (fd, d, n / 2);                    /* then close: the client sees a short body */
    return;
  }
  if (!head && stall && *stall) {
    *stall = FALSE;
    char *h = g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", n);
    send_all (fd, h, strlen (h));
    g_free (h);
    send_all (fd, d, STALL_PREFIX);
    stall_until_closed (fd);
    return;
  }
  respond (fd, 200, extra, d, n, head);
}

static char *
tree_json (TRepo *r, int from, int to)
{
  GString *s = g_string_new ("[");
  gboolean first = TRUE;
  if (r->evil && from == 0) {
    g_string_append (s, "{\"type\": \"file\", \"path\": \"../evil\", \"size\": 3, "
                        "\"oid\": \"0123456789012345678901234567890123456789\"}");
    first = FALSE;
  }
  if (from == 0) {
    g_string_append_printf (s, "%s{\"type\": \"directory\", \"path\": \"sub\", \"size\": 0, "
                               "\"oid\": \"abcdefabcdefabcdefabcdefabcdefabcdefabcd\"}",
                            first ? "" : ",");
    first = FALSE;
  }
  for (int i = from; i < to; i++) {
    TFile *f = &r->files[i];
    gsize n = g_bytes_get_size (f->data);
    g_string_append_printf (s, "%s{\"type\": \"file\", \"path\": \"%s\", \"size\": %zu, ",
                            first ? "" : ",", f->path, n);
    first = FALSE;
    if (f->lfs)
      g_string_append_printf (s, "\"oid\": \"%s\", \"lfs\": {\"oid\": \"%s\", \"size\": %zu, "
                                 "\"pointerSize\": 134}}",
                              "fedcba9876543210fedcba9876543210fedcba98",
                              f->wrong_sha ? "00000000000000000000000000000000000000000000000000000000000000ff"
                                           : f->sha256, n);
    else
      g_string_append_printf (s, "\"oid\": \"%s\"}", f->oid);
  }
  g_string_append (s, "]");
  return g_string_free (s, FALSE);
}

static void
handle (int fd)
{
  char buf[16384];
  size_t len = 0;
  while (len < sizeof buf - 1) {
    ssize_t n = recv (fd, buf + len, sizeof buf - 1 - len, 0);
    if (n <= 0)
      return;
    len += (size_t) n;
    buf[len] = '\0';
    if (strstr (buf, "\r\n\r\n"))
      break;
  }
  char **lines = g_strsplit (buf, "\r\n", -1);
  char **rl = g_strsplit (lines[0], " ", 3);
  if (!rl[0] || !rl[1]) {
    g_strfreev (rl);
    g_strfreev (lines);
    return;
  }
  const char *method = rl[0];
  char *target = g_strdup (rl[1]);
  gboolean head = strcmp (method, "HEAD") == 0;
  GHashTable *hd = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (int i = 1; lines[i] && lines[i][0]; i++) {
    char *c = strchr (lines[i], ':');
    if (!c)
      continue;
    char *k = g_ascii_strdown (lines[i], c - lines[i]);
    g_hash_table_insert (hd, k, g_strdup (g_strstrip (c + 1)));
  }
  const char *auth = hdr_get (hd, "authorization");
  const char *range = hdr_get (hd, "range");
  gboolean good_token = auth && strcmp (auth, "Bearer " TOKEN) == 0;
  char *query = strchr (target, '?');
  if (query)
    *query++ = '\0';

  g_mutex_lock (&srv.lock);
  g_ptr_array_add (srv.log, g_strdup_printf ("%s %s%s%s range=%s auth=%d host=%s", method, target,
                                             query ? "?" : "", query ? query : "",
                                             range ? range : "-", auth != NULL,
                                             hdr_get (hd, "host") ? hdr_get (hd, "host") : "?"));
  if (good_token && !g_str_has_prefix (target, "/cdn/"))
    srv.endpoint_token_seen++;
  g_mutex_unlock (&srv.lock);

  char **seg = g_strsplit (target + 1, "/", -1);
  guint ns = g_strv_length (seg);
  if (ns >= 6 && strcmp (seg[0], "api") == 0 && strcmp (seg[1], "models") == 0) {
    char *id = g_strdup_printf ("%s/%s", seg[2], seg[3]);
    TRepo *r = find_repo (id);
    const char *kind = seg[4];
    char *rev = g_uri_unescape_string (seg[5], NULL);
    if (!r) {
      respond_error (fd, 401, "RepoNotFound", "Repository not found", head);
    } else if (r->always_503) {
      respond_error (fd, 503, "", "Service Unavailable", head);
    } else if (r->gated && !good_token) {
      respond_error (fd, 401, "GatedRepo", "Access to this model is restricted", head);
    } else if (r->echo) {
      char *msg = g_strdup_printf ("invalid credentials in header Authorization: %s",
                                   auth ? auth : "(none)");
      respond_error (fd, 403, "", msg, head);
      g_free (msg);
    } else if (strcmp (kind, "revision") == 0) {
      gboolean fail = FALSE;
      g_mutex_lock (&srv.lock);
      if (r->fail_revision > 0) {
        r->fail_revision--;
        fail = TRUE;
      }
      g_mutex_unlock (&srv.lock);
      if (fail) {
        respond_error (fd, 503, "", "try later", head);
      } else if (strcmp (rev, "main") != 0 && strcmp (rev, r->commit) != 0) {
        respond_error (fd, 404, "RevisionNotFound", "Invalid rev id", head);
      } else {
        GString *s = g_string_new (NULL);
        g_string_append_printf (s, "{\"_id\": \"x\", \"id\": \"%s\", \"sha\": \"%s\", "
                                   "\"private\": false, \"siblings\": [", r->id, r->commit);
        for (int i = 0; i < r->n; i++)
          g_string_append_printf (s, "%s{\"rfilename\": \"%s\"}", i ? ", " : "", r->files[i].path);
        g_string_append (s, "], \"tags\": [\"safetensors\"]}");
        respond (fd, 200, "Content-Type: application/json\r\n", s->str, s->len, head);
        g_string_free (s, TRUE);
      }
    } else if (strcmp (kind, "tree") == 0) {
      if (r->no_tree || strcmp (rev, r->commit) != 0) {
        respond (fd, 404, NULL, "Not Found", 9, head);
      } else if (r->paginate && !(query && strstr (query, "cursor=2"))) {
        char *js = tree_json (r, 0, r->n / 2);
        char *link = g_strdup_printf ("Link: <http://127.0.0.1:%d/api/models/%s/tree/%s?"
                                      "recursive=true&cursor=2>; rel=\"next\"\r\n", srv.port,
                                      r->id, r->commit);
        respond (fd, 200, link, js, strlen (js), head);
        g_free (link);
        g_free (js);
      } else {
        char *js = r->paginate ? tree_json (r, r->n / 2, r->n) : tree_json (r, 0, r->n);
        respond (fd, 200, "Content-Type: application/json\r\n", js, strlen (js), head);
        g_free (js);
      }
    } else {
      respond (fd, 404, NULL, "Not Found", 9, head);
    }
    g_free (rev);
    g_free (id);
  } else if (ns >= 5 && strcmp (seg[2], "resolve") == 0) {
    char *id = g_strdup_printf ("%s/%s", seg[0], seg[1]);
    TRepo *r = find_repo (id);
    char *rest = g_strjoinv ("/", seg + 4);
    char *path = g_uri_unescape_string (rest, NULL);
    TFile *f = r ? find_file (r, path) : NULL;
    if (!r) {
      respond_error (fd, 401, "RepoNotFound", "Repository not found", head);
    } else if (r->gated && !good_token) {
      respond_error (fd, 401, "GatedRepo", "Access to this model is restricted", head);
    } else if (strcmp (seg[3], r->commit) != 0 || !f) {
      respond_error (fd, 404, "EntryNotFound", "Entry not found", head);
    } else if (f->lfs) {
      gboolean fail = FALSE;
      g_mutex_lock (&srv.lock);
      if (!head && r->fail_resolve > 0) {
        r->fail_resolve--;
        fail = TRUE;
      }
      g_mutex_unlock (&srv.lock);
      if (fail) {
        respond_error (fd, 503, "", "overloaded", head);
      } else {
        /* The CDN lives on another host name: the token must not follow the redirect. */
        char *h = g_strdup_printf ("Location: http://localhost:%d/cdn/%s/%s?X-Amz-Signature=sig\r\n"
                                   "X-Linked-Etag: \"%s\"\r\nX-Linked-Size: %zu\r\n"
                                   "X-Repo-Commit: %s\r\nETag: \"%s\"\r\n",
                                   srv.port, r->id, f->path, f->sha256,
                                   g_bytes_get_size (f->data), r->commit,
                                   "fedcba9876543210fedcba9876543210fedcba98");
        respond (fd, 302, h, NULL, 0, head);
        g_free (h);
      }
    } else {
      char *etag = g_strdup_printf ("ETag: \"%s\"\r\nX-Repo-Commit: %s\r\n", f->oid, r->commit);
      if (!head) {
        g_mutex_lock (&srv.lock);
        g_ptr_array_add (srv.ranges, g_strdup (range ? range : "-"));
        g_mutex_unlock (&srv.lock);
      }
      serve_bytes (fd, f->data, range, head, NULL, NULL, etag);
      g_free (etag);
    }
    g_free (path);
    g_free (rest);
    g_free (id);
  } else if (ns >= 4 && strcmp (seg[0], "cdn") == 0) {
    char *id = g_strdup_printf ("%s/%s", seg[1], seg[2]);
    TRepo *r = find_repo (id);
    char *rest = g_strjoinv ("/", seg + 3);
    TFile *f = r ? find_file (r, rest) : NULL;
    g_mutex_lock (&srv.lock);
    if (auth)
      srv.cdn_auth_seen++;
    if (!head)
      g_ptr_array_add (srv.ranges, g_strdup (range ? range : "-"));
    g_mutex_unlock (&srv.lock);
    if (!f)
      respond (fd, 404, NULL, "Not Found", 9, head);
    else
      serve_bytes (fd, f->data, r->ignore_range ? NULL : range, head, &r->interrupt, &r->stall,
                   NULL);
    g_free (rest);
    g_free (id);
  } else {
    respond (fd, 404, NULL, "Not Found", 9, head);
  }
  g_strfreev (seg);
  g_hash_table_destroy (hd);
  g_free (target);
  g_strfreev (rl);
  g_strfreev (lines);
}

static gpointer
server_main (gpointer data)
{
  while (!g_atomic_int_get (&srv.stop)) {
    struct pollfd p = { srv.listen_fd, POLLIN, 0 };
    if (poll (&p, 1, 50) <= 0)
      continue;
    int fd = accept (srv.listen_fd, NULL, NULL);
    if (fd < 0)
      continue;
    struct timeval tv = { 5, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    handle (fd);
    shutdown (fd, SHUT_RDWR);
    close (fd);
  }
  return NULL;
}

static void
server_start (void)
{
  srv.listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (srv.listen_fd, >=, 0);
  int one = 1;
  setsockopt (srv.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
  a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (srv.listen_fd, (struct sockaddr *) &a, sizeof a), ==, 0);
  g_assert_cmpint (listen (srv.listen_fd, 16), ==, 0);
  socklen_t al = sizeof a;
  getsockname (srv.listen_fd, (struct sockaddr *) &a, &al);
  srv.port = ntohs (a.sin_port);
  srv.thread = g_thread_new ("fake-hub", server_main, NULL);
}

static void
server_stop (void)
{
  if (!srv.thread)
    return;
  g_atomic_int_set (&srv.stop, 1);
  g_thread_join (srv.thread);
  close (srv.listen_fd);
}

/* Snapshot of the request log since `from` joined by newlines (caller frees). */
static char *
log_since (guint from)
{
  GString *s = g_string_new (NULL);
  g_mutex_lock (&srv.lock);
  for (guint i = from; i < srv.log->len; i++)
    g_string_append_printf (s, "%s\n", (char *) srv.log->pdata[i]);
  g_mutex_unlock (&srv.lock);
  return g_string_free (s, FALSE);
}

static guint
log_mark (void)
{
  g_free (endpoint ());
  g_mutex_lock (&srv.lock);
  guint n = srv.log->len;
  g_mutex_unlock (&srv.lock);
  return n;
}

static char *
last_range (void)
{
  g_mutex_lock (&srv.lock);
  char *r = srv.ranges->len ? g_strdup (srv.ranges->pdata[srv.ranges->len - 1]) : NULL;
  g_mutex_unlock (&srv.lock);
  return r;
}

/* ---------------------------------------------------------------------------------------
 * Log capture: every message the engine logs, at every level
 * ------------------------------------------------------------------------------------- */

static GMutex log_lock;
static GPtrArray *log_lines;

static void
capture_log (SutraLogLevel level, const char *message, void *user_data)
{
  g_mutex_lock (&log_lock);
  g_ptr_array_add (log_lines, g_strdup (message));
  g_mutex_unlock (&log_lock);
}

static void
assert_no_token (const char *s)
{
  if (s && strstr (s, TOKEN))
    g_error ("the token leaked into: %s", s);
}

/* ---------------------------------------------------------------------------------------
 * Helpers for the download tests
 * ------------------------------------------------------------------------------------- */

typedef struct {
  int listed, done, cached, retries, starts;
  guint64 total;
  gint file_done_max;      /* atomic: written on the download thread */
  GPtrArray *reasons;
} Events;

static bool
on_event (const SutraHubProgress *p, void *data)
{
  Events *e = data;
  assert_no_token (p->reason);
  switch (p->event) {
  case SUTRA_HUB_EVENT_LISTED:
    e->listed++;
    e->total = p->total;
    g_assert_nonnull (p->commit);
    break;
  case SUTRA_HUB_EVENT_FILE_START:
    e->starts++;
    break;
  case SUTRA_HUB_EVENT_FILE_PROGRESS:
    g_assert_true (p->file_total == 0 || p->file_done <= p->file_total);
    g_assert_cmpuint (p->done, <=, p->total);
    if ((gint) p->file_done > g_atomic_int_get (&e->file_done_max))
      g_atomic_int_set (&e->file_done_max, (gint) p->file_done);
    break;
  case SUTRA_HUB_EVENT_FILE_DONE:
    e->done++;
    e->cached += p->cached;
    break;
  case SUTRA_HUB_EVENT_RETRY:
    e->retries++;
    if (e->reasons)
      g_ptr_array_add (e->reasons, g_strdup (p->reason));
    break;
  }
  return true;
}

static void server_start (void);

/* The server starts on first use, after the tests that change the environment ran (setenv
 * is not thread-safe once other threads exist). */
static char *
endpoint (void)
{
  if (!srv.thread)
    server_start ();
  return g_strdup_printf ("http://127.0.0.1:%d", srv.port);
}

static SutraStatus
download (const char *cache, const char *repo, const char *rev, const char *const *include,
          const char *token, Events *ev, char **dir, SutraError *err)
{
  char *ep = endpoint ();
  SutraHubOptions o = {
    .endpoint = ep, .cache_dir = cache, .token = token, .backoff_s = BACKOFF_S,
    .prefer_safetensors = true, .progress = ev ? on_event : NULL, .user_data = ev,
  };
  sutra_error_clear (err);
  SutraStatus st = sutra_hub_download (&o, repo, rev, include, dir, err);
  assert_no_token (err->message);
  g_free (ep);
  return st;
}

static char *
repo_path (const char *cache, const char *folder, const char *sub)
{
  return g_build_filename (cache, folder, sub, NULL);
}

static void
assert_file_equals (const char *path, GBytes *want)
{
  char *got = NULL;
  gsize n = 0;
  GError *e = NULL;
  g_assert_true (g_file_get_contents (path, &got, &n, &e));
  g_assert_no_error (e);
  g_assert_cmpmem (got, n, g_bytes_get_data (want, NULL), g_bytes_get_size (want));
  g_free (got);
}

static char *
fresh_cache (void)
{
  return g_build_filename (test_tmpdir (), "hub", NULL);
}

/* ---------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------- */

static void
hex_of_sha256 (const void *d, size_t n, char out[65])
{
  SutraSha256 s;
  uint8_t dig[32];
  sutra_sha256_init (&s);
  sutra_sha256_update (&s, d, n);
  sutra_sha256_final (&s, dig);
  sutra_hex_encode (dig, 32, out);
}

/* FIPS 180-4 example vectors, then random lengths (in random pieces) against GLib. */
static void
test_hash_vectors (void)
{
  char hex[65];
  hex_of_sha256 ("", 0, hex);
  g_assert_cmpstr (hex, ==, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  hex_of_sha256 ("abc", 3, hex);
  g_assert_cmpstr (hex, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  hex_of_sha256 (two, strlen (two), hex);
  g_assert_cmpstr (hex, ==, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  SutraSha1 s1;
  uint8_t d1[20];
  char h1[41];
  sutra_sha1_init (&s1);
  sutra_sha1_update (&s1, "abc", 3);
  sutra_sha1_final (&s1, d1);
  sutra_hex_encode (d1, 20, h1);
  g_assert_cmpstr (h1, ==, "a9993e364706816aba3e25717850c26c9cd0d89d");

  GRand *r = g_rand_new_with_seed (42);
  for (int iter = 0; iter < 200; iter++) {
    gsize n = iter < 130 ? (gsize) iter : (gsize) g_rand_int_range (r, 0, 5000);
    guint8 *d = g_malloc (n + 1);
    for (gsize i = 0; i < n; i++)
      d[i] = (guint8) g_rand_int (r);
    SutraSha256 s;
    SutraSha1 t;
    sutra_sha256_init (&s);
    sutra_sha1_init (&t);
    for (gsize off = 0; off < n;) {            /* feed in uneven pieces */
      gsize k = (gsize) g_rand_int_range (r, 1, 200);
      k = MIN (k, n - off);
      sutra_sha256_update (&s, d + off, k);
      sutra_sha1_update (&t, d + off, k);
      off += k;
    }
    uint8_t dig[32];
    sutra_sha256_final (&s, dig);
    sutra_hex_encode (dig, 32, hex);
    char *want = g_compute_checksum_for_data (G_CHECKSUM_SHA256, d, n);
    g_assert_cmpstr (hex, ==, want);
    g_free (want);
    sutra_sha1_final (&t, d1);
    sutra_hex_encode (d1, 20, h1);
    want = g_compute_checksum_for_data (G_CHECKSUM_SHA1, d, n);
    g_assert_cmpstr (h1, ==, want);
    g_free (want);
    g_free (d);
  }
  g_rand_free (r);
}

static void
save_env (const char *const *names, char **saved)
{
  for (int i = 0; names[i]; i++)
    saved[i] = g_strdup (g_getenv (names[i]));
}

static void
restore_env (const char *const *names, char **saved)
{
  for (int i = 0; names[i]; i++) {
    if (saved[i])
      g_setenv (names[i], saved[i], TRUE);
    else
      g_unsetenv (names[i]);
    g_free (saved[i]);
  }
}

static const char *const env_names[] = { "HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME",
                                         "HF_TOKEN", "HF_TOKEN_PATH", "HUGGING_FACE_HUB_TOKEN",
                                         NULL };

/* $HF_HUB_CACHE > $HF_HOME/hub > $XDG_CACHE_HOME/huggingface/hub > ~/.cache/huggingface/hub */
static void
test_cache_dir_env (void)
{
  char *saved[8];
  save_env (env_names, saved);
  g_unsetenv ("HF_HUB_CACHE");
  g_unsetenv ("HF_HOME");
  g_unsetenv ("XDG_CACHE_HOME");
  g_setenv ("HOME", "/home/u", TRUE);
  char *d = sutra_hub_cache_dir ();
  g_assert_cmpstr (d, ==, "/home/u/.cache/huggingface/hub");
  free (d);
  g_setenv ("XDG_CACHE_HOME", "/xdg", TRUE);
  d = sutra_hub_cache_dir ();
  g_assert_cmpstr (d, ==, "/xdg/huggingface/hub");
  free (d);
  g_setenv ("HF_HOME", "~/hfhome", TRUE);
  d = sutra_hub_cache_dir ();
  g_assert_cmpstr (d, ==, "/home/u/hfhome/hub");
  free (d);
  g_setenv ("HF_HUB_CACHE", "/direct/cache", TRUE);
  d = sutra_hub_cache_dir ();
  g_assert_cmpstr (d, ==, "/direct/cache");
  free (d);
  d = sutra_hub_home_dir ();
  g_assert_cmpstr (d, ==, "/home/u/hfhome");
  free (d);
  d = sutra_hub_repo_dir ("/c", "org/name");
  g_assert_cmpstr (d, ==, "/c/models--org--name");
  free (d);
  d = sutra_hub_repo_dir ("/c", "gpt2");
  g_assert_cmpstr (d, ==, "/c/models--gpt2");
  free (d);
  restore_env (env_names, saved);
}

/* $HF_TOKEN > $HF_TOKEN_PATH > $HF_HOME/token; whitespace trimmed; a token that could inject
 * a header is refused without being echoed. */
static void
test_token_find (void)
{
  char *saved[8];
  save_env (env_names, saved);
  const char *tmp = test_tmpdir ();
  char *home = g_build_filename (tmp, "hfhome", NULL);
  g_mkdir_with_parents (home, 0755);
  char *tf = g_build_filename (home, "token", NULL);
  g_file_set_contents (tf, "  hf_fromfile\n", -1, NULL);
  char *tp = g_build_filename (tmp, "other-token", NULL);
  g_file_set_contents (tp, "hf_frompath\n", -1, NULL);
  g_setenv ("HF_HOME", home, TRUE);
  g_unsetenv ("HF_TOKEN");
  g_unsetenv ("HF_TOKEN_PATH");
  g_unsetenv ("HUGGING_FACE_HUB_TOKEN");
  SutraError err = { 0 };
  char *t = NULL;
  test_assert_ok (sutra_hub_token_find (&t, &err), &err);
  g_assert_cmpstr (t, ==, "hf_fromfile");
  free (t);
  g_setenv ("HF_TOKEN_PATH", tp, TRUE);
  test_assert_ok (sutra_hub_token_find (&t, &err), &err);
  g_assert_cmpstr (t, ==, "hf_frompath");
  free (t);
  g_setenv ("HF_TOKEN", " hf_fromenv ", TRUE);
  test_assert_ok (sutra_hub_token_find (&t, &err), &err);
  g_assert_cmpstr (t, ==, "hf_fromenv");
  free (t);
  g_setenv ("HF_TOKEN", "hf_bad\r\nX-Injected: " TOKEN, TRUE);
  g_assert_cmpint (sutra_hub_token_find (&t, &err), ==, SUTRA_ERR_AUTH);
  assert_no_token (err.message);
  g_assert_null (strstr (err.message, "hf_bad"));
  g_unsetenv ("HF_TOKEN");
  g_unsetenv ("HF_TOKEN_PATH");
  g_remove (tf);
  t = (char *) "unchanged";
  test_assert_ok (sutra_hub_token_find (&t, &err), &err);
  g_assert_null (t);
  restore_env (env_names, saved);
  g_free (home);
  g_free (tf);
  g_free (tp);
}

static void
test_repo_id (void)
{
  const char *ok[] = { "gpt2", "org/name", "HuggingFaceTB/SmolLM2-135M-Instruct",
                       "Qwen/Qwen2.5-0.5B-Instruct", "a_b/c.d-e", NULL };
  const char *bad[] = { "", "/", "org/", "/name", "a/b/c", "../x", "org/..", "org/na--me",
                        "org/-name", "org/name.", "org/na me", "org/name.git", "org\\name",
                        "./model", NULL };
  for (int i = 0; ok[i]; i++)
    g_assert_true (sutra_hub_repo_id_is_valid (ok[i]));
  for (int i = 0; bad[i]; i++)
    if (sutra_hub_repo_id_is_valid (bad[i]))
      g_error ("'%s' accepted as a repo id", bad[i]);
}

static void
test_parsers (void)
{
  SutraError err = { 0 };
  SutraHubFileList l = { 0 };
  char commit[41] = "";
  const char *rev = "{\"sha\": \"ABCDEF0123456789abcdef0123456789abcdef01\", \"siblings\": "
                    "[{\"rfilename\": \"b.json\"}, {\"rfilename\": \"a/x.safetensors\"}]} \n";
  test_assert_ok (sutra_hub_parse_revision (rev, strlen (rev), "t", commit, &l, &err), &err);
  g_assert_cmpstr (commit, ==, "abcdef0123456789abcdef0123456789abcdef01");
  g_assert_cmpuint (l.n, ==, 2);
  g_assert_cmpstr (l.files[0].path, ==, "a/x.safetensors");   /* sorted */
  const char *tree = "[{\"type\": \"directory\", \"path\": \"a\"},"
                     "{\"type\": \"file\", \"path\": \"a/x.safetensors\", \"size\": 10, \"oid\": "
                     "\"0123456789012345678901234567890123456789\", \"lfs\": {\"oid\": "
                     "\"0123456789012345678901234567890123456789012345678901234567890123\", "
                     "\"size\": 10}},"
                     "{\"type\": \"file\", \"path\": \"c.txt\", \"size\": 3, \"oid\": "
                     "\"1123456789012345678901234567890123456789\"}]";
  test_assert_ok (sutra_hub_parse_tree (tree, strlen (tree), "t", &l, &err), &err);
  g_assert_cmpuint (l.n, ==, 3);
  SutraHubFile *f = sutra_hub_file_list_find (&l, "a/x.safetensors");
  g_assert_nonnull (f);
  g_assert_true (f->has_size);
  g_assert_cmpuint (f->size, ==, 10);
  g_assert_cmpuint (strlen (f->sha256), ==, 64);
  f = sutra_hub_file_list_find (&l, "c.txt");
  g_assert_nonnull (f);
  g_assert_cmpstr (f->sha256, ==, "");
  g_assert_cmpstr (f->git_oid, ==, "1123456789012345678901234567890123456789");
  g_assert_nonnull (sutra_hub_file_list_find (&l, "b.json"));
  sutra_hub_file_list_clear (&l);

  /* Hostile or malformed listings fail with FORMAT, never crash. */
  const char *bad[] = {
    "{\"sha\": \"abc\"}",
    "{\"siblings\": []}",
    "[]",
    "{\"sha\": \"abcdef0123456789abcdef0123456789abcdef01\", \"siblings\": [{\"rfilename\": \"../evil\"}]}",
    "{\"sha\": \"abcdef0123456789abcdef0123456789abcdef01\", \"siblings\": [{\"rfilename\": \"/etc/passwd\"}]}",
    "{\"sha\": \"abcdef0123456789abcdef0123456789abcdef01\", \"siblings\": [{\"rfilename\": \"a\\\\b\"}]}",
    "{\"sha\": \"abcdef0123456789abcdef0123456789abcdef01\", \"siblings\": [{\"rfilename\": \"a\\u0000b\"}]}",
    "{\"sha\": \"abcdef0123456789abcdef0123456789abcdef01\", \"siblings\": [{\"rfilename\": \"x\\u001b[31m\"}]}",
    "{\"sha\": \"abcdef0123456789abcdef0123456789abcdef01\"} trailing",
    "{\"sha\": \"abcdef0123456789abcdef0123456789abcdef01\", \"siblings\": [",
    NULL };
  for (int i = 0; bad[i]; i++) {
    SutraHubFileList l2 = { 0 };
    if (sutra_hub_parse_revision (bad[i], strlen (bad[i]), "t", commit, &l2, &err) != SUTRA_ERR_FORMAT)
      g_error ("accepted: %s", bad[i]);
    g_assert_null (strchr (err.message, '\x1b'));       /* escapes are quoted */
    sutra_hub_file_list_clear (&l2);
  }
  const char *bad_tree[] = {
    "{}",
    "[{\"type\": \"file\", \"path\": \"..\"}]",
    "[{\"type\": \"file\", \"path\": \"ok\", \"size\": -1}]",
    "[{\"type\": \"file\", \"path\": \"ok\", \"size\": 1.5}]",
    "[{\"type\": \"file\", \"path\": \"ok\", \"lfs\": {\"oid\": \"zz\"}}]",
    "[{\"type\": \"file\", \"path\": \"ok\", \"size\": 4, \"lfs\": {\"oid\": "
    "\"0123456789012345678901234567890123456789012345678901234567890123\", \"size\": 5}}]",
    "[{\"type\": \"directory\", \"path\": \"a/../../b\"}]",
    NULL };
  for (int i = 0; bad_tree[i]; i++) {
    SutraHubFileList l2 = { 0 };
    if (sutra_hub_parse_tree (bad_tree[i], strlen (bad_tree[i]), "t", &l2, &err) != SUTRA_ERR_FORMAT)
      g_error ("accepted: %s", bad_tree[i]);
    sutra_hub_file_list_clear (&l2);
  }

  char *next = sutra_hub_parse_link_next ("<https://h/api?cursor=2>; rel=\"next\"");
  g_assert_cmpstr (next, ==, "https://h/api?cursor=2");
  free (next);
  next = sutra_hub_parse_link_next ("<https://h/p1>; rel=\"prev\", <https://h/p3>; rel=next");
  g_assert_cmpstr (next, ==, "https://h/p3");
  free (next);
  g_assert_null (sutra_hub_parse_link_next ("<https://h/p1>; rel=\"last\""));
  g_assert_null (sutra_hub_parse_link_next ("garbage"));

  uint64_t s, e, t;
  g_assert_true (sutra_hub_parse_content_range ("bytes 100-199/200", &s, &e, &t));
  g_assert_cmpuint (s, ==, 100);
  g_assert_cmpuint (e, ==, 199);
  g_assert_cmpuint (t, ==, 200);
  g_assert_true (sutra_hub_parse_content_range ("bytes */200", &s, &e, &t));
  g_assert_cmpuint (s, ==, UINT64_MAX);
  g_assert_cmpuint (t, ==, 200);
  g_assert_false (sutra_hub_parse_content_range ("bytes 5-4/200", &s, &e, &t));
  g_assert_false (sutra_hub_parse_content_range ("bytes 0-200/200", &s, &e, &t));
  g_assert_false (sutra_hub_parse_content_range ("items 0-1/2", &s, &e, &t));

  char etag[65];
  g_assert_true (sutra_hub_parse_etag ("W/\"0123456789ABCDEF0123456789abcdef01234567\"", etag));
  g_assert_cmpstr (etag, ==, "0123456789abcdef0123456789abcdef01234567");
  g_assert_false (sutra_hub_parse_etag ("\"12345\"", etag));
  g_assert_false (sutra_hub_parse_etag ("\"0123456789abcdef0123456789abcdef01234567", etag));
}

/* Full download: layout, symlinks, blob names, pagination, token only to the endpoint,
 * prefer_safetensors; then a second run that finds everything cached. */
static void
test_download_layout (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  Events ev = { 0 };
  char *dir = NULL;
  guint mark = log_mark ();
  test_assert_ok (download (cache, "org/tiny", NULL, NULL, NULL, &ev, &dir, &err), &err);
  TRepo *r = find_repo ("org/tiny");
  char *want_snap = g_build_filename (cache, "models--org--tiny", "snapshots", r->commit, NULL);
  g_assert_cmpstr (dir, ==, want_snap);

  char *ref = repo_path (cache, "models--org--tiny", "refs/main");
  char *refc = NULL;
  g_assert_true (g_file_get_contents (ref, &refc, NULL, NULL));
  g_assert_cmpstr (refc, ==, r->commit);                 /* no newline, like huggingface_hub */

  for (int i = 0; i < r->n; i++) {
    TFile *f = &r->files[i];
    char *p = g_build_filename (dir, f->path, NULL);
    if (strcmp (f->path, "pytorch_model.bin") == 0) {   /* prefer_safetensors skipped it */
      g_assert_false (g_file_test (p, G_FILE_TEST_EXISTS));
      g_free (p);
      continue;
    }
    g_assert_true (g_file_test (p, G_FILE_TEST_IS_SYMLINK));
    char *target = g_file_read_link (p, NULL);
    int depth = 0;
    for (const char *c = f->path; *c; c++)
      depth += *c == '/';
    GString *want = g_string_new (NULL);
    for (int k = 0; k < depth + 2; k++)
      g_string_append (want, "../");
    g_string_append_printf (want, "blobs/%s", f->lfs ? f->sha256 : f->oid);
    g_assert_cmpstr (target, ==, want->str);            /* relative, named by sha256 / git id */
    assert_file_equals (p, f->data);                     /* the link resolves to the bytes */
    g_string_free (want, TRUE);
    g_free (target);
    g_free (p);
  }
  /* blobs: exactly the 4 selected files, no leftovers */
  char *blobs = repo_path (cache, "models--org--tiny", "blobs");
  GDir *gd = g_dir_open (blobs, 0, NULL);
  int nb = 0;
  const char *name;
  while ((name = g_dir_read_name (gd))) {
    g_assert_false (g_str_has_suffix (name, ".incomplete"));
    g_assert_null (strstr (name, ".tmp"));
    nb++;
  }
  g_dir_close (gd);
  g_assert_cmpint (nb, ==, 4);
  /* huggingface_hub's lock files, one per blob written */
  char *lock = g_strdup_printf ("%s/.locks/models--org--tiny/%s.lock", cache,
                                find_file (r, "model.safetensors")->sha256);
  g_assert_true (g_file_test (lock, G_FILE_TEST_IS_REGULAR));
  g_free (lock);
  g_assert_cmpint (ev.listed, ==, 1);
  g_assert_cmpint (ev.done, ==, 4);
  g_assert_cmpint (ev.cached, ==, 0);
  guint64 total = 0;
  for (int i = 0; i < r->n; i++)
    if (strcmp (r->files[i].path, "pytorch_model.bin") != 0)
      total += g_bytes_get_size (r->files[i].data);
  g_assert_cmpuint (ev.total, ==, total);

  char *log = log_since (mark);
  g_assert_nonnull (strstr (log, "cursor=2"));          /* the Link header was followed */
  g_assert_null (strstr (log, "pytorch_model.bin"));
  g_assert_nonnull (strstr (log, "GET /cdn/org/tiny/model.safetensors"));
  g_free (log);
  g_mutex_lock (&srv.lock);
  g_assert_cmpint (srv.cdn_auth_seen, ==, 0);          /* token never sent to the CDN host */
  g_assert_cmpint (srv.endpoint_token_seen, >, 0);     /* but sent to the endpoint ($HF_TOKEN) */
  g_mutex_unlock (&srv.lock);

  /* Again: everything is cached; only the two listing calls reach the server. */
  Events ev2 = { 0 };
  char *dir2 = NULL;
  mark = log_mark ();
  test_assert_ok (download (cache, "org/tiny", NULL, NULL, NULL, &ev2, &dir2, &err), &err);
  g_assert_cmpstr (dir2, ==, dir);
  g_assert_cmpint (ev2.cached, ==, 4);
  log = log_since (mark);
  g_assert_null (strstr (log, "/resolve/"));
  g_assert_null (strstr (log, "/cdn/"));
  g_free (log);

  /* --all: the other weights come too, reusing the blobs already there */
  char *ep = endpoint ();
  SutraHubOptions o = { .endpoint = ep, .cache_dir = cache, .backoff_s = BACKOFF_S };
  char *dir3 = NULL;
  test_assert_ok (sutra_hub_download (&o, "org/tiny", "main", NULL, &dir3, &err), &err);
  char *bin = g_build_filename (dir3, "pytorch_model.bin", NULL);
  assert_file_equals (bin, find_file (r, "pytorch_model.bin")->data);
  g_free (bin);
  free (dir3);
  g_free (ep);

  free (dir);
  free (dir2);
  g_free (blobs);
  g_free (refc);
  g_free (ref);
  g_free (want_snap);
  g_free (cache);
}

static void
test_include_globs (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  char *dir = NULL;
  const char *inc[] = { "*.json", NULL };
  test_assert_ok (download (cache, "org/tiny", NULL, inc, NULL, NULL, &dir, &err), &err);
  char *p = g_build_filename (dir, "config.json", NULL);
  g_assert_true (g_file_test (p, G_FILE_TEST_EXISTS));
  g_free (p);
  p = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_false (g_file_test (p, G_FILE_TEST_EXISTS));
  g_free (p);
  free (dir);
  const char *inc2[] = { "sub/", NULL };                   /* "dir/" means everything under it */
  test_assert_ok (download (cache, "org/tiny", NULL, inc2, NULL, NULL, &dir, &err), &err);
  p = g_build_filename (dir, "sub/dir/extra.txt", NULL);
  g_assert_true (g_file_test (p, G_FILE_TEST_EXISTS));
  g_free (p);
  free (dir);
  /* exclude globs apply after the include globs */
  char *ep = endpoint ();
  const char *exc[] = { "*.txt", "*.bin", NULL };
  SutraHubOptions o = { .endpoint = ep, .backoff_s = BACKOFF_S, .exclude = exc };
  char *cache3 = fresh_cache ();
  o.cache_dir = cache3;
  test_assert_ok (sutra_hub_download (&o, "org/tiny", NULL, NULL, &dir, &err), &err);
  p = g_build_filename (dir, "sub/dir/extra.txt", NULL);
  g_assert_false (g_file_test (p, G_FILE_TEST_EXISTS));
  g_free (p);
  p = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_true (g_file_test (p, G_FILE_TEST_EXISTS));
  g_free (p);
  free (dir);
  g_free (cache3);
  g_free (ep);
  const char *none[] = { "*.gguf", NULL };
  dir = NULL;
  g_assert_cmpint (download (cache, "org/tiny", NULL, none, NULL, NULL, &dir, &err), ==,
                   SUTRA_ERR_NOT_FOUND);
  g_assert_null (dir);
  g_assert_nonnull (strstr (err.message, "org/tiny"));
  g_free (cache);
}

/* Gated repo: 401 without a token (AUTH + hint), success with it; the CDN redirect target
 * never sees the Authorization header. A server echoing the header back is redacted. */
static void
test_gated_token (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  char *dir = NULL;
  g_assert_cmpint (download (cache, "org/gated", NULL, NULL, "", NULL, &dir, &err), ==,
                   SUTRA_ERR_AUTH);
  g_assert_nonnull (strstr (err.message, "HF_TOKEN"));
  g_assert_nonnull (strstr (err.message, "org/gated"));
  g_assert_nonnull (strstr (err.message, "401"));
  g_assert_cmpint (download (cache, "org/gated", NULL, NULL, "hf_wrong", NULL, &dir, &err), ==,
                   SUTRA_ERR_AUTH);
  g_assert_nonnull (strstr (err.message, "refused"));
  g_mutex_lock (&srv.lock);
  int cdn_before = srv.cdn_auth_seen;
  g_mutex_unlock (&srv.lock);
  /* NULL token: taken from $HF_TOKEN (set in main) */
  test_assert_ok (download (cache, "org/gated", NULL, NULL, NULL, NULL, &dir, &err), &err);
  char *p = g_build_filename (dir, "model.safetensors", NULL);
  assert_file_equals (p, find_file (find_repo ("org/gated"), "model.safetensors")->data);
  g_free (p);
  free (dir);
  g_mutex_lock (&srv.lock);
  g_assert_cmpint (srv.cdn_auth_seen, ==, cdn_before);
  g_mutex_unlock (&srv.lock);

  g_assert_cmpint (download (cache, "org/echo", NULL, NULL, NULL, NULL, &dir, &err), ==,
                   SUTRA_ERR_AUTH);
  g_assert_nonnull (strstr (err.message, "***"));        /* the echoed token was redacted */
  assert_no_token (err.message);
  g_free (cache);
}

static void
test_not_found (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  char *dir = NULL;
  g_assert_cmpint (download (cache, "org/missing", NULL, NULL, NULL, NULL, &dir, &err), ==,
                   SUTRA_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, "org/missing"));
  g_assert_cmpint (download (cache, "org/tiny", "v9", NULL, NULL, NULL, &dir, &err), ==,
                   SUTRA_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, "org/tiny@v9"));
  g_assert_nonnull (strstr (err.message, "revision"));
  g_assert_cmpint (download (cache, "not a repo", NULL, NULL, NULL, NULL, &dir, &err), ==,
                   SUTRA_ERR_INVALID);
  g_assert_cmpint (download (cache, "org/tiny", "../../x", NULL, NULL, NULL, &dir, &err), ==,
                   SUTRA_ERR_INVALID);
  g_assert_null (dir);
  g_free (cache);
}

/* 503 twice on the revision API and once on a file: retried with backoff, then success. */
static void
test_retry_503 (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  Events ev = { .reasons = g_ptr_array_new_with_free_func (g_free) };
  char *dir = NULL;
  test_assert_ok (download (cache, "org/flaky", NULL, NULL, NULL, &ev, &dir, &err), &err);
  g_assert_cmpint (ev.retries, ==, 3);
  g_assert_nonnull (strstr (ev.reasons->pdata[0], "503"));
  char *p = g_build_filename (dir, "model.safetensors", NULL);
  assert_file_equals (p, find_file (find_repo ("org/flaky"), "model.safetensors")->data);
  g_free (p);
  free (dir);
  /* always 503: gives up after max_tries with a NETWORK error */
  Events ev2 = { 0 };
  g_assert_cmpint (download (cache, "org/down", NULL, NULL, NULL, &ev2, &dir, &err), ==,
                   SUTRA_ERR_NETWORK);
  g_assert_nonnull (strstr (err.message, "gave up after 5 tries"));
  g_assert_cmpint (ev2.retries, ==, 4);
  g_ptr_array_free (ev.reasons, TRUE);
  g_free (cache);
}

/* The server closes mid-body: the client resumes with Range and ends with the right sha256. */
static void
test_interrupted_resume (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  Events ev = { 0 };
  char *dir = NULL;
  test_assert_ok (download (cache, "org/interrupt", NULL, NULL, NULL, &ev, &dir, &err), &err);
  TFile *f = find_file (find_repo ("org/interrupt"), "model.safetensors");
  char *want = g_strdup_printf ("bytes=%zu-", g_bytes_get_size (f->data) / 2);
  char *got = last_range ();
  g_assert_cmpstr (got, ==, want);
  g_assert_cmpint (ev.retries, ==, 1);
  char *p = g_build_filename (dir, "model.safetensors", NULL);
  assert_file_equals (p, f->data);
  char *blob = g_build_filename (cache, "models--org--interrupt", "blobs", f->sha256, NULL);
  g_assert_true (g_file_test (blob, G_FILE_TEST_IS_REGULAR));
  g_free (blob);
  g_free (p);
  g_free (got);
  g_free (want);
  free (dir);
  g_free (cache);
}


/* The CDN ignores Range (200 with the whole file): the client starts over and still ends with
 * the right bytes. */
static void
test_range_ignored (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  char *dir = NULL;
  test_assert_ok (download (cache, "org/norange", NULL, NULL, NULL, NULL, &dir, &err), &err);
  TFile *f = find_file (find_repo ("org/norange"), "model.safetensors");
  char *want = g_strdup_printf ("bytes=%zu-", g_bytes_get_size (f->data) / 2);
  char *got = last_range ();
  g_assert_cmpstr (got, ==, want);                       /* it did ask to resume */
  char *p = g_build_filename (dir, "model.safetensors", NULL);
  assert_file_equals (p, f->data);
  g_free (p);
  g_free (got);
  g_free (want);
  free (dir);
  g_free (cache);
}

/* A leftover .incomplete: complete -> verified without any transfer; corrupted prefix ->
 * the resumed file fails its sha256, is deleted, and the next download succeeds. */
static void
test_stale_incomplete (void)
{
  char *cache = fresh_cache ();
  TRepo *r = find_repo ("org/interrupt");
  TFile *f = find_file (r, "model.safetensors");
  gsize n;
  const guint8 *d = g_bytes_get_data (f->data, &n);
  char *blobs = g_build_filename (cache, "models--org--interrupt", "blobs", NULL);
  g_mkdir_with_parents (blobs, 0755);
  char *inc = g_strdup_printf ("%s/%s.incomplete", blobs, f->sha256);
  g_assert_true (g_file_set_contents (inc, (const char *) d, n, NULL));
  SutraError err = { 0 };
  char *dir = NULL;
  guint mark = log_mark ();
  test_assert_ok (download (cache, "org/interrupt", NULL, NULL, NULL, NULL, &dir, &err), &err);
  char *log = log_since (mark);
  g_assert_null (strstr (log, "/cdn/"));                 /* nothing left to transfer */
  g_free (log);
  free (dir);

  char *cache2 = fresh_cache ();
  g_free (blobs);
  g_free (inc);
  blobs = g_build_filename (cache2, "models--org--interrupt", "blobs", NULL);
  g_mkdir_with_parents (blobs, 0755);
  inc = g_strdup_printf ("%s/%s.incomplete", blobs, f->sha256);
  guint8 *bad = g_memdup2 (d, n / 3);
  bad[7] ^= 0xff;                                        /* a flipped byte in the kept part */
  g_assert_true (g_file_set_contents (inc, (const char *) bad, n / 3, NULL));
  g_free (bad);
  g_assert_cmpint (download (cache2, "org/interrupt", NULL, NULL, NULL, NULL, &dir, &err), ==,
                   SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "SHA-256 mismatch"));
  g_assert_false (g_file_test (inc, G_FILE_TEST_EXISTS));
  test_assert_ok (download (cache2, "org/interrupt", NULL, NULL, NULL, NULL, &dir, &err), &err);
  char *p = g_build_filename (dir, "model.safetensors", NULL);
  assert_file_equals (p, f->data);
  g_free (p);
  free (dir);
  g_free (inc);
  g_free (blobs);
  g_free (cache2);
  g_free (cache);
}

static void
count_named (const char *dir, const char *needle, int *n)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (!d)
    return;
  const char *name;
  while ((name = g_dir_read_name (d))) {
    char *p = g_build_filename (dir, name, NULL);
    if (strstr (name, needle))
      (*n)++;
    if (g_file_test (p, G_FILE_TEST_IS_DIR) && !g_file_test (p, G_FILE_TEST_IS_SYMLINK))
      count_named (p, needle, n);
    g_free (p);
  }
  g_dir_close (d);
}

/* A file named "../evil" in the listing fails the download before anything is written. */
static void
test_unsafe_name (void)
{
  const char *tmp = test_tmpdir ();
  char *cache = g_build_filename (tmp, "deep", "hub", NULL);
  SutraError err = { 0 };
  char *dir = NULL;
  g_assert_cmpint (download (cache, "org/evil", NULL, NULL, NULL, NULL, &dir, &err), ==,
                   SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "unsafe file name '../evil'"));
  g_assert_null (dir);
  int n = 0;
  count_named (tmp, "evil", &n);
  g_assert_cmpint (n, ==, 0);
  char *snaps = repo_path (cache, "models--org--evil", "snapshots");
  g_assert_false (g_file_test (snaps, G_FILE_TEST_EXISTS));
  g_free (snaps);
  g_free (cache);
}

/* The listing's sha256 does not match the bytes: the blob is deleted, no link is made, no
 * ref is written, and the error says what happened. */
static void
test_bad_sha256 (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  char *dir = NULL;
  g_assert_cmpint (download (cache, "org/badsha", NULL, NULL, NULL, NULL, &dir, &err), ==,
                   SUTRA_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "SHA-256 mismatch"));
  g_assert_nonnull (strstr (err.message, "model.safetensors"));
  TRepo *r = find_repo ("org/badsha");
  char *snap = g_build_filename (cache, "models--org--badsha", "snapshots", r->commit,
                                 "model.safetensors", NULL);
  g_assert_false (g_file_test (snap, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (snap, G_FILE_TEST_IS_SYMLINK));
  char *blobs = repo_path (cache, "models--org--badsha", "blobs");
  int n = 0;
  count_named (blobs, "00000000000000000000000000000000000000000000000000000000000000ff", &n);
  g_assert_cmpint (n, ==, 0);                            /* neither blob nor .incomplete */
  char *ref = repo_path (cache, "models--org--badsha", "refs/main");
  g_assert_false (g_file_test (ref, G_FILE_TEST_EXISTS));
  g_free (ref);
  g_free (blobs);
  g_free (snap);
  g_free (cache);
}

typedef struct {
  char *cache;
  atomic_bool cancel;
  Events ev;
  SutraStatus st;
  SutraError err;
  char *dir;
} CancelRun;

static gpointer
cancel_thread (gpointer data)
{
  CancelRun *c = data;
  char *ep = endpoint ();
  SutraHubOptions o = { .endpoint = ep, .cache_dir = c->cache, .backoff_s = BACKOFF_S,
                        .progress = on_event, .user_data = &c->ev, .cancel = &c->cancel };
  c->st = sutra_hub_download (&o, "org/slow", NULL, NULL, &c->dir, &c->err);
  g_free (ep);
  return NULL;
}

/* The server sends 64 KiB then stalls; the cancel flag stops the download within a fraction
 * of a second and leaves a resumable .incomplete, from which the next download continues. */
static void
test_cancel_resume (void)
{
  CancelRun c = { .cache = fresh_cache () };
  atomic_init (&c.cancel, false);
  TFile *f = find_file (find_repo ("org/slow"), "model.safetensors");
  char *inc = g_strdup_printf ("%s/models--org--slow/blobs/%s.incomplete", c.cache, f->sha256);
  GThread *t = g_thread_new ("download", cancel_thread, &c);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  struct stat sb;
  while (!(stat (inc, &sb) == 0 && sb.st_size >= STALL_PREFIX)) {
    g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    g_usleep (5000);
  }
  g_usleep (50000);                                      /* well into the stall */
  gint64 t0 = g_get_monotonic_time ();
  atomic_store (&c.cancel, true);
  g_thread_join (t);
  double dt = (double) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  g_test_message ("cancel took %.3f s", dt);
  g_assert_cmpfloat (dt, <, CANCEL_MAX_S);
  g_assert_cmpint (c.st, ==, SUTRA_ERR_CANCELLED);
  g_assert_nonnull (strstr (c.err.message, "cancelled"));
  g_assert_null (c.dir);
  g_assert_cmpint (stat (inc, &sb), ==, 0);
  g_assert_cmpint (sb.st_size, ==, STALL_PREFIX);
  char *ref = repo_path (c.cache, "models--org--slow", "refs/main");
  g_assert_false (g_file_test (ref, G_FILE_TEST_EXISTS));

  /* resume */
  SutraError err = { 0 };
  char *dir = NULL;
  Events ev = { 0 };
  test_assert_ok (download (c.cache, "org/slow", NULL, NULL, NULL, &ev, &dir, &err), &err);
  char *got = last_range ();
  char *want = g_strdup_printf ("bytes=%d-", STALL_PREFIX);
  g_assert_cmpstr (got, ==, want);
  char *p = g_build_filename (dir, "model.safetensors", NULL);
  assert_file_equals (p, f->data);
  g_assert_false (g_file_test (inc, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (ref, G_FILE_TEST_EXISTS));

  g_free (p);
  g_free (want);
  g_free (got);
  free (dir);
  g_free (ref);
  g_free (inc);
  g_free (c.cache);
}

static bool
stop_at_first_progress (const SutraHubProgress *p, void *data)
{
  return p->event != SUTRA_HUB_EVENT_FILE_START;
}

static void
test_cancel_callback (void)
{
  char *cache = fresh_cache ();
  char *ep = endpoint ();
  SutraHubOptions o = { .endpoint = ep, .cache_dir = cache, .backoff_s = BACKOFF_S,
                        .progress = stop_at_first_progress };
  SutraError err = { 0 };
  char *dir = NULL;
  g_assert_cmpint (sutra_hub_download (&o, "org/tiny", NULL, NULL, &dir, &err), ==,
                   SUTRA_ERR_CANCELLED);
  g_assert_null (dir);
  g_free (ep);
  g_free (cache);
}

/* Without the tree API, metadata comes from HEAD (ETag, X-Linked-Etag, X-Linked-Size). */
static void
test_no_tree_api (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  char *dir = NULL;
  guint mark = log_mark ();
  test_assert_ok (download (cache, "org/notree", NULL, NULL, NULL, NULL, &dir, &err), &err);
  char *log = log_since (mark);
  g_assert_nonnull (strstr (log, "HEAD /org/notree/resolve/"));
  g_free (log);
  TRepo *r = find_repo ("org/notree");
  for (int i = 0; i < r->n; i++) {
    TFile *f = &r->files[i];
    char *blob = g_build_filename (cache, "models--org--notree", "blobs",
                                   f->lfs ? f->sha256 : f->oid, NULL);
    assert_file_equals (blob, f->data);
    g_free (blob);
  }
  free (dir);
  g_free (cache);
}


typedef struct {
  const char *cache;
  SutraStatus st;
  SutraError err;
  char *dir;
} ConcurrentRun;

static gpointer
concurrent_thread (gpointer data)
{
  ConcurrentRun *c = data;
  char *ep = endpoint ();
  SutraHubOptions o = { .endpoint = ep, .cache_dir = c->cache, .backoff_s = BACKOFF_S,
                        .prefer_safetensors = true };
  c->st = sutra_hub_download (&o, "org/tiny", NULL, NULL, &c->dir, &c->err);
  g_free (ep);
  return NULL;
}

/* Two threads download the same repo into the same cache at once: the blob locks serialise
 * the writers, both succeed, and the snapshot is whole. */
static void
test_concurrent (void)
{
  char *cache = fresh_cache ();
  g_free (endpoint ());                                   /* start the server first */
  ConcurrentRun runs[3];
  GThread *t[3];
  for (int i = 0; i < 3; i++) {
    runs[i] = (ConcurrentRun) { .cache = cache };
    t[i] = g_thread_new ("dl", concurrent_thread, &runs[i]);
  }
  for (int i = 0; i < 3; i++)
    g_thread_join (t[i]);
  for (int i = 0; i < 3; i++) {
    test_assert_ok (runs[i].st, &runs[i].err);
    g_assert_cmpstr (runs[i].dir, ==, runs[0].dir);
  }
  TRepo *r = find_repo ("org/tiny");
  for (int i = 0; i < r->n; i++) {
    if (strcmp (r->files[i].path, "pytorch_model.bin") == 0)
      continue;
    char *p = g_build_filename (runs[0].dir, r->files[i].path, NULL);
    assert_file_equals (p, r->files[i].data);
    g_free (p);
  }
  int leftovers = 0;
  count_named (cache, ".tmp", &leftovers);
  count_named (cache, ".incomplete", &leftovers);
  g_assert_cmpint (leftovers, ==, 0);
  for (int i = 0; i < 3; i++)
    free (runs[i].dir);
  g_free (cache);
}

/* MODEL arguments: a folder, org/name, org/name@commit, unknown names. */
static void
test_resolve_model (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  char *dir = NULL, *got = NULL;
  test_assert_ok (download (cache, "org/tiny", NULL, NULL, NULL, NULL, &dir, &err), &err);
  test_assert_ok (sutra_hub_resolve_model_in (cache, "org/tiny", &got, &err), &err);
  g_assert_cmpstr (got, ==, dir);
  free (got);
  TRepo *r = find_repo ("org/tiny");
  char *arg = g_strdup_printf ("org/tiny@%s", r->commit);
  test_assert_ok (sutra_hub_resolve_model_in (cache, arg, &got, &err), &err);
  g_assert_cmpstr (got, ==, dir);
  free (got);
  test_assert_ok (sutra_hub_resolve_model_in (cache, "org/tiny@main", &got, &err), &err);
  free (got);
  /* an existing folder wins, even one named like a repo id */
  test_assert_ok (sutra_hub_resolve_model_in (cache, dir, &got, &err), &err);
  g_assert_cmpstr (got, ==, dir);
  free (got);
  got = NULL;
  g_assert_cmpint (sutra_hub_resolve_model_in (cache, "org/other", &got, &err), ==,
                   SUTRA_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, "sutra download org/other"));
  g_assert_cmpint (sutra_hub_resolve_model_in (cache, "org/tiny@v2", &got, &err), ==,
                   SUTRA_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, "sutra download org/tiny --revision v2"));
  g_assert_cmpint (sutra_hub_resolve_model_in (cache, "./no/such/folder", &got, &err), ==,
                   SUTRA_ERR_NOT_FOUND);
  g_assert_cmpint (sutra_hub_resolve_model_in (cache, "org/tiny@../../etc", &got, &err), ==,
                   SUTRA_ERR_INVALID);
  char *cfg = g_build_filename (dir, "config.json", NULL);
  g_assert_cmpint (sutra_hub_resolve_model_in (cache, cfg, &got, &err), ==, SUTRA_ERR_INVALID);
  g_assert_null (got);
  /* default cache through $HF_HOME (set to a temporary folder in main) */
  got = NULL;
  g_assert_cmpint (sutra_hub_resolve_model ("org/tiny", &got, &err), ==, SUTRA_ERR_NOT_FOUND);
  g_free (cfg);
  g_free (arg);
  free (dir);
  g_free (cache);
}

static void
test_cache_scan (void)
{
  char *cache = fresh_cache ();
  SutraError err = { 0 };
  char *dir = NULL;
  test_assert_ok (download (cache, "org/tiny", NULL, NULL, NULL, NULL, &dir, &err), &err);
  free (dir);
  const char *inc[] = { "*.safetensors", NULL };
  test_assert_ok (download (cache, "org/gated", NULL, inc, NULL, NULL, &dir, &err), &err);
  free (dir);
  SutraHubCache *c = NULL;
  test_assert_ok (sutra_hub_cache_scan (cache, &c, &err), &err);
  g_assert_cmpuint (c->n_repos, ==, 2);
  g_assert_cmpstr (c->repos[0].repo_id, ==, "org/gated");
  g_assert_cmpstr (c->repos[1].repo_id, ==, "org/tiny");
  const SutraHubSnapshot *s = &c->repos[1].snapshots[0];
  g_assert_cmpuint (c->repos[1].n_snapshots, ==, 1);
  g_assert_true (s->loadable);
  g_assert_cmpuint (s->n_refs, ==, 1);
  g_assert_cmpstr (s->refs[0], ==, "main");
  g_assert_cmpuint (s->n_files, ==, 4);
  g_assert_cmpuint (s->n_broken, ==, 0);
  TRepo *r = find_repo ("org/tiny");
  guint64 sz = 0;
  for (int i = 0; i < r->n; i++)
    if (strcmp (r->files[i].path, "pytorch_model.bin") != 0)
      sz += g_bytes_get_size (r->files[i].data);
  g_assert_cmpuint (s->size, ==, sz);
  g_assert_cmpuint (c->repos[1].blobs_size, ==, sz);
  g_assert_false (c->repos[0].snapshots[0].loadable);   /* no config.json selected */
  sutra_hub_cache_free (c);
  /* a missing cache is an empty list */
  char *none = g_build_filename (cache, "nope", NULL);
  test_assert_ok (sutra_hub_cache_scan (none, &c, &err), &err);
  g_assert_cmpuint (c->n_repos, ==, 0);
  sutra_hub_cache_free (c);
  g_free (none);
  g_free (cache);
}

static void
test_known_models (void)
{
  size_t n;
  const SutraHubKnownModel *k = sutra_hub_known_models (&n);
  g_assert_cmpuint (n, ==, 7);
  int gated = 0;
  for (size_t i = 0; i < n; i++) {
    g_assert_true (sutra_hub_repo_id_is_valid (k[i].repo_id));
    g_assert_cmpfloat (k[i].params_m, >, 50);
    /* the download is at least the weights at 2 bytes per parameter (MB = 1e6 bytes) */
    g_assert_cmpfloat (k[i].download_mb, >=, 1.9 * k[i].params_m);
    gated += k[i].gated;
  }
  g_assert_cmpint (gated, ==, 1);
}

/* Runs the CLI with HF_HOME and HF_ENDPOINT set in the child's environment only. */
static int
run_cli_env (const char *home, const char *ep, char **out, char **errs, const char *const *args)
{
  char **env = g_get_environ ();
  env = g_environ_setenv (env, "HF_HOME", home, TRUE);
  env = g_environ_setenv (env, "HF_ENDPOINT", ep, TRUE);
  GPtrArray *argv = g_ptr_array_new ();
  g_ptr_array_add (argv, (gpointer) test_cli_path ());
  for (int i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  int status = 0;
  GError *error = NULL;
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, env, G_SPAWN_DEFAULT, NULL, NULL,
                               out, errs, &status, &error));
  g_assert_no_error (error);
  g_ptr_array_free (argv, TRUE);
  g_strfreev (env);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

/* `sutra download` prints progress on stderr and the snapshot path on stdout; the token
 * (from $HF_TOKEN) never appears in its output; `sutra models --json` lists the result. */
static void
test_cli (void)
{
  const char *home = test_tmpdir ();
  char *ep = endpoint ();
  char *out = NULL, *errs = NULL;
  const char *argv[] = { "download", "org/gated", NULL };
  int rc = run_cli_env (home, ep, &out, &errs, argv);
  if (rc != 0)
    g_error ("sutra download failed (%d): %s", rc, errs);
  TRepo *r = find_repo ("org/gated");
  char *want = g_build_filename (home, "hub", "models--org--gated", "snapshots", r->commit, NULL);
  char *line = g_strstrip (g_strdup (out));
  g_assert_cmpstr (line, ==, want);
  g_assert_nonnull (strstr (errs, "[2/2]"));
  g_assert_nonnull (strstr (errs, "100%"));
  assert_no_token (out);
  assert_no_token (errs);
  g_free (out);
  g_free (errs);

  const char *argv2[] = { "models", "--json", NULL };
  rc = run_cli_env (home, ep, &out, &errs, argv2);
  g_assert_cmpint (rc, ==, 0);
  g_assert_nonnull (strstr (out, "\"repo_id\":\"org/gated\""));
  g_assert_nonnull (strstr (out, "\"loadable\":true"));
  g_free (out);
  g_free (errs);

  const char *argv3[] = { "download", "org/missing", NULL };
  rc = run_cli_env (home, ep, &out, &errs, argv3);
  g_assert_cmpint (rc, ==, 1);
  g_assert_true (g_str_has_prefix (errs, "sutra: error: "));
  g_assert_nonnull (strstr (errs, "org/missing"));
  g_free (out);
  g_free (errs);
  const char *argv4[] = { "download", NULL };
  g_assert_cmpint (run_cli_env (home, ep, &out, &errs, argv4), ==, 2);
  g_assert_nonnull (strstr (errs, "usage: sutra download"));
  g_free (out);
  g_free (errs);
  g_free (line);
  g_free (want);
  g_free (ep);
}

/* Last: nothing the engine logged during the whole run contains the token. */
static void
test_token_never_logged (void)
{
  g_mutex_lock (&log_lock);
  g_assert_cmpuint (log_lines->len, >, 10);          /* the sink did see the downloads */
  gboolean with_token_note = FALSE;
  for (guint i = 0; i < log_lines->len; i++) {
    assert_no_token (log_lines->pdata[i]);
    with_token_note |= strstr (log_lines->pdata[i], "(with token)") != NULL;
  }
  g_mutex_unlock (&log_lock);
  g_assert_true (with_token_note);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* A private HF_HOME, our token in $HF_TOKEN, no proxies for the loopback server. */
  const char *home = test_tmpdir ();
  g_setenv ("HF_HOME", home, TRUE);
  g_unsetenv ("HF_HUB_CACHE");
  g_unsetenv ("HF_TOKEN_PATH");
  g_unsetenv ("HF_ENDPOINT");
  g_setenv ("HF_TOKEN", TOKEN, TRUE);
  g_setenv ("NO_PROXY", "127.0.0.1,localhost", TRUE);
  g_setenv ("no_proxy", "127.0.0.1,localhost", TRUE);
  log_lines = g_ptr_array_new_with_free_func (g_free);
  sutra_log_set (capture_log, NULL);
  g_mutex_init (&srv.lock);
  srv.log = g_ptr_array_new_with_free_func (g_free);
  srv.ranges = g_ptr_array_new_with_free_func (g_free);
  build_repos ();

  g_test_add_func ("/engine/hub/hash-vectors", test_hash_vectors);
  g_test_add_func ("/engine/hub/cache-dir-env", test_cache_dir_env);
  g_test_add_func ("/engine/hub/token-find", test_token_find);
  g_test_add_func ("/engine/hub/repo-id", test_repo_id);
  g_test_add_func ("/engine/hub/parsers", test_parsers);
  g_test_add_func ("/engine/hub/download-layout", test_download_layout);
  g_test_add_func ("/engine/hub/include-globs", test_include_globs);
  g_test_add_func ("/engine/hub/gated-token", test_gated_token);
  g_test_add_func ("/engine/hub/not-found", test_not_found);
  g_test_add_func ("/engine/hub/retry-503", test_retry_503);
  g_test_add_func ("/engine/hub/interrupted-resume", test_interrupted_resume);
  g_test_add_func ("/engine/hub/range-ignored", test_range_ignored);
  g_test_add_func ("/engine/hub/stale-incomplete", test_stale_incomplete);
  g_test_add_func ("/engine/hub/unsafe-name", test_unsafe_name);
  g_test_add_func ("/engine/hub/bad-sha256", test_bad_sha256);
  g_test_add_func ("/engine/hub/cancel-resume", test_cancel_resume);
  g_test_add_func ("/engine/hub/cancel-callback", test_cancel_callback);
  g_test_add_func ("/engine/hub/no-tree-api", test_no_tree_api);
  g_test_add_func ("/engine/hub/concurrent", test_concurrent);
  g_test_add_func ("/engine/hub/resolve-model", test_resolve_model);
  g_test_add_func ("/engine/hub/cache-scan", test_cache_scan);
  g_test_add_func ("/engine/hub/known-models", test_known_models);
  g_test_add_func ("/engine/hub/cli", test_cli);
  g_test_add_func ("/engine/hub/token-never-logged", test_token_never_logged);
  int rc = g_test_run ();
  server_stop ();
  sutra_log_set (NULL, NULL);
  return rc;
}
