#!/usr/bin/env bash
# Checks for lrukit-array-lru, usable from CI: formatting, clippy with the
# default features (`std`), with `alloc` only (no_std with TimedLru on a
# manual clock) and with none, the no_std build, and the tests with all three
# feature sets (< 1 min in debug mode on 2 cores once built).
#
# Optional: MIRI=1 also runs the tests under miri (needs a nightly toolchain
# with the miri component; proptest cases are reduced). That takes about
# 20 minutes on 2 cores, most of it in tests/model.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo fmt -p lrukit-array-lru -- --check
cargo clippy -p lrukit-array-lru --all-targets -- -D warnings
cargo clippy -p lrukit-array-lru --all-targets --no-default-features --features alloc -- -D warnings
cargo clippy -p lrukit-array-lru --all-targets --no-default-features -- -D warnings
cargo build -p lrukit-array-lru --no-default-features
cargo test -p lrukit-array-lru
cargo test -p lrukit-array-lru --no-default-features --features alloc
cargo test -p lrukit-array-lru --no-default-features

if [[ "${MIRI:-0}" == "1" ]]; then
  PROPTEST_CASES="${PROPTEST_CASES:-4}" MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}" \
    cargo +nightly miri test -p lrukit-array-lru
fi
