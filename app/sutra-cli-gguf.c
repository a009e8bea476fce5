/* sutra-cli-gguf.c: `sutra gguf-export MODEL --out OUT.gguf [--type T] [--adapter DIR]` and
 * `sutra gguf-info FILE.gguf [--json] [--all]` (metadata and tensor table through our reader). */
#include "sutra-cli.h"
#include "sutra-gguf-export.h"
#include "sutra-gguf.h"
#include "sutra-model.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool
progress_cb (double fraction, const char *what, void *user)
{
  (void) user;
  if (isatty (STDERR_FILENO))
    fprintf (stderr, "\r%5.1f%% %-40.40s", fraction * 100.0, what);
  return true;
}

static const SutraCliOptSpec export_opts[] = {
  { "out", true }, { "type", true }, { "adapter", true }, { "tokenizer", true }, { NULL, false },
};

static int
cmd_gguf_export (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, export_opts))
    return 2;
  const char *out = sutra_cli_opt (&a, "out"), *type = sutra_cli_opt (&a, "type");
  if (a.npos != 1 || !out)
    return sutra_cli_usage_error ("gguf-export", "expected MODEL and --out FILE.gguf");
  SutraModel *m;
  int rc = sutra_cli_open_model (a.pos[0], &m);
  if (rc)
    return rc;
  SutraError err;
  const char *adapter = sutra_cli_opt (&a, "adapter");
  if (adapter && sutra_cli_attach_adapter (m, adapter, &err)) {
    sutra_model_free (m);
    return sutra_cli_fail (&err);
  }
  SutraStatus st = sutra_gguf_export_model (m, sutra_cli_opt (&a, "tokenizer"), out,
                                            type ? type : "f16", progress_cb, NULL, &err);
  if (isatty (STDERR_FILENO))
    fputc ('\n', stderr);
  sutra_model_free (m);
  if (st)
    return sutra_cli_fail (&err);
  printf ("%s\n", out);
  return 0;
}

SUTRA_CLI_COMMAND (gguf_export, "gguf-export",
                   "MODEL --out OUT.gguf [--type f32|f16|bf16|q8_0|q4_0|q4_k|q6_k] [--adapter DIR] "
                   "[--tokenizer DIR]",
                   "writes the model (with an adapter merged) as GGUF for llama.cpp / Ollama",
                   cmd_gguf_export)

static const SutraCliOptSpec info_opts[] = { { "json", false }, { "all", false }, { NULL, false } };

static int
cmd_gguf_info (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, info_opts))
    return 2;
  if (a.npos != 1)
    return sutra_cli_usage_error ("gguf-info", "expected one FILE.gguf");
  SutraGguf *g;
  SutraError err;
  if (sutra_gguf_open (a.pos[0], &g, &err))
    return sutra_cli_fail (&err);
  bool all = sutra_cli_flag (&a, "all");
  int items = all ? 1 << 30 : 8;
  size_t nt = sutra_gguf_tensor_count (g), nkv = sutra_gguf_kv_count (g);
  uint64_t total = 0;
  for (size_t i = 0; i < nt; i++)
    total += sutra_gguf_tensor (g, i)->size;
  if (sutra_cli_flag (&a, "json")) {
    json_object *o = json_object_new_object (), *kv = json_object_new_object (),
                *ts = json_object_new_array ();
    json_object_object_add (o, "version", json_object_new_int ((int) sutra_gguf_version (g)));
    json_object_object_add (o, "alignment", json_object_new_int64 ((int64_t) sutra_gguf_alignment (g)));
    json_object_object_add (o, "tensor_bytes", json_object_new_int64 ((int64_t) total));
    json_object_object_add (o, "data_offset", json_object_new_int64 ((int64_t) sutra_gguf_data_offset (g)));
    for (size_t i = 0; i < nkv; i++) {
      char *s = sutra_gguf_kv_to_string (g, i, items);
      json_object_object_add (kv, sutra_gguf_kv_key (g, i), json_object_new_string (s));
      free (s);
    }
    json_object_object_add (o, "metadata", kv);
    for (size_t i = 0; i < nt; i++) {
      const SutraGgufTensor *t = sutra_gguf_tensor (g, i);
      json_object *e = json_object_new_object (), *ne = json_object_new_array ();
      json_object_object_add (e, "name", json_object_new_string (t->name));
      json_object_object_add (e, "type", json_object_new_string (sutra_ggml_type_name (t->type)));
      for (int d = 0; d < t->n_dims; d++)
        json_object_array_add (ne, json_object_new_int64 (t->ne[d]));
      json_object_object_add (e, "ne", ne);
      json_object_object_add (e, "offset", json_object_new_int64 ((int64_t) t->offset));
      json_object_object_add (e, "bytes", json_object_new_int64 ((int64_t) t->size));
      json_object_array_add (ts, e);
    }
    json_object_object_add (o, "tensors", ts);
    printf ("%s\n", json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put (o);
  } else {
    printf ("GGUF v%u, alignment %zu, %zu keys, %zu tensors, %.2f MiB of tensor data\n",
            sutra_gguf_version (g), sutra_gguf_alignment (g), nkv, nt, (double) total / 1048576.0);
    for (size_t i = 0; i < nkv; i++) {
      char *s = sutra_gguf_kv_to_string (g, i, items);
      printf ("  %-44s %-8s %s\n", sutra_gguf_kv_key (g, i),
              sutra_gguf_type_name (sutra_gguf_kv_type (g, i)), s);
      free (s);
    }
    printf ("%-40s %-6s %-22s %12s\n", "tensor", "type", "shape (ne)", "bytes");
    for (size_t i = 0; i < nt; i++) {
      const SutraGgufTensor *t = sutra_gguf_tensor (g, i);
      char shape[64] = "";
      size_t off = 0;
      for (int d = 0; d < t->n_dims; d++)
        off += (size_t) snprintf (shape + off, sizeof shape - off, "%s%" PRId64, d ? " x " : "", t->ne[d]);
      printf ("%-40s %-6s %-22s %12zu\n", t->name, sutra_ggml_type_name (t->type), shape, t->size);
    }
  }
  sutra_gguf_free (g);
  return 0;
}

SUTRA_CLI_COMMAND (gguf_info, "gguf-info", "FILE.gguf [--json] [--all]",
                   "prints a GGUF file's metadata and tensor table", cmd_gguf_info)
