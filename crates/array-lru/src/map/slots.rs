//! The slot arrays under [`Lru`](super::Lru): the MRU..LRU list links, the
//! free list, the hash index (probing and backward-shift removal) and the
//! panic-safe dropping of live entries. Invariants: see the parent module.

use core::hash::{BuildHasher, Hash};
use core::mem::{self, MaybeUninit};

use crate::storage::raw::PartsMut;
use crate::IndexType;

/// Starts loading the cache line of `r` (a hint: never faults, reads nothing).
#[inline(always)]
pub(super) fn prefetch<T>(r: &T) {
  #[cfg(target_arch = "x86_64")]
  // SAFETY: `_mm_prefetch` only hints the cache; `r` is a valid reference and
  // SSE is part of the x86_64 baseline.
  unsafe {
    core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
      r as *const T as *const i8,
    )
  }
  #[cfg(target_arch = "aarch64")]
  // SAFETY: `prfm` only hints the cache and `r` is a valid reference.
  unsafe {
    core::arch::asm!(
      "prfm pldl1keep, [{0}]",
      in(reg) r as *const T,
      options(nostack, readonly, preserves_flags)
    )
  }
  #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
  let _ = r;
}

/// Home bucket of hash `h` in a table of `n` buckets (multiply-shift).
#[inline(always)]
pub(crate) fn bucket(h: u64, n: usize) -> usize {
  ((h as u128 * n as u128) >> 64) as usize
}

#[inline(always)]
pub(super) fn wrap_inc(i: usize, n: usize) -> usize {
  let j = i + 1;
  if j == n {
    0
  } else {
    j
  }
}

/// First EMPTY bucket at or after the home bucket of `h`. The table must be
/// non-empty (load factor <= 0.5 guarantees an EMPTY bucket exists).
#[inline]
pub(crate) fn probe_empty<I: IndexType>(index: &[I], h: u64) -> usize {
  let n = index.len();
  let mut pos = bucket(h, n);
  while index[pos] != I::MAX {
    pos = wrap_inc(pos, n);
  }
  pos
}

/// Drops `left` entries along the list starting at slot `cur`.
///
/// If a destructor panics, the guard's own `Drop` (run during unwinding)
/// drops the remaining entries, so nothing leaks unless a second destructor
/// panics (which aborts, as for `Vec`).
struct DropChain<'a, K, V, I: IndexType> {
  keys: &'a mut [MaybeUninit<K>],
  values: &'a mut [MaybeUninit<V>],
  next: &'a [I],
  cur: I,
  left: usize,
}

impl<K, V, I: IndexType> DropChain<'_, K, V, I> {
  fn run(&mut self) {
    /// Drops the value even if the key's destructor panics.
    struct DropValue<'b, V>(&'b mut MaybeUninit<V>);
    impl<V> Drop for DropValue<'_, V> {
      fn drop(&mut self) {
        // SAFETY: only built for a value that is initialised and is dropped
        // nowhere else (see `run`).
        unsafe { self.0.assume_init_drop() }
      }
    }
    while self.left > 0 {
      let i = self.cur.to_usize();
      // Advance first, so that a panic below never revisits slot `i`.
      self.cur = self.next[i];
      self.left -= 1;
      let _value = DropValue(&mut self.values[i]);
      // SAFETY: the caller guarantees the `left` slots along the chain from
      // `cur` are initialised and owned by nobody else; each is visited once.
      unsafe { self.keys[i].assume_init_drop() };
    }
  }
}

impl<K, V, I: IndexType> Drop for DropChain<'_, K, V, I> {
  fn drop(&mut self) {
    self.run();
  }
}

/// Drops `len` entries along the list from `head` (see [`DropChain`]). The
/// caller guarantees they are initialised and never used again.
pub(super) fn drop_chain<K, V, I: IndexType>(
  keys: &mut [MaybeUninit<K>],
  values: &mut [MaybeUninit<V>],
  next: &[I],
  head: I,
  len: usize,
) {
  if !(mem::needs_drop::<K>() || mem::needs_drop::<V>()) {
    return;
  }
  let mut chain = DropChain {
    keys,
    values,
    next,
    cur: head,
    left: len,
  };
  chain.run();
}

/// Drops the live entries of a storage (used by the storages' `Drop`).
pub(crate) fn drop_live<K, V, I: IndexType>(p: PartsMut<'_, K, V, I>) {
  let len = p.hdr.len.to_usize();
  let head = p.hdr.head;
  // The storage is being dropped: its entries are never used again.
  drop_chain(p.keys, p.values, p.next, head, len);
}

impl<K, V, I: IndexType> PartsMut<'_, K, V, I> {
  /// Removes used slot `s` from the list.
  #[inline]
  pub(super) fn unlink(&mut self, s: usize) {
    let p = self.prev[s];
    let n = self.next[s];
    if p == I::MAX {
      self.hdr.head = n;
    } else {
      self.next[p.to_usize()] = n;
    }
    if n == I::MAX {
      self.hdr.tail = p;
    } else {
      self.prev[n.to_usize()] = p;
    }
  }

  /// Links slot `s` (not on the list) at the MRU end.
  #[inline]
  pub(super) fn push_front(&mut self, s: usize) {
    let si = I::from_usize(s);
    let h = self.hdr.head;
    self.prev[s] = I::MAX;
    self.next[s] = h;
    if h == I::MAX {
      self.hdr.tail = si;
    } else {
      self.prev[h.to_usize()] = si;
    }
    self.hdr.head = si;
  }

  /// Links slot `s` (not on the list) at the LRU end.
  #[inline]
  pub(super) fn push_back(&mut self, s: usize) {
    let si = I::from_usize(s);
    let t = self.hdr.tail;
    self.next[s] = I::MAX;
    self.prev[s] = t;
    if t == I::MAX {
      self.hdr.head = si;
    } else {
      self.next[t.to_usize()] = si;
    }
    self.hdr.tail = si;
  }

  /// Moves used slot `s` to the MRU end (no-op if it is already there).
  #[inline]
  pub(crate) fn move_to_front(&mut self, s: usize) {
    let si = I::from_usize(s);
    let head = self.hdr.head;
    if head == si {
      return;
    }
    // `s` is not the head, so it has a predecessor and the list has a head.
    let p = self.prev[s];
    let n = self.next[s];
    self.next[p.to_usize()] = n;
    if n == I::MAX {
      self.hdr.tail = p;
    } else {
      self.prev[n.to_usize()] = p;
    }
    self.prev[s] = I::MAX;
    self.next[s] = head;
    self.prev[head.to_usize()] = si;
    self.hdr.head = si;
  }

  /// Moves used slot `s` to the LRU end.
  #[inline]
  pub(super) fn move_to_back(&mut self, s: usize) {
    if self.hdr.tail != I::from_usize(s) {
      self.unlink(s);
      self.push_back(s);
    }
  }

  /// Takes a fresh slot: the head of the free list, else `len` (invariant 3).
  /// The caller guarantees `len < cap`.
  #[inline]
  pub(super) fn alloc_slot(&mut self) -> usize {
    let f = self.hdr.free;
    if f == I::MAX {
      self.hdr.len.to_usize()
    } else {
      let s = f.to_usize();
      self.hdr.free = self.next[s];
      s
    }
  }

  /// Stores a new entry in a fresh slot at the MRU end and in bucket `pos`
  /// (which must be EMPTY). The caller guarantees `len < cap`.
  #[inline]
  pub(crate) fn insert_new(&mut self, pos: usize, key: K, value: V) -> usize {
    let s = self.alloc_slot();
    self.keys[s].write(key);
    self.values[s].write(value);
    self.push_front(s);
    self.index[pos] = I::from_usize(s);
    self.hdr.len = I::from_usize(self.hdr.len.to_usize() + 1);
    s
  }

  /// Unlinks used slot `s` (already removed from the index), moves its entry
  /// out and puts the slot on the free list.
  #[inline]
  pub(super) fn take_slot(&mut self, s: usize) -> (K, V) {
    self.unlink(s);
    // SAFETY: `s` was on the used list, so both are initialised (invariant 1).
    // It is now off the list and goes to the free list below, so the moved-out
    // values are never read or dropped again.
    let kv = unsafe {
      (
        self.keys[s].assume_init_read(),
        self.values[s].assume_init_read(),
      )
    };
    self.next[s] = self.hdr.free;
    self.hdr.free = I::from_usize(s);
    self.hdr.len = I::from_usize(self.hdr.len.to_usize() - 1);
    kv
  }
}

/// Empties bucket `hole` with backward shift: entries later in the same
/// cluster whose probe path crosses the hole move back into it. Each
/// displaced entry's home bucket is recomputed by hashing its key.
///
/// Panic safety: a hole is always EMPTY before the user's `Hash` runs and an
/// entry is moved by writing it to the hole and then emptying its old bucket,
/// so invariant 2 holds at every call into user code.
#[inline]
pub(super) fn index_remove<K: Hash, V, I: IndexType, S: BuildHasher>(
  hasher: &S,
  p: &mut PartsMut<'_, K, V, I>,
  mut hole: usize,
) {
  let n = p.index.len();
  p.index[hole] = I::MAX;
  let mut j = hole;
  loop {
    j = wrap_inc(j, n);
    let e = p.index[j];
    if e == I::MAX {
      return;
    }
    // SAFETY: non-EMPTY buckets name used slots (invariant 2), whose keys are
    // initialised (invariant 1).
    let key = unsafe { p.keys[e.to_usize()].assume_init_ref() };
    let home = bucket(hasher.hash_one(key), n);
    let d_entry = if j >= home { j - home } else { j + n - home };
    let d_hole = if j >= hole { j - hole } else { j + n - hole };
    if d_entry >= d_hole {
      p.index[hole] = e;
      p.index[j] = I::MAX;
      hole = j;
    }
  }
}

#[cold]
#[inline(never)]
pub(super) fn scan_for_slot<I: IndexType>(index: &[I], slot: I) -> Option<usize> {
  index.iter().position(|&e| e == slot)
}
