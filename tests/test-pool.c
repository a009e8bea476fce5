/* test-pool.c: the worker pool under concurrent use (label `thread`: the TSan build runs it):
 * ranges tile [0, n) exactly once, two threads dispatching at once (one runs inline), the
 * thread count changed from one thread while another dispatches (the trainer sets its thread
 * count while the studio may be generating), and per-thread scratch buffers. */
#include "test-util.h"
#include "sutra-pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define N_ITEMS 10007

typedef struct {
  atomic_int *hits;      /* [N_ITEMS] */
  atomic_int calls;
} Tiles;

static void
mark (void *ctx, int64_t begin, int64_t end, int thread_index)
{
  Tiles *t = ctx;
  g_assert_cmpint (begin, <, end);
  g_assert_cmpint (thread_index, >=, 0);
  for (int64_t i = begin; i < end; i++)
    atomic_fetch_add (&t->hits[i], 1);
  atomic_fetch_add (&t->calls, 1);
}

static void
check_tiling (int64_t n, int64_t grain)
{
  Tiles t = { g_new0 (atomic_int, N_ITEMS), 0 };
  sutra_parallel_for (n, grain, mark, &t);
  for (int64_t i = 0; i < N_ITEMS; i++)
    if (atomic_load (&t.hits[i]) != (i < n ? 1 : 0))
      g_error ("n %lld grain %lld: item %lld visited %d times", (long long) n, (long long) grain,
               (long long) i, atomic_load (&t.hits[i]));
  g_assert_cmpint (atomic_load (&t.calls), <=, 64);   /* one call per range, at most MAX_THREADS */
  g_free (t.hits);
}

static void
test_tiling (void)
{
  static const int threads[] = { 1, 2, 3, 5 };
  static const int64_t sizes[][2] = { { 1, 1 }, { 7, 1 }, { 100, 64 }, { 1000, 1 }, { N_ITEMS, 3 },
                                      { 0, 1 } };
  for (size_t k = 0; k < G_N_ELEMENTS (threads); k++) {
    sutra_set_threads (threads[k]);
    g_assert_cmpint (sutra_get_threads (), ==, threads[k]);
    for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++)
      check_tiling (sizes[s][0], sizes[s][1]);
  }
}

/* several threads dispatch at once; each job must still be done exactly once */
typedef struct {
  int id, rounds;
  bool change_threads;   /* this thread also changes the thread count between jobs */
} Dispatcher;

static void *
dispatch_loop (void *data)
{
  Dispatcher *d = data;
  for (int r = 0; r < d->rounds; r++) {
    if (d->change_threads)
      sutra_set_threads (1 + r % 3);
    check_tiling (N_ITEMS - r, 1 + r % 5);
  }
  return NULL;
}

static void
run_dispatchers (bool change)
{
  sutra_set_threads (2);
  pthread_t th[3];
  Dispatcher d[3];
  for (int i = 0; i < 3; i++) {
    d[i] = (Dispatcher) { i, 40, change && i == 0 };
    g_assert_cmpint (pthread_create (&th[i], NULL, dispatch_loop, &d[i]), ==, 0);
  }
  for (int i = 0; i < 3; i++)
    pthread_join (th[i], NULL);
}

static void
test_concurrent_dispatch (void)
{
  run_dispatchers (false);
}

static void
test_set_threads_while_dispatching (void)
{
  run_dispatchers (true);
}

/* scratch: per thread and per slot, kept between calls, grown on demand */
static pthread_barrier_t both_alive;

typedef struct {
  float *first, *grown;
  bool same_again;
} ScratchSeen;

static void *
scratch_thread (void *data)
{
  ScratchSeen *s = data;
  s->first = sutra_thread_scratch (0, 100);
  for (int i = 0; i < 100; i++)
    s->first[i] = (float) i;
  float *other = sutra_thread_scratch (1, 100);
  g_assert_true (other != s->first);
  s->same_again = sutra_thread_scratch (0, 50) == s->first;
  s->grown = sutra_thread_scratch (0, 1 << 16);
  for (int i = 0; i < 1 << 16; i++)
    s->grown[i] = 1.f;
  s->first = s->grown;
  pthread_barrier_wait (&both_alive);   /* both buffers exist at once: they must differ */
  return NULL;
}

static void
test_scratch (void)
{
  pthread_t th[2];
  ScratchSeen s[2] = { { 0 } };
  pthread_barrier_init (&both_alive, NULL, 2);
  for (int i = 0; i < 2; i++)
    g_assert_cmpint (pthread_create (&th[i], NULL, scratch_thread, &s[i]), ==, 0);
  for (int i = 0; i < 2; i++)
    pthread_join (th[i], NULL);
  for (int i = 0; i < 2; i++)
    g_assert_true (s[i].same_again);
  g_assert_true (s[0].first != s[1].first);
  pthread_barrier_destroy (&both_alive);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/engine/pool/tiling", test_tiling);
  g_test_add_func ("/engine/pool/concurrent-dispatch", test_concurrent_dispatch);
  g_test_add_func ("/engine/pool/set-threads-while-dispatching", test_set_threads_while_dispatching);
  g_test_add_func ("/engine/pool/scratch", test_scratch);
  return g_test_run ();
}
