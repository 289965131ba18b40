//! Every key and value is dropped exactly once: `Rc` strong counts after
//! insert / replace / evict / remove / pop / clear / retain / grow / drop /
//! partially consumed `into_iter`. Also: a panicking `Hash` or destructor
//! leaves the map memory-safe.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use lrukit_array_lru::{ArrayLru, Entry, Insert};

/// A key that shares one `Rc` (to count live key copies) and hashes by id.
#[derive(Clone, Debug)]
struct K(u32, #[allow(dead_code)] Rc<()>);
impl PartialEq for K {
  fn eq(&self, o: &Self) -> bool {
    self.0 == o.0
  }
}
impl Eq for K {}
impl Hash for K {
  fn hash<H: Hasher>(&self, h: &mut H) {
    self.0.hash(h)
  }
}

fn counts(k: &Rc<()>, v: &Rc<()>) -> (usize, usize) {
  (Rc::strong_count(k) - 1, Rc::strong_count(v) - 1)
}

#[test]
fn strong_counts_inline() {
  let kt = Rc::new(());
  let vt = Rc::new(());
  let key = |i| K(i, kt.clone());
  {
    let mut m = ArrayLru::<K, Rc<()>, 3, u8>::new();
    m.insert(key(1), vt.clone());
    m.insert(key(2), vt.clone());
    assert_eq!(counts(&kt, &vt), (2, 2));
    // Replace: the passed key and the old value come back; stored key kept.
    let r = m.insert(key(1), vt.clone());
    assert!(matches!(r, Some(Insert::Replaced { .. })));
    assert_eq!(counts(&kt, &vt), (3, 3));
    drop(r);
    assert_eq!(counts(&kt, &vt), (2, 2));
    m.insert(key(3), vt.clone());
    // Evict.
    let r = m.insert(key(4), vt.clone());
    assert!(matches!(r, Some(Insert::Evicted { .. })));
    drop(r);
    assert_eq!(counts(&kt, &vt), (3, 3));
    // Remove / pop.
    assert!(m.remove(&key(4)).is_some());
    assert_eq!(counts(&kt, &vt), (2, 2));
    assert!(m.pop_lru().is_some());
    assert_eq!(counts(&kt, &vt), (1, 1));
    assert!(m.pop_mru().is_some());
    assert_eq!(counts(&kt, &vt), (0, 0));
    // Entry API.
    m.entry(key(5)).or_insert_with(|| vt.clone());
    m.entry(key(5)).or_insert_with(|| vt.clone()); // occupied: passed key dropped
    assert_eq!(counts(&kt, &vt), (1, 1));
    if let Entry::Occupied(o) = m.entry(key(5)) {
      drop(o.remove_entry());
    }
    assert_eq!(counts(&kt, &vt), (0, 0));
    // Clear.
    m.extend((0..3).map(|i| (key(i), vt.clone())));
    assert_eq!(counts(&kt, &vt), (3, 3));
    m.clear();
    assert_eq!(counts(&kt, &vt), (0, 0));
    // Retain.
    m.extend((0..3).map(|i| (key(i), vt.clone())));
    m.retain(|k, _| k.0 == 1);
    assert_eq!(counts(&kt, &vt), (1, 1));
    // Clone doubles, dropping the clone restores.
    let c = m.clone();
    assert_eq!(counts(&kt, &vt), (2, 2));
    drop(c);
    m.extend((0..3).map(|i| (key(i), vt.clone())));
    assert_eq!(counts(&kt, &vt), (3, 3));
  }
  // Drop of the map.
  assert_eq!(counts(&kt, &vt), (0, 0));
}

#[test]
fn into_iter_partially_consumed() {
  let kt = Rc::new(());
  let vt = Rc::new(());
  for take_front in 0..5 {
    for take_back in 0..(5 - take_front) {
      let mut m = ArrayLru::<K, Rc<()>, 4, u8>::new();
      m.extend((0..4).map(|i| (K(i, kt.clone()), vt.clone())));
      let mut it = m.into_iter();
      let front: Vec<_> = it.by_ref().take(take_front).collect();
      let back: Vec<_> = it.by_ref().rev().take(take_back).collect();
      assert_eq!(counts(&kt, &vt), (4, 4));
      drop(it);
      let held = front.len() + back.len();
      assert_eq!(counts(&kt, &vt), (held, held));
      drop(front);
      drop(back);
      assert_eq!(counts(&kt, &vt), (0, 0));
    }
  }
}

#[cfg(feature = "alloc")]
#[test]
fn strong_counts_heap_and_grow() {
  use lrukit_array_lru::HeapLru;
  let kt = Rc::new(());
  let vt = Rc::new(());
  {
    let mut m = HeapLru::<K, Rc<()>, u16>::with_capacity(2);
    for i in 0..10 {
      if m.is_full() {
        let c = m.cap();
        m.grow(c * 2);
      }
      m.insert(K(i, kt.clone()), vt.clone());
    }
    assert_eq!(counts(&kt, &vt), (10, 10));
    m.pop_lru();
    m.remove(&K(5, kt.clone()));
    assert_eq!(counts(&kt, &vt), (8, 8));
    let mut it = m.into_iter();
    it.next();
    assert_eq!(counts(&kt, &vt), (7, 7));
  }
  assert_eq!(counts(&kt, &vt), (0, 0));
  {
    let mut b = ArrayLru::<K, Rc<()>, 16, u8>::new_boxed();
    b.extend((0..20).map(|i| (K(i, kt.clone()), vt.clone())));
    assert_eq!(counts(&kt, &vt), (16, 16));
  }
  assert_eq!(counts(&kt, &vt), (0, 0));
}

#[test]
fn zero_sized_and_no_drop_types() {
  let mut m = ArrayLru::<(), (), 3, u8>::new();
  assert_eq!(m.insert((), ()), None);
  assert!(matches!(m.insert((), ()), Some(Insert::Replaced { .. })));
  assert_eq!(m.len(), 1);
  assert_eq!(m.pop_lru(), Some(((), ())));
  m.check_invariants();
}

// ---------------------------------------------------------------------------
// Panics in user code
// ---------------------------------------------------------------------------

thread_local! {
  static PANIC_ON: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Hashes to a constant (all keys collide) and panics when hashing the key
/// whose id is in `PANIC_ON`.
#[derive(Debug, PartialEq, Eq)]
struct Touchy(u32, Rc<()>);
impl Hash for Touchy {
  fn hash<H: Hasher>(&self, h: &mut H) {
    if PANIC_ON.with(|p| p.get()) == Some(self.0) {
      panic!("hash of {}", self.0);
    }
    0u8.hash(h);
  }
}

#[test]
fn panicking_hash_during_remove_is_memory_safe() {
  let kt = Rc::new(());
  for victim in 0..6 {
    for panicker in 0..6 {
      if victim == panicker {
        continue;
      }
      let mut m = ArrayLru::<Touchy, u32, 6, u8>::new();
      for i in 0..6 {
        m.insert(Touchy(i, kt.clone()), i);
      }
      // Removing `victim` backward-shifts the (single) cluster and hashes the
      // entries after it, including `panicker`.
      PANIC_ON.with(|p| p.set(Some(panicker)));
      let r = catch_unwind(AssertUnwindSafe(|| m.remove(&Touchy(victim, kt.clone()))));
      PANIC_ON.with(|p| p.set(None));
      // Whether or not it panicked, every entry is still iterable and
      // poppable and dropped exactly once.
      let n = m.iter().count();
      assert_eq!(n, m.len());
      match r {
        Ok(v) => assert_eq!(v, Some(victim)),
        Err(_) => assert!(n == 6 || n == 5),
      }
      for i in 0..6 {
        let _ = m.peek(&Touchy(i, kt.clone()));
      }
      m.insert(Touchy(99, kt.clone()), 99);
      while m.pop_lru().is_some() {}
      assert!(m.is_empty());
      m.insert(Touchy(7, kt.clone()), 7);
      m.check_invariants();
      drop(m);
      assert_eq!(Rc::strong_count(&kt), 1);
    }
  }
}

#[cfg(feature = "alloc")]
#[test]
fn panicking_hash_during_grow_is_memory_safe() {
  use lrukit_array_lru::HeapLru;
  let kt = Rc::new(());
  let mut m = HeapLru::<Touchy, u32, u8>::with_capacity(4);
  for i in 0..4 {
    m.insert(Touchy(i, kt.clone()), i);
  }
  PANIC_ON.with(|p| p.set(Some(2)));
  assert!(catch_unwind(AssertUnwindSafe(|| m.grow(8))).is_err());
  PANIC_ON.with(|p| p.set(None));
  assert_eq!(m.cap(), 8);
  assert_eq!(m.iter().count(), 4);
  let mut popped = 0;
  while m.pop_lru().is_some() {
    popped += 1;
  }
  assert_eq!(popped, 4);
  m.check_invariants();
  drop(m);
  assert_eq!(Rc::strong_count(&kt), 1);
}

/// A value whose destructor panics once.
struct Bomb(bool, #[allow(dead_code)] Rc<()>);
impl Drop for Bomb {
  fn drop(&mut self) {
    if self.0 {
      panic!("boom");
    }
  }
}

#[test]
fn panicking_drop_in_into_iter_drops_the_rest() {
  let t = Rc::new(());
  let mut m = ArrayLru::<u32, Bomb, 4, u8>::new();
  m.insert(1, Bomb(false, t.clone()));
  m.insert(2, Bomb(true, t.clone()));
  m.insert(3, Bomb(false, t.clone()));
  m.insert(4, Bomb(false, t.clone()));
  let mut it = m.into_iter();
  let first = it.next();
  assert!(catch_unwind(AssertUnwindSafe(move || drop(it))).is_err());
  drop(first);
  assert_eq!(Rc::strong_count(&t), 1);
}

#[test]
fn panicking_drop_of_map_drops_the_rest() {
  let t = Rc::new(());
  let kt = Rc::new(());
  let mut m = ArrayLru::<K, Bomb, 4, u8>::new();
  m.insert(K(1, kt.clone()), Bomb(false, t.clone()));
  m.insert(K(2, kt.clone()), Bomb(true, t.clone()));
  m.insert(K(3, kt.clone()), Bomb(false, t.clone()));
  assert!(catch_unwind(AssertUnwindSafe(move || drop(m))).is_err());
  // Every key and value was dropped, including those after the panic.
  assert_eq!(Rc::strong_count(&t), 1);
  assert_eq!(Rc::strong_count(&kt), 1);
}

#[test]
fn panicking_drop_in_clear_leaves_empty_map() {
  let t = Rc::new(());
  let mut m = ArrayLru::<u32, Bomb, 4, u8>::new();
  m.insert(1, Bomb(false, t.clone()));
  m.insert(2, Bomb(true, t.clone()));
  m.insert(3, Bomb(false, t.clone()));
  assert!(catch_unwind(AssertUnwindSafe(|| m.clear())).is_err());
  assert!(m.is_empty());
  m.check_invariants();
  m.insert(4, Bomb(false, t.clone()));
  assert_eq!(m.len(), 1);
  drop(m);
  // Clear walks MRU -> LRU: 3 dropped, 2 panicked (its fields are still
  // dropped during unwinding), 1 dropped while unwinding. Nothing leaked,
  // nothing dropped twice.
  assert_eq!(Rc::strong_count(&t), 1);
}
