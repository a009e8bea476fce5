#!/usr/bin/env bash
# Builds everything and runs every test, from a fresh Debian 12 machine:
#   1. installs missing Debian packages (packaging/install-deps.sh),
#   2. Release build with the studio; all tests (GUI tests under Xvfb + a private D-Bus),
#   3. ASan+UBSan build; the engine tests again (slow ones excluded; CLI children sanitized too),
#   4. TSan build; the threaded tests (label `thread`: pool, trainer controls, trainer, downloader,
#      tokenizer threads, generation) and tsan-canary (a deliberate race TSan must report).
# Any failure or sanitizer report fails the run (docs/reliability.md). Options:
#   --quick     only step 2 (what a developer runs between commits)
#   -j N        parallel build jobs (default: number of cores)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=0
jobs=$(nproc)
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    -j) shift; jobs=$1 ;;
    *) echo "usage: tests/run-all.sh [--quick] [-j N]" >&2; exit 2 ;;
  esac
  shift
done

packaging/install-deps.sh

# Measured OpenBLAS settings for this machine kind (see docs/architecture.md).
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
export OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-512}
# Conformance data must be present where it is expected (CI), never silently skipped.
if [[ -d "$root/../shared/testdata" ]]; then
  export SUTRA_REQUIRE_SHARED=1
else
  echo "run-all: ../shared/testdata is absent: conformance tests will be skipped"
fi

gui_run() {
  dbus-run-session -- xvfb-run -a -s "-screen 0 1280x1024x24 -nolisten tcp" "$@"
}

t0=$(date +%s)
ts=$t0
step() {
  local now
  now=$(date +%s)
  ((now > t0)) && echo "(previous step: $((now - ts)) s)"
  ts=$now
  echo; echo "=== $* ==="
}

step "Release build (engine, CLI, studio, tests)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSUTRA_BUILD_UI=ON >/dev/null
cmake --build build -j "$jobs"
step "All tests"
(cd build && gui_run ctest --output-on-failure -j 2)

if ((quick)); then
  echo "run-all: quick run passed in $(( $(date +%s) - t0 )) s"
  exit 0
fi

step "ASan + UBSan build; engine tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSUTRA_BUILD_UI=OFF \
      -DSUTRA_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   ctest --output-on-failure -j 2 -L engine -LE slow)

step "TSan build; threaded tests"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSUTRA_BUILD_UI=OFF \
      -DSUTRA_SANITIZE=thread >/dev/null
cmake --build build-tsan -j "$jobs"
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
   ctest --output-on-failure -j 2 -L thread -LE slow)

echo
echo "run-all: every test passed in $(( $(date +%s) - t0 )) s"
