//! The reuse/download plan for a target: which bytes come from a seed and which must be
//! downloaded, as `zsyncranges` prints it, and how to apply it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::control::ControlFile;
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
    pub fn compute(control: &ControlFile, seed: &mut dyn Read) -> std::io::Result<Plan> {
        let mut m = Matcher::new(control);
        let res = m.scan(seed);
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
        for (k, r) in self.reuse.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            s.push_str(&format!("[{},{},{}]", r.dst, r.src, r.len));
        }
        s.push_str("],\"download\":[");
        for (k, r) in self.download.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            s.push_str(&format!("[{},{}]", r.start, r.end - 1));
        }
        s.push_str("]}");
        s
    }

    /// Copy the reused bytes from `seed` into `out` (seed bytes past its end are zeros).
    /// `out` must already have the target's length; downloaded ranges are left alone.
    pub fn apply_reuse(&self, seed: &Path, out: &mut File) -> Result<()> {
        let mut f = File::open(seed).map_err(|e| Error::io(seed, e))?;
        let mut buf = vec![0u8; 1 << 20];
        for r in &self.reuse {
            let mut done = 0u64;
            f.seek(SeekFrom::Start(r.src))
                .map_err(|e| Error::io(seed, e))?;
            while done < r.len {
                let want = (r.len - done).min(buf.len() as u64) as usize;
                let got = crate::make::read_full(&mut f, &mut buf[..want])
                    .map_err(|e| Error::io(seed, e))?;
                buf[got..want].fill(0);
                out.seek(SeekFrom::Start(r.dst + done))
                    .and_then(|_| out.write_all(&buf[..want]))
                    .map_err(Error::Stream)?;
                done += want as u64;
            }
        }
        Ok(())
    }
}
