/* sutra-hub-api.h: parsers for the Hugging Face Hub API responses the downloader reads,
 * apart from the network code so that a fuzz target can feed them arbitrary bytes.
 *
 *  GET {endpoint}/api/models/{repo}/revision/{rev}
 *      {"id": "org/name", "sha": "<40-hex commit>",
 *       "siblings": [{"rfilename": "config.json"}, ...]}
 *  GET {endpoint}/api/models/{repo}/tree/{rev}?recursive=true   (one page; more pages are
 *      announced by an RFC 8288 header  Link: <url>; rel="next")
 *      [{"type": "file", "path": "model.safetensors", "size": 269060552, "oid": "<git blob sha1>",
 *        "lfs": {"oid": "<sha256>", "size": 269060552, "pointerSize": 135}},
 *       {"type": "directory", "path": "onnx", "oid": "...", "size": 0}, ...]
 *
 * Every file name goes through sutra_path_is_safe_relative: one name that could escape the
 * cache ("..", "/abs", "a\\b", control characters) fails the whole listing with
 * SUTRA_ERR_FORMAT, so a hostile server cannot make us write outside the repo folder. */
#pragma once
#include "sutra-error.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  char *path;           /* safe relative path inside the repo (owned) */
  uint64_t size;        /* bytes, valid when has_size */
  bool has_size;
  char git_oid[41];     /* Git blob id (SHA-1 hex) or "" when unknown */
  char sha256[65];      /* LFS SHA-256 hex, "" when the file is not in LFS */
} SutraHubFile;

typedef struct {
  SutraHubFile *files;  /* sorted by path after every parse call */
  size_t n, cap;
} SutraHubFileList;     /* zero-initialise; free with sutra_hub_file_list_clear */

void          sutra_hub_file_list_clear (SutraHubFileList *list);
/* Borrowed pointer into the list or NULL. */
SutraHubFile *sutra_hub_file_list_find  (const SutraHubFileList *list, const char *path);

/* Revision endpoint: writes the commit (lower-case hex) and adds every sibling to files
 * (name only). `what` names the response in messages ("org/name@main"). */
SutraStatus sutra_hub_parse_revision (const char *json, size_t len, const char *what,
                                      char commit[41], SutraHubFileList *files, SutraError *err);
/* One page of the tree endpoint: adds or completes entries of type "file" (size, Git id,
 * LFS sha256); directories are skipped after their names are checked. */
SutraStatus sutra_hub_parse_tree     (const char *json, size_t len, const char *what,
                                      SutraHubFileList *files, SutraError *err);

/* ---- header values ---- */
/* Link header value -> the URL with rel="next" (allocated) or NULL. */
char *sutra_hub_parse_link_next     (const char *value);
/* "bytes START-END/TOTAL"; an asterisk may stand for TOTAL, or for START-END in a 416
 * reply. Unknown parts are set to UINT64_MAX. False when the value is not of that form. */
bool  sutra_hub_parse_content_range (const char *value, uint64_t *start, uint64_t *end,
                                     uint64_t *total);
/* ETag / X-Linked-Etag value ("abc", W/"abc") -> lower-case hex when it is 40 or 64 hex
 * digits (Git blob id or SHA-256); false otherwise. */
bool  sutra_hub_parse_etag          (const char *value, char out[65]);
/* true when s is exactly n hex digits. */
bool  sutra_hub_is_hex              (const char *s, size_t n);
