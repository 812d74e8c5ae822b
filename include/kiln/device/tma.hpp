#pragma once
/// The Tensor Memory Accelerator (TMA, sm_90): one thread moves a whole box of a global
/// tensor into a shared-memory tile (or back) and the hardware counts the bytes on an
/// mbarrier. The host describes the global tensor and the box once, as a tensor map
/// (rt::make_tensor_map, kiln/rt/tensor_map.hpp); the kernel receives it by value as a
/// `const __grid_constant__ kiln::TmaDescriptor` parameter and names boxes by typed
/// coordinates:
///
///   extern "C" __global__ void k(const __grid_constant__ kiln::TmaDescriptor a_map, ...) {
///     ...
///     if (elected) {
///       bars.full(kiln::RING_STAGE(t)).arrive_expect_tx(kiln::tma_bytes<ATile>());
///       kiln::tma_load<A>(ring[kiln::RING_STAGE(t)], a_map, M(m0) + K(t * 64),
///                         bars.full(kiln::RING_STAGE(t)));
///     }
///
/// A is the global tensor's type (its dimensions in storage order, the last contiguous);
/// the coordinates say where the box starts, in any order, and a dimension they leave out
/// is 0. Parts of the box outside the tensor are filled with zeros on loads and skipped on
/// stores, so ragged edges need no code.
///
/// Swizzled boxes: a map made with a 32, 64 or 128-byte swizzle stores each row of the box
/// as kiln::TmaSwizzle<T, Bytes> lays it out, so the shared tile's type is
/// SwizzledTensor<T, TmaSwizzle<T, Bytes>, ...> (rows of exactly Bytes bytes, the tile
/// 1024-byte aligned for 128 bytes).
///
/// Includes no standard library. The instructions are issued under __CUDA_ARCH__ >= 900;
/// on other GPU targets the calls trap, on the host they do nothing.

#include "../dims/swizzle.hpp"
#include "../dims/tensor.hpp"
#include "mbarrier.hpp"

namespace kiln {

/// A tensor map as a kernel parameter: 128 opaque bytes, 64-byte aligned (CUtensorMap).
struct alignas(64) TmaDescriptor {
  unsigned long long opaque[16];
};

namespace detail {
KILN_HOST_DEVICE constexpr int log2_exact(int v) {
  return v <= 1 ? 0 : 1 + log2_exact(v / 2);
}
}  // namespace detail

/// The element swizzle of a TMA box stored with a `Bytes`-byte swizzle (32, 64 or 128):
/// the 16-byte chunks of each Bytes-long row XORed with the row's index modulo Bytes / 16
/// (the hardware's pattern on shared-memory address bits, in elements of T).
template <class T, int Bytes>
using TmaSwizzle =
    Swizzle<detail::log2_exact(Bytes / 16), 4 - detail::log2_exact(int(sizeof(T))), 3>;

/// Bytes a TMA copy of tile type Tile moves (what to expect on its barrier).
template <class Tile>
KILN_HOST_DEVICE constexpr int tma_bytes() {
  return Tile::storage_size() * int(sizeof(typename Tile::element_type));
}

namespace detail {

// Coordinate j of a box of Global (innermost first, as the tensor map numbers them): the
// value of Global's dimension rank - 1 - j in `at`.
template <class Global, int J, class C>
KILN_HOST_DEVICE constexpr int tma_coordinate(const C& at) {
  using L = typename Global::layout_type;
  using D = typename L::template dim_at<L::rank - 1 - J>;
  static_assert(D::stride == 1, "a tensor map's dimensions are whole dimensions, not folds");
  return to_coords(at).template base_units<D>();
}

template <class Global>
KILN_HOST_DEVICE constexpr void check_tma_global() {
  using L = typename Global::layout_type;
  static_assert(L::rank >= 1 && L::rank <= 5, "a tensor map has 1 to 5 dimensions");
  static_assert(L::contiguous_index == L::rank - 1,
                "TMA boxes come from tensors stored with their last dimension contiguous");
}

}  // namespace detail

#if KILN_GPU_COMPILER
/// Copies the box of `map` (a tensor map of Global) that starts at `at` into `dst`, a
/// shared tile of the box's size, and counts its bytes on `bar` (whose phase must expect
/// them: Mbarrier::arrive_expect_tx). One thread issues it.
template <class Global, class Tile, class C>
KILN_DEVICE KILN_FORCEINLINE void tma_load(const Tile& dst, const TmaDescriptor& map, const C& at,
                                           Mbarrier bar) {
  detail::check_tma_global<Global>();
#if KILN_SM90
  constexpr int rank = Global::layout_type::rank;
  const unsigned d = detail::shared_window_address(dst.data());
  const int c0 = detail::tma_coordinate<Global, 0>(at);
  if constexpr (rank == 1) {
    asm volatile(
        "cp.async.bulk.tensor.1d.shared::cluster.global.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2}], [%3];\n" ::"r"(d),
        "l"(&map), "r"(c0), "r"(bar.address())
        : "memory");
  } else if constexpr (rank == 2) {
    const int c1 = detail::tma_coordinate<Global, 1>(at);
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(d),
        "l"(&map), "r"(c0), "r"(c1), "r"(bar.address())
        : "memory");
  } else {
    const int c1 = detail::tma_coordinate<Global, 1>(at);
    const int c2 = detail::tma_coordinate<Global, 2>(at);
    static_assert(rank == 3, "tma_load handles tensors of 1 to 3 dimensions");
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(d),
        "l"(&map), "r"(c0), "r"(c1), "r"(c2), "r"(bar.address())
        : "memory");
  }
#elif KILN_DEVICE_PASS
  (void)dst;
  (void)map;
  (void)at;
  (void)bar;
  detail::trap_no_sm90();
#endif
}

/// tma_load into the same place of the shared memory of every block of the cluster in
/// `blocks` (bit r: block rank r), counting the bytes on each one's barrier at `bar`'s
/// place. One thread of one block issues it.
template <class Global, class Tile, class C>
KILN_DEVICE KILN_FORCEINLINE void tma_load_multicast(const Tile& dst, const TmaDescriptor& map,
                                                     const C& at, Mbarrier bar,
                                                     unsigned short blocks) {
  detail::check_tma_global<Global>();
#if KILN_SM90
  static_assert(Global::layout_type::rank == 2, "multicast loads take 2-dimensional tensors");
  const unsigned d = detail::shared_window_address(dst.data());
  const int c0 = detail::tma_coordinate<Global, 0>(at);
  const int c1 = detail::tma_coordinate<Global, 1>(at);
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
      ".multicast::cluster [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(d),
      "l"(&map), "r"(c0), "r"(c1), "r"(bar.address()), "h"(blocks)
      : "memory");
#elif KILN_DEVICE_PASS
  (void)dst;
  (void)map;
  (void)at;
  (void)bar;
  (void)blocks;
  detail::trap_no_sm90();
#endif
}

/// Copies shared tile `src` into the box of `map` that starts at `at` (parts outside the
/// tensor are skipped). One thread issues it, after fence_async_shared() has made the
/// block's writes to src visible to the TMA; tma_store_commit() closes a group of stores
/// and tma_store_wait<N>() waits until all but N groups have read their tiles.
template <class Global, class Tile, class C>
KILN_DEVICE KILN_FORCEINLINE void tma_store(const TmaDescriptor& map, const C& at,
                                            const Tile& src) {
  detail::check_tma_global<Global>();
#if KILN_SM90
  static_assert(Global::layout_type::rank == 2, "tma_store takes 2-dimensional tensors");
  const unsigned s = detail::shared_window_address(src.data());
  const int c0 = detail::tma_coordinate<Global, 0>(at);
  const int c1 = detail::tma_coordinate<Global, 1>(at);
  asm volatile(
      "cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(&map),
      "r"(c0), "r"(c1), "r"(s)
      : "memory");
#elif KILN_DEVICE_PASS
  (void)map;
  (void)at;
  (void)src;
  detail::trap_no_sm90();
#endif
}

KILN_DEVICE KILN_FORCEINLINE void tma_store_commit() {
#if KILN_SM90
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90();
#endif
}

/// Waits until at most N committed store groups are still reading shared memory.
template <int N>
KILN_DEVICE KILN_FORCEINLINE void tma_store_wait() {
#if KILN_SM90
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90();
#endif
}

/// Orders this thread's shared-memory writes before later TMA (async proxy) reads.
KILN_DEVICE KILN_FORCEINLINE void fence_async_shared() {
#if KILN_SM90
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90();
#endif
}

/// Brings a tensor map into the TMA unit's cache ahead of its first use.
KILN_DEVICE KILN_FORCEINLINE void tma_prefetch(const TmaDescriptor& map) {
#if KILN_SM90
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(&map) : "memory");
#elif KILN_DEVICE_PASS
  (void)map;
  detail::trap_no_sm90();
#endif
}
#endif

}  // namespace kiln
