//! Segment layout: constants, the header format and the private, validated
//! [`Layout`] every offset is computed from.

use crate::error::{eincompat, einval, Error};

pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"LRUKITSM");
pub(crate) const LAYOUT_VERSION: u32 = 4;
/// Hash id: xxh3-64 (XXH3 output is frozen since xxHash 0.8.0), seeded with
/// the segment's own random seed (kept in the header, read by every process),
/// so nobody can craft keys that all land in one bucket of another's map.
pub(crate) const HASH_ALGO_XXH3_64: u32 = 1;
/// Fixed seed of the header checksum (integrity, not secrecy).
pub(crate) const CHECKSUM_SEED: u64 = 0x6c72_756b_6974_5331; // "lrukitS1"

pub(crate) const INIT_BUSY: u32 = 0;
pub(crate) const INIT_READY: u32 = 1;

pub(crate) const HEADER_BYTES: u64 = 4096;
pub(crate) const LANE_COUNT: u32 = 256;
pub(crate) const LANE_BYTES: u64 = 64;
pub(crate) const LANES_OFF: u64 = HEADER_BYTES;
pub(crate) const SHARDS_OFF: u64 = LANES_OFF + LANE_COUNT as u64 * LANE_BYTES;
pub(crate) const SHARD_HEADER_BYTES: u64 = 256;

/// Upper bounds (sanity, and to keep every offset far from overflowing).
pub(crate) const MAX_KEY_BYTES_LIMIT: u32 = 65_535;
pub(crate) const MAX_VALUE_BYTES_LIMIT: u32 = 64 << 20;
pub(crate) const MAX_SHARDS: u32 = 1024;
pub(crate) const MAX_TOTAL_BYTES: u64 = 1 << 40;
/// A cell stores a record offset in 8-byte units plus one in 32 bits.
pub(crate) const MAX_RING_BYTES: u64 = (u32::MAX as u64 - 1) * 8;

/// Default limits and sizing averages (see [`Sizing`]).
pub(crate) const DEFAULT_MAX_KEY_BYTES: u32 = 256;
pub(crate) const DEFAULT_MAX_VALUE_BYTES: u32 = 1 << 20;
pub(crate) const DEFAULT_AVG_KEY_BYTES: u32 = 32;
pub(crate) const DEFAULT_AVG_VALUE_BYTES: u32 = 256;

// ---- header field offsets (bytes from the segment base) -------------------
pub(crate) const H_MAGIC: u64 = 0;
pub(crate) const H_VERSION: u64 = 8; // u32
pub(crate) const H_INIT: u64 = 12; // u32, atomic
pub(crate) const H_HASH_ALGO: u64 = 16; // u32
pub(crate) const H_LOCK_KIND: u64 = 20; // u32
pub(crate) const H_HASH_SEED: u64 = 24;
pub(crate) const H_TOTAL: u64 = 32;
pub(crate) const H_CAPACITY: u64 = 40; // u32, 0 = no entry cap asked for
pub(crate) const H_SHARDS: u64 = 44; // u32
pub(crate) const H_CAP_PER_SHARD: u64 = 48; // u32
pub(crate) const H_CELLS: u64 = 52; // u32
pub(crate) const H_MAX_KEY: u64 = 56; // u32
pub(crate) const H_MAX_VALUE: u64 = 60; // u32
pub(crate) const H_RING_BYTES: u64 = 64;
pub(crate) const H_DEFAULT_TTL: u64 = 72;
pub(crate) const H_CREATED_AT: u64 = 80;
pub(crate) const H_CREATOR_PID: u64 = 88; // u32
pub(crate) const H_EVICTION: u64 = 92; // u32
pub(crate) const H_SHARD_STRIDE: u64 = 96;
pub(crate) const H_SHARDS_OFF: u64 = 104;
pub(crate) const H_LANES: u64 = 112; // u32
pub(crate) const H_SHARD_HDR: u64 = 116; // u32
pub(crate) const H_CHECKSUM: u64 = 120;
/// Bytes covered by the checksum (with the init word taken as 0).
pub(crate) const H_CHECKED_BYTES: usize = 120;

// ---- shard header field offsets (bytes from the shard base) ----------------
/// The lock: a `pthread_mutex_t` (robust) or the lease word. 64 bytes.
pub(crate) const S_LOCK: u64 = 0;
pub(crate) const S_LOCK_BYTES: u64 = 64;
pub(crate) const S_SEQ: u64 = 64;
/// Entries indexed (occupied cells).
pub(crate) const S_LEN: u64 = 72;
/// Ring positions: bytes ever appended / reclaimed (see `ring`).
pub(crate) const S_HEAD: u64 = 80;
pub(crate) const S_TAIL: u64 = 88;
pub(crate) const S_WRITE_SEQ: u64 = 96;
pub(crate) const S_NEXT_EXPIRY: u64 = 104;
pub(crate) const S_LAST_SCAN: u64 = 112;
/// Re-init word of the robust mutex: `epoch << 32 | claimer pid` (see `lock`).
pub(crate) const S_REINIT: u64 = 120;
pub(crate) const S_SETS: u64 = 128;
pub(crate) const S_DELETES: u64 = 136;
/// Entries evicted to make room in the ring.
pub(crate) const S_EVICT_ROOM: u64 = 144;
pub(crate) const S_EXPIRATIONS: u64 = 152;
pub(crate) const S_LOCK_RECOVERIES: u64 = 160;
pub(crate) const S_REPAIRS: u64 = 168;
/// The pid namespace of the last locker (see `lock`).
pub(crate) const S_HOLDER_NS: u64 = 176;
/// Key + value bytes of the live entries.
pub(crate) const S_LIVE_BYTES: u64 = 184;
/// Record bytes (headers and padding included) of the live entries.
pub(crate) const S_LIVE_RECORD_BYTES: u64 = 192;
/// Entries evicted because the shard held its most entries.
pub(crate) const S_EVICT_CAPACITY: u64 = 200;
/// Entries evicted by `evict_older_than`.
pub(crate) const S_EVICT_MANUAL: u64 = 208;
/// Live records moved from the tail to the head (second chances and
/// reclaiming the garbage behind them).
pub(crate) const S_MOVES: u64 = 216;

/// Top bit of a cell's access word: "read since the last time a writer
/// wrote or moved this entry". The low 63 bits are the last access in ms.
pub(crate) const ACCESS_REF: u64 = 1 << 63;
pub(crate) const ACCESS_MS: u64 = ACCESS_REF - 1;

/// What happens when a write finds its shard full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Eviction {
  /// Evict the least recently used entry of the shard (approximate LRU with
  /// second chance, see the crate docs).
  #[default]
  Lru,
  /// Refuse the write with `EFULL`.
  None,
}

impl Eviction {
  pub(crate) fn id(self) -> u32 {
    match self {
      Eviction::Lru => 1,
      Eviction::None => 2,
    }
  }
  pub(crate) fn from_id(id: u32) -> Option<Self> {
    match id {
      1 => Some(Eviction::Lru),
      2 => Some(Eviction::None),
      _ => None,
    }
  }
}

#[inline]
pub(crate) const fn round_up(v: u64, to: u64) -> u64 {
  v.div_ceil(to) * to
}

/// What a new map is sized from (the creation options that decide the
/// layout). See the crate docs, "Sizing".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sizing {
  pub capacity: Option<u32>,
  pub memory_size: Option<u64>,
  pub avg_key: u32,
  pub avg_value: u32,
  pub max_key: u32,
  pub max_value: u32,
  pub shards: Option<u32>,
  pub eviction: Eviction,
  pub default_ttl_ms: u64,
  pub seed: u64,
}

/// Everything derived from the creation parameters. Built once (at create
/// from options, at open from the validated header) and never re-read from
/// shared memory afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
  /// The entry cap asked for (0: none, only memory limits the entries).
  pub capacity: u32,
  pub shards: u32,
  /// `64 - log2(shards)`; the shard is `hash >> shard_shift` (0 when 1 shard).
  pub shard_shift: u32,
  /// Entries a shard may index.
  pub cap_per_shard: u32,
  /// Index cells per shard (more than `cap_per_shard`: open addressing
  /// needs empty cells).
  pub cells: u32,
  /// Ring bytes per shard (a multiple of 64).
  pub ring: u64,
  pub max_key: u32,
  pub max_value: u32,
  pub eviction: Eviction,
  pub default_ttl_ms: u64,
  pub cells_off: u64,
  pub ring_off: u64,
  pub shard_stride: u64,
  pub total: u64,
  pub lock_kind: u32,
  /// The segment's hash seed.
  pub seed: u64,
}

/// Bytes of the record of an entry with `key` and `value` bytes (header,
/// key and value each padded to 8, at least one value word).
#[inline]
pub(crate) const fn record_bytes(key: u32, value: u32) -> u64 {
  crate::ring::REC_HEADER
    + round_up(key as u64, 8)
    + round_up(if value < 8 { 8 } else { value } as u64, 8)
}

/// Index cells for `cap` entries: a load factor of at most 3/4, and always
/// at least one empty cell.
#[inline]
pub(crate) const fn cells_for(cap: u32) -> u64 {
  (cap as u64 * 4).div_ceil(3) + 1
}

fn index_bytes(cells: u64) -> u64 {
  round_up(cells * crate::index::CELL_BYTES, 64)
}

impl Layout {
  /// The layout for a new map (the creation policy: see "Sizing").
  pub(crate) fn compute(z: &Sizing) -> Result<Layout, Error> {
    if z.max_key == 0 || z.max_key > MAX_KEY_BYTES_LIMIT {
      return Err(einval(format!(
        "max_key_bytes must be in 1..={MAX_KEY_BYTES_LIMIT}"
      )));
    }
    if z.max_value > MAX_VALUE_BYTES_LIMIT {
      return Err(einval(format!(
        "max_value_bytes must be at most {MAX_VALUE_BYTES_LIMIT}"
      )));
    }
    // Averages only size the map; they never exceed the limits.
    let avg = record_bytes(z.avg_key.min(z.max_key), z.avg_value.min(z.max_value));
    let (entries_hint, bytes_hint) = match (z.capacity, z.memory_size) {
      (Some(0), _) => return Err(einval("capacity must be at least 1")),
      (_, Some(m)) if m < SHARDS_OFF + 1024 => {
        return Err(einval(format!(
          "memory_size {m} is too small: a map needs at least {} bytes",
          SHARDS_OFF + 1024
        )))
      }
      (_, Some(m)) if m > MAX_TOTAL_BYTES => {
        return Err(einval(format!(
          "memory_size must be at most {MAX_TOTAL_BYTES} bytes"
        )))
      }
      (Some(c), None) => (c as u64, c as u64 * avg),
      (c, Some(m)) => (c.map_or(m / avg, |c| c as u64), m),
      (None, None) => return Err(einval("set a capacity or a memory_size")),
    };
    let shards = match z.shards {
      Some(s) => {
        if s == 0 || !s.is_power_of_two() || s > MAX_SHARDS {
          return Err(einval(format!(
            "shards must be a power of two in 1..={MAX_SHARDS}"
          )));
        }
        if z.capacity.is_some_and(|c| s > c) {
          return Err(einval("shards must not exceed capacity"));
        }
        s
      }
      None => default_shards(entries_hint, bytes_hint),
    };
    let too_large = || {
      einval(format!(
        "the map would need more than {MAX_TOTAL_BYTES} bytes of shared memory"
      ))
    };
    let (cap_per_shard, ring) = match (z.capacity, z.memory_size) {
      (Some(c), None) => {
        let cap = c.div_ceil(shards);
        let base = (cap as u64).checked_mul(avg).ok_or_else(too_large)?;
        // Plus the free space writes keep (see `ring::Guard::reserve`), so
        // that `cap` entries of the average size fit; a `None` map twice
        // that, so that a full map can still replace an entry (the new copy
        // is written before the old one is dropped).
        let extra = match z.eviction {
          Eviction::None => 2 * record_bytes(z.max_key, z.max_value).min(base),
          Eviction::Lru => (base / 7).min(8192),
        };
        (cap, round_up((base + extra).max(1024), 64))
      }
      (c, Some(m)) => {
        let budget = (m - SHARDS_OFF) / shards as u64;
        let room = budget
          .checked_sub(SHARD_HEADER_BYTES)
          .ok_or_else(|| einval(format!("memory_size {m} is too small for {shards} shards")))?;
        let cap = match c {
          Some(c) => c.div_ceil(shards) as u64,
          // Entries of the average size fill the ring as the index fills:
          // room = cap × avg + cells_for(cap) × 16.
          None => (room * 3 / (3 * avg + 4 * crate::index::CELL_BYTES)).max(1),
        };
        let cap = u32::try_from(cap.min(u32::MAX as u64 / 2)).map_err(|_| too_large())?;
        let ring = room
          .checked_sub(index_bytes(cells_for(cap)))
          .map(|r| r / 64 * 64)
          .filter(|&r| r >= 1024)
          .ok_or_else(|| {
            einval(format!(
              "memory_size {m} is too small for an index of {} entries per shard and room for them",
              cap
            ))
          })?;
        (cap, ring)
      }
      (None, None) => unreachable!(),
    };
    let cells = u32::try_from(cells_for(cap_per_shard)).map_err(|_| too_large())?;
    Self::from_parts(
      z.capacity.unwrap_or(0),
      shards,
      cap_per_shard,
      cells,
      ring,
      z.max_key,
      z.max_value,
      z.eviction,
      z.default_ttl_ms,
      z.seed,
    )
  }

  /// Checks a layout's parameters and derives its offsets (at create, and at
  /// open from the header's fields).
  #[allow(clippy::too_many_arguments)]
  pub(crate) fn from_parts(
    capacity: u32,
    shards: u32,
    cap_per_shard: u32,
    cells: u32,
    ring: u64,
    max_key: u32,
    max_value: u32,
    eviction: Eviction,
    default_ttl_ms: u64,
    seed: u64,
  ) -> Result<Layout, Error> {
    if shards == 0 || !shards.is_power_of_two() || shards > MAX_SHARDS {
      return Err(einval(format!(
        "shards must be a power of two in 1..={MAX_SHARDS}"
      )));
    }
    if max_key == 0 || max_key > MAX_KEY_BYTES_LIMIT || max_value > MAX_VALUE_BYTES_LIMIT {
      return Err(einval("key or value limit out of range"));
    }
    if cap_per_shard == 0 || (cells as u64) < cells_for(cap_per_shard) {
      return Err(einval(format!(
        "{cells} index cells cannot hold {cap_per_shard} entries"
      )));
    }
    if ring < 1024 || !ring.is_multiple_of(64) || ring > MAX_RING_BYTES {
      return Err(einval(format!(
        "ring of {ring} bytes per shard: must be a multiple of 64 in 1024..={MAX_RING_BYTES}"
      )));
    }
    let cells_off = SHARD_HEADER_BYTES;
    let ring_off = cells_off + index_bytes(cells as u64);
    let shard_stride = ring_off + ring;
    let total = (shards as u64)
      .checked_mul(shard_stride)
      .and_then(|b| b.checked_add(SHARDS_OFF))
      .filter(|&t| t <= MAX_TOTAL_BYTES && t <= isize::MAX as u64)
      .ok_or_else(|| {
        einval(format!(
          "the map would need more than {MAX_TOTAL_BYTES} bytes of shared memory"
        ))
      })?;
    Ok(Layout {
      capacity,
      shards,
      shard_shift: 64 - shards.trailing_zeros(),
      cap_per_shard,
      cells,
      ring,
      max_key,
      max_value,
      eviction,
      default_ttl_ms,
      cells_off,
      ring_off,
      shard_stride,
      total,
      lock_kind: crate::lock::LOCK_KIND,
      seed,
    })
  }

  #[inline]
  pub(crate) fn shard_of(&self, hash: u64) -> u32 {
    if self.shards == 1 {
      0
    } else {
      (hash >> self.shard_shift) as u32
    }
  }

  /// The cell a probe for `hash` starts at: the low 32 bits reduced to
  /// `0..cells` by a multiply-shift (independent of the shard's top bits).
  #[inline]
  pub(crate) fn home_of(&self, hash: u64) -> u32 {
    ((hash as u32 as u64 * self.cells as u64) >> 32) as u32
  }

  #[inline]
  pub(crate) fn shard_base(&self, shard: u32) -> u64 {
    SHARDS_OFF + shard as u64 * self.shard_stride
  }

  /// Whether an entry of `key` and `value` bytes (its stored length) is
  /// small enough for this map's rings: its record takes at most half of a
  /// shard's ring. (The key and value limits are checked on their own.)
  #[inline]
  pub(crate) fn fits(&self, key: usize, value: usize) -> bool {
    key <= MAX_KEY_BYTES_LIMIT as usize
      && value <= MAX_VALUE_BYTES_LIMIT as usize
      && record_bytes(key as u32, value as u32) <= self.ring / 2
  }

  /// The header image for this layout (fields only, no checksum / init word).
  pub(crate) fn header_fields(
    &self,
    created_at_ms: u64,
    creator_pid: u32,
  ) -> [u8; H_CHECKED_BYTES] {
    let mut h = [0u8; H_CHECKED_BYTES];
    let mut put = |off: u64, bytes: &[u8]| {
      h[off as usize..off as usize + bytes.len()].copy_from_slice(bytes);
    };
    put(H_MAGIC, &MAGIC.to_le_bytes());
    put(H_VERSION, &LAYOUT_VERSION.to_le_bytes());
    put(H_HASH_ALGO, &HASH_ALGO_XXH3_64.to_le_bytes());
    put(H_LOCK_KIND, &self.lock_kind.to_le_bytes());
    put(H_HASH_SEED, &self.seed.to_le_bytes());
    put(H_TOTAL, &self.total.to_le_bytes());
    put(H_CAPACITY, &self.capacity.to_le_bytes());
    put(H_SHARDS, &self.shards.to_le_bytes());
    put(H_CAP_PER_SHARD, &self.cap_per_shard.to_le_bytes());
    put(H_CELLS, &self.cells.to_le_bytes());
    put(H_MAX_KEY, &self.max_key.to_le_bytes());
    put(H_MAX_VALUE, &self.max_value.to_le_bytes());
    put(H_RING_BYTES, &self.ring.to_le_bytes());
    put(H_DEFAULT_TTL, &self.default_ttl_ms.to_le_bytes());
    put(H_CREATED_AT, &created_at_ms.to_le_bytes());
    put(H_CREATOR_PID, &creator_pid.to_le_bytes());
    put(H_EVICTION, &self.eviction.id().to_le_bytes());
    put(H_SHARD_STRIDE, &self.shard_stride.to_le_bytes());
    put(H_SHARDS_OFF, &SHARDS_OFF.to_le_bytes());
    put(H_LANES, &LANE_COUNT.to_le_bytes());
    put(H_SHARD_HDR, &(SHARD_HEADER_BYTES as u32).to_le_bytes());
    h
  }

  /// Parses and validates a header image read from a segment of `seg_len`
  /// bytes. Every field is checked; the first mismatch names the field.
  pub(crate) fn from_header(h: &[u8; 128], seg_len: u64) -> Result<(Layout, u64, u32), Error> {
    let u32_at =
      |off: u64| u32::from_le_bytes(h[off as usize..off as usize + 4].try_into().unwrap());
    let u64_at =
      |off: u64| u64::from_le_bytes(h[off as usize..off as usize + 8].try_into().unwrap());
    if u64_at(H_MAGIC) != MAGIC {
      return Err(eincompat("not an lrukit shared map (bad magic)"));
    }
    let version = u32_at(H_VERSION);
    if version != LAYOUT_VERSION {
      return Err(eincompat(format!(
        "layout version {version}, this build reads version {LAYOUT_VERSION}"
      )));
    }
    let mut fields = [0u8; H_CHECKED_BYTES];
    fields.copy_from_slice(&h[..H_CHECKED_BYTES]);
    fields[H_INIT as usize..H_INIT as usize + 4].fill(0);
    if header_checksum(&fields) != u64_at(H_CHECKSUM) {
      return Err(eincompat("header checksum mismatch (damaged header)"));
    }
    if u32_at(H_HASH_ALGO) != HASH_ALGO_XXH3_64 {
      return Err(eincompat("hash function differs from this build"));
    }
    let lock_kind = u32_at(H_LOCK_KIND);
    if lock_kind != crate::lock::LOCK_KIND {
      return Err(eincompat(format!(
        "lock kind {lock_kind} ({}) differs from this build's {} ({}): processes built for different C libraries or lock features cannot share a map",
        crate::lock::lock_kind_name(lock_kind),
        crate::lock::LOCK_KIND,
        crate::lock::lock_kind_name(crate::lock::LOCK_KIND)
      )));
    }
    let eviction = Eviction::from_id(u32_at(H_EVICTION))
      .ok_or_else(|| eincompat("field eviction: unknown mode"))?;
    let layout = Layout::from_parts(
      u32_at(H_CAPACITY),
      u32_at(H_SHARDS),
      u32_at(H_CAP_PER_SHARD),
      u32_at(H_CELLS),
      u64_at(H_RING_BYTES),
      u32_at(H_MAX_KEY),
      u32_at(H_MAX_VALUE),
      eviction,
      u64_at(H_DEFAULT_TTL),
      u64_at(H_HASH_SEED),
    )
    .map_err(|e| eincompat(format!("header parameters are invalid: {}", e.message)))?;
    let check = |field: &str, stored: u64, expected: u64| -> Result<(), Error> {
      if stored != expected {
        Err(eincompat(format!(
          "field {field}: stored {stored}, expected {expected} from the other fields"
        )))
      } else {
        Ok(())
      }
    };
    check("shard_stride", u64_at(H_SHARD_STRIDE), layout.shard_stride)?;
    check("shards_offset", u64_at(H_SHARDS_OFF), SHARDS_OFF)?;
    check("lane_count", u32_at(H_LANES) as u64, LANE_COUNT as u64)?;
    check(
      "shard_header_bytes",
      u32_at(H_SHARD_HDR) as u64,
      SHARD_HEADER_BYTES,
    )?;
    check("total_size", u64_at(H_TOTAL), layout.total)?;
    if seg_len < layout.total {
      return Err(eincompat(format!(
        "field total_size: {} bytes but the segment has only {seg_len}",
        layout.total
      )));
    }
    Ok((layout, u64_at(H_CREATED_AT), u32_at(H_CREATOR_PID)))
  }
}

pub(crate) fn header_checksum(fields: &[u8; H_CHECKED_BYTES]) -> u64 {
  xxhash_rust::xxh3::xxh3_64_with_seed(fields, CHECKSUM_SEED)
}

/// Entries a default shard indexes at least. Limits are per shard and
/// keys land in shards by hash, so a small map split finely would evict
/// while far from full (3 keys in a 10-entry map of 8 shards collide 1.6% of
/// the time).
pub(crate) const MIN_DEFAULT_SHARD_ENTRIES: u64 = 256;
/// Ring bytes a default shard has at least, so that one large value takes
/// a small part of its shard (a 64 MiB map has 16 shards of 4 MiB).
pub(crate) const MIN_DEFAULT_SHARD_BYTES: u64 = 4 << 20;

/// Default shard count for a map of about `entries` entries in `bytes`:
/// `max(16, next_power_of_two(2 * cpus))` capped at 64, and never so many
/// that a shard would index fewer than [`MIN_DEFAULT_SHARD_ENTRIES`] or hold
/// fewer than [`MIN_DEFAULT_SHARD_BYTES`] (small maps have one shard).
pub(crate) fn default_shards(entries: u64, bytes: u64) -> u32 {
  let cpus = std::thread::available_parallelism()
    .map(|n| n.get())
    .unwrap_or(1) as u32;
  let want = (2 * cpus).next_power_of_two().clamp(16, 64) as u64;
  let most = (entries / MIN_DEFAULT_SHARD_ENTRIES)
    .min(bytes / MIN_DEFAULT_SHARD_BYTES)
    .clamp(1, want);
  1u32 << (63 - most.leading_zeros())
}

/// A fresh random hash seed for a new segment.
pub(crate) fn random_seed() -> u64 {
  // A seed from the OS; if it cannot give one, mix the clock, pid and an
  // address (still unknown to other users, who cannot read the segment).
  getrandom::u64().unwrap_or_else(|_| {
    let t = std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .map(|d| d.as_nanos() as u64)
      .unwrap_or(0);
    let local = 0u8;
    xxhash_rust::xxh3::xxh3_64_with_seed(
      &[
        t.to_le_bytes(),
        (std::process::id() as u64).to_le_bytes(),
        (&local as *const u8 as u64).to_le_bytes(),
      ]
      .concat(),
      CHECKSUM_SEED,
    )
  })
}

impl Layout {
  /// The key hash of this segment.
  #[inline]
  pub(crate) fn hash(&self, key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, self.seed)
  }
}
