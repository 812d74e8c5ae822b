#!/usr/bin/env bash
# Builds kiln (Release) on a machine with a GPU, runs every `gpu` test and every
# benchmark, and leaves the logs and JSON results in DIR (default build/gpu-results).
# Extra CMake arguments (a prefix path for the header-only dependencies, say) come from
# KILN_CMAKE_ARGS. The softmax benchmark runs with KILN_TUNE=full on a fresh tuning
# database, whose records benchmarks/tune_model then uses to evaluate the performance model.
#
#   scripts/gpu-check.sh [DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/gpu-results}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
status=0
step() {  # step NAME TIMEOUT COMMAND...: runs COMMAND, its output in NAME.log and on stdout
  local name="$1" limit="$2"
  shift 2
  echo "== $name"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$out/$name.log"
  [ $rc -eq 0 ] || { echo "!! $name exited $rc"; status=1; }
}

nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > "$out/gpu.txt" 2>&1
# shellcheck disable=SC2086
cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release ${KILN_CMAKE_ARGS:-} \
  > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
# Everything: each `gpu` test (hopper_gpu_test, cli_profile_gpu with the kiln tool, ...),
# the benchmarks and the examples.
cmake --build build/gpu -j "$(nproc)" > "$out/build.log" 2>&1 ||
  { grep -E "error" -A5 "$out/build.log" | head -60; exit 1; }

export KILN_CACHE_DIR="$out/cache"
step gpu_tests 600 ctest --test-dir build/gpu -L gpu --output-on-failure
# Hardware counters against Nsight Compute on the same softmax launches (docs/profiling.md):
# the medians counters_gpu_test prints against ncu's over those launches.
step counters_softmax 120 build/gpu/tests/prof/counters_gpu_test -tc='*softmax*'
if command -v ncu > /dev/null; then
  # (Under ncu the test's own counter pass cannot start, so the test fails there: by design.)
  step ncu_softmax 180 bash -c "ncu --clock-control none --cache-control none -k regex:softmax \
    -c 8 --metrics dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum \
    build/gpu/tests/prof/counters_gpu_test -tc='*softmax*'; exit 0"
fi
step launch_overhead 120 build/gpu/benchmarks/launch_overhead --json "$out/launch_overhead.json"
step factory_lookup 60 build/gpu/benchmarks/factory_lookup --json "$out/factory_lookup.json"
step jit_cache 120 build/gpu/benchmarks/jit_cache --json "$out/jit_cache.json"
KILN_TUNE=full KILN_TUNING_DB="$out/softmax_tuning.json" \
  step softmax 300 build/gpu/benchmarks/softmax --seconds 1 --json "$out/softmax.json"
step softmax_backward 300 build/gpu/benchmarks/softmax --backward --seconds 0.5 \
  --json "$out/softmax_backward.json"
step norm 300 build/gpu/benchmarks/norm --seconds 0.3 --json "$out/norm.json"
step norm_residual 300 build/gpu/benchmarks/norm --residual --dtypes f16,bf16 --seconds 0.3 \
  --json "$out/norm_residual.json"
step norm_backward 300 build/gpu/benchmarks/norm --backward --seconds 0.3 \
  --json "$out/norm_backward.json"
step gemm 420 build/gpu/benchmarks/gemm --seconds 0.5 --json "$out/gemm.json"
step gemm_epilogue_tanh 120 build/gpu/benchmarks/gemm --shapes 8192x8192x8192 \
  --epilogue bias_gelu_tanh --seconds 0.3 --json "$out/gemm_epilogue_tanh.json"
# The bias alone: the part of the fused epilogue's cost both GELU forms share.
step gemm_epilogue_bias 120 build/gpu/benchmarks/gemm --shapes 8192x8192x8192 \
  --epilogue bias --seconds 0.3 --json "$out/gemm_epilogue_bias.json"
# The grouped convolution (fprop, dgrad, wgrad; f16 and bf16) against cuDNN, whose whole
# output each of kiln's must match.
step conv 420 build/gpu/benchmarks/conv --seconds 0.2 --json "$out/conv.json"
step tune_model 120 build/gpu/benchmarks/tune_model --db "$out/softmax_tuning.json" \
  --json "$out/tune_model.json"
# The GEMM tuned with KILN_TUNE=full over the benchmark's problems (f16), then the model
# judged on those records: how often its top k hold the best config, and the timing saved.
KILN_TUNE=full KILN_TUNING_DB="$out/gemm_tuning.json" \
  step gemm_tuned 420 build/gpu/benchmarks/gemm --dtypes f16 --seconds 0.2 \
  --json "$out/gemm_tuned.json"
step tune_model_gemm 120 build/gpu/benchmarks/tune_model --db "$out/gemm_tuning.json" \
  --factory gemm --json "$out/tune_model_gemm.json"
step quickstart 60 build/gpu/examples/quickstart/quickstart
step gemm_epilogue 60 build/gpu/examples/gemm_epilogue/gemm_epilogue
step custom_factory 120 build/gpu/examples/custom_factory/custom_factory "$out/transpose_tuning.json"
step profile 60 build/gpu/examples/profile/profile "$out/profile"

# The multi-device test again under ThreadSanitizer (the CPU side; the profiler on device
# events, since TSan cannot see into CUPTI's own locks).
# shellcheck disable=SC2086
if cmake -S . -B build/gpu-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
     -DCMAKE_CXX_FLAGS="-fsanitize=thread -g" ${KILN_CMAKE_ARGS:-} > "$out/tsan-configure.log" 2>&1 &&
   cmake --build build/gpu-tsan -j "$(nproc)" --target multi_gpu_test > "$out/tsan-build.log" 2>&1; then
  KILN_PROFILE_BACKEND=events step multi_gpu_tsan 200 build/gpu-tsan/tests/multi_gpu/multi_gpu_test
else
  echo "!! the ThreadSanitizer build failed"; status=1
fi
exit $status
