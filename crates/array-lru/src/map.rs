//! The LRU algorithm, written once over [`Storage`].
//!
//! Invariants (checked by `check_invariants` in tests):
//! 1. A slot's key and value are initialised iff the slot is on the used list
//!    (`head` .. `tail` through `next`, `len` slots long).
//! 2. Every bucket of the index is EMPTY (`I::MAX`) or the number of a used
//!    slot, and no slot appears in two buckets. Normally every used slot
//!    appears exactly once and is reachable by linear probing from its home
//!    bucket. If a user `Hash` impl panics in the middle of a removal or of
//!    `grow`, some used slots may be missing from the index (they are then
//!    invisible to lookups but still iterated, popped and dropped); 2 itself
//!    still holds, which is all that memory safety relies on.
//! 3. Used and free-list slots together are exactly `0..len + free_len`
//!    (slots are handed out in order), so when the free list is empty the
//!    next fresh slot is `len`.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::mem;

use crate::iter::{IntoIter, Iter, IterMut, KeyOrderIter, Keys, Values, ValuesMut};
use crate::storage::raw::{Header, PartsMut};
use crate::storage::Storage;
use crate::{FixedState, IndexType, Insert};

mod invariants;
mod slots;

pub(crate) use slots::{bucket, drop_live, probe_empty};
use slots::{drop_chain, index_remove, prefetch, scan_for_slot, wrap_inc};

/// A fixed-capacity LRU map over a storage `St` (see [`ArrayLru`](crate::ArrayLru)
/// and [`HeapLru`](crate::HeapLru) for the two concrete forms) with hasher `S`.
///
/// Methods that "promote" move the entry to the most recently used (MRU) end;
/// `peek*`, `contains` and iteration never change the order.
///
/// Panics in user code never cause undefined behaviour or double drops. A
/// panicking destructor during `clear`/drop still lets the other entries be
/// dropped. If a `Hash` impl panics in the middle of a removal or of `grow`,
/// some entries can become invisible to lookups (they are still iterated,
/// popped, evicted and dropped normally).
pub struct Lru<K, V, St, S = FixedState> {
  pub(crate) storage: St,
  pub(crate) hasher: S,
  pub(crate) marker: PhantomData<fn() -> (K, V)>,
}

// ---------------------------------------------------------------------------
// Methods that need no hashing.
// ---------------------------------------------------------------------------

impl<K, V, St: Storage<K, V>, S> Lru<K, V, St, S> {
  /// Number of entries.
  #[inline]
  pub fn len(&self) -> usize {
    self.storage.parts().hdr.len.to_usize()
  }

  /// `true` if there are no entries.
  #[inline]
  pub fn is_empty(&self) -> bool {
    self.len() == 0
  }

  /// Capacity: the most entries the map can hold.
  #[inline]
  pub fn cap(&self) -> usize {
    self.storage.parts().keys.len()
  }

  /// `true` if `len() == cap()` (the next new key evicts; always true for
  /// capacity 0).
  #[inline]
  pub fn is_full(&self) -> bool {
    self.len() == self.cap()
  }

  /// The hasher.
  #[inline]
  pub fn hasher(&self) -> &S {
    &self.hasher
  }

  /// Bytes used by this map: `size_of::<Self>()` plus the heap arrays of the
  /// heap form (`cap * bytes_per_entry`); inline maps allocate nothing.
  pub fn memory_bytes(&self) -> usize {
    mem::size_of::<Self>() + self.storage.heap_bytes()
  }

  /// Drops all entries. O(len) drops plus a fill of the index (O(cap)).
  ///
  /// If a key or value destructor panics, the map is already empty and the
  /// remaining entries are still dropped before the panic propagates.
  pub fn clear(&mut self) {
    let p = self.storage.parts_mut();
    let head = p.hdr.head;
    let len = p.hdr.len.to_usize();
    if len == 0 {
      return;
    }
    *p.hdr = Header::EMPTY;
    p.index.fill(St::Index::MAX);
    // The header already says the map is empty, so the old entries are never
    // used again.
    drop_chain(p.keys, p.values, p.next, head, len);
  }

  /// The least recently used entry, without promoting it.
  #[inline]
  pub fn peek_lru(&self) -> Option<(&K, &V)> {
    let p = self.storage.parts();
    let t = p.hdr.tail;
    if t == St::Index::MAX {
      return None;
    }
    let t = t.to_usize();
    // SAFETY: the tail is on the used list (invariant 1).
    unsafe { Some((p.keys[t].assume_init_ref(), p.values[t].assume_init_ref())) }
  }

  /// The most recently used entry.
  #[inline]
  pub fn peek_mru(&self) -> Option<(&K, &V)> {
    let p = self.storage.parts();
    let h = p.hdr.head;
    if h == St::Index::MAX {
      return None;
    }
    let h = h.to_usize();
    // SAFETY: the head is on the used list (invariant 1).
    unsafe { Some((p.keys[h].assume_init_ref(), p.values[h].assume_init_ref())) }
  }

  /// Iterator over `(&K, &V)` from most to least recently used (reverse it for
  /// LRU first). Does not change the order.
  #[inline]
  pub fn iter(&self) -> Iter<'_, K, V, St::Index> {
    Iter::new(self.storage.parts())
  }

  /// Iterator over `(&K, &mut V)` from most to least recently used.
  #[inline]
  pub fn iter_mut(&mut self) -> IterMut<'_, K, V, St::Index> {
    IterMut::new(self.storage.parts_mut())
  }

  /// Keys from most to least recently used.
  #[inline]
  pub fn keys(&self) -> Keys<'_, K, V, St::Index> {
    Keys { inner: self.iter() }
  }

  /// Values from most to least recently used.
  #[inline]
  pub fn values(&self) -> Values<'_, K, V, St::Index> {
    Values { inner: self.iter() }
  }

  /// Mutable values from most to least recently used.
  #[inline]
  pub fn values_mut(&mut self) -> ValuesMut<'_, K, V, St::Index> {
    ValuesMut {
      inner: self.iter_mut(),
    }
  }

  /// Entries in ascending key order, without changing the LRU order.
  ///
  /// With the `alloc` feature the live slots are collected into a `Vec` and
  /// sorted once when this is called: O(N log N) time, O(N) memory, then O(1)
  /// per step (double-ended). Without `alloc` each step scans all entries for
  /// the next key: O(N) per step, O(N^2) for a full pass, no memory.
  pub fn iter_key_order(&self) -> KeyOrderIter<'_, K, V, St::Index>
  where
    K: Ord,
  {
    KeyOrderIter::new(self.storage.parts())
  }
}

// ---------------------------------------------------------------------------
// Methods that hash.
// ---------------------------------------------------------------------------

impl<K: Hash + Eq, V, St: Storage<K, V>, S: BuildHasher> Lru<K, V, St, S> {
  #[inline(always)]
  fn hash<Q: ?Sized + Hash>(&self, k: &Q) -> u64 {
    self.hasher.hash_one(k)
  }

  /// Probes for `k` with hash `h`: `Ok((bucket, slot))` if present, else
  /// `Err(first EMPTY bucket)`. The index must be non-empty (`cap > 0`).
  #[inline]
  pub(crate) fn find<Q>(&self, h: u64, k: &Q) -> Result<(usize, usize), usize>
  where
    K: Borrow<Q>,
    Q: ?Sized + Eq,
  {
    let p = self.storage.parts();
    let n = p.index.len();
    let mut pos = bucket(h, n);
    loop {
      let e = p.index[pos];
      if e == St::Index::MAX {
        return Err(pos);
      }
      let s = e.to_usize();
      // SAFETY: non-EMPTY buckets name used slots (invariant 2), whose keys
      // are initialised (invariant 1).
      let key = unsafe { p.keys[s].assume_init_ref() };
      if key.borrow() == k {
        return Ok((pos, s));
      }
      pos = wrap_inc(pos, n);
    }
  }

  /// The hash this map computes for `k` (its hasher has a fixed seed by
  /// default, so the value is the same in every process). Pair it with
  /// [`Lru::prefetch_bucket`], [`Lru::prefetch_entry`] and
  /// [`Lru::get_mut_hashed`] to pipeline a batch of lookups.
  #[inline]
  pub fn hash_key<Q: ?Sized + Hash>(&self, k: &Q) -> u64 {
    self.hash(k)
  }

  /// Hint for batched lookups: asks the CPU to start loading the index bucket
  /// of hash `h`. Reads nothing and changes nothing; a no-op on targets
  /// without a prefetch instruction.
  #[inline]
  pub fn prefetch_bucket(&self, h: u64) {
    let index = self.storage.parts().index;
    if !index.is_empty() {
      prefetch(&index[bucket(h, index.len())]);
    }
  }

  /// Hint for batched lookups, to be issued after [`Lru::prefetch_bucket`]
  /// had time to land: reads the home bucket of `h` and, if it names a slot,
  /// starts loading that slot's key, value and links. Changes nothing.
  #[inline]
  pub fn prefetch_entry(&self, h: u64) {
    let p = self.storage.parts();
    if p.index.is_empty() {
      return;
    }
    let e = p.index[bucket(h, p.index.len())];
    if e != St::Index::MAX {
      let s = e.to_usize();
      prefetch(&p.keys[s]);
      prefetch(&p.values[s]);
      prefetch(&p.prev[s]);
      prefetch(&p.next[s]);
    }
  }

  /// Third hint for batched lookups, after [`Lru::prefetch_entry`] had time
  /// to land: starts loading the links of the list neighbours that promoting
  /// the entry of `h` will rewrite. Changes nothing.
  #[inline]
  pub fn prefetch_neighbours(&self, h: u64) {
    let p = self.storage.parts();
    if p.index.is_empty() {
      return;
    }
    let e = p.index[bucket(h, p.index.len())];
    if e != St::Index::MAX {
      let s = e.to_usize();
      let (before, after) = (p.prev[s], p.next[s]);
      if before != St::Index::MAX {
        prefetch(&p.next[before.to_usize()]);
      }
      if after != St::Index::MAX {
        prefetch(&p.prev[after.to_usize()]);
      }
    }
  }

  /// [`Lru::get_mut`] with a hash already computed by [`Lru::hash_key`].
  #[inline]
  pub fn get_mut_hashed<Q>(&mut self, h: u64, k: &Q) -> Option<&mut V>
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    debug_assert_eq!(h, self.hash(k), "hash_key must produce the hash");
    if self.is_empty() {
      return None;
    }
    let (_, s) = self.find(h, k).ok()?;
    let mut p = self.storage.parts_mut();
    p.move_to_front(s);
    let PartsMut { values, .. } = p;
    // SAFETY: `s` is a used slot (found through the index).
    Some(unsafe { values[s].assume_init_mut() })
  }

  /// `(bucket, slot)` of `k`, if present.
  #[inline]
  fn lookup<Q>(&self, k: &Q) -> Option<(usize, usize)>
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    if self.is_empty() {
      return None;
    }
    self.find(self.hash(k), k).ok()
  }

  /// Bucket holding used slot `s`, found by hashing its key.
  fn bucket_of_slot(&self, s: usize) -> Option<usize> {
    let p = self.storage.parts();
    // SAFETY: callers pass a used slot (invariant 1).
    let key = unsafe { p.keys[s].assume_init_ref() };
    let h = self.hasher.hash_one(key);
    let n = p.index.len();
    let si = St::Index::from_usize(s);
    let mut pos = bucket(h, n);
    loop {
      let e = p.index[pos];
      if e == si {
        return Some(pos);
      }
      if e == St::Index::MAX {
        // Only after a panicking `Hash` (see invariant 2).
        return scan_for_slot(p.index, si);
      }
      pos = wrap_inc(pos, n);
    }
  }

  /// Removes the entry in bucket `pos` / slot `s`.
  #[inline]
  fn remove_at(&mut self, pos: usize, s: usize) -> (K, V) {
    let mut p = self.storage.parts_mut();
    index_remove(&self.hasher, &mut p, pos);
    p.take_slot(s)
  }

  /// Removes the entry in used slot `s`.
  pub(crate) fn remove_slot(&mut self, s: usize) -> (K, V) {
    let pos = self.bucket_of_slot(s);
    let mut p = self.storage.parts_mut();
    if let Some(pos) = pos {
      index_remove(&self.hasher, &mut p, pos);
    }
    p.take_slot(s)
  }

  /// Makes room for one new entry whose hash is `h`: if the map is full,
  /// evicts the LRU entry and returns it together with the (possibly moved)
  /// EMPTY bucket for the new key; otherwise returns `pos` unchanged.
  #[inline]
  pub(crate) fn make_room(&mut self, h: u64, pos: usize) -> (usize, Option<(K, V)>) {
    if !self.is_full() {
      return (pos, None);
    }
    let tail = self.storage.parts().hdr.tail.to_usize();
    let evicted = self.remove_slot(tail);
    let p = self.storage.parts();
    // The next eviction hashes the new tail's key to find its bucket: start
    // loading that key now, while the caller does other work (a cold LRU
    // tail is a cache miss).
    let next = p.hdr.tail;
    if next != St::Index::MAX {
      prefetch(&p.keys[next.to_usize()]);
    }
    let pos = probe_empty(p.index, h);
    (pos, Some(evicted))
  }

  /// `true` if `k` is present. Does not promote.
  #[inline]
  pub fn contains<Q>(&self, k: &Q) -> bool
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    self.lookup(k).is_some()
  }

  /// The value of `k`, promoting the entry to most recently used.
  #[inline]
  pub fn get<Q>(&mut self, k: &Q) -> Option<&V>
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    let (_, s) = self.lookup(k)?;
    let mut p = self.storage.parts_mut();
    p.move_to_front(s);
    let PartsMut { values, .. } = p;
    // SAFETY: `s` is a used slot (found through the index).
    Some(unsafe { values[s].assume_init_ref() })
  }

  /// Mutable value of `k`, promoting the entry to most recently used.
  #[inline]
  pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    let (_, s) = self.lookup(k)?;
    let mut p = self.storage.parts_mut();
    p.move_to_front(s);
    let PartsMut { values, .. } = p;
    // SAFETY: `s` is a used slot (found through the index).
    Some(unsafe { values[s].assume_init_mut() })
  }

  /// Stored key and value of `k`, promoting the entry to most recently used.
  #[inline]
  pub fn get_key_value<Q>(&mut self, k: &Q) -> Option<(&K, &V)>
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    let (_, s) = self.lookup(k)?;
    let mut p = self.storage.parts_mut();
    p.move_to_front(s);
    let PartsMut { keys, values, .. } = p;
    // SAFETY: `s` is a used slot (found through the index).
    Some(unsafe { (keys[s].assume_init_ref(), values[s].assume_init_ref()) })
  }

  /// The value of `k` without promoting it.
  #[inline]
  pub fn peek<Q>(&self, k: &Q) -> Option<&V>
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    let (_, s) = self.lookup(k)?;
    // SAFETY: `s` is a used slot (found through the index).
    Some(unsafe { self.storage.parts().values[s].assume_init_ref() })
  }

  /// Mutable value of `k` without promoting it.
  #[inline]
  pub fn peek_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    let (_, s) = self.lookup(k)?;
    let PartsMut { values, .. } = self.storage.parts_mut();
    // SAFETY: `s` is a used slot (found through the index).
    Some(unsafe { values[s].assume_init_mut() })
  }

  /// Stored key and value of `k` without promoting it.
  #[inline]
  pub fn peek_key_value<Q>(&self, k: &Q) -> Option<(&K, &V)>
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    let (_, s) = self.lookup(k)?;
    let p = self.storage.parts();
    // SAFETY: `s` is a used slot (found through the index).
    Some(unsafe { (p.keys[s].assume_init_ref(), p.values[s].assume_init_ref()) })
  }

  /// Moves `k` to the most recently used end. Returns `false` if absent.
  #[inline]
  pub fn promote<Q>(&mut self, k: &Q) -> bool
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    match self.lookup(k) {
      Some((_, s)) => {
        self.storage.parts_mut().move_to_front(s);
        true
      }
      None => false,
    }
  }

  /// Moves `k` to the least recently used end (it becomes the next to be
  /// evicted). Returns `false` if absent.
  #[inline]
  pub fn demote<Q>(&mut self, k: &Q) -> bool
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    match self.lookup(k) {
      Some((_, s)) => {
        self.storage.parts_mut().move_to_back(s);
        true
      }
      None => false,
    }
  }

  /// Inserts `key -> value` as the most recently used entry.
  ///
  /// * `None`: a new entry was added, nothing evicted.
  /// * `Some(Insert::Replaced { key, value })`: `key` was present; its value
  ///   was replaced in place (no duplicate entry, `len` unchanged), the entry
  ///   promoted, and the passed key and the old value are returned.
  /// * `Some(Insert::Evicted { .. })`: the map was full; the least recently
  ///   used entry was removed to make room and is returned.
  /// * `Some(Insert::Rejected { key, value })`: capacity 0; nothing stored.
  #[inline]
  pub fn insert(&mut self, key: K, value: V) -> Option<Insert<K, V>> {
    if self.cap() == 0 {
      return Some(Insert::Rejected { key, value });
    }
    let h = self.hash(&key);
    match self.find(h, &key) {
      Ok((_, s)) => {
        let mut p = self.storage.parts_mut();
        p.move_to_front(s);
        // SAFETY: `s` is a used slot (found through the index).
        let old = mem::replace(unsafe { p.values[s].assume_init_mut() }, value);
        Some(Insert::Replaced { key, value: old })
      }
      Err(pos) => {
        let (pos, evicted) = self.make_room(h, pos);
        self.storage.parts_mut().insert_new(pos, key, value);
        evicted.map(|(key, value)| Insert::Evicted { key, value })
      }
    }
  }

  /// Removes `k` and returns its value.
  #[inline]
  pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    self.remove_entry(k).map(|(_, v)| v)
  }

  /// Removes `k` and returns the stored key and the value.
  #[inline]
  pub fn remove_entry<Q>(&mut self, k: &Q) -> Option<(K, V)>
  where
    K: Borrow<Q>,
    Q: ?Sized + Hash + Eq,
  {
    let (pos, s) = self.lookup(k)?;
    Some(self.remove_at(pos, s))
  }

  /// Removes and returns the least recently used entry.
  #[inline]
  pub fn pop_lru(&mut self) -> Option<(K, V)> {
    let t = self.storage.parts().hdr.tail;
    if t == St::Index::MAX {
      return None;
    }
    Some(self.remove_slot(t.to_usize()))
  }

  /// Removes and returns the most recently used entry.
  #[inline]
  pub fn pop_mru(&mut self) -> Option<(K, V)> {
    let h = self.storage.parts().hdr.head;
    if h == St::Index::MAX {
      return None;
    }
    Some(self.remove_slot(h.to_usize()))
  }

  /// Keeps only the entries for which `f` returns `true`, visiting them from
  /// most to least recently used. The order of the kept entries is unchanged.
  pub fn retain<F: FnMut(&K, &mut V) -> bool>(&mut self, mut f: F) {
    let p = self.storage.parts();
    let mut s = p.hdr.head;
    for _ in 0..p.hdr.len.to_usize() {
      let i = s.to_usize();
      let p = self.storage.parts_mut();
      s = p.next[i];
      // SAFETY: `i` is on the used list: we walk the list from the head and
      // removing other entries does not change the links of the ones ahead.
      let keep = unsafe { f(p.keys[i].assume_init_ref(), p.values[i].assume_init_mut()) };
      if !keep {
        self.remove_slot(i);
      }
    }
  }
}

impl<K, V, St: Storage<K, V>, S> IntoIterator for Lru<K, V, St, S> {
  type Item = (K, V);
  type IntoIter = IntoIter<K, V, St>;
  /// Consumes the map, yielding entries from most to least recently used.
  /// Entries not consumed are dropped with the iterator.
  fn into_iter(self) -> IntoIter<K, V, St> {
    IntoIter::new(self.storage)
  }
}

impl<'a, K, V, St: Storage<K, V>, S> IntoIterator for &'a Lru<K, V, St, S> {
  type Item = (&'a K, &'a V);
  type IntoIter = Iter<'a, K, V, St::Index>;
  fn into_iter(self) -> Self::IntoIter {
    self.iter()
  }
}

impl<'a, K, V, St: Storage<K, V>, S> IntoIterator for &'a mut Lru<K, V, St, S> {
  type Item = (&'a K, &'a mut V);
  type IntoIter = IterMut<'a, K, V, St::Index>;
  fn into_iter(self) -> Self::IntoIter {
    self.iter_mut()
  }
}

impl<K: fmt::Debug, V: fmt::Debug, St: Storage<K, V>, S> fmt::Debug for Lru<K, V, St, S> {
  /// Map-like, most recently used first.
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_map().entries(self.iter()).finish()
  }
}

impl<K: Hash + Eq, V, St: Storage<K, V>, S: BuildHasher> Extend<(K, V)> for Lru<K, V, St, S> {
  /// Inserts every pair in order (later pairs are more recently used; pairs
  /// evicted or rejected along the way are dropped).
  fn extend<T: IntoIterator<Item = (K, V)>>(&mut self, iter: T) {
    for (k, v) in iter {
      self.insert(k, v);
    }
  }
}

impl<K, V, St, S> Clone for Lru<K, V, St, S>
where
  K: Hash + Eq + Clone,
  V: Clone,
  St: Storage<K, V>,
  S: BuildHasher + Clone,
{
  /// Same capacity, entries and LRU order. An inline map is built on the
  /// stack like `new()`; see `ArrayLru::clone_boxed` for large ones.
  fn clone(&self) -> Self {
    let mut out = Lru {
      storage: self.storage.empty_like(),
      hasher: self.hasher.clone(),
      marker: PhantomData,
    };
    out.clone_entries_from(self);
    out
  }
}

impl<K: Hash + Eq, V, St: Storage<K, V>, S: BuildHasher> Lru<K, V, St, S> {
  /// Inserts clones of `src`'s entries, least recently used first, so the
  /// order is preserved. `self` must be empty with `cap >= src.len()`.
  pub(crate) fn clone_entries_from<St2: Storage<K, V>, S2>(&mut self, src: &Lru<K, V, St2, S2>)
  where
    K: Clone,
    V: Clone,
  {
    debug_assert!(self.is_empty() && self.cap() >= src.len());
    for (k, v) in src.iter().rev() {
      self.insert(k.clone(), v.clone());
    }
  }
}
