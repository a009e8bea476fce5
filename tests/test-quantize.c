/* test-quantize.c: model-level quantization on a real Hugging Face folder: every method keeps the
 * logits close (measured bounds), AWQ and GPTQ beat round to nearest at the same group size on
 * held-out tokens, the quantized folder round-trips and `sutra info/logits` read it, corrupt
 * files give clear errors, cancellation leaves the model and the disk unchanged, and the
 * quantized model decodes (KV cache) and trains LoRA (QLoRA) correctly. */
#include "test-util.h"
#include "sutra-eval.h"
#include "sutra-fsutil.h"
#include "sutra-lora.h"
#include "sutra-pool.h"
#include "sutra-qfile.h"
#include "sutra-quantize.h"
#include "sutra-tokenizer.h"

#include <math.h>
#include <string.h>

/* Measured on llama-tiny (random weights, GQA, FFN 172 so partial groups) with 1024 tokens
 * sampled from the model for calibration and 512 held-out ones; KL in nats per token, mean
 * over positions. Bounds ~1.5x the measured values (in brackets). */
#define KL_MAX_INT8     0.0008   /* [0.00027] */
#define KL_MAX_NF4      0.090    /* [0.058] */
#define KL_MAX_NF4_DQ   0.090    /* [0.058] */
#define KL_MAX_INT4_G32 0.075    /* [0.048] */
#define KL_MAX_AWQ_G32  0.070    /* [0.044] */
#define KL_MAX_GPTQ_G32 0.060    /* [0.036] */
#define INT8_MAX_PPL_CHANGE 0.01          /* the bound: within 1% */
/* 4-bit (NF4, INT4 RTN g64) on the default model, real held-out text (load_text_data): measured
 * ppl change +0.49% (NF4) and +0.56% (RTN g64) on the test's 3.3k tokens, and <= +0.90% for every
 * 4-bit row without --lm-head on 12k held-out tokens (bench/perplexity-table.sh,
 * docs/quantization.md section 8); 2% leaves room for a re-trained model of the same size. Not
 * applied to the random llama-tiny fallback (NF4 +6% there: random weights have no redundancy). */
#define INT4_MAX_PPL_CHANGE_DEFAULT 0.02
/* AWQ/GPTQ vs RTN perplexity on the default model: "not worse" up to 0.6%. Measured paired
 * per-window differences of mean NLL (AWQ - RTN, GPTQ - RTN, g64) over 24 held-out windows of 512
 * (12.3k tokens): AWQ -0.13% (standard error 0.13%), GPTQ -0.38% (SE 0.16%); scaled to the
 * test's 3.3k tokens the SE is 0.25-0.30%, so a method no better than RTN lands within 2 SE,
 * 0.6%, of it. In the test: AWQ -0.77%, GPTQ -0.18% of RTN. */
#define AWQ_GPTQ_PPL_TOL 0.006
#define KV_STEP_REL_TOL 1e-5              /* decode step vs full forward on a packed model */
/* INT4 decode (8-bit input per 32 values) vs the full forward (float input), same packed model
 * with its head packed, 24 positions. Measured KL(forward || decode) in nats, mean / max:
 * llama-tiny g32 RTN 1.7e-4 / 3.7e-4, AWQ 1.7e-4 / 2.7e-4, GPTQ 1.8e-4 / 5.4e-4; default model
 * RTN g32 7.2e-5 / 2.1e-4, g64 8.0e-5 / 2.8e-4, g128 1.0e-4 / 8.9e-4 (argmax 24/24). That is
 * 1-2% of what the 4-bit weights themselves cost (default model KL 0.0046-0.0099, llama-tiny
 * 0.036-0.048). Bounds ~2.7x (mean) and ~3.4x (max) the worst measured. */
#define KV_STEP_INT4_KL_MEAN 5e-4
#define KV_STEP_INT4_KL_MAX 3e-3
#define QLORA_GRAD_REL_TOL 1e-4           /* LoRA grads on a packed base vs its f32 dequantization */

/* The bounded tests run on the tiny reference Llama (its numbers are the ones measured above). */
static const char *
tiny_dir (void)
{
  return test_shared_path ("hf-refs/llama-tiny");
}

/* The model for the comparisons the issue asks for on the default model (AWQ and GPTQ each beat
 * RTN; INT8 within 1% perplexity): the embedded default model once data/models/ has it, until
 * then the tiny reference Llama. */
static const char *
quant_model_dir (void)
{
  const char *d = test_source_path ("data/models/sutra-kjv-mini");
  if (g_file_test (d, G_FILE_TEST_IS_DIR))
    return d;
  return tiny_dir ();
}

typedef struct {
  char *dir;
  int *calib, *held;          /* token ids: sampled from the float model, or real text */
  int n_calib, n_held;
  int held_ctx;               /* windows the held-out ids are scored in */
  SutraBatch batches[16];
  int n_batches;
} Data;

static Data data, data_other;

/* Samples n tokens (temperature 1, seeded) continuing `first` with the model's KV cache. */
static void
sample_tokens (SutraModel *m, int *out, int n, int first, guint32 seed)
{
  SutraGenState *st;
  SutraError err;
  test_assert_ok (m->vt->state_new (m, n + 1, &st, &err), &err);
  int V = m->cfg.vocab_size;
  float *logits = g_new (float, V);
  GRand *r = g_rand_new_with_seed (seed);
  out[0] = first;
  for (int i = 0; i + 1 < n; i++) {
    test_assert_ok (m->vt->step (m, st, &out[i], 1, logits, false, &err), &err);
    double mx = logits[0], sum = 0;
    for (int v = 1; v < V; v++)
      mx = logits[v] > mx ? logits[v] : mx;
    for (int v = 0; v < V; v++)
      sum += exp (logits[v] - mx);
    double u = g_rand_double (r) * sum, c = 0;
    int pick = V - 1;
    for (int v = 0; v < V; v++) {
      c += exp (logits[v] - mx);
      if (c >= u) {
        pick = v;
        break;
      }
    }
    out[i + 1] = pick;
  }
  g_rand_free (r);
  g_free (logits);
  m->vt->state_free (st);
}

/* The default model is trained on the KJV, so it is measured on real text the way a user would:
 * tests/data/kjv-heldout-{calib,eval}.txt are 3 + 4 of data/tools/prepare_corpus.py's held-out
 * chapters (every 40th chapter, never trained on; calib: Psalms 2, Proverbs 12, Psalms 42;
 * eval: Genesis 40, Job 4, Isaiah 41, John 3), tokenized with the model's tokenizer (BOS first).
 * Calibration: the first 8 windows of 128 tokens (1024); held-out: all ~3.3k tokens, scored in
 * windows of 256. */
static int *
text_ids (const SutraTokenizer *tok, const char *file, int *n)
{
  char *text;
  gsize len;
  g_assert_true (g_file_get_contents (test_source_path (file), &text, &len, NULL));
  SutraEncoding enc;
  SutraError err;
  test_assert_ok (sutra_tokenizer_encode (tok, text, len, SUTRA_ENCODE_ADD_SPECIAL, &enc, &err), &err);
  int *ids = g_new (int, enc.n);
  for (size_t i = 0; i < enc.n; i++)
    ids[i] = enc.ids[i];
  *n = (int) enc.n;
  sutra_encoding_clear (&enc);
  g_free (text);
  return ids;
}

static void
load_text_data (const char *dir)
{
  SutraTokenizer *tok;
  SutraError err;
  test_assert_ok (sutra_tokenizer_load (dir, &tok, &err), &err);
  const int W = 128;
  data.calib = text_ids (tok, "tests/data/kjv-heldout-calib.txt", &data.n_calib);
  data.held = text_ids (tok, "tests/data/kjv-heldout-eval.txt", &data.n_held);
  data.held_ctx = 256;
  sutra_tokenizer_free (tok);
  g_assert_cmpint (data.n_calib, >=, 8 * W);
  g_assert_cmpint (data.n_held, >=, 3000);
  data.n_calib = 8 * W;
  for (int k = 0; k < 8; k++)
    data.batches[k] = (SutraBatch) { 1, W, data.calib + k * W, NULL, NULL };
  data.n_batches = 8;
}

/* Samples calibration (8 x 128) and held-out (4 x 128) ids from the model in dir, once per
 * model (the default model reads real held-out text instead); `data` then holds them. */
static const char *
ensure_data_for (const char *dir)
{
  if (!dir)
    return NULL;
  if (data.calib && strcmp (data.dir, dir) != 0) {     /* swap in the other model's set */
    Data t = data;
    data = data_other;
    data_other = t;
  }
  if (data.calib && !strcmp (data.dir, dir))
    return dir;
  memset (&data, 0, sizeof data);
  data.dir = g_strdup (dir);
  if (g_str_has_suffix (dir, "sutra-kjv-mini")) {
    load_text_data (dir);
    return dir;
  }
  data.held_ctx = 128;
  SutraModel *m;
  SutraError err;
  test_assert_ok (sutra_model_load (dir, &m, &err), &err);
  const int W = 128;
  data.n_calib = 8 * W;
  data.n_held = 4 * W;
  data.calib = g_new (int, data.n_calib);
  data.held = g_new (int, data.n_held);
  for (int k = 0; k < 8; k++)
    sample_tokens (m, data.calib + k * W, W, 1 + k * 37, 100 + k);
  for (int k = 0; k < 4; k++)
    sample_tokens (m, data.held + k * W, W, 5 + k * 41, 900 + k);
  for (int k = 0; k < 8; k++)
    data.batches[k] = (SutraBatch) { 1, W, data.calib + k * W, NULL, NULL };
  data.n_batches = 8;
  sutra_model_free (m);
  return dir;
}

static const char *
ensure_data (void)
{
  return ensure_data_for (tiny_dir ());
}

typedef struct {
  const char *label;
  SutraQuantType type;
  SutraQuantMethod method;
  int group;
  bool dq;
  double kl_max;
} Case;

static const Case cases[] = {
  { "int8", SUTRA_QUANT_INT8, SUTRA_QMETHOD_RTN, 0, false, KL_MAX_INT8 },
  { "nf4", SUTRA_QUANT_NF4, SUTRA_QMETHOD_RTN, 0, false, KL_MAX_NF4 },
  { "nf4-dq", SUTRA_QUANT_NF4, SUTRA_QMETHOD_RTN, 0, true, KL_MAX_NF4_DQ },
  { "int4-g32", SUTRA_QUANT_INT4, SUTRA_QMETHOD_RTN, 32, false, KL_MAX_INT4_G32 },
  { "awq-g32", SUTRA_QUANT_INT4, SUTRA_QMETHOD_AWQ, 32, false, KL_MAX_AWQ_G32 },
  { "gptq-g32", SUTRA_QUANT_INT4, SUTRA_QMETHOD_GPTQ, 32, false, KL_MAX_GPTQ_G32 },
};

static SutraQuantizeOptions
options_for (SutraQuantType t, SutraQuantMethod meth, int group, bool dq)
{
  SutraQuantizeOptions o = { 0 };
  o.params = (SutraQuantParams) { t, meth, group, dq };
  o.calib = data.batches;
  o.n_calib = data.n_batches;
  return o;
}

/* quantizes a fresh load in memory and scores it against the float model on the held-out ids */
static SutraQuantCompare
quantize_and_compare (const char *dir, const SutraQuantizeOptions *o, SutraQuantizeSummary *sum)
{
  SutraModel *ref, *q;
  SutraError err;
  test_assert_ok (sutra_model_load (dir, &ref, &err), &err);
  test_assert_ok (sutra_model_load (dir, &q, &err), &err);
  test_assert_ok (sutra_model_quantize (q, o, sum, &err), &err);
  SutraQuantCompare c;
  test_assert_ok (sutra_quant_compare (ref, q, data.held, data.n_held, data.held_ctx, NULL, &c, &err),
                  &err);
  sutra_model_free (ref);
  sutra_model_free (q);
  return c;
}

static void
test_methods_close (void)
{
  const char *dir = ensure_data ();
  if (!dir)
    return;
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    const Case *k = &cases[i];
    SutraQuantizeOptions o = options_for (k->type, k->method, k->group, k->dq);
    SutraQuantizeSummary sum;
    SutraQuantCompare c = quantize_and_compare (dir, &o, &sum);
    g_test_message ("%-9s KL mean %.5f p99 %.5f  ppl %.3f -> %.3f  top1 %.3f  (%d linears, "
                    "%d folded, %d explicit, %d passes)", k->label, c.kl_mean, c.kl_p99, c.ppl_ref,
                    c.ppl_quant, c.top1_agree, sum.n_quantized, sum.n_awq_folded,
                    sum.n_awq_explicit, sum.calib_passes);
    g_assert_cmpint (sum.n_quantized, ==, 14);        /* 2 layers x 7; the head stays f32 */
    g_assert_cmpfloat (c.kl_mean, <=, k->kl_max);
    g_assert_cmpfloat (c.kl_mean, >, 0.0);           /* it did change the model */
    g_assert_cmpfloat (c.kl_p99, >=, c.kl_mean);
    if (k->method == SUTRA_QMETHOD_AWQ) {
      g_assert_cmpint (sum.n_awq_folded, ==, 14);     /* all Llama groups fold, v->o with GQA */
      g_assert_cmpint (sum.n_awq_explicit, ==, 0);
    }
    if (k->method == SUTRA_QMETHOD_GPTQ)
      g_assert_cmpint (sum.calib_passes, ==, 2);      /* layer by layer */
    if (k->type == SUTRA_QUANT_INT8)
      g_assert_cmpfloat (fabs (c.ppl_quant / c.ppl_ref - 1.0), <=, INT8_MAX_PPL_CHANGE);
  }
}

/* AWQ and GPTQ must not be worse than round to nearest INT4 (groups of 64, the CLI's default) on
 * held-out data: on the default model that is real held-out KJV text (load_text_data). Asserted
 * on the mean KL to the float model, strictly (measured here on the default model: AWQ 7% and
 * GPTQ 54% below RTN; the KL is a per-token distance to the float model, far less noisy than the
 * perplexity), and there on perplexity within AWQ_GPTQ_PPL_TOL of RTN's. AWQ's KL margin is the
 * thin one and depends on the calibration text: 2% at g64 in bench/perplexity-table.sh's run
 * (4096 training-text tokens), 8% with 16k (docs/quantization.md section 8). */
static void
test_awq_gptq_beat_rtn (void)
{
  const char *dir = ensure_data_for (quant_model_dir ());
  if (!dir)
    return;
  g_test_message ("model: %s, %d held-out tokens", dir, data.n_held);
  /* INT8 keeps perplexity within 1% (the bound) */
  SutraQuantizeOptions o8 = options_for (SUTRA_QUANT_INT8, SUTRA_QMETHOD_RTN, 0, false);
  SutraQuantCompare c8 = quantize_and_compare (dir, &o8, NULL);
  g_test_message ("int8: ppl %.4f -> %.4f, KL %.6f", c8.ppl_ref, c8.ppl_quant, c8.kl_mean);
  g_assert_cmpfloat (fabs (c8.ppl_quant / c8.ppl_ref - 1.0), <=, INT8_MAX_PPL_CHANGE);
  SutraQuantizeOptions on = options_for (SUTRA_QUANT_NF4, SUTRA_QMETHOD_RTN, 0, false);
  SutraQuantCompare cn = quantize_and_compare (dir, &on, NULL);
  g_test_message ("nf4: ppl %.4f -> %.4f, KL %.5f", cn.ppl_ref, cn.ppl_quant, cn.kl_mean);
  bool is_default = g_str_has_suffix (dir, "sutra-kjv-mini");
  if (is_default)
    g_assert_cmpfloat (fabs (cn.ppl_quant / cn.ppl_ref - 1.0), <=, INT4_MAX_PPL_CHANGE_DEFAULT);
  const int g = 64;
  double kl[3], ppl[3], ref = 0;
  for (int m = 0; m < 3; m++) {
    SutraQuantizeOptions o = options_for (SUTRA_QUANT_INT4, (SutraQuantMethod) m, g, false);
    SutraQuantizeSummary sum;
    SutraQuantCompare c = quantize_and_compare (dir, &o, &sum);
    kl[m] = c.kl_mean;
    ppl[m] = c.ppl_quant;
    ref = c.ppl_ref;
  }
  g_test_message ("int4 g%d held-out KL: rtn %.5f, awq %.5f, gptq %.5f; ppl %.3f: rtn %.3f, "
                  "awq %.3f, gptq %.3f", g, kl[0], kl[1], kl[2], ref, ppl[0], ppl[1], ppl[2]);
  g_assert_cmpfloat (kl[SUTRA_QMETHOD_AWQ], <, kl[SUTRA_QMETHOD_RTN]);
  g_assert_cmpfloat (kl[SUTRA_QMETHOD_GPTQ], <, kl[SUTRA_QMETHOD_RTN]);
  if (is_default) {
    g_assert_cmpfloat (ppl[SUTRA_QMETHOD_AWQ], <=, ppl[SUTRA_QMETHOD_RTN] * (1.0 + AWQ_GPTQ_PPL_TOL));
    g_assert_cmpfloat (ppl[SUTRA_QMETHOD_GPTQ], <=, ppl[SUTRA_QMETHOD_RTN] * (1.0 + AWQ_GPTQ_PPL_TOL));
    g_assert_cmpfloat (fabs (ppl[SUTRA_QMETHOD_RTN] / ref - 1.0), <=, INT4_MAX_PPL_CHANGE_DEFAULT);
  }
}

/* AWQ without folding: every scale stays in the weights (the path architectures without a
 * fold table take); still better than RTN, and its input scales survive the file. */
static float *logits_of (SutraModel *m, const int *ids, int T);

static void
test_awq_explicit (void)
{
  const char *dir = ensure_data ();
  if (!dir)
    return;
  SutraQuantizeOptions o = options_for (SUTRA_QUANT_INT4, SUTRA_QMETHOD_AWQ, 32, false);
  o.awq_no_fold = true;
  SutraQuantizeSummary sum;
  SutraQuantCompare c = quantize_and_compare (dir, &o, &sum);
  SutraQuantizeOptions r = options_for (SUTRA_QUANT_INT4, SUTRA_QMETHOD_RTN, 32, false);
  SutraQuantCompare cr = quantize_and_compare (dir, &r, NULL);
  g_test_message ("awq explicit scales g32: KL %.5f (rtn %.5f)", c.kl_mean, cr.kl_mean);
  g_assert_cmpint (sum.n_awq_explicit, ==, 14);
  g_assert_cmpint (sum.n_awq_folded, ==, 0);
  g_assert_cmpfloat (c.kl_mean, <, cr.kl_mean);
  SutraModel *m, *back;
  SutraError err;
  test_assert_ok (sutra_model_load (dir, &m, &err), &err);
  char *out = g_build_filename (test_tmpdir (), "explicit", NULL);
  SutraQuantReport rep;
  test_assert_ok (sutra_quantize_to_folder (m, out, false, &o, NULL, 0, 0, &rep, &err), &err);
  test_assert_ok (sutra_model_load (out, &back, &err), &err);
  int with_scale = 0;
  for (size_t l = 0; l < back->n_linears; l++)
    with_scale += back->linears[l]->qw && sutra_qweight_has_in_scale (back->linears[l]->qw);
  g_assert_cmpint (with_scale, ==, 14);
  float *a = logits_of (m, data.held, 64), *b = logits_of (back, data.held, 64);
  g_assert_cmpmem (a, sizeof (float) * 64 * 512, b, sizeof (float) * 64 * 512);
  g_free (a);
  g_free (b);
  g_free (out);
  sutra_model_free (back);
  sutra_model_free (m);
}

/* ---- files ---- */

static float *
logits_of (SutraModel *m, const int *ids, int T)
{
  SutraBatch b = { 1, T, ids, NULL, NULL };
  float *l;
  SutraError err;
  test_assert_ok (sutra_model_forward (m, &b, false, &l, &err), &err);
  return g_memdup2 (l, sizeof (float) * (size_t) T * m->cfg.vocab_size);
}

static void
test_folder_roundtrip (void)
{
  const char *dir = ensure_data ();
  if (!dir)
    return;
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    const Case *k = &cases[i];
    for (int head = 0; head < 2; head++) {
      SutraModel *m, *back;
      SutraError err;
      test_assert_ok (sutra_model_load (dir, &m, &err), &err);
      SutraQuantizeOptions o = options_for (k->type, k->method, k->group, k->dq);
      o.quantize_lm_head = head;
      char *out = g_build_filename (test_tmpdir (), "q", NULL);
      SutraQuantReport rep;
      test_assert_ok (sutra_quantize_to_folder (m, out, false, &o, data.held, 256, 128, &rep, &err),
                      &err);
      g_assert_true (rep.evaluated);
      g_assert_cmpint (rep.summary.n_quantized, ==, 14 + head);
      g_assert_cmpfloat (rep.ratio_vs_f32, >, 1.0);
      g_assert_cmpfloat (rep.ratio_vs_f16, ==, rep.ratio_vs_f32 / 2);
      g_assert_true (g_file_test (out, G_FILE_TEST_IS_DIR));
      char *gc = g_build_filename (out, "generation_config.json", NULL);
      g_assert_true (g_file_test (gc, G_FILE_TEST_EXISTS));
      g_free (gc);
      test_assert_ok (sutra_model_load (out, &back, &err), &err);
      bool present;
      SutraQuantParams p;
      test_assert_ok (sutra_qfile_params (back->weights, &present, &p, &err), &err);
      g_assert_true (present);
      g_assert_cmpint (p.type, ==, k->type);
      g_assert_cmpint (p.method, ==, k->method);
      g_assert_cmpint (p.double_quant, ==, k->dq);
      int packed = 0;
      for (size_t l = 0; l < back->n_linears; l++)
        packed += back->linears[l]->qw != NULL;
      g_assert_cmpint (packed, ==, 14 + head);
      /* the loaded folder computes exactly what the model quantized in memory computes */
      float *a = logits_of (m, data.held, 64), *b = logits_of (back, data.held, 64);
      g_assert_cmpmem (a, sizeof (float) * 64 * 512, b, sizeof (float) * 64 * 512);
      /* and the report's evaluation was of that model */
      SutraModel *ref;
      test_assert_ok (sutra_model_load (dir, &ref, &err), &err);
      SutraQuantCompare c;
      test_assert_ok (sutra_quant_compare (ref, back, data.held, 256, 128, NULL, &c, &err), &err);
      g_assert_cmpfloat (c.kl_mean, ==, rep.eval.kl_mean);
      sutra_model_free (ref);
      g_free (a);
      g_free (b);
      sutra_model_free (back);
      sutra_model_free (m);
      /* an existing non-empty folder is refused */
      test_assert_ok (sutra_model_load (dir, &m, &err), &err);
      g_assert_cmpint (sutra_quantize_to_folder (m, out, false, &o, NULL, 0, 0, &rep, &err), ==,
                       SUTRA_ERR_INVALID);
      g_assert_nonnull (strstr (err.message, "already exists"));
      sutra_model_free (m);
      sutra_rm_rf (out, NULL);
      g_free (out);
    }
  }
}

/* Rewrites dir/model.safetensors through `edit` (which may rename, reshape, drop tensors or
 * change metadata) and returns the load error. */
typedef void (*EditFunc) (const char *name, SutraTensor *t, bool *drop, void *user);

static SutraStatus
load_edited (const char *src, const char *dst, EditFunc edit, void *user, const char *meta_key,
             const char *meta_value, SutraError *err)
{
  SutraError e2;
  g_assert_cmpint (sutra_mkdir_p (dst, &e2), ==, SUTRA_OK);
  char *sc = g_build_filename (src, "config.json", NULL), *dc = g_build_filename (dst, "config.json", NULL);
  test_assert_ok (sutra_copy_file (sc, dc, &e2), &e2);
  char *sw = g_build_filename (src, "model.safetensors", NULL);
  SutraSafetensors *st;
  test_assert_ok (sutra_safetensors_open (sw, &st, &e2), &e2);
  SutraSafetensorsWriter *w = sutra_safetensors_writer_new ();
  for (size_t i = 0; i < sutra_safetensors_metadata_count (st); i++) {
    const char *k, *v;
    sutra_safetensors_metadata_at (st, i, &k, &v);
    sutra_safetensors_writer_metadata (w, k, meta_key && !strcmp (k, meta_key) ? meta_value : v);
  }
  for (size_t i = 0; i < sutra_safetensors_count (st); i++) {
    SutraTensor t = *sutra_safetensors_tensor (st, i);
    bool drop = false;
    if (edit)
      edit (sutra_safetensors_name (st, i), &t, &drop, user);
    if (!drop)
      sutra_safetensors_writer_add (w, sutra_safetensors_name (st, i), t.dtype, t.ndim, t.shape,
                                    t.data);
  }
  char *dw = g_build_filename (dst, "model.safetensors", NULL);
  test_assert_ok (sutra_safetensors_writer_write (w, dw, &e2), &e2);
  sutra_safetensors_writer_free (w);
  sutra_safetensors_free (st);
  SutraModel *m = NULL;
  SutraStatus s = sutra_model_load (dst, &m, err);
  sutra_model_free (m);
  g_free (sc);
  g_free (dc);
  g_free (sw);
  g_free (dw);
  return s;
}

static void
fewer_rows (const char *name, SutraTensor *t, bool *drop, void *user)
{
  if (!strcmp (name, user))
    t->shape[0] -= 1;       /* one block row short: the data is cut, the header consistent */
}

static void
drop_tensor (const char *name, SutraTensor *t, bool *drop, void *user)
{
  *drop = !strcmp (name, user);
}

static void
bad_zero (const char *name, SutraTensor *t, bool *drop, void *user)
{
  static uint8_t copy[4096];
  if (!strcmp (name, user)) {
    size_t n = sutra_tensor_nbytes (t);
    g_assert_cmpuint (n, <=, sizeof copy);
    memcpy (copy, t->data, n);
    copy[n / 2] = 200;
    t->data = copy;
  }
}

static void
expect (SutraStatus got, const SutraError *err, const char *needle)
{
  g_assert_cmpint (got, ==, SUTRA_ERR_FORMAT);
  if (!strstr (err->message, needle))
    g_error ("'%s' does not mention '%s'", err->message, needle);
  g_test_message ("rejected: %s", err->message);
}

static void
test_corrupt_files (void)
{
  const char *dir = ensure_data ();
  if (!dir)
    return;
  SutraModel *m;
  SutraError err;
  test_assert_ok (sutra_model_load (dir, &m, &err), &err);
  SutraQuantizeOptions o = options_for (SUTRA_QUANT_INT4, SUTRA_QMETHOD_GPTQ, 32, false);
  char *good = g_build_filename (test_tmpdir (), "good", NULL);
  SutraQuantReport rep;
  test_assert_ok (sutra_quantize_to_folder (m, good, false, &o, NULL, 0, 0, &rep, &err), &err);
  sutra_model_free (m);
  const char *t = test_tmpdir ();
  char *d;
  /* wrong block count */
  d = g_build_filename (t, "rows", NULL);
  expect (load_edited (good, d, fewer_rows, "model.layers.0.mlp.down_proj.qweight", NULL, NULL,
                       &err), &err, "down_proj");
  g_assert_nonnull (strstr (err.message, "wrong block count"));
  g_free (d);
  /* a missing part */
  d = g_build_filename (t, "nozeros", NULL);
  expect (load_edited (good, d, drop_tensor, "model.layers.1.self_attn.k_proj.zeros", NULL, NULL,
                       &err), &err, "missing part 'zeros'");
  g_free (d);
  /* an invalid zero point */
  d = g_build_filename (t, "zero", NULL);
  expect (load_edited (good, d, bad_zero, "model.layers.0.mlp.up_proj.zeros", NULL, NULL, &err),
          &err, "zero point");
  g_free (d);
  /* unknown method, unknown type, bad group size, missing metadata, future layout */
  d = g_build_filename (t, "method", NULL);
  expect (load_edited (good, d, NULL, NULL, "quant_method", "squeezellm", &err), &err,
          "quant_method 'squeezellm' is unknown");
  g_free (d);
  d = g_build_filename (t, "type", NULL);
  expect (load_edited (good, d, NULL, NULL, "quant_type", "int3", &err), &err, "quant_type");
  g_free (d);
  d = g_build_filename (t, "group", NULL);
  expect (load_edited (good, d, NULL, NULL, "group_size", "48", &err), &err, "group size 48");
  g_free (d);
  d = g_build_filename (t, "nometa", NULL);
  expect (load_edited (good, d, NULL, NULL, "sutra_quant", "", &err), &err,
          "no quantization metadata");
  g_free (d);
  d = g_build_filename (t, "future", NULL);
  g_assert_cmpint (load_edited (good, d, NULL, NULL, "sutra_quant", "2", &err), ==,
                   SUTRA_ERR_UNSUPPORTED);
  g_assert_nonnull (strstr (err.message, "version '2'"));
  g_free (d);
  /* truncated data: the safetensors reader refuses it */
  char *src = g_build_filename (good, "model.safetensors", NULL);
  d = g_build_filename (t, "trunc", NULL);
  g_assert_cmpint (g_mkdir_with_parents (d, 0755), ==, 0);
  char *dst = g_build_filename (d, "model.safetensors", NULL), *contents;
  gsize len;
  g_assert_true (g_file_get_contents (src, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (dst, contents, (gssize) (len - 1000), NULL));
  char *sc = g_build_filename (good, "config.json", NULL), *dc = g_build_filename (d, "config.json", NULL);
  test_assert_ok (sutra_copy_file (sc, dc, &err), &err);
  SutraModel *bad = NULL;
  g_assert_cmpint (sutra_model_load (d, &bad, &err), ==, SUTRA_ERR_FORMAT);
  g_assert_null (bad);
  g_test_message ("rejected: %s", err.message);
  g_free (contents);
  g_free (src);
  g_free (dst);
  g_free (sc);
  g_free (dc);
  g_free (d);
  g_free (good);
}

/* ---- progress and cancellation ---- */

typedef struct {
  int calls, stop_at;
  SutraQuantizePhase last;
} Prog;

static bool
on_progress (const SutraQuantizeProgress *p, void *user)
{
  Prog *g = user;
  g_assert_cmpfloat (p->fraction, >=, 0.0);
  g_assert_cmpfloat (p->fraction, <=, 1.0);
  g->last = p->phase;
  return ++g->calls != g->stop_at;
}

static void
test_cancel (void)
{
  const char *dir = ensure_data ();
  if (!dir)
    return;
  SutraError err;
  for (int meth = 0; meth < 3; meth++) {
    SutraModel *m;
    test_assert_ok (sutra_model_load (dir, &m, &err), &err);
    float *before = logits_of (m, data.held, 32);
    /* count the progress calls of a full run on another load */
    SutraModel *m2;
    test_assert_ok (sutra_model_load (dir, &m2, &err), &err);
    Prog full = { 0, -1, 0 };
    SutraQuantizeOptions o = options_for (SUTRA_QUANT_INT4, (SutraQuantMethod) meth, 32, false);
    o.progress = on_progress;
    o.user_data = &full;
    test_assert_ok (sutra_model_quantize (m2, &o, NULL, &err), &err);
    sutra_model_free (m2);
    g_assert_cmpint (full.calls, >=, 14);
    /* stop at every point in turn: the model stays exactly as it was */
    for (int stop = 1; stop <= full.calls; stop += (meth ? 3 : 1)) {
      Prog g = { 0, stop, 0 };
      o.user_data = &g;
      g_assert_cmpint (sutra_model_quantize (m, &o, NULL, &err), ==, SUTRA_ERR_CANCELLED);
      for (size_t l = 0; l < m->n_linears; l++)
        g_assert_null (m->linears[l]->qw);
      float *after = logits_of (m, data.held, 32);
      g_assert_cmpmem (before, sizeof (float) * 32 * 512, after, sizeof (float) * 32 * 512);
      g_free (after);
    }
    /* the atomic flag, set from the start */
    atomic_bool stop = true;
    o.progress = NULL;
    o.cancel = &stop;
    g_assert_cmpint (sutra_model_quantize (m, &o, NULL, &err), ==, SUTRA_ERR_CANCELLED);
    /* quantize_to_folder cancelled: nothing on disk */
    char *out = g_build_filename (test_tmpdir (), "cancelled", NULL);
    SutraQuantReport rep;
    g_assert_cmpint (sutra_quantize_to_folder (m, out, false, &o, NULL, 0, 0, &rep, &err), ==,
                     SUTRA_ERR_CANCELLED);
    g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
    g_free (out);
    g_free (before);
    sutra_model_free (m);
  }
}

/* ---- the packed model in use: decode with the KV cache, and QLoRA gradients ---- */

static int
argmax_of (const float *l, int V)
{
  int best = 0;
  for (int v = 1; v < V; v++)
    if (l[v] > l[best])
      best = v;
  return best;
}

/* Decode (matvec kernels, one token at a time with the KV cache) against the full forward
 * (prefill: tiled sgemm) of the same packed model. NF4 and INT8 take x in float on both paths,
 * so they agree to float rounding. INT4's matvec takes x as 8-bit codes per 32 values
 * (sutra-int4.c), so its decode differs from the forward by that rounding: checked as KL of the
 * decode distribution from the forward's and argmax agreement, with bounds measured below. */
static void
kv_step_case (const char *dir, const Case *k, double *kl_mean_out, double *kl_max_out,
              int *argmax_same, int *steps)
{
  SutraModel *m;
  SutraError err;
  test_assert_ok (sutra_model_load (dir, &m, &err), &err);
  SutraQuantizeOptions o = options_for (k->type, k->method, k->group, k->dq);
  o.quantize_lm_head = true;
  test_assert_ok (sutra_model_quantize (m, &o, NULL, &err), &err);
  const int T = 24, V = m->cfg.vocab_size;
  float *full = logits_of (m, data.held, T);      /* prefill path: tiled sgemm */
  SutraGenState *st;
  test_assert_ok (m->vt->state_new (m, T, &st, &err), &err);
  float *step = g_new (float, V);
  double kl_sum = 0, kl_max = 0;
  int same = 0;
  for (int t = 0; t < T; t++) {                   /* decode path: matvec kernels */
    test_assert_ok (m->vt->step (m, st, &data.held[t], 1, step, false, &err), &err);
    const float *f = full + (size_t) t * V;
    if (k->type != SUTRA_QUANT_INT4) {
      double e = test_rel_max_err (step, f, (size_t) V);
      if (e > KV_STEP_REL_TOL)
        g_error ("%s: decode step %d differs from the full forward by %g", k->label, t, e);
    }
    double kl = sutra_eval_kl_row (f, step, V);
    kl_sum += kl;
    kl_max = fmax (kl_max, kl);
    same += argmax_of (f, V) == argmax_of (step, V);
  }
  *kl_mean_out = kl_sum / T;
  *kl_max_out = kl_max;
  *argmax_same = same;
  *steps = T;
  m->vt->state_free (st);
  g_free (step);
  g_free (full);
  sutra_model_free (m);
}

static void
test_kv_step_quantized (void)
{
  const char *dir = ensure_data ();
  if (!dir)
    return;
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    double kl_mean, kl_max;
    int same, T;
    kv_step_case (dir, &cases[i], &kl_mean, &kl_max, &same, &T);
    g_test_message ("%s: decode vs forward, KL mean %.3g max %.3g nats, argmax %d/%d",
                    cases[i].label, kl_mean, kl_max, same, T);
    if (cases[i].type == SUTRA_QUANT_INT4) {
      g_assert_cmpfloat (kl_mean, <=, KV_STEP_INT4_KL_MEAN);
      g_assert_cmpfloat (kl_mean, >, 0.0);        /* the 8-bit input did take part */
      g_assert_cmpfloat (kl_max, <=, KV_STEP_INT4_KL_MAX);
    }
  }
}

/* The same on the default model (real text; in the repository, so this runs without ../shared):
 * INT4 decode's 8-bit input costs a small fraction of what the 4-bit weights themselves cost. */
static void
test_kv_step_int4_default (void)
{
  const char *dir = test_source_path ("data/models/sutra-kjv-mini");
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_test_skip ("data/models/sutra-kjv-mini is not in this tree");
    return;
  }
  ensure_data_for (dir);
  for (int G = 32; G <= 128; G *= 2) {    /* RTN: the method does not touch the kernel's input */
    Case k = { "int4-rtn", SUTRA_QUANT_INT4, SUTRA_QMETHOD_RTN, G, false, 0 };
    double kl_mean, kl_max;
    int same, T;
    kv_step_case (dir, &k, &kl_mean, &kl_max, &same, &T);
    g_test_message ("default model int4 g%d: decode vs forward, KL mean %.3g max %.3g nats, "
                    "argmax %d/%d", G, kl_mean, kl_max, same, T);
    g_assert_cmpfloat (kl_mean, <=, KV_STEP_INT4_KL_MEAN);
    g_assert_cmpfloat (kl_max, <=, KV_STEP_INT4_KL_MAX);
    g_assert_cmpint (same, >=, T - 1);   /* random llama-tiny's near-ties make argmax moot there */
  }
}

/* LoRA gradients on a packed base equal those on its dequantized f32 copy (forward through the
 * tiled product, input gradients through the transposed one). */
static void
test_qlora_gradients (void)
{
  const char *dir = ensure_data ();
  if (!dir)
    return;
  SutraModel *mq, *mf;
  SutraError err;
  test_assert_ok (sutra_model_load (dir, &mq, &err), &err);
  test_assert_ok (sutra_model_load (dir, &mf, &err), &err);
  SutraQuantParams p = { SUTRA_QUANT_NF4, SUTRA_QMETHOD_RTN, 0, true };
  for (size_t i = 0; i < mq->n_linears; i++) {
    SutraLinear *lq = mq->linears[i], *lf = mf->linears[i];
    if (!strcmp (lq->name, "lm_head"))
      continue;
    test_assert_ok (sutra_linear_quantize (lq, &p, &err), &err);
    /* the f32 twin gets exactly the dequantized weights */
    float *w = sutra_try_alloc (sizeof (float) * (size_t) lf->in * lf->out, "w", &err);
    sutra_qweight_dequant_rows (lq->qw, 0, lq->out, w);
    if (lf->w_owned)
      sutra_aligned_free (lf->w);
    lf->w = w;
    lf->w_owned = true;
  }
  g_assert_cmpfloat ((double) sutra_model_weight_bytes (mq), <, 0.5 * sutra_model_weight_bytes (mf));
  char *targets[] = { "all-linear" };
  SutraLoraConfig lc = { .r = 4, .alpha = 8, .all_linear = true };
  (void) targets;
  test_assert_ok (sutra_lora_attach (mq, &lc, 7, NULL, &err), &err);
  test_assert_ok (sutra_lora_attach (mf, &lc, 7, NULL, &err), &err);
  const int T = 48, V = mq->cfg.vocab_size;
  int *tg = g_new (int, T);
  for (int t = 0; t < T; t++)
    tg[t] = t + 1 < T ? data.held[t + 1] : SUTRA_IGNORE_INDEX;
  SutraModel *ms[2] = { mq, mf };
  for (int k = 0; k < 2; k++) {
    /* B = 0 at init would hide dA: give B values */
    for (size_t i = 0; i < ms[k]->n_linears; i++) {
      SutraLora *a = ms[k]->linears[i]->lora;
      if (a)
        for (size_t j = 0; j < (size_t) ms[k]->linears[i]->out * a->r; j++)
          a->B[j] = 0.01f * (float) ((j % 7) - 3);
    }
    SutraBatch b = { 1, T, data.held, NULL, NULL };
    float *logits, loss;
    int nv;
    test_assert_ok (sutra_model_forward (ms[k], &b, true, &logits, &err), &err);
    test_assert_ok (sutra_cross_entropy_forward (&loss, &nv, logits, tg, T, V, &err), &err);
    sutra_cross_entropy_backward (logits, logits, tg, 1.f, nv, T, V);
    sutra_model_zero_grad (ms[k]);
    test_assert_ok (sutra_model_backward (ms[k], logits, &err), &err);
  }
  double worst = 0;
  for (size_t i = 0; i < mq->n_linears; i++) {
    SutraLora *a = mq->linears[i]->lora, *b = mf->linears[i]->lora;
    if (!a)
      continue;
    size_t na = (size_t) a->r * mq->linears[i]->in, nb = (size_t) mq->linears[i]->out * a->r;
    double ea = test_rel_max_err (a->dA, b->dA, na), eb = test_rel_max_err (a->dB, b->dB, nb);
    worst = fmax (worst, fmax (ea, eb));
  }
  g_test_message ("QLoRA vs dequantized-f32 LoRA gradients: rel max err %.3g", worst);
  g_assert_cmpfloat (worst, <=, QLORA_GRAD_REL_TOL);
  g_free (tg);
  sutra_model_free (mq);
  sutra_model_free (mf);
}

/* ---- the command line ---- */

static void
test_cli (void)
{
  const char *dir = ensure_data ();
  if (!dir)
    return;
  const char *t = test_tmpdir ();
  char *ids = g_build_filename (t, "calib.txt", NULL), *ev = g_build_filename (t, "eval.txt", NULL);
  GString *s = g_string_new (NULL), *e = g_string_new (NULL);
  for (int i = 0; i < data.n_calib; i++)
    g_string_append_printf (s, "%d%c", data.calib[i], i % 20 == 19 ? '\n' : ' ');
  for (int i = 0; i < 256; i++)
    g_string_append_printf (e, "%d,", data.held[i]);
  g_assert_true (g_file_set_contents (ids, s->str, -1, NULL));
  g_assert_true (g_file_set_contents (ev, e->str, -1, NULL));
  char *out = g_build_filename (t, "cli-awq", NULL);
  const char *argv[] = { "quantize", dir, "--method", "awq", "--group-size", "32", "--calib-ids",
                         ids, "--eval-ids", ev, "--ctx", "128", "--threads", "1", "--json",
                         "--out", out, NULL };
  char *so = NULL, *se = NULL;
  int rc = test_run_cli (&so, &se, argv);
  if (rc != 0)
    g_error ("sutra quantize failed (%d): %s", rc, se);
  g_assert_nonnull (strstr (so, "\"kl_mean\""));
  g_assert_nonnull (strstr (so, "\"perplexity_after\""));
  g_assert_nonnull (strstr (so, "\"compression_vs_f16\""));
  g_free (so);
  g_free (se);
  const char *info[] = { "info", out, NULL };
  g_assert_cmpint (test_run_cli (&so, &se, info), ==, 0);
  g_assert_nonnull (strstr (so, "int4 (awq, group 32)"));
  g_free (so);
  g_free (se);
  char *lf = g_build_filename (t, "logits.safetensors", NULL);
  const char *lg[] = { "logits", out, "--ids", "1 2 3", "--out", lf, NULL };
  g_assert_cmpint (test_run_cli (NULL, NULL, lg), ==, 0);
  /* usage errors: exit 2 */
  const char *bad1[] = { "quantize", dir, "--method", "int3", "--out", out, NULL };
  const char *bad2[] = { "quantize", dir, "--method", "gptq", "--out", out, NULL };
  const char *bad3[] = { "quantize", dir, "--method", "int4", "--group-size", "48", "--out", out,
                         NULL };
  g_assert_cmpint (test_run_cli (NULL, NULL, bad1), ==, 2);
  g_assert_cmpint (test_run_cli (NULL, NULL, bad2), ==, 2);
  g_assert_cmpint (test_run_cli (NULL, NULL, bad3), ==, 2);
  /* runtime error: the output exists */
  const char *again[] = { "quantize", dir, "--method", "int8", "--out", out, NULL };
  g_assert_cmpint (test_run_cli (NULL, &se, again), ==, 1);
  g_assert_nonnull (strstr (se, "sutra: error:"));
  g_free (se);
  g_string_free (s, TRUE);
  g_string_free (e, TRUE);
  g_free (ids);
  g_free (ev);
  g_free (out);
  g_free (lf);
}

/* --calib/--eval as text: a random model with the vocabulary of a real tokenizer.json */
static void
test_cli_text (void)
{
  const char *dir = quant_model_dir ();
  const char *tokdir = test_shared_path ("hf-refs/tokenizers/bpe-bytelevel");
  if (!dir || !tokdir)
    return;
  SutraModelConfig cfg;
  SutraError err;
  test_assert_ok (sutra_model_config_load (dir, &cfg, &err), &err);
  cfg.vocab_size = 1200;
  SutraModel *m;
  test_assert_ok (sutra_model_new_random (&cfg, 0.05f, 3, &m, &err), &err);
  char *md = g_build_filename (test_tmpdir (), "textmodel", NULL);
  g_assert_cmpint (g_mkdir_with_parents (md, 0755), ==, 0);
  test_assert_ok (sutra_model_write_files (m, md, SUTRA_F32, &err), &err);
  sutra_model_free (m);
  char *src = g_build_filename (tokdir, "tokenizer.json", NULL), *dst = g_build_filename (md, "tokenizer.json", NULL);
  test_assert_ok (sutra_copy_file (src, dst, &err), &err);
  /* text: the test strings of that tokenizer's cases, repeated */
  char *cases = g_build_filename (tokdir, "cases.jsonl", NULL), *text;
  g_assert_true (g_file_get_contents (cases, &text, NULL, NULL));
  GString *t = g_string_new (NULL);
  for (int k = 0; k < 6; k++)
    g_string_append (t, text);
  char *tf = g_build_filename (test_tmpdir (), "calib.txt", NULL);
  g_assert_true (g_file_set_contents (tf, t->str, (gssize) t->len, NULL));
  char *out = g_build_filename (test_tmpdir (), "text-gptq", NULL);
  const char *argv[] = { "quantize", md, "--method", "gptq", "--calib", tf, "--eval", tf,
                         "--calib-tokens", "2048", "--eval-tokens", "1024", "--ctx", "128",
                         "--threads", "1", "--json",
                         "--out", out, NULL };
  char *so = NULL, *se = NULL;
  int rc = test_run_cli (&so, &se, argv);
  if (rc != 0)
    g_error ("sutra quantize --calib text failed (%d): %s", rc, se);
  g_assert_nonnull (strstr (so, "\"calibration_tokens\":2048"));
  g_assert_nonnull (strstr (so, "\"eval_tokens\""));
  char *tok_out = g_build_filename (out, "tokenizer.json", NULL);
  g_assert_true (g_file_test (tok_out, G_FILE_TEST_EXISTS));     /* copied beside the weights */
  g_free (tok_out);
  g_free (so);
  g_free (se);
  g_string_free (t, TRUE);
  g_free (text);
  g_free (cases);
  g_free (tf);
  g_free (out);
  g_free (src);
  g_free (dst);
  g_free (md);
}

/* The output head stays f32 unless asked for, whatever the architecture calls it: "lm_head"
 * (Llama untied, Mamba tied), "head" (RWKV-4, untied). */
static void
test_head_names (void)
{
  static const char *const refs[] = { "hf-refs/llama-tiny", "hf-refs/rwkv4-tiny", "hf-refs/mamba-tiny" };
  for (size_t r = 0; r < G_N_ELEMENTS (refs); r++) {
    const char *dir = test_shared_path (refs[r]);
    if (!dir)
      return;
    for (int head = 0; head < 2; head++) {
      SutraModel *m;
      SutraError err;
      test_assert_ok (sutra_model_load (dir, &m, &err), &err);
      SutraQuantizeOptions o = { 0 };
      o.params = (SutraQuantParams) { SUTRA_QUANT_INT8, SUTRA_QMETHOD_RTN, 0, false };
      o.quantize_lm_head = head;
      SutraQuantizeSummary sum;
      test_assert_ok (sutra_model_quantize (m, &o, &sum, &err), &err);
      /* the head is the linear whose output is the vocabulary */
      int heads = 0, packed_heads = 0, packed = 0;
      for (size_t l = 0; l < m->n_linears; l++) {
        bool is_head = m->linears[l]->out == m->cfg.vocab_size;
        heads += is_head;
        packed_heads += is_head && m->linears[l]->qw;
        packed += m->linears[l]->qw != NULL;
      }
      g_assert_cmpint (heads, ==, 1);
      g_assert_cmpint (packed_heads, ==, head);
      g_assert_cmpint (packed, ==, (int) m->n_linears - 1 + head);
      g_assert_cmpint (sum.n_quantized, ==, packed);
      sutra_model_free (m);
    }
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* one thread: these tests are about results, and the kernels' thread splits are covered by
   * test-quant; on a loaded 2-core machine every pool hand-off of a tiny model waits for a
   * time slice */
  sutra_set_threads (1);
  g_test_add_func ("/engine/quantize/methods-close", test_methods_close);
  g_test_add_func ("/engine/quantize/awq-gptq-beat-rtn", test_awq_gptq_beat_rtn);
  g_test_add_func ("/engine/quantize/awq-explicit", test_awq_explicit);
  g_test_add_func ("/engine/quantize/folder-roundtrip", test_folder_roundtrip);
  g_test_add_func ("/engine/quantize/corrupt-files", test_corrupt_files);
  g_test_add_func ("/engine/quantize/cancel", test_cancel);
  g_test_add_func ("/engine/quantize/kv-step-quantized", test_kv_step_quantized);
  g_test_add_func ("/engine/quantize/kv-step-int4-default", test_kv_step_int4_default);
  g_test_add_func ("/engine/quantize/qlora-gradients", test_qlora_gradients);
  g_test_add_func ("/engine/quantize/cli", test_cli);
  g_test_add_func ("/engine/quantize/cli-text", test_cli_text);
  g_test_add_func ("/engine/quantize/head-names", test_head_names);
  return g_test_run ();
}
