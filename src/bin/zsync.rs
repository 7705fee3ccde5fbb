//! zsync: update a local file from a .zsync over HTTP(S), downloading only what changed.
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use zsync3::client::{update, Progress, Silent, UpdateOptions};
use zsync3::control::ControlFile;
use zsync3::fetch::curl::CurlFetcher;
use zsync3::fetch::RangeFetcher;
use zsync3::progress::{human, Bar};
use zsync3::{urljoin, Error};

/// Largest .zsync accepted (a 1 TB target at 4 KiB blocks needs about 3 GB; 1 GiB is plenty).
const MAX_CONTROL_FILE: u64 = 1 << 30;

/// Download a file described by a .zsync, reusing every block found in local files (the
/// old version, -i seeds, or an interrupted OUT.part) and fetching only the rest with HTTP
/// range requests through curl.
///
/// The result is assembled in OUT.part next to OUT, every downloaded block is checked
/// against its MD4 and the whole file against the SHA-1 of the .zsync; only then is OUT
/// replaced (atomically; the previous version is kept as OUT.zs-old, and its permissions
/// carry over). An interrupted run leaves OUT.part, which the next run reuses.
///
/// curl is run as `sh -c "$ZSYNC_CURL --fail-with-body --silent --show-error --location
/// --netrc ..."` (ZSYNC_CURL defaults to `curl`), so proxies, certificates and credentials
/// can be set there, e.g. ZSYNC_CURL='curl --cacert /etc/my-ca.pem'. URLs never pass
/// through the shell.
///
/// Exit status: 0 updated, 1 local I/O error, 2 the result failed verification (kept as
/// OUT.part), 3 bad usage, bad .zsync, or the data could not be downloaded.
#[derive(Parser)]
#[command(name = "zsync", args_override_self = true)]
struct Args {
    /// A local file with data of the target, e.g. an older version (repeatable).
    #[arg(short = 'i', value_name = "SEED")]
    seeds: Vec<PathBuf>,
    /// Output file [default: the Filename in the .zsync, in the current directory].
    #[arg(short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
    /// Base URL for relative URLs in the .zsync [default: the URL the .zsync came from].
    #[arg(short = 'u', value_name = "URL")]
    base_url: Option<String>,
    /// Also save the .zsync to this file.
    #[arg(short = 'k', value_name = "SAVED.zsync")]
    keep: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(short = 'q')]
    quiet: bool,
    /// Parallel curl processes.
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 4)]
    jobs: usize,
    /// Threads that scan the seed files [default: one per core].
    #[arg(
        long = "threads",
        value_name = "N",
        default_value_t = 0,
        hide_default_value = true
    )]
    threads: usize,
    /// URL (http, https, file) or local path of the .zsync.
    zsync: String,
}

fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Io { .. } | Error::Stream(_) => 1,
        Error::Verify(_) => 2,
        _ => 3,
    }
}

/// A safe output name from the Filename header: one plain path component.
fn output_from_filename(name: &str) -> Result<PathBuf, Error> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\\')
        || name.starts_with('-')
    {
        return Err(Error::Control(format!(
            "the Filename {} is not a plain file name; give the output name with -o",
            zsync3::error::quoted(name)
        )));
    }
    Ok(PathBuf::from(name))
}

fn run(args: Args, progress: &mut dyn Progress) -> Result<(), Error> {
    let mut fetcher = CurlFetcher::from_env().with_parallel(args.jobs);
    // Get the control file: a URL through curl, or a local file.
    let (bytes, origin) =
        if urljoin::is_absolute(&args.zsync) && !std::path::Path::new(&args.zsync).exists() {
            progress.message(&format!(
                "fetching {}",
                zsync3::fetch::url::redact_url(&args.zsync)
            ));
            let f = fetcher.get(&args.zsync, MAX_CONTROL_FILE)?;
            (f.body, Some(f.final_url))
        } else {
            let p = PathBuf::from(&args.zsync);
            let data = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            let abs = std::fs::canonicalize(&p).map_err(|e| Error::io(&p, e))?;
            (data, Some(format!("file://{}", abs.display())))
        };
    let control = ControlFile::parse(&bytes)?;
    if let Some(k) = &args.keep {
        zsync3::fsutil::write_atomically(k, |w| w.write_all(&bytes))?;
    }
    let h = &control.header;
    let output = match &args.output {
        Some(o) => o.clone(),
        None => match &h.filename {
            Some(f) => output_from_filename(f)?,
            None => {
                return Err(Error::Control(
                    "the .zsync has no Filename; give the output name with -o".into(),
                ))
            }
        },
    };
    let base = args.base_url.clone().or(origin);
    let mut urls = Vec::new();
    for u in &h.urls {
        match base.as_deref().and_then(|b| urljoin::resolve(b, u)) {
            Some(abs) => urls.push(abs),
            None => progress.message(&format!(
                "URL {u:?} in the .zsync is relative and there is no base URL to resolve it against; give one with -u"
            )),
        }
    }
    let mut opts = UpdateOptions {
        seeds: args.seeds.clone(),
        output: output.clone(),
        urls,
        progress,
        attempts_per_url: 3,
        scan_threads: args.threads,
    };
    let report = update(&control, &mut opts, &mut fetcher)?;
    if !args.quiet {
        let pct = |n: u64| {
            if report.length == 0 {
                0.0
            } else {
                n as f64 * 100.0 / report.length as f64
            }
        };
        opts.progress.message(&format!(
            "{}: used {} ({:.2}%) local, fetched {} ({:.2}%) in {} request(s)",
            output.display(),
            human(report.reused),
            pct(report.reused),
            human(report.downloaded),
            pct(report.downloaded),
            fetcher.requests_made()
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // --help/--version go to stdout with 0; usage errors are exit 3 (2 means
            // "verification failed").
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 3 } else { 0 });
        }
    };
    let quiet = args.quiet;
    let mut bar = Bar::default();
    let mut silent = Silent;
    let mut plain = Plain;
    let progress: &mut dyn Progress = if quiet {
        &mut silent
    } else if std::io::stderr().is_terminal() {
        &mut bar
    } else {
        &mut plain
    };
    let result = run(args, progress);
    bar.finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zsync: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Messages only, for when stderr is not a terminal.
struct Plain;
impl Progress for Plain {
    fn message(&mut self, msg: &str) {
        let _ = writeln!(std::io::stderr(), "{msg}");
    }
}
