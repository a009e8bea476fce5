/* sutra-hub.h: download model repositories from the Hugging Face Hub into the cache that
 * huggingface_hub and transformers share (layout: sutra-hub-cache.h), and turn MODEL
 * arguments into folders. The only module of libsutra that touches the network (libcurl).
 *
 * Protocol (huggingface_hub's snapshot_download, docs/hub.md):
 *   GET {endpoint}/api/models/{repo}/revision/{rev}       -> commit + file names
 *   GET {endpoint}/api/models/{repo}/tree/{commit}?recursive=true  -> sizes, Git ids, LFS
 *       sha256 (pages linked by `Link: <...>; rel="next"`); when that endpoint is missing,
 *       HEAD .../resolve/{commit}/{path} gives ETag / X-Linked-Etag / X-Linked-Size instead
 *   GET {endpoint}/{repo}/resolve/{commit}/{path}          -> bytes (may redirect to a CDN)
 * Files resume from blobs/<etag>.incomplete with HTTP Range; network errors, 5xx and 429
 * are retried with exponential backoff; LFS files are checked against their SHA-256 and
 * plain Git files against their blob id. The token ($HF_TOKEN or huggingface_hub's token
 * file) goes only to the endpoint's scheme+host+port, never to a redirect target elsewhere,
 * and never into a log line or error message. */
#pragma once
#include "sutra-error.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
  SUTRA_HUB_EVENT_LISTED,         /* commit and file list known (n_files, total) */
  SUTRA_HUB_EVENT_FILE_START,     /* a file starts (file_done > 0 when resuming) */
  SUTRA_HUB_EVENT_FILE_PROGRESS,  /* bytes arrived (at most ~10 calls/s per file) */
  SUTRA_HUB_EVENT_FILE_DONE,      /* verified and linked (cached = it was already there) */
  SUTRA_HUB_EVENT_RETRY,          /* a request failed; retrying after retry_delay_s */
} SutraHubEvent;

typedef struct {
  SutraHubEvent event;
  const char *repo_id;
  const char *commit;             /* NULL before LISTED */
  const char *file;               /* path in the repo; NULL for LISTED */
  size_t file_index, n_files;     /* 0-based index among the selected files */
  uint64_t file_done, file_total; /* file_total 0 = unknown */
  uint64_t done, total;           /* all selected files (total counts known sizes) */
  bool cached;
  int attempt;                    /* RETRY: the attempt about to start (2 = first retry) */
  double retry_delay_s;
  const char *reason;             /* RETRY: what failed (never contains the token) */
} SutraHubProgress;

/* Called on the downloading thread. Return false to cancel. */
typedef bool (*SutraHubProgressFunc) (const SutraHubProgress *p, void *user_data);

typedef struct {
  const char *endpoint;        /* NULL: $HF_ENDPOINT, else https://huggingface.co */
  const char *cache_dir;       /* NULL: sutra_hub_cache_dir () */
  const char *token;           /* NULL: $HF_TOKEN or the token file; "" = send none */
  int max_tries;               /* tries per request without progress, 0: 5 */
  double backoff_s;            /* first retry delay, 0: 1 s; doubles, capped at 30 s */
  double stall_timeout_s;      /* a transfer receiving nothing this long is retried, 0: 60 */
  double connect_timeout_s;    /* 0: 30 */
  /* When the repo has *.safetensors weights, skip other weight formats (*.bin, *.pth, *.pt,
   * *.ckpt, *.h5, *.msgpack, *.onnx*, *.gguf, *.tflite, *.ot) unless an include glob names
   * them. `sutra download` turns this on; --all turns it off. */
  bool prefer_safetensors;
  const char *const *exclude;  /* NULL-terminated fnmatch globs, or NULL */
  SutraHubProgressFunc progress;
  void *user_data;
  atomic_bool *cancel;         /* optional; any thread may set it; seen within ~0.1 s */
} SutraHubOptions;             /* all-zero = defaults */

/* Downloads repo_id ("org/name") at revision (NULL: "main"; a branch, tag or commit) into
 * the cache, keeping only files matching one of the include globs (NULL or empty = all;
 * fnmatch without FNM_PATHNAME like huggingface_hub, "dir/" means "dir/ *"). Returns the
 * snapshot folder (allocated). Errors: SUTRA_ERR_AUTH (401/403: gated or private repo, hint
 * about HF_TOKEN), SUTRA_ERR_NOT_FOUND (repo, revision or file), SUTRA_ERR_NETWORK (after
 * the retries), SUTRA_ERR_FORMAT (bad listing, unsafe file name, checksum mismatch),
 * SUTRA_ERR_CANCELLED (partial files stay as .incomplete and resume next time). refs/<rev>
 * is written last, so it only ever names a snapshot whose selected files are complete. */
SutraStatus sutra_hub_download (const SutraHubOptions *opts, const char *repo_id,
                                const char *revision, const char *const *include,
                                char **snapshot_dir, SutraError *err);

/* MODEL argument -> folder (allocated): an existing folder is returned as given; otherwise
 * "org/name" or "org/name@rev" is looked up in the cache (refs/<rev>, default "main", or a
 * commit hash) and its snapshot folder returned; else SUTRA_ERR_NOT_FOUND with a message
 * suggesting `sutra download org/name`. No network. */
SutraStatus sutra_hub_resolve_model    (const char *arg, char **dir, SutraError *err);
/* The same against an explicit cache folder (NULL: sutra_hub_cache_dir ()). */
SutraStatus sutra_hub_resolve_model_in (const char *cache_dir, const char *arg, char **dir,
                                        SutraError *err);
