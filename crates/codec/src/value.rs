//! Values as a type tag plus one inline word or a byte string.
//!
//! | tag | variant | stored length | payload                              |
//! |-----|---------|---------------|--------------------------------------|
//! | 1   | String  | 0..=max       | UTF-8 bytes (not checked)            |
//! | 2   | Number  | 8             | f64 bits, little-endian              |
//! | 3   | BigInt  | 8             | i64, little-endian two's complement  |
//! | 4   | Bool    | 1             | low byte of the word: 0 or 1         |
//! | 5   | Null    | 0             | the word is 0                        |
//! | 6   | Bytes   | 0..=max       | the bytes                            |
//! | 7   | Json    | 0..=max       | a JSON text (not checked)            |
//!
//! Inline variants keep their payload in the first little-endian word of the
//! value area; byte variants keep their bytes there, zero-padded to a whole
//! word. Everything read back from shared memory passes [`valid_tag_len`]
//! before it is trusted.

use alloc::vec::Vec;

/// Tag of a string value.
pub const TAG_STRING: u32 = 1;
/// Tag of a number value.
pub const TAG_NUMBER: u32 = 2;
/// Tag of a bigint value.
pub const TAG_BIGINT: u32 = 3;
/// Tag of a boolean value.
pub const TAG_BOOL: u32 = 4;
/// Tag of null value.
pub const TAG_NULL: u32 = 5;
/// Tag of a byte value value.
pub const TAG_BYTES: u32 = 6;
/// Tag of a JSON text value.
pub const TAG_JSON: u32 = 7;

/// A value to store, borrowed from the caller.
///
/// The crate stores the tag and the bytes; it never parses them (`String` is
/// expected to be UTF-8 and `Json` a JSON text, but neither is checked).
/// `Number`, `BigInt`, `Bool` and `Null` always fit, whatever
/// `max_value_bytes` is; the byte variants must be at most `max_value_bytes`
/// long.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueRef<'a> {
  /// UTF-8 text.
  String(&'a [u8]),
  /// A JavaScript number.
  Number(f64),
  /// A 64-bit signed integer (JavaScript `bigint` in the i64 range).
  BigInt(i64),
  /// A boolean.
  Bool(bool),
  /// `null`.
  Null,
  /// Opaque bytes.
  Bytes(&'a [u8]),
  /// A JSON text (the binding serialises objects).
  Json(&'a [u8]),
}

/// An owned value returned by reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
  /// UTF-8 text.
  String(Vec<u8>),
  /// A JavaScript number.
  Number(f64),
  /// A 64-bit signed integer.
  BigInt(i64),
  /// A boolean.
  Bool(bool),
  /// `null`.
  Null,
  /// Opaque bytes.
  Bytes(Vec<u8>),
  /// A JSON text.
  Json(Vec<u8>),
}

impl Value {
  /// Borrows this value as a [`ValueRef`].
  pub fn as_ref(&self) -> ValueRef<'_> {
    match self {
      Value::String(b) => ValueRef::String(b),
      Value::Number(n) => ValueRef::Number(*n),
      Value::BigInt(i) => ValueRef::BigInt(*i),
      Value::Bool(b) => ValueRef::Bool(*b),
      Value::Null => ValueRef::Null,
      Value::Bytes(b) => ValueRef::Bytes(b),
      Value::Json(b) => ValueRef::Json(b),
    }
  }
}

impl<'a> ValueRef<'a> {
  /// Copies this value into an owned [`Value`].
  pub fn to_owned_value(&self) -> Value {
    match *self {
      ValueRef::String(b) => Value::String(b.to_vec()),
      ValueRef::Number(n) => Value::Number(n),
      ValueRef::BigInt(i) => Value::BigInt(i),
      ValueRef::Bool(b) => Value::Bool(b),
      ValueRef::Null => Value::Null,
      ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
      ValueRef::Json(b) => Value::Json(b.to_vec()),
    }
  }

  /// The value's type tag.
  pub fn tag(&self) -> u32 {
    match self {
      ValueRef::String(_) => TAG_STRING,
      ValueRef::Number(_) => TAG_NUMBER,
      ValueRef::BigInt(_) => TAG_BIGINT,
      ValueRef::Bool(_) => TAG_BOOL,
      ValueRef::Null => TAG_NULL,
      ValueRef::Bytes(_) => TAG_BYTES,
      ValueRef::Json(_) => TAG_JSON,
    }
  }

  /// The stored representation: (tag, length, bytes or inline word).
  pub fn encode(self) -> Encoded<'a> {
    match self {
      ValueRef::String(b) | ValueRef::Bytes(b) | ValueRef::Json(b) => Encoded::Bytes(self.tag(), b),
      ValueRef::Number(n) => Encoded::Word(TAG_NUMBER, 8, n.to_bits()),
      ValueRef::BigInt(i) => Encoded::Word(TAG_BIGINT, 8, i as u64),
      ValueRef::Bool(b) => Encoded::Word(TAG_BOOL, 1, b as u64),
      ValueRef::Null => Encoded::Word(TAG_NULL, 0, 0),
    }
  }
}

/// How a value is laid into an entry's value area.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Encoded<'a> {
  /// Tag and bytes (string, bytes, json).
  Bytes(u32, &'a [u8]),
  /// Tag, length (0, 1 or 8) and one little-endian word.
  Word(u32, u32, u64),
}

impl Encoded<'_> {
  /// The type tag.
  pub fn tag(&self) -> u32 {
    match self {
      Encoded::Bytes(t, _) | Encoded::Word(t, _, _) => *t,
    }
  }
  /// The stored length in bytes.
  #[allow(clippy::len_without_is_empty)]
  pub fn len(&self) -> u32 {
    match self {
      Encoded::Bytes(_, b) => b.len() as u32,
      Encoded::Word(_, l, _) => *l,
    }
  }
}

/// Whether `(tag, len)` is a well-formed stored value for a map whose value
/// allows `max_value` bytes. Everything read back from shared memory goes
/// through this before it is trusted.
#[inline]
pub fn valid_tag_len(tag: u32, len: u32, max_value: u32) -> bool {
  match tag {
    TAG_STRING | TAG_BYTES | TAG_JSON => len <= max_value,
    TAG_NUMBER | TAG_BIGINT => len == 8,
    TAG_BOOL => len == 1,
    TAG_NULL => len == 0,
    _ => false,
  }
}

/// Builds an owned value from a validated tag, the inline word and, for the
/// byte variants, the copied bytes.
#[inline]
pub fn decode(tag: u32, word: u64, bytes: Vec<u8>) -> Value {
  match tag {
    TAG_STRING => Value::String(bytes),
    TAG_NUMBER => Value::Number(f64::from_bits(word)),
    TAG_BIGINT => Value::BigInt(word as i64),
    TAG_BOOL => Value::Bool(word & 0xff != 0),
    TAG_NULL => Value::Null,
    TAG_BYTES => Value::Bytes(bytes),
    _ => Value::Json(bytes),
  }
}

/// `true` for the variants whose payload is a byte string.
#[inline]
pub fn is_bytes_tag(tag: u32) -> bool {
  matches!(tag, TAG_STRING | TAG_BYTES | TAG_JSON)
}

/// Borrows a validated stored value (`bytes` holds the copied bytes of the
/// byte variants).
#[inline]
pub fn value_ref(tag: u32, word: u64, bytes: &[u8]) -> ValueRef<'_> {
  match tag {
    TAG_STRING => ValueRef::String(bytes),
    TAG_NUMBER => ValueRef::Number(f64::from_bits(word)),
    TAG_BIGINT => ValueRef::BigInt(word as i64),
    TAG_BOOL => ValueRef::Bool(word & 0xff != 0),
    TAG_NULL => ValueRef::Null,
    TAG_BYTES => ValueRef::Bytes(bytes),
    _ => ValueRef::Json(bytes),
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use alloc::vec;
  use proptest::prelude::*;

  fn values() -> impl Strategy<Value = Value> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
      bytes.clone().prop_map(Value::String),
      any::<f64>().prop_map(Value::Number),
      any::<i64>().prop_map(Value::BigInt),
      any::<bool>().prop_map(Value::Bool),
      Just(Value::Null),
      bytes.clone().prop_map(Value::Bytes),
      bytes.prop_map(Value::Json),
    ]
  }

  proptest! {
    /// encode, then decode what a reader copies back: the same value (numbers
    /// bit for bit), and the stored form is always valid.
    #[test]
    fn round_trip(v in values()) {
      let e = v.as_ref().encode();
      prop_assert!(valid_tag_len(e.tag(), e.len(), 64));
      let (word, bytes) = match e {
        Encoded::Word(_, _, w) => (w, vec![]),
        Encoded::Bytes(_, b) => (0, b.to_vec()),
      };
      prop_assert!(is_bytes_tag(e.tag()) == matches!(e, Encoded::Bytes(..)));
      let back = decode(e.tag(), word, bytes.clone());
      match (&v, &back) {
        (Value::Number(a), Value::Number(b)) => prop_assert_eq!(a.to_bits(), b.to_bits()),
        _ => prop_assert_eq!(&v, &back),
      }
      prop_assert_eq!(value_ref(e.tag(), word, &bytes).to_owned_value(), back);
    }

    #[test]
    fn unknown_tags_and_bad_lengths_are_invalid(tag in 8u32.., len in any::<u32>()) {
      prop_assert!(!valid_tag_len(tag, len, u32::MAX));
      prop_assert!(!valid_tag_len(0, len, u32::MAX));
    }
  }

  #[test]
  fn lengths_of_inline_values_are_fixed() {
    assert!(valid_tag_len(TAG_NUMBER, 8, 0));
    assert!(!valid_tag_len(TAG_NUMBER, 7, 100));
    assert!(valid_tag_len(TAG_BOOL, 1, 0));
    assert!(!valid_tag_len(TAG_NULL, 1, 100));
    assert!(valid_tag_len(TAG_STRING, 10, 10));
    assert!(!valid_tag_len(TAG_JSON, 11, 10));
  }
}
