//! Property tests: random operation sequences against a simple model (a
//! HashMap with deadlines and a manual clock), for both engines.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use lrukit_flow_table::{new_engine, Clock, Config, EngineKind, FlowEngine, ManualClock};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
  Insert(u64, Option<u64>),
  InsertMany(Vec<u64>, Option<u64>),
  Get(u64),
  Touch(u64),
  TouchMany(Vec<u64>),
  GetAndTouch(u64),
  Contains(u64),
  Remove(u64),
  Advance(u64),
  ExpireSome(usize),
  ExpireAll,
  ForEach,
}

fn op() -> impl Strategy<Value = Op> {
  let key = 0u64..24;
  let timeout = prop_oneof![
    Just(None),
    Just(Some(0)),
    Just(Some(1)),
    (2u64..100).prop_map(Some),
    (100u64..6000).prop_map(Some),
    (60_000u64..5_000_000).prop_map(Some),
    // Around 2^32 ms, where the wheel moves timeouts to a side table.
    (4_294_967_000u64..4_294_968_000).prop_map(Some),
  ];
  prop_oneof![
    6 => (key.clone(), timeout.clone()).prop_map(|(k, t)| Op::Insert(k, t)),
    2 => (proptest::collection::vec(key.clone(), 0..40), timeout).prop_map(|(ks, t)| Op::InsertMany(ks, t)),
    2 => key.clone().prop_map(Op::Get),
    4 => key.clone().prop_map(Op::Touch),
    2 => proptest::collection::vec(key.clone(), 0..40).prop_map(Op::TouchMany),
    1 => key.clone().prop_map(Op::GetAndTouch),
    1 => key.clone().prop_map(Op::Contains),
    2 => key.prop_map(Op::Remove),
    4 => prop_oneof![8 => 0u64..10, 8 => 0u64..200, 8 => 0u64..10_000, 4 => 0u64..2_000_000, 1 => 4_294_960_000u64..4_294_970_000].prop_map(Op::Advance),
    2 => (1usize..5).prop_map(Op::ExpireSome),
    1 => Just(Op::ExpireAll),
    1 => Just(Op::ForEach),
  ]
}

/// key -> (value, last_seen, timeout)
#[derive(Default)]
struct Model {
  map: HashMap<u64, (u64, u64, u64)>,
}

impl Model {
  fn live(&self, k: u64, now: u64) -> Option<(u64, u64, u64)> {
    self
      .map
      .get(&k)
      .copied()
      .filter(|&(_, seen, to)| seen.saturating_add(to) > now)
  }
}

const DEFAULT_TIMEOUT: u64 = 300;

fn run(kind: EngineKind, shards: usize, ops: Vec<Op>) -> Result<(), TestCaseError> {
  let clock = Arc::new(ManualClock::new(1_000));
  let t: Box<dyn FlowEngine<u64, u64>> = new_engine(
    kind,
    Config::new(DEFAULT_TIMEOUT).with_shards(shards),
    clock.clone(),
  );
  let mut m = Model::default();
  let mut next_value = 0u64;
  for op in ops {
    let now = clock.now();
    match op {
      Op::Insert(k, to) => {
        next_value += 1;
        let r = t.insert_full(k, next_value, to).unwrap();
        let old = m
          .map
          .insert(k, (next_value, now, to.unwrap_or(DEFAULT_TIMEOUT)));
        match old {
          Some((v, seen, to)) if seen.saturating_add(to) > now => {
            prop_assert_eq!(r.replaced, Some(v));
            prop_assert!(r.expired.is_none());
          }
          Some((v, seen, _)) => {
            prop_assert_eq!(r.replaced, None);
            let e = r.expired.expect("expired previous entry reported");
            prop_assert_eq!((e.key, e.value, e.last_seen), (k, v, seen));
          }
          None => prop_assert!(r.replaced.is_none() && r.expired.is_none()),
        }
        prop_assert!(r.evicted.is_none());
      }
      Op::InsertMany(ks, to) => {
        let entries: Vec<(u64, u64)> = ks
          .iter()
          .map(|&k| {
            next_value += 1;
            (k, next_value)
          })
          .collect();
        for &(k, v) in &entries {
          m.map.insert(k, (v, now, to.unwrap_or(DEFAULT_TIMEOUT)));
        }
        prop_assert!(t.insert_many(entries, to).is_ok());
      }
      Op::Get(k) => prop_assert_eq!(t.get(&k), m.live(k, now).map(|e| e.0)),
      Op::Contains(k) => prop_assert_eq!(t.contains(&k), m.live(k, now).is_some()),
      Op::Touch(k) => {
        let live = m.live(k, now).is_some();
        prop_assert_eq!(t.touch(&k), live);
        if live {
          m.map.get_mut(&k).unwrap().1 = now;
        }
      }
      Op::TouchMany(ks) => {
        let mut out = vec![true; 3]; // cleared by touch_many
        t.touch_many(&ks, &mut out);
        let want: Vec<bool> = ks.iter().map(|&k| m.live(k, now).is_some()).collect();
        prop_assert_eq!(&out, &want);
        for (&k, live) in ks.iter().zip(want) {
          if live {
            m.map.get_mut(&k).unwrap().1 = now;
          }
        }
      }
      Op::GetAndTouch(k) => {
        let live = m.live(k, now);
        prop_assert_eq!(t.get_and_touch(&k), live.map(|e| e.0));
        if live.is_some() {
          m.map.get_mut(&k).unwrap().1 = now;
        }
      }
      Op::Remove(k) => {
        let live = m.live(k, now);
        prop_assert_eq!(t.remove(&k), live.map(|e| e.0));
        if live.is_some() {
          m.map.remove(&k);
        }
      }
      Op::Advance(dt) => {
        clock.advance(dt);
      }
      Op::ExpireSome(max) => {
        let out = t.expire(now, max);
        prop_assert!(out.len() <= max);
        for e in out {
          let (v, seen, to) = m
            .map
            .remove(&e.key)
            .expect("expired key exists in the model");
          prop_assert!(seen.saturating_add(to) <= now, "reaped a live entry");
          prop_assert_eq!((e.value, e.last_seen), (v, seen));
        }
      }
      Op::ExpireAll => {
        let out = t.expire(now, usize::MAX);
        let got: BTreeMap<u64, (u64, u64)> = out
          .iter()
          .map(|e| (e.key, (e.value, e.last_seen)))
          .collect();
        prop_assert_eq!(got.len(), out.len(), "duplicate keys in one expire");
        let want: BTreeMap<u64, (u64, u64)> = m
          .map
          .iter()
          .filter(|(_, &(_, seen, to))| seen.saturating_add(to) <= now)
          .map(|(&k, &(v, seen, _))| (k, (v, seen)))
          .collect();
        prop_assert_eq!(&got, &want);
        for k in want.keys() {
          m.map.remove(k);
        }
      }
      Op::ForEach => {
        let mut got = BTreeMap::new();
        t.for_each(&mut |k, v, seen| {
          got.insert(*k, (*v, seen));
        });
        let want: BTreeMap<u64, (u64, u64)> = m
          .map
          .iter()
          .filter(|(_, &(_, seen, to))| seen.saturating_add(to) > now)
          .map(|(&k, &(v, seen, _))| (k, (v, seen)))
          .collect();
        prop_assert_eq!(got, want);
      }
    }
    prop_assert_eq!(
      t.len(),
      m.map.len(),
      "len counts stored entries, expired included"
    );
  }
  Ok(())
}

proptest! {
  #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

  #[test]
  fn dashmap_engine_matches_model(ops in proptest::collection::vec(op(), 1..120), shards in prop_oneof![Just(1usize), Just(4)]) {
    run(EngineKind::DashMap, shards, ops)?;
  }

  #[test]
  fn wheel_engine_matches_model(ops in proptest::collection::vec(op(), 1..120), shards in prop_oneof![Just(1usize), Just(4)]) {
    run(EngineKind::Wheel, shards, ops)?;
  }
}
