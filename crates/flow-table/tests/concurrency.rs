//! Four threads on one table (three mutating overlapping keys, one expiring
//! and moving the clock), then exact accounting: every inserted value leaves
//! the table exactly once (replaced/reaped/evicted by an insert, removed,
//! expired, or drained at the end). A watchdog turns a deadlock into a
//! failure.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use lrukit_flow_table::{
  new_engine, Clock, Config, EngineKind, FlowEngine, Full, InsertError, Inserted, ManualClock,
};

const KEYS: u64 = 64;
const OPS_PER_WORKER: usize = 20_000;

struct Rng(u64);
impl Rng {
  fn next(&mut self) -> u64 {
    // xorshift64*
    self.0 ^= self.0 >> 12;
    self.0 ^= self.0 << 25;
    self.0 ^= self.0 >> 27;
    self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
  }
}

fn collect(out: &Inserted<u64, u64>, gone: &mut Vec<u64>) {
  gone.extend(out.replaced);
  gone.extend(out.expired.as_ref().map(|e| e.value));
  gone.extend(out.evicted.as_ref().map(|e| e.entry.value));
}

fn hammer(kind: EngineKind, config: Config) {
  let clock = Arc::new(ManualClock::new(0));
  let t: Arc<dyn FlowEngine<u64, u64>> =
    Arc::from(new_engine::<u64, u64>(kind, config.clone(), clock.clone()));
  let next_id = Arc::new(AtomicU64::new(1));
  let done = Arc::new(AtomicBool::new(false));
  let barrier = Arc::new(Barrier::new(4));

  let mut workers = Vec::new();
  for w in 0..3u64 {
    let (t, next_id, barrier) = (t.clone(), next_id.clone(), barrier.clone());
    workers.push(thread::spawn(move || {
      let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
      let (mut inserted, mut gone) = (Vec::new(), Vec::new());
      barrier.wait();
      for _ in 0..OPS_PER_WORKER {
        let r = rng.next();
        let key = r % KEYS;
        match (r >> 8) % 10 {
          0..=3 => {
            // value = id * KEYS + key, so reads can check key/value pairing.
            let value = next_id.fetch_add(1, Ordering::Relaxed) * KEYS + key;
            let timeout = Some(1 + (r >> 16) % 20);
            match t.insert_full(key, value, timeout) {
              Ok(out) => {
                inserted.push(value);
                collect(&out, &mut gone);
              }
              Err(InsertError::Full) => {}
            }
          }
          4..=5 => {
            t.touch(&key);
          }
          6 => {
            if let Some(v) = t.get_and_touch(&key) {
              assert_eq!(v % KEYS, key);
            }
          }
          7..=8 => {
            if let Some(v) = t.get(&key) {
              assert_eq!(v % KEYS, key);
            }
            t.contains(&key);
          }
          _ => gone.extend(t.remove(&key)),
        }
      }
      (inserted, gone)
    }));
  }
  let expirer = {
    let (t, clock, done, barrier) = (t.clone(), clock.clone(), done.clone(), barrier.clone());
    thread::spawn(move || {
      let mut gone = Vec::new();
      barrier.wait();
      let mut rounds = 0u64;
      while !done.load(Ordering::Acquire) {
        let now = clock.advance(1);
        for e in t.expire(now, 16) {
          assert!(e.last_seen <= now);
          assert_eq!(e.value % KEYS, e.key);
          gone.push(e.value);
        }
        rounds += 1;
        if rounds.is_multiple_of(64) {
          // Exercise the other readers of shared state concurrently.
          t.len();
          t.next_due();
          t.for_each(&mut |k, v, _| assert_eq!(v % KEYS, *k));
        }
        thread::yield_now();
      }
      gone
    })
  };

  let mut inserted = Vec::new();
  let mut gone = Vec::new();
  for w in workers {
    let (i, g) = w.join().expect("worker panicked");
    inserted.extend(i);
    gone.extend(g);
  }
  done.store(true, Ordering::Release);
  gone.extend(expirer.join().expect("expirer panicked"));

  if let Some(cap) = config.capacity {
    assert!(t.len() <= cap, "len {} > capacity {cap}", t.len());
  }
  // Drain: every remaining entry has a finite deadline.
  let far = clock.now() + 1_000_000;
  clock.set(far);
  let mut present = HashSet::new();
  t.for_each(&mut |_, _, _| panic!("nothing is live at {far}"));
  for e in t.expire(far, usize::MAX) {
    present.insert(e.value);
    gone.push(e.value);
  }
  assert_eq!(t.len(), 0, "drained");

  let inserted_set: HashSet<u64> = inserted.iter().copied().collect();
  assert_eq!(inserted_set.len(), inserted.len(), "ids are unique");
  let mut seen = HashSet::new();
  for v in &gone {
    assert!(seen.insert(*v), "value {v} left the table twice");
    assert!(inserted_set.contains(v), "value {v} was never inserted");
  }
  assert_eq!(
    seen.len(),
    inserted_set.len(),
    "some inserted values vanished without a report"
  );
  assert!(inserted.len() > 10_000);
  let s = t.stats();
  assert!(s.expired > 0, "{s:?}");
}

/// Runs `f` on a thread and fails if it does not finish in time.
fn with_watchdog(name: &str, f: impl FnOnce() + Send + 'static) {
  let (tx, rx) = mpsc::channel();
  let h = thread::spawn(move || {
    f();
    let _ = tx.send(());
  });
  match rx.recv_timeout(Duration::from_secs(60)) {
    Ok(()) => h.join().unwrap(),
    Err(mpsc::RecvTimeoutError::Disconnected) => {
      if let Err(e) = h.join() {
        std::panic::resume_unwind(e);
      }
    }
    Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name}: no progress in 60 s (deadlock?)"),
  }
}

macro_rules! hammer_tests {
  ($($name:ident: $kind:expr, $config:expr;)*) => {
    $(#[test] fn $name() { with_watchdog(stringify!($name), || hammer($kind, $config)); })*
  };
}

hammer_tests! {
  dashmap_unbounded: EngineKind::DashMap, Config::new(10);
  wheel_unbounded: EngineKind::Wheel, Config::new(10);
  dashmap_evict: EngineKind::DashMap, Config::new(10).with_capacity(24, Full::EvictLongestIdle);
  wheel_evict: EngineKind::Wheel, Config::new(10).with_capacity(24, Full::EvictLongestIdle);
  dashmap_refuse: EngineKind::DashMap, Config::new(10).with_capacity(24, Full::Refuse);
  wheel_refuse: EngineKind::Wheel, Config::new(10).with_capacity(24, Full::Refuse);
  wheel_one_shard_evict: EngineKind::Wheel, Config::new(10).with_capacity(8, Full::EvictLongestIdle).with_shards(1);
  dashmap_two_shards_evict: EngineKind::DashMap, Config::new(10).with_capacity(8, Full::EvictLongestIdle).with_shards(2);
}
