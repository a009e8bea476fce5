/* sutra-dataset-read.c: the dataset file readers. Each streams its file through one
 * 64 KiB buffer and hands rows to sutra-dataset-rows.c one at a time, so a file is never
 * held in memory whole (only the row being read).
 *
 *   JSONL (RFC 8259 values, one per line; https://jsonlines.org): blank lines skipped, CRLF
 *     accepted; a line that is not a JSON object is a bad row ("file:line: invalid JSON at
 *     column C: <json-c's reason>").
 *   JSON array: a top-level [ ... ] of objects, scanned element by element (strings and
 *     nesting tracked) so each element is parsed alone; rows carry the real line where the
 *     element starts and messages name the element index too.
 *   CSV / TSV with a header row, RFC 4180: quoted fields, "" for a quote, commas and line
 *     breaks inside quotes, CRLF or LF records; header names (trimmed of spaces) are the
 *     keys; a row's line is the physical line where its record starts. The cells of columns
 *     "messages", "input_ids" and "labels" hold JSON text and are parsed as JSON.
 *   Plain text: read in chunks that end at a line break, tokenized by the rows module.
 * A UTF-8 byte order mark at the start is skipped in every format. Invalid UTF-8 makes a
 * JSONL / JSON / CSV row bad (naming the line and the file offset of the first bad byte);
 * in plain text the tokenizer replaces it with U+FFFD. */
#include "sutra-dataset-private.h"
#include "sutra-json.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SRC_BUFFER (1 << 16)
#define TEXT_CHUNK ((size_t) 4 << 20)   /* plain text is tokenized in pieces of about this */
#define CANCEL_POLL 64                  /* rows between polls of the cancel flag */
#define ROW_MAX ((size_t) 1 << 30)      /* bytes in one row (json-c lengths are ints) */

/* ---- UTF-8 (RFC 3629 table 3-7 of Unicode: well-formed byte sequences) ---- */

bool
ds_utf8_feed (DsUtf8 *u, unsigned char c)
{
  if (u->need > 0) {
    if (c < u->lo || c > u->hi) {
      u->need = 0;
      return false;
    }
    u->need--;
    u->lo = 0x80;
    u->hi = 0xbf;
    return true;
  }
  u->lo = 0x80;
  u->hi = 0xbf;
  if (c < 0x80)
    return true;
  if (c >= 0xc2 && c <= 0xdf)
    u->need = 1;
  else if (c >= 0xe0 && c <= 0xef) {
    u->need = 2;
    if (c == 0xe0)
      u->lo = 0xa0;                     /* no overlong 3-byte forms */
    else if (c == 0xed)
      u->hi = 0x9f;                     /* no surrogates */
  } else if (c >= 0xf0 && c <= 0xf4) {
    u->need = 3;
    if (c == 0xf0)
      u->lo = 0x90;                     /* no overlong 4-byte forms */
    else if (c == 0xf4)
      u->hi = 0x8f;                     /* nothing above U+10FFFF */
  } else
    return false;                       /* 0x80-0xc1 (stray or overlong lead), 0xf5-0xff */
  return true;
}

size_t
ds_utf8_check (const char *s, size_t n)
{
  DsUtf8 u = { 0 };
  size_t lead = 0;
  for (size_t i = 0; i < n; i++) {
    if (u.need == 0)
      lead = i;
    if (!ds_utf8_feed (&u, (unsigned char) s[i]))
      return u.need == 0 && lead != i ? lead : i;
  }
  return u.need ? lead : n;
}

/* Feeds byte c found at (line, off). On the first invalid sequence, records where it
 * starts (its lead byte, as Python's UnicodeDecodeError reports) in *bad_line / *bad_off. */
static inline void
utf8_track (DsUtf8 *u, unsigned char c, int line, uint64_t off, int *bad_line, uint64_t *bad_off)
{
  if (u->need == 0) {
    u->lead_line = line;
    u->lead_off = off;
  }
  bool cont = u->need > 0;
  if (!ds_utf8_feed (u, c) && *bad_line == 0) {
    *bad_line = cont ? u->lead_line : line;
    *bad_off = cont ? u->lead_off : off;
  }
}

/* A sequence still open at the end of a row. */
static inline void
utf8_end (DsUtf8 *u, int *bad_line, uint64_t *bad_off)
{
  if (u->need > 0 && *bad_line == 0) {
    *bad_line = u->lead_line;
    *bad_off = u->lead_off;
  }
}

/* ---- buffered source with line and offset tracking ---- */

typedef struct {
  FILE *f;
  unsigned char *buf;                   /* [SRC_BUFFER] */
  size_t pos, len;
  bool eof;
  int line;                             /* 1-based line of the next byte */
  uint64_t off;                         /* file offset of the next byte */
} Src;

static bool
src_fill (Src *s)
{
  if (s->pos < s->len)
    return true;
  if (s->eof)
    return false;
  s->len = fread (s->buf, 1, SRC_BUFFER, s->f);
  s->pos = 0;
  if (s->len == 0)
    s->eof = true;
  return s->len > 0;
}

static inline int
src_peek (Src *s)
{
  return s->pos < s->len || src_fill (s) ? s->buf[s->pos] : -1;
}

static inline int
src_get (Src *s)
{
  if (s->pos == s->len && !src_fill (s))
    return -1;
  int c = s->buf[s->pos++];
  s->off++;
  if (c == '\n')
    s->line++;
  return c;
}

static SutraStatus
src_status (DsLoader *L, Src *s)
{
  if (ferror (s->f))
    return sutra_error_set (L->err, SUTRA_ERR_IO, "%s: read error after byte %llu", L->name,
                            (unsigned long long) s->off);
  return SUTRA_OK;
}

static void
skip_ws (Src *s)
{
  for (int c; (c = src_peek (s)) == ' ' || c == '\t' || c == '\n' || c == '\r';)
    src_get (s);
}

/* A growable byte buffer (one row's text). */
typedef struct {
  char *p;
  size_t n, cap;
} Bytes;

static void
bytes_put (Bytes *b, const void *s, size_t n)
{
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1)
      cap *= 2;
    b->p = sutra_xrealloc (b->p, cap);
    b->cap = cap;
  }
  memcpy (b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static inline void
bytes_putc (Bytes *b, char c)
{
  if (b->n + 2 <= b->cap) {
    b->p[b->n++] = c;
    b->p[b->n] = '\0';
  } else
    bytes_put (b, &c, 1);
}

/* Reads one line (without its '\n') into b; false at end of input. */
static bool
src_line (Src *s, Bytes *b)
{
  b->n = 0;
  if (b->p)
    b->p[0] = '\0';
  bool any = false;
  while (s->pos < s->len || src_fill (s)) {
    any = true;
    const unsigned char *p = s->buf + s->pos;
    size_t avail = s->len - s->pos;
    const unsigned char *nl = memchr (p, '\n', avail);
    size_t take = nl ? (size_t) (nl - p) : avail;
    bytes_put (b, p, take);
    s->pos += take;
    s->off += take;
    if (nl) {
      s->pos++;
      s->off++;
      s->line++;
      return true;
    }
  }
  if (!b->p)
    bytes_put (b, "", 0);
  return any;
}

/* ---- JSON parsing of one row ---- */

/* Parses text[0..len) (text[len] == '\0') as one JSON value followed only by whitespace.
 * On failure returns NULL with the byte offset of the problem and json-c's reason. */
static json_object *
parse_value (json_tokener *jt, const char *text, size_t len, size_t *bad, const char **why)
{
  if (len >= ROW_MAX) {                 /* json-c takes an int length */
    *bad = 0;
    *why = "row longer than 1 GiB";
    return NULL;
  }
  json_tokener_reset (jt);
  /* passing the terminating NUL lets json-c finish a bare top-level number */
  json_object *v = json_tokener_parse_ex (jt, text, (int) len + 1);
  enum json_tokener_error e = json_tokener_get_error (jt);
  size_t end = json_tokener_get_parse_end (jt);
  if (end > len)
    end = len;
  if (!v || e != json_tokener_success) {
    json_object_put (v);
    *bad = end;
    *why = e == json_tokener_continue || end >= len ? "unexpected end of the value"
                                                    : json_tokener_error_desc (e);
    return NULL;
  }
  while (end < len && (text[end] == ' ' || text[end] == '\t' || text[end] == '\r' ||
                       text[end] == '\n'))
    end++;
  if (end < len) {
    json_object_put (v);
    *bad = end;
    *why = "unexpected data after the JSON value";
    return NULL;
  }
  return v;
}

static json_tokener *
new_tokener (void)
{
  json_tokener *jt = json_tokener_new_ex (JSON_TOKENER_DEFAULT_DEPTH);
  SUTRA_ASSERT (jt);
  json_tokener_set_flags (jt, JSON_TOKENER_STRICT);
  return jt;
}

static bool
blank (const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
      return false;
  return true;
}

/* ---- JSONL ---- */

static SutraStatus
read_jsonl (DsLoader *L, Src *s)
{
  Bytes b = { 0 };
  json_tokener *jt = new_tokener ();
  SutraStatus st = SUTRA_OK;
  for (;;) {
    int line = s->line;
    uint64_t line_off = s->off;
    if (!src_line (s, &b))
      break;
    if (b.n > 0 && b.p[b.n - 1] == '\r')
      b.p[--b.n] = '\0';
    if (blank (b.p, b.n))
      continue;
    if (++L->rows_seen % CANCEL_POLL == 0 && (st = ds_check_cancel (L)))
      break;
    size_t bad = ds_utf8_check (b.p, b.n);
    const char *nul = memchr (b.p, '\0', b.n);
    if (bad < b.n) {
      st = ds_bad_row (L, line, "invalid UTF-8 at byte %zu of the line (file offset %llu)",
                       bad + 1, (unsigned long long) (line_off + bad));
    } else if (nul) {
      st = ds_bad_row (L, line, "NUL byte at column %zu", (size_t) (nul - b.p) + 1);
    } else if (b.n >= ROW_MAX) {
      st = ds_bad_row (L, line, "line of %zu bytes is too long (1 GiB at most)", b.n);
    } else {
      const char *why;
      json_object *row = parse_value (jt, b.p, b.n, &bad, &why);
      if (!row)
        st = ds_bad_row (L, line, "invalid JSON at column %zu: %s", bad + 1, why);
      else if (!json_object_is_type (row, json_type_object))
        st = ds_bad_row (L, line, "expected a JSON object, got %s", sutra_json_type_name (row));
      else
        st = ds_row (L, line, row);
      json_object_put (row);
    }
    if (st)
      break;
  }
  json_tokener_free (jt);
  free (b.p);
  return st ? st : src_status (L, s);
}

/* ---- JSON array ---- */

static SutraStatus
json_element (DsLoader *L, json_tokener *jt, Bytes *e, size_t index, int line, int bad_line,
              uint64_t bad_off)
{
  if (bad_line > 0)
    return ds_bad_row (L, line, "element %zu: invalid UTF-8 on line %d (file offset %llu)", index,
                       bad_line, (unsigned long long) bad_off);
  while (e->n > 0 && blank (e->p + e->n - 1, 1))
    e->p[--e->n] = '\0';
  if (e->n == 0)
    return ds_bad_row (L, line, "element %zu: missing value (an extra comma?)", index);
  if (memchr (e->p, '\0', e->n))
    return ds_bad_row (L, line, "element %zu: NUL byte in the JSON text", index);
  size_t bad;
  const char *why;
  json_object *row = parse_value (jt, e->p, e->n, &bad, &why);
  SutraStatus st;
  if (!row) {
    int l = line;
    size_t col = 1;
    for (size_t i = 0; i < bad; i++, col++)
      if (e->p[i] == '\n') {
        l++;
        col = 0;
      }
    st = ds_bad_row (L, line, "element %zu: invalid JSON (line %d, column %zu%s): %s", index, l,
                     col, l == line ? " of the element" : "", why);
  } else if (!json_object_is_type (row, json_type_object))
    st = ds_bad_row (L, line, "element %zu: expected a JSON object, got %s", index,
                     sutra_json_type_name (row));
  else
    st = ds_row (L, line, row);
  json_object_put (row);
  return st;
}

static SutraStatus
read_json_array (DsLoader *L, Src *s)
{
  skip_ws (s);
  if (src_get (s) != '[')
    return sutra_error_set (L->err, SUTRA_ERR_FORMAT, "%s:%d: expected a JSON array '['", L->name,
                            s->line);
  Bytes e = { 0 };
  json_tokener *jt = new_tokener ();
  SutraStatus st = SUTRA_OK;
  bool closed = false;
  skip_ws (s);
  if (src_peek (s) == ']') {
    src_get (s);
    closed = true;
  }
  for (size_t index = 0; !closed && st == SUTRA_OK; index++) {
    skip_ws (s);
    int line = s->line, bad_line = 0;
    uint64_t bad_off = 0;
    e.n = 0;
    int depth = 0, c;
    bool in_str = false, esc = false;
    DsUtf8 u = { 0 };
    /* an element runs to the ',' or ']' found outside strings at nesting depth 0 */
    while ((c = src_peek (s)) >= 0) {
      if (!in_str && depth == 0 && (c == ',' || c == ']'))
        break;
      utf8_track (&u, (unsigned char) c, s->line, s->off, &bad_line, &bad_off);
      src_get (s);
      bytes_putc (&e, (char) c);
      if (in_str) {
        if (esc)
          esc = false;
        else if (c == '\\')
          esc = true;
        else if (c == '"')
          in_str = false;
      } else if (c == '"')
        in_str = true;
      else if (c == '{' || c == '[')
        depth++;
      else if ((c == '}' || c == ']') && depth > 0)
        depth--;
    }
    if (c < 0) {
      /* the array never closes: the rest of the file is one broken element */
      st = ds_bad_row (L, line, "element %zu: unexpected end of file (%s)", index,
                       in_str ? "unterminated string" : depth > 0 ? "unclosed { or [" : "no closing ]");
      closed = true;
      break;
    }
    if ((++L->rows_seen % CANCEL_POLL == 0) && (st = ds_check_cancel (L)))
      break;
    st = json_element (L, jt, &e, index, line, bad_line, bad_off);
    if (src_get (s) == ']')
      closed = true;
  }
  if (st == SUTRA_OK && closed) {
    skip_ws (s);
    if (src_peek (s) >= 0)
      st = sutra_error_set (L->err, SUTRA_ERR_FORMAT,
                            "%s:%d: unexpected data after the closing ] of the JSON array", L->name,
                            s->line);
  }
  json_tokener_free (jt);
  free (e.p);
  return st ? st : src_status (L, s);
}

/* ---- CSV (RFC 4180) ---- */

typedef struct {
  Bytes text;                           /* all fields of the record, NUL-separated */
  size_t *start, *len;                  /* [n] field i = text.p + start[i], len[i] bytes */
  size_t n, cap;
  int line;                             /* physical line where the record starts */
  const char *problem;                  /* static reason the record is malformed, or NULL */
  int bad_line;                         /* invalid UTF-8: its line and file offset */
  uint64_t bad_off;
  bool blank;                           /* nothing but a line break */
} Record;

static void
rec_end_field (Record *r, size_t field_start)
{
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->start = sutra_xrealloc (r->start, r->cap * sizeof *r->start);
    r->len = sutra_xrealloc (r->len, r->cap * sizeof *r->len);
  }
  r->start[r->n] = field_start;
  r->len[r->n] = r->text.n - field_start;
  r->n++;
  bytes_putc (&r->text, '\0');
}

/* Reads one record; false at end of input (nothing read). */
static bool
csv_record (Src *s, char delim, Record *r)
{
  r->text.n = 0;
  r->n = 0;
  r->problem = NULL;
  r->bad_line = 0;
  r->line = s->line;
  r->blank = false;
  if (src_peek (s) < 0)
    return false;
  enum { FIELD_START, UNQUOTED, QUOTED, AFTER_QUOTE } state = FIELD_START;
  size_t fs = 0;
  int c;
  DsUtf8 u = { 0 };
  for (;;) {
    int line = s->line;
    uint64_t off = s->off;
    c = src_get (s);
    if (c >= 0)
      utf8_track (&u, (unsigned char) c, line, off, &r->bad_line, &r->bad_off);
    else
      utf8_end (&u, &r->bad_line, &r->bad_off);
    if (state == QUOTED) {
      if (c < 0) {
        r->problem = "unterminated quoted field (the file ends inside quotes)";
        rec_end_field (r, fs);
        return true;
      }
      if (c == '"') {
        if (src_peek (s) == '"') {
          src_get (s);
          bytes_putc (&r->text, '"');
        } else
          state = AFTER_QUOTE;
      } else
        bytes_putc (&r->text, (char) c);
      continue;
    }
    if (c < 0 || c == '\n' || c == '\r') {
      if (c == '\r') {
        if (src_peek (s) == '\n')
          src_get (s);
        else
          s->line++;                    /* a lone CR ends a line too */
      }
      r->blank = state == FIELD_START && r->n == 0;
      rec_end_field (r, fs);
      return true;
    }
    if (c == delim) {
      rec_end_field (r, fs);
      fs = r->text.n;
      state = FIELD_START;
      continue;
    }
    if (state == FIELD_START && c == '"') {
      state = QUOTED;
      continue;
    }
    if (state == AFTER_QUOTE && !r->problem)
      r->problem = "unexpected character after a closing quote (quotes inside a field must be doubled)";
    bytes_putc (&r->text, (char) c);
    state = UNQUOTED;
  }
}

static bool
json_column (const char *name)
{
  return !strcmp (name, "messages") || !strcmp (name, "input_ids") || !strcmp (name, "labels");
}

static SutraStatus
csv_row (DsLoader *L, json_tokener *jt, Record *r, char **names, size_t ncol)
{
  if (r->bad_line)
    return ds_bad_row (L, r->line, "invalid UTF-8 on line %d (file offset %llu)", r->bad_line,
                       (unsigned long long) r->bad_off);
  if (r->problem)
    return ds_bad_row (L, r->line, "%s", r->problem);
  if (r->n != ncol)
    return ds_bad_row (L, r->line, "%zu fields, the header has %zu", r->n, ncol);
  if (r->text.n >= ROW_MAX)
    return ds_bad_row (L, r->line, "record of %zu bytes is too long (1 GiB at most)", r->text.n);
  json_object *row = json_object_new_object ();
  SutraStatus st = SUTRA_OK;
  bool bad = false;
  for (size_t j = 0; j < ncol && !bad; j++) {
    if (!names[j][0])
      continue;                         /* unnamed column (an index): ignored */
    const char *v = r->text.p + r->start[j];
    size_t n = r->len[j];
    if (json_column (names[j])) {
      if (blank (v, n))
        continue;                       /* empty cell: the key is absent */
      size_t at;
      const char *why = "NUL byte";
      json_object *jv = memchr (v, '\0', n) ? NULL : parse_value (jt, v, n, &at, &why);
      if (!jv) {
        st = ds_bad_row (L, r->line, "column \"%s\": invalid JSON: %s", names[j], why);
        bad = true;
      } else
        json_object_object_add (row, names[j], jv);
    } else
      json_object_object_add (row, names[j], json_object_new_string_len (v, (int) n));
  }
  if (!bad)
    st = ds_row (L, r->line, row);
  json_object_put (row);
  return st;
}

static SutraStatus
read_csv (DsLoader *L, Src *s, char delim)
{
  Record r = { 0 };
  SutraStatus st = SUTRA_OK;
  bool have = csv_record (s, delim, &r);
  while (have && r.blank)
    have = csv_record (s, delim, &r);
  if (!have)
    goto out;                           /* no header: an empty file */
  if (r.problem || r.bad_line) {
    st = sutra_error_set (L->err, SUTRA_ERR_FORMAT, "%s:%d: header row: %s", L->name, r.line,
                          r.problem ? r.problem : "invalid UTF-8");
    goto out;
  }
  size_t ncol = r.n;
  char **names = sutra_xcalloc (ncol, sizeof *names);
  for (size_t j = 0; j < ncol; j++) {
    const char *v = r.text.p + r.start[j];
    size_t a = 0, b = r.len[j];
    while (a < b && isspace ((unsigned char) v[a]))
      a++;
    while (b > a && isspace ((unsigned char) v[b - 1]))
      b--;
    names[j] = sutra_xstrndup (v + a, b - a);
    for (size_t k = 0; k < j && st == SUTRA_OK; k++)
      if (names[j][0] && !strcmp (names[k], names[j]))
        st = sutra_error_set (L->err, SUTRA_ERR_FORMAT, "%s:%d: header row: column \"%s\" appears twice",
                              L->name, r.line, names[j]);
  }
  json_tokener *jt = new_tokener ();
  while (st == SUTRA_OK && csv_record (s, delim, &r)) {
    if (r.blank)
      continue;
    if (++L->rows_seen % CANCEL_POLL == 0 && (st = ds_check_cancel (L)))
      break;
    st = csv_row (L, jt, &r, names, ncol);
  }
  json_tokener_free (jt);
  for (size_t j = 0; j < ncol; j++)
    free (names[j]);
  free (names);
out:
  free (r.text.p);
  free (r.start);
  free (r.len);
  return st ? st : src_status (L, s);
}

/* ---- plain text ---- */

static SutraStatus
read_text (DsLoader *L, Src *s)
{
  /* buf holds the unprocessed tail of the previous chunk followed by newly read bytes;
   * each round hands everything up to the last line break to the tokenizer */
  size_t cap = TEXT_CHUNK + SRC_BUFFER;
  char *buf = sutra_xmalloc (cap);
  size_t n = 0;
  int line = s->line;
  bool first = true;
  SutraStatus st = SUTRA_OK;
  for (;;) {
    while (n < TEXT_CHUNK && (s->pos < s->len || src_fill (s))) {
      size_t take = s->len - s->pos;
      if (take > cap - n)
        take = cap - n;
      memcpy (buf + n, s->buf + s->pos, take);
      s->pos += take;
      n += take;
    }
    bool end = s->pos >= s->len && !src_fill (s);
    size_t cut = n;
    if (!end) {
      const char *nl = memrchr (buf, '\n', n);
      if (nl)
        cut = (size_t) (nl - buf) + 1;
      else {
        /* a line longer than a chunk: cut before the last (possibly incomplete) character */
        for (int k = 0; k < 3 && cut > 1 && ((unsigned char) buf[cut - 1] & 0xc0) == 0x80; k++)
          cut--;
        if (cut > 1 && ((unsigned char) buf[cut - 1] & 0xc0) == 0xc0)
          cut--;
      }
    }
    if ((st = ds_check_cancel (L)))
      break;
    if (cut > 0 && (st = ds_text_chunk (L, buf, cut, line, first)))
      break;
    first = false;
    for (size_t i = 0; i < cut; i++)
      line += buf[i] == '\n';
    memmove (buf, buf + cut, n - cut);
    n -= cut;
    if (end && n == 0)
      break;
  }
  free (buf);
  if (st == SUTRA_OK)
    st = src_status (L, s);
  if (st == SUTRA_OK)
    st = ds_text_finish (L);
  return st;
}

/* ---- dispatch ---- */

DsFormat
ds_format_from_name (const char *name)
{
  const char *dot = strrchr (name, '.');
  if (!dot)
    return DS_FORMAT_TEXT;
  if (!strcasecmp (dot, ".jsonl") || !strcasecmp (dot, ".ndjson"))
    return DS_FORMAT_JSONL;
  if (!strcasecmp (dot, ".json"))
    return DS_FORMAT_JSON;
  if (!strcasecmp (dot, ".csv"))
    return DS_FORMAT_CSV;
  if (!strcasecmp (dot, ".tsv"))
    return DS_FORMAT_TSV;
  return DS_FORMAT_TEXT;
}

SutraStatus
ds_read (DsLoader *L, FILE *f, DsFormat format)
{
  Src s = { .f = f, .buf = sutra_xmalloc (SRC_BUFFER), .line = 1 };
  if (src_fill (&s) && s.len >= 3 && !memcmp (s.buf, "\xef\xbb\xbf", 3)) {
    s.pos = 3;                          /* UTF-8 byte order mark */
    s.off = 3;
  }
  SutraStatus st;
  if (format == DS_FORMAT_JSON || format == DS_FORMAT_JSONL) {
    /* .json and .jsonl alike: a file whose first value opens with '[' is one JSON array,
     * anything else is JSON Lines */
    skip_ws (&s);
    format = src_peek (&s) == '[' ? DS_FORMAT_JSON : DS_FORMAT_JSONL;
  }
  L->ds->format = format;
  switch (format) {
  case DS_FORMAT_JSONL: st = read_jsonl (L, &s); break;
  case DS_FORMAT_JSON: st = read_json_array (L, &s); break;
  case DS_FORMAT_CSV: st = read_csv (L, &s, ','); break;
  case DS_FORMAT_TSV: st = read_csv (L, &s, '\t'); break;
  default: st = read_text (L, &s); break;
  }
  free (s.buf);
  return st;
}
