//! Every operation on `SharedMap::in_memory` (a heap buffer instead of
//! named shared memory): the harness Miri runs (no shm_open, no fork; the
//! clock is fixed with `debug_set_clock`), and a plain test suite otherwise.
//!
//! Under Miri: `cargo +nightly miri test -p lrukit-shm-map --features
//! lease-lock --test in_memory` (the lease lock is a plain atomic word; the
//! robust pthread mutex is not something Miri can run). The lease lock reads
//! `/proc/<pid>/stat` for its owner word, so Miri needs
//! `-Zmiri-disable-isolation` (see scripts/checkers.sh).

use lrukit_shm_map::{Eviction, Options, SharedMap, Value, ValueRef};
use std::time::Duration;

const T0: u64 = 1_700_000_000_000;

fn map(capacity: u32, shards: u32, eviction: Eviction) -> SharedMap {
  let m = SharedMap::in_memory(&Options {
    capacity: Some(capacity),
    max_key_bytes: 16,
    max_value_bytes: 32,
    eviction,
    shards: Some(shards),
    hash_seed: Some(7),
    ..Options::default()
  })
  .unwrap();
  m.debug_set_clock(Some(T0));
  m
}

fn s(v: &str) -> Value {
  Value::String(v.as_bytes().to_vec())
}

#[test]
fn every_operation() {
  let m = map(16, 2, Eviction::Lru);
  assert!(m.is_empty());
  m.set(b"a", ValueRef::String(b"one"), None).unwrap();
  m.set(b"n", ValueRef::Number(1.5), None).unwrap();
  m.set(b"b", ValueRef::BigInt(i64::MAX - 1), None).unwrap();
  m.set(b"t", ValueRef::Bool(true), None).unwrap();
  m.set(b"z", ValueRef::Null, None).unwrap();
  m.set(b"y", ValueRef::Bytes(&[0, 1, 2]), None).unwrap();
  m.set(b"j", ValueRef::Json(b"[1]"), None).unwrap();
  assert_eq!(m.len(), 7);

  assert_eq!(m.get(b"a").unwrap(), Some(s("one")));
  assert_eq!(m.peek(b"n").unwrap(), Some(Value::Number(1.5)));
  assert!(m.contains(b"t").unwrap());
  assert!(!m.contains(b"missing").unwrap());
  assert_eq!(m.get(b"z").unwrap(), Some(Value::Null));
  assert_eq!(m.get(b"y").unwrap(), Some(Value::Bytes(vec![0, 1, 2])));
  assert_eq!(
    m.get_with(b"j", |v| v.to_owned_value()).unwrap(),
    Some(Value::Json(b"[1]".to_vec()))
  );
  assert_eq!(m.peek_with(b"missing", |_| ()).unwrap(), None);
  let many = m
    .get_many_with(&[b"a", b"missing", b"t"], |i, v| {
      (i, v.map(|v| v.to_owned_value()))
    })
    .unwrap();
  assert_eq!(
    many,
    vec![(0, Some(s("one"))), (1, None), (2, Some(Value::Bool(true)))]
  );

  // add only when absent
  assert!(!m.add(b"a", ValueRef::String(b"two"), None).unwrap());
  assert!(m.add(b"c", ValueRef::String(b"two"), None).unwrap());
  // incr: numbers, bigints, new keys, type and range errors
  assert_eq!(m.incr(b"n", 2.0, 0.0, None).unwrap(), 3.5);
  assert_eq!(m.incr(b"new", 1.0, 10.0, None).unwrap(), 11.0);
  assert_eq!(
    m.incr_value(b"b", 1.0, 0.0, None).unwrap(),
    Value::BigInt(i64::MAX)
  );
  assert_eq!(
    m.incr_value(b"b", 1.0, 0.0, None).unwrap_err().code,
    "ERANGE"
  );
  assert_eq!(
    m.incr_value(b"b", 0.5, 0.0, None).unwrap_err().code,
    "ERANGE"
  );
  assert_eq!(m.incr(b"a", 1.0, 0.0, None).unwrap_err().code, "ETYPE");
  // compare_and_set
  assert!(!m
    .compare_and_set(b"a", ValueRef::String(b"two"), ValueRef::Null)
    .unwrap());
  assert!(m
    .compare_and_set(b"a", ValueRef::String(b"one"), ValueRef::Number(-0.0))
    .unwrap());
  assert!(m
    .compare_and_set(b"a", ValueRef::Number(0.0), ValueRef::Bool(false))
    .unwrap());
  assert_eq!(m.get(b"a").unwrap(), Some(Value::Bool(false)));
  // limits
  assert_eq!(
    m.set(&[1; 17], ValueRef::Null, None).unwrap_err().code,
    "EKEYTOOLONG"
  );
  assert_eq!(
    m.set(b"k", ValueRef::Bytes(&[0; 33]), None)
      .unwrap_err()
      .code,
    "EVALUETOOLONG"
  );
  assert_eq!(m.get(&[1; 17]).unwrap(), None);
  // keys and entries
  let mut keys = m.keys().unwrap();
  keys.sort();
  let want: Vec<Vec<u8>> = ["a", "b", "c", "j", "n", "new", "t", "y", "z"]
    .iter()
    .map(|k| k.as_bytes().to_vec())
    .collect();
  assert_eq!(keys, want);
  let entries = m.entries().unwrap();
  assert_eq!(entries.len(), 9);
  assert!(entries.contains(&(b"c".to_vec(), s("two"))));
  // delete
  assert!(m.delete(b"c").unwrap());
  assert!(!m.delete(b"c").unwrap());
  assert_eq!(m.get(b"c").unwrap(), None);

  let st = m.stats();
  assert_eq!(st.size, 8);
  assert_eq!(st.deletes, 1);
  assert_eq!((st.hits, st.misses), (7, 3), "{st:?}");
  assert_eq!((st.lock_recoveries, st.repairs), (0, 0));
  assert!(m.verify().ok);

  m.clear().unwrap();
  assert!(m.is_empty());
  assert_eq!(m.keys().unwrap(), Vec::<Vec<u8>>::new());
  assert!(m.verify().ok);
}

#[test]
fn ttl_on_a_fixed_clock() {
  let m = map(8, 1, Eviction::Lru);
  m.set(b"short", ValueRef::Number(1.0), Some(1000)).unwrap();
  m.set(b"long", ValueRef::Number(2.0), Some(5000)).unwrap();
  m.set(b"never", ValueRef::Number(3.0), Some(0)).unwrap();
  m.debug_advance_clock(999);
  assert!(m.contains(b"short").unwrap());
  m.debug_advance_clock(1);
  assert_eq!(m.get(b"short").unwrap(), None);
  assert!(m.add(b"short", ValueRef::Null, Some(0)).unwrap());
  m.debug_advance_clock(4000);
  assert_eq!(m.keys().unwrap().len(), 2);
  assert_eq!(m.len(), 3, "the expired entry stays stored until reclaimed");
  assert_eq!(m.purge_expired().unwrap(), 1);
  assert_eq!(m.len(), 2);
  assert_eq!(m.stats().expirations, 2);
  // evict_older_than: access times are the fixed clock's.
  m.debug_advance_clock(10);
  m.set(b"fresh", ValueRef::Null, None).unwrap();
  assert_eq!(m.evict_older_than(T0 + 5005, None).unwrap(), 2);
  assert_eq!(m.keys().unwrap(), vec![b"fresh".to_vec()]);
  assert!(m.verify().ok);
}

#[test]
fn lru_second_chance_and_efull() {
  let m = map(4, 1, Eviction::Lru);
  for k in [b"a", b"b", b"c", b"d"] {
    m.set(k, ValueRef::Null, None).unwrap();
  }
  // `a` is the LRU tail but was read: it gets a second chance; `b` goes.
  assert!(m.get(b"a").unwrap().is_some());
  m.set(b"e", ValueRef::Null, None).unwrap();
  assert!(m.contains(b"a").unwrap());
  assert!(!m.contains(b"b").unwrap());
  assert_eq!(m.stats().evictions, 1);
  assert_eq!(m.len(), 4);

  let m = map(2, 1, Eviction::None);
  m.set(b"a", ValueRef::Null, None).unwrap();
  m.set(b"b", ValueRef::Null, Some(100)).unwrap();
  assert_eq!(m.set(b"c", ValueRef::Null, None).unwrap_err().code, "EFULL");
  // An update in place needs no room; an expired entry makes room.
  m.set(b"a", ValueRef::Bool(true), None).unwrap();
  m.debug_advance_clock(100);
  m.set(b"c", ValueRef::Null, None).unwrap();
  assert_eq!(m.get(b"a").unwrap(), Some(Value::Bool(true)));
  assert!(m.verify().ok);
}

fn xorshift(x: &mut u64) -> u64 {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  *x
}

const ALLOWED: &[&str] = &["ECORRUPT", "EFULL", "ETYPE", "ERANGE"];

fn allowed<T>(r: Result<T, lrukit_shm_map::Error>) {
  if let Err(e) = r {
    assert!(ALLOWED.contains(&e.code), "{e}");
  }
}

/// Random bytes of the shard regions (lock words excluded) overwritten,
/// then every operation: values or allowed errors, and `repair` makes the
/// map whole again.
#[test]
fn damage_outside_lock_words_then_repair() {
  let rounds = if cfg!(miri) { 2 } else { 40 };
  let hits = if cfg!(miri) { 24 } else { 64 };
  for round in 0..rounds {
    let m = map(12, 2, Eviction::Lru);
    for i in 0..12u32 {
      let k = format!("key{i}");
      m.set(k.as_bytes(), ValueRef::Bytes(&i.to_le_bytes()), None)
        .unwrap();
    }
    let locks = m.debug_lock_ranges();
    let first = locks[0].0;
    let len = m.segment_len();
    let mut x = 0x9e37_79b9_7f4a_7c15 ^ round;
    let mut n = 0;
    while n < hits {
      let off = first + (xorshift(&mut x) as usize % (len - first));
      if locks.iter().any(|&(a, l)| off >= a && off < a + l) {
        continue;
      }
      m.debug_corrupt(off, xorshift(&mut x) as u8);
      n += 1;
    }
    for i in 0..14u32 {
      let k = format!("key{i}");
      let k = k.as_bytes();
      if let Ok(Some(Value::String(b) | Value::Bytes(b) | Value::Json(b))) = m.get(k) {
        assert!(b.len() <= 32);
      }
      allowed(m.peek(k));
      allowed(m.set(k, ValueRef::Number(i as f64), None));
      allowed(m.incr(k, 1.0, 0.0, None));
      allowed(m.compare_and_set(k, ValueRef::Number(1.0), ValueRef::Null));
      if i % 3 == 0 {
        allowed(m.delete(k));
      }
    }
    allowed(m.keys());
    allowed(m.entries());
    allowed(m.evict_older_than(T0 - 1, Some(1)));
    allowed(m.purge_expired());
    m.repair().unwrap();
    let r = m.verify();
    assert!(r.ok, "round {round}: {:?}", r.problems);
    m.set(b"probe", ValueRef::Bool(true), None).unwrap();
    assert_eq!(m.get(b"probe").unwrap(), Some(Value::Bool(true)));
    assert!(m.verify().ok);
  }
}

/// A copy of a segment reopens with the same entries; a damaged header is
/// refused.
#[test]
fn image_round_trip() {
  let m = map(8, 2, Eviction::Lru);
  m.set(b"a", ValueRef::String(b"x"), None).unwrap();
  m.set(b"b", ValueRef::Number(2.0), None).unwrap();
  let image: Vec<u8> = (0..m.segment_len()).map(|i| m.debug_read(i)).collect();
  let opts = Options {
    lock_timeout: Duration::from_millis(5),
    ..Options::default()
  };
  let r = SharedMap::debug_from_image(&image, &opts).unwrap();
  r.debug_set_clock(Some(T0));
  assert_eq!(r.get(b"a").unwrap(), Some(s("x")));
  assert_eq!(r.get(b"b").unwrap(), Some(Value::Number(2.0)));
  assert_eq!(r.options().capacity, Some(8));
  assert!(r.verify().ok);

  let mut bad = image.clone();
  bad[40] ^= 1; // capacity: the checksum no longer matches
  assert_eq!(
    SharedMap::debug_from_image(&bad, &opts).unwrap_err().code,
    "EINCOMPAT"
  );
  assert_eq!(
    SharedMap::debug_from_image(&image[..image.len() - 64], &opts)
      .unwrap_err()
      .code,
    "EINCOMPAT"
  );
  assert_eq!(
    SharedMap::debug_from_image(&image[..100], &opts)
      .unwrap_err()
      .code,
    "EINCOMPAT"
  );
}

/// The lease lock's word damaged: an implausible owner is taken over and
/// the shard repaired; a live owner makes a bounded `ETIMEDOUT`.
#[cfg(feature = "lease-lock")]
#[test]
fn damaged_lease_word() {
  let m = map(4, 1, Eviction::Lru);
  m.set_lock_timeout(Duration::from_millis(50));
  m.set(b"a", ValueRef::Null, None).unwrap();
  let (lock, _) = m.debug_lock_ranges()[0];
  // pid 0xffff_fff0: above i32::MAX, not a process.
  for (i, b) in 0xdead_beef_ffff_fff0u64.to_le_bytes().iter().enumerate() {
    m.debug_corrupt(lock + i, *b);
  }
  m.set(b"b", ValueRef::Null, None).unwrap();
  assert_eq!(m.stats().lock_recoveries, 1);
  assert!(m.contains(b"a").unwrap());

  // This process's pid with no start tag: alive, never taken over.
  m.set_lock_timeout(Duration::from_millis(1));
  for (i, b) in (std::process::id() as u64).to_le_bytes().iter().enumerate() {
    m.debug_corrupt(lock + i, *b);
  }
  assert_eq!(
    m.set(b"c", ValueRef::Null, None).unwrap_err().code,
    "ETIMEDOUT"
  );
  assert_eq!(m.repair().unwrap_err().code, "ETIMEDOUT");
  for i in 0..8 {
    m.debug_corrupt(lock + i, 0);
  }
  m.set(b"c", ValueRef::Null, None).unwrap();
  assert!(m.verify().ok);
}

/// Two threads on one handle (Miri checks the atomics for races).
#[test]
fn threads_share_a_handle() {
  let m = map(32, 2, Eviction::Lru);
  let n = if cfg!(miri) { 20 } else { 2000 };
  std::thread::scope(|sc| {
    for t in 0..2u8 {
      let m = &m;
      sc.spawn(move || {
        for i in 0..n {
          let k = [b'k', t, (i % 7) as u8];
          m.set(&k, ValueRef::Number(i as f64), None).unwrap();
          match m.get(&k).unwrap() {
            Some(Value::Number(x)) => assert_eq!(x, i as f64),
            other => panic!("{other:?}"),
          }
          let o = [b'k', 1 - t, (i % 7) as u8];
          let _ = m.get(&o).unwrap();
          m.incr(b"shared", 1.0, 0.0, None).unwrap();
        }
      });
    }
  });
  assert_eq!(
    m.get(b"shared").unwrap(),
    Some(Value::Number(2.0 * n as f64))
  );
  assert!(m.verify().ok);
}
