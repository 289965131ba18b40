//! A `#![no_std]` fixed-capacity LRU map with O(1) expected `get`, `insert` and
//! `remove`.
//!
//! # Layout
//!
//! Every entry lives in a *slot* numbered `0..CAP`. The map is a struct of
//! arrays (one array per field, not one array of structs):
//!
//! ```text
//! header  len, head (MRU), tail (LRU), free          4 x I
//! keys    [MaybeUninit<K>; CAP]                      CAP x size_of K
//! values  [MaybeUninit<V>; CAP]                      CAP x size_of V
//! prev    [I; CAP]   links of the MRU..LRU list      CAP x size_of I
//! next    [I; CAP]   links (and the free list)       CAP x size_of I
//! index   [I; 2*CAP] open-addressing hash index      2*CAP x size_of I
//! hasher  S                                          size_of S
//! ```
//!
//! * The used slots form a doubly linked list through `prev`/`next`, ordered
//!   from most recently used (`head`) to least recently used (`tail`). Links
//!   are slot numbers of the small index type `I` (`u8`, `u16`, `u32` or
//!   `usize`); `I::MAX` is the "none" sentinel, so a capacity may be at most
//!   `I::MAX` (255 with `u8`).
//! * Freed slots are threaded through `next` starting at `free`. A slot that was
//!   never used is not on any list: while the free list is empty the next fresh
//!   slot is simply `len`. A slot's key and value are initialised exactly when
//!   the slot is on the used list.
//! * The hash index is a linear-probing table of `2*CAP` slot numbers (or the
//!   EMPTY sentinel `I::MAX`), so its load factor never exceeds 0.5. A key's
//!   home bucket is its 64-bit hash reduced with multiply-shift
//!   (`(h * len) >> 64`), which works for table sizes that are not powers of
//!   two. Deletion uses backward shift, so there are no tombstones and the
//!   table never needs rehashing; the home bucket of a displaced entry is
//!   recomputed by hashing its key (hashes are not stored).
//!
//! On stable Rust an inline array of `2*CAP` elements cannot be written with
//! const generics, so [`ArrayStorage`] stores the index as `[[I; 2]; CAP]` and
//! views it flattened.
//!
//! # Memory
//!
//! ```text
//! size_of::<ArrayLru<K, V, CAP, I, S>>()
//!   = CAP * (size_of K + size_of V + 2 * size_of I /* links */ + 2 * size_of I /* index */)
//!     + 4 * size_of I /* header */ + size_of S + padding
//! ```
//!
//! The default hasher [`FixedState`] is 8 bytes (one `u64` seed), so for
//! example `ArrayLru<u8, u8, 255, u8>` is 255 * 6 + 4 + 8 = 1542, padded to
//! 1544 bytes (alignment 8). [`HeapLru`] keeps the same arrays in five boxed
//! slices allocated once: `cap * (size_of K + size_of V + 4 * size_of I)` heap
//! bytes plus the fixed struct. See [`bytes_per_entry`] and
//! [`Lru::memory_bytes`].
//!
//! # Complexity
//!
//! | operation | cost |
//! |---|---|
//! | `get`, `get_mut`, `peek`, `contains`, `promote`, `demote` | O(1) expected: one hash, a short probe, and a relink |
//! | `insert` | O(1) expected (a full map also evicts the LRU entry) |
//! | `remove`, `pop_lru`, `pop_mru` | O(1) expected (backward shift rehashes the displaced keys of one cluster) |
//! | `len`, `peek_lru`, `peek_mru` | O(1) |
//! | `clear` | O(len) drops plus a fill of the index |
//! | `iter_key_order` | with `alloc`: O(N log N) once; without: O(N) per step |
//! | [`HeapLru::grow`] | O(len), the only operation that allocates after construction |
//!
//! # Features
//!
//! * `alloc`: the heap form [`HeapLru`], [`ArrayLru::new_boxed`], a sorting
//!   [`Lru::iter_key_order`], and [`timed::TimedLru`] with a manual clock.
//!   Without it the crate needs only `core`
//!   (`cargo build -p lrukit-array-lru --no-default-features`).
//! * `std` (default, implies `alloc`): the system clock of
//!   [`timed::TimedLru`] (`timed::Clock::System`, ms since the Unix epoch).
//!   The crate stays `#![no_std]` otherwise; without `std` a caller sets a
//!   manual clock to its own time.
//!
//! # Example
//!
//! ```
//! use lrukit_array_lru::{ArrayLru, Insert};
//!
//! let mut lru: ArrayLru<u32, &str, 2, u8> = ArrayLru::new();
//! assert!(lru.insert(1, "one").is_none());
//! assert!(lru.insert(2, "two").is_none());
//! assert_eq!(lru.get(&1), Some(&"one")); // 1 is now most recently used
//! // The map is full: inserting a new key evicts the LRU entry (2).
//! assert_eq!(lru.insert(3, "three"), Some(Insert::Evicted { key: 2, value: "two" }));
//! assert_eq!(lru.pop_lru(), Some((1, "one")));
//! ```
//!
//! A capacity that does not fit the index type is rejected at compile time:
//!
//! ```compile_fail,E0080
//! use lrukit_array_lru::ArrayLru;
//! // 256 > u8::MAX: fails to compile (const evaluation error in `new`).
//! let lru = ArrayLru::<u8, u8, 256, u8>::new();
//! ```
//!
//! ```
//! use lrukit_array_lru::ArrayLru;
//! let lru = ArrayLru::<u8, u8, 255, u8>::new(); // the largest u8-indexed map
//! assert_eq!(lru.cap(), 255);
//! ```
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(any(test, feature = "std"))]
extern crate std;

mod array;
mod entry;
#[cfg(feature = "alloc")]
mod heap;
mod iter;
mod map;
#[cfg(feature = "alloc")]
pub mod slot_pool;
mod storage;
#[cfg(test)]
mod tests;
#[cfg(feature = "alloc")]
pub mod timed;

/// The README's examples run as doc tests (not under miri: they allocate
/// million-entry maps).
#[cfg(all(doctest, feature = "alloc", not(miri)))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

use core::fmt;

pub use entry::{Entry, OccupiedEntry, VacantEntry};
pub use foldhash::fast::FixedState;
pub use iter::{IntoIter, Iter, IterMut, KeyOrderIter, Keys, Values, ValuesMut};
pub use map::Lru;
#[cfg(feature = "alloc")]
pub use slot_pool::SlotPool;
#[cfg(feature = "alloc")]
pub use storage::HeapStorage;
pub use storage::{ArrayStorage, Storage};

/// The inline (no allocation) form: capacity `CAP` fixed at compile time,
/// index type `I` (`CAP <= I::MAX`), hasher `S`.
///
/// Large maps should be created with [`ArrayLru::new_boxed`] (feature `alloc`)
/// so that they are never built on the stack.
pub type ArrayLru<K, V, const CAP: usize, I = u32, S = FixedState> =
  Lru<K, V, ArrayStorage<K, V, CAP, I>, S>;

/// The heap form (feature `alloc`): capacity chosen at run time, all arrays
/// allocated once by [`HeapLru::with_capacity`]. [`HeapLru::grow`] is the only
/// operation that allocates afterwards.
#[cfg(feature = "alloc")]
pub type HeapLru<K, V, I = u32, S = FixedState> = Lru<K, V, HeapStorage<K, V, I>, S>;

mod sealed {
  pub trait Sealed {}
}

/// Unsigned integer type used for slot numbers (links, index, header):
/// implemented for `u8`, `u16`, `u32` and `usize` only (sealed).
///
/// `Self::MAX` is reserved as the "none"/EMPTY sentinel, so a map indexed by
/// `I` holds at most [`IndexType::MAX_CAPACITY`] (= `I::MAX`) entries.
pub trait IndexType:
  sealed::Sealed + Copy + Eq + Ord + core::hash::Hash + fmt::Debug + Send + Sync + 'static
{
  /// The sentinel value (`I::MAX`).
  const MAX: Self;
  /// Zero.
  const ZERO: Self;
  /// Largest capacity a map with this index type can have (`I::MAX`, clamped
  /// to `usize::MAX`).
  const MAX_CAPACITY: usize;
  /// Converts a slot number; `n` must not exceed `MAX`.
  #[doc(hidden)]
  fn from_usize(n: usize) -> Self;
  /// Widens to `usize`.
  #[doc(hidden)]
  fn to_usize(self) -> usize;
}

macro_rules! impl_index_type {
  ($($t:ty),*) => {$(
    impl sealed::Sealed for $t {}
    impl IndexType for $t {
      const MAX: Self = <$t>::MAX;
      const ZERO: Self = 0;
      const MAX_CAPACITY: usize = if (<$t>::MAX as u128) > (usize::MAX as u128) {
        usize::MAX
      } else {
        <$t>::MAX as usize
      };
      #[inline(always)]
      fn from_usize(n: usize) -> Self {
        debug_assert!(n <= Self::MAX_CAPACITY);
        n as $t
      }
      #[inline(always)]
      fn to_usize(self) -> usize {
        self as usize
      }
    }
  )*};
}
impl_index_type!(u8, u16, u32, usize);

/// Heap/inline bytes used per entry slot: `size_of K + size_of V + 4 *
/// size_of I` (two list links and two index buckets).
pub const fn bytes_per_entry<K, V, I: IndexType>() -> usize {
  core::mem::size_of::<K>() + core::mem::size_of::<V>() + 4 * core::mem::size_of::<I>()
}

/// What [`Lru::insert`] did besides storing the new pair, when that is worth
/// reporting. `None` from `insert` means: a new entry was added and nothing
/// was evicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert<K, V> {
  /// The key already existed: its value was replaced in place and the entry
  /// promoted to most recently used. Holds the key that was passed in (the
  /// stored key is kept) and the old value.
  Replaced {
    /// The key passed to `insert`.
    key: K,
    /// The previous value.
    value: V,
  },
  /// The map was full: the least recently used entry was evicted to make
  /// room, and is returned here.
  Evicted {
    /// Key of the evicted entry.
    key: K,
    /// Value of the evicted entry.
    value: V,
  },
  /// The map has capacity 0: nothing was stored, the pair is handed back.
  Rejected {
    /// The key passed to `insert`.
    key: K,
    /// The value passed to `insert`.
    value: V,
  },
}

impl<K, V> Insert<K, V> {
  /// The pair carried by any variant.
  #[inline]
  pub fn into_pair(self) -> (K, V) {
    match self {
      Insert::Replaced { key, value }
      | Insert::Evicted { key, value }
      | Insert::Rejected { key, value } => (key, value),
    }
  }
  /// `true` for [`Insert::Replaced`].
  #[inline]
  pub fn is_replaced(&self) -> bool {
    matches!(self, Insert::Replaced { .. })
  }
  /// `true` for [`Insert::Evicted`].
  #[inline]
  pub fn is_evicted(&self) -> bool {
    matches!(self, Insert::Evicted { .. })
  }
  /// `true` for [`Insert::Rejected`].
  #[inline]
  pub fn is_rejected(&self) -> bool {
    matches!(self, Insert::Rejected { .. })
  }
}

/// A heap map could not get the requested capacity: it does not fit the index
/// type, its arrays' byte size overflows `isize::MAX`, or (see
/// [`CapacityError::alloc_failure`]) the allocator could not provide the
/// memory.
///
/// The fallible constructors ([`HeapLru::try_with_capacity`],
/// [`HeapLru::try_grow`](Lru::try_grow), ...) return this error instead of
/// aborting the process; their infallible twins (`with_capacity`, `grow`)
/// panic on the first two causes and call
/// [`handle_alloc_error`](https://doc.rust-lang.org/alloc/alloc/fn.handle_alloc_error.html)
/// on the third, like `Vec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityError {
  requested: usize,
  max: usize,
  /// `Some` when the capacity is possible but the allocation failed.
  alloc: Option<core::alloc::Layout>,
}

impl CapacityError {
  #[cfg(feature = "alloc")]
  pub(crate) fn new(requested: usize, max: usize) -> Self {
    Self {
      requested,
      max,
      alloc: None,
    }
  }
  #[cfg(feature = "alloc")]
  pub(crate) fn alloc_failed(requested: usize, max: usize, layout: core::alloc::Layout) -> Self {
    Self {
      requested,
      max,
      alloc: Some(layout),
    }
  }
  /// The capacity that was asked for.
  pub fn requested(&self) -> usize {
    self.requested
  }
  /// The largest capacity the index type (and the address space, for the
  /// arrays' byte size) allows. Memory permitting: an allocation failure
  /// reports the same bound.
  pub fn max(&self) -> usize {
    self.max
  }
  /// The layout the allocator refused (its `size()` is the bytes requested),
  /// or `None` when the capacity itself is impossible.
  pub fn alloc_failure(&self) -> Option<core::alloc::Layout> {
    self.alloc
  }
  /// Panics, or for an allocation failure calls `handle_alloc_error`: what
  /// the infallible constructors do with this error.
  #[cfg(feature = "alloc")]
  pub(crate) fn raise(self, what: &str) -> ! {
    match self.alloc {
      Some(layout) => alloc::alloc::handle_alloc_error(layout),
      None => panic!("{what}: {self}"),
    }
  }
}

impl fmt::Display for CapacityError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self.alloc {
      Some(layout) => write!(
        f,
        "memory allocation of {} bytes for capacity {} failed",
        layout.size(),
        self.requested
      ),
      None => write!(
        f,
        "capacity {} exceeds the maximum {} for this index type and element sizes",
        self.requested, self.max
      ),
    }
  }
}

impl core::error::Error for CapacityError {}
