//! Memory the caller's numbers decide: the table of an `LruCache` (its
//! capacity) and the buffers of batch calls and long keys (array and string
//! lengths). None of them may abort the process: each is allocated fallibly
//! and a failure throws a `RangeError` with code `ERR_LRUKIT_OUT_OF_MEMORY`
//! whose message gives the bytes requested.
//!
//! An `LruCache` table is also refused when it is larger than the machine's
//! physical memory ([`table_limit`]). Such a table could never be resident,
//! and on operating systems that overcommit (macOS; Linux with
//! `vm.overcommit_memory = 1`, or under its default heuristic when swap makes
//! up the difference; Windows with a growing page file) allocating it would
//! succeed, and the process would page heavily or be killed while the
//! constructor writes the table's links and index. The limit makes that
//! refusal the same on every system, instead of depending on the
//! overcommit policy. Smaller tables still depend on it: see the README
//! ("Memory").

use napi::{Env, Error};

use crate::errors;

/// Bytes of physical memory of this machine (what `os.totalmem()` reports),
/// or `None` where it cannot be read.
#[cfg(any(
  target_os = "linux",
  target_os = "android",
  target_os = "macos",
  target_os = "ios",
  target_os = "freebsd",
  target_os = "openbsd",
  target_os = "netbsd"
))]
pub fn physical_memory() -> Option<u64> {
  // SAFETY: `sysconf` only reads system configuration values.
  let (pages, page_size) = unsafe {
    (
      libc::sysconf(libc::_SC_PHYS_PAGES),
      libc::sysconf(libc::_SC_PAGESIZE),
    )
  };
  (pages > 0 && page_size > 0).then(|| (pages as u64).saturating_mul(page_size as u64))
}

/// Bytes of physical memory of this machine (what `os.totalmem()` reports),
/// or `None` where it cannot be read.
#[cfg(windows)]
pub fn physical_memory() -> Option<u64> {
  use windows_sys::Win32::System::SystemInformation::{GlobalMemoryStatusEx, MEMORYSTATUSEX};
  let mut status = MEMORYSTATUSEX {
    dwLength: std::mem::size_of::<MEMORYSTATUSEX>() as u32,
    ..Default::default()
  };
  // SAFETY: `status` is a writable MEMORYSTATUSEX whose `dwLength` is set,
  // as the function requires.
  let ok = unsafe { GlobalMemoryStatusEx(&mut status) };
  (ok != 0 && status.ullTotalPhys > 0).then_some(status.ullTotalPhys)
}

/// Bytes of physical memory of this machine, or `None` where it cannot be read.
#[cfg(not(any(
  target_os = "linux",
  target_os = "android",
  target_os = "macos",
  target_os = "ios",
  target_os = "freebsd",
  target_os = "openbsd",
  target_os = "netbsd",
  windows
)))]
pub fn physical_memory() -> Option<u64> {
  None
}

/// The most bytes an `LruCache` table may take: the machine's physical
/// memory (no limit where it is unknown). The environment variable
/// `LRUKIT_TEST_NO_MEMORY_LIMIT=1` lifts the limit, so that tests can reach
/// the allocator's own refusal.
pub fn table_limit() -> usize {
  if std::env::var_os("LRUKIT_TEST_NO_MEMORY_LIMIT").is_some_and(|v| v == "1") {
    return usize::MAX;
  }
  physical_memory().map_or(usize::MAX, |b| usize::try_from(b).unwrap_or(usize::MAX))
}

/// Throws a `RangeError` with code `ERR_LRUKIT_OUT_OF_MEMORY`.
pub fn out_of_memory(env: &Env, msg: &str) -> Error {
  errors::range_error(env, errors::OUT_OF_MEMORY, msg)
}

/// Makes room for `additional` more elements in `v` without aborting: grows
/// like `Vec::reserve` (at least doubling), but a failed allocation throws
/// [`out_of_memory`] naming `what` and the bytes requested.
pub fn reserve<T>(env: &Env, v: &mut Vec<T>, additional: usize, what: &str) -> napi::Result<()> {
  if v.capacity() - v.len() >= additional {
    return Ok(());
  }
  let wanted = v
    .len()
    .checked_add(additional)
    .map(|n| n.max(v.capacity().saturating_mul(2)));
  if let Some(n) = wanted {
    if v.try_reserve_exact(n - v.len()).is_ok() {
      return Ok(());
    }
  }
  let elems = wanted.unwrap_or(usize::MAX);
  let bytes = (elems as u128) * (std::mem::size_of::<T>() as u128);
  Err(out_of_memory(
    env,
    &format!("{what}: could not allocate {bytes} bytes"),
  ))
}
