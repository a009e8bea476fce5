#!/usr/bin/env bash
# Installs every Debian 12 package Sutra Studio needs to build, test and run.
# Idempotent: asks apt-get only for what is missing. Run as root or with sudo available.
#   packaging/install-deps.sh            build + test + run
#   packaging/install-deps.sh --bench    also what bench/ needs (python3-torch for the baseline)
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  libgtk-4-dev libadwaita-1-dev
  libjson-c-dev libcurl4-openssl-dev libopenblas-dev libpcre2-dev libutf8proc-dev
  xvfb xauth dbus fonts-dejavu-core desktop-file-utils appstream
  clang libclang-rt-14-dev
  python3 bible-kjv bible-kjv-text
  imagemagick x11-utils
  file man-db groff-base libxml2-utils librsvg2-bin python3-yaml
)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(python3-torch python3-numpy hyperfine)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
