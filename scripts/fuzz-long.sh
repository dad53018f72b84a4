#!/usr/bin/env bash
# A long fuzzing run (a benchmark-like job, not part of the test command; the
# short run there is scripts/fuzz-smoke.sh): every target of fuzz/Cargo.toml,
# or the ones named, for a fixed time each, one after the other.
#
# The corpus each run grows is kept in fuzz/corpus/<target>/ (git-ignored), so
# the next run starts where this one stopped; the small committed seeds in
# fuzz/seeds/<target>/ are read too, never written. A crash leaves its input in
# fuzz/artifacts/<target>/ (git-ignored) and fails the script; rerun it with
# `cargo fuzz run <target> fuzz/artifacts/<target>/<file>` from fuzz/.
#
# Usage: scripts/fuzz-long.sh [--seconds N | --minutes N] [--cmin] [TARGET...]
#   --seconds N / --minutes N  time per target (default 10 minutes)
#   --cmin                     afterwards, minimise each target's corpus
#                              (`cargo fuzz cmin`) in place
# Run it under the build lock on a shared machine:
#   flock /work/coord/build.lock scripts/fuzz-long.sh --minutes 10
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '/^# Usage:/,/^# Run it/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

seconds=600
cmin=0
chosen=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --seconds) [ "$#" -ge 2 ] || usage; seconds="$2"; shift 2 ;;
    --minutes) [ "$#" -ge 2 ] || usage; seconds="$(( $2 * 60 ))"; shift 2 ;;
    --cmin) cmin=1; shift ;;
    -h|--help) usage ;;
    -*) echo "fuzz-long: unknown option $1" >&2; usage ;;
    *) chosen+=("$1"); shift ;;
  esac
done
case "$seconds" in
  ''|*[!0-9]*|0) echo "fuzz-long: the time per target must be a positive whole number of seconds" >&2; exit 2 ;;
esac

# shellcheck source=scripts/lib/fuzz.sh
. scripts/lib/fuzz.sh
mapfile -t known < <(fuzz_targets)
targets=("${known[@]}")
if [ "${#chosen[@]}" -gt 0 ]; then
  for t in "${chosen[@]}"; do
    printf '%s\n' "${known[@]}" | grep -qx -- "$t" \
      || { echo "fuzz-long: no target $t (known: ${known[*]})" >&2; exit 2; }
  done
  targets=("${chosen[@]}")
fi
cargo_fuzz="$(fuzz_tool)"

cd fuzz
failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  dirs=("corpus/$target")
  [ -d "seeds/$target" ] && dirs+=("seeds/$target")
  before="$(find "corpus/$target" -type f | wc -l)"
  echo "fuzz-long: $target for ${seconds}s (corpus: $before inputs)"
  if ! fuzz_run "$cargo_fuzz" "$target" "$seconds" "${dirs[@]}"; then
    failed+=("$target")
    continue
  fi
  if [ "$cmin" -eq 1 ]; then
    RUSTC_BOOTSTRAP=1 "$cargo_fuzz" fuzz cmin "$target" "corpus/$target" >/dev/null 2>&1 \
      || echo "fuzz-long: cmin of $target failed; the corpus is left as it was" >&2
  fi
  echo "fuzz-long: $target done (corpus: $(find "corpus/$target" -type f | wc -l) inputs)"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz-long: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz-long: every target ran ${seconds}s without a finding"
