/* sutra-dataset.c: dataset storage, loading entry points, accessors, the seeded
 * validation split and the loss-highlighting preview (see sutra-dataset.h and
 * docs/datasets.md). The file readers are in sutra-dataset-read.c, the row shapes in
 * sutra-dataset-rows.c.
 *
 * Storage: all ids of a dataset live in one int32 pool and all labels in another, in
 * example order; a SutraExample points into them. While loading, examples record pool
 * offsets (the pools grow by realloc), and pointers are set once loading ends. The halves
 * made by sutra_dataset_split point into their source's pools. */
#include "sutra-dataset-private.h"
#include "sutra-rng.h"
#include "sutra-tokenizer.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DS_DEFAULT_SEQ_LEN 512
#define DS_STDIO_BUFFER (1 << 16)

void
sutra_dataset_options_init (SutraDatasetOptions *o)
{
  SUTRA_ASSERT (o);
  memset (o, 0, sizeof *o);
  o->seq_len = DS_DEFAULT_SEQ_LEN;
  o->mask_prompt = true;
  o->add_eos = true;
}

const char *
sutra_row_shape_name (SutraRowShape s)
{
  switch (s) {
  case SUTRA_ROWS_TEXT: return "text";
  case SUTRA_ROWS_PROMPT_COMPLETION: return "prompt-completion";
  case SUTRA_ROWS_ALPACA: return "alpaca";
  case SUTRA_ROWS_CHAT: return "chat";
  case SUTRA_ROWS_TOKENS: return "tokens";
  case SUTRA_ROWS_PLAIN_TEXT: return "plain-text";
  case SUTRA_ROWS_UNKNOWN: break;
  }
  return "unknown";
}

/* ---- growable int vectors ---- */

SutraStatus
ds_ints_reserve (DsLoader *L, DsInts *a, size_t n)
{
  if (n <= a->cap)
    return SUTRA_OK;
  size_t cap = a->cap ? a->cap : 256;
  while (cap < n) {
    if (cap > SIZE_MAX / 2 / sizeof (int))
      return sutra_error_set (L->err, SUTRA_ERR_NOMEM, "%s: too many tokens", L->name);
    cap *= 2;
  }
  int *v = realloc (a->v, cap * sizeof (int));
  if (!v)
    return sutra_error_set (L->err, SUTRA_ERR_NOMEM, "%s: out of memory holding %zu tokens (%zu MiB)",
                            L->name, cap, cap * sizeof (int) >> 20);
  a->v = v;
  a->cap = cap;
  return SUTRA_OK;
}

SutraStatus
ds_ints_push (DsLoader *L, DsInts *a, int x)
{
  if (a->n == a->cap) {
    SutraStatus st = ds_ints_reserve (L, a, a->n + 1);
    if (st)
      return st;
  }
  a->v[a->n++] = x;
  return SUTRA_OK;
}

SutraStatus
ds_check_cancel (DsLoader *L)
{
  if (L->o->cancel && *L->o->cancel)
    return sutra_error_set (L->err, SUTRA_ERR_CANCELLED, "%s: loading cancelled", L->name);
  return SUTRA_OK;
}

/* ---- bad rows ---- */

SutraStatus
ds_bad_row (DsLoader *L, int line, const char *fmt, ...)
{
  char why[SUTRA_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (why, sizeof why, fmt, ap);
  va_end (ap);
  SutraDataset *ds = L->ds;
  ds->bad_total++;
  if (L->o->stop_on_bad_row)
    return sutra_error_set (L->err, SUTRA_ERR_FORMAT, "%s:%d: %s", L->name, line, why);
  if (ds->n_bad < DS_MAX_BAD_ROWS_KEPT) {
    if ((ds->n_bad & (ds->n_bad - 1)) == 0)    /* 0, 1, 2, 4, ...: grow by doubling */
      ds->bad = sutra_xrealloc (ds->bad, (ds->n_bad ? ds->n_bad * 2 : 1) * sizeof *ds->bad);
    ds->bad[ds->n_bad].line = line;
    ds->bad[ds->n_bad].message = sutra_xasprintf ("%s:%d: %s", L->name, line, why);
    ds->n_bad++;
  }
  sutra_log (SUTRA_LOG_DEBUG, "dataset: bad row %s:%d: %s", L->name, line, why);
  return SUTRA_OK;
}

/* ---- examples ---- */

/* Positions that contribute to the causal-LM loss: t >= 1 (logits at t-1 predict t) with a
 * label other than -100. */
static int64_t
count_loss (const int *labels, int n)
{
  int64_t k = 0;
  for (int t = 1; t < n; t++)
    k += labels[t] != SUTRA_IGNORE_INDEX;
  return k;
}

SutraStatus
ds_commit_example (DsLoader *L, int line)
{
  SutraDataset *ds = L->ds;
  SUTRA_ASSERT (L->sids.n == L->slabels.n);
  size_t full = L->sids.n, n = full;
  L->sids.n = L->slabels.n = 0;
  if (n == 0)
    return ds_bad_row (L, line, "no tokens");
  bool cut = false;
  if (n > (size_t) L->o->seq_len) {
    cut = true;
    n = (size_t) L->o->seq_len;
  }
  int64_t loss = count_loss (L->slabels.v, (int) n);
  if (loss == 0) {
    if (cut && count_loss (L->slabels.v, (int) full) > 0)
      return ds_bad_row (L, line, "no token carries loss within the first %d tokens (seq_len): "
                         "the prompt fills the whole window", L->o->seq_len);
    return ds_bad_row (L, line, "no token carries loss (nothing to learn from this row)");
  }
  SutraStatus st;
  if ((st = ds_ints_reserve (L, &L->ids, L->ids.n + n)) ||
      (st = ds_ints_reserve (L, &L->labels, L->labels.n + n)))
    return st;
  if (ds->n_ex == L->cap_ex) {
    L->cap_ex = L->cap_ex ? L->cap_ex * 2 : 64;
    ds->ex = sutra_xrealloc (ds->ex, L->cap_ex * sizeof *ds->ex);
    ds->trunc = sutra_xrealloc (ds->trunc, L->cap_ex);
    L->ex_off = sutra_xrealloc (L->ex_off, L->cap_ex * sizeof *L->ex_off);
  }
  memcpy (L->ids.v + L->ids.n, L->sids.v, n * sizeof (int));
  memcpy (L->labels.v + L->labels.n, L->slabels.v, n * sizeof (int));
  L->ex_off[ds->n_ex] = L->ids.n;
  ds->ex[ds->n_ex] = (SutraExample) { .ids = NULL, .labels = NULL, .n = (int) n, .line = line };
  ds->trunc[ds->n_ex] = cut;
  ds->n_ex++;
  L->ids.n += n;
  L->labels.n += n;
  ds->truncated += cut;
  ds->tokens += (int64_t) n;
  ds->loss_tokens += loss;
  return SUTRA_OK;
}

/* ---- loading ---- */

static const char *
base_name (const char *path)
{
  const char *s = strrchr (path, '/');
  return s && s[1] ? s + 1 : path;
}

static void
loader_clear (DsLoader *L)
{
  free (L->ids.v);
  free (L->labels.v);
  free (L->ex_off);
  free (L->sids.v);
  free (L->slabels.v);
  free (L->tids.v);
  free (L->tline);
}

static SutraStatus
load_stream (const char *path, FILE *f, const SutraDatasetOptions *o, SutraDataset **out,
             SutraError *err)
{
  const char *name = base_name (path);
  if (o->seq_len < 2)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: seq_len %d is too small (at least 2)",
                            name, o->seq_len);
  if (o->vocab_size < 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: vocab_size %d is negative", name,
                            o->vocab_size);
  SutraDataset *ds = sutra_xcalloc (1, sizeof *ds);
  ds->path = sutra_xstrdup (path);
  ds->format = ds_format_from_name (name);
  ds->tok = o->tokenizer;
  ds->owns_pool = true;
  DsLoader L = { .ds = ds, .o = o, .name = name, .err = err, .bos = -1, .eos = -1 };
  if (o->tokenizer) {
    L.bos = sutra_tokenizer_role_id (o->tokenizer, SUTRA_TOK_BOS);
    L.eos = sutra_tokenizer_role_id (o->tokenizer, SUTRA_TOK_EOS);
    L.adds_bos = sutra_tokenizer_adds_bos (o->tokenizer);
  }
  SutraStatus st = ds_read (&L, f, ds->format);
  if (st == SUTRA_OK && ds->n_ex == 0) {
    if (ds->bad_total > 0)
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: no usable rows: all %zu rows are bad; first: %s",
                            name, ds->bad_total, ds->bad[0].message);
    else
      st = sutra_error_set (err, SUTRA_ERR_FORMAT, "%s: no examples (the file has no rows)", name);
  }
  if (st != SUTRA_OK) {
    loader_clear (&L);
    sutra_dataset_free (ds);
    return st;
  }
  /* give back the slack of the doubling growth, then point the examples into the pools */
  ds->ids_pool = L.ids.v;
  ds->labels_pool = L.labels.v;
  L.ids.v = L.labels.v = NULL;
  if (L.ids.n < L.ids.cap) {
    int *a = realloc (ds->ids_pool, L.ids.n * sizeof (int));
    int *b = realloc (ds->labels_pool, L.ids.n * sizeof (int));
    if (a)
      ds->ids_pool = a;
    if (b)
      ds->labels_pool = b;
  }
  for (size_t i = 0; i < ds->n_ex; i++) {
    ds->ex[i].ids = ds->ids_pool + L.ex_off[i];
    ds->ex[i].labels = ds->labels_pool + L.ex_off[i];
  }
  sutra_log (SUTRA_LOG_INFO, "dataset %s: %zu examples (%s rows), %lld tokens, %lld with loss, "
             "%zu bad rows, %zu truncated", name, ds->n_ex, sutra_row_shape_name (ds->shape),
             (long long) ds->tokens, (long long) ds->loss_tokens, ds->bad_total, ds->truncated);
  loader_clear (&L);
  *out = ds;
  return SUTRA_OK;
}

SutraStatus
sutra_dataset_load (const char *path, const SutraDatasetOptions *o, SutraDataset **out,
                    SutraError *err)
{
  SUTRA_ASSERT (path && o && out);
  FILE *f = fopen (path, "rb");
  if (!f)
    return sutra_error_set_sys (err, errno == ENOENT ? SUTRA_ERR_NOT_FOUND : SUTRA_ERR_IO, errno,
                                "%s", path);
  setvbuf (f, NULL, _IOFBF, DS_STDIO_BUFFER);
  SutraStatus st = load_stream (path, f, o, out, err);
  fclose (f);
  return st;
}

SutraStatus
sutra_dataset_load_buffer (const void *data, size_t len, const char *name,
                           const SutraDatasetOptions *o, SutraDataset **out, SutraError *err)
{
  SUTRA_ASSERT ((data || len == 0) && name && o && out);
  static const char empty[1] = "";
  /* glibc's fmemopen refuses a zero size on some versions; an empty buffer is an empty file */
  FILE *f = fmemopen ((void *) (len ? data : empty), len ? len : 1, "rb");
  if (!f)
    return sutra_error_set_sys (err, SUTRA_ERR_IO, errno, "%s: fmemopen", name);
  if (len == 0)
    fgetc (f);                          /* consume the stand-in byte: reads now see EOF */
  SutraStatus st = load_stream (name, f, o, out, err);
  fclose (f);
  return st;
}

void
sutra_dataset_free (SutraDataset *ds)
{
  if (!ds)
    return;
  if (ds->owns_pool) {
    free (ds->ids_pool);
    free (ds->labels_pool);
  }
  for (size_t i = 0; i < ds->n_bad; i++)
    free (ds->bad[i].message);
  free (ds->bad);
  free (ds->ex);
  free (ds->trunc);
  free (ds->path);
  free (ds);
}

/* ---- accessors ---- */

size_t
sutra_dataset_count (const SutraDataset *ds)
{
  return ds ? ds->n_ex : 0;
}

const SutraExample *
sutra_dataset_get (const SutraDataset *ds, size_t i)
{
  return ds && i < ds->n_ex ? &ds->ex[i] : NULL;
}

SutraRowShape
sutra_dataset_shape (const SutraDataset *ds)
{
  return ds ? ds->shape : SUTRA_ROWS_UNKNOWN;
}

const char *
sutra_dataset_path (const SutraDataset *ds)
{
  return ds ? ds->path : NULL;
}

const char *
sutra_dataset_format_name (const SutraDataset *ds)
{
  static const char *const names[] = { "jsonl", "json", "csv", "tsv", "text" };
  return ds ? names[ds->format] : NULL;
}

size_t
sutra_dataset_bad_rows (const SutraDataset *ds, const SutraBadRow **rows)
{
  if (rows)
    *rows = ds ? ds->bad : NULL;
  return ds ? ds->n_bad : 0;
}

size_t
sutra_dataset_bad_row_total (const SutraDataset *ds)
{
  return ds ? ds->bad_total : 0;
}

size_t
sutra_dataset_truncated (const SutraDataset *ds)
{
  return ds ? ds->truncated : 0;
}

void
sutra_dataset_token_counts (const SutraDataset *ds, int64_t *tokens, int64_t *loss_tokens)
{
  if (tokens)
    *tokens = ds ? ds->tokens : 0;
  if (loss_tokens)
    *loss_tokens = ds ? ds->loss_tokens : 0;
}

/* ---- split ----
 * sutra_splitmix64 (Steele, Lea, Flood 2014; the constants of Vigna's reference code) drives a
 * Fisher-Yates shuffle (Knuth's Algorithm P, from the last position down); each draw in
 * [0, i] is unbiased by rejecting values below 2^64 mod (i + 1) (then r mod (i + 1)). */

static uint64_t
uniform_below (uint64_t *state, uint64_t bound)
{
  uint64_t threshold = (0 - bound) % bound;      /* 2^64 mod bound */
  for (;;) {
    uint64_t r = sutra_splitmix64 (state);
    if (r >= threshold)
      return r % bound;
  }
}

static SutraDataset *
half_new (const SutraDataset *src, const size_t *idx, size_t n)
{
  SutraDataset *h = sutra_xcalloc (1, sizeof *h);
  h->path = sutra_xstrdup (src->path);
  h->format = src->format;
  h->shape = src->shape;
  h->tok = src->tok;
  h->owns_pool = false;
  h->n_ex = n;
  h->ex = sutra_xmalloc ((n ? n : 1) * sizeof *h->ex);
  h->trunc = sutra_xmalloc (n ? n : 1);
  for (size_t i = 0; i < n; i++) {
    const SutraExample *e = &src->ex[idx[i]];
    h->ex[i] = *e;
    h->trunc[i] = src->trunc[idx[i]];
    h->truncated += h->trunc[i];
    h->tokens += e->n;
    h->loss_tokens += count_loss (e->labels, e->n);
  }
  return h;
}

SutraStatus
sutra_dataset_split (const SutraDataset *ds, double fraction, uint64_t seed, SutraDataset **train,
                     SutraDataset **val, SutraError *err)
{
  SUTRA_ASSERT (ds && train && val);
  if (!(fraction >= 0.0 && fraction <= 1.0))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "validation fraction %g is not within [0, 1]",
                            fraction);
  size_t n = ds->n_ex;
  size_t *perm = sutra_xmalloc ((n ? n : 1) * sizeof *perm);
  for (size_t i = 0; i < n; i++)
    perm[i] = i;
  uint64_t state = seed;
  for (size_t i = n; i-- > 1;) {
    size_t j = (size_t) uniform_below (&state, (uint64_t) i + 1);
    size_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  /* the validation half: the last round(fraction * n) of the shuffled order, at least one
   * when fraction > 0 and n > 1, and never all of them (training keeps at least one) */
  size_t k = (size_t) llround (fraction * (double) n);
  if (fraction > 0.0 && n > 1 && k < 1)
    k = 1;
  if (n > 0 && k >= n)
    k = n - 1;
  *train = half_new (ds, perm, n - k);
  *val = half_new (ds, perm + (n - k), k);
  free (perm);
  return SUTRA_OK;
}

/* ---- preview ---- */

typedef struct {
  SutraPreviewPiece *p;
  size_t *len;                          /* [n] bytes of each text (it may hold U+0000) */
  size_t n, cap;
} Pieces;

/* Appends text with a loss flag, joining it to the previous piece when the flag matches. */
static void
pieces_add (Pieces *ps, const char *s, size_t len, bool loss)
{
  if (len == 0)
    return;
  if (ps->n > 0 && ps->p[ps->n - 1].loss == loss) {
    SutraPreviewPiece *last = &ps->p[ps->n - 1];
    size_t old = ps->len[ps->n - 1];
    last->text = sutra_xrealloc (last->text, old + len + 1);
    memcpy (last->text + old, s, len);
    last->text[old + len] = '\0';
    ps->len[ps->n - 1] = old + len;
    return;
  }
  if (ps->n == ps->cap) {
    ps->cap = ps->cap ? ps->cap * 2 : 8;
    ps->p = sutra_xrealloc (ps->p, ps->cap * sizeof *ps->p);
    ps->len = sutra_xrealloc (ps->len, ps->cap * sizeof *ps->len);
  }
  ps->p[ps->n].text = sutra_xmalloc (len + 1);
  memcpy (ps->p[ps->n].text, s, len);
  ps->p[ps->n].text[len] = '\0';
  ps->p[ps->n].loss = loss;
  ps->len[ps->n] = len;
  ps->n++;
}

static void
pieces_clear (Pieces *ps)
{
  for (size_t i = 0; i < ps->n; i++)
    free (ps->p[i].text);
  free (ps->p);
  free (ps->len);
}

static bool
is_loss (const SutraExample *e, int t)
{
  return t >= 1 && e->labels[t] != SUTRA_IGNORE_INDEX;
}

SutraStatus
sutra_dataset_preview (const SutraDataset *ds, size_t i, SutraPreviewPiece **pieces, size_t *n,
                       SutraError *err)
{
  SUTRA_ASSERT (ds && pieces && n);
  if (i >= ds->n_ex)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s: example %zu does not exist (%zu examples)",
                            base_name (ds->path), i, ds->n_ex);
  const SutraExample *e = &ds->ex[i];
  Pieces ps = { 0 };
  if (!ds->tok) {
    /* pre-tokenized data without a tokenizer: the ids themselves, space-separated */
    for (int t = 0; t < e->n; t++) {
      char num[16];
      int len = snprintf (num, sizeof num, t ? " %d" : "%d", e->ids[t]);
      pieces_add (&ps, num, (size_t) len, is_loss (e, t));
    }
  } else {
    /* Runs of tokens with equal flags become pieces of the decoded text: the boundary
     * before run k is where decode(ids[0, b_k)) stops agreeing with decode(all ids) (a
     * prefix may end inside a character, decoded as U+FFFD), moved back to the start of a
     * UTF-8 character. So pieces are valid UTF-8, concatenate to exactly the decoded text,
     * and a character split between runs goes whole to the later one. Special tokens are
     * shown. Cost: one decode per run. */
    char *full = NULL;
    size_t nfull = 0, from = 0;
    SutraStatus st = sutra_tokenizer_decode (ds->tok, (const int32_t *) e->ids, (size_t) e->n, 0,
                                             &full, &nfull, err);
    if (st)
      return st;
    int a = 0;
    while (a < e->n) {
      bool loss = is_loss (e, a);
      int b = a + 1;
      while (b < e->n && is_loss (e, b) == loss)
        b++;
      size_t to = nfull;
      if (b < e->n) {
        char *pre = NULL;
        size_t npre = 0;
        if ((st = sutra_tokenizer_decode (ds->tok, (const int32_t *) e->ids, (size_t) b, 0, &pre,
                                          &npre, err))) {
          free (full);
          pieces_clear (&ps);
          return st;
        }
        to = 0;
        while (to < npre && to < nfull && pre[to] == full[to])
          to++;
        while (to > 0 && to < nfull && ((unsigned char) full[to] & 0xc0) == 0x80)
          to--;
        free (pre);
        if (to < from)
          to = from;
      }
      pieces_add (&ps, full + from, to - from, loss);
      from = to;
      a = b;
    }
    free (full);
  }
  free (ps.len);
  *pieces = ps.p;
  *n = ps.n;
  return SUTRA_OK;
}

void
sutra_dataset_preview_free (SutraPreviewPiece *pieces, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (pieces[i].text);
  free (pieces);
}
