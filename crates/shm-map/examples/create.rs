//! `cargo run -p lrukit-shm-map --example create -- NAME CAPACITY`: creates a
//! map (1 KiB values) and reports the result; handy for checking how a full
//! /dev/shm is reported.
use lrukit_shm_map::{Options, SharedMap};

fn main() {
  let args: Vec<String> = std::env::args().collect();
  let name = args.get(1).map_or("example", |s| s.as_str());
  let capacity: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
  match SharedMap::create(name, &Options::new(capacity)) {
    Ok(m) => {
      println!("created {} bytes", m.stats().memory_bytes);
      let _ = SharedMap::unlink(name);
    }
    Err(e) => println!("error {e}"),
  }
}
