//! Model-based property tests of `TimedLru`, the part of this crate that
//! lrukit's `LruCache` uses: random operation sequences (writes with and
//! without a TTL or a timestamp, reads, deletes, `pop_lru`/`peek_lru`,
//! `purge_stale`, `get_many`, `clear`, clock advances) run against the cache
//! on a manual clock and against a `Vec` kept in MRU order with deadlines.
//! Every result, every value handed to `dispose` (in order), and after every
//! operation the live entries (both directions), `len`, `capacity` and the
//! time are compared.
//!
//! Three capacities: bounded (a full cache evicts its LRU entry, live or
//! not), unbounded (grows by doubling from 64 entries) and unbounded under a
//! byte limit (grows to the largest table within the limit, then refuses new
//! keys and changes nothing).
//!
//! Times and TTLs are multiples of 0.5 ms, so writes often land exactly on a
//! deadline: an entry is live while `now < deadline` and expired from
//! `now == deadline` on.
//!
//! `PROPTEST_CASES` overrides the number of cases (default 64 per test).
#![cfg(feature = "alloc")]

use lrukit_array_lru::timed::{Capacity, Clock, SetOptions, Stamped, TimedLru, Ttl};
use proptest::prelude::*;

type Key = u16;

#[derive(Clone, Debug)]
enum Op {
  /// `key`, TTL in half ms (`Some(0)`: never), timestamp in half ms.
  Set(Key, Option<u8>, Option<i16>),
  /// Writes keys `from..from + n` with the cache's defaults.
  Fill(Key, u8),
  Get(Key),
  Peek(Key),
  Contains(Key),
  Delete(Key),
  PopLru,
  PeekLru,
  PurgeStale,
  GetMany(Vec<Key>),
  Clear,
  /// Moves the clock by this many half ms.
  Advance(u8),
}

fn op_strategy(max_key: Key) -> impl Strategy<Value = Op> {
  let k = move || 0..=max_key;
  prop_oneof![
    10 => (k(), prop::option::of(0..=24u8), prop::option::of(-100..100i16))
      .prop_map(|(k, ttl, ts)| Op::Set(k, ttl, ts)),
    1 => (k(), 1..=80u8).prop_map(|(k, n)| Op::Fill(k, n)),
    5 => k().prop_map(Op::Get),
    2 => k().prop_map(Op::Peek),
    2 => k().prop_map(Op::Contains),
    3 => k().prop_map(Op::Delete),
    2 => Just(Op::PopLru),
    2 => Just(Op::PeekLru),
    1 => Just(Op::PurgeStale),
    2 => prop::collection::vec(k(), 0..12).prop_map(Op::GetMany),
    1 => Just(Op::Clear),
    6 => (0..=16u8).prop_map(Op::Advance),
  ]
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
  Bounded(usize),
  Unbounded,
  /// Unbounded, with a byte limit that holds exactly this many entries.
  Limited(usize),
}

/// One entry of the model: `(key, value, timestamp, deadline)`.
type Entry = (Key, u32, f64, f64);

/// The reference: entries in MRU order (index 0 is most recently used).
struct Model {
  kind: Kind,
  now: f64,
  /// Default TTL in ms; infinite = never.
  ttl: f64,
  v: Vec<Entry>,
}

impl Model {
  fn expired(&self, e: &Entry) -> bool {
    e.3 <= self.now
  }

  fn pos(&self, k: Key) -> Option<usize> {
    self.v.iter().position(|e| e.0 == k)
  }

  /// A write; `Err` when a limited cache refuses it (the pair is disposed).
  fn set(
    &mut self,
    k: Key,
    value: u32,
    ttl: Option<f64>,
    ts: Option<f64>,
    out: &mut Vec<(Key, u32)>,
  ) -> Result<(), ()> {
    // The rules, written out independently of `Ttl` and `SetOptions`.
    let ttl = match ttl {
      Some(0.0) => f64::INFINITY,
      Some(ms) => ms,
      None => self.ttl,
    };
    let deadline = self.now + ttl; // inf + now = inf
    let entry = (k, value, ts.unwrap_or(self.now), deadline);
    if let Some(i) = self.pos(k) {
      // Replaced in place, expired or not.
      let old = self.v.remove(i);
      out.push((k, old.1));
      self.v.insert(0, entry);
      return Ok(());
    }
    match self.kind {
      Kind::Bounded(n) if self.v.len() == n => {
        let (k, v, ..) = self.v.pop().unwrap();
        out.push((k, v));
      }
      Kind::Limited(n) if self.v.len() == n => {
        out.push((k, value));
        return Err(());
      }
      _ => {}
    }
    self.v.insert(0, entry);
    Ok(())
  }

  fn get(&mut self, k: Key, out: &mut Vec<(Key, u32)>) -> Option<Entry> {
    let i = self.pos(k)?;
    if self.expired(&self.v[i]) {
      let (k, v, ..) = self.v.remove(i);
      out.push((k, v));
      return None;
    }
    let e = self.v.remove(i);
    self.v.insert(0, e);
    Some(e)
  }

  fn peek(&self, k: Key) -> Option<Entry> {
    self.pos(k).map(|i| self.v[i]).filter(|e| !self.expired(e))
  }

  fn delete(&mut self, k: Key, out: &mut Vec<(Key, u32)>) -> Option<Entry> {
    let e = self.v.remove(self.pos(k)?);
    if self.expired(&e) {
      out.push((e.0, e.1));
      None
    } else {
      Some(e)
    }
  }

  /// Reclaims expired entries at the LRU end.
  fn reclaim_tail(&mut self, out: &mut Vec<(Key, u32)>) {
    while self.v.last().is_some_and(|e| self.expired(e)) {
      let (k, v, ..) = self.v.pop().unwrap();
      out.push((k, v));
    }
  }

  fn pop_lru(&mut self, out: &mut Vec<(Key, u32)>) -> Option<Entry> {
    self.reclaim_tail(out);
    self.v.pop()
  }

  fn peek_lru(&mut self, out: &mut Vec<(Key, u32)>) -> Option<Entry> {
    self.reclaim_tail(out);
    self.v.last().copied()
  }

  fn purge_stale(&mut self, out: &mut Vec<(Key, u32)>) -> usize {
    let now = self.now;
    let before = self.v.len();
    // Reclaimed from most to least recently used.
    self.v.retain(|e| {
      let expired = e.3 <= now;
      if expired {
        out.push((e.0, e.1));
      }
      !expired
    });
    before - self.v.len()
  }

  fn clear(&mut self, out: &mut Vec<(Key, u32)>) {
    // Disposed from least to most recently used.
    out.extend(self.v.drain(..).rev().map(|e| (e.0, e.1)));
  }

  fn live(&self) -> Vec<Entry> {
    self
      .v
      .iter()
      .copied()
      .filter(|e| !self.expired(e))
      .collect()
  }
}

fn entry(k: Key, s: &Stamped<u32>) -> Entry {
  (k, s.value, s.timestamp, s.expires_at)
}

fn options(ttl: Option<f64>, ts: Option<f64>) -> SetOptions {
  SetOptions {
    timestamp: ts,
    ttl: ttl.map(|ms| Ttl::from_ms(ms).unwrap()),
  }
}

fn run(kind: Kind, start: f64, default_ttl: f64, ops: &[Op]) -> Result<(), TestCaseError> {
  let cache = match kind {
    Kind::Bounded(n) => TimedLru::new(Capacity::Bounded(n)).unwrap(),
    Kind::Unbounded => TimedLru::new(Capacity::Unbounded).unwrap(),
    Kind::Limited(n) => {
      let limit = TimedLru::<Key, u32>::table_bytes(n).unwrap();
      TimedLru::try_new(Capacity::Unbounded, limit).unwrap()
    }
  };
  let mut c: TimedLru<Key, u32> = cache
    .with_clock(Clock::Manual(start))
    .with_default_ttl(Ttl::from_ms(default_ttl).unwrap());
  let mut m = Model {
    kind,
    now: start,
    ttl: Ttl::from_ms(default_ttl)
      .unwrap()
      .ms()
      .unwrap_or(f64::INFINITY),
    v: Vec::new(),
  };
  let mut next_value = 0u32;
  for (step, op) in ops.iter().enumerate() {
    // What the cache and the model hand to `dispose`, in order.
    let (mut got, mut want) = (Vec::new(), Vec::new());
    let mut dispose = |k: Key, s: Stamped<u32>| got.push((k, s.value));
    let mut set = |c: &mut TimedLru<Key, u32>,
                   m: &mut Model,
                   k,
                   ttl,
                   ts,
                   want: &mut Vec<_>,
                   dispose: &mut dyn FnMut(Key, Stamped<u32>)| {
      next_value += 1;
      let v = next_value;
      let o = options(ttl, ts);
      let r = match kind {
        Kind::Limited(_) => c.try_insert(k, v, o, dispose).map_err(|_| ()),
        _ => {
          c.insert(k, v, o, dispose);
          Ok(())
        }
      };
      (r, m.set(k, v, ttl, ts, want))
    };
    match op {
      Op::Set(k, ttl, ts) => {
        let ttl = ttl.map(|t| f64::from(t) / 2.0);
        let ts = ts.map(|t| f64::from(t) / 2.0);
        let (r, want_r) = set(&mut c, &mut m, *k, ttl, ts, &mut want, &mut dispose);
        prop_assert_eq!(r, want_r, "step {}: {:?}", step, op);
      }
      Op::Fill(from, n) => {
        for k in *from..from.saturating_add(Key::from(*n)) {
          let (r, want_r) = set(&mut c, &mut m, k, None, None, &mut want, &mut dispose);
          prop_assert_eq!(r, want_r, "step {}: {:?} at key {}", step, op, k);
        }
      }
      Op::Get(k) => {
        let r = c.get(k, &mut dispose).map(|s| entry(*k, s));
        prop_assert_eq!(r, m.get(*k, &mut want), "step {}: {:?}", step, op);
      }
      Op::Peek(k) => {
        prop_assert_eq!(c.peek(k).map(|s| entry(*k, s)), m.peek(*k));
      }
      Op::Contains(k) => {
        prop_assert_eq!(c.contains(k), m.peek(*k).is_some());
      }
      Op::Delete(k) => {
        let r = c.remove(k, &mut dispose).map(|(k, s)| entry(k, &s));
        prop_assert_eq!(r, m.delete(*k, &mut want), "step {}: {:?}", step, op);
      }
      Op::PopLru => {
        let r = c.pop_lru(&mut dispose).map(|(k, s)| entry(k, &s));
        prop_assert_eq!(r, m.pop_lru(&mut want), "step {}: {:?}", step, op);
      }
      Op::PeekLru => {
        let r = c.peek_lru(&mut dispose).map(|(k, s)| entry(*k, s));
        prop_assert_eq!(r, m.peek_lru(&mut want), "step {}: {:?}", step, op);
      }
      Op::PurgeStale => {
        let n = c.purge_stale(&mut dispose);
        prop_assert_eq!(n, m.purge_stale(&mut want));
      }
      Op::GetMany(keys) => {
        let mut hits = Vec::new();
        c.get_many(
          keys.len(),
          |i| &keys[i],
          &mut dispose,
          |i, s| {
            hits.push((i, entry(keys[i], s)));
            Ok::<(), ()>(())
          },
        )
        .unwrap();
        let want_hits: Vec<(usize, Entry)> = keys
          .iter()
          .enumerate()
          .filter_map(|(i, k)| m.get(*k, &mut want).map(|e| (i, e)))
          .collect();
        prop_assert_eq!(hits, want_hits, "step {}: {:?}", step, op);
      }
      Op::Clear => {
        c.clear(&mut dispose);
        m.clear(&mut want);
      }
      Op::Advance(half_ms) => {
        let ms = f64::from(*half_ms) / 2.0;
        m.now += ms;
        prop_assert_eq!(c.advance_time(ms), Ok(m.now));
      }
    }
    prop_assert_eq!(&got, &want, "disposed at step {}: {:?}", step, op);
    // The state after every operation.
    prop_assert_eq!(c.now(), m.now);
    prop_assert_eq!(c.len(), m.v.len(), "len after step {}: {:?}", step, op);
    prop_assert_eq!(c.is_empty(), m.v.is_empty());
    let live: Vec<Entry> = c.iter().map(|(k, s)| entry(*k, s)).collect();
    prop_assert_eq!(
      &live,
      &m.live(),
      "live entries after step {}: {:?}",
      step,
      op
    );
    let back: Vec<Entry> = c.iter().rev().map(|(k, s)| entry(*k, s)).collect();
    let mut want_back = m.live();
    want_back.reverse();
    prop_assert_eq!(back, want_back);
    let cap = match kind {
      Kind::Bounded(n) => Some(n),
      _ => None,
    };
    prop_assert_eq!(c.capacity(), cap);
  }
  Ok(())
}

fn config() -> ProptestConfig {
  let cases = std::env::var("PROPTEST_CASES")
    .ok()
    .and_then(|s| s.parse().ok())
    .unwrap_or(64);
  ProptestConfig {
    cases,
    failure_persistence: None,
    ..ProptestConfig::default()
  }
}

/// A manual clock's start: 0, or a `Date.now()`-sized time.
fn start_strategy() -> impl Strategy<Value = f64> {
  prop_oneof![Just(0.0), Just(1_700_000_000_000.0)]
}

/// The cache's default TTL in ms (0: never).
fn default_ttl_strategy() -> impl Strategy<Value = f64> {
  prop_oneof![Just(0.0), Just(2.5), Just(10.0)]
}

proptest! {
  #![proptest_config(config())]

  #[test]
  fn model_bounded(
    cap in 1..=8usize,
    start in start_strategy(),
    ttl in default_ttl_strategy(),
    ops in prop::collection::vec(op_strategy(11), 1..160),
  ) {
    run(Kind::Bounded(cap), start, ttl, &ops)?;
  }

  #[test]
  fn model_unbounded_grows(
    start in start_strategy(),
    ttl in default_ttl_strategy(),
    ops in prop::collection::vec(op_strategy(300), 1..160),
  ) {
    run(Kind::Unbounded, start, ttl, &ops)?;
  }

  #[test]
  fn model_unbounded_within_a_byte_limit(
    start in start_strategy(),
    ttl in default_ttl_strategy(),
    ops in prop::collection::vec(op_strategy(160), 1..160),
  ) {
    run(Kind::Limited(100), start, ttl, &ops)?;
  }
}

/// The generators reach what the model is there to check: the limit, growth
/// past the first table, and writes on the exact deadline.
#[test]
fn the_operations_reach_growth_the_limit_and_the_deadline() {
  // Fill 0..80, 80..160: a limited cache stops at 100 entries.
  let ops = [Op::Fill(0, 80), Op::Fill(80, 80)];
  run(Kind::Limited(100), 0.0, 0.0, &ops).unwrap();
  let mut c = TimedLru::<Key, u32>::try_new(
    Capacity::Unbounded,
    TimedLru::<Key, u32>::table_bytes(100).unwrap(),
  )
  .unwrap()
  .with_clock(Clock::Manual(0.0));
  let mut refused = 0;
  for k in 0..160 {
    if c
      .try_insert(k, 0, SetOptions::default(), |_, _| {})
      .is_err()
    {
      refused += 1;
    }
  }
  assert_eq!((c.len(), refused), (100, 60));
  // An unbounded cache passes its first 64-entry table.
  run(
    Kind::Unbounded,
    0.0,
    0.0,
    &[Op::Fill(0, 80), Op::Fill(80, 80)],
  )
  .unwrap();
  // A read half a ms before the deadline hits, one exactly at it misses
  // (and the model agrees).
  let ops = [
    Op::Set(1, None, None),
    Op::Advance(4),
    Op::Get(1),
    Op::Advance(1),
    Op::Get(1),
  ];
  run(Kind::Bounded(2), 0.0, 2.5, &ops).unwrap();
  let mut c = TimedLru::<Key, u32>::new(Capacity::Bounded(2))
    .unwrap()
    .with_clock(Clock::Manual(0.0))
    .with_default_ttl(Ttl::from_ms(2.5).unwrap());
  c.insert(1, 7, SetOptions::default(), |_, _| {});
  c.advance_time(2.0).unwrap();
  assert_eq!(c.get(&1, |_, _| {}).map(|s| s.value), Some(7));
  c.advance_time(0.5).unwrap();
  assert_eq!(c.get(&1, |_, _| {}).map(|s| s.value), None);
}
