//! `expire(now, 1000)` does bounded work that does not grow with the table:
//! counted with the engines' `visited` counter (queue elements examined),
//! not with wall time.

use std::sync::Arc;

use lrukit_flow_table::{new_engine, Config, EngineKind, FlowEngine, ManualClock};

const MAX: usize = 1000;
const CALLS: usize = 3;
/// The documented bound: `max` removals plus `4 * max + 64` re-arms.
const BOUND: u64 = (MAX + 4 * MAX + 64) as u64;

/// Builds a table of `n` flows inserted over one second (timeout 1 s), with
/// every third flow touched at 900 ms, then calls `expire(1500, MAX)` a few
/// times. Returns the `visited` count of each call.
fn work_per_call(kind: EngineKind, n: u64) -> Vec<u64> {
  let clock = Arc::new(ManualClock::new(0));
  let t: Box<dyn FlowEngine<u64, u64>> = new_engine(kind, Config::new(1000), clock.clone());
  for k in 0..n {
    clock.set(k * 1000 / n);
    t.insert(k, k, None).unwrap();
  }
  clock.set(900);
  for k in (0..n).step_by(3) {
    assert!(t.touch(&k));
  }
  clock.set(1500);
  let mut per_call = Vec::new();
  for _ in 0..CALLS {
    let before = t.stats().visited;
    let out = t.expire(1500, MAX);
    assert!(!out.is_empty() && out.len() <= MAX);
    assert!(
      out.iter().all(|e| e.key % 3 != 0),
      "touched flows are re-armed"
    );
    per_call.push(t.stats().visited - before);
  }
  per_call
}

fn check(kind: EngineKind) {
  let small = work_per_call(kind, 10_000);
  let large = work_per_call(kind, 1_000_000);
  eprintln!(
    "{kind:?}: visited per expire(now, {MAX}) call: 10k flows {small:?}, 1M flows {large:?}"
  );
  for v in small.iter().chain(&large) {
    assert!(*v <= BOUND, "{v} > bound {BOUND}");
  }
  let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len() as f64;
  assert!(
    mean(&large) <= 1.5 * mean(&small),
    "work grew with the table: {small:?} -> {large:?}"
  );
}

#[test]
fn wheel_expire_work_is_independent_of_table_size() {
  check(EngineKind::Wheel);
}

#[test]
fn dashmap_expire_work_is_independent_of_table_size() {
  // Heap pops are bounded the same way (each pop is O(log n) time, which
  // this counter does not show).
  check(EngineKind::DashMap);
}

/// Steady state: every millisecond `per_tick` flows arrive and one
/// `expire(now, per_tick)` must reap exactly the flows that are due, while
/// coarse wheel buckets (holding many more entries than one call's re-arm
/// budget) are being cascaded in the background. With `touch`, every other
/// flow is touched half a timeout after it arrived, so half of what comes
/// due at its original deadline is re-armed instead.
fn keeps_up(kind: EngineKind, shards: usize, per_tick: u64, timeout: u64, touch: bool) {
  let clock = Arc::new(ManualClock::new(0));
  let config = Config::new(timeout).with_shards(shards);
  let t: Box<dyn FlowEngine<u64, u64>> = new_engine(kind, config, clock.clone());
  let mut key = 0;
  let warm = if touch { 2 * timeout } else { timeout };
  for tick in 0..warm + 3 * timeout {
    clock.set(tick);
    for _ in 0..per_tick {
      t.insert(key, tick, None).unwrap();
      key += 1;
    }
    if touch && tick >= timeout / 2 {
      let first = (tick - timeout / 2) * per_tick;
      for k in (first..first + per_tick).step_by(2) {
        assert!(t.touch(&k));
      }
    }
    let out = t.expire(tick, per_tick as usize);
    for e in &out {
      // The value is the arrival tick; touched flows last 1.5 timeouts.
      let touched = touch && e.key % 2 == 0;
      let life = if touched {
        timeout + timeout / 2
      } else {
        timeout
      };
      assert_eq!(
        e.value + life,
        tick,
        "key {} reaped at the wrong time",
        e.key
      );
    }
    if tick >= warm {
      assert_eq!(out.len() as u64, per_tick, "tick {tick}");
    }
  }
}

#[test]
fn wheel_expire_keeps_up_in_steady_state() {
  keeps_up(EngineKind::Wheel, 1, 100, 700, false);
  keeps_up(EngineKind::Wheel, 8, 100, 700, false);
  keeps_up(EngineKind::Wheel, 8, 100, 700, true);
  // Long enough to use level-2 (4 s) buckets, across several boundaries.
  keeps_up(EngineKind::Wheel, 4, 4, 20_000, false);
}

#[test]
fn dashmap_expire_keeps_up_in_steady_state() {
  keeps_up(EngineKind::DashMap, 1, 100, 700, false);
  keeps_up(EngineKind::DashMap, 8, 100, 700, true);
}
