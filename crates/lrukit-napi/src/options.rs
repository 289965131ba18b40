//! Options objects and plain arguments, read by hand.
//!
//! napi-rs's automatic conversions (`#[napi(object)]` structs, `String` and
//! `f64` parameters) throw errors without a lrukit code, and a plain `Error`
//! where the type is wrong: a missing options object is "Cannot convert
//! undefined or null to object", a string where a number belongs is
//! `NumberExpected`. The public methods take `Unknown` instead and read it
//! here, so every wrong type is a `TypeError` with a stable code (the
//! `#[napi(object)]` structs remain, for their TypeScript declarations and as
//! the parsed form).
//!
//! A property getter or Proxy trap that throws propagates its own exception
//! unchanged.

use napi::{
  bindgen_prelude::{FromNapiValue, JsObjectValue, Object},
  Env, JsValue, Result, Unknown, ValueType,
};

use crate::errors;

/// An options argument: the object, or `None` when it is `undefined` or
/// `null` and `required` is false. `what` names the call in messages.
pub(crate) fn object<'e>(
  env: &Env,
  v: &Unknown<'e>,
  what: &str,
  required: bool,
) -> Result<Option<Object<'e>>> {
  match v.get_type()? {
    // SAFETY: just checked to be an object.
    ValueType::Object => Ok(Some(unsafe { v.cast::<Object>()? })),
    ValueType::Undefined | ValueType::Null if !required => Ok(None),
    ValueType::Undefined | ValueType::Null => Err(errors::type_error(
      env,
      errors::INVALID_ARGUMENT,
      &format!("{what} needs an options object"),
    )),
    _ => Err(errors::type_error(
      env,
      errors::INVALID_ARGUMENT,
      &format!("{what}: options must be an object"),
    )),
  }
}

/// Property `name` of `o`; `None` when it is `undefined` or `null`.
fn field<'e>(o: &Object<'e>, name: &str) -> Result<Option<Unknown<'e>>> {
  let v: Unknown = o.get_named_property(name)?;
  Ok(match v.get_type()? {
    ValueType::Undefined | ValueType::Null => None,
    _ => Some(v),
  })
}

/// A number property (any number, NaN and infinities included: ranges are
/// the caller's); a `TypeError` with `code` for other types.
pub(crate) fn number(env: &Env, o: &Object, name: &str, code: &str) -> Result<Option<f64>> {
  match field(o, name)? {
    None => Ok(None),
    Some(v) => number_value(env, &v, name, code).map(Some),
  }
}

/// A boolean property; a `TypeError` for other types.
pub(crate) fn boolean(env: &Env, o: &Object, name: &str) -> Result<Option<bool>> {
  match field(o, name)? {
    None => Ok(None),
    // SAFETY: just checked to be a boolean.
    Some(v) if v.get_type()? == ValueType::Boolean => Ok(Some(unsafe { v.cast::<bool>()? })),
    Some(_) => Err(errors::type_error(
      env,
      errors::INVALID_ARGUMENT,
      &format!("{name} must be a boolean"),
    )),
  }
}

/// A string property; a `TypeError` with `code` for other types.
pub(crate) fn string(env: &Env, o: &Object, name: &str, code: &str) -> Result<Option<String>> {
  match field(o, name)? {
    None => Ok(None),
    Some(v) => string_value(env, &v, name, code).map(Some),
  }
}

/// A property of any type but `undefined`/`null` (checked by the caller).
pub(crate) fn any<'e>(o: &Object<'e>, name: &str) -> Result<Option<Unknown<'e>>> {
  field(o, name)
}

/// `v` as a number; a `TypeError` with `code` naming `what` otherwise.
pub(crate) fn number_value(env: &Env, v: &Unknown, what: &str, code: &str) -> Result<f64> {
  if v.get_type()? != ValueType::Number {
    return Err(errors::type_error(
      env,
      code,
      &format!("{what} must be a number"),
    ));
  }
  // SAFETY: just checked to be a number.
  unsafe { v.cast::<f64>() }
}

/// `v` as a string; a `TypeError` with `code` naming `what` otherwise.
pub(crate) fn string_value(env: &Env, v: &Unknown, what: &str, code: &str) -> Result<String> {
  if v.get_type()? != ValueType::String {
    return Err(errors::type_error(
      env,
      code,
      &format!("{what} must be a string"),
    ));
  }
  // SAFETY: just checked to be a string.
  unsafe { String::from_napi_value(env.raw(), v.raw()) }
}

/// An optional number argument: `None` for `undefined`/`null`.
pub(crate) fn optional_number(
  env: &Env,
  v: &Unknown,
  what: &str,
  code: &str,
) -> Result<Option<f64>> {
  match v.get_type()? {
    ValueType::Undefined | ValueType::Null => Ok(None),
    _ => number_value(env, v, what, code).map(Some),
  }
}
