//! A map's segment: creating, opening (trust checks, waiting for a creator,
//! taking over a dead one), naming and unlinking it, and the in-memory and
//! image-backed maps used by tests and fuzzing. See the crate docs,
//! "Segment and names".

use std::sync::atomic::{AtomicU64, Ordering::*};
#[cfg(unix)]
use std::time::{Duration, Instant};

use crate::error::{eincompat, einval, Error};
use crate::layout::*;
use crate::map::LANE_OWNER;
use crate::mem::{Backing, Mem};
use crate::reader::Shard;
use crate::sys;
use crate::{Options, SharedMap};

/// How long an opener waits for a creator that has not yet taken its
/// creation lock (between its `shm_open` and `flock`, microseconds normally)
/// before judging it dead.
#[cfg(unix)]
pub(crate) const STARTING_GRACE: Duration = Duration::from_millis(250);

impl SharedMap {
  /// Creates a new map. `EEXIST` if the name is taken.
  pub fn create(name: &str, opts: &Options) -> Result<Self, Error> {
    let os_id = sys::validate_name(name)?;
    let layout = Self::layout_for(opts)?;
    #[cfg(unix)]
    {
      let creating = match sys::create_segment(&os_id, layout.total, opts.mode) {
        Ok(c) => c,
        Err(sys::CreateError::Exists) => return Err(eexist(name)),
        Err(sys::CreateError::Other(e)) => return Err(e),
      };
      // Until `finish`, `creating` owns the name and holds the creation
      // lock: any early return unlinks the half-made segment.
      let m = creating.mapping();
      if (m.len() as u64) < layout.total {
        return Err(crate::error::eio("mapping smaller than requested"));
      }
      // SAFETY: the mapping is page aligned, `m.len()` bytes, and moves into
      // the returned handle, which drops it after every use of `mem`.
      let mem = unsafe { Mem::new(m.ptr(), m.len() as u64) };
      let (created_at, pid) = Self::initialise(&mem, &layout)?;
      let backing = Backing::Mapped(creating.finish());
      Ok(Self::from_parts(
        backing, mem, layout, name, created_at, pid, opts,
      ))
    }
    #[cfg(windows)]
    {
      let mut shm = match sys::create_segment(&os_id, layout.total, opts.mode) {
        Ok(s) => s,
        Err(sys::CreateError::Exists) => return Err(eexist(name)),
        Err(sys::CreateError::Other(e)) => return Err(e),
      };
      if (shm.len() as u64) < layout.total {
        return Err(crate::error::eio("mapping smaller than requested"));
      }
      // SAFETY: as above; `shm` moves into the handle.
      let mem = unsafe { Mem::new(shm.as_ptr(), shm.len() as u64) };
      let (created_at, pid) = Self::initialise(&mem, &layout)?;
      shm.set_owner(false);
      Ok(Self::from_parts(
        Backing::Mapped(shm),
        mem,
        layout,
        name,
        created_at,
        pid,
        opts,
      ))
    }
  }

  /// A map over a private heap buffer instead of named shared memory: the
  /// same layout, locks and code, shared by nobody (threads of this process
  /// may share the handle). For tests, fuzzing and Miri; `mode` is ignored.
  pub fn in_memory(opts: &Options) -> Result<Self, Error> {
    let layout = Self::layout_for(opts)?;
    let backing = Backing::heap(layout.total)?;
    let mem = backing.mem();
    let (created_at, pid) = Self::initialise(&mem, &layout)?;
    Ok(Self::from_parts(
      backing,
      mem,
      layout,
      "(in memory)",
      created_at,
      pid,
      opts,
    ))
  }

  /// An in-memory map whose bytes are `image` (a copy of a segment, damaged
  /// or not): validated like `open` validates a segment. For fuzzing.
  #[doc(hidden)]
  pub fn debug_from_image(image: &[u8], opts: &Options) -> Result<Self, Error> {
    if (image.len() as u64) < SHARDS_OFF {
      return Err(eincompat("image too small for an lrukit map"));
    }
    let backing = Backing::heap(image.len() as u64)?;
    let mem = backing.mem();
    let mut w = 0;
    while w + 8 <= image.len() {
      let v = u64::from_le_bytes(image[w..w + 8].try_into().unwrap());
      if w < 128 {
        mem.a32(w as u64).store(v as u32, Relaxed);
        mem.a32(w as u64 + 4).store((v >> 32) as u32, Relaxed);
      } else {
        mem.a64(w as u64).store(v, Relaxed);
      }
      w += 8;
    }
    if mem.a32(H_INIT).load(Acquire) != INIT_READY {
      return Err(Error::new("EUNINIT", "the image is not of a ready map"));
    }
    Self::adopt(backing, mem, "(image)", opts)
  }

  pub(crate) fn layout_for(opts: &Options) -> Result<Layout, Error> {
    if opts.mode & !0o777 != 0 || opts.mode & 0o600 != 0o600 {
      return Err(einval(format!(
        "mode {:o}: must be permission bits (≤ 0o777) including owner read/write 0o600",
        opts.mode
      )));
    }
    Layout::compute(&Sizing {
      capacity: opts.capacity,
      memory_size: opts.memory_size,
      avg_key: opts.avg_key_bytes,
      avg_value: opts.avg_value_bytes,
      max_key: opts.max_key_bytes,
      max_value: opts.max_value_bytes,
      shards: opts.shards,
      eviction: opts.eviction,
      default_ttl_ms: opts.default_ttl_ms,
      seed: opts.hash_seed.unwrap_or_else(random_seed),
    })
  }

  /// Writes the header and every shard of a fresh (zeroed) segment, then
  /// publishes it (READY). The header is written with 4-byte stores only,
  /// like the init word openers poll, and read back the same way.
  fn initialise(mem: &Mem, layout: &Layout) -> Result<(u64, u32), Error> {
    let created_at = sys::wall_ms();
    let pid = sys::current_pid();
    let mut fields = [0u8; 128];
    fields[..H_CHECKED_BYTES].copy_from_slice(&layout.header_fields(created_at, pid));
    let sum = header_checksum(&layout.header_fields(created_at, pid));
    fields[H_CHECKSUM as usize..H_CHECKSUM as usize + 8].copy_from_slice(&sum.to_le_bytes());
    for (w, chunk) in fields.chunks_exact(4).enumerate() {
      let off = w as u64 * 4;
      if off != H_INIT {
        mem
          .a32(off)
          .store(u32::from_le_bytes(chunk.try_into().unwrap()), Relaxed);
      }
    }
    #[cfg(feature = "test-hooks")]
    crate::hooks::hit(crate::hooks::point::CREATE);
    for sh in 0..layout.shards {
      Shard {
        m: mem,
        l: layout,
        base: layout.shard_base(sh),
      }
      .init()?;
    }
    // Publish: everything above happens-before any opener's Acquire load.
    mem.a32(H_INIT).store(INIT_READY, Release);
    Ok((created_at, pid))
  }

  /// Opens an existing map with default options (mode 0o600, lock timeout
  /// 5 s). See [`open_with`](Self::open_with).
  pub fn open(name: &str) -> Result<Self, Error> {
    Self::open_with(name, &Options::default())
  }

  /// Opens an existing map with this handle's `opts.lock_timeout`; the other
  /// creation options are ignored except `mode`, which is the most the
  /// segment may grant: a segment not owned by this process's effective
  /// user, or writable by anyone `mode` does not allow, is refused with
  /// `EPERM` before anything is read from it.
  ///
  /// `ENOENT` if missing; `EINCOMPAT` if it is not a compatible lrukit map;
  /// `EUNINIT` if its creator died before it was initialised
  /// ([`open_or_create`](Self::open_or_create) takes such a segment over);
  /// `ETIMEDOUT` if a live creator is still initialising it after
  /// `lock_timeout`.
  pub fn open_with(name: &str, opts: &Options) -> Result<Self, Error> {
    match Self::open_inner(name, opts)? {
      Opened::Map(m) => Ok(m),
      Opened::Uninit { .. } => Err(euninit(name)),
    }
  }

  #[cfg(unix)]
  fn open_inner(name: &str, opts: &Options) -> Result<Opened, Error> {
    let os_id = sys::validate_name(name)?;
    let start = Instant::now();
    let pause = || std::thread::sleep(Duration::from_millis(1));
    loop {
      let waited = start.elapsed();
      let fd = match sys::open_fd(&os_id) {
        Ok(fd) => fd,
        Err(sys::OpenError::NotFound) => return Err(enoent(name)),
        // A non-root opener cannot open a segment whose creator has not set
        // its mode yet; after the grace period it is another user's.
        Err(sys::OpenError::Denied(e)) => {
          if waited < STARTING_GRACE {
            pause();
            continue;
          }
          return Err(e);
        }
        Err(sys::OpenError::Other(e)) => return Err(e),
      };
      let st = sys::stat_fd(&fd, &os_id)?;
      // Mode 0: a creator between `shm_open` and taking its lock.
      let starting = st.mode & 0o777 == 0;
      sys::check_trust(&st, name, opts.mode)?;
      if st.size >= SHARDS_OFF && !starting {
        let m = sys::map_segment(&fd, st.size, &os_id)?;
        // SAFETY: a live shared mapping of `st.size` bytes, page aligned,
        // moved into the handle below or dropped after this block.
        let mem = unsafe { Mem::new(m.ptr(), m.len() as u64) };
        if mem.a32(H_INIT).load(Acquire) == INIT_READY {
          return Self::adopt(Backing::Mapped(m), mem, name, opts).map(Opened::Map);
        }
        let magic = mem.a32(H_MAGIC).load(Relaxed) as u64
          | ((mem.a32(H_MAGIC + 4).load(Relaxed) as u64) << 32);
        if magic != 0 && magic != MAGIC {
          return Err(named(
            name,
            eincompat("not an lrukit shared map (bad magic)"),
          ));
        }
        let version = mem.a32(H_VERSION).load(Relaxed);
        if magic == MAGIC && version != LAYOUT_VERSION {
          return Err(named(
            name,
            eincompat(format!(
              "layout version {version}, this build reads version {LAYOUT_VERSION}"
            )),
          ));
        }
        let init = mem.a32(H_INIT).load(Relaxed);
        if init != INIT_BUSY {
          return Err(named(name, eincompat(format!("unknown init state {init}"))));
        }
      }
      if st.size > 0 && st.size < SHARDS_OFF && !starting {
        // Sized, but too small for any map: not ours (a creator sizes the
        // segment in one step).
        if sys::creator_state(&fd) != sys::Creator::Active {
          return Err(named(
            name,
            eincompat(format!(
              "segment has {} bytes, too small for an lrukit map",
              st.size
            )),
          ));
        }
      }
      // Not ready: is its creator still at work?
      match sys::creator_state(&fd) {
        sys::Creator::Active => {}
        sys::Creator::Gone if starting && waited < STARTING_GRACE => {}
        sys::Creator::Gone => {
          return Ok(Opened::Uninit {
            ino: st.ino,
            dev: st.dev,
          })
        }
        sys::Creator::Unknown => {
          if waited >= opts.lock_timeout {
            return Ok(Opened::Uninit {
              ino: st.ino,
              dev: st.dev,
            });
          }
        }
      }
      if waited >= opts.lock_timeout {
        return Err(Error::new(
          "ETIMEDOUT",
          format!(
            "shared map {name:?} is still being initialised by its creator after {} ms",
            opts.lock_timeout.as_millis()
          ),
        ));
      }
      drop(fd);
      pause();
    }
  }

  #[cfg(windows)]
  fn open_inner(name: &str, opts: &Options) -> Result<Opened, Error> {
    let os_id = sys::validate_name(name)?;
    let deadline = Instant::now() + opts.lock_timeout;
    loop {
      let shm = match sys::open_segment(&os_id) {
        Ok(s) => s,
        Err(sys::OpenError::NotFound) => return Err(enoent(name)),
        Err(sys::OpenError::NotReady(e)) => {
          if Instant::now() >= deadline {
            return Err(named(name, e));
          }
          std::thread::sleep(Duration::from_millis(1));
          continue;
        }
        Err(sys::OpenError::Other(e)) => return Err(e),
      };
      let len = shm.len() as u64;
      if len < SHARDS_OFF {
        return Err(named(
          name,
          eincompat(format!(
            "segment has {len} bytes, too small for an lrukit map"
          )),
        ));
      }
      // SAFETY: as in `create`.
      let mem = unsafe { Mem::new(shm.as_ptr(), len) };
      loop {
        if mem.a32(H_INIT).load(Acquire) == INIT_READY {
          break;
        }
        let init = mem.a32(H_INIT).load(Relaxed);
        if init != INIT_BUSY {
          return Err(named(name, eincompat(format!("unknown init state {init}"))));
        }
        if Instant::now() >= deadline {
          return Ok(Opened::Uninit { ino: 0, dev: 0 });
        }
        std::thread::sleep(Duration::from_millis(1));
      }
      return Self::adopt(Backing::Mapped(shm), mem, name, opts).map(Opened::Map);
    }
  }

  /// Opens the map, creating it if it does not exist. Race-free: when many
  /// processes start at once exactly one creates it (`O_EXCL`) and the others
  /// open it and wait until it is initialised. A segment whose creator died
  /// before initialising it is taken over: removed (by exactly one process,
  /// under its creation lock) and created anew.
  pub fn open_or_create(name: &str, opts: &Options) -> Result<Self, Error> {
    let os_id = sys::validate_name(name)?;
    let start = Instant::now();
    let mut last = None;
    for _ in 0..1000 {
      match Self::create(name, opts) {
        Ok(m) => return Ok(m),
        Err(e) if e.code == "EEXIST" => {}
        Err(e) => return Err(e),
      }
      match Self::open_inner(name, opts) {
        Ok(Opened::Map(m)) => return Ok(m),
        Ok(Opened::Uninit { ino, dev }) => {
          #[cfg(unix)]
          sys::take_over(&os_id, ino, dev)?;
          #[cfg(windows)]
          {
            let _ = (ino, dev, &os_id);
            return Err(euninit(name));
          }
          last = Some(euninit(name));
        }
        // Unlinked between our create and open (a failed creator or an
        // explicit unlink): try to create again.
        Err(e) if e.code == "ENOENT" => last = Some(e),
        Err(e) => return Err(e),
      }
      if start.elapsed() > opts.lock_timeout.max(Duration::from_secs(1)) {
        break;
      }
      std::thread::sleep(Duration::from_millis(1));
    }
    Err(last.unwrap_or_else(|| Error::new("ENOENT", "open_or_create kept racing with unlink")))
  }

  /// Removes the name; returns whether it existed. Processes that have the
  /// map open keep using the old segment; the memory is freed when the last
  /// one closes it. A later `create` makes a new, empty map (on Windows only
  /// once every handle of the old one is closed: named mapping objects live
  /// until then).
  pub fn unlink(name: &str) -> Result<bool, Error> {
    let os_id = sys::validate_name(name)?;
    sys::unlink_segment(&os_id)
  }

  /// A handle over the READY segment `mem` (owned by `backing`), its
  /// header validated and copied into a private `Layout`.
  fn adopt(backing: Backing, mem: Mem, name: &str, opts: &Options) -> Result<Self, Error> {
    let (layout, created_at, creator) =
      Layout::from_header(&read_header(&mem), mem.len()).map_err(|e| named(name, e))?;
    Ok(Self::from_parts(
      backing, mem, layout, name, created_at, creator, opts,
    ))
  }

  fn from_parts(
    backing: Backing,
    mem: Mem,
    layout: Layout,
    name: &str,
    created_at_ms: u64,
    creator_pid: u32,
    opts: &Options,
  ) -> Self {
    let pid = sys::current_pid();
    let lane = claim_lane(&mem, pid);
    SharedMap {
      mem,
      layout,
      name: name.to_string(),
      pid,
      lane,
      created_at_ms,
      creator_pid,
      clock_offset: AtomicU64::new(0),
      clock_fixed: AtomicU64::new(0),
      lock_timeout_ms: AtomicU64::new(
        opts.lock_timeout.as_millis().clamp(1, u64::MAX as u128) as u64
      ),
      _backing: backing,
    }
  }
}

/// Claims a hits/misses lane for this handle: a free lane, else one whose
/// owner died, else the shared lane 0. Lanes are cumulative and updated with
/// atomic adds, so sharing one by mistake (pid reuse) only costs speed.
fn claim_lane(mem: &Mem, pid: u32) -> u32 {
  let n = LANE_COUNT - 1;
  let start = pid % n;
  let owner = |i: u32| mem.a64(LANES_OFF + i as u64 * LANE_BYTES + LANE_OWNER);
  for k in 0..n {
    let i = 1 + (start + k) % n;
    if owner(i).load(Relaxed) == 0
      && owner(i)
        .compare_exchange(0, pid as u64, AcqRel, Relaxed)
        .is_ok()
    {
      return i;
    }
  }
  for k in 0..n {
    let i = 1 + (start + k) % n;
    let o = owner(i).load(Relaxed);
    if o != 0
      && (o > u32::MAX as u64 || !sys::pid_alive(o as u32))
      && owner(i)
        .compare_exchange(o, pid as u64, AcqRel, Relaxed)
        .is_ok()
    {
      return i;
    }
  }
  0
}

/// What `open_inner` found.
enum Opened {
  Map(SharedMap),
  /// A segment whose creator is gone but never made it READY.
  Uninit {
    #[allow(dead_code)]
    ino: u64,
    #[allow(dead_code)]
    dev: u64,
  },
}

/// The first 128 header bytes, read with 4-byte loads (the size they are
/// written with).
pub(crate) fn read_header(mem: &Mem) -> [u8; 128] {
  let mut h = [0u8; 128];
  for (w, chunk) in h.chunks_exact_mut(4).enumerate() {
    chunk.copy_from_slice(&mem.a32(w as u64 * 4).load(Relaxed).to_le_bytes());
  }
  h
}

pub(crate) fn named(name: &str, mut e: Error) -> Error {
  if !e.message.contains(name) {
    e.message = format!("shared map {name:?}: {}", e.message);
  }
  e
}

fn eexist(name: &str) -> Error {
  Error::new(
    "EEXIST",
    format!("a shared map named {name:?} already exists"),
  )
}

pub(crate) fn enoent(name: &str) -> Error {
  Error::new("ENOENT", format!("no shared map named {name:?}"))
}

pub(crate) fn euninit(name: &str) -> Error {
  Error::new(
    "EUNINIT",
    format!(
      "shared map {name:?} exists but was never initialised: its creator died while creating it (SharedMap.openOrCreate takes it over; or unlink it)"
    ),
  )
}
