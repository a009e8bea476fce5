/* sutra-hub-cache.h: the Hugging Face Hub cache on disk, shared with huggingface_hub and
 * transformers (huggingface.co/docs/hub/local-cache), plus a table of known-good models.
 *
 *   <cache>/models--<org>--<name>/
 *     blobs/<etag>                 file bytes; etag = LFS sha256 (64 hex) or Git blob id (40 hex)
 *     blobs/<etag>.incomplete      a download in progress (resumed with an HTTP Range request)
 *     snapshots/<commit>/<path>    relative symlink to ../../blobs/<etag> (one more ../ per folder)
 *     refs/<revision>              the commit hash the revision ("main", a tag) pointed at
 *   <cache>/.locks/models--<org>--<name>/<etag>.lock   flock(2) while a blob is written
 *
 * <cache> = $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub. The access token is $HF_TOKEN, else the file $HF_TOKEN_PATH, else
 * <hf home>/token (hf home = $HF_HOME, else $XDG_CACHE_HOME/huggingface, else
 * ~/.cache/huggingface). */
#pragma once
#include "sutra-error.h"

#include <stdbool.h>
#include <stdint.h>

/* Allocated paths following the environment rules above. */
char *sutra_hub_home_dir  (void);
char *sutra_hub_cache_dir (void);
/* true for "name" or "org/name" with parts of [A-Za-z0-9._-], 1..96 chars, no "--" or ".."
 * and not starting or ending with '-' or '.' (the Hub's own rules). */
bool  sutra_hub_repo_id_is_valid (const char *repo_id);
/* "<cache>/models--org--name" (allocated); repo_id must be valid. */
char *sutra_hub_repo_dir (const char *cache_dir, const char *repo_id);
/* Finds the access token ($HF_TOKEN, then the token file). *token is NULL when there is none.
 * The token is never logged or put in an error message; wipe it (explicit_bzero) and free. */
SutraStatus sutra_hub_token_find (char **token, SutraError *err);

/* ---- listing the cache (the studio's model picker, `sutra models`) ---- */
typedef struct {
  char *commit;        /* folder name under snapshots/ */
  char *path;          /* <repo>/snapshots/<commit> */
  char **refs;         /* revisions whose refs/ file names this commit ("main", "v1.0") */
  size_t n_refs;
  uint64_t size;       /* bytes of the files it links to */
  size_t n_files;
  size_t n_broken;     /* links whose blob is missing */
  bool loadable;       /* config.json and at least one *.safetensors present at the top */
} SutraHubSnapshot;

typedef struct {
  char *repo_id;       /* "org/name" */
  char *path;          /* <cache>/models--org--name */
  uint64_t blobs_size; /* complete blobs on disk */
  uint64_t incomplete_size;   /* *.incomplete downloads waiting to be resumed */
  SutraHubSnapshot *snapshots;  /* the one refs/main names first, then by commit */
  size_t n_snapshots;
} SutraHubCachedRepo;

typedef struct {
  char *cache_dir;
  SutraHubCachedRepo *repos;   /* sorted by repo_id */
  size_t n_repos;
} SutraHubCache;

/* Scans cache_dir (NULL: sutra_hub_cache_dir()); a missing cache is an empty list. Only
 * model repos (models--*) are listed. */
SutraStatus sutra_hub_cache_scan (const char *cache_dir, SutraHubCache **out, SutraError *err);
void        sutra_hub_cache_free (SutraHubCache *cache);

/* ---- known-good small models (sizes approximate: parameters x bytes per weight of the
 * published safetensors, checked against the Hub's file listings; see docs/hub.md) ---- */
typedef struct {
  const char *repo_id;
  const char *architecture;   /* config.json model_type */
  double params_m;            /* parameters, millions */
  double download_mb;         /* approximate download with prefer_safetensors, MB (1e6) */
  const char *dtype;          /* dtype of the published weights */
  const char *licence;
  bool gated;                 /* needs an accepted licence on the Hub and HF_TOKEN */
  const char *note;           /* one line */
} SutraHubKnownModel;

const SutraHubKnownModel *sutra_hub_known_models (size_t *n);
