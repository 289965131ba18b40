//! Hostile memory: random bytes of a live segment are overwritten while
//! other handles keep operating on it. Every call must return (in bounded
//! time) a value or an error — never panic, hang or touch memory out of
//! bounds — and one `repair()` afterwards must make `verify()` clean.
//!
//! The bytes of the shard lock objects are excluded: on Linux glibc keeps
//! robust-list pointers inside a locked `pthread_mutex_t` (documented limit).

mod common;
use common::{opts, Name};
use lrukit_shm_map::{Eviction, Options, SharedMap, Value, ValueRef};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn xorshift(x: &mut u64) -> u64 {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  *x
}

const ALLOWED: &[&str] = &["ECORRUPT", "ETIMEDOUT", "EFULL", "ETYPE", "ERANGE"];

fn check<T>(what: &str, r: Result<T, lrukit_shm_map::Error>) -> Option<T> {
  match r {
    Ok(v) => Some(v),
    Err(e) => {
      assert!(ALLOWED.contains(&e.code), "{what}: unexpected error {e}");
      None
    }
  }
}

fn check_value(v: &Option<Value>, max_value: usize) {
  if let Some(Value::String(b) | Value::Bytes(b) | Value::Json(b)) = v {
    assert!(b.len() <= max_value, "value of {} bytes", b.len());
  }
}

fn worker(name: String, seed: u64, stop: Arc<AtomicBool>) -> (u64, Duration) {
  let m = SharedMap::open(&name).unwrap();
  m.set_lock_timeout(Duration::from_millis(50));
  let mut x = seed | 1;
  let mut ops = 0;
  let mut slowest = Duration::ZERO;
  while !stop.load(Ordering::Relaxed) {
    let r = xorshift(&mut x);
    let key = format!("key{}", (r >> 16) % 3000);
    let k = key.as_bytes();
    let t = Instant::now();
    match r % 16 {
      0..=5 => check_value(&check("get", m.get(k)).flatten(), 48),
      6 => check_value(&check("peek", m.peek(k)).flatten(), 48),
      7 => {
        check("contains", m.contains(k));
      }
      8 => {
        check("set", m.set(k, ValueRef::Bytes(&r.to_le_bytes()), None));
      }
      9 => {
        check("delete", m.delete(k));
      }
      10 => {
        check("incr", m.incr(b"ctr", 1.0, 0.0, None));
      }
      11 => {
        if let Some(keys) = check("keys", m.keys()) {
          assert!(keys.iter().all(|k| k.len() <= 24));
        }
      }
      12 => {
        if let Some(e) = check("entries", m.entries()) {
          for (_, v) in e {
            check_value(&Some(v), 48);
          }
        }
      }
      13 => {
        let st = m.stats();
        assert!(st.size <= st.capacity && st.used_bytes <= st.ring_bytes);
        let _ = m.len();
      }
      14 => {
        let _ = m.verify();
      }
      _ => {
        check(
          "add",
          m.add(k, ValueRef::String(b"added"), Some(1 + r % 100)),
        );
        check(
          "cas",
          m.compare_and_set(k, ValueRef::String(b"added"), ValueRef::Null),
        );
      }
    }
    slowest = slowest.max(t.elapsed());
    ops += 1;
  }
  (ops, slowest)
}

#[test]
fn random_byte_flips_under_load() {
  let n = Name::new("hostile");
  let o = Options {
    capacity: Some(3000),
    max_key_bytes: 24,
    max_value_bytes: 48,
    eviction: Eviction::Lru,
    shards: Some(4),
    ..Options::default()
  };
  let m = SharedMap::create(&n, &o).unwrap();
  m.set_lock_timeout(Duration::from_millis(50));
  for i in 0..2500u32 {
    let k = format!("key{i}");
    let v = match i % 5 {
      0 => ValueRef::Number(i as f64),
      1 => ValueRef::String(b"some string value"),
      2 => ValueRef::BigInt(-(i as i64)),
      3 => ValueRef::Json(br#"{"x":1}"#),
      _ => ValueRef::Bytes(&[7; 40]),
    };
    m.set(k.as_bytes(), v, None).unwrap();
  }
  let locks = m.debug_lock_ranges();
  let in_lock = |off: usize| locks.iter().any(|&(s, l)| off >= s && off < s + l);
  let len = m.segment_len();
  let stop = Arc::new(AtomicBool::new(false));
  let workers: Vec<_> = (0..3u64)
    .map(|i| {
      let name = n.0.clone();
      let stop = stop.clone();
      std::thread::spawn(move || worker(name, 0x9E37_79B9 * (i + 1), stop))
    })
    .collect();
  let mut x = 0xDEAD_BEEF_u64;
  let mut flips = 0u64;
  let until = Instant::now() + Duration::from_millis(1500);
  while Instant::now() < until {
    for _ in 0..20 {
      let r = xorshift(&mut x);
      // Mostly the shard area, sometimes the header and lanes.
      let off = if r.is_multiple_of(50) {
        (r >> 8) as usize % 20480
      } else {
        (r >> 8) as usize % len
      };
      if in_lock(off) {
        continue;
      }
      let byte = match r % 4 {
        0 => 0,
        1 => 0xff,
        _ => (r >> 56) as u8,
      };
      m.debug_corrupt(off, byte);
      flips += 1;
    }
    std::thread::sleep(Duration::from_micros(200));
  }
  stop.store(true, Ordering::Relaxed);
  let mut total_ops = 0;
  for w in workers {
    let (ops, slowest) = w.join().expect("a worker panicked");
    total_ops += ops;
    assert!(
      slowest < Duration::from_secs(2),
      "an operation took {slowest:?}"
    );
  }
  assert!(total_ops > 100, "{total_ops}");
  eprintln!(
    "hostile: {flips} byte flips, {total_ops} operations, stats {:?}",
    m.stats()
  );
  // One repair makes everything consistent again, and the map works.
  m.repair().unwrap();
  let r = m.verify();
  assert!(r.ok, "{:?}", r.problems);
  m.set(b"after", ValueRef::String(b"ok"), None).unwrap();
  assert_eq!(
    m.get(b"after").unwrap(),
    Some(Value::String(b"ok".to_vec()))
  );
  // A new handle: the header may be damaged (refused), or intact.
  match SharedMap::open(&n) {
    Ok(m2) => assert!(m2.verify().ok),
    Err(e) => assert!(e.code == "EINCOMPAT" || e.code == "ECORRUPT", "{e}"),
  }
}

#[test]
fn every_header_byte_is_checked() {
  let n = Name::new("hdr");
  let m = SharedMap::create(&n, &opts(100)).unwrap();
  for off in 0..128usize {
    let b = m.debug_read(off);
    m.debug_corrupt(off, b ^ 0x80);
    let e = SharedMap::open(&n).expect_err(&format!("byte {off}"));
    assert_eq!(e.code, "EINCOMPAT", "byte {off}: {e}");
    m.debug_corrupt(off, b);
  }
  SharedMap::open(&n).unwrap();
  // Not READY and nobody holds the creation lock: its creator is gone.
  // `open` says so at once with its own code.
  m.debug_corrupt(12, 0);
  let t = Instant::now();
  let e = SharedMap::open(&n).unwrap_err();
  assert_eq!(e.code, "EUNINIT", "{e}");
  assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
  m.debug_corrupt(12, 1);
  SharedMap::open(&n).unwrap();
}

#[test]
fn damaged_shard_structures_are_repaired_on_access() {
  // Deterministic damage of each derived structure: the next operation
  // notices, repairs the shard and succeeds; no entry is lost.
  let n = Name::new("damage");
  let m = SharedMap::create(
    &n,
    &Options {
      shards: Some(1),
      // Which damage an operation meets depends on where keys hash: fix it.
      hash_seed: Some(0x6c72_756b_6974_5331),
      ..opts(64)
    },
  )
  .unwrap();
  let base = 20480usize; // the first shard
                         // (offset in the shard, width, name, whether get/set/delete notice it).
                         // The byte counts are read only by stats and 'none' maps: verify()
                         // reports them and repair() fixes them.
  let fields: &[(usize, usize, &str, bool)] = &[
    (64, 8, "seq", true),
    (72, 8, "len", true),
    (80, 8, "ring head", true),
    (88, 8, "ring tail", true),
    (184, 8, "live bytes", false),
    (192, 8, "live record bytes", false),
    (256, 256, "index cells", true),
  ];
  for &(off, width, what, noticed) in fields {
    m.clear().unwrap();
    for i in 0..40u8 {
      m.set(&[i], ValueRef::BigInt(i as i64), None).unwrap();
    }
    for b in 0..width {
      m.debug_corrupt(base + off + b, 0x5b); // odd: also makes seq odd
    }
    // Reads and writes keep working (through a repair where needed).
    for i in 0..40u8 {
      match m.get(&[i]) {
        Ok(v) => assert_eq!(v, Some(Value::BigInt(i as i64)), "{what}: key {i}"),
        Err(e) => panic!("{what}: {e}"),
      }
    }
    m.set(b"new", ValueRef::Null, None).unwrap();
    m.delete(&[3]).unwrap();
    if !noticed {
      assert!(!m.verify().ok, "{what}");
      m.repair().unwrap();
    }
    let r = m.verify();
    assert!(r.ok, "{what}: {:?}", r.problems);
    assert_eq!(m.len(), 40, "{what}");
  }
  assert!(m.stats().repairs >= 7, "{:?}", m.stats());
}
