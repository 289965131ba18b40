//! One test per reliability fix that the other suites do not already prove:
//! trust on open, exact modes, a single re-initialiser of an unrecoverable
//! mutex, and `evict_older_than` / `purge_expired` bounds across a repair.
#![cfg(target_os = "linux")]

mod common;
use common::{opts, Name};
use lrukit_shm_map::{Eviction, Options, SharedMap, Value, ValueRef};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn path(name: &str) -> String {
  format!("/dev/shm/lk_{name}")
}

fn is_root() -> bool {
  // SAFETY: geteuid cannot fail.
  unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_segment_planted_by_another_user_is_refused_before_anything_is_read() {
  if !is_root() {
    eprintln!("SKIP planted-segment test: chown to another uid needs root");
    return;
  }
  let n = Name::new("planted");
  {
    let m = SharedMap::create(&n, &opts(16)).unwrap();
    m.set(b"k", ValueRef::String(b"planted value"), None)
      .unwrap();
  }
  // What a squatter leaves: a valid segment, owned by nobody, mode 0666.
  let p = path(&n);
  std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
  std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
  for e in [
    SharedMap::open(&n).unwrap_err(),
    SharedMap::open_or_create(&n, &opts(16)).unwrap_err(),
    SharedMap::open_with(
      &n,
      &Options {
        mode: 0o666,
        ..opts(16)
      },
    )
    .unwrap_err(),
  ] {
    assert_eq!(e.code, "EPERM", "{e}");
    assert!(e.message.contains(&*n), "names the map: {e}");
    assert!(e.message.contains("uid 65534"), "names the owner: {e}");
    assert!(e.message.contains("666"), "names the mode: {e}");
  }
  // Owned by another user with a private mode: refused just the same.
  std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
  assert_eq!(SharedMap::open(&n).unwrap_err().code, "EPERM");
  // Garbage from another user is refused for its owner, not parsed.
  std::fs::write(&p, b"not a map at all").unwrap();
  assert_eq!(SharedMap::open(&n).unwrap_err().code, "EPERM");
}

#[test]
fn a_segment_others_may_write_is_refused_unless_the_caller_allows_that_mode() {
  let n = Name::new("grpwrite");
  let shared = Options {
    mode: 0o660,
    ..opts(16)
  };
  let m = SharedMap::create(&n, &shared).unwrap();
  m.set(b"k", ValueRef::Number(1.0), None).unwrap();
  let e = SharedMap::open(&n).unwrap_err();
  assert_eq!(e.code, "EPERM", "{e}");
  assert!(e.message.contains("660"), "{e}");
  assert_eq!(
    SharedMap::open_or_create(&n, &opts(16)).unwrap_err().code,
    "EPERM"
  );
  let o = SharedMap::open_with(&n, &shared).unwrap();
  assert_eq!(o.get(b"k").unwrap(), Some(Value::Number(1.0)));
  // Read bits for others grant no write: accepted by a 0600 opener.
  let r = Name::new("othread");
  SharedMap::create(
    &r,
    &Options {
      mode: 0o644,
      ..opts(16)
    },
  )
  .unwrap();
  SharedMap::open(&r).unwrap();
}

#[test]
fn create_sets_exactly_the_requested_mode_whatever_the_umask() {
  // The umask is process-wide: the create runs in a child process.
  if let Ok(name) = std::env::var("LRUKIT_UMASK_MAP") {
    // SAFETY: plain syscall in the child.
    unsafe { libc::umask(0o077) };
    SharedMap::create(
      &name,
      &Options {
        mode: 0o640,
        ..opts(16)
      },
    )
    .unwrap();
    return;
  }
  let n = Name::new("umask");
  let out = std::process::Command::new(std::env::current_exe().unwrap())
    .args([
      "create_sets_exactly_the_requested_mode_whatever_the_umask",
      "--exact",
      "--test-threads=1",
    ])
    .env("LRUKIT_UMASK_MAP", n.to_string())
    .output()
    .unwrap();
  assert!(out.status.success(), "{out:?}");
  let md = std::fs::metadata(path(&n)).unwrap();
  assert_eq!(md.mode() & 0o7777, 0o640);
  // SAFETY: geteuid cannot fail.
  assert_eq!(md.uid(), unsafe { libc::geteuid() });
  // And the default is 0600 exactly.
  let d = Name::new("umaskdef");
  SharedMap::create(&d, &opts(16)).unwrap();
  assert_eq!(std::fs::metadata(path(&d)).unwrap().mode() & 0o7777, 0o600);
}

/// glibc keeps `PTHREAD_MUTEX_NOTRECOVERABLE` (0x7fffffff) in `__owner`
/// (offset 8): a blocking locker then gets `ENOTRECOVERABLE` (glibc 2.36's
/// `trylock` takes such a mutex and its unlock clears the state, so which
/// path a locker meets depends on timing). Either way 16 lockers at once
/// must all get through, with at most one re-initialisation per damage.
#[cfg(all(target_env = "gnu", not(feature = "lease-lock")))]
#[test]
fn an_unrecoverable_mutex_never_wedges_its_shard() {
  let n = Name::new("notrec");
  let m = std::sync::Arc::new(
    SharedMap::create(
      &n,
      &Options {
        shards: Some(1),
        ..opts(256)
      },
    )
    .unwrap(),
  );
  for round in 0..20 {
    let before = m.stats().lock_recoveries;
    let (lock, _) = m.debug_lock_ranges()[0];
    for (i, b) in 0x7fff_ffffu32.to_le_bytes().into_iter().enumerate() {
      m.debug_corrupt(lock + 8 + i, b);
    }
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let hs: Vec<_> = (0..16)
      .map(|t| {
        let m = m.clone();
        let barrier = barrier.clone();
        std::thread::spawn(move || {
          barrier.wait();
          for j in 0..20u32 {
            let k = format!("t{t}-{j}");
            m.set(k.as_bytes(), ValueRef::Number(round as f64), None)
              .unwrap();
          }
        })
      })
      .collect();
    for h in hs {
      h.join().unwrap();
    }
    assert!(
      m.stats().lock_recoveries - before <= 1,
      "round {round}: at most one re-initialisation"
    );
    let r = m.verify();
    assert!(r.ok, "round {round}: {:?}", r.problems);
    assert_eq!(m.len(), 256, "320 keys into 256 places: full, evicting");
  }
}

/// Takes out the chain that holds `victim`, so the first removal that walks
/// it finds the shard inconsistent (and repairs it).
fn break_chain_of(m: &SharedMap, victim: &[u8], shard_base: usize, buckets: u64) {
  let b = (m.key_hash(victim) & (buckets - 1)) as usize;
  for i in 0..4 {
    m.debug_corrupt(shard_base + 256 + b * 4 + i, 0xff);
  }
}

#[test]
fn evict_older_than_honours_its_bound_across_a_repair() {
  let n = Name::new("evictbnd");
  let o = Options {
    shards: Some(1),
    eviction: Eviction::None,
    hash_seed: Some(42),
    ..opts(64)
  };
  let m = SharedMap::create(&n, &o).unwrap();
  m.debug_set_clock(Some(1_000_000));
  let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("key{i}").into_bytes()).collect();
  for k in &keys {
    m.set(k, ValueRef::Null, None).unwrap();
    m.debug_advance_clock(10);
  }
  // 64 entries per shard + 1 spare = 65 slots -> 128 buckets. The 6th
  // oldest key is evicted after 5 others, through a damaged chain; none of
  // the older keys shares its bucket with this seed.
  let bucket = |k: &[u8]| m.key_hash(k) & 127;
  assert!(keys[..5].iter().all(|k| bucket(k) != bucket(&keys[5])));
  break_chain_of(&m, &keys[5], 20480, 128);
  let before = m.stats();
  let evicted = m.evict_older_than(u64::MAX, Some(8)).unwrap();
  assert_eq!(evicted, 8);
  assert_eq!(m.len(), 12, "exactly 8 of 20 evicted");
  let st = m.stats();
  assert_eq!(st.evictions - before.evictions, 8);
  assert!(
    st.repairs > before.repairs,
    "the damage was met and repaired"
  );
  assert!(m.verify().ok);
  // The 8 oldest went, the 12 newest stayed.
  for (i, k) in keys.iter().enumerate() {
    assert_eq!(m.contains(k).unwrap(), i >= 8, "key{i}");
  }
}

#[test]
fn purge_expired_counts_what_it_removed_before_a_repair() {
  let n = Name::new("purgecnt");
  let o = Options {
    shards: Some(1),
    eviction: Eviction::None,
    hash_seed: Some(7),
    ..opts(64)
  };
  let m = SharedMap::create(&n, &o).unwrap();
  m.debug_set_clock(Some(1_000_000));
  let keys: Vec<Vec<u8>> = (0..20).map(|i| format!("ttl{i}").into_bytes()).collect();
  for k in &keys {
    m.set(k, ValueRef::Null, Some(5)).unwrap();
  }
  m.set(b"stays", ValueRef::Null, Some(0)).unwrap();
  m.debug_advance_clock(100);
  // Damage a chain of a key the scan meets after some removals.
  let mut victim = None;
  for k in keys.iter().rev() {
    let b = m.key_hash(k) & 127;
    if keys.iter().filter(|o| m.key_hash(o) & 127 == b).count() == 1 {
      victim = Some(k.clone());
      break;
    }
  }
  break_chain_of(&m, &victim.unwrap(), 20480, 128);
  let before = m.stats();
  assert_eq!(m.purge_expired().unwrap(), 20, "every removal counted");
  let st = m.stats();
  assert_eq!(st.expirations - before.expirations, 20);
  assert_eq!(m.len(), 1);
  assert!(m.verify().ok);
}
