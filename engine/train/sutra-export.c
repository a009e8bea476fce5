/* sutra-export.c: PEFT adapter and merged-model exports of a run, an adapter or a model. */
#include "sutra-export.h"
#include "sutra-fsutil.h"
#include "sutra-gguf-export.h"
#include "sutra-lora.h"
#include "sutra-trainer.h"

#include <stdlib.h>
#include <string.h>

static bool
has_file (const char *dir, const char *name)
{
  char *p = sutra_path_join (dir, name);
  bool ok = sutra_is_file (p);
  free (p);
  return ok;
}

SutraStatus
sutra_export_find_adapter (const char *source, char **adapter_dir, SutraError *err)
{
  if (has_file (source, "adapter_config.json")) {
    *adapter_dir = sutra_xstrdup (source);
    return SUTRA_OK;
  }
  char *final = sutra_path_join (source, "adapter");
  if (has_file (final, "adapter_config.json")) {
    *adapter_dir = final;
    return SUTRA_OK;
  }
  free (final);
  char **list;
  size_t n;
  SutraStatus st = sutra_run_list_checkpoints (source, &list, &n, err);
  if (st)
    return st;
  char *found = NULL;
  for (size_t i = n; i-- > 0 && !found;)
    if (has_file (list[i], "adapter_config.json"))
      found = sutra_xstrdup (list[i]);
  for (size_t i = 0; i < n; i++)
    free (list[i]);
  free (list);
  if (!found)
    return sutra_error_set (err, SUTRA_ERR_NOT_FOUND,
                            "%s: no LoRA adapter here (expected adapter_config.json, a run folder "
                            "with adapter/ or a checkpoint)", source);
  *adapter_dir = found;
  return SUTRA_OK;
}

SutraStatus
sutra_export_copy_tokenizer_files (const char *src_dir, const char *dst_dir, SutraError *err)
{
  static const char *names[] = { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                 "chat_template.jinja", "generation_config.json", "tokenizer.model" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char *src = sutra_path_join (src_dir, names[i]);
    SutraStatus st = SUTRA_OK;
    if (sutra_is_file (src)) {
      char *dst = sutra_path_join (dst_dir, names[i]);
      st = sutra_copy_file (src, dst, err);
      free (dst);
    }
    free (src);
    if (st)
      return st;
  }
  return SUTRA_OK;
}

static bool
report (const SutraExportOptions *o, double f, const char *what)
{
  return !o->progress || o->progress (f, what, o->user_data);
}

/* The model to export: the base with the source's adapter, or a full run's own model. */
static SutraStatus
open_source (const char *source, const char *model_dir, bool need_adapter, SutraModel **out,
             SutraLoraConfig *lcfg, char **weights_dir, SutraError *err)
{
  SutraStatus st;
  if (source) {
    char *full = sutra_path_join (source, "model");
    if (has_file (full, "config.json") && !has_file (source, "adapter_config.json")) {
      if (need_adapter) {
        free (full);
        return sutra_error_set (err, SUTRA_ERR_INVALID,
                                "%s is a full fine-tuning run: it has a model, not an adapter "
                                "(export it with --merged or --gguf)", source);
      }
      st = sutra_model_load (full, out, err);
      *weights_dir = full;
      return st;
    }
    free (full);
  }
  if (!model_dir)
    return sutra_error_set (err, SUTRA_ERR_INVALID, "no base model given");
  st = sutra_model_load (model_dir, out, err);
  if (st)
    return st;
  *weights_dir = sutra_xstrdup (model_dir);
  if (!source) {
    if (need_adapter)
      st = sutra_error_set (err, SUTRA_ERR_INVALID, "a PEFT export needs an adapter or a run folder");
    return st;
  }
  char *adir;
  st = sutra_export_find_adapter (source, &adir, err);
  if (!st) {
    st = sutra_lora_load (*out, adir, lcfg, err);
    free (adir);
  }
  if (st) {
    sutra_model_free (*out);
    *out = NULL;
  }
  return st;
}

SutraStatus
sutra_export (const char *source, const char *model_dir, const char *out, const SutraExportOptions *o,
              SutraError *err)
{
  SutraExportOptions defaults = { .kind = SUTRA_EXPORT_PEFT, .dtype = SUTRA_F32 };
  if (!o)
    o = &defaults;
  /* an export inside the model or source folder must stay there (no symlink out of it) */
  SutraStatus cst = sutra_path_check_write (model_dir, out, err);
  if (!cst)
    cst = sutra_path_check_write (source, out, err);
  if (cst)
    return cst;
  SutraModel *m = NULL;
  SutraLoraConfig lcfg = { 0 };
  char *weights_dir = NULL;
  if (!report (o, 0.0, "loading"))
    return sutra_error_set (err, SUTRA_ERR_CANCELLED, "export cancelled");
  SutraStatus st = open_source (source, model_dir, o->kind == SUTRA_EXPORT_PEFT, &m, &lcfg,
                                &weights_dir, err);
  if (st)
    goto out;
  if (!report (o, 0.3, o->kind == SUTRA_EXPORT_PEFT ? "writing adapter" : "merging"))
    st = sutra_error_set (err, SUTRA_ERR_CANCELLED, "export cancelled");
  else if (o->kind == SUTRA_EXPORT_GGUF) {
    /* an attached adapter is merged while the file is written; the model is not modified */
    st = sutra_gguf_export_model (m, model_dir ? model_dir : weights_dir, out,
                                  o->gguf_type ? o->gguf_type : "f16", o->progress, o->user_data, err);
  } else if (o->kind == SUTRA_EXPORT_PEFT) {
    st = sutra_lora_save (m, &lcfg, model_dir, out, err);
  } else {
    st = sutra_lora_merge (m, err);
    char *tmp = NULL;
    if (!st)
      st = sutra_tmpdir_begin (out, &tmp, err);
    if (!st && report (o, 0.5, "writing weights"))
      st = sutra_model_write_files (m, tmp, o->dtype, err);
    else if (!st)
      st = sutra_error_set (err, SUTRA_ERR_CANCELLED, "export cancelled");
    if (!st)
      st = sutra_export_copy_tokenizer_files (model_dir ? model_dir : weights_dir, tmp, err);
    if (!st && !report (o, 0.95, "finishing"))
      st = sutra_error_set (err, SUTRA_ERR_CANCELLED, "export cancelled");
    if (!st)
      st = sutra_tmpdir_commit (tmp, out, err);
    if (st && tmp)
      sutra_rm_rf (tmp, NULL);
    free (tmp);
  }
  if (!st)
    report (o, 1.0, "done");
  else if (st != SUTRA_ERR_CANCELLED)
    sutra_error_prefix (err, "%s not written (a previous export there is intact)", out);
out:
  sutra_lora_config_clear (&lcfg);
  sutra_model_free (m);
  free (weights_dir);
  return st;
}
