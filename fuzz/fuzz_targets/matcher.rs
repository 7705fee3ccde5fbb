//! The matcher end to end: a small target, one or two seeds made of edits of it, any
//! block size and `Hash-Lengths` (and the zsync 0.8 strong hashes); `make` the control
//! file, parse it, scan the seeds, and check the plan:
//! - every reuse triple is true: target bytes `[dst, dst+len)` equal seed bytes
//!   `[src, src+len)`, seed bytes past its end reading as zero (unless the block's stored
//!   checksums really do collide with the seed window's: short checksums make that
//!   possible, and it is not a bug);
//! - reuse ∪ download ∪ blocks marked known covers `[0, L)`, and download does not overlap
//!   what was reused or marked known;
//! - download ranges are non-empty, ascending, disjoint and not adjacent, block-aligned
//!   except at `L`, and within `[0, L)`;
//! - a seed equal to the target with `seq_matches` 1 leaves nothing to download, when the
//!   target has no two equal blocks (see `distinct_blocks`) and at least 2 rsum bytes are
//!   stored (with 1, b is compared in full against a stored low byte, as in the reference).
//!
//! Input: `[bs][hl][flags][shift][fill][tl u16][mark a][mark b][target (≤ tl bytes)][ops …]`,
//! each op 4 bytes (when the input has fewer than tl target bytes, `fill` may extend it). Targets are at most 2 KiB and seeds at most 4 KiB (plus, with a flag,
//! a 1 MiB prefix so that the scan crosses its read-buffer boundary).
#![no_main]

use libfuzzer_sys::fuzz_target;
use md5::Digest;
use zsync3::control::ControlFile;
use zsync3::hashlen::HashLengths;
use zsync3::make::{make, MakeOptions};
use zsync3::plan::{missing_ranges, Plan};
use zsync3::scan::{Matcher, Reuse};

const MAX_TARGET: usize = 2048;
const MAX_SEED: usize = 4096;
/// The scan reads the seed in chunks of max(16·bs, 1 MiB).
const BIG_PREFIX: usize = 1 << 20;
static PREFIX: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Alg {
    Md4,
    Md5,
    Sha224,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::Md4 => "MD4",
            Alg::Md5 => "MD5",
            Alg::Sha224 => "SHA-224",
        }
    }
    /// Digest of `data` zero-padded to `bs` bytes (independent implementations).
    fn digest_padded(self, data: &[u8], bs: usize) -> Vec<u8> {
        let mut v = data.to_vec();
        v.resize(bs, 0);
        match self {
            Alg::Md4 => md4::Md4::digest(&v).to_vec(),
            Alg::Md5 => md5::Md5::digest(&v).to_vec(),
            Alg::Sha224 => sha2::Sha224::digest(&v).to_vec(),
        }
    }
}

/// The plain rolling checksum of a window (SPEC: a = Σd, b = Σ(B-k)·d, mod 2^16).
fn rsum_plain(w: &[u8]) -> u32 {
    let (mut a, mut b) = (0u16, 0u16);
    for &x in w {
        a = a.wrapping_add(u16::from(x));
        b = b.wrapping_add(a);
    }
    (u32::from(a) << 16) | u32::from(b)
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// No two (zero-padded) blocks of the target are equal. With equal blocks, a seed equal to
/// the target need not give every block: once a block is known, a window holding an equal
/// copy no longer matches, the scan rolls on and may match another block at an unaligned
/// offset and jump over an aligned one (the reference's greedy scan does the same).
fn distinct_blocks(target: &[u8], bs: usize) -> bool {
    let mut seen = std::collections::HashSet::new();
    target.chunks(bs).all(|b| {
        let mut v = b.to_vec();
        v.resize(bs, 0);
        seen.insert(v)
    })
}

/// Seed bytes, reading as zero past the end.
fn seed_at(seed: &[u8], i: u64) -> u8 {
    usize::try_from(i)
        .ok()
        .and_then(|i| seed.get(i))
        .copied()
        .unwrap_or(0)
}

/// Check the reuse triples found in one seed.
fn check_reuse(
    reuse: &[Reuse],
    seed: &[u8],
    target: &[u8],
    c: &ControlFile,
    alg: Alg,
    covered: &mut [u8],
) {
    let bs = c.header.blocksize as u64;
    let l = target.len() as u64;
    let hl = c.header.hash_lengths;
    let mask = match hl.rsum_bytes {
        4 => u32::MAX,
        3 => 0x00ff_ffff,
        _ => 0x0000_ffff,
    };
    let cb = usize::from(hl.checksum_bytes);
    for r in reuse {
        assert!(r.len > 0, "empty reuse {r:?}");
        assert_eq!(r.dst % bs, 0, "unaligned reuse {r:?}");
        assert!(r.dst + r.len <= l, "reuse {r:?} past the target's end {l}");
        // Block by block, so that a (legitimate) checksum collision can be told from a bug.
        let mut d = r.dst;
        while d < r.dst + r.len {
            let j = (d / bs) as usize;
            let end = (d + bs).min(r.dst + r.len);
            let s = r.src + (d - r.dst);
            let same = (d..end).all(|t| target[t as usize] == seed_at(seed, s + (t - d)));
            if !same {
                let win: Vec<u8> = (0..bs).map(|k| seed_at(seed, s + k)).collect();
                let collides = rsum_plain(&win) & mask == c.blocks.weak[j]
                    && alg.digest_padded(&win, bs as usize)[..cb] == *c.blocks.strong(j);
                assert!(
                    collides,
                    "reuse {r:?}: target block {j} differs from seed bytes at {s} \
                     (and their checksums do not collide)"
                );
            }
            for t in d..end {
                covered[t as usize] |= 1;
            }
            d = end;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let bs = 1usize << (inp.byte() % 9);
    let h = inp.byte();
    let seq = 1 + (h & 1);
    let rsum_bytes = 1 + ((h >> 1) & 3);
    let mut checksum_bytes = 3 + (h >> 3) % 14;
    let flags = inp.byte();
    let alg = match flags % 4 {
        1 => Alg::Md5,
        2 => Alg::Sha224,
        _ => Alg::Md4,
    };
    if alg == Alg::Sha224 && flags & 0x04 != 0 {
        checksum_bytes += 12; // up to 28
    }
    let small_alphabet = flags & 0x08 != 0;
    let two_seeds = flags & 0x20 != 0;
    let premark = flags & 0x40 != 0;
    let shift = inp.byte();
    // Slow (a 1 MiB seed): keep it rare.
    let big_seed = flags & 0x90 == 0x90 && shift % 4 == 0;
    let fill = inp.byte();
    let tl = usize::from(inp.u16()) % (MAX_TARGET + 1);
    let (ma, mb) = (usize::from(inp.byte()), usize::from(inp.byte()));
    let mut target = inp.take(tl).to_vec();
    // Long targets from short inputs: repeat the given bytes (many equal blocks), or
    // continue with pseudo-random bytes.
    match fill % 3 {
        1 if !target.is_empty() => {
            let mut k = 0;
            while target.len() < tl {
                target.push(target[k]);
                k += 1;
            }
        }
        2 => {
            let mut x = 0x2545_f491_4f6c_dd1d_u64 ^ u64::from(fill);
            while target.len() < tl {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                target.push((x >> 24) as u8);
            }
        }
        _ => {}
    }
    if small_alphabet {
        for b in &mut target {
            *b &= 1;
        }
    }
    let tl = target.len();

    // Seeds: edits of the target.
    let mut seeds: Vec<Vec<u8>> = vec![Vec::new()];
    let mut identity = true;
    while inp.0.len() >= 4 {
        let [op, a, b, cc] = [inp.byte(), inp.byte(), inp.byte(), inp.byte()];
        identity = false;
        let seed = seeds.last_mut().unwrap();
        if seed.len() >= MAX_SEED {
            break;
        }
        let off = usize::from(u16::from_le_bytes([a, b])) % (tl + 1);
        let len = usize::from(cc) << ((op >> 4) & 7);
        let room = MAX_SEED - seed.len();
        match op % 5 {
            0 => {
                let e = (off + len).min(tl);
                seed.extend_from_slice(&target[off..e.min(off + room)]);
            }
            1 => seed.extend((0..usize::from(a % 64).min(room)).map(|i| b ^ (i as u8).wrapping_mul(cc))),
            2 => seed.extend(std::iter::repeat(0).take(len.min(room))),
            3 => {
                // A copy with one byte changed.
                let e = (off + len).min(tl).min(off + room);
                let at = seed.len();
                seed.extend_from_slice(&target[off..e]);
                if e > off {
                    let k = at + usize::from(op >> 4) % (e - off);
                    seed[k] ^= 0x80 | (op & 0x0f);
                }
            }
            _ => {
                if two_seeds && seeds.len() < 2 {
                    seeds.push(Vec::new());
                }
            }
        }
    }
    if identity {
        seeds[0] = target.clone();
    }
    if big_seed {
        // Pseudo-random bytes (constant ones could weak-match a block at every position
        // and make one run take seconds), ending anywhere in the last 2 KiB before 1 MiB.
        let prefix = PREFIX.get_or_init(|| {
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            (0..BIG_PREFIX)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect()
        });
        let mut s = prefix[..BIG_PREFIX - usize::from(shift) * 8].to_vec();
        s.extend_from_slice(&seeds[0]);
        seeds[0] = s;
    }

    // The control file.
    let opts = MakeOptions {
        blocksize: Some(bs as u32),
        threads: 1,
        ..Default::default()
    };
    let mut made = make(&mut &target[..], tl as u64, &opts).expect("make");
    assert_eq!(made.header.length, tl as u64);
    let hl = HashLengths {
        seq_matches: seq,
        rsum_bytes,
        checksum_bytes,
    };
    made.header.hash_lengths = hl;
    let bytes = if alg == Alg::Md4 {
        made.to_bytes()
    } else {
        let mut out = Vec::new();
        made.header.write(&mut out).unwrap();
        assert_eq!(out.pop(), Some(b'\n'));
        out.extend_from_slice(format!("Strong-Hash-Algorithm: {}\n\n", alg.name()).as_bytes());
        for (j, (r, _)) in made.sums.iter().enumerate() {
            out.extend_from_slice(&r.to_be_bytes()[4 - usize::from(rsum_bytes)..]);
            let blk = &target[j * bs..((j + 1) * bs).min(tl)];
            out.extend_from_slice(&alg.digest_padded(blk, bs)[..usize::from(checksum_bytes)]);
        }
        out
    };
    let c = ControlFile::parse(&bytes).expect("a made control file parses");
    assert_eq!(c.header.hash_lengths, hl);
    let n = c.blocks.len();
    assert_eq!(n, tl.div_ceil(bs));

    // Scan.
    let mut covered = vec![0u8; tl];
    let mut marked = vec![false; n];
    let plan = if seeds.len() == 1 && !premark {
        let plan = Plan::compute(&c, &mut &seeds[0][..]).expect("reading a slice");
        check_reuse(&plan.reuse, &seeds[0], &target, &c, alg, &mut covered);
        plan
    } else {
        let mut m = Matcher::new(&c);
        if premark && n > 0 {
            let (first, last) = (ma % n, mb % n);
            m.mark_known(first, last);
            for k in first..=last {
                marked[k] = true;
                for t in k * bs..((k + 1) * bs).min(tl) {
                    covered[t] |= 1;
                }
            }
        }
        for s in &seeds {
            let got = m.scan(&mut &s[..]).expect("reading a slice");
            assert_eq!(got, s.len() as u64, "scan returned a wrong seed length");
            let reuse = m.take_reuse();
            check_reuse(&reuse, s, &target, &c, alg, &mut covered);
        }
        let plan = Plan::from_matcher(&c, &mut m);
        assert!(plan.reuse.is_empty(), "reuse left after take_reuse");
        assert_eq!(plan.download, missing_ranges(m.known(), c.header.blocksize, tl as u64));
        plan
    };
    assert_eq!(plan.length, tl as u64);
    // The threaded scan (tiny chunks, so seams everywhere) and periods passed over (looked
    // for every few bytes) find exactly what the plain sequential scan does.
    let run = |threads: usize, chunk: usize, look: usize| {
        let mut m = Matcher::new(&c)
            .with_threads(threads)
            .with_chunk_size(chunk)
            .with_period_look(look);
        if premark && n > 0 {
            m.mark_known(ma % n, mb % n);
        }
        let mut found = Vec::new();
        for s in &seeds {
            m.scan(&mut &s[..]).expect("reading a slice");
            found.push(m.take_reuse());
        }
        (found, m.known().missing_runs())
    };
    // (A look for a period compares up to 2048 words: not every few bytes of a MiB.)
    let plain = run(1, 1 << 20, 0);
    assert!(
        plain == run(2, 1 + ma % 200, 256 * (1 + mb % 16)),
        "worker threads or period skips changed the result"
    );
    assert!(
        plain == run(1, 1 << 20, 256 * (1 + ma % 16)),
        "period skips changed the result"
    );

    // Download ranges.
    let mut prev_end: Option<u64> = None;
    for r in &plan.download {
        assert!(r.start < r.end, "empty download {r:?}");
        assert!(r.end <= tl as u64, "download {r:?} past {tl}");
        assert_eq!(r.start % bs as u64, 0, "unaligned download {r:?}");
        assert!(r.end % bs as u64 == 0 || r.end == tl as u64, "unaligned download {r:?}");
        if let Some(p) = prev_end {
            assert!(p < r.start, "download ranges not ascending/disjoint: {:?}", plan.download);
        }
        prev_end = Some(r.end);
        for t in r.start..r.end {
            assert_eq!(covered[t as usize], 0, "byte {t} both reused/known and downloaded: {:?}", plan.download);
            covered[t as usize] |= 2;
        }
    }
    if let Some(t) = covered.iter().position(|&x| x == 0) {
        panic!("target byte {t} neither reused nor downloaded");
    }
    if identity && seq == 1 && rsum_bytes >= 2 && !premark && !big_seed && distinct_blocks(&target, bs) {
        assert!(plan.download.is_empty(), "seed == target but {:?} to download", plan.download);
    }
});
