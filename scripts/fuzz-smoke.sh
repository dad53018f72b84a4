#!/usr/bin/env bash
# A short fuzzing run of every target (cargo-fuzz, libFuzzer + AddressSanitizer).
# The machine has only stable Rust, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz use
# the nightly flags it needs. Each target asserts invariants (docs/testing.md);
# `decide` drives the whole decision, CheckRequest bytes to the audit line.
# cargo-fuzz is installed into target/tools (pinned), not into the machine.
# Usage: scripts/fuzz-smoke.sh [seconds per target, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
seconds="${1:-10}"
CARGO_FUZZ_VERSION=0.13.2
cargo_fuzz="$ROOT/target/tools/bin/cargo-fuzz"

installed=""
if [ -x "$cargo_fuzz" ]; then
  installed="$("$cargo_fuzz" --version 2>/dev/null)" || installed=""
fi
if [ "$installed" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --root "$ROOT/target/tools"
fi

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
