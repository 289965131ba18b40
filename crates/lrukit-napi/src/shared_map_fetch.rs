//! The native steps of `SharedMap.prototype.fetch` (its JavaScript side is
//! in `index.js`: the loader call, in-process coalescing and the poll
//! timer). Each converts and calls one step of the crate's single flight
//! (`lrukit_shm_map::fetch`), which holds the protocol. Exported by
//! `native.js` only.

use lrukit_shm_map::{Claim, Fetched};
use napi::{
  bindgen_prelude::{External, Uint8Array},
  Env, JsValue, Result, Unknown,
};
use napi_derive::napi;

use crate::raw;
use crate::shared_map::{shm_error, JsSharedMap, MapState};
use crate::shared_map_options as args;
use crate::typed_value::{prepare_value, value_ref, value_to_js};

/// What `fetchStep` found, as the first element of the array it returns.
const FRESH: u32 = 0;
const STALE: u32 = 1;
const LOAD: u32 = 2;
const WAIT: u32 = 3;

/// One step of `map.fetch(key, loader, options)`: `[0, value]` (fresh),
/// `[1, value, claim | undefined]` (stale; with a claim, refresh it),
/// `[2, undefined, claim]` (a miss: load it) or `[3, undefined, ownerPid]`
/// (another process is loading it). `first`: count the hit or miss as
/// `get` does; polls pass false.
#[napi(skip_typescript)]
#[cfg_attr(test, allow(dead_code))] // only called from JavaScript
pub fn shared_map_fetch_step<'e>(
  env: &'e Env,
  map: &JsSharedMap,
  key: Unknown<'e>,
  options: Unknown<'e>,
  first: bool,
) -> Result<Unknown<'e>> {
  let o = args::fetch(env, &options)?;
  let step = {
    let mut state = map.shared.state(env)?;
    let MapState {
      map, key: scratch, ..
    } = &mut *state;
    let k = scratch.encode(env, &key)?;
    map
      .as_ref()
      .expect("checked open")
      .fetch_step(k, &o, first)
      .map_err(|e| shm_error(env, e))?
  };
  let mut out = env.create_array(3)?;
  match step {
    Fetched::Fresh(v) => {
      out.set(0, FRESH)?;
      out.set(1, value_to_js(env, v.as_ref())?)?;
    }
    Fetched::Stale(v, claim) => {
      out.set(0, STALE)?;
      out.set(1, value_to_js(env, v.as_ref())?)?;
      if let Some(c) = claim {
        out.set(2, External::new(c).into_unknown(env)?)?;
      }
    }
    Fetched::Load(c) => {
      out.set(0, LOAD)?;
      out.set(2, External::new(c).into_unknown(env)?)?;
    }
    Fetched::Wait { owner_pid } => {
      out.set(0, WAIT)?;
      out.set(2, owner_pid)?;
    }
  }
  Ok(out.to_unknown())
}

/// For waiting fetches: `pending[i]` is 1 while `keys[i]` would still wait
/// (no value, a live owner's claim), 0 when a full step is due. One call
/// per poll for all of a handle's waiting keys.
#[napi(skip_typescript)]
#[cfg_attr(test, allow(dead_code))] // only called from JavaScript
pub fn shared_map_fetch_pending<'e>(
  env: &'e Env,
  map: &JsSharedMap,
  keys: Unknown<'e>,
) -> Result<Uint8Array> {
  let keys = raw::as_array(env, &keys, "fetchPending(map, keys) needs an array of keys")?;
  let mut state = map.shared.state(env)?;
  let MapState {
    map, key: scratch, ..
  } = &mut *state;
  let m = map.as_ref().expect("checked open");
  let mut out = vec![0u8; keys.len() as usize];
  for (i, slot) in out.iter_mut().enumerate() {
    let k = scratch.encode(env, &raw::element(env, &keys, i as u32)?)?;
    *slot = m.fetch_pending(k).map_err(|e| shm_error(env, e))? as u8;
  }
  Ok(Uint8Array::new(out))
}

/// The map's fetch epoch (see the crate's `fetch_epoch`): waiters check
/// their keys only when it moved.
#[napi(skip_typescript)]
#[cfg_attr(test, allow(dead_code))] // only called from JavaScript
pub fn shared_map_fetch_epoch(env: &Env, map: &JsSharedMap) -> Result<f64> {
  let state = map.shared.state(env)?;
  state
    .map
    .as_ref()
    .expect("checked open")
    .fetch_epoch()
    .map_err(|e| shm_error(env, e))
}

/// Stores a loader's `value` under `key` with the fetch's TTL and gives the
/// claim back.
#[napi(skip_typescript)]
#[cfg_attr(test, allow(dead_code))] // only called from JavaScript
pub fn shared_map_fetch_store<'e>(
  env: &'e Env,
  map: &JsSharedMap,
  key: Unknown<'e>,
  claim: &External<Claim>,
  value: Unknown<'e>,
  options: Unknown<'e>,
) -> Result<()> {
  let o = args::fetch(env, &options)?;
  let json = map.shared.state(env)?.json;
  let value = prepare_value(env, json, value)?;
  let mut state = map.shared.state(env)?;
  let MapState {
    map: m,
    key: scratch,
    value: buf,
    ..
  } = &mut *state;
  let k = scratch.encode(env, &key)?;
  let v = value_ref(env, &value, buf)?;
  // The claim is given back even when the value is refused.
  m.as_ref()
    .expect("checked open")
    .fetch_store(k, claim, v, &o)
    .map_err(|e| shm_error(env, e))
}

/// Gives a claim back without storing (the loader failed); false if it was
/// no longer this process's.
#[napi(skip_typescript)]
#[cfg_attr(test, allow(dead_code))] // only called from JavaScript
pub fn shared_map_fetch_release(
  env: &Env,
  map: &JsSharedMap,
  claim: &External<Claim>,
) -> Result<bool> {
  map
    .shared
    .state(env)?
    .map
    .as_ref()
    .expect("checked open")
    .fetch_release(claim)
    .map_err(|e| shm_error(env, e))
}
