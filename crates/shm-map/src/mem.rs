//! The map's bytes and the only way to touch them: atomic words.
//!
//! [`Mem`] is a base pointer and a length. It hands out [`Shared32`],
//! [`Shared64`] and [`Shared8`], thin wrappers over the std atomics with the
//! same method names. Every store-like call (`store`, `fetch_add`,
//! `compare_exchange`) goes through one hook, so `test-hooks` builds can
//! count the stores an operation makes and kill the process before the k-th
//! one (the crash-at-every-store campaign in `tests/crash_points.rs`).
//! Release builds compile the hook to nothing.
//!
//! [`Backing`] owns what `Mem` points into: a shared mapping (unix: an
//! `mmap` of the POSIX shared memory object; Windows: the `shared_memory`
//! crate's file mapping) or a private heap buffer ([`SharedMap::in_memory`],
//! the same code on plain memory, for fuzzing and Miri).
//!
//! [`SharedMap::in_memory`]: crate::SharedMap::in_memory

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

#[inline(always)]
fn store_hook() {
  #[cfg(feature = "test-hooks")]
  crate::hooks::store();
}

macro_rules! shared_word {
  ($(#[$doc:meta])* $name:ident, $atomic:ty, $int:ty) => {
    $(#[$doc])*
    #[repr(transparent)]
    pub(crate) struct $name($atomic);

    #[allow(dead_code)]
    impl $name {
      #[inline(always)]
      pub(crate) fn load(&self, o: Ordering) -> $int {
        self.0.load(o)
      }
      #[inline(always)]
      pub(crate) fn store(&self, v: $int, o: Ordering) {
        store_hook();
        self.0.store(v, o)
      }
      #[inline(always)]
      pub(crate) fn fetch_add(&self, v: $int, o: Ordering) -> $int {
        store_hook();
        self.0.fetch_add(v, o)
      }
      #[inline(always)]
      pub(crate) fn compare_exchange(
        &self,
        current: $int,
        new: $int,
        success: Ordering,
        failure: Ordering,
      ) -> Result<$int, $int> {
        store_hook();
        self.0.compare_exchange(current, new, success, failure)
      }
    }
  };
}

shared_word!(
  /// A 4-byte word of the map.
  Shared32, AtomicU32, u32
);
shared_word!(
  /// An 8-byte word of the map.
  Shared64, AtomicU64, u64
);
shared_word!(
  /// One byte of the map (tests of damaged memory only).
  Shared8, AtomicU8, u8
);

/// The mapping: a base pointer and its length.
#[derive(Clone, Copy)]
pub(crate) struct Mem {
  base: *mut u8,
  len: u64,
}

impl Mem {
  /// # Safety
  /// `base..base+len` is live memory, 64-byte aligned, that stays valid for
  /// as long as this `Mem` (or anything borrowed from it) is used, and that
  /// is only ever accessed through atomics (here and in other processes).
  pub(crate) unsafe fn new(base: *mut u8, len: u64) -> Mem {
    Mem { base, len }
  }

  pub(crate) fn len(&self) -> u64 {
    self.len
  }

  #[inline(always)]
  pub(crate) fn ptr(&self, off: u64) -> *mut u8 {
    debug_assert!(off < self.len);
    // SAFETY: every offset is computed from a validated `Layout` whose
    // `total` is at most `len`, so the result stays inside the mapping.
    unsafe { self.base.add(off as usize) }
  }

  #[inline(always)]
  pub(crate) fn a32(&self, off: u64) -> &Shared32 {
    debug_assert!(off.is_multiple_of(4) && off + 4 <= self.len);
    // SAFETY: in bounds (see `ptr`), 4-aligned (all u32 fields are at
    // offsets ≡ 0 mod 4 from 64-aligned regions of a page-aligned mapping);
    // `Shared32` is a transparent `AtomicU32`, and all access to the map
    // goes through atomics, so concurrent writes by other processes are not
    // data races.
    unsafe { &*(self.ptr(off) as *const Shared32) }
  }

  #[inline(always)]
  pub(crate) fn a64(&self, off: u64) -> &Shared64 {
    debug_assert!(off.is_multiple_of(8) && off + 8 <= self.len);
    // SAFETY: as in `a32`, with 8-byte alignment.
    unsafe { &*(self.ptr(off) as *const Shared64) }
  }

  #[inline(always)]
  pub(crate) fn a8(&self, off: u64) -> &Shared8 {
    // SAFETY: as in `a32`; u8 needs no alignment.
    unsafe { &*(self.ptr(off) as *const Shared8) }
  }

  /// Asks the CPU to start loading the cache line at `off` (no effect on
  /// other architectures). Never faults, so it may run before any check.
  #[inline(always)]
  pub(crate) fn prefetch(&self, off: u64) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: a prefetch is only a hint and never faults; `ptr` keeps the
    // address inside the mapping; SSE is part of the x86_64 baseline.
    unsafe {
      core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
        self.ptr(off) as *const i8
      )
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = off;
  }
}

/// One cache line of a heap-backed map: 64-byte aligned atomics, so the
/// buffer can be handed out as raw bytes and written through shared
/// references.
#[repr(C, align(64))]
pub(crate) struct Line([AtomicU64; 8]);

/// What a [`Mem`] points into. Dropped after every use of the `Mem`.
pub(crate) enum Backing {
  /// A shared mapping of a named segment.
  #[cfg(unix)]
  Mapped(crate::sys::Mapping),
  #[cfg(windows)]
  Mapped(shared_memory::Shmem),
  /// A private, zeroed heap buffer. A `Vec`, not a `Box`: moving a `Box`
  /// (into the handle) asserts unique access to its memory and would
  /// invalidate the `Mem` pointer taken before the move (Miri, Stacked
  /// Borrows; LLVM `noalias`); moving a `Vec` asserts nothing.
  Heap(Vec<Line>),
}

impl Backing {
  /// A zeroed heap buffer of at least `len` bytes (`EINVAL` if it cannot be
  /// allocated).
  pub(crate) fn heap(len: u64) -> Result<Backing, crate::Error> {
    let lines = usize::try_from(len.div_ceil(64))
      .map_err(|_| crate::error::einval("map too large for this address space"))?;
    let mut v: Vec<Line> = Vec::new();
    v.try_reserve_exact(lines).map_err(|_| {
      crate::error::einval(format!("cannot allocate {len} bytes for an in-memory map"))
    })?;
    v.extend((0..lines).map(|_| Line(Default::default())));
    Ok(Backing::Heap(v))
  }

  /// The bytes as a [`Mem`].
  pub(crate) fn mem(&self) -> Mem {
    let (base, len) = match self {
      #[cfg(unix)]
      Backing::Mapped(m) => (m.ptr(), m.len() as u64),
      #[cfg(windows)]
      Backing::Mapped(s) => (s.as_ptr(), s.len() as u64),
      // `Vec::as_ptr` materialises no reference to the buffer.
      Backing::Heap(b) => (b.as_ptr() as *mut u8, b.len() as u64 * 64),
    };
    // SAFETY: the mapping or buffer is page- or 64-byte aligned, lives as
    // long as `self`, and the map touches it only through atomics (a heap
    // buffer is made of atomics, so writing through this pointer is allowed).
    unsafe { Mem::new(base, len) }
  }
}
