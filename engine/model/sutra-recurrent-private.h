/* sutra-recurrent-private.h: helpers shared by the recurrent architectures (sutra-rwkv.c,
 * sutra-mamba.c); not a public header.
 *
 * - sutra_rnn_exp: e^x for the non-positive arguments of the numerically stable recurrences
 *   (RWKV-4's running-max WKV, Mamba's exp(dt * A) with dt > 0, A < 0). Branch-free so loops
 *   over channels / state dims vectorise; Cephes' expf polynomial (about 1 ulp on
 *   [-87, 0]), 0 below -87.3 where e^x is no longer a normal float.
 * - segment starts: a batch row restarts its recurrence where a packed document begins
 *   (SutraBatch.doc), so a packed row equals its documents run as separate rows.
 * - profile timers (SutraModel.profile). */
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

static inline double
sutra_rnn_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* Adds the time since *t0 to kind (when profiling) and restarts the clock. */
static inline void
sutra_rnn_prof (SutraModel *m, SutraProfKind kind, double *t0)
{
  if (!m->profile)
    return;
  double t = sutra_rnn_now ();
  m->profile->seconds[kind] += t - *t0;
  *t0 = t;
}
