#!/usr/bin/env bash
# tools/bazel-offline.sh - build and test zsync3 with a real Bazel, fully offline.
#
# Debian 12 (the CI machine) has no Bazel >= 7, so this script prepares a Debian sid chroot
# with sid's packaged Bazel 7.7.1 and rules_rust 0.54.1, and then runs Bazel inside that
# chroot in a network namespace that has nothing but loopback:
#
#   root module:  bazel build //...   bazel test //...
#   examples/:    bazel build //...   bazel test //...
#                 bazel run @zsync3//:zsyncranges -- <abs .zsync> <abs seed>   (JSON checked)
#
# Usage:  tools/bazel-offline.sh [test|setup|shell]
#   test   (default) prepare everything that is missing, then run the Bazel commands above
#   setup  only prepare the chroot and the offline pieces (no Bazel run)
#   shell  an interactive shell in the prepared chroot, offline, in the copied workspace
#
# Network is used only during preparation, and only through package registries' ordinary
# clients: debootstrap/apt (the Debian mirror configured in /etc/apt on this machine) and
# cargo (crates). Every offline-only Bazel setting is a `common:offline` line in .bazelrc;
# MODULE.bazel is the one an online user with the Bazel Central Registry uses.
#
# Idempotent: each preparation step is skipped when its result is already there.
#
# Environment:
#   BZL_WORK=/var/cache/zsync3-bazel  where everything lives (chroot, caches, logs); never the repo
#   FRESH=1                           delete $BZL_WORK first (cold run)
#   CLEAN_BAZEL=1                     drop Bazel's output bases (cold Bazel, prepared chroot)
#   NO_NETNS=1                        do not isolate Bazel in an empty network namespace
#   RUST_TOOLCHAIN=stable             the host's rustup toolchain to use
#
# Needs: root, amd64, unshare/chroot, the host's rustup toolchain, ~3 GB disk.
# Exit status: non-zero as soon as anything fails (the failing log's tail is printed).
# shellcheck disable=SC2016 # single-quoted sh -c scripts and dpkg formats are meant literally
set -euo pipefail

# ----------------------------------------------------------------------------- settings
# Debian sid moves daily: these are the versions this script was tested with.
PINNED_PACKAGES=(
  bazel-bootstrap=7.7.1+ds-8+b1    # Bazel 7.7.1
  bazel-rules-rust=0.54.1+dfsg.1-2 # rules_rust 0.54.1 (MODULE.bazel asks for 0.54.1)
  bazel-rules-shell=0.4.0-1        # rules_shell (sh_test)
  bazel-skylib=1.9.1-2             # bazel_skylib (diff_test, analysistest, bzl_library)
)
CARGO_BAZEL_VERSION=0.15.0 # crate_universe's generator for rules_rust 0.54.1 (crate_universe/version.bzl)
# Modules in the dependency graph that Debian does not package and that nothing in this
# build loads (bazel_tools -> apple_support, buildozer, protobuf, zlib; rules_rust ->
# aspect_rules_js): empty stand-ins, see .bazelrc.
STUB_MODULES=(apple_support aspect_rules_js buildozer protobuf zlib)
TRIPLE=x86_64-unknown-linux-gnu

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${BZL_WORK:-/var/cache/zsync3-bazel}"
CHROOT="$WORK/chroot"
LOGS="$WORK/logs"
OFF=/opt/zsync3-offline # inside the chroot; .bazelrc's `common:offline` lines point here
WS=/ws/zsync3           # the workspace copy inside the chroot
HOST_OFF="$CHROOT$OFF"
CMD="${1:-test}"

# ----------------------------------------------------------------------------- helpers
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }
die() { echo "ERROR: $*" >&2; exit 1; }
STEP_T0=""
step() { STEP_T0=$(now); echo; echo "=== $*"; }
done_step() { echo "--- $1 ($(since "$STEP_T0") s)"; TIMES+=("$(printf '%-14s %-7s %5ss' "$STEP_NAME" "$1" "$(since "$STEP_T0")")"); }
TIMES=()
STEP_NAME=""
begin() { STEP_NAME="$1"; shift; step "[$STEP_NAME] $*"; }
du_h() { du -shx "$@" 2>/dev/null | awk '{ print $1 }' | paste -sd' '; }

# run_logged NAME CMD...: run a noisy command with its output in $LOGS/NAME.log
run_logged() {
  local log="$LOGS/$1.log" shown; shift
  shown="$*"
  [ -z "$MIRROR" ] || shown="${shown//"$MIRROR"/<debian-mirror>}"
  echo "    \$ $shown (log: $log)"
  if ! "$@" >"$log" 2>&1; then
    scrub_logs
    echo "FAILED: $*" >&2; tail -n 40 "$log" >&2
    die "step '$STEP_NAME' failed, full log: $log"
  fi
}

# in_chroot online|offline 'COMMAND': run COMMAND with bash inside the chroot, in a private
# mount namespace (/proc, /dev, /sys vanish with it, even if this script is killed);
# offline = also a new network namespace with only loopback.
in_chroot() {
  local mode="$1" cmd="$2" flags=(--mount --propagation private)
  if [ "$mode" = offline ] && [ "${NO_NETNS:-0}" != 1 ]; then flags+=(--net); fi
  unshare "${flags[@]}" -- /bin/sh -euc '
    C="$1"; MODE="$2"; CMD="$3"
    if [ "$MODE" = offline ] && [ "${NO_NETNS:-0}" != 1 ]; then ip link set lo up; fi
    mount -t proc proc "$C/proc"
    mount --rbind /dev "$C/dev"
    mount --rbind /sys "$C/sys"
    exec chroot "$C" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb USER=root \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      /bin/bash -euo pipefail -c "$CMD"
  ' in_chroot "$CHROOT" "$mode" "$cmd"
}

# The Debian mirror, read from this machine's apt configuration at run time.
debian_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/ && $i !~ /security/) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || die "cannot find the Debian mirror in /etc/apt"
  echo "$m"
}

# Keep registry host names out of the logs left behind.
MIRROR=""
scrub_logs() {
  local host; host=$(echo "$MIRROR" | sed 's#^[a-z]*://##; s#/.*##')
  if [ -n "$host" ]; then sed -i "s#$host#<debian-mirror>#g" "$LOGS"/*.log 2>/dev/null || true; fi
  sed -i 's#crates[.]io#<crates-registry>#g' "$LOGS"/*.log 2>/dev/null || true
}
cleanup() { rm -f "$CHROOT/etc/apt/sources.list"; scrub_logs; }

pinned_installed() { # true if every pinned package is installed at its pinned version
  local p
  for p in "${PINNED_PACKAGES[@]}"; do
    [ "$(chroot "$CHROOT" dpkg-query -W -f='${Status} ${Version}' "${p%%=*}" 2>/dev/null)" = "install ok installed ${p#*=}" ] || return 1
  done
}

# =============================================================================
# Part 2 (runs INSIDE the chroot, offline): the Bazel commands.
# =============================================================================
bazel_steps() {
  local ws=$WS out bin zs seed len sha
  echo "network interfaces visible to Bazel: $(awk 'NR > 2 { printf "%s ", $1 }' /proc/net/dev)"
  echo "$(bazel --version), rules_rust $(dpkg-query -W -f='${Version}' bazel-rules-rust), $("$OFF/rust/bin/rustc" -V)"
  bz() { # bz ARGS...: one timed Bazel command, echoed
    local t0; t0=$(now)
    echo >&2; echo ">>> ($PWD) bazel $*" >&2
    bazel "$@" || { echo "FAILED: bazel $* (exit $?)" >&2; return 1; }
    echo "TIMING $(basename "$PWD") bazel $1 $(since "$t0")s" >&2
  }

  # Never leave a Bazel server behind (it would live on in this network namespace).
  trap 'for d in "$WS" "$WS/examples"; do (cd "$d" && bazel shutdown >/dev/null 2>&1) || true; done' EXIT

  cd "$ws"
  bz build --config=offline //...
  bz test --config=offline //...
  bazel shutdown # one Bazel server at a time (2 cores, shared machine)

  cd "$ws/examples"
  bz build --config=offline //...
  bz test --config=offline //...
  # What a user types; absolute paths because `bazel run` runs in the runfiles tree.
  bin=$(bazel info --config=offline bazel-bin 2>/dev/null)
  zs="$bin/app.tar.zsync" seed="$bin/app-1.0.tar"
  bz run --config=offline @zsync3//:zsyncranges -- "$zs" "$seed" >/tmp/zsyncranges.json
  bazel shutdown
  out=$(cat /tmp/zsyncranges.json)
  echo "zsyncranges output: $out"
  len=$(wc -c <"$bin/app.tar")
  sha=$(sha1sum "$bin/app.tar" | cut -d' ' -f1)
  case "$out" in
    "{\"length\":$len,\"checksum\":{\"SHA-1\":\"$sha\"},\"reuse\":[["*"]],\"download\":[["*"]]}") ;;
    *) echo "FAILED: unexpected zsyncranges JSON (want length $len, SHA-1 $sha, some reuse, some download)"; return 1 ;;
  esac
  echo "zsyncranges JSON OK"
}

if [ "$CMD" = _bazel-steps ]; then # internal: called by Part 1 inside the chroot
  bazel_steps
  exit 0
fi

# =============================================================================
# Part 1 (runs on the host): prepare the chroot, then run Part 2 in it.
# =============================================================================
case "$CMD" in test | setup | shell) ;; *) die "usage: $0 [test|setup|shell]" ;; esac
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, unshare)"
[ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] || die "amd64 Debian host only"
case "$WORK" in "$REPO"|"$REPO"/*) die "BZL_WORK must be outside the repository" ;; esac
if [ "${FRESH:-0}" = 1 ] && [ -d "$WORK" ]; then
  echo "FRESH=1: removing $WORK"
  rm -rf --one-file-system "$WORK" # no mounts can be left there: they live in private namespaces
fi
mkdir -p "$WORK" "$LOGS"
trap cleanup EXIT
T_ALL=$(now)
echo "zsync3 offline Bazel: repo $REPO, work dir $WORK, command '$CMD'"

# ----------------------------------------------------------------------------- 1. host
begin host "host tools and the rustup toolchain"
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  run_logged host-apt-update apt-get -o Acquire::Check-Valid-Until=false update
  run_logged host-apt-install env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
export PATH="${HOME:-/root}/.cargo/bin:$PATH"
RUST_SYSROOT="$(rustc +"${RUST_TOOLCHAIN:-stable}" --print sysroot 2>/dev/null || rustc --print sysroot)" ||
  die "no Rust toolchain on the host (rustup's rustc is needed)"
RUSTC_VERSION="$("$RUST_SYSROOT/bin/rustc" -V)"
# Use the toolchain's binaries directly: rustup's proxy would obey rust-toolchain files
# shipped inside some crates (byteyarn 0.2.3 pins 1.66.0) while building cargo-bazel.
export PATH="$RUST_SYSROOT/bin:$PATH" RUSTC="$RUST_SYSROOT/bin/rustc" RUSTDOC="$RUST_SYSROOT/bin/rustdoc"
echo "rust: $RUST_SYSROOT ($RUSTC_VERSION)"
if [ ${#need[@]} = 0 ]; then done_step ok; else done_step "installed ${need[*]}"; fi

# ----------------------------------------------------------------------------- 2. chroot
begin debootstrap "minimal Debian sid in $CHROOT"
MIRROR="$(debian_mirror)"
if [ -f "$CHROOT/.zsync3-debootstrap-ok" ]; then
  done_step cached
else
  rm -rf --one-file-system "$CHROOT"
  run_logged debootstrap debootstrap --variant=minbase sid "$CHROOT" "$MIRROR"
  rm -f "$CHROOT/etc/apt/sources.list" # written again only while apt runs (next step)
  rm -rf "$CHROOT"/var/lib/apt/lists/* "$CHROOT/var/log/bootstrap.log"
  touch "$CHROOT/.zsync3-debootstrap-ok"
  done_step "done, $(du_h "$CHROOT")"
fi

# ----------------------------------------------------------------------------- 3. Bazel
begin apt "Bazel and rules from Debian sid, pinned: ${PINNED_PACKAGES[*]}"
if pinned_installed; then
  done_step cached
else
  cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
  printf 'deb %s sid main\n' "$MIRROR" >"$CHROOT/etc/apt/sources.list"
  # The mirror may serve a frozen snapshot whose Release file is past Valid-Until.
  run_logged chroot-apt-update in_chroot online "apt-get -o Acquire::Check-Valid-Until=false update"
  for p in "${PINNED_PACKAGES[@]}"; do
    avail=$(chroot "$CHROOT" apt-cache madison "${p%%=*}" | awk -F' [|] ' '{ print $2 }' | paste -sd' ')
    case " $avail " in *" ${p#*=} "*) ;; *)
      die "pinned package ${p%%=*} ${p#*=} is not available from Debian sid any more (available: ${avail:-none}).
       Update PINNED_PACKAGES in tools/bazel-offline.sh (and MODULE.bazel/.bazelrc if the Bazel or rules_rust version changes), then re-test." ;;
    esac
  done
  run_logged chroot-apt-install in_chroot online \
    "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${PINNED_PACKAGES[*]}"
  # No mirror host name stays in the chroot; drop the .deb cache (~650 MB).
  rm -f "$CHROOT/etc/apt/sources.list"
  rm -rf "$CHROOT"/var/lib/apt/lists/*
  chroot "$CHROOT" apt-get clean
  pinned_installed || die "the pinned packages are not installed after apt-get install (see $LOGS/chroot-apt-install.log)"
  done_step "done, $(du_h "$CHROOT")"
fi

# ----------------------------------------------------------------------------- 4. cargo-bazel
begin cargo-bazel "cargo install cargo-bazel@$CARGO_BAZEL_VERSION (crate_universe's generator)"
CB="$WORK/tools/cargo-bazel-$CARGO_BAZEL_VERSION/bin/cargo-bazel"
if [ -x "$CB" ]; then
  done_step cached
else
  run_logged cargo-bazel-install sh -c "cd / && exec cargo install cargo-bazel --version '=$CARGO_BAZEL_VERSION' --locked \
    --root '$WORK/tools/cargo-bazel-$CARGO_BAZEL_VERSION' --target-dir '$WORK/tmp-cargo-bazel-target'"
  rm -rf "$WORK/tmp-cargo-bazel-target"
  done_step "done, $(du_h "$CB")"
fi
mkdir -p "$HOST_OFF/bin"
install -m 0755 "$CB" "$HOST_OFF/bin/cargo-bazel"

# ----------------------------------------------------------------------------- 5. stubs, toolchain
begin offline-repos "module stand-ins and the local Rust toolchain repository in $OFF"
for m in "${STUB_MODULES[@]}"; do
  d="$HOST_OFF/stubs/$m"
  mkdir -p "$d"
  printf 'module(name = "%s")\n' "$m" >"$d/MODULE.bazel"
  printf '# Empty offline stand-in for the %s module (tools/bazel-offline.sh).\n' "$m" >"$d/BUILD.bazel"
  : >"$d/WORKSPACE"
done
R="$HOST_OFF/rust"
if [ "$(cat "$R/.rustc-version" 2>/dev/null)" != "$RUSTC_VERSION" ]; then
  rm -rf "$R"
  mkdir -p "$R"
  for d in bin lib libexec; do # hard links when on the same filesystem, else a copy
    [ -d "$RUST_SYSROOT/$d" ] || continue
    cp -al "$RUST_SYSROOT/$d" "$R/" 2>/dev/null || { rm -rf "${R:?}/$d"; cp -a "$RUST_SYSROOT/$d" "$R/"; }
  done
  echo "$RUSTC_VERSION" >"$R/.rustc-version"
fi
opt_fg="" opt_attr="" # optional tools: declare only what the toolchain has
for t in clippy_driver_bin:clippy-driver:clippy_driver cargo_clippy_bin:cargo-clippy:cargo_clippy rustfmt_bin:rustfmt:rustfmt; do
  IFS=: read -r tname tfile tattr <<<"$t"
  if [ -e "$R/bin/$tfile" ]; then
    opt_fg+=$'\n'"filegroup(name = \"$tname\", srcs = [\"bin/$tfile\"])"$'\n'
    opt_attr+="    $tattr = \":$tname\","$'\n'
  fi
done
: >"$R/WORKSPACE.bazel"
cat >"$R/BUILD.bazel" <<EOF
# Local Rust toolchain repository (generated by tools/bazel-offline.sh): $RUSTC_VERSION
# Stands in (--override_repository in .bazelrc) for two repositories that rules_rust would
# download: @rust_host_tools (what crate_universe runs) and the registered toolchain's
# @rust_linux_x86_64__${TRIPLE}__stable_tools. Mirrors rules_rust's generated BUILD file.
load("@rules_rust//rust:toolchain.bzl", "rust_stdlib_filegroup", "rust_toolchain")

package(default_visibility = ["//visibility:public"])

exports_files(glob(["bin/*"]))

filegroup(name = "rustc", srcs = ["bin/rustc"])

filegroup(
    name = "rustc_lib",
    srcs = glob(
        [
            "bin/*.so",
            "lib/*.so*",
            "lib/rustlib/$TRIPLE/codegen-backends/*.so",
            "lib/rustlib/$TRIPLE/bin/rust-lld",
            "lib/rustlib/$TRIPLE/lib/*.so*",
        ],
        allow_empty = True,
    ),
)

filegroup(name = "rustdoc", srcs = ["bin/rustdoc"])

filegroup(name = "cargo", srcs = ["bin/cargo"])
$opt_fg
rust_stdlib_filegroup(
    name = "rust_std-$TRIPLE",
    srcs = glob(
        [
            "lib/rustlib/$TRIPLE/lib/*.rlib",
            # Rust >= 1.95 ships std as metadata-stub .rlib + .rmeta (rules_rust 0.54.1 misses these)
            "lib/rustlib/$TRIPLE/lib/*.rmeta",
            "lib/rustlib/$TRIPLE/lib/*.so*",
            "lib/rustlib/$TRIPLE/lib/*.a",
            "lib/rustlib/$TRIPLE/lib/self-contained/**",
        ],
        allow_empty = True,
    ),
)

rust_toolchain(
    name = "rust_toolchain",
    allocator_library = "@rules_rust//ffi/cc/allocator_library",
    binary_ext = "",
    cargo = ":cargo",
${opt_attr}    default_edition = "2021",
    dylib_ext = ".so",
    exec_triple = "$TRIPLE",
    rust_doc = ":rustdoc",
    rust_std = ":rust_std-$TRIPLE",
    rustc = ":rustc",
    rustc_lib = ":rustc_lib",
    staticlib_ext = ".a",
    stdlib_linkflags = ["-ldl", "-lpthread"],
    target_triple = "$TRIPLE",
)
EOF
done_step "ok, stubs: ${STUB_MODULES[*]}; $RUSTC_VERSION"

# ----------------------------------------------------------------------------- 6. crates
begin crates "cargo fetch -> CARGO_HOME and Bazel's repository cache"
CH="$HOST_OFF/cargo-home" RC="$HOST_OFF/repo-cache"
mkdir -p "$CH" "$RC"
run_logged cargo-fetch env CARGO_HOME="$CH" cargo fetch --locked --manifest-path "$REPO/Cargo.toml"
# rules_rust's process_wrapper needs tinyjson (an http_archive of its .crate, pinned by sha256)
TJ_BZL="$CHROOT/usr/share/bazel/rules/rust/rust/private/repository_utils.bzl"
TJ_VER=$(sed -n 's|.*crates/tinyjson/tinyjson-\([0-9.]*\)\.crate.*|\1|p' "$TJ_BZL" | head -1)
TJ_SHA=$(awk '/TINYJSON_KWARGS/ { f = 1 } f && /sha256/ { gsub(/[",]/, "", $3); print $3; exit }' "$TJ_BZL")
if [ -z "$TJ_VER" ] || [ -z "$TJ_SHA" ]; then die "cannot find tinyjson's version/sha256 in $TJ_BZL"; fi
mkdir -p "$HOST_OFF/fetch-tinyjson/src"
: >"$HOST_OFF/fetch-tinyjson/src/lib.rs"
printf '[package]\nname = "fetch-tinyjson"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n[dependencies]\ntinyjson = "=%s"\n' \
  "$TJ_VER" >"$HOST_OFF/fetch-tinyjson/Cargo.toml"
run_logged cargo-fetch-tinyjson env CARGO_HOME="$CH" cargo fetch --manifest-path "$HOST_OFF/fetch-tinyjson/Cargo.toml"
# cargo >= 1.85 names the registry index cache dir with a new hash; cargo-bazel 0.15.0
# (crates-index 2.2) looks for the old name: link it.
for idx in "$CH"/registry/index/*-*; do
  if [ ! -d "$idx" ] || [ -L "$idx" ]; then continue; fi
  base=$(basename "$idx")
  [ "${base%-*}-6f17d22bba15001f" = "$base" ] || ln -sfn "$base" "$CH/registry/index/${base%-*}-6f17d22bba15001f"
done
n=0 # repository cache layout: content_addressable/sha256/<sha256>/file
for f in "$CH"/registry/cache/*/*.crate; do
  s=$(sha256sum "$f" | cut -d' ' -f1)
  mkdir -p "$RC/content_addressable/sha256/$s"
  [ -f "$RC/content_addressable/sha256/$s/file" ] || ln -f "$f" "$RC/content_addressable/sha256/$s/file"
  n=$((n + 1))
done
for s in $(sed -n 's/^checksum = "\([0-9a-f]*\)"/\1/p' "$REPO/Cargo.lock") "$TJ_SHA"; do
  [ -f "$RC/content_addressable/sha256/$s/file" ] || die "missing in the repository cache: sha256 $s"
done
done_step "ok, $n .crate files"

# ----------------------------------------------------------------------------- 7. workspace
begin workspace "copy the repository to $WS in the chroot"
mkdir -p "$CHROOT$WS"
find "$CHROOT$WS" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
  # tracked and untracked files, minus what .gitignore excludes (target/, bazel-*, ...)
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
    tar --null -T - -cf -) | tar -C "$CHROOT$WS" -xf -
else
  tar -C "$REPO" --exclude=./.git --exclude=./target --exclude='./bazel-*' --exclude='./examples/bazel-*' -cf - . |
    tar -C "$CHROOT$WS" -xf -
fi
done_step "ok, $(find "$CHROOT$WS" -type f | wc -l) files"

if [ "$CMD" = setup ]; then
  echo; printf '%s\n' "${TIMES[@]}"; echo "setup done in $(since "$T_ALL") s"
  exit 0
fi
if [ "$CMD" = shell ]; then
  exec unshare --mount --propagation private --net -- /bin/sh -c '
    ip link set lo up; C="$1"
    mount -t proc proc "$C/proc"; mount --rbind /dev "$C/dev"; mount --rbind /sys "$C/sys"
    exec chroot "$C" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c "cd '"$WS"' && exec bash -i"
  ' shell "$CHROOT"
fi

# ----------------------------------------------------------------------------- 8. Bazel
if [ "${CLEAN_BAZEL:-0}" = 1 ]; then
  echo "CLEAN_BAZEL=1: removing Bazel's output bases and disk cache"
  rm -rf --one-file-system "$CHROOT/root/.cache/bazel" "$HOST_OFF/disk-cache"
fi
# Bazel's disk cache (.bazelrc) only grows: start it afresh past 2 GB.
if [ "$(du -smx "$HOST_OFF/disk-cache" 2>/dev/null | cut -f1)" -gt 2048 ] 2>/dev/null; then
  echo "disk cache over 2 GB: emptying it"
  rm -rf --one-file-system "$HOST_OFF/disk-cache"
fi
begin bazel "Bazel, offline, in the chroot (log: $LOGS/bazel.log)"
set +e
in_chroot offline "$WS/tools/bazel-offline.sh _bazel-steps" 2>&1 | tee "$LOGS/bazel.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || die "Bazel step failed (exit $rc), log: $LOGS/bazel.log"
done_step ok

echo
echo "=== summary"
printf '%s\n' "${TIMES[@]}"
grep -E '^TIMING|Executed .* tests?|tests? pass' "$LOGS/bazel.log" | sed 's/^/  /'
echo "total: $(since "$T_ALL") s"
echo "ALL OK"
