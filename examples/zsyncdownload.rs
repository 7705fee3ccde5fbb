//! zsyncdownload: what a download manager does with `zsyncranges`.
//!
//! ```text
//! cargo run --example zsyncdownload -- ZSYNC_URL SEEDFILE OUTFILE
//! ```
//!
//! 1. fetches the .zsync with curl (to a temporary file that is removed afterwards);
//! 2. runs `zsyncranges` (from `$ZSYNCRANGES`, next to this program, or `$PATH`) and parses
//!    its JSON;
//! 3. builds OUTFILE.part: the reused ranges are copied from the seed (bytes past the seed's
//!    end are zeros), the missing ranges are downloaded one by one with `curl --range`,
//!    each response checked for its exact length;
//! 4. checks the SHA-1 and renames OUTFILE.part to OUTFILE.
//!
//! URLs go to curl as arguments, never through a shell. Relative URLs in the .zsync are
//! resolved against the .zsync's URL.
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use sha1::{Digest, Sha1};

fn curl(args: &[&str], url: &str) -> Result<Vec<u8>, String> {
    let out = Command::new("curl")
        .args([
            "--fail",
            "--silent",
            "--show-error",
            "--location",
            "--globoff",
        ])
        .args(args)
        .arg("--url")
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl failed for {url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

fn zsyncranges() -> PathBuf {
    if let Some(p) = std::env::var_os("ZSYNCRANGES") {
        return p.into();
    }
    let sibling = std::env::current_exe().ok().and_then(|e| {
        // target/<profile>/examples/zsyncdownload → target/<profile>/zsyncranges
        Some(e.parent()?.parent()?.join("zsyncranges"))
    });
    match sibling {
        Some(s) if s.exists() => s,
        _ => "zsyncranges".into(),
    }
}

fn run(zsync_url: &str, seed: &Path, out: &Path) -> Result<(), String> {
    // 1. The control file.
    let control = curl(&[], zsync_url)?;
    let tmp = std::env::temp_dir().join(format!("zsyncdownload-{}.zsync", std::process::id()));
    fs::write(&tmp, &control).map_err(|e| format!("{}: {e}", tmp.display()))?;
    // 2. The plan.
    let plan = Command::new(zsyncranges()).arg(&tmp).arg(seed).output();
    let _ = fs::remove_file(&tmp);
    let plan = plan.map_err(|e| format!("cannot run zsyncranges: {e}"))?;
    if !plan.status.success() {
        return Err(String::from_utf8_lossy(&plan.stderr).trim().to_string());
    }
    let plan: serde_json::Value =
        serde_json::from_slice(&plan.stdout).map_err(|e| e.to_string())?;
    let length = plan["length"].as_u64().ok_or("no length in the plan")?;
    let sha1 = plan["checksum"]["SHA-1"]
        .as_str()
        .ok_or("no SHA-1 in the plan")?
        .to_string();
    let header = zsync3::control::ControlFile::parse_header(&control)
        .map_err(|e| e.to_string())?
        .0;
    let url = header
        .urls
        .iter()
        .find_map(|u| zsync3::urljoin::resolve(zsync_url, u))
        .ok_or("the .zsync has no usable URL")?;
    // 3. Assemble.
    let part = PathBuf::from(format!("{}.part", out.display()));
    let mut f = File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?;
    f.set_len(length).map_err(|e| e.to_string())?;
    let mut s = File::open(seed).map_err(|e| format!("{}: {e}", seed.display()))?;
    for r in plan["reuse"].as_array().ok_or("bad plan")? {
        let [dst, src, len] = [0, 1, 2].map(|k| r[k].as_u64().unwrap_or(0));
        let mut buf = vec![0u8; len as usize];
        s.seek(SeekFrom::Start(src)).map_err(|e| e.to_string())?;
        let mut got = 0;
        while got < buf.len() {
            match s.read(&mut buf[got..]).map_err(|e| e.to_string())? {
                0 => break, // past the seed's end: zeros
                n => got += n,
            }
        }
        f.seek(SeekFrom::Start(dst))
            .and_then(|_| f.write_all(&buf))
            .map_err(|e| e.to_string())?;
    }
    for d in plan["download"].as_array().ok_or("bad plan")? {
        let (start, end) = (d[0].as_u64().unwrap_or(0), d[1].as_u64().unwrap_or(0));
        let body = curl(&["--range", &format!("{start}-{end}")], &url)?;
        if body.len() as u64 != end - start + 1 {
            return Err(format!("asked for bytes {start}-{end} of {url}, got {} bytes (does the server support Range?)", body.len()));
        }
        f.seek(SeekFrom::Start(start))
            .and_then(|_| f.write_all(&body))
            .map_err(|e| e.to_string())?;
    }
    drop(f);
    // 4. Verify and install.
    let got = zsync3::strong::hex(&Sha1::digest(fs::read(&part).map_err(|e| e.to_string())?));
    if got != sha1 {
        return Err(format!(
            "SHA-1 mismatch: got {got}, expected {sha1}; left in {}",
            part.display()
        ));
    }
    fs::rename(&part, out).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{}: {} bytes, {} reused ranges, {} downloaded ranges, SHA-1 OK",
        out.display(),
        length,
        plan["reuse"].as_array().map_or(0, |a| a.len()),
        plan["download"].as_array().map_or(0, |a| a.len())
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: zsyncdownload ZSYNC_URL SEEDFILE OUTFILE");
        return ExitCode::from(1);
    }
    match run(&args[1], Path::new(&args[2]), Path::new(&args[3])) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zsyncdownload: {e}");
            ExitCode::from(1)
        }
    }
}
