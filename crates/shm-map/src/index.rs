//! The index: each shard's open-addressing table of cells, one per entry,
//! pointing into the ring.
//!
//! A cell is 16 bytes (four to a cache line):
//!
//! ```text
//! word 0: hash32 << 32 | (ring offset / 8 + 1)     0 = empty
//! word 1: access word: READ bit (63) | last access, ms since the epoch
//! ```
//!
//! `hash32` is the low 32 bits of the key's hash; the probe starts at the
//! *home* cell `hash32 × cells >> 32` and walks forward (linear probing,
//! wrapping) until an empty cell. A cell whose `hash32` matches is checked
//! by comparing the record's key. The load factor is at most 3/4 (the
//! shard's entry cap), so a probe ends after a few cells and there is always
//! an empty one; still, every walk stops after `cells` steps.
//!
//! Removal shifts the following cells of the run back (no tombstones), so
//! the invariant is simply: every occupied cell is reachable from its home
//! through occupied cells. The index is derived data: repair rebuilds it
//! from the ring's live records (keeping the old access words it can match).
//!
//! The access word is the only shared word a reader writes, and it lives in
//! a fixed place: a reader that stamps it after its entry moved stamps some
//! other entry's access time (harmless: recency is a hint), never ring bytes.

use std::sync::atomic::Ordering::*;

use crate::layout::*;
use crate::mem::Shared64;
use crate::reader::Shard;

pub(crate) const CELL_BYTES: u64 = 16;

/// A cell's first word.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Cell(pub u64);

impl Cell {
  #[inline(always)]
  pub(crate) fn new(h: u64, off: u64) -> Cell {
    Cell(((h as u32 as u64) << 32) | (off / 8 + 1))
  }
  #[inline(always)]
  pub(crate) fn is_empty(self) -> bool {
    self.0 == 0
  }
  #[inline(always)]
  pub(crate) fn hash32(self) -> u32 {
    (self.0 >> 32) as u32
  }
  /// The record's ring offset, if it is a valid one (8-aligned, in the ring).
  #[inline(always)]
  pub(crate) fn off(self, l: &Layout) -> Option<u64> {
    let units = (self.0 as u32 as u64).checked_sub(1)?;
    let off = units * 8;
    (off < l.ring).then_some(off)
  }
  /// The home cell of the key this cell holds.
  #[inline(always)]
  pub(crate) fn home(self, l: &Layout) -> u32 {
    l.home_of(self.hash32() as u64)
  }
}

impl<'a> Shard<'a> {
  #[inline(always)]
  pub(crate) fn cell_addr(&self, c: u32) -> u64 {
    debug_assert!(c < self.l.cells);
    self.base + self.l.cells_off + c as u64 * CELL_BYTES
  }
  #[inline(always)]
  pub(crate) fn cell_word(&self, c: u32) -> &'a Shared64 {
    self.m.a64(self.cell_addr(c))
  }
  #[inline(always)]
  pub(crate) fn access_word(&self, c: u32) -> &'a Shared64 {
    self.m.a64(self.cell_addr(c) + 8)
  }
  #[inline(always)]
  pub(crate) fn cell(&self, c: u32) -> Cell {
    Cell(self.cell_word(c).load(Relaxed))
  }
  #[inline(always)]
  pub(crate) fn next_cell(&self, c: u32) -> u32 {
    if c + 1 == self.l.cells {
      0
    } else {
      c + 1
    }
  }

  /// The cell that points at ring offset `off` for a key of hash `h`.
  pub(crate) fn cell_of(&self, h: u64, off: u64) -> Option<u32> {
    let want = Cell::new(h, off);
    let mut c = self.l.home_of(h);
    for _ in 0..self.l.cells {
      let cell = self.cell(c);
      if cell.is_empty() {
        return None;
      }
      if cell == want {
        return Some(c);
      }
      c = self.next_cell(c);
    }
    None
  }

  /// Puts a cell for (`h`, `off`) in the first empty cell of `h`'s run,
  /// with access word `access`. `None` if the table has no empty cell
  /// (damage: the entry cap keeps a quarter of the cells empty).
  pub(crate) fn cell_insert(&self, h: u64, off: u64, access: u64) -> Option<u32> {
    let mut c = self.l.home_of(h);
    for _ in 0..self.l.cells {
      if self.cell(c).is_empty() {
        self.access_word(c).store(access, Relaxed);
        self.cell_word(c).store(Cell::new(h, off).0, Relaxed);
        return Some(c);
      }
      c = self.next_cell(c);
    }
    None
  }

  /// Empties cell `c`, shifting later cells of its run back so that every
  /// cell stays reachable from its home.
  pub(crate) fn cell_remove(&self, c: u32) {
    let mut hole = c;
    let mut j = c;
    for _ in 0..self.l.cells {
      j = self.next_cell(j);
      let cell = self.cell(j);
      if cell.is_empty() {
        break;
      }
      // The cell at `j` may move back to `hole` unless its home lies
      // cyclically in (hole, j].
      let home = cell.home(self.l);
      let stays = if hole <= j {
        hole < home && home <= j
      } else {
        hole < home || home <= j
      };
      if !stays {
        self
          .access_word(hole)
          .store(self.access_word(j).load(Relaxed), Relaxed);
        self.cell_word(hole).store(cell.0, Relaxed);
        hole = j;
      }
    }
    self.cell_word(hole).store(0, Relaxed);
  }

  /// Empties every cell.
  pub(crate) fn cells_clear(&self) {
    for c in 0..self.l.cells {
      if !self.cell(c).is_empty() {
        self.cell_word(c).store(0, Relaxed);
      }
    }
  }
}
