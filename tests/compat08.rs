//! zsync 0.8 control files (upstream's current format): `Strong-Hash-Algorithm` MD5 and
//! SHA-224, `File-Hash: SHA-256`, no `Hash-Lengths`; made by an independent Python writer.
mod common;
mod nginx;
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{run, scratch, Rng};

fn zs08(dir: &Path, file: &str, bs: u32, alg: &str, url: &str, hl: &str) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/zs08.py");
    let o = Command::new("python3")
        .arg(script)
        .arg(dir.join(file))
        .args([&bs.to_string(), alg, url, hl])
        .output()
        .expect("python3 is needed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn zsyncranges_reads_08_files_like_06_files() {
    let d = scratch("compat08-ranges");
    let mut rng = Rng(0x08);
    let target = rng.data(50_000);
    let seed = rng.mutate(&target);
    fs::write(d.join("t"), &target).unwrap();
    fs::write(d.join("seed"), &seed).unwrap();
    let o = run(
        "zsyncmake",
        &["-M", "-b", "1024", "-u", "t", "-o", "t.zsync", "t"],
        &d,
    );
    assert!(o.status.success());
    let want = json(&run("zsyncranges", &["t.zsync", "seed"], &d));
    let sha256 = {
        use sha2::Digest;
        zsync3::strong::hex(&sha2::Sha256::digest(&target))
    };
    for (alg, hl) in [
        ("MD5", "-"),
        ("SHA-224", "-"),
        ("MD4", "-"),
        ("SHA-224", "1,4,28"),
        ("MD5", "1,3,8"),
    ] {
        fs::write(d.join("t08.zsync"), zs08(&d, "t", 1024, alg, "t", hl)).unwrap();
        let got = json(&run("zsyncranges", &["t08.zsync", "seed"], &d));
        assert_eq!(got["reuse"], want["reuse"], "{alg} {hl}");
        assert_eq!(got["download"], want["download"], "{alg} {hl}");
        assert_eq!(got["checksum"]["SHA-256"], sha256.as_str(), "{alg}");
        assert!(got["checksum"].get("SHA-1").is_none());
    }
    // Hash-Lengths longer than the algorithm's digest are refused.
    let mut bad = zs08(&d, "t", 1024, "MD5", "t", "-");
    let text = String::from_utf8_lossy(&bad).replace(
        "Strong-Hash-Algorithm: MD5\n",
        "Strong-Hash-Algorithm: MD5\nHash-Lengths: 1,4,20\n",
    );
    bad = text.into_bytes();
    fs::write(d.join("bad.zsync"), &bad).unwrap();
    let o = run("zsyncranges", &["bad.zsync", "seed"], &d);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("more than the 16 bytes"));
}

/// `zsync -q -i old -o new ZSYNC` in `cli`.
fn update_new(zsync: &Path, cli: &Path) -> std::process::Output {
    run(
        "zsync",
        &["-q", "-i", "old", "-o", "new", zsync.to_str().unwrap()],
        cli,
    )
}

#[test]
fn client_updates_from_08_files_and_checks_sha256() {
    let d = scratch("compat08-client");
    let srv = d.join("srv");
    let cli = d.join("cli");
    fs::create_dir_all(&srv).unwrap();
    fs::create_dir_all(&cli).unwrap();
    let mut rng = Rng(0x0808);
    let target = rng.data(200_000);
    fs::write(srv.join("app"), &target).unwrap();
    fs::write(cli.join("old"), rng.mutate(&target)).unwrap();
    for alg in ["MD5", "SHA-224"] {
        fs::write(
            srv.join("app.zsync"),
            zs08(&srv, "app", 2048, alg, "app", "-"),
        )
        .unwrap();
        let o = update_new(&srv.join("app.zsync"), &cli);
        assert!(
            o.status.success(),
            "{alg}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(fs::read(cli.join("new")).unwrap(), target, "{alg}");
        fs::remove_file(cli.join("new")).unwrap();
    }
    // A wrong SHA-256 (right blocks): exit 2, the output is not created.
    let good = zs08(&srv, "app", 2048, "MD5", "app", "-");
    let text = String::from_utf8_lossy(&good).into_owned();
    let at = text.find("File-Hash: SHA-256:").unwrap() + "File-Hash: SHA-256:".len();
    let mut bad = good.clone();
    bad[at] = if bad[at] == b'0' { b'1' } else { b'0' };
    fs::write(srv.join("bad.zsync"), &bad).unwrap();
    let o = update_new(&srv.join("bad.zsync"), &cli);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("SHA-256"));
    assert!(!cli.join("new").exists());
    assert!(cli.join("new.part").exists());
}

/// `zsyncmake --sha256` adds the header behind `Safe:`, so zsync 0.6.2 still accepts it.
#[test]
fn sha256_flag_stays_compatible_with_debian_zsync() {
    let d = scratch("compat08-flag");
    let mut rng = Rng(0x256);
    let target = rng.data(100_000);
    fs::write(d.join("f"), &target).unwrap();
    let o = run("zsyncmake", &["-M", "--sha256", "-u", "f", "f"], &d);
    assert!(o.status.success());
    let z = fs::read(d.join("f.zsync")).unwrap();
    let text = String::from_utf8_lossy(&z);
    assert!(text.contains("\nSHA-1: ") && text.contains("\nSafe: File-Hash\nFile-Hash: SHA-256:"));
    // Our own reader verifies both.
    let o = run("zsync", &["-q", "-o", "copy", "f.zsync"], &d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::read(d.join("copy")).unwrap(), target);
    // Debian's zsync 0.6.2 over a real nginx.
    if !nginx::nginx_available()
        || !nginx::require(
            "/usr/bin/zsync",
            "ZSYNC3_SKIP_DEBIAN_ZSYNC",
            "apt-get install -y zsync",
        )
    {
        return;
    }
    let web = support::TempDir::new("compat08-nginx");
    fs::copy(d.join("f"), web.path().join("f")).unwrap();
    fs::copy(d.join("f.zsync"), web.path().join("f.zsync")).unwrap();
    let server = nginx::Nginx::start(web.path(), None);
    let o = Command::new("/usr/bin/zsync")
        .args(["-q", "-o", "deb", &server.url("/f.zsync")])
        .current_dir(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::read(d.join("deb")).unwrap(), target);
}
