//! Single flight across processes: the steps of `fetch(key, loader)`, so
//! that on a miss exactly one process of the host runs the loader while the
//! others wait for the value it stores.
//!
//! # Claims
//!
//! The right to load `key` is a **claim**: an ordinary entry of the map,
//! under an internal key (codec tag `'c'` + the key's own encoding, or tag
//! `'h'` + its xxh3-128 hash when the key is too long to prefix), whose
//! value is 24 bytes:
//!
//! ```text
//! owner word (u64: start tag << 32 | pid) | pid namespace (u64) | nonce (u64)
//! ```
//!
//! and whose TTL is the caller's `lock_timeout`: the claim *is* the
//! deadline. Taking one is [`SharedMap::add`] (insert if absent, an expired
//! entry counting as absent), so of any number of processes exactly one
//! wins; giving it back is [`SharedMap::compare_and_delete`] with the
//! owner's own bytes, so an owner that overran its deadline never removes
//! the claim of the process that took over from it.
//!
//! Keys are assumed codec-encoded (as the binding writes them), so no user
//! key starts with an internal tag; `codec::key::is_internal` tells the
//! internal entries apart, and the binding's `keys()`/`entries()` skip
//! them. They are ordinary entries otherwise: they count in `len`, and
//! `dump` writes them (a loaded claim ends at its deadline or when its
//! owner is judged gone).
//!
//! # Failure story
//!
//! * **The owner dies** (SIGKILL, crash) while loading: a waiter that finds
//!   the claim judges its owner (same pid namespace only: the pid is gone or
//!   a zombie, or now belongs to a process with another start time — the
//!   test the lease lock uses), removes exactly that claim and claims the
//!   key itself. Owners in another pid namespace are never judged; their
//!   claims end at their deadline. Judgements are cached for
//!   [`JUDGE_INTERVAL_MS`] per owner, so polling waiters do not read
//!   `/proc` at every poll.
//! * **The owner overruns `lock_timeout`**: its claim expires and the next
//!   waiter claims the key; both loaders may finish, both store (the later
//!   store wins), and each releases only its own claim.
//! * **The loader fails**: its owner releases the claim; the next waiter to
//!   poll claims the key and runs its own loader (waiters retry by becoming
//!   owner; each caller sees only its own loader's rejection).
//! * **A damaged claim** (not 24 bytes) is removed and claimed anew.
//!
//! # Waiting
//!
//! Waiters poll. [`SharedMap::fetch_pending`] answers for one key with two
//! lock-free reads; the map's **fetch epoch** (an internal counter, key tag
//! `'h'` alone, that every store and release of a claim increments) lets a
//! process with many waiting keys skip even those while no load ended.
//!
//! # Freshness and stale-while-revalidate
//!
//! A value is **fresh** while more than `stale_ms` of its TTL remains
//! (always, without a TTL; with `stale_ms` = 0, until it expires). A value
//! stored by [`SharedMap::fetch_store`] lives `ttl + stale_ms`: its soft TTL
//! is `ttl`, after which it is **stale** — still returned, while one
//! process (the one that wins the claim) refreshes it. Plain reads (`get`)
//! see such a value until its hard TTL. A value stored by `set` with a TTL
//! is stale during the last `stale_ms` of its life.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::codec::key::{TAG_CLAIM, TAG_CLAIM_HASH};
use crate::error::Error;
use crate::sys;
use crate::value::{Value, ValueRef};
use crate::SharedMap;

/// The internal key of the map's fetch epoch (claim keys are longer).
const EPOCH_KEY: &[u8] = &[TAG_CLAIM_HASH];

/// How long a judgement of a claim owner's liveness is reused (ms).
pub const JUDGE_INTERVAL_MS: u64 = 10;
/// Bytes of a claim's value.
const CLAIM_BYTES: usize = 24;

/// The options of one `fetch`.
#[derive(Clone, Copy, Debug)]
pub struct FetchOptions {
  /// TTL of a loaded value (ms); `None`: the map's default TTL, `Some(0)`:
  /// none.
  pub ttl_ms: Option<u64>,
  /// How long past its TTL a loaded value may still be served while one
  /// process refreshes it (ms); 0 = never.
  pub stale_ms: u64,
  /// How long a loader may run before another process takes over (ms);
  /// at least 1.
  pub lock_timeout_ms: u64,
}

/// A process's right to load a key: give it back with
/// [`SharedMap::fetch_store`] or [`SharedMap::fetch_release`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
  key: Vec<u8>,
  token: [u8; CLAIM_BYTES],
}

/// What one step of `fetch` found.
#[derive(Clone, Debug, PartialEq)]
pub enum Fetched {
  /// A fresh value: return it.
  Fresh(Value),
  /// A stale value: return it; with a claim, this process refreshes it.
  Stale(Value, Option<Claim>),
  /// A miss, and this process holds the claim: run the loader.
  Load(Claim),
  /// A miss while another process loads: poll again.
  Wait {
    /// The loading process (0 if its claim is damaged).
    owner_pid: u32,
  },
}

/// Whether the process `owner` (a claim's owner word) is gone, judged at
/// most once per [`JUDGE_INTERVAL_MS`] per owner in this process (liveness
/// is the same for every map).
fn owner_dead(owner: u64) -> bool {
  static CACHE: Mutex<Option<HashMap<u64, (Instant, bool)>>> = Mutex::new(None);
  let now = Instant::now();
  let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
  let cache = guard.get_or_insert_with(HashMap::new);
  if let Some(&(at, dead)) = cache.get(&owner) {
    if now.duration_since(at).as_millis() < JUDGE_INTERVAL_MS as u128 {
      return dead;
    }
  }
  if cache.len() >= 256 {
    cache.clear();
  }
  let (pid, tag) = (owner as u32, (owner >> 32) as u32);
  let dead = match sys::process_state(pid) {
    sys::Liveness::Dead => true,
    sys::Liveness::Alive(t) => tag != 0 && t != 0 && t != tag,
  };
  cache.insert(owner, (now, dead));
  dead
}

/// The internal key holding `key`'s claim.
fn claim_key(key: &[u8], max_key: usize) -> Vec<u8> {
  if key.len() < max_key {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(TAG_CLAIM);
    k.extend_from_slice(key);
    k
  } else {
    let mut k = Vec::with_capacity(17);
    k.push(TAG_CLAIM_HASH);
    k.extend_from_slice(&xxhash_rust::xxh3::xxh3_128(key).to_le_bytes());
    k
  }
}

fn new_token() -> [u8; CLAIM_BYTES] {
  use std::sync::atomic::{AtomicU64, Ordering};
  static NEXT: AtomicU64 = AtomicU64::new(1);
  let mut t = [0u8; CLAIM_BYTES];
  t[..8].copy_from_slice(&sys::owner_word().to_le_bytes());
  t[8..16].copy_from_slice(&sys::pid_namespace().to_le_bytes());
  let nonce = NEXT.fetch_add(1, Ordering::Relaxed) ^ sys::wall_ms().rotate_left(32);
  t[16..].copy_from_slice(&nonce.to_le_bytes());
  t
}

impl SharedMap {
  /// One step of `fetch`: the value if fresh; else the claim if this
  /// process won it (a miss: load; a stale value: refresh it); else `Wait`.
  /// `count`: count a hit or miss and mark recency, as `get` does (the
  /// first step of a fetch); polls pass `false`.
  pub fn fetch_step(&self, key: &[u8], o: &FetchOptions, count: bool) -> Result<Fetched, Error> {
    self.check_key(key)?;
    let now = self.now();
    if let Some((value, expires)) = self.get_with_expiry(key, count)? {
      if expires == 0 || expires.saturating_sub(now) > o.stale_ms {
        return Ok(Fetched::Fresh(value));
      }
      return Ok(match self.claim(key, o)? {
        Ok(claim) => Fetched::Stale(value, Some(claim)),
        Err(_) => Fetched::Stale(value, None),
      });
    }
    match self.claim(key, o)? {
      Ok(claim) => {
        // Stored between the miss and the claim (the previous owner
        // finished): no load needed.
        if let Some((value, _)) = self.get_with_expiry(key, false)? {
          self.fetch_release(&claim)?;
          return Ok(Fetched::Fresh(value));
        }
        Ok(Fetched::Load(claim))
      }
      Err(owner_pid) => Ok(Fetched::Wait { owner_pid }),
    }
  }

  /// Whether a fetch of `key` would still wait: no value is stored and a
  /// live process (or one in another pid namespace) holds the claim. Two
  /// lock-free reads and no allocation for the claim, so waiters can poll
  /// it cheaply and take the full [`fetch_step`](Self::fetch_step) only
  /// when it turns false.
  pub fn fetch_pending(&self, key: &[u8]) -> Result<bool, Error> {
    if key.len() > self.layout.max_key as usize || self.contains(key)? {
      return Ok(false);
    }
    let ck = claim_key(key, self.layout.max_key as usize);
    let held = self.peek_with(&ck, |v| match v {
      ValueRef::Bytes(b) if b.len() == CLAIM_BYTES => Some((
        u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
      )),
      _ => None,
    })?;
    Ok(match held {
      // No claim (or a damaged one): the next step claims the key.
      None | Some(None) => false,
      Some(Some((owner, ns))) => ns != sys::pid_namespace() || !owner_dead(owner),
    })
  }

  /// Takes `key`'s claim: `Ok(Ok(claim))`, or `Ok(Err(owner pid))` while a
  /// live process holds it.
  fn claim(&self, key: &[u8], o: &FetchOptions) -> Result<Result<Claim, u32>, Error> {
    let ck = claim_key(key, self.layout.max_key as usize);
    let token = new_token();
    let ttl = Some(o.lock_timeout_ms.max(1));
    // Each round either takes the claim or removes one that is gone; two
    // rounds cover a claim released or taken over meanwhile.
    for _ in 0..3 {
      // Read first: waiters poll, and a read takes no lock.
      let held = self.get_with_expiry(&ck, false)?;
      match held {
        None => {
          if self.add(&ck, ValueRef::Bytes(&token), ttl)? {
            return Ok(Ok(Claim { key: ck, token }));
          }
        }
        Some((Value::Bytes(theirs), _)) if theirs.len() == CLAIM_BYTES => {
          let owner = u64::from_le_bytes(theirs[..8].try_into().expect("8 bytes"));
          let ns = u64::from_le_bytes(theirs[8..16].try_into().expect("8 bytes"));
          let judged = ns == sys::pid_namespace() && owner_dead(owner);
          if !judged {
            return Ok(Err(owner as u32));
          }
          self.compare_and_delete(&ck, ValueRef::Bytes(&theirs))?;
        }
        Some((other, _)) => {
          // Not a claim lrukit wrote: remove exactly it and claim anew.
          self.compare_and_delete(&ck, other.as_ref())?;
        }
      }
    }
    Ok(Err(0))
  }

  /// Stores the loaded `value` under `key` (TTL `ttl + stale`, see the
  /// module docs) and gives the claim back.
  pub fn fetch_store(
    &self,
    key: &[u8],
    claim: &Claim,
    value: ValueRef<'_>,
    o: &FetchOptions,
  ) -> Result<(), Error> {
    let ttl = match o.ttl_ms.unwrap_or(self.layout.default_ttl_ms) {
      0 => 0,
      t => t.saturating_add(o.stale_ms),
    };
    let stored = self.set(key, value, Some(ttl));
    let released = self.fetch_release(claim);
    stored?;
    released.map(|_| ())
  }

  /// Gives the claim back (a failed loader); false if it was no longer this
  /// process's (it overran its deadline and another process took over).
  pub fn fetch_release(&self, claim: &Claim) -> Result<bool, Error> {
    let released = self.compare_and_delete(&claim.key, ValueRef::Bytes(&claim.token))?;
    // Waiters watch the epoch: one read tells them whether any load of
    // this map ended since their last look.
    self.incr(EPOCH_KEY, 1.0, 0.0, Some(0))?;
    Ok(released)
  }

  /// The map's fetch epoch: a counter every [`fetch_store`](Self::fetch_store)
  /// and [`fetch_release`](Self::fetch_release) moves. Waiters poll it (one
  /// lock-free read) and check their keys only when it moved — or at least
  /// every few polls, since a load can also end by its owner dying or
  /// overrunning its deadline, which moves nothing. It is an ordinary
  /// entry: an eviction or a `clear` resets it, which waiters see as a
  /// change.
  pub fn fetch_epoch(&self) -> Result<f64, Error> {
    Ok(match self.peek(EPOCH_KEY)? {
      Some(Value::Number(n)) => n,
      _ => 0.0,
    })
  }
}
