//! Making a control file: read the target once, in order, and compute its block sums and
//! whole-file hash. Memory is O(number of blocks); the file itself is never held.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc;
use std::sync::Arc;

use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::control::{write_record, Header, MAX_BLOCKSIZE};
use crate::hashlen::HashLengths;
use crate::mapped::{mappable_len, Bytes};
use crate::rsum::Rsum;
use crate::strong;
use crate::{Error, Result};

/// What goes into a control file besides the data.
#[derive(Clone, Debug, Default)]
pub struct MakeOptions {
    /// Block size; `None` chooses 2048, or 4096 from 10^8 bytes (by `size_hint`).
    pub blocksize: Option<u32>,
    /// The `Filename` header.
    pub filename: Option<String>,
    /// The `MTime` header (Unix seconds); only written together with a filename.
    pub mtime: Option<i64>,
    /// `URL` headers, in order.
    pub urls: Vec<String>,
    /// Threads for block checksums (0: one per core but one, which hashes the whole file).
    pub threads: usize,
    /// Also write the SHA-256 of the file (`File-Hash: SHA-256:…`, with `Safe: File-Hash`
    /// so zsync 0.6 clients still accept the file).
    pub sha256: bool,
}

/// The block size zsyncmake picks for a file of (about) `size` bytes.
pub fn default_blocksize(size: u64) -> u32 {
    if size < 100_000_000 {
        2048
    } else {
        4096
    }
}

/// Check a user-supplied block size.
pub fn check_blocksize(b: u64) -> Result<u32> {
    if b == 0 || !b.is_power_of_two() || b > u64::from(MAX_BLOCKSIZE) {
        return Err(Error::Usage(format!(
            "blocksize must be a power of 2 from 1 to {MAX_BLOCKSIZE} (512, 1024, 2048, ...), not {b}"
        )));
    }
    Ok(b as u32)
}

/// A finished control file: header plus full-width block sums.
#[derive(Clone, Debug)]
pub struct Made {
    /// The header.
    pub header: Header,
    /// Rolling checksum and full MD4 of every block.
    pub sums: Vec<(Rsum, [u8; 16])>,
}

impl Made {
    /// The control file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// Write the control file.
    pub fn write(&self, w: &mut dyn Write) -> std::io::Result<()> {
        self.header.write(w)?;
        let hl = self.header.hash_lengths;
        let mut buf = Vec::with_capacity(64 * 1024);
        for (r, s) in &self.sums {
            write_record(&mut buf, hl, *r, s);
            if buf.len() >= 60 * 1024 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        w.write_all(&buf)
    }
}

/// Read until `buf` is full or EOF; returns the number of bytes read.
pub(crate) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn block_sums(data: &[u8], bs: usize, out: &mut Vec<(Rsum, [u8; 16])>) {
    let full = data.len() / bs * bs;
    let mut md = Vec::with_capacity(full / bs);
    strong::md4_blocks(&data[..full], bs, &mut md);
    out.extend(data[..full].chunks_exact(bs).map(Rsum::of).zip(md));
    if full < data.len() {
        let tail = &data[full..];
        out.push((
            Rsum::of_padded(tail, (bs - tail.len()) as u64),
            strong::md4_padded(tail, bs),
        ));
    }
}

/// Make a control file from `input`. `size_hint` (e.g. the file size from `stat`, 0 for a
/// pipe) only chooses the default block size. Reading errors are returned as
/// [`Error::Stream`]; the caller names the file.
pub fn make(input: &mut (dyn Read + Send), size_hint: u64, opts: &MakeOptions) -> Result<Made> {
    make_from(Input::Stream(input), size_hint, opts)
}

/// [`make`] for a file: a regular file is looked at where it is in the page cache
/// ([`Mapped::guarded`](crate::mapped::Mapped::guarded)) instead of being copied out first; it is taken to be as long as it
/// was when this began. Anything else is read.
pub fn make_file(file: &File, opts: &MakeOptions) -> Result<Made> {
    match mappable_len(file) {
        Some(len) => make_from(Input::File { file, len }, len, opts),
        None => make(&mut std::io::BufReader::with_capacity(0, file), 0, opts),
    }
}

/// Where the bytes to make a control file of come from.
enum Input<'a> {
    Stream(&'a mut (dyn Read + Send)),
    File { file: &'a File, len: u64 },
}

impl Input<'_> {
    /// The next `chunk` bytes (fewer at the end; none after it), from `at`.
    fn next(&mut self, at: u64, chunk: usize) -> std::io::Result<Bytes> {
        match self {
            Input::Stream(r) => {
                let mut buf = vec![0u8; chunk];
                let n = read_full(*r, &mut buf)?;
                buf.truncate(n);
                Ok(Bytes::Read(buf))
            }
            Input::File { file, len } => {
                let end = (*len).min(at + chunk as u64);
                if end <= at {
                    return Ok(Bytes::Read(Vec::new()));
                }
                Bytes::of(file, at, end)
            }
        }
    }
}

fn make_from(mut input: Input<'_>, size_hint: u64, opts: &MakeOptions) -> Result<Made> {
    let bs = match opts.blocksize {
        Some(b) => check_blocksize(u64::from(b))?,
        None => default_blocksize(size_hint),
    } as usize;
    // The SHA-1 has a thread (a core) of its own; by default the block sums use the rest.
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
        n => n,
    };
    // Chunks are whole blocks: 1 MiB per block-sum thread, up to 4 MiB. Small chunks are
    // still in the caches when the second of the two hashes reads them (with one sum
    // thread, 1 MiB chunks made the 120 MB bench file 8% faster than 4 MiB ones).
    let chunk = bs.max((threads.clamp(1, 4) << 20) / bs * bs);
    let mut sums: Vec<(Rsum, [u8; 16])> = Vec::new();
    let mut length: u64 = 0;
    let want_sha256 = opts.sha256;
    let (sha1, sha256) = std::thread::scope(|s| -> Result<(String, Option<String>)> {
        let (tx, rx) = mpsc::sync_channel::<Arc<Bytes>>(2);
        let hasher = s.spawn(move || {
            let mut h = Sha1::new();
            let mut h256 = want_sha256.then(Sha256::new);
            for buf in rx {
                h.update(&buf[..]);
                if let Some(h2) = &mut h256 {
                    h2.update(&buf[..]);
                }
                // What was hashed was the file's (a view of it may have lost pages).
                buf.check()?;
            }
            Ok((
                strong::hex(&h.finalize()),
                h256.map(|h2| strong::hex(&h2.finalize())),
            ))
        });
        // A reader thread keeps the next chunks coming while this one is summed.
        let (rtx, rrx) = mpsc::sync_channel::<std::io::Result<Bytes>>(2);
        s.spawn(move || {
            let mut at = 0u64;
            loop {
                let r = input.next(at, chunk);
                let last = !matches!(&r, Ok(b) if b.len() == chunk);
                if let Ok(b) = &r {
                    at += b.len() as u64;
                }
                if rtx.send(r).is_err() || last {
                    break;
                }
            }
        });
        let mut result = Ok(());
        for r in rrx {
            let buf = match r {
                Ok(b) => b,
                Err(e) => {
                    result = Err(Error::Stream(e));
                    break;
                }
            };
            let n = buf.len();
            if n == 0 {
                break;
            }
            length += n as u64;
            let buf = Arc::new(buf);
            if tx.send(Arc::clone(&buf)).is_err() {
                break;
            }
            if threads > 1 && n >= 2 * bs {
                let nblocks = n.div_ceil(bs);
                let per = nblocks.div_ceil(threads) * bs;
                let parts: Vec<Vec<(Rsum, [u8; 16])>> = std::thread::scope(|s2| {
                    let hs: Vec<_> = buf
                        .chunks(per)
                        .map(|part| {
                            s2.spawn(move || {
                                let mut v = Vec::new();
                                block_sums(part, bs, &mut v);
                                v
                            })
                        })
                        .collect();
                    hs.into_iter()
                        .map(|h| h.join().expect("block sum thread"))
                        .collect()
                });
                for p in parts {
                    sums.extend(p);
                }
            } else {
                block_sums(&buf, bs, &mut sums);
            }
            if let Err(e) = buf.check() {
                result = Err(Error::Stream(e));
                break;
            }
        }
        drop(tx);
        let digest = hasher.join().expect("SHA-1 thread");
        result.and(digest.map_err(Error::Stream))
    })?;
    let header = Header {
        filename: opts.filename.clone(),
        mtime: opts.mtime.filter(|_| opts.filename.is_some()),
        blocksize: bs as u32,
        length,
        hash_lengths: HashLengths::for_file(length, bs as u32),
        urls: opts.urls.clone(),
        sha1: Some(sha1),
        sha256,
        strong_hash: strong::StrongHash::Md4,
    };
    Ok(Made { header, sums })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/vectors/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn reference_vectors_byte_exact() {
        for (name, bs) in [
            ("v0", 2048),
            ("v1", 2048),
            ("v2047", 2048),
            ("v2048", 2048),
            ("v2049", 2048),
            ("v10000", 2048),
            ("s10000", 2048),
            ("abc27", 8),
        ] {
            let data = vector(name);
            let opts = MakeOptions {
                blocksize: Some(bs),
                filename: Some(name.into()),
                mtime: Some(1704164645),
                urls: vec![name.into()],
                threads: 2,
                sha256: false,
            };
            let made = make(&mut &data[..], data.len() as u64, &opts).unwrap();
            assert_eq!(
                made.to_bytes(),
                vector(&format!("{name}.zsync3.zsync")),
                "{name}"
            );
        }
    }

    /// The output is the same for any number of threads, and so for any chunk size (1 to
    /// 4 MiB, by the number of threads): the file spans several chunks of each size.
    #[test]
    fn threads_do_not_change_output() {
        let data: Vec<u8> = (0..(9u32 << 20) + 300_001)
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect();
        for bs in [1u32, 64, 4096, 1 << 20] {
            // One-byte blocks: a shorter file (every byte is an MD4).
            let data = &data[..if bs == 1 { 300_001 } else { data.len() }];
            let mut outs = Vec::new();
            for threads in [1, 2, 3, 8] {
                let opts = MakeOptions {
                    blocksize: Some(bs),
                    threads,
                    ..Default::default()
                };
                outs.push(make(&mut &data[..], 0, &opts).unwrap().to_bytes());
            }
            assert!(outs.windows(2).all(|w| w[0] == w[1]), "bs {bs}");
        }
    }

    /// A file made from where it lies gives the same control file as the same bytes read
    /// as a stream, at every size around the chunk and block boundaries.
    #[test]
    fn files_give_what_streams_give() {
        let dir = std::env::temp_dir().join(format!("zs3-make-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..(5 << 20) + 5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for threads in [1, 2] {
            let chunk = threads << 20;
            for len in [
                0,
                1,
                2047,
                2048,
                2049,
                chunk - 1,
                chunk,
                chunk + 1,
                2 * chunk + 777,
                data.len(),
            ] {
                let part = &data[..len];
                std::fs::write(&path, part).unwrap();
                let opts = MakeOptions {
                    blocksize: Some(2048),
                    threads,
                    sha256: true,
                    ..Default::default()
                };
                let want = make(&mut &part[..], 0, &opts).unwrap().to_bytes();
                let got = make_file(&File::open(&path).unwrap(), &opts)
                    .unwrap()
                    .to_bytes();
                assert!(got == want, "{len} bytes, {threads} threads");
            }
        }
        // A file that says it is empty but is not (/proc's) is read like a stream.
        if let Ok(version) = std::fs::read("/proc/version") {
            let opts = MakeOptions {
                blocksize: Some(16),
                ..Default::default()
            };
            let want = make(&mut &version[..], 0, &opts).unwrap().to_bytes();
            let f = File::open("/proc/version").unwrap();
            assert_eq!(f.metadata().unwrap().len(), 0);
            assert!(make_file(&f, &opts).unwrap().to_bytes() == want);
        }
        // A file shorter than it was when the make began is an error, not a short result.
        std::fs::write(&path, &data[..100_000]).unwrap();
        let f = File::open(&path).unwrap();
        let opts = MakeOptions::default();
        match make_from(
            Input::File {
                file: &f,
                len: 100_000 + 5000,
            },
            0,
            &opts,
        ) {
            Err(Error::Stream(e)) => assert!(e.to_string().contains("shorter"), "{e}"),
            other => panic!("{:?}", other.map(|m| m.header.length)),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_blocksizes() {
        for b in [0u64, 3, 100, 1 << 25] {
            assert!(check_blocksize(b).is_err(), "{b}");
        }
        assert_eq!(check_blocksize(1).unwrap(), 1);
    }
}
