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

#include "math.hpp"
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

/// A set's sums about a shift k: n elements, a = sum(h - k), b = sum((h - k)^2). Its
/// mean is k + a / n and its M2 is b - a^2 / n, which cancels in f32 as much as k lies
/// off the mean in its standard deviations (as k is a set's first element that is an
/// outlier: its sums over 4096 elements lost 4 digits). ShiftedSums are what each thread
/// accumulates about its own shift, near its own elements; shifted_union (RowShiftedSums)
/// reduces them about a shift near their union's mean, never about an outlier.
struct ShiftedSums {
  float n;
  float k;
  float a;
  float b;
};
/// The same set's sums about `s` (exact in real arithmetic; in f32 without cancellation
/// where s is near the set's mean: b' = b + d (2 a + n d), d = k - s).
KILN_HOST_DEVICE constexpr ShiftedSums reshifted(ShiftedSums p, float s) {
  const float d = p.k - s;
  return {p.n, s, p.a + p.n * d, p.b + d * (2.0f * p.a + p.n * d)};
}
/// Whether a set's sums are about a shift within 4 of its standard deviations of its
/// mean (n d^2 <= 16 M2, d = a / n: b = M2 + n d^2, so M2 = b - a d cancels at most 17
/// times), or the set is empty.
KILN_HOST_DEVICE constexpr bool shifted_near(ShiftedSums p) {
  const float ad = p.n > 0.0f ? p.a * (p.a * rcp_approx(p.n)) : 0.0f;
  return 17.0f * ad <= 16.0f * p.b;
}
/// The mean and M2 of a non-empty set from its ShiftedSums (M2 clamped at 0).
KILN_HOST_DEVICE constexpr Moments shifted_moments(ShiftedSums p) {
  const float offset = p.a / p.n;
  const float m2 = p.b - p.a * offset;
  return {p.n, p.k + offset, m2 > 0.0f ? m2 : 0.0f};
}
/// The shift a union's sums are taken about: its approximate mean r + offset / n from its
/// count and its elements' sum about r (rcp_approx's ulp is of no account for a shift; r
/// itself where the offset is 0, as for sets of one value, or the union is empty).
KILN_HOST_DEVICE constexpr float union_shift(float n, float offset, float r) {
  return n > 0.0f ? r + offset * rcp_approx(n) : r;
}
/// The ShiftedSums of the union of two disjoint sets (a thread's running sums and those of
/// its latest elements, say: sums of many elements about one shift lose digits as the
/// shift lies off their mean), about its approximate mean; `x` alone where `y` is empty,
/// `y` alone where `x` is.
KILN_HOST_DEVICE constexpr ShiftedSums merged(ShiftedSums x, ShiftedSums y) {
  if (x.n == 0.0f) return y;
  if (y.n == 0.0f) return x;
  const float n = x.n + y.n;
  const float m = union_shift(n, x.a + (y.a + y.n * (y.k - x.k)), x.k);
  const ShiftedSums p = reshifted(x, m), q = reshifted(y, m);
  return {n, m, p.a + q.a, p.b + q.b};
}
/// The ShiftedSums of the union of disjoint sets, one a caller, given a reference `r` (any
/// common value, e.g. one part's shift): the parts' sums about r give the union's
/// mean m approximately (r + sum / n, the error growing with |r - mean|), and the sums
/// about m are then the result (a near 0, b the M2 with no cancellation). `sum(x)` adds
/// one float over the parts (every part's caller gets the same bits: a butterfly of adds);
/// an empty part (n == 0, k finite) adds nothing; sets of one value keep it exactly (each
/// part's k that value: m = r, a = b = 0).
template <class Sum>
KILN_HOST_DEVICE constexpr ShiftedSums union_of(ShiftedSums part, float r, Sum sum) {
  const float n = sum(part.n);
  const float m = union_shift(n, sum(part.a + part.n * (part.k - r)), r);
  const ShiftedSums at_m = reshifted(part, m);
  return {n, m, sum(at_m.a), sum(at_m.b)};
}

/// union_of where it is needed: the parts' sums about `r` in one step of `sum`s where r
/// lies near the union's mean (shifted_near), else union_of's two steps more. `any(p)`
/// tells whether p holds for any caller (the callers of one `sum` take one way together).
template <class Sum, class Any>
KILN_HOST_DEVICE constexpr ShiftedSums shifted_union(ShiftedSums part, float r, Sum sum, Any any) {
  const ShiftedSums at_r = reshifted(part, r);
  const ShiftedSums one_step{sum(part.n), r, sum(at_r.a), sum(at_r.b)};
  if (!any(!shifted_near(one_step))) return one_step;
  return union_of(part, r, sum);
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

/// row_reduce's Combine for ShiftedSums: LayerNorm's statistics without cancellation
/// whatever the data, by sums and one approximate reciprocal (no pairwise division, as
/// RowMoments takes). Each group of lanes sums its parts about the group's first lane's
/// shift r (the group's first part: in row_reduce's second level, the row's first
/// warp's), one step of warp sums, which is the result where r lies near the group's
/// mean (within 4 standard deviations, shifted_near: M2 cancels at most 17 times); where
/// it does not in some group of the warp (an outlier first, say), the warp takes every
/// group's union_of about r instead, two steps more.
struct RowShiftedSums {
  template <int Lanes>
  static KILN_DEVICE KILN_FORCEINLINE ShiftedSums lanes(ShiftedSums v) {
    return shifted_union(
        v, shuffle(v.k, lane_index() & ~(Lanes - 1)), [](float x) { return warp_sum<Lanes>(x); },
        [](bool p) { return any_lane(p); });
  }
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
