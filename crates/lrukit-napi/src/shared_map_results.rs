//! What `SharedMap`'s cold methods return, built from the crate's results:
//! the `stats()` and `verify()` objects and the `keys()` / `entries()`
//! iterators.

use lrukit_shm_map::{Report, Stats, Value};
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

/// An iterator over the stored `keys` (encoded, as the crate returns them).
pub(crate) fn keys<'e>(env: &'e Env, keys: &[Vec<u8>]) -> Result<Unknown<'e>> {
  let mut arr = env.create_array(keys.len() as u32)?;
  for (i, k) in keys.iter().enumerate() {
    arr.set(i as u32, key::to_js(env, k)?)?;
  }
  raw::array_iterator(arr.coerce_to_object()?)
}

/// An iterator over `[key, value]` pairs of the stored `entries`.
pub(crate) fn entries<'e>(env: &'e Env, entries: Vec<(Vec<u8>, Value)>) -> Result<Unknown<'e>> {
  let mut arr = env.create_array(entries.len() as u32)?;
  for (i, (k, v)) in entries.into_iter().enumerate() {
    let mut pair = env.create_array(2)?;
    pair.set(0, key::to_js(env, &k)?)?;
    pair.set(1, value_to_js(env, v.as_ref())?)?;
    arr.set(i as u32, pair)?;
  }
  raw::array_iterator(arr.coerce_to_object()?)
}
