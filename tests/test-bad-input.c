/* test-bad-input.c: the bad-input matrix of docs/reliability.md, driven through the `sutra`
 * CLI. Every broken input is a runtime error (exit 1) with exactly one line
 * "sutra: error: <file>: <what>" (the last line of stderr: `sutra train` prints progress
 * before it) naming the file and the fault; inputs that are merely imperfect (a bad row among
 * good ones, rows over seq_len) train with the fault reported. Under the ASan/UBSan build the
 * CLI children run sanitized too, so a crash or a sanitizer report fails the case. */
#include "test-util.h"
#include "sutra-fsutil.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

typedef struct {
  char *tmp, *model, *text_model, *qmodel;
} Inputs;

static Inputs in;

/* ---- helpers ---- */

static char *
copy_model (const char *name)
{
  char *dst = g_build_filename (in.tmp, name, NULL);
  g_assert_cmpint (g_mkdir_with_parents (dst, 0755), ==, 0);
  const char *files[] = { "config.json", "model.safetensors" };
  for (size_t i = 0; i < G_N_ELEMENTS (files); i++) {
    char *s = g_build_filename (in.model, files[i], NULL), *d = g_build_filename (dst, files[i], NULL);
    SutraError err;
    test_assert_ok (sutra_copy_file (s, d, &err), &err);
    g_free (s);
    g_free (d);
  }
  return dst;
}

static char *
write_text (const char *name, const char *text, gssize len)
{
  char *p = g_build_filename (in.tmp, name, NULL);
  g_assert_true (g_file_set_contents (p, text, len, NULL));
  return p;
}

static GBytes *
read_bytes (const char *dir, const char *name)
{
  char *p = g_build_filename (dir, name, NULL), *d;
  gsize n;
  g_assert_true (g_file_get_contents (p, &d, &n, NULL));
  g_free (p);
  return g_bytes_new_take (d, n);
}

static void
write_bytes (const char *dir, const char *name, const void *d, size_t n)
{
  char *p = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (p, d, (gssize) n, NULL));
  g_free (p);
}

/* Runs the CLI; asserts the exit code and, for errors, the one "sutra: error:" line, which
 * must contain every string in want[] (NULL-terminated). Returns stderr (g_free). */
static char *
expect (int want_rc, const char *const *argv, const char *const *want)
{
  char *out = NULL, *errs = NULL;
  int rc = test_run_cli (&out, &errs, argv);
  const char *last = errs + strlen (errs);
  while (last > errs && last[-1] == '\n')
    last--;
  while (last > errs && last[-1] != '\n')
    last--;
  g_test_message ("sutra %s ... -> exit %d: %s", argv[0], rc, want_rc ? last : "(ok)");
  if (rc != want_rc)
    g_error ("sutra %s: exit %d, expected %d; stderr:\n%s", argv[0], rc, want_rc, errs);
  if (want_rc != 0) {
    g_assert_true (g_str_has_prefix (last, "sutra: error: "));
    g_assert_true (strstr (errs, "sutra: error") == last);        /* exactly one error line */
    g_assert_null (strchr (last, '\n') ? strchr (strchr (last, '\n') + 1, '\n') : NULL);
    if (strcmp (argv[0], "train") && strcmp (argv[0], "resume") && strcmp (argv[0], "export"))
      g_assert_true (last == errs);                               /* nothing but the error */
  }
  for (int i = 0; want && want[i]; i++)
    if (!strstr (want_rc ? last : errs, want[i]))
      g_error ("sutra %s: output lacks \"%s\":\n%s", argv[0], want[i], errs);
  g_assert_null (strstr (errs, "Sanitizer"));
  g_assert_null (strstr (errs, "runtime error"));
  g_free (out);
  return errs;
}

/* ---- model folders ---- */

static void
test_model_missing_config (void)
{
  char *m = copy_model ("no-config");
  char *p = g_build_filename (m, "config.json", NULL);
  g_unlink (p);
  const char *argv[] = { "info", m, NULL }, *want[] = { "config.json", "No such file", NULL };
  g_free (expect (1, argv, want));
  g_free (p);
  g_free (m);
}

static void
test_model_config_broken (void)
{
  static const struct { const char *json, *want; } cases[] = {
    { "{\"hidden_size\": 16,", "config.json: line" },
    { "{\"architectures\": [\"GPT2LMHeadModel\"]}", "architecture 'GPT2LMHeadModel' is not supported" },
    { "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": -16, \"intermediate_size\": 24,"
      " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 64}", "hidden_size" },
    { "[1, 2]", "config.json" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    char *name = g_strdup_printf ("bad-config-%zu", i);
    char *m = copy_model (name);
    write_bytes (m, "config.json", cases[i].json, strlen (cases[i].json));
    const char *argv[] = { "info", m, NULL }, *want[] = { cases[i].want, NULL };
    g_free (expect (1, argv, want));
    g_free (m);
    g_free (name);
  }
}

static void
test_model_no_weights (void)
{
  char *m = copy_model ("no-weights");
  char *p = g_build_filename (m, "model.safetensors", NULL);
  g_unlink (p);
  const char *argv[] = { "info", m, NULL }, *want[] = { "no *.safetensors weights", m, NULL };
  g_free (expect (1, argv, want));
  write_bytes (m, "pytorch_model.bin", "PK\003\004", 4);
  const char *want2[] = { "pytorch_model.bin", "convert it to safetensors", NULL };
  g_free (expect (1, argv, want2));
  g_free (p);
  g_free (m);
}

/* the safetensors file damaged in place: header length, header text, size, dtypes, values */
static void
test_model_damaged_weights (void)
{
  GBytes *orig = read_bytes (in.model, "model.safetensors");
  gsize n;
  const guint8 *d = g_bytes_get_data (orig, &n);
  guint64 hlen;
  memcpy (&hlen, d, 8);
  char *header = g_strndup ((const char *) d + 8, hlen);
  const guint64 f32_off = 8 + hlen;
  enum { HUGE_HEADER, BEYOND_FILE, HEADER_JSON, TRUNCATED, WRONG_DTYPE, UNKNOWN_DTYPE, MISSING, NAN_VALUE, N_CASES };
  const char *want[N_CASES] = {
    "over the 104857600-byte limit", "goes beyond the end of the file", "model.safetensors",
    "truncated", "is I32; expected a float tensor", "unknown dtype 'F8_X'",
    "tensor model.norm.weight is missing", "holds NaN or infinite values",
  };
  for (int k = 0; k < N_CASES; k++) {
    char *name = g_strdup_printf ("damaged-%d", k);
    char *m = copy_model (name);
    guint8 *b = g_memdup2 (d, n);
    gsize len = n;
    guint64 v;
    switch (k) {
    case HUGE_HEADER: v = 200u << 20; memcpy (b, &v, 8); break;
    case BEYOND_FILE: v = 50u << 20; memcpy (b, &v, 8); break;
    case HEADER_JSON: b[8] = '['; break;
    case TRUNCATED: len = n - 1000; break;
    case WRONG_DTYPE: case UNKNOWN_DTYPE: case MISSING: {
      /* retype or rename the norm weight; the header is re-padded (8-byte multiple) and the
       * data follows unchanged, so every offset stays valid */
      GString *s = g_string_new (header);
      if (k == MISSING) {
        g_assert_cmpuint (g_string_replace (s, "\"model.norm.weight\"", "\"model.norm.weighX\"", 1), ==, 1);
      } else {
        char *at = strstr (s->str, "\"model.norm.weight\"");
        g_assert_nonnull (at);
        gssize pos = strstr (at, "\"F32\"") - s->str;
        g_string_erase (s, pos, 5);
        g_string_insert (s, pos, k == WRONG_DTYPE ? "\"I32\"" : "\"F8_X\"");
      }
      while (s->len && s->str[s->len - 1] == ' ')
        g_string_truncate (s, s->len - 1);
      while (s->len % 8)
        g_string_append_c (s, ' ');
      guint64 nh = s->len;
      g_free (b);
      len = 8 + nh + (n - 8 - hlen);
      b = g_malloc (len);
      memcpy (b, &nh, 8);
      memcpy (b + 8, s->str, nh);
      memcpy (b + 8 + nh, d + 8 + hlen, n - 8 - hlen);
      g_string_free (s, TRUE);
      break;
    }
    case NAN_VALUE: {
      /* one NaN inside the first tensor's data */
      guint32 nan = 0x7fc00000u;
      memcpy (b + f32_off + 4 * 3, &nan, 4);
      break;
    }
    }
    write_bytes (m, "model.safetensors", b, len);
    const char *argv[] = { "logits", m, "--ids", "1 2 3", "--out", "/dev/null", NULL };
    const char *w[] = { want[k], m, NULL };
    g_free (expect (1, argv, w));
    g_free (b);
    g_free (m);
    g_free (name);
  }
  g_free (header);
  g_bytes_unref (orig);
}

static void
test_model_mismatched_config (void)
{
  char *m = copy_model ("mismatch");
  GBytes *c = read_bytes (m, "config.json");
  GString *s = g_string_new_len (g_bytes_get_data (c, NULL), (gssize) g_bytes_get_size (c));
  g_assert_cmpuint (g_string_replace (s, "\"hidden_size\":16", "\"hidden_size\":32", 1), ==, 1);
  write_bytes (m, "config.json", s->str, s->len);
  const char *argv[] = { "logits", m, "--ids", "1 2", "--out", "/dev/null", NULL };
  const char *want[] = { "model.safetensors", "has shape [64, 16], expected [64, 32]", NULL };
  g_free (expect (1, argv, want));
  g_string_free (s, TRUE);
  g_bytes_unref (c);
  g_free (m);
}

static void
test_model_shards (void)
{
  char *m = copy_model ("sharded");
  char *single = g_build_filename (m, "model.safetensors", NULL);
  char *shard = g_build_filename (m, "model-00001-of-00002.safetensors", NULL);
  g_assert_cmpint (g_rename (single, shard), ==, 0);
  const char *idx = "{\"metadata\": {}, \"weight_map\": {\"model.embed_tokens.weight\": "
                    "\"model-00001-of-00002.safetensors\", \"model.norm.weight\": "
                    "\"model-00002-of-00002.safetensors\"}}";
  write_bytes (m, "model.safetensors.index.json", idx, strlen (idx));
  const char *argv[] = { "info", m, NULL };
  const char *want[] = { "model.safetensors.index.json", "model-00002-of-00002.safetensors",
                         "No such file", NULL };
  g_free (expect (1, argv, want));
  /* a shard name that leaves the folder is refused before anything is opened */
  const char *evil = "{\"metadata\": {}, \"weight_map\": {\"model.norm.weight\": \"../model/model.safetensors\"}}";
  write_bytes (m, "model.safetensors.index.json", evil, strlen (evil));
  const char *want2[] = { "model.safetensors.index.json", "not a plain file name inside the folder", NULL };
  g_free (expect (1, argv, want2));
  g_free (single);
  g_free (shard);
  g_free (m);
}

/* a quantized model folder (sutra quantize, int8) damaged in place */
static void
test_quantized_damaged (void)
{
  GBytes *orig = read_bytes (in.qmodel, "model.safetensors");
  gsize n;
  const char *d = g_bytes_get_data (orig, &n);
  guint64 hlen;
  memcpy (&hlen, d, 8);
  char *header = g_strndup (d + 8, hlen);
  static const struct { const char *from, *to, *want; } edits[] = {
    { "\"quant_type\":\"int8\"", "\"quant_type\":\"int3\"", "__metadata__ quant_type 'int3' is unknown" },
    { "\"model.layers.0.mlp.down_proj.qweight\":{\"dtype\":\"I8\"",
      "\"model.layers.0.mlp.down_proj.qweight\":{\"dtype\":\"U8\"", "part 'qweight' is U8" },
    { NULL, NULL, "scales[0] is not finite" },
    { NULL, NULL, "truncated" },
  };
  for (size_t k = 0; k < G_N_ELEMENTS (edits); k++) {
    char *name = g_strdup_printf ("q-damaged-%zu", k);
    char *m = g_build_filename (in.tmp, name, NULL);
    g_assert_cmpint (g_mkdir_with_parents (m, 0755), ==, 0);
    GBytes *cfg = read_bytes (in.qmodel, "config.json");
    write_bytes (m, "config.json", g_bytes_get_data (cfg, NULL), g_bytes_get_size (cfg));
    g_bytes_unref (cfg);
    char *b = g_memdup2 (d, n);
    gsize len = n;
    if (edits[k].from) {
      char *at = strstr (header, edits[k].from);
      g_assert_nonnull (at);
      g_assert_cmpuint (strlen (edits[k].from), ==, strlen (edits[k].to));
      memcpy (b + 8 + (at - header), edits[k].to, strlen (edits[k].to));
    } else if (k == 2) {
      /* the first scale of down_proj (F32) becomes NaN */
      char *at = strstr (header, "\"model.layers.0.mlp.down_proj.scales\"");
      g_assert_nonnull (at);
      guint64 off = g_ascii_strtoull (strstr (at, "data_offsets\":[") + 15, NULL, 10);
      guint32 nan = 0x7fc00000u;
      memcpy (b + 8 + hlen + off, &nan, 4);
    } else {
      len = n - 100;
    }
    write_bytes (m, "model.safetensors", b, len);
    const char *argv[] = { "logits", m, "--ids", "1 2", "--out", "/dev/null", NULL };
    const char *want[] = { "model.safetensors", edits[k].want, NULL };
    g_free (expect (1, argv, want));
    g_free (b);
    g_free (m);
    g_free (name);
  }
  g_free (header);
  g_bytes_unref (orig);
}

/* ---- datasets ---- */

static char *
settings (const char *name, const char *model, const char *data, const char *extra)
{
  char *run = g_build_filename (in.tmp, name, NULL);
  char *json = g_strdup_printf ("{\"model\": \"%s\", \"data\": \"%s\", \"output_dir\": \"%s\", "
                                "\"max_steps\": 2, \"seq_len\": 16, \"micro_batch_size\": 2, "
                                "\"threads\": 1, \"save_every\": 0, \"lora_r\": 2%s}", model, data,
                                run, extra ? extra : "");
  char *fname = g_strdup_printf ("%s.json", name);
  char *p = write_text (fname, json, -1);
  g_free (fname);
  g_free (json);
  g_free (run);
  return p;
}

static void
train_expect (const char *name, const char *model, const char *data_name, const char *data,
              gssize len, const char *extra, int rc, const char *const *want)
{
  char *dp = data ? write_text (data_name, data, len) : g_build_filename (in.tmp, data_name, NULL);
  char *cfg = settings (name, model, dp, extra);
  const char *argv[] = { "train", cfg, "--quiet", NULL };
  g_free (expect (rc, argv, want));
  g_free (cfg);
  g_free (dp);
}

static void
test_data_bad (void)
{
  const char *w1[] = { "missing.jsonl", "No such file", NULL };
  train_expect ("d-missing", in.model, "missing.jsonl", NULL, 0, NULL, 1, w1);
  const char *w2[] = { "empty.jsonl", "no examples", NULL };
  train_expect ("d-empty", in.model, "empty.jsonl", "", 0, NULL, 1, w2);
  const char *w3[] = { "allbad.jsonl", "no usable rows", "allbad.jsonl:1", NULL };
  train_expect ("d-allbad", in.model, "allbad.jsonl", "{\"input_ids\": [1, 2, 3\n{\"nothing\": 1}\n", -1,
                NULL, 1, w3);
  const char *w4[] = { "oov.jsonl:1", "outside [0, 64)", NULL };
  train_expect ("d-oov", in.model, "oov.jsonl", "{\"input_ids\": [1, 2, 300]}\n", -1, NULL, 1, w4);
  const char *w5[] = { "text.jsonl:1", "text rows need a tokenizer", NULL };
  train_expect ("d-notok", in.model, "text.jsonl", "{\"text\": \"hello\"}\n", -1, NULL, 1, w5);
  const char *w6[] = { "cols.csv", "no known keys", NULL };
  train_expect ("d-csv", in.model, "cols.csv", "a,b\n1,2\n", -1, NULL, 1, w6);
  /* stop_on_bad_row: the first bad row is the error, with its line */
  const char *good_bad = "{\"input_ids\": [1, 2, 3, 4]}\n{\"input_ids\": [1, 2,\n{\"input_ids\": [5, 6, 7]}\n";
  const char *w7[] = { "mixed.jsonl:2", "invalid JSON", NULL };
  train_expect ("d-stop", in.model, "mixed.jsonl", good_bad, -1, ", \"stop_on_bad_row\": true", 1, w7);
}

static void
test_data_non_utf8 (void)
{
  /* invalid UTF-8 in a text dataset: the bad rows are reported with file and line; when none
   * is usable, that is the error */
  const char bytes[] = "{\"text\": \"caf\xc3\x28 au lait\"}\n\xff\xfe{\"text\": \"x\"}\n";
  const char *w[] = { "latin.jsonl", "no usable rows", "latin.jsonl:1", "UTF-8", NULL };
  train_expect ("d-utf8", in.text_model, "latin.jsonl", bytes, sizeof bytes - 1, NULL, 1, w);
  /* among good rows, the bad ones are skipped and reported */
  const char mixed[] = "{\"text\": \"the quick brown fox\"}\n{\"text\": \"bad \xc3\x28\"}\n"
                       "{\"text\": \"jumps over the lazy dog\"}\n";
  const char *w2[] = { "skipped", "latin2.jsonl:2", NULL };
  train_expect ("d-utf8-mixed", in.text_model, "latin2.jsonl", mixed, sizeof mixed - 1, NULL, 0, w2);
  /* plain text that is not UTF-8: the bad bytes become U+FFFD (as Python's errors="replace"),
   * the way a text corpus with a stray Latin-1 byte is usually meant */
  const char plain[] = "caf\xe9 au lait\nthe quick brown fox\n";
  train_expect ("d-utf8-txt", in.text_model, "latin.txt", plain, sizeof plain - 1, NULL, 0, NULL);
}

static void
test_data_imperfect_rows (void)
{
  /* a bad row among good ones is skipped and reported by file and line */
  const char *good_bad = "{\"input_ids\": [1, 2, 3, 4]}\n{\"input_ids\": [1, 2,\n{\"input_ids\": [5, 6, 7]}\n";
  const char *w1[] = { "skipped", "mixed2.jsonl:2", NULL };
  char *dp = write_text ("mixed2.jsonl", good_bad, -1), *cfg = settings ("d-skip", in.model, dp, NULL);
  const char *argv[] = { "train", cfg, NULL };       /* not --quiet: the log lines are shown */
  g_free (expect (0, argv, w1));
  g_free (cfg);
  g_free (dp);
  /* rows longer than seq_len are cut (and counted); a seq_len past the model's context is cut
   * to the context */
  GString *s = g_string_new ("{\"input_ids\": [");
  for (int i = 0; i < 300; i++)
    g_string_append_printf (s, "%s%d", i ? ", " : "", i % 60);
  g_string_append (s, "]}\n");
  dp = write_text ("long.jsonl", s->str, -1);
  cfg = settings ("d-long", in.model, dp, NULL);
  const char *argv2[] = { "train", cfg, NULL };
  const char *w2[] = { "1 truncated", NULL };
  g_free (expect (0, argv2, w2));
  g_free (cfg);
  cfg = settings ("d-ctx", in.model, dp, NULL);
  const char *argv3[] = { "train", cfg, "--seq_len", "4096", NULL };
  const char *w3[] = { "seq_len 4096 is beyond the model's context of 512 tokens", NULL };
  g_free (expect (0, argv3, w3));
  g_free (cfg);
  g_free (dp);
  g_string_free (s, TRUE);
}

static void
test_tokenizer_corrupt (void)
{
  char *m = g_build_filename (in.tmp, "bad-tok", NULL);
  g_assert_cmpint (g_mkdir_with_parents (m, 0755), ==, 0);
  const char *files[] = { "config.json", "model.safetensors" };
  for (size_t i = 0; i < G_N_ELEMENTS (files); i++) {
    char *s = g_build_filename (in.text_model, files[i], NULL), *d = g_build_filename (m, files[i], NULL);
    SutraError err;
    test_assert_ok (sutra_copy_file (s, d, &err), &err);
    g_free (s);
    g_free (d);
  }
  const char *broken = "{\"model\": {\"type\": \"BPE\", \"vocab\": 7}}";
  write_bytes (m, "tokenizer.json", broken, strlen (broken));
  const char *w[] = { "tokenizer.json", NULL };
  train_expect ("t-bad", m, "tt.jsonl", "{\"text\": \"hello\"}\n", -1, NULL, 1, w);
  const char *argv[] = { "tokenize", m, "--text", "hello", NULL };
  g_free (expect (1, argv, w));
  g_free (m);
}

/* ---- adapters ---- */

static char *
adapter (const char *name, const char *config, int in_dim, bool nan, bool pickle)
{
  char *dir = g_build_filename (in.tmp, name, NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  if (config)
    write_bytes (dir, "adapter_config.json", config, strlen (config));
  if (pickle) {
    write_bytes (dir, "adapter_model.bin", "PK", 2);
    return dir;
  }
  /* q_proj of layer 0: A [2, in], B [16, 2] */
  size_t na = 2 * (size_t) in_dim, nb = 16 * 2;
  char *h = g_strdup_printf ("{\"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight\": "
                             "{\"dtype\": \"F32\", \"shape\": [2, %d], \"data_offsets\": [0, %zu]}, "
                             "\"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight\": "
                             "{\"dtype\": \"F32\", \"shape\": [16, 2], \"data_offsets\": [%zu, %zu]}}",
                             in_dim, na * 4, na * 4, (na + nb) * 4);
  guint64 hl = (strlen (h) + 7) / 8 * 8;
  GByteArray *b = g_byte_array_new ();
  g_byte_array_append (b, (guint8 *) &hl, 8);
  g_byte_array_append (b, (guint8 *) h, (guint) strlen (h));
  for (size_t i = strlen (h); i < hl; i++)
    g_byte_array_append (b, (const guint8 *) " ", 1);
  for (size_t i = 0; i < na + nb; i++) {
    float v = nan && i == 5 ? NAN : 0.01f * (float) (i % 7);
    g_byte_array_append (b, (guint8 *) &v, 4);
  }
  write_bytes (dir, "adapter_model.safetensors", b->data, b->len);
  g_byte_array_unref (b);
  g_free (h);
  return dir;
}

static void
test_adapter_bad (void)
{
  const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"target_modules\": [\"q_proj\"]}";
  static const struct { const char *name, *config; int in; bool nan, pickle; const char *want1, *want2; } cases[] = {
    { "a-other-base", NULL, 32, false, false, "adapter_model.safetensors", "made for another base model" },
    { "a-no-config", "", 16, false, false, "adapter_config.json", "No such file" },
    { "a-dora", "{\"peft_type\": \"LORA\", \"r\": 2, \"use_dora\": true, \"target_modules\": [\"q_proj\"]}",
      16, false, false, "adapter_config.json", "use_dora" },
    { "a-prefix", "{\"peft_type\": \"PREFIX_TUNING\", \"target_modules\": [\"q_proj\"]}", 16, false,
      false, "adapter_config.json", "PREFIX_TUNING" },
    { "a-pickle", NULL, 16, false, true, "adapter_model.bin", "only adapter_model.safetensors" },
    { "a-nan", NULL, 16, true, false, "adapter_model.safetensors", "holds NaN" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    const char *c = cases[i].config ? (*cases[i].config ? cases[i].config : NULL) : cfg;
    char *dir = adapter (cases[i].name, c, cases[i].in, cases[i].nan, cases[i].pickle);
    const char *argv[] = { "logits", in.model, "--ids", "1 2", "--adapter", dir, "--out", "/dev/null", NULL };
    const char *want[] = { cases[i].want1, cases[i].want2, NULL };
    g_free (expect (1, argv, want));
    /* the same adapter given to a training run as init_adapter, and to an export */
    if (i == 0) {
      char *extra = g_strdup_printf (", \"init_adapter\": \"%s\"", dir);
      train_expect ("a-init", in.model, "ok.jsonl", "{\"input_ids\": [1, 2, 3, 4]}\n", -1, extra, 1, want);
      g_free (extra);
      char *out = g_build_filename (in.tmp, "a-export", NULL);
      const char *eargv[] = { "export", dir, "--model", in.model, "--merged", out, NULL };
      g_free (expect (1, eargv, want));
      g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
      g_free (out);
    }
    g_free (dir);
  }
}

/* ---- GGUF files ---- */

/* Entries of dir whose name starts with base and holds ".tmp-": leftovers of a write. */
static int
tmp_leftovers (const char *dir, const char *base)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  int n = 0;
  const char *e;
  while ((e = g_dir_read_name (d)))
    n += g_str_has_prefix (e, base) && strstr (e, ".tmp-") != NULL;
  g_dir_close (d);
  return n;
}

static void
test_gguf_bad (void)
{
  /* a good file to damage: the text model (it has a tokenizer) with an adapter, as GGUF */
  const char *cfg = "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"target_modules\": [\"q_proj\"]}";
  char *ad = adapter ("g-adapter", cfg, 16, false, false);
  char *gdir = g_build_filename (in.tmp, "gguf", NULL);
  g_assert_cmpint (g_mkdir_with_parents (gdir, 0755), ==, 0);
  char *good = g_build_filename (gdir, "good.gguf", NULL);
  const char *eargv[] = { "export", ad, "--model", in.text_model, "--gguf", good, NULL };
  g_free (expect (0, eargv, NULL));
  GBytes *img = read_bytes (gdir, "good.gguf");
  gsize n;
  const guint8 *d = g_bytes_get_data (img, &n);
  g_assert_cmpuint (n, >, 4096);
  /* gguf-info: one line naming the file and the fault, exit 1 */
  static const struct { const char *name; gsize len; int version; const char *want; } cases[] = {
    { "not-gguf.gguf", 0, 0, "not a GGUF file" },             /* a JSON file under a .gguf name */
    { "cut-magic.gguf", 3, 0, "truncated at byte" },
    { "cut-header.gguf", 200, 0, "truncated" },             /* inside the metadata */
    { "cut-data.gguf", 1, 0, "beyond the end" },              /* 1 = all but the last 1000 bytes */
    { "v4.gguf", 0, 4, "unknown GGUF version 4" },
    { "v1.gguf", 0, 1, "GGUF version 1" },
    { "empty.gguf", 2, 0, "truncated at byte 0" },            /* 2 = an empty file */
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    guint8 *b = g_memdup2 (d, n);
    gsize len = n;
    if (i == 0) {
      const char *j = "{\"architectures\": [\"LlamaForCausalLM\"]}\n";
      memcpy (b, j, strlen (j));
      len = strlen (j);
    } else if (cases[i].len == 1) {
      len = n - 1000;
    } else if (cases[i].len == 2) {
      len = 0;
    } else if (cases[i].len) {
      len = cases[i].len;
    }
    if (cases[i].version) {
      guint32 v = (guint32) cases[i].version;
      memcpy (b + 4, &v, 4);
    }
    write_bytes (gdir, cases[i].name, b, len);
    char *p = g_build_filename (gdir, cases[i].name, NULL);
    const char *argv[] = { "gguf-info", p, NULL }, *want[] = { p, cases[i].want, NULL };
    g_free (expect (1, argv, want));
    g_free (p);
    g_free (b);
  }
  const char *margv[] = { "gguf-info", "/nonexistent/x.gguf", NULL };
  const char *mwant[] = { "/nonexistent/x.gguf", "No such file", NULL };
  g_free (expect (1, margv, mwant));
  const char *dargv[] = { "gguf-info", gdir, NULL }, *dwant[] = { gdir, "not a regular file", NULL };
  g_free (expect (1, dargv, dwant));
  /* export --gguf onto an existing folder: refused before any work, the folder untouched */
  char *folder = g_build_filename (gdir, "taken", NULL);
  g_assert_cmpint (g_mkdir_with_parents (folder, 0755), ==, 0);
  write_bytes (folder, "keep.txt", "keep", 4);
  const char *fargv[] = { "export", ad, "--model", in.text_model, "--gguf", folder, NULL };
  const char *fwant[] = { folder, "is a folder", NULL };
  g_free (expect (1, fargv, fwant));
  GBytes *keep = read_bytes (folder, "keep.txt");
  g_assert_cmpuint (g_bytes_get_size (keep), ==, 4);
  g_bytes_unref (keep);
  g_assert_cmpint (tmp_leftovers (gdir, "taken"), ==, 0);
  /* an unknown --type: the types are named, nothing is written (a previous file stays) */
  char *typed = g_build_filename (gdir, "typed.gguf", NULL);
  const char *targv[] = { "export", ad, "--model", in.text_model, "--gguf", typed, "--type", "q3_k", NULL };
  const char *twant[] = { "unknown GGUF type 'q3_k'", "q8_0", NULL };
  g_free (expect (1, targv, twant));
  g_assert_false (g_file_test (typed, G_FILE_TEST_EXISTS));
  targv[5] = good;
  g_free (expect (1, targv, twant));
  GBytes *after = read_bytes (gdir, "good.gguf");
  g_assert_true (g_bytes_equal (after, img));
  g_bytes_unref (after);
  g_assert_cmpint (tmp_leftovers (gdir, ""), ==, 0);
  /* gguf-export with the same faults */
  const char *gargv[] = { "gguf-export", in.text_model, "--out", folder, NULL };
  g_free (expect (1, gargv, fwant));
  const char *g2argv[] = { "gguf-export", in.text_model, "--out", typed, "--type", "q3_k", NULL };
  g_free (expect (1, g2argv, twant));
  g_assert_false (g_file_test (typed, G_FILE_TEST_EXISTS));
  g_bytes_unref (img);
  g_free (typed);
  g_free (folder);
  g_free (good);
  g_free (gdir);
  g_free (ad);
}

/* ---- settings and run folders ---- */

static void
test_settings_bad (void)
{
  char *bad = write_text ("bad-settings.json", "{\"model\": \"x\",", -1);
  const char *argv[] = { "train", bad, NULL }, *w[] = { "bad-settings.json", "line", NULL };
  g_free (expect (1, argv, w));
  char *dp = write_text ("s-ok.jsonl", "{\"input_ids\": [1, 2, 3, 4]}\n", -1);
  char *cfg = settings ("s-bad", in.model, dp, NULL);
  /* a bad value or key is a usage error (exit 2) naming it */
  const char *argv2[] = { "train", cfg, "--lr", "abc", NULL }, *w2[] = { "lr", "abc", NULL };
  g_free (expect (2, argv2, w2));
  const char *argv3[] = { "train", cfg, "--bogus", "1", NULL }, *w3[] = { "bogus", NULL };
  g_free (expect (2, argv3, w3));
  char *nulls = write_text ("s-null.json", "{\"betas\": [0.9, null]}", -1);
  const char *argv4[] = { "train", nulls, NULL }, *w4[] = { "s-null.json", "betas[1]", NULL };
  g_free (expect (2, argv4, w4));
  /* an output_dir that already holds a run */
  const char *argv5[] = { "train", cfg, "--quiet", NULL };
  g_free (expect (0, argv5, NULL));
  const char *w5[] = { "already holds a training run", "sutra resume", NULL };
  g_free (expect (1, argv5, w5));
  g_free (nulls);
  g_free (cfg);
  g_free (dp);
  g_free (bad);
}

static void
test_resume_bad (void)
{
  const char *argv[] = { "resume", in.model, NULL }, *w[] = { "not a training run folder", NULL };
  g_free (expect (1, argv, w));
  char *dp = write_text ("r-ok.jsonl", "{\"input_ids\": [1, 2, 3, 4]}\n", -1);
  char *cfg = settings ("r-run", in.model, dp, NULL);
  const char *targv[] = { "train", cfg, "--quiet", "--save_every", "1", "--max_steps", "3", NULL };
  g_free (expect (0, targv, NULL));
  char *run = g_build_filename (in.tmp, "r-run", NULL);
  char *state = g_build_filename (run, "checkpoints", "step-000002", "trainer_state.json", NULL);
  g_assert_true (g_file_set_contents (state, "{\"format\": 1, \"step\": \"two\"}", -1, NULL));
  const char *rargv[] = { "resume", run, NULL };
  const char *w2[] = { "cannot be resumed", "--checkpoint", "trainer_state.json", "step", NULL };
  g_free (expect (1, rargv, w2));
  /* an earlier checkpoint still resumes */
  char *ck1 = g_build_filename (run, "checkpoints", "step-000001", NULL);
  const char *rargv2[] = { "resume", run, "--checkpoint", ck1, "--quiet", NULL };
  g_free (expect (0, rargv2, NULL));
  g_free (ck1);
  g_free (state);
  g_free (run);
  g_free (cfg);
  g_free (dp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  in.tmp = g_strdup (test_tmpdir ());
  in.model = test_tiny_model_folder (in.tmp, "model", 16, 2, 64, 3);
  in.text_model = test_tiny_model_folder (in.tmp, "text-model", 16, 2, 320, 4);
  /* a byte-level BPE tokenizer for the text model, trained by the CLI on a few lines */
  GString *corpus = g_string_new (NULL);
  for (int i = 0; i < 40; i++)
    g_string_append_printf (corpus, "the quick brown fox jumps over the lazy dog %d\n", i);
  char *cp = write_text ("corpus.txt", corpus->str, -1);
  char *tok = g_build_filename (in.text_model, "tokenizer.json", NULL);
  const char *targv[] = { "tokenizer-train", "--input", cp, "--vocab-size", "300", "--out", tok, NULL };
  char *errs = NULL;
  if (test_run_cli (NULL, &errs, targv) != 0)
    g_error ("tokenizer-train failed: %s", errs);
  g_free (errs);
  g_free (tok);
  g_free (cp);
  g_string_free (corpus, TRUE);
  in.qmodel = g_build_filename (in.tmp, "model-int8", NULL);
  const char *qargv[] = { "quantize", in.model, "--method", "int8", "--out", in.qmodel, NULL };
  if (test_run_cli (NULL, &errs, qargv) != 0)
    g_error ("quantize failed: %s", errs);
  g_free (errs);

  g_test_add_func ("/engine/bad-input/model-missing-config", test_model_missing_config);
  g_test_add_func ("/engine/bad-input/model-config-broken", test_model_config_broken);
  g_test_add_func ("/engine/bad-input/model-no-weights", test_model_no_weights);
  g_test_add_func ("/engine/bad-input/model-damaged-weights", test_model_damaged_weights);
  g_test_add_func ("/engine/bad-input/model-mismatched-config", test_model_mismatched_config);
  g_test_add_func ("/engine/bad-input/model-shards", test_model_shards);
  g_test_add_func ("/engine/bad-input/quantized-damaged", test_quantized_damaged);
  g_test_add_func ("/engine/bad-input/data-bad", test_data_bad);
  g_test_add_func ("/engine/bad-input/data-non-utf8", test_data_non_utf8);
  g_test_add_func ("/engine/bad-input/data-imperfect-rows", test_data_imperfect_rows);
  g_test_add_func ("/engine/bad-input/tokenizer-corrupt", test_tokenizer_corrupt);
  g_test_add_func ("/engine/bad-input/adapter-bad", test_adapter_bad);
  g_test_add_func ("/engine/bad-input/gguf-bad", test_gguf_bad);
  g_test_add_func ("/engine/bad-input/settings-bad", test_settings_bad);
  g_test_add_func ("/engine/bad-input/resume-bad", test_resume_bad);
  int rc = g_test_run ();
  g_free (in.tmp);
  g_free (in.model);
  g_free (in.text_model);
  g_free (in.qmodel);
  return rc;
}
