//! zsync3: client-side rsync over HTTP.
//!
//! A publisher describes a file with a `.zsync` control file ([`make`]); a client that has
//! an older copy scans it for blocks of the new file ([`scan`]), which gives a plan of what
//! to copy and what to download ([`plan`]); the missing ranges are fetched over HTTP
//! ([`fetch`]) and the result is verified and installed ([`client`]).
//!
//! Data flows one way: bytes → checksums ([`rsum`], [`strong`]) → control file
//! ([`control`], [`hashlen`]) → matches ([`scan`], [`known`]) → ranges ([`plan`]) → fetch
//! ([`fetch`]) → verified file ([`client`]).
//!
//! ```no_run
//! use zsync3::control::ControlFile;
//! use zsync3::make::{make, MakeOptions};
//! use zsync3::plan::Plan;
//!
//! // Publisher: make the control file.
//! let new = std::fs::read("app-2.0.AppImage")?;
//! let opts = MakeOptions { urls: vec!["app-2.0.AppImage".into()], ..Default::default() };
//! let made = make(&mut &new[..], new.len() as u64, &opts)?;
//! std::fs::write("app.zsync", made.to_bytes())?;
//!
//! // Client: what can the old version supply, what must be downloaded?
//! let control = ControlFile::parse(&std::fs::read("app.zsync")?)?;
//! let plan = Plan::compute_file(&control, &std::fs::File::open("app-1.0.AppImage")?, 0)?;
//! println!("{}", plan.to_json());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod client;
pub mod control;
pub mod copy;
pub mod error;
pub mod fetch;
pub mod fsutil;
pub mod hashlen;
pub mod httpdate;
pub mod known;
pub mod make;
pub mod mapped;
pub mod md4x8;
pub mod plan;
pub mod progress;
pub mod rsum;
pub mod scan;
pub mod strong;
pub mod urljoin;
pub mod verify;

pub use error::{Error, Result};
