//! The reuse part of a plan, applied: the pieces of the target that the seeds have are
//! read out of the seeds again and copied into the working file in target order, on a
//! thread of their own, while the rest downloads. The scan before only has to find them,
//! and the file is complete from its start on as early as possible (its hasher follows).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use crate::scan::Reuse;

/// A seed as it was scanned.
pub struct Seed {
    /// The file, open for reading.
    pub file: File,
    /// Its length when it was scanned. The scan read zeros past the end (a match there holds
    /// them); a seed that has become shorter since is an error.
    pub len: u64,
}

/// A piece of the target and where it is in which seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Piece {
    /// Offset in the target.
    pub dst: u64,
    /// Index of the seed.
    pub seed: usize,
    /// Offset in the seed.
    pub src: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Piece {
    /// The piece of seed `seed` that a reuse instruction of its scan names.
    pub fn of(r: &Reuse, seed: usize) -> Piece {
        Piece {
            dst: r.dst,
            seed,
            src: r.src,
            len: r.len,
        }
    }
}

/// Most bytes read from a seed at once for small pieces that lie close together there.
const WINDOW: u64 = 256 << 10;
/// Pieces further apart than this in a seed are read separately.
const GAP: u64 = 16 << 10;
/// Reads kept for pieces that come again (content repeated in the target).
const SLOTS: usize = 8;
/// Pieces at least this long are read straight to where they go.
const LARGE: u64 = 64 << 10;

/// The reuse part of a plan: pieces of the target and the seeds that have them.
pub struct Fill {
    seeds: Vec<Seed>,
    /// In target order, not overlapping.
    pieces: Vec<Piece>,
    reads: Reads,
}

impl Fill {
    /// The plan to copy `pieces` (in any order, not overlapping in the target) out of
    /// `seeds`.
    pub fn new(seeds: Vec<Seed>, mut pieces: Vec<Piece>) -> Fill {
        pieces.sort_unstable();
        Fill {
            seeds,
            pieces,
            reads: Reads::default(),
        }
    }

    /// Copy bytes `[skip, skip + dst.len())` of piece `k` into `dst`.
    fn copy(&mut self, k: usize, skip: u64, dst: &mut [u8]) -> io::Result<()> {
        let p = self.pieces[k];
        debug_assert!(skip + dst.len() as u64 <= p.len);
        if p.len >= LARGE {
            return read_padded(&self.seeds[p.seed], p.src + skip, dst);
        }
        let bytes = self.reads.get(&self.seeds, &self.pieces, k)?;
        let from = skip as usize;
        dst.copy_from_slice(&bytes[from..from + dst.len()]);
        Ok(())
    }
}

/// Copy the pieces of `fill` into `out`, on this thread.
pub fn copy_now(mut fill: Fill, out: &File) -> io::Result<()> {
    copy_all(&mut fill, out, &mut |_| {})
}

/// Bytes written at a time.
const WRITE: usize = 1 << 20;
/// The copy reports progress every this many bytes of the target.
const REPORT: u64 = 4 << 20;

/// A copy running on its own thread.
pub struct Copier {
    thread: Option<JoinHandle<io::Result<()>>>,
    done: Arc<AtomicU64>,
    progress: mpsc::Receiver<()>,
}

impl Copier {
    /// Start copying the pieces of `fill` into `out`.
    pub fn start(mut fill: Fill, out: File) -> Copier {
        let done = Arc::new(AtomicU64::new(0));
        let (tx, progress) = mpsc::channel();
        let shared = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let mut reported = 0u64;
            copy_all(&mut fill, &out, &mut |end| {
                shared.store(end, Ordering::Release);
                if end >= reported + REPORT {
                    reported = end;
                    let _ = tx.send(());
                }
            })?;
            shared.store(u64::MAX, Ordering::Release);
            Ok(())
        });
        Copier {
            thread: Some(thread),
            done,
            progress,
        }
    }

    /// Every byte of a piece before this target offset is in the file (`u64::MAX`: all
    /// are); the first piece not yet all written starts at or after it.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }

    /// Wait until the copy gets on or ends; false once it has ended.
    pub fn wait(&self) -> bool {
        self.progress.recv().is_ok()
    }

    /// Wait for the copy to end.
    pub fn finish(mut self) -> io::Result<()> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the copying thread failed")),
            None => Ok(()),
        }
    }
}

impl Drop for Copier {
    /// The copy goes on to its end even when the update fails: the working file is then the
    /// best seed for the next run.
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copy the pieces of `fill` into `out` in target order, in writes of up to [`WRITE`]
/// bytes; after each, `written` is told where the first byte of a piece not written yet
/// is (`u64::MAX` after the last): every byte of a piece before it is in the file.
fn copy_all(fill: &mut Fill, out: &File, written: &mut dyn FnMut(u64)) -> io::Result<()> {
    let mut buf = vec![0u8; WRITE];
    // buf[..n] goes to `start` in the file.
    let (mut start, mut n) = (0u64, 0usize);
    let mut write = |start: u64, data: &[u8], next: u64| -> io::Result<()> {
        out.write_all_at(data, start)?;
        written(next);
        Ok(())
    };
    for k in 0..fill.pieces.len() {
        let p = fill.pieces[k];
        let mut skip = 0;
        while skip < p.len {
            if n > 0 && (start + n as u64 != p.dst + skip || n == WRITE) {
                // All buffered; what is left starts here.
                write(start, &buf[..n], p.dst + skip)?;
                n = 0;
            }
            if n == 0 {
                start = p.dst + skip;
            }
            let m = (p.len - skip).min((WRITE - n) as u64) as usize;
            fill.copy(k, skip, &mut buf[n..n + m])?;
            n += m;
            skip += m as u64;
        }
    }
    if n > 0 {
        write(start, &buf[..n], u64::MAX)?;
    }
    Ok(())
}

/// Recent reads from the seeds.
#[derive(Default)]
struct Reads {
    /// (seed, offset, bytes), the newest last.
    slots: Vec<(usize, u64, Vec<u8>)>,
}

impl Reads {
    /// The bytes of `pieces[k]`, read with the pieces after it that lie close by in the same
    /// seed, unless a recent read holds them.
    fn get(&mut self, seeds: &[Seed], pieces: &[Piece], k: usize) -> io::Result<&[u8]> {
        let p = pieces[k];
        let hit = self.slots.iter().rposition(|(s, at, b)| {
            *s == p.seed && *at <= p.src && p.src + p.len <= at + b.len() as u64
        });
        let slot = match hit {
            Some(i) => i,
            None => {
                let mut end = p.src + p.len;
                for q in &pieces[k + 1..] {
                    if q.seed != p.seed || q.src < p.src || q.src > end + GAP {
                        break;
                    }
                    if q.src + q.len - p.src > WINDOW {
                        break;
                    }
                    end = end.max(q.src + q.len);
                }
                let mut buf = if self.slots.len() >= SLOTS {
                    self.slots.remove(0).2
                } else {
                    Vec::new()
                };
                buf.resize((end - p.src) as usize, 0);
                read_padded(&seeds[p.seed], p.src, &mut buf)?;
                self.slots.push((p.seed, p.src, buf));
                self.slots.len() - 1
            }
        };
        let (_, at, buf) = &self.slots[slot];
        let from = (p.src - at) as usize;
        Ok(&buf[from..from + p.len as usize])
    }
}

/// Read `buf.len()` bytes of `seed` at `at`, zeros past its scanned length.
fn read_padded(seed: &Seed, at: u64, buf: &mut [u8]) -> io::Result<()> {
    let real = seed.len.saturating_sub(at).min(buf.len() as u64) as usize;
    seed.file
        .read_exact_at(&mut buf[..real], at)
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                io::Error::new(e.kind(), "a seed file became shorter while it was in use")
            }
            _ => e,
        })?;
    buf[real..].fill(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn temp(name: &str, data: &[u8]) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!("zs3-copy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        let f = File::options().read(true).write(true).open(&p).unwrap();
        (p, f)
    }

    /// Every piece lands where it belongs, with zeros past its seed's end, and nothing
    /// else is touched: large and small pieces, pieces close together and far apart in
    /// their seeds, one piece of a seed at many places, pieces given in any order. What the
    /// copy reports done is in the file when it says so.
    #[test]
    fn pieces_land_where_they_belong() {
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for case in 0..12 {
            let seeds: Vec<Vec<u8>> = (0..1 + rng.below(3))
                .map(|_| {
                    (0..1 + rng.below(3 << 20))
                        .map(|_| rng.below(256) as u8)
                        .collect()
                })
                .collect();
            // The target: pieces of the seeds (some past their ends) and gaps.
            let mut pieces = Vec::new();
            let mut want = Vec::new();
            let mut repeat: Option<Piece> = None;
            while want.len() < 12 << 20 {
                let dst = want.len() as u64;
                if rng.below(4) == 0 {
                    want.resize(want.len() + 1 + rng.below(5000) as usize, 0xee);
                    continue;
                }
                let p = match repeat {
                    Some(p) if rng.below(3) > 0 => Piece { dst, ..p },
                    _ => {
                        let seed = rng.below(seeds.len() as u64) as usize;
                        let n = seeds[seed].len() as u64;
                        let len = match rng.below(3) {
                            0 => 1 + rng.below(300_000),
                            _ => 1 + rng.below(5000),
                        };
                        let src = rng.below(n + 100);
                        Piece {
                            dst,
                            seed,
                            src,
                            len,
                        }
                    }
                };
                let s = &seeds[p.seed];
                for i in p.src..p.src + p.len {
                    want.push(s.get(i as usize).copied().unwrap_or(0));
                }
                repeat = Some(p);
                pieces.push(p);
            }
            for k in (1..pieces.len()).rev() {
                pieces.swap(k, rng.below(k as u64 + 1) as usize);
            }
            let files: Vec<Seed> = seeds
                .iter()
                .enumerate()
                .map(|(k, d)| Seed {
                    file: temp(&format!("s{case}-{k}"), d).1,
                    len: d.len() as u64,
                })
                .collect();
            let (path, out) = temp(&format!("out{case}"), &vec![0xee; want.len()]);
            let mut ends: Vec<u64> = pieces.iter().map(|p| p.dst + p.len).collect();
            ends.sort_unstable();
            if case % 2 == 0 {
                // Each write said to end somewhere: every piece that ends there is in.
                let check = out.try_clone().unwrap();
                let mut reports = 0;
                let mut last = 0;
                copy_all(&mut Fill::new(files, pieces), &out, &mut |done| {
                    assert!(done > last, "case {case}: progress goes forward");
                    last = done;
                    let end = ends[..ends.partition_point(|&e| e <= done)]
                        .last()
                        .copied()
                        .unwrap_or(0);
                    let mut got = vec![0u8; end as usize];
                    check.read_exact_at(&mut got, 0).unwrap();
                    let ok = got == want[..end as usize];
                    assert!(ok, "case {case}: {done} said done, but the file is not");
                    reports += 1;
                })
                .unwrap();
                assert!(reports >= 12, "case {case}: {reports} reports");
            } else {
                let c = Copier::start(Fill::new(files, pieces), out);
                while c.wait() {}
                assert_eq!(c.done(), u64::MAX);
                c.finish().unwrap();
            }
            assert!(std::fs::read(&path).unwrap() == want, "case {case}");
        }
    }

    /// A seed that became shorter than it was when it was scanned is an error, not zeros.
    #[test]
    fn a_seed_that_shrank_is_an_error() {
        let (_, f) = temp("shrank", &[7u8; 1000]);
        let (_, out) = temp("shrank-out", &[]);
        let seeds = vec![Seed { file: f, len: 5000 }];
        let pieces = vec![Piece {
            dst: 0,
            seed: 0,
            src: 500,
            len: 1000,
        }];
        let e = Copier::start(Fill::new(seeds, pieces), out)
            .finish()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("became shorter"), "{e}");
    }
}
