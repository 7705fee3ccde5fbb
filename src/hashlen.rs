//! `Hash-Lengths`: how many bytes of each checksum a control file stores per block.

use std::fmt;

/// The `Hash-Lengths: seq,rb,cb` triple of a control file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashLengths {
    /// Consecutive blocks that must match before a match is accepted (1 or 2).
    pub seq_matches: u8,
    /// Bytes of the rolling checksum stored per block (1 to 4).
    pub rsum_bytes: u8,
    /// Bytes of the strong checksum stored per block (3 to 16 for MD4; up to the digest
    /// length for the longer hashes of zsync 0.8 files).
    pub checksum_bytes: u8,
}

impl HashLengths {
    /// What a reader assumes when the header is absent.
    pub const DEFAULT: HashLengths = HashLengths {
        seq_matches: 1,
        rsum_bytes: 4,
        checksum_bytes: 16,
    };

    /// Validate a triple read from a control file.
    pub fn new(seq_matches: u32, rsum_bytes: u32, checksum_bytes: u32) -> Option<Self> {
        if !(1..=2).contains(&seq_matches)
            || !(1..=4).contains(&rsum_bytes)
            || !(3..=16).contains(&checksum_bytes)
        {
            return None;
        }
        Some(HashLengths {
            seq_matches: seq_matches as u8,
            rsum_bytes: rsum_bytes as u8,
            checksum_bytes: checksum_bytes as u8,
        })
    }

    /// The triple zsync3's zsyncmake writes for a file of `length` bytes and block size
    /// `blocksize` (the zsync 0.6.3 tuning, evaluated exactly like the reference, including
    /// its 16-bit quirks; the one case where the reference writes garbage, `-b 1` on a
    /// 1-byte file, is clamped to a sane `1,4,4`).
    pub fn for_file(length: u64, blocksize: u32) -> Self {
        let ln_len = if length == 0 {
            f64::NEG_INFINITY
        } else {
            (length as f64).ln()
        };
        let ln2 = 2f64.ln();
        let mut seq = 1u8;
        let r = ((ln_len + f64::from(blocksize).ln()) / ln2 - 8.6) / 8.0;
        let mut rsum = c_int(r.ceil());
        if rsum > 4 {
            seq = 2;
            rsum = 4;
        }
        let rsum_bytes = u16_of(rsum).clamp(2, 4) as u8;
        let nb = 1 + length / u64::from(blocksize);
        let ln_nb = (nb as f64).ln();
        let c1 = ((20.0 + (ln_len + ln_nb) / ln2) / f64::from(seq) / 8.0).ceil();
        let c2 = ((20.0 + ln_nb / ln2) / 8.0).ceil();
        let cb = u16_of(c_int(c1)).max(u16_of(c_int(c2))).clamp(4, 16) as u8;
        HashLengths {
            seq_matches: seq,
            rsum_bytes,
            checksum_bytes: cb,
        }
    }

    /// Bytes per block record in the control file.
    pub fn record_len(&self) -> usize {
        usize::from(self.rsum_bytes) + usize::from(self.checksum_bytes)
    }
}

impl fmt::Display for HashLengths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{}",
            self.seq_matches, self.rsum_bytes, self.checksum_bytes
        )
    }
}

/// C's double → int conversion as x86-64 does it (truncation; out of range and NaN → INT_MIN).
fn c_int(v: f64) -> i32 {
    if v.is_nan() || !(-2147483648.0..2147483648.0).contains(&v) {
        i32::MIN
    } else {
        v as i32
    }
}

/// The reference's `min`/`max` helpers take `unsigned short`: reduce mod 2^16.
fn u16_of(v: i32) -> u16 {
    v as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(l: u64, b: u32) -> String {
        HashLengths::for_file(l, b).to_string()
    }

    #[test]
    fn table_of_the_spec() {
        // Lengths where the triple changes (SPEC §1.6).
        let b2048 = [
            (0, "1,2,4"),
            (2049, "1,2,5"),
            (12417, "1,3,5"),
            (45591, "1,3,6"),
            (741376, "1,3,7"),
            (3178689, "1,4,7"),
            (11862503, "1,4,8"),
            (189812327, "1,4,9"),
            (813744136, "2,4,5"),
            (2147483648, "2,4,6"),
            (549755813888, "2,4,7"),
        ];
        for w in b2048.windows(2) {
            assert_eq!(t(w[0].0, 2048), w[0].1, "L={}", w[0].0);
            assert_eq!(t(w[1].0 - 1, 2048), w[0].1, "L={}", w[1].0 - 1);
            assert_eq!(t(w[1].0, 2048), w[1].1, "L={}", w[1].0);
        }
        let b4096 = [
            (0, "1,2,4"),
            (4096, "1,2,5"),
            (6209, "1,3,5"),
            (65536, "1,3,6"),
            (1048576, "1,3,7"),
            (1589345, "1,4,7"),
            (16777216, "1,4,8"),
            (268435456, "1,4,9"),
            (406872068, "2,4,5"),
            (4294967296, "2,4,6"),
            (1099511627776, "2,4,7"),
        ];
        for w in b4096.windows(2) {
            assert_eq!(t(w[0].0, 4096), w[0].1, "L={}", w[0].0);
            assert_eq!(t(w[1].0 - 1, 4096), w[0].1, "L={}", w[1].0 - 1);
        }
    }

    #[test]
    fn boundaries_and_quirks() {
        assert_eq!(t(2048, 2048), "1,2,4");
        assert_eq!(t(8, 8), "1,2,3".replace('3', "4"));
        assert_eq!(t(1057, 8), "1,2,5");
        assert_eq!(t(0, 8), "1,2,4");
        // The reference writes 1,65535,4 here (a 16-bit wrap); we clamp.
        assert_eq!(t(1, 1), "1,4,4");
    }

    #[test]
    fn reader_validation() {
        assert!(HashLengths::new(1, 2, 4).is_some());
        assert!(HashLengths::new(0, 2, 4).is_none());
        assert!(HashLengths::new(3, 2, 4).is_none());
        assert!(HashLengths::new(1, 0, 4).is_none());
        assert!(HashLengths::new(1, 5, 4).is_none());
        assert!(HashLengths::new(1, 2, 2).is_none());
        assert!(HashLengths::new(1, 2, 17).is_none());
    }
}
