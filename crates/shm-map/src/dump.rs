//! Dump and load: a map's live entries written to a file (or any writer)
//! and read back into an open map, here or in another process, after a
//! restart, on another machine.
//!
//! # Format (version 1)
//!
//! Integers are little-endian. The file is a header, one record per entry
//! and a trailer:
//!
//! ```text
//! header   (24 B)  magic "LRUKITDUMP" (10 B) | format version u16 = 1 |
//!                  flags u32 = 0 | dumped_at u64 (the dumping map's clock,
//!                  ms since the epoch, read when the dump started)
//! entry            kind u8 = 1 | key length u32 | key (the stored key: a key
//!                  encoded with `codec::key` keeps its type tag) | value tag
//!                  u8 (`codec::value`: 1 string … 7 JSON) | value length u32
//!                  | value (byte variants: the bytes; number and bigint: the
//!                  8-byte word; boolean: 1 byte, 0 or 1; null: nothing) |
//!                  remaining TTL u64 (ms after dumped_at; 0 = no expiry)
//! trailer  (17 B)  kind u8 = 0xFF | entry count u64 | xxh3-64 of every byte
//!                  before this checksum (header, entries, kind and count)
//! ```
//!
//! Nothing may follow the trailer. A reader refuses another magic, another
//! version and any flag it does not know, so a later format that changes
//! the meaning of a byte bumps the version and is refused here with a clear
//! error rather than misread.
//!
//! # TTLs
//!
//! An entry's expiry is stored as the time it had left when the dump
//! started (`dumped_at`, from the dumping map's clock). Load computes the
//! absolute deadline `dumped_at + remaining` and compares it with the loading
//! map's clock: an entry whose deadline has passed is skipped (not loaded,
//! not counted), the others are written with the time they have left from
//! now. So time spent on disk counts, as it would have in memory: a session
//! with 10 minutes left that sits in a file for 15 minutes is not revived.
//! (Both maps read the wall clock, so this assumes the machines' clocks
//! agree.) An entry without expiry is loaded without expiry: the target
//! map's default TTL does not apply to loaded entries.
//!
//! # Dump: streaming, bounded memory, weakly consistent
//!
//! [`SharedMap::dump_to`] copies one shard at a time (the same consistent
//! per-shard snapshot as [`SharedMap::entries`], with each entry's expiry,
//! oldest first) and writes it through a `BufWriter`, so memory stays at one
//! shard's entries whatever the map's size. Expired entries are skipped. The
//! dump is weakly consistent like `entries`: each shard is copied
//! consistently, shards one after another, while other processes keep
//! writing; no lock is held while writing the file. Within a shard entries
//! are written oldest first, so a load writes the newest last.
//! [`SharedMap::dump_file`] writes a temporary file next to the target,
//! syncs it and renames it over the target: a crash or an error mid-dump
//! leaves any previous dump intact and never a half-written file under the
//! target's name (the temporary file is removed on error).
//!
//! # Load: validate everything, then load
//!
//! [`SharedMap::load_from`] reads the stream twice. The first pass parses
//! every record and checks the checksum, the entry count and the end of the
//! file without writing anything; the second pass writes the entries with
//! [`SharedMap::set`] (an existing key is replaced; the map is not cleared
//! first: load merges). So a damaged, truncated or foreign file loads
//! **nothing** and fails with `EBADDUMP` naming what is wrong (the message
//! of [`SharedMap::load_file`] names the file too). The first pass also
//! checks that every entry fits this map (its `max_key_bytes`,
//! `max_value_bytes` and half-a-shard's-ring limits): a dump with an entry
//! this map cannot hold fails with `EKEYTOOLONG`/`EVALUETOOLONG` before
//! anything is loaded (checked after the checksum, so damage is reported as
//! damage). What the first pass cannot foresee is the map's state: an
//! `eviction: None` map that fills up fails the second pass with `EFULL`
//! (likewise `ETIMEDOUT`, `ECORRUPT`), and then the entries before it stay
//! loaded; the error's message says how many. The second pass checks the
//! checksum again and fails with `EBADDUMP` if the file changed between the
//! passes (the entries written so far stay, and the message says how many).
//!
//! Both passes stream record by record through a `BufReader`. Every length
//! is checked before anything is allocated for it: against the format's hard
//! limits (the largest key and value any map allows; a larger one is damage,
//! `EBADDUMP`), and against this map's limits (a key or value within the
//! format's limits but over this map's is streamed through the checksum in
//! fixed-size chunks, never allocated). So a damaged or hostile file causes
//! at most a buffer of this map's `max_value_bytes`, never a panic, and the
//! work is bounded by the file's length. An I/O error is `EIO`.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use xxhash_rust::xxh3::Xxh3Default;

use crate::error::{eio, Error};
use crate::layout::{MAX_KEY_BYTES_LIMIT, MAX_VALUE_BYTES_LIMIT};
use crate::value::{
  is_bytes_tag, valid_tag_len, value_ref, TAG_BOOL, TAG_JSON, TAG_NULL, TAG_STRING,
};
use crate::SharedMap;

/// The first bytes of every dump.
pub const DUMP_MAGIC: &[u8; 10] = b"LRUKITDUMP";
/// The format version this build writes and reads.
pub const DUMP_VERSION: u16 = 1;
const HEADER_LEN: usize = 24;
const KIND_ENTRY: u8 = 1;
const KIND_END: u8 = 0xFF;
/// Bytes streamed at a time past a key or value this map cannot hold.
const SKIP_CHUNK: usize = 8 << 10;
const IO_BUF: usize = 64 << 10;

/// The `EBADDUMP` error: the stream is not a complete, undamaged dump.
fn bad(msg: impl Into<String>) -> Error {
  Error::new("EBADDUMP", msg)
}

/// A writer that hashes what it writes.
struct HashWriter<W: Write> {
  w: W,
  h: Xxh3Default,
}

impl<W: Write> HashWriter<W> {
  fn put(&mut self, b: &[u8]) -> Result<(), Error> {
    self.h.update(b);
    self
      .w
      .write_all(b)
      .map_err(|e| eio(format!("writing the dump: {e}")))
  }
}

/// A reader that hashes what it reads and knows its position (for errors).
struct HashReader<R: Read> {
  r: R,
  h: Xxh3Default,
  pos: u64,
}

impl<R: Read> HashReader<R> {
  /// Fills `b`; a short stream is `EBADDUMP` naming `what` was cut.
  fn take(&mut self, b: &mut [u8], what: &dyn Fn() -> String) -> Result<(), Error> {
    self.take_raw(b, what)?;
    self.h.update(b);
    Ok(())
  }

  /// [`take`](Self::take) without hashing (the checksum itself).
  fn take_raw(&mut self, b: &mut [u8], what: &dyn Fn() -> String) -> Result<(), Error> {
    match self.r.read_exact(b) {
      Ok(()) => {
        self.pos += b.len() as u64;
        Ok(())
      }
      Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(bad(format!(
        "truncated: the file ends inside {} (after byte {})",
        what(),
        self.pos
      ))),
      Err(e) => Err(eio(format!("reading the dump: {e}"))),
    }
  }

  fn u8(&mut self, what: &dyn Fn() -> String) -> Result<u8, Error> {
    let mut b = [0; 1];
    self.take(&mut b, what)?;
    Ok(b[0])
  }

  fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, Error> {
    let mut b = [0; 4];
    self.take(&mut b, what)?;
    Ok(u32::from_le_bytes(b))
  }

  fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, Error> {
    let mut b = [0; 8];
    self.take(&mut b, what)?;
    Ok(u64::from_le_bytes(b))
  }

  /// Reads `len` bytes into `buf` (`len` was bounds-checked by the caller).
  fn bytes(&mut self, buf: &mut Vec<u8>, len: u32, what: &dyn Fn() -> String) -> Result<(), Error> {
    buf.clear();
    buf.resize(len as usize, 0);
    self.take(buf, what)
  }

  /// Hashes and drops `len` bytes in fixed-size chunks (a key or value too
  /// large for this map: never allocated).
  fn skip(&mut self, mut len: u64, what: &dyn Fn() -> String) -> Result<(), Error> {
    let mut chunk = [0u8; SKIP_CHUNK];
    while len > 0 {
      let n = len.min(SKIP_CHUNK as u64) as usize;
      self.take(&mut chunk[..n], what)?;
      len -= n as u64;
    }
    Ok(())
  }
}

/// One entry as read: the reused buffers hold its key and value bytes.
struct Record {
  /// 1-based position in the dump (for messages).
  index: u64,
  tag: u32,
  /// The inline word (number, bigint, boolean, null).
  word: u64,
  ttl: u64,
  /// Why this map cannot hold the entry (its key or value was not read).
  misfit: Option<Error>,
}

/// What a whole pass read.
struct Summary {
  count: u64,
  checksum: u64,
}

/// Parses a dump record by record.
struct Parser<'m, R: Read> {
  r: HashReader<R>,
  map: &'m SharedMap,
  dumped_at: u64,
  count: u64,
  key: Vec<u8>,
  value: Vec<u8>,
}

impl<'m, R: Read> Parser<'m, R> {
  fn new(r: R, map: &'m SharedMap) -> Result<Self, Error> {
    let mut r = HashReader {
      r,
      h: Xxh3Default::new(),
      pos: 0,
    };
    let mut head = [0u8; HEADER_LEN];
    let mut got = 0;
    // The header: an empty or short stream is not a dump at all.
    while got < HEADER_LEN {
      match r.r.read(&mut head[got..]) {
        Ok(0) => break,
        Ok(n) => got += n,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => return Err(eio(format!("reading the dump: {e}"))),
      }
    }
    if got == 0 {
      return Err(bad("the file is empty, not an lrukit dump"));
    }
    if got < DUMP_MAGIC.len() || &head[..DUMP_MAGIC.len()] != DUMP_MAGIC {
      return Err(bad(
        "not an lrukit dump (it does not start with \"LRUKITDUMP\")",
      ));
    }
    if got < HEADER_LEN {
      return Err(bad(format!(
        "truncated: the file ends inside the {HEADER_LEN}-byte header (after byte {got})"
      )));
    }
    r.h.update(&head);
    r.pos = HEADER_LEN as u64;
    let version = u16::from_le_bytes([head[10], head[11]]);
    if version != DUMP_VERSION {
      return Err(bad(format!(
        "dump format version {version}; this build reads version {DUMP_VERSION}"
      )));
    }
    let flags = u32::from_le_bytes(head[12..16].try_into().unwrap());
    if flags != 0 {
      return Err(bad(format!(
        "unknown header flags {flags:#x} (a newer lrukit wrote it, or the header is damaged)"
      )));
    }
    let dumped_at = u64::from_le_bytes(head[16..24].try_into().unwrap());
    Ok(Parser {
      r,
      map,
      dumped_at,
      count: 0,
      key: Vec::new(),
      value: Vec::new(),
    })
  }

  /// The next entry, or `None` after checking the trailer (count, checksum,
  /// end of file).
  fn next(&mut self) -> Result<Option<Record>, Error> {
    let index = self.count + 1;
    let at = |what: &'static str| move || format!("{what} of entry {index}");
    let kind = self
      .r
      .u8(&|| format!("the record after entry {}", index - 1))?;
    match kind {
      KIND_ENTRY => {}
      KIND_END => return self.trailer().map(|_| None),
      k => {
        return Err(bad(format!(
          "record {index} has unknown kind {k:#04x} at byte {} (damaged)",
          self.r.pos - 1
        )))
      }
    }
    let key_len = self.r.u32(&at("the key length"))?;
    if key_len > MAX_KEY_BYTES_LIMIT {
      return Err(bad(format!(
        "entry {index}: key length {key_len} is over the format's limit of {MAX_KEY_BYTES_LIMIT} (damaged)"
      )));
    }
    let (max_key, max_value) = (self.map.layout.max_key, self.map.layout.max_value);
    let mut misfit = None;
    if key_len > max_key {
      self.r.skip(key_len as u64, &at("the key"))?;
      misfit = Some(Error::new(
        "EKEYTOOLONG",
        format!("entry {index}: key of {key_len} bytes, the map allows {max_key}"),
      ));
    } else {
      self.r.bytes(&mut self.key, key_len, &at("the key"))?;
    }
    let tag = self.r.u8(&at("the value tag"))? as u32;
    let len = self.r.u32(&at("the value length"))?;
    if !valid_tag_len(tag, len, MAX_VALUE_BYTES_LIMIT) {
      return Err(bad(format!(
        "entry {index}: value tag {tag} with length {len} is not a valid value (damaged)"
      )));
    }
    let mut word = 0;
    if is_bytes_tag(tag) {
      if misfit.is_none() && len > max_value {
        misfit = Some(Error::new(
          "EVALUETOOLONG",
          format!("entry {index}: value of {len} bytes, the map allows {max_value}"),
        ));
      }
      if misfit.is_some() {
        self.r.skip(len as u64, &at("the value"))?;
      } else {
        self.r.bytes(&mut self.value, len, &at("the value"))?;
      }
    } else {
      let mut b = [0u8; 8];
      self.r.take(&mut b[..len as usize], &at("the value"))?;
      word = u64::from_le_bytes(b);
      if tag == TAG_BOOL && word > 1 {
        return Err(bad(format!("entry {index}: boolean byte {word} (damaged)")));
      }
    }
    let ttl = self.r.u64(&at("the TTL"))?;
    if misfit.is_none() {
      // The limits `set` checks beyond the two lengths (an entry must fit in
      // half of a shard's ring).
      let v = value_ref(tag, word, &self.value);
      if let Err(mut e) = self.map.check_key(&self.key) {
        e.message = format!("entry {index}: {}", e.message);
        misfit = Some(e);
      } else if let Err(mut e) = self.map.check_value(&self.key, v) {
        e.message = format!("entry {index}: {}", e.message);
        misfit = Some(e);
      }
    }
    self.count = index;
    Ok(Some(Record {
      index,
      tag,
      word,
      ttl,
      misfit,
    }))
  }

  fn trailer(&mut self) -> Result<Summary, Error> {
    let count = self.r.u64(&|| "the trailer".to_string())?;
    let computed = self.r.h.digest();
    let mut b = [0u8; 8];
    self
      .r
      .take_raw(&mut b, &|| "the trailer's checksum".to_string())?;
    let stored = u64::from_le_bytes(b);
    if stored != computed {
      return Err(bad(format!(
        "checksum mismatch (stored {stored:016x}, computed {computed:016x}): the file is damaged"
      )));
    }
    if count != self.count {
      return Err(bad(format!(
        "the trailer counts {count} entries, the file holds {}",
        self.count
      )));
    }
    let mut one = [0u8; 1];
    loop {
      match self.r.r.read(&mut one) {
        Ok(0) => break,
        Ok(_) => {
          return Err(bad(format!(
            "bytes follow the trailer at byte {} (damaged, or two files joined)",
            self.r.pos
          )))
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => return Err(eio(format!("reading the dump: {e}"))),
      }
    }
    Ok(Summary {
      count,
      checksum: stored,
    })
  }

  /// Reads to the end, calling `f` for each entry; the trailer's summary.
  fn run(
    mut self,
    mut f: impl FnMut(&mut Self, Record) -> Result<(), Error>,
  ) -> Result<Summary, Error> {
    while let Some(rec) = self.next()? {
      f(&mut self, rec)?;
    }
    // `next` returned None only after reading a valid trailer.
    Ok(Summary {
      count: self.count,
      checksum: self.r.h.digest(),
    })
  }
}

impl SharedMap {
  /// Writes every live entry to `w` in the dump format (module docs:
  /// streamed one shard at a time, expired entries skipped, each entry's
  /// remaining TTL kept). Returns the number of entries written. Errors:
  /// `EIO` when `w` fails; a shard that cannot be read (`ETIMEDOUT`,
  /// `ECORRUPT`) fails the dump (what was written is then not a valid dump:
  /// it has no trailer).
  pub fn dump_to(&self, w: impl Write) -> Result<u64, Error> {
    let mut w = HashWriter {
      w: BufWriter::with_capacity(IO_BUF, w),
      h: Xxh3Default::new(),
    };
    let dumped_at = self.now();
    let mut head = [0u8; HEADER_LEN];
    head[..10].copy_from_slice(DUMP_MAGIC);
    head[10..12].copy_from_slice(&DUMP_VERSION.to_le_bytes());
    head[16..24].copy_from_slice(&dumped_at.to_le_bytes());
    w.put(&head)?;
    let mut count = 0u64;
    for sh in 0..self.layout.shards {
      // A clock that stepped back since `dumped_at` must not let through an
      // entry that had already expired then (its remaining time would be 0:
      // "no expiry").
      let entries = self.snapshot_with(sh, |s, now| s.collect_timed(now.max(dumped_at)))?;
      for ((key, tag, word, bytes), expires) in entries {
        let wb = word.to_le_bytes();
        let value: &[u8] = match tag {
          t if is_bytes_tag(t) => &bytes,
          TAG_BOOL => &wb[..1],
          TAG_NULL => &[],
          _ => &wb,
        };
        let remaining = if expires == 0 {
          0
        } else {
          expires.saturating_sub(dumped_at).max(1)
        };
        w.put(&[KIND_ENTRY])?;
        w.put(&(key.len() as u32).to_le_bytes())?;
        w.put(&key)?;
        w.put(&[tag as u8])?;
        w.put(&(value.len() as u32).to_le_bytes())?;
        w.put(value)?;
        w.put(&remaining.to_le_bytes())?;
        count += 1;
      }
    }
    w.put(&[KIND_END])?;
    w.put(&count.to_le_bytes())?;
    let sum = w.h.digest();
    let mut out = w.w;
    out
      .write_all(&sum.to_le_bytes())
      .and_then(|_| out.flush())
      .map_err(|e| eio(format!("writing the dump: {e}")))?;
    Ok(count)
  }

  /// Loads a dump written by [`dump_to`](Self::dump_to) into this map, from
  /// the stream's current position (module docs: a first pass validates the
  /// whole stream and writes nothing, a second writes the entries with
  /// `set`; expired entries are skipped). Returns the number of entries
  /// loaded. `EBADDUMP` for a damaged, truncated or foreign stream (nothing
  /// loaded); `EKEYTOOLONG`/`EVALUETOOLONG` for an entry this map cannot
  /// hold (nothing loaded); `EFULL` and other write errors stop the load
  /// with the entries before it loaded (the message says how many); `EIO`.
  pub fn load_from<R: Read + Seek>(&self, r: R) -> Result<u64, Error> {
    let mut r = BufReader::with_capacity(IO_BUF, r);
    let start = r
      .stream_position()
      .map_err(|e| eio(format!("reading the dump: {e}")))?;
    // Pass 1: parse and check everything, write nothing.
    let mut misfit = None;
    let first = Parser::new(&mut r, self)?.run(|_, rec| {
      if misfit.is_none() {
        misfit = rec.misfit;
      }
      Ok(())
    })?;
    if let Some(e) = misfit {
      return Err(e);
    }
    r.seek(SeekFrom::Start(start))
      .map_err(|e| eio(format!("reading the dump: {e}")))?;
    // Pass 2: write.
    let mut loaded = 0u64;
    let stopped = |e: Error, loaded: u64| {
      Error::new(
        e.code,
        format!("{} ({loaded} entries were loaded before this)", e.message),
      )
    };
    let mut p = match Parser::new(&mut r, self) {
      Ok(p) => p,
      Err(e) => return Err(stopped(e, 0)),
    };
    let dumped_at = p.dumped_at;
    let second = loop {
      let rec = match p.next() {
        Ok(Some(rec)) => rec,
        Ok(None) => break p.r.h.digest(),
        Err(e) => return Err(stopped(e, loaded)),
      };
      if let Some(e) = rec.misfit {
        return Err(stopped(e, loaded));
      }
      let ttl = if rec.ttl == 0 {
        0
      } else {
        let deadline = dumped_at.saturating_add(rec.ttl);
        let now = self.now();
        if deadline <= now {
          continue;
        }
        deadline - now
      };
      let value = value_ref(rec.tag, rec.word, &p.value);
      if let Err(mut e) = self.set(&p.key, value, Some(ttl)) {
        e.message = format!("entry {}: {}", rec.index, e.message);
        return Err(stopped(e, loaded));
      }
      loaded += 1;
    };
    // Each pass checked the file against its own stored checksum; a file
    // rewritten between the passes (checksum included) differs here.
    if second != first.checksum || p.count != first.count {
      return Err(stopped(
        bad("the file changed while it was being loaded"),
        loaded,
      ));
    }
    Ok(loaded)
  }

  /// [`dump_to`](Self::dump_to) into the file `path`, replaced atomically:
  /// the dump is written to a temporary file in the same directory, synced,
  /// and renamed over `path` (on error the temporary file is removed and
  /// `path` is untouched). Errors name the file.
  pub fn dump_file(&self, path: impl AsRef<Path>) -> Result<u64, Error> {
    let path = path.as_ref();
    let in_file = |e: Error| in_file("dump to", path, e);
    let name = path
      .file_name()
      .ok_or_else(|| in_file(eio("not a file name")))?;
    // Unique per process and call, so dumps running at once (to one file
    // or several) never share a temporary file; created exclusively, so an
    // existing file (or a symlink planted there) is never written through.
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
      ".{}-{}.tmp",
      std::process::id(),
      SERIAL.fetch_add(1, Relaxed)
    ));
    let tmp = path.with_file_name(tmp_name);
    let mut created = false;
    let mut write = || -> Result<u64, Error> {
      let f = File::options()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| eio(format!("creating {}: {e}", tmp.display())))?;
      created = true;
      let n = self.dump_to(&f)?;
      f.sync_all()
        .map_err(|e| eio(format!("syncing {}: {e}", tmp.display())))?;
      fs::rename(&tmp, path).map_err(|e| eio(format!("renaming {}: {e}", tmp.display())))?;
      Ok(n)
    };
    write().map_err(|e| {
      if created {
        let _ = fs::remove_file(&tmp);
      }
      in_file(e)
    })
  }

  /// [`load_from`](Self::load_from) the file `path`. Errors name the file.
  pub fn load_file(&self, path: impl AsRef<Path>) -> Result<u64, Error> {
    let path = path.as_ref();
    let f = File::open(path).map_err(|e| in_file("load from", path, eio(e.to_string())))?;
    self.load_from(f).map_err(|e| in_file("load from", path, e))
  }
}

/// `e` with the file named in its message.
fn in_file(verb: &str, path: &Path, e: Error) -> Error {
  Error::new(
    e.code,
    format!(
      "{verb} dump file {:?}: {}",
      path.display().to_string(),
      e.message
    ),
  )
}

// The value tags the format writes as one byte.
const _: () = assert!(TAG_STRING >= 1 && TAG_JSON <= u8::MAX as u32);
