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
//! Failure story: the array is this cache's own, reachable only from its
//! methods and this table; the pool never hands out a slot twice (its
//! tests), and a slot is never read unless the table maps a live key to it.
//! On the Node-API paths a value is put in its slot before its key is
//! inserted, so a failed put stores nothing; a failed clear leaves at worst
//! a stale value in a free slot, which nothing reads.

use std::ptr;

use lrukit_array_lru::SlotPool;
use napi::{sys, Env, Result};

pub struct Values {
  /// Strong reference to the array (deleted by [`Values::release`]).
  array: sys::napi_ref,
  slots: SlotPool,
}

impl Values {
  /// A new empty array and its table; also returns the array.
  pub fn new(env: &Env) -> Result<(Self, sys::napi_value)> {
    let mut array = ptr::null_mut();
    let mut r = ptr::null_mut();
    // SAFETY: plain Node-API calls on the current env with handles made here.
    napi::check_status!(unsafe { sys::napi_create_array(env.raw(), &mut array) })?;
    // SAFETY: as above.
    napi::check_status!(unsafe { sys::napi_create_reference(env.raw(), array, 1, &mut r) })?;
    let mut values = Values {
      array: r,
      slots: SlotPool::new(),
    };
    // An array that has held a non-number keeps references in its elements
    // from then on (V8's elements kinds only widen): one that has held only
    // numbers would store them unboxed and box each one again on every read.
    let mut undefined = ptr::null_mut();
    // SAFETY: as above.
    napi::check_status!(unsafe { sys::napi_get_undefined(env.raw(), &mut undefined) })?;
    values.put(env, 0, undefined)?;
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
    if let Ok(array) = self.array(env) {
      let mut undefined = ptr::null_mut();
      // SAFETY: handles of the current env; a failure leaves a stale value
      // in a free slot, which nothing reads.
      unsafe {
        sys::napi_get_undefined(env.raw(), &mut undefined);
        sys::napi_set_element(env.raw(), array, slot, undefined);
      }
    }
  }

  /// `values[slot]`.
  pub fn get(&self, env: &Env, slot: u32) -> Result<sys::napi_value> {
    let array = self.array(env)?;
    let mut v = ptr::null_mut();
    // SAFETY: handles of the current env.
    napi::check_status!(unsafe { sys::napi_get_element(env.raw(), array, slot, &mut v) })?;
    Ok(v)
  }

  /// `values[slot] = value`.
  pub fn put(&self, env: &Env, slot: u32, value: sys::napi_value) -> Result<()> {
    let array = self.array(env)?;
    // SAFETY: handles of the current env.
    napi::check_status!(unsafe { sys::napi_set_element(env.raw(), array, slot, value) })
  }

  /// Forgets every slot and empties the array (`length = 0`).
  pub fn reset(&mut self, env: &Env) -> Result<()> {
    self.slots.reset();
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
