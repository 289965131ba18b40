//! The ring allocator: what a write of each size costs in steady state, and
//! get/set over a mixed-size working set.
//!
//! * `set_delete/<bytes>`: `set` of a new key with a value of that size,
//!   then `delete` of it, in a 64 MiB in-memory map (defaults otherwise).
//!   The deleted records are garbage the tail reclaims as the ring cycles,
//!   so the time includes allocation (append, index insert) and its share
//!   of reclaiming (skipping garbage at the tail, index removal).
//! * `replace/<bytes>`: `set` over one of 1,000 existing keys: the new copy
//!   is appended and the old one becomes garbage.
//! * `mixed`: 20k keys with 90% 200-byte and 10% 8 KiB values in a 64 MiB
//!   map: `get` hits, and 90/10 get/set (the sets rewrite a value of the same
//!   size class).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lrukit_shm_map::{Options, SharedMap, ValueRef};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 6] = [8, 64, 200, 1024, 8192, 65536];

fn map() -> SharedMap {
  SharedMap::in_memory(&Options {
    memory_size: Some(64 << 20),
    ..Options::default()
  })
  .unwrap()
}

fn bench(c: &mut Criterion) {
  let mut g = c.benchmark_group("ring");
  g.throughput(Throughput::Elements(1));
  for size in SIZES {
    let m = map();
    let v = vec![5u8; size];
    let keys: Vec<Vec<u8>> = (0..1000).map(|i| format!("k{i:06}").into_bytes()).collect();
    let mut i = 0usize;
    g.bench_function(BenchmarkId::new("set_delete", size), |b| {
      b.iter(|| {
        let k = &keys[i % keys.len()];
        i += 1;
        m.set(k, ValueRef::Bytes(&v), None).unwrap();
        black_box(m.delete(k).unwrap());
      })
    });
    for k in &keys {
      m.set(k, ValueRef::Bytes(&v), None).unwrap();
    }
    g.bench_function(BenchmarkId::new("replace", size), |b| {
      b.iter(|| {
        let k = &keys[i % keys.len()];
        i += 7;
        m.set(k, ValueRef::Bytes(&v), None).unwrap();
      })
    });
  }
  let m = map();
  let small = vec![1u8; 200];
  let big = vec![2u8; 8192];
  let value = |i: usize| -> &[u8] {
    if i.is_multiple_of(10) {
      &big
    } else {
      &small
    }
  };
  let keys: Vec<Vec<u8>> = (0..20_000)
    .map(|i| format!("key:{i:08}").into_bytes())
    .collect();
  for (i, k) in keys.iter().enumerate() {
    m.set(k, ValueRef::Bytes(value(i)), None).unwrap();
  }
  let mut i = 0usize;
  g.bench_function(BenchmarkId::new("mixed", "get_hit"), |b| {
    b.iter(|| {
      i = (i + 7919) % keys.len();
      black_box(m.get(&keys[i]).unwrap());
    })
  });
  let mut n = 0u64;
  g.bench_function(BenchmarkId::new("mixed", "get90_set10"), |b| {
    b.iter(|| {
      i = (i + 7919) % keys.len();
      n += 1;
      if n.is_multiple_of(10) {
        m.set(&keys[i], ValueRef::Bytes(value(i)), None).unwrap();
      } else {
        black_box(m.get(&keys[i]).unwrap());
      }
    })
  });
  g.finish();
}

criterion_group! {
  name = benches;
  config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
  targets = bench
}
criterion_main!(benches);
