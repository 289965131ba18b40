//! Named segments: names, POSIX shared memory objects (Windows: file
//! mappings), permissions and the trust check, page reservation, creation
//! locks and take-over, unlink.

use crate::error::{eio, Error};
#[cfg(windows)]
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

fn errno_name(e: i32) -> String {
  std::io::Error::from_raw_os_error(e).to_string()
}

// ---- unix: POSIX shared memory through libc ----------------------------------

/// Whether creators hold an advisory `flock` on the segment while they
/// initialise it, so that openers can tell a live creator from a dead one.
/// Linux and FreeBSD support `flock` on shared memory descriptors; macOS
/// does not, and there a creator that dies before READY is only reported
/// once the opener's wait runs out.
#[cfg(unix)]
pub(crate) const CREATION_LOCK: bool = cfg!(any(target_os = "linux", target_os = "freebsd"));

#[cfg(unix)]
fn cname(os_id: &str) -> Result<std::ffi::CString, Error> {
  std::ffi::CString::new(os_id).map_err(|_| eio("bad segment name"))
}

#[cfg(unix)]
fn last_errno() -> i32 {
  std::io::Error::last_os_error()
    .raw_os_error()
    .unwrap_or(libc::EIO)
}

/// An open descriptor, closed on drop (which also drops its `flock`).
#[cfg(unix)]
pub(crate) struct Fd(libc::c_int);

#[cfg(unix)]
impl Drop for Fd {
  fn drop(&mut self) {
    // SAFETY: we own the descriptor and close it once.
    unsafe { libc::close(self.0) };
  }
}

/// A `MAP_SHARED` mapping, unmapped on drop.
#[cfg(unix)]
pub(crate) struct Mapping {
  ptr: *mut u8,
  len: usize,
}

#[cfg(unix)]
impl Mapping {
  pub(crate) fn ptr(&self) -> *mut u8 {
    self.ptr
  }
  pub(crate) fn len(&self) -> usize {
    self.len
  }
}

#[cfg(unix)]
impl Drop for Mapping {
  fn drop(&mut self) {
    // SAFETY: `ptr..ptr+len` is a mapping made by `map_fd` and unmapped once.
    unsafe { libc::munmap(self.ptr.cast(), self.len) };
  }
}

#[cfg(unix)]
fn map_fd(fd: &Fd, len: u64, os_id: &str) -> Result<Mapping, Error> {
  let len = usize::try_from(len).map_err(|_| eio("segment too large for this address space"))?;
  // SAFETY: mapping `len` bytes of an open descriptor at offset 0; the
  // result is checked against MAP_FAILED.
  let p = unsafe {
    libc::mmap(
      std::ptr::null_mut(),
      len,
      libc::PROT_READ | libc::PROT_WRITE,
      libc::MAP_SHARED,
      fd.0,
      0,
    )
  };
  if p == libc::MAP_FAILED {
    return Err(eio(format!(
      "mmap({os_id}, {len} bytes): {}",
      errno_name(last_errno())
    )));
  }
  Ok(Mapping { ptr: p.cast(), len })
}

#[cfg(unix)]
fn flock(fd: &Fd, op: libc::c_int) -> Result<(), i32> {
  // SAFETY: plain syscall on an open descriptor.
  if unsafe { libc::flock(fd.0, op) } == 0 {
    Ok(())
  } else {
    Err(last_errno())
  }
}

/// A segment being created: it holds the creation lock and owns the name
/// until [`Creating::finish`]; dropped before that (an error on the way),
/// it unlinks the half-made segment, so waiting openers see `ENOENT` and
/// `open_or_create` retries the create.
#[cfg(unix)]
pub(crate) struct Creating {
  fd: Fd,
  os_id: String,
  mapping: Option<Mapping>,
}

#[cfg(unix)]
impl Creating {
  pub(crate) fn mapping(&self) -> &Mapping {
    self.mapping.as_ref().expect("mapped in create_segment")
  }

  /// The map is READY: give up the name and drop the creation lock.
  pub(crate) fn finish(mut self) -> Mapping {
    let m = self.mapping.take().expect("mapped in create_segment");
    self.os_id.clear();
    // Explicitly: the mapping keeps the open file description (and with it
    // the flock) alive after the descriptor is closed.
    if CREATION_LOCK {
      let _ = flock(&self.fd, libc::LOCK_UN);
    }
    m
  }
}

#[cfg(unix)]
impl Drop for Creating {
  fn drop(&mut self) {
    if !self.os_id.is_empty() {
      // Unlink while still holding the creation lock: no taker can act on
      // this segment meanwhile.
      let _ = unlink_segment(&self.os_id);
    }
    // Then the fields drop: the mapping, and the descriptor (its flock).
  }
}

/// Creates the segment exclusively and returns it mapped, creation lock
/// held. Sequence (Linux/FreeBSD): `shm_open(O_CREAT | O_EXCL, 0)` — mode 0
/// tells openers "creator starting, lock not yet taken" —, `flock(LOCK_EX)`,
/// `fchmod(mode)` (exactly `mode`, whatever the umask), `ftruncate`, page
/// reservation, `mmap`.
#[cfg(unix)]
pub(crate) fn create_segment(os_id: &str, size: u64, mode: u32) -> Result<Creating, CreateError> {
  let c = cname(os_id).map_err(CreateError::Other)?;
  let initial: libc::c_uint = if CREATION_LOCK { 0 } else { 0o600 };
  // SAFETY: valid NUL-terminated name; the fd is owned by `Fd` below.
  let fd = unsafe {
    libc::shm_open(
      c.as_ptr(),
      libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
      initial,
    )
  };
  if fd < 0 {
    let e = last_errno();
    return Err(if e == libc::EEXIST {
      CreateError::Exists
    } else {
      CreateError::Other(eio(format!(
        "cannot create shared memory {os_id} of {size} bytes: {}",
        errno_name(e)
      )))
    });
  }
  let fd = Fd(fd);
  // SAFETY: F_SETFD on our descriptor: a program this process execs must
  // not inherit the creation lock.
  unsafe { libc::fcntl(fd.0, libc::F_SETFD, libc::FD_CLOEXEC) };
  let mut cr = Creating {
    fd,
    os_id: os_id.to_string(),
    mapping: None,
  };
  let other = CreateError::Other;
  if CREATION_LOCK {
    flock(&cr.fd, libc::LOCK_EX)
      .map_err(|e| other(eio(format!("flock({os_id}): {}", errno_name(e)))))?;
  }
  set_mode(&cr.fd, os_id, mode).map_err(other)?;
  let off = libc::off_t::try_from(size).map_err(|_| other(eio("segment too large")))?;
  // SAFETY: plain syscall on our descriptor.
  if unsafe { libc::ftruncate(cr.fd.0, off) } != 0 {
    return Err(other(eio(format!(
      "ftruncate({os_id}, {size}): {}",
      errno_name(last_errno())
    ))));
  }
  #[cfg(target_os = "linux")]
  reserve_pages(&cr.fd, size).map_err(other)?;
  cr.mapping = Some(map_fd(&cr.fd, size, os_id).map_err(other)?);
  Ok(cr)
}

/// Sets exactly `mode` on a new segment (Linux/FreeBSD). macOS has no
/// `fchmod` for POSIX shared memory (iceoryx2 #156), so there only 0600 works.
#[cfg(unix)]
fn set_mode(fd: &Fd, os_id: &str, mode: u32) -> Result<(), Error> {
  if !CREATION_LOCK && mode == 0o600 {
    return Ok(());
  }
  // SAFETY: plain syscall on our descriptor.
  if unsafe { libc::fchmod(fd.0, mode as libc::mode_t) } != 0 {
    let e = last_errno();
    if cfg!(target_os = "macos") && e == libc::EINVAL {
      return Err(crate::error::einval(format!(
        "mode {mode:o} cannot be applied on macOS (POSIX shared memory has no fchmod there); segments are 0600"
      )));
    }
    return Err(eio(format!("fchmod({os_id}, {mode:o}): {}", errno_name(e))));
  }
  Ok(())
}

/// Linux: `posix_fallocate` on the tmpfs object, so a full `/dev/shm` fails
/// `create` with ENOSPC instead of SIGBUS on first touch (moby #29492;
/// triton python_backend PR #48 does the same). Where the filesystem lacks
/// fallocate, write one byte per page through the fd instead (a failed
/// write returns ENOSPC, unlike a store to the mapping which raises SIGBUS).
#[cfg(target_os = "linux")]
fn reserve_pages(fd: &Fd, size: u64) -> Result<(), Error> {
  // SAFETY: fd is a valid open descriptor of at least `size` bytes.
  let rc = unsafe { libc::posix_fallocate(fd.0, 0, size as libc::off_t) };
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
    let n = unsafe { libc::pwrite(fd.0, zero.as_ptr().cast(), 1, off as libc::off_t) };
    if n != 1 {
      return Err(nospace(size, last_errno()));
    }
    off += 4096;
  }
  Ok(())
}

#[cfg(target_os = "linux")]
fn nospace(size: u64, errno: i32) -> Error {
  eio(format!(
    "cannot reserve {size} bytes of shared memory: {} (is /dev/shm full? Docker's default is 64 MB, see --shm-size)",
    errno_name(errno)
  ))
}

#[cfg(unix)]
pub(crate) enum OpenError {
  NotFound,
  /// `EACCES`: another user's segment, or (non-root openers) a segment whose
  /// creator has not yet set its mode.
  Denied(Error),
  Other(Error),
}

/// Opens the segment's descriptor (no mapping yet).
#[cfg(unix)]
pub(crate) fn open_fd(os_id: &str) -> Result<Fd, OpenError> {
  let c = cname(os_id).map_err(OpenError::Other)?;
  // SAFETY: valid NUL-terminated name; the fd is owned by `Fd` below.
  let fd = unsafe { libc::shm_open(c.as_ptr(), libc::O_RDWR, 0 as libc::c_uint) };
  if fd >= 0 {
    let fd = Fd(fd);
    // SAFETY: F_SETFD on our descriptor.
    unsafe { libc::fcntl(fd.0, libc::F_SETFD, libc::FD_CLOEXEC) };
    return Ok(fd);
  }
  let e = last_errno();
  Err(match e {
    libc::ENOENT => OpenError::NotFound,
    libc::EACCES => OpenError::Denied(Error::new(
      "EPERM",
      format!(
        "shared memory {os_id} exists but this user may not open it (another user's segment?)"
      ),
    )),
    _ => OpenError::Other(eio(format!("shm_open({os_id}): {}", errno_name(e)))),
  })
}

/// What `fstat` says about a segment.
#[cfg(unix)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegStat {
  pub size: u64,
  pub mode: u32,
  pub uid: u32,
  pub ino: u64,
  pub dev: u64,
}

// `st_mode` and the S_IF* constants are u16 on some targets.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)]
pub(crate) fn stat_fd(fd: &Fd, os_id: &str) -> Result<SegStat, Error> {
  // SAFETY: `stat` is plain data; all-zero is a valid value.
  let mut st: libc::stat = unsafe { std::mem::zeroed() };
  // SAFETY: valid descriptor and out-pointer.
  if unsafe { libc::fstat(fd.0, &mut st) } != 0 {
    return Err(eio(format!("fstat({os_id}): {}", errno_name(last_errno()))));
  }
  if cfg!(target_os = "linux") && (st.st_mode as u32 & libc::S_IFMT as u32) != libc::S_IFREG as u32
  {
    return Err(Error::new(
      "EPERM",
      format!("shared memory {os_id} is not a regular shared memory object"),
    ));
  }
  Ok(SegStat {
    size: st.st_size.max(0) as u64,
    mode: st.st_mode as u32 & 0o7777,
    uid: st.st_uid as u32,
    ino: st.st_ino as u64,
    dev: st.st_dev as u64,
  })
}

#[cfg(unix)]
pub(crate) fn effective_uid() -> u32 {
  // SAFETY: geteuid cannot fail.
  unsafe { libc::geteuid() as u32 }
}

/// The trust rule: a segment is used only if this process's effective user
/// owns it and its mode grants write to nobody beyond `accept_mode`.
#[cfg(unix)]
pub(crate) fn check_trust(st: &SegStat, name: &str, accept_mode: u32) -> Result<(), Error> {
  let euid = effective_uid();
  let extra_write = st.mode & 0o022 & !(accept_mode & 0o022);
  if st.uid != euid || extra_write != 0 || st.mode & 0o7000 != 0 {
    return Err(Error::new(
      "EPERM",
      format!(
        "refusing shared map {name:?}: its segment is owned by uid {} with mode {:o}; this process (uid {euid}) uses only segments it owns that no other user can write (accepted mode {:o})",
        st.uid, st.mode, accept_mode
      ),
    ));
  }
  Ok(())
}

/// Maps an opened segment (after [`check_trust`]).
#[cfg(unix)]
pub(crate) fn map_segment(fd: &Fd, len: u64, os_id: &str) -> Result<Mapping, Error> {
  map_fd(fd, len, os_id)
}

/// Whether the creator of a not-yet-ready segment is still at work.
#[cfg(unix)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Creator {
  /// It holds the creation lock.
  Active,
  /// Nobody holds the creation lock: the creator finished or died.
  Gone,
  /// This platform cannot tell.
  Unknown,
}

#[cfg(unix)]
pub(crate) fn creator_state(fd: &Fd) -> Creator {
  if !CREATION_LOCK {
    return Creator::Unknown;
  }
  match flock(fd, libc::LOCK_SH | libc::LOCK_NB) {
    Ok(()) => {
      let _ = flock(fd, libc::LOCK_UN);
      Creator::Gone
    }
    Err(e) if e == libc::EWOULDBLOCK || e == libc::EINTR => Creator::Active,
    Err(_) => Creator::Unknown,
  }
}

/// Removes the name of a segment whose creator died before READY, if the
/// name still refers to that segment (`ino`, `dev`) and nobody else is
/// taking it over. Race-free: the remover holds the segment's creation lock
/// exclusively while it re-checks the name and unlinks it, so of several
/// processes that found the same dead creator, the first removes the name
/// and the others find it gone or pointing at a new segment.
#[cfg(unix)]
pub(crate) fn take_over(os_id: &str, ino: u64, dev: u64) -> Result<(), Error> {
  let fd = match open_fd(os_id) {
    Ok(fd) => fd,
    Err(OpenError::NotFound) => return Ok(()),
    Err(OpenError::Denied(e)) | Err(OpenError::Other(e)) => return Err(e),
  };
  if flock(&fd, libc::LOCK_EX | libc::LOCK_NB).is_err() {
    return Ok(());
  }
  let held = stat_fd(&fd, os_id)?;
  // Does the name still refer to the segment we hold? Open it afresh.
  let now = match open_fd(os_id) {
    Ok(f) => stat_fd(&f, os_id)?,
    Err(OpenError::NotFound) => return Ok(()),
    Err(OpenError::Denied(e)) | Err(OpenError::Other(e)) => return Err(e),
  };
  if (held.ino, held.dev) != (ino, dev) || (now.ino, now.dev) != (ino, dev) {
    return Ok(());
  }
  if held.size >= crate::layout::HEADER_BYTES {
    // The creator may have finished after all.
    let m = map_fd(&fd, crate::layout::HEADER_BYTES, os_id)?;
    // SAFETY: a 4096-byte shared mapping, page aligned, alive for `mem`'s use.
    let mem = unsafe { crate::mem::Mem::new(m.ptr(), m.len() as u64) };
    if mem
      .a32(crate::layout::H_INIT)
      .load(std::sync::atomic::Ordering::Acquire)
      == crate::layout::INIT_READY
    {
      return Ok(());
    }
  }
  unlink_segment(os_id)?;
  Ok(())
}

// ---- Windows: the `shared_memory` crate's file mappings ---------------------

/// Creates the segment exclusively. The returned handle still owns the
/// name, so dropping it on a later error unlinks the half-made segment.
#[cfg(windows)]
pub(crate) fn create_segment(os_id: &str, size: u64, _mode: u32) -> Result<Shmem, CreateError> {
  match ShmemConf::new().size(size as usize).os_id(os_id).create() {
    Ok(s) => Ok(s),
    Err(ShmemError::MappingIdExists) => Err(CreateError::Exists),
    Err(e) => Err(CreateError::Other(eio(format!(
      "cannot create shared memory {os_id} of {size} bytes: {}",
      describe(&e)
    )))),
  }
}

#[cfg(windows)]
fn describe(e: &ShmemError) -> String {
  match e {
    ShmemError::MapCreateFailed(n)
    | ShmemError::MapOpenFailed(n)
    | ShmemError::UnknownOsError(n) => {
      format!("{e} ({})", errno_name(*n as i32))
    }
    _ => e.to_string(),
  }
}

#[cfg(windows)]
pub(crate) enum OpenError {
  NotFound,
  /// The backing file is still empty (its creator has not sized it yet):
  /// retried until the init deadline.
  NotReady(Error),
  Other(Error),
}

#[cfg(windows)]
pub(crate) fn open_segment(os_id: &str) -> Result<Shmem, OpenError> {
  match ShmemConf::new().os_id(os_id).open() {
    Ok(s) => Ok(s),
    // ERROR_FILE_NOT_FOUND
    Err(ShmemError::MapOpenFailed(2)) => Err(OpenError::NotFound),
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
