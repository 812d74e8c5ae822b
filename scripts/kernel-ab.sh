#!/usr/bin/env bash
# Times a change of kernel source against a base, in one session on one GPU: runs COMMAND
# (a benchmark, say) alternately with the kernels/ and include/ of BASE and with this
# repository's working tree's, ROUNDS times each (A, B, A, B, ...), pointing kiln at each
# through KILN_KERNEL_PATH and KILN_INCLUDE_DIR, each side with its own kernel cache (so
# that a kernel compiled from one side's source never serves the other).
#
#   scripts/kernel-ab.sh [-n ROUNDS] [-o OUT] [-g PATTERN] [-x PROGRAM] BASE -- COMMAND [ARGS...]
#
# BASE is a git revision of this repository (main, HEAD~1, a commit) or a folder holding
# kernels/ and include/. ROUNDS defaults to 2, OUT to build/kernel-ab. COMMAND runs in the
# caller's folder; its output goes to OUT/a-1.log, OUT/b-1.log, OUT/a-2.log, ... and the
# lines of each that match the extended regular expression PATTERN (default: the
# benchmarks' table rows that name a kiln kernel or the copy, '^\| (kiln|copy|.*__)') are
# printed, run by run. The exit status is 1 if any run failed, 2 for bad arguments.
#
# The host code is COMMAND's own on both sides: BASE may differ from the working tree in
# kernel source (kernels/, the device headers under include/) but not in what the host
# generates for it (configs, the spec's constants), or its kernels may not compile. Where
# the host code differs too, build BASE's program and name it with -x: BASE's side then
# runs PROGRAM in place of COMMAND (with the same ARGS), the working tree's side COMMAND.
#
# Example (a branch's kernels against main's, on a Release build of the branch):
#   scripts/kernel-ab.sh main -- build/release/benchmarks/norm --sweep --kinds rms_norm \
#     --dtypes f16 --shapes 64x1048576 --seconds 0.03
# (and with main's own benchmark, built in build/main, where the branch changed host code:
#   scripts/kernel-ab.sh -x build/main/benchmarks/norm main -- build/release/benchmarks/norm ...)
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
usage() {
  echo "usage: scripts/kernel-ab.sh [-n ROUNDS] [-o OUT] [-g PATTERN] [-x PROGRAM] BASE --" \
    "COMMAND [ARGS...]" >&2
  exit 2
}
rounds=2
out="$root/build/kernel-ab"
pattern='^\| (kiln|copy|.*__)'
base_program=""
while getopts "n:o:g:x:" opt; do
  case "$opt" in
    n) rounds="$OPTARG" ;;
    o) out="$OPTARG" ;;
    g) pattern="$OPTARG" ;;
    x) base_program="$OPTARG" ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
base="$1"
shift
if [ "${1:-}" != "--" ] || [ $# -lt 2 ]; then
  echo "kernel-ab: put the command after '--': scripts/kernel-ab.sh BASE -- COMMAND [ARGS...]" >&2
  exit 2
fi
shift
case "$rounds" in
  '' | *[!0-9]* | 0) echo "kernel-ab: -n takes a whole number of rounds from 1, not '$rounds'" >&2; exit 2 ;;
esac

mkdir -p "$out" || exit 2
out="$(cd "$out" && pwd)"
if [ -d "$base/kernels" ] && [ -d "$base/include" ]; then
  a_tree="$(cd "$base" && pwd)"
elif git -C "$root" rev-parse --quiet --verify "$base^{commit}" > /dev/null; then
  a_tree="$out/base"
  rm -rf "$a_tree" && mkdir -p "$a_tree"
  git -C "$root" archive "$base" kernels include | tar -x -C "$a_tree" || {
    echo "kernel-ab: could not export kernels/ and include/ of '$base'" >&2
    exit 2
  }
else
  echo "kernel-ab: BASE '$base' is neither a git revision of $root nor a folder with" \
    "kernels/ and include/" >&2
  exit 2
fi
b_tree="$root"
if [ -n "$base_program" ] && ! [ -x "$base_program" ]; then
  echo "kernel-ab: -x $base_program is not a program this shell can run" >&2
  exit 2
fi
echo "kernel-ab: A = $base ($a_tree${base_program:+, running $base_program}), B = the working" \
  "tree ($b_tree), $rounds rounds; logs in $out"

a_command=("$@")  # side A's command: -x's program in place of COMMAND's
[ -n "$base_program" ] && a_command[0]="$base_program"

status=0
for ((r = 1; r <= rounds; ++r)); do
  for side in a b; do
    tree="$a_tree"
    command=("${a_command[@]}")
    [ "$side" = b ] && tree="$b_tree" && command=("$@")
    log="$out/$side-$r.log"
    env KILN_KERNEL_PATH="$tree/kernels" KILN_INCLUDE_DIR="$tree/include" \
      KILN_CACHE_DIR="$out/cache-$side" "${command[@]}" > "$log" 2>&1
    rc=$?
    echo "== $side-$r ($( [ "$side" = a ] && echo "$base" || echo "working tree" )): exit $rc"
    grep -E -- "$pattern" "$log"
    [ $rc -eq 0 ] || status=1
  done
done
exit $status
