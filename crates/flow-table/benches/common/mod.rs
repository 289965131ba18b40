//! What the flow-table benchmarks share: the same keys and lookups.

/// Flow keys: spread-out 64-bit values (as hashed 5-tuples would be).
pub fn keys(n: usize) -> Vec<u64> {
  (0..n as u64)
    .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    .collect()
}

/// A fixed pseudo-random sample of `keys` for lookups.
pub fn lookups(keys: &[u64], n: usize) -> Vec<u64> {
  let mut x = 0x2545_F491_4F6C_DD1Du64;
  (0..n)
    .map(|_| {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      keys[(x % keys.len() as u64) as usize]
    })
    .collect()
}
