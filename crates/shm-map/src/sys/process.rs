//! Processes: this process's id, the liveness of others (lock owners,
//! creators), the lease-lock owner word, thread liveness and the pid
//! namespace.

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
/// in the low half. Cached per pid, so a child made by `fork` computes its
/// own instead of using its parent's.
pub(crate) fn owner_word() -> u64 {
  use std::sync::atomic::{AtomicU64, Ordering};
  // (pid << 32 | 1) of the cached word, and the word.
  static FOR: AtomicU64 = AtomicU64::new(0);
  static WORD: AtomicU64 = AtomicU64::new(0);
  let pid = current_pid();
  let key = ((pid as u64) << 32) | 1;
  if FOR.load(Ordering::Acquire) == key {
    return WORD.load(Ordering::Relaxed);
  }
  let tag = match process_state(pid) {
    Liveness::Alive(t) => t,
    Liveness::Dead => 0,
  };
  let word = ((tag as u64) << 32) | pid as u64;
  WORD.store(word, Ordering::Relaxed);
  FOR.store(key, Ordering::Release);
  word
}

/// The process id of thread `tid` (its `Tgid`), if it exists.
#[cfg(target_os = "linux")]
#[allow(dead_code)]
pub(crate) fn tgid_of(tid: u32) -> Option<u32> {
  let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
  status
    .lines()
    .find_map(|l| l.strip_prefix("Tgid:"))
    .and_then(|v| v.trim().parse().ok())
}

/// Whether thread `tid` exists and is not a zombie. Errs on the side of
/// "alive" when /proc will not say.
#[cfg(target_os = "linux")]
#[allow(dead_code)]
pub(crate) fn thread_alive(tid: u32) -> bool {
  if tid == 0 || tid > i32::MAX as u32 {
    return false;
  }
  match std::fs::read_to_string(format!("/proc/{tid}/status")) {
    Ok(status) => !status
      .lines()
      .find_map(|l| l.strip_prefix("State:"))
      .map(|v| {
        let v = v.trim_start();
        v.starts_with('Z') || v.starts_with('X') || v.starts_with('x')
      })
      .unwrap_or(false),
    Err(e) => e.kind() != std::io::ErrorKind::NotFound,
  }
}

/// An id of this process's pid namespace (the inode of
/// `/proc/self/ns/pid`), 0 when unknown. Lock owners are only judged dead
/// by processes of the same namespace.
#[allow(dead_code)]
pub(crate) fn pid_namespace() -> u64 {
  #[cfg(target_os = "linux")]
  {
    use std::os::unix::fs::MetadataExt;
    static NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NS.get_or_init(|| {
      std::fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .unwrap_or(0)
    })
  }
  #[cfg(not(target_os = "linux"))]
  0
}
