//! Constructors and `grow` of the heap form [`HeapLru`](crate::HeapLru).

use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::mem;

use crate::map::{probe_empty, Lru};
use crate::storage::raw::{Header, RawStorage};
use crate::storage::HeapStorage;
use crate::{CapacityError, FixedState, IndexType};

impl<K, V, I: IndexType> Lru<K, V, HeapStorage<K, V, I>, FixedState> {
  /// An empty map holding at most `cap` entries, with the default fixed-seed
  /// hasher. All memory (`cap * bytes_per_entry` bytes) is allocated here,
  /// once.
  ///
  /// # Panics
  ///
  /// If `cap > I::MAX` (see [`HeapLru::try_with_capacity`](crate::HeapLru::try_with_capacity)).
  /// If the allocation fails it calls `handle_alloc_error`, which aborts the
  /// process by default, like `Vec::with_capacity`.
  pub fn with_capacity(cap: usize) -> Self {
    Self::with_capacity_and_hasher(cap, FixedState::default())
  }

  /// Like `with_capacity`, but never panics or aborts: returns an error if
  /// `cap > I::MAX`, if the arrays' byte size overflows `isize::MAX`, or if
  /// the allocator cannot provide them ([`CapacityError::alloc_failure`]).
  pub fn try_with_capacity(cap: usize) -> Result<Self, CapacityError> {
    Self::try_with_capacity_and_hasher(cap, FixedState::default())
  }
}

impl<K, V, I: IndexType, S> Lru<K, V, HeapStorage<K, V, I>, S> {
  /// [`HeapLru::with_capacity`](crate::HeapLru::with_capacity) with a given hasher.
  ///
  /// # Panics
  ///
  /// If `cap > I::MAX`; an allocation failure calls `handle_alloc_error`.
  pub fn with_capacity_and_hasher(cap: usize, hasher: S) -> Self {
    Self::try_with_capacity_and_hasher(cap, hasher)
      .unwrap_or_else(|e| e.raise("HeapLru::with_capacity"))
  }

  /// Like `with_capacity_and_hasher`, but returns an error instead of
  /// panicking or aborting (see
  /// [`HeapLru::try_with_capacity`](crate::HeapLru::try_with_capacity)).
  pub fn try_with_capacity_and_hasher(cap: usize, hasher: S) -> Result<Self, CapacityError> {
    Ok(Lru {
      storage: HeapStorage::try_new(cap)?,
      hasher,
      marker: PhantomData,
    })
  }

  /// Heap bytes that `with_capacity(cap)` allocates (one allocation: `cap *
  /// bytes_per_entry` plus alignment padding), or `None` when `cap` is not
  /// possible for this index type and these element sizes. Allocates nothing:
  /// lets a caller check a memory budget before building a map.
  pub fn heap_bytes_for(cap: usize) -> Option<usize> {
    HeapStorage::<K, V, I>::bytes_for(cap)
  }
}

impl<K: Hash + Eq, V, I: IndexType, S: BuildHasher> Lru<K, V, HeapStorage<K, V, I>, S> {
  /// Raises the capacity to `new_cap` (no-op if `new_cap <= cap()`), keeping
  /// every entry and the LRU order.
  ///
  /// All arrays are reallocated at the new size, the entries are moved
  /// (compacted into slots `0..len`, MRU first) and the hash index is rebuilt:
  /// O(len) hashes plus O(new_cap) initialisation. This is the only operation
  /// that allocates after construction; it exists for an "unbounded" mode
  /// that grows by doubling.
  ///
  /// # Panics
  ///
  /// If `new_cap > I::MAX` (see [`try_grow`](Self::try_grow)); an allocation
  /// failure calls `handle_alloc_error`.
  pub fn grow(&mut self, new_cap: usize) {
    if let Err(e) = self.try_grow(new_cap) {
      e.raise("HeapLru::grow");
    }
  }

  /// Like [`grow`](Self::grow), but returns an error (and leaves the map
  /// unchanged) if `new_cap > I::MAX`, if the arrays' byte size overflows,
  /// or if the allocation fails. Nothing is moved before the new arrays
  /// exist, so a failure loses nothing.
  pub fn try_grow(&mut self, new_cap: usize) -> Result<(), CapacityError> {
    if new_cap <= self.cap() {
      return Ok(());
    }
    let mut fresh = HeapStorage::<K, V, I>::try_new(new_cap)?;
    let len = self.len();
    {
      let old = self.storage.parts_mut();
      let new = fresh.parts_mut();
      let mut s = old.hdr.head;
      for i in 0..len {
        let o = s.to_usize();
        s = old.next[o];
        // SAFETY: `o` is on the old used list, so initialised. The old header
        // is reset below, so the old storage never reads or drops it again;
        // its new owner is slot `i` of `fresh`.
        unsafe {
          new.keys[i].write(old.keys[o].assume_init_read());
          new.values[i].write(old.values[o].assume_init_read());
        }
        new.prev[i] = if i == 0 { I::MAX } else { I::from_usize(i - 1) };
        new.next[i] = if i + 1 == len {
          I::MAX
        } else {
          I::from_usize(i + 1)
        };
      }
      *old.hdr = Header::EMPTY;
      *new.hdr = if len == 0 {
        Header::EMPTY
      } else {
        Header {
          len: I::from_usize(len),
          head: I::ZERO,
          tail: I::from_usize(len - 1),
          free: I::MAX,
        }
      };
    }
    // The old storage owns nothing now; dropping it only frees its arrays.
    drop(mem::replace(&mut self.storage, fresh));
    // Rebuild the index. A panicking `Hash` leaves some entries unindexed but
    // every bucket still names a used slot (map.rs invariant 2).
    let hasher = &self.hasher;
    let p = self.storage.parts_mut();
    for i in 0..len {
      // SAFETY: slots `0..len` were initialised above.
      let h = hasher.hash_one(unsafe { p.keys[i].assume_init_ref() });
      let pos = probe_empty(p.index, h);
      p.index[pos] = I::from_usize(i);
    }
    Ok(())
  }
}
