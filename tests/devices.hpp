#pragma once
// The properties of the GPUs kiln's host tests plan for, without one: what a factory's
// candidates and a kernel's launch depend on.

#include "kiln/rt/device.hpp"

namespace kiln_test {

/// An NVIDIA H200 (sm_90): 132 SMs, 227 KiB of shared memory a block by opt-in, 228 KiB an
/// SM.
inline kiln::rt::DeviceProperties h200_properties() {
  kiln::rt::DeviceProperties d;
  d.name = "H200";
  d.platform = kiln::rt::Platform::cuda;
  d.arch = "sm_90";
  d.compute_major = 9;
  d.multiprocessors = 132;
  d.shared_per_block_optin = 227 * 1024;
  d.shared_per_multiprocessor = 228 * 1024;
  d.warp_size = 32;
  return d;
}

/// An NVIDIA A100 (sm_80): 108 SMs, 163 KiB of shared memory a block by opt-in (164 KiB an
/// SM), no thread-block clusters.
inline kiln::rt::DeviceProperties a100_properties() {
  kiln::rt::DeviceProperties d = h200_properties();
  d.name = "A100";
  d.arch = "sm_80";
  d.compute_major = 8;
  d.multiprocessors = 108;
  d.shared_per_block_optin = 163 * 1024;
  d.shared_per_multiprocessor = 164 * 1024;
  return d;
}

/// An AMD MI300 (gfx942): wavefronts of 64, 64 KiB of shared memory a block (and a CU).
inline kiln::rt::DeviceProperties mi300_properties() {
  kiln::rt::DeviceProperties d = h200_properties();
  d.name = "MI300";
  d.platform = kiln::rt::Platform::hip;
  d.arch = "gfx942";
  d.compute_major = 0;
  d.multiprocessors = 304;
  d.warp_size = 64;
  d.shared_per_block_optin = 64 * 1024;
  d.shared_per_multiprocessor = 64 * 1024;
  return d;
}

}  // namespace kiln_test
