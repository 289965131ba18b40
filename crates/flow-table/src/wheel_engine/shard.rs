//! The contents of one shard, behind the shard's lock: the slab and index
//! ([`Slab`]) and the timing wheel ([`Wheel`]) whose bucket lists run
//! through the slab's slots. The operations here keep the two consistent:
//! every occupied slot is in exactly one bucket, at or before its deadline,
//! and leaves the slab and the wheel in the same call. They also hold the
//! expiry algorithm (due work, then pre-cascading) and the choice of a
//! victim when the table is full.

use std::hash::Hash;

use super::slab::Slab;
use super::wheel::{Wheel, MAX_NOW};
use crate::{Expired, HashState};

/// How many list heads an insert into a full shard may examine (re-arming
/// touched ones) before it takes the current head as the victim.
const VICTIM_STEPS: usize = 8;

/// Shard contents, behind the shard's `RwLock`.
pub(super) struct Inner<K, V> {
  pub(super) slab: Slab<K, V>,
  pub(super) wheel: Wheel,
}

/// The work of `expire` calls, for [`Stats`](crate::Stats).
#[derive(Default)]
pub(super) struct Work {
  pub(super) visited: u64,
  pub(super) rearmed: u64,
}

impl<K: Hash + Eq, V> Inner<K, V> {
  pub(super) fn new(elapsed: u64) -> Self {
    Self {
      slab: Slab::new(),
      wheel: Wheel::new(elapsed),
    }
  }

  /// Queues slot `i` at `deadline`; returns what [`Wheel::place`] returns.
  #[inline]
  fn place(&mut self, i: u32, deadline: u64) -> u64 {
    self.wheel.place(&mut self.slab, i, deadline)
  }

  #[inline]
  fn unlink(&mut self, i: u32) {
    self.wheel.unlink(&mut self.slab, i);
  }

  /// Replaces live-or-expired entry `i` in place: new key, value,
  /// `last_seen` and timeout, requeued. Returns what `place` returns, the
  /// old contents and whether they had expired.
  pub(super) fn replace_at(
    &mut self,
    i: u32,
    key: K,
    value: V,
    now: u64,
    timeout: u64,
  ) -> (u64, Expired<K, V>, bool) {
    self.unlink(i);
    let (old, expired) = self.slab.replace(i, key, value, now, timeout);
    (self.place(i, now.saturating_add(timeout)), old, expired)
  }

  /// Inserts or replaces under the write lock, without reports (the batch
  /// path of a table without capacity); returns what `place` returns.
  pub(super) fn upsert(
    &mut self,
    state: &HashState,
    hash: u64,
    key: K,
    value: V,
    now: u64,
    timeout: u64,
  ) -> u64 {
    match self.slab.find(hash, &key) {
      Some(i) => self.replace_at(i, key, value, now, timeout).0,
      None => self.insert_new(state, hash, key, value, now, timeout),
    }
  }

  /// Stores a new entry in a free slot, indexes and queues it; returns what
  /// `place` returns.
  pub(super) fn insert_new(
    &mut self,
    state: &HashState,
    hash: u64,
    key: K,
    value: V,
    now: u64,
    timeout: u64,
  ) -> u64 {
    if self.slab.len == 0 {
      // Nothing queued: the wheel may jump to now, which keeps new entries
      // on low levels (fewer cascades).
      self.wheel.elapsed = self.wheel.elapsed.max(now.min(MAX_NOW));
    }
    let i = self.slab.insert(state, hash, key, value, now, timeout);
    self.place(i, now.saturating_add(timeout))
  }

  /// Unqueues, unindexes and frees slot `i`; returns its contents.
  pub(super) fn remove_at(&mut self, state: &HashState, i: u32) -> Expired<K, V> {
    self.unlink(i);
    self.slab.remove(state, i)
  }

  /// Picks an entry to remove from a full shard: the head of the
  /// earliest-starting bucket, re-arming touched heads on the way (at most
  /// [`VICTIM_STEPS`]). With `only_expired`, returns it only if it is past
  /// its deadline. Returns the slot and whether it is expired.
  pub(super) fn find_victim(&mut self, now: u64, only_expired: bool) -> Option<(u32, bool)> {
    for step in 0.. {
      let bucket = self.wheel.next_bucket()?;
      let i = self.wheel.first_in(bucket.b)?;
      let deadline = self.slab.deadline(i);
      if deadline <= now {
        return Some((i, true));
      }
      let touched = deadline >= bucket.end;
      if touched && step < VICTIM_STEPS {
        self.unlink(i);
        self.place(i, deadline);
        continue;
      }
      return (!only_expired).then_some((i, false));
    }
    None
  }

  /// Expires due entries of this shard into `out` until `out` holds `max`,
  /// the re-arm budget is spent, or nothing is due at `now`; then spends what
  /// is left of the budget pre-cascading coarse buckets.
  pub(super) fn expire_into(
    &mut self,
    state: &HashState,
    now: u64,
    max: usize,
    budget: &mut usize,
    work: &mut Work,
    out: &mut Vec<Expired<K, V>>,
  ) {
    // Due work.
    while out.len() < max && *budget > 0 {
      let Some(bucket) = self.wheel.due_bucket(now) else {
        // Nothing due: every bucket starts after `now`, so the cursor may
        // move up to `now`.
        self.wheel.elapsed = self.wheel.elapsed.max(now.min(MAX_NOW));
        break;
      };
      self.wheel.elapsed = self.wheel.elapsed.max(bucket.start);
      while out.len() < max && *budget > 0 {
        let Some(i) = self.wheel.first_in(bucket.b) else {
          break;
        };
        work.visited += 1;
        let deadline = self.slab.deadline(i);
        if deadline <= now {
          out.push(self.remove_at(state, i));
        } else {
          // Touched (deadline past this bucket), or a cascade from a coarse
          // bucket to a finer one; either way it lands in a later or finer
          // bucket, never back in this one.
          *budget -= 1;
          work.rearmed += 1;
          self.unlink(i);
          self.place(i, deadline);
        }
      }
    }
    // Background work: move not-yet-due coarse entries down a level.
    while *budget > 0 {
      let Some(bucket) = self.wheel.cascade_bucket(now) else {
        break;
      };
      while *budget > 0 {
        let Some(i) = self.wheel.first_in(bucket.b) else {
          break;
        };
        work.visited += 1;
        *budget -= 1;
        work.rearmed += 1;
        self.unlink(i);
        // Its deadline is after `now` (the bucket starts after `now` and
        // deadlines only grow), so this is always a move.
        let deadline = self.slab.deadline(i).max(now + 1);
        self.place(i, deadline);
      }
    }
  }

  pub(super) fn clear(&mut self) {
    let elapsed = self.wheel.elapsed;
    *self = Self::new(elapsed);
  }

  pub(super) fn memory_bytes(&self) -> usize {
    self.slab.memory_bytes() + self.wheel.memory_bytes()
  }
}

#[cfg(test)]
mod tests {
  use super::super::wheel::{LEVELS, SENTINEL};
  use super::*;
  use crate::hash_of;

  #[test]
  fn coarse_buckets_are_cascaded_before_they_are_due() {
    let mut w: Inner<u32, u32> = Inner::new(0);
    let st = HashState::default();
    // Deadlines 1000..1100 sit in level-1 buckets (64 ms wide).
    for k in 0..100u32 {
      w.insert_new(&st, hash_of(&st, &k), k, k, 0, 1000 + u64::from(k));
    }
    assert!(w.wheel.occupied[0] == 0 && w.wheel.occupied[1] != 0);
    let (mut out, mut work) = (vec![], Work::default());
    // The hint asks for a visit one bucket width before the first bucket.
    assert_eq!(w.wheel.lower_bound(), 960 - 64);
    let mut budget = 1000;
    w.expire_into(&st, 950, usize::MAX, &mut budget, &mut work, &mut out);
    assert!(out.is_empty());
    // [960, 1024) moved down to level 0; [1024, 1088) is not eligible yet.
    assert_eq!(work.rearmed, 24);
    let mut budget = 1000;
    w.expire_into(&st, 1000, usize::MAX, &mut budget, &mut work, &mut out);
    assert_eq!(out.iter().map(|e| e.key).collect::<Vec<_>>(), vec![0]);
    // [1024, 1088) is now within 128 ms of the cursor: cascaded too.
    assert_eq!(work.rearmed, 88);
    let mut budget = 1000;
    w.expire_into(&st, 1030, usize::MAX, &mut budget, &mut work, &mut out);
    assert_eq!(out.len(), 31);
    assert_eq!(work.rearmed, 100);
    let mut budget = 1000;
    w.expire_into(&st, 1099, usize::MAX, &mut budget, &mut work, &mut out);
    assert_eq!(
      out.iter().map(|e| e.key).collect::<Vec<_>>(),
      (0..100).collect::<Vec<_>>()
    );
    assert_eq!(work.rearmed, 100, "each entry cascaded exactly once");
    assert_eq!(w.slab.len, 0);
  }

  #[test]
  fn bucket_lists_link_and_unlink() {
    let mut w: Inner<u32, u32> = Inner::new(0);
    let st = HashState::default();
    for k in 0..5u32 {
      w.insert_new(&st, hash_of(&st, &k), k, k, 0, 10);
    }
    let b = w.wheel.next_bucket().unwrap();
    assert_eq!((b.start, b.end), (10, 11));
    let mut seen = vec![];
    let mut i = w.wheel.sentinels[b.b][1];
    while i < SENTINEL {
      seen.push(i);
      i = w.wheel.next_of(&w.slab, i);
    }
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    w.unlink(2);
    w.unlink(0);
    w.unlink(4);
    assert_eq!(w.wheel.first_in(b.b), Some(1));
    w.unlink(1);
    w.unlink(3);
    assert!(w.wheel.next_bucket().is_none());
    assert_eq!(w.wheel.occupied, [0u128; LEVELS]);
  }

  #[test]
  fn cascades_through_levels_and_expires_exactly() {
    let mut w: Inner<u32, u32> = Inner::new(0);
    let st = HashState::default();
    let deadlines = [1u64, 63, 64, 65, 4095, 4096, 300_000, 17_000_000];
    for (k, d) in deadlines.iter().enumerate() {
      w.insert_new(&st, hash_of(&st, &(k as u32)), k as u32, 0, 0, *d);
    }
    let mut out = vec![];
    let mut work = Work::default();
    for &d in &deadlines {
      let mut budget = 1000;
      // Just before the deadline nothing new comes out...
      w.expire_into(&st, d - 1, usize::MAX, &mut budget, &mut work, &mut out);
      let n = out.len();
      // ...and at the deadline exactly this entry does.
      w.expire_into(&st, d, usize::MAX, &mut budget, &mut work, &mut out);
      assert_eq!(out.len(), n + 1, "deadline {d}");
      assert_eq!(
        out.last().unwrap().key as usize,
        deadlines.iter().position(|x| *x == d).unwrap()
      );
    }
    assert_eq!(w.slab.len, 0);
  }
}
