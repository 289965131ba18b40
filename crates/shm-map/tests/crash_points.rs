//! Crash at every shared store.
//!
//! For every kind of operation that writes the map — insert, replace, `add`,
//! `incr` (in place and fresh), `compare_and_set`, `delete`, LRU eviction,
//! expiry on access, `evict_older_than`, `purge_expired`, `clear`, and
//! `repair` itself — the test first counts the stores the operation makes to
//! map memory (`debug_count_stores`: every atomic store, add or CAS on a map
//! word), N. Then, for every k in 0..N, it builds the same map again, forks,
//! and the child runs the operation with the hook armed to SIGKILL it just
//! before store k. The parent reaps the child and recovers the map as any
//! process would (the next locker repairs the shard), then checks against a
//! model:
//!
//! * `verify()` is ok (chains, LRU list, free list, `len`, hashes agree);
//! * every key holds its value from before the operation or from after it
//!   (the operation in flight was not acknowledged, so either is right); a
//!   key the operation does not touch keeps its value — no acknowledged
//!   write is lost, nothing resurrects.
//!
//! Hash seed, clock and options are fixed, so the store sequence is the same
//! in every run; a child that finishes instead of dying at store k < N fails
//! the test. Runs with both lock kinds (`--features lease-lock`); the robust
//! mutex recovers through `EOWNERDEAD`, the lease lock through the dead
//! child's pid (computed in the child after `fork`).
//!
//! One `#[test]` in this binary: `fork` happens with no other test threads.
#![cfg(target_os = "linux")]

mod common;
use common::Name;
use lrukit_shm_map::{
  debug_count_stores, debug_stop_counting, Eviction, Options, SharedMap, Value, ValueRef,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const T0: u64 = 1_700_000_000_000;

fn options(eviction: Eviction) -> Options {
  Options {
    capacity: Some(16),
    shards: Some(2),
    max_key_bytes: 16,
    max_value_bytes: 24,
    eviction,
    hash_seed: Some(0x005e_ed0f_c4a5),
    lock_timeout: Duration::from_secs(5),
    ..Options::default()
  }
}

type Snapshot = BTreeMap<Vec<u8>, Value>;

fn snapshot(m: &SharedMap) -> Snapshot {
  m.entries().unwrap().into_iter().collect()
}

fn key(i: u32) -> Vec<u8> {
  format!("k{i}").into_bytes()
}

fn fill(m: &SharedMap, n: u32) {
  for i in 0..n {
    let v = format!("value-{i}");
    m.set(&key(i), ValueRef::String(v.as_bytes()), None)
      .unwrap();
  }
}

struct Scenario {
  name: &'static str,
  eviction: Eviction,
  setup: fn(&SharedMap),
  op: fn(&SharedMap),
}

fn scenarios() -> Vec<Scenario> {
  vec![
    Scenario {
      name: "insert",
      eviction: Eviction::None,
      setup: |m| fill(m, 5),
      op: |m| {
        m.set(b"new", ValueRef::String(b"fresh value"), None)
          .unwrap()
      },
    },
    Scenario {
      name: "replace",
      eviction: Eviction::None,
      setup: |m| fill(m, 5),
      op: |m| m.set(&key(2), ValueRef::Bytes(b"replaced!"), None).unwrap(),
    },
    Scenario {
      name: "add",
      eviction: Eviction::None,
      setup: |m| fill(m, 5),
      op: |m| {
        assert!(m
          .add(b"added", ValueRef::Number(7.5), Some(60_000))
          .unwrap());
      },
    },
    Scenario {
      name: "incr in place",
      eviction: Eviction::None,
      setup: |m| {
        fill(m, 4);
        m.set(b"n", ValueRef::Number(40.0), None).unwrap();
      },
      op: |m| assert_eq!(m.incr(b"n", 2.0, 0.0, None).unwrap(), 42.0),
    },
    Scenario {
      name: "incr fresh",
      eviction: Eviction::None,
      setup: |m| fill(m, 4),
      op: |m| assert_eq!(m.incr(b"n", 2.0, 5.0, None).unwrap(), 7.0),
    },
    Scenario {
      name: "compare_and_set",
      eviction: Eviction::None,
      setup: |m| fill(m, 5),
      op: |m| {
        assert!(m
          .compare_and_set(&key(1), ValueRef::String(b"value-1"), ValueRef::BigInt(-9))
          .unwrap())
      },
    },
    Scenario {
      name: "delete",
      eviction: Eviction::None,
      setup: |m| fill(m, 5),
      op: |m| assert!(m.delete(&key(3)).unwrap()),
    },
    Scenario {
      name: "lru eviction",
      eviction: Eviction::Lru,
      // More keys than the capacity: both shards full.
      setup: |m| fill(m, 30),
      op: |m| m.set(b"evictor", ValueRef::Bool(true), None).unwrap(),
    },
    Scenario {
      name: "expiry on access",
      eviction: Eviction::None,
      setup: |m| {
        fill(m, 4);
        m.set(b"ttl", ValueRef::Null, Some(10)).unwrap();
        m.debug_advance_clock(100);
      },
      op: |m| assert_eq!(m.get(b"ttl").unwrap(), None),
    },
    Scenario {
      name: "evict_older_than",
      eviction: Eviction::None,
      setup: |m| {
        for i in 0..8 {
          m.set(&key(i), ValueRef::Number(i as f64), None).unwrap();
          m.debug_advance_clock(1_000);
        }
      },
      op: |m| assert_eq!(m.evict_older_than(T0 + 5_500, Some(4)).unwrap(), 4),
    },
    Scenario {
      name: "purge_expired",
      eviction: Eviction::None,
      setup: |m| {
        fill(m, 3);
        for i in 10..16 {
          m.set(&key(i), ValueRef::Null, Some(50)).unwrap();
        }
        m.debug_advance_clock(100);
      },
      op: |m| assert_eq!(m.purge_expired().unwrap(), 6),
    },
    Scenario {
      name: "clear",
      eviction: Eviction::None,
      setup: |m| fill(m, 9),
      op: |m| m.clear().unwrap(),
    },
    Scenario {
      name: "repair",
      eviction: Eviction::Lru,
      setup: |m| {
        fill(m, 9);
        m.set(&key(4), ValueRef::String(b"newer"), None).unwrap();
      },
      op: |m| m.repair().unwrap(),
    },
  ]
}

/// A fresh map named `name` in the scenario's starting state, its clock
/// fixed.
fn build(name: &str, sc: &Scenario) -> SharedMap {
  let _ = SharedMap::unlink(name);
  let m = SharedMap::create(name, &options(sc.eviction)).unwrap();
  m.debug_set_clock(Some(T0));
  (sc.setup)(&m);
  m
}

/// Runs `op` in a forked child that dies before store `kill_at`. Returns
/// whether the child was killed (`false`: it finished).
fn run_child(m: &SharedMap, op: fn(&SharedMap), kill_at: u64) -> bool {
  // SAFETY: the only other thread of this test binary is the harness's
  // main thread, blocked waiting for this test; the child runs the map
  // operation (no locks of this process are held by anyone at the fork)
  // and leaves with `_exit`.
  let pid = unsafe { libc::fork() };
  assert!(pid >= 0, "fork failed");
  if pid == 0 {
    debug_count_stores(Some(kill_at));
    op(m);
    debug_stop_counting();
    // SAFETY: ends the child without running the parent's atexit handlers.
    unsafe { libc::_exit(0) };
  }
  let start = Instant::now();
  let mut status = 0;
  loop {
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r == pid {
      break;
    }
    assert_eq!(r, 0, "waitpid failed");
    if start.elapsed() > Duration::from_secs(20) {
      // SAFETY: kills and reaps our own child.
      unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, 0);
      }
      panic!("child running the operation with kill_at={kill_at} hung");
    }
    std::thread::sleep(Duration::from_micros(200));
  }
  if libc::WIFSIGNALED(status) {
    assert_eq!(libc::WTERMSIG(status), libc::SIGKILL);
    true
  } else {
    assert_eq!(
      libc::WEXITSTATUS(status),
      0,
      "child failed (kill_at={kill_at})"
    );
    false
  }
}

fn show(v: Option<&Value>) -> String {
  match v {
    None => "absent".into(),
    Some(v) => format!("{v:?}"),
  }
}

#[test]
fn a_crash_at_every_store_of_every_operation_loses_no_acknowledged_write() {
  let name = Name::new("points");
  let mut total_points = 0u64;
  let mut report = Vec::new();
  for sc in scenarios() {
    // Count the stores, and learn the state after the operation.
    let m = build(&name, &sc);
    let before = snapshot(&m);
    debug_count_stores(None);
    (sc.op)(&m);
    let n = debug_stop_counting();
    let after = snapshot(&m);
    assert!(m.verify().ok, "{}: verify after a clean run", sc.name);
    assert!(n > 0, "{}: the operation stores something", sc.name);
    drop(m);
    let keys: Vec<Vec<u8>> = before.keys().chain(after.keys()).cloned().collect();
    let mut recoveries = 0;
    for k in 0..n {
      let m = build(&name, &sc);
      assert_eq!(snapshot(&m), before, "{}: setup is deterministic", sc.name);
      assert!(
        run_child(&m, sc.op, k),
        "{}: the child finished before store {k} of {n} (the store sequence changed)",
        sc.name
      );
      // Recovery: the next locker of each shard repairs it.
      let r = m.verify();
      assert!(
        r.ok,
        "{} killed at store {k}/{n}: {:?}",
        sc.name, r.problems
      );
      let got = snapshot(&m);
      for key in &keys {
        let g = got.get(key);
        assert!(
          g == before.get(key) || g == after.get(key),
          "{} killed at store {k}/{n}: key {:?} is {}, expected {} (before) or {} (after)",
          sc.name,
          String::from_utf8_lossy(key),
          show(g),
          show(before.get(key)),
          show(after.get(key)),
        );
      }
      assert!(
        got
          .keys()
          .all(|k| before.contains_key(k) || after.contains_key(k)),
        "{} killed at store {k}/{n}: a key from nowhere: {got:?}",
        sc.name
      );
      // Usable afterwards: a write and a read go through.
      m.set(b"probe", ValueRef::Number(k as f64), None).unwrap();
      assert_eq!(m.get(b"probe").unwrap(), Some(Value::Number(k as f64)));
      recoveries += m.stats().lock_recoveries;
    }
    // The last store (k = n) is past the operation: it completes.
    let m = build(&name, &sc);
    assert!(
      !run_child(&m, sc.op, n),
      "{}: completes with kill_at = n",
      sc.name
    );
    assert_eq!(snapshot(&m), after, "{}: completed in the child", sc.name);
    total_points += n;
    report.push(format!(
      "{}: {n} stores, {recoveries} lock recoveries",
      sc.name
    ));
  }
  eprintln!(
    "crash points: {total_points} in {} operations\n  {}",
    report.len(),
    report.join("\n  ")
  );
}
