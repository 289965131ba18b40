//! The locked writer: [`Guard`] holds a shard's lock and performs every
//! mutation, inside the shard's seqlock (odd while it writes).
//!
//! Invariant kept by every mutation (what makes repair possible): a record's
//! `state` alone says whether it holds a live entry, and an entry is
//! complete before it becomes LIVE. A new entry (insert, update, move) is
//! written while WRITING, the head is published, its cell is pointed at it,
//! it is marked LIVE, and only then is a replaced copy marked DEAD. A removed
//! entry is marked DEAD before its cell is emptied. The index, `len`, the
//! byte counts and the next expiry are derived data that repair rebuilds
//! from the records between the tail and the head.

use std::sync::atomic::{fence, Ordering::*};

use crate::error::Error;
use crate::index::Cell;
use crate::layout::*;
use crate::reader::{expired, Shard, Torn};
use crate::ring::{Rec, REC_LIVE};
use crate::value::{Encoded, TAG_BIGINT, TAG_BOOL, TAG_NULL, TAG_NUMBER};

/// A failure inside a locked operation.
pub(crate) enum Fault {
  /// The shard's structures are inconsistent: repair and retry.
  Corrupt(&'static str),
  /// A user-facing error, raised while the shard is consistent.
  Err(Error),
}

impl From<Torn> for Fault {
  fn from(_: Torn) -> Fault {
    Fault::Corrupt("inconsistent record")
  }
}

/// A live entry found under the lock: its cell and record.
#[derive(Clone, Copy)]
pub(crate) struct Found {
  pub cell: u32,
  pub rec: Rec,
}

/// Holds a shard's lock. Every mutation goes through it; the first mutation
/// makes the sequence odd ([`Guard::begin`]) and [`Guard::end`] makes it even
/// again. Dropping an unfinished guard (a panic) repairs the shard before
/// unlocking.
pub(crate) struct Guard<'a> {
  pub s: Shard<'a>,
  open: bool,
  pub now: u64,
  /// The lock word this process acquired with (lease lock).
  me: u64,
}

impl Drop for Guard<'_> {
  fn drop(&mut self) {
    if self.open {
      self.repair();
    }
    // SAFETY: a Guard exists only while this thread holds the shard lock.
    unsafe { crate::lock::release(self.s.lock_ptr(), self.me) };
  }
}

impl<'a> Guard<'a> {
  /// # Safety
  /// The calling thread holds the lock of shard `s`.
  pub(crate) unsafe fn new(s: Shard<'a>, now: u64, me: u64) -> Self {
    Guard {
      s,
      open: false,
      now,
      me,
    }
  }

  #[inline]
  pub(crate) fn begin(&mut self) {
    if !self.open {
      let q = self.s.seq().load(Relaxed);
      self.s.seq().store(q | 1, Relaxed);
      // Orders the odd sequence before every data store below (seqlock
      // writer side, Boehm 2012 "Can seqlocks get along with programming
      // language memory models?").
      fence(Release);
      self.open = true;
    }
  }

  #[inline]
  pub(crate) fn end(&mut self) {
    if self.open {
      let q = self.s.seq().load(Relaxed);
      self.s.seq().store((q | 1).wrapping_add(1), Release);
      self.open = false;
    }
  }

  pub(crate) fn stat(&self, field: u64, n: u64) {
    self.s.h64(field).fetch_add(n, Relaxed);
  }

  pub(crate) fn len(&self) -> u64 {
    self.s.h64(S_LEN).load(Relaxed)
  }

  /// The version of the next record written (the shard's write sequence,
  /// plus one).
  pub(crate) fn next_version(&mut self) -> Result<u64, Fault> {
    let v = self.s.h64(S_WRITE_SEQ).load(Relaxed).wrapping_add(1);
    if v == 0 || v >= crate::ring::MAX_VERSION {
      return Err(Fault::Corrupt("write sequence out of range"));
    }
    self.begin();
    self.s.h64(S_WRITE_SEQ).store(v, Relaxed);
    Ok(v)
  }

  pub(crate) fn is_expired(&self, f: &Found) -> bool {
    expired(f.rec.expires, self.now)
  }

  /// Finds the live entry of `key` (hash `h`).
  pub(crate) fn find(&self, h: u64, key: &[u8]) -> Result<Option<Found>, Fault> {
    Ok(
      self
        .s
        .find_entry(h, key)
        .map_err(|_| Fault::Corrupt("index or record damaged"))?
        .map(|(cell, rec)| Found { cell, rec }),
    )
  }

  /// Stores (`key`, `v`) whether or not it is present: finds it again after
  /// making room (making room may move or evict any entry, this one too).
  /// Returns the entry it replaced, if any (as it was before).
  pub(crate) fn put(
    &mut self,
    h: u64,
    key: &[u8],
    v: &Encoded<'_>,
    expires: u64,
  ) -> Result<Option<Found>, Fault> {
    let need = record_bytes(key.len() as u32, v.len());
    let found = self.find(h, key)?;
    let before = (self.s.h64(S_TAIL).load(Relaxed), self.len());
    self.make_room(need, found.is_none())?;
    // Making room moves the tail (and cells, records) or drops entries; if
    // it did neither, what was found still stands.
    let old = if (self.s.h64(S_TAIL).load(Relaxed), self.len()) == before {
      found
    } else {
      self.find(h, key)?
    };
    let r = self.append(key, v, expires)?;
    hook!(SET_WRITING);
    match old {
      Some(f) => {
        self
          .s
          .cell_word(f.cell)
          .store(Cell::new(h, r.off).0, Relaxed);
        self
          .s
          .access_word(f.cell)
          .store(self.now & ACCESS_MS, Relaxed);
        self.set_rec_state(&r, REC_LIVE);
        hook!(SET_LINKED);
        self.set_rec_state(&f.rec, crate::ring::REC_DEAD);
        let s = self.s;
        let adj = |field: u64, add: u64, sub: u64| {
          s.h64(field).store(
            s.h64(field)
              .load(Relaxed)
              .saturating_add(add)
              .saturating_sub(sub),
            Relaxed,
          )
        };
        adj(S_LIVE_BYTES, r.payload(), f.rec.payload());
        adj(S_LIVE_RECORD_BYTES, r.len, f.rec.len);
      }
      None => {
        self
          .s
          .cell_insert(h, r.off, self.now & ACCESS_MS)
          .ok_or(Fault::Corrupt("index full"))?;
        self.set_rec_state(&r, REC_LIVE);
        self.count_entry(&r);
      }
    }
    Ok(old)
  }

  /// Removes live entry `f`.
  pub(crate) fn remove(&mut self, f: Found) {
    self.set_rec_state(&f.rec, crate::ring::REC_DEAD);
    hook!(DELETE_MARKED);
    let s = self.s;
    s.cell_remove(f.cell);
    s.h64(S_LEN)
      .store(s.h64(S_LEN).load(Relaxed).saturating_sub(1), Relaxed);
    let sub = |field: u64, n: u64| {
      s.h64(field)
        .store(s.h64(field).load(Relaxed).saturating_sub(n), Relaxed)
    };
    sub(S_LIVE_BYTES, f.rec.payload());
    sub(S_LIVE_RECORD_BYTES, f.rec.len);
  }

  /// Stores the 8-byte value of number/bigint entry `f` in place (one
  /// atomic store: a crash leaves the old or the new value, never a mix) and
  /// stamps its access time.
  pub(crate) fn store_word(&mut self, f: &Found, w: u64) {
    self.begin();
    // Written in place: recently used, like a read.
    self
      .s
      .access_word(f.cell)
      .store((self.now & ACCESS_MS) | ACCESS_REF, Relaxed);
    hook!(INCR);
    self.s.r64(f.rec.value_off(&self.s)).store(w, Relaxed);
  }

  /// The current value word of entry `f`.
  pub(crate) fn value_word(&self, f: &Found) -> u64 {
    self.s.r64(f.rec.value_off(&self.s)).load(Relaxed)
  }

  /// Removes every expired entry (a walk of the ring); recomputes the next
  /// expiry. Adds each removal to `removed` (and to the stats) as it
  /// happens, so a count survives a fault and repair half-way.
  pub(crate) fn scan_expired(&mut self, removed: &mut u64) -> Result<(), Fault> {
    let (tail, head) = self.ring_bounds()?;
    let s = self.s;
    let mut next = u64::MAX;
    let mut pos = tail;
    while pos < head {
      let off = s.phys(pos);
      let (state, len) = crate::ring::state_len(&s, off, head - pos)
        .ok_or(Fault::Corrupt("bad record in the ring"))?;
      if state == REC_LIVE {
        let r = crate::ring::entry_at(&s, off)?;
        if expired(r.expires, self.now) {
          let cell = self.cell_of_rec(&r)?;
          self.remove(Found { cell, rec: r });
          self.stat(S_EXPIRATIONS, 1);
          *removed += 1;
        } else if r.expires != 0 {
          next = next.min(r.expires);
        }
      }
      pos += len;
    }
    self.begin();
    s.h64(S_NEXT_EXPIRY).store(next, Relaxed);
    s.h64(S_LAST_SCAN).store(self.now, Relaxed);
    Ok(())
  }

  /// `purge_expired`: a scan when some entry may have expired.
  pub(crate) fn purge_expired(&mut self, removed: &mut u64) -> Result<(), Fault> {
    if self.now < self.s.h64(S_NEXT_EXPIRY).load(Relaxed) {
      return Ok(());
    }
    self.scan_expired(removed)
  }

  /// Before a `None` map refuses a write: reclaim expired entries if any may
  /// have expired.
  pub(crate) fn reclaim_expired_if_due(&mut self) -> Result<(), Fault> {
    self.purge_expired(&mut 0)
  }

  /// Evicts entries last accessed before `cutoff` (oldest first) until
  /// `done` reaches `budget`, adding each eviction to `done` as it happens
  /// (so a retry after a repair continues the count instead of restarting it).
  pub(crate) fn evict_older_than(
    &mut self,
    cutoff: u64,
    budget: u64,
    done: &mut u64,
  ) -> Result<(), Fault> {
    if *done >= budget {
      return Ok(());
    }
    let s = self.s;
    let mut cands = Vec::new();
    for c in 0..s.l.cells {
      if !s.cell(c).is_empty() {
        let a = s.access_word(c).load(Relaxed) & ACCESS_MS;
        if a < cutoff {
          cands.push((a, s.cell(c)));
        }
      }
    }
    cands.sort_unstable_by_key(|c| (c.0, c.1 .0));
    for (_, cell) in cands {
      if *done >= budget {
        break;
      }
      // Cells shift as entries are removed: find this one again.
      let off = cell
        .off(s.l)
        .ok_or(Fault::Corrupt("cell offset out of range"))?;
      let c = s
        .cell_of(cell.hash32() as u64, off)
        .ok_or(Fault::Corrupt("cell lost during eviction"))?;
      let rec = crate::ring::entry_at(&s, off)?;
      if rec.state != REC_LIVE {
        return Err(Fault::Corrupt("cell points at a record that is not live"));
      }
      self.remove(Found { cell: c, rec });
      self.stat(S_EVICT_MANUAL, 1);
      *done += 1;
    }
    Ok(())
  }

  /// Removes every entry (`clear`): empties the ring first (one store, so a
  /// crash leaves nothing for repair to bring back), then the index.
  pub(crate) fn clear(&mut self) -> Result<(), Fault> {
    let (_, head) = self.ring_bounds()?;
    self.begin();
    let s = self.s;
    s.h64(S_TAIL).store(head, Relaxed);
    hook!(CLEAR);
    s.cells_clear();
    s.h64(S_LEN).store(0, Relaxed);
    s.h64(S_LIVE_BYTES).store(0, Relaxed);
    s.h64(S_LIVE_RECORD_BYTES).store(0, Relaxed);
    s.h64(S_NEXT_EXPIRY).store(u64::MAX, Relaxed);
    Ok(())
  }

  /// Whether the value of entry `f` equals `v` (numbers compare as f64).
  pub(crate) fn value_equals(&self, f: &Found, v: &Encoded<'_>) -> bool {
    let r = &f.rec;
    if r.tag != v.tag() || r.value_len != v.len() {
      return false;
    }
    let word = self.value_word(f);
    match v {
      Encoded::Word(TAG_NUMBER, _, w) => f64::from_bits(word) == f64::from_bits(*w),
      Encoded::Word(TAG_BIGINT, _, w) => word == *w,
      Encoded::Word(TAG_BOOL, _, w) => (word & 0xff != 0) == (*w != 0),
      Encoded::Word(TAG_NULL, _, _) => true,
      Encoded::Word(..) => false,
      Encoded::Bytes(_, b) => self.s.bytes_eq(r.value_off(&self.s), b),
    }
  }
}
