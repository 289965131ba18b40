//! One shard seen through the validated [`Layout`]: typed access to its
//! header, index cells and ring, and the lock-free read side — the
//! optimistic probe and the shard snapshot — which the caller validates with
//! the shard's sequence counter (copy, then validate).
//!
//! Nothing read here is trusted: every offset taken from a cell or a record
//! is checked against the ring before it is used, every walk is bounded, and
//! an inconsistent view is reported as [`Torn`] (a concurrent writer, so
//! retry; or damage, which a locked caller repairs).

use std::sync::atomic::Ordering::*;

use crate::layout::*;
pub(crate) use crate::mem::Mem;
use crate::mem::{Shared32, Shared64};
use crate::ring::{self, Rec, REC_LIVE};
use crate::value::is_bytes_tag;

/// An inconsistent view: torn by a concurrent writer (optimistic readers
/// retry) or damaged memory (locked callers repair).
#[derive(Debug)]
pub(crate) struct Torn;

/// An entry copied out by `collect`: key, value tag, first value word, value bytes.
pub(crate) type RawEntry = (Vec<u8>, u32, u64, Vec<u8>);

/// What a probe found.
pub(crate) struct Hit {
  /// The cell that points at the entry (for the recency mark).
  pub cell: u32,
  pub tag: u32,
  /// First value word (the whole value for number/bigint/bool/null).
  pub word: u64,
  pub expires: u64,
}

#[derive(Clone, Copy)]
pub(crate) struct Shard<'a> {
  pub m: &'a Mem,
  pub l: &'a Layout,
  pub base: u64,
}

impl<'a> Shard<'a> {
  #[inline(always)]
  pub(crate) fn h64(&self, f: u64) -> &'a Shared64 {
    self.m.a64(self.base + f)
  }
  #[inline(always)]
  pub(crate) fn seq(&self) -> &'a Shared64 {
    self.h64(S_SEQ)
  }
  #[inline(always)]
  pub(crate) fn lock_ptr(&self) -> *mut u8 {
    self.m.ptr(self.base + S_LOCK)
  }

  // ---- the ring: word access at a ring offset ------------------------------

  /// The word at ring offset `off` (8-aligned, `< ring`; callers check).
  #[inline(always)]
  pub(crate) fn r64(&self, off: u64) -> &'a Shared64 {
    debug_assert!(off < self.l.ring && off.is_multiple_of(8));
    self.m.a64(self.base + self.l.ring_off + off)
  }
  #[inline(always)]
  pub(crate) fn r32(&self, off: u64) -> &'a Shared32 {
    debug_assert!(off < self.l.ring && off.is_multiple_of(4));
    self.m.a32(self.base + self.l.ring_off + off)
  }
  /// `off + delta` wrapped into the ring (`off < ring`, `delta ≤ ring`).
  #[inline(always)]
  pub(crate) fn wrap(&self, off: u64, delta: u64) -> u64 {
    let p = off + delta;
    if p >= self.l.ring {
      p - self.l.ring
    } else {
      p
    }
  }
  /// The ring offset of ring position `pos` (see `ring`).
  #[inline(always)]
  pub(crate) fn phys(&self, pos: u64) -> u64 {
    pos % self.l.ring
  }

  /// Copies `len` bytes starting at ring offset `off` (wrapping at the
  /// ring's end) into `out`, with relaxed word loads: at most two runs of
  /// consecutive words.
  pub(crate) fn copy_out(&self, off: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    let words = len.div_ceil(8);
    out.resize(words * 8, 0);
    let first = (((self.l.ring - off) / 8) as usize).min(words);
    let (a, b) = out.split_at_mut(first * 8);
    let base = self.base + self.l.ring_off;
    for (i, chunk) in a.chunks_exact_mut(8).enumerate() {
      let w = self.m.a64(base + off + 8 * i as u64).load(Relaxed);
      chunk.copy_from_slice(&w.to_le_bytes());
    }
    for (i, chunk) in b.chunks_exact_mut(8).enumerate() {
      let w = self.m.a64(base + 8 * i as u64).load(Relaxed);
      chunk.copy_from_slice(&w.to_le_bytes());
    }
    out.truncate(len);
  }

  /// Stores `bytes` at ring offset `off` word by word (wrapping), the last
  /// word zero-padded.
  pub(crate) fn copy_in(&self, off: u64, bytes: &[u8]) {
    let mut chunks = bytes.chunks_exact(8);
    let mut p = off;
    for c in &mut chunks {
      self
        .r64(p)
        .store(u64::from_le_bytes(c.try_into().unwrap()), Relaxed);
      p = self.wrap(p, 8);
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
      let mut b = [0u8; 8];
      b[..rem.len()].copy_from_slice(rem);
      self.r64(p).store(u64::from_le_bytes(b), Relaxed);
    }
  }

  /// Compares `bytes` with the bytes stored at ring offset `off`.
  pub(crate) fn bytes_eq(&self, off: u64, bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    let mut p = off;
    for c in &mut chunks {
      if self.r64(p).load(Relaxed) != u64::from_le_bytes(c.try_into().unwrap()) {
        return false;
      }
      p = self.wrap(p, 8);
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
      let mut b = [0u8; 8];
      b[..rem.len()].copy_from_slice(rem);
      let mask = u64::MAX >> (64 - 8 * rem.len());
      if self.r64(p).load(Relaxed) & mask != u64::from_le_bytes(b) {
        return false;
      }
    }
    true
  }

  pub(crate) fn read_key(&self, r: &Rec, out: &mut Vec<u8>) {
    self.copy_out(r.key_off(self), r.key_len as usize, out);
  }

  /// The value of entry `r`: its first word, and for the byte variants its
  /// bytes copied into `out`.
  pub(crate) fn read_value(&self, r: &Rec, out: &mut Vec<u8>) -> u64 {
    let off = r.value_off(self);
    if is_bytes_tag(r.tag) {
      self.copy_out(off, r.value_len as usize, out);
    }
    self.r64(off).load(Relaxed)
  }

  // ---- lookups ----------------------------------------------------------------

  /// Starts loading the cell a lookup of `h` reads first (batched reads).
  #[inline(always)]
  pub(crate) fn prefetch_lookup(&self, h: u64) {
    self.m.prefetch(self.cell_addr(self.l.home_of(h)));
  }

  /// Starts loading the record `h`'s home cell points at, if the cell is
  /// `h`'s (batched reads, once the cell has arrived; a racy read is fine:
  /// a prefetch is only a hint).
  #[inline(always)]
  pub(crate) fn prefetch_record(&self, h: u64) {
    let cell = self.cell(self.l.home_of(h));
    if cell.hash32() == h as u32 {
      if let Some(off) = cell.off(self.l) {
        self.m.prefetch(self.base + self.l.ring_off + off);
      }
    }
  }

  /// Finds the live entry of `key` (hash `h`): its cell and record. Safe to
  /// run without the lock: offsets are validated, the probe is bounded, so a
  /// torn or damaged view yields `Err(Torn)` or an answer the caller's
  /// seqlock check rejects, never an out-of-bounds access or an endless loop.
  #[inline]
  pub(crate) fn find_entry(&self, h: u64, key: &[u8]) -> Result<Option<(u32, Rec)>, Torn> {
    let mut c = self.l.home_of(h);
    for _ in 0..self.l.cells {
      let cell = self.cell(c);
      if cell.is_empty() {
        return Ok(None);
      }
      // Every cell on the way must point into the ring: a damaged one is
      // noticed (and repaired by a locked caller) even when it is not ours.
      let off = cell.off(self.l).ok_or(Torn)?;
      if cell.hash32() == h as u32 {
        // A record's header, key and first value words usually span two
        // cache lines: ask for the second while the first is loaded.
        self
          .m
          .prefetch(self.base + self.l.ring_off + self.wrap(off, 64));
        let r = ring::entry_at(self, off)?;
        if r.state != REC_LIVE {
          return Err(Torn);
        }
        if r.key_len as usize == key.len() && self.bytes_eq(r.key_off(self), key) {
          return Ok(Some((c, r)));
        }
      }
      c = self.next_cell(c);
    }
    Err(Torn)
  }

  /// The optimistic read: finds `key` and copies its value (`copy`: the
  /// bytes of byte variants into `buf`).
  #[inline]
  pub(crate) fn probe(
    &self,
    h: u64,
    key: &[u8],
    copy: bool,
    buf: &mut Vec<u8>,
  ) -> Result<Option<Hit>, Torn> {
    let Some((cell, r)) = self.find_entry(h, key)? else {
      return Ok(None);
    };
    let word = if copy {
      self.read_value(&r, buf)
    } else {
      self.r64(r.value_off(self)).load(Relaxed)
    };
    Ok(Some(Hit {
      cell,
      tag: r.tag,
      word,
      expires: r.expires,
    }))
  }

  /// Copies the shard's live entries, newest first, skipping expired ones.
  pub(crate) fn collect(&self, now: u64, values: bool) -> Result<Vec<RawEntry>, Torn> {
    let mut out = self.collect_with(now, values, |e, _| e)?;
    out.reverse();
    Ok(out)
  }

  /// Copies the shard's live entries with their expiry (ms since the epoch,
  /// 0 = none), **oldest first** (ring order), skipping expired ones: what a
  /// dump writes, so that loading it back in order leaves the newest entries
  /// the most recently written.
  pub(crate) fn collect_timed(&self, now: u64) -> Result<Vec<(RawEntry, u64)>, Torn> {
    self.collect_with(now, true, |e, expires| (e, expires))
  }

  /// The walk of `collect`/`collect_timed`: the live, unexpired entries from
  /// the ring's tail to its head, each made into a `T` by `f(entry, expiry)`.
  fn collect_with<T>(
    &self,
    now: u64,
    values: bool,
    f: impl Fn(RawEntry, u64) -> T,
  ) -> Result<Vec<T>, Torn> {
    let mut out = Vec::new();
    let (tail, head) = ring::bounds(self).ok_or(Torn)?;
    let mut pos = tail;
    let mut steps = 0u64;
    while pos < head {
      steps += 1;
      if steps > self.l.ring / 8 {
        return Err(Torn);
      }
      let off = self.phys(pos);
      let (state, len) = ring::state_len(self, off, head - pos).ok_or(Torn)?;
      if state == REC_LIVE {
        let r = ring::entry_at(self, off)?;
        if !expired(r.expires, now) {
          let mut k = Vec::new();
          self.read_key(&r, &mut k);
          let mut v = Vec::new();
          let (tag, word) = if values {
            (r.tag, self.read_value(&r, &mut v))
          } else {
            (0, 0)
          };
          out.push(f((k, tag, word, v), r.expires));
        }
      }
      pos += len;
    }
    Ok(out)
  }

  /// Initialises a fresh (zeroed) shard: its lock. Zeroed cells are empty
  /// and an empty ring (head = tail = 0) needs no stores.
  pub(crate) fn init(&self) -> Result<(), crate::Error> {
    // SAFETY: the shard's 64 lock bytes are inside the mapping, 64-aligned,
    // and no process uses them yet (the segment is not READY).
    unsafe { crate::lock::init(self.lock_ptr()) }.map_err(|e| {
      crate::error::eio(format!(
        "pthread_mutex_init: {}",
        std::io::Error::from_raw_os_error(e)
      ))
    })?;
    self.h64(S_NEXT_EXPIRY).store(u64::MAX, Relaxed);
    Ok(())
  }
}

#[inline(always)]
pub(crate) fn expired(expires: u64, now: u64) -> bool {
  expires != 0 && now >= expires
}
