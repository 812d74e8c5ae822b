#!/usr/bin/env bash
# Installs the Debian 12 packages kiln's build and tests need, where they are missing.
# The CUDA toolkit (for cuda.h, nvrtc.h and nvcc) is not a Debian package: install it
# from NVIDIA, at /usr/local/cuda or where CUDA_PATH points.
set -euo pipefail

# clang-19, lld-19 and llvm-19 compile kernels for gfx942 (the hip tests); libamdhip64-dev
# gives the HIP headers kiln's HIP backend builds against. clang-19 with libclang-rt-19-dev
# (its sanitizer and libFuzzer runtimes) builds the asan preset and the fuzz tests.
# libxgboost-dev: the performance model of kernel factories (loaded at run time; optional).
# libcli11-dev: the command line of the kiln tool (tools/kiln; without it the tool is skipped).
packages=(cmake ninja-build g++ libfmt-dev nlohmann-json3-dev libxxhash-dev doctest-dev
          clang-19 lld-19 llvm-19 libclang-rt-19-dev libamdhip64-dev libxgboost-dev
          libcli11-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "kiln: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cuda="${CUDA_PATH:-${CUDA_HOME:-/usr/local/cuda}}"
if [ ! -f "$cuda/include/nvrtc.h" ]; then
  echo "kiln: no CUDA toolkit at $cuda (nvrtc.h missing); install it or set CUDA_PATH" >&2
  exit 1
fi
