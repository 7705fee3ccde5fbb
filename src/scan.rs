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
    bits: u32,
    /// Bucket `h` holds `entries[start[h] .. start[h] + live[h]]`, ascending block numbers.
    start: Vec<u32>,
    live: Vec<u32>,
    entries: Vec<u32>,
    /// One bit per bucket: set while the bucket may hold a block that is not yet known.
    filter: Vec<u64>,
}

#[inline(always)]
fn hash(k1: u32, k2: u32, bits: u32) -> usize {
    ((u64::from(k1) << 32 | u64::from(k2)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits))
        as usize
}

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
    #[inline(never)]
    fn skip<const SEQ2: bool>(
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
        let (mut a0, mut b0) = (r0.a, r0.b);
        let (mut a1, mut b1) = (r1.a, r1.b);
        let mut i = 0;
        while i < n {
            let k1 = ((u32::from(a0) << 16) | u32::from(b0)) & self.mask;
            let k2 = if SEQ2 {
                ((u32::from(a1) << 16) | u32::from(b1)) & self.mask
            } else {
                0
            };
            let h = hash(k1, k2, self.hash_bits);
            if self.bits[h / 64] >> (h % 64) & 1 == 1 {
                break;
            }
            let old = out0[i];
            let mid = in0[i];
            a0 = a0.wrapping_add(u16::from(mid)).wrapping_sub(u16::from(old));
            b0 = b0.wrapping_add(a0).wrapping_sub(shl16(old, self.shift));
            if SEQ2 {
                let new = in1[i];
                a1 = a1.wrapping_add(u16::from(new)).wrapping_sub(u16::from(mid));
                b1 = b1.wrapping_add(a1).wrapping_sub(shl16(mid, self.shift));
            }
            i += 1;
        }
        *r0 = Rsum { a: a0, b: b0 };
        *r1 = Rsum { a: a1, b: b1 };
        off + i
    }
}

/// `byte << shift` mod 2^16 (0 from a shift of 16 up).
#[inline(always)]
fn shl16(byte: u8, shift: u32) -> u16 {
    (u32::from(byte) << shift.min(16)) as u16
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
            .clamp(10, 30);
        let nb = 1usize << bits;
        let key2 = |i: usize| -> u32 {
            if seq == 2 {
                // Block N is a phantom with zero checksums (SPEC §3.2.1).
                blocks.weak.get(i + 1).copied().unwrap_or(0)
            } else {
                0
            }
        };
        let hashes: Vec<u32> = (0..n)
            .map(|i| hash(blocks.weak[i], key2(i), bits) as u32)
            .collect();
        let mut live = vec![0u32; nb];
        for &b in &hashes {
            live[b as usize] += 1;
        }
        let mut start = vec![0u32; nb];
        let mut acc = 0u32;
        for (s, &c) in start.iter_mut().zip(&live) {
            *s = acc;
            acc += c;
        }
        let mut fill = start.clone();
        let mut entries = vec![0u32; n];
        for (i, &b) in hashes.iter().enumerate() {
            entries[fill[b as usize] as usize] = i as u32;
            fill[b as usize] += 1;
        }
        let mut filter = vec![0u64; nb.div_ceil(64)];
        for (b, &c) in live.iter().enumerate() {
            if c > 0 {
                filter[b / 64] |= 1 << (b % 64);
            }
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
                hash_bits: self.index.bits,
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
            let h = hash(k1, k2, self.index.bits);
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
            w += 1;
            let weak_ok = self.blocks.weak[i as usize] == k1
                && (self.seq == 1
                    || self.blocks.weak.get(i as usize + 1).copied().unwrap_or(0) == k2);
            if weak_ok {
                cands.push(i);
            }
        }
        let new_live = w - start;
        self.index.live[h] = new_live as u32;
        if new_live == 0 {
            self.index.filter[h / 64] &= !(1 << (h % 64));
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
        if self.blocks.algorithm != crate::strong::StrongHash::Md4 {
            // zsync 0.8 files may use another algorithm (no multi-buffer path for those).
            return self
                .blocks
                .algorithm
                .digest_padded(&win[..self.bs], self.bs);
        }
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&self.md4_at(win, x));
        out
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
