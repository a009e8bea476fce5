#!/usr/bin/env bash
# tests/soak.sh: a long training run that must not grow in memory (issue 10 part 5). Not in CI.
#
#   tests/soak.sh [--minutes N] [--interval S] [--model DIR] [--data FILE] [--build DIR]
#                 [--threads N] [--ui | --no-ui | --ui-only] [--out DIR]
#
# CLI soak: `sutra train` (LoRA) on the default model (the first data/models/*/ with a
# config.json; without one, a small random Llama made here by a one-step full-training run) for
# N minutes (default 30), checkpointing every 50 steps and evaluating every 100, so the steady
# state includes checkpoint writes, pruning and evaluation. The process's resident memory
# (VmRSS) is sampled every S seconds (default 60) into rss.csv. After a warm-up (the first
# sample or 10% of the run, whichever is later), RSS may rise at most
# max(SOAK_RSS_SLACK_MB (32), 5% of the warm RSS) above the warm value; the run is then
# stopped with SIGTERM, which must save a checkpoint and exit cleanly.
#
# Studio soak (when BUILD/sutra-studio exists, or --ui; --ui-only skips the CLI part): the
# studio runs under Xvfb and a private D-Bus, opens the same model and data and trains through
# its win.start-training action, for the whole soak: its Train page settings are seeded through
# a keyfile GSettings backend in --out (the quick preset with max_steps 100000000, a checkpoint
# every 50 steps, 2 kept, an evaluation every 100, --threads threads). Every S seconds a D-Bus call answered by its main loop (org.gtk.Actions.DescribeAll)
# is timed: the studio stays responsive when every call answers within SOAK_UI_MAX_MS (250 ms);
# its RSS is bounded as above.
#
# Prints a summary and exits non-zero when a bound is broken. Everything lands in --out
# (default build/soak-<date>).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

minutes=30
interval=60
model=""
data=""
build=build
threads=$(nproc)
ui=auto
cli=yes
out=""
while (($#)); do
  case "$1" in
    --minutes) shift; minutes=$1 ;;
    --interval) shift; interval=$1 ;;
    --model) shift; model=$1 ;;
    --data) shift; data=$1 ;;
    --build) shift; build=$1 ;;
    --threads) shift; threads=$1 ;;
    --ui) ui=yes ;;
    --no-ui) ui=no ;;
    --ui-only) ui=yes; cli=no ;;
    --out) shift; out=$1 ;;
    *) echo "usage: tests/soak.sh [--minutes N] [--interval S] [--model DIR] [--data FILE]" \
            "[--build DIR] [--threads N] [--ui|--no-ui|--ui-only] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
sutra=$root/$build/sutra
studio=$root/$build/sutra-studio
[[ -x $sutra ]] || { echo "soak: build first (cmake -B $build && cmake --build $build)" >&2; exit 2; }
out=${out:-$root/build/soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(realpath "$out")
slack_mb=${SOAK_RSS_SLACK_MB:-32}
ui_max_ms=${SOAK_UI_MAX_MS:-250}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-512}
log() { echo "soak: $*" | tee -a "$out/soak.log"; }
fail=0

# ---- the model -------------------------------------------------------------------------
if [[ -z $model ]]; then
  for d in "$root"/data/models/*/; do
    [[ -f $d/config.json ]] && { model=${d%/}; break; }
  done
fi
if [[ -z $model ]]; then
  log "no data/models/* yet: making a small random Llama (hidden 384, 6 layers, vocab 4096)"
  mkdir -p "$out/random-config"
  cat >"$out/random-config/config.json" <<'EOF'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 384,
 "intermediate_size": 1024, "num_hidden_layers": 6, "num_attention_heads": 6,
 "num_key_value_heads": 2, "vocab_size": 4096, "max_position_embeddings": 1024,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
 "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
EOF
  python3 - "$out/init.jsonl" 4096 <<'EOF'
import json, random, sys
r = random.Random(1)
with open(sys.argv[1], "w") as f:
    for _ in range(8):
        f.write(json.dumps({"input_ids": [r.randrange(int(sys.argv[2])) for _ in range(32)]}) + "\n")
EOF
  cat >"$out/random-init.json" <<EOF
{"model": "$out/random-config", "data": "$out/init.jsonl", "output_dir": "$out/random-init",
 "method": "full", "max_steps": 1, "lr": 0, "seq_len": 32, "micro_batch_size": 2,
 "save_every": 0, "init_std": 0.02}
EOF
  "$sutra" train "$out/random-init.json" --quiet >/dev/null 2>"$out/random-init.err" ||
    { log "making the random model failed"; cat "$out/random-init.err"; exit 1; }
  model=$out/random-init/model
fi
log "model: $model"

# ---- the data --------------------------------------------------------------------------
if [[ -z $data && -f $model/tokenizer.json ]]; then
  for f in "$root"/data/datasets/*.jsonl "$root"/data/datasets/*.txt; do
    [[ -f $f ]] && { data=$f; break; }
  done
fi
if [[ -z $data ]]; then
  vocab=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$model/config.json")
  data=$out/rows.jsonl
  python3 - "$data" "$vocab" <<'EOF'
import json, random, sys
r = random.Random(7)
V = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
    for i in range(2000):      # learnable: arithmetic runs with a row-specific start and step
        n, a, d = r.randrange(24, 160), r.randrange(V), r.randrange(1, 7)
        f.write(json.dumps({"input_ids": [(a + d * t) % V for t in range(n)]}) + "\n")
EOF
fi
log "data: $data"

# ---- RSS sampling and the bound ----------------------------------------------------------
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# check_rss CSV LABEL: the warm RSS (after the warm-up) against the maximum after it
check_rss() {
  python3 - "$1" "$2" "$minutes" "$slack_mb" <<'EOF'
import csv, sys
path, label, minutes, slack = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
rows = [(float(r["t_s"]), int(r["rss_kb"])) for r in csv.DictReader(open(path)) if int(r["rss_kb"]) > 0]
if len(rows) < 3:
    print(f"{label}: only {len(rows)} RSS samples; run longer"); sys.exit(1)
warm_t = max(rows[0][0], 0.1 * minutes * 60)
warm = [r for r in rows if r[0] >= warm_t]
if len(warm) < 2:
    warm = rows[1:]
base, peak = warm[0][1] / 1024, max(r[1] for r in warm) / 1024
last = warm[-1][1] / 1024
n = len(warm)
mt = sum(t for t, _ in warm) / n
mr = sum(r for _, r in warm) / n / 1024
var = sum((t - mt) ** 2 for t, _ in warm)
slope = sum((t - mt) * (r / 1024 - mr) for t, r in warm) / var * 3600 if var > 0 else 0
bound = max(slack, 0.05 * base)
ok = peak - base <= bound
print(f"{label}: RSS {rows[0][1]/1024:.1f} MiB at start, {base:.1f} MiB warm, {peak:.1f} MiB peak, "
      f"{last:.1f} MiB last; growth {peak - base:+.1f} MiB (bound {bound:.1f}); trend {slope:+.1f} MiB/h "
      f"over {len(rows)} samples: {'OK' if ok else 'FAIL: memory grows'}")
sys.exit(0 if ok else 1)
EOF
}

if [[ $cli == yes ]]; then
# ---- CLI soak ----------------------------------------------------------------------------
run=$out/run
cat >"$out/train.json" <<EOF
{"model": "$model", "data": "$data", "output_dir": "$run", "method": "lora", "lora_r": 8,
 "lr": 1e-4, "schedule": "constant", "warmup_steps": 10, "max_steps": 100000000,
 "micro_batch_size": 4, "grad_accum": 2, "seq_len": 128, "packing": true,
 "save_every": 50, "keep_checkpoints": 2, "eval_every": 100, "val_split": 0.02,
 "threads": $threads, "seed": 11}
EOF
log "CLI soak: $minutes min, RSS every $interval s"
"$sutra" train "$out/train.json" --quiet >"$out/train.out" 2>"$out/train.err" &
pid=$!
echo "t_s,rss_kb,step" >"$out/rss.csv"
t0=$(date +%s)
end=$((t0 + minutes * 60))
while kill -0 "$pid" 2>/dev/null && (($(date +%s) < end)); do
  step=$(tail -n 1 "$run/metrics.jsonl" 2>/dev/null | grep -o '"step": [0-9]*' | grep -o '[0-9]*$')
  echo "$(($(date +%s) - t0)),$(rss_kb "$pid"),${step:-0}" >>"$out/rss.csv"
  sleep "$interval" & wait $!
done
if ! kill -0 "$pid" 2>/dev/null; then
  wait "$pid"
  log "FAIL: the training run ended early (exit $?):"; tail -3 "$out/train.err"; fail=1
else
  echo "$(($(date +%s) - t0)),$(rss_kb "$pid"),$(tail -n 1 "$run/metrics.jsonl" | grep -o '"step": [0-9]*' | grep -o '[0-9]*$')" >>"$out/rss.csv"
  kill -TERM "$pid"
  wait "$pid"
  rc=$?
  if grep -q "stopped at step" "$out/train.err" && ls "$run"/checkpoints/step-* >/dev/null 2>&1; then
    log "SIGTERM: stopped cleanly with a checkpoint (exit $rc): $(tail -n 1 "$out/train.err")"
  else
    log "FAIL: SIGTERM did not stop the run cleanly (exit $rc)"; tail -3 "$out/train.err"; fail=1
  fi
fi
steps=$(tail -n 1 "$run/metrics.jsonl" 2>/dev/null | grep -o '"step": [0-9]*' | grep -o '[0-9]*$')
log "CLI soak: ${steps:-0} steps, $(ls -d "$run"/checkpoints/step-* 2>/dev/null | wc -l) checkpoints kept"
check_rss "$out/rss.csv" "CLI soak" | tee -a "$out/soak.log"
((${PIPESTATUS[0]} == 0)) || fail=1
fi

# ---- studio soak -------------------------------------------------------------------------
if [[ $ui == auto ]]; then
  if [[ -x $studio ]] && command -v xvfb-run >/dev/null && command -v gdbus >/dev/null; then ui=yes; else ui=no; fi
fi
if [[ $ui == yes ]]; then
  [[ -x $studio ]] || { log "FAIL: --ui but $studio is not built"; exit 1; }
  log "studio soak: $minutes min under Xvfb; main-loop round trip and RSS every $interval s"
  export SOAK_STUDIO=$studio SOAK_MODEL=$model SOAK_DATA=$data SOAK_OUT=$out SOAK_MIN=$minutes \
         SOAK_INTERVAL=$interval SOAK_THREADS=$threads
  dbus-run-session -- xvfb-run -a -s "-screen 0 1280x1024x24 -nolisten tcp" bash -c '
    app=io.github.sutra.Studio
    path=/io/github/sutra/Studio
    mkdir -p "$SOAK_OUT/home"     # the studio keeps its runs under $HOME/sutra-runs: keep them here
    # train for the whole soak: Train page values seeded in a private keyfile settings backend
    mkdir -p "$SOAK_OUT/config/glib-2.0/settings"
    cat >"$SOAK_OUT/config/glib-2.0/settings/keyfile" <<KEYFILE
[io/github/sutra/Studio]
first-run-done=true
threads=$SOAK_THREADS
train-preset='"'"'quick'"'"'
train-values={'"'"'max_steps'"'"': '"'"'100000000'"'"', '"'"'save_every'"'"': '"'"'50'"'"', '"'"'keep_checkpoints'"'"': '"'"'2'"'"', '"'"'eval_every'"'"': '"'"'100'"'"', '"'"'schedule'"'"': '"'"'constant'"'"', '"'"'lr'"'"': '"'"'1e-4'"'"'}
KEYFILE
    HOME="$SOAK_OUT/home" XDG_CONFIG_HOME="$SOAK_OUT/config" GSETTINGS_BACKEND=keyfile GSK_RENDERER=cairo \
      "$SOAK_STUDIO" "$SOAK_MODEL" "$SOAK_DATA" \
      >"$SOAK_OUT/studio.out" 2>"$SOAK_OUT/studio.err" &
    pid=$!
    for i in $(seq 100); do
      gdbus call --session --dest $app --object-path $path/window/1 \
        --method org.gtk.Actions.DescribeAll >/dev/null 2>&1 && break
      sleep 0.2
    done
    gdbus call --session --dest $app --object-path $path/window/1 --method org.gtk.Actions.Activate \
      start-training "[]" "{}" >/dev/null || { echo "soak: cannot start training in the studio"; exit 1; }
    echo "t_s,rss_kb,latency_ms" >"$SOAK_OUT/studio-rss.csv"
    t0=$(date +%s); end=$((t0 + SOAK_MIN * 60))
    while kill -0 $pid 2>/dev/null && (($(date +%s) < end)); do
      a=$(date +%s%N)
      gdbus call --session --dest $app --object-path $path/window/1 \
        --method org.gtk.Actions.DescribeAll >/dev/null 2>&1 || echo "soak: no D-Bus answer" >&2
      b=$(date +%s%N)
      rss=$(awk "/^VmRSS:/ {print \$2}" /proc/$pid/status)
      echo "$(($(date +%s) - t0)),$rss,$(((b - a) / 1000000))" >>"$SOAK_OUT/studio-rss.csv"
      sleep "$SOAK_INTERVAL"
    done
    kill -0 $pid 2>/dev/null || { echo "soak: the studio exited during the soak"; exit 1; }
    gdbus call --session --dest $app --object-path $path/window/1 --method org.gtk.Actions.Activate \
      stop-training "[]" "{}" >/dev/null
    sleep 5
    gdbus call --session --dest $app --object-path $path --method org.gtk.Actions.Activate \
      quit "[]" "{}" >/dev/null
    wait $pid
  ' || { log "FAIL: studio soak"; fail=1; }
  srun=$(ls -d "$out"/home/sutra-runs/*/ 2>/dev/null | head -1)
  if [[ -n $srun ]]; then
    log "studio soak: $(wc -l <"$srun/metrics.jsonl") steps in $srun, $(ls -d "$srun"/checkpoints/step-* 2>/dev/null | wc -l) checkpoints kept"
  else
    log "FAIL: the studio wrote no run folder (did training start?)"; fail=1
  fi
  if [[ -f $out/studio-rss.csv ]]; then
    check_rss "$out/studio-rss.csv" "studio soak" | tee -a "$out/soak.log"
    ((${PIPESTATUS[0]} == 0)) || fail=1
    worst=$(tail -n +2 "$out/studio-rss.csv" | cut -d, -f3 | sort -n | tail -1)
    if ((${worst:-999999} > ui_max_ms)); then
      log "FAIL: the studio answered in up to $worst ms (bound $ui_max_ms ms)"; fail=1
    else
      log "studio stayed responsive: slowest main-loop round trip $worst ms (bound $ui_max_ms ms)"
    fi
  fi
else
  log "studio soak skipped (no $studio, or no xvfb-run/gdbus)"
fi
((fail == 0)) && log "PASS ($out)" || log "FAIL ($out)"
exit $fail
