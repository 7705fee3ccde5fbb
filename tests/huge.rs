//! Huge files (issue #6): a target of 4.5 GiB, past every 32-bit offset, made as a sparse
//! file (zeros, and a few written regions, most beyond 4 GiB), so it costs next to no disk.
//!
//! The files live in a directory on /dev/shm when there is one: reading holes there is
//! about a hundred times faster than on ext4, where the kernel also fills the page cache
//! with the zeros (the client's output is a real 4.5 GiB file, held in memory there until
//! the test ends). Directories left by killed runs are removed first.
//!
//! Every file is described by a [`Sparse`] model: the expected header, block records, SHA-1
//! and JSON are computed from it, and the client's output is compared with it. The client
//! is served by a small `pread` server ([`RangeServer`]). Both tests together take about
//! 40 s on the 2-core CI machine (each program reads the 4.5 GiB once).

mod common;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use common::bin;
use sha1::{Digest, Sha1};
use zsync3::control::ControlFile;
use zsync3::hashlen::HashLengths;
use zsync3::rsum::Rsum;
use zsync3::strong::{hex, md4};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// Block size (`-b 65536`: fewer blocks, a smaller .zsync).
const BS: u64 = 65536;
/// Target length: 4.5 GiB and a short last block (which is padded with zeros).
const LEN: u64 = 4 * GIB + GIB / 2 + 12345;
/// Where the seed differs from the target (beyond 4 GiB, spanning two blocks).
///
/// With `Hash-Lengths: 2,…` a block is found only as one of a matching pair, and the first
/// zero window of the seed marks all pairs of zero blocks known at once, two by two. A run
/// of an odd number of zero blocks next to the changed region would leave its last block
/// to be downloaded too (the reference does the same), so every run of zero blocks in the
/// target has an even length.
const CHANGED_AT: u64 = 4 * GIB + 300 * MIB + BS + 777;
const CHANGED_LEN: usize = 70_000;
/// A written region beyond 4 GiB that the seed has too.
const KEPT_AT: u64 = 4 * GIB + 3 * BS + 100;
/// Longest any program may run.
const TIME_LIMIT_SECS: &str = "600";

// ---------------------------------------------------------------------------------------
// Sparse files and their model
// ---------------------------------------------------------------------------------------

/// `len` bytes of zeros, except for the `regions` (offset, bytes), which do not overlap.
struct Sparse {
    len: u64,
    regions: Vec<(u64, Vec<u8>)>,
}

/// Pseudo-random bytes (xorshift64*).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = common::Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
    rng.bytes(n)
}

impl Sparse {
    /// The target: a region below 4 GiB, two beyond, and one over the last two blocks (with
    /// `Hash-Lengths` 2,… the last block is only found as the second of a pair, SPEC §3.2.1,
    /// and a zero block before it would already be known from the many zero blocks).
    fn target() -> Sparse {
        Sparse {
            len: LEN,
            regions: vec![
                (MIB + 7, noise(5000, 1)),
                (KEPT_AT, noise(100_000, 2)),
                (CHANGED_AT, noise(CHANGED_LEN, 3)),
                (LEN / BS * BS - 3000, noise(3000 + (LEN % BS) as usize, 4)),
            ],
        }
    }

    /// The seed: the target with the region at [`CHANGED_AT`] replaced by other bytes.
    fn seed() -> Sparse {
        let mut s = Sparse::target();
        s.regions[2].1 = noise(CHANGED_LEN, 5);
        s
    }

    /// Create the file: set its length, write the regions (the rest stays a hole).
    fn write(&self, path: &Path) {
        let f = File::create(path).unwrap();
        f.set_len(self.len).unwrap();
        for (off, data) in &self.regions {
            f.write_all_at(data, *off).unwrap();
        }
    }

    /// Does `[off, off + n)` touch a region?
    fn touches(&self, off: u64, n: u64) -> bool {
        self.regions
            .iter()
            .any(|(o, d)| *o < off + n && off < o + d.len() as u64)
    }

    /// The bytes `[off, off + n)`; zeros past the end.
    fn bytes(&self, off: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        for (o, d) in &self.regions {
            let lo = (*o).max(off);
            let hi = (o + d.len() as u64).min(off + n as u64);
            if lo < hi {
                v[(lo - off) as usize..(hi - off) as usize]
                    .copy_from_slice(&d[(lo - o) as usize..(hi - o) as usize]);
            }
        }
        v
    }

    /// Do `self[a..a+n)` and `other[b..b+n)` hold the same bytes?
    fn same(&self, a: u64, other: &Sparse, b: u64, n: u64) -> bool {
        let mut done = 0;
        while done < n {
            let k = (n - done).min(MIB);
            let (x, y) = (a + done, b + done);
            if (self.touches(x, k) || other.touches(y, k))
                && self.bytes(x, k as usize) != other.bytes(y, k as usize)
            {
                return false;
            }
            done += k;
        }
        true
    }

    /// SHA-1 of the whole content, lowercase hex.
    fn sha1(&self) -> String {
        let mut h = Sha1::new();
        let zeros = vec![0u8; MIB as usize];
        let mut off = 0;
        while off < self.len {
            let k = (self.len - off).min(MIB);
            if self.touches(off, k) {
                h.update(self.bytes(off, k as usize));
            } else {
                h.update(&zeros[..k as usize]);
            }
            off += k;
        }
        hex(&h.finalize())
    }

    /// Check that the file at `path` holds exactly this content.
    fn check_file(&self, path: &Path) {
        let f = File::open(path).unwrap();
        assert_eq!(f.metadata().unwrap().len(), self.len, "{}", path.display());
        let mut buf = vec![0u8; MIB as usize];
        let mut off = 0;
        while off < self.len {
            let k = (self.len - off).min(MIB) as usize;
            f.read_exact_at(&mut buf[..k], off).unwrap();
            let ok = if self.touches(off, k as u64) {
                buf[..k] == self.bytes(off, k)[..]
            } else {
                buf[..k].iter().all(|&b| b == 0)
            };
            assert!(
                ok,
                "{} differs in [{off}, {})",
                path.display(),
                off + k as u64
            );
            off += k as u64;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Places, programs, a server
// ---------------------------------------------------------------------------------------

/// A fresh directory on /dev/shm (else the temp dir), removed on drop.
struct ShmDir(PathBuf);

impl ShmDir {
    fn new(tag: &str) -> ShmDir {
        let base = if avail_gib("/dev/shm") >= 6 {
            PathBuf::from("/dev/shm")
        } else {
            eprintln!("/dev/shm is missing or small: using the temp dir (much slower)");
            std::env::temp_dir()
        };
        // Remove what killed runs left (their process is gone).
        for e in fs::read_dir(&base).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(rest) = name.strip_prefix("zsync3-huge-") {
                let pid = rest.split('-').nth(1).unwrap_or("");
                if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let d = base.join(format!("zsync3-huge-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        ShmDir(d)
    }
}

/// Free space on the file system of `path` in GiB (0 if unknown).
fn avail_gib(path: &str) -> u64 {
    let out = Command::new("df")
        .args(["-k", "--output=avail", path])
        .output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)?
                .trim()
                .parse()
                .ok()
        })
        .map_or(0, |kib: u64| kib >> 20)
}

impl Drop for ShmDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Run one of our programs in `cwd` under `timeout`; it must succeed.
fn run_ok(cwd: &Path, program: &str, args: &[&str]) -> Output {
    let start = Instant::now();
    let out = Command::new("timeout")
        .args(["-k", "5", TIME_LIMIT_SECS])
        .arg(bin(program))
        .args(args)
        .current_dir(cwd)
        .env("HOME", cwd)
        .env_remove("ZSYNC_CURL")
        .env_remove("http_proxy")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .output()
        .expect("run timeout(1)");
    eprintln!("{program} {args:?}: {:?}", start.elapsed());
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A minimal HTTP server for one file that answers each request with the first range of its
/// `Range` header (206, read with `pread`) and logs the headers. tests/support's
/// `TestServer` reads the whole file into memory for every request, 4.5 GiB here.
struct RangeServer {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    accept: Option<JoinHandle<()>>,
}

impl RangeServer {
    fn start(file: PathBuf) -> RangeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        let accept = std::thread::spawn(move || {
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let Some(range) = answer(&mut s, &file) else {
                    break; // the stop request
                };
                log2.lock().unwrap().push(range);
            }
        });
        RangeServer {
            port,
            log,
            accept: Some(accept),
        }
    }

    fn ranges_asked(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.write_all(b"STOP / HTTP/1.1\r\n\r\n");
        }
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Answer one request on `s`; returns its `Range` header (`-` if none), `None` for STOP.
fn answer(s: &mut TcpStream, file: &Path) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if head.starts_with("STOP ") {
        return None;
    }
    let range = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("range")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "-".into());
    let f = File::open(file).unwrap();
    let len = f.metadata().unwrap().len();
    let first = range
        .strip_prefix("bytes=")
        .and_then(|r| r.split(',').next())
        .and_then(|r| r.trim().split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
    let Some((a, b)) = first.filter(|(a, b)| a <= b && *a < len) else {
        let _ = s.write_all(
            b"HTTP/1.1 501 Ranges only\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return Some(range);
    };
    let b = b.min(len - 1);
    let _ = write!(
        s,
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{len}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        b - a + 1
    );
    let mut buf = vec![0u8; MIB as usize];
    let mut off = a;
    while off <= b {
        let k = (b + 1 - off).min(MIB) as usize;
        f.read_exact_at(&mut buf[..k], off).unwrap();
        if s.write_all(&buf[..k]).is_err() {
            break;
        }
        off += k as u64;
    }
    Some(range)
}

/// The header of a control file (up to the blank line) and its block table.
fn split_zsync(zs: &[u8]) -> (String, &[u8]) {
    let end = zs.len() - ControlFile::parse_header(zs).unwrap().1.len();
    (String::from_utf8(zs[..end].to_vec()).unwrap(), &zs[end..])
}

/// The target bytes the seed cannot supply, as an inclusive range: the blocks of the
/// changed region.
fn changed_blocks() -> (u64, u64) {
    let first = CHANGED_AT / BS;
    let last = (CHANGED_AT + CHANGED_LEN as u64 - 1) / BS;
    (first * BS, ((last + 1) * BS).min(LEN) - 1)
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[test]
fn zsyncmake_and_zsyncranges_beyond_4_gib() {
    let start = Instant::now();
    let dir = ShmDir::new("make");
    let target = Sparse::target();
    target.write(&dir.0.join("target"));
    let sha1 = target.sha1();
    run_ok(
        &dir.0,
        "zsyncmake",
        &[
            "-b",
            "65536",
            "-M",
            "-u",
            "target",
            "-o",
            "target.zsync",
            "target",
        ],
    );
    let zs = fs::read(dir.0.join("target.zsync")).unwrap();
    let (header, table) = split_zsync(&zs);
    let hl = HashLengths::for_file(LEN, BS as u32);
    assert_eq!(hl.to_string(), "2,4,5");
    assert_eq!(
        header,
        format!(
            "zsync: 0.6.2\nFilename: target\nBlocksize: 65536\nLength: {LEN}\nHash-Lengths: {hl}\nURL: target\nSHA-1: {sha1}\n\n"
        )
    );

    // Every record: the last 4 bytes of the rolling sum, the first 5 of the MD4, of each
    // block padded with zeros to 64 KiB.
    let blocks = LEN.div_ceil(BS);
    assert_eq!(blocks, 73729);
    let rec = 9u64;
    assert_eq!(table.len() as u64, blocks * rec, "size of the block table");
    let record = |data: &[u8]| -> Vec<u8> {
        let r = Rsum::of(data).to_be_bytes();
        [&r[..], &md4(data)[..5]].concat()
    };
    let zero_record = record(&vec![0u8; BS as usize]);
    let mut written = 0;
    for (i, got) in table.chunks_exact(rec as usize).enumerate() {
        let off = i as u64 * BS;
        let want = if target.touches(off, BS) {
            written += 1;
            record(&target.bytes(off, BS as usize))
        } else {
            zero_record.clone()
        };
        assert_eq!(got, &want[..], "record of block {i} (offset {off})");
    }
    // The written blocks: 1 below 4 GiB, 2 + 2 + 2 beyond.
    assert_eq!(written, 7);
    let kept = (KEPT_AT / BS) as usize;
    let kept_record = &table[kept * rec as usize..(kept + 1) * rec as usize];
    assert!(kept as u64 * BS > 1 << 32 && kept_record != &zero_record[..]);
    eprintln!("zsyncmake checked after {:?}", start.elapsed());

    // zsyncranges against a seed that differs in one region beyond 4 GiB.
    let seed = Sparse::seed();
    seed.write(&dir.0.join("seed"));
    let out = run_ok(&dir.0, "zsyncranges", &["target.zsync", "seed"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["length"].as_u64(), Some(LEN));
    assert_eq!(json["checksum"]["SHA-1"].as_str(), Some(sha1.as_str()));
    let (a, b) = changed_blocks();
    assert!(a > 1 << 32);
    assert_eq!(json["download"], serde_json::json!([[a, b]]));
    // Each reuse instruction is right (the seed's bytes are the target's), and every block
    // is either reused (several times is allowed, SPEC [S41]) or downloaded, not both.
    let mut reused = vec![false; blocks as usize];
    let mut kept_entry = None;
    for r in json["reuse"].as_array().unwrap() {
        let v: Vec<u64> = r
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        let (dst, src, len) = (v[0], v[1], v[2]);
        assert!(
            dst % BS == 0 && (len % BS == 0 || dst + len == LEN),
            "unaligned {v:?}"
        );
        assert!(target.same(dst, &seed, src, len), "wrong reuse {v:?}");
        for i in dst / BS..(dst + len).div_ceil(BS) {
            reused[i as usize] = true;
        }
        if (dst..dst + len).contains(&(kept as u64 * BS)) {
            kept_entry = Some(v);
        }
    }
    for (i, &r) in reused.iter().enumerate() {
        let downloaded = (a / BS..=b / BS).contains(&(i as u64));
        assert!(
            r != downloaded,
            "block {i}: reused {r}, downloaded {downloaded}"
        );
    }
    // The region beyond 4 GiB is found where it is: exact offsets past 2^32.
    let v = kept_entry.expect("the kept region is reused");
    assert!(v[1] > 1 << 32 && v[0] == v[1], "{v:?}");
    eprintln!("zsyncranges checked after {:?}", start.elapsed());
}

#[test]
fn client_beyond_4_gib_downloads_only_the_changed_blocks() {
    let start = Instant::now();
    let dir = ShmDir::new("client");
    let (srv_dir, work) = (dir.0.join("srv"), dir.0.join("work"));
    fs::create_dir_all(&srv_dir).unwrap();
    fs::create_dir_all(&work).unwrap();
    let target = Sparse::target();
    target.write(&srv_dir.join("target"));
    Sparse::seed().write(&work.join("seed"));
    let srv = RangeServer::start(srv_dir.join("target"));
    let url = format!("http://127.0.0.1:{}/target", srv.port);
    let zs = work.join("target.zsync");
    let target_path = srv_dir.join("target");
    run_ok(
        &work,
        "zsyncmake",
        &[
            "-b",
            "65536",
            "-M",
            "-u",
            &url,
            "-o",
            zs.to_str().unwrap(),
            target_path.to_str().unwrap(),
        ],
    );
    // The client checks the SHA-1 of the result itself.
    run_ok(
        &work,
        "zsync",
        &["-q", "-i", "seed", "-o", "out", "target.zsync"],
    );
    let (a, b) = changed_blocks();
    assert_eq!(srv.ranges_asked(), [format!("bytes={a}-{b}")]);
    let mut names: Vec<String> = fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["out", "seed", "target.zsync"]);
    target.check_file(&work.join("out"));
    eprintln!("client checked after {:?}", start.elapsed());
}
