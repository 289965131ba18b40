//! `LruCache`: the JavaScript face of [`lrukit_array_lru::timed::TimedLru`].
//! The crate owns the clock and the TTL, deadline and timestamp rules; this
//! file reads JavaScript arguments into them and their results back out.

use std::cell::{RefCell, RefMut};
use std::rc::Rc;

use lrukit_array_lru::timed::{
  check_timestamp, Capacity, Clock, ClockError, SetOptions, Stamped, TimedLru, TimedLruError, Ttl,
  MAX_CAPACITY,
};
use napi::{
  bindgen_prelude::{JavaScriptClassExt, JsObjectValue, Object, ObjectFinalize, This, ToNapiValue},
  sys, Env, JsValue, Result, Unknown, ValueType,
};
use napi_derive::napi;

use crate::errors;
use crate::helpers::{self, Helper};
use crate::key::{self, KeyBatch, KeyBytes, KeyScratch};
use crate::lru_values::Values;
use crate::memory;
use crate::options;
use crate::raw::{self, as_array, element};

/// Bytes of table per entry slot, used or not: the key (32), the value's
/// slot with its timestamp and deadline (24), two list links and two hash
/// buckets (16). The README's figure; this fails to compile when the layout
/// changes.
const BYTES_PER_ENTRY: usize = lrukit_array_lru::bytes_per_entry::<KeyBytes, Stamped<u32>, u32>();
const _: () = assert!(
  BYTES_PER_ENTRY == 72,
  "LruCache's bytes per entry changed: update the README (capacity, Memory)"
);

/// The error for a table that could not be had (`what`: the cache's action).
fn table_error(env: &Env, what: &str, e: TimedLruError) -> napi::Error {
  match e {
    TimedLruError::InvalidCapacity => {
      errors::range_error(env, errors::INVALID_CAPACITY, "capacity is out of range")
    }
    TimedLruError::OverLimit {
      capacity,
      bytes,
      limit,
    } => memory::out_of_memory(
      env,
      &format!(
        "{what}: a table of {capacity} entries needs {bytes} bytes \
         ({BYTES_PER_ENTRY} per entry), more than the {limit} bytes of physical memory"
      ),
    ),
    TimedLruError::OutOfMemory { capacity, bytes } => memory::out_of_memory(
      env,
      &format!(
        "{what}: could not allocate {bytes} bytes for a table of {capacity} entries \
         ({BYTES_PER_ENTRY} per entry)"
      ),
    ),
  }
}

/// A fixed-capacity least-recently-used cache whose index and keys live in
/// native memory. Keys are strings, numbers, bigints or Buffers; values are
/// any JavaScript value, kept as they are (`get` returns the very value that
/// was `set`: nothing is copied or converted).
///
/// Every entry records an insert timestamp (the cache's clock unless given)
/// and may carry a TTL; an expired entry is never returned and counts as
/// missing. The clock is the wall clock (`Date.now()`), or with
/// `clock: 'manual'` a clock that starts at 0 and moves only through
/// `advanceTime(ms)`, for tests and simulations.
///
/// Memory: a bounded cache allocates `capacity * 72` bytes at construction
/// (72 bytes per entry slot, used or not; keys over 23 bytes add their own
/// allocation). The values stay on the V8 heap, in one array per cache.
///
/// Errors: `RangeError` with code `ERR_LRUKIT_INVALID_CAPACITY`,
/// `ERR_LRUKIT_INVALID_TTL`, `ERR_LRUKIT_INVALID_TIMESTAMP` or
/// `ERR_LRUKIT_OUT_OF_MEMORY` (the table, or a buffer sized from the
/// arguments, cannot be allocated; the message gives the bytes); `TypeError`
/// with code `ERR_LRUKIT_INVALID_KEY` or `ERR_LRUKIT_INVALID_ARGUMENT`.
#[napi(js_name = "LruCache", custom_finalize)]
pub struct JsLruCache {
  shared: Rc<LruShared>,
}

/// What the instance and its bound hot methods share.
struct LruShared {
  /// Borrowed mutably by one call at a time; a re-entrant call is refused.
  state: RefCell<LruState>,
}

struct LruState {
  /// Keys to value slots (see `lru_values`).
  inner: TimedLru<KeyBytes, u32>,
  /// The values, in a JavaScript array indexed by slot.
  values: Values,
  scratch: KeyScratch,
  /// Encoded keys of a `getMany` batch.
  batch: KeyBatch,
}

/// Options for `new LruCache(options)`. Only its TypeScript declaration is
/// generated from this; the constructor reads the object by hand.
#[allow(dead_code)]
#[napi(object, object_to_js = false)]
pub struct LruCacheOptions {
  /// Maximum number of entries: a positive integer up to 4,294,967,294, or
  /// `Infinity` for an unbounded cache that is pruned only by
  /// `popLru()`/`delete()`. A bounded cache allocates `capacity * 72` bytes
  /// here; a table larger than the machine's physical memory, or one the
  /// system refuses, throws a `RangeError` with code `ERR_LRUKIT_OUT_OF_MEMORY`.
  #[napi(ts_type = "number")]
  pub capacity: Unknown<'static>,
  /// Default time-to-live in milliseconds; `0`/`Infinity`/omitted = never expires.
  #[napi(ts_type = "number")]
  pub ttl: Option<Unknown<'static>>,
  /// `'system'` (default): TTLs and default timestamps run on the wall clock
  /// (`Date.now()`). `'manual'`: the cache's clock starts at 0 and moves only
  /// through `advanceTime(ms)` (for tests and simulations); `set` stamps
  /// entries with it.
  #[napi(ts_type = "'system' | 'manual'")]
  pub clock: Option<String>,
  /// `true`: strings, numbers, bigints, booleans, `null` and `undefined` are
  /// copied into native memory, so a large cache of them adds nothing to
  /// the V8 heap for the garbage collector to trace; each hit then makes a
  /// new JavaScript value (a string comes back from UTF-8: a lone surrogate
  /// as U+FFFD). Objects stay where they are. Default `false`: every value
  /// is kept as it is, and a hit returns it without a copy.
  pub off_heap: Option<bool>,
}

/// Reads a TTL (ms); the crate's [`Ttl::from_ms`] decides what it means.
fn parse_ttl(env: &Env, v: &Option<Unknown>) -> Result<Option<Ttl>> {
  let Some(v) = v else { return Ok(None) };
  if v.get_type()? == ValueType::Undefined {
    return Ok(None);
  }
  let ms = options::number_value(env, v, "ttl", errors::INVALID_TTL)?;
  Ttl::from_ms(ms)
    .map(Some)
    .map_err(|e| errors::range_error(env, errors::INVALID_TTL, &e.to_string()))
}

/// Reads the `clock` option.
fn parse_clock(env: &Env, o: &Object) -> Result<Clock> {
  match options::string(env, o, "clock", errors::INVALID_ARGUMENT)?.as_deref() {
    None | Some("system") => Ok(Clock::System),
    Some("manual") => Ok(Clock::Manual(0.0)),
    Some(other) => Err(errors::range_error(
      env,
      errors::INVALID_ARGUMENT,
      &format!("clock must be 'system' or 'manual', got '{other}'"),
    )),
  }
}

/// Disposal of entries leaving the table outside `set`: the slot is given
/// back and its element cleared, so the value can be collected.
fn clearing<'a>(env: &'a Env, values: &'a mut Values) -> impl FnMut(KeyBytes, Stamped<u32>) + 'a {
  move |_, entry| values.clear(env, entry.value)
}

/// Disposal of entries `set` evicts or replaces: the slot is given back for
/// the next insert to overwrite.
fn freeing(values: &mut Values) -> impl FnMut(KeyBytes, Stamped<u32>) + '_ {
  move |_, entry| values.give_back(entry.value)
}

impl raw::Bound for LruShared {
  fn release(&self, env: &Env) {
    if let Ok(mut state) = self.state.try_borrow_mut() {
      let LruState { inner, values, .. } = &mut *state;
      inner.clear(freeing(values));
      values.release(env);
    }
  }
}

impl ObjectFinalize for JsLruCache {
  fn finalize(self, env: Env) -> Result<()> {
    raw::drop_owner(&env, self.shared);
    Ok(())
  }
}

/// Builds `{ key, value, timestamp }`.
fn entry_object<'env>(
  env: &'env Env,
  values: &Values,
  key: &[u8],
  entry: &Stamped<u32>,
) -> Result<Object<'env>> {
  let mut obj = Object::new(env)?;
  obj.set_named_property("key", key::to_js(env, key)?)?;
  obj.set_named_property("value", value(env, values, entry.value)?)?;
  obj.set_named_property("timestamp", entry.timestamp)?;
  Ok(obj)
}

/// `values[slot]` as a value of this call.
fn value<'env>(env: &'env Env, values: &Values, slot: u32) -> Result<Unknown<'env>> {
  // SAFETY: a handle made in this call's scope.
  Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), values.get(env, slot)?) })
}

impl LruShared {
  /// The mutable state, or an error when a call on this cache is in progress.
  fn state(&self, env: &Env) -> Result<RefMut<'_, LruState>> {
    raw::enter(env, &self.state, "LruCache")
  }
}

#[napi]
impl JsLruCache {
  #[napi(constructor, ts_args_type = "options: LruCacheOptions")]
  pub fn new(env: Env, this: This, options: Unknown) -> Result<Self> {
    // Called without `new`, `this` is the global object: binding the hot
    // methods there would overwrite its properties.
    if !JsLruCache::instance_of(&env, &this)? {
      return Err(errors::type_error(
        &env,
        errors::INVALID_ARGUMENT,
        "LruCache is a class: call it with new",
      ));
    }
    // Read by hand: napi-rs's conversion of `LruCacheOptions` throws
    // code-less errors ("Missing field `capacity`") for a non-object or a
    // missing capacity.
    let options =
      options::object(&env, &options, "new LruCache(options)", true)?.expect("required");
    let capacity: Unknown = options.get_named_property("capacity")?;
    let ttl: Option<Unknown> = Some(options.get_named_property("ttl")?);
    let clock = parse_clock(&env, &options)?;
    let off_heap = options::boolean(&env, &options, "offHeap")?.unwrap_or(false);
    let cap = options::number_value(&env, &capacity, "capacity", errors::INVALID_CAPACITY)?;
    let capacity = if cap == f64::INFINITY {
      Capacity::Unbounded
    } else if cap >= 1.0 && cap.fract() == 0.0 && cap <= MAX_CAPACITY as f64 {
      Capacity::Bounded(cap as usize)
    } else {
      return Err(errors::range_error(
        &env,
        errors::INVALID_CAPACITY,
        &format!("capacity must be a positive integer up to {MAX_CAPACITY} or Infinity, got {cap}"),
      ));
    };
    let ttl = parse_ttl(&env, &ttl)?.unwrap_or(Ttl::NEVER);
    let inner = TimedLru::try_new(capacity, memory::table_limit())
      .map_err(|e| table_error(&env, "new LruCache", e))?
      .with_clock(clock)
      .with_default_ttl(ttl);
    let (values, array) = Values::new(&env, off_heap)?;
    let shared = Rc::new(LruShared {
      state: RefCell::new(LruState {
        inner,
        values,
        scratch: KeyScratch::default(),
        batch: KeyBatch::default(),
      }),
    });
    raw::bind_methods(&env, this.raw(), &shared, HOT_METHODS)?;
    // The fast methods replace the plain ones where the helper compiles
    // (not with `offHeap`: its values are made natively on every read).
    let helper = if off_heap {
      None
    } else {
      helpers::get(env.raw(), Helper::LruMethods)
    };
    if let Some(make) = helper {
      let slots = raw::functions(&env, &shared, SLOT_METHODS)?;
      let args = [array, slots[0], slots[1], slots[2], slots[3]];
      let mut methods = std::ptr::null_mut();
      let mut undefined = std::ptr::null_mut();
      // SAFETY: handles of this call; the helper returns a four-element
      // array of functions.
      napi::check_status!(unsafe { sys::napi_get_undefined(env.raw(), &mut undefined) })?;
      // SAFETY: as above.
      napi::check_status!(unsafe {
        sys::napi_call_function(
          env.raw(),
          undefined,
          make,
          args.len(),
          args.as_ptr(),
          &mut methods,
        )
      })?;
      let mut fast = [std::ptr::null_mut(); 4];
      for (i, f) in fast.iter_mut().enumerate() {
        // SAFETY: as above.
        napi::check_status!(unsafe { sys::napi_get_element(env.raw(), methods, i as u32, f) })?;
      }
      raw::define(
        &env,
        this.raw(),
        ["get\0", "peek\0", "set\0", "getMany\0"]
          .into_iter()
          .zip(fast),
      )?;
    }
    Ok(Self { shared })
  }

  fn state(&self, env: &Env) -> Result<RefMut<'_, LruState>> {
    self.shared.state(env)
  }

  /// Number of entries (expired entries not yet reclaimed included; call
  /// `purgeStale()` first for an exact live count).
  #[napi(getter)]
  pub fn size(&self, env: &Env) -> Result<u32> {
    Ok(self.state(env)?.inner.len() as u32)
  }

  /// The capacity given at construction (`Infinity` when unbounded).
  #[napi(getter)]
  pub fn capacity(&self, env: &Env) -> Result<f64> {
    Ok(
      self
        .state(env)?
        .inner
        .capacity()
        .map_or(f64::INFINITY, |c| c as f64),
    )
  }

  /// Removes every entry.
  #[napi]
  pub fn clear(&self, env: &Env) -> Result<()> {
    let mut state = self.state(env)?;
    let LruState { inner, values, .. } = &mut *state;
    inner.clear(freeing(values));
    values.reset(env)
  }

  /// Removes and returns the least recently used entry as
  /// `{ key, value, timestamp }`, or `undefined` when empty. O(1).
  #[napi(ts_return_type = "LruEntry<K, V> | undefined")]
  pub fn pop_lru<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
    let mut state = self.state(env)?;
    let LruState { inner, values, .. } = &mut *state;
    match inner.pop_lru(clearing(env, values)) {
      Some((k, entry)) => {
        let obj = entry_object(env, values, &k, &entry);
        values.clear(env, entry.value);
        obj?.into_unknown(env)
      }
      None => ().into_unknown(env),
    }
  }

  /// The least recently used entry as `{ key, value, timestamp }` without
  /// removing it, or `undefined` when empty. O(1).
  #[napi(ts_return_type = "LruEntry<K, V> | undefined")]
  pub fn peek_lru<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
    let mut state = self.state(env)?;
    let LruState { inner, values, .. } = &mut *state;
    // Expired entries on the way go to a list first: `values` is read below.
    let mut expired = Vec::new();
    let found = inner.peek_lru(|_, e| expired.push(e.value));
    let out = match found {
      Some((k, entry)) => entry_object(env, values, k, entry)?.into_unknown(env),
      None => ().into_unknown(env),
    };
    for slot in expired {
      values.clear(env, slot);
    }
    out
  }

  /// Milliseconds until `key`'s entry expires on the cache's clock:
  /// `Infinity` for an entry without a TTL, 0 when missing or expired (as
  /// lru-cache's `getRemainingTTL`). Does not change recency.
  #[napi(js_name = "getRemainingTTL", ts_args_type = "key: K")]
  pub fn get_remaining_ttl(&self, env: &Env, key: Unknown) -> Result<f64> {
    let mut state = self.state(env)?;
    let state = &mut *state;
    let now = state.inner.now();
    let k = state.scratch.encode(env, &key)?;
    Ok(match state.inner.peek(k) {
      Some(entry) if entry.expires_at == f64::INFINITY => f64::INFINITY,
      Some(entry) => (entry.expires_at - now).max(0.0),
      None => 0.0,
    })
  }

  /// Reclaims every expired entry now; returns how many were removed. O(size).
  #[napi]
  pub fn purge_stale(&self, env: &Env) -> Result<u32> {
    let mut state = self.state(env)?;
    let LruState { inner, values, .. } = &mut *state;
    Ok(inner.purge_stale(clearing(env, values)) as u32)
  }

  /// The time on the cache's clock, in ms: `Date.now()`, or for
  /// `clock: 'manual'` the time `advanceTime` has moved it to (from 0).
  #[napi]
  pub fn now(&self, env: &Env) -> Result<f64> {
    Ok(self.state(env)?.inner.now())
  }

  /// Moves a `clock: 'manual'` cache's clock forward by `ms` (from 0 to
  /// 2^53; fractions are kept) and returns the new time. Entries whose
  /// deadline it reaches expire. Throws a `TypeError` (code
  /// `ERR_LRUKIT_INVALID_ARGUMENT`) on a cache with the system clock, a
  /// `RangeError` (same code) for a negative or NaN step or one past 2^53 ms.
  #[napi(ts_args_type = "ms: number")]
  pub fn advance_time(&self, env: &Env, ms: Unknown) -> Result<f64> {
    let ms = options::number_value(env, &ms, "ms", errors::INVALID_ARGUMENT)?;
    self
      .state(env)?
      .inner
      .advance_time(ms)
      .map_err(|e| match e {
        ClockError::NotManual => errors::type_error(
          env,
          errors::INVALID_ARGUMENT,
          "advanceTime needs a cache made with clock: 'manual'",
        ),
        ClockError::OutOfRange => errors::range_error(
          env,
          errors::INVALID_ARGUMENT,
          "ms must be a number from 0 to 2^53",
        ),
        ClockError::PastMax => errors::range_error(
          env,
          errors::INVALID_ARGUMENT,
          "advanceTime would move the clock past 2^53 ms",
        ),
      })
  }

  /// The live entries as `[key, { value, ttl, start }]` pairs, **least**
  /// recently used first, so `load` of the array into a cache reproduces the
  /// same recency order (the shape and order of lru-cache's `dump()`).
  /// `start` is the entry's insert timestamp and `ttl` the time from it to
  /// the entry's deadline (`0`: no expiry), both on the cache's clock, so
  /// `start + ttl` is the deadline. Expired entries are skipped; values are
  /// the stored ones (objects by reference, not copied).
  #[napi(ts_return_type = "Array<[K, LruDumpEntry<V>]>")]
  pub fn dump<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
    let state = self.state(env)?;
    let len = state.inner.len() as u32;
    let mut arr = env.create_array(len)?;
    let mut live = 0;
    for (k, e) in state.inner.iter().rev() {
      let mut entry = Object::new(env)?;
      entry.set_named_property("value", value(env, &state.values, e.value)?)?;
      let ttl = if e.expires_at == f64::INFINITY {
        0.0
      } else {
        // Positive unless `set` was given a timestamp past the entry's
        // deadline; then the smallest positive TTL (a deadline at the
        // timestamp), since 0 would mean "never expires".
        (e.expires_at - e.timestamp).max(f64::MIN_POSITIVE)
      };
      entry.set_named_property("ttl", ttl)?;
      entry.set_named_property("start", e.timestamp)?;
      let mut pair = env.create_array(2)?;
      pair.set(0, key::to_js(env, k)?)?;
      pair.set(1, entry)?;
      arr.set(live, pair)?;
      live += 1;
    }
    let mut arr = arr.coerce_to_object()?;
    // Expired entries are counted in `len` but skipped.
    if live < len {
      arr.set_named_property("length", live)?;
    }
    arr.into_unknown(env)
  }

  /// Replaces the cache's entries with `entries`, an array of
  /// `[key, { value, ttl?, start? }]` pairs as `dump()` returns (as
  /// lru-cache's `load`, the cache is cleared first). Pairs are stored in
  /// order, so the last is the most recently used; a bounded cache smaller
  /// than the array keeps the last ones. `start` is the insert timestamp
  /// (default: the cache's clock now); with `ttl` as well, the deadline is
  /// `start + ttl` on the cache's clock (an entry whose deadline has passed
  /// is skipped), with `ttl` alone it is `ttl` from now, and without `ttl`
  /// the cache's default TTL applies. Every pair is read and checked before
  /// the cache is touched: a malformed array throws (`TypeError`
  /// `ERR_LRUKIT_INVALID_ARGUMENT`, `ERR_LRUKIT_INVALID_KEY`, or the TTL and
  /// timestamp codes of `set`) and changes nothing.
  #[napi(ts_args_type = "entries: ReadonlyArray<readonly [K, LruDumpEntry<V>]>")]
  pub fn load(&self, env: &Env, entries: Unknown) -> Result<()> {
    const PAIR: &str = "load(entries): each entry must be a [key, { value, ttl?, start? }] array";
    let entries = as_array(
      env,
      &entries,
      "load(entries) needs an array of [key, { value, ttl?, start? }] pairs",
    )?;
    // Read everything first: getters and Proxy traps run here, before the
    // cache is borrowed or changed.
    // The values stay handles of this call until they are stored.
    let mut parsed: Vec<(KeyBytes, Unknown, Option<f64>, Option<Ttl>)> = Vec::new();
    let mut scratch = KeyScratch::default();
    let read = |parsed: &mut Vec<_>, scratch: &mut KeyScratch| -> Result<()> {
      for i in 0..entries.len() {
        let pair = element(env, &entries, i)?;
        let pair = as_array(env, &pair, PAIR)?;
        let key = element(env, &pair, 0)?;
        let entry = element(env, &pair, 1)?;
        if entry.get_type()? != ValueType::Object {
          return Err(errors::type_error(env, errors::INVALID_ARGUMENT, PAIR));
        }
        // SAFETY: just checked to be an object.
        let o = unsafe { entry.cast::<Object>()? };
        let value: Unknown = o.get_named_property("value")?;
        let start: Option<Unknown> = o.get_named_property("start")?;
        let ttl: Option<Unknown> = o.get_named_property("ttl")?;
        let start = parse_timestamp(env, &start)?;
        let ttl = parse_ttl(env, &ttl)?;
        let k = key::try_to_stored(env, scratch.encode(env, &key)?)?;
        parsed.push((k, value, start, ttl));
      }
      Ok(())
    };
    read(&mut parsed, &mut scratch)?;
    let mut state = self.state(env)?;
    let LruState { inner, values, .. } = &mut *state;
    inner.clear(freeing(values));
    values.reset(env)?;
    for (k, v, start, ttl) in parsed {
      let options = match (start, ttl) {
        (Some(start), Some(ttl)) if !ttl.is_never() => {
          let deadline = ttl.deadline(start);
          let now = inner.now();
          if deadline <= now {
            continue;
          }
          SetOptions {
            timestamp: Some(start),
            ttl: Ttl::from_ms(deadline - now).ok(),
          }
        }
        (timestamp, ttl) => SetOptions { timestamp, ttl },
      };
      let slot = values.take();
      if let Err(e) = values.put(env, slot, v.raw()) {
        values.give_back(slot);
        return Err(e);
      }
      // A refused pair's slot comes back through `freeing`.
      inner
        .try_insert(k, slot, options, freeing(values))
        .map_err(|e| table_error(env, "LruCache#load: growing the unbounded cache", e))?;
    }
    Ok(())
  }

  /// Live keys, most to least recently used (a snapshot).
  #[napi(ts_return_type = "IterableIterator<K>")]
  pub fn keys<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
    self.snapshot(env, |env, _, k, _| key::to_js(env, k))
  }

  /// Live values, most to least recently used (a snapshot).
  #[napi(ts_return_type = "IterableIterator<V>")]
  pub fn values<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
    self.snapshot(env, |env, values, _, e| value(env, values, e.value))
  }

  /// Live `[key, value]` pairs, most to least recently used (a snapshot).
  #[napi(ts_return_type = "IterableIterator<[K, V]>")]
  pub fn entries<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
    self.snapshot(env, |env, values, k, e| {
      let mut pair = env.create_array(2)?;
      pair.set(0, key::to_js(env, k)?)?;
      pair.set(1, value(env, values, e.value)?)?;
      pair.into_unknown(env)
    })
  }
}

/// Reads a timestamp; the crate's [`check_timestamp`] decides which are valid.
fn parse_timestamp(env: &Env, v: &Option<Unknown>) -> Result<Option<f64>> {
  let Some(v) = v else { return Ok(None) };
  if v.get_type()? == ValueType::Undefined {
    return Ok(None);
  }
  let t = options::number_value(env, v, "timestamp", errors::INVALID_TIMESTAMP)?;
  check_timestamp(t)
    .map(Some)
    .map_err(|e| errors::range_error(env, errors::INVALID_TIMESTAMP, &e.to_string()))
}

fn undefined(env: &Env) -> Result<sys::napi_value> {
  Ok(().into_unknown(env)?.raw())
}

impl LruState {
  /// Stores `key` with a new slot and returns the slot. With `value`, the
  /// value is put in the slot first (a failure stores nothing); without, the
  /// caller puts it there before anything else runs. Evicted and replaced
  /// entries give their slots back.
  fn store(
    &mut self,
    env: &Env,
    key: &Unknown,
    value: Option<sys::napi_value>,
    options: SetOptions,
  ) -> Result<u32> {
    let k = key::try_to_stored(env, self.scratch.encode(env, key)?)?;
    let slot = self.values.take();
    if let Some(v) = value {
      if let Err(e) = self.values.put(env, slot, v) {
        self.values.give_back(slot);
        return Err(e);
      }
    }
    // A full unbounded cache that cannot grow stores nothing (the pair, and
    // with it the slot, goes back through `freeing`) and loses nothing.
    self
      .inner
      .try_insert(k, slot, options, freeing(&mut self.values))
      .map_err(|e| table_error(env, "LruCache: growing the unbounded cache", e))?;
    Ok(slot)
  }

  /// The slot of `key`'s live entry: promoted with `PROMOTE` (`get`), an
  /// expired entry on the way removed; as it is without (`peek`).
  fn find<const PROMOTE: bool>(&mut self, env: &Env, key: &Unknown) -> Result<Option<u32>> {
    let LruState {
      inner,
      values,
      scratch,
      ..
    } = self;
    let k = scratch.encode(env, key)?;
    Ok(if PROMOTE {
      inner.get(k, clearing(env, values)).map(|e| e.value)
    } else {
      inner.peek(k).map(|e| e.value)
    })
  }
}

/// Reads `set`'s options argument (before the state is borrowed: getters may
/// run JavaScript).
fn set_options(env: &Env, options: &Unknown) -> Result<SetOptions> {
  match options.get_type()? {
    ValueType::Undefined | ValueType::Null => Ok(SetOptions::default()),
    ValueType::Object => {
      // SAFETY: the value was just checked to be an object.
      let o = unsafe { options.cast::<Object>()? };
      let timestamp: Option<Unknown> = o.get_named_property("timestamp")?;
      let ttl: Option<Unknown> = o.get_named_property("ttl")?;
      Ok(SetOptions {
        timestamp: parse_timestamp(env, &timestamp)?,
        ttl: parse_ttl(env, &ttl)?,
      })
    }
    _ => Err(errors::type_error(
      env,
      errors::INVALID_ARGUMENT,
      "set(key, value, options): options must be an object",
    )),
  }
}

impl JsLruCache {
  /// Collects live entries into an array and returns that array's iterator.
  fn snapshot<'env>(
    &self,
    env: &'env Env,
    f: impl Fn(&'env Env, &Values, &[u8], &Stamped<u32>) -> Result<Unknown<'env>>,
  ) -> Result<Unknown<'env>> {
    let arr = {
      let state = self.state(env)?;
      let len = state.inner.len() as u32;
      let mut arr = env.create_array(len)?;
      let mut live = 0;
      for (k, e) in state.inner.iter() {
        arr.set(live, f(env, &state.values, k, e)?)?;
        live += 1;
      }
      let mut arr = arr.coerce_to_object()?;
      // Expired entries not yet reclaimed are counted in `len` but skipped:
      // drop the holes they would leave at the end.
      if live < len {
        arr.set_named_property("length", live)?;
      }
      arr
    };
    raw::array_iterator(arr)
  }
}

// ---- hot methods: raw Node-API callbacks (see `raw.rs`) --------------------
//
// Each cache gets two sets. `SLOT_METHODS` return slots (a small integer,
// -1 for a miss) to the compiled helper's `get`/`peek`/`set`/`getMany`,
// which index the value array in JavaScript. `HOT_METHODS` are the whole
// methods in native code, reading and writing the array through Node-API:
// the ones an instance keeps where no helper compiles (and `has`, `delete`
// and `setMany` always).

fn slot_value(env: &Env, slot: Option<u32>) -> Result<sys::napi_value> {
  let mut out = std::ptr::null_mut();
  // SAFETY: plain Node-API calls on the current env.
  napi::check_status!(unsafe {
    match slot {
      Some(s) => sys::napi_create_uint32(env.raw(), s, &mut out),
      None => sys::napi_create_int32(env.raw(), -1, &mut out),
    }
  })?;
  Ok(out)
}

/// `getSlot(key)` (`PROMOTE`) and `peekSlot(key)`: the slot of `key`'s
/// value, -1 if missing or expired.
fn find_slot<const PROMOTE: bool>(
  env: &Env,
  this: &LruShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let slot = this.state(env)?.find::<PROMOTE>(env, &args[0])?;
  slot_value(env, slot)
}

/// `setSlot(key, options?)`: stores `key` and returns the slot its value
/// goes in.
fn set_slot(
  env: &Env,
  this: &LruShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let options = set_options(env, &args[1])?;
  let slot = this.state(env)?.store(env, &args[0], None, options)?;
  slot_value(env, Some(slot))
}

/// The slots of `keys` (-1 for misses), promoted like `get`. All keys are
/// read first, then looked up in one pipelined pass.
fn many_slots(env: &Env, this: &LruShared, keys: &Unknown) -> Result<Vec<i32>> {
  let keys = as_array(env, keys, "getMany(keys) needs an array of keys")?;
  let n = keys.len() as usize;
  let mut state = this.state(env)?;
  let LruState {
    inner,
    values,
    scratch,
    batch,
  } = &mut *state;
  key::encode_all(env, &keys, scratch, batch)?;
  let mut slots = vec![-1i32; n];
  inner.get_many(
    n,
    |i| batch.get(i),
    clearing(env, values),
    |i, entry| {
      // Slots of a table that fits in memory are far below 2^31.
      slots[i] = entry.value as i32;
      Ok::<(), napi::Error>(())
    },
  )?;
  Ok(slots)
}

/// `getManySlots(keys)`: an `Int32Array` of slots, -1 for misses.
fn get_many_slots(
  env: &Env,
  this: &LruShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let out = napi::bindgen_prelude::Int32Array::new(many_slots(env, this, &args[0])?);
  // SAFETY: converting an owned typed array on the current env.
  unsafe { napi::bindgen_prelude::Int32Array::to_napi_value(env.raw(), out) }
}

/// `get(key)` (`PROMOTE`: the entry becomes the most recently used) and
/// `peek(key)`: the value; `undefined` if missing or expired.
fn find_value<const PROMOTE: bool>(
  env: &Env,
  this: &LruShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let mut state = this.state(env)?;
  match state.find::<PROMOTE>(env, &args[0])? {
    Some(slot) => state.values.get(env, slot),
    None => undefined(env),
  }
}

/// `has(key)`: present and not expired; does not promote.
fn has(
  env: &Env,
  this: &LruShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let mut state = this.state(env)?;
  let state = &mut *state;
  let k = state.scratch.encode(env, &args[0])?;
  Ok(state.inner.contains(k).into_unknown(env)?.raw())
}

/// `delete(key)`: true when a live entry was removed.
fn delete(
  env: &Env,
  this: &LruShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let mut state = this.state(env)?;
  let LruState {
    inner,
    values,
    scratch,
    ..
  } = &mut *state;
  let k = scratch.encode(env, &args[0])?;
  let removed = match inner.remove(k, clearing(env, values)) {
    Some((_, entry)) => {
      values.clear(env, entry.value);
      true
    }
    None => false,
  };
  Ok(removed.into_unknown(env)?.raw())
}

/// `set(key, value, options?)`: returns `this`.
fn set(
  env: &Env,
  this: &LruShared,
  this_js: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let options = set_options(env, &args[2])?;
  this
    .state(env)?
    .store(env, &args[0], Some(args[1].raw()), options)?;
  Ok(this_js)
}

/// `getMany(keys)`: values in order, `undefined` for misses; promotes like `get`.
fn get_many(
  env: &Env,
  this: &LruShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let slots = many_slots(env, this, &args[0])?;
  let state = this.state(env)?;
  // Misses are `undefined` elements, not holes (which `for...in`, `forEach`
  // and `Object.keys` skip).
  let mut out = env.create_array(slots.len() as u32)?;
  for (i, &s) in slots.iter().enumerate() {
    if s < 0 {
      out.set(i as u32, ())?;
    } else {
      out.set(i as u32, value(env, &state.values, s as u32)?)?;
    }
  }
  Ok(out.raw())
}

/// `setMany(entries)`: `[key, value]` pairs stored in order; returns `this`.
fn set_many(
  env: &Env,
  this: &LruShared,
  this_js: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  const PAIR: &str = "setMany(entries): each entry must be a [key, value] array";
  let entries = as_array(
    env,
    &args[0],
    "setMany(entries) needs an array of [key, value] pairs",
  )?;
  let mut state = this.state(env)?;
  for i in 0..entries.len() {
    let pair = element(env, &entries, i)?;
    let pair = as_array(env, &pair, PAIR)?;
    let key = element(env, &pair, 0)?;
    let value = element(env, &pair, 1)?;
    state.store(env, &key, Some(value.raw()), SetOptions::default())?;
  }
  Ok(this_js)
}

/// The hot methods, bound to each instance when it is made.
const HOT_METHODS: &[(&str, raw::Method<LruShared>)] = &[
  ("get\0", find_value::<true>),
  ("peek\0", find_value::<false>),
  ("has\0", has),
  ("delete\0", delete),
  ("set\0", set),
  ("getMany\0", get_many),
  ("setMany\0", set_many),
];

/// The slot functions given to the compiled helper, in its argument order.
const SLOT_METHODS: &[(&str, raw::Method<LruShared>)] = &[
  ("getSlot\0", find_slot::<true>),
  ("peekSlot\0", find_slot::<false>),
  ("setSlot\0", set_slot),
  ("getManySlots\0", get_many_slots),
];

/// Makes `LruCache` iterable like a `Map`.
pub fn install(env: &Env, exports: &Object) -> Result<()> {
  raw::make_iterable(env, exports, "LruCache")
}
