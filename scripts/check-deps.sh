#!/usr/bin/env bash
# What each build of `hallpass` links (docs/architecture.md, "What each
# binary links"), proved from the resolved dependency graph. No compilation:
# `cargo tree` only reads Cargo.lock and the manifests.
#
# 1. The sidecar build (`cargo build -p hallpass --no-default-features`, the
#    image's `sidecar` target) links what `serve` runs and nothing else: no
#    test kit, no injector, no analyses, no demo or its PKI, no certificate
#    generator, no Kubernetes types, no HTTP client.
# 2. It does link what `serve` needs, the call-graph page included (a
#    positive check, so that a broken query cannot pass by finding nothing).
# 3. No package depends on the test kit as a normal (non-dev) dependency,
#    except hallpass-e2e, the end-to-end test crate itself (publish = false;
#    its harness library and the local mesh demo use the kit's HTTP client).
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
packages() {
  # One `name vX.Y.Z` per line, de-duplicated.
  cargo tree --locked --prefix none --format '{p}' "$@" | sed 's/ (.*//' | sort -u
}

sidecar="$(packages -p hallpass -e normal --no-default-features)"
forbidden='^(hallpass-testkit|hallpass-injector|hallpass-insights|hallpass-demo|hallpass-pki|hallpass-workload-api-fake|rcgen|kube-core|k8s-openapi|json-patch|reqwest|hyper-rustls|criterion|proptest) '
if found="$(grep -E "$forbidden" <<<"$sidecar")"; then
  echo "error: the sidecar build (hallpass --no-default-features) links:" >&2
  echo "$found" >&2
  fail=1
fi
for needed in hallpass-server hallpass-policy hallpass-identity hallpass-telemetry hallpass-callgraph-page tonic; do
  if ! grep -qE "^$needed " <<<"$sidecar"; then
    echo "error: the sidecar build does not link $needed (is the query still right?)" >&2
    fail=1
  fi
done

full="$(packages -p hallpass -e normal)"
if found="$(grep -E '^(hallpass-testkit|hallpass-workload-api-fake) ' <<<"$full")"; then
  echo "error: the full hallpass build links a test kit:" >&2
  echo "$found" >&2
  fail=1
fi

dependents="$(packages -i hallpass-testkit -e normal --workspace | grep -vE '^(hallpass-testkit|hallpass-e2e) ' || true)"
if [ -n "$dependents" ]; then
  echo "error: normal (non-dev) dependencies on hallpass-testkit:" >&2
  echo "$dependents" >&2
  fail=1
fi

if [ "$fail" -ne 0 ]; then
  exit 1
fi
echo "sidecar build: $(wc -l <<<"$sidecar") packages, none of the test kit, injector, analyses, demo, PKI or HTTP client"
echo "hallpass-testkit: no normal dependents outside the e2e test crate"
