//! `fetch`'s steps: one claim per key across handles and processes, a dead
//! or overdue owner taken over, a failed load released, stale values served
//! while one process refreshes them, claims invisible to listings. Time is
//! the maps' test clock, never a sleep.
mod common;
use common::{child, opts, Name, ROLE};
use lrukit_shm_map::{FetchOptions, Fetched, SharedMap, Value, ValueRef};
use std::time::Duration;

const T0: u64 = 1_700_000_000_000;

fn o(ttl: u64, stale: u64, lock: u64) -> FetchOptions {
  FetchOptions {
    ttl_ms: Some(ttl),
    stale_ms: stale,
    lock_timeout_ms: lock,
  }
}

fn at(m: &SharedMap, ms: u64) -> &SharedMap {
  m.debug_set_clock(Some(ms));
  m
}

#[test]
fn child_entry() {
  let Ok(role) = std::env::var(ROLE) else {
    return;
  };
  common::die_with_parent();
  let m = SharedMap::open(&std::env::var("LRUKIT_MAP").unwrap()).unwrap();
  match role.as_str() {
    // Claims the key, says so, and waits to be killed (never releases).
    "claim-and-hang" => {
      let step = m.fetch_step(b"sk", &o(1000, 0, 60_000), true).unwrap();
      assert!(matches!(step, Fetched::Load(_)), "{step:?}");
      println!("claimed");
      std::thread::sleep(Duration::from_secs(60));
    }
    other => panic!("unknown role {other}"),
  }
}

#[test]
fn one_claim_per_key_then_every_handle_sees_the_stored_value() {
  let n = Name::new("fetch1");
  let a = SharedMap::create(&n, &opts(64)).unwrap();
  let b = SharedMap::open(&n).unwrap();
  let opt = o(1000, 0, 5000);
  let Fetched::Load(claim) = at(&a, T0).fetch_step(b"sk", &opt, true).unwrap() else {
    panic!("the first step of a miss claims the key");
  };
  // Another handle (same live process): it waits, and keeps waiting.
  for _ in 0..3 {
    let step = at(&b, T0 + 1).fetch_step(b"sk", &opt, false).unwrap();
    assert_eq!(
      step,
      Fetched::Wait {
        owner_pid: std::process::id()
      }
    );
  }
  // A different key is independent.
  assert!(matches!(
    b.fetch_step(b"other", &opt, true).unwrap(),
    Fetched::Load(_)
  ));
  a.fetch_store(b"sk", &claim, ValueRef::String(b"loaded"), &opt)
    .unwrap();
  assert_eq!(
    b.fetch_step(b"sk", &opt, false).unwrap(),
    Fetched::Fresh(Value::String(b"loaded".to_vec()))
  );
  // The claim is gone: releasing it again reports so.
  assert!(!a.fetch_release(&claim).unwrap());
  // Stored with the TTL: expired after 1000 ms, a miss again.
  assert!(matches!(
    at(&b, T0 + 1001).fetch_step(b"sk", &opt, true).unwrap(),
    Fetched::Load(_)
  ));
}

#[test]
fn a_released_claim_lets_the_next_caller_load() {
  let n = Name::new("fetch2");
  let m = SharedMap::create(&n, &opts(64)).unwrap();
  let opt = o(1000, 0, 5000);
  let Fetched::Load(c1) = m.fetch_step(b"k", &opt, true).unwrap() else {
    panic!()
  };
  assert!(matches!(
    m.fetch_step(b"k", &opt, false).unwrap(),
    Fetched::Wait { .. }
  ));
  assert!(
    m.fetch_release(&c1).unwrap(),
    "the loader failed: its owner gives the claim back"
  );
  let Fetched::Load(c2) = m.fetch_step(b"k", &opt, false).unwrap() else {
    panic!("the next poll becomes owner");
  };
  assert_ne!(c1, c2);
  assert_eq!(m.get(b"k").unwrap(), None, "nothing was stored");
}

#[test]
fn an_overdue_owner_is_taken_over_at_its_deadline_and_cannot_remove_the_new_claim() {
  let n = Name::new("fetch3");
  let a = SharedMap::create(&n, &opts(64)).unwrap();
  let b = SharedMap::open(&n).unwrap();
  let opt = o(1000, 0, 50);
  let Fetched::Load(old) = at(&a, T0).fetch_step(b"k", &opt, true).unwrap() else {
    panic!()
  };
  assert!(matches!(
    at(&b, T0 + 49).fetch_step(b"k", &opt, false).unwrap(),
    Fetched::Wait { .. }
  ));
  let Fetched::Load(new) = at(&b, T0 + 50).fetch_step(b"k", &opt, false).unwrap() else {
    panic!("at its deadline the claim has expired: the waiter takes over");
  };
  // The old owner finishes late: its value is stored, but the claim it
  // releases is no longer its own, so the new owner's stays.
  at(&a, T0 + 51)
    .fetch_store(b"k", &old, ValueRef::Number(1.0), &opt)
    .unwrap();
  assert!(
    b.fetch_release(&new).unwrap(),
    "the new owner's claim survived the old owner's release"
  );
  assert_eq!(b.get(b"k").unwrap(), Some(Value::Number(1.0)));
}

#[test]
fn a_killed_owner_is_taken_over_before_its_deadline() {
  let n = Name::new("fetch4");
  let m = SharedMap::create(&n, &opts(64)).unwrap();
  let mut owner = common::Proc::spawn(child(
    "child_entry",
    &[(ROLE, "claim-and-hang".into()), ("LRUKIT_MAP", n.0.clone())],
  ));
  owner.line("claimed", Duration::from_secs(30));
  let opt = o(1000, 0, 60_000);
  assert_eq!(
    m.fetch_step(b"sk", &opt, false).unwrap(),
    Fetched::Wait {
      owner_pid: owner.pid
    },
    "a live owner is waited for"
  );
  owner.kill();
  // Judgements are reused for JUDGE_INTERVAL_MS: poll until the next one.
  let start = std::time::Instant::now();
  let claim = loop {
    match m.fetch_step(b"sk", &opt, false).unwrap() {
      Fetched::Load(c) => break c,
      Fetched::Wait { .. } => {
        assert!(
          start.elapsed() < Duration::from_secs(5),
          "the dead owner was never judged"
        );
        std::thread::sleep(Duration::from_millis(2));
      }
      other => panic!("{other:?}"),
    }
  };
  m.fetch_store(b"sk", &claim, ValueRef::Bool(true), &opt)
    .unwrap();
  assert_eq!(m.get(b"sk").unwrap(), Some(Value::Bool(true)));
}

#[test]
fn stale_values_are_served_while_exactly_one_caller_refreshes() {
  let n = Name::new("fetch5");
  let a = SharedMap::create(&n, &opts(64)).unwrap();
  let b = SharedMap::open(&n).unwrap();
  let opt = o(100, 50, 5000);
  let Fetched::Load(c) = at(&a, T0).fetch_step(b"k", &opt, true).unwrap() else {
    panic!()
  };
  a.fetch_store(b"k", &c, ValueRef::Number(1.0), &opt)
    .unwrap();
  assert_eq!(
    at(&b, T0 + 99).fetch_step(b"k", &opt, true).unwrap(),
    Fetched::Fresh(Value::Number(1.0))
  );
  // Past the soft TTL: stale, and the first caller wins the refresh.
  let Fetched::Stale(v, Some(refresh)) = at(&b, T0 + 120).fetch_step(b"k", &opt, true).unwrap()
  else {
    panic!("stale with the refresh claim");
  };
  assert_eq!(v, Value::Number(1.0));
  assert_eq!(
    at(&a, T0 + 121).fetch_step(b"k", &opt, true).unwrap(),
    Fetched::Stale(Value::Number(1.0), None),
    "others get the stale value without a claim"
  );
  // `get` still sees it: its hard TTL is ttl + stale.
  assert_eq!(a.get(b"k").unwrap(), Some(Value::Number(1.0)));
  b.fetch_store(b"k", &refresh, ValueRef::Number(2.0), &opt)
    .unwrap();
  assert_eq!(
    at(&a, T0 + 130).fetch_step(b"k", &opt, true).unwrap(),
    Fetched::Fresh(Value::Number(2.0))
  );
  // Past the hard TTL of the refreshed value (120 + 150): a miss.
  assert!(matches!(
    at(&a, T0 + 271).fetch_step(b"k", &opt, true).unwrap(),
    Fetched::Load(_)
  ));
}

#[test]
fn claims_are_internal_keys_and_damaged_claims_are_replaced() {
  let n = Name::new("fetch6");
  let m = SharedMap::create(&n, &opts(64)).unwrap();
  m.set(b"suser", ValueRef::Null, None).unwrap();
  let opt = o(1000, 0, 5000);
  let Fetched::Load(_) = m.fetch_step(b"ssk", &opt, true).unwrap() else {
    panic!()
  };
  // The claim is an entry under an internal key (codec tag 'c' + the key),
  // which the binding's listings skip; user keys are never internal.
  let mut keys = m.keys().unwrap();
  keys.sort();
  assert_eq!(keys, vec![b"cssk".to_vec(), b"suser".to_vec()]);
  assert!(lrukit_shm_map::codec::key::is_internal(&keys[0]));
  assert!(!lrukit_shm_map::codec::key::is_internal(&keys[1]));
  // A claim that is not lrukit's 24 bytes (damage) is removed and claimed anew.
  let mut ck = vec![b'c'];
  ck.extend_from_slice(b"x");
  m.set(&ck, ValueRef::String(b"garbage"), None).unwrap();
  assert!(matches!(
    m.fetch_step(b"x", &opt, true).unwrap(),
    Fetched::Load(_)
  ));
  // A claim from another pid namespace is never judged, even for a pid
  // that does not exist here: it ends at its deadline.
  let mut foreign = [0u8; 24];
  foreign[..8].copy_from_slice(&(i32::MAX as u64 - 7).to_le_bytes());
  foreign[8..16].copy_from_slice(&0xdead_beef_u64.to_le_bytes());
  let mut ck = vec![b'c'];
  ck.extend_from_slice(b"y");
  m.set(&ck, ValueRef::Bytes(&foreign), Some(5000)).unwrap();
  assert!(matches!(
    m.fetch_step(b"y", &opt, true).unwrap(),
    Fetched::Wait { .. }
  ));
}

#[test]
fn keys_too_long_to_prefix_claim_through_their_hash() {
  let n = Name::new("fetch7");
  let m = SharedMap::create(&n, &opts(64)).unwrap();
  let max = m.options().max_key_bytes as usize;
  let long = vec![b'k'; max];
  let opt = o(1000, 0, 5000);
  let Fetched::Load(c) = m.fetch_step(&long, &opt, true).unwrap() else {
    panic!()
  };
  assert!(matches!(
    m.fetch_step(&long, &opt, false).unwrap(),
    Fetched::Wait { .. }
  ));
  m.fetch_store(&long, &c, ValueRef::Number(7.0), &opt)
    .unwrap();
  assert_eq!(
    m.fetch_step(&long, &opt, false).unwrap(),
    Fetched::Fresh(Value::Number(7.0))
  );
  let too_long = vec![b'k'; max + 1];
  assert_eq!(
    m.fetch_step(&too_long, &opt, true).unwrap_err().code,
    "EKEYTOOLONG"
  );
}

#[test]
fn compare_and_delete_removes_only_the_expected_value() {
  let n = Name::new("fetch8");
  let m = SharedMap::create(&n, &opts(64)).unwrap();
  m.set(b"k", ValueRef::Number(1.0), None).unwrap();
  assert!(!m.compare_and_delete(b"k", ValueRef::Number(2.0)).unwrap());
  assert!(!m.compare_and_delete(b"k", ValueRef::String(b"1")).unwrap());
  assert!(!m
    .compare_and_delete(b"missing", ValueRef::Number(1.0))
    .unwrap());
  assert!(m.compare_and_delete(b"k", ValueRef::Number(1.0)).unwrap());
  assert_eq!(m.get(b"k").unwrap(), None);
  assert_eq!(m.stats().deletes, 1);
}
