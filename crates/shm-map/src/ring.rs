//! The ring: each shard's entries as variable-size records in one circular
//! byte region, appended at the head and reclaimed at the tail.
//!
//! # Positions
//!
//! `head` and `tail` (shard header) are *positions*: byte counts that only
//! grow (2^64 bytes never wrap in practice). A position's ring offset is
//! `pos % ring`; the live region is `[tail, head)`, so `head - tail ≤ ring`
//! bytes are in use and the rest is free. A record may wrap around the
//! ring's end (every word stays whole: offsets are multiples of 8 and the
//! ring a multiple of 64), so there is no padding and no fragmentation
//! inside the ring: any record up to the free bytes fits.
//!
//! # Records
//!
//! ```text
//! 0  u32 state      LIVE 1 | WRITING 2 | DEAD 3
//! 4  u32 len        record bytes, a multiple of 8
//! 8  u32 key_len    16 u32 tag          24 u64 version
//! 12 u32 value_len  20 u32 check        32 u64 expires (ms, 0 = never)
//! 40 key (padded to 8), value (padded to 8, at least one word)
//! ```
//!
//! `check` is 32 bits of xxh3 over the header fields from `len` to
//! `expires` (not `state`, which changes): repair uses it to recognise a
//! record header when it must resynchronise after damage. A DEAD record
//! needs only its first word (repair writes 8-byte DEAD fillers over bytes
//! it cannot parse). `version` is the shard's write sequence: when a crash
//! leaves two LIVE copies of a key, the higher version wins.
//!
//! # Allocation and eviction
//!
//! A write of `need` bytes first makes room: while fewer than `need` bytes
//! are free it reclaims the record at the tail — a DEAD record is skipped, an
//! expired one dropped, and a live one (eviction `Lru`) gets a *second
//! chance* if it was read since it was written or last moved (its cell's
//! READ bit; it is copied to the head with the bit cleared, at most
//! [`MOVES_PER_WRITE`] per write) or is evicted. This is FIFO with
//! reinsertion, which approximates LRU the way CLOCK does. Each step frees
//! at least one record's bytes or uses up a move, so a write does work
//! proportional to its own size, never to the map.
//!
//! Eviction `None` never evicts: a write is refused (`EFULL`) unless the
//! live records, the new one and a *reserve* (the largest record the map
//! accepts) fit in the ring. The reserve is free space that is always there
//! between writes, so a live record at the tail can always be moved to the
//! head, and the garbage behind it (deleted and replaced entries) reclaimed.
//!
//! Waste: a record rounds its key and value up to 8 bytes and adds a
//! 40-byte header; garbage from deletes and updates lives until the tail
//! passes it. A change in the size mix needs nothing: big and small records
//! share one ring, and the tail reclaims whatever it reaches.

use std::sync::atomic::Ordering::*;

use crate::layout::*;
use crate::reader::{expired, Shard, Torn};
use crate::value::{valid_tag_len, Encoded};
use crate::writer::{Fault, Guard};

pub(crate) const REC_HEADER: u64 = 40;
pub(crate) const R_STATE: u64 = 0;
pub(crate) const R_LEN: u64 = 4;
pub(crate) const R_KEY_LEN: u64 = 8;
pub(crate) const R_VALUE_LEN: u64 = 12;
pub(crate) const R_TAG: u64 = 16;
pub(crate) const R_CHECK: u64 = 20;
pub(crate) const R_VERSION: u64 = 24;
pub(crate) const R_EXPIRES: u64 = 32;

pub(crate) const REC_LIVE: u32 = 1;
pub(crate) const REC_WRITING: u32 = 2;
pub(crate) const REC_DEAD: u32 = 3;

/// Versions stay below this (2^62 writes to one shard take over a century
/// at a billion a second): a larger one is damage, and repair renews the
/// write sequence from the records' versions.
pub(crate) const MAX_VERSION: u64 = 1 << 62;

/// Second chances (records read since written, moved from the tail to the
/// head instead of evicted) per write.
pub(crate) const MOVES_PER_WRITE: u32 = 16;
/// Bytes of live records an `Lru` write may move to reclaim the garbage
/// behind them (at least; `8 × need` for larger writes: enough while live
/// records are at most 8/9 of what the tail passes), before it evicts.
pub(crate) const COMPACT_BYTES_PER_WRITE: u64 = 4096;

/// What one write may spend on moving records.
struct Budget {
  /// The bytes the write needs (0 when it needs an entry).
  need: u64,
  chances: u32,
  compact_bytes: u64,
}

/// A validated entry header at ring offset `off`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec {
  pub off: u64,
  pub len: u64,
  pub state: u32,
  pub key_len: u32,
  pub value_len: u32,
  pub tag: u32,
  pub check: u32,
  pub version: u64,
  pub expires: u64,
}

impl Rec {
  #[inline(always)]
  pub(crate) fn key_off(&self, s: &Shard<'_>) -> u64 {
    s.wrap(self.off, REC_HEADER)
  }
  #[inline(always)]
  pub(crate) fn value_off(&self, s: &Shard<'_>) -> u64 {
    s.wrap(self.off, REC_HEADER + round_up(self.key_len as u64, 8))
  }
  /// Key + value bytes (what `Stats::allocated_bytes` counts).
  #[inline(always)]
  pub(crate) fn payload(&self) -> u64 {
    self.key_len as u64 + self.value_len as u64
  }
  /// Whether `check` matches the other header fields.
  pub(crate) fn check_ok(&self) -> bool {
    self.check
      == check(
        self.len,
        self.key_len,
        self.value_len,
        self.tag,
        self.version,
        self.expires,
      )
  }
}

/// The `check` of a record header.
pub(crate) fn check(
  len: u64,
  key_len: u32,
  value_len: u32,
  tag: u32,
  version: u64,
  expires: u64,
) -> u32 {
  let mut b = [0u8; 32];
  b[0..4].copy_from_slice(&(len as u32).to_le_bytes());
  b[4..8].copy_from_slice(&key_len.to_le_bytes());
  b[8..12].copy_from_slice(&value_len.to_le_bytes());
  b[12..16].copy_from_slice(&tag.to_le_bytes());
  b[16..24].copy_from_slice(&version.to_le_bytes());
  b[24..32].copy_from_slice(&expires.to_le_bytes());
  xxhash_rust::xxh3::xxh3_64_with_seed(&b, CHECKSUM_SEED) as u32
}

/// `(tail, head)` if they are plausible (`tail ≤ head ≤ tail + ring`, both
/// multiples of 8).
#[inline]
pub(crate) fn bounds(s: &Shard<'_>) -> Option<(u64, u64)> {
  let tail = s.h64(S_TAIL).load(Relaxed);
  let head = s.h64(S_HEAD).load(Relaxed);
  (head >= tail && head - tail <= s.l.ring && (head | tail).is_multiple_of(8))
    .then_some((tail, head))
}

/// The state and length of the record at ring offset `off` (8-aligned,
/// `< ring`), if they are plausible for a record with at most `room` bytes
/// before the head.
#[inline]
pub(crate) fn state_len(s: &Shard<'_>, off: u64, room: u64) -> Option<(u32, u64)> {
  let state = s.r32(off + R_STATE).load(Relaxed);
  let len = s.r32(off + R_LEN).load(Relaxed) as u64;
  let min = if state == REC_DEAD { 8 } else { REC_HEADER };
  let ok = matches!(state, REC_LIVE | REC_WRITING | REC_DEAD)
    && len.is_multiple_of(8)
    && len >= min
    && len <= room;
  ok.then_some((state, len))
}

/// Reads and validates the entry header (LIVE, WRITING, or DEAD with a
/// header) at ring offset `off`: lengths within the map's limits and
/// consistent with the record length, a known tag.
#[inline]
pub(crate) fn entry_at(s: &Shard<'_>, off: u64) -> Result<Rec, Torn> {
  if off >= s.l.ring || !off.is_multiple_of(8) {
    return Err(Torn);
  }
  let w32 = |f: u64| s.r32(s.wrap(off, f)).load(Relaxed);
  let w64 = |f: u64| s.r64(s.wrap(off, f)).load(Relaxed);
  let r = Rec {
    off,
    state: w32(R_STATE),
    len: w32(R_LEN) as u64,
    key_len: w32(R_KEY_LEN),
    value_len: w32(R_VALUE_LEN),
    tag: w32(R_TAG),
    check: w32(R_CHECK),
    version: w64(R_VERSION),
    expires: w64(R_EXPIRES),
  };
  let ok = matches!(r.state, REC_LIVE | REC_WRITING | REC_DEAD)
    && r.key_len <= s.l.max_key
    && valid_tag_len(r.tag, r.value_len, s.l.max_value)
    && r.len == record_bytes(r.key_len, r.value_len)
    && r.len <= s.l.ring
    && r.version < MAX_VERSION;
  if ok {
    Ok(r)
  } else {
    Err(Torn)
  }
}

/// What reclaiming the tail record did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reclaimed {
  /// Skipped a DEAD record.
  Garbage,
  /// Dropped an expired entry.
  Expired,
  /// Moved a live entry to the head.
  Moved,
  /// Evicted a live entry.
  Evicted,
}

/// Why a write wants an entry evicted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
  /// `need` bytes free.
  Room,
  /// One entry fewer.
  Entry,
}

impl Guard<'_> {
  /// `(tail, head)`, or a fault if they are implausible.
  pub(crate) fn ring_bounds(&self) -> Result<(u64, u64), Fault> {
    bounds(&self.s).ok_or(Fault::Corrupt("ring head and tail disagree"))
  }

  /// Free bytes a write leaves, so that records at the tail can be moved:
  /// `None` maps keep the largest record they accept (any live record can
  /// move), `Lru` maps an eighth of the ring up to 8 KiB (larger records at
  /// the tail are evicted when there is no room to move them).
  pub(crate) fn reserve(&self) -> u64 {
    let l = self.s.l;
    match l.eviction {
      Eviction::None => record_bytes(l.max_key, l.max_value).min(l.ring / 2),
      Eviction::Lru => (l.ring / 8).min(8192) / 8 * 8,
    }
  }

  /// Writes a complete record for (`key`, `v`) at the head, leaving it
  /// WRITING, and publishes the new head. The caller made room.
  pub(crate) fn append(
    &mut self,
    key: &[u8],
    v: &Encoded<'_>,
    expires: u64,
  ) -> Result<crate::ring::Rec, Fault> {
    let (tail, head) = self.ring_bounds()?;
    let len = record_bytes(key.len() as u32, v.len());
    if self.s.l.ring - (head - tail) < len {
      return Err(Fault::Corrupt("no room made for a write"));
    }
    let version = self.next_version()?;
    let s = self.s;
    let off = s.phys(head);
    let r = Rec {
      off,
      len,
      state: REC_WRITING,
      key_len: key.len() as u32,
      value_len: v.len(),
      tag: v.tag(),
      check: check(len, key.len() as u32, v.len(), v.tag(), version, expires),
      version,
      expires,
    };
    self.begin();
    self.write_header(&r);
    s.copy_in(r.key_off(&s), key);
    let voff = r.value_off(&s);
    match v {
      // An empty value still has its word, zeroed, for the inline-word read.
      Encoded::Bytes(_, []) => s.r64(voff).store(0, Relaxed),
      Encoded::Bytes(_, b) => s.copy_in(voff, b),
      Encoded::Word(_, _, w) => s.r64(voff).store(*w, Relaxed),
    }
    s.h64(S_HEAD).store(head + len, Relaxed);
    if expires != 0 && expires < s.h64(S_NEXT_EXPIRY).load(Relaxed) {
      s.h64(S_NEXT_EXPIRY).store(expires, Relaxed);
    }
    Ok(r)
  }

  fn write_header(&mut self, r: &Rec) {
    let s = self.s;
    let w32 = |f: u64, v: u32| s.r32(s.wrap(r.off, f)).store(v, Relaxed);
    let w64 = |f: u64, v: u64| s.r64(s.wrap(r.off, f)).store(v, Relaxed);
    w32(R_STATE, r.state);
    w32(R_LEN, r.len as u32);
    w32(R_KEY_LEN, r.key_len);
    w32(R_VALUE_LEN, r.value_len);
    w32(R_TAG, r.tag);
    w32(R_CHECK, r.check);
    w64(R_VERSION, r.version);
    w64(R_EXPIRES, r.expires);
  }

  pub(crate) fn set_rec_state(&mut self, r: &Rec, state: u32) {
    self.begin();
    self.s.r32(r.off + R_STATE).store(state, Relaxed);
  }

  /// Makes `need` bytes free at the head (see the module docs), and with
  /// `new_entry` also room for one more entry in the index.
  pub(crate) fn make_room(&mut self, need: u64, new_entry: bool) -> Result<(), Fault> {
    let l = self.s.l;
    let none = l.eviction == Eviction::None;
    if self.len() > l.cap_per_shard as u64 {
      return Err(Fault::Corrupt("len over the entry cap"));
    }
    if new_entry && self.len() >= l.cap_per_shard as u64 {
      if none {
        self.reclaim_expired_if_due()?;
        if self.len() >= l.cap_per_shard as u64 {
          return Err(full(format!(
            "the shard for this key holds its most entries ({}) and eviction is 'none'",
            l.cap_per_shard
          )));
        }
      } else {
        self.evict_until(Want::Entry, 0)?;
      }
    }
    let reserve = self.reserve();
    if none {
      let live = self.s.h64(S_LIVE_RECORD_BYTES).load(Relaxed);
      if live > l.ring {
        return Err(Fault::Corrupt("live bytes over the ring size"));
      }
      if live + need + reserve > l.ring {
        self.reclaim_expired_if_due()?;
        let live = self.s.h64(S_LIVE_RECORD_BYTES).load(Relaxed).min(l.ring);
        if live + need + reserve > l.ring {
          return Err(full(format!(
            "the shard for this key has no room for {need} more bytes ({live} of {} in use, {reserve} kept free) and eviction is 'none'",
            l.ring
          )));
        }
      }
    }
    self.evict_until(Want::Room, need + reserve)
  }

  /// Reclaims tail records until `want` holds: `Room`: `need` bytes free;
  /// `Entry`: one entry dropped (evicted or expired).
  fn evict_until(&mut self, want: Want, need: u64) -> Result<(), Fault> {
    let none = self.s.l.eviction == Eviction::None;
    let mut b = Budget {
      need: if want == Want::Room { need } else { 0 },
      chances: if none { 0 } else { MOVES_PER_WRITE },
      compact_bytes: match (none, want) {
        (true, _) => u64::MAX,
        (false, Want::Room) => (8 * need).max(COMPACT_BYTES_PER_WRITE),
        (false, Want::Entry) => 0,
      },
    };
    // Bounded: each step frees a record or spends budget, and a `None` map
    // moves each live record at most once per pass over the ring.
    let limit = 2 * (self.s.l.ring / 48 + 2) + MOVES_PER_WRITE as u64;
    for _ in 0..limit {
      if want == Want::Room {
        let (tail, head) = self.ring_bounds()?;
        if self.s.l.ring - (head - tail) >= need {
          return Ok(());
        }
      }
      let reason = match want {
        Want::Room => S_EVICT_ROOM,
        Want::Entry => S_EVICT_CAPACITY,
      };
      match self.reclaim_tail(&mut b, reason)? {
        Reclaimed::Evicted | Reclaimed::Expired if want == Want::Entry => return Ok(()),
        _ => {}
      }
    }
    Err(Fault::Corrupt("making room did not end"))
  }

  /// Reclaims the record at the tail (see [`Reclaimed`]), spending from `b`;
  /// `reason`: the counter an eviction is added to.
  fn reclaim_tail(&mut self, b: &mut Budget, reason: u64) -> Result<Reclaimed, Fault> {
    let (tail, head) = self.ring_bounds()?;
    if tail == head {
      return Err(Fault::Corrupt("ring empty while making room"));
    }
    let s = self.s;
    let off = s.phys(tail);
    let (state, len) =
      state_len(&s, off, head - tail).ok_or(Fault::Corrupt("bad record at the tail"))?;
    if state == REC_DEAD {
      self.begin();
      s.h64(S_TAIL).store(tail + len, Relaxed);
      return Ok(Reclaimed::Garbage);
    }
    if state != REC_LIVE {
      return Err(Fault::Corrupt("record being written at the tail"));
    }
    let r = entry_at(&s, off)?;
    let cell = self.cell_of_rec(&r)?;
    if expired(r.expires, self.now) {
      self.remove(crate::writer::Found { cell, rec: r });
      self.stat(S_EXPIRATIONS, 1);
      self.advance_tail(tail + len);
      return Ok(Reclaimed::Expired);
    }
    let none = s.l.eviction == Eviction::None;
    let free = s.l.ring - (head - tail);
    let read = s.access_word(cell).load(Relaxed) & ACCESS_REF != 0;
    // Compaction: while the shard's live records leave room, a live record
    // at the tail moves to the head so the garbage behind it can be
    // reclaimed. Past that, a record read since it was written gets a second
    // chance; the others are evicted.
    let live = s.h64(S_LIVE_RECORD_BYTES).load(Relaxed);
    let roomy = none || live.saturating_add(b.need) <= s.l.ring / 8 * 7;
    let compact = roomy && b.compact_bytes >= r.len;
    let chance = read && b.chances > 0;
    if free >= r.len && (compact || chance) {
      if compact {
        b.compact_bytes -= r.len;
      } else {
        b.chances -= 1;
      }
      self.relocate(cell, &r)?;
      self.advance_tail(tail + len);
      self.stat(S_MOVES, 1);
      return Ok(Reclaimed::Moved);
    }
    if none {
      return Err(full(
        "no room can be made without evicting and eviction is 'none'".to_string(),
      ));
    }
    self.remove(crate::writer::Found { cell, rec: r });
    hook!(EVICT_MARKED);
    self.stat(reason, 1);
    self.advance_tail(tail + len);
    Ok(Reclaimed::Evicted)
  }

  fn advance_tail(&mut self, to: u64) {
    self.begin();
    self.s.h64(S_TAIL).store(to, Relaxed);
  }

  /// The cell pointing at live record `r`.
  pub(crate) fn cell_of_rec(&self, r: &Rec) -> Result<u32, Fault> {
    let mut key = Vec::new();
    self.s.read_key(r, &mut key);
    let h = self.s.l.hash(&key);
    self
      .s
      .cell_of(h, r.off)
      .ok_or(Fault::Corrupt("live record without a cell"))
  }

  /// Copies live record `r` (pointed at by `cell`) to the head with a new
  /// version, points the cell at the copy and clears its READ bit, then
  /// marks the old copy DEAD. The caller made room (`r.len` free bytes).
  fn relocate(&mut self, cell: u32, r: &Rec) -> Result<(), Fault> {
    let (tail, head) = self.ring_bounds()?;
    if self.s.l.ring - (head - tail) < r.len {
      return Err(Fault::Corrupt("no room to move a record"));
    }
    let version = self.next_version()?;
    let s = self.s;
    let n = Rec {
      off: s.phys(head),
      state: REC_WRITING,
      version,
      check: check(r.len, r.key_len, r.value_len, r.tag, version, r.expires),
      ..*r
    };
    self.begin();
    self.write_header(&n);
    let mut from = s.wrap(r.off, REC_HEADER);
    let mut to = s.wrap(n.off, REC_HEADER);
    for _ in 0..(r.len - REC_HEADER) / 8 {
      s.r64(to).store(s.r64(from).load(Relaxed), Relaxed);
      from = s.wrap(from, 8);
      to = s.wrap(to, 8);
    }
    s.h64(S_HEAD).store(head + r.len, Relaxed);
    let h = Cell::hash_of(&s, cell);
    s.cell_word(cell).store(Cell::new(h, n.off).0, Relaxed);
    let a = s.access_word(cell).load(Relaxed);
    s.access_word(cell).store(a & ACCESS_MS, Relaxed);
    self.set_rec_state(&n, REC_LIVE);
    self.set_rec_state(r, REC_DEAD);
    Ok(())
  }

  /// Accounts for a new live entry `r`.
  pub(crate) fn count_entry(&mut self, r: &Rec) {
    let s = self.s;
    let add = |f: u64, n: u64| {
      s.h64(f)
        .store(s.h64(f).load(Relaxed).saturating_add(n), Relaxed)
    };
    add(S_LEN, 1);
    add(S_LIVE_BYTES, r.payload());
    add(S_LIVE_RECORD_BYTES, r.len);
  }
}

use crate::index::Cell;

impl Cell {
  /// A hash whose low 32 bits are cell `c`'s (all a cell needs).
  pub(crate) fn hash_of(s: &Shard<'_>, c: u32) -> u64 {
    s.cell(c).hash32() as u64
  }
}

fn full(msg: String) -> Fault {
  Fault::Err(crate::Error::new("EFULL", msg))
}
