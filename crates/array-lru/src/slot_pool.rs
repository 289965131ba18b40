//! [`SlotPool`]: indices for values a caller keeps outside the table.
//!
//! A table whose values live elsewhere (LruCache keeps its values in a
//! JavaScript array) stores a slot per entry instead: the pool hands out
//! dense indices `0..`, the last one given back first, so an insert that
//! follows an eviction reuses the evicted entry's slot and the outside
//! storage never grows past the most entries held at once, plus one.

use alloc::vec::Vec;

/// Dense `u32` slots with a last-in, first-out free list.
#[derive(Debug, Default, Clone)]
pub struct SlotPool {
  free: Vec<u32>,
  next: u32,
}

impl SlotPool {
  /// An empty pool.
  pub const fn new() -> Self {
    SlotPool {
      free: Vec::new(),
      next: 0,
    }
  }

  /// A slot no one holds: the last one given back, or the next new one.
  /// `None` only when all 2^32 slots are held.
  pub fn take(&mut self) -> Option<u32> {
    if let Some(s) = self.free.pop() {
      return Some(s);
    }
    let s = self.next;
    self.next = s.checked_add(1)?;
    Some(s)
  }

  /// Gives `slot` back; the next [`take`](Self::take) returns it.
  pub fn give_back(&mut self, slot: u32) {
    debug_assert!(slot < self.next && !self.free.contains(&slot));
    self.free.push(slot);
  }

  /// Slots ever handed out: every slot held or free is below this.
  pub fn high_water(&self) -> u32 {
    self.next
  }

  /// Slots given back and not taken again.
  pub fn free_len(&self) -> usize {
    self.free.len()
  }

  /// Forgets every slot: the next `take` returns 0.
  pub fn reset(&mut self) {
    self.free.clear();
    self.next = 0;
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn dense_and_last_given_back_first() {
    let mut p = SlotPool::new();
    assert_eq!((p.take(), p.take(), p.take()), (Some(0), Some(1), Some(2)));
    p.give_back(1);
    p.give_back(0);
    assert_eq!(p.take(), Some(0));
    assert_eq!(p.take(), Some(1));
    assert_eq!(p.take(), Some(3));
    p.reset();
    assert_eq!(p.take(), Some(0));
  }

  #[test]
  fn an_eviction_then_insert_reuses_the_slot() {
    let mut p = SlotPool::new();
    let held: Vec<u32> = (0..100).map(|_| p.take().unwrap()).collect();
    // As `set` does on a full table: take for the new entry, then the
    // evicted entry's slot comes back; the next insert takes that one.
    for (i, &evicted) in held.iter().enumerate() {
      let s = p.take().unwrap();
      assert_eq!(s, if i == 0 { 100 } else { held[i - 1] });
      p.give_back(evicted);
    }
    assert_eq!(
      p.high_water(),
      101,
      "never more than the entries held, plus one"
    );
  }

  // Not under Miri (CI's short Miri run covers the two tests above): a
  // proptest of 256 cases takes minutes there.
  #[cfg(not(miri))]
  mod model {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
      /// No slot is held twice, and the pool never grows past the most slots
      /// held at once.
      #[test]
      fn no_slot_twice(ops in proptest::collection::vec(any::<(bool, u16)>(), 0..2000)) {
        let mut p = SlotPool::new();
        let mut held = BTreeSet::new();
        let mut peak = 0usize;
        for (take, pick) in ops {
          if take || held.is_empty() {
            let s = p.take().unwrap();
            prop_assert!(held.insert(s), "slot {} handed out twice", s);
            peak = peak.max(held.len());
          } else {
            let s = *held.iter().nth(pick as usize % held.len()).unwrap();
            held.remove(&s);
            p.give_back(s);
          }
          prop_assert!(p.high_water() as usize <= peak);
          prop_assert_eq!(p.high_water() as usize, held.len() + p.free_len());
        }
      }
    }
  }
}
