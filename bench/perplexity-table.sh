#!/usr/bin/env bash
# Perplexity tables for quantized models in the layout rwkv.cpp publishes for RWKV-4 169M
# (README "Quality and performance": Format | Perplexity | Latency, ms | File size), plus our
# columns: KL divergence against the unquantized model (mean, p99, nats per token), top-1
# agreement, bits per weight of the quantized linears, quantize time.
#
#   bench/perplexity-table.sh [BUILD_DIR] [WORK_DIR]
#   MODELS="kjv rwkv4-tiny" bench/perplexity-table.sh      (default: kjv rwkv4-tiny hf-rwkv4-tiny hf-mamba-tiny)
#
# For each model: `sutra quantize` with nf4, int4 (round to nearest), awq, gptq (INT4 groups of
# 64) and int8 (per output row), for the real models also with --lm-head, for the default model
# also INT4 RTN/AWQ/GPTQ at groups of 32 and 128; then for every folder
# `sutra eval FOLDER --data eval.jsonl --reference SOURCE` (perplexity, KL vs the source model)
# and `sutra bench generate --model FOLDER --threads $THREADS` (ms per decoded token after a
# 64-token prompt, 128 steps, best of 2; rwkv.cpp's table also times one token at a time).
# THREADS (default 2) is also exported as SUTRA_THREADS for quantize and eval. The source
# model's row is a plain `sutra eval SOURCE`. Perplexity = exp(mean next-token NLL over every
# scored position); each row of eval.jsonl starts from an empty state/cache (rwkv.cpp instead
# runs the whole text as one stream and skips the first N tokens).
#
# Models and data (prepared in WORK_DIR; nothing is written into the repository):
#   kjv            data/models/sutra-kjv-mini (whatever model files are there), evaluated on
#                  data/tools/prepare_corpus.py's heldout.txt (chapters never trained on), tokenized
#                  with the model's tokenizer (BOS first), windows of min(512, context), every
#                  other window (~12k tokens); calibration (awq/gptq): 4096 tokens of every 50th
#                  line of corpus.txt (training text). Needs the `bible` program (Debian
#                  bible-kjv), else skipped.
#   rwkv4-tiny     ../shared/testdata/rwkv4-tiny (rwkv.cpp's trained tiny RWKV-4, byte vocabulary:
#                  token id = byte): rows = the quickfox prompt, '"in', and the first 16 KiB of
#                  /usr/share/common-licenses/GPL-3 in windows of 1024 bytes; calibration: the
#                  Apache-2.0 licence text (8192 bytes) (Debian's /usr/share/common-licenses).
#   hf-rwkv4-tiny, hf-mamba-tiny
#                  ../shared/testdata/hf-refs/{rwkv4,mamba}-tiny: RANDOM weights. Evaluation and
#                  calibration ids are sampled from the model itself (`sutra generate`,
#                  temperature 1, different seeds), so perplexity is about the model's own entropy:
#                  a consistency check of the formats, not a quality measure.
# The last three are skipped, with a message, when ../shared/testdata (or
# $SUTRA_SHARED/testdata) is absent. Needs python3 (standard library only). Prints the markdown
# tables on stdout; raw JSON stays in WORK_DIR/<model>/. All four models: 8.4 CPU-minutes
# (17 min wall on 2 cores shared at load 5-8; docs/quantization.md section 8).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$(cd "${1:-build}" && pwd)
work=${2:-$(mktemp -d /tmp/sutra-ppl-XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
sutra="$build/sutra"
shared=${SUTRA_SHARED:-$root/../shared}
models=${MODELS:-kjv rwkv4-tiny hf-rwkv4-tiny hf-mamba-tiny}
threads=${THREADS:-2}
export SUTRA_THREADS=$threads     # quantize and eval use the engine's pool
py=python3
log() { echo "+ $*" >&2; }

# ---- data ----------------------------------------------------------------------------------

# ids_to_rows CTX < ids(JSON array or whitespace list) > JSONL: non-overlapping windows of CTX
# (the last partial one kept if it has >= 2 tokens), as sutra_quant_compare and run_clm cut.
ids_to_rows() {
  $py -c '
import json, sys
ctx = int(sys.argv[1]); s = sys.stdin.read().strip()
ids = json.loads(s) if s.startswith("[") else [int(x) for x in s.split()]
for i in range(0, len(ids), ctx):
    w = ids[i:i + ctx]
    if len(w) >= 2:
        print(json.dumps({"input_ids": w}))
' "$1"
}

bytes_ids() {   # FILE [MAXBYTES]: the bytes of a file as whitespace-separated ids
  $py -c '
import sys
b = open(sys.argv[1], "rb").read()
if len(sys.argv) > 2: b = b[:int(sys.argv[2])]
print(" ".join(str(x) for x in b))' "$@"
}

ctx_of() {      # MODEL_DIR: min(512, context length from config.json; 512 when none)
  $py -c '
import json, sys
c = json.load(open(sys.argv[1] + "/config.json"))
n = c.get("max_position_embeddings") or c.get("context_length") or 512
print(min(512, int(n)))' "$1"
}

prepare_kjv() {
  local d=$1 src=$root/data/models/sutra-kjv-mini
  [ -f "$d/heldout.txt" ] || $py data/tools/prepare_corpus.py "$d" >&2
  echo "$src" > "$d/source"
  local ctx; ctx=$(ctx_of "$src")
  echo "$ctx" > "$d/ctx"
  # every other window of the held-out text (about 12k of its 24k tokens: all 29 chapters are
  # sampled, and each `sutra eval --reference` runs both models, so the full set would double
  # the run time)
  "$sutra" tokenize "$src/tokenizer.json" --text-file "$d/heldout.txt" --add-special |
    ids_to_rows "$ctx" | awk 'NR % 2 == 1' > "$d/eval.jsonl"
  awk 'NR % 50 == 0' "$d/corpus.txt" > "$d/calib.txt"
  echo "--calib $d/calib.txt --calib-tokens 4096 --ctx $ctx" > "$d/calib-args"
  echo "heldout.txt of data/tools/prepare_corpus.py (KJV chapters never trained on), every other window of $ctx" > "$d/eval-desc"
  echo yes > "$d/head-rows"
  echo "32 128" > "$d/group-sweep"
}

prepare_rwkv4_tiny() {
  local d=$1 src=$shared/testdata/rwkv4-tiny
  echo "$src" > "$d/source"
  echo 1024 > "$d/ctx"
  {
    printf 'The quick brown fox jumps over the lazy dog. "in' > "$d/quickfox.txt"
    bytes_ids "$d/quickfox.txt" | ids_to_rows 1024
    printf '"in' > "$d/inprompt.txt"
    bytes_ids "$d/inprompt.txt" | ids_to_rows 1024
    bytes_ids /usr/share/common-licenses/GPL-3 16384 | ids_to_rows 1024
  } > "$d/eval.jsonl"
  bytes_ids /usr/share/common-licenses/Apache-2.0 8192 > "$d/calib.ids"
  echo "--calib-ids $d/calib.ids --calib-tokens 8192 --ctx 1024" > "$d/calib-args"
  echo "bytes: the quickfox prompt, '\"in', GPL-3 first 16 KiB (windows of 1024)" > "$d/eval-desc"
  echo yes > "$d/head-rows"
}

# sampled ids from a random model: N samples of T tokens, seeds from SEED0
sample_ids() {
  local src=$1 n=$2 t=$3 seed0=$4 V
  V=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]+"/config.json"))["vocab_size"])' "$src")
  for k in $(seq 0 $((n - 1))); do
    local first=$(( (5 + 41 * k) % V ))
    echo "$first $("$sutra" generate "$src" --prompt-ids "$first" --max-tokens $((t - 1)) \
      --temperature 1 --top-k 0 --top-p 1 --min-p 0 --repeat-penalty 1 --seed $((seed0 + k)) --print-ids --ignore-eos)"
  done
}

prepare_hf_random() {
  local d=$1 src=$2
  echo "$src" > "$d/source"
  echo 128 > "$d/ctx"
  sample_ids "$src" 8 128 900 | while read -r line; do echo "$line" | ids_to_rows 128; done > "$d/eval.jsonl"
  sample_ids "$src" 16 128 100 > "$d/calib.ids"
  echo "--calib-ids $d/calib.ids --ctx 128" > "$d/calib-args"
  echo "8 x 128 ids sampled from the (random) model itself" > "$d/eval-desc"
  echo no > "$d/head-rows"
}

# ---- measurements ---------------------------------------------------------------------------

# ms per decoded token: `sutra bench generate --model DIR` (64-token prompt, then 128 single-token
# steps, $threads threads), best of 2 runs since the machine may be shared
latency() {     # DIR OUT_JSON
  local best="" r
  for r in 1 2; do
    "$sutra" bench generate --model "$1" --threads "$threads" --seq 64 --steps 129 > "$2.$r"
    best=$($py -c '
import json, sys
ms = [json.load(open(f))["ms_per_token"] for f in sys.argv[1:]]
print(sys.argv[1 + ms.index(min(ms))])' "$2".[0-9])
  done
  cp "$best" "$2"
  rm -f "$2".[0-9]
}

# variants: METHOD:GROUP:HEAD (GROUP 0 = the method's own blocks; HEAD 1 = --lm-head)
variants_for() {
  local v="nf4:0:0 int4:64:0 awq:64:0 gptq:64:0 int8:0:0"
  [ "$(cat "$1/head-rows")" = yes ] && v="$v nf4:0:1 int4:64:1 awq:64:1 gptq:64:1 int8:0:1"
  [ -f "$1/group-sweep" ] && for g in $(cat "$1/group-sweep"); do v="$v int4:$g:0 awq:$g:0 gptq:$g:0"; done
  echo "$v"
}

measure() {     # DIR: every format of the model prepared in DIR
  local d=$1 src ctx
  src=$(cat "$d/source")
  ctx=$(cat "$d/ctx")
  read -r -a calib < "$d/calib-args"
  log "$(basename "$d"): source $src"
  "$sutra" eval "$src" --data "$d/eval.jsonl" --seq-len "$ctx" > "$d/ref.eval.json"
  latency "$src" "$d/ref.bench.json"
  for v in $(variants_for "$d"); do
    IFS=: read -r method group head <<< "$v"
    local tag=$method-g$group-h$head extra=() cargs=()
    [ "$head" = 1 ] && extra+=(--lm-head)
    [ "$group" != 0 ] && extra+=(--group-size "$group")
    case $method in awq|gptq) cargs=("${calib[@]}") ;; esac
    log "$(basename "$d"): sutra quantize $src --method $method ${cargs[*]} ${extra[*]}"
    "$sutra" quantize "$src" --method "$method" "${cargs[@]}" "${extra[@]}" --json --overwrite \
      --out "$d/q-$tag" > "$d/$tag.quant.json"
    "$sutra" eval "$d/q-$tag" --data "$d/eval.jsonl" --seq-len "$ctx" --reference "$src" \
      > "$d/$tag.eval.json"
    latency "$d/q-$tag" "$d/$tag.bench.json"
  done
  variants_for "$d" > "$d/variants"
}

table() {       # DIR NAME
  $py - "$1" "$2" <<'PY'
import json, os, sys
d, name = sys.argv[1], sys.argv[2]
J = lambda f: json.load(open(os.path.join(d, f)))
ref, rb = J("ref.eval.json"), J("ref.bench.json")
src = open(os.path.join(d, "source")).read().strip()
src_bytes = sum(os.path.getsize(os.path.join(src, f)) for f in os.listdir(src) if f.endswith(".safetensors"))
cfg = json.load(open(os.path.join(src, "config.json")))
dtype = cfg.get("torch_dtype") or cfg.get("dtype") or "float32"
ref_fmt = {"float16": "`FP16` (as stored; run in f32)", "bfloat16": "`BF16` (as stored; run in f32)"}.get(dtype, "`FP32`")
print("Model `%s` (`%s`); evaluation: %s, %d tokens scored in %d rows; reference perplexity %.4f."
      % (name, os.path.normpath(src), open(os.path.join(d, "eval-desc")).read().strip(),
         ref["tokens"], ref["examples"], ref["perplexity"]))
print()
print("| Format | Perplexity (%s) | Latency, ms (%s) | File size, MB (%s) | Δ ppl | KL mean | KL p99 | top-1 agree | bits/weight | quantize s |" % (name, name, name))
print("|---|---|---|---|---|---|---|---|---|---|")
labels = {"nf4": "`NF4`", "int4": "`INT4` g%s RTN", "awq": "`INT4` g%s AWQ", "gptq": "`INT4` g%s GPTQ", "int8": "`INT8`"}
worst_ref = 0.0
for v in open(os.path.join(d, "variants")).read().split():
    m, g, h = v.split(":")
    tag = "%s-g%s-h%s" % (m, g, h)
    q, e, b = J(tag + ".quant.json"), J(tag + ".eval.json"), J(tag + ".bench.json")
    worst_ref = max(worst_ref, abs(e["reference_perplexity"] / ref["perplexity"] - 1))
    lab = (labels[m] % g if "%s" in labels[m] else labels[m]) + (" + head" if h == "1" else "")
    print("| %s | %.3f | %.3f | %.3f | %+.2f%% | %.5f | %.5f | %.3f | %.3f | %.1f |" % (
        lab, e["perplexity"], b["ms_per_token"], q["file_bytes"] / 1e6,
        100 * (e["perplexity"] / ref["perplexity"] - 1), e["kl_mean"], e["kl_p99"],
        e["top1_agreement"], q["bits_per_weight"], q["quantize_seconds"]))
print("| %s | %.3f | %.3f | %.3f | | | | | %d | |" % (ref_fmt, ref["perplexity"], rb["ms_per_token"],
      src_bytes / 1e6, 16 if dtype in ("float16", "bfloat16") else 32))
print()
# consistency: every `sutra eval --reference` recomputed the source model's perplexity
print("<!-- %s: max |reference_perplexity / source perplexity - 1| over the rows: %.2e -->" % (name, worst_ref))
PY
}

skip_reason() {  # NAME: empty when the model and its data are available
  case $1 in
    kjv) command -v bible > /dev/null || echo "no \`bible\` program for data/tools/prepare_corpus.py (install Debian's bible-kjv)" ;;
    rwkv4-tiny)
      if [ ! -d "$shared/testdata/rwkv4-tiny" ]; then echo "$shared/testdata/rwkv4-tiny not found (../shared absent)"
      elif [ ! -f /usr/share/common-licenses/GPL-3 ]; then echo "no /usr/share/common-licenses/GPL-3"; fi ;;
    hf-rwkv4-tiny) [ -d "$shared/testdata/hf-refs/rwkv4-tiny" ] || echo "$shared/testdata/hf-refs/rwkv4-tiny not found (../shared absent)" ;;
    hf-mamba-tiny) [ -d "$shared/testdata/hf-refs/mamba-tiny" ] || echo "$shared/testdata/hf-refs/mamba-tiny not found (../shared absent)" ;;
  esac
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
echo "<!-- bench/perplexity-table.sh, $(date -u +%Y-%m-%dT%H:%MZ), $cpu, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD) -->"
for name in $models; do
  d=$work/$name
  why=$(skip_reason "$name")
  if [ -n "$why" ]; then
    echo "skipped $name: $why" >&2
    printf 'Model `%s`: skipped (%s).\n\n' "$name" "$why"
    continue
  fi
  mkdir -p "$d"
  case $name in
    kjv) prepare_kjv "$d" ;;
    rwkv4-tiny) prepare_rwkv4_tiny "$d" ;;
    hf-rwkv4-tiny) prepare_hf_random "$d" "$shared/testdata/hf-refs/rwkv4-tiny" ;;
    hf-mamba-tiny) prepare_hf_random "$d" "$shared/testdata/hf-refs/mamba-tiny" ;;
    *) echo "unknown model '$name'" >&2; exit 2 ;;
  esac
  measure "$d"
  table "$d" "$name"
done
echo "raw results: $work" >&2
