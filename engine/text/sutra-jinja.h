/* sutra-jinja.h: a Jinja2 subset interpreter for Hugging Face chat templates.
 *
 * Renders templates the way transformers' apply_chat_template does: Jinja2 3.1 semantics in
 * an ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, loopcontrols and the
 * {% generation %} tag, keep_trailing_newline=False, the default Undefined, tojson replaced by
 * json.dumps(ensure_ascii=False, ...), and the globals raise_exception() and strftime_now().
 * Values follow Python: str indexing/slicing/len count code points, and/or return operands,
 * None/True print as "None"/"True". docs/chat-templates.md lists the supported subset.
 *
 * A template is parsed once (sutra_jinja_parse) and is then immutable: several threads may
 * render it at the same time. Rendering is bounded (output bytes, work steps, call depth,
 * memory), so a hostile template fails with an error instead of hanging. */
#pragma once
#include "sutra-error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;
typedef struct SutraJinjaTemplate SutraJinjaTemplate;   /* opaque, immutable once parsed */

/* Parses a template source (UTF-8). A syntax error is SUTRA_ERR_FORMAT and a construct we do
 * not implement (extends, include, an unknown filter ...) SUTRA_ERR_UNSUPPORTED; both
 * messages start "template line N: ". */
SutraStatus sutra_jinja_parse (const char *source, size_t len, SutraJinjaTemplate **out,
                               SutraError *err);
void        sutra_jinja_free  (SutraJinjaTemplate *t);

typedef struct {
  size_t max_output;     /* bytes of rendered text; 0 = 64 MiB */
  size_t max_steps;      /* evaluation steps (nodes, loop iterations, bytes copied / 64);
                            0 = 200 million */
  size_t max_memory;     /* bytes of temporary values; 0 = 512 MiB */
  int max_depth;         /* nested macro calls / recursive loops; 0 = 200 */
  int64_t now;           /* strftime_now(): seconds since the Unix epoch ... */
  bool now_local;        /* ... formatted in local time (true) or UTC (false) */
} SutraJinjaOptions;

/* Renders with the variables of `vars` (a JSON object: json null is Python None). opts may be
 * NULL (defaults; strftime_now then reads the real clock in local time). On success *out is a
 * malloc'd NUL-terminated string (free()) and *out_len its length (may be NULL).
 * Errors: raise_exception(msg) is SUTRA_ERR_INVALID with exactly msg as the message (the
 * conversation does not suit the template); other runtime errors (an undefined value used, a
 * type error) SUTRA_ERR_FORMAT, and a render limit hit SUTRA_ERR_UNSUPPORTED, both with
 * messages starting "template line N: ". */
SutraStatus sutra_jinja_render (const SutraJinjaTemplate *t, const struct json_object *vars,
                                const SutraJinjaOptions *opts, char **out, size_t *out_len,
                                SutraError *err);
