#!/usr/bin/env bash
# Compiler launcher for kiln_header_check: runs the compile command it is given with
# -fsyntax-only (every header is parsed and checked with the tests' warnings, but no code
# or debug information is generated, about 40% of the time), then writes the empty object
# file the build expects. The dependency file (-MD -MF) is still written, so a header's
# check reruns only when what it includes changes.
set -euo pipefail
out=""
args=("$@")
for ((i = 0; i < ${#args[@]}; ++i)); do
  if [[ ${args[i]} == -o ]]; then
    out=${args[i + 1]}
  fi
done
"$@" -fsyntax-only
if [[ -n $out ]]; then
  : >"$out"
fi
