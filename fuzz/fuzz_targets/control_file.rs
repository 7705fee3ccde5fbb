//! `ControlFile::parse` on arbitrary bytes (a hostile `.zsync`).
//!
//! Must never panic, and an error message is one line of at most 300 bytes. When it
//! accepts the input, the result must be self-consistent
//! (block table size, checksum widths) and, for MD4 files, writing the header back and
//! appending the same records must parse to the same control file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zsync3::control::{ControlFile, MAX_BLOCKSIZE, MAX_LENGTH};
use zsync3::strong::StrongHash;

/// Errors are shown to the user as one line; tests/hostile.rs allows 300 bytes for it.
const MAX_MESSAGE: usize = 300;

fuzz_target!(|data: &[u8]| {
    let c = match ControlFile::parse(data) {
        Ok(c) => c,
        Err(e) => {
            let m = e.to_string();
            assert!(
                !m.contains(['\n', '\r']) && m.len() <= MAX_MESSAGE,
                "error message is not one short line ({} bytes): {m:?}",
                m.len()
            );
            return;
        }
    };
    let h = &c.header;
    let hl = h.hash_lengths;
    assert!(h.blocksize.is_power_of_two() && h.blocksize <= MAX_BLOCKSIZE);
    assert!(h.length <= MAX_LENGTH);
    let n = h.length.div_ceil(u64::from(h.blocksize));
    assert_eq!(c.blocks.len() as u64, n, "blocks != ceil(Length/Blocksize)");
    assert_eq!(h.num_blocks(), n);
    assert!((1..=2).contains(&hl.seq_matches));
    assert!((1..=4).contains(&hl.rsum_bytes));
    assert!(hl.checksum_bytes >= 3);
    assert!(usize::from(hl.checksum_bytes) <= h.strong_hash.digest_len());
    assert_eq!(c.blocks.strong_len, usize::from(hl.checksum_bytes));
    assert_eq!(c.blocks.strong.len(), c.blocks.len() * c.blocks.strong_len);
    assert_eq!(c.blocks.algorithm, h.strong_hash);
    let mask = match hl.rsum_bytes {
        4 => u32::MAX,
        3 => 0x00ff_ffff,
        _ => 0x0000_ffff,
    };
    for (i, &w) in c.blocks.weak.iter().enumerate() {
        assert_eq!(w & !mask, 0, "weak sum {i} not masked");
        let _ = c.blocks.strong(i);
    }
    if let Some(s) = &h.sha1 {
        assert!(s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
    if let Some(s) = &h.sha256 {
        assert!(s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    // Round trip. Header::write writes neither Strong-Hash-Algorithm nor an MTime without a
    // Filename, so only those files are expected to come back unchanged.
    if h.strong_hash != StrongHash::Md4 || (h.mtime.is_some() && h.filename.is_none()) {
        return;
    }
    let mut out = Vec::new();
    h.write(&mut out).unwrap();
    let rb = usize::from(hl.rsum_bytes);
    for (i, &w) in c.blocks.weak.iter().enumerate() {
        out.extend_from_slice(&w.to_be_bytes()[4 - rb..]);
        out.extend_from_slice(c.blocks.strong(i));
    }
    let back = match ControlFile::parse(&out) {
        Ok(b) => b,
        Err(e) => panic!(
            "written header does not parse again: {e}\n{:?}",
            String::from_utf8_lossy(&out[..out.len() - c.blocks.len() * hl.record_len()])
        ),
    };
    // An MTime that does not survive formatting (dates outside years 0000..=9999 after the
    // zone offset) is dropped on re-read; compare the rest.
    let mut want = c.clone();
    if let Some(t) = h.mtime {
        if zsync3::httpdate::parse(&zsync3::httpdate::format(t)) != Some(t) {
            want.header.mtime = back.header.mtime;
        }
    }
    assert_eq!(back, want, "round trip changed the control file");
});
