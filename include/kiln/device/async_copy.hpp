#pragma once
/// Asynchronous copies from global to shared memory (cp.async, sm_80 and later): 16 bytes
/// a thread at a time (8 or 4 where rows are only that aligned), zero-filling what lies
/// outside the source, in groups that a thread commits and later waits for. Elsewhere (the
/// host, HIP, older NVIDIA targets) the same calls copy synchronously, so one kernel source
/// compiles and runs everywhere.
///
///   // global (I: rows, K: cols) tile at (i0, k0) -> shared (I:64, K:32), stage k of a ring
///   kiln::async_copy_tile(ring[kiln::RING_STAGE(k)], a[I(i0) + K(k0)], thread_index(),
///                         block_size());
///   kiln::async_commit_group();
///   kiln::async_wait_group<kStages - 2>();  // all but the newest kStages - 2 groups landed
///   kiln::sync_threads();                   // ... and every thread's copies are visible
///
/// A wait covers only the calling thread's copies: a barrier after it makes the block's
/// copies visible to every thread.

#include "../dims/vector.hpp"
#include "shared_memory.hpp"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define KILN_ASYNC_COPY 1
#else
#define KILN_ASYNC_COPY 0
#endif

namespace kiln {

/// Copies `src_bytes` (0 to Bytes) bytes from global `src` to shared `dst` and zero-fills
/// the rest of the Bytes (4, 8 or 16) at dst; with src_bytes 0 nothing is read. dst and src
/// are Bytes-aligned. On sm_80+ it is one cp.async that completes with its commit group:
/// .cg for 16 bytes (through L2, bypassing L1), .ca for 4 and 8 (which .cg does not take);
/// elsewhere a plain copy that completes at once.
template <int Bytes>
KILN_HOST_DEVICE KILN_FORCEINLINE void async_copy(void* dst, const void* src, int src_bytes) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
#if KILN_ASYNC_COPY
  const unsigned shared_dst = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  if constexpr (Bytes == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_dst), "l"(src),
                 "r"(src_bytes)
                 : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(shared_dst), "l"(src),
                 "n"(Bytes), "r"(src_bytes)
                 : "memory");
  }
#elif KILN_DEVICE_PASS
  struct alignas(Bytes) Chunk {
    unsigned v[Bytes / 4];
  };
  Chunk c{};
  if (src_bytes == Bytes) {
    c = *static_cast<const Chunk*>(src);
  } else {
    const unsigned char* s = static_cast<const unsigned char*>(src);
    unsigned char* b = reinterpret_cast<unsigned char*>(&c);
    for (int i = 0; i < src_bytes; ++i) b[i] = s[i];
  }
  *static_cast<Chunk*>(dst) = c;
#else
  // Host: byte by byte, which aliases any type.
  const unsigned char* s = static_cast<const unsigned char*>(src);
  unsigned char* d = static_cast<unsigned char*>(dst);
  for (int i = 0; i < Bytes; ++i) d[i] = i < src_bytes ? s[i] : static_cast<unsigned char>(0);
#endif
}

/// async_copy<16>: 16 bytes, 16-byte aligned.
KILN_HOST_DEVICE KILN_FORCEINLINE void async_copy_16(void* dst, const void* src, int src_bytes) {
  async_copy<16>(dst, src, src_bytes);
}

/// Closes the group of this thread's async copies issued since the last commit.
KILN_HOST_DEVICE KILN_FORCEINLINE void async_commit_group() {
#if KILN_ASYNC_COPY
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

/// Waits until at most Pending of this thread's committed groups are still in flight
/// (0: all of them). Not a barrier: sync_threads() after it for the other threads' copies.
template <int Pending>
KILN_HOST_DEVICE KILN_FORCEINLINE void async_wait_group() {
  static_assert(Pending >= 0 && Pending <= 7, "cp.async.wait_group takes 0 to 7 pending groups");
#if KILN_ASYNC_COPY
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
#endif
}

/// async_wait_group with the count of pending groups a run-time value (0 to 7; more waits
/// as 7 does), for loops over commit groups that the compiler unrolls: there each call
/// folds to the one cp.async.wait_group it names.
template <int Most = 7>
KILN_HOST_DEVICE KILN_FORCEINLINE void async_wait_pending(int pending) {
  if constexpr (Most == 0) {
    async_wait_group<0>();
  } else if (pending >= Most) {
    async_wait_group<Most>();
  } else {
    async_wait_pending<Most - 1>(pending);
  }
}

/// Count items a thread copies, split into at most 8 commit groups (what
/// async_wait_pending can tell apart): group g holds items first(g) to end(g) - 1.
///
///   using G = kiln::CommitGroups<kIters>;
///   for (int g = 0; g < G::groups; ++g) {                 // unrolled
///     for (int i = G::first(g); i < G::end(g); ++i) copy(i);
///     kiln::async_commit_group();
///   }
///   for (int g = 0; g < G::groups; ++g) {
///     kiln::async_wait_pending(G::groups - 1 - g);         // group g has landed
///     for (int i = G::first(g); i < G::end(g); ++i) use(i);
///   }
template <int Count>
struct CommitGroups {
  static constexpr int per_group = (Count + 7) / 8;
  static constexpr int groups = (Count + per_group - 1) / per_group;
  KILN_HOST_DEVICE static constexpr int first(int g) { return g * per_group; }
  KILN_HOST_DEVICE static constexpr int end(int g) {
    return (g + 1) * per_group < Count ? (g + 1) * per_group : Count;
  }
};

namespace detail {

// The compile-time checks of async_copy_tile, and the tile's contiguous dimension.
template <class Shared, class Global, int Bytes = 16>
struct AsyncTile {
  using T = typename Shared::element_type;
  using L = typename Shared::layout_type;
  using GL = typename Global::layout_type;
  static constexpr int n = Bytes / int(sizeof(T));  // elements per vector
  static_assert(Bytes % sizeof(T) == 0, "a copy's vector is whole elements");
  static_assert(sizeof(typename Global::element_type) == sizeof(T),
                "global and shared elements have the same size (a copy does not convert)");
  static_assert(L::contiguous_index >= 0, "the shared tile needs a dimension of stride 1");
  using D = typename L::template dim_at<L::contiguous_index>;
  static_assert(GL::template index_of<D> >= 0 &&
                    GL::template extent_at<(GL::template index_of<D> >= 0 ? GL::template index_of<D>
                                                                          : 0)>::stride == 1,
                "the global tensor must have the tile's contiguous dimension, with stride 1");
  static_assert(is_vectorizable<Shared, n>,
                "the shared tile must be vectorizable by the copy's vector (is_vectorizable)");
  static_assert(L::contiguous_index == L::rank - 1,
                "the shared tile's contiguous dimension must be its innermost (listed last)");
  static_assert(Shared::storage_size() > 0, "the shared tile has static sizes and strides");
  static constexpr int vectors = L().num_elements() / n;
  // Elements along the contiguous dimension (a row of the tile).
  static constexpr int row = L::template extent_at<L::contiguous_index>::size;

  // Vector v of the tile from src (zero-filled outside it, when Checked) into dst.
  template <bool Checked, class C>
  KILN_HOST_DEVICE KILN_FORCEINLINE static void copy(const Shared& dst,
                                                     const Cursor<Global, C>& src, int v) {
    copy_at<Checked>(dst, src, L().coords_of(v * n));
  }

  // The vector at tile coordinates `at` (see copy).
  template <bool Checked, class C, class At>
  KILN_HOST_DEVICE KILN_FORCEINLINE static void copy_at(const Shared& dst,
                                                        const Cursor<Global, C>& src,
                                                        const At& at) {
    const auto from = src[at];
    if constexpr (!Checked) {
      async_copy<Bytes>(dst[at].ptr(), from.ptr(), Bytes);
    } else {
      int bytes = 0;
      if (from.in_bounds()) {
        if (from[D(n - 1)].in_bounds()) {
          bytes = Bytes;
        } else {
          for (int j = 0; j < n && from[D(j)].in_bounds(); ++j) bytes += int(sizeof(T));
        }
      }
      const void* from_ptr = bytes > 0 ? static_cast<const void*>(from.ptr())
                                       : static_cast<const void*>(src.tensor().data());
      async_copy<Bytes>(dst[at].ptr(), from_ptr, bytes);
    }
  }
};

}  // namespace detail

/// Copies the shared tile `dst`'s shape out of the global tensor at cursor `src` (the
/// tile's origin in the global tensor) into `dst`, asynchronously: threads `rank` of
/// `count` share the tile's 16-byte vectors along its contiguous dimension. Elements
/// outside the global tensor (src's in_bounds) are zero-filled, so a ragged edge tile
/// arrives padded with zeros. Commit and wait as for async_copy_16.
///
///   // global (I: rows, K: cols) f32 tile at (i0, k0) -> shared (I:64, K:32):
///   // 64 * 32 / 4 = 512 vectors of (K:4); with 128 threads, 4 each
///   async_copy_tile(smem_a, a[I(i0) + K(k0)], thread_index(), 128);
///
/// Requirements, checked at compile time: the tile has static sizes and strides, its
/// innermost dimension has stride 1 and is vectorizable by 16 bytes (is_vectorizable);
/// the global tensor has that dimension with stride 1. A precondition nothing checks: the
/// global data and every vector's start there are 16-byte aligned (cp.async faults
/// otherwise), e.g. rows whose length is a multiple of 16 bytes, tiles at multiples of
/// 16 bytes along the row.
template <class Shared, class Global, class C>
KILN_HOST_DEVICE void async_copy_tile(const Shared& dst, const Cursor<Global, C>& src, int rank,
                                      int count) {
  using Tile = detail::AsyncTile<Shared, Global>;
  for (int v = rank; v < Tile::vectors; v += count) Tile::template copy<true>(dst, src, v);
}

/// The same with the thread count known at compile time, so each thread's copies unroll
/// and their addresses are worked out once for a loop of tiles. With Checked = false the
/// caller promises that the whole tile lies inside the global tensor (an interior tile):
/// no bounds are checked, nothing is zero-filled. Bytes (16, 8 or 4) is the vector each
/// copy moves: rows only 8- or 4-byte aligned (a row of 2500 halves is 5000 bytes) take
/// 8- or 4-byte copies, with the same alignment rule at that size.
///
///   async_copy_tile<256>(smem_a, a[I(i0) + K(k0)], thread_index());          // edges: checked
///   async_copy_tile<256, false>(smem_a, a[I(i0) + K(k0)], thread_index());   // interior
///   async_copy_tile<256, true, 8>(smem_a, a[I(i0) + K(k0)], thread_index()); // 8-byte rows
template <int Count, bool Checked = true, int Bytes = 16, class Shared, class Global, class C>
KILN_HOST_DEVICE KILN_FORCEINLINE void async_copy_tile(const Shared& dst,
                                                       const Cursor<Global, C>& src, int rank) {
  static_assert(Count > 0, "a copy is shared by at least one thread");
  using Tile = detail::AsyncTile<Shared, Global, Bytes>;
  using L = typename Shared::layout_type;
  constexpr int per_thread = (Tile::vectors + Count - 1) / Count;
  if constexpr (Tile::vectors % Count == 0 && Count * Tile::n % Tile::row == 0) {
    // Every thread copies whole-row steps from its first vector: the coordinates of its
    // i-th vector are the first one's plus a constant, so nothing per vector stays live.
    const auto first = L().coords_of(rank * Tile::n);
    KILN_UNROLL
    for (int i = 0; i < per_thread; ++i) {
      Tile::template copy_at<Checked>(dst, src, first + L().coords_of(i * Count * Tile::n));
    }
  } else {
    KILN_UNROLL
    for (int i = 0; i < per_thread; ++i) {
      const int v = rank + i * Count;
      if (Tile::vectors % Count == 0 || v < Tile::vectors) {
        Tile::template copy<Checked>(dst, src, v);
      }
    }
  }
}

}  // namespace kiln
