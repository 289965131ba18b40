//! Where a [`TimedLru`](super::TimedLru) reads the time, and the rules for
//! moving a manual clock.

use core::fmt;

/// The largest time a manual clock may be moved or set to, in ms (2^53, the
/// largest integer an `f64` represents exactly, so a manual clock's readings
/// stay exact when every step is a whole number of ms).
pub const MAX_TIME: f64 = 9_007_199_254_740_992.0;

/// A source of time in milliseconds for a [`TimedLru`](super::TimedLru).
///
/// The cache reads its clock for the default insert timestamp, to compute a
/// deadline (`now + ttl`), and to decide whether an entry that has a deadline
/// has expired (`expires_at <= now`). An entry without a deadline never makes
/// it read the clock.
///
/// [`Clock::default`] is [`Clock::System`] with feature `std`, and a manual
/// clock at 0 without it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clock {
  /// The system's wall clock: whole milliseconds since the Unix epoch, like
  /// JavaScript's `Date.now()` (0 if the system clock is before 1970).
  /// Feature `std`.
  #[cfg(feature = "std")]
  System,
  /// A clock that reads the time it holds (ms) and moves only through
  /// [`Clock::advance`] and [`Clock::set`] (or the cache's
  /// [`advance_time`](super::TimedLru::advance_time) /
  /// [`set_time`](super::TimedLru::set_time)). For tests and simulations, and
  /// without `std` for a caller that brings its own time source: set the
  /// clock to the caller's `now` before the calls that read it.
  Manual(f64),
}

// Not derivable in both feature sets: the default depends on `std`.
#[allow(clippy::derivable_impls)]
impl Default for Clock {
  fn default() -> Self {
    #[cfg(feature = "std")]
    {
      Clock::System
    }
    #[cfg(not(feature = "std"))]
    {
      Clock::Manual(0.0)
    }
  }
}

/// Why a clock was not moved. The clock is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockError {
  /// Only a [`Clock::Manual`] can be moved.
  NotManual,
  /// A step that is negative, NaN or above [`MAX_TIME`], or a time that is
  /// NaN or beyond ±[`MAX_TIME`].
  OutOfRange,
  /// The step would move the clock past [`MAX_TIME`].
  PastMax,
}

impl fmt::Display for ClockError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(match self {
      ClockError::NotManual => "only a manual clock can be moved",
      ClockError::OutOfRange => "the step or time is out of range",
      ClockError::PastMax => "the clock would move past 2^53 ms",
    })
  }
}

impl core::error::Error for ClockError {}

impl Clock {
  /// The current time in ms.
  #[inline]
  pub fn now(&self) -> f64 {
    match *self {
      #[cfg(feature = "std")]
      Clock::System => system_now(),
      Clock::Manual(t) => t,
    }
  }

  /// The time a manual clock holds.
  fn manual_mut(&mut self) -> Result<&mut f64, ClockError> {
    match self {
      #[cfg(feature = "std")]
      Clock::System => Err(ClockError::NotManual),
      Clock::Manual(t) => Ok(t),
    }
  }

  /// True for [`Clock::Manual`].
  pub fn is_manual(&self) -> bool {
    matches!(self, Clock::Manual(_))
  }

  /// Moves a manual clock forward by `ms` (from 0 to [`MAX_TIME`], fractions
  /// allowed) and returns the new time. The clock never moves past
  /// [`MAX_TIME`] and never backwards through this call.
  pub fn advance(&mut self, ms: f64) -> Result<f64, ClockError> {
    let t = self.manual_mut()?;
    if !(0.0..=MAX_TIME).contains(&ms) {
      return Err(ClockError::OutOfRange);
    }
    // Compared before adding: `t + ms` rounds, and could round down to
    // MAX_TIME itself.
    if ms > MAX_TIME - *t {
      return Err(ClockError::PastMax);
    }
    *t += ms;
    Ok(*t)
  }

  /// Sets a manual clock to `t` (within ±[`MAX_TIME`]). It may go backwards:
  /// an entry that had expired but was not reclaimed yet is then live again.
  pub fn set(&mut self, t: f64) -> Result<(), ClockError> {
    let now = self.manual_mut()?;
    if !(-MAX_TIME..=MAX_TIME).contains(&t) {
      return Err(ClockError::OutOfRange);
    }
    *now = t;
    Ok(())
  }
}

/// Whole milliseconds since the Unix epoch, like `Date.now()`.
#[cfg(feature = "std")]
fn system_now() -> f64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map_or(0.0, |d| d.as_millis() as f64)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn manual_clock_moves_only_when_told() {
    let mut c = Clock::Manual(5.0);
    assert!(c.is_manual());
    assert_eq!(c.now(), 5.0);
    assert_eq!(c.now(), 5.0, "reading does not move it");
    assert_eq!(c.advance(10.0), Ok(15.0));
    assert_eq!(c.advance(0.0), Ok(15.0));
    assert_eq!(c.advance(0.5), Ok(15.5), "fractions are kept");
    assert_eq!(c.now(), 15.5);
    c.set(3.0).unwrap();
    assert_eq!(c.now(), 3.0, "set may go backwards");
  }

  #[test]
  fn manual_clock_refuses_bad_steps_and_stays_put() {
    let mut c = Clock::Manual(100.0);
    for bad in [-1.0, -0.5, f64::NAN, f64::INFINITY, MAX_TIME + 2.0] {
      assert_eq!(c.advance(bad), Err(ClockError::OutOfRange), "{bad}");
    }
    assert_eq!(c.advance(MAX_TIME - 99.0), Err(ClockError::PastMax));
    assert_eq!(c.now(), 100.0);
    assert_eq!(
      c.advance(MAX_TIME - 100.0),
      Ok(MAX_TIME),
      "up to 2^53 exactly"
    );
    assert_eq!(c.advance(1.0), Err(ClockError::PastMax));
    for bad in [f64::NAN, f64::INFINITY, -f64::INFINITY, MAX_TIME * 2.0] {
      assert_eq!(c.set(bad), Err(ClockError::OutOfRange), "{bad}");
    }
    assert_eq!(c.now(), MAX_TIME);
    c.set(-MAX_TIME).unwrap();
    assert_eq!(c.now(), -MAX_TIME);
  }

  #[cfg(feature = "std")]
  #[test]
  fn system_clock_reads_whole_ms_of_wall_time_and_cannot_be_moved() {
    let before = std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .unwrap()
      .as_millis() as f64;
    let mut c = Clock::System;
    let t = c.now();
    let after = std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .unwrap()
      .as_millis() as f64;
    assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
    assert_eq!(t.fract(), 0.0);
    assert!(!c.is_manual());
    assert_eq!(c.advance(1.0), Err(ClockError::NotManual));
    assert_eq!(c.set(1.0), Err(ClockError::NotManual));
    assert_eq!(Clock::default(), Clock::System);
  }

  #[cfg(not(feature = "std"))]
  #[test]
  fn without_std_the_default_clock_is_manual_at_zero() {
    assert_eq!(Clock::default(), Clock::Manual(0.0));
  }
}
