//! Integration tests of `CurlFetcher` against the test server (127.0.0.1 only).

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{test_data, Mode, TempDir, TestServer};
use zsync3::fetch::curl::CurlFetcher;
use zsync3::fetch::{ByteRange, FetchError, RangeFetcher, RangeSink};

/// The curl command for tests: never use a proxy for 127.0.0.1.
const CURL: &str = "curl --noproxy '*'";

fn fetcher() -> CurlFetcher {
    CurlFetcher::new(CURL.to_string())
}

fn br(start: u64, end: u64) -> ByteRange {
    ByteRange::new(start, end)
}

/// Records what arrives; checks it against the real file.
struct MemSink {
    len: usize,
    data: Vec<u8>,
    have: Vec<bool>,
    /// Bytes delivered beyond the end of the file.
    out_of_bounds: u64,
    /// Bytes delivered in total (counting repeats).
    bytes: u64,
    calls: usize,
    /// Where the sink was told that a stream of data ended.
    ends: Vec<u64>,
}

impl MemSink {
    fn new(len: usize) -> Self {
        MemSink {
            len,
            data: vec![0; len],
            have: vec![false; len],
            out_of_bounds: 0,
            bytes: 0,
            calls: 0,
            ends: Vec::new(),
        }
    }

    /// Every delivered byte equals `file`'s, and every byte of `ranges` was delivered.
    fn assert_matches(&self, file: &[u8], ranges: &[ByteRange]) {
        assert_eq!(
            self.out_of_bounds, 0,
            "bytes delivered past the end of the file"
        );
        for (i, (&b, &have)) in self.data.iter().zip(&self.have).enumerate() {
            if have {
                assert_eq!(b, file[i], "wrong byte delivered at offset {i}");
            }
        }
        for r in ranges {
            for i in r.start..r.end {
                assert!(self.have[i as usize], "offset {i} of {r:?} not delivered");
            }
        }
    }

    fn delivered(&self) -> usize {
        self.have.iter().filter(|&&h| h).count()
    }
}

impl RangeSink for MemSink {
    fn data(&mut self, offset: u64, data: &[u8]) -> Result<(), FetchError> {
        self.calls += 1;
        self.bytes += data.len() as u64;
        for (i, &b) in data.iter().enumerate() {
            let o = offset + i as u64;
            if o < self.len as u64 {
                self.data[o as usize] = b;
                self.have[o as usize] = true;
            } else {
                self.out_of_bounds += 1;
            }
        }
        Ok(())
    }

    fn range_end(&mut self, end: u64) -> Result<(), FetchError> {
        self.ends.push(end);
        Ok(())
    }
}

/// A served directory with one data file.
struct Setup {
    _dir: TempDir,
    server: TestServer,
    file: Vec<u8>,
    url: String,
}

fn setup(len: usize, mode: Mode) -> Setup {
    let dir = TempDir::new("fetch");
    let file = test_data(len, len as u64);
    dir.write("data.bin", &file);
    dir.write("data.bin.zsync", b"zsync: 0.6.2\n");
    let server = TestServer::start_with_mode(dir.path(), mode);
    let url = server.url("/data.bin");
    Setup {
        _dir: dir,
        server,
        file,
        url,
    }
}

/// `n` ranges of `len` bytes spread over a file of `file_len` bytes.
fn spread(n: u64, len: u64, file_len: u64) -> Vec<ByteRange> {
    let step = file_len / n;
    assert!(step > len);
    (0..n)
        .map(|i| br(i * step + 7, i * step + 7 + len))
        .collect()
}

fn fetch(
    f: &mut CurlFetcher,
    s: &Setup,
    ranges: &[ByteRange],
) -> (MemSink, Result<(), FetchError>) {
    let mut sink = MemSink::new(s.file.len());
    let r = f.fetch_ranges(&s.url, ranges, &mut sink);
    (sink, r)
}

/// Fetch `ranges`, which must succeed and deliver exactly the file's bytes.
fn fetch_ok(f: &mut CurlFetcher, s: &Setup, ranges: &[ByteRange]) -> MemSink {
    let (sink, r) = fetch(f, s, ranges);
    r.unwrap();
    sink.assert_matches(&s.file, ranges);
    sink
}

#[test]
fn normal_uses_one_multi_range_request() {
    let s = setup(100_000, Mode::Normal);
    let mut f = fetcher();
    let ranges = spread(10, 300, 100_000);
    let sink = fetch_ok(&mut f, &s, &ranges);
    // The end of every part is announced.
    let ends: Vec<u64> = ranges.iter().map(|r| r.end).collect();
    assert_eq!(sink.ends, ends);
    let log = s.server.requests();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].range_count(), 10);
    assert_eq!(log[0].status, 206);
    assert_eq!(f.requests_made(), 1);

    // Known to work now: the next call is one multi-range request too.
    let ranges2 = spread(5, 1000, 90_000);
    fetch_ok(&mut f, &s, &ranges2);
    let log = s.server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].range_count(), 5);
}

#[test]
fn many_ranges_are_batched() {
    let s = setup(200_000, Mode::Normal);
    let mut f = fetcher();
    let ranges = spread(300, 100, 200_000);
    fetch_ok(&mut f, &s, &ranges);
    let log = s.server.requests();
    assert_eq!(log.len(), 3, "300 ranges in batches of at most 128");
    assert!(log
        .iter()
        .all(|l| l.range_count() <= 128 && l.status == 206));
    assert_eq!(log.iter().map(|l| l.range_count()).sum::<usize>(), 300);
}

#[test]
fn big_ranges_are_split_and_fetched_in_parallel() {
    let s = setup(50_000, Mode::Normal);
    let mut f = fetcher().with_max_request_bytes(4096).with_parallel(3);
    let ranges = [br(0, 30_000), br(40_000, 50_000)];
    fetch_ok(&mut f, &s, &ranges);
    let log = s.server.requests();
    // 30000 bytes -> 8 pieces, 10000 -> 3 pieces; one piece per request.
    assert_eq!(log.len(), 11, "{log:?}");
    assert!(log.iter().all(|l| l.range_count() == 1));
}

/// The first request runs alone (it shows how the server answers), so it is small: its
/// ranges are cut to 256 KiB in all (still two of them, to learn whether the server answers
/// several ranges); the rest goes out in parallel requests afterwards.
#[test]
fn the_probe_is_small() {
    let s = setup(3_000_000, Mode::Normal);
    let mut f = fetcher();
    let ranges = [br(0, 2_000_000), br(2_500_000, 2_600_000)];
    fetch_ok(&mut f, &s, &ranges);
    let log = s.server.requests();
    assert_eq!(
        log[0].range.as_deref(),
        Some("bytes=0-131071,2500000-2599999"),
        "{log:?}"
    );
    assert_eq!(log.len(), 2, "{log:?}");
}

/// Large ranges are not cut into probe-sized requests: a 40 MB download takes the probe
/// and then pieces of at most 32 MiB.
#[test]
fn a_large_download_takes_few_requests() {
    let s = setup(40_000_000, Mode::Normal);
    let mut f = fetcher();
    fetch_ok(&mut f, &s, &[br(0, 40_000_000)]);
    let log = s.server.requests();
    assert!(log.len() <= 1 + 3, "{} requests: {log:?}", log.len());
}

/// Once the server has shown that it answers several ranges, requests that start together
/// get the data in turns of 1 MiB pieces (so the file is complete from its start on early),
/// within the per-request limits.
#[test]
fn parallel_requests_take_turns_through_the_file() {
    let s = setup(8_000_000, Mode::Normal);
    let mut f = fetcher().with_max_request_bytes(2 << 20).with_parallel(4);
    // Two small ranges first: the probe asks for both and learns that multipart works.
    let ranges = [
        br(0, 100),
        br(200, 300),
        br(400, 4_000_000),
        br(4_000_010, 8_000_000),
    ];
    fetch_ok(&mut f, &s, &ranges).assert_matches(&s.file, &ranges);
    let log = s.server.requests();
    let parsed: Vec<Vec<(u64, u64)>> = log
        .iter()
        .map(|l| {
            l.range
                .as_deref()
                .unwrap()
                .trim_start_matches("bytes=")
                .split(',')
                .map(|r| {
                    let (a, b) = r.split_once('-').unwrap();
                    (a.parse().unwrap(), b.parse().unwrap())
                })
                .collect()
        })
        .collect();
    // The probe, then four requests started together.
    assert_eq!(log.len(), 5, "{log:?}");
    let dealt = &parsed[1..];
    for req in dealt {
        assert!(req.len() >= 2, "{log:?}");
        let bytes: u64 = req.iter().map(|(a, b)| b - a + 1).sum();
        assert!(bytes <= 2 << 20, "{log:?}");
        assert!(req.iter().all(|(a, b)| b - a < 1 << 20), "{log:?}");
    }
    // Taking turns: every request's first piece comes before every request's last one.
    let first_max = dealt.iter().map(|r| r[0].0).max().unwrap();
    let last_min = dealt.iter().map(|r| r[r.len() - 1].0).min().unwrap();
    assert!(first_max < last_min, "{log:?}");
}

#[test]
fn single_only_server_falls_back_to_single_ranges() {
    let s = setup(100_000, Mode::SingleOnly);
    let mut f = fetcher();
    let ranges = spread(10, 300, 100_000);
    fetch_ok(&mut f, &s, &ranges);
    let log = s.server.requests();
    // The probe got only its first range; the other 9 were asked for one by one.
    assert_eq!(log.len(), 10, "{log:?}");
    assert_eq!(log[0].range_count(), 10);
    assert!(log[1..].iter().all(|l| l.range_count() == 1));

    // From now on single ranges only for this URL.
    s.server.clear_log();
    let ranges2 = spread(3, 300, 90_000);
    let sink = fetch_ok(&mut f, &s, &ranges2);
    let log = s.server.requests();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|l| l.range_count() == 1));
    // The end of each single-range answer is announced.
    let mut ends = sink.ends.clone();
    ends.sort();
    assert_eq!(ends, ranges2.iter().map(|r| r.end).collect::<Vec<_>>());
}

#[test]
fn reordered_parts_are_placed_by_their_content_range() {
    let s = setup(100_000, Mode::MultipartReordered);
    let mut f = fetcher();
    let ranges = spread(7, 999, 100_000);
    fetch_ok(&mut f, &s, &ranges);
    assert_eq!(s.server.request_count(), 1);
}

#[test]
fn coalesced_parts_are_accepted() {
    let s = setup(100_000, Mode::MultipartCoalesced);
    let mut f = fetcher();
    // Pairs 50 bytes apart (merged by the server), pairs far apart (kept separate).
    let ranges = [
        br(100, 200),
        br(250, 300),
        br(10_000, 10_100),
        br(10_150, 10_200),
        br(50_000, 50_010),
    ];
    fetch_ok(&mut f, &s, &ranges);
    assert_eq!(s.server.request_count(), 1);

    // Everything merged into one plain 206 that covers all: no fallback needed.
    let ranges2 = [br(1000, 1100), br(1150, 1200), br(1250, 1300)];
    fetch_ok(&mut f, &s, &ranges2);
    assert_eq!(s.server.request_count(), 2);
}

#[test]
fn ignored_range_streams_from_zero_and_stops_after_the_last_range() {
    let len = 8 << 20;
    let s = setup(len, Mode::IgnoreRange);
    let mut f = fetcher();
    let ranges = [br(100, 200), br(5000, 6000)];
    let sink = fetch_ok(&mut f, &s, &ranges);
    // Delivered from offset 0 up to the end of the last range, and not further.
    assert_eq!(sink.delivered(), 6000);
    assert_eq!(sink.bytes, 6000);
    assert_eq!(sink.ends, vec![6000]);
    assert_eq!(s.server.request_count(), 1);

    // Single range, parallel: still one request (the probe runs alone).
    let mut f = fetcher().with_multi_range(false);
    let ranges = spread(20, 100, 1 << 20);
    fetch_ok(&mut f, &s, &ranges);
    assert_eq!(s.server.request_count(), 2);
}

#[test]
fn multi_range_416_falls_back_to_single_ranges() {
    let s = setup(100_000, Mode::MultiRange416);
    let mut f = fetcher();
    let ranges = spread(5, 100, 100_000);
    fetch_ok(&mut f, &s, &ranges);
    let log = s.server.requests();
    assert_eq!(log.len(), 6, "{log:?}");
    assert_eq!(log[0].status, 416);
    assert!(log[1..]
        .iter()
        .all(|l| l.range_count() == 1 && l.status == 206));
    // And a single unsatisfiable range is an HTTP error.
    let (_, r) = fetch(&mut f, &s, &[br(200_000, 200_010)]);
    match r {
        Err(FetchError::Http { status: 416, .. }) => {}
        other => panic!("expected HTTP 416, got {other:?}"),
    }
}

#[test]
fn truncated_body_is_a_transport_error() {
    for ranges in [vec![br(0, 50_000)], spread(4, 5000, 100_000)] {
        let s = setup(100_000, Mode::Truncated);
        let mut f = fetcher();
        let (sink, r) = fetch(&mut f, &s, &ranges);
        match r {
            Err(FetchError::Transport(m)) => assert!(m.contains("curl: (18)"), "{m}"),
            other => panic!("expected a transport error, got {other:?}"),
        }
        // What did arrive is right.
        sink.assert_matches(&s.file, &[]);
        assert!(sink.delivered() > 0);
    }
}

#[test]
fn corrupt_data_is_delivered_for_the_caller_to_verify() {
    let s = setup(10_000, Mode::Corrupt);
    let mut f = fetcher();
    let ranges = [br(10, 20), br(100, 200)];
    let (sink, r) = fetch(&mut f, &s, &ranges);
    r.unwrap();
    assert_eq!(sink.data[10], s.file[10] ^ 0xff);
    assert_eq!(sink.data[100], s.file[100] ^ 0xff);
    assert_eq!(sink.data[11..20], s.file[11..20]);
}

#[test]
fn not_found_is_an_http_error_and_zsync_still_served() {
    let s = setup(1000, Mode::NotFound);
    let mut f = fetcher();
    let (_, r) = fetch(&mut f, &s, &[br(0, 10)]);
    match r {
        Err(FetchError::Http { status: 404, url }) => assert_eq!(url, s.url),
        other => panic!("expected HTTP 404, got {other:?}"),
    }
    match f.get(&s.url, 1 << 20) {
        Err(FetchError::Http { status: 404, .. }) => {}
        other => panic!("expected HTTP 404, got {other:?}"),
    }
    let got = f.get(&s.server.url("/data.bin.zsync"), 1 << 20).unwrap();
    assert_eq!(got.body, b"zsync: 0.6.2\n");
    assert_eq!(got.final_url, s.server.url("/data.bin.zsync"));
}

#[test]
fn redirects_are_followed() {
    let s = setup(100_000, Mode::Redirect);
    let mut f = fetcher();
    let got = f.get(&s.server.url("/data.bin.zsync"), 1 << 20).unwrap();
    assert_eq!(got.body, b"zsync: 0.6.2\n");
    assert_eq!(got.final_url, s.server.url("/_r/data.bin.zsync"));
    let ranges = spread(3, 100, 100_000);
    fetch_ok(&mut f, &s, &ranges);
    let log = s.server.requests();
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[2].status, 302);
    assert_eq!(log[3].status, 206);
}

#[test]
fn fail_after_then_resume() {
    let s = setup(100_000, Mode::FailAfter(3000));
    let mut f = fetcher();
    let ranges = [br(0, 10_000)];
    let (sink, r) = fetch(&mut f, &s, &ranges);
    assert!(matches!(r, Err(FetchError::Transport(_))), "{r:?}");
    sink.assert_matches(&s.file, &[br(0, 3000)]);
    assert_eq!(sink.delivered(), 3000);
    // The caller retries what is missing; the server now answers.
    fetch_ok(&mut f, &s, &[br(3000, 10_000)]);
}

#[test]
fn get_whole_resource_with_limit() {
    let s = setup(5000, Mode::Normal);
    let mut f = fetcher();
    let got = f.get(&s.url, 5000).unwrap();
    assert_eq!(got.body, s.file);
    assert_eq!(got.final_url, s.url);
    match f.get(&s.url, 4999) {
        Err(FetchError::Protocol(m)) => assert!(m.contains("larger than 4999"), "{m}"),
        other => panic!("expected a size error, got {other:?}"),
    }
    let log = s.server.requests();
    assert!(log.iter().all(|l| l.range.is_none() && l.method == "GET"));
}

#[test]
fn shell_metacharacters_in_urls_are_not_interpreted() {
    let s = setup(1000, Mode::Normal);
    let evil = TempDir::new("evil");
    let d = evil.path().display().to_string();
    let port = s.server.port();
    let urls = [
        format!("http://127.0.0.1:{port}/f;touch {d}/PWNED"),
        format!("http://127.0.0.1:{port}/f;touch${{IFS}}{d}/PWNED"),
        format!("http://127.0.0.1:{port}/$(touch${{IFS}}{d}/PWNED)"),
        format!("http://127.0.0.1:{port}/`touch${{IFS}}{d}/PWNED`"),
        format!("http://127.0.0.1:{port}/x'\"$(touch${{IFS}}{d}/PWNED)\"'&&touch${{IFS}}{d}/PWNED"),
        format!("http://127.0.0.1:{port}/x|touch${{IFS}}{d}/PWNED>{d}/PWNED"),
        format!("--output={d}/PWNED"),
        format!("-o{d}/PWNED"),
    ];
    let mut f = fetcher();
    for url in &urls {
        let mut sink = MemSink::new(1000);
        let r = f.fetch_ranges(url, &[br(0, 10), br(20, 30)], &mut sink);
        assert!(r.is_err(), "{url}: {r:?}");
        let r = f.get(url, 1000);
        assert!(r.is_err(), "{url}: {r:?}");
        let entries: Vec<_> = std::fs::read_dir(evil.path()).unwrap().collect();
        assert!(entries.is_empty(), "{url} created files: {entries:?}");
    }
    // The URL with a space was refused before running anything; the others reached the
    // server verbatim (as paths of missing files).
    let log = s.server.requests();
    assert!(log.iter().all(|l| l.status == 404));
    assert!(
        log.iter().any(|l| l.path.contains("$(touch${IFS}")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.path.contains("`touch")), "{log:?}");
}

#[test]
fn urls_with_whitespace_or_control_characters_are_refused() {
    let s = setup(1000, Mode::Normal);
    let mut f = fetcher();
    for bad in [
        format!("{} x", s.url),
        format!("{}\nx", s.url),
        format!("{}\r", s.url),
        format!("{}\t", s.url),
        String::new(),
    ] {
        let mut sink = MemSink::new(1000);
        assert!(f.fetch_ranges(&bad, &[br(0, 1)], &mut sink).is_err());
        assert!(f.get(&bad, 100).is_err());
    }
    assert_eq!(s.server.request_count(), 0);
    assert_eq!(f.requests_made(), 0);
}

#[test]
fn secrets_never_appear_in_errors() {
    let s = setup(1000, Mode::NotFound);
    let mut f = CurlFetcher::new(format!("{CURL} -u secretuser:secretpass"));
    let mut errors = Vec::new();
    let mut sink = MemSink::new(1000);
    errors.push(f.fetch_ranges(&s.url, &[br(0, 10)], &mut sink).unwrap_err());
    errors.push(f.get(&s.url, 100).unwrap_err());
    // Connection refused: a port nobody listens on.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = format!("http://127.0.0.1:{closed}/x");
    errors.push(f.get(&dead, 100).unwrap_err());
    errors.push(f.fetch_ranges(&dead, &[br(0, 10)], &mut sink).unwrap_err());
    // Credentials in the URL.
    let with_user = format!("http://urluser:hunter2pw@127.0.0.1:{closed}/x");
    errors.push(f.get(&with_user, 100).unwrap_err());
    let with_user404 = s.url.replace("http://", "http://urluser:hunter2pw@");
    errors.push(f.get(&with_user404, 100).unwrap_err());
    // curl itself complaining about its options.
    let mut bad = CurlFetcher::new(format!(
        "{CURL} -u secretuser:secretpass --no-such-option-secretpass"
    ));
    errors.push(bad.get(&s.url, 100).unwrap_err());
    for e in &errors {
        let text = format!("{e} {e:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("urluser"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
    assert!(matches!(errors[0], FetchError::Http { status: 404, .. }));
    assert!(errors[2].to_string().contains("curl: (7)"), "{}", errors[2]);
    // The credentials were sent (to the right server) all the same.
    let log = s.server.requests();
    assert!(log.iter().any(|l| l.header("authorization").is_some()));
}

#[test]
fn missing_curl_is_reported_clearly() {
    let s = setup(1000, Mode::Normal);
    let mut f = CurlFetcher::new("/nonexistent/curl".into());
    let expected = "cannot run curl (ZSYNC_CURL): command not found";
    let e = f.get(&s.url, 100).unwrap_err();
    assert_eq!(e.to_string(), expected);
    let mut sink = MemSink::new(1000);
    let e = f
        .fetch_ranges(&s.url, &[br(0, 10), br(20, 30)], &mut sink)
        .unwrap_err();
    assert_eq!(e.to_string(), expected);
    assert_eq!(s.server.request_count(), 0);
}

#[test]
fn curl_killed_by_a_signal_is_a_failure() {
    let s = setup(1000, Mode::Normal);
    // The "curl" kills itself with SIGKILL.
    let mut f = CurlFetcher::new("sh -c 'kill -9 $$' x".into());
    let e = f.get(&s.url, 100).unwrap_err();
    assert!(e.to_string().contains("killed by signal 9"), "{e}");
    let mut sink = MemSink::new(1000);
    let e = f.fetch_ranges(&s.url, &[br(0, 10)], &mut sink).unwrap_err();
    assert!(e.to_string().contains("killed by signal 9"), "{e}");
}

#[test]
fn zsync_curl_is_shell_text_and_applies_to_every_request() {
    let s = setup(100_000, Mode::SingleOnly);
    let mut f = CurlFetcher::new(format!(
        "ZSYNC3_TEST_AGENT='agent x'; {CURL} -A \"my $ZSYNC3_TEST_AGENT\" -H 'X-Test: 1'"
    ));
    let ranges = spread(4, 100, 100_000);
    fetch_ok(&mut f, &s, &ranges);
    f.get(&s.url, 1 << 20).unwrap();
    let log = s.server.requests();
    assert_eq!(log.len(), 5);
    for l in &log {
        assert_eq!(l.header("user-agent"), Some("my agent x"), "{l:?}");
        assert_eq!(l.header("x-test"), Some("1"), "{l:?}");
    }
}

#[test]
fn sink_errors_abort_the_fetch() {
    struct Refuse;
    impl RangeSink for Refuse {
        fn data(&mut self, _: u64, _: &[u8]) -> Result<(), FetchError> {
            Err(FetchError::Sink(Box::new(zsync3::Error::Usage(
                "disk full".into(),
            ))))
        }
    }
    let s = setup(4 << 20, Mode::Normal);
    let mut f = fetcher().with_max_request_bytes(1 << 20);
    let t = Instant::now();
    let r = f.fetch_ranges(&s.url, &[br(0, 4 << 20)], &mut Refuse);
    match r {
        Err(FetchError::Sink(e)) => assert_eq!(e.to_string(), "disk full"),
        other => panic!("expected the sink error, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(10));
    // Stopped at once: not all four pieces were requested.
    assert!(s.server.request_count() < 4);
}

#[test]
fn empty_range_list_makes_no_request() {
    let s = setup(1000, Mode::Normal);
    let mut f = fetcher();
    let (_, r) = fetch(&mut f, &s, &[]);
    r.unwrap();
    let (_, r) = fetch(&mut f, &s, &[br(5, 5)]);
    r.unwrap();
    assert_eq!(s.server.request_count(), 0);
}

#[test]
fn one_byte_ranges_work() {
    let s = setup(1000, Mode::Normal);
    let mut f = fetcher();
    let ranges = [br(0, 1), br(999, 1000)];
    let sink = fetch_ok(&mut f, &s, &ranges);
    assert_eq!(sink.delivered(), 2);
}

#[test]
fn file_urls_work_with_single_ranges() {
    let dir = TempDir::new("fileurl");
    let file = test_data(20_000, 5);
    let p = dir.write("data.bin", &file);
    let url = format!("file://{}", p.display());
    let mut f = fetcher();
    let got = f.get(&url, 1 << 20).unwrap();
    assert_eq!(got.body, file);
    let ranges = [br(0, 10), br(100, 5000), br(19_990, 20_000)];
    let mut sink = MemSink::new(file.len());
    f.fetch_ranges(&url, &ranges, &mut sink).unwrap();
    sink.assert_matches(&file, &ranges);
    assert_eq!(f.requests_made(), 4);
    let e = f
        .get(&format!("file://{}/missing", dir.path().display()), 100)
        .unwrap_err();
    assert!(matches!(e, FetchError::Transport(_)), "{e:?}");
}

// ---- Servers that break the protocol in ways the test server does not. ----

/// What [`RawServer`] does with a request.
enum Reply {
    /// Send `head` and `body`, then (if `endless`) zeros until the client goes away.
    Send {
        head: String,
        body: Vec<u8>,
        endless: bool,
    },
    /// Never answer (until the server is dropped).
    Stall,
}

/// A server with hand-written answers, one request per connection.
struct RawServer {
    port: u16,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl RawServer {
    /// Answer every request with `head` and `body` (and endless zeros if `endless`).
    fn start(head: &str, body: &[u8], endless: bool) -> RawServer {
        let head = head.to_string();
        let body = body.to_vec();
        Self::with(move |_| Reply::Send {
            head: head.clone(),
            body: body.clone(),
            endless,
        })
    }

    /// Answer each request (given as its head text) as `reply` says.
    fn with(reply: impl Fn(&str) -> Reply + Send + Sync + 'static) -> RawServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let reply = Arc::new(reply);
        let handle = thread::spawn(move || {
            for s in l.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = s else { continue };
                let reply = Arc::clone(&reply);
                let stop3 = Arc::clone(&stop2);
                thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut tmp) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    match reply(&String::from_utf8_lossy(&buf)) {
                        Reply::Send {
                            head,
                            body,
                            endless,
                        } => {
                            let _ = s.write_all(head.as_bytes());
                            let _ = s.write_all(&body);
                            if endless {
                                let zeros = vec![0u8; 64 * 1024];
                                while s.write_all(&zeros).is_ok() {}
                            }
                        }
                        Reply::Stall => {
                            while !stop3.load(Ordering::SeqCst) {
                                thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                    let _ = s.shutdown(Shutdown::Both);
                });
            }
        });
        RawServer {
            port,
            stop,
            handle: Some(handle),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/f", self.port)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn raw_fetch(srv: &RawServer, ranges: &[ByteRange]) -> (MemSink, Result<(), FetchError>) {
    let mut f = fetcher();
    let mut sink = MemSink::new(1 << 20);
    let r = f.fetch_ranges(&srv.url(), ranges, &mut sink);
    (sink, r)
}

#[test]
fn endless_200_body_is_cut_after_the_last_range() {
    let srv = RawServer::start(
        "HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n",
        b"",
        true,
    );
    let t = Instant::now();
    let (sink, r) = raw_fetch(&srv, &[br(10, 20), br(70_000, 70_100)]);
    r.unwrap();
    assert_eq!(sink.bytes, 70_100);
    assert!(t.elapsed() < Duration::from_secs(20));
    // get() with a limit stops too.
    let mut f = fetcher();
    match f.get(&srv.url(), 1 << 20) {
        Err(FetchError::Protocol(m)) => assert!(m.contains("larger than"), "{m}"),
        other => panic!("expected a size error, got {other:?}"),
    }
}

#[test]
fn body_longer_than_content_range_is_a_protocol_error() {
    let srv = RawServer::start(
        "HTTP/1.1 206 Partial\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 20\r\n\r\n",
        b"0123456789abcdefghij",
        false,
    );
    let (sink, r) = raw_fetch(&srv, &[br(0, 10)]);
    match r {
        Err(FetchError::Protocol(m)) => assert!(m.contains("longer than its Content-Range"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(&sink.data[..10], b"0123456789");
}

#[test]
fn body_shorter_than_content_range_is_a_protocol_error() {
    let srv = RawServer::start(
        "HTTP/1.1 206 Partial\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 5\r\n\r\n",
        b"01234",
        false,
    );
    let (_, r) = raw_fetch(&srv, &[br(0, 10)]);
    assert!(matches!(r, Err(FetchError::Protocol(_))), "{r:?}");
}

#[test]
fn mismatched_content_range_is_delivered_where_it_says() {
    let srv = RawServer::start(
        "HTTP/1.1 206 Partial\r\nContent-Range: bytes 50-54/100\r\nContent-Length: 5\r\n\r\n",
        b"abcde",
        false,
    );
    let (sink, r) = raw_fetch(&srv, &[br(0, 100)]);
    r.unwrap();
    assert_eq!(&sink.data[50..55], b"abcde");
    assert!(!sink.have[0]);
}

#[test]
fn missing_content_range_is_a_protocol_error() {
    let srv = RawServer::start(
        "HTTP/1.1 206 Partial\r\nContent-Length: 5\r\n\r\n",
        b"abcde",
        false,
    );
    let (_, r) = raw_fetch(&srv, &[br(0, 5)]);
    match r {
        Err(FetchError::Protocol(m)) => assert!(m.contains("without Content-Range"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn malformed_multipart_is_a_protocol_error() {
    let body = b"--b\r\nContent-Range: bytes 0-1/100\r\n\r\nabcdef\r\n--b--\r\n";
    let head = format!(
        "HTTP/1.1 206 Partial\r\nContent-Type: multipart/byteranges; boundary=b\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let srv = RawServer::start(&head, body, false);
    let (sink, r) = raw_fetch(&srv, &[br(0, 2), br(10, 20)]);
    match r {
        Err(FetchError::Protocol(m)) => assert!(m.contains("multipart"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(&sink.data[..2], b"ab");
}

#[test]
fn endless_multipart_is_cut() {
    let head = "HTTP/1.1 206 Partial\r\nContent-Type: multipart/byteranges; boundary=b\r\n\r\n";
    let srv = RawServer::start(
        head,
        b"--b\r\nContent-Range: bytes 0-1/100\r\n\r\nab\r\n",
        true,
    );
    let t = Instant::now();
    let (_, r) = raw_fetch(&srv, &[br(0, 2), br(10, 20)]);
    assert!(matches!(r, Err(FetchError::Protocol(_))), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn unexpected_status_is_reported() {
    let srv = RawServer::start("HTTP/1.1 204 No Content\r\n\r\n", b"", false);
    let (_, r) = raw_fetch(&srv, &[br(0, 5)]);
    match r {
        Err(FetchError::Protocol(m)) => assert!(m.contains("unexpected HTTP status 204"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    let srv = RawServer::start(
        "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\n",
        b"oops",
        false,
    );
    let (_, r) = raw_fetch(&srv, &[br(0, 5)]);
    assert!(
        matches!(r, Err(FetchError::Http { status: 500, .. })),
        "{r:?}"
    );
}

#[test]
fn oversized_single_range_is_cut_after_the_last_range() {
    let srv = RawServer::start(
        "HTTP/1.1 206 Partial\r\nContent-Range: bytes 0-9999999999/*\r\nContent-Length: 10000000000\r\n\r\n",
        b"",
        true,
    );
    let t = Instant::now();
    let (sink, r) = raw_fetch(&srv, &[br(0, 10), br(70_000, 70_100)]);
    r.unwrap();
    // The multi-range probe got one big part: delivered up to the end of the last range.
    assert_eq!(sink.bytes, 70_100);
    assert_eq!(sink.ends, vec![70_100]);
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn test_server_keeps_connections_alive_and_has_per_path_modes() {
    let s = setup(1000, Mode::Normal);
    s.server.set_path_mode("/data.bin", Mode::IgnoreRange);
    let mut c = TcpStream::connect(s.server.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = "GET /data.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n\
               GET /data.bin.zsync HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\nConnection: close\r\n\r\n";
    c.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    // The first answer ignores Range (per-path mode), the second does not; both on one
    // connection.
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.contains("HTTP/1.1 206 "), "{text}");
    assert!(text.ends_with("zsync"), "{text}");
    let log = s.server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].range.as_deref(), Some("bytes=0-9"));
    assert_eq!((log[0].status, log[1].status), (200, 206));
}

#[test]
fn stalled_server_is_given_up_by_the_stall_timeout() {
    let s = setup(1000, Mode::Stall);
    let mut f = fetcher().with_stall_timeout(Some(Duration::from_secs(1)));
    let t = Instant::now();
    let e = f.get(&s.url, 100).unwrap_err();
    assert!(e.to_string().contains("curl: (28)"), "{e}");
    let (_, r) = fetch(&mut f, &s, &[br(0, 10)]);
    let e = r.unwrap_err();
    assert!(e.to_string().contains("curl: (28)"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_eq!(s.server.request_count(), 2);
}

#[test]
fn sink_error_does_not_wait_for_a_stalled_request() {
    struct Refuse;
    impl RangeSink for Refuse {
        fn data(&mut self, _: u64, _: &[u8]) -> Result<(), FetchError> {
            Err(FetchError::Sink(Box::new(zsync3::Error::Usage(
                "no".into(),
            ))))
        }
    }
    // Range 0-9 is answered, anything else stalls.
    let srv = RawServer::with(|req| {
        if req.contains("bytes=0-9\r\n") {
            Reply::Send {
                head: "HTTP/1.1 206 Partial\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 10\r\n\r\n".into(),
                body: b"0123456789".to_vec(),
                endless: false,
            }
        } else {
            Reply::Stall
        }
    });
    let mut f = fetcher().with_multi_range(false).with_parallel(2);
    let mut sink = MemSink::new(100);
    f.fetch_ranges(&srv.url(), &[br(0, 10)], &mut sink).unwrap();
    // Now known to answer ranges: both requests run at once; the stalled one is abandoned.
    let t = Instant::now();
    let r = f.fetch_ranges(&srv.url(), &[br(50, 60), br(0, 10)], &mut Refuse);
    assert!(matches!(r, Err(FetchError::Sink(_))), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(f.requests_made(), 3);
}
