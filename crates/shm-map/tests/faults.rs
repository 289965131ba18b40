//! The process-level fault campaign: real processes stopped (SIGSTOP) while
//! holding a shard lock or repairing a shard, killed while 16 others wait
//! for their lock (with and without the kernel marking the death), killed
//! or stalled while creating a map, a map created in a full `/dev/shm`, and
//! a segment truncated under its users. Every wait is bounded and every
//! child is killed when its test ends (`common::Proc`), so a regression
//! fails instead of hanging.
//!
//! Figures (wait bounds, takeover times) are printed on stderr: run with
//! `cargo test -p lrukit-shm-map --test faults -- --nocapture`. Tests that
//! need something the machine may refuse (mounting a tmpfs) print `SKIP` on
//! the terminal and pass; `LRUKIT_REQUIRE_ALL=1` makes them fail instead.
#![cfg(target_os = "linux")]

mod common;
use common::{child, keys_in_shard, lock_owner_word, lock_word, shard_of, Name, Proc, ROLE};
use lrukit_shm_map::{
  debug_set_crash_hook, hook_point, required_memory_size, CrashAction, Eviction, Options,
  SharedMap, Value, ValueRef,
};
use std::io::{BufRead, Write};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

/// The lock timeout of the handles that are expected to time out.
const SHORT: Duration = Duration::from_millis(200);
/// Bounds on any wait for a child's line or exit.
const LINE: Duration = Duration::from_secs(20);

fn env(k: &str) -> String {
  std::env::var(k).unwrap_or_else(|_| panic!("missing {k}"))
}

fn env_ms(k: &str) -> Duration {
  Duration::from_millis(env(k).parse().unwrap())
}

fn with_timeout(t: Duration) -> Options {
  Options {
    lock_timeout: t,
    ..Options::default()
  }
}

/// Prints on the terminal even when libtest captures output (a skip must
/// be visible).
fn visible(msg: &str) {
  let _ = writeln!(std::io::stderr(), "{msg}");
}

/// A test that cannot run here: visible skip, or a failure under
/// `LRUKIT_REQUIRE_ALL=1`.
fn skip(test: &str, why: &str) {
  if std::env::var("LRUKIT_REQUIRE_ALL").as_deref() == Ok("1") {
    panic!("{test} cannot run here: {why} (LRUKIT_REQUIRE_ALL=1)");
  }
  visible(&format!("SKIP {test}: {why}"));
}

/// Runs `child_entry` (only) in a new process of this test binary as role `r`.
fn role(r: &str, envs: &[(&str, String)]) -> Proc {
  let mut all = vec![(ROLE, r.to_string())];
  all.extend(envs.iter().cloned());
  // Always the child entry: a child that ran the calling test instead
  // would spawn children of its own (a fork bomb).
  Proc::spawn(child("child_entry", &all))
}

fn ms(d: Duration) -> u128 {
  d.as_millis()
}

/// Asserts an `ETIMEDOUT` that took at least the lock timeout `t`, less
/// than `t + 1 s` and less than `3 t`, and whose message names the map, the
/// shard and (when given) the holder's pid.
fn assert_timed_out(
  what: &str,
  r: Result<impl std::fmt::Debug, lrukit_shm_map::Error>,
  took: Duration,
  t: Duration,
  map: &str,
  shard: u32,
  holder: Option<u32>,
) {
  let e = r.expect_err(&format!("{what}: expected ETIMEDOUT"));
  assert_eq!(e.code, "ETIMEDOUT", "{what}: {e}");
  assert!(
    took >= t,
    "{what}: gave up after {took:?}, before the lock timeout {t:?}"
  );
  assert!(
    took < t + Duration::from_secs(1) && took < 3 * t,
    "{what}: ETIMEDOUT after {took:?}, lock timeout {t:?}"
  );
  assert!(
    e.message.contains(map),
    "{what}: message does not name the map: {e}"
  );
  assert!(
    e.message.contains(&format!("shard {shard}")),
    "{what}: message does not name shard {shard}: {e}"
  );
  if let Some(pid) = holder {
    assert!(
      e.message.contains(&format!("held by pid {pid}")),
      "{what}: message does not name the holder {pid}: {e}"
    );
  }
}

fn set(m: &SharedMap, k: &str, v: i64) -> Result<(), lrukit_shm_map::Error> {
  m.set(k.as_bytes(), ValueRef::BigInt(v), None)
}

fn get(m: &SharedMap, k: &str) -> Option<Value> {
  m.peek(k.as_bytes()).unwrap()
}

// ---- the children -----------------------------------------------------------

#[test]
fn child_entry() {
  let Ok(r) = std::env::var(ROLE) else {
    return;
  };
  common::die_with_parent();
  match r.as_str() {
    "hold" => hold_child(),
    "repairer" => {
      // The shard's last writer died: this read recovers it, and blocks
      // halfway through the repair, holding the lock.
      let m = SharedMap::open(&env("LRUKIT_MAP")).unwrap();
      debug_set_crash_hook(hook_point::REPAIR, 0, CrashAction::Block);
      let _ = m.get(env("LRUKIT_KEY").as_bytes());
      println!("NOT-HOOKED");
    }
    "waiter" => {
      let m = SharedMap::open_with(
        &env("LRUKIT_MAP"),
        &with_timeout(env_ms("LRUKIT_TIMEOUT_MS")),
      )
      .unwrap();
      let key = env("LRUKIT_KEY");
      println!("WAITING");
      let t = Instant::now();
      let r = set(&m, &key, 7);
      let took = t.elapsed();
      match r {
        Ok(()) => println!("DONE ok {}", took.as_micros()),
        Err(e) => println!("DONE {} {} {e}", e.code, took.as_micros()),
      }
    }
    "probe" => {
      // Another process's view of a held shard: an operation on it, then
      // one on another shard.
      let m = SharedMap::open_with(
        &env("LRUKIT_MAP"),
        &with_timeout(env_ms("LRUKIT_TIMEOUT_MS")),
      )
      .unwrap();
      for k in ["LRUKIT_LOCKED", "LRUKIT_FREE"] {
        let t = Instant::now();
        let r = set(&m, &env(k), 1);
        let took = t.elapsed().as_micros();
        match r {
          Ok(()) => println!("PROBE {k} ok {took} -"),
          Err(e) => println!("PROBE {k} {} {took} {}", e.code, e.message),
        }
      }
    }
    "busy" => busy_child(),
    "creator" => {
      let action = if env("LRUKIT_HOOK") == "block" {
        CrashAction::Block
      } else {
        CrashAction::Kill
      };
      debug_set_crash_hook(hook_point::CREATE, 0, action);
      let m = SharedMap::create(&env("LRUKIT_MAP"), &Options::new(256)).unwrap();
      println!("CREATED {:?}", m.created());
    }
    "opener" => opener_child(),
    "fullshm" => full_shm_child(),
    "toucher" => {
      let m = SharedMap::open(&env("LRUKIT_MAP")).unwrap();
      println!("MAPPED {}", m.segment_len());
      let mut go = String::new();
      std::io::stdin().lock().read_line(&mut go).unwrap();
      // Touches every shard (pages past the new end of the segment).
      let r = m.verify();
      let n = m.len();
      println!("SURVIVED verify {} len {n}", r.ok);
    }
    other => panic!("unknown role {other}"),
  }
}

#[repr(C)]
struct RobustList {
  next: *mut RobustList,
}

/// The kernel's `struct robust_list_head` (linux/futex.h).
#[repr(C)]
struct RobustListHead {
  list: RobustList,
  futex_offset: libc::c_long,
  list_op_pending: *mut RobustList,
}

/// Registers an empty robust list for this thread, so the kernel finds
/// nothing to mark when it dies: a robust mutex it holds stays locked by a
/// dead tid without `FUTEX_OWNER_DIED` (what happens when the OOM reaper
/// frees the list first).
fn forget_robust_list() {
  let head = Box::leak(Box::new(RobustListHead {
    list: RobustList {
      next: std::ptr::null_mut(),
    },
    futex_offset: 0,
    list_op_pending: std::ptr::null_mut(),
  }));
  head.list.next = &mut head.list;
  // SAFETY: set_robust_list with a leaked (so forever valid) head of the
  // kernel's layout whose list is empty (points to itself); it only changes
  // what the kernel walks when this thread exits.
  let rc = unsafe {
    libc::syscall(
      libc::SYS_set_robust_list,
      head as *mut RobustListHead,
      std::mem::size_of::<RobustListHead>(),
    )
  };
  assert_eq!(
    rc,
    0,
    "set_robust_list: {}",
    std::io::Error::last_os_error()
  );
}

/// Takes the lock of `LRUKIT_KEY`'s shard and blocks inside a `set` of it
/// (hook SET_WRITING), printing `HOOKED`.
fn hold_child() {
  let m = SharedMap::open(&env("LRUKIT_MAP")).unwrap();
  if std::env::var("LRUKIT_UNMARKED").as_deref() == Ok("1") {
    forget_robust_list();
  }
  debug_set_crash_hook(hook_point::SET_WRITING, 0, CrashAction::Block);
  set(&m, &env("LRUKIT_KEY"), 999).unwrap();
  println!("NOT-HOOKED");
}

/// Writes `c<i>` = i (acknowledging each on stdout) and between writes
/// scans every shard under its lock (`evict_older_than` with a cutoff no
/// entry is older than: O(slots), removes nothing), until `stop` exists.
fn busy_child() {
  let m = SharedMap::open(&env("LRUKIT_MAP")).unwrap();
  let mut out = std::io::stdout().lock();
  for i in 0i64.. {
    set(&m, &format!("c{i}"), i).unwrap();
    writeln!(out, "A c{i} {i}").unwrap();
    out.flush().unwrap();
    assert_eq!(m.evict_older_than(1, Some(1)).unwrap(), 0);
    if m.contains(b"stop").unwrap() {
      break;
    }
  }
  writeln!(out, "STOPPED").unwrap();
}

/// `open` or `open_or_create` when the parent says `GO`, then reports and,
/// if it got the map, writes its own key.
fn opener_child() {
  let name = env("LRUKIT_MAP");
  let opts = Options {
    lock_timeout: env_ms("LRUKIT_TIMEOUT_MS"),
    ..Options::new(256)
  };
  println!("READY");
  let mut go = String::new();
  std::io::stdin().lock().read_line(&mut go).unwrap();
  let t = Instant::now();
  let r = if env("LRUKIT_HOW") == "open" {
    SharedMap::open_with(&name, &opts)
  } else {
    SharedMap::open_or_create(&name, &opts)
  };
  let took = t.elapsed().as_micros();
  match r {
    Ok(m) => {
      let (at, pid) = m.created();
      set(&m, &format!("o{}", std::process::id()), 1).unwrap();
      println!("RESULT ok {took} {at} {pid}");
    }
    Err(e) => println!("RESULT {} {took} {e}", e.code),
  }
}

// ---- 2. SIGSTOP / SIGCONT -----------------------------------------------------

/// A holder stopped inside a critical section (caught by SIGSTOP at a random
/// moment of a long one): operations on its shard, from this process and
/// from another, fail with ETIMEDOUT within the lock timeout naming it;
/// other shards are unaffected; after SIGCONT everything proceeds, nothing
/// acknowledged is lost and nobody counts a recovery.
#[test]
fn sigstopped_holder_times_out_its_shard_only_then_sigcont_proceeds() {
  let n = Name::new("stop");
  // 100k slots per shard: the busy child's scan holds a lock for a while.
  let m = SharedMap::create(
    &n,
    &Options {
      capacity: Some(400_000),
      max_key_bytes: 16,
      max_value_bytes: 16,
      shards: Some(4),
      lock_timeout: SHORT,
      ..Options::default()
    },
  )
  .unwrap();
  for i in 0..64 {
    set(&m, &format!("p{i}"), i).unwrap();
  }
  let mut busy = role("busy", &[("LRUKIT_MAP", n.0.clone())]);
  busy.line("A c3", LINE);
  // SIGSTOP at random moments until the child is caught holding a lock.
  let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ busy.pid as u64;
  let mut caught = None;
  for attempt in 0..500 {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    std::thread::sleep(Duration::from_micros(200 + rng % 3000));
    busy.stop();
    let tids = busy.tids();
    let held = (0..4u32).find(|&sh| {
      let w = lock_owner_word(&m, sh);
      w != 0 && (tids.contains(&w) || w == busy.pid)
    });
    if let Some(sh) = held {
      caught = Some((sh, attempt));
      break;
    }
    busy.signal(libc::SIGCONT);
  }
  let (sh, attempts) = caught.expect("never caught the busy child holding a shard lock");
  let locked = keys_in_shard(&m, sh, "l", 1).remove(0);
  let free = keys_in_shard(&m, (sh + 1) % 4, "f", 1).remove(0);

  // This process.
  let t = Instant::now();
  let r = set(&m, &locked, 1);
  let took = t.elapsed();
  assert_timed_out(
    "set on the held shard",
    r,
    took,
    SHORT,
    &n,
    sh,
    Some(busy.pid),
  );
  let t = Instant::now();
  set(&m, &free, 1).unwrap();
  let free_took = t.elapsed();
  assert!(free_took < SHORT, "another shard waited {free_took:?}");
  // A read of the held shard: the scan does not make the shard's sequence
  // odd, so an optimistic read may still succeed; either way it is bounded.
  let t = Instant::now();
  let rd = m.get(b"p0");
  let read_took = t.elapsed();
  assert!(read_took < 3 * SHORT, "read took {read_took:?}");
  assert!(
    matches!(&rd, Ok(Some(Value::BigInt(0)))) || rd.as_ref().is_err_and(|e| e.code == "ETIMEDOUT"),
    "{rd:?}"
  );
  // Another process.
  let mut probe = role(
    "probe",
    &[
      ("LRUKIT_MAP", n.0.clone()),
      ("LRUKIT_TIMEOUT_MS", SHORT.as_millis().to_string()),
      ("LRUKIT_LOCKED", locked.clone()),
      ("LRUKIT_FREE", free.clone()),
    ],
  );
  let pl = probe.line("PROBE LRUKIT_LOCKED", LINE);
  let pf = probe.line("PROBE LRUKIT_FREE", LINE);
  assert!(probe.wait(LINE).success());
  let f: Vec<&str> = pl.splitn(5, ' ').collect();
  let probe_took = Duration::from_micros(f[3].parse().unwrap());
  assert_eq!(f[2], "ETIMEDOUT", "{pl}");
  assert!(
    probe_took >= SHORT && probe_took < 3 * SHORT,
    "probe: ETIMEDOUT after {probe_took:?}"
  );
  assert!(f[4].contains(&format!("held by pid {}", busy.pid)), "{pl}");
  let g: Vec<&str> = pf.splitn(5, ' ').collect();
  assert_eq!(g[2], "ok", "{pf}");
  let probe_free = Duration::from_micros(g[3].parse().unwrap());
  assert!(probe_free < SHORT, "{pf}");

  // SIGCONT: the holder finishes its scan and the shard is free again.
  busy.signal(libc::SIGCONT);
  let t = Instant::now();
  set(&m, &locked, 2).unwrap();
  let resumed = t.elapsed();
  m.set(b"stop", ValueRef::Null, None).unwrap();
  busy.line("STOPPED", LINE);
  assert!(busy.wait(LINE).success());
  let acked: Vec<i64> = busy
    .seen
    .iter()
    .filter_map(|l| l.strip_prefix("A c")?.split(' ').nth(1)?.parse().ok())
    .collect();
  for &i in &acked {
    assert_eq!(get(&m, &format!("c{i}")), Some(Value::BigInt(i)), "c{i}");
  }
  for i in 0..64 {
    assert_eq!(get(&m, &format!("p{i}")), Some(Value::BigInt(i)), "p{i}");
  }
  assert_eq!(get(&m, &locked), Some(Value::BigInt(2)));
  let r = m.verify();
  assert!(r.ok, "{:?}", r.problems);
  assert_eq!(m.stats().lock_recoveries, 0, "nobody died");
  eprintln!(
    "SIGSTOP holder (shard {sh}, caught after {attempts} tries): ETIMEDOUT after {} ms here, {} ms in another process (lock timeout {} ms); other shard {} µs here, {} µs there; after SIGCONT the shard took {} ms; {} acknowledged writes of the holder intact",
    ms(took),
    ms(probe_took),
    ms(SHORT),
    free_took.as_micros(),
    probe_free.as_micros(),
    ms(resumed),
    acked.len()
  );
}

/// A writer dies holding a shard lock; the process that recovers it is
/// stopped halfway through the repair (hook REPAIR, Block, then SIGSTOP).
/// The shard times out for everyone (also after SIGCONT: the repairer is
/// alive), other shards work; once the repairer is killed, the next caller
/// repairs again and nothing acknowledged is lost.
#[test]
fn holder_stopped_during_repair_times_out_then_killed_is_recovered() {
  let n = Name::new("strep");
  let m = SharedMap::create(
    &n,
    &Options {
      shards: Some(4),
      lock_timeout: SHORT,
      ..common::opts(256)
    },
  )
  .unwrap();
  for i in 0..100 {
    set(&m, &format!("k{i}"), i).unwrap();
  }
  let sh = shard_of(&m, b"k0");
  let free = keys_in_shard(&m, (sh + 1) % 4, "f", 1).remove(0);
  let mut holder = role(
    "hold",
    &[("LRUKIT_MAP", n.0.clone()), ("LRUKIT_KEY", "k0".into())],
  );
  holder.line("HOOKED", LINE);
  assert_eq!(holder.kill().signal(), Some(libc::SIGKILL));
  let mut rep = role(
    "repairer",
    &[("LRUKIT_MAP", n.0.clone()), ("LRUKIT_KEY", "k0".into())],
  );
  rep.line("HOOKED", LINE);
  rep.stop();

  // A stored key of the shard under repair, other than k0.
  let held = keys_in_shard(&m, sh, "k", 2).pop().unwrap();
  let mut bounds = Vec::new();
  for phase in ["stopped", "continued"] {
    let t = Instant::now();
    let r = set(&m, &held, -1);
    let took = t.elapsed();
    let what = format!("set on the shard under repair ({phase})");
    assert_timed_out(&what, r, took, SHORT, &n, sh, Some(rep.pid));
    bounds.push(took);
    let t = Instant::now();
    set(&m, &free, -2).unwrap();
    assert!(
      t.elapsed() < SHORT,
      "another shard waited {:?}",
      t.elapsed()
    );
    let mut probe = role(
      "probe",
      &[
        ("LRUKIT_MAP", n.0.clone()),
        ("LRUKIT_TIMEOUT_MS", SHORT.as_millis().to_string()),
        ("LRUKIT_LOCKED", "k0".into()),
        ("LRUKIT_FREE", free.clone()),
      ],
    );
    let pl = probe.line("PROBE LRUKIT_LOCKED", LINE);
    let pf = probe.line("PROBE LRUKIT_FREE", LINE);
    assert!(probe.wait(LINE).success());
    assert!(pl.contains(" ETIMEDOUT "), "{phase}: {pl}");
    assert!(
      pl.contains(&format!("held by pid {}", rep.pid)),
      "{phase}: {pl}"
    );
    let took: u64 = pl.split(' ').nth(3).unwrap().parse().unwrap();
    assert!(
      Duration::from_micros(took) >= SHORT && Duration::from_micros(took) < 3 * SHORT,
      "{pl}"
    );
    assert!(pf.contains(" ok "), "{phase}: {pf}");
    if phase == "stopped" {
      rep.signal(libc::SIGCONT);
      // Still blocked in the hook, and no longer stopped.
      let deadline = Instant::now() + LINE;
      while rep.thread_states().contains(&'T') {
        assert!(Instant::now() < deadline, "repairer did not continue");
        std::thread::sleep(Duration::from_millis(1));
      }
      assert!(rep.running());
    }
  }
  let before = m.stats().lock_recoveries;
  assert_eq!(rep.kill().signal(), Some(libc::SIGKILL));
  set(&m, "k0", 5).unwrap();
  assert_eq!(m.stats().lock_recoveries, before + 1);
  assert_eq!(before, 1, "the repairer counted the first death");
  let r = m.verify();
  assert!(r.ok, "{:?}", r.problems);
  // The writes that timed out were not applied; the rest is intact.
  for i in 1..100 {
    assert_eq!(get(&m, &format!("k{i}")), Some(Value::BigInt(i)), "k{i}");
  }
  // Written by this process (-2), then by the last probe (1).
  assert_eq!(get(&m, &free), Some(Value::BigInt(1)));
  assert_eq!(get(&m, "k0"), Some(Value::BigInt(5)));
  eprintln!(
    "holder stopped during repair: ETIMEDOUT after {} ms (stopped) and {} ms (continued, still blocked), lock timeout {} ms; recovered after its death",
    ms(bounds[0]),
    ms(bounds[1]),
    ms(SHORT)
  );
}

// ---- 3. 16 waiters on a dead owner ------------------------------------------------

/// One process holds a shard lock, 16 processes wait for it, the holder is
/// SIGKILLed: every waiter completes, exactly one recovery is counted, the
/// map verifies and nothing acknowledged is lost.
fn sixteen_waiters(unmarked: bool) {
  let n = Name::new(if unmarked { "unmark" } else { "wait16" });
  let m = SharedMap::create(
    &n,
    &Options {
      shards: Some(4),
      ..common::opts(1024)
    },
  )
  .unwrap();
  for i in 0..200 {
    set(&m, &format!("k{i}"), i).unwrap();
  }
  let sh = shard_of(&m, b"k0");
  let mut envs = vec![("LRUKIT_MAP", n.0.clone()), ("LRUKIT_KEY", "k0".into())];
  if unmarked {
    envs.push(("LRUKIT_UNMARKED", "1".into()));
    // First show that the trick works, on another shard with no waiter: the
    // dead holder's tid stays in the lock word, not marked by the kernel
    // (which would have replaced it by FUTEX_OWNER_DIED); the next locker
    // takes the shard over.
    let other = (sh + 1) % 4;
    let k = keys_in_shard(&m, other, "u", 1).remove(0);
    let mut h = role(
      "hold",
      &[
        ("LRUKIT_MAP", n.0.clone()),
        ("LRUKIT_KEY", k.clone()),
        ("LRUKIT_UNMARKED", "1".into()),
      ],
    );
    h.line("HOOKED", LINE);
    let w = lock_word(&m, other);
    assert!(h.tids().contains(&(w & 0x3fff_ffff)), "lock word {w:#x}");
    assert_eq!(h.kill().signal(), Some(libc::SIGKILL));
    let after = lock_word(&m, other);
    assert_eq!(
      after, w,
      "the kernel marked the death (word {after:#x}): the empty robust list did not take"
    );
    let before = m.stats().lock_recoveries;
    let t = Instant::now();
    set(&m, &k, 1).unwrap();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(m.stats().lock_recoveries, before + 1);
    eprintln!(
      "unmarked dead owner (lock word {w:#x} left as is): one locker took over after {} ms",
      ms(took)
    );
  }
  let mut holder = role("hold", &envs);
  holder.line("HOOKED", LINE);
  let holder_tid = lock_owner_word(&m, sh);
  assert_ne!(holder_tid, 0, "the holder's lock word");
  let keys = keys_in_shard(&m, sh, "w", 16);
  let mut waiters: Vec<Proc> = keys
    .iter()
    .map(|k| {
      role(
        "waiter",
        &[
          ("LRUKIT_MAP", n.0.clone()),
          ("LRUKIT_KEY", k.clone()),
          ("LRUKIT_TIMEOUT_MS", "30000".into()),
        ],
      )
    })
    .collect();
  for w in &mut waiters {
    w.line("WAITING", LINE);
  }
  // Every waiter is blocked on the lock (none has finished).
  std::thread::sleep(Duration::from_millis(300));
  for w in &mut waiters {
    assert!(
      w.running(),
      "waiter {} ended while the lock was held: {:?}",
      w.pid,
      w.seen
    );
    assert!(w.try_line("DONE", Duration::ZERO).is_none(), "{:?}", w.seen);
  }
  let before = m.stats().lock_recoveries;
  let killed = Instant::now();
  assert_eq!(holder.kill().signal(), Some(libc::SIGKILL));
  let mut last = Duration::ZERO;
  for w in &mut waiters {
    let l = w.line("DONE", LINE);
    assert!(l.starts_with("DONE ok "), "waiter {}: {l}", w.pid);
    last = last.max(killed.elapsed());
    assert!(w.wait(LINE).success());
  }
  let r = m.verify();
  assert!(r.ok, "{:?}", r.problems);
  assert_eq!(
    m.stats().lock_recoveries,
    before + 1,
    "exactly one recovery"
  );
  for k in &keys {
    assert_eq!(get(&m, k), Some(Value::BigInt(7)), "{k}");
  }
  for i in 0..200 {
    assert_eq!(get(&m, &format!("k{i}")), Some(Value::BigInt(i)), "k{i}");
  }
  eprintln!(
    "16 waiters on a dead owner ({}): all done {} ms after the SIGKILL, 1 recovery",
    if unmarked {
      "death not marked by the kernel"
    } else if cfg!(feature = "lease-lock") {
      "lease lock, owner pid gone"
    } else {
      "kernel-marked death"
    },
    ms(last)
  );
}

#[test]
fn sixteen_waiters_on_a_dead_owner_all_complete_with_one_recovery() {
  sixteen_waiters(false);
}

/// The holder unregistered its robust list (an empty one is registered), so
/// the kernel leaves the lock word naming a dead thread without
/// `FUTEX_OWNER_DIED`: after the lock timeout's check interval exactly one
/// waiter takes the shard over.
#[test]
#[cfg_attr(
  feature = "lease-lock",
  ignore = "robust-mutex only: the lease lock has no robust list; its dead-owner path is the kernel-marked test, which checks the owner's pid"
)]
fn sixteen_waiters_on_an_unmarked_dead_owner_one_takes_over() {
  sixteen_waiters(true);
}

// ---- 4. creator death and slow creators ---------------------------------------------

/// Starts `n` opener processes (`how`: "open" or "open_or_create"), lets
/// them go at once, and returns their RESULT lines and pids.
fn openers(name: &str, how: &str, n: usize, timeout: Duration) -> Vec<Proc> {
  let mut ps: Vec<Proc> = (0..n)
    .map(|_| {
      role(
        "opener",
        &[
          ("LRUKIT_MAP", name.to_string()),
          ("LRUKIT_HOW", how.to_string()),
          ("LRUKIT_TIMEOUT_MS", timeout.as_millis().to_string()),
        ],
      )
    })
    .collect();
  for p in &mut ps {
    p.line("READY", LINE);
  }
  for p in &mut ps {
    p.send("GO");
  }
  ps
}

struct Opened {
  code: String,
  took: Duration,
  rest: String,
}

fn result(p: &mut Proc) -> Opened {
  let l = p.line("RESULT", LINE);
  assert!(p.wait(LINE).success(), "{:?}", p.seen);
  let f: Vec<&str> = l.splitn(4, ' ').collect();
  Opened {
    code: f[1].to_string(),
    took: Duration::from_micros(f[2].parse().unwrap()),
    rest: f.get(3).unwrap_or(&"").to_string(),
  }
}

/// Several `open_or_create` at once on a segment whose creator is gone: all
/// succeed in well under 3 s on one and the same map (one of them created
/// it), which the parent sees too.
fn all_take_over(name: &str, what: &str) -> Duration {
  let mut ps = openers(name, "open_or_create", 6, Duration::from_secs(5));
  let pids: Vec<u32> = ps.iter().map(|p| p.pid).collect();
  let rs: Vec<Opened> = ps.iter_mut().map(result).collect();
  let mut worst = Duration::ZERO;
  for r in &rs {
    assert_eq!(r.code, "ok", "{what}: {} {}", r.code, r.rest);
    assert!(r.took < Duration::from_secs(3), "{what}: took {:?}", r.took);
    worst = worst.max(r.took);
  }
  let ids: std::collections::HashSet<&str> = rs.iter().map(|r| r.rest.as_str()).collect();
  assert_eq!(ids.len(), 1, "{what}: more than one map: {ids:?}");
  let m = SharedMap::open(name).unwrap();
  let (at, creator) = m.created();
  assert_eq!(ids.into_iter().next().unwrap(), format!("{at} {creator}"));
  assert!(
    pids.contains(&creator),
    "{what}: created by {creator}, not an opener"
  );
  for pid in &pids {
    assert_eq!(
      get(&m, &format!("o{pid}")),
      Some(Value::BigInt(1)),
      "{what}"
    );
  }
  assert!(m.verify().ok);
  worst
}

fn open_code(name: &str) -> String {
  match SharedMap::open(name) {
    Ok(_) => "ok".into(),
    Err(e) => e.code.to_string(),
  }
}

/// The creator dies before READY (hook CREATE, Kill): `open` says EUNINIT;
/// six `open_or_create` started at once take the segment over.
#[test]
fn creator_killed_before_ready_is_taken_over() {
  let n = Name::new("ckill");
  let mut c = role(
    "creator",
    &[("LRUKIT_MAP", n.0.clone()), ("LRUKIT_HOOK", "kill".into())],
  );
  assert_eq!(c.wait(LINE).signal(), Some(libc::SIGKILL), "{:?}", c.seen);
  assert!(std::path::Path::new(&format!("/dev/shm/lk_{}", n.0)).exists());
  let e = SharedMap::open(&n).unwrap_err();
  assert_eq!(e.code, "EUNINIT", "{e}");
  let worst = all_take_over(&n, "dead creator");
  eprintln!(
    "creator killed before READY: 6 open_or_create took it over in ≤ {} ms",
    ms(worst)
  );
}

/// A creator stalled before READY (hook CREATE, Block): `open` and
/// `open_or_create` time out after their lock timeout (nothing hangs);
/// openers already waiting when it is then killed take over at once.
#[test]
fn slow_creator_times_out_openers_and_its_death_is_taken_over() {
  let n = Name::new("cslow");
  let mut c = role(
    "creator",
    &[("LRUKIT_MAP", n.0.clone()), ("LRUKIT_HOOK", "block".into())],
  );
  c.line("HOOKED", LINE);
  let t = Duration::from_millis(300);
  let mut bounds = Vec::new();
  for how in ["open", "open_or_create"] {
    let mut ps = openers(&n, how, 3, t);
    for p in &mut ps {
      let r = result(p);
      assert_eq!(r.code, "ETIMEDOUT", "{how}: {}", r.rest);
      assert!(
        r.took >= t && r.took < t + Duration::from_secs(1),
        "{how}: ETIMEDOUT after {:?}",
        r.took
      );
      bounds.push(r.took);
    }
  }
  // In this process too.
  let s = Instant::now();
  let e = SharedMap::open_with(&n, &with_timeout(t)).unwrap_err();
  assert_eq!(e.code, "ETIMEDOUT", "{e}");
  assert!(s.elapsed() >= t && s.elapsed() < t + Duration::from_secs(1));
  // Openers with a long timeout wait; the creator dies; they take over.
  let mut ps = openers(&n, "open_or_create", 6, Duration::from_secs(10));
  std::thread::sleep(Duration::from_millis(200));
  for p in &mut ps {
    assert!(
      p.running(),
      "an opener finished while the creator was alive: {:?}",
      p.seen
    );
  }
  let killed = Instant::now();
  assert_eq!(c.kill().signal(), Some(libc::SIGKILL));
  let rs: Vec<Opened> = ps.iter_mut().map(result).collect();
  let after_kill = killed.elapsed();
  for r in &rs {
    assert_eq!(r.code, "ok", "{}", r.rest);
  }
  assert!(after_kill < Duration::from_secs(3), "{after_kill:?}");
  let ids: std::collections::HashSet<&str> = rs.iter().map(|r| r.rest.as_str()).collect();
  assert_eq!(ids.len(), 1, "more than one map: {ids:?}");
  assert!(SharedMap::open(&n).unwrap().verify().ok);
  eprintln!(
    "slow creator: ETIMEDOUT after {}..{} ms (lock timeout {} ms); after its SIGKILL 6 waiting openers were done in {} ms",
    bounds.iter().min().unwrap().as_millis(),
    bounds.iter().max().unwrap().as_millis(),
    ms(t),
    ms(after_kill)
  );
}

/// Plants what a creator killed at an earlier step leaves under the name,
/// with the owner and mode lrukit uses: `mode` and `size` bytes of zeros.
fn plant(name: &str, mode: libc::mode_t, size: u64) {
  let c = std::ffi::CString::new(format!("/lk_{name}")).unwrap();
  // SAFETY: shm_open with a NUL-terminated name; the fd is closed below.
  let fd = unsafe { libc::shm_open(c.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0) };
  assert!(fd >= 0, "shm_open: {}", std::io::Error::last_os_error());
  // SAFETY: plain syscalls on our descriptor, then closing it.
  unsafe {
    assert_eq!(libc::fchmod(fd, mode), 0);
    assert_eq!(libc::ftruncate(fd, size as libc::off_t), 0);
    libc::close(fd);
  }
}

/// Segments left by a creator killed between `shm_open` and READY, planted
/// directly: `open` says EUNINIT, `open_or_create` from six processes takes
/// each over.
#[test]
fn planted_zero_filled_segments_are_taken_over() {
  let full = required_memory_size(&Options::new(256)).unwrap();
  for (what, mode, size) in [
    ("zero-filled, full size, mode 0600", 0o600, full),
    ("empty, mode 0 (killed right after shm_open)", 0, 0),
    ("empty, mode 0600 (killed before ftruncate)", 0o600, 0),
  ] {
    let n = Name::new("plant");
    plant(&n, mode, size);
    let code = open_code(&n);
    assert_eq!(code, "EUNINIT", "{what}");
    let worst = all_take_over(&n, what);
    eprintln!("planted segment {what}: taken over in ≤ {} ms", ms(worst));
  }
}

// ---- 5. a full /dev/shm ---------------------------------------------------------------

/// In a private mount namespace with a 1 MiB tmpfs on /dev/shm: a map larger
/// than that fails `create` with EIO naming ENOSPC and leaves nothing; a map
/// that fits is reserved up front, so filling /dev/shm afterwards and then
/// every slot of the map never raises SIGBUS.
fn full_shm_child() {
  // SAFETY: unshare affects only this thread's (and process's) namespaces.
  if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
    println!(
      "SKIP unshare(CLONE_NEWNS): {}",
      std::io::Error::last_os_error()
    );
    return;
  }
  let root = c"/";
  let shm = c"/dev/shm";
  // SAFETY: mount(2) with valid NUL-terminated strings; in our own new mount
  // namespace, made private first so nothing propagates to the host.
  unsafe {
    if libc::mount(
      std::ptr::null(),
      root.as_ptr(),
      std::ptr::null(),
      libc::MS_REC | libc::MS_PRIVATE,
      std::ptr::null(),
    ) != 0
    {
      println!("SKIP making / private: {}", std::io::Error::last_os_error());
      return;
    }
    if libc::mount(
      c"tmpfs".as_ptr(),
      shm.as_ptr(),
      c"tmpfs".as_ptr(),
      0,
      c"size=1m".as_ptr().cast(),
    ) != 0
    {
      println!("SKIP mount tmpfs: {}", std::io::Error::last_os_error());
      return;
    }
  }
  let exists = |name: &str| std::path::Path::new(&format!("/dev/shm/lk_{name}")).exists();
  // Too big: EIO (ENOSPC), no segment left behind.
  let big = Options {
    capacity: Some(4096),
    max_key_bytes: 64,
    max_value_bytes: 1024,
    ..Options::default()
  };
  let e = SharedMap::create("big", &big).unwrap_err();
  assert_eq!(e.code, "EIO", "{e}");
  assert!(
    e.message.contains("ENOSPC") || e.message.contains("os error 28"),
    "not ENOSPC: {e}"
  );
  assert!(!exists("big"), "a failed create left its segment");
  println!("BIG {e}");
  // Fits: 64 KiB-ish.
  let small = Options {
    capacity: Some(128),
    max_key_bytes: 32,
    max_value_bytes: 256,
    eviction: Eviction::None,
    shards: Some(2),
    ..Options::default()
  };
  let m = SharedMap::create("small", &small).unwrap();
  // Fill the rest of /dev/shm with a file until ENOSPC.
  let mut f = std::fs::File::create("/dev/shm/filler").unwrap();
  let chunk = vec![1u8; 4096];
  let mut filled = 0u64;
  loop {
    match f.write(&chunk) {
      Ok(0) => break,
      Ok(k) => filled += k as u64,
      Err(e) => {
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        break;
      }
    }
  }
  // Another map does not fit now: EIO, nothing left.
  let e = SharedMap::create("second", &small).unwrap_err();
  assert_eq!(e.code, "EIO", "{e}");
  assert!(!exists("second"));
  // Every slot written with a full-size value: the pages were reserved.
  let v = vec![7u8; 256];
  let mut stored = 0;
  for i in 0..10_000 {
    match m.set(format!("key-{i}").as_bytes(), ValueRef::Bytes(&v), None) {
      Ok(()) => stored += 1,
      Err(e) if e.code == "EFULL" => {}
      Err(e) => panic!("{e}"),
    }
  }
  assert!(stored >= 128 / 2, "{stored}");
  let r = m.verify();
  assert!(r.ok, "{:?}", r.problems);
  let opened = SharedMap::open("small").unwrap();
  assert_eq!(opened.len(), m.len());
  println!(
    "FULLSHM ok: map of {} bytes, filler {filled} bytes, {stored} full-size entries, no SIGBUS",
    m.segment_len()
  );
}

#[test]
fn full_dev_shm_fails_create_cleanly_and_reserved_maps_never_sigbus() {
  let test = "full_dev_shm_fails_create_cleanly_and_reserved_maps_never_sigbus";
  let mut c = role("fullshm", &[]);
  let st = c.wait(LINE);
  let out = c.drain(LINE).join("\n");
  if let Some(why) = c.seen.iter().find_map(|l| l.strip_prefix("SKIP ")) {
    skip(test, &format!("mount not permitted: {why}"));
    return;
  }
  assert!(
    st.success(),
    "the child ended with {st:?} (signal 7 = SIGBUS): {out}"
  );
  assert!(out.contains("FULLSHM ok"), "{out}");
  for l in c
    .seen
    .iter()
    .filter(|l| l.starts_with("BIG") || l.starts_with("FULLSHM"))
  {
    eprintln!("full /dev/shm: {l}");
  }
}

// ---- 6. a segment truncated under its users --------------------------------------------

/// Another process shrinks the segment (ftruncate) while a process has it
/// mapped: that process gets SIGBUS when it touches a page past the new end
/// (the OS's doing: nothing in-process can prevent it), and a process that
/// opens afterwards gets EINCOMPAT.
#[test]
fn truncated_segment_sigbus_for_mappers_eincompat_for_openers() {
  let n = Name::new("trunc");
  // Four shards, so that whole shards (their headers included) lie past the
  // cut.
  let opts = Options {
    shards: Some(4),
    ..common::opts(4096)
  };
  let len = {
    let m = SharedMap::create(&n, &opts).unwrap();
    for i in 0..4096 {
      set(&m, &format!("k{i}"), i).unwrap();
    }
    m.segment_len() as u64
  };
  let mut t = role("toucher", &[("LRUKIT_MAP", n.0.clone())]);
  t.line("MAPPED", LINE);
  // Keep the header and lanes, cut the shards in half.
  let cut = (len / 2) & !4095;
  std::fs::OpenOptions::new()
    .write(true)
    .open(format!("/dev/shm/lk_{}", n.0))
    .unwrap()
    .set_len(cut)
    .unwrap();
  t.send("GO");
  let st = t.wait(LINE);
  assert_eq!(
    st.signal(),
    Some(libc::SIGBUS),
    "a mapper touching past the new end: {st:?} {:?}",
    t.seen
  );
  let e = SharedMap::open(&n).unwrap_err();
  assert_eq!(e.code, "EINCOMPAT", "{e}");
  let e2 = SharedMap::open_or_create(&n, &opts).unwrap_err();
  assert_eq!(e2.code, "EINCOMPAT", "{e2}");
  eprintln!("truncated {len} -> {cut} bytes: mapper died of SIGBUS; open: {e}");
}
