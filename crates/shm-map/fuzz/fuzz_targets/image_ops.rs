//! The map over damaged memory plus an operation script: see
//! `shm_fuzz::image_ops`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: shm_fuzz::image_ops::Input| {
  shm_fuzz::image_ops::run(&input);
});
