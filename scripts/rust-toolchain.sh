#!/usr/bin/env bash
# The Rust release hallpass is built and tested with: 1.95.0 (Cargo.toml's
# `rust-version` is the floor; this is the exact release CI holds us to, so
# a new stable cannot change a lint, a warning or codegen under CI).
#
# Why a check here and not a rust-toolchain.toml: rustup reads a toolchain
# file and, when the release it names is not installed *under that name*,
# stops every cargo command ("toolchain '1.95.0-…' is not installed") or
# tries to download it. A fresh machine whose 1.95.0 is installed as
# `stable`, with no route to static.rust-lang.org, then cannot run even the
# README's first command. So nothing names a toolchain for rustup; this step
# checks the compiler actually in use instead.
#
# A release other than the pinned one fails under CI (CI set) and warns
# elsewhere, so a platform team on a newer Rust can still run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
pinned="1.95.0"
log() { printf 'rust-toolchain: %s\n' "$*" >&2; }

for f in rust-toolchain rust-toolchain.toml; do
  if [ -e "$f" ]; then
    log "$f is present: on a fresh offline machine rustup cannot install the release it names (see this script's header); remove it"
    exit 1
  fi
done

have=""
if out="$(rustc --version 2>/dev/null)"; then
  have="$(awk '{ print $2 }' <<<"$out")"
fi
if [ -z "$have" ]; then
  log "no rustc on PATH; install Rust $pinned (https://rustup.rs)"
  exit 1
fi
for tool in cargo-clippy rustfmt; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "$tool is missing: rustup component add ${tool#cargo-}"
    exit 1
  fi
done
if [ "$have" != "$pinned" ]; then
  if [ -n "${CI:-}" ]; then
    log "rustc is $have; CI builds and tests with $pinned"
    exit 1
  fi
  log "warning: rustc is $have; hallpass is built and tested with $pinned (results may differ)"
  exit 0
fi
log "rustc $have (the pinned release)"
