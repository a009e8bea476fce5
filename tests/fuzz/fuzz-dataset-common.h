/* fuzz-dataset-common.h: the harness shared by fuzz-dataset-jsonl.c and fuzz-dataset-csv.c.
 *
 * Input: byte 0 = options (bit 0 stop_on_bad_row, bit 1 use a tokenizer, bit 2 mask_prompt,
 * bit 3 add_eos, bits 4-5 seq_len 2/5/64/512, bit 6 vocab_size 0/300, bit 7 which tokenizer),
 * byte 1 = file name extension (picked from the target's list), the rest = the file. The two
 * tokenizers are tiny and built in memory: a byte-level BPE (GPT-2 byte alphabet) and a
 * SentencePiece-style BPE with byte fallback, both with <s> added by the post-processor and the
 * ChatML tokens; chat rows use the built-in chatml family.
 * Checks after a successful load (a violation aborts: a finding): 1 <= n <= seq_len; ids >= 0
 * (and < vocab_size when set); a label is -100 or its id (tokenized shapes) or in range
 * (pre-tokenized); the token counts add up; bad-row messages start with the file name; the
 * split halves are disjoint and cover the set; preview pieces are valid UTF-8 with
 * alternating flags. */
#pragma once
#include "sutra-chat.h"
#include "sutra-dataset.h"
#include "sutra-tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define FZ_CHECK(x) do { if (!(x)) { fprintf (stderr, "check failed: %s\n", #x); abort (); } } while (0)

typedef struct {
  char *p;
  size_t n, cap;
} FzBuf;

static void
fz_put (FzBuf *b, const char *s)
{
  size_t n = strlen (s);
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->p = realloc (b->p, b->cap);
  }
  memcpy (b->p + b->n, s, n + 1);
  b->n += n;
}

/* A code point as UTF-8, escaped for a JSON string when needed. */
static void
fz_put_cp (FzBuf *b, unsigned cp)
{
  char s[8] = { 0 };
  if (cp == '"' || cp == '\\') {
    s[0] = '\\';
    s[1] = (char) cp;
  } else if (cp < 0x80)
    s[0] = (char) cp;
  else if (cp < 0x800) {
    s[0] = (char) (0xc0 | (cp >> 6));
    s[1] = (char) (0x80 | (cp & 0x3f));
  } else {
    s[0] = (char) (0xe0 | (cp >> 12));
    s[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
    s[2] = (char) (0x80 | (cp & 0x3f));
  }
  fz_put (b, s);
}

static const char FZ_ADDED[] =
  "\"added_tokens\":[{\"id\":%d,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
  "{\"id\":%d,\"content\":\"</s>\",\"special\":true,\"normalized\":false},"
  "{\"id\":%d,\"content\":\"<|im_start|>\",\"special\":true,\"normalized\":false},"
  "{\"id\":%d,\"content\":\"<|im_end|>\",\"special\":true,\"normalized\":false}],";

static const char FZ_POST[] =
  "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\","
  "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[{\"SpecialToken\":{\"id\":"
  "\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\","
  "\"type_id\":1}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[%d],\"tokens\":[\"<s>\"]}}},";

/* Byte-level BPE: ids 0-255 the GPT-2 byte alphabet (bytes_to_unicode: printable Latin-1
 * bytes map to themselves, the others to U+0100 upwards), 256-259 four merges, 260-263 the
 * added tokens. */
static char *
fz_byte_level_json (void)
{
  FzBuf b = { 0 };
  char tmp[2048];
  snprintf (tmp, sizeof tmp, FZ_ADDED, 260, 261, 262, 263);
  fz_put (&b, "{\"version\":\"1.0\",");
  fz_put (&b, tmp);
  fz_put (&b, "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
              "\"trim_offsets\":true,\"use_regex\":true},");
  snprintf (tmp, sizeof tmp, FZ_POST, 260);
  fz_put (&b, tmp);
  fz_put (&b, "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,"
              "\"use_regex\":true},\"model\":{\"type\":\"BPE\",\"vocab\":{");
  unsigned extra = 0;
  for (unsigned byte = 0; byte < 256; byte++) {
    bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xa1 && byte <= 0xac) || byte >= 0xae;
    unsigned cp = printable ? byte : 256 + extra++;
    fz_put (&b, byte ? ",\"" : "\"");
    fz_put_cp (&b, cp);
    snprintf (tmp, sizeof tmp, "\":%u", byte);
    fz_put (&b, tmp);
  }
  /* "\u0120" is GPT-2's space */
  fz_put (&b, ",\"he\":256,\"\xc4\xa0t\":257,\"\xc4\xa0the\":258,\"in\":259},"
              "\"merges\":[\"h e\",\"\xc4\xa0 t\",\"\xc4\xa0t he\",\"i n\"]}}");
  return b.p;
}

/* SentencePiece-style: ids 0 <unk>, 1 <s>, 2 </s>, 3-258 <0x00>..<0xFF>, 259 "▁", 260 "a",
 * 261 "b", 262 "▁a", 263 "ab", 264-265 the ChatML tokens. */
static char *
fz_spm_json (void)
{
  FzBuf b = { 0 };
  char tmp[2048];
  fz_put (&b, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,"
              "\"normalized\":false},{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
              "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false},"
              "{\"id\":264,\"content\":\"<|im_start|>\",\"special\":true,\"normalized\":false},"
              "{\"id\":265,\"content\":\"<|im_end|>\",\"special\":true,\"normalized\":false}],"
              "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":"
              "\"\xe2\x96\x81\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":"
              "\"\xe2\x96\x81\"}]},\"pre_tokenizer\":null,");
  snprintf (tmp, sizeof tmp, FZ_POST, 1);
  fz_put (&b, tmp);
  fz_put (&b, "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":"
              "{\"String\":\"\xe2\x96\x81\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},"
              "{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
              "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,"
              "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2");
  for (int byte = 0; byte < 256; byte++) {
    snprintf (tmp, sizeof tmp, ",\"<0x%02X>\":%d", byte, 3 + byte);
    fz_put (&b, tmp);
  }
  fz_put (&b, ",\"\xe2\x96\x81\":259,\"a\":260,\"b\":261,\"\xe2\x96\x81" "a\":262,\"ab\":263},"
              "\"merges\":[\"\xe2\x96\x81 a\",\"a b\"]}}");
  return b.p;
}

static SutraTokenizer *fz_tok[2];
static SutraChatTemplate *fz_chat;

static void
fz_init (void)
{
  if (fz_tok[0])
    return;
  const char *config = "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}";
  char *json[2] = { fz_byte_level_json (), fz_spm_json () };
  for (int i = 0; i < 2; i++) {
    SutraError err = { 0 };
    if (sutra_tokenizer_load_json (json[i], strlen (json[i]), config, strlen (config), "fuzz-tok.json",
                                   &fz_tok[i], &err) != SUTRA_OK) {
      fprintf (stderr, "fuzz tokenizer %d: %s\n", i, err.message);
      abort ();
    }
    free (json[i]);
  }
  SutraError err = { 0 };
  if (sutra_chat_template_new_family ("chatml", &fz_chat, &err) != SUTRA_OK) {
    fprintf (stderr, "chatml: %s\n", err.message);
    abort ();
  }
}

static bool
fz_utf8_ok (const char *s)
{
  const unsigned char *p = (const unsigned char *) s;
  while (*p) {
    int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
    if (n < 0 || (n == 1 && *p < 0xc2))
      return false;
    p++;
    for (int k = 0; k < n; k++, p++)
      if ((*p & 0xc0) != 0x80)
        return false;
  }
  return true;
}

static int
fz_cmp_ptr (const void *x, const void *y)
{
  uintptr_t p = (uintptr_t) *(const int *const *) x, q = (uintptr_t) *(const int *const *) y;
  return p < q ? -1 : p > q;
}

static void
fz_check (const SutraDataset *ds, const SutraDatasetOptions *o, const char *name, uint64_t seed)
{
  size_t n = sutra_dataset_count (ds);
  FZ_CHECK (n >= 1);
  bool tokenized = sutra_dataset_shape (ds) != SUTRA_ROWS_TOKENS;
  int64_t tokens = 0, loss = 0;
  for (size_t i = 0; i < n; i++) {
    const SutraExample *e = sutra_dataset_get (ds, i);
    FZ_CHECK (e && e->n >= 1 && e->n <= o->seq_len && e->line >= 1);
    for (int t = 0; t < e->n; t++) {
      FZ_CHECK (e->ids[t] >= 0);
      FZ_CHECK (o->vocab_size == 0 || tokenized || e->ids[t] < o->vocab_size);
      if (e->labels[t] != -100) {
        FZ_CHECK (!tokenized || e->labels[t] == e->ids[t]);
        FZ_CHECK (e->labels[t] >= 0 && (o->vocab_size == 0 || tokenized || e->labels[t] < o->vocab_size));
        loss += t >= 1;
      }
    }
    tokens += e->n;
  }
  int64_t t2, l2;
  sutra_dataset_token_counts (ds, &t2, &l2);
  FZ_CHECK (t2 == tokens && l2 == loss && loss >= (int64_t) n);
  const SutraBadRow *bad;
  size_t nb = sutra_dataset_bad_rows (ds, &bad);
  FZ_CHECK (nb <= sutra_dataset_bad_row_total (ds));
  for (size_t i = 0; i < nb; i++)
    FZ_CHECK (bad[i].message && !strncmp (bad[i].message, name, strlen (name)));

  SutraDataset *tr, *va;
  SutraError err = { 0 };
  FZ_CHECK (sutra_dataset_split (ds, 0.3, seed, &tr, &va, &err) == SUTRA_OK);
  FZ_CHECK (sutra_dataset_count (tr) + sutra_dataset_count (va) == n);
  FZ_CHECK (n < 2 || (sutra_dataset_count (va) >= 1 && sutra_dataset_count (tr) >= 1));
  /* every source example once: the halves' id pointers, sorted, equal the source's */
  const int **a = malloc (n * sizeof *a), **b = malloc (n * sizeof *b);
  size_t k = 0;
  for (int h = 0; h < 2; h++) {
    SutraDataset *half = h ? va : tr;
    for (size_t i = 0; i < sutra_dataset_count (half); i++)
      a[k++] = sutra_dataset_get (half, i)->ids;
  }
  for (size_t i = 0; i < n; i++)
    b[i] = sutra_dataset_get (ds, i)->ids;
  qsort (a, n, sizeof *a, fz_cmp_ptr);
  qsort (b, n, sizeof *b, fz_cmp_ptr);
  FZ_CHECK (memcmp (a, b, n * sizeof *a) == 0);
  for (size_t i = 1; i < n; i++)
    FZ_CHECK (b[i] != b[i - 1]);
  free (a);
  free (b);
  sutra_dataset_free (tr);
  sutra_dataset_free (va);

  for (size_t i = 0; i < n && i < 3; i++) {
    SutraPreviewPiece *p;
    size_t np;
    FZ_CHECK (sutra_dataset_preview (ds, i, &p, &np, &err) == SUTRA_OK);
    for (size_t j = 0; j < np; j++) {
      FZ_CHECK (fz_utf8_ok (p[j].text));
      FZ_CHECK (j == 0 || p[j].loss != p[j - 1].loss);
    }
    sutra_dataset_preview_free (p, np);
  }
}

static int
fz_run (const uint8_t *data, size_t size, const char *const *exts, size_t n_exts)
{
  fz_init ();
  static const int seq_lens[4] = { 2, 5, 64, 512 };
  uint8_t mode = size > 0 ? data[0] : 0;
  uint8_t ext = size > 1 ? data[1] : 0;
  const uint8_t *file = size > 2 ? data + 2 : data;
  size_t len = size > 2 ? size - 2 : 0;
  char name[32];
  snprintf (name, sizeof name, "fuzz%s", exts[ext % n_exts]);
  SutraDatasetOptions o;
  sutra_dataset_options_init (&o);
  o.stop_on_bad_row = mode & 1;
  o.tokenizer = (mode & 2) ? fz_tok[(mode >> 7) & 1] : NULL;
  o.chat = fz_chat;
  o.mask_prompt = mode & 4;
  o.add_eos = mode & 8;
  o.seq_len = seq_lens[(mode >> 4) & 3];
  o.vocab_size = (mode & 64) ? 300 : 0;
  SutraDataset *ds = NULL;
  SutraError err = { 0 };
  SutraStatus st = sutra_dataset_load_buffer (file, len, name, &o, &ds, &err);
  if (st != SUTRA_OK) {
    FZ_CHECK (ds == NULL && err.message[0] && !strncmp (err.message, name, strlen (name)));
    return 0;
  }
  uint64_t seed = 0;
  for (size_t i = 0; i < len && i < 8; i++)
    seed = seed * 131 + file[i];
  fz_check (ds, &o, name, seed);
  sutra_dataset_free (ds);
  return 0;
}
