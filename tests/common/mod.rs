//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A small deterministic PRNG (xorshift64*), so failures are reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Test data of one of several kinds: zeros, two-letter, random, periodic, mixed runs.
    pub fn data(&mut self, n: usize) -> Vec<u8> {
        match self.below(5) {
            0 => vec![0; n],
            1 => (0..n)
                .map(|_| if self.next() & 1 == 0 { b'a' } else { b'b' })
                .collect(),
            2 => self.bytes(n),
            3 => {
                let k = self.range(1, 20) as usize;
                let p = self.bytes(k);
                p.iter().copied().cycle().take(n).collect()
            }
            _ => {
                let mut out = Vec::new();
                while out.len() < n {
                    match self.below(3) {
                        0 => out.extend(vec![0u8; self.range(1, 40) as usize]),
                        1 => {
                            let k = self.range(1, 40) as usize;
                            out.extend(self.bytes(k))
                        }
                        _ => {
                            for _ in 0..self.range(1, 20) {
                                out.extend_from_slice(b"xy")
                            }
                        }
                    }
                }
                out.truncate(n);
                out
            }
        }
    }

    /// An edited copy: insertions, deletions, flips, duplications, swaps.
    pub fn mutate(&mut self, t: &[u8]) -> Vec<u8> {
        let mut s = t.to_vec();
        for _ in 0..self.below(7) {
            let p = self.below(s.len() as u64 + 1) as usize;
            match self.below(5) {
                0 => {
                    let k = self.range(1, 50) as usize;
                    let ins = self.data(k);
                    s.splice(p..p, ins);
                }
                1 => {
                    let e = (p + self.range(1, 50) as usize).min(s.len());
                    s.drain(p..e);
                }
                2 => {
                    if p < s.len() {
                        s[p] ^= 0xff
                    }
                }
                3 => {
                    let from = p.saturating_sub(64);
                    let dup = s[from..p].to_vec();
                    s.splice(p..p, dup);
                }
                _ => {
                    let q = self.below(s.len() as u64 + 1) as usize;
                    let (a, b) = (p.min(q), p.max(q));
                    let mut v = s[b..].to_vec();
                    v.extend_from_slice(&s[a..b]);
                    v.extend_from_slice(&s[..a]);
                    s = v;
                }
            }
        }
        s
    }
}

/// A fresh empty directory under the target dir, removed by nobody (cargo clean does it).
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn bin(name: &str) -> PathBuf {
    match name {
        "zsyncmake" => PathBuf::from(env!("CARGO_BIN_EXE_zsyncmake")),
        "zsyncranges" => PathBuf::from(env!("CARGO_BIN_EXE_zsyncranges")),
        "zsync" => PathBuf::from(env!("CARGO_BIN_EXE_zsync")),
        _ => panic!("no binary {name}"),
    }
}

pub fn run(name: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(bin(name))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

pub fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

pub fn oracle(mode: &str, dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/batch.py");
    let st = Command::new("python3")
        .arg(script)
        .arg(mode)
        .arg(dir)
        .status()
        .expect("python3 is needed for the differential tests");
    assert!(st.success(), "oracle failed");
}
