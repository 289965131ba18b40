//! The integrated engine: per shard, one lock over a slab of entries, a hash
//! index of slot numbers and a hierarchical timing wheel whose lists are
//! threaded through the slots.

use std::collections::HashMap;
use std::hash::Hash;
use std::mem::size_of;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The shard lock. A `RwLock` by default: `get`, `touch` and `contains`
/// take it shared (`touch` writes an atomic). The `mutex-shards` feature
/// swaps in a `Mutex`, only to measure the difference (see BENCH.md).
#[cfg(not(feature = "mutex-shards"))]
mod shard_lock {
  pub type Lock<T> = parking_lot::RwLock<T>;

  #[inline]
  pub fn read<T>(l: &Lock<T>) -> parking_lot::RwLockReadGuard<'_, T> {
    l.read()
  }

  #[inline]
  pub fn write<T>(l: &Lock<T>) -> parking_lot::RwLockWriteGuard<'_, T> {
    l.write()
  }
}

#[cfg(feature = "mutex-shards")]
mod shard_lock {
  pub type Lock<T> = parking_lot::Mutex<T>;

  #[inline]
  pub fn read<T>(l: &Lock<T>) -> parking_lot::MutexGuard<'_, T> {
    l.lock()
  }

  #[inline]
  pub fn write<T>(l: &Lock<T>) -> parking_lot::MutexGuard<'_, T> {
    l.lock()
  }
}

use shard_lock::{read, write, Lock};

use crate::{
  hash_of, is_expired, rearm_budget, Clock, Config, Evicted, Expired, FlowEngine, Full, HashState,
  InsertError, Inserted, MonotonicClock, StatCounters, Stats,
};

/// Each level's buckets are 64 times wider than the level below: level L
/// buckets are 64^L ms wide (1 ms, 64 ms, 4.1 s, 4.4 min, 4.7 h, 12 days,
/// ...).
const SLOT_BITS: u32 = 6;
/// Buckets per level: a ring of 128, twice the width ratio, so each level
/// covers the next 128 of its buckets from the cursor (`elapsed`): level L
/// holds deadlines less than 2 x 64^(L+1) ms ahead. The overlap is what
/// lets a coarse bucket be cascaded *before* it comes due (see
/// `cascade_bucket`).
const RING_BITS: u32 = 7;
const RING: usize = 1 << RING_BITS;
/// Ten levels reach 2^61 ms ahead at 1 ms resolution.
const LEVELS: usize = 10;
const BUCKETS: usize = LEVELS * RING;
/// Wheel positions are clamped to this (a larger deadline is "never" in
/// practice; the exact deadline is still checked when the entry surfaces).
const MAX_T: u64 = (1 << 60) - 1;
/// The wheel's cursor and the `now` of `expire` are clamped to this, one
/// below `MAX_T`, so an entry re-queued because its deadline is after `now`
/// always lands in a later or finer bucket and a call always progresses.
/// Consequence: deadlines beyond 2^60 ms (36 million years) are never reaped
/// by `expire` (reads still compare exactly).
const MAX_NOW: u64 = MAX_T - 1;

/// "No slot" (end of the free list).
const NIL: u32 = u32::MAX;
/// Link values `>= SENTINEL` name a bucket's list head (`SENTINEL + b`), so
/// every bucket is a circular doubly linked list with a sentinel and unlink
/// never needs to know which bucket an entry is in.
const SENTINEL: u32 = u32::MAX - BUCKETS as u32;
/// Slot numbers must stay below the sentinels (about 4.29e9 per shard).
const MAX_SLOTS: usize = SENTINEL as usize;

/// Keys whose memory accesses a batch call overlaps: enough to cover a miss
/// with independent loads, few enough to stay in the CPU's window.
const WINDOW: usize = 16;

/// How many list heads an insert into a full shard may examine (re-arming
/// touched ones) before it takes the current head as the victim.
const VICTIM_STEPS: usize = 8;

/// Encoded timeout meaning "the timeout is in `Inner::big_timeouts`"
/// (timeouts of 2^32 - 2 ms, 49.7 days, or more: rare, kept exact).
const BIG_TIMEOUT: u32 = u32::MAX;

/// A stored flow.
struct Entry<K, V> {
  /// Written by `touch` under the shard's *read* lock; everything else is
  /// written under the write lock.
  last_seen: AtomicU64,
  key: K,
  value: V,
  /// Idle timeout in ms plus one, or [`BIG_TIMEOUT`]. Non-zero, so
  /// `Option<Entry>` needs no separate tag (the niche optimisation).
  timeout: NonZeroU32,
  /// Next slot in the same hash chain, or NIL.
  chain: u32,
}

impl<K, V> Entry<K, V> {
  #[inline]
  fn last_seen(&self) -> u64 {
    self.last_seen.load(Ordering::Relaxed)
  }
}

/// One slab slot. Array of structs on purpose: `get`, `touch` and `expire`
/// each need the key, `last_seen` and the timeout of the same flow, so
/// keeping them (and the links) together costs one cache miss per flow where
/// a struct of arrays would cost three or four. The overhead is 24 bytes per
/// slot beside the key and value (40 bytes in all for `(u64, u64)`).
struct Slot<K, V> {
  /// `None` for a free slot.
  e: Option<Entry<K, V>>,
  /// Wheel bucket list links (slot numbers or bucket sentinels).
  prev: u32,
  /// Next in the bucket list, or in the free list when `e` is None.
  next: u32,
}

/// Shard contents, behind the shard's `RwLock`.
struct Inner<K, V> {
  slots: Vec<Slot<K, V>>,
  /// Head of the free-slot list (through `next`), or NIL.
  free: u32,
  len: usize,
  /// Hash index: chain heads (slot numbers or NIL), a power of two long,
  /// at most half an entry per head on average (so a lookup visits about
  /// 1.2 slots); chains run through `Entry::chain`.
  heads: Vec<u32>,
  /// Timeouts that do not fit `Slot::timeout`, by slot.
  big_timeouts: HashMap<u32, u64>,
  /// `[prev, next]` of each wheel bucket's sentinel.
  sentinels: Box<[[u32; 2]]>,
  /// Per level, bit s set iff bucket s of that level's ring is non-empty.
  occupied: [u128; LEVELS],
  /// The wheel's cursor. Invariants: every non-empty bucket ends after
  /// `elapsed` (the cursor never passes a non-empty bucket), and a non-empty
  /// level-L bucket is one of the 128 starting at `elapsed >> 6L`. It moves
  /// only to the start of the bucket `expire` works on, or to `now` when
  /// nothing is due.
  elapsed: u64,
}

/// A wheel bucket: its number, start time and end time (exclusive).
#[derive(Clone, Copy)]
struct Bucket {
  b: usize,
  start: u64,
  end: u64,
}

/// The level for a wheel position `when >= elapsed`: the finest level whose
/// ring (128 buckets from the cursor's bucket) reaches it. A position is
/// placed by its distance from the cursor, not by its alignment. tokio's
/// timer wheel (runtime/time/wheel, `level_for`) uses 64-bucket levels and
/// the highest bit in which `when` differs from `elapsed`, so a deadline just
/// past a coarse boundary lands in a coarse bucket that must be cascaded at
/// once when it comes due; our 128-bucket rings overlap by one coarse
/// bucket, which is what allows cascading ahead of time.
#[inline]
fn level_for(elapsed: u64, when: u64) -> usize {
  (0..LEVELS)
    .find(|&l| (when >> shift(l)) - (elapsed >> shift(l)) < RING as u64)
    .unwrap_or(LEVELS - 1)
}

#[inline]
fn shift(level: usize) -> u32 {
  SLOT_BITS * level as u32
}

#[inline]
fn bucket_of(level: usize, when: u64) -> usize {
  level * RING + ((when >> shift(level)) as usize & (RING - 1))
}

impl<K: Hash + Eq, V> Inner<K, V> {
  fn new(elapsed: u64) -> Self {
    Self {
      slots: Vec::new(),
      free: NIL,
      len: 0,
      heads: Vec::new(),
      big_timeouts: HashMap::new(),
      sentinels: (0..BUCKETS)
        .map(|b| {
          let s = SENTINEL + b as u32;
          [s, s]
        })
        .collect(),
      occupied: [0; LEVELS],
      elapsed: elapsed.min(MAX_NOW),
    }
  }

  // ---- links ----------------------------------------------------------

  #[inline]
  fn next_of(&self, i: u32) -> u32 {
    if i >= SENTINEL {
      self.sentinels[(i - SENTINEL) as usize][1]
    } else {
      self.slots[i as usize].next
    }
  }

  #[inline]
  fn prev_of(&self, i: u32) -> u32 {
    if i >= SENTINEL {
      self.sentinels[(i - SENTINEL) as usize][0]
    } else {
      self.slots[i as usize].prev
    }
  }

  #[inline]
  fn set_next(&mut self, i: u32, n: u32) {
    if i >= SENTINEL {
      self.sentinels[(i - SENTINEL) as usize][1] = n;
    } else {
      self.slots[i as usize].next = n;
    }
  }

  #[inline]
  fn set_prev(&mut self, i: u32, p: u32) {
    if i >= SENTINEL {
      self.sentinels[(i - SENTINEL) as usize][0] = p;
    } else {
      self.slots[i as usize].prev = p;
    }
  }

  /// Appends slot `i` to bucket `b`.
  #[inline]
  fn link_tail(&mut self, i: u32, b: usize) {
    let s = SENTINEL + b as u32;
    let tail = self.prev_of(s);
    self.set_next(tail, i);
    self.set_prev(i, tail);
    self.set_next(i, s);
    self.set_prev(s, i);
    self.occupied[b / RING] |= 1 << (b % RING);
  }

  /// Unlinks slot `i` from whatever bucket it is in.
  #[inline]
  fn unlink(&mut self, i: u32) {
    let p = self.prev_of(i);
    let n = self.next_of(i);
    self.set_next(p, n);
    self.set_prev(n, p);
    if p == n && p >= SENTINEL {
      // That was the only entry: the bucket is empty now.
      let b = (p - SENTINEL) as usize;
      self.occupied[b / RING] &= !(1 << (b % RING));
    }
  }

  // ---- wheel ----------------------------------------------------------

  /// Queues slot `i` at `deadline` (clamped to `elapsed` and `MAX_T`).
  /// Returns when `expire` first has work for it: its bucket's start, or for
  /// a coarse bucket the time it becomes eligible for pre-cascading (see
  /// [`Self::lower_bound`]).
  #[inline]
  fn place(&mut self, i: u32, deadline: u64) -> u64 {
    let when = deadline.clamp(self.elapsed, MAX_T);
    let level = level_for(self.elapsed, when);
    self.link_tail(i, bucket_of(level, when));
    let width = 1u64 << shift(level);
    let start = when & !(width - 1);
    if level == 0 {
      start
    } else {
      start.saturating_sub(width)
    }
  }

  /// The first non-empty bucket of `level` (the earliest on that level).
  /// Invariant: every non-empty bucket of level L is one of the 128 buckets
  /// starting at the cursor's bucket `elapsed >> 6L`.
  #[inline]
  fn first_bucket_at(&self, level: usize) -> Option<Bucket> {
    let occ = self.occupied[level];
    if occ == 0 {
      return None;
    }
    let sh = shift(level);
    let cur = self.elapsed >> sh;
    let rel = occ
      .rotate_right((cur as u32) & (RING as u32 - 1))
      .trailing_zeros();
    let start = (cur + u64::from(rel)) << sh;
    Some(Bucket {
      b: bucket_of(level, start),
      start,
      end: start + (1 << sh),
    })
  }

  /// The non-empty bucket with the earliest start (ties: the coarser one).
  /// O(LEVELS) with the occupancy bitmaps. Used for eviction and the hint.
  fn next_bucket(&self) -> Option<Bucket> {
    (0..LEVELS)
      .rev()
      .filter_map(|l| self.first_bucket_at(l))
      .fold(None, |best: Option<Bucket>, c| {
        Some(match best {
          Some(b) if b.start <= c.start => b,
          _ => c,
        })
      })
  }

  /// The bucket `expire` should work on next: among the buckets that start
  /// at or before `now`, the one that *ends* first (ties: the finer one).
  ///
  /// Why the end and not the start: a coarse bucket left half-processed by
  /// a bounded call starts before the fine buckets its cascaded entries went
  /// to, yet those fine buckets hold the entries that are actually due;
  /// picking by start would spend every call's budget cascading and return
  /// nothing. Picking by end is also safe for the cursor: `elapsed` moves to
  /// the chosen bucket's start, which is before the end of every other due
  /// bucket, so it never passes a non-empty bucket.
  fn due_bucket(&self, now: u64) -> Option<Bucket> {
    (0..LEVELS)
      .filter_map(|l| self.first_bucket_at(l))
      .filter(|c| c.start <= now)
      .fold(None, |best: Option<Bucket>, c| {
        Some(match best {
          Some(b) if b.end <= c.end => b,
          _ => c,
        })
      })
  }

  /// A coarse bucket (level >= 1) that is not yet due but already lies inside
  /// the next finer level's ring, so its entries can be moved down now
  /// ("pre-cascade"); the earliest such bucket. A level-L bucket becomes
  /// eligible 64^L ms before it starts, so cascading it a little per
  /// `expire` call finishes before any of its entries is due, and due
  /// entries are never hidden behind not-yet-due ones in a coarse list.
  fn cascade_bucket(&self, now: u64) -> Option<Bucket> {
    (1..LEVELS)
      .filter_map(|l| {
        let c = self.first_bucket_at(l)?;
        let finer = shift(l - 1);
        let reach = ((self.elapsed >> finer) + RING as u64) << finer;
        (c.start > now && c.end <= reach).then_some(c)
      })
      .min_by_key(|c| c.start)
  }

  /// When `expire` next has work in this shard (the shard hint): the
  /// earliest bucket start, or the time a coarse bucket becomes eligible
  /// for pre-cascading (its start minus its width), whichever is first.
  fn lower_bound(&self) -> u64 {
    (0..LEVELS)
      .filter_map(|l| {
        let c = self.first_bucket_at(l)?;
        // A coarse bucket is eligible exactly when the finer ring reaches
        // its end: at `start - width`.
        Some(if l == 0 {
          c.start
        } else {
          c.start.saturating_sub(1 << shift(l))
        })
      })
      .min()
      .unwrap_or(u64::MAX)
  }

  #[inline]
  fn first_in(&self, b: usize) -> Option<u32> {
    let i = self.sentinels[b][1];
    (i < SENTINEL).then_some(i)
  }

  // ---- slab and index -------------------------------------------------

  /// The entry in occupied slot `i`.
  #[inline]
  fn entry(&self, i: u32) -> &Entry<K, V> {
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
  fn deadline(&self, i: u32) -> u64 {
    self.entry(i).last_seen().saturating_add(self.timeout_of(i))
  }

  #[inline]
  fn expired(&self, i: u32, now: u64) -> bool {
    is_expired(self.entry(i).last_seen(), self.timeout_of(i), now)
  }

  #[inline]
  fn head_of(&self, hash: u64) -> usize {
    // The low bits; the shard was chosen with bits 32.. of the same hash.
    (hash as usize) & (self.heads.len() - 1)
  }

  #[inline]
  fn find(&self, hash: u64, key: &K) -> Option<u32> {
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
  fn prefetch(&self, hashes: impl Iterator<Item = u64> + Clone) {
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

  /// Replaces live-or-expired entry `i` in place: new key, value,
  /// `last_seen` and timeout, requeued. Returns what `place` returns, the
  /// old contents and whether they had expired.
  fn replace_at(
    &mut self,
    i: u32,
    key: K,
    value: V,
    now: u64,
    timeout: u64,
  ) -> (u64, Expired<K, V>, bool) {
    self.unlink(i);
    let expired = self.expired(i, now);
    self.set_timeout(i, timeout);
    let e = self.entry_mut(i);
    let old = Expired {
      last_seen: e.last_seen(),
      key: std::mem::replace(&mut e.key, key),
      value: std::mem::replace(&mut e.value, value),
    };
    e.last_seen.store(now, Ordering::Relaxed);
    (self.place(i, now.saturating_add(timeout)), old, expired)
  }

  /// Inserts or replaces under the write lock, without reports (the batch
  /// path of a table without capacity); returns what `place` returns.
  fn upsert(
    &mut self,
    state: &HashState,
    hash: u64,
    key: K,
    value: V,
    now: u64,
    timeout: u64,
  ) -> u64 {
    match self.find(hash, &key) {
      Some(i) => self.replace_at(i, key, value, now, timeout).0,
      None => self.insert_new(state, hash, key, value, now, timeout),
    }
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

  /// Stores a new entry in a free slot, indexes and queues it; returns what
  /// `place` returns.
  fn insert_new(
    &mut self,
    state: &HashState,
    hash: u64,
    key: K,
    value: V,
    now: u64,
    timeout: u64,
  ) -> u64 {
    if self.len == 0 {
      // Nothing queued: the wheel may jump to now, which keeps new entries
      // on low levels (fewer cascades).
      self.elapsed = self.elapsed.max(now.min(MAX_NOW));
    }
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
    self.place(i, now.saturating_add(timeout))
  }

  /// Unqueues, unindexes and frees slot `i`; returns its contents.
  fn remove_at(&mut self, state: &HashState, i: u32) -> Expired<K, V> {
    self.unlink(i);
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

  /// Picks an entry to remove from a full shard: the head of the
  /// earliest-starting bucket, re-arming touched heads on the way (at most
  /// [`VICTIM_STEPS`]). With `only_expired`, returns it only if it is past
  /// its deadline. Returns the slot and whether it is expired.
  fn find_victim(&mut self, now: u64, only_expired: bool) -> Option<(u32, bool)> {
    for step in 0.. {
      let bucket = self.next_bucket()?;
      let i = self.first_in(bucket.b)?;
      let deadline = self.deadline(i);
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
  fn expire_into(
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
      let Some(bucket) = self.due_bucket(now) else {
        // Nothing due: every bucket starts after `now`, so the cursor may
        // move up to `now`.
        self.elapsed = self.elapsed.max(now.min(MAX_NOW));
        break;
      };
      self.elapsed = self.elapsed.max(bucket.start);
      while out.len() < max && *budget > 0 {
        let Some(i) = self.first_in(bucket.b) else {
          break;
        };
        work.visited += 1;
        let deadline = self.deadline(i);
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
      let Some(bucket) = self.cascade_bucket(now) else {
        break;
      };
      while *budget > 0 {
        let Some(i) = self.first_in(bucket.b) else {
          break;
        };
        work.visited += 1;
        *budget -= 1;
        work.rearmed += 1;
        self.unlink(i);
        // Its deadline is after `now` (the bucket starts after `now` and
        // deadlines only grow), so this is always a move.
        let deadline = self.deadline(i).max(now + 1);
        self.place(i, deadline);
      }
    }
  }

  fn clear(&mut self) {
    let elapsed = self.elapsed;
    *self = Self::new(elapsed);
  }

  fn memory_bytes(&self) -> usize {
    self.slots.capacity() * size_of::<Slot<K, V>>()
      + self.heads.capacity() * size_of::<u32>()
      + self.big_timeouts.capacity() * (size_of::<(u32, u64)>() + 1)
      + self.sentinels.len() * size_of::<[u32; 2]>()
  }
}

#[derive(Default)]
struct Work {
  visited: u64,
  rearmed: u64,
}

/// A shard: its lock on its own cache lines.
#[repr(align(128))]
struct Shard<K, V> {
  lock: Lock<Inner<K, V>>,
}

/// The integrated flow table: entries, hash index and timeout order in one
/// sharded structure (see the crate documentation for the design).
pub struct WheelEngine<K, V> {
  shards: Box<[Shard<K, V>]>,
  /// Per shard, a lower bound on the earliest wheel position; `expire` skips
  /// a shard without locking it when its hint is after `now` (Suricata keeps
  /// a per-row `next_ts` for the same purpose).
  hints: Box<[AtomicU64]>,
  mask: usize,
  state: HashState,
  clock: Arc<dyn Clock>,
  default_timeout: u64,
  capacity: Option<usize>,
  when_full: Full,
  /// Stored + reserved entries; maintained only when `capacity` is set.
  count: AtomicUsize,
  /// Round-robin start of `expire` and of evictions from other shards.
  cursor: AtomicUsize,
  stats: StatCounters,
}

impl<K, V> WheelEngine<K, V>
where
  K: Hash + Eq + Clone + Send + Sync,
  V: Clone + Send + Sync,
{
  /// A table with the default [`MonotonicClock`].
  pub fn new(config: Config) -> Self {
    Self::with_clock(config, Arc::new(MonotonicClock::new()))
  }

  /// A table reading time from `clock`.
  pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Self {
    let n = config.shard_count();
    let now = clock.now();
    Self {
      shards: (0..n)
        .map(|_| Shard {
          lock: Lock::new(Inner::new(now)),
        })
        .collect(),
      hints: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
      mask: n - 1,
      state: HashState::default(),
      clock,
      default_timeout: config.default_timeout_ms,
      capacity: config.capacity,
      when_full: config.when_full,
      count: AtomicUsize::new(0),
      cursor: AtomicUsize::new(0),
      stats: StatCounters::default(),
    }
  }

  #[inline]
  fn locate(&self, key: &K) -> (u64, usize) {
    let hash = hash_of(&self.state, key);
    // hashbrown uses the low bits (bucket) and the top 7 bits (tag) of the
    // hash; the shard comes from bits 32.. so the three stay independent.
    (hash, ((hash >> 32) as usize) & self.mask)
  }

  /// Lowers shard `s`'s hint to `when` (a value returned by `place`).
  #[inline]
  fn lower_hint(&self, s: usize, when: u64) {
    // Called under the shard's write lock, so load + store cannot lose a
    // smaller value to another writer of this shard.
    if when < self.hints[s].load(Ordering::Relaxed) {
      self.hints[s].store(when, Ordering::Relaxed);
    }
  }

  fn try_reserve(&self, cap: usize) -> bool {
    self
      .count
      .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
        (c < cap).then_some(c + 1)
      })
      .is_ok()
  }

  fn release(&self, n: usize) {
    if self.capacity.is_some() && n > 0 {
      self.count.fetch_sub(n, Ordering::AcqRel);
    }
  }

  /// Evicts one entry from some shard other than `except` (whose lock the
  /// caller has released), keeping its unit of capacity for the caller.
  fn evict_elsewhere(&self, except: usize, now: u64, out: &mut Inserted<K, V>) -> bool {
    let n = self.shards.len();
    let start = self.cursor.fetch_add(1, Ordering::Relaxed);
    for k in 0..n {
      let s = (start + k) % n;
      if s == except {
        continue;
      }
      let mut g = write(&self.shards[s].lock);
      if let Some((i, expired)) = g.find_victim(now, false) {
        let e = g.remove_at(&self.state, i);
        self.stats.record_eviction();
        out.evicted = Some(Evicted {
          entry: e,
          was_expired: expired,
        });
        return true;
      }
    }
    false
  }
}

impl<K, V> FlowEngine<K, V> for WheelEngine<K, V>
where
  K: Hash + Eq + Clone + Send + Sync,
  V: Clone + Send + Sync,
{
  fn insert_full(
    &self,
    key: K,
    value: V,
    timeout_ms: Option<u64>,
  ) -> Result<Inserted<K, V>, InsertError> {
    let timeout = timeout_ms.unwrap_or(self.default_timeout);
    let (hash, s) = self.locate(&key);
    let mut out = Inserted::default();
    // Whether we hold a unit of capacity for a new entry.
    let mut reserved = false;
    loop {
      let now = self.clock.now();
      let mut g = write(&self.shards[s].lock);
      if let Some(i) = g.find(hash, &key) {
        // Replace in place: new value, last_seen and timeout; requeue.
        if reserved {
          self.release(1);
        }
        let (when, old, expired) = g.replace_at(i, key, value, now, timeout);
        self.lower_hint(s, when);
        if expired {
          out.expired = Some(old);
        } else {
          out.replaced = Some(old.value);
        }
        return Ok(out);
      }
      if let (Some(cap), false) = (self.capacity, reserved) {
        if !self.try_reserve(cap) {
          if cap == 0 {
            return Err(InsertError::Full);
          }
          // Full. Reuse an entry of this shard (its unit of capacity passes
          // to this insert), or for EvictLongestIdle evict in another shard.
          let only_expired = self.when_full == Full::Refuse;
          match g.find_victim(now, only_expired) {
            Some((i, expired)) => {
              let e = g.remove_at(&self.state, i);
              self.stats.record_eviction();
              out.evicted = Some(Evicted {
                entry: e,
                was_expired: expired,
              });
            }
            None if only_expired => return Err(InsertError::Full),
            None => {
              drop(g);
              if self.evict_elsewhere(s, now, &mut out) {
                reserved = true;
                continue; // relock and re-check: the key may exist now
              }
              return Err(InsertError::Full);
            }
          }
        }
      }
      let when = g.insert_new(&self.state, hash, key, value, now, timeout);
      self.lower_hint(s, when);
      return Ok(out);
    }
  }

  fn get(&self, key: &K) -> Option<V> {
    let now = self.clock.now();
    let (hash, s) = self.locate(key);
    let g = read(&self.shards[s].lock);
    let i = g.find(hash, key)?;
    if g.expired(i, now) {
      return None;
    }
    Some(g.entry(i).value.clone())
  }

  fn touch(&self, key: &K) -> bool {
    let now = self.clock.now();
    let (hash, s) = self.locate(key);
    let g = read(&self.shards[s].lock);
    let Some(i) = g.find(hash, key) else {
      return false;
    };
    if g.expired(i, now) {
      return false;
    }
    // The whole cost of keeping a flow alive: one store. The wheel is not
    // touched; `expire` re-arms the entry when its old position comes due.
    g.entry(i).last_seen.store(now, Ordering::Relaxed);
    true
  }

  fn insert_many(&self, entries: Vec<(K, V)>, timeout_ms: Option<u64>) -> Result<(), InsertError> {
    if self.capacity.is_some() {
      // A full table may need to evict in another shard, which the
      // per-key path does (it drops and retakes locks): keep it.
      return crate::insert_each(self, entries, timeout_ms);
    }
    let timeout = timeout_ms.unwrap_or(self.default_timeout);
    // (shard, hash, entry), grouped by shard, input order kept within one.
    let mut order: Vec<(u32, u64, (K, V))> = entries
      .into_iter()
      .map(|(k, v)| {
        let (hash, s) = self.locate(&k);
        (s as u32, hash, (k, v))
      })
      .collect();
    order.sort_by_key(|e| e.0); // stable: later duplicates stay later
    let mut items = order.into_iter().peekable();
    while let Some(first) = items.next() {
      let s = first.0 as usize;
      let now = self.clock.now();
      let mut g = write(&self.shards[s].lock);
      let mut earliest = u64::MAX;
      let mut window: Vec<(u64, (K, V))> = Vec::with_capacity(WINDOW);
      window.push((first.1, first.2));
      loop {
        let more = items.peek().is_some_and(|e| e.0 as usize == s);
        if more && window.len() < WINDOW {
          let (_, hash, kv) = items.next().expect("peeked");
          window.push((hash, kv));
          continue;
        }
        g.prefetch(window.iter().map(|w| w.0));
        for (hash, (key, value)) in window.drain(..) {
          earliest = earliest.min(g.upsert(&self.state, hash, key, value, now, timeout));
        }
        if !more {
          break;
        }
      }
      self.lower_hint(s, earliest);
    }
    Ok(())
  }

  fn touch_many(&self, keys: &[K], out: &mut Vec<bool>) {
    out.clear();
    out.resize(keys.len(), false);
    if keys.is_empty() {
      return;
    }
    let now = self.clock.now();
    // (shard, hash, index), grouped by shard: one read lock per shard.
    let mut order: Vec<(u32, u64, u32)> = keys
      .iter()
      .enumerate()
      .map(|(i, k)| {
        let (hash, s) = self.locate(k);
        (s as u32, hash, i as u32)
      })
      .collect();
    order.sort_unstable_by_key(|&(s, _, i)| (s, i));
    for run in order.chunk_by(|a, b| a.0 == b.0) {
      let g = read(&self.shards[run[0].0 as usize].lock);
      for w in run.chunks(WINDOW) {
        g.prefetch(w.iter().map(|e| e.1));
        // The lookups themselves, now mostly from cache.
        for &(_, hash, i) in w {
          if let Some(j) = g.find(hash, &keys[i as usize]) {
            if !g.expired(j, now) {
              g.entry(j).last_seen.store(now, Ordering::Relaxed);
              out[i as usize] = true;
            }
          }
        }
      }
    }
  }

  fn get_and_touch(&self, key: &K) -> Option<V> {
    let now = self.clock.now();
    let (hash, s) = self.locate(key);
    let g = read(&self.shards[s].lock);
    let i = g.find(hash, key)?;
    if g.expired(i, now) {
      return None;
    }
    let e = g.entry(i);
    e.last_seen.store(now, Ordering::Relaxed);
    Some(e.value.clone())
  }

  fn contains(&self, key: &K) -> bool {
    let now = self.clock.now();
    let (hash, s) = self.locate(key);
    let g = read(&self.shards[s].lock);
    g.find(hash, key).is_some_and(|i| !g.expired(i, now))
  }

  fn remove(&self, key: &K) -> Option<V> {
    let now = self.clock.now();
    let (hash, s) = self.locate(key);
    let mut g = write(&self.shards[s].lock);
    let i = g.find(hash, key)?;
    if g.expired(i, now) {
      return None; // left for `expire` to report
    }
    let e = g.remove_at(&self.state, i);
    if g.len == 0 {
      self.hints[s].store(u64::MAX, Ordering::Relaxed);
    }
    drop(g);
    self.release(1);
    Some(e.value)
  }

  fn expire(&self, now: u64, max: usize) -> Vec<Expired<K, V>> {
    let mut out = Vec::new();
    if max == 0 {
      return out;
    }
    let now = now.min(MAX_NOW);
    let mut budget = rearm_budget(max);
    let mut work = Work::default();
    let n = self.shards.len();
    // Round-robin start so a shard with a large backlog cannot starve the
    // others across calls.
    let start = self.cursor.fetch_add(1, Ordering::Relaxed);
    // Within a call, the re-arm budget is shared: the first pass gives each
    // shard an equal slice, so one shard cascading a big coarse bucket
    // cannot spend the whole budget before the others have reaped their due
    // entries; a second pass hands what is left to shards that ran out.
    let share = budget.div_ceil(n);
    for pass in 0..2 {
      let mut starved = false;
      for k in 0..n {
        if out.len() >= max || budget == 0 {
          break;
        }
        let s = (start + k) & self.mask;
        if self.hints[s].load(Ordering::Relaxed) > now {
          continue; // nothing can be due here: skip without locking
        }
        let given = if pass == 0 { share.min(budget) } else { budget };
        let mut left = given;
        let before = out.len();
        let mut g = write(&self.shards[s].lock);
        g.expire_into(&self.state, now, max, &mut left, &mut work, &mut out);
        self.hints[s].store(g.lower_bound(), Ordering::Relaxed);
        drop(g);
        self.release(out.len() - before);
        budget -= given - left;
        starved |= left == 0;
      }
      if !starved {
        break;
      }
    }
    self
      .stats
      .record_expire(work.visited, work.rearmed, out.len() as u64);
    out
  }

  fn next_due(&self) -> Option<u64> {
    let min = self
      .hints
      .iter()
      .map(|h| h.load(Ordering::Relaxed))
      .min()
      .unwrap_or(u64::MAX);
    (min != u64::MAX).then_some(min)
  }

  fn len(&self) -> usize {
    self.shards.iter().map(|s| read(&s.lock).len).sum()
  }

  fn for_each(&self, f: &mut dyn FnMut(&K, &V, u64)) {
    let now = self.clock.now();
    let mut buf: Vec<(K, V, u64)> = Vec::new();
    for shard in self.shards.iter() {
      // Copy one shard out under its read lock, then call `f` unlocked so it
      // may call back into the table.
      {
        let g = read(&shard.lock);
        buf.reserve(g.len);
        for (i, slot) in g.slots.iter().enumerate() {
          if let Some(e) = &slot.e {
            if !g.expired(i as u32, now) {
              buf.push((e.key.clone(), e.value.clone(), e.last_seen()));
            }
          }
        }
      }
      for (k, v, t) in buf.drain(..) {
        f(&k, &v, t);
      }
    }
  }

  fn clear(&self) {
    for (s, shard) in self.shards.iter().enumerate() {
      let mut g = write(&shard.lock);
      let n = g.len;
      g.clear();
      self.hints[s].store(u64::MAX, Ordering::Relaxed);
      drop(g);
      self.release(n);
    }
  }

  fn memory_bytes(&self) -> usize {
    let shards: usize = self
      .shards
      .iter()
      .map(|s| read(&s.lock).memory_bytes())
      .sum();
    shards
      + self.shards.len() * (size_of::<Shard<K, V>>() + size_of::<AtomicU64>())
      + size_of::<Self>()
  }

  fn stats(&self) -> Stats {
    self.stats.snapshot()
  }

  fn now(&self) -> u64 {
    self.clock.now()
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

  #[test]
  fn level_for_places_by_distance() {
    assert_eq!(level_for(0, 0), 0);
    assert_eq!(level_for(0, 127), 0);
    assert_eq!(level_for(0, 128), 1);
    assert_eq!(level_for(100, 227), 0); // 127 ahead, across a 64 ms boundary
    assert_eq!(level_for(100, 228), 1);
    assert_eq!(level_for(0, 128 * 64 - 1), 1);
    assert_eq!(level_for(0, 128 * 64), 2);
    // Ring slots (not exact ms) count: 8191 is in the 127th 64 ms slot
    // after 0, but from 63 it is 128 slots ahead.
    assert_eq!(level_for(63, 8191), 1);
    assert_eq!(level_for(64, 8192 + 63), 1);
    assert_eq!(level_for(0, MAX_T), LEVELS - 1);
    assert_eq!(level_for(MAX_NOW, MAX_T), 0);
  }

  #[test]
  fn coarse_buckets_are_cascaded_before_they_are_due() {
    let mut w: Inner<u32, u32> = Inner::new(0);
    let st = HashState::default();
    // Deadlines 1000..1100 sit in level-1 buckets (64 ms wide).
    for k in 0..100u32 {
      w.insert_new(&st, hash_of(&st, &k), k, k, 0, 1000 + u64::from(k));
    }
    assert!(w.occupied[0] == 0 && w.occupied[1] != 0);
    let (mut out, mut work) = (vec![], Work::default());
    // The hint asks for a visit one bucket width before the first bucket.
    assert_eq!(w.lower_bound(), 960 - 64);
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
    assert_eq!(w.len, 0);
  }

  #[test]
  fn hint_asks_for_a_call_before_a_coarse_bucket_is_due() {
    let clock = Arc::new(crate::ManualClock::new(0));
    let t: WheelEngine<u64, u64> =
      WheelEngine::with_clock(Config::new(20_000).with_shards(1), clock);
    t.insert(1, 1, None).unwrap();
    // Deadline 20000 sits in the level-2 bucket [16384, 20480), which may
    // be cascaded from 16384 - 4096 on.
    assert_eq!(t.next_due(), Some(12_288));
    t.insert(2, 2, Some(100)).unwrap();
    assert_eq!(t.next_due(), Some(100));
    assert!(t.expire(100, 10).len() == 1);
    assert_eq!(t.next_due(), Some(12_288));
    assert!(t.expire(12_288, 10).is_empty());
    // Cascaded: now in level 1, eligible 64 ms before its 64 ms bucket.
    assert_eq!(t.next_due(), Some(19_968 - 64));
    assert_eq!(t.expire(20_000, 10).len(), 1);
    assert_eq!(t.next_due(), None);
  }

  #[test]
  fn bucket_lists_link_and_unlink() {
    let mut w: Inner<u32, u32> = Inner::new(0);
    let st = HashState::default();
    for k in 0..5u32 {
      w.insert_new(&st, hash_of(&st, &k), k, k, 0, 10);
    }
    let b = w.next_bucket().unwrap();
    assert_eq!((b.start, b.end), (10, 11));
    let mut seen = vec![];
    let mut i = w.sentinels[b.b][1];
    while i < SENTINEL {
      seen.push(i);
      i = w.next_of(i);
    }
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    w.unlink(2);
    w.unlink(0);
    w.unlink(4);
    assert_eq!(w.first_in(b.b), Some(1));
    w.unlink(1);
    w.unlink(3);
    assert!(w.next_bucket().is_none());
    assert_eq!(w.occupied, [0u128; LEVELS]);
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
    assert_eq!(w.len, 0);
  }
}
