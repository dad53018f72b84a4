#!/usr/bin/env bash
# Policy at mesh scale (issue 17; see tests/benches/mesh_scale.rs): CPU per
# denied ÷ per allowed call at 10 and 10,000 rules, RSS, start and reload
# with a 5,000-destination × 10-rule file, `policy check` time, RSS per
# rule. Through the two real Envoys of the end-to-end bench, with the
# sidecar build. Prints a markdown table; copy it into docs/performance.md.
# Generate a policy of your own with `cargo run -p hallpass-e2e --bin
# hallpass-gen-policy -- DESTINATIONS RULES [CALLEE_RULES] > policy.yaml`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's tools (Envoy, ...) before the machine's.
export PATH="$PWD/target/tools/bin:$PATH"
scripts/install-test-deps.sh
cargo build --release -p hallpass --no-default-features
E2E_HALLPASS_BIN="$PWD/target/release/hallpass" cargo bench -p hallpass-e2e --bench mesh_scale "$@"
