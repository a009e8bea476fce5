/* sutra-dataset-private.h: shared between sutra-dataset.c (storage, public API, split,
 * preview), sutra-dataset-read.c (JSONL / JSON array / CSV / plain-text readers) and
 * sutra-dataset-rows.c (row shapes -> token ids and loss labels). Not installed. */
#pragma once
#include "sutra-dataset.h"
#include "sutra-ops.h"                  /* SUTRA_IGNORE_INDEX (-100, Hugging Face's "no loss") */

#include <json-c/json.h>
#include <stdio.h>

#define DS_MAX_BAD_ROWS_KEPT 10000      /* messages kept; all bad rows are counted */

typedef enum {
  DS_FORMAT_JSONL,
  DS_FORMAT_JSON,                       /* one top-level array of objects */
  DS_FORMAT_CSV,
  DS_FORMAT_TSV,
  DS_FORMAT_TEXT,
} DsFormat;

struct SutraDataset {
  char *path;
  DsFormat format;
  SutraRowShape shape;
  const struct SutraTokenizer *tok;     /* borrowed from the options, for previews */
  SutraExample *ex;                     /* [n_ex]; ids/labels point into the pools */
  unsigned char *trunc;                 /* [n_ex] 1 when the example was cut to seq_len */
  size_t n_ex;
  int *ids_pool, *labels_pool;          /* owned unless this is a split half */
  bool owns_pool;
  SutraBadRow *bad;                     /* [n_bad], at most DS_MAX_BAD_ROWS_KEPT */
  size_t n_bad, bad_total;
  size_t truncated;
  int64_t tokens, loss_tokens;
};

/* Growable int32 vector whose growth failure is reported (token pools can be large). */
typedef struct {
  int *v;
  size_t n, cap;
} DsInts;

/* Everything a load needs; lives for one sutra_dataset_load call. */
typedef struct {
  SutraDataset *ds;
  const SutraDatasetOptions *o;
  const char *name;                     /* base name of the file, starts every message */
  SutraError *err;
  /* storage being built: examples hold offsets into the pools until the load ends */
  DsInts ids, labels;
  size_t *ex_off;                       /* [cap_ex] offset of example i in the pools */
  size_t cap_ex;
  /* tokenizer facts (-1 when absent / no tokenizer) */
  int bos, eos;
  bool adds_bos;
  bool warned_eos;                      /* add_eos without an EOS token: logged once */
  /* scratch for one example */
  DsInts sids, slabels;
  /* plain text: tokens carried over to the next window */
  DsInts tids;
  int *tline;                           /* [tids.cap] line of each carried token */
  size_t tline_cap;
  size_t rows_seen;                     /* rows (valid or bad) read so far */
} DsLoader;

/* ---- sutra-dataset.c ---- */
SutraStatus ds_ints_push (DsLoader *L, DsInts *a, int x);
SutraStatus ds_ints_reserve (DsLoader *L, DsInts *a, size_t n);
/* Records a bad row "<name>:<line>: <message>". Returns SUTRA_OK to go on, or the error that
 * ends the load when stop_on_bad_row is set (err filled with that message). */
SutraStatus ds_bad_row (DsLoader *L, int line, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* Takes the scratch example (sids/slabels): truncates it to seq_len, drops it as a bad row
 * when no position t >= 1 carries a label, else appends it to the pools. */
SutraStatus ds_commit_example (DsLoader *L, int line);
/* SUTRA_ERR_CANCELLED when the cancel flag is raised. */
SutraStatus ds_check_cancel (DsLoader *L);

/* ---- sutra-dataset-rows.c ---- */
/* One parsed row (an object from JSONL / JSON / CSV). Fatal errors only are returned;
 * a bad row is recorded and SUTRA_OK returned. */
SutraStatus ds_row (DsLoader *L, int line, json_object *row);
/* Plain text, fed in chunks that end on a line boundary (or a UTF-8 character boundary
 * when a line is longer than a chunk). first_line: line number of chunk[0]. */
SutraStatus ds_text_chunk (DsLoader *L, const char *chunk, size_t len, int first_line,
                           bool first);
SutraStatus ds_text_finish (DsLoader *L);

/* ---- sutra-dataset-read.c ---- */
SutraStatus ds_read (DsLoader *L, FILE *f, DsFormat format);
DsFormat    ds_format_from_name (const char *name);

/* ---- UTF-8 ---- */
/* Streaming validator (RFC 3629: no overlongs, surrogates or code points above U+10FFFF). */
typedef struct {
  int need;                             /* continuation bytes still expected */
  unsigned char lo, hi;                 /* allowed range of the next continuation byte */
  int lead_line;                        /* where the current sequence started (readers) */
  uint64_t lead_off;
} DsUtf8;
/* Feeds one byte; false when the byte makes the sequence invalid. */
bool ds_utf8_feed (DsUtf8 *u, unsigned char c);
/* Offset of the first invalid byte of s[0..n), or n when all valid. */
size_t ds_utf8_check (const char *s, size_t n);
