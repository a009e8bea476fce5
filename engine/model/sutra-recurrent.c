/* sutra-recurrent.c: the recurrences of the recurrent architectures over a range of channels,
 * forward and backward: RWKV-4's WKV and Mamba's selective scan. The _naive versions are the
 * scalar reference; the others run 8 channels per AVX2/FMA vector when the CPU has it (same
 * formulas, same exp polynomial) and fall back to _naive for the rest.
 *
 * WKV (RWKV-4, BlinkDL's stable form as in transformers' rwkv_linear_attention_cpu and
 * rwkv.cpp), per channel with state (aa, bb, pp), initial (0, 0, -1e38):
 *   out:    q = max(pp, u+k); e1 = e^(pp-q); e2 = e^(u+k-q); wkv = (e1 aa + e2 v)/(e1 bb + e2)
 *   state:  q = max(pp+w, k); e1 = e^(pp+w-q); e2 = e^(k-q); aa = e1 aa + e2 v; bb = e1 bb + e2;
 *           pp = q
 * Backward: with the unscaled sums A_t = e^w A_{t-1} + e^{k_t} v_t, B_t = e^w B_{t-1} + e^{k_t},
 * E_t = e^{u+k_t}, D_t = B_{t-1} + E_t, y_t = (A_{t-1} + E_t v_t)/D_t and adjoints
 * LA_t = dL/dA_t, LB_t = dL/dB_t (zero after a segment's last position):
 *   LA_{t-1} = g_t/D_t + e^w LA_t,         LB_{t-1} = -g_t y_t/D_t + e^w LB_t
 *   dv_t = g_t E_t/D_t + LA_t e^{k_t}
 *   dk_t = g_t (v_t - y_t) E_t/D_t + (LA_t v_t + LB_t) e^{k_t}
 *   du  += g_t (v_t - y_t) E_t/D_t ;  dw += e^w (LA_t A_{t-1} + LB_t B_{t-1})
 * computed scaled like the forward: D_t = den e^q (den = e1 bb + e2 >= 1), E_t/D_t = e2/den,
 * A_{t-1} = aa e^pp, and LA_t = la e^z, LB_t = lb e^z with a running max
 *   z' = max(-q, w + z); la' = e^(-q-z') g/den + e^(w+z-z') la (lb' likewise).
 * Since pp_t = max_{i<=t} ((t-i) w + k_i), the exponents z + k and w + z + pp are <= 0: no
 * exponential overflows for any |k|.
 *
 * Selective scan (Mamba, ZOH as transformers' slow_forward), per channel c with state s [S]:
 *   s_t = a_t s_{t-1} + dt_t u_t B_t,  a_t = exp(dt_t A_c),  y_t = <s_t, C_t> + D_c u_t
 * Backward (recomputing s_t and a_t of 8 channels over the row; memory T x S x 8 per thread):
 *   mu_t = dL/ds_t = g_t C_t + a_{t+1} mu_{t+1}
 *   dC_t += g_t s_t ; dB_t += mu_t dt_t u_t ; du_t += g_t D + dt_t <mu_t, B_t>
 *   d dt_t = <mu_t s_{t-1} a_t, A> + u_t <mu_t, B_t> ; dA += mu_t s_{t-1} a_t dt_t ;
 *   dD += g_t u_t */
#include "sutra-recurrent-private.h"
#include "sutra-dtype.h"
#include "sutra-pool.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define PP_INIT (-1e38f)          /* transformers' initial max state (rwkv.cpp: -1e30) */

/* ------------------------------------------------------------------------------------------ */
/* WKV, scalar                                                                                */
/* ------------------------------------------------------------------------------------------ */

void
sutra_wkv_forward_naive (const SutraWkvArgs *j, int c0, int c1)
{
  int nc = c1 - c0, A = j->A;
  if (nc <= 0)
    return;
  float *st = sutra_thread_scratch (6, 3 * (size_t) nc);
  float *aa = st, *bb = st + nc, *pp = st + 2 * nc;
  const float *w = j->w + c0, *u = j->u + c0;
  for (int b = 0; b < j->B; b++) {
    for (int t = 0; t < j->T; t++) {
      size_t n = (size_t) b * j->T + t;
      if (t == j->seg[n]) {
        if (j->state && t == 0) {
          memcpy (aa, j->state + c0, sizeof (float) * (size_t) nc);
          memcpy (bb, j->state + A + c0, sizeof (float) * (size_t) nc);
          memcpy (pp, j->state + 2 * A + c0, sizeof (float) * (size_t) nc);
        } else {
          for (int i = 0; i < nc; i++) {
            aa[i] = bb[i] = 0.f;
            pp[i] = PP_INIT;
          }
        }
      }
      const float *k = j->k + n * A + c0, *v = j->v + n * A + c0;
      float *y = j->y + n * A + c0;
      if (j->sa) {
        memcpy (j->sa + n * A + c0, aa, sizeof (float) * (size_t) nc);
        memcpy (j->sb + n * A + c0, bb, sizeof (float) * (size_t) nc);
        memcpy (j->sp + n * A + c0, pp, sizeof (float) * (size_t) nc);
      }
      for (int i = 0; i < nc; i++) {
        float uk = u[i] + k[i];
        float q = pp[i] > uk ? pp[i] : uk;
        float e1 = sutra_rnn_exp (pp[i] - q), e2 = sutra_rnn_exp (uk - q);
        y[i] = (e1 * aa[i] + e2 * v[i]) / (e1 * bb[i] + e2);
        float pw = pp[i] + w[i];
        float q2 = pw > k[i] ? pw : k[i];
        float f1 = sutra_rnn_exp (pw - q2), f2 = sutra_rnn_exp (k[i] - q2);
        aa[i] = f1 * aa[i] + f2 * v[i];
        bb[i] = f1 * bb[i] + f2;
        pp[i] = q2;
      }
    }
    if (j->state) {   /* B == 1 */
      memcpy (j->state + c0, aa, sizeof (float) * (size_t) nc);
      memcpy (j->state + A + c0, bb, sizeof (float) * (size_t) nc);
      memcpy (j->state + 2 * A + c0, pp, sizeof (float) * (size_t) nc);
    }
  }
}

void
sutra_wkv_backward_naive (const SutraWkvArgs *j, int c0, int c1)
{
  int nc = c1 - c0, A = j->A;
  if (nc <= 0)
    return;
  /* la, lb, z [nc] floats, then du, dw accumulators [nc] doubles (8-byte aligned) */
  float *st = sutra_thread_scratch (7, 4 + 7 * (size_t) nc);
  float *la = st, *lb = st + nc, *z = st + 2 * nc;
  double *acc_u = (double *) (st + ((3 * (size_t) nc + 1) & ~(size_t) 1)), *acc_w = acc_u + nc;
  const float *w = j->w + c0, *u = j->u + c0;
  for (int i = 0; i < nc; i++)
    acc_u[i] = acc_w[i] = 0.0;
  for (int b = 0; b < j->B; b++) {
    for (int i = 0; i < nc; i++) {
      la[i] = lb[i] = 0.f;
      z[i] = PP_INIT;
    }
    for (int t = j->T - 1; t >= 0; t--) {
      size_t n = (size_t) b * j->T + t, o = n * A + c0;
      const float *k = j->k + o, *v = j->v + o, *y = j->y + o, *g = j->gy + o;
      const float *aa = j->sa + o, *bb = j->sb + o, *pp = j->sp + o;
      float *dk = j->dk + o, *dv = j->dv + o;
      for (int i = 0; i < nc; i++) {
        float uk = u[i] + k[i];
        float q = pp[i] > uk ? pp[i] : uk;
        float e1 = sutra_rnn_exp (pp[i] - q), e2 = sutra_rnn_exp (uk - q);
        float gd = g[i] / (e1 * bb[i] + e2);           /* g / den */
        float t1 = gd * e2;                             /* g E / D */
        float tu = t1 * (v[i] - y[i]);
        float ek = sutra_rnn_exp (z[i] + k[i]);         /* e^k scaled by e^z */
        dv[i] = t1 + la[i] * ek;
        dk[i] = tu + (la[i] * v[i] + lb[i]) * ek;
        acc_u[i] += tu;
        acc_w[i] += (la[i] * aa[i] + lb[i] * bb[i]) * sutra_rnn_exp (w[i] + z[i] + pp[i]);
        float mq = -q, wz = w[i] + z[i];
        float nz = mq > wz ? mq : wz;
        float f1 = sutra_rnn_exp (mq - nz), f2 = sutra_rnn_exp (wz - nz);
        la[i] = f1 * gd + f2 * la[i];
        lb[i] = -f1 * gd * y[i] + f2 * lb[i];
        z[i] = nz;
      }
      if (t == j->seg[n])   /* a segment start: nothing earlier depends on this one's state */
        for (int i = 0; i < nc; i++) {
          la[i] = lb[i] = 0.f;
          z[i] = PP_INIT;
        }
    }
  }
  for (int i = 0; i < nc; i++) {
    if (j->du)
      j->du[c0 + i] += (float) acc_u[i];
    if (j->dw)
      j->dw[c0 + i] += (float) acc_w[i];
  }
}

/* ------------------------------------------------------------------------------------------ */
/* selective scan, scalar                                                                     */
/* ------------------------------------------------------------------------------------------ */

void
sutra_ssm_scan_forward_naive (const SutraScanArgs *j, int c0, int c1)
{
  int nc = c1 - c0, S = j->S, I = j->I;
  if (nc <= 0)
    return;
  float *s = sutra_thread_scratch (6, (size_t) nc * S);
  for (int b = 0; b < j->B; b++) {
    for (int t = 0; t < j->T; t++) {
      size_t n = (size_t) b * j->T + t;
      if (t == j->seg[n]) {
        if (j->state && t == 0)
          memcpy (s, j->state + (size_t) c0 * S, sizeof (float) * (size_t) nc * S);
        else
          memset (s, 0, sizeof (float) * (size_t) nc * S);
      }
      const float *Bt = j->dbc + n * j->ldb + j->R, *Ct = Bt + S;
      for (int i = 0; i < nc; i++) {
        size_t c = (size_t) c0 + i;
        float d = j->delta[n * I + c], uu = j->u[n * I + c], du = d * uu, acc = 0.f;
        float *sc = s + (size_t) i * S;
        for (int k = 0; k < S; k++) {
          sc[k] = sutra_rnn_exp (d * j->At[(size_t) k * I + c]) * sc[k] + du * Bt[k];
          acc += sc[k] * Ct[k];
        }
        j->y[n * I + c] = acc + j->D[c] * uu;
      }
    }
    if (j->state)
      memcpy (j->state + (size_t) c0 * S, s, sizeof (float) * (size_t) nc * S);
  }
}

void
sutra_ssm_scan_backward_naive (const SutraScanArgs *j, int c0, int c1, float *partials)
{
  int S = j->S, I = j->I, T = j->T;
  const int L = SUTRA_SCAN_LANES;
  if (c1 <= c0)
    return;
  SUTRA_ASSERT (!j->state);
  /* per channel: states s_t and decays a_t over the row [T, S], then mu [S], lam [S] */
  float *buf = sutra_thread_scratch (7, 2 * (size_t) T * S + 2 * (size_t) S);
  float *st = buf, *at = buf + (size_t) T * S, *lam = at + (size_t) T * S;
  for (int c = c0; c < c1; c++) {
    for (int b = 0; b < j->B; b++) {
      for (int t = 0; t < T; t++) {
        size_t n = (size_t) b * T + t;
        const float *Bt = j->dbc + n * j->ldb + j->R;
        float d = j->delta[n * I + c], du = d * j->u[n * I + c];
        bool start = t == j->seg[n];
        for (int k = 0; k < S; k++) {
          float a = sutra_rnn_exp (d * j->At[(size_t) k * I + c]);
          at[(size_t) t * S + k] = a;
          st[(size_t) t * S + k] = (start ? 0.f : a * st[(size_t) (t - 1) * S + k]) + du * Bt[k];
        }
      }
      memset (lam, 0, sizeof (float) * (size_t) S);
      float dD = 0.f;
      for (int t = T - 1; t >= 0; t--) {
        size_t n = (size_t) b * T + t, o = n * I + c;
        const float *Bt = j->dbc + n * j->ldb + j->R, *Ct = Bt + S;
        float *part = partials + n * 2 * S * L;
        bool start = t == j->seg[n];
        float g = j->gy[o], d = j->delta[o], uu = j->u[o], dd = 0.f, mb = 0.f;
        for (int k = 0; k < S; k++) {
          float s = st[(size_t) t * S + k], a = at[(size_t) t * S + k];
          float sp = start ? 0.f : st[(size_t) (t - 1) * S + k];
          float mu = lam[k] + g * Ct[k];                 /* dL/ds_t */
          part[(size_t) (S + k) * L] += g * s;            /* dC_t */
          part[(size_t) k * L] += mu * d * uu;            /* dB_t */
          mb += mu * Bt[k];
          float da = mu * sp * a;                         /* dL/da_t * a_t */
          float A = j->At[(size_t) k * I + c];
          dd += da * A;
          if (j->dA)
            j->dA[(size_t) c * S + k] += da * d;
          lam[k] = start ? 0.f : a * mu;
        }
        j->du[o] += g * j->D[c] + d * mb;
        j->ddelta[o] = dd + uu * mb;
        dD += g * uu;
      }
      if (j->dD)
        j->dD[c] += dD;
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* AVX2 / FMA                                                                                 */
/* ------------------------------------------------------------------------------------------ */

#define AVX2 __attribute__ ((target ("avx2,fma")))

/* e^x for x <= 0 (0 below -87.3): the scalar sutra_rnn_exp, 8 lanes */
AVX2 static inline __m256
exp8 (__m256 x)
{
  const __m256 lo = _mm256_set1_ps (-87.3f);
  __m256 xc = _mm256_min_ps (_mm256_max_ps (x, lo), _mm256_setzero_ps ());
  __m256 fn = _mm256_round_ps (_mm256_mul_ps (xc, _mm256_set1_ps (1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps (fn, _mm256_set1_ps (0.693359375f), xc);
  r = _mm256_fnmadd_ps (fn, _mm256_set1_ps (-2.12194440e-4f), r);
  __m256 r2 = _mm256_mul_ps (r, r);
  __m256 p = _mm256_set1_ps (1.9875691500e-4f);
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.3981999507e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (8.3334519073e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (4.1665795894e-2f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.6666665459e-1f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (5.0000001201e-1f));
  p = _mm256_fmadd_ps (p, r2, _mm256_add_ps (r, _mm256_set1_ps (1.f)));
  __m256i n = _mm256_add_epi32 (_mm256_cvtps_epi32 (fn), _mm256_set1_epi32 (127));
  __m256 two = _mm256_castsi256_ps (_mm256_slli_epi32 (n, 23));
  __m256 y = _mm256_mul_ps (p, two);
  return _mm256_and_ps (y, _mm256_cmp_ps (x, lo, _CMP_GE_OQ));
}

AVX2 static void
wkv_forward_avx2 (const SutraWkvArgs *j, int c0, int c1)
{
  int nc = c1 - c0, A = j->A;
  float *st = sutra_thread_scratch (6, 3 * (size_t) nc);
  float *aa = st, *bb = st + nc, *pp = st + 2 * nc;
  for (int b = 0; b < j->B; b++) {
    for (int t = 0; t < j->T; t++) {
      size_t n = (size_t) b * j->T + t;
      if (t == j->seg[n]) {
        if (j->state && t == 0) {
          memcpy (aa, j->state + c0, sizeof (float) * (size_t) nc);
          memcpy (bb, j->state + A + c0, sizeof (float) * (size_t) nc);
          memcpy (pp, j->state + 2 * A + c0, sizeof (float) * (size_t) nc);
        } else {
          for (int i = 0; i < nc; i++) {
            aa[i] = bb[i] = 0.f;
            pp[i] = PP_INIT;
          }
        }
      }
      size_t o = n * A + c0;
      if (j->sa) {
        memcpy (j->sa + o, aa, sizeof (float) * (size_t) nc);
        memcpy (j->sb + o, bb, sizeof (float) * (size_t) nc);
        memcpy (j->sp + o, pp, sizeof (float) * (size_t) nc);
      }
      for (int i = 0; i < nc; i += 8) {
        __m256 k = _mm256_loadu_ps (j->k + o + i), v = _mm256_loadu_ps (j->v + o + i);
        __m256 u = _mm256_loadu_ps (j->u + c0 + i), w = _mm256_loadu_ps (j->w + c0 + i);
        __m256 x = _mm256_loadu_ps (aa + i), y = _mm256_loadu_ps (bb + i);
        __m256 p = _mm256_loadu_ps (pp + i);
        __m256 uk = _mm256_add_ps (u, k), q = _mm256_max_ps (p, uk);
        __m256 e1 = exp8 (_mm256_sub_ps (p, q)), e2 = exp8 (_mm256_sub_ps (uk, q));
        __m256 num = _mm256_fmadd_ps (e1, x, _mm256_mul_ps (e2, v));
        __m256 den = _mm256_fmadd_ps (e1, y, e2);
        _mm256_storeu_ps (j->y + o + i, _mm256_div_ps (num, den));
        __m256 pw = _mm256_add_ps (p, w), q2 = _mm256_max_ps (pw, k);
        __m256 f1 = exp8 (_mm256_sub_ps (pw, q2)), f2 = exp8 (_mm256_sub_ps (k, q2));
        _mm256_storeu_ps (aa + i, _mm256_fmadd_ps (f1, x, _mm256_mul_ps (f2, v)));
        _mm256_storeu_ps (bb + i, _mm256_fmadd_ps (f1, y, f2));
        _mm256_storeu_ps (pp + i, q2);
      }
    }
    if (j->state) {
      memcpy (j->state + c0, aa, sizeof (float) * (size_t) nc);
      memcpy (j->state + A + c0, bb, sizeof (float) * (size_t) nc);
      memcpy (j->state + 2 * A + c0, pp, sizeof (float) * (size_t) nc);
    }
  }
}

AVX2 static void
wkv_backward_avx2 (const SutraWkvArgs *j, int c0, int c1)
{
  int nc = c1 - c0, A = j->A;
  /* la, lb, z, row accumulators of du and dw [nc] floats, then [nc] doubles x 2 */
  float *st = sutra_thread_scratch (7, 5 * (size_t) nc + 4 * (size_t) nc + 8);
  float *la = st, *lb = st + nc, *z = st + 2 * nc, *ru = st + 3 * nc, *rw = st + 4 * nc;
  double *acc_u = (double *) (st + ((5 * (size_t) nc + 1) & ~(size_t) 1)), *acc_w = acc_u + nc;
  for (int i = 0; i < nc; i++)
    acc_u[i] = acc_w[i] = 0.0;
  const __m256 pinit = _mm256_set1_ps (PP_INIT), zero = _mm256_setzero_ps ();
  for (int b = 0; b < j->B; b++) {
    for (int i = 0; i < nc; i++) {
      la[i] = lb[i] = ru[i] = rw[i] = 0.f;
      z[i] = PP_INIT;
    }
    for (int t = j->T - 1; t >= 0; t--) {
      size_t n = (size_t) b * j->T + t, o = n * A + c0;
      bool start = t == j->seg[n];
      for (int i = 0; i < nc; i += 8) {
        __m256 k = _mm256_loadu_ps (j->k + o + i), v = _mm256_loadu_ps (j->v + o + i);
        __m256 y = _mm256_loadu_ps (j->y + o + i), g = _mm256_loadu_ps (j->gy + o + i);
        __m256 aa = _mm256_loadu_ps (j->sa + o + i), bb = _mm256_loadu_ps (j->sb + o + i);
        __m256 pp = _mm256_loadu_ps (j->sp + o + i);
        __m256 u = _mm256_loadu_ps (j->u + c0 + i), w = _mm256_loadu_ps (j->w + c0 + i);
        __m256 l1 = _mm256_loadu_ps (la + i), l2 = _mm256_loadu_ps (lb + i);
        __m256 zz = _mm256_loadu_ps (z + i);
        __m256 uk = _mm256_add_ps (u, k), q = _mm256_max_ps (pp, uk);
        __m256 e1 = exp8 (_mm256_sub_ps (pp, q)), e2 = exp8 (_mm256_sub_ps (uk, q));
        __m256 gd = _mm256_div_ps (g, _mm256_fmadd_ps (e1, bb, e2));
        __m256 t1 = _mm256_mul_ps (gd, e2);
        __m256 tu = _mm256_mul_ps (t1, _mm256_sub_ps (v, y));
        __m256 ek = exp8 (_mm256_add_ps (zz, k));
        _mm256_storeu_ps (j->dv + o + i, _mm256_fmadd_ps (l1, ek, t1));
        _mm256_storeu_ps (j->dk + o + i, _mm256_fmadd_ps (_mm256_fmadd_ps (l1, v, l2), ek, tu));
        _mm256_storeu_ps (ru + i, _mm256_add_ps (_mm256_loadu_ps (ru + i), tu));
        __m256 ew = exp8 (_mm256_add_ps (_mm256_add_ps (w, zz), pp));
        __m256 cw = _mm256_mul_ps (_mm256_fmadd_ps (l1, aa, _mm256_mul_ps (l2, bb)), ew);
        _mm256_storeu_ps (rw + i, _mm256_add_ps (_mm256_loadu_ps (rw + i), cw));
        __m256 mq = _mm256_sub_ps (zero, q), wz = _mm256_add_ps (w, zz);
        __m256 nz = _mm256_max_ps (mq, wz);
        __m256 f1 = exp8 (_mm256_sub_ps (mq, nz)), f2 = exp8 (_mm256_sub_ps (wz, nz));
        __m256 f1gd = _mm256_mul_ps (f1, gd);
        l1 = _mm256_fmadd_ps (f2, l1, f1gd);
        l2 = _mm256_fnmadd_ps (f1gd, y, _mm256_mul_ps (f2, l2));
        if (start) {
          l1 = l2 = zero;
          nz = pinit;
        }
        _mm256_storeu_ps (la + i, l1);
        _mm256_storeu_ps (lb + i, l2);
        _mm256_storeu_ps (z + i, nz);
      }
    }
    for (int i = 0; i < nc; i++) {   /* per-row float sums into double totals */
      acc_u[i] += ru[i];
      acc_w[i] += rw[i];
    }
  }
  for (int i = 0; i < nc; i++) {
    if (j->du)
      j->du[c0 + i] += (float) acc_u[i];
    if (j->dw)
      j->dw[c0 + i] += (float) acc_w[i];
  }
}

/* 8 channels [c, c + 8) of the scan forward; s: [S][8] states of the group */
AVX2 static void
scan_forward_avx2 (const SutraScanArgs *j, int c0, int c1)
{
  int S = j->S, I = j->I, ng = (c1 - c0) / 8;
  float *s = sutra_thread_scratch (6, (size_t) ng * S * 8);
  for (int b = 0; b < j->B; b++) {
    for (int t = 0; t < j->T; t++) {
      size_t n = (size_t) b * j->T + t;
      if (t == j->seg[n]) {
        if (j->state && t == 0) {
          for (int g = 0; g < ng; g++)
            for (int k = 0; k < S; k++)
              for (int l = 0; l < 8; l++)
                s[((size_t) g * S + k) * 8 + l] = j->state[(size_t) (c0 + 8 * g + l) * S + k];
        } else {
          memset (s, 0, sizeof (float) * (size_t) ng * S * 8);
        }
      }
      const float *Bt = j->dbc + n * j->ldb + j->R, *Ct = Bt + S;
      for (int g = 0; g < ng; g++) {
        size_t c = (size_t) c0 + 8 * g, o = n * I + c;
        __m256 d = _mm256_loadu_ps (j->delta + o), uu = _mm256_loadu_ps (j->u + o);
        __m256 du = _mm256_mul_ps (d, uu), acc = _mm256_setzero_ps ();
        float *sg = s + (size_t) g * S * 8;
        for (int k = 0; k < S; k++) {
          __m256 a = exp8 (_mm256_mul_ps (d, _mm256_loadu_ps (j->At + (size_t) k * I + c)));
          __m256 sk = _mm256_fmadd_ps (a, _mm256_loadu_ps (sg + 8 * k),
                                       _mm256_mul_ps (du, _mm256_set1_ps (Bt[k])));
          _mm256_storeu_ps (sg + 8 * k, sk);
          acc = _mm256_fmadd_ps (sk, _mm256_set1_ps (Ct[k]), acc);
        }
        _mm256_storeu_ps (j->y + o, _mm256_fmadd_ps (_mm256_loadu_ps (j->D + c), uu, acc));
      }
    }
    if (j->state)
      for (int g = 0; g < ng; g++)
        for (int k = 0; k < S; k++)
          for (int l = 0; l < 8; l++)
            j->state[(size_t) (c0 + 8 * g + l) * S + k] = s[((size_t) g * S + k) * 8 + l];
  }
}

AVX2 static void
scan_backward_avx2 (const SutraScanArgs *j, int c0, int c1, float *partials)
{
  int S = j->S, I = j->I, T = j->T;
  const int L = SUTRA_SCAN_LANES;
  size_t blk = (size_t) S * 8;
  float *buf = sutra_thread_scratch (7, 2 * (size_t) T * blk + 2 * blk + 8);
  float *st = buf, *at = buf + (size_t) T * blk, *lam = at + (size_t) T * blk, *dAacc = lam + blk;
  const __m256 zero = _mm256_setzero_ps ();
  for (int c = c0; c + 8 <= c1; c += 8) {
    for (int b = 0; b < j->B; b++) {
      /* recompute states and decays of the 8 channels over the row */
      for (int t = 0; t < T; t++) {
        size_t n = (size_t) b * T + t, o = n * I + c;
        const float *Bt = j->dbc + n * j->ldb + j->R;
        __m256 d = _mm256_loadu_ps (j->delta + o);
        __m256 du = _mm256_mul_ps (d, _mm256_loadu_ps (j->u + o));
        bool start = t == j->seg[n];
        float *s = st + (size_t) t * blk, *a = at + (size_t) t * blk;
        const float *sp = start ? NULL : st + (size_t) (t - 1) * blk;
        for (int k = 0; k < S; k++) {
          __m256 ak = exp8 (_mm256_mul_ps (d, _mm256_loadu_ps (j->At + (size_t) k * I + c)));
          __m256 in = _mm256_mul_ps (du, _mm256_set1_ps (Bt[k]));
          _mm256_storeu_ps (a + 8 * k, ak);
          _mm256_storeu_ps (s + 8 * k, sp ? _mm256_fmadd_ps (ak, _mm256_loadu_ps (sp + 8 * k), in) : in);
        }
      }
      memset (lam, 0, sizeof (float) * blk);
      memset (dAacc, 0, sizeof (float) * blk);
      __m256 dDacc = zero;
      for (int t = T - 1; t >= 0; t--) {
        size_t n = (size_t) b * T + t, o = n * I + c;
        const float *Bt = j->dbc + n * j->ldb + j->R, *Ct = Bt + S;
        float *part = partials + n * 2 * S * L;
        bool start = t == j->seg[n];
        const float *s = st + (size_t) t * blk, *a = at + (size_t) t * blk;
        const float *spv = start ? NULL : st + (size_t) (t - 1) * blk;
        __m256 g = _mm256_loadu_ps (j->gy + o), d = _mm256_loadu_ps (j->delta + o);
        __m256 uu = _mm256_loadu_ps (j->u + o), du = _mm256_mul_ps (d, uu);
        __m256 dd = zero, mb = zero;
        for (int k = 0; k < S; k++) {
          __m256 Bk = _mm256_set1_ps (Bt[k]), Ck = _mm256_set1_ps (Ct[k]);
          __m256 mu = _mm256_fmadd_ps (g, Ck, _mm256_loadu_ps (lam + 8 * k));
          __m256 sk = _mm256_loadu_ps (s + 8 * k), ak = _mm256_loadu_ps (a + 8 * k);
          float *pc = part + (size_t) (S + k) * L, *pb = part + (size_t) k * L;
          _mm256_storeu_ps (pc, _mm256_fmadd_ps (g, sk, _mm256_loadu_ps (pc)));
          _mm256_storeu_ps (pb, _mm256_fmadd_ps (mu, du, _mm256_loadu_ps (pb)));
          mb = _mm256_fmadd_ps (mu, Bk, mb);
          if (spv) {
            __m256 da = _mm256_mul_ps (_mm256_mul_ps (mu, _mm256_loadu_ps (spv + 8 * k)), ak);
            dd = _mm256_fmadd_ps (da, _mm256_loadu_ps (j->At + (size_t) k * I + c), dd);
            _mm256_storeu_ps (dAacc + 8 * k, _mm256_fmadd_ps (da, d, _mm256_loadu_ps (dAacc + 8 * k)));
            _mm256_storeu_ps (lam + 8 * k, _mm256_mul_ps (ak, mu));
          } else {
            _mm256_storeu_ps (lam + 8 * k, zero);
          }
        }
        __m256 dres = _mm256_fmadd_ps (g, _mm256_loadu_ps (j->D + c), _mm256_mul_ps (d, mb));
        _mm256_storeu_ps (j->du + o, _mm256_add_ps (_mm256_loadu_ps (j->du + o), dres));
        _mm256_storeu_ps (j->ddelta + o, _mm256_fmadd_ps (uu, mb, dd));
        dDacc = _mm256_fmadd_ps (g, uu, dDacc);
      }
      if (j->dA)
        for (int k = 0; k < S; k++)
          for (int l = 0; l < 8; l++)
            j->dA[(size_t) (c + l) * S + k] += dAacc[8 * k + l];
      if (j->dD) {
        float tmp[8];
        _mm256_storeu_ps (tmp, dDacc);
        for (int l = 0; l < 8; l++)
          j->dD[c + l] += tmp[l];
      }
    }
  }
}

/* sigmoid of 8 lanes: 1 / (1 + e^-x) from e = e^-|x| (no overflow for any x) */
AVX2 static inline __m256
sig8 (__m256 v)
{
  const __m256 one = _mm256_set1_ps (1.f);
  __m256 e = exp8 (_mm256_or_ps (v, _mm256_set1_ps (-0.f)));           /* e^-|x| */
  __m256 r = _mm256_div_ps (one, _mm256_add_ps (one, e));
  return _mm256_blendv_ps (r, _mm256_mul_ps (e, r), v);                /* x < 0: e / (1 + e) */
}

/* log(1 + y) for y in [0, 1] = 2 atanh(t), t = y / (2 + y) in [0, 1/3] (no cancellation for
 * small y); the odd series to t^13 is within 1e-8 */
AVX2 static inline __m256
log1p8 (__m256 y)
{
  __m256 t = _mm256_div_ps (y, _mm256_add_ps (y, _mm256_set1_ps (2.f)));
  __m256 t2 = _mm256_mul_ps (t, t);
  __m256 p = _mm256_set1_ps (1.f / 13);
  p = _mm256_fmadd_ps (p, t2, _mm256_set1_ps (1.f / 11));
  p = _mm256_fmadd_ps (p, t2, _mm256_set1_ps (1.f / 9));
  p = _mm256_fmadd_ps (p, t2, _mm256_set1_ps (1.f / 7));
  p = _mm256_fmadd_ps (p, t2, _mm256_set1_ps (1.f / 5));
  p = _mm256_fmadd_ps (p, t2, _mm256_set1_ps (1.f / 3));
  p = _mm256_fmadd_ps (p, t2, _mm256_set1_ps (1.f));
  return _mm256_mul_ps (_mm256_mul_ps (p, t), _mm256_set1_ps (2.f));
}

typedef enum { EW_SIGMOID, EW_SILU, EW_SOFTPLUS, EW_SOFTPLUS_BWD, EW_SILU_BWD } EwKind;

static inline float
sigmoid1 (float x)
{
  return 1.f / (1.f + expf (-x));
}

static void
ew_scalar (EwKind kind, float *out, const float *x, int64_t b, int64_t e)
{
  for (int64_t i = b; i < e; i++) {
    float v = x[i], s;
    switch (kind) {
    case EW_SIGMOID: out[i] = sigmoid1 (v); break;
    case EW_SILU: out[i] = v * sigmoid1 (v); break;
    case EW_SOFTPLUS: out[i] = v > 20.f ? v : log1pf (expf (v)); break;
    case EW_SOFTPLUS_BWD: out[i] *= v > 20.f ? 1.f : sigmoid1 (v); break;
    case EW_SILU_BWD:
      s = sigmoid1 (v);
      out[i] *= s * (1.f + v * (1.f - s));
      break;
    }
  }
}

AVX2 static void
ew_avx2 (EwKind kind, float *out, const float *x, int64_t b, int64_t e)
{
  const __m256 one = _mm256_set1_ps (1.f), thr = _mm256_set1_ps (20.f);
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    __m256 v = _mm256_loadu_ps (x + i), r;
    switch (kind) {
    case EW_SIGMOID: r = sig8 (v); break;
    case EW_SILU: r = _mm256_mul_ps (v, sig8 (v)); break;
    case EW_SOFTPLUS: {   /* max(x, 0) + log1p(e^-|x|); x > 20: x */
      __m256 l = log1p8 (exp8 (_mm256_or_ps (v, _mm256_set1_ps (-0.f))));
      r = _mm256_add_ps (_mm256_max_ps (v, _mm256_setzero_ps ()), l);
      r = _mm256_blendv_ps (r, v, _mm256_cmp_ps (v, thr, _CMP_GT_OQ));
      break;
    }
    case EW_SOFTPLUS_BWD:
      r = _mm256_blendv_ps (sig8 (v), one, _mm256_cmp_ps (v, thr, _CMP_GT_OQ));
      r = _mm256_mul_ps (_mm256_loadu_ps (out + i), r);
      break;
    default: {            /* EW_SILU_BWD */
      __m256 s = sig8 (v);
      r = _mm256_mul_ps (s, _mm256_fmadd_ps (v, _mm256_sub_ps (one, s), one));
      r = _mm256_mul_ps (_mm256_loadu_ps (out + i), r);
    }
    }
    _mm256_storeu_ps (out + i, r);
  }
  ew_scalar (kind, out, x, i, e);
}

/* gate rows [r0, r1): g = y silu(z) (forward) or dy = dg silu(z), dz = dg y silu'(z) */
typedef struct {
  float *g, *dz;
  const float *y, *z, *dg;
  int I, ldz;
  bool backward;
} GateJob;

AVX2 static void
gate_avx2 (const GateJob *j, int64_t r0, int64_t r1)
{
  const __m256 one = _mm256_set1_ps (1.f);
  for (int64_t r = r0; r < r1; r++) {
    const float *z = j->z + (size_t) r * j->ldz, *y = j->y + (size_t) r * j->I;
    int i = 0;
    if (!j->backward) {
      float *g = j->g + (size_t) r * j->I;
      for (; i + 8 <= j->I; i += 8) {
        __m256 zv = _mm256_loadu_ps (z + i);
        _mm256_storeu_ps (g + i, _mm256_mul_ps (_mm256_loadu_ps (y + i), _mm256_mul_ps (zv, sig8 (zv))));
      }
      for (; i < j->I; i++)
        g[i] = y[i] * z[i] * sigmoid1 (z[i]);
    } else {
      const float *dg = j->dg + (size_t) r * j->I;
      float *dy = j->g + (size_t) r * j->I, *dz = j->dz + (size_t) r * j->ldz;
      for (; i + 8 <= j->I; i += 8) {
        __m256 zv = _mm256_loadu_ps (z + i), s = sig8 (zv), d = _mm256_loadu_ps (dg + i);
        __m256 ds = _mm256_mul_ps (s, _mm256_fmadd_ps (zv, _mm256_sub_ps (one, s), one));
        _mm256_storeu_ps (dz + i, _mm256_mul_ps (_mm256_mul_ps (d, _mm256_loadu_ps (y + i)), ds));
        _mm256_storeu_ps (dy + i, _mm256_mul_ps (d, _mm256_mul_ps (zv, s)));
      }
      for (; i < j->I; i++) {
        float s = sigmoid1 (z[i]), d = dg[i];
        dz[i] = d * y[i] * s * (1.f + z[i] * (1.f - s));
        dy[i] = d * z[i] * s;
      }
    }
  }
}

static void
gate_scalar (const GateJob *j, int64_t r0, int64_t r1)
{
  for (int64_t r = r0; r < r1; r++) {
    const float *z = j->z + (size_t) r * j->ldz, *y = j->y + (size_t) r * j->I;
    for (int i = 0; i < j->I; i++) {
      float s = sigmoid1 (z[i]);
      if (!j->backward) {
        j->g[(size_t) r * j->I + i] = y[i] * z[i] * s;
      } else {
        float d = j->dg[(size_t) r * j->I + i];
        j->dz[(size_t) r * j->ldz + i] = d * y[i] * s * (1.f + z[i] * (1.f - s));
        j->g[(size_t) r * j->I + i] = d * z[i] * s;
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* dispatch                                                                                   */
/* ------------------------------------------------------------------------------------------ */

void
sutra_wkv_forward (const SutraWkvArgs *a, int c0, int c1)
{
  int cv = sutra_cpu_has_avx2_fma () ? c0 + (c1 - c0) / 8 * 8 : c0;
  if (cv > c0)
    wkv_forward_avx2 (a, c0, cv);
  sutra_wkv_forward_naive (a, cv, c1);
}

void
sutra_wkv_backward (const SutraWkvArgs *a, int c0, int c1)
{
  int cv = sutra_cpu_has_avx2_fma () ? c0 + (c1 - c0) / 8 * 8 : c0;
  if (cv > c0)
    wkv_backward_avx2 (a, c0, cv);
  sutra_wkv_backward_naive (a, cv, c1);
}

void
sutra_ssm_scan_forward (const SutraScanArgs *a, int c0, int c1)
{
  int cv = sutra_cpu_has_avx2_fma () ? c0 + (c1 - c0) / 8 * 8 : c0;
  if (cv > c0)
    scan_forward_avx2 (a, c0, cv);
  sutra_ssm_scan_forward_naive (a, cv, c1);
}

void
sutra_ssm_scan_backward (const SutraScanArgs *a, int c0, int c1, float *partials)
{
  int cv = sutra_cpu_has_avx2_fma () ? c0 + (c1 - c0) / 8 * 8 : c0;
  if (cv > c0)
    scan_backward_avx2 (a, c0, cv, partials);
  sutra_ssm_scan_backward_naive (a, cv, c1, partials);
}

typedef struct { EwKind kind; float *out; const float *x; } EwJob;

static void
ew_range (void *ctx, int64_t b, int64_t e, int ti)
{
  const EwJob *j = ctx;
  (void) ti;
  if (sutra_cpu_has_avx2_fma ())
    ew_avx2 (j->kind, j->out, j->x, b, e);
  else
    ew_scalar (j->kind, j->out, j->x, b, e);
}

static void
ew_run (EwKind kind, float *out, const float *x, int64_t n)
{
  EwJob j = { kind, out, x };
  sutra_parallel_for (n, 16384, ew_range, &j);
}

void sutra_rnn_sigmoid (float *out, const float *x, int64_t n) { ew_run (EW_SIGMOID, out, x, n); }
void sutra_rnn_silu (float *out, const float *x, int64_t n) { ew_run (EW_SILU, out, x, n); }
void sutra_rnn_softplus (float *out, const float *x, int64_t n) { ew_run (EW_SOFTPLUS, out, x, n); }
void sutra_rnn_softplus_backward (float *d, const float *x, int64_t n)
{ ew_run (EW_SOFTPLUS_BWD, d, x, n); }
void sutra_rnn_silu_backward (float *d, const float *x, int64_t n) { ew_run (EW_SILU_BWD, d, x, n); }

static void
gate_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  (void) ti;
  if (sutra_cpu_has_avx2_fma ())
    gate_avx2 (ctx, r0, r1);
  else
    gate_scalar (ctx, r0, r1);
}

void
sutra_rnn_gate (float *g, const float *y, const float *z, int N, int I, int ldz)
{
  GateJob j = { .g = g, .y = y, .z = z, .I = I, .ldz = ldz };
  sutra_parallel_for (N, 1 + 16384 / (I > 0 ? I : 1), gate_range, &j);
}

void
sutra_rnn_gate_backward (float *dy, float *dz, const float *dg, const float *y, const float *z,
                         int N, int I, int ldz)
{
  GateJob j = { .g = dy, .dz = dz, .dg = dg, .y = y, .z = z, .I = I, .ldz = ldz, .backward = true };
  sutra_parallel_for (N, 1 + 16384 / (I > 0 ? I : 1), gate_range, &j);
}
