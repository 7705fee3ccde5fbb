#!/bin/bash
# Builds the zsync3 benchmark data under $1 (or $BENCH_DATA, default /var/tmp/zsync3-bench).
# Adapted from shared/bench/make-data.sh; idempotent: a pair that is already there and verified
# (stamp file .ok-<pair>) is not rebuilt. Data is never committed: keep it outside the repo.
#
# Pairs:
#   lo      the uncompressed data.tar of two versions of Debian's libreoffice-core (~120 MB each),
#           from the machine's apt sources (if a version has left the archive, take the same .deb
#           from the Debian snapshot archive; the SHA-256 below checks it)
#   synth   1 GiB of AES-CTR keystream and a copy with 2000 scattered edits, a 64 MiB region
#           replaced and a 32 MiB region moved to the end (make-synth.py)
#   stress  ~200 MB of highly repetitive data: long zero runs, thousands of identical blocks,
#           short-period text (make-stress.py)
# Needs: apt-get, dpkg-deb, openssl, python3, ~3.5 GiB free disk.
set -euo pipefail
OUT=${1:-${BENCH_DATA:-/var/tmp/zsync3-bench}}
PAIRS=${PAIRS:-lo synth stress}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
cd "$OUT"

have() { [ -e "$OUT/.ok-$1" ]; }

for pair in $PAIRS; do
  if have "$pair"; then continue; fi
  case $pair in
  lo)
    echo "make-data: building pair lo in $OUT" >&2
    mkdir -p debs
    old_deb='libreoffice-core_4%3a7.4.7-1+deb12u13_amd64.deb'
    new_deb='libreoffice-core_4%3a7.4.7-1+deb12u14_amd64.deb'
    if [ ! -e "debs/$old_deb" ] || [ ! -e "debs/$new_deb" ]; then
      apt-get update -qq
      (cd debs && apt-get download 'libreoffice-core=4:7.4.7-1+deb12u13' 'libreoffice-core=4:7.4.7-1+deb12u14')
    fi
    (cd debs && sha256sum -c --quiet) <<'EOS'
0ac9ac28fd30b566f7ee1ffbfcf566ca86baa6147ff23c5c16d2df8252516a45  libreoffice-core_4%3a7.4.7-1+deb12u13_amd64.deb
0f0bb000da8520b3b9a064e51c1c876e3aef56c9152078b5766685c812111267  libreoffice-core_4%3a7.4.7-1+deb12u14_amd64.deb
EOS
    dpkg-deb --fsys-tarfile "debs/$old_deb" > lo-old.tar.tmp && mv lo-old.tar.tmp lo-old.tar
    dpkg-deb --fsys-tarfile "debs/$new_deb" > lo-new.tar.tmp && mv lo-new.tar.tmp lo-new.tar
    sha256sum -c --quiet <<'EOS'
1d73ed0196e64fd9f12a74590cf763cec143cac4caa4966c2effc0af4edc007a  lo-new.tar
d31c900a8acafb4815517c4aa24695abf09d23c2f430dabc21c8fbe4f67c92d7  lo-old.tar
EOS
    ;;
  synth)
    echo "make-data: building pair synth (1 GiB) in $OUT" >&2
    # fixed key/iv => reproducible
    head -c 1073741824 /dev/zero | openssl enc -aes-128-ctr -nosalt \
        -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 > synth-old.bin.tmp
    mv synth-old.bin.tmp synth-old.bin
    python3 "$HERE/make-synth.py" synth-old.bin synth-new.bin.tmp 20250101
    mv synth-new.bin.tmp synth-new.bin
    sha256sum -c --quiet <<'EOS'
aaa24880c67fbb5a10af34ad26980444194f2111abe4c772524b50a969438817  synth-old.bin
e42fe020e97fe87ee0d9d9aaf131c3ac35a0dfdebacdaf324d307dc110a4e23b  synth-new.bin
EOS
    ;;
  stress)
    echo "make-data: building pair stress in $OUT" >&2
    python3 "$HERE/make-stress.py" stress-old.bin.tmp stress-new.bin.tmp
    mv stress-old.bin.tmp stress-old.bin
    mv stress-new.bin.tmp stress-new.bin
    sha256sum -c --quiet <<'EOS'
7a87a5da5752a014b6987013648a4bf3f0be94e9eeab7d201442237a8a3afc72  stress-old.bin
23c51322824fccc6fbd986dbd967b3f74015339704bd2e113c3b669cfedadb47  stress-new.bin
EOS
    ;;
  *)
    echo "make-data: unknown pair '$pair' (known: lo synth stress)" >&2
    exit 2
    ;;
  esac
  touch "$OUT/.ok-$pair"
done
echo "make-data: data ready in $OUT ($PAIRS)" >&2
