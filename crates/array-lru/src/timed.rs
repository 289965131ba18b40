//! [`TimedLru`]: the semantics of lrukit's JavaScript `LruCache`, on top of
//! [`HeapLru`](crate::HeapLru).
//!
//! Every entry carries an insert timestamp (any `f64` the caller chooses, such
//! as `Date.now()` or a packet clock) and an expiry deadline on the caller's
//! wall clock (`f64::INFINITY` when it never expires). An entry whose deadline
//! has passed is never returned: reads treat it as missing and reclaim it on
//! the spot; `pop_lru`/`peek_lru` skip over expired entries (reclaiming them).
//! The clock is only read (through the `now` closure) when an entry that has a
//! deadline is touched, so caches without TTLs never pay for it.
//!
//! Removed values are handed to a `dispose` callback instead of being dropped,
//! because the binding must release JavaScript references on its own thread.
//!
//! Capacity is fixed at construction ([`Capacity::Bounded`]): the arrays are
//! allocated once and a full cache evicts its least recently used entry.
//! [`Capacity::Unbounded`] starts small and doubles (the only mode that
//! allocates after construction); it is pruned only by `pop_lru` and `remove`.
//!
//! # Memory
//!
//! The table takes [`TimedLru::table_bytes`] bytes: `capacity *
//! bytes_per_entry::<K, Stamped<V>, u32>()`. [`TimedLru::try_new`] and
//! [`TimedLru::try_insert`] never abort: a table larger than the caller's
//! limit, or one the allocator refuses, is a [`TimedLruError`]. (The
//! `new`/`insert` pair allocates like `Vec`: failure aborts.)

use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};

use alloc::vec::Vec;

use crate::{HeapLru, Insert};

/// A value with its insert timestamp and expiry deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped<V> {
  /// The stored value.
  pub value: V,
  /// Insert timestamp supplied by the caller.
  pub timestamp: f64,
  /// Deadline on the caller's clock; `f64::INFINITY` = never expires.
  pub expires_at: f64,
}

impl<V> Stamped<V> {
  /// True when the entry has a deadline and `now()` has reached it.
  #[inline]
  pub fn is_expired(&self, now: &impl Fn() -> f64) -> bool {
    self.expires_at != f64::INFINITY && self.expires_at <= now()
  }
}

/// How many entries a [`TimedLru`] may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
  /// At most this many entries (≥ 1); all memory is allocated up front.
  Bounded(usize),
  /// No limit; grows by doubling and is pruned by `pop_lru`/`remove`.
  Unbounded,
}

/// Capacity given to [`TimedLru::new`] is 0 or larger than the index type allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCapacity;

/// Why [`TimedLru::try_new`] or [`TimedLru::try_insert`] failed. Nothing was
/// changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimedLruError {
  /// `Bounded(0)`, or a bound above [`MAX_CAPACITY`].
  InvalidCapacity,
  /// The table for `capacity` entries would take `bytes` bytes, more than the
  /// `limit` the cache was given.
  OverLimit {
    /// Entries the table would hold.
    capacity: usize,
    /// Bytes it would take.
    bytes: usize,
    /// The cache's limit on its table's bytes.
    limit: usize,
  },
  /// The allocator could not provide the `bytes` bytes of the table for
  /// `capacity` entries (saturating at `usize::MAX` if the size overflows).
  OutOfMemory {
    /// Entries the table would hold.
    capacity: usize,
    /// Bytes requested.
    bytes: usize,
  },
}

impl core::fmt::Display for TimedLruError {
  fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    match *self {
      TimedLruError::InvalidCapacity => f.write_str("capacity is 0 or above the maximum"),
      TimedLruError::OverLimit {
        capacity,
        bytes,
        limit,
      } => write!(
        f,
        "a table of {capacity} entries takes {bytes} bytes, more than the limit of {limit}"
      ),
      TimedLruError::OutOfMemory { capacity, bytes } => write!(
        f,
        "memory allocation of {bytes} bytes for a table of {capacity} entries failed"
      ),
    }
  }
}

impl core::error::Error for TimedLruError {}

/// Largest bounded capacity (the u32 index reserves `u32::MAX` as its sentinel).
pub const MAX_CAPACITY: usize = (u32::MAX - 1) as usize;
const UNBOUNDED_INITIAL: usize = 64;

/// How many keys ahead of its lookups [`TimedLru::get_many`] hashes keys and
/// prefetches their buckets (a batch of at most this many keys is hashed
/// completely before the first lookup).
pub const GET_MANY_AHEAD: usize = 256;

/// `cap` entry slots' bytes, saturating (the table's size without padding).
fn saturating_bytes<K, V>(cap: usize) -> usize {
  cap.saturating_mul(crate::bytes_per_entry::<K, Stamped<V>, u32>())
}

/// A table of `cap` entries could not be had: the index type cannot hold it
/// (not reached: capacities are checked first) or the allocation failed.
fn oom<K, V>(cap: usize, e: crate::CapacityError) -> TimedLruError {
  match e.alloc_failure() {
    Some(layout) => TimedLruError::OutOfMemory {
      capacity: cap,
      bytes: layout.size(),
    },
    // Only a size that overflows `isize` gets here.
    None => TimedLruError::OutOfMemory {
      capacity: cap,
      bytes: saturating_bytes::<K, V>(cap),
    },
  }
}

/// LRU map with insert timestamps and per-entry expiry; see the module docs.
pub struct TimedLru<K, V, S = crate::FixedState> {
  lru: HeapLru<K, Stamped<V>, u32, S>,
  unbounded: bool,
  /// Most bytes the table may take (`usize::MAX`: no limit but the allocator's).
  limit: usize,
}

/// The initial table size and whether the cache grows.
fn initial(capacity: Capacity) -> Result<(usize, bool), InvalidCapacity> {
  match capacity {
    Capacity::Bounded(n) if (1..=MAX_CAPACITY).contains(&n) => Ok((n, false)),
    Capacity::Bounded(_) => Err(InvalidCapacity),
    Capacity::Unbounded => Ok((UNBOUNDED_INITIAL, true)),
  }
}

impl<K: Hash + Eq, V> TimedLru<K, V> {
  /// Creates an empty cache; `Bounded(0)` and capacities above
  /// [`MAX_CAPACITY`] are rejected. A failed allocation aborts, as for
  /// `Vec::with_capacity`; see [`TimedLru::try_new`].
  pub fn new(capacity: Capacity) -> Result<Self, InvalidCapacity> {
    Self::with_hasher(capacity, Default::default())
  }

  /// Like [`TimedLru::new`], but never aborts: a table larger than `limit`
  /// bytes (pass `usize::MAX` for none) is refused before anything is
  /// allocated, and a failed allocation is an error. An unbounded cache
  /// keeps to `limit` when it grows (see [`TimedLru::try_insert`]).
  pub fn try_new(capacity: Capacity, limit: usize) -> Result<Self, TimedLruError> {
    Self::try_with_hasher(capacity, limit, Default::default())
  }
}

impl<K: Hash + Eq, V, S: BuildHasher> TimedLru<K, V, S> {
  /// [`TimedLru::new`] with an explicit hasher.
  pub fn with_hasher(capacity: Capacity, hasher: S) -> Result<Self, InvalidCapacity> {
    let (cap, unbounded) = initial(capacity)?;
    Ok(Self {
      lru: HeapLru::with_capacity_and_hasher(cap, hasher),
      unbounded,
      limit: usize::MAX,
    })
  }

  /// [`TimedLru::try_new`] with an explicit hasher.
  pub fn try_with_hasher(
    capacity: Capacity,
    limit: usize,
    hasher: S,
  ) -> Result<Self, TimedLruError> {
    let (cap, unbounded) = initial(capacity).map_err(|_| TimedLruError::InvalidCapacity)?;
    let lru = Self::try_table(cap, limit, hasher)?;
    Ok(Self {
      lru,
      unbounded,
      limit,
    })
  }

  /// Bytes of the table of a cache of `capacity` entries (the one allocation
  /// the cache makes, or its current size when unbounded), or `None` when
  /// the size overflows `usize`. `table_bytes(n) / n` is the cost of an entry
  /// slot, whether or not it is in use.
  pub fn table_bytes(capacity: usize) -> Option<usize> {
    HeapLru::<K, Stamped<V>, u32, S>::heap_bytes_for(capacity)
  }

  /// Checks `cap` against `limit`, then allocates.
  fn try_table(
    cap: usize,
    limit: usize,
    hasher: S,
  ) -> Result<HeapLru<K, Stamped<V>, u32, S>, TimedLruError> {
    let bytes = Self::table_bytes(cap).unwrap_or_else(|| saturating_bytes::<K, V>(cap));
    if bytes > limit {
      return Err(TimedLruError::OverLimit {
        capacity: cap,
        bytes,
        limit,
      });
    }
    HeapLru::try_with_capacity_and_hasher(cap, hasher).map_err(|e| oom::<K, V>(cap, e))
  }

  /// Number of stored entries, including expired ones not yet reclaimed.
  #[inline]
  pub fn len(&self) -> usize {
    self.lru.len()
  }

  /// True when no entries are stored.
  #[inline]
  pub fn is_empty(&self) -> bool {
    self.lru.is_empty()
  }

  /// The bound, or `None` when unbounded.
  pub fn capacity(&self) -> Option<usize> {
    (!self.unbounded).then(|| self.lru.cap())
  }

  /// Looks `key` up and makes it the most recently used entry. An expired
  /// entry is removed (handed to `dispose`) and reported as missing.
  #[inline]
  pub fn get<Q>(
    &mut self,
    key: &Q,
    now: impl Fn() -> f64,
    dispose: impl FnOnce(K, Stamped<V>),
  ) -> Option<&Stamped<V>>
  where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
  {
    let h = self.lru.hash_key(key);
    self.get_hashed(h, key, &now, dispose)
  }

  /// Looks up `n` keys in order, with exactly the effects of `n` calls of
  /// [`TimedLru::get`] (hits promoted, expired entries reclaimed), handing each
  /// hit to `found(i, entry)`. Keys are hashed (and their buckets prefetched)
  /// up to [`GET_MANY_AHEAD`] keys ahead of the lookups, and the memory of
  /// upcoming entries is prefetched while earlier keys are processed, so a
  /// batch over a large cache waits on far fewer cache misses than single
  /// calls. Allocates nothing, whatever `n`. Stops at the first error `found`
  /// returns.
  pub fn get_many<'q, Q, E>(
    &mut self,
    n: usize,
    key: impl Fn(usize) -> &'q Q,
    now: impl Fn() -> f64,
    mut dispose: impl FnMut(K, Stamped<V>),
    mut found: impl FnMut(usize, &Stamped<V>) -> Result<(), E>,
  ) -> Result<(), E>
  where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized + 'q,
  {
    /// How many keys ahead the entry of a key is prefetched.
    const AHEAD: usize = 8;
    const RING: usize = GET_MANY_AHEAD;
    // `ring[j % RING]` holds the hash of key `j`, for the next RING keys.
    let mut ring = [0u64; RING];
    let hash_ahead = |lru: &HeapLru<K, Stamped<V>, u32, S>, ring: &mut [u64; RING], j: usize| {
      let h = lru.hash_key(key(j));
      lru.prefetch_bucket(h);
      ring[j % RING] = h;
    };
    for j in 0..n.min(RING) {
      hash_ahead(&self.lru, &mut ring, j);
    }
    for i in 0..n {
      let h = ring[i % RING];
      if i + AHEAD < n {
        self.lru.prefetch_entry(ring[(i + AHEAD) % RING]);
      }
      if i + AHEAD / 2 < n {
        self.lru.prefetch_neighbours(ring[(i + AHEAD / 2) % RING]);
      }
      // Key `i`'s hash has been read: its place goes to key `i + RING`.
      if i + RING < n {
        hash_ahead(&self.lru, &mut ring, i + RING);
      }
      if let Some(entry) = self.get_hashed(h, key(i), &now, &mut dispose) {
        found(i, entry)?;
      }
    }
    Ok(())
  }

  #[inline]
  fn get_hashed<Q>(
    &mut self,
    h: u64,
    key: &Q,
    now: &impl Fn() -> f64,
    dispose: impl FnOnce(K, Stamped<V>),
  ) -> Option<&Stamped<V>>
  where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
  {
    let entry: *const Stamped<V> = self.lru.get_mut_hashed(h, key)?;
    // SAFETY: `entry` points into `self.lru`'s value array and was produced by
    // a unique borrow that ended just now; it is dereferenced before any other
    // access to `self.lru`, and on the expired path it is not used again after
    // `remove_entry` mutates the map. (This is the conditional-return case the
    // current borrow checker rejects although it is sound.)
    let expired = unsafe { &*entry }.is_expired(now);
    if expired {
      if let Some((k, v)) = self.lru.remove_entry(key) {
        dispose(k, v);
      }
      return None;
    }
    // SAFETY: as above; nothing has touched `self.lru` since `get_mut_hashed`,
    // and the returned borrow keeps `self` borrowed for its lifetime.
    Some(unsafe { &*entry })
  }

  /// Looks `key` up without changing recency; expired entries read as missing
  /// (and are left for a later write to reclaim).
  #[inline]
  pub fn peek<Q>(&self, key: &Q, now: impl Fn() -> f64) -> Option<&Stamped<V>>
  where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
  {
    self.lru.peek(key).filter(|e| !e.is_expired(&now))
  }

  /// True when `key` is present and not expired (does not promote).
  #[inline]
  pub fn contains<Q>(&self, key: &Q, now: impl Fn() -> f64) -> bool
  where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
  {
    self.peek(key, now).is_some()
  }

  /// Inserts or updates `key` in place (an existing entry keeps its slot, takes
  /// the new value, timestamp and deadline and becomes most recently used).
  /// A full bounded cache first evicts its least recently used entry; an
  /// unbounded one grows (ignoring the limit given to `try_new`; a failed
  /// allocation aborts, see [`TimedLru::try_insert`]). Replaced and evicted
  /// entries go to `dispose`.
  #[inline]
  pub fn insert(
    &mut self,
    key: K,
    value: V,
    timestamp: f64,
    expires_at: f64,
    dispose: impl FnMut(K, Stamped<V>),
  ) {
    if self.must_grow(&key) {
      self.lru.grow(self.next_cap());
    }
    self.put(key, value, timestamp, expires_at, dispose);
  }

  /// Like [`TimedLru::insert`], but when a full unbounded cache cannot grow
  /// (its next table would exceed the limit or cannot be allocated) returns
  /// the error and changes nothing: the new pair goes to `dispose` unstored,
  /// nothing stored is lost. Growth doubles the table, or stops at the
  /// largest table within the limit. A bounded cache never fails here.
  #[inline]
  pub fn try_insert(
    &mut self,
    key: K,
    value: V,
    timestamp: f64,
    expires_at: f64,
    mut dispose: impl FnMut(K, Stamped<V>),
  ) -> Result<(), TimedLruError> {
    if self.must_grow(&key) {
      if let Err(e) = self.try_grow() {
        let refused = Stamped {
          value,
          timestamp,
          expires_at,
        };
        dispose(key, refused);
        return Err(e);
      }
    }
    self.put(key, value, timestamp, expires_at, dispose);
    Ok(())
  }

  /// True when storing `key` needs a bigger table.
  #[inline]
  fn must_grow(&self, key: &K) -> bool {
    self.unbounded && self.lru.is_full() && !self.lru.contains(key)
  }

  /// The doubled capacity.
  fn next_cap(&self) -> usize {
    self.lru.cap().saturating_mul(2).clamp(1, MAX_CAPACITY)
  }

  #[cold]
  fn try_grow(&mut self) -> Result<(), TimedLruError> {
    let cap = self.lru.cap();
    let mut next = self.next_cap();
    if Self::table_bytes(next).is_none_or(|b| b > self.limit) {
      // The largest table within the limit, if that is still a step up.
      let per_entry = crate::bytes_per_entry::<K, Stamped<V>, u32>().max(1);
      let fits = (self.limit / per_entry).min(MAX_CAPACITY);
      let fits = (cap + 1..=fits)
        .rev()
        .find(|&n| Self::table_bytes(n).is_some_and(|b| b <= self.limit))
        .map_or(cap, |n| n);
      if fits <= cap {
        return Err(TimedLruError::OverLimit {
          capacity: next,
          bytes: Self::table_bytes(next).unwrap_or_else(|| saturating_bytes::<K, V>(next)),
          limit: self.limit,
        });
      }
      next = fits;
    }
    self.lru.try_grow(next).map_err(|e| oom::<K, V>(next, e))
  }

  #[inline]
  fn put(
    &mut self,
    key: K,
    value: V,
    timestamp: f64,
    expires_at: f64,
    mut dispose: impl FnMut(K, Stamped<V>),
  ) {
    let stamped = Stamped {
      value,
      timestamp,
      expires_at,
    };
    match self.lru.insert(key, stamped) {
      None => {}
      Some(Insert::Replaced { key, value }) | Some(Insert::Evicted { key, value }) => {
        dispose(key, value)
      }
      // Only a zero-capacity map rejects, and `new` never builds one.
      Some(Insert::Rejected { key, value }) => dispose(key, value),
    }
  }

  /// Removes `key`; returns the entry unless it was missing or expired
  /// (an expired entry is still removed and handed to `dispose`).
  pub fn remove<Q>(
    &mut self,
    key: &Q,
    now: impl Fn() -> f64,
    dispose: impl FnOnce(K, Stamped<V>),
  ) -> Option<(K, Stamped<V>)>
  where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
  {
    let (k, v) = self.lru.remove_entry(key)?;
    if v.is_expired(&now) {
      dispose(k, v);
      None
    } else {
      Some((k, v))
    }
  }

  /// Removes and returns the least recently used live entry, reclaiming any
  /// expired entries found on the way. O(1) plus the expired entries skipped.
  pub fn pop_lru(
    &mut self,
    now: impl Fn() -> f64,
    mut dispose: impl FnMut(K, Stamped<V>),
  ) -> Option<(K, Stamped<V>)> {
    while let Some((k, v)) = self.lru.pop_lru() {
      if v.is_expired(&now) {
        dispose(k, v);
      } else {
        return Some((k, v));
      }
    }
    None
  }

  /// The least recently used live entry, without removing it; expired entries
  /// at the LRU end are reclaimed first.
  pub fn peek_lru(
    &mut self,
    now: impl Fn() -> f64,
    mut dispose: impl FnMut(K, Stamped<V>),
  ) -> Option<(&K, &Stamped<V>)> {
    while self.lru.peek_lru().is_some_and(|(_, v)| v.is_expired(&now)) {
      if let Some((k, v)) = self.lru.pop_lru() {
        dispose(k, v);
      }
    }
    self.lru.peek_lru()
  }

  /// Removes every entry, handing each to `dispose`.
  pub fn clear(&mut self, mut dispose: impl FnMut(K, Stamped<V>)) {
    while let Some((k, v)) = self.lru.pop_lru() {
      dispose(k, v);
    }
  }

  /// Reclaims every expired entry; returns how many. O(len).
  pub fn purge_stale(
    &mut self,
    now: impl Fn() -> f64,
    mut dispose: impl FnMut(K, Stamped<V>),
  ) -> usize
  where
    K: Clone,
  {
    let t = now();
    let stale: Vec<K> = self
      .lru
      .iter()
      .filter(|(_, v)| v.expires_at <= t)
      .map(|(k, _)| k.clone())
      .collect();
    for k in &stale {
      if let Some((k, v)) = self.lru.remove_entry(k) {
        dispose(k, v);
      }
    }
    stale.len()
  }

  /// Live entries from most to least recently used (expired ones skipped).
  pub fn iter<'a>(
    &'a self,
    now: impl Fn() -> f64 + 'a,
  ) -> impl DoubleEndedIterator<Item = (&'a K, &'a Stamped<V>)> + 'a {
    self.lru.iter().filter(move |(_, v)| !v.is_expired(&now))
  }
}

#[cfg(test)]
mod tests;
