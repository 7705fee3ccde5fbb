//! A read-only view of part of a file (`mmap`): bytes that are in the page cache are read
//! where they are, instead of being copied out first.
//!
//! Only for a file this process owns and never shrinks (the client's working file): if
//! another process cut the file short under a view, reading the lost part would raise
//! SIGBUS. [`Mapped::new`] gives `None` where mapping is not available (not Linux, a file
//! system that cannot map, a part past the file's end); callers then read the bytes.

use std::fs::File;

/// Bytes of a file, mapped into memory; unmapped on drop.
pub struct Mapped {
    /// Start of the mapping (page aligned, before the first byte asked for).
    ptr: *mut u8,
    /// Length of the mapping.
    len: usize,
    /// Bytes before the first byte asked for.
    skip: usize,
}

impl Mapped {
    /// Bytes `[from, to)` of `file` (`from < to`), if they can be mapped. The file must be
    /// at least `to` bytes long, and stay so while the view lives.
    pub fn new(file: &File, from: u64, to: u64) -> Option<Mapped> {
        if from >= to || file.metadata().ok()?.len() < to {
            return None;
        }
        sys::map(file, from, to)
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is a live read-only mapping owned by `self` (see `new`),
        // and `skip < len`.
        unsafe { std::slice::from_raw_parts(self.ptr.add(self.skip), self.len - self.skip) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        sys::unmap(self.ptr, self.len);
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod sys {
    use std::ffi::{c_int, c_long, c_void};
    use std::os::fd::AsRawFd;

    use super::Mapped;

    extern "C" {
        fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            offset: i64,
        ) -> *mut c_void;
        fn munmap(addr: *mut c_void, len: usize) -> c_int;
        fn sysconf(name: c_int) -> c_long;
    }

    const PROT_READ: c_int = 1;
    const MAP_SHARED: c_int = 1;
    const SC_PAGESIZE: c_int = 30;

    pub(super) fn map(file: &std::fs::File, from: u64, to: u64) -> Option<Mapped> {
        // SAFETY: sysconf has no preconditions.
        let page = u64::try_from(unsafe { sysconf(SC_PAGESIZE) }).ok()?;
        if !page.is_power_of_two() {
            return None;
        }
        let base = from & !(page - 1);
        let len = usize::try_from(to - base).ok()?;
        let offset = i64::try_from(base).ok()?;
        // SAFETY: a fresh read-only shared mapping of an open file; the kernel checks the
        // arguments and reports failure as MAP_FAILED.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                PROT_READ,
                MAP_SHARED,
                file.as_raw_fd(),
                offset,
            )
        };
        if ptr as isize == -1 || ptr.is_null() {
            return None;
        }
        Some(Mapped {
            ptr: ptr.cast(),
            len,
            skip: (from - base) as usize,
        })
    }

    pub(super) fn unmap(ptr: *mut u8, len: usize) {
        // SAFETY: `ptr, len` is a mapping made by `map` and not used after this.
        unsafe {
            munmap(ptr.cast(), len);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
mod sys {
    use super::Mapped;

    pub(super) fn map(_file: &std::fs::File, _from: u64, _to: u64) -> Option<Mapped> {
        None
    }

    pub(super) fn unmap(_ptr: *mut u8, _len: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    /// A view holds exactly the bytes asked for, at any alignment, and sees what was written
    /// to the file before it was made; parts past the end are refused.
    #[test]
    fn views_hold_the_bytes_asked_for() {
        let dir = std::env::temp_dir().join(format!("zs3-mapped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = File::options().read(true).write(true).open(&path).unwrap();
        let len = data.len() as u64;
        for (from, to) in [
            (0, 1),
            (0, len),
            (1, 4096),
            (4095, 4097),
            (8192, 70_001),
            (123_457, len),
        ] {
            match Mapped::new(&f, from, to) {
                Some(m) => assert_eq!(m.bytes(), &data[from as usize..to as usize], "{from}..{to}"),
                // Where mapping is not available, nothing is.
                None if cfg!(all(target_os = "linux", target_pointer_width = "64")) => {
                    panic!("{from}..{to} not mapped")
                }
                None => {}
            }
        }
        f.write_all_at(b"new bytes", 5000).unwrap();
        let mut want = data[4999..5010].to_vec();
        want[1..10].copy_from_slice(b"new bytes");
        if let Some(m) = Mapped::new(&f, 4999, 5010) {
            assert_eq!(m.bytes(), &want[..]);
        }
        assert!(Mapped::new(&f, 0, len + 1).is_none());
        assert!(Mapped::new(&f, 10, 10).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
