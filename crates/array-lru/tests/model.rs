//! Model-based property tests: random operation sequences run against both
//! the map and a `Vec<(K, V)>` kept in MRU order; after every operation the
//! results, `len`, `iter()`, `iter().rev()`, `iter_key_order()` (both ways)
//! and the internal invariants are compared.
//!
//! Small key ranges make replacement, eviction and hash collisions common;
//! three hashers are used: the default `FixedState`, a hasher that sends every
//! key to the last bucket (one cluster that wraps around the table), and one
//! with only three distinct home buckets.
//!
//! `PROPTEST_CASES` overrides the number of cases (default 64 per test).

use core::hash::{BuildHasher, Hasher};

use lrukit_array_lru::{ArrayLru, Entry, FixedState, Insert, Lru, Storage};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Mode {
  Fixed,
  /// Every key hashes to `u64::MAX` (home = last bucket).
  AllLast,
  /// Three distinct home buckets.
  Three,
}

#[derive(Clone, Debug)]
struct TestHash(Mode);

struct TestHasher {
  mode: Mode,
  inner: <FixedState as BuildHasher>::Hasher,
  acc: u64,
}

impl Hasher for TestHasher {
  fn finish(&self) -> u64 {
    match self.mode {
      Mode::Fixed => self.inner.finish(),
      Mode::AllLast => u64::MAX,
      Mode::Three => (self.acc % 3) * (u64::MAX / 3),
    }
  }
  fn write(&mut self, bytes: &[u8]) {
    self.inner.write(bytes);
    for &b in bytes {
      self.acc = self.acc.wrapping_mul(31).wrapping_add(b as u64);
    }
  }
  fn write_u8(&mut self, i: u8) {
    self.inner.write_u8(i);
    self.acc = self.acc.wrapping_mul(31).wrapping_add(i as u64);
  }
}

impl BuildHasher for TestHash {
  type Hasher = TestHasher;
  fn build_hasher(&self) -> TestHasher {
    TestHasher {
      mode: self.0,
      inner: FixedState::default().build_hasher(),
      acc: 0,
    }
  }
}

#[derive(Clone, Debug)]
enum Op {
  Insert(u8, u32),
  Fill(u8, u8),
  Get(u8),
  GetMut(u8),
  GetKeyValue(u8),
  Peek(u8),
  PeekMut(u8),
  Contains(u8),
  Remove(u8),
  RemoveEntry(u8),
  PopLru,
  PopMru,
  PeekLru,
  PeekMru,
  Promote(u8),
  Demote(u8),
  EntryOrInsert(u8, u32),
  EntryAndModify(u8),
  EntryRemove(u8),
  EntryVacantInsert(u8, u32),
  Retain(u8),
  Clear,
  Grow(u8),
  CloneMap,
}

fn op_strategy(max_key: u8) -> impl Strategy<Value = Op> {
  let k = move || 0..=max_key;
  prop_oneof![
    8 => (k(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
    1 => (k(), 0..=max_key).prop_map(|(k, n)| Op::Fill(k, n)),
    4 => k().prop_map(Op::Get),
    2 => k().prop_map(Op::GetMut),
    1 => k().prop_map(Op::GetKeyValue),
    2 => k().prop_map(Op::Peek),
    1 => k().prop_map(Op::PeekMut),
    1 => k().prop_map(Op::Contains),
    3 => k().prop_map(Op::Remove),
    1 => k().prop_map(Op::RemoveEntry),
    2 => Just(Op::PopLru),
    1 => Just(Op::PopMru),
    1 => Just(Op::PeekLru),
    1 => Just(Op::PeekMru),
    1 => k().prop_map(Op::Promote),
    1 => k().prop_map(Op::Demote),
    2 => (k(), any::<u32>()).prop_map(|(k, v)| Op::EntryOrInsert(k, v)),
    1 => k().prop_map(Op::EntryAndModify),
    1 => k().prop_map(Op::EntryRemove),
    1 => (k(), any::<u32>()).prop_map(|(k, v)| Op::EntryVacantInsert(k, v)),
    1 => (1..4u8).prop_map(Op::Retain),
    1 => Just(Op::Clear),
    1 => (0..8u8).prop_map(Op::Grow),
    1 => Just(Op::CloneMap),
  ]
}

fn mode_strategy() -> impl Strategy<Value = Mode> {
  prop_oneof![Just(Mode::Fixed), Just(Mode::AllLast), Just(Mode::Three)]
}

/// Reference model: entries in MRU order (index 0 is most recently used).
struct Model {
  cap: usize,
  v: Vec<(u8, u32)>,
}

impl Model {
  fn pos(&self, k: u8) -> Option<usize> {
    self.v.iter().position(|e| e.0 == k)
  }
  fn touch(&mut self, i: usize) {
    let e = self.v.remove(i);
    self.v.insert(0, e);
  }
  fn insert(&mut self, k: u8, val: u32) -> Option<Insert<u8, u32>> {
    if self.cap == 0 {
      return Some(Insert::Rejected { key: k, value: val });
    }
    if let Some(i) = self.pos(k) {
      let old = self.v.remove(i).1;
      self.v.insert(0, (k, val));
      return Some(Insert::Replaced { key: k, value: old });
    }
    let ev = if self.v.len() == self.cap {
      let (key, value) = self.v.pop().unwrap();
      Some(Insert::Evicted { key, value })
    } else {
      None
    };
    self.v.insert(0, (k, val));
    ev
  }
}

type Grow<St, S> = fn(&mut Lru<u8, u32, St, S>, usize) -> bool;

fn check<St: Storage<u8, u32>, S: BuildHasher>(
  m: &Lru<u8, u32, St, S>,
  model: &Model,
) -> Result<(), TestCaseError> {
  m.check_invariants();
  prop_assert_eq!(m.len(), model.v.len());
  prop_assert_eq!(m.cap(), model.cap);
  prop_assert_eq!(m.is_full(), model.v.len() == model.cap);
  prop_assert_eq!(m.is_empty(), model.v.is_empty());
  let fwd: Vec<(u8, u32)> = m.iter().map(|(k, v)| (*k, *v)).collect();
  prop_assert_eq!(&fwd, &model.v);
  let back: Vec<(u8, u32)> = m.iter().rev().map(|(k, v)| (*k, *v)).collect();
  let mut want_back = model.v.clone();
  want_back.reverse();
  prop_assert_eq!(back, want_back);
  let mut sorted = model.v.clone();
  sorted.sort();
  let ko: Vec<(u8, u32)> = m.iter_key_order().map(|(k, v)| (*k, *v)).collect();
  prop_assert_eq!(&ko, &sorted);
  let kor: Vec<(u8, u32)> = m.iter_key_order().rev().map(|(k, v)| (*k, *v)).collect();
  sorted.reverse();
  prop_assert_eq!(kor, sorted);
  prop_assert_eq!(m.peek_lru().map(|(k, v)| (*k, *v)), model.v.last().copied());
  prop_assert_eq!(
    m.peek_mru().map(|(k, v)| (*k, *v)),
    model.v.first().copied()
  );
  Ok(())
}

fn run<St: Storage<u8, u32>, S: BuildHasher + Clone>(
  mut m: Lru<u8, u32, St, S>,
  ops: &[Op],
  grow: Grow<St, S>,
  tail: usize,
) -> Result<(), TestCaseError> {
  let mut model = Model {
    cap: m.cap(),
    v: Vec::new(),
  };
  for op in ops {
    match *op {
      Op::Insert(k, v) => prop_assert_eq!(m.insert(k, v), model.insert(k, v)),
      Op::Fill(start, n) => {
        for i in 0..n {
          let k = start.wrapping_add(i);
          prop_assert_eq!(m.insert(k, i as u32), model.insert(k, i as u32));
        }
      }
      Op::Get(k) => {
        let want = model.pos(k).map(|i| {
          model.touch(i);
          model.v[0].1
        });
        prop_assert_eq!(m.get(&k).copied(), want);
      }
      Op::GetMut(k) => {
        let want = model.pos(k).map(|i| {
          model.touch(i);
          model.v[0].1 = model.v[0].1.wrapping_add(1);
          model.v[0].1
        });
        prop_assert_eq!(
          m.get_mut(&k).map(|v| {
            *v = v.wrapping_add(1);
            *v
          }),
          want
        );
      }
      Op::GetKeyValue(k) => {
        let want = model.pos(k).map(|i| {
          model.touch(i);
          model.v[0]
        });
        prop_assert_eq!(m.get_key_value(&k).map(|(k, v)| (*k, *v)), want);
      }
      Op::Peek(k) => {
        let want = model.pos(k).map(|i| model.v[i].1);
        prop_assert_eq!(m.peek(&k).copied(), want);
        prop_assert_eq!(m.peek_key_value(&k).map(|(_, v)| *v), want);
      }
      Op::PeekMut(k) => {
        let want = model.pos(k).map(|i| {
          model.v[i].1 ^= 0xff;
          model.v[i].1
        });
        prop_assert_eq!(
          m.peek_mut(&k).map(|v| {
            *v ^= 0xff;
            *v
          }),
          want
        );
      }
      Op::Contains(k) => prop_assert_eq!(m.contains(&k), model.pos(k).is_some()),
      Op::Remove(k) => {
        let want = model.pos(k).map(|i| model.v.remove(i).1);
        prop_assert_eq!(m.remove(&k), want);
      }
      Op::RemoveEntry(k) => {
        let want = model.pos(k).map(|i| model.v.remove(i));
        prop_assert_eq!(m.remove_entry(&k), want);
      }
      Op::PopLru => prop_assert_eq!(m.pop_lru(), model.v.pop()),
      Op::PopMru => {
        let want = if model.v.is_empty() {
          None
        } else {
          Some(model.v.remove(0))
        };
        prop_assert_eq!(m.pop_mru(), want);
      }
      Op::PeekLru => prop_assert_eq!(m.peek_lru().map(|(k, v)| (*k, *v)), model.v.last().copied()),
      Op::PeekMru => prop_assert_eq!(
        m.peek_mru().map(|(k, v)| (*k, *v)),
        model.v.first().copied()
      ),
      Op::Promote(k) => {
        let want = model.pos(k).map(|i| model.touch(i)).is_some();
        prop_assert_eq!(m.promote(&k), want);
      }
      Op::Demote(k) => {
        let want = model
          .pos(k)
          .map(|i| {
            let e = model.v.remove(i);
            model.v.push(e);
          })
          .is_some();
        prop_assert_eq!(m.demote(&k), want);
      }
      Op::EntryOrInsert(k, v) => {
        if model.cap == 0 {
          continue;
        }
        let want = match model.pos(k) {
          Some(i) => {
            model.touch(i);
            model.v[0].1
          }
          None => {
            model.insert(k, v);
            v
          }
        };
        prop_assert_eq!(*m.entry(k).or_insert(v), want);
      }
      Op::EntryAndModify(k) => {
        if let Some(i) = model.pos(k) {
          model.touch(i);
          model.v[0].1 = model.v[0].1.wrapping_mul(3);
        }
        let e = m.entry(k).and_modify(|v| *v = v.wrapping_mul(3));
        prop_assert_eq!(matches!(e, Entry::Occupied(_)), model.pos(k).is_some());
      }
      Op::EntryRemove(k) => match m.entry(k) {
        Entry::Occupied(o) => {
          let i = model.pos(k).expect("model has key");
          let want = model.v.remove(i);
          prop_assert_eq!(*o.key(), k);
          prop_assert_eq!(o.remove_entry(), want);
        }
        Entry::Vacant(v) => {
          prop_assert!(model.pos(k).is_none());
          prop_assert_eq!(v.into_key(), k);
        }
      },
      Op::EntryVacantInsert(k, val) => match m.entry(k) {
        Entry::Occupied(mut o) => {
          let i = model.pos(k).expect("model has key");
          model.touch(i);
          let old = core::mem::replace(&mut model.v[0].1, val);
          prop_assert_eq!(o.insert(val), old);
        }
        Entry::Vacant(v) => {
          let want = model.insert(k, val);
          match v.try_insert(val) {
            Ok((r, evicted)) => {
              prop_assert_eq!(*r, val);
              let want = want.map(|w| match w {
                Insert::Evicted { key, value } => (key, value),
                other => panic!("model: {other:?}"),
              });
              prop_assert_eq!(evicted, want);
            }
            Err(pair) => {
              prop_assert_eq!(model.cap, 0);
              prop_assert_eq!(pair, (k, val));
            }
          }
        }
      },
      Op::Retain(d) => {
        model.v.retain(|e| e.0 % d != 0);
        m.retain(|k, _| k % d != 0);
      }
      Op::Clear => {
        model.v.clear();
        m.clear();
      }
      Op::Grow(extra) => {
        let new_cap = model.cap + extra as usize;
        if grow(&mut m, new_cap) {
          model.cap = model.cap.max(new_cap);
        }
      }
      Op::CloneMap => m = m.clone(),
    }
    check(&m, &model)?;
  }
  // Partially consumed owning iterators: from the front and from the back.
  let take = tail.min(model.v.len());
  let c = m.clone();
  let got: Vec<(u8, u32)> = c.into_iter().take(take).collect();
  prop_assert_eq!(&got[..], &model.v[..take]);
  let got_back: Vec<(u8, u32)> = m.into_iter().rev().take(take).collect();
  let want_back: Vec<(u8, u32)> = model.v.iter().rev().take(take).copied().collect();
  prop_assert_eq!(got_back, want_back);
  Ok(())
}

fn no_grow<St, S>(_: &mut Lru<u8, u32, St, S>, _: usize) -> bool {
  false
}

#[cfg(feature = "alloc")]
fn heap_grow<I: lrukit_array_lru::IndexType>(
  m: &mut Lru<u8, u32, lrukit_array_lru::HeapStorage<u8, u32, I>, TestHash>,
  new_cap: usize,
) -> bool {
  m.try_grow(new_cap).is_ok()
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

macro_rules! inline_test {
  ($name:ident, $cap:expr, $max_key:expr, $len:expr) => {
    proptest! {
      #![proptest_config(config())]
      #[test]
      fn $name(mode in mode_strategy(), ops in prop::collection::vec(op_strategy($max_key), 1..$len), tail in 0..20usize) {
        let m = ArrayLru::<u8, u32, $cap, u8, TestHash>::with_hasher(TestHash(mode));
        run(m, &ops, no_grow, tail)?;
      }
    }
  };
}

inline_test!(model_inline_cap0, 0, 4, 24);
inline_test!(model_inline_cap1, 1, 4, 48);
inline_test!(model_inline_cap2, 2, 5, 64);
inline_test!(model_inline_cap7, 7, 12, 96);
inline_test!(model_inline_cap16, 16, 24, 128);
inline_test!(model_inline_cap255, 255, 255, 48);

#[cfg(feature = "alloc")]
proptest! {
  #![proptest_config(config())]
  #[test]
  fn model_heap_u8(mode in mode_strategy(), cap in 0..12usize, ops in prop::collection::vec(op_strategy(20), 1..128), tail in 0..20usize) {
    let m = lrukit_array_lru::HeapLru::<u8, u32, u8, TestHash>::with_capacity_and_hasher(cap, TestHash(mode));
    run(m, &ops, heap_grow::<u8>, tail)?;
  }

  #[test]
  fn model_heap_u32(mode in mode_strategy(), cap in 0..40usize, ops in prop::collection::vec(op_strategy(60), 1..128), tail in 0..20usize) {
    let m = lrukit_array_lru::HeapLru::<u8, u32, u32, TestHash>::with_capacity_and_hasher(cap, TestHash(mode));
    run(m, &ops, heap_grow::<u32>, tail)?;
  }
}
