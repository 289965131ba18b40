//! `debug_parse_header` (what `open` runs on a segment's first 128 bytes)
//! over arbitrary bytes and an arbitrary segment length. Property: it never
//! panics, and it returns `Ok` or `EINCOMPAT`.
//!
//! Raw bytes almost never pass the magic, version and checksum checks, so
//! two more modes reach the field checks behind them: the fuzzer's bytes
//! with magic, version and checksum fixed up, and a valid header (of an
//! in-memory map) XORed with the fuzzer's bytes, checksum fixed up.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shm_fuzz::{fix_header, valid_header};

#[derive(Arbitrary, Debug)]
enum Mode {
  Raw,
  Fixed,
  Mutated,
}

#[derive(Arbitrary, Debug)]
struct Input {
  mode: Mode,
  bytes: [u8; 128],
  segment_len: u64,
  /// Use the valid header's own total size as the segment length.
  exact_len: bool,
}

fuzz_target!(|input: Input| {
  let mut h = input.bytes;
  let mut len = input.segment_len;
  match input.mode {
    Mode::Raw => {}
    Mode::Fixed => fix_header(&mut h),
    Mode::Mutated => {
      let (valid, total) = valid_header();
      for (b, v) in h.iter_mut().zip(valid.iter()) {
        *b ^= v;
      }
      fix_header(&mut h);
      if input.exact_len {
        len = total;
      }
    }
  }
  if let Err(e) = lrukit_shm_map::debug_parse_header(&h, len) {
    assert_eq!(e.code, "EINCOMPAT", "{e}");
  }
});
