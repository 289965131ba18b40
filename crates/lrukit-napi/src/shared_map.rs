//! `SharedMap`: the JavaScript face of [`lrukit_shm_map::SharedMap`].
//!
//! Instances are made only by the static factories (`create`, `open`,
//! `openOrCreate`); the hot methods are raw callbacks bound to each instance
//! (see `raw.rs`). Keys use the same tagged encoding as `LruCache`; values
//! map to the crate's typed values (string, number, bigint, boolean, null,
//! bytes, and JSON for objects when the handle was opened with `json: true`).

use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::time::Duration;

use lrukit_shm_map::{required_memory_size, Eviction, Options, SharedMap, ValueRef};
use napi::{
  bindgen_prelude::{JavaScriptClassExt, JsObjectValue, Object, ToNapiValue},
  sys, Env, JsValue, Result, Unknown, ValueType,
};
use napi_derive::napi;

use crate::errors;
use crate::key::{self, KeyBatch, KeyScratch};
use crate::options;
use crate::raw;
use crate::values::{prepare_value, value_ref, value_to_js};

/// A hash map with LRU eviction and TTLs in named shared memory, read and
/// written by many unrelated processes at once (cluster workers, PM2, child
/// processes, Electron main/utility processes, Bun beside Node). Memory is
/// fixed at creation; a process killed mid-write never deadlocks or corrupts
/// the others. Make one with `SharedMap.create`, `SharedMap.open` or
/// `SharedMap.openOrCreate`.
///
/// Errors carry a `code`: `EEXIST`, `ENOENT`, `EPERM`, `EUNINIT`, `EINCOMPAT`, `EFULL`,
/// `EKEYTOOLONG`, `EVALUETOOLONG`, `ETYPE`, `ERANGE`, `ECORRUPT`, `ETIMEDOUT`,
/// `EIO`, `ENAME`, `EINVAL`, `ECLOSED`, and the `ERR_LRUKIT_*` codes of
/// argument validation.
#[napi(js_name = "SharedMap")]
pub struct JsSharedMap {
  shared: Rc<MapShared>,
}

struct MapShared {
  state: RefCell<MapState>,
}

struct MapState {
  map: Option<SharedMap>,
  key: KeyScratch,
  /// Encoded keys of a `getMany` call.
  batch: KeyBatch,
  value: Vec<u8>,
  json: bool,
}

impl raw::Bound for MapShared {
  fn release(&self, _env: &Env) {}
}

/// Options for `SharedMap.create` / `SharedMap.openOrCreate`.
#[napi(object, object_to_js = false)]
pub struct SharedMapOptions {
  /// Size of the segment in bytes: the memory budget entries of any size
  /// share. Give this, `capacity`, or both.
  pub memory_size: Option<f64>,
  /// Most entries (enforced per shard, so approximate). Alone, it sizes the
  /// map for that many entries of `avgKeyBytes` + `avgValueBytes`; with
  /// `memorySize`, it only caps the entries.
  pub capacity: Option<f64>,
  /// Average key and value sizes in bytes the map is sized for (defaults 32
  /// and 256). They reserve nothing per entry: they only split the memory
  /// between the index and the entries.
  pub avg_key_bytes: Option<f64>,
  pub avg_value_bytes: Option<f64>,
  /// Longest key in bytes (UTF-8 for strings); default 256. A limit only.
  pub max_key_bytes: Option<f64>,
  /// Longest string/Buffer/JSON value in bytes; default 1 MiB (at most 64
  /// MiB). A limit only: an entry takes the bytes it needs. An entry must
  /// also fit in half of a shard's share of the memory.
  pub max_value_bytes: Option<f64>,
  /// `'lru'` (default): a full shard evicts entries, least recently used
  /// first (approximately).
  /// `'none'`: a write into a full shard fails with `EFULL`.
  #[napi(ts_type = "'lru' | 'none'")]
  pub eviction: Option<String>,
  /// Default time-to-live in ms for writes without their own; 0 = none.
  pub ttl: Option<f64>,
  /// Permission bits of the segment; default 0o600.
  pub mode: Option<f64>,
  /// Number of lock shards (a power of two); default from the CPU count (16
  /// to 64), with at least 256 entries and 4 MiB per shard.
  pub shards: Option<f64>,
  /// Store objects and arrays as JSON (this handle only).
  pub json: Option<bool>,
  /// How long (ms) an operation on this handle waits for a shard lock held
  /// by another process before failing with `ETIMEDOUT`; a dead holder is
  /// detected sooner. An integer from 1 to 2147483647; default 5000. Per
  /// handle (each process chooses its own).
  pub lock_timeout: Option<f64>,
}

/// Options for `SharedMap.open`.
#[napi(object, object_to_js = false)]
pub struct SharedMapOpenOptions {
  /// Store objects and arrays as JSON (this handle only).
  pub json: Option<bool>,
  /// How long (ms) an operation on this handle waits for a shard lock held
  /// by another process before failing with `ETIMEDOUT`; a dead holder is
  /// detected sooner. Also bounds the wait for a map another process is
  /// still creating. An integer from 1 to 2147483647; default 5000.
  pub lock_timeout: Option<f64>,
  /// The most the segment's permission bits may grant (default 0o600): a
  /// segment owned by another user, or writable by anyone this mode does
  /// not allow, is refused with `EPERM`. Give the creator's mode to open a
  /// map created for a group (e.g. `0o660`).
  pub mode: Option<f64>,
}

/// Reads the options of `create` / `openOrCreate` (`what`): an object is
/// required; every property is type-checked here, ranges in
/// [`create_options`].
fn read_create_options(env: &Env, v: &Unknown, what: &str) -> Result<SharedMapOptions> {
  let o = options::object(env, v, what, true)?.expect("required");
  let any = errors::INVALID_ARGUMENT;
  Ok(SharedMapOptions {
    memory_size: options::number(env, &o, "memorySize", errors::INVALID_CAPACITY)?,
    capacity: options::number(env, &o, "capacity", errors::INVALID_CAPACITY)?,
    avg_key_bytes: options::number(env, &o, "avgKeyBytes", any)?,
    avg_value_bytes: options::number(env, &o, "avgValueBytes", any)?,
    max_key_bytes: options::number(env, &o, "maxKeyBytes", any)?,
    max_value_bytes: options::number(env, &o, "maxValueBytes", any)?,
    eviction: options::string(env, &o, "eviction", any)?,
    ttl: options::number(env, &o, "ttl", errors::INVALID_TTL)?,
    mode: options::number(env, &o, "mode", any)?,
    shards: options::number(env, &o, "shards", any)?,
    json: options::boolean(env, &o, "json")?,
    lock_timeout: options::number(env, &o, "lockTimeout", errors::INVALID_TIMEOUT)?,
  })
}

/// Reads the optional options of `open`.
fn read_open_options(env: &Env, v: &Unknown) -> Result<SharedMapOpenOptions> {
  match options::object(env, v, "SharedMap.open(name, options)", false)? {
    None => Ok(SharedMapOpenOptions {
      json: None,
      lock_timeout: None,
      mode: None,
    }),
    Some(o) => Ok(SharedMapOpenOptions {
      json: options::boolean(env, &o, "json")?,
      lock_timeout: options::number(env, &o, "lockTimeout", errors::INVALID_TIMEOUT)?,
      mode: options::number(env, &o, "mode", errors::INVALID_ARGUMENT)?,
    }),
  }
}

/// `lockTimeout`: an integer number of ms from 1 to 2^31 - 1 (the largest
/// `setTimeout` delay); the crate's default when absent.
fn lock_timeout(env: &Env, ms: Option<f64>) -> Result<Duration> {
  const MAX: f64 = 2_147_483_647.0;
  match ms {
    None => Ok(Options::default().lock_timeout),
    Some(n) if (1.0..=MAX).contains(&n) && n.fract() == 0.0 => Ok(Duration::from_millis(n as u64)),
    Some(n) => Err(errors::range_error(
      env,
      errors::INVALID_TIMEOUT,
      &format!("lockTimeout must be an integer number of ms from 1 to {MAX}, got {n}"),
    )),
  }
}

/// A map name argument: a string (its format is checked by the crate,
/// `ENAME`).
fn name_arg(env: &Env, v: &Unknown) -> Result<String> {
  options::string_value(env, v, "name", errors::INVALID_ARGUMENT)
}

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

/// Converts a crate error into a thrown JavaScript error with its code.
fn shm_error(env: &Env, e: lrukit_shm_map::Error) -> napi::Error {
  let msg = e.to_string();
  match e.code {
    "EKEYTOOLONG" | "EVALUETOOLONG" | "ERANGE" | "EINVAL" | "ENAME" => {
      errors::range_error(env, e.code, &msg)
    }
    "ETYPE" => errors::type_error(env, e.code, &msg),
    _ => errors::error(env, e.code, &msg),
  }
}

/// [`shm_error`] for errors about a segment: the message names the map.
fn named_error(env: &Env, name: &str, mut e: lrukit_shm_map::Error) -> napi::Error {
  if !e.message.contains(name) {
    e.message = format!("shared map \"{name}\": {}", e.message);
  }
  shm_error(env, e)
}

/// A non-negative integer option (or `None` when absent).
fn int_option(env: &Env, v: Option<f64>, what: &str, max: f64) -> Result<Option<u64>> {
  int_option_code(env, v, what, max, errors::INVALID_ARGUMENT)
}

/// [`int_option`] whose range error has `code`.
fn int_option_code(
  env: &Env,
  v: Option<f64>,
  what: &str,
  max: f64,
  code: &str,
) -> Result<Option<u64>> {
  match v {
    None => Ok(None),
    Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= max => Ok(Some(n as u64)),
    Some(n) => Err(errors::range_error(
      env,
      code,
      &format!("{what} must be an integer from 0 to {max}, got {n}"),
    )),
  }
}

fn create_options(env: &Env, o: &SharedMapOptions) -> Result<Options> {
  let mut opts = Options::default();
  // One byte of every stored key is its type tag.
  let tag = lrukit_shm_map::codec::key::TAG_BYTES_LEN as u32;
  let key = int_option(env, o.max_key_bytes, "maxKeyBytes", 65534.0)?;
  opts.max_key_bytes = key.map_or(opts.max_key_bytes, |k| k as u32) + tag;
  if let Some(v) = int_option(env, o.max_value_bytes, "maxValueBytes", u32::MAX as f64)? {
    opts.max_value_bytes = v as u32;
  }
  let avg_key = int_option(env, o.avg_key_bytes, "avgKeyBytes", 65534.0)?;
  opts.avg_key_bytes = avg_key.map_or(opts.avg_key_bytes, |k| k as u32) + tag;
  if let Some(v) = int_option(env, o.avg_value_bytes, "avgValueBytes", u32::MAX as f64)? {
    opts.avg_value_bytes = v as u32;
  }
  opts.eviction = match o.eviction.as_deref() {
    None | Some("lru") => Eviction::Lru,
    Some("none") => Eviction::None,
    Some(other) => {
      return Err(errors::range_error(
        env,
        errors::INVALID_ARGUMENT,
        &format!("eviction must be 'lru' or 'none', got '{other}'"),
      ))
    }
  };
  opts.default_ttl_ms =
    int_option_code(env, o.ttl, "ttl", 2f64.powi(53), errors::INVALID_TTL)?.unwrap_or(0);
  if let Some(mode) = int_option(env, o.mode, "mode", 0o777 as f64)? {
    opts.mode = mode as u32;
  }
  opts.shards = int_option(env, o.shards, "shards", 1024.0)?.map(|s| s as u32);
  opts.lock_timeout = lock_timeout(env, o.lock_timeout)?;
  let capacity = int_option_code(
    env,
    o.capacity,
    "capacity",
    u32::MAX as f64,
    errors::INVALID_CAPACITY,
  )?;
  let memory = int_option_code(
    env,
    o.memory_size,
    "memorySize",
    2f64.powi(53),
    errors::INVALID_CAPACITY,
  )?;
  if capacity.is_none() && memory.is_none() {
    return Err(errors::type_error(
      env,
      errors::INVALID_CAPACITY,
      "SharedMap needs a memorySize or a capacity (or both), as numbers",
    ));
  }
  if capacity == Some(0) {
    return Err(errors::range_error(
      env,
      errors::INVALID_CAPACITY,
      "capacity must be a positive integer",
    ));
  }
  opts.capacity = capacity.map(|c| c as u32);
  opts.memory_size = memory;
  Ok(opts)
}

impl MapShared {
  fn state(&self, env: &Env) -> Result<RefMut<'_, MapState>> {
    let state = self.state.try_borrow_mut().map_err(|_| {
      errors::error(
        env,
        errors::REENTRANT,
        "SharedMap was called again while one of its own calls was running",
      )
    })?;
    if state.map.is_none() {
      return Err(errors::error(
        env,
        "ECLOSED",
        "this SharedMap handle was closed",
      ));
    }
    Ok(state)
  }
}

impl MapState {
  fn map(&self) -> &SharedMap {
    // `MapShared::state` only hands out open handles.
    self.map.as_ref().expect("checked open")
  }
}

fn ttl_option(env: &Env, options: &Unknown) -> Result<Option<u64>> {
  match options.get_type()? {
    ValueType::Undefined | ValueType::Null => Ok(None),
    ValueType::Object => {
      // SAFETY: just checked to be an object.
      let o = unsafe { options.cast::<Object>()? };
      let ttl: Option<Unknown> = o.get_named_property("ttl")?;
      match ttl {
        None => Ok(None),
        Some(t) if t.get_type()? == ValueType::Undefined => Ok(None),
        Some(t) if t.get_type()? == ValueType::Number => {
          // SAFETY: just checked to be a number.
          let ms = unsafe { t.cast::<f64>()? };
          if ms.is_nan() || ms < 0.0 {
            return Err(errors::range_error(
              env,
              errors::INVALID_TTL,
              "ttl must be a non-negative number of ms",
            ));
          }
          Ok(Some(if ms.is_infinite() {
            0
          } else {
            ms.ceil() as u64
          }))
        }
        Some(_) => Err(errors::type_error(
          env,
          errors::INVALID_TTL,
          "ttl must be a number",
        )),
      }
    }
    _ => Err(errors::type_error(
      env,
      errors::INVALID_ARGUMENT,
      "options must be an object",
    )),
  }
}

fn number_or(env: &Env, v: &Unknown, default: f64, what: &str) -> Result<f64> {
  match v.get_type()? {
    ValueType::Undefined => Ok(default),
    ValueType::Number => {
      // SAFETY: just checked to be a number.
      let n = unsafe { v.cast::<f64>()? };
      if n.is_finite() {
        Ok(n)
      } else {
        Err(errors::range_error(
          env,
          errors::INVALID_ARGUMENT,
          &format!("{what} must be finite"),
        ))
      }
    }
    _ => Err(errors::type_error(
      env,
      errors::INVALID_ARGUMENT,
      &format!("{what} must be a number"),
    )),
  }
}

fn undefined(env: &Env) -> Result<sys::napi_value> {
  Ok(().into_unknown(env)?.raw())
}

// ---- hot methods -----------------------------------------------------------

fn read(env: &Env, this: &MapShared, args: &[Unknown], peek: bool) -> Result<sys::napi_value> {
  let mut state = this.state(env)?;
  let MapState {
    map, key: scratch, ..
  } = &mut *state;
  let k = scratch.encode(env, &args[0])?;
  let map = map.as_ref().expect("checked open");
  // The JavaScript value is built from a per-thread copy; no shard lock is
  // held, and JSON.parse (the only conversion that runs JS) cannot reach this
  // handle's state, which stays borrowed.
  let to_js = |v: ValueRef| value_to_js(env, v).map(|u| u.raw());
  let found = if peek {
    map.peek_with(k, to_js)
  } else {
    map.get_with(k, to_js)
  };
  match found.map_err(|e| shm_error(env, e))? {
    Some(value) => value,
    None => undefined(env),
  }
}

/// `get(key)`: the value, or `undefined` when missing or expired.
fn get(
  env: &Env,
  this: &MapShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  read(env, this, args, false)
}

/// `getMany(keys)`: the values in order, `undefined` for misses; hits,
/// misses and recency as for `get`. All keys are read first; the map then
/// starts the lookups of each few keys together so their cache misses
/// overlap.
fn get_many(
  env: &Env,
  this: &MapShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let keys = raw::as_array(env, &args[0], "getMany(keys) needs an array of keys")?;
  let n = keys.len();
  let mut state = this.state(env)?;
  let MapState {
    map,
    key: scratch,
    batch,
    ..
  } = &mut *state;
  key::encode_all(env, &keys, scratch, batch)?;
  let list: Vec<&[u8]> = (0..batch.len()).map(|i| batch.get(i)).collect();
  let values = map
    .as_ref()
    .expect("checked open")
    .get_many_with(&list, |_, v| match v {
      Some(v) => value_to_js(env, v).map(|u| u.raw()),
      None => undefined(env),
    })
    .map_err(|e| shm_error(env, e))?;
  let mut out = env.create_array(n)?;
  for (i, v) in values.into_iter().enumerate() {
    // SAFETY: `v` is a value just made in this environment.
    out.set(i as u32, unsafe {
      Unknown::from_raw_unchecked(env.raw(), v?)
    })?;
  }
  Ok(out.raw())
}

/// `peek(key)`: like `get` without touching recency or stats.
fn peek(
  env: &Env,
  this: &MapShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  read(env, this, args, true)
}

/// `has(key)`.
fn has(
  env: &Env,
  this: &MapShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let mut state = this.state(env)?;
  let MapState {
    map, key: scratch, ..
  } = &mut *state;
  let k = scratch.encode(env, &args[0])?;
  let present = map
    .as_ref()
    .expect("checked open")
    .contains(k)
    .map_err(|e| shm_error(env, e))?;
  Ok(present.into_unknown(env)?.raw())
}

fn write(
  env: &Env,
  this: &MapShared,
  args: &[Unknown],
  only_if_absent: bool,
) -> Result<sys::napi_value> {
  let json = this.state(env)?.json;
  let incoming = prepare_value(env, json, args[1])?;
  let ttl = ttl_option(env, &args[2])?;
  let mut state = this.state(env)?;
  let MapState {
    map,
    key: scratch,
    value,
    ..
  } = &mut *state;
  let k = scratch.encode(env, &args[0])?;
  let v = value_ref(env, &incoming, value)?;
  let map = map.as_ref().expect("checked open");
  let stored = if only_if_absent {
    map.add(k, v, ttl)
  } else {
    map.set(k, v, ttl).map(|()| true)
  }
  .map_err(|e| shm_error(env, e))?;
  Ok(stored.into_unknown(env)?.raw())
}

/// `set(key, value, { ttl? })`: true when stored.
fn set(
  env: &Env,
  this: &MapShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  write(env, this, args, false)
}

/// `add(key, value, { ttl? })`: stores only if absent; true when stored.
fn add(
  env: &Env,
  this: &MapShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  write(env, this, args, true)
}

/// `incr(key, delta = 1, { initial?, ttl? })`: atomic across processes.
fn incr(
  env: &Env,
  this: &MapShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let delta = number_or(env, &args[1], 1.0, "delta")?;
  let initial = match args[2].get_type()? {
    ValueType::Object => {
      // SAFETY: just checked to be an object.
      let o = unsafe { args[2].cast::<Object>()? };
      let initial: Option<Unknown> = o.get_named_property("initial")?;
      match initial {
        Some(i) => number_or(env, &i, 0.0, "initial")?,
        None => 0.0,
      }
    }
    _ => 0.0,
  };
  let ttl = ttl_option(env, &args[2])?;
  let mut state = this.state(env)?;
  let MapState {
    map, key: scratch, ..
  } = &mut *state;
  let k = scratch.encode(env, &args[0])?;
  let value = map
    .as_ref()
    .expect("checked open")
    .incr_value(k, delta, initial, ttl)
    .map_err(|e| shm_error(env, e))?;
  drop(state);
  Ok(value_to_js(env, value.as_ref())?.raw())
}

/// `delete(key)`: true when a live entry was removed.
fn delete(
  env: &Env,
  this: &MapShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let mut state = this.state(env)?;
  let MapState {
    map, key: scratch, ..
  } = &mut *state;
  let k = scratch.encode(env, &args[0])?;
  let removed = map
    .as_ref()
    .expect("checked open")
    .delete(k)
    .map_err(|e| shm_error(env, e))?;
  Ok(removed.into_unknown(env)?.raw())
}

/// The hot methods, bound to each instance when it is made.
const HOT_METHODS: &[(&str, raw::Method<MapShared>)] = &[
  ("get\0", get),
  ("getMany\0", get_many),
  ("peek\0", peek),
  ("has\0", has),
  ("set\0", set),
  ("add\0", add),
  ("incr\0", incr),
  ("delete\0", delete),
];

fn instance(env: &Env, map: SharedMap, json: bool) -> Result<Unknown<'_>> {
  let shared = Rc::new(MapShared {
    state: RefCell::new(MapState {
      map: Some(map),
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
    ts_args_type = "name: string, options: SharedMapOptions",
    ts_return_type = "SharedMap"
  )]
  pub fn create<'e>(env: &'e Env, name: Unknown<'e>, options: Unknown<'e>) -> Result<Unknown<'e>> {
    let name = name_arg(env, &name)?;
    let options = read_create_options(env, &options, "SharedMap.create(name, options)")?;
    let opts = create_options(env, &options)?;
    let map = SharedMap::create(&name, &opts).map_err(|e| named_error(env, &name, e))?;
    instance(env, map, options.json.unwrap_or(false))
  }

  /// Opens an existing map; code `ENOENT` if missing, `EINCOMPAT` if its
  /// layout or version differs from this build's, `EPERM` if another user
  /// owns the segment or it grants write beyond `options.mode` (nothing is
  /// read from it then), `EUNINIT` if its creator died before initialising
  /// it (`openOrCreate` takes such a segment over), `ETIMEDOUT` if a live
  /// creator is still initialising it after `lockTimeout`.
  #[napi(
    ts_args_type = "name: string, options?: SharedMapOpenOptions | undefined | null",
    ts_return_type = "SharedMap"
  )]
  pub fn open<'e>(env: &'e Env, name: Unknown<'e>, options: Unknown<'e>) -> Result<Unknown<'e>> {
    let name = name_arg(env, &name)?;
    let options = read_open_options(env, &options)?;
    let mut opts = Options {
      lock_timeout: lock_timeout(env, options.lock_timeout)?,
      ..Options::default()
    };
    if let Some(mode) = int_option(env, options.mode, "mode", 0o777 as f64)? {
      opts.mode = mode as u32;
    }
    let map = SharedMap::open_with(&name, &opts).map_err(|e| named_error(env, &name, e))?;
    instance(env, map, options.json.unwrap_or(false))
  }

  /// Opens the map, creating it if needed; race-free when many processes
  /// start at once (exactly one creates, the others wait until it is ready).
  #[napi(
    ts_args_type = "name: string, options: SharedMapOptions",
    ts_return_type = "SharedMap"
  )]
  pub fn open_or_create<'e>(
    env: &'e Env,
    name: Unknown<'e>,
    options: Unknown<'e>,
  ) -> Result<Unknown<'e>> {
    let name = name_arg(env, &name)?;
    let options = read_create_options(env, &options, "SharedMap.openOrCreate(name, options)")?;
    let opts = create_options(env, &options)?;
    let map = SharedMap::open_or_create(&name, &opts).map_err(|e| named_error(env, &name, e))?;
    instance(env, map, options.json.unwrap_or(false))
  }

  /// Removes the name; processes that have the map open keep using it until
  /// they close it. Returns false if the name did not exist.
  #[napi(ts_args_type = "name: string")]
  pub fn unlink(env: &Env, name: Unknown) -> Result<bool> {
    let name = name_arg(env, &name)?;
    SharedMap::unlink(&name).map_err(|e| named_error(env, &name, e))
  }

  /// Bytes of shared memory `create` allocates for these options (what
  /// `memorySize` becomes, or what `capacity` entries of the average sizes
  /// take).
  #[napi(ts_args_type = "options: SharedMapOptions")]
  pub fn calc_required_memory_size(env: &Env, options: Unknown) -> Result<f64> {
    let o = read_create_options(env, &options, "SharedMap.calcRequiredMemorySize(options)")?;
    let opts = create_options(env, &o)?;
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
  #[napi(ts_args_type = "key: LruKey, expected: SharedValue, value: SharedValue")]
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
      .as_ref()
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
    let any = errors::INVALID_ARGUMENT;
    let cutoff_ms = options::number_value(env, &cutoff_ms, "cutoffMs", any)?;
    if cutoff_ms.is_nan() {
      return Err(errors::range_error(env, any, "cutoffMs must not be NaN"));
    }
    let max_evictions = options::optional_number(env, &max_evictions, "maxEvictions", any)?;
    let cutoff = int_option(
      env,
      Some(cutoff_ms.max(0.0).floor()),
      "cutoffMs",
      2f64.powi(53),
    )?
    .unwrap_or(0);
    let max = int_option(env, max_evictions, "maxEvictions", 2f64.powi(53))?;
    let n = self
      .shared
      .state(env)?
      .map()
      .evict_older_than(cutoff, max)
      .map_err(|e| shm_error(env, e))?;
    Ok(n as f64)
  }

  /// Keys (weakly consistent snapshot: each shard read consistently).
  #[napi(ts_return_type = "IterableIterator<LruKey>")]
  pub fn keys<'e>(&self, env: &'e Env) -> Result<Unknown<'e>> {
    let keys = self
      .shared
      .state(env)?
      .map()
      .keys()
      .map_err(|e| shm_error(env, e))?;
    let mut arr = env.create_array(keys.len() as u32)?;
    for (i, k) in keys.iter().enumerate() {
      arr.set(i as u32, key::to_js(env, k)?)?;
    }
    raw::array_iterator(arr.coerce_to_object()?)
  }

  /// `[key, value]` pairs (weakly consistent snapshot).
  #[napi(ts_return_type = "IterableIterator<[LruKey, SharedValue]>")]
  pub fn entries<'e>(&self, env: &'e Env) -> Result<Unknown<'e>> {
    let entries = self
      .shared
      .state(env)?
      .map()
      .entries()
      .map_err(|e| shm_error(env, e))?;
    let mut arr = env.create_array(entries.len() as u32)?;
    for (i, (k, v)) in entries.into_iter().enumerate() {
      let mut pair = env.create_array(2)?;
      pair.set(0, key::to_js(env, &k)?)?;
      pair.set(1, value_to_js(env, v.as_ref())?)?;
      arr.set(i as u32, pair)?;
    }
    raw::array_iterator(arr.coerce_to_object()?)
  }

  /// Counters and sizes, totals over all processes.
  #[napi]
  pub fn stats(&self, env: &Env) -> Result<SharedMapStats> {
    let s = self.shared.state(env)?.map().stats();
    Ok(SharedMapStats {
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
    })
  }

  /// A full invariant check of every shard.
  #[napi]
  pub fn verify(&self, env: &Env) -> Result<SharedMapReport> {
    let r = self.shared.state(env)?.map().verify();
    Ok(SharedMapReport {
      ok: r.ok,
      problems: r.problems,
    })
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

  /// Test support, not API: the `[offset, length]` byte ranges of the shard
  /// locks in the segment. Damaging them is outside the hostile-memory
  /// guarantee (glibc keeps robust-list pointers inside `pthread_mutex_t`),
  /// so the byte-flip test leaves them alone.
  #[napi(js_name = "__debugLockRanges", skip_typescript)]
  pub fn debug_lock_ranges(&self, env: &Env) -> Result<Vec<Vec<f64>>> {
    Ok(
      self
        .shared
        .state(env)?
        .map()
        .debug_lock_ranges()
        .into_iter()
        .map(|(offset, len)| vec![offset as f64, len as f64])
        .collect(),
    )
  }

  /// Unmaps this handle (never unlinks; see `SharedMap.unlink`). Further
  /// calls on it throw `ECLOSED`. Idempotent.
  #[napi]
  pub fn close(&self, env: &Env) -> Result<()> {
    let mut state = self.shared.state.try_borrow_mut().map_err(|_| {
      errors::error(
        env,
        errors::REENTRANT,
        "SharedMap.close() during another call",
      )
    })?;
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
