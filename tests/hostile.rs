//! Hostile input catalogue (issue #6): damaged, malicious or odd `.zsync` files, and odd
//! places to write to.
//!
//! Every rejected control file goes through both `zsyncranges` (exit 1) and `zsync -o out`
//! (exit 3), in a scratch directory that holds an `out` of known content: stderr must be
//! exactly one line naming the problem, zsyncranges prints nothing on stdout, nothing on
//! disk changes (no `.part`, no temporary file) and no request reaches the server the file
//! points at. Every program runs under `timeout(1)`; the ones that must fail early also
//! under a 256 MiB address-space limit (`prlimit`), so a hang or an allocation sized from a
//! hostile header fails the test.
//!
//! The disk-full tests mount 1 MiB tmpfs file systems (the tests run as root); when mounting
//! is not permitted they fail, unless `ZSYNC3_SKIP_MOUNT=1` is set (then they are skipped,
//! with a message). Run as root, the read-only directory test runs zsync as user 65534
//! through `setpriv`, since root may write anywhere.

mod common;
mod support;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, Rng};
use support::{test_data, TempDir, TestServer};
use zsync3::control::ControlFile;
use zsync3::make::{make, MakeOptions};

/// Longest any program may run; `timeout` then kills it (and its curl children).
const TIME_LIMIT_SECS: &str = "60";
/// A rejected file must be rejected at least this fast.
const FAST: Duration = Duration::from_secs(5);
/// Runs that must fail early get this address-space limit: plenty for the programs, far
/// too little for a block table sized from a hostile `Length`.
const MEMORY_LIMIT: &[&str] = &["prlimit", "--as=268435456", "--"];
/// Longest acceptable error message: hostile values are not repeated in full.
const MAX_MESSAGE: usize = 300;
/// Block size of the control files made here.
const BS: usize = 2048;

// ---------------------------------------------------------------------------------------
// Running the programs
// ---------------------------------------------------------------------------------------

/// What a program did.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
    what: String,
}

impl fmt::Display for Ran {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\nexit {:?} after {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.what, self.code, self.took, self.stdout, self.stderr
        )
    }
}

impl Ran {
    /// Exit `code` with exactly one stderr line that contains `needle`, quickly.
    fn failed_with(&self, code: i32, needle: &str) -> Result<(), String> {
        let lines = self.stderr.lines().count();
        let problem = if self.code != Some(code) {
            format!("exit {:?} instead of {code}", self.code)
        } else if lines != 1 || !self.stderr.ends_with('\n') {
            format!("{lines} stderr lines instead of one")
        } else if self.stderr.len() > MAX_MESSAGE {
            format!("a stderr line of {} bytes", self.stderr.len())
        } else if !self.stderr.contains(needle) || self.stderr.contains("panicked") {
            format!("stderr does not name the problem ({needle:?})")
        } else if self.took > FAST {
            format!("took {:?}", self.took)
        } else {
            return Ok(());
        };
        Err(format!("{problem}\n{self}"))
    }

    /// Exit 0 with nothing on stderr.
    #[track_caller]
    fn ok(&self) -> &Self {
        assert!(self.code == Some(0) && self.stderr.is_empty(), "{self}");
        self
    }
}

/// Run `program args` in `cwd` after the command words `wrap` (prlimit, setpriv), under
/// `timeout`, with no stdin, HOME in `cwd` and no proxy settings.
fn run(cwd: &Path, wrap: &[&str], program: &str, args: &[&str]) -> Ran {
    run_to(cwd, wrap, program, args, Stdio::piped())
}

/// [`run`] with stdout going to `stdout`.
fn run_to(cwd: &Path, wrap: &[&str], program: &str, args: &[&str], stdout: Stdio) -> Ran {
    let program = bin(program);
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", TIME_LIMIT_SECS])
        .args(wrap)
        .arg(&program)
        .args(args)
        .current_dir(cwd)
        .env("HOME", cwd)
        .stdin(Stdio::null())
        .stdout(stdout);
    for v in [
        "ZSYNC_CURL",
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(v);
    }
    let what = format!("in {}: {:?}", cwd.display(), cmd);
    let start = Instant::now();
    let out = cmd.output().expect("run timeout(1)");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
        what,
    }
}

/// Every file below `dir` with its content (directories as `name/`), to see what changed.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let e = e.unwrap();
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{name}/"), out);
                out.insert(format!("{name}/"), Vec::new());
            } else {
                out.insert(name, fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, "", &mut out);
    out
}

/// The names in `after` that are not in `before` or whose content changed.
fn changes(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) -> String {
    let mut v: Vec<String> = after
        .iter()
        .filter(|(k, c)| before.get(*k) != Some(c))
        .map(|(k, _)| format!("+{k}"))
        .collect();
    v.extend(
        before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .map(|k| format!("-{k}")),
    );
    v.join(" ")
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// The site: a target, an old version, its .zsync, a server
// ---------------------------------------------------------------------------------------

struct Site {
    srv: TestServer,
    _srv_dir: TempDir,
    target: Vec<u8>,
    old: Vec<u8>,
    /// The control file of `target`, served as `/t.bin`.
    zsync: Vec<u8>,
    /// zsyncranges' JSON for `zsync` against `old`.
    json: String,
}

impl Site {
    /// A target of `len` bytes; the old version differs in two blocks.
    fn new(len: usize) -> Site {
        let dir = TempDir::new("hostile-srv");
        let target = test_data(len, 6);
        let mut old = target.clone();
        for p in [len / 4, 3 * len / 4] {
            old[p] ^= 0x55;
        }
        dir.write("t.bin", &target);
        let srv = TestServer::start(dir.path());
        let opts = MakeOptions {
            blocksize: Some(BS as u32),
            filename: Some("t.bin".into()),
            urls: vec![srv.url("/t.bin")],
            ..Default::default()
        };
        let zsync = make(&mut &target[..], len as u64, &opts)
            .unwrap()
            .to_bytes();
        let mut site = Site {
            srv,
            _srv_dir: dir,
            target,
            old,
            zsync,
            json: String::new(),
        };
        let d = site.scratch(&site.zsync);
        site.json = site.ranges(&d, &[]).ok().stdout.clone();
        site
    }

    /// A scratch directory with `work/case.zsync` = `zsync` and `work/out` = the old version.
    fn scratch(&self, zsync: &[u8]) -> TempDir {
        let d = TempDir::new("hostile");
        d.write("work/case.zsync", zsync);
        d.write("work/out", &self.old);
        d
    }

    fn ranges(&self, d: &TempDir, wrap: &[&str]) -> Ran {
        run(
            &d.path().join("work"),
            wrap,
            "zsyncranges",
            &["case.zsync", "out"],
        )
    }

    fn zsync(&self, d: &TempDir, wrap: &[&str], args: &[&str]) -> Ran {
        let mut all = args.to_vec();
        all.push("case.zsync");
        run(&d.path().join("work"), wrap, "zsync", &all)
    }

    /// Bytes of the target the server was asked for (all requests so far).
    fn bytes_asked(&self) -> u64 {
        let mut total = 0;
        for r in self.srv.requests() {
            let spec = r
                .range
                .clone()
                .unwrap_or_else(|| panic!("request without Range: {r:?}"));
            for part in spec.trim_start_matches("bytes=").split(',') {
                let (a, b) = part.trim().split_once('-').unwrap();
                total += b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1;
            }
        }
        total
    }
}

/// Length of the header of the valid control file `zs`, blank line included.
fn header_len(zs: &[u8]) -> usize {
    zs.len() - ControlFile::parse_header(zs).unwrap().1.len()
}

/// `zs` with its header text (blank line included) passed through `f`.
fn map_header(zs: &[u8], f: impl FnOnce(&str) -> String) -> Vec<u8> {
    let end = header_len(zs);
    let head = std::str::from_utf8(&zs[..end]).expect("header is text");
    [f(head).as_bytes(), &zs[end..]].concat()
}

/// The header line of `key`, newline included.
fn line(zs: &[u8], key: &str) -> String {
    let text = String::from_utf8_lossy(zs);
    let l = text
        .lines()
        .find(|l| l.starts_with(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} header"));
    format!("{l}\n")
}

/// `zs` with its `from` (in the header) replaced by `to`.
fn edit(zs: &[u8], from: &str, to: &str) -> Vec<u8> {
    map_header(zs, |h| {
        assert!(h.contains(from), "{from:?} is not in the header");
        h.replacen(from, to, 1)
    })
}

/// `zs` with header `key` set to `value`.
fn set(zs: &[u8], key: &str, value: &str) -> Vec<u8> {
    edit(zs, &line(zs, key), &format!("{key}: {value}\n"))
}

/// `zs` with `lines` inserted before the SHA-1 line.
fn insert(zs: &[u8], lines: &str) -> Vec<u8> {
    let sha = line(zs, "SHA-1");
    edit(zs, &sha, &format!("{lines}{sha}"))
}

// ---------------------------------------------------------------------------------------
// 1. Control files both tools must reject
// ---------------------------------------------------------------------------------------

/// (what, control file, the word its error message must contain)
fn hostile_cases(z: &[u8]) -> Vec<(String, Vec<u8>, &'static str)> {
    let mut cases: Vec<(String, Vec<u8>, &'static str)> = Vec::new();
    let mut add = |what: &str, bytes: Vec<u8>, needle: &'static str| {
        cases.push((what.to_string(), bytes, needle));
    };
    let digits = "9".repeat(100_000);
    let letters = "a".repeat(100_000);
    for (v, needle) in [
        ("9223372036854775808", "too large"),  // 2^63
        ("4611686018427387904", "truncated"),  // 2^62: parses, but there is no such table
        ("18446744073709551616", "too large"), // 2^64
        ("9999999999999999999999", "too large"),
        (&digits, "too large"),
        ("-1", "decimal number"),
        ("12abc", "decimal number"),
        (&letters, "decimal number"),
        ("", "Length"),
    ] {
        let what = format!("Length {}", zsync3::error::quoted(v));
        add(&what, set(z, "Length", v), needle);
    }
    add(
        "Hash-Lengths of 100000 letters",
        set(z, "Hash-Lengths", &letters),
        "Hash-Lengths",
    );
    add(
        "Min-Version 100000 long",
        insert(z, &format!("Min-Version: 9{digits}\n")),
        "requires",
    );
    add(
        "100 kB line, not Key: value",
        insert(z, &format!("{letters}\n")),
        "Key: value",
    );
    for v in ["0", "3", "1000", "33554432", "1099511627776", "x"] {
        add(
            &format!("Blocksize {v:?}"),
            set(z, "Blocksize", v),
            "Blocksize",
        );
    }
    for v in [
        "0,2,4", "3,2,4", "1,5,4", "1,0,4", "1,2,2", "1,2,17", "garbage", "1,2", "1,2,4,4",
        "-1,2,4",
    ] {
        add(
            &format!("Hash-Lengths {v:?}"),
            set(z, "Hash-Lengths", v),
            "Hash-Lengths",
        );
    }
    add(
        "one checksum byte short",
        z[..z.len() - 1].to_vec(),
        "truncated",
    );
    let head_len = header_len(z);
    add("no block table", z[..head_len].to_vec(), "truncated");
    add("no blank line", z[..head_len - 1].to_vec(), "blank line");
    for key in ["Length", "Blocksize", "SHA-1"] {
        let l = line(z, key);
        add(
            &format!("{key} twice"),
            edit(z, &l, &format!("{l}{l}")),
            "duplicate",
        );
        if key != "SHA-1" {
            add(&format!("no {key}"), edit(z, &l, ""), key);
        }
    }
    add(
        "NUL in a value",
        edit(z, "Filename: t.bin", "Filename: t\0.bin"),
        "control character",
    );
    add("NUL line", insert(z, "\0\0\0\n"), "control character");
    add("NUL in a key", insert(z, "X\0Y: 1\n"), "control character");
    add(
        "CRLF blank line",
        map_header(z, |h| h.replace('\n', "\r\n")),
        "CRLF",
    );
    add("Z-Map2", insert(z, "Z-Map2: 17\n"), "compressed");
    add("Z-URL", insert(z, "Z-URL: t.bin.gz\n"), "compressed");
    add("Min-Version 9.9", insert(z, "Min-Version: 9.9\n"), "9.9");
    add("zsync 0.0.4", set(z, "zsync", "0.0.4"), "0.0.4");
    add("SHA-1 too short", set(z, "SHA-1", "abc"), "SHA-1");
    add("not Key: value", insert(z, "Bad line\n"), "Key: value");
    add("binary garbage", Rng(7).bytes(4096), "not a zsync");
    add("empty file", Vec::new(), "empty");
    let mut garbage = Rng(8).bytes(10 << 20);
    for b in &mut garbage {
        if *b == b'\n' {
            *b = b'.';
        }
    }
    add("10 MB of garbage, no newline", garbage, "not a zsync");
    let long = [
        &b"zsync: 0.6.2\nX-Long: "[..],
        &vec![b'a'; 10 << 20],
        b"\n\n",
    ]
    .concat();
    add("10 MB header line", long, "1 MiB");
    cases
}

#[test]
fn hostile_control_files_are_one_line_errors_and_touch_nothing() {
    let site = Site::new(20_000);
    let cases = hostile_cases(&site.zsync);
    let mut failures = Vec::new();
    for (what, bytes, needle) in &cases {
        let d = site.scratch(bytes);
        let before = snapshot(d.path());
        let ranges = site.ranges(&d, MEMORY_LIMIT);
        let client = site.zsync(&d, MEMORY_LIMIT, &["-o", "out"]);
        let mut problems = Vec::new();
        if !ranges.stdout.is_empty() {
            problems.push(format!("zsyncranges printed on stdout\n{ranges}"));
        }
        problems.extend(ranges.failed_with(1, needle).err());
        problems.extend(client.failed_with(3, needle).err());
        let changed = changes(&before, &snapshot(d.path()));
        if !changed.is_empty() {
            problems.push(format!("files changed: {changed}\n{client}"));
        }
        if !problems.is_empty() {
            failures.push(format!("== {what}:\n{}", problems.join("\n")));
        }
    }
    assert!(
        site.srv.requests().is_empty(),
        "a rejected .zsync made a request: {:?}",
        site.srv.requests()
    );
    assert!(
        failures.is_empty(),
        "{} of {} hostile files were not rejected cleanly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// 2. Odd but acceptable control files
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_headers_crlf_lines_and_trailing_spaces_are_accepted() {
    let site = Site::new(20_000);
    let z = &site.zsync;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "unknown headers",
            insert(
                z,
                "X-Unknown: 1\nLicense: GPL: or not\nSafe: nothing\nweird key: v\n",
            ),
        ),
        (
            "CRLF lines, LF blank line",
            map_header(z, |h| h[..h.len() - 1].replace('\n', "\r\n") + "\n"),
        ),
        (
            "trailing spaces",
            map_header(z, |h| h[..h.len() - 1].replace('\n', "  \n") + "\n"),
        ),
        ("no zsync line", edit(z, &line(z, "zsync"), "")),
    ];
    for (what, bytes) in cases {
        let d = site.scratch(&bytes);
        let r = site.ranges(&d, &[]);
        r.ok();
        assert_eq!(r.stdout, site.json, "{what}\n{r}");
        let c = site.zsync(&d, &[], &["-q", "-o", "out"]);
        c.ok();
        let work = d.path().join("work");
        assert!(
            fs::read(work.join("out")).unwrap() == site.target,
            "{what}\n{c}"
        );
        let names: Vec<String> = snapshot(&work).into_keys().collect();
        assert_eq!(names, ["case.zsync", "out", "out.zs-old"], "{what}\n{c}");
    }
}

#[test]
fn without_a_url_ranges_work_and_the_client_needs_a_complete_seed() {
    let site = Site::new(20_000);
    let z = edit(&site.zsync, &line(&site.zsync, "URL"), "");
    let d = site.scratch(&z);
    let work = d.path().join("work");
    let r = site.ranges(&d, &[]);
    r.ok();
    assert_eq!(r.stdout, site.json, "{r}");

    // Data missing and nowhere to get it from: exit 3, and nothing is written.
    let before = snapshot(d.path());
    let c = site.zsync(&d, &[], &["-q", "-o", "out"]);
    c.failed_with(3, "URL").unwrap();
    assert_eq!(changes(&before, &snapshot(d.path())), "", "{c}");

    // A URL that does not answer: exit 3; `out` is intact (`out.part` may stay, to resume).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    d.write(
        "work/case.zsync",
        &set(
            &site.zsync,
            "URL",
            &format!("http://127.0.0.1:{closed}/t.bin"),
        ),
    );
    let before = snapshot(d.path());
    let c = site.zsync(&d, &[], &["-q", "-o", "out"]);
    assert_eq!(c.code, Some(3), "{c}");
    assert_eq!(c.stderr.lines().count(), 1, "{c}");
    assert!(c.stderr.contains("127.0.0.1"), "{c}");
    let changed = changes(&before, &snapshot(d.path()));
    assert!(
        changed.is_empty() || changed == "+work/out.part",
        "{changed}\n{c}"
    );
    let _ = fs::remove_file(work.join("out.part"));

    // A seed with everything: no URL needed, no request made.
    d.write("work/case.zsync", &z);
    d.write("work/full", &site.target);
    let c = site.zsync(&d, &[], &["-q", "-i", "full", "-o", "out"]);
    c.ok();
    assert!(fs::read(work.join("out")).unwrap() == site.target, "{c}");
    assert!(site.srv.requests().is_empty(), "{:?}", site.srv.requests());
}

#[test]
fn unsafe_filename_without_o_writes_nothing() {
    let site = Site::new(20_000);
    let abs = std::env::temp_dir().join(format!("zsync3-evil-{}", std::process::id()));
    let abs = abs.to_str().unwrap();
    let long = format!("a/{}", "b".repeat(100_000));
    for bad in ["../evil", "sub/evil", "a/../b", "..", ".", abs, "-o", &long] {
        let d = site.scratch(&set(&site.zsync, "Filename", bad));
        // zsyncranges does not care about the name.
        let r = site.ranges(&d, &[]);
        r.ok();
        assert_eq!(r.stdout, site.json, "{bad:?}\n{r}");
        let before = snapshot(d.path());
        let c = site.zsync(&d, &[], &[]);
        c.failed_with(3, "Filename").unwrap();
        assert!(c.stderr.contains("-o"), "should suggest -o\n{c}");
        assert_eq!(changes(&before, &snapshot(d.path())), "", "{bad:?}\n{c}");
        for p in [abs.to_string(), format!("{abs}.part")] {
            assert!(!Path::new(&p).exists(), "{p} was created\n{c}");
        }
    }
    assert!(site.srv.requests().is_empty(), "{:?}", site.srv.requests());
}

// ---------------------------------------------------------------------------------------
// 3. Odd places to write to
// ---------------------------------------------------------------------------------------

#[test]
fn seed_equal_to_output_is_updated_in_place() {
    let site = Site::new(200_000);
    let d = site.scratch(&site.zsync);
    let c = site.zsync(&d, &[], &["-q", "-i", "out", "-o", "out"]);
    c.ok();
    let work = d.path().join("work");
    assert!(fs::read(work.join("out")).unwrap() == site.target, "{c}");
    assert!(
        fs::read(work.join("out.zs-old")).unwrap() == site.old,
        "{c}"
    );
    let names: Vec<String> = snapshot(&work).into_keys().collect();
    assert_eq!(names, ["case.zsync", "out", "out.zs-old"], "{c}");
    // Only the two changed blocks were fetched.
    assert!(site.bytes_asked() <= 2 * BS as u64, "{c}");
}

#[test]
fn output_in_another_directory() {
    let site = Site::new(200_000);
    let d = site.scratch(&site.zsync);
    fs::create_dir(d.path().join("other")).unwrap();
    let before = snapshot(&d.path().join("work"));
    let c = site.zsync(&d, &[], &["-q", "-i", "out", "-o", "../other/new"]);
    c.ok();
    assert_eq!(snapshot(&d.path().join("work")), before, "{c}");
    let other = snapshot(&d.path().join("other"));
    assert_eq!(other.keys().collect::<Vec<_>>(), ["new"], "{c}");
    assert!(other["new"] == site.target, "{c}");
    assert!(site.bytes_asked() <= 2 * BS as u64, "{c}");
}

#[test]
fn read_only_output_directory_is_a_local_error() {
    let site = Site::new(200_000);
    let d = site.scratch(&site.zsync);
    let ro = d.path().join("ro");
    d.write("ro/out", &site.old);
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores permission bits: run as nobody.
    let nobody: &[&str] = if is_root() {
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]
    } else {
        &[]
    };
    let before = snapshot(d.path());
    let c = site.zsync(&d, nobody, &["-q", "-o", "../ro/out"]);
    let after = snapshot(d.path());
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
    c.failed_with(1, "Permission denied").unwrap();
    assert!(c.stderr.contains("ro/out"), "names the file\n{c}");
    assert_eq!(changes(&before, &after), "", "{c}");
    assert!(site.srv.requests().is_empty(), "{:?}", site.srv.requests());
}

/// A tmpfs mounted for one test; unmounted when dropped (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mount a tmpfs of `size` (e.g. `1m`) on the new directory `dir`. When that is not
    /// permitted: `None` (the test is skipped) if `ZSYNC3_SKIP_MOUNT=1`, else a panic.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs(dir.to_path_buf())),
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        if std::env::var("ZSYNC3_SKIP_MOUNT").as_deref() == Ok("1") {
            eprintln!("SKIPPED (ZSYNC3_SKIP_MOUNT=1): cannot mount a tmpfs: {why}");
            return None;
        }
        panic!(
            "cannot mount a tmpfs on {} ({why}); run as root, or set ZSYNC3_SKIP_MOUNT=1 to skip",
            dir.display()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn disk_full_while_updating_is_a_local_error() {
    let site = Site::new(3 << 20);
    let d = site.scratch(&site.zsync);
    let Some(mnt) = Tmpfs::mount(&d.path().join("mnt"), "1m") else {
        return;
    };
    // The old version (its first 300 kB) lives on the small file system.
    d.write("mnt/out", &site.old[..300_000]);
    let before = snapshot(d.path());
    let c = site.zsync(&d, &[], &["-q", "-o", "../mnt/out"]);
    let after = snapshot(d.path());
    drop(mnt);
    c.failed_with(1, "No space left on device").unwrap();
    assert!(c.stderr.contains("mnt/out"), "names the file\n{c}");
    // `out` is intact; what was obtained may stay in `out.part`, nothing else.
    let changed = changes(&before, &after);
    assert!(
        changed.is_empty() || changed == "+mnt/out.part",
        "{changed}\n{c}"
    );
    // Unmounted, the directory is as before, the rest untouched.
    let mut want = before.clone();
    want.retain(|k, _| !k.starts_with("mnt/") || k == "mnt/");
    assert_eq!(changes(&want, &snapshot(d.path())), "", "{c}");
}

#[test]
fn zsyncmake_into_a_full_disk_leaves_no_partial_zsync() {
    let d = TempDir::new("hostile-make");
    d.write("in.bin", &test_data(4 << 20, 4));
    let Some(_mnt) = Tmpfs::mount(&d.path().join("mnt"), "1m") else {
        return;
    };
    // With -b 16 the .zsync needs about 2.9 MB.
    for old in [Some(&b"the old .zsync\n"[..]), None] {
        let _ = fs::remove_file(d.path().join("mnt/in.bin.zsync"));
        if let Some(o) = old {
            d.write("mnt/in.bin.zsync", o);
        }
        let before = snapshot(d.path());
        let args = [
            "-b",
            "16",
            "-u",
            "in.bin",
            "-o",
            "mnt/in.bin.zsync",
            "in.bin",
        ];
        let m = run(d.path(), &[], "zsyncmake", &args);
        m.failed_with(2, "No space left on device").unwrap();
        assert_eq!(changes(&before, &snapshot(d.path())), "", "{m}");
    }
}

#[test]
fn a_full_standard_output_is_an_error_not_a_crash() {
    let site = Site::new(20_000);
    let d = site.scratch(&site.zsync);
    let work = d.path().join("work");
    let full = || Stdio::from(fs::File::create("/dev/full").expect("/dev/full"));
    let r = run_to(&work, &[], "zsyncranges", &["case.zsync", "out"], full());
    r.failed_with(1, "standard output: No space left on device")
        .unwrap();
    let m = run_to(
        &work,
        &[],
        "zsyncmake",
        &["-u", "out", "-o", "-", "out"],
        full(),
    );
    m.failed_with(2, "No space left on device").unwrap();
}
