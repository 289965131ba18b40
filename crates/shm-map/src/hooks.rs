//! Crash hooks for the crash tests (feature `test-hooks`): make the process
//! die, or stop, at a chosen point inside a critical section.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Points inside critical sections where a hook can fire.
pub mod point {
  /// Any of the points below.
  pub const ANY: u32 = 0;
  /// `set`: the new record is written and the head published, the record
  /// is still WRITING and no cell points at it.
  pub const SET_WRITING: u32 = 1;
  /// `set`: the new record is LIVE and its cell points at it; a replaced
  /// record is still LIVE too.
  pub const SET_LINKED: u32 = 2;
  /// any removal (`delete`, expiry, eviction): the record is DEAD, its cell
  /// not yet emptied.
  pub const DELETE_MARKED: u32 = 3;
  /// eviction: the victim is DEAD and its cell emptied, the tail not yet
  /// moved past it, the new entry not yet written.
  pub const EVICT_MARKED: u32 = 4;
  /// `incr`: sequence odd, value not yet stored.
  pub const INCR: u32 = 5;
  /// shard repair: half the ring walked, the index not yet rebuilt.
  pub const REPAIR: u32 = 6;
  /// `clear`: the ring is empty (tail moved to the head), the index not yet
  /// cleared.
  pub const CLEAR: u32 = 7;
  /// `create`: the segment exists under its name, its creator holds the
  /// creation lock, the header is written, the shards are not initialised
  /// and the map is not READY.
  pub const CREATE: u32 = 8;
  /// Number of points (exclusive upper bound).
  pub const COUNT: u32 = 9;
}

/// What a hook does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashAction {
  /// `SIGKILL` itself (unix) / abort (elsewhere).
  Kill,
  /// Print `HOOKED <point>` on stdout, then sleep forever while holding the
  /// lock, so the parent can kill it.
  Block,
}

static POINT: AtomicU32 = AtomicU32::new(u32::MAX);
static COUNTDOWN: AtomicU64 = AtomicU64::new(0);
static ACTION: AtomicU32 = AtomicU32::new(0);

/// Arms a hook: the `after`-th time (0 = the first time) a matching point is
/// reached, `action` happens. `point::ANY` matches every point.
pub fn debug_set_crash_hook(point: u32, after: u64, action: CrashAction) {
  COUNTDOWN.store(after, Ordering::SeqCst);
  ACTION.store(action as u32, Ordering::SeqCst);
  POINT.store(point, Ordering::SeqCst);
}

/// Disarms the hook.
pub fn debug_clear_crash_hook() {
  POINT.store(u32::MAX, Ordering::SeqCst);
}

#[inline]
pub(crate) fn hit(p: u32) {
  let armed = POINT.load(Ordering::Relaxed);
  if armed == u32::MAX || (armed != point::ANY && armed != p) {
    return;
  }
  if COUNTDOWN
    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1))
    .is_ok()
  {
    return;
  }
  fire(p);
}

#[cold]
fn fire(p: u32) {
  if ACTION.load(Ordering::SeqCst) == CrashAction::Block as u32 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "HOOKED {p}");
    let _ = out.flush();
    loop {
      std::thread::sleep(std::time::Duration::from_secs(3600));
    }
  }
  #[cfg(unix)]
  // SAFETY: raising a signal on ourselves; SIGKILL cannot be caught.
  unsafe {
    libc::raise(libc::SIGKILL);
  }
  std::process::abort();
}

// ---- store counting ---------------------------------------------------------

static COUNTING: AtomicBool = AtomicBool::new(false);
static STORES: AtomicU64 = AtomicU64::new(0);
static KILL_AT: AtomicU64 = AtomicU64::new(u64::MAX);

/// Starts counting this process's stores to map memory from 0 (every
/// `store`, `fetch_add` and `compare_exchange` on a map word; lock internals
/// excluded). With `kill_at = Some(k)` the process SIGKILLs itself just
/// before store number `k` (0-based) takes effect.
pub fn debug_count_stores(kill_at: Option<u64>) {
  STORES.store(0, Ordering::SeqCst);
  KILL_AT.store(kill_at.unwrap_or(u64::MAX), Ordering::SeqCst);
  COUNTING.store(true, Ordering::SeqCst);
}

/// Stops counting; returns the stores counted since [`debug_count_stores`].
pub fn debug_stop_counting() -> u64 {
  COUNTING.store(false, Ordering::SeqCst);
  KILL_AT.store(u64::MAX, Ordering::SeqCst);
  STORES.load(Ordering::SeqCst)
}

#[inline]
pub(crate) fn store() {
  if !COUNTING.load(Ordering::Relaxed) {
    return;
  }
  let n = STORES.fetch_add(1, Ordering::Relaxed);
  if n == KILL_AT.load(Ordering::Relaxed) {
    ACTION.store(CrashAction::Kill as u32, Ordering::SeqCst);
    fire(u32::MAX);
  }
}
