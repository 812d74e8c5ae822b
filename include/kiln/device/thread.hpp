#pragma once
/// Thread and block indices and barriers, the same spelling on CUDA and HIP.
/// Only for device code: a host compiler sees nothing here.
///
///   int x = kiln::thread_index();        // threadIdx.x (also thread_index_x())
///   int y = kiln::thread_index_y();      // threadIdx.y; _z for z; the same for block_index,
///                                        // block_size (blockDim) and grid_size (gridDim)
///   int t = kiln::thread_rank();         // x + y*bx + z*bx*by: the thread's place in the block
///   int w = kiln::warp_index();          // t / warp_size
///   int l = kiln::lane_index();          // t % warp_size
///   kiln::sync_threads();                // __syncthreads()

#include "../detail/portability.hpp"

#if KILN_GPU_COMPILER

namespace kiln {

#if KILN_HIP
// clang's AMDGPU builtins: the HIP headers' threadIdx and friends are built on them.
#define KILN_DEVICE_AXIS_(axis)                                            \
  KILN_DEVICE KILN_FORCEINLINE int thread_index_##axis() {                 \
    return int(__builtin_amdgcn_workitem_id_##axis());                     \
  }                                                                        \
  KILN_DEVICE KILN_FORCEINLINE int block_index_##axis() {                  \
    return int(__builtin_amdgcn_workgroup_id_##axis());                    \
  }                                                                        \
  KILN_DEVICE KILN_FORCEINLINE int block_size_##axis() {                   \
    return int(__builtin_amdgcn_workgroup_size_##axis());                  \
  }                                                                        \
  KILN_DEVICE KILN_FORCEINLINE int grid_size_##axis() {                    \
    return int(__builtin_amdgcn_grid_size_##axis()) / block_size_##axis(); \
  }
#else
#define KILN_DEVICE_AXIS_(axis)                            \
  KILN_DEVICE KILN_FORCEINLINE int thread_index_##axis() { \
    return int(threadIdx.axis);                            \
  }                                                        \
  KILN_DEVICE KILN_FORCEINLINE int block_index_##axis() {  \
    return int(blockIdx.axis);                             \
  }                                                        \
  KILN_DEVICE KILN_FORCEINLINE int block_size_##axis() {   \
    return int(blockDim.axis);                             \
  }                                                        \
  KILN_DEVICE KILN_FORCEINLINE int grid_size_##axis() {    \
    return int(gridDim.axis);                              \
  }
#endif

// thread_index_x/y/z: the thread's index in its block along an axis; block_index_x/y/z:
// the block's index in the grid; block_size_x/y/z: threads per block along the axis
// (blockDim); grid_size_x/y/z: blocks in the grid along the axis (gridDim).
KILN_DEVICE_AXIS_(x)
KILN_DEVICE_AXIS_(y)
KILN_DEVICE_AXIS_(z)
#undef KILN_DEVICE_AXIS_

/// The x axis, which most kernels use alone.
KILN_DEVICE KILN_FORCEINLINE int thread_index() {
  return thread_index_x();
}
KILN_DEVICE KILN_FORCEINLINE int block_index() {
  return block_index_x();
}
KILN_DEVICE KILN_FORCEINLINE int block_size() {
  return block_size_x();
}
KILN_DEVICE KILN_FORCEINLINE int grid_size() {
  return grid_size_x();
}

/// Threads in the block, all axes (bx * by * bz).
KILN_DEVICE KILN_FORCEINLINE int block_threads() {
  return block_size_x() * block_size_y() * block_size_z();
}
/// The thread's place in its block, x fastest: the order in which the hardware groups
/// threads into warps.
KILN_DEVICE KILN_FORCEINLINE int thread_rank() {
  return thread_index_x() + block_size_x() * (thread_index_y() + block_size_y() * thread_index_z());
}
/// This thread's lane within its warp (wavefront): 0 .. warp_size - 1.
KILN_DEVICE KILN_FORCEINLINE int lane_index() {
  return thread_rank() % warp_size;
}
/// This thread's warp within its block.
KILN_DEVICE KILN_FORCEINLINE int warp_index() {
  return thread_rank() / warp_size;
}
/// Warps in the block (the last one may be partial where block_threads() is not a multiple
/// of warp_size).
KILN_DEVICE KILN_FORCEINLINE int block_warps() {
  return (block_threads() + warp_size - 1) / warp_size;
}

#if KILN_HIP
/// Waits for every thread of the block; shared-memory writes before it are visible after.
KILN_DEVICE KILN_FORCEINLINE void sync_threads() {
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
  __builtin_amdgcn_s_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}
#else
/// Waits for every thread of the block; shared-memory writes before it are visible after.
KILN_DEVICE KILN_FORCEINLINE void sync_threads() {
  __syncthreads();
}
#endif

}  // namespace kiln

#endif
