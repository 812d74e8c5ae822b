#pragma once
/// Thread and block indices and barriers, the same spelling on CUDA and HIP.
/// Only for device code: a host compiler sees nothing here.

#include "../detail/portability.hpp"

#if KILN_GPU_COMPILER

namespace kiln {

#if KILN_HIP
KILN_DEVICE KILN_FORCEINLINE int thread_index() {
  return int(__builtin_amdgcn_workitem_id_x());
}
KILN_DEVICE KILN_FORCEINLINE int block_index() {
  return int(__builtin_amdgcn_workgroup_id_x());
}
KILN_DEVICE KILN_FORCEINLINE int block_size() {
  return int(__builtin_amdgcn_workgroup_size_x());
}
KILN_DEVICE KILN_FORCEINLINE int grid_size() {
  return int(__builtin_amdgcn_grid_size_x()) / block_size();
}
/// Waits for every thread of the block; shared-memory writes before it are visible after.
KILN_DEVICE KILN_FORCEINLINE void sync_threads() {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
  __builtin_amdgcn_s_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}
#else
KILN_DEVICE KILN_FORCEINLINE int thread_index() {
  return int(threadIdx.x);
}
KILN_DEVICE KILN_FORCEINLINE int block_index() {
  return int(blockIdx.x);
}
KILN_DEVICE KILN_FORCEINLINE int block_size() {
  return int(blockDim.x);
}
KILN_DEVICE KILN_FORCEINLINE int grid_size() {
  return int(gridDim.x);
}
/// Waits for every thread of the block; shared-memory writes before it are visible after.
KILN_DEVICE KILN_FORCEINLINE void sync_threads() {
  __syncthreads();
}
#endif

/// This thread's lane within its warp (wavefront).
KILN_DEVICE KILN_FORCEINLINE int lane_index() {
  return thread_index() % warp_size;
}
/// This thread's warp within its block.
KILN_DEVICE KILN_FORCEINLINE int warp_index() {
  return thread_index() / warp_size;
}

}  // namespace kiln

#endif
