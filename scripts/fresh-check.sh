#!/usr/bin/env bash
# Run the README's test command the way a fresh machine would: in a fresh
# clone of this checkout's HEAD, with a temporary HOME, CARGO_HOME and pip/npm
# caches, and a PATH that holds only what a fresh machine has. Prints the
# wall time at the end. The temporary folder is removed afterwards unless
# --keep is given.
#
#   scripts/fresh-check.sh [--keep]
#
# Only committed work is checked (it is a clone). On a shared machine, hold
# the build lock around it: `flock /work/coord/build.lock scripts/fresh-check.sh`.
#
# What the PATH holds (links in <tmp>/bin, then the system directories):
#   cargo, rustc, rustdoc, rustfmt, cargo-fmt, cargo-clippy, clippy-driver:
#                   the toolchain in use (`rustc --print sysroot`), not
#                   ~/.cargo/bin, where cargo-installed tools (cargo-fuzz, ...)
#                   would be found
#   cargo-nextest:  a fresh machine has it (/usr/local/bin/cargo-nextest)
#   git, python3:   python3 is the interpreter itself (`pyenv which python3`
#                   where pyenv is used), never a pyenv shim: the shims
#                   directory exposes every command pip installed there
#                   (envoy, kubernetes-validate)
#   /usr/sbin /usr/bin /sbin /bin
# Left out: /usr/local/bin, where earlier versions of the scripts linked
# envoy, helm, kubectl, kubernetes-validate and dclint; ~/.cargo/bin; the
# pyenv shims; the user's pip, npm and cargo caches and configuration
# (HOME, CARGO_HOME, XDG_CACHE_HOME, PIP_CACHE_DIR and npm_config_* point
# into the temporary folder); every other variable of this shell.
#
# Kept: the machine's network settings, which a fresh machine of this kind
# has too and CI runs with: the CA-bundle and proxy variables listed below
# (when set) and the system-wide /etc/pip.conf and npm global config.
#
# What cannot be hidden: Debian packages already installed into /usr/bin
# (h2load, promtool and prometheus, which scripts/install-test-deps.sh
# installs with apt-get on a machine without them, and anything else apt put
# there). A fresh machine gets those the same way, by apt-get, but this
# check cannot replay that install step.
set -euo pipefail

keep=0
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    *) echo "usage: scripts/fresh-check.sh [--keep]" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
log() { printf 'fresh-check: %s\n' "$*" >&2; }
die() { printf 'fresh-check: ERROR: %s\n' "$*" >&2; exit 1; }

commit="$(git -C "$ROOT" rev-parse HEAD)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
  log "warning: uncommitted changes in $ROOT are not part of this check"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hallpass-fresh.XXXXXX")"
cleanup() {
  if [ "$keep" -eq 1 ]; then
    log "kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

# ------------------------------------------------------------- the PATH
bin="$tmp/bin"
mkdir -p "$bin" "$tmp/home" "$tmp/cargo" "$tmp/cache/pip" "$tmp/cache/npm"
sysroot="$(rustc --print sysroot)" || die "rustc not found"
for tool in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver; do
  [ -x "$sysroot/bin/$tool" ] || die "$tool is not in the toolchain at $sysroot"
  ln -s "$sysroot/bin/$tool" "$bin/$tool"
done
nextest=""
if [ -x /usr/local/bin/cargo-nextest ]; then
  nextest=/usr/local/bin/cargo-nextest
elif nextest="$(command -v cargo-nextest)"; then
  :
fi
if [ -n "$nextest" ]; then
  ln -s "$nextest" "$bin/cargo-nextest"
else
  log "no cargo-nextest on this machine: scripts/test.sh will install it"
fi
git_bin="$(command -v git)" || die "git not found"
ln -s "$git_bin" "$bin/git"
python=""
if command -v pyenv >/dev/null 2>&1; then
  python="$(pyenv which python3 2>/dev/null)" || python=""
fi
if [ -z "$python" ]; then
  python="$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)" || python=""
fi
[ -n "$python" ] && [ -x "$python" ] || die "python3 not found"
ln -s "$python" "$bin/python3"
for tool in node npm; do
  if path="$(command -v "$tool")"; then
    ln -s "$path" "$bin/$tool"
  fi
done

# ------------------------------------------------------------- the clone
log "cloning $commit into $tmp/hallpass"
git clone --quiet --no-local "$ROOT" "$tmp/hallpass"
git -C "$tmp/hallpass" checkout --quiet --detach "$commit"

# ------------------------------------------------------------- the run
cat >"$tmp/npmrc" </dev/null
# The machine's network settings (see the top of this file).
keep_env=()
for var in SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE \
  NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO PIP_CERT PIP_DEFAULT_TIMEOUT PIP_INDEX_URL \
  PIP_EXTRA_INDEX_URL PIP_FIND_LINKS http_proxy https_proxy no_proxy \
  HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!var:-}" ]; then
    keep_env+=("$var=${!var}")
  fi
done
log "PATH=$bin:/usr/sbin:/usr/bin:/sbin:/bin"
log "kept from this shell: ${keep_env[*]%%=*}"
log "running the test command (bash .ci/run, CI=true) from $tmp/hallpass"
start=$SECONDS
status=0
(
  cd "$tmp/hallpass"
  exec env -i \
    "${keep_env[@]}" \
    HOME="$tmp/home" \
    USER="${USER:-root}" \
    LANG=C.UTF-8 \
    TERM=dumb \
    CI=true \
    PATH="$bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    CARGO_HOME="$tmp/cargo" \
    XDG_CACHE_HOME="$tmp/cache" \
    PIP_CACHE_DIR="$tmp/cache/pip" \
    PIP_NO_INPUT=1 \
    PYTHONNOUSERSITE=1 \
    npm_config_cache="$tmp/cache/npm" \
    npm_config_userconfig="$tmp/npmrc" \
    npm_config_update_notifier=false \
    bash .ci/run
) || status=$?
elapsed=$((SECONDS - start))
printf '\nfresh-check: commit %s\n' "$commit"
printf 'fresh-check: the test command exited %d after %dm%02ds (wall time)\n' \
  "$status" $((elapsed / 60)) $((elapsed % 60))
exit "$status"
