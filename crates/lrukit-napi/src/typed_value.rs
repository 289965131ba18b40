//! Typed values shared by `SharedMap` and `FlowTable`: JavaScript values to
//! and from the shared-memory crate's tagged encoding (string, number, bigint,
//! boolean, null, bytes, and JSON for objects when asked).

use lrukit_shm_map::ValueRef;
use napi::{
  bindgen_prelude::{BigInt, Buffer, FromNapiValue, JsObjectValue, Object, ToNapiValue},
  sys, Env, JsValue, Result, Status, Unknown, ValueType,
};

use crate::errors;
use crate::key;

/// A JavaScript value about to be stored: objects are serialised to JSON
/// before the state is borrowed (`JSON.stringify` may run user code).
pub(crate) enum Incoming<'e> {
  Plain(Unknown<'e>),
  Json(Unknown<'e>),
}

pub(crate) fn prepare_value<'e>(env: &'e Env, json: bool, v: Unknown<'e>) -> Result<Incoming<'e>> {
  match v.get_type()? {
    ValueType::Object if !v.is_typedarray()? => {
      if !json {
        return Err(errors::type_error(
          env,
          errors::INVALID_VALUE,
          "values are strings, numbers, bigints, booleans, null or Buffers; pass { json: true } (when creating the table or opening the map) to store objects",
        ));
      }
      let json_obj: Object = env.get_global()?.get_named_property_unchecked("JSON")?;
      let stringify: Unknown = json_obj.get_named_property("stringify")?;
      let text = match call1(env, &stringify, &v)? {
        Ok(text) => text,
        Err(exc) => return Err(stringify_failed(env, exc)),
      };
      if text.get_type()? != ValueType::String {
        return Err(errors::type_error(
          env,
          errors::INVALID_VALUE,
          "value is not JSON-serialisable",
        ));
      }
      Ok(Incoming::Json(text))
    }
    _ => Ok(Incoming::Plain(v)),
  }
}

/// Calls `f(arg)` with `this` undefined: `Ok(Ok(result))`, or
/// `Ok(Err(exception))` when it threw (the exception is taken, not left
/// pending). napi-rs's `Function::call` wraps a thrown value into an `Error`
/// that can only be rethrown, not inspected.
fn call1<'e>(
  env: &'e Env,
  f: &Unknown<'e>,
  arg: &Unknown<'e>,
) -> Result<std::result::Result<Unknown<'e>, Unknown<'e>>> {
  let raw = env.raw();
  let (mut this, mut out) = (std::ptr::null_mut(), std::ptr::null_mut());
  // SAFETY: plain Node-API calls on this env's thread with live handles.
  napi::check_status!(unsafe { sys::napi_get_undefined(raw, &mut this) })?;
  let argv = [arg.raw()];
  // SAFETY: as above; `argv` holds one live handle.
  let status = unsafe { sys::napi_call_function(raw, this, f.raw(), 1, argv.as_ptr(), &mut out) };
  if status == sys::Status::napi_pending_exception {
    return Ok(Err(take_exception(env)?));
  }
  napi::check_status!(status)?;
  // SAFETY: `out` is the call's result in this env.
  Ok(Ok(unsafe { Unknown::from_raw_unchecked(raw, out) }))
}

/// Takes the pending JavaScript exception (after a call that threw).
fn take_exception(env: &Env) -> Result<Unknown<'_>> {
  let mut exc = std::ptr::null_mut();
  // SAFETY: a plain Node-API call on this env's thread.
  napi::check_status!(unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut exc) })?;
  // SAFETY: `exc` was just handed out by Node-API for this env.
  Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), exc) })
}

/// `JSON.stringify` threw `exc`. Its own failures (a cycle, a bigint, a
/// value nested too deep or too long: built-in `TypeError`s and
/// `RangeError`s without a `code`) become a `TypeError` with code
/// `ERR_LRUKIT_INVALID_VALUE` and the original as `cause`; what a `toJSON`
/// method, getter or Proxy trap threw is rethrown unchanged.
fn stringify_failed(env: &Env, exc: Unknown) -> napi::Error {
  let own = (|| -> Result<bool> {
    if exc.get_type()? != ValueType::Object {
      return Ok(false);
    }
    let global = env.get_global()?;
    // SAFETY: just checked to be an object.
    let obj = unsafe { exc.cast::<Object>()? };
    for name in ["TypeError", "RangeError"] {
      let ctor: Unknown = global.get_named_property_unchecked(name)?;
      if exc.instanceof(ctor)? {
        return Ok(!obj.has_own_property("code")?);
      }
    }
    Ok(false)
  })();
  let own = own.unwrap_or_else(|_| {
    // Looking at it threw (a hostile Proxy): drop that and rethrow `exc`.
    let _ = take_exception(env);
    false
  });
  const MSG: &str =
    "value is not JSON-serialisable (a cycle, a bigint, or nested too deep); see cause";
  let thrown = if own {
    (|| -> Result<()> {
      let mut err = std::ptr::null_mut();
      let code = env.create_string(errors::INVALID_VALUE)?;
      let msg = env.create_string(MSG)?;
      // SAFETY: plain Node-API calls on this env's thread with live handles.
      napi::check_status!(unsafe {
        sys::napi_create_type_error(env.raw(), code.raw(), msg.raw(), &mut err)
      })?;
      // SAFETY: `err` was just created in this env.
      let mut err = unsafe { Object::from_napi_value(env.raw(), err)? };
      err.set_named_property("cause", exc)?;
      env.throw(err)
    })()
  } else {
    env.throw(exc)
  };
  match thrown {
    Ok(()) => napi::Error::new(Status::PendingException, MSG.to_owned()),
    Err(e) => e,
  }
}

/// Encodes a prepared value into `buf` and returns the crate's view of it.
pub(crate) fn value_ref<'b>(
  env: &Env,
  incoming: &Incoming,
  buf: &'b mut Vec<u8>,
) -> Result<ValueRef<'b>> {
  buf.clear();
  let (v, is_json) = match incoming {
    Incoming::Plain(v) => (v, false),
    Incoming::Json(v) => (v, true),
  };
  let raw = v.raw();
  // SAFETY: each cast below matches the type N-API just reported.
  unsafe {
    Ok(match v.get_type()? {
      ValueType::String => {
        key::read_utf8(env, raw, buf)?;
        if is_json {
          ValueRef::Json(buf)
        } else {
          ValueRef::String(buf)
        }
      }
      ValueType::Number => ValueRef::Number(f64::from_napi_value(env.raw(), raw)?),
      ValueType::Boolean => ValueRef::Bool(bool::from_napi_value(env.raw(), raw)?),
      ValueType::Null => ValueRef::Null,
      ValueType::BigInt => {
        let (n, lossless) = BigInt::from_napi_value(env.raw(), raw)?.get_i64();
        if !lossless {
          return Err(errors::range_error(
            env,
            errors::RANGE,
            "bigint values must fit in a signed 64-bit integer",
          ));
        }
        ValueRef::BigInt(n)
      }
      ValueType::Object => match <&[u8]>::from_napi_value(env.raw(), raw) {
        Ok(bytes) => {
          buf.extend_from_slice(bytes);
          ValueRef::Bytes(buf)
        }
        Err(_) => return Err(invalid_value(env)),
      },
      _ => return Err(invalid_value(env)),
    })
  }
}

fn invalid_value(env: &Env) -> napi::Error {
  errors::type_error(
    env,
    errors::INVALID_VALUE,
    "values are strings, numbers, bigints, booleans, null or Buffers/Uint8Arrays",
  )
}

pub(crate) fn value_to_js<'e>(env: &'e Env, v: ValueRef) -> Result<Unknown<'e>> {
  match v {
    ValueRef::String(b) => match std::str::from_utf8(b) {
      Ok(s) => s.into_unknown(env),
      Err(_) => String::from_utf8_lossy(b).into_owned().into_unknown(env),
    },
    ValueRef::Number(n) => n.into_unknown(env),
    ValueRef::BigInt(i) => BigInt::from(i).into_unknown(env),
    ValueRef::Bool(b) => b.into_unknown(env),
    ValueRef::Null => napi::bindgen_prelude::Null.into_unknown(env),
    ValueRef::Bytes(b) => Buffer::from(b.to_vec()).into_unknown(env),
    ValueRef::Json(b) => {
      let text = String::from_utf8_lossy(b).into_owned();
      let json_obj: Object = env.get_global()?.get_named_property_unchecked("JSON")?;
      let parse: Unknown = json_obj.get_named_property("parse")?;
      // Only the binding's own `JSON.stringify` output is stored as JSON, so
      // text that does not parse is damaged memory (no reviver runs user
      // code here).
      match call1(env, &parse, &text.into_unknown(env)?)? {
        Ok(v) => Ok(v),
        Err(_) => Err(errors::error(
          env,
          errors::CORRUPT,
          "a stored JSON value does not parse (damaged memory)",
        )),
      }
    }
  }
}
