#!/usr/bin/env bash
# Run every test hallpass has, installing what the tests need first.
# This is the README's test command and what CI (.ci/run) calls.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# The project's own tools (scripts/install-test-deps.sh puts them there) come
# before anything the machine has: Envoy, helm, kubectl, kubernetes-validate,
# dclint, cargo-fuzz and, when the machine lacks it, cargo-nextest.
export PATH="$PWD/target/tools/bin:$PATH"

# Incremental compilation state is useless for a one-shot run and adds about
# 2 GB to target/. Plain `cargo` commands outside this script keep it.
export CARGO_INCREMENTAL=0

step "disk space (a full run leaves about 2 GB in target/)"
df -h . | tail -n 1 || true
# A probe: it must not end the script (set -e) when df cannot answer.
free_kb="$(df -Pk . 2>/dev/null | awk 'NR == 2 { print $4 }')" || free_kb=""
if [ "${free_kb:-0}" -lt 3000000 ]; then
  echo "warning: under 3 GB free; the build needs about 2 GB in target/ and the" \
    "test tools about 0.5 GB more. Link errors or 'No space left on device' below mean the disk." >&2
fi

step "Rust toolchain (the pinned release, 1.95.0)"
scripts/rust-toolchain.sh

step "install test tools (Envoy, h2load, promtool, helm, kubectl, ...)"
scripts/install-test-deps.sh

step "format"
cargo fmt --all -- --check

step "dependency policy (cargo-deny: licenses, bans, sources; see deny.toml)"
scripts/cargo-deny.sh

# The fuzz build goes first and, on CI, is deleted before the main build, so
# the two never take disk space at the same time.
step "fuzz smoke (cargo-fuzz, 5 s per target)"
scripts/fuzz-smoke.sh 5
if [ -n "${CI:-}" ]; then
  # The sanitizer build (about 0.7 GB) is used by nothing later.
  rm -rf fuzz/target
fi

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The sidecar build (docs/architecture.md, "What each binary links"): the
# dependency graph proves what it leaves out, and clippy proves it compiles
# (a check of the one package whose features differ, not a second build).
step "sidecar build: what it links, and its lints"
scripts/check-deps.sh
cargo clippy -p hallpass --no-default-features --all-targets --locked -- -D warnings

step "API docs (cargo doc, warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

# Every target at once: with the tests' dev-dependencies in the feature set,
# the libraries built here are the ones nextest links later, not a second copy.
step "build"
cargo build --workspace --all-targets --locked

step "demo (the README's first command) as a smoke test"
./target/debug/hallpass demo

step "shipped policies: hallpass policy check, and their test suites at 100 % coverage"
for f in examples/policies/*.yaml; do
  case "$f" in *.tests.yaml) continue ;; esac
  ./target/debug/hallpass policy check "$f"
  t="${f%.yaml}.tests.yaml"
  if [ -f "$t" ]; then ./target/debug/hallpass policy test "$f" "$t" --min-coverage 100; fi
done

step "doc tests"
cargo test --workspace --doc --locked

step "tests (unit, property, in-process gRPC, real Envoy end-to-end, local mesh)"
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked --root target/tools
fi
cargo nextest run --workspace --locked --no-fail-fast

step "disk used by this run"
du -sh target 2>/dev/null || true
df -h . | tail -n 1 || true
