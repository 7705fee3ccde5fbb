//! The parallel half of the scan: facts about one stretch of the seed that do not depend on
//! which blocks are known, so worker threads can compute them ahead of the exact matcher.
//!
//! For a chunk of the seed, a worker rolls the window with the filter as it was when the
//! seed's scan began and records every position whose keys equal a block's weak sums (a
//! *stop*), with the strong checksums it computed on the way. Blocks only ever become
//! known, so the matcher can stop at nothing else there; in covered stretches it just
//! visits the stops. Where the worker guessed a match and jumped a block ahead, a gap is
//! left that the matcher rolls through itself if it gets there (its guess was wrong because
//! the block was already known). Either way the result is exactly the sequential scan's.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::control::BlockSums;
use crate::rsum::Rsum;

use super::digest::{Digest, Digester};
use super::index::{hash, weak_equal, Index};
use super::Params;

/// A seed position whose window keys equal the weak sums of some block.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stop {
    pub(super) pos: u64,
    pub(super) k1: u32,
    pub(super) k2: u32,
}

/// A stretch of the seed the worker examined position by position.
#[derive(Clone, Copy, Debug)]
pub(super) struct Covered {
    pub(super) from: u64,
    pub(super) to: u64,
    /// The stops listed are all there are once `presumed[..need]` are known blocks.
    pub(super) need: u32,
}

/// What a worker found in one chunk. Offsets are seed offsets.
#[derive(Default, Debug)]
pub(super) struct Hints {
    /// Ascending, disjoint stretches in which every stop is listed (but see `need`).
    pub(super) covered: Vec<Covered>,
    /// Blocks the worker presumed the matcher would have found by then (the ones it
    /// guessed matches of), in the order it did. Positions where only such blocks have the
    /// window's weak sums are not listed as stops.
    pub(super) presumed: Vec<u32>,
    /// The stops in `covered`, ascending.
    pub(super) stops: Vec<Stop>,
    /// Strong checksums of windows, ascending by offset.
    pub(super) digests: Vec<(u64, Digest)>,
}

impl Hints {
    /// The digest of the window at `x`, when the worker computed it.
    pub(super) fn digest(&self, x: u64) -> Option<Digest> {
        self.digests
            .binary_search_by_key(&x, |d| d.0)
            .ok()
            .map(|k| self.digests[k].1)
    }

    /// The stop at `x`, if there is one.
    pub(super) fn stop(&self, x: u64) -> Option<Stop> {
        let k = self.stops.partition_point(|s| s.pos < x);
        self.stops.get(k).filter(|s| s.pos == x).copied()
    }

    fn clear(&mut self) {
        self.covered.clear();
        self.presumed.clear();
        self.stops.clear();
        self.digests.clear();
    }
}

/// What a worker needs to compute hints: the target and the index as it was when the
/// seed's scan began.
pub(super) struct Speculator<'a> {
    pub(super) p: Params,
    pub(super) blocks: &'a BlockSums,
    pub(super) index: &'a Index,
    /// The index's filter, thinned of blocks known before some chunk handed out earlier:
    /// they stay known, and the workers take the chunks in order, so this holds for every
    /// chunk a worker starts from then on. Shared by the workers (see [`lasting`]).
    pub(super) lasting: &'a [AtomicU64],
}

/// A fresh copy of `index`'s filter for [`Speculator::lasting`].
pub(super) fn lasting(index: &Index) -> Vec<AtomicU64> {
    index
        .filter_words()
        .iter()
        .map(|&w| AtomicU64::new(w))
        .collect()
}

/// A worker's own state, kept from chunk to chunk.
pub(super) struct Workspace {
    pub(super) dg: Digester,
    /// The index's filter, thinned of presumed blocks for the current chunk.
    filter: Vec<u64>,
    /// Words where `filter` may differ from the lasting filter.
    touched: Vec<usize>,
    /// Bit i: block i is presumed in this chunk.
    presumed: Vec<u64>,
}

impl Workspace {
    pub(super) fn new(spec: &Speculator<'_>) -> Workspace {
        Workspace {
            dg: Digester::new(spec.blocks.algorithm, spec.p.bs),
            filter: spec.index.filter_words().to_vec(),
            touched: Vec::new(),
            presumed: vec![0; spec.p.n.div_ceil(64)],
        }
    }

    fn is_presumed(&self, i: usize) -> bool {
        self.presumed[i / 64] >> (i % 64) & 1 == 1
    }
}

impl Speculator<'_> {
    /// Compute the hints for positions `[base, base + len)` of a seed into `out`; `buf` holds
    /// the seed bytes from `base`, at least `len + seq·B + 1` of them (zeros past the end).
    /// `known` has a bit for each block known before the matcher gets to the chunk (as in
    /// [`KnownSet::words`](crate::known::KnownSet::words)); blocks only ever become known,
    /// so they are taken as known from the start.
    pub(super) fn hints(
        &self,
        ws: &mut Workspace,
        buf: &[u8],
        base: u64,
        len: usize,
        known: &[u64],
        out: &mut Hints,
    ) {
        let Speculator {
            p,
            blocks,
            index,
            lasting,
        } = *self;
        out.clear();
        // A fresh start: the known blocks presumed, the filter thinned of blocks known.
        for w in ws.touched.drain(..) {
            ws.filter[w] = lasting[w].load(Ordering::Relaxed);
        }
        let words = ws.presumed.len();
        ws.presumed.copy_from_slice(&known[..words]);
        let bs = p.bs;
        let seq2 = p.seq == 2;
        assert!(buf.len() > len + p.seq * bs);
        // Pathological input (weak collisions at most positions, huge buckets of duplicate
        // blocks) would make the lists huge and the work far more than the matcher's: past
        // this many stops, strong checksums of twice the chunk's bytes, or bucket entries
        // examined, the rest of the chunk is left to the matcher.
        let (max_stops, max_digests) = (len / 16 + 64, 2 * (len / bs) + 64);
        let max_examined = len / 4 + 4096;
        let mut examined = 0usize;
        let digest = |dg: &mut Digester, digests: &mut Vec<(u64, Digest)>, off: usize| {
            let x = base + off as u64;
            if let Some(&(at, d)) = digests.last() {
                if at == x {
                    return d;
                }
            }
            let d = dg.digest(&buf[off..], x);
            digests.push((x, d));
            d
        };
        let close = |out: &mut Hints, from: usize, to: u64| {
            let need = out.presumed.len() as u32;
            out.covered.push(Covered {
                from: base + from as u64,
                to,
                need,
            });
        };
        let (mut r0, mut r1) = (Rsum::default(), Rsum::default());
        let mut rolled = false;
        let mut off = 0;
        let mut from = 0;
        // Where the next look for a period to pass over is (see `period`).
        let mut look = p.next_look(off);
        // After a guessed match of block i, the window a block further probably holds block
        // i + 1: it is examined first, without the filter and the bucket.
        let mut expect: Option<usize> = None;
        let mut hits: Vec<u32> = Vec::new();
        let mut expanded: std::collections::HashSet<(usize, Digest)> = Default::default();
        while off < len {
            if !rolled {
                if !(seq2 && expect.is_some()) {
                    r0 = Rsum::of(&buf[off..off + bs]);
                } // else: r0 is the r1 of the window a block back (set when jumping).
                if seq2 {
                    r1 = Rsum::of(&buf[off + bs..off + 2 * bs]);
                }
                rolled = true;
            }
            let expected = expect.take();
            if expected.is_none() {
                let f = index.filter_over(&ws.filter, p.mask, bs, p.shift);
                let stop = len.min(look);
                off = f.skip_seq(seq2, buf, off, stop, &mut r0, &mut r1);
                if off >= len {
                    break;
                }
                if off == stop {
                    // No position since the stretch's start holds a match, even taking the
                    // presumed blocks as known (those are the same throughout a stretch, and
                    // a stop with a guessed match ends it): nor does one that repeats them,
                    // so it need not be listed, stop or not.
                    off = p.pass_period(buf, from, off, len, &mut r0, &mut r1);
                    if off >= len {
                        break;
                    }
                    look = p.next_look(off);
                    continue;
                }
            }
            let (k1, k2) = p.keys(r0, r1);
            let x = base + off as u64;
            let h = index.bucket(k1, k2);
            // Like the matcher's CHECK, with the presumed blocks taken as known: a stop if a
            // block that is not presumed has the window's weak sums; the guessed matches are
            // all such blocks whose strong sums agree too.
            let mut weak = false;
            let mut presumed_only = false;
            hits.clear();
            let (mut md0, mut md1): (Option<Digest>, Option<Digest>) = (None, None);
            // Whether block i is a guessed match here. `like` is what the same check gave
            // for a block with the same sums (weak-equal, then strong and partner agree,
            // if that was computed); the answer is the block's own in the same form.
            type Verdict = (bool, Option<bool>);
            let mut check =
                |i: usize, like: Option<Verdict>, ws: &mut Workspace, out: &mut Hints| {
                    let w = match like {
                        Some((w, _)) => w,
                        None => i < p.n && weak_equal(blocks, p.seq, i, k1, k2),
                    };
                    let known = like.and_then(|l| l.1);
                    if !w {
                        return (false, (false, None));
                    }
                    if ws.is_presumed(i) {
                        presumed_only = !weak;
                        return (false, (true, known));
                    }
                    if !weak {
                        weak = true;
                        presumed_only = false;
                        out.stops.push(Stop { pos: x, k1, k2 });
                    }
                    let agree = known.unwrap_or_else(|| {
                        let m0 =
                            *md0.get_or_insert_with(|| digest(&mut ws.dg, &mut out.digests, off));
                        if !blocks.strong_is(i, &m0) {
                            return false;
                        }
                        if !seq2 {
                            return true;
                        }
                        // A run of matches probably continues: hash ahead.
                        ws.dg.run_next = x + bs as u64;
                        let m1 = *md1
                            .get_or_insert_with(|| digest(&mut ws.dg, &mut out.digests, off + bs));
                        p.partner_matches(blocks, i, &m1)
                    });
                    (agree, (true, Some(agree)))
                };
            if let Some(e) = expected {
                if check(e, None, ws, out).0 {
                    hits.push(e as u32);
                }
            }
            // A guessed match also makes the matcher find every other block with the same
            // sums there (duplicates): once per bucket and content, look for them.
            let expand = if hits.is_empty() {
                expected.is_none() || index.admits(k1, k2)
            } else {
                // The window's digest is among the last two computed (then its partner's).
                let d0 = out.digests.iter().rev().take(2).find(|d| d.0 == x);
                match d0 {
                    Some(&(_, d)) => index.entries(h).len() > 1 && expanded.insert((h, d)),
                    None => false,
                }
            };
            if expand {
                examined += index.entries(h).len();
                // A run of duplicate blocks shares the first one's verdict.
                let same = index.same_as_previous(h);
                let wh = hash(k1, k2);
                let mut last: Option<Verdict> = None;
                let bucket = index.entries(h).iter().zip(index.entry_hashes(h));
                for (k, (&i, &eh)) in bucket.enumerate() {
                    if Some(i as usize) == expected {
                        last = None;
                        continue;
                    }
                    if eh != wh {
                        // Not the window's weak sums (a run of duplicates shares this).
                        last = Some((false, None));
                        continue;
                    }
                    let like = last.filter(|_| same.get(k).copied().unwrap_or(false));
                    let (hit, verdict) = check(i as usize, like, ws, out);
                    last = Some(verdict);
                    if hit {
                        hits.push(i);
                    }
                }
            }
            if !weak && presumed_only {
                // Only presumed blocks have these sums: thin the filter so that their
                // windows are passed over from now on.
                let (w, range, bits) = index.filter_bits(h, |i| !ws.is_presumed(i as usize));
                let thinned = (ws.filter[w] & !range) | bits;
                if ws.filter[w] != thinned {
                    ws.filter[w] = thinned;
                    // If they are all known, for good (bits only ever leave the lasting
                    // filter, so workers thinning it at once lose nothing).
                    let known = |i: u32| known[i as usize / 64] >> (i % 64) & 1 == 1;
                    let (_, _, bits) = index.filter_bits(h, |i| !known(i));
                    let old = lasting[w].fetch_and(!range | bits, Ordering::Relaxed);
                    if ws.filter[w] != old & (!range | bits) {
                        ws.touched.push(w);
                    }
                }
            }
            if out.stops.len() > max_stops
                || out.digests.len() > max_digests
                || examined > max_examined
            {
                close(out, from, x + 1);
                from = len;
                break;
            }
            if let Some(&i) = hits.first() {
                // Guess that the matcher takes this match: jump a block, leaving a gap. It
                // would also find every other block here with the same sums.
                close(out, from, x + 1);
                for &j in &hits {
                    let j = j as usize;
                    if !ws.is_presumed(j) {
                        ws.presumed[j / 64] |= 1 << (j % 64);
                        out.presumed.push(j as u32);
                    }
                }
                off += bs;
                from = off;
                look = p.next_look(off);
                ws.dg.run_next = base + off as u64;
                rolled = false;
                expect = Some(i as usize + 1);
                if seq2 {
                    r0 = r1;
                }
                continue;
            }
            p.roll(buf, off, &mut r0, &mut r1);
            off += 1;
        }
        if from < len {
            close(out, from, base + len as u64);
        }
        out.digests.sort_unstable_by_key(|d| d.0);
        out.digests.dedup_by_key(|d| d.0);
    }
}
