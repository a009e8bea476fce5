/* sutra-hub-cache.c: Hugging Face cache location and scanning, MODEL resolution, token
 * lookup and the known-model table (see sutra-hub-cache.h and docs/hub.md). No network. */
#include "sutra-hub-cache.h"
#include "sutra-hub.h"
#include "sutra-hub-api.h"
#include "sutra-hub-private.h"
#include "sutra-fsutil.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TOKEN_FILE 4096
#define MAX_SCAN_DEPTH 16     /* folders inside a snapshot */

static const char *
env_nonempty (const char *name)
{
  const char *v = getenv (name);
  return v && *v ? v : NULL;
}

/* ~ expansion for values such as HF_HOME="~/hf" (huggingface_hub expands them too). */
static char *
expand_user (const char *p)
{
  if (p[0] != '~' || (p[1] && p[1] != '/'))
    return sutra_xstrdup (p);
  const char *home = env_nonempty ("HOME");
  if (!home) {
    struct passwd *pw = getpwuid (getuid ());
    home = pw && pw->pw_dir ? pw->pw_dir : "/";
  }
  return sutra_path_join (home, p + 1);
}

char *
sutra_hub_home_dir (void)
{
  const char *v = env_nonempty ("HF_HOME");
  if (v)
    return expand_user (v);
  v = env_nonempty ("XDG_CACHE_HOME");
  char *base = v ? expand_user (v) : expand_user ("~/.cache");
  char *r = sutra_path_join (base, "huggingface");
  free (base);
  return r;
}

char *
sutra_hub_cache_dir (void)
{
  const char *v = env_nonempty ("HF_HUB_CACHE");
  if (v)
    return expand_user (v);
  char *home = sutra_hub_home_dir ();
  char *r = sutra_path_join (home, "hub");
  free (home);
  return r;
}

static bool
id_part_ok (const char *s, size_t n)
{
  /* [\w.-]{1,96} starting and ending with a word character, no "--" or ".." */
  if (n == 0 || n > 96)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char) s[i];
    if (!(isalnum (c) || c == '_' || c == '-' || c == '.'))
      return false;
    if (i && (c == '-' || c == '.') && s[i - 1] == c)
      return false;
  }
  unsigned char a = (unsigned char) s[0], z = (unsigned char) s[n - 1];
  return (isalnum (a) || a == '_') && (isalnum (z) || z == '_');
}

bool
sutra_hub_repo_id_is_valid (const char *repo_id)
{
  if (!repo_id)
    return false;
  const char *slash = strchr (repo_id, '/');
  if (!slash)
    return id_part_ok (repo_id, strlen (repo_id));
  if (strchr (slash + 1, '/'))
    return false;
  size_t nl = strlen (slash + 1);
  if (nl >= 4 && strcmp (slash + 1 + nl - 4, ".git") == 0)
    return false;
  return id_part_ok (repo_id, (size_t) (slash - repo_id)) && id_part_ok (slash + 1, nl);
}

char *
sutra_hub_repo_dir (const char *cache_dir, const char *repo_id)
{
  SUTRA_ASSERT (sutra_hub_repo_id_is_valid (repo_id));
  const char *slash = strchr (repo_id, '/');
  char *name = slash ? sutra_xasprintf ("models--%.*s--%s", (int) (slash - repo_id), repo_id,
                                        slash + 1)
                     : sutra_xasprintf ("models--%s", repo_id);
  char *r = sutra_path_join (cache_dir, name);
  free (name);
  return r;
}

/* ---- token ---- */

static void
wipe_free (char *s)
{
  if (s) {
    explicit_bzero (s, strlen (s));
    free (s);
  }
}

/* Strips surrounding whitespace; refuses (without echoing) anything that cannot be an HTTP
 * header value, so a token can never inject a header line. */
static SutraStatus
clean_token (char *t, const char *source, char **out, SutraError *err)
{
  size_t n = strlen (t);
  while (n && isspace ((unsigned char) t[n - 1]))
    t[--n] = '\0';
  size_t s = 0;
  while (t[s] && isspace ((unsigned char) t[s]))
    s++;
  memmove (t, t + s, n - s + 1);
  for (const char *p = t; *p; p++)
    if ((unsigned char) *p < 0x21 || (unsigned char) *p > 0x7e)
      return sutra_error_set (err, SUTRA_ERR_AUTH,
                              "the Hugging Face token from %s contains spaces or control "
                              "characters; fix it (it is not shown here)", source);
  if (!*t) {
    *out = NULL;
    return SUTRA_OK;
  }
  *out = sutra_xstrdup (t);
  return SUTRA_OK;
}

SutraStatus
sutra_hub_token_find (char **token, SutraError *err)
{
  const char *v = env_nonempty ("HF_TOKEN");
  const char *src = "$HF_TOKEN";
  if (!v) {
    v = env_nonempty ("HUGGING_FACE_HUB_TOKEN");   /* older name, still read by huggingface_hub */
    src = "$HUGGING_FACE_HUB_TOKEN";
  }
  if (v) {
    char *t = sutra_xstrdup (v), *out = NULL;
    SutraStatus st = clean_token (t, src, &out, err);
    wipe_free (t);
    if (!st)
      *token = out;
    return st;
  }
  const char *tp = env_nonempty ("HF_TOKEN_PATH");
  char *path;
  if (tp) {
    path = expand_user (tp);
  } else {
    char *home = sutra_hub_home_dir ();
    path = sutra_path_join (home, "token");
    free (home);
  }
  char *buf = NULL;
  size_t len = 0;
  SutraError e2 = { 0 };
  SutraStatus st = sutra_read_file (path, MAX_TOKEN_FILE, &buf, &len, &e2);
  if (st == SUTRA_ERR_NOT_FOUND) {
    free (path);
    *token = NULL;
    return SUTRA_OK;
  }
  if (st) {
    /* an unreadable token file is reported, not silently skipped: a gated download would
     * otherwise fail with a confusing 401 */
    SutraStatus code = st == SUTRA_ERR_FORMAT ? SUTRA_ERR_AUTH : st;
    sutra_error_set (err, code, "cannot read the Hugging Face token file: %s", e2.message);
    free (path);
    return code;
  }
  char *out = NULL;
  if (strlen (buf) != len) {
    st = sutra_error_set (err, SUTRA_ERR_AUTH, "the token file %s contains a NUL byte", path);
  } else {
    char *src2 = sutra_xasprintf ("the file %s", path);
    st = clean_token (buf, src2, &out, err);
    free (src2);
  }
  explicit_bzero (buf, len);
  free (buf);
  free (path);
  if (!st)
    *token = out;
  return st;
}

/* ---- resolving MODEL arguments ---- */

static SutraStatus
read_ref (const char *repo, const char *rev, char commit[41], SutraError *err)
{
  char *refs = sutra_path_join (repo, "refs");
  char *p = sutra_path_join (refs, rev);
  free (refs);
  char *buf = NULL;
  size_t len = 0;
  SutraStatus st = sutra_read_file (p, 4096, &buf, &len, err);
  if (!st) {
    while (len && isspace ((unsigned char) buf[len - 1]))
      buf[--len] = '\0';
    if (!sutra_hub_is_hex (buf, 40))
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: expected a 40-hex commit hash", p);
    else
      for (int i = 0; i <= 40; i++)
        commit[i] = (char) tolower ((unsigned char) buf[i]);
  }
  free (buf);
  free (p);
  return st;
}

SutraStatus
sutra_hub_resolve_model_in (const char *cache_dir, const char *arg, char **dir, SutraError *err)
{
  if (!arg || !*arg)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "empty MODEL argument");
  if (sutra_is_dir (arg)) {
    *dir = sutra_xstrdup (arg);
    return SUTRA_OK;
  }
  char q[160];
  if (sutra_path_exists (arg))
    return sutra_error_set (err, SUTRA_ERR_INVALID,
                            "%s is a file; MODEL is a model folder or a Hugging Face repo id",
                            sutra_hub_quote (arg, q, sizeof q));
  const char *at = strchr (arg, '@');
  char *repo_id = at ? sutra_xstrndup (arg, (size_t) (at - arg)) : sutra_xstrdup (arg);
  const char *rev = at ? at + 1 : "main";
  SutraStatus st = SUTRA_OK;
  char *cache = NULL, *repo = NULL;
  if (!sutra_hub_repo_id_is_valid (repo_id)) {
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND,
                          "%s: no such model folder (and not a Hugging Face repo id)",
                          sutra_hub_quote (arg, q, sizeof q));
    goto out;
  }
  if (!*rev || !sutra_path_is_safe_relative (rev)) {
    st = sutra_error_set (err, SUTRA_ERR_INVALID, "%s: invalid revision after '@'",
                          sutra_hub_quote (arg, q, sizeof q));
    goto out;
  }
  cache = cache_dir ? sutra_xstrdup (cache_dir) : sutra_hub_cache_dir ();
  repo = sutra_hub_repo_dir (cache, repo_id);
  if (!sutra_is_dir (repo)) {
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND,
                          "%s is neither a model folder nor in the Hugging Face cache (%s); "
                          "download it with `sutra download %s%s%s`",
                          arg, cache, repo_id, at ? " --revision " : "", at ? rev : "");
    goto out;
  }
  char commit[41];
  SutraError e2 = { 0 };
  if (sutra_hub_is_hex (rev, 40)) {
    for (int i = 0; i <= 40; i++)
      commit[i] = (char) tolower ((unsigned char) rev[i]);
  } else if (read_ref (repo, rev, commit, &e2) != SUTRA_OK) {
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND,
                          "%s: revision '%s' is not in the Hugging Face cache (%s); download it "
                          "with `sutra download %s%s%s`", repo_id, rev, e2.message, repo_id,
                          at ? " --revision " : "", at ? rev : "");
    goto out;
  }
  char *snaps = sutra_path_join (repo, "snapshots");
  char *snap = sutra_path_join (snaps, commit);
  free (snaps);
  if (!sutra_is_dir (snap)) {
    st = sutra_error_set (err, SUTRA_ERR_NOT_FOUND,
                          "%s@%s: commit %s has no snapshot folder in %s; download it with "
                          "`sutra download %s%s%s`", repo_id, rev, commit, repo, repo_id,
                          at ? " --revision " : "", at ? rev : "");
    free (snap);
    goto out;
  }
  *dir = snap;
out:
  free (repo);
  free (cache);
  free (repo_id);
  return st;
}

SutraStatus
sutra_hub_resolve_model (const char *arg, char **dir, SutraError *err)
{
  return sutra_hub_resolve_model_in (NULL, arg, dir, err);
}

/* ---- scanning ---- */

static bool
has_suffix (const char *s, const char *suf)
{
  size_t a = strlen (s), b = strlen (suf);
  return a >= b && strcmp (s + a - b, suf) == 0;
}

static void
scan_snapshot_dir (const char *dir, int depth, SutraHubSnapshot *snap, bool top, bool *has_cfg,
                   bool *has_st)
{
  DIR *d = opendir (dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir (d))) {
    if (!strcmp (e->d_name, ".") || !strcmp (e->d_name, ".."))
      continue;
    char *p = sutra_path_join (dir, e->d_name);
    struct stat lst, st;
    if (lstat (p, &lst) == 0) {
      if (S_ISDIR (lst.st_mode)) {
        if (depth < MAX_SCAN_DEPTH)
          scan_snapshot_dir (p, depth + 1, snap, false, has_cfg, has_st);
      } else if (stat (p, &st) != 0) {
        snap->n_broken++;                /* dangling link: blob missing */
      } else if (S_ISREG (st.st_mode)) {
        snap->n_files++;
        snap->size += (uint64_t) st.st_size;
        if (top && strcmp (e->d_name, "config.json") == 0)
          *has_cfg = true;
        if (top && has_suffix (e->d_name, ".safetensors"))
          *has_st = true;
      }
    }
    free (p);
  }
  closedir (d);
}

/* Adds every refs/ file (recursively: "refs/pr/1") whose commit matches snapshots. */
static void
scan_refs (const char *dir, const char *prefix, SutraHubCachedRepo *r, int depth)
{
  DIR *d = opendir (dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir (d))) {
    if (e->d_name[0] == '.')
      continue;
    char *p = sutra_path_join (dir, e->d_name);
    char *name = *prefix ? sutra_xasprintf ("%s/%s", prefix, e->d_name) : sutra_xstrdup (e->d_name);
    if (sutra_is_dir (p)) {
      if (depth < 4)
        scan_refs (p, name, r, depth + 1);
    } else {
      char *buf = NULL;
      size_t len = 0;
      if (sutra_read_file (p, 4096, &buf, &len, NULL) == SUTRA_OK) {
        while (len && isspace ((unsigned char) buf[len - 1]))
          buf[--len] = '\0';
        for (size_t i = 0; i < r->n_snapshots; i++) {
          SutraHubSnapshot *s = &r->snapshots[i];
          if (strcasecmp (s->commit, buf) == 0) {
            s->refs = sutra_xrealloc (s->refs, (s->n_refs + 1) * sizeof (char *));
            s->refs[s->n_refs++] = sutra_xstrdup (name);
          }
        }
      }
      free (buf);
    }
    free (name);
    free (p);
  }
  closedir (d);
}

static void
scan_blobs (const char *dir, SutraHubCachedRepo *r)
{
  DIR *d = opendir (dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir (d))) {
    if (e->d_name[0] == '.')
      continue;
    char *p = sutra_path_join (dir, e->d_name);
    struct stat st;
    if (lstat (p, &st) == 0 && S_ISREG (st.st_mode)) {
      if (has_suffix (e->d_name, ".incomplete"))
        r->incomplete_size += (uint64_t) st.st_size;
      else
        r->blobs_size += (uint64_t) st.st_size;
    }
    free (p);
  }
  closedir (d);
}

static bool
snapshot_has_ref (const SutraHubSnapshot *s, const char *ref)
{
  for (size_t i = 0; i < s->n_refs; i++)
    if (strcmp (s->refs[i], ref) == 0)
      return true;
  return false;
}

static int
cmp_snapshot (const void *a, const void *b)
{
  const SutraHubSnapshot *x = a, *y = b;
  bool mx = snapshot_has_ref (x, "main"), my = snapshot_has_ref (y, "main");
  if (mx != my)
    return mx ? -1 : 1;
  return strcmp (x->commit, y->commit);
}

static int
cmp_repo (const void *a, const void *b)
{
  return strcmp (((const SutraHubCachedRepo *) a)->repo_id,
                 ((const SutraHubCachedRepo *) b)->repo_id);
}

/* "models--org--name" -> "org/name" (NULL when not a model folder or not a valid id). */
static char *
repo_id_from_folder (const char *name)
{
  if (strncmp (name, "models--", 8) != 0)
    return NULL;
  const char *rest = name + 8;
  const char *sep = strstr (rest, "--");
  char *id = sep ? sutra_xasprintf ("%.*s/%s", (int) (sep - rest), rest, sep + 2)
                 : sutra_xstrdup (rest);
  if (!sutra_hub_repo_id_is_valid (id)) {
    free (id);
    return NULL;
  }
  return id;
}

static void
scan_repo (const char *path, SutraHubCachedRepo *r)
{
  char *snaps = sutra_path_join (path, "snapshots");
  DIR *d = opendir (snaps);
  if (d) {
    struct dirent *e;
    while ((e = readdir (d))) {
      if (e->d_name[0] == '.')
        continue;
      char *sp = sutra_path_join (snaps, e->d_name);
      struct stat lst;
      if (lstat (sp, &lst) == 0 && S_ISDIR (lst.st_mode)) {
        r->snapshots = sutra_xrealloc (r->snapshots, (r->n_snapshots + 1) * sizeof *r->snapshots);
        SutraHubSnapshot *s = &r->snapshots[r->n_snapshots++];
        memset (s, 0, sizeof *s);
        s->commit = sutra_xstrdup (e->d_name);
        s->path = sp;
        bool cfg = false, st = false;
        scan_snapshot_dir (sp, 0, s, true, &cfg, &st);
        s->loadable = cfg && st;
        sp = NULL;
      }
      free (sp);
    }
    closedir (d);
  }
  free (snaps);
  char *refs = sutra_path_join (path, "refs");
  scan_refs (refs, "", r, 0);
  free (refs);
  char *blobs = sutra_path_join (path, "blobs");
  scan_blobs (blobs, r);
  free (blobs);
  if (r->n_snapshots > 1)
    qsort (r->snapshots, r->n_snapshots, sizeof *r->snapshots, cmp_snapshot);
}

SutraStatus
sutra_hub_cache_scan (const char *cache_dir, SutraHubCache **out, SutraError *err)
{
  SutraHubCache *c = sutra_xcalloc (1, sizeof *c);
  c->cache_dir = cache_dir ? sutra_xstrdup (cache_dir) : sutra_hub_cache_dir ();
  DIR *d = opendir (c->cache_dir);
  if (!d) {
    if (errno == ENOENT || errno == ENOTDIR) {
      *out = c;
      return SUTRA_OK;
    }
    SutraStatus st = sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "cannot list the cache %s",
                                          c->cache_dir);
    sutra_hub_cache_free (c);
    return st;
  }
  struct dirent *e;
  while ((e = readdir (d))) {
    char *id = repo_id_from_folder (e->d_name);
    if (!id)
      continue;
    char *p = sutra_path_join (c->cache_dir, e->d_name);
    if (!sutra_is_dir (p)) {
      free (p);
      free (id);
      continue;
    }
    c->repos = sutra_xrealloc (c->repos, (c->n_repos + 1) * sizeof *c->repos);
    SutraHubCachedRepo *r = &c->repos[c->n_repos++];
    memset (r, 0, sizeof *r);
    r->repo_id = id;
    r->path = p;
    scan_repo (p, r);
  }
  closedir (d);
  if (c->n_repos > 1)
    qsort (c->repos, c->n_repos, sizeof *c->repos, cmp_repo);
  *out = c;
  return SUTRA_OK;
}

void
sutra_hub_cache_free (SutraHubCache *c)
{
  if (!c)
    return;
  for (size_t i = 0; i < c->n_repos; i++) {
    SutraHubCachedRepo *r = &c->repos[i];
    for (size_t j = 0; j < r->n_snapshots; j++) {
      SutraHubSnapshot *s = &r->snapshots[j];
      for (size_t k = 0; k < s->n_refs; k++)
        free (s->refs[k]);
      free (s->refs);
      free (s->commit);
      free (s->path);
    }
    free (r->snapshots);
    free (r->repo_id);
    free (r->path);
  }
  free (c->repos);
  free (c->cache_dir);
  free (c);
}

/* ---- known-good small models ----
 * Sizes are parameter count x bytes per weight of the published safetensors (bf16 = 2,
 * f32 = 4) plus the tokenizer files, rounded; they are approximate (docs/hub.md). */
static const SutraHubKnownModel known_models[] = {
  { "HuggingFaceTB/SmolLM2-135M-Instruct", "llama", 135, 275, "bf16", "apache-2.0", false,
    "Smallest Llama-architecture chat model; fast LoRA on a laptop CPU" },
  { "HuggingFaceTB/SmolLM2-360M-Instruct", "llama", 362, 730, "bf16", "apache-2.0", false,
    "Same family as 135M, noticeably better answers, still CPU-friendly" },
  { "Qwen/Qwen2.5-0.5B-Instruct", "qwen2", 494, 1000, "bf16", "apache-2.0", false,
    "Multilingual chat model; Llama-like with biases on q/k/v (needs qwen2 support)" },
  { "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "llama", 1100, 2200, "bf16", "apache-2.0", false,
    "Llama 2 architecture at 1.1B; QLoRA recommended on 8 GB machines" },
  { "meta-llama/Llama-3.2-1B-Instruct", "llama", 1236, 2480, "bf16",
    "llama3.2 community licence", true,
    "Gated: accept the licence on the Hub and set HF_TOKEN; original/*.pth skipped" },
  { "RWKV/rwkv-4-169m-pile", "rwkv", 169, 340, "f16 (unverified)", "apache-2.0", false,
    "RNN (RWKV-4) trained on the Pile, base model; check that safetensors are published" },
  { "state-spaces/mamba-130m-hf", "mamba", 129, 520, "f32", "apache-2.0", false,
    "Selective state-space model (Mamba-1), base model, transformers layout" },
};

const SutraHubKnownModel *
sutra_hub_known_models (size_t *n)
{
  *n = sizeof known_models / sizeof known_models[0];
  return known_models;
}
