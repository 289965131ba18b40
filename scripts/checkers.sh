#!/usr/bin/env bash
# Fuzzing and dynamic checkers for the Rust crates, then a summary of figures:
#
#   fuzz  cargo fuzz: shm-map's header, image_ops and model_diff targets, each
#         FUZZ_SECONDS (default 20) with release + debug assertions, under
#         libFuzzer's AddressSanitizer build; seeds from
#         crates/shm-map/fuzz/seeds/<target>, the growing corpus in
#         crates/shm-map/fuzz/corpus/<target> (git-ignored).
#   miri  Miri over shm-map's in-memory suite (tests/in_memory.rs, lease lock)
#         and array-lru's tests (all but the proptest model and one test that
#         fills 1 MiB).
#   asan  AddressSanitizer over the shm-map (both lock kinds) and array-lru
#         test suites (std rebuilt with the sanitizer: -Zbuild-std).
#   tsan  ThreadSanitizer over the multi-threaded tests: shm-map's in_memory
#         and hostile suites, flow-table's tests/concurrency.rs.
#
# CHECKERS="fuzz miri" picks parts (default: all four). Installs what it
# needs: the nightly toolchain's miri and rust-src components (rustup), and
# cargo-fuzz (cargo install --locked) when missing. Sanitizer builds go to
# target/checkers-<name>, so they never invalidate the normal build.
#
# One heavy job at a time: every part runs alone, one fuzzer process, one
# job per test binary where the sanitizer makes threads expensive.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

FUZZ_SECONDS=${FUZZ_SECONDS:-20}
PARTS=${CHECKERS:-fuzz miri asan tsan}
host=$(rustc -vV | sed -n 's/^host: //p')

summary=()
note() { summary+=("$(printf '%-46s %s' "$1" "$2")"); }
# timed NAME CMD...: runs CMD, records its wall time (and failure).
timed() {
  local name=$1 t0=$SECONDS rc=0
  shift
  echo
  echo "=== $name"
  "$@" || rc=$?
  if [[ $rc -eq 0 ]]; then
    note "$name" "ok      $((SECONDS - t0)) s"
  else
    note "$name" "FAILED  $((SECONDS - t0)) s (exit $rc)"
    failed=1
  fi
}
failed=0

has_part() { [[ " $PARTS " == *" $1 "* ]]; }

# A part whose tools cannot be installed here is skipped visibly (SKIP with
# the reason, in the summary too), never passed silently.
skip_part() {
  echo "SKIP $1: $2" >&2
  note "$1" "SKIPPED ($2)"
  PARTS=" ${PARTS} "
  PARTS=${PARTS// $1 / }
}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  for p in fuzz miri asan tsan; do
    has_part "$p" && skip_part "$p" "no nightly toolchain"
  done
fi
if has_part miri && ! rustup component add --toolchain nightly miri rust-src >/dev/null; then
  skip_part miri "rustup could not install the nightly miri component"
fi
if { has_part asan || has_part tsan; } && ! rustup component add --toolchain nightly rust-src >/dev/null; then
  has_part asan && skip_part asan "rustup could not install nightly rust-src"
  has_part tsan && skip_part tsan "rustup could not install nightly rust-src"
fi
if has_part fuzz && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked || skip_part fuzz "cargo install cargo-fuzz failed"
fi

# ---- fuzz --------------------------------------------------------------------
fuzz_one() {
  local t=$1 dir=$root/crates/shm-map/fuzz
  mkdir -p "$dir/corpus/$t" "$dir/seeds/$t"
  local log
  log=$(mktemp)
  # -timeout: one input running 10 s is a hang; -rss_limit_mb: a leak.
  (cd "$dir" && cargo +nightly fuzz run -O --debug-assertions "$t" \
    "corpus/$t" "seeds/$t" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1) 2>&1 | tee "$log" | grep -E '^(#[0-9]+ +(INITED|DONE|pulse))|ERROR|panicked|SUMMARY' || true
  local rc=${PIPESTATUS[0]}
  local execs
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  note "  $t executions" "${execs:-?}"
  rm -f "$log"
  return "$rc"
}

if has_part fuzz; then
  timed "fuzz: build" bash -c "cd crates/shm-map/fuzz && cargo +nightly fuzz build -O --debug-assertions"
  for t in header image_ops model_diff; do
    timed "fuzz: $t (${FUZZ_SECONDS} s)" fuzz_one "$t"
  done
fi

# ---- miri --------------------------------------------------------------------
if has_part miri; then
  # The lease lock computes its owner word from /proc/<pid>/stat (and
  # liveness checks read /proc): Miri's isolation forbids file access, hence
  # -Zmiri-disable-isolation. Everything else (shm_open, fork) stays out of
  # the in-memory suite. -Zmiri-disable-weak-memory-emulation: the damage
  # tests write single bytes (debug_corrupt) into words other accesses load
  # as u32/u64; Miri's store-buffer emulation cannot model mixed-size
  # atomics (it panics: "partially overlapping store buffer"). Data-race
  # detection stays on.
  timed "miri: shm-map in_memory (lease lock)" \
    env MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-disable-weak-memory-emulation" \
    cargo +nightly miri test -p lrukit-shm-map --features lease-lock --test in_memory
  # array-lru: its unit tests and the api, drop_safety and alloc_failure
  # suites (~5 min). Left out under Miri: tests/model.rs (proptest; 4 cases
  # still take > 10 min) and the alloc_failure test that grows a table to
  # the 1 MiB allocator limit (minutes of interpreted memset).
  [[ "${MIRI_ARRAY_LRU:-1}" == 1 ]] && timed "miri: array-lru" env MIRIFLAGS="-Zmiri-disable-isolation" \
    cargo +nightly miri test -p lrukit-array-lru --lib --test api --test drop_safety \
    --test alloc_failure -- --skip timed_lru_try_insert_reports_a_failed_growth
fi

# ---- sanitizers ---------------------------------------------------------------
san() {
  local which=$1
  shift
  env RUSTFLAGS="-Zsanitizer=$which" RUSTDOCFLAGS="-Zsanitizer=$which" \
    CARGO_TARGET_DIR="$root/target/checkers-$which" \
    cargo +nightly test -Zbuild-std --target "$host" "$@"
}

if has_part asan; then
  # allocator_may_return_null: array-lru's tests ask for allocations no
  # address space can hold and expect an error, not an abort (ASan's
  # default is to abort on a request over its maximum size).
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
  # The fork-heavy suites (crash, crash_points, faults) stay out of the
  # short version: SHM_SUITES overrides.
  local_suites=${SHM_SUITES:---lib --test api --test in_memory --test hostile --test model --test multiprocess --test fixes}
  # shellcheck disable=SC2086
  timed "asan: shm-map (robust mutex)" san address -p lrukit-shm-map $local_suites
  # shellcheck disable=SC2086
  timed "asan: shm-map (lease lock)" san address -p lrukit-shm-map --features lease-lock $local_suites
  timed "asan: array-lru" san address -p lrukit-array-lru --tests
fi

if has_part tsan; then
  # Suppressions with reasons: scripts/tsan.supp.
  export TSAN_OPTIONS="${TSAN_OPTIONS:-} suppressions=$root/scripts/tsan.supp halt_on_error=1 second_deadlock_stack=1"
  timed "tsan: shm-map in_memory+hostile+api (robust)" san thread -p lrukit-shm-map \
    --test in_memory --test hostile --test api
  timed "tsan: shm-map in_memory+hostile+api (lease)" san thread -p lrukit-shm-map \
    --features lease-lock --test in_memory --test hostile --test api
  timed "tsan: flow-table concurrency" san thread -p lrukit-flow-table --test concurrency
fi

echo
echo "=== checkers summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
