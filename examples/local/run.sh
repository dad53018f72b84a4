#!/usr/bin/env bash
# The local mesh demo in one command: installs Envoy and Prometheus if needed,
# builds hallpass, starts the mesh on loopback, plays a normal day and an
# incident, and prints the on-call summary. Pass --keep to leave it running
# (press Enter to stop), --quick for the short version.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The project's tools (Envoy from target/tools) before the machine's.
export PATH="$PWD/target/tools/bin:$PATH"
scripts/install-test-deps.sh >/dev/null
cargo build --workspace --bins --quiet
exec ./target/debug/hallpass-local-mesh "$@"
