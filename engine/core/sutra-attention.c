/* sutra-attention.c: causal grouped-query self-attention and rotary position embedding.
 *
 * Attention follows "Attention Is All You Need" (softmax(q k^T / sqrt(d)) v) with the causal
 * mask and grouped-query heads of GQA (Ainslie et al. 2023): query head h reads key/value head
 * h / (NH / NKV). Each (batch, head) pair is one task on the sutra pool; its score matrix is
 * one single-threaded sgemm. RoPE follows RoFormer (Su et al. 2021) in transformers'
 * rotate_half layout, with the `linear` (position interpolation) and `llama3` frequency
 * scalings as transformers' modeling_rope_utils computes them. */
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline bool
masked (const int *doc, int b, int T, int i, int j)
{
  return j > i || (doc && doc[b * T + i] != doc[b * T + j]);
}

/* ---- forward ---- */

typedef struct {
  float *out, *probs;
  const float *q, *k, *v;
  const int *doc;
  const SutraAttnDims *d;
  float *dq, *dk_all, *dv_all;   /* backward: dk/dv per thread [threads][B*T*NKV*HS] */
  const float *dout;
} AttnJob;

static void
attn_fwd_range (void *ctx, int64_t t0, int64_t t1, int ti)
{
  const AttnJob *j = ctx;
  const SutraAttnDims *d = j->d;
  int T = d->T, NH = d->NH, NKV = d->NKV, HS = d->HS;
  int group = NH / NKV;
  (void) ti;
  for (int64_t task = t0; task < t1; task++) {
    int b = (int) (task / NH), h = (int) (task % NH), g = h / group;
    const float *q = j->q + ((size_t) b * T * NH + h) * HS;      /* rows stride NH*HS */
    const float *k = j->k + ((size_t) b * T * NKV + g) * HS;     /* rows stride NKV*HS */
    const float *v = j->v + ((size_t) b * T * NKV + g) * HS;
    float *P = j->probs + ((size_t) b * NH + h) * T * T;         /* [T, T] */
    float *o = j->out + ((size_t) b * T * NH + h) * HS;
    /* S = scale * q k^T */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, d->scale, q, NH * HS, k,
                 NKV * HS, 0.f, P, T);
    for (int i = 0; i < T; i++) {
      float *row = P + (size_t) i * T;
      float m = -INFINITY;
      for (int jj = 0; jj < T; jj++) {
        if (masked (j->doc, b, T, i, jj))
          row[jj] = -INFINITY;
        else if (row[jj] > m)
          m = row[jj];
      }
      float sum = 0.f;
      for (int jj = 0; jj < T; jj++) {
        float e = row[jj] == -INFINITY ? 0.f : expf (row[jj] - m);
        row[jj] = e;
        sum += e;
      }
      float inv = 1.f / sum;   /* the diagonal is never masked, so sum >= 1 */
      for (int jj = 0; jj < T; jj++)
        row[jj] *= inv;
    }
    /* out = P v */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.f, P, T, v, NKV * HS, 0.f,
                 o, NH * HS);
  }
}

void
sutra_attention_forward (float *out, float *probs, const float *q, const float *k, const float *v,
                         const int *doc, const SutraAttnDims *d)
{
  SUTRA_ASSERT (d->NKV > 0 && d->NH % d->NKV == 0);
  AttnJob j = { .out = out, .probs = probs, .q = q, .k = k, .v = v, .doc = doc, .d = d };
  sutra_parallel_for ((int64_t) d->B * d->NH, 1, attn_fwd_range, &j);
}

void
sutra_attention_forward_naive (float *out, float *probs, const float *q, const float *k,
                               const float *v, const int *doc, const SutraAttnDims *d)
{
  int B = d->B, T = d->T, NH = d->NH, NKV = d->NKV, HS = d->HS, group = NH / NKV;
  for (int b = 0; b < B; b++)
    for (int h = 0; h < NH; h++) {
      int g = h / group;
      for (int i = 0; i < T; i++) {
        float *P = probs + (((size_t) b * NH + h) * T + i) * T;
        const float *qi = q + (((size_t) b * T + i) * NH + h) * HS;
        double m = -INFINITY;
        for (int jj = 0; jj < T; jj++) {
          if (masked (doc, b, T, i, jj)) {
            P[jj] = 0.f;
            continue;
          }
          const float *kj = k + (((size_t) b * T + jj) * NKV + g) * HS;
          double s = 0;
          for (int c = 0; c < HS; c++)
            s += (double) qi[c] * kj[c];
          P[jj] = (float) (s * d->scale);
          if (P[jj] > m)
            m = P[jj];
        }
        double sum = 0;
        for (int jj = 0; jj <= i; jj++)
          if (!masked (doc, b, T, i, jj))
            sum += exp (P[jj] - m);
        for (int jj = 0; jj < T; jj++)
          P[jj] = masked (doc, b, T, i, jj) ? 0.f : (float) (exp (P[jj] - m) / sum);
        float *oi = out + (((size_t) b * T + i) * NH + h) * HS;
        for (int c = 0; c < HS; c++) {
          double acc = 0;
          for (int jj = 0; jj < T; jj++)
            acc += (double) P[jj] * v[(((size_t) b * T + jj) * NKV + g) * HS + c];
          oi[c] = (float) acc;
        }
      }
    }
}

/* ---- backward ---- */

static void
attn_bwd_range (void *ctx, int64_t t0, int64_t t1, int ti)
{
  const AttnJob *j = ctx;
  const SutraAttnDims *d = j->d;
  int T = d->T, NH = d->NH, NKV = d->NKV, HS = d->HS, B = d->B;
  int group = NH / NKV;
  size_t kv_size = (size_t) B * T * NKV * HS;
  float *dk_t = j->dk_all + (size_t) ti * kv_size;
  float *dv_t = j->dv_all + (size_t) ti * kv_size;
  float *dP = sutra_thread_scratch (0, (size_t) T * T);
  for (int64_t task = t0; task < t1; task++) {
    int b = (int) (task / NH), h = (int) (task % NH), g = h / group;
    size_t qoff = ((size_t) b * T * NH + h) * HS, kvoff = ((size_t) b * T * NKV + g) * HS;
    const float *q = j->q + qoff, *k = j->k + kvoff, *v = j->v + kvoff;
    const float *dout = j->dout + qoff;
    const float *P = j->probs + ((size_t) b * NH + h) * T * T;
    /* dv += P^T dout */
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.f, P, T, dout, NH * HS, 1.f,
                 dv_t + kvoff, NKV * HS);
    /* dP = dout v^T */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.f, dout, NH * HS, v, NKV * HS,
                 0.f, dP, T);
    /* dS = P * (dP - rowsum(dP * P)) * scale (softmax backward; masked entries have P = 0) */
    for (int i = 0; i < T; i++) {
      const float *p = P + (size_t) i * T;
      float *r = dP + (size_t) i * T;
      float dot = 0.f;
      for (int jj = 0; jj <= i; jj++)
        dot += p[jj] * r[jj];
      for (int jj = 0; jj < T; jj++)
        r[jj] = jj <= i ? p[jj] * (r[jj] - dot) * d->scale : 0.f;
    }
    /* dq += dS k ; dk += dS^T q */
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.f, dP, T, k, NKV * HS, 1.f,
                 j->dq + qoff, NH * HS);
    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.f, dP, T, q, NH * HS, 1.f,
                 dk_t + kvoff, NKV * HS);
  }
}

void
sutra_attention_backward (float *dq, float *dk, float *dv, const float *dout, const float *probs,
                          const float *q, const float *k, const float *v, const SutraAttnDims *d)
{
  int threads = sutra_get_threads ();
  size_t kv_size = (size_t) d->B * d->T * d->NKV * d->HS;
  /* per-thread dk/dv so that heads of one group on different threads never race */
  size_t need = (size_t) threads * kv_size * 2;
  float *bufs = sutra_thread_scratch (1, need);
  memset (bufs, 0, need * sizeof (float));
  AttnJob j = { .probs = (float *) probs, .q = q, .k = k, .v = v, .d = d, .dq = dq,
                .dk_all = bufs, .dv_all = bufs + (size_t) threads * kv_size, .dout = dout };
  sutra_parallel_for ((int64_t) d->B * d->NH, 1, attn_bwd_range, &j);
  for (int t = 0; t < threads; t++) {
    sutra_accumulate (dk, j.dk_all + (size_t) t * kv_size, (int64_t) kv_size);
    sutra_accumulate (dv, j.dv_all + (size_t) t * kv_size, (int64_t) kv_size);
  }
}

/* ---- rotary position embedding ---- */

void
sutra_rope_inv_freq (double *inv_freq, const SutraRope *rope)
{
  int half = rope->rot_dim / 2;
  for (int i = 0; i < half; i++) {
    /* inv_freq_i = theta^(-2i/d) */
    double f = 1.0 / pow (rope->theta, (2.0 * i) / rope->rot_dim);
    switch (rope->type) {
    case SUTRA_ROPE_DEFAULT:
      break;
    case SUTRA_ROPE_LINEAR:   /* position interpolation: positions divided by factor */
      f /= rope->factor;
      break;
    case SUTRA_ROPE_LLAMA3: {
      /* low frequencies (long wavelengths) are slowed by factor, high ones kept, and a
       * smooth ramp in between (transformers _compute_llama3_parameters) */
      double low_wavelen = rope->original_max_position / rope->low_freq_factor;
      double high_wavelen = rope->original_max_position / rope->high_freq_factor;
      double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen)
        f = f / rope->factor;
      else if (wavelen >= high_wavelen) {
        double smooth = (rope->original_max_position / wavelen - rope->low_freq_factor) /
                        (rope->high_freq_factor - rope->low_freq_factor);
        f = (1.0 - smooth) * f / rope->factor + smooth * f;
      }
      break;
    }
    }
    inv_freq[i] = f;
  }
}

void
sutra_rope_table (float *cos_t, float *sin_t, const int *pos, int T, const double *inv_freq,
                  int half)
{
  for (int t = 0; t < T; t++)
    for (int i = 0; i < half; i++) {
      double a = (double) pos[t] * inv_freq[i];
      cos_t[(size_t) t * half + i] = (float) cos (a);
      sin_t[(size_t) t * half + i] = (float) sin (a);
    }
}

static void
rope_apply (float *x, const float *cos_t, const float *sin_t, int T, int NH, int HS, int half,
            float sign)
{
  for (int t = 0; t < T; t++) {
    const float *c = cos_t + (size_t) t * half, *s = sin_t + (size_t) t * half;
    for (int h = 0; h < NH; h++) {
      float *x1 = x + ((size_t) t * NH + h) * HS, *x2 = x1 + half;
      for (int i = 0; i < half; i++) {
        float a = x1[i], b = x2[i], si = sign * s[i];
        x1[i] = a * c[i] - b * si;
        x2[i] = b * c[i] + a * si;
      }
    }
  }
}

void
sutra_rope_forward (float *x, const float *cos_t, const float *sin_t, int T, int NH, int HS,
                    int half)
{
  rope_apply (x, cos_t, sin_t, T, NH, HS, half, 1.f);
}

void
sutra_rope_backward (float *dx, const float *cos_t, const float *sin_t, int T, int NH, int HS,
                     int half)
{
  /* the Jacobian of a rotation is the rotation; its transpose rotates by -angle */
  rope_apply (dx, cos_t, sin_t, T, NH, HS, half, -1.f);
}
