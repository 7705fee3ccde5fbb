//! zsyncranges: print which parts of a target a local seed file can supply.
use std::io::{Read, Write};
use std::process::ExitCode;

use clap::Parser;
use zsync3::control::ControlFile;
use zsync3::plan::Plan;
use zsync3::Error;

/// Print, as one JSON line, which byte ranges of the file described by a .zsync can be
/// copied from a local seed file and which must be downloaded. Downloads nothing.
///
/// Output: `{"length":N,"checksum":{"SHA-1":"…"},"reuse":[[target_offset,seed_offset,length],…],
/// "download":[[start,end],…]}` — download ends are inclusive; seed bytes past the seed's
/// end count as zeros.
#[derive(Parser)]
#[command(name = "zsyncranges")]
struct Args {
    /// The .zsync control file, or - to read it from standard input.
    zsync: String,
    /// The local file to take blocks from (an older version of the target).
    seed: std::path::PathBuf,
    /// Threads that scan the seed [default: one per core]. The output does not depend on it.
    #[arg(
        short = 'j',
        long = "threads",
        value_name = "N",
        default_value_t = 0,
        hide_default_value = true
    )]
    threads: usize,
}

fn run(args: Args) -> Result<(), Error> {
    let data = if args.zsync == "-" {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .map_err(|e| Error::io("-", e))?;
        v
    } else {
        std::fs::read(&args.zsync).map_err(|e| Error::io(&args.zsync, e))?
    };
    let control = ControlFile::parse(&data)?;
    let seed = std::fs::File::open(&args.seed).map_err(|e| Error::io(&args.seed, e))?;
    let plan =
        Plan::compute_file(&control, &seed, args.threads).map_err(|e| Error::io(&args.seed, e))?;
    // Not println!, which panics when stdout is closed or full.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", plan.to_json())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("standard output", e))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
