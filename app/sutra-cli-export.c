/* sutra-cli-export.c: `sutra export (RUN_DIR | ADAPTER_DIR) --model MODEL (--peft OUT |
 * --merged OUT [--dtype f32|f16|bf16] | --gguf OUT.gguf [--type T])`. --model may be left out
 * when the run's config.json or the adapter's adapter_config.json names the base model. */
#include "sutra-cli.h"
#include "sutra-export.h"
#include "sutra-fsutil.h"
#include "sutra-hub.h"
#include "sutra-json.h"
#include "sutra-trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const SutraCliOptSpec export_opts[] = {
  { "model", true }, { "peft", true }, { "merged", true }, { "gguf", true }, { "dtype", true },
  { "type", true }, { NULL, false },
};

/* The base model a run or adapter was made from, when it says so. */
static char *
base_model_of (const char *source)
{
  char *out = NULL;
  const char *files[2][2] = { { "config.json", "model" }, { "adapter_config.json", "base_model_name_or_path" } };
  for (int i = 0; i < 2 && !out; i++) {
    char *p = sutra_path_join (source, files[i][0]);
    json_object *o;
    if (sutra_is_file (p) && sutra_json_load (p, SUTRA_JSON_OBJECT, &o, NULL) == SUTRA_OK) {
      const char *v = NULL;
      if (sutra_json_get_string (o, p, files[i][1], NULL, &v, NULL) == SUTRA_OK && v)
        out = sutra_xstrdup (v);
      json_object_put (o);
    }
    free (p);
  }
  return out;
}

static bool
on_progress (double f, const char *what, void *data)
{
  (void) data;
  fprintf (stderr, "\r%3.0f%% %-40s", f * 100.0, what);
  if (f >= 1.0)
    fputc ('\n', stderr);
  return true;
}

static int
cmd_export (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, export_opts))
    return 2;
  const char *peft = sutra_cli_opt (&a, "peft"), *merged = sutra_cli_opt (&a, "merged");
  const char *gguf = sutra_cli_opt (&a, "gguf");
  int kinds = !!peft + !!merged + !!gguf;
  if (a.npos != 1 || kinds != 1)
    return sutra_cli_usage_error ("export", "expected a RUN_DIR or ADAPTER_DIR and one of --peft, "
                                  "--merged, --gguf");
  const char *source = a.pos[0];
  SutraError err;
  char *model_arg = sutra_cli_opt (&a, "model") ? sutra_xstrdup (sutra_cli_opt (&a, "model"))
                                                : base_model_of (source);
  char *model_dir = NULL;
  if (!model_arg) {
    char *full = sutra_path_join (source, "model");
    bool is_full_run = sutra_is_dir (full);
    free (full);
    if (!is_full_run)
      return sutra_cli_usage_error ("export", "--model MODEL is needed: %s does not name its base model",
                                    source);
  } else if (sutra_hub_resolve_model (model_arg, &model_dir, &err)) {
    free (model_arg);
    return sutra_cli_fail (&err);
  }
  free (model_arg);
  SutraExportOptions o = { .progress = on_progress };
  const char *out;
  if (peft) {
    o.kind = SUTRA_EXPORT_PEFT;
    out = peft;
  } else if (merged) {
    o.kind = SUTRA_EXPORT_MERGED;
    out = merged;
    const char *d = sutra_cli_opt (&a, "dtype");
    o.dtype = SUTRA_F32;
    if (d && !strcmp (d, "f16"))
      o.dtype = SUTRA_F16;
    else if (d && !strcmp (d, "bf16"))
      o.dtype = SUTRA_BF16;
    else if (d && strcmp (d, "f32")) {
      free (model_dir);
      return sutra_cli_usage_error ("export", "--dtype expects f32, f16 or bf16");
    }
  } else {
    o.kind = SUTRA_EXPORT_GGUF;
    out = gguf;
    o.gguf_type = sutra_cli_opt (&a, "type") ? sutra_cli_opt (&a, "type") : "f16";
  }
  SutraStatus st = sutra_export (source, model_dir, out, &o, &err);
  free (model_dir);
  if (st)
    return sutra_cli_fail (&err);
  printf ("%s\n", out);
  return 0;
}

SUTRA_CLI_COMMAND (export, "export",
                   "(RUN_DIR | ADAPTER_DIR) [--model MODEL] (--peft OUT | --merged OUT [--dtype "
                   "f32|f16|bf16] | --gguf OUT.gguf [--type f16|q8_0|q4_0])",
                   "export a PEFT adapter, a merged Hugging Face model, or GGUF", cmd_export)
