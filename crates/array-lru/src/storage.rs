//! The two storages behind [`Lru`](crate::Lru): inline arrays and boxed slices.
//! The algorithm in `map.rs` only sees the slices handed out by
//! [`raw::RawStorage`].

use core::mem::MaybeUninit;

use crate::IndexType;

pub(crate) mod raw {
  use core::mem::MaybeUninit;

  use crate::IndexType;

  /// Header fields of a map. `I::MAX` means "none".
  #[derive(Clone, Copy, Debug)]
  pub struct Header<I> {
    /// Number of live entries.
    pub len: I,
    /// Most recently used slot.
    pub head: I,
    /// Least recently used slot.
    pub tail: I,
    /// First slot of the free list (threaded through `next`).
    pub free: I,
  }

  impl<I: IndexType> Header<I> {
    pub const EMPTY: Self = Self {
      len: I::ZERO,
      head: I::MAX,
      tail: I::MAX,
      free: I::MAX,
    };
  }

  /// Shared view of a storage. All slices except `index` have length `cap`;
  /// `index` has length `2 * cap`.
  pub struct Parts<'a, K, V, I> {
    pub hdr: &'a Header<I>,
    pub keys: &'a [MaybeUninit<K>],
    pub values: &'a [MaybeUninit<V>],
    pub prev: &'a [I],
    pub next: &'a [I],
    pub index: &'a [I],
  }

  /// Mutable view of a storage (same shapes as [`Parts`]).
  pub struct PartsMut<'a, K, V, I> {
    pub hdr: &'a mut Header<I>,
    pub keys: &'a mut [MaybeUninit<K>],
    pub values: &'a mut [MaybeUninit<V>],
    pub prev: &'a mut [I],
    pub next: &'a mut [I],
    pub index: &'a mut [I],
  }

  /// Storage of one map: a header plus the five arrays.
  ///
  /// Implementors guarantee the slice lengths documented on [`Parts`], that
  /// the header starts as [`Header::EMPTY`] with all links and index buckets
  /// set to `I::MAX`, and that dropping the storage drops the live entries
  /// (see `map::drop_live`).
  pub trait RawStorage<K, V> {
    type Index: IndexType;
    fn parts(&self) -> Parts<'_, K, V, Self::Index>;
    fn parts_mut(&mut self) -> PartsMut<'_, K, V, Self::Index>;
    /// An empty storage with the same capacity.
    fn empty_like(&self) -> Self
    where
      Self: Sized;
    /// Bytes allocated on the heap by this storage.
    fn heap_bytes(&self) -> usize;
  }
}

use raw::{Header, Parts, PartsMut, RawStorage};

/// Storage of an [`Lru`](crate::Lru): [`ArrayStorage`] (inline) or
/// [`HeapStorage`](crate::HeapStorage) (boxed slices, feature `alloc`). Sealed:
/// it cannot be implemented outside this crate.
pub trait Storage<K, V>: RawStorage<K, V> {}
impl<K, V, T: RawStorage<K, V>> Storage<K, V> for T {}

/// Inline storage with compile-time capacity `CAP` (no allocation).
///
/// The hash index of `2 * CAP` buckets is stored as `[[I; 2]; CAP]` because
/// `[I; 2 * CAP]` is not expressible with const generics on stable Rust.
pub struct ArrayStorage<K, V, const CAP: usize, I: IndexType = u32> {
  hdr: Header<I>,
  keys: [MaybeUninit<K>; CAP],
  values: [MaybeUninit<V>; CAP],
  prev: [I; CAP],
  next: [I; CAP],
  index: [[I; 2]; CAP],
}

impl<K, V, const CAP: usize, I: IndexType> ArrayStorage<K, V, CAP, I> {
  /// Rejects at compile time (post-monomorphisation) a `CAP` that does not
  /// fit the index type.
  pub(crate) const CAP_FITS: () = assert!(
    CAP <= I::MAX_CAPACITY,
    "ArrayLru: CAP exceeds the maximum for index type I (CAP must be <= I::MAX)"
  );

  #[inline]
  pub(crate) fn new() -> Self {
    const { Self::CAP_FITS };
    Self {
      hdr: Header::EMPTY,
      keys: [const { MaybeUninit::uninit() }; CAP],
      values: [const { MaybeUninit::uninit() }; CAP],
      prev: [I::MAX; CAP],
      next: [I::MAX; CAP],
      index: [[I::MAX; 2]; CAP],
    }
  }

  /// Initialises a storage in place without building it on the stack.
  ///
  /// # Safety
  ///
  /// `ptr` must be valid for writes of `Self` and suitably aligned. The
  /// pointee may be uninitialised; afterwards it is a valid, empty storage.
  #[cfg(feature = "alloc")]
  pub(crate) unsafe fn init_at(ptr: *mut Self) {
    const { Self::CAP_FITS };
    // SAFETY: (whole block) the caller guarantees `ptr` is valid for writes of
    // `Self`. Only raw place projections (`&raw mut`) are taken, never a
    // reference to uninitialised memory, and every write stays inside the
    // field it targets (`CAP` elements for `prev`/`next`, `2 * CAP` for the
    // `[[I; 2]; CAP]` index, which is laid out as `2 * CAP` contiguous `I`s).
    // `keys` and `values` are arrays of `MaybeUninit`, valid uninitialised.
    unsafe {
      (&raw mut (*ptr).hdr).write(Header::EMPTY);
      let prev = (&raw mut (*ptr).prev).cast::<I>();
      let next = (&raw mut (*ptr).next).cast::<I>();
      for i in 0..CAP {
        prev.add(i).write(I::MAX);
        next.add(i).write(I::MAX);
      }
      let index = (&raw mut (*ptr).index).cast::<I>();
      for i in 0..2 * CAP {
        index.add(i).write(I::MAX);
      }
    }
  }
}

impl<K, V, const CAP: usize, I: IndexType> RawStorage<K, V> for ArrayStorage<K, V, CAP, I> {
  type Index = I;

  #[inline(always)]
  fn parts(&self) -> Parts<'_, K, V, I> {
    Parts {
      hdr: &self.hdr,
      keys: &self.keys,
      values: &self.values,
      prev: &self.prev,
      next: &self.next,
      index: self.index.as_flattened(),
    }
  }

  #[inline(always)]
  fn parts_mut(&mut self) -> PartsMut<'_, K, V, I> {
    PartsMut {
      hdr: &mut self.hdr,
      keys: &mut self.keys,
      values: &mut self.values,
      prev: &mut self.prev,
      next: &mut self.next,
      index: self.index.as_flattened_mut(),
    }
  }

  fn empty_like(&self) -> Self {
    Self::new()
  }

  fn heap_bytes(&self) -> usize {
    0
  }
}

impl<K, V, const CAP: usize, I: IndexType> Drop for ArrayStorage<K, V, CAP, I> {
  fn drop(&mut self) {
    crate::map::drop_live(self.parts_mut());
  }
}

#[cfg(feature = "alloc")]
pub use heap_storage::HeapStorage;

#[cfg(feature = "alloc")]
mod heap_storage {
  use alloc::alloc::{alloc, dealloc, Layout};
  use core::marker::PhantomData;
  use core::mem::MaybeUninit;
  use core::ptr::NonNull;
  use core::slice;

  use super::raw::{Header, Parts, PartsMut, RawStorage};
  use crate::{CapacityError, IndexType};

  /// Heap storage with a capacity chosen at run time. The five arrays live in
  /// ONE allocation, laid out like the inline form (keys, values, prev, next,
  /// index), made once and never built on the stack.
  pub struct HeapStorage<K, V, I: IndexType = u32> {
    hdr: Header<I>,
    cap: usize,
    keys: NonNull<MaybeUninit<K>>,
    values: NonNull<MaybeUninit<V>>,
    prev: NonNull<I>,
    next: NonNull<I>,
    index: NonNull<I>,
    /// Layout of the allocation starting at `keys` (size 0: nothing allocated).
    layout: Layout,
    /// The storage owns `K`s and `V`s (drop check, variance).
    marker: PhantomData<(K, V)>,
  }

  // SAFETY: `HeapStorage` owns its allocation exclusively (like a
  // `Box<[MaybeUninit<K>]>` etc.), so it can move to another thread when the
  // keys and values can.
  unsafe impl<K: Send, V: Send, I: IndexType> Send for HeapStorage<K, V, I> {}
  // SAFETY: shared access only hands out shared references to keys, values
  // and indices.
  unsafe impl<K: Sync, V: Sync, I: IndexType> Sync for HeapStorage<K, V, I> {}

  /// Layout of the arrays for `cap` slots and the offsets of values, prev,
  /// next and index (keys are at offset 0).
  fn layout_for<K, V, I>(cap: usize) -> Option<(Layout, [usize; 4])> {
    let l = Layout::array::<MaybeUninit<K>>(cap).ok()?;
    let (l, ov) = l.extend(Layout::array::<MaybeUninit<V>>(cap).ok()?).ok()?;
    let (l, op) = l.extend(Layout::array::<I>(cap).ok()?).ok()?;
    let (l, on) = l.extend(Layout::array::<I>(cap).ok()?).ok()?;
    let (l, oi) = l
      .extend(Layout::array::<I>(cap.checked_mul(2)?).ok()?)
      .ok()?;
    Some((l.pad_to_align(), [ov, op, on, oi]))
  }

  impl<K, V, I: IndexType> HeapStorage<K, V, I> {
    /// Size in bytes of the one allocation for `cap` slots, or `None` when
    /// `cap` exceeds the index type or the size overflows `isize::MAX`.
    pub(crate) fn bytes_for(cap: usize) -> Option<usize> {
      if cap > I::MAX_CAPACITY {
        return None;
      }
      layout_for::<K, V, I>(cap).map(|(l, _)| l.size())
    }

    /// An empty storage for `cap` slots. Never aborts: an impossible
    /// capacity or a failed allocation is an error (which, for an
    /// allocation, carries the refused layout).
    pub(crate) fn try_new(cap: usize) -> Result<Self, CapacityError> {
      // The largest capacity whose arrays' byte size fits `isize::MAX`.
      let by_size = isize::MAX as usize / crate::bytes_per_entry::<K, V, I>().max(1);
      if cap > I::MAX_CAPACITY {
        return Err(CapacityError::new(cap, I::MAX_CAPACITY.min(by_size)));
      }
      let Some((layout, [ov, op, on, oi])) = layout_for::<K, V, I>(cap) else {
        return Err(CapacityError::new(cap, I::MAX_CAPACITY.min(by_size)));
      };
      let base: NonNull<u8> = if layout.size() == 0 {
        // Nothing to allocate (cap 0): any aligned dangling pointer will do
        // for the zero-length (or zero-sized) arrays.
        NonNull::new(core::ptr::without_provenance_mut(layout.align()))
          .expect("alignment is non-zero")
      } else {
        // SAFETY: the layout has non-zero size.
        match NonNull::new(unsafe { alloc(layout) }) {
          Some(p) => p,
          // Not `handle_alloc_error`: that aborts the process by default.
          None => {
            return Err(CapacityError::alloc_failed(
              cap,
              I::MAX_CAPACITY.min(by_size),
              layout,
            ))
          }
        }
      };
      // SAFETY: each offset comes from `Layout::extend` on this layout, so
      // every array starts inside (or, for empty arrays, at the end of) the
      // allocation, suitably aligned, and the arrays do not overlap. With a
      // zero-size layout all offsets are 0 and the pointer is aligned for
      // every array, which all have length 0 or zero-sized elements.
      let (keys, values, prev, next, index) = unsafe {
        (
          base.cast::<MaybeUninit<K>>(),
          base.add(ov).cast::<MaybeUninit<V>>(),
          base.add(op).cast::<I>(),
          base.add(on).cast::<I>(),
          base.add(oi).cast::<I>(),
        )
      };
      // Filling the links and the index with the EMPTY sentinel writes
      // `4 * size_of I` bytes per slot, so on an operating system that
      // overcommits, those pages are backed here, at construction; the keys
      // and values stay untouched until entries are stored in them.
      // SAFETY: `prev` and `next` have room for `cap` and `index` for
      // `2 * cap` elements of `I` (see above); writing initialises them.
      unsafe {
        for i in 0..cap {
          prev.add(i).write(I::MAX);
          next.add(i).write(I::MAX);
        }
        for i in 0..2 * cap {
          index.add(i).write(I::MAX);
        }
      }
      Ok(Self {
        hdr: Header::EMPTY,
        cap,
        keys,
        values,
        prev,
        next,
        index,
        layout,
        marker: PhantomData,
      })
    }
  }

  impl<K, V, I: IndexType> RawStorage<K, V> for HeapStorage<K, V, I> {
    type Index = I;

    #[inline(always)]
    fn parts(&self) -> Parts<'_, K, V, I> {
      let c = self.cap;
      // SAFETY: the five arrays are disjoint regions of our allocation with
      // `c` (index: `2 * c`) elements each; `prev`, `next` and `index` were
      // initialised in `try_new`, keys and values are `MaybeUninit`. The
      // shared borrow of `self` rules out concurrent mutation.
      unsafe {
        Parts {
          hdr: &self.hdr,
          keys: slice::from_raw_parts(self.keys.as_ptr(), c),
          values: slice::from_raw_parts(self.values.as_ptr(), c),
          prev: slice::from_raw_parts(self.prev.as_ptr(), c),
          next: slice::from_raw_parts(self.next.as_ptr(), c),
          index: slice::from_raw_parts(self.index.as_ptr(), 2 * c),
        }
      }
    }

    #[inline(always)]
    fn parts_mut(&mut self) -> PartsMut<'_, K, V, I> {
      let c = self.cap;
      // SAFETY: as in `parts`; the exclusive borrow of `self` makes these the
      // only references into the allocation, and the regions are disjoint,
      // so the five `&mut` slices do not alias.
      unsafe {
        PartsMut {
          hdr: &mut self.hdr,
          keys: slice::from_raw_parts_mut(self.keys.as_ptr(), c),
          values: slice::from_raw_parts_mut(self.values.as_ptr(), c),
          prev: slice::from_raw_parts_mut(self.prev.as_ptr(), c),
          next: slice::from_raw_parts_mut(self.next.as_ptr(), c),
          index: slice::from_raw_parts_mut(self.index.as_ptr(), 2 * c),
        }
      }
    }

    fn empty_like(&self) -> Self {
      // The capacity was accepted when `self` was built, so only the
      // allocation can fail: `Clone` then behaves like `Vec`'s.
      Self::try_new(self.cap).unwrap_or_else(|e| e.raise("HeapLru::clone"))
    }

    fn heap_bytes(&self) -> usize {
      self.layout.size()
    }
  }

  impl<K, V, I: IndexType> Drop for HeapStorage<K, V, I> {
    fn drop(&mut self) {
      /// Frees the allocation even if a key or value destructor panics.
      struct Free(NonNull<u8>, Layout);
      impl Drop for Free {
        fn drop(&mut self) {
          if self.1.size() != 0 {
            // SAFETY: allocated in `try_new` with exactly this layout, and
            // freed only here, once.
            unsafe { dealloc(self.0.as_ptr(), self.1) }
          }
        }
      }
      let _free = Free(self.keys.cast(), self.layout);
      crate::map::drop_live(self.parts_mut());
    }
  }
}
