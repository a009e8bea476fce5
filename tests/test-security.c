/* test-security.c: issue 10 part 6.
 *   network   only the Hub transport (engine/io/sutra-hub.c) may use libcurl or sockets (a
 *             source scan), and every command that never needs the network works with
 *             HF_ENDPOINT on a closed port and, where a network namespace can be made, with
 *             no network at all (a model given by repo id resolves from the local cache);
 *   token     HF_TOKEN set to a unique string never appears in stdout, stderr or any file
 *             written by info, models, train, resume, export or download, even when the
 *             server echoes the Authorization header back in its error body;
 *   writes    `sutra` refuses to write through a symlink that leads out of a model folder
 *             (export, train's run folder, logits --out), and writes inside it otherwise. */
#include "test-util.h"
#include "sutra-fsutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char *tmp, *model, *data, *hf_home, *closed_endpoint, *token;

/* ---- a one-file-at-a-time HTTP server that refuses everything and echoes the auth ---- */

static struct {
  int fd, port;
  pthread_t thread;
  atomic_int stop, requests, with_token;
} srv;

static void *
serve (void *u)
{
  while (!atomic_load (&srv.stop)) {
    int c = accept (srv.fd, NULL, NULL);
    if (c < 0)
      continue;
    char req[8192];
    size_t n = 0;
    while (n < sizeof req - 1) {
      ssize_t k = read (c, req + n, sizeof req - 1 - n);
      if (k <= 0)
        break;
      n += (size_t) k;
      req[n] = '\0';
      if (strstr (req, "\r\n\r\n"))
        break;
    }
    req[n] = '\0';
    atomic_fetch_add (&srv.requests, 1);
    /* a hostile server: the error body repeats what the client sent for authorization */
    char auth[512] = "none";
    char *a = strcasestr (req, "\r\nAuthorization: ");
    if (a) {
      a += 17;
      size_t l = strcspn (a, "\r\n");
      snprintf (auth, sizeof auth, "%.*s", (int) l, a);
      if (strstr (auth, token))
        atomic_fetch_add (&srv.with_token, 1);
    }
    char body[1024], resp[2048];
    snprintf (body, sizeof body, "{\"error\": \"Invalid credentials in Authorization header: %s\"}", auth);
    int len = snprintf (resp, sizeof resp, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                        "X-Error-Message: bad token %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                        auth, strlen (body), body);
    if (write (c, resp, (size_t) len) < 0)
      g_test_message ("server write: %s", g_strerror (errno));
    close (c);
  }
  return NULL;
}

static void
server_start (void)
{
  srv.fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (srv.fd, >=, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  g_assert_cmpint (bind (srv.fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  socklen_t sl = sizeof sa;
  g_assert_cmpint (getsockname (srv.fd, (struct sockaddr *) &sa, &sl), ==, 0);
  srv.port = ntohs (sa.sin_port);
  g_assert_cmpint (listen (srv.fd, 16), ==, 0);
  pthread_create (&srv.thread, NULL, serve, NULL);
}

static void
server_stop (void)
{
  atomic_store (&srv.stop, 1);
  shutdown (srv.fd, SHUT_RDWR);
  close (srv.fd);
  pthread_join (srv.thread, NULL);
}

/* A loopback port nobody listens on (bound, then closed). */
static int
closed_port (void)
{
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  g_assert_cmpint (bind (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  socklen_t sl = sizeof sa;
  getsockname (fd, (struct sockaddr *) &sa, &sl);
  close (fd);
  return ntohs (sa.sin_port);
}

/* ---- running the CLI: our environment, optionally without any network ---- */

static bool netns_ok;

static void
no_network (gpointer u)
{
  /* a fresh network namespace has only a loopback device, and it is down */
  if (unshare (CLONE_NEWNET) != 0)
    _exit (125);
}

static int
run (char **out, char **errs, const char *endpoint, bool offline, const char *const *argv)
{
  GPtrArray *args = g_ptr_array_new ();
  g_ptr_array_add (args, (gpointer) test_cli_path ());
  for (int i = 0; argv[i]; i++)
    g_ptr_array_add (args, (gpointer) argv[i]);
  g_ptr_array_add (args, NULL);
  char **envp = g_get_environ ();
  envp = g_environ_setenv (envp, "HF_HOME", hf_home, TRUE);
  envp = g_environ_unsetenv (envp, "HF_HUB_CACHE");
  envp = g_environ_unsetenv (envp, "HF_TOKEN_PATH");
  envp = g_environ_setenv (envp, "HF_ENDPOINT", endpoint, TRUE);
  envp = g_environ_setenv (envp, "HF_TOKEN", token, TRUE);
  envp = g_environ_setenv (envp, "NO_PROXY", "127.0.0.1,localhost", TRUE);
  envp = g_environ_setenv (envp, "SUTRA_VERBOSE", "1", TRUE);   /* every log line shown */
  int status;
  GError *error = NULL;
  g_spawn_sync (NULL, (char **) args->pdata, envp, G_SPAWN_DEFAULT,
                offline && netns_ok ? no_network : NULL, NULL, out, errs, &status, &error);
  g_assert_no_error (error);
  g_strfreev (envp);
  g_ptr_array_free (args, TRUE);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
assert_no_token_in (const char *what, const char *text)
{
  if (text && strstr (text, token))
    g_error ("the token leaked into %s:\n%s", what, text);
}

/* every file under dir (not following symlinks out of it) */
static int
grep_tree (const char *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (!d)
    return 0;
  int files = 0;
  const char *n;
  while ((n = g_dir_read_name (d))) {
    char *p = g_build_filename (dir, n, NULL);
    if (g_file_test (p, G_FILE_TEST_IS_DIR) && !g_file_test (p, G_FILE_TEST_IS_SYMLINK))
      files += grep_tree (p);
    else if (g_file_test (p, G_FILE_TEST_IS_REGULAR)) {
      char *text;
      gsize len;
      g_assert_true (g_file_get_contents (p, &text, &len, NULL));
      if (memmem (text, len, token, strlen (token)))
        g_error ("the token leaked into the file %s", p);
      g_free (text);
      files++;
    }
    g_free (p);
  }
  g_dir_close (d);
  return files;
}

/* ---- set-up: a model in the local HF cache, a dataset ---- */

static void
setup (void)
{
  tmp = g_strdup (test_tmpdir ());
  token = g_strdup_printf ("hf_SutraLeakCanary%08x%08x", g_random_int (), g_random_int ());
  hf_home = g_build_filename (tmp, "hf-home", NULL);
  model = test_tiny_model_folder (tmp, "model", 16, 2, 64, 9);
  /* the same model as a cached repo, the way `sutra download local/tiny` leaves it */
  const char *commit = "0123456789abcdef0123456789abcdef01234567";
  char *snap = g_build_filename (hf_home, "hub", "models--local--tiny", "snapshots", commit, NULL);
  char *refs = g_build_filename (hf_home, "hub", "models--local--tiny", "refs", NULL);
  g_assert_cmpint (g_mkdir_with_parents (snap, 0755), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (refs, 0755), ==, 0);
  const char *files[] = { "config.json", "model.safetensors" };
  for (size_t i = 0; i < G_N_ELEMENTS (files); i++) {
    char *s = g_build_filename (model, files[i], NULL), *d = g_build_filename (snap, files[i], NULL);
    SutraError err;
    test_assert_ok (sutra_copy_file (s, d, &err), &err);
    g_free (s);
    g_free (d);
  }
  char *main_ref = g_build_filename (refs, "main", NULL);
  g_assert_true (g_file_set_contents (main_ref, commit, -1, NULL));
  data = test_tiny_dataset (tmp, "rows.jsonl", 12, 5, 64);
  closed_endpoint = g_strdup_printf ("http://127.0.0.1:%d", closed_port ());
  /* can this process make network namespaces (root, or unprivileged user namespaces)? */
  const char *probe[] = { "--help", NULL };
  netns_ok = true;
  char *o = NULL, *e = NULL;
  int rc = run (&o, &e, closed_endpoint, true, probe);
  netns_ok = rc == 0;
  g_free (o);
  g_free (e);
  g_free (main_ref);
  g_free (refs);
  g_free (snap);
}

/* ---- tests ---- */

static bool
is_ident (char c)
{
  return g_ascii_isalnum (c) || c == '_';
}

/* Network use in C source: calls of the socket API (an identifier followed by '('), libcurl,
 * GIO/libsoup networking, and the headers that bring them. */
static void
scan_file (const char *path, GPtrArray *hits)
{
  static const char *calls[] = { "socket", "connect", "getaddrinfo", "gethostbyname", "sendto",
                                 "recvfrom", "sendmsg", "recvmsg" };
  static const char *prefixes[] = { "curl_", "CURL", "g_socket_", "GSocket", "g_resolver_",
                                    "GResolver", "soup_", "g_network_", "GNetwork" };
  static const char *headers[] = { "<curl/", "<sys/socket.h>", "<netdb.h>", "<netinet/", "<libsoup" };
  char *text;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  for (const char *p = text; *p; p++) {
    if (is_ident (*p) && p > text && is_ident (p[-1]))
      continue;                                    /* inside an identifier */
    for (size_t i = 0; i < G_N_ELEMENTS (calls); i++) {
      size_t n = strlen (calls[i]);
      if (strncmp (p, calls[i], n) || is_ident (p[n]))
        continue;
      const char *q = p + n;
      while (*q == ' ')
        q++;
      if (*q == '(')
        g_ptr_array_add (hits, g_strdup_printf ("%s: %s (", path, calls[i]));
    }
    for (size_t i = 0; i < G_N_ELEMENTS (prefixes); i++)
      if (!strncmp (p, prefixes[i], strlen (prefixes[i])))
        g_ptr_array_add (hits, g_strdup_printf ("%s: %s", path, prefixes[i]));
  }
  for (size_t i = 0; i < G_N_ELEMENTS (headers); i++)
    if (strstr (text, headers[i]))
      g_ptr_array_add (hits, g_strdup_printf ("%s: %s", path, headers[i]));
  g_free (text);
}

static void
scan_dir (const char *dir, GPtrArray *hits, int *files)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  if (!d)
    return;
  const char *n;
  while ((n = g_dir_read_name (d))) {
    char *p = g_build_filename (dir, n, NULL);
    if (g_file_test (p, G_FILE_TEST_IS_DIR))
      scan_dir (p, hits, files);
    else if ((g_str_has_suffix (n, ".c") || g_str_has_suffix (n, ".h")) &&
             /* the Hub transport and its private header are the one place for the network */
             strcmp (n, "sutra-hub.c") && strcmp (n, "sutra-hub-private.h")) {
      scan_file (p, hits);
      (*files)++;
    }
    g_free (p);
  }
  g_dir_close (d);
}

static void
test_network_only_in_hub (void)
{
  GPtrArray *hits = g_ptr_array_new_with_free_func (g_free);
  int files = 0;
  const char *dirs[] = { "engine", "app", "ui" };
  for (size_t i = 0; i < G_N_ELEMENTS (dirs); i++)
    scan_dir (test_source_path (dirs[i]), hits, &files);
  for (guint i = 0; i < hits->len; i++)
    g_test_message ("network use outside the Hub transport: %s", (char *) hits->pdata[i]);
  g_test_message ("%d source files scanned", files);
  g_assert_cmpuint (files, >, 50);
  g_assert_cmpuint (hits->len, ==, 0);
  g_ptr_array_unref (hits);
}

/* Runs a command that must work offline; checks its output for the token. */
static void
offline_ok (const char *const *argv)
{
  char *out = NULL, *errs = NULL;
  int rc = run (&out, &errs, closed_endpoint, true, argv);
  if (rc != 0)
    g_error ("sutra %s failed offline (%d)%s:\n%s", argv[0], rc,
             netns_ok ? " in a network namespace without network" : "", errs);
  assert_no_token_in ("stdout", out);
  assert_no_token_in ("stderr", errs);
  g_free (out);
  g_free (errs);
}

static void
test_offline_commands (void)
{
  g_test_message ("commands run with HF_ENDPOINT=%s%s", closed_endpoint,
                  netns_ok ? " in a fresh network namespace (no network at all)"
                           : " (no network namespace could be made here)");
  char *run_dir = g_build_filename (tmp, "run", NULL), *cfg = g_build_filename (tmp, "train.json", NULL);
  char *json = g_strdup_printf ("{\"model\": \"local/tiny\", \"data\": \"%s\", \"output_dir\": \"%s\", "
                                "\"max_steps\": 4, \"save_every\": 2, \"seq_len\": 16, "
                                "\"micro_batch_size\": 2, \"threads\": 1, \"lora_r\": 2}", data, run_dir);
  g_assert_true (g_file_set_contents (cfg, json, -1, NULL));
  char *logits = g_build_filename (tmp, "logits.safetensors", NULL);
  char *peft = g_build_filename (tmp, "peft", NULL), *merged = g_build_filename (tmp, "merged", NULL);
  char *tok = g_build_filename (tmp, "tokenizer.json", NULL), *corpus = g_build_filename (tmp, "corpus.txt", NULL);
  g_assert_true (g_file_set_contents (corpus, "the quick brown fox jumps over the lazy dog\n", -1, NULL));
  char *ck = g_build_filename (run_dir, "checkpoints", "step-000002", NULL);
  char *quant = g_build_filename (tmp, "quantized", NULL);
  const char *const cmds[][12] = {
    { "info", "local/tiny", NULL },
    { "info", model, "--json", NULL },
    { "models", NULL },
    { "logits", "local/tiny", "--ids", "1 2 3", "--out", logits, NULL },
    { "train", cfg, NULL },
    { "resume", run_dir, "--checkpoint", ck, NULL },
    { "export", run_dir, "--peft", peft, NULL },
    { "export", run_dir, "--model", "local/tiny", "--merged", merged, NULL },
    { "tokenizer-train", "--input", corpus, "--vocab-size", "260", "--out", tok, NULL },
    { "tokenize", tok, "--text", "the fox", NULL },
    { "detokenize", tok, "--ids", "116 104 101", NULL },
    { "quantize", "local/tiny", "--method", "nf4", "--out", quant, NULL },
    { "info", quant, NULL },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cmds); i++)
    offline_ok (cmds[i]);
  /* every file written (run folder, exports, cache) is free of the token */
  int files = grep_tree (tmp);
  g_test_message ("%d files written or read back checked for the token", files);
  g_assert_cmpint (files, >, 15);
  g_free (quant); g_free (ck); g_free (corpus); g_free (tok); g_free (merged); g_free (peft); g_free (logits);
  g_free (json); g_free (cfg); g_free (run_dir);
}

static void
test_token_not_leaked_by_download (void)
{
  server_start ();
  char *ep = g_strdup_printf ("http://127.0.0.1:%d", srv.port);
  char *out = NULL, *errs = NULL;
  const char *argv[] = { "download", "org/private-model", NULL };
  int rc = run (&out, &errs, ep, false, argv);
  g_test_message ("download from a server that refuses and echoes credentials: exit %d: %s", rc, errs);
  g_assert_cmpint (rc, ==, 1);
  g_assert_nonnull (strstr (errs, "sutra: error: "));
  g_assert_cmpint (atomic_load (&srv.requests), >, 0);
  g_assert_cmpint (atomic_load (&srv.with_token), >, 0);     /* the token was really in play */
  assert_no_token_in ("stdout", out);
  assert_no_token_in ("stderr", errs);
  g_free (out);
  g_free (errs);
  /* (a closed port is not tried here: five retries with back-off take 15 s; test-hub covers
   * retries and their messages) */
  grep_tree (tmp);
  server_stop ();
  g_free (ep);
}

static void
test_no_writes_through_symlinks (void)
{
  /* a model folder whose "exports" entry leads elsewhere */
  char *m = test_tiny_model_folder (tmp, "linked-model", 16, 2, 64, 9);
  char *outside = g_build_filename (tmp, "outside", NULL), *link = g_build_filename (m, "exports", NULL);
  g_assert_cmpint (g_mkdir_with_parents (outside, 0755), ==, 0);
  g_assert_cmpint (symlink (outside, link), ==, 0);
  char *run_dir = g_build_filename (tmp, "sym-run", NULL), *cfg = g_build_filename (tmp, "sym.json", NULL);
  char *json = g_strdup_printf ("{\"model\": \"%s\", \"data\": \"%s\", \"output_dir\": \"%s\", "
                                "\"max_steps\": 2, \"seq_len\": 16, \"micro_batch_size\": 2, "
                                "\"threads\": 1, \"lora_r\": 2, \"save_every\": 0}", m, data, run_dir);
  g_assert_true (g_file_set_contents (cfg, json, -1, NULL));
  char *out = NULL, *errs = NULL;
  const char *train[] = { "train", cfg, "--quiet", NULL };
  g_assert_cmpint (run (&out, &errs, closed_endpoint, true, train), ==, 0);
  g_free (out);
  g_free (errs);
  char *evil_merged = g_build_filename (link, "merged", NULL), *evil_run = g_build_filename (link, "run", NULL);
  char *evil_logits = g_build_filename (link, "l.safetensors", NULL);
  char *good = g_build_filename (m, "real-exports", "merged", NULL);
  const char *const refused[][10] = {
    { "export", run_dir, "--model", m, "--merged", evil_merged, NULL },
    { "export", run_dir, "--model", m, "--peft", evil_merged, NULL },
    { "train", cfg, "--output_dir", evil_run, NULL },
    { "logits", m, "--ids", "1 2", "--out", evil_logits, NULL },
    { "quantize", m, "--method", "int8", "--out", evil_run, NULL },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (refused); i++) {
    int rc = run (&out, &errs, closed_endpoint, true, refused[i]);
    g_test_message ("sutra %s into a symlink out of the model folder: exit %d: %s", refused[i][0], rc, errs);
    g_assert_cmpint (rc, ==, 1);
    g_assert_nonnull (strstr (errs, "refusing to write"));
    g_free (out);
    g_free (errs);
  }
  /* nothing landed outside */
  GDir *d = g_dir_open (outside, 0, NULL);
  g_assert_null (g_dir_read_name (d));
  g_dir_close (d);
  /* a real folder inside the model folder is fine */
  const char *ok[] = { "export", run_dir, "--model", m, "--merged", good, NULL };
  g_assert_cmpint (run (&out, &errs, closed_endpoint, true, ok), ==, 0);
  g_free (out);
  g_free (errs);
  g_free (good); g_free (evil_logits); g_free (evil_run); g_free (evil_merged);
  g_free (json); g_free (cfg); g_free (run_dir); g_free (link); g_free (outside); g_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  setup ();
  g_test_add_func ("/engine/security/network-only-in-hub", test_network_only_in_hub);
  g_test_add_func ("/engine/security/offline-commands", test_offline_commands);
  g_test_add_func ("/engine/security/token-not-leaked-by-download", test_token_not_leaked_by_download);
  g_test_add_func ("/engine/security/no-writes-through-symlinks", test_no_writes_through_symlinks);
  return g_test_run ();
}
