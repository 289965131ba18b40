//! Typed values: a one-byte tag plus bytes, as stored in a slot.

/// Tag of a stored value (the `tag` field of a slot).
pub(crate) const TAG_STRING: u32 = 1;
pub(crate) const TAG_NUMBER: u32 = 2;
pub(crate) const TAG_BIGINT: u32 = 3;
pub(crate) const TAG_BOOL: u32 = 4;
pub(crate) const TAG_NULL: u32 = 5;
pub(crate) const TAG_BYTES: u32 = 6;
pub(crate) const TAG_JSON: u32 = 7;

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
  Bool(bool),
  Null,
  /// Opaque bytes.
  Bytes(&'a [u8]),
  /// A JSON text (the binding serialises objects).
  Json(&'a [u8]),
}

/// An owned value returned by reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
  String(Vec<u8>),
  Number(f64),
  BigInt(i64),
  Bool(bool),
  Null,
  Bytes(Vec<u8>),
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

  pub(crate) fn tag(&self) -> u32 {
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
  pub(crate) fn encode(self) -> Encoded<'a> {
    match self {
      ValueRef::String(b) | ValueRef::Bytes(b) | ValueRef::Json(b) => Encoded::Bytes(self.tag(), b),
      ValueRef::Number(n) => Encoded::Word(TAG_NUMBER, 8, n.to_bits()),
      ValueRef::BigInt(i) => Encoded::Word(TAG_BIGINT, 8, i as u64),
      ValueRef::Bool(b) => Encoded::Word(TAG_BOOL, 1, b as u64),
      ValueRef::Null => Encoded::Word(TAG_NULL, 0, 0),
    }
  }
}

/// How a value is laid into a slot's value area.
pub(crate) enum Encoded<'a> {
  /// Tag and bytes (string, bytes, json).
  Bytes(u32, &'a [u8]),
  /// Tag, length (0, 1 or 8) and one little-endian word.
  Word(u32, u32, u64),
}

impl Encoded<'_> {
  pub(crate) fn tag(&self) -> u32 {
    match self {
      Encoded::Bytes(t, _) | Encoded::Word(t, _, _) => *t,
    }
  }
  pub(crate) fn len(&self) -> u32 {
    match self {
      Encoded::Bytes(_, b) => b.len() as u32,
      Encoded::Word(_, l, _) => *l,
    }
  }
}

/// Whether `(tag, len)` is a well-formed stored value for a map whose value
/// area holds `max_value` bytes. Everything read back from shared memory goes
/// through this before it is trusted.
#[inline]
pub(crate) fn valid_tag_len(tag: u32, len: u32, max_value: u32) -> bool {
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
pub(crate) fn decode(tag: u32, word: u64, bytes: Vec<u8>) -> Value {
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
pub(crate) fn is_bytes_tag(tag: u32) -> bool {
  matches!(tag, TAG_STRING | TAG_BYTES | TAG_JSON)
}

/// Borrows a validated stored value (`bytes` holds the copied bytes of the
/// byte variants).
#[inline]
pub(crate) fn value_ref(tag: u32, word: u64, bytes: &[u8]) -> ValueRef<'_> {
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
