//! lrukit's N-API binding: the only crate with `#[napi]` items. It converts
//! JavaScript values to and from the pure crates and holds no cache logic.
#![deny(clippy::all)]

mod errors;
mod flow_table;
mod flow_table_hot;
mod flow_table_options;
mod flow_table_results;
mod helpers;
mod key;
mod lru_cache;
mod lru_values;
mod memory;
mod options;
mod raw;
mod shared_map;
mod shared_map_dump;
mod shared_map_fetch;
mod shared_map_hot;
mod shared_map_options;
mod shared_map_results;
mod typed_value;

/// Does nothing. Exists so benchmarks can show the cost of crossing the
/// JavaScript ↔ native boundary on its own.
#[napi_derive::napi(skip_typescript)]
pub fn noop() {}

/// Like [`noop`] but takes one key argument and returns it as-is, the minimum a
/// cache lookup has to pay at the boundary.
#[napi_derive::napi(skip_typescript)]
pub fn echo(value: napi::Unknown<'_>) -> napi::Unknown<'_> {
  value
}

/// Reads `key` into a native buffer exactly as `LruCache`'s methods do (the
/// same encoder) and does nothing else: the floor of a native `get`, for the
/// benchmarks. Errors as an invalid key does.
#[napi_derive::napi(skip_typescript)]
pub fn probe_key(env: napi::Env, key: napi::Unknown<'_>) -> napi::Result<()> {
  thread_local! {
    static SCRATCH: std::cell::RefCell<key::KeyScratch> = std::cell::RefCell::new(key::KeyScratch::default());
  }
  SCRATCH.with(|s| s.borrow_mut().encode(&env, &key).map(|_| ()))
}

/// Runs once per module load (main thread and every worker): finishes the
/// JavaScript shape of the exported classes.
#[napi_derive::napi(module_exports)]
pub fn module_exports(exports: napi::bindgen_prelude::Object, env: napi::Env) -> napi::Result<()> {
  lru_cache::install(&env, &exports)?;
  shared_map::install(&env, &exports)
}
