//! The crash loop: writer processes are SIGKILLed at random moments, and —
//! through the `test-hooks` crash points — while holding a shard lock in the
//! middle of a write (killing themselves, or blocking until the parent kills
//! them). After every death the parent checks that `verify()` is ok and that
//! every write the dead writer acknowledged is in the map; survivors keep
//! working and check their own keys as they go.
//!
//! `LRUKIT_KILLS=200 cargo test -p lrukit-shm-map --test crash -- --nocapture`
//! for the long run (default 100 deaths).
#![cfg(unix)]

mod common;
use common::{child, Name, ROLE};
use lrukit_shm_map::{
  debug_set_crash_hook, hook_point, CrashAction, Eviction, Options, SharedMap, Value, ValueRef,
};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const KEYS_PER_WRITER: u64 = 40;

fn xorshift(x: &mut u64) -> u64 {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  *x
}

fn env(k: &str) -> String {
  std::env::var(k).unwrap_or_else(|_| panic!("missing {k}"))
}

/// The writer role. Protocol on stdout, one line each:
/// `B <seq> S <k> <v>` / `B <seq> D <k>` / `B <seq> I` / `B <seq> X` before
/// an operation, `A <seq> [result]` after it returned Ok.
#[test]
fn child_entry() {
  let Ok(role) = std::env::var(ROLE) else {
    return;
  };
  common::die_with_parent();
  if role == "point" {
    return point_child();
  }
  assert_eq!(role, "writer");
  let m = SharedMap::open(&env("LRUKIT_MAP")).unwrap();
  let gen: u64 = env("LRUKIT_GEN").parse().unwrap();
  let mut x: u64 = env("LRUKIT_SEED").parse().unwrap();
  let hook = env("LRUKIT_HOOK");
  let mut parts = hook.split(':');
  let action = match parts.next().unwrap() {
    "kill" => Some(CrashAction::Kill),
    "block" => Some(CrashAction::Block),
    _ => None,
  };
  if let Some(action) = action {
    let point: u32 = parts.next().unwrap().parse().unwrap();
    let after: u64 = parts.next().unwrap().parse().unwrap();
    debug_set_crash_hook(point, after, action);
  }
  let mut out = std::io::stdout().lock();
  let mut mine: HashMap<u64, Option<i64>> = HashMap::new();
  let ctr_key = format!("g{gen}-ctr");
  let started = Instant::now();
  for seq in 0..50_000u64 {
    if started.elapsed() > Duration::from_secs(20) {
      break;
    }
    let r = xorshift(&mut x);
    let ki = (r >> 24) % KEYS_PER_WRITER;
    let key = format!("g{gen}-{ki}");
    match (r >> 40) % 10 {
      0..=4 => {
        let v = seq as i64;
        writeln!(out, "B {seq} S {ki} {v}").unwrap();
        m.set(key.as_bytes(), ValueRef::BigInt(v), None).unwrap();
        writeln!(out, "A {seq}").unwrap();
        mine.insert(ki, Some(v));
      }
      5 | 6 => {
        writeln!(out, "B {seq} D {ki}").unwrap();
        m.delete(key.as_bytes()).unwrap();
        writeln!(out, "A {seq}").unwrap();
        mine.insert(ki, None);
      }
      7 => {
        writeln!(out, "B {seq} I").unwrap();
        let v = m.incr(ctr_key.as_bytes(), 1.0, 0.0, None).unwrap();
        writeln!(out, "A {seq} {v}").unwrap();
      }
      8 => {
        writeln!(out, "B {seq} X").unwrap();
        m.incr(b"shared", 1.0, 0.0, None).unwrap();
        writeln!(out, "A {seq}").unwrap();
      }
      _ => {
        // Read-your-writes on this writer's own keys, through recoveries of
        // other writers' deaths.
        let got = m.get(key.as_bytes()).unwrap();
        let want = mine.get(&ki).copied().flatten().map(Value::BigInt);
        assert_eq!(got, want, "writer {gen} reads back {key}");
      }
    }
  }
}

/// Arms a self-SIGKILL at one crash point, then runs the operation that
/// reaches it. Returning normally means the point was not reached.
fn point_child() {
  let m = SharedMap::open(&env("LRUKIT_MAP")).unwrap();
  let point: u32 = env("LRUKIT_POINT").parse().unwrap();
  let action = if env("LRUKIT_HOOK") == "block" {
    CrashAction::Block
  } else {
    CrashAction::Kill
  };
  debug_set_crash_hook(point, 0, action);
  match point {
    hook_point::SET_WRITING => m.set(b"new", ValueRef::BigInt(-1), None).unwrap(),
    hook_point::SET_LINKED => m.set(b"k0", ValueRef::BigInt(999), None).unwrap(),
    hook_point::DELETE_UNLINKED => {
      m.delete(b"k1").unwrap();
    }
    hook_point::EVICT_UNLINKED => m.set(b"new", ValueRef::BigInt(-1), None).unwrap(),
    hook_point::INCR => {
      m.incr(b"ctr", 1.0, 0.0, None).unwrap();
    }
    hook_point::REPAIR => {
      // The shard's last writer died: this read recovers it, and dies
      // halfway through the repair.
      m.get(b"k2").unwrap();
    }
    hook_point::CLEAR => m.clear().unwrap(),
    p => panic!("point {p}"),
  }
}

enum Mode {
  /// SIGKILL at a random moment.
  Plain,
  /// The crash hook makes it SIGKILL itself inside a critical section.
  HookKill,
  /// The crash hook makes it block inside a critical section; we kill it.
  HookBlock,
}

struct Kid {
  child: Child,
  gen: u64,
  mode: Mode,
  deadline: Instant,
  /// Acknowledged state of its keys; `None` = absent.
  model: HashMap<u64, Option<i64>>,
  ctr: f64,
  /// The operation begun but not acknowledged: (kind, key, value).
  pending: Option<(char, u64, i64)>,
  shared_acked: u64,
  hooked: bool,
}

#[derive(Default)]
struct Tally {
  deaths: u64,
  plain: u64,
  hook_kill: u64,
  hook_block: u64,
  exited: u64,
  checked_keys: u64,
  lost_acked: u64,
  in_flight_applied: u64,
  in_flight_dropped: u64,
  shared_acked: u64,
  shared_in_flight: u64,
}

fn spawn(name: &str, gen: u64, rng: &mut u64, tx: &mpsc::Sender<(u64, Option<String>)>) -> Kid {
  let r = xorshift(rng);
  let (mode, hook) = match r % 3 {
    0 => (Mode::Plain, "none".to_string()),
    1 => (
      Mode::HookKill,
      format!("kill:{}:{}", hook_point::ANY, r % 400),
    ),
    _ => {
      // Points a writer of this test reaches (no eviction, no clear).
      let points = [
        hook_point::SET_WRITING,
        hook_point::SET_LINKED,
        hook_point::DELETE_UNLINKED,
        hook_point::INCR,
      ];
      let p = points[((r >> 8) % points.len() as u64) as usize];
      (Mode::HookBlock, format!("block:{p}:{}", r % 300))
    }
  };
  let life = match mode {
    Mode::Plain => Duration::from_millis(5 + (r >> 16) % 60),
    _ => Duration::from_secs(3),
  };
  let mut c = child(
    "child_entry",
    &[
      (ROLE, "writer".to_string()),
      ("LRUKIT_MAP", name.to_string()),
      ("LRUKIT_GEN", gen.to_string()),
      ("LRUKIT_SEED", (r | 1).to_string()),
      ("LRUKIT_HOOK", hook),
    ],
  );
  c.stdout(Stdio::piped());
  let mut child = c.spawn().unwrap();
  let stdout = child.stdout.take().unwrap();
  let tx = tx.clone();
  let pid = child.id() as libc::pid_t;
  std::thread::spawn(move || {
    for line in BufReader::new(stdout).lines() {
      match line {
        Ok(l) => {
          if l.starts_with("HOOKED") {
            // Kill at once from here: the main thread may itself be waiting
            // for the lock this child holds.
            // SAFETY: plain kill(2) of our own child (not yet reaped: its
            // stdout is still open, so the pid cannot have been reused).
            unsafe { libc::kill(pid, libc::SIGKILL) };
          }
          if tx.send((gen, Some(l))).is_err() {
            return;
          }
        }
        Err(_) => break,
      }
    }
    let _ = tx.send((gen, None));
  });
  Kid {
    child,
    gen,
    mode,
    deadline: Instant::now() + life,
    model: HashMap::new(),
    ctr: 0.0,
    pending: None,
    shared_acked: 0,
    hooked: false,
  }
}

fn on_line(kid: &mut Kid, line: &str) {
  let f: Vec<&str> = line.split_whitespace().collect();
  match f.first().copied() {
    Some("B") => {
      let kind = f[2].chars().next().unwrap();
      let k = f.get(3).map_or(0, |s| s.parse().unwrap());
      let v = f.get(4).map_or(0, |s| s.parse().unwrap());
      kid.pending = Some((kind, k, v));
    }
    Some("A") => {
      let (kind, k, v) = kid.pending.take().expect("ack without begin");
      match kind {
        'S' => {
          kid.model.insert(k, Some(v));
        }
        'D' => {
          kid.model.insert(k, None);
        }
        'I' => kid.ctr = f[2].parse().unwrap(),
        'X' => kid.shared_acked += 1,
        _ => unreachable!(),
      }
    }
    Some("HOOKED") => kid.hooked = true,
    _ => {} // libtest chatter
  }
}

/// Called once the kid's stdout is closed (it is dead or exited).
fn on_death(m: &SharedMap, mut kid: Kid, t: &mut Tally) {
  let st = kid.child.wait().unwrap();
  let by_kill = st.signal() == Some(9);
  assert!(
    by_kill || st.success(),
    "writer {} ended badly: {st:?}",
    kid.gen
  );
  if !by_kill {
    eprintln!(
      "writer {} exited: {st:?} mode {} pending {:?} model {}",
      kid.gen,
      match kid.mode {
        Mode::Plain => "plain",
        Mode::HookKill => "hookkill",
        Mode::HookBlock => "hookblock",
      },
      kid.pending,
      kid.model.len()
    );
    t.exited += 1;
  }
  let get = |key: String| m.peek(key.as_bytes()).unwrap();
  for (&k, &want) in &kid.model {
    let got = get(format!("g{}-{k}", kid.gen));
    let want = want.map(Value::BigInt);
    t.checked_keys += 1;
    match kid.pending {
      Some(('S', pk, pv)) if pk == k => {
        if got == Some(Value::BigInt(pv)) {
          t.in_flight_applied += 1;
        } else if got == want {
          t.in_flight_dropped += 1;
        } else {
          t.lost_acked += 1;
          eprintln!(
            "writer {}: key {k}: got {got:?}, want {want:?} or {pv} (in flight)",
            kid.gen
          );
        }
      }
      Some(('D', pk, _)) if pk == k => {
        if got.is_none() {
          t.in_flight_applied += 1;
        } else if got == want {
          t.in_flight_dropped += 1;
        } else {
          t.lost_acked += 1;
          eprintln!(
            "writer {}: key {k}: got {got:?}, want {want:?} or none",
            kid.gen
          );
        }
      }
      _ => {
        if got != want {
          t.lost_acked += 1;
          eprintln!("writer {}: key {k}: got {got:?}, want {want:?}", kid.gen);
        }
      }
    }
  }
  // An in-flight set of a key never acknowledged before.
  if let Some(('S', pk, pv)) = kid.pending {
    if !kid.model.contains_key(&pk) {
      let got = get(format!("g{}-{pk}", kid.gen));
      assert!(got.is_none() || got == Some(Value::BigInt(pv)), "{got:?}");
    }
  }
  let ctr = match get(format!("g{}-ctr", kid.gen)) {
    Some(Value::Number(n)) => n,
    None => 0.0,
    other => panic!("{other:?}"),
  };
  let in_flight_incr = matches!(kid.pending, Some(('I', _, _)));
  if !(ctr == kid.ctr || (in_flight_incr && ctr == kid.ctr + 1.0)) {
    t.lost_acked += 1;
    eprintln!(
      "writer {}: counter {ctr}, acknowledged {}",
      kid.gen, kid.ctr
    );
  }
  t.shared_acked += kid.shared_acked;
  if matches!(kid.pending, Some(('X', _, _))) {
    t.shared_in_flight += 1;
  }
  let r = m.verify();
  assert!(
    r.ok,
    "verify after the death of writer {}: {:?}",
    kid.gen, r.problems
  );
  t.deaths += 1;
  match kid.mode {
    Mode::Plain => t.plain += 1,
    Mode::HookKill => t.hook_kill += u64::from(by_kill),
    Mode::HookBlock => t.hook_block += u64::from(kid.hooked),
  }
}

#[test]
fn sigkill_loop_keeps_every_acknowledged_write() {
  let target: u64 = std::env::var("LRUKIT_KILLS")
    .ok()
    .and_then(|s| s.parse().ok())
    .unwrap_or(100);
  let n = Name::new("crash");
  let opts = Options {
    capacity: 40_000,
    max_key_bytes: 32,
    max_value_bytes: 16,
    eviction: Eviction::None,
    shards: Some(4),
    ..Options::default()
  };
  let m = SharedMap::create(&n, &opts).unwrap();
  let started = Instant::now();
  let (tx, rx) = mpsc::channel();
  let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ std::process::id() as u64;
  let mut kids: HashMap<u64, Kid> = HashMap::new();
  let mut gen = 0u64;
  let mut t = Tally::default();
  for _ in 0..3 {
    gen += 1;
    kids.insert(gen, spawn(&n, gen, &mut rng, &tx));
  }
  let limit = Duration::from_secs(30 + target);
  while t.deaths < target {
    assert!(
      started.elapsed() < limit,
      "crash loop too slow: {} deaths",
      t.deaths
    );
    match rx.recv_timeout(Duration::from_millis(2)) {
      Ok((g, Some(line))) => {
        if let Some(k) = kids.get_mut(&g) {
          on_line(k, &line);
        }
      }
      Ok((g, None)) => {
        let kid = kids.remove(&g).unwrap();
        on_death(&m, kid, &mut t);
        if t.deaths < target {
          gen += 1;
          kids.insert(gen, spawn(&n, gen, &mut rng, &tx));
        }
      }
      Err(_) => {}
    }
    let now = Instant::now();
    for k in kids.values_mut() {
      if now >= k.deadline {
        let _ = k.child.kill();
      }
    }
  }
  // Stop the survivors and check them too.
  for k in kids.values_mut() {
    let _ = k.child.kill();
  }
  while !kids.is_empty() {
    let (g, line) = rx
      .recv_timeout(Duration::from_secs(10))
      .expect("survivor did not die");
    match line {
      Some(l) => {
        if let Some(k) = kids.get_mut(&g) {
          on_line(k, &l);
        }
      }
      None => {
        let kid = kids.remove(&g).unwrap();
        on_death(&m, kid, &mut t);
      }
    }
  }
  let shared = match m.peek(b"shared").unwrap() {
    Some(Value::Number(n)) => n as u64,
    None => 0,
    other => panic!("{other:?}"),
  };
  assert!(
    shared >= t.shared_acked && shared <= t.shared_acked + t.shared_in_flight,
    "shared counter {shared}, acknowledged {} (+{} in flight)",
    t.shared_acked,
    t.shared_in_flight
  );
  // verify() takes every shard lock, so a shard whose last owner died and
  // that nobody has locked since is recovered (and counted) before the
  // counters are read.
  let r = m.verify();
  let st = m.stats();
  eprintln!(
    "crash loop: {} deaths in {:.1?} (plain SIGKILL {}, self-SIGKILL in a critical section {}, blocked holding a lock then killed {}, exited {}); \
     lock_recoveries {}, repairs {}; {} acknowledged keys checked, lost {}; in-flight writes applied {} / dropped {}; shared counter {} (acked {})",
    t.deaths,
    started.elapsed(),
    t.plain,
    t.hook_kill,
    t.hook_block,
    t.exited,
    st.lock_recoveries,
    st.repairs,
    t.checked_keys,
    t.lost_acked,
    t.in_flight_applied,
    t.in_flight_dropped,
    shared,
    t.shared_acked
  );
  assert_eq!(t.lost_acked, 0, "acknowledged writes were lost");
  assert!(
    st.lock_recoveries >= t.hook_kill + t.hook_block,
    "every death inside a critical section must be recovered"
  );
  assert!(t.hook_kill + t.hook_block > 0 || target < 5);
  assert!(r.ok, "{:?}", r.problems);
}

fn run_point(name: &str, point: u32, hook: &str) -> std::process::ExitStatus {
  child(
    "child_entry",
    &[
      (ROLE, "point".to_string()),
      ("LRUKIT_MAP", name.to_string()),
      ("LRUKIT_POINT", point.to_string()),
      ("LRUKIT_HOOK", hook.to_string()),
    ],
  )
  .status()
  .unwrap()
}

fn fill(m: &SharedMap, n: u8) {
  m.clear().unwrap();
  for i in 0..n {
    m.set(format!("k{i}").as_bytes(), ValueRef::BigInt(i as i64), None)
      .unwrap();
  }
  m.set(b"ctr", ValueRef::Number(10.0), None).unwrap();
}

fn big(m: &SharedMap, k: &str) -> Option<Value> {
  m.peek(k.as_bytes()).unwrap()
}

/// Death at each crash point, one at a time: the shard is recovered, only
/// the write in flight is affected, and exactly as the protocol says.
#[test]
fn every_crash_point_recovers_exactly() {
  let n = Name::new("points");
  let opts = Options {
    capacity: 16,
    max_key_bytes: 16,
    max_value_bytes: 16,
    eviction: Eviction::Lru,
    shards: Some(1),
    ..Options::default()
  };
  let m = SharedMap::create(&n, &opts).unwrap();
  let died = |m: &SharedMap, point: u32, expect_recoveries: u64| {
    let before = m.stats().lock_recoveries;
    let st = run_point(&n, point, "kill");
    assert_eq!(
      st.signal(),
      Some(9),
      "point {point}: the child was not killed at its crash point: {st:?}"
    );
    let r = m.verify();
    assert!(r.ok, "point {point}: {:?}", r.problems);
    assert_eq!(
      m.stats().lock_recoveries,
      before + expect_recoveries,
      "point {point}"
    );
  };
  let untouched = |m: &SharedMap, skip: &[u8]| {
    for i in 0..14u8 {
      if !skip.contains(&i) {
        assert_eq!(
          big(m, &format!("k{i}")),
          Some(Value::BigInt(i as i64)),
          "k{i}"
        );
      }
    }
  };

  // New entry half written: dropped.
  fill(&m, 14);
  died(&m, hook_point::SET_WRITING, 1);
  assert_eq!(big(&m, "new"), None);
  untouched(&m, &[]);

  // Update linked and USED, old copy not yet freed: the newer version wins.
  fill(&m, 14);
  died(&m, hook_point::SET_LINKED, 1);
  assert_eq!(big(&m, "k0"), Some(Value::BigInt(999)));
  untouched(&m, &[0]);
  assert_eq!(m.len(), 15);

  // Delete unlinked but not freed: the entry is still there.
  fill(&m, 14);
  died(&m, hook_point::DELETE_UNLINKED, 1);
  assert_eq!(big(&m, "k1"), Some(Value::BigInt(1)));
  untouched(&m, &[]);

  // Eviction unlinked its victim but did not free it: nothing is lost and
  // the new key was never stored.
  fill(&m, 15);
  assert_eq!(m.len(), 16);
  died(&m, hook_point::EVICT_UNLINKED, 1);
  assert_eq!(big(&m, "new"), None);
  assert_eq!(m.len(), 16);
  untouched(&m, &[]);

  // incr: sequence odd, value not yet stored: unchanged.
  fill(&m, 14);
  died(&m, hook_point::INCR, 1);
  assert_eq!(big(&m, "ctr"), Some(Value::Number(10.0)));

  // A writer dies, then its recoverer dies halfway through the repair: the
  // next locker (our verify) repairs again.
  fill(&m, 14);
  died(&m, hook_point::SET_WRITING, 1);
  let before = m.stats().lock_recoveries;
  // Leave the shard dead-owned again, then let the REPAIR child find it.
  assert_eq!(
    run_point(&n, hook_point::SET_WRITING, "kill").signal(),
    Some(9)
  );
  assert_eq!(run_point(&n, hook_point::REPAIR, "kill").signal(), Some(9));
  let r = m.verify();
  assert!(r.ok, "{:?}", r.problems);
  assert_eq!(m.stats().lock_recoveries, before + 2);
  untouched(&m, &[]);

  // clear() cut in half: some entries gone, the rest intact.
  fill(&m, 14);
  died(&m, hook_point::CLEAR, 1);
  for i in 0..14u8 {
    let v = big(&m, &format!("k{i}"));
    assert!(
      v.is_none() || v == Some(Value::BigInt(i as i64)),
      "k{i}: {v:?}"
    );
  }
}

/// A live process stopped while holding a lock makes others fail with
/// ETIMEDOUT (bounded wait, no hang); once it dies, the next caller
/// recovers the shard.
#[test]
fn stopped_lock_holder_times_out_then_recovers() {
  let n = Name::new("stopped");
  let m = SharedMap::create(
    &n,
    &Options {
      shards: Some(1),
      ..common::opts(16)
    },
  )
  .unwrap();
  m.set(b"k0", ValueRef::BigInt(0), None).unwrap();
  m.set_lock_timeout(Duration::from_millis(100));
  let mut c = child(
    "child_entry",
    &[
      (ROLE, "point".to_string()),
      ("LRUKIT_MAP", n.0.clone()),
      ("LRUKIT_POINT", hook_point::SET_LINKED.to_string()),
      ("LRUKIT_HOOK", "block".to_string()),
    ],
  );
  c.stdout(Stdio::piped());
  let mut kid = c.spawn().unwrap();
  let mut lines = BufReader::new(kid.stdout.take().unwrap()).lines();
  assert!(lines.any(|l| l.unwrap().starts_with("HOOKED")));
  let t = Instant::now();
  let e = m.set(b"x", ValueRef::Null, None).unwrap_err();
  assert_eq!(e.code, "ETIMEDOUT", "{e}");
  assert!(t.elapsed() < Duration::from_secs(2));
  // Readers still answer: optimistic reads give up on the odd sequence and
  // wait for the lock, so they time out too rather than hang.
  assert_eq!(m.get(b"k0").unwrap_err().code, "ETIMEDOUT");
  kid.kill().unwrap();
  kid.wait().unwrap();
  m.set(b"x", ValueRef::Null, None).unwrap();
  assert_eq!(m.get(b"k0").unwrap(), Some(Value::BigInt(999)));
  assert_eq!(m.stats().lock_recoveries, 1);
  assert!(m.verify().ok);
}
