/* sutra-dataset.h: training datasets: files, row shapes, tokenization, loss masks.
 *
 * Files: JSONL, a JSON array, CSV (or TSV) with a header row (RFC 4180 quoting), or plain
 * text (any other extension). docs/datasets.md has the details.
 * Row shapes, recognised from the keys of the first valid row (DESIGN.md section 4):
 *   {"text"}                                   loss on every token
 *   {"prompt", "completion"}                   loss on the completion (mask_prompt)
 *   {"instruction", "input"?, "output"}        Alpaca prompt format; loss on the output
 *   {"messages": [{"role","content"}...]}      the model's chat template; loss on assistant turns
 *   {"input_ids": [...], "labels"?: [...]}     pre-tokenized; label -100 = no loss
 *   plain text                                 tokenized continuously, cut into seq_len windows
 * Every example is (ids, labels) with labels aligned to ids as in Hugging Face (the trainer
 * shifts: logits at t predict labels[t+1]); -100 marks positions without loss. A bad row is
 * reported with its file and line; the options choose skip-and-count or stop. */
#pragma once
#include "sutra-error.h"

struct SutraTokenizer;
struct SutraChatTemplate;

typedef enum {
  SUTRA_ROWS_UNKNOWN = 0,
  SUTRA_ROWS_TEXT,
  SUTRA_ROWS_PROMPT_COMPLETION,
  SUTRA_ROWS_ALPACA,
  SUTRA_ROWS_CHAT,
  SUTRA_ROWS_TOKENS,
  SUTRA_ROWS_PLAIN_TEXT,
} SutraRowShape;

typedef struct {
  int *ids;       /* [n] */
  int *labels;    /* [n], -100 = no loss */
  int n;
  int line;       /* 1-based physical line where the row / JSON array element / CSV record
                   * starts; plain text: the line of the window's first token */
} SutraExample;

typedef struct {
  int line;
  char *message;  /* "data.jsonl:17: \"messages\"[2] has no \"content\"" */
} SutraBadRow;

typedef struct {
  const struct SutraTokenizer *tokenizer;     /* NULL only for pre-tokenized data */
  const struct SutraChatTemplate *chat;       /* required for chat rows (the model folder's:
                                               * sutra_chat_template_load) */
  int seq_len;             /* longer examples are truncated (counted); plain text windows */
  bool mask_prompt;        /* prompt/completion and Alpaca: no loss on the prompt (default on) */
  bool stop_on_bad_row;    /* default false: skip and count */
  bool add_eos;            /* append EOS after text / completion / output (default on) */
  int vocab_size;          /* ids must be below it (pre-tokenized rows); 0 = unchecked */
  const volatile int *cancel;  /* polled while loading a big file; non-zero = stop */
} SutraDatasetOptions;

/* Sensible defaults (mask_prompt, add_eos on; skip bad rows; seq_len 512). */
void sutra_dataset_options_init (SutraDatasetOptions *o);

typedef struct SutraDataset SutraDataset;

/* o->tokenizer is kept (borrowed) for sutra_dataset_preview: it must outlive the previews.
 * Chat rows need o->chat (see docs/datasets.md). */
SutraStatus sutra_dataset_load (const char *path, const SutraDatasetOptions *o, SutraDataset **out,
                                SutraError *err);
/* The same from memory; name stands for the path (its extension picks the format). */
SutraStatus sutra_dataset_load_buffer (const void *data, size_t len, const char *name,
                                       const SutraDatasetOptions *o, SutraDataset **out,
                                       SutraError *err);
void        sutra_dataset_free (SutraDataset *ds);

size_t              sutra_dataset_count (const SutraDataset *ds);
const SutraExample *sutra_dataset_get   (const SutraDataset *ds, size_t i);
SutraRowShape       sutra_dataset_shape (const SutraDataset *ds);
const char         *sutra_row_shape_name (SutraRowShape s);   /* "chat", "alpaca", ... */
const char         *sutra_dataset_path (const SutraDataset *ds);
const char         *sutra_dataset_format_name (const SutraDataset *ds); /* "jsonl" "json" "csv" "tsv" "text" */
/* Rows that were skipped (empty when stop_on_bad_row made loading fail); the first 10000 are
 * kept, sutra_dataset_bad_row_total counts all. Split halves have none. */
size_t              sutra_dataset_bad_rows (const SutraDataset *ds, const SutraBadRow **rows);
size_t              sutra_dataset_bad_row_total (const SutraDataset *ds);
size_t              sutra_dataset_truncated (const SutraDataset *ds);   /* longer than seq_len */
/* Token totals: all tokens, and tokens that carry loss (positions t >= 1 whose label is not
 * -100: labels[0] is never predicted). */
void                sutra_dataset_token_counts (const SutraDataset *ds, int64_t *tokens,
                                                int64_t *loss_tokens);

/* Splits off a validation set: a seeded shuffle (splitmix64-driven Fisher-Yates), then the
 * last round(fraction * n) examples (at least 1 when fraction > 0 and n > 1, at most n - 1).
 * Both halves share no example. The source keeps ownership of the data; free the halves
 * before it. */
SutraStatus sutra_dataset_split (const SutraDataset *ds, double fraction, uint64_t seed,
                                 SutraDataset **train, SutraDataset **val, SutraError *err);

/* Renders example i for a preview: the decoded text as pieces, each flagged with whether its
 * tokens carry loss (the studio highlights those). Pieces are complete UTF-8; adjacent pieces
 * differ in flag. Without a tokenizer: the ids in decimal. Caller frees with
 * sutra_dataset_preview_free. */
typedef struct { char *text; bool loss; } SutraPreviewPiece;
SutraStatus sutra_dataset_preview (const SutraDataset *ds, size_t i, SutraPreviewPiece **pieces,
                                   size_t *n, SutraError *err);
void        sutra_dataset_preview_free (SutraPreviewPiece *pieces, size_t n);
