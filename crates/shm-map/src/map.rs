//! The public [`SharedMap`] handle.

use std::sync::atomic::{fence, AtomicU64, Ordering::*};
use std::time::Duration;

use crate::error::{ecorrupt, Error};
use crate::layout::*;
use crate::lock::{self, Acquired, LockCtx, LockError};
use crate::mem::{Backing, Shared64};
use crate::options::{Options, Report, Stats};
use crate::reader::{expired, Mem, RawEntry, Shard, Torn};
use crate::sys;
use crate::value::{decode, value_ref, Encoded, Value, ValueRef};
use crate::writer::{Fault, Guard};

/// Optimistic read attempts before a reader takes the shard lock.
const READ_RETRIES: u32 = 64;
/// Snapshot attempts of a whole shard (`keys`/`entries`) before locking.
const SNAPSHOT_RETRIES: u32 = 4;
/// A reader refreshes an entry's access time at most this often.
const ACCESS_INTERVAL_MS: u64 = 1000;

// Per-handle counter lanes (hits/misses), one cache line each.
pub(crate) const LANE_OWNER: u64 = 0;
const LANE_HITS: u64 = 8;
const LANE_MISSES: u64 = 16;

/// A handle on a named shared map. Cheap to share between threads
/// (`Send + Sync`); each process (or thread) may also open its own handle.
pub struct SharedMap {
  pub(crate) mem: Mem,
  pub(crate) layout: Layout,
  pub(crate) name: String,
  pub(crate) pid: u32,
  pub(crate) lane: u32,
  pub(crate) created_at_ms: u64,
  pub(crate) creator_pid: u32,
  pub(crate) clock_offset: AtomicU64,
  /// A fixed clock (ms) for tests; 0 = the wall clock.
  pub(crate) clock_fixed: AtomicU64,
  pub(crate) lock_timeout_ms: AtomicU64,
  /// Keeps the mapping alive; dropped last.
  pub(crate) _backing: Backing,
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

impl SharedMap {
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
  pub(crate) fn now(&self) -> u64 {
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
  pub(crate) fn shard(&self, sh: u32) -> Shard<'_> {
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

  pub(crate) fn expiry(&self, now: u64, ttl_ms: Option<u64>) -> u64 {
    match ttl_ms.unwrap_or(self.layout.default_ttl_ms) {
      0 => 0,
      t => now.saturating_add(t),
    }
  }

  pub(crate) fn check_key(&self, key: &[u8]) -> Result<(), Error> {
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
  pub(crate) fn check_value<'v>(&self, key: &[u8], v: ValueRef<'v>) -> Result<Encoded<'v>, Error> {
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
  pub(crate) fn lock(&self, sh: u32) -> Result<Guard<'_>, Error> {
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
  pub(crate) fn write_op<T>(
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
  /// expiry, stats and the recency bump. `buf` receives the value bytes;
  /// a hit is `(value tag, value word, expiry)` (expiry 0 = none).
  #[inline]
  fn read_raw(
    &self,
    key: &[u8],
    count: bool,
    bump: bool,
    copy: bool,
    buf: &mut Vec<u8>,
  ) -> Result<Option<(u32, u64, u64)>, Error> {
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
  ) -> Result<Option<(u32, u64, u64)>, Error> {
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
    Ok(Some((hit.tag, hit.word, hit.expires)))
  }

  fn read(&self, key: &[u8], count: bool, bump: bool, copy: bool) -> Result<Option<Value>, Error> {
    let mut buf = Vec::new();
    Ok(
      self
        .read_raw(key, count, bump, copy, &mut buf)?
        .map(|(tag, word, _)| decode(tag, word, buf)),
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
      Ok(Some((tag, word, _))) => Ok(Some(f(value_ref(tag, word, &buf)))),
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
  /// started together (hashes computed and home cells prefetched, then the
  /// records those cells point at), so their cache misses overlap instead of
  /// following one another.
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
      for &h in &hashes[..window.len()] {
        self.shard(self.layout.shard_of(h)).prefetch_record(h);
      }
      for (j, (key, &h)) in window.iter().zip(&hashes).enumerate() {
        let r = match self.read_hashed(key, h, true, true, true, &mut buf)? {
          Some((tag, word, _)) => f(w * WINDOW + j, Some(value_ref(tag, word, &buf))),
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

  /// [`get`](Self::get) (or [`peek`](Self::peek) when `count` is false: no
  /// stats, no recency) that also returns the entry's expiry in ms since
  /// the epoch on the map's clock (0 = never).
  pub fn get_with_expiry(&self, key: &[u8], count: bool) -> Result<Option<(Value, u64)>, Error> {
    let mut buf = Vec::new();
    Ok(
      self
        .read_raw(key, count, count, true, &mut buf)?
        .map(|(tag, word, expires)| (decode(tag, word, buf), expires)),
    )
  }

  /// The map's clock: ms since the epoch (the wall clock, or the test clock
  /// set with `debug_set_clock`).
  pub fn now_ms(&self) -> u64 {
    self.now()
  }

  // ---- iteration ------------------------------------------------------------

  fn snapshot(&self, sh: u32, values: bool) -> Result<Vec<RawEntry>, Error> {
    self.snapshot_with(sh, |s, now| s.collect(now, values))
  }

  /// A consistent copy of shard `sh` made by `collect` (given the shard and
  /// the time): optimistic under the shard's seqlock, then under its lock
  /// (repairing the shard if the copy finds it inconsistent).
  pub(crate) fn snapshot_with<T>(
    &self,
    sh: u32,
    collect: impl Fn(&Shard<'_>, u64) -> Result<T, Torn>,
  ) -> Result<T, Error> {
    let s = self.shard(sh);
    let now = self.now();
    for attempt in 0..SNAPSHOT_RETRIES {
      let s1 = s.seq().load(Acquire);
      if s1 & 1 == 0 {
        let r = collect(&s, now);
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
    match collect(&g.s, now) {
      Ok(v) => Ok(v),
      Err(_) => {
        g.repair();
        collect(&g.s, now).map_err(|_| ecorrupt(format!("shard {sh}: inconsistent after repair")))
      }
    }
  }

  /// All live keys. Weakly consistent: each shard is read consistently
  /// (most recently used first), shards one after another. With
  /// codec-encoded keys, `fetch`'s internal entries are the keys
  /// [`codec::key::is_internal`](crate::codec::key::is_internal) tells apart.
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
