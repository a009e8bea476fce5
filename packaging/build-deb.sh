#!/usr/bin/env bash
# Builds the Debian package and checks it without installing it (docs/packaging.md).
#   packaging/build-deb.sh [BUILD_DIR]          (default: build-deb)
# 1. configures a Release build with prefix /usr (the binaries look for their data under
#    the configure-time prefix) and the studio when GTK 4 and libadwaita are present;
# 2. builds and runs `cpack -G DEB` (dpkg-shlibdeps computes Depends);
# 3. shows the control fields and file list, runs `dpkg --dry-run -i` and, when installed,
#    lintian (its tags are shown, not fatal: see docs/packaging.md for the known ones).
# Prints the path of the .deb on the last line. Installing and testing it is
# packaging/test-deb.sh (needs root; changes the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-deb}
jobs=${JOBS:-2}

ui=OFF
if pkg-config --exists 'gtk4 >= 4.8' 'libadwaita-1 >= 1.2' && [[ -f cmake/studio.cmake ]]; then
  ui=ON
fi
echo "== configure ($build, prefix /usr, studio $ui)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
      -DSUTRA_BUILD_UI=$ui -DSUTRA_BUILD_TESTS=OFF >/dev/null
echo "== build"
cmake --build "$build" -j "$jobs" >/dev/null
echo "== cpack -G DEB"
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls -t "$build"/sutra-studio_*.deb | head -n 1)
deb=$(realpath "$deb")

echo "== dpkg-deb -I $deb"
dpkg-deb -I "$deb"
echo "== dpkg-deb -c (files)"
dpkg-deb -c "$deb" | awk '{print $1, $3, $6}' | column -t
echo "== dpkg --dry-run -i"
if [[ $(id -u) -eq 0 ]]; then
  dpkg --dry-run -i "$deb"
else
  echo "(not root: dpkg --dry-run needs root on Debian; skipped)"
fi
if command -v lintian >/dev/null; then
  echo "== lintian"
  lintian --tag-display-limit 0 "$deb" || true
fi
echo "$deb"
