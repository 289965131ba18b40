//! The crash loop: writer processes are SIGKILLed at random moments, and —
//! through the `test-hooks` crash points — while holding a shard lock in the
//! middle of a write (killing themselves, or blocking until the parent kills
//! them). After every death the parent checks that both maps `verify()` and
//! that every write the dead writer acknowledged is in the map; survivors
//! keep working and check their own keys as they go.
//!
//! Two maps are written at once:
//! * the *strict* map (eviction `None`, never full): `set`, `set` with a TTL
//!   (one hour), `delete`, `add`, `compare_and_set`, `incr` of the writer's
//!   own counter and of one shared counter. Nothing acknowledged may be lost,
//!   and the results of `delete`/`add`/`compare_and_set` must match the
//!   writer's acknowledged history exactly.
//! * the *pressure* map (LRU, about 2.7× more keys than capacity, short
//!   TTLs, `purge_expired`, `evict_older_than`, an occasional `clear`): an
//!   entry may vanish (evicted, expired, cleared), but one that is present
//!   must hold the last value its writer acknowledged (or the one in flight)
//!   — never an older or a deleted one.
//!
//! `LRUKIT_KILLS` (deaths in all, default 100) and `LRUKIT_WRITERS` (writers
//! alive at once, default 4) size the run; the long run is
//! `LRUKIT_WRITERS=8 LRUKIT_KILLS=8000 cargo test -p lrukit-shm-map --test
//! crash -- --nocapture sigkill_loop` (add `--features lease-lock` for the
//! lease lock), or `npm run test:kill`. The loop ends with one
//! `KILL-LOOP {json}` line of figures on stderr (`scripts/kill-loop.mjs`
//! reads it).
#![cfg(unix)]

mod common;
use common::{child, Name, ROLE};
use lrukit_shm_map::{
  debug_set_crash_hook, hook_point, CrashAction, Eviction, Options, SharedMap, Value, ValueRef,
};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Keys of one writer in the strict map (plus its counter).
const KEYS_PER_WRITER: u64 = 40;
/// Keys of one writer in the pressure map.
const PKEYS_PER_WRITER: u64 = 64;
/// TTL of the strict map's TTL writes: long enough never to expire in a run.
const LONG_TTL_MS: u64 = 3_600_000;

fn xorshift(x: &mut u64) -> u64 {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  *x
}

fn env(k: &str) -> String {
  std::env::var(k).unwrap_or_else(|_| panic!("missing {k}"))
}

fn env_or(k: &str, default: u64) -> u64 {
  std::env::var(k)
    .ok()
    .and_then(|s| s.parse().ok())
    .unwrap_or(default)
}

/// A pressure-map value: its sequence number, then a length that varies.
fn pval(seq: u64) -> Vec<u8> {
  format!("{seq}:{}", "x".repeat((seq % 41) as usize)).into_bytes()
}

/// The writer role. Protocol on stdout, one line each:
/// `B <seq> <op> <key> <value> <expected>` before an operation that writes,
/// `A <seq> <result>` after it returned Ok. Ops: strict map `S` set, `T` set
/// with a TTL, `D` delete, `A` add, `C` compare-and-set (`expected` is what
/// it compares with), `I` own counter, `X` shared counter; pressure map `P`
/// set, `Q` delete, `E` purge_expired, `O` evict_older_than, `Z` clear.
/// Results: `1`/`0` for booleans, the new value for `I`, `-` otherwise.
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
  let p = SharedMap::open(&env("LRUKIT_PMAP")).unwrap();
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
  let mut pmine: HashMap<u64, Option<u64>> = HashMap::new();
  let ctr_key = format!("g{gen}-ctr");
  let started = Instant::now();
  let b = |out: &mut std::io::StdoutLock<'_>, seq: u64, op: char, k: u64, v: i64, e: i64| {
    writeln!(out, "B {seq} {op} {k} {v} {e}").unwrap();
  };
  for seq in 0u64.. {
    if started.elapsed() > Duration::from_secs(20) {
      break;
    }
    let r = xorshift(&mut x);
    let ki = (r >> 24) % KEYS_PER_WRITER;
    let key = format!("g{gen}-{ki}");
    let key = key.as_bytes();
    let pk = (r >> 24) % PKEYS_PER_WRITER;
    let pkey = format!("p{gen}-{pk}");
    let pkey = pkey.as_bytes();
    let v = seq as i64;
    let cur = mine.get(&ki).copied().flatten();
    let ack = |out: &mut std::io::StdoutLock<'_>, res: &str| {
      writeln!(out, "A {seq} {res}").unwrap();
    };
    let bit = |t: bool| if t { "1" } else { "0" };
    match (r >> 40) % 10_000 {
      0..=1699 => {
        b(&mut out, seq, 'S', ki, v, 0);
        m.set(key, ValueRef::BigInt(v), None).unwrap();
        ack(&mut out, "-");
        mine.insert(ki, Some(v));
      }
      1700..=2499 => {
        b(&mut out, seq, 'T', ki, v, 0);
        m.set(key, ValueRef::BigInt(v), Some(LONG_TTL_MS)).unwrap();
        ack(&mut out, "-");
        mine.insert(ki, Some(v));
      }
      2500..=3299 => {
        b(&mut out, seq, 'D', ki, 0, 0);
        let had = m.delete(key).unwrap();
        ack(&mut out, bit(had));
        assert_eq!(had, cur.is_some(), "writer {gen}: delete {ki}");
        mine.insert(ki, None);
      }
      3300..=4099 => {
        b(&mut out, seq, 'A', ki, v, 0);
        let added = m.add(key, ValueRef::BigInt(v), None).unwrap();
        ack(&mut out, bit(added));
        assert_eq!(added, cur.is_none(), "writer {gen}: add {ki}");
        if added {
          mine.insert(ki, Some(v));
        }
      }
      4100..=4899 => {
        // Three times in four the expected value is the current one.
        let e = match cur {
          Some(c) if !r.is_multiple_of(4) => c,
          Some(c) => c + 1,
          None => 0,
        };
        b(&mut out, seq, 'C', ki, v, e);
        let swapped = m
          .compare_and_set(key, ValueRef::BigInt(e), ValueRef::BigInt(v))
          .unwrap();
        ack(&mut out, bit(swapped));
        assert_eq!(swapped, cur == Some(e), "writer {gen}: cas {ki}");
        if swapped {
          mine.insert(ki, Some(v));
        }
      }
      4900..=5399 => {
        b(&mut out, seq, 'I', 0, 0, 0);
        let n = m.incr(ctr_key.as_bytes(), 1.0, 0.0, None).unwrap();
        ack(&mut out, &n.to_string());
      }
      5400..=5699 => {
        b(&mut out, seq, 'X', 0, 0, 0);
        m.incr(b"shared", 1.0, 0.0, None).unwrap();
        ack(&mut out, "-");
      }
      5700..=6199 => {
        // Read-your-writes on this writer's own keys, through recoveries of
        // other writers' deaths.
        let got = m.get(key).unwrap();
        assert_eq!(
          got,
          cur.map(Value::BigInt),
          "writer {gen} reads back g{gen}-{ki}"
        );
      }
      6200..=7899 => {
        // A third of the pressure writes expire within 50 ms.
        let ttl = if r.is_multiple_of(3) {
          Some(1 + r % 50)
        } else {
          None
        };
        b(&mut out, seq, 'P', pk, v, 0);
        p.set(pkey, ValueRef::String(&pval(seq)), ttl).unwrap();
        ack(&mut out, "-");
        pmine.insert(pk, Some(seq));
      }
      7900..=8599 => {
        b(&mut out, seq, 'Q', pk, 0, 0);
        p.delete(pkey).unwrap();
        ack(&mut out, "-");
        pmine.insert(pk, None);
      }
      8600..=9599 => {
        // Present means the last value written (eviction, expiry and clear
        // may remove it; nothing may bring back an older one).
        if let Some(got) = p.get(pkey).unwrap() {
          let want = pmine
            .get(&pk)
            .copied()
            .flatten()
            .map(|s| Value::String(pval(s)));
          assert_eq!(Some(got), want, "writer {gen} reads back p{gen}-{pk}");
        }
      }
      9600..=9799 => {
        b(&mut out, seq, 'E', 0, 0, 0);
        p.purge_expired().unwrap();
        ack(&mut out, "-");
      }
      9800..=9994 => {
        b(&mut out, seq, 'O', 0, 0, 0);
        let now = std::time::SystemTime::now()
          .duration_since(std::time::UNIX_EPOCH)
          .unwrap()
          .as_millis() as u64;
        p.evict_older_than(now.saturating_sub(200), Some(8))
          .unwrap();
        ack(&mut out, "-");
      }
      _ => {
        b(&mut out, seq, 'Z', 0, 0, 0);
        p.clear().unwrap();
        ack(&mut out, "-");
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
    hook_point::DELETE_MARKED => {
      m.delete(b"k1").unwrap();
    }
    hook_point::EVICT_MARKED => m.set(b"new", ValueRef::BigInt(-1), None).unwrap(),
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

/// An operation begun (`B` line) and not yet acknowledged.
#[derive(Clone, Copy, Debug)]
struct Pending {
  op: char,
  k: u64,
  v: i64,
  e: i64,
}

impl Pending {
  fn strict_key(&self) -> Option<u64> {
    matches!(self.op, 'S' | 'T' | 'D' | 'A' | 'C').then_some(self.k)
  }
  fn pressure_key(&self) -> Option<u64> {
    matches!(self.op, 'P' | 'Q').then_some(self.k)
  }
}

struct Kid {
  child: Child,
  gen: u64,
  mode: Mode,
  deadline: Instant,
  /// Acknowledged state of its strict keys; `None` = absent.
  model: HashMap<u64, Option<i64>>,
  /// Acknowledged state of its pressure keys (sequence numbers).
  pmodel: HashMap<u64, Option<u64>>,
  ctr: f64,
  pending: Option<Pending>,
  shared_acked: u64,
  acked: u64,
  clears: u64,
  /// Acknowledged results that contradict the writer's own history.
  wrong: u64,
  hooked: bool,
}

#[derive(Default)]
struct Tally {
  deaths: u64,
  killed: u64,
  plain: u64,
  hook_kill: u64,
  hook_block: u64,
  exited: u64,
  acked: u64,
  clears: u64,
  checked_keys: u64,
  lost_acked: u64,
  wrong_results: u64,
  stale_present: u64,
  in_flight_applied: u64,
  in_flight_dropped: u64,
  shared_acked: u64,
  shared_in_flight: u64,
}

struct Maps {
  name: String,
  pname: String,
  strict: SharedMap,
  pressure: SharedMap,
}

fn spawn(maps: &Maps, gen: u64, rng: &mut u64, tx: &mpsc::Sender<(u64, Option<String>)>) -> Kid {
  let r = xorshift(rng);
  let (mode, hook) = match r % 3 {
    0 => (Mode::Plain, "none".to_string()),
    1 => (
      Mode::HookKill,
      format!("kill:{}:{}", hook_point::ANY, r % 400),
    ),
    _ => {
      // Points a writer of this test reaches, and after how many hits (the
      // rarer the point, the sooner).
      let points = [
        (hook_point::SET_WRITING, 300),
        (hook_point::SET_LINKED, 300),
        (hook_point::DELETE_MARKED, 150),
        (hook_point::EVICT_MARKED, 100),
        (hook_point::INCR, 100),
        (hook_point::CLEAR, 1),
        (hook_point::REPAIR, 1),
      ];
      let (p, n) = points[((r >> 8) % points.len() as u64) as usize];
      (Mode::HookBlock, format!("block:{p}:{}", (r >> 20) % n))
    }
  };
  let life = match mode {
    Mode::Plain => Duration::from_millis(5 + (r >> 16) % 60),
    _ => Duration::from_millis(1500),
  };
  let mut c = child(
    "child_entry",
    &[
      (ROLE, "writer".to_string()),
      ("LRUKIT_MAP", maps.name.clone()),
      ("LRUKIT_PMAP", maps.pname.clone()),
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
    pmodel: HashMap::new(),
    ctr: 0.0,
    pending: None,
    shared_acked: 0,
    acked: 0,
    clears: 0,
    wrong: 0,
    hooked: false,
  }
}

fn on_line(kid: &mut Kid, line: &str) {
  let f: Vec<&str> = line.split_whitespace().collect();
  match f.first().copied() {
    Some("B") if f.len() == 6 => {
      kid.pending = Some(Pending {
        op: f[2].chars().next().unwrap(),
        k: f[3].parse().unwrap(),
        v: f[4].parse().unwrap(),
        e: f[5].parse().unwrap(),
      });
    }
    Some("A") if f.len() == 3 => {
      let p = kid.pending.take().expect("ack without begin");
      let res = f[2];
      let cur = kid.model.get(&p.k).copied().flatten();
      let mut expect = |want: bool| {
        if (res == "1") != want {
          kid.wrong += 1;
          eprintln!(
            "writer {}: {} of key {} returned {res}, its history says {want} (value {cur:?})",
            kid.gen, p.op, p.k
          );
        }
      };
      match p.op {
        'S' | 'T' => {
          kid.model.insert(p.k, Some(p.v));
        }
        'D' => {
          expect(cur.is_some());
          kid.model.insert(p.k, None);
        }
        'A' => {
          expect(cur.is_none());
          if res == "1" {
            kid.model.insert(p.k, Some(p.v));
          }
        }
        'C' => {
          expect(cur == Some(p.e));
          if res == "1" {
            kid.model.insert(p.k, Some(p.v));
          }
        }
        'I' => kid.ctr = res.parse().unwrap(),
        'X' => kid.shared_acked += 1,
        'P' => {
          kid.pmodel.insert(p.k, Some(p.v as u64));
        }
        'Q' => {
          kid.pmodel.insert(p.k, None);
        }
        'Z' => kid.clears += 1,
        'E' | 'O' => {}
        op => panic!("unknown op {op}"),
      }
      kid.acked += 1;
    }
    Some("HOOKED") => kid.hooked = true,
    _ => {} // libtest chatter
  }
}

/// What a strict key may hold after its writer died with `pending` in
/// flight, besides its acknowledged value `want`.
fn in_flight_alternative(p: Option<Pending>, k: u64, want: Option<i64>) -> Option<Option<i64>> {
  let p = p.filter(|p| p.strict_key() == Some(k))?;
  match p.op {
    'S' | 'T' => Some(Some(p.v)),
    'D' => Some(None),
    'A' => want.is_none().then_some(Some(p.v)),
    'C' => (want == Some(p.e)).then_some(Some(p.v)),
    _ => None,
  }
}

/// Called once the kid's stdout is closed (it is dead or exited).
fn on_death(maps: &Maps, mut kid: Kid, t: &mut Tally) {
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
  let (m, p) = (&maps.strict, &maps.pressure);
  let gen = kid.gen;
  // Strict map: exactly the acknowledged state, or the write in flight.
  let mut keys: HashSet<u64> = kid.model.keys().copied().collect();
  keys.extend(kid.pending.and_then(|p| p.strict_key()));
  for &k in &keys {
    let got = m.peek(format!("g{gen}-{k}").as_bytes()).unwrap();
    let want = kid.model.get(&k).copied().flatten();
    let alt = in_flight_alternative(kid.pending, k, want);
    t.checked_keys += 1;
    if got == want.map(Value::BigInt) {
      if alt.is_some_and(|a| a != want) {
        t.in_flight_dropped += 1;
      }
    } else if alt.is_some_and(|a| got == a.map(Value::BigInt)) {
      t.in_flight_applied += 1;
    } else {
      t.lost_acked += 1;
      eprintln!(
        "writer {gen}: key g{gen}-{k}: got {got:?}, acknowledged {want:?}, in flight {:?}",
        kid.pending
      );
    }
  }
  let ctr = match m.peek(format!("g{gen}-ctr").as_bytes()).unwrap() {
    Some(Value::Number(n)) => n,
    None => 0.0,
    other => panic!("{other:?}"),
  };
  let in_flight_incr = matches!(kid.pending, Some(Pending { op: 'I', .. }));
  if !(ctr == kid.ctr || (in_flight_incr && ctr == kid.ctr + 1.0)) {
    t.lost_acked += 1;
    eprintln!("writer {gen}: counter {ctr}, acknowledged {}", kid.ctr);
  }
  // Pressure map: present means the last acknowledged value (or the one in
  // flight).
  let mut pkeys: HashSet<u64> = kid.pmodel.keys().copied().collect();
  pkeys.extend(kid.pending.and_then(|p| p.pressure_key()));
  for &k in &pkeys {
    let Some(got) = p.peek(format!("p{gen}-{k}").as_bytes()).unwrap() else {
      continue;
    };
    let want = kid.pmodel.get(&k).copied().flatten();
    let flying = kid
      .pending
      .filter(|p| p.op == 'P' && p.k == k)
      .map(|p| p.v as u64);
    let ok = [want, flying]
      .into_iter()
      .flatten()
      .any(|s| got == Value::String(pval(s)));
    if !ok {
      t.stale_present += 1;
      eprintln!(
        "writer {gen}: pressure key p{gen}-{k} holds {got:?}, acknowledged {want:?}, in flight {flying:?}"
      );
    }
  }
  t.shared_acked += kid.shared_acked;
  if matches!(kid.pending, Some(Pending { op: 'X', .. })) {
    t.shared_in_flight += 1;
  }
  for (what, map) in [("strict", m), ("pressure", p)] {
    let r = map.verify();
    assert!(
      r.ok,
      "verify of the {what} map after the death of writer {gen}: {:?}",
      r.problems
    );
  }
  // Retire the dead writer's strict keys so the map stays small.
  for k in 0..KEYS_PER_WRITER {
    m.delete(format!("g{gen}-{k}").as_bytes()).unwrap();
  }
  m.delete(format!("g{gen}-ctr").as_bytes()).unwrap();
  t.deaths += 1;
  t.killed += u64::from(by_kill);
  t.acked += kid.acked;
  t.clears += kid.clears;
  t.wrong_results += kid.wrong;
  match kid.mode {
    Mode::Plain => t.plain += 1,
    Mode::HookKill => t.hook_kill += u64::from(by_kill),
    Mode::HookBlock => t.hook_block += u64::from(kid.hooked),
  }
}

#[test]
fn sigkill_loop_keeps_every_acknowledged_write() {
  let target = env_or("LRUKIT_KILLS", 100);
  let writers = env_or("LRUKIT_WRITERS", 4).max(1);
  let n = Name::new("crash");
  let pn = Name::new("press");
  let strict = SharedMap::create(
    &n,
    &Options {
      capacity: Some(4096.max(writers as u32 * 2 * (KEYS_PER_WRITER as u32 + 1) * 4)),
      max_key_bytes: 32,
      max_value_bytes: 16,
      eviction: Eviction::None,
      shards: Some(4),
      ..Options::default()
    },
  )
  .unwrap();
  // About 2.7 keys per slot: a full shard evicts on most new keys.
  let pressure = SharedMap::create(
    &pn,
    &Options {
      capacity: Some(24 * writers as u32),
      max_key_bytes: 32,
      max_value_bytes: 64,
      eviction: Eviction::Lru,
      shards: Some(4),
      ..Options::default()
    },
  )
  .unwrap();
  let maps = Maps {
    name: n.0.clone(),
    pname: pn.0.clone(),
    strict,
    pressure,
  };
  let started = Instant::now();
  let (tx, rx) = mpsc::channel();
  let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ std::process::id() as u64;
  let mut kids: HashMap<u64, Kid> = HashMap::new();
  let mut gen = 0u64;
  let mut t = Tally::default();
  for _ in 0..writers.min(target.max(1)) {
    gen += 1;
    kids.insert(gen, spawn(&maps, gen, &mut rng, &tx));
  }
  let limit = Duration::from_secs(30 + target);
  let mut last_report = Instant::now();
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
        on_death(&maps, kid, &mut t);
        if t.deaths + (kids.len() as u64) < target {
          gen += 1;
          kids.insert(gen, spawn(&maps, gen, &mut rng, &tx));
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
    if target >= 1000 && last_report.elapsed() >= Duration::from_secs(30) {
      last_report = Instant::now();
      eprintln!(
        "crash loop: {} / {target} deaths after {:.0?}",
        t.deaths,
        started.elapsed()
      );
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
        on_death(&maps, kid, &mut t);
      }
    }
  }
  let (m, p) = (&maps.strict, &maps.pressure);
  let shared = match m.peek(b"shared").unwrap() {
    Some(Value::Number(n)) => n as u64,
    None => 0,
    other => panic!("{other:?}"),
  };
  let shared_ok = shared >= t.shared_acked && shared <= t.shared_acked + t.shared_in_flight;
  if !shared_ok {
    t.lost_acked += 1;
  }
  // verify() takes every shard lock, so a shard whose last owner died and
  // that nobody has locked since is recovered (and counted) before the
  // counters are read.
  let (rm, rp) = (m.verify(), p.verify());
  let (sm, sp) = (m.stats(), p.stats());
  let recoveries = sm.lock_recoveries + sp.lock_recoveries;
  let repairs = sm.repairs + sp.repairs;
  let lock = if cfg!(feature = "lease-lock") {
    "owner-pid lease lock"
  } else {
    "robust pthread mutex"
  };
  eprintln!(
    "crash loop ({lock}, {writers} writers): {} deaths in {:.1?} ({} by SIGKILL: plain {}, self-SIGKILL in a critical section {}, blocked holding a lock then killed {}; exited {}); \
     {} acknowledged writes ({} clears); lock_recoveries {recoveries}, repairs {repairs}; {} acknowledged keys checked, lost {}, wrong results {}, stale values {}; \
     in-flight writes applied {} / dropped {}; shared counter {shared} (acked {} + {} in flight); pressure map: {} evictions, {} expirations",
    t.deaths,
    started.elapsed(),
    t.killed,
    t.plain,
    t.hook_kill,
    t.hook_block,
    t.exited,
    t.acked,
    t.clears,
    t.checked_keys,
    t.lost_acked,
    t.wrong_results,
    t.stale_present,
    t.in_flight_applied,
    t.in_flight_dropped,
    t.shared_acked,
    t.shared_in_flight,
    sp.evictions,
    sp.expirations,
  );
  eprintln!(
    "KILL-LOOP {{\"runner\":\"rust\",\"lock\":\"{lock}\",\"writers\":{writers},\"deaths\":{},\"kills\":{},\"hookKills\":{},\"acked\":{},\"clears\":{},\"recoveries\":{recoveries},\"repairs\":{repairs},\"checkedKeys\":{},\"lost\":{},\"wrong\":{},\"stale\":{},\"evictions\":{},\"expirations\":{},\"verifyOk\":{},\"seconds\":{:.1}}}",
    t.deaths,
    t.killed,
    t.hook_kill + t.hook_block,
    t.acked,
    t.clears,
    t.checked_keys,
    t.lost_acked,
    t.wrong_results,
    t.stale_present,
    sp.evictions,
    sp.expirations,
    rm.ok && rp.ok,
    started.elapsed().as_secs_f64(),
  );
  assert!(
    shared_ok,
    "shared counter {shared}, acknowledged {} (+{} in flight)",
    t.shared_acked, t.shared_in_flight
  );
  assert_eq!(t.lost_acked, 0, "acknowledged writes were lost");
  assert_eq!(
    t.wrong_results, 0,
    "results contradicting the acknowledged history"
  );
  assert_eq!(t.stale_present, 0, "stale or deleted values came back");
  assert!(
    recoveries >= t.hook_kill + t.hook_block,
    "every death inside a critical section must be recovered"
  );
  assert!(t.hook_kill + t.hook_block > 0 || target < 5);
  assert!(sp.evictions > 0 || target < 5, "no eviction pressure");
  assert!(rm.ok, "{:?}", rm.problems);
  assert!(rp.ok, "{:?}", rp.problems);
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
    capacity: Some(16),
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

  // Delete marked its record DEAD (its commit point) but its cell is still
  // there: the entry is gone, nothing else.
  fill(&m, 14);
  died(&m, hook_point::DELETE_MARKED, 1);
  assert_eq!(big(&m, "k1"), None);
  untouched(&m, &[1]);
  assert_eq!(m.len(), 14);

  // Eviction for a new key marked its victim (the oldest entry, k0) DEAD:
  // the victim is gone, the new key was never stored, nothing else changed.
  fill(&m, 15);
  assert_eq!(m.len(), 16);
  died(&m, hook_point::EVICT_MARKED, 1);
  assert_eq!(big(&m, "new"), None);
  assert_eq!(big(&m, "k0"), None);
  assert_eq!(m.len(), 15);
  untouched(&m, &[0]);

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

  // clear() cut after emptying the ring: every entry is gone.
  fill(&m, 14);
  died(&m, hook_point::CLEAR, 1);
  for i in 0..14u8 {
    assert_eq!(big(&m, &format!("k{i}")), None, "k{i}");
  }
  assert_eq!(m.len(), 0);
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
