//! The arguments of `FlowTable`'s calls, read from JavaScript into what
//! `lrukit_flow_table` takes: the options of `new FlowTable` /
//! `FlowTable.shared` into a [`TableOptions`] and an [`ExpiryOptions`], a
//! write's `{ timeout }`, and the `{ now, max }` of `expire` / `purge`.
//!
//! This converts, and turns the crate's refusals into JavaScript errors; it
//! decides no default and no bound. The defaults are [`TableOptions::new`]
//! and [`ExpiryOptions::for_timeout`]; names, timeouts and capacities are
//! checked by the crate's `FromStr` and [`table_options`] functions. What is
//! JavaScript's stays here: the error codes and messages, `onExpire` being
//! a function, and `keepAlive` (whether the timer keeps the event loop
//! alive; off by default, like an `unref()`ed timer).

use std::ops::RangeInclusive;
use std::str::FromStr;

use lrukit_flow_table::{options as table_options, ExpiryOptions, TableOptions, UnknownName};
use napi::{
  bindgen_prelude::{Function, JsObjectValue, Object},
  Env, Result, Unknown, ValueType,
};
use napi_derive::napi;

use crate::errors;
use crate::flow_table_results::ExpiredBatch;
use crate::options;

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
  /// structure. `'dashmap'`: a DashMap with per-thread priority queues.
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
  #[napi(ts_type = "(entries: FlowExpired<K, V>[]) => void")]
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

/// Reads the options of `new FlowTable` / `FlowTable.shared` (`what`): an
/// object is required; every property is type-checked here, values in
/// [`table`] and [`expiry`].
pub(crate) fn read<'e>(env: &Env, v: &Unknown<'e>, what: &str) -> Result<FlowTableOptions<'e>> {
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

/// An idle timeout (the table's or a write's) in whole milliseconds.
pub(crate) fn timeout(env: &Env, v: f64) -> Result<u64> {
  table_options::timeout_ms(v).ok_or_else(|| {
    errors::range_error(
      env,
      errors::INVALID_TIMEOUT,
      &format!("timeout must be a positive number of milliseconds, got {v}"),
    )
  })
}

/// `value` as one of the names of option `what`.
fn named<T: FromStr<Err = UnknownName>>(
  env: &Env,
  what: &str,
  value: &str,
  code: &str,
) -> Result<T> {
  value
    .parse()
    .map_err(|e: UnknownName| errors::range_error(env, code, &format!("{what} {e}")))
}

/// The table's options: the crate's defaults, overridden by those given.
pub(crate) fn table(env: &Env, o: &FlowTableOptions) -> Result<TableOptions> {
  let mut t = TableOptions::new(timeout(env, o.timeout)?);
  if let Some(c) = o.capacity {
    let c = table_options::capacity(c).ok_or_else(|| {
      errors::range_error(
        env,
        errors::INVALID_CAPACITY,
        "capacity must be a positive integer",
      )
    })?;
    t.config.capacity = Some(c);
  }
  if let Some(w) = &o.when_full {
    t.config.when_full = named(env, "whenFull", w, errors::INVALID_ARGUMENT)?;
  }
  if let Some(e) = &o.engine {
    t.engine = named(env, "engine", e, errors::INVALID_ENGINE)?;
  }
  if let Some(c) = &o.clock {
    t.clock = named(env, "clock", c, errors::INVALID_ARGUMENT)?;
  }
  Ok(t)
}

/// A validated `onExpire` request.
pub(crate) struct ExpirySpec<'e> {
  pub f: Function<'e, ExpiredBatch, ()>,
  pub options: ExpiryOptions,
  pub keep_alive: bool,
}

fn out_of_range(env: &Env, what: &str, range: &RangeInclusive<u64>, v: f64) -> napi::Error {
  errors::range_error(
    env,
    errors::INVALID_ARGUMENT,
    &format!(
      "{what} must be a number from {} to {}, got {v}",
      range.start(),
      range.end()
    ),
  )
}

/// Checks the `onExpire` options (before anything is created or shared).
pub(crate) fn expiry<'e>(env: &Env, o: &FlowTableOptions<'e>) -> Result<Option<ExpirySpec<'e>>> {
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
  let mut options = ExpiryOptions::for_timeout(o.timeout);
  if let Some(v) = o.expire_interval {
    options.interval = ExpiryOptions::interval_ms(v)
      .ok_or_else(|| out_of_range(env, "expireInterval", &ExpiryOptions::INTERVAL_MS, v))?;
  }
  if let Some(v) = o.expire_batch {
    options.batch = ExpiryOptions::batch(v)
      .ok_or_else(|| out_of_range(env, "expireBatch", &ExpiryOptions::BATCH, v))?;
  }
  Ok(Some(ExpirySpec {
    f,
    options,
    keep_alive: o.keep_alive.unwrap_or(false),
  }))
}

/// The `{ timeout? }` of `set` / `setMany`: `None` for the table's own.
pub(crate) fn write_timeout(env: &Env, options: &Unknown) -> Result<Option<u64>> {
  match options.get_type()? {
    ValueType::Undefined | ValueType::Null => Ok(None),
    ValueType::Object => {
      // SAFETY: just checked to be an object.
      let o = unsafe { options.cast::<Object>()? };
      let t: Option<Unknown> = o.get_named_property("timeout")?;
      match t {
        Some(t) if t.get_type()? == ValueType::Number => {
          // SAFETY: just checked to be a number.
          Ok(Some(timeout(env, unsafe { t.cast::<f64>()? })?))
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

/// `{ now?, max? }` of `expire` and `purge`: absent, the table's clock
/// (`clock_now`) and every due entry.
pub(crate) fn expire_args(env: &Env, clock_now: u64, options: &Unknown) -> Result<(u64, usize)> {
  let (mut now, mut max) = (clock_now, usize::MAX);
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
