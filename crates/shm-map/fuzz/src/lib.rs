//! Shared code of the shm-map fuzz targets: header fix-ups, fuzzer-chosen
//! inputs (derived with `arbitrary`), and the two runners
//! ([`image_ops::run`], [`model_diff::run`]) the targets call, kept in a
//! library so a crash can be replayed from a plain test too.

use std::sync::OnceLock;

use lrukit_shm_map::{Eviction, Options, SharedMap};

pub mod image_ops;
pub mod inputs;
pub mod model_diff;

/// The fixed clock every runner starts from (ms since the epoch).
pub const CLOCK0: u64 = 1_700_000_000_000;

/// Header format facts the `header` target mirrors to get past the magic,
/// version and checksum checks (layout version 3). If the format changes,
/// the fix-up stops helping — the target still runs, only less deep.
const MAGIC: &[u8; 8] = b"LRUKITSM";
const VERSION: u32 = 3;
const H_INIT: usize = 12;
const H_CHECKSUM: usize = 120;
const CHECKSUM_SEED: u64 = 0x6c72_756b_6974_5331;

/// Writes magic and version into `h` and recomputes its checksum (over the
/// first 120 bytes with the init word taken as 0).
pub fn fix_header(h: &mut [u8; 128]) {
  h[..8].copy_from_slice(MAGIC);
  h[8..12].copy_from_slice(&VERSION.to_le_bytes());
  let mut fields = [0u8; H_CHECKSUM];
  fields.copy_from_slice(&h[..H_CHECKSUM]);
  fields[H_INIT..H_INIT + 4].fill(0);
  let sum = xxhash_rust::xxh3::xxh3_64_with_seed(&fields, CHECKSUM_SEED);
  h[H_CHECKSUM..].copy_from_slice(&sum.to_le_bytes());
}

/// The header of a small valid in-memory map, and its segment length.
pub fn valid_header() -> ([u8; 128], u64) {
  static H: OnceLock<([u8; 128], u64)> = OnceLock::new();
  *H.get_or_init(|| {
    let m = SharedMap::in_memory(&Options {
      capacity: Some(100),
      max_key_bytes: 32,
      max_value_bytes: 64,
      shards: Some(4),
      eviction: Eviction::Lru,
      default_ttl_ms: 1000,
      hash_seed: Some(1),
      ..Options::default()
    })
    .expect("a valid in-memory map");
    let mut h = [0u8; 128];
    for (i, b) in h.iter_mut().enumerate() {
      *b = m.debug_read(i);
    }
    (h, m.segment_len() as u64)
  })
}

/// Error codes documented in `src/error.rs` (plus `EUNINIT` and `EPERM`,
/// which `open` returns and the table does not list yet).
pub const DOCUMENTED: &[&str] = &[
  "EEXIST",
  "ENOENT",
  "EINCOMPAT",
  "EINVAL",
  "ENAME",
  "EFULL",
  "EKEYTOOLONG",
  "EVALUETOOLONG",
  "ETYPE",
  "ERANGE",
  "ECORRUPT",
  "ETIMEDOUT",
  "EIO",
  "EUNINIT",
  "EPERM",
];
