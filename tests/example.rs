//! The `zsyncdownload` example (built by `cargo test` with the other examples) against the
//! test server: a download manager driven by `zsyncranges`.
mod common;
mod support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::{bin, run, scratch, Rng};
use support::{Mode, TestServer};

fn example() -> PathBuf {
    bin("zsyncranges")
        .parent()
        .unwrap()
        .join("examples/zsyncdownload")
}

/// Run the example: `zsyncdownload URL seed OUT` in `dir`.
fn download(url: &str, dir: &std::path::Path, out: &str) -> std::process::Output {
    Command::new(example())
        .args([url, "seed", out])
        .env("ZSYNCRANGES", bin("zsyncranges"))
        .env("no_proxy", "*")
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn zsyncdownload_rebuilds_the_target() {
    let d = scratch("example");
    let srv = d.join("srv");
    fs::create_dir_all(&srv).unwrap();
    let mut rng = Rng(0xe4a);
    let target = rng.data(300_000);
    fs::write(srv.join("app"), &target).unwrap();
    fs::write(d.join("seed"), rng.mutate(&target)).unwrap();
    assert!(run(
        "zsyncmake",
        &["-M", "-u", "app", "-o", "srv/app.zsync", "srv/app"],
        &d
    )
    .status
    .success());
    let server = TestServer::start(&srv);
    let o = download(&server.url("/app.zsync"), &d, "out");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::read(d.join("out")).unwrap(), target);
    // A server that ignores Range is detected, and nothing is installed.
    server.set_mode(Mode::IgnoreRange);
    let o = download(&server.url("/app.zsync"), &d, "out2");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Range"));
    assert!(!d.join("out2").exists());
}
