//! The crate's single error type: a stable `code` plus a human message.

use std::fmt;

/// An error from a [`SharedMap`](crate::SharedMap) operation.
///
/// `code` is one of a fixed set of strings the JavaScript binding exposes as
/// `err.code`:
///
/// | code | meaning |
/// |---|---|
/// | `EEXIST` | `create`: a segment with this name exists |
/// | `ENOENT` | `open`: no segment with this name |
/// | `EPERM` | `open`: the segment is owned by another user, or grants write beyond the accepted mode (nothing was read from it) |
/// | `EUNINIT` | `open`: the segment's creator died before initialising it (`open_or_create` takes it over) |
/// | `EINCOMPAT` | the segment is not an lrukit map, or has another layout version, hash, lock ABI or inconsistent sizes (the message names the field) |
/// | `EINVAL` | invalid options or arguments |
/// | `ENAME` | invalid map name |
/// | `EFULL` | eviction is `None` and the key's shard is full (nothing stored was lost) |
/// | `EKEYTOOLONG` / `EVALUETOOLONG` | over `max_key_bytes` / `max_value_bytes` |
/// | `ETYPE` | `incr` on a value that is not a number or bigint |
/// | `ERANGE` | `incr` overflowed a bigint, or a non-integer delta for a bigint |
/// | `ECORRUPT` | the shared memory is damaged beyond automatic repair |
/// | `ETIMEDOUT` | a shard lock stayed held past the lock timeout (a stopped process, or a damaged lock word) |
/// | `EIO` | an operating-system call failed (the message has the errno) |
/// | `EBADDUMP` | `load_from`/`load_file`: the stream is not a complete, undamaged dump of a format this build reads (nothing was loaded) |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
  /// Stable machine-readable code, see the table above.
  pub code: &'static str,
  /// Human-readable detail.
  pub message: String,
}

impl Error {
  pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
    Error {
      code,
      message: message.into(),
    }
  }
}

impl fmt::Display for Error {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{}: {}", self.code, self.message)
  }
}

impl std::error::Error for Error {}

pub(crate) fn einval(msg: impl Into<String>) -> Error {
  Error::new("EINVAL", msg)
}

pub(crate) fn eincompat(msg: impl Into<String>) -> Error {
  Error::new("EINCOMPAT", msg)
}

pub(crate) fn ecorrupt(msg: impl Into<String>) -> Error {
  Error::new("ECORRUPT", msg)
}

pub(crate) fn eio(msg: impl Into<String>) -> Error {
  Error::new("EIO", msg)
}
