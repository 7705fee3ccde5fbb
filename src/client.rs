//! Updating a local file: scan the seeds, fetch what is missing, verify, install.
//!
//! Data flows one way: seeds → [`Matcher`] (known blocks + reuse list) → missing ranges →
//! [`RangeFetcher`] → per-block verification → the working file `OUT.part`, into which
//! [`copy`] puts what the seeds have meanwhile → whole-file verification → atomic rename
//! onto `OUT`. The old `OUT` is kept as `OUT.zs-old`. An interrupted run leaves
//! `OUT.part`, which the next run scans first as a seed.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::control::ControlFile;
use crate::copy;
use crate::fetch::{FetchError, RangeFetcher, RangeSink};
use crate::plan::missing_ranges;
use crate::scan::Matcher;
use crate::verify::{FileHashes, PrefixHasher};
use crate::{strong, Error, Result};

/// What the client reports as it goes (a progress bar, a log, or nothing).
pub trait Progress {
    /// A human-readable status line (e.g. "reading seed file x").
    fn message(&mut self, _msg: &str) {}
    /// `done` of `total` target bytes are now known (`total` = target length).
    fn update(&mut self, _known: u64, _downloaded: u64, _total: u64) {}
}

/// A [`Progress`] that says nothing.
pub struct Silent;
impl Progress for Silent {}

/// How to update.
pub struct UpdateOptions<'a> {
    /// Seed files, scanned in order (the output and `OUT.part` are added automatically).
    pub seeds: Vec<PathBuf>,
    /// The file to create or update.
    pub output: PathBuf,
    /// Absolute URLs of the target, tried in order.
    pub urls: Vec<String>,
    /// Where progress goes.
    pub progress: &'a mut dyn Progress,
    /// Attempts per URL that make no progress before moving on to the next URL.
    pub attempts_per_url: u32,
    /// Threads that scan the seeds (0: one per core); the result does not depend on it.
    pub scan_threads: usize,
}

/// What an update did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateReport {
    /// Target bytes taken from local seeds.
    pub reused: u64,
    /// Target bytes obtained over the network (verified).
    pub downloaded: u64,
    /// Bytes the server sent that were used or discarded (network cost).
    pub received: u64,
    /// Target length.
    pub length: u64,
}

/// `OUT.part`, the working file next to the output.
pub fn part_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// `OUT.zs-old`, where the previous version is kept.
pub fn old_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".zs-old");
    PathBuf::from(s)
}

/// Most partial buffers kept at once (bounded memory: each holds less than eight blocks
/// and a part of one).
const MAX_PENDING: usize = 64;

/// The working file and what is known of it.
struct Work<'c> {
    control: &'c ControlFile,
    matcher: Matcher<'c>,
    file: File,
    path: PathBuf,
    downloaded: u64,
    received: u64,
    /// Partial blocks waiting for their next piece: (offset of the first byte, bytes so
    /// far). Several, because parallel transfers deliver interleaved chunks.
    pending: Vec<(u64, Vec<u8>)>,
    /// Hashes the file as far as it is final (from the download on).
    hasher: Option<PrefixHasher>,
    /// The first block not known yet.
    frontier: usize,
    /// Sends what is written to the disk in the background.
    flusher: Option<crate::fsutil::Flusher>,
    /// The copy of what the seeds have into the file (see `copy`).
    copier: Option<copy::Copier>,
    /// How far into the target the copy has got.
    copied: u64,
}

impl Work<'_> {
    fn bs(&self) -> u64 {
        u64::from(self.control.header.blocksize)
    }

    /// Blocks checked at once: eight with the multi-buffer MD4 (for blocks of at most
    /// 32 KiB, so that what waits stays small), else one.
    fn batch(&self) -> usize {
        let bs = self.bs();
        let md4x8 = self.control.blocks.algorithm == strong::StrongHash::Md4
            && bs % 64 == 0
            && bs <= 32 << 10
            && crate::md4x8::available();
        if md4x8 {
            8
        } else {
            1
        }
    }

    /// Check and store the whole blocks still waiting in partial buffers (a fetch ended).
    fn flush_pending(&mut self) -> Result<(), FetchError> {
        for (start, buf) in std::mem::take(&mut self.pending) {
            self.settle(start, buf)?;
        }
        self.advance_frontier();
        Ok(())
    }

    /// Check and store the whole blocks of the pending buffer `buf` (at offset `start`),
    /// and the target's short last block if it is complete. Returns what is left: part of
    /// a block, and its offset.
    fn settle(&mut self, start: u64, mut buf: Vec<u8>) -> Result<(u64, Vec<u8>), FetchError> {
        let n = self.check_whole(start, &buf, self.bs() as usize)?;
        buf.drain(..n);
        Ok((start + n as u64, buf))
    }

    /// Check and store the whole batches of `bytes` (at block-aligned offset `start`, not
    /// past the end of the target), or all of them when they reach the target's end: how
    /// many bytes that took (the rest is less than a batch).
    fn check_batches(&mut self, start: u64, bytes: &[u8]) -> Result<usize, FetchError> {
        self.check_whole(start, bytes, self.batch() * self.bs() as usize)
    }

    /// Check and store the whole `step`s of `bytes` (a multiple of the block size, at
    /// block-aligned offset `start`, not past the end of the target), or all of them when
    /// they reach the target's end: how many bytes that took.
    fn check_whole(&mut self, start: u64, bytes: &[u8], step: usize) -> Result<usize, FetchError> {
        let mut n = bytes.len() / step * step;
        if start + bytes.len() as u64 == self.control.header.length {
            n = bytes.len();
        }
        if n > 0 {
            self.offer_blocks((start / self.bs()) as usize, &bytes[..n])?;
        }
        Ok(n)
    }

    /// Let the hasher go on up to the first block not in the file yet: one not known, or a
    /// reused one the copy has not got to.
    fn advance_frontier(&mut self) {
        let (bs, length) = (self.bs(), self.control.header.length);
        let known = self.matcher.known().next_missing(self.frontier);
        let uncopied = match &self.copier {
            Some(c) => {
                let done = c.done().min(length);
                // Roughly what the copy wrote since (it counts for the background flush).
                if let Some(f) = &mut self.flusher {
                    f.wrote(done.saturating_sub(self.copied));
                }
                self.copied = self.copied.max(done);
                if done == length {
                    usize::MAX
                } else {
                    (done / bs) as usize
                }
            }
            None => usize::MAX,
        };
        self.frontier = known.min(uncopied);
        let upto = (self.frontier as u64 * bs).min(length);
        if let Some(h) = &mut self.hasher {
            h.advance(upto);
        }
    }

    /// Verify the blocks from block `first` on (`data` holds whole blocks, the last one
    /// possibly the target's short last block) and store the good ones that are not known
    /// yet, each run of consecutive good blocks with one write.
    fn offer_blocks(&mut self, first: usize, data: &[u8]) -> Result<(), FetchError> {
        let bs = self.bs() as usize;
        let blocks = &self.control.blocks;
        let whole = data.len() / bs * bs;
        // Multi-buffer MD4 for the whole blocks; the short last block and other algorithms
        // one at a time.
        let mut md4s = Vec::new();
        if blocks.algorithm == strong::StrongHash::Md4 {
            strong::md4_blocks(&data[..whole], bs, &mut md4s);
        }
        let mut run: Option<(usize, usize)> = None; // [start, end) byte range of good blocks
        for (k, block) in data.chunks(bs).enumerate() {
            let i = first + k;
            let good = !self.matcher.known().contains(i)
                && match md4s.get(k) {
                    Some(d) => blocks.strong_is(i, d),
                    None => blocks.strong_is(i, &blocks.algorithm.digest_padded(block, bs)),
                };
            let at = k * bs;
            if good {
                self.matcher.mark_known(i, i);
                self.downloaded += block.len() as u64;
                run = match run {
                    Some((s, _)) => Some((s, at + block.len())),
                    None => Some((at, at + block.len())),
                };
            } else if let Some((s, e)) = run.take() {
                // Wrong bytes are dropped (fetched again later); known ones are skipped.
                self.store(first, &data[s..e], s)?;
            }
        }
        if let Some((s, e)) = run {
            self.store(first, &data[s..e], s)?;
        }
        Ok(())
    }

    /// Write verified bytes that start `at` bytes into the blocks from block `first`.
    fn store(&mut self, first: usize, bytes: &[u8], at: usize) -> Result<(), FetchError> {
        let off = first as u64 * self.bs() + at as u64;
        self.file
            .write_all_at(bytes, off)
            .map_err(|e| FetchError::Sink(Box::new(Error::io(&self.path, e))))?;
        if let Some(f) = &mut self.flusher {
            f.wrote(bytes.len() as u64);
        }
        Ok(())
    }
}

impl RangeSink for Work<'_> {
    fn data(&mut self, offset: u64, data: &[u8]) -> Result<(), FetchError> {
        self.received += data.len() as u64;
        let length = self.control.header.length;
        let bs = self.bs();
        let step = self.batch() * bs as usize;
        let (mut start, mut rest) = (offset, data);
        // A partial batch waiting for this chunk gets the bytes it lacks (only those are
        // copied) and is checked once whole.
        if let Some(k) = self
            .pending
            .iter()
            .position(|(s, b)| s + b.len() as u64 == offset)
        {
            let (s, mut b) = self.pending.swap_remove(k);
            let take = step.saturating_sub(b.len()).min(rest.len());
            b.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            b.truncate(length.saturating_sub(s).min(b.len() as u64) as usize);
            if self.check_batches(s, &b)? < b.len() {
                // Not a whole batch: the chunk is used up.
                self.pending.push((s, b));
                self.advance_frontier();
                return Ok(());
            }
            start = s + b.len() as u64;
        }
        // Drop bytes before the first block boundary and past the end of the target.
        let aligned = start.div_ceil(bs) * bs;
        let skip = (aligned - start).min(rest.len() as u64) as usize;
        rest = &rest[skip..];
        start += skip as u64;
        if start >= length {
            self.advance_frontier();
            return Ok(());
        }
        rest = &rest[..(length - start).min(rest.len() as u64) as usize];
        // Whole batches are checked where they lie; the rest waits for more.
        let used = self.check_batches(start, rest)?;
        if used < rest.len() {
            if self.pending.len() >= MAX_PENDING {
                // One buffer waits no longer: its whole blocks are checked now. Preferably
                // one that ends at a block boundary (the end of a range: nothing is lost),
                // else the oldest, whose part of a block is dropped (fetched again later).
                let k = self
                    .pending
                    .iter()
                    .position(|(s, b)| {
                        let end = s + b.len() as u64;
                        end % bs == 0 || end == length
                    })
                    .unwrap_or(0);
                let (s, b) = self.pending.remove(k);
                self.settle(s, b)?;
            }
            self.pending
                .push((start + used as u64, rest[used..].to_vec()));
        }
        self.advance_frontier();
        Ok(())
    }

    fn range_end(&mut self, end: u64) -> Result<(), FetchError> {
        // The buffer that ends there gets nothing more soon: its whole blocks are checked
        // now (so that the hasher can go on), a part of a block waits on.
        let length = self.control.header.length;
        let Some(k) = self
            .pending
            .iter()
            .position(|(s, b)| s + b.len() as u64 == end.min(length))
        else {
            return Ok(());
        };
        let (start, buf) = self.pending.swap_remove(k);
        let (rest_at, rest) = self.settle(start, buf)?;
        if !rest.is_empty() {
            self.pending.push((rest_at, rest));
        }
        self.advance_frontier();
        Ok(())
    }
}

/// Run an update with `fetcher`. On success the output holds the verified target.
pub fn update(
    control: &ControlFile,
    opts: &mut UpdateOptions<'_>,
    fetcher: &mut dyn RangeFetcher,
) -> Result<UpdateReport> {
    let h = &control.header;
    if h.sha1.is_none() && h.sha256.is_none() {
        return Err(Error::Control(
            "no SHA-1 or SHA-256 checksum of the whole file, so the result could not be verified; refusing to update".into(),
        ));
    }
    let out = opts.output.clone();
    let part = part_path(&out);
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::io(
            &dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        ));
    }
    // Seeds: the old .part first (a resumed download), then -i files, then the old output.
    let mut seeds: Vec<PathBuf> = Vec::new();
    for s in std::iter::once(part.clone())
        .chain(opts.seeds.iter().cloned())
        .chain(std::iter::once(out.clone()))
    {
        if !seeds.contains(&s) {
            seeds.push(s);
        }
    }
    if out.is_dir() {
        return Err(Error::io(&out, std::io::Error::other("is a directory")));
    }
    // A fresh working file; it replaces OUT.part once the seeds are read. Its name is fixed
    // so that one left by a killed run is simply overwritten by the next.
    let tmp = {
        let mut s = part.as_os_str().to_owned();
        s.push(".new");
        PathBuf::from(s)
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    let cleanup = scopeguard_remove(tmp.clone());
    let mut work = Work {
        control,
        matcher: Matcher::new(control).with_threads(opts.scan_threads),
        file,
        path: part.clone(),
        downloaded: 0,
        received: 0,
        pending: Vec::new(),
        hasher: None,
        frontier: 0,
        flusher: None,
        copier: None,
        copied: 0,
    };
    // The working file is hashed from the start, as far as its content is final.
    let reader = work.file.try_clone().map_err(|e| Error::io(&tmp, e))?;
    work.hasher = Some(PrefixHasher::start(reader, FileHashes::new(control)));
    // And it goes to the disk as it is written.
    work.flusher = work
        .file
        .try_clone()
        .ok()
        .map(crate::fsutil::Flusher::start);
    // The seeds are scanned first; what they have is copied afterwards (see `copy`).
    let mut scanned: Vec<copy::Seed> = Vec::new();
    let mut pieces: Vec<copy::Piece> = Vec::new();
    for seed in &seeds {
        if work.matcher.known().is_full() {
            break;
        }
        let f = match File::open(seed) {
            Ok(f) => f,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && (seed == &part || seed == &out) =>
            {
                continue
            }
            Err(e) => {
                opts.progress.message(&format!(
                    "not using seed file {}: {}",
                    seed.display(),
                    crate::error::io_message(&e)
                ));
                continue;
            }
        };
        if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            opts.progress.message(&format!(
                "not using seed file {}: is a directory",
                seed.display()
            ));
            continue;
        }
        opts.progress
            .message(&format!("reading seed file {}", seed.display()));
        // What the seed has is read again later. A seed that cannot be read at an offset
        // (a pipe, say) is kept in an unnamed file next to the output as it is scanned.
        let spool = match f.metadata() {
            Ok(m) if m.is_file() || m.file_type().is_block_device() => None,
            _ => Some(crate::fsutil::unnamed_file(&dir).map_err(|e| Error::io(&dir, e))?),
        };
        let scanned_len = match &spool {
            None => work.matcher.scan_file(&f),
            Some(copy) => work.matcher.scan(&mut crate::fsutil::Tee::new(&f, copy)),
        };
        let len = match scanned_len {
            Ok(n) => Some(n),
            Err(e) => {
                opts.progress.message(&format!(
                    "error reading seed file {}: {}",
                    seed.display(),
                    crate::error::io_message(&e)
                ));
                None
            }
        };
        let reuse = work.matcher.take_reuse();
        if !reuse.is_empty() {
            let k = scanned.len();
            pieces.extend(reuse.iter().map(|r| copy::Piece::of(r, k)));
            // After a read error, the length is unknown: the pieces found were all read.
            let len = len.unwrap_or_else(|| reuse.iter().map(|r| r.src + r.len).max().unwrap_or(0));
            scanned.push(copy::Seed {
                file: spool.unwrap_or(f),
                len,
            });
        }
        let known = known_bytes(&work.matcher, control);
        opts.progress.update(known, 0, h.length);
    }
    let reused = known_bytes(&work.matcher, control);
    if opts.urls.is_empty() && !work.matcher.known().is_full() {
        // No run can ever get the rest: leave no working file (the guard removes it).
        return Err(Error::Incomplete(format!(
            "the .zsync names no URL to download from, and the local files have only {reused} of its {} bytes",
            h.length
        )));
    }
    work.file
        .set_len(h.length)
        .map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, &part).map_err(|e| Error::io(&part, e))?;
    cleanup.disarm();
    // What the seeds have is copied while the rest downloads.
    let out_file = work.file.try_clone().map_err(|e| Error::io(&part, e))?;
    work.copier = Some(copy::Copier::start(
        copy::Fill::new(scanned, pieces),
        out_file,
    ));
    work.advance_frontier();

    // Download what is missing, URL by URL, with bounded retries.
    let mut last_err: Option<String> = None;
    'urls: for url in &opts.urls {
        let mut fruitless = 0;
        while !work.matcher.known().is_full() {
            let missing = missing_ranges(work.matcher.known(), h.blocksize, h.length);
            let before = work.matcher.known().count();
            opts.progress.message(&format!(
                "downloading from {}",
                crate::fetch::url::redact_url(url)
            ));
            work.pending.clear();
            let mut res = fetcher.fetch_ranges(url, &missing, &mut work);
            // The blocks still waiting to be checked (a write error there is fatal).
            if let Err(e) = work.flush_pending() {
                res = Err(e);
            }
            opts.progress.update(
                known_bytes(&work.matcher, control),
                work.downloaded,
                h.length,
            );
            let mut hopeless = false;
            match res {
                Err(FetchError::Sink(e)) => return Err(*e),
                Err(e) => {
                    // A client error (404, 403, ...) will not go away by asking again.
                    hopeless = matches!(e, FetchError::Http { status, .. }
                        if (400..500).contains(&status) && status != 408 && status != 429);
                    last_err = Some(e.to_string());
                }
                Ok(()) => {}
            }
            if work.matcher.known().count() == before {
                fruitless += 1;
                if last_err.is_none() {
                    last_err = Some(format!(
                        "{} sent no usable data",
                        crate::fetch::url::redact_url(url)
                    ));
                }
                if hopeless || fruitless >= opts.attempts_per_url.max(1) {
                    continue 'urls;
                }
                std::thread::sleep(Duration::from_millis(200 * u64::from(fruitless)));
            } else {
                fruitless = 0;
            }
        }
        break;
    }
    if !work.matcher.known().is_full() {
        let why = if opts.urls.is_empty() {
            "the .zsync names no URL to download from".to_string()
        } else {
            last_err.unwrap_or_else(|| "no URL worked".into())
        };
        return Err(Error::Incomplete(format!(
            "could not get all the data ({why}); what was obtained is kept in {} and will be reused if you run zsync again",
            part.display()
        )));
    }
    // The copy ends (the hasher follows it).
    while work.copier.as_ref().is_some_and(copy::Copier::wait) {
        work.advance_frontier();
    }
    if let Some(c) = work.copier.take() {
        c.finish().map_err(|e| Error::io(&part, e))?;
    }
    work.advance_frontier();
    // The file reaches the disk while the hasher finishes.
    if let Some(f) = work.flusher.take() {
        f.finish(); // its errors, if any, come again from sync_all
    }
    work.file.sync_all().map_err(|e| Error::io(&part, e))?;
    drop(work.file);
    let hasher = work.hasher.take().expect("started before the download");
    hasher
        .finish(h.length)
        .map_err(|e| Error::io(&part, e))?
        .check(control, &part)?;
    install(&part, &out, h.mtime)?;
    Ok(UpdateReport {
        reused,
        downloaded: work.downloaded,
        received: work.received,
        length: h.length,
    })
}

fn known_bytes(m: &Matcher<'_>, control: &ControlFile) -> u64 {
    let h = &control.header;
    let n = m.known().count() as u64 * u64::from(h.blocksize);
    // The last block may be short.
    if m.known().contains(m.known().universe().wrapping_sub(1)) {
        n - (h.num_blocks() * u64::from(h.blocksize) - h.length)
    } else {
        n
    }
}

/// Replace `out` by `part`: apply the MTime, keep the old file as `OUT.zs-old` (hard
/// link), carry its permissions over, rename atomically.
fn install(part: &Path, out: &Path, mtime: Option<i64>) -> Result<()> {
    // Set the MTime on the working file while it is still writable: the old file's mode,
    // applied below, may be read-only (and rename keeps the mtime).
    if let Some(t) = mtime {
        let when = if t >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(t as u64)
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_secs(t.unsigned_abs())
        };
        if let Ok(f) = File::options().write(true).open(part) {
            let _ = f.set_modified(when);
        }
    }
    if let Ok(meta) = fs::metadata(out) {
        let old = old_path(out);
        let _ = fs::remove_file(&old);
        if let Err(e) = fs::hard_link(out, &old) {
            // Some filesystems have no hard links: copy instead (the original renames).
            fs::copy(out, &old).map_err(|_| Error::io(&old, e))?;
        }
        let mode = meta.permissions().mode() & 0o7777;
        fs::set_permissions(part, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(part, e))?;
    }
    fs::rename(part, out).map_err(|e| Error::io(out, e))?;
    Ok(())
}

/// Removes a temporary file when dropped, unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);
fn scopeguard_remove(p: PathBuf) -> RemoveOnDrop {
    RemoveOnDrop(Some(p))
}
impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::make::{make, MakeOptions};

    fn work_for<'c>(control: &'c ControlFile, path: &Path) -> Work<'c> {
        Work {
            control,
            matcher: Matcher::new(control),
            file: OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .unwrap(),
            path: path.to_path_buf(),
            downloaded: 0,
            received: 0,
            pending: Vec::new(),
            hasher: None,
            frontier: 0,
            flusher: None,
            copier: None,
            copied: 0,
        }
    }

    /// `len` bytes of test data, their control file (1 KiB blocks) and a fresh directory.
    fn fixture(len: u32, name: &str) -> (Vec<u8>, ControlFile, PathBuf) {
        let data: Vec<u8> = (0..len)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let opts = MakeOptions {
            blocksize: Some(1024),
            ..Default::default()
        };
        let control =
            ControlFile::parse(&make(&mut &data[..], 0, &opts).unwrap().to_bytes()).unwrap();
        let dir = std::env::temp_dir().join(format!("zs3-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        (data, control, dir)
    }

    /// Interleaved chunks of several streams, corrupt data and data past the end: every
    /// block is stored exactly once and only when right.
    #[test]
    fn sink_assembles_interleaved_chunks() {
        let (data, control, dir) = fixture(100_003, "sink");
        let path = dir.join("part");
        let mut w = work_for(&control, &path);
        // A corrupt copy of the first 10 blocks first: nothing may be stored.
        let mut bad = data[..10240].to_vec();
        bad[5000] ^= 1;
        w.data(0, &bad).unwrap();
        w.flush_pending().unwrap();
        assert_eq!(w.matcher.known().count(), 9);
        // Three block-aligned streams (as requests are), cut into odd-sized chunks, interleaved.
        let thirds = [
            (0usize, 33 * 1024usize),
            (33 * 1024, 69 * 1024),
            (69 * 1024, data.len()),
        ];
        let mut cursors: Vec<usize> = thirds.iter().map(|t| t.0).collect();
        let sizes = [1usize, 7, 1000, 4096, 333, 65536];
        let mut k = 0;
        while cursors.iter().zip(&thirds).any(|(c, t)| *c < t.1) {
            for (s, t) in thirds.iter().enumerate() {
                if cursors[s] < t.1 {
                    let n = sizes[k % sizes.len()].min(t.1 - cursors[s]);
                    k += 1;
                    w.data(cursors[s] as u64, &data[cursors[s]..cursors[s] + n])
                        .unwrap();
                    cursors[s] += n;
                }
            }
        }
        // Data past the end is ignored.
        w.data(data.len() as u64, b"junk").unwrap();
        w.flush_pending().unwrap();
        assert!(w.matcher.known().is_full());
        w.file.set_len(data.len() as u64).unwrap();
        assert_eq!(fs::read(&path).unwrap(), data);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// When a range ends, the blocks waiting for more data of it are checked and stored at
    /// once (the hasher must not wait for the whole fetch); a part of a block waits on.
    #[test]
    fn a_range_end_settles_its_blocks_at_once() {
        let (data, control, dir) = fixture(40_000, "rangeend");
        let path = dir.join("part");
        let mut w = work_for(&control, &path);
        let batched = w.batch() > 1;
        w.data(5120, &data[5120..8192]).unwrap();
        if batched {
            assert_eq!(w.matcher.known().count(), 0, "three blocks wait for more");
        }
        w.range_end(8192).unwrap();
        let known = |w: &Work<'_>| -> Vec<usize> {
            (0..control.blocks.len())
                .filter(|&i| w.matcher.known().contains(i))
                .collect()
        };
        assert_eq!(known(&w), vec![5, 6, 7]);
        // A range that ends inside a block: the whole block goes, the part waits.
        w.data(10240, &data[10240..11740]).unwrap();
        w.range_end(11740).unwrap();
        assert_eq!(known(&w), vec![5, 6, 7, 10]);
        w.data(11740, &data[11740..12288]).unwrap();
        w.range_end(12288).unwrap();
        assert_eq!(known(&w), vec![5, 6, 7, 10, 11]);
        // The end of an unknown stream changes nothing.
        w.range_end(30000).unwrap();
        // The target's short last block.
        w.data(39936, &data[39936..]).unwrap();
        w.range_end(40000).unwrap();
        assert_eq!(known(&w), vec![5, 6, 7, 10, 11, 39]);
        assert!(w.pending.is_empty());
        w.file.set_len(data.len() as u64).unwrap();
        let got = fs::read(&path).unwrap();
        for i in [5usize, 6, 7, 10, 11, 39] {
            let r = i * 1024..((i + 1) * 1024).min(data.len());
            assert_eq!(got[r.clone()], data[r], "block {i}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
