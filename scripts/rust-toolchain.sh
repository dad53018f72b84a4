#!/usr/bin/env bash
# Make sure the Rust toolchain rust-toolchain.toml pins is there before
# anything calls cargo. rustup (>= 1.28) reads the pin but does not install
# a missing toolchain itself: without this, the first cargo command would
# stop with "toolchain '1.95.0-…' is not installed".
#
# - rustup present, toolchain installed: nothing to do (nothing downloaded).
# - rustup present, toolchain missing: `rustup toolchain install` it with the
#   pinned components (a download from static.rust-lang.org).
# - no rustup (a toolchain put on PATH directly, as scripts/fresh-check.sh
#   does): the pin is not read by anything, so check that rustc is the
#   pinned release.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf 'rust-toolchain: %s\n' "$*" >&2; }

channel="$(sed -n 's/^channel *= *"\([^"]*\)".*/\1/p' rust-toolchain.toml)"
[ -n "$channel" ] || { log "no channel in rust-toolchain.toml"; exit 1; }
components="$(sed -n 's/^components *= *\[\(.*\)\].*/\1/p' rust-toolchain.toml | tr -d '" ')"

if ! command -v rustup >/dev/null 2>&1; then
  have=""
  if out="$(rustc --version 2>/dev/null)"; then
    have="$(awk '{ print $2 }' <<<"$out")"
  fi
  if [ "$have" != "$channel" ]; then
    log "rustc is ${have:-missing}; rust-toolchain.toml pins $channel (install it, or use rustup)"
    exit 1
  fi
  log "rustc $have (no rustup; the pinned release)"
  exit 0
fi

if rustup toolchain list 2>/dev/null | grep -q "^$channel-"; then
  log "$(rustc --version) (pinned: $channel)"
  exit 0
fi
log "toolchain $channel is not installed: rustup toolchain install $channel"
args=(toolchain install "$channel" --profile minimal)
IFS=',' read -r -a wanted <<<"$components"
for c in "${wanted[@]}"; do
  [ -n "$c" ] && args+=(--component "$c")
done
rustup "${args[@]}"
log "$(rustc --version)"
