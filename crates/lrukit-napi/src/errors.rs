//! Errors thrown to JavaScript. Every error lrukit throws carries a stable `code`
//! property; the list below is the contract documented in the README.
//!
//! Wrong types throw `TypeError`, values out of range throw `RangeError`.

use napi::{Env, Error, Status};

/// `capacity` is not a positive integer (or `Infinity`).
pub const INVALID_CAPACITY: &str = "ERR_LRUKIT_INVALID_CAPACITY";
/// A `ttl` is negative, NaN or not a number.
pub const INVALID_TTL: &str = "ERR_LRUKIT_INVALID_TTL";
/// A `timestamp` is not a finite number.
pub const INVALID_TIMESTAMP: &str = "ERR_LRUKIT_INVALID_TIMESTAMP";
/// A timeout is not a positive number of milliseconds.
pub const INVALID_TIMEOUT: &str = "ERR_LRUKIT_INVALID_TIMEOUT";
/// An unknown FlowTable engine name.
pub const INVALID_ENGINE: &str = "ERR_LRUKIT_INVALID_ENGINE";
/// A table that refuses writes when full is full.
pub const FULL: &str = "ERR_LRUKIT_FULL";
/// A key is not a string, number, bigint, Buffer or Uint8Array.
pub const INVALID_KEY: &str = "ERR_LRUKIT_INVALID_KEY";
/// A value of a type the structure cannot store.
pub const INVALID_VALUE: &str = "ERR_LRUKIT_INVALID_VALUE";
/// An argument that must be an array / object is something else.
pub const INVALID_ARGUMENT: &str = "ERR_LRUKIT_INVALID_ARGUMENT";

/// `msg` without NUL characters (written as `\0`): Node-API takes messages
/// as C strings, and one with a NUL (from a map name or option value in the
/// message) would make the throw itself fail with a code-less error.
fn c_safe(msg: &str) -> std::borrow::Cow<'_, str> {
  if msg.contains('\0') {
    msg.replace('\0', "\\0").into()
  } else {
    msg.into()
  }
}

/// Throws a `TypeError` with `code` and returns the error that tells napi-rs
/// an exception is already pending.
pub fn type_error(env: &Env, code: &str, msg: &str) -> Error {
  let msg = &*c_safe(msg);
  match env.throw_type_error(msg, Some(code)) {
    Ok(()) => Error::new(Status::PendingException, msg.to_owned()),
    Err(e) => e,
  }
}

/// Throws a `RangeError` with `code`; see [`type_error`].
pub fn range_error(env: &Env, code: &str, msg: &str) -> Error {
  let msg = &*c_safe(msg);
  match env.throw_range_error(msg, Some(code)) {
    Ok(()) => Error::new(Status::PendingException, msg.to_owned()),
    Err(e) => e,
  }
}
/// A cache method was called while another call on the same cache was still
/// running (re-entered from a getter or Proxy trap the first call triggered).
pub const REENTRANT: &str = "ERR_LRUKIT_REENTRANT";

/// Throws a plain `Error` with `code`; see [`type_error`].
pub fn error(env: &Env, code: &str, msg: &str) -> Error {
  let msg = &*c_safe(msg);
  match env.throw_error(msg, Some(code)) {
    Ok(()) => Error::new(Status::PendingException, msg.to_owned()),
    Err(e) => e,
  }
}
/// Memory for a table or a buffer sized from the caller's input could not be
/// had (the message gives the bytes requested).
pub const OUT_OF_MEMORY: &str = "ERR_LRUKIT_OUT_OF_MEMORY";
