/* sutra-quantize.c: model-level quantization (see sutra-quantize.h).
 *
 * The linears to quantize are grouped by the layer index in their Hugging Face names
 * ("model.layers.3.mlp.up_proj" -> 3; a name without one, such as lm_head, comes last) and
 * processed in windows of whole layers:
 *   calibrate  observers on the window's linears accumulate statistics per distinct input
 *              (linears called one after another with the same input buffer, e.g. q/k/v,
 *              share one set; verified by a hash of the data on the first batch);
 *   AWQ        every fold group of the window is searched first (from the unscaled weights,
 *              as AutoAWQ does), then folded: the norm weight (or the previous linear's rows)
 *              divided by s, the readers quantized as Q(W diag s); the remaining linears search
 *              their own scales and keep them as explicit input scales;
 *   quantize   one tensor at a time (progress and cancellation between tensors).
 * GPTQ's windows are single layers so each is calibrated through the already quantized ones;
 * AWQ and one-pass GPTQ windows are as many layers as the statistics budget holds.
 * Every change to the model goes through a journal so a failure restores it. */
#include "sutra-quantize.h"
#include "sutra-qcalib.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------------------------ */
/* AWQ fold tables                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Llama family (AutoAWQ's LlamaAWQForCausalLM groups). q/k are not foldable into each other
 * (RoPE mixes channel pairs); o reads v through attention, which is linear in v per head, so
 * v's rows can carry o's scales when the scales are tied across the query heads of each
 * kv head; down reads act(gate) * up, linear in up. */
static const SutraAwqFold llama_folds[] = {
  { SUTRA_AWQ_PREV_NORM, "model.layers.%d.input_layernorm.weight", NULL,
    { "model.layers.%d.self_attn.q_proj", "model.layers.%d.self_attn.k_proj",
      "model.layers.%d.self_attn.v_proj", NULL }, false },
  { SUTRA_AWQ_PREV_LINEAR, "model.layers.%d.self_attn.v_proj", NULL,
    { "model.layers.%d.self_attn.o_proj", NULL }, true },
  { SUTRA_AWQ_PREV_NORM, "model.layers.%d.post_attention_layernorm.weight", NULL,
    { "model.layers.%d.mlp.gate_proj", "model.layers.%d.mlp.up_proj", NULL }, false },
  { SUTRA_AWQ_PREV_LINEAR, "model.layers.%d.mlp.up_proj", NULL,
    { "model.layers.%d.mlp.down_proj", NULL }, false },
  { SUTRA_AWQ_PREV_NORM, "model.norm.weight", NULL, { "lm_head", NULL }, false },
};

const SutraAwqFold *
sutra_awq_folds (SutraArch arch, int *n)
{
  switch (arch) {
  case SUTRA_ARCH_LLAMA:
    *n = (int) (sizeof llama_folds / sizeof llama_folds[0]);
    return llama_folds;
  /* RWKV-4 and Mamba: no table yet (their author fills one here). Candidates: RWKV ln1 (weight
   * and bias) -> key/value/receptance (the token-shift mix is per channel, so it commutes with
   * a channel scale), ln2 -> channel-mix key/receptance; Mamba norm -> in_proj. Until then
   * every linear of theirs keeps explicit input scales. */
  default:
    *n = 0;
    return NULL;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* journal: every change to the model, undone on failure                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  SutraLinear *l;
  float *w, *bias;
  bool w_owned, bias_owned;
  const uint16_t *w16;     /* a half base, dropped when the linear gets an f32 or packed one */
  bool w16_owned;
} SavedLinear;

typedef struct {
  SutraParam *p;
  float *data;
  bool owned;
} SavedParam;

typedef struct {
  SavedLinear *lin;
  size_t nlin;
  SavedParam *par;
  size_t npar;
} Journal;

static SavedLinear *
journal_linear (Journal *j, SutraLinear *l)
{
  for (size_t i = 0; i < j->nlin; i++)
    if (j->lin[i].l == l)
      return &j->lin[i];
  j->lin = sutra_xrealloc (j->lin, sizeof *j->lin * (j->nlin + 1));
  SavedLinear *s = &j->lin[j->nlin++];
  *s = (SavedLinear) { l, l->w, l->bias, l->w_owned, l->bias_owned, l->w16, l->w16_owned };
  return s;
}

static void
journal_param (Journal *j, SutraParam *p)
{
  for (size_t i = 0; i < j->npar; i++)
    if (j->par[i].p == p)
      return;
  j->par = sutra_xrealloc (j->par, sizeof *j->par * (j->npar + 1));
  j->par[j->npar++] = (SavedParam) { p, p->data, p->owned };
}

/* replaces l->w by an owned buffer (the original, f32 or half, stays until commit) */
static void
set_linear_w (Journal *j, SutraLinear *l, float *w)
{
  SavedLinear *s = journal_linear (j, l);
  if (l->w_owned && l->w != s->w)
    sutra_aligned_free (l->w);
  l->w = w;
  l->w_owned = w != NULL;
  l->w16 = NULL;
  l->w16_owned = false;
}

/* an f32 copy of the base (f32 or half) or NULL when out of memory */
static float *
dup_base (const SutraLinear *l)
{
  float *d = sutra_try_alloc (sizeof (float) * (size_t) l->out * l->in, l->name, NULL);
  if (d)
    sutra_linear_base_rows (l, 0, l->out, d);
  return d;
}

/* gives a half base an f32 copy the quantizers and folds read (journalled) */
static SutraStatus
ensure_f32 (Journal *j, SutraLinear *l, SutraError *err)
{
  if (l->w)
    return SUTRA_OK;
  float *w = dup_base (l);
  if (!w)
    return sutra_error_set (err, SUTRA_ERR_NOMEM, "%s: out of memory for an f32 copy of the "
                            "weights", l->name);
  set_linear_w (j, l, w);
  return SUTRA_OK;
}

static void
set_linear_bias (Journal *j, SutraLinear *l, float *b)
{
  SavedLinear *s = journal_linear (j, l);
  if (l->bias_owned && l->bias != s->bias)
    sutra_aligned_free (l->bias);
  l->bias = b;
  l->bias_owned = true;
}

static void
set_linear_qw (Journal *j, SutraLinear *l, SutraQWeight *q)
{
  set_linear_w (j, l, NULL);
  l->qw = q;
}

static void
set_param_data (Journal *j, SutraParam *p, float *d)
{
  journal_param (j, p);
  for (size_t i = 0; i < j->npar; i++)
    if (j->par[i].p == p && p->owned && p->data != j->par[i].data)
      sutra_aligned_free (p->data);
  p->data = d;
  p->owned = true;
}

static void
journal_rollback (Journal *j)
{
  for (size_t i = 0; i < j->nlin; i++) {
    SavedLinear *s = &j->lin[i];
    SutraLinear *l = s->l;
    sutra_qweight_free (l->qw);
    l->qw = NULL;
    if (l->w_owned && l->w != s->w)
      sutra_aligned_free (l->w);
    if (l->bias_owned && l->bias != s->bias)
      sutra_aligned_free (l->bias);
    l->w = s->w;
    l->w_owned = s->w_owned;
    l->w16 = s->w16;
    l->w16_owned = s->w16_owned;
    l->bias = s->bias;
    l->bias_owned = s->bias_owned;
  }
  for (size_t i = 0; i < j->npar; i++) {
    SavedParam *s = &j->par[i];
    if (s->p->owned && s->p->data != s->data)
      sutra_aligned_free (s->p->data);
    s->p->data = s->data;
    s->p->owned = s->owned;
  }
}

static void
journal_commit (Journal *j)
{
  for (size_t i = 0; i < j->nlin; i++) {
    SavedLinear *s = &j->lin[i];
    if (s->w_owned && s->l->w != s->w)
      sutra_aligned_free (s->w);
    if (s->w16_owned && s->l->w16 != s->w16)
      sutra_aligned_free ((void *) s->w16);
    if (s->bias_owned && s->l->bias != s->bias)
      sutra_aligned_free (s->bias);
  }
  for (size_t i = 0; i < j->npar; i++)
    if (j->par[i].owned && j->par[i].p->data != j->par[i].data)
      sutra_aligned_free (j->par[i].data);
}

static void
journal_free (Journal *j)
{
  free (j->lin);
  free (j->par);
  memset (j, 0, sizeof *j);
}

/* ------------------------------------------------------------------------------------------ */
/* the job                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct Job Job;

typedef struct {
  Job *job;
  int idx;
} ObsCtx;

typedef struct {
  SutraLinear *l;
  int layer;
  int stats;               /* index into job->stats, -1 before its first observation */
  bool shared;             /* uses the statistics of the linear called just before it */
  float *colscale;         /* AWQ: quantize W diag(colscale) (owned) */
  bool explicit_scale;     /* AWQ: keep 1 / colscale as in_scale */
  bool awq_done;           /* AWQ: scales assigned */
  ObsCtx obs;
} Item;

struct Job {
  SutraModel *m;
  const SutraQuantizeOptions *o;
  SutraQuantizeSummary *sum;
  Journal jr;
  Item *items;
  int n_items;
  /* calibration */
  bool calibrate;
  SutraQStats *stats;
  int n_stats;
  const float *last_ptr;
  int last_N, last_in, last_stats;
  uint64_t last_hash;
  bool first_batch;
  SutraStatus obs_status;
  SutraError obs_err;
  /* progress */
  int units_done, units_total, tensors_done;
};

static void
note (SutraQuantizeSummary *s, const char *fmt, ...)
{
  size_t len = strlen (s->notes);
  if (len + 2 >= sizeof s->notes)
    return;
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (s->notes + len, sizeof s->notes - len, fmt, ap);
  va_end (ap);
  len = strlen (s->notes);
  if (len + 1 < sizeof s->notes) {
    s->notes[len] = '\n';
    s->notes[len + 1] = 0;
  }
}

static bool
is_cancelled (const Job *j)
{
  return j->o->cancel && atomic_load (j->o->cancel);
}

/* reports progress; false when the callback asks to stop */
static bool
progress (Job *j, SutraQuantizePhase phase, int done, int total, const char *name)
{
  if (!j->o->progress)
    return true;
  SutraQuantizeProgress p = { phase, done, total, name,
                              j->units_total ? (double) j->units_done / j->units_total : 1.0 };
  return j->o->progress (&p, j->o->user_data);
}

static SutraStatus
cancelled_error (SutraError *err)
{
  return sutra_error_set (err, SUTRA_ERR_CANCELLED, "quantization cancelled; the model is unchanged");
}

/* "model.layers.12.mlp.up_proj" -> 12; INT_MAX when the name has no numeric component */
static int
layer_of (const char *name)
{
  for (const char *p = name; *p; p++)
    if (*p == '.' && isdigit ((unsigned char) p[1])) {
      char *end;
      long v = strtol (p + 1, &end, 10);
      if ((*end == '.' || !*end) && v >= 0 && v < INT_MAX)
        return (int) v;
    }
  return INT_MAX;
}

/* ---- calibration observers ---- */

static uint64_t
hash_floats (const float *x, size_t n)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  const uint32_t *u = (const uint32_t *) (const void *) x;
  for (size_t i = 0; i < n; i++)
    h = (h ^ u[i]) * 0x100000001b3ULL;
  return h;
}

static void
observe (void *user_data, SutraLinear *l, const float *in, int N)
{
  ObsCtx *ctx = user_data;
  Job *j = ctx->job;
  Item *it = &j->items[ctx->idx];
  if (j->obs_status)
    return;
  uint64_t h = j->first_batch ? hash_floats (in, (size_t) N * l->in) : 0;
  if (it->stats < 0) {
    if (j->first_batch && j->last_ptr == in && j->last_N == N && j->last_in == l->in &&
        j->last_hash == h) {
      it->stats = j->last_stats;
      it->shared = true;
    } else {
      j->stats = sutra_xrealloc (j->stats, sizeof *j->stats * (size_t) (j->n_stats + 1));
      j->obs_status = sutra_qstats_init (&j->stats[j->n_stats], l->in, true, &j->obs_err);
      if (j->obs_status)
        return;
      it->stats = j->n_stats++;
    }
  } else if (it->shared && (j->last_ptr != in || j->last_stats != it->stats)) {
    j->obs_status = sutra_error_set (&j->obs_err, SUTRA_ERR_UNSUPPORTED,
                                     "calibration: %s no longer reads the same input as the layer "
                                     "before it", l->name);
    return;
  }
  if (!it->shared)
    sutra_qstats_add (&j->stats[it->stats], in, N);
  j->last_ptr = in;
  j->last_N = N;
  j->last_in = l->in;
  j->last_stats = it->stats;
  j->last_hash = h;
}

static void
free_stats (Job *j)
{
  for (int i = 0; i < j->n_stats; i++)
    sutra_qstats_clear (&j->stats[i]);
  free (j->stats);
  j->stats = NULL;
  j->n_stats = 0;
}

/* runs the calibration batches with observers on items [i0, i1) */
static SutraStatus
calibrate (Job *j, int i0, int i1, SutraError *err)
{
  for (int i = i0; i < i1; i++) {
    j->items[i].stats = -1;
    j->items[i].shared = false;
    j->items[i].obs = (ObsCtx) { j, i };
    j->items[i].l->observer = observe;
    j->items[i].l->observer_data = &j->items[i].obs;
  }
  SutraStatus st = SUTRA_OK;
  j->obs_status = SUTRA_OK;
  for (int b = 0; b < j->o->n_calib && !st; b++) {
    if (is_cancelled (j)) {
      st = cancelled_error (err);
      break;
    }
    j->first_batch = b == 0;
    j->last_ptr = NULL;
    float *logits;
    st = sutra_model_forward (j->m, &j->o->calib[b], false, &logits, err);
    if (!st && j->obs_status) {
      *err = j->obs_err;
      st = j->obs_status;
    }
    j->units_done++;
    if (!st && !progress (j, SUTRA_QPHASE_CALIBRATE, b + 1, j->o->n_calib, NULL))
      st = cancelled_error (err);
  }
  for (int i = i0; i < i1; i++) {
    j->items[i].l->observer = NULL;
    j->items[i].l->observer_data = NULL;
  }
  if (!st)
    j->sum->calib_passes++;
  return st;
}

/* ---- AWQ ---- */

static Item *
find_item (Job *j, int i0, int i1, const char *name)
{
  for (int i = i0; i < i1; i++)
    if (!strcmp (j->items[i].l->name, name))
      return &j->items[i];
  return NULL;
}

typedef struct {
  const SutraAwqFold *f;
  int layer;
  Item *readers[4];
  int n;
  float *s;                /* [readers' in] */
  void *prev;              /* SutraParam* or SutraLinear* */
  SutraParam *prev_bias;
  int *tie;                /* repeat_kv: [in] -> prev channel */
  int prev_out;
} FoldPlan;

/* Checks a fold entry for layer L against the model; fills plan or returns false (with a
 * note when the architecture's table promised something the model does not have). */
static bool
plan_fold (Job *j, int i0, int i1, const SutraAwqFold *f, int L, FoldPlan *pl)
{
  SutraModel *m = j->m;
  char name[256], pname[256];
  memset (pl, 0, sizeof *pl);
  pl->f = f;
  pl->layer = L;
  for (int k = 0; k < 4 && f->linears[k]; k++) {
    snprintf (name, sizeof name, f->linears[k], L);
    Item *it = find_item (j, i0, i1, name);
    if (!it)
      return false;        /* a reader is not being quantized (e.g. the head): nothing to fold */
    pl->readers[pl->n++] = it;
  }
  snprintf (pname, sizeof pname, f->prev, L);
  int in = pl->readers[0]->l->in;
  for (int k = 0; k < pl->n; k++)
    if (pl->readers[k]->awq_done || pl->readers[k]->stats < 0 ||
        pl->readers[k]->stats != pl->readers[0]->stats || pl->readers[k]->l->in != in) {
      note (j->sum, "awq: %s -> %s...: readers do not share one input; explicit scales", pname,
            pl->readers[0]->l->name);
      return false;
    }
  if (f->kind == SUTRA_AWQ_PREV_NORM) {
    SutraParam *p = sutra_model_find_param (m, pname);
    if (!p || p->ndim != 1 || p->shape[0] != in) {
      note (j->sum, "awq: fold into %s not possible (missing or not [%d]); explicit scales", pname,
            in);
      return false;
    }
    pl->prev = p;
    if (f->prev_bias) {
      snprintf (pname, sizeof pname, f->prev_bias, L);
      pl->prev_bias = sutra_model_find_param (m, pname);
      if (!pl->prev_bias || pl->prev_bias->ndim != 1 || pl->prev_bias->shape[0] != in) {
        note (j->sum, "awq: norm bias %s missing; explicit scales", pname);
        return false;
      }
    }
    pl->prev_out = in;
  } else {
    SutraLinear *pv = sutra_model_find_linear (m, pname);
    if (!pv || pv->lora || pv == m->tied_linear || (!pv->w && !pv->w16 && !pv->qw)) {
      note (j->sum, "awq: fold into %s not possible; explicit scales", pname);
      return false;
    }
    if (pv->qw) {          /* already packed (an earlier window): its rows cannot change */
      note (j->sum, "awq: %s already quantized; explicit scales for its readers", pname);
      return false;
    }
    pl->prev = pv;
    pl->prev_out = pv->out;
    const SutraModelConfig *c = &m->cfg;
    if (f->repeat_kv && pv->out != in) {
      int NH = c->n_heads, NKV = c->n_kv_heads, HS = c->head_dim;
      if (NH <= 0 || NKV <= 0 || HS <= 0 || NH % NKV || NH * HS != in || NKV * HS != pv->out) {
        note (j->sum, "awq: %s -> %s: head layout does not match; explicit scales", pname,
              pl->readers[0]->l->name);
        return false;
      }
      pl->tie = sutra_xmalloc (sizeof (int) * (size_t) in);
      for (int ch = 0; ch < in; ch++)   /* query head h reads kv head h / (NH / NKV) */
        pl->tie[ch] = (ch / HS) / (NH / NKV) * HS + ch % HS;
    } else if (pv->out != in) {
      note (j->sum, "awq: %s has %d outputs but %s reads %d; explicit scales", pname, pv->out,
            pl->readers[0]->l->name, in);
      return false;
    }
  }
  return true;
}

/* searches scales for the readers (joint, over their shared statistics) */
static SutraStatus
awq_search_group (Job *j, Item **readers, int n, const int *tie, int n_classes, float *s,
                  SutraError *err)
{
  const float *ws[8];
  int rows[8];
  for (int k = 0; k < n; k++) {
    SutraStatus st = ensure_f32 (&j->jr, readers[k]->l, err);
    if (st)
      return st;
    ws[k] = readers[k]->l->w;
    rows[k] = readers[k]->l->out;
  }
  SutraAwqOptions ao = { j->o->awq_grid, tie, n_classes, j->o->cancel };
  SutraAwqResult res;
  SutraStatus st = sutra_awq_search (ws, rows, n, readers[0]->l->in,
                                     &j->stats[readers[0]->stats], &j->o->params, &ao, s, &res,
                                     err);
  if (st == SUTRA_ERR_CANCELLED)
    return cancelled_error (err);
  return st;
}

static float *
dup_floats (const float *x, size_t n)
{
  float *d = sutra_try_alloc (sizeof (float) * (n ? n : 1), "awq folded weights", NULL);
  if (d)
    memcpy (d, x, sizeof (float) * n);
  return d;
}

/* applies a searched fold: prev output divided by s, readers quantized as Q(W diag s) */
static SutraStatus
apply_fold (Job *j, FoldPlan *pl, SutraError *err)
{
  int in = pl->readers[0]->l->in;
  if (pl->f->kind == SUTRA_AWQ_PREV_NORM) {
    SutraParam *p = pl->prev;
    float *d = dup_floats (p->data, (size_t) in);
    float *bd = pl->prev_bias ? dup_floats (pl->prev_bias->data, (size_t) in) : NULL;
    if (!d || (pl->prev_bias && !bd)) {
      sutra_aligned_free (d);
      sutra_aligned_free (bd);
      return sutra_error_set (err, SUTRA_ERR_NOMEM, "out of memory folding AWQ scales");
    }
    for (int c = 0; c < in; c++) {
      d[c] /= pl->s[c];
      if (bd)
        bd[c] /= pl->s[c];
    }
    set_param_data (&j->jr, p, d);
    if (bd)
      set_param_data (&j->jr, pl->prev_bias, bd);
  } else {
    SutraLinear *pv = pl->prev;
    /* per prev channel: the (tied) scale of the readers' channels it feeds */
    float *sp = sutra_xmalloc (sizeof (float) * (size_t) pl->prev_out);
    for (int c = 0; c < in; c++)
      sp[pl->tie ? pl->tie[c] : c] = pl->s[c];
    float *w = dup_base (pv);
    float *b = pv->bias ? dup_floats (pv->bias, (size_t) pv->out) : NULL;
    if (!w || (pv->bias && !b)) {
      free (sp);
      sutra_aligned_free (w);
      sutra_aligned_free (b);
      return sutra_error_set (err, SUTRA_ERR_NOMEM, "out of memory folding AWQ scales");
    }
    for (int r = 0; r < pv->out; r++) {
      for (int c = 0; c < pv->in; c++)
        w[(size_t) r * pv->in + c] /= sp[r];
      if (b)
        b[r] /= sp[r];
    }
    free (sp);
    set_linear_w (&j->jr, pv, w);
    if (b)
      set_linear_bias (&j->jr, pv, b);
  }
  for (int k = 0; k < pl->n; k++) {
    Item *it = pl->readers[k];
    it->colscale = dup_floats (pl->s, (size_t) in);
    if (!it->colscale)
      return sutra_error_set (err, SUTRA_ERR_NOMEM, "out of memory folding AWQ scales");
    it->explicit_scale = false;
    it->awq_done = true;
    j->sum->n_awq_folded++;
  }
  return SUTRA_OK;
}

static SutraStatus
awq_window (Job *j, int i0, int i1, SutraError *err)
{
  SutraModel *m = j->m;
  int nf;
  const SutraAwqFold *folds = sutra_awq_folds (m->cfg.arch, &nf);
  if (j->o->awq_no_fold)
    nf = 0;
  /* layers present in the window */
  FoldPlan *plans = NULL;
  int np = 0;
  SutraStatus st = SUTRA_OK;
  for (int fi = 0; fi < nf; fi++) {
    bool per_layer = strstr (folds[fi].prev, "%d") != NULL;
    for (int i = i0; i < i1; i++) {
      int L = j->items[i].layer;
      if ((per_layer && L == INT_MAX) || (!per_layer && L != INT_MAX))
        continue;
      if (i > i0 && j->items[i - 1].layer == L)
        continue;          /* one plan per layer */
      FoldPlan pl;
      if (!plan_fold (j, i0, i1, &folds[fi], per_layer ? L : 0, &pl))
        continue;
      plans = sutra_xrealloc (plans, sizeof *plans * (size_t) (np + 1));
      plans[np++] = pl;
      for (int k = 0; k < pl.n; k++)
        pl.readers[k]->awq_done = true;     /* claimed (a reader belongs to one group) */
    }
  }
  /* search every planned group on the unscaled weights, then fold them all */
  for (int p = 0; p < np && !st; p++) {
    FoldPlan *pl = &plans[p];
    pl->s = sutra_xmalloc (sizeof (float) * (size_t) pl->readers[0]->l->in);
    st = awq_search_group (j, pl->readers, pl->n, pl->tie, pl->prev_out, pl->s, err);
  }
  for (int p = 0; p < np && !st; p++)
    st = apply_fold (j, &plans[p], err);
  /* the rest: joint search per shared input, scales kept in the weights */
  for (int i = i0; i < i1 && !st; i++) {
    Item *it = &j->items[i];
    if (it->awq_done)
      continue;
    Item *group[8] = { it };
    int n = 1;
    for (int k = i + 1; it->stats >= 0 && k < i1 && n < 8; k++)
      if (!j->items[k].awq_done && j->items[k].stats == it->stats)
        group[n++] = &j->items[k];
    float *s = sutra_xmalloc (sizeof (float) * (size_t) it->l->in);
    if (it->stats < 0) {   /* never called by the forward: plain RTN (s = 1) */
      for (int c = 0; c < it->l->in; c++)
        s[c] = 1.f;
      note (j->sum, "awq: %s saw no calibration input; round to nearest", it->l->name);
    } else {
      st = awq_search_group (j, group, n, NULL, 0, s, err);
    }
    for (int k = 0; k < n && !st; k++) {
      group[k]->colscale = dup_floats (s, (size_t) it->l->in);
      group[k]->explicit_scale = it->stats >= 0;
      group[k]->awq_done = true;
      if (it->stats >= 0) {
        j->sum->n_awq_explicit++;
        if (!j->o->awq_no_fold)
          note (j->sum, "awq: %s keeps explicit input scales (no fold available)",
                group[k]->l->name);
      }
    }
    free (s);
  }
  for (int p = 0; p < np; p++) {
    free (plans[p].s);
    free (plans[p].tie);
  }
  free (plans);
  return st;
}

/* ---- quantizing one item ---- */

static SutraStatus
quantize_item (Job *j, Item *it, SutraError *err)
{
  SutraLinear *l = it->l;
  const SutraQuantParams *p = &j->o->params;
  SutraQWeight *q = NULL;
  SutraStatus st = ensure_f32 (&j->jr, l, err);    /* the quantizers read f32 rows */
  if (st)
    return st;
  if (p->method == SUTRA_QMETHOD_AWQ) {
    /* llm-awq's clipping search, except on the attention query/key projections whose errors
     * the softmax amplifies (AutoAWQ's avoid_clipping list) */
    const char *last = strrchr (l->name, '.');
    last = last ? last + 1 : l->name;
    bool clip = it->stats >= 0 && strcmp (last, "q_proj") && strcmp (last, "k_proj");
    st = sutra_awq_quantize (l->w, l->out, l->in, it->colscale, it->explicit_scale,
                             clip ? &j->stats[it->stats] : NULL, p, &q, err);
  } else if (p->method == SUTRA_QMETHOD_GPTQ && it->stats >= 0) {
    SutraGptqOptions go = { j->o->gptq_damp, 0, j->o->cancel };
    st = sutra_gptq_quantize (l->w, l->out, l->in, &j->stats[it->stats], p, &go, &q, err);
    if (st == SUTRA_ERR_CANCELLED)
      st = cancelled_error (err);
  } else {
    if (p->method == SUTRA_QMETHOD_GPTQ)
      note (j->sum, "gptq: %s saw no calibration input; round to nearest", l->name);
    st = sutra_qweight_quantize (l->w, l->out, l->in, p, &q, err);
  }
  if (st) {
    if (st != SUTRA_ERR_CANCELLED)
      sutra_error_prefix (err, "%s", l->name);
    return st;
  }
  set_linear_qw (&j->jr, l, q);
  j->sum->n_quantized++;
  return SUTRA_OK;
}

/* estimated statistics bytes of items [i0, i1) (without sharing) */
static size_t
stats_bytes (const Job *j, int i0, int i1)
{
  size_t b = 0;
  for (int i = i0; i < i1; i++) {
    size_t in = (size_t) j->items[i].l->in;
    b += in * in * sizeof (float) + in * sizeof (double);
  }
  return b;
}

SutraStatus
sutra_model_quantize (SutraModel *m, const SutraQuantizeOptions *o, SutraQuantizeSummary *sum,
                      SutraError *err)
{
  SutraQuantizeSummary local;
  if (!sum)
    sum = &local;
  memset (sum, 0, sizeof *sum);
  SutraStatus st = sutra_quant_params_check (&o->params, err);
  if (st)
    return st;
  const SutraQuantMethod method = o->params.method;
  bool calib = method != SUTRA_QMETHOD_RTN;
  if (calib && (!o->calib || o->n_calib <= 0))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "%s needs calibration data (token batches)",
                            sutra_quant_method_name (method));
  if (m->train_mode == SUTRA_TRAIN_FULL)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "the model is set up for full fine-tuning; "
                            "load it again to quantize");
  for (size_t i = 0; i < m->n_linears; i++)
    if (m->linears[i]->lora)
      return sutra_error_set (err, SUTRA_ERR_INVALID, "%s has a LoRA adapter attached: merge or "
                              "detach adapters before quantizing the model", m->linears[i]->name);
  struct timespec t0;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  sum->bytes_before = sutra_model_weight_bytes (m);
  Job j = { .m = m, .o = o, .sum = sum, .calibrate = calib };
  /* the linears to quantize, in registry (forward) order, grouped by layer */
  j.items = sutra_xcalloc (m->n_linears ? m->n_linears : 1, sizeof (Item));
  for (size_t i = 0; i < m->n_linears; i++) {
    SutraLinear *l = m->linears[i];
    /* the output head: "lm_head" (Llama, Mamba), "head" (RWKV-4), or tied to the embeddings */
    bool head = !strcmp (l->name, "lm_head") || !strcmp (l->name, "head") || l == m->tied_linear;
    if (l->qw || (head && !o->quantize_lm_head) || (!l->w && !l->w16))
      continue;
    j.items[j.n_items++] = (Item) { .l = l, .layer = layer_of (l->name), .stats = -1 };
  }
  /* stable sort by layer (registry order inside a layer) */
  for (int a = 1; a < j.n_items; a++)
    for (int b = a; b > 0 && j.items[b - 1].layer > j.items[b].layer; b--) {
      Item t = j.items[b];
      j.items[b] = j.items[b - 1];
      j.items[b - 1] = t;
    }
  /* windows of whole layers */
  size_t budget = o->stats_budget ? o->stats_budget : (size_t) 1 << 30;
  int *wstart = sutra_xmalloc (sizeof (int) * (size_t) (j.n_items + 1)), nw = 0;
  for (int i = 0; i < j.n_items;) {
    int e = i;
    while (e < j.n_items && j.items[e].layer == j.items[i].layer)
      e++;
    bool grow = nw > 0 && calib && !(method == SUTRA_QMETHOD_GPTQ && !o->gptq_one_pass) &&
                stats_bytes (&j, wstart[nw - 1], e) <= budget;
    if (!calib && nw > 0)
      grow = true;                         /* no statistics: one window */
    if (!grow)
      wstart[nw++] = i;
    i = e;
  }
  wstart[nw] = j.n_items;
  j.units_total = j.n_items + (calib ? nw * o->n_calib : 0);
  if (calib)
    for (int b = 0; b < o->n_calib; b++)
      sum->calib_tokens += (int64_t) o->calib[b].B * o->calib[b].T;
  for (int w = 0; w < nw && !st; w++) {
    int i0 = wstart[w], i1 = wstart[w + 1];
    if (calib)
      st = calibrate (&j, i0, i1, err);
    if (!st && method == SUTRA_QMETHOD_AWQ)
      st = awq_window (&j, i0, i1, err);
    for (int i = i0; i < i1 && !st; i++) {
      if (is_cancelled (&j)) {
        st = cancelled_error (err);
        break;
      }
      st = quantize_item (&j, &j.items[i], err);
      j.units_done++;
      j.tensors_done++;
      if (!st && !progress (&j, SUTRA_QPHASE_QUANTIZE, j.tensors_done, j.n_items,
                            j.items[i].l->name))
        st = cancelled_error (err);
    }
    free_stats (&j);
  }
  if (st) {
    journal_rollback (&j.jr);
  } else {
    journal_commit (&j.jr);
    /* a quantized tied head is a separate tensor now */
    if (m->tied_linear && m->tied_linear->qw) {
      m->tied_linear = NULL;
      m->tied_param = NULL;
    }
  }
  for (int i = 0; i < j.n_items; i++)
    sutra_aligned_free (j.items[i].colscale);
  journal_free (&j.jr);
  free (j.items);
  free (wstart);
  if (!st) {
    struct timespec t1;
    clock_gettime (CLOCK_MONOTONIC, &t1);
    sum->seconds = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    sum->bytes_after = sutra_model_weight_bytes (m);
  }
  return st;
}
