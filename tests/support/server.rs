//! A small threaded HTTP/1.1 server for tests (std only, 127.0.0.1, port chosen by the OS).
//!
//! It serves the files of a directory, honours `Range` (single ranges and multi-range
//! `multipart/byteranges`), keeps connections alive, logs every request, and can misbehave in
//! the ways listed in [`Mode`], for the whole server or per path. Dropping the server stops it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Correct: 206 for one range, `multipart/byteranges` for several, 416 if none is
    /// satisfiable, 200 without `Range`.
    Normal,
    /// A multi-range request gets only its first range, as a plain 206.
    SingleOnly,
    /// Multipart parts in reverse order.
    MultipartReordered,
    /// Ranges that overlap, touch, or are less than [`COALESCE_GAP`] apart are merged into
    /// one part (a single 206 if only one is left).
    MultipartCoalesced,
    /// `Range` is ignored: always 200 with the whole file.
    IgnoreRange,
    /// A multi-range request gets 416; single ranges work.
    MultiRange416,
    /// The full `Content-Length` is announced, half the body is sent, the connection closed.
    Truncated,
    /// The first byte of every range (or of the whole body) is flipped.
    Corrupt,
    /// 404 for everything except `*.zsync` files.
    NotFound,
    /// 302 to `/_r<path>`, which is served normally.
    Redirect,
    /// Body bytes are counted over all responses; the response that would go past `n`
    /// is cut there and its connection closed. After that the server behaves normally
    /// (set the mode again to re-arm).
    FailAfter(u64),
    /// The request is read and logged (with status 0), and never answered; the connection
    /// stays open until the server is dropped.
    Stall,
}

/// Gap below which [`Mode::MultipartCoalesced`] merges ranges.
pub const COALESCE_GAP: u64 = 100;

/// Prefix of redirect targets in [`Mode::Redirect`].
pub const REDIRECT_PREFIX: &str = "/_r";

/// Boundary of multipart answers.
pub const BOUNDARY: &str = "zsync3-test-boundary-7d41";

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target as sent (path and query).
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// All headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The status the server answered with.
    pub status: u16,
}

impl LoggedRequest {
    /// The value of header `name` (lower-case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Number of ranges in the `Range` header (0 without one).
    pub fn range_count(&self) -> usize {
        self.range
            .as_deref()
            .map_or(0, |r| r.trim_start_matches("bytes=").split(',').count())
    }
}

struct Inner {
    root: PathBuf,
    mode: Mutex<Mode>,
    path_modes: Mutex<HashMap<String, Mode>>,
    log: Mutex<Vec<LoggedRequest>>,
    shutdown: AtomicBool,
    conns: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
    /// Body bytes sent under `FailAfter`, and whether it already failed.
    fail_state: Mutex<(u64, bool)>,
}

/// Lock ignoring poisoning (a panicking test thread must not break the others).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The running server. Dropping it stops it.
pub struct TestServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serve `root` in [`Mode::Normal`].
    pub fn start(root: impl Into<PathBuf>) -> TestServer {
        Self::start_with_mode(root, Mode::Normal)
    }

    /// Serve `root` in `mode`.
    pub fn start_with_mode(root: impl Into<PathBuf>, mode: Mode) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let inner = Arc::new(Inner {
            root: root.into(),
            mode: Mutex::new(mode),
            path_modes: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            fail_state: Mutex::new((0, false)),
        });
        let inner2 = Arc::clone(&inner);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if inner2.shutdown.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let Ok(clone) = stream.try_clone() else {
                    continue;
                };
                let inner3 = Arc::clone(&inner2);
                let h = thread::spawn(move || serve_connection(&inner3, stream));
                let mut conns = lock(&inner2.conns);
                conns.retain(|(_, h)| !h.is_finished());
                conns.push((clone, h));
            }
        });
        TestServer {
            addr,
            inner,
            accept: Some(accept),
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` + `path` (a `/` is added if `path` lacks one).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("http://{}{}", self.addr, path)
        } else {
            format!("http://{}/{}", self.addr, path)
        }
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Change the mode of the whole server (paths with their own mode keep it). Also
    /// re-arms [`Mode::FailAfter`].
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.inner.mode) = mode;
        *lock(&self.inner.fail_state) = (0, false);
    }

    /// Give `path` (as requested, e.g. `/data.bin`) its own mode.
    pub fn set_path_mode(&self, path: &str, mode: Mode) {
        lock(&self.inner.path_modes).insert(path.to_string(), mode);
        *lock(&self.inner.fail_state) = (0, false);
    }

    /// All requests so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.inner.log).clone()
    }

    /// Number of requests so far.
    pub fn request_count(&self) -> usize {
        lock(&self.inner.log).len()
    }

    /// Forget the logged requests.
    pub fn clear_log(&self) {
        lock(&self.inner.log).clear();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let conns = std::mem::take(&mut *lock(&self.inner.conns));
        for (s, _) in &conns {
            let _ = s.shutdown(Shutdown::Both);
        }
        for (_, h) in conns {
            let _ = h.join();
        }
    }
}

/// A parsed request head.
struct RequestHead {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn serve_connection(inner: &Inner, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        // Read one request head.
        let end = loop {
            if let Some(e) = find_head_end(&buf) {
                break e;
            }
            if buf.len() > 64 * 1024 || inner.shutdown.load(Ordering::SeqCst) {
                return;
            }
            match stream.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head_text = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let Some(req) = parse_head(&head_text) else {
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        };
        // Discard a request body, if any.
        let body_len: usize = req
            .header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < body_len {
            match stream.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        buf.drain(..body_len);

        let keep_alive = match req.header("connection") {
            Some(c) if c.eq_ignore_ascii_case("close") => false,
            Some(c) if c.eq_ignore_ascii_case("keep-alive") => true,
            _ => req.version == "HTTP/1.1",
        };
        if mode_for(inner, &req.target) == Mode::Stall {
            lock(&inner.log).push(LoggedRequest {
                method: req.method.clone(),
                path: req.target.clone(),
                range: req.header("range").map(str::to_string),
                headers: req.headers.clone(),
                status: 0,
            });
            while !inner.shutdown.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        let resp = respond(inner, &req);
        lock(&inner.log).push(LoggedRequest {
            method: req.method.clone(),
            path: req.target.clone(),
            range: req.header("range").map(str::to_string),
            headers: req.headers.clone(),
            status: resp.status,
        });
        let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
        for (n, v) in &resp.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        if !keep_alive || resp.cut_at.is_some() {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        if stream.write_all(out.as_bytes()).is_err() {
            return;
        }
        if req.method != "HEAD" {
            let send = resp.cut_at.unwrap_or(resp.body.len()).min(resp.body.len());
            if stream.write_all(&resp.body[..send]).is_err() {
                return;
            }
        }
        let _ = stream.flush();
        if !keep_alive || resp.cut_at.is_some() {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn parse_head(text: &str) -> Option<RequestHead> {
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let version = first.next()?.to_string();
    let mut headers = Vec::new();
    for l in lines {
        if l.is_empty() {
            continue;
        }
        let (n, v) = l.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Some(RequestHead {
        method,
        target,
        version,
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Whatever",
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then close.
    cut_at: Option<usize>,
}

impl Response {
    fn simple(status: u16, text: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: text.as_bytes().to_vec(),
            cut_at: None,
        }
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The file for a request path, if it is a plain relative path inside the root.
fn file_for(root: &Path, path: &str) -> Option<PathBuf> {
    let decoded = String::from_utf8(percent_decode(path)).ok()?;
    let rel = Path::new(decoded.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let p = root.join(rel);
    p.is_file().then_some(p)
}

/// The mode that applies to a request target.
fn mode_for(inner: &Inner, target: &str) -> Mode {
    let path = target.split('?').next().unwrap_or("");
    let per_path = lock(&inner.path_modes).get(path).copied();
    per_path.unwrap_or_else(|| *lock(&inner.mode))
}

fn respond(inner: &Inner, req: &RequestHead) -> Response {
    let path = req.target.split('?').next().unwrap_or("").to_string();
    let mut mode = mode_for(inner, &req.target);
    let mut file_path = path.clone();
    if let Some(rest) = path.strip_prefix(REDIRECT_PREFIX) {
        if rest.starts_with('/') {
            file_path = rest.to_string();
            mode = Mode::Normal;
        }
    }
    if mode == Mode::Redirect {
        let mut r = Response::simple(302, "moved");
        r.headers.push((
            "Location".into(),
            format!("{REDIRECT_PREFIX}{}", req.target),
        ));
        return r;
    }
    if mode == Mode::NotFound && !file_path.ends_with(".zsync") {
        return Response::simple(404, "not found");
    }
    let Some(file) = file_for(&inner.root, &file_path) else {
        return Response::simple(404, "not found");
    };
    let Ok(data) = std::fs::read(&file) else {
        return Response::simple(404, "not found");
    };
    let len = data.len() as u64;
    let ranges = match req.header("range").map(|h| parse_ranges(h, len)) {
        None | Some(None) => None,
        Some(Some(r)) => Some(r),
    };
    let mut resp = match (mode, ranges) {
        (Mode::IgnoreRange, _) | (_, None) => full(&data, mode),
        (_, Some(r)) if r.is_empty() => {
            let mut resp = Response::simple(416, "range not satisfiable");
            resp.headers
                .push(("Content-Range".into(), format!("bytes */{len}")));
            resp
        }
        (_, Some(r)) if r.len() == 1 => single(&data, r[0], mode),
        (Mode::SingleOnly, Some(r)) => single(&data, r[0], mode),
        (Mode::MultiRange416, Some(_)) => {
            let mut resp = Response::simple(416, "no multi-range here");
            resp.headers
                .push(("Content-Range".into(), format!("bytes */{len}")));
            resp
        }
        (Mode::MultipartReordered, Some(mut r)) => {
            r.reverse();
            multipart(&data, &r, mode)
        }
        (Mode::MultipartCoalesced, Some(r)) => {
            let merged = coalesce(r);
            if merged.len() == 1 {
                single(&data, merged[0], mode)
            } else {
                multipart(&data, &merged, mode)
            }
        }
        (_, Some(r)) => multipart(&data, &r, mode),
    };
    match mode {
        Mode::Truncated => resp.cut_at = Some(resp.body.len() / 2),
        Mode::FailAfter(n) => {
            let mut st = lock(&inner.fail_state);
            if !st.1 {
                let left = n.saturating_sub(st.0);
                let blen = resp.body.len() as u64;
                if blen > left {
                    resp.cut_at = Some(left as usize);
                    *st = (n, true);
                } else {
                    st.0 += blen;
                }
            }
        }
        _ => {}
    }
    resp
}

/// Inclusive `(first, last)` byte positions, clipped to the file. `None`: no valid
/// `bytes=` header (ignore it). `Some(empty)`: nothing satisfiable.
fn parse_ranges(header: &str, len: u64) -> Option<Vec<(u64, u64)>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let mut out = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        let (a, b) = part.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        if a.is_empty() {
            let n: u64 = b.parse().ok()?;
            if n > 0 && len > 0 {
                out.push((len.saturating_sub(n), len - 1));
            }
            continue;
        }
        let first: u64 = a.parse().ok()?;
        let last: u64 = if b.is_empty() {
            u64::MAX
        } else {
            b.parse().ok()?
        };
        if last < first {
            return None;
        }
        if first < len {
            out.push((first, last.min(len - 1)));
        }
    }
    Some(out)
}

fn coalesce(mut r: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    r.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in r {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(COALESCE_GAP) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn piece(data: &[u8], (a, b): (u64, u64), mode: Mode) -> Vec<u8> {
    let mut v = data[a as usize..=b as usize].to_vec();
    if mode == Mode::Corrupt {
        if let Some(x) = v.first_mut() {
            *x ^= 0xff;
        }
    }
    v
}

fn full(data: &[u8], mode: Mode) -> Response {
    let mut body = data.to_vec();
    if mode == Mode::Corrupt {
        if let Some(x) = body.first_mut() {
            *x ^= 0xff;
        }
    }
    Response {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/octet-stream".into()),
            ("Accept-Ranges".into(), "bytes".into()),
        ],
        body,
        cut_at: None,
    }
}

fn single(data: &[u8], r: (u64, u64), mode: Mode) -> Response {
    Response {
        status: 206,
        headers: vec![
            ("Content-Type".into(), "application/octet-stream".into()),
            (
                "Content-Range".into(),
                format!("bytes {}-{}/{}", r.0, r.1, data.len()),
            ),
        ],
        body: piece(data, r, mode),
        cut_at: None,
    }
}

fn multipart(data: &[u8], ranges: &[(u64, u64)], mode: Mode) -> Response {
    let mut body = Vec::new();
    for (i, &r) in ranges.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {}-{}/{}\r\n\r\n",
                r.0,
                r.1,
                data.len()
            )
            .as_bytes(),
        );
        body.extend_from_slice(&piece(data, r, mode));
    }
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Response {
        status: 206,
        headers: vec![(
            "Content-Type".into(),
            format!("multipart/byteranges; boundary={BOUNDARY}"),
        )],
        body,
        cut_at: None,
    }
}
