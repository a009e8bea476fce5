/* test-util.h: shared helpers for the GLib test programs. */
#pragma once
#include <glib.h>
#include "sutra-error.h"

/* Root of the source tree (env SUTRA_SOURCE_DIR, else the compiled-in path). */
const char *test_source_dir (void);
/* "<source>/../shared/testdata/<sub>" when it exists. Otherwise: when SUTRA_REQUIRE_SHARED=1
 * (CI) the test fails; else it is skipped with a message saying why, and NULL is returned.
 * The returned string is owned by the test util (valid until exit). */
const char *test_shared_path (const char *sub);
/* "<source>/<sub>" (owned by the util). */
const char *test_source_path (const char *sub);
/* A fresh empty temporary folder, removed at exit unless SUTRA_KEEP_TMP=1. */
const char *test_tmpdir (void);
/* Path of the sutra CLI binary (env SUTRA_CLI). */
const char *test_cli_path (void);
/* Runs the CLI with argv (NULL-terminated, without argv[0]); captures stdout/stderr
 * (caller frees; either may be NULL) and returns the exit status (-1 if it crashed). */
int test_run_cli (char **out, char **errout, const char *const *argv);

/* Like test_run_cli with extra environment entries ("KEY=VALUE"; "KEY=" removes KEY) on top of
 * the test's own environment; env may be NULL. */
int test_run_cli_env (char **out, char **errout, const char *const *env, const char *const *argv);

/* A small random Llama folder for trainer/CLI tests: config.json + model.safetensors (F32),
 * `hidden` wide, `layers` deep, vocab `vocab`, 4 heads over 2 KV heads, tied embeddings,
 * seeded. Written to <dir>/<name>; returns that path (g_free). */
char *test_tiny_model_folder (const char *dir, const char *name, int hidden, int layers, int vocab,
                              guint32 seed);
/* `rows` pre-tokenized JSONL rows ({"input_ids": [...]}, lengths 6..(6 + spread-1), a learnable
 * counting pattern) in <dir>/<name>; returns that path (g_free). */
char *test_tiny_dataset (const char *dir, const char *name, int rows, int spread, int vocab);

/* Asserts st == SUTRA_OK, printing err->message otherwise. */
#define test_assert_ok(st, err) \
  do { SutraStatus _s = (st); if (_s != SUTRA_OK) \
    g_error ("%s:%d: %s -> %s: %s", __FILE__, __LINE__, #st, sutra_status_name (_s), (err)->message); \
  } while (0)

/* Max |a-b| / max |b| (0 when b is all zero and a == b). */
double test_rel_max_err (const float *a, const float *b, size_t n);
double test_max_abs_err (const float *a, const float *b, size_t n);
/* Deterministic uniform floats in [lo, hi). */
void   test_fill_uniform (float *x, size_t n, float lo, float hi, guint32 seed);
