#!/usr/bin/env bash
# End-to-end load benchmark through real Envoy (see tests/benches/e2e_load.rs):
# floor tcp/uds, hallpass tcp/uds, hallpass with the audit log off, hallpass
# with the recommended transport, in interleaved rounds, in one run.
# Prints a markdown table (copy it into docs/performance.md) and writes the
# numbers to target/bench-e2e.json (BENCH_JSON to change).
#
# Settings (environment): BENCH_REQUESTS (20000), BENCH_IDLE_REQUESTS (2000),
# BENCH_ROUNDS (3), BENCH_ONLY, BENCH_PERF, BENCH_PERF_OUT: see the bench.
# A benchmark, never a test: nothing here asserts a time. Run it with the
# machine otherwise idle (the helpers' build lock: flock /work/coord/build.lock).
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's tools (Envoy, ...) before the machine's.
export PATH="$PWD/target/tools/bin:$PATH"
scripts/install-test-deps.sh
cargo build --release -p hallpass --bin hallpass
E2E_HALLPASS_BIN="${E2E_HALLPASS_BIN:-$PWD/target/release/hallpass}" \
  cargo bench -p hallpass-e2e --bench e2e_load "$@"
