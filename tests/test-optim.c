/* test-optim.c: optimizers against torch.optim trajectories and schedules against
 * transformers' get_*_schedule_with_warmup (../shared/testdata/hf-refs/optim). */
#include "test-util.h"
#include "sutra-optim.h"
#include "sutra-safetensors.h"

#include <json-c/json.h>
#include <math.h>
#include <string.h>

#define TRAJ_REL_TOL 1e-5      /* float32 state vs torch float64, 12 steps */
#define LR_ABS_TOL 1e-12

static void
test_trajectories (void)
{
  const char *dir = test_shared_path ("hf-refs/optim");
  if (!dir)
    return;
  char *path = g_build_filename (dir, "optim.safetensors", NULL);
  SutraSafetensors *st;
  SutraError err;
  test_assert_ok (sutra_safetensors_open (path, &st, &err), &err);
  float p0[64], grads[12 * 64], traj[12 * 64];
  int64_t s1[1] = { 64 }, s2[2] = { 12, 64 };
  test_assert_ok (sutra_safetensors_read_f32 (st, "p0", p0, 1, s1, &err), &err);
  test_assert_ok (sutra_safetensors_read_f32 (st, "grads", grads, 2, s2, &err), &err);
  struct { const char *name; SutraOptConfig cfg; } cases[] = {
    { "adamw", { SUTRA_OPT_ADAMW, 0.05, 0.9, 0.95, 1e-8, 0.1, 0, false } },
    { "adam", { SUTRA_OPT_ADAM, 0.05, 0.9, 0.999, 1e-8, 0, 0, false } },
    { "adam_l2", { SUTRA_OPT_ADAM, 0.05, 0.9, 0.999, 1e-8, 0.1, 0, false } },
    { "sgd", { SUTRA_OPT_SGD, 0.1, 0, 0, 0, 0, 0, false } },
    { "sgd_momentum", { SUTRA_OPT_SGD, 0.1, 0, 0, 0, 0.01, 0.9, false } },
    { "sgd_nesterov", { SUTRA_OPT_SGD, 0.1, 0, 0, 0, 0, 0.9, true } },
  };
  for (size_t c = 0; c < G_N_ELEMENTS (cases); c++) {
    test_assert_ok (sutra_safetensors_read_f32 (st, cases[c].name, traj, 2, s2, &err), &err);
    float p[64], g[64];
    memcpy (p, p0, sizeof p);
    SutraOptTensor t = { "p", p, g, 64, true };
    SutraOptimizer *o;
    test_assert_ok (sutra_optimizer_new (&cases[c].cfg, &t, 1, &o, &err), &err);
    double worst = 0;
    for (int s = 0; s < 12; s++) {
      memcpy (g, grads + s * 64, sizeof g);
      sutra_optimizer_step (o, cases[c].cfg.lr);
      worst = fmax (worst, test_rel_max_err (p, traj + s * 64, 64));
    }
    g_test_message ("%-14s worst rel err over 12 steps: %.3g", cases[c].name, worst);
    g_assert_cmpfloat (worst, <=, TRAJ_REL_TOL);
    sutra_optimizer_free (o);
  }
  sutra_safetensors_free (st);
  g_free (path);
}

static void
test_schedules (void)
{
  const char *dir = test_shared_path ("hf-refs/optim");
  if (!dir)
    return;
  char *path = g_build_filename (dir, "schedules.json", NULL);
  json_object *o = json_object_from_file (path);
  g_assert_nonnull (o);
  double base = json_object_get_double (json_object_object_get (o, "base_lr"));
  json_object *sc = json_object_object_get (o, "schedules");
  struct { const char *key; SutraSchedKind k; int warmup, total, cycles; } cases[] = {
    { "cosine_w10_t100", SUTRA_SCHED_COSINE, 10, 100, 1 },
    { "linear_w10_t100", SUTRA_SCHED_LINEAR, 10, 100, 1 },
    { "constant_w10", SUTRA_SCHED_CONSTANT, 10, 100, 1 },
    { "cosine_restarts3_w5_t100", SUTRA_SCHED_COSINE_RESTARTS, 5, 100, 3 },
  };
  for (size_t c = 0; c < G_N_ELEMENTS (cases); c++) {
    json_object *arr = json_object_object_get (sc, cases[c].key);
    g_assert_nonnull (arr);
    int n = (int) json_object_array_length (arr);
    g_assert_cmpint (n, ==, 100);
    for (int s = 0; s < n; s++) {
      double want = json_object_get_double (json_object_array_get_idx (arr, s));
      double got = sutra_schedule_lr (cases[c].k, base, s, cases[c].warmup, cases[c].total,
                                      cases[c].cycles);
      if (fabs (got - want) > LR_ABS_TOL)
        g_error ("%s step %d: %.17g != %.17g", cases[c].key, s, got, want);
    }
  }
  json_object_put (o);
  g_free (path);
}

static void
test_clipping (void)
{
  float g1[3] = { 3, 4, 0 }, g2[2] = { 0, 12 }, p[5] = { 0 };
  SutraOptTensor t[2] = { { "a", p, g1, 3, true }, { "b", p, g2, 2, true } };
  double norm = sutra_clip_grad_norm (t, 2, 1.0);
  g_assert_cmpfloat (fabs (norm - 13.0), <, 1e-12);
  g_assert_cmpfloat (fabs (sutra_grad_global_norm (t, 2) - 13.0 / (13.0 + 1e-6)), <, 1e-6);
  /* below the threshold nothing changes */
  float g3[1] = { 0.5f };
  SutraOptTensor t3 = { "c", p, g3, 1, true };
  sutra_clip_grad_norm (&t3, 1, 1.0);
  g_assert_cmpfloat (g3[0], ==, 0.5f);
  SutraOptKind k;
  g_assert_true (sutra_opt_kind_from_name ("adamw", &k));
  g_assert_false (sutra_opt_kind_from_name ("lion", &k));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/optim/trajectories-match-torch", test_trajectories);
  g_test_add_func ("/engine/optim/schedules-match-transformers", test_schedules);
  g_test_add_func ("/engine/optim/clipping", test_clipping);
  return g_test_run ();
}
