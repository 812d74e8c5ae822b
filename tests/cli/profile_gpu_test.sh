#!/usr/bin/env bash
# kiln profile on a GPU: runs an example under the profiler, then checks the top-N table it
# printed and that the trace it wrote parses (kiln report reads it back). Exit 77 (skipped)
# without a GPU. Arguments: the kiln tool, the example program, a scratch directory.
set -euo pipefail
kiln="$1" program="$2" dir="$3"
if "$kiln" info --json | grep -q '"devices": \[\]'; then
  echo "no GPU: kiln profile is not tested here"
  exit 77
fi
rm -rf "$dir"
"$kiln" profile -o "$dir" -- "$program" | tee "$dir.out"
grep -q '| # | kernel |' "$dir.out"
for f in trace.json profile.json kernels.csv roofline.svg; do
  test -s "$dir/$f" || { echo "kiln profile wrote no $dir/$f"; exit 1; }
done
"$kiln" report "$dir/trace.json" --top 5
"$kiln" report "$dir/profile.json" --json > "$dir/check.json"
grep -q '"format": "kiln-profile"' "$dir/check.json"
"$kiln" compare "$dir/profile.json" "$dir/trace.json" --threshold 1
# With hardware counters: a second run of the program, each kernel's counters joined to its
# timing record, the counter columns in the table and the counters in the profile.
"$kiln" profile --counters default -o "$dir-counters" -- "$program" | tee "$dir-counters.out"
grep -q '| DRAM GB/s |' "$dir-counters.out"
test -s "$dir-counters/counters.json" || { echo "kiln profile --counters wrote no counters.json"; exit 1; }
grep -q '"dram__bytes_read.sum"' "$dir-counters/profile.json"
grep -q '"dram__bytes_read.sum"' "$dir-counters/trace.json"
"$kiln" compare "$dir/profile.json" "$dir-counters/profile.json" --threshold 50 || true
echo "kiln profile: table printed, trace, profile, CSV and roofline written and read back"
