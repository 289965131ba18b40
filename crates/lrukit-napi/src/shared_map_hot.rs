//! `SharedMap`'s hot methods: raw Node-API callbacks (`get`, `getMany`,
//! `peek`, `has`, `set`, `add`, `incr`, `delete`) bound to each instance
//! when it is made (see `raw.rs`), so a call skips napi-rs's class wrapper.

use lrukit_shm_map::ValueRef;
use napi::{bindgen_prelude::ToNapiValue, sys, Env, JsValue, Result, Unknown};

use crate::key;
use crate::raw;
use crate::shared_map::{key_error, shm_error, MapShared, MapState};
use crate::shared_map_options as args;
use crate::typed_value::{prepare_value, value_ref, value_to_js};

/// The hot methods, bound to each instance when it is made.
pub(crate) const HOT_METHODS: &[(&str, raw::Method<MapShared>)] = &[
  ("get\0", get),
  ("getMany\0", get_many),
  ("peek\0", peek),
  ("has\0", has),
  ("set\0", set),
  ("add\0", add),
  ("incr\0", incr),
  ("delete\0", delete),
];

fn undefined(env: &Env) -> Result<sys::napi_value> {
  Ok(().into_unknown(env)?.raw())
}

fn read(env: &Env, this: &MapShared, args: &[Unknown], peek: bool) -> Result<sys::napi_value> {
  let mut state = this.state(env)?;
  let MapState {
    map, key: scratch, ..
  } = &mut *state;
  let k = scratch.encode(env, &args[0])?;
  let map = map.as_deref().expect("checked open");
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
  let ttl = args::ttl(env, &args[2])?;
  let mut state = this.state(env)?;
  let MapState {
    map,
    key: scratch,
    value,
    ..
  } = &mut *state;
  let k = scratch.encode(env, &args[0])?;
  let v = value_ref(env, &incoming, value)?;
  let map = map.as_deref().expect("checked open");
  let stored = if only_if_absent {
    map.add(k, v, ttl)
  } else {
    map.set(k, v, ttl).map(|()| true)
  }
  .map_err(|e| key_error(env, map, k, e))?;
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
  let (delta, initial, ttl) = args::incr(env, &args[1], &args[2])?;
  let mut state = this.state(env)?;
  let MapState {
    map, key: scratch, ..
  } = &mut *state;
  let k = scratch.encode(env, &args[0])?;
  let map = map.as_deref().expect("checked open");
  let value = map
    .incr_value(k, delta, initial, ttl)
    .map_err(|e| key_error(env, map, k, e))?;
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
