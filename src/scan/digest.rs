//! Strong checksums of seed windows, with the two caches that make them cheap: runs of
//! matching blocks are hashed eight windows at a time (multi-buffer MD4), and repeated
//! window content (zero runs, repeated records) reuses the digest of an identical recent
//! window.

use crate::strong::{self, StrongHash};

/// Digests of this many recently hashed windows are kept with their content.
const RECENT_WINDOWS: usize = 4;
/// Largest block size for which recent windows are kept.
const MAX_RECENT_WINDOW: usize = 1 << 16;

/// A digest as stored for comparison: the first `strong_len` bytes count.
pub(super) type Digest = [u8; 32];

/// Computes window digests for one seed at a time (offsets are offsets in that seed).
pub(super) struct Digester {
    algorithm: StrongHash,
    bs: usize,
    /// MD4s of the windows at `batch_at + k·B`, `k < batch_len`.
    batch: [[u8; 16]; 8],
    batch_at: u64,
    batch_len: usize,
    /// Where a run of matches would continue: a digest asked for there is computed with
    /// those of the next seven windows.
    pub(super) run_next: u64,
    /// Recently hashed windows and their digests (content-addressed).
    recent: Vec<(Vec<u8>, Digest)>,
}

impl Digester {
    pub(super) fn new(algorithm: StrongHash, bs: usize) -> Digester {
        Digester {
            algorithm,
            bs,
            batch: [[0; 16]; 8],
            batch_at: 0,
            batch_len: 0,
            run_next: u64::MAX,
            recent: Vec::new(),
        }
    }

    /// Forget offset-keyed state (a new seed starts).
    pub(super) fn new_seed(&mut self) {
        self.batch_len = 0;
        self.run_next = u64::MAX;
    }

    /// The digest of the window at seed offset `x`; `win` starts there and holds at least
    /// one block (more lets a run be hashed ahead).
    pub(super) fn digest(&mut self, win: &[u8], x: u64) -> Digest {
        let bs = self.bs;
        if bs <= MAX_RECENT_WINDOW {
            if let Some((_, d)) = self.recent.iter().find(|(w, _)| w[..] == win[..bs]) {
                return *d;
            }
        }
        let d = if self.algorithm != StrongHash::Md4 {
            // zsync 0.8 files may use another algorithm (no multi-buffer path for those).
            self.algorithm.digest_padded(&win[..bs], bs)
        } else {
            let mut out = [0u8; 32];
            out[..16].copy_from_slice(&self.md4_at(win, x));
            out
        };
        if bs <= MAX_RECENT_WINDOW {
            if self.recent.len() == RECENT_WINDOWS {
                self.recent.remove(0);
            }
            self.recent.push((win[..bs].to_vec(), d));
        }
        d
    }

    fn md4_at(&mut self, win: &[u8], x: u64) -> [u8; 16] {
        let bs = self.bs as u64;
        if x >= self.batch_at && (x - self.batch_at) % bs == 0 {
            let k = ((x - self.batch_at) / bs) as usize;
            if k < self.batch_len {
                return self.batch[k];
            }
        }
        if x == self.run_next && self.bs % 64 == 0 && win.len() >= 8 * self.bs {
            if let Some(d) = crate::md4x8::md4_x8(&win[..8 * self.bs], self.bs) {
                self.batch = d;
                self.batch_at = x;
                self.batch_len = 8;
                return d[0];
            }
        }
        strong::md4(&win[..self.bs])
    }
}
