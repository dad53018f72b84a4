#!/usr/bin/env bash
# The soak (a benchmark, never part of the test command): a steady request
# rate through the real Envoy pair for --duration, a policy reload and a
# trust-bundle rotation every minute, hallpass sampled every 10 s (RSS, open
# fds, threads, p50/p99 of the window). Fails when RSS grows more than 10 %
# after the first minute, the p99 drifts more than 50 %, or a request is not
# answered 200 (tests/src/soak.rs has the rules). Writes target/soak.csv and
# the chart docs/img/soak.png (matplotlib, in the project's Python venv under
# target/tools: a chart library in Python rather than `plotters` in the Rust
# build, which every build would then compile).
#
# Usage: scripts/soak.sh [--duration 10m|600s|600] [--rate RPS] [--release]
#   --release  soak the release build of hallpass (default: the dev build,
#              already built by the tests; its latencies are a debug build's)
# Run it with the machine otherwise idle (the helpers' build lock):
#   flock /work/coord/build.lock scripts/soak.sh --duration 10m
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=soak
export PATH="$PWD/target/tools/bin:$PATH"

duration=600
rate=200
profile=dev
while [ "$#" -gt 0 ]; do
  case "$1" in
    --duration)
      [ "$#" -ge 2 ] || { echo "soak: --duration needs a value" >&2; exit 2; }
      case "$2" in
        *m) duration="$(( ${2%m} * 60 ))" ;;
        *s) duration="${2%s}" ;;
        *) duration="$2" ;;
      esac
      shift 2 ;;
    --rate) [ "$#" -ge 2 ] || { echo "soak: --rate needs a value" >&2; exit 2; }; rate="$2"; shift 2 ;;
    --release) profile=release; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$duration" in
  ''|*[!0-9]*|0) echo "soak: --duration must be a positive time (10m, 600s, 600)" >&2; exit 2 ;;
esac

# The chart's matplotlib, pinned, in the project's venv (set up first, so a
# missing Python fails the run before ten minutes are spent).
# shellcheck source=scripts/lib/tools.sh
. scripts/lib/tools.sh
ensure_venv
venv_has matplotlib 3.10.7 || venv_pip install -q "matplotlib==3.10.7"
command -v h2load >/dev/null || die "h2load is missing (scripts/install-test-deps.sh)"

if [ "$profile" = release ]; then
  cargo build --release -p hallpass --bin hallpass
  bin="$PWD/target/release/hallpass"
else
  cargo build -p hallpass --bin hallpass
  bin="$PWD/target/debug/hallpass"
fi
cargo build -p hallpass-e2e --bin hallpass-soak
status=0
E2E_HALLPASS_BIN="$bin" target/debug/hallpass-soak \
  --duration "$duration" --rate "$rate" --csv target/soak.csv || status=$?
if [ -s target/soak.csv ]; then
  mkdir -p docs/img
  "$(venv_python)" scripts/soak-plot.py target/soak.csv docs/img/soak.png
  log "chart: docs/img/soak.png (samples: target/soak.csv)"
fi
exit "$status"
