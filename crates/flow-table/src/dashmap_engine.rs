//! The DashMap engine: `DashMap<K, Arc<Entry<V>>>` plus binary heaps of
//! `(deadline, key, Weak<Entry<V>>)` with lazy re-arm.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::hash::Hash;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use dashmap::DashMap;
use parking_lot::Mutex;

use crate::{
  is_expired, malloc_size, rearm_budget, Clock, Config, Evicted, Expired, FlowEngine, Full,
  HashState, InsertError, Inserted, MonotonicClock, StatCounters, Stats,
};

/// How many heap elements an insert into a full table may examine (re-arming
/// touched ones) before it takes the current heap top as the victim.
const VICTIM_STEPS: usize = 16;

struct Entry<V> {
  value: V,
  last_seen: AtomicU64,
  timeout: u64,
}

impl<V> Entry<V> {
  #[inline]
  fn last_seen(&self) -> u64 {
    self.last_seen.load(Ordering::Relaxed)
  }

  #[inline]
  fn deadline(&self) -> u64 {
    self.last_seen().saturating_add(self.timeout)
  }

  #[inline]
  fn expired(&self, now: u64) -> bool {
    is_expired(self.last_seen(), self.timeout, now)
  }
}

/// A heap element. The heap is a max-heap, so the order is reversed to pop
/// the earliest deadline first.
struct Item<K, V> {
  deadline: u64,
  key: K,
  entry: Weak<Entry<V>>,
}

impl<K, V> PartialEq for Item<K, V> {
  fn eq(&self, other: &Self) -> bool {
    self.deadline == other.deadline
  }
}
impl<K, V> Eq for Item<K, V> {}
impl<K, V> PartialOrd for Item<K, V> {
  fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
    Some(self.cmp(other))
  }
}
impl<K, V> Ord for Item<K, V> {
  fn cmp(&self, other: &Self) -> CmpOrdering {
    other.deadline.cmp(&self.deadline)
  }
}

/// Cache-line padding so the heap mutexes of different threads do not share
/// a line.
#[repr(align(128))]
struct Padded<T>(T);

/// One heap with its lock, padded.
type Heap<K, V> = Padded<Mutex<BinaryHeap<Item<K, V>>>>;

/// A flow table made of a [`DashMap`] of `Arc<Entry>` (value, atomic
/// `last_seen`, timeout) plus one binary heap of `(deadline, key,
/// Weak<Entry>)` per thread slot, each in a mutex.
///
/// * `touch` is a timestamp store under the DashMap shard's read lock.
/// * `expire` pops due heap items; a touched entry (actual deadline later
///   than the queued one) is pushed back with its new deadline (lazy re-arm,
///   as Zeek's `Session::InactivityTimer` does); a dead `Weak` or an item
///   whose key now maps to a different `Arc` is dropped.
/// * Heaps are per *thread slot* rather than per thread: a thread gets a slot
///   number the first time it inserts and pushes into heap `slot % heaps`.
///   True thread-local heaps would need a registry so `expire` can reach them
///   and would be orphaned when a worker thread exits; with slots,
///   concurrent inserters still rarely share a heap lock.
///
/// See the crate documentation for locking and the failure story.
pub struct DashMapEngine<K, V> {
  map: DashMap<K, Arc<Entry<V>>, HashState>,
  heaps: Box<[Heap<K, V>]>,
  clock: Arc<dyn Clock>,
  default_timeout: u64,
  capacity: Option<usize>,
  when_full: Full,
  /// Stored + reserved entries; maintained only when `capacity` is set.
  count: AtomicUsize,
  /// Round-robin start of `expire` and of evictions from other heaps.
  cursor: AtomicUsize,
  stats: StatCounters,
}

static NEXT_THREAD_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
  static THREAD_SLOT: usize = NEXT_THREAD_SLOT.fetch_add(1, Ordering::Relaxed);
}

impl<K, V> DashMapEngine<K, V>
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
    // DashMap requires a power of two greater than one.
    let shards = config.shard_count().max(2);
    let heaps = (0..shards)
      .map(|_| Padded(Mutex::new(BinaryHeap::new())))
      .collect();
    Self {
      map: DashMap::with_capacity_and_hasher_and_shard_amount(0, HashState::default(), shards),
      heaps,
      clock,
      default_timeout: config.default_timeout_ms,
      capacity: config.capacity,
      when_full: config.when_full,
      count: AtomicUsize::new(0),
      cursor: AtomicUsize::new(0),
      stats: StatCounters::default(),
    }
  }

  fn home_heap(&self) -> usize {
    THREAD_SLOT.with(|s| *s) % self.heaps.len()
  }

  /// Takes one unit of capacity if one is free.
  fn try_reserve(&self, cap: usize) -> bool {
    self
      .count
      .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
        (c < cap).then_some(c + 1)
      })
      .is_ok()
  }

  /// Pops the earliest-deadline entry of heap `h` and removes it from the
  /// map, re-arming touched entries it meets (at most [`VICTIM_STEPS`]) and
  /// dropping stale items. With `only_expired`, gives up at the first live
  /// entry that is not expired. Returns the record and whether it was
  /// expired.
  ///
  /// Lock order: a heap mutex, then a DashMap shard (inside `remove_if`).
  /// Nothing locks a heap while holding a shard guard.
  fn pop_victim(&self, h: usize, now: u64, only_expired: bool) -> Option<(Expired<K, V>, bool)> {
    let mut heap = self.heaps[h].0.lock();
    let mut steps = 0;
    loop {
      let item = heap.pop()?;
      steps += 1;
      let Some(entry) = item.entry.upgrade() else {
        continue; // removed or replaced: stale item
      };
      let deadline = entry.deadline();
      if deadline > now {
        let touched = deadline > item.deadline;
        if only_expired {
          let give_up = !touched || steps >= VICTIM_STEPS;
          heap.push(Item {
            deadline: deadline.max(item.deadline),
            ..item
          });
          if give_up {
            return None;
          }
          continue;
        }
        if touched && steps < VICTIM_STEPS {
          heap.push(Item { deadline, ..item });
          continue;
        }
      }
      if let Some(found) = self.remove_entry(&item.key, entry, |_| true, now) {
        return Some(found);
      }
      // Replaced or removed concurrently: the item was stale after all.
    }
  }

  /// Removes `key` if it still maps to `entry` and `cond` holds, checked under
  /// the shard write lock so no touch can interleave. Returns the record and
  /// whether the entry was expired at `now`.
  fn remove_entry(
    &self,
    key: &K,
    entry: Arc<Entry<V>>,
    cond: impl FnOnce(&Entry<V>) -> bool,
    now: u64,
  ) -> Option<(Expired<K, V>, bool)> {
    let mut last_seen = 0;
    let mut expired = false;
    let removed = self.map.remove_if(key, |_, v| {
      last_seen = v.last_seen();
      expired = v.expired(now);
      Arc::ptr_eq(v, &entry) && cond(v)
    });
    // Drop our upgraded reference first so the value can usually be moved
    // out instead of cloned (the pointer comparison above needed it alive).
    drop(entry);
    let (key, arc) = removed?;
    if self.capacity.is_some() {
      self.count.fetch_sub(1, Ordering::AcqRel);
    }
    let value = unwrap_value(arc);
    Some((
      Expired {
        key,
        value,
        last_seen,
      },
      expired,
    ))
  }

  /// Removes one entry to make room in a full table: from the calling
  /// thread's heap first, then (EvictLongestIdle only) round-robin over the
  /// others. The victim's unit of capacity is released; the caller decides
  /// whether to take it.
  fn make_room(&self, now: u64, out: &mut Inserted<K, V>) -> bool {
    let only_expired = self.when_full == Full::Refuse;
    let n = self.heaps.len();
    let home = self.home_heap();
    let start = self.cursor.fetch_add(1, Ordering::Relaxed);
    // Refuse only looks at the home heap: reclaiming an expired entry there
    // is a courtesy, not a search.
    let tries = if only_expired { 1 } else { n + 1 };
    let order = std::iter::once(home).chain((0..n).map(|i| (start + i) % n));
    for h in order.take(tries) {
      if let Some((victim, expired)) = self.pop_victim(h, now, only_expired) {
        self.stats.record_eviction();
        out.evicted = Some(Evicted {
          entry: victim,
          was_expired: expired,
        });
        return true;
      }
    }
    false
  }
}

/// The value of a removed entry: moved out when this was the last `Arc`,
/// cloned when an `expire` on another thread still holds an upgraded `Weak`.
fn unwrap_value<V: Clone>(arc: Arc<Entry<V>>) -> V {
  match Arc::try_unwrap(arc) {
    Ok(e) => e.value,
    Err(arc) => arc.value.clone(),
  }
}

impl<K, V> FlowEngine<K, V> for DashMapEngine<K, V>
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
    let now = self.clock.now();
    let mut out = Inserted::default();
    // Capacity: reserve a unit before inserting a key that looks new.
    // `contains_key` takes and releases a read guard, so its answer can be
    // stale by the time we insert; the `match` below corrects the count.
    let mut reserved = false;
    if let Some(cap) = self.capacity {
      if !self.map.contains_key(&key) {
        if self.try_reserve(cap) {
          reserved = true;
        } else if cap > 0 && self.make_room(now, &mut out) {
          // Take the unit the victim released.
          self.count.fetch_add(1, Ordering::AcqRel);
          reserved = true;
        } else {
          return Err(InsertError::Full);
        }
      }
    }
    let entry = Arc::new(Entry {
      value,
      last_seen: AtomicU64::new(now),
      timeout,
    });
    let item = Item {
      deadline: now.saturating_add(timeout),
      key: key.clone(),
      entry: Arc::downgrade(&entry),
    };
    // No guard is held across these calls: `insert` returns, then the heap
    // is locked.
    let old = self.map.insert(key, entry);
    match old {
      Some(old) => {
        if reserved {
          self.count.fetch_sub(1, Ordering::AcqRel);
        }
        let last_seen = old.last_seen();
        if old.expired(now) {
          out.expired = Some(Expired {
            key: item.key.clone(),
            value: unwrap_value(old),
            last_seen,
          });
        } else {
          out.replaced = Some(unwrap_value(old));
        }
      }
      None => {
        if let (Some(cap), false) = (self.capacity, reserved) {
          // The key was removed between the check and the insert: count the
          // entry now and, if that overshot the bound, make room (reported
          // in `out`, which is still empty on this path) or undo the insert.
          if self.count.fetch_add(1, Ordering::AcqRel) >= cap && !self.make_room(now, &mut out) {
            let ours = |_: &K, v: &Arc<Entry<V>>| Arc::as_ptr(v) == item.entry.as_ptr();
            if self.map.remove_if(&item.key, ours).is_some() {
              self.count.fetch_sub(1, Ordering::AcqRel);
              return Err(InsertError::Full);
            }
            // Someone else already removed (and reported) our entry.
          }
        }
      }
    }
    self.heaps[self.home_heap()].0.lock().push(item);
    Ok(out)
  }

  fn get(&self, key: &K) -> Option<V> {
    let now = self.clock.now();
    // `view` runs the closure under the shard read lock and releases it
    // before returning: no guard escapes.
    self
      .map
      .view(key, |_, e| (!e.expired(now)).then(|| e.value.clone()))
      .flatten()
  }

  fn touch(&self, key: &K) -> bool {
    let now = self.clock.now();
    self
      .map
      .view(key, |_, e| {
        if e.expired(now) {
          false
        } else {
          e.last_seen.store(now, Ordering::Relaxed);
          true
        }
      })
      .unwrap_or(false)
  }

  fn get_and_touch(&self, key: &K) -> Option<V> {
    let now = self.clock.now();
    self
      .map
      .view(key, |_, e| {
        if e.expired(now) {
          None
        } else {
          e.last_seen.store(now, Ordering::Relaxed);
          Some(e.value.clone())
        }
      })
      .flatten()
  }

  fn contains(&self, key: &K) -> bool {
    let now = self.clock.now();
    self.map.view(key, |_, e| !e.expired(now)).unwrap_or(false)
  }

  fn remove(&self, key: &K) -> Option<V> {
    let now = self.clock.now();
    let (_, arc) = self.map.remove_if(key, |_, e| !e.expired(now))?;
    if self.capacity.is_some() {
      self.count.fetch_sub(1, Ordering::AcqRel);
    }
    Some(unwrap_value(arc))
  }

  fn expire(&self, now: u64, max: usize) -> Vec<Expired<K, V>> {
    let mut out = Vec::new();
    if max == 0 {
      return out;
    }
    let mut budget = rearm_budget(max);
    let (mut visited, mut rearmed) = (0u64, 0u64);
    let n = self.heaps.len();
    let start = self.cursor.fetch_add(1, Ordering::Relaxed);
    for i in 0..n {
      if out.len() >= max || budget == 0 {
        break;
      }
      let mut heap = self.heaps[(start + i) % n].0.lock();
      while out.len() < max && budget > 0 {
        match heap.peek() {
          Some(top) if top.deadline <= now => {}
          _ => break,
        }
        let Some(item) = heap.pop() else { break };
        visited += 1;
        let Some(entry) = item.entry.upgrade() else {
          continue;
        };
        let deadline = entry.deadline();
        if deadline > now {
          // Touched since queued: lazy re-arm at the new deadline.
          budget -= 1;
          rearmed += 1;
          heap.push(Item { deadline, ..item });
          continue;
        }
        // The deadline is re-checked under the shard write lock, so a touch
        // that landed after the check above keeps the entry alive.
        let key = item.key;
        match self.remove_entry(&key, entry, |e| e.expired(now), now) {
          Some((e, _)) => out.push(e),
          None => {
            // Replaced or removed (stale: drop), or touched just now: then
            // it is still ours and is re-armed.
            let live = self.map.view(&key, |_, v| {
              (Arc::as_ptr(v) == item.entry.as_ptr()).then(|| v.deadline())
            });
            if let Some(Some(deadline)) = live {
              budget = budget.saturating_sub(1);
              rearmed += 1;
              heap.push(Item {
                deadline,
                key,
                entry: item.entry,
              });
            }
          }
        }
      }
    }
    self.stats.record_expire(visited, rearmed, out.len() as u64);
    out
  }

  fn next_due(&self) -> Option<u64> {
    self
      .heaps
      .iter()
      .filter_map(|h| h.0.lock().peek().map(|i| i.deadline))
      .min()
  }

  fn len(&self) -> usize {
    self.map.len()
  }

  fn for_each(&self, f: &mut dyn FnMut(&K, &V, u64)) {
    let now = self.clock.now();
    // Copy out first: the DashMap iterator holds a shard read guard, and `f`
    // may call back into the table.
    let snapshot: Vec<(K, V, u64)> = self
      .map
      .iter()
      .filter(|r| !r.value().expired(now))
      .map(|r| {
        (
          r.key().clone(),
          r.value().value.clone(),
          r.value().last_seen(),
        )
      })
      .collect();
    for (k, v, t) in &snapshot {
      f(k, v, *t);
    }
  }

  fn clear(&self) {
    // Heaps first, then the map: an entry inserted concurrently either is
    // removed by the retain or has its heap item pushed after the heap clear.
    for h in self.heaps.iter() {
      *h.0.lock() = BinaryHeap::new();
    }
    let counted = self.capacity.is_some();
    self.map.retain(|_, _| {
      if counted {
        self.count.fetch_sub(1, Ordering::AcqRel);
      }
      false
    });
  }

  fn memory_bytes(&self) -> usize {
    // DashMap shards are hashbrown tables of (K, Arc) with one control byte
    // per bucket; `capacity` is ~7/8 of the buckets.
    let buckets = self.map.capacity() * 8 / 7;
    let table = buckets * (size_of::<(K, Arc<Entry<V>>)>() + 1);
    let (mut heap_cap, mut heap_items) = (0, 0);
    for h in self.heaps.iter() {
      let h = h.0.lock();
      heap_cap += h.capacity();
      heap_items += h.len();
    }
    // Arc blocks: live entries, plus blocks kept allocated by the Weak of a
    // stale heap item (bounded by the number of heap items).
    let arcs = self.map.len().max(heap_items);
    let arc_block = malloc_size(2 * size_of::<usize>() + size_of::<Entry<V>>());
    table
      + heap_cap * size_of::<Item<K, V>>()
      + arcs * arc_block
      + size_of::<Self>()
      + self.heaps.len() * size_of::<Heap<K, V>>()
  }

  fn stats(&self) -> Stats {
    self.stats.snapshot()
  }

  fn now(&self) -> u64 {
    self.clock.now()
  }
}
