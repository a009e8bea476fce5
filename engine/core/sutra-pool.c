/* sutra-pool.c: a small fork-join pool (caller participates, workers spin then sleep).
 *
 * A job is split into `parts` ranges (as many as threads); whoever is running claims the next
 * unclaimed part through one atomic ticket (generation << 32 | parts << 16 | claimed), the
 * caller included. So the caller never waits for a worker that has not started (on a machine
 * with more runnable threads than cores a worker may not run for a whole time slice): it runs
 * the unclaimed parts itself and waits only for parts already being run. A claim succeeds only
 * while the ticket still names the job, so a worker that wakes late cannot take a part of a
 * job that has finished; the job fields are read after a successful claim, and the caller
 * replaces them only once every claimed part is done. */
#include "sutra-pool.h"
#include "sutra-error.h"

#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ITERS 4000    /* ~20-50 us of _mm_pause before a worker sleeps */
#define MAX_THREADS 64

typedef struct {
  pthread_t thread;
  int index;
  unsigned start_generation;   /* generation current when the worker was created */
} Worker;

static struct {
  pthread_mutex_t lock;          /* guards sleeping/waking */
  pthread_cond_t wake;
  pthread_mutex_t dispatch;      /* one parallel_for at a time */
  atomic_uint generation;        /* bumped for every job (wakes the workers) */
  _Atomic uint64_t ticket;       /* generation << 32 | parts << 16 | parts claimed */
  atomic_int done;               /* parts of the current job finished */
  atomic_int quit;
  atomic_int nthreads;           /* including the caller; read without the lock */
  int nworkers;
  Worker workers[MAX_THREADS];
  /* current job */
  SutraRangeFunc fn;
  void *ctx;
  int64_t n;
  int parts;
} pool = {
  .lock = PTHREAD_MUTEX_INITIALIZER,
  .wake = PTHREAD_COND_INITIALIZER,
  .dispatch = PTHREAD_MUTEX_INITIALIZER,
  .nthreads = 0,
};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

int
sutra_cpu_count (void)
{
  long n = sysconf (_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : (int) (n > MAX_THREADS ? MAX_THREADS : n);
}

static void
run_part (int part)
{
  int64_t begin = pool.n * part / pool.parts;
  int64_t end = pool.n * (part + 1) / pool.parts;
  if (begin < end)
    pool.fn (pool.ctx, begin, end, part);
}

/* the next unclaimed part of the job the ticket names, or -1 */
static int
claim_part (void)
{
  uint64_t t = atomic_load_explicit (&pool.ticket, memory_order_acquire);
  for (;;) {
    unsigned parts = (unsigned) (t >> 16) & 0xFFFFu, claimed = (unsigned) t & 0xFFFFu;
    if (claimed >= parts)
      return -1;
    if (atomic_compare_exchange_weak_explicit (&pool.ticket, &t, t + 1, memory_order_acq_rel,
                                               memory_order_acquire))
      return (int) claimed;
  }
}

static void *
worker_main (void *arg)
{
  Worker *w = arg;
  /* Not a fresh load: a job dispatched between pthread_create and this line must still
   * count as new for this worker, or its dispatcher would wait for it forever. */
  unsigned seen = w->start_generation;
  for (;;) {
    unsigned g;
    int spins = 0;
    while ((g = atomic_load_explicit (&pool.generation, memory_order_acquire)) == seen &&
           !atomic_load (&pool.quit)) {
      if (++spins < SPIN_ITERS) {
        _mm_pause ();
        continue;
      }
      pthread_mutex_lock (&pool.lock);
      while (atomic_load (&pool.generation) == seen && !atomic_load (&pool.quit))
        pthread_cond_wait (&pool.wake, &pool.lock);
      pthread_mutex_unlock (&pool.lock);
    }
    if (atomic_load (&pool.quit))
      return NULL;
    seen = g;
    int part;
    while ((part = claim_part ()) >= 0) {
      run_part (part);
      atomic_fetch_add_explicit (&pool.done, 1, memory_order_release);
    }
  }
}

static void
stop_workers (void)
{
  if (pool.nworkers == 0)
    return;
  pthread_mutex_lock (&pool.lock);
  atomic_store (&pool.quit, 1);
  pthread_cond_broadcast (&pool.wake);
  pthread_mutex_unlock (&pool.lock);
  for (int i = 0; i < pool.nworkers; i++)
    pthread_join (pool.workers[i].thread, NULL);
  pool.nworkers = 0;
  atomic_store (&pool.quit, 0);
}

static void
start_workers (int nthreads)
{
  for (int i = 1; i < nthreads; i++) {
    Worker *w = &pool.workers[pool.nworkers];
    w->index = i;
    w->start_generation = atomic_load (&pool.generation);
    if (pthread_create (&w->thread, NULL, worker_main, w) != 0)
      break;                     /* run with fewer threads rather than fail */
    pool.nworkers++;
  }
  atomic_store (&pool.nthreads, pool.nworkers + 1);
}

static void
pool_init_default (void)
{
  const char *env = getenv ("SUTRA_THREADS");
  int n = env ? atoi (env) : 0;
  openblas_set_num_threads (1);
  start_workers (n > 0 ? (n > MAX_THREADS ? MAX_THREADS : n) : sutra_cpu_count ());
}

void
sutra_set_threads (int n)
{
  pthread_once (&pool_once, pool_init_default);
  if (n <= 0)
    n = sutra_cpu_count ();
  if (n > MAX_THREADS)
    n = MAX_THREADS;
  pthread_mutex_lock (&pool.dispatch);
  if (n != atomic_load (&pool.nthreads)) {
    stop_workers ();
    start_workers (n);
  }
  openblas_set_num_threads (1);
  pthread_mutex_unlock (&pool.dispatch);
}

int
sutra_get_threads (void)
{
  pthread_once (&pool_once, pool_init_default);
  return atomic_load (&pool.nthreads);
}

void
sutra_parallel_for (int64_t n, int64_t grain, SutraRangeFunc fn, void *ctx)
{
  if (n <= 0)
    return;
  pthread_once (&pool_once, pool_init_default);
  if (grain < 1)
    grain = 1;
  int64_t parts = n / grain;
  if (parts <= 1 || pthread_mutex_trylock (&pool.dispatch) != 0) {
    fn (ctx, 0, n, 0);           /* small job, or the pool is busy: run inline */
    return;
  }
  /* the worker count is stable while we hold dispatch (sutra_set_threads takes it too) */
  if (parts > pool.nworkers + 1)
    parts = pool.nworkers + 1;
  if (parts <= 1) {
    pthread_mutex_unlock (&pool.dispatch);
    fn (ctx, 0, n, 0);
    return;
  }
  /* every part of the previous job is done (we waited for it), so no one reads these now */
  pool.fn = fn;
  pool.ctx = ctx;
  pool.n = n;
  pool.parts = (int) parts;
  atomic_store_explicit (&pool.done, 0, memory_order_relaxed);
  pthread_mutex_lock (&pool.lock);
  unsigned g = atomic_load_explicit (&pool.generation, memory_order_relaxed) + 1;
  /* part 0 is the caller's, claimed in the ticket itself */
  atomic_store_explicit (&pool.ticket, (uint64_t) g << 32 | (uint64_t) parts << 16 | 1u,
                         memory_order_release);
  atomic_store_explicit (&pool.generation, g, memory_order_release);
  pthread_cond_broadcast (&pool.wake);
  pthread_mutex_unlock (&pool.lock);
  run_part (0);
  int mine = 1, part;
  while ((part = claim_part ()) >= 0) {   /* parts no worker has started */
    run_part (part);
    mine++;
  }
  /* wait for the parts workers claimed; past ~SPIN_ITERS pauses, yield (a worker preempted
   * mid-part may share this core) */
  for (int spins = 0; atomic_load_explicit (&pool.done, memory_order_acquire) + mine < parts;
       spins++) {
    if (spins < SPIN_ITERS)
      _mm_pause ();
    else
      sched_yield ();
  }
  pthread_mutex_unlock (&pool.dispatch);
}

/* ---- per-thread scratch ---- */
typedef struct {
  float *buf[SUTRA_SCRATCH_SLOTS];
  size_t cap[SUTRA_SCRATCH_SLOTS];
} Scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void
scratch_destroy (void *p)
{
  Scratch *s = p;
  for (int i = 0; i < SUTRA_SCRATCH_SLOTS; i++)
    sutra_aligned_free (s->buf[i]);
  free (s);
}

static void
scratch_key_init (void)
{
  pthread_key_create (&scratch_key, scratch_destroy);
}

float *
sutra_thread_scratch (int slot, size_t n)
{
  SUTRA_ASSERT (slot >= 0 && slot < SUTRA_SCRATCH_SLOTS);
  pthread_once (&scratch_once, scratch_key_init);
  Scratch *s = pthread_getspecific (scratch_key);
  if (!s) {
    s = sutra_xcalloc (1, sizeof *s);
    pthread_setspecific (scratch_key, s);
  }
  if (n > s->cap[slot]) {
    sutra_aligned_free (s->buf[slot]);
    s->buf[slot] = sutra_try_alloc (n * sizeof (float), "scratch", NULL);
    if (!s->buf[slot]) {
      fprintf (stderr, "libsutra: out of memory for %zu bytes of scratch\n", n * sizeof (float));
      abort ();
    }
    s->cap[slot] = n;
  }
  return s->buf[slot];
}
