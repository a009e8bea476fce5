/* test-quant.c: the packed formats (layouts, error bounds, parts), the kernels (naive vs scalar
 * vs AVX2 bit for bit; tiled products against dequantize + reference sgemm) and the
 * calibration methods on one layer (GPTQ and AWQ against round to nearest). */
#include "test-util.h"
#include "sutra-ops.h"
#include "sutra-pool.h"
#include "sutra-qcalib.h"
#include "sutra-quant.h"

#include <math.h>
#include <string.h>

/* Error bounds on N(0, 1) weights [256, 1024], as RMSE / std (measured: nf4 0.0921, nf4+dq
 * 0.0921, int4 g32 0.0810, g64 0.0912, g128 0.1007, int8 0.0078 -- int8 matches the uniform
 * rounding noise of its step, 3.2 / 127 / sqrt 12 = 0.0073; bounds ~5% above). */
#define NF4_MAX_REL_RMSE 0.097
#define NF4_DQ_MAX_REL_RMSE 0.097
#define INT4_G32_MAX_REL_RMSE 0.085
#define INT4_G64_MAX_REL_RMSE 0.096
#define INT4_G128_MAX_REL_RMSE 0.106
#define INT8_MAX_REL_RMSE 0.0082
/* Per element, from the format alone: NF4 |w - q| <= absmax * (largest half gap of the code
 * book, (1 - 0.69619) / 2, between -1 and the next code); INT4 and INT8 |w - q| <= scale / 2 (plus float rounding). */
#define NF4_HALF_GAP 0.15191f
#define ROUND_SLACK 1e-5f
/* Tiled products against dequantize + sgemm_naive (float vs double accumulation). */
#define MATMUL_REL_TOL 2e-5
/* Calibration methods on one layer: required improvement of the output error over RTN. */
#define GPTQ_MIN_GAIN 1.3     /* ||(W - Q) X|| ratio RTN / GPTQ with correlated inputs */
#define AWQ_MIN_GAIN 1.2      /* ... RTN / AWQ with outlier input channels */

typedef struct {
  SutraQuantType type;
  int group;
  bool dq;
  const char *label;
} Fmt;

static const Fmt fmts[] = {
  { SUTRA_QUANT_NF4, 0, false, "nf4" },       { SUTRA_QUANT_NF4, 0, true, "nf4-dq" },
  { SUTRA_QUANT_INT4, 32, false, "int4-g32" }, { SUTRA_QUANT_INT4, 64, false, "int4-g64" },
  { SUTRA_QUANT_INT4, 128, false, "int4-g128" }, { SUTRA_QUANT_INT8, 0, false, "int8" },
};
#define N_FMTS (sizeof fmts / sizeof fmts[0])

static SutraQuantParams
params_of (const Fmt *f)
{
  SutraQuantParams p = { f->type, SUTRA_QMETHOD_RTN, f->group, f->dq };
  return p;
}

/* N(0, std) numbers (Box-Muller over GLib's seeded generator) */
static void
fill_normal (float *x, size_t n, float std, guint32 seed)
{
  GRand *r = g_rand_new_with_seed (seed);
  for (size_t i = 0; i < n; i++) {
    double u1 = g_rand_double_range (r, 1e-12, 1.0), u2 = g_rand_double (r);
    x[i] = (float) (sqrt (-2.0 * log (u1)) * cos (2 * G_PI * u2)) * std;
  }
  g_rand_free (r);
}

static SutraQWeight *
quantize (const float *w, int rows, int cols, const SutraQuantParams *p)
{
  SutraQWeight *q = NULL;
  SutraError err;
  test_assert_ok (sutra_qweight_quantize (w, rows, cols, p, &q, &err), &err);
  return q;
}

/* ---- formats ---- */

static void
test_error_bounds (void)
{
  const int R = 256, C = 1024;
  float *w = g_new (float, (size_t) R * C), *d = g_new (float, (size_t) R * C);
  fill_normal (w, (size_t) R * C, 1.f, 7);
  const double bound[N_FMTS] = { NF4_MAX_REL_RMSE, NF4_DQ_MAX_REL_RMSE, INT4_G32_MAX_REL_RMSE,
                                 INT4_G64_MAX_REL_RMSE, INT4_G128_MAX_REL_RMSE, INT8_MAX_REL_RMSE };
  for (size_t f = 0; f < N_FMTS; f++) {
    SutraQuantParams p = params_of (&fmts[f]);
    SutraQWeight *q = quantize (w, R, C, &p);
    sutra_qweight_dequant_rows (q, 0, R, d);
    double se = 0;
    for (size_t i = 0; i < (size_t) R * C; i++)
      se += (double) (w[i] - d[i]) * (w[i] - d[i]);
    double rel = sqrt (se / ((double) R * C));
    g_test_message ("%-10s rmse/std %.4f  bits/weight %.3f", fmts[f].label, rel,
                    sutra_qweight_bits_per_weight (q));
    g_assert_cmpfloat (rel, <=, bound[f]);
    g_assert_cmpfloat (rel, >, 0.0);   /* it is lossy: a copy would be a bug */
    sutra_qweight_free (q);
  }
  g_free (w);
  g_free (d);
}

/* The per-element bounds that follow from each format, on rows with awkward lengths. */
static void
test_element_bounds (void)
{
  const int R = 7, C = 173;
  float *w = g_new (float, R * C), *d = g_new (float, R * C);
  fill_normal (w, R * C, 0.05f, 11);
  w[5] = 1.5f;                                 /* an outlier in row 0 */
  for (size_t f = 0; f < N_FMTS; f++) {
    SutraQuantParams p = params_of (&fmts[f]);
    SutraQWeight *q = quantize (w, R, C, &p);
    sutra_qweight_dequant_rows (q, 0, R, d);
    SutraQPart parts[SUTRA_QPARTS_MAX];
    int np = sutra_qweight_parts (q, parts);
    int G = fmts[f].type == SUTRA_QUANT_INT8 ? C : fmts[f].type == SUTRA_QUANT_NF4 ? 64
                                                                                    : fmts[f].group;
    for (int r = 0; r < R; r++)
      for (int c = 0; c < C; c++) {
        int g0 = c / G * G, n = C - g0 < G ? C - g0 : G;
        float amax = 0, lo = 0, hi = 0;
        for (int i = 0; i < n; i++) {
          float v = w[r * C + g0 + i];
          amax = fmaxf (amax, fabsf (v));
          lo = fminf (lo, v);
          hi = fmaxf (hi, v);
        }
        float bound;
        if (fmts[f].type == SUTRA_QUANT_NF4)
          /* double quantization moves absmax by at most half a step of its 8-bit grid */
          bound = (amax + (fmts[f].dq ? 0.02f * amax + 1e-3f : 0.f)) * NF4_HALF_GAP;
        else if (fmts[f].type == SUTRA_QUANT_INT4)
          bound = (hi - lo) / 15.f * 0.5f * 1.0001f;   /* the grid covers [lo, hi] to s/2 */
        else
          bound = amax / 127.f * 0.5f;
        float e = fabsf (w[r * C + c] - d[r * C + c]);
        if (e > bound + ROUND_SLACK * amax)
          g_error ("%s: element (%d, %d): |%g - %g| = %g > %g", fmts[f].label, r, c,
                   w[r * C + c], d[r * C + c], e, bound);
      }
    (void) np;
    sutra_qweight_free (q);
  }
  g_free (w);
  g_free (d);
}

/* The documented byte layout: byte j of a 32-value sub-block = code j | code (j + 16) << 4. */
static void
test_nibble_layout (void)
{
  /* INT4 g32, one row whose values sit exactly on the grid: codes known in advance */
  float w[32];
  int want[32];
  for (int i = 0; i < 32; i++) {
    want[i] = (i * 7 + 3) % 16;
    w[i] = (float) (want[i] - 4) * 0.5f;      /* scale 0.5, zero 4 once min -2, max 5.5 occur */
  }
  want[0] = 0;
  w[0] = -2.f;
  want[1] = 15;
  w[1] = 5.5f;
  SutraQuantParams p = { SUTRA_QUANT_INT4, SUTRA_QMETHOD_RTN, 32, false };
  SutraQWeight *q = quantize (w, 1, 32, &p);
  SutraQPart parts[SUTRA_QPARTS_MAX];
  int np = sutra_qweight_parts (q, parts);
  g_assert_cmpint (np, ==, 3);
  g_assert_cmpstr (parts[0].name, ==, "qweight");
  g_assert_cmpint (parts[0].shape[1], ==, 16);
  const uint8_t *b = parts[0].data;
  for (int j = 0; j < 16; j++)
    g_assert_cmpint (b[j], ==, want[j] | want[j + 16] << 4);
  g_assert_cmpfloat (((const float *) parts[1].data)[0], ==, 0.5f);
  g_assert_cmpint (((const uint8_t *) parts[2].data)[0], ==, 4);
  float d[64];
  sutra_qweight_dequant_rows (q, 0, 1, d);
  for (int i = 0; i < 32; i++)
    g_assert_cmpfloat (d[i], ==, w[i]);       /* on-grid values come back exactly */
  sutra_qweight_free (q);

  /* NF4: code values times absmax come back exactly, code 7 is zero */
  static const float code[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f };
  float v[64];
  for (int i = 0; i < 64; i++)
    v[i] = code[(i * 5) % 16] * 2.f;
  SutraQuantParams pn = { SUTRA_QUANT_NF4, SUTRA_QMETHOD_RTN, 0, false };
  q = quantize (v, 1, 64, &pn);
  sutra_qweight_parts (q, parts);
  g_assert_cmpint (parts[0].shape[1], ==, 32);
  b = parts[0].data;
  for (int j = 0; j < 16; j++)          /* first sub-block */
    g_assert_cmpint (b[j], ==, ((j * 5) % 16) | (((j + 16) * 5) % 16) << 4);
  g_assert_cmpfloat (((const float *) parts[1].data)[0], ==, 2.f);
  sutra_qweight_dequant_rows (q, 0, 1, d);
  for (int i = 0; i < 32; i++)
    g_assert_cmpfloat (d[i], ==, v[i]);
  sutra_qweight_free (q);
}

/* quantize -> parts -> from_parts (copy and borrow) gives the same weight */
static void
test_parts_roundtrip (void)
{
  const int R = 9, C = 200;
  float *w = g_new (float, R * C), *a = g_new (float, R * C), *b = g_new (float, R * C);
  fill_normal (w, R * C, 0.1f, 3);
  for (size_t f = 0; f < N_FMTS; f++)
    for (int borrow = 0; borrow < 2; borrow++) {
      SutraQuantParams p = params_of (&fmts[f]);
      SutraQWeight *q = quantize (w, R, C, &p), *q2 = NULL;
      SutraQPart parts[SUTRA_QPARTS_MAX];
      int np = sutra_qweight_parts (q, parts);
      SutraError err;
      test_assert_ok (sutra_qweight_from_parts (&p, R, C, parts, np, borrow, &q2, &err), &err);
      g_assert_cmpuint (sutra_qweight_bytes (q2), ==, sutra_qweight_bytes (q));
      sutra_qweight_dequant_rows (q, 0, R, a);
      sutra_qweight_dequant_rows (q2, 0, R, b);
      g_assert_cmpmem (a, sizeof (float) * R * C, b, sizeof (float) * R * C);
      sutra_qweight_free (q2);
      sutra_qweight_free (q);
    }
  g_free (w);
  g_free (a);
  g_free (b);
}

/* Corrupt parts: each gives SUTRA_ERR_FORMAT with a message naming the problem. */
static void
expect_format_error (const SutraQuantParams *p, int R, int C, SutraQPart *parts, int np,
                     const char *needle)
{
  SutraQWeight *q = NULL;
  SutraError err = { 0 };
  SutraStatus st = sutra_qweight_from_parts (p, R, C, parts, np, true, &q, &err);
  g_assert_cmpint (st, ==, SUTRA_ERR_FORMAT);
  g_assert_null (q);
  if (!strstr (err.message, needle))
    g_error ("error '%s' does not mention '%s'", err.message, needle);
}

static void
test_parts_errors (void)
{
  const int R = 4, C = 96;
  float w[4 * 96];
  fill_normal (w, R * C, 0.1f, 5);
  SutraQuantParams p4 = { SUTRA_QUANT_INT4, SUTRA_QMETHOD_GPTQ, 32, false };
  SutraQWeight *q = quantize (w, R, C, &p4);
  SutraQPart parts[SUTRA_QPARTS_MAX + 1], bad[SUTRA_QPARTS_MAX + 1];
  int np = sutra_qweight_parts (q, parts);
  /* wrong block count: a model whose config says 128 columns */
  memcpy (bad, parts, sizeof parts);
  expect_format_error (&p4, R, 128, bad, np, "wrong block count");
  /* truncated: qweight one row short */
  bad[0].shape[0] = R - 1;
  expect_format_error (&p4, R, C, bad, np, "qweight");
  /* missing zeros */
  memcpy (bad, parts, sizeof parts);
  expect_format_error (&p4, R, C, bad, np - 1, "missing part 'zeros'");
  /* a part the format does not have */
  memcpy (bad, parts, sizeof parts);
  bad[np] = parts[1];
  bad[np].name = "absmax";
  expect_format_error (&p4, R, C, bad, np + 1, "unexpected part 'absmax'");
  /* wrong dtype */
  memcpy (bad, parts, sizeof parts);
  bad[1].dtype = SUTRA_F16;
  expect_format_error (&p4, R, C, bad, np, "scales");
  /* zero point out of range, NaN scale */
  uint8_t zeros[4 * 3];
  memcpy (zeros, parts[2].data, sizeof zeros);
  zeros[5] = 16;
  memcpy (bad, parts, sizeof parts);
  bad[2].data = zeros;
  expect_format_error (&p4, R, C, bad, np, "zero point");
  float scales[4 * 3];
  memcpy (scales, parts[1].data, sizeof scales);
  scales[2] = NAN;
  memcpy (bad, parts, sizeof parts);
  bad[1].data = scales;
  expect_format_error (&p4, R, C, bad, np, "not finite");
  /* in_scale on an nf4 weight */
  SutraQuantParams pn = { SUTRA_QUANT_NF4, SUTRA_QMETHOD_RTN, 0, false };
  SutraQWeight *qn = quantize (w, R, C, &pn);
  int nn = sutra_qweight_parts (qn, bad);
  bad[nn] = bad[1];
  bad[nn].name = "in_scale";
  bad[nn].shape[0] = C;
  bad[nn].ndim = 1;
  expect_format_error (&pn, R, C, bad, nn + 1, "in_scale");
  sutra_qweight_free (qn);
  /* bad parameters are SUTRA_ERR_UNSUPPORTED / INVALID, not crashes */
  SutraQWeight *x = NULL;
  SutraError err;
  SutraQuantParams g48 = { SUTRA_QUANT_INT4, SUTRA_QMETHOD_RTN, 48, false };
  g_assert_cmpint (sutra_qweight_from_parts (&g48, R, C, parts, np, true, &x, &err), ==,
                   SUTRA_ERR_UNSUPPORTED);
  SutraQuantParams awq8 = { SUTRA_QUANT_INT8, SUTRA_QMETHOD_AWQ, 0, false };
  g_assert_cmpint (sutra_quant_params_check (&awq8, &err), ==, SUTRA_ERR_UNSUPPORTED);
  SutraQuantParams dq4 = { SUTRA_QUANT_INT4, SUTRA_QMETHOD_RTN, 64, true };
  g_assert_cmpint (sutra_quant_params_check (&dq4, &err), ==, SUTRA_ERR_UNSUPPORTED);
  sutra_qweight_free (q);
}

/* ---- kernels ---- */

static const int shapes[][2] = { { 1, 1 },   { 3, 7 },    { 5, 31 },   { 4, 32 },  { 17, 33 },
                                 { 6, 64 },  { 13, 100 }, { 9, 172 },  { 33, 200 }, { 8, 257 },
                                 { 64, 576 }, { 21, 1536 } };

/* Fills w with N(0, 0.1) and a few exact zeros; x likewise. */
static void
kernel_case (const Fmt *f, int R, int C, bool in_scale, guint32 seed)
{
  float *w = g_new (float, (size_t) R * C), *x = g_new (float, C);
  fill_normal (w, (size_t) R * C, 0.1f, seed);
  fill_normal (x, C, 1.f, seed + 1);
  SutraQuantParams p = params_of (f);
  SutraQWeight *q;
  if (in_scale) {
    float *s = g_new (float, C);
    for (int c = 0; c < C; c++)
      s[c] = 0.5f + (float) (c % 5) * 0.3f;
    SutraError err;
    test_assert_ok (sutra_awq_quantize (w, R, C, s, true, NULL, &p, &q, &err), &err);
    g_assert_true (sutra_qweight_has_in_scale (q));
    g_free (s);
  } else {
    q = quantize (w, R, C, &p);
  }
  float *ref = g_new (float, R), *y = g_new (float, R);
  for (int acc = 0; acc < 2; acc++) {
    for (int r = 0; r < R; r++)
      ref[r] = y[r] = (float) r * 0.25f;
    sutra_qweight_matvec_naive (q, x, ref, acc);
    for (int k = SUTRA_QKERNEL_SCALAR; k <= SUTRA_QKERNEL_AVX512; k++) {
      SutraQuantKernel got = sutra_quant_set_kernel ((SutraQuantKernel) k);
      for (int threads = 1; threads <= 2; threads++) {
        sutra_set_threads (threads);
        for (int r = 0; r < R; r++)
          y[r] = (float) r * 0.25f;
        sutra_qweight_matvec (q, x, y, acc);
        if (memcmp (y, ref, sizeof (float) * R) != 0) {
          int r = 0;
          while (y[r] == ref[r] || (isnan (y[r]) && isnan (ref[r])))
            r++;
          g_error ("%s [%d, %d]%s %s kernel, %d threads, acc %d: row %d: %.9g != naive %.9g",
                   f->label, R, C, in_scale ? " in_scale" : "", sutra_quant_kernel_name (got),
                   threads, acc, r, y[r], ref[r]);
        }
      }
    }
  }
  sutra_quant_set_kernel (SUTRA_QKERNEL_AUTO);
  sutra_qweight_free (q);
  g_free (w);
  g_free (x);
  g_free (ref);
  g_free (y);
}

static void
test_matvec_bit_exact (void)
{
  SutraQuantKernel best = sutra_quant_set_kernel (SUTRA_QKERNEL_AUTO);
  g_test_message ("best kernel on this CPU: %s (paths it lacks run as the next one down)",
                  sutra_quant_kernel_name (best));
  for (size_t f = 0; f < N_FMTS; f++)
    for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++)
      kernel_case (&fmts[f], shapes[s][0], shapes[s][1], false, (guint32) (f * 100 + s));
  for (int g = 32; g <= 128; g *= 2) {       /* AWQ weights with explicit input scales */
    Fmt f = { SUTRA_QUANT_INT4, g, false, "int4-awq" };
    kernel_case (&f, 13, 100, true, 9);
    kernel_case (&f, 8, 576, true, 10);
  }
  sutra_set_threads (0);
}

/* INT4 matvec takes x as 8-bit codes per 32 values: every kernel, on inputs at the rounding
 * edges (ties at k + 0.5 code steps, the block maximum, partial blocks), still equals the naive
 * twin bit for bit; against the exact product with the dequantized weights the error stays at
 * the 8-bit input's rounding (bound measured below); NaN and Inf in x give NaN. */
/* Rounding x to d = max|x| / 127 steps adds an error of RMS d / sqrt(12) per element, so a row
 * dot's relative RMS error is about E[max |x| over 32] / (127 sqrt 12) = 2.07 / 440 = 0.0047
 * for N(0, 1) inputs; measured 0.0048-0.0049 (groups 32, 64, 128; 3 inputs each). */
#define INT4_Q8_MAX_REL_RMSE 0.0065
static void
test_int4_q8_input (void)
{
  const int R = 37, C = 203;
  float *w = g_new (float, R * C), *x = g_new (float, C), *y = g_new (float, R);
  float *ref = g_new (float, R), *deq = g_new (float, R * C);
  fill_normal (w, R * C, 0.1f, 31);
  for (int G = 32; G <= 128; G *= 2) {
    Fmt f = { SUTRA_QUANT_INT4, G, false, "int4" };
    SutraQuantParams p = params_of (&f);
    SutraQWeight *q = quantize (w, R, C, &p);
    /* rounding edges: block maximum 127 (scale 1), values on half steps */
    for (int c = 0; c < C; c++)
      x[c] = c % 32 == 5 ? 127.f : (float) ((c * 7) % 255 - 127) * 0.5f;
    sutra_qweight_matvec_naive (q, x, ref, false);
    for (int k = SUTRA_QKERNEL_SCALAR; k <= SUTRA_QKERNEL_AVX512; k++) {
      sutra_quant_set_kernel ((SutraQuantKernel) k);
      sutra_qweight_matvec (q, x, y, false);
      g_assert_cmpmem (y, sizeof (float) * R, ref, sizeof (float) * R);
    }
    sutra_quant_set_kernel (SUTRA_QKERNEL_AUTO);
    /* accuracy against the exact product of the dequantized weights */
    sutra_qweight_dequant_rows (q, 0, R, deq);
    double worst = 0;
    for (int s = 0; s < 3; s++) {
      fill_normal (x, C, 1.f, (guint32) (40 + s));
      sutra_qweight_matvec (q, x, y, false);
      double se = 0, sr = 0;
      for (int r = 0; r < R; r++) {
        double e = 0;
        for (int c = 0; c < C; c++)
          e += (double) deq[(size_t) r * C + c] * x[c];
        se += (y[r] - e) * (y[r] - e);
        sr += e * e;
      }
      worst = fmax (worst, sqrt (se / sr));
    }
    g_test_message ("int4 g%d with 8-bit input: rel RMS error vs exact %.4f", G, worst);
    g_assert_cmpfloat (worst, <, INT4_Q8_MAX_REL_RMSE);
    g_assert_cmpfloat (worst, >, 0);
    /* NaN and Inf propagate */
    for (int bad = 0; bad < 2; bad++) {
      fill_normal (x, C, 1.f, 50);
      x[C - 3] = bad ? INFINITY : NAN;
      for (int k = SUTRA_QKERNEL_SCALAR; k <= SUTRA_QKERNEL_AVX512; k++) {
        sutra_quant_set_kernel ((SutraQuantKernel) k);
        sutra_qweight_matvec (q, x, y, false);
        for (int r = 0; r < R; r++)
          g_assert_true (isnan (y[r]));
      }
      sutra_quant_set_kernel (SUTRA_QKERNEL_AUTO);
    }
    sutra_qweight_free (q);
  }
  g_free (w);
  g_free (x);
  g_free (y);
  g_free (ref);
  g_free (deq);
}

/* The scalar and AVX2 dequantization agree too (the tiles both products use). */
static void
test_dequant_paths (void)
{
  const int R = 5, C = 203;
  float *w = g_new (float, R * C), *a = g_new (float, R * C), *b = g_new (float, R * C);
  fill_normal (w, R * C, 0.2f, 21);
  for (size_t f = 0; f < N_FMTS; f++) {
    SutraQuantParams p = params_of (&fmts[f]);
    SutraQWeight *q = quantize (w, R, C, &p);
    sutra_quant_set_kernel (SUTRA_QKERNEL_SCALAR);
    sutra_qweight_dequant_rows (q, 0, R, a);
    for (int k = SUTRA_QKERNEL_AVX2; k <= SUTRA_QKERNEL_AVX512; k++) {
      sutra_quant_set_kernel ((SutraQuantKernel) k);
      sutra_qweight_dequant_rows (q, 0, R, b);
      g_assert_cmpmem (a, sizeof (float) * R * C, b, sizeof (float) * R * C);
    }
    sutra_qweight_free (q);
  }
  sutra_quant_set_kernel (SUTRA_QKERNEL_AUTO);
  g_free (w);
  g_free (a);
  g_free (b);
}

static void
test_matmul_vs_sgemm (void)
{
  static const int cases[][3] = { { 2, 17, 33 }, { 5, 64, 576 }, { 33, 70, 172 }, { 256, 96, 200 },
                                  { 7, 1100, 64 } };
  for (size_t f = 0; f < N_FMTS; f++)
    for (size_t c = 0; c < G_N_ELEMENTS (cases); c++) {
      int N = cases[c][0], R = cases[c][1], C = cases[c][2];
      float *w = g_new (float, (size_t) R * C), *in = g_new (float, (size_t) N * C);
      float *dout = g_new (float, (size_t) N * R);
      fill_normal (w, (size_t) R * C, 0.1f, (guint32) (c + 1));
      fill_normal (in, (size_t) N * C, 1.f, (guint32) (c + 2));
      fill_normal (dout, (size_t) N * R, 1.f, (guint32) (c + 3));
      SutraQuantParams p = params_of (&fmts[f]);
      SutraQWeight *q = quantize (w, R, C, &p);
      float *ref = g_new (float, (size_t) N * R), *out = g_new (float, (size_t) N * R);
      float *dref = g_new (float, (size_t) N * C), *din = g_new (float, (size_t) N * C);
      for (int threads = 1; threads <= 2; threads++) {
        sutra_set_threads (threads);
        for (int acc = 0; acc < 2; acc++) {
          for (size_t i = 0; i < (size_t) N * R; i++)
            ref[i] = out[i] = 0.5f;
          sutra_qweight_matmul_naive (q, in, ref, N, acc);
          sutra_qweight_matmul (q, in, out, N, acc);
          double e = test_rel_max_err (out, ref, (size_t) N * R);
          if (e > MATMUL_REL_TOL)
            g_error ("%s matmul N=%d [%d, %d]: rel err %g", fmts[f].label, N, R, C, e);
        }
        for (size_t i = 0; i < (size_t) N * C; i++)
          dref[i] = din[i] = 0.25f;
        sutra_qweight_matmul_t_naive (q, dout, dref, N);
        sutra_qweight_matmul_t (q, dout, din, N);
        double e = test_rel_max_err (din, dref, (size_t) N * C);
        if (e > MATMUL_REL_TOL)
          g_error ("%s matmul_t N=%d [%d, %d]: rel err %g", fmts[f].label, N, R, C, e);
      }
      sutra_qweight_free (q);
      g_free (w);
      g_free (in);
      g_free (dout);
      g_free (ref);
      g_free (out);
      g_free (dref);
      g_free (din);
    }
  sutra_set_threads (0);
}

/* ---- calibration methods on one layer ---- */

/* X [N, C]: strongly correlated channels (a rank-k signal mixed into every channel + noise) */
static float *
correlated_inputs (int N, int C, int k, guint32 seed)
{
  float *z = g_new (float, (size_t) N * k), *mix = g_new (float, (size_t) k * C);
  float *x = g_new (float, (size_t) N * C);
  fill_normal (z, (size_t) N * k, 1.f, seed);
  fill_normal (mix, (size_t) k * C, 1.f, seed + 1);
  fill_normal (x, (size_t) N * C, 0.1f, seed + 2);
  sutra_sgemm_naive (false, false, N, C, k, 1.f, z, k, mix, C, 1.f, x, C);
  g_free (z);
  g_free (mix);
  return x;
}

static void
test_gptq_beats_rtn (void)
{
  const int R = 96, C = 256, N = 2048;
  float *w = g_new (float, R * C);
  fill_normal (w, R * C, 0.05f, 41);
  float *x = correlated_inputs (N, C, 8, 42);
  SutraQStats st;
  SutraError err;
  test_assert_ok (sutra_qstats_init (&st, C, true, &err), &err);
  sutra_qstats_add (&st, x, N / 2);
  sutra_qstats_add (&st, x + (size_t) (N / 2) * C, N / 2);
  for (int G = 32; G <= 128; G *= 2) {
    SutraQuantParams p = { SUTRA_QUANT_INT4, SUTRA_QMETHOD_RTN, G, false };
    SutraQWeight *rtn = quantize (w, R, C, &p), *gq = NULL;
    test_assert_ok (sutra_gptq_quantize (w, R, C, &st, &p, NULL, &gq, &err), &err);
    g_assert_cmpint (sutra_qweight_params (gq)->method, ==, SUTRA_QMETHOD_GPTQ);
    double e_rtn = sutra_qstats_output_error (&st, w, rtn);
    double e_gptq = sutra_qstats_output_error (&st, w, gq);
    g_test_message ("g%d: ||(W-Q)X||^2 rtn %.4g gptq %.4g (ratio %.2f)", G, e_rtn, e_gptq,
                    sqrt (e_rtn / e_gptq));
    g_assert_cmpfloat (sqrt (e_rtn / e_gptq), >=, GPTQ_MIN_GAIN);
    sutra_qweight_free (rtn);
    sutra_qweight_free (gq);
  }
  /* cancellation inside the column loop */
  atomic_bool stop = true;
  SutraGptqOptions o = { 0.01f, 128, &stop };
  SutraQuantParams p = { SUTRA_QUANT_INT4, SUTRA_QMETHOD_GPTQ, 64, false };
  SutraQWeight *none = NULL;
  g_assert_cmpint (sutra_gptq_quantize (w, R, C, &st, &p, &o, &none, &err), ==,
                   SUTRA_ERR_CANCELLED);
  g_assert_null (none);
  sutra_qstats_clear (&st);
  g_free (w);
  g_free (x);
}

static void
test_awq_beats_rtn (void)
{
  const int R = 96, C = 256, N = 1024;
  float *w = g_new (float, R * C), *x = g_new (float, (size_t) N * C);
  fill_normal (w, R * C, 0.05f, 51);
  fill_normal (x, (size_t) N * C, 1.f, 52);
  /* a few salient channels with large activations (AWQ section 3.1's observation) */
  for (int n = 0; n < N; n++)
    for (int c = 3; c < C; c += 37)
      x[(size_t) n * C + c] *= 25.f;
  SutraQStats st;
  SutraError err;
  test_assert_ok (sutra_qstats_init (&st, C, true, &err), &err);
  sutra_qstats_add (&st, x, N);
  for (int G = 32; G <= 128; G *= 2) {
    SutraQuantParams p = { SUTRA_QUANT_INT4, SUTRA_QMETHOD_AWQ, G, false };
    float *s = g_new (float, C);
    const float *ws[1] = { w };
    int rows[1] = { R };
    SutraAwqResult res;
    test_assert_ok (sutra_awq_search (ws, rows, 1, C, &st, &p, NULL, s, &res, &err), &err);
    SutraQWeight *aq = NULL, *rtn;
    test_assert_ok (sutra_awq_quantize (w, R, C, s, true, NULL, &p, &aq, &err), &err);
    SutraQuantParams pr = p;
    pr.method = SUTRA_QMETHOD_RTN;
    rtn = quantize (w, R, C, &pr);
    double e_rtn = sutra_qstats_output_error (&st, w, rtn);
    double e_awq = sutra_qstats_output_error (&st, w, aq);
    g_test_message ("g%d: alpha %.2f, search loss %.4g -> %.4g; ||(W-Q)X||^2 rtn %.4g awq %.4g "
                    "(ratio %.2f)", G, res.alpha, res.loss_rtn, res.loss, e_rtn, e_awq,
                    sqrt (e_rtn / e_awq));
    g_assert_cmpfloat (res.alpha, >, 0.f);
    g_assert_cmpfloat (fabs (res.loss_rtn - e_rtn), <=, 1e-3 * e_rtn);  /* alpha 0 is RTN */
    g_assert_cmpfloat (sqrt (e_rtn / e_awq), >=, AWQ_MIN_GAIN);
    sutra_qweight_free (aq);
    sutra_qweight_free (rtn);
    g_free (s);
  }
  sutra_qstats_clear (&st);
  g_free (w);
  g_free (x);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/quant/error-bounds", test_error_bounds);
  g_test_add_func ("/engine/quant/element-bounds", test_element_bounds);
  g_test_add_func ("/engine/quant/nibble-layout", test_nibble_layout);
  g_test_add_func ("/engine/quant/parts-roundtrip", test_parts_roundtrip);
  g_test_add_func ("/engine/quant/parts-errors", test_parts_errors);
  g_test_add_func ("/engine/quant/matvec-bit-exact", test_matvec_bit_exact);
  g_test_add_func ("/engine/quant/int4-q8-input", test_int4_q8_input);
  g_test_add_func ("/engine/quant/dequant-paths", test_dequant_paths);
  g_test_add_func ("/engine/quant/matmul-vs-sgemm", test_matmul_vs_sgemm);
  g_test_add_func ("/engine/quant/gptq-beats-rtn", test_gptq_beats_rtn);
  g_test_add_func ("/engine/quant/awq-beats-rtn", test_awq_beats_rtn);
  return g_test_run ();
}
