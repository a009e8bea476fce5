#!/usr/bin/env bash
# test-packaging.sh: checks the packaging files on every ctest run (docs/packaging.md).
#   tests/test-packaging.sh SRC_DIR SUTRA_BIN [APP_ID]
# - the desktop file passes desktop-file-validate (no errors or warnings);
# - the AppStream metainfo passes `appstreamcli validate --no-net`, and --pedantic reports
#   nothing but the known, accepted issues; its id, launchable, binaries and release version
#   agree with the build;
# - the SVG icons are well-formed and render; the symbolic one uses fills only;
# - both man pages format without a groff warning (groff -ww and man -l);
# - sutra.1 documents every command `sutra --help` lists, every option each command's
#   --help shows, every training setting `sutra train` lists, and every command of
#   DESIGN.md section 6; sutra-studio.1 documents every option of the studio;
# - the GSettings schema compiles (--strict); the Flatpak manifest parses and is consistent
#   (app id, command, finish-args, modules, https URLs with sha256);
# - the Debian copyright file is machine-readable (DEP-5 header).
# A check whose tool is absent is reported as skipped; everything else must pass.
set -uo pipefail

src=${1:?usage: test-packaging.sh SRC_DIR SUTRA_BIN [APP_ID]}
sutra=${2:?usage: test-packaging.sh SRC_DIR SUTRA_BIN [APP_ID]}
app=${3:-io.github.sutra.Studio}
pkg=$src/packaging
export LC_ALL=C.UTF-8

failures=0
passed=0
skipped=0
ok()   { echo "ok:   $*"; passed=$((passed + 1)); }
bad()  { echo "FAIL: $*"; failures=$((failures + 1)); }
skip() { echo "skip: $*"; skipped=$((skipped + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

desktop=$pkg/$app.desktop
metainfo=$pkg/$app.metainfo.xml
icon=$pkg/icons/hicolor/scalable/apps/$app.svg
symbolic=$pkg/icons/hicolor/symbolic/apps/$app-symbolic.svg
manifest=$pkg/$app.yml
version=$(sed -n 's/^project(sutra-studio VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")

for f in "$desktop" "$metainfo" "$icon" "$symbolic" "$pkg/sutra.1" "$pkg/sutra-studio.1" \
         "$manifest" "$pkg/copyright" "$pkg/LICENSE"; do
  if [[ -f $f ]]; then ok "present: ${f#"$src"/}"; else bad "missing: ${f#"$src"/}"; fi
done

# ---- desktop file ---------------------------------------------------------------------------
if have desktop-file-validate; then
  out=$(desktop-file-validate "$desktop" 2>&1)
  rc=$?
  [[ -n $out ]] && echo "$out" | sed 's/^/      /'
  if ((rc != 0)) || grep -qiE '(error|warning):' <<<"$out"; then
    bad "desktop-file-validate $app.desktop"
  else
    ok "desktop-file-validate $app.desktop"
  fi
else
  skip "desktop-file-validate (desktop-file-utils not installed)"
fi
grep -qx "Icon=$app" "$desktop" && ok "desktop Icon=$app" || bad "desktop file: Icon is not $app"
grep -qE '^Exec=sutra-studio( |$)' "$desktop" && ok "desktop Exec=sutra-studio" ||
  bad "desktop file: Exec does not run sutra-studio"

# ---- AppStream metainfo ---------------------------------------------------------------------
if have appstreamcli; then
  out=$(appstreamcli validate --no-net --explain "$metainfo" 2>&1)
  rc=$?
  echo "$out" | sed 's/^/      /'
  if ((rc == 0)); then ok "appstreamcli validate --no-net"; else bad "appstreamcli validate --no-net (exit $rc)"; fi
  # Pedantic: only the upper-case letter in the reverse-DNS id (the application id the studio
  # registers with, io.github.sutra.Studio, is fixed) is accepted.
  out=$(appstreamcli validate --no-net --pedantic "$metainfo" 2>&1)
  rc=$?
  others=$(grep -E '^[EWIP]: ' <<<"$out" | awk '{print $3}' | grep -vx 'cid-contains-uppercase-letter' || true)
  if ((rc == 0)) && [[ -z $others ]]; then
    ok "appstreamcli validate --no-net --pedantic (accepted: cid-contains-uppercase-letter)"
  else
    echo "$out" | sed 's/^/      /'
    bad "appstreamcli --pedantic reports: ${others:-exit $rc}"
  fi
else
  skip "appstreamcli (appstream not installed)"
fi
grep -q "<id>$app</id>" "$metainfo" && ok "metainfo id $app" || bad "metainfo <id> is not $app"
grep -q "<launchable type=\"desktop-id\">$app.desktop</launchable>" "$metainfo" &&
  ok "metainfo launchable $app.desktop" || bad "metainfo launchable is not $app.desktop"
for b in sutra-studio sutra; do
  grep -q "<binary>$b</binary>" "$metainfo" && ok "metainfo provides binary $b" ||
    bad "metainfo does not provide binary $b"
done
if grep -q "<release version=\"$version\"" "$metainfo"; then
  ok "metainfo has a release for version $version"
else
  bad "metainfo has no <release version=\"$version\"> (CMakeLists.txt project version)"
fi
# Screenshots name files of docs/screenshots/ (published at the https URL of the release).
if [[ -d $src/docs/screenshots ]]; then
  for shot in $(grep -oE 'docs/screenshots/[A-Za-z0-9_-]+\.png' "$metainfo" | sort -u); do
    [[ -f $src/$shot ]] && ok "screenshot $shot exists" || bad "metainfo names $shot, which is not in the tree"
  done
else
  skip "screenshot files (docs/screenshots/ not in this tree yet)"
fi

# ---- icons ----------------------------------------------------------------------------------
for svg in "$icon" "$symbolic"; do
  [[ -f $svg ]] || continue
  name=${svg#"$pkg"/icons/}
  if have xmllint; then
    xmllint --noout "$svg" && ok "xmllint $name" || bad "xmllint $name"
  else
    skip "xmllint $name (libxml2-utils not installed)"
  fi
  if have rsvg-convert; then
    rsvg-convert -w 64 -h 64 "$svg" -o "$tmp/icon.png" && [[ -s $tmp/icon.png ]] &&
      ok "rsvg-convert renders $name" || bad "rsvg-convert cannot render $name"
  else
    skip "rendering $name (librsvg2-bin not installed)"
  fi
done
if [[ -f $symbolic ]]; then
  grep -q 'stroke' "$symbolic" && bad "symbolic icon uses strokes (GTK recolours fills only)" ||
    ok "symbolic icon uses fills only"
fi

# ---- man pages ------------------------------------------------------------------------------
for page in "$pkg/sutra.1" "$pkg/sutra-studio.1"; do
  [[ -f $page ]] || continue
  name=$(basename "$page")
  if have groff; then
    err=$(groff -man -ww -z "$page" 2>&1)
    if [[ $? -eq 0 && -z $err ]]; then ok "groff -man -ww $name"; else echo "$err"; bad "groff -man -ww $name"; fi
  else
    skip "groff $name (groff-base not installed)"
  fi
  if have man; then
    err=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
    if [[ $? -eq 0 && -z $err ]]; then ok "man -l $name"; else echo "$err"; bad "man -l $name"; fi
  else
    skip "man -l $name (man-db not installed)"
  fi
  grep -q "^\.TH .*\"Sutra Studio $version\"" "$page" && ok "$name names version $version" ||
    bad "$name: .TH does not name Sutra Studio $version"
done

# The text of one command's section of sutra.1 (from its .SS line to the next .SS or .SH).
man_section() {
  awk -v h=".SS \"sutra $1\"" '$0 == h { f = 1; next } f && /^\.S[SH]/ { exit } f' "$pkg/sutra.1"
}

# ---- sutra.1 in sync with the built CLI -----------------------------------------------------
if [[ -x $sutra ]]; then
  v=$("$sutra" --version 2>&1)
  [[ $v == "sutra $version" ]] && ok "sutra --version is $version" || bad "sutra --version says '$v', expected 'sutra $version'"
  cmds=$("$sutra" --help | awk '/^commands:/ { f = 1; next } f && /^$/ { exit } f { print $1 }')
  [[ -n $cmds ]] && ok "sutra --help lists $(wc -w <<<"$cmds") commands" || bad "sutra --help lists no commands"
  for cmd in $cmds; do
    sec=$(man_section "$cmd")
    if [[ -z $sec ]]; then
      bad "sutra.1 has no section .SS \"sutra $cmd\""
      continue
    fi
    usage=$("$sutra" "$cmd" --help 2>&1 | head -n 1)
    missing=""
    for opt in $(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$usage" | sort -u); do
      roff=${opt//-/\\-}
      grep -qF -- "$roff" <<<"$sec" || missing+=" $opt"
    done
    if [[ -z $missing ]]; then ok "sutra.1 documents '$cmd' and its options"; else bad "sutra.1 '$cmd' lacks:$missing"; fi
  done
  keys=$("$sutra" train 2>&1 | awk '/^settings/ { f = 1; next } f && /^  [a-z_]+ / { print $1 }')
  missing=""
  for k in $keys; do
    grep -qw -- "$k" "$pkg/sutra.1" || missing+=" $k"
  done
  if [[ -z $keys ]]; then
    bad "sutra train lists no settings"
  elif [[ -z $missing ]]; then
    ok "sutra.1 names all $(wc -w <<<"$keys") training settings"
  else
    bad "sutra.1 lacks training settings:$missing"
  fi
  # Documented commands this build does not have (DESIGN.md commands whose engine part has not
  # landed yet): reported, not failed; the man page's NOTES section says so to users.
  absent=""
  for c in $(sed -n 's/^\.SS "sutra \([a-z-]*\)"$/\1/p' "$pkg/sutra.1"); do
    grep -qx -- "$c" <<<"$cmds" || absent+=" $c"
  done
  [[ -n $absent ]] && echo "note: documented in sutra.1 but not in this build:$absent"
else
  skip "CLI/man-page sync ($sutra not built)"
fi
# DESIGN.md section 6: the command-line contract.
missing=""
for c in info logits tokenize detokenize generate chat train resume eval export quantize download bench; do
  grep -qx ".SS \"sutra $c\"" "$pkg/sutra.1" || missing+=" $c"
done
[[ -z $missing ]] && ok "sutra.1 documents every DESIGN.md section 6 command" || bad "sutra.1 lacks DESIGN.md commands:$missing"

# ---- sutra-studio.1 in sync with the studio's options ---------------------------------------
studio_src=$src/app/studio-application.c
if [[ -f $studio_src ]]; then
  missing=""
  for o in $(grep -oE '\{ "[a-z][a-z-]*", 0, 0, G_OPTION_ARG' "$studio_src" | sed 's/^{ "\([a-z-]*\)".*/\1/'); do
    grep -qF -- "\\-\\-${o//-/\\-}" "$pkg/sutra-studio.1" || missing+=" --$o"
  done
  [[ -z $missing ]] && ok "sutra-studio.1 documents every studio option" || bad "sutra-studio.1 lacks:$missing"
else
  skip "studio options (app/studio-application.c not in this tree)"
fi

# ---- GSettings schema -----------------------------------------------------------------------
schema=$src/resources/$app.gschema.xml
if [[ -f $schema ]]; then
  if have glib-compile-schemas; then
    mkdir -p "$tmp/schemas" && cp "$schema" "$tmp/schemas/"
    glib-compile-schemas --strict --dry-run "$tmp/schemas" && ok "glib-compile-schemas --strict $app.gschema.xml" ||
      bad "glib-compile-schemas --strict $app.gschema.xml"
  else
    skip "glib-compile-schemas (libglib2.0-bin not installed)"
  fi
else
  skip "GSettings schema (resources/$app.gschema.xml not in this tree)"
fi

# ---- Flatpak manifest -----------------------------------------------------------------------
if [[ -f $manifest ]] && have python3 && python3 -c 'import yaml' 2>/dev/null; then
  if python3 - "$manifest" "$app" <<'EOF'
import re, sys, yaml
m = yaml.safe_load(open(sys.argv[1]))
app = sys.argv[2]
errs = []
if m.get("app-id") != app: errs.append("app-id is %r" % m.get("app-id"))
if m.get("command") != "sutra-studio": errs.append("command is %r" % m.get("command"))
if not str(m.get("runtime", "")).startswith("org.gnome.Platform"): errs.append("runtime is not org.gnome.Platform")
fa = m.get("finish-args", [])
for need in ("--share=network", "--socket=wayland", "--socket=fallback-x11", "--device=dri",
             "--filesystem=xdg-cache/huggingface:create"):
    if need not in fa: errs.append("finish-args lacks " + need)
names = [mod["name"] if isinstance(mod, dict) else mod for mod in m.get("modules", [])]
for need in ("json-c", "openblas", "utf8proc", "sutra-studio"):
    if need not in names: errs.append("no module " + need)
if names and names[-1] != "sutra-studio": errs.append("sutra-studio is not the last module")
for mod in m.get("modules", []):
    if not isinstance(mod, dict): continue
    for s in mod.get("sources", []):
        if s.get("type") in ("archive", "file") and "url" in s:
            if not s["url"].startswith("https://"): errs.append("%s: url not https" % mod["name"])
            if not re.fullmatch(r"[0-9a-f]{64}", s.get("sha256", "")): errs.append("%s: sha256 missing or malformed" % mod["name"])
for e in errs: print("      " + e)
sys.exit(1 if errs else 0)
EOF
  then ok "flatpak manifest $app.yml is consistent"; else bad "flatpak manifest $app.yml"; fi
else
  skip "flatpak manifest check (python3-yaml not installed)"
fi

# ---- Debian copyright -----------------------------------------------------------------------
head -n 1 "$pkg/copyright" | grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' &&
  ok "copyright is DEP-5" || bad "copyright has no DEP-5 Format: line"

echo
echo "test-packaging: $passed passed, $failures failed, $skipped skipped"
((failures == 0))
