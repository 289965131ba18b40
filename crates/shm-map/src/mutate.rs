//! The write operations of [`SharedMap`]: `set`, `add`, `incr`,
//! `compare_and_set`, `delete`, `clear`, and the eviction and expiry
//! sweeps. Each runs under its shard's lock through `write_op` (module
//! `map`), with the steps of module `writer`.

use crate::error::Error;
use crate::layout::*;
use crate::reader::expired;
use crate::value::{Encoded, Value, ValueRef, TAG_BIGINT, TAG_NUMBER};
use crate::writer::{Fault, Found, Guard};
use crate::SharedMap;

impl SharedMap {
  /// Stores `value` under `key`. `ttl_ms`: `None` = the map's default TTL,
  /// `Some(0)` = never expires, `Some(ms)` = expires `ms` from now.
  /// `EFULL` when eviction is `None` and the key's shard is full.
  pub fn set(&self, key: &[u8], value: ValueRef<'_>, ttl_ms: Option<u64>) -> Result<(), Error> {
    self.check_key(key)?;
    let enc = self.check_value(key, value)?;
    let h = self.layout.hash(key);
    let sh = self.layout.shard_of(h);
    self.write_op(sh, |g| {
      let expires = self.expiry(g.now, ttl_ms);
      g.put(h, key, &enc, expires)?;
      g.stat(S_SETS, 1);
      Ok(())
    })
  }

  /// Stores `value` only if `key` is absent (an expired entry counts as
  /// absent). Returns whether it stored.
  pub fn add(&self, key: &[u8], value: ValueRef<'_>, ttl_ms: Option<u64>) -> Result<bool, Error> {
    self.check_key(key)?;
    let enc = self.check_value(key, value)?;
    let h = self.layout.hash(key);
    let sh = self.layout.shard_of(h);
    self.write_op(sh, |g| {
      let expires = self.expiry(g.now, ttl_ms);
      if let Some(f) = g.find(h, key)? {
        if !g.is_expired(&f) {
          return Ok(false);
        }
      }
      if let Some(old) = g.put(h, key, &enc, expires)? {
        if expired(old.rec.expires, g.now) {
          g.stat(S_EXPIRATIONS, 1);
        }
      }
      g.stat(S_SETS, 1);
      Ok(true)
    })
  }

  /// Atomically adds `delta` (across processes) and returns the new value as
  /// f64. See [`incr_value`](Self::incr_value).
  pub fn incr(
    &self,
    key: &[u8],
    delta: f64,
    initial: f64,
    ttl_ms: Option<u64>,
  ) -> Result<f64, Error> {
    Ok(match self.incr_value(key, delta, initial, ttl_ms)? {
      Value::BigInt(i) => i as f64,
      Value::Number(n) => n,
      _ => unreachable!("incr_value returns numbers"),
    })
  }

  /// Atomically adds `delta`: a missing (or expired) key becomes
  /// `Number(initial + delta)` with `ttl_ms`; a `Number` adds as f64; a
  /// `BigInt` adds exactly (`ERANGE` on overflow or a non-integer delta);
  /// other types fail with `ETYPE`. An existing entry keeps its expiry.
  /// Returns the new value exactly (`Number` or `BigInt`).
  pub fn incr_value(
    &self,
    key: &[u8],
    delta: f64,
    initial: f64,
    ttl_ms: Option<u64>,
  ) -> Result<Value, Error> {
    self.check_key(key)?;
    self.check_value(key, ValueRef::Number(0.0))?;
    let h = self.layout.hash(key);
    let sh = self.layout.shard_of(h);
    self.write_op(sh, |g| {
      let found = g.find(h, key)?;
      let fresh = |g: &mut Guard<'_>| -> Result<Value, Fault> {
        let v = initial + delta;
        let enc = Encoded::Word(TAG_NUMBER, 8, v.to_bits());
        let expires = self.expiry(g.now, ttl_ms);
        if let Some(old) = g.put(h, key, &enc, expires)? {
          if expired(old.rec.expires, g.now) {
            g.stat(S_EXPIRATIONS, 1);
          }
        }
        g.stat(S_SETS, 1);
        Ok(Value::Number(v))
      };
      let f: Found = match found {
        None => return fresh(g),
        Some(f) if g.is_expired(&f) => return fresh(g),
        Some(f) => f,
      };
      let tag = f.rec.tag;
      let word = g.value_word(&f);
      let (out, new_word) = match tag {
        TAG_NUMBER => {
          let n = f64::from_bits(word) + delta;
          (Value::Number(n), n.to_bits())
        }
        TAG_BIGINT => {
          // i64 range check: -2^63 ≤ delta < 2^63, integral.
          if !(delta.fract() == 0.0
            && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&delta))
          {
            return Err(Fault::Err(Error::new(
              "ERANGE",
              format!(
                "delta {delta} is not an integer in the i64 range (the stored value is a bigint)"
              ),
            )));
          }
          let n = (word as i64).checked_add(delta as i64).ok_or_else(|| {
            Fault::Err(Error::new(
              "ERANGE",
              format!("bigint {} + {delta} overflows i64", word as i64),
            ))
          })?;
          (Value::BigInt(n), n as u64)
        }
        _ => {
          return Err(Fault::Err(Error::new(
            "ETYPE",
            "incr: the stored value is not a number or bigint",
          )))
        }
      };
      // The value store is the operation's last step, so a retry after a
      // repair never adds twice.
      g.store_word(&f, new_word);
      g.stat(S_SETS, 1);
      Ok(out)
    })
  }

  /// Replaces the value of `key` with `value` only if it currently equals
  /// `expected` (same type and bytes; numbers compare as f64, so NaN never
  /// matches). The entry keeps its expiry. Returns whether it replaced.
  pub fn compare_and_set(
    &self,
    key: &[u8],
    expected: ValueRef<'_>,
    value: ValueRef<'_>,
  ) -> Result<bool, Error> {
    if key.len() > self.layout.max_key as usize {
      return Ok(false);
    }
    let enc = self.check_value(key, value)?;
    self.if_value_equals(key, expected, |g, h, f| {
      g.put(h, key, &enc, f.rec.expires)?;
      g.stat(S_SETS, 1);
      Ok(())
    })
  }

  /// Removes `key` only if its current value equals `expected` (as in
  /// [`compare_and_set`](Self::compare_and_set)). Returns whether it removed.
  pub fn compare_and_delete(&self, key: &[u8], expected: ValueRef<'_>) -> Result<bool, Error> {
    self.if_value_equals(key, expected, |g, _, f| {
      g.remove(f);
      g.stat(S_DELETES, 1);
      Ok(())
    })
  }

  /// Under `key`'s shard lock: runs `act` on the live entry of `key` if its
  /// value equals `expected`; returns whether it ran.
  fn if_value_equals(
    &self,
    key: &[u8],
    expected: ValueRef<'_>,
    mut act: impl FnMut(&mut Guard<'_>, u64, Found) -> Result<(), Fault>,
  ) -> Result<bool, Error> {
    if key.len() > self.layout.max_key as usize {
      return Ok(false);
    }
    let want = expected.encode();
    let h = self.layout.hash(key);
    let sh = self.layout.shard_of(h);
    self.write_op(sh, |g| {
      let Some(f) = g.find(h, key)? else {
        return Ok(false);
      };
      if g.is_expired(&f) || !g.value_equals(&f, &want) {
        return Ok(false);
      }
      act(g, h, f)?;
      Ok(true)
    })
  }

  /// Removes `key`; returns whether a live entry was removed.
  pub fn delete(&self, key: &[u8]) -> Result<bool, Error> {
    if key.len() > self.layout.max_key as usize {
      return Ok(false);
    }
    let h = self.layout.hash(key);
    let sh = self.layout.shard_of(h);
    self.write_op(sh, |g| {
      let Some(f) = g.find(h, key)? else {
        return Ok(false);
      };
      let live = !g.is_expired(&f);
      g.remove(f);
      g.stat(if live { S_DELETES } else { S_EXPIRATIONS }, 1);
      Ok(live)
    })
  }

  /// Removes every entry, shard by shard.
  pub fn clear(&self) -> Result<(), Error> {
    for sh in 0..self.layout.shards {
      self.write_op(sh, |g| g.clear())?;
    }
    Ok(())
  }

  /// Evicts entries whose last access is older than `cutoff_ms` (ms since
  /// the epoch), oldest first within each shard, at most `max_evictions` in
  /// total (shards are visited in order). Access times are refreshed by
  /// reads at most once a second. Returns the number evicted.
  pub fn evict_older_than(&self, cutoff_ms: u64, max_evictions: Option<u64>) -> Result<u64, Error> {
    let mut left = max_evictions.unwrap_or(u64::MAX);
    let mut total = 0;
    for sh in 0..self.layout.shards {
      if left == 0 {
        break;
      }
      let mut n = 0;
      self.write_op(sh, |g| g.evict_older_than(cutoff_ms, left, &mut n))?;
      total += n;
      left -= n;
    }
    Ok(total)
  }

  /// Reclaims every expired entry now (normally done lazily). Returns how many.
  pub fn purge_expired(&self) -> Result<u64, Error> {
    let mut total = 0;
    for sh in 0..self.layout.shards {
      let mut n = 0;
      self.write_op(sh, |g| g.purge_expired(&mut n))?;
      total += n;
    }
    Ok(total)
  }
}
