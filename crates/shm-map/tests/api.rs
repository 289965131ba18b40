//! Single-process tests of every API path.

mod common;
use common::{opts, Name};
use lrukit_shm_map::{required_memory_size, Eviction, Options, SharedMap, Value, ValueRef};

#[test]
fn set_get_delete_roundtrip() {
  let n = Name::new("basic");
  let m = SharedMap::create(&n, &opts(100)).unwrap();
  assert_eq!(m.get(b"a").unwrap(), None);
  m.set(b"a", ValueRef::String(b"hello"), None).unwrap();
  assert_eq!(m.get(b"a").unwrap(), Some(Value::String(b"hello".to_vec())));
  m.set(b"a", ValueRef::Number(1.5), None).unwrap();
  assert_eq!(m.get(b"a").unwrap(), Some(Value::Number(1.5)));
  assert_eq!(m.len(), 1);
  assert!(m.delete(b"a").unwrap());
  assert!(!m.delete(b"a").unwrap());
  assert_eq!(m.get(b"a").unwrap(), None);
  assert_eq!(m.len(), 0);
  assert!(m.verify().ok, "{:?}", m.verify());
}

fn all_values() -> Vec<Value> {
  let mut v = vec![
    Value::String(b"".to_vec()),
    Value::String("héllo wörld".as_bytes().to_vec()),
    Value::Number(0.0),
    Value::Number(-1.25e300),
    Value::Number(f64::INFINITY),
    Value::BigInt(i64::MIN),
    Value::BigInt(i64::MAX),
    Value::Bool(true),
    Value::Bool(false),
    Value::Null,
    Value::Bytes(vec![0, 1, 2, 255, 0]),
    Value::Json(br#"{"a":[1,2,{"b":null}]}"#.to_vec()),
  ];
  for len in 0..=17 {
    v.push(Value::Bytes(
      (0..len as u8).map(|b| b.wrapping_mul(37)).collect(),
    ));
  }
  v.push(Value::Bytes(vec![0xab; 256]));
  v
}

#[test]
fn typed_values_round_trip() {
  let n = Name::new("typed");
  let m = SharedMap::create(&n, &opts(200)).unwrap();
  let vals = all_values();
  for (i, v) in vals.iter().enumerate() {
    let key = format!("k{i}");
    m.set(key.as_bytes(), v.as_ref(), None).unwrap();
  }
  let other = SharedMap::open(&n).unwrap();
  for (i, v) in vals.iter().enumerate() {
    let key = format!("k{i}");
    assert_eq!(
      m.get(key.as_bytes()).unwrap().as_ref(),
      Some(v),
      "key {key}"
    );
    assert_eq!(
      other.peek(key.as_bytes()).unwrap().as_ref(),
      Some(v),
      "key {key}"
    );
  }
  // NaN round-trips bit for bit.
  m.set(b"nan", ValueRef::Number(f64::NAN), None).unwrap();
  match m.get(b"nan").unwrap() {
    Some(Value::Number(x)) => assert!(x.is_nan()),
    other => panic!("{other:?}"),
  }
  assert!(m.verify().ok);
}

#[test]
fn keys_of_every_length_and_binary_keys() {
  let n = Name::new("keylen");
  let m = SharedMap::create(&n, &opts(200)).unwrap();
  for len in 0..=64usize {
    let key: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
    m.set(&key, ValueRef::BigInt(len as i64), None).unwrap();
  }
  for len in 0..=64usize {
    let key: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
    assert_eq!(m.get(&key).unwrap(), Some(Value::BigInt(len as i64)));
    // A key that differs only in its last byte is another key.
    if len > 0 {
      let mut k2 = key.clone();
      *k2.last_mut().unwrap() ^= 1;
      assert_ne!(m.get(&k2).unwrap(), Some(Value::BigInt(len as i64)));
    }
  }
  assert_eq!(m.len(), 65);
}

#[test]
fn limits() {
  let n = Name::new("limits");
  let m = SharedMap::create(&n, &opts(10)).unwrap();
  let long_key = vec![b'k'; 65];
  let e = m.set(&long_key, ValueRef::Null, None).unwrap_err();
  assert_eq!(e.code, "EKEYTOOLONG");
  assert_eq!(
    m.add(&long_key, ValueRef::Null, None).unwrap_err().code,
    "EKEYTOOLONG"
  );
  assert_eq!(
    m.incr(&long_key, 1.0, 0.0, None).unwrap_err().code,
    "EKEYTOOLONG"
  );
  assert_eq!(m.get(&long_key).unwrap(), None);
  assert!(!m.delete(&long_key).unwrap());
  assert!(!m.contains(&long_key).unwrap());
  let big = vec![0u8; 257];
  for v in [
    ValueRef::String(&big),
    ValueRef::Bytes(&big),
    ValueRef::Json(&big),
  ] {
    assert_eq!(m.set(b"k", v, None).unwrap_err().code, "EVALUETOOLONG");
  }
  // Fixed-size values always fit, even with max_value_bytes 0.
  let n2 = Name::new("limits0");
  let m2 = SharedMap::create(
    &n2,
    &Options {
      max_value_bytes: 0,
      ..opts(10)
    },
  )
  .unwrap();
  m2.set(b"n", ValueRef::Number(2.0), None).unwrap();
  m2.set(b"s", ValueRef::String(b""), None).unwrap();
  assert_eq!(
    m2.set(b"s", ValueRef::String(b"x"), None).unwrap_err().code,
    "EVALUETOOLONG"
  );
  assert_eq!(m2.get(b"n").unwrap(), Some(Value::Number(2.0)));
  assert!(m.verify().ok && m2.verify().ok);
}

#[test]
fn names_are_validated() {
  for bad in [
    "",
    "a/b",
    "/abc",
    "with space",
    "ünï",
    "x".repeat(25).as_str(),
    "a\0b",
    "..",
    "a.",
    "a\\b",
  ] {
    let r = SharedMap::create(bad, &opts(4));
    assert_eq!(r.unwrap_err().code, "ENAME", "{bad:?}");
    assert_eq!(SharedMap::open(bad).unwrap_err().code, "ENAME");
    assert_eq!(SharedMap::unlink(bad).unwrap_err().code, "ENAME");
  }
  // Dots inside a name are fine.
  let dotted = format!("a.b-{:x}", std::process::id());
  SharedMap::create(&dotted, &opts(4)).unwrap();
  assert!(SharedMap::unlink(&dotted).unwrap());
  let long = format!("n{:x}", std::process::id());
  let long = format!("{long}{}", "x".repeat(24 - long.len()));
  assert_eq!(long.len(), 24);
  let _ = SharedMap::unlink(&long);
  let m = SharedMap::create(&long, &opts(4)).unwrap();
  assert_eq!(m.name(), long);
  assert!(SharedMap::unlink(&long).unwrap());
}

#[test]
fn lifecycle_eexist_enoent_unlink() {
  let n = Name::new("life");
  assert_eq!(SharedMap::open(&n).unwrap_err().code, "ENOENT");
  assert!(!SharedMap::unlink(&n).unwrap());
  let m = SharedMap::create(&n, &opts(10)).unwrap();
  assert_eq!(SharedMap::create(&n, &opts(10)).unwrap_err().code, "EEXIST");
  m.set(b"x", ValueRef::Bool(true), None).unwrap();
  drop(m);
  // The creator does not unlink on drop.
  let m2 = SharedMap::open(&n).unwrap();
  assert_eq!(m2.get(b"x").unwrap(), Some(Value::Bool(true)));
  assert!(SharedMap::unlink(&n).unwrap());
  assert!(!SharedMap::unlink(&n).unwrap());
  // The open handle keeps working on the unlinked segment...
  m2.set(b"y", ValueRef::Null, None).unwrap();
  assert_eq!(m2.get(b"x").unwrap(), Some(Value::Bool(true)));
  // ...and (POSIX) the name is free for a new, empty map at once. On Windows
  // the named mapping object lives until its last handle closes.
  #[cfg(unix)]
  {
    let m3 = SharedMap::create(&n, &opts(10)).unwrap();
    assert_eq!(m3.get(b"x").unwrap(), None);
    assert!(SharedMap::unlink(&n).unwrap());
  }
  drop(m2);
  let m4 = SharedMap::open_or_create(&n, &opts(10)).unwrap();
  assert_eq!(m4.get(b"x").unwrap(), None);
}

#[test]
fn options_are_validated_and_reported() {
  let n = Name::new("opts");
  for (o, what) in [
    (
      Options {
        capacity: Some(0),
        ..opts(1)
      },
      "capacity",
    ),
    (
      Options {
        shards: Some(3),
        ..opts(100)
      },
      "shards",
    ),
    (
      Options {
        shards: Some(0),
        ..opts(100)
      },
      "shards",
    ),
    (
      Options {
        shards: Some(128),
        ..opts(100)
      },
      "shards",
    ),
    (
      Options {
        max_key_bytes: 0,
        ..opts(10)
      },
      "max_key",
    ),
    (
      Options {
        max_key_bytes: 70_000,
        ..opts(10)
      },
      "max_key",
    ),
    (
      Options {
        mode: 0o1777,
        ..opts(10)
      },
      "mode",
    ),
    (
      Options {
        mode: 0o400,
        ..opts(10)
      },
      "mode",
    ),
  ] {
    assert_eq!(
      SharedMap::create(&n, &o).unwrap_err().code,
      "EINVAL",
      "{what}"
    );
  }
  assert_eq!(
    SharedMap::open(&n).unwrap_err().code,
    "ENOENT",
    "failed creates leave nothing"
  );
  let o = Options {
    capacity: Some(1000),
    max_key_bytes: 40,
    max_value_bytes: 100,
    eviction: Eviction::None,
    default_ttl_ms: 12_345,
    mode: 0o600,
    shards: Some(8),
    lock_timeout: std::time::Duration::from_millis(1234),
    hash_seed: None,
    ..Options::default()
  };
  let m = SharedMap::create(&n, &o).unwrap();
  let seed = m.options().hash_seed;
  assert!(seed.is_some());
  let total = required_memory_size(&o).unwrap();
  let got = SharedMap::open(&n).unwrap().options();
  assert_eq!(
    got,
    Options {
      mode: 0,
      hash_seed: seed,
      memory_size: Some(total),
      lock_timeout: std::time::Duration::from_secs(5),
      ..o.clone()
    }
  );
  assert_eq!(
    m.options(),
    Options {
      mode: 0,
      hash_seed: seed,
      memory_size: Some(total),
      ..o
    }
  );
  let st = m.stats();
  assert_eq!(st.memory_bytes as usize, m.segment_len());
  assert_eq!(st.memory_bytes, total);
  assert_eq!(st.shards, 8);
  assert_eq!(st.capacity, 1000);
  // Sized for 125 entries per shard of the average sizes (32-byte keys and
  // 256-byte values, the value capped by its limit of 100, padded to 104),
  // plus twice the largest record (40-byte key, 100-byte value), which a
  // map with eviction 'none' keeps free.
  let base = 125 * (40 + 32 + 104) + 2 * (40 + 40 + 104);
  assert_eq!(st.ring_bytes, 8 * (base as u64).div_ceil(64) * 64);
}

/// A small map with default shards holds its whole capacity whatever the
/// seed: limits are per shard, so a small map must not be split finely.
#[test]
fn small_maps_hold_their_capacity_with_default_shards() {
  for capacity in [1u32, 3, 10, 100, 511] {
    for seed in 0..40u64 {
      let mut o = opts(capacity);
      o.hash_seed = Some(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
      let m = SharedMap::in_memory(&o).unwrap();
      assert_eq!(m.stats().shards, 1, "capacity {capacity}");
      for i in 0..capacity {
        m.set(format!("k{i}").as_bytes(), ValueRef::Number(i as f64), None)
          .unwrap();
      }
      assert_eq!(m.len(), capacity as u64, "capacity {capacity} seed {seed}");
      assert_eq!(m.stats().evictions, 0);
    }
  }
  // Larger maps shard, each shard indexing at least 256 entries in at least
  // 4 MiB: 100k entries of 32-byte keys and (capped) 256-byte values take
  // 100k × 328 bytes, 7 × 4 MiB, so 4 shards.
  let m = SharedMap::in_memory(&opts(100_000)).unwrap();
  assert_eq!(m.stats().shards, 4);
  let m = SharedMap::in_memory(&opts(1024)).unwrap();
  assert_eq!(m.stats().shards, 1);
  let m = SharedMap::in_memory(&Options {
    memory_size: Some(64 << 20),
    ..Options::default()
  })
  .unwrap();
  assert_eq!(m.stats().shards, 16);
}

#[test]
fn required_memory_size_is_linear_and_checked() {
  let sized = |capacity: u32| {
    required_memory_size(&Options {
      shards: Some(16),
      ..Options::new(capacity)
    })
    .unwrap()
  };
  let (a, b) = (sized(16_000), sized(32_000));
  // 40-byte header + 32-byte key + 256-byte value per entry, plus 16-byte
  // index cells at a load of at most 3/4, plus fixed overhead.
  let per_entry = 40 + 32 + 256;
  let grew = b - a;
  assert!(
    grew >= 16_000 * (per_entry + 16) && grew <= 16_000 * (per_entry + 22) + 16 * 128,
    "{a} {b}"
  );
  // A memory budget is met exactly, to within alignment.
  for m in [64u64 << 20, 10_000_000, 1 << 30] {
    let got = required_memory_size(&Options {
      memory_size: Some(m),
      ..Options::default()
    })
    .unwrap();
    assert!(got <= m && got + 64 * 64 + 1024 > m, "{m}: {got}");
  }
  let code = |o: Options| required_memory_size(&o).unwrap_err().code;
  assert_eq!(code(Options::new(0)), "EINVAL");
  assert_eq!(code(Options::default()), "EINVAL");
  assert_eq!(
    code(Options {
      max_key_bytes: 65535,
      max_value_bytes: 64 << 20,
      avg_key_bytes: 65535,
      avg_value_bytes: 64 << 20,
      ..Options::new(u32::MAX)
    }),
    "EINVAL"
  );
  assert_eq!(
    code(Options {
      memory_size: Some(1000),
      ..Options::default()
    }),
    "EINVAL"
  );
}

#[cfg(target_os = "linux")]
#[test]
fn mode_is_applied() {
  use std::os::unix::fs::PermissionsExt;
  let n = Name::new("mode");
  let _m = SharedMap::create(
    &n,
    &Options {
      mode: 0o644,
      ..opts(10)
    },
  )
  .unwrap();
  let meta = std::fs::metadata(format!("/dev/shm/lk_{}", &*n)).unwrap();
  assert_eq!(meta.permissions().mode() & 0o777, 0o644);
  let n2 = Name::new("mode2");
  let _m2 = SharedMap::create(&n2, &opts(10)).unwrap();
  let meta = std::fs::metadata(format!("/dev/shm/lk_{}", &*n2)).unwrap();
  assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn incompatible_segments_are_refused() {
  let n = Name::new("incompat");
  let m = SharedMap::create(&n, &opts(10)).unwrap();
  m.set(b"k", ValueRef::Null, None).unwrap();
  // magic
  let orig = m.debug_read(0);
  m.debug_corrupt(0, orig ^ 0xff);
  let e = SharedMap::open(&n).unwrap_err();
  assert_eq!(e.code, "EINCOMPAT");
  assert!(e.message.contains("magic"), "{e}");
  m.debug_corrupt(0, orig);
  SharedMap::open(&n).unwrap();
  // layout version: a map of the previous layout (3: fixed-size slots) is
  // refused, naming both versions
  let version = m.debug_read(8);
  assert_eq!(version, 4);
  m.debug_corrupt(8, 3);
  let e = SharedMap::open(&n).unwrap_err();
  assert_eq!(e.code, "EINCOMPAT");
  assert!(
    e.message.contains("layout version 3") && e.message.contains("reads version 4"),
    "{e}"
  );
  m.debug_corrupt(8, version);
  // any other field: the checksum catches it
  for off in [
    16usize, 20, 24, 32, 40, 44, 48, 56, 64, 68, 72, 80, 96, 112, 120,
  ] {
    let b = m.debug_read(off);
    m.debug_corrupt(off, b ^ 0x10);
    let e = SharedMap::open(&n).unwrap_err();
    assert_eq!(e.code, "EINCOMPAT", "offset {off}: {e}");
    m.debug_corrupt(off, b);
  }
  // The handle that was open keeps working: it never re-reads the header.
  m.debug_corrupt(40, 0xff);
  assert_eq!(m.get(b"k").unwrap(), Some(Value::Null));
  m.debug_corrupt(40, 10);
  SharedMap::open(&n).unwrap();
}

#[test]
fn ttl_expiry_with_injected_clock() {
  let n = Name::new("ttl");
  let m = SharedMap::create(
    &n,
    &Options {
      default_ttl_ms: 5_000,
      ..opts(100)
    },
  )
  .unwrap();
  m.debug_set_clock(Some(1_700_000_000_000));
  m.set(b"default", ValueRef::Number(1.0), None).unwrap();
  m.set(b"short", ValueRef::Number(2.0), Some(1_000)).unwrap();
  m.set(b"forever", ValueRef::Number(3.0), Some(0)).unwrap();
  m.debug_advance_clock(999);
  assert!(m.contains(b"short").unwrap());
  m.debug_advance_clock(1);
  assert_eq!(m.get(b"short").unwrap(), None);
  assert!(!m.contains(b"short").unwrap());
  assert_eq!(m.get(b"default").unwrap(), Some(Value::Number(1.0)));
  m.debug_advance_clock(4_000);
  assert_eq!(m.get(b"default").unwrap(), None);
  assert_eq!(m.get(b"forever").unwrap(), Some(Value::Number(3.0)));
  // Reclaimed on access: both gone from len.
  assert_eq!(m.len(), 1);
  let st = m.stats();
  assert_eq!(st.expirations, 2);
  assert_eq!(st.misses, 2);
  // add treats expired as absent; incr restarts from initial.
  m.set(b"e", ValueRef::Number(10.0), Some(10)).unwrap();
  m.debug_advance_clock(10);
  assert!(m.add(b"e", ValueRef::Number(11.0), None).unwrap());
  m.set(b"c", ValueRef::Number(10.0), Some(10)).unwrap();
  m.debug_advance_clock(10);
  assert_eq!(m.incr(b"c", 1.0, 100.0, None).unwrap(), 101.0);
  // keys/entries skip expired entries; purge reclaims them.
  m.set(b"p1", ValueRef::Null, Some(5)).unwrap();
  m.set(b"p2", ValueRef::Null, Some(5)).unwrap();
  m.debug_advance_clock(5);
  assert!(!m.keys().unwrap().iter().any(|k| k.starts_with(b"p")));
  assert_eq!(m.purge_expired().unwrap(), 2);
  assert!(m.verify().ok);
}

#[test]
fn ttl_expiry_real_clock() {
  let n = Name::new("ttlreal");
  let m = SharedMap::create(&n, &opts(10)).unwrap();
  m.set(b"k", ValueRef::String(b"v"), Some(40)).unwrap();
  let other = SharedMap::open(&n).unwrap();
  assert!(other.contains(b"k").unwrap());
  std::thread::sleep(std::time::Duration::from_millis(80));
  assert_eq!(other.get(b"k").unwrap(), None);
  assert_eq!(m.get(b"k").unwrap(), None);
}

#[test]
fn efull_with_eviction_none_loses_nothing() {
  let n = Name::new("efull");
  let m = SharedMap::create(
    &n,
    &Options {
      eviction: Eviction::None,
      shards: Some(1),
      ..opts(8)
    },
  )
  .unwrap();
  for i in 0..8u8 {
    m.set(&[i], ValueRef::BigInt(i as i64), None).unwrap();
  }
  let e = m.set(b"new", ValueRef::Null, None).unwrap_err();
  assert_eq!(e.code, "EFULL");
  assert_eq!(
    m.add(b"new", ValueRef::Null, None).unwrap_err().code,
    "EFULL"
  );
  assert_eq!(m.incr(b"new", 1.0, 0.0, None).unwrap_err().code, "EFULL");
  for i in 0..8u8 {
    assert_eq!(m.get(&[i]).unwrap(), Some(Value::BigInt(i as i64)));
  }
  // Updates of existing keys still work when full (spare slot).
  for round in 0..3 {
    for i in 0..8u8 {
      m.set(&[i], ValueRef::String(&[round; 100]), None).unwrap();
    }
  }
  assert!(m
    .compare_and_set(&[0], ValueRef::String(&[2; 100]), ValueRef::Bool(false))
    .unwrap());
  assert_eq!(m.stats().evictions, 0);
  assert!(m.delete(&[3]).unwrap());
  m.set(b"new", ValueRef::Null, None).unwrap();
  assert_eq!(m.len(), 8);
  // Expired entries make room even with eviction None.
  m.set(&[4], ValueRef::Null, Some(1)).unwrap();
  m.debug_advance_clock(1);
  m.set(b"new2", ValueRef::Null, None).unwrap();
  assert_eq!(m.stats().expirations, 1);
  assert!(m.verify().ok);
}

#[test]
fn lru_eviction_single_shard_is_exact_with_second_chance() {
  let n = Name::new("lru1");
  let m = SharedMap::create(
    &n,
    &Options {
      shards: Some(1),
      ..opts(10)
    },
  )
  .unwrap();
  for i in 0..10u8 {
    m.set(&[i], ValueRef::BigInt(i as i64), None).unwrap();
  }
  // Read 0: it gets a second chance; 1 is the LRU victim.
  m.get(&[0]).unwrap();
  m.set(&[100], ValueRef::Null, None).unwrap();
  assert!(m.contains(&[0]).unwrap());
  assert!(!m.contains(&[1]).unwrap());
  // A write moves to the head too.
  m.set(&[2], ValueRef::Null, None).unwrap();
  m.set(&[101], ValueRef::Null, None).unwrap();
  assert!(m.contains(&[2]).unwrap());
  assert!(!m.contains(&[3]).unwrap());
  // peek does not protect.
  m.peek(&[4]).unwrap();
  m.set(&[102], ValueRef::Null, None).unwrap();
  assert!(!m.contains(&[4]).unwrap());
  assert_eq!(m.len(), 10);
  assert_eq!(m.stats().evictions, 3);
  assert!(m.verify().ok);
}

#[test]
fn lru_eviction_is_approximately_right_with_shards() {
  let n = Name::new("lruN");
  let m = SharedMap::create(
    &n,
    &Options {
      shards: Some(8),
      ..opts(1000)
    },
  )
  .unwrap();
  // A hot set read between inserts must survive a stream of new keys.
  for i in 0..100u32 {
    m.set(
      format!("hot{i}").as_bytes(),
      ValueRef::BigInt(i as i64),
      None,
    )
    .unwrap();
  }
  for i in 0..5000u32 {
    m.set(format!("cold{i}").as_bytes(), ValueRef::Null, None)
      .unwrap();
    if i % 50 == 0 {
      for h in 0..100u32 {
        m.get(format!("hot{h}").as_bytes()).unwrap();
      }
    }
  }
  assert!(m.len() <= 1000);
  let hot = (0..100u32)
    .filter(|h| m.contains(format!("hot{h}").as_bytes()).unwrap())
    .count();
  assert!(hot >= 95, "only {hot} of 100 hot keys survived");
  // The most recent cold keys are present, the oldest gone.
  let recent = (4800..5000u32)
    .filter(|i| m.contains(format!("cold{i}").as_bytes()).unwrap())
    .count();
  assert!(recent >= 190, "{recent}");
  let old = (0..1000u32)
    .filter(|i| m.contains(format!("cold{i}").as_bytes()).unwrap())
    .count();
  assert_eq!(old, 0);
  assert!(m.verify().ok);
}

#[test]
fn add_incr_compare_and_set() {
  let n = Name::new("atomic");
  let m = SharedMap::create(&n, &opts(100)).unwrap();
  assert!(m.add(b"a", ValueRef::Number(1.0), None).unwrap());
  assert!(!m.add(b"a", ValueRef::Number(2.0), None).unwrap());
  assert_eq!(m.get(b"a").unwrap(), Some(Value::Number(1.0)));

  assert_eq!(m.incr(b"n", 5.0, 10.0, None).unwrap(), 15.0);
  assert_eq!(m.incr(b"n", -0.5, 0.0, None).unwrap(), 14.5);
  assert_eq!(m.get(b"n").unwrap(), Some(Value::Number(14.5)));

  m.set(b"b", ValueRef::BigInt(i64::MAX - 1), None).unwrap();
  assert_eq!(
    m.incr_value(b"b", 1.0, 0.0, None).unwrap(),
    Value::BigInt(i64::MAX)
  );
  assert_eq!(m.incr(b"b", 1.0, 0.0, None).unwrap_err().code, "ERANGE");
  assert_eq!(m.incr(b"b", 0.5, 0.0, None).unwrap_err().code, "ERANGE");
  assert_eq!(m.incr(b"b", 1e19, 0.0, None).unwrap_err().code, "ERANGE");
  assert_eq!(
    m.incr(b"b", f64::NAN, 0.0, None).unwrap_err().code,
    "ERANGE"
  );
  assert_eq!(
    m.incr_value(b"b", -10.0, 0.0, None).unwrap(),
    Value::BigInt(i64::MAX - 10)
  );
  assert_eq!(m.get(b"b").unwrap(), Some(Value::BigInt(i64::MAX - 10)));
  for v in [
    ValueRef::String(b"1"),
    ValueRef::Bool(true),
    ValueRef::Null,
    ValueRef::Json(b"1"),
  ] {
    m.set(b"t", v, None).unwrap();
    assert_eq!(m.incr(b"t", 1.0, 0.0, None).unwrap_err().code, "ETYPE");
  }
  // incr keeps the entry's expiry; a ttl applies only when it creates.
  m.set(b"x", ValueRef::Number(1.0), Some(100)).unwrap();
  m.incr(b"x", 1.0, 0.0, Some(0)).unwrap();
  m.debug_advance_clock(100);
  assert_eq!(m.get(b"x").unwrap(), None);

  m.set(b"c", ValueRef::String(b"v1"), None).unwrap();
  assert!(!m
    .compare_and_set(b"c", ValueRef::String(b"v0"), ValueRef::String(b"v2"))
    .unwrap());
  assert!(!m
    .compare_and_set(b"c", ValueRef::Bytes(b"v1"), ValueRef::String(b"v2"))
    .unwrap());
  assert!(m
    .compare_and_set(b"c", ValueRef::String(b"v1"), ValueRef::String(b"v2"))
    .unwrap());
  assert_eq!(m.get(b"c").unwrap(), Some(Value::String(b"v2".to_vec())));
  assert!(!m
    .compare_and_set(b"missing", ValueRef::Null, ValueRef::Null)
    .unwrap());
  m.set(b"f", ValueRef::Number(0.0), None).unwrap();
  assert!(m
    .compare_and_set(b"f", ValueRef::Number(-0.0), ValueRef::Number(f64::NAN))
    .unwrap());
  assert!(!m
    .compare_and_set(b"f", ValueRef::Number(f64::NAN), ValueRef::Number(1.0))
    .unwrap());
  m.set(b"z", ValueRef::Null, None).unwrap();
  assert!(m
    .compare_and_set(b"z", ValueRef::Null, ValueRef::Bool(true))
    .unwrap());
  assert!(m
    .compare_and_set(b"z", ValueRef::Bool(true), ValueRef::BigInt(7))
    .unwrap());
  assert!(m
    .compare_and_set(b"z", ValueRef::BigInt(7), ValueRef::Json(b"[]"))
    .unwrap());
  assert!(m
    .compare_and_set(b"z", ValueRef::Json(b"[]"), ValueRef::Null)
    .unwrap());
  assert_eq!(
    m.compare_and_set(b"z", ValueRef::Null, ValueRef::Bytes(&[0; 300]))
      .unwrap_err()
      .code,
    "EVALUETOOLONG"
  );
  assert!(m.verify().ok);
}

#[test]
fn clear_keys_entries_stats() {
  let n = Name::new("iter");
  let m = SharedMap::create(
    &n,
    &Options {
      shards: Some(1),
      ..opts(100)
    },
  )
  .unwrap();
  for i in 0..10u8 {
    m.set(&[b'k', i], ValueRef::BigInt(i as i64), None).unwrap();
  }
  // One shard: most recently written first.
  let keys = m.keys().unwrap();
  assert_eq!(
    keys,
    (0..10u8).rev().map(|i| vec![b'k', i]).collect::<Vec<_>>()
  );
  let entries = m.entries().unwrap();
  assert_eq!(entries.len(), 10);
  for (k, v) in &entries {
    assert_eq!(*v, Value::BigInt(k[1] as i64));
  }
  m.get(b"k\x01").unwrap();
  m.get(b"zz").unwrap();
  m.peek(b"k\x01").unwrap();
  m.contains(b"k\x01").unwrap();
  m.delete(b"k\x02").unwrap();
  let st = m.stats();
  assert_eq!((st.hits, st.misses, st.sets, st.deletes), (1, 1, 10, 1));
  assert_eq!(st.size, 9);
  // 2-byte keys and bigints: 10 bytes of payload, 56-byte records; the
  // deleted entry's record stays in the ring until the tail passes it.
  assert_eq!(st.allocated_bytes, 9 * 10);
  assert_eq!(st.live_record_bytes, 9 * 56);
  assert_eq!(st.used_bytes, 10 * 56);
  assert_eq!(st.free_bytes, st.ring_bytes - 10 * 56);
  // Another handle sees the same shared counters.
  let other = SharedMap::open(&n).unwrap();
  other.get(b"k\x01").unwrap();
  assert_eq!(m.stats().hits, 2);
  m.clear().unwrap();
  assert_eq!(m.len(), 0);
  assert!(m.keys().unwrap().is_empty());
  assert!(other.get(b"k\x01").unwrap().is_none());
  m.set(b"again", ValueRef::Null, None).unwrap();
  assert_eq!(other.keys().unwrap(), vec![b"again".to_vec()]);
  assert!(m.verify().ok);
}

#[test]
fn evict_older_than_uses_last_access() {
  let n = Name::new("older");
  let m = SharedMap::create(&n, &opts(100)).unwrap();
  let t0 = std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .unwrap()
    .as_millis() as u64;
  for i in 0..10u8 {
    m.set(&[i], ValueRef::Null, None).unwrap();
  }
  m.debug_advance_clock(10_000);
  for i in 10..20u8 {
    m.set(&[i], ValueRef::Null, None).unwrap();
  }
  // Reading refreshes the access time (older than the 1 s interval).
  m.get(&[0]).unwrap();
  let cutoff = t0 + 5_000;
  assert_eq!(m.evict_older_than(cutoff, Some(4)).unwrap(), 4);
  assert_eq!(m.evict_older_than(cutoff, None).unwrap(), 5);
  assert_eq!(m.evict_older_than(cutoff, None).unwrap(), 0);
  assert!(m.contains(&[0]).unwrap());
  assert_eq!(m.len(), 11);
  assert_eq!(m.stats().evictions, 9);
  assert!(m.verify().ok);
}

#[test]
fn open_or_create_race_threads() {
  let n = Name::new("raceT");
  let name = n.0.clone();
  let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
  let handles: Vec<_> = (0..8)
    .map(|t| {
      let name = name.clone();
      let barrier = barrier.clone();
      std::thread::spawn(move || {
        barrier.wait();
        let m = SharedMap::open_or_create(&name, &opts(100)).unwrap();
        m.set(format!("t{t}").as_bytes(), ValueRef::BigInt(t), None)
          .unwrap();
        m
      })
    })
    .collect();
  let maps: Vec<SharedMap> = handles.into_iter().map(|h| h.join().unwrap()).collect();
  for m in &maps {
    for t in 0..8i64 {
      assert_eq!(
        m.get(format!("t{t}").as_bytes()).unwrap(),
        Some(Value::BigInt(t))
      );
    }
  }
  assert_eq!(maps[0].len(), 8);
}

#[test]
fn one_handle_many_threads() {
  let n = Name::new("threads");
  let m = std::sync::Arc::new(SharedMap::create(&n, &opts(2000)).unwrap());
  let hs: Vec<_> = (0..4u64)
    .map(|t| {
      let m = m.clone();
      std::thread::spawn(move || {
        let mut x = t.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        for _ in 0..5000 {
          x ^= x << 13;
          x ^= x >> 7;
          x ^= x << 17;
          let k = format!("k{}", x % 300);
          match x % 5 {
            0 => {
              m.delete(k.as_bytes()).unwrap();
            }
            1 => {
              m.incr(b"counter", 1.0, 0.0, None).unwrap();
            }
            2 | 3 => {
              m.set(k.as_bytes(), ValueRef::Bytes(&x.to_le_bytes()), None)
                .unwrap();
            }
            _ => {
              if let Some(Value::Bytes(b)) = m.get(k.as_bytes()).unwrap() {
                assert_eq!(b.len(), 8);
              }
            }
          }
        }
      })
    })
    .collect();
  for h in hs {
    h.join().unwrap();
  }
  let r = m.verify();
  assert!(r.ok, "{r:?}");
}

#[test]
fn key_hash_is_xxh3_with_the_segment_seed() {
  // Every process must agree: xxh3-64 with the seed kept in the segment's
  // header. The constants were cross-checked against the reference C xxHash
  // (python-xxhash: xxh3_64_intdigest(key, seed=0x6c72756b69745331)).
  let n = Name::new("hashseed");
  let o = Options {
    hash_seed: Some(0x6c72_756b_6974_5331),
    ..Options::new(16)
  };
  let m = SharedMap::create(&n, &o).unwrap();
  assert_eq!(m.key_hash(b"hello"), KEY_HASH_HELLO);
  assert_eq!(m.key_hash(b""), KEY_HASH_EMPTY);
  let other = SharedMap::open(&n).unwrap();
  assert_eq!(
    other.key_hash(b"hello"),
    KEY_HASH_HELLO,
    "openers read the seed"
  );
}

#[test]
fn every_new_map_draws_its_own_hash_seed() {
  let a = Name::new("seed-a");
  let b = Name::new("seed-b");
  let ma = SharedMap::create(&a, &Options::new(16)).unwrap();
  let mb = SharedMap::create(&b, &Options::new(16)).unwrap();
  assert_ne!(ma.options().hash_seed, mb.options().hash_seed);
  assert_ne!(ma.key_hash(b"k"), mb.key_hash(b"k"));
  // Both still work, and a reopen of each hashes like its creator.
  ma.set(b"k", ValueRef::Number(1.0), None).unwrap();
  mb.set(b"k", ValueRef::Number(2.0), None).unwrap();
  assert_eq!(
    SharedMap::open(&a).unwrap().get(b"k").unwrap(),
    Some(Value::Number(1.0))
  );
  assert_eq!(
    SharedMap::open(&b).unwrap().get(b"k").unwrap(),
    Some(Value::Number(2.0))
  );
}
const KEY_HASH_HELLO: u64 = 4362416240539089945;
const KEY_HASH_EMPTY: u64 = 1255879996591552661;

#[test]
fn repair_is_idempotent_on_a_healthy_map() {
  let n = Name::new("repair");
  let m = SharedMap::create(
    &n,
    &Options {
      shards: Some(2),
      ..opts(50)
    },
  )
  .unwrap();
  for i in 0..40u8 {
    m.set(&[i], ValueRef::BigInt(i as i64), None).unwrap();
  }
  let before = m.entries().unwrap();
  m.repair().unwrap();
  m.repair().unwrap();
  let mut after = m.entries().unwrap();
  let mut b = before.clone();
  b.sort_by(|x, y| x.0.cmp(&y.0));
  after.sort_by(|x, y| x.0.cmp(&y.0));
  assert_eq!(b, after);
  assert!(m.verify().ok);
  assert_eq!(m.stats().repairs, 4);
  assert_eq!(m.stats().lock_recoveries, 0);
}

#[test]
fn get_with_borrows_without_allocating_and_nests() {
  let n = Name::new("getwith");
  let m = SharedMap::create(&n, &opts(100)).unwrap();
  for (i, v) in all_values().iter().enumerate() {
    m.set(format!("k{i}").as_bytes(), v.as_ref(), None).unwrap();
  }
  for (i, v) in all_values().iter().enumerate() {
    let key = format!("k{i}");
    let got = m.get_with(key.as_bytes(), |r| r.to_owned_value()).unwrap();
    assert_eq!(got.as_ref(), Some(v));
    let got = m.peek_with(key.as_bytes(), |r| r.to_owned_value()).unwrap();
    assert_eq!(got.as_ref(), Some(v));
  }
  assert_eq!(m.get_with(b"missing", |_| 1).unwrap(), None);
  // The callback runs without any lock held: it may use the map again.
  m.set(b"a", ValueRef::String(b"b"), None).unwrap();
  m.set(b"b", ValueRef::String(b"c"), None).unwrap();
  let chained = m
    .get_with(b"a", |r| match r {
      ValueRef::String(next) => {
        m.set(b"c", ValueRef::Null, None).unwrap();
        m.get_with(next, |r2| r2.to_owned_value()).unwrap()
      }
      _ => None,
    })
    .unwrap()
    .flatten();
  assert_eq!(chained, Some(Value::String(b"c".to_vec())));
  let st = m.stats();
  assert_eq!((st.hits, st.misses), (all_values().len() as u64 + 2, 1));
  // Expired entries are misses here too.
  m.set(b"t", ValueRef::Null, Some(5)).unwrap();
  m.debug_advance_clock(5);
  assert_eq!(m.get_with(b"t", |_| ()).unwrap(), None);
}

#[test]
fn created_reports_creator() {
  let n = Name::new("created");
  let m = SharedMap::create(&n, &opts(10)).unwrap();
  let (at, pid) = SharedMap::open(&n).unwrap().created();
  assert_eq!(pid, std::process::id());
  let now = std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .unwrap()
    .as_millis() as u64;
  assert!(at <= now && now - at < 60_000);
  assert_eq!(m.created(), (at, pid));
  assert!(format!("{m:?}").contains(&n.0));
}

#[test]
fn get_many_with_matches_single_gets() {
  let n = Name::new("getmany");
  let m = SharedMap::create(&n, &opts(500)).unwrap();
  for i in 0..300u32 {
    let v = format!("v{i}");
    let ttl = if i % 10 == 0 { Some(1_000) } else { None };
    m.set(
      format!("k{i}").as_bytes(),
      ValueRef::String(v.as_bytes()),
      ttl,
    )
    .unwrap();
  }
  m.debug_advance_clock(1_000); // every 10th key has expired
  let names: Vec<Vec<u8>> = (0..350u32)
    .map(|i| format!("k{}", i % 330).into_bytes())
    .chain([vec![b'x'; 10_000]]) // longer than any key: a miss, not an error
    .collect();
  let keys: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
  let before = m.stats();
  let got = m
    .get_many_with(&keys, |i, v| (i, v.map(|v| v.to_owned_value())))
    .unwrap();
  assert_eq!(got.len(), keys.len());
  let mut hits = 0;
  for (i, (j, v)) in got.into_iter().enumerate() {
    assert_eq!(i, j, "in order");
    let want = m.peek(keys[i]).unwrap();
    assert_eq!(
      v,
      want,
      "key {:?}",
      String::from_utf8_lossy(&keys[i][..keys[i].len().min(8)])
    );
    hits += usize::from(v.is_some());
  }
  // k0..k329 once (270 live: k300..k329 never set, 30 expired), then
  // k0..k19 again (18 live); the over-long key misses.
  assert_eq!(hits, 270 + 18);
  let after = m.stats();
  assert_eq!(after.hits - before.hits, hits as u64);
  assert_eq!(after.misses - before.misses, (keys.len() - hits) as u64);
  assert_eq!(
    after.expirations - before.expirations,
    30,
    "expired entries reclaimed on access"
  );
  assert!(m.verify().ok);
}
