//! Unit tests of [`TimedLru`](super::TimedLru).

use super::*;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::hash::Hash;

fn keep<K, V>(_: K, _: Stamped<V>) {}

/// Options of a write stamped `timestamp`, with the cache's default TTL.
fn at(timestamp: f64) -> SetOptions {
  SetOptions {
    timestamp: Some(timestamp),
    ttl: None,
  }
}

/// Options of a write with a TTL of `ms`, stamped by the clock.
fn ttl(ms: f64) -> SetOptions {
  SetOptions {
    timestamp: None,
    ttl: Some(Ttl::from_ms(ms).unwrap()),
  }
}

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
    c.try_insert(i, i, at(i as f64), keep).unwrap();
  }
  // 64 -> 128 doubled; 256 would exceed the limit, so it stopped at 200.
  assert_eq!(c.len(), 200);
  assert_eq!(c.lru.cap(), 200);
  let mut refused = Vec::new();
  let e = c.try_insert(1000, 7, at(0.0), |k, v| refused.push((k, v.value)));
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
  assert!(!c.contains(&1000));
  // Updating a key needs no room.
  c.try_insert(5, 55, at(0.0), keep).unwrap();
  assert_eq!(c.peek(&5).map(|e| e.value), Some(55));
  // After a pop there is room again.
  assert_eq!(c.pop_lru(keep).map(|(k, _)| k), Some(0));
  c.try_insert(1000, 0, at(0.0), keep).unwrap();
  assert_eq!(c.len(), 200);
  // `insert` ignores the limit (and allocates like `Vec`).
  c.insert(2000, 0, at(0.0), keep);
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
  c.insert("a", 1, at(10.0), keep);
  c.insert("b", 2, at(11.0), keep);
  c.insert("a", 3, at(12.0), |k, v| replaced.push((k, v.value)));
  assert_eq!(c.len(), 2);
  assert_eq!(replaced, [("a", 1)]);
  // "a" is now MRU; popping gives b then the newer a.
  assert_eq!(c.pop_lru(keep).map(|(k, v)| (k, v.value)), Some(("b", 2)));
  let (k, v) = c.pop_lru(keep).unwrap();
  assert_eq!((k, v.value, v.timestamp), ("a", 3, 12.0));
  assert!(c.pop_lru(keep).is_none());
}

#[test]
fn size_never_exceeds_capacity_and_evicts_lru() {
  let mut c = TimedLru::new(Capacity::Bounded(2)).unwrap();
  let mut evicted = Vec::new();
  for i in 0..5 {
    c.insert(i, i, at(0.0), |k, _| evicted.push(k));
    assert!(c.len() <= 2);
  }
  assert_eq!(evicted, [0, 1, 2]);
}

#[test]
fn popping_last_entry_leaves_usable_cache() {
  let mut c = TimedLru::new(Capacity::Bounded(1)).unwrap();
  c.insert(String::from("x"), 1, at(5.0), keep);
  let (k, v) = c.pop_lru(keep).unwrap();
  assert_eq!((k.as_str(), v.value, v.timestamp), ("x", 1, 5.0));
  assert!(c.is_empty());
  assert!(c.peek_lru(keep).is_none());
  c.insert(String::from("y"), 2, at(6.0), keep);
  assert_eq!(
    c.peek_lru(keep).map(|(k, v)| (k.as_str(), v.value)),
    Some(("y", 2))
  );
}

/// A bounded cache on a manual clock at 0.
fn manual<K: Hash + Eq, V>(capacity: usize) -> TimedLru<K, V> {
  TimedLru::new(Capacity::Bounded(capacity))
    .unwrap()
    .with_clock(Clock::Manual(0.0))
}

#[test]
fn expired_entries_are_never_returned() {
  let mut c = manual(4);
  c.set_time(100.0).unwrap();
  let mut disposed = Vec::new();
  c.insert("short", 1, ttl(50.0), keep); // deadline 150
  c.insert("long", 2, ttl(900.0), keep); // deadline 1000
  c.insert("forever", 3, SetOptions::default(), keep);
  assert_eq!(c.peek("short").map(|e| e.expires_at), Some(150.0));
  c.advance_time(49.0).unwrap();
  assert!(
    c.get("short", keep).is_some(),
    "live just before its deadline"
  );
  c.advance_time(1.0).unwrap();
  assert!(c.peek("short").is_none(), "expired at its deadline");
  assert!(!c.contains("short"));
  assert_eq!(c.len(), 3, "peek and contains reclaim nothing");
  assert!(c.get("short", |k, _| disposed.push(k)).is_none());
  assert_eq!(disposed, ["short"]);
  assert_eq!(c.len(), 2);
  c.advance_time(4850.0).unwrap();
  let live: Vec<_> = c.iter().map(|(k, _)| *k).collect();
  assert_eq!(live, ["forever"]);
  // "long" is now the LRU entry and expired: pop skips and disposes it.
  assert_eq!(
    c.pop_lru(|k, _| disposed.push(k)).map(|(k, _)| k),
    Some("forever")
  );
  assert_eq!(disposed, ["short", "long"]);
  assert!(c.is_empty());
}

#[test]
fn writes_take_their_timestamp_and_ttl_from_the_cache_unless_given() {
  let mut c = manual(8).with_default_ttl(Ttl::from_ms(10.0).unwrap());
  assert_eq!(c.default_ttl(), Ttl::from_ms(10.0).unwrap());
  c.set_time(5.0).unwrap();
  c.insert("default", 0, SetOptions::default(), keep);
  c.insert("stamped", 0, at(-3.5), keep);
  c.insert("short", 0, ttl(1.0), keep);
  c.insert("never", 0, ttl(0.0), keep);
  let stamp = |c: &TimedLru<&str, i32>, k| c.peek(k).map(|e| (e.timestamp, e.expires_at));
  assert_eq!(stamp(&c, "default"), Some((5.0, 15.0)));
  assert_eq!(
    stamp(&c, "stamped"),
    Some((-3.5, 15.0)),
    "a given timestamp does not move the deadline"
  );
  assert_eq!(stamp(&c, "short"), Some((5.0, 6.0)));
  assert_eq!(stamp(&c, "never"), Some((5.0, f64::INFINITY)));
  // Updating in place restamps.
  c.advance_time(2.0).unwrap();
  c.insert("short", 1, SetOptions::default(), keep);
  assert_eq!(stamp(&c, "short"), Some((7.0, 17.0)));
}

#[test]
fn the_cache_moves_only_a_manual_clock() {
  let mut c = manual::<u8, u8>(1);
  assert_eq!((c.now(), c.clock()), (0.0, &Clock::Manual(0.0)));
  assert_eq!(c.advance_time(2.5), Ok(2.5));
  assert_eq!(c.advance_time(-1.0), Err(ClockError::OutOfRange));
  assert_eq!(c.now(), 2.5);
  #[cfg(feature = "std")]
  {
    let mut s = TimedLru::<u8, u8>::new(Capacity::Bounded(1)).unwrap();
    assert_eq!(s.clock(), &Clock::System);
    assert_eq!(s.advance_time(1.0), Err(ClockError::NotManual));
    assert_eq!(s.set_time(1.0), Err(ClockError::NotManual));
    // Without a TTL, a system-clock cache stamps writes with the wall time.
    let before = Clock::System.now();
    s.insert(1, 1, SetOptions::default(), keep);
    let t = s.peek(&1).unwrap().timestamp;
    assert!(before <= t && t <= Clock::System.now());
  }
}

#[test]
fn a_clock_set_back_revives_entries_not_yet_reclaimed() {
  let mut c = manual(2);
  c.insert(1, 1, ttl(10.0), keep);
  c.set_time(10.0).unwrap();
  assert!(!c.contains(&1));
  c.set_time(9.0).unwrap();
  assert!(c.contains(&1));
}

/// Two caches holding `0..entries` (every `expire_every`-th expiring at
/// time 5, read at time 10): `get_many(keys)` on one and repeated `get` on
/// the other must give the same hits, the same disposals of expired entries
/// and the same recency order. Returns the batch's hits and its cache.
fn get_many_matches_get(
  capacity: usize,
  entries: u32,
  expire_every: u32,
  keys: &[u32],
) -> (Vec<(usize, u32)>, TimedLru<u32, u32>) {
  let mut a = manual(capacity);
  let mut b = manual(capacity);
  for i in 0..entries {
    let options = if i % expire_every == 0 {
      ttl(5.0)
    } else {
      SetOptions::default()
    };
    a.insert(i, i * 10, options, keep);
    b.insert(i, i * 10, options, keep);
  }
  a.set_time(10.0).unwrap();
  b.set_time(10.0).unwrap();
  let mut batch = Vec::new();
  let (mut da, mut db) = (0, 0);
  a.get_many(
    keys.len(),
    |i| &keys[i],
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
    .filter_map(|(i, k)| b.get(k, |_, _| db += 1).map(|e| (i, e.value)))
    .collect();
  assert_eq!(batch, single);
  assert!(da > 0, "some expired entries were read");
  assert_eq!(da, db, "the same expired entries disposed");
  let order_a: Vec<u32> = a.iter().map(|(k, _)| *k).collect();
  let order_b: Vec<u32> = b.iter().map(|(k, _)| *k).collect();
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
  let mut c = manual(2);
  c.insert(1, 1, ttl(10.0), keep);
  c.insert(2, 2, ttl(10.0), keep);
  c.advance_time(9.0).unwrap();
  let mut disposed = 0;
  assert_eq!(c.remove(&2, |_, _| disposed += 1).map(|(k, _)| k), Some(2));
  c.advance_time(1.0).unwrap();
  assert!(c.remove(&1, |_, _| disposed += 1).is_none());
  assert_eq!((disposed, c.len()), (1, 0));
}

#[test]
fn peek_lru_reclaims_expired_tail() {
  let mut c = manual(3);
  c.insert(1, 1, ttl(10.0), keep);
  c.insert(2, 2, ttl(10.0), keep);
  c.insert(3, 3, SetOptions::default(), keep);
  let mut disposed = Vec::new();
  c.set_time(9.0).unwrap();
  assert_eq!(
    c.peek_lru(|k, _| disposed.push(k)).map(|(k, _)| *k),
    Some(1)
  );
  c.set_time(10.0).unwrap();
  assert_eq!(
    c.peek_lru(|k, _| disposed.push(k)).map(|(k, _)| *k),
    Some(3)
  );
  assert_eq!(disposed, [1, 2]);
}

#[test]
fn purge_stale_removes_only_expired() {
  let mut c = manual(8);
  for i in 0..8 {
    c.insert(
      i,
      i,
      if i % 2 == 0 {
        ttl(5.0)
      } else {
        SetOptions::default()
      },
      keep,
    );
  }
  let mut n = 0;
  c.set_time(4.0).unwrap();
  assert_eq!(c.purge_stale(|_, _| n += 1), 0);
  c.set_time(5.0).unwrap();
  assert_eq!(c.purge_stale(|_, _| n += 1), 4);
  assert_eq!((n, c.len()), (4, 4));
}

#[test]
fn unbounded_grows_and_keeps_order() {
  let mut c = TimedLru::new(Capacity::Unbounded).unwrap();
  for i in 0..1000u32 {
    c.insert(i, i, at(i as f64), keep);
  }
  assert_eq!(c.len(), 1000);
  for i in 0..1000u32 {
    let (k, v) = c.pop_lru(keep).unwrap();
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
      c.insert(i % 6, Rc::clone(&token), at(0.0), |_, _| disposed += 1);
    }
    assert_eq!(Rc::strong_count(&token), 1 + c.len());
    c.clear(|_, _| disposed += 1);
    assert_eq!(disposed, 10);
  }
  assert_eq!(Rc::strong_count(&token), 1);
}
