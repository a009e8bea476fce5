#!/usr/bin/env bash
# test-install.sh: install smoke test (docs/packaging.md).
#   tests/test-install.sh SRC_DIR BUILD_DIR PREFIX APP_ID HAVE_STUDIO(ON|OFF)
# Runs `cmake --install BUILD_DIR` into a temporary DESTDIR and compares the installed file
# list with the expected one: the binaries, the man pages, the licence files, every file of
# data/models, data/datasets and data/examples (byte for byte) and, with the studio, the desktop file,
# metainfo, icons and GSettings schema. A missing file fails; so does an unexpected one
# (e.g. a static library or header that should not ship). Then the installed tree is
# validated (desktop-file-validate, appstreamcli validate-tree) and the installed `sutra`
# runs --version and `info` on each installed model.
set -uo pipefail

src=${1:?usage}; build=${2:?usage}; prefix=${3:?usage}; app=${4:?usage}; studio=${5:?usage}
export LC_ALL=C.UTF-8
failures=0
passed=0
ok()  { echo "ok:   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
if DESTDIR=$dest cmake --install "$build" >"$dest.log" 2>&1; then
  ok "cmake --install $build (DESTDIR, prefix $prefix)"
else
  cat "$dest.log"
  bad "cmake --install failed"
fi
rm -f "$dest.log"
root=$dest$prefix

# ---- expected files -------------------------------------------------------------------------
mandir=share/man/man1
expected=(bin/sutra "$mandir/sutra.1.gz" share/doc/sutra-studio/copyright share/doc/sutra-studio/LICENSE
          share/doc/sutra-studio/changelog.Debian.gz)
if [[ $studio == ON ]]; then
  expected+=(bin/sutra-studio "$mandir/sutra-studio.1.gz"
             "share/applications/$app.desktop" "share/metainfo/$app.metainfo.xml"
             "share/icons/hicolor/scalable/apps/$app.svg"
             "share/icons/hicolor/symbolic/apps/$app-symbolic.svg"
             "share/glib-2.0/schemas/$app.gschema.xml")
fi
data_files=()
for sub in models datasets examples; do
  [[ -d $src/data/$sub ]] || continue
  while IFS= read -r f; do
    data_files+=("$sub/$f")
  done < <(cd "$src/data/$sub" && find . -mindepth 1 \( -name '.*' -prune \) -o \( -type f -print \) | sed 's|^\./||' | sort)
done
for f in "${data_files[@]}"; do
  expected+=("share/sutra-studio/$f")
done
[[ -f $src/data/README.md ]] && expected+=(share/sutra-studio/README.md)

# gzip may be absent: then the man pages are installed uncompressed.
if ! have gzip; then
  expected=("${expected[@]/%.1.gz/.1}")
  expected=("${expected[@]/*changelog.Debian.gz/}")
fi

printf '%s\n' "${expected[@]}" | grep -v '^$' | sort >"$dest/.expected"
(cd "$root" 2>/dev/null && find . \( -type f -o -type l \) | sed 's|^\./||' | sort) >"$dest/.actual"
missing=$(comm -23 "$dest/.expected" "$dest/.actual")
extra=$(comm -13 "$dest/.expected" "$dest/.actual")
if [[ -z $missing ]]; then ok "all ${#expected[@]} expected files installed"; else bad "not installed: $(echo $missing)"; fi
if [[ -z $extra ]]; then ok "no unexpected files"; else bad "unexpected files installed: $(echo $extra)"; fi
# Anything outside the prefix?
outside=$(cd "$dest" && find . -type f ! -path "./${prefix#/}/*" ! -name '.expected' ! -name '.actual' | head)
[[ -z $outside ]] && ok "nothing installed outside $prefix" || bad "installed outside $prefix: $outside"

nmodels=$(printf '%s\n' "${data_files[@]}" | grep -c '^models/' || true)
ndatasets=$(printf '%s\n' "${data_files[@]}" | grep -c '^datasets/' || true)
echo "      data: $nmodels model files, $ndatasets dataset files in the source tree"
[[ -d $src/data/models ]] || echo "note: data/models/ is not in this tree: the install has no built-in model"

# ---- contents -------------------------------------------------------------------------------
differ=""
for f in "${data_files[@]}"; do
  [[ -f $root/share/sutra-studio/$f ]] && ! cmp -s "$src/data/$f" "$root/share/sutra-studio/$f" && differ+=" $f"
done
[[ -z $differ ]] && ok "installed data files equal data/" || bad "installed data differs:$differ"
for exe in sutra sutra-studio; do
  [[ -f $root/bin/$exe ]] || continue
  [[ -x $root/bin/$exe ]] && ok "bin/$exe is executable" || bad "bin/$exe is not executable"
done
if have gzip; then
  for page in sutra sutra-studio; do
    f=$root/$mandir/$page.1.gz
    [[ -f $f ]] || continue
    gzip -dc "$f" | cmp -s - "$src/packaging/$page.1" && ok "$page.1.gz is packaging/$page.1" ||
      bad "$page.1.gz differs from packaging/$page.1"
  done
fi

# ---- the installed tree validates -----------------------------------------------------------
if [[ $studio == ON ]]; then
  if have desktop-file-validate; then
    desktop-file-validate "$root/share/applications/$app.desktop" && ok "installed desktop file validates" ||
      bad "installed desktop file"
  fi
  if have appstreamcli; then
    out=$(appstreamcli validate-tree --no-net "$root" 2>&1)
    rc=$?
    echo "$out" | sed 's/^/      /'
    ((rc == 0)) && ok "appstreamcli validate-tree --no-net" || bad "appstreamcli validate-tree (exit $rc)"
  fi
fi

# ---- the installed CLI runs -----------------------------------------------------------------
if [[ -x $root/bin/sutra ]]; then
  "$root/bin/sutra" --version >/dev/null && ok "installed sutra --version" || bad "installed sutra --version"
  for cfg in "$root"/share/sutra-studio/models/*/config.json; do
    [[ -f $cfg ]] || continue
    m=$(dirname "$cfg")
    if out=$("$root/bin/sutra" info "$m" 2>&1); then
      ok "installed sutra info ${m#"$root"/}: $(grep -m1 '^parameters' <<<"$out" | tr -s ' ')"
    else
      echo "$out"
      bad "installed sutra info ${m#"$root"/}"
    fi
  done
fi

echo
echo "test-install: $passed passed, $failures failed"
((failures == 0))
