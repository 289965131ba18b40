//! What `FlowTable` hands back to JavaScript from the crate's results: the
//! `{ key, value, lastSeen }` objects of reaped entries, for `expire()` and
//! for the batches of `onExpire`.

use lrukit_flow_table::Expired;
use lrukit_shm_map::Value;
use napi::{
  bindgen_prelude::{Float64Array, ToNapiValue},
  sys, Env, JsValue, Result, Unknown,
};
use napi_derive::napi;

use crate::helpers::{self, Helper};
use crate::key::{self, KeyBytes};
use crate::typed_value::value_to_js;

/// An entry returned by `expire()` and passed to `onExpire`. Only its
/// TypeScript declaration is generated from this; the objects are made by
/// `expired_to_js`.
#[allow(dead_code)]
#[napi(object, object_from_js = false)]
pub struct FlowExpired<'e> {
  #[napi(ts_type = "K")]
  pub key: Unknown<'e>,
  #[napi(ts_type = "V")]
  pub value: Unknown<'e>,
  /// Clock reading (ms) of the entry's last set/touch.
  pub last_seen: f64,
}

/// A batch of expired entries on its way to an `onExpire` callback: made
/// into JavaScript objects on the JavaScript thread.
pub(crate) struct ExpiredBatch(pub Vec<Expired<KeyBytes, Value>>);

impl ToNapiValue for ExpiredBatch {
  unsafe fn to_napi_value(env: sys::napi_env, batch: Self) -> Result<sys::napi_value> {
    expired_to_js(&Env::from_raw(env), batch.0)
  }
}

/// Entries per call of the expired-objects helper (2 arguments each; V8
/// allows about 65k arguments).
const OBJECTS_CHUNK: usize = 4096;

/// `[{ key, value, lastSeen }, ...]` for reaped entries: keys and values
/// are made natively and handed to the `ExpiredObjects` helper as arguments, the
/// lastSeen times in one `Float64Array` (about 5x faster than napi-rs's
/// object conversion, which also re-creates every property name for every
/// object). Where no script can be compiled, the objects are made here with
/// cached property names.
pub(crate) fn expired_to_js(
  env: &Env,
  list: Vec<Expired<KeyBytes, Value>>,
) -> Result<sys::napi_value> {
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
