//! The options a map is created with, and what it reports: [`Options`],
//! [`Stats`], [`Report`] and [`required_memory_size`].

use std::time::Duration;

use crate::error::Error;
use crate::layout::*;
use crate::lock;
use crate::SharedMap;

/// Creation options. Only [`SharedMap::create`] (and the creating branch of
/// [`SharedMap::open_or_create`]) reads them; an opened map has the options
/// it was created with ([`SharedMap::options`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
  /// Most entries (optional). Without `memory_size`, the map is sized for
  /// this many entries of `avg_key_bytes` + `avg_value_bytes`. Enforced per
  /// shard (`ceil(capacity / shards)` each), so a map may evict or report
  /// `EFULL` slightly before `capacity` entries when keys hash unevenly.
  pub capacity: Option<u32>,
  /// The segment's size in bytes (the memory budget). Without `capacity`,
  /// the index is sized for entries of the average sizes that fill it.
  pub memory_size: Option<u64>,
  /// Average key and value sizes the map is sized for (defaults 32 and 256
  /// bytes). They reserve nothing per entry; they only split the memory
  /// between the index and the entries.
  pub avg_key_bytes: u32,
  pub avg_value_bytes: u32,
  /// Longest key in bytes (default 256, at most 65535). A limit only.
  pub max_key_bytes: u32,
  /// Longest string/bytes/json value in bytes (default 1 MiB, at most 64
  /// MiB). A limit only: an entry takes the bytes it needs. An entry must
  /// also fit in half of its shard's ring.
  pub max_value_bytes: u32,
  pub eviction: Eviction,
  /// TTL applied by writes that pass `ttl_ms: None`; 0 = no expiry.
  pub default_ttl_ms: u64,
  /// Permission bits of the segment (default 0o600; must include 0o600).
  /// Linux/FreeBSD: applied with `fchmod`. macOS: only 0o600 is possible
  /// (no `fchmod` for POSIX shared memory; other modes fail with `EINVAL`).
  /// Windows: ignored (the mapping's backing file gets default security).
  pub mode: u32,
  /// Shard count (a power of two ≤ capacity and ≤ 1024); `None` picks
  /// `max(16, next_power_of_two(2 × cpus))` capped at 64 and at capacity.
  pub shards: Option<u32>,
  /// How long an operation of this handle waits for a shard lock held by
  /// another process before `ETIMEDOUT` (default 5 s), measured on the
  /// monotonic clock over the whole wait. Also bounds how long `open` waits
  /// for a live creator to finish. A holder that died is detected sooner.
  /// Per handle: read by `create`, `open_with` and `open_or_create`.
  pub lock_timeout: Duration,
  /// The hash seed of a new map; `None` (the default) draws a random one.
  /// Tests that need the same layout decisions run after run fix it.
  #[doc(hidden)]
  pub hash_seed: Option<u64>,
}

impl Options {
  /// Defaults with the given capacity.
  pub fn new(capacity: u32) -> Self {
    Options {
      capacity: Some(capacity),
      ..Options::default()
    }
  }
}

impl Default for Options {
  fn default() -> Self {
    Options {
      capacity: None,
      memory_size: None,
      avg_key_bytes: DEFAULT_AVG_KEY_BYTES,
      avg_value_bytes: DEFAULT_AVG_VALUE_BYTES,
      max_key_bytes: DEFAULT_MAX_KEY_BYTES,
      max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
      eviction: Eviction::Lru,
      default_ttl_ms: 0,
      mode: 0o600,
      shards: None,
      lock_timeout: lock::DEFAULT_TIMEOUT,
      hash_seed: None,
    }
  }
}

/// Counters and sizes. Counters are totals over all processes since the map
/// was created (hits and misses may lag by the operations in flight).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
  /// Entries stored (expired entries not yet reclaimed included).
  pub size: u64,
  /// Most entries the index holds (`cap per shard × shards`).
  pub capacity: u64,
  /// Size of the shared segment.
  pub memory_bytes: u64,
  /// Bytes of the shards' rings (where entries are stored).
  pub ring_bytes: u64,
  /// Key + value bytes of the stored entries (the payload).
  pub allocated_bytes: u64,
  /// Ring bytes in use: live records (headers and padding included) and
  /// the garbage of deleted and replaced entries not yet reclaimed.
  pub used_bytes: u64,
  /// Ring bytes of live records.
  pub live_record_bytes: u64,
  /// Ring bytes free (`ring_bytes − used_bytes`).
  pub free_bytes: u64,
  pub hits: u64,
  pub misses: u64,
  pub sets: u64,
  pub deletes: u64,
  /// Evictions of every reason (`room + capacity + manual`).
  pub evictions: u64,
  /// Entries evicted to make room in the ring.
  pub evictions_room: u64,
  /// Entries evicted because their shard indexed its most entries.
  pub evictions_capacity: u64,
  /// Entries evicted by `evict_older_than`.
  pub evictions_manual: u64,
  /// Expired entries reclaimed.
  pub expirations: u64,
  /// Live entries moved from a ring's tail to its head (second chances).
  pub moves: u64,
  /// Times a lock was found held by a dead process (each such death is
  /// counted once, then its shard repaired).
  pub lock_recoveries: u64,
  /// Completed shard rebuilds (after lock recoveries, and for damage found
  /// by an operation). A recoverer killed during its own repair counts a
  /// recovery but no repair, so this can be below `lock_recoveries`.
  pub repairs: u64,
  pub shards: u64,
}

/// Result of [`SharedMap::verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
  pub ok: bool,
  pub problems: Vec<String>,
}

/// Memory a map created with `opts` takes, in bytes (the segment size
/// `create` allocates: `memory_size` rounded down to whole index cells and
/// ring bytes, or what `capacity` entries of the average sizes need).
pub fn required_memory_size(opts: &Options) -> Result<u64, Error> {
  Ok(
    SharedMap::layout_for(&Options {
      hash_seed: Some(0),
      ..opts.clone()
    })?
    .total,
  )
}
