//! Journals: append-only files for the records written once and read rarely (transcript turns,
//! processed messages, the intent log; SMS attendees' records through [`super::logmap`]), so
//! they stay out of sled.
//!
//! Why. Every inbound message writes a transcript turn and an idempotency record that are never
//! changed afterwards. In sled each was an insert into a B-tree with random keys: a node copy, a
//! leaf split every few inserts, its share of sled's log writes and page cache. Measured with
//! `concierge load`, leaving these two out of sled took the service's CPU per request from
//! 69-87 µs to 38-46 µs (BENCHMARKS.md, SMS webhook step 12). Here they are appended to a file,
//! and an index in memory (see [`super::records`]) says where each one is.
//!
//! A journal is a folder of numbered segment files (`00000001.seg`, ...). A segment is a sequence
//! of records in the write-ahead log's format ([`super::wal`]): length, CRC-32, the batch's
//! sequence number and its writes. A write's place in a segment is a [`Loc`]; reading it back is
//! one positioned read. The last segment is the head, where appends go; when it passes
//! [`SEGMENT_BYTES`] it is synced and a new one started, so every segment but the head is whole
//! on disk.
//!
//! Invariants:
//! - Appends are not synced one by one: a batch is durable in the write-ahead log first, and the
//!   log starts over only after [`Journal::sync`] (the writer's checkpoint). So a journal lacks at
//!   most batches the log still holds, and [`Journal::last_seq`] says which ones to replay.
//! - Opening reads every record and cuts the head back to its whole records (a crash can tear
//!   only the last appends); a damaged record in an older segment ends that segment's reading and
//!   is reported.
//! - Every segment but the first starts with an empty record numbered as the last batch before
//!   it, so [`Journal::last_seq`] never goes back when old segments are retired.
//! - Only the oldest segment is ever removed ([`Journal::retire_oldest`]), so a removal recorded
//!   in a later segment never outlives the write it removes; files of retired segments are
//!   deleted later, oldest first, off the writer's way ([`Journal::delete_retired`]).
//! - Readers hold a segment's file by `Arc`, so a segment retired while read is read to the end.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::maps::lock;
use super::wal::{self, Op, Record};

/// The size past which the head segment is sealed and a new one started.
pub(super) const SEGMENT_BYTES: u64 = 64 << 20;

const SUFFIX: &str = ".seg";

/// Where a write sits: its segment, and the bytes of its key and value there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Loc {
    pub segment: u32,
    pub at: u32,
    pub len: u32,
}

/// Shows `f` each insert of a record read back from `segment` (key, value, location).
pub(super) fn inserts(record: &Record<'_>, segment: u32, mut f: impl FnMut(&[u8], &[u8], Loc)) {
    for write in &record.writes {
        let Some(value) = write.value else { continue };
        // A segment's records end below 4 GiB (`Journal::append`): their offsets fit.
        let loc = Loc {
            segment,
            at: write.span.start as u32,
            len: write.span.len() as u32,
        };
        f(write.key, value, loc);
    }
}

/// A write read back: its key and value (`None`: a removal).
pub(super) type KeyValue = (Vec<u8>, Option<Vec<u8>>);

/// The head segment, where appends go (only the store's writer appends).
#[derive(Debug)]
struct Head {
    segment: u32,
    file: Arc<File>,
    len: u64,
    /// The highest batch number in the journal.
    last_seq: u64,
    /// A segment file was created since the folder was last synced.
    dir_dirty: bool,
    buf: Vec<u8>,
}

/// One journal: see the module doc.
#[derive(Debug)]
pub(super) struct Journal {
    dir: PathBuf,
    /// Every segment's file by number, for reading; the last is the head.
    files: RwLock<BTreeMap<u32, Arc<File>>>,
    head: Mutex<Head>,
    /// Bytes in all segments.
    bytes: AtomicU64,
    /// The size past which the head is sealed ([`SEGMENT_BYTES`], smaller in tests).
    segment_bytes: u64,
    /// Files of retired segments, oldest first, not deleted yet ([`Journal::delete_retired`]).
    retired: Mutex<Vec<PathBuf>>,
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir` and shows `visit` every whole record, oldest
    /// first, with the segment it is in (a [`Record`]'s spans are offsets in that segment).
    pub(super) fn open(
        dir: &Path,
        mut visit: impl FnMut(u32, &Record<'_>),
    ) -> std::io::Result<Journal> {
        if !dir.exists() {
            let mut create = std::fs::DirBuilder::new();
            create.recursive(true);
            // Journals hold messages and phone numbers: readable by their owner only.
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut create, 0o700);
            create.create(dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let mut numbers = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let number = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<u32>().ok());
            numbers.extend(number);
        }
        numbers.sort_unstable();
        let mut files = BTreeMap::new();
        let mut last_seq = 0;
        let mut head_len = 0;
        let mut total = 0;
        for (i, &number) in numbers.iter().enumerate() {
            let path = segment_path(dir, number);
            let file = open_segment(&path, false)?;
            let bytes = std::fs::read(&path)?;
            let (records, whole) = wal::records(&bytes);
            for record in &records {
                last_seq = last_seq.max(record.seq);
                visit(number, record);
            }
            let is_head = i + 1 == numbers.len();
            if whole < bytes.len() {
                if is_head {
                    // Appends torn by a crash: the write-ahead log still holds them.
                    file.set_len(whole as u64)?;
                } else {
                    tracing::error!(
                        segment = %path.display(),
                        read = whole,
                        size = bytes.len(),
                        "a journal segment is damaged; the records after the damage are not read"
                    );
                }
            }
            if is_head {
                head_len = whole as u64;
                total += whole as u64;
            } else {
                total += bytes.len() as u64;
            }
            files.insert(number, Arc::new(file));
        }
        let (segment, file, dir_dirty) = match files.last_key_value() {
            Some((&number, file)) => (number, file.clone(), false),
            None => {
                let file = Arc::new(open_segment(&segment_path(dir, 1), true)?);
                files.insert(1, file.clone());
                (1, file, true)
            }
        };
        Ok(Journal {
            dir: dir.to_path_buf(),
            files: RwLock::new(files),
            head: Mutex::new(Head {
                segment,
                file,
                len: head_len,
                last_seq,
                dir_dirty,
                buf: Vec::new(),
            }),
            bytes: AtomicU64::new(total),
            segment_bytes: SEGMENT_BYTES,
            retired: Mutex::default(),
        })
    }

    /// The same journal, sealing its head past `bytes` (tests fill segments with less data).
    #[cfg(test)]
    pub(super) fn with_segment_bytes(mut self, bytes: u64) -> Journal {
        self.segment_bytes = bytes;
        self
    }

    /// The size past which the head is sealed.
    pub(super) fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    /// Bytes in all segments.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The sealed segments' numbers, oldest first.
    pub(super) fn sealed(&self) -> Vec<u32> {
        let head = self.head().segment;
        self.files()
            .keys()
            .copied()
            .filter(|&n| n != head)
            .collect()
    }

    /// Up to `len` bytes of segment `number` from `at` (fewer at its end; none if it is gone).
    pub(super) fn read_raw(&self, number: u32, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let Some(file) = self.files().get(&number).cloned() else {
            return Ok(Vec::new());
        };
        let size = file.metadata()?.len();
        let len = len.min(usize::try_from(size.saturating_sub(at)).unwrap_or(usize::MAX));
        let mut bytes = vec![0; len];
        read_exact_at(&file, &mut bytes, at)?;
        Ok(bytes)
    }

    /// Shows `visit` every whole record of segment `number` (nothing if it is gone). Reads the
    /// whole segment: for scans, not lookups.
    pub(super) fn visit(
        &self,
        number: u32,
        mut visit: impl FnMut(&Record<'_>),
    ) -> std::io::Result<()> {
        let bytes = self.read_raw(number, 0, usize::MAX)?;
        for record in &wal::records(&bytes).0 {
            visit(record);
        }
        Ok(())
    }

    /// The head segment's number.
    pub(super) fn head_segment(&self) -> u32 {
        self.head().segment
    }

    /// Seals the head now and starts the next segment, so the head's records can be retired
    /// with it (journals whose records expire by age, and may stop growing).
    pub(super) fn rotate(&self) -> std::io::Result<()> {
        let mut head = self.head();
        self.seal(&mut head)
    }

    /// The highest batch number the journal holds (0: none).
    pub(super) fn last_seq(&self) -> u64 {
        self.head().last_seq
    }

    /// Appends batch `seq`'s `ops` as one record; returns where each op's key and value are. Not
    /// synced (see the module doc). On error nothing of the record stays.
    pub(super) fn append(&self, seq: u64, ops: &[Op]) -> std::io::Result<Vec<Loc>> {
        let mut head = self.head();
        if head.len >= self.segment_bytes {
            self.seal(&mut head)?;
        }
        let mut buf = std::mem::take(&mut head.buf);
        buf.clear();
        let spans = wal::encode(seq, ops, &mut buf);
        let start = head.len;
        let end = start + buf.len() as u64;
        let written = match u32::try_from(end) {
            Ok(_) => write_all_at(&head.file, &buf, start),
            Err(_) => Err(std::io::Error::other(
                "the record does not fit in a segment",
            )),
        };
        head.buf = buf;
        if let Err(err) = written {
            let _ = head.file.set_len(start);
            return Err(err);
        }
        head.len = end;
        head.last_seq = head.last_seq.max(seq);
        self.bytes.fetch_add(end - start, Ordering::Relaxed);
        let segment = head.segment;
        Ok(spans
            .into_iter()
            .map(|span| Loc {
                segment,
                // Both fit: the record's end does.
                at: (start as usize + span.start) as u32,
                len: span.len() as u32,
            })
            .collect())
    }

    /// Writes the head's whole pages to disk and waits for them, without syncing: no device
    /// flush, no inode, and never the page appends are going into. The store's background sync
    /// calls it, so that the checkpoint's [`Journal::sync`] finds little left to write; durability
    /// is that sync's alone (the write-ahead log holds these batches until then).
    ///
    /// Why not `fdatasync`. Appends go on meanwhile, into the head's last page. While a sync writes
    /// that page out its buffer is locked, and an append to it waits for the disk: the writer
    /// thread, and every message of its batch, held for the write's latency (BENCHMARKS.md, SMS
    /// webhook step 51). And each `fdatasync` flushes the device's cache, five journals twenty
    /// times a second, beside the log's own syncs.
    pub(super) fn write_back(&self) -> std::io::Result<()> {
        let (file, len) = {
            let head = self.head();
            (head.file.clone(), head.len)
        };
        write_back(&file, len)
    }

    /// Syncs the head to disk, and the folder if a segment was created since the last sync:
    /// everything appended before the call is durable after it. Appends may go on meanwhile
    /// (the head's lock is not held while syncing).
    pub(super) fn sync(&self) -> std::io::Result<()> {
        let (file, dir_dirty) = {
            let head = self.head();
            (head.file.clone(), head.dir_dirty)
        };
        file.sync_data()?;
        if dir_dirty {
            sync_dir(&self.dir)?;
            let mut head = self.head();
            // A segment created since is synced by a later call.
            if Arc::ptr_eq(&head.file, &file) {
                head.dir_dirty = false;
            }
        }
        Ok(())
    }

    /// Syncs the head and starts the next segment with an empty record numbered as the last
    /// batch, so the head always tells the last batch number even when every older segment has
    /// been retired.
    fn seal(&self, head: &mut Head) -> std::io::Result<()> {
        head.file.sync_data()?;
        let segment = head.segment + 1;
        let file = Arc::new(open_segment(&segment_path(&self.dir, segment), true)?);
        let mut marker = Vec::new();
        wal::encode(head.last_seq, &[], &mut marker);
        write_all_at(&file, &marker, 0)?;
        self.files_mut().insert(segment, file.clone());
        head.segment = segment;
        head.file = file;
        head.len = marker.len() as u64;
        head.dir_dirty = true;
        self.bytes.fetch_add(head.len, Ordering::Relaxed);
        Ok(())
    }

    /// The key and value (`None`: a removal) at `loc`; `None` if its segment was retired.
    pub(super) fn read(&self, loc: Loc) -> std::io::Result<Option<KeyValue>> {
        let Some(file) = self.files().get(&loc.segment).cloned() else {
            return Ok(None);
        };
        let mut bytes = vec![0; loc.len as usize];
        read_exact_at(&file, &mut bytes, u64::from(loc.at))?;
        let (key, value) = wal::key_value(&bytes).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("no record at {loc:?} in {}", self.dir.display()),
            )
        })?;
        Ok(Some((key.to_vec(), value.map(<[u8]>::to_vec))))
    }

    /// The oldest segment's number, unless it is the head.
    pub(super) fn oldest_sealed(&self) -> Option<u32> {
        let head = self.head().segment;
        self.files().keys().next().copied().filter(|&n| n != head)
    }

    /// Retires the oldest segment (never the head): it is no longer read, and its file is
    /// deleted by the next [`Journal::delete_retired`]. Cheap, so callers may hold locks the
    /// writer takes: deleting a 64 MiB file took 25 ms under load.
    pub(super) fn retire_oldest(&self) {
        let Some(number) = self.oldest_sealed() else {
            return;
        };
        if let Some(file) = self.files_mut().remove(&number) {
            let size = file.metadata().map_or(0, |m| m.len());
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            lock(&self.retired).push(segment_path(&self.dir, number));
        }
    }

    /// Deletes the files of the segments retired so far, oldest first; after a failure, the
    /// rest wait for the next call (so only the oldest segment is ever missing). The store's
    /// background sync calls it, and dropping the journal.
    pub(super) fn delete_retired(&self) -> std::io::Result<()> {
        // Taken out of the queue, so that retiring never waits for a deletion.
        let mut retired = std::mem::take(&mut *lock(&self.retired)).into_iter();
        while let Some(path) = retired.next() {
            match std::fs::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    // Back in front of any retired since.
                    lock(&self.retired).splice(0..0, std::iter::once(path).chain(retired));
                    return Err(err);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn head(&self) -> std::sync::MutexGuard<'_, Head> {
        self.head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn files(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Arc<File>>> {
        self.files
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn files_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u32, Arc<File>>> {
        self.files
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.delete_retired();
    }
}

fn segment_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{number:08}{SUFFIX}"))
}

fn open_segment(path: &Path, create: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(create);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Starts writing out the whole pages of `file` below `len` and waits for them
/// (`sync_file_range`); elsewhere than Linux, syncs the file.
#[cfg(target_os = "linux")]
fn write_back(file: &File, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as u64,
        _ => 4096,
    };
    let whole = len - len % page;
    if whole == 0 {
        return Ok(());
    }
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    let whole = libc::off64_t::try_from(whole).map_err(std::io::Error::other)?;
    // SAFETY: the descriptor is open for as long as `file` is borrowed; the call reads no memory.
    match unsafe { libc::sync_file_range(file.as_raw_fd(), 0, whole, flags) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(not(target_os = "linux"))]
fn write_back(file: &File, _len: u64) -> std::io::Result<()> {
    file.sync_data()
}

/// Makes the folder's entries (a new segment, a removed one) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(unix)]
pub(super) fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_exact_at(file: &File, bytes: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, offset)
}

#[cfg(windows)]
pub(super) fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut bytes: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, bytes, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        bytes = &mut bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::wal::Logged;
    use super::*;

    fn turn(n: u8) -> Vec<Op> {
        vec![
            Op::insert(Logged::Transcript, vec![b'a', n], vec![n; 40]),
            Op::remove(Logged::Idempotency, vec![b'k', n]),
        ]
    }

    /// Every record's (segment, seq, writes as (key, value, loc)).
    type Seen = Vec<(u32, u64, Vec<(Vec<u8>, Option<Vec<u8>>, Loc)>)>;

    fn open(dir: &Path) -> (Journal, Seen) {
        let mut seen = Vec::new();
        let journal = Journal::open(dir, |segment, record| {
            let writes = record
                .writes
                .iter()
                .map(|w| {
                    let loc = Loc {
                        segment,
                        at: w.span.start as u32,
                        len: w.span.len() as u32,
                    };
                    (w.key.to_vec(), w.value.map(<[u8]>::to_vec), loc)
                })
                .collect();
            seen.push((segment, record.seq, writes));
        })
        .unwrap();
        (journal, seen)
    }

    #[test]
    fn appends_read_back_by_location_and_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, seen) = open(dir.path());
        assert!(seen.is_empty());
        assert_eq!(journal.last_seq(), 0);
        let first = journal.append(3, &turn(1)).unwrap();
        let second = journal.append(5, &turn(2)).unwrap();
        assert_eq!(journal.last_seq(), 5);
        assert_eq!(
            journal.read(first[0]).unwrap(),
            Some((b"a\x01".to_vec(), Some(vec![1; 40])))
        );
        assert_eq!(
            journal.read(second[1]).unwrap(),
            Some((b"k\x02".to_vec(), None))
        );
        journal.sync().unwrap();
        drop(journal);

        let (journal, seen) = open(dir.path());
        assert_eq!(journal.last_seq(), 5);
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[1].0, seen[1].1), (1, 5));
        // Where the reopened journal says a write is, is where the append said.
        assert_eq!(seen[0].2[0].2, first[0]);
        assert_eq!(seen[1].2[1].2, second[1]);
        assert_eq!(seen[1].2[0].1, Some(vec![2; 40]));
        // Appends go on after what was there.
        let third = journal.append(6, &turn(3)).unwrap();
        assert!(third[0].at > second[1].at);
        assert_eq!(
            journal.read(third[0]).unwrap().unwrap().1,
            Some(vec![3; 40])
        );
    }

    #[test]
    fn a_torn_head_is_cut_back_to_its_whole_records() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path());
        journal.append(1, &turn(1)).unwrap();
        journal.append(2, &turn(2)).unwrap();
        drop(journal);
        let path = segment_path(dir.path(), 1);
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut torn = Vec::new();
        wal::encode(3, &turn(3), &mut torn);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&torn[..torn.len() - 3]);
        std::fs::write(&path, &bytes).unwrap();

        let (journal, seen) = open(dir.path());
        assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(journal.last_seq(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        // The next append takes the torn one's place and reads back whole after a reopen.
        journal.append(3, &turn(3)).unwrap();
        drop(journal);
        assert_eq!(open(dir.path()).1.len(), 3);
    }

    #[test]
    fn a_full_head_is_sealed_and_only_the_oldest_sealed_segment_is_retired() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = open(dir.path());
        let big = vec![Op::insert(
            Logged::Idempotency,
            b"big".to_vec(),
            vec![7; SEGMENT_BYTES as usize],
        )];
        let in_first = journal.append(1, &big).unwrap()[0];
        let in_second = journal.append(2, &turn(2)).unwrap()[0];
        assert_eq!((in_first.segment, in_second.segment), (1, 2));
        assert_eq!(journal.oldest_sealed(), Some(1));
        journal.retire_oldest();
        assert_eq!(journal.read(in_first).unwrap(), None);
        assert!(journal.read(in_second).unwrap().is_some());
        // Its file goes when retired segments are deleted (off the writer's locks).
        let first = segment_path(dir.path(), 1);
        assert!(first.exists());
        journal.delete_retired().unwrap();
        assert!(!first.exists());
        // The head is never retired.
        assert_eq!(journal.oldest_sealed(), None);
        journal.retire_oldest();
        assert!(journal.read(in_second).unwrap().is_some());
        journal.sync().unwrap();
        drop(journal);
        let (journal, seen) = open(dir.path());
        // The new segment starts with an empty record numbered as the last batch before it.
        let seen: Vec<(u32, u64, usize)> = seen.iter().map(|s| (s.0, s.1, s.2.len())).collect();
        assert_eq!(seen, [(2, 1, 0), (2, 2, 2)]);
        assert_eq!(journal.last_seq(), 2);
        assert!(journal.bytes() > 0 && journal.bytes() < 1000);
    }
}
