#!/usr/bin/env bash
# Regenerate docs/img/callgraph.png: the /callgraph.html page of a realistic
# clinical-mesh call graph (crates/callgraph-page/examples/callgraph_html.rs),
# rendered by headless Chromium (Debian package `chromium`, installed here
# when missing). The page is written with the same `to_html` the sidecar's
# admin endpoint serves, and loads nothing from the network.
#
#   scripts/screenshot-callgraph.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-docs/img/callgraph.png}"
log() { printf 'screenshot-callgraph: %s\n' "$*" >&2; }
die() { printf 'screenshot-callgraph: ERROR: %s\n' "$*" >&2; exit 1; }

if ! command -v chromium >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "chromium is missing and apt-get is not available"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  log "apt-get install chromium"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    chromium fonts-dejavu-core >/dev/null || die "apt-get install chromium failed"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo run -q -p hallpass-callgraph-page --example callgraph_html > "$work/callgraph.html"

mkdir -p "$(dirname "$out")"
# Every flag keeps Chromium off the network and away from the user's profile.
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic \
  --no-first-run --disable-background-networking --disable-component-update \
  --disable-sync --hide-scrollbars --user-data-dir="$work/profile" \
  --screenshot="$work/callgraph.png" --window-size=1000,900 \
  "file://$work/callgraph.html" >"$work/chromium.log" 2>&1 \
  || { cat "$work/chromium.log" >&2; die "chromium failed"; }
[ -s "$work/callgraph.png" ] || { cat "$work/chromium.log" >&2; die "no screenshot written"; }
mv "$work/callgraph.png" "$out"
log "wrote $out ($(wc -c <"$out") bytes)"
