//! `SharedMap`: the JavaScript face of [`lrukit_shm_map::SharedMap`].
//!
//! Instances are made only by the static factories (`create`, `open`,
//! `openOrCreate`); the hot methods are raw callbacks bound to each instance
//! (see `raw.rs`). Keys use the same tagged encoding as `LruCache`; values
//! map to the crate's typed values (string, number, bigint, boolean, null,
//! bytes, and JSON for objects when the handle was opened with `json: true`).
//!
//! The calls' arguments are read in `shared_map_options.rs`, the hot
//! methods are in `shared_map_hot.rs` and the results of the cold ones are
//! built in `shared_map_results.rs`.

use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::sync::Arc;

use lrukit_shm_map::codec::key::TAG_BYTES_LEN;
use lrukit_shm_map::{required_memory_size, SharedMap};
use napi::{
  bindgen_prelude::{AsyncTask, JavaScriptClassExt, Object},
  Env, Result, Unknown,
};
use napi_derive::napi;

use crate::errors;
use crate::key::{KeyBatch, KeyScratch};
use crate::raw;
use crate::shared_map_dump::{self as dump, FileTask, Op};
use crate::shared_map_hot::HOT_METHODS;
use crate::shared_map_options as args;
use crate::shared_map_results::{
  self as results, SharedMapReport, SharedMapSegmentInfo, SharedMapStats,
};
use crate::typed_value::{prepare_value, value_ref};

/// A hash map with LRU eviction and TTLs in named shared memory, read and
/// written by many unrelated processes at once (cluster workers, PM2, child
/// processes, Electron main/utility processes, Bun beside Node). Memory is
/// fixed at creation; a process killed mid-write never deadlocks or corrupts
/// the others. Make one with `SharedMap.create`, `SharedMap.open` or
/// `SharedMap.openOrCreate`.
///
/// Errors carry a `code`: `EEXIST`, `ENOENT`, `EPERM`, `EUNINIT`, `EINCOMPAT`, `EFULL`,
/// `EKEYTOOLONG`, `EVALUETOOLONG`, `ETYPE`, `ERANGE`, `ECORRUPT`, `ETIMEDOUT`,
/// `EIO`, `EBADDUMP`, `ENAME`, `EINVAL`, `ECLOSED`, and the `ERR_LRUKIT_*` codes of
/// argument validation.
#[napi(js_name = "SharedMap")]
pub struct JsSharedMap {
  pub(crate) shared: Rc<MapShared>,
}

pub(crate) struct MapShared {
  state: RefCell<MapState>,
}

pub(crate) struct MapState {
  /// The crate map; `None` once closed. An `Arc` so a `dump`/`load` task on
  /// the thread pool can hold the mapping alive past a `close()`.
  pub(crate) map: Option<Arc<SharedMap>>,
  pub(crate) key: KeyScratch,
  /// Encoded keys of a `getMany` call.
  pub(crate) batch: KeyBatch,
  pub(crate) value: Vec<u8>,
  pub(crate) json: bool,
}

impl raw::Bound for MapShared {
  fn release(&self, _env: &Env) {}
}

/// Converts a crate error into a thrown JavaScript error with its code.
pub(crate) fn shm_error(env: &Env, e: lrukit_shm_map::Error) -> napi::Error {
  errors::crate_error(env, e.code, &e.to_string())
}

/// [`shm_error`] for errors about a segment: the message names the map.
fn named_error(env: &Env, name: &str, mut e: lrukit_shm_map::Error) -> napi::Error {
  if !e.message.contains(name) {
    e.message = format!("shared map \"{name}\": {}", e.message);
  }
  shm_error(env, e)
}

/// [`shm_error`] for a write of the encoded key `key`: an `EKEYTOOLONG`
/// message counts the key's own bytes, as `maxKeyBytes` does (the crate
/// counts the stored key, its type tag included).
pub(crate) fn key_error(
  env: &Env,
  map: &SharedMap,
  key: &[u8],
  mut e: lrukit_shm_map::Error,
) -> napi::Error {
  if e.code == errors::KEY_TOO_LONG {
    let max = map.options().max_key_bytes as usize;
    e.message = format!(
      "key of {} bytes, the map allows {}",
      key.len().saturating_sub(TAG_BYTES_LEN),
      max.saturating_sub(TAG_BYTES_LEN)
    );
  }
  shm_error(env, e)
}

impl MapShared {
  pub(crate) fn state(&self, env: &Env) -> Result<RefMut<'_, MapState>> {
    let state = raw::enter(env, &self.state, "SharedMap")?;
    if state.map.is_none() {
      return Err(errors::error(
        env,
        errors::CLOSED,
        "this SharedMap handle was closed",
      ));
    }
    Ok(state)
  }
}

impl MapState {
  fn map(&self) -> &SharedMap {
    // `MapShared::state` only hands out open handles.
    self.map.as_deref().expect("checked open")
  }

  /// The crate map for a task that outlives this call.
  fn shared_map(&self) -> Arc<SharedMap> {
    Arc::clone(self.map.as_ref().expect("checked open"))
  }
}

fn instance(env: &Env, map: SharedMap, json: bool) -> Result<Unknown<'_>> {
  let shared = Rc::new(MapShared {
    state: RefCell::new(MapState {
      map: Some(Arc::new(map)),
      key: KeyScratch::default(),
      batch: KeyBatch::default(),
      value: Vec::new(),
      json,
    }),
  });
  let obj = JsSharedMap {
    shared: Rc::clone(&shared),
  }
  .into_instance(env)?;
  raw::bind_methods(env, obj.value, &shared, HOT_METHODS)?;
  // SAFETY: `obj.value` is the live handle of the instance just created.
  Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), obj.value) })
}

#[napi]
impl JsSharedMap {
  /// Not callable: maps are made by `SharedMap.create`, `SharedMap.open`
  /// and `SharedMap.openOrCreate` (a `TypeError` with code
  /// `ERR_LRUKIT_INVALID_ARGUMENT`).
  #[napi(constructor, skip_typescript)]
  pub fn new(env: Env) -> Result<Self> {
    Err(errors::type_error(
      &env,
      errors::INVALID_ARGUMENT,
      "SharedMap has no public constructor: use SharedMap.create, SharedMap.open or SharedMap.openOrCreate",
    ))
  }

  /// Creates a new map; throws with code `EEXIST` if the name exists.
  #[napi(
    ts_generic_types = "V extends StoredValue = StoredValue",
    ts_args_type = "name: string, options: SharedMapOptions & JsonOption<V>",
    ts_return_type = "SharedMap<V>"
  )]
  pub fn create<'e>(env: &'e Env, name: Unknown<'e>, options: Unknown<'e>) -> Result<Unknown<'e>> {
    let name = args::name(env, &name)?;
    let (opts, json) = args::create(env, &options, "SharedMap.create(name, options)")?;
    let map = SharedMap::create(&name, &opts).map_err(|e| named_error(env, &name, e))?;
    instance(env, map, json)
  }

  /// Opens an existing map; code `ENOENT` if missing, `EINCOMPAT` if its
  /// layout or version differs from this build's, `EPERM` if another user
  /// owns the segment or it grants write beyond `options.mode` (nothing is
  /// read from it then), `EUNINIT` if its creator died before initialising
  /// it (`openOrCreate` takes such a segment over), `ETIMEDOUT` if a live
  /// creator is still initialising it after `lockTimeout`.
  #[napi(
    ts_generic_types = "V extends StoredValue = StoredValue",
    ts_args_type = "name: string, ...options: SharedMapOpenArgs<V>",
    ts_return_type = "SharedMap<V>"
  )]
  pub fn open<'e>(env: &'e Env, name: Unknown<'e>, options: Unknown<'e>) -> Result<Unknown<'e>> {
    let name = args::name(env, &name)?;
    let (opts, json) = args::open(env, &options)?;
    let map = SharedMap::open_with(&name, &opts).map_err(|e| named_error(env, &name, e))?;
    instance(env, map, json)
  }

  /// Opens the map, creating it if needed; race-free when many processes
  /// start at once (exactly one creates, the others wait until it is ready).
  #[napi(
    ts_generic_types = "V extends StoredValue = StoredValue",
    ts_args_type = "name: string, options: SharedMapOptions & JsonOption<V>",
    ts_return_type = "SharedMap<V>"
  )]
  pub fn open_or_create<'e>(
    env: &'e Env,
    name: Unknown<'e>,
    options: Unknown<'e>,
  ) -> Result<Unknown<'e>> {
    let name = args::name(env, &name)?;
    let (opts, json) = args::create(env, &options, "SharedMap.openOrCreate(name, options)")?;
    let map = SharedMap::open_or_create(&name, &opts).map_err(|e| named_error(env, &name, e))?;
    instance(env, map, json)
  }

  /// Removes the name; processes that have the map open keep using it until
  /// they close it. Returns false if the name did not exist.
  #[napi(ts_args_type = "name: string")]
  pub fn unlink(env: &Env, name: Unknown) -> Result<bool> {
    let name = args::name(env, &name)?;
    SharedMap::unlink(&name).map_err(|e| named_error(env, &name, e))
  }

  /// What the segment of map `name` says about itself, read from its header
  /// without opening the map (for tools that list maps: `lrukit ls`): its
  /// size, owner and mode, layout version, whether this build can open it,
  /// whether it is ready, being created or abandoned by a dead creator, and
  /// the header's shards, creation time, creator pid and lock kind. The
  /// trust rule of `open` holds (`options.mode`, default `0o600`: `EPERM`
  /// before a byte is read); `ENOENT` if missing. A foreign, damaged or
  /// other-version header is no error: `compatible` is false and `problem`
  /// says why (with `problemCode`). Linux, macOS, FreeBSD; `EINVAL` on
  /// Windows.
  #[napi(ts_args_type = "name: string, options?: SharedMapOpenOptions | undefined | null")]
  pub fn describe(env: &Env, name: Unknown, options: Unknown) -> Result<SharedMapSegmentInfo> {
    let name = args::name(env, &name)?;
    let (opts, _) = args::open(env, &options)?;
    SharedMap::describe_with(&name, &opts)
      .map(Into::into)
      .map_err(|e| named_error(env, &name, e))
  }

  /// Bytes of shared memory `create` allocates for these options (what
  /// `memorySize` becomes, or what `capacity` entries of the average sizes
  /// take).
  #[napi(ts_args_type = "options: SharedMapOptions")]
  pub fn calc_required_memory_size(env: &Env, options: Unknown) -> Result<f64> {
    let (opts, _) = args::create(env, &options, "SharedMap.calcRequiredMemorySize(options)")?;
    required_memory_size(&opts)
      .map(|b| b as f64)
      .map_err(|e| shm_error(env, e))
  }

  /// The map's name.
  #[napi(getter)]
  pub fn name(&self, env: &Env) -> Result<String> {
    Ok(self.shared.state(env)?.map().name().to_owned())
  }

  /// Number of entries (expired ones not yet reclaimed included).
  #[napi(getter)]
  pub fn size(&self, env: &Env) -> Result<f64> {
    Ok(self.shared.state(env)?.map().len() as f64)
  }

  /// Replaces `key`'s value only if it currently equals `expected` (same
  /// type and bytes); true when replaced.
  #[napi(ts_args_type = "key: Key, expected: V, value: V")]
  pub fn compare_and_set(
    &self,
    env: &Env,
    key: Unknown,
    expected: Unknown,
    value: Unknown,
  ) -> Result<bool> {
    let json = self.shared.state(env)?.json;
    let expected = prepare_value(env, json, expected)?;
    let value = prepare_value(env, json, value)?;
    let mut state = self.shared.state(env)?;
    let MapState {
      map,
      key: scratch,
      value: buf,
      ..
    } = &mut *state;
    let k = scratch.encode(env, &key)?.to_vec();
    let mut expected_buf = Vec::new();
    let e = value_ref(env, &expected, &mut expected_buf)?;
    let v = value_ref(env, &value, buf)?;
    map
      .as_deref()
      .expect("checked open")
      .compare_and_set(&k, e, v)
      .map_err(|e| shm_error(env, e))
  }

  /// Removes every entry (all processes see an empty map).
  #[napi]
  pub fn clear(&self, env: &Env) -> Result<()> {
    self
      .shared
      .state(env)?
      .map()
      .clear()
      .map_err(|e| shm_error(env, e))
  }

  /// Evicts up to `maxEvictions` entries not accessed since `cutoffMs`
  /// (ms since the epoch); returns how many.
  #[napi(ts_args_type = "cutoffMs: number, maxEvictions?: number | undefined | null")]
  pub fn evict_older_than(
    &self,
    env: &Env,
    cutoff_ms: Unknown,
    max_evictions: Unknown,
  ) -> Result<f64> {
    let (cutoff, max) = args::evict_older_than(env, &cutoff_ms, &max_evictions)?;
    let n = self
      .shared
      .state(env)?
      .map()
      .evict_older_than(cutoff, max)
      .map_err(|e| shm_error(env, e))?;
    Ok(n as f64)
  }

  /// Keys (weakly consistent snapshot: each shard read consistently).
  #[napi(ts_return_type = "IterableIterator<Key>")]
  pub fn keys<'e>(&self, env: &'e Env) -> Result<Unknown<'e>> {
    let keys = self
      .shared
      .state(env)?
      .map()
      .keys()
      .map_err(|e| shm_error(env, e))?;
    results::keys(env, &keys)
  }

  /// `[key, value]` pairs (weakly consistent snapshot).
  #[napi(ts_return_type = "IterableIterator<[Key, V]>")]
  pub fn entries<'e>(&self, env: &'e Env) -> Result<Unknown<'e>> {
    let entries = self
      .shared
      .state(env)?
      .map()
      .entries()
      .map_err(|e| shm_error(env, e))?;
    results::entries(env, entries)
  }

  /// Writes every live entry, with the time its TTL has left, to `file` (a
  /// path), off the JavaScript thread; resolves with the number of entries
  /// written. The file is versioned and checksummed, written one shard at a
  /// time (memory stays at one shard's entries) and replaced atomically
  /// (a temporary file renamed over `file`). Weakly consistent like
  /// `entries()`; expired entries are skipped. Rejects with `EIO` (naming
  /// the file). `close()` during a dump closes the handle but the dump
  /// finishes on its own reference to the mapping.
  #[napi(ts_args_type = "file: string", ts_return_type = "Promise<number>")]
  pub fn dump(&self, env: &Env, file: Unknown) -> Result<AsyncTask<FileTask>> {
    let path = dump::path(env, &file, "SharedMap#dump(file)")?;
    let map = self.shared.state(env)?.shared_map();
    Ok(AsyncTask::new(FileTask::new(map, path, Op::Dump)))
  }

  /// Loads a file written by `dump()` into this map, off the JavaScript
  /// thread; resolves with the number of entries loaded. Entries are `set`
  /// (existing keys replaced, the map is not cleared), keep their types and
  /// the time their TTL had left at the dump minus the time since (entries
  /// whose deadline has passed are skipped). The whole file is validated
  /// first: a damaged, truncated or foreign file rejects with `EBADDUMP`
  /// and an entry this map cannot hold with `EKEYTOOLONG`/`EVALUETOOLONG`,
  /// loading nothing; `EFULL` (an `eviction: 'none'` map filling up) stops
  /// the load with the entries before it loaded (the message says how
  /// many); `EIO` names the file.
  #[napi(ts_args_type = "file: string", ts_return_type = "Promise<number>")]
  pub fn load(&self, env: &Env, file: Unknown) -> Result<AsyncTask<FileTask>> {
    let path = dump::path(env, &file, "SharedMap#load(file)")?;
    let map = self.shared.state(env)?.shared_map();
    Ok(AsyncTask::new(FileTask::new(map, path, Op::Load)))
  }

  /// Counters and sizes, totals over all processes.
  #[napi]
  pub fn stats(&self, env: &Env) -> Result<SharedMapStats> {
    Ok(self.shared.state(env)?.map().stats().into())
  }

  /// A full invariant check of every shard.
  #[napi]
  pub fn verify(&self, env: &Env) -> Result<SharedMapReport> {
    Ok(self.shared.state(env)?.map().verify().into())
  }

  /// Rebuilds every shard from its records, as the recovery after a crashed
  /// writer does: entries whose records are intact are kept, damaged ones are
  /// dropped, and chains, LRU order, free list and sizes are rebuilt. Never
  /// needed in normal operation; for when `verify()` reported problems.
  #[napi]
  pub fn repair(&self, env: &Env) -> Result<()> {
    self
      .shared
      .state(env)?
      .map()
      .repair()
      .map_err(|e| shm_error(env, e))
  }

  /// Unmaps this handle (never unlinks; see `SharedMap.unlink`). Further
  /// calls on it throw `ECLOSED`. Idempotent. A `dump`/`load` still running
  /// keeps the mapping until it settles.
  #[napi]
  pub fn close(&self, env: &Env) -> Result<()> {
    let mut state = raw::enter(env, &self.shared.state, "SharedMap")?;
    state.map = None;
    Ok(())
  }

  /// Whether `close()` was called on this handle.
  #[napi(getter)]
  pub fn closed(&self) -> bool {
    self
      .shared
      .state
      .try_borrow()
      .is_ok_and(|s| s.map.is_none())
  }
}

/// Makes `SharedMap` iterable like a `Map`.
pub fn install(env: &Env, exports: &Object) -> Result<()> {
  raw::make_iterable(env, exports, "SharedMap")
}

/// Test support, not API (exported by `native.js` only, not by `lrukit`):
/// the `[offset, length]` byte ranges of the shard locks in `map`'s segment.
/// Damaging them is outside the hostile-memory guarantee (glibc keeps
/// robust-list pointers inside `pthread_mutex_t`), so the byte-flip test
/// leaves them alone.
#[napi(skip_typescript)]
#[cfg_attr(test, allow(dead_code))] // only called from JavaScript
pub fn debug_lock_ranges(env: &Env, map: &JsSharedMap) -> Result<Vec<Vec<f64>>> {
  Ok(
    map
      .shared
      .state(env)?
      .map()
      .debug_lock_ranges()
      .into_iter()
      .map(|(offset, len)| vec![offset as f64, len as f64])
      .collect(),
  )
}

/// Test support, not API (exported by `native.js` only): fixes `map`'s
/// clock (this handle only) at `ms` since the epoch, or back to the wall
/// clock with `null`, so TTL tests never sleep.
#[napi(skip_typescript)]
#[cfg_attr(test, allow(dead_code))] // only called from JavaScript
pub fn debug_set_clock(env: &Env, map: &JsSharedMap, ms: Option<f64>) -> Result<()> {
  let ms = ms.map(|t| t.max(1.0) as u64);
  map.shared.state(env)?.map().debug_set_clock(ms);
  Ok(())
}

/// Test support, not API (exported by `native.js` only, not by `lrukit`):
/// moves this handle's clock forward by `ms`, for everything it does (TTLs
/// of writes and reads, and of `dump`/`load`), so TTL tests need not wait
/// on the real clock. Other handles of the same map keep the real time.
#[napi(skip_typescript)]
#[cfg_attr(test, allow(dead_code))] // only called from JavaScript
pub fn debug_advance_clock(env: &Env, map: &JsSharedMap, ms: f64) -> Result<()> {
  map
    .shared
    .state(env)?
    .map()
    .debug_advance_clock(ms.max(0.0) as u64);
  Ok(())
}
