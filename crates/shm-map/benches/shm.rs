//! get (hit) and a 90/10 get/set mix over 100k keys with 32-byte values, on
//! 1 and 2 threads (each thread has its own handle, as separate processes
//! would). Reported times are per operation; for 2 threads criterion's time
//! is wall time / total operations, i.e. inverse aggregate throughput.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lrukit_shm_map::{Eviction, Options, SharedMap, ValueRef};
use std::hint::black_box;
use std::time::{Duration, Instant};

const KEYS: usize = 100_000;

fn keys() -> Vec<Vec<u8>> {
  (0..KEYS)
    .map(|i| format!("key:{i:08}").into_bytes())
    .collect()
}

fn setup(name: &str) -> SharedMap {
  let _ = SharedMap::unlink(name);
  let m = SharedMap::create(
    name,
    &Options {
      capacity: Some(131_072),
      max_key_bytes: 32,
      max_value_bytes: 64,
      eviction: Eviction::Lru,
      ..Options::default()
    },
  )
  .unwrap();
  let v = [7u8; 32];
  for k in keys() {
    m.set(&k, ValueRef::Bytes(&v), None).unwrap();
  }
  m
}

/// A random-ish permutation walk: index sequence that touches all keys.
fn next(i: &mut usize) -> usize {
  *i = (*i + 7919 * 13) % KEYS;
  *i
}

fn run(m: &SharedMap, keys: &[Vec<u8>], iters: u64, start: usize, mixed: bool) {
  let v = [9u8; 32];
  let mut i = start;
  for n in 0..iters {
    let k = &keys[next(&mut i)];
    if mixed && n.is_multiple_of(10) {
      m.set(k, ValueRef::Bytes(&v), None).unwrap();
    } else {
      black_box(m.get(k).unwrap());
    }
  }
}

fn threaded(name: &str, keys: &[Vec<u8>], iters: u64, threads: usize, mixed: bool) -> Duration {
  let handles: Vec<SharedMap> = (0..threads)
    .map(|_| SharedMap::open(name).unwrap())
    .collect();
  let barrier = std::sync::Barrier::new(threads);
  let per = iters / threads as u64;
  std::thread::scope(|s| {
    let hs: Vec<_> = handles
      .iter()
      .enumerate()
      .map(|(t, m)| {
        let barrier = &barrier;
        s.spawn(move || {
          barrier.wait();
          let t0 = Instant::now();
          run(m, keys, per, t * 50_000, mixed);
          t0.elapsed()
        })
      })
      .collect();
    hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
  })
}

fn bench(c: &mut Criterion) {
  let name = format!("bench-{}", std::process::id());
  let m = setup(&name);
  let keys = keys();
  let mut g = c.benchmark_group("shm-map");
  g.throughput(Throughput::Elements(1));
  for (label, mixed) in [("get_hit", false), ("get90_set10", true)] {
    g.bench_function(BenchmarkId::new(label, "1 thread"), |b| {
      let mut i = 0usize;
      let v = [9u8; 32];
      let mut n = 0u64;
      b.iter(|| {
        n += 1;
        let k = &keys[next(&mut i)];
        if mixed && n.is_multiple_of(10) {
          m.set(k, ValueRef::Bytes(&v), None).unwrap();
        } else {
          black_box(m.get(k).unwrap());
        }
      })
    });
    g.bench_function(BenchmarkId::new(label, "2 threads"), |b| {
      b.iter_custom(|iters| threaded(&name, &keys, iters.max(2), 2, mixed))
    });
  }
  g.bench_function(BenchmarkId::new("get_with_hit", "1 thread"), |b| {
    let mut i = 0usize;
    b.iter(|| {
      let k = &keys[next(&mut i)];
      black_box(
        m.get_with(k, |v| matches!(v, ValueRef::Bytes(b) if b.len() == 32))
          .unwrap(),
      )
    })
  });
  // The same hits as `get_with_hit`, 64 keys per `get_many_with` call
  // (throughput per key).
  g.throughput(Throughput::Elements(64));
  g.bench_function(BenchmarkId::new("get_many_with_hit_x64", "1 thread"), |b| {
    let mut i = 0usize;
    let mut batch: Vec<&[u8]> = Vec::with_capacity(64);
    b.iter(|| {
      batch.clear();
      for _ in 0..64 {
        batch.push(&keys[next(&mut i)]);
      }
      black_box(
        m.get_many_with(
          &batch,
          |_, v| matches!(v, Some(ValueRef::Bytes(b)) if b.len() == 32),
        )
        .unwrap(),
      )
    })
  });
  g.throughput(Throughput::Elements(1));
  g.bench_function(BenchmarkId::new("get_miss", "1 thread"), |b| {
    let mut i = 0usize;
    let missing: Vec<Vec<u8>> = (0..KEYS)
      .map(|i| format!("nokey:{i:08}").into_bytes())
      .collect();
    b.iter(|| black_box(m.get(&missing[next(&mut i)]).unwrap()))
  });
  g.bench_function(BenchmarkId::new("set_existing", "1 thread"), |b| {
    let mut i = 0usize;
    let v = [3u8; 32];
    b.iter(|| {
      m.set(&keys[next(&mut i)], ValueRef::Bytes(&v), None)
        .unwrap()
    })
  });
  g.bench_function(BenchmarkId::new("incr", "1 thread"), |b| {
    b.iter(|| black_box(m.incr(b"counter", 1.0, 0.0, None).unwrap()))
  });
  g.finish();
  drop(m);
  let _ = SharedMap::unlink(&name);
}

criterion_group! {
  name = benches;
  config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
  targets = bench
}
criterion_main!(benches);
