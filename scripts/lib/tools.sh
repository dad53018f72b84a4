# Shared by scripts/install-test-deps.sh and scripts/k8s-tools.sh (sourced,
# not run). Everything a script installs goes under target/tools, owned by
# this checkout; only Debian packages (apt-get) land on the machine.
#
# Every probe that may legitimately fail (is a tool there? which version?)
# is written as the condition of an `if`, or ends in `|| …`: under
# `set -euo pipefail` a failing probe in an assignment or a pipeline would
# end the script on the spot, with no message.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_DIR="${HALLPASS_TOOLS_DIR:-$ROOT/target/tools}"
TOOLS_BIN="$TOOLS_DIR/bin"
VENV="$TOOLS_DIR/venv"
# Opt-in: also link the tools of $TOOLS_BIN into this directory (for
# example /usr/local/bin). Off by default, so that what one checkout
# installed never quietly serves another one, or a later fresh run.
LINK_DIR="${HALLPASS_LINK_DIR:-}"

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  have sudo || die "not root and sudo is missing; cannot install system packages"
  SUDO="sudo"
fi

# ---------------------------------------------------------------- apt
APT_UPDATED=0
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_CREATED=0

remove_policy_rc() {
  # Only a policy-rc.d that this script created.
  if [ "$POLICY_RC_CREATED" -eq 1 ]; then
    $SUDO rm -f "$POLICY_RC" || true
  fi
}
trap remove_policy_rc EXIT

apt_install() {
  have apt-get || die "apt-get not found; cannot install Debian package(s): $*"
  # invoke-rc.d consults policy-rc.d; 101 = "action forbidden": package
  # post-install scripts start no daemons (prometheus ships one).
  if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY_RC" >/dev/null
    $SUDO chmod 0755 "$POLICY_RC"
    POLICY_RC_CREATED=1
  fi
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

# ---------------------------------------------------------------- Python
# The project's own virtual environment: its own pip and site-packages, so
# neither what the system interpreter already has nor what it lacks (or a
# PEP 668 "externally managed" refusal) changes a run.
venv_python() { printf '%s\n' "$VENV/bin/python"; }

venv_works() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

ensure_venv() {
  venv_works && return 0
  local py=""
  local c
  for c in python3 python; do
    if have "$c" && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      py="$c"
      break
    fi
  done
  if [ -z "$py" ]; then
    apt_install python3 python3-venv
    py=python3
  elif ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian splits venv's pip bootstrap into python3-venv.
    apt_install python3-venv
  fi
  log "creating the Python venv $VENV (from $(command -v "$py"))"
  rm -rf "$VENV"
  mkdir -p "$TOOLS_DIR"
  "$py" -m venv "$VENV" || die "cannot create a Python venv at $VENV with $py"
  venv_works || die "the venv at $VENV has no working pip"
}

# True when the venv has PACKAGE at exactly VERSION.
venv_has() {
  "$VENV/bin/python" -c \
    'import importlib.metadata as m, sys
try:
    sys.exit(m.version(sys.argv[1]) != sys.argv[2])
except m.PackageNotFoundError:
    sys.exit(1)' "$1" "$2" 2>/dev/null
}

# pip inside the venv (never the system's).
venv_pip() {
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    "$VENV/bin/python" -m pip "$@"
}

# ---------------------------------------------------------------- links
# Put TARGET into $TOOLS_BIN as NAME (default: TARGET's file name), and into
# $LINK_DIR too when that was asked for.
link_tool() {
  local target="$1" name="${2:-$(basename "$1")}"
  mkdir -p "$TOOLS_BIN"
  if [ "$target" != "$TOOLS_BIN/$name" ]; then
    ln -sfn "$target" "$TOOLS_BIN/$name"
  fi
  if [ -n "$LINK_DIR" ]; then
    $SUDO mkdir -p "$LINK_DIR"
    $SUDO ln -sfn "$TOOLS_BIN/$name" "$LINK_DIR/$name" \
      || die "cannot link $name into $LINK_DIR"
    log "linked $LINK_DIR/$name -> $TOOLS_BIN/$name"
  fi
}

# The first line a command prints (for the summary), or "?" when it fails.
first_line() {
  local out
  if out="$("$@" 2>&1)"; then
    printf '%s\n' "${out%%$'\n'*}"
  else
    printf '?\n'
  fi
}
