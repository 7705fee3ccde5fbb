//! The hot loop of the scan: roll the window over the seed until the bit filter admits a
//! window (its bucket may hold a block with the same weak sums). An AVX2 version steps
//! sixteen positions at a time; tests compare it with the plain loop.

use crate::rsum::Rsum;

use super::index::{filter_mask, hash, third_bit_at, HASH_MUL1, HASH_MUL2};

/// What the hot loop needs to reject a window: the bucket-occupancy bits and the hash.
pub(super) struct Filter<'a> {
    pub(super) bits: &'a [u64],
    pub(super) hash_bits: u32,
    pub(super) mask: u32,
    pub(super) bs: usize,
    pub(super) shift: u32,
}

impl Filter<'_> {
    /// Roll the window from `off` until the filter admits it (returns that offset, with
    /// `r0`/`r1` the sums of the windows there) or `end` is reached (returns `end`). Needs
    /// `buf[..end + seq·B]`.
    pub(super) fn skip<const SEQ2: bool>(
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

    /// [`Filter::skip`] for seq = 2 (`seq2`) or seq = 1.
    #[inline]
    pub(super) fn skip_seq(
        &self,
        seq2: bool,
        buf: &[u8],
        off: usize,
        end: usize,
        r0: &mut Rsum,
        r1: &mut Rsum,
    ) -> usize {
        if seq2 {
            self.skip::<true>(buf, off, end, r0, r1)
        } else {
            self.skip::<false>(buf, off, end, r0, r1)
        }
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
            let (w, m) = filter_mask(hash(k1, k2), self.hash_bits);
            if self.bits[w] & m == m {
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
        // 4-byte weak sums (the usual) need no mask.
        let mask = (self.mask != u32::MAX).then(|| _mm256_set1_epi32(self.mask as i32));
        let mul1 = _mm256_set1_epi32(HASH_MUL1 as i32);
        let mul2 = _mm256_set1_epi32(HASH_MUL2 as i32);
        // As `filter_mask`: the bucket's word, and the third bit's place in the hash.
        let down = _mm256_set1_epi32((32 + 5 - self.hash_bits) as i32);
        let at3 = _mm256_set1_epi32(third_bit_at(self.hash_bits) as i32);
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
            let (a0, b0, na0, nb0, mut steps) = windows16(s0, out0, in0, shift);
            let k1 = keys(a0, b0, mask);
            let (k2, next1, ab1) = if SEQ2 {
                let in1 = load(pos + 2 * bs);
                let (a1, b1, na1, nb1, steps1) = windows16(s1, in0, in1, shift);
                steps = _mm256_or_si256(steps, steps1);
                (keys(a1, b1, mask), Rsum { a: na1, b: nb1 }, (a1, b1))
            } else {
                let z = _mm256_setzero_si256();
                ((z, z), s1, (z, z))
            };
            // In a run of one byte value (zeros above all) no step changes the sums: the
            // sixteen windows are equal, and one scalar test replaces the gathers.
            if _mm256_testz_si256(steps, steps) == 1 {
                let k2 = if SEQ2 { s1.packed() & self.mask } else { 0 };
                let (w, m) = filter_mask(hash(s0.packed() & self.mask, k2), self.hash_bits);
                if self.bits[w] & m == m {
                    *r0 = s0;
                    *r1 = s1;
                    return pos;
                }
                s0 = Rsum { a: na0, b: nb0 };
                s1 = next1;
                pos += 16;
                // In a run of zeros the windows stay all-zero (and rejected) until a
                // non-zero byte enters: go there directly.
                let ctx = if SEQ2 { 2 * bs } else { bs };
                if s0 == Rsum::default()
                    && (!SEQ2 || s1 == Rsum::default())
                    && pos < end
                    && buf[pos..pos + ctx].iter().all(|&b| b == 0)
                {
                    let entering = &buf[pos + ctx..end + ctx];
                    let zeros = entering
                        .iter()
                        .position(|&b| b != 0)
                        .unwrap_or(entering.len());
                    pos += zeros;
                }
                continue;
            }
            // Two vectors of 8 keys: lanes [0-3, 8-11] and [4-7, 12-15].
            let mut set = [_mm256_setzero_si256(); 2];
            for (half, (ka, kb)) in [(k1.0, k2.0), (k1.1, k2.1)].into_iter().enumerate() {
                let mut x = _mm256_mullo_epi32(ka, mul1);
                if SEQ2 {
                    x = _mm256_xor_si256(x, _mm256_mullo_epi32(kb, mul2));
                }
                // As `filter_mask`: the bucket's 32-bit word, three bits of it.
                let w = _mm256_i32gather_epi32::<4>(words, _mm256_srlv_epi32(x, down));
                let bit1 = _mm256_srlv_epi32(w, _mm256_and_si256(x, low5));
                let bit2 = _mm256_srlv_epi32(w, _mm256_and_si256(_mm256_srli_epi32::<5>(x), low5));
                let bit3 = _mm256_srlv_epi32(w, _mm256_and_si256(_mm256_srlv_epi32(x, at3), low5));
                let all = _mm256_and_si256(_mm256_and_si256(bit1, bit2), bit3);
                set[half] = _mm256_slli_epi32::<31>(all);
            }
            // Packed to 16 bits, the lanes are the positions in order (two mask bits each).
            let hits = _mm256_movemask_epi8(_mm256_packs_epi32(set[0], set[1]));
            if hits != 0 {
                // The sums of the first admitted window are in its lanes.
                let j = hits.trailing_zeros() as usize / 2;
                let lane = |v: __m256i| {
                    let mut l = [0u16; 16];
                    _mm256_storeu_si256(l.as_mut_ptr() as *mut __m256i, v);
                    l[j]
                };
                *r0 = Rsum {
                    a: lane(a0),
                    b: lane(b0),
                };
                if SEQ2 {
                    *r1 = Rsum {
                        a: lane(ab1.0),
                        b: lane(ab1.1),
                    };
                }
                return pos + j;
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
/// of the window at p + 16, and the steps' changes (all zero when no step changes a sum).
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
    std::arch::x86_64::__m256i,
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
        _mm256_or_si256(d, e),
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
    mask: Option<std::arch::x86_64::__m256i>,
) -> (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i) {
    use std::arch::x86_64::*;
    let (lo, hi) = (_mm256_unpacklo_epi16(b, a), _mm256_unpackhi_epi16(b, a));
    match mask {
        None => (lo, hi),
        Some(m) => (_mm256_and_si256(lo, m), _mm256_and_si256(hi, m)),
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
        let mut data: Vec<u8> = (0..20_000)
            .map(|i| if i % 3000 < 700 { 0 } else { next() as u8 })
            .collect();
        // A stretch repeating every 8 bytes: for blocks of 8 bytes or more, the bytes
        // leaving and entering the window are the same, but the windows differ.
        for i in 14_000..18_000 {
            data[i] = data[i - 8];
        }
        for &bs in &[1usize, 2, 8, 32, 1024, 4096] {
            for &mask in &[0xffff_ffffu32, 0x00ff_ffff, 0xffff] {
                for (density, hash_bits) in [0u64, 1, 8, 64, 512]
                    .into_iter()
                    .flat_map(|d| [(d, 12u32), (d, 26)])
                {
                    let mut tile = vec![0u64; 64];
                    for w in tile.iter_mut() {
                        for b in 0..64 {
                            if next() % 1024 < density {
                                *w |= 1 << b;
                            }
                        }
                    }
                    // 2^26 filter bits: the third bit's hash bits are lower than 10-14.
                    let words = (1usize << hash_bits) / 64;
                    let mut bits: Vec<u64> = tile.iter().cycle().take(words).copied().collect();
                    if density == 1 {
                        // Zero runs admitted (the sixteen-equal-windows path stops there).
                        let (w, m) = filter_mask(hash(0, 0), hash_bits);
                        bits[w] |= m;
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
                                "bs {bs} mask {mask:x} density {density} hash_bits {hash_bits} seq2 {seq2}"
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
