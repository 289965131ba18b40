//! The per-shard writer lock, chosen per platform.
//!
//! * Linux and FreeBSD: a `pthread_mutex_t` initialised
//!   `PTHREAD_PROCESS_SHARED` + `PTHREAD_MUTEX_ROBUST` inside the segment.
//!   When its owner dies (SIGKILL included) the kernel marks it, and the next
//!   `pthread_mutex_lock` returns `EOWNERDEAD` (POSIX `pthread_mutex_lock`,
//!   Linux `set_robust_list(2)`); the new owner repairs the shard and calls
//!   `pthread_mutex_consistent`.
//!   - The kernel marks a dead owner only if it walks the owner's robust
//!     list; when it does not (the OOM reaper freed the list first, or the
//!     thread unregistered it), the lock word keeps the dead thread's id
//!     forever. A waiter that has waited [`UNMARKED_CHECK_AFTER`] checks
//!     whether that thread still exists (glibc, where the word's layout is
//!     known: the owner tid in its low 30 bits) and, if not, marks the word
//!     `FUTEX_OWNER_DIED` itself by compare-and-swap from the exact value it
//!     read — what the kernel would have done — so the next locker, and only
//!     one, gets `EOWNERDEAD`. Only holders in this process's pid namespace
//!     are judged (each locker records its namespace in the shard header).
//!   - `ENOTRECOVERABLE` (a mutex unlocked while inconsistent, or damaged
//!     bytes): exactly one process re-initialises it. Each locker reads the
//!     shard's re-init word (`epoch << 32 | claimer pid`) *before* trying the
//!     lock; re-initialising needs a CAS of that word from the value read to
//!     `epoch | own pid`, and the re-initialiser publishes `epoch + 1` when
//!     done. A locker whose lock attempt predates someone else's re-init
//!     holds a stale word and its CAS fails. A claimer that died mid-way is
//!     replaced by CAS from its word.
//! * macOS and Windows have no robust process-shared mutex (realm-core #1429,
//!   iceoryx PR #330), so there the lock is an owner-pid lease: the lock word
//!   holds the owner's pid, taken by CAS from 0. A waiter that has waited a
//!   few milliseconds checks whether the owner is alive (`kill(pid, 0)` ==
//!   `ESRCH` on unix; `OpenProcess` + `GetExitCodeProcess` on Windows) and, if
//!   not, takes the lock over by CAS from the dead owner's word and repairs
//!   the shard. The lock word is `start tag << 32 | pid`, the tag derived
//!   from the owner's start time, so a recycled pid is not mistaken for the
//!   dead owner, and zombies (killed but not yet reaped) count as dead. The
//!   word is computed for the current pid at every acquisition (right after
//!   `fork`), and release is a CAS from the holder's own word, so a holder
//!   misjudged dead and taken over cannot release its successor's lock.
//!   Processes in different pid namespaces must not share a lease-locked map
//!   (a live owner in another namespace could look dead).
//!   The `lease-lock` cargo feature selects this lock on Linux too, so the
//!   protocol is tested here.
//!
//! Every wait is bounded by the handle's lock timeout, measured on the
//! monotonic clock over the whole acquisition (robust retries and
//! re-initialisation included), so a stopped owner (SIGSTOP, a debugger, a
//! frozen cgroup) or a damaged lock word never hangs a caller: it gets
//! `ETIMEDOUT` naming the holder's pid when the lock word shows one.

use std::time::{Duration, Instant};

use crate::mem::Shared64;

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
  /// Still held after the timeout, by this pid when the lock word says.
  TimedOut { holder: Option<u32> },
  /// An errno from the lock (robust mutex only).
  #[allow(dead_code)]
  Failed(i32),
}

/// What an acquisition needs besides the lock bytes.
pub(crate) struct LockCtx<'a> {
  /// The shard's re-init word (`epoch << 32 | claimer pid`), robust only.
  #[allow(dead_code)]
  pub reinit: &'a Shared64,
  /// The pid namespace of the last locker, robust only.
  #[allow(dead_code)]
  pub holder_ns: &'a Shared64,
  /// The whole acquisition's bound.
  pub timeout: Duration,
}

/// A waiter checks whether a robust mutex's owner still exists once it has
/// waited this long, then at every wait slice.
#[allow(dead_code)]
pub(crate) const UNMARKED_CHECK_AFTER: Duration = Duration::from_millis(100);

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

/// Time left of `timeout` since `start` (zero when it ran out).
fn remaining(start: Instant, timeout: Duration) -> Duration {
  timeout.saturating_sub(start.elapsed())
}

#[cfg(all(
  any(target_os = "linux", target_os = "freebsd"),
  not(feature = "lease-lock")
))]
mod robust {
  use super::{remaining, Acquired, LockCtx, LockError, PTR_KIND, UNMARKED_CHECK_AFTER};
  use std::sync::atomic::Ordering::*;
  use std::time::{Duration, Instant};

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

  /// The longest single wait inside `pthread_mutex_*lock`: between slices
  /// the loop re-checks the monotonic deadline and the owner's liveness.
  const MAX_SLICE: Duration = Duration::from_millis(50);

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

  type ClockLock = unsafe extern "C" fn(
    *mut libc::pthread_mutex_t,
    libc::clockid_t,
    *const libc::timespec,
  ) -> libc::c_int;

  /// `pthread_mutex_clocklock` (glibc ≥ 2.30), looked up at run time so the
  /// addon still loads on older C libraries.
  fn clocklock() -> Option<ClockLock> {
    static F: std::sync::OnceLock<Option<ClockLock>> = std::sync::OnceLock::new();
    *F.get_or_init(|| {
      // SAFETY: dlsym with a NUL-terminated name; a non-null result is the
      // address of a function with this C signature.
      unsafe {
        let p = libc::dlsym(libc::RTLD_DEFAULT, c"pthread_mutex_clocklock".as_ptr());
        (!p.is_null()).then(|| std::mem::transmute::<*mut libc::c_void, ClockLock>(p))
      }
    })
  }

  fn now_on(clock: libc::clockid_t) -> libc::timespec {
    // SAFETY: timespec is plain data; all-zero is valid (and covers the
    // padding fields some 32-bit targets have); the out-pointer is valid.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts
  }

  // The field types differ by target (32-bit time_t, c_long nanoseconds).
  #[allow(clippy::unnecessary_cast)]
  fn plus(mut ts: libc::timespec, d: Duration) -> libc::timespec {
    let ns = ts.tv_nsec as i64 + d.subsec_nanos() as i64;
    ts.tv_sec += d.as_secs() as libc::time_t + (ns / 1_000_000_000) as libc::time_t;
    ts.tv_nsec = (ns % 1_000_000_000) as _;
    ts
  }

  /// Waits for the mutex at most `slice` (monotonic where the C library
  /// allows, else one bounded slice of the wall clock).
  ///
  /// # Safety
  /// `m` is a valid process-shared mutex.
  unsafe fn lock_for(m: *mut libc::pthread_mutex_t, slice: Duration) -> libc::c_int {
    match clocklock() {
      Some(f) => {
        let ts = plus(now_on(libc::CLOCK_MONOTONIC), slice);
        // SAFETY: per the contract; `ts` is a valid timespec.
        unsafe { f(m, libc::CLOCK_MONOTONIC, &ts) }
      }
      None => {
        let ts = plus(now_on(libc::CLOCK_REALTIME), slice);
        // SAFETY: as above.
        unsafe { libc::pthread_mutex_timedlock(m, &ts) }
      }
    }
  }

  /// glibc's robust-mutex word (`__data.__lock`, offset 0 on every target):
  /// owner tid | FUTEX_OWNER_DIED | FUTEX_WAITERS.
  #[cfg(all(target_os = "linux", target_env = "gnu"))]
  mod word {
    pub(super) const TID_MASK: u32 = 0x3fff_ffff;
    pub(super) const OWNER_DIED: u32 = 0x4000_0000;
    pub(super) const WAITERS: u32 = 0x8000_0000;

    pub(super) fn of<'a>(lock: *mut u8) -> &'a std::sync::atomic::AtomicU32 {
      // SAFETY: `lock` is the 64-byte-aligned start of a glibc
      // pthread_mutex_t whose first field is the int futex word, which glibc
      // itself only accesses atomically.
      unsafe { &*(lock as *const std::sync::atomic::AtomicU32) }
    }
  }

  /// The pid of the thread holding the mutex, when the word shows one.
  fn holder(lock: *mut u8) -> Option<u32> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
      let tid = word::of(lock).load(Relaxed) & word::TID_MASK;
      if tid != 0 {
        return Some(crate::sys::tgid_of(tid).unwrap_or(tid));
      }
    }
    let _ = lock;
    None
  }

  /// If the owner recorded in the word no longer exists and the kernel did
  /// not mark it, marks it `FUTEX_OWNER_DIED` (CAS from the value read), so
  /// the next trylock returns `EOWNERDEAD` to exactly one locker.
  fn mark_unmarked_death(lock: *mut u8, ctx: &LockCtx<'_>) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
      let w = word::of(lock);
      let v = w.load(Relaxed);
      let tid = v & word::TID_MASK;
      if tid == 0 || v & word::OWNER_DIED != 0 {
        return false;
      }
      let ns = crate::sys::pid_namespace();
      if ns == 0 || ctx.holder_ns.load(Relaxed) != ns || crate::sys::thread_alive(tid) {
        return false;
      }
      w.compare_exchange(v, (v & word::WAITERS) | word::OWNER_DIED, AcqRel, Relaxed)
        .is_ok()
    }
    // Elsewhere the word's layout is not known: waits end in ETIMEDOUT.
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
      let _ = (lock, ctx);
      false
    }
  }

  /// Locks the mutex, waiting at most `ctx.timeout` in all.
  ///
  /// # Safety
  /// `lock` points to a mutex initialised by [`init`] in a live mapping.
  pub(crate) unsafe fn acquire(
    lock: *mut u8,
    ctx: &LockCtx<'_>,
    _me: u64,
  ) -> Result<Acquired, LockError> {
    let m = lock as *mut libc::pthread_mutex_t;
    let start = Instant::now();
    let mut slice = Duration::from_millis(1);
    let got = loop {
      let reinit_seen = ctx.reinit.load(Acquire);
      // SAFETY: `m` is a valid process-shared mutex per the contract.
      let mut rc = unsafe { libc::pthread_mutex_trylock(m) };
      if rc == libc::EBUSY {
        let left = remaining(start, ctx.timeout);
        if left.is_zero() {
          rc = libc::ETIMEDOUT;
        } else {
          // SAFETY: as above.
          rc = unsafe { lock_for(m, slice.min(left)) };
          slice = (slice * 2).min(MAX_SLICE);
        }
      }
      match rc {
        0 => break Acquired::Clean,
        libc::EOWNERDEAD => {
          // The owner died inside its critical section. We own the mutex
          // now; mark it consistent at once (the caller repairs the shard
          // before unlocking; if we die during the repair, the next owner
          // gets EOWNERDEAD again and repeats it).
          // SAFETY: we hold the mutex (EOWNERDEAD returns it locked).
          unsafe { libc::pthread_mutex_consistent(m) };
          break Acquired::OwnerDied;
        }
        libc::ENOTRECOVERABLE => {
          let pid = crate::sys::current_pid();
          // SAFETY: per the contract.
          if let Some(how) = unsafe { reinitialise(lock, ctx, reinit_seen, pid)? } {
            break how;
          }
        }
        libc::ETIMEDOUT | libc::EBUSY | libc::EINTR | libc::EAGAIN => {
          if start.elapsed() >= UNMARKED_CHECK_AFTER && mark_unmarked_death(lock, ctx) {
            continue;
          }
          if remaining(start, ctx.timeout).is_zero() {
            return Err(LockError::TimedOut {
              holder: holder(lock),
            });
          }
        }
        e => return Err(LockError::Failed(e)),
      }
      if remaining(start, ctx.timeout).is_zero() {
        return Err(LockError::TimedOut {
          holder: holder(lock),
        });
      }
    };
    let ns = crate::sys::pid_namespace();
    if ctx.holder_ns.load(Relaxed) != ns {
      ctx.holder_ns.store(ns, Relaxed);
    }
    Ok(got)
  }

  /// The `ENOTRECOVERABLE` path (see the module docs): re-initialises the
  /// mutex if process `pid` (this one) wins the claim made from `seen`, the
  /// re-init word read before the lock attempt. `Some` when it ends up
  /// owning the lock.
  ///
  /// # Safety
  /// As for [`acquire`].
  unsafe fn reinitialise(
    lock: *mut u8,
    ctx: &LockCtx<'_>,
    seen: u64,
    pid: u32,
  ) -> Result<Option<Acquired>, LockError> {
    let epoch = seen >> 32;
    let claimer = seen as u32;
    let claim = (epoch << 32) | pid as u64;
    let won = if claimer == 0 {
      ctx
        .reinit
        .compare_exchange(seen, claim, AcqRel, Acquire)
        .is_ok()
    } else if claimer != pid && !crate::sys::pid_alive(claimer) {
      // The claimer died mid-way: take its claim over.
      ctx
        .reinit
        .compare_exchange(seen, claim, AcqRel, Acquire)
        .is_ok()
    } else {
      false
    };
    if !won {
      std::thread::sleep(Duration::from_millis(1));
      return Ok(None);
    }
    // SAFETY: an unrecoverable mutex has no owner, and every process whose
    // lock attempt could still see the old state holds a stale re-init word.
    if let Err(e) = unsafe { init(lock) } {
      ctx.reinit.store(epoch.wrapping_add(1) << 32, Release);
      return Err(LockError::Failed(e));
    }
    // SAFETY: freshly initialised mutex.
    let rc = unsafe { libc::pthread_mutex_trylock(lock as *mut libc::pthread_mutex_t) };
    ctx.reinit.store(epoch.wrapping_add(1) << 32, Release);
    Ok((rc == 0).then_some(Acquired::Reinitialised))
  }

  /// Unlocks the mutex.
  ///
  /// # Safety
  /// The calling thread holds the mutex at `lock`.
  pub(crate) unsafe fn release(lock: *mut u8, _me: u64) {
    // SAFETY: per the contract.
    unsafe { libc::pthread_mutex_unlock(lock as *mut libc::pthread_mutex_t) };
  }
}

#[cfg(not(all(
  any(target_os = "linux", target_os = "freebsd"),
  not(feature = "lease-lock")
)))]
mod lease {
  use super::{remaining, Acquired, LockCtx, LockError, PTR_KIND};
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
    ctx: &LockCtx<'_>,
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
      let left = remaining(start, ctx.timeout);
      if left.is_zero() {
        let pid = w.load(Ordering::Relaxed) as u32;
        return Err(LockError::TimedOut {
          holder: (pid != 0).then_some(pid),
        });
      }
      round += 1;
      if round < 64 {
        std::hint::spin_loop();
      } else if round < 128 {
        std::thread::yield_now();
      } else {
        let exp = (round - 128).min(6);
        std::thread::sleep(Duration::from_micros(20u64 << exp).min(left));
      }
    }
  }

  /// Releases the lock if `me` still holds it. A holder that was judged dead
  /// and taken over finds another word there and leaves it alone.
  ///
  /// # Safety
  /// The calling process acquired the lock at `lock` with `me`.
  pub(crate) unsafe fn release(lock: *mut u8, me: u64) {
    let _ = word(lock).compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
  }
}

/// This process's word for [`acquire`]/[`release`]: the lease word (pid and
/// start tag, recomputed after `fork`); unused by the robust mutex (0, so
/// its hot path makes no `getpid` call).
pub(crate) fn me() -> u64 {
  if cfg!(all(
    any(target_os = "linux", target_os = "freebsd"),
    not(feature = "lease-lock")
  )) {
    0
  } else {
    crate::sys::owner_word()
  }
}

/// The default time a caller waits for a shard lock before `ETIMEDOUT`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
