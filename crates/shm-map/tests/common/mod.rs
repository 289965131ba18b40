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

pub fn opts(capacity: u32) -> Options {
  Options {
    capacity,
    max_key_bytes: 64,
    max_value_bytes: 256,
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
