//! Keys: JavaScript string, number, bigint, Buffer/Uint8Array to and from
//! the tagged bytes of `lrukit_codec::key` (which defines the encoding).
//! Keys up to 23 bytes live inline (no allocation).

use std::ffi::c_char;

use napi::{
  bindgen_prelude::{Array, BigInt, Buffer, FromNapiValue, ToNapiValue, Utf16String},
  sys, Env, JsValue, Result, Unknown, ValueType,
};
use smallvec::SmallVec;

use crate::errors;
use crate::helpers::{self, Helper};
use crate::memory;

/// Stored form of a key.
pub type KeyBytes = SmallVec<[u8; 24]>;

use lrukit_codec::key::{self as codec, KeyRef};

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
        self.buf.push(codec::TAG_STRING);
        read_utf8(env, raw, &mut self.buf)?;
        // N-API's UTF-8 turns a lone surrogate into U+FFFD, which would make
        // distinct strings one key; only a string whose bytes show U+FFFD can
        // hold one, and it is read again as UTF-16 and encoded as WTF-8.
        if memchr::memmem::find(&self.buf[1..], REPLACEMENT).is_some() {
          self.buf.clear();
          read_wtf8_key(env, raw, &mut self.buf)?;
        }
      }
      ValueType::Number => {
        // SAFETY: the value was just checked to be a number.
        let n = unsafe { f64::from_napi_value(env.raw(), raw)? };
        codec::push_number(&mut self.buf, n);
      }
      ValueType::BigInt => {
        // SAFETY: the value was just checked to be a bigint.
        let big = unsafe { BigInt::from_napi_value(env.raw(), raw)? };
        codec::push_bigint(&mut self.buf, big.sign_bit, &big.words);
      }
      ValueType::Object if value.is_typedarray()? => {
        // SAFETY: the value is a typed array; a non-Uint8Array is rejected by
        // the conversion. The slice is copied before this call returns.
        match unsafe { <&[u8]>::from_napi_value(env.raw(), raw) } {
          Ok(bytes) => {
            memory::reserve(
              env,
              &mut self.buf,
              bytes.len() + codec::TAG_BYTES_LEN,
              "reading a byte key",
            )?;
            codec::push_bytes(&mut self.buf, bytes);
          }
          Err(_) => return Err(invalid_key(env)),
        }
      }
      _ => return Err(invalid_key(env)),
    }
    Ok(&self.buf)
  }
}

/// U+FFFD REPLACEMENT CHARACTER in UTF-8.
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

/// Appends the string key of the JS string `raw` read as UTF-16 code units,
/// so a lone surrogate keeps its own WTF-8 encoding (see `codec::key`).
fn read_wtf8_key(env: &Env, raw: sys::napi_value, out: &mut Vec<u8>) -> Result<()> {
  let mut len = 0usize;
  // SAFETY: a null buffer asks N-API only for the length in code units.
  napi::check_status!(unsafe {
    sys::napi_get_value_string_utf16(env.raw(), raw, std::ptr::null_mut(), 0, &mut len)
  })?;
  let mut units: Vec<u16> = Vec::new();
  memory::reserve(env, &mut units, len + 1, "reading a string key")?;
  units.resize(len + 1, 0);
  let mut copied = 0usize;
  // SAFETY: `units` holds `len + 1` writable code units; N-API writes at most
  // that many, a NUL included.
  napi::check_status!(unsafe {
    sys::napi_get_value_string_utf16(env.raw(), raw, units.as_mut_ptr(), units.len(), &mut copied)
  })?;
  units.truncate(copied);
  memory::reserve(
    env,
    out,
    codec::utf16_encoded_bound(units.len()),
    "reading a string key",
  )?;
  codec::push_utf16(out, &units);
  Ok(())
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
/// Room that cannot be had throws `ERR_LRUKIT_OUT_OF_MEMORY`.
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
  memory::reserve(env, out, written + 1, "reading a string")?;
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

/// What a failed batch allocation reports.
const BATCH: &str = "encoding the keys of a batch call";

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

  /// Appends an encoded key (`ERR_LRUKIT_OUT_OF_MEMORY` if the batch cannot
  /// grow).
  pub fn push(&mut self, env: &Env, key: &[u8]) -> Result<()> {
    memory::reserve(env, &mut self.bytes, key.len(), BATCH)?;
    memory::reserve(env, &mut self.ends, 1, BATCH)?;
    self.bytes.extend_from_slice(key);
    self.ends.push(self.bytes.len());
    Ok(())
  }

  /// Appends the string key whose UTF-16 code units are `units`, encoded as
  /// [`KeyScratch::encode`] encodes the same string (WTF-8).
  fn push_utf16(&mut self, env: &Env, units: &[u16]) -> Result<()> {
    let most = codec::utf16_encoded_bound(units.len());
    memory::reserve(env, &mut self.bytes, most, BATCH)?;
    memory::reserve(env, &mut self.ends, 1, BATCH)?;
    codec::push_utf16(&mut self.bytes, units);
    self.ends.push(self.bytes.len());
    Ok(())
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

/// Most keys packed by one call of the `PackKeys` helper: its `Uint32Array`
/// and string stay small whatever the array's length (an array of length
/// 2^32 - 1 would otherwise need a 16 GiB typed array before the first key
/// is even looked at).
const PACK_CHUNK: u32 = 1 << 16;

/// Encodes every element of `keys` into `batch` (cleared first), in order.
/// String keys are read through the `PackKeys` helper (see `helpers.rs`), up
/// to [`PACK_CHUNK`] keys per call; other keys, small batches and
/// environments without the helper go through `scratch` one by one. Errors
/// as for `encode`; memory for the batch that cannot be had throws
/// `ERR_LRUKIT_OUT_OF_MEMORY`.
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
      let key = scratch.encode(env, &crate::raw::element(env, keys, i)?)?;
      batch.push(env, key)?;
    }
    return Ok(());
  };
  let mut units = Vec::new();
  let mut from = 0;
  while from < n {
    let to = from + (n - from).min(PACK_CHUNK);
    pack_range(env, pack, keys, from, to, &mut units, scratch, batch)?;
    from = to;
  }
  Ok(())
}

/// Encodes keys `from..to` of `keys` into `batch` with one call of the
/// `PackKeys` helper `pack`; `units` is a reusable buffer.
#[allow(clippy::too_many_arguments)]
fn pack_range(
  env: &Env,
  pack: sys::napi_value,
  keys: &Array,
  from: u32,
  to: u32,
  units: &mut Vec<u16>,
  scratch: &mut KeyScratch,
  batch: &mut KeyBatch,
) -> Result<()> {
  let raw = env.raw();
  let unexpected = || napi::Error::from_reason("lrukit: unexpected key pack");
  // SAFETY: plain Node-API calls on this env's thread with handles made
  // here; the helper returns `[string, Uint32Array(to - from)]`, which is
  // checked before use, and the typed array's memory is read only while its
  // handle is alive in this scope.
  unsafe {
    let (mut this, mut out) = (std::ptr::null_mut(), std::ptr::null_mut());
    napi::check_status!(sys::napi_get_undefined(raw, &mut this))?;
    let mut args = [keys.raw(), std::ptr::null_mut(), std::ptr::null_mut()];
    napi::check_status!(sys::napi_create_uint32(raw, from, &mut args[1]))?;
    napi::check_status!(sys::napi_create_uint32(raw, to, &mut args[2]))?;
    napi::check_status!(sys::napi_call_function(
      raw,
      this,
      pack,
      args.len(),
      args.as_ptr(),
      &mut out
    ))?;
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
    if kind != sys::TypedarrayType::uint32_array || count != (to - from) as usize {
      return Err(unexpected());
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
    units.clear();
    memory::reserve(env, units, total + 1, "reading the keys of a batch")?;
    units.resize(total + 1, 0);
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
    for (i, &len) in (from..to).zip(lens) {
      if len == u32::MAX {
        let key = scratch.encode(env, &crate::raw::element(env, keys, i)?)?;
        batch.push(env, key)?;
        continue;
      }
      let end = pos + len as usize;
      let Some(key) = units.get(pos..end) else {
        return Err(unexpected());
      };
      batch.push_utf16(env, key)?;
      pos = end;
    }
  }
  Ok(())
}

/// Copies an encoded lookup key into its stored form.
pub fn to_stored(bytes: &[u8]) -> KeyBytes {
  KeyBytes::from_slice(bytes)
}

/// [`to_stored`] that throws `ERR_LRUKIT_OUT_OF_MEMORY` instead of aborting
/// when a long key's copy cannot be allocated.
pub fn try_to_stored(env: &Env, bytes: &[u8]) -> Result<KeyBytes> {
  let mut key = KeyBytes::new();
  if key.try_reserve_exact(bytes.len()).is_err() {
    return Err(memory::out_of_memory(
      env,
      &format!("storing a key: could not allocate {} bytes", bytes.len()),
    ));
  }
  key.extend_from_slice(bytes);
  Ok(key)
}

/// The JS string `raw` as a Rust string (throws `ERR_LRUKIT_OUT_OF_MEMORY`
/// instead of aborting when its bytes cannot be allocated).
pub fn read_string(env: &Env, raw: sys::napi_value) -> Result<String> {
  let mut bytes = Vec::new();
  read_utf8(env, raw, &mut bytes)?;
  // N-API writes UTF-8 (lone surrogates become U+FFFD): this only checks.
  Ok(
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
  )
}

/// Builds the JavaScript value of a stored key (`undefined` for bytes no
/// encoder writes: keys of a SharedMap come back from shared memory, which
/// may be damaged, so a string key is converted lossily too).
pub fn to_js<'env>(env: &'env Env, key: &[u8]) -> Result<Unknown<'env>> {
  match codec::decode(key) {
    Some(KeyRef::String(s)) => match std::str::from_utf8(s) {
      Ok(s) => s.into_unknown(env),
      // a lone surrogate (WTF-8), else damaged bytes (converted lossily)
      Err(_) => match codec::string_units(s) {
        Some(units) => Utf16String::from(units).into_unknown(env),
        None => String::from_utf8_lossy(s).into_owned().into_unknown(env),
      },
    },
    Some(KeyRef::Number(n)) => n.into_unknown(env),
    Some(k @ KeyRef::BigInt { negative, .. }) => {
      let mut words: Vec<u64> = k.bigint_words().collect();
      if words.is_empty() {
        words.push(0);
      }
      BigInt {
        sign_bit: negative,
        words,
      }
      .into_unknown(env)
    }
    Some(KeyRef::Bytes(b)) => Buffer::from(b.to_vec()).into_unknown(env),
    None => ().into_unknown(env),
  }
}
