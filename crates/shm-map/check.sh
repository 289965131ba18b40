#!/usr/bin/env bash
# Checks for lrukit-shm-map: formatting, clippy and the tests with both lock
# kinds (the robust pthread mutex, and the owner-pid lease lock that macOS and
# Windows use, forced on Linux with --features lease-lock). ~1 min once built.
#
# The tests include the fault campaign (tests/faults.rs) and short crash loops.
# LONG=1 also runs the long crash loop with each lock kind: 8 writers alive at
# once, 8,000 deaths (LRUKIT_WRITERS / LRUKIT_KILLS override; ~15 min each on
# 2 cores). `npm run test:kill` runs the same plus the JavaScript loop.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo fmt -p lrukit-shm-map -- --check
cargo clippy -p lrukit-shm-map --all-targets -- -D warnings
cargo clippy -p lrukit-shm-map --all-targets --features lease-lock -- -D warnings
cargo test -p lrukit-shm-map
cargo test -p lrukit-shm-map --features lease-lock

if [[ "${LONG:-0}" == "1" ]]; then
  export LRUKIT_WRITERS="${LRUKIT_WRITERS:-8}" LRUKIT_KILLS="${LRUKIT_KILLS:-8000}"
  cargo test -p lrukit-shm-map --test crash -- --nocapture sigkill_loop
  cargo test -p lrukit-shm-map --features lease-lock --test crash -- --nocapture sigkill_loop
fi
