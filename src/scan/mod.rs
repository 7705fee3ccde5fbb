//! Scanning a seed for blocks of the target: the matching algorithm of zsync's librcksum,
//! reproduced so that the reuse list is exactly the reference's (SPEC §3.2).
//!
//! The seed is read once, front to back, in chunks. At each position the rolling checksum
//! of the window is looked up in an index of the target's blocks (a bit filter first, so
//! most positions cost a few instructions, see [`filter`]); weak hits are confirmed with
//! the strong checksum ([`digest`]). A match marks the block known and the scan jumps past
//! it. The algorithm is sequential (what matches depends on what is already known), so
//! with several threads, workers compute ahead what does not depend on it ([`hints`]) and
//! the matcher replays the exact algorithm on their results; the reuse list is the same
//! for any number of threads.

mod digest;
mod filter;
mod hints;
mod index;
mod period;

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use crate::control::{BlockSums, ControlFile};
use crate::known::KnownSet;
use crate::make::read_full;
use crate::mapped::{mappable_len, Bytes, Mapped};
use crate::rsum::Rsum;

use digest::{Digest, Digester};
use hints::Hints;
use index::{hash, weak_equal, Index};

/// One reuse instruction: target bytes `[dst, dst+len)` equal seed bytes `[src, src+len)`,
/// where seed bytes past the seed's end read as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reuse {
    /// Offset in the target.
    pub dst: u64,
    /// Offset in the seed.
    pub src: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The target's geometry as the scan needs it.
#[derive(Clone, Copy, Debug)]
struct Params {
    /// Block size, and its log2.
    bs: usize,
    shift: u32,
    /// Consecutive blocks that must match (1 or 2).
    seq: usize,
    /// Mask of the stored weak sums.
    mask: u32,
    /// Number of blocks.
    n: usize,
    /// Stored strong checksum bytes.
    cb: usize,
    /// Bytes rolled between two looks for a period to pass over (0: never).
    look: usize,
}

impl Params {
    /// Where the scan from `off` next looks for a period.
    #[inline]
    fn next_look(&self, off: usize) -> usize {
        if self.look == 0 {
            usize::MAX
        } else {
            off.saturating_add(self.look)
        }
    }

    /// Pass over the positions from `off` that repeat what `[lo, off)` examined without a
    /// result (see [`period`]), up to `end`: returns where to go on, with `r0`/`r1` set to
    /// the sums of the windows there (untouched when nothing was passed or it is `end`).
    fn pass_period(
        &self,
        buf: &[u8],
        lo: usize,
        off: usize,
        end: usize,
        r0: &mut Rsum,
        r1: &mut Rsum,
    ) -> usize {
        let to = period::skip(buf, lo, off, end, self.seq * self.bs);
        if to > off && to < end {
            (*r0, *r1) = self.sums_at(buf, to);
        }
        to
    }

    /// The sums of the window at `off` and (seq = 2) of the one a block further.
    fn sums_at(&self, buf: &[u8], off: usize) -> (Rsum, Rsum) {
        let r0 = Rsum::of(&buf[off..off + self.bs]);
        let r1 = if self.seq == 2 {
            Rsum::of(&buf[off + self.bs..off + 2 * self.bs])
        } else {
            Rsum::default()
        };
        (r0, r1)
    }

    /// The keys of the window at `x` from its sums and those of the window at `x + B`
    /// (the second key is 0 unless seq = 2).
    #[inline]
    fn keys(&self, r0: Rsum, r1: Rsum) -> (u32, u32) {
        let k2 = if self.seq == 2 {
            r1.packed() & self.mask
        } else {
            0
        };
        (r0.packed() & self.mask, k2)
    }

    /// Slide the windows at `off` (and, for seq = 2, at `off + B`) by one byte.
    #[inline]
    fn roll(&self, buf: &[u8], off: usize, r0: &mut Rsum, r1: &mut Rsum) {
        r0.roll(buf[off], buf[off + self.bs], self.shift);
        if self.seq == 2 {
            r1.roll(buf[off + self.bs], buf[off + 2 * self.bs], self.shift);
        }
    }

    /// Whether `m1`, the digest of the window after a match of block `i`, is that of block
    /// `i + 1` (block N is a phantom whose strong sum is all zeros; SPEC §3.2.1).
    fn partner_matches(&self, blocks: &BlockSums, i: usize, m1: &Digest) -> bool {
        if i + 1 < self.n {
            blocks.strong_is(i + 1, m1)
        } else {
            m1[..self.cb].iter().all(|&b| b == 0)
        }
    }
}

/// Seed positions per chunk (at least; a chunk holds at least eight blocks).
const CHUNK: usize = 2 << 20;
/// Bytes of chunks in flight at most, when several threads scan.
const IN_FLIGHT: usize = 24 << 20;
/// Above this block size the scan runs on one thread (chunks would be too large).
const MAX_PARALLEL_BLOCKSIZE: usize = 1 << 20;

/// The matcher for one target; it keeps the set of known blocks across several seeds.
pub struct Matcher<'c> {
    blocks: &'c BlockSums,
    length: u64,
    p: Params,
    index: Index,
    known: KnownSet,
    reuse: Vec<Reuse>,
    next_match: Option<usize>,
    cached_nk: usize,
    cands: Vec<u32>,
    digester: Digester,
    /// The workers' findings for the chunk being matched (empty: none, roll everything).
    hints: Hints,
    threads: usize,
    chunk: usize,
    /// How many of the hints' presumed blocks are known.
    verified: usize,
}

/// Whether to go on reading the seed.
#[derive(PartialEq, Eq)]
enum Flow {
    More,
    /// Every block is known: nothing more can be found.
    Done,
}

impl<'c> Matcher<'c> {
    /// A matcher for the target described by `control`, with nothing known yet. It scans
    /// with as many threads as there are cores (see [`Matcher::with_threads`]).
    pub fn new(control: &'c ControlFile) -> Self {
        let h = &control.header;
        let blocks = &control.blocks;
        let n = blocks.len();
        let seq = usize::from(h.hash_lengths.seq_matches);
        let bs = h.blocksize as usize;
        Matcher {
            blocks,
            length: h.length,
            p: Params {
                bs,
                shift: h.blocksize.trailing_zeros(),
                seq,
                mask: BlockSums::weak_mask(h.hash_lengths.rsum_bytes),
                n,
                cb: blocks.strong_len,
                look: period::LOOK_EVERY,
            },
            index: Index::new(blocks, seq),
            known: KnownSet::new(n),
            reuse: Vec::new(),
            next_match: None,
            cached_nk: n,
            cands: Vec::new(),
            digester: Digester::new(blocks.algorithm, bs),
            hints: Hints::default(),
            threads: 0,
            chunk: CHUNK,
            verified: 0,
        }
    }

    /// Scan with `threads` threads (0: one per core). The result does not depend on it.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Read the seed in chunks of `positions` positions (at least 8 blocks); the default is
    /// 2 MiB. Tests use tiny chunks to exercise the seams between them.
    #[doc(hidden)]
    pub fn with_chunk_size(mut self, positions: usize) -> Self {
        self.chunk = positions.max(1);
        self
    }

    /// Look for a period in the seed after rolling `bytes` bytes without a match (0: never);
    /// the default is 256 KiB. Tests compare scans with and without the skip.
    #[doc(hidden)]
    pub fn with_period_look(mut self, bytes: usize) -> Self {
        self.p.look = bytes;
        self
    }

    /// The blocks known so far.
    pub fn known(&self) -> &KnownSet {
        &self.known
    }

    /// Mark blocks known that were obtained elsewhere (e.g. downloaded).
    pub fn mark_known(&mut self, first: usize, last: usize) {
        self.known.insert_range(first, last);
    }

    /// Take the reuse instructions found so far (in the order they were found).
    pub fn take_reuse(&mut self) -> Vec<Reuse> {
        std::mem::take(&mut self.reuse)
    }

    /// Scan one seed. Returns the seed's length. Blocks found are added to the known set and
    /// reuse instructions (with `src` offsets in this seed) to the reuse list.
    pub fn scan(&mut self, seed: &mut (dyn Read + Send)) -> std::io::Result<u64> {
        self.scan_source(Source::Stream {
            seed,
            carry: Vec::new(),
        })
    }

    /// [`Matcher::scan`] for a seed that is a file: its bytes are looked at where they are in
    /// the page cache where that is possible (see [`mapped`](crate::mapped)), instead of
    /// being copied out first. A file that is not a regular file is read.
    pub fn scan_file(&mut self, file: &File) -> std::io::Result<u64> {
        match mappable_len(file) {
            Some(len) => self.scan_source(Source::File { file, len }),
            None => self.scan(&mut std::io::BufReader::with_capacity(0, file)),
        }
    }

    fn scan_source(&mut self, src: Source<'_>) -> std::io::Result<u64> {
        self.next_match = None;
        self.digester.new_seed();
        self.hints = Hints::default();
        let bs = self.p.bs;
        let chunk = self.chunk.max(8 * bs);
        let mut reader = ChunkReader::new(src, chunk, self.p.seq * bs + 1);
        let threads = match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            t => t,
        };
        let mut x = 0u64;
        let Some(first) = reader.next()? else {
            return Ok(0);
        };
        if threads < 2 || bs > MAX_PARALLEL_BLOCKSIZE || reader.at_eof() || self.known.is_full() {
            let mut next = Some(first);
            while let Some(c) = next {
                let flow = self.match_chunk(&c.data, c.base, c.len, &mut x);
                c.data.check()?;
                if flow == Flow::Done {
                    return reader.skip_rest();
                }
                reader.recycle(c.data);
                next = reader.next()?;
            }
            return Ok(reader.seed_len());
        }
        self.scan_parallel(reader, first, threads, &mut x)
    }

    /// [`Matcher::scan`] with workers computing hints for the chunks ahead.
    fn scan_parallel(
        &mut self,
        mut reader: ChunkReader<'_>,
        first: Chunk,
        threads: usize,
        x: &mut u64,
    ) -> std::io::Result<u64> {
        struct Job {
            data: Arc<Bytes>,
            base: u64,
            len: usize,
            /// The known blocks when the job was made.
            known: Arc<Vec<u64>>,
            reply: mpsc::SyncSender<Hints>,
        }
        struct InFlight {
            data: Arc<Bytes>,
            base: u64,
            len: usize,
            hints: mpsc::Receiver<Hints>,
        }
        let mut frozen = self.index.clone();
        frozen.mark_duplicates(self.blocks, self.p.seq);
        let lasting = hints::lasting(&frozen);
        let spec = hints::Speculator {
            p: self.p,
            blocks: self.blocks,
            index: &frozen,
            lasting: &lasting,
        };
        let depth = (IN_FLIGHT / first.data.len()).clamp(2, 2 * threads + 1);
        let cancel = AtomicBool::new(false);
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Mutex::new(job_rx);
        std::thread::scope(|s| {
            for _ in 0..threads {
                let (spec, job_rx, cancel) = (&spec, &job_rx, &cancel);
                s.spawn(move || {
                    let mut ws = hints::Workspace::new(spec);
                    loop {
                        let job = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(job) = job else { break };
                        let mut h = Hints::default();
                        if !cancel.load(Ordering::Relaxed) {
                            ws.dg.new_seed();
                            spec.hints(&mut ws, &job.data, job.base, job.len, &job.known, &mut h);
                        }
                        drop(job.data);
                        // The matcher may have stopped waiting (every block known).
                        let _ = job.reply.send(h);
                    }
                });
            }
            // A thread of its own reads the seed ahead (the copies out of the page cache
            // would otherwise be the matcher's), reusing the buffers the matcher is done with.
            let (chunk_tx, chunk_rx) = mpsc::sync_channel::<std::io::Result<Chunk>>(2);
            let (spare_tx, spare_rx) = mpsc::channel::<Bytes>();
            let read_ahead = s.spawn(move || {
                loop {
                    while let Ok(b) = spare_rx.try_recv() {
                        reader.recycle(b);
                    }
                    let next = match reader.next() {
                        Ok(Some(c)) => Ok(c),
                        Ok(None) => break,
                        Err(e) => Err(e),
                    };
                    let failed = next.is_err();
                    // The matcher stops listening once it needs no more.
                    if chunk_tx.send(next).is_err() || failed {
                        break;
                    }
                }
                reader
            });
            let mut inflight: VecDeque<InFlight> = VecDeque::new();
            // What the workers are told is known (renewed when more is).
            let mut known = (usize::MAX, Arc::new(Vec::new()));
            let mut pending = Some(first);
            let mut read_error = None;
            let mut read_all = false;
            let flow = loop {
                while inflight.len() < depth && read_error.is_none() && !read_all {
                    let c = match pending.take() {
                        Some(c) => c,
                        None => {
                            // Wait for the reader only when there is nothing else to do.
                            let next = if inflight.is_empty() {
                                chunk_rx.recv().ok()
                            } else {
                                match chunk_rx.try_recv() {
                                    Ok(r) => Some(r),
                                    Err(mpsc::TryRecvError::Empty) => break,
                                    Err(mpsc::TryRecvError::Disconnected) => None,
                                }
                            };
                            match next {
                                Some(Ok(c)) => c,
                                None => {
                                    read_all = true;
                                    break;
                                }
                                Some(Err(e)) => {
                                    read_error = Some(e);
                                    break;
                                }
                            }
                        }
                    };
                    let data = Arc::new(c.data);
                    let (tx, rx) = mpsc::sync_channel(1);
                    if known.0 != self.known.count() {
                        known = (self.known.count(), Arc::new(self.known.words().to_vec()));
                    }
                    let job = Job {
                        data: Arc::clone(&data),
                        base: c.base,
                        len: c.len,
                        known: Arc::clone(&known.1),
                        reply: tx,
                    };
                    // If no worker is left, the job and its reply sender are dropped and
                    // the chunk is matched without hints.
                    let _ = job_tx.send(job);
                    inflight.push_back(InFlight {
                        data,
                        base: c.base,
                        len: c.len,
                        hints: rx,
                    });
                }
                let Some(InFlight {
                    data,
                    base,
                    len,
                    hints,
                }) = inflight.pop_front()
                else {
                    break Ok(Flow::More);
                };
                // Without hints (a worker failed) the chunk is simply rolled: same result.
                self.hints = hints.recv().unwrap_or_default();
                self.verified = 0;
                let flow = self.match_chunk(&data, base, len, x);
                if let Err(e) = data.check() {
                    break Err(e);
                }
                if let Ok(v) = Arc::try_unwrap(data) {
                    let _ = spare_tx.send(v);
                }
                if flow == Flow::Done {
                    break Ok(Flow::Done);
                }
            };
            cancel.store(true, Ordering::Relaxed);
            // The reader stops at its next chunk; then it gives the seed's length.
            drop(chunk_rx);
            let mut reader = read_ahead.join().expect("the seed reader does not panic");
            let result = match (flow, read_error) {
                (Err(e), _) | (_, Some(e)) => Err(e),
                (Ok(Flow::Done), None) => reader.skip_rest(),
                (Ok(Flow::More), None) => Ok(reader.seed_len()),
            };
            cancel.store(true, Ordering::Relaxed);
            drop(job_tx);
            self.hints = Hints::default();
            result
        })
    }

    /// Match positions `[base, base + len)` of the seed, continuing at `*x`; `buf` holds the
    /// seed bytes from `base`, with at least `seq·B + 1` more after the last position.
    fn match_chunk(&mut self, buf: &[u8], base: u64, len: usize, x: &mut u64) -> Flow {
        let end = base + len as u64;
        let bs = self.p.bs;
        while *x < end {
            if self.known.is_full() && self.next_match.is_none() {
                // Nothing can be written any more (SPEC §3.2.4 only writes unknown blocks
                // outside seq=2 continuation).
                return Flow::Done;
            }
            let off = (*x - base) as usize;
            if self.p.seq == 2 {
                if let Some(nm) = self.next_match {
                    if self.check_continuation(&buf[off..], *x, nm) > 0 {
                        *x += bs as u64;
                        continue;
                    }
                }
            }
            let step = self.find_match(buf, base, x, end);
            *x += (step * bs) as u64;
        }
        Flow::More
    }

    /// Advance `*x` to the next position where blocks match (returns seq) or to `end`
    /// (returns 0), visiting the workers' stops where they covered the seed and rolling
    /// elsewhere.
    fn find_match(&mut self, buf: &[u8], base: u64, x: &mut u64, end: u64) -> usize {
        loop {
            if *x >= end {
                return 0;
            }
            let c = self.hints.covered.partition_point(|c| c.to <= *x);
            let (from, to, need) = match self.hints.covered.get(c) {
                Some(c) => (c.from, c.to.min(end), c.need as usize),
                None => (end, end, 0),
            };
            // The stops listed are all there are if the blocks the worker presumed known
            // by then are (they are, unless the matcher took another path).
            while self.verified < need
                && self
                    .known
                    .contains(self.hints.presumed[self.verified] as usize)
            {
                self.verified += 1;
            }
            if *x < from || self.verified < need {
                // A gap, or a stretch whose stops cannot be trusted: roll through it.
                let limit = if *x < from { from } else { to };
                let step = self.roll_until_match(buf, base, x, limit);
                if step > 0 {
                    return step;
                }
                continue;
            }
            let mut k = self.hints.stops.partition_point(|s| s.pos < *x);
            while let Some(&st) = self.hints.stops.get(k).filter(|s| s.pos < to) {
                let off = (st.pos - base) as usize;
                let h = self.index.bucket(st.k1, st.k2);
                if self.lookup_and_check(h, st.k1, st.k2, &buf[off..], st.pos) {
                    *x = st.pos;
                    return self.p.seq;
                }
                k += 1;
            }
            *x = to;
        }
    }

    /// The hot loop: advance x one byte at a time until a candidate matches (returns seq)
    /// or x reaches `limit` (returns 0).
    fn roll_until_match(&mut self, buf: &[u8], base: u64, x: &mut u64, limit: u64) -> usize {
        let (bs, shift, seq2) = (self.p.bs, self.p.shift, self.p.seq == 2);
        let mut off = (*x - base) as usize;
        let end = (limit - base) as usize;
        let (mut r0, mut r1) = self.p.sums_at(buf, off);
        // Every position from `lo` on was examined without a match; the next look for a
        // period to pass over is at `look`.
        let lo = off;
        let mut look = self.p.next_look(off);
        while off < end {
            let f = self.index.filter(self.p.mask, bs, shift);
            let stop = end.min(look);
            off = f.skip_seq(seq2, buf, off, stop, &mut r0, &mut r1);
            if off >= end {
                break;
            }
            if off == stop {
                // Not admitted yet: pass over what repeats what was examined.
                off = self.p.pass_period(buf, lo, off, end, &mut r0, &mut r1);
                if off >= end {
                    break;
                }
                look = self.p.next_look(off);
                continue;
            }
            let (k1, k2) = self.p.keys(r0, r1);
            let h = self.index.bucket(k1, k2);
            let xx = base + off as u64;
            if self.lookup_and_check(h, k1, k2, &buf[off..], xx) {
                *x = xx;
                return self.p.seq;
            }
            self.p.roll(buf, off, &mut r0, &mut r1);
            off += 1;
        }
        *x = limit;
        0
    }

    /// Collect the not-yet-known blocks of bucket `h` whose stored sums equal the window's
    /// (known blocks leave the bucket); then CHECK them.
    fn lookup_and_check(&mut self, h: usize, k1: u32, k2: u32, win: &[u8], x: u64) -> bool {
        self.index.drop_known(h, &self.known);
        let mut cands = std::mem::take(&mut self.cands);
        cands.clear();
        let wh = hash(k1, k2);
        cands.extend(
            (self.index.entries(h).iter())
                .zip(self.index.entry_hashes(h))
                .filter(|&(&i, &eh)| {
                    eh == wh && weak_equal(self.blocks, self.p.seq, i as usize, k1, k2)
                })
                .map(|(&i, _)| i),
        );
        let hit = !cands.is_empty() && self.check_cands(win, x, &cands) > 0;
        self.cands = cands;
        hit
    }

    fn check_cands(&mut self, win: &[u8], x: u64, cands: &[u32]) -> usize {
        self.next_match = None;
        let mut total = 0;
        let mut md0: Option<Digest> = None;
        let mut md1: Option<Digest> = None;
        let bs = self.p.bs;
        let p = self.p;
        for &i in cands {
            let i = i as usize;
            if self.known.contains(i) {
                continue;
            }
            let m0 = match md0 {
                Some(m) => m,
                None => *md0.insert(self.digest_at(win, x)),
            };
            if !self.blocks.strong_is(i, &m0) {
                continue;
            }
            let k = if self.p.seq == 2 {
                let m1 = match md1 {
                    Some(m) => m,
                    None => *md1.insert(self.digest_at(&win[bs..], x + bs as u64)),
                };
                if !p.partner_matches(self.blocks, i, &m1) {
                    continue;
                }
                2
            } else {
                1
            };
            let nk = self.known.next_known(i);
            total += self.write_found(i, k, nk, x, true);
        }
        total
    }

    /// The strong checksum of the window at seed offset `x` (`win` starts there).
    fn digest_at(&mut self, win: &[u8], x: u64) -> Digest {
        match self.hints.digest(x) {
            Some(d) => d,
            None => self.digester.digest(win, x),
        }
    }

    /// Record a match of block i (k blocks) at seed offset x, per SPEC §3.2.4.
    fn write_found(&mut self, i: usize, k: usize, nk: usize, x: u64, fresh: bool) -> usize {
        if nk > i + k {
            self.write(i, i + k - 1, x);
            self.next_match = Some(i + k);
            if fresh {
                self.cached_nk = nk;
            }
            k
        } else {
            self.write(i, nk - 1, x);
            nk - i
        }
    }

    /// CHECK in continuation mode: block `i` alone at x (seq = 2 only).
    fn check_continuation(&mut self, win: &[u8], x: u64, i: usize) -> usize {
        self.next_match = None;
        if i >= self.p.n {
            return 0;
        }
        let k1 = match self.hints.stop(x) {
            Some(s) => s.k1,
            None => Rsum::of(&win[..self.p.bs]).packed() & self.p.mask,
        };
        if self.blocks.weak[i] != k1 {
            return 0;
        }
        if !self.blocks.strong_is(i, &self.digest_at(win, x)) {
            return 0;
        }
        let nk = self.cached_nk;
        self.write_found(i, 1, nk, x, false)
    }

    fn write(&mut self, first: usize, last: usize, src: u64) {
        let bs = self.p.bs as u64;
        self.digester.run_next = src + (last - first + 1) as u64 * bs;
        let dst = first as u64 * bs;
        let len = (last - first + 1) as u64 * bs;
        match self.reuse.last_mut() {
            Some(r) if r.dst + r.len == dst && r.src + r.len == src => r.len += len,
            _ => self.reuse.push(Reuse { dst, src, len }),
        }
        let r = self.reuse.last_mut().expect("just pushed");
        if r.dst + r.len > self.length {
            r.len = self.length - r.dst;
        }
        self.known.insert_range(first, last);
    }
}

/// Seed bytes `[base, base + len + extra)` with zeros past the seed's end: positions
/// `[base, base + len)` and the bytes their windows need.
struct Chunk {
    base: u64,
    len: usize,
    data: Bytes,
}

/// Where a seed's bytes come from.
enum Source<'r> {
    /// Read in order; `carry` holds the first `extra` bytes of the next chunk.
    Stream {
        seed: &'r mut (dyn Read + Send),
        carry: Vec<u8>,
    },
    /// A file `len` bytes long when the scan began, whose chunks are mapped views of it
    /// (see [`mapped`](crate::mapped)); the last one, which has zeros past the end, is read.
    File { file: &'r File, len: u64 },
}

/// Reads a seed as overlapping chunks.
struct ChunkReader<'r> {
    src: Source<'r>,
    chunk: usize,
    /// Bytes needed past a chunk's last position.
    extra: usize,
    /// Where the next chunk starts.
    base: u64,
    seed_len: Option<u64>,
    spare: Vec<Vec<u8>>,
}

impl<'r> ChunkReader<'r> {
    fn new(src: Source<'r>, chunk: usize, extra: usize) -> Self {
        ChunkReader {
            src,
            chunk,
            extra,
            base: 0,
            seed_len: None,
            spare: Vec::new(),
        }
    }

    fn at_eof(&self) -> bool {
        self.seed_len.is_some()
    }

    fn next(&mut self) -> std::io::Result<Option<Chunk>> {
        if self.seed_len.is_some() {
            return Ok(None);
        }
        let want = self.chunk + self.extra;
        let base = self.base;
        if let Source::File { file, len } = self.src {
            let end = base + want as u64;
            if end <= len {
                if let Some(m) = Mapped::guarded(file, base, end) {
                    self.base += self.chunk as u64;
                    return Ok(Some(Chunk {
                        base,
                        len: self.chunk,
                        data: Bytes::Mapped(m),
                    }));
                }
            }
        }
        let mut data = self.spare.pop().unwrap_or_default();
        // A recycled buffer already has the right length: no need to zero it again.
        data.resize(want, 0);
        let got = match &mut self.src {
            Source::Stream { seed, carry } => {
                let have = carry.len();
                data[..have].copy_from_slice(carry);
                have + read_full(*seed, &mut data[have..])?
            }
            Source::File { file, len } => {
                // Not past the length the scan began with (the file may have grown since).
                let limit = len.saturating_sub(base).min(want as u64) as usize;
                read_full_at(file, &mut data[..limit], base)?
            }
        };
        if got < want {
            self.seed_len = Some(base + got as u64);
            data.truncate(got);
            data.resize(got + self.extra, 0);
            return Ok((got > 0).then_some(Chunk {
                base,
                len: got,
                data: Bytes::Read(data),
            }));
        }
        if let Source::Stream { carry, .. } = &mut self.src {
            carry.clear();
            carry.extend_from_slice(&data[self.chunk..]);
        }
        self.base += self.chunk as u64;
        Ok(Some(Chunk {
            base,
            len: self.chunk,
            data: Bytes::Read(data),
        }))
    }

    fn recycle(&mut self, data: Bytes) {
        if let Bytes::Read(data) = data {
            if self.spare.len() < 4 && data.len() == self.chunk + self.extra {
                self.spare.push(data);
            }
        }
    }

    /// The seed's length, once the last chunk was read.
    fn seed_len(&self) -> u64 {
        let ahead = match &self.src {
            Source::Stream { carry, .. } => carry.len(),
            Source::File { .. } => self.extra,
        };
        self.seed_len.unwrap_or(self.base + ahead as u64)
    }

    /// Read the rest of the seed without looking at it; returns the seed's length.
    fn skip_rest(&mut self) -> std::io::Result<u64> {
        if let Some(n) = self.seed_len {
            return Ok(n);
        }
        let mut n = self.seed_len();
        let seed = match &mut self.src {
            Source::Stream { seed, .. } => seed,
            Source::File { len, .. } => return Ok(*len),
        };
        let mut sink = vec![0u8; 1 << 16];
        loop {
            let k = read_full(*seed, &mut sink)?;
            n += k as u64;
            if k < sink.len() {
                self.seed_len = Some(n);
                return Ok(n);
            }
        }
    }
}

/// Read `buf.len()` bytes of `file` from `offset` on, fewer at its end: how many.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashlen::HashLengths;
    use crate::make::{make, MakeOptions};
    use std::path::Path;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// Data with the shapes that stress the matcher: random stretches, zero runs and a
    /// record repeated many times (duplicate blocks, weak collisions).
    fn target(rng: &mut Rng, len: usize) -> Vec<u8> {
        let k = 1 + rng.below(300);
        let record = rng.bytes(k);
        let mut t = Vec::with_capacity(len);
        while t.len() < len {
            let k = 1 + rng.below(5000);
            match rng.below(4) {
                0 => t.resize(t.len() + k, 0),
                1 => {
                    for _ in 0..k / record.len() + 1 {
                        t.extend_from_slice(&record);
                    }
                }
                _ => t.extend(rng.bytes(k)),
            }
        }
        t.truncate(len);
        t
    }

    /// A seed made of pieces of the target (moved, repeated, cut short), new bytes and zeros.
    fn seed(rng: &mut Rng, t: &[u8]) -> Vec<u8> {
        let mut s = Vec::new();
        for _ in 0..1 + rng.below(12) {
            match rng.below(5) {
                0 => {
                    let k = rng.below(3000);
                    s.extend(rng.bytes(k));
                }
                1 => s.resize(s.len() + rng.below(3000), 0),
                _ if !t.is_empty() => {
                    let a = rng.below(t.len());
                    let b = (a + rng.below(t.len() - a + 1)).min(t.len());
                    s.extend_from_slice(&t[a..b]);
                }
                _ => {}
            }
        }
        s
    }

    /// The control file of `t` with block size `bs` and random Hash-Lengths (every seq and
    /// weak-sum width).
    fn control_with_random_lengths(rng: &mut Rng, t: &[u8], bs: u32) -> ControlFile {
        let opts = MakeOptions {
            blocksize: Some(bs),
            threads: 1,
            ..Default::default()
        };
        let mut made = make(&mut &t[..], 0, &opts).unwrap();
        made.header.hash_lengths = HashLengths::new(
            1 + rng.below(2) as u32,
            1 + rng.below(4) as u32,
            [3u32, 4, 8, 16][rng.below(4)],
        )
        .unwrap();
        ControlFile::parse(&made.to_bytes()).unwrap()
    }

    type Found = (Vec<Vec<Reuse>>, Vec<u64>, Vec<(usize, usize)>);

    fn run(c: &ControlFile, seeds: &[Vec<u8>], pre: &[(usize, usize)], m: Matcher<'_>) -> Found {
        let mut m = m;
        for &(a, b) in pre {
            m.mark_known(a, b);
        }
        let mut reuse = Vec::new();
        let mut lens = Vec::new();
        for s in seeds {
            lens.push(m.scan(&mut &s[..]).unwrap());
            reuse.push(m.take_reuse());
        }
        let _ = c;
        (reuse, lens, m.known().missing_runs())
    }

    /// [`run`] with each seed in a file, scanned with [`Matcher::scan_file`].
    fn run_files(seeds: &[Vec<u8>], pre: &[(usize, usize)], m: Matcher<'_>, dir: &Path) -> Found {
        let mut m = m;
        for &(a, b) in pre {
            m.mark_known(a, b);
        }
        let mut reuse = Vec::new();
        let mut lens = Vec::new();
        for (k, s) in seeds.iter().enumerate() {
            let path = dir.join(format!("seed{k}"));
            std::fs::write(&path, s).unwrap();
            lens.push(m.scan_file(&File::open(&path).unwrap()).unwrap());
            reuse.push(m.take_reuse());
        }
        (reuse, lens, m.known().missing_runs())
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("zs3-scan-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A seed whose reading fails part-way: the scan reports the error, and what it found
    /// before (in the bytes read) is the same for any number of threads.
    #[test]
    fn a_read_error_ends_the_scan_the_same_way_on_any_number_of_threads() {
        struct Failing<'a> {
            data: &'a [u8],
            at: usize,
        }
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.at == self.data.len() {
                    return Err(std::io::Error::other("the disk is on fire"));
                }
                let n = buf.len().min(self.data.len() - self.at).min(3000);
                buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
                self.at += n;
                Ok(n)
            }
        }
        let mut rng = Rng(0xe770_7e77_0e77_07e7);
        let mut found = 0;
        for case in 0..12 {
            let bs = [64u32, 1024][case % 2];
            let len = 100_000 + rng.below(50_000);
            let t = target(&mut rng, len);
            let c = control_with_random_lengths(&mut rng, &t, bs);
            let s = seed(&mut rng, &t);
            let fail_at = rng.below(s.len() + 1);
            let mut results = Vec::new();
            for threads in [1, 2, 3] {
                let mut m = Matcher::new(&c).with_threads(threads).with_chunk_size(5000);
                let mut r = Failing {
                    data: &s[..fail_at],
                    at: 0,
                };
                let e = m.scan(&mut r).expect_err("the read error is reported");
                assert!(e.to_string().contains("on fire"), "{e}");
                let reuse = m.take_reuse();
                assert!(
                    reuse.iter().all(|r| r.src + r.len <= fail_at as u64),
                    "case {case}: only bytes that were read are used"
                );
                found += reuse.len();
                results.push((reuse, m.known().missing_runs()));
            }
            assert!(results.windows(2).all(|w| w[0] == w[1]), "case {case}");
        }
        assert!(found > 100, "matches are found before the errors: {found}");
    }

    /// Worker threads and chunk seams do not change the result: the same reuse lists, seed
    /// lengths and known blocks as one thread, over several seeds per target, with blocks
    /// known beforehand, every seq and weak-sum width, and block sizes where runs of
    /// matches are hashed eight at a time.
    #[test]
    fn threads_and_chunks_do_not_change_the_result() {
        let mut rng = Rng(0x0dd5_eed5_1234_5678);
        let dir = temp_dir("threads");
        let mut parallel_hints = 0;
        let mut duplicates = 0;
        // Fewer cases in unoptimized builds (the Bazel unit test), all of them otherwise.
        let cases = if cfg!(debug_assertions) { 20 } else { 60 };
        for case in 0..cases {
            let bs = [16u32, 64, 128, 1024][rng.below(4)];
            let len = rng.below(150_000);
            let t = target(&mut rng, len);
            let c = control_with_random_lengths(&mut rng, &t, bs);
            let seeds: Vec<Vec<u8>> = (0..1 + rng.below(3)).map(|_| seed(&mut rng, &t)).collect();
            let n = c.blocks.len();
            let pre: Vec<(usize, usize)> = if n > 0 && rng.below(3) == 0 {
                let a = rng.below(n);
                vec![(a, (a + rng.below(20)).min(n - 1))]
            } else {
                Vec::new()
            };
            let want = run(&c, &seeds, &pre, Matcher::new(&c).with_threads(1));
            for (threads, chunk) in [(2, 1), (3, 777), (2, 5000), (4, 1 << 16)] {
                let m = Matcher::new(&c)
                    .with_threads(threads)
                    .with_chunk_size(chunk);
                let got = run(&c, &seeds, &pre, m);
                assert!(
                    got == want,
                    "case {case}: bs {bs} hl {} threads {threads} chunk {chunk}",
                    c.header.hash_lengths
                );
                // Seeds in files: mapped views of them, the last part read.
                let m = Matcher::new(&c)
                    .with_threads(threads)
                    .with_chunk_size(chunk);
                let got = run_files(&seeds, &pre, m, &dir);
                assert!(
                    got == want,
                    "case {case}: files, bs {bs} hl {} threads {threads} chunk {chunk}",
                    c.header.hash_lengths
                );
            }
            // The hints really are used: the workers cover most of a seed.
            let mut m = Matcher::new(&c);
            let frozen = m.index.clone();
            let lasting = hints::lasting(&frozen);
            let spec = hints::Speculator {
                p: m.p,
                blocks: &c.blocks,
                index: &frozen,
                lasting: &lasting,
            };
            let s = &seeds[0];
            let mut buf = s.clone();
            buf.resize(s.len() + 2 * bs as usize + 1, 0);
            let mut ws = hints::Workspace::new(&spec);
            spec.hints(&mut ws, &buf, 0, s.len(), m.known.words(), &mut m.hints);
            parallel_hints += m.hints.stops.len();
            // Runs of duplicate blocks marked (as the workers have them): the same hints.
            let mut marked = m.index.clone();
            marked.mark_duplicates(&c.blocks, m.p.seq);
            duplicates += (0..1usize << 10)
                .map(|h| marked.same_as_previous(h).iter().filter(|&&d| d).count())
                .sum::<usize>();
            let lasting = hints::lasting(&marked);
            let spec = hints::Speculator {
                index: &marked,
                lasting: &lasting,
                ..spec
            };
            let mut ws = hints::Workspace::new(&spec);
            let mut h = Hints::default();
            spec.hints(&mut ws, &buf, 0, s.len(), m.known.words(), &mut h);
            assert_eq!(
                format!("{:?}", (&h.covered, &h.presumed, &h.stops, &h.digests)),
                format!(
                    "{:?}",
                    (
                        &m.hints.covered,
                        &m.hints.presumed,
                        &m.hints.stops,
                        &m.hints.digests
                    )
                ),
                "case {case}: hints with duplicates marked"
            );
        }
        // A file that says it is empty but is not (/proc's) is read like a stream.
        if let Ok(version) = std::fs::read("/proc/version") {
            let opts = MakeOptions {
                blocksize: Some(16),
                ..Default::default()
            };
            let c =
                ControlFile::parse(&make(&mut &version[..], 0, &opts).unwrap().to_bytes()).unwrap();
            let mut m = Matcher::new(&c);
            let len = m.scan_file(&File::open("/proc/version").unwrap()).unwrap();
            assert_eq!(len, version.len() as u64);
            assert!(m.known().is_full());
        }
        assert!(parallel_hints > 1000, "{parallel_hints}");
        assert!(duplicates > 1000, "{duplicates}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A seed file cut short by someone else while a view of it is being matched: the
    /// matching goes on over zeros (no crash) and the chunk is reported as an error.
    #[test]
    fn a_seed_cut_short_under_a_view_is_an_error() {
        let mut rng = Rng(0x5eed_c075_0000_0001);
        let t = rng.bytes(400_000);
        let c = control_with_random_lengths(&mut rng, &t, 1024);
        let dir = temp_dir("cut");
        let path = dir.join("seed");
        std::fs::write(&path, &t).unwrap();
        let f = File::options().read(true).write(true).open(&path).unwrap();
        let mut m = Matcher::new(&c).with_threads(1);
        let bs = m.p.bs;
        let extra = m.p.seq * bs + 1;
        let len = t.len() as u64;
        let mut reader = ChunkReader::new(Source::File { file: &f, len }, 64 * bs, extra);
        let first = reader.next().unwrap().unwrap();
        let second = reader.next().unwrap().unwrap();
        let mapped = matches!(first.data, Bytes::Mapped(_));
        assert_eq!(
            mapped,
            cfg!(all(
                target_os = "linux",
                any(target_arch = "x86_64", target_arch = "aarch64")
            ))
        );
        // The first chunk as it should be: the target's blocks, in place.
        let mut x = 0;
        m.match_chunk(&first.data, first.base, first.len, &mut x);
        first.data.check().unwrap();
        assert!((0..64).all(|i| m.known().contains(i)));
        // Cut to a few bytes into the second chunk: its later pages read as zeros.
        f.set_len(second.base + 10).unwrap();
        let mut x = second.base;
        m.match_chunk(&second.data, second.base, second.len, &mut x);
        if mapped {
            assert!(second.data[second.len - 1..].iter().all(|&b| b == 0));
            let e = second.data.check().unwrap_err();
            assert!(e.to_string().contains("shorter"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Periodic stretches passed over change nothing: long repeats of units of many
    /// lengths (some edited), seen by one thread and several, give the same result as a
    /// scan that rolls through every position.
    #[test]
    fn periodic_stretches_passed_over_change_nothing() {
        let mut rng = Rng(0x9e71_0d1c_5eed_0003);
        let cases = if cfg!(debug_assertions) { 12 } else { 40 };
        let skipped_before = period::skipped();
        for case in 0..cases {
            let bs = [16u32, 64, 128, 1024][rng.below(4)];
            // A target of repeats and random data; the seed repeats some units too.
            let mut t = Vec::new();
            let mut units = Vec::new();
            while t.len() < 60_000 + rng.below(60_000) {
                let k = 1 + rng.below(3000);
                let unit = rng.bytes(k);
                let reps = 1 + rng.below(40_000 / unit.len() + 1);
                for _ in 0..reps {
                    t.extend_from_slice(&unit);
                }
                let k = rng.below(2000);
                t.extend(rng.bytes(k));
                units.push(unit);
            }
            let c = control_with_random_lengths(&mut rng, &t, bs);
            let mut s = seed(&mut rng, &t);
            for _ in 0..3 {
                let unit = &units[rng.below(units.len())];
                for _ in 0..rng.below(100_000 / unit.len() + 1) {
                    s.extend_from_slice(unit);
                }
                // An edit inside the repeats now and then.
                if rng.below(2) == 0 && !s.is_empty() {
                    let k = rng.below(s.len());
                    s[k] ^= 0x5a;
                }
                s.extend(seed(&mut rng, &t));
            }
            let seeds = vec![s];
            let plain = Matcher::new(&c).with_threads(1).with_period_look(0);
            let want = run(&c, &seeds, &[], plain);
            for (threads, chunk, look) in [(1, 0, 1), (1, 0, 700), (2, 5000, 1), (3, 1 << 16, 300)]
            {
                let m = Matcher::new(&c)
                    .with_threads(threads)
                    .with_chunk_size(chunk)
                    .with_period_look(look);
                let got = run(&c, &seeds, &[], m);
                assert!(
                    got == want,
                    "case {case}: bs {bs} hl {} threads {threads} chunk {chunk} look {look}",
                    c.header.hash_lengths
                );
            }
        }
        assert!(
            period::skipped() > skipped_before + 1_000_000,
            "periods were passed over"
        );
    }

    /// In covered stretches the hints list exactly the positions whose keys equal the weak
    /// sums of some block, except where every such block was presumed known by then.
    #[test]
    fn hints_list_exactly_the_weak_hits_in_covered_stretches() {
        let mut rng = Rng(42);
        let t = target(&mut rng, 60_000);
        let opts = MakeOptions {
            blocksize: Some(64),
            ..Default::default()
        };
        let mut made = make(&mut &t[..], 0, &opts).unwrap();
        made.header.hash_lengths = HashLengths::new(2, 2, 4).unwrap();
        let c = ControlFile::parse(&made.to_bytes()).unwrap();
        let m = Matcher::new(&c);
        let lasting = hints::lasting(&m.index);
        let spec = hints::Speculator {
            p: m.p,
            blocks: &c.blocks,
            index: &m.index,
            lasting: &lasting,
        };
        let s = seed(&mut rng, &t);
        let mut buf = s.clone();
        buf.resize(s.len() + 129, 0);
        let mut ws = hints::Workspace::new(&spec);
        // Nothing known yet, then a third of the blocks known before the chunk (the worker
        // must take them as known: unlisted, not presumed).
        let mut some_known = KnownSet::new(c.blocks.len());
        for i in 0..c.blocks.len() {
            if rng.below(3) == 0 {
                some_known.insert(i);
            }
        }
        for known in [KnownSet::new(c.blocks.len()), some_known] {
            let mut h = Hints::default();
            spec.hints(&mut ws, &buf, 0, s.len(), known.words(), &mut h);
            let mask = m.p.mask;
            let mut stops = h.stops.iter().peekable();
            let (mut unlisted, mut unlisted_known) = (0, 0);
            for cov in &h.covered {
                let presumed = &h.presumed[..cov.need as usize];
                for x in cov.from..cov.to {
                    let x = x as usize;
                    let k1 = Rsum::of_plain(&buf[x..x + 64]).packed() & mask;
                    let k2 = Rsum::of_plain(&buf[x + 64..x + 128]).packed() & mask;
                    let weak: Vec<u32> = (0..c.blocks.len() as u32)
                        .filter(|&i| weak_equal(&c.blocks, 2, i as usize, k1, k2))
                        .collect();
                    let listed = stops.peek().is_some_and(|st| st.pos == x as u64);
                    if !listed && !weak.is_empty() {
                        assert!(
                            weak.iter()
                                .all(|&i| presumed.contains(&i) || known.contains(i as usize)),
                            "position {x}: unlisted, but not all of {weak:?} presumed or known"
                        );
                        unlisted += 1;
                        unlisted_known +=
                            usize::from(weak.iter().all(|&i| known.contains(i as usize)));
                    }
                    assert!(!listed || !weak.is_empty(), "position {x} listed");
                    if listed {
                        let st = stops.next().unwrap();
                        assert_eq!((st.k1, st.k2), (k1, k2));
                    }
                }
            }
            assert!(stops.next().is_none(), "stops outside covered stretches");
            assert!(
                h.presumed.iter().all(|&i| !known.contains(i as usize)),
                "known blocks are not presumed"
            );
            for &(x, d) in &h.digests {
                let x = x as usize;
                assert_eq!(
                    d[..16],
                    crate::strong::md4(&buf[x..x + 64]),
                    "digest at {x}"
                );
            }
            assert!(h.stops.len() > 100 && h.covered.len() > 10);
            assert!(unlisted > 1000 && !h.presumed.is_empty(), "{unlisted}");
            if known.count() > 0 {
                assert!(unlisted_known > 100, "{unlisted_known}");
            }
        }
    }
}
