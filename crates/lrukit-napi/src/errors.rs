//! Errors thrown to JavaScript: the one table of codes and how each is thrown.
//!
//! Every error lrukit throws carries a stable `code`; README "Errors" is the
//! contract, and `__test__/errors.spec.mjs` checks it against every code
//! literal in the sources. Two families, by what the code is about:
//!
//! - `ERR_LRUKIT_*`: what the caller passed or did (arguments, options,
//!   re-entrant calls, memory sized from an argument). A wrong type is a
//!   `TypeError`, a value out of range a `RangeError`: the argument readers
//!   choose ([`type_error`], [`range_error`]).
//! - `E*` (errno style): the state of a named shared-memory segment or of the
//!   operating system. The crates return them; [`crate_error`] throws each as
//!   the constructor [`CRATE_CODES`] gives it.

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
/// A call on an object was re-entered from JavaScript that the first call
/// triggered (a getter or Proxy trap).
pub const REENTRANT: &str = "ERR_LRUKIT_REENTRANT";
/// Memory for a table or a buffer sized from the caller's input could not be
/// had (the message gives the bytes requested).
pub const OUT_OF_MEMORY: &str = "ERR_LRUKIT_OUT_OF_MEMORY";

/// A call on a closed handle.
pub const CLOSED: &str = "ECLOSED";
/// A bigint outside the signed 64-bit range.
pub const RANGE: &str = "ERANGE";
/// Stored bytes that do not decode (damaged shared memory).
pub const CORRUPT: &str = "ECORRUPT";
/// A key over the map's `maxKeyBytes`.
pub const KEY_TOO_LONG: &str = "EKEYTOOLONG";

/// The JavaScript constructor an error is thrown as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
  /// `TypeError`: a value of the wrong type.
  Type,
  /// `RangeError`: a number or size out of range.
  Range,
  /// `Error`: a state (a closed handle, a held lock, a full map, a damaged
  /// segment, a failed system call).
  State,
}

/// The codes the crates (and the binding, for segment state) return, with
/// the constructor each is thrown as.
pub const CRATE_CODES: &[(&str, Kind)] = &[
  ("EEXIST", Kind::State),
  ("ENOENT", Kind::State),
  ("EPERM", Kind::State),
  ("EUNINIT", Kind::State),
  ("EINCOMPAT", Kind::State),
  ("EINVAL", Kind::Range),
  ("ENAME", Kind::Range),
  ("EFULL", Kind::State),
  (KEY_TOO_LONG, Kind::Range),
  ("EVALUETOOLONG", Kind::Range),
  ("ETYPE", Kind::Type),
  (RANGE, Kind::Range),
  (CORRUPT, Kind::State),
  ("ETIMEDOUT", Kind::State),
  ("EIO", Kind::State),
  ("EBADDUMP", Kind::State),
  (CLOSED, Kind::State),
];

/// How a crate's `code` is thrown (a code missing from [`CRATE_CODES`] is a
/// state: `Error`).
pub fn kind_of(code: &str) -> Kind {
  CRATE_CODES
    .iter()
    .find(|(c, _)| *c == code)
    .map_or(Kind::State, |&(_, k)| k)
}

/// Throws a crate's error: `code` as the constructor [`kind_of`] gives it.
pub fn crate_error(env: &Env, code: &str, msg: &str) -> Error {
  throw(env, kind_of(code), code, msg)
}

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

/// Throws a `kind` error with `code` and returns the error that tells
/// napi-rs an exception is already pending.
pub fn throw(env: &Env, kind: Kind, code: &str, msg: &str) -> Error {
  let msg = &*c_safe(msg);
  let thrown = match kind {
    Kind::Type => env.throw_type_error(msg, Some(code)),
    Kind::Range => env.throw_range_error(msg, Some(code)),
    Kind::State => env.throw_error(msg, Some(code)),
  };
  match thrown {
    Ok(()) => Error::new(Status::PendingException, msg.to_owned()),
    Err(e) => e,
  }
}

/// Throws a `TypeError` with `code`.
pub fn type_error(env: &Env, code: &str, msg: &str) -> Error {
  throw(env, Kind::Type, code, msg)
}

/// Throws a `RangeError` with `code`.
pub fn range_error(env: &Env, code: &str, msg: &str) -> Error {
  throw(env, Kind::Range, code, msg)
}

/// Throws a plain `Error` with `code`.
pub fn error(env: &Env, code: &str, msg: &str) -> Error {
  throw(env, Kind::State, code, msg)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn every_crate_code_is_listed_once_and_errno_style() {
    for (i, (code, _)) in CRATE_CODES.iter().enumerate() {
      assert!(code.starts_with('E') && !code.starts_with("ERR_"), "{code}");
      assert!(
        CRATE_CODES[i + 1..].iter().all(|(c, _)| c != code),
        "{code} twice"
      );
    }
    assert_eq!(kind_of("ETYPE"), Kind::Type);
    assert_eq!(kind_of("EKEYTOOLONG"), Kind::Range);
    assert_eq!(kind_of("EFULL"), Kind::State);
    assert_eq!(kind_of("not-a-code"), Kind::State);
  }
}
