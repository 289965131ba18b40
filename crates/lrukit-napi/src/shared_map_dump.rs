//! `map.dump(file)` and `map.load(file)`: the crate's
//! [`SharedMap::dump_file`] / [`SharedMap::load_file`] (format, TTL rule and
//! failure story in `crates/shm-map/src/dump.rs`) run on the libuv thread
//! pool as a napi [`Task`], so the JavaScript thread never waits for the
//! file. Each call resolves with the number of entries written / loaded.
//!
//! The task holds its own `Arc` of the crate map (the crate's `SharedMap` is
//! `Send + Sync`). So `close()` while a dump or load runs closes the handle
//! at once for JavaScript (further calls throw `ECLOSED`) but unmaps
//! nothing under the task: the mapping goes when the task, the last owner,
//! drops its `Arc` after settling.
//!
//! Arguments are checked and a closed handle refused synchronously (a
//! thrown `TypeError` / `ECLOSED`, like every other call); what happens to
//! the file and the data rejects the promise (`EBADDUMP`, `EIO`, `EFULL`,
//! `EKEYTOOLONG`, `EVALUETOOLONG`, …) with the constructor and code of the
//! README's error table.

use std::path::PathBuf;
use std::ptr;
use std::sync::Arc;

use lrukit_shm_map::SharedMap;
use napi::{bindgen_prelude::Task, sys, Env, Error, Result, Status, Unknown};

use crate::errors;
use crate::options;

/// What a task does with its file.
#[derive(Clone, Copy)]
pub(crate) enum Op {
  Dump,
  Load,
}

/// A dump or load on the thread pool.
pub struct FileTask {
  map: Arc<SharedMap>,
  path: PathBuf,
  op: Op,
  /// The crate's error, kept for `reject` (which builds the coded error on
  /// the JavaScript thread).
  failed: Option<lrukit_shm_map::Error>,
}

impl FileTask {
  pub(crate) fn new(map: Arc<SharedMap>, path: PathBuf, op: Op) -> Self {
    FileTask {
      map,
      path,
      op,
      failed: None,
    }
  }
}

/// Reads the `file` argument of `what`: a path string.
pub(crate) fn path(env: &Env, v: &Unknown, what: &str) -> Result<PathBuf> {
  options::string_value(env, v, &format!("{what}: file"), errors::INVALID_ARGUMENT)
    .map(PathBuf::from)
}

impl Task for FileTask {
  type Output = u64;
  type JsValue = f64;

  fn compute(&mut self) -> Result<u64> {
    let done = match self.op {
      Op::Dump => self.map.dump_file(&self.path),
      Op::Load => self.map.load_file(&self.path),
    };
    done.map_err(|e| {
      let reason = e.to_string();
      self.failed = Some(e);
      Error::new(Status::GenericFailure, reason)
    })
  }

  fn resolve(&mut self, _env: Env, n: u64) -> Result<f64> {
    Ok(n as f64)
  }

  fn reject(&mut self, env: Env, err: Error) -> Result<f64> {
    let Some(mut e) = self.failed.take() else {
      return Err(err);
    };
    let name = self.map.name();
    if !e.message.contains(name) {
      e.message = format!("shared map \"{name}\": {}", e.message);
    }
    Err(rejection(&env, e.code, &e.to_string()))
  }
}

/// The error `errors::crate_error` would throw for `code`, as a value to
/// reject a promise with: thrown, then taken back from the environment.
fn rejection(env: &Env, code: &str, msg: &str) -> Error {
  let thrown = errors::crate_error(env, code, msg);
  if thrown.status != Status::PendingException {
    return thrown;
  }
  let mut value = ptr::null_mut();
  // SAFETY: a Node-API call on the environment's own thread (`reject` runs
  // on the JavaScript thread) with an out-pointer of ours.
  let status = unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut value) };
  if status != sys::Status::napi_ok || value.is_null() {
    return thrown;
  }
  // SAFETY: `value` is the live exception just taken from this environment,
  // in the current handle scope.
  Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
}
