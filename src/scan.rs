//! Scanning a seed for blocks of the target: the matching algorithm of zsync's librcksum,
//! reproduced so that the reuse list is exactly the reference's (SPEC §3.2).
//!
//! The seed is read once, front to back. At each position the rolling checksum of the
//! window is looked up in an index of the target's blocks (a bucket-occupancy bit filter
//! first, so most positions cost a few instructions); weak hits are confirmed with the
//! strong checksum. A match marks the block known and the scan jumps past it.

use std::io::Read;

use crate::control::{BlockSums, ControlFile};
use crate::known::KnownSet;
use crate::make::read_full;
use crate::rsum::Rsum;
use crate::strong;

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

/// Index of the target blocks by rolling checksum.
struct Index {
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
}

/// Multipliers of the bucket hash (odd; the AVX2 filter loop computes the same function).
const HASH_MUL1: u32 = 0x9E37_79B1;
const HASH_MUL2: u32 = 0x85EB_CA77;

/// Hash of a window key (`k2` = 0 unless seq = 2), multiplicative. Its top bits choose the
/// bucket, and more of its top bits the bit of the filter, so every filter bit belongs to
/// exactly one bucket.
#[inline(always)]
fn hash(k1: u32, k2: u32) -> u32 {
    k1.wrapping_mul(HASH_MUL1) ^ k2.wrapping_mul(HASH_MUL2)
}

/// Digests of this many recently hashed windows are kept with their content.
const RECENT_WINDOWS: usize = 4;
/// Largest block size for which recent windows are kept.
const MAX_RECENT_WINDOW: usize = 1 << 16;

/// Filter bits per bucket, as a power of two: 64 bits (one word), i.e. 128 bits per target
/// block, so a window that matches no block passes the filter with a probability of at
/// most 1/128 (16 bytes per block; fewer bits measured slower on real pairs).
const FILTER_EXTRA_BITS: u32 = 6;
const _: () = assert!(
    FILTER_EXTRA_BITS <= 6,
    "a bucket's filter bits must fit one word"
);

/// What the hot loop needs to reject a window: the bucket-occupancy bits and the hash.
struct Filter<'a> {
    bits: &'a [u64],
    hash_bits: u32,
    mask: u32,
    bs: usize,
    shift: u32,
}

impl Filter<'_> {
    /// Roll the window from `off` until the filter admits it (returns that offset, with
    /// `r0`/`r1` the sums of the windows there) or `end` is reached (returns `end`). Needs
    /// `buf[..end + seq·B]`.
    fn skip<const SEQ2: bool>(
        &self,
        buf: &[u8],
        off: usize,
        end: usize,
        r0: &mut Rsum,
        r1: &mut Rsum,
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            if end - off >= 32 && std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { self.skip_avx2::<SEQ2>(buf, off, end, r0, r1) };
            }
        }
        self.skip_plain::<SEQ2>(buf, off, end, r0, r1)
    }

    /// The plain implementation of [`Filter::skip`], one position at a time.
    #[inline(never)]
    fn skip_plain<const SEQ2: bool>(
        &self,
        buf: &[u8],
        off: usize,
        end: usize,
        r0: &mut Rsum,
        r1: &mut Rsum,
    ) -> usize {
        let bs = self.bs;
        let n = end - off;
        let out0 = &buf[off..end];
        let in0 = &buf[off + bs..off + bs + n];
        let in1 = if SEQ2 {
            &buf[off + 2 * bs..off + 2 * bs + n]
        } else {
            in0
        };
        let mut i = 0;
        while i < n {
            let k1 = r0.packed() & self.mask;
            let k2 = if SEQ2 { r1.packed() & self.mask } else { 0 };
            let h = (hash(k1, k2) >> (32 - self.hash_bits)) as usize;
            if self.bits[h / 64] >> (h % 64) & 1 == 1 {
                break;
            }
            r0.roll(out0[i], in0[i], self.shift);
            if SEQ2 {
                r1.roll(in0[i], in1[i], self.shift);
            }
            i += 1;
        }
        off + i
    }
}

#[cfg(target_arch = "x86_64")]
impl Filter<'_> {
    /// [`Filter::skip`] sixteen positions at a time: the rolling sums of the next 16 windows
    /// are prefix sums (16-bit lanes, exact mod 2^16), their bucket bits are gathered, and
    /// the first admitted position, if any, is reached with the plain loop.
    #[target_feature(enable = "avx2")]
    unsafe fn skip_avx2<const SEQ2: bool>(
        &self,
        buf: &[u8],
        off: usize,
        end: usize,
        r0: &mut Rsum,
        r1: &mut Rsum,
    ) -> usize {
        use std::arch::x86_64::*;
        let bs = self.bs;
        // Every load below reads buf[pos .. pos + 16 + seq·B], pos + 16 <= end.
        assert!(end + if SEQ2 { 2 * bs } else { bs } <= buf.len());
        let shift = _mm_cvtsi32_si128(self.shift.min(16) as i32);
        let mask = _mm256_set1_epi32(self.mask as i32);
        let mul1 = _mm256_set1_epi32(HASH_MUL1 as i32);
        let mul2 = _mm256_set1_epi32(HASH_MUL2 as i32);
        let down = _mm_cvtsi32_si128(32 - self.hash_bits as i32);
        let low5 = _mm256_set1_epi32(31);
        let words = self.bits.as_ptr() as *const i32;
        let mut pos = off;
        let mut s0 = *r0;
        let mut s1 = *r1;
        while pos + 16 <= end {
            let load = |at: usize| {
                _mm256_cvtepu8_epi16(_mm_loadu_si128(buf.as_ptr().add(at) as *const __m128i))
            };
            let out0 = load(pos);
            let in0 = load(pos + bs);
            let (a0, b0, na0, nb0) = windows16(s0, out0, in0, shift);
            let k1 = keys(a0, b0, mask);
            let (k2, next1) = if SEQ2 {
                let in1 = load(pos + 2 * bs);
                let (a1, b1, na1, nb1) = windows16(s1, in0, in1, shift);
                (keys(a1, b1, mask), Rsum { a: na1, b: nb1 })
            } else {
                ((_mm256_setzero_si256(), _mm256_setzero_si256()), s1)
            };
            // Two vectors of 8 keys: lanes [0-3, 8-11] and [4-7, 12-15].
            let mut hits = 0u32;
            for (half, (ka, kb)) in [(k1.0, k2.0), (k1.1, k2.1)].into_iter().enumerate() {
                let h = _mm256_srl_epi32(
                    _mm256_xor_si256(_mm256_mullo_epi32(ka, mul1), _mm256_mullo_epi32(kb, mul2)),
                    down,
                );
                let w = _mm256_i32gather_epi32::<4>(words, _mm256_srli_epi32::<5>(h));
                let bit = _mm256_srlv_epi32(w, _mm256_and_si256(h, low5));
                let set = _mm256_slli_epi32::<31>(bit);
                let m = _mm256_movemask_ps(_mm256_castsi256_ps(set)) as u32;
                // Bits 0-3 are positions 4·half + 0..4, bits 4-7 positions 8 + 4·half + 0..4.
                hits |= (m & 0xf) << (4 * half) | (m >> 4) << (8 + 4 * half);
            }
            if hits != 0 {
                // Reach the first admitted position with the plain loop (fewer than 16 steps).
                *r0 = s0;
                *r1 = s1;
                let first = pos + hits.trailing_zeros() as usize;
                let got = self.skip_plain::<SEQ2>(buf, pos, first + 1, r0, r1);
                debug_assert_eq!(got, first);
                return got;
            }
            s0 = Rsum { a: na0, b: nb0 };
            s1 = next1;
            pos += 16;
        }
        *r0 = s0;
        *r1 = s1;
        self.skip_plain::<SEQ2>(buf, pos, end, r0, r1)
    }
}

/// Rolling sums of the 16 windows at positions p..p+16 (lanes), given the sums `s` of the
/// window at p, the bytes leaving (`out`) and entering (`inn`) at each step; also the sums
/// of the window at p + 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn windows16(
    s: Rsum,
    out: std::arch::x86_64::__m256i,
    inn: std::arch::x86_64::__m256i,
    shift: std::arch::x86_64::__m128i,
) -> (
    std::arch::x86_64::__m256i,
    std::arch::x86_64::__m256i,
    u16,
    u16,
) {
    use std::arch::x86_64::*;
    let a = _mm256_set1_epi16(s.a as i16);
    let b = _mm256_set1_epi16(s.b as i16);
    let d = _mm256_sub_epi16(inn, out);
    let pd = prefix16(d); // a(p+j+1) - a(p)
    let e = _mm256_sub_epi16(_mm256_add_epi16(a, pd), _mm256_sll_epi16(out, shift));
    let pe = prefix16(e); // b(p+j+1) - b(p)
    let aw = _mm256_add_epi16(a, _mm256_sub_epi16(pd, d));
    let bw = _mm256_add_epi16(b, _mm256_sub_epi16(pe, e));
    let last = |v: __m256i| _mm256_extract_epi16::<15>(v) as u16;
    (
        aw,
        bw,
        s.a.wrapping_add(last(pd)),
        s.b.wrapping_add(last(pe)),
    )
}

/// Inclusive prefix sums of 16 lanes of u16 (mod 2^16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn prefix16(mut x: std::arch::x86_64::__m256i) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    x = _mm256_add_epi16(x, _mm256_slli_si256::<2>(x));
    x = _mm256_add_epi16(x, _mm256_slli_si256::<4>(x));
    x = _mm256_add_epi16(x, _mm256_slli_si256::<8>(x));
    // Carry the low half's total (lane 7) into every lane of the high half.
    let low_in_high = _mm256_permute2x128_si256::<0x08>(x, x);
    let lane7 = _mm256_shufflehi_epi16::<0xff>(low_in_high);
    _mm256_add_epi16(x, _mm256_unpackhi_epi64(lane7, lane7))
}

/// `(a << 16 | b) & mask` as two vectors of 8 u32: lanes [0-3, 8-11] and [4-7, 12-15].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn keys(
    a: std::arch::x86_64::__m256i,
    b: std::arch::x86_64::__m256i,
    mask: std::arch::x86_64::__m256i,
) -> (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i) {
    use std::arch::x86_64::*;
    (
        _mm256_and_si256(_mm256_unpacklo_epi16(b, a), mask),
        _mm256_and_si256(_mm256_unpackhi_epi16(b, a), mask),
    )
}

/// The matcher for one target; it keeps the set of known blocks across several seeds.
pub struct Matcher<'c> {
    blocks: &'c BlockSums,
    length: u64,
    bs: usize,
    shift: u32,
    seq: usize,
    n: usize,
    mask: u32,
    index: Index,
    known: KnownSet,
    reuse: Vec<Reuse>,
    next_match: Option<usize>,
    cached_nk: usize,
    cands: Vec<u32>,
    /// Seed offset right after the last match: where a run of matches would continue.
    run_next: u64,
    /// MD4s of the windows at `md4_cache_at + k·B`, `k < md4_cache_len`, in the current seed.
    md4_cache: [[u8; 16]; 8],
    md4_cache_at: u64,
    md4_cache_len: usize,
    /// Recently hashed windows and their digests (content-addressed; see `digest_at`).
    recent: Vec<(Vec<u8>, [u8; 32])>,
}

impl<'c> Matcher<'c> {
    /// A matcher for the target described by `control`, with nothing known yet.
    pub fn new(control: &'c ControlFile) -> Self {
        let h = &control.header;
        let blocks = &control.blocks;
        let n = blocks.len();
        let seq = usize::from(h.hash_lengths.seq_matches);
        let mask = BlockSums::weak_mask(h.hash_lengths.rsum_bytes);
        let bits = (n.max(1) * 2)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(10, 32 - FILTER_EXTRA_BITS);
        let fbits = bits + FILTER_EXTRA_BITS;
        let nb = 1usize << bits;
        let key2 = |i: usize| -> u32 {
            if seq == 2 {
                // Block N is a phantom with zero checksums (SPEC §3.2.1).
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
            let f = (h >> (32 - fbits)) as usize;
            filter[f / 64] |= 1 << (f % 64);
        }
        Matcher {
            blocks,
            length: h.length,
            bs: h.blocksize as usize,
            shift: h.blocksize.trailing_zeros(),
            seq,
            n,
            mask,
            index: Index {
                bits,
                fbits,
                hashes: entry_hashes,
                start,
                live,
                entries,
                filter,
            },
            known: KnownSet::new(n),
            reuse: Vec::new(),
            next_match: None,
            cached_nk: n,
            cands: Vec::new(),
            run_next: u64::MAX,
            md4_cache: [[0; 16]; 8],
            md4_cache_at: 0,
            md4_cache_len: 0,
            recent: Vec::new(),
        }
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
    pub fn scan(&mut self, seed: &mut dyn Read) -> std::io::Result<u64> {
        self.next_match = None;
        self.run_next = u64::MAX;
        self.md4_cache_len = 0;
        let bs = self.bs;
        let ctx = self.seq * bs;
        let chunk = (16 * bs).max(1 << 20);
        // buf holds seed bytes [base, base + buf.len()); after EOF, ctx zero bytes follow.
        let mut buf: Vec<u8> = Vec::with_capacity(chunk + 2 * ctx);
        let mut base: u64 = 0;
        let mut eof = false;
        let mut seed_len: u64 = 0;
        let mut x: u64 = 0;
        // Rolling sums of the windows at x and x + bs, valid when `rolled` is true.
        let mut r0 = Rsum::default();
        let mut r1 = Rsum::default();
        let mut rolled = false;
        loop {
            // Ensure buf covers [x, x + ctx] (one byte more than the windows, for rolling).
            let off = (x - base) as usize;
            if !eof && off + ctx + 1 > buf.len() {
                // Keep the unexamined tail, then read behind it.
                buf.drain(..off);
                base = x;
                let have = buf.len();
                buf.resize(have.max(chunk + ctx + 1), 0);
                let got = have + read_full(seed, &mut buf[have..])?;
                buf.truncate(got);
                if got < chunk + ctx + 1 {
                    eof = true;
                    seed_len = base + got as u64;
                    buf.resize(got + ctx + 1, 0);
                }
                continue;
            }
            if eof && x >= seed_len {
                break;
            }
            if self.known.is_full() && self.next_match.is_none() {
                // Nothing can be written any more (SPEC §3.2.4 only writes unknown blocks
                // outside seq=2 continuation).
                if eof {
                    break;
                }
                // Skip the rest of the seed without looking at it.
                let off = (x - base) as usize;
                x += (buf.len() - off) as u64;
                let mut sink = [0u8; 1 << 16];
                loop {
                    let k = read_full(seed, &mut sink)?;
                    x += k as u64;
                    if k < sink.len() {
                        break;
                    }
                }
                return Ok(x);
            }
            let limit = if eof {
                seed_len
            } else {
                base + (buf.len() - ctx - 1) as u64 + 1
            };
            // Positions x < limit can be examined and rolled with the bytes in buf.
            let off = (x - base) as usize;
            if !rolled {
                r0 = Rsum::of(&buf[off..off + bs]);
                if self.seq == 2 {
                    r1 = Rsum::of(&buf[off + bs..off + 2 * bs]);
                }
                rolled = true;
            }
            let mut step = 0usize;
            if self.seq == 2 {
                if let Some(nm) = self.next_match {
                    if self.check_continuation(&buf[off..], x, r0, nm) > 0 {
                        step = 1;
                    }
                }
            }
            if step == 0 {
                step = self.roll_until_match(&buf, base, &mut x, limit, &mut r0, &mut r1);
            }
            if step > 0 {
                x += (step * bs) as u64;
                rolled = false;
            }
        }
        Ok(seed_len)
    }

    /// The hot loop: advance x one byte at a time until a candidate matches (returns seq)
    /// or x reaches `limit` (returns 0).
    fn roll_until_match(
        &mut self,
        buf: &[u8],
        base: u64,
        x: &mut u64,
        limit: u64,
        r0: &mut Rsum,
        r1: &mut Rsum,
    ) -> usize {
        let mut off = (*x - base) as usize;
        let end = (limit - base) as usize;
        while off < end {
            let f = Filter {
                bits: &self.index.filter,
                hash_bits: self.index.fbits,
                mask: self.mask,
                bs: self.bs,
                shift: self.shift,
            };
            off = if self.seq == 2 {
                f.skip::<true>(buf, off, end, r0, r1)
            } else {
                f.skip::<false>(buf, off, end, r0, r1)
            };
            if off >= end {
                break;
            }
            let k1 = r0.packed() & self.mask;
            let k2 = if self.seq == 2 {
                r1.packed() & self.mask
            } else {
                0
            };
            let h = (hash(k1, k2) >> (32 - self.index.bits)) as usize;
            let xx = base + off as u64;
            if self.lookup_and_check(h, k1, k2, &buf[off..], xx) {
                *x = xx;
                return self.seq;
            }
            r0.roll(buf[off], buf[off + self.bs], self.shift);
            if self.seq == 2 {
                r1.roll(buf[off + self.bs], buf[off + 2 * self.bs], self.shift);
            }
            off += 1;
        }
        *x = base + end as u64;
        0
    }

    /// Collect the not-yet-known blocks of bucket `h` whose stored sums equal the window's,
    /// compacting known blocks out of the bucket; then CHECK them.
    fn lookup_and_check(&mut self, h: usize, k1: u32, k2: u32, win: &[u8], x: u64) -> bool {
        let start = self.index.start[h] as usize;
        let live = self.index.live[h] as usize;
        let mut cands = std::mem::take(&mut self.cands);
        cands.clear();
        let mut w = start;
        for r in start..start + live {
            let i = self.index.entries[r];
            if self.known.contains(i as usize) {
                continue;
            }
            self.index.entries[w] = i;
            self.index.hashes[w] = self.index.hashes[r];
            w += 1;
            let weak_ok = self.blocks.weak[i as usize] == k1
                && (self.seq == 1
                    || self.blocks.weak.get(i as usize + 1).copied().unwrap_or(0) == k2);
            if weak_ok {
                cands.push(i);
            }
        }
        let new_live = w - start;
        if new_live < live {
            // Known blocks left the bucket: its filter bits now show only the others.
            self.index.live[h] = new_live as u32;
            let per = 1usize << FILTER_EXTRA_BITS;
            let first = h * per;
            let range_mask = (u64::MAX >> (64 - per)) << (first % 64);
            self.index.filter[first / 64] &= !range_mask;
            for &hh in &self.index.hashes[start..w] {
                let f = (hh >> (32 - self.index.fbits)) as usize;
                self.index.filter[f / 64] |= 1 << (f % 64);
            }
        }
        let hit = !cands.is_empty() && self.check_cands(win, x, &cands) > 0;
        self.cands = cands;
        hit
    }

    fn check_cands(&mut self, win: &[u8], x: u64, cands: &[u32]) -> usize {
        self.next_match = None;
        let mut total = 0;
        let mut md0: Option<[u8; 32]> = None;
        let mut md1: Option<[u8; 32]> = None;
        let bs = self.bs;
        let cb = self.blocks.strong_len;
        for &i in cands {
            let i = i as usize;
            if self.known.contains(i) {
                continue;
            }
            let m0 = match md0 {
                Some(m) => m,
                None => *md0.insert(self.digest_at(win, x)),
            };
            if m0[..cb] != *self.blocks.strong(i) {
                continue;
            }
            let k = if self.seq == 2 {
                let m1 = match md1 {
                    Some(m) => m,
                    None => *md1.insert(self.digest_at(&win[bs..], x + bs as u64)),
                };
                // The partner may be the phantom block N, whose strong sum is all zeros.
                let want: &[u8] = if i + 1 < self.n {
                    self.blocks.strong(i + 1)
                } else {
                    &[0u8; 32][..cb]
                };
                if m1[..cb] != *want {
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

    /// MD4 of the window at seed offset `x` (`win` starts there). Inside a run of matches the
    /// next windows are probably needed too, so eight consecutive windows are hashed at once
    /// with the multi-buffer MD4 and cached.
    fn digest_at(&mut self, win: &[u8], x: u64) -> [u8; 32] {
        let bs = self.bs;
        // Repetitive data (zero runs, repeated records) offers the same window content at
        // many offsets: reuse the digest of an identical recent window.
        if bs <= MAX_RECENT_WINDOW {
            if let Some((_, d)) = self.recent.iter().find(|(w, _)| w[..] == win[..bs]) {
                return *d;
            }
        }
        let d = if self.blocks.algorithm != crate::strong::StrongHash::Md4 {
            // zsync 0.8 files may use another algorithm (no multi-buffer path for those).
            self.blocks.algorithm.digest_padded(&win[..bs], bs)
        } else {
            let mut out = [0u8; 32];
            out[..16].copy_from_slice(&self.md4_at(win, x));
            out
        };
        if bs <= MAX_RECENT_WINDOW {
            if self.recent.len() == RECENT_WINDOWS {
                self.recent.remove(0);
            }
            self.recent.push((win[..bs].to_vec(), d));
        }
        d
    }

    fn md4_at(&mut self, win: &[u8], x: u64) -> [u8; 16] {
        let bs = self.bs as u64;
        if x >= self.md4_cache_at && (x - self.md4_cache_at) % bs == 0 {
            let k = ((x - self.md4_cache_at) / bs) as usize;
            if k < self.md4_cache_len {
                return self.md4_cache[k];
            }
        }
        if x == self.run_next && self.bs % 64 == 0 && win.len() >= 8 * self.bs {
            if let Some(d) = crate::md4x8::md4_x8(&win[..8 * self.bs], self.bs) {
                self.md4_cache = d;
                self.md4_cache_at = x;
                self.md4_cache_len = 8;
                return d[0];
            }
        }
        strong::md4(&win[..self.bs])
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
    fn check_continuation(&mut self, win: &[u8], x: u64, r0: Rsum, i: usize) -> usize {
        self.next_match = None;
        if i >= self.n {
            return 0;
        }
        if self.blocks.weak[i] != r0.packed() & self.mask {
            return 0;
        }
        let cb = self.blocks.strong_len;
        if self.digest_at(win, x)[..cb] != *self.blocks.strong(i) {
            return 0;
        }
        let nk = self.cached_nk;
        self.write_found(i, 1, nk, x, false)
    }

    fn write(&mut self, first: usize, last: usize, src: u64) {
        let bs = self.bs as u64;
        self.run_next = src + (last - first + 1) as u64 * bs;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 filter loop stops at exactly the same position with the same sums as the
    /// plain loop, for every seq, block size (shift), mask and filter density.
    #[test]
    fn fast_skip_equals_plain_skip() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let data: Vec<u8> = (0..20_000)
            .map(|i| if i % 3000 < 700 { 0 } else { next() as u8 })
            .collect();
        for &bs in &[1usize, 2, 8, 32, 1024, 4096] {
            for &mask in &[0xffff_ffffu32, 0x00ff_ffff, 0xffff] {
                for &density in &[0u64, 1, 8, 64] {
                    let hash_bits = 12;
                    let mut bits = vec![0u64; (1 << hash_bits) / 64];
                    for w in bits.iter_mut() {
                        for b in 0..64 {
                            if next() % 1024 < density {
                                *w |= 1 << b;
                            }
                        }
                    }
                    let f = Filter {
                        bits: &bits,
                        hash_bits,
                        mask,
                        bs,
                        shift: bs.trailing_zeros(),
                    };
                    for seq2 in [false, true] {
                        let ctx = if seq2 { 2 * bs } else { bs };
                        let mut off = (next() % 100) as usize;
                        let end = data.len() - ctx - 1;
                        let mut p0 = Rsum::of(&data[off..off + bs]);
                        let mut p1 =
                            Rsum::of(&data[off + bs..off + 2 * bs.min((data.len() - off) / 2)]);
                        if seq2 {
                            p1 = Rsum::of(&data[off + bs..off + 2 * bs]);
                        }
                        let (mut f0, mut f1) = (p0, p1);
                        while off < end {
                            let (plain, fast) = if seq2 {
                                (
                                    f.skip_plain::<true>(&data, off, end, &mut p0, &mut p1),
                                    f.skip::<true>(&data, off, end, &mut f0, &mut f1),
                                )
                            } else {
                                (
                                    f.skip_plain::<false>(&data, off, end, &mut p0, &mut p1),
                                    f.skip::<false>(&data, off, end, &mut f0, &mut f1),
                                )
                            };
                            assert_eq!(
                                plain, fast,
                                "bs {bs} mask {mask:x} density {density} seq2 {seq2}"
                            );
                            assert_eq!(p0, f0);
                            if seq2 {
                                assert_eq!(p1, f1);
                            }
                            if plain < end {
                                assert_eq!(
                                    p0,
                                    Rsum::of(&data[plain..plain + bs]),
                                    "sums are those of the window"
                                );
                                // Step past the admitted position, as the matcher does.
                                p0.roll(data[plain], data[plain + bs], bs.trailing_zeros());
                                if seq2 {
                                    p1.roll(
                                        data[plain + bs],
                                        data[plain + 2 * bs],
                                        bs.trailing_zeros(),
                                    );
                                }
                                f0 = p0;
                                f1 = p1;
                            }
                            off = plain + 1;
                        }
                    }
                }
            }
        }
    }
}
