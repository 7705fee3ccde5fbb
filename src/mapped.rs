//! A read-only view of part of a file (`mmap`): bytes that are in the page cache are read
//! where they are, instead of being copied out first.
//!
//! If another process cuts a file short under a view, reading the lost part raises SIGBUS.
//! [`Mapped::new`] is for a file this process owns and never shrinks (the client's working
//! file). [`Mapped::guarded`] is for any other file (a seed): it registers the view with a
//! SIGBUS handler that puts zeros where the lost pages were and marks the view, so that
//! the reader finds out with [`Mapped::intact`] instead of the process being killed.
//! Both give `None` where mapping is not available (not Linux, a file system that cannot
//! map, a part past the file's end; for a guarded view also other CPUs than x86-64 and
//! AArch64, or too many guarded views at once); callers then read the bytes.

use std::fs::File;

/// Bytes of a file, mapped into memory; unmapped on drop.
pub struct Mapped {
    /// Start of the mapping (page aligned, before the first byte asked for).
    ptr: *mut u8,
    /// Length of the mapping.
    len: usize,
    /// Bytes before the first byte asked for.
    skip: usize,
    /// For a guarded view, its place in the SIGBUS handler's table.
    slot: Option<usize>,
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

    /// [`Mapped::new`] for a file that another process may cut short while the view lives
    /// (a seed): where that happens, the view holds zeros and [`Mapped::intact`] says so.
    pub fn guarded(file: &File, from: u64, to: u64) -> Option<Mapped> {
        let mut m = Mapped::new(file, from, to)?;
        m.slot = Some(guard::register(m.ptr as usize, m.len)?);
        Some(m)
    }

    /// Whether every byte of the view is the file's: false if the file was cut short under
    /// a guarded view and a lost part was read (it read as zeros). A view made by
    /// [`Mapped::new`] is always taken as intact.
    pub fn intact(&self) -> bool {
        self.slot.is_none_or(|k| !guard::was_hit(k))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is a live read-only mapping owned by `self` (see `new`),
        // and `skip < len`.
        unsafe { std::slice::from_raw_parts(self.ptr.add(self.skip), self.len - self.skip) }
    }
}

/// Bytes of a file: read into a buffer, or a view of them where they are (see
/// [`Mapped::guarded`]).
pub enum Bytes {
    /// Read into a buffer.
    Read(Vec<u8>),
    /// Mapped.
    Mapped(Mapped),
}

/// The length of `file` if its bytes can be looked at through views: a regular file that
/// is not empty. (A file that says it is empty may not be, as /proc's files: those are
/// read.)
pub fn mappable_len(file: &File) -> Option<u64> {
    file.metadata()
        .ok()
        .filter(|m| m.is_file() && m.len() > 0)
        .map(|m| m.len())
}

fn shorter() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the file became shorter while it was being read",
    )
}

impl Bytes {
    /// Bytes `[from, to)` of `file` (`from < to`): a guarded view where one can be made,
    /// else read; an error if the file is shorter now.
    pub fn of(file: &File, from: u64, to: u64) -> std::io::Result<Bytes> {
        if let Some(m) = Mapped::guarded(file, from, to) {
            return Ok(Bytes::Mapped(m));
        }
        let mut buf = vec![0u8; (to - from) as usize];
        use std::os::unix::fs::FileExt;
        file.read_exact_at(&mut buf, from)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => shorter(),
                _ => e,
            })?;
        Ok(Bytes::Read(buf))
    }

    /// An error if the bytes are not the file's: it was cut short under a view of it (the
    /// lost part read as zeros).
    pub fn check(&self) -> std::io::Result<()> {
        match self {
            Bytes::Mapped(m) if !m.intact() => Err(shorter()),
            _ => Ok(()),
        }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Read(v) => v,
            Bytes::Mapped(m) => m.bytes(),
        }
    }
}

// SAFETY: the mapping is read-only and owned by the value.
unsafe impl Send for Mapped {}
// SAFETY: as above; shared reads of read-only memory.
unsafe impl Sync for Mapped {}

impl Drop for Mapped {
    fn drop(&mut self) {
        if let Some(k) = self.slot {
            guard::unregister(k);
        }
        sys::unmap(self.ptr, self.len);
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod sys {
    use std::ffi::{c_int, c_long, c_void};
    use std::os::fd::AsRawFd;

    use super::Mapped;

    extern "C" {
        pub(super) fn mmap(
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

    pub(super) const PROT_READ: c_int = 1;
    const MAP_SHARED: c_int = 1;
    const SC_PAGESIZE: c_int = 30;

    /// The page size, if it is a power of two.
    pub(super) fn page_size() -> Option<u64> {
        // SAFETY: sysconf has no preconditions.
        let page = u64::try_from(unsafe { sysconf(SC_PAGESIZE) }).ok()?;
        page.is_power_of_two().then_some(page)
    }

    pub(super) fn map(file: &std::fs::File, from: u64, to: u64) -> Option<Mapped> {
        let page = page_size()?;
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
            slot: None,
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

/// The SIGBUS handler for guarded views: a table of the views' address ranges; a fault in
/// one of them gets a page of zeros mapped in its place and marks the view, any other
/// fault goes to the handler that was there before (by default, the process ends).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod guard {
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Once, OnceLock};

    use super::sys::{mmap, page_size, PROT_READ};

    /// `struct sigaction` as glibc and musl lay it out on these CPUs.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct SigAction {
        handler: usize,
        mask: [u64; 16],
        flags: c_int,
        restorer: usize,
    }

    extern "C" {
        fn sigaction(sig: c_int, act: *const SigAction, old: *mut SigAction) -> c_int;
    }

    const SIGBUS: c_int = 7;
    const SA_SIGINFO: c_int = 4;
    const SA_ONSTACK: c_int = 0x0800_0000;
    const SIG_DFL: usize = 0;
    const SIG_IGN: usize = 1;
    const MAP_PRIVATE: c_int = 2;
    const MAP_FIXED: c_int = 0x10;
    const MAP_ANONYMOUS: c_int = 0x20;
    /// Where the faulting address is in a `siginfo_t` (64-bit Linux).
    const SI_ADDR: usize = 16;

    /// Guarded views at once (the scan keeps a few dozen at most).
    const SLOTS: usize = 128;

    struct Slot {
        /// The view's first byte; 0: the slot is free.
        start: AtomicUsize,
        /// One past its last byte; 0 while the slot is being taken.
        end: AtomicUsize,
        hit: AtomicBool,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const FREE: Slot = Slot {
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        hit: AtomicBool::new(false),
    };
    static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    /// The handler before ours; set once ours is installed.
    static PREVIOUS: OnceLock<SigAction> = OnceLock::new();
    static INSTALL: Once = Once::new();

    fn install() -> bool {
        INSTALL.call_once(|| {
            match page_size().and_then(|p| usize::try_from(p).ok()) {
                Some(p) => PAGE.store(p, Ordering::Relaxed),
                None => return,
            }
            let ours = SigAction {
                handler: on_sigbus as extern "C" fn(c_int, *mut c_void, *mut c_void) as usize,
                mask: [0; 16],
                flags: SA_SIGINFO | SA_ONSTACK,
                restorer: 0,
            };
            let mut old = SigAction {
                handler: SIG_DFL,
                mask: [0; 16],
                flags: 0,
                restorer: 0,
            };
            // The previous handler is recorded first: ours may run as soon as it is set.
            // SAFETY: valid pointers to SigAction values; a null `act` only reads.
            if unsafe { sigaction(SIGBUS, std::ptr::null(), &mut old) } != 0 {
                return;
            }
            let _ = PREVIOUS.set(old);
            // SAFETY: as above; `on_sigbus` is a handler with the SA_SIGINFO signature.
            if unsafe { sigaction(SIGBUS, &ours, std::ptr::null_mut()) } != 0 {
                PAGE.store(0, Ordering::Relaxed);
            }
        });
        PAGE.load(Ordering::Relaxed) != 0
    }

    /// Take a slot for the view `[start, start + len)`; `None` if there is none free or the
    /// handler could not be installed.
    pub(super) fn register(start: usize, len: usize) -> Option<usize> {
        if !install() || start == 0 {
            return None;
        }
        for (k, s) in TABLE.iter().enumerate() {
            if s.start
                .compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                s.hit.store(false, Ordering::Relaxed);
                s.end.store(start + len, Ordering::Release);
                return Some(k);
            }
        }
        None
    }

    pub(super) fn was_hit(k: usize) -> bool {
        TABLE[k].hit.load(Ordering::Acquire)
    }

    /// Free slot `k` (before the view is unmapped).
    pub(super) fn unregister(k: usize) {
        TABLE[k].end.store(0, Ordering::Release);
        TABLE[k].start.store(0, Ordering::Release);
    }

    extern "C" fn on_sigbus(sig: c_int, info: *mut c_void, ctx: *mut c_void) {
        // Only atomics and system calls here: this runs in a signal handler.
        // SAFETY: the kernel passes a valid siginfo_t (SA_SIGINFO).
        let addr = unsafe { info.cast::<u8>().add(SI_ADDR).cast::<usize>().read() };
        let page = PAGE.load(Ordering::Relaxed);
        for s in TABLE.iter() {
            let start = s.start.load(Ordering::Acquire);
            let end = s.end.load(Ordering::Acquire);
            if start != 0 && start <= addr && addr < end {
                // SAFETY: the page lies in a live view of ours (its slot is taken until
                // it is unmapped); a private page of zeros replaces the lost one.
                let p = unsafe {
                    mmap(
                        (addr & !(page - 1)) as *mut c_void,
                        page,
                        PROT_READ,
                        MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                };
                if p as isize != -1 {
                    s.hit.store(true, Ordering::Release);
                    return;
                }
            }
        }
        // Not a view of ours: what would have happened without us.
        match PREVIOUS.get() {
            Some(prev) if prev.flags & SA_SIGINFO != 0 => {
                // SAFETY: a handler installed with SA_SIGINFO has this signature.
                let f: extern "C" fn(c_int, *mut c_void, *mut c_void) =
                    unsafe { std::mem::transmute(prev.handler) };
                f(sig, info, ctx);
            }
            Some(prev) if prev.handler != SIG_DFL && prev.handler != SIG_IGN => {
                // SAFETY: a plain handler has this signature.
                let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(prev.handler) };
                f(sig);
            }
            _ => {
                // The default action: the fault happens again once this returns.
                let dfl = SigAction {
                    handler: SIG_DFL,
                    mask: [0; 16],
                    flags: 0,
                    restorer: 0,
                };
                // SAFETY: a valid SigAction; sigaction is async-signal-safe.
                unsafe { sigaction(sig, &dfl, std::ptr::null_mut()) };
            }
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod guard {
    pub(super) fn register(_start: usize, _len: usize) -> Option<usize> {
        None
    }
    pub(super) fn was_hit(_k: usize) -> bool {
        false
    }
    pub(super) fn unregister(_k: usize) {}
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

    const GUARDED: bool = cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ));

    fn temp_file(name: &str, data: &[u8]) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!("zs3-mapped-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, data).unwrap();
        let f = File::options().read(true).write(true).open(&path).unwrap();
        (dir, f)
    }

    /// A file cut short under guarded views: what is left reads as before, the lost pages
    /// read as zeros, and only the views that read lost pages say so.
    #[test]
    fn guarded_views_survive_a_file_cut_short() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i * 13 + i / 509) as u8 | 1)
            .collect();
        let (dir, f) = temp_file("cut", &data);
        let (other_dir, other) = temp_file("other", &data);
        let head = Mapped::guarded(&f, 0, 8192);
        assert_eq!(head.is_some(), GUARDED);
        let Some(head) = head else { return };
        let lost = Mapped::guarded(&f, 8000, 150_000).unwrap();
        let untouched = Mapped::guarded(&f, 100_000, 200_000).unwrap();
        let elsewhere = Mapped::guarded(&other, 0, 200_000).unwrap();
        f.set_len(50_000).unwrap();
        assert_eq!(head.bytes(), &data[..8192]);
        assert!(head.intact());
        // The page holding the new end reads the file's bytes, then zeros; the pages after
        // it are lost.
        let got = lost.bytes();
        assert_eq!(&got[..42_000], &data[8000..50_000]);
        assert!(got[42_000..].iter().all(|&b| b == 0));
        assert!(!lost.intact());
        assert!(untouched.intact(), "never read");
        assert_eq!(elsewhere.bytes(), &data[..]);
        assert!(elsewhere.intact());
        // Slots are reused, marks are not.
        drop(lost);
        let again = Mapped::guarded(&f, 0, 40_000).unwrap();
        assert_eq!(again.bytes(), &data[..40_000]);
        assert!(again.intact());
        drop((head, untouched, elsewhere, again));
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&other_dir).unwrap();
    }

    /// With the handler installed, a fault outside guarded views still ends the process
    /// with SIGBUS (the test runs itself in a child process that makes one).
    #[test]
    fn other_faults_still_end_the_process() {
        const CHILD: &str = "ZS3_MAPPED_FAULT_FILE";
        const NAME: &str = "mapped::tests::other_faults_still_end_the_process";
        if let Some(path) = std::env::var_os(CHILD) {
            let f = File::options().read(true).write(true).open(path).unwrap();
            let guarded = Mapped::guarded(&f, 0, 4096).unwrap();
            let plain = Mapped::new(&f, 0, 100_000).unwrap();
            f.set_len(0).unwrap();
            assert!(guarded.intact());
            let sum: u64 = plain.bytes().iter().map(|&b| u64::from(b)).sum();
            // Not reached: the read above ends the process.
            println!("read {sum} without a fault");
            std::process::exit(0);
        }
        if !GUARDED {
            return;
        }
        let (dir, _f) = temp_file("child", &[7u8; 100_000]);
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, dir.join("f"))
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(7),
            "{:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
