//! `SharedMap::describe`: a segment's header read without opening the map,
//! after the trust check `open` makes. Segments of another layout version,
//! garbage and half-created ones are planted through `/dev/shm` (Linux).
#![cfg(target_os = "linux")]

mod common;
use common::{opts, Name};
use lrukit_shm_map::{InitState, Options, SharedMap, ValueRef};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;

fn path(name: &str) -> String {
  format!("/dev/shm/lk_{name}")
}

/// Writes `bytes` as the segment of map `name`, mode 0600, owned by us.
fn plant(name: &str, bytes: &[u8]) -> std::fs::File {
  let mut f = std::fs::OpenOptions::new()
    .read(true)
    .write(true)
    .create_new(true)
    .mode(0o600)
    .open(path(name))
    .unwrap();
  f.write_all(bytes).unwrap();
  f
}

fn euid() -> u32 {
  // SAFETY: geteuid cannot fail.
  unsafe { libc::geteuid() }
}

#[test]
fn a_ready_map_of_this_build_is_compatible_and_its_header_is_reported() {
  let n = Name::new("dready");
  let before = std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .unwrap()
    .as_millis() as u64;
  let m = SharedMap::create(
    &n,
    &Options {
      shards: Some(4),
      ..opts(1000)
    },
  )
  .unwrap();
  m.set(b"k", ValueRef::Number(1.0), None).unwrap();
  let d = SharedMap::describe(&n).unwrap();
  assert_eq!(d.name, &*n);
  assert_eq!(d.state, InitState::Ready);
  assert!(d.compatible && d.magic_ok, "{d:?}");
  assert_eq!(d.problem, None);
  assert_eq!(d.layout_version, Some(d.supported_version));
  assert_eq!(d.supported_version, 4);
  assert_eq!(d.size, m.segment_len() as u64);
  assert_eq!(d.total_size, Some(m.segment_len() as u64));
  assert_eq!(d.shards, Some(4));
  assert_eq!(d.creator_pid, Some(std::process::id()));
  let created = d.created_at_ms.unwrap();
  assert!(created >= before && created < before + 60_000, "{created}");
  assert_eq!((d.mode, d.uid), (0o600, euid()));
  assert!(
    d.lock_kind_name().unwrap().contains("lock") || d.lock_kind_name().unwrap().contains("mutex")
  );
  assert_eq!(d.state.as_str(), "ready");
  // Reading the header wrote nothing: the map opens and has its entry.
  assert_eq!(SharedMap::open(&n).unwrap().len(), 1);
}

#[test]
fn another_layout_version_is_reported_not_parsed() {
  let n = Name::new("dver");
  let m = SharedMap::create(&n, &opts(100)).unwrap();
  // A copy of the live segment whose header says layout version 3.
  let mut image = std::fs::read(path(&n)).unwrap();
  assert_eq!(u32::from_le_bytes(image[8..12].try_into().unwrap()), 4);
  image[8..12].copy_from_slice(&3u32.to_le_bytes());
  let old = Name::new("dver3");
  drop(plant(&old, &image));
  let d = SharedMap::describe(&old).unwrap();
  assert!(d.magic_ok);
  assert_eq!(d.layout_version, Some(3));
  assert!(!d.compatible);
  assert_eq!(d.state, InitState::Ready);
  let p = d.problem.unwrap();
  assert_eq!(p.code, "EINCOMPAT");
  assert!(
    p.message.contains("layout version 3") && p.message.contains(&*old),
    "{p}"
  );
  // Its other fields are another version's: not interpreted.
  assert_eq!((d.total_size, d.shards, d.creator_pid), (None, None, None));
  assert_eq!(SharedMap::open(&old).unwrap_err().code, "EINCOMPAT");
  // A damaged field of this version: the checksum, as open says.
  m.debug_corrupt(40, m.debug_read(40) ^ 0x10);
  let d = SharedMap::describe(&n).unwrap();
  assert!(!d.compatible && d.layout_version == Some(4));
  assert!(d.problem.unwrap().message.contains("checksum"));
}

#[test]
fn garbage_is_reported_as_not_an_lrukit_map() {
  let big = Name::new("dgarb");
  drop(plant(&big, &b"not a map at all, just bytes. ".repeat(300)));
  let d = SharedMap::describe(&big).unwrap();
  assert!(!d.magic_ok && !d.compatible);
  assert_eq!(d.state, InitState::Unknown);
  assert_eq!(d.layout_version, None);
  let p = d.problem.unwrap();
  assert_eq!(p.code, "EINCOMPAT");
  assert!(p.message.contains("bad magic"), "{p}");
  let small = Name::new("dsmall");
  drop(plant(&small, b"tiny"));
  let d = SharedMap::describe(&small).unwrap();
  assert_eq!(d.size, 4);
  assert_eq!(d.state, InitState::Unknown);
  assert!(d.problem.unwrap().message.contains("too small"));
}

#[test]
fn a_map_that_is_not_ready_is_reported_as_being_created_or_abandoned() {
  // A zeroed segment nobody holds the creation lock of: its creator died.
  let n = Name::new("dnotrdy");
  let f = plant(&n, &[0u8; 20480]);
  let d = SharedMap::describe(&n).unwrap();
  assert_eq!(d.state, InitState::CreatorDied);
  assert!(!d.compatible);
  assert_eq!(d.problem.as_ref().unwrap().code, "EUNINIT");
  assert_eq!(SharedMap::open(&n).unwrap_err().code, "EUNINIT");
  // The same segment while a creator holds its creation lock.
  // SAFETY: flock on a descriptor we own.
  assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
  let d = SharedMap::describe(&n).unwrap();
  assert_eq!(d.state, InitState::Creating);
  assert_eq!(d.problem, None);
  assert!(!d.compatible);
  drop(f);
  // Empty (a creator that died before sizing it).
  let e = Name::new("dempty");
  drop(plant(&e, b""));
  let d = SharedMap::describe(&e).unwrap();
  assert_eq!((d.size, d.state), (0, InitState::CreatorDied));
}

#[test]
fn the_trust_rule_of_open_holds_before_anything_is_read() {
  let n = Name::new("dtrust");
  SharedMap::create(
    &n,
    &Options {
      mode: 0o660,
      ..opts(16)
    },
  )
  .unwrap();
  let e = SharedMap::describe(&n).unwrap_err();
  assert_eq!(e.code, "EPERM", "{e}");
  assert!(e.message.contains(&*n) && e.message.contains("660"), "{e}");
  let d = SharedMap::describe_with(
    &n,
    &Options {
      mode: 0o660,
      ..Options::default()
    },
  )
  .unwrap();
  assert!(d.compatible);
  assert_eq!(d.mode, 0o660);
  // Garbage writable by others is refused, not read.
  let g = Name::new("dtrustg");
  drop(plant(&g, b"garbage"));
  std::fs::set_permissions(
    path(&g),
    std::os::unix::fs::PermissionsExt::from_mode(0o666),
  )
  .unwrap();
  assert_eq!(SharedMap::describe(&g).unwrap_err().code, "EPERM");
  let missing = Name::new("dmissing");
  let e = SharedMap::describe(&missing).unwrap_err();
  assert_eq!(e.code, "ENOENT");
  assert!(e.message.contains(&*missing));
  assert_eq!(SharedMap::describe("bad name").unwrap_err().code, "ENAME");
}
