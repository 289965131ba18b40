//! The wall clock every process shares.

/// Wall-clock milliseconds with the kernel's tick resolution (a few ms), a
/// quarter of the cost of [`wall_ms`] on Linux. Good enough for access
/// times, which readers refresh at most once a second.
#[inline]
pub(crate) fn coarse_ms() -> u64 {
  #[cfg(target_os = "linux")]
  {
    // SAFETY: timespec is plain data, all-zero is valid; the out-pointer is
    // valid; CLOCK_REALTIME_COARSE exists since Linux 2.6.32.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
      return ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000;
    }
  }
  wall_ms()
}

/// Wall-clock milliseconds since the Unix epoch, shared by all processes.
#[inline]
pub(crate) fn wall_ms() -> u64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .map(|d| d.as_millis() as u64)
    .unwrap_or(0)
}
