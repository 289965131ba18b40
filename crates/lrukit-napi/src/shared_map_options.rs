//! The arguments of `SharedMap`'s calls, read from JavaScript into what
//! `lrukit_shm_map` takes: the options of `create` / `openOrCreate` /
//! `calcRequiredMemorySize` and `open` into an [`Options`], and the options
//! and numbers of writes, `incr` and `evictOlderThan`.
//!
//! This converts and checks that a number fits the crate's field; it decides
//! no default and no limit. Defaults are [`Options::default`] and
//! [`limits`]; the crate refuses options it does not allow (`EINVAL`). Two
//! bounds belong to JavaScript: integers must be exact in an f64
//! ([`EXACT_INTEGERS`]), and `lockTimeout` is a timer delay
//! ([`MAX_TIMER_MS`]).

use std::time::Duration;

use lrukit_shm_map::codec::key::TAG_BYTES_LEN;
use lrukit_shm_map::{limits, Eviction, FetchOptions, Options};
use napi::{
  bindgen_prelude::{JsObjectValue, Object},
  Env, Result, Unknown, ValueType,
};
use napi_derive::napi;

use crate::errors;
use crate::options;

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

/// Integers up to this are exact in an f64 (2^53): the bound of every
/// option counted in u64 (`memorySize`, `ttl`, `cutoffMs`, `maxEvictions`).
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// The largest `lockTimeout`: 2^31 - 1 ms, the longest delay JavaScript
/// timers (`setTimeout`) take.
const MAX_TIMER_MS: f64 = 2_147_483_647.0;

/// The crate counts a key as it is stored, its type tag included
/// (`codec::key`); `maxKeyBytes` and `avgKeyBytes` count the key's own bytes
/// (a string's UTF-8, a Buffer's length). Given or default, they get the tag
/// added.
const KEY_TAG: u32 = TAG_BYTES_LEN as u32;

/// The options of `create` / `openOrCreate` / `calcRequiredMemorySize`
/// (`what` names the call): the crate's options and the handle's `json`.
pub(crate) fn create(env: &Env, v: &Unknown, what: &str) -> Result<(Options, bool)> {
  let o = read_create_options(env, v, what)?;
  Ok((create_options(env, &o)?, o.json.unwrap_or(false)))
}

/// The optional options of `open`: the crate's options (the lock timeout and
/// the accepted mode; the rest are the segment's) and the handle's `json`.
pub(crate) fn open(env: &Env, v: &Unknown) -> Result<(Options, bool)> {
  let o = read_open_options(env, v)?;
  let mut opts = Options {
    lock_timeout: lock_timeout(env, o.lock_timeout)?,
    ..Options::default()
  };
  if let Some(mode) = int_option(env, o.mode, "mode", limits::MODE_BITS as f64)? {
    opts.mode = mode as u32;
  }
  Ok((opts, o.json.unwrap_or(false)))
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

/// The options of `fetch` (`FetchOptions` in types/header.d.ts): the crate's
/// [`FetchOptions`].
pub(crate) fn fetch(env: &Env, v: &Unknown) -> Result<FetchOptions> {
  let mut out = FetchOptions {
    ttl_ms: None,
    stale_ms: 0,
    lock_timeout_ms: limits::FETCH_LOCK_TIMEOUT.as_millis() as u64,
  };
  let Some(o) = options::object(env, v, "map.fetch(key, loader, options)", false)? else {
    return Ok(out);
  };
  out.ttl_ms = ttl(env, v)?;
  if let Some(ms) = options::number(env, &o, "staleWhileRevalidate", errors::INVALID_TTL)? {
    if ms.is_nan() || !(0.0..=EXACT_INTEGERS).contains(&ms) {
      return Err(errors::range_error(
        env,
        errors::INVALID_TTL,
        &format!("staleWhileRevalidate must be a number of ms from 0 to 2^53, got {ms}"),
      ));
    }
    out.stale_ms = ms.ceil() as u64;
  }
  if let Some(ms) = options::number(env, &o, "lockTimeout", errors::INVALID_TIMEOUT)? {
    out.lock_timeout_ms = lock_timeout(env, Some(ms))?.as_millis() as u64;
  }
  Ok(out)
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

/// `lockTimeout`: an integer number of ms from 1 to [`MAX_TIMER_MS`]; the
/// crate's default when absent.
fn lock_timeout(env: &Env, ms: Option<f64>) -> Result<Duration> {
  match ms {
    None => Ok(Options::default().lock_timeout),
    Some(n) if (1.0..=MAX_TIMER_MS).contains(&n) && n.fract() == 0.0 => {
      Ok(Duration::from_millis(n as u64))
    }
    Some(n) => Err(errors::range_error(
      env,
      errors::INVALID_TIMEOUT,
      &format!("lockTimeout must be an integer number of ms from 1 to {MAX_TIMER_MS}, got {n}"),
    )),
  }
}

/// A map name argument: a string (its format is checked by the crate,
/// `ENAME`).
pub(crate) fn name(env: &Env, v: &Unknown) -> Result<String> {
  options::string_value(env, v, "name", errors::INVALID_ARGUMENT)
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

/// The crate's options for the create options `o`: each option given
/// replaces the crate's default once it fits the crate's field (the crate
/// checks the rest).
fn create_options(env: &Env, o: &SharedMapOptions) -> Result<Options> {
  let mut opts = Options::default();
  let key_max = (limits::MAX_KEY_BYTES - KEY_TAG) as f64;
  let key = int_option(env, o.max_key_bytes, "maxKeyBytes", key_max)?;
  opts.max_key_bytes = key.map_or(opts.max_key_bytes, |k| k as u32) + KEY_TAG;
  if let Some(v) = int_option(env, o.max_value_bytes, "maxValueBytes", u32::MAX as f64)? {
    opts.max_value_bytes = v as u32;
  }
  let avg_key = int_option(env, o.avg_key_bytes, "avgKeyBytes", key_max)?;
  opts.avg_key_bytes = avg_key.map_or(opts.avg_key_bytes, |k| k as u32) + KEY_TAG;
  if let Some(v) = int_option(env, o.avg_value_bytes, "avgValueBytes", u32::MAX as f64)? {
    opts.avg_value_bytes = v as u32;
  }
  opts.eviction = match o.eviction.as_deref() {
    None => opts.eviction,
    Some("lru") => Eviction::Lru,
    Some("none") => Eviction::None,
    Some(other) => {
      return Err(errors::range_error(
        env,
        errors::INVALID_ARGUMENT,
        &format!("eviction must be 'lru' or 'none', got '{other}'"),
      ))
    }
  };
  if let Some(ttl) = int_option_code(env, o.ttl, "ttl", EXACT_INTEGERS, errors::INVALID_TTL)? {
    opts.default_ttl_ms = ttl;
  }
  if let Some(mode) = int_option(env, o.mode, "mode", limits::MODE_BITS as f64)? {
    opts.mode = mode as u32;
  }
  if let Some(shards) = int_option(env, o.shards, "shards", limits::MAX_SHARDS as f64)? {
    opts.shards = Some(shards as u32);
  }
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
    EXACT_INTEGERS,
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

/// The `ttl` of a write's options (`{ ttl? }`): `None` for the map's
/// default; `Infinity` never expires.
pub(crate) fn ttl(env: &Env, options: &Unknown) -> Result<Option<u64>> {
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
            limits::NO_EXPIRY
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

/// `v` as a finite number, or `default` when it is `undefined`.
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

/// The arguments of `incr(key, delta?, { initial?, ttl? })` after the key:
/// `(delta, initial, ttl)`, the crate's usual ones when absent.
pub(crate) fn incr(
  env: &Env,
  delta: &Unknown,
  options: &Unknown,
) -> Result<(f64, f64, Option<u64>)> {
  let delta = number_or(env, delta, limits::INCR_DELTA, "delta")?;
  let initial = match options.get_type()? {
    ValueType::Object => {
      // SAFETY: just checked to be an object.
      let o = unsafe { options.cast::<Object>()? };
      let initial: Option<Unknown> = o.get_named_property("initial")?;
      match initial {
        Some(i) => number_or(env, &i, limits::INCR_INITIAL, "initial")?,
        None => limits::INCR_INITIAL,
      }
    }
    _ => limits::INCR_INITIAL,
  };
  Ok((delta, initial, ttl(env, options)?))
}

/// The arguments of `evictOlderThan(cutoffMs, maxEvictions?)`: the cutoff in
/// ms since the epoch (negative is 0, fractions round down) and the most
/// evictions.
pub(crate) fn evict_older_than(
  env: &Env,
  cutoff_ms: &Unknown,
  max_evictions: &Unknown,
) -> Result<(u64, Option<u64>)> {
  let any = errors::INVALID_ARGUMENT;
  let cutoff_ms = options::number_value(env, cutoff_ms, "cutoffMs", any)?;
  if cutoff_ms.is_nan() {
    return Err(errors::range_error(env, any, "cutoffMs must not be NaN"));
  }
  let max_evictions = options::optional_number(env, max_evictions, "maxEvictions", any)?;
  let cutoff = int_option(
    env,
    Some(cutoff_ms.max(0.0).floor()),
    "cutoffMs",
    EXACT_INTEGERS,
  )?
  .unwrap_or(0);
  let max = int_option(env, max_evictions, "maxEvictions", EXACT_INTEGERS)?;
  Ok((cutoff, max))
}
