//! `FlowTable`: the JavaScript face of [`lrukit_flow_table`]: per-flow state
//! that expires after idle timeouts, stored off the V8 heap (typed values, the
//! same encoding as `SharedMap`), shareable by name across worker_threads.

use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock};

use lrukit_flow_table::{
  new_engine, reap_once, Clock, Config, EngineKind, Expired, FlowEngine, Full, ManualClock,
  MonotonicClock, Reaper,
};
use lrukit_shm_map::Value;
use napi::{
  bindgen_prelude::{
    Float64Array, Function, JavaScriptClassExt, JsObjectValue, Object, ToNapiValue, Uint8Array,
  },
  sys,
  threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode},
  Env, JsValue, Result, Status, Unknown, ValueType,
};
use napi_derive::napi;

use crate::errors;
use crate::helpers::{self, Helper};
use crate::key::{self, KeyBatch, KeyBytes, KeyScratch};
use crate::options;
use crate::raw;
use crate::values::{prepare_value, value_ref, value_to_js};

type Engine = dyn FlowEngine<KeyBytes, Value>;

/// What a table is: the engine and its clock (a manual clock only when the
/// table was made with `clock: 'manual'`). Shared by every handle and thread.
struct Table {
  engine: Box<Engine>,
  manual: Option<Arc<ManualClock>>,
  /// `json: true`: objects and arrays are stored as JSON.
  json: bool,
}

/// Tables made with `FlowTable.shared(name)`, for every thread of the process.
fn registry() -> &'static Mutex<HashMap<String, Arc<Table>>> {
  static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Table>>>> = OnceLock::new();
  REGISTRY.get_or_init(Default::default)
}

/// A map of per-flow state whose entries expire after an idle timeout, with
/// no O(N) sweeps: `touch` stores a timestamp, `expire()` reaps bounded
/// batches. An entry past its deadline is never returned, even before
/// `expire` reaps it. Values are stored natively (strings, numbers, bigints,
/// booleans, null, Buffers), so one table can be shared by every
/// worker_thread of a process (`FlowTable.shared(name, options)`).
///
/// Errors carry a `code`: `ERR_LRUKIT_INVALID_TIMEOUT`, `ERR_LRUKIT_INVALID_ENGINE`,
/// `ERR_LRUKIT_INVALID_KEY`, `ERR_LRUKIT_INVALID_VALUE`, `ERR_LRUKIT_FULL`.
#[napi(js_name = "FlowTable")]
pub struct JsFlowTable {
  shared: Rc<FlowShared>,
}

struct FlowShared {
  table: Arc<Table>,
  scratch: RefCell<Scratch>,
  /// This handle's `onExpire` timer, if it has one (stopped by `close()`
  /// or when the handle is collected).
  reaper: RefCell<Option<Reaper>>,
}

#[derive(Default)]
struct Scratch {
  key: KeyScratch,
  value: Vec<u8>,
  /// Encoded keys of a `touchMany` call.
  batch: KeyBatch,
}

impl raw::Bound for FlowShared {
  fn release(&self, _env: &Env) {}
}

impl FlowShared {
  fn scratch(&self, env: &Env) -> Result<RefMut<'_, Scratch>> {
    self.scratch.try_borrow_mut().map_err(|_| {
      errors::error(
        env,
        errors::REENTRANT,
        "FlowTable was called again during one of its own calls",
      )
    })
  }
}

/// Options for `new FlowTable(options)` and `FlowTable.shared(name, options)`.
#[napi(object, object_to_js = false)]
pub struct FlowTableOptions<'e> {
  /// Idle timeout in ms for entries set without their own.
  pub timeout: f64,
  /// Maximum number of entries; omitted = unbounded.
  pub capacity: Option<f64>,
  /// What a full table does: `'evict'` (default) evicts the longest idle
  /// entry, `'refuse'` makes `set` throw `ERR_LRUKIT_FULL`.
  #[napi(ts_type = "'evict' | 'refuse'")]
  pub when_full: Option<String>,
  /// `'wheel'` (default): entries, index and timeout order in one sharded
  /// structure. `'dashmap'`: the seed design (DashMap + priority queues).
  #[napi(ts_type = "'wheel' | 'dashmap'")]
  pub engine: Option<String>,
  /// `'monotonic'` (default) or `'manual'`: time moves only through
  /// `advanceTime(ms)` (for tests and simulations).
  #[napi(ts_type = "'monotonic' | 'manual'")]
  pub clock: Option<String>,
  /// Store objects and arrays as JSON.
  pub json: Option<bool>,
  /// Called with batches of expired entries, reaped by one native timer for
  /// this handle (never one timer per entry); `close()` stops it. With
  /// `FlowTable.shared`, each handle may pass its own: every expired entry
  /// goes to exactly one of them.
  #[napi(ts_type = "(entries: FlowExpired[]) => void")]
  pub on_expire: Option<Unknown<'e>>,
  /// How often (ms) the `onExpire` timer runs: default `timeout / 10`,
  /// clamped to 10..1000. Entries are reported at most this late.
  pub expire_interval: Option<f64>,
  /// Most entries per `onExpire` call (default 10,000); a fuller backlog is
  /// delivered in several calls without waiting for the next interval.
  pub expire_batch: Option<f64>,
  /// Whether the `onExpire` timer keeps the event loop alive until
  /// `close()` (like a plain `setInterval`). Default false (like an
  /// `unref()`ed one): the process may exit with the timer running.
  pub keep_alive: Option<bool>,
}

/// The largest reading of a manual clock (ms).
const MAX_CLOCK: f64 = 9_007_199_254_740_992.0;

/// Reads the options of `new FlowTable` / `FlowTable.shared` (`what`): an
/// object is required; every property is type-checked here, ranges in
/// [`build`] and [`expiry_spec`].
fn read_options<'e>(env: &Env, v: &Unknown<'e>, what: &str) -> Result<FlowTableOptions<'e>> {
  let o = options::object(env, v, what, true)?.expect("required");
  let any = errors::INVALID_ARGUMENT;
  let Some(timeout) = options::number(env, &o, "timeout", errors::INVALID_TIMEOUT)? else {
    return Err(errors::type_error(
      env,
      errors::INVALID_TIMEOUT,
      &format!("{what}: timeout must be a number of milliseconds"),
    ));
  };
  Ok(FlowTableOptions {
    timeout,
    capacity: options::number(env, &o, "capacity", errors::INVALID_CAPACITY)?,
    when_full: options::string(env, &o, "whenFull", any)?,
    engine: options::string(env, &o, "engine", errors::INVALID_ENGINE)?,
    clock: options::string(env, &o, "clock", any)?,
    json: options::boolean(env, &o, "json")?,
    on_expire: options::any(&o, "onExpire")?,
    expire_interval: options::number(env, &o, "expireInterval", any)?,
    expire_batch: options::number(env, &o, "expireBatch", any)?,
    keep_alive: options::boolean(env, &o, "keepAlive")?,
  })
}

/// A batch of expired entries on its way to an `onExpire` callback: made
/// into JavaScript objects on the JavaScript thread.
struct ExpiredBatch(Vec<Expired<KeyBytes, Value>>);

impl ToNapiValue for ExpiredBatch {
  unsafe fn to_napi_value(env: sys::napi_env, batch: Self) -> Result<sys::napi_value> {
    expired_to_js(&Env::from_raw(env), batch.0)
  }
}

type ExpirySink =
  ThreadsafeFunction<Vec<Expired<KeyBytes, Value>>, (), ExpiredBatch, Status, false, false>;

/// Entries per call of the expired-objects helper (2 arguments each; V8
/// allows about 65k arguments).
const OBJECTS_CHUNK: usize = 4096;

/// `[{ key, value, lastSeen }, ...]` for reaped entries: keys and values
/// are made natively and handed to the `ExpiredObjects` helper as arguments, the
/// lastSeen times in one `Float64Array` (about 5x faster than napi-rs's
/// object conversion, which also re-creates every property name for every
/// object). Where no script can be compiled, the objects are made here with
/// cached property names.
fn expired_to_js(env: &Env, list: Vec<Expired<KeyBytes, Value>>) -> Result<sys::napi_value> {
  let raw = env.raw();
  let mut array = std::ptr::null_mut();
  let fields = |e: &Expired<KeyBytes, Value>| -> Result<[sys::napi_value; 2]> {
    Ok([
      key::to_js(env, &e.key)?.raw(),
      value_to_js(env, e.value.as_ref())?.raw(),
    ])
  };
  if let Some(f) = helpers::get(raw, Helper::ExpiredObjects) {
    let times: Vec<f64> = list.iter().map(|e| e.last_seen as f64).collect();
    let times = Float64Array::new(times).into_unknown(env)?.raw();
    // SAFETY: plain Node-API calls on this env's thread; every handle passed
    // in was made in this scope or (per chunk) in the chunk's handle scope.
    unsafe {
      napi::check_status!(sys::napi_create_array(raw, &mut array))?;
      let mut this = std::ptr::null_mut();
      napi::check_status!(sys::napi_get_undefined(raw, &mut this))?;
      let mut argv: Vec<sys::napi_value> =
        Vec::with_capacity(3 + 2 * OBJECTS_CHUNK.min(list.len()));
      for (c, chunk) in list.chunks(OBJECTS_CHUNK).enumerate() {
        let mut scope = std::ptr::null_mut();
        napi::check_status!(sys::napi_open_handle_scope(raw, &mut scope))?;
        let result = (|| -> Result<()> {
          argv.clear();
          argv.extend([
            array,
            times,
            ((c * OBJECTS_CHUNK) as f64).into_unknown(env)?.raw(),
          ]);
          for e in chunk {
            argv.extend(fields(e)?);
          }
          let mut out = std::ptr::null_mut();
          napi::check_status!(sys::napi_call_function(
            raw,
            this,
            f,
            argv.len(),
            argv.as_ptr(),
            &mut out
          ))
        })();
        napi::check_status!(sys::napi_close_handle_scope(raw, scope))?;
        result?;
      }
    }
    return Ok(array);
  }
  let name = |s: &str| -> Result<sys::napi_value> {
    let mut v = std::ptr::null_mut();
    // SAFETY: `s` is valid for `s.len()` bytes; `v` is written on success.
    napi::check_status!(unsafe {
      sys::napi_create_string_latin1(raw, s.as_ptr().cast(), s.len() as isize, &mut v)
    })?;
    Ok(v)
  };
  let names = [name("key")?, name("value")?, name("lastSeen")?];
  // SAFETY: plain Node-API calls on this env's thread with handles made here.
  napi::check_status!(unsafe { sys::napi_create_array_with_length(raw, list.len(), &mut array) })?;
  for (i, e) in list.iter().enumerate() {
    let [key, value] = fields(e)?;
    let last = (e.last_seen as f64).into_unknown(env)?.raw();
    let mut obj = std::ptr::null_mut();
    // SAFETY: as above.
    unsafe {
      napi::check_status!(sys::napi_create_object(raw, &mut obj))?;
      for (name, v) in names.into_iter().zip([key, value, last]) {
        napi::check_status!(sys::napi_set_property(raw, obj, name, v))?;
      }
      napi::check_status!(sys::napi_set_element(raw, array, i as u32, obj))?;
    }
  }
  Ok(array)
}

fn positive(env: &Env, v: Option<f64>, what: &str, default: f64, max: f64) -> Result<f64> {
  match v {
    None => Ok(default),
    Some(v) if v >= 1.0 && v <= max => Ok(v),
    Some(v) => Err(errors::range_error(
      env,
      errors::INVALID_ARGUMENT,
      &format!("{what} must be a number from 1 to {max}, got {v}"),
    )),
  }
}

/// A validated `onExpire` request.
struct ExpirySpec<'e> {
  f: Function<'e, ExpiredBatch, ()>,
  interval: f64,
  batch: usize,
  keep_alive: bool,
}

/// Checks the `onExpire` options (before anything is created or shared).
fn expiry_spec<'e>(env: &Env, o: &FlowTableOptions<'e>) -> Result<Option<ExpirySpec<'e>>> {
  let f: Function<'e, ExpiredBatch, ()> = match &o.on_expire {
    None => return Ok(None),
    Some(f) if f.get_type()? == ValueType::Undefined => return Ok(None),
    // SAFETY: just checked to be a function.
    Some(f) if f.get_type()? == ValueType::Function => unsafe { f.cast()? },
    Some(_) => {
      return Err(errors::type_error(
        env,
        errors::INVALID_ARGUMENT,
        "onExpire must be a function",
      ))
    }
  };
  let timeout = o.timeout.max(1.0);
  let interval = positive(
    env,
    o.expire_interval,
    "expireInterval",
    (timeout / 10.0).clamp(10.0, 1000.0),
    2f64.powi(31),
  )?;
  let batch = positive(env, o.expire_batch, "expireBatch", 10_000.0, 2f64.powi(32))? as usize;
  Ok(Some(ExpirySpec {
    f,
    interval,
    batch,
    keep_alive: o.keep_alive.unwrap_or(false),
  }))
}

/// Starts the `onExpire` timer of one handle of `table`.
fn start_reaper(env: &Env, table: &Arc<Table>, spec: ExpirySpec) -> Result<Reaper> {
  let ExpirySpec {
    f,
    interval,
    batch,
    keep_alive,
  } = spec;
  let sink: ExpirySink = f
    .build_threadsafe_function::<Vec<Expired<KeyBytes, Value>>>()
    .callee_handled::<false>()
    .build_callback(|ctx| Ok(ExpiredBatch(ctx.value)))?;
  if !keep_alive {
    // SAFETY: on the JavaScript thread that created `sink`, which is live.
    // (napi-rs's own `unref` is deprecated; releasing still works after it.)
    let status = unsafe { sys::napi_unref_threadsafe_function(env.raw(), sink.raw()) };
    if status != sys::Status::napi_ok {
      return Err(napi::Error::new(
        Status::GenericFailure,
        "cannot unref the expiry timer",
      ));
    }
  }
  let table = Arc::clone(table);
  let mut deliver =
    move |list| sink.call(list, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok;
  Reaper::spawn(
    std::time::Duration::from_secs_f64(interval / 1000.0),
    move || reap_once(&*table.engine, batch, &mut deliver),
  )
  .map_err(|e| {
    napi::Error::new(
      Status::GenericFailure,
      format!("cannot start the expiry timer thread: {e}"),
    )
  })
}

/// An entry returned by `expire()` and passed to `onExpire`. Only its
/// TypeScript declaration is generated from this; the objects are made by
/// `expired_to_js`.
#[allow(dead_code)]
#[napi(object, object_from_js = false)]
pub struct FlowExpired<'e> {
  #[napi(ts_type = "LruKey")]
  pub key: Unknown<'e>,
  #[napi(ts_type = "SharedValue")]
  pub value: Unknown<'e>,
  /// Clock reading (ms) of the entry's last set/touch.
  pub last_seen: f64,
}

fn timeout_ms(env: &Env, v: f64, what: &str) -> Result<u64> {
  if v.is_nan() || v <= 0.0 || v > 2f64.powi(53) {
    return Err(errors::range_error(
      env,
      errors::INVALID_TIMEOUT,
      &format!("{what} must be a positive number of milliseconds, got {v}"),
    ));
  }
  Ok(v.ceil() as u64)
}

fn build(env: &Env, o: &FlowTableOptions) -> Result<Table> {
  let mut config = Config::new(timeout_ms(env, o.timeout, "timeout")?);
  if let Some(c) = o.capacity {
    if !(c >= 1.0 && c.fract() == 0.0 && c <= 2f64.powi(32)) {
      return Err(errors::range_error(
        env,
        errors::INVALID_CAPACITY,
        "capacity must be a positive integer",
      ));
    }
    config.capacity = Some(c as usize);
  }
  config.when_full = match o.when_full.as_deref() {
    None | Some("evict") => Full::EvictLongestIdle,
    Some("refuse") => Full::Refuse,
    Some(other) => {
      return Err(errors::range_error(
        env,
        errors::INVALID_ARGUMENT,
        &format!("whenFull must be 'evict' or 'refuse', got '{other}'"),
      ))
    }
  };
  let kind = match o.engine.as_deref() {
    None | Some("wheel") => EngineKind::Wheel,
    Some("dashmap") => EngineKind::DashMap,
    Some(other) => {
      return Err(errors::range_error(
        env,
        errors::INVALID_ENGINE,
        &format!("engine must be 'wheel' or 'dashmap', got '{other}'"),
      ))
    }
  };
  let (clock, manual): (Arc<dyn Clock>, _) = match o.clock.as_deref() {
    None | Some("monotonic") => (Arc::new(MonotonicClock::new()), None),
    Some("manual") => {
      let m = Arc::new(ManualClock::new(0));
      (m.clone(), Some(m))
    }
    Some(other) => {
      return Err(errors::range_error(
        env,
        errors::INVALID_ARGUMENT,
        &format!("clock must be 'monotonic' or 'manual', got '{other}'"),
      ))
    }
  };
  Ok(Table {
    engine: new_engine(kind, config, clock),
    manual,
    json: o.json.unwrap_or(false),
  })
}

fn instance<'e>(
  env: &'e Env,
  table: Arc<Table>,
  expiry: Option<ExpirySpec>,
  this: Option<sys::napi_value>,
) -> Result<(Rc<FlowShared>, Option<Unknown<'e>>)> {
  let reaper = expiry
    .map(|spec| start_reaper(env, &table, spec))
    .transpose()?;
  let shared = Rc::new(FlowShared {
    table,
    scratch: RefCell::new(Scratch::default()),
    reaper: RefCell::new(reaper),
  });
  match this {
    Some(this) => {
      raw::bind_methods(env, this, &shared, HOT_METHODS)?;
      Ok((shared, None))
    }
    None => {
      let obj = JsFlowTable {
        shared: Rc::clone(&shared),
      }
      .into_instance(env)?;
      raw::bind_methods(env, obj.value, &shared, HOT_METHODS)?;
      // SAFETY: `obj.value` is the live handle of the instance just created.
      Ok((
        shared,
        Some(unsafe { Unknown::from_raw_unchecked(env.raw(), obj.value) }),
      ))
    }
  }
}

fn per_entry_timeout(env: &Env, options: &Unknown) -> Result<Option<u64>> {
  match options.get_type()? {
    ValueType::Undefined | ValueType::Null => Ok(None),
    ValueType::Object => {
      // SAFETY: just checked to be an object.
      let o = unsafe { options.cast::<Object>()? };
      let t: Option<Unknown> = o.get_named_property("timeout")?;
      match t {
        Some(t) if t.get_type()? == ValueType::Number => {
          // SAFETY: just checked to be a number.
          Ok(Some(timeout_ms(
            env,
            unsafe { t.cast::<f64>()? },
            "timeout",
          )?))
        }
        Some(t) if t.get_type()? != ValueType::Undefined => Err(errors::type_error(
          env,
          errors::INVALID_TIMEOUT,
          "timeout must be a number",
        )),
        _ => Ok(None),
      }
    }
    _ => Err(errors::type_error(
      env,
      errors::INVALID_ARGUMENT,
      "options must be an object",
    )),
  }
}

/// `{ now?, max? }` of `expire` and `purge`: defaults are the table's clock
/// and no limit.
fn expire_args(env: &Env, engine: &Engine, options: &Unknown) -> Result<(u64, usize)> {
  let (mut now, mut max) = (engine.now(), usize::MAX);
  let any = errors::INVALID_ARGUMENT;
  if let Some(o) = options::object(env, options, "expire/purge(options)", false)? {
    if let Some(n) = options::number(env, &o, "now", any)? {
      if n.is_nan() {
        return Err(errors::range_error(env, any, "now must not be NaN"));
      }
      now = n.max(0.0) as u64;
    }
    if let Some(m) = options::number(env, &o, "max", any)? {
      if m.is_nan() || m < 0.0 {
        return Err(errors::range_error(
          env,
          any,
          "max must be a non-negative number",
        ));
      }
      max = if m.is_finite() {
        m as usize
      } else {
        usize::MAX
      };
    }
  }
  Ok((now, max))
}

// ---- hot methods -------------------------------------------------------------

/// A key and a value from JavaScript in their stored forms.
fn entry(
  env: &Env,
  table: &Table,
  scratch: &mut Scratch,
  key: &Unknown,
  value: Unknown,
) -> Result<(KeyBytes, Value)> {
  let incoming = prepare_value(env, table.json, value)?;
  let Scratch { key: ks, value, .. } = scratch;
  let k = key::to_stored(ks.encode(env, key)?);
  Ok((k, value_ref(env, &incoming, value)?.to_owned_value()))
}

fn set(
  env: &Env,
  this: &FlowShared,
  this_js: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let timeout = per_entry_timeout(env, &args[2])?;
  let (k, v) = entry(
    env,
    &this.table,
    &mut *this.scratch(env)?,
    &args[0],
    args[1],
  )?;
  this
    .table
    .engine
    .insert(k, v, timeout)
    .map_err(|_| full_error(env))?;
  Ok(this_js)
}

fn full_error(env: &Env) -> napi::Error {
  errors::error(
    env,
    errors::FULL,
    "the table is full and whenFull is 'refuse'",
  )
}

/// `setMany(entries, { timeout? })`: `[key, value]` pairs stored in order
/// (a later pair for the same key wins), all with one idle timeout; returns
/// the table. Every pair is checked before anything is stored, so bad input
/// stores nothing; `ERR_LRUKIT_FULL` leaves the pairs before the refused
/// one stored. The wheel engine stores a batch with one lock acquisition
/// per shard and overlapped cache misses.
fn set_many(
  env: &Env,
  this: &FlowShared,
  this_js: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  const PAIR: &str = "setMany(entries): each entry must be a [key, value] array";
  let entries = raw::as_array(
    env,
    &args[0],
    "setMany(entries) needs an array of [key, value] pairs",
  )?;
  let timeout = per_entry_timeout(env, &args[1])?;
  let mut batch = Vec::with_capacity(entries.len() as usize);
  let mut scratch = this.scratch(env)?;
  for i in 0..entries.len() {
    let pair = raw::element(env, &entries, i)?;
    let pair = raw::as_array(env, &pair, PAIR)?;
    let (key, value) = (raw::element(env, &pair, 0)?, raw::element(env, &pair, 1)?);
    batch.push(entry(env, &this.table, &mut scratch, &key, value)?);
  }
  drop(scratch);
  this
    .table
    .engine
    .insert_many(batch, timeout)
    .map_err(|_| full_error(env))?;
  Ok(this_js)
}

fn lookup(env: &Env, this: &FlowShared, args: &[Unknown], touch: bool) -> Result<sys::napi_value> {
  let found = {
    let mut scratch = this.scratch(env)?;
    let k = KeyBytes::from_slice(scratch.key.encode(env, &args[0])?);
    if touch {
      this.table.engine.get_and_touch(&k)
    } else {
      this.table.engine.get(&k)
    }
  };
  match found {
    Some(v) => Ok(value_to_js(env, v.as_ref())?.raw()),
    None => Ok(().into_unknown(env)?.raw()),
  }
}

/// `get(key)`: the value (does not refresh the idle timer), or `undefined`.
fn get(
  env: &Env,
  this: &FlowShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  lookup(env, this, args, false)
}

/// `getAndTouch(key)`: like `get`, and refreshes the idle timer.
fn get_and_touch(
  env: &Env,
  this: &FlowShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  lookup(env, this, args, true)
}

fn key_op(
  env: &Env,
  this: &FlowShared,
  args: &[Unknown],
  op: fn(&Engine, &KeyBytes) -> bool,
) -> Result<sys::napi_value> {
  let k = KeyBytes::from_slice(this.scratch(env)?.key.encode(env, &args[0])?);
  Ok(op(&*this.table.engine, &k).into_unknown(env)?.raw())
}

/// `has(key)`.
fn has(
  env: &Env,
  this: &FlowShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  key_op(env, this, args, |e, k| e.contains(k))
}

/// `touch(key)`: refreshes the idle timer (one store); false if missing.
fn touch(
  env: &Env,
  this: &FlowShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  key_op(env, this, args, |e, k| e.touch(k))
}

/// `delete(key)`: true when a live entry was removed.
fn delete(
  env: &Env,
  this: &FlowShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  key_op(env, this, args, |e, k| e.remove(k).is_some())
}

/// `touchMany(keys)`: `touch` for each key in one call, returning a
/// `Uint8Array` with 1 where the key was live (and was touched), 0 where it
/// is missing or idle past its timeout. The wheel engine groups the keys by
/// shard and overlaps their memory accesses.
fn touch_many(
  env: &Env,
  this: &FlowShared,
  _: sys::napi_value,
  args: &[Unknown],
) -> Result<sys::napi_value> {
  let keys = raw::as_array(env, &args[0], "touchMany(keys) needs an array of keys")?;
  let mut scratch = this.scratch(env)?;
  let Scratch {
    key: ks, batch: kb, ..
  } = &mut *scratch;
  key::encode_all(env, &keys, ks, kb)?;
  let batch: Vec<KeyBytes> = (0..kb.len()).map(|i| key::to_stored(kb.get(i))).collect();
  drop(scratch);
  let mut out = Vec::with_capacity(batch.len());
  this.table.engine.touch_many(&batch, &mut out);
  let mask: Vec<u8> = out.into_iter().map(u8::from).collect();
  Ok(Uint8Array::new(mask).into_unknown(env)?.raw())
}

/// The hot methods, bound to each instance when it is made.
const HOT_METHODS: &[(&str, raw::Method<FlowShared>)] = &[
  ("set\0", set),
  ("get\0", get),
  ("getAndTouch\0", get_and_touch),
  ("has\0", has),
  ("touch\0", touch),
  ("touchMany\0", touch_many),
  ("setMany\0", set_many),
  ("delete\0", delete),
];

#[napi]
impl JsFlowTable {
  #[napi(constructor, ts_args_type = "options: FlowTableOptions")]
  pub fn new(env: Env, this: napi::bindgen_prelude::This, options: Unknown) -> Result<Self> {
    // Called without `new`, `this` is the global object (or whatever the
    // caller bound): binding the hot methods there would overwrite its
    // properties.
    if !JsFlowTable::instance_of(&env, &this)? {
      return Err(errors::type_error(
        &env,
        errors::INVALID_ARGUMENT,
        "FlowTable is a class: call it with new",
      ));
    }
    let options = read_options(&env, &options, "new FlowTable(options)")?;
    let table = Arc::new(build(&env, &options)?);
    let expiry = expiry_spec(&env, &options)?;
    let (shared, _) = instance(&env, table, expiry, Some(this.raw()))?;
    Ok(Self { shared })
  }

  /// The table named `name` for every worker_thread of this process: the
  /// first call creates it with `options`, later calls (from any thread)
  /// return a handle to the same table and ignore `options`.
  #[napi(
    ts_args_type = "name: string, options: FlowTableOptions",
    ts_return_type = "FlowTable"
  )]
  pub fn shared<'e>(env: &'e Env, name: Unknown<'e>, options: Unknown<'e>) -> Result<Unknown<'e>> {
    let name = options::string_value(env, &name, "name", errors::INVALID_ARGUMENT)?;
    let options = read_options(env, &options, "FlowTable.shared(name, options)")?;
    let expiry = expiry_spec(env, &options)?;
    let table = {
      let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
      match reg.get(&name) {
        Some(t) => Arc::clone(t),
        None => {
          let t = Arc::new(build(env, &options)?);
          reg.insert(name, Arc::clone(&t));
          t
        }
      }
    };
    let (_, obj) = instance(env, table, expiry, None)?;
    Ok(obj.expect("an instance was made"))
  }

  /// Forgets the shared table `name` (handles keep working); false if unknown.
  #[napi(ts_args_type = "name: string")]
  pub fn unshare(env: &Env, name: Unknown) -> Result<bool> {
    let name = options::string_value(env, &name, "name", errors::INVALID_ARGUMENT)?;
    Ok(
      registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&name)
        .is_some(),
    )
  }

  /// Number of entries (expired ones not yet reaped by `expire` included).
  #[napi(getter)]
  pub fn size(&self) -> f64 {
    self.shared.table.engine.len() as f64
  }

  /// Removes and returns up to `max` expired entries (default: all that are
  /// due), as of `now` (default: the table's clock). The work is bounded by
  /// `max`: never an O(size) sweep.
  #[napi(
    ts_args_type = "options?: { now?: number; max?: number }",
    ts_return_type = "FlowExpired[]"
  )]
  pub fn expire<'e>(&self, env: &'e Env, options: Unknown<'e>) -> Result<Unknown<'e>> {
    let engine = &self.shared.table.engine;
    let (now, max) = expire_args(env, &**engine, &options)?;
    let array = expired_to_js(env, engine.expire(now, max))?;
    // SAFETY: `array` was just created in this environment.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), array) })
  }

  /// Like `expire`, but only removes the entries and returns how many: for
  /// callers that do not need them (a rate limiter), without making a
  /// JavaScript object per entry.
  #[napi(ts_args_type = "options?: { now?: number; max?: number }")]
  pub fn purge(&self, env: &Env, options: Unknown) -> Result<f64> {
    let engine = &self.shared.table.engine;
    let (now, max) = expire_args(env, &**engine, &options)?;
    Ok(engine.expire(now, max).len() as f64)
  }

  /// Stops this handle's `onExpire` timer (batches it already reaped are
  /// still delivered). The table itself stays usable. Idempotent.
  #[napi]
  pub fn close(&self) {
    if let Some(mut r) = self.shared.reaper.borrow_mut().take() {
      r.stop();
    }
  }

  /// Milliseconds on the table's clock.
  #[napi]
  pub fn now(&self) -> f64 {
    self.shared.table.engine.now() as f64
  }

  /// Moves a `clock: 'manual'` table's clock forward; returns the new time.
  #[napi(ts_args_type = "ms: number")]
  pub fn advance_time(&self, env: &Env, ms: Unknown) -> Result<f64> {
    let ms = options::number_value(env, &ms, "ms", errors::INVALID_ARGUMENT)?;
    match &self.shared.table.manual {
      // The clock stays within 2^53 ms, so deadlines (now + timeout, each
      // at most 2^53) never wrap.
      Some(clock) if (0.0..=MAX_CLOCK).contains(&ms) => {
        if clock.now() as f64 + ms.ceil() > MAX_CLOCK {
          return Err(errors::range_error(
            env,
            errors::INVALID_ARGUMENT,
            "advanceTime would move the clock past 2^53 ms",
          ));
        }
        let now = clock.advance(ms as u64) as f64;
        if let Some(r) = &*self.shared.reaper.borrow() {
          r.wake();
        }
        Ok(now)
      }
      Some(_) => Err(errors::range_error(
        env,
        errors::INVALID_ARGUMENT,
        "ms must be a number from 0 to 2^53",
      )),
      None => Err(errors::type_error(
        env,
        errors::INVALID_ARGUMENT,
        "advanceTime needs a table made with clock: 'manual'",
      )),
    }
  }

  /// Removes every entry.
  #[napi]
  pub fn clear(&self) {
    self.shared.table.engine.clear();
  }
}
