//! Fuzzer-chosen keys, values and TTLs, shared by both runners.

use arbitrary::Arbitrary;
use lrukit_shm_map::Value;

/// A key: one of a small pool (so operations meet each other), a key one
/// byte over the map's limit, or arbitrary bytes.
#[derive(Arbitrary, Clone, Debug)]
pub enum KeyIn {
  Pool(u8),
  TooLong,
  Raw(Vec<u8>),
}

/// Pool key `i` (0..16): 1..=5 bytes.
pub fn pool_key(i: u8) -> Vec<u8> {
  let i = i % 16;
  vec![b'a' + i; 1 + (i % 5) as usize]
}

impl KeyIn {
  pub fn bytes(&self, max_key: usize) -> Vec<u8> {
    match self {
      KeyIn::Pool(i) => pool_key(*i),
      KeyIn::TooLong => vec![0xee; max_key + 1],
      KeyIn::Raw(v) => v.clone(),
    }
  }
}

/// A value: one of a small pool (so compare-and-set often matches, with
/// near misses of the same bytes and another type), or any value.
#[derive(Arbitrary, Clone, Debug)]
pub enum ValIn {
  Pool(u8),
  String(Vec<u8>),
  Number(f64),
  BigInt(i64),
  Bool(bool),
  Null,
  Bytes(Vec<u8>),
  Json(Vec<u8>),
}

impl ValIn {
  pub fn value(&self) -> Value {
    match self {
      ValIn::Pool(i) => match i % 12 {
        0 => Value::String(b"x1".to_vec()),
        1 => Value::String(b"x2".to_vec()),
        2 => Value::Bytes(b"x1".to_vec()),
        3 => Value::Json(b"x1".to_vec()),
        4 => Value::Number(1.0),
        5 => Value::Number(-0.0),
        6 => Value::BigInt(1),
        7 => Value::BigInt(i64::MAX),
        8 => Value::Bool(true),
        9 => Value::Bool(false),
        10 => Value::Null,
        _ => Value::Number(f64::NAN),
      },
      ValIn::String(b) => Value::String(b.clone()),
      ValIn::Number(n) => Value::Number(*n),
      ValIn::BigInt(i) => Value::BigInt(*i),
      ValIn::Bool(b) => Value::Bool(*b),
      ValIn::Null => Value::Null,
      ValIn::Bytes(b) => Value::Bytes(b.clone()),
      ValIn::Json(b) => Value::Json(b.clone()),
    }
  }
}

/// A write's TTL argument.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum TtlIn {
  /// `None`: the map's default TTL.
  Default,
  /// `Some(0)`: never expires.
  Never,
  Short,
  Long,
  Ms(u16),
}

impl TtlIn {
  pub fn ttl(self) -> Option<u64> {
    match self {
      TtlIn::Default => None,
      TtlIn::Never => Some(0),
      TtlIn::Short => Some(1000),
      TtlIn::Long => Some(5000),
      TtlIn::Ms(ms) => Some(ms as u64),
    }
  }
}

/// Value equality as the map stores values: numbers bit for bit.
pub fn same_stored(a: &Value, b: &Value) -> bool {
  match (a, b) {
    (Value::Number(x), Value::Number(y)) => x.to_bits() == y.to_bits(),
    _ => a == b,
  }
}

/// Value equality as `compare_and_set` compares: numbers with `==` (so
/// `0.0 == -0.0` and NaN never matches).
pub fn same_cas(stored: &Value, expected: &Value) -> bool {
  match (stored, expected) {
    (Value::Number(x), Value::Number(y)) => x == y,
    _ => stored == expected,
  }
}

/// The byte length of a value's payload (0 for word values).
pub fn payload_len(v: &Value) -> usize {
  match v {
    Value::String(b) | Value::Bytes(b) | Value::Json(b) => b.len(),
    _ => 0,
  }
}
