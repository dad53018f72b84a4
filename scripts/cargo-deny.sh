#!/usr/bin/env bash
# The dependency policy (deny.toml): licenses, banned crates and duplicate
# versions, sources. Advisories are left out: their database is fetched from
# GitHub, which CI cannot reach (deny.toml says more).
# cargo-deny is installed into target/tools (pinned), not into the machine.
# Usage: scripts/cargo-deny.sh [cargo-deny check arguments, default: licenses bans sources]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
CARGO_DENY_VERSION=0.20.2
cargo_deny="$ROOT/target/tools/bin/cargo-deny"

installed=""
if [ -x "$cargo_deny" ]; then
  installed="$("$cargo_deny" --version 2>/dev/null)" || installed=""
fi
if [ "$installed" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION" --root "$ROOT/target/tools"
fi

if [ "$#" -eq 0 ]; then
  set -- licenses bans sources
fi
"$cargo_deny" --locked check "$@"
