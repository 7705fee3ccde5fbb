//! MD4 of eight equal-length messages at once with AVX2 (one message per 32-bit lane).
//!
//! zsync hashes every block of a file with MD4. Blocks are independent and of equal size,
//! so eight of them go through the compression function together. Used only when the CPU
//! has AVX2 (checked at run time) and the block size is a multiple of 64; everything else
//! uses the scalar `md4` crate. Tests compare both on random data.

/// Whether the 8-lane implementation can run on this CPU.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// MD4 of each of the eight consecutive `len`-byte messages in `data` (`data.len() == 8 * len`,
/// `len` a multiple of 64 and below 2^28). Returns `None` when AVX2 is not available.
pub fn md4_x8(data: &[u8], len: usize) -> Option<[[u8; 16]; 8]> {
    assert!(data.len() == 8 * len && len % 64 == 0 && len < 1 << 28);
    #[cfg(target_arch = "x86_64")]
    {
        if available() {
            // SAFETY: AVX2 was detected at run time; the length checks above keep every
            // gathered load inside `data`.
            return Some(unsafe { avx2::md4_x8(data, len) });
        }
    }
    None
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn rotl<const S: i32, const R: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_slli_epi32::<S>(x), _mm256_srli_epi32::<R>(x))
    }

    #[inline(always)]
    unsafe fn f(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        // (x & y) | (!x & z) == z ^ (x & (y ^ z))
        _mm256_xor_si256(z, _mm256_and_si256(x, _mm256_xor_si256(y, z)))
    }

    #[inline(always)]
    unsafe fn g(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        // majority: (x & y) | (z & (x | y))
        _mm256_or_si256(
            _mm256_and_si256(x, y),
            _mm256_and_si256(z, _mm256_or_si256(x, y)),
        )
    }

    #[inline(always)]
    unsafe fn h(x: __m256i, y: __m256i, z: __m256i) -> __m256i {
        _mm256_xor_si256(x, _mm256_xor_si256(y, z))
    }

    macro_rules! step {
        ($fun:ident, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr, $k:expr, $s:literal) => {
            $a = _mm256_add_epi32(
                _mm256_add_epi32($a, $fun($b, $c, $d)),
                _mm256_add_epi32($w, $k),
            );
            $a = rotl::<$s, { 32 - $s }>($a);
        };
    }

    #[target_feature(enable = "avx2")]
    unsafe fn compress(state: &mut [__m256i; 4], x: &[__m256i; 16]) {
        let [mut a, mut b, mut c, mut d] = *state;
        let z = _mm256_setzero_si256();
        for &i in &[0usize, 4, 8, 12] {
            step!(f, a, b, c, d, x[i], z, 3);
            step!(f, d, a, b, c, x[i + 1], z, 7);
            step!(f, c, d, a, b, x[i + 2], z, 11);
            step!(f, b, c, d, a, x[i + 3], z, 19);
        }
        let k2 = _mm256_set1_epi32(0x5a82_7999);
        for &i in &[0usize, 1, 2, 3] {
            step!(g, a, b, c, d, x[i], k2, 3);
            step!(g, d, a, b, c, x[i + 4], k2, 5);
            step!(g, c, d, a, b, x[i + 8], k2, 9);
            step!(g, b, c, d, a, x[i + 12], k2, 13);
        }
        let k3 = _mm256_set1_epi32(0x6ed9_eba1);
        for &i in &[0usize, 2, 1, 3] {
            step!(h, a, b, c, d, x[i], k3, 3);
            step!(h, d, a, b, c, x[i + 8], k3, 9);
            step!(h, c, d, a, b, x[i + 4], k3, 11);
            step!(h, b, c, d, a, x[i + 12], k3, 15);
        }
        state[0] = _mm256_add_epi32(state[0], a);
        state[1] = _mm256_add_epi32(state[1], b);
        state[2] = _mm256_add_epi32(state[2], c);
        state[3] = _mm256_add_epi32(state[3], d);
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn md4_x8(data: &[u8], len: usize) -> [[u8; 16]; 8] {
        let l = len as i32;
        let lanes = _mm256_setr_epi32(0, l, 2 * l, 3 * l, 4 * l, 5 * l, 6 * l, 7 * l);
        let mut state = [
            _mm256_set1_epi32(0x6745_2301),
            _mm256_set1_epi32(0xefcd_ab89u32 as i32),
            _mm256_set1_epi32(0x98ba_dcfeu32 as i32),
            _mm256_set1_epi32(0x1032_5476),
        ];
        let mut x = [_mm256_setzero_si256(); 16];
        for off in (0..len).step_by(64) {
            let base = data.as_ptr().add(off) as *const i32;
            for (j, xj) in x.iter_mut().enumerate() {
                // Word j of this 64-byte chunk of every lane (x86 is little-endian, as MD4).
                *xj = _mm256_i32gather_epi32::<1>(base.add(j), lanes);
            }
            compress(&mut state, &x);
        }
        // Padding block: 0x80, zeros, bit length (the same for every lane).
        let bits = (len as u64).wrapping_mul(8);
        let mut pad = [0i32; 16];
        pad[0] = 0x80;
        pad[14] = bits as u32 as i32;
        pad[15] = (bits >> 32) as u32 as i32;
        for (xj, &p) in x.iter_mut().zip(&pad) {
            *xj = _mm256_set1_epi32(p);
        }
        compress(&mut state, &x);
        let mut words = [[0u32; 8]; 4];
        for (w, s) in words.iter_mut().zip(&state) {
            _mm256_storeu_si256(w.as_mut_ptr() as *mut __m256i, *s);
        }
        let mut out = [[0u8; 16]; 8];
        for (lane, o) in out.iter_mut().enumerate() {
            for k in 0..4 {
                o[4 * k..4 * k + 4].copy_from_slice(&words[k][lane].to_le_bytes());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_scalar_md4() {
        if !available() {
            return;
        }
        let mut seed = 7u64;
        for len in [0usize, 64, 128, 1024, 2048, 65536] {
            let data: Vec<u8> = (0..len * 8)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            let got = md4_x8(&data, len).unwrap();
            for (k, g) in got.iter().enumerate() {
                assert_eq!(
                    *g,
                    crate::strong::md4(&data[k * len..(k + 1) * len]),
                    "len {len}"
                );
            }
        }
    }
}
