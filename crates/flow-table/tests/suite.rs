//! The generic behaviour suite: every test runs against both engines through
//! `Box<dyn FlowEngine>`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lrukit_flow_table::{
  new_engine, Config, EngineKind, Evicted, Expired, FlowEngine, Full, InsertError, ManualClock,
};

type Table = Box<dyn FlowEngine<u64, u64>>;

fn table(kind: EngineKind, config: Config, start: u64) -> (Table, Arc<ManualClock>) {
  let clock = Arc::new(ManualClock::new(start));
  (new_engine(kind, config, clock.clone()), clock)
}

fn live(t: &Table) -> BTreeMap<u64, (u64, u64)> {
  let mut m = BTreeMap::new();
  t.for_each(&mut |k, v, seen| {
    assert!(
      m.insert(*k, (*v, seen)).is_none(),
      "for_each yielded {k} twice"
    );
  });
  m
}

fn keys(v: &[Expired<u64, u64>]) -> BTreeSet<u64> {
  v.iter().map(|e| e.key).collect()
}

macro_rules! suite {
  ($($name:ident),* $(,)?) => {
    mod dashmap_engine {
      $(#[test] fn $name() { super::$name(lrukit_flow_table::EngineKind::DashMap) })*
    }
    mod wheel_engine {
      $(#[test] fn $name() { super::$name(lrukit_flow_table::EngineKind::Wheel) })*
    }
  };
}

suite!(
  basic_operations,
  for_each_and_clear,
  expired_entries_are_invisible_before_expire,
  expire_returns_expired_and_rearms_touched,
  expire_respects_max,
  per_entry_timeouts,
  replace_semantics,
  replace_of_expired_entry_reports_it,
  remove_leaves_expired_entry_for_expire,
  capacity_evict_longest_idle,
  capacity_evict_across_shards,
  capacity_refuse,
  capacity_zero_refuses,
  insert_many_stores_in_order_and_stops_at_a_refusal,
  clock_jumps,
  next_due_and_extreme_timeouts,
  memory_grows_and_clear_resets,
  for_each_callback_may_reenter,
  timeouts_beyond_u32_millis,
);

fn basic_operations(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(1000), 0);
  assert!(t.is_empty());
  assert_eq!(t.insert(1, 10, None), Ok(None));
  assert_eq!(t.insert(2, 20, None), Ok(None));
  assert_eq!(t.len(), 2);
  assert_eq!(t.get(&1), Some(10));
  assert_eq!(t.get(&3), None);
  assert!(t.contains(&2));
  assert!(!t.contains(&3));
  clock.set(500);
  assert!(t.touch(&1));
  assert!(!t.touch(&3));
  assert_eq!(t.get_and_touch(&2), Some(20));
  assert_eq!(t.get_and_touch(&3), None);
  assert_eq!(live(&t), BTreeMap::from([(1, (10, 500)), (2, (20, 500))]));
  assert_eq!(t.remove(&1), Some(10));
  assert_eq!(t.remove(&1), None);
  assert_eq!(t.get(&1), None);
  assert_eq!(t.len(), 1);
  assert_eq!(t.now(), 500);
}

fn for_each_and_clear(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(1000), 0);
  for k in 0..100 {
    t.insert(k, k * 2, None).unwrap();
    clock.advance(1);
  }
  let m = live(&t);
  assert_eq!(m.len(), 100);
  for k in 0..100 {
    assert_eq!(m[&k], (k * 2, k));
  }
  t.clear();
  assert_eq!(t.len(), 0);
  assert!(live(&t).is_empty());
  assert_eq!(t.get(&5), None);
  assert!(t.expire(u64::MAX, usize::MAX).is_empty());
  // Usable after clear.
  t.insert(5, 1, None).unwrap();
  assert_eq!(t.get(&5), Some(1));
}

fn expired_entries_are_invisible_before_expire(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(100), 0);
  t.insert(1, 10, None).unwrap();
  clock.set(99);
  assert_eq!(t.get(&1), Some(10));
  clock.set(100); // deadline = last_seen + timeout = 100 <= now
  assert_eq!(t.get(&1), None);
  assert!(!t.contains(&1));
  assert!(!t.touch(&1), "touch must not revive an expired entry");
  assert_eq!(t.get_and_touch(&1), None);
  assert!(live(&t).is_empty());
  assert_eq!(t.remove(&1), None);
  assert_eq!(t.len(), 1, "stored until expire reaps it");
  let out = t.expire(100, 10);
  assert_eq!(
    out,
    vec![Expired {
      key: 1,
      value: 10,
      last_seen: 0
    }]
  );
  assert_eq!(t.len(), 0);
  assert!(t.expire(1000, 10).is_empty());
}

fn expire_returns_expired_and_rearms_touched(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(100), 0);
  for k in [1, 2, 3] {
    t.insert(k, k * 10, None).unwrap();
  }
  clock.set(50);
  assert!(t.touch(&2));
  t.insert(4, 40, None).unwrap(); // deadline 150
  clock.set(100);
  assert!(t.expire(99, 10).is_empty());
  let out = t.expire(100, 10);
  assert_eq!(keys(&out), BTreeSet::from([1, 3]));
  for e in &out {
    assert_eq!((e.value, e.last_seen), (e.key * 10, 0));
  }
  assert!(
    t.stats().rearmed >= 1,
    "the touched entry was re-armed: {:?}",
    t.stats()
  );
  assert_eq!(t.get(&2), Some(20));
  assert_eq!(t.len(), 2);
  assert!(t.expire(149, 10).is_empty());
  clock.set(150);
  let out = t.expire(150, 10);
  assert_eq!(keys(&out), BTreeSet::from([2, 4]));
  let two = out.iter().find(|e| e.key == 2).unwrap();
  assert_eq!(two.last_seen, 50);
  assert!(t.is_empty());
  assert_eq!(t.stats().expired, 4);
}

fn expire_respects_max(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(10), 0);
  for k in 0..50 {
    t.insert(k, k, None).unwrap();
    clock.advance(1);
  }
  // Not yet due ones stay.
  for k in 50..60 {
    t.insert(k, k, Some(1_000_000)).unwrap();
  }
  clock.set(1000);
  assert!(t.expire(1000, 0).is_empty());
  let mut seen = BTreeSet::new();
  loop {
    let out = t.expire(1000, 7);
    assert!(out.len() <= 7);
    if out.is_empty() {
      break;
    }
    for e in out {
      assert!(seen.insert(e.key), "{} returned twice", e.key);
      assert_eq!(e.last_seen, e.key);
    }
  }
  assert_eq!(seen, (0..50).collect());
  assert_eq!(t.len(), 10);
}

fn per_entry_timeouts(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(500), 0);
  let timeouts = [
    (1u64, Some(10u64)),
    (2, Some(100)),
    (3, None),
    (4, Some(5000)),
    (5, Some(70_000)),
    (6, Some(1)),
  ];
  for (k, to) in timeouts {
    t.insert(k, k, to).unwrap();
  }
  let mut expired = vec![];
  for now in [
    0u64, 1, 9, 10, 99, 100, 499, 500, 4999, 5000, 69_999, 70_000,
  ] {
    clock.set(now);
    for (k, to) in timeouts {
      let due = to.unwrap_or(500) <= now;
      assert_eq!(t.contains(&k), !due, "key {k} at {now}");
    }
    let out = t.expire(now, usize::MAX);
    for e in &out {
      let to = timeouts[(e.key - 1) as usize].1.unwrap_or(500);
      assert!(to <= now, "key {} expired early at {now}", e.key);
      expired.push((e.key, now));
    }
  }
  assert_eq!(
    expired,
    vec![(6, 1), (1, 10), (2, 100), (3, 500), (4, 5000), (5, 70_000)]
  );
}

fn replace_semantics(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(100), 0);
  t.insert(1, 10, None).unwrap();
  clock.set(50);
  let r = t.insert_full(1, 11, Some(10)).unwrap();
  assert_eq!((r.replaced, r.expired, r.evicted), (Some(10), None, None));
  assert_eq!(t.len(), 1);
  assert_eq!(t.get(&1), Some(11));
  clock.set(59);
  assert!(t.contains(&1));
  clock.set(60); // the new, shorter timeout applies from the replace
  assert!(!t.contains(&1));
  let out = t.expire(60, 10);
  assert_eq!(
    out,
    vec![Expired {
      key: 1,
      value: 11,
      last_seen: 50
    }]
  );
  // The old queue position must not produce a second report.
  assert!(t.expire(1000, 10).is_empty());
  // A longer timeout on replace is honoured too.
  clock.set(2000);
  t.insert(2, 20, Some(10)).unwrap();
  t.insert(2, 21, Some(1000)).unwrap();
  assert!(t.expire(2500, 10).is_empty());
  assert_eq!(t.get(&2), Some(21));
  assert_eq!(keys(&t.expire(3000, 10)), BTreeSet::from([2]));
}

fn replace_of_expired_entry_reports_it(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(10), 0);
  t.insert(1, 10, None).unwrap();
  clock.set(20);
  let r = t.insert_full(1, 11, None).unwrap();
  assert_eq!(r.replaced, None, "an expired value is not 'replaced'");
  assert_eq!(
    r.expired,
    Some(Expired {
      key: 1,
      value: 10,
      last_seen: 0
    })
  );
  assert_eq!(t.len(), 1);
  assert!(t.expire(29, 10).is_empty());
  assert_eq!(t.expire(30, 10).len(), 1);
}

fn remove_leaves_expired_entry_for_expire(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(10), 0);
  t.insert(1, 10, None).unwrap();
  t.insert(2, 20, None).unwrap();
  assert_eq!(t.remove(&2), Some(20));
  clock.set(10);
  assert_eq!(t.remove(&1), None);
  assert_eq!(
    keys(&t.expire(10, 10)),
    BTreeSet::from([1]),
    "removed key 2 is not reported"
  );
}

fn capacity_evict_longest_idle(kind: EngineKind) {
  // One shard: the victim search is then table-wide, so it is deterministic.
  let config = Config::new(100)
    .with_capacity(3, Full::EvictLongestIdle)
    .with_shards(1);
  let (t, clock) = table(kind, config, 0);
  for k in [1, 2, 3] {
    t.insert(k, k, None).unwrap();
    clock.advance(1);
  }
  clock.set(50);
  assert!(t.touch(&1));
  // Replacing an existing key never evicts.
  let r = t.insert_full(3, 33, None).unwrap();
  assert_eq!((r.replaced, r.evicted), (Some(3), None));
  let r = t.insert_full(4, 4, None).unwrap();
  assert_eq!(
    r.evicted,
    Some(Evicted {
      entry: Expired {
        key: 2,
        value: 2,
        last_seen: 1
      },
      was_expired: false
    }),
    "1 was touched, so 2 is the longest idle"
  );
  assert_eq!(t.len(), 3);
  assert!(!t.contains(&2));
  // When the longest idle entry is already expired it is reported as such.
  clock.set(1000);
  let r = t.insert_full(5, 5, None).unwrap();
  assert!(r.expired.is_none() && r.replaced.is_none());
  assert!(r.evicted.is_some_and(|e| e.was_expired));
  assert_eq!(t.len(), 3);
  assert_eq!(t.stats().evicted, 2);
}

fn capacity_evict_across_shards(kind: EngineKind) {
  let config = Config::new(1_000_000)
    .with_capacity(64, Full::EvictLongestIdle)
    .with_shards(8);
  let (t, clock) = table(kind, config, 0);
  let mut stored = BTreeSet::new();
  for k in 0..1000u64 {
    let r = t.insert_full(k, k, None).unwrap();
    stored.insert(k);
    assert!(r.expired.is_none());
    for e in r.evicted.iter() {
      assert!(stored.remove(&e.entry.key), "evicted {} twice", e.entry.key);
    }
    assert!(t.len() <= 64);
    clock.advance(1);
  }
  assert_eq!(t.len(), 64);
  assert_eq!(stored.len(), 64);
  assert_eq!(live(&t).keys().copied().collect::<BTreeSet<_>>(), stored);
}

fn capacity_refuse(kind: EngineKind) {
  let config = Config::new(100)
    .with_capacity(2, Full::Refuse)
    .with_shards(1);
  let (t, clock) = table(kind, config, 0);
  t.insert(1, 1, None).unwrap();
  t.insert(2, 2, Some(1000)).unwrap();
  assert_eq!(t.insert(3, 3, None), Err(InsertError::Full));
  assert_eq!(
    t.insert(1, 11, None),
    Ok(Some(1)),
    "replace works when full"
  );
  assert_eq!(t.len(), 2);
  assert_eq!(t.remove(&1), Some(11));
  t.insert(3, 3, None).unwrap();
  assert_eq!(t.insert(4, 4, None), Err(InsertError::Full));
  // An expired entry at the front of the expiry order is reclaimed instead of
  // refusing.
  clock.set(100);
  let r = t.insert_full(4, 4, None).unwrap();
  let e = r.evicted.expect("reclaimed");
  assert_eq!((e.entry.key, e.was_expired), (3, true));
  assert_eq!(t.len(), 2);
  assert_eq!(t.insert(5, 5, None), Err(InsertError::Full));
}

fn insert_many_stores_in_order_and_stops_at_a_refusal(kind: EngineKind) {
  // Unbounded: later duplicates win, every shard gets its keys.
  let (t, clock) = table(kind, Config::new(100), 0);
  let entries: Vec<(u64, u64)> = (0..500).map(|k| (k % 300, k)).collect();
  t.insert_many(entries, Some(50)).unwrap();
  assert_eq!(t.len(), 300);
  assert_eq!(t.get(&0), Some(300));
  assert_eq!(t.get(&299), Some(299));
  clock.set(50);
  assert_eq!(t.get(&0), None, "the batch's timeout applies");
  assert_eq!(t.expire(50, usize::MAX).len(), 300);
  // Bounded with Refuse: the pairs before the refused one are stored.
  let (t, _) = table(kind, Config::new(100).with_capacity(3, Full::Refuse), 0);
  let r = t.insert_many(vec![(1, 1), (2, 2), (1, 10), (3, 3), (4, 4), (5, 5)], None);
  assert_eq!(r, Err(InsertError::Full));
  assert_eq!(t.len(), 3);
  assert_eq!((t.get(&1), t.get(&3), t.get(&4)), (Some(10), Some(3), None));
}

fn capacity_zero_refuses(kind: EngineKind) {
  for policy in [Full::Refuse, Full::EvictLongestIdle] {
    let (t, _) = table(kind, Config::new(100).with_capacity(0, policy), 0);
    assert_eq!(t.insert(1, 1, None), Err(InsertError::Full));
    assert_eq!(t.len(), 0);
  }
}

fn clock_jumps(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(100), 1000);
  t.insert(1, 1, None).unwrap(); // deadline 1100
                                 // Backwards: reads compare against the clock, so the entry stays visible,
                                 // and nothing is reaped early.
  clock.set(500);
  assert_eq!(t.get(&1), Some(1));
  assert!(t.expire(500, 10).is_empty());
  t.insert(2, 2, None).unwrap(); // last_seen 500, deadline 600
  assert!(t.expire(599, 10).is_empty());
  // The heap engine reaps it at 600; the wheel defers reaping until `now`
  // passes the furthest time it has already processed (1000 here).
  let mut got = keys(&t.expire(600, 10));
  assert!(got.is_subset(&BTreeSet::from([2])));
  got.extend(keys(&t.expire(1000, 10)));
  assert_eq!(got, BTreeSet::from([2]));
  // Forward far: everything is due, and expire stays bounded by `max`.
  for k in 10..1010 {
    t.insert(k, k, None).unwrap();
  }
  clock.set(1 << 50);
  assert_eq!(t.get(&1), None);
  let mut n = 0;
  loop {
    let out = t.expire(1 << 50, 100);
    assert!(out.len() <= 100);
    if out.is_empty() {
      break;
    }
    n += out.len();
  }
  assert_eq!(n, 1001);
  assert!(t.is_empty());
}

fn next_due_and_extreme_timeouts(kind: EngineKind) {
  let (t, clock) = table(kind, Config::new(100), 0);
  assert_eq!(t.next_due(), None);
  t.insert(1, 1, None).unwrap();
  let due = t.next_due().unwrap();
  assert!(due <= 100, "lower bound, got {due}");
  t.insert(2, 2, Some(0)).unwrap(); // expired on arrival
  assert_eq!(t.get(&2), None);
  t.insert(3, 3, Some(u64::MAX)).unwrap(); // never expires
  clock.set(u64::MAX - 1);
  assert!(t.contains(&3));
  let mut out = keys(&t.expire(u64::MAX - 1, usize::MAX));
  while t.next_due().is_some_and(|d| d < u64::MAX) {
    let more = t.expire(u64::MAX - 1, usize::MAX);
    if more.is_empty() {
      break;
    }
    out.extend(keys(&more));
  }
  assert_eq!(out, BTreeSet::from([1, 2]));
  assert_eq!(t.get(&3), Some(3));
  assert_eq!(t.remove(&3), Some(3));
  t.expire(u64::MAX - 1, usize::MAX);
  // The heap engine may keep the removed entry's stale item (deadline
  // u64::MAX) until it is popped; the wheel has no stale elements.
  assert!(
    t.next_due().is_none_or(|d| d == u64::MAX),
    "{:?}",
    t.next_due()
  );
}

fn memory_grows_and_clear_resets(kind: EngineKind) {
  let (t, _) = table(kind, Config::new(100), 0);
  let empty = t.memory_bytes();
  for k in 0..10_000 {
    t.insert(k, k, None).unwrap();
  }
  let full = t.memory_bytes();
  assert!(full > empty + 10_000 * 16, "{empty} -> {full}");
  t.clear();
  assert!(t.memory_bytes() < full);
}

fn for_each_callback_may_reenter(kind: EngineKind) {
  let (t, _) = table(kind, Config::new(100), 0);
  for k in 0..100 {
    t.insert(k, k, None).unwrap();
  }
  // Removing and inserting from inside the callback must not deadlock.
  t.for_each(&mut |k, _, _| {
    t.remove(k);
    t.insert(k + 1000, 0, None).unwrap();
  });
  assert_eq!(t.len(), 100);
  assert!(!t.contains(&5));
}

fn timeouts_beyond_u32_millis(kind: EngineKind) {
  // 2^32 ms is 49.7 days; the wheel keeps such timeouts in a side table.
  let big = u64::from(u32::MAX);
  let (t, clock) = table(kind, Config::new(100), 0);
  t.insert(1, 1, Some(big - 1)).unwrap();
  t.insert(2, 2, Some(big)).unwrap();
  t.insert(3, 3, Some(big + 10)).unwrap();
  t.insert(4, 4, Some(big)).unwrap();
  t.insert(4, 44, Some(5)).unwrap(); // big -> small
  t.insert(5, 5, Some(5)).unwrap();
  t.insert(5, 55, Some(big + 1)).unwrap(); // small -> big
  assert_eq!(keys(&t.expire(5, 10)), BTreeSet::from([4]));
  clock.set(big - 1);
  assert!(!t.contains(&1) && t.contains(&2) && t.contains(&3) && t.contains(&5));
  assert!(t.touch(&2)); // deadline 2 * big - 1
  assert_eq!(keys(&t.expire(big - 1, 10)), BTreeSet::from([1]));
  assert_eq!(keys(&t.expire(big + 1, 10)), BTreeSet::from([5]));
  assert_eq!(keys(&t.expire(big + 10, 10)), BTreeSet::from([3]));
  assert_eq!(t.remove(&2), Some(2));
  assert!(t.is_empty());
  // Slots reused after big timeouts carry no stale side-table entry.
  clock.set(big + 10);
  t.insert(6, 6, None).unwrap();
  clock.set(big + 109);
  assert!(t.contains(&6));
  assert!(t.expire(big + 109, 10).is_empty());
  assert_eq!(keys(&t.expire(big + 110, 10)), BTreeSet::from([6]));
}
