//! lrukit's encodings of keys and values, with no JavaScript engine in
//! sight: the binding converts JavaScript values to and from these types,
//! the caches store them.
//!
//! Both encodings are part of SharedMap's segment format (processes built
//! from different versions read each other's entries), so a change to either
//! is a change of `lrukit-shm-map`'s layout version.
//!
//! - [`key`]: a key is one tag byte and its payload. Keys of different types
//!   never collide (`'1'` and `1` are different keys, as in a `Map`), and
//!   numbers are compared with SameValueZero (`-0` is `0`, every NaN is one
//!   NaN).
//! - [`value`]: a stored value is a type tag (u32) and either one inline
//!   little-endian word (number, bigint, boolean, null) or a byte string
//!   (string, bytes, JSON).
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

pub mod key;
pub mod value;
