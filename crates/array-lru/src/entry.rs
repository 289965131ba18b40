//! Entry API: look a key up once, then read, update, insert or remove it.

use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::mem;

use crate::map::Lru;
use crate::storage::Storage;

/// A view into one key of an [`Lru`], from [`Lru::entry`].
///
/// An occupied entry is promoted to most recently used when the entry is
/// created, exactly as [`Lru::get`] would.
pub enum Entry<'a, K, V, St, S> {
  /// The key is present.
  Occupied(OccupiedEntry<'a, K, V, St, S>),
  /// The key is absent.
  Vacant(VacantEntry<'a, K, V, St, S>),
}

/// A present key (already promoted to most recently used).
pub struct OccupiedEntry<'a, K, V, St, S> {
  map: &'a mut Lru<K, V, St, S>,
  slot: usize,
  key: K,
}

/// An absent key. Inserting it may evict the least recently used entry.
pub struct VacantEntry<'a, K, V, St, S> {
  map: &'a mut Lru<K, V, St, S>,
  key: K,
  hash: u64,
  /// EMPTY bucket found by the probe (unused when the capacity is 0).
  pos: usize,
}

impl<K: Hash + Eq, V, St: Storage<K, V>, S: BuildHasher> Lru<K, V, St, S> {
  /// The entry for `key`, hashing and probing once. An existing entry is
  /// promoted to most recently used.
  ///
  /// With capacity 0 the entry is always vacant and [`VacantEntry::insert`]
  /// panics; use [`VacantEntry::try_insert`] (or [`Lru::insert`]) there.
  #[inline]
  pub fn entry(&mut self, key: K) -> Entry<'_, K, V, St, S> {
    if self.cap() == 0 {
      return Entry::Vacant(VacantEntry {
        map: self,
        key,
        hash: 0,
        pos: 0,
      });
    }
    let hash = self.hasher.hash_one(&key);
    match self.find(hash, &key) {
      Ok((_, slot)) => {
        self.storage.parts_mut().move_to_front(slot);
        Entry::Occupied(OccupiedEntry {
          map: self,
          slot,
          key,
        })
      }
      Err(pos) => Entry::Vacant(VacantEntry {
        map: self,
        key,
        hash,
        pos,
      }),
    }
  }
}

impl<'a, K: Hash + Eq, V, St: Storage<K, V>, S: BuildHasher> Entry<'a, K, V, St, S> {
  /// The key: the stored one if occupied, else the one passed to `entry`.
  #[inline]
  pub fn key(&self) -> &K {
    match self {
      Entry::Occupied(e) => e.key(),
      Entry::Vacant(e) => e.key(),
    }
  }

  /// The value, inserting `default` if vacant.
  ///
  /// # Panics
  ///
  /// If vacant and the capacity is 0 (see [`VacantEntry::try_insert`]).
  #[inline]
  pub fn or_insert(self, default: V) -> &'a mut V {
    match self {
      Entry::Occupied(e) => e.into_mut(),
      Entry::Vacant(e) => e.insert(default).0,
    }
  }

  /// The value, inserting `f()` if vacant.
  ///
  /// # Panics
  ///
  /// If vacant and the capacity is 0.
  #[inline]
  pub fn or_insert_with<F: FnOnce() -> V>(self, f: F) -> &'a mut V {
    match self {
      Entry::Occupied(e) => e.into_mut(),
      Entry::Vacant(e) => e.insert(f()).0,
    }
  }

  /// The value, inserting `f(&key)` if vacant.
  ///
  /// # Panics
  ///
  /// If vacant and the capacity is 0.
  #[inline]
  pub fn or_insert_with_key<F: FnOnce(&K) -> V>(self, f: F) -> &'a mut V {
    match self {
      Entry::Occupied(e) => e.into_mut(),
      Entry::Vacant(e) => {
        let v = f(e.key());
        e.insert(v).0
      }
    }
  }

  /// The value, inserting `V::default()` if vacant.
  ///
  /// # Panics
  ///
  /// If vacant and the capacity is 0.
  #[inline]
  pub fn or_default(self) -> &'a mut V
  where
    V: Default,
  {
    self.or_insert_with(V::default)
  }

  /// Calls `f` on the value if occupied.
  #[inline]
  pub fn and_modify<F: FnOnce(&mut V)>(mut self, f: F) -> Self {
    if let Entry::Occupied(e) = &mut self {
      f(e.get_mut());
    }
    self
  }
}

impl<'a, K, V, St: Storage<K, V>, S> OccupiedEntry<'a, K, V, St, S> {
  /// The stored key.
  #[inline]
  pub fn key(&self) -> &K {
    // SAFETY: `slot` is a used slot: it was found through the index and the
    // entry holds the only (exclusive) borrow of the map.
    unsafe { self.map.storage.parts().keys[self.slot].assume_init_ref() }
  }

  /// The value.
  #[inline]
  pub fn get(&self) -> &V {
    // SAFETY: as in `key`.
    unsafe { self.map.storage.parts().values[self.slot].assume_init_ref() }
  }

  /// Mutable value.
  #[inline]
  pub fn get_mut(&mut self) -> &mut V {
    // SAFETY: as in `key`.
    unsafe { self.map.storage.parts_mut().values[self.slot].assume_init_mut() }
  }

  /// Mutable value borrowed for the map's lifetime.
  #[inline]
  pub fn into_mut(self) -> &'a mut V {
    let values = self.map.storage.parts_mut().values;
    // SAFETY: as in `key`.
    unsafe { values[self.slot].assume_init_mut() }
  }

  /// Replaces the value, returning the old one.
  #[inline]
  pub fn insert(&mut self, value: V) -> V {
    mem::replace(self.get_mut(), value)
  }

  /// The key that was passed to [`Lru::entry`] (the stored key is kept).
  #[inline]
  pub fn into_key(self) -> K {
    self.key
  }
}

impl<K: Hash + Eq, V, St: Storage<K, V>, S: BuildHasher> OccupiedEntry<'_, K, V, St, S> {
  /// Removes the entry, returning its value.
  #[inline]
  pub fn remove(self) -> V {
    self.remove_entry().1
  }

  /// Removes the entry, returning the stored key and the value.
  #[inline]
  pub fn remove_entry(self) -> (K, V) {
    self.map.remove_slot(self.slot)
  }
}

impl<'a, K, V, St: Storage<K, V>, S> VacantEntry<'a, K, V, St, S> {
  /// The key that would be inserted.
  #[inline]
  pub fn key(&self) -> &K {
    &self.key
  }

  /// Gives the key back.
  #[inline]
  pub fn into_key(self) -> K {
    self.key
  }
}

impl<'a, K: Hash + Eq, V, St: Storage<K, V>, S: BuildHasher> VacantEntry<'a, K, V, St, S> {
  /// Inserts the value as most recently used, returning a reference to it and,
  /// if the map was full, the evicted least recently used pair.
  ///
  /// # Panics
  ///
  /// If the capacity is 0 (nothing can be stored). Use
  /// [`VacantEntry::try_insert`] to get the pair back instead.
  #[inline]
  pub fn insert(self, value: V) -> (&'a mut V, Option<(K, V)>) {
    match self.try_insert(value) {
      Ok(r) => r,
      Err(_) => panic!("VacantEntry::insert on an LRU map with capacity 0"),
    }
  }

  /// Like [`VacantEntry::insert`], but with capacity 0 returns `Err((key,
  /// value))` instead of panicking.
  #[inline]
  #[allow(clippy::type_complexity)]
  pub fn try_insert(self, value: V) -> Result<(&'a mut V, Option<(K, V)>), (K, V)> {
    let VacantEntry {
      map,
      key,
      hash,
      pos,
    } = self;
    if map.cap() == 0 {
      return Err((key, value));
    }
    let (pos, evicted) = map.make_room(hash, pos);
    let slot = map.storage.parts_mut().insert_new(pos, key, value);
    let values = map.storage.parts_mut().values;
    // SAFETY: `slot` was just initialised by `insert_new`.
    Ok((unsafe { values[slot].assume_init_mut() }, evicted))
  }
}

impl<K: fmt::Debug, V: fmt::Debug, St: Storage<K, V>, S> fmt::Debug for Entry<'_, K, V, St, S> {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      Entry::Occupied(e) => f.debug_tuple("Occupied").field(e).finish(),
      Entry::Vacant(e) => f.debug_tuple("Vacant").field(e).finish(),
    }
  }
}

impl<K: fmt::Debug, V: fmt::Debug, St: Storage<K, V>, S> fmt::Debug
  for OccupiedEntry<'_, K, V, St, S>
{
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("OccupiedEntry")
      .field("key", self.key())
      .field("value", self.get())
      .finish()
  }
}

impl<K: fmt::Debug, V, St, S> fmt::Debug for VacantEntry<'_, K, V, St, S> {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_tuple("VacantEntry").field(&self.key).finish()
  }
}
