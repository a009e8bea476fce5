#!/usr/bin/env bash
# Decode speed side by side, one model, one run: `sutra bench generate` (our KV-cache step, one
# token at a time) against llama.cpp's llama-bench on the same weights exported to GGUF by
# `sutra gguf-export`, at 1 and 2 threads. Prints a markdown table (and the raw JSON lines to
# stderr).
#   bench/decode-side-by-side.sh [BUILD_DIR] [MODEL_DIR]
#     BUILD_DIR  holds the sutra binary (default: build)
#     MODEL_DIR  a Llama-family model folder (default: data/models/sutra-kjv-mini, stored F16)
#   LLAMA_CPP_BIN  llama-bench, or the folder holding it (default: llama-bench on PATH, else
#                  ../llama.cpp-src/build/bin). When absent, the llama.cpp columns say so.
#   PROMPT (256) tokens in the cache before timing, GEN (128) tokens decoded, REPS (3) llama-bench
#   repetitions.
# Ours: f16 (the checkpoint as stored), int8, int4 (groups of 64), nf4, all projections and the
# head. llama.cpp: f16, q8_0, q4_0 files of the same weights (llama-bench -p 0 -n GEN -d PROMPT:
# GEN tokens generated after PROMPT tokens of context, as ours). Both keep the KV cache (ours
# f32, llama.cpp f16 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
model=${2:-data/models/sutra-kjv-mini}
prompt=${PROMPT:-256}
gen=${GEN:-128}
reps=${REPS:-3}
sutra="$build/sutra"
[ -x "$sutra" ] || { echo "decode-side-by-side: $sutra not found (build first)" >&2; exit 1; }
[ -f "$model/config.json" ] || { echo "decode-side-by-side: $model is not a model folder" >&2; exit 1; }

# ---- find llama-bench ----
lb=""
if [ -n "${LLAMA_CPP_BIN:-}" ]; then
  if [ -d "$LLAMA_CPP_BIN" ]; then lb="$LLAMA_CPP_BIN/llama-bench"; else lb="$LLAMA_CPP_BIN"; fi
elif command -v llama-bench >/dev/null 2>&1; then
  lb=$(command -v llama-bench)
elif [ -x ../llama.cpp-src/build/bin/llama-bench ]; then
  lb=../llama.cpp-src/build/bin/llama-bench
fi
if [ -n "$lb" ] && [ ! -x "$lb" ]; then
  echo "decode-side-by-side: LLAMA_CPP_BIN=$LLAMA_CPP_BIN: no llama-bench there" >&2
  lb=""
fi
llama_note=""
[ -n "$lb" ] || llama_note="llama.cpp not found (set LLAMA_CPP_BIN to llama-bench or its folder): its columns are skipped"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
raw="$tmp/raw.jsonl"
: > "$raw"

# ---- ours ----
for q in f16 int8 int4 nf4; do
  for t in 1 2; do
    echo "sutra bench generate --model $model --quant $q --threads $t" >&2
    "$sutra" bench generate --model "$model" --quant "$q" --threads "$t" --seq "$prompt" \
      --steps "$gen" | sed 's/^{/{"who":"sutra",/' | tee -a "$raw" >&2
  done
done

# ---- llama.cpp on the same weights ----
if [ -n "$lb" ]; then
  for ty in f16 q8_0 q4_0; do
    g="$tmp/model-$ty.gguf"
    echo "sutra gguf-export $model --out $g --type $ty" >&2
    "$sutra" gguf-export "$model" --out "$g" --type "$ty" >&2
    echo "$lb -m $g -p 0 -n $gen -d $prompt -t 1,2 -r $reps -o jsonl" >&2
    "$lb" -m "$g" -p 0 -n "$gen" -d "$prompt" -t 1,2 -r "$reps" -o jsonl 2>/dev/null |
      sed "s/^{/{\"who\":\"llama.cpp\",\"gguf_type\":\"$ty\",\"gguf_mb\":$(($(stat -c %s "$g") / 1000000)),/" |
      tee -a "$raw" >&2
  done
fi

# ---- the table ----
python3 - "$raw" "$model" "$prompt" "$gen" "$llama_note" <<'PY'
import json, sys, platform, subprocess, datetime
raw, model, prompt, gen, note = sys.argv[1:6]
rows = [json.loads(l) for l in open(raw) if l.strip().startswith("{")]
ours = {(r["quant"], r["threads"]): r for r in rows if r["who"] == "sutra"}
llama = {(r["gguf_type"], r["n_threads"]): r for r in rows if r["who"] == "llama.cpp"}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
ncpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print(f"Decode tokens/s, {model}, {gen} tokens after {prompt} of context; "
      f"{datetime.date.today()}, {cpu}, {ncpu} cores.\n")
print("| weights | ours | MB read/token | ours 1 thr | ours 2 thr | llama.cpp | llama.cpp 1 thr | llama.cpp 2 thr |")
print("|---|---|---:|---:|---:|---|---:|---:|")
pairs = [("16-bit", "f16", "f16"), ("8-bit", "int8", "q8_0"), ("4-bit", "int4", "q4_0"), ("4-bit", "nf4", "q4_0")]
def f(x): return f"{x:.0f}" if x else "-"
for label, q, ty in pairs:
    o1, o2 = ours.get((q, 1)), ours.get((q, 2))
    l1, l2 = llama.get((ty, 1)), llama.get((ty, 2))
    mb = o1["weight_mb_per_token"] if o1 else 0
    print(f"| {label} | {q} | {mb:.1f} | {f(o1 and o1['tokens_per_s'])} | {f(o2 and o2['tokens_per_s'])} | "
          f"{ty if llama else '(absent)'} | {f(l1 and l1['avg_ts'])} | {f(l2 and l2['avg_ts'])} |")
if note:
    print(f"\n{note}")
bw = [r.get("read_bandwidth_gb_per_s", 0) for r in ours.values() if r["threads"] == 1]
if bw:
    print(f"\nStreaming-read bandwidth measured during the run (1 thread): {max(bw):.1f} GB/s.")
PY
