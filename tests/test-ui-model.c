/* test-ui-model.c: the Model page's Hugging Face side against a small fake Hub on 127.0.0.1
 * (HF_ENDPOINT): download a repo by id with progress, see it in the cache list and open it;
 * cancel a slow download and find it resumable; a repo that does not exist is an error toast,
 * not a crash. The fake Hub answers the three requests the downloader makes (sutra-hub.h):
 * the revision API, the tree API, and resolve (plain Git files: ETag = Git blob id). */
#include "studio-model-page.h"
#include "studio-test.h"

#define REPO "sutra-test/tiny-llama"
#define COMMIT "0123456789abcdef0123456789abcdef01234567"

typedef struct {
  char *path;
  GBytes *data;
  char *oid;                 /* Git blob id: SHA-1 of "blob <size>\0" + bytes */
} HubFile;

static struct {
  GSocketService *service;
  guint16 port;
  HubFile files[3];
  guint n;
  gint slow;                 /* atomic: serve file bodies in small, slow pieces */
} hub;

static char *
blob_id (GBytes *data)
{
  gsize n;
  const guint8 *d = g_bytes_get_data (data, &n);
  g_autofree char *head = g_strdup_printf ("blob %zu", n);
  GChecksum *c = g_checksum_new (G_CHECKSUM_SHA1);
  char *hex;

  g_checksum_update (c, (const guchar *) head, strlen (head) + 1);   /* with the NUL */
  g_checksum_update (c, d, n);
  hex = g_strdup (g_checksum_get_string (c));
  g_checksum_free (c);
  return hex;
}

static void
reply (GOutputStream *out, int code, const char *extra, const void *body, gsize n, gboolean head,
       gboolean slow)
{
  g_autofree char *h = g_strdup_printf ("HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s"
                                        "Connection: close\r\n\r\n", code,
                                        code == 200 ? "OK" : code == 404 ? "Not Found" : "Error",
                                        n, extra ? extra : "");

  if (!g_output_stream_write_all (out, h, strlen (h), NULL, NULL, NULL) || head || n == 0)
    return;
  if (!slow)
    {
      g_output_stream_write_all (out, body, n, NULL, NULL, NULL);
      return;
    }
  /* ~64 KB every 20 ms: a few seconds for the model file, time enough to cancel */
  for (gsize off = 0; off < n; off += 65536)
    {
      if (!g_output_stream_write_all (out, (const char *) body + off, MIN (65536, n - off), NULL,
                                      NULL, NULL))
        return;
      g_usleep (20000);
    }
}

static gboolean
on_request (GThreadedSocketService *service, GSocketConnection *conn, GObject *source, gpointer data)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
  char buf[8192];
  gsize len = 0;
  g_auto(GStrv) line = NULL;
  g_auto(GStrv) seg = NULL;
  g_autofree char *target = NULL;
  gboolean head;

  while (len < sizeof buf - 1)
    {
      gssize k = g_input_stream_read (in, buf + len, sizeof buf - 1 - len, NULL, NULL);
      if (k <= 0)
        return TRUE;
      len += k;
      buf[len] = '\0';
      if (strstr (buf, "\r\n\r\n"))
        break;
    }
  line = g_strsplit (buf, " ", 3);
  if (!line[0] || !line[1])
    return TRUE;
  head = g_str_equal (line[0], "HEAD");
  target = g_strdup (line[1]);
  if (strchr (target, '?'))
    *strchr (target, '?') = '\0';
  seg = g_strsplit (target + 1, "/", -1);

  if (g_strv_length (seg) >= 6 && g_str_equal (seg[0], "api") && g_str_equal (seg[1], "models"))
    {
      g_autofree char *id = g_strdup_printf ("%s/%s", seg[2], seg[3]);
      GString *s = g_string_new (NULL);

      if (!g_str_equal (id, REPO))
        {
          const char *msg = "{\"error\": \"Repository not found\"}";
          reply (out, 404, "X-Error-Code: RepoNotFound\r\nContent-Type: application/json\r\n",
                 msg, strlen (msg), head, FALSE);
        }
      else if (g_str_equal (seg[4], "revision"))
        {
          g_string_append_printf (s, "{\"id\": \"%s\", \"sha\": \"%s\", \"siblings\": [", REPO, COMMIT);
          for (guint i = 0; i < hub.n; i++)
            g_string_append_printf (s, "%s{\"rfilename\": \"%s\"}", i ? ", " : "", hub.files[i].path);
          g_string_append (s, "]}");
          reply (out, 200, "Content-Type: application/json\r\n", s->str, s->len, head, FALSE);
        }
      else if (g_str_equal (seg[4], "tree"))
        {
          g_string_append (s, "[");
          for (guint i = 0; i < hub.n; i++)
            g_string_append_printf (s, "%s{\"type\": \"file\", \"path\": \"%s\", \"size\": %zu, "
                                       "\"oid\": \"%s\"}", i ? ", " : "", hub.files[i].path,
                                    g_bytes_get_size (hub.files[i].data), hub.files[i].oid);
          g_string_append (s, "]");
          reply (out, 200, "Content-Type: application/json\r\n", s->str, s->len, head, FALSE);
        }
      else
        reply (out, 404, NULL, "", 0, head, FALSE);
      g_string_free (s, TRUE);
    }
  else if (g_strv_length (seg) >= 5 && g_str_equal (seg[2], "resolve"))
    {
      HubFile *f = NULL;
      for (guint i = 0; i < hub.n; i++)
        if (g_str_equal (hub.files[i].path, seg[4]))
          f = &hub.files[i];
      if (f == NULL)
        reply (out, 404, "X-Error-Code: EntryNotFound\r\n", "", 0, head, FALSE);
      else
        {
          g_autofree char *extra = g_strdup_printf ("ETag: \"%s\"\r\nX-Repo-Commit: %s\r\n", f->oid,
                                                    COMMIT);
          gsize n;
          const void *d = g_bytes_get_data (f->data, &n);
          reply (out, 200, extra, d, n, head, g_atomic_int_get (&hub.slow));
        }
    }
  else
    reply (out, 404, NULL, "", 0, head, FALSE);
  return TRUE;
}

static void
hub_start (const char *model_dir)
{
  static const char *const names[] = { "config.json", "model.safetensors", "tokenizer.json" };
  g_autoptr(GError) error = NULL;
  g_autofree char *endpoint = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *p = g_build_filename (model_dir, names[i], NULL);
      char *text;
      gsize n;
      g_assert_true (g_file_get_contents (p, &text, &n, NULL));
      hub.files[i].path = g_strdup (names[i]);
      hub.files[i].data = g_bytes_new_take (text, n);
      hub.files[i].oid = blob_id (hub.files[i].data);
    }
  hub.n = G_N_ELEMENTS (names);
  hub.service = g_threaded_socket_service_new (4);
  hub.port = g_socket_listener_add_any_inet_port (G_SOCKET_LISTENER (hub.service), NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (hub.service, "run", G_CALLBACK (on_request), NULL);
  g_socket_service_start (hub.service);
  endpoint = g_strdup_printf ("http://127.0.0.1:%u", hub.port);
  g_setenv ("HF_ENDPOINT", endpoint, TRUE);
  g_setenv ("HF_TOKEN", "", TRUE);
}

typedef struct {
  StudioWindow *win;
  StudioWorkspace *ws;
  StudioModelPage *page;
} Fixture;

static char *shared_model;

static void
setup (Fixture *f, gconstpointer data)
{
  f->win = studio_test_window_new ();
  f->ws = studio_window_get_workspace (f->win);
  f->page = STUDIO_MODEL_PAGE (studio_window_get_page (f->win, "model"));
  /* Made inside the first test, where a skip (no ../shared) is allowed. */
  if (shared_model == NULL && hub.service == NULL)
    {
      shared_model = studio_test_make_model ("tiny");
      if (shared_model)
        hub_start (shared_model);
    }
}

static void
teardown (Fixture *f, gconstpointer data)
{
  studio_test_window_destroy (f->win);
}

static void
track_fraction (StudioJob *job, GParamSpec *pspec, double *max)
{
  *max = MAX (*max, studio_job_get_fraction (job));
}

static void
keep_error (StudioWorkspace *ws, const GError *error, char **last)
{
  g_free (*last);
  *last = g_strdup (error->message);
}

static void
test_download_cancel_resume (Fixture *f, gconstpointer data)
{
  StudioJob *job;
  double max_fraction = -1;
  g_autofree char *message = NULL;
  SutraHubCache *cache = NULL;
  SutraError err = { 0 };

  if (shared_model == NULL)
    return;
  job = studio_model_page_get_download_job (f->page);
  g_signal_connect (job, "notify::fraction", G_CALLBACK (track_fraction), &max_fraction);
  g_signal_connect (f->ws, "error", G_CALLBACK (keep_error), &message);

  /* a slow transfer, cancelled once bytes are flowing: no error toast, partial data kept */
  g_atomic_int_set (&hub.slow, 1);
  studio_model_page_download (f->page, REPO);
  g_assert_true (studio_job_get_running (job));
  WAIT_UNTIL (max_fraction > 0.05, 30000);
  gtk_widget_activate_action (GTK_WIDGET (f->page), "panel.cancel-download", NULL);
  WAIT_UNTIL (!studio_job_get_running (job), 30000);
  g_assert_null (message);
  g_assert_null (studio_workspace_get_model (f->ws));
  test_assert_ok (sutra_hub_cache_scan (NULL, &cache, &err), &err);
  g_assert_cmpuint (cache->n_repos, ==, 1);
  g_assert_cmpuint (cache->repos[0].incomplete_size, >, 0);   /* resumable */
  sutra_hub_cache_free (cache);

  /* again at full speed: it completes, reports 100 %, and the model opens */
  g_atomic_int_set (&hub.slow, 0);
  max_fraction = -1;
  studio_model_page_download (f->page, REPO);
  WAIT_UNTIL (!studio_job_get_running (job), 60000);
  g_assert_null (message);
  g_assert_cmpfloat (max_fraction, ==, 1.0);
  WAIT_UNTIL (studio_workspace_get_model (f->ws) != NULL, 30000);
  g_assert_cmpstr (studio_model_get_name (studio_workspace_get_model (f->ws)), ==, REPO);
  test_assert_ok (sutra_hub_cache_scan (NULL, &cache, &err), &err);
  g_assert_cmpuint (cache->n_repos, ==, 1);
  g_assert_true (cache->repos[0].snapshots[0].loadable);
  g_assert_cmpuint (cache->repos[0].incomplete_size, ==, 0);
  sutra_hub_cache_free (cache);

  /* the repo id also opens from the cache, without a network */
  studio_workspace_open_model (f->ws, REPO);
  g_assert_false (g_str_has_prefix (studio_workspace_get_model_path (f->ws), REPO));
  g_signal_handlers_disconnect_by_data (job, &max_fraction);
  g_signal_handlers_disconnect_by_data (f->ws, &message);
}

static void
test_missing_repo_and_bad_id (Fixture *f, gconstpointer data)
{
  g_autofree char *message = NULL;
  StudioJob *job = studio_model_page_get_download_job (f->page);

  if (shared_model == NULL)
    return;
  g_signal_connect (f->ws, "error", G_CALLBACK (keep_error), &message);
  studio_model_page_download (f->page, "nobody/nothing-here");
  WAIT_UNTIL (message != NULL && !studio_job_get_running (job), 60000);
  g_assert_true (g_str_has_prefix (message, "Download failed: "));
  g_clear_pointer (&message, g_free);
  /* not a repo id at all: refused before any request */
  studio_model_page_download (f->page, "../../etc");
  g_assert_nonnull (message);
  g_assert_false (studio_job_get_running (job));
  g_signal_handlers_disconnect_by_data (f->ws, &message);
}

int
main (int argc, char **argv)
{
  int rc;

  studio_test_init (&argc, &argv);
  g_test_add ("/ui/model/download-cancel-resume", Fixture, NULL, setup,
              test_download_cancel_resume, teardown);
  g_test_add ("/ui/model/missing-repo-and-bad-id", Fixture, NULL, setup,
              test_missing_repo_and_bad_id, teardown);
  rc = g_test_run ();
  if (hub.service)
    g_socket_service_stop (hub.service);
  studio_test_cleanup ();
  return rc;
}
