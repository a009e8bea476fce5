/* tsan-canary.c: built only in TSan builds (tests/CMakeLists.txt). Two threads each run
 * sgemm (ours, and OpenBLAS's directly: an uninstrumented library in the same stacks) and then
 * add to one plain int without a lock: a real data race in our code. ctest passes it only when
 * TSan reports that race (naming tsan_canary_racy_add), which proves the TSan run really
 * catches races in our frames (no suppression or option hides them). */
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static int counter;                     /* unprotected on purpose */
static pthread_barrier_t start;

__attribute__ ((noinline)) static void
tsan_canary_racy_add (int v)
{
  counter += v;
}

static void *
worker (void *arg)
{
  (void) arg;
  enum { N = 64 };
  float *a = calloc (N * N, sizeof (float)), *b = calloc (N * N, sizeof (float));
  float *c = calloc (N * N, sizeof (float));
  for (int i = 0; i < N * N; i++)
    a[i] = b[i] = (float) (i % 7);
  pthread_barrier_wait (&start);
  for (int r = 0; r < 20; r++) {
    sutra_sgemm (false, true, N, N, N, 1.f, a, N, b, N, 0.f, c, N);
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.f, a, N, b, N, 1.f, c, N);
    tsan_canary_racy_add (1);
  }
  free (a);
  free (b);
  free (c);
  return NULL;
}

int
main (void)
{
  sutra_set_threads (1);
  pthread_barrier_init (&start, NULL, 2);   /* both threads inside the loop at once */
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    pthread_create (&t[i], NULL, worker, NULL);
  for (int i = 0; i < 2; i++)
    pthread_join (t[i], NULL);
  printf ("canary: counter = %d (TSan must have reported the race above)\n", counter);
  return 0;
}
