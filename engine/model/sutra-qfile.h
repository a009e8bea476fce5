/* sutra-qfile.h: quantized model files: a Hugging Face folder whose model.safetensors holds
 * packed linear weights.
 *
 * A packed linear "<module>" is stored as the tensors "<module>.<part>" named by
 * sutra_qweight_parts (qweight, absmax | absmax_q + absmax_scale + absmax_offset, scales, zeros,
 * in_scale), its bias as "<module>.bias"; every other tensor keeps its Hugging Face name.
 * __metadata__ says how to read them (all strings, as safetensors requires):
 *   "sutra_quant": "1" (layout version), "quant_type": "nf4" | "int4" | "int8",
 *   "quant_method": "rtn" | "awq" | "gptq", "group_size": "64" (INT4: 32/64/128; NF4: 64;
 *   INT8: "0" = per row), "double_quant": "true" | "false".
 * Every check the loader makes (metadata values, part dtypes and shapes against the model's
 * config, zero points, finite scales) names the file and tensor at fault. */
#pragma once
#include "sutra-model.h"

#define SUTRA_QFILE_VERSION "1"

/* The quantization metadata of a weight set. *present = false (and SUTRA_OK) when it has no
 * packed tensors at all; packed tensors without valid metadata are SUTRA_ERR_FORMAT. */
SutraStatus sutra_qfile_params (const SutraSafetensors *st, bool *present, SutraQuantParams *p,
                                SutraError *err);
/* true when "<module>.qweight" exists. */
bool        sutra_qfile_has_packed (const SutraSafetensors *st, const char *module);
/* Loads the packed weight of `module` (out_features = rows, in_features = cols), borrowing the
 * mapped data (it must outlive the weight). */
SutraStatus sutra_qfile_load_linear (const SutraSafetensors *st, const char *module, int rows,
                                     int cols, SutraQWeight **out, SutraError *err);
/* Adds the parts of q as "<module>.<part>" (data borrowed until the writer writes). */
void        sutra_qfile_add_linear (SutraSafetensorsWriter *w, const char *module,
                                    const SutraQWeight *q);

/* Writes config.json (copied from m->dir when the model came from a folder, else generated)
 * and model.safetensors into an existing folder, each atomically: packed linears as parts,
 * f32 linears and 2-D parameters as float_dtype (F32, F16 or BF16), 1-D parameters and biases
 * as F32 (AWQ folds scales into norms). Every packed linear must share one parameter set.
 * A tied lm_head that was quantized is written as a packed "lm_head" (no longer tied). */
SutraStatus sutra_model_write_quantized_files (SutraModel *m, const char *dir,
                                               SutraDType float_dtype, SutraError *err);
