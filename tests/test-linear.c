/* test-linear.c: SutraLinear with f16 / bf16 bases kept as stored, against the same weights in
 * f32: forward (one token and several), LoRA forward + backward through the half base, merges,
 * quantization and trainability from a half base; sutra_linear_forward_many against separate
 * forwards for every kind of base; and a half-precision checkpoint loaded as stored against
 * the same checkpoint converted to f32 (SUTRA_WEIGHTS_F32=1): logits of forward and decode,
 * exports (safetensors and GGUF) from the half model. */
#include "test-util.h"
#include "sutra-gguf-export.h"
#include "sutra-halfmat.h"
#include "sutra-linear.h"
#include "sutra-model.h"
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Same weights, two storages: only the float summation order differs (issue: 1e-5 relative). */
#define HALF_VS_F32_REL_TOL 1e-5

/* f32 weights [out, in] holding exactly representable half values of type t */
static float *
half_exact_weights (int out, int in, SutraDType t, guint32 seed)
{
  size_t n = (size_t) out * in;
  float *w = sutra_try_alloc (sizeof (float) * n, "w", NULL);
  test_fill_uniform (w, n, -0.4f, 0.4f, seed);
  for (size_t i = 0; i < n; i++)
    w[i] = t == SUTRA_BF16 ? sutra_bf16_to_f32 (sutra_f32_to_bf16 (w[i]))
                           : sutra_f16_to_f32 (sutra_f32_to_f16 (w[i]));
  return w;
}

/* a linear owning a copy of w (and of bias when given) */
static void
linear_init (SutraLinear *l, const char *name, int in, int out, const float *w, const float *bias)
{
  memset (l, 0, sizeof *l);
  l->name = sutra_xstrdup (name);
  l->in = in;
  l->out = out;
  l->w = sutra_try_alloc (sizeof (float) * (size_t) in * out, name, NULL);
  memcpy (l->w, w, sizeof (float) * (size_t) in * out);
  l->w_owned = true;
  if (bias) {
    l->bias = sutra_try_alloc (sizeof (float) * (size_t) out, name, NULL);
    memcpy (l->bias, bias, sizeof (float) * (size_t) out);
    l->bias_owned = true;
  }
}

static void
lora_init (SutraLinear *l, int r, guint32 seed)
{
  SutraError err;
  test_assert_ok (sutra_linear_attach_lora (l, r, 2.f * r, 0.f, &err), &err);
  test_fill_uniform (l->lora->A, (size_t) r * l->in, -0.3f, 0.3f, seed);
  test_fill_uniform (l->lora->B, (size_t) l->out * r, -0.3f, 0.3f, seed + 1);
}

static void
assert_close (const char *what, const float *got, const float *want, size_t n, double tol)
{
  double e = test_rel_max_err (got, want, n);
  if (e > tol)
    g_error ("%s: rel err %.3g > %.3g", what, e, tol);
}

/* forward, LoRA forward/backward, merge, quantize, trainable: half base vs f32 base */
static void
test_half_base (gconstpointer data)
{
  SutraDType t = GPOINTER_TO_INT (data) ? SUTRA_BF16 : SUTRA_F16;
  static const int shapes[][2] = { { 70, 37 }, { 64, 128 }, { 200, 33 }, { 576, 96 } };
  SutraError err;
  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++) {
    int in = shapes[s][0], out = shapes[s][1], r = 4;
    float *w = half_exact_weights (out, in, t, (guint32) s + 1);
    float *bias = g_new (float, out);
    test_fill_uniform (bias, (size_t) out, -0.5f, 0.5f, (guint32) s + 7);
    SutraLinear lf, lh;
    linear_init (&lf, "proj", in, out, w, s % 2 ? bias : NULL);
    linear_init (&lh, "proj", in, out, w, s % 2 ? bias : NULL);
    test_assert_ok (sutra_linear_to_half (&lh, t, &err), &err);
    g_assert_null (lh.w);
    g_assert_nonnull (lh.w16);
    g_assert_cmpint (lh.w16_type, ==, t);
    g_assert_cmpuint (sutra_linear_weight_bytes (&lh) * 2, ==, sutra_linear_weight_bytes (&lf));
    /* the base rows read back exactly */
    float *rows = g_new (float, (size_t) out * in);
    sutra_linear_base_rows (&lh, 0, out, rows);
    g_assert_cmpmem (rows, sizeof (float) * (size_t) out * in, w, sizeof (float) * (size_t) out * in);

    for (int threads = 1; threads <= 2; threads++) {
      sutra_set_threads (threads);
      for (int with_lora = 0; with_lora < 2; with_lora++) {
        if (with_lora) {
          lora_init (&lf, r, (guint32) s + 20);
          lora_init (&lh, r, (guint32) s + 20);
        }
        static const int Ns[] = { 1, 3, 17 };
        for (size_t ni = 0; ni < G_N_ELEMENTS (Ns); ni++) {
          int N = Ns[ni];
          float *x = g_new (float, (size_t) N * in), *dout = g_new (float, (size_t) N * out);
          float *yf = g_new (float, (size_t) N * out), *yh = g_new (float, (size_t) N * out);
          test_fill_uniform (x, (size_t) N * in, -1.f, 1.f, (guint32) (N + s));
          test_fill_uniform (dout, (size_t) N * out, -1.f, 1.f, (guint32) (N + s + 3));
          float *xa_f = g_new0 (float, (size_t) N * r), *xa_h = g_new0 (float, (size_t) N * r);
          SutraLinearSaved sf = { .xa = xa_f }, sh = { .xa = xa_h };
          sutra_linear_forward (&lf, yf, x, N, &sf, NULL);
          sutra_linear_forward (&lh, yh, x, N, &sh, NULL);
          assert_close ("forward", yh, yf, (size_t) N * out, HALF_VS_F32_REL_TOL);
          /* dx through the half base (tile-wise conversion) and the adapter gradients */
          float *dxf = g_new0 (float, (size_t) N * in), *dxh = g_new0 (float, (size_t) N * in);
          float *scratch = g_new (float, (size_t) N * (r + in));
          if (with_lora) {
            memset (lf.lora->dA, 0, sizeof (float) * (size_t) r * in);
            memset (lf.lora->dB, 0, sizeof (float) * (size_t) out * r);
            memset (lh.lora->dA, 0, sizeof (float) * (size_t) r * in);
            memset (lh.lora->dB, 0, sizeof (float) * (size_t) out * r);
          }
          sutra_linear_backward (&lf, dxf, dout, x, N, &sf, scratch);
          sutra_linear_backward (&lh, dxh, dout, x, N, &sh, scratch);
          assert_close ("backward dx", dxh, dxf, (size_t) N * in, HALF_VS_F32_REL_TOL);
          if (with_lora) {
            assert_close ("backward dA", lh.lora->dA, lf.lora->dA, (size_t) r * in,
                          HALF_VS_F32_REL_TOL);
            assert_close ("backward dB", lh.lora->dB, lf.lora->dB, (size_t) out * r,
                          HALF_VS_F32_REL_TOL);
          }
          g_free (x);
          g_free (dout);
          g_free (yf);
          g_free (yh);
          g_free (xa_f);
          g_free (xa_h);
          g_free (dxf);
          g_free (dxh);
          g_free (scratch);
        }
        if (with_lora) {
          sutra_linear_detach_lora (&lf);
          sutra_linear_detach_lora (&lh);
        }
      }
    }
    sutra_set_threads (0);

    /* merge: W + scale B A into an owned f32 base, from either storage */
    SutraLinear mf, mh;
    linear_init (&mf, "m", in, out, w, NULL);
    linear_init (&mh, "m", in, out, w, NULL);
    test_assert_ok (sutra_linear_to_half (&mh, t, &err), &err);
    lora_init (&mf, r, 99);
    lora_init (&mh, r, 99);
    test_assert_ok (sutra_linear_merge_lora (&mf, &err), &err);
    test_assert_ok (sutra_linear_merge_lora (&mh, &err), &err);
    g_assert_null (mh.w16);
    g_assert_true (mh.w && mh.w_owned);
    g_assert_cmpmem (mh.w, sizeof (float) * (size_t) out * in, mf.w, sizeof (float) * (size_t) out * in);
    sutra_linear_clear (&mf);
    sutra_linear_clear (&mh);

    /* quantizing a half base quantizes the same values */
    SutraQuantParams qp = { .type = SUTRA_QUANT_INT8 };
    SutraLinear qf, qh;
    linear_init (&qf, "q", in, out, w, NULL);
    linear_init (&qh, "q", in, out, w, NULL);
    test_assert_ok (sutra_linear_to_half (&qh, t, &err), &err);
    test_assert_ok (sutra_linear_quantize (&qf, &qp, &err), &err);
    test_assert_ok (sutra_linear_quantize (&qh, &qp, &err), &err);
    g_assert_null (qh.w16);
    float *rf = g_new (float, (size_t) out * in);
    sutra_linear_base_rows (&qf, 0, out, rf);
    sutra_linear_base_rows (&qh, 0, out, rows);
    g_assert_cmpmem (rows, sizeof (float) * (size_t) out * in, rf, sizeof (float) * (size_t) out * in);
    /* a packed base cannot become half */
    g_assert_cmpint (sutra_linear_to_half (&qh, t, &err), ==, SUTRA_ERR_INVALID);
    sutra_linear_clear (&qf);
    sutra_linear_clear (&qh);
    g_free (rf);

    /* trainable: an owned f32 copy of the same values */
    test_assert_ok (sutra_linear_make_trainable (&lh, &err), &err);
    g_assert_null (lh.w16);
    g_assert_cmpmem (lh.w, sizeof (float) * (size_t) out * in, w, sizeof (float) * (size_t) out * in);
    g_assert_nonnull (lh.dw);

    sutra_linear_clear (&lf);
    sutra_linear_clear (&lh);
    sutra_aligned_free (w);
    g_free (bias);
    g_free (rows);
  }
}

/* sutra_linear_forward_many == separate forwards, for every base kind, 1 and 2 threads; the
 * last two INT4 linears (groups 64 and 32, same padded input) share linear 5's prepared input */
static void
test_forward_many (void)
{
  const int in = 192;
  static const int outs[] = { 256, 64, 64, 130, 40, 96, 72, 48 };
  enum { NL = G_N_ELEMENTS (outs) };
  SutraLinear ls[NL];
  SutraError err;
  for (int i = 0; i < NL; i++) {
    float *w = half_exact_weights (outs[i], in, SUTRA_F16, (guint32) i + 40);
    float *b = g_new (float, outs[i]);
    test_fill_uniform (b, (size_t) outs[i], -0.5f, 0.5f, (guint32) i + 50);
    linear_init (&ls[i], "p", in, outs[i], w, i % 2 ? b : NULL);
    switch (i) {
    case 1: test_assert_ok (sutra_linear_to_half (&ls[i], SUTRA_F16, &err), &err); break;
    case 2: test_assert_ok (sutra_linear_to_half (&ls[i], SUTRA_BF16, &err), &err); break;
    case 3: {
      SutraQuantParams p = { .type = SUTRA_QUANT_INT8 };
      test_assert_ok (sutra_linear_quantize (&ls[i], &p, &err), &err);
      break;
    }
    case 4: {
      SutraQuantParams p = { .type = SUTRA_QUANT_NF4 };
      test_assert_ok (sutra_linear_quantize (&ls[i], &p, &err), &err);
      break;
    }
    case 5: {
      SutraQuantParams p = { .type = SUTRA_QUANT_INT4, .group_size = 64 };
      test_assert_ok (sutra_linear_quantize (&ls[i], &p, &err), &err);
      lora_init (&ls[i], 4, 60);
      break;
    }
    case 6:
    case 7: {
      SutraQuantParams p = { .type = SUTRA_QUANT_INT4, .group_size = i == 6 ? 64 : 32 };
      test_assert_ok (sutra_linear_quantize (&ls[i], &p, &err), &err);
      g_assert_true (sutra_qweight_matvec_same_input (ls[5].qw, ls[i].qw));
      break;
    }
    default: lora_init (&ls[i], 2, 61); break;
    }
    sutra_aligned_free (w);
    g_free (b);
  }
  SutraLinear *ptrs[NL];
  float *got[NL], *want[NL];
  for (int i = 0; i < NL; i++) {
    ptrs[i] = &ls[i];
    got[i] = g_new (float, 3 * outs[i]);
    want[i] = g_new (float, 3 * outs[i]);
  }
  float *x = g_new (float, 3 * in);
  test_fill_uniform (x, 3 * (size_t) in, -1.f, 1.f, 77);
  for (int threads = 1; threads <= 2; threads++) {
    sutra_set_threads (threads);
    for (int N = 1; N <= 3; N += 2)
      for (int count = 2; count <= NL; count++) {
        for (int i = 0; i < count; i++) {
          sutra_linear_forward (ptrs[i], want[i], x, N, NULL, NULL);
          memset (got[i], 0xFF, sizeof (float) * (size_t) N * outs[i]);   /* NaN fill */
        }
        sutra_linear_forward_many (ptrs, got, count, x, N);
        for (int i = 0; i < count; i++)
          if (memcmp (got[i], want[i], sizeof (float) * (size_t) N * outs[i]) != 0)
            g_error ("forward_many: %d threads, N %d, %d linears: linear %d differs (rel %.3g)",
                     threads, N, count, i, test_rel_max_err (got[i], want[i], (size_t) N * outs[i]));
      }
  }
  sutra_set_threads (0);
  for (int i = 0; i < NL; i++) {
    sutra_linear_clear (&ls[i]);
    g_free (got[i]);
    g_free (want[i]);
  }
  g_free (x);
}

/* ---- a half-precision checkpoint loaded as stored vs converted to f32 ---- */

static SutraModel *
load_model (const char *dir, bool force_f32)
{
  if (force_f32)
    g_setenv ("SUTRA_WEIGHTS_F32", "1", TRUE);
  SutraModel *m;
  SutraError err;
  test_assert_ok (sutra_model_load (dir, &m, &err), &err);
  g_unsetenv ("SUTRA_WEIGHTS_F32");
  return m;
}

static void
decode_logits (SutraModel *m, const int *ids, int n, float *logits)
{
  SutraGenState *s;
  SutraError err;
  int V = m->cfg.vocab_size;
  test_assert_ok (m->vt->state_new (m, 64, &s, &err), &err);
  for (int i = 0; i < n; i++)
    test_assert_ok (m->vt->step (m, s, ids + i, 1, logits + (size_t) i * V, false, &err), &err);
  m->vt->state_free (s);
}

static char *
read_all (const char *path, gsize *len)
{
  char *buf;
  GError *ge = NULL;
  if (!g_file_get_contents (path, &buf, len, &ge))
    g_error ("%s", ge->message);
  return buf;
}


/* m's full-forward logits on ids equal those of its f32 twin ref (lf: T * V scratch) */
static void
assert_forward_matches (const char *what, SutraModel *m, SutraModel *ref, int *ids, int T, int V,
                        float *lf)
{
  SutraError err;
  SutraBatch b = { 1, T, ids, NULL, NULL };
  float *out;
  test_assert_ok (sutra_model_forward (ref, &b, false, &out, &err), &err);
  memcpy (lf, out, sizeof (float) * (size_t) T * V);
  test_assert_ok (sutra_model_forward (m, &b, false, &out, &err), &err);
  assert_close (what, out, lf, (size_t) T * V, HALF_VS_F32_REL_TOL);
}

/* every base of m is an owned f32 matrix again, the tied head reading the embedding parameter */
static void
assert_f32_bases (const SutraModel *m)
{
  for (size_t i = 0; i < m->n_linears; i++)
    g_assert_true (m->linears[i]->w && !m->linears[i]->w16);
  g_assert_true (m->tied_linear->w == m->tied_param->data);
}

static void
test_half_checkpoint (gconstpointer data)
{
  SutraDType t = GPOINTER_TO_INT (data) ? SUTRA_BF16 : SUTRA_F16;
  const char *mdir = test_shared_path ("hf-refs/llama-tiny");
  const char *tdir = test_shared_path ("hf-refs/tokenizers/bpe-bytelevel");
  if (!mdir || !tdir)
    return;
  SutraModelConfig cfg;
  SutraError err;
  test_assert_ok (sutra_model_config_load (mdir, &cfg, &err), &err);
  cfg.vocab_size = 1200;                 /* the tokenizer's */
  cfg.tie_word_embeddings = true;        /* the head reads the half table too */
  cfg.attention_bias = true;
  snprintf (cfg.model_type, sizeof cfg.model_type, "qwen2");
  SutraModel *src;
  test_assert_ok (sutra_model_new_random (&cfg, 0.1f, 11, &src, &err), &err);
  for (size_t i = 0; i < src->n_linears; i++)
    if (src->linears[i]->bias)
      test_fill_uniform (src->linears[i]->bias, (size_t) src->linears[i]->out, -0.3f, 0.3f, 5);
  char *hdir = g_build_filename (test_tmpdir (), t == SUTRA_BF16 ? "bf16" : "f16", NULL);
  g_assert_cmpint (g_mkdir_with_parents (hdir, 0755), ==, 0);
  test_assert_ok (sutra_model_write_files (src, hdir, t, &err), &err);
  sutra_model_free (src);

  SutraModel *mh = load_model (hdir, false), *mf = load_model (hdir, true);
  for (size_t i = 0; i < mh->n_linears; i++) {
    SutraLinear *l = mh->linears[i];
    if (!l->w16 || l->w || l->w16_type != t)
      g_error ("%s: not kept as a borrowed %s base", l->name, sutra_dtype_name (t));
    g_assert_false (l->w16_owned);
    g_assert_nonnull (mf->linears[i]->w);
  }
  g_assert_nonnull (mh->tied_linear);
  g_assert_cmpuint (sutra_model_weight_bytes (mh), <, sutra_model_weight_bytes (mf));

  /* logits: full forward and token-by-token decode, 1 and 2 threads */
  enum { T = 9 };
  int ids[T] = { 5, 900, 17, 3, 1199, 42, 42, 600, 8 };
  int V = cfg.vocab_size;
  float *lf = g_new (float, (size_t) T * V), *lh = g_new (float, (size_t) T * V);
  for (int threads = 1; threads <= 2; threads++) {
    sutra_set_threads (threads);
    assert_forward_matches ("forward logits", mh, mf, ids, T, V, lf);
    decode_logits (mf, ids, T, lf);
    decode_logits (mh, ids, T, lh);
    for (int i = 0; i < T; i++)
      assert_close ("decode logits", lh + (size_t) i * V, lf + (size_t) i * V, (size_t) V,
                    HALF_VS_F32_REL_TOL);
  }
  sutra_set_threads (0);

  /* exports from the half model equal those from its f32 twin byte for byte */
  static const char *gtypes[] = { "f16", "q8_0", "q4_0" };
  char *g16 = NULL;                       /* the f32 model's f16 GGUF, imported below */
  for (size_t g = 0; g < G_N_ELEMENTS (gtypes); g++) {
    char *pf = g_strdup_printf ("%s/f32-%s.gguf", test_tmpdir (), gtypes[g]);
    char *ph = g_strdup_printf ("%s/half-%s.gguf", test_tmpdir (), gtypes[g]);
    test_assert_ok (sutra_gguf_export_model (mf, tdir, pf, gtypes[g], NULL, NULL, &err), &err);
    test_assert_ok (sutra_gguf_export_model (mh, tdir, ph, gtypes[g], NULL, NULL, &err), &err);
    gsize nf, nh;
    char *bf = read_all (pf, &nf), *bh = read_all (ph, &nh);
    g_assert_cmpmem (bh, nh, bf, nf);
    g_free (bf);
    g_free (bh);
    if (!g16)
      g16 = g_strdup (pf);
    g_free (pf);
    g_free (ph);
  }
  char *ef = g_build_filename (test_tmpdir (), "exp-f32", NULL);
  char *eh = g_build_filename (test_tmpdir (), "exp-half", NULL);
  g_mkdir_with_parents (ef, 0755);
  g_mkdir_with_parents (eh, 0755);
  test_assert_ok (sutra_model_write_files (mf, ef, SUTRA_F32, &err), &err);
  test_assert_ok (sutra_model_write_files (mh, eh, SUTRA_F32, &err), &err);
  char *sf = g_build_filename (ef, "model.safetensors", NULL);
  char *sh = g_build_filename (eh, "model.safetensors", NULL);
  gsize nf, nh;
  char *bf = read_all (sf, &nf), *bh = read_all (sh, &nh);
  g_assert_cmpmem (bh, nh, bf, nf);
  g_free (bf);
  g_free (bh);

  /* importing a GGUF of the same weights into the half model: owned f32 bases, the tied head
   * re-pointed at the (replaced) embedding parameter, same logits */
  {
    SutraModel *mi = load_model (hdir, false);
    test_assert_ok (sutra_gguf_import_weights (mi, g16, &err), &err);
    assert_f32_bases (mi);
    assert_forward_matches ("imported forward logits", mi, mf, ids, T, V, lf);
    sutra_model_free (mi);
    g_free (g16);
  }

  /* training converts to f32 (the tied head re-pointed at the embedding parameter) */
  test_assert_ok (sutra_model_make_trainable (mh, &err), &err);
  assert_f32_bases (mh);
  assert_forward_matches ("trainable forward logits", mh, mf, ids, T, V, lf);

  sutra_model_free (mh);
  sutra_model_free (mf);
  g_free (lf);
  g_free (lh);
  g_free (ef);
  g_free (eh);
  g_free (sf);
  g_free (sh);
  g_free (hdir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/engine/linear/half-base/f16", GINT_TO_POINTER (0), test_half_base);
  g_test_add_data_func ("/engine/linear/half-base/bf16", GINT_TO_POINTER (1), test_half_base);
  g_test_add_func ("/engine/linear/forward-many", test_forward_many);
  g_test_add_data_func ("/engine/linear/half-checkpoint/f16", GINT_TO_POINTER (0),
                        test_half_checkpoint);
  g_test_add_data_func ("/engine/linear/half-checkpoint/bf16", GINT_TO_POINTER (1),
                        test_half_checkpoint);
  return g_test_run ();
}
