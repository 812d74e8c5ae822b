#!/usr/bin/env bash
# Checks scripts/kernel-ab.sh without a GPU: the command stands in for a benchmark and
# prints the kernel source and cache kiln would be pointed at.
#
#   tests/scripts/kernel_ab_test.sh SCRATCH
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
ab="$root/scripts/kernel-ab.sh"
scratch="$1"
rm -rf "$scratch" && mkdir -p "$scratch" || exit 1
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# shellcheck disable=SC2016  # (expanded by the command's shell, with kernel-ab's environment)
show='echo "| kiln $KILN_KERNEL_PATH $KILN_INCLUDE_DIR $KILN_CACHE_DIR"; echo not shown'

# A folder as BASE: two rounds, A first, each side its own sources and cache.
mkdir -p "$scratch/base/kernels" "$scratch/base/include"
"$ab" -n 2 -o "$scratch/folder" "$scratch/base" -- sh -c "$show" > "$scratch/folder.txt" 2>&1
rc=$?
[ $rc -eq 0 ] || fail "a folder BASE exited $rc"
runs=$(grep -c '^== ' "$scratch/folder.txt")
[ "$runs" = 4 ] || fail "2 rounds made $runs runs, not 4"
[ "$(grep '^== ' "$scratch/folder.txt" | cut -c1-6 | tr '\n' ' ')" = "== a-1 == b-1 == a-2 == b-2 " ] ||
  fail "runs not in the order a-1, b-1, a-2, b-2: $(grep '^== ' "$scratch/folder.txt")"
grep -q "| kiln $scratch/base/kernels $scratch/base/include $scratch/folder/cache-a" \
  "$scratch/folder/a-2.log" || fail "side A did not see BASE's sources and cache-a"
grep -q "| kiln $root/kernels $root/include $scratch/folder/cache-b" "$scratch/folder/b-1.log" ||
  fail "side B did not see the working tree's sources and cache-b"
[ "$(grep -c '^| kiln' "$scratch/folder.txt")" = 4 ] || fail "the pattern's lines are not printed"
grep -q 'not shown' "$scratch/folder.txt" && fail "lines outside the pattern were printed"

# A git revision as BASE: its kernels/ and include/ exported (where this is a clone).
if git -C "$root" rev-parse --quiet --verify HEAD > /dev/null 2>&1; then
  "$ab" -n 1 -o "$scratch/rev" HEAD -- sh -c "$show" > "$scratch/rev.txt" 2>&1 ||
    fail "BASE HEAD exited $?"
  [ -f "$scratch/rev/base/kernels/norm.cu" ] || fail "HEAD's kernels/ were not exported"
  [ -d "$scratch/rev/base/include/kiln" ] || fail "HEAD's include/ was not exported"
  grep -q "| kiln $scratch/rev/base/kernels " "$scratch/rev/a-1.log" ||
    fail "side A did not see the exported sources"
else
  echo "(not a git clone: the git revision case is skipped)"
fi

# -x PROGRAM: BASE's side runs PROGRAM with COMMAND's arguments, the working tree's COMMAND.
printf '#!/bin/sh\necho "| kiln base-program $*"\n' > "$scratch/base-program"
chmod +x "$scratch/base-program"
# shellcheck disable=SC2016  # ($0 is the command's own)
"$ab" -n 1 -o "$scratch/program" -x "$scratch/base-program" "$scratch/base" -- \
  sh -c 'echo "| kiln working-tree $0"' one > "$scratch/program.txt" 2>&1 ||
  fail "-x exited $?"
grep -q "| kiln base-program -c echo \"| kiln working-tree \$0\" one" "$scratch/program/a-1.log" ||
  fail "side A did not run -x's program with the command's arguments: $(cat "$scratch/program/a-1.log")"
grep -q "| kiln working-tree one" "$scratch/program/b-1.log" ||
  fail "side B did not run the command: $(cat "$scratch/program/b-1.log")"

# A failing command fails the run, and every round still runs.
"$ab" -n 2 -o "$scratch/failing" "$scratch/base" -- sh -c 'exit 3' > "$scratch/failing.txt" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "a failing command exited $rc, not 1"
[ "$(grep -c 'exit 3' "$scratch/failing.txt")" = 4 ] || fail "not every failing run was reported"

# Bad arguments: exit 2 with a message naming what is wrong.
expect_usage() {  # expect_usage WHAT MESSAGE ARGS...
  local what="$1" message="$2"
  shift 2
  local text
  text=$("$ab" "$@" 2>&1)
  local rc=$?
  [ $rc -eq 2 ] || fail "$what exited $rc, not 2"
  echo "$text" | grep -q -- "$message" || fail "$what said '$text', not '$message'"
}
expect_usage "no '--'" "put the command after '--'" -o "$scratch/bad" "$scratch/base" true
expect_usage "no command" "put the command after '--'" -o "$scratch/bad" "$scratch/base" --
expect_usage "an unknown BASE" "neither a git revision" -o "$scratch/bad" no-such-revision-xyz -- true
expect_usage "-n 0" "whole number of rounds" -n 0 -o "$scratch/bad" "$scratch/base" -- true
expect_usage "-n two" "whole number of rounds" -n two -o "$scratch/bad" "$scratch/base" -- true
expect_usage "-x of no program" "not a program" -x "$scratch/none" -o "$scratch/bad" \
  "$scratch/base" -- true
expect_usage "nothing" "usage:"

if [ $failures -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
echo "kernel-ab: all checks passed"
