//! The map over damaged memory: a valid in-memory map (lease lock, lock
//! timeout of 1 or 5 ms), fuzzer-chosen byte and word writes anywhere in
//! the segment (lock words included) between operations, or a reopened
//! damaged image (`debug_from_image`). Properties: no panic, no hang (every
//! lock wait is bounded), every error code is one the operation may return,
//! values and keys respect the map's limits, and after `repair()` succeeds
//! the map `verify()`s clean and stores and returns a probe entry.

use std::time::Duration;

use arbitrary::Arbitrary;
use lrukit_shm_map::{Error, Eviction, Options, SharedMap, Value};

use crate::inputs::{payload_len, KeyIn, TtlIn, ValIn};
use crate::CLOCK0;

#[derive(Arbitrary, Debug)]
pub struct Cfg {
  capacity: u8,
  shards_log2: u8,
  max_key: u8,
  max_value: u8,
  lru: bool,
  default_ttl: TtlIn,
  /// 5 ms instead of 1 ms: long enough for the lease lock's first liveness
  /// check (2 ms), so a dead or implausible owner word is taken over.
  long_timeout: bool,
  seed: u64,
}

impl Cfg {
  pub fn options(&self) -> Options {
    let capacity = 1 + (self.capacity % 64) as u32;
    let shards = (1u32 << (self.shards_log2 % 4)).min(1 << capacity.ilog2());
    Options {
      capacity: Some(capacity),
      max_key_bytes: 1 + (self.max_key % 24) as u32,
      max_value_bytes: (self.max_value % 48) as u32,
      eviction: if self.lru {
        Eviction::Lru
      } else {
        Eviction::None
      },
      default_ttl_ms: self.default_ttl.ttl().unwrap_or(0),
      shards: Some(shards),
      lock_timeout: Duration::from_millis(if self.long_timeout { 5 } else { 1 }),
      hash_seed: Some(self.seed),
      ..Options::default()
    }
  }
}

/// Where a damaging write lands.
#[derive(Arbitrary, Clone, Debug)]
pub enum Where {
  /// The 128 header bytes (the handle's layout is a private copy, so this
  /// matters to a reopened image).
  Header(u8),
  /// The per-handle counter lanes (4096..20480).
  Lane(u16),
  /// Inside shard `shard`'s region (header, index cells, ring).
  Shard { shard: u8, off: u32 },
  /// Inside shard `shard`'s 64-byte lock area (the lease word is its first
  /// 8 bytes).
  Lock { shard: u8, off: u8 },
  /// Any byte of the segment.
  Anywhere(u32),
}

/// What it writes (words little-endian, aligned down to their size).
#[derive(Arbitrary, Clone, Debug)]
pub enum Patch {
  Byte(u8),
  Word(u32),
  Quad(u64),
  /// A small slot index or length.
  Small(u8),
  /// The empty link (`u32::MAX`).
  Empty,
  /// This process's pid as a lease word with no start tag: an owner that
  /// is alive, so a lock wait ends in `ETIMEDOUT`.
  MyPid,
}

#[derive(Arbitrary, Clone, Debug)]
pub struct Damage {
  pub at: Where,
  pub patch: Patch,
}

/// Shard regions of a map: `(base, length)`.
fn shard_regions(m: &SharedMap) -> Vec<(usize, usize)> {
  let locks = m.debug_lock_ranges();
  let end = m.segment_len();
  (0..locks.len())
    .map(|i| {
      let base = locks[i].0;
      let next = locks.get(i + 1).map_or(end, |l| l.0);
      (base, next - base)
    })
    .collect()
}

/// The (offset, bytes) a damage writes into a segment of `len` bytes.
pub fn resolve(d: &Damage, regions: &[(usize, usize)], len: usize) -> (usize, Vec<u8>) {
  let off = match d.at {
    Where::Header(o) => (o % 128) as usize,
    Where::Lane(o) => 4096 + (o as usize % (256 * 64)),
    Where::Shard { shard, off } => {
      let (base, n) = regions[shard as usize % regions.len()];
      base + off as usize % n
    }
    Where::Lock { shard, off } => regions[shard as usize % regions.len()].0 + (off % 64) as usize,
    Where::Anywhere(o) => o as usize % len,
  };
  let bytes = match d.patch {
    Patch::Byte(b) => vec![b],
    Patch::Word(w) => w.to_le_bytes().to_vec(),
    Patch::Quad(q) => q.to_le_bytes().to_vec(),
    Patch::Small(s) => (s as u32).to_le_bytes().to_vec(),
    Patch::Empty => u32::MAX.to_le_bytes().to_vec(),
    Patch::MyPid => (std::process::id() as u64).to_le_bytes().to_vec(),
  };
  let off = off - off % bytes.len();
  (off, bytes)
}

fn damage(m: &SharedMap, d: &Damage) {
  let (off, bytes) = resolve(d, &shard_regions(m), m.segment_len());
  for (i, b) in bytes.into_iter().enumerate() {
    m.debug_corrupt(off + i, b);
  }
}

#[derive(Arbitrary, Debug)]
pub enum Op {
  Get(KeyIn),
  Peek(KeyIn),
  Contains(KeyIn),
  GetWith(KeyIn),
  Set(KeyIn, ValIn, TtlIn),
  Add(KeyIn, ValIn, TtlIn),
  Incr(KeyIn, i16, i16, TtlIn),
  IncrAny(KeyIn, f64, f64),
  Cas(KeyIn, ValIn, ValIn),
  Delete(KeyIn),
  Clear,
  Keys,
  Entries,
  EvictOlderThan(u16, Option<u8>),
  Purge,
  Verify,
  Repair,
  GetMany(Vec<KeyIn>),
  Advance(u16),
  Damage(Damage),
  Len,
  Stats,
}

/// How the map under test is made.
#[derive(Arbitrary, Debug)]
pub enum Start {
  /// `SharedMap::in_memory`.
  Fresh,
  /// A fresh map, `setup` run on it, its bytes copied out, damaged (and
  /// optionally overlaid with raw bytes at an offset, header checksum
  /// recomputed or not, length cut), then `debug_from_image`.
  Reimage {
    setup: Vec<Op>,
    damage: Vec<Damage>,
    overlay: Option<(u32, Vec<u8>)>,
    fix_checksum: bool,
    cut: u16,
  },
}

#[derive(Arbitrary, Debug)]
pub struct Input {
  pub cfg: Cfg,
  pub start: Start,
  pub ops: Vec<Op>,
}

const READ: &[&str] = &["ECORRUPT", "ETIMEDOUT"];
const WRITE: &[&str] = &[
  "ECORRUPT",
  "ETIMEDOUT",
  "EFULL",
  "EKEYTOOLONG",
  "EVALUETOOLONG",
];
const INCR: &[&str] = &[
  "ECORRUPT",
  "ETIMEDOUT",
  "EFULL",
  "EKEYTOOLONG",
  "ETYPE",
  "ERANGE",
];
const OPEN: &[&str] = &["EINCOMPAT", "EUNINIT", "EINVAL"];

fn check<T>(what: &str, r: Result<T, Error>, allowed: &[&str]) -> Option<T> {
  match r {
    Ok(v) => Some(v),
    Err(e) => {
      assert!(
        allowed.contains(&e.code),
        "{what}: error code {} not allowed here: {e}",
        e.code
      );
      assert!(
        crate::DOCUMENTED.contains(&e.code),
        "{what}: undocumented code {}",
        e.code
      );
      None
    }
  }
}

struct Limits {
  max_key: usize,
  max_value: usize,
  capacity: usize,
}

fn check_value(what: &str, v: &Value, l: &Limits) {
  assert!(
    payload_len(v) <= l.max_value,
    "{what}: value of {} bytes over the limit {}",
    payload_len(v),
    l.max_value
  );
}

fn apply(m: &SharedMap, op: &Op, l: &Limits, now: &mut u64) {
  let key = |k: &KeyIn| k.bytes(l.max_key);
  match op {
    Op::Get(k) => {
      if let Some(Some(v)) = check("get", m.get(&key(k)), READ) {
        check_value("get", &v, l);
      }
    }
    Op::Peek(k) => {
      if let Some(Some(v)) = check("peek", m.peek(&key(k)), READ) {
        check_value("peek", &v, l);
      }
    }
    Op::Contains(k) => {
      check("contains", m.contains(&key(k)), READ);
    }
    Op::GetWith(k) => {
      let n = check(
        "get_with",
        m.get_with(&key(k), |v| payload_len(&v.to_owned_value())),
        READ,
      );
      if let Some(Some(n)) = n {
        assert!(n <= l.max_value);
      }
    }
    Op::Set(k, v, t) => {
      check("set", m.set(&key(k), v.value().as_ref(), t.ttl()), WRITE);
    }
    Op::Add(k, v, t) => {
      check("add", m.add(&key(k), v.value().as_ref(), t.ttl()), WRITE);
    }
    Op::Incr(k, d, i, t) => {
      check(
        "incr",
        m.incr_value(&key(k), *d as f64, *i as f64, t.ttl()),
        INCR,
      );
    }
    Op::IncrAny(k, d, i) => {
      check("incr", m.incr(&key(k), *d, *i, None), INCR);
    }
    Op::Cas(k, a, b) => {
      let (a, b) = (a.value(), b.value());
      check(
        "cas",
        m.compare_and_set(&key(k), a.as_ref(), b.as_ref()),
        WRITE,
      );
    }
    Op::Delete(k) => {
      check("delete", m.delete(&key(k)), READ);
    }
    Op::Clear => {
      check("clear", m.clear(), READ);
    }
    Op::Keys => {
      if let Some(keys) = check("keys", m.keys(), READ) {
        assert!(
          keys.len() <= l.capacity,
          "{} keys, capacity {}",
          keys.len(),
          l.capacity
        );
        for k in keys {
          assert!(k.len() <= l.max_key, "key of {} bytes", k.len());
        }
      }
    }
    Op::Entries => {
      if let Some(es) = check("entries", m.entries(), READ) {
        assert!(es.len() <= l.capacity);
        for (k, v) in es {
          assert!(k.len() <= l.max_key);
          check_value("entries", &v, l);
        }
      }
    }
    Op::EvictOlderThan(ago, max) => {
      let cutoff = now.saturating_sub(*ago as u64);
      if let Some(n) = check(
        "evict_older_than",
        m.evict_older_than(cutoff, max.map(|x| x as u64)),
        READ,
      ) {
        assert!(n <= max.map_or(u64::MAX, |x| x as u64));
        assert!(n <= l.capacity as u64);
      }
    }
    Op::Purge => {
      if let Some(n) = check("purge_expired", m.purge_expired(), READ) {
        assert!(n <= l.capacity as u64);
      }
    }
    Op::Verify => {
      let _ = m.verify();
    }
    Op::Repair => {
      check("repair", m.repair(), &["ETIMEDOUT"]);
    }
    Op::GetMany(ks) => {
      let ks: Vec<Vec<u8>> = ks.iter().take(32).map(key).collect();
      let refs: Vec<&[u8]> = ks.iter().map(|k| k.as_slice()).collect();
      let r = m.get_many_with(&refs, |i, v| (i, v.map(|v| v.to_owned_value())));
      if let Some(out) = check("get_many_with", r, READ) {
        assert_eq!(out.len(), refs.len());
        for (j, (i, v)) in out.into_iter().enumerate() {
          assert_eq!(i, j);
          if let Some(v) = v {
            check_value("get_many_with", &v, l);
          }
        }
      }
    }
    Op::Advance(ms) => {
      m.debug_advance_clock(*ms as u64);
      *now += *ms as u64;
    }
    Op::Damage(d) => damage(m, d),
    Op::Len => {
      assert!(m.len() <= l.capacity as u64);
    }
    Op::Stats => {
      let s = m.stats();
      assert!(s.size <= s.capacity);
    }
  }
}

fn limits(m: &SharedMap) -> Limits {
  let o = m.options();
  Limits {
    max_key: o.max_key_bytes as usize,
    max_value: o.max_value_bytes as usize,
    capacity: m.stats().capacity as usize,
  }
}

/// Runs one input. Panics on a property violation.
pub fn run(input: &Input) {
  let opts = input.cfg.options();
  let Some(fresh) = check("in_memory", SharedMap::in_memory(&opts), &["EINVAL"]) else {
    return;
  };
  fresh.debug_set_clock(Some(CLOCK0));
  let mut now = CLOCK0;
  let m = match &input.start {
    Start::Fresh => fresh,
    Start::Reimage {
      setup,
      damage,
      overlay,
      fix_checksum,
      cut,
    } => {
      let l = limits(&fresh);
      for op in setup.iter().take(64) {
        apply(&fresh, op, &l, &mut now);
      }
      let len = fresh.segment_len();
      let mut image: Vec<u8> = (0..len).map(|i| fresh.debug_read(i)).collect();
      let regions = shard_regions(&fresh);
      drop(fresh);
      for d in damage {
        let (off, bytes) = resolve(d, &regions, len);
        image[off..off + bytes.len()].copy_from_slice(&bytes);
      }
      if let Some((at, bytes)) = overlay {
        let at = *at as usize % len;
        let n = bytes.len().min(len - at);
        image[at..at + n].copy_from_slice(&bytes[..n]);
      }
      if *fix_checksum {
        let mut h = [0u8; 128];
        h.copy_from_slice(&image[..128]);
        crate::fix_header(&mut h);
        image[..128].copy_from_slice(&h);
      }
      image.truncate(len - (*cut as usize % 4096).min(len));
      let Some(m) = check(
        "debug_from_image",
        SharedMap::debug_from_image(&image, &opts),
        OPEN,
      ) else {
        return;
      };
      m.debug_set_clock(Some(CLOCK0));
      m.debug_advance_clock(now - CLOCK0);
      m
    }
  };
  let l = limits(&m);
  for op in input.ops.iter().take(256) {
    apply(&m, op, &l, &mut now);
  }
  // Repair, then the map must be whole and usable. A lock word that names
  // a live process (damage) keeps its shard's lock: ETIMEDOUT, documented.
  match m.repair() {
    Ok(()) => {
      let r = m.verify();
      assert!(r.ok, "verify after repair: {:?}", r.problems);
      let k = b"probe"[..l.max_key.min(5)].to_vec();
      match m.set(&k, lrukit_shm_map::ValueRef::Bool(true), Some(0)) {
        Ok(()) => assert_eq!(m.get(&k), Ok(Some(Value::Bool(true))), "probe after repair"),
        Err(e) => assert_eq!(e.code, "EFULL", "probe set after repair: {e}"),
      }
      let r = m.verify();
      assert!(r.ok, "verify after the probe: {:?}", r.problems);
    }
    Err(e) => assert_eq!(e.code, "ETIMEDOUT", "repair: {e}"),
  }
}
