//! Whole-file verification: the SHA-1 (and SHA-256, when the .zsync has one) of the
//! assembled file against the control file's.
//!
//! The client hashes the working file front to back on a thread of its own while the
//! download is still filling it ([`PrefixHasher`]): whatever prefix of the file is final is
//! hashed as soon as it is, so little is left to hash once the last block arrives.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::control::ControlFile;
use crate::{strong, Error, Result};

/// The whole-file hashes a control file asks for, being computed.
pub struct FileHashes {
    sha1: Sha1,
    sha256: Option<Sha256>,
}

impl FileHashes {
    /// Empty hashes of the kinds `control` lists.
    pub fn new(control: &ControlFile) -> FileHashes {
        FileHashes {
            sha1: Sha1::new(),
            sha256: control.header.sha256.as_ref().map(|_| Sha256::new()),
        }
    }

    /// Hash the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        self.sha1.update(data);
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
    }

    /// Compare with the control file; `path` names the file in the error.
    pub fn check(self, control: &ControlFile, path: &Path) -> Result<()> {
        let checks = [
            (
                "SHA-1",
                control.header.sha1.as_ref(),
                strong::hex(&self.sha1.finalize()),
            ),
            (
                "SHA-256",
                control.header.sha256.as_ref(),
                self.sha256
                    .map(|h| strong::hex(&h.finalize()))
                    .unwrap_or_default(),
            ),
        ];
        for (name, want, got) in checks {
            if let Some(want) = want {
                if &got != want {
                    return Err(Error::Verify(format!(
                        "the assembled file's {name} is {got}, but the .zsync says {want}; the download is left in {}",
                        path.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Read bytes of `file` from `at` into `buf` (not empty): how many, at least one (a file
/// that ends before is an error).
fn read_some(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    match file.read_at(buf, at)? {
        0 => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file is shorter than the .zsync says",
        )),
        n => Ok(n),
    }
}

/// Hash bytes `[from, to)` of `file` into `hashes`, reading through `buf` (not empty).
fn hash_range(
    file: &File,
    hashes: &mut FileHashes,
    buf: &mut [u8],
    from: u64,
    to: u64,
) -> std::io::Result<()> {
    let mut at = from;
    while at < to {
        let want = (to - at).min(buf.len() as u64) as usize;
        let n = read_some(file, &mut buf[..want], at)?;
        hashes.update(&buf[..n]);
        at += n as u64;
    }
    Ok(())
}

/// Check the whole file at `path` against the control file's SHA-1 (and SHA-256).
pub fn verify(control: &ControlFile, path: &Path) -> Result<()> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hashes = FileHashes::new(control);
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut buf = vec![0u8; 1 << 20];
    hash_range(&f, &mut hashes, &mut buf, 0, len).map_err(|e| Error::io(path, e))?;
    hashes.check(control, path)
}

/// Hashes a file that is being filled, on its own thread, as far as its content is final.
pub struct PrefixHasher {
    tx: mpsc::Sender<u64>,
    done: u64,
    thread: JoinHandle<std::io::Result<FileHashes>>,
}

/// The hasher is told of progress in steps of at least this many bytes.
const STEP: u64 = 4 << 20;

/// Most bytes of the file mapped at a time (the mapped pages count in the process's
/// resident memory while they are mapped).
const VIEW: u64 = 8 << 20;

/// Hash bytes `[from, to)` of `file`, which this process is filling: where it can, in the
/// page cache itself (the bytes were just written there), else read through `buf`.
fn hash_written(
    file: &File,
    hashes: &mut FileHashes,
    buf: &mut Vec<u8>,
    from: u64,
    to: u64,
) -> std::io::Result<()> {
    if file.metadata()?.len() < to {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the file is shorter than the .zsync says",
        ));
    }
    let mut at = from;
    while at < to {
        let end = to.min(at + VIEW);
        match crate::mapped::Mapped::new(file, at, end) {
            Some(view) => hashes.update(view.bytes()),
            None => {
                buf.resize(1 << 20, 0);
                hash_range(file, hashes, buf, at, end)?;
            }
        }
        at = end;
    }
    Ok(())
}

impl PrefixHasher {
    /// Start hashing `file` (bytes become final through [`PrefixHasher::advance`]). The
    /// file is the caller's working file: it only ever grows while it is hashed.
    pub fn start(file: File, hashes: FileHashes) -> PrefixHasher {
        let (tx, rx) = mpsc::channel::<u64>();
        let thread = std::thread::spawn(move || {
            let mut hashes = hashes;
            let mut hashed = 0u64;
            let mut buf = Vec::new();
            while let Ok(mut upto) = rx.recv() {
                while let Ok(u) = rx.try_recv() {
                    upto = upto.max(u);
                }
                if upto > hashed {
                    hash_written(&file, &mut hashes, &mut buf, hashed, upto)?;
                    hashed = upto;
                }
            }
            Ok(hashes)
        });
        PrefixHasher {
            tx,
            done: 0,
            thread,
        }
    }

    /// Bytes `[0, upto)` of the file will not change any more.
    pub fn advance(&mut self, upto: u64) {
        if upto >= self.done + STEP {
            self.done = upto;
            // A hasher that stopped (a read error) reports it from `finish`.
            let _ = self.tx.send(upto);
        }
    }

    /// The hashes of bytes `[0, len)`, once all of them are final.
    pub fn finish(self, len: u64) -> std::io::Result<FileHashes> {
        let _ = self.tx.send(len);
        drop(self.tx);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the hashing thread failed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::make::{make, MakeOptions};

    /// Hashing a file in uneven steps while it is written gives the same verdict as
    /// hashing it whole; a changed byte is caught either way, SHA-1 and SHA-256.
    #[test]
    fn prefix_hashing_equals_whole_file_hashing() {
        let data: Vec<u8> = (0..(9u32 << 20) + 12345)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        let opts = MakeOptions {
            sha256: true,
            ..Default::default()
        };
        let c = ControlFile::parse(&make(&mut &data[..], 0, &opts).unwrap().to_bytes()).unwrap();
        assert!(c.header.sha256.is_some());
        let dir = std::env::temp_dir().join(format!("zs3-verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        for corrupt in [None, Some(5usize), Some(data.len() - 1), Some(6 << 20)] {
            let mut d = data.clone();
            if let Some(k) = corrupt {
                d[k] ^= 0x40;
            }
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            let mut h = PrefixHasher::start(f.try_clone().unwrap(), FileHashes::new(&c));
            let mut at = 0usize;
            for step in [1usize, 5 << 20, 100, 3 << 20, usize::MAX].iter().cycle() {
                let end = at.saturating_add(*step).min(d.len());
                f.write_all_at(&d[at..end], at as u64).unwrap();
                at = end;
                h.advance(at as u64);
                if at == d.len() {
                    break;
                }
            }
            let r = h.finish(d.len() as u64).unwrap().check(&c, &path);
            assert_eq!(r.is_ok(), corrupt.is_none(), "{corrupt:?}");
            assert_eq!(verify(&c, &path).is_ok(), corrupt.is_none(), "{corrupt:?}");
        }
        // A file shorter than it should be is an error, not a wait.
        let f = File::create(&path).unwrap();
        f.write_all_at(&data[..1 << 20], 0).unwrap();
        let h = PrefixHasher::start(File::open(&path).unwrap(), FileHashes::new(&c));
        let e = h
            .finish(data.len() as u64)
            .err()
            .expect("a short file fails");
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
