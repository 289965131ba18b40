//! Model-based property test: random operation sequences against a
//! `HashMap` model (eviction None and a capacity large enough that results
//! are exact; TTLs driven by the handle's injected clock).

mod common;
use common::Name;
use lrukit_shm_map::{Eviction, Options, SharedMap, Value, ValueRef};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug)]
enum Op {
  Set(u8, Value, Option<u64>),
  Add(u8, Value, Option<u64>),
  Get(u8),
  Peek(u8),
  Contains(u8),
  Delete(u8),
  Incr(u8, i32, i32, Option<u64>),
  Cas(u8, Value, Value),
  Clear,
  Advance,
  Keys,
  Len,
}

const DEFAULT_TTL: u64 = 5000;
const STEP: u64 = 3000;

fn key(i: u8) -> Vec<u8> {
  vec![i; 1 + (i % 13) as usize]
}

/// A small pool of values, so compare_and_set often finds a match and
/// near-misses (same type and length, other bytes; same bytes, other type).
fn pooled() -> impl Strategy<Value = Value> {
  prop_oneof![
    Just(Value::String(b"x1".to_vec())),
    Just(Value::String(b"x2".to_vec())),
    Just(Value::Bytes(b"x1".to_vec())),
    Just(Value::Json(b"x1".to_vec())),
    Just(Value::Number(1.0)),
    Just(Value::Number(2.0)),
    Just(Value::BigInt(1)),
    Just(Value::Bool(true)),
    Just(Value::Bool(false)),
    Just(Value::Null),
  ]
}

fn value() -> impl Strategy<Value = Value> {
  prop_oneof![
    3 => pooled(),
    7 => any_value(),
  ]
}

fn any_value() -> impl Strategy<Value = Value> {
  prop_oneof![
    proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::String),
    (-100i32..100).prop_map(|n| Value::Number(n as f64 / 4.0)),
    prop_oneof![
      Just(i64::MAX),
      Just(i64::MIN),
      Just(i64::MAX - 3),
      -50i64..50
    ]
    .prop_map(Value::BigInt),
    any::<bool>().prop_map(Value::Bool),
    Just(Value::Null),
    proptest::collection::vec(any::<u8>(), 0..64).prop_map(Value::Bytes),
    proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Json),
  ]
}

fn ttl() -> impl Strategy<Value = Option<u64>> {
  prop_oneof![
    Just(None),
    Just(Some(0)),
    Just(Some(1000)),
    Just(Some(5000))
  ]
}

fn op() -> impl Strategy<Value = Op> {
  let k = 0u8..8;
  prop_oneof![
    4 => (k.clone(), value(), ttl()).prop_map(|(k, v, t)| Op::Set(k, v, t)),
    2 => (k.clone(), value(), ttl()).prop_map(|(k, v, t)| Op::Add(k, v, t)),
    3 => k.clone().prop_map(Op::Get),
    1 => k.clone().prop_map(Op::Peek),
    1 => k.clone().prop_map(Op::Contains),
    2 => k.clone().prop_map(Op::Delete),
    2 => (k.clone(), -5i32..5, -5i32..5, ttl()).prop_map(|(k, d, i, t)| Op::Incr(k, d, i, t)),
    3 => (k, pooled(), value()).prop_map(|(k, a, b)| Op::Cas(k, a, b)),
    1 => Just(Op::Clear),
    2 => Just(Op::Advance),
    1 => Just(Op::Keys),
    1 => Just(Op::Len),
  ]
}

#[derive(Default)]
struct Model {
  now: u64,
  map: HashMap<u8, (Value, Option<u64>)>,
}

impl Model {
  fn expires(&self, ttl: Option<u64>) -> Option<u64> {
    match ttl.unwrap_or(DEFAULT_TTL) {
      0 => None,
      t => Some(self.now + t),
    }
  }
  fn live(&mut self, k: u8) -> Option<&mut (Value, Option<u64>)> {
    let now = self.now;
    if matches!(self.map.get(&k), Some((_, Some(e))) if *e <= now) {
      self.map.remove(&k);
    }
    self.map.get_mut(&k)
  }
}

fn same(a: &Value, b: &Value) -> bool {
  match (a, b) {
    (Value::Number(x), Value::Number(y)) => x == y,
    _ => a == b,
  }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
  let n = Name::new("model");
  let opts = Options {
    capacity: Some(1000),
    max_key_bytes: 16,
    max_value_bytes: 64,
    eviction: Eviction::None,
    default_ttl_ms: DEFAULT_TTL,
    shards: Some(4),
    ..Options::default()
  };
  let m = SharedMap::create(&n, &opts).unwrap();
  let mut md = Model::default();
  for (step, op) in ops.iter().enumerate() {
    let ctx = format!("step {step}: {op:?}");
    match op {
      Op::Set(k, v, t) => {
        m.set(&key(*k), v.as_ref(), *t).unwrap();
        let e = md.expires(*t);
        md.map.insert(*k, (v.clone(), e));
      }
      Op::Add(k, v, t) => {
        let got = m.add(&key(*k), v.as_ref(), *t).unwrap();
        let want = md.live(*k).is_none();
        prop_assert_eq!(got, want, "{}", ctx);
        if want {
          let e = md.expires(*t);
          md.map.insert(*k, (v.clone(), e));
        }
      }
      Op::Get(k) | Op::Peek(k) => {
        let got = if matches!(op, Op::Get(_)) {
          m.get(&key(*k))
        } else {
          m.peek(&key(*k))
        }
        .unwrap();
        let want = md.live(*k).map(|e| e.0.clone());
        prop_assert_eq!(got, want, "{}", ctx);
      }
      Op::Contains(k) => {
        prop_assert_eq!(
          m.contains(&key(*k)).unwrap(),
          md.live(*k).is_some(),
          "{}",
          ctx
        );
      }
      Op::Delete(k) => {
        let want = md.live(*k).is_some();
        md.map.remove(k);
        prop_assert_eq!(m.delete(&key(*k)).unwrap(), want, "{}", ctx);
      }
      Op::Incr(k, d, i, t) => {
        let got = m.incr_value(&key(*k), *d as f64, *i as f64, *t);
        let e = md.expires(*t);
        match md.live(*k) {
          None => {
            let v = Value::Number(*i as f64 + *d as f64);
            prop_assert_eq!(got.unwrap(), v.clone(), "{}", ctx);
            md.map.insert(*k, (v, e));
          }
          Some(entry) => match &entry.0 {
            Value::Number(x) => {
              let v = Value::Number(x + *d as f64);
              prop_assert_eq!(got.unwrap(), v.clone(), "{}", ctx);
              entry.0 = v;
            }
            Value::BigInt(b) => match b.checked_add(*d as i64) {
              Some(s) => {
                prop_assert_eq!(got.unwrap(), Value::BigInt(s), "{}", ctx);
                entry.0 = Value::BigInt(s);
              }
              None => prop_assert_eq!(got.unwrap_err().code, "ERANGE", "{}", ctx),
            },
            _ => prop_assert_eq!(got.unwrap_err().code, "ETYPE", "{}", ctx),
          },
        }
      }
      Op::Cas(k, a, b) => {
        let got = m.compare_and_set(&key(*k), a.as_ref(), b.as_ref()).unwrap();
        let want = match md.live(*k) {
          Some(entry) if same(&entry.0, a) => {
            entry.0 = b.clone();
            true
          }
          _ => false,
        };
        prop_assert_eq!(got, want, "{}", ctx);
      }
      Op::Clear => {
        m.clear().unwrap();
        md.map.clear();
      }
      Op::Advance => {
        m.debug_advance_clock(STEP);
        md.now += STEP;
      }
      Op::Keys => {
        let got: HashSet<Vec<u8>> = m.keys().unwrap().into_iter().collect();
        let live: Vec<u8> = md.map.keys().copied().collect();
        let want: HashSet<Vec<u8>> = live
          .into_iter()
          .filter_map(|k| md.live(k).map(|_| key(k)))
          .collect();
        prop_assert_eq!(got, want, "{}", ctx);
        let entries = m.entries().unwrap();
        for (kb, v) in entries {
          let id = kb[0];
          prop_assert_eq!(Some(v), md.live(id).map(|e| e.0.clone()), "{}", ctx);
        }
      }
      Op::Len => {
        m.purge_expired().unwrap();
        let live: Vec<u8> = md.map.keys().copied().collect();
        let want = live.into_iter().filter(|&k| md.live(k).is_some()).count() as u64;
        prop_assert_eq!(m.len(), want, "{}", ctx);
      }
    }
  }
  let r = m.verify();
  prop_assert!(r.ok, "{:?}", r.problems);
  Ok(())
}

proptest! {
  #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
  #[test]
  fn matches_hashmap_model(ops in proptest::collection::vec(op(), 1..80)) {
    run(&ops)?;
  }
}

#[test]
fn value_ref_round_trip_helpers() {
  let v = Value::Json(b"[1]".to_vec());
  assert_eq!(v.as_ref().to_owned_value(), v);
  assert_eq!(ValueRef::Null.to_owned_value(), Value::Null);
}
