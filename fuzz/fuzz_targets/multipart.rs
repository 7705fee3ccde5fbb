//! The streaming `multipart/byteranges` parser on a hostile body, fed in arbitrary chunks.
//!
//! Input: `[b0][k][k × u16 chunk sizes][r][boundary (b0 bytes)][body]`.
//! The body is repeated `r % 16 + 1` times (long bodies from short inputs, for the memory
//! bound) and fed in chunks cycling through the sizes. Checked:
//! - no panic; error messages are one line of at most 300 bytes;
//! - events are well formed (PartStart, Data at contiguous offsets covering the part,
//!   PartEnd) and `parts()` counts the PartStarts;
//! - the outcome (events, error message, `is_done`, `finish`) does not depend on how the
//!   body is split;
//! - the memory the parser allocates stays bounded, whatever the body's length;
//! - a callback error stops the parser and is returned as is; the parser stays failed;
//! - the `Content-Type` / `Content-Range` helpers on the same bytes never panic and return
//!   values that satisfy their contracts.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use libfuzzer_sys::fuzz_target;
use zsync3::fetch::multipart::{
    byteranges_boundary, parse_content_range, Event, MultipartError, MultipartParser,
};
use zsync3::fetch::ByteRange;

/// Counts live heap bytes and their peak, so the parser's memory can be bounded.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Relaxed) + (new - l.size());
                PEAK.fetch_max(now, Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Most heap the parser may hold on top of what it started with: a line of 8 KiB may
/// grow by doubling to 16 KiB; error messages are short. Anything near the body size
/// (up to 16 × the input) would be far above this.
const MEMORY_BOUND: usize = 48 * 1024;

/// What a run produced, independent of chunking.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// FNV-1a over the event stream, with Data merged per part (chunking-independent).
    digest: u64,
    starts: u64,
    bytes: u64,
    /// Index of the chunk-independent body offset where feeding failed is not kept:
    /// the message is, and must not depend on the split.
    feed: Result<(), String>,
    done: bool,
    finish: Result<(), String>,
    parts: u64,
}

struct Check {
    open: Option<(ByteRange, u64)>,
    digest: u64,
    starts: u64,
    bytes: u64,
}

impl Check {
    fn mix(&mut self, x: u64) {
        for b in x.to_le_bytes() {
            self.digest = (self.digest ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn on(&mut self, ev: Event<'_>) {
        match ev {
            Event::PartStart(r) => {
                assert!(self.open.is_none(), "PartStart inside a part");
                assert!(r.start < r.end, "empty part {r:?}");
                self.open = Some((r, r.start));
                self.starts += 1;
                self.mix(1);
                self.mix(r.start);
                self.mix(r.end);
            }
            Event::Data { offset, data } => {
                let (r, next) = self.open.as_mut().expect("Data outside a part");
                assert!(!data.is_empty(), "empty Data event");
                assert_eq!(offset, *next, "Data not contiguous");
                *next += data.len() as u64;
                assert!(*next <= r.end, "Data past the part's end");
                self.bytes += data.len() as u64;
                for &b in data {
                    self.digest = (self.digest ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                }
            }
            Event::PartEnd(r) => {
                let (r0, next) = self.open.take().expect("PartEnd outside a part");
                assert_eq!(r, r0, "PartEnd for another part");
                assert_eq!(next, r.end, "PartEnd before all data");
                self.mix(2);
            }
        }
    }
}

fn run(boundary: &str, body: &[u8], reps: usize, sizes: &[usize]) -> Outcome {
    let mut p = MultipartParser::new(boundary).expect("boundary accepted before");
    let mut c = Check {
        open: None,
        digest: 0xcbf2_9ce4_8422_2325,
        starts: 0,
        bytes: 0,
    };
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let mut feed = Ok(());
    let mut k = 0;
    'outer: for _ in 0..reps {
        let mut rest = body;
        while !rest.is_empty() {
            let n = sizes[k % sizes.len()].min(rest.len());
            k += 1;
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let r = p.feed(chunk, |ev| {
                c.on(ev);
                Ok::<(), MultipartError>(())
            });
            if let Err(e) = r {
                let m = e.to_string();
                assert!(
                    !m.contains(['\n', '\r']) && m.len() <= 300,
                    "error message is not one short line: {m:?}"
                );
                feed = Err(m);
                // Sticky: more input fails the same way, with no events.
                let again = p.feed(b"--x\r\n", |_| -> Result<(), MultipartError> {
                    panic!("event after an error")
                });
                assert_eq!(again.unwrap_err().to_string(), e.to_string());
                assert!(p.finish().is_err(), "finish Ok after a feed error");
                break 'outer;
            }
        }
    }
    let finish = p.finish().map_err(|e| e.to_string());
    if finish.is_ok() {
        assert!(c.open.is_none(), "finish Ok inside a part");
    }
    assert_eq!(p.parts(), c.starts);
    let peak = PEAK.load(Relaxed) - base;
    assert!(
        peak <= MEMORY_BOUND,
        "parser held {peak} bytes for a {}-byte body",
        body.len() * reps
    );
    Outcome {
        digest: c.digest,
        starts: c.starts,
        bytes: c.bytes,
        feed,
        done: p.is_done(),
        finish,
        parts: p.parts(),
    }
}

/// Abort from the callback at event `stop`: the callback's error comes back unchanged and
/// the parser stays failed.
fn run_abort(boundary: &str, body: &[u8], stop: usize) {
    let mut p = MultipartParser::new(boundary).unwrap();
    let mut seen = 0;
    let mut aborted = false;
    for chunk in body.chunks(7) {
        let r = p.feed(chunk, |_| {
            seen += 1;
            if seen > stop {
                Err(MultipartError::from_callback())
            } else {
                Ok(())
            }
        });
        match r {
            Ok(()) => {}
            Err(e) => {
                if e.is_ours() {
                    aborted = true;
                }
                break;
            }
        }
    }
    if aborted {
        assert!(p.finish().is_err(), "finish Ok after an aborted feed");
        assert!(p.feed(b"x", |_| Ok::<(), MultipartError>(())).is_err());
    }
}

/// Lets the abort run tell its own error from the parser's.
trait Ours {
    fn from_callback() -> Self;
    fn is_ours(&self) -> bool;
}
impl Ours for MultipartError {
    fn from_callback() -> Self {
        // MultipartError has no public constructor; use one the parser cannot produce.
        parse_content_range("\u{1}callback\u{1}").unwrap_err()
    }
    fn is_ours(&self) -> bool {
        self.to_string().contains("callback")
    }
}

fn check_helpers(s: &str) {
    if let Ok(Some(b)) = byteranges_boundary(s) {
        assert!(!b.is_empty() && b.len() <= 200, "boundary {b:?}");
        assert!(b.bytes().all(|c| (0x20..0x7f).contains(&c)));
        assert!(MultipartParser::new(&b).is_ok());
    }
    if let Ok(cr) = parse_content_range(s) {
        assert!(cr.range.start < cr.range.end);
        if let Some(t) = cr.total {
            assert!(cr.range.end <= t);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [b0, k, rest @ ..] = data else { return };
    let k = usize::from(*k % 8);
    if rest.len() < 2 * k + 1 {
        return;
    }
    let (size_bytes, rest) = rest.split_at(2 * k);
    let mut sizes: Vec<usize> = size_bytes
        .chunks_exact(2)
        .map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])).max(1))
        .collect();
    let reps = usize::from(rest[0] % 16) + 1;
    let rest = &rest[1..];
    let bl = usize::from(b0 & 0x3f) + if b0 & 0x40 != 0 { 190 } else { 0 };
    let bl = bl.min(rest.len());
    let (bbytes, body) = rest.split_at(bl);
    let boundary = String::from_utf8_lossy(bbytes);

    check_helpers(&boundary);
    check_helpers(&String::from_utf8_lossy(body));

    let Ok(_) = MultipartParser::new(&boundary) else {
        assert!(boundary.is_empty() || boundary.len() > 200);
        return;
    };
    let whole = run(&boundary, body, reps, &[usize::MAX]);
    if sizes.is_empty() {
        sizes.push(1);
    }
    let split = run(&boundary, body, reps, &sizes);
    assert_eq!(whole, split, "outcome depends on the chunking {sizes:?}");
    if whole.starts > 0 {
        run_abort(&boundary, body, usize::from(b0 >> 7) + (whole.bytes % 3) as usize);
    }
});
