//! zsync3: client-side rsync over HTTP.
pub mod client;
pub mod control;
pub mod error;
pub mod fetch;
pub mod fsutil;
pub mod hashlen;
pub mod httpdate;
pub mod known;
pub mod make;
pub mod md4x8;
pub mod plan;
pub mod progress;
pub mod rsum;
pub mod scan;
pub mod strong;
pub mod urljoin;

pub use error::{Error, Result};
