#!/usr/bin/env bash
# Short fuzz run of every target (or those named as arguments), for CI or a quick check.
#
#   fuzz/smoke.sh                     # all targets, FUZZ_SECONDS (default 30) each
#   FUZZ_SECONDS=300 fuzz/smoke.sh matcher
#
# First replays the inputs under fuzz/regressions/<target>/, then fuzzes each target from
# its corpus (fuzz/corpus/<target>/, git-ignored; control_file is seeded with the .zsync
# files of tests/vectors). Prints the executions per target and exits non-zero if any
# target crashed, hung (FUZZ_TIMEOUT seconds for one input, default 25) or ran out of
# memory; the failing input is left in fuzz/artifacts/<target>/.
#
# Needs a nightly toolchain (FUZZ_TOOLCHAIN, default "nightly", through rustup) and
# cargo-fuzz, which is installed with `cargo install --locked cargo-fuzz` if missing.
set -euo pipefail

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-25}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
ALL_TARGETS=(control_file multipart matcher make_roundtrip)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=("${ALL_TARGETS[@]}")
fi
for t in "${targets[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
        echo "smoke: unknown target '$t' (have: ${ALL_TARGETS[*]})" >&2
        exit 2
    fi
done

if ! cargo "+$TOOLCHAIN" --version >/dev/null 2>&1; then
    echo "smoke: no '$TOOLCHAIN' Rust toolchain: cargo-fuzz needs nightly (sanitizers," >&2
    echo "smoke: -Z flags). Install one with 'rustup toolchain install nightly', or set" >&2
    echo "smoke: FUZZ_TOOLCHAIN to an installed nightly toolchain." >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

fuzz=(cargo "+$TOOLCHAIN" fuzz)
echo "smoke: $("${fuzz[@]}" --version), $(cargo "+$TOOLCHAIN" --version)"
echo "smoke: building ${targets[*]}"
build_start=$SECONDS
for t in "${targets[@]}"; do
    "${fuzz[@]}" build "$t"
done
echo "smoke: built in $((SECONDS - build_start)) s"

# Seed the control_file corpus with real control files.
if [[ " ${targets[*]} " == *" control_file "* ]] && [ -d tests/vectors ]; then
    mkdir -p fuzz/corpus/control_file
    if [ -z "$(ls -A fuzz/corpus/control_file)" ]; then
        cp tests/vectors/*.zsync fuzz/corpus/control_file/ 2>/dev/null || true
    fi
fi

declare -A result execs
failed=0
for t in "${targets[@]}"; do
    log=$(mktemp)
    status=ok
    # Regression inputs first: each must run cleanly.
    reg=()
    if [ -d "fuzz/regressions/$t" ]; then
        while IFS= read -r -d '' f; do reg+=("$f"); done \
            < <(find "fuzz/regressions/$t" -type f ! -name '*.md' -print0 | sort -z)
    fi
    if [ "${#reg[@]}" -gt 0 ]; then
        echo "smoke: $t: replaying ${#reg[@]} regression input(s)"
        if ! "${fuzz[@]}" run "$t" "${reg[@]}" -- -timeout="$FUZZ_TIMEOUT" >"$log" 2>&1; then
            tail -n 40 "$log"
            status="FAILED"
            echo "smoke: $t: a regression input under fuzz/regressions/$t/ fails (reproduce: cargo +$TOOLCHAIN fuzz run $t <file>)"
        fi
    fi
    if [ "$status" = ok ]; then
        echo "smoke: $t: fuzzing for ${FUZZ_SECONDS} s"
        args=(-max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -print_final_stats=1)
        if [ -f "fuzz/dict/$t.dict" ]; then
            args+=(-dict="fuzz/dict/$t.dict")
        fi
        if ! "${fuzz[@]}" run "$t" -- "${args[@]}" >"$log" 2>&1; then
            tail -n 60 "$log"
            status=FAILED
            echo "smoke: $t: failed; the input is in fuzz/artifacts/$t/ (reproduce: cargo +$TOOLCHAIN fuzz run $t <file>)"
        fi
    fi
    n=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1 || true)
    if [ -z "$n" ]; then
        n=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)
    fi
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    execs[$t]="${n:-0} executions${cov:+, $cov}"
    result[$t]=$status
    if [ "$status" != ok ]; then
        failed=1
    fi
    rm -f "$log"
done

echo
echo "smoke: summary (${FUZZ_SECONDS} s per target)"
for t in "${targets[@]}"; do
    printf '  %-15s %-10s %s\n' "$t" "${result[$t]}" "${execs[$t]}"
done
exit "$failed"
