//! Operating-system glue: named segments, permissions, page reservation,
//! process liveness and the wall clock.

use crate::error::{eio, Error};
use shared_memory::{Shmem, ShmemConf, ShmemError};

/// Longest user name: "/lk_" + 24 = 28 characters, under macOS `PSHMNAMLEN`
/// (31, woodruffw/kbs2 #66, sglang PR #35046).
pub(crate) const MAX_NAME_LEN: usize = 24;

pub(crate) fn validate_name(name: &str) -> Result<String, Error> {
  // No trailing '.': Windows drops it from the backing file's name, so
  // "a." and "a" would be the same map there.
  let ok = !name.is_empty()
    && name.len() <= MAX_NAME_LEN
    && !name.ends_with('.')
    && name
      .bytes()
      .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
  if !ok {
    return Err(Error::new(
      "ENAME",
      format!(
        "invalid map name {name:?}: use 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 . _ -, not ending with '.'"
      ),
    ));
  }
  Ok(format!("/lk_{name}"))
}

pub(crate) enum CreateError {
  Exists,
  Other(Error),
}

fn errno_name(e: u32) -> String {
  std::io::Error::from_raw_os_error(e as i32).to_string()
}

/// Creates the segment exclusively (`O_CREAT | O_EXCL`, mode 0600 by the
/// `shared_memory` crate). The returned handle still owns the name, so
/// dropping it on a later error unlinks the half-made segment.
pub(crate) fn create_segment(os_id: &str, size: u64) -> Result<Shmem, CreateError> {
  match ShmemConf::new().size(size as usize).os_id(os_id).create() {
    Ok(s) => Ok(s),
    Err(ShmemError::MappingIdExists) => Err(CreateError::Exists),
    Err(e) => Err(CreateError::Other(eio(format!(
      "cannot create shared memory {os_id} of {size} bytes: {}",
      describe(&e)
    )))),
  }
}

fn describe(e: &ShmemError) -> String {
  match e {
    ShmemError::MapCreateFailed(n)
    | ShmemError::MapOpenFailed(n)
    | ShmemError::UnknownOsError(n) => {
      format!("{e} ({})", errno_name(*n))
    }
    _ => e.to_string(),
  }
}

pub(crate) enum OpenError {
  NotFound,
  /// The object exists but cannot be mapped yet: its creator has not sized
  /// it (unix: size 0, between `shm_open` and `ftruncate`; Windows: the
  /// backing file is still empty). Retried until the init deadline; the
  /// error is reported if it persists.
  NotReady(Error),
  Other(Error),
}

pub(crate) fn open_segment(os_id: &str) -> Result<Shmem, OpenError> {
  match ShmemConf::new().os_id(os_id).open() {
    Ok(s) => Ok(s),
    // ENOENT / ERROR_FILE_NOT_FOUND
    Err(ShmemError::MapOpenFailed(2)) => Err(OpenError::NotFound),
    #[cfg(unix)]
    Err(e @ ShmemError::MapOpenFailed(n)) if n as i32 == libc::EINVAL => {
      Err(OpenError::NotReady(eio(format!(
        "cannot map shared memory {os_id}: {}",
        describe(&e)
      ))))
    }
    #[cfg(windows)]
    Err(e @ ShmemError::MapOpenFailed(_)) => Err(OpenError::NotReady(eio(format!(
      "cannot map shared memory {os_id}: {}",
      describe(&e)
    )))),
    Err(e) => Err(OpenError::Other(eio(format!(
      "cannot open shared memory {os_id}: {}",
      describe(&e)
    )))),
  }
}

/// Applies `mode` and reserves every page of a freshly created segment, so a
/// full `/dev/shm` fails here with ENOSPC instead of SIGBUS on first touch
/// (moby #29492; triton python_backend PR #48 uses `posix_fallocate` too).
#[cfg(unix)]
pub(crate) fn prepare_segment(os_id: &str, size: u64, mode: u32) -> Result<(), Error> {
  use std::ffi::CString;
  // `shared_memory` does not expose its fd, so open the object again.
  let c = CString::new(os_id).map_err(|_| eio("bad segment name"))?;
  // SAFETY: `c` is a valid NUL-terminated string; the fd is closed below.
  let fd = unsafe { libc::shm_open(c.as_ptr(), libc::O_RDWR, 0) };
  if fd < 0 {
    return Err(eio(format!(
      "shm_open({os_id}): {}",
      std::io::Error::last_os_error()
    )));
  }
  let result = (|| {
    if mode != 0o600 {
      // SAFETY: fd is an open descriptor we own.
      if unsafe { libc::fchmod(fd, mode as libc::mode_t) } != 0 {
        let e = std::io::Error::last_os_error();
        if cfg!(target_os = "macos") && e.raw_os_error() == Some(libc::EINVAL) {
          // XNU has no chmod for POSIX shared memory (iceoryx2 #156).
          return Err(crate::error::einval(format!(
            "mode {mode:o} cannot be applied on macOS (POSIX shared memory has no fchmod there); segments are 0600"
          )));
        }
        return Err(eio(format!("fchmod({os_id}, {mode:o}): {e}")));
      }
    }
    #[cfg(target_os = "linux")]
    reserve_pages(fd, size)?;
    #[cfg(not(target_os = "linux"))]
    let _ = size;
    Ok(())
  })();
  // SAFETY: fd is open and owned here.
  unsafe { libc::close(fd) };
  result
}

/// Linux: `posix_fallocate` on the tmpfs object. Where the filesystem lacks
/// fallocate, write one byte per page through the fd instead (a failed write
/// returns ENOSPC, unlike a store to the mapping which raises SIGBUS).
#[cfg(target_os = "linux")]
fn reserve_pages(fd: libc::c_int, size: u64) -> Result<(), Error> {
  // SAFETY: fd is a valid open descriptor of at least `size` bytes.
  let rc = unsafe { libc::posix_fallocate(fd, 0, size as libc::off_t) };
  if rc == 0 {
    return Ok(());
  }
  if rc != libc::EOPNOTSUPP && rc != libc::EINVAL {
    return Err(nospace(size, rc));
  }
  let zero = [0u8; 1];
  let mut off = 0u64;
  while off < size {
    // SAFETY: writes one byte from a valid buffer at an offset inside the object.
    let n = unsafe { libc::pwrite(fd, zero.as_ptr().cast(), 1, off as libc::off_t) };
    if n != 1 {
      let e = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
      return Err(nospace(size, e));
    }
    off += 4096;
  }
  Ok(())
}

#[cfg(target_os = "linux")]
fn nospace(size: u64, errno: i32) -> Error {
  eio(format!(
    "cannot reserve {size} bytes of shared memory: {} (is /dev/shm full? Docker's default is 64 MB, see --shm-size)",
    std::io::Error::from_raw_os_error(errno)
  ))
}

/// Windows: file mappings are created by `shared_memory` with default
/// security; `mode` does not apply (documented limitation).
#[cfg(windows)]
pub(crate) fn prepare_segment(_os_id: &str, _size: u64, _mode: u32) -> Result<(), Error> {
  Ok(())
}

/// Removes the name. Processes that have the map open keep using it.
pub(crate) fn unlink_segment(os_id: &str) -> Result<bool, Error> {
  #[cfg(unix)]
  {
    let c = std::ffi::CString::new(os_id).map_err(|_| eio("bad segment name"))?;
    // SAFETY: valid NUL-terminated name.
    if unsafe { libc::shm_unlink(c.as_ptr()) } == 0 {
      return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ENOENT) {
      return Ok(false);
    }
    Err(eio(format!("shm_unlink({os_id}): {e}")))
  }
  #[cfg(windows)]
  {
    // `shared_memory` emulates unlink for its owner on drop (rename + delete
    // on close), so open the mapping, take ownership and drop it.
    match open_segment(os_id) {
      Ok(mut s) => {
        s.set_owner(true);
        drop(s);
        Ok(true)
      }
      Err(OpenError::NotFound) => Ok(false),
      Err(OpenError::NotReady(e)) | Err(OpenError::Other(e)) => Err(e),
    }
  }
}

pub(crate) fn current_pid() -> u32 {
  std::process::id()
}

/// What a liveness probe says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
  /// Running. The tag is derived from its start time (0 = unknown), so a
  /// recycled pid can be told apart from the process that held a lock.
  Alive(u32),
  /// Gone, or a zombie: a killed process stays a zombie until its parent
  /// reaps it, and `kill(pid, 0)` still succeeds on it — a parent blocked on
  /// the lock its dead child held would otherwise wait for itself.
  Dead,
}

fn start_tag(t: u64) -> u32 {
  let tag = (t ^ (t >> 32)) as u32;
  if tag == 0 {
    1
  } else {
    tag
  }
}

/// Liveness of `pid`. Errs on the side of "alive" when the OS will not say.
#[cfg(target_os = "linux")]
pub(crate) fn process_state(pid: u32) -> Liveness {
  if pid == 0 || pid > i32::MAX as u32 {
    return Liveness::Dead;
  }
  // /proc/<pid>/stat: "pid (comm) S ppid ... starttime(22) ..."; comm may
  // contain spaces and parentheses, so split after the last ')'.
  match std::fs::read(format!("/proc/{pid}/stat")) {
    Ok(stat) => {
      let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return Liveness::Alive(0);
      };
      let rest = String::from_utf8_lossy(&stat[close + 1..]);
      let mut f = rest.split_ascii_whitespace();
      let state = f.next().unwrap_or("R");
      if state == "Z" || state == "X" || state == "x" {
        return Liveness::Dead;
      }
      // Fields after ')' start at 3 (state); starttime is field 22.
      let start = f.nth(18).and_then(|s| s.parse::<u64>().ok());
      Liveness::Alive(start.map_or(0, start_tag))
    }
    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Liveness::Dead,
    Err(_) => kill_probe(pid),
  }
}

#[cfg(target_os = "macos")]
pub(crate) fn process_state(pid: u32) -> Liveness {
  if pid == 0 || pid > i32::MAX as u32 {
    return Liveness::Dead;
  }
  let mut info = std::mem::MaybeUninit::<libc::proc_bsdinfo>::zeroed();
  let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
  // SAFETY: `info` is a writable buffer of `size` bytes; proc_pidinfo writes
  // at most that many.
  let n = unsafe {
    libc::proc_pidinfo(
      pid as libc::c_int,
      libc::PROC_PIDTBSDINFO,
      0,
      info.as_mut_ptr().cast(),
      size,
    )
  };
  if n == size {
    // SAFETY: fully written by proc_pidinfo (and zero-initialised anyway).
    let info = unsafe { info.assume_init() };
    if info.pbi_status == libc::SZOMB {
      return Liveness::Dead;
    }
    return Liveness::Alive(start_tag(
      info.pbi_start_tvsec.wrapping_mul(1_000_000) ^ info.pbi_start_tvusec,
    ));
  }
  // With arg 0, XNU does not look up zombies: ESRCH means gone or a zombie.
  // Do not fall back to kill(pid, 0) then, which succeeds on zombies.
  if std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
    return Liveness::Dead;
  }
  kill_probe(pid)
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "macos"))))]
pub(crate) fn process_state(pid: u32) -> Liveness {
  if pid == 0 || pid > i32::MAX as u32 {
    return Liveness::Dead;
  }
  kill_probe(pid)
}

/// `kill(pid, 0)`: ESRCH = dead; anything else (EPERM: another user's) = alive.
#[cfg(unix)]
fn kill_probe(pid: u32) -> Liveness {
  // SAFETY: signal 0 performs only the existence/permission check.
  let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
  if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
    Liveness::Dead
  } else {
    Liveness::Alive(0)
  }
}

#[cfg(windows)]
pub(crate) fn process_state(pid: u32) -> Liveness {
  use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, ERROR_INVALID_PARAMETER, FILETIME, STILL_ACTIVE,
  };
  use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
  };
  if pid == 0 {
    return Liveness::Dead;
  }
  // SAFETY: plain Win32 calls with valid out-pointers; the handle is closed
  // before returning.
  unsafe {
    let h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
    if h.is_null() {
      return if GetLastError() == ERROR_INVALID_PARAMETER {
        Liveness::Dead
      } else {
        Liveness::Alive(0)
      };
    }
    let mut code = 0u32;
    let ok = GetExitCodeProcess(h, &mut code);
    let mut created = FILETIME::default();
    let mut exited = FILETIME::default();
    let mut kernel = FILETIME::default();
    let mut user = FILETIME::default();
    let times = GetProcessTimes(h, &mut created, &mut exited, &mut kernel, &mut user);
    CloseHandle(h);
    if ok != 0 && code != STILL_ACTIVE as u32 {
      return Liveness::Dead;
    }
    if times != 0 {
      Liveness::Alive(start_tag(
        ((created.dwHighDateTime as u64) << 32) | created.dwLowDateTime as u64,
      ))
    } else {
      Liveness::Alive(0)
    }
  }
}

/// Whether process `pid` is running (zombies count as dead).
pub(crate) fn pid_alive(pid: u32) -> bool {
  matches!(process_state(pid), Liveness::Alive(_))
}

/// This process's lease-lock word: its start tag in the high half, its pid
/// in the low half.
pub(crate) fn owner_word() -> u64 {
  let pid = current_pid();
  let tag = match process_state(pid) {
    Liveness::Alive(t) => t,
    Liveness::Dead => 0,
  };
  ((tag as u64) << 32) | pid as u64
}

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
