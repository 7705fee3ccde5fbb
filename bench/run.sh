#!/bin/bash
# bench/run.sh — zsync3 against Debian's zsync 0.6.2, side by side (issue #5).
#
#   bench/run.sh                              # all pairs, 3 runs each, block size 2048
#   PAIRS="lo stress" RUNS=5 BLOCKSIZE=4096 bench/run.sh
#
# Knobs (environment):
#   BENCH_DATA    data and scratch directory, outside the repo   [/var/tmp/zsync3-bench]
#   PAIRS         subset of: lo synth stress                     [lo synth stress]
#   RUNS          repetitions of every measurement; the median is reported     [3]
#   BLOCKSIZE     block size given to both zsyncmakes (-b)        [2048]
#   BENCH_PORT    loopback port for the nginx the script starts   [18417]
#   STEP_TIMEOUT  seconds before one command is killed            [1800]
#   MAKE_J1       1: also time our zsyncmake with -j 1 (Debian's is single-threaded)  [1]
#   ZSYNC3_REV    build our tools from this git revision (exported with git archive to
#                 BENCH_DATA/src-REV, built in BENCH_DATA/target), e.g. HEAD: uncommitted
#                 changes in the work tree then do not count
#   ZSYNC3_BIN    directory with our zsyncmake, zsyncranges, zsync, used as they are
#   (neither)     build the work tree with `cargo build --release` (honours CARGO_TARGET_DIR)
#   BENCH_OUT     where results.md and raw.tsv go                 [bench/out]
#
# What it does, per pair (old = the seed, new = the target):
#   (1) make    ours   zsyncmake -M -b B -u NEW -o new.ours.zsync new
#               Debian /usr/bin/zsyncmake -Z -b B -u NEW -o new.debian.zsync new
#               (-u only sets the URL line, so both .zsync name the file by its relative name
#               and neither prints the "no URL given" warning.)  MB/s = size of new / time.
#   (2) scan    ours   zsyncranges new.ours.zsync old  (parse, scan the seed, print the plan)
#               Debian has no zsyncranges. Its client can read a local .zsync, and when the
#               .zsync's URL is relative and no -u is given it cannot download anything: it
#               reads the .zsync, scans the seed (writing matched blocks to its working file),
#               prints "Read <seed>. Target N% complete." and then gives up on the URL. We time
#               from process start to that line (stderr is timestamped as it arrives), so
#               Debian's scan time includes parsing the .zsync and writing matched blocks, but
#               not what it does after giving up (it SHA-1s the incomplete .part). The row
#               "scan (both: Debian's .zsync)" times ours on new.debian.zsync (2-byte rolling
#               sums, seq_matches 2: many more weak collisions) against the same Debian scan.
#               Ours does not write blocks, so the same phase of our *client* is also
#               reported: see "client scan phase" under (3).  MB/s = size of old / time.
#   (3) update  from an nginx on 127.0.0.1:BENCH_PORT started by this script:
#               ours   zsync -i old -o out http://127.0.0.1:PORT/new.ours.zsync
#               Debian /usr/bin/zsync -i old -o out http://127.0.0.1:PORT/new.debian.zsync
#               Each client uses its own zsyncmake's .zsync. The output's SHA-1 is checked
#               against new; bytes and requests come from nginx's access log (body bytes
#               of the data file, multipart boundaries included; number of requests and of
#               TCP connections). "client scan phase" = from the start until the client
#               reports the end of its seed scan (ours: its first "downloading from" line;
#               Debian: "Read <seed>. Target N% complete."), .zsync fetch included.
#
# Timing: wall clock ($EPOCHREALTIME around the command); peak RSS = /usr/bin/time's "maximum
# resident set size" (%M; for our client that is the max over zsync and its curl children).
# Ours and Debian alternate within each repetition. The page cache is warm (files are read
# once before each pair); nothing drops caches. MB = 10^6 bytes, MiB = 2^20 bytes.
# The machine may be shared: the load average at start is recorded with the results.
# (No hyperfine: one /usr/bin/time run gives both the time and the peak RSS, and the
# stderr timestamps, so every command runs RUNS times and no more.)
#
# Data (never committed) is built by bench/make-data.sh when missing. Installs, when missing:
# zsync (Debian 0.6.2: /usr/bin/zsync, /usr/bin/zsyncmake — the same names as ours, so every
# call below uses an absolute path), nginx, time, curl (our client runs curl), python3, openssl.
set -euo pipefail
export LC_ALL=C    # decimal point in $EPOCHREALTIME and printf

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$REPO/bench
BENCH_DATA=${BENCH_DATA:-/var/tmp/zsync3-bench}
PAIRS=${PAIRS:-lo synth stress}
RUNS=${RUNS:-3}
BLOCKSIZE=${BLOCKSIZE:-2048}
BENCH_PORT=${BENCH_PORT:-18417}
STEP_TIMEOUT=${STEP_TIMEOUT:-1800}
MAKE_J1=${MAKE_J1:-1}
BENCH_OUT=${BENCH_OUT:-$BENCH/out}
DEB_MAKE=/usr/bin/zsyncmake
DEB_ZSYNC=/usr/bin/zsync

WWW=$BENCH_DATA/www        # served by nginx: the new files (hard links) and the .zsync files
WORK=$BENCH_DATA/work      # clients' outputs, logs of every run
NG=$BENCH_DATA/nginx       # nginx prefix: config, pid, logs
RAW=$BENCH_OUT/raw.tsv
RESULTS=$BENCH_OUT/results.md

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# setup: packages, our binaries, data
# ---------------------------------------------------------------------------------------------
install_missing() {
  local pkgs=()
  [ -x "$DEB_ZSYNC" ] && [ -x "$DEB_MAKE" ] || pkgs+=(zsync)
  [ -x /usr/sbin/nginx ] || pkgs+=(nginx)
  [ -x /usr/bin/time ] || pkgs+=(time)
  command -v curl >/dev/null || pkgs+=(curl)
  command -v python3 >/dev/null || pkgs+=(python3)
  command -v openssl >/dev/null || pkgs+=(openssl)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
  fi
}

build_ours() {
  local rev src
  if [ -n "${ZSYNC3_BIN:-}" ]; then
    BUILT_FROM="binaries in $ZSYNC3_BIN"
  elif [ -n "${ZSYNC3_REV:-}" ]; then
    rev=$(git -C "$REPO" rev-parse --short "$ZSYNC3_REV^{commit}")
    src=$BENCH_DATA/src-$rev
    if [ ! -e "$src/.exported" ]; then
      rm -rf "$src"; mkdir -p "$src"
      git -C "$REPO" archive "$rev" | tar -x -C "$src"
      touch "$src/.exported"
    fi
    log "building zsync3 $rev (cargo build --release in $src)"
    (cd "$src" && CARGO_TARGET_DIR=$BENCH_DATA/target cargo build --release --quiet)
    ZSYNC3_BIN=$BENCH_DATA/target/release
    BUILT_FROM="commit $rev ($(git -C "$REPO" log -1 --format=%cs "$rev"))"
  else
    log "building zsync3 (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet)
    ZSYNC3_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release
    BUILT_FROM="work tree at $(git -C "$REPO" rev-parse --short HEAD)"
    git -C "$REPO" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null ||
      BUILT_FROM+=" with uncommitted changes in src/ or Cargo.*"
  fi
  OUR_MAKE=$ZSYNC3_BIN/zsyncmake
  OUR_RANGES=$ZSYNC3_BIN/zsyncranges
  OUR_ZSYNC=$ZSYNC3_BIN/zsync
  for b in "$OUR_MAKE" "$OUR_RANGES" "$OUR_ZSYNC"; do
    [ -x "$b" ] || die "missing $b"
  done
}

pair_files() {   # pair_files PAIR -> sets OLD NEW (absolute paths)
  case $1 in
    lo)     OLD=$BENCH_DATA/lo-old.tar;      NEW=$BENCH_DATA/lo-new.tar ;;
    synth)  OLD=$BENCH_DATA/synth-old.bin;   NEW=$BENCH_DATA/synth-new.bin ;;
    stress) OLD=$BENCH_DATA/stress-old.bin;  NEW=$BENCH_DATA/stress-new.bin ;;
    *) die "unknown pair '$1' (known: lo synth stress)" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# nginx on the loopback
# ---------------------------------------------------------------------------------------------
URL=http://127.0.0.1:$BENCH_PORT

stop_nginx() {
  local pid
  [ -s "$NG/nginx.pid" ] || return 0
  pid=$(cat "$NG/nginx.pid")
  # only the nginx this script started (its command line names our config)
  if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$NG/nginx.conf"; then
    kill -QUIT "$pid" 2>/dev/null || true
    for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    [ -e "/proc/$pid" ] && kill -TERM "$pid" 2>/dev/null
  fi
  rm -f "$NG/nginx.pid"
}

start_nginx() {
  mkdir -p "$NG/tmp" "$WWW"
  stop_nginx   # a leftover from an interrupted run
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/" || true)" != 000 ]; then
    die "port $BENCH_PORT is in use; set BENCH_PORT"
  fi
  cat > "$NG/nginx.conf" <<EOF
# written by bench/run.sh
worker_processes 1;
user $(id -un);
pid $NG/nginx.pid;
error_log $NG/error.log;
events { worker_connections 256; }
http {
  log_format zs '\$request_uri \$status \$body_bytes_sent \$connection \$connection_requests "\$http_range"';
  access_log $NG/access.log zs;
  client_body_temp_path $NG/tmp; proxy_temp_path $NG/tmp; fastcgi_temp_path $NG/tmp;
  uwsgi_temp_path $NG/tmp; scgi_temp_path $NG/tmp;
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$BENCH_PORT; root $WWW; }
}
EOF
  : > "$NG/access.log"
  /usr/sbin/nginx -p "$NG" -c "$NG/nginx.conf" -e "$NG/error.log"
  trap stop_nginx EXIT
  for _ in $(seq 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/" || true)" != 000 ] && return 0
    sleep 0.1
  done
  die "nginx did not come up on $URL (see $NG/error.log)"
}

# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------
# stamp: copy stdin to stdout, each line prefixed with the time it arrived
stamp() { local l; while IFS= read -r l || [ -n "$l" ]; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }

fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# run_timed BASE CMD... — run CMD once in the current directory. stdout -> BASE.out, stderr
# (timestamped) -> BASE.err. Sets T_T0 (start), T_WALL (s), T_RSS (KiB), T_RC (exit status).
run_timed() {
  local base=$1 t1; shift
  T_T0=$EPOCHREALTIME
  set +e
  /usr/bin/time -f '%M' -o "$base.time" timeout "$STEP_TIMEOUT" "$@" 2>&1 > "$base.out" \
    | stamp > "$base.err"
  T_RC=${PIPESTATUS[0]}
  set -e
  t1=$EPOCHREALTIME
  T_WALL=$(fsub "$t1" "$T_T0")
  T_RSS=$(tail -n 1 "$base.time")
  case $T_RSS in ''|*[!0-9]*) T_RSS=0 ;; esac
}

# mark_time BASE REGEX — seconds from the start of the last run_timed to the first stderr line
# matching REGEX ("" if none)
mark_time() {
  local t
  t=$(grep -E -m 1 -- "$2" "$1.err" | cut -d' ' -f1) || true
  if [ -n "$t" ]; then fsub "$t" "$T_T0"; fi
}

median() {   # median of the arguments ("" if none)
  [ $# -gt 0 ] || { echo ""; return; }
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
    END { if (NR % 2) printf "%.3f", a[(NR + 1) / 2]; else printf "%.3f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
maxof() { if [ $# -gt 0 ]; then printf '%s\n' "$@" | sort -g | tail -n 1; fi; }

# Samples are kept in associative arrays keyed "pair/step/tool"; a failed run adds a note.
declare -A WALLS=() RSSES=() MARKS=() FAILS=()
add() {   # add KEY WALL RSS [MARK]
  WALLS[$1]+="$2 "; RSSES[$1]+="$3 "
  [ -n "${4:-}" ] && MARKS[$1]+="$4 "
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >> "$RAW"
}
fail() {  # fail KEY WHY BASE
  FAILS[$1]="${FAILS[$1]:-}$2; "
  printf '%s\tFAIL\t%s\n' "$1" "$2" >> "$RAW"
  log "FAILED $1: $2 (see $3.err)"
  tail -n 5 "$3.err" | sed 's/^[0-9.]* /    /' >&2 || true
}

# ---------------------------------------------------------------------------------------------
# the three steps for one pair
# ---------------------------------------------------------------------------------------------
bench_pair() {
  local pair=$1 name r base ours_zs deb_zs w mark
  pair_files "$pair"
  name=$(basename "$NEW")
  ln -f "$NEW" "$WWW/$name"
  ours_zs=$WWW/$name.ours.zsync
  deb_zs=$WWW/$name.debian.zsync
  w=$WORK/$pair
  mkdir -p "$w/make" "$w/scan-ours" "$w/scan-debian" "$w/update-ours" "$w/update-debian"
  SIZE_OLD[$pair]=$(stat -c %s "$OLD")
  SIZE_NEW[$pair]=$(stat -c %s "$NEW")
  SHA1_NEW[$pair]=$(sha1sum < "$NEW" | cut -d' ' -f1)
  cat "$OLD" "$NEW" > /dev/null   # warm the page cache

  for r in $(seq "$RUNS"); do
    log "$pair run $r/$RUNS: make"
    cd "$w/make"
    base=$w/make/ours.$r
    run_timed "$base" "$OUR_MAKE" -M -b "$BLOCKSIZE" -u "$name" -o "$ours_zs" "$NEW"
    if [ "$T_RC" = 0 ]; then add "$pair/make/ours" "$T_WALL" "$T_RSS"; else fail "$pair/make/ours" "exit $T_RC" "$base"; fi
    base=$w/make/debian.$r
    run_timed "$base" "$DEB_MAKE" -Z -b "$BLOCKSIZE" -u "$name" -o "$deb_zs" "$NEW"
    if [ "$T_RC" = 0 ]; then add "$pair/make/debian" "$T_WALL" "$T_RSS"; else fail "$pair/make/debian" "exit $T_RC" "$base"; fi
    if [ "$MAKE_J1" = 1 ]; then
      base=$w/make/ours-j1.$r
      run_timed "$base" "$OUR_MAKE" -j 1 -M -b "$BLOCKSIZE" -u "$name" -o "$w/make/ours-j1.zsync" "$NEW"
      if [ "$T_RC" = 0 ]; then add "$pair/make-j1/ours" "$T_WALL" "$T_RSS"; else fail "$pair/make-j1/ours" "exit $T_RC" "$base"; fi
    fi

    log "$pair run $r/$RUNS: scan"
    if [ -s "$ours_zs" ]; then
      cd "$w/scan-ours"
      base=$w/scan-ours/ours.$r
      run_timed "$base" "$OUR_RANGES" "$ours_zs" "$OLD"
      if [ "$T_RC" = 0 ]; then
        add "$pair/scan/ours" "$T_WALL" "$T_RSS"
        # share of the target the seed supplies, from the plan's download list
        read -r SEEDED[$pair/ours] NEEDED[$pair/ours] <<< "$(python3 -c 'import json,sys
p = json.load(open(sys.argv[1])); n = p["length"]; d = sum(e - s + 1 for s, e in p["download"])
print("%.1f %d" % (100.0 * (n - d) / max(n, 1), d))' "$base.out")"
      else
        fail "$pair/scan/ours" "exit $T_RC" "$base"
      fi
    fi
    if [ -s "$deb_zs" ]; then
      # ours on Debian's .zsync (2-byte rolling sums, seq 2: many weak collisions)
      cd "$w/scan-ours"
      base=$w/scan-ours/ours-debzs.$r
      run_timed "$base" "$OUR_RANGES" "$deb_zs" "$OLD"
      if [ "$T_RC" = 0 ]; then add "$pair/scan-debzs/ours" "$T_WALL" "$T_RSS"; else fail "$pair/scan-debzs/ours" "exit $T_RC" "$base"; fi
    fi
    if [ -s "$deb_zs" ]; then
      cd "$w/scan-debian"
      rm -f out out.part out.zs-old rcksum-*
      base=$w/scan-debian/debian.$r
      # local .zsync with a relative URL and no -u: Debian's client scans, then cannot download
      run_timed "$base" "$DEB_ZSYNC" -i "$OLD" -o out "$deb_zs"
      mark=$(mark_time "$base" 'Read .*complete')
      if [ -n "$mark" ]; then
        add "$pair/scan/debian" "$mark" "$T_RSS"
        SEEDED[$pair/debian]=$(grep -o -m 1 'Target [0-9.]*%' "$base.err" | tr -dc '0-9.')
      else
        fail "$pair/scan/debian" "no 'Read ... complete' line, exit $T_RC" "$base"
      fi
      rm -f out out.part out.zs-old rcksum-*
    fi

    log "$pair run $r/$RUNS: update"
    update_one "$pair" ours "$OUR_ZSYNC" "$ours_zs" 'downloading from' "$r"
    update_one "$pair" debian "$DEB_ZSYNC" "$deb_zs" 'Read .*complete' "$r"
  done
  ZS_INFO[$pair/ours]="$(zsync_info "$ours_zs")"
  ZS_INFO[$pair/debian]="$(zsync_info "$deb_zs")"
}

zsync_info() {  # "Hash-Lengths, size of the .zsync"
  [ -s "$1" ] || { echo "- | -"; return; }
  echo "$(grep -a -m 1 '^Hash-Lengths:' "$1" | cut -d' ' -f2) | $(stat -c %s "$1")"
}

# update_one PAIR TOOL CLIENT ZSYNCFILE SCAN_DONE_REGEX RUN
update_one() {
  local pair=$1 tool=$2 client=$3 zs=$4 re=$5 r=$6 d base before mark sha stats
  local key=$pair/update/$tool
  [ -s "$zs" ] || { fail "$key" "no .zsync (make failed)" /dev/null; return; }
  d=$WORK/$pair/update-$tool
  cd "$d"
  rm -f out out.part out.zs-old rcksum-*
  base=$d/$tool.$r
  before=$(wc -l < "$NG/access.log")
  run_timed "$base" "$client" -i "$OLD" -o out "$URL/$(basename "$zs")"
  # data-file requests, body bytes, connections; then all requests
  stats=$(tail -n +"$((before + 1))" "$NG/access.log" | awk -v f="/$(basename "$NEW")" '
      $1 == f { n++; b += $3; c[$4] = 1 } { all++; ca[$4] = 1 }
      END { printf "%d %d %d %d %d", b, n, length(c), all, length(ca) }')
  if [ "$T_RC" != 0 ]; then
    fail "$key" "exit $T_RC" "$base"
  elif [ ! -f out ] || [ "$(sha1sum < out | cut -d' ' -f1)" != "${SHA1_NEW[$pair]}" ]; then
    fail "$key" "output SHA-1 differs from the target" "$base"
  else
    mark=$(mark_time "$base" "$re")
    add "$key" "$T_WALL" "$T_RSS" "$mark"
    # download passes: both clients print "downloading from <url>" before each pass
    UPD_STATS[$key]+="$stats $(grep -c 'downloading from' "$base.err" || true);"
  fi
  rm -f out out.part out.zs-old rcksum-*
}

# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
cell_s()    { [ -n "$1" ] && printf '%.2f' "$1" || printf 'FAIL'; }
cell_mbs()  { [ -n "$1" ] && awk -v s="$1" -v n="$2" 'BEGIN { printf "%.1f", n / 1e6 / s }' || printf -- '-'; }
cell_mib()  { [ -n "$1" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || printf -- '-'; }
cell_ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }' || printf -- '-'; }

row() {  # row PAIR STEP LABEL SIZE_FOR_MBS [OURS_KEY]
  local pair=$1 step=$2 label=$3 size=$4 okey=${5:-$1/$2/ours} dkey=$1/$2/debian
  local ow ov dw dv orss drss
  # shellcheck disable=SC2086
  ow=$(median ${WALLS[$okey]:-}); dw=$(median ${WALLS[$dkey]:-})
  # shellcheck disable=SC2086
  orss=$(maxof ${RSSES[$okey]:-}); drss=$(maxof ${RSSES[$dkey]:-})
  if [ "$step" = scanphase ]; then
    # shellcheck disable=SC2086
    ow=$(median ${MARKS[$1/update/ours]:-}); dw=$(median ${MARKS[$1/update/debian]:-}); orss=""; drss=""
  fi
  printf '| %s | %s | %s | %s | %s | %s | **%s** | %s | %s | %s |\n' "$pair" "$label" \
    "$(cell_s "$ow")" "$(cell_s "$dw")" "$(cell_mbs "$ow" "$size")" "$(cell_mbs "$dw" "$size")" \
    "$(cell_ratio "$ow" "$dw")" "$(cell_mib "$orss")" "$(cell_mib "$drss")" "$(cell_ratio "$orss" "$drss")"
}

report() {
  local pair tool key st b n c all ca ps
  echo "# zsync3 vs Debian zsync 0.6.2 — benchmark results"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); zsync3: $BUILT_FROM"
  echo "- machine: $(nproc) CPUs, $(grep -m 1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
  echo "- load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- peers: $("$DEB_ZSYNC" -V 2>&1 | head -n 1); $(/usr/sbin/nginx -v 2>&1 | sed 's/.*: //') on 127.0.0.1"
  echo "- block size $BLOCKSIZE; $RUNS run(s) per measurement, median time, max peak RSS; warm page cache"
  echo
  echo "Time ratio and RSS ratio are ours/Debian: below 1 means ours is faster or smaller."
  echo "MB/s is of the new file for make and update, of the seed (old file) for scan and the client's"
  echo "scan phase. The Debian columns of \"make (ours -j 1)\" repeat Debian's make (it has one thread)."
  echo
  echo "| pair | step | ours s | Debian s | ours MB/s | Debian MB/s | time ours/Deb | ours RSS MiB | Debian RSS MiB | RSS ours/Deb |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for pair in $PAIRS; do
    row "$pair" make make "${SIZE_NEW[$pair]}"
    if [ "$MAKE_J1" = 1 ]; then row "$pair" make "make (ours -j 1)" "${SIZE_NEW[$pair]}" "$pair/make-j1/ours"; fi
    row "$pair" scan "scan" "${SIZE_OLD[$pair]}"
    row "$pair" scan "scan (both: Debian's .zsync)" "${SIZE_OLD[$pair]}" "$pair/scan-debzs/ours"
    row "$pair" update "update" "${SIZE_NEW[$pair]}"
    row "$pair" scanphase "client scan phase" "${SIZE_OLD[$pair]}"
  done
  echo
  echo "Update details, from nginx's access log (a..b: the runs differed, min..max)."
  echo "Seeded % is the share of the target the seed supplies according to the scan step; bytes to"
  echo "fetch is the size of zsyncranges' download list (the least our client must download)."
  echo
  echo "| pair | tool | target MB | Hash-Lengths | .zsync bytes | seeded % | bytes to fetch (plan) | data bytes downloaded | data requests | connections | all requests | passes | output SHA-1 |"
  echo "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for pair in $PAIRS; do
    for tool in ours debian; do
      key=$pair/update/$tool
      # each field over the runs: one value, or min..max when the runs differ
      read -r b n c all ca ps <<< "$(printf '%s' "${UPD_STATS[$key]:-}" | tr ';' '\n' | awk '
        NF { for (i = 1; i <= NF; i++) { if (!(i in lo) || $i < lo[i]) lo[i] = $i; if (!(i in hi) || $i > hi[i]) hi[i] = $i } }
        END { for (i = 1; i <= 6; i++) printf "%s ", (!(i in lo) ? "-" : lo[i] == hi[i] ? lo[i] : lo[i] ".." hi[i]) }')"
      st=ok; [ -n "${FAILS[$key]:-}" ] && st="FAIL: ${FAILS[$key]}"
      [ -z "${WALLS[$key]:-}" ] && [ -z "${FAILS[$key]:-}" ] && st="not run"
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$pair" "$tool" \
        "$(awk -v n="${SIZE_NEW[$pair]}" 'BEGIN { printf "%.1f", n / 1e6 }')" "${ZS_INFO[$pair/$tool]:-- | -}" \
        "${SEEDED[$pair/$tool]:--}" "${NEEDED[$pair/$tool]:--}" "$b" "$n" "$c" "$all" "$ps" "$st"
    done
  done
  if [ ${#FAILS[@]} -gt 0 ]; then
    echo
    echo "Failures (logs under $WORK):"
    echo
    for key in "${!FAILS[@]}"; do echo "- $key: ${FAILS[$key]}"; done
  fi
}

# ---------------------------------------------------------------------------------------------
main() {
  LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
  install_missing
  build_ours
  PAIRS="$PAIRS" "$BENCH/make-data.sh" "$BENCH_DATA"
  mkdir -p "$BENCH_OUT" "$WORK" "$WWW"
  printf 'key\twall_s\trss_kib\tmark_s\n' > "$RAW"
  declare -gA SIZE_OLD SIZE_NEW SHA1_NEW SEEDED NEEDED UPD_STATS ZS_INFO
  start_nginx
  local pair
  for pair in $PAIRS; do
    bench_pair "$pair"
  done
  stop_nginx
  cd "$REPO"
  report | tee "$RESULTS"
  log "results written to $RESULTS (raw samples: $RAW)"
}

main "$@"
