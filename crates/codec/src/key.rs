//! Keys as tagged bytes.
//!
//! | tag   | type            | payload                                           |
//! |-------|-----------------|---------------------------------------------------|
//! | `'s'` | string          | its UTF-8 bytes; a lone surrogate as its 3-byte generalized UTF-8 (WTF-8) |
//! | `'n'` | number          | the canonical f64 bits, little-endian (8 bytes)   |
//! | `'b'` | bigint ≥ 0      | magnitude as little-endian u64 words, no high zero words (0 is no words) |
//! | `'B'` | bigint < 0      | the same, for the magnitude of a negative bigint  |
//! | `'u'` | Buffer / Uint8Array | the bytes                                     |
//! | `'c'` | internal: the `fetch` claim of a key | that key's own encoding       |
//! | `'h'` | internal: the same, for a key too long to prefix | its xxh3-128 hash (16 bytes); `'h'` alone: the map's fetch epoch |
//!
//! The two internal tags never come from a user's key: [`decode`] returns
//! `None` for them and [`is_internal`] tells them apart, so the binding's
//! listings skip them.
//!
//! Strings are JavaScript strings: sequences of UTF-16 code units that may
//! hold lone surrogates. Their bytes are WTF-8 (<https://simonsapin.github.io/wtf-8/>):
//! UTF-8 for every well-formed string, and a lone surrogate encoded like a
//! scalar value (`ED A0 80`..`ED BF BF`), which no well-formed string
//! contains. So distinct strings never share a key (a lossy conversion would
//! make `'a\uD800'`, `'a\uDFFF'` and `'a\uFFFD'` one key).
//!
//! Canonical numbers (SameValueZero): `-0` is stored as `0` and every NaN as
//! the one quiet NaN `f64::NAN`, so `get(-0)` finds `set(0, …)`.

use alloc::vec::Vec;

/// Tag of a string key.
pub const TAG_STRING: u8 = b's';
/// Tag of a number key.
pub const TAG_NUMBER: u8 = b'n';
/// Tag of a non-negative bigint key.
pub const TAG_BIGINT_POS: u8 = b'b';
/// Tag of a negative bigint key.
pub const TAG_BIGINT_NEG: u8 = b'B';
/// Tag of a byte key (Buffer or Uint8Array).
pub const TAG_BYTES: u8 = b'u';

/// Tag of an internal key: the `fetch` claim of the key encoded after it.
pub const TAG_CLAIM: u8 = b'c';
/// Tag of an internal key: the `fetch` claim of a key too long to prefix,
/// followed by that key's 128-bit hash.
pub const TAG_CLAIM_HASH: u8 = b'h';

/// Whether an encoded key is one of lrukit's internal keys (a `fetch`
/// claim), never a user's.
pub fn is_internal(key: &[u8]) -> bool {
  matches!(key.first(), Some(&TAG_CLAIM | &TAG_CLAIM_HASH))
}

/// Bytes the tag adds to a key's payload.
pub const TAG_BYTES_LEN: usize = 1;

/// A decoded key, borrowing the encoded bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyRef<'a> {
  /// A string key's UTF-8 bytes (may be invalid UTF-8 when read back from
  /// damaged shared memory: convert lossily).
  String(&'a [u8]),
  /// A number key (already canonical).
  Number(f64),
  /// A bigint key: its sign and magnitude as little-endian u64 words.
  BigInt {
    /// `true` for a negative bigint (never for zero).
    negative: bool,
    /// The magnitude, 8 bytes per little-endian word, no high zero words.
    magnitude: &'a [u8],
  },
  /// A byte key.
  Bytes(&'a [u8]),
}

impl KeyRef<'_> {
  /// The magnitude words of a bigint key (empty for anything else; zero is no
  /// words).
  pub fn bigint_words(&self) -> impl Iterator<Item = u64> + '_ {
    let bytes: &[u8] = match self {
      KeyRef::BigInt { magnitude, .. } => magnitude,
      _ => &[],
    };
    bytes
      .chunks_exact(8)
      .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
  }
}

/// The canonical form of a number key (SameValueZero).
#[inline]
pub fn canonical_number(n: f64) -> f64 {
  if n == 0.0 {
    0.0
  } else if n.is_nan() {
    f64::NAN
  } else {
    n
  }
}

/// Appends the encoded number key `n`.
#[inline]
pub fn push_number(out: &mut Vec<u8>, n: f64) {
  out.push(TAG_NUMBER);
  out.extend_from_slice(&canonical_number(n).to_bits().to_le_bytes());
}

/// Appends the encoded bigint key with sign `negative` and magnitude `words`
/// (little-endian u64 words; high zero words are dropped, and a zero
/// magnitude is never negative).
pub fn push_bigint(out: &mut Vec<u8>, negative: bool, mut words: &[u64]) {
  while let [rest @ .., 0] = words {
    words = rest;
  }
  let negative = negative && !words.is_empty();
  out.push(if negative {
    TAG_BIGINT_NEG
  } else {
    TAG_BIGINT_POS
  });
  for w in words {
    out.extend_from_slice(&w.to_le_bytes());
  }
}

/// Appends the encoded byte key `bytes`.
#[inline]
pub fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
  out.push(TAG_BYTES);
  out.extend_from_slice(bytes);
}

/// Appends the encoded string key `s`.
#[inline]
pub fn push_str(out: &mut Vec<u8>, s: &str) {
  out.push(TAG_STRING);
  out.extend_from_slice(s.as_bytes());
}

/// Appends the string key whose UTF-16 code units are `units`, as WTF-8:
/// a lone surrogate keeps its own 3-byte encoding instead of becoming
/// U+FFFD.
pub fn push_utf16(out: &mut Vec<u8>, units: &[u16]) {
  out.push(TAG_STRING);
  for c in char::decode_utf16(units.iter().copied()) {
    match c {
      Ok(c) => {
        let mut b = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
      }
      Err(e) => {
        let u = e.unpaired_surrogate();
        out.extend_from_slice(&[
          0xe0 | (u >> 12) as u8,
          0x80 | ((u >> 6) & 0x3f) as u8,
          0x80 | (u & 0x3f) as u8,
        ]);
      }
    }
  }
}

/// The UTF-16 code units of a string key's payload (WTF-8, as
/// [`push_utf16`] writes it), or `None` for bytes no encoder writes (invalid
/// UTF-8 that is not a lone surrogate, or a surrogate pair spelled as two
/// surrogates: damaged memory, to be converted lossily by the caller).
pub fn string_units(mut bytes: &[u8]) -> Option<Vec<u16>> {
  let mut units = Vec::with_capacity(bytes.len());
  let mut last_high = false;
  loop {
    let (valid, rest) = match core::str::from_utf8(bytes) {
      Ok(s) => (s, &[][..]),
      Err(e) => {
        let (ok, rest) = bytes.split_at(e.valid_up_to());
        // valid by `valid_up_to` (checked again rather than trusted unsafely)
        (core::str::from_utf8(ok).ok()?, rest)
      }
    };
    if !valid.is_empty() {
      last_high = false;
    }
    units.extend(valid.encode_utf16());
    let [0xed, b1 @ 0xa0..=0xbf, b2 @ 0x80..=0xbf, tail @ ..] = rest else {
      return rest.is_empty().then_some(units);
    };
    let u = 0xd000 | (u16::from(b1 & 0x3f) << 6) | u16::from(b2 & 0x3f);
    let high = u < 0xdc00;
    if last_high && !high {
      return None;
    }
    last_high = high;
    units.push(u);
    bytes = tail;
  }
}

/// Most UTF-8 bytes `units` UTF-16 code units encode to (plus the tag).
#[inline]
pub fn utf16_encoded_bound(units: usize) -> usize {
  units.saturating_mul(3).saturating_add(TAG_BYTES_LEN)
}

/// Decodes an encoded key; `None` for bytes no encoder produces (an unknown
/// tag, a number of the wrong length, a bigint whose magnitude is not whole
/// words or has a high zero word, a negative zero bigint). Keys read back
/// from shared memory go through this before they are trusted.
pub fn decode(key: &[u8]) -> Option<KeyRef<'_>> {
  let (&tag, rest) = key.split_first()?;
  match tag {
    TAG_STRING => Some(KeyRef::String(rest)),
    TAG_NUMBER => {
      let bits: [u8; 8] = rest.try_into().ok()?;
      let n = f64::from_bits(u64::from_le_bytes(bits));
      // Only canonical numbers are ever stored.
      (n.to_bits() == canonical_number(n).to_bits()).then_some(KeyRef::Number(n))
    }
    TAG_BIGINT_POS | TAG_BIGINT_NEG => {
      let negative = tag == TAG_BIGINT_NEG;
      let whole = rest.len() % 8 == 0;
      let top_nonzero = rest.len() < 8 || rest[rest.len() - 8..] != [0u8; 8];
      let sign_ok = !(negative && rest.is_empty());
      (whole && top_nonzero && sign_ok).then_some(KeyRef::BigInt {
        negative,
        magnitude: rest,
      })
    }
    TAG_BYTES => Some(KeyRef::Bytes(rest)),
    _ => None,
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use alloc::vec;
  use proptest::prelude::*;

  fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
  }

  #[test]
  fn types_never_collide() {
    let s = enc(|o| push_str(o, "1"));
    let n = enc(|o| push_number(o, 1.0));
    let b = enc(|o| push_bigint(o, false, &[1]));
    let u = enc(|o| push_bytes(o, b"1"));
    let all = [&s, &n, &b, &u];
    for (i, x) in all.iter().enumerate() {
      for (j, y) in all.iter().enumerate() {
        assert_eq!(i == j, x == y);
      }
    }
  }

  #[test]
  fn same_value_zero() {
    assert_eq!(enc(|o| push_number(o, -0.0)), enc(|o| push_number(o, 0.0)));
    let other_nan = f64::from_bits(0x7ff8_dead_beef_0001);
    assert!(other_nan.is_nan());
    assert_eq!(
      enc(|o| push_number(o, other_nan)),
      enc(|o| push_number(o, f64::NAN))
    );
    assert_ne!(enc(|o| push_number(o, 1.0)), enc(|o| push_number(o, -1.0)));
  }

  #[test]
  fn bigint_zero_and_high_zero_words() {
    let zero = enc(|o| push_bigint(o, false, &[]));
    assert_eq!(zero, [TAG_BIGINT_POS]);
    assert_eq!(enc(|o| push_bigint(o, true, &[0, 0])), zero);
    assert_eq!(
      enc(|o| push_bigint(o, false, &[5, 0])),
      enc(|o| push_bigint(o, false, &[5]))
    );
    assert_ne!(
      enc(|o| push_bigint(o, true, &[5])),
      enc(|o| push_bigint(o, false, &[5]))
    );
  }

  #[test]
  fn utf16_matches_utf8_and_keeps_lone_surrogates_apart() {
    let s = "héllo ✓ 𝄞";
    let units: Vec<u16> = s.encode_utf16().collect();
    assert_eq!(enc(|o| push_utf16(o, &units)), enc(|o| push_str(o, s)));
    assert!(enc(|o| push_utf16(o, &units)).len() <= utf16_encoded_bound(units.len()));
    let high = enc(|o| push_utf16(o, &[0xd800, b'a' as u16]));
    assert_eq!(high, [TAG_STRING, 0xed, 0xa0, 0x80, b'a']);
    assert_ne!(high, enc(|o| push_str(o, "\u{fffd}a")));
    assert_ne!(high, enc(|o| push_utf16(o, &[0xdfff, b'a' as u16])));
    assert!(high.len() <= utf16_encoded_bound(2));
    // a high then a low surrogate is one character, encoded as UTF-8
    assert_eq!(
      enc(|o| push_utf16(o, &[0xd834, 0xdd1e])),
      enc(|o| push_str(o, "𝄞"))
    );
  }

  #[test]
  fn string_units_refuses_what_no_encoder_writes() {
    assert_eq!(string_units(b"abc"), Some(vec![97, 98, 99]));
    assert_eq!(string_units(&[0xff]), None);
    assert_eq!(string_units(&[0xed, 0xa0]), None);
    // a surrogate pair spelled as two encoded surrogates is not canonical
    assert_eq!(string_units(&[0xed, 0xa0, 0xb4, 0xed, 0xb4, 0x9e]), None);
    // a low then a high surrogate is two lone surrogates
    assert_eq!(
      string_units(&[0xed, 0xb4, 0x9e, 0xed, 0xa0, 0xb4]),
      Some(vec![0xdd1e, 0xd834])
    );
  }

  #[test]
  fn decode_refuses_what_no_encoder_writes() {
    assert_eq!(decode(&[]), None);
    assert_eq!(decode(b"x"), None);
    assert_eq!(decode(&[TAG_NUMBER, 1, 2]), None);
    assert_eq!(decode(&[TAG_CLAIM, TAG_STRING, b'k']), None);
    assert!(is_internal(&[TAG_CLAIM_HASH; 17]));
    assert!(!is_internal(&[TAG_STRING, b'c']));
    let mut neg_zero = vec![TAG_NUMBER];
    neg_zero.extend_from_slice(&(-0.0f64).to_bits().to_le_bytes());
    assert_eq!(decode(&neg_zero), None);
    assert_eq!(decode(&[TAG_BIGINT_NEG]), None);
    assert_eq!(decode(&[TAG_BIGINT_POS, 1, 0, 0]), None);
    let mut high_zero = vec![TAG_BIGINT_POS];
    high_zero.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(decode(&high_zero), None);
  }

  proptest! {
    #[test]
    fn strings_round_trip(units in proptest::collection::vec(any::<u16>(), 0..40)) {
      let e = enc(|o| push_utf16(o, &units));
      prop_assert!(e.len() <= utf16_encoded_bound(units.len()));
      prop_assert_eq!(e[0], TAG_STRING);
      prop_assert_eq!(string_units(&e[1..]), Some(units.clone()));
      if let Ok(s) = alloc::string::String::from_utf16(&units) {
        prop_assert_eq!(&e, &enc(|o| push_str(o, &s)));
      }
    }

    #[test]
    fn distinct_strings_never_share_a_key(
      a in proptest::collection::vec(prop_oneof![any::<u16>(), 0xd800u16..0xe000, Just(0xfffdu16)], 0..8),
      b in proptest::collection::vec(prop_oneof![any::<u16>(), 0xd800u16..0xe000, Just(0xfffdu16)], 0..8),
    ) {
      prop_assert_eq!(a == b, enc(|o| push_utf16(o, &a)) == enc(|o| push_utf16(o, &b)));
    }

    #[test]
    fn numbers_round_trip(n in any::<f64>()) {
      let e = enc(|o| push_number(o, n));
      prop_assert_eq!(e.len(), 9);
      match decode(&e) {
        Some(KeyRef::Number(m)) => prop_assert_eq!(m.to_bits(), canonical_number(n).to_bits()),
        other => prop_assert!(false, "{:?}", other),
      }
    }

    #[test]
    fn bigints_round_trip(neg in any::<bool>(), words in proptest::collection::vec(any::<u64>(), 0..5)) {
      let e = enc(|o| push_bigint(o, neg, &words));
      let k = decode(&e).expect("decodes");
      let mut trimmed = words.as_slice();
      while let [rest @ .., 0] = trimmed { trimmed = rest; }
      let got: Vec<u64> = k.bigint_words().collect();
      prop_assert_eq!(got.as_slice(), trimmed);
      match k {
        KeyRef::BigInt { negative, .. } => prop_assert_eq!(negative, neg && !trimmed.is_empty()),
        other => prop_assert!(false, "{:?}", other),
      }
    }

    #[test]
    fn strings_and_bytes_round_trip(s in ".*", b in proptest::collection::vec(any::<u8>(), 0..64)) {
      let es = enc(|o| push_str(o, &s));
      let eb = enc(|o| push_bytes(o, &b));
      prop_assert_eq!(decode(&es), Some(KeyRef::String(s.as_bytes())));
      prop_assert_eq!(decode(&eb), Some(KeyRef::Bytes(&b)));
    }

    #[test]
    fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
      let _ = decode(&b);
    }
  }
}
