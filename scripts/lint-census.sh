#!/usr/bin/env bash
# How many places each lint of the issue 11 §7 set flags, per crate:
# production code (lib and bin targets) apart from tests, benches and
# examples. clippy.toml lets #[test] functions and #[cfg(test)] modules
# unwrap, expect, panic and index, so those are not counted.
#
# The lints (rust-spiffe's set): clippy::unwrap_used, clippy::expect_used,
# clippy::panic, clippy::indexing_slicing, and missing_docs. Cargo.toml
# turns them on for the whole workspace, so production code is at zero
# (clippy -D warnings); the script shows where a crate-level allow
# (test-only crates) or a new lint would leave places.
#
# Usage: scripts/lint-census.sh   (builds like `cargo clippy`: hold the
# build lock on a shared machine)
set -euo pipefail
cd "$(dirname "$0")/.."
lints=(clippy::unwrap_used clippy::expect_used clippy::panic clippy::indexing_slicing missing_docs)
flags=()
for l in "${lints[@]}"; do flags+=(-W "$l"); done

prod="$(mktemp)"
all="$(mktemp)"
trap 'rm -f "$prod" "$all"' EXIT
# Production code alone (no cfg(test)), then everything; a place found only
# in the second run is test code.
cargo clippy --workspace --lib --bins --locked --message-format=json -- "${flags[@]}" >"$prod"
cargo clippy --workspace --all-targets --locked --message-format=json -- "${flags[@]}" >"$all"

python3 - "$prod" "$all" "${lints[@]}" <<'PY'
import collections, json, sys

prod_file, all_file, lints = sys.argv[1], sys.argv[2], sys.argv[3:]


def places(path):
    """{(lint, file, line, column): crate} of every lint message."""
    found = {}
    for line in open(path, encoding="utf-8"):
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") != "compiler-message":
            continue
        msg = m["message"]
        code = (msg.get("code") or {}).get("code")
        if code not in lints:
            continue
        span = next((s for s in msg["spans"] if s.get("is_primary")), None)
        if span is None:
            continue
        crate = m["package_id"].split("#")[0].rsplit("/", 1)[-1]
        found[(code, span["file_name"], span["line_start"], span["column_start"])] = crate
    return found


prod = places(prod_file)
test = {k: c for k, c in places(all_file).items() if k not in prod}
short = [l.replace("clippy::", "") for l in lints]
for found, title in ((prod, "production code (lib and bin targets)"), (test, "tests, benches, examples")):
    counts = collections.Counter((c, k[0]) for k, c in found.items())
    crates = sorted({c for c, _ in counts})
    print(f"\n{title}:")
    print(f"{'crate':<22}" + "".join(f"{s:>17}" for s in short))
    for c in crates:
        print(f"{c:<22}" + "".join(f"{counts[(c, l)]:>17}" for l in lints))
    print(f"{'total':<22}" + "".join(f"{sum(counts[(c, l)] for c in crates):>17}" for l in lints))
PY
