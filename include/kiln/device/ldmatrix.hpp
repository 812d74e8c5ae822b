#pragma once
/// ldmatrix: a warp loads one, two or four 8x8 matrices of 16-bit values from shared
/// memory straight into the register layout of the mma.sync fragments (mma.hpp).
///
///   KILN_DIM(I); KILN_DIM(J); KILN_DIM(K);
///   // (I:16, K:16) f16 tile, K contiguous            -> A fragment, ldmatrix .x4
///   kiln::MmaA<kiln::f16, I, K> a;
///   kiln::ldmatrix_fragment(a, smem_a.slice<16>(I(16 * w)));
///   // (K:16, J:8) f16 tile, J contiguous (row-major B) -> B fragment, ldmatrix .x2.trans
///   // (J:8, K:16) f16 tile, K contiguous               -> B fragment, ldmatrix .x2
///   kiln::MmaB<kiln::f16, K, J> b;
///   kiln::ldmatrix_fragment(b, smem_b);
///
/// The tile's contiguous dimension decides whether the matrices are transposed on the way:
/// the types say it, no flag does. Swizzled tiles (SwizzledTensor) work as long as the
/// swizzle keeps runs of 8 elements (16 bytes) together.
///
/// The raw instruction is `ldmatrix<Count, Transpose>(regs, shared_address(row))`. Both
/// issue PTX only under `__CUDA_ARCH__ >= 800` (elsewhere they compile and trap if run);
/// ldmatrix_row, the address each lane supplies, is plain C++ and tested on the host.

#include "mma.hpp"

namespace kiln {

#if KILN_GPU_COMPILER
/// The shared-memory (state space) address of a generic pointer into shared memory.
KILN_DEVICE KILN_FORCEINLINE unsigned shared_address(const void* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  unsigned address;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(p));
  return address;
#else
  (void)p;
  return 0;
#endif
}

/// Loads Count (1, 2 or 4) 8x8 matrices of 16-bit values: lanes 8i .. 8i+7 give the
/// shared addresses of matrix i's eight 16-byte rows, and register i of lane l receives
/// row l / 4, columns 2 * (l % 4) and + 1 of matrix i (with Transpose, of its transpose).
template <int Count, bool Transpose = false>
KILN_DEVICE KILN_FORCEINLINE void ldmatrix(unsigned (&regs)[Count], unsigned row_address) {
  static_assert(Count == 1 || Count == 2 || Count == 4, "ldmatrix loads 1, 2 or 4 matrices");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define KILN_LDMATRIX_(shape)                                                               \
  if constexpr (Count == 1) {                                                               \
    asm volatile("ldmatrix.sync.aligned.m8n8.x1" shape ".shared.b16 {%0}, [%1];\n"          \
                 : "=r"(regs[0])                                                            \
                 : "r"(row_address));                                                       \
  } else if constexpr (Count == 2) {                                                        \
    asm volatile("ldmatrix.sync.aligned.m8n8.x2" shape ".shared.b16 {%0,%1}, [%2];\n"       \
                 : "=r"(regs[0]), "=r"(regs[1])                                             \
                 : "r"(row_address));                                                       \
  } else {                                                                                  \
    asm volatile("ldmatrix.sync.aligned.m8n8.x4" shape ".shared.b16 {%0,%1,%2,%3}, [%4];\n" \
                 : "=r"(regs[0]), "=r"(regs[1]), "=r"(regs[2]), "=r"(regs[3])               \
                 : "r"(row_address));                                                       \
  }
  if constexpr (Transpose) {
    KILN_LDMATRIX_(".trans")
  } else {
    KILN_LDMATRIX_("")
  }
#undef KILN_LDMATRIX_
#else
  // No ldmatrix on this target: stop the kernel rather than compute with stale registers.
  (void)regs;
  (void)row_address;
#if KILN_DEVICE_PASS
  detail::trap_unsupported();
#endif
#endif
}
#endif

namespace detail {

// 1 when Tile's contiguous dimension is Frag's inner one (plain ldmatrix), 2 when it is
// the outer one (ldmatrix .trans), 0 otherwise.
template <class Frag, class Tile>
KILN_HOST_DEVICE constexpr int ldmatrix_mode() {
  using L = typename Tile::layout_type;
  if constexpr (L::contiguous_index < 0) {
    return 0;
  } else {
    using D = typename L::template dim_at<L::contiguous_index>;
    return is_same<D, typename Frag::inner_dim> ? 1 : is_same<D, typename Frag::outer_dim> ? 2 : 0;
  }
}

}  // namespace detail

/// Whether ldmatrix_fragment(Frag, Tile) transposes: Tile is contiguous along Frag's outer
/// dimension (a row-major (K, N) tile for a B fragment).
template <class Frag, class Tile>
inline constexpr bool ldmatrix_transposes =
    detail::ldmatrix_mode<Frag, typename detail::TensorOf<Tile>::type>() == 2;

/// The coordinates, relative to the fragment's origin, of the element whose address lane
/// `lane` gives ldmatrix to fill Frag from a tile of type TileTensor: the first of 8
/// contiguous elements of a row of core tile (lane / 8) % Frag::tiles.
///
///   A (M:16, K:16), K contiguous: lane 8t + r -> (M: r + 8 (t % 2), K: 8 (t / 2))
///   B (K:16, N:8),  N contiguous: lane 8t + r -> (K: r + 8 t, N: 0)      (.trans)
template <class Frag, class TileTensor>
KILN_HOST_DEVICE constexpr auto ldmatrix_coords(int lane) {
  using Outer = typename Frag::outer_dim;
  using Inner = typename Frag::inner_dim;
  constexpr int mode = detail::ldmatrix_mode<Frag, TileTensor>();
  static_assert(mode != 0,
                "ldmatrix needs a tile whose contiguous (stride-1) dimension is one of the "
                "fragment's two dimensions, in the same fold");
  const int t = (lane / 8) % Frag::tiles;
  const int r = lane % 8;
  const auto tile_origin =
      Fold<Outer, 8>(t % Frag::outer_tiles) + Fold<Inner, 8>(t / Frag::outer_tiles);
  if constexpr (mode == 1) {
    return tile_origin + Outer(r);
  } else {
    return tile_origin + Inner(r);
  }
}

/// The element whose address lane `lane` gives ldmatrix to fill Frag from `tile` (a tensor
/// whose origin is the fragment's origin, or a cursor at it).
template <class Frag, class Tile>
KILN_HOST_DEVICE constexpr auto ldmatrix_row(const Tile& tile, int lane) {
  return tile[ldmatrix_coords<Frag, typename detail::TensorOf<Tile>::type>(lane)].ptr();
}

/// A warp's ldmatrix loads of fragments Frag from shared tiles of type Tile (every stage of
/// a ring), each lane's address worked out once: the lane's element offset and its
/// swizzle's XOR are two ints, and a load at `delta` from the warp's origin costs an add
/// of that (usually constant) offset and an XOR, where the generic path recomputes the
/// swizzle for every load. Count fragments stacked along the outer dimension (the second
/// 8 further along it) come from one ldmatrix (Count x Frag::tiles <= 4 matrices), each
/// fragment's registers consecutive as mma.sync takes them: two MmaB side by side from
/// one .x4.
///
///   kiln::FragmentLoader<kiln::MmaA<f16, M, K>, ATile> la(M(warp_row), kiln::lane_index());
///   for (int i = 0; i < 4; ++i) la.load(&a[i], stage_tile, M(16 * i) + K(16 * ks));
///   kiln::FragmentLoader<kiln::MmaB<f16, K, N>, BTile, 2> lb(N(warp_col), kiln::lane_index());
///   for (int j = 0; j < 8; j += 2) lb.load(&b[j], stage_tile, N(8 * j) + K(16 * ks));
///
/// Valid for deltas that keep every lane's row in the same place of the swizzle's period
/// (moves by whole fragments along the non-contiguous dimension: multiples of 8 rows
/// there) and inside the tile; element_offset() is what the loads use, tested on the host
/// against the generic path.
template <class Frag, class Tile, int Count = 1>
class FragmentLoader {
  using L = typename Tile::layout_type;
  using Sw = typename Tile::swizzle_type;
  static_assert(Count >= 1 && Count * Frag::tiles <= 4, "one ldmatrix loads at most 4 matrices");

 public:
  /// The matrices one load moves.
  static constexpr int matrices = Count * Frag::tiles;

  /// The loader for a warp whose fragments start at `origin` (coordinates in the tile).
  template <class C>
  KILN_HOST_DEVICE constexpr FragmentLoader(const C& origin, int lane)
      : linear_(L().offset(to_coords(origin) + ldmatrix_coords<Frag, Tile>(lane) +
                           Fold<typename Frag::outer_dim, 8 * Frag::outer_tiles>(
                               (lane / (8 * Frag::tiles)) % Count))),
        xor_(Sw::apply(linear_) ^ linear_) {}

  /// The (swizzled) element offset in the tile of this lane's row for the fragments at
  /// `delta` from the origin.
  template <class C>
  KILN_HOST_DEVICE constexpr int element_offset(const C& delta) const {
    return (linear_ + L().offset(to_coords(delta))) ^ xor_;
  }

#if KILN_GPU_COMPILER
  /// Fills frags[0 .. Count) from `tile` (one stage) at `delta` from the origin, as
  /// ldmatrix_fragment(frags[f], tile[origin + delta + f fragments along Outer]) does.
  template <class C>
  KILN_DEVICE KILN_FORCEINLINE void load(Frag* frags, const Tile& tile, const C& delta) const {
    load(frags, shared_address(tile.data()), delta);
  }

  /// As load(frags, tile, delta) from the tile whose shared-memory address is
  /// `tile_address` (shared_address(tile.data())): for a ring whose stages' addresses a
  /// kernel works out itself, one 32-bit multiply-add a stage where a pointer to the stage
  /// costs a 64-bit address and a conversion.
  template <class C>
  KILN_DEVICE KILN_FORCEINLINE void load(Frag* frags, unsigned tile_address, const C& delta) const {
    using T = typename Frag::element_type;
    static_assert(sizeof(T) == 2, "ldmatrix loads 16-bit elements (f16, bf16)");
    unsigned regs[matrices];
    ldmatrix<matrices, ldmatrix_transposes<Frag, Tile>>(
        regs, tile_address + unsigned(element_offset(delta)) * unsigned(sizeof(T)));
    for (int f = 0; f < Count; ++f) {
      unsigned(&out)[Frag::tiles] = *reinterpret_cast<unsigned(*)[Frag::tiles]>(frags[f].values);
      for (int t = 0; t < Frag::tiles; ++t) out[t] = regs[f * Frag::tiles + t];
    }
  }
#endif

 private:
  int linear_;  // the lane's row before the swizzle
  int xor_;     // what the swizzle XORs into it (the same for every valid delta)
};

#if KILN_GPU_COMPILER
/// Fills `frag` (16-bit elements) from a shared-memory tile at the fragment's origin with
/// one ldmatrix (.x4 for A, .x2 for B, .trans where the tile is contiguous along the
/// fragment's outer dimension). Every lane of the warp calls it. Each 8-element row must
/// be 16-byte aligned: the tile's contiguous extent a multiple of 8 at an aligned base.
///
///   (M:16, K:16) f16 tile (K contiguous)      -> MmaA<f16, M, K>
///   (K:16, N:8)  f16 tile (N contiguous)      -> MmaB<f16, K, N>  via .trans
template <class T, class O, class In, int OT, int IT, class Tile>
KILN_DEVICE KILN_FORCEINLINE void ldmatrix_fragment(MmaFragment<T, O, In, OT, IT>& frag,
                                                    const Tile& tile) {
  using F = MmaFragment<T, O, In, OT, IT>;
  using TileTensor = typename detail::TensorOf<Tile>::type;
  static_assert(sizeof(T) == 2, "ldmatrix loads 16-bit elements (f16, bf16)");
  static_assert(
      detail::is_same<typename detail::RemoveConst<typename TileTensor::element_type>::type, T>,
      "the tile's elements are the fragment's element type");
  static_assert(TileTensor::swizzle_type::contiguous % 8 == 0,
                "the tile's swizzle must keep runs of 8 elements (16 bytes) together");
  unsigned(&regs)[F::tiles] = *reinterpret_cast<unsigned(*)[F::tiles]>(frag.values);
  // The address as the tile's shared base plus a 32-bit byte offset: the offsets of a
  // kernel's many loads from one tile then stay 32-bit, and the base is shared.
  const auto* base = detail::tensor_of(tile).data();
  const auto* row = ldmatrix_row<F>(tile, lane_index());
  ldmatrix<F::tiles, ldmatrix_transposes<F, Tile>>(
      regs, shared_address(base) + unsigned(int(row - base)) * unsigned(sizeof(T)));
}
#endif

}  // namespace kiln
