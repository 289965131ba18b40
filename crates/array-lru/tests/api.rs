//! Unit tests of every public method, on both forms where it makes sense.

use core::hash::{BuildHasherDefault, Hasher};
use core::mem::{align_of, size_of};

use lrukit_array_lru::{bytes_per_entry, ArrayLru, Entry, FixedState, Insert};
#[cfg(feature = "alloc")]
use lrukit_array_lru::{CapacityError, HeapLru};

fn order<K: Clone, V: Clone, I: IntoIterator<Item = (K, V)>>(it: I) -> Vec<(K, V)> {
  it.into_iter().collect()
}

fn mru_keys<St: lrukit_array_lru::Storage<u32, u32>, S>(
  m: &lrukit_array_lru::Lru<u32, u32, St, S>,
) -> Vec<u32> {
  m.keys().copied().collect()
}

// ---------------------------------------------------------------------------
// Sizes (the formula in the crate docs)
// ---------------------------------------------------------------------------

/// A zero-sized hasher, to show the formula without the hasher's 8 bytes.
#[derive(Default)]
struct NopHasher(u64);
impl Hasher for NopHasher {
  fn finish(&self) -> u64 {
    self.0
  }
  fn write(&mut self, bytes: &[u8]) {
    for &b in bytes {
      self.0 = (self.0 ^ b as u64).wrapping_mul(0x100000001b3);
    }
  }
}
type Zst = BuildHasherDefault<NopHasher>;

const fn round_up(n: usize, a: usize) -> usize {
  n.div_ceil(a) * a
}

#[test]
fn size_of_configurations() {
  assert_eq!(size_of::<FixedState>(), 8);
  // CAP * (K + V + 2 I + 2 I) + 4 I + size_of S, padded to the alignment.
  assert_eq!(size_of::<ArrayLru<u8, u8, 255, u8>>(), 1544); // 1530 + 4 + 8 = 1542 -> 1544
  assert_eq!(align_of::<ArrayLru<u8, u8, 255, u8>>(), 8);
  assert_eq!(size_of::<ArrayLru<u8, u8, 255, u8, Zst>>(), 1534); // no hasher state, align 1
  assert_eq!(align_of::<ArrayLru<u8, u8, 255, u8, Zst>>(), 1);
  assert_eq!(size_of::<ArrayLru<u64, u64, 1024, u16>>(), 24592); // 1024 * 24 + 8 + 8
  assert_eq!(size_of::<ArrayLru<u32, u32, 100, u32>>(), 2424); // 100 * 24 + 16 + 8
  assert_eq!(size_of::<ArrayLru<u32, u32, 100>>(), 2424); // I defaults to u32
  assert_eq!(size_of::<ArrayLru<u16, u16, 10_000, u16>>(), 120_016);
  assert_eq!(size_of::<ArrayLru<u8, u8, 0, u8>>(), 16); // header 4 + hasher 8, padded
  macro_rules! formula {
    ($k:ty, $v:ty, $cap:expr, $i:ty) => {{
      let raw =
        $cap * bytes_per_entry::<$k, $v, $i>() + 4 * size_of::<$i>() + size_of::<FixedState>();
      assert_eq!(
        size_of::<ArrayLru<$k, $v, $cap, $i>>(),
        round_up(raw, align_of::<ArrayLru<$k, $v, $cap, $i>>())
      );
    }};
  }
  formula!(u8, u8, 255, u8);
  formula!(u64, u64, 1024, u16);
  formula!(u32, u32, 100, u32);
  formula!(u64, [u8; 3], 77, usize);
  formula!((), (), 9, u8);
  assert_eq!(bytes_per_entry::<u64, u64, u32>(), 32);
  let m = ArrayLru::<u8, u8, 255, u8>::new();
  assert_eq!(m.memory_bytes(), 1544);
}

#[cfg(feature = "alloc")]
#[test]
fn heap_memory_bytes() {
  let m = HeapLru::<u64, u64, u32>::with_capacity(1000);
  assert_eq!(
    m.memory_bytes(),
    size_of::<HeapLru<u64, u64, u32>>() + 1000 * 32
  );
}

// ---------------------------------------------------------------------------
// Capacity 0, 1, 255
// ---------------------------------------------------------------------------

#[test]
fn cap_zero_rejects_everything() {
  let mut m = ArrayLru::<u32, String, 0, u8>::new();
  assert_eq!(m.cap(), 0);
  assert!(m.is_full() && m.is_empty());
  assert_eq!(
    m.insert(1, "a".into()),
    Some(Insert::Rejected {
      key: 1,
      value: "a".into()
    })
  );
  assert_eq!(m.len(), 0);
  assert_eq!(m.get(&1), None);
  assert_eq!(m.peek(&1), None);
  assert!(!m.contains(&1));
  assert_eq!(m.remove(&1), None);
  assert_eq!(m.pop_lru(), None);
  assert_eq!(m.pop_mru(), None);
  assert_eq!(m.peek_lru(), None);
  assert!(!m.promote(&1) && !m.demote(&1));
  assert_eq!(m.iter().count(), 0);
  assert_eq!(m.iter_key_order().count(), 0);
  match m.entry(5) {
    Entry::Occupied(_) => panic!("occupied in an empty map"),
    Entry::Vacant(v) => {
      assert_eq!(*v.key(), 5);
      assert_eq!(v.try_insert("x".into()).unwrap_err(), (5, "x".to_string()));
    }
  }
  m.extend([(1, "a".to_string())]);
  m.clear();
  assert!(m.is_empty());
  m.check_invariants();
}

#[test]
#[should_panic(expected = "capacity 0")]
fn cap_zero_vacant_insert_panics() {
  let mut m = ArrayLru::<u32, u32, 0, u8>::new();
  m.entry(1).or_insert(3);
}

#[cfg(feature = "alloc")]
#[test]
fn heap_cap_zero() {
  let mut m = HeapLru::<u32, u32>::with_capacity(0);
  assert_eq!(m.insert(1, 2), Some(Insert::Rejected { key: 1, value: 2 }));
  assert!(m.is_empty());
  m.grow(1);
  assert_eq!(m.insert(1, 2), None);
  assert_eq!(m.get(&1), Some(&2));
}

#[test]
fn cap_one() {
  let mut m = ArrayLru::<u32, u32, 1, u8>::new();
  assert_eq!(m.insert(1, 10), None);
  assert!(m.is_full());
  assert_eq!(
    m.insert(1, 11),
    Some(Insert::Replaced { key: 1, value: 10 })
  );
  assert_eq!(m.insert(2, 20), Some(Insert::Evicted { key: 1, value: 11 }));
  assert_eq!(m.peek_lru(), Some((&2, &20)));
  assert_eq!(m.peek_mru(), Some((&2, &20)));
  assert_eq!(m.pop_lru(), Some((2, 20)));
  assert!(m.is_empty());
  assert_eq!(m.insert(3, 30), None);
  assert_eq!(m.pop_mru(), Some((3, 30)));
  m.check_invariants();
}

#[test]
fn cap_255_u8_index() {
  let mut m = ArrayLru::<u8, u32, 255, u8>::new();
  for k in 0..255u8 {
    assert_eq!(m.insert(k, k as u32), None);
  }
  assert!(m.is_full());
  assert_eq!(m.len(), 255);
  m.check_invariants();
  // Key 255 evicts the LRU entry, key 0.
  assert_eq!(
    m.insert(255, 255),
    Some(Insert::Evicted { key: 0, value: 0 })
  );
  assert_eq!(m.len(), 255);
  for k in 1..=255u8 {
    assert_eq!(m.peek(&k), Some(&(k as u32)));
  }
  for k in (1..=255u8).rev() {
    assert_eq!(m.remove(&k), Some(k as u32));
  }
  assert!(m.is_empty());
  m.check_invariants();
}

#[cfg(feature = "alloc")]
#[test]
fn capacity_errors() {
  let e = HeapLru::<u8, u8, u8>::try_with_capacity(256).unwrap_err();
  assert_eq!((e.requested(), e.max()), (256, 255));
  assert!(e.to_string().contains("256"));
  assert!(HeapLru::<u8, u8, u8>::try_with_capacity(255).is_ok());
  assert!(HeapLru::<u8, u8, u16>::try_with_capacity(65_535).is_ok());
  assert!(HeapLru::<u8, u8, u16>::try_with_capacity(65_536).is_err());
  let mut m = HeapLru::<u8, u8, u8>::with_capacity(10);
  assert!(matches!(m.try_grow(300), Err(CapacityError { .. })));
  assert_eq!(m.cap(), 10);
  m.grow(255);
  assert_eq!(m.cap(), 255);
  let r = std::panic::catch_unwind(|| HeapLru::<u8, u8, u8>::with_capacity(1000));
  assert!(r.is_err());
}

#[cfg(feature = "alloc")]
#[test]
fn capacity_whose_byte_size_overflows_is_an_error_not_an_abort() {
  // 48 bytes per entry: usize::MAX / 16 entries overflow usize, and
  // isize::MAX / 48 + 1 entries overflow isize (Layout's limit).
  assert_eq!(bytes_per_entry::<u64, u64, usize>(), 48);
  let max = isize::MAX as usize / 48;
  for cap in [usize::MAX / 16, max + 1, usize::MAX] {
    assert_eq!(HeapLru::<u64, u64, usize>::heap_bytes_for(cap), None);
    let e = HeapLru::<u64, u64, usize>::try_with_capacity(cap).unwrap_err();
    assert_eq!((e.requested(), e.max()), (cap, max));
    assert_eq!(e.alloc_failure(), None, "not an allocation failure");
    let mut m = HeapLru::<u64, u64, usize>::with_capacity(4);
    m.insert(1, 1);
    let e = m.try_grow(cap).unwrap_err();
    assert_eq!((e.requested(), e.alloc_failure()), (cap, None));
    assert_eq!((m.cap(), m.len(), m.peek(&1)), (4, 1, Some(&1)));
  }
  let r = std::panic::catch_unwind(|| HeapLru::<u64, u64, usize>::with_capacity(max + 1));
  assert!(
    r.is_err(),
    "the infallible constructor panics (does not abort)"
  );
}

/// A capacity that fits the index type and `isize`, but not any address
/// space: the allocator must refuse it, on every 64-bit system, whatever its
/// overcommit policy. (Not under miri, whose allocator stops the program.)
#[cfg(all(feature = "alloc", target_pointer_width = "64", not(miri)))]
#[test]
fn allocation_the_system_refuses_is_an_error_not_an_abort() {
  let cap = 1usize << 55; // 34 bytes per entry: ~1.2e18 bytes, < isize::MAX
  let bytes = HeapLru::<u8, u8, usize>::heap_bytes_for(cap).unwrap();
  assert!(bytes >= cap * 34 && bytes < isize::MAX as usize);
  let e = HeapLru::<u8, u8, usize>::try_with_capacity(cap).unwrap_err();
  assert_eq!(e.requested(), cap);
  assert_eq!(e.alloc_failure().map(|l| l.size()), Some(bytes));
  assert!(e.to_string().contains(&bytes.to_string()), "{e}");
  // try_grow: the same failure leaves the map as it was.
  let mut m = HeapLru::<u8, u8, usize>::with_capacity(3);
  m.insert(1, 10);
  m.insert(2, 20);
  let e = m.try_grow(cap).unwrap_err();
  assert_eq!(e.alloc_failure().map(|l| l.size()), Some(bytes));
  assert_eq!(m.cap(), 3);
  assert_eq!(
    m.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
    [(2, 20), (1, 10)]
  );
  m.check_invariants();
}

#[cfg(feature = "alloc")]
#[test]
#[should_panic(expected = "exceeds the maximum 255")]
fn heap_with_capacity_too_large_panics() {
  let _ = HeapLru::<u8, u8, u8>::with_capacity(256);
}

// ---------------------------------------------------------------------------
// Semantics (promotion, eviction order, update in place, bounds, popping)
// ---------------------------------------------------------------------------

#[test]
fn get_promotes_peek_does_not() {
  let mut m = ArrayLru::<u32, u32, 3, u8>::new();
  m.extend([(1, 1), (2, 2), (3, 3)]);
  assert_eq!(mru_keys(&m), [3, 2, 1]);
  assert_eq!(m.peek(&1), Some(&1));
  assert_eq!(m.peek_key_value(&1), Some((&1, &1)));
  *m.peek_mut(&1).unwrap() += 10;
  assert!(m.contains(&1));
  assert_eq!(mru_keys(&m), [3, 2, 1]);
  assert_eq!(m.get(&1), Some(&11));
  assert_eq!(mru_keys(&m), [1, 3, 2]);
  *m.get_mut(&2).unwrap() += 1;
  assert_eq!(mru_keys(&m), [2, 1, 3]);
  assert_eq!(m.get_key_value(&3), Some((&3, &3)));
  assert_eq!(mru_keys(&m), [3, 2, 1]);
  assert!(m.demote(&3));
  assert_eq!(mru_keys(&m), [2, 1, 3]);
  assert!(m.promote(&3));
  assert_eq!(mru_keys(&m), [3, 2, 1]);
  assert!(!m.promote(&9) && !m.demote(&9));
  // get of the MRU entry: no change.
  assert_eq!(m.get(&3), Some(&3));
  assert_eq!(mru_keys(&m), [3, 2, 1]);
  assert_eq!(m.get(&9), None);
  m.check_invariants();
}

#[test]
fn eviction_order_is_lru() {
  let mut m = ArrayLru::<u32, u32, 3, u8>::new();
  m.extend([(1, 1), (2, 2), (3, 3)]);
  m.get(&1);
  assert_eq!(m.insert(4, 4), Some(Insert::Evicted { key: 2, value: 2 }));
  assert_eq!(m.insert(5, 5), Some(Insert::Evicted { key: 3, value: 3 }));
  assert_eq!(m.insert(6, 6), Some(Insert::Evicted { key: 1, value: 1 }));
  assert_eq!(mru_keys(&m), [6, 5, 4]);
}

/// Inserting an existing key updates its entry in place: no duplicate, the
/// old value is returned and the entry becomes most recently used.
#[test]
fn replace_in_place_no_duplicate() {
  let mut m = ArrayLru::<u32, u32, 4, u8>::new();
  m.extend([(1, 1), (2, 2), (3, 3)]);
  assert_eq!(
    m.insert(1, 100),
    Some(Insert::Replaced { key: 1, value: 1 })
  );
  assert_eq!(m.len(), 3);
  assert_eq!(mru_keys(&m), [1, 3, 2]);
  assert_eq!(m.pop_lru(), Some((2, 2)));
  assert_eq!(m.pop_lru(), Some((3, 3)));
  assert_eq!(m.pop_lru(), Some((1, 100)));
  assert_eq!(m.pop_lru(), None);
}

/// `len` never exceeds `cap`: a full map evicts before it stores.
#[test]
fn len_never_exceeds_cap() {
  let mut m = ArrayLru::<u32, u32, 5, u8>::new();
  for k in 0..100 {
    m.insert(k, k);
    assert!(m.len() <= 5);
  }
  assert_eq!(m.len(), 5);
  assert_eq!(mru_keys(&m), [99, 98, 97, 96, 95]);
}

/// Popping the last entry leaves a valid empty map that works as before.
#[test]
fn pop_last_then_reuse() {
  let mut m = ArrayLru::<u32, u32, 2, u8>::new();
  m.insert(1, 1);
  assert_eq!(m.pop_mru(), Some((1, 1)));
  assert!(m.is_empty() && m.peek_lru().is_none() && m.peek_mru().is_none());
  m.check_invariants();
  m.insert(2, 2);
  m.insert(3, 3);
  assert_eq!(mru_keys(&m), [3, 2]);
  assert_eq!(m.pop_lru(), Some((2, 2)));
  assert_eq!(m.pop_lru(), Some((3, 3)));
  assert_eq!(m.iter().count(), 0);
  m.insert(4, 4);
  assert_eq!(mru_keys(&m), [4]);
  m.check_invariants();
}

/// `pop_lru` returns the key together with the value.
#[test]
fn pop_lru_returns_key() {
  let mut m = ArrayLru::<&str, u32, 2, u8>::new();
  m.insert("a", 1);
  m.insert("b", 2);
  assert_eq!(m.pop_lru(), Some(("a", 1)));
}

#[test]
fn remove_and_remove_entry() {
  let mut m = ArrayLru::<String, u32, 4, u8>::new();
  m.insert("a".into(), 1);
  m.insert("b".into(), 2);
  assert_eq!(m.remove("a"), Some(1)); // borrowed lookup with &str
  assert_eq!(m.remove("a"), None);
  assert_eq!(m.remove_entry("b"), Some(("b".to_string(), 2)));
  assert!(m.is_empty());
}

#[test]
fn clear_then_reuse() {
  let mut m = ArrayLru::<u32, u32, 4, u8>::new();
  m.extend((0..4).map(|k| (k, k)));
  m.clear();
  assert!(m.is_empty());
  assert_eq!(m.get(&1), None);
  m.check_invariants();
  m.extend((10..16).map(|k| (k, k)));
  assert_eq!(mru_keys(&m), [15, 14, 13, 12]);
  m.check_invariants();
}

#[test]
fn retain_keeps_order() {
  let mut m = ArrayLru::<u32, u32, 8, u8>::new();
  m.extend((0..8).map(|k| (k, k)));
  m.retain(|k, v| {
    *v += 100;
    k % 2 == 0
  });
  assert_eq!(
    order(m.iter().map(|(k, v)| (*k, *v))),
    [(6, 106), (4, 104), (2, 102), (0, 100)]
  );
  m.check_invariants();
}

// ---------------------------------------------------------------------------
// Entry API
// ---------------------------------------------------------------------------

#[test]
fn entry_api() {
  let mut m = ArrayLru::<u32, u32, 3, u8>::new();
  *m.entry(1).or_insert(10) += 1;
  assert_eq!(m.peek(&1), Some(&11));
  assert_eq!(*m.entry(2).or_insert_with(|| 20), 20);
  assert_eq!(*m.entry(3).or_default(), 0);
  assert_eq!(*m.entry(3).or_insert_with_key(|k| *k * 100), 0);
  assert_eq!(mru_keys(&m), [3, 2, 1]);
  // Occupied access promotes.
  assert_eq!(*m.entry(1).key(), 1);
  assert_eq!(mru_keys(&m), [1, 3, 2]);
  m.entry(2).and_modify(|v| *v += 5).or_insert(0);
  assert_eq!(m.peek(&2), Some(&25));
  assert_eq!(mru_keys(&m), [2, 1, 3]);
  m.entry(9).and_modify(|_| panic!("vacant")); // no-op on vacant
  assert_eq!(m.len(), 3);
  match m.entry(1) {
    Entry::Occupied(mut o) => {
      assert_eq!(*o.key(), 1);
      assert_eq!(*o.get(), 11);
      *o.get_mut() += 1;
      assert_eq!(o.insert(50), 12);
      assert_eq!(*o.into_mut(), 50);
    }
    Entry::Vacant(_) => unreachable!(),
  }
  match m.entry(1) {
    Entry::Occupied(o) => assert_eq!(o.remove(), 50),
    Entry::Vacant(_) => unreachable!(),
  }
  match m.entry(2) {
    Entry::Occupied(o) => assert_eq!(o.remove_entry(), (2, 25)),
    Entry::Vacant(_) => unreachable!(),
  }
  assert_eq!(mru_keys(&m), [3]);
  match m.entry(4) {
    Entry::Vacant(v) => {
      assert_eq!(*v.key(), 4);
      let (r, evicted) = v.insert(40);
      assert_eq!((*r, evicted), (40, None));
    }
    Entry::Occupied(_) => unreachable!(),
  }
  match m.entry(5) {
    Entry::Vacant(v) => assert_eq!(v.into_key(), 5),
    Entry::Occupied(_) => unreachable!(),
  }
  m.insert(6, 60);
  assert!(m.is_full());
  // Vacant insert into a full map evicts the LRU entry (3).
  match m.entry(7) {
    Entry::Vacant(v) => {
      let (r, evicted) = v.insert(70);
      *r += 1;
      assert_eq!(evicted, Some((3, 0)));
    }
    Entry::Occupied(_) => unreachable!(),
  }
  assert_eq!(
    order(m.iter().map(|(k, v)| (*k, *v))),
    [(7, 71), (6, 60), (4, 40)]
  );
  match m.entry(6) {
    Entry::Occupied(o) => assert_eq!(o.into_key(), 6),
    Entry::Vacant(_) => unreachable!(),
  }
  assert!(format!("{:?}", m.entry(7)).contains("Occupied"));
  assert!(format!("{:?}", m.entry(8)).contains("Vacant"));
  m.check_invariants();
}

// ---------------------------------------------------------------------------
// Iteration
// ---------------------------------------------------------------------------

#[test]
fn iterators() {
  let mut m = ArrayLru::<u32, u32, 5, u8>::new();
  m.extend([(3, 30), (1, 10), (4, 40), (5, 50), (2, 20)]);
  let fwd: Vec<_> = m.iter().map(|(k, _)| *k).collect();
  assert_eq!(fwd, [2, 5, 4, 1, 3]);
  let back: Vec<_> = m.iter().rev().map(|(k, _)| *k).collect();
  assert_eq!(back, [3, 1, 4, 5, 2]);
  // Meet in the middle.
  let mut it = m.iter();
  assert_eq!(it.len(), 5);
  assert_eq!(it.next().map(|e| *e.0), Some(2));
  assert_eq!(it.next_back().map(|e| *e.0), Some(3));
  assert_eq!(it.next().map(|e| *e.0), Some(5));
  assert_eq!(it.next_back().map(|e| *e.0), Some(1));
  assert_eq!(it.len(), 1);
  assert_eq!(it.next().map(|e| *e.0), Some(4));
  assert_eq!(it.next(), None);
  assert_eq!(it.next_back(), None);
  // iter_mut / values_mut / keys / values / IntoIterator for references.
  for (_, v) in m.iter_mut() {
    *v += 1;
  }
  for v in m.values_mut() {
    *v += 1;
  }
  for (_, v) in &mut m {
    *v += 1;
  }
  let mut im = m.iter_mut();
  assert_eq!(im.len(), 5);
  *im.next_back().unwrap().1 += 1000;
  assert_eq!(m.keys().copied().collect::<Vec<_>>(), [2, 5, 4, 1, 3]);
  assert_eq!(
    m.values().copied().collect::<Vec<_>>(),
    [23, 53, 43, 13, 1033]
  );
  assert_eq!(m.values().next_back(), Some(&1033));
  assert_eq!((&m).into_iter().count(), 5);
  // Key order, both directions.
  let ko: Vec<_> = m.iter_key_order().map(|(k, _)| *k).collect();
  assert_eq!(ko, [1, 2, 3, 4, 5]);
  let kor: Vec<_> = m.iter_key_order().rev().map(|(k, _)| *k).collect();
  assert_eq!(kor, [5, 4, 3, 2, 1]);
  let mut ki = m.iter_key_order();
  assert_eq!(ki.len(), 5);
  assert_eq!(ki.next().map(|e| *e.0), Some(1));
  assert_eq!(ki.next_back().map(|e| *e.0), Some(5));
  assert_eq!(ki.next().map(|e| *e.0), Some(2));
  assert_eq!(ki.next_back().map(|e| *e.0), Some(4));
  assert_eq!(ki.next().map(|e| *e.0), Some(3));
  assert_eq!(ki.next(), None);
  assert_eq!(ki.next_back(), None);
  // Iteration does not reorder.
  assert_eq!(m.keys().copied().collect::<Vec<_>>(), [2, 5, 4, 1, 3]);
  // By value, MRU first, and reversed.
  let owned: Vec<_> = m.clone().into_iter().map(|(k, _)| k).collect();
  assert_eq!(owned, [2, 5, 4, 1, 3]);
  let owned_rev: Vec<_> = m.clone().into_iter().rev().map(|(k, _)| k).collect();
  assert_eq!(owned_rev, [3, 1, 4, 5, 2]);
  let mut it = m.into_iter();
  assert_eq!(it.len(), 5);
  assert_eq!(it.next(), Some((2, 23)));
  assert_eq!(it.next_back(), Some((3, 1033)));
  assert_eq!(it.len(), 3);
}

// ---------------------------------------------------------------------------
// Traits
// ---------------------------------------------------------------------------

#[test]
fn debug_clone_default_extend() {
  let mut m: ArrayLru<u32, &str, 4, u8> = Default::default();
  m.extend([(1, "a"), (2, "b")]);
  assert_eq!(format!("{m:?}"), r#"{2: "b", 1: "a"}"#);
  let c = m.clone();
  assert_eq!(format!("{c:?}"), r#"{2: "b", 1: "a"}"#);
  assert_eq!(c.cap(), 4);
  c.check_invariants();
  m.insert(3, "c");
  assert_eq!(c.len(), 2); // independent
  assert!(format!("{:?}", m.iter()).contains("\"c\""));
  let h = ArrayLru::<u32, u32, 4, u8, Zst>::with_hasher(Zst::default());
  let _: &Zst = h.hasher();
}

#[test]
fn custom_hasher_and_index_types() {
  let mut a = ArrayLru::<u64, u64, 64, u8, Zst>::with_hasher(Default::default());
  let mut b = ArrayLru::<u64, u64, 64, u16>::new();
  let mut c = ArrayLru::<u64, u64, 64, u32>::new();
  let mut d = ArrayLru::<u64, u64, 64, usize>::new();
  for k in 0..200u64 {
    a.insert(k, k);
    b.insert(k, k);
    c.insert(k, k);
    d.insert(k, k);
  }
  let want: Vec<u64> = (136..200).rev().collect();
  assert_eq!(a.keys().copied().collect::<Vec<_>>(), want);
  assert_eq!(b.keys().copied().collect::<Vec<_>>(), want);
  assert_eq!(c.keys().copied().collect::<Vec<_>>(), want);
  assert_eq!(d.keys().copied().collect::<Vec<_>>(), want);
  a.check_invariants();
  d.check_invariants();
}

// ---------------------------------------------------------------------------
// Heap form
// ---------------------------------------------------------------------------

#[cfg(feature = "alloc")]
#[test]
fn heap_basic_and_grow() {
  let mut m = HeapLru::<u32, u32>::with_capacity(4);
  assert_eq!(m.cap(), 4);
  m.extend((0..4).map(|k| (k, k * 10)));
  m.get(&1);
  m.remove(&2);
  assert_eq!(mru_keys(&m), [1, 3, 0]);
  m.grow(2); // no-op
  assert_eq!(m.cap(), 4);
  m.grow(8);
  assert_eq!(m.cap(), 8);
  assert_eq!(mru_keys(&m), [1, 3, 0]);
  m.check_invariants();
  for k in 10..15 {
    assert_eq!(m.insert(k, k), None);
  }
  assert!(m.is_full());
  assert_eq!(m.insert(99, 99), Some(Insert::Evicted { key: 0, value: 0 }));
  assert_eq!(m.peek(&1), Some(&10));
  // Doubling growth as the binding's unbounded mode does.
  let mut u = HeapLru::<u32, u32>::with_capacity(1);
  for k in 0..1000 {
    if u.is_full() {
      let c = u.cap();
      u.grow(c * 2);
    }
    assert_eq!(u.insert(k, k), None);
  }
  assert_eq!(u.len(), 1000);
  assert_eq!(u.cap(), 1024);
  assert_eq!(u.peek_lru(), Some((&0, &0)));
  u.check_invariants();
  let c = u.clone();
  assert_eq!(c.cap(), 1024);
  assert!(c.iter().eq(u.iter()));
  // Empty grow.
  let mut e = HeapLru::<u32, u32>::with_capacity(0);
  e.grow(3);
  e.check_invariants();
  assert_eq!(e.insert(1, 1), None);
}

/// The JS binding's usage: exactly these names and shapes.
#[cfg(feature = "alloc")]
#[test]
fn binding_surface() {
  #[derive(Hash, PartialEq, Eq, Clone, Debug)]
  enum Key {
    Int(i64),
    Str(String),
  }
  let mut m: HeapLru<Key, Vec<u8>, u32> = HeapLru::with_capacity(2);
  let ins: Option<Insert<Key, Vec<u8>>> = m.insert(Key::Int(1), vec![1]);
  assert!(ins.is_none());
  m.insert(Key::Str("a".into()), vec![2]);
  assert!(m.is_full());
  assert_eq!(m.cap(), 2);
  assert!(m.contains(&Key::Int(1)));
  m.get_mut(&Key::Int(1)).unwrap().push(9);
  assert_eq!(m.peek(&Key::Int(1)), Some(&vec![1, 9]));
  m.peek_mut(&Key::Int(1)).unwrap().clear();
  assert_eq!(
    m.peek_lru().map(|(k, _)| k.clone()),
    Some(Key::Str("a".into()))
  );
  match m.insert(Key::Int(2), vec![3]) {
    Some(Insert::Evicted { key, value }) => {
      assert_eq!((key, value), (Key::Str("a".into()), vec![2]))
    }
    other => panic!("{other:?}"),
  }
  assert_eq!(m.iter().count(), 2);
  assert_eq!(m.remove(&Key::Int(2)), Some(vec![3]));
  assert_eq!(m.pop_lru(), Some((Key::Int(1), vec![])));
  m.grow(4);
  m.insert(Key::Int(5), vec![]);
  m.clear();
  assert_eq!(m.len(), 0);
}

// ---------------------------------------------------------------------------
// Boxed inline form
// ---------------------------------------------------------------------------

#[cfg(feature = "alloc")]
#[test]
fn new_boxed_small() {
  let mut b = ArrayLru::<u64, String, 8, u8>::new_boxed();
  for k in 0..20u64 {
    b.insert(k, k.to_string());
  }
  assert_eq!(b.len(), 8);
  assert_eq!(b.peek_lru(), Some((&12, &"12".to_string())));
  b.check_invariants();
  let c = b.clone_boxed();
  assert!(c.iter().eq(b.iter()));
}

/// 1 << 20 entries of u64 -> u64 with a u32 index is 32 MiB: building it on
/// the 2 MiB test-thread stack would overflow; `new_boxed` must not.
#[cfg(feature = "alloc")]
#[test]
#[cfg_attr(miri, ignore = "32 MiB initialisation is too slow under miri")]
fn new_boxed_huge_does_not_touch_the_stack() {
  type Big = ArrayLru<u64, u64, { 1 << 20 }, u32>;
  assert_eq!(size_of::<Big>(), (1 << 20) * 32 + 16 + 8);
  let handle = std::thread::Builder::new()
    .stack_size(256 * 1024)
    .spawn(|| {
      let mut b = Big::new_boxed();
      for k in 0..(1u64 << 20) + 10 {
        b.insert(k, k);
      }
      assert_eq!(b.len(), 1 << 20);
      assert_eq!(b.peek_lru(), Some((&10, &10)));
      assert_eq!(b.get(&500_000), Some(&500_000));
      b.clear();
      assert!(b.is_empty());
      b.insert(1, 1);
      let c = b.clone_boxed();
      assert_eq!(c.len(), 1);
    })
    .unwrap();
  handle.join().unwrap();
}

#[test]
fn auto_traits() {
  fn send_sync<T: Send + Sync>() {}
  send_sync::<ArrayLru<u64, String, 4, u8>>();
  send_sync::<lrukit_array_lru::Iter<'static, u64, String, u8>>();
  send_sync::<lrukit_array_lru::IterMut<'static, u64, String, u8>>();
  #[cfg(feature = "alloc")]
  {
    send_sync::<HeapLru<u64, String>>();
    send_sync::<
      lrukit_array_lru::IntoIter<u64, String, lrukit_array_lru::HeapStorage<u64, String, u32>>,
    >();
  }
}
