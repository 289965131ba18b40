//! Typed values shared by `SharedMap` and `FlowTable`: JavaScript values to
//! and from the shared-memory crate's tagged encoding (string, number, bigint,
//! boolean, null, bytes, and JSON for objects when asked).

use lrukit_shm_map::ValueRef;
use napi::{
  bindgen_prelude::{BigInt, Buffer, FromNapiValue, Function, JsObjectValue, Object, ToNapiValue},
  Env, JsValue, Result, Unknown, ValueType,
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
      let stringify: Function<Unknown, Unknown> = json_obj.get_named_property("stringify")?;
      let text = stringify.call(v)?;
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
            "ERANGE",
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
      let parse: Function<String, Unknown> = json_obj.get_named_property("parse")?;
      parse.call(text)
    }
  }
}
