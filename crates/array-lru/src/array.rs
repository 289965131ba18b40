//! Constructors of the inline form [`ArrayLru`](crate::ArrayLru).

#[cfg(feature = "alloc")]
use alloc::boxed::Box;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;

use crate::map::Lru;
use crate::storage::ArrayStorage;
use crate::{FixedState, IndexType};

impl<K, V, const CAP: usize, I: IndexType> Lru<K, V, ArrayStorage<K, V, CAP, I>, FixedState> {
  /// An empty map with the default fixed-seed hasher, built on the stack
  /// (`size_of::<Self>()` bytes; see [`ArrayLru::new_boxed`](crate::ArrayLru::new_boxed) for large
  /// capacities).
  ///
  /// `CAP > I::MAX` fails to compile (post-monomorphisation const error).
  #[inline]
  pub fn new() -> Self {
    Self::with_hasher(FixedState::default())
  }

  /// An empty map allocated and initialised directly on the heap: the value
  /// is never built on the stack, so any `CAP` works (feature `alloc`).
  #[cfg(feature = "alloc")]
  pub fn new_boxed() -> Box<Self> {
    Self::new_boxed_with_hasher(FixedState::default())
  }
}

impl<K, V, const CAP: usize, I: IndexType, S> Lru<K, V, ArrayStorage<K, V, CAP, I>, S> {
  /// An empty map using `hasher`.
  #[inline]
  pub fn with_hasher(hasher: S) -> Self {
    Lru {
      storage: ArrayStorage::new(),
      hasher,
      marker: PhantomData,
    }
  }

  /// [`ArrayLru::new_boxed`](crate::ArrayLru::new_boxed) with a given hasher.
  #[cfg(feature = "alloc")]
  pub fn new_boxed_with_hasher(hasher: S) -> Box<Self> {
    let mut b = Box::<Self>::new_uninit();
    let p: *mut Self = b.as_mut_ptr();
    // SAFETY: `p` points to a live, aligned, uninitialised allocation of
    // `Self` owned by `b`. We initialise every field through raw place
    // projections: the storage with `init_at` (whose contract is exactly
    // this), the hasher with a write; `marker` is a zero-sized `PhantomData`.
    // After that the whole value is initialised, so `assume_init` is sound.
    unsafe {
      ArrayStorage::init_at(&raw mut (*p).storage);
      (&raw mut (*p).hasher).write(hasher);
      b.assume_init()
    }
  }
}

impl<K: Hash + Eq + Clone, V: Clone, const CAP: usize, I: IndexType, S: BuildHasher + Clone>
  Lru<K, V, ArrayStorage<K, V, CAP, I>, S>
{
  /// A clone built directly on the heap (never on the stack), for large `CAP`
  /// (feature `alloc`).
  #[cfg(feature = "alloc")]
  pub fn clone_boxed(&self) -> Box<Self> {
    let mut b = Self::new_boxed_with_hasher(self.hasher.clone());
    b.clone_entries_from(self);
    b
  }
}

impl<K, V, const CAP: usize, I: IndexType, S: Default> Default
  for Lru<K, V, ArrayStorage<K, V, CAP, I>, S>
{
  /// Same as `with_hasher(S::default())`.
  fn default() -> Self {
    Self::with_hasher(S::default())
  }
}
