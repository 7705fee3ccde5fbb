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

/// Bytes read and hashed at a time.
const PIECE: usize = 256 << 10;

impl PrefixHasher {
    /// Start hashing `file` (bytes become final through [`PrefixHasher::advance`]).
    pub fn start(file: File, hashes: FileHashes) -> PrefixHasher {
        let (tx, rx) = mpsc::channel::<u64>();
        let thread = std::thread::spawn(move || {
            // Reading and hashing overlap: this thread copies the final bytes out of the
            // page cache, a second one hashes them (the hash is what the end of an update
            // waits for).
            let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(2);
            let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
            std::thread::scope(|s| {
                let hasher = s.spawn(move || {
                    let mut hashes = hashes;
                    for buf in full_rx {
                        hashes.update(&buf);
                        let _ = empty_tx.send(buf);
                    }
                    hashes
                });
                let read = (|| -> std::io::Result<()> {
                    let mut hashed = 0u64;
                    while let Ok(mut upto) = rx.recv() {
                        while let Ok(u) = rx.try_recv() {
                            upto = upto.max(u);
                        }
                        while hashed < upto {
                            let mut buf = empty_rx.try_recv().unwrap_or_default();
                            buf.resize(PIECE, 0);
                            let want = (upto - hashed).min(PIECE as u64) as usize;
                            let n = read_some(&file, &mut buf[..want], hashed)?;
                            buf.truncate(n);
                            hashed += n as u64;
                            if full_tx.send(buf).is_err() {
                                return Err(std::io::Error::other("the hashing thread failed"));
                            }
                        }
                    }
                    Ok(())
                })();
                drop(full_tx);
                let hashes = hasher
                    .join()
                    .map_err(|_| std::io::Error::other("the hashing thread failed"));
                read.and(hashes)
            })
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
