/* sutra-hash.h: SHA-256 and SHA-1 (FIPS 180-4), streaming, for verifying downloads.
 *
 * The Hugging Face Hub names a Git LFS file by the SHA-256 of its bytes and a plain Git file
 * by its Git blob id, SHA-1("blob <size>\0" + bytes); the hub module checks both. SHA-1 is
 * used only to match Git's object ids, never as a security boundary on its own. */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t h[8];       /* chaining state */
  uint64_t n_bytes;    /* message length so far */
  uint8_t block[64];   /* pending partial block */
  size_t fill;         /* bytes in block */
} SutraSha256;

typedef struct {
  uint32_t h[5];
  uint64_t n_bytes;
  uint8_t block[64];
  size_t fill;
} SutraSha1;

void sutra_sha256_init   (SutraSha256 *s);
void sutra_sha256_update (SutraSha256 *s, const void *data, size_t n);
void sutra_sha256_final  (SutraSha256 *s, uint8_t digest[32]);

void sutra_sha1_init     (SutraSha1 *s);
void sutra_sha1_update   (SutraSha1 *s, const void *data, size_t n);
void sutra_sha1_final    (SutraSha1 *s, uint8_t digest[20]);

/* Lower-case hex of n bytes into out (2n + 1 chars, NUL-terminated). */
void sutra_hex_encode    (const uint8_t *bytes, size_t n, char *out);
