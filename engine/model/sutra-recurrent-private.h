/* sutra-recurrent-private.h: kernels and helpers shared by the recurrent architectures
 * (sutra-rwkv.c, sutra-mamba.c; kernels in sutra-recurrent.c); not a public header.
 *
 * - the RWKV-4 WKV recurrence and the Mamba selective scan, forward and backward, over a range
 *   of channels (callers split channels across the pool). Each has a scalar _naive twin; the
 *   fast versions use AVX2/FMA (8 channels per vector) when the CPU has it, chosen at run time,
 *   and compute the same formulas.
 * - sutra_rnn_exp: e^x for the non-positive arguments of the numerically stable recurrences
 *   (RWKV-4's running-max WKV, Mamba's exp(dt * A) with dt > 0, A < 0). Branch-free so loops
 *   over channels / state dims vectorise; Cephes' expf polynomial (about 1 ulp on
 *   [-87, 0]), 0 below -87.3 where e^x is no longer a normal float.
 * - segment starts: a batch row restarts its recurrence where a packed document begins
 *   (SutraBatch.doc), so a packed row equals its documents run as separate rows.
 * (Profile timers: sutra_model_prof in sutra-model.h.) */
#pragma once
#include "sutra-model.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

static inline float
sutra_rnn_exp (float x)
{
  const float lo = -87.3f;
  float xc = x < lo ? lo : (x > 0.f ? 0.f : x);
  /* x = n ln2 + r, |r| <= ln2 / 2 (Cody-Waite split of ln2) */
  float fn = xc * 1.44269504088896341f;
  fn = (float) (int) (fn - 0.5f);                   /* round half down for fn <= 0 */
  int n = (int) fn;
  float r = xc - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.f;
  /* 2^n as a float: n in [-126, 0] here */
  union { uint32_t u; float f; } two;
  two.u = (uint32_t) (n + 127) << 23;
  float y = p * two.f;
  return x < lo ? 0.f : y;
}

/* seg[n] for n in [0, B*T): index (within its row, 0..T-1) of the first position of the
 * document position n belongs to; 0 everywhere when doc is NULL. */
static inline void
sutra_rnn_segments (int *seg, const int *doc, int B, int T)
{
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      int n = b * T + t;
      seg[n] = (t == 0 || !doc || doc[n] == doc[n - 1]) ? (t == 0 ? 0 : seg[n - 1]) : t;
    }
}

/* ---- RWKV-4 WKV (one layer; formulas and derivation in sutra-recurrent.c) ---- */
typedef struct {
  const float *k, *v;             /* [N, A] */
  const float *w, *u;             /* [A] w = -exp(time_decay), u = time_first */
  float *y;                       /* [N, A] wkv (forward output; backward input) */
  float *sa, *sb, *sp;            /* [N, A] state (aa, bb, pp) before each position, or NULL */
  float *state;                   /* [3, A] carried (aa | bb | pp) for B = 1, or NULL */
  const float *gy;                /* backward: [N, A] dL/dwkv */
  float *dk, *dv;                 /* backward: [N, A] (overwritten) */
  float *du, *dw;                 /* backward: [A] += dL/du, dL/dw (may be NULL) */
  const int *seg;                 /* [N] segment starts (sutra_rnn_segments) */
  int B, T, A;
} SutraWkvArgs;

void sutra_wkv_forward        (const SutraWkvArgs *a, int c0, int c1);
void sutra_wkv_forward_naive  (const SutraWkvArgs *a, int c0, int c1);
/* Needs sa/sb/sp from the forward. */
void sutra_wkv_backward       (const SutraWkvArgs *a, int c0, int c1);
void sutra_wkv_backward_naive (const SutraWkvArgs *a, int c0, int c1);

/* ---- Mamba selective scan (one layer) ---- */
typedef struct {
  const float *u, *delta;         /* [N, I] input, softplus(dt) */
  const float *dbc;               /* [N, ldb]: B at column R, C at R + S */
  int ldb, R;
  const float *At;                /* [S, I] A = -exp(A_log), transposed */
  const float *D;                 /* [I] */
  float *y;                       /* [N, I] <s_t, C_t> + D u_t */
  float *state;                   /* [I, S] carried for B = 1, or NULL */
  const float *gy;                /* backward: [N, I] dL/dy */
  float *du;                      /* backward: [N, I] += */
  float *ddelta;                  /* backward: [N, I] (overwritten; may alias gy) */
  float *dA;                      /* backward: [I, S] += dL/dA, or NULL */
  float *dD;                      /* backward: [I] +=, or NULL */
  const int *seg;
  int B, T, I, S;
} SutraScanArgs;

#define SUTRA_SCAN_LANES 8
void sutra_ssm_scan_forward        (const SutraScanArgs *a, int c0, int c1);
void sutra_ssm_scan_forward_naive  (const SutraScanArgs *a, int c0, int c1);
/* partials: [N, 2S, SUTRA_SCAN_LANES] += dL/dB | dL/dC, summed over the range's channels
 * lane-wise (the caller owns one per thread and sums them). */
void sutra_ssm_scan_backward       (const SutraScanArgs *a, int c0, int c1, float *partials);
void sutra_ssm_scan_backward_naive (const SutraScanArgs *a, int c0, int c1, float *partials);

/* ---- elementwise helpers (vectorised, split across the pool; out may alias x) ---- */
void sutra_rnn_sigmoid  (float *out, const float *x, int64_t n);
void sutra_rnn_silu     (float *out, const float *x, int64_t n);
/* softplus as torch (x > 20: x) */
void sutra_rnn_softplus (float *out, const float *x, int64_t n);
/* d[n] *= softplus'(x) = sigmoid(x) (1 for x > 20) */
void sutra_rnn_softplus_backward (float *d, const float *x, int64_t n);
/* d[n] *= silu'(x) = s (1 + x (1 - s)), s = sigmoid(x) */
void sutra_rnn_silu_backward (float *d, const float *x, int64_t n);
/* Mamba's gate over rows: g [N, I] = y [N, I] * silu(z), z rows ldz apart. */
void sutra_rnn_gate (float *g, const float *y, const float *z, int N, int I, int ldz);
/* Its backward: dz (rows ldz apart) = dg y silu'(z); dy = dg silu(z) (dy may alias dg). */
void sutra_rnn_gate_backward (float *dy, float *dz, const float *dg, const float *y,
                              const float *z, int N, int I, int ldz);
