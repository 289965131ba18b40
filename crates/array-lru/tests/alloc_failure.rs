//! Allocation failures of the heap form with an allocator that refuses every
//! request above 1 MiB: the fallible constructors and `try_grow` /
//! `try_insert` return an error naming the bytes requested and change
//! nothing, instead of aborting the process. Deterministic on any machine
//! (no real memory pressure needed).
#![cfg(feature = "alloc")]

use std::alloc::{GlobalAlloc, Layout, System};

use lrukit_array_lru::timed::{Capacity, SetOptions, TimedLru, TimedLruError};
use lrukit_array_lru::{bytes_per_entry, HeapLru};

/// Requests above this many bytes fail.
const LIMIT: usize = 1 << 20;

struct Refusing;

// SAFETY: forwards to `System`, or returns null (allowed for any request).
unsafe impl GlobalAlloc for Refusing {
  unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
    if layout.size() > LIMIT {
      return std::ptr::null_mut();
    }
    // SAFETY: the caller's contract for `layout` is passed on unchanged.
    unsafe { System.alloc(layout) }
  }
  unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
    // SAFETY: `ptr` came from `System.alloc` with this layout.
    unsafe { System.dealloc(ptr, layout) }
  }
}

#[global_allocator]
static GLOBAL: Refusing = Refusing;

#[test]
fn try_with_capacity_reports_the_refused_bytes() {
  assert_eq!(bytes_per_entry::<u64, u64, u32>(), 32);
  let ok = HeapLru::<u64, u64>::try_with_capacity(LIMIT / 32).unwrap();
  assert_eq!(ok.cap(), LIMIT / 32);
  let cap = LIMIT / 32 + 1;
  let e = HeapLru::<u64, u64>::try_with_capacity(cap).unwrap_err();
  assert_eq!(e.requested(), cap);
  assert_eq!(
    e.max(),
    u32::MAX as usize,
    "the capacity itself is possible"
  );
  let layout = e.alloc_failure().expect("an allocation failure");
  assert_eq!(layout.size(), cap * 32);
  assert_eq!(
    Some(layout.size()),
    HeapLru::<u64, u64>::heap_bytes_for(cap)
  );
  assert_eq!(
    e.to_string(),
    format!(
      "memory allocation of {} bytes for capacity {cap} failed",
      cap * 32
    )
  );
}

#[test]
fn failed_try_grow_loses_nothing() {
  let mut m = HeapLru::<u64, u64>::with_capacity(100);
  for i in 0..100 {
    m.insert(i, i * 2);
  }
  m.get(&7);
  let before: Vec<(u64, u64)> = m.iter().map(|(k, v)| (*k, *v)).collect();
  let e = m.try_grow(100_000).unwrap_err();
  assert_eq!(e.alloc_failure().map(|l| l.size()), Some(100_000 * 32));
  assert_eq!(m.cap(), 100);
  assert_eq!(m.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), before);
  m.check_invariants();
  m.try_grow(1000).unwrap();
  assert_eq!(m.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), before);
  m.check_invariants();
}

#[test]
fn timed_lru_try_new_reports_out_of_memory() {
  type C = TimedLru<u64, u64>;
  let bytes = C::table_bytes(100_000).unwrap();
  assert!(bytes > LIMIT);
  assert_eq!(
    C::try_new(Capacity::Bounded(100_000), usize::MAX).err(),
    Some(TimedLruError::OutOfMemory {
      capacity: 100_000,
      bytes
    })
  );
  // A limit below the size is checked first, without allocating.
  assert!(matches!(
    C::try_new(Capacity::Bounded(100_000), LIMIT).err(),
    Some(TimedLruError::OverLimit { .. })
  ));
}

#[test]
fn timed_lru_try_insert_reports_a_failed_growth_and_keeps_every_entry() {
  type C = TimedLru<u64, u64>;
  let per = C::table_bytes(1).unwrap();
  let mut c = C::try_new(Capacity::Unbounded, usize::MAX).unwrap();
  let mut n = 0u64;
  let err = loop {
    match c.try_insert(n, n, SetOptions::default(), |_, _| {}) {
      Ok(()) => n += 1,
      Err(e) => break e,
    }
  };
  // Tables double from 64; the first one over 1 MiB is refused.
  let full = n as usize;
  assert!(full.is_power_of_two() && full * per <= LIMIT && 2 * full * per > LIMIT);
  assert_eq!(
    err,
    TimedLruError::OutOfMemory {
      capacity: 2 * full,
      bytes: 2 * full * per
    }
  );
  assert_eq!(c.len(), full);
  assert!(!c.contains(&n));
  for i in 0..n {
    assert_eq!(c.peek(&i).map(|e| e.value), Some(i));
  }
  // A key already stored is updated without growing.
  c.try_insert(3, 33, SetOptions::default(), |_, _| {})
    .unwrap();
  assert_eq!(c.peek(&3).map(|e| e.value), Some(33));
}
