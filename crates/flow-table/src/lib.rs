//! A concurrent flow table: a map whose entries expire after an idle
//! timeout, without O(N) sweeps, behind one object-safe interface
//! ([`FlowEngine`]) with two engines.
//!
//! ```
//! use std::sync::Arc;
//! use lrukit_flow_table::{new_engine, Config, EngineKind, FlowEngine, ManualClock};
//!
//! let clock = Arc::new(ManualClock::new(0));
//! let t: Box<dyn FlowEngine<u64, &str>> = new_engine(EngineKind::Wheel, Config::new(100), clock.clone());
//! t.insert(1, "a", None).unwrap(); // idle timeout 100 ms (the default)
//! t.insert(2, "b", Some(1_000)).unwrap(); // per-entry timeout
//! clock.set(60);
//! assert!(t.touch(&1)); // one timestamp store
//! clock.set(150);
//! assert_eq!(t.get(&1), Some("a")); // touched at 60: alive until 160
//! clock.set(160);
//! assert_eq!(t.get(&1), None); // past its deadline: invisible before any expire
//! let out = t.expire(160, 1000); // removes and reports it
//! assert_eq!((out[0].key, out[0].last_seen), (1, 60));
//! assert_eq!(t.len(), 1);
//! ```
//!
//! # Semantics
//!
//! * An entry's deadline is `last_seen + timeout` (saturating; a timeout of
//!   `u64::MAX` never expires). It is *expired* once `deadline <= now`.
//!   `insert` and `touch` set `last_seen` to the clock's now; `get` does not.
//! * Reads (`get`, `contains`, `touch`, `get_and_touch`, `for_each`) compare
//!   against the clock and never return an expired entry, even before
//!   `expire` runs (as Linux conntrack checks a connection's timeout when it
//!   looks the connection up, and moka never returns an expired entry). An
//!   expired entry is not revived by `touch` and is not returned by
//!   `remove`.
//! * Every entry leaves the table exactly once, through one of: `remove`
//!   (live entries), `expire` (reports key, value and `last_seen`),
//!   [`FlowEngine::insert_full`] (the replaced live value, the same key's
//!   expired entry, or an entry evicted or reclaimed for capacity), or
//!   `clear`. Expired entries wait for one of those, so `len` counts them
//!   until they are reaped; notifications are therefore delayed until the
//!   caller runs `expire` (moka issues #266 and #345 show the surprise this
//!   causes when a cache does not say so).
//! * `expire(now, max)` removes at most `max` entries and re-arms at most
//!   `4 * max + 64` queue elements, so its work is bounded independently of
//!   the table size (as VPP's `max_expirations` and Zeek's `max_expire`
//!   bound theirs). It may therefore return fewer than `max` while more are
//!   due; [`FlowEngine::next_due`] is a cheap lower bound on when there is
//!   work, for scheduling the next call.
//! * The clock is injectable ([`Clock`]: milliseconds; [`MonotonicClock`] by
//!   default, [`ManualClock`] for tests).
//!
//! # Engine 1: [`DashMapEngine`] (DashMap + heaps)
//!
//! * **Layout.** `DashMap<K, Arc<Entry>>` where `Entry = { value, last_seen:
//!   AtomicU64, timeout }`, plus one `Mutex<BinaryHeap<(deadline, key,
//!   Weak<Entry>)>>` per *thread slot* (a thread's first insert gives it a
//!   slot number; it pushes into heap `slot % shards`). True per-thread heaps
//!   would need a registry for `expire` to reach them and would be orphaned
//!   when a worker exits; with slots, concurrent inserters still rarely
//!   share a heap.
//! * **Expiry.** `touch` stores `last_seen` under the DashMap shard's read
//!   lock. `expire` pops due heap items; a dead `Weak` or an item whose key
//!   now maps to a different `Arc` is dropped; if the entry was touched (its
//!   deadline moved) it is pushed back at the new deadline: the lazy re-arm
//!   of Zeek's `Session::InactivityTimer`, one heap operation per timeout
//!   period instead of one per packet.
//! * **Locking.** No DashMap guard escapes a method or is held across
//!   another map call (that can deadlock: dashmap issues #74 and #369):
//!   reads use `view`, removals `remove_if` with an `Arc::ptr_eq` identity
//!   check so a concurrent re-insert is never removed, and `for_each` copies
//!   entries out before calling back. Lock order is heap mutex, then shard; inserts
//!   release the shard before locking a heap.
//! * **Costs.** insert O(log n) (heap push) plus one allocation; touch,
//!   get O(1); expire O(log n) per popped item. Replaced and removed entries
//!   leave stale heap items (and, through their `Weak`, the `Arc` block)
//!   until their old deadline pops, so memory grows with churn inside one
//!   timeout window.
//!
//! # Engine 2: [`WheelEngine`] (integrated)
//!
//! Entries, hash index and timeout order live in one sharded structure; a
//! shard is a `parking_lot::RwLock` over:
//!
//! ```text
//! slots     Vec<Slot>       the slab, array of structs, grows by doubling
//!   Slot  = { e: Option<Entry>, prev: u32, next: u32 }          wheel list links
//!   Entry = { last_seen: AtomicU64, key: K, value: V,
//!             timeout: NonZeroU32 (ms + 1; a side table holds timeouts >= 2^32 - 2 ms),
//!             chain: u32 }                                       hash chain link
//!   = 24 bytes + K + V per slot (40 for (u64, u64): Option uses the NonZeroU32 niche)
//! heads     Vec<u32>        hash chain heads, power of two, load <= 0.5 (8-16 bytes/flow)
//! sentinels [[u32; 2]; 1280] list heads of the wheel buckets
//! occupied  [u128; 10]      non-empty buckets per level
//! elapsed   u64             the wheel's cursor
//! free      u32             free-slot list (through `next`)
//! ```
//!
//! plus, per table, one `AtomicU64` hint per shard (a lower bound on when
//! the shard has expiry work, like Suricata's per-row `next_ts`), a capacity
//! counter and a round-robin cursor. Measured: 50 bytes per flow for
//! `(u64, u64)` at 1M flows against 109 for the DashMap engine (BENCH.md).
//!
//! **Timing wheel.** Ten levels; level L buckets are 64^L ms wide (1 ms,
//! 64 ms, 4.1 s, 4.4 min, ...) and each level is a ring of 128 buckets, so
//! level L holds deadlines less than 128 of its buckets ahead of the cursor.
//! Each bucket is a circular doubly linked list with a sentinel, threaded
//! through the slots' `prev`/`next`, so unlinking an entry is O(1) without
//! knowing its bucket (VPP's tw_timer and ACL session lists also link pool
//! entries by u32 index). An entry is placed by distance from the cursor at
//! the finest level that reaches its deadline.
//!
//! **Expiry algorithm.**
//! * `insert` places the entry at its deadline. `touch` only stores
//!   `last_seen` (no queue operation).
//! * `expire(now, max)` visits shards round-robin from a rotating start
//!   (skipping, without locking, shards whose hint is after `now`) and in
//!   each does *due work*: take the bucket that starts at or before `now`
//!   and ends first; for each entry, if `last_seen + timeout <= now` remove
//!   and report it, else move it to its actual deadline: either it was
//!   touched (lazy re-arm, exact to the millisecond) or it sits in a coarse
//!   bucket (a cascade to a finer level). Then *background work*: coarse
//!   buckets that already fit in the next finer ring are cascaded down a
//!   little per call (a level-L bucket becomes eligible 64^L ms before it is
//!   due), so by the time a coarse bucket is due its entries are already in
//!   1 ms buckets and due entries are never stuck behind not-yet-due ones.
//!   The re-arm budget is shared fairly: an equal slice per shard first,
//!   then what is left.
//! * Each entry is moved at most once per level it starts above level 0
//!   (none for timeouts < 128 ms, one for < 8 s, two for < 8.7 min) plus
//!   once per timeout period in which it was touched.
//!
//! **Why not the alternatives.** Struct of arrays would cost three or four
//! cache misses per operation (key, `last_seen`, timeout and links are used
//! together); the array of structs costs one. A chained index in the slots
//! (the chain link took the 4 bytes saved by a 32-bit timeout) beat a
//! `hashbrown::HashTable<u32>` of slot numbers: 4.2 against 10.5 bytes per
//! flow at 1M flows (load 1.0; now 0.5 for shorter chains, 8.4 bytes), and a
//! lookup touches a head and about 1.2 slots instead of a control group, a
//! bucket and a slot. Per-timeout FIFO lists (VPP ACL) are O(1) for
//! untouched flows, but re-arming a touched flow at the tail reports it up
//! to one timeout late (its queue position becomes the re-arm time); the
//! wheel re-arms at the exact deadline and takes any per-entry timeout. Slot
//! generation counters are not needed: every reference to a slot (hash
//! chain, wheel list, free list) is intrusive and is unlinked in the same
//! critical section that frees the slot, and slot numbers never leave the
//! shard lock, so there is no stale handle to detect (moka's timer-wheel
//! use-after-free, moka #548, came from pointers held outside the entry's
//! lock). Add generations if slot handles are ever exposed (for example to
//! JavaScript).
//!
//! **Complexity.** insert, get, touch, contains, remove: O(1) expected (a
//! hash, a chain of about 1.2 slots, O(1) list operations; insert amortises
//! slab and index doubling). expire: O(max + 4 max + 64 + shards x levels).
//! len: O(shards). for_each, clear: O(n).
//!
//! **Locking.** One lock per shard, never two at once. `get`, `touch`,
//! `contains` and `get_and_touch` take it shared (`last_seen` is atomic, so
//! concurrent touches of one shard do not serialise); insert, remove and
//! expire take it exclusively, expire one shard at a time and for at most
//! its budget slice. An insert that must evict from another shard releases
//! its own lock first and re-checks after relocking. `for_each` copies one
//! shard out under the shared lock and calls back with no lock held.
//!
//! # Capacity
//!
//! With `capacity` set, a global atomic count reserves a unit before a new
//! key is inserted (replacing an existing key never needs one). When full:
//! * [`Full::EvictLongestIdle`]: the wheel engine takes the head of the
//!   earliest non-empty bucket of the key's shard, re-arming up to 8 heads
//!   that were touched (deadline beyond their bucket); if that shard is empty
//!   it evicts in another shard. The victim is therefore the longest-idle
//!   entry of one shard to within a bucket width (with S shards and uniform
//!   hashing, typically among the S oldest entries), not the oldest. The
//!   DashMap engine pops the calling thread's heap top (then other heaps),
//!   re-arming up to 16 touched items: the earliest deadline of one heap,
//!   which is the longest idle only when timeouts are uniform.
//! * [`Full::Refuse`]: [`InsertError::Full`], unless the entry at the front
//!   of that same order is already expired, in which case it is reclaimed
//!   instead of refusing.
//! * The victim is reported in [`Inserted::evicted`], with
//!   [`Evicted::was_expired`] telling a reclaimed expired entry from an
//!   evicted live one. `capacity: Some(0)` refuses every insert.
//!
//! # Failure story
//!
//! * **Contention.** Hot keys contend on their shard's lock (readers share
//!   it; parking_lot's lock is eventually fair, so writers do not starve).
//!   `expire` holds one shard's write lock for at most its slice of the
//!   bounded budget, so it never stalls the fast path for O(N), as a sweep
//!   over every entry would. The capacity counter is one shared atomic
//!   touched only by inserts of new keys and by removals, and only when a
//!   capacity is set.
//! * **Capacity pressure.** Every insert into a full table does O(1)
//!   eviction work (at most 8 or 16 queue elements); nothing scans. The
//!   victim choice is approximate, as above. Under races the DashMap engine
//!   may briefly hold one entry over capacity per in-flight insert before it
//!   evicts or undoes the insert; the wheel engine's bound is exact.
//! * **Clock jumps.** [`MonotonicClock`] cannot jump. With another clock: a
//!   forward jump makes everything expired at once: reads stop returning
//!   entries immediately and `expire` drains them `max` at a time, with no
//!   stall. A backward jump makes entries look younger to reads, and
//!   `touch` stores the earlier time. The heap engine still reaps by
//!   deadline; the wheel's cursor does not move back, so entries due before
//!   the cursor (the largest `now` it processed) are reaped once `now`
//!   passes the cursor again. Deadlines beyond 2^60 ms are never reaped by
//!   the wheel.
//! * **Memory.** The wheel's slab and index grow by doubling and do not
//!   shrink (freed slots are reused; `clear` frees everything); a shard
//!   holds at most 2^32 - 1281 slots. The DashMap engine allocates per
//!   entry and keeps stale heap items until their old deadline.
//! * **Panics.** None on valid use; user `Hash`/`Eq`/`Clone` panics inside
//!   a shard lock poison nothing (parking_lot) but may leave that shard's
//!   structures inconsistent.
//!
//! # Background expiry
//!
//! [`Reaper`] runs [`reap_once`] on one thread per table at a fixed interval
//! and hands each non-empty batch to a sink (the JavaScript `onExpire`).
//! [`ExpiryOptions`] gives the interval and batch size: by default a tenth
//! of the idle timeout within 10..=1000 ms, and 10,000 entries.
//!
//! # Tables, options and sharing
//!
//! [`FlowTable`] is an engine with its clock, made from [`TableOptions`]
//! (by default unbounded, evicting when full, the wheel engine and the
//! monotonic clock). [`options`] holds the names of engines, policies and
//! clocks and the bounds of the numbers a caller takes from its users
//! (timeouts up to 2^53 ms, capacities up to 2^32), so that every caller
//! applies the same rules. [`shared_table`] gives every thread of the
//! process the same table for a name; the first call's options make it.
//!
//! # Features
//!
//! * `mutex-shards` (measurement only): the wheel engine uses a `Mutex`
//!   per shard instead of a `RwLock` (see BENCH.md).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod dashmap_engine;
pub mod options;
mod reaper;
mod registry;
mod table;
mod wheel_engine;

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use clock::{Clock, ManualClock, MonotonicClock};
pub use dashmap_engine::DashMapEngine;
pub use options::{ClockKind, TableOptions, UnknownName};
pub use reaper::{reap_once, ExpiryOptions, Reaper, Tick};
pub use registry::{shared_table, unshare_table};
pub use table::{AdvanceError, FlowTable};
pub use wheel_engine::WheelEngine;

/// What an insert of a new key does when the table holds `capacity` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Full {
  /// Remove the entry that has been idle longest, as far as the engine can
  /// tell cheaply (see the crate documentation, "Capacity"), and insert.
  #[default]
  EvictLongestIdle,
  /// Fail with [`InsertError::Full`], unless an already expired entry is
  /// found at the front of the expiry order: that one is reclaimed instead.
  Refuse,
}

/// Table configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
  /// Idle timeout of entries inserted with `timeout_ms: None`.
  pub default_timeout_ms: u64,
  /// Maximum number of stored entries (expired entries that were not yet
  /// reaped count too). `None` = unbounded. `Some(0)` refuses every insert.
  pub capacity: Option<usize>,
  /// Policy when `capacity` is reached.
  pub when_full: Full,
  /// Number of lock shards, rounded up to a power of two (at most 1024).
  /// `None` = 4 x available parallelism, rounded up (DashMap's default).
  pub shards: Option<usize>,
}

impl Config {
  /// Unbounded table with the given default idle timeout and default shards.
  pub fn new(default_timeout_ms: u64) -> Self {
    Self {
      default_timeout_ms,
      capacity: None,
      when_full: Full::EvictLongestIdle,
      shards: None,
    }
  }

  /// Sets the capacity and the policy when full.
  pub fn with_capacity(mut self, capacity: usize, when_full: Full) -> Self {
    self.capacity = Some(capacity);
    self.when_full = when_full;
    self
  }

  /// Sets the number of shards.
  pub fn with_shards(mut self, shards: usize) -> Self {
    self.shards = Some(shards);
    self
  }

  /// The shard count actually used: a power of two in `1..=1024`.
  pub fn shard_count(&self) -> usize {
    let n = self
      .shards
      .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from) * 4);
    n.clamp(1, 1024).next_power_of_two()
  }
}

/// An entry removed by the table itself: returned by
/// [`FlowEngine::expire`], and in [`Inserted`] for entries an insert reaped
/// or evicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired<K, V> {
  /// The key.
  pub key: K,
  /// The value.
  pub value: V,
  /// The last time (clock milliseconds) the entry was inserted or touched.
  pub last_seen: u64,
}

/// The full result of an insert ([`FlowEngine::insert_full`]).
/// `replaced` and `expired` exclude each other (they describe the same
/// key's previous entry); `evicted` is another key's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inserted<K, V> {
  /// The previous value of the same key, if it was live.
  pub replaced: Option<V>,
  /// The same key's previous entry, if it was past its deadline (so it is
  /// not "replaced"); `expire` will not report it.
  pub expired: Option<Expired<K, V>>,
  /// An entry of another key removed because the table was full.
  pub evicted: Option<Evicted<K, V>>,
}

/// An entry an insert removed to stay within the capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted<K, V> {
  /// The removed entry.
  pub entry: Expired<K, V>,
  /// Whether it was already past its deadline (reclaimed rather than
  /// evicted alive). [`Full::Refuse`] only ever reclaims such entries.
  pub was_expired: bool,
}

impl<K, V> Default for Inserted<K, V> {
  fn default() -> Self {
    Self {
      replaced: None,
      expired: None,
      evicted: None,
    }
  }
}

/// Why an insert failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
  /// The table holds `capacity` entries and the policy is [`Full::Refuse`]
  /// (or the capacity is 0, or nothing could be evicted).
  Full,
}

impl fmt::Display for InsertError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      InsertError::Full => f.write_str("flow table is full"),
    }
  }
}

impl std::error::Error for InsertError {}

/// Counters, for observability and for tests that check the work `expire`
/// does. They are updated once per `expire` call (and per eviction), never on
/// the `get`/`touch` path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
  /// Number of `expire` calls.
  pub expire_calls: u64,
  /// Queue elements `expire` examined (popped heap items or wheel entries),
  /// including stale ones: the work measure of `expire`.
  pub visited: u64,
  /// Elements `expire` put back in the queue instead of removing: touched
  /// entries re-armed at their new deadline and (wheel) entries cascaded to
  /// a finer wheel level.
  pub rearmed: u64,
  /// Entries removed by `expire`.
  pub expired: u64,
  /// Entries removed by inserts into a full table (both evicted live entries
  /// and reclaimed expired ones).
  pub evicted: u64,
}

#[derive(Default)]
pub(crate) struct StatCounters {
  expire_calls: AtomicU64,
  visited: AtomicU64,
  rearmed: AtomicU64,
  expired: AtomicU64,
  evicted: AtomicU64,
}

impl StatCounters {
  pub(crate) fn record_expire(&self, visited: u64, rearmed: u64, expired: u64) {
    self.expire_calls.fetch_add(1, Ordering::Relaxed);
    self.visited.fetch_add(visited, Ordering::Relaxed);
    self.rearmed.fetch_add(rearmed, Ordering::Relaxed);
    self.expired.fetch_add(expired, Ordering::Relaxed);
  }

  pub(crate) fn record_eviction(&self) {
    self.evicted.fetch_add(1, Ordering::Relaxed);
  }

  pub(crate) fn snapshot(&self) -> Stats {
    Stats {
      expire_calls: self.expire_calls.load(Ordering::Relaxed),
      visited: self.visited.load(Ordering::Relaxed),
      rearmed: self.rearmed.load(Ordering::Relaxed),
      expired: self.expired.load(Ordering::Relaxed),
      evicted: self.evicted.load(Ordering::Relaxed),
    }
  }
}

/// The interface both engines implement. It is object safe: the binding can
/// hold a `Box<dyn FlowEngine<K, V>>` (see [`new_engine`]).
///
/// Time: an entry's deadline is `last_seen + timeout` (saturating); it is
/// *expired* when `deadline <= now`. Reads (`get`, `contains`, `touch`,
/// `for_each`) compare against the engine's clock and never see an expired
/// entry, even before `expire` has removed it. Such an entry still counts in
/// [`len`](Self::len) and against the capacity until `expire` (or an insert,
/// see [`Inserted`]) removes and reports it; every entry leaves the table
/// through exactly one of: `remove`, `expire`, an [`Inserted`] field, or
/// `clear`.
pub trait FlowEngine<K, V>: Send + Sync {
  /// Inserts or replaces `key`, setting `last_seen` to now and the idle
  /// timeout to `timeout_ms` (or the configured default). Reports what it
  /// displaced; fails only when the table is full (see [`Full`]).
  fn insert_full(
    &self,
    key: K,
    value: V,
    timeout_ms: Option<u64>,
  ) -> Result<Inserted<K, V>, InsertError>;

  /// [`insert_full`](Self::insert_full) returning only the replaced live
  /// value. Entries it reaps or evicts are dropped without a report.
  fn insert(&self, key: K, value: V, timeout_ms: Option<u64>) -> Result<Option<V>, InsertError> {
    self.insert_full(key, value, timeout_ms).map(|r| r.replaced)
  }

  /// [`insert`](Self::insert) for each pair, in order (for a key given
  /// twice, the later value wins), all with `timeout_ms`. Replaced, reaped
  /// and evicted entries are dropped without a report. On `Err`, the pairs
  /// before the refused one are stored and the rest are not. The default
  /// inserts one by one; the wheel engine groups the pairs by shard (one
  /// lock acquisition per shard) and overlaps their cache misses when the
  /// table has no capacity limit.
  fn insert_many(&self, entries: Vec<(K, V)>, timeout_ms: Option<u64>) -> Result<(), InsertError> {
    insert_each(self, entries, timeout_ms)
  }

  /// A clone of the live value; does not refresh `last_seen`.
  fn get(&self, key: &K) -> Option<V>;

  /// Refreshes `last_seen` of a live entry: one timestamp store, no queue
  /// operation. Returns false if the key is absent or expired (an expired
  /// entry is not revived).
  fn touch(&self, key: &K) -> bool;

  /// [`get`](Self::get) and [`touch`](Self::touch) in one lookup.
  fn get_and_touch(&self, key: &K) -> Option<V>;

  /// [`touch`](Self::touch) for each key: `out` is cleared and gets one
  /// result per key, in order. The default calls `touch` per key; the wheel
  /// engine groups the keys by shard (one lock acquisition per shard) and
  /// overlaps their cache misses.
  fn touch_many(&self, keys: &[K], out: &mut Vec<bool>) {
    out.clear();
    out.extend(keys.iter().map(|k| self.touch(k)));
  }

  /// Whether a live entry exists.
  fn contains(&self, key: &K) -> bool;

  /// Removes a live entry and returns its value. An expired entry is left in
  /// place (returns `None`) so that `expire` reports it.
  fn remove(&self, key: &K) -> Option<V>;

  /// Removes and returns up to `max` entries whose deadline is `<= now`.
  /// Entries touched since they were queued are re-armed at their new
  /// deadline instead. The work is bounded by `max` removals plus at most
  /// `4 * max + 64` re-arms, independent of the table size, so a call may
  /// return fewer than `max` entries while more are due: call again while
  /// [`next_due`](Self::next_due) is `<= now`.
  fn expire(&self, now: u64, max: usize) -> Vec<Expired<K, V>>;

  /// A lower bound on the earliest time `expire` can find work (None when
  /// the table is empty). Cheap; for scheduling the next `expire`.
  fn next_due(&self) -> Option<u64>;

  /// Stored entries, including expired ones not yet reaped.
  fn len(&self) -> usize;

  /// `len() == 0`.
  fn is_empty(&self) -> bool {
    self.len() == 0
  }

  /// Calls `f(key, value, last_seen)` for every live entry. Weakly
  /// consistent: entries are copied out shard by shard and `f` runs with no
  /// lock held, so `f` may call back into the table.
  fn for_each(&self, f: &mut dyn FnMut(&K, &V, u64));

  /// Removes every entry without reporting them.
  fn clear(&self);

  /// Estimated heap bytes of the table's own structures (it cannot see heap
  /// memory owned by `K` and `V`, such as the bytes of a `Box<[u8]>` key).
  fn memory_bytes(&self) -> usize;

  /// Counters (see [`Stats`]).
  fn stats(&self) -> Stats;

  /// The engine clock's current time.
  fn now(&self) -> u64;
}

/// Engine selector for [`new_engine`]; [`Wheel`](Self::Wheel) by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
  /// [`DashMapEngine`]: DashMap + per-thread binary heaps.
  DashMap,
  /// [`WheelEngine`]: sharded slab + hash index + timing wheel in one lock.
  #[default]
  Wheel,
}

/// [`FlowEngine::insert_many`] one [`FlowEngine::insert`] at a time, in
/// order, stopping at the first refusal.
fn insert_each<K, V, E>(
  engine: &E,
  entries: Vec<(K, V)>,
  timeout_ms: Option<u64>,
) -> Result<(), InsertError>
where
  E: FlowEngine<K, V> + ?Sized,
{
  for (k, v) in entries {
    engine.insert(k, v, timeout_ms)?;
  }
  Ok(())
}

/// Builds an engine behind the common interface.
pub fn new_engine<K, V>(
  kind: EngineKind,
  config: Config,
  clock: Arc<dyn Clock>,
) -> Box<dyn FlowEngine<K, V>>
where
  K: Hash + Eq + Clone + Send + Sync + 'static,
  V: Clone + Send + Sync + 'static,
{
  match kind {
    EngineKind::DashMap => Box::new(DashMapEngine::with_clock(config, clock)),
    EngineKind::Wheel => Box::new(WheelEngine::with_clock(config, clock)),
  }
}

/// The hasher both engines use: foldhash, randomly seeded per table.
pub(crate) type HashState = foldhash::fast::RandomState;

#[inline]
pub(crate) fn hash_of<K: Hash>(state: &HashState, key: &K) -> u64 {
  state.hash_one(key)
}

/// `deadline <= now`, with the deadline saturating at `u64::MAX` (a timeout
/// of `u64::MAX` never expires unless `now == u64::MAX`).
#[inline]
pub(crate) fn is_expired(last_seen: u64, timeout: u64, now: u64) -> bool {
  last_seen.saturating_add(timeout) <= now
}

/// Re-arm budget of one `expire(now, max)` call.
#[inline]
pub(crate) fn rearm_budget(max: usize) -> usize {
  max.saturating_mul(4).saturating_add(64)
}

/// glibc-style size of a heap block holding `n` bytes (8-byte header,
/// 16-byte granularity, 32-byte minimum); an estimate for `memory_bytes`.
#[inline]
pub(crate) fn malloc_size(n: usize) -> usize {
  (n + 8).next_multiple_of(16).max(32)
}
