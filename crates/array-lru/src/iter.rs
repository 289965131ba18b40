//! Iterators. All walk the used list (MRU -> LRU forward, LRU -> MRU
//! backward) and never change the order.

use core::fmt;
use core::iter::FusedIterator;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crate::storage::raw::{Header, Parts, PartsMut};
use crate::storage::Storage;
use crate::IndexType;

/// Iterator over `(&K, &V)`, most recently used first. Double-ended, exact
/// size. Returned by [`Lru::iter`](crate::Lru::iter).
pub struct Iter<'a, K, V, I> {
  keys: &'a [MaybeUninit<K>],
  values: &'a [MaybeUninit<V>],
  next: &'a [I],
  prev: &'a [I],
  front: I,
  back: I,
  remaining: usize,
}

impl<'a, K, V, I: IndexType> Iter<'a, K, V, I> {
  #[inline]
  pub(crate) fn new(p: Parts<'a, K, V, I>) -> Self {
    Self {
      keys: p.keys,
      values: p.values,
      next: p.next,
      prev: p.prev,
      front: p.hdr.head,
      back: p.hdr.tail,
      remaining: p.hdr.len.to_usize(),
    }
  }

  #[inline]
  fn item(&self, s: usize) -> (&'a K, &'a V) {
    // SAFETY: `s` is on the used list (we never step more than `remaining`
    // links from the ends), so its key and value are initialised, and the
    // shared borrow of the map keeps them alive and unmodified for 'a.
    unsafe {
      (
        self.keys[s].assume_init_ref(),
        self.values[s].assume_init_ref(),
      )
    }
  }
}

impl<K, V, I: Copy> Clone for Iter<'_, K, V, I> {
  fn clone(&self) -> Self {
    Self { ..*self }
  }
}

impl<'a, K, V, I: IndexType> Iterator for Iter<'a, K, V, I> {
  type Item = (&'a K, &'a V);

  #[inline]
  fn next(&mut self) -> Option<Self::Item> {
    if self.remaining == 0 {
      return None;
    }
    self.remaining -= 1;
    let s = self.front.to_usize();
    self.front = self.next[s];
    Some(self.item(s))
  }

  #[inline]
  fn size_hint(&self) -> (usize, Option<usize>) {
    (self.remaining, Some(self.remaining))
  }
}

impl<K, V, I: IndexType> DoubleEndedIterator for Iter<'_, K, V, I> {
  #[inline]
  fn next_back(&mut self) -> Option<Self::Item> {
    if self.remaining == 0 {
      return None;
    }
    self.remaining -= 1;
    let s = self.back.to_usize();
    self.back = self.prev[s];
    Some(self.item(s))
  }
}

impl<K, V, I: IndexType> ExactSizeIterator for Iter<'_, K, V, I> {}
impl<K, V, I: IndexType> FusedIterator for Iter<'_, K, V, I> {}

impl<K: fmt::Debug, V: fmt::Debug, I: IndexType> fmt::Debug for Iter<'_, K, V, I> {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_list().entries(self.clone()).finish()
  }
}

/// Iterator over `(&K, &mut V)`, most recently used first. Double-ended, exact
/// size. Returned by [`Lru::iter_mut`](crate::Lru::iter_mut).
pub struct IterMut<'a, K, V, I> {
  keys: &'a [MaybeUninit<K>],
  /// Base of the values array, derived once from the exclusive borrow.
  values: *mut MaybeUninit<V>,
  cap: usize,
  next: &'a [I],
  prev: &'a [I],
  front: I,
  back: I,
  remaining: usize,
  marker: PhantomData<&'a mut V>,
}

// SAFETY: `IterMut` is semantically `(&'a [K], &'a mut [V])`: it is Send when
// `&K` and `&mut V` are, and Sync when `&K` and `&mut V` are.
unsafe impl<K: Sync, V: Send, I: Sync> Send for IterMut<'_, K, V, I> {}
// SAFETY: see the Send impl; only shared access is possible through `&IterMut`.
unsafe impl<K: Sync, V: Sync, I: Sync> Sync for IterMut<'_, K, V, I> {}

impl<'a, K, V, I: IndexType> IterMut<'a, K, V, I> {
  #[inline]
  pub(crate) fn new(p: PartsMut<'a, K, V, I>) -> Self {
    let PartsMut {
      hdr,
      keys,
      values,
      prev,
      next,
      ..
    } = p;
    let hdr: &Header<I> = hdr;
    Self {
      cap: values.len(),
      values: values.as_mut_ptr(),
      keys,
      next,
      prev,
      front: hdr.head,
      back: hdr.tail,
      remaining: hdr.len.to_usize(),
      marker: PhantomData,
    }
  }

  #[inline]
  fn item(&mut self, s: usize) -> (&'a K, &'a mut V) {
    assert!(s < self.cap);
    // SAFETY: `s < cap`, so the pointer stays inside the values array we hold
    // an exclusive borrow of for 'a. `s` is on the used list (we step at most
    // `remaining` links from the ends), so the value is initialised. Each
    // used slot appears once on the list and the two ends stop when
    // `remaining` hits 0, so no `&mut` to the same value is handed out twice.
    unsafe {
      let v = &mut *self.values.add(s);
      (self.keys[s].assume_init_ref(), v.assume_init_mut())
    }
  }
}

impl<'a, K, V, I: IndexType> Iterator for IterMut<'a, K, V, I> {
  type Item = (&'a K, &'a mut V);

  #[inline]
  fn next(&mut self) -> Option<Self::Item> {
    if self.remaining == 0 {
      return None;
    }
    self.remaining -= 1;
    let s = self.front.to_usize();
    self.front = self.next[s];
    Some(self.item(s))
  }

  #[inline]
  fn size_hint(&self) -> (usize, Option<usize>) {
    (self.remaining, Some(self.remaining))
  }
}

impl<K, V, I: IndexType> DoubleEndedIterator for IterMut<'_, K, V, I> {
  #[inline]
  fn next_back(&mut self) -> Option<Self::Item> {
    if self.remaining == 0 {
      return None;
    }
    self.remaining -= 1;
    let s = self.back.to_usize();
    self.back = self.prev[s];
    Some(self.item(s))
  }
}

impl<K, V, I: IndexType> ExactSizeIterator for IterMut<'_, K, V, I> {}
impl<K, V, I: IndexType> FusedIterator for IterMut<'_, K, V, I> {}

impl<K, V, I> fmt::Debug for IterMut<'_, K, V, I> {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("IterMut")
      .field("remaining", &self.remaining)
      .finish()
  }
}

macro_rules! projection_iter {
  ($(#[$m:meta])* $name:ident, $inner:ident, $item:ty, |$k:ident, $v:ident| $e:expr) => {
    $(#[$m])*
    pub struct $name<'a, K, V, I> {
      pub(crate) inner: $inner<'a, K, V, I>,
    }
    impl<'a, K, V, I: IndexType> Iterator for $name<'a, K, V, I> {
      type Item = $item;
      #[inline]
      fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|($k, $v)| $e)
      }
      #[inline]
      fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
      }
    }
    impl<K, V, I: IndexType> DoubleEndedIterator for $name<'_, K, V, I> {
      #[inline]
      fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|($k, $v)| $e)
      }
    }
    impl<K, V, I: IndexType> ExactSizeIterator for $name<'_, K, V, I> {}
    impl<K, V, I: IndexType> FusedIterator for $name<'_, K, V, I> {}
    impl<K, V, I> fmt::Debug for $name<'_, K, V, I> {
      fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(stringify!($name))
      }
    }
  };
}

projection_iter!(
  /// Keys, most recently used first. Returned by [`Lru::keys`](crate::Lru::keys).
  Keys, Iter, &'a K, |k, _v| k
);
projection_iter!(
  /// Values, most recently used first. Returned by [`Lru::values`](crate::Lru::values).
  Values, Iter, &'a V, |_k, v| v
);
projection_iter!(
  /// Mutable values, most recently used first. Returned by
  /// [`Lru::values_mut`](crate::Lru::values_mut).
  ValuesMut, IterMut, &'a mut V, |_k, v| v
);

impl<K, V, I: Copy> Clone for Keys<'_, K, V, I> {
  fn clone(&self) -> Self {
    Self {
      inner: self.inner.clone(),
    }
  }
}

impl<K, V, I: Copy> Clone for Values<'_, K, V, I> {
  fn clone(&self) -> Self {
    Self {
      inner: self.inner.clone(),
    }
  }
}

/// Owning iterator over `(K, V)`, most recently used first. Double-ended,
/// exact size. Entries not yielded are dropped with the iterator.
pub struct IntoIter<K, V, St: Storage<K, V>> {
  /// Storage whose header was reset to empty: it owns no entries any more,
  /// so its own `Drop` only frees memory. The entries still to be yielded are
  /// the `remaining` slots between `front` and `back`.
  storage: St,
  front: St::Index,
  back: St::Index,
  remaining: usize,
  marker: PhantomData<(K, V)>,
}

impl<K, V, St: Storage<K, V>> IntoIter<K, V, St> {
  pub(crate) fn new(mut storage: St) -> Self {
    let p = storage.parts_mut();
    let hdr = *p.hdr;
    // The list links stay intact; only the header forgets the entries. The
    // index is not used again.
    *p.hdr = Header::EMPTY;
    Self {
      storage,
      front: hdr.head,
      back: hdr.tail,
      remaining: hdr.len.to_usize(),
      marker: PhantomData,
    }
  }

  #[inline]
  fn take(&mut self, s: usize) -> (K, V) {
    let p = self.storage.parts_mut();
    // SAFETY: `s` is one of the `remaining` slots that were on the used list
    // when the iterator was created; each is taken at most once (the ends
    // stop when `remaining` hits 0) and nothing else reads or drops it.
    unsafe { (p.keys[s].assume_init_read(), p.values[s].assume_init_read()) }
  }
}

impl<K, V, St: Storage<K, V>> Iterator for IntoIter<K, V, St> {
  type Item = (K, V);

  #[inline]
  fn next(&mut self) -> Option<(K, V)> {
    if self.remaining == 0 {
      return None;
    }
    self.remaining -= 1;
    let s = self.front.to_usize();
    self.front = self.storage.parts().next[s];
    Some(self.take(s))
  }

  #[inline]
  fn size_hint(&self) -> (usize, Option<usize>) {
    (self.remaining, Some(self.remaining))
  }
}

impl<K, V, St: Storage<K, V>> DoubleEndedIterator for IntoIter<K, V, St> {
  #[inline]
  fn next_back(&mut self) -> Option<(K, V)> {
    if self.remaining == 0 {
      return None;
    }
    self.remaining -= 1;
    let s = self.back.to_usize();
    self.back = self.storage.parts().prev[s];
    Some(self.take(s))
  }
}

impl<K, V, St: Storage<K, V>> ExactSizeIterator for IntoIter<K, V, St> {}
impl<K, V, St: Storage<K, V>> FusedIterator for IntoIter<K, V, St> {}

impl<K, V, St: Storage<K, V>> Drop for IntoIter<K, V, St> {
  fn drop(&mut self) {
    /// If a destructor panics, dropping this guard during unwinding drops
    /// the entries after it.
    struct Rest<'a, K, V, St: Storage<K, V>>(&'a mut IntoIter<K, V, St>);
    impl<K, V, St: Storage<K, V>> Drop for Rest<'_, K, V, St> {
      fn drop(&mut self) {
        self.0.by_ref().for_each(drop);
      }
    }
    // Drop the entries not yielded.
    let rest = Rest(self);
    rest.0.by_ref().for_each(drop);
  }
}

impl<K, V, St: Storage<K, V>> fmt::Debug for IntoIter<K, V, St> {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("IntoIter")
      .field("remaining", &self.remaining)
      .finish()
  }
}

// ---------------------------------------------------------------------------
// Key order
// ---------------------------------------------------------------------------

/// Entries `(&K, &V)` in ascending key order. Returned by
/// [`Lru::iter_key_order`](crate::Lru::iter_key_order). Double-ended, exact
/// size.
///
/// With feature `alloc` the slots were sorted once when the iterator was
/// created (O(N log N)); each step is O(1). Without `alloc` each step scans
/// all entries for the next key (O(N) per step).
pub struct KeyOrderIter<'a, K, V, I> {
  keys: &'a [MaybeUninit<K>],
  values: &'a [MaybeUninit<V>],
  #[cfg(feature = "alloc")]
  order: alloc::vec::IntoIter<I>,
  #[cfg(not(feature = "alloc"))]
  scan: ScanState<'a, K, I>,
}

#[cfg(not(feature = "alloc"))]
struct ScanState<'a, K, I> {
  next: &'a [I],
  head: I,
  len: usize,
  /// Keys already yielded from the front are `<= lo`, from the back `>= hi`.
  lo: Option<&'a K>,
  hi: Option<&'a K>,
  remaining: usize,
}

impl<'a, K: Ord, V, I: IndexType> KeyOrderIter<'a, K, V, I> {
  pub(crate) fn new(p: Parts<'a, K, V, I>) -> Self {
    #[cfg(feature = "alloc")]
    {
      let mut order = alloc::vec::Vec::with_capacity(p.hdr.len.to_usize());
      let mut s = p.hdr.head;
      for _ in 0..p.hdr.len.to_usize() {
        order.push(s);
        s = p.next[s.to_usize()];
      }
      let keys = p.keys;
      // SAFETY: every slot in `order` is on the used list (invariant 1).
      order.sort_unstable_by(|&a, &b| unsafe {
        keys[a.to_usize()]
          .assume_init_ref()
          .cmp(keys[b.to_usize()].assume_init_ref())
      });
      Self {
        keys: p.keys,
        values: p.values,
        order: order.into_iter(),
      }
    }
    #[cfg(not(feature = "alloc"))]
    {
      Self {
        keys: p.keys,
        values: p.values,
        scan: ScanState {
          next: p.next,
          head: p.hdr.head,
          len: p.hdr.len.to_usize(),
          lo: None,
          hi: None,
          remaining: p.hdr.len.to_usize(),
        },
      }
    }
  }

  #[inline]
  fn item(&self, s: usize) -> (&'a K, &'a V) {
    // SAFETY: `s` is a used slot (from the list walk), initialised, and the
    // shared borrow of the map keeps it alive for 'a.
    unsafe {
      (
        self.keys[s].assume_init_ref(),
        self.values[s].assume_init_ref(),
      )
    }
  }

  /// Smallest (or with `largest`, largest) key strictly between `lo` and `hi`.
  #[cfg(not(feature = "alloc"))]
  fn find_next_key(&self, largest: bool) -> usize {
    let st = &self.scan;
    let mut best: Option<(usize, &K)> = None;
    let mut s = st.head;
    for _ in 0..st.len {
      let i = s.to_usize();
      s = st.next[i];
      // SAFETY: `i` is on the used list.
      let k = unsafe { self.keys[i].assume_init_ref() };
      if st.lo.is_some_and(|lo| k <= lo) || st.hi.is_some_and(|hi| k >= hi) {
        continue;
      }
      let better = match best {
        None => true,
        Some((_, b)) => {
          if largest {
            k > b
          } else {
            k < b
          }
        }
      };
      if better {
        best = Some((i, k));
      }
    }
    // `remaining > 0` guarantees at least one key lies strictly between the
    // bounds (keys are unique).
    best
      .map(|(i, _)| i)
      .expect("key-order iterator lost an entry (inconsistent Ord?)")
  }
}

impl<'a, K: Ord, V, I: IndexType> Iterator for KeyOrderIter<'a, K, V, I> {
  type Item = (&'a K, &'a V);

  #[inline]
  fn next(&mut self) -> Option<Self::Item> {
    #[cfg(feature = "alloc")]
    {
      let s = self.order.next()?;
      Some(self.item(s.to_usize()))
    }
    #[cfg(not(feature = "alloc"))]
    {
      if self.scan.remaining == 0 {
        return None;
      }
      let s = self.find_next_key(false);
      self.scan.remaining -= 1;
      let item = self.item(s);
      self.scan.lo = Some(item.0);
      Some(item)
    }
  }

  #[inline]
  fn size_hint(&self) -> (usize, Option<usize>) {
    #[cfg(feature = "alloc")]
    let n = self.order.len();
    #[cfg(not(feature = "alloc"))]
    let n = self.scan.remaining;
    (n, Some(n))
  }
}

impl<K: Ord, V, I: IndexType> DoubleEndedIterator for KeyOrderIter<'_, K, V, I> {
  #[inline]
  fn next_back(&mut self) -> Option<Self::Item> {
    #[cfg(feature = "alloc")]
    {
      let s = self.order.next_back()?;
      Some(self.item(s.to_usize()))
    }
    #[cfg(not(feature = "alloc"))]
    {
      if self.scan.remaining == 0 {
        return None;
      }
      let s = self.find_next_key(true);
      self.scan.remaining -= 1;
      let item = self.item(s);
      self.scan.hi = Some(item.0);
      Some(item)
    }
  }
}

impl<K: Ord, V, I: IndexType> ExactSizeIterator for KeyOrderIter<'_, K, V, I> {}
impl<K: Ord, V, I: IndexType> FusedIterator for KeyOrderIter<'_, K, V, I> {}

impl<K, V, I> fmt::Debug for KeyOrderIter<'_, K, V, I> {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("KeyOrderIter")
  }
}
