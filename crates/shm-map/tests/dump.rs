//! Dump and load (module `dump`): round trips of every value type and of
//! TTLs on the injectable clock, expired entries, every truncation point and
//! byte flips of a small dump (an error, never a panic, and nothing loaded),
//! entries the target map cannot hold, a full target, files, and a proptest
//! round trip.

use std::collections::HashMap;
use std::io::Cursor;

use lrukit_shm_map::{Eviction, Options, SharedMap, Value, ValueRef, DUMP_MAGIC, DUMP_VERSION};
use proptest::prelude::*;

const T0: u64 = 1_700_000_000_000;

fn map_with(f: impl FnOnce(&mut Options)) -> SharedMap {
  let mut o = Options {
    capacity: Some(256),
    max_key_bytes: 64,
    max_value_bytes: 256,
    shards: Some(4),
    ..Options::default()
  };
  f(&mut o);
  let m = SharedMap::in_memory(&o).unwrap();
  m.debug_set_clock(Some(T0));
  m
}

fn map() -> SharedMap {
  map_with(|_| {})
}

fn dump(m: &SharedMap) -> Vec<u8> {
  let mut out = Vec::new();
  m.dump_to(&mut out).unwrap();
  out
}

fn entries(m: &SharedMap) -> HashMap<Vec<u8>, Value> {
  m.entries().unwrap().into_iter().collect()
}

fn every_type(m: &SharedMap) {
  m.set(b"s", ValueRef::String(b"text \xe2\x9c\x93"), None)
    .unwrap();
  m.set(b"n", ValueRef::Number(-1.5e300), None).unwrap();
  m.set(b"nan", ValueRef::Number(f64::NAN), None).unwrap();
  m.set(b"i", ValueRef::BigInt(i64::MIN), None).unwrap();
  m.set(b"t", ValueRef::Bool(true), None).unwrap();
  m.set(b"f", ValueRef::Bool(false), None).unwrap();
  m.set(b"z", ValueRef::Null, None).unwrap();
  m.set(b"b", ValueRef::Bytes(&[0, 255, 7]), None).unwrap();
  m.set(b"e", ValueRef::Bytes(&[]), None).unwrap();
  m.set(b"j", ValueRef::Json(br#"{"a":[1,2]}"#), None)
    .unwrap();
  m.set(&[], ValueRef::String(b"empty key"), None).unwrap();
}

fn same(a: &HashMap<Vec<u8>, Value>, b: &HashMap<Vec<u8>, Value>) {
  assert_eq!(a.len(), b.len());
  for (k, v) in a {
    match (v, &b[k]) {
      (Value::Number(x), Value::Number(y)) => assert_eq!(x.to_bits(), y.to_bits()),
      (x, y) => assert_eq!(x, y, "key {k:?}"),
    }
  }
}

#[test]
fn every_value_type_round_trips() {
  let a = map();
  every_type(&a);
  let file = dump(&a);
  assert_eq!(&file[..10], DUMP_MAGIC);
  assert_eq!(u16::from_le_bytes([file[10], file[11]]), DUMP_VERSION);
  let b = map();
  assert_eq!(b.load_from(Cursor::new(&file)).unwrap(), 11);
  same(&entries(&a), &entries(&b));
  assert!(b.verify().ok);
  // load merges: existing keys are replaced, others kept
  let c = map();
  c.set(b"s", ValueRef::Number(1.0), None).unwrap();
  c.set(b"other", ValueRef::Number(2.0), None).unwrap();
  assert_eq!(c.load_from(Cursor::new(&file)).unwrap(), 11);
  assert_eq!(c.get(b"s").unwrap(), a.get(b"s").unwrap());
  assert_eq!(c.get(b"other").unwrap(), Some(Value::Number(2.0)));
}

#[test]
fn ttls_count_from_the_dump_and_time_on_disk_counts() {
  let a = map_with(|o| o.default_ttl_ms = 60_000);
  a.set(b"forever", ValueRef::Number(1.0), Some(0)).unwrap();
  a.set(b"default", ValueRef::Number(2.0), None).unwrap(); // expires T0 + 60 s
  a.set(b"long", ValueRef::Number(3.0), Some(5_000)).unwrap(); // T0 + 5 s
  a.set(b"short", ValueRef::Number(4.0), Some(1_500)).unwrap(); // T0 + 1.5 s
  a.set(b"gone", ValueRef::Number(5.0), Some(500)).unwrap(); // T0 + 0.5 s
  a.debug_advance_clock(1_000);
  // the expired entry is not dumped
  let mut file = Vec::new();
  assert_eq!(a.dump_to(&mut file).unwrap(), 4);

  // loaded 2 s after the dump (T0 + 3 s) into a map whose default TTL is 1 ms
  let b = map_with(|o| o.default_ttl_ms = 1);
  b.debug_set_clock(Some(T0 + 3_000));
  assert_eq!(
    b.load_from(Cursor::new(&file)).unwrap(),
    3,
    "'short' ran out on disk"
  );
  assert_eq!(b.get(b"short").unwrap(), None);
  b.debug_advance_clock(1_999); // T0 + 4.999 s
  assert_eq!(b.get(b"long").unwrap(), Some(Value::Number(3.0)));
  b.debug_advance_clock(1); // T0 + 5 s: its deadline
  assert_eq!(b.get(b"long").unwrap(), None);
  b.debug_advance_clock(54_999); // T0 + 59.999 s
  assert_eq!(b.get(b"default").unwrap(), Some(Value::Number(2.0)));
  b.debug_advance_clock(1);
  assert_eq!(b.get(b"default").unwrap(), None);
  // no expiry stays no expiry (the target's default TTL does not apply)
  b.debug_advance_clock(1 << 40);
  assert_eq!(b.get(b"forever").unwrap(), Some(Value::Number(1.0)));

  // a load long after every deadline loads only the entry without expiry
  let c = map();
  c.debug_set_clock(Some(T0 + 3_600_000));
  assert_eq!(c.load_from(Cursor::new(&file)).unwrap(), 1);
  assert_eq!(c.keys().unwrap(), vec![b"forever".to_vec()]);
}

#[test]
fn an_entry_read_back_within_a_millisecond_of_its_deadline_still_has_a_ttl() {
  let a = map();
  a.set(b"k", ValueRef::Null, Some(1)).unwrap();
  let file = dump(&a);
  let b = map();
  assert_eq!(b.load_from(Cursor::new(&file)).unwrap(), 1);
  b.debug_advance_clock(1);
  assert_eq!(
    b.get(b"k").unwrap(),
    None,
    "remaining 1 ms, not 'no expiry'"
  );
}

#[test]
fn an_empty_map_dumps_a_valid_empty_file() {
  let file = dump(&map());
  assert_eq!(file.len(), 24 + 17);
  assert_eq!(map().load_from(Cursor::new(&file)).unwrap(), 0);
}

#[test]
fn recency_order_within_a_shard_survives() {
  // one shard, eviction by capacity: after the load, the oldest entries of
  // the dump are the first evicted
  let one = |cap| {
    map_with(|o| {
      o.shards = Some(1);
      o.capacity = Some(cap);
    })
  };
  let a = one(8);
  for i in 0..8u8 {
    a.set(&[b'k', i], ValueRef::Number(i as f64), None).unwrap();
  }
  let file = dump(&a);
  let b = one(8);
  b.load_from(Cursor::new(&file)).unwrap();
  b.set(b"new", ValueRef::Null, None).unwrap();
  assert_eq!(b.get(b"k\x00").unwrap(), None, "the oldest went first");
  assert_eq!(b.get(b"k\x07").unwrap(), Some(Value::Number(7.0)));
}

fn small_dump() -> Vec<u8> {
  let a = map();
  a.set(b"key", ValueRef::String(b"value"), Some(10_000))
    .unwrap();
  a.set(b"n", ValueRef::Number(2.0), None).unwrap();
  a.set(b"t", ValueRef::Bool(true), None).unwrap();
  dump(&a)
}

fn refused(file: &[u8]) -> lrukit_shm_map::Error {
  let b = map();
  let e = b
    .load_from(Cursor::new(file))
    .expect_err("a damaged dump must be refused");
  assert!(b.is_empty(), "nothing may be loaded from a refused dump");
  e
}

#[test]
fn every_truncation_is_refused_and_loads_nothing() {
  let file = small_dump();
  for len in 0..file.len() {
    let e = refused(&file[..len]);
    assert_eq!(e.code, "EBADDUMP", "cut at {len}: {e}");
  }
  assert!(refused(&[]).message.contains("empty"));
  assert!(refused(&file[..30]).message.contains("truncated"));
}

#[test]
fn every_byte_flip_is_refused_and_loads_nothing() {
  let file = small_dump();
  for i in 0..file.len() {
    for mask in [0x01u8, 0x80, 0xff, 0x10] {
      let mut f = file.clone();
      f[i] ^= mask;
      let e = refused(&f);
      assert_eq!(e.code, "EBADDUMP", "byte {i} ^ {mask:#x}: {e}");
    }
  }
}

#[test]
fn foreign_files_other_versions_and_trailing_bytes_are_refused() {
  let file = small_dump();
  let e = refused(b"{\"not\": \"a dump\"}\n");
  assert!(e.message.contains("not an lrukit dump"), "{e}");
  let mut v2 = file.clone();
  v2[10] = 2;
  let e = refused(&v2);
  assert!(e.message.contains("version 2"), "{e}");
  let mut flags = file.clone();
  flags[12] = 1;
  assert!(refused(&flags).message.contains("flags"));
  let mut longer = file.clone();
  longer.push(0);
  assert!(refused(&longer).message.contains("follow the trailer"));
  let mut twice = file.clone();
  twice.extend_from_slice(&file);
  assert_eq!(refused(&twice).code, "EBADDUMP");
}

/// A header followed by `body` (no trailer).
fn raw(body: &[u8]) -> Vec<u8> {
  let mut f = small_dump()[..24].to_vec();
  f.extend_from_slice(body);
  f
}

#[test]
fn hostile_lengths_are_refused_before_allocating() {
  // a key length over the format's limit
  let mut b = vec![1u8];
  b.extend_from_slice(&u32::MAX.to_le_bytes());
  let e = refused(&raw(&b));
  assert!(e.message.contains("over the format's limit"), "{e}");
  // a key length within the format's limit but over the map's, then EOF:
  // streamed (not allocated) until the end
  let mut b = vec![1u8];
  b.extend_from_slice(&60_000u32.to_le_bytes());
  assert!(refused(&raw(&b)).message.contains("truncated"));
  // a 64 MiB value declared in a file that ends: streamed, truncated
  let mut b = vec![1u8, 1, 0, 0, 0, b'k', 1];
  b.extend_from_slice(&(64u32 << 20).to_le_bytes());
  assert!(refused(&raw(&b)).message.contains("truncated"));
  // one byte over the format's value limit, and an unknown tag
  let mut b = vec![1u8, 1, 0, 0, 0, b'k', 1];
  b.extend_from_slice(&((64u32 << 20) + 1).to_le_bytes());
  assert!(refused(&raw(&b)).message.contains("not a valid value"));
  let b = [1u8, 1, 0, 0, 0, b'k', 9, 0, 0, 0, 0];
  assert!(refused(&raw(&b)).message.contains("not a valid value"));
  // a number of the wrong length
  let b = [1u8, 1, 0, 0, 0, b'k', 2, 4, 0, 0, 0];
  assert!(refused(&raw(&b)).message.contains("not a valid value"));
}

#[test]
fn entries_the_target_cannot_hold_load_nothing() {
  let big = map_with(|o| o.max_value_bytes = 200);
  big.set(b"a", ValueRef::Number(1.0), None).unwrap();
  big.set(b"v", ValueRef::Bytes(&[7; 100]), None).unwrap();
  big
    .set(
      b"a key of forty bytes..................",
      ValueRef::Null,
      None,
    )
    .unwrap();
  let file = dump(&big);
  let small_value = map_with(|o| o.max_value_bytes = 50);
  let e = small_value.load_from(Cursor::new(&file)).unwrap_err();
  assert_eq!(e.code, "EVALUETOOLONG", "{e}");
  assert!(small_value.is_empty());
  let small_key = map_with(|o| o.max_key_bytes = 16);
  let e = small_key.load_from(Cursor::new(&file)).unwrap_err();
  assert_eq!(e.code, "EKEYTOOLONG", "{e}");
  assert!(small_key.is_empty());
  // damage is reported as damage, even past an entry that does not fit
  let mut damaged = file.clone();
  let last = damaged.len() - 1;
  damaged[last] ^= 1;
  assert_eq!(
    small_key.load_from(Cursor::new(&damaged)).unwrap_err().code,
    "EBADDUMP"
  );
}

#[test]
fn a_full_target_stops_the_load_and_says_how_many_were_loaded() {
  let a = map_with(|o| o.shards = Some(1));
  for i in 0..20u8 {
    a.set(&[i], ValueRef::Number(i as f64), None).unwrap();
  }
  let file = dump(&a);
  let b = map_with(|o| {
    o.shards = Some(1);
    o.capacity = Some(5);
    o.eviction = Eviction::None;
  });
  let e = b.load_from(Cursor::new(&file)).unwrap_err();
  assert_eq!(e.code, "EFULL", "{e}");
  let n = b.len();
  assert!(n > 0 && n < 20);
  assert!(
    e.message.contains(&format!("{n} entries were loaded")),
    "{e}"
  );
  assert!(b.verify().ok);
}

#[test]
fn files_are_replaced_atomically_and_errors_name_them() {
  let dir = std::env::temp_dir().join(format!("lrukit-dump-{}", std::process::id()));
  std::fs::create_dir_all(&dir).unwrap();
  let path = dir.join("map.dump");
  let a = map();
  every_type(&a);
  assert_eq!(a.dump_file(&path).unwrap(), 11);
  assert_eq!(std::fs::read(&path).unwrap().len() as u64, {
    let f = dump(&a);
    f.len() as u64
  });
  // no temporary file is left behind
  assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
  let b = map();
  assert_eq!(b.load_file(&path).unwrap(), 11);
  same(&entries(&a), &entries(&b));

  // dumps running at once to one file each write their own temporary file
  std::thread::scope(|s| {
    for _ in 0..4 {
      s.spawn(|| assert_eq!(a.dump_file(&path).unwrap(), 11));
    }
  });
  assert_eq!(b.load_file(&path).unwrap(), 11);
  assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

  let missing = dir.join("missing.dump");
  let e = b.load_file(&missing).unwrap_err();
  assert_eq!(e.code, "EIO");
  assert!(e.message.contains("missing.dump"), "{e}");
  let e = a
    .dump_file(dir.join("no-such-dir").join("x.dump"))
    .unwrap_err();
  assert_eq!(e.code, "EIO");
  assert!(e.message.contains("x.dump"), "{e}");
  std::fs::write(&path, b"garbage").unwrap();
  let e = b.load_file(&path).unwrap_err();
  assert_eq!(e.code, "EBADDUMP");
  assert!(e.message.contains("map.dump"), "{e}");
  std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_named_map_round_trips_through_shared_memory() {
  let name = format!("dmp-{:x}", std::process::id());
  let _ = SharedMap::unlink(&name);
  let a = SharedMap::create(&name, &Options::new(1000)).unwrap();
  for i in 0..1000u32 {
    a.set(&i.to_le_bytes(), ValueRef::Number(i as f64), None)
      .unwrap();
  }
  let file = dump(&a);
  a.clear().unwrap();
  assert_eq!(a.load_from(Cursor::new(&file)).unwrap(), 1000);
  for i in 0..1000u32 {
    assert_eq!(
      a.get(&i.to_le_bytes()).unwrap(),
      Some(Value::Number(i as f64))
    );
  }
  SharedMap::unlink(&name).unwrap();
}

fn values() -> impl Strategy<Value = Value> {
  let bytes = proptest::collection::vec(any::<u8>(), 0..100);
  prop_oneof![
    bytes.clone().prop_map(Value::String),
    any::<f64>().prop_map(Value::Number),
    any::<i64>().prop_map(Value::BigInt),
    any::<bool>().prop_map(Value::Bool),
    Just(Value::Null),
    bytes.clone().prop_map(Value::Bytes),
    bytes.prop_map(Value::Json),
  ]
}

proptest! {
  #![proptest_config(ProptestConfig::with_cases(64))]
  /// Whatever the entries and TTLs, a dump loaded at the same time into an
  /// empty map gives the same entries, and each TTL'd entry expires exactly
  /// when it did in the source.
  #[test]
  fn round_trip(
    writes in proptest::collection::vec(
      (proptest::collection::vec(any::<u8>(), 0..64), values(), prop_oneof![Just(0u64), 1u64..100_000]),
      0..60,
    ),
    later in 0u64..200_000,
  ) {
    let a = map();
    for (k, v, ttl) in &writes {
      a.set(k, v.as_ref(), Some(*ttl)).unwrap();
    }
    let file = dump(&a);
    let b = map();
    prop_assert_eq!(b.load_from(Cursor::new(&file)).unwrap(), a.len());
    let (ea, eb) = (entries(&a), entries(&b));
    prop_assert_eq!(ea.len(), eb.len());
    for (k, v) in &ea {
      prop_assert_eq!(format!("{v:?}"), format!("{:?}", eb[k]));
    }
    a.debug_advance_clock(later);
    b.debug_advance_clock(later);
    prop_assert_eq!(a.keys().unwrap().len(), b.keys().unwrap().len());
  }
}
