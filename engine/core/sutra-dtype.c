/* sutra-dtype.c: dtype table and half-precision conversions. */
#include "sutra-dtype.h"

#include <stdatomic.h>
#include <stdlib.h>
#include "sutra-error.h"

#include <math.h>
#include <string.h>
#include <immintrin.h>

static const struct { const char *name; size_t size; } dtype_table[SUTRA_DTYPE_COUNT] = {
  [SUTRA_F32] = { "F32", 4 },  [SUTRA_F16] = { "F16", 2 },   [SUTRA_BF16] = { "BF16", 2 },
  [SUTRA_F64] = { "F64", 8 },  [SUTRA_I8] = { "I8", 1 },     [SUTRA_U8] = { "U8", 1 },
  [SUTRA_I16] = { "I16", 2 },  [SUTRA_I32] = { "I32", 4 },   [SUTRA_I64] = { "I64", 8 },
  [SUTRA_BOOL] = { "BOOL", 1 },
};

size_t
sutra_dtype_size (SutraDType t)
{
  SUTRA_ASSERT ((unsigned) t < SUTRA_DTYPE_COUNT);
  return dtype_table[t].size;
}

const char *
sutra_dtype_name (SutraDType t)
{
  if ((unsigned) t >= SUTRA_DTYPE_COUNT)
    return "?";
  return dtype_table[t].name;
}

bool
sutra_dtype_from_name (const char *name, SutraDType *out)
{
  for (int i = 0; i < SUTRA_DTYPE_COUNT; i++)
    if (strcmp (name, dtype_table[i].name) == 0) {
      *out = (SutraDType) i;
      return true;
    }
  return false;
}

bool
sutra_dtype_is_float (SutraDType t)
{
  return t == SUTRA_F32 || t == SUTRA_F16 || t == SUTRA_BF16 || t == SUTRA_F64;
}

static inline uint32_t f2u (float f) { uint32_t u; memcpy (&u, &f, 4); return u; }
static inline float u2f (uint32_t u) { float f; memcpy (&f, &u, 4); return f; }

float
sutra_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  if (exp == 0) {
    if (man == 0)
      return u2f (sign);
    /* subnormal: man * 2^-24 */
    float v = (float) man * 0x1p-24f;
    return sign ? -v : v;
  }
  if (exp == 31)
    return u2f (sign | 0x7f800000u | (man << 13));
  return u2f (sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t
sutra_f32_to_f16 (float f)
{
  uint32_t u = f2u (f);
  uint16_t sign = (uint16_t) ((u >> 16) & 0x8000);
  uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u)                           /* inf or nan */
    return sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0);
  if (a >= 0x477ff000u)                           /* rounds to >= 65520: overflow to inf */
    return sign | 0x7c00;
  if (a < 0x38800000u) {                          /* below 2^-14: subnormal or zero */
    /* value * 2^24 rounded to nearest even gives the subnormal mantissa */
    float v = u2f (a) * 0x1p24f;
    float r = nearbyintf (v);                     /* default rounding mode: ties to even */
    return sign | (uint16_t) r;
  }
  /* normal: round mantissa from 23 to 10 bits, ties to even */
  uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
  return sign | (uint16_t) ((rounded - 0x38000000u) >> 13);
}

float
sutra_bf16_to_f32 (uint16_t h)
{
  return u2f ((uint32_t) h << 16);
}

uint16_t
sutra_f32_to_bf16 (float f)
{
  uint32_t u = f2u (f);
  if ((u & 0x7fffffffu) > 0x7f800000u)            /* nan: keep it quiet and a nan */
    return (uint16_t) ((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t) (u >> 16);
}

/* ---- CPU features ---- */
static int cpu_probed;
static bool has_avx2_fma, has_f16c, has_avx512bf16, has_avx512_fbwvl, has_avx512vnni;

static void
probe_cpu (void)
{
  if (__atomic_load_n (&cpu_probed, __ATOMIC_ACQUIRE))
    return;
  __builtin_cpu_init ();
  has_avx2_fma = __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
  has_f16c = has_avx2_fma;  /* every AVX2 CPU has F16C; gcc 12 cannot probe "f16c" by name */
  has_avx512bf16 = __builtin_cpu_supports ("avx512bf16") && __builtin_cpu_supports ("avx512f");
  has_avx512_fbwvl = has_avx2_fma && __builtin_cpu_supports ("avx512f") &&
                     __builtin_cpu_supports ("avx512bw") && __builtin_cpu_supports ("avx512vl");
  has_avx512vnni = has_avx512_fbwvl && __builtin_cpu_supports ("avx512vnni");
  __atomic_store_n (&cpu_probed, 1, __ATOMIC_RELEASE);
}

bool sutra_cpu_has_avx2_fma (void) { probe_cpu (); return has_avx2_fma; }
bool sutra_cpu_has_f16c (void) { probe_cpu (); return has_f16c; }
bool sutra_cpu_has_avx512bf16 (void) { probe_cpu (); return has_avx512bf16; }
bool sutra_cpu_has_avx512vnni (void) { probe_cpu (); return has_avx512vnni; }

SutraSimdLevel
sutra_cpu_simd_level (void)
{
#if defined(__x86_64__)
  probe_cpu ();
  return has_avx512_fbwvl ? SUTRA_SIMD_AVX512 : has_avx2_fma ? SUTRA_SIMD_AVX2 : SUTRA_SIMD_SCALAR;
#else
  return SUTRA_SIMD_SCALAR;
#endif
}

static SutraSimdLevel
level_from_env (const char *var)
{
  const char *v = getenv (var);
  if (v && !strcmp (v, "scalar"))
    return SUTRA_SIMD_SCALAR;
  if (v && !strcmp (v, "avx2"))
    return SUTRA_SIMD_AVX2;
  if (v && !strcmp (v, "avx512"))
    return SUTRA_SIMD_AVX512;
  return SUTRA_SIMD_AUTO;
}

SutraSimdLevel
sutra_simd_choice_set (SutraSimdChoice *c, SutraSimdLevel want)
{
  SutraSimdLevel best = sutra_cpu_simd_level ();
  SutraSimdLevel r = want == SUTRA_SIMD_AUTO || want > best ? best : want;
  atomic_store (&c->active, (int) r);
  return r;
}

SutraSimdLevel
sutra_simd_choice_get (SutraSimdChoice *c)
{
  int k = atomic_load (&c->active);
  return k >= 0 ? (SutraSimdLevel) k : sutra_simd_choice_set (c, level_from_env (c->env_var));
}

const char *
sutra_simd_level_name (SutraSimdLevel l)
{
  switch (l) {
  case SUTRA_SIMD_SCALAR: return "scalar";
  case SUTRA_SIMD_AVX2: return "avx2";
  case SUTRA_SIMD_AVX512: return "avx512";
  default: return "auto";
  }
}

__attribute__ ((target ("avx2,f16c"))) static void
f16_to_f32_f16c (float *dst, const uint16_t *src, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps (dst + i, _mm256_cvtph_ps (_mm_loadu_si128 ((const __m128i *) (src + i))));
  for (; i < n; i++)
    dst[i] = sutra_f16_to_f32 (src[i]);
}

__attribute__ ((target ("avx2,f16c"))) static void
f32_to_f16_f16c (uint16_t *dst, const float *src, size_t n)
{
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128 ((__m128i *) (dst + i),
                      _mm256_cvtps_ph (_mm256_loadu_ps (src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; i++)
    dst[i] = sutra_f32_to_f16 (src[i]);
}

void
sutra_f16_to_f32_n (float *dst, const uint16_t *src, size_t n)
{
  if (sutra_cpu_has_f16c ()) {
    f16_to_f32_f16c (dst, src, n);
    return;
  }
  for (size_t i = 0; i < n; i++)
    dst[i] = sutra_f16_to_f32 (src[i]);
}

void
sutra_f32_to_f16_n (uint16_t *dst, const float *src, size_t n)
{
  if (sutra_cpu_has_f16c ()) {
    f32_to_f16_f16c (dst, src, n);
    return;
  }
  for (size_t i = 0; i < n; i++)
    dst[i] = sutra_f32_to_f16 (src[i]);
}

void
sutra_bf16_to_f32_n (float *dst, const uint16_t *src, size_t n)
{
  uint32_t *d = (uint32_t *) dst;     /* same storage, written as bits */
  for (size_t i = 0; i < n; i++)
    d[i] = (uint32_t) src[i] << 16;
}

void
sutra_f32_to_bf16_n (uint16_t *dst, const float *src, size_t n)
{
  for (size_t i = 0; i < n; i++)
    dst[i] = sutra_f32_to_bf16 (src[i]);
}

void
sutra_to_f32_n (float *dst, const void *src, SutraDType t, size_t n)
{
  switch (t) {
  case SUTRA_F32: memmove (dst, src, n * 4); break;
  case SUTRA_F16: sutra_f16_to_f32_n (dst, src, n); break;
  case SUTRA_BF16: sutra_bf16_to_f32_n (dst, src, n); break;
  case SUTRA_F64: {
    const double *s = src;
    for (size_t i = 0; i < n; i++)
      dst[i] = (float) s[i];
    break;
  }
  default: SUTRA_ASSERT (!"sutra_to_f32_n: not a float dtype");
  }
}
