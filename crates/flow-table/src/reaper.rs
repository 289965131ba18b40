//! [`Reaper`]: one background thread that calls `expire` on a table at a
//! fixed interval and hands each non-empty batch to a sink — the "one timer
//! per table, never one per entry" that `onExpire` needs.
//!
//! Design:
//! * One thread per reaper, parked on a `Condvar` between ticks (no busy
//!   wait, no per-entry timers). A tick is one bounded `expire(now, batch)`;
//!   when a tick fills its batch, the next one runs at once (a backlog drains
//!   in `batch`-sized steps), otherwise the thread sleeps for `interval`.
//! * The sink decides whether to go on: returning `false` (for example
//!   because the receiving JavaScript environment is gone) ends the thread.
//!   Entries of the batch handed to a sink that fails are lost with it,
//!   exactly as if the table had been dropped.
//! * [`Reaper::wake`] runs a tick now (a manual clock moved forward);
//!   [`Reaper::stop`] (and `Drop`) ends the thread and joins it, so after it
//!   returns no sink call is running or will run.
//! * No lock of the table is held while the sink runs: `expire` returns owned
//!   entries first.
//! * [`ExpiryOptions`] holds the interval and the batch size, their defaults
//!   (derived from the table's idle timeout) and their bounds.

use std::ops::RangeInclusive;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Expired, FlowEngine};

/// How a table's background expiry runs: the [`Reaper`]'s interval and the
/// most entries one tick hands to the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryOptions {
  /// Time between ticks while nothing is pending; entries are reported at
  /// most about this late.
  pub interval: Duration,
  /// Most entries per tick, so per sink call; a larger backlog is handed
  /// over in several ticks that run at once, one after the other.
  pub batch: usize,
}

impl ExpiryOptions {
  /// The intervals (ms) a caller may ask for: 1 ms to 2^31 ms (24.9 days).
  pub const INTERVAL_MS: RangeInclusive<u64> = 1..=1 << 31;
  /// The batch sizes a caller may ask for: 1 to 2^32.
  pub const BATCH: RangeInclusive<u64> = 1..=1 << 32;
  /// The default batch size.
  pub const DEFAULT_BATCH: usize = 10_000;
  /// The default interval is a tenth of the idle timeout, within these
  /// bounds (ms): a short timeout is not reaped more often than every 10 ms,
  /// a long one at least every second.
  pub const DEFAULT_INTERVAL_MS: RangeInclusive<u64> = 10..=1000;

  /// The defaults for a table whose idle timeout is `timeout_ms` (any
  /// number; below 1, NaN included, counts as 1): interval `timeout / 10`
  /// within [`DEFAULT_INTERVAL_MS`](Self::DEFAULT_INTERVAL_MS), batch
  /// [`DEFAULT_BATCH`](Self::DEFAULT_BATCH).
  pub fn for_timeout(timeout_ms: f64) -> Self {
    let (lo, hi) = Self::DEFAULT_INTERVAL_MS.into_inner();
    let ms = (timeout_ms.max(1.0) / 10.0).clamp(lo as f64, hi as f64);
    Self {
      interval: Duration::from_secs_f64(ms / 1000.0),
      batch: Self::DEFAULT_BATCH,
    }
  }

  /// An interval given in milliseconds, possibly fractional: `None` unless
  /// within [`INTERVAL_MS`](Self::INTERVAL_MS).
  pub fn interval_ms(ms: f64) -> Option<Duration> {
    in_range(ms, &Self::INTERVAL_MS).then(|| Duration::from_secs_f64(ms / 1000.0))
  }

  /// A batch size given as a number (a fraction is dropped): `None` unless
  /// within [`BATCH`](Self::BATCH).
  pub fn batch(n: f64) -> Option<usize> {
    in_range(n, &Self::BATCH).then_some(n as usize)
  }
}

/// `range.start() <= v <= range.end()`, false for NaN.
fn in_range(v: f64, range: &RangeInclusive<u64>) -> bool {
  v >= *range.start() as f64 && v <= *range.end() as f64
}

#[derive(Default)]
struct Signal {
  stop: bool,
  wake: bool,
}

#[derive(Default)]
struct Shared {
  signal: Mutex<Signal>,
  cv: Condvar,
}

/// A running background expiry timer; see the module docs.
pub struct Reaper {
  shared: Arc<Shared>,
  thread: Option<JoinHandle<()>>,
}

/// What one tick found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
  /// Nothing more due now: sleep one interval.
  Idle,
  /// The batch was full: run again at once.
  More,
  /// The sink is gone: end the thread.
  Stop,
}

/// One tick for `engine`: expires up to `batch` entries as of the engine's
/// clock and hands them to `sink` (not called when nothing was due).
pub fn reap_once<K, V, E, S>(engine: &E, batch: usize, sink: &mut S) -> Tick
where
  E: FlowEngine<K, V> + ?Sized,
  S: FnMut(Vec<Expired<K, V>>) -> bool,
{
  let now = engine.now();
  let out = engine.expire(now, batch.max(1));
  if out.is_empty() {
    return Tick::Idle;
  }
  // `expire` bounds its queue work too, so a short batch does not mean
  // nothing else is due: `next_due` (a lower bound) says whether to go on
  // at once. Only after a batch that delivered something, so a bound that
  // stays at or before `now` (a coarse wheel bucket) cannot make it spin.
  let more = || engine.next_due().is_some_and(|d| d <= now);
  let full = out.len() >= batch.max(1);
  if !sink(out) {
    Tick::Stop
  } else if full || more() {
    Tick::More
  } else {
    Tick::Idle
  }
}

impl Reaper {
  /// Starts a thread that runs `tick` every `interval` (at once again while
  /// it returns [`Tick::More`]) until [`Tick::Stop`], [`Reaper::stop`] or
  /// drop.
  pub fn spawn<F>(interval: Duration, mut tick: F) -> std::io::Result<Self>
  where
    F: FnMut() -> Tick + Send + 'static,
  {
    let shared = Arc::new(Shared::default());
    let s = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
      .name("lrukit-flow-expiry".into())
      .spawn(move || {
        let mut next = Tick::Idle;
        loop {
          {
            let mut g = s.signal.lock().unwrap_or_else(PoisonError::into_inner);
            if next == Tick::Idle && !g.stop && !g.wake {
              g = s
                .cv
                .wait_timeout_while(g, interval, |g| !g.stop && !g.wake)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            }
            if g.stop {
              return;
            }
            g.wake = false;
          }
          next = tick();
          if next == Tick::Stop {
            return;
          }
        }
      })?;
    Ok(Self {
      shared,
      thread: Some(thread),
    })
  }

  /// Updates the signal under its lock and wakes the thread.
  fn signal(&self, f: impl FnOnce(&mut Signal)) {
    let mut g = self
      .shared
      .signal
      .lock()
      .unwrap_or_else(PoisonError::into_inner);
    f(&mut g);
    self.shared.cv.notify_all();
  }

  /// Runs a tick now instead of at the end of the current interval.
  pub fn wake(&self) {
    self.signal(|s| s.wake = true);
  }

  /// Ends the thread and waits for it: once this returns, the tick function
  /// is not running and never runs again. Idempotent.
  pub fn stop(&mut self) {
    self.signal(|s| s.stop = true);
    if let Some(t) = self.thread.take() {
      // Stopping from inside the tick itself would wait for ourselves.
      if t.thread().id() != std::thread::current().id() {
        let _ = t.join();
      }
    }
  }

  /// Whether the thread is still running (it ends on [`Tick::Stop`]).
  pub fn is_running(&self) -> bool {
    self.thread.as_ref().is_some_and(|t| !t.is_finished())
  }
}

impl Drop for Reaper {
  fn drop(&mut self) {
    self.stop();
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::{new_engine, Config, EngineKind, ManualClock};
  use std::sync::mpsc;
  use std::time::Instant;

  fn table(kind: EngineKind) -> (Arc<dyn FlowEngine<u32, u32>>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(0));
    let t: Arc<dyn FlowEngine<u32, u32>> = new_engine(kind, Config::new(100), clock.clone()).into();
    (t, clock)
  }

  #[test]
  fn delivers_every_expired_entry_once_in_bounded_batches() {
    for kind in [EngineKind::Wheel, EngineKind::DashMap] {
      let (t, clock) = table(kind);
      for k in 0..2_500 {
        t.insert(k, k * 2, None).unwrap();
      }
      let (tx, rx) = mpsc::channel::<Vec<Expired<u32, u32>>>();
      let t2 = Arc::clone(&t);
      let mut sink = move |b: Vec<Expired<u32, u32>>| tx.send(b).is_ok();
      let reaper = Reaper::spawn(Duration::from_secs(3600), move || {
        reap_once(&*t2, 1000, &mut sink)
      })
      .unwrap();
      clock.set(100);
      reaper.wake();
      let mut seen = vec![false; 2_500];
      let mut got = 0;
      while got < 2_500 {
        let b = rx.recv_timeout(Duration::from_secs(10)).expect("a batch");
        assert!(
          !b.is_empty() && b.len() <= 1000,
          "{kind:?}: batch of {}",
          b.len()
        );
        for e in b {
          assert_eq!(e.value, e.key * 2);
          assert!(!seen[e.key as usize], "{kind:?}: {} twice", e.key);
          seen[e.key as usize] = true;
          got += 1;
        }
      }
      assert_eq!(t.len(), 0);
      assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }
  }

  #[test]
  fn ticks_on_the_interval_without_wake() {
    let (t, clock) = table(EngineKind::Wheel);
    t.insert(1, 1, None).unwrap();
    let (tx, rx) = mpsc::channel();
    let t2 = Arc::clone(&t);
    let mut sink = move |b: Vec<Expired<u32, u32>>| tx.send(b.len()).is_ok();
    let _r = Reaper::spawn(Duration::from_millis(5), move || {
      reap_once(&*t2, 100, &mut sink)
    })
    .unwrap();
    clock.set(500);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(1));
  }

  #[test]
  fn stop_joins_and_no_tick_runs_afterwards() {
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = Arc::clone(&ticks);
    let mut r = Reaper::spawn(Duration::from_millis(1), move || {
      c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
      Tick::Idle
    })
    .unwrap();
    let t0 = Instant::now();
    while ticks.load(std::sync::atomic::Ordering::SeqCst) < 3 {
      assert!(t0.elapsed() < Duration::from_secs(10));
      std::thread::sleep(Duration::from_millis(1));
    }
    r.stop();
    assert!(!r.is_running());
    let n = ticks.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(ticks.load(std::sync::atomic::Ordering::SeqCst), n);
    r.stop(); // idempotent
  }

  #[test]
  fn a_sink_that_refuses_ends_the_thread() {
    let (t, clock) = table(EngineKind::DashMap);
    t.insert(1, 1, None).unwrap();
    t.insert(2, 2, None).unwrap();
    clock.set(1000);
    let t2 = Arc::clone(&t);
    let mut sink = |_: Vec<Expired<u32, u32>>| false;
    let r = Reaper::spawn(Duration::from_millis(1), move || {
      reap_once(&*t2, 1, &mut sink)
    })
    .unwrap();
    let t0 = Instant::now();
    while r.is_running() {
      assert!(t0.elapsed() < Duration::from_secs(10), "still running");
      std::thread::sleep(Duration::from_millis(1));
    }
    // It stopped after the first refused batch: one entry is still there.
    assert_eq!(t.len(), 1);
  }

  #[test]
  fn expiry_defaults_follow_the_timeout() {
    let ms = |t: f64| ExpiryOptions::for_timeout(t).interval.as_secs_f64() * 1000.0;
    assert_eq!(ms(30_000.0), 1000.0, "at most a second");
    assert_eq!(ms(2_000.0), 200.0, "a tenth of the timeout");
    assert_eq!(ms(1_005.0), 100.5);
    assert_eq!(ms(50.0), 10.0, "at least 10 ms");
    for odd in [0.0, -5.0, f64::NAN] {
      assert_eq!(ms(odd), 10.0, "{odd}");
    }
    assert_eq!(ms(f64::INFINITY), 1000.0);
    assert_eq!(ExpiryOptions::for_timeout(100.0).batch, 10_000);
  }

  #[test]
  fn expiry_options_are_bounded() {
    let iv = ExpiryOptions::interval_ms;
    assert_eq!(iv(1.0), Some(Duration::from_millis(1)));
    assert_eq!(iv(2.5), Some(Duration::from_micros(2500)));
    assert_eq!(iv(2f64.powi(31)), Some(Duration::from_millis(1 << 31)));
    for bad in [0.0, 0.5, -1.0, f64::NAN, 2f64.powi(31) + 1.0, f64::INFINITY] {
      assert_eq!(iv(bad), None, "{bad}");
    }
    assert_eq!(ExpiryOptions::batch(1.0), Some(1));
    assert_eq!(ExpiryOptions::batch(40.9), Some(40));
    assert_eq!(ExpiryOptions::batch(2f64.powi(32)), Some(1 << 32));
    for bad in [0.0, -1.0, f64::NAN, 2f64.powi(32) + 1.0] {
      assert_eq!(ExpiryOptions::batch(bad), None, "{bad}");
    }
  }

  #[test]
  fn dropping_stops_a_long_sleep_promptly() {
    let r = Reaper::spawn(Duration::from_secs(3600), || Tick::Idle).unwrap();
    let t0 = Instant::now();
    drop(r);
    assert!(t0.elapsed() < Duration::from_secs(5));
  }
}
