/* test-ops.c: every op's backward against central finite differences of a double-precision
 * forward, and every fast path against its _naive twin.
 *
 * Gradient check: for an op y = f(x), take L = sum_i r_i y_i with fixed random r. The analytic
 * gradient is our float backward fed dout = r. The numeric gradient is
 * (L(x + h e_j) - L(x - h e_j)) / 2h computed with a double-precision forward written here
 * from the formula (independent of the float kernel). */
#include "test-util.h"
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <math.h>
#include <string.h>

#define GRAD_REL_TOL 2e-4     /* max |analytic - numeric| / max |numeric| */
#define FD_STEP 1e-6
#define FAST_VS_NAIVE_TOL 2e-5

typedef void (*ForwardD) (double *y, const double *x, void *ctx);

/* Numeric dL/dx for L = sum r * f(x). */
static void
numeric_grad (double *g, const float *x0, int nx, int ny, const float *r, ForwardD f, void *ctx)
{
  double *x = g_new (double, nx), *y = g_new (double, ny);
  for (int i = 0; i < nx; i++)
    x[i] = x0[i];
  for (int j = 0; j < nx; j++) {
    double save = x[j], lp = 0, lm = 0;
    x[j] = save + FD_STEP;
    f (y, x, ctx);
    for (int i = 0; i < ny; i++)
      lp += r[i] * y[i];
    x[j] = save - FD_STEP;
    f (y, x, ctx);
    for (int i = 0; i < ny; i++)
      lm += r[i] * y[i];
    x[j] = save;
    g[j] = (lp - lm) / (2 * FD_STEP);
  }
  g_free (x);
  g_free (y);
}

static void
assert_grad_close (const char *what, const float *analytic, const double *numeric, int n)
{
  double mx = 0, md = 0;
  for (int i = 0; i < n; i++) {
    mx = fmax (mx, fabs (numeric[i]));
    md = fmax (md, fabs (analytic[i] - numeric[i]));
  }
  double rel = mx > 0 ? md / mx : md;
  if (g_test_verbose ())
    g_printerr ("  %-28s rel err %.3g (max |g| %.3g)\n", what, rel, mx);
  if (!(rel <= GRAD_REL_TOL))
    g_error ("%s: gradient rel err %.3g > %.1g", what, rel, GRAD_REL_TOL);
  g_assert_cmpfloat (mx, >, 0);   /* a zero gradient would make the check vacuous */
}

static float *
rand_f (int n, float lo, float hi, guint32 seed)
{
  float *x = g_new (float, n);
  test_fill_uniform (x, (size_t) n, lo, hi, seed);
  return x;
}

/* ---------------- matmul (all transpose cases) ---------------- */

typedef struct { int M, N, K; bool ta, tb; const float *b; int which; const float *a; } MmCtx;

static void
mm_fwd_d (double *y, const double *x, void *c)
{
  MmCtx *m = c;
  /* which = 0: x is a; 1: x is b */
  for (int i = 0; i < m->M; i++)
    for (int j = 0; j < m->N; j++) {
      double acc = 0;
      for (int p = 0; p < m->K; p++) {
        double a = m->which == 0 ? x[m->ta ? p * m->M + i : i * m->K + p]
                                 : m->a[m->ta ? p * m->M + i : i * m->K + p];
        double b = m->which == 1 ? x[m->tb ? j * m->K + p : p * m->N + j]
                                 : m->b[m->tb ? j * m->K + p : p * m->N + j];
        acc += a * b;
      }
      y[i * m->N + j] = acc;
    }
}

static void
test_matmul_grad (void)
{
  int M = 5, N = 7, K = 6;
  for (int tt = 0; tt < 4; tt++) {
    bool ta = tt & 1, tb = tt & 2;
    float *a = rand_f (M * K, -1, 1, 1 + tt), *b = rand_f (K * N, -1, 1, 11 + tt);
    float *r = rand_f (M * N, -1, 1, 21 + tt);
    float *da = g_new0 (float, M * K), *db = g_new0 (float, K * N);
    sutra_matmul_backward (da, db, r, a, b, ta, tb, M, N, K);
    double *g = g_new (double, M * K > K * N ? M * K : K * N);
    MmCtx c = { M, N, K, ta, tb, b, 0, a };
    numeric_grad (g, a, M * K, M * N, r, mm_fwd_d, &c);
    assert_grad_close ("matmul da", da, g, M * K);
    c.which = 1;
    numeric_grad (g, b, K * N, M * N, r, mm_fwd_d, &c);
    assert_grad_close ("matmul db", db, g, K * N);
    /* forward against the naive twin */
    float *o = g_new (float, M * N), *o2 = g_new (float, M * N);
    sutra_matmul_forward (o, a, b, ta, tb, M, N, K);
    sutra_sgemm_naive (ta, tb, M, N, K, 1.f, a, ta ? M : K, b, tb ? K : N, 0.f, o2, N);
    g_assert_cmpfloat (test_max_abs_err (o, o2, (size_t) M * N), <, 1e-5);
    g_free (a); g_free (b); g_free (r); g_free (da); g_free (db); g_free (g); g_free (o); g_free (o2);
  }
}

/* the pool-split sgemm against the naive twin on shapes that split, with strides and beta */
static void
test_sgemm_split (void)
{
  sutra_set_threads (2);
  const int shapes[][3] = { { 256, 576, 576 }, { 33, 1536, 100 }, { 700, 17, 64 }, { 1, 300, 129 } };
  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
    for (int tt = 0; tt < 4; tt++) {
      int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
      bool ta = tt & 1, tb = tt & 2;
      int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 5;
      float *A = rand_f ((ta ? K : M) * lda, -1, 1, 3), *B = rand_f ((tb ? N : K) * ldb, -1, 1, 4);
      float *C = rand_f (M * ldc, -1, 1, 5), *C2 = g_memdup2 (C, sizeof (float) * M * ldc);
      sutra_sgemm (ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C, ldc);
      sutra_sgemm_naive (ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C2, ldc);
      double err = 0;
      for (int i = 0; i < M; i++)
        err = fmax (err, test_max_abs_err (C + i * ldc, C2 + i * ldc, N));
      g_assert_cmpfloat (err, <, 1e-4 * sqrt (K));
      g_free (A); g_free (B); g_free (C); g_free (C2);
    }
}

/* ---------------- linear ---------------- */

typedef struct { int N, C, OC; const float *inp, *W, *b; int which; } LinCtx;

static void
lin_fwd_d (double *y, const double *x, void *c)
{
  LinCtx *l = c;
  for (int n = 0; n < l->N; n++)
    for (int o = 0; o < l->OC; o++) {
      double acc = l->which == 2 ? x[o] : l->b[o];
      for (int i = 0; i < l->C; i++) {
        double in = l->which == 0 ? x[n * l->C + i] : l->inp[n * l->C + i];
        double w = l->which == 1 ? x[o * l->C + i] : l->W[o * l->C + i];
        acc += in * w;
      }
      y[n * l->OC + o] = acc;
    }
}

static void
test_linear_grad (void)
{
  int N = 4, C = 6, OC = 5;
  float *inp = rand_f (N * C, -1, 1, 1), *W = rand_f (OC * C, -1, 1, 2), *b = rand_f (OC, -1, 1, 3);
  float *r = rand_f (N * OC, -1, 1, 4);
  float *dinp = g_new0 (float, N * C), *dW = g_new0 (float, OC * C), *db = g_new0 (float, OC);
  sutra_dense_backward (dinp, dW, db, r, inp, W, N, C, OC);
  double g[64];
  LinCtx c = { N, C, OC, inp, W, b, 0 };
  numeric_grad (g, inp, N * C, N * OC, r, lin_fwd_d, &c);
  assert_grad_close ("linear dinp", dinp, g, N * C);
  c.which = 1;
  numeric_grad (g, W, OC * C, N * OC, r, lin_fwd_d, &c);
  assert_grad_close ("linear dW", dW, g, OC * C);
  c.which = 2;
  numeric_grad (g, b, OC, N * OC, r, lin_fwd_d, &c);
  assert_grad_close ("linear dbias", db, g, OC);
  /* forward vs double forward, with and without bias, N = 1 (gemv path) too */
  for (int nn = 1; nn <= N; nn += N - 1) {
    float out[64];
    double ref[64], xd[64];
    sutra_dense_forward (out, inp, W, b, nn, C, OC);
    LinCtx c2 = { nn, C, OC, inp, W, b, 2 };
    for (int i = 0; i < OC; i++)
      xd[i] = b[i];
    lin_fwd_d (ref, xd, &c2);
    for (int i = 0; i < nn * OC; i++)
      g_assert_cmpfloat (fabs (out[i] - ref[i]), <, 1e-5);
  }
  g_free (inp); g_free (W); g_free (b); g_free (r); g_free (dinp); g_free (dW); g_free (db);
}

/* ---------------- elementwise ---------------- */

static double
act_d (SutraAct act, double x)
{
  switch (act) {
  case SUTRA_ACT_SILU: return x / (1 + exp (-x));
  case SUTRA_ACT_GELU_ERF: return 0.5 * x * (1 + erf (x / sqrt (2.0)));
  case SUTRA_ACT_GELU_TANH: return 0.5 * x * (1 + tanh (sqrt (2 / M_PI) * (x + 0.044715 * x * x * x)));
  case SUTRA_ACT_RELU: return x > 0 ? x : 0;
  case SUTRA_ACT_RELU2: return x > 0 ? x * x : 0;
  case SUTRA_ACT_SIGMOID: return 1 / (1 + exp (-x));
  case SUTRA_ACT_TANH: return tanh (x);
  case SUTRA_ACT_EXP: return exp (x);
  case SUTRA_ACT_SOFTPLUS: return x > 20 ? x : log1p (exp (x));
  default: g_assert_not_reached ();
  }
}

typedef struct { SutraAct act; int n; } ActCtx;

static void
act_fwd_d (double *y, const double *x, void *c)
{
  ActCtx *a = c;
  for (int i = 0; i < a->n; i++)
    y[i] = act_d (a->act, x[i]);
}

static void
test_act_grad (void)
{
  enum { N = 40 };
  float *x = rand_f (N, -4, 4, 9), *r = rand_f (N, -1, 1, 10);
  /* keep points away from the kinks of relu/relu2 where FD is meaningless */
  for (int i = 0; i < N; i++)
    if (fabsf (x[i]) < 0.01f)
      x[i] = 0.5f;
  x[0] = 25.f;    /* softplus threshold branch */
  for (int a = 0; a < SUTRA_ACT_COUNT; a++) {
    float dx[N] = { 0 };
    double g[N];
    sutra_act_backward ((SutraAct) a, dx, r, x, N);
    ActCtx c = { (SutraAct) a, N };
    numeric_grad (g, x, N, N, r, act_fwd_d, &c);
    assert_grad_close (sutra_act_name ((SutraAct) a), dx, g, N);
    /* forward vs double and vs naive */
    float y[N], y2[N];
    sutra_act_forward ((SutraAct) a, y, x, N);
    sutra_act_forward_naive ((SutraAct) a, y2, x, N);
    for (int i = 0; i < N; i++) {
      double ref = act_d ((SutraAct) a, x[i]);
      g_assert_cmpfloat (fabs (y[i] - ref), <=, 1e-5 * fmax (1, fabs (ref)));
      g_assert_cmpfloat (y[i], ==, y2[i]);
    }
  }
  g_free (x);
  g_free (r);
}

/* big arrays exercise the threaded split; results must equal the naive twin exactly */
static void
test_act_threaded (void)
{
  sutra_set_threads (2);
  int n = 200003;
  float *x = rand_f (n, -6, 6, 77), *y = g_new (float, n), *y2 = g_new (float, n);
  for (int a = 0; a < SUTRA_ACT_COUNT; a++) {
    sutra_act_forward ((SutraAct) a, y, x, n);
    sutra_act_forward_naive ((SutraAct) a, y2, x, n);
    g_assert_cmpint (memcmp (y, y2, sizeof (float) * n), ==, 0);
  }
  g_free (x); g_free (y); g_free (y2);
}

typedef struct { int n; const float *other; int which; int op; float s; } BinCtx;

static void
bin_fwd_d (double *y, const double *x, void *c)
{
  BinCtx *b = c;
  for (int i = 0; i < b->n; i++) {
    double p = b->which == 0 ? x[i] : b->other[i];
    double q = b->which == 1 ? x[i] : b->other[i];
    switch (b->op) {
    case 0: y[i] = p + q; break;
    case 1: y[i] = p * q; break;
    case 2: y[i] = x[i] * b->s; break;
    case 3: y[i] = p / (1 + exp (-p)) * q; break;   /* swiglu(gate = p, up = q) */
    }
  }
}

static void
test_binary_grad (void)
{
  enum { N = 30 };
  float *a = rand_f (N, -2, 2, 1), *b = rand_f (N, -2, 2, 2), *r = rand_f (N, -1, 1, 3);
  double g[N];
  const char *names[] = { "add", "mul", "scale", "swiglu" };
  for (int op = 0; op < 4; op++) {
    float da[N] = { 0 }, db[N] = { 0 };
    switch (op) {
    case 0: sutra_add_backward (da, db, r, N); break;
    case 1: sutra_mul_backward (da, db, r, a, b, N); break;
    case 2: sutra_scale_backward (da, r, 1.7f, N); break;
    case 3: sutra_swiglu_backward (da, db, r, a, b, N); break;
    }
    BinCtx c = { N, b, 0, op, 1.7f };
    numeric_grad (g, a, N, N, r, bin_fwd_d, &c);
    assert_grad_close (names[op], da, g, N);
    if (op != 2) {
      BinCtx c2 = { N, a, 1, op, 0 };
      numeric_grad (g, b, N, N, r, bin_fwd_d, &c2);
      assert_grad_close (names[op], db, g, N);
    }
  }
  g_free (a); g_free (b); g_free (r);
}

/* ---------------- softmax and norms ---------------- */

typedef struct { int N, C; const float *w, *b; int which; float eps; int kind; } NormCtx;

static void
norm_fwd_d (double *y, const double *x, void *c)
{
  NormCtx *k = c;
  const double *xin = x;
  double wbuf[64], bbuf[64];
  const float *xf = k->which != 0 ? (const float *) k->b : NULL;  /* unused */
  (void) xf;
  for (int i = 0; i < k->C; i++) {
    wbuf[i] = k->which == 1 ? x[i] : (k->w ? k->w[i] : 1);
    bbuf[i] = k->which == 2 ? x[i] : (k->b ? k->b[i] : 0);
  }
  extern const float *norm_x_fixed;
  for (int n = 0; n < k->N; n++) {
    double row[64];
    for (int i = 0; i < k->C; i++)
      row[i] = k->which == 0 ? xin[n * k->C + i] : norm_x_fixed[n * k->C + i];
    if (k->kind == 0) {         /* softmax */
      double m = -INFINITY, s = 0;
      for (int i = 0; i < k->C; i++) m = fmax (m, row[i]);
      for (int i = 0; i < k->C; i++) s += exp (row[i] - m);
      for (int i = 0; i < k->C; i++) y[n * k->C + i] = exp (row[i] - m) / s;
    } else if (k->kind == 1) {  /* rmsnorm */
      double ss = 0;
      for (int i = 0; i < k->C; i++) ss += row[i] * row[i];
      double rs = 1 / sqrt (ss / k->C + k->eps);
      for (int i = 0; i < k->C; i++) y[n * k->C + i] = wbuf[i] * row[i] * rs;
    } else {                    /* layernorm */
      double mu = 0, var = 0;
      for (int i = 0; i < k->C; i++) mu += row[i];
      mu /= k->C;
      for (int i = 0; i < k->C; i++) var += (row[i] - mu) * (row[i] - mu);
      var /= k->C;
      double rs = 1 / sqrt (var + k->eps);
      for (int i = 0; i < k->C; i++) y[n * k->C + i] = (row[i] - mu) * rs * wbuf[i] + bbuf[i];
    }
  }
}

const float *norm_x_fixed;

static void
test_norm_grads (void)
{
  enum { N = 3, C = 10 };
  float *x = rand_f (N * C, -2, 2, 5), *w = rand_f (C, 0.5, 1.5, 6), *b = rand_f (C, -1, 1, 7);
  float *r = rand_f (N * C, -1, 1, 8);
  norm_x_fixed = x;
  double g[N * C];
  float out[N * C], rstd[N], mean[N];
  /* softmax */
  {
    float dx[N * C] = { 0 };
    sutra_softmax_forward (out, x, N, C);
    sutra_softmax_backward (dx, r, out, N, C);
    NormCtx c = { N, C, NULL, NULL, 0, 0, 0 };
    numeric_grad (g, x, N * C, N * C, r, norm_fwd_d, &c);
    assert_grad_close ("softmax dx", dx, g, N * C);
    double yd[N * C];
    double xd[N * C];
    for (int i = 0; i < N * C; i++) xd[i] = x[i];
    norm_fwd_d (yd, xd, &c);
    for (int i = 0; i < N * C; i++) g_assert_cmpfloat (fabs (out[i] - yd[i]), <, 1e-6);
  }
  /* rmsnorm */
  {
    float dx[N * C] = { 0 }, dw[C] = { 0 };
    sutra_rmsnorm_forward (out, rstd, x, w, 1e-5f, N, C);
    sutra_rmsnorm_backward (dx, dw, r, x, w, rstd, N, C);
    NormCtx c = { N, C, w, NULL, 0, 1e-5f, 1 };
    numeric_grad (g, x, N * C, N * C, r, norm_fwd_d, &c);
    assert_grad_close ("rmsnorm dx", dx, g, N * C);
    c.which = 1;
    numeric_grad (g, w, C, N * C, r, norm_fwd_d, &c);
    assert_grad_close ("rmsnorm dw", dw, g, C);
  }
  /* layernorm */
  {
    float dx[N * C] = { 0 }, dw[C] = { 0 }, db[C] = { 0 };
    sutra_layernorm_forward (out, mean, rstd, x, w, b, 1e-5f, N, C);
    sutra_layernorm_backward (dx, dw, db, r, x, w, mean, rstd, N, C);
    NormCtx c = { N, C, w, b, 0, 1e-5f, 2 };
    numeric_grad (g, x, N * C, N * C, r, norm_fwd_d, &c);
    assert_grad_close ("layernorm dx", dx, g, N * C);
    c.which = 1;
    numeric_grad (g, w, C, N * C, r, norm_fwd_d, &c);
    assert_grad_close ("layernorm dw", dw, g, C);
    c.which = 2;
    numeric_grad (g, b, C, N * C, r, norm_fwd_d, &c);
    assert_grad_close ("layernorm db", db, g, C);
  }
  g_free (x); g_free (w); g_free (b); g_free (r);
}

/* a softmax row of -inf (fully masked) gives zeros, not NaN; large logits stay finite */
static void
test_softmax_stable (void)
{
  float x[4] = { 1000.f, 999.f, -1000.f, 1000.f }, y[4];
  sutra_softmax_forward (y, x, 1, 4);
  for (int i = 0; i < 4; i++)
    g_assert_true (isfinite (y[i]));
  g_assert_cmpfloat (fabs (y[0] - y[3]), <, 1e-7);
  float m[3] = { -INFINITY, -INFINITY, -INFINITY }, z[3];
  sutra_softmax_forward (z, m, 1, 3);
  for (int i = 0; i < 3; i++)
    g_assert_cmpfloat (z[i], ==, 0.f);
}

/* ---------------- RoPE ---------------- */

typedef struct { int T, NH, HS, half; const double *inv; const int *pos; } RopeCtx;

static void
rope_fwd_d (double *y, const double *x, void *c)
{
  RopeCtx *r = c;
  for (int t = 0; t < r->T; t++)
    for (int h = 0; h < r->NH; h++) {
      const double *xr = x + (t * r->NH + h) * r->HS;
      double *yr = y + (t * r->NH + h) * r->HS;
      for (int i = 0; i < r->HS; i++)
        yr[i] = xr[i];
      for (int i = 0; i < r->half; i++) {
        double a = r->pos[t] * r->inv[i];
        yr[i] = xr[i] * cos (a) - xr[i + r->half] * sin (a);
        yr[i + r->half] = xr[i + r->half] * cos (a) + xr[i] * sin (a);
      }
    }
}

static void
test_rope (void)
{
  enum { T = 5, NH = 3, HS = 8 };
  int pos[T] = { 0, 1, 2, 7, 300 };
  SutraRope variants[3] = {
    { SUTRA_ROPE_DEFAULT, HS, 10000, 1, 0, 0, 0 },
    { SUTRA_ROPE_LINEAR, HS, 10000, 4, 0, 0, 0 },
    { SUTRA_ROPE_LLAMA3, HS, 500000, 8, 1, 4, 64 },
  };
  for (int v = 0; v < 3; v++) {
    double inv[HS / 2];
    sutra_rope_inv_freq (inv, &variants[v]);
    float c[T * HS / 2], s[T * HS / 2];
    sutra_rope_table (c, s, pos, T, inv, HS / 2);
    float *x = rand_f (T * NH * HS, -1, 1, 3), *r = rand_f (T * NH * HS, -1, 1, 4);
    float *y = g_memdup2 (x, sizeof (float) * T * NH * HS);
    sutra_rope_forward (y, c, s, T, NH, HS, HS / 2);
    RopeCtx ctx = { T, NH, HS, HS / 2, inv, pos };
    double yd[T * NH * HS], xd[T * NH * HS], g[T * NH * HS];
    for (int i = 0; i < T * NH * HS; i++) xd[i] = x[i];
    rope_fwd_d (yd, xd, &ctx);
    for (int i = 0; i < T * NH * HS; i++) g_assert_cmpfloat (fabs (y[i] - yd[i]), <, 1e-5);
    float *dx = g_memdup2 (r, sizeof (float) * T * NH * HS);
    sutra_rope_backward (dx, c, s, T, NH, HS, HS / 2);
    numeric_grad (g, x, T * NH * HS, T * NH * HS, r, rope_fwd_d, &ctx);
    assert_grad_close ("rope dx", dx, g, T * NH * HS);
    g_free (x); g_free (r); g_free (y); g_free (dx);
  }
  /* llama3 scaling: the highest frequency is untouched, the lowest divided by factor, and
   * the ramp between is monotone (transformers' formula) */
  double inv[32], base[32];
  SutraRope l3 = { SUTRA_ROPE_LLAMA3, 64, 500000, 32, 1, 4, 8192 }, d0 = { SUTRA_ROPE_DEFAULT, 64, 500000, 1, 0, 0, 0 };
  sutra_rope_inv_freq (inv, &l3);
  sutra_rope_inv_freq (base, &d0);
  g_assert_cmpfloat (inv[0], ==, base[0]);
  g_assert_cmpfloat (fabs (inv[31] - base[31] / 32), <, 1e-18);
  for (int i = 1; i < 32; i++)
    g_assert_cmpfloat (inv[i], <, inv[i - 1]);
}

/* ---------------- embedding ---------------- */

static void
test_embedding (void)
{
  enum { V = 6, C = 4, N = 5 };
  float *table = rand_f (V * C, -1, 1, 1), out[N * C];
  int ids[N] = { 0, 5, 2, 2, 3 };
  SutraError err;
  test_assert_ok (sutra_embedding_forward (out, ids, table, N, V, C, &err), &err);
  for (int n = 0; n < N; n++)
    g_assert_cmpmem (out + n * C, C * 4, table + ids[n] * C, C * 4);
  float dt[V * C] = { 0 };
  float *r = rand_f (N * C, -1, 1, 2);
  sutra_embedding_backward (dt, r, ids, N, C);
  for (int i = 0; i < C; i++) {
    g_assert_cmpfloat (fabs (dt[2 * C + i] - (r[2 * C + i] + r[3 * C + i])), <, 1e-7);
    g_assert_cmpfloat (dt[1 * C + i], ==, 0.f);
  }
  int bad[2] = { 1, 6 };
  g_assert_cmpint (sutra_embedding_forward (out, bad, table, 2, V, C, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "position 1"));
  bad[1] = -3;
  g_assert_cmpint (sutra_embedding_forward (out, bad, table, 2, V, C, &err), ==, SUTRA_ERR_INVALID);
  g_free (table);
  g_free (r);
}

/* ---------------- attention ---------------- */

typedef struct { SutraAttnDims d; const float *q, *k, *v; const int *doc; int which; } AttCtx;

static void
att_fwd_d (double *y, const double *x, void *c)
{
  AttCtx *a = c;
  SutraAttnDims d = a->d;
  int group = d.NH / d.NKV;
  for (int b = 0; b < d.B; b++)
    for (int h = 0; h < d.NH; h++)
      for (int i = 0; i < d.T; i++) {
        double s[64], m = -INFINITY;
        for (int j = 0; j <= i; j++) {
          if (a->doc && a->doc[b * d.T + i] != a->doc[b * d.T + j]) {
            s[j] = -INFINITY;
            continue;
          }
          double acc = 0;
          for (int e = 0; e < d.HS; e++) {
            size_t qi = ((size_t) (b * d.T + i) * d.NH + h) * d.HS + e;
            size_t kj = ((size_t) (b * d.T + j) * d.NKV + h / group) * d.HS + e;
            double qv = a->which == 0 ? x[qi] : a->q[qi];
            double kv = a->which == 1 ? x[kj] : a->k[kj];
            acc += qv * kv;
          }
          s[j] = acc * d.scale;
          m = fmax (m, s[j]);
        }
        double sum = 0;
        for (int j = 0; j <= i; j++) sum += s[j] == -INFINITY ? 0 : exp (s[j] - m);
        for (int e = 0; e < d.HS; e++) {
          double acc = 0;
          for (int j = 0; j <= i; j++) {
            if (s[j] == -INFINITY) continue;
            size_t vj = ((size_t) (b * d.T + j) * d.NKV + h / group) * d.HS + e;
            acc += exp (s[j] - m) / sum * (a->which == 2 ? x[vj] : a->v[vj]);
          }
          y[((size_t) (b * d.T + i) * d.NH + h) * d.HS + e] = acc;
        }
      }
}

static void
check_attention (int B, int T, int NH, int NKV, int HS, bool packed)
{
  SutraAttnDims d = { B, T, NH, NKV, HS, 1.f / sqrtf ((float) HS) };
  int nq = B * T * NH * HS, nkv = B * T * NKV * HS;
  float *q = rand_f (nq, -1.5, 1.5, 1), *k = rand_f (nkv, -1.5, 1.5, 2), *v = rand_f (nkv, -1, 1, 3);
  float *r = rand_f (nq, -1, 1, 4);
  int *doc = NULL;
  if (packed) {
    doc = g_new (int, B * T);
    for (int i = 0; i < B * T; i++)
      doc[i] = (i % T) < T / 3 ? 0 : ((i % T) < T - 2 ? 1 : 2);
  }
  float *out = g_new (float, nq), *out2 = g_new (float, nq);
  float *P = g_new (float, B * NH * T * T), *P2 = g_new (float, B * NH * T * T);
  sutra_attention_forward (out, P, q, k, v, doc, &d);
  sutra_attention_forward_naive (out2, P2, q, k, v, doc, &d);
  g_assert_cmpfloat (test_max_abs_err (out, out2, nq), <, FAST_VS_NAIVE_TOL);
  g_assert_cmpfloat (test_max_abs_err (P, P2, B * NH * T * T), <, FAST_VS_NAIVE_TOL);
  float *dq = g_new0 (float, nq), *dk = g_new0 (float, nkv), *dv = g_new0 (float, nkv);
  sutra_attention_backward (dq, dk, dv, r, P, q, k, v, &d);
  double *g = g_new (double, nq);
  AttCtx c = { d, q, k, v, doc, 0 };
  numeric_grad (g, q, nq, nq, r, att_fwd_d, &c);
  assert_grad_close ("attention dq", dq, g, nq);
  c.which = 1;
  numeric_grad (g, k, nkv, nq, r, att_fwd_d, &c);
  assert_grad_close ("attention dk", dk, g, nkv);
  c.which = 2;
  numeric_grad (g, v, nkv, nq, r, att_fwd_d, &c);
  assert_grad_close ("attention dv", dv, g, nkv);
  g_free (q); g_free (k); g_free (v); g_free (r); g_free (out); g_free (out2); g_free (P);
  g_free (P2); g_free (dq); g_free (dk); g_free (dv); g_free (g); g_free (doc);
}

static void
test_attention (void)
{
  sutra_set_threads (2);
  check_attention (1, 5, 2, 2, 4, false);    /* MHA */
  check_attention (2, 6, 4, 2, 4, false);    /* GQA */
  check_attention (1, 5, 3, 1, 4, false);    /* MQA */
  check_attention (2, 9, 4, 2, 3, true);     /* packed documents */
  sutra_set_threads (1);
  check_attention (2, 6, 4, 2, 4, false);    /* single thread path */
  sutra_set_threads (2);
}

/* ---------------- cross-entropy ---------------- */

typedef struct { int N, V; const int *t; } CeCtx;

static void
ce_fwd_d (double *y, const double *x, void *c)
{
  CeCtx *e = c;
  double sum = 0;
  int valid = 0;
  for (int n = 0; n < e->N; n++) {
    if (e->t[n] == SUTRA_IGNORE_INDEX) continue;
    double m = -INFINITY, s = 0;
    for (int i = 0; i < e->V; i++) m = fmax (m, x[n * e->V + i]);
    for (int i = 0; i < e->V; i++) s += exp (x[n * e->V + i] - m);
    sum += m + log (s) - x[n * e->V + e->t[n]];
    valid++;
  }
  y[0] = sum / valid;
}

static void
test_cross_entropy (void)
{
  enum { N = 5, V = 7 };
  float *x = rand_f (N * V, -3, 3, 5);
  int t[N] = { 3, SUTRA_IGNORE_INDEX, 0, 6, SUTRA_IGNORE_INDEX };
  float loss;
  int valid;
  SutraError err;
  test_assert_ok (sutra_cross_entropy_forward (&loss, &valid, x, t, N, V, &err), &err);
  g_assert_cmpint (valid, ==, 3);
  double xd[N * V], ref;
  for (int i = 0; i < N * V; i++) xd[i] = x[i];
  CeCtx c = { N, V, t };
  ce_fwd_d (&ref, xd, &c);
  g_assert_cmpfloat (fabs (loss - ref), <, 1e-6);
  float dl[N * V];
  float r = 0.7f;
  sutra_cross_entropy_backward (dl, x, t, r, valid, N, V);
  double g[N * V];
  numeric_grad (g, x, N * V, 1, &r, ce_fwd_d, &c);
  assert_grad_close ("cross-entropy", dl, g, N * V);
  /* the in-place (aliased) form gives the same gradient */
  float *inplace = g_memdup2 (x, sizeof (float) * N * V);
  sutra_cross_entropy_backward (inplace, inplace, t, r, valid, N, V);
  g_assert_cmpmem (inplace, sizeof dl, dl, sizeof dl);
  /* an out-of-range label is an error naming its position */
  int bad[N] = { 3, 9, 0, 0, 0 };
  g_assert_cmpint (sutra_cross_entropy_forward (&loss, &valid, x, bad, N, V, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "position 1"));
  /* all ignored: loss 0, no NaN */
  int none[N] = { -100, -100, -100, -100, -100 };
  test_assert_ok (sutra_cross_entropy_forward (&loss, &valid, x, none, N, V, &err), &err);
  g_assert_cmpint (valid, ==, 0);
  g_assert_cmpfloat (loss, ==, 0.f);
  g_free (x);
  g_free (inplace);
}

/* the decode matrix-vector kernel against its naive twin: row counts around the 4-row blocks
 * and the split across threads, columns around the 16-wide steps, accumulate or overwrite */
static void
test_sgemv (void)
{
  const int Ms[] = { 1, 3, 4, 5, 67, 130 }, Ks[] = { 1, 15, 16, 17, 64, 173 };
  for (size_t a = 0; a < G_N_ELEMENTS (Ms); a++)
    for (size_t b = 0; b < G_N_ELEMENTS (Ks); b++)
      for (int acc = 0; acc < 2; acc++)
        for (int threads = 1; threads <= 2; threads++) {
          int M = Ms[a], K = Ks[b];
          float *A = g_new (float, (size_t) M * K), *x = g_new (float, K);
          float *y = g_new (float, M), *yn = g_new (float, M);
          test_fill_uniform (A, (size_t) M * K, -1.f, 1.f, (guint32) (M * 131 + K));
          test_fill_uniform (x, (size_t) K, -1.f, 1.f, (guint32) K);
          test_fill_uniform (y, (size_t) M, -1.f, 1.f, 5);
          memcpy (yn, y, sizeof (float) * (size_t) M);
          sutra_set_threads (threads);
          sutra_sgemv (y, A, x, M, K, acc);
          sutra_sgemv_naive (yn, A, x, M, K, acc);
          g_assert_cmpfloat (test_rel_max_err (y, yn, (size_t) M), <=, FAST_VS_NAIVE_TOL);
          g_free (A); g_free (x); g_free (y); g_free (yn);
        }
  sutra_set_threads (0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/ops/matmul-grad", test_matmul_grad);
  g_test_add_func ("/engine/ops/sgemm-split-vs-naive", test_sgemm_split);
  g_test_add_func ("/engine/ops/linear-grad", test_linear_grad);
  g_test_add_func ("/engine/ops/activation-grad", test_act_grad);
  g_test_add_func ("/engine/ops/activation-threaded", test_act_threaded);
  g_test_add_func ("/engine/ops/binary-grad", test_binary_grad);
  g_test_add_func ("/engine/ops/norm-grad", test_norm_grads);
  g_test_add_func ("/engine/ops/softmax-stable", test_softmax_stable);
  g_test_add_func ("/engine/ops/rope", test_rope);
  g_test_add_func ("/engine/ops/embedding", test_embedding);
  g_test_add_func ("/engine/ops/attention", test_attention);
  g_test_add_func ("/engine/ops/cross-entropy", test_cross_entropy);
  g_test_add_func ("/engine/ops/sgemv", test_sgemv);
  return g_test_run ();
}
