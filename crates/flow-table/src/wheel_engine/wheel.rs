//! The hierarchical timing wheel of one shard: the order in which entries
//! come due, as circular doubly linked lists threaded through the slab's
//! slots (the wheel owns only the lists' sentinels, the occupancy bitmaps
//! and the cursor; the links of an entry live in its slot, see [`Links`]).
//!
//! Levels and rings: level L buckets are 64^L ms wide and each level is a
//! ring of 128 buckets, so level L holds deadlines less than 128 of its
//! buckets ahead of the cursor. An entry is placed by its distance from the
//! cursor at the finest level that reaches its deadline. Invariants:
//! * every non-empty bucket ends after the cursor `elapsed` (the cursor
//!   never passes a non-empty bucket);
//! * a non-empty level-L bucket is one of the 128 buckets starting at the
//!   cursor's bucket `elapsed >> 6L`;
//! * bit s of `occupied[L]` is set iff bucket s of level L is non-empty.
//!
//! The wheel knows nothing of keys, values or deadlines: the shard
//! (`super::shard`) decides where an entry goes and what to do with the
//! entries of a due bucket.

/// Each level's buckets are 64 times wider than the level below: level L
/// buckets are 64^L ms wide (1 ms, 64 ms, 4.1 s, 4.4 min, 4.7 h, 12 days,
/// ...).
const SLOT_BITS: u32 = 6;
/// Buckets per level: a ring of 128, twice the width ratio, so each level
/// covers the next 128 of its buckets from the cursor (`elapsed`): level L
/// holds deadlines less than 2 x 64^(L+1) ms ahead. The overlap is what
/// lets a coarse bucket be cascaded *before* it comes due (see
/// [`Wheel::cascade_bucket`]).
const RING_BITS: u32 = 7;
const RING: usize = 1 << RING_BITS;
/// Ten levels reach 2^61 ms ahead at 1 ms resolution.
pub(super) const LEVELS: usize = 10;
const BUCKETS: usize = LEVELS * RING;
/// Wheel positions are clamped to this (a larger deadline is "never" in
/// practice; the exact deadline is still checked when the entry surfaces).
pub(super) const MAX_T: u64 = (1 << 60) - 1;
/// The wheel's cursor and the `now` of `expire` are clamped to this, one
/// below `MAX_T`, so an entry re-queued because its deadline is after `now`
/// always lands in a later or finer bucket and a call always progresses.
/// Consequence: deadlines beyond 2^60 ms (36 million years) are never reaped
/// by `expire` (reads still compare exactly).
pub(super) const MAX_NOW: u64 = MAX_T - 1;

/// Link values `>= SENTINEL` name a bucket's list head (`SENTINEL + b`), so
/// every bucket is a circular doubly linked list with a sentinel and unlink
/// never needs to know which bucket an entry is in. Slot numbers must stay
/// below this (about 4.29e9 per shard).
pub(super) const SENTINEL: u32 = u32::MAX - BUCKETS as u32;

/// The list links of the slots (slot numbers below [`SENTINEL`]): the wheel
/// threads its bucket lists through them. A link is a slot number or a
/// sentinel.
pub(super) trait Links {
  /// The previous element of slot `i`'s list.
  fn prev(&self, i: u32) -> u32;
  /// The next element of slot `i`'s list.
  fn next(&self, i: u32) -> u32;
  /// Sets the previous element of slot `i`'s list.
  fn set_prev(&mut self, i: u32, p: u32);
  /// Sets the next element of slot `i`'s list.
  fn set_next(&mut self, i: u32, n: u32);
}

/// A wheel bucket: its number, start time and end time (exclusive).
#[derive(Clone, Copy)]
pub(super) struct Bucket {
  pub(super) b: usize,
  pub(super) start: u64,
  pub(super) end: u64,
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

/// A shard's timing wheel: the bucket sentinels, the occupancy bitmaps and
/// the cursor.
pub(super) struct Wheel {
  /// `[prev, next]` of each wheel bucket's sentinel.
  pub(super) sentinels: Box<[[u32; 2]]>,
  /// Per level, bit s set iff bucket s of that level's ring is non-empty.
  pub(super) occupied: [u128; LEVELS],
  /// The wheel's cursor. Invariants: every non-empty bucket ends after
  /// `elapsed` (the cursor never passes a non-empty bucket), and a non-empty
  /// level-L bucket is one of the 128 starting at `elapsed >> 6L`. It moves
  /// only to the start of the bucket `expire` works on, or to `now` when
  /// nothing is due.
  pub(super) elapsed: u64,
}

impl Wheel {
  pub(super) fn new(elapsed: u64) -> Self {
    Self {
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
  pub(super) fn next_of(&self, links: &impl Links, i: u32) -> u32 {
    if i >= SENTINEL {
      self.sentinels[(i - SENTINEL) as usize][1]
    } else {
      links.next(i)
    }
  }

  #[inline]
  fn prev_of(&self, links: &impl Links, i: u32) -> u32 {
    if i >= SENTINEL {
      self.sentinels[(i - SENTINEL) as usize][0]
    } else {
      links.prev(i)
    }
  }

  #[inline]
  fn set_next(&mut self, links: &mut impl Links, i: u32, n: u32) {
    if i >= SENTINEL {
      self.sentinels[(i - SENTINEL) as usize][1] = n;
    } else {
      links.set_next(i, n);
    }
  }

  #[inline]
  fn set_prev(&mut self, links: &mut impl Links, i: u32, p: u32) {
    if i >= SENTINEL {
      self.sentinels[(i - SENTINEL) as usize][0] = p;
    } else {
      links.set_prev(i, p);
    }
  }

  /// Appends slot `i` to bucket `b`.
  #[inline]
  fn link_tail(&mut self, links: &mut impl Links, i: u32, b: usize) {
    let s = SENTINEL + b as u32;
    let tail = self.prev_of(links, s);
    self.set_next(links, tail, i);
    self.set_prev(links, i, tail);
    self.set_next(links, i, s);
    self.set_prev(links, s, i);
    self.occupied[b / RING] |= 1 << (b % RING);
  }

  /// Unlinks slot `i` from whatever bucket it is in.
  #[inline]
  pub(super) fn unlink(&mut self, links: &mut impl Links, i: u32) {
    let p = self.prev_of(links, i);
    let n = self.next_of(links, i);
    self.set_next(links, p, n);
    self.set_prev(links, n, p);
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
  pub(super) fn place(&mut self, links: &mut impl Links, i: u32, deadline: u64) -> u64 {
    let when = deadline.clamp(self.elapsed, MAX_T);
    let level = level_for(self.elapsed, when);
    self.link_tail(links, i, bucket_of(level, when));
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
  pub(super) fn next_bucket(&self) -> Option<Bucket> {
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
  pub(super) fn due_bucket(&self, now: u64) -> Option<Bucket> {
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
  pub(super) fn cascade_bucket(&self, now: u64) -> Option<Bucket> {
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
  pub(super) fn lower_bound(&self) -> u64 {
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

  /// The first slot of bucket `b`, if it is not empty.
  #[inline]
  pub(super) fn first_in(&self, b: usize) -> Option<u32> {
    let i = self.sentinels[b][1];
    (i < SENTINEL).then_some(i)
  }

  /// Heap bytes of the wheel (its sentinels).
  pub(super) fn memory_bytes(&self) -> usize {
    self.sentinels.len() * std::mem::size_of::<[u32; 2]>()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

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
}
