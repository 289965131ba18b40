//! Hot methods as raw Node-API callbacks bound to their instance.
//!
//! napi-rs's generated method wrappers track every native borrow in a global
//! registry and identify the receiver through private properties (`napi_unwrap`
//! plus a type-tag check): measured at 70-100 ns per call on Node 20, several
//! times the cost of a cache lookup. So the hot methods of lrukit's classes
//! (`get`, `set`, `has`, ...) are plain `napi_callback`s created per instance
//! at construction, each carrying a strong `Rc` to the instance's native state
//! and the method body as its callback data. A call reads that pointer
//! straight from `napi_get_cb_info`: no receiver lookup, no identity check (the
//! state is the one the function was made for, whatever `this` is, so a
//! detached `const get = cache.get` keeps working), no registry.
//!
//! Safety story:
//! - Each function owns one `Rc` strong count (in its boxed [`Binding`]),
//!   released by a finalizer attached to the function object, so the state
//!   outlives every function that can reach it. The last owner to be finalized releases the JavaScript values the
//!   state still references.
//! - The state is only ever borrowed shared (`&S`); its mutable parts live in a
//!   `RefCell`, so a call re-entered from JavaScript that the first call
//!   triggered (an accessor element of an array it reads) is refused
//!   with an error instead of aliasing.
//!
//! The `.d.ts` of these methods lives in `types/header.d.ts`.

use std::cell::{RefCell, RefMut};
use std::ffi::{c_char, c_void};
use std::ptr;
use std::rc::Rc;

use napi::{
  bindgen_prelude::{Array, JsError, JsObjectValue, Object, ToNapiValue},
  sys, Env, JsValue, Result, Unknown,
};

/// A raw method body: the environment, the instance state, `this` and the
/// arguments in, a JavaScript value out.
pub type Method<S> =
  for<'e> fn(&'e Env, &S, sys::napi_value, &[Unknown<'e>]) -> Result<sys::napi_value>;

/// Upper bound on the arguments any raw method reads.
const MAX_ARGS: usize = 3;

/// Native state that raw methods can be bound to.
pub trait Bound: Sized + 'static {
  /// Called when the last owner (the instance or one of its functions) is
  /// finalized: release any JavaScript references the state holds.
  fn release(&self, env: &Env);
}

/// The callback data of one bound method: its state and its body.
struct Binding<S> {
  state: Rc<S>,
  body: Method<S>,
}

/// The one `napi_callback` of every bound method: calls the body with the
/// bound state, `this` and up to three arguments (missing ones are
/// `undefined`), turning an `Err` into a JavaScript exception.
///
/// # Safety
/// Called by Node-API for a function created by [`bind_methods`] with state
/// type `S`.
unsafe extern "C" fn dispatch<S: Bound>(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  let wrapped_env = Env::from_raw(env);
  let mut argc = MAX_ARGS;
  let mut argv = [ptr::null_mut(); MAX_ARGS];
  let mut this = ptr::null_mut();
  let mut data: *mut c_void = ptr::null_mut();
  // SAFETY: `argv` has room for `argc` values; N-API fills missing ones with
  // `undefined`.
  let status = unsafe {
    sys::napi_get_cb_info(
      env,
      info,
      &mut argc,
      argv.as_mut_ptr(),
      &mut this,
      &mut data,
    )
  };
  let result = napi::check_status!(status).and_then(|()| {
    // SAFETY: `data` is the `Binding<S>` that `bind_methods` boxed for this
    // function; the function is running, so its finalizer has not freed it.
    let binding = unsafe { &*(data as *const Binding<S>) };
    // SAFETY: the handles are live for the duration of this callback.
    let args = argv.map(|v| unsafe { Unknown::from_raw_unchecked(env, v) });
    (binding.body)(&wrapped_env, &binding.state, this, &args)
  });
  match result {
    Ok(value) => value,
    Err(e) => {
      // SAFETY: `env` is the live environment of this callback.
      unsafe { JsError::from(e).throw_into(env) };
      ptr::null_mut()
    }
  }
}

/// Releases one strong count of an `Rc<S>` given to a function or instance;
/// the last one also lets the state release its JavaScript references.
pub fn drop_owner<S: Bound>(env: &Env, owner: Rc<S>) {
  if Rc::strong_count(&owner) == 1 {
    owner.release(env);
  }
}

unsafe extern "C" fn finalize_function<S: Bound>(
  env: sys::napi_env,
  data: *mut c_void,
  _hint: *mut c_void,
) {
  // SAFETY: `data` is the `Binding<S>` `bind_methods` leaked for this function.
  let binding = unsafe { Box::from_raw(data as *mut Binding<S>) };
  drop_owner(&Env::from_raw(env), binding.state);
}

/// Defines `methods` on `target` as non-enumerable, writable, configurable
/// properties, each a new function bound to `state`.
pub fn bind_methods<S: Bound>(
  env: &Env,
  target: sys::napi_value,
  state: &Rc<S>,
  methods: &[(&'static str, Method<S>)],
) -> Result<()> {
  let functions = functions(env, state, methods)?;
  define(env, target, methods.iter().map(|m| m.0).zip(functions))
}

/// Defines each `(name, value)` on `target` as a non-enumerable, writable,
/// configurable property. Names are NUL-terminated.
pub fn define(
  env: &Env,
  target: sys::napi_value,
  properties: impl Iterator<Item = (&'static str, sys::napi_value)>,
) -> Result<()> {
  let descriptors: Vec<_> = properties
    .map(|(name, value)| {
      debug_assert!(name.ends_with('\0'), "N-API reads names as C strings");
      sys::napi_property_descriptor {
        utf8name: name.as_ptr() as *const c_char,
        name: ptr::null_mut(),
        method: None,
        getter: None,
        setter: None,
        value,
        attributes: sys::PropertyAttributes::writable | sys::PropertyAttributes::configurable,
        data: ptr::null_mut(),
      }
    })
    .collect();
  // SAFETY: the descriptors and their names outlive the call.
  napi::check_status!(unsafe {
    sys::napi_define_properties(env.raw(), target, descriptors.len(), descriptors.as_ptr())
  })
}

/// New functions, one per method, each bound to `state` (not attached to
/// any object).
pub fn functions<S: Bound>(
  env: &Env,
  state: &Rc<S>,
  methods: &[(&'static str, Method<S>)],
) -> Result<Vec<sys::napi_value>> {
  let mut out = Vec::with_capacity(methods.len());
  for &(name, body) in methods {
    debug_assert!(name.ends_with('\0'), "N-API reads names as C strings");
    let data = Box::into_raw(Box::new(Binding {
      state: Rc::clone(state),
      body,
    })) as *mut c_void;
    let mut function = ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; `data` stays valid until the finalizer
    // below runs.
    let created = napi::check_status!(unsafe {
      sys::napi_create_function(
        env.raw(),
        name.as_ptr() as *const c_char,
        name.len() as isize - 1,
        Some(dispatch::<S>),
        data,
        &mut function,
      )
    })
    .and_then(|()| {
      // SAFETY: attaches the release of `data` to the function's lifetime.
      napi::check_status!(unsafe {
        sys::napi_add_finalizer(
          env.raw(),
          function,
          data,
          Some(finalize_function::<S>),
          ptr::null_mut(),
          ptr::null_mut(),
        )
      })
    });
    if let Err(e) = created {
      // SAFETY: no finalizer owns `data`, so the box is still ours.
      drop(unsafe { Box::from_raw(data as *mut Binding<S>) });
      return Err(e);
    }
    out.push(function);
  }
  Ok(out)
}

/// Makes instances of the exported class `class_name` iterable like a `Map`:
/// `prototype[Symbol.iterator]` is `prototype.entries`, as
/// `Map.prototype[Symbol.iterator]` is `Map.prototype.entries`.
pub fn make_iterable(env: &Env, exports: &Object, class_name: &str) -> Result<()> {
  let ctor: Object = exports.get_named_property_unchecked(class_name)?;
  let mut proto: Object = ctor.get_named_property("prototype")?;
  let symbol: Object = env.get_global()?.get_named_property_unchecked("Symbol")?;
  let iterator: Unknown = symbol.get_named_property("iterator")?;
  let entries: Unknown = proto.get_named_property("entries")?;
  proto.set_property(iterator, entries)
}

/// `array.values()`: the iterator the snapshot methods (`keys()`, `entries()`,
/// ...) return.
pub fn array_iterator(array: Object<'_>) -> Result<Unknown<'_>> {
  let values: napi::bindgen_prelude::Function<(), Unknown> = array.get_named_property("values")?;
  values.apply(array, ())
}

/// `v` as an array, or a `TypeError` with `msg`.
pub(crate) fn as_array<'env>(env: &'env Env, v: &Unknown<'env>, msg: &str) -> Result<Array<'env>> {
  if !v.is_array()? {
    return Err(crate::errors::type_error(
      env,
      crate::errors::INVALID_ARGUMENT,
      msg,
    ));
  }
  // SAFETY: the value was just checked to be an array.
  unsafe { v.cast::<Array>() }
}

/// Element `i` of `array` (`undefined` for a hole).
pub(crate) fn element<'env>(env: &'env Env, array: &Array<'env>, i: u32) -> Result<Unknown<'env>> {
  match array.get::<Unknown>(i)? {
    Some(v) => Ok(v),
    None => ().into_unknown(env),
  }
}

/// The re-entrancy guard of every class: the mutable state behind `cell`,
/// or an `ERR_LRUKIT_REENTRANT` error naming `class` when a call on the same
/// object is already running (this call was made from JavaScript that call
/// triggered: a getter, a Proxy trap, an accessor element).
pub(crate) fn enter<'a, T>(env: &Env, cell: &'a RefCell<T>, class: &str) -> Result<RefMut<'a, T>> {
  cell.try_borrow_mut().map_err(|_| {
    crate::errors::error(
      env,
      crate::errors::REENTRANT,
      &format!("{class} was called again while one of its own calls was running"),
    )
  })
}
