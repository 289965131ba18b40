//! Values of the in-process LruCache.
//!
//! Primitives are stored natively (nothing on the V8 heap, so a million cached
//! numbers or strings add nothing to GC work); every other value (objects,
//! arrays, functions, symbols, Buffers) is held through a strong `napi_ref`, so
//! `get` returns the very same object that was `set` (identity preserved).
//! A value that holds a reference must be released with [`Val::release`] on the
//! JS thread that created it.

use compact_str::CompactString;
use napi::{
  bindgen_prelude::{BigInt, FromNapiValue, ToNapiValue},
  Env, JsValue, Result, Unknown, UnknownRef, ValueType,
};

pub enum Val {
  Undefined,
  Null,
  Bool(bool),
  Num(f64),
  Str(CompactString),
  Big(Box<BigInt>),
  Ref(UnknownRef<false>),
}

impl Val {
  /// Converts a JavaScript value into its stored form.
  pub fn from_js(env: &Env, value: &Unknown) -> Result<Val> {
    let js_env = env;
    // SAFETY: `value` is a live handle of the current call scope and each cast
    // below matches the type N-API just reported.
    unsafe {
      let raw = value.raw();
      let env = env.raw();
      Ok(match value.get_type()? {
        ValueType::Undefined => Val::Undefined,
        ValueType::Null => Val::Null,
        ValueType::Boolean => Val::Bool(bool::from_napi_value(env, raw)?),
        ValueType::Number => Val::Num(f64::from_napi_value(env, raw)?),
        // Read fallibly: a long string whose bytes cannot be allocated
        // throws ERR_LRUKIT_OUT_OF_MEMORY instead of aborting.
        ValueType::String => Val::Str(CompactString::from(crate::key::read_string(js_env, raw)?)),
        ValueType::BigInt => Val::Big(Box::new(BigInt::from_napi_value(env, raw)?)),
        _ => Val::Ref(UnknownRef::<false>::from_napi_value(env, raw)?),
      })
    }
  }

  /// Builds the JavaScript value (for a reference: the original object).
  pub fn to_js<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
    match self {
      Val::Undefined => ().into_unknown(env),
      Val::Null => napi::bindgen_prelude::Null.into_unknown(env),
      Val::Bool(b) => b.into_unknown(env),
      Val::Num(n) => n.into_unknown(env),
      Val::Str(s) => s.as_str().into_unknown(env),
      Val::Big(b) => BigInt {
        sign_bit: b.sign_bit,
        words: b.words.clone(),
      }
      .into_unknown(env),
      Val::Ref(r) => r.get_value(env),
    }
  }

  /// Releases the reference held by an object value (no-op for primitives).
  pub fn release(self, env: &Env) {
    if let Val::Ref(r) = self {
      // Deleting a reference only fails while the environment is being torn
      // down, when the object is going away anyway.
      let _ = r.unref(env);
    }
  }
}
