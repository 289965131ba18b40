//! `FlowTable`: the JavaScript face of [`lrukit_flow_table`]: per-flow state
//! that expires after idle timeouts, stored off the V8 heap (typed values, the
//! same encoding as `SharedMap`), shareable by name across worker_threads.
//!
//! The class, its state and its cold methods are here; the options are read
//! in `flow_table_options.rs`, the hot methods are in `flow_table_hot.rs`
//! and the objects of reaped entries are made in `flow_table_results.rs`.
//! The table itself, its defaults and bounds, the registry of shared tables
//! and the expiry timer are the crate's.

use std::cell::{Cell, RefCell, RefMut};
use std::rc::Rc;
use std::sync::Arc;

use lrukit_flow_table::{
  reap_once, shared_table, unshare_table, AdvanceError, Expired, FlowEngine, FlowTable, Reaper,
};
use lrukit_shm_map::Value;
use napi::{
  bindgen_prelude::JavaScriptClassExt,
  sys,
  threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode},
  Env, JsValue, Result, Status, Unknown,
};
use napi_derive::napi;

use crate::errors;
use crate::flow_table_hot::HOT_METHODS;
use crate::flow_table_options::{self as args, ExpirySpec, FlowTableOptions};
use crate::flow_table_results::{expired_to_js, ExpiredBatch};
use crate::key::{KeyBatch, KeyBytes, KeyScratch};
use crate::options;
use crate::raw;

pub(crate) type Engine = dyn FlowEngine<KeyBytes, Value>;

/// What a table is: the crate's table of stored keys and typed values, and
/// how values are encoded. Shared by every handle and thread (through the
/// crate's registry for `FlowTable.shared`).
pub(crate) struct Table {
  flow: FlowTable<KeyBytes, Value>,
  /// `json: true`: objects and arrays are stored as JSON.
  pub json: bool,
}

impl Table {
  fn new(env: &Env, o: &FlowTableOptions) -> Result<Self> {
    Ok(Self {
      flow: FlowTable::new(&args::table(env, o)?),
      json: o.json.unwrap_or(false),
    })
  }

  #[inline]
  pub(crate) fn engine(&self) -> &Engine {
    self.flow.engine()
  }
}

/// A map of per-flow state whose entries expire after an idle timeout, with
/// no O(N) sweeps: `touch` stores a timestamp, `expire()` reaps bounded
/// batches. An entry past its deadline is never returned, even before
/// `expire` reaps it. Values are stored natively (strings, numbers, bigints,
/// booleans, null, Buffers), so one table can be shared by every
/// worker_thread of a process (`FlowTable.shared(name, options)`).
///
/// Errors carry a `code`: `ERR_LRUKIT_INVALID_TIMEOUT`, `ERR_LRUKIT_INVALID_ENGINE`,
/// `ERR_LRUKIT_INVALID_KEY`, `ERR_LRUKIT_INVALID_VALUE`, `ERR_LRUKIT_FULL`,
/// `ECLOSED` (README "Errors" lists every code).
#[napi(js_name = "FlowTable")]
pub struct JsFlowTable {
  shared: Rc<FlowShared>,
}

pub(crate) struct FlowShared {
  table: Arc<Table>,
  /// Set by `close()`: every later call on this handle throws `ECLOSED`
  /// (other handles of a shared table are not affected).
  closed: Cell<bool>,
  scratch: RefCell<Scratch>,
  /// This handle's `onExpire` timer, if it has one (stopped by `close()`
  /// or when the handle is collected).
  reaper: RefCell<Option<Reaper>>,
}

#[derive(Default)]
pub(crate) struct Scratch {
  pub key: KeyScratch,
  pub value: Vec<u8>,
  /// Encoded keys of a `touchMany` call.
  pub batch: KeyBatch,
}

impl raw::Bound for FlowShared {
  fn release(&self, _env: &Env) {}
}

impl FlowShared {
  pub(crate) fn scratch(&self, env: &Env) -> Result<RefMut<'_, Scratch>> {
    raw::enter(env, &self.scratch, "FlowTable")
  }

  /// The table, or `ECLOSED` once this handle was closed.
  pub(crate) fn table(&self, env: &Env) -> Result<&Arc<Table>> {
    if self.closed.get() {
      return Err(errors::error(
        env,
        errors::CLOSED,
        "this FlowTable handle was closed",
      ));
    }
    Ok(&self.table)
  }
}

type ExpirySink =
  ThreadsafeFunction<Vec<Expired<KeyBytes, Value>>, (), ExpiredBatch, Status, false, false>;

/// Starts the `onExpire` timer of one handle of `table`.
fn start_reaper(env: &Env, table: &Arc<Table>, spec: ExpirySpec) -> Result<Reaper> {
  let ExpirySpec {
    f,
    options,
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
  Reaper::spawn(options.interval, move || {
    reap_once(table.engine(), options.batch, &mut deliver)
  })
  .map_err(|e| {
    napi::Error::new(
      Status::GenericFailure,
      format!("cannot start the expiry timer thread: {e}"),
    )
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
    closed: Cell::new(false),
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

#[napi]
impl JsFlowTable {
  #[napi(
    constructor,
    ts_args_type = "options: FlowTableOptions<K, V> & JsonOption<V>"
  )]
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
    let options = args::read(&env, &options, "new FlowTable(options)")?;
    let table = Arc::new(Table::new(&env, &options)?);
    let expiry = args::expiry(&env, &options)?;
    let (shared, _) = instance(&env, table, expiry, Some(this.raw()))?;
    Ok(Self { shared })
  }

  /// The table named `name` for every worker_thread of this process: the
  /// first call creates it with `options`, later calls (from any thread)
  /// return a handle to the same table and ignore `options`.
  #[napi(
    ts_generic_types = "K extends Key = Key, V extends StoredValue = StoredValue",
    ts_args_type = "name: string, options: FlowTableOptions<K, V> & JsonOption<V>",
    ts_return_type = "FlowTable<K, V>"
  )]
  pub fn shared<'e>(env: &'e Env, name: Unknown<'e>, options: Unknown<'e>) -> Result<Unknown<'e>> {
    let name = options::string_value(env, &name, "name", errors::INVALID_ARGUMENT)?;
    let options = args::read(env, &options, "FlowTable.shared(name, options)")?;
    let expiry = args::expiry(env, &options)?;
    let table = shared_table(&name, || Table::new(env, &options))?;
    let (_, obj) = instance(env, table, expiry, None)?;
    Ok(obj.expect("an instance was made"))
  }

  /// Forgets the shared table `name` (handles keep working); false if unknown.
  #[napi(ts_args_type = "name: string")]
  pub fn unshare(env: &Env, name: Unknown) -> Result<bool> {
    let name = options::string_value(env, &name, "name", errors::INVALID_ARGUMENT)?;
    Ok(unshare_table::<Table>(&name))
  }

  /// Number of entries (expired ones not yet reaped by `expire` included).
  #[napi(getter)]
  pub fn size(&self, env: &Env) -> Result<f64> {
    Ok(self.shared.table(env)?.engine().len() as f64)
  }

  /// Removes and returns up to `max` expired entries (default: all that are
  /// due), as of `now` (default: the table's clock). The work is bounded by
  /// `max`: never an O(size) sweep.
  #[napi(
    ts_args_type = "options?: { now?: number; max?: number }",
    ts_return_type = "FlowExpired<K, V>[]"
  )]
  pub fn expire<'e>(&self, env: &'e Env, options: Unknown<'e>) -> Result<Unknown<'e>> {
    let engine = self.shared.table(env)?.engine();
    let (now, max) = args::expire_args(env, engine.now(), &options)?;
    let array = expired_to_js(env, engine.expire(now, max))?;
    // SAFETY: `array` was just created in this environment.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), array) })
  }

  /// Like `expire`, but only removes the entries and returns how many: for
  /// callers that do not need them (a rate limiter), without making a
  /// JavaScript object per entry.
  #[napi(ts_args_type = "options?: { now?: number; max?: number }")]
  pub fn purge(&self, env: &Env, options: Unknown) -> Result<f64> {
    let engine = self.shared.table(env)?.engine();
    let (now, max) = args::expire_args(env, engine.now(), &options)?;
    Ok(engine.expire(now, max).len() as f64)
  }

  /// Closes this handle, as `SharedMap`'s `close()` does: stops its
  /// `onExpire` timer (batches it already reaped are still delivered), and
  /// every later call on it throws `ECLOSED`. The entries stay in the table
  /// for its other handles (`FlowTable.shared`). Idempotent.
  #[napi]
  pub fn close(&self) {
    self.shared.closed.set(true);
    if let Some(mut r) = self.shared.reaper.borrow_mut().take() {
      r.stop();
    }
  }

  /// Whether `close()` was called on this handle.
  #[napi(getter)]
  pub fn closed(&self) -> bool {
    self.shared.closed.get()
  }

  /// Milliseconds on the table's clock.
  #[napi]
  pub fn now(&self, env: &Env) -> Result<f64> {
    Ok(self.shared.table(env)?.engine().now() as f64)
  }

  /// Moves a `clock: 'manual'` table's clock forward; returns the new time.
  #[napi(ts_args_type = "ms: number")]
  pub fn advance_time(&self, env: &Env, ms: Unknown) -> Result<f64> {
    let ms = options::number_value(env, &ms, "ms", errors::INVALID_ARGUMENT)?;
    let any = errors::INVALID_ARGUMENT;
    match self.shared.table(env)?.flow.advance_time(ms) {
      Ok(now) => {
        if let Some(r) = &*self.shared.reaper.borrow() {
          r.wake();
        }
        Ok(now as f64)
      }
      Err(AdvanceError::PastMax) => Err(errors::range_error(
        env,
        any,
        "advanceTime would move the clock past 2^53 ms",
      )),
      Err(AdvanceError::OutOfRange) => Err(errors::range_error(
        env,
        any,
        "ms must be a number from 0 to 2^53",
      )),
      Err(AdvanceError::NotManual) => Err(errors::type_error(
        env,
        any,
        "advanceTime needs a table made with clock: 'manual'",
      )),
    }
  }

  /// Removes every entry.
  #[napi]
  pub fn clear(&self, env: &Env) -> Result<()> {
    self.shared.table(env)?.engine().clear();
    Ok(())
  }
}
