#!/usr/bin/env bash
# Quantized matrix-vector and decode speed, every format, in one go: the figures the
# quantization issue asks for (docs/quantization.md section 7).
#   bench/quant-speed.sh [BUILD_DIR] [RUNS]
#     BUILD_DIR  holds the sutra binary (default: build)
#     RUNS       repetitions of the 2-thread measurements (default: 3); the formats alternate
#                within each repetition, so all of them see the same machine
# For each run and format: `sutra bench matmul --quant Q --threads 2` (SmolLM2-135M projections,
# all 30 layers streamed in decode order, read bandwidth sampled in alternating rounds; the
# fraction is the median streamed GB/s over the median bandwidth), then once at 1 thread, then
# `sutra bench qdecode --quant Q --threads 2` (f32 vs packed decode in turns in one process).
# Prints two markdown tables (the raw JSON lines go to stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
runs=${2:-3}
sutra="$build/sutra"
[ -x "$sutra" ] || { echo "quant-speed: $sutra not found (build first)" >&2; exit 1; }
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

for ((i = 1; i <= runs; i++)); do
  for q in int4 nf4 int8; do
    echo "sutra bench matmul --quant $q --threads 2 (run $i)" >&2
    "$sutra" bench matmul --quant "$q" --threads 2 | tail -n 1 | tee -a "$raw" >&2
  done
done
for q in int4 nf4 int8; do
  echo "sutra bench matmul --quant $q --threads 1" >&2
  "$sutra" bench matmul --quant "$q" --threads 1 | tail -n 1 | tee -a "$raw" >&2
done
for q in int4 nf4 int8; do
  echo "sutra bench qdecode --quant $q --threads 2" >&2
  "$sutra" bench qdecode --quant "$q" --threads 2 | tail -n 1 | tee -a "$raw" >&2
done

python3 - "$raw" <<'PY'
import json, sys, datetime, platform, subprocess
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
ncpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print(f"Quantized kernels, SmolLM2-135M shapes; {datetime.date.today()}, {cpu}, {ncpu} cores.\n")
print("| format | threads | streamed GB/s (median of rounds) | read bandwidth (median) | fraction | kernel |")
print("|---|---:|---:|---:|---:|---|")
for q in ("int4", "nf4", "int8"):
    for t in (2, 1):
        m = [r for r in rows if r["bench"] == "matmul" and r["quant"] == q and r["threads"] == t]
        if not m:
            continue
        j = lambda key, fmt: " / ".join(fmt.format(r[key]) for r in m)
        frac = " / ".join(f"{100 * r['stream_fraction_of_bandwidth']:.0f}%" for r in m)
        print(f"| {q} | {t} | {j('stream_gb_per_s', '{:.1f}')} | {j('read_bandwidth_gb_per_s', '{:.1f}')} | "
              f"{frac} | {m[0]['kernel']} |")
print("\nDecode tokens/s, 2 threads (f32 and packed copies of one random model, in turns):\n")
print("| format | f32 | linears packed | speed-up | + tied head packed | speed-up |")
print("|---|---:|---:|---:|---:|---:|")
for r in rows:
    if r["bench"] != "qdecode":
        continue
    print(f"| {r['quant']} | {r['f32_tokens_per_s']:.1f} | {r['quant_tokens_per_s']:.1f} | {r['speedup']:.2f}x | "
          f"{r['quant_lm_head_tokens_per_s']:.1f} | {r['speedup_lm_head_too']:.2f}x |")
PY
