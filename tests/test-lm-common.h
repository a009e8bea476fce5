/* test-lm-common.h: checks shared by the causal-LM tests of the recurrent architectures
 * (test-rwkv.c, test-mamba.c): transformers reference logits and greedy ids, the PEFT LoRA
 * step-0 / adapter / merge references, QLoRA bases, export round trips, packed rows and
 * central finite differences. Header-only: included once by each test program. */
#pragma once
#include "test-util.h"
#include "sutra-model.h"
#include "sutra-lora.h"
#include "sutra-json.h"
#include "sutra-optim.h"
#include "sutra-pool.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LM_HF_LOGITS_REL_TOL 1e-4  /* issue: max |ours - ref| / max |ref| */
#define LM_STEP_REL_TOL 1e-5       /* recurrent step logits vs full-sequence forward */
#define LM_LOSS_REL_TOL 1e-4       /* PEFT first loss */
#define LM_GRAD_REL_TOL 1e-4       /* PEFT LoRA gradients, per tensor */
#define LM_QLORA_REL_TOL 1e-4      /* packed base vs its dequantized f32 twin */
#define LM_TRAJ_REL_TOL 1e-4       /* 10-step PEFT run: loss, grad norm, final adapter */

static G_GNUC_UNUSED int *
lm_ref_ids (const SutraSafetensors *refs, const char *name, int *n)
{
  const SutraTensor *t = sutra_safetensors_find (refs, name);
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, SUTRA_I64);
  *n = (int) sutra_tensor_numel (t);
  int *ids = g_new (int, *n);
  for (int i = 0; i < *n; i++) {
    int64_t v;
    memcpy (&v, (const char *) t->data + 8 * i, 8);
    ids[i] = (int) v;
  }
  return ids;
}

/* Reads a float tensor of any shape (numel in *n). */
static G_GNUC_UNUSED float *
lm_ref_f32 (const SutraSafetensors *refs, const char *name, size_t *n)
{
  const SutraTensor *t = sutra_safetensors_find (refs, name);
  if (!t)
    g_error ("reference tensor %s is missing", name);
  *n = (size_t) sutra_tensor_numel (t);
  float *x = g_new (float, *n);
  SutraError err;
  test_assert_ok (sutra_safetensors_read_f32 (refs, name, x, t->ndim, t->shape, &err), &err);
  return x;
}

static G_GNUC_UNUSED SutraSafetensors *
lm_open (const char *dir, const char *file)
{
  char *p = g_build_filename (dir, file, NULL);
  SutraSafetensors *s;
  SutraError err;
  test_assert_ok (sutra_safetensors_open (p, &s, &err), &err);
  g_free (p);
  return s;
}

static G_GNUC_UNUSED SutraModel *
lm_load (const char *dir, const char *sub)
{
  char *p = sub ? g_build_filename (dir, sub, NULL) : g_strdup (dir);
  SutraModel *m;
  SutraError err;
  test_assert_ok (sutra_model_load (p, &m, &err), &err);
  g_free (p);
  return m;
}

static G_GNUC_UNUSED int
lm_argmax (const float *x, int n)
{
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best])
      best = i;
  return best;
}

/* Logits of the inference forward for one row (a copy). */
static G_GNUC_UNUSED float *
lm_forward_copy (SutraModel *m, const int *ids, int B, int T, bool for_backward)
{
  SutraBatch b = { B, T, ids, NULL, NULL };
  float *lg;
  SutraError err;
  test_assert_ok (sutra_model_forward (m, &b, for_backward, &lg, &err), &err);
  return g_memdup2 (lg, sizeof (float) * (size_t) B * T * m->cfg.vocab_size);
}

/* Feeds ids through the recurrent state in the given chunk sizes (0-terminated list), all
 * logits [T, V] (a new buffer). */
static G_GNUC_UNUSED float *
lm_step_logits (SutraModel *m, const int *ids, int T, const int *chunks)
{
  int V = m->cfg.vocab_size;
  SutraGenState *st;
  SutraError err;
  test_assert_ok (m->vt->state_new (m, 0, &st, &err), &err);
  float *lg = g_new (float, (size_t) T * V);
  size_t bytes0 = m->vt->state_bytes (st);
  int off = 0;
  for (int ci = 0; off < T; ci++) {
    int k = chunks[ci] > 0 ? chunks[ci] : T - off;
    if (k > T - off)
      k = T - off;
    test_assert_ok (m->vt->step (m, st, ids + off, k, lg + (size_t) off * V, true, &err), &err);
    off += k;
    if (chunks[ci] == 0)
      ci--;                         /* 0 repeats "the rest" */
  }
  g_assert_cmpint (m->vt->state_pos (st), ==, T);
  g_assert_cmpuint (m->vt->state_bytes (st), ==, bytes0);   /* constant-size state */
  m->vt->state_free (st);
  return lg;
}

/* A sequence longer than the step's internal chunk, fed at once and in odd pieces, equals the
 * full-sequence forward. */
static G_GNUC_UNUSED void
lm_check_long_step (SutraModel *m, int T)
{
  int V = m->cfg.vocab_size;
  int *ids = g_new (int, T);
  for (int t = 0; t < T; t++)
    ids[t] = (t * 31 + 7) % V;
  float *full = lm_forward_copy (m, ids, 1, T, false);
  static const int all[] = { 0 }, odd[] = { 70, 1, 65, 0 };
  for (int v = 0; v < 2; v++) {
    float *lg = lm_step_logits (m, ids, T, v ? odd : all);
    double r = test_rel_max_err (lg, full, (size_t) T * V);
    g_test_message ("%d tokens through the state (%s): rel %.3g vs forward", T,
                    v ? "70+1+65+..." : "one call", r);
    g_assert_cmpfloat (r, <=, LM_STEP_REL_TOL);
    g_free (lg);
  }
  g_free (full);
  g_free (ids);
}

/* transformers' refs: logits of input_ids (inference forward, training forward and the
 * recurrent step, one token at a time and chunked) and greedy_20 after greedy_prompt. */
static G_GNUC_UNUSED void
lm_check_hf_refs (const char *sub)
{
  const char *dir = test_shared_path (sub);
  if (!dir)
    return;
  SutraModel *m = lm_load (dir, NULL);
  SutraSafetensors *refs = lm_open (dir, "refs.safetensors");
  int T, V = m->cfg.vocab_size;
  int *ids = lm_ref_ids (refs, "input_ids", &T);
  size_t n;
  float *ref = lm_ref_f32 (refs, "logits", &n);
  g_assert_cmpuint (n, ==, (size_t) T * V);
  for (int threads = 1; threads <= 2; threads++) {
    sutra_set_threads (threads);
    float *lg = lm_forward_copy (m, ids, 1, T, false);
    double rel = test_rel_max_err (lg, ref, n);
    g_test_message ("%s: forward rel max err %.3g (%d threads)", sub, rel, threads);
    g_assert_cmpfloat (rel, <=, LM_HF_LOGITS_REL_TOL);
    g_free (lg);
    lg = lm_forward_copy (m, ids, 1, T, true);
    rel = test_rel_max_err (lg, ref, n);
    g_test_message ("%s: training forward rel max err %.3g", sub, rel);
    g_assert_cmpfloat (rel, <=, LM_HF_LOGITS_REL_TOL);
    g_free (lg);
  }
  static const int one[] = { 1, 0 }, mixed[] = { 3, 1, 7, 2, 0 };
  float *full = lm_forward_copy (m, ids, 1, T, false);
  for (int v = 0; v < 2; v++) {
    float *lg = lm_step_logits (m, ids, T, v == 0 ? one : mixed);
    double rel = test_rel_max_err (lg, ref, n), rs = test_rel_max_err (lg, full, n);
    g_test_message ("%s: step (%s) rel max err %.3g vs HF, %.3g vs forward", sub,
                    v ? "chunked" : "one by one", rel, rs);
    g_assert_cmpfloat (rel, <=, LM_HF_LOGITS_REL_TOL);
    g_assert_cmpfloat (rs, <=, LM_STEP_REL_TOL);
    g_free (lg);
  }
  /* greedy decoding reproduces generate(do_sample=False) */
  int P, G;
  int *prompt = lm_ref_ids (refs, "greedy_prompt", &P);
  int *want = lm_ref_ids (refs, "greedy_20", &G);
  SutraGenState *st;
  SutraError err;
  test_assert_ok (m->vt->state_new (m, P + G, &st, &err), &err);
  float *lg = g_new (float, V);
  test_assert_ok (m->vt->step (m, st, prompt, P, lg, false, &err), &err);
  for (int i = 0; i < G; i++) {
    int best = lm_argmax (lg, V);
    g_assert_cmpint (best, ==, want[i]);
    test_assert_ok (m->vt->step (m, st, &best, 1, lg, false, &err), &err);
  }
  g_test_message ("%s: greedy_20 matches (%d ids)", sub, G);
  m->vt->state_free (st);
  g_free (lg); g_free (prompt); g_free (want); g_free (full);
  g_free (ids); g_free (ref);
  sutra_safetensors_free (refs);
  sutra_model_free (m);
}

/* HF causal-LM targets: logits at t predict labels[t + 1]; the last position predicts nothing. */
static G_GNUC_UNUSED void
lm_shift_targets (int *tg, const int *labels, int B, int T)
{
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      tg[b * T + t] = t + 1 < T ? labels[b * T + t + 1] : SUTRA_IGNORE_INDEX;
}

/* Training forward + CE loss + backward (gradients zeroed first). Returns the loss. */
static G_GNUC_UNUSED float
lm_loss_backward (SutraModel *m, const int *ids, const int *targets, int B, int T)
{
  int N = B * T, V = m->cfg.vocab_size;
  SutraBatch b = { B, T, ids, NULL, NULL };
  float *lg, loss;
  int nv;
  SutraError err;
  test_assert_ok (sutra_model_forward (m, &b, true, &lg, &err), &err);
  test_assert_ok (sutra_cross_entropy_forward (&loss, &nv, lg, targets, N, V, &err), &err);
  float *dl = g_new (float, (size_t) N * V);
  sutra_cross_entropy_backward (dl, lg, targets, 1.f, nv, N, V);
  sutra_model_zero_grad (m);
  test_assert_ok (sutra_model_backward (m, dl, &err), &err);
  g_free (dl);
  return loss;
}

static G_GNUC_UNUSED double
lm_json_double (const char *path, const char *key)
{
  char *text;
  gsize len;
  g_assert_true (g_file_get_contents (path, &text, &len, NULL));
  json_object *o;
  SutraError err;
  test_assert_ok (sutra_json_parse (text, len, path, SUTRA_JSON_OBJECT, &o, &err), &err);
  json_object *v = json_object_object_get (o, key);
  g_assert_nonnull (v);
  double d = json_object_get_double (v);
  json_object_put (o);
  g_free (text);
  return d;
}

/* The PEFT run of hf-refs/lora-*: step-0 loss and every LoRA gradient, the final adapter's
 * logits, merging in place and the merged folder. */
static G_GNUC_UNUSED void
lm_check_peft (const char *sub)
{
  const char *dir = test_shared_path (sub);
  if (!dir)
    return;
  SutraError err;
  SutraModel *m = lm_load (dir, "base");
  char *ad = g_build_filename (dir, "adapter_init", NULL);
  test_assert_ok (sutra_lora_load (m, ad, NULL, &err), &err);
  g_free (ad);
  SutraSafetensors *bt = lm_open (dir, "batches.safetensors");
  int nx, ny;
  int *x0 = lm_ref_ids (bt, "x0", &nx), *y0 = lm_ref_ids (bt, "y0", &ny);
  const SutraTensor *tx = sutra_safetensors_find (bt, "x0");
  int B = (int) tx->shape[0], T = (int) tx->shape[1];
  int *tg = g_new (int, nx);
  lm_shift_targets (tg, y0, B, T);
  float loss = lm_loss_backward (m, x0, tg, B, T);
  char *tj = g_build_filename (dir, "training.json", NULL);
  double want = lm_json_double (tj, "first_loss");
  g_free (tj);
  double lrel = fabs (loss - want) / fabs (want);
  g_test_message ("%s: first loss %.7f vs %.7f (rel %.3g)", sub, loss, want, lrel);
  g_assert_cmpfloat (lrel, <=, LM_LOSS_REL_TOL);
  /* every LoRA gradient against grads_step0 (PEFT runtime names with ".default") */
  SutraSafetensors *gr = lm_open (dir, "grads_step0.safetensors");
  size_t matched = 0;
  double worst = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (!l->lora)
      continue;
    for (int ab = 0; ab < 2; ab++) {
      char *key = g_strdup_printf ("base_model.model.%s.lora_%s.default.weight", l->name,
                                   ab ? "B" : "A");
      size_t n;
      float *ref = lm_ref_f32 (gr, key, &n);
      const float *g = ab ? l->lora->dB : l->lora->dA;
      g_assert_cmpuint (n, ==, ab ? (size_t) l->out * l->lora->r : (size_t) l->lora->r * l->in);
      double rel = test_rel_max_err (g, ref, n);
      if (rel > LM_GRAD_REL_TOL)
        g_error ("%s: %s rel err %.3g", sub, key, rel);
      worst = rel > worst ? rel : worst;
      matched++;
      g_free (key);
      g_free (ref);
    }
  }
  g_assert_cmpuint (matched, ==, sutra_safetensors_count (gr));
  g_test_message ("%s: %zu LoRA gradients, worst rel err %.3g", sub, matched, worst);
  sutra_safetensors_free (gr);
  sutra_model_free (m);
  /* the trained adapter, then merged in place, then the merged folder */
  SutraSafetensors *pr = lm_open (dir, "probe.safetensors");
  int P;
  int *probe = lm_ref_ids (pr, "probe_ids", &P);
  size_t n;
  float *adapted = lm_ref_f32 (pr, "adapted_logits", &n), *merged = lm_ref_f32 (pr, "merged_logits", &n);
  m = lm_load (dir, "base");
  ad = g_build_filename (dir, "adapter_final", NULL);
  test_assert_ok (sutra_lora_load (m, ad, NULL, &err), &err);
  g_free (ad);
  float *lg = lm_forward_copy (m, probe, 1, P, false);
  double ra = test_rel_max_err (lg, adapted, n);
  g_free (lg);
  test_assert_ok (sutra_lora_merge (m, &err), &err);
  lg = lm_forward_copy (m, probe, 1, P, false);
  double rm = test_rel_max_err (lg, merged, n);
  g_free (lg);
  sutra_model_free (m);
  m = lm_load (dir, "merged");
  lg = lm_forward_copy (m, probe, 1, P, false);
  double rf = test_rel_max_err (lg, merged, n);
  g_free (lg);
  sutra_model_free (m);
  g_test_message ("%s: adapted %.3g, merged in place %.3g, merged folder %.3g", sub, ra, rm, rf);
  g_assert_cmpfloat (ra, <=, LM_HF_LOGITS_REL_TOL);
  g_assert_cmpfloat (rm, <=, LM_HF_LOGITS_REL_TOL);
  g_assert_cmpfloat (rf, <=, LM_HF_LOGITS_REL_TOL);
  g_free (probe); g_free (adapted); g_free (merged);
  sutra_safetensors_free (pr);
  g_free (x0); g_free (y0); g_free (tg);
  sutra_safetensors_free (bt);
}

/* QLoRA: with NF4 bases (every linear whose in-dim allows it) the forward and the LoRA
 * gradients equal those of the same model holding the dequantized weights as f32. */
static G_GNUC_UNUSED void
lm_check_qlora (const char *sub)
{
  const char *dir = test_shared_path (sub);
  if (!dir)
    return;
  SutraError err;
  SutraModel *q = lm_load (dir, "base"), *f = lm_load (dir, "base");
  char *ad = g_build_filename (dir, "adapter_init", NULL);
  test_assert_ok (sutra_lora_load (q, ad, NULL, &err), &err);
  test_assert_ok (sutra_lora_load (f, ad, NULL, &err), &err);
  g_free (ad);
  SutraQuantParams qp = { .type = SUTRA_QUANT_NF4 };
  int nq = 0;
  for (size_t i = 0; i < q->n_linears; i++) {
    SutraLinear *l = q->linears[i], *lf = f->linears[i];
    if (l == q->tied_linear || l->in % 64)
      continue;
    test_assert_ok (sutra_linear_quantize (l, &qp, &err), &err);
    /* the f32 twin gets the dequantized weights */
    test_assert_ok (sutra_linear_make_trainable (lf, &err), &err);
    lf->trainable = false;
    sutra_qweight_dequant_rows (l->qw, 0, l->out, lf->w);
    nq++;
  }
  g_assert_cmpint (nq, >, 0);
  SutraSafetensors *bt = lm_open (dir, "batches.safetensors");
  int nx, ny;
  int *x0 = lm_ref_ids (bt, "x0", &nx), *y0 = lm_ref_ids (bt, "y0", &ny);
  const SutraTensor *tx = sutra_safetensors_find (bt, "x0");
  int B = (int) tx->shape[0], T = (int) tx->shape[1];
  int *tg = g_new (int, nx);
  lm_shift_targets (tg, y0, B, T);
  float lq = lm_loss_backward (q, x0, tg, B, T), lf = lm_loss_backward (f, x0, tg, B, T);
  g_assert_cmpfloat (fabs (lq - lf) / fabs (lf), <=, LM_QLORA_REL_TOL);
  double worst = 0;
  for (size_t i = 0; i < q->n_linears; i++) {
    SutraLinear *a = q->linears[i], *b = f->linears[i];
    if (!a->lora)
      continue;
    double r1 = test_rel_max_err (a->lora->dA, b->lora->dA, (size_t) a->lora->r * a->in);
    double r2 = test_rel_max_err (a->lora->dB, b->lora->dB, (size_t) a->out * a->lora->r);
    worst = fmax (worst, fmax (r1, r2));
  }
  g_test_message ("%s: NF4 bases on %d linears, loss %.6f vs %.6f, worst grad rel %.3g", sub, nq,
                  lq, lf, worst);
  g_assert_cmpfloat (worst, <=, LM_QLORA_REL_TOL);
  g_free (x0); g_free (y0); g_free (tg);
  sutra_safetensors_free (bt);
  sutra_model_free (q);
  sutra_model_free (f);
}

/* Export round trip: write_files, load back, same logits and the same tensors. */
static G_GNUC_UNUSED void
lm_check_roundtrip (SutraModel *m, const int *ids, int T)
{
  const char *dir = test_tmpdir ();
  SutraError err;
  test_assert_ok (sutra_model_write_files (m, dir, SUTRA_F32, &err), &err);
  SutraModel *m2;
  test_assert_ok (sutra_model_load (dir, &m2, &err), &err);
  g_assert_cmpint (sutra_model_param_count (m2), ==, sutra_model_param_count (m));
  g_assert_cmpuint (m2->n_params, ==, m->n_params);
  g_assert_cmpuint (m2->n_linears, ==, m->n_linears);
  float *a = lm_forward_copy (m, ids, 1, T, false), *b = lm_forward_copy (m2, ids, 1, T, false);
  g_assert_cmpfloat (test_max_abs_err (a, b, (size_t) T * m->cfg.vocab_size), ==, 0.0);
  g_free (a); g_free (b);
  sutra_model_free (m2);
}

/* A packed row of two documents equals the documents run as separate rows: logits and, for
 * the same output gradient, every parameter gradient (full fine-tuning). */
static G_GNUC_UNUSED void
lm_check_packing (SutraModel *m, const int *ids, int T, int split)
{
  int V = m->cfg.vocab_size;
  SutraError err;
  int *doc = g_new (int, T);
  for (int t = 0; t < T; t++)
    doc[t] = t < split ? 3 : 7;
  float *dl = g_new (float, (size_t) T * V);
  test_fill_uniform (dl, (size_t) T * V, -1e-2f, 1e-2f, 42);
  SutraBatch pk = { 1, T, ids, NULL, doc };
  float *lg;
  test_assert_ok (sutra_model_forward (m, &pk, true, &lg, &err), &err);
  float *packed = g_memdup2 (lg, sizeof (float) * (size_t) T * V);
  sutra_model_zero_grad (m);
  test_assert_ok (sutra_model_backward (m, dl, &err), &err);
  /* snapshot the packed gradients */
  GPtrArray *snap = g_ptr_array_new_with_free_func (g_free);
  for (size_t i = 0; i < m->n_params; i++) {
    SutraParam *p = m->params[i];
    size_t n = 1;
    for (int d = 0; d < p->ndim; d++)
      n *= (size_t) p->shape[d];
    g_ptr_array_add (snap, g_memdup2 (p->grad, sizeof (float) * n));
  }
  for (size_t i = 0; i < m->n_linears; i++)
    if (m->linears[i] != m->tied_linear)
      g_ptr_array_add (snap, g_memdup2 (m->linears[i]->dw, sizeof (float) * (size_t) m->linears[i]->in * m->linears[i]->out));
  sutra_model_zero_grad (m);
  /* the two documents alone; gradients accumulate (zero_grad is not called in between) */
  for (int d = 0; d < 2; d++) {
    int off = d ? split : 0, len = d ? T - split : split;
    SutraBatch one = { 1, len, ids + off, NULL, NULL };
    test_assert_ok (sutra_model_forward (m, &one, true, &lg, &err), &err);
    g_assert_cmpfloat (test_rel_max_err (packed + (size_t) off * V, lg, (size_t) len * V), <=, 1e-5);
    test_assert_ok (sutra_model_backward (m, dl + (size_t) off * V, &err), &err);
  }
  size_t k = 0;
  double worst = 0;
  for (size_t i = 0; i < m->n_params; i++, k++) {
    SutraParam *p = m->params[i];
    size_t n = 1;
    for (int d = 0; d < p->ndim; d++)
      n *= (size_t) p->shape[d];
    double r = test_rel_max_err (p->grad, snap->pdata[k], n);
    if (r > 1e-4)
      g_error ("packing: %s grad rel err %.3g", p->name, r);
    worst = fmax (worst, r);
  }
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (l == m->tied_linear)
      continue;
    double r = test_rel_max_err (l->dw, snap->pdata[k++], (size_t) l->in * l->out);
    if (r > 1e-4)
      g_error ("packing: %s grad rel err %.3g", l->name, r);
    worst = fmax (worst, r);
  }
  g_test_message ("packed row vs separate rows: worst gradient rel err %.3g", worst);
  g_ptr_array_unref (snap);
  g_free (packed); g_free (dl); g_free (doc);
}

/* Central finite differences of a double-precision loss against analytic float gradients.
 * loss_fn evaluates the model's CURRENT float weights in double. Steps are the exact float
 * differences (float)(x + h) - (float)(x - h). Returns the max over the checked elements of
 * |analytic - fd| / max |fd| for that tensor. */
typedef double (*LmLossFn) (SutraModel *m, void *ctx);

static G_GNUC_UNUSED double
lm_fd_check (SutraModel *m, LmLossFn fn, void *ctx, float *data, const float *grad, size_t n,
             size_t stride, double h)
{
  double max_fd = 0, max_diff = 0;
  for (size_t i = 0; i < n; i += stride) {
    float x = data[i];
    float xp = (float) (x + h), xm = (float) (x - h);
    data[i] = xp;
    double lp = fn (m, ctx);
    data[i] = xm;
    double lm = fn (m, ctx);
    data[i] = x;
    double fd = (lp - lm) / ((double) xp - (double) xm);
    max_fd = fmax (max_fd, fabs (fd));
    max_diff = fmax (max_diff, fabs (fd - (double) grad[i]));
  }
  return max_fd > 0 ? max_diff / max_fd : max_diff;
}

/* The 10-step PEFT run of hf-refs/lora-*: torch AdamW (lr 1e-2, betas 0.9/0.999, eps 1e-8,
 * wd 0.01) over the LoRA tensors, cosine schedule with 2 warm-up steps over 10, 2 micro-batches
 * per step (each loss / 2), global-norm clipping at 1.0; per step the mean loss, the lr and the
 * norm before clipping against training.json's history, then the adapter against
 * adapter_final (relative Frobenius error per tensor). Built from sutra-optim directly (the
 * trainer drives the same calls). */
static G_GNUC_UNUSED void
lm_check_trajectory (const char *sub)
{
  const char *dir = test_shared_path (sub);
  if (!dir)
    return;
  SutraError err;
  SutraModel *m = lm_load (dir, "base");
  char *ad = g_build_filename (dir, "adapter_init", NULL);
  test_assert_ok (sutra_lora_load (m, ad, NULL, &err), &err);
  g_free (ad);
  GArray *ts = g_array_new (FALSE, TRUE, sizeof (SutraOptTensor));
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (!l->lora)
      continue;
    SutraOptTensor a = { l->name, l->lora->A, l->lora->dA, (size_t) l->lora->r * l->in, true };
    SutraOptTensor b = { l->name, l->lora->B, l->lora->dB, (size_t) l->out * l->lora->r, true };
    g_array_append_val (ts, a);
    g_array_append_val (ts, b);
  }
  SutraOptConfig oc = { .kind = SUTRA_OPT_ADAMW, .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999,
                        .eps = 1e-8, .weight_decay = 0.01 };
  SutraOptimizer *opt;
  test_assert_ok (sutra_optimizer_new (&oc, (SutraOptTensor *) ts->data, ts->len, &opt, &err), &err);
  /* history */
  char *tj = g_build_filename (dir, "training.json", NULL), *text;
  gsize len;
  g_assert_true (g_file_get_contents (tj, &text, &len, NULL));
  json_object *root;
  test_assert_ok (sutra_json_parse (text, len, tj, SUTRA_JSON_OBJECT, &root, &err), &err);
  json_object *hist = json_object_object_get (root, "history");
  g_assert_cmpint (json_object_array_length (hist), ==, 10);
  SutraSafetensors *bt = lm_open (dir, "batches.safetensors");
  int V = m->cfg.vocab_size;
  double worst_loss = 0, worst_norm = 0;
  for (int s = 0; s < 10; s++) {
    sutra_model_zero_grad (m);
    double loss_sum = 0;
    for (int mb = 0; mb < 2; mb++) {
      char xn[16], yn[16];
      snprintf (xn, sizeof xn, "x%d", 2 * s + mb);
      snprintf (yn, sizeof yn, "y%d", 2 * s + mb);
      int nx, ny;
      int *x = lm_ref_ids (bt, xn, &nx), *y = lm_ref_ids (bt, yn, &ny);
      const SutraTensor *tx = sutra_safetensors_find (bt, xn);
      int B = (int) tx->shape[0], T = (int) tx->shape[1], N = B * T;
      int *tg = g_new (int, N);
      lm_shift_targets (tg, y, B, T);
      SutraBatch b = { B, T, x, NULL, NULL };
      float *lg, loss;
      int nv;
      test_assert_ok (sutra_model_forward (m, &b, true, &lg, &err), &err);
      test_assert_ok (sutra_cross_entropy_forward (&loss, &nv, lg, tg, N, V, &err), &err);
      float *dl = g_new (float, (size_t) N * V);
      sutra_cross_entropy_backward (dl, lg, tg, 0.5f, nv, N, V);
      test_assert_ok (sutra_model_backward (m, dl, &err), &err);
      loss_sum += loss;
      g_free (dl); g_free (tg); g_free (x); g_free (y);
    }
    json_object *h = json_object_array_get_idx (hist, s);
    double want_loss = json_object_get_double (json_object_object_get (h, "loss"));
    double want_lr = json_object_get_double (json_object_object_get (h, "lr"));
    double want_norm = json_object_get_double (json_object_object_get (h, "grad_norm_before_clip"));
    double norm = sutra_clip_grad_norm ((SutraOptTensor *) ts->data, ts->len, 1.0);
    double lr = sutra_schedule_lr (SUTRA_SCHED_COSINE, 1e-2, s, 2, 10, 0);
    double el = fabs (loss_sum / 2 - want_loss) / want_loss, en = fabs (norm - want_norm) / want_norm;
    worst_loss = fmax (worst_loss, el);
    worst_norm = fmax (worst_norm, en);
    g_assert_cmpfloat (fabs (lr - want_lr), <=, 1e-12);
    if (el > LM_TRAJ_REL_TOL || en > LM_TRAJ_REL_TOL)
      g_error ("%s step %d: loss %.7f vs %.7f, grad norm %.7f vs %.7f", sub, s + 1, loss_sum / 2,
               want_loss, norm, want_norm);
    sutra_optimizer_step (opt, lr);
  }
  /* the final adapter */
  SutraSafetensors *fin = lm_open (dir, "adapter_final/adapter_model.safetensors");
  double worst_ad = 0;
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    if (!l->lora)
      continue;
    for (int ab = 0; ab < 2; ab++) {
      char *key = sutra_lora_key (l->name, ab == 0);
      size_t n;
      float *ref = lm_ref_f32 (fin, key, &n);
      const float *ours = ab ? l->lora->B : l->lora->A;
      double num = 0, den = 0;
      for (size_t k = 0; k < n; k++) {
        num += ((double) ours[k] - ref[k]) * ((double) ours[k] - ref[k]);
        den += (double) ref[k] * ref[k];
      }
      double rel = sqrt (num / den);
      worst_ad = fmax (worst_ad, rel);
      if (rel > LM_TRAJ_REL_TOL)
        g_error ("%s: final %s rel Frobenius err %.3g", sub, key, rel);
      free (key);
      g_free (ref);
    }
  }
  g_test_message ("%s: 10 AdamW steps: worst loss rel %.3g, grad norm rel %.3g, final adapter "
                  "rel Frobenius %.3g", sub, worst_loss, worst_norm, worst_ad);
  sutra_safetensors_free (fin);
  sutra_safetensors_free (bt);
  json_object_put (root);
  g_free (text);
  g_free (tj);
  sutra_optimizer_free (opt);
  g_array_unref (ts);
  sutra_model_free (m);
}
