//! The rolling checksum of zsync (an rsync-style Adler variant, both halves mod 2^16).
//!
//! For a window `d[0..B]`: `a = Σ d[k]`, `b = Σ (B - k)·d[k]`, both mod 2^16. Sliding the
//! window one byte (drop `old`, add `new`) is `a += new - old; b += a - B·old`.

/// The two 16-bit halves of the rolling checksum of one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rsum {
    /// Sum of the bytes.
    pub a: u16,
    /// Sum of the running sums.
    pub b: u16,
}

impl Rsum {
    /// The checksum of `data` computed from scratch.
    pub fn of(data: &[u8]) -> Rsum {
        #[cfg(target_arch = "x86_64")]
        {
            if data.len() >= 64 && std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected at run time.
                return unsafe { avx2::of(data) };
            }
        }
        Rsum::of_plain(data)
    }

    /// The plain definition (running sums); [`Rsum::of`] may take a faster path.
    pub fn of_plain(data: &[u8]) -> Rsum {
        Rsum::default().extend(data)
    }

    /// Continue the running sums over more bytes (the window grows).
    fn extend(self, data: &[u8]) -> Rsum {
        let (mut a, mut b) = (self.a, self.b);
        for &x in data {
            a = a.wrapping_add(u16::from(x));
            b = b.wrapping_add(a);
        }
        Rsum { a, b }
    }

    /// The checksum of `data` followed by `zeros` zero bytes (a short last block padded).
    pub fn of_padded(data: &[u8], zeros: u64) -> Rsum {
        let r = Rsum::of(data);
        // Appending z zero bytes leaves a unchanged and adds z·a to b.
        Rsum {
            a: r.a,
            b: r.b.wrapping_add(r.a.wrapping_mul(zeros as u16)),
        }
    }

    /// Slide the window by one byte: `old` leaves, `new` enters; `shift` = log2(block size).
    #[inline(always)]
    pub fn roll(&mut self, old: u8, new: u8, shift: u32) {
        self.a = self
            .a
            .wrapping_add(u16::from(new))
            .wrapping_sub(u16::from(old));
        let dropped = if shift >= 16 {
            0
        } else {
            (u16::from(old)) << shift
        };
        self.b = self.b.wrapping_add(self.a).wrapping_sub(dropped);
    }

    /// The big-endian 4-byte form `a_hi a_lo b_hi b_lo` used in the control file.
    pub fn to_be_bytes(self) -> [u8; 4] {
        let [ah, al] = self.a.to_be_bytes();
        let [bh, bl] = self.b.to_be_bytes();
        [ah, al, bh, bl]
    }

    /// Both halves in one `u32`: `a << 16 | b`.
    #[inline(always)]
    pub fn packed(self) -> u32 {
        (u32::from(self.a) << 16) | u32::from(self.b)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Rsum;
    use std::arch::x86_64::*;

    /// 32 bytes per step: a += Σ d[j]; b += 32·a_before + Σ (32 - j)·d[j], in u32 lanes
    /// (exact mod 2^16).
    #[target_feature(enable = "avx2")]
    pub unsafe fn of(data: &[u8]) -> Rsum {
        let weights = _mm256_setr_epi8(
            32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
            10, 9, 8, 7, 6, 5, 4, 3, 2, 1,
        );
        let ones = _mm256_set1_epi16(1);
        let zero = _mm256_setzero_si256();
        let mut va = zero;
        let mut vprev = zero;
        let mut vb = zero;
        let mut chunks = data.chunks_exact(32);
        for c in &mut chunks {
            let v = _mm256_loadu_si256(c.as_ptr() as *const __m256i);
            vprev = _mm256_add_epi32(vprev, va);
            va = _mm256_add_epi32(va, _mm256_sad_epu8(v, zero));
            vb = _mm256_add_epi32(
                vb,
                _mm256_madd_epi16(_mm256_maddubs_epi16(v, weights), ones),
            );
        }
        let a = hsum(va);
        let b = hsum(vprev).wrapping_mul(32).wrapping_add(hsum(vb));
        Rsum {
            a: a as u16,
            b: b as u16,
        }
        .extend(chunks.remainder())
    }

    #[inline(always)]
    unsafe fn hsum(v: __m256i) -> u32 {
        let mut w = [0u32; 8];
        _mm256_storeu_si256(w.as_mut_ptr() as *mut __m256i, v);
        w.iter().fold(0u32, |s, &x| s.wrapping_add(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Values from the reference's rsum test.
        assert_eq!(Rsum::of(&[0u8; 4096]), Rsum { a: 0, b: 0 });
        let abcde: Vec<u8> = b"abcde".iter().copied().cycle().take(4096).collect();
        assert_eq!(
            Rsum::of(&abcde),
            Rsum {
                a: 0x2ffe,
                b: 0xf800
            }
        );
        let pat: Vec<u8> = [0u8, 0, 0xff, 0]
            .iter()
            .copied()
            .cycle()
            .take(4096)
            .collect();
        assert_eq!(Rsum::of(&pat), Rsum { a: 0xfc00, b: 0 });
        let a2048 = vec![b'a'; 2048];
        assert_eq!(
            Rsum::of(&a2048),
            Rsum {
                a: 0x0800,
                b: 0x8400
            }
        );
    }

    #[test]
    fn fast_equals_plain() {
        let data: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2246822519) >> 9) as u8)
            .collect();
        for len in [
            0usize, 1, 2, 7, 8, 31, 64, 1000, 2048, 65535, 65536, 65537, 70_000,
        ] {
            assert_eq!(
                Rsum::of(&data[..len]),
                Rsum::of_plain(&data[..len]),
                "len {len}"
            );
        }
    }

    #[test]
    fn rolling_equals_recomputing() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for shift in [0u32, 1, 3, 6, 10, 16, 17] {
            let bs = 1usize << shift;
            if bs * 2 > data.len() {
                continue;
            }
            let mut r = Rsum::of(&data[..bs]);
            for x in 1..(data.len() - bs).min(700) {
                r.roll(data[x - 1], data[x + bs - 1], shift);
                assert_eq!(r, Rsum::of(&data[x..x + bs]), "shift {shift} x {x}");
            }
        }
    }

    #[test]
    fn padding_equals_explicit_zeros() {
        let data = b"yz\n";
        let mut padded = data.to_vec();
        padded.resize(8, 0);
        assert_eq!(Rsum::of_padded(data, 5), Rsum::of(&padded));
        assert_eq!(
            Rsum::of_padded(data, 5),
            Rsum {
                a: 0x00fd,
                b: 0x075a
            }
        );
    }
}
