//! Small JavaScript functions the binding compiles once per environment
//! (`napi_run_script`) for work that is cheap in JavaScript and expensive
//! through Node-API one value at a time: building many small objects, and
//! reading many keys out of an array. Each caller keeps a plain Node-API
//! path for when no helper is available (an embedder that refuses to compile
//! scripts; `LRUKIT_TEST_NO_SCRIPT` forces that path in tests).

use std::cell::RefCell;
use std::ffi::c_void;

use napi::sys;

/// The helpers. The sources avoid prototype methods user code could have
/// replaced (no `push`, no `join`).
#[derive(Clone, Copy)]
pub(crate) enum Helper {
  /// `(out, times, base, ...kv)`: appends `{ key: kv[i], value: kv[i + 1],
  /// lastSeen: times[base + i / 2] }` to `out` and returns it. Arguments
  /// arrive in one call (no per-element stores) and object literals share
  /// one hidden class.
  ExpiredObjects,
  /// `(keys, from, to)`: `[s, lens]` where `s` concatenates the string keys
  /// of `keys[from..to]` and `lens[i - from]` is the UTF-16 length of string
  /// key `i`, or 0xFFFFFFFF for a key of another type (the caller bounds
  /// `to - from`, see `key::encode_all`). The loop reads the strings in
  /// JavaScript, where the cache misses of consecutive keys overlap; through
  /// Node-API each key costs a type check and a copy, one miss after another.
  PackKeys,
  /// `(values, getSlot, peekSlot, setSlot, getManySlots)`: LruCache's
  /// `[get, peek, set, getMany]` for one cache, closures over its value
  /// array (`lru_values`) and its native slot functions. A hit is one native
  /// call that returns a slot and one array load: the stored value itself,
  /// nothing copied or converted.
  LruMethods,
}

const COUNT: usize = 3;

const SOURCES: [&str; COUNT] = [
  "(function lrukitExpiredObjects(out, times, base, ...kv) { \
     for (let i = 0, n = out.length; i < kv.length; i += 2, n++) \
       out[n] = { key: kv[i], value: kv[i + 1], lastSeen: times[base + (i >> 1)] }; \
     return out })",
  "(function lrukitPackKeys(keys, from, to) { \
     const lens = new Uint32Array(to - from); let s = ''; \
     for (let i = from; i < to; i++) { const k = keys[i]; \
       if (typeof k === 'string') { s += k; lens[i - from] = k.length } else lens[i - from] = 0xffffffff } \
     return [s, lens] })",
  "(function lrukitLruMethods(values, getSlot, peekSlot, setSlot, getManySlots) { 'use strict'; \
     return [ \
       function get(key) { const s = getSlot(key); return s < 0 ? undefined : values[s] }, \
       function peek(key) { const s = peekSlot(key); return s < 0 ? undefined : values[s] }, \
       function set(key, value, options) { values[setSlot(key, options)] = value; return this }, \
       function getMany(keys) { const slots = getManySlots(keys); const out = []; \
         for (let i = 0; i < slots.length; i++) { const s = slots[i]; out[i] = s < 0 ? undefined : values[s] } \
         return out } ] })",
];

thread_local! {
  /// Per environment of this thread (normally one: the main thread's or a
  /// worker's; an embedder may run several contexts on one thread): the
  /// env and, per helper, a reference to the compiled function (0 = not
  /// compiled yet, 1 = compiling failed, do not retry). An entry is removed
  /// by its env's cleanup hook, so a reference never outlives its env.
  static ENVS: RefCell<Vec<(usize, [usize; COUNT])>> = const { RefCell::new(Vec::new()) };
}

/// Env cleanup hook (its argument is the env): forgets that env's entry.
unsafe extern "C" fn forget(env: *mut c_void) {
  ENVS.with(|e| e.borrow_mut().retain(|&(x, _)| x != env as usize));
}

/// The compiled helper for env `raw`, or `None` where scripts cannot be
/// compiled.
pub(crate) fn get(raw: sys::napi_env, h: Helper) -> Option<sys::napi_value> {
  let idx = h as usize;
  let key = raw as usize;
  let known = ENVS.with(|e| e.borrow().iter().find(|x| x.0 == key).map(|x| x.1[idx]));
  let slot = match known {
    Some(slot) => slot,
    None => {
      // First use in this env: register its cleanup hook, once (Node
      // aborts on a duplicate registration).
      // SAFETY: a Node-API call on this env's thread.
      if unsafe { sys::napi_add_env_cleanup_hook(raw, Some(forget), raw.cast()) }
        != sys::Status::napi_ok
      {
        return None;
      }
      ENVS.with(|e| e.borrow_mut().push((key, [0; COUNT])));
      0
    }
  };
  let set = |v: usize| {
    ENVS.with(|e| {
      if let Some(x) = e.borrow_mut().iter_mut().find(|x| x.0 == key) {
        x.1[idx] = v;
      }
    })
  };
  let mut f = std::ptr::null_mut();
  match slot {
    1 => return None,
    0 => {}
    r => {
      // SAFETY: the reference was made in this env and is forgotten by the
      // env's cleanup hook before the env goes away.
      let ok = unsafe { sys::napi_get_reference_value(raw, r as sys::napi_ref, &mut f) };
      return (ok == sys::Status::napi_ok && !f.is_null()).then_some(f);
    }
  }
  let src_text = SOURCES[idx];
  let mut src = std::ptr::null_mut();
  let mut r = std::ptr::null_mut();
  // SAFETY: plain Node-API calls on this env's thread with handles made here.
  let ok = std::env::var_os("LRUKIT_TEST_NO_SCRIPT").is_none()
    && unsafe {
      sys::napi_create_string_utf8(
        raw,
        src_text.as_ptr().cast(),
        src_text.len() as isize,
        &mut src,
      ) == sys::Status::napi_ok
        && sys::napi_run_script(raw, src, &mut f) == sys::Status::napi_ok
        && sys::napi_create_reference(raw, f, 1, &mut r) == sys::Status::napi_ok
    };
  if !ok {
    // Clear any exception the refusal left, and do not try again.
    let mut e = std::ptr::null_mut();
    // SAFETY: as above.
    unsafe { sys::napi_get_and_clear_last_exception(raw, &mut e) };
    set(1);
    return None;
  }
  set(r as usize);
  Some(f)
}
