//! Side-by-side benchmarks: this crate's `ArrayLru` (inline; boxed for 10k)
//! and `HeapLru` against `const_lru::ConstLru`, `lru::LruCache` and
//! `hashbrown::HashMap`, all hashing with foldhash `FixedState` (const-lru
//! does not hash: it binary-searches a sorted index).
//!
//! Workloads, each on the same keys for every peer:
//! * `insert`: N keys in reverse order into an empty cache of capacity N;
//! * `get`: all N keys (present) in a fixed shuffled order;
//! * `get_lru_order`: all N keys in LRU -> MRU order (const-lru's pattern);
//! * `remove`: all N keys in ascending key order (const-lru's worst case);
//! * `insert_evict`: N new keys into a full cache (every insert evicts),
//!   LRU peers only.
//!
//! Sizes: N = 255 (u8 keys, u8 index where the peer has one) and N = 10_000
//! (u16 keys, u16 index).
//!
//! Run: `cargo bench -p lrukit-array-lru --bench lru -- --warm-up-time 1 --measurement-time 3`

use std::alloc::{alloc, Layout};
use std::hash::Hash;
use std::hint::black_box;
use std::num::NonZeroUsize;

use const_lru::ConstLru;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use foldhash::fast::FixedState;
use lrukit_array_lru::{ArrayLru, HeapLru, IndexType, Lru, Storage};

/// The operations every peer supports, so each workload is written once.
trait Cache<K> {
  fn put(&mut self, k: K, v: K);
  fn fetch(&mut self, k: &K) -> Option<&K>;
  fn del(&mut self, k: &K) -> Option<K>;
}

impl<K: Hash + Eq, St: Storage<K, K>> Cache<K> for Lru<K, K, St, FixedState> {
  #[inline(always)]
  fn put(&mut self, k: K, v: K) {
    black_box(self.insert(k, v));
  }
  #[inline(always)]
  fn fetch(&mut self, k: &K) -> Option<&K> {
    self.get(k)
  }
  #[inline(always)]
  fn del(&mut self, k: &K) -> Option<K> {
    self.remove(k)
  }
}

/// const-lru's index bound comes from num-traits; implement for the concrete
/// types used here instead of depending on num-traits.
macro_rules! const_lru_cache {
  ($k:ty, $cap:expr, $i:ty) => {
    impl Cache<$k> for ConstLru<$k, $k, $cap, $i> {
      #[inline(always)]
      fn put(&mut self, k: $k, v: $k) {
        black_box(self.insert(k, v));
      }
      #[inline(always)]
      fn fetch(&mut self, k: &$k) -> Option<&$k> {
        self.get(k)
      }
      #[inline(always)]
      fn del(&mut self, k: &$k) -> Option<$k> {
        self.remove(k)
      }
    }
  };
}
const_lru_cache!(u8, 255, u8);
const_lru_cache!(u8, 128, u8);
const_lru_cache!(u16, 10_000, u16);

impl<K: Hash + Eq> Cache<K> for lru::LruCache<K, K, FixedState> {
  #[inline(always)]
  fn put(&mut self, k: K, v: K) {
    black_box(self.push(k, v));
  }
  #[inline(always)]
  fn fetch(&mut self, k: &K) -> Option<&K> {
    self.get(k)
  }
  #[inline(always)]
  fn del(&mut self, k: &K) -> Option<K> {
    self.pop(k)
  }
}

impl<K: Hash + Eq> Cache<K> for hashbrown::HashMap<K, K, FixedState> {
  #[inline(always)]
  fn put(&mut self, k: K, v: K) {
    black_box(self.insert(k, v));
  }
  #[inline(always)]
  fn fetch(&mut self, k: &K) -> Option<&K> {
    self.get(k)
  }
  #[inline(always)]
  fn del(&mut self, k: &K) -> Option<K> {
    self.remove(k)
  }
}

/// Deterministic shuffle (xorshift) so every peer sees the same order.
fn shuffled<K: Copy>(keys: &[K]) -> Vec<K> {
  let mut v = keys.to_vec();
  let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
  for i in (1..v.len()).rev() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v.swap(i, (x % (i as u64 + 1)) as usize);
  }
  v
}

fn bench_insert<K: Copy, C: Cache<K>>(
  g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
  name: &str,
  keys: &[K],
  new: impl Fn() -> C,
) {
  g.bench_function(name, |b| {
    b.iter_batched_ref(
      &new,
      |c| {
        for &k in keys.iter().rev() {
          c.put(k, k);
        }
      },
      BatchSize::SmallInput,
    )
  });
}

fn bench_get<K: Copy, C: Cache<K>>(
  g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
  name: &str,
  keys: &[K],
  new: impl Fn() -> C,
) {
  let mut c = new();
  for &k in keys {
    c.put(k, k);
  }
  let order = shuffled(keys);
  g.bench_function(name, |b| {
    b.iter(|| {
      for k in &order {
        black_box(c.fetch(k));
      }
    })
  });
}

/// Like `bench_get` but with `peek` (no promotion) on this crate's maps: the
/// lookup alone, to compare with hashbrown's read-only `get`.
fn bench_peek<K: Copy + Hash + Eq, St: Storage<K, K>>(
  g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
  name: &str,
  keys: &[K],
  mut c: impl std::ops::DerefMut<Target = Lru<K, K, St, FixedState>>,
) {
  for &k in keys {
    c.insert(k, k);
  }
  let order = shuffled(keys);
  g.bench_function(name, |b| {
    b.iter(|| {
      for k in &order {
        black_box(c.peek(k));
      }
    })
  });
}

/// Gets in LRU -> MRU order (const-lru's own "get all keys" benchmark): every
/// get promotes the current LRU entry, and a full pass restores the order.
fn bench_get_lru_order<K: Copy, C: Cache<K>>(
  g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
  name: &str,
  keys: &[K],
  new: impl Fn() -> C,
) {
  let mut c = new();
  for &k in keys {
    c.put(k, k);
  }
  g.bench_function(name, |b| {
    b.iter(|| {
      for k in keys {
        black_box(c.fetch(k));
      }
    })
  });
}

fn bench_remove<K: Copy, C: Cache<K>>(
  g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
  name: &str,
  keys: &[K],
  new: impl Fn() -> C,
) {
  g.bench_function(name, |b| {
    b.iter_batched_ref(
      || {
        let mut c = new();
        for &k in keys {
          c.put(k, k);
        }
        c
      },
      |c| {
        for k in keys {
          black_box(c.del(k));
        }
      },
      BatchSize::SmallInput,
    )
  });
}

/// Full cache of `keys[..n/2]`-style old keys, then `n` new keys: each
/// insert evicts. Keys are `old` then `new` halves of a 2N key space.
fn bench_insert_evict<K: Copy, C: Cache<K>>(
  g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
  name: &str,
  old: &[K],
  new_keys: &[K],
  new: impl Fn() -> C,
) {
  g.bench_function(name, |b| {
    b.iter_batched_ref(
      || {
        let mut c = new();
        for &k in old {
          c.put(k, k);
        }
        c
      },
      |c| {
        for &k in new_keys {
          c.put(k, k);
        }
      },
      BatchSize::SmallInput,
    )
  });
}

type ConstLru10k = ConstLru<u16, u16, 10_000, u16>;

/// A `ConstLru` initialised in place on the heap (never on the stack).
fn const_lru_10k_boxed() -> Box<ConstLru10k> {
  let layout = Layout::new::<ConstLru10k>();
  // SAFETY: `layout` is the (non-zero-sized) layout of the type and the
  // pointer is checked for null; `init_at_alloc` initialises every field of
  // the uninitialised allocation (its documented use), after which `Box` owns
  // it with the layout it was allocated with.
  unsafe {
    let ptr = alloc(layout) as *mut ConstLru10k;
    assert!(!ptr.is_null());
    ConstLru::init_at_alloc(ptr);
    Box::from_raw(ptr)
  }
}

fn ours_boxed<K, V, const CAP: usize, I: IndexType>() -> Box<ArrayLru<K, V, CAP, I>> {
  ArrayLru::new_boxed()
}

impl<K, C: Cache<K> + ?Sized> Cache<K> for Box<C> {
  #[inline(always)]
  fn put(&mut self, k: K, v: K) {
    (**self).put(k, v)
  }
  #[inline(always)]
  fn fetch(&mut self, k: &K) -> Option<&K> {
    (**self).fetch(k)
  }
  #[inline(always)]
  fn del(&mut self, k: &K) -> Option<K> {
    (**self).del(k)
  }
}

fn n255(c: &mut Criterion) {
  const N: usize = 255;
  let keys: Vec<u8> = (0..N as u8).collect();
  let lru_new = || {
    lru::LruCache::<u8, u8, FixedState>::with_hasher(
      NonZeroUsize::new(N).unwrap(),
      FixedState::default(),
    )
  };
  let hb_new =
    || hashbrown::HashMap::<u8, u8, FixedState>::with_capacity_and_hasher(N, FixedState::default());

  let mut g = c.benchmark_group("insert_255");
  bench_insert(
    &mut g,
    "ArrayLru<u8,u8,255,u8>",
    &keys,
    ArrayLru::<u8, u8, 255, u8>::new,
  );
  bench_insert(&mut g, "HeapLru<u8,u8,u8>", &keys, || {
    HeapLru::<u8, u8, u8>::with_capacity(N)
  });
  bench_insert(
    &mut g,
    "ConstLru<u8,u8,255,u8>",
    &keys,
    ConstLru::<u8, u8, 255, u8>::new,
  );
  bench_insert(&mut g, "lru::LruCache", &keys, lru_new);
  bench_insert(&mut g, "hashbrown::HashMap", &keys, hb_new);
  g.finish();

  let mut g = c.benchmark_group("get_255");
  bench_get(
    &mut g,
    "ArrayLru<u8,u8,255,u8>",
    &keys,
    ArrayLru::<u8, u8, 255, u8>::new,
  );
  bench_get(&mut g, "HeapLru<u8,u8,u8>", &keys, || {
    HeapLru::<u8, u8, u8>::with_capacity(N)
  });
  bench_get(
    &mut g,
    "ConstLru<u8,u8,255,u8>",
    &keys,
    ConstLru::<u8, u8, 255, u8>::new,
  );
  bench_get(&mut g, "lru::LruCache", &keys, lru_new);
  bench_get(&mut g, "hashbrown::HashMap", &keys, hb_new);
  bench_peek(
    &mut g,
    "ArrayLru peek (no promote)",
    &keys,
    Box::new(ArrayLru::<u8, u8, 255, u8>::new()),
  );
  bench_peek(
    &mut g,
    "HeapLru peek (no promote)",
    &keys,
    Box::new(HeapLru::<u8, u8, u8>::with_capacity(N)),
  );
  g.finish();

  let mut g = c.benchmark_group("get_lru_order_255");
  bench_get_lru_order(
    &mut g,
    "ArrayLru<u8,u8,255,u8>",
    &keys,
    ArrayLru::<u8, u8, 255, u8>::new,
  );
  bench_get_lru_order(&mut g, "HeapLru<u8,u8,u8>", &keys, || {
    HeapLru::<u8, u8, u8>::with_capacity(N)
  });
  bench_get_lru_order(
    &mut g,
    "ConstLru<u8,u8,255,u8>",
    &keys,
    ConstLru::<u8, u8, 255, u8>::new,
  );
  bench_get_lru_order(&mut g, "lru::LruCache", &keys, lru_new);
  bench_get_lru_order(&mut g, "hashbrown::HashMap", &keys, hb_new);
  g.finish();

  let mut g = c.benchmark_group("remove_255");
  bench_remove(
    &mut g,
    "ArrayLru<u8,u8,255,u8>",
    &keys,
    ArrayLru::<u8, u8, 255, u8>::new,
  );
  bench_remove(&mut g, "HeapLru<u8,u8,u8>", &keys, || {
    HeapLru::<u8, u8, u8>::with_capacity(N)
  });
  bench_remove(
    &mut g,
    "ConstLru<u8,u8,255,u8>",
    &keys,
    ConstLru::<u8, u8, 255, u8>::new,
  );
  bench_remove(&mut g, "lru::LruCache", &keys, lru_new);
  bench_remove(&mut g, "hashbrown::HashMap", &keys, hb_new);
  g.finish();

  // 128 resident keys, 127 new ones (u8 key space), capacity 128.
  let old: Vec<u8> = (0..128).collect();
  let fresh: Vec<u8> = (128..255).collect();
  let mut g = c.benchmark_group("insert_evict_128");
  bench_insert_evict(
    &mut g,
    "ArrayLru<u8,u8,128,u8>",
    &old,
    &fresh,
    ArrayLru::<u8, u8, 128, u8>::new,
  );
  bench_insert_evict(&mut g, "HeapLru<u8,u8,u8>", &old, &fresh, || {
    HeapLru::<u8, u8, u8>::with_capacity(128)
  });
  bench_insert_evict(
    &mut g,
    "ConstLru<u8,u8,128,u8>",
    &old,
    &fresh,
    ConstLru::<u8, u8, 128, u8>::new,
  );
  bench_insert_evict(&mut g, "lru::LruCache", &old, &fresh, || {
    lru::LruCache::<u8, u8, FixedState>::with_hasher(
      NonZeroUsize::new(128).unwrap(),
      FixedState::default(),
    )
  });
  g.finish();
}

fn n10k(c: &mut Criterion) {
  const N: usize = 10_000;
  let keys: Vec<u16> = (0..N as u16).collect();
  let lru_new = || {
    lru::LruCache::<u16, u16, FixedState>::with_hasher(
      NonZeroUsize::new(N).unwrap(),
      FixedState::default(),
    )
  };
  let hb_new = || {
    hashbrown::HashMap::<u16, u16, FixedState>::with_capacity_and_hasher(N, FixedState::default())
  };
  let ours = ours_boxed::<u16, u16, N, u16>;
  let theirs = const_lru_10k_boxed;

  let mut g = c.benchmark_group("insert_10k");
  bench_insert(&mut g, "ArrayLru<u16,u16,10k,u16> (boxed)", &keys, ours);
  bench_insert(&mut g, "HeapLru<u16,u16,u16>", &keys, || {
    HeapLru::<u16, u16, u16>::with_capacity(N)
  });
  bench_insert(&mut g, "ConstLru<u16,u16,10k,u16> (boxed)", &keys, theirs);
  bench_insert(&mut g, "lru::LruCache", &keys, lru_new);
  bench_insert(&mut g, "hashbrown::HashMap", &keys, hb_new);
  g.finish();

  let mut g = c.benchmark_group("get_10k");
  bench_get(&mut g, "ArrayLru<u16,u16,10k,u16> (boxed)", &keys, ours);
  bench_get(&mut g, "HeapLru<u16,u16,u16>", &keys, || {
    HeapLru::<u16, u16, u16>::with_capacity(N)
  });
  bench_get(&mut g, "ConstLru<u16,u16,10k,u16> (boxed)", &keys, theirs);
  bench_get(&mut g, "lru::LruCache", &keys, lru_new);
  bench_get(&mut g, "hashbrown::HashMap", &keys, hb_new);
  bench_peek(&mut g, "ArrayLru peek (no promote)", &keys, ours());
  bench_peek(
    &mut g,
    "HeapLru peek (no promote)",
    &keys,
    Box::new(HeapLru::<u16, u16, u16>::with_capacity(N)),
  );
  g.finish();

  let mut g = c.benchmark_group("get_lru_order_10k");
  bench_get_lru_order(&mut g, "ArrayLru<u16,u16,10k,u16> (boxed)", &keys, ours);
  bench_get_lru_order(&mut g, "HeapLru<u16,u16,u16>", &keys, || {
    HeapLru::<u16, u16, u16>::with_capacity(N)
  });
  bench_get_lru_order(&mut g, "ConstLru<u16,u16,10k,u16> (boxed)", &keys, theirs);
  bench_get_lru_order(&mut g, "lru::LruCache", &keys, lru_new);
  bench_get_lru_order(&mut g, "hashbrown::HashMap", &keys, hb_new);
  g.finish();

  let mut g = c.benchmark_group("remove_10k");
  bench_remove(&mut g, "ArrayLru<u16,u16,10k,u16> (boxed)", &keys, ours);
  bench_remove(&mut g, "HeapLru<u16,u16,u16>", &keys, || {
    HeapLru::<u16, u16, u16>::with_capacity(N)
  });
  bench_remove(&mut g, "ConstLru<u16,u16,10k,u16> (boxed)", &keys, theirs);
  bench_remove(&mut g, "lru::LruCache", &keys, lru_new);
  bench_remove(&mut g, "hashbrown::HashMap", &keys, hb_new);
  g.finish();

  let old: Vec<u16> = (0..N as u16).collect();
  let fresh: Vec<u16> = (N as u16..2 * N as u16).collect();
  let mut g = c.benchmark_group("insert_evict_10k");
  bench_insert_evict(
    &mut g,
    "ArrayLru<u16,u16,10k,u16> (boxed)",
    &old,
    &fresh,
    ours,
  );
  bench_insert_evict(&mut g, "HeapLru<u16,u16,u16>", &old, &fresh, || {
    HeapLru::<u16, u16, u16>::with_capacity(N)
  });
  bench_insert_evict(
    &mut g,
    "ConstLru<u16,u16,10k,u16> (boxed)",
    &old,
    &fresh,
    theirs,
  );
  bench_insert_evict(&mut g, "lru::LruCache", &old, &fresh, lru_new);
  g.finish();
}

criterion_group!(benches, n255, n10k);
criterion_main!(benches);
