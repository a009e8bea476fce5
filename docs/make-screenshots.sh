#!/usr/bin/env bash
# Renders a screenshot of every page of the studio into docs/screenshots/ (used by README.md).
#   docs/make-screenshots.sh [BUILD_DIR]      (default: build)
# Runs sutra-studio under Xvfb with a private D-Bus and in-memory settings, one process per page
# (`sutra-studio --page NAME`), and grabs the window with xwininfo + ImageMagick's `import`.
# The studio opens on the embedded default model and sample dataset when data/ has them; set
# STUDIO_MODEL / STUDIO_DATASET to use others, and SCREENSHOT_RUN=DIR to show a past run's chart
# on the Train page (`--run DIR`). Needs xvfb, xauth, dbus, imagemagick, x11-utils
# (packaging/install-deps.sh).
set -euo pipefail
if [[ -z ${SCREENSHOT_INNER:-} ]]; then
  SCREENSHOT_INNER=1 exec dbus-run-session -- \
    xvfb-run -a -s "-screen 0 1280x900x24 -nolisten tcp" bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build}
out=$root/docs/screenshots
studio=$root/$build/sutra-studio
[[ -x $studio ]] || { echo "make-screenshots: $studio not built (cmake -DSUTRA_BUILD_UI=ON)" >&2; exit 1; }
mkdir -p "$out"

export GSK_RENDERER=cairo GDK_BACKEND=x11 GTK_A11Y=none GSETTINGS_BACKEND=memory
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-512}
export SUTRA_SOURCE_DIR=$root
# A private HOME keeps the user's runs and Hugging Face cache out of the pictures.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/config XDG_CACHE_HOME=$tmp/cache HF_HOME=${SCREENSHOT_HF_HOME:-$tmp/hf}
mkdir -p "$HOME"

args=()
[[ -n ${SCREENSHOT_RUN:-} ]] && args+=(--run "$SCREENSHOT_RUN")
[[ -n ${STUDIO_MODEL:-} ]] && args+=("$STUDIO_MODEL")
[[ -n ${STUDIO_DATASET:-} ]] && args+=("$STUDIO_DATASET")

for page in ${SCREENSHOT_PAGES:-model data train chat quantize export}; do
  file=$out/$page.png
  "$studio" --page "$page" "${args[@]+"${args[@]}"}" >"$tmp/$page.log" 2>&1 &
  pid=$!
  id=""
  for _ in $(seq 1 150); do
    id=$(xwininfo -root -tree 2>/dev/null | awk '/"Sutra Studio"/{print $1; exit}') || true
    [[ -n $id ]] && break
    sleep 0.1
  done
  if [[ -z $id ]]; then
    echo "make-screenshots: no window for $page" >&2
    cat "$tmp/$page.log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
  fi
  sleep "${SCREENSHOT_SETTLE:-3}"    # async work (model load, cache scan, dataset) settles
  import -window "$id" "$file"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -E "CRITICAL|WARNING" "$tmp/$page.log" >&2; then
    echo "make-screenshots: the studio logged problems on the $page page (above)" >&2
    exit 1
  fi
  echo "make-screenshots: $file"
done
