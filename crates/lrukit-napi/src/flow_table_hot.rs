//! `FlowTable`'s hot methods: raw Node-API callbacks (`set`, `get`,
//! `getAndTouch`, `has`, `touch`, `touchMany`, `setMany`, `delete`) bound to
//! each instance when it is made (see `raw.rs`), so a call skips napi-rs's
//! class wrapper.

use lrukit_shm_map::Value;
use napi::{
  bindgen_prelude::{ToNapiValue, Uint8Array},
  sys, Env, JsValue, Result, Unknown,
};

use crate::errors;
use crate::flow_table::{Engine, FlowShared, Scratch, Table};
use crate::flow_table_options as args;
use crate::key::{self, KeyBytes};
use crate::raw;
use crate::typed_value::{prepare_value, value_ref, value_to_js};

/// The hot methods, bound to each instance when it is made.
pub(crate) const HOT_METHODS: &[(&str, raw::Method<FlowShared>)] = &[
  ("set\0", set),
  ("get\0", get),
  ("getAndTouch\0", get_and_touch),
  ("has\0", has),
  ("touch\0", touch),
  ("touchMany\0", touch_many),
  ("setMany\0", set_many),
  ("delete\0", delete),
];

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
  let timeout = args::write_timeout(env, &args[2])?;
  let (k, v) = entry(
    env,
    this.table(env)?,
    &mut *this.scratch(env)?,
    &args[0],
    args[1],
  )?;
  this
    .table(env)?
    .engine()
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
  let timeout = args::write_timeout(env, &args[1])?;
  let mut batch = Vec::with_capacity(entries.len() as usize);
  let mut scratch = this.scratch(env)?;
  for i in 0..entries.len() {
    let pair = raw::element(env, &entries, i)?;
    let pair = raw::as_array(env, &pair, PAIR)?;
    let (key, value) = (raw::element(env, &pair, 0)?, raw::element(env, &pair, 1)?);
    batch.push(entry(env, this.table(env)?, &mut scratch, &key, value)?);
  }
  drop(scratch);
  this
    .table(env)?
    .engine()
    .insert_many(batch, timeout)
    .map_err(|_| full_error(env))?;
  Ok(this_js)
}

fn lookup(env: &Env, this: &FlowShared, args: &[Unknown], touch: bool) -> Result<sys::napi_value> {
  let found = {
    let mut scratch = this.scratch(env)?;
    let k = KeyBytes::from_slice(scratch.key.encode(env, &args[0])?);
    if touch {
      this.table(env)?.engine().get_and_touch(&k)
    } else {
      this.table(env)?.engine().get(&k)
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
  Ok(op(this.table(env)?.engine(), &k).into_unknown(env)?.raw())
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
  this.table(env)?.engine().touch_many(&batch, &mut out);
  let mask: Vec<u8> = out.into_iter().map(u8::from).collect();
  Ok(Uint8Array::new(mask).into_unknown(env)?.raw())
}
