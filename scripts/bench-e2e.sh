#!/usr/bin/env bash
# End-to-end load benchmark through real Envoy (see tests/benches/e2e_load.rs).
# Prints a markdown table; copy it into docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's tools (Envoy, ...) before the machine's.
export PATH="$PWD/target/tools/bin:$PATH"
scripts/install-test-deps.sh
cargo build --release --workspace --bins
E2E_HALLPASS_BIN="$PWD/target/release/hallpass" cargo bench --workspace --bench e2e_load "$@"
