//! The public [`SharedMap`] handle.

use std::sync::atomic::{fence, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

use crate::error::{ecorrupt, eincompat, einval, Error};
use crate::layout::*;
use crate::lock::{self, Acquired, LockCtx, LockError};
use crate::mem::{Backing, Shared64};
use crate::reader::{expired, Mem, RawEntry, Shard};
use crate::sys;
use crate::value::{decode, value_ref, Encoded, Value, ValueRef, TAG_BIGINT, TAG_NUMBER};
use crate::writer::{Fault, Found, Guard};

/// Creation options. Only [`SharedMap::create`] (and the creating branch of
/// [`SharedMap::open_or_create`]) reads them; an opened map has the options
/// it was created with ([`SharedMap::options`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
  /// Most entries (optional). Without `memory_size`, the map is sized for
  /// this many entries of `avg_key_bytes` + `avg_value_bytes`. Enforced per
  /// shard (`ceil(capacity / shards)` each), so a map may evict or report
  /// `EFULL` slightly before `capacity` entries when keys hash unevenly.
  pub capacity: Option<u32>,
  /// The segment's size in bytes (the memory budget). Without `capacity`,
  /// the index is sized for entries of the average sizes that fill it.
  pub memory_size: Option<u64>,
  /// Average key and value sizes the map is sized for (defaults 32 and 256
  /// bytes). They reserve nothing per entry; they only split the memory
  /// between the index and the entries.
  pub avg_key_bytes: u32,
  pub avg_value_bytes: u32,
  /// Longest key in bytes (default 256, at most 65535). A limit only.
  pub max_key_bytes: u32,
  /// Longest string/bytes/json value in bytes (default 1 MiB, at most 64
  /// MiB). A limit only: an entry takes the bytes it needs. An entry must
  /// also fit in half of its shard's ring.
  pub max_value_bytes: u32,
  pub eviction: Eviction,
  /// TTL applied by writes that pass `ttl_ms: None`; 0 = no expiry.
  pub default_ttl_ms: u64,
  /// Permission bits of the segment (default 0o600; must include 0o600).
  /// Linux/FreeBSD: applied with `fchmod`. macOS: only 0o600 is possible
  /// (no `fchmod` for POSIX shared memory; other modes fail with `EINVAL`).
  /// Windows: ignored (the mapping's backing file gets default security).
  pub mode: u32,
  /// Shard count (a power of two ≤ capacity and ≤ 1024); `None` picks
  /// `max(16, next_power_of_two(2 × cpus))` capped at 64 and at capacity.
  pub shards: Option<u32>,
  /// How long an operation of this handle waits for a shard lock held by
  /// another process before `ETIMEDOUT` (default 5 s), measured on the
  /// monotonic clock over the whole wait. Also bounds how long `open` waits
  /// for a live creator to finish. A holder that died is detected sooner.
  /// Per handle: read by `create`, `open_with` and `open_or_create`.
  pub lock_timeout: Duration,
  /// The hash seed of a new map; `None` (the default) draws a random one.
  /// Tests that need the same layout decisions run after run fix it.
  #[doc(hidden)]
  pub hash_seed: Option<u64>,
}

impl Options {
  /// Defaults with the given capacity.
  pub fn new(capacity: u32) -> Self {
    Options {
      capacity: Some(capacity),
      ..Options::default()
    }
  }
}

impl Default for Options {
  fn default() -> Self {
    Options {
      capacity: None,
      memory_size: None,
      avg_key_bytes: DEFAULT_AVG_KEY_BYTES,
      avg_value_bytes: DEFAULT_AVG_VALUE_BYTES,
      max_key_bytes: DEFAULT_MAX_KEY_BYTES,
      max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
      eviction: Eviction::Lru,
      default_ttl_ms: 0,
      mode: 0o600,
      shards: None,
      lock_timeout: lock::DEFAULT_TIMEOUT,
      hash_seed: None,
    }
  }
}

/// Counters and sizes. Counters are totals over all processes since the map
/// was created (hits and misses may lag by the operations in flight).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
  /// Entries stored (expired entries not yet reclaimed included).
  pub size: u64,
  /// Most entries the index holds (`cap per shard × shards`).
  pub capacity: u64,
  /// Size of the shared segment.
  pub memory_bytes: u64,
  /// Bytes of the shards' rings (where entries are stored).
  pub ring_bytes: u64,
  /// Key + value bytes of the stored entries (the payload).
  pub allocated_bytes: u64,
  /// Ring bytes in use: live records (headers and padding included) and
  /// the garbage of deleted and replaced entries not yet reclaimed.
  pub used_bytes: u64,
  /// Ring bytes of live records.
  pub live_record_bytes: u64,
  /// Ring bytes free (`ring_bytes − used_bytes`).
  pub free_bytes: u64,
  pub hits: u64,
  pub misses: u64,
  pub sets: u64,
  pub deletes: u64,
  /// Evictions of every reason (`room + capacity + manual`).
  pub evictions: u64,
  /// Entries evicted to make room in the ring.
  pub evictions_room: u64,
  /// Entries evicted because their shard indexed its most entries.
  pub evictions_capacity: u64,
  /// Entries evicted by `evict_older_than`.
  pub evictions_manual: u64,
  /// Expired entries reclaimed.
  pub expirations: u64,
  /// Live entries moved from a ring's tail to its head (second chances).
  pub moves: u64,
  /// Times a lock was found held by a dead process (each such death is
  /// counted once, then its shard repaired).
  pub lock_recoveries: u64,
  /// Completed shard rebuilds (after lock recoveries, and for damage found
  /// by an operation). A recoverer killed during its own repair counts a
  /// recovery but no repair, so this can be below `lock_recoveries`.
  pub repairs: u64,
  pub shards: u64,
}

/// Result of [`SharedMap::verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
  pub ok: bool,
  pub problems: Vec<String>,
}

/// Optimistic read attempts before a reader takes the shard lock.
const READ_RETRIES: u32 = 64;
/// Snapshot attempts of a whole shard (`keys`/`entries`) before locking.
const SNAPSHOT_RETRIES: u32 = 4;
/// How long an opener waits for a creator that has not yet taken its
/// creation lock (between its `shm_open` and `flock`, microseconds normally)
/// before judging it dead.
#[cfg(unix)]
const STARTING_GRACE: Duration = Duration::from_millis(250);
/// A reader refreshes an entry's access time at most this often.
const ACCESS_INTERVAL_MS: u64 = 1000;

// Per-handle counter lanes (hits/misses), one cache line each.
const LANE_OWNER: u64 = 0;
const LANE_HITS: u64 = 8;
const LANE_MISSES: u64 = 16;

/// A handle on a named shared map. Cheap to share between threads
/// (`Send + Sync`); each process (or thread) may also open its own handle.
pub struct SharedMap {
  mem: Mem,
  layout: Layout,
  name: String,
  pid: u32,
  lane: u32,
  created_at_ms: u64,
  creator_pid: u32,
  clock_offset: AtomicU64,
  /// A fixed clock (ms) for tests; 0 = the wall clock.
  clock_fixed: AtomicU64,
  lock_timeout_ms: AtomicU64,
  /// Keeps the mapping alive; dropped last.
  _backing: Backing,
}

// SAFETY: `Backing` is !Send/!Sync only because it holds a raw pointer to
// the mapping. The mapping stays valid until the handle is dropped, and this
// crate accesses it exclusively through atomic operations (or under a
// process-shared lock, still with atomics), so using it from several threads
// at once is no different from using it from several processes. The
// backing itself is only touched by `Drop`.
unsafe impl Send for SharedMap {}
// SAFETY: see `Send` above.
unsafe impl Sync for SharedMap {}

impl Drop for SharedMap {
  fn drop(&mut self) {
    if self.lane != 0 {
      let _ = self
        .lane_word(LANE_OWNER)
        .compare_exchange(self.pid as u64, 0, AcqRel, Relaxed);
    }
  }
}

impl std::fmt::Debug for SharedMap {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("SharedMap")
      .field("name", &self.name)
      .field("capacity", &self.layout.capacity)
      .field("shards", &self.layout.shards)
      .finish_non_exhaustive()
  }
}

/// Memory a map created with `opts` takes, in bytes (the segment size
/// `create` allocates: `memory_size` rounded down to whole index cells and
/// ring bytes, or what `capacity` entries of the average sizes need).
pub fn required_memory_size(opts: &Options) -> Result<u64, Error> {
  Ok(
    SharedMap::layout_for(&Options {
      hash_seed: Some(0),
      ..opts.clone()
    })?
    .total,
  )
}

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

  fn layout_for(opts: &Options) -> Result<Layout, Error> {
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

  /// The hash of `key` in this map (its seed is the segment's own).
  #[doc(hidden)]
  pub fn key_hash(&self, key: &[u8]) -> u64 {
    self.layout.hash(key)
  }

  /// The map's name (without the OS prefix).
  pub fn name(&self) -> &str {
    &self.name
  }

  /// The options the map was created with.
  pub fn options(&self) -> Options {
    Options {
      capacity: (self.layout.capacity != 0).then_some(self.layout.capacity),
      memory_size: Some(self.layout.total),
      avg_key_bytes: DEFAULT_AVG_KEY_BYTES,
      avg_value_bytes: DEFAULT_AVG_VALUE_BYTES,
      max_key_bytes: self.layout.max_key,
      max_value_bytes: self.layout.max_value,
      eviction: self.layout.eviction,
      default_ttl_ms: self.layout.default_ttl_ms,
      mode: 0,
      shards: Some(self.layout.shards),
      lock_timeout: Duration::from_millis(self.lock_timeout_ms.load(Relaxed)),
      hash_seed: Some(self.layout.seed),
    }
  }

  /// Creation time (ms since the epoch) and the creator's pid.
  pub fn created(&self) -> (u64, u32) {
    (self.created_at_ms, self.creator_pid)
  }

  /// How long an operation waits for a shard lock before `ETIMEDOUT`
  /// (default 5 s). Owners that died are detected without waiting this long.
  pub fn set_lock_timeout(&self, timeout: Duration) {
    self.lock_timeout_ms.store(
      timeout.as_millis().clamp(1, u64::MAX as u128) as u64,
      Relaxed,
    );
  }

  // ---- internals ------------------------------------------------------------

  #[inline]
  fn now(&self) -> u64 {
    match self.clock_fixed.load(Relaxed) {
      0 => sys::wall_ms(),
      t => t,
    }
    .wrapping_add(self.clock_offset.load(Relaxed))
  }

  #[inline]
  fn coarse_now(&self) -> u64 {
    match self.clock_fixed.load(Relaxed) {
      0 => sys::coarse_ms(),
      t => t,
    }
    .wrapping_add(self.clock_offset.load(Relaxed))
  }

  #[inline]
  fn shard(&self, sh: u32) -> Shard<'_> {
    Shard {
      m: &self.mem,
      l: &self.layout,
      base: self.layout.shard_base(sh),
    }
  }

  #[inline]
  fn lane_word(&self, f: u64) -> &Shared64 {
    self.mem.a64(LANES_OFF + self.lane as u64 * LANE_BYTES + f)
  }

  fn expiry(&self, now: u64, ttl_ms: Option<u64>) -> u64 {
    match ttl_ms.unwrap_or(self.layout.default_ttl_ms) {
      0 => 0,
      t => now.saturating_add(t),
    }
  }

  fn check_key(&self, key: &[u8]) -> Result<(), Error> {
    if key.len() > self.layout.max_key as usize {
      return Err(Error::new(
        "EKEYTOOLONG",
        format!(
          "key of {} bytes, the map allows {}",
          key.len(),
          self.layout.max_key
        ),
      ));
    }
    Ok(())
  }

  /// Checks that an entry of `key` and `v` fits this map.
  fn check_value<'v>(&self, key: &[u8], v: ValueRef<'v>) -> Result<Encoded<'v>, Error> {
    let enc = v.encode();
    if let Encoded::Bytes(_, b) = enc {
      if b.len() > self.layout.max_value as usize {
        return Err(Error::new(
          "EVALUETOOLONG",
          format!(
            "value of {} bytes, the map allows {}",
            b.len(),
            self.layout.max_value
          ),
        ));
      }
    }
    if !self.layout.fits(key.len(), enc.len() as usize) {
      return Err(Error::new(
        "EVALUETOOLONG",
        format!(
          "an entry of {} bytes ({}-byte key, {}-byte value) is larger than half of a shard's {}-byte ring; create the map with a larger memory_size or fewer shards",
          record_bytes(key.len() as u32, enc.len()),
          key.len(),
          enc.len(),
          self.layout.ring
        ),
      ));
    }
    Ok(enc)
  }

  /// Takes shard `sh`'s lock, recovering the shard if its previous owner
  /// died (or it was left mid-write).
  fn lock(&self, sh: u32) -> Result<Guard<'_>, Error> {
    let s = self.shard(sh);
    let timeout = Duration::from_millis(self.lock_timeout_ms.load(Relaxed));
    let ctx = LockCtx {
      reinit: s.h64(S_REINIT),
      holder_ns: s.h64(S_HOLDER_NS),
      timeout,
    };
    let me = lock::me();
    // SAFETY: the lock bytes of a shard of our validated layout, initialised
    // by the creator before READY.
    let got = unsafe { lock::acquire(s.lock_ptr(), &ctx, me) };
    let how = match got {
      Ok(how) => how,
      Err(LockError::TimedOut { holder }) => {
        let by = match holder {
          Some(pid) => format!("held by pid {pid}"),
          None => "its holder is unknown".to_string(),
        };
        return Err(Error::new(
          "ETIMEDOUT",
          format!(
            "shard {sh} of shared map {:?} stayed locked for {} ms, {by} (a stopped process holds it, or its lock word is damaged)",
            self.name,
            timeout.as_millis()
          ),
        ));
      }
      Err(LockError::Failed(e)) => {
        return Err(ecorrupt(format!(
          "shard {sh} lock of shared map {:?} is unusable: {}",
          self.name,
          std::io::Error::from_raw_os_error(e)
        )))
      }
    };
    // SAFETY: we hold the lock of shard `sh` (acquire succeeded).
    let mut g = unsafe { Guard::new(s, self.now(), me) };
    match how {
      Acquired::Clean => {
        if s.seq().load(Relaxed) & 1 == 1 {
          g.repair();
        }
      }
      Acquired::OwnerDied | Acquired::Reinitialised => {
        // Counted first: one per death inside a critical section, even if
        // this recoverer dies too before the repair completes.
        g.stat(S_LOCK_RECOVERIES, 1);
        g.repair();
      }
    }
    Ok(g)
  }

  /// Runs a mutation under shard `sh`'s lock. A structural inconsistency
  /// found on the way repairs the shard and runs `f` once more.
  fn write_op<T>(
    &self,
    sh: u32,
    mut f: impl FnMut(&mut Guard<'_>) -> Result<T, Fault>,
  ) -> Result<T, Error> {
    let mut g = self.lock(sh)?;
    let mut what = "";
    for _ in 0..2 {
      match f(&mut g) {
        Ok(v) => {
          g.end();
          return Ok(v);
        }
        Err(Fault::Err(e)) => {
          g.end();
          return Err(e);
        }
        Err(Fault::Corrupt(w)) => {
          what = w;
          g.repair();
        }
      }
    }
    Err(ecorrupt(format!(
      "shard {sh}: {what}, still after a repair"
    )))
  }

  /// Seqlock lookup: optimistic, then under the lock.
  fn lookup(
    &self,
    sh: u32,
    h: u64,
    key: &[u8],
    copy: bool,
    buf: &mut Vec<u8>,
  ) -> Result<Option<crate::reader::Hit>, Error> {
    let s = self.shard(sh);
    let seq = s.seq();
    for attempt in 0..READ_RETRIES {
      let s1 = seq.load(Acquire);
      if s1 & 1 == 0 {
        let r = s.probe(h, key, copy, buf);
        // Reader side of the seqlock: the data loads above are ordered
        // before the re-check below.
        fence(Acquire);
        if seq.load(Relaxed) == s1 {
          match r {
            Ok(hit) => return Ok(hit),
            // A stable but inconsistent view: damage. Take the lock.
            Err(_) => break,
          }
        }
      }
      backoff(attempt);
    }
    // Under the lock (this also recovers a shard whose writer died).
    let mut g = self.lock(sh)?;
    match g.s.probe(h, key, copy, buf) {
      Ok(hit) => Ok(hit),
      Err(_) => {
        g.repair();
        g.s
          .probe(h, key, copy, buf)
          .map_err(|_| ecorrupt(format!("shard {sh}: inconsistent after repair")))
      }
    }
  }

  /// The read path shared by get/peek/contains/get_with: seqlock lookup,
  /// expiry, stats and the recency bump. `buf` receives the value bytes.
  #[inline]
  fn read_raw(
    &self,
    key: &[u8],
    count: bool,
    bump: bool,
    copy: bool,
    buf: &mut Vec<u8>,
  ) -> Result<Option<(u32, u64)>, Error> {
    self.read_hashed(key, self.layout.hash(key), count, bump, copy, buf)
  }

  /// [`Self::read_raw`] with the key's hash already computed.
  #[inline]
  fn read_hashed(
    &self,
    key: &[u8],
    h: u64,
    count: bool,
    bump: bool,
    copy: bool,
    buf: &mut Vec<u8>,
  ) -> Result<Option<(u32, u64)>, Error> {
    if key.len() > self.layout.max_key as usize {
      if count {
        self.lane_word(LANE_MISSES).fetch_add(1, Relaxed);
      }
      return Ok(None);
    }
    let sh = self.layout.shard_of(h);
    let Some(hit) = self.lookup(sh, h, key, copy, buf)? else {
      if count {
        self.lane_word(LANE_MISSES).fetch_add(1, Relaxed);
      }
      return Ok(None);
    };
    // The precise clock only for entries that can expire.
    if hit.expires != 0 && expired(hit.expires, self.now()) {
      if count {
        self.lane_word(LANE_MISSES).fetch_add(1, Relaxed);
      }
      self.reclaim_expired(sh, h, key)?;
      return Ok(None);
    }
    if count {
      self.lane_word(LANE_HITS).fetch_add(1, Relaxed);
    }
    if bump {
      // Recency: at most one shared store per entry per interval (plus one
      // to set the read mark the evictor looks at). Second resolution is
      // enough here, so the cheap clock will do.
      let now = self.coarse_now();
      let a = self.shard(sh).access_word(hit.cell);
      let cur = a.load(Relaxed);
      if cur & ACCESS_REF == 0 || now.saturating_sub(cur & ACCESS_MS) >= ACCESS_INTERVAL_MS {
        a.store((now & ACCESS_MS) | ACCESS_REF, Relaxed);
      }
    }
    Ok(Some((hit.tag, hit.word)))
  }

  fn read(&self, key: &[u8], count: bool, bump: bool, copy: bool) -> Result<Option<Value>, Error> {
    let mut buf = Vec::new();
    Ok(
      self
        .read_raw(key, count, bump, copy, &mut buf)?
        .map(|(tag, word)| decode(tag, word, buf)),
    )
  }

  fn read_with<R>(
    &self,
    key: &[u8],
    count: bool,
    bump: bool,
    f: impl FnOnce(ValueRef<'_>) -> R,
  ) -> Result<Option<R>, Error> {
    thread_local! {
      static BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    }
    // Taken out of the thread-local, so a nested call from `f` just uses a
    // fresh buffer.
    let mut buf = BUF.with(|b| b.take());
    let r = self.read_raw(key, count, bump, true, &mut buf);
    let out = match r {
      Ok(Some((tag, word))) => Ok(Some(f(value_ref(tag, word, &buf)))),
      Ok(None) => Ok(None),
      Err(e) => Err(e),
    };
    if buf.capacity() <= 1 << 16 {
      BUF.with(|b| b.set(buf));
    }
    out
  }

  fn reclaim_expired(&self, sh: u32, h: u64, key: &[u8]) -> Result<(), Error> {
    self.write_op(sh, |g| {
      if let Some(f) = g.find(h, key)? {
        if g.is_expired(&f) {
          g.remove(f);
          g.stat(S_EXPIRATIONS, 1);
        }
      }
      Ok(())
    })
  }

  // ---- reads ----------------------------------------------------------------

  /// Returns the value of `key`, counting a hit or a miss and marking the
  /// entry recently used. Lock-free unless a writer died or the shard is
  /// under heavy write load.
  pub fn get(&self, key: &[u8]) -> Result<Option<Value>, Error> {
    self.read(key, true, true, true)
  }

  /// Like [`get`](Self::get), but hands the value to `f` as a borrowed
  /// [`ValueRef`] instead of allocating: the bytes are copied out of shared
  /// memory into a per-thread buffer (no lock is held while `f` runs, so `f`
  /// may call back into the map). Returns `f`'s result, or `None` on a miss.
  pub fn get_with<R>(
    &self,
    key: &[u8],
    f: impl FnOnce(ValueRef<'_>) -> R,
  ) -> Result<Option<R>, Error> {
    self.read_with(key, true, true, f)
  }

  /// [`peek`](Self::peek) without allocating, like [`get_with`](Self::get_with).
  pub fn peek_with<R>(
    &self,
    key: &[u8],
    f: impl FnOnce(ValueRef<'_>) -> R,
  ) -> Result<Option<R>, Error> {
    self.read_with(key, false, false, f)
  }

  /// [`get_with`](Self::get_with) for many keys: returns `f(i, value)` for
  /// each key `i` in order (`None` for a miss), with the same hits, misses
  /// and recency as single `get`s. The lookups of each window of 8 keys are
  /// started together (hashes computed, home cells prefetched),
  /// so their cache misses overlap instead of following one another.
  pub fn get_many_with<R>(
    &self,
    keys: &[&[u8]],
    mut f: impl FnMut(usize, Option<ValueRef<'_>>) -> R,
  ) -> Result<Vec<R>, Error> {
    const WINDOW: usize = 8;
    let mut out = Vec::with_capacity(keys.len());
    let mut buf = Vec::new();
    let mut hashes = [0u64; WINDOW];
    for (w, window) in keys.chunks(WINDOW).enumerate() {
      for (h, key) in hashes.iter_mut().zip(window) {
        *h = self.layout.hash(key);
        self.shard(self.layout.shard_of(*h)).prefetch_lookup(*h);
      }
      for (j, (key, &h)) in window.iter().zip(&hashes).enumerate() {
        let r = match self.read_hashed(key, h, true, true, true, &mut buf)? {
          Some((tag, word)) => f(w * WINDOW + j, Some(value_ref(tag, word, &buf))),
          None => f(w * WINDOW + j, None),
        };
        out.push(r);
      }
    }
    Ok(out)
  }

  /// Like [`get`](Self::get) without touching recency or stats.
  pub fn peek(&self, key: &[u8]) -> Result<Option<Value>, Error> {
    self.read(key, false, false, true)
  }

  /// Whether `key` is present and not expired (no recency, no stats).
  pub fn contains(&self, key: &[u8]) -> Result<bool, Error> {
    Ok(self.read(key, false, false, false)?.is_some())
  }

  // ---- writes ---------------------------------------------------------------

  /// Stores `value` under `key`. `ttl_ms`: `None` = the map's default TTL,
  /// `Some(0)` = never expires, `Some(ms)` = expires `ms` from now.
  /// `EFULL` when eviction is `None` and the key's shard is full.
  pub fn set(&self, key: &[u8], value: ValueRef<'_>, ttl_ms: Option<u64>) -> Result<(), Error> {
    self.check_key(key)?;
    let enc = self.check_value(key, value)?;
    let h = self.layout.hash(key);
    let sh = self.layout.shard_of(h);
    self.write_op(sh, |g| {
      let expires = self.expiry(g.now, ttl_ms);
      g.put(h, key, &enc, expires)?;
      g.stat(S_SETS, 1);
      Ok(())
    })
  }

  /// Stores `value` only if `key` is absent (an expired entry counts as
  /// absent). Returns whether it stored.
  pub fn add(&self, key: &[u8], value: ValueRef<'_>, ttl_ms: Option<u64>) -> Result<bool, Error> {
    self.check_key(key)?;
    let enc = self.check_value(key, value)?;
    let h = self.layout.hash(key);
    let sh = self.layout.shard_of(h);
    self.write_op(sh, |g| {
      let expires = self.expiry(g.now, ttl_ms);
      if let Some(f) = g.find(h, key)? {
        if !g.is_expired(&f) {
          return Ok(false);
        }
      }
      if let Some(old) = g.put(h, key, &enc, expires)? {
        if expired(old.rec.expires, g.now) {
          g.stat(S_EXPIRATIONS, 1);
        }
      }
      g.stat(S_SETS, 1);
      Ok(true)
    })
  }

  /// Atomically adds `delta` (across processes) and returns the new value as
  /// f64. See [`incr_value`](Self::incr_value).
  pub fn incr(
    &self,
    key: &[u8],
    delta: f64,
    initial: f64,
    ttl_ms: Option<u64>,
  ) -> Result<f64, Error> {
    Ok(match self.incr_value(key, delta, initial, ttl_ms)? {
      Value::BigInt(i) => i as f64,
      Value::Number(n) => n,
      _ => unreachable!("incr_value returns numbers"),
    })
  }

  /// Atomically adds `delta`: a missing (or expired) key becomes
  /// `Number(initial + delta)` with `ttl_ms`; a `Number` adds as f64; a
  /// `BigInt` adds exactly (`ERANGE` on overflow or a non-integer delta);
  /// other types fail with `ETYPE`. An existing entry keeps its expiry.
  /// Returns the new value exactly (`Number` or `BigInt`).
  pub fn incr_value(
    &self,
    key: &[u8],
    delta: f64,
    initial: f64,
    ttl_ms: Option<u64>,
  ) -> Result<Value, Error> {
    self.check_key(key)?;
    self.check_value(key, ValueRef::Number(0.0))?;
    let h = self.layout.hash(key);
    let sh = self.layout.shard_of(h);
    self.write_op(sh, |g| {
      let found = g.find(h, key)?;
      let fresh = |g: &mut Guard<'_>| -> Result<Value, Fault> {
        let v = initial + delta;
        let enc = Encoded::Word(TAG_NUMBER, 8, v.to_bits());
        let expires = self.expiry(g.now, ttl_ms);
        if let Some(old) = g.put(h, key, &enc, expires)? {
          if expired(old.rec.expires, g.now) {
            g.stat(S_EXPIRATIONS, 1);
          }
        }
        g.stat(S_SETS, 1);
        Ok(Value::Number(v))
      };
      let f: Found = match found {
        None => return fresh(g),
        Some(f) if g.is_expired(&f) => return fresh(g),
        Some(f) => f,
      };
      let tag = f.rec.tag;
      let word = g.value_word(&f);
      let (out, new_word) = match tag {
        TAG_NUMBER => {
          let n = f64::from_bits(word) + delta;
          (Value::Number(n), n.to_bits())
        }
        TAG_BIGINT => {
          // i64 range check: -2^63 ≤ delta < 2^63, integral.
          if !(delta.fract() == 0.0
            && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&delta))
          {
            return Err(Fault::Err(Error::new(
              "ERANGE",
              format!(
                "delta {delta} is not an integer in the i64 range (the stored value is a bigint)"
              ),
            )));
          }
          let n = (word as i64).checked_add(delta as i64).ok_or_else(|| {
            Fault::Err(Error::new(
              "ERANGE",
              format!("bigint {} + {delta} overflows i64", word as i64),
            ))
          })?;
          (Value::BigInt(n), n as u64)
        }
        _ => {
          return Err(Fault::Err(Error::new(
            "ETYPE",
            "incr: the stored value is not a number or bigint",
          )))
        }
      };
      // The value store is the operation's last step, so a retry after a
      // repair never adds twice.
      g.store_word(&f, new_word);
      g.stat(S_SETS, 1);
      Ok(out)
    })
  }

  /// Replaces the value of `key` with `value` only if it currently equals
  /// `expected` (same type and bytes; numbers compare as f64, so NaN never
  /// matches). The entry keeps its expiry. Returns whether it replaced.
  pub fn compare_and_set(
    &self,
    key: &[u8],
    expected: ValueRef<'_>,
    value: ValueRef<'_>,
  ) -> Result<bool, Error> {
    if key.len() > self.layout.max_key as usize {
      return Ok(false);
    }
    let want = expected.encode();
    let enc = self.check_value(key, value)?;
    let h = self.layout.hash(key);
    let sh = self.layout.shard_of(h);
    self.write_op(sh, |g| {
      let Some(f) = g.find(h, key)? else {
        return Ok(false);
      };
      if g.is_expired(&f) || !g.value_equals(&f, &want) {
        return Ok(false);
      }
      g.put(h, key, &enc, f.rec.expires)?;
      g.stat(S_SETS, 1);
      Ok(true)
    })
  }

  /// Removes `key`; returns whether a live entry was removed.
  pub fn delete(&self, key: &[u8]) -> Result<bool, Error> {
    if key.len() > self.layout.max_key as usize {
      return Ok(false);
    }
    let h = self.layout.hash(key);
    let sh = self.layout.shard_of(h);
    self.write_op(sh, |g| {
      let Some(f) = g.find(h, key)? else {
        return Ok(false);
      };
      let live = !g.is_expired(&f);
      g.remove(f);
      g.stat(if live { S_DELETES } else { S_EXPIRATIONS }, 1);
      Ok(live)
    })
  }

  /// Removes every entry, shard by shard.
  pub fn clear(&self) -> Result<(), Error> {
    for sh in 0..self.layout.shards {
      self.write_op(sh, |g| g.clear())?;
    }
    Ok(())
  }

  /// Evicts entries whose last access is older than `cutoff_ms` (ms since
  /// the epoch), oldest first within each shard, at most `max_evictions` in
  /// total (shards are visited in order). Access times are refreshed by
  /// reads at most once a second. Returns the number evicted.
  pub fn evict_older_than(&self, cutoff_ms: u64, max_evictions: Option<u64>) -> Result<u64, Error> {
    let mut left = max_evictions.unwrap_or(u64::MAX);
    let mut total = 0;
    for sh in 0..self.layout.shards {
      if left == 0 {
        break;
      }
      let mut n = 0;
      self.write_op(sh, |g| g.evict_older_than(cutoff_ms, left, &mut n))?;
      total += n;
      left -= n;
    }
    Ok(total)
  }

  /// Reclaims every expired entry now (normally done lazily). Returns how many.
  pub fn purge_expired(&self) -> Result<u64, Error> {
    let mut total = 0;
    for sh in 0..self.layout.shards {
      let mut n = 0;
      self.write_op(sh, |g| g.purge_expired(&mut n))?;
      total += n;
    }
    Ok(total)
  }

  // ---- iteration ------------------------------------------------------------

  fn snapshot(&self, sh: u32, values: bool) -> Result<Vec<RawEntry>, Error> {
    let s = self.shard(sh);
    let now = self.now();
    for attempt in 0..SNAPSHOT_RETRIES {
      let s1 = s.seq().load(Acquire);
      if s1 & 1 == 0 {
        let r = s.collect(now, values);
        fence(Acquire);
        if s.seq().load(Relaxed) == s1 {
          match r {
            Ok(v) => return Ok(v),
            Err(_) => break,
          }
        }
      }
      backoff(attempt);
    }
    let mut g = self.lock(sh)?;
    match g.s.collect(now, values) {
      Ok(v) => Ok(v),
      Err(_) => {
        g.repair();
        g.s
          .collect(now, values)
          .map_err(|_| ecorrupt(format!("shard {sh}: inconsistent after repair")))
      }
    }
  }

  /// All live keys. Weakly consistent: each shard is read consistently
  /// (most recently used first), shards one after another.
  pub fn keys(&self) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    for sh in 0..self.layout.shards {
      out.extend(self.snapshot(sh, false)?.into_iter().map(|e| e.0));
    }
    Ok(out)
  }

  /// All live entries, consistent per shard like [`keys`](Self::keys).
  pub fn entries(&self) -> Result<Vec<(Vec<u8>, Value)>, Error> {
    let mut out = Vec::new();
    for sh in 0..self.layout.shards {
      out.extend(
        self
          .snapshot(sh, true)?
          .into_iter()
          .map(|(k, tag, word, v)| (k, decode(tag, word, v))),
      );
    }
    Ok(out)
  }

  // ---- introspection --------------------------------------------------------

  /// Number of stored entries (including expired ones not reclaimed yet).
  pub fn len(&self) -> u64 {
    (0..self.layout.shards)
      .map(|sh| {
        self
          .shard(sh)
          .h64(S_LEN)
          .load(Relaxed)
          .min(self.layout.cap_per_shard as u64)
      })
      .sum()
  }

  pub fn is_empty(&self) -> bool {
    self.len() == 0
  }

  /// Sizes and counters (no locks taken).
  pub fn stats(&self) -> Stats {
    let l = &self.layout;
    let mut st = Stats {
      capacity: l.cap_per_shard as u64 * l.shards as u64,
      memory_bytes: self.mem.len(),
      ring_bytes: l.ring * l.shards as u64,
      shards: l.shards as u64,
      ..Stats::default()
    };
    for sh in 0..l.shards {
      let s = self.shard(sh);
      let c = |f| s.h64(f).load(Relaxed);
      st.size += c(S_LEN).min(l.cap_per_shard as u64);
      st.sets = st.sets.wrapping_add(c(S_SETS));
      st.deletes = st.deletes.wrapping_add(c(S_DELETES));
      st.evictions_room = st.evictions_room.wrapping_add(c(S_EVICT_ROOM));
      st.evictions_capacity = st.evictions_capacity.wrapping_add(c(S_EVICT_CAPACITY));
      st.evictions_manual = st.evictions_manual.wrapping_add(c(S_EVICT_MANUAL));
      st.moves = st.moves.wrapping_add(c(S_MOVES));
      st.allocated_bytes += c(S_LIVE_BYTES).min(l.ring);
      st.live_record_bytes += c(S_LIVE_RECORD_BYTES).min(l.ring);
      st.used_bytes += c(S_HEAD).saturating_sub(c(S_TAIL)).min(l.ring);
      st.expirations = st.expirations.wrapping_add(c(S_EXPIRATIONS));
      st.lock_recoveries = st.lock_recoveries.wrapping_add(c(S_LOCK_RECOVERIES));
      st.repairs = st.repairs.wrapping_add(c(S_REPAIRS));
    }
    for lane in 0..LANE_COUNT as u64 {
      let base = LANES_OFF + lane * LANE_BYTES;
      st.hits = st
        .hits
        .wrapping_add(self.mem.a64(base + LANE_HITS).load(Relaxed));
      st.misses = st
        .misses
        .wrapping_add(self.mem.a64(base + LANE_MISSES).load(Relaxed));
    }
    st.evictions = st
      .evictions_room
      .wrapping_add(st.evictions_capacity)
      .wrapping_add(st.evictions_manual);
    st.free_bytes = st.ring_bytes - st.used_bytes;
    st
  }

  /// Full invariant check: takes each shard lock in turn (recovering a shard
  /// whose writer died, as any locker does) and checks that the ring's
  /// records parse, the index points at exactly the live ones, and `len` and
  /// the byte counts agree. Read-only
  /// otherwise; walks are bounded.
  pub fn verify(&self) -> Report {
    let mut problems = Vec::new();
    for sh in 0..self.layout.shards {
      match self.lock(sh) {
        Ok(g) => g.verify(sh, &mut problems),
        Err(e) => problems.push(format!("shard {sh}: {e}")),
      }
    }
    Report {
      ok: problems.is_empty(),
      problems,
    }
  }

  /// Rebuilds every shard from its records (what lock recovery does). Never
  /// needed in normal operation; useful after `verify` reported damage.
  pub fn repair(&self) -> Result<(), Error> {
    for sh in 0..self.layout.shards {
      let mut g = self.lock(sh)?;
      g.repair();
    }
    Ok(())
  }

  // ---- test support ---------------------------------------------------------

  /// Size of the mapped segment in bytes.
  #[doc(hidden)]
  pub fn segment_len(&self) -> usize {
    self.mem.len() as usize
  }

  /// Overwrites one byte of the live segment (tests of damaged memory).
  #[doc(hidden)]
  pub fn debug_corrupt(&self, offset: usize, byte: u8) {
    if (offset as u64) < self.mem.len() {
      self.mem.a8(offset as u64).store(byte, Relaxed);
    }
  }

  /// Reads one byte of the live segment.
  #[doc(hidden)]
  pub fn debug_read(&self, offset: usize) -> u8 {
    if (offset as u64) < self.mem.len() {
      self.mem.a8(offset as u64).load(Relaxed)
    } else {
      0
    }
  }

  /// Byte ranges `(offset, len)` of the shard lock objects. Damage there is
  /// outside the hostile-memory guarantee on Linux: glibc keeps robust-list
  /// pointers inside `pthread_mutex_t` and follows them on unlock.
  #[doc(hidden)]
  pub fn debug_lock_ranges(&self) -> Vec<(usize, usize)> {
    (0..self.layout.shards)
      .map(|sh| {
        (
          (self.layout.shard_base(sh) + S_LOCK) as usize,
          S_LOCK_BYTES as usize,
        )
      })
      .collect()
  }

  /// Shifts this handle's clock (TTL tests).
  #[doc(hidden)]
  pub fn debug_advance_clock(&self, ms: u64) {
    self.clock_offset.fetch_add(ms, Relaxed);
  }

  /// Stops this handle's clock at `ms` since the epoch (`None`: the wall
  /// clock again); [`debug_advance_clock`](Self::debug_advance_clock) still
  /// moves it. TTL tests then do not depend on how fast they run.
  #[doc(hidden)]
  pub fn debug_set_clock(&self, ms: Option<u64>) {
    self.clock_fixed.store(ms.unwrap_or(0), Relaxed);
  }
}

#[inline]
fn backoff(attempt: u32) {
  if attempt < 16 {
    for _ in 0..(4u32 << attempt.min(5)) {
      std::hint::spin_loop();
    }
  } else {
    std::thread::yield_now();
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
fn read_header(mem: &Mem) -> [u8; 128] {
  let mut h = [0u8; 128];
  for (w, chunk) in h.chunks_exact_mut(4).enumerate() {
    chunk.copy_from_slice(&mem.a32(w as u64 * 4).load(Relaxed).to_le_bytes());
  }
  h
}

fn named(name: &str, mut e: Error) -> Error {
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

fn enoent(name: &str) -> Error {
  Error::new("ENOENT", format!("no shared map named {name:?}"))
}

fn euninit(name: &str) -> Error {
  Error::new(
    "EUNINIT",
    format!(
      "shared map {name:?} exists but was never initialised: its creator died while creating it (SharedMap.openOrCreate takes it over; or unlink it)"
    ),
  )
}
