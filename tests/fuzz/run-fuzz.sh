#!/usr/bin/env bash
# Builds every libFuzzer target with clang + ASan/UBSan and runs each for a bounded time.
#   tests/fuzz/run-fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Seeds: tests/fuzz/corpus/<target>/ (committed). New interesting inputs go to
# build-fuzz/corpus/<target>/ (not committed). Crashes are written to build-fuzz/crashes/;
# once fixed, copy the input into tests/fuzz/regressions/<target>/ so the normal test
# suite replays it. Prints one line per target: executions, corpus size, crashes.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSUTRA_FUZZ=ON \
  -DSUTRA_SANITIZE=address,undefined -DSUTRA_BUILD_UI=OFF -DSUTRA_BUILD_TESTS=OFF >/dev/null || exit 1
cmake --build build-fuzz -j "$(nproc)" >/dev/null || exit 1
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in tests/fuzz/fuzz-*.c; do targets+=("$(basename "$f" .c)"); done
fi
mkdir -p build-fuzz/crashes
status=0
printf '%-28s %12s %8s %8s\n' target executions corpus crashes
for t in "${targets[@]}"; do
  name=${t#fuzz-}
  mkdir -p "build-fuzz/corpus/$name"
  log="build-fuzz/$t.log"
  dict=""
  [[ -f "tests/fuzz/$name.dict" ]] && dict="-dict=tests/fuzz/$name.dict"
  seeds=()
  [[ -d "tests/fuzz/corpus/$name" ]] && seeds+=("tests/fuzz/corpus/$name")
  [[ -d "tests/fuzz/regressions/$name" ]] && seeds+=("tests/fuzz/regressions/$name")
  ASAN_OPTIONS=detect_leaks=1 "build-fuzz/tests/fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 \
    -max_len=65536 -artifact_prefix="build-fuzz/crashes/$name-" $dict \
    "build-fuzz/corpus/$name" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  [[ -z "$execs" ]] && execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  corpus=$(ls "build-fuzz/corpus/$name" | wc -l)
  crashes=$(ls build-fuzz/crashes/ 2>/dev/null | grep -c "^$name-" || true)
  printf '%-28s %12s %8s %8s\n' "$t" "${execs:-?}" "$corpus" "$crashes"
  ((rc != 0)) && status=1
done
exit $status
