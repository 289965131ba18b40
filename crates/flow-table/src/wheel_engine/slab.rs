//! The slab and hash index of one shard: entries stored in a `Vec` of
//! slots (array of structs), found through chains of slot numbers whose
//! heads are a power-of-two array and whose links are in the entries.
//!
//! Invariants:
//! * a slot is free (`e: None`, linked into the free list through `next`)
//!   or holds one entry that is on exactly one hash chain (the one for its
//!   key's hash) and, through `prev`/`next`, in exactly one wheel bucket;
//! * slot numbers stay below the wheel's sentinels and never leave the
//!   shard lock, so every reference to a slot (chain, bucket list, free
//!   list) is intrusive and is unlinked in the same critical section that
//!   frees the slot: there is no stale handle to detect and no generation
//!   counter;
//! * at most half an entry per chain head on average (the index doubles
//!   before it would exceed that).

use std::collections::HashMap;
use std::hash::Hash;
use std::mem::size_of;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use super::wheel::{Links, SENTINEL};
use crate::{hash_of, is_expired, Expired, HashState};

/// "No slot" (end of a hash chain or of the free list).
pub(super) const NIL: u32 = u32::MAX;
/// Slot numbers must stay below the wheel's sentinels (about 4.29e9 per
/// shard).
const MAX_SLOTS: usize = SENTINEL as usize;

/// Keys whose memory accesses a batch call overlaps: enough to cover a miss
/// with independent loads, few enough to stay in the CPU's window.
pub(super) const WINDOW: usize = 16;

/// Encoded timeout meaning "the timeout is in `Slab::big_timeouts`"
/// (timeouts of 2^32 - 2 ms, 49.7 days, or more: rare, kept exact).
const BIG_TIMEOUT: u32 = u32::MAX;

/// A stored flow.
pub(super) struct Entry<K, V> {
  /// Written by `touch` under the shard's *read* lock; everything else is
  /// written under the write lock.
  pub(super) last_seen: AtomicU64,
  pub(super) key: K,
  pub(super) value: V,
  /// Idle timeout in ms plus one, or [`BIG_TIMEOUT`]. Non-zero, so
  /// `Option<Entry>` needs no separate tag (the niche optimisation).
  timeout: NonZeroU32,
  /// Next slot in the same hash chain, or NIL.
  chain: u32,
}

impl<K, V> Entry<K, V> {
  #[inline]
  pub(super) fn last_seen(&self) -> u64 {
    self.last_seen.load(Ordering::Relaxed)
  }
}

/// One slab slot. Array of structs on purpose: `get`, `touch` and `expire`
/// each need the key, `last_seen` and the timeout of the same flow, so
/// keeping them (and the links) together costs one cache miss per flow where
/// a struct of arrays would cost three or four. The overhead is 24 bytes per
/// slot beside the key and value (40 bytes in all for `(u64, u64)`).
pub(super) struct Slot<K, V> {
  /// `None` for a free slot.
  pub(super) e: Option<Entry<K, V>>,
  /// Wheel bucket list links (slot numbers or bucket sentinels).
  prev: u32,
  /// Next in the bucket list, or in the free list when `e` is None.
  next: u32,
}

/// The slab and the hash index of a shard.
pub(super) struct Slab<K, V> {
  pub(super) slots: Vec<Slot<K, V>>,
  /// Head of the free-slot list (through `next`), or NIL.
  free: u32,
  pub(super) len: usize,
  /// Hash index: chain heads (slot numbers or NIL), a power of two long,
  /// at most half an entry per head on average (so a lookup visits about
  /// 1.2 slots); chains run through `Entry::chain`.
  heads: Vec<u32>,
  /// Timeouts that do not fit `Slot::timeout`, by slot.
  big_timeouts: HashMap<u32, u64>,
}

impl<K, V> Links for Slab<K, V> {
  #[inline]
  fn prev(&self, i: u32) -> u32 {
    self.slots[i as usize].prev
  }

  #[inline]
  fn next(&self, i: u32) -> u32 {
    self.slots[i as usize].next
  }

  #[inline]
  fn set_prev(&mut self, i: u32, p: u32) {
    self.slots[i as usize].prev = p;
  }

  #[inline]
  fn set_next(&mut self, i: u32, n: u32) {
    self.slots[i as usize].next = n;
  }
}

impl<K: Hash + Eq, V> Slab<K, V> {
  pub(super) fn new() -> Self {
    Self {
      slots: Vec::new(),
      free: NIL,
      len: 0,
      heads: Vec::new(),
      big_timeouts: HashMap::new(),
    }
  }

  /// The entry in occupied slot `i`.
  #[inline]
  pub(super) fn entry(&self, i: u32) -> &Entry<K, V> {
    self.slots[i as usize].e.as_ref().expect("slot is occupied")
  }

  #[inline]
  fn entry_mut(&mut self, i: u32) -> &mut Entry<K, V> {
    self.slots[i as usize].e.as_mut().expect("slot is occupied")
  }

  #[inline]
  fn timeout_of(&self, i: u32) -> u64 {
    match self.entry(i).timeout.get() {
      BIG_TIMEOUT => self.big_timeouts[&i],
      t => u64::from(t - 1),
    }
  }

  /// Encodes `timeout` into slot `i` (and the side table if it is big).
  #[inline]
  fn set_timeout(&mut self, i: u32, timeout: u64) {
    let was_big = self.entry(i).timeout.get() == BIG_TIMEOUT;
    let enc = timeout
      .checked_add(1)
      .and_then(|t| u32::try_from(t).ok())
      .unwrap_or(BIG_TIMEOUT);
    if enc == BIG_TIMEOUT {
      self.big_timeouts.insert(i, timeout);
    } else if was_big {
      self.big_timeouts.remove(&i);
    }
    self.entry_mut(i).timeout = NonZeroU32::new(enc).expect("timeout + 1 > 0");
  }

  #[inline]
  pub(super) fn deadline(&self, i: u32) -> u64 {
    self.entry(i).last_seen().saturating_add(self.timeout_of(i))
  }

  #[inline]
  pub(super) fn expired(&self, i: u32, now: u64) -> bool {
    is_expired(self.entry(i).last_seen(), self.timeout_of(i), now)
  }

  #[inline]
  fn head_of(&self, hash: u64) -> usize {
    // The low bits; the shard was chosen with bits 32.. of the same hash.
    (hash as usize) & (self.heads.len() - 1)
  }

  #[inline]
  pub(super) fn find(&self, hash: u64, key: &K) -> Option<u32> {
    if self.heads.is_empty() {
      return None;
    }
    let mut i = self.heads[self.head_of(hash)];
    while i != NIL {
      let e = self.entry(i);
      if e.key == *key {
        return Some(i);
      }
      i = e.chain;
    }
    None
  }

  /// Loads, as independent reads whose cache misses overlap, the chain
  /// heads of `hashes` and then the first slot of each chain, so that the
  /// lookups that follow mostly hit the cache (the batch calls' pipelining;
  /// a few keys at a time, see [`WINDOW`]).
  pub(super) fn prefetch(&self, hashes: impl Iterator<Item = u64> + Clone) {
    if self.heads.is_empty() {
      return;
    }
    let mut seen = 0u64;
    let mut heads = [NIL; WINDOW];
    for (h, hash) in heads.iter_mut().zip(hashes) {
      *h = self.heads[self.head_of(hash)];
    }
    for &h in &heads {
      if h != NIL {
        seen ^= self.entry(h).last_seen();
      }
    }
    std::hint::black_box(seen);
  }

  /// Replaces the contents of occupied slot `i` (live or expired): new key,
  /// value, `last_seen` and timeout. Returns the old contents and whether
  /// they had expired. The slot's wheel links are the caller's.
  pub(super) fn replace(
    &mut self,
    i: u32,
    key: K,
    value: V,
    now: u64,
    timeout: u64,
  ) -> (Expired<K, V>, bool) {
    let expired = self.expired(i, now);
    self.set_timeout(i, timeout);
    let e = self.entry_mut(i);
    let old = Expired {
      last_seen: e.last_seen(),
      key: std::mem::replace(&mut e.key, key),
      value: std::mem::replace(&mut e.value, value),
    };
    e.last_seen.store(now, Ordering::Relaxed);
    (old, expired)
  }

  /// Doubles the chain-head array and re-chains every entry (rehashing the
  /// keys: hashes are not stored). Amortised O(1) per insert. Load factor
  /// 0.5 rather than 1: at 1M flows the head and the slot are each a cache
  /// miss, and the shorter chains save about a quarter of the slot visits
  /// for 4 bytes per flow.
  fn grow_index(&mut self, state: &HashState) {
    let n = (self.heads.len() * 2).max(16);
    self.heads = vec![NIL; n];
    let mask = n - 1;
    for (i, slot) in self.slots.iter_mut().enumerate() {
      if let Some(e) = &mut slot.e {
        let h = (hash_of(state, &e.key) as usize) & mask;
        e.chain = self.heads[h];
        self.heads[h] = i as u32;
      }
    }
  }

  /// Stores a new entry (whose key is not in the slab) in a free slot and
  /// indexes it; returns the slot, not yet in any wheel bucket.
  pub(super) fn insert(
    &mut self,
    state: &HashState,
    hash: u64,
    key: K,
    value: V,
    now: u64,
    timeout: u64,
  ) -> u32 {
    if 2 * self.len >= self.heads.len() {
      self.grow_index(state);
    }
    let h = self.head_of(hash);
    let slot = Slot {
      e: Some(Entry {
        last_seen: AtomicU64::new(now),
        key,
        value,
        timeout: NonZeroU32::MIN,
        chain: self.heads[h],
      }),
      prev: NIL,
      next: NIL,
    };
    let i = if self.free != NIL {
      let i = self.free;
      self.free = self.slots[i as usize].next;
      self.slots[i as usize] = slot;
      i
    } else {
      assert!(
        self.slots.len() < MAX_SLOTS,
        "flow table shard exceeds 2^32 - 641 slots"
      );
      self.slots.push(slot);
      (self.slots.len() - 1) as u32
    };
    self.heads[h] = i;
    self.set_timeout(i, timeout);
    self.len += 1;
    i
  }

  /// Unindexes and frees slot `i` (already out of its wheel bucket);
  /// returns its contents.
  pub(super) fn remove(&mut self, state: &HashState, i: u32) -> Expired<K, V> {
    let e = self.slots[i as usize]
      .e
      .take()
      .expect("queued slot is occupied");
    if e.timeout.get() == BIG_TIMEOUT {
      self.big_timeouts.remove(&i);
    }
    self.slots[i as usize].next = self.free;
    self.free = i;
    self.len -= 1;
    // Unchain: find the link that points at `i`.
    let h = self.head_of(hash_of(state, &e.key));
    if self.heads[h] == i {
      self.heads[h] = e.chain;
    } else {
      let mut p = self.heads[h];
      while self.entry(p).chain != i {
        p = self.entry(p).chain;
      }
      self.entry_mut(p).chain = e.chain;
    }
    let last_seen = e.last_seen();
    Expired {
      key: e.key,
      value: e.value,
      last_seen,
    }
  }

  /// Heap bytes of the slab and the index.
  pub(super) fn memory_bytes(&self) -> usize {
    self.slots.capacity() * size_of::<Slot<K, V>>()
      + self.heads.capacity() * size_of::<u32>()
      + self.big_timeouts.capacity() * (size_of::<(u32, u64)>() + 1)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn slot_overhead_is_24_bytes() {
    // Option<Entry> uses the NonZeroU32 niche: no tag word.
    assert_eq!(size_of::<Slot<u64, u64>>(), 40);
    assert_eq!(size_of::<Slot<Box<[u8]>, u64>>(), 48);
  }
}
