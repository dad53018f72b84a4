# Sourced by scripts/fuzz-smoke.sh and scripts/fuzz-long.sh (not run): the
# targets, the pinned cargo-fuzz, and one run of one target with its status
# kept. The caller has `cd`-ed to the checkout and set `set -euo pipefail`.

# shellcheck source=scripts/lib/cargo-tool.sh
. "$(dirname "${BASH_SOURCE[0]}")/cargo-tool.sh"

# Every fuzz target, in fuzz/Cargo.toml's order: the `name` of each [[bin]]
# (cargo-fuzz makes one binary per target), so a new target is fuzzed by
# both scripts without editing either.
fuzz_targets() {
  awk '
    /^\[\[bin\]\]/ { in_bin = 1; next }
    /^\[/ { in_bin = 0 }
    in_bin && /^name *= */ { gsub(/^name *= *"|".*$/, ""); print }
  ' fuzz/Cargo.toml
}

# Print the path of the pinned cargo-fuzz (installed into target/tools).
fuzz_tool() {
  cargo_tool cargo-fuzz 0.13.2
}

# fuzz_run CARGO_FUZZ TARGET SECONDS [CORPUS_DIR...]: fuzz TARGET for SECONDS
# from fuzz/ (the caller's working directory), with the corpus directories
# given (the first one takes new inputs; cargo-fuzz's default,
# fuzz/corpus/TARGET, when none is given). Prints libFuzzer's summary lines;
# on failure, the end of the output, and returns the run's exit status.
#
# The machine has only stable Rust, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz use
# the nightly flags it needs.
fuzz_run() {
  local cargo_fuzz="$1" target="$2" seconds="$3"
  shift 3
  local log status=0
  log="$(mktemp)"
  # The run's status, not a filter's: the output goes to a file first (a
  # `cmd | grep || true` pipeline once hid a failing run whenever grep
  # found nothing to print).
  RUSTC_BOOTSTRAP=1 "$cargo_fuzz" fuzz run "$target" "$@" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+\s+DONE|Done|==|SUMMARY|thread|panicked|ERROR)" "$log" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target failed (exit $status); the end of its output:" >&2
    tail -n 40 "$log" >&2
  fi
  rm -f "$log"
  return "$status"
}
