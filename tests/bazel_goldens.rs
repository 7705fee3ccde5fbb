//! The golden .zsync files that tests/BUILD.bazel's `diff_test`s compare the `zsyncfile`
//! rule's output with, checked here against zsyncmake run with the rule's exact arguments.
//! So `cargo test` and `bazel test //tests:...` trust the same bytes.
//!
//! Runs under Cargo (`CARGO_BIN_EXE_zsyncmake`) and under Bazel (`ZSYNCMAKE`, set by the
//! rust_test in tests/BUILD.bazel). In both, the working directory is the repository root
//! (Cargo: the package root; Bazel: the runfiles tree of the main repository).

use std::path::PathBuf;
use std::process::Command;

fn zsyncmake() -> PathBuf {
    let exe = std::env::var_os("ZSYNCMAKE")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_BIN_EXE_zsyncmake").map(PathBuf::from))
        .expect("neither ZSYNCMAKE nor CARGO_BIN_EXE_zsyncmake is set");
    // A relative path (Bazel's rootpath) must not be looked up in PATH.
    std::env::current_dir().unwrap().join(exe)
}

fn scratch_dir() -> PathBuf {
    let base = std::env::var_os("TEST_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("zsync3-bazel-goldens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs zsyncmake exactly like the zsyncfile rule does and compares with the golden file.
fn check(golden: &str, input: &str, filename: &str, url: &str, blocksize: Option<u32>) {
    let out = scratch_dir().join(golden);
    let mut cmd = Command::new(zsyncmake());
    cmd.args(["-f", filename]).arg("-o").arg(&out).arg("-M");
    if let Some(b) = blocksize {
        cmd.args(["-b", &b.to_string()]);
    }
    cmd.args(["-u", url])
        .arg(format!("tests/bazel/files/{input}"));
    let status = cmd.status().expect("cannot run zsyncmake");
    assert!(status.success(), "{cmd:?} failed: {status}");
    let got = std::fs::read(&out).unwrap();
    let want = std::fs::read(format!("tests/bazel/expected/{golden}")).unwrap();
    assert!(
        got == want,
        "{cmd:?}: output differs from tests/bazel/expected/{golden}\n got: {:?}\nwant: {:?}",
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn empty() {
    check("empty.zsync", "empty", "empty", "empty", None);
}

#[test]
fn lorem_blocksize_8() {
    check("lorem_b8.zsync", "lorem", "lorem", "lorem", Some(8));
}

#[test]
fn explicit_url() {
    check(
        "url.zsync",
        "empty",
        "empty",
        "http://example.com/empty",
        None,
    );
}

#[test]
fn explicit_filename() {
    check("filename.zsync", "lorem", "lorem-1.0.txt", "lorem", None);
}
