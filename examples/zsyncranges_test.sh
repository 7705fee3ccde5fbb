#!/usr/bin/env bash
# Usage: zsyncranges_test.sh ZSYNCRANGES APP_TAR_ZSYNC APP_TAR OLD_APP_TAR
set -euo pipefail
zsyncranges=$1 zsync=$2 new=$3 old=$4
head="{\"length\":$(wc -c <"$new"),\"checksum\":{\"SHA-1\":\"$(sha1sum "$new" | cut -d' ' -f1)\"}"

# Seed = the new release itself: everything is reused, nothing to download.
out=$("$zsyncranges" "$zsync" "$new")
echo "seed $new: $out"
case "$out" in "$head,\"reuse\":[["*"]],\"download\":[]}") ;; *) echo "FAIL: unexpected output"; exit 1 ;; esac

# Seed = the previous release: most of it is reused, the rest is downloaded.
out=$("$zsyncranges" "$zsync" "$old")
echo "seed $old: $out"
case "$out" in "$head,\"reuse\":[["*"]],\"download\":[["*"]]}") ;; *) echo "FAIL: unexpected output"; exit 1 ;; esac
echo "OK"
