/* sutra-cli-quantize.c: `sutra quantize MODEL --method nf4|int4|awq|gptq|int8 --out DIR`.
 * The work and the report are the engine's (sutra_quantize_to_folder); this file parses the
 * options, turns the calibration and evaluation files into token ids (text through the
 * model's tokenizer, or ids given directly), shows progress on a terminal and prints the
 * report. */
#include "sutra-cli.h"
#include "sutra-fsutil.h"
#include "sutra-pool.h"
#include "sutra-quantize.h"
#include "sutra-tokenizer.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const SutraCliOptSpec quantize_opts[] = {
  { "method", true },     { "group-size", true }, { "double-quant", false }, { "calib", true },
  { "calib-ids", true },  { "eval", true },       { "eval-ids", true },      { "calib-tokens", true },
  { "eval-tokens", true }, { "ctx", true },      { "lm-head", false },   { "gptq-one-pass", false }, { "overwrite", false },
  { "threads", true },    { "json", false },      { "out", true },           { NULL, false },
};

/* Reads whitespace- or comma-separated token ids from a file. */
static int
read_ids_file (const char *path, int **ids, int *n)
{
  char *text;
  size_t len;
  SutraError err;
  if (sutra_read_file (path, 0, &text, &len, &err))
    return sutra_cli_fail (&err);
  int cap = 1024, k = 0;
  int *v = sutra_xmalloc (sizeof (int) * (size_t) cap);
  const char *p = text;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')
      p++;
    if (!*p)
      break;
    char *end;
    long x = strtol (p, &end, 10);
    if (end == p || x < 0 || x > 0x7fffffff) {
      int rc = sutra_cli_error ("%s: byte %ld: expected a token id (whitespace-separated "
                                "integers)", path, (long) (p - text));
      free (v);
      free (text);
      return rc;
    }
    if (k == cap)
      v = sutra_xrealloc (v, sizeof (int) * (size_t) (cap *= 2));
    v[k++] = (int) x;
    p = end;
  }
  free (text);
  *ids = v;
  *n = k;
  return 0;
}

/* Text through the model's own tokenizer (tokenizer.json in the model folder), with its
 * special tokens added as the model expects (BOS first for Llama-style tokenizers). */
static int
read_text_ids (const char *model_dir, const char *path, int **ids, int *n)
{
  SutraError err;
  SutraTokenizer *tok;
  if (sutra_tokenizer_load (model_dir, &tok, &err)) {
    sutra_error_prefix (&err, "reading %s needs the model's tokenizer", path);
    return sutra_cli_fail (&err);
  }
  char *text;
  size_t len;
  SutraEncoding enc = { 0 };
  int rc = 0;
  if (sutra_read_file (path, 0, &text, &len, &err)) {
    rc = sutra_cli_fail (&err);
  } else {
    if (sutra_tokenizer_encode (tok, text, len, SUTRA_ENCODE_ADD_SPECIAL, &enc, &err)) {
      sutra_error_prefix (&err, "%s", path);
      rc = sutra_cli_fail (&err);
    } else {
      *ids = sutra_xmalloc (sizeof (int) * (enc.n ? enc.n : 1));
      for (size_t i = 0; i < enc.n; i++)
        (*ids)[i] = enc.ids[i];
      *n = (int) enc.n;
    }
    free (text);
  }
  sutra_encoding_clear (&enc);
  sutra_tokenizer_free (tok);
  return rc;
}

static bool
on_progress (const SutraQuantizeProgress *p, void *user_data)
{
  (void) user_data;
  static const char *phase[] = { "calibrating", "quantizing", "evaluating", "writing" };
  fprintf (stderr, "\r\033[K%3.0f%% %s %d/%d %s", 100.0 * p->fraction, phase[p->phase], p->done,
           p->total, p->name ? p->name : "");
  fflush (stderr);
  return true;
}

static void
print_report (const SutraQuantReport *r, const SutraQuantizeOptions *o, const char *out, bool json)
{
  const SutraQuantParams *p = &o->params;
  const SutraQuantizeSummary *s = &r->summary;
  if (json) {
    json_object *j = json_object_new_object ();
    json_object_object_add (j, "out", json_object_new_string (out));
    json_object_object_add (j, "type", json_object_new_string (sutra_quant_type_name (p->type)));
    json_object_object_add (j, "method", json_object_new_string (sutra_quant_method_name (p->method)));
    json_object_object_add (j, "group_size", json_object_new_int (p->type == SUTRA_QUANT_INT8 ? 0 : p->group_size ? p->group_size : 64));
    json_object_object_add (j, "double_quant", json_object_new_boolean (p->double_quant));
    json_object_object_add (j, "quantized_linears", json_object_new_int (s->n_quantized));
    json_object_object_add (j, "awq_folded", json_object_new_int (s->n_awq_folded));
    json_object_object_add (j, "awq_explicit_scales", json_object_new_int (s->n_awq_explicit));
    json_object_object_add (j, "calibration_passes", json_object_new_int (s->calib_passes));
    json_object_object_add (j, "calibration_tokens", json_object_new_int64 (s->calib_tokens));
    json_object_object_add (j, "quantize_seconds", json_object_new_double (s->seconds));
    json_object_object_add (j, "file_bytes", json_object_new_int64 ((int64_t) r->file_bytes));
    json_object_object_add (j, "source_file_bytes", json_object_new_int64 ((int64_t) r->source_file_bytes));
    json_object_object_add (j, "parameters", json_object_new_int64 (r->params));
    json_object_object_add (j, "parameters_quantized", json_object_new_int64 (r->params_quantized));
    json_object_object_add (j, "bits_per_weight", json_object_new_double (r->bits_per_weight));
    json_object_object_add (j, "bits_per_parameter_file", json_object_new_double (r->bits_per_param_file));
    json_object_object_add (j, "compression_vs_f32", json_object_new_double (r->ratio_vs_f32));
    json_object_object_add (j, "compression_vs_f16", json_object_new_double (r->ratio_vs_f16));
    if (r->evaluated) {
      const SutraQuantCompare *e = &r->eval;
      json_object_object_add (j, "eval_tokens", json_object_new_int64 (e->tokens));
      json_object_object_add (j, "perplexity_before", json_object_new_double (e->ppl_ref));
      json_object_object_add (j, "perplexity_after", json_object_new_double (e->ppl_quant));
      json_object_object_add (j, "kl_mean", json_object_new_double (e->kl_mean));
      json_object_object_add (j, "kl_p99", json_object_new_double (e->kl_p99));
      json_object_object_add (j, "kl_max", json_object_new_double (e->kl_max));
      json_object_object_add (j, "top1_agreement", json_object_new_double (e->top1_agree));
    }
    json_object_object_add (j, "notes", json_object_new_string (s->notes));
    printf ("%s\n", json_object_to_json_string_ext (j, JSON_C_TO_STRING_PRETTY |
                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put (j);
    return;
  }
  printf ("output:        %s\n", out);
  printf ("quantized:     %d linears as %s (%s", s->n_quantized, sutra_quant_type_name (p->type),
          sutra_quant_method_name (p->method));
  if (p->type == SUTRA_QUANT_INT4)
    printf (", group %d", p->group_size ? p->group_size : 64);
  if (p->double_quant)
    printf (", double-quantized scales");
  printf (") in %.1f s", s->seconds);
  if (s->calib_passes)
    printf (", %d calibration pass%s over %lld tokens", s->calib_passes,
            s->calib_passes == 1 ? "" : "es", (long long) s->calib_tokens);
  printf ("\n");
  if (p->method == SUTRA_QMETHOD_AWQ)
    printf ("awq scales:    %d folded into the preceding layer, %d kept as input scales\n",
            s->n_awq_folded, s->n_awq_explicit);
  printf ("file size:     %.2f MiB (source %.2f MiB)\n", (double) r->file_bytes / 1048576.0,
          (double) r->source_file_bytes / 1048576.0);
  printf ("bits/weight:   %.3f in the quantized linears; %.3f per parameter over the file\n",
          r->bits_per_weight, r->bits_per_param_file);
  printf ("compression:   %.2fx vs f32, %.2fx vs f16\n", r->ratio_vs_f32, r->ratio_vs_f16);
  if (r->evaluated) {
    const SutraQuantCompare *e = &r->eval;
    printf ("perplexity:    %.4f -> %.4f (%+.2f%%) over %lld tokens\n", e->ppl_ref, e->ppl_quant,
            100.0 * (e->ppl_quant / e->ppl_ref - 1.0), (long long) e->tokens);
    printf ("KL divergence: mean %.5f, p99 %.5f, max %.5f nats per token\n", e->kl_mean, e->kl_p99,
            e->kl_max);
    printf ("top-1 agrees:  %.2f%%\n", 100.0 * e->top1_agree);
  }
  if (s->notes[0]) {
    printf ("notes:\n");
    const char *line = s->notes;
    int shown = 0;
    while (*line && shown < 8) {
      const char *nl = strchr (line, '\n');
      int len = nl ? (int) (nl - line) : (int) strlen (line);
      printf ("  %.*s\n", len, line);
      line += len + (nl ? 1 : 0);
      shown++;
    }
    if (*line)
      printf ("  ...\n");
  }
}

static int
cmd_quantize (int argc, char **argv)
{
  SutraCliArgs a;
  if (!sutra_cli_parse (&a, argc, argv, quantize_opts))
    return 2;
  const char *method = sutra_cli_opt (&a, "method"), *out = sutra_cli_opt (&a, "out");
  if (a.npos != 1 || !method || !out)
    return sutra_cli_usage_error ("quantize", "expected MODEL, --method and --out");
  SutraQuantizeOptions o = { 0 };
  if (!strcmp (method, "nf4")) {
    o.params.type = SUTRA_QUANT_NF4;
  } else if (!strcmp (method, "int8")) {
    o.params.type = SUTRA_QUANT_INT8;
  } else {
    o.params.type = SUTRA_QUANT_INT4;
    if (!strcmp (method, "awq"))
      o.params.method = SUTRA_QMETHOD_AWQ;
    else if (!strcmp (method, "gptq"))
      o.params.method = SUTRA_QMETHOD_GPTQ;
    else if (strcmp (method, "int4") != 0)
      return sutra_cli_usage_error ("quantize", "--method '%s' (nf4, int4, awq, gptq, int8)",
                                    method);
  }
  long long g = 0, ctx = 0, ctok = 0, etok = 0, threads = 0;
  if (!sutra_cli_opt_int (&a, "group-size", 0, 1024, &g) ||
      !sutra_cli_opt_int (&a, "eval-tokens", 0, 1 << 28, &etok) ||
      !sutra_cli_opt_int (&a, "ctx", 0, 1 << 20, &ctx) ||
      !sutra_cli_opt_int (&a, "calib-tokens", 0, 1 << 26, &ctok) ||
      !sutra_cli_opt_int (&a, "threads", 0, 64, &threads))
    return 2;
  if (g && o.params.type != SUTRA_QUANT_INT4 && !(o.params.type == SUTRA_QUANT_NF4 && g == 64))
    return sutra_cli_usage_error ("quantize", "--group-size applies to int4, awq and gptq (nf4 "
                                  "uses blocks of 64, int8 one scale per row)");
  o.params.group_size = o.params.type == SUTRA_QUANT_INT4 ? (g ? (int) g : 64) : 0;
  o.params.double_quant = sutra_cli_flag (&a, "double-quant");
  o.quantize_lm_head = sutra_cli_flag (&a, "lm-head");
  o.gptq_one_pass = sutra_cli_flag (&a, "gptq-one-pass");
  SutraError err;
  if (sutra_quant_params_check (&o.params, &err))
    return sutra_cli_usage_error ("quantize", "%s", err.message);
  bool needs_calib = o.params.method != SUTRA_QMETHOD_RTN;
  if (needs_calib && !sutra_cli_opt (&a, "calib") && !sutra_cli_opt (&a, "calib-ids"))
    return sutra_cli_usage_error ("quantize", "--method %s needs calibration data: --calib FILE "
                                  "(text) or --calib-ids FILE (token ids)", method);
  if (threads)
    sutra_set_threads ((int) threads);
  SutraModel *m;
  int rc = sutra_cli_open_model (a.pos[0], &m);
  if (rc)
    return rc;
  int *cids = NULL, *eids = NULL, nc = 0, ne = 0;
  SutraBatch *batches = NULL;
  const char *f;
  if ((f = sutra_cli_opt (&a, "calib-ids")) && needs_calib)
    rc = read_ids_file (f, &cids, &nc);
  else if ((f = sutra_cli_opt (&a, "calib")) && needs_calib)
    rc = read_text_ids (m->dir, f, &cids, &nc);
  if (!rc && (f = sutra_cli_opt (&a, "eval-ids")))
    rc = read_ids_file (f, &eids, &ne);
  else if (!rc && (f = sutra_cli_opt (&a, "eval")))
    rc = read_text_ids (m->dir, f, &eids, &ne);
  if (rc)
    goto done;
  if (etok > 0 && ne > etok)
    ne = (int) etok;
  /* calibration windows of ctx tokens (default min(512, context)) */
  int T = ctx > 0 ? (int) ctx : 512;
  if (m->cfg.max_position_embeddings > 0 && T > m->cfg.max_position_embeddings)
    T = m->cfg.max_position_embeddings;
  if (needs_calib) {
    int limit = ctok > 0 ? (int) ctok : 4096;
    if (nc > limit)
      nc = limit;
    int nb = 0;
    batches = sutra_xcalloc ((size_t) (nc / T + 1), sizeof *batches);
    for (int off = 0; off + 1 < nc; off += T) {
      batches[nb] = (SutraBatch) { 1, nc - off < T ? nc - off : T, cids + off, NULL, NULL };
      nb++;
    }
    for (int i = 0; i < nc; i++)
      if (cids[i] < 0 || cids[i] >= m->cfg.vocab_size) {
        rc = sutra_cli_error ("calibration id %d at position %d is outside the vocabulary "
                              "(0..%d)", cids[i], i, m->cfg.vocab_size - 1);
        goto done;
      }
    if (nb == 0) {
      rc = sutra_cli_error ("the calibration data holds fewer than 2 tokens");
      goto done;
    }
    o.calib = batches;
    o.n_calib = nb;
  }
  if (isatty (2))
    o.progress = on_progress;
  SutraQuantReport rep;
  SutraStatus st = sutra_quantize_to_folder (m, out, sutra_cli_flag (&a, "overwrite"), &o, eids, ne,
                                             T, &rep, &err);
  if (isatty (2))
    fprintf (stderr, "\r\033[K");
  if (st) {
    rc = sutra_cli_fail (&err);
    goto done;
  }
  print_report (&rep, &o, out, sutra_cli_flag (&a, "json"));
done:
  free (cids);
  free (eids);
  free (batches);
  sutra_model_free (m);
  return rc;
}

SUTRA_CLI_COMMAND (quantize, "quantize",
                   "MODEL --method nf4|int4|awq|gptq|int8 [--group-size G] [--double-quant] "
                   "[--calib FILE | --calib-ids FILE] [--eval FILE | --eval-ids FILE] "
                   "[--calib-tokens N] [--eval-tokens N] [--ctx N] [--lm-head] [--gptq-one-pass] "
                   "[--overwrite] "
                   "[--json] --out DIR",
                   "quantizes a model into a new folder and reports size and quality", cmd_quantize)
