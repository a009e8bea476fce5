/* sutra-dtype.h: element types and f32 <-> f16/bf16 conversion.
 * f16 is IEEE 754 binary16; bf16 is the top half of an f32. Both conversions to 16 bits
 * round to nearest, ties to even (as torch does), and keep NaN a NaN. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  SUTRA_F32 = 0,
  SUTRA_F16,
  SUTRA_BF16,
  SUTRA_F64,
  SUTRA_I8,
  SUTRA_U8,
  SUTRA_I16,
  SUTRA_I32,
  SUTRA_I64,
  SUTRA_BOOL,
  SUTRA_DTYPE_COUNT
} SutraDType;

size_t      sutra_dtype_size (SutraDType t);           /* bytes per element */
const char *sutra_dtype_name (SutraDType t);           /* safetensors spelling: "F32", "BF16" */
/* Parses a safetensors dtype name; false when unknown. */
bool        sutra_dtype_from_name (const char *name, SutraDType *out);
bool        sutra_dtype_is_float (SutraDType t);

float    sutra_f16_to_f32  (uint16_t h);
uint16_t sutra_f32_to_f16  (float f);
float    sutra_bf16_to_f32 (uint16_t h);
uint16_t sutra_f32_to_bf16 (float f);

/* Bulk conversions (F16C / AVX2 when the CPU has them, scalar otherwise; same results). */
void sutra_f16_to_f32_n  (float *dst, const uint16_t *src, size_t n);
void sutra_f32_to_f16_n  (uint16_t *dst, const float *src, size_t n);
void sutra_bf16_to_f32_n (float *dst, const uint16_t *src, size_t n);
void sutra_f32_to_bf16_n (uint16_t *dst, const float *src, size_t n);
/* Converts n elements of a float type (F32/F16/BF16/F64) to f32. */
void sutra_to_f32_n (float *dst, const void *src, SutraDType t, size_t n);
/* CPU features, probed once. */
bool sutra_cpu_has_avx2_fma (void);
bool sutra_cpu_has_f16c (void);
bool sutra_cpu_has_avx512bf16 (void);
bool sutra_cpu_has_avx512vnni (void);   /* with the AVX-512 level's F, BW and VL */
/* Levels of the runtime-dispatched kernels (SutraHalfKernel and SutraQuantKernel use the same
 * values). sutra_cpu_simd_level: the best the CPU has (AVX-512 F/BW/VL, AVX2 + FMA, scalar).
 * A SutraSimdChoice is one dispatcher's level in effect: _set resolves AUTO, or a level the CPU
 * lacks, to the best it has and returns it; _get returns it, choosing on first use from the
 * environment variable env_var (scalar | avx2 | avx512; anything else is AUTO). */
typedef enum { SUTRA_SIMD_AUTO = 0, SUTRA_SIMD_SCALAR, SUTRA_SIMD_AVX2, SUTRA_SIMD_AVX512 } SutraSimdLevel;
typedef struct { _Atomic int active; const char *env_var; } SutraSimdChoice;
#define SUTRA_SIMD_CHOICE_INIT(env_var) { -1, env_var }
SutraSimdLevel sutra_cpu_simd_level (void);
SutraSimdLevel sutra_simd_choice_set (SutraSimdChoice *c, SutraSimdLevel want);
SutraSimdLevel sutra_simd_choice_get (SutraSimdChoice *c);
const char    *sutra_simd_level_name (SutraSimdLevel l);
