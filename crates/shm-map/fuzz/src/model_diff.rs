//! Differential test: an operation script on an in-memory map against a
//! `HashMap` model of what the map stores (expired entries included until
//! the map reclaims them), on a fixed clock.
//!
//! Exactness:
//! * eviction `None`, one shard: everything is exact — values, `EFULL`,
//!   `len`, counts returned by `purge_expired`/`evict_older_than`, and the
//!   stats counters (hits, misses, sets, deletes, evictions, size) — except
//!   that a write may reclaim expired entries it passes in the ring, so
//!   while any stored entry has expired, a write makes the count of
//!   stored-but-expired entries uncertain until the next `purge_expired`.
//! * eviction `None`, several shards: `EFULL` depends on the key's shard, so
//!   an `EFULL` is accepted when the model is at least one shard's capacity
//!   full and changes nothing; an insert that may have reclaimed expired
//!   entries of an unknown shard makes the count of stored-but-expired
//!   entries uncertain until the next `purge_expired`.
//! * eviction `Lru`: an insert into a possibly full shard may evict an
//!   unknown entry; before each keyed operation the model asks `contains`
//!   (no recency, no counters) and drops an entry the map evicted. Values,
//!   results, hits/misses and sets stay exact; evictions must cover drops.

use std::collections::HashMap;
use std::time::Duration;

use arbitrary::Arbitrary;
use lrukit_shm_map::{Error, Eviction, Options, SharedMap, Value};

use crate::inputs::{payload_len, same_cas, same_stored, KeyIn, TtlIn, ValIn};
use crate::CLOCK0;

#[derive(Arbitrary, Debug)]
pub struct Cfg {
  capacity: u8,
  shards_log2: u8,
  lru: bool,
  default_ttl: TtlIn,
  max_key: u8,
  max_value: u8,
  seed: u64,
}

#[derive(Arbitrary, Debug)]
pub enum Op {
  Get(KeyIn),
  Peek(KeyIn),
  Contains(KeyIn),
  Set(KeyIn, ValIn, TtlIn),
  Add(KeyIn, ValIn, TtlIn),
  Incr(KeyIn, i16, i16, TtlIn),
  Cas(KeyIn, ValIn, ValIn),
  Delete(KeyIn),
  Clear,
  Keys,
  Entries,
  EvictOlderThan(u16, Option<u8>),
  Purge,
  GetMany(Vec<KeyIn>),
  Advance(u16),
  Len,
  Stats,
  Verify,
}

#[derive(Arbitrary, Debug)]
pub struct Input {
  pub cfg: Cfg,
  pub ops: Vec<Op>,
}

#[derive(Clone, Debug)]
struct Entry {
  value: Value,
  /// 0 = never.
  expires: u64,
  access: u64,
  read: bool,
}

struct Model {
  map: HashMap<Vec<u8>, Entry>,
  now: u64,
  default_ttl: u64,
  capacity: u64,
  cap_per_shard: u64,
  shards: u32,
  lru: bool,
  max_key: usize,
  max_value: usize,
  /// Stored-but-expired entries may already be gone from the map.
  uncertain: bool,
  hits: u64,
  misses: u64,
  sets: u64,
  deletes: u64,
  /// Evictions the model knows of: `evict_older_than`'s counts, and with
  /// LRU eviction the live entries it found gone (a lower bound then).
  evictions: u64,
}

fn expired(expires: u64, now: u64) -> bool {
  expires != 0 && now >= expires
}

impl Model {
  fn expiry(&self, ttl: Option<u64>) -> u64 {
    match ttl.unwrap_or(self.default_ttl) {
      0 => 0,
      t => self.now.saturating_add(t),
    }
  }

  fn live(&self, k: &[u8]) -> Option<&Entry> {
    self.map.get(k).filter(|e| !expired(e.expires, self.now))
  }

  /// What a keyed access does to a stored expired entry: reclaims it.
  fn reclaim(&mut self, k: &[u8]) {
    if matches!(self.map.get(k), Some(e) if expired(e.expires, self.now)) {
      self.map.remove(k);
    }
  }

  fn fresh(&self, value: Value, ttl: Option<u64>) -> Entry {
    Entry {
      value,
      expires: self.expiry(ttl),
      access: self.now,
      read: false,
    }
  }

  fn any_expired(&self) -> bool {
    self.map.values().any(|e| expired(e.expires, self.now))
  }

  fn remove_expired(&mut self) -> u64 {
    let now = self.now;
    let before = self.map.len();
    self.map.retain(|_, e| !expired(e.expires, now));
    (before - self.map.len()) as u64
  }

  /// Inserting key `k` (not stored): `Ok` if the map must accept it, `Err`
  /// with whether `EFULL` is possible otherwise. Applies the reclaim the map
  /// does before an `EFULL`.
  fn make_room(&mut self) -> Room {
    let stored = self.map.len() as u64;
    if self.lru {
      if stored >= self.cap_per_shard {
        // Some shard may be full: it may evict (or reclaim) anything.
        self.uncertain = true;
      }
      return Room::Yes;
    }
    if self.shards == 1 {
      if stored < self.capacity {
        return Room::Yes;
      }
      self.remove_expired();
      return if (self.map.len() as u64) < self.capacity {
        Room::Yes
      } else {
        Room::Full
      };
    }
    if stored < self.cap_per_shard {
      return Room::Yes;
    }
    if self.any_expired() {
      self.uncertain = true;
    }
    Room::Maybe
  }
}

enum Room {
  Yes,
  Full,
  /// One of several shards may be full.
  Maybe,
}

fn fail(what: impl std::fmt::Display) -> ! {
  panic!("model mismatch: {what}")
}

fn must<T>(what: &str, r: Result<T, Error>) -> T {
  r.unwrap_or_else(|e| fail(format!("{what}: unexpected error {e}")))
}

fn expect_err<T: std::fmt::Debug>(what: &str, r: Result<T, Error>, code: &str) {
  match r {
    Err(e) if e.code == code => {}
    other => fail(format!("{what}: expected {code}, got {other:?}")),
  }
}

fn assert_value(what: &str, got: &Option<Value>, want: Option<&Value>) {
  let ok = match (got, want) {
    (None, None) => true,
    (Some(a), Some(b)) => same_stored(a, b),
    _ => false,
  };
  if !ok {
    fail(format!("{what}: map {got:?}, model {want:?}"));
  }
}

struct Run<'a> {
  m: &'a SharedMap,
  md: Model,
}

impl Run<'_> {
  /// LRU mode: drop an entry the map evicted (asked without side effects
  /// beyond what the model does: `contains` reclaims an expired entry).
  fn sync(&mut self, k: &[u8]) {
    if !self.md.lru || k.len() > self.md.max_key {
      return;
    }
    let present = must("contains (sync)", self.m.contains(k));
    self.md.reclaim(k);
    let model = self.md.map.contains_key(k);
    if present && !model {
      fail(format!("{k:?} present in the map, absent from the model"));
    }
    if !present && model {
      self.md.map.remove(k);
      self.md.evictions += 1;
    }
  }

  /// Before a write: a stored-but-expired entry the map may have reclaimed
  /// already (uncertain model) is dropped, so the write is an insert that
  /// the model judges by the entries it is sure of.
  fn settle(&mut self, k: &[u8]) {
    if self.md.uncertain {
      self.md.reclaim(k);
    }
  }

  fn read(&mut self, k: &[u8], count: bool, bump: bool) -> Option<Value> {
    if k.len() > self.md.max_key {
      if count {
        self.md.misses += 1;
      }
      return None;
    }
    self.md.reclaim(k);
    let now = self.md.now;
    match self.md.map.get_mut(k) {
      None => {
        if count {
          self.md.misses += 1;
        }
        None
      }
      Some(e) => {
        if count {
          self.md.hits += 1;
        }
        if bump && (!e.read || now.saturating_sub(e.access) >= 1000) {
          e.access = now;
          e.read = true;
        }
        Some(e.value.clone())
      }
    }
  }

  fn write_checks(&self, k: &[u8], v: &Value) -> Option<&'static str> {
    if k.len() > self.md.max_key {
      Some("EKEYTOOLONG")
    } else if payload_len(v) > self.md.max_value {
      Some("EVALUETOOLONG")
    } else {
      None
    }
  }

  /// A write of a new entry for `k` (not stored): the map's result must be
  /// `Ok` or a possible `EFULL`; returns whether it was stored.
  fn insert<T: std::fmt::Debug>(&mut self, what: &str, k: &[u8], r: Result<T, Error>) -> bool {
    match (self.md.make_room(), r) {
      (Room::Yes | Room::Maybe, Ok(_)) => true,
      (Room::Full | Room::Maybe, Err(e)) if e.code == "EFULL" => false,
      (room, r) => fail(format!(
        "{what} {k:?}: got {r:?}, model says {}",
        match room {
          Room::Yes => "room",
          Room::Full => "full",
          Room::Maybe => "maybe full",
        }
      )),
    }
  }

  fn op(&mut self, op: &Op) {
    // A write may reclaim stored-but-expired entries anywhere in its shard's
    // ring (the tail it passes while making room): the model no longer knows
    // which are still stored.
    if matches!(op, Op::Set(..) | Op::Add(..) | Op::Incr(..) | Op::Cas(..)) && self.md.any_expired()
    {
      self.md.uncertain = true;
    }
    let max_key = self.md.max_key;
    let key = |k: &KeyIn| k.bytes(max_key);
    match op {
      Op::Get(k) | Op::Peek(k) | Op::Contains(k) => {
        let k = key(k);
        self.sync(&k);
        let (got, want) = match op {
          Op::Get(_) => (must("get", self.m.get(&k)), self.read(&k, true, true)),
          Op::Peek(_) => (must("peek", self.m.peek(&k)), self.read(&k, false, false)),
          _ => {
            let c = must("contains", self.m.contains(&k));
            let want = self.read(&k, false, false);
            if c != want.is_some() {
              fail(format!("contains {k:?}: map {c}, model {want:?}"));
            }
            return;
          }
        };
        assert_value(&format!("{op:?}"), &got, want.as_ref());
      }
      Op::Set(k, v, t) => {
        let (k, v) = (key(k), v.value());
        self.sync(&k);
        self.settle(&k);
        let r = self.m.set(&k, v.as_ref(), t.ttl());
        if let Some(code) = self.write_checks(&k, &v) {
          return expect_err("set", r, code);
        }
        let stored = self.md.map.contains_key(&k) || self.insert("set", &k, r.clone());
        if self.md.map.contains_key(&k) {
          must("set", r);
        }
        if stored {
          let e = self.md.fresh(v, t.ttl());
          self.md.map.insert(k, e);
          self.md.sets += 1;
        }
      }
      Op::Add(k, v, t) => {
        let (k, v) = (key(k), v.value());
        self.sync(&k);
        self.settle(&k);
        let r = self.m.add(&k, v.as_ref(), t.ttl());
        if let Some(code) = self.write_checks(&k, &v) {
          return expect_err("add", r, code);
        }
        if self.md.live(&k).is_some() {
          if must("add", r) {
            fail(format!("add {k:?}: stored over a live entry"));
          }
          return;
        }
        let stored = if self.md.map.contains_key(&k) {
          // An expired entry: replaced in place, never EFULL.
          must("add", r.clone())
        } else {
          match self.insert("add", &k, r.clone()) {
            true => must("add", r),
            false => false,
          }
        };
        if stored {
          let e = self.md.fresh(v, t.ttl());
          self.md.map.insert(k, e);
          self.md.sets += 1;
        }
      }
      Op::Incr(k, d, i, t) => {
        let k = key(k);
        self.sync(&k);
        let (d, i) = (*d as f64 / 4.0, *i as f64 / 4.0);
        self.settle(&k);
        let r = self.m.incr_value(&k, d, i, t.ttl());
        if k.len() > self.md.max_key {
          return expect_err("incr", r, "EKEYTOOLONG");
        }
        let now = self.md.now;
        if let Some(e) = self.md.map.get_mut(&k).filter(|e| !expired(e.expires, now)) {
          let want: Result<Value, &str> = match e.value {
            Value::Number(x) => Ok(Value::Number(x + d)),
            Value::BigInt(b) if d.fract() == 0.0 => {
              b.checked_add(d as i64).map(Value::BigInt).ok_or("ERANGE")
            }
            Value::BigInt(_) => Err("ERANGE"),
            _ => Err("ETYPE"),
          };
          match want {
            Ok(v) => {
              let got = must("incr", r);
              assert_value("incr", &Some(got), Some(&v));
              e.value = v;
              e.access = now;
              e.read = false;
              self.md.sets += 1;
            }
            Err(code) => expect_err("incr", r, code),
          }
          return;
        }
        let v = Value::Number(i + d);
        let stored = self.md.map.contains_key(&k) || self.insert("incr", &k, r.clone());
        if stored {
          let got = must("incr", r);
          assert_value("incr (fresh)", &Some(got), Some(&v));
          let e = self.md.fresh(v, t.ttl());
          self.md.map.insert(k, e);
          self.md.sets += 1;
        }
      }
      Op::Cas(k, a, b) => {
        let (k, a, b) = (key(k), a.value(), b.value());
        self.sync(&k);
        let r = self.m.compare_and_set(&k, a.as_ref(), b.as_ref());
        if k.len() > self.md.max_key {
          if must("cas", r) {
            fail("cas with a too long key succeeded");
          }
          return;
        }
        if payload_len(&b) > self.md.max_value {
          return expect_err("cas", r, "EVALUETOOLONG");
        }
        let got = must("cas", r);
        let now = self.md.now;
        let want = match self.md.map.get_mut(&k) {
          Some(e) if !expired(e.expires, now) && same_cas(&e.value, &a) => {
            e.value = b;
            e.access = now;
            e.read = false;
            true
          }
          _ => false,
        };
        if got != want {
          fail(format!("cas {k:?}: map {got}, model {want}"));
        }
        if want {
          self.md.sets += 1;
        }
      }
      Op::Delete(k) => {
        let k = key(k);
        self.sync(&k);
        let got = must("delete", self.m.delete(&k));
        let want = k.len() <= self.md.max_key && self.md.live(&k).is_some();
        if k.len() <= self.md.max_key {
          self.md.map.remove(&k);
        }
        if got != want {
          fail(format!("delete {k:?}: map {got}, model {want}"));
        }
        if want {
          self.md.deletes += 1;
        }
      }
      Op::Clear => {
        must("clear", self.m.clear());
        self.md.map.clear();
        self.md.uncertain = false;
      }
      Op::Keys | Op::Entries => {
        let got: Vec<(Vec<u8>, Option<Value>)> = if matches!(op, Op::Keys) {
          must("keys", self.m.keys())
            .into_iter()
            .map(|k| (k, None))
            .collect()
        } else {
          must("entries", self.m.entries())
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect()
        };
        let mut seen = std::collections::HashSet::new();
        for (k, v) in &got {
          if !seen.insert(k.clone()) {
            fail(format!("{op:?}: key {k:?} listed twice"));
          }
          let Some(e) = self.md.live(k) else {
            fail(format!("{op:?}: {k:?} listed, not live in the model"));
          };
          if let Some(v) = v {
            assert_value("entries", &Some(v.clone()), Some(&e.value));
          }
        }
        let now = self.md.now;
        let live: Vec<Vec<u8>> = self
          .md
          .map
          .iter()
          .filter(|(_, e)| !expired(e.expires, now))
          .map(|(k, _)| k.clone())
          .collect();
        for k in live {
          if !seen.contains(&k) {
            if !self.md.lru {
              fail(format!("{op:?}: live {k:?} missing"));
            }
            // Evicted: the map has it no more.
            self.md.map.remove(&k);
            self.md.evictions += 1;
          }
        }
      }
      Op::EvictOlderThan(ago, max) => {
        let cutoff = self.md.now.saturating_sub(*ago as u64);
        let budget = max.map_or(u64::MAX, |x| x as u64);
        let n = must(
          "evict_older_than",
          self.m.evict_older_than(cutoff, max.map(|x| x as u64)),
        );
        let mut cands: Vec<(u64, Vec<u8>)> = self
          .md
          .map
          .iter()
          .filter(|(_, e)| e.access < cutoff)
          .map(|(k, e)| (e.access, k.clone()))
          .collect();
        cands.sort();
        let want = (cands.len() as u64).min(budget);
        let exact = !self.md.lru && !self.md.uncertain;
        // While the count of stored-but-expired entries is uncertain, the
        // map may still hold (and evict) expired entries the model has
        // already dropped: no upper bound then (found by this target: map
        // 10, model 9). What stays is checked below, key by key.
        if (exact && n != want) || (!self.md.uncertain && n > want) {
          fail(format!(
            "evict_older_than: map {n}, model {want} (exact: {exact})"
          ));
        }
        // Stats count exactly the `n` the map reports.
        self.md.evictions += n;
        if exact && want == cands.len() as u64 {
          for (_, k) in cands {
            self.md.map.remove(&k);
          }
        } else {
          // A budget cut (ties in access time, per-shard order) or an
          // inexact model: ask which went. An expired candidate is gone
          // either way (evicted, or reclaimed by the asking).
          let mut live_gone = 0;
          for (_, k) in cands {
            let present = must("contains", self.m.contains(&k));
            let was_live = self.md.live(&k).is_some();
            self.md.reclaim(&k);
            if !present && self.md.map.remove(&k).is_some() && was_live {
              live_gone += 1;
            }
          }
          if exact && live_gone > n {
            fail(format!(
              "evict_older_than: {live_gone} live entries gone, {n} evicted"
            ));
          }
        }
      }
      Op::Purge => {
        let n = must("purge_expired", self.m.purge_expired());
        let want = self.md.remove_expired();
        // With LRU eviction the model may still hold entries the map
        // evicted: at most what the model counts.
        if !self.md.lru && !self.md.uncertain && n != want {
          fail(format!("purge_expired: map {n}, model {want}"));
        }
        // While uncertain, the map may still hold expired entries the model
        // dropped already (found by this target: map 5, model 4).
        if !self.md.uncertain && n > want {
          fail(format!("purge_expired: map {n} over the model's {want}"));
        }
        self.md.uncertain = false;
      }
      Op::GetMany(ks) => {
        let ks: Vec<Vec<u8>> = ks.iter().take(24).map(key).collect();
        for k in &ks {
          self.sync(k);
        }
        let refs: Vec<&[u8]> = ks.iter().map(|k| k.as_slice()).collect();
        let got = must(
          "get_many_with",
          self
            .m
            .get_many_with(&refs, |_, v| v.map(|v| v.to_owned_value())),
        );
        for (k, g) in ks.iter().zip(&got) {
          let want = self.read(k, true, true);
          assert_value("get_many_with", g, want.as_ref());
        }
      }
      Op::Advance(ms) => {
        self.m.debug_advance_clock(*ms as u64);
        self.md.now += *ms as u64;
      }
      Op::Len => {
        let n = self.m.len();
        if !self.md.uncertain && !self.md.lru && n != self.md.map.len() as u64 {
          fail(format!("len: map {n}, model {}", self.md.map.len()));
        }
        if n > self.md.map.len() as u64 && !self.md.uncertain && !self.md.lru {
          fail("len over the model");
        }
      }
      Op::Stats => self.check_stats(),
      Op::Verify => {
        let r = self.m.verify();
        if !r.ok {
          fail(format!("verify: {:?}", r.problems));
        }
      }
    }
  }

  fn check_stats(&self) {
    let s = self.m.stats();
    let md = &self.md;
    let pairs = [
      ("hits", s.hits, md.hits),
      ("misses", s.misses, md.misses),
      ("sets", s.sets, md.sets),
      ("deletes", s.deletes, md.deletes),
    ];
    for (name, got, want) in pairs {
      if got != want {
        fail(format!("stats.{name}: map {got}, model {want}"));
      }
    }
    if (!md.lru && s.evictions != md.evictions) || s.evictions < md.evictions {
      fail(format!(
        "stats.evictions: map {}, model {} (lru: {})",
        s.evictions, md.evictions, md.lru
      ));
    }
    if s.size != self.m.len() {
      fail(format!("stats.size {} != len {}", s.size, self.m.len()));
    }
    if !md.uncertain && !md.lru && s.size != md.map.len() as u64 {
      fail(format!(
        "stats.size: map {}, model {}",
        s.size,
        md.map.len()
      ));
    }
    if s.lock_recoveries != 0 || s.repairs != 0 {
      fail(format!("undamaged map repaired: {s:?}"));
    }
    if s.size > md.shards as u64 * md.cap_per_shard {
      fail(format!("size {} over capacity", s.size));
    }
  }
}

/// Runs one input. Panics on a difference from the model.
pub fn run(input: &Input) {
  let c = &input.cfg;
  let capacity = 1 + (c.capacity % 48) as u32;
  let shards = (1u32 << (c.shards_log2 % 3)).min(1 << capacity.ilog2());
  let opts = Options {
    capacity: Some(capacity),
    max_key_bytes: 5 + (c.max_key % 12) as u32,
    max_value_bytes: (c.max_value % 40) as u32,
    eviction: if c.lru { Eviction::Lru } else { Eviction::None },
    default_ttl_ms: c.default_ttl.ttl().unwrap_or(0),
    shards: Some(shards),
    lock_timeout: Duration::from_secs(5),
    hash_seed: Some(c.seed),
    ..Options::default()
  };
  let m = SharedMap::in_memory(&opts).expect("valid options");
  m.debug_set_clock(Some(CLOCK0));
  let md = Model {
    map: HashMap::new(),
    now: CLOCK0,
    default_ttl: opts.default_ttl_ms,
    capacity: capacity as u64,
    cap_per_shard: capacity.div_ceil(shards) as u64,
    shards,
    lru: c.lru,
    max_key: opts.max_key_bytes as usize,
    max_value: opts.max_value_bytes as usize,
    uncertain: false,
    hits: 0,
    misses: 0,
    sets: 0,
    deletes: 0,
    evictions: 0,
  };
  let mut run = Run { m: &m, md };
  for op in input.ops.iter().take(200) {
    run.op(op);
  }
  run.check_stats();
  let r = m.verify();
  if !r.ok {
    fail(format!("verify at the end: {:?}", r.problems));
  }
}
