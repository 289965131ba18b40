//! [`SharedMap::describe`]: what a segment's header says, for tools that
//! list and inspect maps (the `lrukit` command line), read without opening
//! the map and without needing a layout this build can use.
//!
//! The trust rule of `open` holds: the segment is `fstat`ed and refused with
//! `EPERM` (another user's, or writable beyond the accepted mode) before a
//! byte of it is read. Only the first 128 bytes are mapped and read, with
//! the 4-byte loads the header is written with; nothing is written. A
//! foreign or damaged header is reported in [`SegmentInfo::problem`], never
//! parsed further.

#[cfg(unix)]
use std::sync::atomic::Ordering::*;
#[cfg(unix)]
use std::time::Instant;

#[cfg(unix)]
use crate::error::eincompat;
use crate::error::Error;
#[cfg(unix)]
use crate::layout::*;
#[cfg(unix)]
use crate::mem::Mem;
#[cfg(unix)]
use crate::segment::{enoent, euninit, named, read_header, STARTING_GRACE};
use crate::sys;
use crate::{Options, SharedMap};

/// The header bytes `describe` reads (the fields every layout version so far
/// starts with, up to the checksum).
#[cfg(unix)]
const HEADER_READ: u64 = 128;

/// Whether a segment's creator finished initialising it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitState {
  /// Initialised (the init word says READY).
  Ready,
  /// Not ready, and its creator holds the creation lock: it is at work.
  Creating,
  /// Not ready, and nobody holds the creation lock: its creator died
  /// (`open` reports `EUNINIT`; `open_or_create` takes it over).
  CreatorDied,
  /// Not ready, and this platform cannot tell whether its creator is alive
  /// (macOS has no `flock` on shared memory).
  NotReady,
  /// Not an lrukit header, or an init word no version writes.
  Unknown,
}

impl InitState {
  /// A short name: `ready`, `creating`, `creator-died`, `not-ready`,
  /// `unknown`.
  pub fn as_str(self) -> &'static str {
    match self {
      InitState::Ready => "ready",
      InitState::Creating => "creating",
      InitState::CreatorDied => "creator-died",
      InitState::NotReady => "not-ready",
      InitState::Unknown => "unknown",
    }
  }
}

/// What [`SharedMap::describe`] found. The header fields are `None` when the
/// header is not of this build's layout version (their meaning is then
/// unknown) or not written yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
  /// The map's name.
  pub name: String,
  /// Bytes of the segment (`fstat`).
  pub size: u64,
  /// Permission bits of the segment.
  pub mode: u32,
  /// Owner's uid.
  pub uid: u32,
  /// The header starts with lrukit's magic.
  pub magic_ok: bool,
  /// The header's layout version (when the magic is lrukit's).
  pub layout_version: Option<u32>,
  /// The layout version this build reads.
  pub supported_version: u32,
  /// Whether the segment is ready, being created, or abandoned.
  pub state: InitState,
  /// This build can open it: ready, and its header passes every check
  /// `open` makes (version, checksum, hash, lock kind, sizes).
  pub compatible: bool,
  /// The total size the header records.
  pub total_size: Option<u64>,
  pub shards: Option<u32>,
  /// When it was created, ms since the epoch.
  pub created_at_ms: Option<u64>,
  pub creator_pid: Option<u32>,
  /// The lock ABI id the header records (see [`SegmentInfo::lock_kind_name`]).
  pub lock_kind: Option<u32>,
  /// Why this build cannot open it (`EINCOMPAT`, `EUNINIT`), when it cannot
  /// and the reason is in the segment rather than in its state of creation.
  pub problem: Option<Error>,
}

impl SegmentInfo {
  /// What [`lock_kind`](Self::lock_kind) names (`glibc robust pthread
  /// mutex`, `owner-pid lease lock`, …).
  pub fn lock_kind_name(&self) -> Option<&'static str> {
    self.lock_kind.map(crate::lock::lock_kind_name)
  }
}

impl SharedMap {
  /// Describes the segment of map `name` from its header, with the default
  /// accepted mode (0o600). See [`describe_with`](Self::describe_with).
  pub fn describe(name: &str) -> Result<SegmentInfo, Error> {
    Self::describe_with(name, &Options::default())
  }

  /// Describes the segment of map `name` from its header alone: whether it
  /// is an lrukit map of this build's layout, ready or not, and the header's
  /// sizes, creation time, creator and lock kind. Of `opts` only `mode` is
  /// read: as in [`open_with`](Self::open_with), a segment not owned by this
  /// process's effective user or writable beyond `mode` is refused with
  /// `EPERM` before anything is read. `ENOENT` if there is no such segment,
  /// `ENAME` for an invalid name; a foreign, damaged or other-version header
  /// is no error but a [`SegmentInfo::problem`]. Never waits for a creator
  /// (beyond the 250 ms a creator has to take its creation lock).
  ///
  /// Windows has no owner to check: there it fails with `EINVAL`.
  pub fn describe_with(name: &str, opts: &Options) -> Result<SegmentInfo, Error> {
    let os_id = sys::validate_name(name)?;
    describe_segment(name, &os_id, opts.mode)
  }
}

#[cfg(windows)]
fn describe_segment(name: &str, _os_id: &str, _mode: u32) -> Result<SegmentInfo, Error> {
  Err(crate::error::einval(format!(
    "shared map {name:?}: describe needs POSIX shared memory (Linux, macOS, FreeBSD)"
  )))
}

#[cfg(unix)]
fn describe_segment(name: &str, os_id: &str, accept_mode: u32) -> Result<SegmentInfo, Error> {
  let start = Instant::now();
  loop {
    let fd = match sys::open_fd(os_id) {
      Ok(fd) => fd,
      Err(sys::OpenError::NotFound) => return Err(enoent(name)),
      // A creator that has not set its mode yet, or another user's.
      Err(sys::OpenError::Denied(e)) => {
        if start.elapsed() < STARTING_GRACE {
          std::thread::sleep(std::time::Duration::from_millis(1));
          continue;
        }
        return Err(named(name, e));
      }
      Err(sys::OpenError::Other(e)) => return Err(named(name, e)),
    };
    let st = sys::stat_fd(&fd, os_id).map_err(|e| named(name, e))?;
    sys::check_trust(&st, name, accept_mode)?;
    // Mode 0: a creator between `shm_open` and its creation lock; give it
    // the grace `open` gives before judging it dead.
    let starting = st.mode & 0o777 == 0;
    let creator = sys::creator_state(&fd);
    if starting && creator != sys::Creator::Active && start.elapsed() < STARTING_GRACE {
      drop(fd);
      std::thread::sleep(std::time::Duration::from_millis(1));
      continue;
    }
    return read_info(name, os_id, &fd, st, creator);
  }
}

#[cfg(unix)]
fn read_info(
  name: &str,
  os_id: &str,
  fd: &sys::Fd,
  st: sys::SegStat,
  creator: sys::Creator,
) -> Result<SegmentInfo, Error> {
  let not_ready = match creator {
    sys::Creator::Active => InitState::Creating,
    sys::Creator::Gone => InitState::CreatorDied,
    sys::Creator::Unknown => InitState::NotReady,
  };
  let mut info = SegmentInfo {
    name: name.to_string(),
    size: st.size,
    mode: st.mode,
    uid: st.uid,
    magic_ok: false,
    layout_version: None,
    supported_version: LAYOUT_VERSION,
    state: not_ready,
    compatible: false,
    total_size: None,
    shards: None,
    created_at_ms: None,
    creator_pid: None,
    lock_kind: None,
    problem: None,
  };
  let died = |mut info: SegmentInfo| {
    if info.state == InitState::CreatorDied {
      info.problem = Some(euninit(name));
    }
    info
  };
  if st.size < HEADER_READ {
    // Empty: a creator before `ftruncate` (at work or dead). Sized but too
    // small: not ours, unless its creator is still at work.
    if st.size > 0 && creator != sys::Creator::Active {
      info.state = InitState::Unknown;
      info.problem = Some(named(
        name,
        eincompat(format!(
          "segment has {} bytes, too small for an lrukit map",
          st.size
        )),
      ));
      return Ok(info);
    }
    return Ok(died(info));
  }
  let m = sys::map_segment(fd, HEADER_READ, os_id).map_err(|e| named(name, e))?;
  // SAFETY: a live shared mapping of `HEADER_READ` bytes, inside the
  // segment (`st.size >= HEADER_READ`), dropped after the last use of `mem`
  // at the end of this function.
  let mem = unsafe { Mem::new(m.ptr(), HEADER_READ) };
  let init = mem.a32(H_INIT).load(Acquire);
  let h = read_header(&mem);
  let u32_at = |off: u64| u32::from_le_bytes(h[off as usize..off as usize + 4].try_into().unwrap());
  let u64_at = |off: u64| u64::from_le_bytes(h[off as usize..off as usize + 8].try_into().unwrap());
  let magic = u64_at(H_MAGIC);
  info.magic_ok = magic == MAGIC;
  if magic == 0 && init == INIT_BUSY {
    // The creator has not written the header yet (or died first).
    return Ok(died(info));
  }
  if !info.magic_ok {
    info.state = InitState::Unknown;
    info.problem = Some(named(
      name,
      eincompat("not an lrukit shared map (bad magic)"),
    ));
    return Ok(info);
  }
  let version = u32_at(H_VERSION);
  info.layout_version = Some(version);
  info.state = match init {
    INIT_READY => InitState::Ready,
    INIT_BUSY => not_ready,
    _ => InitState::Unknown,
  };
  if version != LAYOUT_VERSION {
    info.problem = Some(named(
      name,
      eincompat(format!(
        "layout version {version}, this build reads version {LAYOUT_VERSION}"
      )),
    ));
    return Ok(info);
  }
  info.total_size = Some(u64_at(H_TOTAL));
  info.shards = Some(u32_at(H_SHARDS));
  info.created_at_ms = Some(u64_at(H_CREATED_AT));
  info.creator_pid = Some(u32_at(H_CREATOR_PID));
  info.lock_kind = Some(u32_at(H_LOCK_KIND));
  match info.state {
    InitState::Ready => match Layout::from_header(&h, st.size) {
      Ok(_) => info.compatible = true,
      Err(e) => info.problem = Some(named(name, e)),
    },
    InitState::Unknown => {
      info.problem = Some(named(name, eincompat(format!("unknown init state {init}"))))
    }
    _ => info = died(info),
  }
  Ok(info)
}
