//! Integration tests of the `zsync` client binary against servers started here, on 127.0.0.1:
//! our hostile test server ([`TestServer`], every failure mode), a real nginx (http and
//! https), and Debian's zsync 0.6.2 in both directions. Every process run has a time limit.
//!
//! nginx tests fail when `/usr/sbin/nginx` is missing unless `ZSYNC3_SKIP_NGINX=1`; the
//! Debian tests fail when `/usr/bin/zsync` is missing unless `ZSYNC3_SKIP_DEBIAN_ZSYNC=1`.

mod common;
mod nginx;
mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use common::bin;
use nginx::{nginx_available, require, Cert, Nginx};
use support::{test_data, LoggedRequest, Mode, TempDir, TestServer};

/// Longest any process may run.
const RUN_TIMEOUT: Duration = Duration::from_secs(40);
/// Block size of the .zsync files made here (zsyncmake's default for small files).
const BS: u64 = 2048;
/// Debian's zsync 0.6.2 (never confuse it with ours: always absolute paths).
const DEBIAN_ZSYNC: &str = "/usr/bin/zsync";
const DEBIAN_ZSYNCMAKE: &str = "/usr/bin/zsyncmake";
const SKIP_DEBIAN: &str = "ZSYNC3_SKIP_DEBIAN_ZSYNC";

// ---------------------------------------------------------------------------------------
// Running processes
// ---------------------------------------------------------------------------------------

/// What a process did.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Out {
    fn code(&self) -> i32 {
        self.code.unwrap_or(-1)
    }

    /// Assert the exit code, showing the output otherwise.
    #[track_caller]
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "{self}");
        self
    }

    #[track_caller]
    fn ok(&self) -> &Self {
        self.expect(0)
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

/// Variables that would send 127.0.0.1 traffic elsewhere or change curl's behaviour.
const SCRUBBED_ENV: &[&str] = &[
    "ZSYNC_CURL",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "CURL_HOME",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
];

/// Prepare `cmd`: own process group, no stdin, a scrubbed environment, HOME in `home`.
fn prepare(cmd: &mut Command, home: &Path) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .env("HOME", home);
    for v in SCRUBBED_ENV {
        cmd.env_remove(v);
    }
}

/// Kill a whole process group (the process and its curl children).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// Wait for a prepared child, with [`RUN_TIMEOUT`]; the group is killed on timeout (and the
/// test fails) and also afterwards, so no stray curl survives the test.
fn finish(mut child: Child, what: String) -> Out {
    let pgid = child.id();
    let (tx, rx) = mpsc::channel();
    for (k, mut pipe) in [
        (
            0,
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        ),
        (1, Box::new(child.stderr.take().unwrap())),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = pipe.read_to_end(&mut v);
            let _ = tx.send((k, v));
        });
    }
    drop(tx);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break Some(st);
        }
        if start.elapsed() > RUN_TIMEOUT {
            kill_group(pgid);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut texts = [String::new(), String::new()];
    let mut lingering = false;
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok((k, v)) => texts[k] = String::from_utf8_lossy(&v).into_owned(),
            Err(_) => {
                lingering = true;
                break;
            }
        }
    }
    kill_group(pgid);
    let [stdout, stderr] = texts;
    let out = Out {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        what,
    };
    assert!(
        status.is_some(),
        "did not finish within {RUN_TIMEOUT:?}: {out}"
    );
    assert!(
        !lingering,
        "processes it started kept its output open after it exited: {out}"
    );
    out
}

fn describe(cmd: &Command, env: &[(&str, &str)]) -> String {
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v:?} ")).collect();
    format!("{}{cmd:?}", env.concat())
}

/// Run a program in `cwd` with extra environment variables.
fn exec(program: &Path, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(cwd);
    prepare(&mut cmd, cwd);
    cmd.envs(env.iter().copied());
    let what = format!("in {}: {}", cwd.display(), describe(&cmd, env));
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    finish(child, what)
}

/// Our client.
fn zsync(cwd: &Path, args: &[&str]) -> Out {
    exec(&bin("zsync"), args, cwd, &[])
}

fn zsync_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    exec(&bin("zsync"), args, cwd, env)
}

/// Our zsyncmake, which must succeed.
fn zsyncmake(cwd: &Path, args: &[&str]) {
    exec(&bin("zsyncmake"), args, cwd, &[]).ok();
}

// ---------------------------------------------------------------------------------------
// Test data and files
// ---------------------------------------------------------------------------------------

/// A target of `len` bytes and an old version of it with `changes` edits spread evenly (each
/// in its own block, at least two blocks apart when `len` allows).
fn target_and_seed(len: usize, changes: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let target = test_data(len, seed);
    let mut old = target.clone();
    for k in 0..changes {
        let p = (k * len / changes + 100).min(len - 1);
        old[p] ^= 0x5a;
    }
    (target, old)
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Assert that `p` holds exactly `want` (without printing megabytes).
#[track_caller]
fn assert_content(p: &Path, want: &[u8], ctx: &dyn std::fmt::Display) {
    let got = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}\n{ctx}", p.display()));
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{} differs from what was expected: {} bytes vs {} expected, first difference at {:?}\n{ctx}",
            p.display(),
            got.len(),
            want.len(),
            first
        );
    }
}

/// Names in a directory.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[track_caller]
fn assert_names(dir: &Path, want: &[&str], ctx: &dyn std::fmt::Display) {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(names(dir), want, "files in {}\n{ctx}", dir.display());
}

/// Edit the header of a .zsync: `f` gets its lines (without the blank line).
fn edit_header(zs: &[u8], f: impl FnOnce(&mut Vec<String>)) -> Vec<u8> {
    let end = zs
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("a .zsync header ends with a blank line")
        + 1;
    let head = std::str::from_utf8(&zs[..end]).expect("header is text");
    let mut lines: Vec<String> = head.lines().map(str::to_string).collect();
    f(&mut lines);
    let mut out = lines.join("\n").into_bytes();
    out.push(b'\n');
    out.extend_from_slice(&zs[end..]);
    out
}

/// Set (or with `None` remove) header `key` (at its old place, else after the first line).
fn with_header(zs: &[u8], key: &str, value: Option<&str>) -> Vec<u8> {
    edit_header(zs, |lines| {
        let prefix = format!("{key}: ");
        let at = lines.iter().position(|l| l.starts_with(&prefix));
        lines.retain(|l| !l.starts_with(&prefix));
        if let Some(v) = value {
            lines.insert(at.unwrap_or(1), format!("{key}: {v}"));
        }
    })
}

/// Replace the `URL:` lines by `urls`.
fn with_urls(zs: &[u8], urls: &[&str]) -> Vec<u8> {
    edit_header(zs, |lines| {
        let at = lines
            .iter()
            .position(|l| l.starts_with("URL: "))
            .unwrap_or(1);
        lines.retain(|l| !l.starts_with("URL: "));
        for (k, u) in urls.iter().enumerate() {
            lines.insert(at + k, format!("URL: {u}"));
        }
    })
}

/// The value of header `key`.
fn header(zs: &[u8], key: &str) -> Option<String> {
    let prefix = format!("{key}: ");
    String::from_utf8_lossy(zs)
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

/// A served directory (`srv`) and the client's working directory (`work`).
struct Site {
    tmp: TempDir,
    srv: PathBuf,
    work: PathBuf,
}

impl Site {
    fn new(tag: &str) -> Site {
        let tmp = TempDir::new(tag);
        let srv = tmp.path().join("srv");
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&srv).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        Site { tmp, srv, work }
    }

    /// Put `data` at `srv/name` and make `srv/name.zsync` with our zsyncmake (relative URL
    /// `name` unless `make_args` says otherwise). Returns the .zsync.
    fn publish(&self, name: &str, data: &[u8], make_args: &[&str]) -> Vec<u8> {
        let p = self.srv.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        let zname = format!("{name}.zsync");
        let mut args = vec!["-o", &zname];
        args.extend_from_slice(make_args);
        if !make_args.contains(&"-u") {
            args.extend_from_slice(&["-u", base_name(name)]);
        }
        args.push(name);
        zsyncmake(&self.srv, &args);
        read(&self.srv.join(zname))
    }

    /// Write `srv/name`.
    fn serve(&self, name: &str, data: &[u8]) {
        std::fs::write(self.srv.join(name), data).unwrap();
    }

    /// Write `work/name`; returns its path.
    fn local(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.work.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn w(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    /// The download list zsyncranges computes for `zsync` (a path in `srv`) and `seed` (in
    /// `work`): inclusive byte ranges.
    fn expected_download(&self, zsync: &str, seed: &str) -> Vec<(u64, u64)> {
        let z = self.srv.join(zsync);
        let s = self.work.join(seed);
        let out = exec(
            &bin("zsyncranges"),
            &[z.to_str().unwrap(), s.to_str().unwrap()],
            &self.work,
            &[],
        );
        out.ok();
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
        v["download"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
            .collect()
    }
}

fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap()
}

// ---------------------------------------------------------------------------------------
// What the server saw
// ---------------------------------------------------------------------------------------

/// Requests for `path` (ignoring any query string).
fn requests_for(srv: &TestServer, path: &str) -> Vec<LoggedRequest> {
    srv.requests()
        .into_iter()
        .filter(|r| r.path.split('?').next() == Some(path))
        .collect()
}

/// Inclusive byte ranges a request asked for (`len`: resource length, for open ranges and
/// requests without `Range`).
fn asked(r: &LoggedRequest, len: u64) -> Vec<(u64, u64)> {
    let Some(h) = r.range.as_deref() else {
        return vec![(0, len.saturating_sub(1))];
    };
    h.trim()
        .trim_start_matches("bytes=")
        .split(',')
        .map(|p| {
            let (a, b) = p.trim().split_once('-').expect("range spec");
            let a: u64 = a.parse().expect("range start");
            let b: u64 = if b.is_empty() {
                len - 1
            } else {
                b.parse().expect("range end")
            };
            (a, b.min(len - 1))
        })
        .collect()
}

fn asked_all(reqs: &[LoggedRequest], len: u64) -> Vec<(u64, u64)> {
    reqs.iter().flat_map(|r| asked(r, len)).collect()
}

fn total(ranges: &[(u64, u64)]) -> u64 {
    ranges.iter().map(|&(a, b)| b - a + 1).sum()
}

/// Every byte of `want` lies in some range of `got`.
fn covers(got: &[(u64, u64)], want: &[(u64, u64)]) -> bool {
    let mut g = got.to_vec();
    g.sort();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in g {
        match merged.last_mut() {
            Some(m) if a <= m.1 + 1 => m.1 = m.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    want.iter()
        .all(|&(a, b)| merged.iter().any(|&(x, y)| x <= a && b <= y))
}

// ---------------------------------------------------------------------------------------
// 1. Our test server, every mode
// ---------------------------------------------------------------------------------------

/// A published target, an old version in `work/old.bin`, and a server for `srv`.
struct Scenario {
    site: Site,
    srv: TestServer,
    target: Vec<u8>,
    old: Vec<u8>,
    zsync: Vec<u8>,
}

fn scenario(tag: &str, len: usize, changes: usize) -> Scenario {
    let site = Site::new(tag);
    let (target, old) = target_and_seed(len, changes, len as u64 ^ changes as u64);
    let zsync = site.publish("file.bin", &target, &[]);
    site.local("old.bin", &old);
    let srv = TestServer::start(&site.srv);
    Scenario {
        site,
        srv,
        target,
        old,
        zsync,
    }
}

impl Scenario {
    /// `zsync -i old.bin -o out.bin URL-of-file.bin.zsync` + `extra`.
    fn run(&self, extra: &[&str]) -> Out {
        self.run_env(extra, &[])
    }

    /// The same with extra environment variables.
    fn run_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Out {
        let url = self.srv.url("/file.bin.zsync");
        let mut args = vec!["-i", "old.bin", "-o", "out.bin"];
        args.extend_from_slice(extra);
        args.push(&url);
        zsync_env(&self.site.work, &args, env)
    }

    /// The same with a local .zsync (path or file:// URL).
    fn run_local(&self, zsync_arg: &str) -> Out {
        let args = ["-q", "-i", "old.bin", "-o", "out.bin", zsync_arg];
        zsync(&self.site.work, &args)
    }

    fn data_requests(&self) -> Vec<LoggedRequest> {
        requests_for(&self.srv, "/file.bin")
    }

    fn out(&self) -> PathBuf {
        self.site.w("out.bin")
    }

    /// A successful run produced the target and left nothing else behind.
    #[track_caller]
    fn assert_success(&self, out: &Out) {
        out.ok();
        assert_content(&self.out(), &self.target, out);
        assert_names(&self.site.work, &["old.bin", "out.bin"], out);
    }

    /// A failed run left `out.bin` (holding `before`) alone and kept its work in `.part`.
    #[track_caller]
    fn assert_untouched(&self, out: &Out, code: i32, before: &[u8]) {
        out.expect(code);
        assert_content(&self.out(), before, out);
        assert_names(
            &self.site.work,
            &["old.bin", "out.bin", "out.bin.part"],
            out,
        );
    }
}

#[test]
fn normal_server_few_requests_only_missing_blocks() {
    // 2 MiB, 100 scattered single-byte changes: 100 missing blocks in 1024.
    let s = scenario("normal", 2 << 20, 100);
    let want = s.site.expected_download("file.bin.zsync", "old.bin");
    assert!(want.len() >= 90, "test setup: {want:?}");
    let out = s.run(&[]);
    s.assert_success(&out);
    let reqs = s.data_requests();
    assert!(
        reqs.len() <= 4,
        "{} requests for 100 ranges (multi-range requests expected): {reqs:#?}\n{out}",
        reqs.len()
    );
    let got = asked_all(&reqs, s.target.len() as u64);
    assert!(covers(&got, &want), "not all missing ranges were asked for");
    let (need, took) = (total(&want), total(&got));
    assert!(
        took <= need + need / 10,
        "asked for {took} bytes, {need} were missing\n{out}"
    );
    // The .zsync was fetched once; nothing else was requested.
    assert_eq!(requests_for(&s.srv, "/file.bin.zsync").len(), 1);
    assert_eq!(s.srv.request_count(), reqs.len() + 1);
    assert!(out.stderr.contains("fetched"), "no summary line: {out}");
}

/// Content repeated through the target in interleaved units (the places of one block are
/// found together, those of the block between them later), zero runs and unique blocks:
/// everything the seed has is reused, only the new blocks are fetched.
#[test]
fn interleaved_repeated_blocks_are_reused() {
    let site = Site::new("repeats");
    let unit = |k: u64| test_data(1024, 1000 + k);
    let (a, b, c) = (unit(1), unit(2), unit(3));
    let mut target = Vec::new();
    for _ in 0..300 {
        target.extend_from_slice(&a);
        target.extend_from_slice(&b);
    }
    target.extend_from_slice(&unit(4)); // new
    for k in 0..200 {
        target.extend_from_slice(if k % 3 == 2 { &c } else { &b });
        target.extend_from_slice(&a);
    }
    target.resize(target.len() + 100 * 1024, 0);
    target.extend_from_slice(&unit(5)); // new
    target.extend_from_slice(&c[..500]);
    let mut old = Vec::new();
    for u in [&c, &b, &a, &b] {
        old.extend_from_slice(u);
    }
    old.resize(old.len() + 3000, 0);
    old.extend_from_slice(&c[..500]);
    let zsync = site.publish("file.bin", &target, &["-b", "1024"]);
    site.local("old.bin", &old);
    let srv = TestServer::start(&site.srv);
    let s = Scenario {
        site,
        srv,
        target,
        old,
        zsync,
    };
    let out = s.run(&[]);
    s.assert_success(&out);
    let got = asked_all(&s.data_requests(), s.target.len() as u64);
    let new = [(600 * 1024, 601 * 1024 - 1), (1101 * 1024, 1102 * 1024 - 1)];
    assert!(covers(&got, &new), "the new blocks were asked for: {got:?}");
    assert_eq!(
        total(&got),
        total(&new),
        "only the new blocks: {got:?}\n{out}"
    );
}

#[test]
fn quiet_run_prints_nothing() {
    let s = scenario("quiet", 100_000, 3);
    let out = s.run(&["-q"]);
    s.assert_success(&out);
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("", ""),
        "{out}"
    );
}

/// A run against a server whose data path is in `mode`: success, the target, and at most
/// `max_requests` requests for the data.
fn works_in_mode(tag: &str, mode: Mode, changes: usize, max_requests: usize) -> Scenario {
    let s = scenario(tag, 256 << 10, changes);
    s.srv.set_path_mode("/file.bin", mode);
    let out = s.run(&[]);
    s.assert_success(&out);
    let n = s.data_requests().len();
    assert!(
        (1..=max_requests).contains(&n),
        "{n} data requests in mode {mode:?}\n{out}"
    );
    s
}

#[test]
fn single_range_only_server() {
    works_in_mode("single-only", Mode::SingleOnly, 12, 12 + 2);
}

#[test]
fn multipart_parts_in_reverse_order() {
    works_in_mode("reordered", Mode::MultipartReordered, 12, 3);
}

#[test]
fn multi_range_answered_with_416() {
    works_in_mode("multi416", Mode::MultiRange416, 12, 12 + 2);
}

#[test]
fn server_ignoring_range_is_read_once() {
    let s = works_in_mode("ignore-range", Mode::IgnoreRange, 12, 2);
    assert!(s.data_requests().iter().all(|r| r.status == 200));
}

#[test]
fn redirected_zsync_and_data() {
    let s = scenario("redirect", 256 << 10, 12);
    s.srv.set_mode(Mode::Redirect);
    let out = s.run(&[]);
    s.assert_success(&out);
    // The relative URL was resolved against the final URL of the .zsync.
    let redirected = requests_for(&s.srv, "/_r/file.bin");
    assert!(!redirected.is_empty(), "{:#?}", s.srv.requests());
    assert!(s.data_requests().is_empty(), "{:#?}", s.srv.requests());
    assert!(
        s.srv.request_count() <= 2 + 2 * 3,
        "{:#?}",
        s.srv.requests()
    );
}

#[test]
fn coalesced_multipart_parts() {
    // 32-byte blocks, and in every 256 bytes blocks 0 and 3 changed: missing ranges 64 bytes
    // apart, which the server merges into one part.
    let site = Site::new("coalesced");
    let target = test_data(64 << 10, 7);
    let mut old = target.clone();
    for g in (0..old.len()).step_by(256) {
        old[g + 5] ^= 1;
        old[g + 96 + 5] ^= 1;
    }
    site.publish("file.bin", &target, &["-b", "32"]);
    site.local("old.bin", &old);
    let want = site.expected_download("file.bin.zsync", "old.bin");
    assert!(
        want.windows(2).any(|w| w[1].0 - w[0].1 < 100),
        "test setup: ranges too far apart to be coalesced: {:?}",
        &want[..want.len().min(8)]
    );
    let srv = TestServer::start(&site.srv);
    srv.set_path_mode("/file.bin", Mode::MultipartCoalesced);
    let url = srv.url("/file.bin.zsync");
    let out = zsync(&site.work, &["-i", "old.bin", "-o", "out.bin", &url]);
    out.ok();
    assert_content(&site.w("out.bin"), &target, &out);
    let n = requests_for(&srv, "/file.bin").len();
    assert!(n <= want.len().div_ceil(64) + 2, "{n} requests\n{out}");
}

#[test]
fn truncated_bodies_never_give_a_wrong_file() {
    let s = scenario("truncated", 256 << 10, 12);
    s.site.local("out.bin", &s.old);
    s.srv.set_path_mode("/file.bin", Mode::Truncated);
    let out = s.run(&[]);
    // Every answer is cut in half: the last missing block never arrives whole.
    s.assert_untouched(&out, 3, &s.old);
    assert!(s.data_requests().len() < 40, "{:#?}", s.data_requests());
}

#[test]
fn corrupt_data_never_gives_a_wrong_file() {
    let s = scenario("corrupt", 256 << 10, 12);
    s.site.local("out.bin", &s.old);
    s.srv.set_path_mode("/file.bin", Mode::Corrupt);
    let start = Instant::now();
    let out = s.run(&[]);
    // The first block of every range is always corrupt: those blocks never verify.
    s.assert_untouched(&out, 3, &s.old);
    assert!(
        s.data_requests().len() <= 12 * 4,
        "{:#?}",
        s.data_requests()
    );
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn not_found_is_a_clear_error_and_leaves_out_alone() {
    let s = scenario("404", 100_000, 3);
    s.site.local("out.bin", &s.old);
    s.srv.set_mode(Mode::NotFound);
    let out = s.run(&["-q"]);
    s.assert_untouched(&out, 3, &s.old);
    let err = out.stderr.trim();
    assert_eq!(err.lines().count(), 1, "one line expected with -q: {out}");
    assert!(
        err.contains("404") && err.contains("/file.bin"),
        "the message should name the status and the URL: {out}"
    );
    assert!(s.data_requests().len() <= 3, "{:#?}", s.data_requests());
    // The zsync itself missing: exit 3, nothing created.
    let gone = s.srv.url("/missing.zsync");
    let out = zsync(&s.site.work, &["-q", "-o", "x.bin", &gone]);
    out.expect(3);
    assert!(out.stderr.contains("404"), "{out}");
    assert!(!s.site.w("x.bin").exists() && !s.site.w("x.bin.part").exists());
}

#[test]
fn wrong_sha1_is_exit_2_and_output_kept() {
    let s = scenario("sha1", 100_000, 3);
    s.site.local("out.bin", &s.old);
    let sha = header(&s.zsync, "SHA-1").unwrap();
    let bad = format!(
        "{}{}",
        if sha.starts_with('0') { "1" } else { "0" },
        &sha[1..]
    );
    let zs = with_header(&s.zsync, "SHA-1", Some(&bad));
    s.site.serve("file.bin.zsync", &zs);
    let out = s.run(&[]);
    s.assert_untouched(&out, 2, &s.old);
    // The .part has the complete (block-verified) data.
    assert_content(&s.site.w("out.bin.part"), &s.target, &out);
}

#[test]
fn zsync_without_sha1_is_refused() {
    let s = scenario("nosha1", 100_000, 3);
    let zs = with_header(&s.zsync, "SHA-1", None);
    s.site.serve("file.bin.zsync", &zs);
    let out = s.run(&[]);
    out.expect(3);
    assert!(!s.out().exists(), "{out}");
}

/// Failover: the first URL of the .zsync is bad in some way, the second works.
#[test]
fn bad_first_url_fails_over_to_the_second() {
    let s = scenario("failover", 256 << 10, 12);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/file.bin", l.local_addr().unwrap())
    };
    s.site.serve("corrupt.bin", &s.target);
    s.site.serve("other.bin", &test_data(s.target.len(), 99));
    s.srv.set_path_mode("/corrupt.bin", Mode::Corrupt);
    s.srv.set_path_mode("/truncated.bin", Mode::Truncated);
    s.site.serve("truncated.bin", &s.target);
    for first in [
        "missing.bin",
        "corrupt.bin",
        "other.bin",
        "truncated.bin",
        dead.as_str(),
    ] {
        s.site
            .serve("file.bin.zsync", &with_urls(&s.zsync, &[first, "file.bin"]));
        let _ = std::fs::remove_file(s.out());
        let _ = std::fs::remove_file(s.site.w("out.bin.part"));
        s.srv.clear_log();
        let out = s.run(&[]);
        s.assert_success(&out);
        let firsts = s
            .srv
            .requests()
            .iter()
            .filter(|r| r.path == format!("/{first}"))
            .count();
        assert!(
            first == dead || firsts >= 1,
            "first URL {first} not tried\n{out}"
        );
        assert!(!s.data_requests().is_empty(), "{out}");
    }
}

// ---------------------------------------------------------------------------------------
// 2. Safety
// ---------------------------------------------------------------------------------------

#[test]
fn shell_metacharacters_in_urls_run_nothing() {
    let s = scenario("inject", 50_000, 2);
    let w = s.site.work.display().to_string();
    let base = format!("http://{}", s.srv.addr());
    let urls = [
        format!("{base}/f;touch PWNED"),
        format!("{base}/f;touch${{IFS}}PWNED1"),
        format!("{base}/$(touch PWNED2)"),
        format!("{base}/$(touch${{IFS}}{w}/PWNED3)"),
        format!("{base}/`touch PWNED4`"),
        format!("{base}/`touch${{IFS}}PWNED5`"),
        format!("{base}/f|touch${{IFS}}PWNED6"),
        format!("{base}/f&touch${{IFS}}PWNED7&"),
        format!("{base}/f'\"$(touch${{IFS}}PWNED8)\"'"),
    ];
    s.site
        .serve("rel.zsync", &with_urls(&s.zsync, &["file.bin"]));
    let rel = s.srv.url("/rel.zsync");
    std::thread::scope(|scope| {
        for (i, u) in urls.iter().enumerate() {
            let (s, rel) = (&s, &rel);
            scope.spawn(move || {
                // As a URL line of the .zsync, as the -u base, and as the .zsync URL itself.
                let name = format!("inj{i}.zsync");
                s.site.serve(&name, &with_urls(&s.zsync, &[u]));
                let z = s.srv.url(&name);
                let o = format!("o{i}.bin");
                zsync(&s.site.work, &["-q", "-i", "old.bin", "-o", &o, &z]).expect(3);
                let base = format!("{u}/");
                zsync(&s.site.work, &["-q", "-o", &o, "-u", &base, rel]).expect(3);
                zsync(&s.site.work, &["-q", "-o", &o, &format!("{u}.zsync")]).expect(3);
            });
        }
    });
    // The URLs were used (as plain URLs).
    let seen = s
        .srv
        .requests()
        .iter()
        .filter(|r| r.path.contains("touch"))
        .count();
    assert!(seen >= urls.len(), "{:#?}", s.srv.requests());
    let pwned: Vec<String> = names(&s.site.work)
        .into_iter()
        .chain(names(&s.site.srv))
        .filter(|n| n.contains("PWNED"))
        .collect();
    assert!(
        pwned.is_empty(),
        "the shell ran commands from URLs: {pwned:?}"
    );
}

/// With `ZSYNC_CURL` unset, curl is run directly, without a shell for every request (the
/// same command the shell would run); a `curl` that is not on PATH is reported as such.
#[test]
fn plain_curl_runs_without_a_shell() {
    let s = scenario("direct", 300_000, 3);
    let real = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("curl"))
        .find(|p| p.is_file())
        .expect("curl on PATH");
    // A `curl` first on PATH that notes who started it, then runs the real one.
    let dir = s.site.tmp.path().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let log = s.site.tmp.path().join("parents.log");
    let script = dir.join("curl");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat /proc/$PPID/comm >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let out = s.run_env(&["-q"], &[("PATH", &path)]);
    s.assert_success(&out);
    let parents = std::fs::read_to_string(&log).unwrap();
    let parents: Vec<&str> = parents.lines().collect();
    // The .zsync and the data.
    assert!(parents.len() >= 2, "{parents:?}");
    assert!(parents.iter().all(|p| *p == "zsync"), "{parents:?}");
    // No curl at all.
    std::fs::remove_file(s.out()).unwrap();
    let out = s.run_env(&["-q"], &[("PATH", "/nonexistent")]);
    out.expect(3);
    assert!(
        out.stderr
            .contains("cannot run curl (ZSYNC_CURL): command not found"),
        "{out}"
    );
}

#[test]
fn secrets_in_zsync_curl_and_urls_are_not_printed() {
    let s = scenario("secret", 50_000, 2);
    s.srv.set_mode(Mode::NotFound);
    let curl = "curl -u secretuser:secretpass";
    let out = s.run_env(&[], &[("ZSYNC_CURL", curl)]);
    out.expect(3);
    // ZSYNC_CURL was really used.
    let auth = s
        .data_requests()
        .iter()
        .any(|r| r.header("authorization").is_some());
    assert!(
        auth,
        "ZSYNC_CURL's -u was not applied: {:#?}",
        s.srv.requests()
    );
    assert!(
        !out.stderr.contains("secretpass") && !out.stdout.contains("secretpass"),
        "{out}"
    );
    // The .zsync itself missing.
    let out = zsync_env(
        &s.site.work,
        &["-o", "out.bin", &s.srv.url("/nothing.zsync")],
        &[("ZSYNC_CURL", curl)],
    );
    out.expect(3);
    assert!(!out.stderr.contains("secretpass"), "{out}");
    // Credentials in a URL of the .zsync, and in the .zsync URL.
    let with_pw = format!("http://user:hunter2@{}/file.bin", s.srv.addr());
    s.site
        .serve("file.bin.zsync", &with_urls(&s.zsync, &[&with_pw]));
    let out = s.run(&[]);
    out.expect(3);
    assert!(!out.stderr.contains("hunter2"), "{out}");
    let zurl = format!("http://user:hunter2@{}/nothing.zsync", s.srv.addr());
    let out = zsync(&s.site.work, &["-o", "out.bin", &zurl]);
    out.expect(3);
    assert!(!out.stderr.contains("hunter2"), "{out}");
}

#[test]
fn unsafe_filenames_are_refused_without_o() {
    let s = scenario("filename", 20_000, 1);
    let outside = s.site.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let abs = outside.join("x").display().to_string();
    let before = names(s.site.tmp.path());
    for bad in ["../evil", abs.as_str(), "sub/evil", "..", ".", "", "/etc/x"] {
        s.site.serve(
            "file.bin.zsync",
            &with_header(&s.zsync, "Filename", Some(bad)),
        );
        let out = zsync(
            &s.site.work,
            &["-q", "-i", "old.bin", &s.srv.url("/file.bin.zsync")],
        );
        out.expect(3);
        assert!(
            bad.is_empty() || out.stderr.contains("-o"),
            "should suggest -o: {out}"
        );
        assert_names(&s.site.work, &["old.bin"], &out);
        assert_eq!(names(s.site.tmp.path()), before, "{out}");
        assert!(names(&outside).is_empty(), "{out}");
    }
    assert!(!Path::new("/etc/x.part").exists());
    // No Filename at all.
    s.site
        .serve("file.bin.zsync", &with_header(&s.zsync, "Filename", None));
    let out = zsync(&s.site.work, &["-q", &s.srv.url("/file.bin.zsync")]);
    out.expect(3);
    assert_names(&s.site.work, &["old.bin"], &out);
    // A plain name is fine.
    s.site.serve(
        "file.bin.zsync",
        &with_header(&s.zsync, "Filename", Some("plain.bin")),
    );
    let out = zsync(
        &s.site.work,
        &["-q", "-i", "old.bin", &s.srv.url("/file.bin.zsync")],
    );
    out.ok();
    assert_content(&s.site.w("plain.bin"), &s.target, &out);
}

#[test]
fn hostile_zsync_files_are_one_line_errors() {
    let site = Site::new("garbage");
    let good = site.publish("file.bin", &test_data(10_000, 3), &[]);
    let mut rng = common::Rng(42);
    let cut = good.len() - 7;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("binary", rng.bytes(5000)),
        (
            "html",
            b"<html><body>404 Not Found</body></html>\n".to_vec(),
        ),
        ("header-only", b"zsync: 0.6.2\n".to_vec()),
        (
            "no-blank-line",
            good[..good.windows(2).position(|w| w == b"\n\n").unwrap() + 1].to_vec(),
        ),
        ("truncated-blocks", good[..cut].to_vec()),
        (
            "huge-length",
            with_header(&good, "Length", Some("99999999999999999999")),
        ),
        ("negative-length", with_header(&good, "Length", Some("-5"))),
        (
            "bad-blocksize",
            with_header(&good, "Blocksize", Some("1000")),
        ),
        ("zero-blocksize", with_header(&good, "Blocksize", Some("0"))),
        (
            "bad-hash-lengths",
            with_header(&good, "Hash-Lengths", Some("9,9,99")),
        ),
        (
            "nul-bytes",
            [&b"zsync: 0.6.2\n\0\0\0\n\n"[..], &[0; 100]].concat(),
        ),
        (
            "long-line",
            [b"zsync: 0.6.2\nX-Long: ".to_vec(), vec![b'a'; 1 << 20]].concat(),
        ),
    ];
    let srv = TestServer::start(&site.srv);
    for (name, bytes) in &cases {
        let file = format!("{name}.zsync");
        site.serve(&file, bytes);
        for arg in [site.srv.join(&file).display().to_string(), srv.url(&file)] {
            let out = zsync(&site.work, &["-q", "-o", "out.bin", &arg]);
            out.expect(3);
            let err = out.stderr.trim_end();
            assert!(
                err.lines().count() == 1 && !err.contains("panicked"),
                "{name}: one line expected\n{out}"
            );
            assert_names(&site.work, &[], &out);
        }
    }
    // A good .zsync cut short or damaged on the way.
    site.serve("good.zsync", &good);
    for mode in [Mode::Truncated, Mode::Corrupt] {
        srv.set_path_mode("/good.zsync", mode);
        let out = zsync(
            &site.work,
            &["-q", "-o", "out.bin", &srv.url("/good.zsync")],
        );
        out.expect(3);
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "{mode:?}\n{out}");
        assert_names(&site.work, &[], &out);
    }
}

#[test]
fn usage_errors_are_exit_3() {
    let d = TempDir::new("usage");
    let cases: [&[&str]; 5] = [
        &[],
        &["a", "b"],
        &["--no-such-option", "x.zsync"],
        &["-j"],
        &["-j", "many", "x.zsync"],
    ];
    for args in cases {
        let out = zsync(d.path(), args);
        out.expect(3);
        assert!(out.stderr.contains("--help"), "{out}");
        assert_names(d.path(), &[], &out);
    }
    zsync(d.path(), &["--help"]).ok();
    // A missing local .zsync is exit 3 (nothing could be fetched) or 1 (local I/O).
    let out = zsync(d.path(), &["-q", "nonexistent.zsync"]);
    assert!(matches!(out.code(), 1 | 3), "{out}");
    assert!(out.stderr.contains("nonexistent.zsync"), "{out}");
}

// ---------------------------------------------------------------------------------------
// 3./4. Real nginx, http and https
// ---------------------------------------------------------------------------------------

#[test]
fn nginx_http() {
    if !nginx_available() {
        return;
    }
    let site = Site::new("nginx");
    let (target, old) = target_and_seed(3 << 20, 60, 5);
    site.publish("pub/file.bin", &target, &[]);
    site.local("old.bin", &old);
    let ng = Nginx::start(&site.srv, None);
    let url = ng.url("/pub/file.bin.zsync");
    let out = zsync(&site.work, &["-i", "old.bin", "-o", "out.bin", &url]);
    out.ok();
    assert_content(&site.w("out.bin"), &target, &out);
    let log = ng.access_log();
    let data: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/pub/file.bin "))
        .collect();
    assert!(
        !data.is_empty() && data.len() <= 4 && data.iter().all(|l| l.contains("\" 206 ")),
        "nginx log:\n{log}\n{out}"
    );
    // From nothing (no seed): the whole file, default Filename, in a fresh directory.
    let fresh = site.tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let out = zsync(&fresh, &[&url]);
    out.ok();
    assert_content(&fresh.join("file.bin"), &target, &out);
    assert_names(&fresh, &["file.bin"], &out);
}

#[test]
fn nginx_https_self_signed() {
    if !nginx_available() {
        return;
    }
    let site = Site::new("https");
    let (target, old) = target_and_seed(512 << 10, 20, 6);
    site.publish("file.bin", &target, &[]);
    site.local("old.bin", &old);
    let cert = Cert::generate();
    let ng = Nginx::start(&site.srv, Some(&cert));
    let url = ng.url("/file.bin.zsync");
    assert!(url.starts_with("https://"));
    let curl = format!("curl --cacert '{}'", cert.cert.display());
    let out = zsync_env(
        &site.work,
        &["-i", "old.bin", "-o", "out.bin", &url],
        &[("ZSYNC_CURL", &curl)],
    );
    out.ok();
    assert_content(&site.w("out.bin"), &target, &out);
    // Without the CA: the certificate is rejected, exit 3, nothing written.
    let out = zsync(&site.work, &["-q", "-i", "old.bin", "-o", "new.bin", &url]);
    out.expect(3);
    assert!(out.stderr.to_lowercase().contains("certificate"), "{out}");
    assert_names(&site.work, &["old.bin", "out.bin"], &out);
    // Also when only the data URL is https (the .zsync is local).
    let local = site.local(
        "local.zsync",
        &with_urls(
            &read(&site.srv.join("file.bin.zsync")),
            &[&ng.url("/file.bin")],
        ),
    );
    let out = zsync(
        &site.work,
        &[
            "-q",
            "-i",
            "old.bin",
            "-o",
            "new.bin",
            local.to_str().unwrap(),
        ],
    );
    out.expect(3);
    assert!(!site.w("new.bin").exists(), "{out}");
}

// ---------------------------------------------------------------------------------------
// 5. Compatibility with Debian's zsync 0.6.2
// ---------------------------------------------------------------------------------------

fn debian_available() -> bool {
    require(DEBIAN_ZSYNC, SKIP_DEBIAN, "apt-get install -y zsync")
        && require(DEBIAN_ZSYNCMAKE, SKIP_DEBIAN, "apt-get install -y zsync")
}

#[test]
fn debian_client_reads_our_zsync_files() {
    if !debian_available() || !nginx_available() {
        return;
    }
    let site = Site::new("debian-client");
    let ng = Nginx::start(&site.srv, None);
    // Several shapes: multi-block with a seed, not a multiple of the block size, small.
    for (k, (len, changes)) in [(1 << 20, 30), (300_001, 5), (5000, 1)]
        .into_iter()
        .enumerate()
    {
        let (target, old) = target_and_seed(len, changes, 40 + k as u64);
        let name = format!("f{k}.bin");
        site.publish(&name, &target, &[]);
        site.local("seed", &old);
        let out_name = format!("out{k}");
        let url = ng.url(&format!("/{name}.zsync"));
        let out = exec(
            Path::new(DEBIAN_ZSYNC),
            &["-i", "seed", "-o", &out_name, &url],
            &site.work,
            &[],
        );
        out.ok();
        assert_content(&site.w(&out_name), &target, &out);
    }
}

#[test]
fn our_client_reads_debian_zsync_files() {
    if !debian_available() {
        return;
    }
    let site = Site::new("debian-make");
    let srv = TestServer::start(&site.srv);
    for (k, (len, changes)) in [(1 << 20, 25), (300_001, 5), (4097, 1), (10, 1)]
        .into_iter()
        .enumerate()
    {
        let (target, old) = target_and_seed(len, changes, 70 + k as u64);
        let name = format!("d{k}.bin");
        site.serve(&name, &target);
        let zname = format!("{name}.zsync");
        exec(
            Path::new(DEBIAN_ZSYNCMAKE),
            &["-Z", "-u", &name, "-o", &zname, &name],
            &site.srv,
            &[],
        )
        .ok();
        let zs = read(&site.srv.join(&zname));
        let hl = header(&zs, "Hash-Lengths").unwrap();
        assert!(
            len as u64 <= BS || hl.starts_with("2,"),
            "Debian's zsyncmake wrote Hash-Lengths {hl}"
        );
        site.local("seed", &old);
        srv.clear_log();
        let out = zsync(&site.work, &["-i", "seed", "-o", "out", &srv.url(&zname)]);
        out.ok();
        assert_content(&site.w("out"), &target, &out);
        if len > 100_000 {
            // seq=2 matching found the unchanged blocks: only a few were fetched.
            let got = total(&asked_all(
                &requests_for(&srv, &format!("/{name}")),
                len as u64,
            ));
            assert!(
                got <= (changes as u64 * 3) * BS,
                "fetched {got} bytes for {changes} changes\n{out}"
            );
        }
        std::fs::remove_file(site.w("out")).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// 6. Resume
// ---------------------------------------------------------------------------------------

#[test]
fn failed_run_leaves_part_that_the_next_run_reuses() {
    let s = scenario("resume", 512 << 10, 1);
    // No seed at all: everything must be downloaded.
    std::fs::remove_file(s.site.w("old.bin")).unwrap();
    s.srv.set_path_mode("/file.bin", Mode::Truncated);
    let url = s.srv.url("/file.bin.zsync");
    let first = zsync(&s.site.work, &["-o", "out.bin", &url]);
    first.expect(3);
    assert!(
        s.site.w("out.bin.part").exists() && !s.out().exists(),
        "{first}"
    );
    let len = s.target.len() as u64;
    let asked1 = total(&asked_all(&s.data_requests(), len));
    s.srv.set_path_mode("/file.bin", Mode::Normal);
    s.srv.clear_log();
    let second = zsync(&s.site.work, &["-o", "out.bin", &url]);
    second.ok();
    assert_content(&s.out(), &s.target, &second);
    assert_names(&s.site.work, &["out.bin"], &second);
    let asked2 = total(&asked_all(&s.data_requests(), len));
    assert!(
        asked2 <= 2 * BS && asked2 < asked1,
        "second run asked for {asked2} bytes (first: {asked1})\n{first}\n{second}"
    );
}

/// When the download fails, what the seeds have is in `.part` all the same: the next run
/// needs no seed and fetches only the blocks that changed.
#[test]
fn failed_download_still_leaves_the_seeds_blocks_in_part() {
    // Large enough that the copy outlasts the failed request.
    let s = scenario("seedpart", 48 << 20, 2);
    s.srv.set_path_mode("/file.bin", Mode::NotFound);
    let first = s.run(&["-q"]);
    first.expect(3);
    assert!(!s.out().exists(), "{first}");
    std::fs::remove_file(s.site.w("old.bin")).unwrap();
    s.srv.set_path_mode("/file.bin", Mode::Normal);
    s.srv.clear_log();
    let url = s.srv.url("/file.bin.zsync");
    let second = zsync(&s.site.work, &["-q", "-o", "out.bin", &url]);
    second.ok();
    assert_content(&s.out(), &s.target, &second);
    let asked = total(&asked_all(&s.data_requests(), s.target.len() as u64));
    assert!(
        asked <= 2 * BS,
        "the second run asked for {asked} bytes\n{first}\n{second}"
    );
}

/// A seed that can only be read once, from start to end (a pipe), is kept aside as it is
/// scanned: its blocks are reused, and nothing of it is left behind.
#[test]
fn a_seed_read_from_a_pipe_is_reused() {
    let s = scenario("pipeseed", 3 << 20, 5);
    let url = s.srv.url("/file.bin.zsync");
    let mut cmd = Command::new(bin("zsync"));
    cmd.args(["-i", "/dev/stdin", "-o", "out.bin", &url])
        .current_dir(&s.site.work);
    prepare(&mut cmd, &s.site.work);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let old = s.old.clone();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&old);
    });
    let out = finish(child, "zsync -i /dev/stdin (a pipe)".into());
    feeder.join().unwrap();
    out.ok();
    assert_content(&s.out(), &s.target, &out);
    assert_names(&s.site.work, &["old.bin", "out.bin"], &out);
    let asked = total(&asked_all(&s.data_requests(), s.target.len() as u64));
    assert!(asked <= 5 * 2 * BS, "asked for {asked} bytes\n{out}");
}

#[test]
fn connection_cut_mid_transfer_is_retried_without_refetching() {
    let s = scenario("fail-after", 512 << 10, 1);
    std::fs::remove_file(s.site.w("old.bin")).unwrap();
    let len = s.target.len() as u64;
    s.srv.set_path_mode("/file.bin", Mode::FailAfter(len / 3));
    let out = zsync(
        &s.site.work,
        &["-o", "out.bin", &s.srv.url("/file.bin.zsync")],
    );
    let reqs = s.data_requests();
    if out.code() == 3 {
        // Given up: the next run gets only the rest.
        assert!(s.site.w("out.bin.part").exists(), "{out}");
        s.srv.clear_log();
        let again = zsync(
            &s.site.work,
            &["-o", "out.bin", &s.srv.url("/file.bin.zsync")],
        );
        again.ok();
        let asked2 = total(&asked_all(&s.data_requests(), len));
        assert!(asked2 <= len - len / 3 + BS, "{asked2}\n{again}");
    } else {
        out.ok();
        // Retried within the run: the retry asked only for what had not arrived.
        let later = total(&asked_all(&reqs[1..], len));
        assert!(
            later <= len - len / 3 + BS,
            "retry asked for {later} bytes: {reqs:#?}"
        );
    }
    assert_content(&s.out(), &s.target, &out);
}

#[test]
fn killed_run_leaves_part_that_the_next_run_reuses() {
    let s = scenario("killed", 512 << 10, 10);
    let want = s.site.expected_download("file.bin.zsync", "old.bin");
    s.srv.set_path_mode("/file.bin", Mode::Stall);
    let url = s.srv.url("/file.bin.zsync");
    let mut cmd = Command::new(bin("zsync"));
    cmd.args(["-q", "-i", "old.bin", "-o", "out.bin", &url])
        .current_dir(&s.site.work);
    prepare(&mut cmd, &s.site.work);
    let child = cmd.spawn().unwrap();
    let pgid = child.id();
    let start = Instant::now();
    while s.data_requests().is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_group(pgid);
    let out = finish(child, "killed zsync".into());
    assert!(!s.data_requests().is_empty(), "no request came: {out}");
    assert!(s.site.w("out.bin.part").exists(), "{out}");
    // The seed is gone: what it gave is now only in out.bin.part.
    std::fs::remove_file(s.site.w("old.bin")).unwrap();
    s.srv.set_path_mode("/file.bin", Mode::Normal);
    s.srv.clear_log();
    let out = zsync(&s.site.work, &["-o", "out.bin", &url]);
    out.ok();
    assert_content(&s.out(), &s.target, &out);
    let asked = total(&asked_all(&s.data_requests(), s.target.len() as u64));
    assert!(
        asked <= total(&want) + 2 * BS,
        "asked for {asked} bytes\n{out}"
    );
}

// ---------------------------------------------------------------------------------------
// 7. Everything else
// ---------------------------------------------------------------------------------------

#[test]
fn keep_saves_the_zsync() {
    let s = scenario("keep", 50_000, 2);
    let out = s.run(&["-k", "saved.zsync"]);
    out.ok();
    assert_content(&s.site.w("saved.zsync"), &s.zsync, &out);
    assert_content(&s.out(), &s.target, &out);
}

#[test]
fn output_in_another_directory() {
    let s = scenario("outdir", 100_000, 3);
    let dir = s.site.tmp.path().join("elsewhere/deeper");
    std::fs::create_dir_all(&dir).unwrap();
    let o = dir.join("result.bin");
    let url = s.srv.url("/file.bin.zsync");
    let out = zsync(
        &s.site.work,
        &["-i", "old.bin", "-o", o.to_str().unwrap(), &url],
    );
    out.ok();
    assert_content(&o, &s.target, &out);
    assert_names(&dir, &["result.bin"], &out);
    assert_names(&s.site.work, &["old.bin"], &out);
    // Relative to the working directory.
    let out = zsync(
        &s.site.work,
        &["-q", "-i", "old.bin", "-o", "../elsewhere/r2.bin", &url],
    );
    out.ok();
    assert_content(&s.site.tmp.path().join("elsewhere/r2.bin"), &s.target, &out);
    assert_names(&s.site.work, &["old.bin"], &out);
    // A directory that does not exist: local error, nothing created.
    let missing = s.site.tmp.path().join("nope/result.bin");
    let out = zsync(&s.site.work, &["-q", "-o", missing.to_str().unwrap(), &url]);
    out.expect(1);
    assert!(!s.site.tmp.path().join("nope").exists());
    assert_names(&s.site.work, &["old.bin"], &out);
}

#[test]
fn seed_is_the_output_updated_in_place() {
    let s = scenario("inplace", 200_000, 4);
    let f = s.site.local("file.bin", &s.old);
    std::fs::remove_file(s.site.w("old.bin")).unwrap();
    let url = s.srv.url("/file.bin.zsync");
    let out = zsync(&s.site.work, &["-i", "file.bin", "-o", "file.bin", &url]);
    out.ok();
    assert_content(&f, &s.target, &out);
    assert_content(&s.site.w("file.bin.zs-old"), &s.old, &out);
    let asked = total(&asked_all(&s.data_requests(), s.target.len() as u64));
    assert!(asked <= 8 * BS, "{asked}");
    // Up to date now: the default output name (Filename) and no download at all.
    s.srv.clear_log();
    let out = zsync(&s.site.work, &[&url]);
    out.ok();
    assert_content(&f, &s.target, &out);
    assert_content(&s.site.w("file.bin.zs-old"), &s.target, &out);
    assert!(s.data_requests().is_empty(), "{:#?}", s.data_requests());
    assert_names(&s.site.work, &["file.bin", "file.bin.zs-old"], &out);
}

#[test]
fn old_file_mode_is_kept() {
    let s = scenario("mode", 50_000, 2);
    let url = s.srv.url("/file.bin.zsync");
    for mode in [0o755, 0o640, 0o600] {
        let f = s.site.local("file.bin", &s.old);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = zsync(&s.site.work, &["-q", &url]);
        out.ok();
        assert_content(&f, &s.target, &out);
        let got = std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
        assert_eq!(got, mode, "mode {got:o} instead of {mode:o}");
        std::fs::remove_file(&f).unwrap();
    }
}

#[test]
fn mtime_from_the_header_is_applied_in_utc() {
    let site = Site::new("mtime");
    let t = 1_500_000_000u64; // Fri, 14 Jul 2017 02:40:00 +0000
    let data = test_data(30_000, 8);
    site.serve("file.bin", &data);
    std::fs::File::options()
        .write(true)
        .open(site.srv.join("file.bin"))
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(t))
        .unwrap();
    zsyncmake(&site.srv, &["-u", "file.bin", "file.bin"]);
    let zs = read(&site.srv.join("file.bin.zsync"));
    assert_eq!(
        header(&zs, "MTime").as_deref(),
        Some("Fri, 14 Jul 2017 02:40:00 +0000")
    );
    let z = site.srv.join("file.bin.zsync");
    for tz in ["UTC", "America/New_York", "Asia/Kolkata"] {
        let o = format!("out-{}", tz.replace('/', "-"));
        let out = zsync_env(&site.work, &["-o", &o, z.to_str().unwrap()], &[("TZ", tz)]);
        out.ok();
        let m = std::fs::metadata(site.w(&o)).unwrap().modified().unwrap();
        assert_eq!(
            m.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            t,
            "TZ={tz}\n{out}"
        );
    }
    // A read-only old version: its mode is kept and the MTime is still applied.
    let ro = site.local("ro.bin", b"old");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
    let out = zsync_unprivileged(&site, &["-o", "ro.bin", z.to_str().unwrap()]);
    out.ok();
    assert_content(&ro, &data, &out);
    let meta = std::fs::metadata(&ro).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o444, "{out}");
    let m = meta
        .modified()
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH);
    assert_eq!(m.unwrap().as_secs(), t, "MTime not applied\n{out}");
}

/// Our zsync run in `site.work`, as user 65534 if the tests run as root (root may write
/// to read-only files, which would hide bugs), with the site's files given to that user.
fn zsync_unprivileged(site: &Site, args: &[&str]) -> Out {
    let id = Command::new("id").arg("-u").output().expect("run id -u");
    let root = String::from_utf8_lossy(&id.stdout).trim() == "0";
    let setpriv = Path::new("/usr/bin/setpriv");
    if !root || !setpriv.exists() {
        return zsync(&site.work, args);
    }
    let st = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(site.tmp.path())
        .status()
        .expect("run chown");
    assert!(st.success(), "chown failed");
    let z = bin("zsync");
    let mut full = vec![
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        z.to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    exec(setpriv, &full, &site.work, &[])
}

#[test]
fn empty_and_one_byte_targets() {
    let site = Site::new("tiny");
    let srv = TestServer::start(&site.srv);
    // (target, old version): empty; one byte from nothing (the reference aborts); one byte
    // changed; L mod B == 1 with only the last block changed.
    let mut big = test_data(2 * BS as usize + 1, 9);
    let big_old = big.clone();
    *big.last_mut().unwrap() ^= 1;
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (Vec::new(), Vec::new()),
        (Vec::new(), b"old".to_vec()),
        (b"x".to_vec(), Vec::new()),
        (b"x".to_vec(), b"y".to_vec()),
        (big, big_old),
    ];
    for (k, (target, old)) in cases.iter().enumerate() {
        let name = format!("t{k}");
        let zs = site.publish(&name, target, &[]);
        assert_eq!(header(&zs, "Length"), Some(target.len().to_string()));
        site.local(&name, old);
        let out = zsync(&site.work, &["-q", &srv.url(&format!("/{name}.zsync"))]);
        out.ok();
        assert_content(&site.w(&name), target, &out);
    }
}

#[test]
fn file_urls_and_local_paths() {
    let s = scenario("local", 100_000, 3);
    let z = s.site.srv.join("file.bin.zsync");
    let file_url = format!("file://{}", z.display());
    let rel = Path::new("..").join("srv").join("file.bin.zsync");
    for arg in [
        file_url.as_str(),
        z.to_str().unwrap(),
        rel.to_str().unwrap(),
    ] {
        let _ = std::fs::remove_file(s.out());
        let out = s.run_local(arg);
        out.ok();
        assert_content(&s.out(), &s.target, &out);
    }
    // None of that went to the server.
    assert_eq!(s.srv.request_count(), 0);
}

#[test]
fn relative_urls_resolve_against_the_zsync_url_or_u() {
    let site = Site::new("relative");
    let (target, old) = target_and_seed(100_000, 3, 11);
    std::fs::create_dir_all(site.srv.join("data")).unwrap();
    std::fs::create_dir_all(site.srv.join("pub/v2")).unwrap();
    site.publish("data/file.bin", &target, &[]);
    let zs = read(&site.srv.join("data/file.bin.zsync"));
    site.local("old.bin", &old);
    let srv = TestServer::start(&site.srv);
    let zpath = "pub/v2/f.zsync";
    let cases: Vec<(String, &str)> = vec![
        // (URL line, .zsync location in srv) resolved against the .zsync URL
        ("../../data/file.bin".into(), zpath),
        ("/data/file.bin".into(), zpath),
        (format!("//{}/data/file.bin", srv.addr()), zpath),
        ("file.bin".into(), "data/g.zsync"),
    ];
    for (line, at) in &cases {
        site.serve(at, &with_urls(&zs, &[line]));
        for query in ["", "?token=abc&x=1"] {
            srv.clear_log();
            let _ = std::fs::remove_file(site.w("out.bin"));
            let url = srv.url(&format!("/{at}{query}"));
            let out = zsync(&site.work, &["-q", "-i", "old.bin", "-o", "out.bin", &url]);
            out.ok();
            assert_content(&site.w("out.bin"), &target, &out);
            assert!(!requests_for(&srv, "/data/file.bin").is_empty(), "{out}");
        }
    }
    // A local .zsync with a relative URL: against -u (a directory or a file URL), and without
    // -u against the .zsync's own location (file://).
    let local = site.local("local.zsync", &with_urls(&zs, &["file.bin"]));
    let l = local.to_str().unwrap();
    for base in [srv.url("/data/"), srv.url("/data/whatever.zsync")] {
        srv.clear_log();
        let _ = std::fs::remove_file(site.w("out.bin"));
        let out = zsync(
            &site.work,
            &["-q", "-i", "old.bin", "-o", "out.bin", "-u", &base, l],
        );
        out.ok();
        assert_content(&site.w("out.bin"), &target, &out);
        assert!(!requests_for(&srv, "/data/file.bin").is_empty(), "{out}");
    }
    // Without -u: file://.../work/file.bin does not exist.
    let out = zsync(&site.work, &["-q", "-i", "old.bin", "-o", "out2.bin", l]);
    out.expect(3);
    site.local("file.bin", &target);
    let out = zsync(&site.work, &["-q", "-i", "old.bin", "-o", "out2.bin", l]);
    out.ok();
    assert_content(&site.w("out2.bin"), &target, &out);
    // An absolute URL needs no base and ignores -u.
    let abs = site.local("abs.zsync", &with_urls(&zs, &[&srv.url("/data/file.bin")]));
    let out = zsync(
        &site.work,
        &[
            "-q",
            "-o",
            "out3.bin",
            "-u",
            "http://127.0.0.1:9/nowhere/",
            abs.to_str().unwrap(),
        ],
    );
    out.ok();
    assert_content(&site.w("out3.bin"), &target, &out);
}

#[test]
fn unreadable_seeds_are_skipped() {
    let s = scenario("seeds", 100_000, 3);
    let url = s.srv.url("/file.bin.zsync");
    std::fs::create_dir_all(s.site.w("adir")).unwrap();
    let out = zsync(
        &s.site.work,
        &[
            "-i", "missing", "-i", "adir", "-i", "old.bin", "-o", "out.bin", &url,
        ],
    );
    out.ok();
    assert_content(&s.out(), &s.target, &out);
    assert!(out.stderr.contains("missing"), "{out}");
    let asked = total(&asked_all(&s.data_requests(), s.target.len() as u64));
    assert!(asked <= 6 * BS, "{asked}");
}

#[test]
fn parallel_jobs_option() {
    let s = scenario("jobs", 256 << 10, 12);
    s.srv.set_path_mode("/file.bin", Mode::SingleOnly);
    for j in ["1", "8"] {
        let _ = std::fs::remove_file(s.out());
        let out = s.run(&["-j", j]);
        s.assert_success(&out);
    }
}

#[test]
fn missing_curl_is_a_clear_error() {
    let s = scenario("nocurl", 20_000, 1);
    for curl in [
        "/nonexistent/curl -u user:secretpass",
        "curl-does-not-exist",
    ] {
        let out = s.run_env(&["-q"], &[("ZSYNC_CURL", curl)]);
        out.expect(3);
        assert!(out.stderr.contains("curl"), "{out}");
        assert!(!out.stderr.contains("secretpass"), "{out}");
        assert!(!s.out().exists(), "{out}");
    }
}

#[test]
fn stalled_first_url_fails_over_with_a_short_stall_timeout() {
    let s = scenario("stall", 100_000, 3);
    s.site.serve("stalled.bin", &s.target);
    s.srv.set_path_mode("/stalled.bin", Mode::Stall);
    s.site.serve(
        "file.bin.zsync",
        &with_urls(&s.zsync, &["stalled.bin", "file.bin"]),
    );
    let start = Instant::now();
    let out = s.run_env(
        &[],
        &[("ZSYNC_CURL", "curl --speed-limit 1 --speed-time 1")],
    );
    s.assert_success(&out);
    assert!(!requests_for(&s.srv, "/stalled.bin").is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}\n{out}",
        start.elapsed()
    );
}

#[test]
fn parallel_single_range_transfers_lose_no_data() {
    // 8 changed regions of 40 blocks: after the probe, 7 single-range transfers run at once
    // and their chunks arrive interleaved, with blocks split across chunks.
    let site = Site::new("interleaved");
    let target = test_data(4 << 20, 12);
    let mut old = target.clone();
    for k in 0..8 {
        let at = k * (512 << 10) + 1000;
        for b in 0..40 {
            old[at + b * BS as usize] ^= 1;
        }
    }
    site.publish("file.bin", &target, &[]);
    site.local("old.bin", &old);
    let want = site.expected_download("file.bin.zsync", "old.bin");
    let srv = TestServer::start(&site.srv);
    srv.set_path_mode("/file.bin", Mode::SingleOnly);
    let url = srv.url("/file.bin.zsync");
    let out = zsync(
        &site.work,
        &["-j", "8", "-i", "old.bin", "-o", "out.bin", &url],
    );
    out.ok();
    assert_content(&site.w("out.bin"), &target, &out);
    let reqs = requests_for(&srv, "/file.bin");
    let asked = total(&asked_all(&reqs, target.len() as u64));
    // The probe asks for all 8 ranges and gets the first: each range is sent once.
    let need = total(&want) + total(&want[1..]);
    assert!(
        reqs.len() <= want.len() + 1 && asked <= need,
        "{} requests for {} bytes; {need} needed: blocks were dropped and fetched again\n{out}",
        reqs.len(),
        asked
    );
}

#[test]
fn parallel_multipart_transfers_lose_no_data() {
    // 400 scattered changed blocks: a probe, then 4 multi-range requests of up to 128
    // ranges at once, whose parts (and so blocks) are split across interleaved chunks.
    let s = scenario("interleaved-multi", 4 << 20, 400);
    let want = s.site.expected_download("file.bin.zsync", "old.bin");
    let out = s.run(&["-j", "4"]);
    s.assert_success(&out);
    let reqs = s.data_requests();
    let asked = total(&asked_all(&reqs, s.target.len() as u64));
    assert!(
        reqs.len() <= want.len().div_ceil(128) + 1 && asked <= total(&want),
        "{} requests for {asked} bytes, {} needed: blocks were dropped and fetched again\n{out}",
        reqs.len(),
        total(&want)
    );
}
