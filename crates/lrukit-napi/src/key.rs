//! Keys: JavaScript string, number, bigint, Buffer/Uint8Array <-> tagged bytes.
//!
//! A key is stored as one tag byte followed by its payload, so keys of
//! different types never collide (`'1'` and `1` are different keys, as in a
//! `Map`). Numbers use SameValueZero: `-0` is stored as `0` and every NaN as
//! the canonical NaN. Keys up to 23 bytes live inline (no allocation).

use std::ffi::c_char;

use napi::{
  bindgen_prelude::{Array, BigInt, Buffer, FromNapiValue, ToNapiValue},
  sys, Env, JsValue, Result, Unknown, ValueType,
};
use smallvec::SmallVec;

use crate::errors;
use crate::helpers::{self, Helper};

/// Stored form of a key.
pub type KeyBytes = SmallVec<[u8; 24]>;

const TAG_STR: u8 = b's';
const TAG_NUM: u8 = b'n';
const TAG_BIG_POS: u8 = b'b';
const TAG_BIG_NEG: u8 = b'B';
const TAG_BYTES: u8 = b'u';

/// Reusable buffer for encoding lookup keys without allocating.
pub struct KeyScratch {
  buf: Vec<u8>,
}

impl Default for KeyScratch {
  fn default() -> Self {
    Self {
      buf: Vec::with_capacity(256),
    }
  }
}

impl KeyScratch {
  /// Encodes `value` into the scratch buffer and returns the tagged bytes.
  /// Throws a `TypeError` (code `ERR_LRUKIT_INVALID_KEY`) for other types.
  pub fn encode(&mut self, env: &Env, value: &Unknown) -> Result<&[u8]> {
    self.buf.clear();
    let raw = value.raw();
    match value.get_type()? {
      ValueType::String => {
        self.buf.push(TAG_STR);
        read_utf8(env, raw, &mut self.buf)?;
      }
      ValueType::Number => {
        // SAFETY: the value was just checked to be a number.
        let n = unsafe { f64::from_napi_value(env.raw(), raw)? };
        push_number(&mut self.buf, n);
      }
      ValueType::BigInt => {
        // SAFETY: the value was just checked to be a bigint.
        let big = unsafe { BigInt::from_napi_value(env.raw(), raw)? };
        push_bigint(&mut self.buf, &big);
      }
      ValueType::Object if value.is_typedarray()? => {
        // SAFETY: the value is a typed array; a non-Uint8Array is rejected by
        // the conversion. The slice is copied before this call returns.
        match unsafe { <&[u8]>::from_napi_value(env.raw(), raw) } {
          Ok(bytes) => {
            self.buf.push(TAG_BYTES);
            self.buf.extend_from_slice(bytes);
          }
          Err(_) => return Err(invalid_key(env)),
        }
      }
      _ => return Err(invalid_key(env)),
    }
    Ok(&self.buf)
  }
}

fn invalid_key(env: &Env) -> napi::Error {
  errors::type_error(
    env,
    errors::INVALID_KEY,
    "key must be a string, number, bigint, Buffer or Uint8Array",
  )
}

/// Appends the UTF-8 bytes of the JS string `raw` to `out` with at most two
/// N-API calls and no allocation when the string fits the spare capacity.
pub fn read_utf8(env: &Env, raw: sys::napi_value, out: &mut Vec<u8>) -> Result<()> {
  let start = out.len();
  let spare = out.capacity() - start;
  let mut written = 0usize;
  if spare > 1 {
    // SAFETY: the destination is `spare` writable bytes of `out`'s allocation;
    // N-API writes at most `spare - 1` bytes plus a NUL terminator.
    let status = unsafe {
      sys::napi_get_value_string_utf8(
        env.raw(),
        raw,
        out.as_mut_ptr().add(start) as *mut c_char,
        spare,
        &mut written,
      )
    };
    napi::check_status!(status)?;
    // N-API never splits a character, so a truncated copy can stop up to 3
    // bytes short of the buffer's end (plus the NUL): only a copy that left
    // room for a whole 4-byte character is known to be complete.
    if written + 4 < spare {
      // SAFETY: N-API initialised `written` bytes after `start`.
      unsafe { out.set_len(start + written) };
      return Ok(());
    }
  }
  // The string may have been truncated: ask for its length and read it again.
  // SAFETY: a null buffer asks N-API only for the length.
  let status = unsafe {
    sys::napi_get_value_string_utf8(env.raw(), raw, std::ptr::null_mut(), 0, &mut written)
  };
  napi::check_status!(status)?;
  out.reserve(written + 1);
  // SAFETY: `out` now has at least `written + 1` spare bytes.
  let status = unsafe {
    sys::napi_get_value_string_utf8(
      env.raw(),
      raw,
      out.as_mut_ptr().add(start) as *mut c_char,
      written + 1,
      &mut written,
    )
  };
  napi::check_status!(status)?;
  // SAFETY: N-API initialised `written` bytes after `start`.
  unsafe { out.set_len(start + written) };
  Ok(())
}

fn push_number(out: &mut Vec<u8>, n: f64) {
  let canonical = if n == 0.0 {
    0.0f64
  } else if n.is_nan() {
    f64::NAN
  } else {
    n
  };
  out.push(TAG_NUM);
  out.extend_from_slice(&canonical.to_bits().to_le_bytes());
}

fn push_bigint(out: &mut Vec<u8>, big: &BigInt) {
  let mut words: &[u64] = &big.words;
  while let [rest @ .., 0] = words {
    words = rest;
  }
  let negative = big.sign_bit && !words.is_empty();
  out.push(if negative { TAG_BIG_NEG } else { TAG_BIG_POS });
  for w in words {
    out.extend_from_slice(&w.to_le_bytes());
  }
}

/// Many encoded keys in one buffer (for batch calls), reused across calls.
#[derive(Default)]
pub struct KeyBatch {
  bytes: Vec<u8>,
  ends: Vec<usize>,
}

impl KeyBatch {
  pub fn clear(&mut self) {
    self.bytes.clear();
    self.ends.clear();
  }

  pub fn push(&mut self, key: &[u8]) {
    self.bytes.extend_from_slice(key);
    self.ends.push(self.bytes.len());
  }

  /// Appends the string key whose UTF-16 code units are `units`, encoded as
  /// `read_utf8` would (a lone surrogate becomes U+FFFD, as in
  /// `napi_get_value_string_utf8`).
  fn push_utf16(&mut self, units: &[u16]) {
    self.bytes.push(TAG_STR);
    for c in char::decode_utf16(units.iter().copied()) {
      let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
      let mut b = [0u8; 4];
      self
        .bytes
        .extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    }
    self.ends.push(self.bytes.len());
  }

  /// The number of keys.
  pub fn len(&self) -> usize {
    self.ends.len()
  }

  /// The `i`-th key (empty past the end, which matches no stored key).
  pub fn get(&self, i: usize) -> &[u8] {
    let end = self.ends.get(i).copied().unwrap_or(0);
    let start = if i == 0 {
      0
    } else {
      self.ends.get(i - 1).copied().unwrap_or(0)
    };
    self.bytes.get(start..end).unwrap_or(&[])
  }
}

/// Batches shorter than this are read key by key (the helper call costs
/// about as much as a few keys).
const PACK_MIN: u32 = 8;

/// Encodes every element of `keys` into `batch` (cleared first), in order.
/// String keys are read in one go through the `PackKeys` helper (see
/// `helpers.rs`); other keys, small batches and environments without the
/// helper go through `scratch` one by one. Errors as for `encode`.
pub fn encode_all(
  env: &Env,
  keys: &Array,
  scratch: &mut KeyScratch,
  batch: &mut KeyBatch,
) -> Result<()> {
  batch.clear();
  let n = keys.len();
  let packed = if n >= PACK_MIN {
    helpers::get(env.raw(), Helper::PackKeys)
  } else {
    None
  };
  let Some(pack) = packed else {
    for i in 0..n {
      batch.push(scratch.encode(env, &crate::raw::element(env, keys, i)?)?);
    }
    return Ok(());
  };
  let raw = env.raw();
  // SAFETY: plain Node-API calls on this env's thread with handles made
  // here; the helper returns `[string, Uint32Array(n)]`, which is checked
  // before use, and the typed array's memory is read only while its handle
  // is alive in this scope.
  unsafe {
    let (mut this, mut out) = (std::ptr::null_mut(), std::ptr::null_mut());
    napi::check_status!(sys::napi_get_undefined(raw, &mut this))?;
    let arg = keys.raw();
    napi::check_status!(sys::napi_call_function(raw, this, pack, 1, &arg, &mut out))?;
    let (mut s, mut lens) = (std::ptr::null_mut(), std::ptr::null_mut());
    napi::check_status!(sys::napi_get_element(raw, out, 0, &mut s))?;
    napi::check_status!(sys::napi_get_element(raw, out, 1, &mut lens))?;
    let (mut kind, mut count, mut data) = (0, 0usize, std::ptr::null_mut());
    let (mut ab, mut offset) = (std::ptr::null_mut(), 0usize);
    napi::check_status!(sys::napi_get_typedarray_info(
      raw,
      lens,
      &mut kind,
      &mut count,
      &mut data,
      &mut ab,
      &mut offset
    ))?;
    if kind != sys::TypedarrayType::uint32_array || count != n as usize {
      return Err(napi::Error::from_reason("lrukit: unexpected key pack"));
    }
    let lens = std::slice::from_raw_parts(data as *const u32, count);
    let mut total = 0usize;
    napi::check_status!(sys::napi_get_value_string_utf16(
      raw,
      s,
      std::ptr::null_mut(),
      0,
      &mut total
    ))?;
    let mut units = vec![0u16; total + 1];
    let mut copied = 0usize;
    napi::check_status!(sys::napi_get_value_string_utf16(
      raw,
      s,
      units.as_mut_ptr(),
      units.len(),
      &mut copied
    ))?;
    units.truncate(copied);
    let mut pos = 0usize;
    for (i, &len) in lens.iter().enumerate() {
      if len == u32::MAX {
        batch.push(scratch.encode(env, &crate::raw::element(env, keys, i as u32)?)?);
        continue;
      }
      let end = pos + len as usize;
      let Some(key) = units.get(pos..end) else {
        return Err(napi::Error::from_reason("lrukit: unexpected key pack"));
      };
      batch.push_utf16(key);
      pos = end;
    }
  }
  Ok(())
}

/// Copies an encoded lookup key into its stored form.
pub fn to_stored(bytes: &[u8]) -> KeyBytes {
  KeyBytes::from_slice(bytes)
}

/// Builds the JavaScript value of a stored key.
pub fn to_js<'env>(env: &'env Env, key: &[u8]) -> Result<Unknown<'env>> {
  match key.split_first() {
    // Keys of a SharedMap come back from shared memory, which may be damaged:
    // never assume they are still valid UTF-8.
    Some((&TAG_STR, s)) => match std::str::from_utf8(s) {
      Ok(s) => s.into_unknown(env),
      Err(_) => String::from_utf8_lossy(s).into_owned().into_unknown(env),
    },
    Some((&TAG_NUM, n)) => {
      let bits = u64::from_le_bytes(n.try_into().unwrap_or([0; 8]));
      f64::from_bits(bits).into_unknown(env)
    }
    Some((&tag @ (TAG_BIG_POS | TAG_BIG_NEG), w)) => BigInt {
      sign_bit: tag == TAG_BIG_NEG,
      words: if w.is_empty() {
        vec![0]
      } else {
        w.chunks_exact(8)
          .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
          .collect()
      },
    }
    .into_unknown(env),
    Some((&TAG_BYTES, b)) => Buffer::from(b.to_vec()).into_unknown(env),
    _ => ().into_unknown(env),
  }
}
