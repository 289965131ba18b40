//! Throughput of the two engines (and moka as a reference) on 1M flows:
//! insert, touch, get with 1 and 2 threads, and steady-state
//! `expire(now, 1000)` at 10k and 1M flows.
//!
//! Short run (see BENCH.md):
//! `cargo bench -p lrukit-flow-table --bench flow -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{
  criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use lrukit_flow_table::{new_engine, Config, EngineKind, FlowEngine, ManualClock};

mod common;
use common::{keys, lookups};

const FLOWS: u64 = 1_000_000;
/// Lookups per measured iteration in the touch/get groups.
const BATCH: usize = 100_000;
const TIMEOUT_MS: u64 = 3_600_000;

type Table = Arc<dyn FlowEngine<u64, u64>>;

fn engine(kind: EngineKind, timeout: u64) -> (Table, Arc<ManualClock>) {
  let clock = Arc::new(ManualClock::new(1_000));
  let t = new_engine::<u64, u64>(kind, Config::new(timeout), clock.clone());
  (Arc::from(t), clock)
}

fn moka_cache() -> moka::sync::Cache<u64, u64> {
  moka::sync::Cache::builder()
    .time_to_idle(Duration::from_millis(TIMEOUT_MS))
    .build()
}

/// Runs `f(thread_index, chunk)` on `threads` threads over `items` split in
/// equal chunks; returns the wall time from a common start.
fn parallel<T: Sync>(threads: usize, items: &[T], f: impl Fn(&[T]) + Sync) -> Duration {
  if threads == 1 {
    let start = Instant::now();
    f(items);
    return start.elapsed();
  }
  let barrier = Barrier::new(threads + 1);
  let chunk = items.len().div_ceil(threads);
  thread::scope(|s| {
    for part in items.chunks(chunk) {
      let (barrier, f) = (&barrier, &f);
      s.spawn(move || {
        barrier.wait();
        f(part);
      });
    }
    barrier.wait();
    let start = Instant::now();
    // Scope end joins the workers.
    start
  })
  .elapsed()
}

enum Subject {
  Engine(Table),
  Moka(moka::sync::Cache<u64, u64>),
}

const SUBJECTS: [&str; 3] = ["dashmap", "wheel", "moka"];
/// The subjects with batch calls (moka has none).
const ENGINES: [&str; 2] = ["dashmap", "wheel"];

fn engine_of(s: &Subject) -> &Table {
  match s {
    Subject::Engine(t) => t,
    Subject::Moka(_) => unreachable!("moka has no batch calls"),
  }
}

fn subject(name: &str) -> Subject {
  match name {
    "dashmap" => Subject::Engine(engine(EngineKind::DashMap, TIMEOUT_MS).0),
    "wheel" => Subject::Engine(engine(EngineKind::Wheel, TIMEOUT_MS).0),
    _ => Subject::Moka(moka_cache()),
  }
}

fn fill(s: &Subject, keys: &[u64]) {
  match s {
    Subject::Engine(t) => {
      for &k in keys {
        t.insert(k, k, None).unwrap();
      }
    }
    Subject::Moka(c) => {
      for &k in keys {
        c.insert(k, k);
      }
      c.run_pending_tasks();
    }
  }
}

/// Builds a 1M-flow table from empty per iteration, `op` inserting each
/// thread's part of the keys (the table's drop is not timed).
fn bench_build(c: &mut Criterion, group: &str, subjects: &[&str], op: fn(&Subject, &[u64])) {
  let keys = keys(FLOWS as usize);
  let mut g = c.benchmark_group(group);
  g.sample_size(10).sampling_mode(SamplingMode::Flat);
  g.throughput(Throughput::Elements(FLOWS));
  for threads in [1usize, 2] {
    for &name in subjects {
      g.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
        b.iter_custom(|iters| {
          let mut total = Duration::ZERO;
          for _ in 0..iters {
            let s = subject(name);
            total += parallel(threads, &keys, |part| op(&s, part));
            drop(s); // untimed
          }
          total
        })
      });
    }
  }
  g.finish();
}

fn bench_insert(c: &mut Criterion) {
  bench_build(c, "insert_1M", &SUBJECTS, |s, part| match s {
    Subject::Engine(t) => {
      for &k in part {
        t.insert(k, k, None).unwrap();
      }
    }
    Subject::Moka(m) => {
      for &k in part {
        m.insert(k, k);
      }
    }
  });
}

/// `insert_1M` through `insert_many` in calls of 256 pairs; the dashmap
/// engine uses the trait's default (one `insert` per pair).
fn bench_insert_many(c: &mut Criterion) {
  bench_build(c, "insert_many_1M", &ENGINES, |s, part| {
    for chunk in part.chunks(256) {
      engine_of(s)
        .insert_many(chunk.iter().map(|&k| (k, k)).collect(), None)
        .unwrap();
    }
  });
}

/// `BATCH` lookups of present keys in a 1M-flow table, `op` running each
/// thread's part of the sample (asserting every key was found).
fn bench_lookup(c: &mut Criterion, group: &str, subjects: &[&str], op: fn(&Subject, &[u64])) {
  let keys = keys(FLOWS as usize);
  let sample = lookups(&keys, BATCH);
  let mut g = c.benchmark_group(group);
  g.throughput(Throughput::Elements(BATCH as u64));
  for &name in subjects {
    let s = subject(name);
    fill(&s, &keys);
    for threads in [1usize, 2] {
      g.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
        b.iter_custom(|iters| {
          let mut total = Duration::ZERO;
          for _ in 0..iters {
            total += parallel(threads, &sample, |part| op(&s, part));
          }
          total
        })
      });
    }
  }
  g.finish();
}

fn bench_touch(c: &mut Criterion) {
  bench_lookup(c, "touch_1M", &SUBJECTS, |s, part| {
    for &k in part {
      assert!(black_box(match s {
        Subject::Engine(t) => t.touch(&k),
        // moka has no separate touch: a read refreshes time-to-idle.
        Subject::Moka(m) => m.get(&k).is_some(),
      }));
    }
  });
}

/// `touch_many` in calls of 256 keys (what a binding's batch call would
/// pass), same sample as `touch_1M`; the dashmap engine uses the trait's
/// default (one `touch` per key).
fn bench_touch_many(c: &mut Criterion) {
  bench_lookup(c, "touch_many_1M", &ENGINES, |s, part| {
    let mut out = Vec::with_capacity(256);
    for chunk in part.chunks(256) {
      engine_of(s).touch_many(chunk, &mut out);
      assert!(black_box(&out).iter().all(|&x| x));
    }
  });
}

fn bench_get(c: &mut Criterion) {
  bench_lookup(c, "get_1M", &SUBJECTS, |s, part| {
    for &k in part {
      assert!(black_box(match s {
        Subject::Engine(t) => t.get(&k).is_some(),
        Subject::Moka(m) => m.get(&k).is_some(),
      }));
    }
  });
}

/// A table in steady state: `n` flows with timeout `n / 1000` ms; every
/// millisecond ("tick") 1000 new flows arrive and `expire(now, 1000)` reaps
/// the 1000 that arrived a timeout ago. With `touched`, every other flow is
/// touched once half-way through its life, so half of the queue elements
/// that come due are re-armed (and those flows live 1.5 timeouts).
struct Steady {
  t: Table,
  clock: Arc<ManualClock>,
  n: u64,
  touched: bool,
  next_key: u64,
  tick: u64,
}

impl Steady {
  fn new(kind: EngineKind, n: u64, touched: bool) -> Self {
    let (t, clock) = engine(kind, n / 1000);
    let mut s = Steady {
      t,
      clock,
      n,
      touched,
      next_key: 0,
      tick: 1_000,
    };
    // Fill to n flows, then run a timeout's worth of steady state (so the
    // touched variant reaches its equilibrium).
    for _ in 0..n / 1000 {
      s.advance();
      s.arrive();
      s.touch();
    }
    for _ in 0..n / 1000 {
      s.advance();
      s.arrive();
      s.touch();
      s.t.expire(s.tick, 1000);
    }
    s
  }

  fn advance(&mut self) {
    self.tick += 1;
    self.clock.set(self.tick);
  }

  fn key(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
  }

  fn arrive(&mut self) {
    for _ in 0..1000 {
      self
        .t
        .insert(Self::key(self.next_key), self.next_key, None)
        .unwrap();
      self.next_key += 1;
    }
  }

  fn touch(&mut self) {
    if self.touched && self.next_key >= self.n / 2 + 1000 {
      // The flows that arrived half a timeout ago; every other one.
      let first = self.next_key - 1000 - self.n / 2;
      for i in (first..first + 1000).step_by(2) {
        self.t.touch(&Self::key(i));
      }
    }
  }

  fn check(&self) {
    // Touched flows live 1.5 timeouts, so that variant holds 1.25 n.
    let expected = if self.touched {
      self.n + self.n / 4
    } else {
      self.n
    };
    let len = self.t.len() as u64;
    assert!(
      len.abs_diff(expected) <= 2000,
      "steady state holds ~{expected} flows: {len}"
    );
  }
}

/// `expire(now, 1000)` in steady state (timed), at 10k and 1M flows.
fn bench_expire(c: &mut Criterion) {
  let mut g = c.benchmark_group("expire_1000");
  g.throughput(Throughput::Elements(1000));
  for (label, n, touched) in [
    ("10k", 10_000u64, false),
    ("1M", FLOWS, false),
    ("1M_half_touched", FLOWS, true),
  ] {
    for (name, kind) in [
      ("dashmap", EngineKind::DashMap),
      ("wheel", EngineKind::Wheel),
    ] {
      let mut s = Steady::new(kind, n, touched);
      g.bench_function(BenchmarkId::new(name, label), |b| {
        b.iter_custom(|iters| {
          let mut total = Duration::ZERO;
          for _ in 0..iters {
            s.advance();
            s.arrive();
            s.touch();
            let start = Instant::now();
            let out = black_box(s.t.expire(s.tick, 1000));
            total += start.elapsed();
            assert_eq!(out.len(), 1000);
          }
          total
        })
      });
      s.check();
    }
  }
  g.finish();
}

/// Inserting new flows into a table that holds 1M flows in steady state
/// (the timed part is the 1000 inserts of one tick; the expire is not
/// timed). No growth: freed entries are reused.
fn bench_insert_steady(c: &mut Criterion) {
  let mut g = c.benchmark_group("insert_steady_1M");
  g.throughput(Throughput::Elements(1000));
  for (name, kind) in [
    ("dashmap", EngineKind::DashMap),
    ("wheel", EngineKind::Wheel),
  ] {
    let mut s = Steady::new(kind, FLOWS, false);
    g.bench_function(BenchmarkId::new(name, "1t"), |b| {
      b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
          s.advance();
          let start = Instant::now();
          s.arrive();
          total += start.elapsed();
          black_box(s.t.expire(s.tick, 1000));
        }
        total
      })
    });
    s.check();
  }
  g.finish();
}

criterion_group!(
  benches,
  bench_insert,
  bench_insert_many,
  bench_insert_steady,
  bench_touch,
  bench_touch_many,
  bench_get,
  bench_expire
);
criterion_main!(benches);
