#pragma once
/// Tensor-core fragments for `mma.sync.aligned.m16n8k16` (and m16n8k8) with f16 or bf16
/// inputs and f32 accumulators, in the user's typed dimensions: every register element
/// of every lane knows its (row, column) as kiln::Coords, so loads, stores and epilogues
/// go through typed tensors instead of lane arithmetic.
///
///   KILN_DIM(I); KILN_DIM(J); KILN_DIM(K);
///   kiln::MmaA<kiln::f16, I, K> a;          // (I:16, K:16): 8 halves per lane
///   kiln::MmaB<kiln::f16, K, J> b;          // (K:16, J:8):  4 halves per lane
///   kiln::MmaC<float, I, J> acc{};          // (I:16, J:8):  4 floats per lane, zeroed
///   kiln::ldmatrix_fragment(a, smem_a);     // kiln/device/ldmatrix.hpp
///   kiln::ldmatrix_fragment(b, smem_b);
///   kiln::mma(acc, a, b, acc);              // acc += a * b on the tensor cores
///   for (int e = 0; e < acc.size; ++e)      // an epilogue through typed coordinates
///     *c_tile[acc.coords(lane, e)] = acc[e] * alpha;
///   kiln::store_fragment(acc, c_tile, lane);   // or the same as one call
///
/// Mixing dimensions is a compile error: mma() takes A's rows from C's rows, B's columns
/// from C's columns and A's depth from B's depth, by type.
///
/// Ownership (the PTX ISA's figures for m16n8k16 / m16n8k8): a fragment is a grid of
/// 8x8 core tiles, each one 32-bit register of two 16-bit values (two registers of one
/// float each in the accumulator). Lane l is (group = l / 4, thread-in-group = l % 4); in
/// every core tile it holds outer index `group` and inner indices `2 * (l % 4) + {0, 1}`.
/// "Outer" is the row dimension for A and C and the column dimension for B (B is `.col`:
/// each lane's pair runs along K). Core tiles are numbered down the outer dimension first.
///
/// Includes no standard library; the instructions are issued under
/// `__CUDA_ARCH__ >= 800` only. On other GPU targets (older NVIDIA, AMD) the headers
/// compile and mma() traps if it runs; on the host it does nothing, and
/// mma_reference() (a whole warp's fragments, multiplied by scalar loops) serves tests.

#include "../dims/compound_index.hpp"
#include "../dims/vector.hpp"
#include "half.hpp"
#include "thread.hpp"

namespace kiln {

/// Lanes that share one mma.sync: the whole warp of an NVIDIA GPU (the ISA's figure).
inline constexpr int mma_lanes = 32;

/// The registers of one lane for one mma.sync operand.
///
/// Parameters:
///   T           element type: f16 or bf16 for A and B, float for the accumulator
///   Outer       the dimension along which lanes are spread in groups (index = lane / 4)
///   Inner       the dimension along which each lane holds pairs (index = 2 * (lane % 4))
///   OuterTiles  8x8 core tiles along Outer
///   InnerTiles  8x8 core tiles along Inner
///
/// Use the aliases MmaA, MmaB and MmaC. An aggregate: `MmaC<float, I, J> acc{}` is zero.
template <class T, class Outer, class Inner, int OuterTiles, int InnerTiles>
struct MmaFragment {
  static_assert(is_dim<Outer> && is_dim<Inner>, "a fragment's dimensions are typed dimensions");
  static_assert(!same_dimension<Outer, Inner>, "a fragment spans two different dimensions");

  using element_type = T;
  using outer_dim = Outer;
  using inner_dim = Inner;
  static constexpr int outer_tiles = OuterTiles;
  static constexpr int inner_tiles = InnerTiles;
  /// 8x8 core tiles: one ldmatrix matrix each (for 16-bit elements).
  static constexpr int tiles = OuterTiles * InnerTiles;
  /// Elements each lane holds.
  static constexpr int size = 2 * tiles;
  /// 32-bit registers each lane holds.
  static constexpr int registers = size * int(sizeof(T)) / 4;

  /// Where a lane's elements start: (Outer: lane / 4, Inner: 2 * (lane % 4)).
  using LaneIndex = CompoundIndex<Extent<Outer, 8>, Extent<Fold<Inner, 2>, 4>>;

  // 4-byte aligned so that pairs of 16-bit values are the registers the instructions take.
  alignas(4) T values[size];

  KILN_HOST_DEVICE constexpr T& operator[](int e) { return values[e]; }
  KILN_HOST_DEVICE constexpr const T& operator[](int e) const { return values[e]; }

  /// The coordinates of element e of lane `lane`, relative to the fragment's origin:
  /// a Coords over Outer's and Inner's dimensions.
  ///
  ///   MmaA<f16, I, K>::coords(5, 6) == I(1 + 8) + K(2 + 8)   // group 1, pair 1 of tile 3
  KILN_HOST_DEVICE static constexpr auto coords(int lane, int e) {
    const int tile = e / 2;
    return LaneIndex(lane).coords() + Inner(e % 2) + Fold<Outer, 8>(tile % OuterTiles) +
           Fold<Inner, 8>(tile / OuterTiles);
  }
#if KILN_GPU_COMPILER
  /// The coordinates of element e of this thread's lane.
  KILN_DEVICE static KILN_FORCEINLINE auto coords(int e) {
    return coords(lane_index(), e);
  }
#endif
};

/// The A operand of m16n8k16 (Depth 16) or m16n8k8 (Depth 8), row major:
/// (M:16, K:Depth), 8 (or 4) values of T per lane.
template <class T, class M, class K, int Depth = 16>
using MmaA = MmaFragment<T, M, K, 2, Depth / 8>;
/// The B operand, column major: (K:Depth, N:8), each lane's pairs along K.
template <class T, class K, class N, int Depth = 16>
using MmaB = MmaFragment<T, N, K, 1, Depth / 8>;
/// The accumulator (C and D): (M:16, N:8) of float, 4 per lane.
template <class T, class M, class N>
using MmaC = MmaFragment<T, M, N, 2, 1>;

namespace detail {

template <class T>
KILN_DEVICE KILN_FORCEINLINE const unsigned* fragment_registers(const T* values) {
  // The instructions take 16-bit pairs as 32-bit registers; CUDA code reads them so.
  return reinterpret_cast<const unsigned*>(values);
}

#if KILN_DEVICE_PASS
// Ends the kernel where a target lacks the instruction a call stands for.
KILN_DEVICE KILN_FORCEINLINE void trap_unsupported() {
#if KILN_HIP
  __builtin_trap();
#else
  __trap();
#endif
}
#endif

template <class X>
struct TensorOf {
  using type = X;
};
template <class T, class C>
struct TensorOf<Cursor<T, C>> {
  using type = T;
};

// The tensor of a tensor (itself) or of a cursor.
template <class X>
KILN_HOST_DEVICE constexpr const X& tensor_of(const X& x) {
  return x;
}
template <class T, class C>
KILN_HOST_DEVICE constexpr const T& tensor_of(const Cursor<T, C>& c) {
  return c.tensor();
}

// Whether a fragment's pairs along In go to Tensor as one 2-element store each.
template <class Tensor, class In, class T>
KILN_HOST_DEVICE constexpr bool stores_pairs() {
  using L = typename Tensor::layout_type;
  if constexpr (L::contiguous_index >= 0) {
    using D = typename L::template dim_at<L::contiguous_index>;
    return is_same<D, In> && is_same<typename Tensor::element_type, T> &&
           is_vectorizable<Tensor, 2>;
  } else {
    return false;
  }
}

}  // namespace detail

/// D = A * B + C on the tensor cores, for one warp (every lane calls it with its own
/// fragments). `d` and `c` may be the same fragment.
///
///   (M:16, K:16) x (K:16, N:8) + (M:16, N:8) -> (M:16, N:8)
template <class TA, class TB, class M, class N, class K, int KTiles>
KILN_HOST_DEVICE KILN_FORCEINLINE void mma(MmaFragment<float, M, N, 2, 1>& d,
                                           const MmaFragment<TA, M, K, 2, KTiles>& a,
                                           const MmaFragment<TB, N, K, 1, KTiles>& b,
                                           const MmaFragment<float, M, N, 2, 1>& c) {
  static_assert(detail::is_same<TA, TB>, "mma.sync takes A and B of one type (f16 or bf16)");
  static_assert(detail::is_same<TA, f16> || detail::is_same<TA, bf16>,
                "mma.sync m16n8k16/m16n8k8 here takes f16 or bf16 inputs");
  static_assert(KTiles == 1 || KTiles == 2, "the depth is 8 (m16n8k8) or 16 (m16n8k16)");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned* ra = detail::fragment_registers(a.values);
  const unsigned* rb = detail::fragment_registers(b.values);
  float* rd = d.values;
  const float* rc = c.values;
#define KILN_MMA_K16_(type)                                                              \
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." type "." type                    \
               ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"        \
               : "=f"(rd[0]), "=f"(rd[1]), "=f"(rd[2]), "=f"(rd[3])                      \
               : "r"(ra[0]), "r"(ra[1]), "r"(ra[2]), "r"(ra[3]), "r"(rb[0]), "r"(rb[1]), \
                 "f"(rc[0]), "f"(rc[1]), "f"(rc[2]), "f"(rc[3]))
#define KILN_MMA_K8_(type)                                                               \
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32." type "." type                     \
               ".f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%8,%9,%10};\n"                    \
               : "=f"(rd[0]), "=f"(rd[1]), "=f"(rd[2]), "=f"(rd[3])                      \
               : "r"(ra[0]), "r"(ra[1]), "r"(rb[0]), "f"(rc[0]), "f"(rc[1]), "f"(rc[2]), \
                 "f"(rc[3]))
  if constexpr (KTiles == 2 && detail::is_same<TA, f16>) {
    KILN_MMA_K16_("f16");
  } else if constexpr (KTiles == 2) {
    KILN_MMA_K16_("bf16");
  } else if constexpr (detail::is_same<TA, f16>) {
    KILN_MMA_K8_("f16");
  } else {
    KILN_MMA_K8_("bf16");
  }
#undef KILN_MMA_K16_
#undef KILN_MMA_K8_
#elif KILN_DEVICE_PASS
  // No mma.sync on this target: stop the kernel rather than leave d silently stale.
  (void)d;
  (void)a;
  (void)b;
  (void)c;
  detail::trap_unsupported();
#else
  // The host has no warp: nothing to issue (mma_reference below models a whole warp).
  (void)d;
  (void)a;
  (void)b;
  (void)c;
#endif
}

/// Element e of every lane from `src` at the fragment's origin, one element at a time
/// (any memory; for shared-memory tiles of 16-bit values ldmatrix_fragment is faster).
///
///   (M:16, K:16) tile of f16 -> MmaA<f16, M, K>;  (M:16, N:8) of float -> MmaC<float, M, N>
template <class T, class O, class In, int OT, int IT, class Src>
KILN_HOST_DEVICE constexpr void load_fragment(MmaFragment<T, O, In, OT, IT>& frag, const Src& src,
                                              int lane) {
  using F = MmaFragment<T, O, In, OT, IT>;
  for (int e = 0; e < F::size; ++e) frag[e] = static_cast<T>(*src[F::coords(lane, e)]);
}

/// Writes every element of `frag` (this is lane `lane`) into `dst` (a tensor whose origin
/// is the fragment's origin, or a cursor at it), converted to dst's element type. Where
/// dst's contiguous dimension is the fragment's inner one, holds T and is vectorizable by
/// 2 (is_vectorizable), each pair is one store; the origin must then be even along it.
///
///   MmaC<float, M, N> -> (M:16, N:8) window of a (M:rows, N:cols) float tensor
template <class T, class O, class In, int OT, int IT, class Dst>
KILN_HOST_DEVICE constexpr void store_fragment(const MmaFragment<T, O, In, OT, IT>& frag,
                                               const Dst& dst, int lane) {
  using F = MmaFragment<T, O, In, OT, IT>;
  using Tensor = typename detail::TensorOf<Dst>::type;
  using E = typename Tensor::element_type;
  if constexpr (detail::stores_pairs<Tensor, In, T>()) {
    for (int e = 0; e < F::size; e += 2) {
      Vec<T, 2> v{{frag[e], frag[e + 1]}};
      store_vector<2>(dst[F::coords(lane, e)], v);
    }
  } else {
    for (int e = 0; e < F::size; ++e) *dst[F::coords(lane, e)] = static_cast<E>(frag[e]);
  }
}

#if KILN_GPU_COMPILER
/// load_fragment for this thread's lane.
template <class T, class O, class In, int OT, int IT, class Src>
KILN_DEVICE KILN_FORCEINLINE void load_fragment(MmaFragment<T, O, In, OT, IT>& frag,
                                                const Src& src) {
  load_fragment(frag, src, lane_index());
}
/// store_fragment for this thread's lane.
template <class T, class O, class In, int OT, int IT, class Dst>
KILN_DEVICE KILN_FORCEINLINE void store_fragment(const MmaFragment<T, O, In, OT, IT>& frag,
                                                 const Dst& dst) {
  store_fragment(frag, dst, lane_index());
}
#endif

#if !KILN_DEVICE_PASS
/// What mma() computes for a whole warp, on the host: d[l] = a * b + c, where lane l's
/// fragments hold the elements their coords() name. For tests (T must convert to float).
template <class T, class M, class N, class K, int KTiles>
void mma_reference(MmaFragment<float, M, N, 2, 1> (&d)[mma_lanes],
                   const MmaFragment<T, M, K, 2, KTiles> (&a)[mma_lanes],
                   const MmaFragment<T, N, K, 1, KTiles> (&b)[mma_lanes],
                   const MmaFragment<float, M, N, 2, 1> (&c)[mma_lanes]) {
  using A = MmaFragment<T, M, K, 2, KTiles>;
  using B = MmaFragment<T, N, K, 1, KTiles>;
  using C = MmaFragment<float, M, N, 2, 1>;
  constexpr int depth = 8 * KTiles;
  float am[16][depth] = {};
  float bm[depth][8] = {};
  for (int l = 0; l < mma_lanes; ++l) {
    for (int e = 0; e < A::size; ++e) {
      auto at = A::coords(l, e);
      am[get<M>(at).get()][get<K>(at).get()] = static_cast<float>(a[l][e]);
    }
    for (int e = 0; e < B::size; ++e) {
      auto at = B::coords(l, e);
      bm[get<K>(at).get()][get<N>(at).get()] = static_cast<float>(b[l][e]);
    }
  }
  for (int l = 0; l < mma_lanes; ++l) {
    for (int e = 0; e < C::size; ++e) {
      auto at = C::coords(l, e);
      const int m = get<M>(at).get();
      const int n = get<N>(at).get();
      float sum = c[l][e];
      for (int k = 0; k < depth; ++k) sum += am[m][k] * bm[k][n];
      d[l][e] = sum;
    }
  }
}
#endif

}  // namespace kiln
