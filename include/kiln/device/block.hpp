#pragma once
/// Block reductions and launch bounds. A block reduction combines one value per thread
/// over the whole block: warp by warp with shuffles (warp.hpp), then the warps' results
/// through a small shared scratch; every thread gets the result.
///
///   float total = kiln::block_sum(partial);       // every thread of the block calls it
///   float top = kiln::block_max(v);
///   int n = kiln::block_reduce(count, kiln::Plus{});
///
///   KILN_KERNEL void KILN_LAUNCH_BOUNDS(256, 2) my_kernel(...);  // <= 256 threads, 2 blocks/SM

#include "warp.hpp"

/// Launch bounds: the kernel is launched with at most `threads` threads a block, and the
/// compiler should keep registers low enough for `min_blocks` blocks a multiprocessor (on
/// AMD: waves per execution unit, as HIP's __launch_bounds__ reads its second argument).
/// Empty on the host.
#if KILN_GPU_COMPILER && KILN_HIP
#define KILN_LAUNCH_BOUNDS(threads, min_blocks) \
  __attribute__((amdgpu_flat_work_group_size(1, threads), amdgpu_waves_per_eu(min_blocks)))
#elif KILN_GPU_COMPILER
#define KILN_LAUNCH_BOUNDS(threads, min_blocks) __launch_bounds__(threads, min_blocks)
#else
#define KILN_LAUNCH_BOUNDS(threads, min_blocks)
#endif

#if KILN_GPU_COMPILER

namespace kiln {

/// op over `v` of every thread of the block, in every thread. Every thread of the block
/// must call it, and the block is whole warps (block_threads() a multiple of warp_size:
/// the shuffles name every lane). It holds two barriers: one to publish the warps'
/// results, one so that the scratch is free again for the next call.
///
/// Parameters:
///   MaxThreads  the largest block it is used with (the scratch holds MaxThreads /
///               warp_size values; 1024 by default)
///   op          an associative, commutative operation (Plus, Maximum, Minimum, ...)
template <int MaxThreads = 1024, class T, class Op>
KILN_DEVICE KILN_FORCEINLINE T block_reduce(T v, Op op) {
  static_assert(MaxThreads % warp_size == 0, "a block is whole warps");
  constexpr int kMaxWarps = MaxThreads / warp_size;
  // One slot per warp of the block: (WARP: block_warps()).
  KILN_SHARED T per_warp[kMaxWarps];
  v = warp_reduce(v, op);
  if (lane_index() == 0) per_warp[warp_index()] = v;
  sync_threads();
  // Every thread folds the warps' results in the same order: the same bits everywhere
  // (the reads are broadcasts, all threads reading one address at a time).
  v = per_warp[0];
  const int warps = block_warps();
  for (int w = 1; w < warps; ++w) v = op(v, per_warp[w]);
  sync_threads();
  return v;
}
/// The sum of `v` over the block, in every thread.
template <int MaxThreads = 1024, class T>
KILN_DEVICE KILN_FORCEINLINE T block_sum(T v) {
  return block_reduce<MaxThreads>(v, Plus{});
}
/// The maximum of `v` over the block, in every thread.
template <int MaxThreads = 1024, class T>
KILN_DEVICE KILN_FORCEINLINE T block_max(T v) {
  return block_reduce<MaxThreads>(v, Maximum{});
}
/// The minimum of `v` over the block, in every thread.
template <int MaxThreads = 1024, class T>
KILN_DEVICE KILN_FORCEINLINE T block_min(T v) {
  return block_reduce<MaxThreads>(v, Minimum{});
}

}  // namespace kiln

#endif
