#!/usr/bin/env bash
# The version of the Bazel targets (bazel/private/version.bzl) = Cargo.toml's = MODULE.bazel's.
# Usage: version_test.sh VERSION CARGO_TOML MODULE_BAZEL
set -euo pipefail
want=$1
cargo=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$2" | head -1)
module=$(sed -n 's/^ *version = "\(.*\)",$/\1/p' "$3" | head -1)
echo "bazel/private/version.bzl: $want, Cargo.toml: $cargo, MODULE.bazel: $module"
if [ "$cargo" != "$want" ] || [ "$module" != "$want" ]; then
  echo "FAIL: versions differ"
  exit 1
fi
