//! The integrated engine: per shard, one lock over a slab of entries, a hash
//! index of slot numbers and a hierarchical timing wheel whose lists are
//! threaded through the slots. The parts, from the bottom:
//!
//! * `wheel`: the timing wheel (bucket lists, occupancy bitmaps, cursor);
//! * `slab`: the slab of entries and the hash index of slot numbers;
//! * `shard`: one shard's contents (a slab and a wheel kept consistent),
//!   the expiry algorithm and the choice of a victim when full;
//! * this module: [`WheelEngine`], the shards behind their locks, the
//!   per-shard hints, the capacity count and the [`FlowEngine`] methods.
//!
//! The crate documentation ("Engine 2") describes the design as a whole.

mod shard;
mod slab;
mod wheel;

use std::hash::Hash;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The shard lock. A `RwLock` by default: `get`, `touch` and `contains`
/// take it shared (`touch` writes an atomic). The `mutex-shards` feature
/// swaps in a `Mutex`, only to measure the difference (see BENCH.md).
#[cfg(not(feature = "mutex-shards"))]
mod shard_lock {
  pub type Lock<T> = parking_lot::RwLock<T>;

  #[inline]
  pub fn read<T>(l: &Lock<T>) -> parking_lot::RwLockReadGuard<'_, T> {
    l.read()
  }

  #[inline]
  pub fn write<T>(l: &Lock<T>) -> parking_lot::RwLockWriteGuard<'_, T> {
    l.write()
  }
}

#[cfg(feature = "mutex-shards")]
mod shard_lock {
  pub type Lock<T> = parking_lot::Mutex<T>;

  #[inline]
  pub fn read<T>(l: &Lock<T>) -> parking_lot::MutexGuard<'_, T> {
    l.lock()
  }

  #[inline]
  pub fn write<T>(l: &Lock<T>) -> parking_lot::MutexGuard<'_, T> {
    l.lock()
  }
}

use shard_lock::{read, write, Lock};

use shard::{Inner, Work};
use slab::WINDOW;
use wheel::MAX_NOW;

use crate::{
  hash_of, rearm_budget, Clock, Config, Evicted, Expired, FlowEngine, Full, HashState, InsertError,
  Inserted, MonotonicClock, StatCounters, Stats,
};

/// A shard: its lock on its own cache lines.
#[repr(align(128))]
struct Shard<K, V> {
  lock: Lock<Inner<K, V>>,
}

/// The integrated flow table: entries, hash index and timeout order in one
/// sharded structure (see the crate documentation for the design).
pub struct WheelEngine<K, V> {
  shards: Box<[Shard<K, V>]>,
  /// Per shard, a lower bound on the earliest wheel position; `expire` skips
  /// a shard without locking it when its hint is after `now` (Suricata keeps
  /// a per-row `next_ts` for the same purpose).
  hints: Box<[AtomicU64]>,
  mask: usize,
  state: HashState,
  clock: Arc<dyn Clock>,
  default_timeout: u64,
  capacity: Option<usize>,
  when_full: Full,
  /// Stored + reserved entries; maintained only when `capacity` is set.
  count: AtomicUsize,
  /// Round-robin start of `expire` and of evictions from other shards.
  cursor: AtomicUsize,
  stats: StatCounters,
}

impl<K, V> WheelEngine<K, V>
where
  K: Hash + Eq + Clone + Send + Sync,
  V: Clone + Send + Sync,
{
  /// A table with the default [`MonotonicClock`].
  pub fn new(config: Config) -> Self {
    Self::with_clock(config, Arc::new(MonotonicClock::new()))
  }

  /// A table reading time from `clock`.
  pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Self {
    let n = config.shard_count();
    let now = clock.now();
    Self {
      shards: (0..n)
        .map(|_| Shard {
          lock: Lock::new(Inner::new(now)),
        })
        .collect(),
      hints: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
      mask: n - 1,
      state: HashState::default(),
      clock,
      default_timeout: config.default_timeout_ms,
      capacity: config.capacity,
      when_full: config.when_full,
      count: AtomicUsize::new(0),
      cursor: AtomicUsize::new(0),
      stats: StatCounters::default(),
    }
  }

  #[inline]
  fn locate(&self, key: &K) -> (u64, usize) {
    let hash = hash_of(&self.state, key);
    // hashbrown uses the low bits (bucket) and the top 7 bits (tag) of the
    // hash; the shard comes from bits 32.. so the three stay independent.
    (hash, ((hash >> 32) as usize) & self.mask)
  }

  /// Lowers shard `s`'s hint to `when` (a value returned by `place`).
  #[inline]
  fn lower_hint(&self, s: usize, when: u64) {
    // Called under the shard's write lock, so load + store cannot lose a
    // smaller value to another writer of this shard.
    if when < self.hints[s].load(Ordering::Relaxed) {
      self.hints[s].store(when, Ordering::Relaxed);
    }
  }

  fn try_reserve(&self, cap: usize) -> bool {
    self
      .count
      .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
        (c < cap).then_some(c + 1)
      })
      .is_ok()
  }

  fn release(&self, n: usize) {
    if self.capacity.is_some() && n > 0 {
      self.count.fetch_sub(n, Ordering::AcqRel);
    }
  }

  /// Evicts one entry from some shard other than `except` (whose lock the
  /// caller has released), keeping its unit of capacity for the caller.
  fn evict_elsewhere(&self, except: usize, now: u64, out: &mut Inserted<K, V>) -> bool {
    let n = self.shards.len();
    let start = self.cursor.fetch_add(1, Ordering::Relaxed);
    for k in 0..n {
      let s = (start + k) % n;
      if s == except {
        continue;
      }
      let mut g = write(&self.shards[s].lock);
      if let Some((i, expired)) = g.find_victim(now, false) {
        let e = g.remove_at(&self.state, i);
        self.stats.record_eviction();
        out.evicted = Some(Evicted {
          entry: e,
          was_expired: expired,
        });
        return true;
      }
    }
    false
  }
}

impl<K, V> FlowEngine<K, V> for WheelEngine<K, V>
where
  K: Hash + Eq + Clone + Send + Sync,
  V: Clone + Send + Sync,
{
  fn insert_full(
    &self,
    key: K,
    value: V,
    timeout_ms: Option<u64>,
  ) -> Result<Inserted<K, V>, InsertError> {
    let timeout = timeout_ms.unwrap_or(self.default_timeout);
    let (hash, s) = self.locate(&key);
    let mut out = Inserted::default();
    // Whether we hold a unit of capacity for a new entry.
    let mut reserved = false;
    loop {
      let now = self.clock.now();
      let mut g = write(&self.shards[s].lock);
      if let Some(i) = g.slab.find(hash, &key) {
        // Replace in place: new value, last_seen and timeout; requeue.
        if reserved {
          self.release(1);
        }
        let (when, old, expired) = g.replace_at(i, key, value, now, timeout);
        self.lower_hint(s, when);
        if expired {
          out.expired = Some(old);
        } else {
          out.replaced = Some(old.value);
        }
        return Ok(out);
      }
      if let (Some(cap), false) = (self.capacity, reserved) {
        if !self.try_reserve(cap) {
          if cap == 0 {
            return Err(InsertError::Full);
          }
          // Full. Reuse an entry of this shard (its unit of capacity passes
          // to this insert), or for EvictLongestIdle evict in another shard.
          let only_expired = self.when_full == Full::Refuse;
          match g.find_victim(now, only_expired) {
            Some((i, expired)) => {
              let e = g.remove_at(&self.state, i);
              self.stats.record_eviction();
              out.evicted = Some(Evicted {
                entry: e,
                was_expired: expired,
              });
            }
            None if only_expired => return Err(InsertError::Full),
            None => {
              drop(g);
              if self.evict_elsewhere(s, now, &mut out) {
                reserved = true;
                continue; // relock and re-check: the key may exist now
              }
              return Err(InsertError::Full);
            }
          }
        }
      }
      let when = g.insert_new(&self.state, hash, key, value, now, timeout);
      self.lower_hint(s, when);
      return Ok(out);
    }
  }

  fn get(&self, key: &K) -> Option<V> {
    let now = self.clock.now();
    let (hash, s) = self.locate(key);
    let g = read(&self.shards[s].lock);
    let i = g.slab.find(hash, key)?;
    if g.slab.expired(i, now) {
      return None;
    }
    Some(g.slab.entry(i).value.clone())
  }

  fn touch(&self, key: &K) -> bool {
    let now = self.clock.now();
    let (hash, s) = self.locate(key);
    let g = read(&self.shards[s].lock);
    let Some(i) = g.slab.find(hash, key) else {
      return false;
    };
    if g.slab.expired(i, now) {
      return false;
    }
    // The whole cost of keeping a flow alive: one store. The wheel is not
    // touched; `expire` re-arms the entry when its old position comes due.
    g.slab.entry(i).last_seen.store(now, Ordering::Relaxed);
    true
  }

  fn insert_many(&self, entries: Vec<(K, V)>, timeout_ms: Option<u64>) -> Result<(), InsertError> {
    if self.capacity.is_some() {
      // A full table may need to evict in another shard, which the
      // per-key path does (it drops and retakes locks): keep it.
      return crate::insert_each(self, entries, timeout_ms);
    }
    let timeout = timeout_ms.unwrap_or(self.default_timeout);
    // (shard, hash, entry), grouped by shard, input order kept within one.
    let mut order: Vec<(u32, u64, (K, V))> = entries
      .into_iter()
      .map(|(k, v)| {
        let (hash, s) = self.locate(&k);
        (s as u32, hash, (k, v))
      })
      .collect();
    order.sort_by_key(|e| e.0); // stable: later duplicates stay later
    let mut items = order.into_iter().peekable();
    while let Some(first) = items.next() {
      let s = first.0 as usize;
      let now = self.clock.now();
      let mut g = write(&self.shards[s].lock);
      let mut earliest = u64::MAX;
      let mut window: Vec<(u64, (K, V))> = Vec::with_capacity(WINDOW);
      window.push((first.1, first.2));
      loop {
        let more = items.peek().is_some_and(|e| e.0 as usize == s);
        if more && window.len() < WINDOW {
          let (_, hash, kv) = items.next().expect("peeked");
          window.push((hash, kv));
          continue;
        }
        g.slab.prefetch(window.iter().map(|w| w.0));
        for (hash, (key, value)) in window.drain(..) {
          earliest = earliest.min(g.upsert(&self.state, hash, key, value, now, timeout));
        }
        if !more {
          break;
        }
      }
      self.lower_hint(s, earliest);
    }
    Ok(())
  }

  fn touch_many(&self, keys: &[K], out: &mut Vec<bool>) {
    out.clear();
    out.resize(keys.len(), false);
    if keys.is_empty() {
      return;
    }
    let now = self.clock.now();
    // (shard, hash, index), grouped by shard: one read lock per shard.
    let mut order: Vec<(u32, u64, u32)> = keys
      .iter()
      .enumerate()
      .map(|(i, k)| {
        let (hash, s) = self.locate(k);
        (s as u32, hash, i as u32)
      })
      .collect();
    order.sort_unstable_by_key(|&(s, _, i)| (s, i));
    for run in order.chunk_by(|a, b| a.0 == b.0) {
      let g = read(&self.shards[run[0].0 as usize].lock);
      for w in run.chunks(WINDOW) {
        g.slab.prefetch(w.iter().map(|e| e.1));
        // The lookups themselves, now mostly from cache.
        for &(_, hash, i) in w {
          if let Some(j) = g.slab.find(hash, &keys[i as usize]) {
            if !g.slab.expired(j, now) {
              g.slab.entry(j).last_seen.store(now, Ordering::Relaxed);
              out[i as usize] = true;
            }
          }
        }
      }
    }
  }

  fn get_and_touch(&self, key: &K) -> Option<V> {
    let now = self.clock.now();
    let (hash, s) = self.locate(key);
    let g = read(&self.shards[s].lock);
    let i = g.slab.find(hash, key)?;
    if g.slab.expired(i, now) {
      return None;
    }
    let e = g.slab.entry(i);
    e.last_seen.store(now, Ordering::Relaxed);
    Some(e.value.clone())
  }

  fn contains(&self, key: &K) -> bool {
    let now = self.clock.now();
    let (hash, s) = self.locate(key);
    let g = read(&self.shards[s].lock);
    g.slab
      .find(hash, key)
      .is_some_and(|i| !g.slab.expired(i, now))
  }

  fn remove(&self, key: &K) -> Option<V> {
    let now = self.clock.now();
    let (hash, s) = self.locate(key);
    let mut g = write(&self.shards[s].lock);
    let i = g.slab.find(hash, key)?;
    if g.slab.expired(i, now) {
      return None; // left for `expire` to report
    }
    let e = g.remove_at(&self.state, i);
    if g.slab.len == 0 {
      self.hints[s].store(u64::MAX, Ordering::Relaxed);
    }
    drop(g);
    self.release(1);
    Some(e.value)
  }

  fn expire(&self, now: u64, max: usize) -> Vec<Expired<K, V>> {
    let mut out = Vec::new();
    if max == 0 {
      return out;
    }
    let now = now.min(MAX_NOW);
    let mut budget = rearm_budget(max);
    let mut work = Work::default();
    let n = self.shards.len();
    // Round-robin start so a shard with a large backlog cannot starve the
    // others across calls.
    let start = self.cursor.fetch_add(1, Ordering::Relaxed);
    // Within a call, the re-arm budget is shared: the first pass gives each
    // shard an equal slice, so one shard cascading a big coarse bucket
    // cannot spend the whole budget before the others have reaped their due
    // entries; a second pass hands what is left to shards that ran out.
    let share = budget.div_ceil(n);
    for pass in 0..2 {
      let mut starved = false;
      for k in 0..n {
        if out.len() >= max || budget == 0 {
          break;
        }
        let s = (start + k) & self.mask;
        if self.hints[s].load(Ordering::Relaxed) > now {
          continue; // nothing can be due here: skip without locking
        }
        let given = if pass == 0 { share.min(budget) } else { budget };
        let mut left = given;
        let before = out.len();
        let mut g = write(&self.shards[s].lock);
        g.expire_into(&self.state, now, max, &mut left, &mut work, &mut out);
        self.hints[s].store(g.wheel.lower_bound(), Ordering::Relaxed);
        drop(g);
        self.release(out.len() - before);
        budget -= given - left;
        starved |= left == 0;
      }
      if !starved {
        break;
      }
    }
    self
      .stats
      .record_expire(work.visited, work.rearmed, out.len() as u64);
    out
  }

  fn next_due(&self) -> Option<u64> {
    let min = self
      .hints
      .iter()
      .map(|h| h.load(Ordering::Relaxed))
      .min()
      .unwrap_or(u64::MAX);
    (min != u64::MAX).then_some(min)
  }

  fn len(&self) -> usize {
    self.shards.iter().map(|s| read(&s.lock).slab.len).sum()
  }

  fn for_each(&self, f: &mut dyn FnMut(&K, &V, u64)) {
    let now = self.clock.now();
    let mut buf: Vec<(K, V, u64)> = Vec::new();
    for shard in self.shards.iter() {
      // Copy one shard out under its read lock, then call `f` unlocked so it
      // may call back into the table.
      {
        let g = read(&shard.lock);
        buf.reserve(g.slab.len);
        for (i, slot) in g.slab.slots.iter().enumerate() {
          if let Some(e) = &slot.e {
            if !g.slab.expired(i as u32, now) {
              buf.push((e.key.clone(), e.value.clone(), e.last_seen()));
            }
          }
        }
      }
      for (k, v, t) in buf.drain(..) {
        f(&k, &v, t);
      }
    }
  }

  fn clear(&self) {
    for (s, shard) in self.shards.iter().enumerate() {
      let mut g = write(&shard.lock);
      let n = g.slab.len;
      g.clear();
      self.hints[s].store(u64::MAX, Ordering::Relaxed);
      drop(g);
      self.release(n);
    }
  }

  fn memory_bytes(&self) -> usize {
    let shards: usize = self
      .shards
      .iter()
      .map(|s| read(&s.lock).memory_bytes())
      .sum();
    shards
      + self.shards.len() * (size_of::<Shard<K, V>>() + size_of::<AtomicU64>())
      + size_of::<Self>()
  }

  fn stats(&self) -> Stats {
    self.stats.snapshot()
  }

  fn now(&self) -> u64 {
    self.clock.now()
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn hint_asks_for_a_call_before_a_coarse_bucket_is_due() {
    let clock = Arc::new(crate::ManualClock::new(0));
    let t: WheelEngine<u64, u64> =
      WheelEngine::with_clock(Config::new(20_000).with_shards(1), clock);
    t.insert(1, 1, None).unwrap();
    // Deadline 20000 sits in the level-2 bucket [16384, 20480), which may
    // be cascaded from 16384 - 4096 on.
    assert_eq!(t.next_due(), Some(12_288));
    t.insert(2, 2, Some(100)).unwrap();
    assert_eq!(t.next_due(), Some(100));
    assert!(t.expire(100, 10).len() == 1);
    assert_eq!(t.next_due(), Some(12_288));
    assert!(t.expire(12_288, 10).is_empty());
    // Cascaded: now in level 1, eligible 64 ms before its 64 ms bucket.
    assert_eq!(t.next_due(), Some(19_968 - 64));
    assert_eq!(t.expire(20_000, 10).len(), 1);
    assert_eq!(t.next_due(), None);
  }
}
