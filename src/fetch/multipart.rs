//! Streaming parser for `multipart/byteranges` bodies (RFC 9110 §14.6), and helpers to read
//! the `Content-Range` and `Content-Type` headers of range responses.
//!
//! Everything here treats its input as hostile: it never panics, never allocates by a size
//! the server announced, and bounds every buffer it keeps (header lines, preamble).
//! Part bodies are not buffered at all: [`MultipartParser::feed`] hands out slices of the
//! chunk it was given, tagged with the resource offset taken from the part's own
//! `Content-Range`, so parts may come in any order and may cover more than was asked.

use std::fmt;

use super::{ByteRange, FetchError};

/// Longest line kept from a part header block or the preamble, in bytes.
const MAX_LINE: usize = 8 * 1024;
/// Most bytes of part headers accepted for one part.
const MAX_PART_HEADER_BYTES: usize = 16 * 1024;
/// Most bytes of preamble (text before the first boundary) accepted.
const MAX_PREAMBLE: u64 = 64 * 1024;
/// Most empty lines tolerated between a part's data and the next boundary (one is normal).
const MAX_EMPTY_LINES_BEFORE_DELIMITER: u32 = 4;
/// Longest boundary accepted (RFC 2046 allows 70; be a little lenient).
const MAX_BOUNDARY: usize = 200;

/// A malformed `multipart/byteranges` body or range header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartError(String);

impl MultipartError {
    fn new(msg: impl Into<String>) -> Self {
        MultipartError(msg.into())
    }
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MultipartError {}

impl From<MultipartError> for FetchError {
    fn from(e: MultipartError) -> Self {
        FetchError::Protocol(e.0)
    }
}

/// A parsed `Content-Range: bytes S-E/T` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// The bytes the part holds, as a half-open range `[S, E+1)`.
    pub range: ByteRange,
    /// The complete length `T`, or `None` for `*`.
    pub total: Option<u64>,
}

/// Parse a decimal `u64` made of ASCII digits only (no sign, no spaces, no overflow).
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parse a `Content-Range` header value of the satisfied form `bytes S-E/T` (or `bytes S-E/*`).
///
/// Requires `S <= E` and, when `T` is known, `E < T`. The unit is matched case-insensitively
/// and optional whitespace is tolerated around the numbers.
pub fn parse_content_range(value: &str) -> Result<ContentRange, MultipartError> {
    let bad = || MultipartError::new(format!("bad Content-Range {:?}", shorten(value)));
    let v = value.trim();
    let unit_len = "bytes".len();
    if v.len() <= unit_len || !v.is_char_boundary(unit_len) {
        return Err(bad());
    }
    let (unit, rest) = v.split_at(unit_len);
    if !unit.eq_ignore_ascii_case("bytes") || !rest.starts_with([' ', '\t']) {
        return Err(bad());
    }
    let (span, total) = rest.trim().split_once('/').ok_or_else(bad)?;
    let (s, e) = span.split_once('-').ok_or_else(bad)?;
    let start = parse_u64(s.trim()).ok_or_else(bad)?;
    let last = parse_u64(e.trim()).ok_or_else(bad)?;
    let total = match total.trim() {
        "*" => None,
        t => Some(parse_u64(t).ok_or_else(bad)?),
    };
    if start > last || total.is_some_and(|t| last >= t) {
        return Err(bad());
    }
    let end = last.checked_add(1).ok_or_else(bad)?;
    Ok(ContentRange {
        range: ByteRange { start, end },
        total,
    })
}

/// If `content_type` is `multipart/byteranges`, return its boundary.
///
/// `Ok(None)`: some other media type. `Err`: `multipart/byteranges` without a usable
/// `boundary` parameter (missing, empty, too long, or with control characters).
pub fn byteranges_boundary(content_type: &str) -> Result<Option<String>, MultipartError> {
    let (media, mut params) = match content_type.find(';') {
        Some(i) => (&content_type[..i], &content_type[i..]),
        None => (content_type, ""),
    };
    if !media.trim().eq_ignore_ascii_case("multipart/byteranges") {
        return Ok(None);
    }
    let mut boundary = None;
    // params: *( OWS ";" OWS [ name "=" value ] )
    loop {
        params = params.trim_start_matches([' ', '\t']);
        if params.is_empty() {
            break;
        }
        params = match params.strip_prefix(';') {
            Some(p) => p.trim_start_matches([' ', '\t']),
            None => return Err(MultipartError::new("malformed Content-Type parameters")),
        };
        if params.is_empty() || params.starts_with(';') {
            continue;
        }
        let eq = params
            .find(['=', ';'])
            .filter(|&i| params.as_bytes()[i] == b'=')
            .ok_or_else(|| MultipartError::new("malformed Content-Type parameters"))?;
        let name = params[..eq].trim();
        let rest = &params[eq + 1..];
        let (value, after) = if let Some(q) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, c2)) => value.push(c2),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
            let end = end.ok_or_else(|| MultipartError::new("unterminated quoted boundary"))?;
            (value, &q[end..])
        } else {
            let end = rest.find([';', ' ', '\t']).unwrap_or(rest.len());
            (rest[..end].to_string(), &rest[end..])
        };
        if name.eq_ignore_ascii_case("boundary") && boundary.is_none() {
            boundary = Some(value);
        }
        params = after;
    }
    let b = boundary.ok_or_else(|| MultipartError::new("multipart/byteranges without boundary"))?;
    if b.is_empty()
        || b.len() > MAX_BOUNDARY
        || b.ends_with(' ')
        || !b.bytes().all(|c| (0x20..0x7f).contains(&c))
    {
        return Err(MultipartError::new(format!(
            "unusable multipart boundary {:?}",
            shorten(&b)
        )));
    }
    Ok(Some(b))
}

/// What [`MultipartParser::feed`] reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A part's headers were read; its data (`range`) follows.
    PartStart(ByteRange),
    /// Part data: `data` is what the server says lies at `offset` of the resource.
    Data {
        /// Resource offset of `data[0]`.
        offset: u64,
        /// The bytes (a slice of the fed chunk).
        data: &'a [u8],
    },
    /// All data of the part announced by the last `PartStart` has been reported.
    PartEnd(ByteRange),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Reading a part's header lines.
    Headers,
    /// Reading part data; `next` is the resource offset of the next byte.
    Data { part: ByteRange, next: u64 },
    /// Right after a part's data: expecting the CRLF that starts the next delimiter.
    AfterData,
    /// Expecting a delimiter line.
    BeforeDelimiter,
    /// After the close delimiter: everything is ignored.
    Epilogue,
    /// A previous error; every further call fails.
    Failed,
}

/// Incremental parser of a `multipart/byteranges` body.
///
/// Feed it the body in chunks of any size with [`feed`](Self::feed); call
/// [`finish`](Self::finish) at the end of the body to check that it was complete.
#[derive(Debug)]
pub struct MultipartParser {
    /// `--` + boundary.
    delimiter: Vec<u8>,
    state: State,
    /// The line being assembled (bounded by `MAX_LINE`).
    line: Vec<u8>,
    /// The current line was longer than `MAX_LINE` (its tail was dropped).
    line_overflow: bool,
    preamble_bytes: u64,
    header_bytes: usize,
    empty_lines: u32,
    content_range: Option<ContentRange>,
    error: Option<MultipartError>,
    parts: u64,
}

/// How a line relates to the delimiter.
enum Delim {
    No,
    Part,
    Close,
}

impl MultipartParser {
    /// A parser for a body whose `Content-Type` had this `boundary` (see
    /// [`byteranges_boundary`]).
    pub fn new(boundary: &str) -> Result<Self, MultipartError> {
        if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
            return Err(MultipartError::new("unusable multipart boundary"));
        }
        let mut delimiter = Vec::with_capacity(boundary.len() + 2);
        delimiter.extend_from_slice(b"--");
        delimiter.extend_from_slice(boundary.as_bytes());
        Ok(MultipartParser {
            delimiter,
            state: State::Preamble,
            line: Vec::new(),
            line_overflow: false,
            preamble_bytes: 0,
            header_bytes: 0,
            empty_lines: 0,
            content_range: None,
            error: None,
            parts: 0,
        })
    }

    /// True once the close delimiter has been seen (the rest of the body is epilogue).
    pub fn is_done(&self) -> bool {
        self.state == State::Epilogue
    }

    /// Number of parts whose headers were read so far.
    pub fn parts(&self) -> u64 {
        self.parts
    }

    /// Check that the body ended properly (after the close delimiter).
    pub fn finish(&self) -> Result<(), MultipartError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.state {
            State::Epilogue => Ok(()),
            // The close delimiter may end the body without a line break.
            State::AfterData | State::BeforeDelimiter
                if matches!(self.classify(&self.line), Delim::Close) =>
            {
                Ok(())
            }
            State::Data { part, next } => Err(MultipartError::new(format!(
                "multipart body ended inside the part for bytes {part} ({} of {} bytes received)",
                next - part.start,
                part.len()
            ))),
            State::Preamble => Err(MultipartError::new("multipart body without any part")),
            _ => Err(MultipartError::new(
                "multipart body ended without its closing boundary",
            )),
        }
    }

    fn fail<E: From<MultipartError>>(&mut self, msg: String) -> Result<(), E> {
        let e = MultipartError::new(msg);
        self.error = Some(e.clone());
        self.state = State::Failed;
        Err(e.into())
    }

    fn classify(&self, line: &[u8]) -> Delim {
        if self.line_overflow {
            return Delim::No;
        }
        let Some(rest) = line.strip_prefix(self.delimiter.as_slice()) else {
            return Delim::No;
        };
        let (close, rest) = match rest.strip_prefix(b"--") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        // Transport padding (and the CR of CRLF) may follow.
        if rest.iter().all(|&b| b == b' ' || b == b'\t' || b == b'\r') {
            if close {
                Delim::Close
            } else {
                Delim::Part
            }
        } else {
            Delim::No
        }
    }

    /// Parse the next chunk of the body, reporting events through `on`. An error returned
    /// by `on` stops parsing and is returned as is; a malformed body gives
    /// `E::from(MultipartError)`. After any error the parser stays failed.
    pub fn feed<E, F>(&mut self, chunk: &[u8], mut on: F) -> Result<(), E>
    where
        E: From<MultipartError>,
        F: FnMut(Event<'_>) -> Result<(), E>,
    {
        if let Some(e) = &self.error {
            return Err(e.clone().into());
        }
        let mut pos = 0;
        while pos < chunk.len() {
            match self.state {
                State::Failed => {
                    let e = self
                        .error
                        .clone()
                        .unwrap_or_else(|| MultipartError::new("multipart parser failed"));
                    return Err(e.into());
                }
                State::Epilogue => return Ok(()),
                State::Data { part, next } => {
                    let left = part.end - next;
                    let avail = (chunk.len() - pos) as u64;
                    let n = left.min(avail) as usize;
                    let data = &chunk[pos..pos + n];
                    pos += n;
                    let next2 = next + n as u64;
                    self.state = if next2 == part.end {
                        State::AfterData
                    } else {
                        State::Data { part, next: next2 }
                    };
                    if n > 0 {
                        if let Err(e) = on(Event::Data { offset: next, data }) {
                            self.state = State::Failed;
                            self.error = Some(MultipartError::new("aborted"));
                            return Err(e);
                        }
                    }
                    if next2 == part.end {
                        self.empty_lines = 0;
                        if let Err(e) = on(Event::PartEnd(part)) {
                            self.state = State::Failed;
                            self.error = Some(MultipartError::new("aborted"));
                            return Err(e);
                        }
                    }
                }
                _ => {
                    // Line-oriented states: collect up to the next LF.
                    let rest = &chunk[pos..];
                    let (piece, complete) = match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => (&rest[..i], true),
                        None => (rest, false),
                    };
                    pos += piece.len() + usize::from(complete);
                    if self.state == State::Preamble {
                        self.preamble_bytes += (piece.len() + usize::from(complete)) as u64;
                        if self.preamble_bytes > MAX_PREAMBLE {
                            return self.fail(
                                "no multipart boundary found at the start of the body".into(),
                            );
                        }
                    }
                    let room = MAX_LINE.saturating_sub(self.line.len());
                    if piece.len() > room {
                        self.line.extend_from_slice(&piece[..room]);
                        self.line_overflow = true;
                    } else {
                        self.line.extend_from_slice(piece);
                    }
                    if self.state == State::Headers {
                        self.header_bytes += piece.len() + usize::from(complete);
                        if self.header_bytes > MAX_PART_HEADER_BYTES || self.line_overflow {
                            return self.fail("multipart part headers too long".into());
                        }
                    }
                    if complete {
                        let line = std::mem::take(&mut self.line);
                        let r = self.line_done(&line, &mut on);
                        self.line = line;
                        self.line.clear();
                        self.line_overflow = false;
                        r?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Handle one complete line (without its LF) in a line-oriented state.
    fn line_done<E, F>(&mut self, line: &[u8], on: &mut F) -> Result<(), E>
    where
        E: From<MultipartError>,
        F: FnMut(Event<'_>) -> Result<(), E>,
    {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        match self.state {
            State::Preamble => match self.classify(line) {
                Delim::Part => self.start_headers(),
                Delim::Close => self.state = State::Epilogue,
                Delim::No => {}
            },
            State::AfterData | State::BeforeDelimiter => match self.classify(line) {
                Delim::Part => self.start_headers(),
                Delim::Close => self.state = State::Epilogue,
                Delim::No if text.is_empty() => {
                    self.empty_lines += 1;
                    if self.empty_lines > MAX_EMPTY_LINES_BEFORE_DELIMITER {
                        return self.fail("missing multipart boundary after a part".into());
                    }
                    self.state = State::BeforeDelimiter;
                }
                Delim::No => {
                    return self.fail(if self.state == State::AfterData {
                        "multipart part longer than its Content-Range".into()
                    } else {
                        "missing multipart boundary after a part".into()
                    });
                }
            },
            State::Headers => {
                if text.is_empty() {
                    let Some(cr) = self.content_range.take() else {
                        return self.fail("multipart part without Content-Range".into());
                    };
                    self.parts += 1;
                    self.state = State::Data {
                        part: cr.range,
                        next: cr.range.start,
                    };
                    if let Err(e) = on(Event::PartStart(cr.range)) {
                        self.state = State::Failed;
                        self.error = Some(MultipartError::new("aborted"));
                        return Err(e);
                    }
                    return Ok(());
                }
                if text[0] == b' ' || text[0] == b'\t' {
                    // Obsolete line folding: continuation of an (ignored) header.
                    return Ok(());
                }
                let Some(colon) = text.iter().position(|&b| b == b':') else {
                    return self.fail(format!(
                        "malformed multipart part header {:?}",
                        shorten(&String::from_utf8_lossy(text))
                    ));
                };
                let name = String::from_utf8_lossy(&text[..colon]);
                if name.trim().eq_ignore_ascii_case("content-range") {
                    if self.content_range.is_some() {
                        return self.fail("multipart part with two Content-Range headers".into());
                    }
                    let value = String::from_utf8_lossy(&text[colon + 1..]);
                    match parse_content_range(&value) {
                        Ok(cr) => self.content_range = Some(cr),
                        Err(e) => return self.fail(format!("multipart part: {e}")),
                    }
                }
            }
            State::Data { .. } | State::Epilogue | State::Failed => {}
        }
        Ok(())
    }

    fn start_headers(&mut self) {
        self.state = State::Headers;
        self.header_bytes = 0;
        self.content_range = None;
    }
}

/// At most 80 characters of `s`, for messages.
fn shorten(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 80 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn content_range_ok() {
        let cr = parse_content_range("bytes 0-99/1000").unwrap();
        assert_eq!(cr.range, r(0, 100));
        assert_eq!(cr.total, Some(1000));
        let cr = parse_content_range("  BYTES 5-5/*  ").unwrap();
        assert_eq!(cr.range, r(5, 6));
        assert_eq!(cr.total, None);
        let cr = parse_content_range("bytes 10 - 19 / 20").unwrap();
        assert_eq!(cr.range, r(10, 20));
    }

    #[test]
    fn content_range_bad() {
        for v in [
            "",
            "bytes",
            "bytes ",
            "bytes 5-4/10",
            "bytes 0-10/10",
            "bytes */10",
            "bytes -1-5/10",
            "bytes +1-5/10",
            "bytes 0-5",
            "bits 0-5/10",
            "bytes0-5/10",
            "bytes 0-18446744073709551615/*",
            "bytes 0-99999999999999999999999/*",
            "bytes 1-2/3/4",
            "bytés 0-1/2",
            "é",
        ] {
            assert!(parse_content_range(v).is_err(), "{v:?} accepted");
        }
    }

    #[test]
    fn boundary_parsing() {
        assert_eq!(
            byteranges_boundary("multipart/byteranges; boundary=THIS_STRING").unwrap(),
            Some("THIS_STRING".to_string())
        );
        assert_eq!(
            byteranges_boundary("Multipart/ByteRanges;charset=x;BOUNDARY=\"a b;c\\\"d\"").unwrap(),
            Some("a b;c\"d".to_string())
        );
        assert_eq!(
            byteranges_boundary("multipart/byteranges ; boundary=abc ;").unwrap(),
            Some("abc".to_string())
        );
        assert_eq!(byteranges_boundary("text/plain").unwrap(), None);
        assert_eq!(
            byteranges_boundary("application/octet-stream; boundary=x").unwrap(),
            None
        );
        for bad in [
            "multipart/byteranges",
            "multipart/byteranges; boundary=",
            "multipart/byteranges; boundary=\"\"",
            "multipart/byteranges; boundary=\"abc",
            "multipart/byteranges; x",
            "multipart/byteranges; boundary=\"a\u{1}b\"",
        ] {
            assert!(byteranges_boundary(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("multipart/byteranges; boundary={}", "x".repeat(201));
        assert!(byteranges_boundary(&long).is_err());
    }

    /// Collects events: (offset, bytes) pieces, merged per part, plus part starts/ends.
    #[derive(Default, Debug)]
    struct Collect {
        parts: Vec<(ByteRange, Vec<u8>)>,
        open: Option<(ByteRange, Vec<u8>)>,
    }

    impl Collect {
        fn on(&mut self, ev: Event<'_>) -> Result<(), MultipartError> {
            match ev {
                Event::PartStart(r) => {
                    assert!(self.open.is_none());
                    self.open = Some((r, Vec::new()));
                }
                Event::Data { offset, data } => {
                    let (r, buf) = self.open.as_mut().unwrap();
                    assert_eq!(offset, r.start + buf.len() as u64);
                    buf.extend_from_slice(data);
                }
                Event::PartEnd(r) => {
                    let (r2, buf) = self.open.take().unwrap();
                    assert_eq!(r, r2);
                    assert_eq!(buf.len() as u64, r.len());
                    self.parts.push((r2, buf));
                }
            }
            Ok(())
        }
    }

    fn parse_chunks(boundary: &str, chunks: &[&[u8]]) -> Result<Collect, MultipartError> {
        let mut p = MultipartParser::new(boundary)?;
        let mut c = Collect::default();
        for ch in chunks {
            p.feed(ch, |ev| c.on(ev))?;
        }
        p.finish()?;
        Ok(c)
    }

    const BODY: &[u8] = b"preamble text\r\n\
--B0UND\r\n\
Content-Type: text/plain\r\n\
Content-Range: bytes 0-4/20\r\n\
\r\n\
hello\r\n\
--B0UND\r\n\
content-range: bytes 10-19/20\r\n\
\r\n\
0123456789\r\n\
--B0UND--\r\n\
epilogue junk";

    fn expected() -> Vec<(ByteRange, Vec<u8>)> {
        vec![
            (r(0, 5), b"hello".to_vec()),
            (r(10, 20), b"0123456789".to_vec()),
        ]
    }

    #[test]
    fn whole_body() {
        let c = parse_chunks("B0UND", &[BODY]).unwrap();
        assert_eq!(c.parts, expected());
    }

    #[test]
    fn every_split_point() {
        for i in 0..=BODY.len() {
            let c = parse_chunks("B0UND", &[&BODY[..i], &BODY[i..]]).unwrap();
            assert_eq!(c.parts, expected(), "split at {i}");
            for j in i..=BODY.len() {
                let c = parse_chunks("B0UND", &[&BODY[..i], &BODY[i..j], &BODY[j..]]).unwrap();
                assert_eq!(c.parts, expected(), "split at {i},{j}");
            }
        }
        // Byte by byte.
        let chunks: Vec<&[u8]> = BODY.chunks(1).collect();
        assert_eq!(parse_chunks("B0UND", &chunks).unwrap().parts, expected());
    }

    #[test]
    fn lf_only_and_no_preamble_and_padding() {
        let body = b"--b \t\nContent-Range: bytes 3-5/*\n\nabc\n--b--";
        let c = parse_chunks("b", &[body]).unwrap();
        assert_eq!(c.parts, vec![(r(3, 6), b"abc".to_vec())]);
    }

    #[test]
    fn data_containing_boundary_text() {
        // Part data is taken by length, so boundary-like bytes inside it are data.
        let body = b"--b\r\nContent-Range: bytes 0-8/9\r\n\r\n\r\n--b--\r\n\r\n--b--\r\n";
        let c = parse_chunks("b", &[body]).unwrap();
        assert_eq!(c.parts, vec![(r(0, 9), b"\r\n--b--\r\n".to_vec())]);
    }

    #[test]
    fn reordered_and_overlapping_parts() {
        let body = b"--b\r\nContent-Range: bytes 10-11/20\r\n\r\nxy\r\n\
--b\r\nContent-Range: bytes 0-11/20\r\n\r\n0123456789xy\r\n--b--\r\n";
        let c = parse_chunks("b", &[body]).unwrap();
        assert_eq!(
            c.parts,
            vec![
                (r(10, 12), b"xy".to_vec()),
                (r(0, 12), b"0123456789xy".to_vec())
            ]
        );
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let cases: &[&[u8]] = &[
            // Part longer than announced.
            b"--b\r\nContent-Range: bytes 0-1/9\r\n\r\nabc\r\n--b--\r\n",
            // Missing Content-Range.
            b"--b\r\nContent-Type: x\r\n\r\nabc\r\n--b--\r\n",
            // Bad Content-Range.
            b"--b\r\nContent-Range: bytes 5-1/9\r\n\r\nabc\r\n--b--\r\n",
            // Two Content-Range headers.
            b"--b\r\nContent-Range: bytes 0-0/9\r\nContent-Range: bytes 0-0/9\r\n\r\na\r\n--b--\r\n",
            // Header without colon.
            b"--b\r\nnonsense\r\n\r\na\r\n--b--\r\n",
            // Truncated inside data.
            b"--b\r\nContent-Range: bytes 0-9/10\r\n\r\nabc",
            // Truncated in headers.
            b"--b\r\nContent-Range: bytes 0-9/10\r\n",
            // No close delimiter.
            b"--b\r\nContent-Range: bytes 0-0/10\r\n\r\na\r\n",
            // Wrong boundary.
            b"--c\r\nContent-Range: bytes 0-0/10\r\n\r\na\r\n--c--\r\n",
            // Empty.
            b"",
            // Boundary prefix is not a boundary.
            b"--bb\r\nContent-Range: bytes 0-0/10\r\n\r\na\r\n--bb--\r\n",
        ];
        for (i, body) in cases.iter().enumerate() {
            for split in 0..=body.len() {
                let r = parse_chunks("b", &[&body[..split], &body[split..]]);
                assert!(r.is_err(), "case {i} split {split} accepted: {r:?}");
            }
        }
    }

    #[test]
    fn bounded_buffers() {
        // Endless preamble.
        let mut p = MultipartParser::new("b").unwrap();
        let junk = vec![b'x'; 1024];
        let mut failed = false;
        for _ in 0..200 {
            if p.feed(&junk, |_| Ok::<(), MultipartError>(())).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
        assert!(p.line.capacity() <= 2 * MAX_LINE);
        // Endless header line.
        let mut p = MultipartParser::new("b").unwrap();
        p.feed(b"--b\r\nX-A: ", |_| Ok::<(), MultipartError>(()))
            .unwrap();
        let mut failed = false;
        for _ in 0..100 {
            if p.feed(&junk, |_| Ok::<(), MultipartError>(())).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
        // Huge announced part: nothing is allocated by its size.
        let mut p = MultipartParser::new("b").unwrap();
        let mut c = Collect::default();
        p.feed(
            b"--b\r\nContent-Range: bytes 0-18446744073709551613/*\r\n\r\nabc",
            |ev| c.on(ev),
        )
        .unwrap();
        assert!(p.finish().is_err());
    }

    #[test]
    fn errors_are_sticky_and_callback_errors_propagate() {
        let mut p = MultipartParser::new("b").unwrap();
        let r: Result<(), MultipartError> = p.feed(b"--b\r\nbad\r\n", |_| Ok(()));
        assert!(r.is_err());
        let r: Result<(), MultipartError> = p.feed(b"more", |_| Ok(()));
        assert!(r.is_err());

        let mut p = MultipartParser::new("b").unwrap();
        let r: Result<(), MultipartError> = p.feed(
            b"--b\r\nContent-Range: bytes 0-2/3\r\n\r\nabc\r\n--b--\r\n",
            |ev| match ev {
                Event::Data { .. } => Err(MultipartError::new("stop")),
                _ => Ok(()),
            },
        );
        assert_eq!(r.unwrap_err().to_string(), "stop");
        assert!(p.finish().is_err());
    }

    #[test]
    fn epilogue_and_done() {
        let mut p = MultipartParser::new("b").unwrap();
        p.feed(b"--b--\r\n", |_| Ok::<(), MultipartError>(()))
            .unwrap();
        assert!(p.is_done());
        p.feed(b"anything at all", |_| Ok::<(), MultipartError>(()))
            .unwrap();
        assert!(p.finish().is_ok());
        assert_eq!(p.parts(), 0);
    }

    #[test]
    fn pseudo_random_garbage_never_panics() {
        // A tiny xorshift generator: deterministic, no dependencies.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet: &[u8] = b"-b\r\n: 0123456789/*Content-Rangebytes";
        for _ in 0..2000 {
            let len = (next() % 120) as usize;
            let body: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let mut p = MultipartParser::new("b").unwrap();
            let split = if len == 0 {
                0
            } else {
                (next() % len as u64) as usize
            };
            let _ = p.feed(&body[..split], |_| Ok::<(), MultipartError>(()));
            let _ = p.feed(&body[split..], |_| Ok::<(), MultipartError>(()));
            let _ = p.finish();
        }
    }
}
