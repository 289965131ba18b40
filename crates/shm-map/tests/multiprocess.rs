//! Real processes sharing one map: random operations, exact incr totals, and
//! the open_or_create race. Children are this test binary re-executed with a
//! role in the environment (see `common::child`).

mod common;
use common::{child, opts, Name, ROLE};
use lrukit_shm_map::{Options, SharedMap, Value, ValueRef};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn env(k: &str) -> String {
  std::env::var(k).unwrap_or_else(|_| panic!("missing {k}"))
}

fn xorshift(x: &mut u64) -> u64 {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  *x
}

/// Entry point of every child role; a no-op in a normal test run.
#[test]
fn child_entry() {
  let Ok(role) = std::env::var(ROLE) else {
    return;
  };
  common::die_with_parent();
  let name = env("LRUKIT_MAP");
  match role.as_str() {
    "random" => {
      let m = SharedMap::open(&name).unwrap();
      let mut x: u64 = env("LRUKIT_SEED").parse().unwrap();
      for _ in 0..4000 {
        let r = xorshift(&mut x);
        let k = format!("k{}", r % 400);
        let k = k.as_bytes();
        match r % 9 {
          0 => {
            m.delete(k).unwrap();
          }
          1 => {
            let _ = m.add(k, ValueRef::String(&r.to_le_bytes()), None).unwrap();
          }
          2 => match m.incr(b"ctr", 1.0, 0.0, None) {
            Ok(_) => {}
            Err(e) => panic!("{e}"),
          },
          3 => {
            let cur = m.get(k).unwrap();
            if let Some(v) = cur {
              let _ = m
                .compare_and_set(k, v.as_ref(), ValueRef::BigInt(r as i64))
                .unwrap();
            }
          }
          4 => {
            let _ = m.keys().unwrap();
          }
          5 | 6 => m
            .set(
              k,
              ValueRef::Bytes(&vec![(r >> 8) as u8; (r % 64) as usize]),
              Some(r % 3 * 50),
            )
            .unwrap(),
          _ => {
            if let Some(Value::Bytes(b)) = m.get(k).unwrap() {
              assert!(b.iter().all(|&c| c == b[0]), "torn value {b:?}");
            }
          }
        }
      }
    }
    "incr" => {
      let m = SharedMap::open(&name).unwrap();
      let n: u32 = env("LRUKIT_N").parse().unwrap();
      for i in 0..n {
        let k = format!("c{}", i % 4);
        m.incr(k.as_bytes(), 1.0, 0.0, None).unwrap();
        m.incr(b"big", 1.0, 0.0, None).unwrap();
      }
    }
    "race" => {
      let start: u64 = env("LRUKIT_START").parse().unwrap();
      while (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64)
        < start
      {
        std::hint::spin_loop();
      }
      let m = SharedMap::open_or_create(&name, &opts(100)).unwrap();
      let me = env("LRUKIT_SEED");
      m.set(
        format!("p{me}").as_bytes(),
        ValueRef::String(me.as_bytes()),
        None,
      )
      .unwrap();
    }
    other => panic!("unknown role {other}"),
  }
}

fn run_children(
  role: &str,
  name: &str,
  n: usize,
  extra: impl Fn(usize) -> Vec<(&'static str, String)>,
) {
  let kids: Vec<_> = (0..n)
    .map(|i| {
      let mut envs = vec![(ROLE, role.to_string()), ("LRUKIT_MAP", name.to_string())];
      envs.extend(extra(i));
      child("child_entry", &envs).spawn().unwrap()
    })
    .collect();
  for mut k in kids {
    let st = k.wait().unwrap();
    assert!(st.success(), "child {role} failed: {st:?}");
  }
}

#[test]
fn four_processes_random_operations() {
  let n = Name::new("mp-rand");
  let m = SharedMap::create(
    &n,
    &Options {
      shards: Some(4),
      ..opts(300)
    },
  )
  .unwrap();
  let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
  // The parent reads concurrently too.
  let reader = {
    let name = n.0.clone();
    let stop = stop.clone();
    std::thread::spawn(move || {
      let m = SharedMap::open(&name).unwrap();
      let mut reads = 0u64;
      while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for i in 0..400 {
          if let Some(Value::Bytes(b)) = m.get(format!("k{i}").as_bytes()).unwrap() {
            assert!(b.iter().all(|&c| c == b[0]));
          }
          reads += 1;
        }
      }
      reads
    })
  };
  run_children("random", &n, 4, |i| {
    vec![("LRUKIT_SEED", format!("{}", 0x1234_5678 + i * 7919))]
  });
  stop.store(true, std::sync::atomic::Ordering::Relaxed);
  assert!(reader.join().unwrap() > 0);
  let r = m.verify();
  assert!(r.ok, "{r:?}");
  let st = m.stats();
  assert!(st.size <= 300 + 4, "{st:?}");
  assert_eq!(st.lock_recoveries, 0);
  // Every incr was counted exactly once.
  let ctr = match m.get(b"ctr").unwrap() {
    Some(Value::Number(n)) => n,
    other => panic!("{other:?}"),
  };
  assert!(ctr > 0.0);
}

#[test]
fn four_processes_incr_exact_totals() {
  let n = Name::new("mp-incr");
  let m = SharedMap::create(&n, &opts(100)).unwrap();
  m.set(b"big", ValueRef::BigInt(0), None).unwrap();
  let per = 20_000u32;
  run_children("incr", &n, 4, |_| vec![("LRUKIT_N", per.to_string())]);
  for c in 0..4 {
    assert_eq!(
      m.get(format!("c{c}").as_bytes()).unwrap(),
      Some(Value::Number((4 * per / 4) as f64)),
      "c{c}"
    );
  }
  assert_eq!(m.get(b"big").unwrap(), Some(Value::BigInt(4 * per as i64)));
  assert!(m.verify().ok);
}

#[test]
fn open_or_create_race_processes() {
  let n = Name::new("mp-race");
  let start = SystemTime::now()
    .duration_since(UNIX_EPOCH)
    .unwrap()
    .as_millis() as u64
    + 300;
  // Threads of this process join the race too.
  let threads: Vec<_> = (0..3)
    .map(|t| {
      let name = n.0.clone();
      std::thread::spawn(move || {
        while (SystemTime::now()
          .duration_since(UNIX_EPOCH)
          .unwrap()
          .as_millis() as u64)
          < start
        {
          std::thread::sleep(Duration::from_micros(100));
        }
        let m = SharedMap::open_or_create(&name, &opts(100)).unwrap();
        m.set(format!("t{t}").as_bytes(), ValueRef::Null, None)
          .unwrap();
      })
    })
    .collect();
  run_children("race", &n, 6, |i| {
    vec![
      ("LRUKIT_START", start.to_string()),
      ("LRUKIT_SEED", i.to_string()),
    ]
  });
  for t in threads {
    t.join().unwrap();
  }
  let m = SharedMap::open(&n).unwrap();
  for i in 0..6 {
    assert_eq!(
      m.get(format!("p{i}").as_bytes()).unwrap(),
      Some(Value::String(i.to_string().into_bytes()))
    );
  }
  assert_eq!(m.len(), 9);
  assert!(m.verify().ok);
}
