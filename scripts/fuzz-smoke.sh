#!/usr/bin/env bash
# A short fuzzing run of every target (cargo-fuzz, libFuzzer + AddressSanitizer).
# Each target asserts invariants (docs/testing.md); `decide` drives the whole
# decision, CheckRequest bytes to the audit line. cargo-fuzz is installed into
# target/tools (pinned), not into the machine. The targets and the run itself
# are shared with scripts/fuzz-long.sh (scripts/lib/fuzz.sh).
# Usage: scripts/fuzz-smoke.sh [seconds per target, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
# shellcheck source=scripts/lib/fuzz.sh
. scripts/lib/fuzz.sh
cargo_fuzz="$(fuzz_tool)"
mapfile -t targets < <(fuzz_targets)
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz: no targets in fuzz/Cargo.toml" >&2; exit 1; }

cd fuzz
for target in "${targets[@]}"; do
  echo "fuzz: $target for ${seconds}s"
  # The committed seeds (fuzz/seeds/<target>) are read, never written.
  seeds=()
  [ -d "seeds/$target" ] && seeds=("corpus/$target" "seeds/$target")
  [ "${#seeds[@]}" -gt 0 ] && mkdir -p "corpus/$target"
  fuzz_run "$cargo_fuzz" "$target" "$seconds" "${seeds[@]}" || exit 1
done
