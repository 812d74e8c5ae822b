#!/usr/bin/env bash
# Checks the row ops' split rows (rows shared by the whole GPU: softmax, LayerNorm and
# RMSNorm, kernels/softmax.cu and kernels/norm.cu), and the norms' staged rows ahead, on a
# machine with a GPU: every split test case of tests/ops/norm_gpu_test and
# tests/ops/softmax_gpu_test and the staged-ahead one, each in its own
# process and side by side (they compile their kernels on the CPU, which fills the kernel
# cache), then, with the GPU to themselves, the sweeps that time every candidate config of
# the long-row shapes (64 x 1M, 1024 x 65536; forward, the norms' with the residual, and
# backward) against a device copy (the forward's also against a plain copy kernel,
# --copy-kernel). Logs go to OUT (a test's log lines led by the seconds since the tests
# started).
#
#   scripts/split-check.sh [BUILD] [OUT] [PART]
#
# (defaults build/gpu, build/split-results and all; PART tests or sweeps runs that part
# alone, for machines that bound a command's time: the sweeps after the tests reuse the
# kernels they compiled, in the kernel cache.)
#
# BUILD is a Release build tree (scripts/gpu-check.sh makes build/gpu) or any folder with
# benchmarks/norm, benchmarks/softmax, tests/ops/norm_gpu_test and tests/ops/softmax_gpu_test
# at those paths. The kernel cache is KILN_CACHE_DIR (default OUT/cache). LANE_SECONDS
# (default 420) bounds each test process, SWEEP_SECONDS (default 240) each sweep.
set -uo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/gpu}"
out="${2:-build/split-results}"
part="${3:-all}"
case "$part" in
  all | tests | sweeps) ;;
  *) echo "split-check: PART is all, tests or sweeps, not '$part'" >&2; exit 2 ;;
esac
mkdir -p "$out"
out="$(cd "$out" && pwd)"
for f in benchmarks/norm benchmarks/softmax tests/ops/norm_gpu_test tests/ops/softmax_gpu_test; do
  [ -x "$build/$f" ] || { echo "split-check: $build/$f is missing; build it first" >&2; exit 2; }
done
export KILN_CACHE_DIR="${KILN_CACHE_DIR:-$out/cache}"
lane="${LANE_SECONDS:-420}"
sweep="${SWEEP_SECONDS:-240}"
status=0
start=$(date +%s)

if [ "$part" != sweeps ]; then
  pids=()
  names=()
  # run_lane NAME COMMAND...: in the background, output in NAME.log, each line led by the
  # seconds since the tests started (so that a case cut by the limit shows where it was,
  # and since when), the lane's status the command's.
  run_lane() {
    local name="$1"
    shift
    (
      timeout "$lane" "$@" 2>&1 | while IFS= read -r line; do
        printf '%4ds %s\n' "$(( $(date +%s) - start ))" "$line"
      done
      exit "${PIPESTATUS[0]}"
    ) > "$out/$name.log" &
    pids+=($!)
    names+=("$name")
  }
  for kind in layer_norm rms_norm; do
    for dtype in f16 bf16 f32; do
      run_lane "norm_split_${kind}_$dtype" "$build/tests/ops/norm_gpu_test" \
        -tc="split rows: $kind $dtype*"
    done
  done
  run_lane norm_backward_split "$build/tests/ops/norm_gpu_test" -tc='backward split rows: every*'
  run_lane norm_staged_ahead "$build/tests/ops/norm_gpu_test" -tc='staged rows ahead*'
  for dtype in f16 bf16 f32; do
    run_lane "softmax_split_$dtype" "$build/tests/ops/softmax_gpu_test" -tc="split rows: $dtype*"
    run_lane "softmax_backward_split_$dtype" "$build/tests/ops/softmax_gpu_test" \
      -tc="backward split rows: $dtype*"
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    rc=$?
    echo "${names[$i]}: exit $rc, $(grep -E '^ *[0-9]+s \[doctest\] (test cases|assertions)' \
      "$out/${names[$i]}.log" | sed -E 's/^ *[0-9]+s //' | tr -s ' ' | tr '\n' ' ')"
    [ $rc -eq 0 ] || status=1
  done
  echo "tests: $(( $(date +%s) - start )) s"
fi
[ "$part" = tests ] && exit $status

sweep_step() {  # sweep_step NAME COMMAND...: alone on the GPU, output in NAME.log
  local name="$1"
  shift
  timeout "$sweep" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc ($(( $(date +%s) - start )) s)"
  [ $rc -eq 0 ] || status=1
}
sweep_step norm_sweep "$build/benchmarks/norm" --sweep --copy-kernel \
  --kinds layer_norm,rms_norm --dtypes f16,f32 --shapes 64x1048576 --seconds 0.03
sweep_step norm_sweep_1024 "$build/benchmarks/norm" --sweep --copy-kernel \
  --kinds layer_norm,rms_norm --dtypes f16 --shapes 1024x65536 --seconds 0.03
sweep_step softmax_sweep "$build/benchmarks/softmax" --sweep --copy-kernel --dtypes f16,f32 \
  --shapes 64x1048576,1024x65536 --seconds 0.03
sweep_step norm_residual_sweep "$build/benchmarks/norm" --residual --sweep \
  --kinds layer_norm,rms_norm --dtypes f16 --shapes 64x1048576 --seconds 0.03
sweep_step norm_backward_sweep "$build/benchmarks/norm" --backward --sweep \
  --kinds layer_norm,rms_norm --dtypes f16 --shapes 64x1048576 --seconds 0.03
sweep_step softmax_backward_sweep "$build/benchmarks/softmax" --backward --sweep \
  --dtypes f16 --shapes 64x1048576 --seconds 0.03
exit $status
