//! [`Lru::check_invariants`]: the structural invariants of the parent module,
//! checked by walking every list and bucket (for tests).

use core::hash::{BuildHasher, Hash};

use super::slots::{bucket, wrap_inc};
use super::Lru;
use crate::storage::Storage;
use crate::IndexType;

impl<K: Hash + Eq, V, St: Storage<K, V>, S: BuildHasher> Lru<K, V, St, S> {
  /// Checks all structural invariants; panics with a message if one fails.
  #[doc(hidden)]
  pub fn check_invariants(&self) {
    let p = self.storage.parts();
    let cap = p.keys.len();
    let len = p.hdr.len.to_usize();
    assert!(len <= cap, "len {len} > cap {cap}");
    assert_eq!(p.index.len(), 2 * cap);
    let nil = St::Index::MAX;
    // Walk the list forward and backward.
    let mut seen = 0usize;
    let mut s = p.hdr.head;
    let mut prev = nil;
    while s != nil {
      assert!(seen < len, "list longer than len");
      let i = s.to_usize();
      assert!(i < cap);
      assert_eq!(p.prev[i], prev, "prev link broken at {i}");
      prev = s;
      s = p.next[i];
      seen += 1;
    }
    assert_eq!(seen, len, "list length != len");
    assert_eq!(p.hdr.tail, prev, "tail mismatch");
    // Free list: every free slot below `touched = len + free` (invariant 3),
    // no free slot on the used list.
    let mut free = 0usize;
    let mut f = p.hdr.free;
    while f != nil {
      assert!(free < cap - len, "free list too long");
      free += 1;
      f = p.next[f.to_usize()];
    }
    let touched = len + free;
    let is_free = |i: usize| {
      let mut f = p.hdr.free;
      while f != nil {
        if f.to_usize() == i {
          return true;
        }
        f = p.next[f.to_usize()];
      }
      false
    };
    let mut f = p.hdr.free;
    while f != nil {
      assert!(f.to_usize() < touched, "free slot beyond touched range");
      f = p.next[f.to_usize()];
    }
    let mut s = p.hdr.head;
    while s != nil {
      assert!(s.to_usize() < touched, "used slot beyond touched range");
      assert!(!is_free(s.to_usize()), "used slot on the free list");
      s = p.next[s.to_usize()];
    }
    // Index: every used slot exactly once, reachable from its home bucket.
    let n = p.index.len();
    let mut count = 0;
    for (pos, &e) in p.index.iter().enumerate() {
      if e == nil {
        continue;
      }
      count += 1;
      let i = e.to_usize();
      assert!(i < touched && !is_free(i), "index names an unused slot");
      // SAFETY: just checked that `i` is a used slot (invariant 3), so its key
      // is initialised.
      let key = unsafe { p.keys[i].assume_init_ref() };
      let home = bucket(self.hasher.hash_one(key), n);
      let mut q = home;
      while q != pos {
        assert!(
          p.index[q] != nil,
          "entry at {pos} unreachable from home {home}"
        );
        q = wrap_inc(q, n);
      }
      assert_eq!(self.find(self.hasher.hash_one(key), key), Ok((pos, i)));
    }
    assert_eq!(count, len, "index count != len");
  }
}
