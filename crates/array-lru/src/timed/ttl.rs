//! The rules that turn a write's options into an entry's timestamp and
//! deadline: TTLs, their defaults, and valid timestamps.

use core::fmt;

/// How long after it is written an entry expires: a positive number of ms,
/// or never.
///
/// Made by [`Ttl::from_ms`], which owns the rules: `0` and `+∞` mean never,
/// negative or NaN is refused. An entry written at `now` with a TTL of `ms`
/// has the deadline `now + ms` on its cache's clock and expires when the
/// clock reaches it (`now >= deadline`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ttl(f64);

impl Ttl {
  /// Never expires.
  pub const NEVER: Ttl = Ttl(f64::INFINITY);

  /// A TTL of `ms` milliseconds: `0` (either sign) and `+∞` are
  /// [`Ttl::NEVER`], fractions are kept, a negative number or NaN is an
  /// error.
  pub fn from_ms(ms: f64) -> Result<Ttl, InvalidTtl> {
    if ms.is_nan() || ms < 0.0 {
      Err(InvalidTtl)
    } else if ms == 0.0 {
      Ok(Ttl::NEVER)
    } else {
      Ok(Ttl(ms))
    }
  }

  /// The TTL in ms, or `None` for [`Ttl::NEVER`].
  pub fn ms(self) -> Option<f64> {
    (self.0 != f64::INFINITY).then_some(self.0)
  }

  /// True for [`Ttl::NEVER`].
  pub fn is_never(self) -> bool {
    self.0 == f64::INFINITY
  }

  /// The deadline of an entry written at `now`: `now + ms`, or `f64::INFINITY`
  /// for [`Ttl::NEVER`].
  pub fn deadline(self, now: f64) -> f64 {
    if self.is_never() {
      f64::INFINITY
    } else {
      now + self.0
    }
  }
}

impl Default for Ttl {
  /// [`Ttl::NEVER`].
  fn default() -> Self {
    Ttl::NEVER
  }
}

/// A TTL that is negative or NaN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTtl;

impl fmt::Display for InvalidTtl {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("ttl must be a non-negative number of milliseconds")
  }
}

impl core::error::Error for InvalidTtl {}

/// An insert timestamp that is not finite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTimestamp;

impl fmt::Display for InvalidTimestamp {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("timestamp must be a finite number")
  }
}

impl core::error::Error for InvalidTimestamp {}

/// `t` if it may be an insert timestamp (any finite number), else an error.
/// Check timestamps with this before passing them in [`SetOptions`].
pub fn check_timestamp(t: f64) -> Result<f64, InvalidTimestamp> {
  if t.is_finite() {
    Ok(t)
  } else {
    Err(InvalidTimestamp)
  }
}

/// How [`TimedLru::insert`](super::TimedLru::insert) stamps an entry.
/// `SetOptions::default()` takes both from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SetOptions {
  /// The insert timestamp to record (see [`check_timestamp`]); `None`: the
  /// cache's clock at the insert.
  pub timestamp: Option<f64>,
  /// The entry's TTL; `None`: the cache's default TTL. The deadline is
  /// computed on the cache's clock, whatever the timestamp.
  pub ttl: Option<Ttl>,
}

impl SetOptions {
  /// The entry's `(timestamp, deadline)` for a write at the time `now()`
  /// with the cache's `default_ttl`. `now` is called at most once, and not
  /// at all when a timestamp is given and the TTL is never.
  pub fn stamp(self, default_ttl: Ttl, now: impl FnOnce() -> f64) -> (f64, f64) {
    let ttl = self.ttl.unwrap_or(default_ttl);
    match (self.timestamp, ttl.is_never()) {
      (Some(t), true) => (t, f64::INFINITY),
      (t, _) => {
        let now = now();
        (t.unwrap_or(now), ttl.deadline(now))
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn ttl_rules() {
    assert_eq!(Ttl::from_ms(0.0), Ok(Ttl::NEVER));
    assert_eq!(Ttl::from_ms(-0.0), Ok(Ttl::NEVER));
    assert_eq!(Ttl::from_ms(f64::INFINITY), Ok(Ttl::NEVER));
    assert_eq!(Ttl::from_ms(-1.0), Err(InvalidTtl));
    assert_eq!(Ttl::from_ms(-f64::INFINITY), Err(InvalidTtl));
    assert_eq!(Ttl::from_ms(f64::NAN), Err(InvalidTtl));
    let t = Ttl::from_ms(2.5).unwrap();
    assert_eq!((t.ms(), t.is_never()), (Some(2.5), false));
    assert_eq!((Ttl::NEVER.ms(), Ttl::NEVER.is_never()), (None, true));
    assert_eq!(Ttl::default(), Ttl::NEVER);
    assert_eq!(t.deadline(100.0), 102.5);
    assert_eq!(Ttl::NEVER.deadline(100.0), f64::INFINITY);
  }

  #[test]
  fn timestamps_must_be_finite() {
    assert_eq!(check_timestamp(-5.5), Ok(-5.5));
    assert_eq!(check_timestamp(0.0), Ok(0.0));
    for bad in [f64::NAN, f64::INFINITY, -f64::INFINITY] {
      assert_eq!(check_timestamp(bad), Err(InvalidTimestamp));
    }
  }

  #[test]
  fn stamp_takes_defaults_from_the_cache_and_reads_the_clock_only_when_needed() {
    let ten = Ttl::from_ms(10.0).unwrap();
    let unread = || -> f64 { panic!("the clock must not be read") };
    let at_7 = || 7.0;
    // Everything from the cache.
    assert_eq!(
      SetOptions::default().stamp(Ttl::NEVER, at_7),
      (7.0, f64::INFINITY)
    );
    assert_eq!(SetOptions::default().stamp(ten, at_7), (7.0, 17.0));
    // A given timestamp does not move the deadline, which runs on the clock.
    let stamped = SetOptions {
      timestamp: Some(1000.0),
      ttl: None,
    };
    assert_eq!(stamped.stamp(ten, at_7), (1000.0, 17.0));
    assert_eq!(stamped.stamp(Ttl::NEVER, unread), (1000.0, f64::INFINITY));
    // A per-write TTL overrides the default, both ways.
    let never = SetOptions {
      timestamp: Some(3.0),
      ttl: Some(Ttl::NEVER),
    };
    assert_eq!(never.stamp(ten, unread), (3.0, f64::INFINITY));
    let short = SetOptions {
      timestamp: None,
      ttl: Some(Ttl::from_ms(1.0).unwrap()),
    };
    assert_eq!(short.stamp(Ttl::NEVER, at_7), (7.0, 8.0));
  }
}
