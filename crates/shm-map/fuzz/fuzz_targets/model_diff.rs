//! An operation script on an in-memory map against a `HashMap` model: see
//! `shm_fuzz::model_diff`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: shm_fuzz::model_diff::Input| {
  shm_fuzz::model_diff::run(&input);
});
