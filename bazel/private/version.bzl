"""zsync3's version for Bazel targets (CARGO_PKG_VERSION). Must equal Cargo.toml's and MODULE.bazel's (//tests:version_test)."""

VERSION = "0.1.0"
