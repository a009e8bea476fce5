/* sutra-rng.h: the engine's small deterministic random number generators.
 *   splitmix64 (Steele, Lea & Flood 2014, the constants of Vigna's reference code): seeds,
 *              shuffles, initialisation; every call advances the state by a fixed increment.
 *   xorshift64* (Vigna 2016): the LoRA-dropout mask stream, cheap per element.
 * Both are exact functions of their 64-bit state, which checkpoints store, so a resumed run
 * draws the same numbers as an uninterrupted one. */
#pragma once
#include <stdint.h>

static inline uint64_t
sutra_splitmix64 (uint64_t *state)
{
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static inline uint64_t
sutra_xorshift64s (uint64_t *state)
{
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double
sutra_rng_uniform (uint64_t *state)
{
  return (double) (sutra_splitmix64 (state) >> 11) * 0x1p-53;
}
