//! One shard: typed access to its header, buckets and slots; the optimistic
//! (seqlock) probe; the locked writer [`Guard`] with the mutation steps,
//! repair and verify.
//!
//! Invariant kept by every mutation (what makes repair possible): a slot's
//! `state` word alone says whether it holds a live entry. A new entry is
//! written completely while its slot is `WRITING`, then linked, then marked
//! `USED`; only after that is a replaced entry marked `FREE`. Buckets, chains,
//! the LRU list, the free list and `len` are derived data that repair rebuilds
//! from the states (keeping the higher `version` when two `USED` slots hold
//! the same key).

use std::collections::HashMap;
use std::sync::atomic::{fence, Ordering::*};

use crate::error::Error;
use crate::layout::*;
pub(crate) use crate::mem::Mem;
use crate::mem::{Shared32, Shared64};
use crate::value::{
  is_bytes_tag, valid_tag_len, Encoded, TAG_BIGINT, TAG_BOOL, TAG_NULL, TAG_NUMBER,
};

macro_rules! hook {
  ($p:ident) => {
    #[cfg(feature = "test-hooks")]
    crate::hooks::hit(crate::hooks::point::$p);
  };
}

/// A slot index proven `< layout.slots`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Idx(u32);

/// An inconsistent view: torn by a concurrent writer (optimistic readers
/// retry) or damaged memory (locked callers repair).
#[derive(Debug)]
pub(crate) struct Torn;

/// An entry copied out by `collect`: key, value tag, first value word, value bytes.
pub(crate) type RawEntry = (Vec<u8>, u32, u64, Vec<u8>);

/// What a probe found.
pub(crate) struct Hit {
  pub idx: Idx,
  pub tag: u32,
  /// First value word (the whole value for number/bigint/bool/null).
  pub word: u64,
  pub expires: u64,
}

#[derive(Clone, Copy)]
pub(crate) struct Shard<'a> {
  pub m: &'a Mem,
  pub l: &'a crate::layout::Layout,
  pub base: u64,
}

impl<'a> Shard<'a> {
  #[inline(always)]
  pub(crate) fn h32(&self, f: u64) -> &'a Shared32 {
    self.m.a32(self.base + f)
  }
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
  /// Validates an index read from shared memory.
  #[inline(always)]
  pub(crate) fn idx(&self, raw: u32) -> Option<Idx> {
    (raw < self.l.slots).then_some(Idx(raw))
  }
  #[inline(always)]
  fn bucket(&self, b: u32) -> &'a Shared32 {
    let b = b & (self.l.buckets - 1);
    self.m.a32(self.base + self.l.buckets_off + b as u64 * 4)
  }
  #[inline(always)]
  fn slot(&self, i: Idx) -> u64 {
    self.base + self.l.slots_off + i.0 as u64 * self.l.slot_size
  }
  #[inline(always)]
  pub(crate) fn s32(&self, i: Idx, f: u64) -> &'a Shared32 {
    self.m.a32(self.slot(i) + f)
  }
  #[inline(always)]
  pub(crate) fn s64(&self, i: Idx, f: u64) -> &'a Shared64 {
    self.m.a64(self.slot(i) + f)
  }
  #[inline(always)]
  fn key_off(&self, i: Idx) -> u64 {
    self.slot(i) + F_KEY
  }
  #[inline(always)]
  fn val_off(&self, i: Idx) -> u64 {
    self.slot(i) + F_KEY + self.l.key_area as u64
  }
  #[inline(always)]
  pub(crate) fn state(&self, i: Idx) -> u32 {
    self.s32(i, F_STATE).load(Relaxed)
  }
  #[inline(always)]
  pub(crate) fn val_word(&self, i: Idx) -> &'a Shared64 {
    self.m.a64(self.val_off(i))
  }

  /// Compares the stored key with `key` (`key.len()` ≤ `max_key`).
  #[inline]
  fn key_eq(&self, i: Idx, key: &[u8]) -> bool {
    words_eq(self.m, self.key_off(i), key)
  }

  /// Copies `len` bytes (≤ the area size) starting at `off` into `out`.
  #[inline]
  fn copy_out(&self, off: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(len);
    let mut w = 0u64;
    let mut left = len;
    while left >= 8 {
      out.extend_from_slice(&self.m.a64(off + w).load(Relaxed).to_le_bytes());
      w += 8;
      left -= 8;
    }
    if left > 0 {
      out.extend_from_slice(&self.m.a64(off + w).load(Relaxed).to_le_bytes()[..left]);
    }
  }

  /// Stores `bytes` at `off` word by word, zero-padding the last word.
  #[inline]
  fn copy_in(&self, off: u64, bytes: &[u8]) {
    let mut chunks = bytes.chunks_exact(8);
    let mut w = 0u64;
    for c in &mut chunks {
      self
        .m
        .a64(off + w)
        .store(u64::from_le_bytes(c.try_into().unwrap()), Relaxed);
      w += 8;
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
      let mut b = [0u8; 8];
      b[..rem.len()].copy_from_slice(rem);
      self.m.a64(off + w).store(u64::from_le_bytes(b), Relaxed);
    }
  }

  pub(crate) fn read_key(&self, i: Idx, out: &mut Vec<u8>) -> Result<(), Torn> {
    let kl = self.s32(i, F_KEY_LEN).load(Relaxed);
    if kl > self.l.max_key {
      return Err(Torn);
    }
    self.copy_out(self.key_off(i), kl as usize, out);
    Ok(())
  }

  /// Reads a stored value: validated tag, first word, and (for byte
  /// variants) the bytes into `out`.
  pub(crate) fn read_value(&self, i: Idx, out: &mut Vec<u8>) -> Result<(u32, u64), Torn> {
    let tag = self.s32(i, F_TAG).load(Relaxed);
    let vlen = self.s32(i, F_VALUE_LEN).load(Relaxed);
    if !valid_tag_len(tag, vlen, self.l.max_value) {
      return Err(Torn);
    }
    let word = self.val_word(i).load(Relaxed);
    if is_bytes_tag(tag) {
      self.copy_out(self.val_off(i), vlen as usize, out);
    }
    Ok((tag, word))
  }

  /// Starts loading `h`'s home slot (its header and key lines) alongside the
  /// bucket, so the two cache misses of a lookup overlap when the entry
  /// lives in its home slot, as most do.
  #[inline(always)]
  pub(crate) fn prefetch_home(&self, h: u64) {
    let home = self.slot(Idx(self.l.home_of(h)));
    self.m.prefetch(home);
    self.m.prefetch(home + F_KEY);
  }

  /// Starts loading everything a lookup of `h` reads first: its bucket
  /// and its home slot (for batched reads).
  #[inline(always)]
  pub(crate) fn prefetch_lookup(&self, h: u64) {
    let b = self.l.bucket_of(h) & (self.l.buckets - 1);
    self
      .m
      .prefetch(self.base + self.l.buckets_off + b as u64 * 4);
    self.prefetch_home(h);
  }

  /// Looks `key` (hash `h`) up in its chain. Safe to run without the lock:
  /// every index is range-checked and the walk is bounded, so a torn or
  /// damaged view yields `Err(Torn)` or a wrong answer the caller's seqlock
  /// check rejects, never an out-of-bounds access or an endless loop.
  #[inline]
  pub(crate) fn probe(
    &self,
    h: u64,
    key: &[u8],
    copy: bool,
    buf: &mut Vec<u8>,
  ) -> Result<Option<Hit>, Torn> {
    self.prefetch_home(h);
    let mut raw = self.bucket(self.l.bucket_of(h)).load(Relaxed);
    let mut steps = 0u32;
    while raw != EMPTY {
      let i = self.idx(raw).ok_or(Torn)?;
      steps += 1;
      if steps > self.l.slots {
        return Err(Torn);
      }
      if self.s64(i, F_HASH).load(Relaxed) == h
        && self.state(i) == STATE_USED
        && self.s32(i, F_KEY_LEN).load(Relaxed) as usize == key.len()
        && self.key_eq(i, key)
      {
        let (tag, word) = if copy {
          self.read_value(i, buf)?
        } else {
          let tag = self.s32(i, F_TAG).load(Relaxed);
          let vlen = self.s32(i, F_VALUE_LEN).load(Relaxed);
          if !valid_tag_len(tag, vlen, self.l.max_value) {
            return Err(Torn);
          }
          (tag, self.val_word(i).load(Relaxed))
        };
        let expires = self.s64(i, F_EXPIRES).load(Relaxed);
        return Ok(Some(Hit {
          idx: i,
          tag,
          word,
          expires,
        }));
      }
      raw = self.s32(i, F_NEXT).load(Relaxed);
    }
    Ok(None)
  }

  /// Copies the shard's live entries (MRU first), skipping expired ones.
  pub(crate) fn collect(&self, now: u64, values: bool) -> Result<Vec<RawEntry>, Torn> {
    let mut out = Vec::new();
    let mut raw = self.h32(S_LRU_HEAD).load(Relaxed);
    let mut steps = 0u32;
    while raw != EMPTY {
      let i = self.idx(raw).ok_or(Torn)?;
      steps += 1;
      if steps > self.l.slots {
        return Err(Torn);
      }
      if self.state(i) != STATE_USED {
        return Err(Torn);
      }
      if !expired(self.s64(i, F_EXPIRES).load(Relaxed), now) {
        let mut k = Vec::new();
        self.read_key(i, &mut k)?;
        let mut v = Vec::new();
        let (tag, word) = if values {
          self.read_value(i, &mut v)?
        } else {
          (0, 0)
        };
        out.push((k, tag, word, v));
      }
      raw = self.s32(i, F_LNEXT).load(Relaxed);
    }
    Ok(out)
  }

  /// Initialises a fresh (zeroed) shard: lock, empty buckets, every slot on
  /// the free list.
  pub(crate) fn init(&self) -> Result<(), Error> {
    // SAFETY: the shard's 64 lock bytes are inside the mapping, 64-aligned,
    // and no process uses them yet (the segment is not READY).
    unsafe { crate::lock::init(self.lock_ptr()) }.map_err(|e| {
      crate::error::eio(format!(
        "pthread_mutex_init: {}",
        std::io::Error::from_raw_os_error(e)
      ))
    })?;
    for b in 0..self.l.buckets {
      self.bucket(b).store(EMPTY, Relaxed);
    }
    for raw in 0..self.l.slots {
      let i = Idx(raw);
      self.s32(i, F_STATE).store(STATE_FREE, Relaxed);
      self.s32(i, F_NEXT).store(
        if raw + 1 < self.l.slots {
          raw + 1
        } else {
          EMPTY
        },
        Relaxed,
      );
      self
        .s32(i, F_PREV)
        .store(if raw > 0 { raw - 1 } else { EMPTY }, Relaxed);
      self.s32(i, F_LNEXT).store(EMPTY, Relaxed);
    }
    self.h32(S_FREE).store(0, Relaxed);
    self.h32(S_LRU_HEAD).store(EMPTY, Relaxed);
    self.h32(S_LRU_TAIL).store(EMPTY, Relaxed);
    self.h64(S_LEN).store(0, Relaxed);
    self.h64(S_NEXT_EXPIRY).store(u64::MAX, Relaxed);
    self.seq().store(0, Relaxed);
    Ok(())
  }
}

/// Compares `key` with the bytes stored at `off` using relaxed word loads.
#[inline]
fn words_eq(m: &Mem, off: u64, key: &[u8]) -> bool {
  let mut chunks = key.chunks_exact(8);
  let mut w = 0u64;
  for c in &mut chunks {
    if m.a64(off + w).load(Relaxed) != u64::from_le_bytes(c.try_into().unwrap()) {
      return false;
    }
    w += 8;
  }
  let rem = chunks.remainder();
  if !rem.is_empty() {
    let mut b = [0u8; 8];
    b[..rem.len()].copy_from_slice(rem);
    let mask = u64::MAX >> (64 - 8 * rem.len());
    if m.a64(off + w).load(Relaxed) & mask != u64::from_le_bytes(b) {
      return false;
    }
  }
  true
}

#[inline(always)]
pub(crate) fn expired(expires: u64, now: u64) -> bool {
  expires != 0 && now >= expires
}

/// A failure inside a locked operation.
pub(crate) enum Fault {
  /// The shard's structures are inconsistent: repair and retry.
  Corrupt(&'static str),
  /// A user-facing error, raised while the shard is consistent.
  Err(Error),
}

impl From<Torn> for Fault {
  fn from(_: Torn) -> Fault {
    Fault::Corrupt("inconsistent slot")
  }
}

/// A live entry found under the lock, with its chain predecessor.
#[derive(Clone, Copy)]
pub(crate) struct Found {
  pub idx: Idx,
  pub pred: Option<Idx>,
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
  fn begin(&mut self) {
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

  #[inline]
  fn set_state(&mut self, i: Idx, st: u32) {
    self.begin();
    self.s.s32(i, F_STATE).store(st, Relaxed);
  }

  #[inline]
  fn put32(&mut self, i: Idx, f: u64, v: u32) {
    self.begin();
    self.s.s32(i, f).store(v, Relaxed);
  }

  #[inline]
  fn hput32(&mut self, f: u64, v: u32) {
    self.begin();
    self.s.h32(f).store(v, Relaxed);
  }

  fn link(&self, raw: u32) -> Result<Option<Idx>, Fault> {
    if raw == EMPTY {
      Ok(None)
    } else {
      self
        .s
        .idx(raw)
        .map(Some)
        .ok_or(Fault::Corrupt("link out of range"))
    }
  }

  pub(crate) fn len(&self) -> u64 {
    self.s.h64(S_LEN).load(Relaxed)
  }

  pub(crate) fn is_expired(&self, i: Idx) -> bool {
    expired(self.s.s64(i, F_EXPIRES).load(Relaxed), self.now)
  }

  /// Finds the live slot of `key`, with its chain predecessor.
  pub(crate) fn find(&self, h: u64, key: &[u8]) -> Result<Option<Found>, Fault> {
    self.s.prefetch_home(h);
    let mut pred = None;
    let mut raw = self.s.bucket(self.s.l.bucket_of(h)).load(Relaxed);
    let mut steps = 0u32;
    while let Some(i) = self.link(raw)? {
      steps += 1;
      if steps > self.s.l.slots {
        return Err(Fault::Corrupt("chain cycle"));
      }
      if self.s.state(i) != STATE_USED {
        return Err(Fault::Corrupt("non-live slot in a chain"));
      }
      if self.s.s64(i, F_HASH).load(Relaxed) == h
        && self.s.s32(i, F_KEY_LEN).load(Relaxed) as usize == key.len()
        && self.s.key_eq(i, key)
      {
        let tag = self.s.s32(i, F_TAG).load(Relaxed);
        let vlen = self.s.s32(i, F_VALUE_LEN).load(Relaxed);
        if !valid_tag_len(tag, vlen, self.s.l.max_value) {
          return Err(Fault::Corrupt("bad value tag or length"));
        }
        return Ok(Some(Found { idx: i, pred }));
      }
      pred = Some(i);
      raw = self.s.s32(i, F_NEXT).load(Relaxed);
    }
    Ok(None)
  }

  /// Finds the chain predecessor of `target` (which must be in `h`'s chain).
  fn pred_of(&self, h: u64, target: Idx) -> Result<Option<Idx>, Fault> {
    let mut pred = None;
    let mut raw = self.s.bucket(self.s.l.bucket_of(h)).load(Relaxed);
    let mut steps = 0u32;
    while let Some(i) = self.link(raw)? {
      if i == target {
        return Ok(pred);
      }
      steps += 1;
      if steps > self.s.l.slots {
        return Err(Fault::Corrupt("chain cycle"));
      }
      pred = Some(i);
      raw = self.s.s32(i, F_NEXT).load(Relaxed);
    }
    Err(Fault::Corrupt("entry missing from its chain"))
  }

  /// Makes `pred.next` (or the bucket head) point to `to`.
  fn set_chain_link(&mut self, h: u64, pred: Option<Idx>, to: u32) {
    self.begin();
    match pred {
      Some(p) => self.s.s32(p, F_NEXT).store(to, Relaxed),
      None => self.s.bucket(self.s.l.bucket_of(h)).store(to, Relaxed),
    }
  }

  fn chain_push(&mut self, h: u64, i: Idx) {
    let b = self.s.bucket(self.s.l.bucket_of(h));
    let head = b.load(Relaxed);
    self.put32(i, F_NEXT, head);
    b.store(i.0, Relaxed);
  }

  fn lru_unlink(&mut self, i: Idx) -> Result<(), Fault> {
    let p = self.link(self.s.s32(i, F_PREV).load(Relaxed))?;
    let n = self.link(self.s.s32(i, F_LNEXT).load(Relaxed))?;
    match p {
      Some(p) => {
        if self.s.s32(p, F_LNEXT).load(Relaxed) != i.0 {
          return Err(Fault::Corrupt("lru links disagree"));
        }
      }
      None => {
        if self.s.h32(S_LRU_HEAD).load(Relaxed) != i.0 {
          return Err(Fault::Corrupt("lru head disagrees"));
        }
      }
    }
    match n {
      Some(n) => {
        if self.s.s32(n, F_PREV).load(Relaxed) != i.0 {
          return Err(Fault::Corrupt("lru links disagree"));
        }
      }
      None => {
        if self.s.h32(S_LRU_TAIL).load(Relaxed) != i.0 {
          return Err(Fault::Corrupt("lru tail disagrees"));
        }
      }
    }
    let n_raw = n.map_or(EMPTY, |x| x.0);
    let p_raw = p.map_or(EMPTY, |x| x.0);
    match p {
      Some(p) => self.put32(p, F_LNEXT, n_raw),
      None => self.hput32(S_LRU_HEAD, n_raw),
    }
    match n {
      Some(n) => self.put32(n, F_PREV, p_raw),
      None => self.hput32(S_LRU_TAIL, p_raw),
    }
    self.put32(i, F_PREV, EMPTY);
    self.put32(i, F_LNEXT, EMPTY);
    Ok(())
  }

  fn lru_push_head(&mut self, i: Idx) -> Result<(), Fault> {
    let head = self.link(self.s.h32(S_LRU_HEAD).load(Relaxed))?;
    self.put32(i, F_PREV, EMPTY);
    self.put32(i, F_LNEXT, head.map_or(EMPTY, |x| x.0));
    match head {
      Some(h) => self.put32(h, F_PREV, i.0),
      None => self.hput32(S_LRU_TAIL, i.0),
    }
    self.hput32(S_LRU_HEAD, i.0);
    Ok(())
  }

  /// The free list is doubly linked (`F_NEXT` / `F_PREV`, which a free slot
  /// does not otherwise use), so a free home slot can be taken from its
  /// middle in O(1).
  fn free_push(&mut self, i: Idx) {
    self.set_state(i, STATE_FREE);
    let head = self.s.h32(S_FREE).load(Relaxed);
    self.put32(i, F_NEXT, head);
    self.put32(i, F_PREV, EMPTY);
    self.put32(i, F_LNEXT, EMPTY);
    if let Some(h) = self.s.idx(head) {
      self.put32(h, F_PREV, i.0);
    }
    self.hput32(S_FREE, i.0);
  }

  fn free_pop(&mut self) -> Result<Idx, Fault> {
    let i = self
      .link(self.s.h32(S_FREE).load(Relaxed))?
      .ok_or(Fault::Corrupt("free list empty"))?;
    self.free_take(i)?;
    Ok(i)
  }

  /// Unlinks free slot `i` from the free list, checking its links.
  fn free_take(&mut self, i: Idx) -> Result<(), Fault> {
    if self.s.state(i) != STATE_FREE {
      return Err(Fault::Corrupt("live slot on the free list"));
    }
    let p = self.link(self.s.s32(i, F_PREV).load(Relaxed))?;
    let n = self.link(self.s.s32(i, F_NEXT).load(Relaxed))?;
    let linked_from_p = match p {
      Some(p) => self.s.s32(p, F_NEXT).load(Relaxed) == i.0,
      None => self.s.h32(S_FREE).load(Relaxed) == i.0,
    };
    let linked_from_n = n.is_none_or(|n| self.s.s32(n, F_PREV).load(Relaxed) == i.0);
    if !linked_from_p || !linked_from_n {
      return Err(Fault::Corrupt("free list links disagree"));
    }
    let n_raw = n.map_or(EMPTY, |x| x.0);
    match p {
      Some(p) => self.put32(p, F_NEXT, n_raw),
      None => self.hput32(S_FREE, n_raw),
    }
    if let Some(n) = n {
      self.put32(n, F_PREV, p.map_or(EMPTY, |x| x.0));
    }
    self.put32(i, F_PREV, EMPTY);
    Ok(())
  }

  /// A free slot for a new entry of hash `h`: its home slot when that is
  /// free (so readers find it where they prefetch), else the free-list head.
  fn alloc(&mut self, h: u64) -> Result<Idx, Fault> {
    let home = Idx(self.s.l.home_of(h));
    if self.s.state(home) == STATE_FREE {
      self.free_take(home)?;
      return Ok(home);
    }
    self.free_pop()
  }

  fn next_version(&mut self) -> u64 {
    self.begin();
    let v = self.s.h64(S_WRITE_SEQ).load(Relaxed).wrapping_add(1);
    self.s.h64(S_WRITE_SEQ).store(v, Relaxed);
    v
  }

  /// Writes a complete entry into free slot `i`, leaving it `WRITING`.
  fn write_entry(&mut self, i: Idx, h: u64, key: &[u8], v: &Encoded<'_>, expires: u64) {
    let version = self.next_version();
    self.set_state(i, STATE_WRITING);
    let s = self.s;
    s.s32(i, F_KEY_LEN).store(key.len() as u32, Relaxed);
    s.s64(i, F_HASH).store(h, Relaxed);
    s.s32(i, F_TAG).store(v.tag(), Relaxed);
    s.s32(i, F_VALUE_LEN).store(v.len(), Relaxed);
    s.s64(i, F_VERSION).store(version, Relaxed);
    s.s64(i, F_EXPIRES).store(expires, Relaxed);
    s.s64(i, F_ACCESS).store(self.now & ACCESS_MS, Relaxed);
    s.copy_in(s.key_off(i), key);
    match v {
      Encoded::Bytes(_, b) => s.copy_in(s.val_off(i), b),
      Encoded::Word(_, _, w) => s.val_word(i).store(*w, Relaxed),
    }
    if expires != 0 && expires < s.h64(S_NEXT_EXPIRY).load(Relaxed) {
      s.h64(S_NEXT_EXPIRY).store(expires, Relaxed);
    }
  }

  /// Inserts a key that is not present, making room first.
  pub(crate) fn insert_new(
    &mut self,
    h: u64,
    key: &[u8],
    v: &Encoded<'_>,
    expires: u64,
  ) -> Result<(), Fault> {
    self.make_room()?;
    let i = self.alloc(h)?;
    self.write_entry(i, h, key, v, expires);
    hook!(SET_WRITING);
    self.chain_push(h, i);
    self.lru_push_head(i)?;
    self.set_state(i, STATE_USED);
    let len = self.len();
    self.s.h64(S_LEN).store(len + 1, Relaxed);
    Ok(())
  }

  /// Replaces live entry `old` by a fresh copy (copy-on-write: the spare
  /// slot guarantees a free slot even when the shard is full).
  pub(crate) fn replace(
    &mut self,
    old: Found,
    h: u64,
    key: &[u8],
    v: &Encoded<'_>,
    expires: u64,
  ) -> Result<(), Fault> {
    let n = self.alloc(h)?;
    self.write_entry(n, h, key, v, expires);
    hook!(SET_WRITING);
    let after = self.s.s32(old.idx, F_NEXT).load(Relaxed);
    self.put32(n, F_NEXT, after);
    self.set_chain_link(h, old.pred, n.0);
    self.lru_unlink(old.idx)?;
    self.lru_push_head(n)?;
    self.set_state(n, STATE_USED);
    hook!(SET_LINKED);
    self.free_push(old.idx);
    Ok(())
  }

  /// Removes live entry `f` (hash `h`).
  pub(crate) fn remove(&mut self, f: Found, h: u64) -> Result<(), Fault> {
    let after = self.s.s32(f.idx, F_NEXT).load(Relaxed);
    self.set_chain_link(h, f.pred, after);
    hook!(DELETE_UNLINKED);
    self.lru_unlink(f.idx)?;
    self.free_push(f.idx);
    let len = self.len();
    self.s.h64(S_LEN).store(len.saturating_sub(1), Relaxed);
    Ok(())
  }

  /// Removes live slot `i` found by scanning (predecessor unknown).
  fn remove_slot(&mut self, i: Idx) -> Result<(), Fault> {
    let h = self.s.s64(i, F_HASH).load(Relaxed);
    let pred = self.pred_of(h, i)?;
    self.remove(Found { idx: i, pred }, h)
  }

  /// Moves `i` to the LRU head and stamps its access time (a write).
  pub(crate) fn touch(&mut self, i: Idx) -> Result<(), Fault> {
    if self.s.h32(S_LRU_HEAD).load(Relaxed) != i.0 {
      self.lru_unlink(i)?;
      self.lru_push_head(i)?;
    }
    self.begin();
    self.s.s64(i, F_ACCESS).store(self.now & ACCESS_MS, Relaxed);
    Ok(())
  }

  /// Stores the 8-byte value of number/bigint entry `i` in place (one
  /// atomic store: a crash leaves the old or the new value, never a mix).
  pub(crate) fn store_word(&mut self, i: Idx, w: u64) {
    self.begin();
    hook!(INCR);
    self.s.val_word(i).store(w, Relaxed);
  }

  /// Removes every expired entry; recomputes `next_expiry`. Adds each
  /// removal to `removed` (and to the stats) as it happens, so a count
  /// survives a fault and repair half-way.
  fn scan_expired(&mut self, removed: &mut u64) -> Result<(), Fault> {
    let mut next = u64::MAX;
    for raw in 0..self.s.l.slots {
      let i = Idx(raw);
      if self.s.state(i) != STATE_USED {
        continue;
      }
      let e = self.s.s64(i, F_EXPIRES).load(Relaxed);
      if expired(e, self.now) {
        self.remove_slot(i)?;
        self.stat(S_EXPIRATIONS, 1);
        *removed += 1;
      } else if e != 0 {
        next = next.min(e);
      }
    }
    self.begin();
    self.s.h64(S_NEXT_EXPIRY).store(next, Relaxed);
    self.s.h64(S_LAST_SCAN).store(self.now, Relaxed);
    Ok(())
  }

  /// Public entry for `purge_expired`: adds what it removes to `removed`.
  pub(crate) fn purge_expired(&mut self, removed: &mut u64) -> Result<(), Fault> {
    if self.now < self.s.h64(S_NEXT_EXPIRY).load(Relaxed) {
      return Ok(());
    }
    self.scan_expired(removed)
  }

  /// Ensures `len < cap_per_shard` before an insert: reclaims expired
  /// entries, then evicts (LRU) or fails with `EFULL` (None).
  fn make_room(&mut self) -> Result<(), Fault> {
    let cap = self.s.l.cap_per_shard as u64;
    let len = self.len();
    if len > cap {
      return Err(Fault::Corrupt("len over capacity"));
    }
    if len < cap {
      return Ok(());
    }
    if self.now >= self.s.h64(S_NEXT_EXPIRY).load(Relaxed) {
      // Eviction None must see every expired entry before saying EFULL; LRU
      // mode rate-limits the O(slots) scan to once a second per shard.
      let last = self.s.h64(S_LAST_SCAN).load(Relaxed);
      if self.s.l.eviction == Eviction::None || self.now.saturating_sub(last) >= 1000 {
        self.scan_expired(&mut 0)?;
      }
    }
    if self.len() < cap {
      return Ok(());
    }
    if self.s.l.eviction == Eviction::None {
      return Err(Fault::Err(Error::new(
        "EFULL",
        format!("the shard for this key is full ({cap} entries) and eviction is 'none'"),
      )));
    }
    self.evict_one()
  }

  /// Evicts one entry from the LRU tail, giving up to `SECOND_CHANCES`
  /// entries read since they were linked a second chance (moved to the head
  /// with their read mark cleared). An expired tail is reclaimed instead.
  fn evict_one(&mut self) -> Result<(), Fault> {
    const SECOND_CHANCES: u32 = 32;
    for chance in 0..=SECOND_CHANCES {
      let t = self
        .link(self.s.h32(S_LRU_TAIL).load(Relaxed))?
        .ok_or(Fault::Corrupt("lru list empty in a full shard"))?;
      if self.s.state(t) != STATE_USED {
        return Err(Fault::Corrupt("non-live slot on the lru list"));
      }
      if self.is_expired(t) {
        self.remove_slot(t)?;
        self.stat(S_EXPIRATIONS, 1);
        return Ok(());
      }
      let a = self.s.s64(t, F_ACCESS).load(Relaxed);
      if chance < SECOND_CHANCES && a & ACCESS_REF != 0 {
        self.begin();
        self.s.s64(t, F_ACCESS).store(a & ACCESS_MS, Relaxed);
        self.lru_unlink(t)?;
        self.lru_push_head(t)?;
        continue;
      }
      let h = self.s.s64(t, F_HASH).load(Relaxed);
      let pred = self.pred_of(h, t)?;
      let after = self.s.s32(t, F_NEXT).load(Relaxed);
      self.set_chain_link(h, pred, after);
      hook!(EVICT_UNLINKED);
      self.lru_unlink(t)?;
      self.free_push(t);
      let len = self.len();
      self.s.h64(S_LEN).store(len.saturating_sub(1), Relaxed);
      self.stat(S_EVICTIONS, 1);
      return Ok(());
    }
    Ok(())
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
    let mut cands = Vec::new();
    for raw in 0..self.s.l.slots {
      let i = Idx(raw);
      if self.s.state(i) == STATE_USED {
        let a = self.s.s64(i, F_ACCESS).load(Relaxed) & ACCESS_MS;
        if a < cutoff {
          cands.push((a, i));
        }
      }
    }
    cands.sort_unstable_by_key(|c| (c.0, c.1 .0));
    for (_, i) in cands {
      if *done >= budget {
        break;
      }
      self.remove_slot(i)?;
      self.stat(S_EVICTIONS, 1);
      *done += 1;
    }
    Ok(())
  }

  /// Frees every slot (`clear`).
  pub(crate) fn clear(&mut self) {
    self.begin();
    let n = self.s.l.slots;
    for raw in 0..n {
      if raw == n / 2 {
        hook!(CLEAR);
      }
      self.s.s32(Idx(raw), F_STATE).store(STATE_FREE, Relaxed);
    }
    self.rebuild_empty();
  }

  fn rebuild_empty(&mut self) {
    self.begin();
    let s = self.s;
    for b in 0..s.l.buckets {
      s.bucket(b).store(EMPTY, Relaxed);
    }
    for raw in 0..s.l.slots {
      let i = Idx(raw);
      s.s32(i, F_NEXT)
        .store(if raw + 1 < s.l.slots { raw + 1 } else { EMPTY }, Relaxed);
      s.s32(i, F_PREV)
        .store(if raw > 0 { raw - 1 } else { EMPTY }, Relaxed);
      s.s32(i, F_LNEXT).store(EMPTY, Relaxed);
    }
    s.h32(S_FREE).store(0, Relaxed);
    s.h32(S_LRU_HEAD).store(EMPTY, Relaxed);
    s.h32(S_LRU_TAIL).store(EMPTY, Relaxed);
    s.h64(S_LEN).store(0, Relaxed);
    s.h64(S_NEXT_EXPIRY).store(u64::MAX, Relaxed);
  }

  /// Whether `(tag, bytes)` of slot `i` equals `v` (numbers compare as f64).
  pub(crate) fn value_equals(&self, i: Idx, v: &Encoded<'_>) -> bool {
    let tag = self.s.s32(i, F_TAG).load(Relaxed);
    let vlen = self.s.s32(i, F_VALUE_LEN).load(Relaxed);
    if tag != v.tag() || vlen != v.len() {
      return false;
    }
    let word = self.s.val_word(i).load(Relaxed);
    match v {
      Encoded::Word(TAG_NUMBER, _, w) => f64::from_bits(word) == f64::from_bits(*w),
      Encoded::Word(TAG_BIGINT, _, w) => word == *w,
      Encoded::Word(TAG_BOOL, _, w) => (word & 0xff != 0) == (*w != 0),
      Encoded::Word(TAG_NULL, _, _) => true,
      Encoded::Word(..) => false,
      Encoded::Bytes(_, b) => words_eq(self.s.m, self.s.val_off(i), b),
    }
  }

  /// Whether slot `i` holds a well-formed entry whose stored hash is the
  /// hash of its stored key.
  fn slot_valid(&self, i: Idx, key: &mut Vec<u8>) -> bool {
    let tag = self.s.s32(i, F_TAG).load(Relaxed);
    let vlen = self.s.s32(i, F_VALUE_LEN).load(Relaxed);
    if !valid_tag_len(tag, vlen, self.s.l.max_value) || self.s.read_key(i, key).is_err() {
      return false;
    }
    self.s.l.hash(key) == self.s.s64(i, F_HASH).load(Relaxed)
  }

  /// Rebuilds the shard's derived structures from its slots (see the module
  /// docs). Loses at most the write that was in flight; never fails.
  pub(crate) fn repair(&mut self) {
    self.begin();
    let l = self.s.l;
    let s = self.s;
    // (access ms, version, slot) of the entries kept.
    let mut kept: Vec<(u64, u64, Idx)> = Vec::new();
    let mut by_hash: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut key = Vec::new();
    let mut other = Vec::new();
    let mut max_version = s.h64(S_WRITE_SEQ).load(Relaxed);
    for raw in 0..l.slots {
      if raw == l.slots / 2 {
        hook!(REPAIR);
      }
      let i = Idx(raw);
      let st = s.state(i);
      if st != STATE_USED || !self.slot_valid(i, &mut key) {
        if st != STATE_FREE {
          s.s32(i, F_STATE).store(STATE_FREE, Relaxed);
        }
        continue;
      }
      let h = s.s64(i, F_HASH).load(Relaxed);
      let version = s.s64(i, F_VERSION).load(Relaxed);
      let access = s.s64(i, F_ACCESS).load(Relaxed) & ACCESS_MS;
      max_version = max_version.max(version);
      let list = by_hash.entry(h).or_default();
      let dup = list.iter().copied().find(|&k| {
        let _ = s.read_key(kept[k].2, &mut other);
        other == key
      });
      match dup {
        Some(k) if kept[k].1 >= version => {
          s.s32(i, F_STATE).store(STATE_FREE, Relaxed);
        }
        Some(k) => {
          s.s32(kept[k].2, F_STATE).store(STATE_FREE, Relaxed);
          kept[k] = (access, version, i);
        }
        None => {
          list.push(kept.len());
          kept.push((access, version, i));
        }
      }
    }
    // Oldest first; a damaged segment may hold more live slots than the
    // capacity: drop the oldest extras.
    kept.sort_unstable_by_key(|k| (k.0, k.1, k.2 .0));
    let cap = l.cap_per_shard as usize;
    if kept.len() > cap {
      for k in kept.drain(..kept.len() - cap) {
        s.s32(k.2, F_STATE).store(STATE_FREE, Relaxed);
      }
    }
    for b in 0..l.buckets {
      s.bucket(b).store(EMPTY, Relaxed);
    }
    let mut free = EMPTY;
    for raw in (0..l.slots).rev() {
      let i = Idx(raw);
      if s.state(i) == STATE_FREE {
        s.s32(i, F_NEXT).store(free, Relaxed);
        s.s32(i, F_PREV).store(EMPTY, Relaxed);
        s.s32(i, F_LNEXT).store(EMPTY, Relaxed);
        if free != EMPTY {
          s.s32(Idx(free), F_PREV).store(raw, Relaxed);
        }
        free = raw;
      }
    }
    s.h32(S_FREE).store(free, Relaxed);
    s.h32(S_LRU_HEAD).store(EMPTY, Relaxed);
    s.h32(S_LRU_TAIL).store(EMPTY, Relaxed);
    let mut next_expiry = u64::MAX;
    for &(_, _, i) in &kept {
      let h = s.s64(i, F_HASH).load(Relaxed);
      self.chain_push(h, i);
      // Cannot fail: the head was just set by us.
      let _ = self.lru_push_head(i);
      let e = s.s64(i, F_EXPIRES).load(Relaxed);
      if e != 0 {
        next_expiry = next_expiry.min(e);
      }
    }
    s.h64(S_LEN).store(kept.len() as u64, Relaxed);
    s.h64(S_WRITE_SEQ).store(max_version, Relaxed);
    s.h64(S_NEXT_EXPIRY).store(next_expiry, Relaxed);
    s.h64(S_LAST_SCAN).store(0, Relaxed);
    self.end();
    self.stat(S_REPAIRS, 1);
  }

  /// Checks every invariant of the shard (read-only), appending problems.
  pub(crate) fn verify(&self, shard: u32, problems: &mut Vec<String>) {
    let l = self.s.l;
    let s = self.s;
    let start = problems.len();
    let mut p = |msg: String| {
      if problems.len() < start + 20 {
        problems.push(format!("shard {shard}: {msg}"));
      }
    };
    let n = l.slots as usize;
    if s.seq().load(Relaxed) & 1 == 1 {
      p("sequence is odd outside a write".into());
    }
    let len = s.h64(S_LEN).load(Relaxed);
    if len > l.cap_per_shard as u64 {
      p(format!("len {len} over capacity {}", l.cap_per_shard));
    }
    // 0 = unseen, 1 = in a chain, 2 = on the free list.
    let mut seen = vec![0u8; n];
    let mut chained = 0u64;
    let mut keys: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut key = Vec::new();
    for b in 0..l.buckets {
      let mut raw = s.bucket(b).load(Relaxed);
      let mut steps = 0;
      while raw != EMPTY {
        let Some(i) = s.idx(raw) else {
          p(format!("bucket {b}: link {raw} out of range"));
          break;
        };
        steps += 1;
        if steps > n {
          p(format!("bucket {b}: chain cycle"));
          break;
        }
        if seen[raw as usize] != 0 {
          p(format!("slot {raw} reached twice through chains"));
          break;
        }
        seen[raw as usize] = 1;
        chained += 1;
        if s.state(i) != STATE_USED {
          p(format!("slot {raw} in bucket {b} has state {}", s.state(i)));
        }
        let h = s.s64(i, F_HASH).load(Relaxed);
        if l.bucket_of(h) != b {
          p(format!(
            "slot {raw} is in bucket {b}, its hash belongs in {}",
            l.bucket_of(h)
          ));
        }
        if !self.slot_valid(i, &mut key) {
          p(format!("slot {raw}: bad key/value lengths, tag or hash"));
        } else if let Some(other) = keys.insert(key.clone(), raw) {
          p(format!("slots {other} and {raw} hold the same key"));
        }
        raw = s.s32(i, F_NEXT).load(Relaxed);
      }
    }
    if chained != len {
      p(format!("len is {len} but chains hold {chained} entries"));
    }
    // LRU list: exactly the chained entries, links agreeing both ways.
    let mut raw = s.h32(S_LRU_HEAD).load(Relaxed);
    let mut prev = EMPTY;
    let mut listed = 0u64;
    let mut on_lru = vec![false; n];
    while raw != EMPTY {
      let Some(i) = s.idx(raw) else {
        p(format!("lru link {raw} out of range"));
        break;
      };
      if on_lru[raw as usize] {
        p("lru cycle".into());
        break;
      }
      on_lru[raw as usize] = true;
      listed += 1;
      if seen[raw as usize] != 1 {
        p(format!("slot {raw} on the lru list but not in a chain"));
      }
      if s.s32(i, F_PREV).load(Relaxed) != prev {
        p(format!("slot {raw}: lru prev link disagrees"));
      }
      prev = raw;
      raw = s.s32(i, F_LNEXT).load(Relaxed);
    }
    if s.h32(S_LRU_TAIL).load(Relaxed) != prev {
      p("lru tail disagrees with the list".into());
    }
    if listed != chained {
      p(format!("lru list has {listed} entries, chains {chained}"));
    }
    // Free list: every other slot, all FREE.
    let mut raw = s.h32(S_FREE).load(Relaxed);
    let mut free = 0u64;
    let mut prev = EMPTY;
    while raw != EMPTY {
      let Some(i) = s.idx(raw) else {
        p(format!("free link {raw} out of range"));
        break;
      };
      if seen[raw as usize] != 0 {
        p(format!("slot {raw} on the free list twice or also live"));
        break;
      }
      seen[raw as usize] = 2;
      free += 1;
      if s.s32(i, F_PREV).load(Relaxed) != prev {
        p(format!("slot {raw}: free list prev link disagrees"));
      }
      prev = raw;
      if s.state(i) != STATE_FREE {
        p(format!(
          "slot {raw} on the free list has state {}",
          s.state(i)
        ));
      }
      raw = s.s32(i, F_NEXT).load(Relaxed);
    }
    if free + chained != n as u64 {
      p(format!(
        "{chained} live + {free} free != {n} slots (leaked slots)"
      ));
    }
  }
}
