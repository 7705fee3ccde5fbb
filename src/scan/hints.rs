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

use crate::control::BlockSums;
use crate::rsum::Rsum;

use super::digest::{Digest, Digester};
use super::index::{weak_equal, Index};
use super::Params;

/// A seed position whose window keys equal the weak sums of some block.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stop {
    pub(super) pos: u64,
    pub(super) k1: u32,
    pub(super) k2: u32,
}

/// What a worker found in one chunk. Offsets are seed offsets.
#[derive(Default, Debug)]
pub(super) struct Hints {
    /// Ascending, disjoint `[from, to)` stretches in which every stop is listed.
    pub(super) covered: Vec<(u64, u64)>,
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
}

impl Speculator<'_> {
    /// Compute the hints for positions `[base, base + len)` of a seed into `out`; `buf` holds
    /// the seed bytes from `base`, at least `len + seq·B + 1` of them (zeros past the end).
    pub(super) fn hints(
        &self,
        dg: &mut Digester,
        buf: &[u8],
        base: u64,
        len: usize,
        out: &mut Hints,
    ) {
        let Speculator { p, blocks, index } = *self;
        out.clear();
        let bs = p.bs;
        let seq2 = p.seq == 2;
        assert!(buf.len() > len + p.seq * bs);
        // Pathological input (a weak collision at most positions) would make the lists huge:
        // past this many entries the rest of the chunk is left to the matcher.
        let budget = len / 16 + 64;
        let f = index.filter(p.mask, bs, p.shift);
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
        let (mut r0, mut r1) = (Rsum::default(), Rsum::default());
        let mut rolled = false;
        let mut off = 0;
        let mut from = 0;
        // After a guessed match of block i, the window a block further probably holds block
        // i + 1: it is examined first, without the filter and the bucket.
        let mut expect: Option<usize> = None;
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
                off = if seq2 {
                    f.skip::<true>(buf, off, len, &mut r0, &mut r1)
                } else {
                    f.skip::<false>(buf, off, len, &mut r0, &mut r1)
                };
                if off >= len {
                    break;
                }
            }
            let k1 = r0.packed() & p.mask;
            let k2 = if seq2 { r1.packed() & p.mask } else { 0 };
            let x = base + off as u64;
            let mut weak = false;
            let mut hit = None;
            let (mut md0, mut md1): (Option<Digest>, Option<Digest>) = (None, None);
            let mut check = |i: usize, weak: &mut bool, dg: &mut Digester, out: &mut Hints| {
                if i >= p.n || !weak_equal(blocks, p.seq, i, k1, k2) {
                    return false;
                }
                if !*weak {
                    *weak = true;
                    out.stops.push(Stop { pos: x, k1, k2 });
                }
                let m0 = *md0.get_or_insert_with(|| digest(dg, &mut out.digests, off));
                if m0[..p.cb] != *blocks.strong(i) {
                    return false;
                }
                if !seq2 {
                    return true;
                }
                // A run of matches probably continues: hash ahead.
                dg.run_next = x + bs as u64;
                let m1 = *md1.get_or_insert_with(|| digest(dg, &mut out.digests, off + bs));
                if i + 1 < p.n {
                    m1[..p.cb] == *blocks.strong(i + 1)
                } else {
                    m1[..p.cb].iter().all(|&b| b == 0)
                }
            };
            if let Some(e) = expected {
                if check(e, &mut weak, dg, out) {
                    hit = Some(e);
                }
            }
            if hit.is_none() && (expected.is_none() || index.admits(k1, k2)) {
                for &i in index.entries(index.bucket(k1, k2)) {
                    if check(i as usize, &mut weak, dg, out) {
                        hit = Some(i as usize);
                        break;
                    }
                }
            }
            if out.stops.len() + out.digests.len() > budget {
                out.covered.push((base + from as u64, x + 1));
                from = len;
                break;
            }
            if let Some(i) = hit {
                // Guess that the matcher takes this match: jump a block, leaving a gap.
                out.covered.push((base + from as u64, x + 1));
                off += bs;
                from = off;
                dg.run_next = base + off as u64;
                rolled = false;
                expect = Some(i + 1);
                if seq2 {
                    r0 = r1;
                }
                continue;
            }
            r0.roll(buf[off], buf[off + bs], p.shift);
            if seq2 {
                r1.roll(buf[off + bs], buf[off + 2 * bs], p.shift);
            }
            off += 1;
        }
        if from < len {
            out.covered.push((base + from as u64, base + len as u64));
        }
        out.digests.sort_unstable_by_key(|d| d.0);
        out.digests.dedup_by_key(|d| d.0);
    }
}
