//! What `SharedMap`'s cold methods return, built from the crate's results:
//! the `stats()` and `verify()` objects and the `keys()` / `entries()`
//! iterators.

use lrukit_shm_map::codec::key::is_internal;
use lrukit_shm_map::{Report, SegmentInfo, Stats, Value};
use napi::{Env, Result, Unknown};
use napi_derive::napi;

use crate::key;
use crate::raw;
use crate::typed_value::value_to_js;

/// `map.stats()`.
#[napi(object, object_from_js = false)]
pub struct SharedMapStats {
  pub size: f64,
  pub capacity: f64,
  pub memory_bytes: f64,
  pub used_bytes: f64,
  pub free_bytes: f64,
  pub hits: f64,
  pub misses: f64,
  pub sets: f64,
  pub deletes: f64,
  pub evictions: f64,
  pub expirations: f64,
  /// Shards recovered after a process died holding their lock.
  pub lock_recoveries: f64,
  /// Shard rebuilds (lock recoveries plus damage found and repaired).
  pub repairs: f64,
  pub shards: f64,
  /// Bytes of the shards' rings, where entries are stored.
  pub ring_bytes: f64,
  /// Key + value bytes of the stored entries.
  pub allocated_bytes: f64,
  /// Ring bytes of live entries (headers and padding included).
  pub live_record_bytes: f64,
  /// Evictions by reason: `room` (memory), `capacity` (entry cap),
  /// `manual` (`evictOlderThan`); `evictions` is their sum.
  pub evictions_by_reason: SharedMapEvictions,
  /// Live entries moved within a shard to reclaim the room of deleted and
  /// replaced ones, or given a second chance.
  pub moves: f64,
}

/// `stats().evictionsByReason`.
#[napi(object, object_from_js = false)]
pub struct SharedMapEvictions {
  pub room: f64,
  pub capacity: f64,
  pub manual: f64,
}

/// `map.verify()`.
#[napi(object, object_from_js = false)]
pub struct SharedMapReport {
  pub ok: bool,
  pub problems: Vec<String>,
}

/// `SharedMap.describe(name)`: what a segment's header says, read without
/// opening the map. The header fields are `null` when the header is not of
/// this build's layout version or not written yet.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct SharedMapSegmentInfo {
  pub name: String,
  /// Bytes of the segment.
  pub size: f64,
  /// Permission bits of the segment (e.g. `0o600`).
  pub mode: f64,
  /// The owner's uid.
  pub uid: f64,
  /// The header starts with lrukit's magic.
  pub magic_ok: bool,
  /// The header's layout version (when the magic is lrukit's).
  pub layout_version: Option<f64>,
  /// The layout version this build reads.
  pub supported_version: f64,
  /// `ready`; `creating` (its creator is at work); `creator-died` (`open`
  /// says `EUNINIT`; `openOrCreate` takes it over); `not-ready` (macOS: its
  /// creator's state cannot be told); `unknown` (not an lrukit header).
  #[napi(ts_type = "'ready' | 'creating' | 'creator-died' | 'not-ready' | 'unknown'")]
  pub state: String,
  /// This build can open it: ready, and its header passes every check `open`
  /// makes.
  pub compatible: bool,
  /// The size the header records.
  pub total_size: Option<f64>,
  pub shards: Option<f64>,
  /// When it was created (ms since the epoch).
  pub created_at: Option<f64>,
  pub creator_pid: Option<f64>,
  /// The lock the header records (e.g. `glibc robust pthread mutex`).
  pub lock_kind: Option<String>,
  /// Why this build cannot open it, and its code (`EINCOMPAT`, `EUNINIT`).
  pub problem: Option<String>,
  pub problem_code: Option<String>,
}

impl From<SegmentInfo> for SharedMapSegmentInfo {
  fn from(d: SegmentInfo) -> Self {
    SharedMapSegmentInfo {
      lock_kind: d.lock_kind_name().map(str::to_owned),
      name: d.name,
      size: d.size as f64,
      mode: d.mode as f64,
      uid: d.uid as f64,
      magic_ok: d.magic_ok,
      layout_version: d.layout_version.map(f64::from),
      supported_version: d.supported_version as f64,
      state: d.state.as_str().to_owned(),
      compatible: d.compatible,
      total_size: d.total_size.map(|v| v as f64),
      shards: d.shards.map(f64::from),
      created_at: d.created_at_ms.map(|v| v as f64),
      creator_pid: d.creator_pid.map(f64::from),
      problem_code: d.problem.as_ref().map(|e| e.code.to_owned()),
      problem: d.problem.map(|e| e.message),
    }
  }
}

impl From<Stats> for SharedMapStats {
  fn from(s: Stats) -> Self {
    SharedMapStats {
      size: s.size as f64,
      capacity: s.capacity as f64,
      memory_bytes: s.memory_bytes as f64,
      used_bytes: s.used_bytes as f64,
      free_bytes: s.free_bytes as f64,
      hits: s.hits as f64,
      misses: s.misses as f64,
      sets: s.sets as f64,
      deletes: s.deletes as f64,
      evictions: s.evictions as f64,
      expirations: s.expirations as f64,
      lock_recoveries: s.lock_recoveries as f64,
      repairs: s.repairs as f64,
      shards: s.shards as f64,
      ring_bytes: s.ring_bytes as f64,
      allocated_bytes: s.allocated_bytes as f64,
      live_record_bytes: s.live_record_bytes as f64,
      evictions_by_reason: SharedMapEvictions {
        room: s.evictions_room as f64,
        capacity: s.evictions_capacity as f64,
        manual: s.evictions_manual as f64,
      },
      moves: s.moves as f64,
    }
  }
}

impl From<Report> for SharedMapReport {
  fn from(r: Report) -> Self {
    SharedMapReport {
      ok: r.ok,
      problems: r.problems,
    }
  }
}

/// An iterator over the stored `keys` (encoded, as the crate returns them),
/// without `fetch`'s internal entries.
pub(crate) fn keys<'e>(env: &'e Env, keys: &[Vec<u8>]) -> Result<Unknown<'e>> {
  let keys: Vec<&Vec<u8>> = keys.iter().filter(|k| !is_internal(k)).collect();
  let mut arr = env.create_array(keys.len() as u32)?;
  for (i, k) in keys.into_iter().enumerate() {
    arr.set(i as u32, key::to_js(env, k)?)?;
  }
  raw::array_iterator(arr.coerce_to_object()?)
}

/// An iterator over `[key, value]` pairs of the stored `entries`, without
/// `fetch`'s internal entries.
pub(crate) fn entries<'e>(env: &'e Env, mut entries: Vec<(Vec<u8>, Value)>) -> Result<Unknown<'e>> {
  entries.retain(|(k, _)| !is_internal(k));
  let mut arr = env.create_array(entries.len() as u32)?;
  for (i, (k, v)) in entries.into_iter().enumerate() {
    let mut pair = env.create_array(2)?;
    pair.set(0, key::to_js(env, &k)?)?;
    pair.set(1, value_to_js(env, v.as_ref())?)?;
    arr.set(i as u32, pair)?;
  }
  raw::array_iterator(arr.coerce_to_object()?)
}
