//! Operating-system glue: named segments, permissions, page reservation,
//! process liveness and the wall clock.
//!
//! One module per concern, re-exported here so callers name `sys::*`:
//! `shm` (named segments and their mappings), `process` (pids and
//! liveness, used by the locks) and `clock` (wall-clock time).

mod clock;
mod process;
mod shm;

pub(crate) use clock::*;
pub(crate) use process::*;
pub(crate) use shm::*;
