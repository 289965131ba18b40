//! Where a single-key `touch` spends its time at 1M flows: the engines'
//! `touch` beside stand-ins that do only parts of its work, on the same
//! 100k pseudo-random lookups as `flow.rs`'s `touch_1M` (1 thread):
//!
//! * `hash`: foldhash of the key (both engines hash with it);
//! * `hash_lock`: + a shard `RwLock` read lock and unlock (8 shards, as
//!   the tables have on this 2-core machine), no table memory touched;
//! * `load_1`: + one random 40-byte slot read of a 1M-slot array, the
//!   address known from the hash (1 cache miss, independent of the last op);
//! * `chase_2`: + chain head (a 2M-entry `u32` array) then the slot it names,
//!   key compared, `last_seen` stored: the wheel's lookup shape (2 dependent
//!   misses);
//! * `chase_3`: + control byte, then a 16-byte bucket (key, pointer), then
//!   the heap entry it points to, `last_seen` stored: the dashmap engine's
//!   shape (hashbrown bucket, then the `Arc<Entry>`; 3 dependent misses);
//! * `wheel`, `dashmap`: the engines' `touch`.
//!
//! `cargo bench -p lrukit-flow-table --bench anatomy -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use foldhash::fast::RandomState;
use lrukit_flow_table::{new_engine, Config, EngineKind, FlowEngine, ManualClock};
use parking_lot::RwLock;
use std::hash::BuildHasher;

mod common;
use common::{keys, lookups};

const FLOWS: usize = 1_000_000;
const BATCH: usize = 100_000;
const SHARDS: usize = 8;

/// A 40-byte slot, as the wheel's `(u64, u64)` slot.
struct Slot {
  last_seen: AtomicU64,
  key: u64,
  _value: u64,
  chain: u32,
  _links: [u32; 3],
}

#[repr(align(128))]
struct Lock(RwLock<()>);

/// A hashbrown-like bucket: key and entry pointer.
struct Bucket {
  key: u64,
  entry: *const Slot,
}

struct Model {
  state: RandomState,
  locks: Vec<Lock>,
  /// Wheel shape: chain heads (load 0.5) into `slots`.
  heads: Vec<u32>,
  slots: Vec<Slot>,
  /// Dashmap shape: control bytes and buckets (load ~0.5), entries boxed.
  ctrl: Vec<u8>,
  buckets: Vec<Bucket>,
  /// One heap block per entry, as `Arc<Entry>`s are (hence the boxes).
  #[allow(clippy::vec_box)]
  _boxes: Vec<Box<Slot>>,
}

fn slot(k: u64) -> Slot {
  Slot {
    last_seen: AtomicU64::new(0),
    key: k,
    _value: k,
    chain: u32::MAX,
    _links: [0; 3],
  }
}

impl Model {
  fn new(keys: &[u64]) -> Self {
    let state = RandomState::default();
    let hmask = (2 * keys.len()).next_power_of_two() - 1;
    let mut heads = vec![u32::MAX; hmask + 1];
    let mut slots: Vec<Slot> = Vec::with_capacity(keys.len());
    let mut ctrl = vec![0u8; hmask + 1];
    let mut buckets: Vec<Bucket> = (0..=hmask)
      .map(|_| Bucket {
        key: 0,
        entry: std::ptr::null(),
      })
      .collect();
    // Heap entries allocated in a shuffled order, as a table filled over
    // time ends up.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let mut x = 0x9E37_79B9u64;
    for i in (1..order.len()).rev() {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let mut boxes: Vec<Box<Slot>> = order.iter().map(|&i| Box::new(slot(keys[i]))).collect();
    let mut by_key: Vec<*const Slot> = vec![std::ptr::null(); keys.len()];
    for (b, &i) in boxes.iter_mut().zip(&order) {
      by_key[i] = &**b;
    }
    for (i, &k) in keys.iter().enumerate() {
      let h = state.hash_one(k) as usize;
      let mut s = slot(k);
      s.chain = heads[h & hmask];
      heads[h & hmask] = i as u32;
      slots.push(s);
      let mut p = h & hmask;
      while ctrl[p] != 0 {
        p = (p + 1) & hmask;
      }
      ctrl[p] = 1 | (h >> 57) as u8;
      buckets[p] = Bucket {
        key: k,
        entry: by_key[i],
      };
    }
    Self {
      state,
      locks: (0..SHARDS).map(|_| Lock(RwLock::new(()))).collect(),
      heads,
      slots,
      ctrl,
      buckets,
      _boxes: boxes,
    }
  }

  #[inline]
  fn hash(&self, k: u64) -> u64 {
    self.state.hash_one(k)
  }

  #[inline]
  fn lock(&self, h: u64) -> parking_lot::RwLockReadGuard<'_, ()> {
    self.locks[((h >> 32) as usize) & (SHARDS - 1)].0.read()
  }

  fn load_1(&self, k: u64) -> bool {
    let h = self.hash(k);
    let _g = self.lock(h);
    let s = &self.slots[(h as usize) % self.slots.len()];
    s.last_seen.load(Ordering::Relaxed) == 0
  }

  fn chase_2(&self, k: u64) -> bool {
    let h = self.hash(k);
    let _g = self.lock(h);
    let mut i = self.heads[h as usize & (self.heads.len() - 1)];
    while i != u32::MAX {
      let s = &self.slots[i as usize];
      if s.key == k {
        s.last_seen.store(1, Ordering::Relaxed);
        return true;
      }
      i = s.chain;
    }
    false
  }

  fn chase_3(&self, k: u64) -> bool {
    let h = self.hash(k);
    let _g = self.lock(h);
    let mask = self.ctrl.len() - 1;
    let tag = 1 | (h >> 57) as u8;
    let mut p = h as usize & mask;
    while self.ctrl[p] != 0 {
      if self.ctrl[p] == tag && self.buckets[p].key == k {
        // SAFETY: `entry` points into `_boxes`, alive as long as `self`.
        let e = unsafe { &*self.buckets[p].entry };
        e.last_seen.store(1, Ordering::Relaxed);
        return true;
      }
      p = (p + 1) & mask;
    }
    false
  }
}

fn engine(kind: EngineKind, keys: &[u64]) -> Arc<dyn FlowEngine<u64, u64>> {
  let clock = Arc::new(ManualClock::new(1_000));
  let t: Arc<dyn FlowEngine<u64, u64>> =
    Arc::from(new_engine::<u64, u64>(kind, Config::new(3_600_000), clock));
  for &k in keys {
    t.insert(k, k, None).unwrap();
  }
  t
}

fn bench_anatomy(c: &mut Criterion) {
  let keys = keys(FLOWS);
  let sample = lookups(&keys, BATCH);
  let model = Model::new(&keys);
  let wheel = engine(EngineKind::Wheel, &keys);
  let dashmap = engine(EngineKind::DashMap, &keys);
  let mut g = c.benchmark_group("touch_anatomy_1M");
  g.throughput(Throughput::Elements(BATCH as u64));
  let mut run = |name: &str, op: &dyn Fn(u64) -> bool| {
    g.bench_function(BenchmarkId::new(name, "1t"), |b| {
      b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
          let start = Instant::now();
          for &k in &sample {
            black_box(op(black_box(k)));
          }
          total += start.elapsed();
        }
        total
      })
    });
  };
  run("hash", &|k| model.hash(k) == 0);
  run("hash_lock", &|k| {
    let h = model.hash(k);
    let g = model.lock(h);
    black_box(&g);
    h == 0
  });
  run("load_1", &|k| model.load_1(k));
  run("chase_2", &|k| model.chase_2(k));
  run("chase_3", &|k| model.chase_3(k));
  run("wheel", &|k| wheel.touch(&k));
  run("dashmap", &|k| dashmap.touch(&k));
  g.finish();
}

criterion_group!(benches, bench_anatomy);
criterion_main!(benches);
