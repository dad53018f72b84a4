#!/usr/bin/env bash
# The dependency policy (deny.toml): licenses, banned crates and duplicate
# versions, sources. Advisories are left out: their database is fetched from
# GitHub, which CI cannot reach (deny.toml says more).
# cargo-deny is installed into target/tools (pinned), not into the machine.
# Usage: scripts/cargo-deny.sh [cargo-deny check arguments, default: licenses bans sources]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/cargo-tool.sh
. scripts/lib/cargo-tool.sh
cargo_deny="$(cargo_tool cargo-deny 0.20.2)"

if [ "$#" -eq 0 ]; then
  set -- licenses bans sources
fi
"$cargo_deny" --locked check "$@"
