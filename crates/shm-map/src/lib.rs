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
//! and slot indices are stored. Integers are native little-endian; regions
//! are 64-byte aligned.
//!
//! ```text
//! 0        header (4 KiB): magic "LRUKITSM", layout version (3), init state
//!          (0 busy / 1 ready, stored last with Release), hash id (xxh3-64) and
//!          the segment's random seed, lock kind (glibc / musl / FreeBSD robust mutex, or lease),
//!          total size, capacity, shards, slots and buckets per shard,
//!          max key / value bytes, slot size, eviction, default TTL, created-at,
//!          creator pid, derived strides, and an xxh3 checksum of all of it;
//!          the first 128 bytes are only ever accessed as 4-byte atomics.
//! 4096     256 counter lanes × 64 B: {owner pid, hits, misses}, one per
//!          open handle, so reads never write a cache line another process
//!          writes (stats() sums them).
//! 20480    shards × stride:
//!            shard header (256 B): lock (64 B: robust pthread_mutex_t or
//!              lease word) | seq (odd while a writer mutates), len, free-list
//!              head, LRU head/tail, write sequence, next expiry, last expiry
//!              scan, mutex re-init word | sets, deletes, evictions,
//!              expirations, lock recoveries, repairs, last locker's pid
//!              namespace
//!            buckets: u32 slot index per bucket (EMPTY = u32::MAX), a power
//!              of two ≥ slots; separate chaining through the slots
//!            slots: fixed size = 64 + round8(max_key) + round8(max(max_value, 8))
//! ```
//!
//! A slot is `state` (FREE 0 / USED 1 / WRITING 2), key length, hash, chain
//! (or free-list) next, value length, LRU prev (or free-list prev)/next, value tag, write
//! version, expires-at ms (0 = never), access word (last access ms + a
//! "read since linked" bit), then the key and value bytes. Values are typed:
//! STRING 1, NUMBER (f64) 2, BIGINT (i64) 3, BOOL 4, NULL 5, BYTES 6, JSON 7.
//! Each shard has `ceil(capacity / shards) + 1` slots: the spare one lets an
//! update write its new copy before freeing the old one even when the shard
//! is full. Capacity and LRU order are per shard (approximate globally).
//! `required_memory_size` gives the segment size for given parameters.
//!
//! **Home slots.** A lookup costs two dependent cache misses (bucket, then
//! slot). To overlap them, every key has a *home slot* (hash bits 16..48
//! reduced to the shard's slot range, independent of the shard and bucket
//! bits): a writer puts a new entry there when it is free (the free list is
//! doubly linked, so any free slot can be taken in O(1)), and a lookup
//! prefetches the home slot's header and key lines before it loads the
//! bucket. The chain still decides; the home slot is only where the entry
//! usually is. Measured: a `get` hit over 100k keys takes 20-30% less time
//! (BENCH.md).
//!
//! `open` copies the header into a private `Layout` after checking
//! the magic and version, the checksum, the hash id, the lock kind, every
//! derived field against a recomputation, and the real segment length
//! (`EINCOMPAT` names the field). Layout parameters are never re-read from
//! shared memory afterwards, and every index, length and tag read from a slot
//! is bounds-checked before use; chain and list walks stop after `slots`
//! steps.
//!
//! # Reads: seqlock, no shared writes
//!
//! `get`/`peek`/`contains` take no lock: load the shard's `seq` (Acquire;
//! odd = retry), walk the chain and copy the value out with relaxed atomic
//! word loads (never a plain memcpy of memory others write), then `fence
//! (Acquire)` and re-load `seq`; a change means retry. After 64 attempts, or
//! on a stable view that fails validation, the reader takes the lock, which
//! also recovers a shard whose writer died. Recency costs at most one shared
//! store per entry per second: a reader sets the access word to `now | READ`
//! only if the bit is clear or the stored time is ≥ 1 s old (stamped with the
//! cheap `CLOCK_REALTIME_COARSE`; the precise clock is read only for entries
//! that have a TTL). Hits and misses go to the handle's own lane.
//! [`SharedMap::get_with`] hands the value to a callback as a borrowed
//! [`ValueRef`] (copied into a per-thread buffer, no lock held) instead of
//! allocating a [`Value`].
//!
//! # Writes
//!
//! Writers take the shard lock, make `seq` odd (then `fence(Release)`),
//! mutate with relaxed atomic stores, make `seq` even (Release) and unlock.
//! Critical sections are memcpy-sized, except `clear`, `evict_older_than`,
//! `purge_expired`, expiry scans (at most once a second per shard in LRU
//! mode) and repair, which are O(slots of one shard). No user code ever runs
//! under a lock.
//!
//! * insert: pop a free slot, write the entry while the slot is WRITING, push
//!   it on its chain and the LRU head, mark it USED, `len += 1`.
//! * update (`set` on an existing key, `compare_and_set`): copy-on-write —
//!   the new copy is written into a WRITING slot, replaces the old slot in
//!   the chain and the LRU list, is marked USED, and only then is the old
//!   slot marked FREE.
//! * `incr` on an existing number updates its 8-byte word in place with one
//!   atomic store (old or new value, never torn).
//! * delete / evict / expire: unlink from chain and LRU list, mark FREE.
//! * a full shard (`len == ceil(capacity / shards)`) first reclaims expired
//!   entries, then with eviction `Lru` evicts the LRU tail — unless it was
//!   read since it was linked (the READ bit), in which case it gets a second
//!   chance (moved to the head, bit cleared; at most 32 per eviction) — and
//!   with eviction `None` fails with `EFULL`, losing nothing.
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
//! Invariant: a slot's `state` alone says whether it holds a live entry, and
//! an entry is complete before its slot becomes USED. Everything else
//! (buckets, chains, LRU list, free list, `len`, next expiry) is derived.
//! So a locker that finds the previous owner dead — or `seq` odd with the
//! lock free, or an inconsistency while working — **repairs that shard
//! only**: it scans the slots, keeps USED slots whose lengths and tag are
//! valid and whose stored hash is the hash of the stored key, keeping the
//! higher write version if two hold the same key (a copy-on-write cut short
//! after the new copy became USED), frees everything else (WRITING = the
//! write in flight, dropped), and rebuilds buckets, the free list, `len` and
//! the LRU list (ordered by last access, then version). `seq` is odd during
//! the rebuild and even after it; a crash during repair is repaired again by
//! the next locker. At most the write in flight is lost, and other shards
//! are never touched. `Stats::lock_recoveries` counts deaths found inside a
//! critical section (counted before the repair, so a recoverer that dies too
//! is still counted), `Stats::repairs` completed rebuilds (recoveries plus
//! damage found by an operation).
//!
//! # Time
//!
//! TTLs use the wall clock (`SystemTime`, ms since the epoch), which every
//! process shares. Expired entries are never returned (a miss); they are
//! reclaimed when accessed, when a full shard needs room, or by
//! [`SharedMap::purge_expired`].
//!
//! # Limits of the hostile-memory guarantee
//!
//! Damage is detected structurally (bounds, tags, hashes, links), not by
//! checksumming values: a flipped byte inside a stored value is returned as
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

mod error;
#[cfg(feature = "test-hooks")]
mod hooks;
mod index;
mod layout;
mod lock;
mod map;
mod mem;
mod reader;
mod repair;
mod ring;
mod sys;
mod writer;
/// The key and value encodings stored in the segment (part of the format).
pub use lrukit_codec as codec;
use lrukit_codec::value;

pub use error::Error;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use hooks::{
  debug_clear_crash_hook, debug_count_stores, debug_set_crash_hook, debug_stop_counting,
  point as hook_point, CrashAction,
};
pub use layout::Eviction;
pub use map::{required_memory_size, Options, Report, SharedMap, Stats};
pub use value::{Value, ValueRef};

/// Parses and validates a segment header image (the first 128 bytes) as
/// `open` does, for a segment of `segment_len` bytes (fuzzing).
#[doc(hidden)]
pub fn debug_parse_header(header: &[u8; 128], segment_len: u64) -> Result<(), Error> {
  layout::Layout::from_header(header, segment_len).map(|_| ())
}
