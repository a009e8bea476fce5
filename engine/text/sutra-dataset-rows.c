/* sutra-dataset-rows.c: row shapes -> (ids, labels) examples (DESIGN.md section 4,
 * docs/datasets.md).
 *
 * Labels follow Hugging Face: labels[t] = ids[t] where the loss applies, -100 elsewhere; the
 * trainer shifts (logits at t predict labels[t+1]), so labels[0] never counts.
 *   text               encode(text, add_special_tokens) [+ EOS]; loss everywhere.
 *   prompt/completion  encode(prompt + completion, add_special_tokens) [+ EOS]: the completion
 *   and Alpaca         is tokenized as the continuation the model sees at inference. With
 *                      mask_prompt, a token carries loss when its byte range reaches into the
 *                      completion (a token straddling the boundary carries loss: the model has
 *                      to produce it); post-processor tokens before the text (BOS) do not,
 *                      those after it (EOS) do.
 *   chat               the chat template's rendering (sutra_chat_assistant_spans), encoded
 *                      without add_special_tokens (transformers' apply_chat_template(
 *                      tokenize=True) does the same: the template writes BOS itself); a token
 *                      carries loss when its byte range overlaps an assistant span (content +
 *                      end-of-turn), so a token straddling a span edge carries loss.
 *   tokens             input_ids / labels as given (labels default to input_ids).
 *   plain text         one token stream (BOS first when the tokenizer adds one, EOS last with
 *                      add_eos), cut into seq_len windows, loss everywhere.
 * Double BOS is avoided: when the post-processor adds BOS and the text itself starts with the
 * BOS token, the post-processor's copy is dropped. */
#include "sutra-dataset-private.h"
#include "sutra-chat.h"
#include "sutra-json.h"
#include "sutra-tokenizer.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Stanford Alpaca's PROMPT_DICT (tatsu-lab/stanford_alpaca, train.py). */
static const char ALPACA_INPUT_HEAD[] =
  "Below is an instruction that describes a task, paired with an input that provides further "
  "context. Write a response that appropriately completes the request.\n\n### Instruction:\n";
static const char ALPACA_NO_INPUT_HEAD[] =
  "Below is an instruction that describes a task. Write a response that appropriately "
  "completes the request.\n\n### Instruction:\n";
static const char ALPACA_INPUT_MID[] = "\n\n### Input:\n";
static const char ALPACA_RESPONSE[] = "\n\n### Response:\n";

/* A bad-row reason goes into a local SutraError with this code; any other failure code
 * (out of memory, cancelled) ends the load. */
#define ROW_BAD SUTRA_ERR_FORMAT

static bool
is_fatal (SutraStatus st)
{
  return st == SUTRA_ERR_NOMEM || st == SUTRA_ERR_CANCELLED || st == SUTRA_ERR_IO;
}

/* ---- shapes ---- */

typedef struct {
  SutraRowShape shape;
  const char *keys[2];                  /* required keys */
  const char *what;                     /* for messages */
} ShapeKeys;

/* In detection priority order. */
static const ShapeKeys SHAPES[] = {
  { SUTRA_ROWS_CHAT, { "messages", NULL }, "\"messages\"" },
  { SUTRA_ROWS_TOKENS, { "input_ids", NULL }, "\"input_ids\"" },
  { SUTRA_ROWS_ALPACA, { "instruction", "output" }, "\"instruction\" and \"output\"" },
  { SUTRA_ROWS_PROMPT_COMPLETION, { "prompt", "completion" }, "\"prompt\" and \"completion\"" },
  { SUTRA_ROWS_TEXT, { "text", NULL }, "\"text\"" },
};
#define N_SHAPES (sizeof SHAPES / sizeof SHAPES[0])

static const ShapeKeys *
shape_keys (SutraRowShape s)
{
  for (size_t i = 0; i < N_SHAPES; i++)
    if (SHAPES[i].shape == s)
      return &SHAPES[i];
  return NULL;
}

static bool
has_keys (json_object *row, const ShapeKeys *k)
{
  for (int j = 0; j < 2; j++)
    if (k->keys[j] && !json_object_object_get_ex (row, k->keys[j], NULL))
      return false;
  return true;
}

/* A key counts when present, even with a null value (a null is then reported as a wrong
 * type or, for optional keys, treated as absent). */
static SutraRowShape
detect (json_object *row)
{
  for (size_t i = 0; i < N_SHAPES; i++)
    if (has_keys (row, &SHAPES[i]))
      return SHAPES[i].shape;
  return SUTRA_ROWS_UNKNOWN;
}

/* "a string", "an integer", ... for messages. */
static const char *
a_type (json_object *v)
{
  switch (json_object_get_type (v)) {
  case json_type_null: return "null";
  case json_type_boolean: return "a boolean";
  case json_type_double: return "a number";
  case json_type_int: return "an integer";
  case json_type_object: return "an object";
  case json_type_array: return "an array";
  case json_type_string: return "a string";
  }
  return "a value";
}

static void
list_keys (json_object *row, char *buf, size_t cap)
{
  size_t o = 0;
  int k = 0;
  buf[0] = '\0';
  json_object_object_foreach (row, key, val) {
    (void) val;
    if (k == 6) {
      snprintf (buf + o, cap - o, ", ...");
      return;
    }
    int w = snprintf (buf + o, cap - o, "%s\"%.40s\"", k ? ", " : "", key);
    if (w < 0 || (size_t) w >= cap - o)
      return;
    o += (size_t) w;
    k++;
  }
  if (k == 0)
    snprintf (buf, cap, "none");
}

/* A string value. Missing or null: an error when required, else "". */
static SutraStatus
get_str (json_object *row, const char *key, bool required, const char **s, size_t *n,
         SutraError *e)
{
  json_object *v = NULL;
  if (!json_object_object_get_ex (row, key, &v) || json_object_is_type (v, json_type_null)) {
    if (required)
      return sutra_error_set (e, ROW_BAD, "\"%s\" is %s", key, v ? "null" : "missing");
    *s = "";
    *n = 0;
    return SUTRA_OK;
  }
  if (!json_object_is_type (v, json_type_string))
    return sutra_error_set (e, ROW_BAD, "\"%s\" is %s, expected a string", key, a_type (v));
  *s = json_object_get_string (v);
  *n = (size_t) json_object_get_string_len (v);
  if (memchr (*s, '\0', *n))
    return sutra_error_set (e, ROW_BAD, "\"%s\" contains U+0000", key);
  return SUTRA_OK;
}

/* ---- building the scratch example ---- */

static SutraStatus
push (DsLoader *L, int id, int label)
{
  SutraStatus st = ds_ints_push (L, &L->sids, id);
  return st ? st : ds_ints_push (L, &L->slabels, label);
}

static bool
zero_width (const SutraEncoding *enc, size_t i)
{
  return enc->starts[i] == enc->ends[i];
}

/* Index of the first token to keep: 1 drops a post-processor BOS when the text's own first
 * token is BOS too. */
static size_t
first_kept (DsLoader *L, const SutraEncoding *enc)
{
  if (L->adds_bos && L->bos >= 0 && enc->n >= 2 && enc->ids[0] == L->bos &&
      enc->ids[1] == L->bos && zero_width (enc, 0) && !zero_width (enc, 1))
    return 1;
  return 0;
}

static SutraStatus
append_eos (DsLoader *L)
{
  if (!L->o->add_eos)
    return SUTRA_OK;
  if (L->eos < 0) {
    if (!L->warned_eos)
      sutra_log (SUTRA_LOG_WARN, "%s: add_eos is set but the tokenizer has no EOS token", L->name);
    L->warned_eos = true;
    return SUTRA_OK;
  }
  if (L->sids.n > 0 && L->sids.v[L->sids.n - 1] == L->eos)
    return SUTRA_OK;                    /* the post-processor or the text already ends with it */
  return push (L, L->eos, L->eos);
}

static SutraStatus
encode (DsLoader *L, const char *text, size_t len, unsigned flags, SutraEncoding *enc,
        SutraError *e)
{
  memset (enc, 0, sizeof *enc);
  SutraStatus st = sutra_tokenizer_encode (L->o->tokenizer, text, len, flags, enc, e);
  if (st && !is_fatal (st)) {
    sutra_error_prefix (e, "tokenizer");
    e->code = ROW_BAD;
    st = ROW_BAD;
  }
  return st;
}

/* {"text"} */
static SutraStatus
row_text (DsLoader *L, json_object *row, SutraError *e)
{
  const char *s;
  size_t n;
  SutraStatus st = get_str (row, "text", true, &s, &n, e);
  if (st)
    return st;
  if (n == 0)
    return sutra_error_set (e, ROW_BAD, "\"text\" is empty");
  SutraEncoding enc;
  if ((st = encode (L, s, n, SUTRA_ENCODE_ADD_SPECIAL, &enc, e)))
    return st;
  for (size_t i = first_kept (L, &enc); i < enc.n && !st; i++)
    st = push (L, enc.ids[i], enc.ids[i]);
  sutra_encoding_clear (&enc);
  return st ? st : append_eos (L);
}

/* prompt + completion as one text; the completion starts at byte boundary. */
static SutraStatus
prompt_completion (DsLoader *L, const char *text, size_t len, size_t boundary, SutraError *e)
{
  SutraEncoding enc;
  SutraStatus st = encode (L, text, len, SUTRA_ENCODE_ADD_SPECIAL, &enc, e);
  if (st)
    return st;
  bool in_completion = false;
  for (size_t i = first_kept (L, &enc); i < enc.n && !st; i++) {
    /* a real token reaches into the completion when it ends after the boundary; a
     * post-processor token (zero width) belongs to the side it follows */
    if (!zero_width (&enc, i) && enc.ends[i] > boundary)
      in_completion = true;
    bool loss = in_completion || !L->o->mask_prompt;
    st = push (L, enc.ids[i], loss ? enc.ids[i] : SUTRA_IGNORE_INDEX);
  }
  sutra_encoding_clear (&enc);
  return st ? st : append_eos (L);
}

/* {"prompt", "completion"} */
static SutraStatus
row_prompt_completion (DsLoader *L, json_object *row, SutraError *e)
{
  const char *p, *c;
  size_t np, nc;
  SutraStatus st;
  if ((st = get_str (row, "prompt", true, &p, &np, e)) ||
      (st = get_str (row, "completion", true, &c, &nc, e)))
    return st;
  if (nc == 0)
    return sutra_error_set (e, ROW_BAD, "\"completion\" is empty");
  char *t = sutra_xmalloc (np + nc + 1);
  memcpy (t, p, np);
  memcpy (t + np, c, nc);
  t[np + nc] = '\0';
  st = prompt_completion (L, t, np + nc, np, e);
  free (t);
  return st;
}

/* {"instruction", "input"?, "output"} in the Alpaca prompt format. */
static SutraStatus
row_alpaca (DsLoader *L, json_object *row, SutraError *e)
{
  const char *ins, *inp, *out;
  size_t nins, ninp, nout;
  SutraStatus st;
  if ((st = get_str (row, "instruction", true, &ins, &nins, e)) ||
      (st = get_str (row, "input", false, &inp, &ninp, e)) ||
      (st = get_str (row, "output", true, &out, &nout, e)))
    return st;
  if (nout == 0)
    return sutra_error_set (e, ROW_BAD, "\"output\" is empty");
  const char *head = ninp ? ALPACA_INPUT_HEAD : ALPACA_NO_INPUT_HEAD;
  size_t nhead = ninp ? sizeof ALPACA_INPUT_HEAD - 1 : sizeof ALPACA_NO_INPUT_HEAD - 1;
  size_t cap = nhead + nins + sizeof ALPACA_INPUT_MID + ninp + sizeof ALPACA_RESPONSE + nout;
  char *t = sutra_xmalloc (cap + 1);
  size_t o = 0;
#define PUT(s, n) (memcpy (t + o, (s), (n)), o += (n))
  PUT (head, nhead);
  PUT (ins, nins);
  if (ninp) {
    PUT (ALPACA_INPUT_MID, sizeof ALPACA_INPUT_MID - 1);
    PUT (inp, ninp);
  }
  PUT (ALPACA_RESPONSE, sizeof ALPACA_RESPONSE - 1);
  size_t boundary = o;
  PUT (out, nout);
#undef PUT
  t[o] = '\0';
  st = prompt_completion (L, t, o, boundary, e);
  free (t);
  return st;
}

/* {"messages": [{"role", "content"}, ...]} */
static const char *const ROLES[] = { "system", "user", "assistant", "tool" };

static SutraStatus
row_chat (DsLoader *L, json_object *row, SutraError *e)
{
  json_object *m = NULL;
  json_object_object_get_ex (row, "messages", &m);
  if (!json_object_is_type (m, json_type_array))
    return sutra_error_set (e, ROW_BAD, "\"messages\" is %s, expected an array", a_type (m));
  size_t n = json_object_array_length (m);
  if (n == 0)
    return sutra_error_set (e, ROW_BAD, "\"messages\" is empty");
  SutraChatMessage *msgs = sutra_xcalloc (n, sizeof *msgs);
  SutraStatus st = SUTRA_OK;
  size_t assistants = 0;
  for (size_t i = 0; i < n && !st; i++) {
    json_object *mi = json_object_array_get_idx (m, i);
    if (!json_object_is_type (mi, json_type_object)) {
      st = sutra_error_set (e, ROW_BAD, "\"messages\"[%zu] is %s, expected an object", i, a_type (mi));
      break;
    }
    json_object *r = NULL, *c = NULL;
    json_object_object_get_ex (mi, "role", &r);
    json_object_object_get_ex (mi, "content", &c);
    if (!r || !c)
      st = sutra_error_set (e, ROW_BAD, "\"messages\"[%zu] has no \"%s\"", i, r ? "content" : "role");
    else if (!json_object_is_type (r, json_type_string))
      st = sutra_error_set (e, ROW_BAD, "\"messages\"[%zu].role is %s, expected a string", i, a_type (r));
    else if (!json_object_is_type (c, json_type_string))
      st = sutra_error_set (e, ROW_BAD, "\"messages\"[%zu].content is %s, expected a string", i,
                            a_type (c));
    else if (memchr (json_object_get_string (c), '\0', (size_t) json_object_get_string_len (c)))
      st = sutra_error_set (e, ROW_BAD, "\"messages\"[%zu].content contains U+0000", i);
    if (st)
      break;
    const char *role = json_object_get_string (r);
    size_t k = 0;
    while (k < sizeof ROLES / sizeof ROLES[0] && strcmp (role, ROLES[k]))
      k++;
    if (k == sizeof ROLES / sizeof ROLES[0]) {
      st = sutra_error_set (e, ROW_BAD, "\"messages\"[%zu]: unknown role \"%.40s\" (expected system, "
                            "user, assistant or tool)", i, role);
      break;
    }
    assistants += k == 2;
    msgs[i].role = role;
    msgs[i].content = json_object_get_string (c);
  }
  if (!st && assistants == 0)
    st = sutra_error_set (e, ROW_BAD, "no assistant message (nothing to learn from this row)");
  char *text = NULL;
  SutraChatSpan *spans = NULL;
  size_t n_spans = 0;
  if (!st) {
    st = sutra_chat_assistant_spans (L->o->chat, msgs, n, &text, &spans, &n_spans, e);
    if (st && !is_fatal (st)) {
      e->code = ROW_BAD;                /* the template refused the conversation */
      st = ROW_BAD;
    }
  }
  free (msgs);
  if (!st && n_spans == 0)
    st = sutra_error_set (e, ROW_BAD, "the chat template rendered no assistant text");
  SutraEncoding enc = { 0 };
  if (!st)
    st = encode (L, text, strlen (text), 0, &enc, e);
  /* a token carries loss when [start, end) overlaps a span; spans are sorted and disjoint,
   * so the candidates start at the first span ending after the token's start */
  for (size_t i = 0; i < enc.n && !st; i++) {
    bool loss = false;
    if (!zero_width (&enc, i)) {
      size_t lo = 0, hi = n_spans;
      while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (spans[mid].end <= enc.starts[i])
          lo = mid + 1;
        else
          hi = mid;
      }
      for (size_t j = lo; j < n_spans && spans[j].start < enc.ends[i] && !loss; j++)
        loss = spans[j].start < spans[j].end;     /* an empty span covers nothing */
    }
    st = push (L, enc.ids[i], loss ? enc.ids[i] : SUTRA_IGNORE_INDEX);
  }
  sutra_encoding_clear (&enc);
  free (text);
  free (spans);
  return st;
}

/* An array of integer ids; labels allow -100. limit 0 = unchecked (only >= 0). */
static SutraStatus
int_array (json_object *a, const char *key, bool labels, int limit, SutraError *e)
{
  if (!json_object_is_type (a, json_type_array))
    return sutra_error_set (e, ROW_BAD, "\"%s\" is %s, expected an array of integers", key, a_type (a));
  size_t n = json_object_array_length (a);
  for (size_t i = 0; i < n; i++) {
    json_object *v = json_object_array_get_idx (a, i);
    if (!json_object_is_type (v, json_type_int))
      return sutra_error_set (e, ROW_BAD, "\"%s\"[%zu] is %s, expected an integer", key, i, a_type (v));
    int64_t x = json_object_get_int64 (v);
    if (labels && x == SUTRA_IGNORE_INDEX)
      continue;
    if (x < 0 || x > INT_MAX || (limit > 0 && x >= limit)) {
      if (limit > 0)
        return sutra_error_set (e, ROW_BAD, "\"%s\"[%zu] = %lld is outside [0, %d)%s", key, i,
                                (long long) x, limit, labels ? " and not -100" : "");
      return sutra_error_set (e, ROW_BAD, "\"%s\"[%zu] = %lld is %s", key, i, (long long) x,
                              labels ? "negative and not -100" : "negative or too large");
    }
  }
  return SUTRA_OK;
}

/* {"input_ids": [...], "labels"?: [...]} */
static SutraStatus
row_tokens (DsLoader *L, json_object *row, SutraError *e)
{
  json_object *ids = NULL, *labels = NULL;
  json_object_object_get_ex (row, "input_ids", &ids);
  json_object_object_get_ex (row, "labels", &labels);
  if (json_object_is_type (labels, json_type_null))
    labels = NULL;
  int limit = L->o->vocab_size;
  SutraStatus st;
  if ((st = int_array (ids, "input_ids", false, limit, e)))
    return st;
  size_t n = json_object_array_length (ids);
  if (n == 0)
    return sutra_error_set (e, ROW_BAD, "\"input_ids\" is empty");
  if (labels) {
    if ((st = int_array (labels, "labels", true, limit, e)))
      return st;
    if (json_object_array_length (labels) != n)
      return sutra_error_set (e, ROW_BAD, "\"labels\" has %zu entries, \"input_ids\" has %zu",
                              json_object_array_length (labels), n);
  }
  for (size_t i = 0; i < n && !st; i++) {
    int id = (int) json_object_get_int64 (json_object_array_get_idx (ids, i));
    int lab = labels ? (int) json_object_get_int64 (json_object_array_get_idx (labels, i)) : id;
    st = push (L, id, lab);
  }
  return st;
}

/* ---- dispatch ---- */

/* Fatal when a shape cannot be handled at all with these options. */
static SutraStatus
check_shape (DsLoader *L, int line, SutraRowShape shape)
{
  if (shape != SUTRA_ROWS_TOKENS && !L->o->tokenizer)
    return sutra_error_set (L->err, SUTRA_ERR_INVALID, "%s:%d: %s rows need a tokenizer", L->name,
                            line, sutra_row_shape_name (shape));
  if (shape == SUTRA_ROWS_CHAT && !L->o->chat)
    return sutra_error_set (L->err, SUTRA_ERR_INVALID,
                            "%s:%d: chat rows need a chat template (SutraDatasetOptions.chat; "
                            "sutra_chat_template_load on the model folder)", L->name, line);
  return SUTRA_OK;
}

SutraStatus
ds_row (DsLoader *L, int line, json_object *row)
{
  SutraRowShape shape = detect (row);
  SutraRowShape want = L->ds->shape;
  if (want == SUTRA_ROWS_UNKNOWN) {
    /* the file's shape is that of the first row that gives an example */
    if (shape == SUTRA_ROWS_UNKNOWN) {
      char keys[256];
      list_keys (row, keys, sizeof keys);
      return ds_bad_row (L, line, "no known keys: a row needs \"text\", \"prompt\"+\"completion\", "
                         "\"instruction\"+\"output\", \"messages\" or \"input_ids\" (found %s)", keys);
    }
    SutraStatus st = check_shape (L, line, shape);
    if (st)
      return st;
  } else if (shape != want) {
    const ShapeKeys *wk = shape_keys (want);
    if (!has_keys (row, wk))
      return ds_bad_row (L, line, "needs %s like the file's other rows (%s)", wk->what,
                         sutra_row_shape_name (want));
    return ds_bad_row (L, line, "has %s, which makes it a %s row; the file's rows are %s",
                       shape_keys (shape)->what, sutra_row_shape_name (shape),
                       sutra_row_shape_name (want));
  }
  SutraError e = { 0 };
  L->sids.n = L->slabels.n = 0;
  SutraStatus st;
  switch (shape) {
  case SUTRA_ROWS_TEXT: st = row_text (L, row, &e); break;
  case SUTRA_ROWS_PROMPT_COMPLETION: st = row_prompt_completion (L, row, &e); break;
  case SUTRA_ROWS_ALPACA: st = row_alpaca (L, row, &e); break;
  case SUTRA_ROWS_CHAT: st = row_chat (L, row, &e); break;
  default: st = row_tokens (L, row, &e); break;
  }
  if (st == SUTRA_OK) {
    size_t before = L->ds->n_ex;
    st = ds_commit_example (L, line);
    if (st == SUTRA_OK && L->ds->n_ex > before)
      L->ds->shape = shape;
    return st;
  }
  L->sids.n = L->slabels.n = 0;
  if (is_fatal (st)) {
    if (L->err)
      *L->err = e;
    return st;
  }
  return ds_bad_row (L, line, "%s", e.message);
}

/* ---- plain text ---- */

static SutraStatus
emit_window (DsLoader *L)
{
  size_t n = L->tids.n;
  L->tids.n = 0;
  L->sids.n = L->slabels.n = 0;
  SutraStatus st;
  if ((st = ds_ints_reserve (L, &L->sids, n)) || (st = ds_ints_reserve (L, &L->slabels, n)))
    return st;
  memcpy (L->sids.v, L->tids.v, n * sizeof (int));
  memcpy (L->slabels.v, L->tids.v, n * sizeof (int));
  L->sids.n = L->slabels.n = n;
  return ds_commit_example (L, L->tline[0]);
}

static SutraStatus
text_push (DsLoader *L, int id, int line)
{
  SutraStatus st = ds_ints_push (L, &L->tids, id);
  if (st)
    return st;
  if (L->tline_cap < L->tids.cap) {
    L->tline_cap = L->tids.cap;
    L->tline = sutra_xrealloc (L->tline, L->tline_cap * sizeof *L->tline);
  }
  L->tline[L->tids.n - 1] = line;
  return L->tids.n == (size_t) L->o->seq_len ? emit_window (L) : SUTRA_OK;
}

SutraStatus
ds_text_chunk (DsLoader *L, const char *chunk, size_t len, int first_line, bool first)
{
  SutraStatus st;
  if (first && (st = check_shape (L, first_line, SUTRA_ROWS_PLAIN_TEXT)))
    return st;
  L->ds->shape = SUTRA_ROWS_PLAIN_TEXT;
  SutraEncoding enc;
  SutraError e = { 0 };
  /* the first chunk gets the post-processor's prefix (BOS); its suffix tokens are dropped
   * (EOS comes once, at the end of the file, with add_eos) */
  st = encode (L, chunk, len, first ? SUTRA_ENCODE_ADD_SPECIAL : 0, &enc, &e);
  if (st) {
    if (L->err)
      *L->err = e;
    sutra_error_prefix (L->err, "%s:%d", L->name, first_line);
    return is_fatal (st) ? st : SUTRA_ERR_FORMAT;
  }
  int line = first_line;
  size_t pos = 0;
  bool seen_text = false;
  for (size_t i = first ? first_kept (L, &enc) : 0; i < enc.n && !st; i++) {
    if (zero_width (&enc, i)) {
      if (seen_text)
        continue;
    } else {
      seen_text = true;
      for (; pos < enc.starts[i] && pos < len; pos++)
        line += chunk[pos] == '\n';
    }
    st = text_push (L, enc.ids[i], line);
  }
  sutra_encoding_clear (&enc);
  return st;
}

SutraStatus
ds_text_finish (DsLoader *L)
{
  if (L->ds->shape != SUTRA_ROWS_PLAIN_TEXT)
    return SUTRA_OK;                    /* empty file */
  int line = L->tids.n ? L->tline[L->tids.n - 1] : 1;
  SutraStatus st;
  if (L->o->add_eos) {
    if (L->eos < 0)
      sutra_log (SUTRA_LOG_WARN, "%s: add_eos is set but the tokenizer has no EOS token", L->name);
    else if ((st = text_push (L, L->eos, line)))
      return st;
  }
  /* the last partial window is kept when it has at least one position to predict */
  if (L->tids.n >= 2)
    return emit_window (L);
  L->tids.n = 0;
  return SUTRA_OK;
}
