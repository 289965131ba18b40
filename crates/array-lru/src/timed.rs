//! [`TimedLru`]: the semantics of lrukit's JavaScript `LruCache`, on top of
//! [`HeapLru`](crate::HeapLru).
//!
//! Every entry carries an insert timestamp and an expiry deadline
//! (`f64::INFINITY` when it never expires), both in ms. The cache owns the
//! rules that make them:
//!
//! * **Its clock** ([`Clock`]): the system's wall clock in ms since the Unix
//!   epoch (`Date.now()`, feature `std`), or a manual clock that moves only
//!   through [`TimedLru::advance_time`] / [`TimedLru::set_time`] (for tests,
//!   simulations, and `no_std` callers that bring their own time).
//! * **TTLs** ([`Ttl`]): a write's TTL, or else the cache's default TTL,
//!   gives the deadline `now + ttl` on the cache's clock; `0` and `∞` mean
//!   never. The insert timestamp is the one the write gives (any finite
//!   number, see [`check_timestamp`]) or else the clock's time; it is only
//!   reported back, the deadline does not depend on it ([`SetOptions`]).
//! * **Expiry**: an entry with a deadline has expired once the clock reaches
//!   it (`deadline <= now`). An expired entry is never returned: reads treat
//!   it as missing and reclaim it on the spot; `pop_lru`/`peek_lru` skip over
//!   expired entries (reclaiming them). The clock is read only when an entry
//!   that has a deadline is touched, or a write needs the time, so caches
//!   without TTLs that are given timestamps never pay for it.
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
//!
//! # Example
//!
//! ```
//! use lrukit_array_lru::timed::{Capacity, Clock, SetOptions, TimedLru, Ttl};
//!
//! let mut cache = TimedLru::new(Capacity::Bounded(100))
//!   .unwrap()
//!   .with_clock(Clock::Manual(0.0))
//!   .with_default_ttl(Ttl::from_ms(50.0).unwrap());
//! let drop_it = |_key, _entry| {};
//! cache.insert("a", 1, SetOptions::default(), drop_it); // deadline 0 + 50
//! cache.advance_time(49.0).unwrap();
//! assert_eq!(cache.get("a", drop_it).map(|e| (e.value, e.timestamp)), Some((1, 0.0)));
//! cache.advance_time(1.0).unwrap(); // now 50: the deadline
//! assert!(cache.get("a", drop_it).is_none());
//! ```

use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};

use alloc::vec::Vec;

use crate::{HeapLru, Insert};

mod capacity;
mod clock;
mod ttl;

use capacity::{initial, oom, saturating_bytes};
pub use capacity::{Capacity, InvalidCapacity, TimedLruError, MAX_CAPACITY};
pub use clock::{Clock, ClockError, MAX_TIME};
pub use ttl::{check_timestamp, InvalidTimestamp, InvalidTtl, SetOptions, Ttl};

/// How many keys ahead of its lookups [`TimedLru::get_many`] hashes keys and
/// prefetches their buckets (a batch of at most this many keys is hashed
/// completely before the first lookup).
pub const GET_MANY_AHEAD: usize = 256;

/// A value with its insert timestamp and expiry deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped<V> {
  /// The stored value.
  pub value: V,
  /// Insert timestamp: the one the write gave, or the clock's time then.
  pub timestamp: f64,
  /// Deadline on the cache's clock; `f64::INFINITY` = never expires.
  pub expires_at: f64,
}

impl<V> Stamped<V> {
  /// True when the entry has a deadline and the time `now` has reached it.
  #[inline]
  pub fn is_expired_at(&self, now: f64) -> bool {
    self.expires_at != f64::INFINITY && self.expires_at <= now
  }

  /// True when the entry has a deadline and `clock` has reached it (the
  /// clock is read only in the first case).
  #[inline]
  pub fn is_expired(&self, clock: &Clock) -> bool {
    self.expires_at != f64::INFINITY && self.expires_at <= clock.now()
  }
}

/// LRU map with insert timestamps and per-entry expiry; see the module docs.
pub struct TimedLru<K, V, S = crate::FixedState> {
  lru: HeapLru<K, Stamped<V>, u32, S>,
  unbounded: bool,
  /// Most bytes the table may take (`usize::MAX`: no limit but the allocator's).
  limit: usize,
  clock: Clock,
  /// The TTL of a write that gives none.
  ttl: Ttl,
}

impl<K: Hash + Eq, V> TimedLru<K, V> {
  /// Creates an empty cache on [`Clock::default`] whose entries never
  /// expire unless a write gives a TTL (see [`TimedLru::with_clock`] and
  /// [`TimedLru::with_default_ttl`]); `Bounded(0)` and capacities above
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
      clock: Clock::default(),
      ttl: Ttl::NEVER,
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
      clock: Clock::default(),
      ttl: Ttl::NEVER,
    })
  }

  /// The cache reading time from `clock` (a manual clock starts at the time
  /// it holds).
  pub fn with_clock(mut self, clock: Clock) -> Self {
    self.clock = clock;
    self
  }

  /// The cache giving `ttl` to every write that gives none.
  pub fn with_default_ttl(mut self, ttl: Ttl) -> Self {
    self.ttl = ttl;
    self
  }

  /// The cache's clock.
  pub fn clock(&self) -> &Clock {
    &self.clock
  }

  /// The time on the cache's clock, in ms.
  pub fn now(&self) -> f64 {
    self.clock.now()
  }

  /// Moves a manual clock forward by `ms` and returns the new time; see
  /// [`Clock::advance`]. Entries whose deadline the clock reaches expire.
  pub fn advance_time(&mut self, ms: f64) -> Result<f64, ClockError> {
    self.clock.advance(ms)
  }

  /// Sets a manual clock to `t`; see [`Clock::set`].
  pub fn set_time(&mut self, t: f64) -> Result<(), ClockError> {
    self.clock.set(t)
  }

  /// The TTL of a write that gives none.
  pub fn default_ttl(&self) -> Ttl {
    self.ttl
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
  pub fn get<Q>(&mut self, key: &Q, dispose: impl FnOnce(K, Stamped<V>)) -> Option<&Stamped<V>>
  where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
  {
    let h = self.lru.hash_key(key);
    self.get_hashed(h, key, dispose)
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
      if let Some(entry) = self.get_hashed(h, key(i), &mut dispose) {
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
    let expired = unsafe { &*entry }.is_expired(&self.clock);
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
  pub fn peek<Q>(&self, key: &Q) -> Option<&Stamped<V>>
  where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
  {
    self.lru.peek(key).filter(|e| !e.is_expired(&self.clock))
  }

  /// True when `key` is present and not expired (does not promote).
  #[inline]
  pub fn contains<Q>(&self, key: &Q) -> bool
  where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
  {
    self.peek(key).is_some()
  }

  /// Inserts or updates `key` in place (an existing entry keeps its slot, takes
  /// the new value, timestamp and deadline and becomes most recently used).
  /// `options` give the timestamp and TTL, or take them from the cache (see
  /// [`SetOptions`]).
  /// A full bounded cache first evicts its least recently used entry; an
  /// unbounded one grows (ignoring the limit given to `try_new`; a failed
  /// allocation aborts, see [`TimedLru::try_insert`]). Replaced and evicted
  /// entries go to `dispose`.
  #[inline]
  pub fn insert(
    &mut self,
    key: K,
    value: V,
    options: SetOptions,
    dispose: impl FnMut(K, Stamped<V>),
  ) {
    if self.must_grow(&key) {
      self.lru.grow(self.next_cap());
    }
    self.put(key, value, options, dispose);
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
    options: SetOptions,
    mut dispose: impl FnMut(K, Stamped<V>),
  ) -> Result<(), TimedLruError> {
    if self.must_grow(&key) {
      if let Err(e) = self.try_grow() {
        let refused = self.stamp(value, options);
        dispose(key, refused);
        return Err(e);
      }
    }
    self.put(key, value, options, dispose);
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

  /// `value` with the timestamp and deadline `options` give it now.
  #[inline]
  fn stamp(&self, value: V, options: SetOptions) -> Stamped<V> {
    let (timestamp, expires_at) = options.stamp(self.ttl, || self.clock.now());
    Stamped {
      value,
      timestamp,
      expires_at,
    }
  }

  #[inline]
  fn put(&mut self, key: K, value: V, options: SetOptions, mut dispose: impl FnMut(K, Stamped<V>)) {
    let stamped = self.stamp(value, options);
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
    dispose: impl FnOnce(K, Stamped<V>),
  ) -> Option<(K, Stamped<V>)>
  where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
  {
    let (k, v) = self.lru.remove_entry(key)?;
    if v.is_expired(&self.clock) {
      dispose(k, v);
      None
    } else {
      Some((k, v))
    }
  }

  /// Removes and returns the least recently used live entry, reclaiming any
  /// expired entries found on the way. O(1) plus the expired entries skipped.
  pub fn pop_lru(&mut self, mut dispose: impl FnMut(K, Stamped<V>)) -> Option<(K, Stamped<V>)> {
    while let Some((k, v)) = self.lru.pop_lru() {
      if v.is_expired(&self.clock) {
        dispose(k, v);
      } else {
        return Some((k, v));
      }
    }
    None
  }

  /// The least recently used live entry, without removing it; expired entries
  /// at the LRU end are reclaimed first.
  pub fn peek_lru(&mut self, mut dispose: impl FnMut(K, Stamped<V>)) -> Option<(&K, &Stamped<V>)> {
    while self
      .lru
      .peek_lru()
      .is_some_and(|(_, v)| v.is_expired(&self.clock))
    {
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
  pub fn purge_stale(&mut self, mut dispose: impl FnMut(K, Stamped<V>)) -> usize
  where
    K: Clone,
  {
    let t = self.clock.now();
    let stale: Vec<K> = self
      .lru
      .iter()
      .filter(|(_, v)| v.is_expired_at(t))
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
  /// The clock is read once, at the first entry that has a deadline, so the
  /// whole iteration sees one time.
  pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &Stamped<V>)> {
    let clock = &self.clock;
    let mut now = None;
    self.lru.iter().filter(move |(_, v)| {
      v.expires_at == f64::INFINITY || v.expires_at > *now.get_or_insert_with(|| clock.now())
    })
  }
}

#[cfg(test)]
mod tests;
