# Sourced by scripts that need a cargo-installed tool (cargo-fuzz,
# cargo-deny): installed into target/tools at a pinned version, owned by the
# checkout like everything scripts/install-test-deps.sh installs, never into
# ~/.cargo/bin. (Not in scripts/lib/tools.sh, which also sets up apt and
# sudo, which these scripts do not need.)

# Print the path of BIN (default NAME), a `cargo install` of crate NAME at
# VERSION under <checkout>/target/tools; install it first unless it is there
# and `BIN --version` reports "BIN VERSION".
cargo_tool() {
  local name="$1" version="$2" bin="${3:-$1}"
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/tools"
  local have=""
  if [ -x "$root/bin/$bin" ]; then
    have="$("$root/bin/$bin" --version 2>/dev/null)" || have=""
  fi
  if [ "$have" != "$bin $version" ]; then
    cargo install "$name" --locked --version "$version" --root "$root" >&2 || return 1
  fi
  printf '%s\n' "$root/bin/$bin"
}
