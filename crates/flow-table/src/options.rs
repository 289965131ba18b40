//! What a table is made from ([`TableOptions`]), with the defaults and the
//! bounds of the numbers and names a caller takes from its users. The
//! JavaScript binding reads its options into these types and checks them
//! here, so the rules live in one place: an absent option keeps the
//! default of [`TableOptions::new`], a name goes through `FromStr`, and a
//! number through [`timeout_ms`] or [`capacity`].

use std::fmt;
use std::str::FromStr;

use crate::{Config, EngineKind, Full};

/// The longest idle timeout a caller may give, in ms: 2^53 (about 285,000
/// years), the largest integer a double holds exactly. With clock readings
/// bounded the same way ([`MAX_CLOCK_MS`]), a deadline (`last_seen +
/// timeout`) stays far from wrapping.
pub const MAX_TIMEOUT_MS: u64 = 1 << 53;

/// The latest reading a [`ManualClock`](crate::ManualClock) of a
/// [`FlowTable`](crate::FlowTable) may be moved to, in ms: 2^53 (see
/// [`FlowTable::advance_time`](crate::FlowTable::advance_time)).
pub const MAX_CLOCK_MS: u64 = 1 << 53;

/// The largest capacity a caller may give: 2^32 entries.
pub const MAX_CAPACITY: u64 = 1 << 32;

/// Which clock a table reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockKind {
  /// [`MonotonicClock`](crate::MonotonicClock): real time, from 0 when the
  /// table is made.
  #[default]
  Monotonic,
  /// [`ManualClock`](crate::ManualClock) starting at 0: time moves only
  /// through [`FlowTable::advance_time`](crate::FlowTable::advance_time)
  /// (tests, simulations).
  Manual,
}

/// Everything a [`FlowTable`](crate::FlowTable) is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
  /// Timeout, capacity, policy when full and shards.
  pub config: Config,
  /// The engine; [`EngineKind::Wheel`] by default.
  pub engine: EngineKind,
  /// The clock; [`ClockKind::Monotonic`] by default.
  pub clock: ClockKind,
}

impl TableOptions {
  /// The defaults, with `timeout_ms` as the idle timeout: unbounded
  /// ([`Config::new`]), the wheel engine, the monotonic clock.
  pub fn new(timeout_ms: u64) -> Self {
    Self {
      config: Config::new(timeout_ms),
      engine: EngineKind::default(),
      clock: ClockKind::default(),
    }
  }
}

/// An idle timeout given in milliseconds, possibly fractional: rounded up
/// to whole milliseconds. `None` unless `0 < ms <= MAX_TIMEOUT_MS` (so also
/// for NaN).
pub fn timeout_ms(ms: f64) -> Option<u64> {
  if ms.is_nan() || ms <= 0.0 || ms > MAX_TIMEOUT_MS as f64 {
    return None;
  }
  Some(ms.ceil() as u64)
}

/// A capacity given as a number: `Some` for an integer from 1 to
/// [`MAX_CAPACITY`]. (A [`Config`] may hold a capacity of 0, which refuses
/// every insert; callers are not offered it.)
pub fn capacity(n: f64) -> Option<usize> {
  (n >= 1.0 && n.fract() == 0.0 && n <= MAX_CAPACITY as f64).then_some(n as usize)
}

/// A name that is none of an option's values (from `FromStr` on
/// [`EngineKind`], [`Full`] and [`ClockKind`]). Displayed as
/// `must be 'a' or 'b', got 'c'`, to follow the option's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
  /// The name given.
  pub got: String,
  /// The names accepted.
  pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownName {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("must be ")?;
    for (i, name) in self.expected.iter().enumerate() {
      if i > 0 {
        f.write_str(if i + 1 == self.expected.len() {
          " or "
        } else {
          ", "
        })?;
      }
      write!(f, "'{name}'")?;
    }
    write!(f, ", got '{}'", self.got)
  }
}

impl std::error::Error for UnknownName {}

/// Looks `s` up in `names` (parallel to `values`).
fn by_name<T: Copy>(
  s: &str,
  names: &'static [&'static str],
  values: &[T],
) -> Result<T, UnknownName> {
  names
    .iter()
    .position(|n| *n == s)
    .map(|i| values[i])
    .ok_or_else(|| UnknownName {
      got: s.to_owned(),
      expected: names,
    })
}

impl EngineKind {
  /// The engines' names: `wheel`, `dashmap`.
  pub const NAMES: &'static [&'static str] = &["wheel", "dashmap"];
}

impl FromStr for EngineKind {
  type Err = UnknownName;

  /// `wheel` or `dashmap`.
  fn from_str(s: &str) -> Result<Self, Self::Err> {
    by_name(s, Self::NAMES, &[EngineKind::Wheel, EngineKind::DashMap])
  }
}

impl Full {
  /// The policies' names: `evict`, `refuse`.
  pub const NAMES: &'static [&'static str] = &["evict", "refuse"];
}

impl FromStr for Full {
  type Err = UnknownName;

  /// `evict` ([`Full::EvictLongestIdle`]) or `refuse`.
  fn from_str(s: &str) -> Result<Self, Self::Err> {
    by_name(s, Self::NAMES, &[Full::EvictLongestIdle, Full::Refuse])
  }
}

impl ClockKind {
  /// The clocks' names: `monotonic`, `manual`.
  pub const NAMES: &'static [&'static str] = &["monotonic", "manual"];
}

impl FromStr for ClockKind {
  type Err = UnknownName;

  /// `monotonic` or `manual`.
  fn from_str(s: &str) -> Result<Self, Self::Err> {
    by_name(s, Self::NAMES, &[ClockKind::Monotonic, ClockKind::Manual])
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn defaults() {
    let o = TableOptions::new(250);
    assert_eq!(o.config, Config::new(250));
    assert_eq!(o.config.capacity, None);
    assert_eq!(o.config.when_full, Full::EvictLongestIdle);
    assert_eq!(o.engine, EngineKind::Wheel);
    assert_eq!(o.clock, ClockKind::Monotonic);
  }

  #[test]
  fn timeouts_are_positive_rounded_up_and_at_most_2_pow_53() {
    assert_eq!(timeout_ms(1.0), Some(1));
    assert_eq!(timeout_ms(0.25), Some(1));
    assert_eq!(timeout_ms(99.5), Some(100));
    assert_eq!(timeout_ms(2f64.powi(53)), Some(MAX_TIMEOUT_MS));
    for bad in [
      0.0,
      -0.0,
      -1.0,
      f64::NAN,
      2f64.powi(53) * 2.0,
      f64::INFINITY,
    ] {
      assert_eq!(timeout_ms(bad), None, "{bad}");
    }
  }

  #[test]
  fn capacities_are_integers_from_1_to_2_pow_32() {
    assert_eq!(capacity(1.0), Some(1));
    assert_eq!(capacity(1e6), Some(1_000_000));
    assert_eq!(capacity(2f64.powi(32)), Some(1 << 32));
    for bad in [0.0, -1.0, 1.5, f64::NAN, f64::INFINITY, 2f64.powi(32) + 1.0] {
      assert_eq!(capacity(bad), None, "{bad}");
    }
  }

  #[test]
  fn names_parse_and_unknown_ones_say_what_is_accepted() {
    assert_eq!("wheel".parse(), Ok(EngineKind::Wheel));
    assert_eq!("dashmap".parse(), Ok(EngineKind::DashMap));
    assert_eq!("evict".parse(), Ok(Full::EvictLongestIdle));
    assert_eq!("refuse".parse(), Ok(Full::Refuse));
    assert_eq!("monotonic".parse(), Ok(ClockKind::Monotonic));
    assert_eq!("manual".parse(), Ok(ClockKind::Manual));
    let e = "btree".parse::<EngineKind>().unwrap_err();
    assert_eq!(e.to_string(), "must be 'wheel' or 'dashmap', got 'btree'");
    let e = "Evict".parse::<Full>().unwrap_err();
    assert_eq!(e.to_string(), "must be 'evict' or 'refuse', got 'Evict'");
    let e = "".parse::<ClockKind>().unwrap_err();
    assert_eq!(e.to_string(), "must be 'monotonic' or 'manual', got ''");
    let three = UnknownName {
      got: "d".into(),
      expected: &["a", "b", "c"],
    };
    assert_eq!(three.to_string(), "must be 'a', 'b' or 'c', got 'd'");
  }
}
