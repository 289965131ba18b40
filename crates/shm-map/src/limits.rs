//! The bounds of [`Options`](crate::Options) and the special values of
//! arguments, for callers that check or document them before `create` (the
//! JavaScript binding). The defaults are [`Options::default`](crate::Options).
//! These restate what `create` enforces; they decide nothing themselves.

use std::time::Duration;

/// Largest `max_key_bytes` (larger ones fail `create` with `EINVAL`). Keys
/// are counted as the map stores them: a key encoded with
/// [`codec::key`](crate::codec::key) includes its tag byte.
pub const MAX_KEY_BYTES: u32 = crate::layout::MAX_KEY_BYTES_LIMIT;

/// Largest `max_value_bytes` (larger ones fail `create` with `EINVAL`).
pub const MAX_VALUE_BYTES: u32 = crate::layout::MAX_VALUE_BYTES_LIMIT;

/// Most shards (`shards` must be a power of two up to this).
pub const MAX_SHARDS: u32 = crate::layout::MAX_SHARDS;

/// The permission bits `Options::mode` may hold (it must also include
/// 0o600).
pub const MODE_BITS: u32 = 0o777;

/// A TTL (`Options::default_ttl_ms`, or a write's `ttl_ms`) of this value
/// never expires.
pub const NO_EXPIRY: u64 = 0;

/// The usual arguments of [`SharedMap::incr`](crate::SharedMap::incr): add 1,
/// and a missing key starts from 0.
pub const INCR_DELTA: f64 = 1.0;
/// See [`INCR_DELTA`].
pub const INCR_INITIAL: f64 = 0.0;

/// The default lock timeout (`Options::lock_timeout`).
pub const DEFAULT_LOCK_TIMEOUT: Duration = crate::lock::DEFAULT_TIMEOUT;

/// How long a `fetch` loader may run before another process takes the load
/// over, unless the caller says otherwise.
pub const FETCH_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
  use super::*;
  use crate::value::{Value, ValueRef};
  use crate::{required_memory_size, Options, SharedMap};

  fn with(f: impl FnOnce(&mut Options)) -> Options {
    let mut o = Options::new(64);
    f(&mut o);
    o
  }

  fn code(o: &Options) -> Option<&'static str> {
    required_memory_size(o).err().map(|e| e.code)
  }

  #[test]
  fn the_bounds_are_what_create_enforces() {
    assert_eq!(code(&with(|o| o.max_key_bytes = MAX_KEY_BYTES)), None);
    assert_eq!(
      code(&with(|o| o.max_key_bytes = MAX_KEY_BYTES + 1)),
      Some("EINVAL")
    );
    assert_eq!(code(&with(|o| o.max_value_bytes = MAX_VALUE_BYTES)), None);
    assert_eq!(
      code(&with(|o| o.max_value_bytes = MAX_VALUE_BYTES + 1)),
      Some("EINVAL")
    );
    let many = |o: &mut Options| o.capacity = Some(MAX_SHARDS * 4);
    assert_eq!(
      code(&with(|o| {
        many(o);
        o.shards = Some(MAX_SHARDS)
      })),
      None
    );
    assert_eq!(
      code(&with(|o| {
        many(o);
        o.shards = Some(MAX_SHARDS * 2)
      })),
      Some("EINVAL")
    );
    assert_eq!(code(&with(|o| o.mode = MODE_BITS)), None);
    assert_eq!(code(&with(|o| o.mode = MODE_BITS + 1)), Some("EINVAL"));
    assert_eq!(Options::default().lock_timeout, DEFAULT_LOCK_TIMEOUT);
  }

  #[test]
  fn no_expiry_never_expires_and_incr_defaults_count_from_zero_by_one() {
    let m = SharedMap::in_memory(&with(|o| o.default_ttl_ms = 10)).unwrap();
    m.set(b"k", ValueRef::Number(1.0), Some(NO_EXPIRY)).unwrap();
    m.set(b"d", ValueRef::Number(1.0), None).unwrap();
    m.debug_advance_clock(1_000_000);
    assert_eq!(m.get(b"k").unwrap(), Some(Value::Number(1.0)));
    assert_eq!(m.get(b"d").unwrap(), None);
    assert_eq!(m.incr(b"n", INCR_DELTA, INCR_INITIAL, None).unwrap(), 1.0);
    assert_eq!(m.incr(b"n", INCR_DELTA, INCR_INITIAL, None).unwrap(), 2.0);
  }
}
