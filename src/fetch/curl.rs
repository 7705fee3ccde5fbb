//! [`CurlFetcher`]: a [`RangeFetcher`] that runs the host's `curl`.
//!
//! # How curl is run
//!
//! The command prefix comes from `ZSYNC_CURL` (default `curl`) and is interpreted by
//! `/bin/sh`, so users can add options and variables
//! (`ZSYNC_CURL='curl --cacert /x/cert.pem'`). Nothing else is ever spliced into the shell
//! text: every argument of ours (URL, ranges, ...) is passed as a positional parameter:
//!
//! ```text
//! /bin/sh -c '<ZSYNC_CURL> --fail-with-body --silent --show-error --location --netrc "$@"' \
//!     zsync3 --globoff --suppress-connect-headers --dump-header /dev/stderr \
//!     [--proto-redir =http,https] [--speed-limit 1 --speed-time 60 --connect-timeout 60] \
//!     [--range a-b,c-d | --write-out ...] --url <URL>
//! ```
//!
//! When the prefix is just `curl` (`ZSYNC_CURL` unset, blank or `curl`), that same curl
//! command is run directly, without a shell: starting a shell costs about a millisecond of
//! CPU for each request.
//!
//! One curl process makes exactly one HTTP request (no `--next`: options after `--next` do
//! not inherit the options from `ZSYNC_CURL`). The number of requests is kept down by
//! multi-range requests (`Range: bytes=a-b,c-d,...`, answered with `multipart/byteranges`)
//! once a server has shown that it answers them properly, and up to
//! [`DEFAULT_PARALLEL`] curl processes run at the same time.
//!
//! The body arrives on curl's stdout and is streamed (never held whole); the response
//! headers arrive on curl's stderr (`--dump-header /dev/stderr`, which curl flushes before
//! writing any body byte), followed by curl's own error message, if any. All data is handed
//! to the [`RangeSink`] on the calling thread, which reads the pipes of all running curls
//! itself as they become readable (`poll`): no helper threads, no hand-offs.
//!
//! # Requests
//!
//! The ranges of a call are sorted, merged when they touch, and split into pieces of at
//! most 32 MiB; a request asks for at most 128 ranges (a `Range` header of about 3 KB;
//! Apache answers more than 200 with the whole file) and 32 MiB. Every request costs a curl
//! process (about 6 ms of CPU to start), so few large requests beat many small ones. For
//! each URL the fetcher remembers how the server answered:
//!
//! * until a server has answered a range request with 206, the first request of a call runs
//!   alone (a server that ignores `Range` answers 200 with the whole resource; that body is
//!   delivered from offset 0 up to the end of the last range of the call, then curl is
//!   stopped, and nothing else is requested);
//! * the first multi-range request also runs alone, as a probe. A proper
//!   `multipart/byteranges` answer (parts in any order, possibly coalesced; each placed by
//!   its own `Content-Range`), or a plain 206 that covers every range asked for, enables
//!   multi-range requests for the URL. A plain 206 that covers only part of what was
//!   asked, a 200, or a 416 disables them; the ranges it did not cover are then asked for
//!   one per request (at most once more each);
//! * a request that runs alone asks for at most 256 KiB, so the requests after it start
//!   in parallel soon.
//!
//! # Errors
//!
//! An HTTP status >= 400 gives [`FetchError::Http`]; a curl failure (exit code, signal)
//! gives [`FetchError::Transport`] with curl's own one-line message; a malformed answer gives
//! [`FetchError::Protocol`]. Messages never contain the `ZSYNC_CURL` text (words of it that
//! curl echoes are replaced by `***`) nor `user:password@` from URLs. Nothing is retried
//! here. When one request fails, no new one is started, those running are finished, and
//! the first error is returned.
//!
//! # Differences from the reference
//!
//! An empty `ZSYNC_CURL` means `curl`. Unless the command sets these options itself,
//! redirects are followed to `http`/`https` only, and curl aborts transfers that stall
//! (< 1 byte/s) for 60 s and connection attempts longer than 60 s
//! ([`CurlFetcher::with_stall_timeout`]).
//! A transfer that stops being useful is stopped by closing curl's stdout (curl exits at
//! its next write); only a curl that is then silent for 3 more seconds has its shell
//! killed, and it ends by its own stall timeout.
//!
//! # Requirements
//!
//! curl 7.76 or newer (`--fail-with-body`) and a POSIX `/bin/sh`.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::multipart::{byteranges_boundary, parse_content_range, Event, MultipartParser};
use super::url::{is_http, redact_url, userinfo, validate_url};
use super::{ByteRange, FetchError, Fetched, RangeFetcher, RangeSink};

/// Default number of curl processes run at the same time.
pub const DEFAULT_PARALLEL: usize = 4;
/// Default maximum number of ranges in one multi-range request.
pub const DEFAULT_MAX_RANGES_PER_REQUEST: usize = 128;
/// The error when the curl command is not found (the shell's exit code 127).
const CURL_NOT_FOUND: &str = "cannot run curl (ZSYNC_CURL): command not found";
/// The error when the curl command cannot be executed (the shell's exit code 126).
const CURL_NOT_EXECUTABLE: &str =
    "cannot run curl (ZSYNC_CURL): permission denied or not executable";
/// Most bytes a probe (a request that must run alone) asks for.
const PROBE_BYTES: u64 = 256 << 10;
/// Requests started together get the data in pieces of this size, in turn.
const DEAL_PIECE: u64 = 1 << 20;
/// Default maximum number of bytes asked for in one request (larger ranges are split).
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 32 << 20;
/// Default stall timeout: a transfer below 1 byte/s for this long (or a connection attempt
/// taking this long) is aborted by curl.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Options always given to curl, right after `ZSYNC_CURL` (as in the reference).
const ALWAYS: &str = "--fail-with-body --silent --show-error --location --netrc";
/// Pipe read size.
const READ_CHUNK: usize = 64 * 1024;
/// Body bytes kept while the response headers have not been seen yet.
const MAX_PREHEAD: usize = 1 << 20;
/// Longest header line kept from curl's stderr.
const MAX_HEADER_LINE: usize = 16 * 1024;
/// Non-header stderr text kept (the end of it) for error messages.
const MAX_TAIL: usize = 16 * 1024;
/// Extra bytes allowed in a multipart body beyond the span of the requested ranges.
const MULTIPART_SLACK: u64 = 1 << 20;
/// Marks the `--write-out` line that carries the effective URL.
const URL_MARKER: &str = "zsync3-effective-url:";
/// How long stopped curl processes get to exit by themselves at the end of a call.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest message text taken from curl.
const MAX_MESSAGE: usize = 300;

/// A [`RangeFetcher`] that runs curl (see the [module documentation](self)).
#[derive(Debug)]
pub struct CurlFetcher {
    cfg: Config,
    urls: HashMap<String, UrlState>,
    requests: u64,
}

#[derive(Clone)]
struct Config {
    curl_cmd: String,
    secrets: Vec<String>,
    parallel: usize,
    max_ranges: usize,
    max_request_bytes: u64,
    multi_range: bool,
    stall_timeout: Option<Duration>,
}

/// What we know about a server's answers to range requests, for one URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Tri {
    #[default]
    Unknown,
    Yes,
    No,
}

#[derive(Debug, Clone, Copy, Default)]
struct UrlState {
    /// Single ranges are answered with 206.
    ranges: Tri,
    /// Multi-range requests are answered with a proper `multipart/byteranges` body.
    multi: Tri,
}

impl CurlFetcher {
    /// A fetcher running `curl_cmd` (the `ZSYNC_CURL` value: a shell command prefix such as
    /// `curl --cacert /x/cert.pem`). An empty or blank value means `curl`.
    pub fn new(curl_cmd: String) -> Self {
        let curl_cmd = if curl_cmd.trim().is_empty() {
            "curl".to_string()
        } else {
            curl_cmd
        };
        let secrets = secret_tokens(&curl_cmd);
        CurlFetcher {
            cfg: Config {
                curl_cmd,
                secrets,
                parallel: DEFAULT_PARALLEL,
                max_ranges: DEFAULT_MAX_RANGES_PER_REQUEST,
                max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
                multi_range: true,
                stall_timeout: Some(DEFAULT_STALL_TIMEOUT),
            },
            urls: HashMap::new(),
            requests: 0,
        }
    }

    /// A fetcher running `$ZSYNC_CURL`, or `curl` when it is unset or blank.
    pub fn from_env() -> Self {
        let cmd = std::env::var_os("ZSYNC_CURL").map(|v| v.to_string_lossy().into_owned());
        Self::new(cmd.unwrap_or_default())
    }

    /// Run at most `n` curl processes at the same time (at least 1; default 4).
    pub fn with_parallel(mut self, n: usize) -> Self {
        self.cfg.parallel = n.max(1);
        self
    }

    /// Ask for at most `n` ranges in one request (at least 1; default 128).
    pub fn with_max_ranges_per_request(mut self, n: usize) -> Self {
        self.cfg.max_ranges = n.max(1);
        self
    }

    /// Ask for at most `n` bytes in one request (at least 1; default 32 MiB). Longer ranges
    /// are split into several requests.
    pub fn with_max_request_bytes(mut self, n: u64) -> Self {
        self.cfg.max_request_bytes = n.max(1);
        self
    }

    /// Allow multi-range requests (default `true`). With `false`, every request asks for
    /// one range.
    pub fn with_multi_range(mut self, on: bool) -> Self {
        self.cfg.multi_range = on;
        self
    }

    /// Let curl abort a transfer that moves less than 1 byte/s for `t` (and a connection
    /// attempt longer than `t`); `None` leaves curl's defaults. Default 60 s. Not applied
    /// when the curl command already sets these options.
    pub fn with_stall_timeout(mut self, t: Option<Duration>) -> Self {
        self.cfg.stall_timeout = t;
        self
    }

    /// Number of curl processes (that is, HTTP requests) started so far.
    pub fn requests_made(&self) -> u64 {
        self.requests
    }
}

impl RangeFetcher for CurlFetcher {
    fn get(&mut self, url: &str, limit: u64) -> Result<Fetched, FetchError> {
        validate_url(url)?;
        let mut session = Session::new(&self.cfg, url, 0);
        let result = (|| {
            session.launch(Spec::Whole { limit })?;
            let mut sink = NoSink;
            loop {
                for note in session.pump(&mut sink)? {
                    if let Note::Completed { result, .. } = note {
                        return match result? {
                            Outcome::Whole { body, final_url } => Ok(Fetched { body, final_url }),
                            Outcome::Ranges { .. } => Err(FetchError::Protocol(
                                "internal error: range outcome for a whole request".into(),
                            )),
                        };
                    }
                }
            }
        })();
        self.requests += session.launched;
        result
    }

    fn fetch_ranges(
        &mut self,
        url: &str,
        ranges: &[ByteRange],
        sink: &mut dyn RangeSink,
    ) -> Result<(), FetchError> {
        validate_url(url)?;
        let pieces = normalize(ranges, self.cfg.max_request_bytes);
        let Some(max_end) = pieces.last().map(|r| r.end) else {
            return Ok(());
        };
        let http = is_http(url);
        let mut state = self.urls.get(url).copied().unwrap_or_default();
        let mut session = Session::new(&self.cfg, url, max_end);
        let result = schedule(&mut session, &self.cfg, http, &mut state, pieces, sink);
        self.requests += session.launched;
        drop(session);
        self.urls.insert(url.to_string(), state);
        result
    }
}

/// Sorted, merged (overlapping or touching), non-empty ranges, each at most `max` long.
fn normalize(ranges: &[ByteRange], max: u64) -> Vec<ByteRange> {
    let mut v: Vec<ByteRange> = ranges.iter().copied().filter(|r| r.start < r.end).collect();
    v.sort();
    let mut merged: Vec<ByteRange> = Vec::with_capacity(v.len());
    for r in v {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let max = max.max(1);
    let mut out = Vec::with_capacity(merged.len());
    for r in merged {
        let mut s = r.start;
        while s < r.end {
            let e = s.saturating_add(max).min(r.end);
            out.push(ByteRange { start: s, end: e });
            s = e;
        }
    }
    out
}

/// Run the requests of one `fetch_ranges` call.
fn schedule(
    session: &mut Session<'_>,
    cfg: &Config,
    http: bool,
    state: &mut UrlState,
    pieces: Vec<ByteRange>,
    sink: &mut dyn RangeSink,
) -> Result<(), FetchError> {
    let mut queue: VecDeque<ByteRange> = pieces.into();
    // Requests dealt from the queue together, not started yet.
    let mut dealt: VecDeque<Vec<ByteRange>> = VecDeque::new();
    // Ranges to ask for again, one per request, after a multi-range answer missed them.
    let mut singles: VecDeque<ByteRange> = VecDeque::new();
    let mut exclusive: Option<u64> = None;
    let mut streaming_all = false;
    let mut first_error: Option<FetchError> = None;
    loop {
        while first_error.is_none()
            && !streaming_all
            && exclusive.is_none()
            && session.running.len() < cfg.parallel
        {
            let free = cfg.parallel - session.running.len();
            let (mut batch, from_singles) = if let Some(r) = singles.pop_front() {
                (vec![r], true)
            } else if let Some(b) = dealt.pop_front() {
                (b, false)
            } else if !queue.is_empty() {
                let multi_ok = http && cfg.multi_range && state.multi != Tri::No;
                // Once multi-range answers are known to work: as many requests as the limits
                // need, if they can run at once.
                let n = if multi_ok && state.multi == Tri::Yes && state.ranges == Tri::Yes {
                    requests_needed(&queue, cfg).min(free)
                } else {
                    1
                };
                if n > 1 {
                    // Requests that start together advance through the file together, so
                    // that the file is complete from its start on as early as possible.
                    dealt = deal(
                        &mut queue,
                        n,
                        cfg.max_ranges,
                        cfg.max_request_bytes,
                        DEAL_PIECE,
                    )
                    .into();
                    (dealt.pop_front().unwrap_or_default(), false)
                } else {
                    let n = if multi_ok { cfg.max_ranges } else { 1 };
                    (take_batch(&mut queue, n, cfg.max_request_bytes), false)
                }
            } else {
                break;
            };
            // Until the server has shown how it answers, probe with one request alone: a
            // server that ignores Range sends whole bodies, and one of those is enough.
            let must_be_alone = http
                && (state.ranges != Tri::Yes || (batch.len() > 1 && state.multi == Tri::Unknown));
            if must_be_alone && !session.running.is_empty() {
                if from_singles {
                    for r in batch.into_iter().rev() {
                        singles.push_front(r);
                    }
                } else {
                    // Back to the queue, in order, with the other requests dealt with it.
                    let mut back: Vec<ByteRange> = batch;
                    back.extend(dealt.drain(..).flatten());
                    back.sort();
                    for r in back.into_iter().rev() {
                        queue.push_front(r);
                    }
                }
                break;
            }
            if must_be_alone && !from_singles {
                // A request that runs alone is kept small, so the others start soon.
                shrink_probe(
                    &mut batch,
                    &mut queue,
                    PROBE_BYTES.min(cfg.max_request_bytes),
                );
            }
            match session.launch(Spec::Ranges(batch)) {
                Ok(id) => {
                    if must_be_alone {
                        exclusive = Some(id);
                    }
                }
                Err(e) => first_error = Some(e),
            }
        }
        if session.running.is_empty() {
            break;
        }
        for note in session.pump(sink)? {
            match note {
                Note::FullBody { id } => {
                    // A 200 with the whole resource: it is streamed up to the end of the last
                    // range asked for, so nothing else is needed.
                    streaming_all = true;
                    queue.clear();
                    dealt.clear();
                    singles.clear();
                    session.cancel_all_except(id);
                    if exclusive.is_some_and(|x| x != id) {
                        exclusive = None;
                    }
                }
                Note::Completed { id, ranges, result } => {
                    if exclusive == Some(id) {
                        exclusive = None;
                    }
                    let multi = ranges.len() > 1;
                    match result {
                        Ok(Outcome::Ranges { kind, uncovered }) => match kind {
                            RespKind::Multipart => {
                                state.ranges = Tri::Yes;
                                if multi {
                                    state.multi = Tri::Yes;
                                    singles.extend(uncovered);
                                }
                            }
                            RespKind::Single => {
                                state.ranges = Tri::Yes;
                                if multi && !uncovered.is_empty() {
                                    state.multi = Tri::No;
                                    singles.extend(uncovered);
                                } else if multi {
                                    // One part that covered every range asked for (the
                                    // server merged them): multi-range requests work.
                                    state.multi = Tri::Yes;
                                }
                            }
                            RespKind::Full => {
                                if multi {
                                    state.multi = Tri::No;
                                } else {
                                    state.ranges = Tri::No;
                                }
                            }
                            RespKind::Unsatisfiable => {
                                state.multi = Tri::No;
                                singles.extend(ranges);
                            }
                            RespKind::Raw => {}
                        },
                        Ok(Outcome::Whole { .. }) => {}
                        Err(e) => {
                            if first_error.is_none() {
                                first_error = Some(e);
                            }
                        }
                    }
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Up to `n` ranges from the front of `queue`, at most `max_bytes` in total (at least one).
/// Cut a probe down to about `limit` bytes: the ranges that fit, but at least two when it
/// has several (so that it still shows how the server answers several ranges), cut short
/// if need be. What is cut off goes back to the front of `queue`, in order.
fn shrink_probe(batch: &mut Vec<ByteRange>, queue: &mut VecDeque<ByteRange>, limit: u64) {
    let mut total = 0u64;
    let mut keep = 0;
    for r in batch.iter() {
        if keep >= 2 && total.saturating_add(r.len()) > limit {
            break;
        }
        total = total.saturating_add(r.len());
        keep += 1;
    }
    let mut back: Vec<ByteRange> = batch.drain(keep..).collect();
    if total > limit {
        let per = (limit / keep.max(1) as u64).max(1);
        for r in batch.iter_mut() {
            if r.len() > per {
                back.push(ByteRange {
                    start: r.start + per,
                    end: r.end,
                });
                r.end = r.start + per;
            }
        }
    }
    back.sort();
    for r in back.into_iter().rev() {
        queue.push_front(r);
    }
}

/// Requests the ranges of `queue` take at least, within the limits of `cfg`.
fn requests_needed(queue: &VecDeque<ByteRange>, cfg: &Config) -> usize {
    let bytes: u64 = queue.iter().map(|r| r.len()).sum();
    (bytes.div_ceil(cfg.max_request_bytes.max(1)) as usize)
        .max(queue.len().div_ceil(cfg.max_ranges.max(1)))
}

/// Deal the ranges at the front of `queue` into up to `n` requests that advance through the
/// file together: cut into pieces of at most `piece` bytes, piece j goes to request j mod n.
/// Each request gets at most `max_ranges` pieces and `max_bytes` bytes (at least one piece);
/// what does not fit stays in `queue`, in order.
fn deal(
    queue: &mut VecDeque<ByteRange>,
    n: usize,
    max_ranges: usize,
    max_bytes: u64,
    piece: u64,
) -> Vec<Vec<ByteRange>> {
    let n = n.max(1);
    let mut batches: Vec<Vec<ByteRange>> = vec![Vec::new(); n];
    let mut bytes = vec![0u64; n];
    let mut j = 0;
    while let Some(r) = queue.pop_front() {
        let len = r.len().min(piece.max(1));
        let b = j % n;
        let full = batches[b].len() >= max_ranges.max(1)
            || (!batches[b].is_empty() && bytes[b].saturating_add(len) > max_bytes);
        if full {
            queue.push_front(r);
            break;
        }
        if len < r.len() {
            queue.push_front(ByteRange {
                start: r.start + len,
                end: r.end,
            });
        }
        batches[b].push(ByteRange {
            start: r.start,
            end: r.start + len,
        });
        bytes[b] += len;
        j += 1;
    }
    batches.retain(|b| !b.is_empty());
    batches
}

fn take_batch(queue: &mut VecDeque<ByteRange>, n: usize, max_bytes: u64) -> Vec<ByteRange> {
    let mut batch = Vec::new();
    let mut total = 0u64;
    while batch.len() < n.max(1) {
        let Some(&r) = queue.front() else { break };
        if !batch.is_empty() && total.saturating_add(r.len()) > max_bytes {
            break;
        }
        total = total.saturating_add(r.len());
        batch.push(r);
        queue.pop_front();
    }
    batch
}

/// A sink for [`RangeFetcher::get`], which never delivers ranges.
struct NoSink;

impl RangeSink for NoSink {
    fn data(&mut self, _offset: u64, _data: &[u8]) -> Result<(), FetchError> {
        Ok(())
    }
}

/// What one curl process is asked for.
enum Spec {
    /// These ranges (sorted, disjoint).
    Ranges(Vec<ByteRange>),
    /// The whole resource, at most `limit` bytes.
    Whole { limit: u64 },
}

/// How a range request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespKind {
    /// 206 `multipart/byteranges`.
    Multipart,
    /// 206 with one `Content-Range`.
    Single,
    /// 200 with the whole resource.
    Full,
    /// 416 to a multi-range request.
    Unsatisfiable,
    /// A non-HTTP URL (`file:`, `ftp:`): the body is the range asked for.
    Raw,
}

enum Outcome {
    Ranges {
        kind: RespKind,
        /// Requested ranges that no complete part covered.
        uncovered: Vec<ByteRange>,
    },
    Whole {
        body: Vec<u8>,
        final_url: String,
    },
}

/// What [`Session::pump`] reports.
enum Note {
    /// Request `id` got a 200 with the whole resource and streams it to the end of the
    /// last range of the call.
    FullBody { id: u64 },
    /// Request `id` ended.
    Completed {
        id: u64,
        ranges: Vec<ByteRange>,
        result: Result<Outcome, FetchError>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pipe {
    Out,
    Err,
}

/// Output of a running curl, read by the calling thread.
enum Msg<'b> {
    /// Bytes read from a pipe.
    Data(Pipe, &'b [u8]),
    /// The pipe ended (with the read error, if that was why).
    Eof(Pipe, Option<String>),
}

/// Where the body bytes of a running request go.
enum Body {
    /// Response headers not seen yet.
    Pending,
    /// Non-HTTP URL: the bytes of the one range asked for.
    Raw { next: u64, end: u64 },
    /// 206 with a single `Content-Range`.
    Single { range: ByteRange, next: u64 },
    /// 206 `multipart/byteranges`.
    Multipart {
        parser: MultipartParser,
        received: u64,
        cap: u64,
    },
    /// 200: the whole resource, delivered from offset 0 until `stop_at`.
    Full { next: u64, stop_at: u64 },
    /// [`RangeFetcher::get`].
    Whole { buf: Vec<u8>, limit: u64 },
    /// Nothing useful (no headers).
    Discard,
}

/// One running curl process.
struct Running {
    ranges: Vec<ByteRange>,
    whole_limit: Option<u64>,
    http: bool,
    child: Child,
    /// curl's stdout (the body) and stderr (headers, messages) until they end; closing
    /// stdout early makes curl stop at its next write.
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
    head: HeadParser,
    /// Whether body bytes are read: HTTP bodies only once a complete header block has been
    /// seen on stderr, so that they never overtake the headers.
    body_open: bool,
    prehead: Vec<Vec<u8>>,
    prehead_len: usize,
    body: Body,
    kind: RespKind,
    covered: Vec<bool>,
    out_eof: bool,
    err_eof: bool,
    /// `Some(Ok)`: stopped on purpose (everything useful arrived); `Some(Err)`: failed.
    finish: Option<Result<(), FetchError>>,
    /// Ended before curl did: the process must be retired, not waited for.
    finish_pending_reap: bool,
}

/// The curl processes of one call.
struct Session<'a> {
    cfg: &'a Config,
    url: &'a str,
    max_end: u64,
    running: HashMap<u64, Running>,
    /// Pipes found readable by the last `poll`, not read yet.
    ready: VecDeque<(u64, Pipe)>,
    buf: Vec<u8>,
    next_id: u64,
    launched: u64,
    /// Stopped processes not reaped yet.
    retired: Vec<Child>,
}

impl<'a> Session<'a> {
    fn new(cfg: &'a Config, url: &'a str, max_end: u64) -> Self {
        Session {
            cfg,
            url,
            max_end,
            running: HashMap::new(),
            ready: VecDeque::new(),
            buf: vec![0; READ_CHUNK],
            next_id: 0,
            launched: 0,
            retired: Vec::new(),
        }
    }

    fn protocol(&self, what: impl std::fmt::Display) -> FetchError {
        FetchError::Protocol(format!("{}: {what}", redact_url(self.url)))
    }

    /// Start curl for `spec`; returns the request id.
    fn launch(&mut self, spec: Spec) -> Result<u64, FetchError> {
        let http = is_http(self.url);
        let mut args: Vec<String> = [
            "--globoff",
            "--suppress-connect-headers",
            "--dump-header",
            "/dev/stderr",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.cfg.optional_args());
        let (ranges, whole_limit) = match spec {
            Spec::Ranges(r) => {
                let list: Vec<String> = r.iter().map(|r| r.to_string()).collect();
                args.push("--range".into());
                args.push(list.join(","));
                (r, None)
            }
            Spec::Whole { limit } => {
                args.push("--write-out".into());
                args.push(format!("%{{stderr}}\n{URL_MARKER}%{{url_effective}}\n"));
                (Vec::new(), Some(limit))
            }
        };
        args.push("--url".into());
        args.push(self.url.to_string());

        let mut child = self
            .cfg
            .command()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.cfg.spawn_error(e))?;
        self.launched += 1;
        let id = self.next_id;
        self.next_id += 1;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(FetchError::Transport(
                "cannot read from curl: no pipes".into(),
            ));
        };
        let body = if http {
            Body::Pending
        } else if let Some(limit) = whole_limit {
            Body::Whole {
                buf: Vec::new(),
                limit,
            }
        } else {
            match ranges.first() {
                Some(r) => Body::Raw {
                    next: r.start,
                    end: r.end,
                },
                None => Body::Discard,
            }
        };
        let covered = vec![false; ranges.len()];
        self.running.insert(
            id,
            Running {
                ranges,
                whole_limit,
                http,
                child,
                out: Some(out),
                err: Some(err),
                head: HeadParser::default(),
                body_open: !http,
                prehead: Vec::new(),
                prehead_len: 0,
                body,
                kind: RespKind::Raw,
                covered,
                out_eof: false,
                err_eof: false,
                finish: None,
                finish_pending_reap: false,
            },
        );
        Ok(id)
    }

    /// Wait for the next piece of output from any running curl and handle it. `Err` only
    /// when the sink refused data (the call must stop).
    fn pump(&mut self, sink: &mut dyn RangeSink) -> Result<Vec<Note>, FetchError> {
        let mut notes = Vec::new();
        let (id, pipe) = loop {
            if let Some(next) = self.ready.pop_front() {
                break next;
            }
            if let Err(e) = self.wait_readable() {
                // Nothing can be read any more: fail the running requests rather than spin.
                let ids: Vec<u64> = self.running.keys().copied().collect();
                for id in ids {
                    if let Some(mut r) = self.running.remove(&id) {
                        r.finish = Some(Err(FetchError::Transport(format!(
                            "lost contact with curl: {e}"
                        ))));
                        notes.push(self.complete(id, r));
                    }
                }
                return Ok(notes);
            }
        };
        let Some(mut r) = self.running.remove(&id) else {
            return Ok(notes); // A request that ended meanwhile.
        };
        let read = match pipe {
            Pipe::Out => r.out.as_mut().map(|p| p.read(&mut self.buf)),
            Pipe::Err => r.err.as_mut().map(|p| p.read(&mut self.buf)),
        };
        let msg = match read {
            // Closed meanwhile.
            None => {
                self.running.insert(id, r);
                return Ok(notes);
            }
            Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                self.ready.push_front((id, pipe));
                self.running.insert(id, r);
                return Ok(notes);
            }
            Some(Ok(0)) => {
                Self::close(&mut r, pipe);
                Msg::Eof(pipe, None)
            }
            Some(Ok(n)) => Msg::Data(pipe, &self.buf[..n]),
            Some(Err(e)) => {
                Self::close(&mut r, pipe);
                Msg::Eof(pipe, Some(e.to_string()))
            }
        };
        let step = self.handle(id, &mut r, &msg, sink, &mut notes);
        self.after(id, r, step, notes)
    }

    /// Close pipe `pipe` of a request (it ended).
    fn close(r: &mut Running, pipe: Pipe) {
        match pipe {
            Pipe::Out => r.out = None,
            Pipe::Err => r.err = None,
        }
    }

    /// After handling output of request `id`: keep it running, or complete it.
    fn after(
        &mut self,
        id: u64,
        r: Running,
        step: Result<(), FetchError>,
        mut notes: Vec<Note>,
    ) -> Result<Vec<Note>, FetchError> {
        if let Err(e) = step {
            // The sink failed: stop this request too (the others are stopped by Drop).
            self.retire(r);
            return Err(e);
        }
        if r.finish.is_some() || (r.out_eof && r.err_eof) {
            notes.push(self.complete(id, r));
        } else {
            self.running.insert(id, r);
        }
        if !self.retired.is_empty() {
            self.reap();
        }
        Ok(notes)
    }

    /// Wait until a pipe of a running request can be read (or has ended), and queue the
    /// ones that can.
    fn wait_readable(&mut self) -> io::Result<()> {
        let mut fds = Vec::new();
        let mut who = Vec::new();
        for (&id, r) in &self.running {
            if let Some(p) = &r.err {
                fds.push(sys::PollFd::new(p.as_raw_fd()));
                who.push((id, Pipe::Err));
            }
            if let (Some(p), true) = (&r.out, r.body_open) {
                fds.push(sys::PollFd::new(p.as_raw_fd()));
                who.push((id, Pipe::Out));
            }
        }
        if fds.is_empty() {
            return Err(io::Error::other("no output left to wait for"));
        }
        sys::poll_all(&mut fds)?;
        for (fd, w) in fds.iter().zip(who) {
            if fd.ready() {
                self.ready.push_back(w);
            }
        }
        Ok(())
    }

    fn handle(
        &self,
        id: u64,
        r: &mut Running,
        msg: &Msg<'_>,
        sink: &mut dyn RangeSink,
        notes: &mut Vec<Note>,
    ) -> Result<(), FetchError> {
        match msg {
            Msg::Data(Pipe::Out, data) => self.body_data(r, data, sink)?,
            Msg::Data(Pipe::Err, data) => {
                r.head.feed(data);
                if r.head.done || r.head.tentative.is_some() {
                    r.body_open = true;
                }
                if r.http && matches!(r.body, Body::Pending) && r.head.done {
                    self.head_ready(id, r, sink, notes)?;
                }
            }
            Msg::Eof(pipe, err) => {
                if let Some(e) = err {
                    if r.finish.is_none() {
                        r.finish = Some(Err(FetchError::Transport(format!(
                            "{}: reading from curl: {e}",
                            redact_url(self.url)
                        ))));
                    }
                }
                match pipe {
                    Pipe::Out => r.out_eof = true,
                    Pipe::Err => {
                        r.err_eof = true;
                        r.body_open = true;
                        r.head.finish();
                        if r.http && matches!(r.body, Body::Pending) {
                            self.head_ready(id, r, sink, notes)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The final response headers are known (or stderr ended without them).
    fn head_ready(
        &self,
        id: u64,
        r: &mut Running,
        sink: &mut dyn RangeSink,
        notes: &mut Vec<Note>,
    ) -> Result<(), FetchError> {
        let Some(head) = r.head.final_head.clone() else {
            r.body = Body::Discard;
            r.prehead = Vec::new();
            r.prehead_len = 0;
            return Ok(());
        };
        let status = head.status;
        if let Some(limit) = r.whole_limit {
            if (200..300).contains(&status) && status != 206 {
                r.body = Body::Whole {
                    buf: Vec::new(),
                    limit,
                };
            } else {
                r.body = Body::Discard;
                r.finish = Some(Err(self.status_error(status)));
            }
        } else {
            match status {
                206 => {
                    let ct = head.content_type.as_deref().unwrap_or("");
                    match byteranges_boundary(ct) {
                        Ok(Some(b)) => match MultipartParser::new(&b) {
                            Ok(parser) => {
                                let first = r.ranges.first().map_or(0, |x| x.start);
                                let last = r.ranges.last().map_or(0, |x| x.end);
                                let cap = (last - first)
                                    .saturating_add(MULTIPART_SLACK)
                                    .saturating_add(512 * r.ranges.len() as u64);
                                r.kind = RespKind::Multipart;
                                r.body = Body::Multipart {
                                    parser,
                                    received: 0,
                                    cap,
                                };
                            }
                            Err(e) => r.finish = Some(Err(self.protocol(e))),
                        },
                        Ok(None) => match head.content_range.as_deref().map(parse_content_range) {
                            Some(Ok(cr)) => {
                                r.kind = RespKind::Single;
                                r.body = Body::Single {
                                    range: cr.range,
                                    next: cr.range.start,
                                };
                            }
                            Some(Err(e)) => r.finish = Some(Err(self.protocol(e))),
                            None => {
                                r.finish =
                                    Some(Err(self.protocol("206 response without Content-Range")))
                            }
                        },
                        Err(e) => r.finish = Some(Err(self.protocol(e))),
                    }
                }
                200 => {
                    r.kind = RespKind::Full;
                    r.body = Body::Full {
                        next: 0,
                        stop_at: self.max_end,
                    };
                    notes.push(Note::FullBody { id });
                }
                416 if r.ranges.len() > 1 => {
                    r.kind = RespKind::Unsatisfiable;
                    r.body = Body::Discard;
                    r.finish = Some(Ok(()));
                }
                s => {
                    r.body = Body::Discard;
                    r.finish = Some(Err(self.status_error(s)));
                }
            }
        }
        let pre = std::mem::take(&mut r.prehead);
        r.prehead_len = 0;
        for chunk in pre {
            self.body_data(r, &chunk, sink)?;
        }
        Ok(())
    }

    fn status_error(&self, status: u32) -> FetchError {
        if status >= 400 {
            FetchError::Http {
                status,
                url: redact_url(self.url),
            }
        } else {
            self.protocol(format!("unexpected HTTP status {status}"))
        }
    }

    /// Body bytes from curl's stdout. `Err` only for a sink failure.
    fn body_data(
        &self,
        r: &mut Running,
        data: &[u8],
        sink: &mut dyn RangeSink,
    ) -> Result<(), FetchError> {
        if r.finish.is_some() || data.is_empty() {
            return Ok(());
        }
        match &mut r.body {
            Body::Pending => {
                if r.prehead_len + data.len() > MAX_PREHEAD {
                    r.finish = Some(Err(match r.head.tentative.as_ref() {
                        Some(h) => self.status_error(h.status),
                        None => self.protocol("no HTTP response headers from curl"),
                    }));
                } else {
                    r.prehead_len += data.len();
                    r.prehead.push(data.to_vec());
                }
            }
            Body::Discard => {}
            Body::Raw { next, end } => {
                let room = *end - *next;
                let n = (data.len() as u64).min(room) as usize;
                if n > 0 {
                    sink.data(*next, &data[..n])?;
                    *next += n as u64;
                    if *next == *end {
                        sink.range_end(*end)?;
                    }
                }
                if n < data.len() {
                    r.finish = Some(Err(self.protocol("more data than the range asked for")));
                }
            }
            Body::Single { range, next } => {
                let room = range.end - *next;
                let n = (data.len() as u64).min(room) as usize;
                // Bytes past the end of the last range of the call are of no use.
                let useful = self.max_end.saturating_sub(*next).min(n as u64) as usize;
                if useful > 0 {
                    sink.data(*next, &data[..useful])?;
                    if *next + useful as u64 == range.end.min(self.max_end) {
                        sink.range_end(*next + useful as u64)?;
                    }
                }
                *next += n as u64;
                if n == data.len() && *next >= self.max_end && *next < range.end {
                    let got = ByteRange {
                        start: range.start,
                        end: *next,
                    };
                    mark_covered(&r.ranges, &mut r.covered, got);
                    r.finish = Some(Ok(()));
                } else if n < data.len() {
                    r.finish = Some(Err(self.protocol(format!(
                        "body longer than its Content-Range ({}-{})",
                        range.start,
                        range.end - 1
                    ))));
                }
            }
            Body::Multipart {
                parser,
                received,
                cap,
            } => {
                *received += data.len() as u64;
                if *received > *cap {
                    r.finish = Some(Err(
                        self.protocol("multipart body much longer than the ranges asked for")
                    ));
                    return Ok(());
                }
                let ranges = &r.ranges;
                let covered = &mut r.covered;
                let res = parser.feed(data, |ev| match ev {
                    Event::Data { offset, data } => sink.data(offset, data).map_err(Stop::Sink),
                    Event::PartEnd(part) => {
                        mark_covered(ranges, covered, part);
                        sink.range_end(part.end).map_err(Stop::Sink)
                    }
                    Event::PartStart(_) => Ok(()),
                });
                match res {
                    Ok(()) => {}
                    Err(Stop::Sink(e)) => return Err(e),
                    Err(Stop::Bad(e)) => r.finish = Some(Err(self.protocol(e))),
                }
            }
            Body::Full { next, stop_at } => {
                let room = *stop_at - *next;
                let n = (data.len() as u64).min(room) as usize;
                if n > 0 {
                    sink.data(*next, &data[..n])?;
                    *next += n as u64;
                }
                if *next >= *stop_at {
                    if n > 0 {
                        sink.range_end(*next)?;
                    }
                    r.finish = Some(Ok(()));
                }
            }
            Body::Whole { buf, limit } => {
                if (buf.len() as u64).saturating_add(data.len() as u64) > *limit {
                    r.finish = Some(Err(
                        self.protocol(format!("response larger than {limit} bytes"))
                    ));
                } else {
                    buf.extend_from_slice(data);
                }
            }
        }
        Ok(())
    }

    /// End request `id`: reap curl and work out the result.
    fn complete(&mut self, id: u64, mut r: Running) -> Note {
        let ranges = std::mem::take(&mut r.ranges);
        // Stopped early (finish is set): curl may still be running; it is retired below.
        let waited = if r.finish.is_none() {
            Some(r.child.wait())
        } else {
            None
        };
        let result = self.result(&mut r, waited, &ranges);
        if r.finish_pending_reap {
            self.retire(r);
        }
        Note::Completed { id, ranges, result }
    }

    fn result(
        &self,
        r: &mut Running,
        waited: Option<io::Result<ExitStatus>>,
        ranges: &[ByteRange],
    ) -> Result<Outcome, FetchError> {
        match r.finish.take() {
            Some(Err(e)) => {
                r.finish_pending_reap = true;
                return Err(e);
            }
            Some(Ok(())) => {
                r.finish_pending_reap = true;
                return Ok(self.outcome(r, ranges));
            }
            None => {}
        }
        let status = waited
            .unwrap_or_else(|| Err(io::Error::other("not waited for")))
            .map_err(|e| {
                FetchError::Transport(format!("{}: waiting for curl: {e}", redact_url(self.url)))
            })?;
        if !status.success() {
            return Err(self.curl_failure(status, &r.head.tail));
        }
        if r.http && r.head.final_head.is_none() {
            return Err(self.protocol("no HTTP response headers from curl"));
        }
        match &r.body {
            Body::Single { range, next } => {
                if *next < range.end {
                    return Err(self.protocol(format!(
                        "body shorter than its Content-Range ({} of {} bytes)",
                        next - range.start,
                        range.len()
                    )));
                }
                let range = *range;
                mark_covered(ranges, &mut r.covered, range);
            }
            Body::Multipart { parser, .. } => {
                parser.finish().map_err(|e| self.protocol(e))?;
            }
            _ => {}
        }
        Ok(self.outcome(r, ranges))
    }

    fn outcome(&self, r: &mut Running, ranges: &[ByteRange]) -> Outcome {
        if r.whole_limit.is_some() {
            let body = match std::mem::replace(&mut r.body, Body::Discard) {
                Body::Whole { buf, .. } => buf,
                _ => Vec::new(),
            };
            let final_url = r
                .head
                .effective_url()
                .unwrap_or_else(|| self.url.to_string());
            return Outcome::Whole { body, final_url };
        }
        let uncovered = ranges
            .iter()
            .zip(&r.covered)
            .filter(|(_, &c)| !c)
            .map(|(r, _)| *r)
            .collect();
        Outcome::Ranges {
            kind: r.kind,
            uncovered,
        }
    }

    /// The error for a curl that exited unsuccessfully.
    fn curl_failure(&self, status: ExitStatus, tail: &[u8]) -> FetchError {
        let url = redact_url(self.url);
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(sig) = status.signal() {
                return FetchError::Transport(format!("{url}: curl was killed by signal {sig}"));
            }
        }
        match status.code() {
            Some(127) => FetchError::Transport(CURL_NOT_FOUND.into()),
            Some(126) => FetchError::Transport(CURL_NOT_EXECUTABLE.into()),
            Some(c) if c > 128 && c < 192 => {
                FetchError::Transport(format!("{url}: curl was killed by signal {}", c - 128))
            }
            c => {
                let code = c.map_or_else(|| "?".to_string(), |c| c.to_string());
                match curl_message(tail) {
                    Some(m) => FetchError::Transport(format!("{url}: {}", self.redact(&m))),
                    None => FetchError::Transport(format!("{url}: curl failed (exit code {code})")),
                }
            }
        }
    }

    /// `msg` with the secrets of `ZSYNC_CURL` and of the URL replaced by `***`.
    fn redact(&self, msg: &str) -> String {
        let mut out = msg.to_string();
        let mut secrets: Vec<&str> = self.cfg.secrets.iter().map(|s| s.as_str()).collect();
        if let Some(info) = userinfo(self.url) {
            secrets.push(info);
            secrets.extend(info.split(':').filter(|s| s.len() >= 3));
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in secrets {
            if !s.is_empty() {
                out = out.replace(s, "***");
            }
        }
        out
    }

    /// Stop a request without looking at its result. Its pipes are closed (dropped with
    /// `r`), so a curl that is still sending gets EPIPE and exits; the shell is reaped
    /// later ([`reap`](Self::reap), and at the end of the call).
    fn retire(&mut self, r: Running) {
        self.retired.push(r.child);
    }

    /// Reap retired processes that have exited.
    fn reap(&mut self) {
        self.retired
            .retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
    }

    fn cancel_all_except(&mut self, keep: u64) {
        let ids: Vec<u64> = self
            .running
            .keys()
            .copied()
            .filter(|&i| i != keep)
            .collect();
        for id in ids {
            if let Some(r) = self.running.remove(&id) {
                self.retire(r);
            }
        }
    }
}

impl Drop for Session<'_> {
    /// Stop whatever still runs. Curl processes that are still sending stop by themselves
    /// once their pipes are closed; after [`DRAIN_TIMEOUT`] the shells are killed (a curl
    /// stuck on a silent server then ends by its own stall timeout).
    fn drop(&mut self) {
        for (_, r) in std::mem::take(&mut self.running) {
            self.retire(r);
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            self.reap();
            if self.retired.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for mut c in std::mem::take(&mut self.retired) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl std::fmt::Debug for Config {
    /// Without the curl command, which may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("curl_cmd", &"<ZSYNC_CURL>")
            .field("parallel", &self.parallel)
            .field("max_ranges", &self.max_ranges)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("multi_range", &self.multi_range)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

impl Config {
    /// The curl command is just `curl`: it is run without a shell.
    fn runs_curl_directly(&self) -> bool {
        self.curl_cmd == "curl"
    }

    /// The command that runs curl, before our arguments: `/bin/sh -c '<ZSYNC_CURL> <ALWAYS>
    /// "$@"' zsync3`, or plain `curl <ALWAYS>` when the prefix is just `curl` (what the
    /// shell would run, without the cost of starting a shell for every request).
    fn command(&self) -> Command {
        if self.runs_curl_directly() {
            let mut c = Command::new("curl");
            c.args(ALWAYS.split(' '));
            c
        } else {
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg(format!("{} {ALWAYS} \"$@\"", self.curl_cmd))
                .arg("zsync3");
            c
        }
    }

    /// The error for a curl command that could not be started (for plain `curl`, what the
    /// shell's exit codes 127 and 126 would have said).
    fn spawn_error(&self, e: io::Error) -> FetchError {
        let direct = self.runs_curl_directly();
        FetchError::Transport(match e.kind() {
            io::ErrorKind::NotFound if direct => CURL_NOT_FOUND.into(),
            io::ErrorKind::PermissionDenied if direct => CURL_NOT_EXECUTABLE.into(),
            _ if direct => format!("cannot run curl: {e}"),
            _ => format!("cannot run /bin/sh for curl: {e}"),
        })
    }

    /// Does the curl command mention one of these options?
    fn user_sets(&self, opts: &[&str]) -> bool {
        self.curl_cmd.split_whitespace().any(|w| {
            let w = w.trim_matches(|c| c == '\'' || c == '"');
            opts.iter()
                .any(|o| w == *o || w.starts_with(&format!("{o}=")))
        })
    }

    /// Defaults that the curl command may override: redirects to http/https only, and the
    /// stall timeouts.
    fn optional_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if !self.user_sets(&["--proto-redir"]) {
            args.extend(["--proto-redir".into(), "=http,https".into()]);
        }
        let Some(t) = self.stall_timeout else {
            return args;
        };
        let secs = t.as_secs().max(1).to_string();
        if !self.user_sets(&["--speed-limit", "--speed-time", "-y", "-Y"]) {
            args.extend(["--speed-limit".into(), "1".into(), "--speed-time".into()]);
            args.push(secs.clone());
        }
        if !self.user_sets(&["--connect-timeout"]) {
            args.push("--connect-timeout".into());
            args.push(secs);
        }
        args
    }
}

/// Why multipart parsing stopped.
enum Stop {
    Sink(FetchError),
    Bad(super::multipart::MultipartError),
}

impl From<super::multipart::MultipartError> for Stop {
    fn from(e: super::multipart::MultipartError) -> Self {
        Stop::Bad(e)
    }
}

/// Mark the requested ranges that lie entirely inside `part`.
fn mark_covered(ranges: &[ByteRange], covered: &mut [bool], part: ByteRange) {
    let first = ranges.partition_point(|r| r.start < part.start);
    for (r, c) in ranges[first..].iter().zip(covered[first..].iter_mut()) {
        if r.end > part.end {
            break;
        }
        *c = true;
    }
}

/// Copy a pipe into the channel until EOF, an error, or cancellation.
/// `poll(2)`, for the pipes of the running curls.
mod sys {
    use std::ffi::{c_int, c_short};
    use std::io;
    use std::os::fd::RawFd;

    #[cfg(target_os = "linux")]
    type Nfds = std::ffi::c_ulong;
    #[cfg(not(target_os = "linux"))]
    type Nfds = std::ffi::c_uint;

    const POLLIN: c_short = 0x1;
    const POLLERR: c_short = 0x8;
    const POLLHUP: c_short = 0x10;
    const POLLNVAL: c_short = 0x20;

    /// `struct pollfd`.
    #[repr(C)]
    pub(super) struct PollFd {
        fd: c_int,
        events: c_short,
        revents: c_short,
    }

    impl PollFd {
        /// Wait for `fd` to be readable.
        pub(super) fn new(fd: RawFd) -> PollFd {
            PollFd {
                fd,
                events: POLLIN,
                revents: 0,
            }
        }

        /// Whether a read will not block: data, the other end closed, or an error.
        pub(super) fn ready(&self) -> bool {
            self.revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL) != 0
        }
    }

    extern "C" {
        fn poll(fds: *mut PollFd, nfds: Nfds, timeout: c_int) -> c_int;
    }

    /// Wait, without a time limit, until one of `fds` is ready.
    pub(super) fn poll_all(fds: &mut [PollFd]) -> io::Result<()> {
        loop {
            // SAFETY: `fds` is a valid array of `struct pollfd` of the length given.
            let n = unsafe { poll(fds.as_mut_ptr(), fds.len() as Nfds, -1) };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// The response headers that matter.
#[derive(Clone, Debug, Default)]
struct Head {
    status: u32,
    content_type: Option<String>,
    content_range: Option<String>,
}

/// A header block being read.
#[derive(Debug)]
struct Block {
    head: Head,
    location: bool,
}

/// Reads curl's stderr: `--dump-header` blocks (one per response, including redirects and
/// interim responses), then trailers, `--write-out` text and curl's error message.
#[derive(Debug, Default)]
struct HeadParser {
    line: Vec<u8>,
    block: Option<Block>,
    /// A 401/407 answer, which curl may follow with an authenticated retry.
    tentative: Option<Head>,
    /// The response whose body curl writes to stdout.
    final_head: Option<Head>,
    /// `final_head` is settled (found, or stderr ended).
    done: bool,
    /// The end of the non-header text.
    tail: Vec<u8>,
}

impl HeadParser {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let (piece, rest, complete) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &data[data.len()..], false),
            };
            let room = MAX_HEADER_LINE.saturating_sub(self.line.len());
            self.line.extend_from_slice(&piece[..piece.len().min(room)]);
            if complete {
                let line = std::mem::take(&mut self.line);
                self.on_line(&line);
            }
            data = rest;
        }
    }

    /// stderr ended.
    fn finish(&mut self) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line);
        }
        if !self.done {
            self.final_head = self.tentative.take();
            self.done = true;
        }
    }

    fn on_line(&mut self, raw: &[u8]) {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if self.done {
            self.add_tail(line);
            return;
        }
        if let Some(block) = &mut self.block {
            if line.is_empty() {
                let Some(b) = self.block.take() else { return };
                match b.head.status {
                    100..=199 => {}
                    300..=399 if b.location => {}
                    401 | 407 => self.tentative = Some(b.head),
                    _ => {
                        self.final_head = Some(b.head);
                        self.tentative = None;
                        self.done = true;
                    }
                }
                return;
            }
            let text = String::from_utf8_lossy(line);
            match text.split_once(':') {
                Some((name, value)) if !name.is_empty() && !name.contains([' ', '\t']) => {
                    let value = value.trim().to_string();
                    let name = name.to_ascii_lowercase();
                    match name.as_str() {
                        "content-type" if block.head.content_type.is_none() => {
                            block.head.content_type = Some(value)
                        }
                        "content-range" if block.head.content_range.is_none() => {
                            block.head.content_range = Some(value)
                        }
                        "location" => block.location = true,
                        _ => {}
                    }
                }
                _ => self.add_tail(line),
            }
            return;
        }
        match parse_status_line(line) {
            Some(status) => {
                self.block = Some(Block {
                    head: Head {
                        status,
                        ..Head::default()
                    },
                    location: false,
                })
            }
            None => self.add_tail(line),
        }
    }

    fn add_tail(&mut self, line: &[u8]) {
        self.tail.extend_from_slice(line);
        self.tail.push(b'\n');
        if self.tail.len() > 2 * MAX_TAIL {
            let cut = self.tail.len() - MAX_TAIL;
            self.tail.drain(..cut);
        }
    }

    /// The URL written by `--write-out` (the last one, in case a trailer imitates it).
    fn effective_url(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.tail);
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix(URL_MARKER))
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
    }
}

/// The status code of an `HTTP/x.y NNN reason` line.
fn parse_status_line(line: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(line).ok()?;
    if !text.starts_with("HTTP/") {
        return None;
    }
    let code = text.split_whitespace().nth(1)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    code.parse().ok()
}

/// curl's error message from the non-header stderr text: the first `curl: (N) ...` line,
/// else the first `curl: ...` line, else the last line; cleaned up and shortened.
fn curl_message(tail: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(tail);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(URL_MARKER))
        .collect();
    let pick = lines
        .iter()
        .find(|l| l.starts_with("curl: ("))
        .or_else(|| lines.iter().find(|l| l.starts_with("curl: ")))
        .or_else(|| lines.last())?;
    let mut msg: String = pick
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_MESSAGE)
        .collect();
    if pick.chars().count() > MAX_MESSAGE {
        msg.push_str("...");
    }
    Some(msg)
}

/// Words of the curl command that might be secrets (passwords, tokens, paths), to be
/// removed from curl's messages: everything of 4+ characters that is not an option name.
fn secret_tokens(cmd: &str) -> Vec<String> {
    let mut v: Vec<String> = cmd
        .split(|c: char| c.is_whitespace() || matches!(c, '=' | ':' | '"' | '\''))
        .filter(|t| t.len() >= 4)
        .filter(|t| {
            let is_option = t.starts_with('-')
                && t.trim_start_matches('-')
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            !is_option && !matches!(*t, "curl" | "http" | "https") && !t.ends_with("/curl")
        })
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: u64, e: u64) -> ByteRange {
        ByteRange { start: s, end: e }
    }

    #[test]
    fn normalize_merges_and_splits() {
        assert_eq!(
            normalize(&[r(10, 20), r(0, 5), r(5, 7), r(15, 30), r(40, 40)], 100),
            vec![r(0, 7), r(10, 30)]
        );
        assert_eq!(
            normalize(&[r(0, 25)], 10),
            vec![r(0, 10), r(10, 20), r(20, 25)]
        );
        assert_eq!(
            normalize(&[r(u64::MAX - 3, u64::MAX)], 2),
            vec![r(u64::MAX - 3, u64::MAX - 1), r(u64::MAX - 1, u64::MAX)]
        );
        assert!(normalize(&[], 10).is_empty());
    }

    #[test]
    fn batches() {
        let mut q: VecDeque<ByteRange> = vec![r(0, 10), r(20, 30), r(40, 50), r(60, 200)].into();
        assert_eq!(take_batch(&mut q, 2, 100), vec![r(0, 10), r(20, 30)]);
        assert_eq!(take_batch(&mut q, 5, 100), vec![r(40, 50)]);
        assert_eq!(take_batch(&mut q, 5, 100), vec![r(60, 200)]);
        assert!(take_batch(&mut q, 5, 100).is_empty());
    }

    /// Dealt requests take the queue's front in pieces, in turn, within their limits, and
    /// leave the rest in order.
    #[test]
    fn deal_interleaves_pieces_within_limits() {
        let mut q: VecDeque<ByteRange> = vec![r(0, 10), r(20, 55), r(60, 61), r(70, 200)].into();
        let b = deal(&mut q, 3, 100, 1000, 10);
        assert_eq!(
            b,
            vec![
                vec![
                    r(0, 10),
                    r(40, 50),
                    r(70, 80),
                    r(100, 110),
                    r(130, 140),
                    r(160, 170),
                    r(190, 200)
                ],
                vec![
                    r(20, 30),
                    r(50, 55),
                    r(80, 90),
                    r(110, 120),
                    r(140, 150),
                    r(170, 180)
                ],
                vec![
                    r(30, 40),
                    r(60, 61),
                    r(90, 100),
                    r(120, 130),
                    r(150, 160),
                    r(180, 190)
                ],
            ]
        );
        assert!(q.is_empty());
        // Limits: two pieces per request, or 25 bytes.
        let mut q: VecDeque<ByteRange> = vec![r(0, 100), r(200, 201)].into();
        let b = deal(&mut q, 2, 2, 1000, 10);
        assert_eq!(
            b,
            vec![vec![r(0, 10), r(20, 30)], vec![r(10, 20), r(30, 40)]]
        );
        assert_eq!(q, vec![r(40, 100), r(200, 201)]);
        let b = deal(&mut q, 2, 100, 25, 10);
        assert_eq!(
            b,
            vec![vec![r(40, 50), r(60, 70)], vec![r(50, 60), r(70, 80)]]
        );
        assert_eq!(q, vec![r(80, 100), r(200, 201)]);
        // A piece larger than the byte limit still goes alone.
        let b = deal(&mut q, 4, 100, 5, 1000);
        assert_eq!(b, vec![vec![r(80, 100)], vec![r(200, 201)]]);
        assert!(q.is_empty());
    }

    #[test]
    fn coverage() {
        let ranges = [r(0, 10), r(20, 30), r(40, 50)];
        let mut c = [false; 3];
        mark_covered(&ranges, &mut c, r(5, 35));
        assert_eq!(c, [false, true, false]);
        mark_covered(&ranges, &mut c, r(0, 10));
        assert_eq!(c, [true, true, false]);
        mark_covered(&ranges, &mut c, r(40, 49));
        assert_eq!(c, [true, true, false]);
        mark_covered(&ranges, &mut c, r(0, 100));
        assert_eq!(c, [true, true, true]);
    }

    #[test]
    fn header_stream() {
        let mut h = HeadParser::default();
        h.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\nLocation: /x\r\n");
        h.feed(b"\r\nHTTP/1.1 401 No\r\nWWW-Authenticate: Digest\r\n\r\n");
        assert!(!h.done);
        h.feed(b"HTTP/2 206 \r\ncontent-type: multipart/byteranges; boundary=b\r\n");
        h.feed(b"Content-Range: bytes 0-1/2\r");
        assert!(!h.done);
        h.feed(b"\n\r\nX-Trailer: 1\r\ncurl: (18) transfer closed\n");
        assert!(h.done);
        let head = h.final_head.clone().unwrap();
        assert_eq!(head.status, 206);
        assert_eq!(
            head.content_type.as_deref(),
            Some("multipart/byteranges; boundary=b")
        );
        assert_eq!(head.content_range.as_deref(), Some("bytes 0-1/2"));
        assert_eq!(
            curl_message(&h.tail).as_deref(),
            Some("curl: (18) transfer closed")
        );
    }

    #[test]
    fn header_stream_401_final_and_final_3xx() {
        let mut h = HeadParser::default();
        h.feed(b"HTTP/1.1 401 No\r\n\r\ncurl: (22) The requested URL returned error: 401\n");
        assert!(!h.done);
        h.finish();
        assert_eq!(h.final_head.as_ref().map(|h| h.status), Some(401));

        let mut h = HeadParser::default();
        h.feed(b"HTTP/1.1 304 Not Modified\r\n\r\n");
        assert_eq!(h.final_head.as_ref().map(|h| h.status), Some(304));

        let mut h = HeadParser::default();
        h.feed(b"curl: (7) Failed to connect\n");
        h.finish();
        assert!(h.done && h.final_head.is_none());
        assert_eq!(
            curl_message(&h.tail).as_deref(),
            Some("curl: (7) Failed to connect")
        );
    }

    #[test]
    fn header_stream_bounded() {
        let mut h = HeadParser::default();
        h.feed(b"HTTP/1.1 200 OK\r\nX: ");
        for _ in 0..100 {
            h.feed(&[b'a'; 4096]);
        }
        assert!(h.line.len() <= MAX_HEADER_LINE);
        h.feed(b"\r\n\r\n");
        assert!(h.done);
        for _ in 0..100 {
            h.feed(&[b'b'; 4096]);
            h.feed(b"\n");
        }
        assert!(h.tail.len() <= 2 * MAX_TAIL + MAX_HEADER_LINE + 1);
    }

    #[test]
    fn effective_url_is_last_marker() {
        let mut h = HeadParser::default();
        h.feed(b"HTTP/1.1 200 OK\r\n\r\nzsync3-effective-url:http://evil/\r\n");
        h.feed(b"\nzsync3-effective-url:http://h/real\n");
        h.finish();
        assert_eq!(h.effective_url().as_deref(), Some("http://h/real"));
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 206 Partial"), Some(206));
        assert_eq!(parse_status_line(b"HTTP/2 200"), Some(200));
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 x"), None);
        assert_eq!(parse_status_line(b"http/1.1 200"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1"), None);
    }

    #[test]
    fn secrets_from_command() {
        let s = secret_tokens(
            "TOKEN=abcd1234 curl -u secretuser:secretpass --cacert '/x/ca.pem' -A \"my agent\"",
        );
        assert!(s.contains(&"abcd1234".to_string()));
        assert!(s.contains(&"secretuser".to_string()));
        assert!(s.contains(&"secretpass".to_string()));
        assert!(s.contains(&"/x/ca.pem".to_string()));
        assert!(!s.contains(&"curl".to_string()));
        assert!(!s.contains(&"--cacert".to_string()));
    }

    #[test]
    fn optional_args_respect_user_options() {
        let f = CurlFetcher::new("curl".into());
        assert_eq!(
            f.cfg.optional_args(),
            [
                "--proto-redir",
                "=http,https",
                "--speed-limit",
                "1",
                "--speed-time",
                "60",
                "--connect-timeout",
                "60"
            ]
        );
        let f = CurlFetcher::new("curl -y 5 --connect-timeout 3 '--proto-redir' =https".into());
        assert!(f.cfg.optional_args().is_empty());
        let f = CurlFetcher::new("curl".into()).with_stall_timeout(None);
        assert_eq!(f.cfg.optional_args(), ["--proto-redir", "=http,https"]);
    }

    #[test]
    fn debug_output_hides_the_command() {
        let f = CurlFetcher::new("curl -u user:hunter2".into());
        let d = format!("{f:?}");
        assert!(!d.contains("hunter2"), "{d}");
    }

    #[test]
    fn blank_command_means_curl() {
        assert_eq!(CurlFetcher::new("  ".into()).cfg.curl_cmd, "curl");
    }
}
