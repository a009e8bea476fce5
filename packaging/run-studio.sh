#!/usr/bin/env bash
# Builds Sutra Studio and opens it on the embedded default model and a sample dataset.
#   packaging/run-studio.sh [MODEL] [DATASET]
# On a fresh Debian 12 machine it first installs the Debian packages it needs
# (packaging/install-deps.sh, idempotent). Builds into ./build (Release).
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-512}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSUTRA_BUILD_UI=ON >/dev/null
cmake --build build -j "$(nproc)"
model=${1:-data/models/sutra-kjv-mini}
dataset=${2:-data/datasets/pirate-chat.jsonl}
if [[ ! -x build/sutra-studio ]]; then
  echo "run-studio: the studio was not built; showing the model with the CLI instead" >&2
  exec build/sutra info "$model"
fi
if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
  echo "run-studio: no display (DISPLAY / WAYLAND_DISPLAY unset). Start it from a desktop session," >&2
  echo "or under Xvfb: xvfb-run -a build/sutra-studio $model $dataset" >&2
  exit 1
fi
exec build/sutra-studio "$model" "$dataset"
