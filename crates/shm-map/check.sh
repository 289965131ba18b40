#!/usr/bin/env bash
# Checks for lrukit-shm-map: formatting, clippy and the tests with both lock
# kinds (the robust pthread mutex, and the owner-pid lease lock that macOS and
# Windows use, forced on Linux with --features lease-lock). ~1 min once built.
#
# LONG=1 also runs the 200-death crash loop with each lock kind.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo fmt -p lrukit-shm-map -- --check
cargo clippy -p lrukit-shm-map --all-targets -- -D warnings
cargo clippy -p lrukit-shm-map --all-targets --features lease-lock -- -D warnings
cargo test -p lrukit-shm-map
cargo test -p lrukit-shm-map --features lease-lock

if [[ "${LONG:-0}" == "1" ]]; then
  LRUKIT_KILLS=200 cargo test -p lrukit-shm-map --test crash -- --nocapture sigkill_loop
  LRUKIT_KILLS=200 cargo test -p lrukit-shm-map --features lease-lock --test crash -- --nocapture sigkill_loop
fi
