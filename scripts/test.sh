#!/usr/bin/env bash
# Run every test hallpass has, installing what the tests need first.
# This is the README's test command and what CI (.ci/run) calls.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "install test tools (Envoy, h2load, promtool, helm, kubectl, ...)"
scripts/install-test-deps.sh

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "demo (the README's first command) as a smoke test"
./target/debug/hallpass demo

step "shipped policies: hallpass policy check, and their test suites"
for f in examples/policies/*.yaml; do
  case "$f" in *.tests.yaml) continue ;; esac
  ./target/debug/hallpass policy check "$f"
  t="${f%.yaml}.tests.yaml"
  if [ -f "$t" ]; then ./target/debug/hallpass policy test "$f" "$t"; fi
done

step "fuzz smoke (cargo-fuzz, 5 s per target)"
scripts/fuzz-smoke.sh 5

step "doc tests"
cargo test --workspace --doc --locked

step "tests (unit, property, in-process gRPC, real Envoy end-to-end, local mesh)"
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
cargo nextest run --workspace --locked --no-fail-fast
