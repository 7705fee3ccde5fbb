//! The command-line tools against the reference vectors, every flag and every error path.
mod common;

use std::fs;
use std::process::Command;

use common::{bin, run, scratch, vectors};

/// Every run of `zsyncranges_expected.txt` gives exactly that output and exit code.
#[test]
fn zsyncranges_reference_runs() {
    let text = fs::read_to_string(vectors().join("zsyncranges_expected.txt")).unwrap();
    let mut count = 0;
    for block in text.split("$ zsyncranges ").skip(1) {
        let mut lines = block.lines();
        let args: Vec<&str> = lines.next().unwrap().split(' ').collect();
        let rest: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
        let (expected_out, code) = rest.split_at(rest.len() - 1);
        let code: i32 = code[0]
            .trim_start_matches("[exit ")
            .trim_end_matches(']')
            .parse()
            .unwrap();
        let out = run("zsyncranges", &args, &vectors());
        if expected_out[0].starts_with("Not a zsync file") {
            // The reference rejects an empty target (SPEC [S2]); zsync3 accepts it.
            assert_eq!(out.status.code(), Some(0));
            assert!(String::from_utf8_lossy(&out.stdout).contains("\"length\":0,"));
            assert!(
                String::from_utf8_lossy(&out.stdout).ends_with("\"reuse\":[],\"download\":[]}\n")
            );
            count += 1;
            continue;
        }
        let mut combined = String::from_utf8(out.stdout).unwrap();
        combined.push_str(&String::from_utf8(out.stderr).unwrap());
        assert_eq!(
            combined.trim_end(),
            expected_out.join("\n"),
            "zsyncranges {args:?}"
        );
        assert_eq!(out.status.code(), Some(code), "zsyncranges {args:?}");
        // The same with the .zsync on stdin.
        if code == 0 {
            let zs = fs::read(vectors().join(args[0])).unwrap();
            let mut child = Command::new(bin("zsyncranges"))
                .args(["-", args[1]])
                .current_dir(vectors())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&zs).unwrap();
            let o = child.wait_with_output().unwrap();
            assert_eq!(
                String::from_utf8(o.stdout).unwrap().trim_end(),
                expected_out.join("\n")
            );
        }
        count += 1;
    }
    assert_eq!(count, 21);
}

#[test]
fn zsyncranges_empty_target_and_usage() {
    let d = scratch("cli-ranges");
    fs::copy(vectors().join("v0.zsync3.zsync"), d.join("v0.zsync")).unwrap();
    fs::write(d.join("seed"), b"anything").unwrap();
    let o = run("zsyncranges", &["v0.zsync", "seed"], &d);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "{\"length\":0,\"checksum\":{\"SHA-1\":\"da39a3ee5e6b4b0d3255bfef95601890afd80709\"},\"reuse\":[],\"download\":[]}\n"
    );
    assert_eq!(o.status.code(), Some(0));
    for args in [&[][..], &["v0.zsync"][..], &["a", "b", "c"][..]] {
        let o = run("zsyncranges", args, &d);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("Usage"));
    }
    // Hostile control files: one line on stderr, exit 1, no panic.
    let cases: &[(&[u8], &str)] = &[
        (b"garbage\x00\xff", "not a zsync"),
        (
            b"zsync: 0.6.2\nBlocksize: 2048\nLength: 9223372036854775807\n\n",
            "too large",
        ),
        (
            b"zsync: 0.6.2\nBlocksize: 2048\nLength: 100000000\n\n",
            "truncated",
        ),
        (b"zsync: 0.6.2\nBlocksize: 3\nLength: 5\n\n", "power of two"),
        (
            b"zsync: 0.6.2\nBlocksize: 2048\nLength: 5\nHash-Lengths: 9,9,9\n\n",
            "Hash-Lengths",
        ),
        (
            b"zsync: 0.6.2\r\nBlocksize: 2048\r\nLength: 5\r\n\r\n",
            "CRLF",
        ),
    ];
    for (zs, want) in cases {
        fs::write(d.join("bad.zsync"), zs).unwrap();
        let o = run("zsyncranges", &["bad.zsync", "seed"], &d);
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{err:?} should mention {want}");
        assert_eq!(err.lines().count(), 1, "{err:?}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn zsyncmake_reference_vectors_with_mtime_and_without() {
    let d = scratch("cli-make");
    for (name, b) in [
        ("v0", "2048"),
        ("v1", "2048"),
        ("v2049", "2048"),
        ("s10000", "2048"),
        ("abc27", "8"),
    ] {
        fs::copy(vectors().join(name), d.join(name)).unwrap();
        let f = fs::File::options().write(true).open(d.join(name)).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1704164645))
            .unwrap();
        drop(f);
        let out = format!("{name}.out");
        let o = Command::new(bin("zsyncmake"))
            .args(["-b", b, "-u", name, "-o", &out, name])
            .current_dir(&d)
            .env("TZ", "Asia/Tokyo")
            .output()
            .unwrap();
        assert!(o.status.success());
        let want = fs::read(vectors().join(format!("{name}.zsync3.zsync"))).unwrap();
        assert_eq!(fs::read(d.join(&out)).unwrap(), want, "{name}");
        // -M drops exactly the MTime line.
        let o = run(
            "zsyncmake",
            &["-M", "-b", b, "-u", name, "-o", &out, name],
            &d,
        );
        assert!(o.status.success());
        let text = String::from_utf8_lossy(&want).into_owned();
        let mline = text.lines().find(|l| l.starts_with("MTime: ")).unwrap();
        let mut without = want.clone();
        let at = text.find(mline).unwrap();
        without.drain(at..at + mline.len() + 1);
        assert_eq!(fs::read(d.join(&out)).unwrap(), without, "{name} -M");
    }
}

#[test]
fn zsyncmake_defaults_and_naming() {
    let d = scratch("cli-make-names");
    fs::create_dir_all(d.join("sub/dir")).unwrap();
    fs::write(d.join("sub/dir/file"), b"hello world\n").unwrap();
    fs::create_dir_all(d.join("work")).unwrap();
    let o = run("zsyncmake", &["-M", "../sub/dir/file"], &d.join("work"));
    assert!(o.status.success());
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("No URL given") && err.contains("Use -u ../sub/dir/file"),
        "{err}"
    );
    let z = String::from_utf8_lossy(&fs::read(d.join("work/file.zsync")).unwrap()).into_owned();
    assert!(z.starts_with("zsync: 0.6.2\nFilename: file\nBlocksize: 2048\nLength: 12\nHash-Lengths: 1,2,4\nURL: ../sub/dir/file\nSHA-1: "));
    // Options after the operand, clustered flags, attached values.
    let o = run(
        "zsyncmake",
        &[
            "../sub/dir/file",
            "-vM",
            "-b8",
            "-uhttp://x/y",
            "-f",
            "name",
        ],
        &d.join("work"),
    );
    assert!(o.status.success());
    let z = String::from_utf8_lossy(&fs::read(d.join("work/name.zsync")).unwrap()).into_owned();
    assert!(z.contains("Filename: name\nBlocksize: 8\n") && z.contains("URL: http://x/y\n"));
    assert!(String::from_utf8(o.stderr)
        .unwrap()
        .contains("12 bytes, 2 blocks of 8"));
    // stdin without -f/-o goes to stdout, with no Filename and no URL.
    let mut child = Command::new(bin("zsyncmake"))
        .current_dir(&d)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"abc").unwrap();
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("zsync: 0.6.2\nBlocksize: 2048\nLength: 3\nHash-Lengths: 1,2,4\nSHA-1: a9993e364706816aba3e25717850c26c9cd0d89d\n\n"), "{text}");
    // Multiple -u keep their order.
    let o = run(
        "zsyncmake",
        &["-M", "-u", "a", "-u", "b", "-o", "-", "sub/dir/file"],
        &d,
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("URL: a\nURL: b\nSHA-1"));
}

#[test]
fn zsyncmake_errors() {
    let d = scratch("cli-make-err");
    fs::write(d.join("f"), b"data").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["-b", "3", "f"], "power of 2"),
        (&["-b", "0", "f"], "power of 2"),
        (&["-b", "abc", "f"], "invalid value"),
        (
            &["-o", "a", "-o", "b", "f"],
            "cannot be used multiple times",
        ),
        (
            &["-f", "a", "-f", "b", "f"],
            "cannot be used multiple times",
        ),
        (&["-Z", "f"], "unexpected argument"),
        (&["-e", "f"], "unexpected argument"),
        (&["f", "g"], "unexpected argument"),
        (&["missing"], "missing: No such file or directory"),
        (&["."], "is a directory"),
        (&["-u", "", "f"], "must not be empty"),
        (&["-u", "a\nEvil: 1", "f"], "control characters"),
        (&["-f", "x\ny", "f"], "control characters"),
        (&["-o", "nodir/out.zsync", "f"], "nodir"),
    ];
    for (args, want) in cases {
        let o = run("zsyncmake", args, &d);
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err:?} should say {want}");
    }
    // No output file was created by any failure.
    let mut names: Vec<String> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["f"]);
    // -o may name the input itself.
    let o = run("zsyncmake", &["-M", "-o", "f", "f"], &d);
    assert!(o.status.success());
    assert!(fs::read_to_string(d.join("f"))
        .unwrap()
        .contains("Length: 4\n"));
}

#[test]
fn zsyncmake_help_explains() {
    let o = run("zsyncmake", &["--help"], &scratch("help"));
    let h = String::from_utf8(o.stdout).unwrap();
    for w in ["-b", "-o", "-f", "-u", "-M", "power of two", "Filename"] {
        assert!(h.contains(w), "--help lacks {w}");
    }
}

/// `zsyncranges -j N` prints the same plan for every N, on a seed large enough (several
/// 2 MiB chunks) for the worker threads to run, with moved, repeated and new data; and the
/// plan is true.
#[test]
fn zsyncranges_threads_give_the_same_output() {
    let d = scratch("cli-ranges-threads");
    let mut rng = common::Rng(0x7e4d_0001);
    let target = rng.data(9 << 20);
    let mut seed = rng.mutate(&target);
    seed.extend_from_slice(&target[1 << 20..3 << 20]);
    seed.extend(rng.bytes(1 << 20));
    seed.extend_from_slice(&target[..5 << 20]);
    fs::write(d.join("t"), &target).unwrap();
    fs::write(d.join("seed"), &seed).unwrap();
    let o = run("zsyncmake", &["-M", "-b", "1024", "-o", "t.zsync", "t"], &d);
    assert_eq!(o.status.code(), Some(0));
    let outs: Vec<Vec<u8>> = ["1", "2", "3", "8"]
        .iter()
        .map(|j| {
            let o = run("zsyncranges", &["-j", j, "t.zsync", "seed"], &d);
            assert_eq!(o.status.code(), Some(0), "-j {j}");
            o.stdout
        })
        .collect();
    assert!(outs.windows(2).all(|w| w[0] == w[1]));
    let c = zsync3::control::ControlFile::parse(&fs::read(d.join("t.zsync")).unwrap()).unwrap();
    let plan = zsync3::plan::Plan::compute_with(&c, &mut &seed[..], 1).unwrap();
    assert_eq!(
        String::from_utf8(outs[0].clone()).unwrap(),
        plan.to_json() + "\n"
    );
    let reused: u64 = plan.reuse.iter().map(|r| r.len).sum();
    assert!(reused > 8 << 20, "{reused}");
    for r in &plan.reuse {
        let (s, t) = (r.src as usize, r.dst as usize);
        assert_eq!(seed[s..s + r.len as usize], target[t..t + r.len as usize]);
    }
}
