//! The `.zsync` control file: header lines, then one binary record per block.
//!
//! [`ControlFile::parse`] reads files written by zsync3, zsync 0.6.x (any `Hash-Lengths`) and
//! reads the 0.8-style `SHA-256` whole-file hash; [`Header::write`] writes the exact header
//! bytes of the zsync3 reference. Parsing treats its input as hostile: every size is checked
//! against the bytes actually present before anything is allocated.

use std::io::Write;

use crate::error::quoted;
use crate::hashlen::HashLengths;
use crate::httpdate;
use crate::rsum::Rsum;
use crate::strong::StrongHash;
use crate::{Error, Result};

/// Largest block size accepted (16 MiB); the reference's arithmetic breaks from 2^24.
pub const MAX_BLOCKSIZE: u32 = 1 << 24;
/// Largest target length accepted (2^62 bytes).
pub const MAX_LENGTH: u64 = 1 << 62;
/// Largest header accepted (1 MiB), so a garbage file is rejected quickly.
pub const MAX_HEADER: usize = 1 << 20;

/// The per-block checksums of the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockSums {
    /// Rolling checksum per block as `a << 16 | b`, with `a` masked as the reader must
    /// (see [`BlockSums::weak_mask`]).
    pub weak: Vec<u32>,
    /// Strong checksum prefixes, `checksum_bytes` each, concatenated.
    pub strong: Vec<u8>,
    /// Bytes per strong prefix.
    pub strong_len: usize,
    /// The strong checksum algorithm.
    pub algorithm: StrongHash,
}

impl BlockSums {
    /// The mask applied to a window's packed rolling checksum before comparing it with
    /// [`BlockSums::weak`]: only the bytes the file stores take part (for 1 or 2 stored
    /// bytes, `a` is not stored; `b` is always compared in full, as the reference does).
    pub fn weak_mask(rsum_bytes: u8) -> u32 {
        match rsum_bytes {
            4 => 0xffff_ffff,
            3 => 0x00ff_ffff,
            _ => 0x0000_ffff,
        }
    }
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.weak.len()
    }
    /// True when there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.weak.is_empty()
    }
    /// The strong prefix of block `i`.
    pub fn strong(&self, i: usize) -> &[u8] {
        &self.strong[i * self.strong_len..(i + 1) * self.strong_len]
    }

    /// Whether `digest` (at least the stored length) starts with block `i`'s strong sum.
    /// Inline and branch-free: scans compare thousands of duplicate blocks' sums in a row,
    /// where a `memcmp` call per block costs more than the comparison.
    #[inline]
    pub fn strong_is(&self, i: usize, digest: &[u8]) -> bool {
        self.strong(i)
            .iter()
            .zip(&digest[..self.strong_len])
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
    }
}

/// The header fields of a control file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Suggested output file name.
    pub filename: Option<String>,
    /// Modification time of the target, Unix seconds.
    pub mtime: Option<i64>,
    /// Block size (a power of two).
    pub blocksize: u32,
    /// Target length in bytes.
    pub length: u64,
    /// How much of each checksum is stored.
    pub hash_lengths: HashLengths,
    /// Where the target can be downloaded (absolute or relative to the `.zsync`).
    pub urls: Vec<String>,
    /// SHA-1 of the target, lowercase hex.
    pub sha1: Option<String>,
    /// SHA-256 of the target, lowercase hex (zsync 0.8 `File-Hash: SHA-256:…`).
    pub sha256: Option<String>,
    /// Algorithm of the block checksums (zsync 0.8 `Strong-Hash-Algorithm`; MD4 if absent).
    pub strong_hash: StrongHash,
}

impl Header {
    /// Number of blocks, `ceil(length / blocksize)`.
    pub fn num_blocks(&self) -> u64 {
        self.length.div_ceil(u64::from(self.blocksize))
    }

    /// Write the header exactly as zsync3's zsyncmake does, blank line included.
    pub fn write(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let mut s = String::with_capacity(256);
        s.push_str("zsync: 0.6.2\n");
        if let Some(f) = &self.filename {
            s.push_str(&format!("Filename: {f}\n"));
            if let Some(t) = self.mtime {
                s.push_str(&format!("MTime: {}\n", httpdate::format(t)));
            }
        }
        s.push_str(&format!(
            "Blocksize: {}\nLength: {}\nHash-Lengths: {}\n",
            self.blocksize, self.length, self.hash_lengths
        ));
        for u in &self.urls {
            s.push_str(&format!("URL: {u}\n"));
        }
        if let Some(h) = &self.sha1 {
            s.push_str(&format!("SHA-1: {h}\n"));
        }
        if let Some(h) = &self.sha256 {
            // `Safe` lets zsync 0.6 clients skip the header they do not know.
            s.push_str(&format!("Safe: File-Hash\nFile-Hash: SHA-256:{h}\n"));
        }
        s.push('\n');
        w.write_all(s.as_bytes())
    }
}

/// Write one block record: the last `rsum_bytes` of the big-endian rolling checksum, then
/// the first `checksum_bytes` of the strong checksum.
pub fn write_record(out: &mut Vec<u8>, hl: HashLengths, rsum: Rsum, strong: &[u8]) {
    let r = rsum.to_be_bytes();
    out.extend_from_slice(&r[4 - usize::from(hl.rsum_bytes)..]);
    out.extend_from_slice(&strong[..usize::from(hl.checksum_bytes)]);
}

/// A parsed control file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlFile {
    /// The header.
    pub header: Header,
    /// The block table.
    pub blocks: BlockSums,
}

fn bad(line: usize, msg: impl std::fmt::Display) -> Error {
    Error::Control(format!("line {line}: {msg}"))
}

fn parse_u64(line: usize, key: &str, v: &str) -> Result<u64> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad(
            line,
            format!("{key} must be a decimal number, not {}", quoted(v)),
        ));
    }
    v.parse()
        .map_err(|_| bad(line, format!("{key} is too large: {}", quoted(v))))
}

fn is_hex(v: &str, n: usize) -> bool {
    v.len() == n && v.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Compare dotted version strings numerically; `None` if one is not of that form.
fn version_gt(a: &str, b: &str) -> Option<bool> {
    let p = |s: &str| -> Option<Vec<u64>> { s.split('.').map(|x| x.parse().ok()).collect() };
    Some(p(a)? > p(b)?)
}

impl ControlFile {
    /// Parse a whole control file.
    pub fn parse(data: &[u8]) -> Result<ControlFile> {
        let (header, table) = Self::parse_header(data)?;
        let algorithm = header.strong_hash;
        let hl = header.hash_lengths;
        let n = header.num_blocks();
        let rec = hl.record_len() as u64;
        let need = n.saturating_mul(rec);
        if (table.len() as u64) < need {
            return Err(Error::Control(format!(
                "block table is truncated: Length {} needs {} blocks of {} bytes ({} bytes), but only {} bytes follow the header",
                header.length,
                n,
                rec,
                need,
                table.len()
            )));
        }
        let n = n as usize;
        let rb = usize::from(hl.rsum_bytes);
        let cb = usize::from(hl.checksum_bytes);
        let mask = BlockSums::weak_mask(hl.rsum_bytes);
        let mut weak = Vec::with_capacity(n);
        let mut strong = Vec::with_capacity(n * cb);
        for r in table[..n * (rb + cb)].chunks_exact(rb + cb) {
            let mut be = [0u8; 4];
            be[4 - rb..].copy_from_slice(&r[..rb]);
            weak.push(u32::from_be_bytes(be) & mask);
            strong.extend_from_slice(&r[rb..]);
        }
        Ok(ControlFile {
            header,
            blocks: BlockSums {
                weak,
                strong,
                strong_len: cb,
                algorithm,
            },
        })
    }

    /// Parse only the header; returns it and the bytes after the blank line.
    pub fn parse_header(data: &[u8]) -> Result<(Header, &[u8])> {
        let mut filename = None;
        let mut mtime = None;
        let mut blocksize = None;
        let mut length = None;
        let mut hash_lengths = None;
        let mut urls = Vec::new();
        let mut sha1 = None;
        let mut sha256 = None;
        let mut strong_hash = None;
        let mut pos = 0usize;
        let mut lineno = 0usize;
        loop {
            lineno += 1;
            let rest = &data[pos..];
            let Some(nl) = rest.iter().position(|&c| c == b'\n') else {
                return Err(if data.is_empty() {
                    Error::Control("the file is empty".into())
                } else if pos == 0 && !rest.starts_with(b"zsync:") {
                    Error::Control("not a zsync control file (no header lines)".into())
                } else {
                    Error::Control(
                        "the header is truncated: no blank line before the end of the file".into(),
                    )
                });
            };
            if pos + nl > MAX_HEADER {
                return Err(Error::Control(
                    "not a zsync control file (header longer than 1 MiB)".into(),
                ));
            }
            let raw = &rest[..nl];
            pos += nl + 1;
            if raw.is_empty() {
                break;
            }
            if raw == b"\r" {
                return Err(bad(
                    lineno,
                    "the header ends with a CRLF blank line: the file was converted to DOS line endings, which damages the block table",
                ));
            }
            let Ok(line) = std::str::from_utf8(raw) else {
                return Err(if lineno == 1 {
                    Error::Control("not a zsync control file (binary data)".into())
                } else {
                    bad(lineno, "not valid UTF-8 text")
                });
            };
            let line = line.trim_end_matches(['\r', ' ']);
            if let Some(c) = line.chars().find(|c| c.is_control()) {
                return Err(bad(lineno, format!("control character {c:?} in header")));
            }
            let Some((key, value)) = line.split_once(": ") else {
                return Err(if lineno == 1 {
                    Error::Control(format!(
                        "not a zsync control file (first line {})",
                        quoted(line)
                    ))
                } else {
                    bad(
                        lineno,
                        format!("expected \"Key: value\", got {}", quoted(line)),
                    )
                });
            };
            if key.is_empty() || key.contains(':') {
                return Err(bad(
                    lineno,
                    format!("expected \"Key: value\", got {}", quoted(line)),
                ));
            }
            fn once<T>(slot: &mut Option<T>, v: T, line: usize, key: &str) -> Result<()> {
                if slot.is_some() {
                    return Err(bad(line, format!("duplicate {key} header")));
                }
                *slot = Some(v);
                Ok(())
            }
            match key {
                "zsync" if value == "0.0.4" => {
                    return Err(bad(lineno, "zsync 0.0.4 control files are not supported"));
                }
                "Min-Version" if version_gt(value, "0.8.0").unwrap_or(true) => {
                    return Err(bad(
                        lineno,
                        format!("this file requires zsync {} or newer", quoted(value)),
                    ));
                }
                "Filename" => once(&mut filename, value.to_string(), lineno, key)?,
                "MTime" => {
                    // An unparsable date is not fatal (the reference ignores it too).
                    if let Some(t) = httpdate::parse(value) {
                        once(&mut mtime, t, lineno, key)?;
                    }
                }
                "Blocksize" => {
                    let b = parse_u64(lineno, key, value)?;
                    if b == 0 || !b.is_power_of_two() || b > u64::from(MAX_BLOCKSIZE) {
                        return Err(bad(
                            lineno,
                            format!(
                                "Blocksize {b} is not a power of two from 1 to {MAX_BLOCKSIZE}"
                            ),
                        ));
                    }
                    once(&mut blocksize, b as u32, lineno, key)?;
                }
                "Length" => {
                    let l = parse_u64(lineno, key, value)?;
                    if l > MAX_LENGTH {
                        return Err(bad(lineno, format!("Length {l} is too large")));
                    }
                    once(&mut length, l, lineno, key)?;
                }
                "Hash-Lengths" => {
                    let nums: Vec<Option<u32>> =
                        value.split(',').map(|x| x.trim().parse().ok()).collect();
                    // The checksum length is checked against the algorithm after the header.
                    let hl = match nums[..] {
                        [Some(s), Some(r), Some(c)] if c <= 32 => {
                            HashLengths::new(s, r, c.min(16)).map(|mut h| {
                                h.checksum_bytes = c as u8;
                                h
                            })
                        }
                        _ => None,
                    }
                    .ok_or_else(|| {
                        bad(
                            lineno,
                            format!("nonsensical Hash-Lengths {} (want seq 1-2, rsum 1-4, checksum 3-16, or up to 32 for longer hashes)", quoted(value)),
                        )
                    })?;
                    once(&mut hash_lengths, hl, lineno, key)?;
                }
                "URL" => urls.push(value.to_string()),
                "SHA-1" => {
                    if !is_hex(value, 40) {
                        return Err(bad(lineno, "SHA-1 must be 40 hex digits"));
                    }
                    once(&mut sha1, value.to_ascii_lowercase(), lineno, key)?;
                }
                "File-Hash" => match value.split_once(':') {
                    Some(("SHA-256", h)) if is_hex(h, 64) => once(
                        &mut sha256,
                        h.to_ascii_lowercase(),
                        lineno,
                        "SHA-256 File-Hash",
                    )?,
                    Some(("SHA-1", h)) if is_hex(h, 40) => {
                        once(&mut sha1, h.to_ascii_lowercase(), lineno, "SHA-1")?
                    }
                    _ => {
                        return Err(bad(
                            lineno,
                            format!(
                            "File-Hash {} is not SHA-256:<64 hex digits> or SHA-1:<40 hex digits>",
                            quoted(value)
                        ),
                        ))
                    }
                },
                "Strong-Hash-Algorithm" => {
                    let a = StrongHash::from_name(value).ok_or_else(|| {
                        bad(
                            lineno,
                            format!(
                                "unsupported Strong-Hash-Algorithm {} (MD4, MD5 and SHA-224 are)",
                                quoted(value)
                            ),
                        )
                    })?;
                    once(&mut strong_hash, a, lineno, key)?;
                }
                "Z-URL" | "Z-Map2" | "Z-Filename" | "Recompress" => {
                    return Err(bad(
                        lineno,
                        format!("{key}: this .zsync describes compressed content, which zsync3 does not support"),
                    ));
                }
                // Unknown headers are ignored: later versions add informational ones.
                _ => {}
            }
        }
        let blocksize = blocksize.ok_or_else(|| Error::Control("no Blocksize header".into()))?;
        let length = length.ok_or_else(|| Error::Control("no Length header".into()))?;
        let strong_hash = strong_hash.unwrap_or_default();
        let hash_lengths = match hash_lengths {
            Some(hl) if usize::from(hl.checksum_bytes) > strong_hash.digest_len() => {
                return Err(Error::Control(format!(
                    "Hash-Lengths {hl} asks for more than the {} bytes of a {} checksum",
                    strong_hash.digest_len(),
                    strong_hash.name()
                )))
            }
            Some(hl) => hl,
            None => HashLengths {
                checksum_bytes: strong_hash.digest_len() as u8,
                ..HashLengths::DEFAULT
            },
        };
        Ok((
            Header {
                filename,
                mtime,
                blocksize,
                length,
                hash_lengths,
                urls,
                sha1,
                sha256,
                strong_hash,
            },
            &data[pos..],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(extra: &str) -> Vec<u8> {
        let sep = if extra.is_empty() { "" } else { "\n" };
        format!("zsync: 0.6.2\nBlocksize: 8\nLength: 9\nHash-Lengths: 1,2,4\n{extra}{sep}\n")
            .into_bytes()
    }

    #[test]
    fn parses_records_with_masks() {
        let mut f = hdr("URL: x");
        f.extend_from_slice(&[1, 2, 9, 9, 9, 9, 3, 4, 8, 8, 8, 8]);
        let c = ControlFile::parse(&f).unwrap();
        assert_eq!(c.blocks.weak, vec![0x0102, 0x0304]);
        assert_eq!(c.blocks.strong(1), &[8, 8, 8, 8]);
        let mut f = b"Blocksize: 8\nLength: 8\nHash-Lengths: 1,3,3\n\n".to_vec();
        f.extend_from_slice(&[0xaa, 0xbb, 0xcc, 1, 2, 3]);
        let c = ControlFile::parse(&f).unwrap();
        assert_eq!(c.blocks.weak, vec![0x00aa_bbcc]);
        let mut f = b"Blocksize: 8\nLength: 8\n\n".to_vec();
        f.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        f.extend_from_slice(&[7; 16]);
        let c = ControlFile::parse(&f).unwrap();
        assert_eq!(c.header.hash_lengths, HashLengths::DEFAULT);
        assert_eq!(c.blocks.weak, vec![0xaabb_ccdd]);
    }

    #[test]
    fn accepts_crlf_lines_unknown_keys_and_empty_target() {
        let f = b"zsync: 0.6.2\r\nBlocksize: 2048  \r\nLength: 0\r\nX-Whatever: 1\nSHA-1: DA39A3EE5E6B4B0D3255BFEF95601890AFD80709\n\n";
        let c = ControlFile::parse(f).unwrap();
        assert_eq!(c.header.length, 0);
        assert_eq!(
            c.header.sha1.as_deref(),
            Some("da39a3ee5e6b4b0d3255bfef95601890afd80709")
        );
        assert!(c.blocks.is_empty());
    }

    #[test]
    fn hostile_inputs_are_one_line_errors() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "empty"),
            (b"\x00\x01\x02garbage\xff\n".to_vec(), "not a zsync"),
            (b"zsync: 0.6.2\nBlocksize: 8\n".to_vec(), "truncated"),
            (hdr("").into_iter().take(20).collect(), "truncated"),
            (b"Blocksize: 0\nLength: 1\n\n".to_vec(), "power of two"),
            (b"Blocksize: 3\nLength: 1\n\n".to_vec(), "power of two"),
            (
                b"Blocksize: 1099511627776\nLength: 1\n\n".to_vec(),
                "power of two",
            ),
            (
                b"Blocksize: 8\nLength: 9223372036854775808\n\n".to_vec(),
                "too large",
            ),
            (
                b"Blocksize: 8\nLength: 99999999999999999999999\n\n".to_vec(),
                "Length",
            ),
            (b"Blocksize: 8\nLength: -1\n\n".to_vec(), "decimal"),
            (
                b"Blocksize: 8\nLength: 4611686018427387904\n\n".to_vec(),
                "truncated",
            ),
            (b"Blocksize: 8\nLength: 9\n\n\x01\x02".to_vec(), "truncated"),
            (b"Length: 9\n\n".to_vec(), "no Blocksize"),
            (b"Blocksize: 8\n\n".to_vec(), "no Length"),
            (hdr("Hash-Lengths: 1,2,4"), "duplicate"),
            (
                b"Blocksize: 8\nLength: 1\nHash-Lengths: 3,2,4\n\n".to_vec(),
                "Hash-Lengths",
            ),
            (
                b"Blocksize: 8\nLength: 1\nHash-Lengths: 1,2\n\n".to_vec(),
                "Hash-Lengths",
            ),
            (
                b"Blocksize: 8\nLength: 1\nHash-Lengths: 1,0,4\n\n".to_vec(),
                "Hash-Lengths",
            ),
            (b"Blocksize: 8\nLength: 1\nSHA-1: abc\n\n".to_vec(), "SHA-1"),
            (
                b"zsync: 0.6.2\r\nBlocksize: 8\r\nLength: 0\r\n\r\n".to_vec(),
                "CRLF",
            ),
            (
                b"Blocksize: 8\nLength: 0\nMin-Version: 9.0\n\n".to_vec(),
                "requires",
            ),
            (
                b"Blocksize: 8\nLength: 0\nZ-Map2: 3\n\n".to_vec(),
                "compressed",
            ),
            (
                b"Blocksize: 8\nLength: 0\nURL: a\x01b\n\n".to_vec(),
                "control character",
            ),
            (b"Blocksize: 8\nBad line\n\n".to_vec(), "Key: value"),
            (b"zsync: 0.0.4\n\n".to_vec(), "0.0.4"),
        ];
        for (input, want) in cases {
            let e = ControlFile::parse(&input).expect_err(want).to_string();
            assert!(e.contains(want), "{e:?} should mention {want:?}");
            assert!(!e.contains('\n'), "{e:?} is one line");
        }
    }

    #[test]
    fn header_writes_reference_order() {
        let h = Header {
            filename: Some("v1".into()),
            mtime: Some(1704164645),
            blocksize: 2048,
            length: 1,
            hash_lengths: HashLengths::new(1, 2, 4).unwrap(),
            urls: vec!["v1".into()],
            sha1: Some("86f7e437faa5a7fce15d1ddcb9eaeaea377667b8".into()),
            sha256: None,
            strong_hash: StrongHash::Md4,
        };
        let mut out = Vec::new();
        h.write(&mut out).unwrap();
        let want = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/v1.zsync3.zsync"
        ))
        .unwrap();
        assert_eq!(out[..], want[..168]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "zsync: 0.6.2\nFilename: v1\nMTime: Tue, 02 Jan 2024 03:04:05 +0000\nBlocksize: 2048\n"
        ));
        assert!(text.ends_with("URL: v1\nSHA-1: 86f7e437faa5a7fce15d1ddcb9eaeaea377667b8\n\n"));
        let parsed = ControlFile::parse_header(text.as_bytes()).unwrap().0;
        assert_eq!(parsed, h);
    }
}

#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    /// Inputs the fuzzer found (fuzz/regressions/control_file): parsing must not panic.
    #[test]
    fn parse_never_panics_on_fuzz_findings() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions/control_file");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            let _ = ControlFile::parse(&data);
            n += 1;
        }
        assert!(n > 0);
    }
}
