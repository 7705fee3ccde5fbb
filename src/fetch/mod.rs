//! Getting bytes from a server: the [`RangeFetcher`] trait and its implementations.
//!
//! The client asks a fetcher for byte ranges of a URL and receives the data through a
//! [`RangeSink`]. A fetcher only reports what the server *claims* lies at each offset; the
//! caller verifies every block against its checksum before using it, so a fetcher never has
//! to trust the server, it only has to be robust against it (bounded memory, bounded time,
//! no shell interpretation of anything the server or the control file said).

use std::fmt;

pub mod curl;
pub mod multipart;
pub mod url;

/// A half-open byte range `[start, end)` of a remote resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// `[start, end)`.
    pub fn new(start: u64, end: u64) -> Self {
        debug_assert!(start <= end);
        ByteRange { start, end }
    }
    /// Number of bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// True when the range holds no byte.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

impl fmt::Display for ByteRange {
    /// HTTP form with an inclusive end, e.g. `0-99`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end.saturating_sub(1))
    }
}

/// Receives data as it arrives.
pub trait RangeSink {
    /// `data` is what the server says lies at `offset` of the resource. Calls come in any
    /// order and with any chunking, and may cover bytes that were not asked for (a server
    /// that ignores `Range` sends the whole resource from offset 0). Returning an error
    /// aborts the fetch.
    fn data(&mut self, offset: u64, data: &[u8]) -> Result<(), FetchError>;

    /// The stream of data that reached `end` (a range, one part of a multi-range answer)
    /// ended there: nothing more follows it soon, so what waits for more can be settled.
    /// Only a hint; the same offsets may come again later, in another request.
    fn range_end(&mut self, end: u64) -> Result<(), FetchError> {
        let _ = end;
        Ok(())
    }
}

/// A whole resource fetched with [`RangeFetcher::get`].
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The body.
    pub body: Vec<u8>,
    /// The URL the body came from, after redirects (the base for relative URLs).
    pub final_url: String,
}

/// A transport that can get whole resources and byte ranges of them.
pub trait RangeFetcher {
    /// GET a whole resource (e.g. the `.zsync`). A body larger than `limit` is an error.
    fn get(&mut self, url: &str, limit: u64) -> Result<Fetched, FetchError>;

    /// Fetch `ranges` (sorted, disjoint, non-empty) of `url` and pass the data to `sink`.
    /// `Ok` means the transfers ended without a transport or HTTP error; which bytes really
    /// arrived (and whether they are right) is for the caller to check.
    fn fetch_ranges(
        &mut self,
        url: &str,
        ranges: &[ByteRange],
        sink: &mut dyn RangeSink,
    ) -> Result<(), FetchError>;
}

/// Why a fetch failed.
#[derive(Debug)]
pub enum FetchError {
    /// The server answered with an HTTP error status.
    Http {
        /// The status code, e.g. 404.
        status: u32,
        /// The URL (with any credentials removed).
        url: String,
    },
    /// The transport failed (connection refused, TLS, curl exit code, ...).
    Transport(String),
    /// The server's answer made no sense (wrong Content-Range, bad multipart body, too long).
    Protocol(String),
    /// The sink refused the data (e.g. a local write error); not the server's fault.
    Sink(Box<crate::Error>),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Http { status, url } => write!(f, "HTTP error {status} from {url}"),
            FetchError::Transport(m) => write!(f, "{m}"),
            FetchError::Protocol(m) => write!(f, "bad response: {m}"),
            FetchError::Sink(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FetchError {}
