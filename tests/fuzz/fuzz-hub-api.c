/* fuzz-hub-api.c: the Hub API response parsers (revision JSON, tree JSON pages, Link,
 * Content-Range and ETag header values) on arbitrary bytes. Each input goes through all of
 * them; a successful listing must only hold safe, sorted, unique relative paths. */
#include "sutra-fsutil.h"
#include "sutra-hub-api.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
check_list (const SutraHubFileList *l)
{
  for (size_t i = 0; i < l->n; i++) {
    const SutraHubFile *f = &l->files[i];
    if (!sutra_path_is_safe_relative (f->path))
      abort ();
    if (i && strcmp (l->files[i - 1].path, f->path) >= 0)
      abort ();                                   /* sorted and unique */
    if (f->sha256[0] && !sutra_hub_is_hex (f->sha256, 64))
      abort ();
    if (f->git_oid[0] && !sutra_hub_is_hex (f->git_oid, 40))
      abort ();
    if (sutra_hub_file_list_find (l, f->path) != f)
      abort ();
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  SutraError err = { 0 };
  SutraHubFileList list = { 0 };
  char commit[41];
  if (sutra_hub_parse_revision ((const char *) data, size, "fuzz", commit, &list, &err) == SUTRA_OK) {
    if (!sutra_hub_is_hex (commit, 40))
      abort ();
    check_list (&list);
  }
  /* the same bytes as a tree page, merged into what the revision gave */
  if (sutra_hub_parse_tree ((const char *) data, size, "fuzz", &list, &err) == SUTRA_OK)
    check_list (&list);
  sutra_hub_file_list_clear (&list);
  if (err.message[sizeof err.message - 1] != '\0')
    abort ();

  char *s = malloc (size + 1);
  memcpy (s, data, size);
  s[size] = '\0';
  char *next = sutra_hub_parse_link_next (s);
  free (next);
  uint64_t a, b, c;
  if (sutra_hub_parse_content_range (s, &a, &b, &c)) {
    if (a != UINT64_MAX && (b < a || (c != UINT64_MAX && b >= c)))
      abort ();
  }
  char etag[65];
  if (sutra_hub_parse_etag (s, etag) && !sutra_hub_is_hex (etag, strlen (etag)))
    abort ();
  free (s);
  return 0;
}
