//! The per-shard writer lock, chosen per platform.
//!
//! * Linux and FreeBSD: a `pthread_mutex_t` initialised
//!   `PTHREAD_PROCESS_SHARED` + `PTHREAD_MUTEX_ROBUST` inside the segment.
//!   When its owner dies (SIGKILL included) the kernel marks it, and the next
//!   `pthread_mutex_lock` returns `EOWNERDEAD` (POSIX `pthread_mutex_lock`,
//!   Linux `set_robust_list(2)`); the new owner repairs the shard and calls
//!   `pthread_mutex_consistent`.
//! * macOS and Windows have no robust process-shared mutex (realm-core #1429,
//!   iceoryx PR #330), so there the lock is an owner-pid lease: the lock word
//!   holds the owner's pid, taken by CAS from 0. A waiter that has waited a
//!   few milliseconds checks whether the owner is alive (`kill(pid, 0)` ==
//!   `ESRCH` on unix; `OpenProcess` + `GetExitCodeProcess` on Windows) and, if
//!   not, takes the lock over by CAS from the dead owner's word and repairs
//!   the shard. The lock word is `start tag << 32 | pid`, the tag derived
//!   from the owner's start time, so a recycled pid is not mistaken for the
//!   dead owner, and zombies (killed but not yet reaped) count as dead.
//!   Processes in different pid namespaces must not share a lease-locked map
//!   (a live owner in another namespace could look dead).
//!   The `lease-lock` cargo feature selects this lock on Linux too, so the
//!   protocol is tested here.
//!
//! Every wait is bounded by the caller's timeout (`ETIMEDOUT`), so a stopped
//! owner (SIGSTOP, debugger) or a damaged lock word never hangs a caller.

use std::time::Duration;

#[cfg(all(
  any(target_os = "linux", target_os = "freebsd"),
  not(feature = "lease-lock")
))]
pub(crate) use robust::*;

#[cfg(not(all(
  any(target_os = "linux", target_os = "freebsd"),
  not(feature = "lease-lock")
)))]
pub(crate) use lease::*;

/// How a lock was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acquired {
  /// Normal acquisition.
  Clean,
  /// The previous owner died holding it: the shard must be repaired.
  OwnerDied,
  /// The lock was unusable (`ENOTRECOVERABLE`) and was re-initialised
  /// (robust mutex only).
  #[allow(dead_code)]
  Reinitialised,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockError {
  TimedOut,
  /// An errno from the lock (robust mutex only).
  #[allow(dead_code)]
  Failed(i32),
}

pub(crate) fn lock_kind_name(kind: u32) -> &'static str {
  match kind % 100 {
    1 => "glibc robust pthread mutex",
    2 => "musl robust pthread mutex",
    3 => "FreeBSD robust pthread mutex",
    4 => "robust pthread mutex (other libc)",
    10 => "owner-pid lease lock",
    _ => "unknown",
  }
}

const PTR_KIND: u32 = if cfg!(target_pointer_width = "32") {
  100
} else {
  0
};

#[cfg(all(
  any(target_os = "linux", target_os = "freebsd"),
  not(feature = "lease-lock")
))]
mod robust {
  use super::{Acquired, LockError, PTR_KIND};
  use std::time::Duration;

  /// Lock ABI id stored in the header: glibc and musl lay out
  /// `pthread_mutex_t` differently, so their processes must not share a map.
  pub(crate) const LOCK_KIND: u32 = PTR_KIND
    + if cfg!(target_os = "freebsd") {
      3
    } else if cfg!(target_env = "gnu") {
      1
    } else if cfg!(target_env = "musl") {
      2
    } else {
      4
    };

  const _: () = assert!(std::mem::size_of::<libc::pthread_mutex_t>() <= 64);
  const _: () = assert!(std::mem::align_of::<libc::pthread_mutex_t>() <= 64);

  /// Initialises the mutex at `lock` (robust, process-shared).
  ///
  /// # Safety
  /// `lock` points to 64 writable, 64-byte-aligned bytes of the mapping that
  /// no process is using as a mutex right now.
  pub(crate) unsafe fn init(lock: *mut u8) -> Result<(), i32> {
    let m = lock as *mut libc::pthread_mutex_t;
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: attr is a local out-parameter, initialised by mutexattr_init
    // before any other use and destroyed at the end; `m` is valid per the
    // function contract.
    unsafe {
      let a = attr.as_mut_ptr();
      let rc = libc::pthread_mutexattr_init(a);
      if rc != 0 {
        return Err(rc);
      }
      let mut rc = libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED);
      if rc == 0 {
        rc = libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST);
      }
      if rc == 0 {
        rc = libc::pthread_mutex_init(m, a);
      }
      libc::pthread_mutexattr_destroy(a);
      if rc != 0 {
        return Err(rc);
      }
    }
    Ok(())
  }

  fn deadline(timeout: Duration) -> libc::timespec {
    let now = std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .unwrap_or_default();
    let at = now + timeout;
    // SAFETY: timespec is plain data; all-zero is valid (and covers the
    // padding fields some 32-bit targets have).
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    ts.tv_sec = at.as_secs() as _;
    ts.tv_nsec = at.subsec_nanos() as _;
    ts
  }

  /// Locks the mutex, waiting at most `timeout`.
  ///
  /// # Safety
  /// `lock` points to a mutex initialised by [`init`] in a live mapping.
  pub(crate) unsafe fn acquire(
    lock: *mut u8,
    timeout: Duration,
    _me: u64,
  ) -> Result<Acquired, LockError> {
    let m = lock as *mut libc::pthread_mutex_t;
    for _ in 0..3 {
      // SAFETY: `m` is a valid process-shared mutex per the contract.
      let mut rc = unsafe { libc::pthread_mutex_trylock(m) };
      if rc == libc::EBUSY {
        let ts = deadline(timeout);
        // SAFETY: as above; `ts` is a valid timespec.
        rc = unsafe { libc::pthread_mutex_timedlock(m, &ts) };
      }
      match rc {
        0 => return Ok(Acquired::Clean),
        libc::EOWNERDEAD => {
          // The owner died inside its critical section. We own the mutex
          // now; mark it consistent at once (the caller repairs the shard
          // before unlocking; if we die during the repair, the next owner
          // gets EOWNERDEAD again and repeats it).
          // SAFETY: we hold the mutex (EOWNERDEAD returns it locked).
          unsafe { libc::pthread_mutex_consistent(m) };
          return Ok(Acquired::OwnerDied);
        }
        libc::ENOTRECOVERABLE => {
          // Only reachable if someone unlocked an EOWNERDEAD mutex without
          // making it consistent (not this crate) or the bytes were damaged.
          // Nobody can hold it in this state, so re-initialise and retry.
          // SAFETY: an unrecoverable mutex has no owner and no waiters
          // (they all returned ENOTRECOVERABLE).
          if let Err(e) = unsafe { init(lock) } {
            return Err(LockError::Failed(e));
          }
          // SAFETY: freshly initialised mutex.
          let rc = unsafe { libc::pthread_mutex_trylock(m) };
          if rc == 0 {
            return Ok(Acquired::Reinitialised);
          }
          continue;
        }
        libc::ETIMEDOUT => return Err(LockError::TimedOut),
        e => return Err(LockError::Failed(e)),
      }
    }
    Err(LockError::TimedOut)
  }

  /// Unlocks the mutex.
  ///
  /// # Safety
  /// The calling thread holds the mutex at `lock`.
  pub(crate) unsafe fn release(lock: *mut u8) {
    // SAFETY: per the contract.
    unsafe { libc::pthread_mutex_unlock(lock as *mut libc::pthread_mutex_t) };
  }
}

#[cfg(not(all(
  any(target_os = "linux", target_os = "freebsd"),
  not(feature = "lease-lock")
)))]
mod lease {
  use super::{Acquired, LockError, PTR_KIND};
  use std::sync::atomic::{AtomicU64, Ordering};
  use std::time::{Duration, Instant};

  pub(crate) const LOCK_KIND: u32 = PTR_KIND + 10;

  /// Waiting this long before the first liveness check of the owner, then
  /// re-checking at this interval (a check reads /proc or calls the OS).
  const FIRST_CHECK: Duration = Duration::from_millis(2);
  const CHECK_EVERY: Duration = Duration::from_millis(10);

  fn word<'a>(lock: *mut u8) -> &'a AtomicU64 {
    // SAFETY: callers pass a 64-byte-aligned pointer into a live mapping
    // (see `acquire`); AtomicU64 has the size and alignment of u64.
    unsafe { &*(lock as *const AtomicU64) }
  }

  /// # Safety
  /// `lock` points to 8 writable, 8-byte-aligned bytes of a live mapping.
  pub(crate) unsafe fn init(lock: *mut u8) -> Result<(), i32> {
    word(lock).store(0, Ordering::Release);
    Ok(())
  }

  /// # Safety
  /// `lock` points to a lock word initialised by [`init`] in a live mapping.
  pub(crate) unsafe fn acquire(
    lock: *mut u8,
    timeout: Duration,
    me: u64,
  ) -> Result<Acquired, LockError> {
    let w = word(lock);
    if w
      .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
      .is_ok()
    {
      return Ok(Acquired::Clean);
    }
    let start = Instant::now();
    let mut next_check = start + FIRST_CHECK;
    let mut round = 0u32;
    loop {
      let cur = w.load(Ordering::Relaxed);
      if cur == 0 {
        if w
          .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
          .is_ok()
        {
          return Ok(Acquired::Clean);
        }
        continue;
      }
      let now = Instant::now();
      if now >= next_check {
        next_check = now + CHECK_EVERY;
        // The word is `start tag << 32 | pid` (see `sys::owner_word`). The
        // owner is dead if the pid is gone or a zombie, or now belongs to a
        // process that started at another time (pid reuse). A word that is
        // not a plausible pid is damage: treat it as dead too.
        let pid = cur as u32;
        let tag = (cur >> 32) as u32;
        let dead = pid == 0
          || pid > i32::MAX as u32
          || match crate::sys::process_state(pid) {
            crate::sys::Liveness::Dead => true,
            crate::sys::Liveness::Alive(t) => tag != 0 && t != 0 && t != tag,
          };
        if dead
          && w
            .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
          return Ok(Acquired::OwnerDied);
        }
      }
      if now.duration_since(start) >= timeout {
        return Err(LockError::TimedOut);
      }
      round += 1;
      if round < 64 {
        std::hint::spin_loop();
      } else if round < 128 {
        std::thread::yield_now();
      } else {
        let exp = (round - 128).min(6);
        std::thread::sleep(Duration::from_micros(20u64 << exp));
      }
    }
  }

  /// # Safety
  /// The calling process holds the lock at `lock`.
  pub(crate) unsafe fn release(lock: *mut u8) {
    word(lock).store(0, Ordering::Release);
  }
}

/// The default time a caller waits for a shard lock before `ETIMEDOUT`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
