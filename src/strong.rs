//! Strong checksums: MD4 per block (as the control file stores it) and the whole-file SHA-1.

use md4::{Digest, Md4};

/// The strong checksum algorithm of the block table (`Strong-Hash-Algorithm`, zsync 0.8;
/// files without that header use MD4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StrongHash {
    /// MD4 (every zsync 0.6 file).
    #[default]
    Md4,
    /// MD5.
    Md5,
    /// SHA-224.
    Sha224,
}

impl StrongHash {
    /// The algorithm named in a control file (`MD4`, `MD5`, `SHA-224`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "MD4" => Some(StrongHash::Md4),
            "MD5" => Some(StrongHash::Md5),
            "SHA-224" => Some(StrongHash::Sha224),
            _ => None,
        }
    }

    /// Its name in a control file.
    pub fn name(self) -> &'static str {
        match self {
            StrongHash::Md4 => "MD4",
            StrongHash::Md5 => "MD5",
            StrongHash::Sha224 => "SHA-224",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            StrongHash::Md4 | StrongHash::Md5 => 16,
            StrongHash::Sha224 => 28,
        }
    }

    /// The digest of `data` followed by zeros up to `blocksize` bytes, in the first
    /// [`StrongHash::digest_len`] bytes of the result.
    pub fn digest_padded(self, data: &[u8], blocksize: usize) -> [u8; 32] {
        fn run<D: Digest>(data: &[u8], blocksize: usize) -> [u8; 32] {
            let mut h = D::new();
            h.update(data);
            let zeros = [0u8; 4096];
            let mut left = blocksize.saturating_sub(data.len());
            while left > 0 {
                let n = left.min(zeros.len());
                h.update(&zeros[..n]);
                left -= n;
            }
            let d = h.finalize();
            let mut out = [0u8; 32];
            out[..d.len()].copy_from_slice(&d);
            out
        }
        match self {
            StrongHash::Md4 => run::<Md4>(data, blocksize),
            StrongHash::Md5 => run::<md5::Md5>(data, blocksize),
            StrongHash::Sha224 => run::<sha2::Sha224>(data, blocksize),
        }
    }
}

/// MD4 of one block.
#[inline]
pub fn md4(data: &[u8]) -> [u8; 16] {
    Md4::digest(data).into()
}

/// MD4 of `data` followed by zero bytes up to `blocksize` bytes (a short last block).
pub fn md4_padded(data: &[u8], blocksize: usize) -> [u8; 16] {
    debug_assert!(data.len() <= blocksize);
    let mut h = Md4::new();
    h.update(data);
    let zeros = [0u8; 4096];
    let mut left = blocksize - data.len();
    while left > 0 {
        let n = left.min(zeros.len());
        h.update(&zeros[..n]);
        left -= n;
    }
    h.finalize().into()
}

/// MD4 of each `blocksize`-byte block of `data` (whose length is a multiple of `blocksize`).
/// Eight blocks at a time with AVX2 where the CPU has it and the block size allows.
pub fn md4_blocks(data: &[u8], blocksize: usize, out: &mut Vec<[u8; 16]>) {
    debug_assert_eq!(data.len() % blocksize, 0);
    let mut rest = data;
    if blocksize % 64 == 0 && blocksize < 1 << 28 && crate::md4x8::available() {
        let group = 8 * blocksize;
        while rest.len() >= group {
            let (head, tail) = rest.split_at(group);
            match crate::md4x8::md4_x8(head, blocksize) {
                Some(d) => out.extend_from_slice(&d),
                None => md4_blocks_scalar(head, blocksize, out),
            }
            rest = tail;
        }
    }
    md4_blocks_scalar(rest, blocksize, out);
}

/// The plain implementation of [`md4_blocks`], one block at a time.
pub fn md4_blocks_scalar(data: &[u8], blocksize: usize, out: &mut Vec<[u8; 16]>) {
    out.extend(data.chunks_exact(blocksize).map(md4));
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(H[usize::from(b >> 4)] as char);
        s.push(H[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_blocks_equal_plain_blocks() {
        let data: Vec<u8> = (0..64 * 1024 + 4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        for bs in [1usize, 8, 32, 64, 128, 2048, 4096] {
            let n = data.len() / bs * bs;
            let (mut a, mut b) = (Vec::new(), Vec::new());
            md4_blocks(&data[..n], bs, &mut a);
            md4_blocks_scalar(&data[..n], bs, &mut b);
            assert_eq!(a, b, "bs {bs}");
            assert_eq!(a.len(), n / bs);
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(
            hex(&md4(b"abcdefghijklmnopqrstuvwxyz")),
            "d79e1c308aa5bbcdeea8ed63df412da9"
        );
        assert_eq!(
            hex(&md4_padded(b"yz\n", 8)),
            "cea6fc8f0480a073659e937adc90255c"
        );
        assert_eq!(
            hex(&md4_padded(b"a", 2048)),
            "f38cd738dc0a2a14c66015efd7d89fc5"
        );
        let big = vec![b'a'; 1808];
        assert_eq!(
            hex(&md4_padded(&big, 2048)),
            "07dc5f8d4973419ce359ebdfb6751695"
        );
        let mut padded = big.clone();
        padded.resize(1 << 16, 0);
        assert_eq!(md4_padded(&big, 1 << 16), md4(&padded));
    }
}
