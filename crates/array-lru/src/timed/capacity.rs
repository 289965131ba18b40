//! Capacities of a [`TimedLru`](super::TimedLru), and why a table could not
//! be had.

use super::Stamped;

/// How many entries a [`TimedLru`](super::TimedLru) may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
  /// At most this many entries (≥ 1); all memory is allocated up front.
  Bounded(usize),
  /// No limit; grows by doubling and is pruned by `pop_lru`/`remove`.
  Unbounded,
}

/// Capacity given to [`TimedLru::new`](super::TimedLru::new) is 0 or larger than the index type allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCapacity;

/// Why [`TimedLru::try_new`](super::TimedLru::try_new) or [`TimedLru::try_insert`](super::TimedLru::try_insert) failed. Nothing was
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
pub(super) const UNBOUNDED_INITIAL: usize = 64;

/// `cap` entry slots' bytes, saturating (the table's size without padding).
pub(super) fn saturating_bytes<K, V>(cap: usize) -> usize {
  cap.saturating_mul(crate::bytes_per_entry::<K, Stamped<V>, u32>())
}

/// A table of `cap` entries could not be had: the index type cannot hold it
/// (not reached: capacities are checked first) or the allocation failed.
pub(super) fn oom<K, V>(cap: usize, e: crate::CapacityError) -> TimedLruError {
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

/// The initial table size and whether the cache grows.
pub(super) fn initial(capacity: Capacity) -> Result<(usize, bool), InvalidCapacity> {
  match capacity {
    Capacity::Bounded(n) if (1..=MAX_CAPACITY).contains(&n) => Ok((n, false)),
    Capacity::Bounded(_) => Err(InvalidCapacity),
    Capacity::Unbounded => Ok((UNBOUNDED_INITIAL, true)),
  }
}
