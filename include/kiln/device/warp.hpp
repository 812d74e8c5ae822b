#pragma once
/// Warp (wavefront) reductions: each group of Lanes neighbouring lanes combines its values
/// by xor shuffles, and every lane of the group gets the result. No shared memory, no
/// block barrier; every lane of the warp must make the call (the shuffles name all of them).
///
///   float total = kiln::warp_sum(partial);       // over the whole warp (warp_size lanes)
///   float top = kiln::warp_max<16>(v);           // over each group of 16 lanes
///   int n = kiln::warp_reduce(count, kiln::Plus{});
///
/// butterfly_reduce, the algorithm, compiles on the host too; the host tests run it on a
/// simulated warp.

#include "thread.hpp"

namespace kiln {

/// a + b.
struct Plus {
  template <class T>
  KILN_HOST_DEVICE constexpr T operator()(T a, T b) const {
    return a + b;
  }
};
/// The larger of a and b (a where they compare equal).
struct Maximum {
  template <class T>
  KILN_HOST_DEVICE constexpr T operator()(T a, T b) const {
    return a < b ? b : a;
  }
};
/// The smaller of a and b (a where they compare equal).
struct Minimum {
  template <class T>
  KILN_HOST_DEVICE constexpr T operator()(T a, T b) const {
    return b < a ? b : a;
  }
};

/// Combines `v` over each group of Lanes neighbouring lanes with `op`: log2(Lanes) steps,
/// each taking the value of the lane whose index differs in one bit (mask Lanes/2 first).
/// Afterwards every lane of a group holds op over the group's values.
///
/// Parameters:
///   Lanes        lanes per group: a power of 2, at most warp_size
///   op           an associative, commutative operation (Plus, Maximum, Minimum, ...)
///   shuffle_xor  shuffle_xor(v, mask) returns the v of lane (this lane ^ mask)
template <int Lanes, class T, class Op, class Shuffle>
KILN_HOST_DEVICE constexpr T butterfly_reduce(T v, Op op, Shuffle shuffle_xor) {
  static_assert(Lanes > 0 && (Lanes & (Lanes - 1)) == 0,
                "a butterfly reduction spans a power of 2 lanes");
  for (int mask = Lanes / 2; mask > 0; mask /= 2) v = op(v, shuffle_xor(v, mask));
  return v;
}

#if KILN_GPU_COMPILER

#if KILN_HIP
/// The `v` of lane (lane_index() ^ mask) of this warp; T is a 4-byte type.
template <class T>
KILN_DEVICE KILN_FORCEINLINE T shuffle_xor(T v, int mask) {
  static_assert(sizeof(T) == 4, "shuffle_xor moves 4-byte values on HIP");
  const int source = (lane_index() ^ mask) << 2;  // ds_bpermute addresses lanes in bytes
  return __builtin_bit_cast(T, __builtin_amdgcn_ds_bpermute(source, __builtin_bit_cast(int, v)));
}
/// The `v` of lane `source` of this warp (every lane the same one: a broadcast); T is a
/// 4-byte type.
template <class T>
KILN_DEVICE KILN_FORCEINLINE T shuffle(T v, int source) {
  static_assert(sizeof(T) == 4, "shuffle moves 4-byte values on HIP");
  return __builtin_bit_cast(T,
                            __builtin_amdgcn_ds_bpermute(source << 2, __builtin_bit_cast(int, v)));
}
/// Orders memory among the lanes of one warp (lanes of a wavefront run in lock step).
KILN_DEVICE KILN_FORCEINLINE void sync_warp() {
  __builtin_amdgcn_wave_barrier();
}
/// Whether `p` holds in any lane of this warp (every lane must make the call).
KILN_DEVICE KILN_FORCEINLINE bool any_lane(bool p) {
  if constexpr (warp_size == 64) {
    return __builtin_amdgcn_ballot_w64(p) != 0;
  } else {
    return __builtin_amdgcn_ballot_w32(p) != 0;
  }
}
#else
/// The `v` of lane (lane_index() ^ mask) of this warp (int, unsigned, float, double, ...).
template <class T>
KILN_DEVICE KILN_FORCEINLINE T shuffle_xor(T v, int mask) {
  return __shfl_xor_sync(0xffffffffu, v, mask);
}
/// The `v` of lane `source` of this warp (int, unsigned, float, double, ...).
template <class T>
KILN_DEVICE KILN_FORCEINLINE T shuffle(T v, int source) {
  return __shfl_sync(0xffffffffu, v, source);
}
/// Waits for every lane of the warp; memory writes before it are visible after.
KILN_DEVICE KILN_FORCEINLINE void sync_warp() {
  __syncwarp();
}
/// Whether `p` holds in any lane of this warp (every lane must make the call).
KILN_DEVICE KILN_FORCEINLINE bool any_lane(bool p) {
  return __any_sync(0xffffffffu, p) != 0;
}
#endif

namespace detail {
struct WarpShuffleXor {
  template <class T>
  KILN_DEVICE KILN_FORCEINLINE T operator()(T v, int mask) const {
    return shuffle_xor(v, mask);
  }
};
}  // namespace detail

/// op over each group of Lanes neighbouring lanes (the whole warp by default), in every
/// lane of the group.
template <int Lanes = warp_size, class T, class Op>
KILN_DEVICE KILN_FORCEINLINE T warp_reduce(T v, Op op) {
  static_assert(Lanes <= warp_size, "a warp reduction spans at most warp_size lanes");
  return butterfly_reduce<Lanes>(v, op, detail::WarpShuffleXor{});
}
/// The sum over each group of Lanes lanes.
template <int Lanes = warp_size, class T>
KILN_DEVICE KILN_FORCEINLINE T warp_sum(T v) {
  return warp_reduce<Lanes>(v, Plus{});
}
/// The maximum over each group of Lanes lanes.
template <int Lanes = warp_size, class T>
KILN_DEVICE KILN_FORCEINLINE T warp_max(T v) {
  return warp_reduce<Lanes>(v, Maximum{});
}
/// The minimum over each group of Lanes lanes.
template <int Lanes = warp_size, class T>
KILN_DEVICE KILN_FORCEINLINE T warp_min(T v) {
  return warp_reduce<Lanes>(v, Minimum{});
}

#endif

}  // namespace kiln
