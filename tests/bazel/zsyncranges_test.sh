#!/usr/bin/env bash
# zsyncranges on lorem_b8.zsync (made by the zsyncfile rule, blocksize 8) against seeds.
# The expected lines are the reference zsyncranges' output on the same data.
# Usage: zsyncranges_test.sh ZSYNCRANGES LOREM_ZSYNC LOREM SEED_CHANGED SEED_FRONT_REMOVED EMPTY
set -euo pipefail
zsyncranges=$1 zsync=$2 lorem=$3 changed=$4 front_removed=$5 empty=$6
failures=0

check() { # check SEED EXPECTED_JSON
  local got rc
  got=$("$zsyncranges" "$zsync" "$1") && rc=0 || rc=$?
  if [ "$rc" != 0 ]; then
    echo "FAIL: zsyncranges $zsync $1 exited with $rc"
    failures=$((failures + 1))
  elif [ "$got" != "$2" ]; then
    printf 'FAIL: zsyncranges %s %s\n  got:  %s\n  want: %s\n' "$zsync" "$1" "$got" "$2"
    failures=$((failures + 1))
  else
    echo "ok: $1"
  fi
}

head='{"length":1057,"checksum":{"SHA-1":"b1b8d0c324b78a99abfd2eec90260b1c2ba02eb8"}'
check "$lorem" "$head"',"reuse":[[0,0,1057]],"download":[]}'
check "$changed" "$head"',"reuse":[[0,25,168],[184,209,264],[456,481,104],[576,601,224],[808,833,248],[1056,1114,1]],"download":[[168,183],[448,455],[560,575],[800,807]]}'
check "$front_removed" "$head"',"reuse":[[88,7,969]],"download":[[0,87]]}'
check "$empty" "$head"',"reuse":[],"download":[[0,1056]]}'

# A missing seed: exit 1 and only the error message.
if out=$("$zsyncranges" "$zsync" /nonexistent/seed 2>&1); then
  echo "FAIL: zsyncranges with a missing seed exited with 0"
  failures=$((failures + 1))
elif [ "$out" != "/nonexistent/seed: No such file or directory" ]; then
  echo "FAIL: zsyncranges with a missing seed printed: $out"
  failures=$((failures + 1))
else
  echo "ok: missing seed"
fi

[ "$failures" = 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all zsyncranges checks passed"
