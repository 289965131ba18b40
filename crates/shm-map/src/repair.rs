//! Repair and verify: a shard rebuilt from its records, and a full check of
//! every invariant the writer keeps.
//!
//! Repair walks the ring from the tail to the head. Records are kept or
//! dropped by what they record themselves: a LIVE record with a valid header
//! is an entry; WRITING (the write in flight when its writer died) becomes
//! DEAD; two LIVE copies of a key (a write or move cut short after the new
//! copy became LIVE) keep the higher version. Bytes that do not parse as a
//! record (damage) are skipped up to the next header whose `check` matches
//! and covered with a DEAD filler, so later walks step over them. Head and
//! tail themselves are single stores that a crash never tears; if they are
//! implausible (damage), they are found again from the records: every
//! append takes the next version, so versions grow along the ring from the
//! tail to the head, and the live region is the longest run of contiguous
//! records with growing versions ending at the newest one. Then the index is
//! rebuilt (each entry keeps the access word its old cell had, when one
//! pointed at it), and `len`, the byte counts, the write sequence and the
//! next expiry are recomputed. Repair is the one operation that walks a
//! whole shard; it runs after a crash or when damage was found.

use std::collections::HashMap;
use std::sync::atomic::Ordering::*;

use crate::layout::*;
use crate::reader::Shard;
use crate::ring::{self, Rec, REC_DEAD, REC_HEADER, REC_LIVE, REC_WRITING};
use crate::writer::Guard;

/// The longest DEAD filler (its length is a u32).
const MAX_FILLER: u64 = 1 << 31;

impl Guard<'_> {
  /// Rebuilds the shard's derived state from its records (see the module
  /// docs). Loses at most the write that was in flight; never fails.
  pub(crate) fn repair(&mut self) {
    self.begin();
    let s = self.s;
    let l = s.l;
    // Old access words, by record offset, from cells that still parse.
    let mut access: HashMap<u64, u64> = HashMap::new();
    for c in 0..l.cells {
      let cell = s.cell(c);
      if let Some(off) = cell.off(l) {
        access.insert(off, s.access_word(c).load(Relaxed));
      }
    }
    let (tail, head) = match ring::bounds(&s) {
      Some(b) => b,
      None => {
        let (tail, head) = rebuild_bounds(&s);
        s.h64(S_TAIL).store(tail, Relaxed);
        s.h64(S_HEAD).store(head, Relaxed);
        (tail, head)
      }
    };
    // (key, hash, record) of the entries kept.
    let mut kept: Vec<(Vec<u8>, u64, Rec)> = Vec::new();
    let mut by_key: HashMap<Vec<u8>, usize> = HashMap::new();
    // The write sequence stays above every version in the ring; one out of
    // range (damage: it would hand out versions that break their order) is
    // renewed from the records' versions alone.
    let mut max_version = Some(s.h64(S_WRITE_SEQ).load(Relaxed))
      .filter(|&v| v < ring::MAX_VERSION)
      .unwrap_or(0);
    let mut last_live = 0u64;
    let mut pos = tail;
    let mut halfway = false;
    while pos < head {
      if !halfway && pos - tail >= (head - tail) / 2 {
        halfway = true;
        hook!(REPAIR);
      }
      let off = s.phys(pos);
      let parsed = ring::state_len(&s, off, head - pos).and_then(|(state, len)| {
        let r = ring::entry_at(&s, off)
          .ok()
          .filter(|r| r.len == len && r.check_ok());
        if let Some(r) = r {
          // Versions of every record with a header, DEAD ones included, so
          // the write sequence stays above all of them.
          max_version = max_version.max(r.version);
        }
        match state {
          // A DEAD filler has no header.
          REC_DEAD => Some((state, len, None)),
          _ => r.map(|r| (state, len, Some(r))),
        }
      });
      let Some((state, len, rec)) = parsed else {
        let next = resync(&s, pos, head);
        let mut p = pos;
        while p < next {
          let n = (next - p).min(MAX_FILLER);
          let o = s.phys(p);
          s.r32(o + ring::R_STATE).store(REC_DEAD, Relaxed);
          s.r32(o + ring::R_LEN).store(n as u32, Relaxed);
          p += n;
        }
        pos = next;
        continue;
      };
      match (state, rec) {
        (REC_WRITING, Some(r)) => {
          s.r32(r.off + ring::R_STATE).store(REC_DEAD, Relaxed);
        }
        // Live versions grow along the ring; a live record that breaks the
        // order is stale (an older lap's record found by a resync, or a
        // version taken from a damaged write sequence): dropped.
        (REC_LIVE, Some(r)) if r.version <= last_live => {
          s.r32(r.off + ring::R_STATE).store(REC_DEAD, Relaxed);
        }
        (REC_LIVE, Some(r)) => {
          last_live = r.version;
          let mut key = Vec::new();
          s.read_key(&r, &mut key);
          let h = l.hash(&key);
          let dup = by_key.get(&key).copied();
          match dup {
            Some(k) if kept[k].2.version >= r.version => {
              s.r32(r.off + ring::R_STATE).store(REC_DEAD, Relaxed);
            }
            Some(k) => {
              s.r32(kept[k].2.off + ring::R_STATE)
                .store(REC_DEAD, Relaxed);
              kept[k] = (key, h, r);
            }
            None => {
              by_key.insert(key.clone(), kept.len());
              kept.push((key, h, r));
            }
          }
        }
        _ => {}
      }
      pos += len;
    }
    // A damaged segment may hold more live records than the cap: drop the
    // oldest.
    let cap = l.cap_per_shard as usize;
    if kept.len() > cap {
      kept.sort_unstable_by_key(|k| k.2.version);
      for (_, _, r) in kept.drain(..kept.len() - cap) {
        s.r32(r.off + ring::R_STATE).store(REC_DEAD, Relaxed);
      }
    }
    s.cells_clear();
    let (mut live, mut live_rec, mut next_expiry) = (0u64, 0u64, u64::MAX);
    for (_, h, r) in &kept {
      let a = access.get(&r.off).copied().unwrap_or(self.now & ACCESS_MS);
      // Cannot fail: fewer entries than cells.
      let _ = s.cell_insert(*h, r.off, a);
      live += r.payload();
      live_rec += r.len;
      if r.expires != 0 {
        next_expiry = next_expiry.min(r.expires);
      }
    }
    s.h64(S_LEN).store(kept.len() as u64, Relaxed);
    s.h64(S_LIVE_BYTES).store(live, Relaxed);
    s.h64(S_LIVE_RECORD_BYTES).store(live_rec, Relaxed);
    s.h64(S_WRITE_SEQ).store(max_version, Relaxed);
    s.h64(S_NEXT_EXPIRY).store(next_expiry, Relaxed);
    s.h64(S_LAST_SCAN).store(0, Relaxed);
    self.end();
    self.stat(S_REPAIRS, 1);
  }

  /// Checks every invariant of the shard (read-only), appending problems.
  pub(crate) fn verify(&self, shard: u32, problems: &mut Vec<String>) {
    let s = self.s;
    let l = s.l;
    let start = problems.len();
    let mut p = |msg: String| {
      if problems.len() < start + 20 {
        problems.push(format!("shard {shard}: {msg}"));
      }
    };
    if s.seq().load(Relaxed) & 1 == 1 {
      p("sequence is odd outside a write".into());
    }
    let Some((tail, head)) = ring::bounds(&s) else {
      p(format!(
        "head {} and tail {} are not a region of the {}-byte ring",
        s.h64(S_HEAD).load(Relaxed),
        s.h64(S_TAIL).load(Relaxed),
        l.ring
      ));
      return;
    };
    // Walk the records: they parse, and live versions grow from tail to head.
    let mut last_version = 0u64;
    let mut live_offs: HashMap<u64, (u64, Rec)> = HashMap::new();
    let mut keys: HashMap<Vec<u8>, u64> = HashMap::new();
    let (mut live, mut live_rec) = (0u64, 0u64);
    let mut pos = tail;
    while pos < head {
      let off = s.phys(pos);
      let Some((state, len)) = ring::state_len(&s, off, head - pos) else {
        p(format!("position {pos}: no record parses"));
        return;
      };
      match state {
        REC_DEAD => {}
        REC_WRITING => p(format!(
          "position {pos}: a record is WRITING outside a write"
        )),
        _ => match ring::entry_at(&s, off) {
          Ok(r) if r.len == len && r.check_ok() => {
            if r.version <= last_version {
              p(format!(
                "position {pos}: version {} after {last_version}",
                r.version
              ));
            }
            last_version = r.version;
            let mut key = Vec::new();
            s.read_key(&r, &mut key);
            let h = l.hash(&key);
            if let Some(other) = keys.insert(key, pos) {
              p(format!("positions {other} and {pos} hold the same key"));
            }
            if s.cell_of(h, r.off).is_none() {
              p(format!("live record at position {pos} has no cell"));
            }
            live += r.payload();
            live_rec += r.len;
            live_offs.insert(r.off, (h, r));
          }
          _ => p(format!("position {pos}: bad entry header")),
        },
      }
      pos += len;
    }
    // The index: every cell points at a live record, reachable from home.
    let mut cells = 0u64;
    for c in 0..l.cells {
      let cell = s.cell(c);
      if cell.is_empty() {
        continue;
      }
      cells += 1;
      match cell.off(l).and_then(|o| live_offs.get(&o)) {
        None => p(format!("cell {c} points at no live record")),
        Some((h, _)) if *h as u32 != cell.hash32() => {
          p(format!("cell {c}: hash disagrees with its record's key"))
        }
        Some(_) => {}
      }
      let mut k = cell.home(l);
      let mut steps = 0;
      while k != c && steps < l.cells {
        if s.cell(k).is_empty() {
          p(format!(
            "cell {c} is not reachable from its home {}",
            cell.home(l)
          ));
          break;
        }
        k = s.next_cell(k);
        steps += 1;
      }
    }
    let seq = s.h64(S_WRITE_SEQ).load(Relaxed);
    if seq < last_version || seq >= ring::MAX_VERSION {
      p(format!(
        "write sequence {seq} is below a live version ({last_version}) or out of range"
      ));
    }
    let len = s.h64(S_LEN).load(Relaxed);
    if len != cells || len != live_offs.len() as u64 {
      p(format!(
        "len is {len}, the index holds {cells}, the ring {} live records",
        live_offs.len()
      ));
    }
    if len > l.cap_per_shard as u64 {
      p(format!("len {len} over the cap {}", l.cap_per_shard));
    }
    if s.h64(S_LIVE_BYTES).load(Relaxed) != live {
      p(format!(
        "live bytes {} but the records hold {live}",
        s.h64(S_LIVE_BYTES).load(Relaxed)
      ));
    }
    if s.h64(S_LIVE_RECORD_BYTES).load(Relaxed) != live_rec {
      p(format!(
        "live record bytes {} but the records take {live_rec}",
        s.h64(S_LIVE_RECORD_BYTES).load(Relaxed)
      ));
    }
  }
}

/// The first position after `pos` (8-aligned, before `head`) where a record
/// header parses and its `check` matches, or `head`.
fn resync(s: &Shard<'_>, pos: u64, head: u64) -> u64 {
  let mut q = pos + 8;
  while q + REC_HEADER <= head {
    let off = s.phys(q);
    if let Ok(r) = ring::entry_at(s, off) {
      if matches!(r.state, REC_LIVE | REC_WRITING | REC_DEAD) && r.check_ok() && r.len <= head - q {
        return q;
      }
    }
    q += 8;
  }
  head
}

/// Head and tail found again from the records, for a shard whose stored
/// positions are implausible: the newest record (highest version with a
/// valid `check`) ends at the head; going back, each record is the newest
/// older one that ends where the next begins; the tail is where that chain
/// stops. Returns positions whose ring offsets are those (`tail < ring`).
fn rebuild_bounds(s: &Shard<'_>) -> (u64, u64) {
  let ring = s.l.ring;
  // Every header that parses, by its ring offset.
  let mut found: Vec<Rec> = Vec::new();
  let mut off = 0;
  while off < ring {
    if let Ok(r) = ring::entry_at(s, off) {
      if r.check_ok() {
        found.push(r);
      }
    }
    off += 8;
  }
  let Some(newest) = found.iter().max_by_key(|r| r.version).copied() else {
    return (0, 0);
  };
  let mut by_end: HashMap<u64, Vec<Rec>> = HashMap::new();
  for r in &found {
    by_end.entry(s.wrap(r.off, r.len)).or_default().push(*r);
  }
  let mut first = newest;
  let mut span = newest.len;
  loop {
    let prev = by_end
      .get(&first.off)
      .and_then(|rs| {
        rs.iter()
          .filter(|r| r.version < first.version)
          .max_by_key(|r| r.version)
      })
      .copied();
    match prev {
      Some(p) if span + p.len <= ring => {
        span += p.len;
        first = p;
      }
      _ => break,
    }
  }
  (first.off, first.off + span)
}
