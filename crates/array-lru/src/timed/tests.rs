//! Unit tests of [`TimedLru`](super::TimedLru).

use super::*;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;

fn keep<K, V>(_: K, _: Stamped<V>) {}

#[test]
fn rejects_zero_and_huge_capacity() {
  assert!(TimedLru::<u32, u32>::new(Capacity::Bounded(0)).is_err());
  assert!(TimedLru::<u32, u32>::new(Capacity::Bounded(MAX_CAPACITY + 1)).is_err());
  assert_eq!(
    TimedLru::<u32, u32>::new(Capacity::Bounded(3))
      .unwrap()
      .capacity(),
    Some(3)
  );
  assert_eq!(
    TimedLru::<u32, u32>::new(Capacity::Unbounded)
      .unwrap()
      .capacity(),
    None
  );
}

#[test]
fn try_new_refuses_a_table_over_the_limit_before_allocating() {
  type C = TimedLru<u32, u32>;
  let bytes = C::table_bytes(100).unwrap();
  // u32 key + Stamped<u32> (24) + 4 u32 links/buckets, per entry
  assert_eq!(
    crate::bytes_per_entry::<u32, Stamped<u32>, u32>(),
    44,
    "the entry size this test assumes"
  );
  assert_eq!(bytes, 4400);
  assert_eq!(
    C::try_new(Capacity::Bounded(100), bytes)
      .unwrap()
      .capacity(),
    Some(100)
  );
  assert_eq!(
    C::try_new(Capacity::Bounded(100), bytes - 1).err(),
    Some(TimedLruError::OverLimit {
      capacity: 100,
      bytes,
      limit: bytes - 1
    })
  );
  assert_eq!(
    C::try_new(Capacity::Bounded(0), usize::MAX).err(),
    Some(TimedLruError::InvalidCapacity)
  );
  assert_eq!(
    C::try_new(Capacity::Bounded(MAX_CAPACITY + 1), usize::MAX).err(),
    Some(TimedLruError::InvalidCapacity)
  );
  // The largest capacity is refused by a limit without allocating.
  let e = C::try_new(Capacity::Bounded(MAX_CAPACITY), 1 << 30).err();
  assert!(
    matches!(e, Some(TimedLruError::OverLimit { capacity: MAX_CAPACITY, bytes, .. }) if bytes == 44 * MAX_CAPACITY),
    "{e:?}"
  );
  let shown = alloc::format!("{}", e.unwrap());
  assert!(
    shown.contains(&alloc::format!("{}", 44 * MAX_CAPACITY)),
    "{shown}"
  );
  // An unbounded cache starts with a 64-entry table, so a smaller limit
  // refuses it.
  assert!(matches!(
    C::try_new(Capacity::Unbounded, 44 * 63).err(),
    Some(TimedLruError::OverLimit { capacity: 64, .. })
  ));
}

#[test]
fn try_insert_grows_within_the_limit_then_refuses_and_changes_nothing() {
  type C = TimedLru<u32, u32>;
  let limit = C::table_bytes(200).unwrap();
  let mut c = C::try_new(Capacity::Unbounded, limit).unwrap();
  for i in 0..200u32 {
    c.try_insert(i, i, i as f64, f64::INFINITY, keep).unwrap();
  }
  // 64 -> 128 doubled; 256 would exceed the limit, so it stopped at 200.
  assert_eq!(c.len(), 200);
  assert_eq!(c.lru.cap(), 200);
  let mut refused = Vec::new();
  let e = c.try_insert(1000, 7, 0.0, f64::INFINITY, |k, v| {
    refused.push((k, v.value))
  });
  assert_eq!(refused, [(1000, 7)], "the refused pair goes to dispose");
  assert_eq!(
    e,
    Err(TimedLruError::OverLimit {
      capacity: 400,
      bytes: C::table_bytes(400).unwrap(),
      limit
    })
  );
  assert_eq!(c.len(), 200, "nothing stored, nothing lost");
  assert!(!c.contains(&1000, || 0.0));
  // Updating a key needs no room.
  c.try_insert(5, 55, 0.0, f64::INFINITY, keep).unwrap();
  assert_eq!(c.peek(&5, || 0.0).map(|e| e.value), Some(55));
  // After a pop there is room again.
  assert_eq!(c.pop_lru(|| 0.0, keep).map(|(k, _)| k), Some(0));
  c.try_insert(1000, 0, 0.0, f64::INFINITY, keep).unwrap();
  assert_eq!(c.len(), 200);
  // `insert` ignores the limit (and allocates like `Vec`).
  c.insert(2000, 0, 0.0, f64::INFINITY, keep);
  assert_eq!((c.len(), c.lru.cap()), (201, 400));
}

#[test]
fn table_bytes_is_capacity_times_the_entry_size() {
  assert_eq!(TimedLru::<u64, u64>::table_bytes(0), Some(0));
  for n in [1usize, 7, 1000, MAX_CAPACITY] {
    assert_eq!(
      TimedLru::<u64, u64>::table_bytes(n),
      Some(n * crate::bytes_per_entry::<u64, Stamped<u64>, u32>())
    );
  }
  assert_eq!(TimedLru::<u64, u64>::table_bytes(MAX_CAPACITY + 2), None);
}

#[test]
fn set_existing_key_updates_in_place() {
  let mut c = TimedLru::new(Capacity::Bounded(3)).unwrap();
  let mut replaced = Vec::new();
  c.insert("a", 1, 10.0, f64::INFINITY, keep);
  c.insert("b", 2, 11.0, f64::INFINITY, keep);
  c.insert("a", 3, 12.0, f64::INFINITY, |k, v| {
    replaced.push((k, v.value))
  });
  assert_eq!(c.len(), 2);
  assert_eq!(replaced, [("a", 1)]);
  // "a" is now MRU; popping gives b then the newer a.
  assert_eq!(
    c.pop_lru(|| 0.0, keep).map(|(k, v)| (k, v.value)),
    Some(("b", 2))
  );
  let (k, v) = c.pop_lru(|| 0.0, keep).unwrap();
  assert_eq!((k, v.value, v.timestamp), ("a", 3, 12.0));
  assert!(c.pop_lru(|| 0.0, keep).is_none());
}

#[test]
fn size_never_exceeds_capacity_and_evicts_lru() {
  let mut c = TimedLru::new(Capacity::Bounded(2)).unwrap();
  let mut evicted = Vec::new();
  for i in 0..5 {
    c.insert(i, i, 0.0, f64::INFINITY, |k, _| evicted.push(k));
    assert!(c.len() <= 2);
  }
  assert_eq!(evicted, [0, 1, 2]);
}

#[test]
fn popping_last_entry_leaves_usable_cache() {
  let mut c = TimedLru::new(Capacity::Bounded(1)).unwrap();
  c.insert(String::from("x"), 1, 5.0, f64::INFINITY, keep);
  let (k, v) = c.pop_lru(|| 0.0, keep).unwrap();
  assert_eq!((k.as_str(), v.value, v.timestamp), ("x", 1, 5.0));
  assert!(c.is_empty());
  assert!(c.peek_lru(|| 0.0, keep).is_none());
  c.insert(String::from("y"), 2, 6.0, f64::INFINITY, keep);
  assert_eq!(
    c.peek_lru(|| 0.0, keep).map(|(k, v)| (k.as_str(), v.value)),
    Some(("y", 2))
  );
}

#[test]
fn expired_entries_are_never_returned() {
  let now = Cell::new(100.0);
  let clock = || now.get();
  let mut c = TimedLru::new(Capacity::Bounded(4)).unwrap();
  let mut disposed = Vec::new();
  c.insert("short", 1, 0.0, 150.0, keep);
  c.insert("long", 2, 0.0, 1000.0, keep);
  c.insert("forever", 3, 0.0, f64::INFINITY, keep);
  assert!(c.get("short", clock, keep).is_some());
  now.set(150.0);
  assert!(c.peek("short", clock).is_none());
  assert!(!c.contains("short", clock));
  assert!(c.get("short", clock, |k, _| disposed.push(k)).is_none());
  assert_eq!(disposed, ["short"]);
  assert_eq!(c.len(), 2);
  now.set(5000.0);
  let live: Vec<_> = c.iter(clock).map(|(k, _)| *k).collect();
  assert_eq!(live, ["forever"]);
  // "long" is now the LRU entry and expired: pop skips and disposes it.
  assert_eq!(
    c.pop_lru(clock, |k, _| disposed.push(k)).map(|(k, _)| k),
    Some("forever")
  );
  assert_eq!(disposed, ["short", "long"]);
  assert!(c.is_empty());
}

/// Two caches holding `0..entries` (every `expire_every`-th expired at
/// time 10): `get_many(keys)` on one and repeated `get` on the other must
/// give the same hits, the same disposals of expired entries and the same
/// recency order. Returns the batch's hits and its cache.
fn get_many_matches_get(
  capacity: usize,
  entries: u32,
  expire_every: u32,
  keys: &[u32],
) -> (Vec<(usize, u32)>, TimedLru<u32, u32>) {
  let mut a = TimedLru::new(Capacity::Bounded(capacity)).unwrap();
  let mut b = TimedLru::new(Capacity::Bounded(capacity)).unwrap();
  for i in 0..entries {
    let expires = if i % expire_every == 0 {
      5.0
    } else {
      f64::INFINITY
    };
    a.insert(i, i * 10, 0.0, expires, keep);
    b.insert(i, i * 10, 0.0, expires, keep);
  }
  let mut batch = Vec::new();
  let (mut da, mut db) = (0, 0);
  a.get_many(
    keys.len(),
    |i| &keys[i],
    || 10.0,
    |_, _| da += 1,
    |i, e| {
      batch.push((i, e.value));
      Ok::<(), ()>(())
    },
  )
  .unwrap();
  let single: Vec<(usize, u32)> = keys
    .iter()
    .enumerate()
    .filter_map(|(i, k)| b.get(k, || 10.0, |_, _| db += 1).map(|e| (i, e.value)))
    .collect();
  assert_eq!(batch, single);
  assert_eq!(da, db, "the same expired entries disposed");
  let order_a: Vec<u32> = a.iter(|| 10.0).map(|(k, _)| *k).collect();
  let order_b: Vec<u32> = b.iter(|| 10.0).map(|(k, _)| *k).collect();
  assert_eq!(order_a, order_b, "promotions happen in the same order");
  (batch, a)
}

#[test]
fn get_many_equals_repeated_get() {
  let keys: Vec<u32> = (0..200u32).map(|i| (i * 37) % 70).collect();
  let (_, mut a) = get_many_matches_get(50, 60, 7, &keys);
  // an error from `found` stops the batch
  let mut seen = 0;
  let r = a.get_many(
    keys.len(),
    |i| &keys[i],
    || 10.0,
    keep,
    |_, _| {
      seen += 1;
      if seen == 3 {
        Err("stop")
      } else {
        Ok(())
      }
    },
  );
  assert_eq!((r, seen), (Err("stop"), 3));
}

#[test]
fn get_many_across_the_hash_ring_equals_repeated_get() {
  // More keys than GET_MANY_AHEAD, so the ring of hashes wraps several times.
  let n = 3 * GET_MANY_AHEAD + 5;
  let keys: Vec<u32> = (0..n as u32).map(|i| (i * 7919) % 700).collect();
  let (batch, _) = get_many_matches_get(500, 600, 5, &keys);
  assert!(
    batch.len() > GET_MANY_AHEAD && batch.len() < n,
    "hits and misses"
  );
  assert!(
    batch.iter().any(|&(i, _)| i >= 2 * GET_MANY_AHEAD),
    "hits after the ring wrapped"
  );
}

#[test]
fn remove_of_expired_entry_reports_missing() {
  let mut c = TimedLru::new(Capacity::Bounded(2)).unwrap();
  c.insert(1, 1, 0.0, 10.0, keep);
  let mut disposed = 0;
  assert!(c.remove(&1, || 20.0, |_, _| disposed += 1).is_none());
  assert_eq!((disposed, c.len()), (1, 0));
}

#[test]
fn peek_lru_reclaims_expired_tail() {
  let mut c = TimedLru::new(Capacity::Bounded(3)).unwrap();
  c.insert(1, 1, 0.0, 10.0, keep);
  c.insert(2, 2, 0.0, 10.0, keep);
  c.insert(3, 3, 0.0, f64::INFINITY, keep);
  let mut disposed = Vec::new();
  assert_eq!(
    c.peek_lru(|| 10.0, |k, _| disposed.push(k))
      .map(|(k, _)| *k),
    Some(3)
  );
  assert_eq!(disposed, [1, 2]);
}

#[test]
fn purge_stale_removes_only_expired() {
  let mut c = TimedLru::new(Capacity::Bounded(8)).unwrap();
  for i in 0..8 {
    c.insert(
      i,
      i,
      0.0,
      if i % 2 == 0 { 5.0 } else { f64::INFINITY },
      keep,
    );
  }
  let mut n = 0;
  assert_eq!(c.purge_stale(|| 6.0, |_, _| n += 1), 4);
  assert_eq!((n, c.len()), (4, 4));
}

#[test]
fn unbounded_grows_and_keeps_order() {
  let mut c = TimedLru::new(Capacity::Unbounded).unwrap();
  for i in 0..1000u32 {
    c.insert(i, i, i as f64, f64::INFINITY, keep);
  }
  assert_eq!(c.len(), 1000);
  for i in 0..1000u32 {
    let (k, v) = c.pop_lru(|| 0.0, keep).unwrap();
    assert_eq!((k, v.timestamp), (i, i as f64));
  }
}

#[test]
fn disposal_accounts_for_every_value() {
  let token = Rc::new(());
  {
    let mut c = TimedLru::new(Capacity::Bounded(4)).unwrap();
    let mut disposed = 0;
    for i in 0..10 {
      c.insert(i % 6, Rc::clone(&token), 0.0, f64::INFINITY, |_, _| {
        disposed += 1
      });
    }
    assert_eq!(Rc::strong_count(&token), 1 + c.len());
    c.clear(|_, _| disposed += 1);
    assert_eq!(disposed, 10);
  }
  assert_eq!(Rc::strong_count(&token), 1);
}
