//! Unit tests of internals (the public API is covered in `tests/`).

use std::vec::Vec;

use crate::map::{bucket, probe_empty};
use crate::storage::raw::RawStorage;
use crate::{ArrayLru, IndexType};

#[test]
fn bucket_is_in_range() {
  for n in [1usize, 2, 3, 10, 510, 20_000, usize::MAX] {
    for h in [0u64, 1, 0x8000_0000_0000_0000, u64::MAX - 1, u64::MAX] {
      assert!(bucket(h, n) < n);
    }
    assert_eq!(bucket(0, n), 0);
    assert_eq!(bucket(u64::MAX, n), n - 1);
  }
  // Roughly uniform: hashes evenly spread over u64 hit every bucket.
  let n = 6;
  let hits: Vec<usize> = (0..6u64)
    .map(|i| bucket(i * (u64::MAX / 6) + u64::MAX / 12, n))
    .collect();
  assert_eq!(hits, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn index_type_limits() {
  assert_eq!(<u8 as IndexType>::MAX_CAPACITY, 255);
  assert_eq!(<u16 as IndexType>::MAX_CAPACITY, 65_535);
  assert_eq!(<u32 as IndexType>::MAX_CAPACITY, u32::MAX as usize);
  assert_eq!(<usize as IndexType>::MAX_CAPACITY, usize::MAX);
  assert_eq!(<u16 as IndexType>::from_usize(7).to_usize(), 7);
}

#[test]
fn array_storage_shapes() {
  let m = ArrayLru::<u8, u8, 13, u8>::new();
  let p = m.storage.parts();
  assert_eq!(p.keys.len(), 13);
  assert_eq!(p.values.len(), 13);
  assert_eq!(p.prev.len(), 13);
  assert_eq!(p.next.len(), 13);
  assert_eq!(p.index.len(), 26);
  assert!(p.index.iter().all(|&e| e == u8::MAX));
  assert_eq!(probe_empty(p.index, u64::MAX), 25);
}

#[test]
fn freed_slots_are_reused_and_fresh_slots_follow_len() {
  let mut m = ArrayLru::<u32, u32, 4, u8>::new();
  m.insert(10, 0);
  m.insert(11, 0);
  m.insert(12, 0);
  // Slot of key `k`, found through the index.
  let slot_of = |m: &ArrayLru<u32, u32, 4, u8>, k: u32| {
    let p = m.storage.parts();
    p.index
      .iter()
      .filter(|&&e| e != u8::MAX)
      .map(|&e| e as usize)
      // SAFETY: non-EMPTY buckets name used slots, whose keys are initialised.
      .find(|&s| unsafe { p.keys[s].assume_init_ref() } == &k)
  };
  assert_eq!(slot_of(&m, 11), Some(1));
  m.remove(&11);
  assert_eq!(m.storage.parts().hdr.free, 1);
  m.insert(13, 0); // takes the freed slot 1
  assert_eq!(slot_of(&m, 13), Some(1));
  assert_eq!(m.storage.parts().hdr.free, u8::MAX);
  m.insert(14, 0); // free list empty: fresh slot = len = 3
  assert_eq!(slot_of(&m, 14), Some(3));
  m.check_invariants();
}
