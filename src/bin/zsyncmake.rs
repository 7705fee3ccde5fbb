//! zsyncmake: write the .zsync control file for a file you publish.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use zsync3::fsutil::write_atomically;
use zsync3::make::{check_blocksize, make, make_file, MakeOptions};
use zsync3::Error;

/// Make a .zsync control file: block checksums and the SHA-1 of INPUT (or of standard input),
/// so that zsync clients holding an older copy download only the blocks that changed.
///
/// The output is written to -o, else to FILENAME.zsync in the current directory, else (input
/// from stdin without -f) to standard output. It is written to a temporary file and renamed,
/// so a failure never leaves a half-written .zsync. Nothing in it depends on the build or
/// version of zsyncmake; with -M it depends only on the arguments and the data.
#[derive(Parser)]
#[command(name = "zsyncmake")]
struct Args {
    /// Block size in bytes, a power of two [default: 2048, or 4096 from 100 MB].
    #[arg(short = 'b', value_name = "BLOCKSIZE")]
    blocksize: Option<u64>,
    /// Output file.
    #[arg(short = 'o', value_name = "OUTFILE")]
    output: Option<PathBuf>,
    /// Value of the Filename header, the name clients save the file as [default: INPUT's basename].
    #[arg(short = 'f', value_name = "FILENAME")]
    filename: Option<String>,
    /// URL the file will be served from, absolute or relative to the .zsync (repeatable)
    /// [default: INPUT as given, relative].
    #[arg(short = 'u', value_name = "URL")]
    url: Vec<String>,
    /// Do not write the MTime header (reproducible output).
    #[arg(short = 'M')]
    no_mtime: bool,
    /// Print what was made to stderr.
    #[arg(short = 'v', action = ArgAction::Count)]
    verbose: u8,
    /// Also write the SHA-256 of the file (File-Hash header, zsync 0.8 style) for a stronger
    /// check by clients that know it; zsync 0.6 clients still accept the file.
    #[arg(long = "sha256")]
    sha256: bool,
    /// Threads for block checksums [default: one per core but one, which computes the
    /// SHA-1 meanwhile]. The output does not depend on it.
    #[arg(
        short = 'j',
        long = "threads",
        value_name = "N",
        default_value_t = 0,
        hide_default_value = true
    )]
    threads: usize,
    /// The file to describe [default: standard input].
    input: Option<PathBuf>,
}

/// Header values are single lines; a newline would inject headers.
fn check_header_value(what: &str, v: &str) -> Result<(), Error> {
    if v.is_empty() {
        return Err(Error::Usage(format!("{what} must not be empty")));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(Error::Usage(format!(
            "{what} must not contain control characters (newlines would corrupt the .zsync): {v:?}"
        )));
    }
    if v.starts_with(' ') || v.ends_with(' ') {
        return Err(Error::Usage(format!(
            "{what} must not start or end with a space: {v:?}"
        )));
    }
    Ok(())
}

fn run(args: Args) -> Result<(), Error> {
    if let Some(p) = &args.input {
        if std::fs::metadata(p).map_err(|e| Error::io(p, e))?.is_dir() {
            return Err(Error::io(p, std::io::Error::other("is a directory")));
        }
    }
    let blocksize = args.blocksize.map(check_blocksize).transpose()?;
    let filename = match (&args.filename, &args.input) {
        (Some(f), _) => Some(f.clone()),
        (None, Some(p)) => Some(
            p.file_name()
                .ok_or_else(|| Error::Usage(format!("{} does not name a file", p.display())))?
                .to_str()
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "{}: file name is not valid UTF-8; use -f",
                        p.display()
                    ))
                })?
                .to_string(),
        ),
        (None, None) => None,
    };
    if let Some(f) = &filename {
        check_header_value("the file name (-f)", f)?;
    }
    let mut urls = args.url.clone();
    for u in &urls {
        check_header_value("a URL (-u)", u)?;
    }
    if urls.is_empty() {
        if let Some(p) = &args.input {
            let typed = p.to_str().ok_or_else(|| {
                Error::Usage(format!("{}: path is not valid UTF-8; use -u", p.display()))
            })?;
            check_header_value("the input path used as URL", typed)?;
            eprintln!("No URL given, so I am including a relative URL in the .zsync file - you must keep the file being served and the .zsync in the same public directory. Use -u {typed} to get this same result without this warning.");
            urls.push(typed.to_string());
        }
    }
    let (made, label) = match &args.input {
        Some(p) => {
            let f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
            let meta = f.metadata().map_err(|e| Error::io(p, e))?;
            if meta.is_dir() {
                return Err(Error::io(p, std::io::Error::other("is a directory")));
            }
            let mtime = if args.no_mtime {
                None
            } else {
                let t = meta.modified().map_err(|e| Error::io(p, e))?;
                Some(match t.duration_since(std::time::UNIX_EPOCH) {
                    Ok(d) => d.as_secs() as i64,
                    Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
                })
            };
            let opts = MakeOptions {
                blocksize,
                filename: filename.clone(),
                mtime,
                urls,
                threads: args.threads,
                sha256: args.sha256,
            };
            let made = make_file(&f, &opts).map_err(|e| match e {
                Error::Stream(e) => Error::io(p, e),
                e => e,
            })?;
            (made, p.display().to_string())
        }
        None => {
            let size = std::fs::metadata("/dev/stdin")
                .map(|m| if m.is_file() { m.len() } else { 0 })
                .unwrap_or(0);
            let opts = MakeOptions {
                blocksize,
                filename: filename.clone(),
                mtime: None,
                urls,
                threads: args.threads,
                sha256: args.sha256,
            };
            let made = make(&mut std::io::stdin(), size, &opts).map_err(|e| match e {
                Error::Stream(e) => Error::io("standard input", e),
                e => e,
            })?;
            (made, "standard input".to_string())
        }
    };
    let out = args.output.clone().or_else(|| {
        filename
            .as_ref()
            .map(|f| PathBuf::from(format!("{f}.zsync")))
    });
    match &out {
        Some(path) if path != Path::new("-") => write_atomically(path, |w| made.write(w))?,
        _ => {
            let mut so = std::io::stdout().lock();
            made.write(&mut so)
                .and_then(|()| so.flush())
                .map_err(|e| Error::io("standard output", e))?;
        }
    }
    if args.verbose > 0 {
        let h = &made.header;
        eprintln!(
            "{label}: {} bytes, {} blocks of {}, Hash-Lengths {}, SHA-1 {}",
            h.length,
            h.num_blocks(),
            h.blocksize,
            h.hash_lengths,
            h.sha1.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zsyncmake: {e}");
            ExitCode::from(2)
        }
    }
}
