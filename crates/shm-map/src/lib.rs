//! A hash map with LRU eviction and TTL in **named shared memory**, read and
//! written by many unrelated processes at once. A process killed at any
//! instruction (SIGKILL while holding a lock included) never deadlocks the
//! others and loses at most the one write it had in flight; damaged memory
//! yields errors or misses, never a crash, an out-of-bounds access or a hang.
//!
//! # Threat model
//!
//! **Processes of the same user are trusted; anyone else is refused.** A map
//! is shared by cooperating processes of one user (cluster workers, PM2,
//! Electron's processes, Bun beside Node). Such a process can already write
//! any byte of the segment, so against it lrukit promises only robustness:
//! damaged memory yields errors or misses, never a crash, an out-of-bounds
//! access or a hang (limits below). A segment that *another* user could
//! have written is never used: `open`/`open_or_create` `fstat` the object
//! before mapping it and refuse it with `EPERM` (naming the map, the owner
//! uid and the mode) unless this process's effective uid owns it and its
//! mode grants write to nobody beyond the `Options::mode` the caller
//! accepts (default 0o600; a map created 0o660 for a group is opened with
//! `mode: 0o660`). Nothing is read from a refused segment. This matters
//! beyond cache poisoning: on Linux the segment holds the robust mutexes
//! whose list pointers glibc follows on unlock, so a squatter's segment
//! would be a write primitive into the victim's memory. The hash seed is
//! random per segment, so keys cannot be crafted to collide in someone
//! else's map. (Windows: file mappings get default security and no owner
//! check is made; macOS: see the creation lock below.)
//!
//! # Segment and names
//!
//! A map named `name` (1..=24 of `[A-Za-z0-9._-]`, not ending in `.`; on
//! Windows names are case-insensitive) is the POSIX shared memory
//! object `/lk_<name>` (≤ 28 characters, under macOS's 31-character
//! `PSHMNAMLEN`). Creation (unix, through libc): `shm_open(O_CREAT |
//! O_EXCL, 0)`, `flock(LOCK_EX)` on it (the **creation lock**, held until
//! READY), `fchmod(mode)` (exactly `mode`, whatever the umask), `ftruncate`,
//! `posix_fallocate` on Linux (a full `/dev/shm` fails `create` with a clear
//! `EIO` naming ENOSPC instead of SIGBUS later), `mmap(MAP_SHARED)`, header,
//! shards, READY (stored last, Release), unlock. Nothing unlinks on drop;
//! [`SharedMap::unlink`] removes the name.
//! [`SharedMap::describe`] reads only a segment's header, after the same
//! trust check as `open`, and reports what it finds (another layout
//! version, garbage, a creator at work or dead) without opening the map:
//! what tools that list maps use.
//!
//! `open_or_create` is race-free: `O_EXCL` picks one creator; the others
//! open and wait while the creator holds its creation lock (mode 0 means
//! "creator not yet locked", a window of two syscalls, given 250 ms of
//! grace). A segment that is not READY and whose creation lock nobody holds
//! has a dead creator: `open` reports `EUNINIT` at once, and
//! `open_or_create` takes it over — it takes the dead segment's lock
//! exclusively, re-checks that the name still refers to that segment, and
//! unlinks it, then creates anew. Of many processes that found the same dead
//! creator, one removes the name and the others find it gone or pointing at
//! the new segment; the first takes over in milliseconds. A creator alive
//! but slower than the opener's lock timeout makes the opener fail with
//! `ETIMEDOUT`. macOS has no `flock` on POSIX shared memory: there a dead
//! creator is reported (`EUNINIT`) once the opener's lock timeout ran out.
//! (Windows: the `shared_memory` crate backs the mapping with a file in the
//! temp directory; `mode` does not apply.)
//!
//! # Layout
//!
//! Every process maps the segment at a different address, so only offsets
//! are stored. Integers are native little-endian; regions are 64-byte
//! aligned. Layout version 4:
//!
//! ```text
//! 0        header (4 KiB): magic "LRUKITSM", layout version, init state
//!          (0 busy / 1 ready, stored last with Release), hash id (xxh3-64) and
//!          the segment's random seed, lock kind (glibc / musl / FreeBSD robust
//!          mutex, or lease), total size, the entry cap asked for, shards,
//!          entries and index cells per shard, max key / value bytes, ring
//!          bytes per shard, default TTL, created-at, creator pid, eviction,
//!          derived strides, and an xxh3 checksum of all of it; the first 128
//!          bytes are only ever accessed as 4-byte atomics.
//! 4096     256 counter lanes × 64 B: {owner pid, hits, misses}, one per
//!          open handle, so reads never write a cache line another process
//!          writes (stats() sums them).
//! 20480    shards × stride:
//!            shard header (256 B): lock (64 B: robust pthread_mutex_t or
//!              lease word) | seq (odd while a writer mutates), len, ring head
//!              and tail, write sequence, next expiry, last expiry scan, mutex
//!              re-init word | sets, deletes, evictions (room), expirations,
//!              lock recoveries, repairs, last locker's pid namespace, live
//!              payload bytes, live record bytes, evictions (capacity, manual),
//!              moves
//!            index: cells × 16 B (module `index`): hash32 | record offset,
//!              and the access word
//!            ring: `ring` bytes of variable-size records (module `ring`)
//! ```
//!
//! An entry is one record in its shard's ring — a 40-byte header (state,
//! length, key and value lengths, value tag, a check of the header, write
//! version, expiry), the key and the value, each padded to 8 bytes — and one
//! index cell pointing at it. Nothing is reserved per entry: a 10-byte value
//! takes 56 bytes of ring with an 8-byte key, a 1 MiB value a megabyte. Keys
//! and values are encoded as `lrukit_codec` defines (part of this format).
//!
//! **Sizing.** `memory_size` is the budget: split evenly between shards, and
//! within a shard between the index (sized for entries of `avg_key_bytes` +
//! `avg_value_bytes`, defaults 32 and 256, at a load of at most 3/4) and the
//! ring (the rest). `capacity` alone sizes the map for that many entries of
//! the average sizes; with `memory_size` it only caps the entries. The limits
//! `max_key_bytes` (default 256) and `max_value_bytes` (default 1 MiB)
//! reserve nothing; an entry must also fit in half of its shard's ring (the
//! default shard count keeps at least 4 MiB per shard, so a 1 MiB value fits
//! a 64 MiB map). [`required_memory_size`] is what `create` allocates.
//!
//! **Allocation** (module `ring`). Records are appended at the ring's head
//! and reclaimed at its tail, so there is no fragmentation and no size
//! classes to calcify: when the size mix shifts, big and small records share
//! the same ring. Waste: up to 7 bytes of padding per key and per value, the
//! 40-byte header, and the records of deleted and replaced entries until the
//! tail passes them. A write that needs room reclaims tail records: garbage is
//! skipped; a live record is moved to the head (compaction) while the shard's
//! live records leave room, or given a second chance if it was read since it
//! was written; otherwise it is evicted (`Lru`). This is FIFO with
//! reinsertion, an approximation of LRU in the family of CLOCK. A write's
//! work is bounded by its own size (the moves it may make are budgeted), never
//! by the map's. A `None` map never evicts: it refuses a write (`EFULL`)
//! unless its live records, the new one and a reserve of the largest record
//! fit, and the reserve lets it always move live records to reclaim the
//! garbage behind them.
//!
//! `open` copies the header into a private `Layout` after checking the magic
//! and version (a map of another layout version is refused with `EINCOMPAT`
//! naming both), the checksum, the hash id, the lock kind, every derived
//! field against a recomputation, and the real segment length (`EINCOMPAT`
//! names the field). Layout parameters are never re-read from shared memory
//! afterwards. Every offset read from a cell or a record is checked against
//! the ring (and its alignment) before use, every length and tag is validated,
//! and every walk is bounded.
//!
//! # Reads: seqlock, no shared writes
//!
//! `get`/`peek`/`contains` take no lock: load the shard's `seq` (Acquire;
//! odd = retry), probe the index from the key's home cell, check the record
//! a matching cell points at (state, lengths, tag, key) and copy the value
//! out with relaxed atomic word loads (never a plain memcpy of memory others
//! write; a value that wraps around the ring's end is copied in two parts),
//! then `fence(Acquire)` and re-load `seq`; a change means retry, so a torn
//! copy is never returned, whatever the value's size. After 64 attempts, or
//! on a stable view that fails validation, the reader takes the lock, which
//! also recovers a shard whose writer died. Recency costs at most one shared
//! store per entry per second: a reader sets the cell's access word to
//! `now | READ` only if the bit is clear or the stored time is ≥ 1 s old
//! (stamped with the cheap `CLOCK_REALTIME_COARSE`; the precise clock is
//! read only for entries that have a TTL). Hits and misses go to the
//! handle's own lane. [`SharedMap::get_with`] hands the value to a callback
//! as a borrowed [`ValueRef`] (copied into a per-thread buffer, no lock held)
//! instead of allocating a [`Value`].
//!
//! # Writes
//!
//! Writers take the shard lock, make `seq` odd (then `fence(Release)`),
//! mutate with relaxed atomic stores, make `seq` even (Release) and unlock.
//! Critical sections do work proportional to the entry written, except
//! `clear` (the index), `evict_older_than` (the index), `purge_expired` (the
//! ring), expiry scans of `None` maps about to refuse a write, and repair,
//! which are O(one shard). No user code ever runs under a lock.
//!
//! * insert / update (`set`, `add`, `compare_and_set`, `incr` of a missing
//!   key): make room, append the new record (WRITING), publish the head,
//!   point the key's cell at it (a new cell for an insert), mark it LIVE,
//!   then mark a replaced record DEAD.
//! * `incr` on an existing number updates its 8-byte word in place with one
//!   atomic store (old or new value, never torn).
//! * delete / expire / evict: mark the record DEAD, then empty its cell
//!   (later cells of the run shift back).
//! * a shard at its entry cap (`ceil(capacity / shards)`) first reclaims
//!   expired entries, then with eviction `Lru` evicts from the tail (second
//!   chances as above) and with eviction `None` fails with `EFULL`, losing
//!   nothing.
//!
//! # Locks and crash recovery
//!
//! Each shard has its own lock (module `lock`). Linux/FreeBSD: a
//! `pthread_mutex_t` with `PTHREAD_PROCESS_SHARED` + `PTHREAD_MUTEX_ROBUST`;
//! when its owner dies, the next locker gets `EOWNERDEAD`. When the kernel
//! never marks a dead owner (the OOM reaper freed its robust list first),
//! a waiter that finds the owner thread gone marks the lock itself, by CAS
//! from the exact word it read, so exactly one locker recovers the shard
//! (glibc; holders in another pid namespace are never judged).
//! `ENOTRECOVERABLE`: exactly one process re-initialises the mutex (a CAS
//! on the shard's re-init epoch). macOS/Windows: an owner lease — the lock
//! word is `start tag << 32 | pid`, taken by CAS, released by CAS from the
//! holder's own word; a waiter checks the owner after 2 ms and every 10 ms,
//! and takes over if it is gone, a zombie, or its pid now belongs to a
//! process with another start time.
//!
//! **Lock timeouts.** Every wait for a shard lock is bounded by the
//! handle's `Options::lock_timeout` (default 5 s; also
//! [`SharedMap::set_lock_timeout`]), measured on the monotonic clock over
//! the whole acquisition, robust retries and re-initialisation included
//! (the mutex is waited for in slices of at most 50 ms with
//! `pthread_mutex_clocklock(CLOCK_MONOTONIC)` where the C library has it).
//! A holder that is alive but stopped (SIGSTOP, a debugger, a frozen cgroup,
//! a paused container) makes the others' operations on its shard fail with
//! `ETIMEDOUT` naming the map, the shard and the holder's pid; other shards
//! are unaffected, and nothing is lost: the holder resumes where it was.
//! Readers wait under the same bound (they take the lock after 64 torn
//! optimistic attempts). A dead holder is detected long before the timeout.
//!
//! Invariant: a record's `state` alone says whether it holds a live entry,
//! and an entry is complete before its record becomes LIVE. Everything else
//! (the index, `len`, the byte counts, the next expiry) is derived. So a
//! locker that finds the previous owner dead — or `seq` odd with the lock
//! free, or an inconsistency while working — **repairs that shard only**
//! (module `repair`): it walks the ring from the tail to the head, keeps LIVE
//! records whose headers are valid (the higher version if two hold the same
//! key: a write or move cut short after the new copy became LIVE), marks
//! WRITING ones (the write in flight) DEAD, covers bytes that do not parse
//! with DEAD fillers, and rebuilds the index and the counts. `seq` is odd
//! during the rebuild and even after it; a crash during repair is repaired
//! again by the next locker. At most the write in flight is lost, and other
//! shards are never touched. `Stats::lock_recoveries` counts deaths found
//! inside a critical section (counted before the repair, so a recoverer that
//! dies too is still counted), `Stats::repairs` completed rebuilds
//! (recoveries plus damage found by an operation).
//!
//! # Time
//!
//! TTLs use the wall clock (`SystemTime`, ms since the epoch), which every
//! process shares. Expired entries are never returned (a miss); they are
//! reclaimed when accessed, when a full shard needs room, or by
//! [`SharedMap::purge_expired`].
//!
//! # Dump and load
//!
//! [`SharedMap::dump_to`] / [`SharedMap::dump_file`] write the live entries
//! (with their remaining TTLs) to a versioned, checksummed file, one shard at
//! a time; [`SharedMap::load_from`] / [`SharedMap::load_file`] validate a
//! whole file before loading any of it. The file format, the TTL rule and
//! the failure story are at the top of module `dump`.
//!
//! # Limits of the hostile-memory guarantee
//!
//! Damage is detected structurally (bounds, alignment, lengths, tags, the
//! header check of every record, version order), not by checksumming values: a flipped byte inside a stored value is returned as
//! is. On Linux the bytes of the `pthread_mutex_t` objects are trusted:
//! glibc keeps robust-list pointers in them while locked, so damage there
//! can crash the lock holder inside libc (other damage to a lock word yields
//! `ETIMEDOUT` or `ECORRUPT`).
//!
//! **Truncation.** The OS, not lrukit, decides what happens when a process
//! shrinks the segment (`ftruncate`) while others have it mapped: their
//! mappings keep the old length, but the pages past the new end no longer
//! exist, and the first access to one of them — a `get`, `set` or `verify`
//! that reaches a shard past the cut — raises SIGBUS, which kills that
//! process (a Node or Bun process included; `tests/faults.rs` shows it).
//! lrukit installs no handler: none could make the access succeed, and
//! checking the size before every access would cost an `fstat` per
//! operation and still race with the truncation. What lrukit promises: a
//! process that opens the map afterwards is refused with `EINCOMPAT` naming
//! the header's size and the real one (`open_or_create` refuses it too;
//! `unlink` and `create` are the way out); growing a segment is harmless;
//! lrukit never resizes a segment after `create`; and only the owning user
//! (or root) can truncate it, since others are refused by the trust rule —
//! a same-user fault, like writing garbage into the segment. A full
//! `/dev/shm` is a different case: `create` reserves every page up front and
//! fails with `EIO` (ENOSPC) instead.

#![deny(unsafe_op_in_unsafe_fn)]

/// Marks a crash point (test builds only).
macro_rules! hook {
  ($p:ident) => {
    #[cfg(feature = "test-hooks")]
    crate::hooks::hit(crate::hooks::point::$p);
  };
}

mod dump;
mod error;
mod fetch;
#[cfg(feature = "test-hooks")]
mod hooks;
mod index;
mod layout;
pub mod limits;
mod lock;
mod map;
mod mem;
mod mutate;
mod options;
mod reader;
mod repair;
mod ring;
mod segment;
mod segment_info;
mod sys;
mod writer;
/// The key and value encodings stored in the segment (part of the format).
pub use lrukit_codec as codec;
use lrukit_codec::value;

pub use dump::{DUMP_MAGIC, DUMP_VERSION};
pub use error::Error;
pub use fetch::{Claim, FetchOptions, Fetched, JUDGE_INTERVAL_MS};
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use hooks::{
  debug_clear_crash_hook, debug_count_stores, debug_set_crash_hook, debug_stop_counting,
  point as hook_point, CrashAction,
};
pub use layout::Eviction;
pub use map::SharedMap;
pub use options::{required_memory_size, Options, Report, Stats};
pub use segment_info::{InitState, SegmentInfo};
pub use value::{Value, ValueRef};

/// Parses and validates a segment header image (the first 128 bytes) as
/// `open` does, for a segment of `segment_len` bytes (fuzzing).
#[doc(hidden)]
pub fn debug_parse_header(header: &[u8; 128], segment_len: u64) -> Result<(), Error> {
  layout::Layout::from_header(header, segment_len).map(|_| ())
}
