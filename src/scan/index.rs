//! The index of the target's blocks by rolling checksum: hash buckets and a bit filter.
//!
//! The matcher keeps a live index, from which blocks leave as they become known; the
//! speculative scan ([`super::hints`]) reads a frozen copy taken at the start of a seed.
//! Both give the same answer for blocks that are not yet known.

use crate::control::BlockSums;
use crate::known::KnownSet;

use super::filter::Filter;

/// Multipliers of the bucket hash (odd; the AVX2 filter loop computes the same function).
pub(super) const HASH_MUL1: u32 = 0x9E37_79B1;
pub(super) const HASH_MUL2: u32 = 0x85EB_CA77;

/// Filter bits per bucket, as a power of two: 32 bits (one 32-bit word, which the AVX2
/// loop gathers), i.e. 64 bits per target block. A block sets three bits of its bucket's
/// word (see [`filter_mask`]), so a window that matches no block passes the filter with a
/// probability of about 1/1500 (two bits let three times as many through, and each one
/// costs the lookup a few cache misses).
pub(super) const FILTER_EXTRA_BITS: u32 = 5;
const _: () = assert!(
    FILTER_EXTRA_BITS == 5,
    "filter_mask and the AVX2 loop take a bucket's bits as one 32-bit word"
);

/// The filter bits of a hash when the filter has `2^fbits` bits: the index of the `u64`
/// word that holds them and a mask of the three bits, all in the bucket's 32 bits (the
/// bucket is the hash's top `fbits - 5` bits). Hash bits 0-4 and 5-9 choose two of them,
/// five bits below the bucket's (see [`third_bit_at`]) the third; fixed places, so the
/// AVX2 loop shifts by constants. A window passes when all three are set.
#[inline(always)]
pub(super) fn filter_mask(hash: u32, fbits: u32) -> (usize, u64) {
    let bucket = (hash >> (32 + FILTER_EXTRA_BITS - fbits)) as usize;
    let bit0 = (bucket % 2) * 32;
    let bit = |at: u32| 1u64 << (bit0 + (hash >> at) as usize % 32);
    (bucket / 2, bit(0) | bit(5) | bit(third_bit_at(fbits)))
}

/// Where the hash bits that choose a window's third filter bit start: bits 10-14, or
/// lower when the bucket needs more than 17 bits. They then share bits with the second
/// five rather than with the bucket's: shared with the bucket's, they would be the same
/// for every window of the bucket (on the 1 GiB bench pair that let twice as many
/// windows through). From 2^23 buckets on, the second five share the bucket's too.
#[inline(always)]
pub(super) fn third_bit_at(fbits: u32) -> u32 {
    10.min(32 - fbits)
}

/// Hash of a window key (`k2` = 0 unless seq = 2), multiplicative. Its top bits choose the
/// bucket, and more of its top bits the bit of the filter, so every filter bit belongs to
/// exactly one bucket.
#[inline(always)]
pub(super) fn hash(k1: u32, k2: u32) -> u32 {
    k1.wrapping_mul(HASH_MUL1) ^ k2.wrapping_mul(HASH_MUL2)
}

/// Whether block `i`'s stored weak sums equal the window keys `k1` (and, for seq = 2, `k2`
/// against block `i + 1`, where block N is a phantom with zero sums; SPEC §3.2.1).
#[inline]
pub(super) fn weak_equal(blocks: &BlockSums, seq: usize, i: usize, k1: u32, k2: u32) -> bool {
    blocks.weak[i] == k1 && (seq == 1 || blocks.weak.get(i + 1).copied().unwrap_or(0) == k2)
}

/// Blocks bucketed by the hash of their weak sums, plus a filter of the hash's top bits.
#[derive(Clone)]
pub(super) struct Index {
    /// log2 of the number of buckets.
    bits: u32,
    /// log2 of the number of filter bits.
    fbits: u32,
    /// Hash of each entry (kept beside `entries`), to rebuild a bucket's filter bits.
    hashes: Vec<u32>,
    /// Bucket `h` holds `entries[start[h] .. start[h] + live[h]]`, ascending block numbers.
    start: Vec<u32>,
    live: Vec<u32>,
    entries: Vec<u32>,
    /// Bit `hash >> (32 - fbits)` is set while a block with that hash may still be unknown.
    filter: Vec<u64>,
    /// Beside `entries`, when marked (see [`Index::mark_duplicates`]): whether the entry's
    /// block has the same sums as the one before it in the bucket.
    same: Vec<bool>,
}

impl Index {
    /// The index of all `blocks`, keyed on one or two consecutive weak sums (`seq`).
    pub(super) fn new(blocks: &BlockSums, seq: usize) -> Index {
        let n = blocks.len();
        let bits = (n.max(1) * 2)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(10, 32 - FILTER_EXTRA_BITS);
        let fbits = bits + FILTER_EXTRA_BITS;
        let nb = 1usize << bits;
        let key2 = |i: usize| -> u32 {
            if seq == 2 {
                blocks.weak.get(i + 1).copied().unwrap_or(0)
            } else {
                0
            }
        };
        let hashes: Vec<u32> = (0..n).map(|i| hash(blocks.weak[i], key2(i))).collect();
        let mut live = vec![0u32; nb];
        for &h in &hashes {
            live[(h >> (32 - bits)) as usize] += 1;
        }
        let mut start = vec![0u32; nb];
        let mut acc = 0u32;
        for (s, &c) in start.iter_mut().zip(&live) {
            *s = acc;
            acc += c;
        }
        let mut fill = start.clone();
        let mut entries = vec![0u32; n];
        let mut entry_hashes = vec![0u32; n];
        let mut filter = vec![0u64; (1usize << fbits) / 64];
        for (i, &h) in hashes.iter().enumerate() {
            let b = (h >> (32 - bits)) as usize;
            entries[fill[b] as usize] = i as u32;
            entry_hashes[fill[b] as usize] = h;
            fill[b] += 1;
            let (w, m) = filter_mask(h, fbits);
            filter[w] |= m;
        }
        Index {
            bits,
            fbits,
            hashes: entry_hashes,
            start,
            live,
            entries,
            filter,
            same: Vec::new(),
        }
    }

    /// Mark the entries whose block has the same weak and strong sums as the entry before it
    /// in its bucket (for seq = 2 the next blocks' too): runs of duplicate blocks, which
    /// get the same answer from every window. Only for an index that stays as it is.
    pub(super) fn mark_duplicates(&mut self, blocks: &BlockSums, seq: usize) {
        let n = blocks.len();
        let sums_equal = |a: usize, b: usize| {
            blocks.weak[a] == blocks.weak[b] && blocks.strong(a) == blocks.strong(b)
        };
        // Block N is a phantom with zero sums: equal only to itself.
        let next_equal = |a: usize, b: usize| match (a + 1 < n, b + 1 < n) {
            (true, true) => sums_equal(a + 1, b + 1),
            (false, false) => true,
            _ => false,
        };
        let mut same = vec![false; self.entries.len()];
        for h in 0..self.start.len() {
            let s = self.start[h] as usize;
            let bucket = &self.entries[s..s + self.live[h] as usize];
            for (k, pair) in bucket.windows(2).enumerate() {
                let (a, b) = (pair[0] as usize, pair[1] as usize);
                same[s + k + 1] = sums_equal(a, b) && (seq == 1 || next_equal(a, b));
            }
        }
        self.same = same;
    }

    /// For each block of bucket `h` (as [`Index::entries`]), whether it has the same sums as
    /// the one before it; empty unless marked.
    #[inline]
    pub(super) fn same_as_previous(&self, h: usize) -> &[bool] {
        if self.same.is_empty() {
            return &[];
        }
        let s = self.start[h] as usize;
        &self.same[s..s + self.live[h] as usize]
    }

    /// The filter loop over this index's filter bits.
    pub(super) fn filter(&self, mask: u32, bs: usize, shift: u32) -> Filter<'_> {
        self.filter_over(&self.filter, mask, bs, shift)
    }

    /// The bucket of window keys `(k1, k2)`.
    #[inline]
    pub(super) fn bucket(&self, k1: u32, k2: u32) -> usize {
        (hash(k1, k2) >> (32 - self.bits)) as usize
    }

    /// The filter loop over `bits`, a copy of this index's filter words that its owner
    /// may have thinned (see [`Index::filter_bits`]).
    pub(super) fn filter_over<'a>(
        &self,
        bits: &'a [u64],
        mask: u32,
        bs: usize,
        shift: u32,
    ) -> Filter<'a> {
        Filter {
            bits,
            hash_bits: self.fbits,
            mask,
            bs,
            shift,
        }
    }

    /// The filter words.
    pub(super) fn filter_words(&self) -> &[u64] {
        &self.filter
    }

    /// The filter bits of bucket `h` as they would be with only the bucket's blocks for
    /// which `keep` holds: the index of the word that holds them, the mask of the bucket's
    /// bits in it, and those bits.
    pub(super) fn filter_bits(&self, h: usize, keep: impl Fn(u32) -> bool) -> (usize, u64, u64) {
        let per = 1usize << FILTER_EXTRA_BITS;
        let first = h * per;
        let range = (u64::MAX >> (64 - per)) << (first % 64);
        let s = self.start[h] as usize;
        let mut bits = 0u64;
        for k in s..s + self.live[h] as usize {
            if keep(self.entries[k]) {
                bits |= filter_mask(self.hashes[k], self.fbits).1;
            }
        }
        (first / 64, range, bits)
    }

    /// Whether the filter admits window keys `(k1, k2)`: false means no block with these
    /// weak sums is in the index.
    #[inline]
    pub(super) fn admits(&self, k1: u32, k2: u32) -> bool {
        let (w, m) = filter_mask(hash(k1, k2), self.fbits);
        self.filter[w] & m == m
    }

    /// The blocks in bucket `h`, ascending (known ones may not have left yet).
    #[inline]
    pub(super) fn entries(&self, h: usize) -> &[u32] {
        let s = self.start[h] as usize;
        &self.entries[s..s + self.live[h] as usize]
    }

    /// The hashes of the blocks of bucket `h` (as [`Index::entries`]): a block whose hash
    /// differs from a window's does not have its weak sums, and is passed over without
    /// touching its sums.
    #[inline]
    pub(super) fn entry_hashes(&self, h: usize) -> &[u32] {
        let s = self.start[h] as usize;
        &self.hashes[s..s + self.live[h] as usize]
    }

    /// Drop the known blocks from bucket `h`; when any left, its filter bits are rebuilt
    /// from the blocks that stay.
    pub(super) fn drop_known(&mut self, h: usize, known: &KnownSet) {
        // Duplicate runs are marked only in an index that stays as it is.
        debug_assert!(self.same.is_empty());
        let start = self.start[h] as usize;
        let live = self.live[h] as usize;
        let mut w = start;
        for r in start..start + live {
            let i = self.entries[r];
            if known.contains(i as usize) {
                continue;
            }
            self.entries[w] = i;
            self.hashes[w] = self.hashes[r];
            w += 1;
        }
        if w - start == live {
            return;
        }
        self.live[h] = (w - start) as u32;
        let (word, range, bits) = self.filter_bits(h, |_| true);
        self.filter[word] = (self.filter[word] & !range) | bits;
    }
}
