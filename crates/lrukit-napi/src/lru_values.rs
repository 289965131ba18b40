//! Where LruCache keeps its values: one JavaScript array per cache, indexed
//! by a slot the native table stores in place of the value.
//!
//! Layout: the table ([`lrukit_array_lru::timed::TimedLru`]) maps each key to
//! a `u32` slot; `values[slot]` is the value, kept as the very JavaScript
//! value that was `set` (strings, numbers and objects alike: nothing is
//! copied, converted or wrapped in a `napi_ref`). A hit is then a native
//! lookup that returns a small integer plus one array load in JavaScript:
//! the compiled method helper (`helpers::Helper::LruMethods`) gives each
//! cache `get`/`peek`/`set`/`getMany` closures over the array and the native
//! slot functions. Where no script can be compiled, the native methods read
//! and write the array through Node-API instead (slower, same results).
//!
//! Slots: a [`SlotPool`] (dense, the last one given back reused first). A
//! slot is taken before its entry is inserted and given back when the entry
//! leaves the table. Removals outside `set` (delete, expiry, `popLru`, `clear`,
//! `purgeStale`) also clear the array element, so the value can be
//! collected; an entry evicted or replaced by `set` only frees its slot,
//! which the next insert takes again, so at most the values of the slots on
//! the free list (normally one) stay reachable until overwritten.
//!
//! `offHeap: true`: strings, numbers, bigints, booleans, `null` and
//! `undefined` are copied into native memory instead (a `Native` per slot,
//! beside the array), so a large cache of them adds nothing to the V8 heap
//! for the collector to trace; each hit then makes a new JavaScript value,
//! and a string comes back from UTF-8 (a lone surrogate as U+FFFD). Other
//! values still go in the array.
//!
//! Failure story: the array is this cache's own, reachable only from its
//! methods and this table; the pool never hands out a slot twice (its
//! tests), and a slot is never read unless the table maps a live key to it.
//! On the Node-API paths a value is put in its slot before its key is
//! inserted, so a failed put stores nothing; a failed clear leaves at worst
//! a stale value in a free slot, which nothing reads.

use std::ptr;

use compact_str::CompactString;
use lrukit_array_lru::SlotPool;
use napi::{
  bindgen_prelude::{BigInt, FromNapiValue, ToNapiValue},
  sys, Env, Result, Unknown, ValueType,
};

pub struct Values {
  /// Strong reference to the array (deleted by [`Values::release`]).
  array: sys::napi_ref,
  slots: SlotPool,
  /// With `offHeap`, per slot: a primitive kept natively, or `InArray`.
  native: Option<Vec<Native>>,
}

/// A value `offHeap` keeps in native memory, or where the value is.
enum Native {
  InArray,
  Undefined,
  Null,
  Bool(bool),
  Num(f64),
  Str(CompactString),
  Big(Box<BigInt>),
}

impl Native {
  /// The native form of a primitive; `None` for a value the array keeps.
  fn read(env: &Env, value: sys::napi_value) -> Result<Option<Native>> {
    // SAFETY: `value` is a live handle of the current call scope and each
    // conversion below matches the type N-API just reported.
    unsafe {
      let v = Unknown::from_raw_unchecked(env.raw(), value);
      Ok(Some(match v.get_type()? {
        ValueType::Undefined => Native::Undefined,
        ValueType::Null => Native::Null,
        ValueType::Boolean => Native::Bool(bool::from_napi_value(env.raw(), value)?),
        ValueType::Number => Native::Num(f64::from_napi_value(env.raw(), value)?),
        // Read fallibly: a long string whose bytes cannot be allocated
        // throws ERR_LRUKIT_OUT_OF_MEMORY instead of aborting.
        ValueType::String => Native::Str(CompactString::from(crate::key::read_string(env, value)?)),
        ValueType::BigInt => Native::Big(Box::new(BigInt::from_napi_value(env.raw(), value)?)),
        _ => return Ok(None),
      }))
    }
  }

  /// The JavaScript value (`None` for `InArray`).
  fn to_js(&self, env: &Env) -> Result<Option<sys::napi_value>> {
    let raw = env.raw();
    // SAFETY: conversions on the current env.
    unsafe {
      Ok(Some(match self {
        Native::InArray => return Ok(None),
        Native::Undefined => <()>::to_napi_value(raw, ())?,
        Native::Null => {
          napi::bindgen_prelude::Null::to_napi_value(raw, napi::bindgen_prelude::Null)?
        }
        Native::Bool(b) => bool::to_napi_value(raw, *b)?,
        Native::Num(n) => f64::to_napi_value(raw, *n)?,
        Native::Str(s) => <&str>::to_napi_value(raw, s.as_str())?,
        Native::Big(b) => BigInt::to_napi_value(
          raw,
          BigInt {
            sign_bit: b.sign_bit,
            words: b.words.clone(),
          },
        )?,
      }))
    }
  }
}

impl Values {
  /// A new empty array and its table (with `off_heap`, primitives go to
  /// native memory); also returns the array.
  pub fn new(env: &Env, off_heap: bool) -> Result<(Self, sys::napi_value)> {
    let mut array = ptr::null_mut();
    let mut r = ptr::null_mut();
    // SAFETY: plain Node-API calls on the current env with handles made here.
    napi::check_status!(unsafe { sys::napi_create_array(env.raw(), &mut array) })?;
    // SAFETY: as above.
    napi::check_status!(unsafe { sys::napi_create_reference(env.raw(), array, 1, &mut r) })?;
    let mut values = Values {
      array: r,
      slots: SlotPool::new(),
      native: off_heap.then(Vec::new),
    };
    // An array that has held a non-number keeps references in its elements
    // from then on (V8's elements kinds only widen): one that has held only
    // numbers would store them unboxed and box each one again on every read.
    values.clear_in_array(env, 0)?;
    values.reset(env)?;
    Ok((values, array))
  }

  /// The array.
  pub fn array(&self, env: &Env) -> Result<sys::napi_value> {
    let mut array = ptr::null_mut();
    // SAFETY: the reference is live until `release`, which only the last
    // owner of the state calls, when no method can run any more.
    napi::check_status!(unsafe {
      sys::napi_get_reference_value(env.raw(), self.array, &mut array)
    })?;
    Ok(array)
  }

  /// A slot for a new entry. The table holds at most `MAX_CAPACITY`
  /// (2^32 - 2) entries and a slot is taken just before an insert, so the
  /// pool (2^32 slots) never runs out.
  pub fn take(&mut self) -> u32 {
    self.slots.take().expect("more slots than a table can hold")
  }

  /// Gives `slot` back without clearing it (the next `take` returns it).
  pub fn give_back(&mut self, slot: u32) {
    self.slots.give_back(slot);
  }

  /// Gives `slot` back and clears its element so the value can be collected.
  pub fn clear(&mut self, env: &Env, slot: u32) {
    self.slots.give_back(slot);
    if let Some(native) = &mut self.native {
      match native.get_mut(slot as usize) {
        Some(n @ Native::InArray) => *n = Native::Undefined,
        Some(n) => {
          *n = Native::Undefined;
          return;
        }
        None => return,
      }
    }
    // A failure leaves a stale value in a free slot, which nothing reads.
    let _ = self.clear_in_array(env, slot);
  }

  /// `values[slot] = undefined`.
  fn clear_in_array(&self, env: &Env, slot: u32) -> Result<()> {
    let mut undefined = ptr::null_mut();
    // SAFETY: a handle of the current env.
    napi::check_status!(unsafe { sys::napi_get_undefined(env.raw(), &mut undefined) })?;
    self.put_in_array(env, slot, undefined)
  }

  /// `values[slot]`.
  pub fn get(&self, env: &Env, slot: u32) -> Result<sys::napi_value> {
    if let Some(n) = self.native.as_ref().and_then(|n| n.get(slot as usize)) {
      if let Some(v) = n.to_js(env)? {
        return Ok(v);
      }
    }
    let array = self.array(env)?;
    let mut v = ptr::null_mut();
    // SAFETY: handles of the current env.
    napi::check_status!(unsafe { sys::napi_get_element(env.raw(), array, slot, &mut v) })?;
    Ok(v)
  }

  /// `values[slot] = value`.
  pub fn put(&mut self, env: &Env, slot: u32, value: sys::napi_value) -> Result<()> {
    if let Some(native) = &mut self.native {
      let n = Native::read(env, value)?;
      let i = slot as usize;
      if i >= native.len() {
        native
          .try_reserve(i + 1 - native.len())
          .map_err(|_| crate::memory::out_of_memory(env, "LruCache: growing the native values"))?;
        native.resize_with(i + 1, || Native::Undefined);
      }
      let was_in_array = matches!(native[i], Native::InArray);
      match n {
        Some(n) => {
          native[i] = n;
          // A primitive now: drop the object the array may still hold there.
          return if was_in_array {
            self.clear_in_array(env, slot)
          } else {
            Ok(())
          };
        }
        None => native[i] = Native::InArray,
      }
    }
    self.put_in_array(env, slot, value)
  }

  fn put_in_array(&self, env: &Env, slot: u32, value: sys::napi_value) -> Result<()> {
    let array = self.array(env)?;
    // SAFETY: handles of the current env.
    napi::check_status!(unsafe { sys::napi_set_element(env.raw(), array, slot, value) })
  }

  /// Forgets every slot and empties the array (`length = 0`).
  pub fn reset(&mut self, env: &Env) -> Result<()> {
    self.slots.reset();
    if let Some(native) = &mut self.native {
      *native = Vec::new();
    }
    let array = self.array(env)?;
    let mut zero = ptr::null_mut();
    // SAFETY: handles of the current env.
    napi::check_status!(unsafe { sys::napi_create_uint32(env.raw(), 0, &mut zero) })?;
    // SAFETY: as above; the name is NUL-terminated.
    napi::check_status!(unsafe {
      sys::napi_set_named_property(env.raw(), array, c"length".as_ptr(), zero)
    })
  }

  /// Drops the reference to the array (the last owner of the state, once).
  pub fn release(&mut self, env: &Env) {
    if !self.array.is_null() {
      // SAFETY: the reference was made in this env and is deleted once.
      unsafe { sys::napi_delete_reference(env.raw(), self.array) };
      self.array = ptr::null_mut();
    }
  }
}
