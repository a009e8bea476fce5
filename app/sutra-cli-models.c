/* sutra-cli-models.c: `sutra models` lists the models in the Hugging Face cache (what the
 * studio's model picker shows); --known prints the table of known-good small models. */
#include "sutra-cli.h"
#include "sutra-hub.h"
#include "sutra-hub-cache.h"

#include <stdio.h>
#include <string.h>

static void
print_json_string (const char *s)
{
  putchar ('"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    if (*p == '"' || *p == '\\')
      printf ("\\%c", *p);
    else if (*p < 0x20)
      printf ("\\u%04x", *p);
    else
      putchar (*p);
  }
  putchar ('"');
}

static const SutraHubCachedRepo *
find_cached (const SutraHubCache *c, const char *id)
{
  for (size_t i = 0; i < c->n_repos; i++)
    if (strcmp (c->repos[i].repo_id, id) == 0)
      return &c->repos[i];
  return NULL;
}

static int
cmd_models (int argc, char **argv)
{
  static const SutraCliOptSpec spec[] = { { "json", false }, { "known", false }, { NULL, false } };
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, spec))
    return 2;
  if (a.npos)
    return sutra_cli_usage_error ("models", "takes no positional arguments");
  bool json = sutra_cli_flag (&a, "json");
  SutraHubCache *c = NULL;
  SutraError err = { 0 };
  if (sutra_hub_cache_scan (NULL, &c, &err))
    return sutra_cli_fail (&err);
  if (sutra_cli_flag (&a, "known")) {
    size_t n;
    const SutraHubKnownModel *k = sutra_hub_known_models (&n);
    if (json)
      printf ("[");
    for (size_t i = 0; i < n; i++) {
      bool have = find_cached (c, k[i].repo_id) != NULL;
      if (json) {
        printf ("%s{\"repo_id\":", i ? "," : "");
        print_json_string (k[i].repo_id);
        printf (",\"architecture\":");
        print_json_string (k[i].architecture);
        printf (",\"params_m\":%g,\"download_mb\":%g,\"dtype\":", k[i].params_m,
                k[i].download_mb);
        print_json_string (k[i].dtype);
        printf (",\"licence\":");
        print_json_string (k[i].licence);
        printf (",\"gated\":%s,\"cached\":%s,\"note\":", k[i].gated ? "true" : "false",
                have ? "true" : "false");
        print_json_string (k[i].note);
        printf ("}");
      } else {
        printf ("%-38s %-6s %6.0fM  ~%5.0f MB  %-26s %s%s\n", k[i].repo_id, k[i].architecture,
                k[i].params_m, k[i].download_mb, k[i].licence,
                k[i].gated ? "[gated] " : "", have ? "[cached]" : "");
      }
    }
    if (json)
      printf ("]\n");
    sutra_hub_cache_free (c);
    return 0;
  }
  if (json) {
    printf ("{\"cache_dir\":");
    print_json_string (c->cache_dir);
    printf (",\"models\":[");
  } else if (c->n_repos == 0) {
    fprintf (stderr, "sutra: no models in %s (get one with `sutra download org/name`; "
                     "`sutra models --known` lists small ones)\n", c->cache_dir);
  } else {
    printf ("%-40s %-10s %-12s %10s %6s  %-8s %s\n", "REPO", "REVISION", "COMMIT", "SIZE",
            "FILES", "LOADABLE", "PATH");
  }
  bool first = true;
  for (size_t i = 0; i < c->n_repos; i++) {
    const SutraHubCachedRepo *r = &c->repos[i];
    for (size_t j = 0; j < r->n_snapshots; j++) {
      const SutraHubSnapshot *s = &r->snapshots[j];
      if (json) {
        printf ("%s{\"repo_id\":", first ? "" : ",");
        print_json_string (r->repo_id);
        printf (",\"commit\":");
        print_json_string (s->commit);
        printf (",\"refs\":[");
        for (size_t k = 0; k < s->n_refs; k++) {
          printf ("%s", k ? "," : "");
          print_json_string (s->refs[k]);
        }
        printf ("],\"path\":");
        print_json_string (s->path);
        printf (",\"size\":%llu,\"files\":%zu,\"broken_links\":%zu,\"loadable\":%s}",
                (unsigned long long) s->size, s->n_files, s->n_broken,
                s->loadable ? "true" : "false");
      } else {
        char size[32];
        snprintf (size, sizeof size, "%.1f MB", (double) s->size / 1e6);
        printf ("%-40s %-10s %-12.12s %10s %6zu  %-8s %s\n", r->repo_id,
                s->n_refs ? s->refs[0] : "-", s->commit, size, s->n_files,
                s->loadable ? "yes" : (s->n_broken ? "partial" : "no"), s->path);
      }
      first = false;
    }
  }
  if (json)
    printf ("]}\n");
  sutra_hub_cache_free (c);
  return 0;
}

SUTRA_CLI_COMMAND (models, "models", "[--known] [--json]",
                   "list the models in the Hugging Face cache (usable as MODEL by org/name)",
                   cmd_models)
