/* sutra-sampler.c: penalties, greedy, temperature / top-k / top-p / min-p and a seeded draw,
 * in transformers' order (see sutra-sampler.h). Every buffer is sized to the vocabulary once,
 * in sutra_sampler_new. */
#include "sutra-sampler.h"
#include "sutra-rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CANDIDATE_WINDOW 50.0f   /* nats below the max scaled logit that can still be drawn */

struct SutraSampler {
  int V;
  SutraSamplerParams p;
  uint64_t rng[4];               /* xoshiro256** state */
  /* tokens seen (prompt + generated) for the repetition penalty */
  uint8_t *seen;                 /* [V] */
  int *seen_list, n_seen;        /* [V] distinct seen ids */
  /* generated-token counts for frequency / presence penalties */
  int *count;                    /* [V] */
  int *gen_list, n_gen;          /* [V] distinct generated ids */
  /* candidates */
  int *cand;                     /* [V] ids */
  float *val;                    /* [V] scaled logits of the candidates */
  float *sel;                    /* [V] scratch for the k-th largest */
  double *prob;                  /* [V] candidate probabilities */
  int n_cand;
};

void
sutra_sampler_params_init (SutraSamplerParams *p)
{
  memset (p, 0, sizeof *p);
  p->do_sample = false;
  p->temperature = 1.f;
  p->top_k = 50;
  p->top_p = 1.f;
  p->min_p = 0.f;
  p->repetition_penalty = 1.f;
}

SutraStatus
sutra_sampler_params_check (const SutraSamplerParams *p, SutraError *err)
{
  if (!(p->temperature > 0.f) || !isfinite (p->temperature))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "temperature must be > 0, got %g (use greedy "
                            "decoding for temperature 0)", p->temperature);
  if (p->top_k < 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "top_k must be >= 0, got %d", p->top_k);
  if (!(p->top_p > 0.f && p->top_p <= 1.f))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "top_p must be in (0, 1], got %g", p->top_p);
  if (!(p->min_p >= 0.f && p->min_p < 1.f))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "min_p must be in [0, 1), got %g", p->min_p);
  if (!(p->repetition_penalty > 0.f) || !isfinite (p->repetition_penalty))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "repetition_penalty must be > 0, got %g",
                            p->repetition_penalty);
  if (!isfinite (p->frequency_penalty) || !isfinite (p->presence_penalty))
    return sutra_error_set (err, SUTRA_ERR_INVALID, "frequency/presence penalties must be finite");
  return SUTRA_OK;
}

/* splitmix64 seeds xoshiro256** (Blackman & Vigna, https://prng.di.unimi.it/) */
static inline uint64_t
rotl (uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

static uint64_t
xoshiro_next (uint64_t *s)
{
  uint64_t r = rotl (s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl (s[3], 45);
  return r;
}

double
sutra_sampler_uniform (SutraSampler *s)
{
  return (double) (xoshiro_next (s->rng) >> 11) * 0x1.0p-53;
}

void
sutra_sampler_reset (SutraSampler *s, const SutraSamplerParams *p)
{
  s->p = *p;
  uint64_t x = p->seed;
  for (int i = 0; i < 4; i++)
    s->rng[i] = sutra_splitmix64 (&x);
  for (int i = 0; i < s->n_seen; i++)
    s->seen[s->seen_list[i]] = 0;
  for (int i = 0; i < s->n_gen; i++)
    s->count[s->gen_list[i]] = 0;
  s->n_seen = s->n_gen = 0;
}

SutraStatus
sutra_sampler_new (int vocab_size, const SutraSamplerParams *p, SutraSampler **out, SutraError *err)
{
  if (vocab_size <= 0)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "sampler: vocabulary size %d", vocab_size);
  SutraStatus st = sutra_sampler_params_check (p, err);
  if (st)
    return st;
  SutraSampler *s = sutra_xcalloc (1, sizeof *s);
  size_t V = (size_t) vocab_size;
  s->V = vocab_size;
  s->seen = sutra_xcalloc (V, 1);
  s->seen_list = sutra_xmalloc (V * sizeof (int));
  s->count = sutra_xcalloc (V, sizeof (int));
  s->gen_list = sutra_xmalloc (V * sizeof (int));
  s->cand = sutra_xmalloc (V * sizeof (int));
  s->val = sutra_xmalloc (V * sizeof (float));
  s->sel = sutra_xmalloc (V * sizeof (float));
  s->prob = sutra_xmalloc (V * sizeof (double));
  sutra_sampler_reset (s, p);
  *out = s;
  return SUTRA_OK;
}

void
sutra_sampler_free (SutraSampler *s)
{
  if (!s)
    return;
  free (s->seen);
  free (s->seen_list);
  free (s->count);
  free (s->gen_list);
  free (s->cand);
  free (s->val);
  free (s->sel);
  free (s->prob);
  free (s);
}

static void
mark_seen (SutraSampler *s, int id)
{
  if (!s->seen[id]) {
    s->seen[id] = 1;
    s->seen_list[s->n_seen++] = id;
  }
}

void
sutra_sampler_accept_prompt (SutraSampler *s, const int *ids, int n)
{
  for (int i = 0; i < n; i++)
    if (ids[i] >= 0 && ids[i] < s->V)
      mark_seen (s, ids[i]);
}

void
sutra_sampler_accept (SutraSampler *s, int id)
{
  if (id < 0 || id >= s->V)
    return;
  mark_seen (s, id);
  if (s->count[id]++ == 0)
    s->gen_list[s->n_gen++] = id;
}

/* steps 1-2: penalties, in place */
static void
apply_penalties (SutraSampler *s, float *logits)
{
  float r = s->p.repetition_penalty;
  if (r != 1.f)
    for (int i = 0; i < s->n_seen; i++) {
      float *l = &logits[s->seen_list[i]];
      *l = *l > 0.f ? *l / r : *l * r;        /* HF: torch.where(score < 0, score * r, score / r) */
    }
  float fp = s->p.frequency_penalty, pp = s->p.presence_penalty;
  if (fp != 0.f || pp != 0.f)
    for (int i = 0; i < s->n_gen; i++) {
      int id = s->gen_list[i];
      logits[id] -= (float) s->count[id] * fp + pp;
    }
}

static int
argmax (const float *x, int n)
{
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best])              /* strict: the lowest id wins ties */
      best = i;
  return best;
}

/* k-th largest of a[0..n) (1-based k), quickselect (Hoare partition); a is permuted */
static float
kth_largest (float *a, int n, int k)
{
  int lo = 0, hi = n - 1, want = k - 1;
  while (lo < hi) {
    float pivot = a[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (a[i] > pivot)
        i++;
      while (a[j] < pivot)
        j--;
      if (i <= j) {
        float t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (want <= j)
      hi = j;
    else if (want >= i)
      lo = i;
    else
      break;
  }
  return a[want];
}

/* candidates sorted by scaled logit descending, then id ascending */
typedef struct { float v; int id; } Pair;

static int
cmp_pair (const void *a, const void *b)
{
  const Pair *x = a, *y = b;
  if (x->v != y->v)
    return x->v > y->v ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* Steps 3-6: leaves the kept tokens in cand[0..n_cand) (sorted, most likely first) with
 * normalized probabilities in prob[]. logits already carry the penalties. */
static void
filter (SutraSampler *s, float *logits)
{
  int V = s->V;
  float T = s->p.temperature;
  /* 3. temperature (TemperatureLogitsWarper: scores / T), and the window below the maximum */
  float mx = -INFINITY;
  for (int i = 0; i < V; i++) {
    if (T != 1.f)
      logits[i] /= T;
    mx = logits[i] > mx ? logits[i] : mx;
  }
  if (!(mx > -INFINITY)) {            /* every logit -inf (or NaN): fall back to the argmax */
    s->cand[0] = argmax (logits, V);
    s->prob[0] = 1.0;
    s->n_cand = 1;
    return;
  }
  int n = 0;
  float floor_v = mx - CANDIDATE_WINDOW;
  for (int i = 0; i < V; i++)
    if (logits[i] >= floor_v) {
      s->cand[n] = i;
      s->val[n++] = logits[i];
    }
  /* 4. top-k: keep values >= the k-th largest (ties kept) */
  int k = s->p.top_k;
  if (k > 0 && k < n) {
    memcpy (s->sel, s->val, sizeof (float) * (size_t) n);
    float kth = kth_largest (s->sel, n, k);
    int m = 0;
    for (int i = 0; i < n; i++)
      if (s->val[i] >= kth) {
        s->cand[m] = s->cand[i];
        s->val[m++] = s->val[i];
      }
    n = m;
  }
  /* sort the survivors (most likely first) */
  Pair *pairs = (Pair *) s->prob;     /* Pair is 8 bytes: prob[] (doubles) has room for n pairs */
  for (int i = 0; i < n; i++)
    pairs[i] = (Pair) { s->val[i], s->cand[i] };
  qsort (pairs, (size_t) n, sizeof (Pair), cmp_pair);
  for (int i = 0; i < n; i++) {
    s->cand[i] = pairs[i].id;
    s->val[i] = pairs[i].v;
  }
  /* probabilities over the survivors (softmax, max first) */
  double sum = 0;
  for (int i = 0; i < n; i++) {
    s->prob[i] = exp ((double) s->val[i] - (double) s->val[0]);
    sum += s->prob[i];
  }
  for (int i = 0; i < n; i++)
    s->prob[i] /= sum;
  /* 5. top-p: ascending cumulative mass <= 1 - p is dropped; the top token always stays */
  if (s->p.top_p < 1.f) {
    double cum = 0, limit = 1.0 - (double) s->p.top_p;
    int m = n;
    for (int i = n - 1; i >= 1; i--) {
      cum += s->prob[i];
      if (cum <= limit)
        m = i;
      else
        break;
    }
    n = m;
  }
  /* 6. min-p: drop probabilities below min_p * the top probability */
  if (s->p.min_p > 0.f) {
    double thr = (double) s->p.min_p * s->prob[0];
    int m = 1;
    while (m < n && s->prob[m] >= thr)
      m++;
    n = m;
  }
  /* renormalize what is left */
  sum = 0;
  for (int i = 0; i < n; i++)
    sum += s->prob[i];
  for (int i = 0; i < n; i++)
    s->prob[i] /= sum;
  s->n_cand = n;
}

int
sutra_sampler_sample (SutraSampler *s, float *logits)
{
  apply_penalties (s, logits);
  if (!s->p.do_sample)
    return argmax (logits, s->V);
  filter (s, logits);
  double u = sutra_sampler_uniform (s), cum = 0;
  for (int i = 0; i < s->n_cand; i++) {
    cum += s->prob[i];
    if (u < cum)
      return s->cand[i];
  }
  return s->cand[s->n_cand - 1];     /* u within rounding of 1 */
}

void
sutra_sampler_probs (SutraSampler *s, float *logits, float *probs)
{
  apply_penalties (s, logits);
  memset (probs, 0, sizeof (float) * (size_t) s->V);
  if (!s->p.do_sample) {
    probs[argmax (logits, s->V)] = 1.f;
    return;
  }
  filter (s, logits);
  for (int i = 0; i < s->n_cand; i++)
    probs[s->cand[i]] = (float) s->prob[i];
}
