#!/usr/bin/env bash
# A short fuzzing run of every target (cargo-fuzz, libFuzzer + AddressSanitizer).
# The machine has only stable Rust, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz use
# the nightly flags it needs. Each target asserts invariants (docs/testing.md).
# Usage: scripts/fuzz-smoke.sh [seconds per target, default 10]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-10}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
for target in spiffe_id xfcc jwt_svid x509_svid decide; do
  echo "fuzz: $target for ${seconds}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 \
    | grep -E "^(#[0-9]+\s+DONE|Done|==|SUMMARY|thread|panicked|ERROR)" || true
  test "${PIPESTATUS[0]}" -eq 0
done
