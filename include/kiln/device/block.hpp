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
/// On NVIDIA GPUs min_blocks is capped at what the target's threads a multiprocessor
/// allow (1536 on sm_86 and sm_89, 2048 on sm_80 and sm_90), so that one count serves every
/// target (ptxas ignores a larger one, with a warning). Empty on the host.
#if KILN_GPU_COMPILER && KILN_HIP
#define KILN_LAUNCH_BOUNDS(threads, min_blocks) \
  __attribute__((amdgpu_flat_work_group_size(1, threads), amdgpu_waves_per_eu(min_blocks)))
#elif KILN_GPU_COMPILER
namespace kiln::detail {
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 860 || __CUDA_ARCH__ == 870 || __CUDA_ARCH__ == 890)
inline constexpr int sm_threads = 1536;
#else
inline constexpr int sm_threads = 2048;
#endif
// Shared memory an SM gives its blocks (each block also takes 1 KiB the system reserves).
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 860 || __CUDA_ARCH__ == 890)
inline constexpr long long sm_shared_bytes = 100 * 1024;
#elif defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 800 || __CUDA_ARCH__ == 870)
inline constexpr long long sm_shared_bytes = 164 * 1024;
#else
inline constexpr long long sm_shared_bytes = 228 * 1024;
#endif
KILN_HOST_DEVICE constexpr int launch_min_blocks(int threads, int min_blocks) {
  return min_blocks * threads <= sm_threads ? min_blocks
         : sm_threads / threads > 1         ? sm_threads / threads
                                            : 1;
}
/// launch_min_blocks, capped again at the blocks of `shared_bytes` (dynamic and static)
/// the target's SM holds (100 KiB on sm_86 and sm_89, 164 KiB on sm_80, 228 KiB on
/// sm_90), so that registers are not given up for blocks that are never resident together
/// (NVIDIA targets only: KILN_LAUNCH_BOUNDS(threads, launch_min_blocks_shared(...))).
KILN_HOST_DEVICE constexpr int launch_min_blocks_shared(int threads, int min_blocks,
                                                        long long shared_bytes) {
  const long long by_shared = sm_shared_bytes / (shared_bytes + 1024);
  const int blocks = launch_min_blocks(threads, min_blocks);
  return blocks <= by_shared ? blocks : by_shared > 1 ? int(by_shared) : 1;
}
}  // namespace kiln::detail
#define KILN_LAUNCH_BOUNDS(threads, min_blocks) \
  __launch_bounds__(threads, ::kiln::detail::launch_min_blocks(threads, min_blocks))
#else
#define KILN_LAUNCH_BOUNDS(threads, min_blocks)
#endif

namespace kiln {

/// The count, mean and sum of squared deviations from the mean (M2) of a set of values:
/// what a numerically stable variance is reduced from (variance = m2 / n).
struct Moments {
  float n;
  float mean;
  float m2;
};
/// The Moments of the union of two disjoint sets (Chan et al.'s pairwise update), written
/// so that merge_moments(a, b) and merge_moments(b, a) give the same bits: a butterfly
/// over it leaves the same result in every lane. Empty sets (n == 0) are the identity;
/// sets of one mean keep it exactly (a constant row's mean is its value).
KILN_HOST_DEVICE constexpr Moments merge_moments(Moments a, Moments b) {
  const float n = a.n + b.n;
  if (a.n == 0.0f) return b;
  if (b.n == 0.0f) return a;
  const float d = b.mean - a.mean;  // its square is the same either way round
  const float mean = d == 0.0f ? a.mean : (a.n * a.mean + b.n * b.mean) / n;
  return {n, mean, (a.m2 + b.m2) + d * d * (a.n * b.n / n)};
}
/// The Moments of a set from its parts' gathered in two sums rather than merged pair by
/// pair (merge_moments divides twice a merge): with r the mean of one of the parts and N
/// the elements of all,
///   mean = r + (sum over the parts of gathered_offset(p, r)) / N
///   m2   = sum over the parts of gathered_spread(p, mean)
/// the terms n (mean_p - r) and m2_p + n (mean_p - mean)^2. A set of one value keeps it
/// exactly (every part's mean is r, every offset 0). The sums may be taken in any fixed
/// order (a butterfly over the lanes holding the parts gives every lane the same bits).
KILN_HOST_DEVICE constexpr float gathered_offset(Moments p, float reference) {
  return p.n * (p.mean - reference);
}
KILN_HOST_DEVICE constexpr float gathered_spread(Moments p, float mean) {
  const float d = p.mean - mean;
  return p.m2 + p.n * d * d;
}

/// merge_moments as an operation (butterfly_reduce's Op).
struct MergeMoments {
  KILN_HOST_DEVICE constexpr Moments operator()(Moments a, Moments b) const {
    return merge_moments(a, b);
  }
};

}  // namespace kiln

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

/// Two floats reduced together (a row's sum and sum of squares, say).
struct FloatPair {
  float a;
  float b;
};
/// row_reduce's Combine for sums: of a float, or of both members of a FloatPair.
struct RowSum {
  template <int Lanes>
  static KILN_DEVICE KILN_FORCEINLINE float lanes(float v) {
    return warp_sum<Lanes>(v);
  }
  template <int Lanes>
  static KILN_DEVICE KILN_FORCEINLINE FloatPair lanes(FloatPair v) {
    return {warp_sum<Lanes>(v.a), warp_sum<Lanes>(v.b)};
  }
};

/// row_reduce's Combine for Moments: a row's count, mean and M2 in one reduction (LayerNorm's
/// statistics, with no cancellation whatever the mean).
struct RowMoments {
  template <int Lanes>
  static KILN_DEVICE KILN_FORCEINLINE Moments lanes(Moments v) {
    return butterfly_reduce<Lanes>(v, MergeMoments{}, Shuffle{});
  }
  struct Shuffle {  // each member from lane (this lane ^ mask)
    KILN_DEVICE KILN_FORCEINLINE Moments operator()(Moments v, int mask) const {
      return {shuffle_xor(v.n, mask), shuffle_xor(v.mean, mask), shuffle_xor(v.m2, mask)};
    }
  };
};

/// A reduction over each row of a block laid out as RowsPerBlock rows of ThreadsPerRow
/// consecutive threads (thread t in row t / ThreadsPerRow), the row's result in every
/// thread of the row: within a warp by Combine's shuffles; across the row's warps through
/// shared memory, whose partials each warp combines by shuffles again. Every thread of the
/// block calls it, and the block is whole warps; it holds a barrier where a row spans
/// several warps (ThreadsPerRow > warp_size, a multiple of it).
///
///   // Combine: v over groups of Lanes neighbouring lanes, in each of them (RowSum's
///   // lanes<Lanes>(v) is warp_sum<Lanes>(v)):
///   const float total = kiln::row_reduce<kiln::RowSum, 256, 1>(part);
///
/// Parameters:
///   Combine   lanes<Lanes>(v) for Lanes a power of 2 up to warp_size; associative and
///             commutative (a sum, a maximum, a rescaled (max, sum) pair ...)
///   Use       a tag: each Use has shared memory of its own, so that different reductions
///             in a row need no barrier between them
///   round     calls of one Use alternate between two buffers by the parity of `round`:
///             a loop that reduces once an iteration passes its iteration count, and
///             needs no barrier of its own either (a warp can only write a buffer again
///             after every warp has passed the barrier of the round in between)
template <class Combine, int ThreadsPerRow, int RowsPerBlock, int Use = 0, class T>
KILN_DEVICE KILN_FORCEINLINE T row_reduce(T v, int round = 0) {
  static_assert((ThreadsPerRow & (ThreadsPerRow - 1)) == 0, "threads per row: a power of 2");
  static_assert(ThreadsPerRow * RowsPerBlock % warp_size == 0, "a block is whole warps");
  constexpr int kWarpsPerRow = ThreadsPerRow > warp_size ? ThreadsPerRow / warp_size : 1;
  constexpr int kLanesPerRow = ThreadsPerRow < warp_size ? ThreadsPerRow : warp_size;
  v = Combine::template lanes<kLanesPerRow>(v);
  if constexpr (kWarpsPerRow > 1) {
    static_assert(kWarpsPerRow <= warp_size, "a row's warp partials fit one warp");
    // (buffer: 2, row: RowsPerBlock, warp of the row: kWarpsPerRow) = (2, warp of the block)
    KILN_SHARED T partial[2][RowsPerBlock * kWarpsPerRow];
    T* buffer = partial[round & 1];
    if (lane_index() == 0) buffer[warp_index()] = v;
    sync_threads();
    // Every group of kWarpsPerRow lanes reads all the row's partials, lane i the i-th:
    // every warp of the row combines them alike.
    const int row_first_warp = warp_index() - warp_index() % kWarpsPerRow;
    v = Combine::template lanes<kWarpsPerRow>(buffer[row_first_warp + lane_index() % kWarpsPerRow]);
  }
  return v;
}

}  // namespace kiln

#endif
