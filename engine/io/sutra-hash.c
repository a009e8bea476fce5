/* sutra-hash.c: SHA-256 and SHA-1 after FIPS 180-4 (sections 5.1 padding, 6.1 SHA-1,
 * 6.2 SHA-256). Plain portable C: the hub hashes at disk/network speed, so no SIMD. */
#include "sutra-hash.h"

#include <string.h>

static inline uint32_t
rotr (uint32_t x, int n)
{
  return (x >> n) | (x << (32 - n));
}

static inline uint32_t
rotl (uint32_t x, int n)
{
  return (x << n) | (x >> (32 - n));
}

static inline uint32_t
load_be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static inline void
store_be32 (uint8_t *p, uint32_t x)
{
  p[0] = (uint8_t) (x >> 24);
  p[1] = (uint8_t) (x >> 16);
  p[2] = (uint8_t) (x >> 8);
  p[3] = (uint8_t) x;
}

/* ---- SHA-256 ---- */

/* K: first 32 bits of the fractional parts of the cube roots of the first 64 primes (4.2.2). */
static const uint32_t K256[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* One 512-bit block (6.2.2): message schedule W[0..63], then 64 rounds on a..h. */
static void
sha256_block (uint32_t h[8], const uint8_t *p)
{
  uint32_t w[64];
  for (int t = 0; t < 16; t++)
    w[t] = load_be32 (p + 4 * t);
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = rotr (w[t - 15], 7) ^ rotr (w[t - 15], 18) ^ (w[t - 15] >> 3);   /* sigma0 */
    uint32_t s1 = rotr (w[t - 2], 17) ^ rotr (w[t - 2], 19) ^ (w[t - 2] >> 10);    /* sigma1 */
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (int t = 0; t < 64; t++) {
    uint32_t S1 = rotr (e, 6) ^ rotr (e, 11) ^ rotr (e, 25);                      /* Sigma1 */
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = k + S1 + ch + K256[t] + w[t];
    uint32_t S0 = rotr (a, 2) ^ rotr (a, 13) ^ rotr (a, 22);                      /* Sigma0 */
    uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = S0 + maj;
    k = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d;
  h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void
sutra_sha256_init (SutraSha256 *s)
{
  /* H(0): fractional parts of the square roots of the first 8 primes (5.3.3). */
  static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
  memcpy (s->h, h0, sizeof h0);
  s->n_bytes = 0;
  s->fill = 0;
}

/* Shared block buffering for both hashes: fill the partial block, then whole blocks. */
#define HASH_UPDATE(s, data, n, blockfn)                                                \
  do {                                                                                  \
    const uint8_t *p_ = (const uint8_t *) (data);                                       \
    size_t n_ = (n);                                                                    \
    (s)->n_bytes += n_;                                                                 \
    if ((s)->fill) {                                                                    \
      size_t take_ = 64 - (s)->fill < n_ ? 64 - (s)->fill : n_;                         \
      memcpy ((s)->block + (s)->fill, p_, take_);                                       \
      (s)->fill += take_; p_ += take_; n_ -= take_;                                     \
      if ((s)->fill < 64)                                                               \
        break;                                                                          \
      blockfn ((s)->h, (s)->block);                                                     \
      (s)->fill = 0;                                                                    \
    }                                                                                   \
    for (; n_ >= 64; p_ += 64, n_ -= 64)                                                \
      blockfn ((s)->h, p_);                                                             \
    if (n_) {                                                                           \
      memcpy ((s)->block, p_, n_);                                                      \
      (s)->fill = n_;                                                                   \
    }                                                                                   \
  } while (0)

/* Padding (5.1.1): a 1 bit, zeros to 56 mod 64, then the bit length big-endian in 64 bits. */
#define HASH_PAD(s, blockfn)                                                            \
  do {                                                                                  \
    uint64_t bits_ = (s)->n_bytes * 8;                                                  \
    (s)->block[(s)->fill++] = 0x80;                                                     \
    if ((s)->fill > 56) {                                                               \
      memset ((s)->block + (s)->fill, 0, 64 - (s)->fill);                               \
      blockfn ((s)->h, (s)->block);                                                     \
      (s)->fill = 0;                                                                    \
    }                                                                                   \
    memset ((s)->block + (s)->fill, 0, 56 - (s)->fill);                                 \
    for (int i_ = 0; i_ < 8; i_++)                                                      \
      (s)->block[56 + i_] = (uint8_t) (bits_ >> (56 - 8 * i_));                         \
    blockfn ((s)->h, (s)->block);                                                       \
  } while (0)

void
sutra_sha256_update (SutraSha256 *s, const void *data, size_t n)
{
  HASH_UPDATE (s, data, n, sha256_block);
}

void
sutra_sha256_final (SutraSha256 *s, uint8_t digest[32])
{
  HASH_PAD (s, sha256_block);
  for (int i = 0; i < 8; i++)
    store_be32 (digest + 4 * i, s->h[i]);
}

/* ---- SHA-1 ---- */

/* One block (6.1.2): 80-word schedule with a 1-bit left rotation, four 20-round stages. */
static void
sha1_block (uint32_t h[5], const uint8_t *p)
{
  uint32_t w[80];
  for (int t = 0; t < 16; t++)
    w[t] = load_be32 (p + 4 * t);
  for (int t = 16; t < 80; t++)
    w[t] = rotl (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int t = 0; t < 80; t++) {
    uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d);          /* Ch */
      k = 0x5a827999;
    } else if (t < 40) {
      f = b ^ c ^ d;                   /* Parity */
      k = 0x6ed9eba1;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d); /* Maj */
      k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    uint32_t tmp = rotl (a, 5) + f + e + k + w[t];
    e = d;
    d = c;
    c = rotl (b, 30);
    b = a;
    a = tmp;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

void
sutra_sha1_init (SutraSha1 *s)
{
  static const uint32_t h0[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
  memcpy (s->h, h0, sizeof h0);
  s->n_bytes = 0;
  s->fill = 0;
}

void
sutra_sha1_update (SutraSha1 *s, const void *data, size_t n)
{
  HASH_UPDATE (s, data, n, sha1_block);
}

void
sutra_sha1_final (SutraSha1 *s, uint8_t digest[20])
{
  HASH_PAD (s, sha1_block);
  for (int i = 0; i < 5; i++)
    store_be32 (digest + 4 * i, s->h[i]);
}

void
sutra_hex_encode (const uint8_t *bytes, size_t n, char *out)
{
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[bytes[i] >> 4];
    out[2 * i + 1] = hex[bytes[i] & 15];
  }
  out[2 * n] = '\0';
}
