//! The one error type of the library.

use std::io;
use std::path::PathBuf;

use crate::fetch::FetchError;

/// Everything that can go wrong in zsync3. Each variant's message is one line that says what
/// happened and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The control file is malformed or hostile.
    #[error("bad .zsync file: {0}")]
    Control(String),
    /// A local file could not be read or written.
    #[error("{}: {}", path.display(), io_message(source))]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// I/O without a path to name (stdin, stdout).
    #[error("{}", io_message(.0))]
    Stream(#[from] io::Error),
    /// Invalid arguments or settings.
    #[error("{0}")]
    Usage(String),
    /// Fetching from the server failed.
    #[error("{0}")]
    Fetch(#[from] FetchError),
    /// The data could not all be obtained.
    #[error("{0}")]
    Incomplete(String),
    /// The assembled file does not match the checksum of the control file.
    #[error("{0}")]
    Verify(String),
}

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An I/O error's text without Rust's " (os error N)" suffix, e.g. "No such file or directory".
pub fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(k) if s.ends_with(')') => s[..k].to_string(),
        _ => s,
    }
}

/// `s` quoted for a one-line message, cut after 60 characters: hostile input (a header
/// line of a `.zsync` may be a megabyte long) must not flood the terminal.
pub fn quoted(s: &str) -> String {
    match s.char_indices().nth(60) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}... ({} bytes)", &s[..cut], s.len()),
    }
}
