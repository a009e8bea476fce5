/* fuzz-trainer-state.c: libFuzzer target for what `sutra resume` reads back from a run folder
 * besides the settings: a checkpoint's trainer_state.json (sutra_trainer_state_parse), the
 * optimizer's "step" metadata, and metrics.jsonl (the truncation on resume, and
 * sutra_run_read_metrics, which the studio uses to reopen past runs).
 * Byte 0 picks the part (0 state, 1 optimizer step, 2 metrics); bytes 1..8 give the step to
 * truncate at; the rest is the file. */
#include "sutra-fsutil.h"
#include "sutra-trainer-private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static char *dir, *metrics;

static void
cleanup (void)
{
  unlink (metrics);
  rmdir (dir);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 9)
    return 0;
  int part = data[0] % 3;
  int64_t step;
  memcpy (&step, data + 1, 8);
  if (step < 0)
    step = -(step + 1);
  const char *text = (const char *) data + 9;
  size_t len = size - 9;
  SutraError err = { 0 };
  if (part == 0) {
    SutraTrainerState s;
    if (sutra_trainer_state_parse (text, len, "trainer_state.json", &s, &err) == SUTRA_OK) {
      SUTRA_ASSERT (s.step >= 0 && s.micro_batches_done >= 0 && s.evals_without_improvement >= 0);
      SUTRA_ASSERT (isfinite (s.elapsed_s) && s.elapsed_s >= 0 && !isnan (s.best_eval_loss));
    } else {
      SUTRA_ASSERT (strncmp (err.message, "trainer_state.json", 18) == 0);
    }
  } else if (part == 1) {
    char *s = sutra_xstrndup (text, len);
    int64_t v;
    if (sutra_checkpoint_parse_opt_steps (s, "optimizer.safetensors", &v, &err) == SUTRA_OK)
      SUTRA_ASSERT (v >= 0);
    free (s);
  } else {
    char *buf = sutra_xmalloc (len + 1);
    memcpy (buf, text, len);
    size_t n = sutra_metrics_truncate_text (buf, len, step);
    SUTRA_ASSERT (n <= len && (n == 0 || buf[n - 1] == '\n'));
    free (buf);
    if (!dir) {
      char tmpl[] = "/tmp/sutra-fuzz-ts-XXXXXX";
      dir = sutra_xstrdup (mkdtemp (tmpl));
      metrics = sutra_path_join (dir, "metrics.jsonl");
      atexit (cleanup);
    }
    FILE *fp = fopen (metrics, "wb");
    SUTRA_ASSERT (fp && fwrite (text, 1, len, fp) == len && fclose (fp) == 0);
    SutraMetricRow *rows;
    size_t nrows;
    if (sutra_run_read_metrics (dir, &rows, &nrows, &err) == SUTRA_OK)
      free (rows);
  }
  return 0;
}
