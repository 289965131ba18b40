//! Shared test helpers: unique map names that are unlinked on drop, and the
//! child-process pattern (re-executing the test binary with a role).
#![allow(dead_code)]

use lrukit_shm_map::{Options, SharedMap};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique map name (≤ 24 chars) that is unlinked when dropped.
pub struct Name(pub String);

impl Name {
  pub fn new(tag: &str) -> Name {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag.chars().take(8).collect();
    let name = format!("{tag}-{:x}-{n}", std::process::id());
    assert!(name.len() <= 24, "{name}");
    let _ = SharedMap::unlink(&name);
    Name(name)
  }
}

impl std::ops::Deref for Name {
  type Target = str;
  fn deref(&self) -> &str {
    &self.0
  }
}

impl Drop for Name {
  fn drop(&mut self) {
    let _ = SharedMap::unlink(&self.0);
  }
}

/// Test options. The hash seed is fixed, so which shard (and bucket) a key
/// lands in is the same in every run: a test that fills shards near their
/// capacity must not pass or fail with the seed a new map draws. (Random
/// seeds are tested in `api.rs`.)
pub fn opts(capacity: u32) -> Options {
  Options {
    capacity: Some(capacity),
    max_key_bytes: 64,
    max_value_bytes: 256,
    hash_seed: Some(0x6c72_756b_6974_5331),
    ..Options::default()
  }
}

/// Env var selecting a child role when the test binary is re-executed.
pub const ROLE: &str = "LRUKIT_CHILD_ROLE";

/// In a child: die with the parent (no orphans if a test fails).
pub fn die_with_parent() {
  #[cfg(target_os = "linux")]
  // SAFETY: prctl with PR_SET_PDEATHSIG only sets a process attribute.
  unsafe {
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
  }
}

/// Spawns this test binary running only test `test_name` with the given
/// role environment.
pub fn child(test_name: &str, envs: &[(&str, String)]) -> std::process::Command {
  // A child never spawns children: a test that forgets to check its role
  // would otherwise re-run itself without end.
  assert!(
    std::env::var_os(ROLE).is_none(),
    "a child process (role {:?}) tried to spawn a child",
    std::env::var(ROLE)
  );
  let mut c = std::process::Command::new(std::env::current_exe().unwrap());
  c.args([
    test_name,
    "--exact",
    "--nocapture",
    "--test-threads=1",
    "-q",
  ]);
  c.stdout(std::process::Stdio::null());
  for (k, v) in envs {
    c.env(k, v);
  }
  c
}

/// A child process with piped stdin/stdout whose stdout lines arrive on a
/// channel, so every wait for a line is bounded. Killed (and reaped) when
/// dropped, so a failing test leaves no process behind.
#[cfg(unix)]
pub struct Proc {
  pub child: std::process::Child,
  pub pid: u32,
  lines: std::sync::mpsc::Receiver<String>,
  /// Every line read so far (for failure messages).
  pub seen: Vec<String>,
  reaped: Option<std::process::ExitStatus>,
}

#[cfg(unix)]
impl Proc {
  pub fn spawn(mut cmd: std::process::Command) -> Proc {
    use std::io::BufRead;
    cmd.stdout(std::process::Stdio::piped());
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn child");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
      for l in std::io::BufReader::new(out).lines() {
        let Ok(l) = l else { break };
        if tx.send(l).is_err() {
          break;
        }
      }
    });
    Proc {
      pid: child.id(),
      child,
      lines: rx,
      seen: Vec::new(),
      reaped: None,
    }
  }

  /// The next line starting with `prefix` within `timeout`, or `None` (the
  /// process closed its stdout or the time ran out).
  pub fn try_line(&mut self, prefix: &str, timeout: std::time::Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
      let left = deadline.saturating_duration_since(std::time::Instant::now());
      match self.lines.recv_timeout(left) {
        Ok(l) => {
          self.seen.push(l.clone());
          if l.starts_with(prefix) {
            return Some(l);
          }
        }
        Err(_) => return None,
      }
    }
  }

  /// Like [`try_line`](Self::try_line) but panics (the child is killed on
  /// drop) when the line does not come.
  pub fn line(&mut self, prefix: &str, timeout: std::time::Duration) -> String {
    match self.try_line(prefix, timeout) {
      Some(l) => l,
      None => {
        let st = self.child.try_wait().ok().flatten();
        panic!(
          "child {} gave no {prefix:?} line within {timeout:?} (status {st:?}); its lines: {:?}",
          self.pid, self.seen
        )
      }
    }
  }

  /// Reads every remaining line until the child closes its stdout (at most
  /// `timeout`) into `seen`, and returns `seen`.
  pub fn drain(&mut self, timeout: std::time::Duration) -> &[String] {
    let deadline = std::time::Instant::now() + timeout;
    loop {
      let left = deadline.saturating_duration_since(std::time::Instant::now());
      match self.lines.recv_timeout(left) {
        Ok(l) => self.seen.push(l),
        Err(_) => return &self.seen,
      }
    }
  }

  /// Writes one line to the child's stdin.
  pub fn send(&mut self, line: &str) {
    use std::io::Write;
    let stdin = self.child.stdin.as_mut().expect("stdin");
    writeln!(stdin, "{line}").expect("write to child");
    stdin.flush().unwrap();
  }

  pub fn signal(&self, sig: libc::c_int) {
    if self.reaped.is_none() {
      // SAFETY: kill(2) of our own child, not yet reaped (so the pid cannot
      // belong to another process).
      unsafe { libc::kill(self.pid as libc::pid_t, sig) };
    }
  }

  /// Waits for the child to end, at most `timeout` (then kills it and
  /// panics).
  pub fn wait(&mut self, timeout: std::time::Duration) -> std::process::ExitStatus {
    if let Some(st) = self.reaped {
      return st;
    }
    let deadline = std::time::Instant::now() + timeout;
    loop {
      if let Some(st) = self.child.try_wait().unwrap() {
        self.reaped = Some(st);
        return st;
      }
      if std::time::Instant::now() >= deadline {
        let _ = self.child.kill();
        let st = self.child.wait().unwrap();
        self.reaped = Some(st);
        panic!(
          "child {} did not end within {timeout:?}; killed ({st:?}); its lines: {:?}",
          self.pid, self.seen
        );
      }
      std::thread::sleep(std::time::Duration::from_millis(1));
    }
  }

  /// SIGKILLs the child and reaps it.
  pub fn kill(&mut self) -> std::process::ExitStatus {
    self.signal(libc::SIGKILL);
    self.wait(std::time::Duration::from_secs(10))
  }

  /// Whether it is still running (not exited, not reaped).
  pub fn running(&mut self) -> bool {
    self.reaped.is_none() && self.child.try_wait().unwrap().is_none()
  }

  /// The state letter of every thread (`/proc/<pid>/task/*/stat`, Linux).
  #[cfg(target_os = "linux")]
  pub fn thread_states(&self) -> Vec<char> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
      return Vec::new();
    };
    dir
      .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
      .filter_map(|s| s[s.rfind(')')? + 1..].trim_start().chars().next())
      .collect()
  }

  /// The thread ids of the child (Linux).
  #[cfg(target_os = "linux")]
  pub fn tids(&self) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
      return Vec::new();
    };
    dir
      .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
      .collect()
  }

  /// Stops the child with SIGSTOP and waits (≤ 5 s) until every thread of
  /// it is in the stopped state.
  #[cfg(target_os = "linux")]
  pub fn stop(&self) {
    self.signal(libc::SIGSTOP);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
      let st = self.thread_states();
      if !st.is_empty() && st.iter().all(|&c| c == 'T' || c == 't') {
        return;
      }
      assert!(
        std::time::Instant::now() < deadline,
        "child {} did not stop: thread states {st:?}",
        self.pid
      );
      std::thread::sleep(std::time::Duration::from_millis(1));
    }
  }
}

#[cfg(unix)]
impl Drop for Proc {
  fn drop(&mut self) {
    if self.reaped.is_none() {
      let _ = self.child.kill();
      let _ = self.child.wait();
    }
  }
}

/// The shard of `key` in `m` (the top `log2(shards)` bits of its hash).
pub fn shard_of(m: &SharedMap, key: &[u8]) -> u32 {
  let shards = m.options().shards.unwrap_or(1);
  if shards <= 1 {
    0
  } else {
    (m.key_hash(key) >> (64 - shards.trailing_zeros())) as u32
  }
}

/// `n` distinct keys `<prefix><i>` that fall in shard `sh` of `m`.
pub fn keys_in_shard(m: &SharedMap, sh: u32, prefix: &str, n: usize) -> Vec<String> {
  (0u64..)
    .map(|i| format!("{prefix}{i}"))
    .filter(|k| shard_of(m, k.as_bytes()) == sh)
    .take(n)
    .collect()
}

/// The low 32 bits of shard `sh`'s lock word: the owner's thread id (robust
/// mutex: glibc keeps it in the low 30 bits of its first word) or pid
/// (lease lock); 0 when free.
pub fn lock_owner_word(m: &SharedMap, sh: u32) -> u32 {
  lock_word(m, sh) & 0x3fff_ffff
}

/// The first 32-bit word of shard `sh`'s lock, as stored (glibc robust
/// mutex: owner tid | `FUTEX_OWNER_DIED` 0x4000_0000 | `FUTEX_WAITERS`
/// 0x8000_0000).
pub fn lock_word(m: &SharedMap, sh: u32) -> u32 {
  let (off, _) = m.debug_lock_ranges()[sh as usize];
  let b: Vec<u8> = (0..4).map(|i| m.debug_read(off + i)).collect();
  u32::from_le_bytes(b.try_into().unwrap())
}
