//! Injectable millisecond clocks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A source of time in milliseconds.
///
/// The engines read the clock once per call (`insert`, `get`, `touch`, ...)
/// and compare `last_seen + timeout` against it. It should be monotonic; see
/// the crate documentation ("Clock jumps") for what happens when it is not.
pub trait Clock: Send + Sync {
  /// The current time in milliseconds.
  fn now(&self) -> u64;
}

/// The default clock: milliseconds elapsed since the clock was created,
/// from [`Instant`] (monotonic, so it never jumps backwards).
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
  start: Instant,
}

impl MonotonicClock {
  /// A clock that reads 0 now.
  pub fn new() -> Self {
    Self {
      start: Instant::now(),
    }
  }
}

impl Default for MonotonicClock {
  fn default() -> Self {
    Self::new()
  }
}

impl Clock for MonotonicClock {
  #[inline]
  fn now(&self) -> u64 {
    // u128 -> u64: 2^64 ms is 584 million years.
    self.start.elapsed().as_millis() as u64
  }
}

/// A clock that only moves when told to; for tests and benchmarks.
#[derive(Debug, Default)]
pub struct ManualClock {
  now: AtomicU64,
}

impl ManualClock {
  /// A clock that reads `start`.
  pub fn new(start: u64) -> Self {
    Self {
      now: AtomicU64::new(start),
    }
  }

  /// Moves the clock forward by `ms` and returns the new time.
  pub fn advance(&self, ms: u64) -> u64 {
    self.now.fetch_add(ms, Ordering::SeqCst) + ms
  }

  /// Sets the clock (it may go backwards, to test clock jumps).
  pub fn set(&self, ms: u64) {
    self.now.store(ms, Ordering::SeqCst);
  }
}

impl Clock for ManualClock {
  #[inline]
  fn now(&self) -> u64 {
    self.now.load(Ordering::SeqCst)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn manual_clock_moves_only_when_told() {
    let c = ManualClock::new(5);
    assert_eq!(c.now(), 5);
    assert_eq!(c.advance(10), 15);
    c.set(3);
    assert_eq!(c.now(), 3);
  }

  #[test]
  fn monotonic_clock_starts_near_zero_and_does_not_go_back() {
    let c = MonotonicClock::new();
    let a = c.now();
    let b = c.now();
    assert!(a < 1000 && b >= a);
  }
}
