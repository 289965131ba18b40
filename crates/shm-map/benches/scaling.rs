//! Real processes: aggregate throughput of 1 vs 2 processes on one map, and
//! per-operation latency percentiles (every 16th operation timed alone).
//! 100k keys (or `LRUKIT_BENCH_KEYS`), 32-byte values; workloads get-hit and
//! 90/10 get/set.
//!
//! `cargo bench -p lrukit-shm-map --bench scaling`

use lrukit_shm_map::{Eviction, Options, SharedMap, ValueRef};
use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RUN: Duration = Duration::from_secs(2);

/// 100k keys, or `LRUKIT_BENCH_KEYS` (e.g. 1000 for a cache-resident run).
fn nkeys() -> usize {
  std::env::var("LRUKIT_BENCH_KEYS")
    .ok()
    .and_then(|s| s.parse().ok())
    .unwrap_or(100_000)
}

fn keys() -> Vec<Vec<u8>> {
  (0..nkeys())
    .map(|i| format!("key:{i:08}").into_bytes())
    .collect()
}

fn wall_ms() -> u64 {
  SystemTime::now()
    .duration_since(UNIX_EPOCH)
    .unwrap()
    .as_millis() as u64
}

fn child(name: &str, mixed: bool, start_ms: u64, seed: usize) {
  let m = SharedMap::open(name).unwrap();
  let keys = keys();
  let n = keys.len();
  let v = [9u8; 32];
  while wall_ms() < start_ms {
    std::hint::spin_loop();
  }
  let mut lat: Vec<u32> = Vec::with_capacity(1 << 20);
  let mut i = seed;
  let mut ops = 0u64;
  let t0 = Instant::now();
  loop {
    for _ in 0..16 {
      i = (i + 7919 * 13) % n;
      let k = &keys[i];
      ops += 1;
      if mixed && ops.is_multiple_of(10) {
        m.set(k, ValueRef::Bytes(&v), None).unwrap();
      } else {
        black_box(m.get(k).unwrap());
      }
    }
    // One timed operation per 16.
    i = (i + 7919 * 13) % n;
    let t = Instant::now();
    black_box(m.get(&keys[i]).unwrap());
    lat.push(t.elapsed().as_nanos() as u32);
    ops += 1;
    if t0.elapsed() >= RUN {
      break;
    }
  }
  let secs = t0.elapsed().as_secs_f64();
  lat.sort_unstable();
  let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
  println!(
    "RESULT {ops} {secs} {} {} {} {}",
    p(0.5),
    p(0.99),
    p(0.999),
    lat.last().unwrap()
  );
}

/// One run of `procs` processes: (aggregate ops/s, ns/op per process,
/// [p50, p99, p99.9, max] over all processes).
fn measure(name: &str, mode: &str, procs: usize) -> (f64, f64, [u64; 4]) {
  let start = wall_ms() + 300;
  let kids: Vec<_> = (0..procs)
    .map(|p| {
      Command::new(std::env::current_exe().unwrap())
        .env(
          "LRUKIT_BENCH_CHILD",
          format!("{name},{mode},{start},{}", p * 50_000 % nkeys()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
    })
    .collect();
  let mut total = 0.0;
  let mut per_proc_ns = 0.0;
  let mut pcts = [0u64; 4];
  for k in kids {
    let out = k.wait_with_output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s
      .lines()
      .find(|l| l.starts_with("RESULT"))
      .expect("child result");
    let f: Vec<f64> = line
      .split_whitespace()
      .skip(1)
      .map(|x| x.parse().unwrap())
      .collect();
    total += f[0] / f[1];
    per_proc_ns += f[1] * 1e9 / f[0] / procs as f64;
    for (j, p) in pcts.iter_mut().enumerate() {
      *p = (*p).max(f[2 + j] as u64);
    }
  }
  (total, per_proc_ns, pcts)
}

fn main() {
  if let Ok(spec) = std::env::var("LRUKIT_BENCH_CHILD") {
    let f: Vec<&str> = spec.split(',').collect();
    child(
      f[0],
      f[1] == "mixed",
      f[2].parse().unwrap(),
      f[3].parse().unwrap(),
    );
    return;
  }
  if std::env::args().any(|a| a == "--list") {
    return;
  }
  let name = format!("scale-{}", std::process::id());
  let _ = SharedMap::unlink(&name);
  let m = SharedMap::create(
    &name,
    &Options {
      capacity: Some(131_072),
      max_key_bytes: 32,
      max_value_bytes: 64,
      eviction: Eviction::Lru,
      ..Options::default()
    },
  )
  .unwrap();
  for k in keys() {
    m.set(&k, ValueRef::Bytes(&[7u8; 32]), None).unwrap();
  }
  println!("| workload | processes | aggregate Mops/s | ns/op per process | p50 ns | p99 ns | p99.9 ns | max ns | scaling |");
  println!("|---|---|---|---|---|---|---|---|---|");
  let rounds: usize = std::env::var("LRUKIT_BENCH_ROUNDS")
    .ok()
    .and_then(|s| s.parse().ok())
    .unwrap_or(3);
  for mode in ["get", "mixed"] {
    let mut one = 0.0;
    for procs in [1usize, 2] {
      // Each configuration runs `rounds` times; the round with the median
      // aggregate throughput is reported (this VM is noisy).
      let mut results: Vec<(f64, f64, [u64; 4])> =
        (0..rounds).map(|_| measure(&name, mode, procs)).collect();
      results.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
      let (total, per_proc_ns, pcts) = results[rounds / 2];
      if procs == 1 {
        one = total;
      }
      println!(
        "| {mode} | {procs} | {:.2} | {:.0} | {} | {} | {} | {} | {:.2}x |",
        total / 1e6,
        per_proc_ns,
        pcts[0],
        pcts[1],
        pcts[2],
        pcts[3],
        total / one
      );
    }
  }
  drop(m);
  let _ = SharedMap::unlink(&name);
}
