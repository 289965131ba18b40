//! Memory per flow: heap bytes requested from the allocator (counted by a
//! wrapping global allocator), the same with glibc's per-block overhead
//! added (8-byte header, 16-byte rounding, 32-byte minimum; page rounding for
//! large blocks), and the engines' own `memory_bytes()` estimate, for 1M
//! flows.
//!
//! `cargo bench -p lrukit-flow-table --bench memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lrukit_flow_table::{new_engine, Config, EngineKind, FlowEngine, ManualClock};

struct Counting;

static BYTES: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);
static GLIBC: AtomicIsize = AtomicIsize::new(0);

/// Approximate glibc footprint of a block of `n` bytes.
fn glibc(n: usize) -> isize {
  let b = if n >= 128 * 1024 {
    (n + 16).next_multiple_of(4096)
  } else {
    (n + 8).next_multiple_of(16).max(32)
  };
  b as isize
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; the counters are plain
// atomics and do not allocate.
unsafe impl GlobalAlloc for Counting {
  unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
    BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
    GLIBC.fetch_add(glibc(layout.size()), Ordering::Relaxed);
    BLOCKS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: forwarded unchanged (see the impl comment).
    unsafe { System.alloc(layout) }
  }

  unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
    BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    GLIBC.fetch_sub(glibc(layout.size()), Ordering::Relaxed);
    BLOCKS.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: forwarded unchanged (see the impl comment).
    unsafe { System.dealloc(ptr, layout) }
  }

  unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    BYTES.fetch_add(
      new_size as isize - layout.size() as isize,
      Ordering::Relaxed,
    );
    GLIBC.fetch_add(glibc(new_size) - glibc(layout.size()), Ordering::Relaxed);
    // SAFETY: forwarded unchanged (see the impl comment).
    unsafe { System.realloc(ptr, layout, new_size) }
  }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const FLOWS: usize = 1_000_000;

/// The binding's value type, approximately (a typed JS value).
#[allow(dead_code)]
#[derive(Clone)]
enum Value {
  Null,
  Bool(bool),
  Num(f64),
  BigInt(Box<[u64]>),
  Str(Box<str>),
  Bytes(Box<[u8]>),
}

fn snapshot() -> (isize, isize, isize) {
  (
    BYTES.load(Ordering::Relaxed),
    GLIBC.load(Ordering::Relaxed),
    BLOCKS.load(Ordering::Relaxed),
  )
}

fn report<T>(label: &str, build: impl FnOnce() -> (T, Option<usize>)) {
  let (b0, g0, n0) = snapshot();
  let (table, estimate) = build();
  let (b1, g1, n1) = snapshot();
  let per = |x: isize| x as f64 / FLOWS as f64;
  let est = estimate.map_or("-".to_string(), |e| {
    format!("{:.1}", e as f64 / FLOWS as f64)
  });
  println!(
    "| {label} | {:.1} | {:.1} | {:.2} | {est} |",
    per(b1 - b0),
    per(g1 - g0),
    per(n1 - n0)
  );
  drop(table);
}

fn key13(i: usize) -> Box<[u8]> {
  // A 13-byte IPv4 5-tuple.
  let mut k = [0u8; 13];
  k[..8].copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
  k.to_vec().into_boxed_slice()
}

fn engine<K, V>(kind: EngineKind) -> Box<dyn FlowEngine<K, V>>
where
  K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
  V: Clone + Send + Sync + 'static,
{
  new_engine(kind, Config::new(3_600_000), Arc::new(ManualClock::new(0)))
}

fn main() {
  // `cargo bench` passes `--bench`; nothing to parse.
  println!("1M flows, {} shards\n", Config::new(1).shard_count());
  println!("| table (K, V) | requested bytes/flow | with glibc overhead | allocations/flow | memory_bytes()/flow |");
  println!("|---|---|---|---|---|");
  for (name, kind) in [
    ("dashmap", EngineKind::DashMap),
    ("wheel", EngineKind::Wheel),
  ] {
    report(&format!("{name} (u64, u64)"), || {
      let t = engine::<u64, u64>(kind);
      for i in 0..FLOWS as u64 {
        t.insert(i, i, None).unwrap();
      }
      let est = t.memory_bytes();
      (t, Some(est))
    });
  }
  report("moka TTI (u64, u64)", || {
    let c = moka::sync::Cache::<u64, u64>::builder()
      .time_to_idle(Duration::from_secs(3600))
      .build();
    for i in 0..FLOWS as u64 {
      c.insert(i, i);
    }
    c.run_pending_tasks();
    (c, None)
  });
  for (name, kind) in [
    ("dashmap", EngineKind::DashMap),
    ("wheel", EngineKind::Wheel),
  ] {
    report(&format!("{name} (13-byte Box<[u8]>, Value::Num)"), || {
      let t = engine::<Box<[u8]>, Value>(kind);
      for i in 0..FLOWS {
        t.insert(key13(i), Value::Num(i as f64), None).unwrap();
      }
      let est = t.memory_bytes();
      (t, Some(est))
    });
  }
}
