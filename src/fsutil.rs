//! File-system helpers: atomic replacement, so a failure never leaves a half-written file.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Error, Result};

/// A path for a temporary file in the same directory as `path` (so renaming it onto
/// `path` is atomic), e.g. `dir/.name.12345-0.tmp`.
pub fn temp_path_for(path: &Path) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// Create `path` by writing a temporary file next to it and renaming it into place once
/// `write` succeeded and the data is on disk. On any error the temporary file is removed
/// and an existing `path` is left untouched.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir_probe = if path.parent().is_some_and(|p| p.as_os_str().is_empty()) {
        Path::new(".")
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    let tmp = temp_path_for(path);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| Error::io(dir_probe, e))?;
    let result = (|| -> std::io::Result<()> {
        let mut w = BufWriter::with_capacity(1 << 16, file);
        write(&mut w)?;
        let file: File = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    })();
    let result = result
        .map_err(|e| Error::io(path, e))
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Sends a file's data to the disk in the background while the file is being written, so
/// that the final `fsync` before it is installed has little left to do.
pub struct Flusher {
    tx: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    unflushed: u64,
}

/// Written bytes between two background flushes.
const FLUSH_STEP: u64 = 32 << 20;

impl Flusher {
    /// Start flushing `file` (a handle to the file being written) when told to.
    pub fn start(file: std::fs::File) -> Flusher {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while rx.recv().is_ok() {
                while rx.try_recv().is_ok() {}
                // Errors come back from the final fsync, which the caller checks.
                let _ = file.sync_data();
            }
        });
        Flusher {
            tx: Some(tx),
            thread: Some(thread),
            unflushed: 0,
        }
    }

    /// `n` more bytes were written: flush now and then.
    pub fn wrote(&mut self, n: u64) {
        self.unflushed += n;
        if self.unflushed >= FLUSH_STEP {
            self.kick();
        }
    }

    /// Flush what was written so far (in the background).
    pub fn kick(&mut self) {
        self.unflushed = 0;
        if let Some(tx) = &self.tx {
            let _ = tx.send(());
        }
    }

    /// Wait for the background flushes to end.
    pub fn finish(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Stop without waiting: the thread ends after its current flush.
        self.tx = None;
    }
}

/// Positional writes gathered into runs. Pieces that continue each other are copied into
/// one buffer and written with one `pwrite`; a seed scan hands over thousands of single
/// blocks, and a system call for each costs more than the copy.
pub struct RunWriter {
    buf: Vec<u8>,
    /// Where the gathered bytes go in the file.
    start: u64,
    cap: usize,
}

impl RunWriter {
    /// Gather up to `cap` bytes before writing.
    pub fn new(cap: usize) -> RunWriter {
        RunWriter {
            buf: Vec::new(),
            start: 0,
            cap: cap.max(1),
        }
    }

    /// Write `data` at `offset` of `file`, now or later. `written` is told of every range
    /// `(offset, length)` that reached the file, in the order they did.
    pub fn write_at(
        &mut self,
        file: &File,
        offset: u64,
        data: &[u8],
        written: &mut dyn FnMut(u64, u64),
    ) -> std::io::Result<()> {
        let continues = self.start + self.buf.len() as u64 == offset;
        if !self.buf.is_empty() && (!continues || self.buf.len() + data.len() > self.cap) {
            self.flush(file, written)?;
        }
        if self.buf.is_empty() && data.len() >= self.cap {
            // Large pieces go out as they are, without a copy.
            file.write_all_at(data, offset)?;
            written(offset, data.len() as u64);
            return Ok(());
        }
        if self.buf.is_empty() {
            self.start = offset;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Write what is gathered.
    pub fn flush(&mut self, file: &File, written: &mut dyn FnMut(u64, u64)) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        file.write_all_at(&self.buf, self.start)?;
        written(self.start, self.buf.len() as u64);
        self.buf.clear();
        Ok(())
    }
}

/// Pieces that belong at several places of a file (content repeated through it), kept so
/// that their places are written in runs. The places of one piece are usually far apart,
/// and the pieces that fill the gaps between them come later (a repeated unit of two
/// blocks, say, has the places of its first block found at once, then those of its
/// second); written one by one, each would be a system call of its own. What is kept is
/// bounded: when there is no more room, it is written.
pub struct Repeats {
    /// The pieces, one after the other.
    bytes: Vec<u8>,
    /// (offset in the file, offset in `bytes`, length)
    places: Vec<(u64, usize, usize)>,
    max_bytes: usize,
    max_places: usize,
}

impl Default for Repeats {
    /// Room for 4 MiB of pieces and 256 Ki places (4 MiB).
    fn default() -> Self {
        Repeats::with_room(4 << 20, 1 << 18)
    }
}

impl Repeats {
    /// Keep at most `max_bytes` bytes of pieces and `max_places` places.
    pub fn with_room(max_bytes: usize, max_places: usize) -> Repeats {
        Repeats {
            bytes: Vec::new(),
            places: Vec::new(),
            max_bytes,
            max_places,
        }
    }

    /// Keep `data` for each of `places`. If there is no room, what is kept is written first
    /// (through `runs`); a piece too large to keep is written at once.
    pub fn add(
        &mut self,
        places: &[u64],
        data: &[u8],
        runs: &mut RunWriter,
        file: &File,
        written: &mut dyn FnMut(u64, u64),
    ) -> std::io::Result<()> {
        if data.len() > self.max_bytes || places.len() > self.max_places {
            for &at in places {
                runs.write_at(file, at, data, written)?;
            }
            return Ok(());
        }
        if self.bytes.len() + data.len() > self.max_bytes
            || self.places.len() + places.len() > self.max_places
        {
            self.flush(runs, file, written)?;
        }
        let from = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.places
            .extend(places.iter().map(|&at| (at, from, data.len())));
        Ok(())
    }

    /// Write what is kept, in the order of the file (through `runs`, which may keep the last
    /// run: flush it too).
    pub fn flush(
        &mut self,
        runs: &mut RunWriter,
        file: &File,
        written: &mut dyn FnMut(u64, u64),
    ) -> std::io::Result<()> {
        self.places.sort_unstable_by_key(|p| p.0);
        for &(at, from, len) in &self.places {
            runs.write_at(file, at, &self.bytes[from..from + len], written)?;
        }
        self.places.clear();
        self.bytes.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_leaves_old_file() {
        let dir = std::env::temp_dir().join(format!("zs3-fsutil-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        fs::write(&p, b"old").unwrap();
        let r = write_atomically(&p, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "temp file removed");
        write_atomically(&p, |w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Pieces kept for several places, mixed with single pieces, give the file that plain
    /// writes give, with every byte reported once, after it was written; for every kind of
    /// room, down to none.
    #[test]
    fn repeats_equal_plain_writes() {
        let dir = std::env::temp_dir().join(format!("zs3-repeats-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut seed = 0x2545f4914f6cdd1du64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut kept_and_flushed = 0;
        for case in 0..60 {
            // A few units of content, repeated through a file between unique bytes.
            let units: Vec<Vec<u8>> = (0..1 + rand(4))
                .map(|_| (0..1 + rand(40)).map(|_| rand(256) as u8).collect())
                .collect();
            let mut want = Vec::new();
            let mut places: Vec<Vec<u64>> = vec![Vec::new(); units.len()];
            let mut singles = Vec::new();
            for _ in 0..1 + rand(120) {
                if rand(3) == 0 {
                    let n = 1 + rand(50) as usize;
                    singles.push((want.len() as u64, want.len()..want.len() + n));
                    want.extend((0..n).map(|_| rand(256) as u8));
                } else {
                    let u = rand(units.len() as u64) as usize;
                    places[u].push(want.len() as u64);
                    want.extend_from_slice(&units[u]);
                }
            }
            // What a scan hands over: a unit's places in groups (ascending), single pieces,
            // in a mixed order.
            enum Piece {
                One(u64, std::ops::Range<usize>),
                Many(Vec<u64>, usize),
            }
            let mut pieces: Vec<Piece> = singles
                .into_iter()
                .map(|(at, r)| Piece::One(at, r))
                .collect();
            for (u, ps) in places.iter().enumerate() {
                for group in ps.chunks(1 + rand(8) as usize) {
                    pieces.push(Piece::Many(group.to_vec(), u));
                }
            }
            for k in (1..pieces.len()).rev() {
                pieces.swap(k, rand(k as u64 + 1) as usize);
            }
            let p = dir.join(format!("f{case}"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&p)
                .unwrap();
            let mut runs = RunWriter::new(1 + rand(200) as usize);
            let mut repeats = Repeats::with_room(rand(100) as usize, rand(12) as usize);
            let mut reported = vec![false; want.len()];
            let mut check = |off: u64, n: u64| {
                let mut got = vec![0; n as usize];
                file.read_exact_at(&mut got, off).unwrap();
                assert_eq!(got, want[off as usize..(off + n) as usize]);
                for r in &mut reported[off as usize..(off + n) as usize] {
                    assert!(!*r, "byte reported twice");
                    *r = true;
                }
            };
            for piece in &pieces {
                match piece {
                    Piece::One(at, r) => runs.write_at(&file, *at, &want[r.clone()], &mut check),
                    Piece::Many(at, u) => repeats.add(at, &units[*u], &mut runs, &file, &mut check),
                }
                .unwrap();
                if rand(30) == 0 {
                    repeats.flush(&mut runs, &file, &mut check).unwrap();
                }
            }
            kept_and_flushed += repeats.places.len();
            repeats.flush(&mut runs, &file, &mut check).unwrap();
            assert!(repeats.places.is_empty() && repeats.bytes.is_empty());
            runs.flush(&file, &mut check).unwrap();
            assert!(reported.iter().all(|&r| r), "case {case}: every byte");
            assert_eq!(fs::read(&p).unwrap(), want, "case {case}");
        }
        assert!(kept_and_flushed > 0, "some places were kept to the end");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Gathered writes give the same file as writing every piece where it belongs, and
    /// report exactly the ranges written, each after it was.
    #[test]
    fn run_writer_equals_plain_writes() {
        let dir = std::env::temp_dir().join(format!("zs3-runwriter-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for case in 0..40 {
            let len = 1 + rand(5000) as usize;
            let want: Vec<u8> = (0..len).map(|_| rand(256) as u8).collect();
            // Pieces of the file in an order that is mostly sequential, with jumps.
            let mut pieces = Vec::new();
            let mut at = 0;
            while at < len {
                let n = (1 + rand(300) as usize).min(len - at);
                pieces.push((at, n));
                at += n;
            }
            for k in 0..pieces.len() {
                if rand(4) == 0 {
                    let j = rand(pieces.len() as u64) as usize;
                    pieces.swap(k, j);
                }
            }
            let p = dir.join(format!("f{case}"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&p)
                .unwrap();
            let mut w = RunWriter::new(1 + rand(700) as usize);
            let mut reported = vec![false; len];
            let mut check = |off: u64, n: u64| {
                let mut got = vec![0; n as usize];
                file.read_exact_at(&mut got, off).unwrap();
                assert_eq!(
                    got,
                    want[off as usize..(off + n) as usize],
                    "on disk when reported"
                );
                for r in &mut reported[off as usize..(off + n) as usize] {
                    assert!(!*r, "byte reported twice");
                    *r = true;
                }
            };
            for &(at, n) in &pieces {
                w.write_at(&file, at as u64, &want[at..at + n], &mut check)
                    .unwrap();
            }
            w.flush(&file, &mut check).unwrap();
            assert!(
                reported.iter().all(|&r| r),
                "case {case}: every byte reported"
            );
            assert_eq!(fs::read(&p).unwrap(), want, "case {case}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
