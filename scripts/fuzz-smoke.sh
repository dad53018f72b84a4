#!/usr/bin/env bash
# A short fuzzing run of every target (cargo-fuzz, libFuzzer + AddressSanitizer).
# The machine has only stable Rust, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz use
# the nightly flags it needs. Each target asserts invariants (docs/testing.md);
# `decide` drives the whole decision, CheckRequest bytes to the audit line.
# cargo-fuzz is installed into target/tools (pinned), not into the machine.
# Usage: scripts/fuzz-smoke.sh [seconds per target, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
# shellcheck source=scripts/lib/cargo-tool.sh
. scripts/lib/cargo-tool.sh
cargo_fuzz="$(cargo_tool cargo-fuzz 0.13.2)"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cd fuzz
for target in spiffe_id xfcc jwt_svid x509_svid decide; do
  echo "fuzz: $target for ${seconds}s"
  # The run's status, not a filter's: the output goes to a file first (a
  # `cmd | grep || true` pipeline once hid a failing run whenever grep
  # found nothing to print).
  status=0
  RUSTC_BOOTSTRAP=1 "$cargo_fuzz" fuzz run "$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+\s+DONE|Done|==|SUMMARY|thread|panicked|ERROR)" "$log" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target failed (exit $status); the end of its output:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
done
