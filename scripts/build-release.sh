#!/usr/bin/env bash
# Release builds of `hallpass`, with their debug info split off, not lost
# (docs/performance.md, "Binary size"):
#
#   scripts/build-release.sh [sidecar|full|both]     (default: both)
#
# - sidecar: `cargo build -p hallpass --no-default-features` (serve and
#   policy check|test|explain; what runs beside every workload);
# - full: the default features (every command; the injector image).
#
# Each lands in target/dist/ (or $DIST_DIR) as the binary and NAME.debug:
# `objcopy --only-keep-debug` keeps the DWARF line tables in NAME.debug, the
# binary keeps its function symbols and gets a GNU debuglink and keeps its
# build ID, so gdb, perf and addr2line find NAME.debug next to the binary or
# under /usr/lib/debug/.build-id/. Needs binutils (objcopy).
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-both}"
out="${DIST_DIR:-target/dist}"
case "$what" in
  sidecar | full | both) ;;
  *)
    echo "usage: $0 [sidecar|full|both]" >&2
    exit 64
    ;;
esac
if ! command -v objcopy >/dev/null 2>&1; then
  echo "error: objcopy (binutils) is needed to split off the debug info" >&2
  exit 1
fi
mkdir -p "$out"

# build NAME [cargo flags...]
build() {
  local name="$1"
  shift
  cargo build --release --locked -p hallpass --bin hallpass "$@"
  local bin="$out/$name"
  cp target/release/hallpass "$bin"
  objcopy --only-keep-debug "$bin" "$bin.debug"
  chmod 0644 "$bin.debug"
  objcopy --strip-debug --add-gnu-debuglink="$bin.debug" "$bin"
  printf '%-18s %10d bytes   %s.debug %d bytes\n' \
    "$name" "$(stat -c %s "$bin")" "$name" "$(stat -c %s "$bin.debug")"
}

if [ "$what" = sidecar ] || [ "$what" = both ]; then
  build hallpass-sidecar --no-default-features
fi
if [ "$what" = full ] || [ "$what" = both ]; then
  build hallpass
fi
