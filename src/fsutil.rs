//! File-system helpers: atomic replacement, so a failure never leaves a half-written file.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Error, Result};

/// A path for a temporary file in the same directory as `path` (so renaming it onto
/// `path` is atomic), e.g. `dir/.name.12345-0.tmp`.
pub fn temp_path_for(path: &Path) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// Create `path` by writing a temporary file next to it and renaming it into place once
/// `write` succeeded and the data is on disk. On any error the temporary file is removed
/// and an existing `path` is left untouched.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir_probe = if path.parent().is_some_and(|p| p.as_os_str().is_empty()) {
        Path::new(".")
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    let tmp = temp_path_for(path);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| Error::io(dir_probe, e))?;
    let result = (|| -> std::io::Result<()> {
        let mut w = BufWriter::with_capacity(1 << 16, file);
        write(&mut w)?;
        let file: File = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    })();
    let result = result
        .map_err(|e| Error::io(path, e))
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A new file in `dir` with no name: it is gone when closed, even after a crash.
pub fn unnamed_file(dir: &Path) -> std::io::Result<File> {
    for _ in 0..100 {
        let p = temp_path_for(&dir.join("zsync3-seed"));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => {
                fs::remove_file(&p)?;
                return Ok(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("cannot create a temporary file"))
}

/// A reader that also writes what it reads to a file.
pub struct Tee<'a, R> {
    inner: R,
    copy: BufWriter<&'a File>,
}

impl<'a, R: std::io::Read> Tee<'a, R> {
    /// Read `inner`, keeping a copy in `copy`.
    pub fn new(inner: R, copy: &'a File) -> Self {
        Tee {
            inner,
            copy: BufWriter::with_capacity(1 << 20, copy),
        }
    }
}

impl<R: std::io::Read> std::io::Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        if n == 0 {
            self.copy.flush()?;
        }
        Ok(n)
    }
}

impl<R> Drop for Tee<'_, R> {
    fn drop(&mut self) {
        let _ = self.copy.flush();
    }
}

/// Sends a file's data to the disk in the background while the file is being written, so
/// that the final `fsync` before it is installed has little left to do.
pub struct Flusher {
    tx: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    unflushed: u64,
}

/// Written bytes between two background flushes.
const FLUSH_STEP: u64 = 32 << 20;

impl Flusher {
    /// Start flushing `file` (a handle to the file being written) when told to.
    pub fn start(file: std::fs::File) -> Flusher {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            while rx.recv().is_ok() {
                while rx.try_recv().is_ok() {}
                // Errors come back from the final fsync, which the caller checks.
                let _ = file.sync_data();
            }
        });
        Flusher {
            tx: Some(tx),
            thread: Some(thread),
            unflushed: 0,
        }
    }

    /// `n` more bytes were written: flush now and then.
    pub fn wrote(&mut self, n: u64) {
        self.unflushed += n;
        if self.unflushed >= FLUSH_STEP {
            self.kick();
        }
    }

    /// Flush what was written so far (in the background).
    pub fn kick(&mut self) {
        self.unflushed = 0;
        if let Some(tx) = &self.tx {
            let _ = tx.send(());
        }
    }

    /// Wait for the background flushes to end.
    pub fn finish(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Stop without waiting: the thread ends after its current flush.
        self.tx = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_leaves_old_file() {
        let dir = std::env::temp_dir().join(format!("zs3-fsutil-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        fs::write(&p, b"old").unwrap();
        let r = write_atomically(&p, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "temp file removed");
        write_atomically(&p, |w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
