//! The reuse/download plan for a target: which bytes come from a seed and which must be
//! downloaded, as `zsyncranges` prints it, and how to apply it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::control::ControlFile;
use crate::copy;
use crate::fetch::ByteRange;
use crate::known::KnownSet;
use crate::scan::{Matcher, Reuse};
use crate::{Error, Result};

/// What to copy from a seed and what to download to build the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Target length.
    pub length: u64,
    /// Whole-file checksums from the control file: (algorithm, lowercase hex).
    pub checksums: Vec<(String, String)>,
    /// Copies from the seed, in the order the scan found them.
    pub reuse: Vec<Reuse>,
    /// Target ranges to download, ascending, block-aligned except the end of the file.
    pub download: Vec<ByteRange>,
}

/// The target ranges not covered by `known` blocks: maximal runs, the last clipped to `length`.
pub fn missing_ranges(known: &KnownSet, blocksize: u32, length: u64) -> Vec<ByteRange> {
    let bs = u64::from(blocksize);
    known
        .missing_runs()
        .into_iter()
        .map(|(s, e)| ByteRange::new(s as u64 * bs, (e as u64 * bs).min(length)))
        .collect()
}

impl Plan {
    /// Scan `seed` for blocks of the target described by `control`.
    pub fn compute(control: &ControlFile, seed: &mut (dyn Read + Send)) -> std::io::Result<Plan> {
        Plan::compute_with(control, seed, 0)
    }

    /// [`Plan::compute`] with `threads` scanning threads (0: one per core). The plan does
    /// not depend on the number of threads.
    pub fn compute_with(
        control: &ControlFile,
        seed: &mut (dyn Read + Send),
        threads: usize,
    ) -> std::io::Result<Plan> {
        Plan::scanned(control, threads, |m| m.scan(seed))
    }

    /// [`Plan::compute_with`] for a seed that is a file (see [`Matcher::scan_file`]).
    pub fn compute_file(
        control: &ControlFile,
        seed: &File,
        threads: usize,
    ) -> std::io::Result<Plan> {
        Plan::scanned(control, threads, |m| m.scan_file(seed))
    }

    /// The plan after `scan` with a fresh matcher of `threads` threads.
    fn scanned(
        control: &ControlFile,
        threads: usize,
        scan: impl FnOnce(&mut Matcher<'_>) -> std::io::Result<u64>,
    ) -> std::io::Result<Plan> {
        let mut m = Matcher::new(control).with_threads(threads);
        let res = scan(&mut m);
        let plan = Plan::from_matcher(control, &mut m);
        res.map(|_| plan)
    }

    /// The plan for what a matcher has found so far.
    pub fn from_matcher(control: &ControlFile, m: &mut Matcher<'_>) -> Plan {
        let h = &control.header;
        let mut checksums = Vec::new();
        if let Some(s) = &h.sha1 {
            checksums.push(("SHA-1".to_string(), s.clone()));
        }
        if let Some(s) = &h.sha256 {
            checksums.push(("SHA-256".to_string(), s.clone()));
        }
        Plan {
            length: h.length,
            checksums,
            reuse: m.take_reuse(),
            download: missing_ranges(m.known(), h.blocksize, h.length),
        }
    }

    /// The one-line JSON of `zsyncranges` (no trailing newline):
    /// `{"length":N,"checksum":{"SHA-1":"…"},"reuse":[[dst,src,len],…],"download":[[start,end],…]}`
    /// with inclusive download ends.
    pub fn to_json(&self) -> String {
        let mut s = format!("{{\"length\":{},\"checksum\":{{", self.length);
        for (k, (alg, hex)) in self.checksums.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            s.push_str(&serde_json::Value::from(alg.as_str()).to_string());
            s.push(':');
            s.push_str(&serde_json::Value::from(hex.as_str()).to_string());
        }
        s.push_str("},\"reuse\":[");
        // Lists of numbers, written without the formatting machinery: a plan can have
        // hundreds of thousands of entries.
        let list = |s: &mut String, k: usize, nums: &[u64]| {
            if k > 0 {
                s.push(',');
            }
            s.push('[');
            for (i, &n) in nums.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                push_decimal(s, n);
            }
            s.push(']');
        };
        s.reserve(self.reuse.len() * 24 + self.download.len() * 18);
        for (k, r) in self.reuse.iter().enumerate() {
            list(&mut s, k, &[r.dst, r.src, r.len]);
        }
        s.push_str("],\"download\":[");
        for (k, r) in self.download.iter().enumerate() {
            list(&mut s, k, &[r.start, r.end - 1]);
        }
        s.push_str("]}");
        s
    }

    /// Copy the reused bytes from `seed` into `out` (seed bytes past its end are zeros).
    /// `out` must already have the target's length; downloaded ranges are left alone.
    pub fn apply_reuse(&self, seed: &Path, out: &File, out_path: &Path) -> Result<()> {
        let f = File::open(seed).map_err(|e| Error::io(seed, e))?;
        let len = f.metadata().map_err(|e| Error::io(seed, e))?.len();
        let pieces = self.reuse.iter().map(|r| copy::Piece::of(r, 0)).collect();
        let fill = copy::Fill::new(vec![copy::Seed { file: f, len }], pieces);
        copy::copy_now(fill, out).map_err(|e| Error::io(out_path, e))
    }
}

/// Append `n` in decimal.
fn push_decimal(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.extend(digits[at..].iter().map(|&d| d as char));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::make::{make, MakeOptions};

    /// Numbers in the JSON are written as `format!` writes them.
    #[test]
    fn decimal_numbers_as_format_writes_them() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut nums = vec![0, 1, 9, 10, 99, 100, 4096, u64::MAX, u64::MAX - 1, 1 << 63];
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            nums.push(x >> (x % 64));
        }
        for n in nums {
            let mut s = String::from("[");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("[{n}"));
        }
    }

    /// Applying the plan's reuse list to a zero-filled file gives the target wherever the
    /// plan reuses, including a last block matched against the seed's end (zero padding).
    #[test]
    fn apply_reuse_builds_the_reused_parts() {
        let target: Vec<u8> = (0..10_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 9) as u8)
            .collect();
        let mut seed = b"prefix".to_vec();
        seed.extend_from_slice(&target);
        let opts = MakeOptions {
            blocksize: Some(64),
            ..Default::default()
        };
        let c = ControlFile::parse(&make(&mut &target[..], 0, &opts).unwrap().to_bytes()).unwrap();
        let plan = Plan::compute(&c, &mut &seed[..]).unwrap();
        assert!(plan.download.is_empty());
        let dir = std::env::temp_dir().join(format!("zs3-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("seed"), &seed).unwrap();
        let out = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("out"))
            .unwrap();
        out.set_len(plan.length).unwrap();
        plan.apply_reuse(&dir.join("seed"), &out, &dir.join("out"))
            .unwrap();
        assert_eq!(std::fs::read(dir.join("out")).unwrap(), target);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
