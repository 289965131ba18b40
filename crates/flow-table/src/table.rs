//! [`FlowTable`]: an engine together with the clock it was made with, the
//! object a long-lived caller keeps (and may share between threads with
//! [`shared_table`](crate::shared_table)).

use std::fmt;
use std::sync::Arc;

use crate::options::MAX_CLOCK_MS;
use crate::{new_engine, Clock, ClockKind, FlowEngine, ManualClock, MonotonicClock, TableOptions};

/// An engine built from [`TableOptions`], with a handle on its clock when
/// the clock is manual.
pub struct FlowTable<K, V> {
  engine: Box<dyn FlowEngine<K, V>>,
  manual: Option<Arc<ManualClock>>,
}

/// Why [`FlowTable::advance_time`] did not move the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvanceError {
  /// The table's clock is not [`ClockKind::Manual`].
  NotManual,
  /// The step is not a number from 0 to [`MAX_CLOCK_MS`].
  OutOfRange,
  /// The step would move the clock past [`MAX_CLOCK_MS`].
  PastMax,
}

impl fmt::Display for AdvanceError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(match self {
      AdvanceError::NotManual => "the table's clock is not manual",
      AdvanceError::OutOfRange => "the step is not a number from 0 to 2^53 ms",
      AdvanceError::PastMax => "the step would move the clock past 2^53 ms",
    })
  }
}

impl std::error::Error for AdvanceError {}

impl<K, V> FlowTable<K, V>
where
  K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
  V: Clone + Send + Sync + 'static,
{
  /// A table made from `options` (a manual clock starts at 0).
  pub fn new(options: &TableOptions) -> Self {
    let (clock, manual): (Arc<dyn Clock>, _) = match options.clock {
      ClockKind::Monotonic => (Arc::new(MonotonicClock::new()), None),
      ClockKind::Manual => {
        let m = Arc::new(ManualClock::new(0));
        (m.clone(), Some(m))
      }
    };
    Self {
      engine: new_engine(options.engine, options.config.clone(), clock),
      manual,
    }
  }
}

impl<K, V> FlowTable<K, V> {
  /// The engine.
  #[inline]
  pub fn engine(&self) -> &(dyn FlowEngine<K, V> + 'static) {
    &*self.engine
  }

  /// Whether the table was made with [`ClockKind::Manual`].
  pub fn has_manual_clock(&self) -> bool {
    self.manual.is_some()
  }

  /// Moves a manual clock forward by `ms` milliseconds (a fraction is
  /// dropped) and returns the new time. The clock stays within
  /// [`MAX_CLOCK_MS`], so a deadline (a reading plus a timeout of at most
  /// [`MAX_TIMEOUT_MS`](crate::options::MAX_TIMEOUT_MS)) never wraps: a step that is
  /// NaN, negative or above 2^53, or that (rounded up) would pass 2^53,
  /// fails and leaves the clock where it was. The sum is checked in
  /// doubles, as a JavaScript caller's numbers are, so a step that lands on
  /// exactly 2^53 + 1 (which rounds to 2^53) is let through.
  pub fn advance_time(&self, ms: f64) -> Result<u64, AdvanceError> {
    let Some(clock) = &self.manual else {
      return Err(AdvanceError::NotManual);
    };
    let max = MAX_CLOCK_MS as f64;
    if !(0.0..=max).contains(&ms) {
      return Err(AdvanceError::OutOfRange);
    }
    if clock.now() as f64 + ms.ceil() > max {
      return Err(AdvanceError::PastMax);
    }
    Ok(clock.advance(ms as u64))
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::{Config, EngineKind, Full};

  fn manual(engine: EngineKind) -> FlowTable<u32, u32> {
    FlowTable::new(&TableOptions {
      engine,
      clock: ClockKind::Manual,
      ..TableOptions::new(100)
    })
  }

  #[test]
  fn builds_the_engine_and_clock_asked_for() {
    for engine in [EngineKind::Wheel, EngineKind::DashMap] {
      let t = manual(engine);
      assert!(t.has_manual_clock());
      assert_eq!(t.engine().now(), 0);
      t.engine().insert(1, 10, None).unwrap();
      assert_eq!(t.advance_time(99.0), Ok(99));
      assert_eq!(t.engine().get(&1), Some(10));
      assert_eq!(t.advance_time(1.0), Ok(100));
      assert_eq!(t.engine().get(&1), None, "{engine:?}: idle for the timeout");
    }
    let t: FlowTable<u32, u32> = FlowTable::new(&TableOptions::new(100));
    assert!(!t.has_manual_clock());
    assert_eq!(t.advance_time(1.0), Err(AdvanceError::NotManual));
  }

  #[test]
  fn capacity_and_policy_reach_the_engine() {
    let t: FlowTable<u32, u32> = FlowTable::new(&TableOptions {
      config: Config::new(100).with_capacity(1, Full::Refuse),
      ..TableOptions::new(100)
    });
    t.engine().insert(1, 1, None).unwrap();
    assert!(t.engine().insert(2, 2, None).is_err());
  }

  #[test]
  fn the_manual_clock_stays_within_2_pow_53() {
    let t = manual(EngineKind::Wheel);
    assert_eq!(t.advance_time(0.0), Ok(0));
    assert_eq!(t.advance_time(2.5), Ok(2), "a fraction is dropped");
    for bad in [-1.0, f64::NAN, 2f64.powi(54), f64::INFINITY] {
      assert_eq!(t.advance_time(bad), Err(AdvanceError::OutOfRange), "{bad}");
    }
    // The check is done in doubles, where 2^53 + 1 rounds to 2^53: a step
    // landing exactly there is not caught. The steps below avoid it.
    assert_eq!(t.advance_time(2f64.powi(53) - 12.0), Ok(MAX_CLOCK_MS - 10));
    assert_eq!(t.advance_time(12.0), Err(AdvanceError::PastMax));
    // Rounded up for the check: 11.5 counts as 12.
    assert_eq!(t.advance_time(11.5), Err(AdvanceError::PastMax));
    assert_eq!(t.engine().now(), MAX_CLOCK_MS - 10, "a refused step");
    assert_eq!(t.advance_time(10.0), Ok(MAX_CLOCK_MS));
    assert_eq!(t.advance_time(2.0), Err(AdvanceError::PastMax));
    assert_eq!(t.advance_time(0.0), Ok(MAX_CLOCK_MS));
    assert_eq!(t.engine().now(), MAX_CLOCK_MS);
  }
}
