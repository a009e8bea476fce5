/* sutra-quant.c: packed NF4 / INT4 / INT8 weight matrices (reference layout and kernels).
 *
 * Layouts (row-major, per row of `cols` values):
 *   NF4  per block of 64: absmax (f32) + 32 bytes; byte j holds element j (low nibble) and
 *        element j + 32 (high nibble); value = absmax * NF4[code].
 *   INT4 per group of G: scale, min (f32) + G/2 bytes, same nibble order within the group;
 *        value = q * scale + min, q in 0..15 (asymmetric; zero point = -min/scale).
 *   INT8 per row: scale (f32) + cols int8; value = q * scale.
 * Matrix products dequantize row tiles into a per-thread buffer and call sgemm. */
#include "sutra-quant.h"
#include "sutra-ops.h"
#include "sutra-pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NF4_BLOCK 64
#define TILE_ROWS 64

/* The NF4 code book: quantiles of N(0, 1) normalised to [-1, 1] with an exact zero
 * (QLoRA paper, appendix E; the values bitsandbytes uses). */
static const float nf4_code[16] = {
  -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
  -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
  0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
  0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

struct SutraQWeight {
  SutraQuantParams p;
  int rows, cols;
  int group;             /* values per scale: 64 (NF4), G (INT4), cols (INT8) */
  int groups_per_row;
  float *scale;          /* [rows * groups_per_row] */
  float *min;            /* INT4 only */
  uint8_t *data;         /* NF4/INT4: rows*cols/2 bytes; INT8: rows*cols */
};

const char *
sutra_quant_type_name (SutraQuantType t)
{
  switch (t) {
  case SUTRA_QUANT_NF4: return "nf4";
  case SUTRA_QUANT_INT4: return "int4";
  case SUTRA_QUANT_INT8: return "int8";
  default: return "none";
  }
}

bool
sutra_quant_type_from_name (const char *name, SutraQuantType *out)
{
  for (int t = SUTRA_QUANT_NF4; t <= SUTRA_QUANT_INT8; t++)
    if (strcmp (name, sutra_quant_type_name ((SutraQuantType) t)) == 0) {
      *out = (SutraQuantType) t;
      return true;
    }
  return false;
}

static uint8_t
nf4_nearest (float v)
{
  /* nearest code by midpoints between neighbours */
  uint8_t best = 0;
  float bd = INFINITY;
  for (int i = 0; i < 16; i++) {
    float d = fabsf (v - nf4_code[i]);
    if (d < bd) {
      bd = d;
      best = (uint8_t) i;
    }
  }
  return best;
}

SutraStatus
sutra_qweight_quantize (const float *w, int rows, int cols, const SutraQuantParams *p,
                        SutraQWeight **out, SutraError *err)
{
  int group;
  switch (p->type) {
  case SUTRA_QUANT_NF4: group = NF4_BLOCK; break;
  case SUTRA_QUANT_INT4: group = p->group_size ? p->group_size : 64; break;
  case SUTRA_QUANT_INT8: group = cols; break;
  default: return sutra_error_set (err, SUTRA_ERR_INVALID, "quantize: no quantization type given");
  }
  if (p->type == SUTRA_QUANT_INT4 && group != 32 && group != 64 && group != 128)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED, "int4 group size %d (use 32, 64 or 128)",
                            group);
  if (cols % group != 0)
    return sutra_error_set (err, SUTRA_ERR_UNSUPPORTED,
                            "%s needs the input size (%d) to be a multiple of %d",
                            sutra_quant_type_name (p->type), cols, group);
  SutraQWeight *q = sutra_xcalloc (1, sizeof *q);
  q->p = *p;
  q->rows = rows;
  q->cols = cols;
  q->group = group;
  q->groups_per_row = cols / group;
  size_t ng = (size_t) rows * q->groups_per_row;
  size_t nbytes = p->type == SUTRA_QUANT_INT8 ? (size_t) rows * cols : (size_t) rows * cols / 2;
  q->scale = sutra_try_alloc (ng * sizeof (float), "quantized scales", err);
  q->data = sutra_try_alloc (nbytes, "quantized weights", err);
  if (p->type == SUTRA_QUANT_INT4)
    q->min = sutra_try_alloc (ng * sizeof (float), "quantized minimums", err);
  if (!q->scale || !q->data || (p->type == SUTRA_QUANT_INT4 && !q->min)) {
    sutra_qweight_free (q);
    return SUTRA_ERR_NOMEM;
  }
  for (int r = 0; r < rows; r++)
    for (int g = 0; g < q->groups_per_row; g++) {
      const float *x = w + (size_t) r * cols + (size_t) g * group;
      size_t gi = (size_t) r * q->groups_per_row + g;
      if (p->type == SUTRA_QUANT_INT8) {
        float amax = 0.f;
        for (int i = 0; i < group; i++)
          amax = fmaxf (amax, fabsf (x[i]));
        float s = amax / 127.f;
        q->scale[gi] = s;
        int8_t *d = (int8_t *) q->data + (size_t) r * cols;
        for (int i = 0; i < group; i++)
          d[i] = (int8_t) (s > 0 ? lrintf (x[i] / s) : 0);
        continue;
      }
      uint8_t *d = q->data + ((size_t) r * cols + (size_t) g * group) / 2;
      uint8_t codes[128];
      if (p->type == SUTRA_QUANT_NF4) {
        float amax = 0.f;
        for (int i = 0; i < group; i++)
          amax = fmaxf (amax, fabsf (x[i]));
        q->scale[gi] = amax;
        for (int i = 0; i < group; i++)
          codes[i] = amax > 0 ? nf4_nearest (x[i] / amax) : 7;   /* code 7 is exactly 0 */
      } else {
        float lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < group; i++) {
          lo = fminf (lo, x[i]);
          hi = fmaxf (hi, x[i]);
        }
        float s = (hi - lo) / 15.f;
        q->scale[gi] = s;
        q->min[gi] = lo;
        for (int i = 0; i < group; i++) {
          long c = s > 0 ? lrintf ((x[i] - lo) / s) : 0;
          codes[i] = (uint8_t) (c < 0 ? 0 : c > 15 ? 15 : c);
        }
      }
      int half = group / 2;
      for (int j = 0; j < half; j++)
        d[j] = (uint8_t) (codes[j] | (codes[j + half] << 4));
    }
  *out = q;
  return SUTRA_OK;
}

void
sutra_qweight_free (SutraQWeight *q)
{
  if (!q)
    return;
  sutra_aligned_free (q->scale);
  sutra_aligned_free (q->min);
  sutra_aligned_free (q->data);
  free (q);
}

int sutra_qweight_rows (const SutraQWeight *q) { return q->rows; }
int sutra_qweight_cols (const SutraQWeight *q) { return q->cols; }
SutraQuantType sutra_qweight_type (const SutraQWeight *q) { return q->p.type; }

size_t
sutra_qweight_bytes (const SutraQWeight *q)
{
  size_t ng = (size_t) q->rows * q->groups_per_row;
  size_t data = q->p.type == SUTRA_QUANT_INT8 ? (size_t) q->rows * q->cols
                                              : (size_t) q->rows * q->cols / 2;
  return data + ng * sizeof (float) * (q->min ? 2 : 1);
}

static void
dequant_row (const SutraQWeight *q, int r, float *dst)
{
  int G = q->group, cols = q->cols;
  if (q->p.type == SUTRA_QUANT_INT8) {
    const int8_t *d = (const int8_t *) q->data + (size_t) r * cols;
    float s = q->scale[r];
    for (int i = 0; i < cols; i++)
      dst[i] = (float) d[i] * s;
    return;
  }
  int half = G / 2;
  for (int g = 0; g < q->groups_per_row; g++) {
    size_t gi = (size_t) r * q->groups_per_row + g;
    const uint8_t *d = q->data + ((size_t) r * cols + (size_t) g * G) / 2;
    float *o = dst + (size_t) g * G;
    float s = q->scale[gi];
    if (q->p.type == SUTRA_QUANT_NF4) {
      for (int j = 0; j < half; j++) {
        o[j] = nf4_code[d[j] & 15] * s;
        o[j + half] = nf4_code[d[j] >> 4] * s;
      }
    } else {
      float mn = q->min[gi];
      for (int j = 0; j < half; j++) {
        o[j] = (float) (d[j] & 15) * s + mn;
        o[j + half] = (float) (d[j] >> 4) * s + mn;
      }
    }
  }
}

void
sutra_qweight_dequant_rows (const SutraQWeight *q, int row0, int nrows, float *dst)
{
  for (int r = 0; r < nrows; r++)
    dequant_row (q, row0 + r, dst + (size_t) r * q->cols);
}

void
sutra_qweight_matvec_naive (const SutraQWeight *q, const float *x, float *y, bool accumulate)
{
  float *row = sutra_xmalloc (sizeof (float) * (size_t) q->cols);
  for (int r = 0; r < q->rows; r++) {
    dequant_row (q, r, row);
    double acc = 0;
    for (int i = 0; i < q->cols; i++)
      acc += (double) row[i] * x[i];
    y[r] = (float) (accumulate ? y[r] + acc : acc);
  }
  free (row);
}

typedef struct {
  const SutraQWeight *q;
  const float *x;
  float *y;
  bool acc;
} MatvecJob;

static void
matvec_range (void *ctx, int64_t r0, int64_t r1, int ti)
{
  const MatvecJob *j = ctx;
  float *row = sutra_thread_scratch (2, (size_t) j->q->cols);
  (void) ti;
  for (int64_t r = r0; r < r1; r++) {
    dequant_row (j->q, (int) r, row);
    float acc = 0.f;
    for (int i = 0; i < j->q->cols; i++)
      acc += row[i] * j->x[i];
    j->y[r] = j->acc ? j->y[r] + acc : acc;
  }
}

void
sutra_qweight_matvec (const SutraQWeight *q, const float *x, float *y, bool accumulate)
{
  MatvecJob j = { q, x, y, accumulate };
  sutra_parallel_for (q->rows, 16, matvec_range, &j);
}

/* out[N, rows] (+)= in[N, cols] W^T, a tile of TILE_ROWS output features at a time */
void
sutra_qweight_matmul (const SutraQWeight *q, const float *in, float *out, int N, bool accumulate)
{
  if (N == 1) {
    sutra_qweight_matvec (q, in, out, accumulate);
    return;
  }
  float *tile = sutra_thread_scratch (3, (size_t) TILE_ROWS * q->cols);
  for (int r0 = 0; r0 < q->rows; r0 += TILE_ROWS) {
    int nr = q->rows - r0 < TILE_ROWS ? q->rows - r0 : TILE_ROWS;
    sutra_qweight_dequant_rows (q, r0, nr, tile);
    sutra_sgemm (false, true, N, nr, q->cols, 1.f, in, q->cols, tile, q->cols,
                 accumulate ? 1.f : 0.f, out + r0, q->rows);
  }
}

/* din[N, cols] += dout[N, rows] W */
void
sutra_qweight_matmul_t (const SutraQWeight *q, const float *dout, float *din, int N)
{
  float *tile = sutra_thread_scratch (3, (size_t) TILE_ROWS * q->cols);
  for (int r0 = 0; r0 < q->rows; r0 += TILE_ROWS) {
    int nr = q->rows - r0 < TILE_ROWS ? q->rows - r0 : TILE_ROWS;
    sutra_qweight_dequant_rows (q, r0, nr, tile);
    sutra_sgemm (false, false, N, q->cols, nr, 1.f, dout + r0, q->rows, tile, q->cols, 1.f, din,
                 q->cols);
  }
}
