/* test-sampler.c: the sampler against hand-computed values: HF repetition penalty, OpenAI
 * frequency/presence penalties, temperature, top-k (ties), top-p, min-p, their order, greedy
 * ties, the empirical distribution of draws, and seed reproducibility. */
#include "test-util.h"
#include "sutra-sampler.h"

#include <math.h>
#include <string.h>

#define PROB_TOL 1e-6          /* float probabilities vs double hand computation */
#define DRAWS 40000
#define SIGMAS 4.5             /* empirical frequency within 4.5 binomial standard deviations */

static SutraSampler *
make (int V, SutraSamplerParams *p)
{
  SutraSampler *s;
  SutraError err;
  test_assert_ok (sutra_sampler_new (V, p, &s, &err), &err);
  return s;
}

static SutraSamplerParams
sampling (void)
{
  SutraSamplerParams p;
  sutra_sampler_params_init (&p);
  p.do_sample = true;
  p.top_k = 0;
  return p;
}

static void
softmax_d (double *out, const double *x, int n)
{
  double m = x[0], s = 0;
  for (int i = 1; i < n; i++)
    m = fmax (m, x[i]);
  for (int i = 0; i < n; i++)
    s += (out[i] = exp (x[i] - m));
  for (int i = 0; i < n; i++)
    out[i] /= s;
}

static void
test_defaults_and_check (void)
{
  SutraSamplerParams p;
  sutra_sampler_params_init (&p);
  g_assert_false (p.do_sample);
  g_assert_cmpint (p.top_k, ==, 50);
  g_assert_cmpfloat (p.top_p, ==, 1.f);
  SutraError err;
  g_assert_cmpint (sutra_sampler_params_check (&p, &err), ==, SUTRA_OK);
  SutraSamplerParams bad = p;
  bad.temperature = 0;
  g_assert_cmpint (sutra_sampler_params_check (&bad, &err), ==, SUTRA_ERR_INVALID);
  g_assert_nonnull (strstr (err.message, "temperature"));
  bad = p; bad.top_p = 1.5f;
  g_assert_cmpint (sutra_sampler_params_check (&bad, &err), ==, SUTRA_ERR_INVALID);
  bad = p; bad.min_p = 1.f;
  g_assert_cmpint (sutra_sampler_params_check (&bad, &err), ==, SUTRA_ERR_INVALID);
  bad = p; bad.repetition_penalty = 0;
  g_assert_cmpint (sutra_sampler_params_check (&bad, &err), ==, SUTRA_ERR_INVALID);
  bad = p; bad.top_k = -1;
  SutraSampler *s;
  g_assert_cmpint (sutra_sampler_new (8, &bad, &s, &err), ==, SUTRA_ERR_INVALID);
}

static void
test_greedy (void)
{
  SutraSamplerParams p;
  sutra_sampler_params_init (&p);
  SutraSampler *s = make (5, &p);
  float l[5] = { 1, 4, 2, 4, 0 };
  g_assert_cmpint (sutra_sampler_sample (s, l), ==, 1);      /* lowest id wins the tie */
  /* the repetition penalty applies before the argmax, as in transformers' greedy search */
  p.repetition_penalty = 2.f;
  sutra_sampler_reset (s, &p);
  int prompt[1] = { 1 };
  sutra_sampler_accept_prompt (s, prompt, 1);
  float l2[5] = { 1, 4, 2, 3.5f, 0 };
  g_assert_cmpint (sutra_sampler_sample (s, l2), ==, 3);     /* 4 / 2 = 2 < 3.5 */
  g_assert_cmpfloat (l2[1], ==, 2.f);
  float probs[5];
  float l3[5] = { 1, 4, 2, 3.5f, 0 };
  sutra_sampler_probs (s, l3, probs);
  g_assert_cmpfloat (probs[3], ==, 1.f);
  g_assert_cmpfloat (probs[1], ==, 0.f);
  sutra_sampler_free (s);
}

static void
test_penalties_hand (void)
{
  SutraSamplerParams p = sampling ();
  p.repetition_penalty = 2.f;
  p.frequency_penalty = 0.1f;
  p.presence_penalty = 0.5f;
  SutraSampler *s = make (5, &p);
  int prompt[2] = { 1, 1 };
  sutra_sampler_accept_prompt (s, prompt, 2);
  sutra_sampler_accept (s, 3);
  sutra_sampler_accept (s, 3);
  sutra_sampler_accept (s, 2);
  sutra_sampler_accept (s, 99);        /* out of range: ignored */
  float l[5] = { 2, -1, 0.5f, 3, -0.25f };
  /* rep: id1 -1*2 = -2; id3 3/2 = 1.5; id2 0.5/2 = 0.25. freq/presence over generated:
   * id3 1.5 - 2*0.1 - 0.5 = 0.8; id2 0.25 - 0.1 - 0.5 = -0.35 */
  double want[5] = { 2, -2, -0.35, 0.8, -0.25 }, pw[5];
  float probs[5];
  sutra_sampler_probs (s, l, probs);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat (fabs (l[i] - want[i]), <, 1e-6);
  softmax_d (pw, want, 5);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat (fabs (probs[i] - pw[i]), <, PROB_TOL);
  /* reset forgets every token */
  sutra_sampler_reset (s, &p);
  float l2[5] = { 2, -1, 0.5f, 3, -0.25f };
  sutra_sampler_probs (s, l2, probs);
  g_assert_cmpfloat (l2[1], ==, -1.f);
  g_assert_cmpfloat (l2[3], ==, 3.f);
  sutra_sampler_free (s);
}

static void
test_temperature_topk_topp_minp (void)
{
  SutraSamplerParams p = sampling ();
  p.temperature = 0.5f;
  SutraSampler *s = make (4, &p);
  float l[4] = { 1, 0.5f, -1, 2 }, probs[4];
  double x[4] = { 2, 1, -2, 4 }, pw[4];
  sutra_sampler_probs (s, l, probs);
  softmax_d (pw, x, 4);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (fabs (probs[i] - pw[i]), <, PROB_TOL);
  sutra_sampler_free (s);

  /* top-k keeps every logit equal to the k-th largest */
  p = sampling ();
  p.top_k = 2;
  s = make (5, &p);
  float lk[5] = { 1, 3, 3, 2, 0 }, pk[5];
  sutra_sampler_probs (s, lk, pk);
  g_assert_cmpfloat (fabs (pk[1] - 0.5), <, PROB_TOL);
  g_assert_cmpfloat (fabs (pk[2] - 0.5), <, PROB_TOL);
  g_assert_cmpfloat (pk[0] + pk[3] + pk[4], ==, 0.f);
  p.top_k = 3;
  sutra_sampler_reset (s, &p);
  float lk2[5] = { 1, 3, 3, 2, 0 };
  sutra_sampler_probs (s, lk2, pk);
  double xk[3] = { 3, 3, 2 }, pkw[3];
  softmax_d (pkw, xk, 3);
  g_assert_cmpfloat (fabs (pk[3] - pkw[2]), <, PROB_TOL);
  g_assert_cmpfloat (pk[0], ==, 0.f);
  p.top_k = 100;                       /* larger than the vocabulary: no effect */
  sutra_sampler_reset (s, &p);
  float lk3[5] = { 1, 3, 3, 2, 0 };
  sutra_sampler_probs (s, lk3, pk);
  g_assert_cmpfloat (pk[4], >, 0.f);
  sutra_sampler_free (s);

  /* top-p and min-p on probabilities 0.5 0.3 0.15 0.05 */
  double pr[4] = { 0.15, 0.5, 0.05, 0.3 };
  float lp[4];
  for (int i = 0; i < 4; i++)
    lp[i] = (float) log (pr[i]);
  p = sampling ();
  p.top_p = 0.75f;                     /* ascending cumsum 0.05 0.20 0.50 1: drop <= 0.25 */
  s = make (4, &p);
  float tmp[4], pp[4];
  memcpy (tmp, lp, sizeof tmp);
  sutra_sampler_probs (s, tmp, pp);
  g_assert_cmpfloat (fabs (pp[1] - 0.625), <, PROB_TOL);
  g_assert_cmpfloat (fabs (pp[3] - 0.375), <, PROB_TOL);
  g_assert_cmpfloat (pp[0] + pp[2], ==, 0.f);
  p.top_p = 0.1f;                      /* the most likely token always stays */
  sutra_sampler_reset (s, &p);
  memcpy (tmp, lp, sizeof tmp);
  sutra_sampler_probs (s, tmp, pp);
  g_assert_cmpfloat (pp[1], ==, 1.f);
  p.top_p = 1.f;
  p.min_p = 0.2f;                      /* threshold 0.1: 0.05 goes */
  sutra_sampler_reset (s, &p);
  memcpy (tmp, lp, sizeof tmp);
  sutra_sampler_probs (s, tmp, pp);
  g_assert_cmpfloat (pp[2], ==, 0.f);
  g_assert_cmpfloat (fabs (pp[0] - 0.15 / 0.95), <, PROB_TOL);
  /* order: temperature first, then top-p on the sharpened distribution. At T = 0.5 the
   * probabilities are proportional to p^2: 0.25 0.09 0.0225 0.0025 -> 0.685 0.247 0.062 0.007, so
   * top_p 0.9 keeps exactly the first two (the ascending cumsum 0.007 0.068 <= 0.1). */
  p = sampling ();
  p.temperature = 0.5f;
  p.top_p = 0.9f;
  sutra_sampler_reset (s, &p);
  memcpy (tmp, lp, sizeof tmp);
  sutra_sampler_probs (s, tmp, pp);
  g_assert_cmpfloat (fabs (pp[1] - 0.25 / 0.34), <, PROB_TOL);
  g_assert_cmpfloat (fabs (pp[3] - 0.09 / 0.34), <, PROB_TOL);
  g_assert_cmpfloat (pp[0], ==, 0.f);
  sutra_sampler_free (s);
}

static void
test_draws_follow_distribution (void)
{
  SutraSamplerParams p = sampling ();
  p.seed = 1234;
  p.top_k = 3;
  SutraSampler *s = make (6, &p);
  double x[6] = { 0.2, 1.5, -3, 0.9, 1.1, -0.5 }, want[6];
  /* top-3 keeps ids 1, 4, 3 */
  double kept[3] = { 1.5, 1.1, 0.9 }, pk[3];
  softmax_d (pk, kept, 3);
  memset (want, 0, sizeof want);
  want[1] = pk[0];
  want[4] = pk[1];
  want[3] = pk[2];
  int hist[6] = { 0 };
  for (int d = 0; d < DRAWS; d++) {
    float l[6];
    for (int i = 0; i < 6; i++)
      l[i] = (float) x[i];
    hist[sutra_sampler_sample (s, l)]++;
  }
  for (int i = 0; i < 6; i++) {
    double sd = sqrt (DRAWS * want[i] * (1 - want[i]));
    g_test_message ("id %d: %d draws, expected %.1f (sd %.1f)", i, hist[i], DRAWS * want[i], sd);
    g_assert_cmpfloat (fabs (hist[i] - DRAWS * want[i]), <=, SIGMAS * sd + 1e-9);
  }
  /* uniform draws cover [0, 1) evenly (mean 0.5, sd 1/sqrt(12 n)) */
  double sum = 0;
  for (int d = 0; d < DRAWS; d++)
    sum += sutra_sampler_uniform (s);
  g_assert_cmpfloat (fabs (sum / DRAWS - 0.5), <, SIGMAS / sqrt (12.0 * DRAWS));
  sutra_sampler_free (s);
}

static void
test_seed_reproducible (void)
{
  enum { V = 64, N = 200 };
  float base[V];
  test_fill_uniform (base, V, -2.f, 2.f, 3);
  int seq[3][N];
  for (int r = 0; r < 3; r++) {
    SutraSamplerParams p = sampling ();
    p.seed = r == 2 ? 8 : 7;
    p.temperature = 1.3f;
    p.repetition_penalty = 1.1f;
    SutraSampler *s = make (V, &p);
    for (int t = 0; t < N; t++) {
      float l[V];
      memcpy (l, base, sizeof l);
      seq[r][t] = sutra_sampler_sample (s, l);
      sutra_sampler_accept (s, seq[r][t]);
    }
    sutra_sampler_free (s);
  }
  g_assert_cmpmem (seq[0], sizeof seq[0], seq[1], sizeof seq[1]);
  g_assert_true (memcmp (seq[0], seq[2], sizeof seq[0]) != 0);
}

static void
test_degenerate_logits (void)
{
  SutraSamplerParams p = sampling ();
  SutraSampler *s = make (3, &p);
  float l[3] = { -INFINITY, -INFINITY, -INFINITY };
  int id = sutra_sampler_sample (s, l);
  g_assert_cmpint (id, >=, 0);
  g_assert_cmpint (id, <, 3);
  float l2[3] = { -INFINITY, 5.f, -INFINITY }, pr[3];
  sutra_sampler_probs (s, l2, pr);
  g_assert_cmpfloat (pr[1], ==, 1.f);
  sutra_sampler_free (s);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/sampler/defaults-and-check", test_defaults_and_check);
  g_test_add_func ("/engine/sampler/greedy", test_greedy);
  g_test_add_func ("/engine/sampler/penalties-hand-computed", test_penalties_hand);
  g_test_add_func ("/engine/sampler/temperature-topk-topp-minp", test_temperature_topk_topp_minp);
  g_test_add_func ("/engine/sampler/draws-follow-distribution", test_draws_follow_distribution);
  g_test_add_func ("/engine/sampler/seed-reproducible", test_seed_reproducible);
  g_test_add_func ("/engine/sampler/degenerate-logits", test_degenerate_logits);
  return g_test_run ();
}
