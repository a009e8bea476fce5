#!/usr/bin/env bash
# Runs `sutra bench train` and the plain-PyTorch baseline side by side, on the same machine in
# one go, and prints one JSON object per run plus the ratios the training issue asks for.
#   bench/train-side-by-side.sh [BUILD_DIR] [STEPS]
# Needs Debian's python3-torch (packaging/install-deps.sh --bench).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${2:-5}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-512}
out=$(mktemp)
run() { echo "$*" >&2; "$@" | tee -a "$out"; }
py=/usr/bin/python3
run $py bench/torch_lora_baseline.py --threads 2 --steps "$steps"
MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=1073741824 \
  run $py bench/torch_lora_baseline.py --threads 2 --steps "$steps"
run $py bench/torch_lora_baseline.py --threads 2 --steps "$steps" --dtype bf16
for threads in 1 2; do
  for method in lora qlora full; do
    run "$build/sutra" bench train --method "$method" --threads "$threads" --steps "$steps"
  done
done
$py - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
torch_default = next(r for r in rows if r.get("bench") == "torch_lora_baseline" and r["dtype"] == "fp32" and r["malloc"] == "default")
torch_tuned = next(r for r in rows if r.get("bench") == "torch_lora_baseline" and r["dtype"] == "fp32" and r["malloc"] != "default")
torch_bf16 = next(r for r in rows if r.get("bench") == "torch_lora_baseline" and r["dtype"] == "bf16")
ours = {(r["method"], r["threads"]): r for r in rows if r.get("bench") == "train"}
lora2, qlora2 = ours[("lora", 2)], ours[("qlora", 2)]
print(json.dumps({
    "lora_vs_torch_fp32_default": lora2["tokens_per_s"] / torch_default["tokens_per_s"],
    "lora_vs_torch_fp32_tuned": lora2["tokens_per_s"] / torch_tuned["tokens_per_s"],
    "lora_vs_torch_bf16": lora2["tokens_per_s"] / torch_bf16["tokens_per_s"],
    "lora_sgemm_fraction_2t": lora2["sgemm_fraction"],
    "qlora_speed_vs_lora": qlora2["tokens_per_s"] / lora2["tokens_per_s"],
    "qlora_weight_mem_vs_lora": qlora2["weight_mb"] / lora2["weight_mb"],
}, indent=1))
PY
rm -f "$out"
