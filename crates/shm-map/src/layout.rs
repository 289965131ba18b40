//! Segment layout: constants, the header format and the private, validated
//! [`Layout`] every offset is computed from.

use crate::error::{eincompat, einval, Error};

pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"LRUKITSM");
pub(crate) const LAYOUT_VERSION: u32 = 3;
/// Hash id: xxh3-64 (XXH3 output is frozen since xxHash 0.8.0), seeded with
/// the segment's own random seed (kept in the header, read by every process),
/// so nobody can craft keys that all land in one bucket of another's map.
pub(crate) const HASH_ALGO_XXH3_64: u32 = 1;
/// Fixed seed of the header checksum (integrity, not secrecy).
pub(crate) const CHECKSUM_SEED: u64 = 0x6c72_756b_6974_5331; // "lrukitS1"

/// The empty link / empty bucket sentinel.
pub(crate) const EMPTY: u32 = u32::MAX;

pub(crate) const INIT_BUSY: u32 = 0;
pub(crate) const INIT_READY: u32 = 1;

pub(crate) const HEADER_BYTES: u64 = 4096;
pub(crate) const LANE_COUNT: u32 = 256;
pub(crate) const LANE_BYTES: u64 = 64;
pub(crate) const LANES_OFF: u64 = HEADER_BYTES;
pub(crate) const SHARDS_OFF: u64 = LANES_OFF + LANE_COUNT as u64 * LANE_BYTES;
pub(crate) const SHARD_HEADER_BYTES: u64 = 256;
pub(crate) const SLOT_HEADER_BYTES: u64 = 64;

/// Upper bounds (sanity, and to keep every offset far from overflowing).
pub(crate) const MAX_KEY_BYTES_LIMIT: u32 = 65_535;
pub(crate) const MAX_VALUE_BYTES_LIMIT: u32 = 64 << 20;
pub(crate) const MAX_SHARDS: u32 = 1024;
pub(crate) const MAX_TOTAL_BYTES: u64 = 1 << 40;

// ---- header field offsets (bytes from the segment base) -------------------
pub(crate) const H_MAGIC: u64 = 0;
pub(crate) const H_VERSION: u64 = 8; // u32
pub(crate) const H_INIT: u64 = 12; // u32, atomic
pub(crate) const H_HASH_ALGO: u64 = 16; // u32
pub(crate) const H_LOCK_KIND: u64 = 20; // u32
pub(crate) const H_HASH_SEED: u64 = 24;
pub(crate) const H_TOTAL: u64 = 32;
pub(crate) const H_CAPACITY: u64 = 40; // u32
pub(crate) const H_SHARDS: u64 = 44; // u32
pub(crate) const H_SLOTS: u64 = 48; // u32
pub(crate) const H_BUCKETS: u64 = 52; // u32
pub(crate) const H_MAX_KEY: u64 = 56; // u32
pub(crate) const H_MAX_VALUE: u64 = 60; // u32
pub(crate) const H_SLOT_SIZE: u64 = 64; // u32
pub(crate) const H_EVICTION: u64 = 68; // u32
pub(crate) const H_DEFAULT_TTL: u64 = 72;
pub(crate) const H_CREATED_AT: u64 = 80;
pub(crate) const H_CREATOR_PID: u64 = 88; // u32
pub(crate) const H_CAP_PER_SHARD: u64 = 92; // u32
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
pub(crate) const S_LEN: u64 = 72;
pub(crate) const S_FREE: u64 = 80; // u32
pub(crate) const S_LRU_HEAD: u64 = 84; // u32
pub(crate) const S_LRU_TAIL: u64 = 88; // u32
pub(crate) const S_WRITE_SEQ: u64 = 96;
pub(crate) const S_NEXT_EXPIRY: u64 = 104;
pub(crate) const S_LAST_SCAN: u64 = 112;
/// Re-init word of the robust mutex: `epoch << 32 | claimer pid` (see `lock`).
pub(crate) const S_REINIT: u64 = 120;
pub(crate) const S_SETS: u64 = 128;
pub(crate) const S_DELETES: u64 = 136;
pub(crate) const S_EVICTIONS: u64 = 144;
pub(crate) const S_EXPIRATIONS: u64 = 152;
pub(crate) const S_LOCK_RECOVERIES: u64 = 160;
pub(crate) const S_REPAIRS: u64 = 168;
/// The pid namespace of the last locker (see `lock`).
pub(crate) const S_HOLDER_NS: u64 = 176;

// ---- slot field offsets (bytes from the slot base) -------------------------
pub(crate) const F_STATE: u64 = 0; // u32
pub(crate) const F_KEY_LEN: u64 = 4; // u32
pub(crate) const F_HASH: u64 = 8;
pub(crate) const F_NEXT: u64 = 16; // u32: hash chain, or free list
pub(crate) const F_VALUE_LEN: u64 = 20; // u32
pub(crate) const F_PREV: u64 = 24; // u32: LRU towards head
pub(crate) const F_LNEXT: u64 = 28; // u32: LRU towards tail
pub(crate) const F_TAG: u64 = 32; // u32
pub(crate) const F_VERSION: u64 = 40;
pub(crate) const F_EXPIRES: u64 = 48;
pub(crate) const F_ACCESS: u64 = 56;
pub(crate) const F_KEY: u64 = SLOT_HEADER_BYTES;

pub(crate) const STATE_FREE: u32 = 0;
pub(crate) const STATE_USED: u32 = 1;
pub(crate) const STATE_WRITING: u32 = 2;

/// Top bit of the access word: "read since the last time a writer linked or
/// second-chanced this entry". The low 63 bits are the last access in ms.
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

/// Everything derived from the creation parameters. Built once (at create
/// from options, at open from the validated header) and never re-read from
/// shared memory afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
  pub capacity: u32,
  pub shards: u32,
  /// `64 - log2(shards)`; the shard is `hash >> shard_shift` (0 when 1 shard).
  pub shard_shift: u32,
  /// Entries a shard may hold (`ceil(capacity / shards)`).
  pub cap_per_shard: u32,
  /// Physical slots per shard: `cap_per_shard + 1`, the spare slot lets an
  /// update write its new copy before the old one is freed even when full.
  pub slots: u32,
  pub buckets: u32,
  pub max_key: u32,
  pub max_value: u32,
  /// Bytes reserved for the value (`max(max_value, 8)` rounded up to 8).
  pub value_area: u32,
  pub key_area: u32,
  pub slot_size: u64,
  pub eviction: Eviction,
  pub default_ttl_ms: u64,
  pub buckets_off: u64,
  pub slots_off: u64,
  pub shard_stride: u64,
  pub total: u64,
  pub lock_kind: u32,
  /// The segment's hash seed.
  pub seed: u64,
}

impl Layout {
  pub(crate) fn compute(
    capacity: u32,
    max_key: u32,
    max_value: u32,
    shards: Option<u32>,
    eviction: Eviction,
    default_ttl_ms: u64,
    seed: u64,
  ) -> Result<Layout, Error> {
    if capacity == 0 {
      return Err(einval("capacity must be at least 1"));
    }
    if max_key == 0 || max_key > MAX_KEY_BYTES_LIMIT {
      return Err(einval(format!(
        "max_key_bytes must be in 1..={MAX_KEY_BYTES_LIMIT}"
      )));
    }
    if max_value > MAX_VALUE_BYTES_LIMIT {
      return Err(einval(format!(
        "max_value_bytes must be at most {MAX_VALUE_BYTES_LIMIT}"
      )));
    }
    let shards = match shards {
      Some(s) => {
        if s == 0 || !s.is_power_of_two() || s > MAX_SHARDS {
          return Err(einval(format!(
            "shards must be a power of two in 1..={MAX_SHARDS}"
          )));
        }
        if s > capacity {
          return Err(einval("shards must not exceed capacity"));
        }
        s
      }
      None => default_shards(capacity),
    };
    let cap_per_shard = capacity.div_ceil(shards);
    // EMPTY (u32::MAX) must stay out of range; +1 for the spare slot.
    if cap_per_shard >= u32::MAX - 2 {
      return Err(einval("capacity too large"));
    }
    let slots = cap_per_shard + 1;
    let buckets = slots
      .checked_next_power_of_two()
      .ok_or_else(|| einval("capacity too large"))?;
    let key_area = round_up(max_key as u64, 8) as u32;
    let value_area = round_up(max_value.max(8) as u64, 8) as u32;
    let slot_size = SLOT_HEADER_BYTES + key_area as u64 + value_area as u64;
    let buckets_off = SHARD_HEADER_BYTES;
    let slots_off = buckets_off + round_up(buckets as u64 * 4, 64);
    // < 2^32 slots × < 2^27 bytes: no overflow in u64.
    let shard_stride = slots_off + round_up(slots as u64 * slot_size, 64);
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
      slots,
      buckets,
      max_key,
      max_value,
      value_area,
      key_area,
      slot_size,
      eviction,
      default_ttl_ms,
      buckets_off,
      slots_off,
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

  #[inline]
  pub(crate) fn bucket_of(&self, hash: u64) -> u32 {
    (hash as u32) & (self.buckets - 1)
  }

  /// The slot an entry of `hash` is written to when that slot is free (see
  /// "Home slots" in the crate docs): bits 16..48 of the hash, reduced to
  /// `0..slots` by a multiply-shift, so it is independent of the shard (top
  /// bits) and the bucket (low bits).
  #[inline]
  pub(crate) fn home_of(&self, hash: u64) -> u32 {
    (((hash >> 16) as u32 as u64 * self.slots as u64) >> 32) as u32
  }

  #[inline]
  pub(crate) fn shard_base(&self, shard: u32) -> u64 {
    SHARDS_OFF + shard as u64 * self.shard_stride
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
    put(H_SLOTS, &self.slots.to_le_bytes());
    put(H_BUCKETS, &self.buckets.to_le_bytes());
    put(H_MAX_KEY, &self.max_key.to_le_bytes());
    put(H_MAX_VALUE, &self.max_value.to_le_bytes());
    put(H_SLOT_SIZE, &(self.slot_size as u32).to_le_bytes());
    put(H_EVICTION, &self.eviction.id().to_le_bytes());
    put(H_DEFAULT_TTL, &self.default_ttl_ms.to_le_bytes());
    put(H_CREATED_AT, &created_at_ms.to_le_bytes());
    put(H_CREATOR_PID, &creator_pid.to_le_bytes());
    put(H_CAP_PER_SHARD, &self.cap_per_shard.to_le_bytes());
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
    let layout = Layout::compute(
      u32_at(H_CAPACITY),
      u32_at(H_MAX_KEY),
      u32_at(H_MAX_VALUE),
      Some(u32_at(H_SHARDS)),
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
    check(
      "slots_per_shard",
      u32_at(H_SLOTS) as u64,
      layout.slots as u64,
    )?;
    check(
      "buckets_per_shard",
      u32_at(H_BUCKETS) as u64,
      layout.buckets as u64,
    )?;
    check(
      "cap_per_shard",
      u32_at(H_CAP_PER_SHARD) as u64,
      layout.cap_per_shard as u64,
    )?;
    check("slot_size", u32_at(H_SLOT_SIZE) as u64, layout.slot_size)?;
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

/// Entries a default shard holds at least. Limits are per shard and keys
/// land in shards by hash, so a small map split finely would evict while far
/// from full (3 keys in a 10-entry map of 8 shards collide 1.6% of the time).
pub(crate) const MIN_DEFAULT_SHARD_ENTRIES: u32 = 256;

/// Default shard count: `max(16, next_power_of_two(2 * cpus))` capped at 64,
/// and never so many that a shard holds fewer than
/// [`MIN_DEFAULT_SHARD_ENTRIES`] (so maps below 512 entries have one shard).
pub(crate) fn default_shards(capacity: u32) -> u32 {
  let cpus = std::thread::available_parallelism()
    .map(|n| n.get())
    .unwrap_or(1) as u32;
  let want = (2 * cpus).next_power_of_two().clamp(16, 64);
  let by_cap = (capacity / MIN_DEFAULT_SHARD_ENTRIES).max(1);
  let max_by_cap = 1u32 << (31 - by_cap.leading_zeros());
  want.min(max_by_cap)
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
