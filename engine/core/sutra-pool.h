/* sutra-pool.h: the process-wide worker pool for non-BLAS loops, and the thread setting.
 *
 * sutra_parallel_for splits [0, n) into one contiguous range per thread; the calling
 * thread runs the first range itself, and any range no worker has started yet (a busy
 * machine may not run a worker for a whole time slice); thread_index is the range's index.
 * The pool has threads-1 workers that spin briefly and then sleep. If another thread is already using the pool, the call runs inline on
 * the caller (never deadlocks, never oversubscribes). OpenBLAS is kept at one thread and
 * sutra_sgemm (sutra-ops.h) splits big products across this pool instead, so the two never
 * fight over the cores. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef void (*SutraRangeFunc) (void *ctx, int64_t begin, int64_t end, int thread_index);

/* Sets the number of threads (0 = number of online CPUs). Safe to call at any time from
 * the thread that drives the engine; not while a parallel_for is running. */
void sutra_set_threads (int n);
int  sutra_get_threads (void);
int  sutra_cpu_count (void);

/* Runs fn over [0, n) in at most sutra_get_threads() ranges of at least `grain` items. */
void sutra_parallel_for (int64_t n, int64_t grain, SutraRangeFunc fn, void *ctx);

/* A per-thread scratch buffer of at least n floats (64-byte aligned, contents undefined),
 * kept between calls so steady-state steps allocate nothing, and freed when the thread exits.
 * slot (0 .. SUTRA_SCRATCH_SLOTS-1) separates independent users on one thread. */
#define SUTRA_SCRATCH_SLOTS 8
float *sutra_thread_scratch (int slot, size_t n);
