#pragma once
/// Warp-group tensor-core products (wgmma, sm_90a): the four warps of a warp group (128
/// threads) multiply a (M:64, K:16) tile of A by a (K:16, N:Cols) tile of B, both read
/// straight from shared memory, into a (M:64, N:Cols) f32 accumulator held in their
/// registers, asynchronously. The accumulator's registers have typed coordinates, as
/// mma.sync's fragments do; the shared tiles' types (which dimension is contiguous, which
/// swizzle) make the matrix descriptors, so operands stored either way (K-major or
/// M/N-major) take the same call.
///
///   using ATile = kiln::SwizzledTensor<f16, kiln::TmaSwizzle<f16, 128>,   // as TMA stores it
///                                      kiln::Extent<M, 128>, kiln::Extent<K, 64>>;
///   kiln::WgmmaAccumulator<M, N, 256> acc;              // 128 floats per thread
///   kiln::wgmma_fence();                                 // registers ready for the tensor cores
///   for (int ks = 0; ks < 4; ++ks)
///     kiln::wgmma(acc, a_tile[M(64 * wg) + K(16 * ks)], b_tile[K(16 * ks)], ks > 0 || kt > 0);
///   kiln::wgmma_commit_group();
///   kiln::wgmma_wait_group<0>();                         // acc holds the sums
///   for (int e = 0; e < acc.size; ++e) ... acc.coords(warp_group_thread, e) ...
///
/// Shared tiles: 16-bit elements (f16, bf16) in rows of 32, 64 or 128 bytes swizzled as
/// kiln::TmaSwizzle<T, Bytes> (the rows of TMA boxes of that swizzle), 1024-byte aligned
/// for 128. A K-major tile is (X:rows, K:row elements); an X-major one (K:depth, X:row
/// elements) or, wider than a row, (Fold<X, row elements>:chunks, K:depth, X:row elements).
///
/// Includes no standard library. wgmma and setmaxnreg need the arch-specific target
/// sm_90a (__CUDA_ARCH_FEAT_SM90_ALL); elsewhere they trap, and on the host they do
/// nothing (the descriptor arithmetic is host code too, for tests).

#include "../dims/compound_index.hpp"
#include "half.hpp"
#include "mma.hpp"
#include "tma.hpp"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define KILN_SM90A 1
#else
#define KILN_SM90A 0
#endif

namespace kiln {

/// Threads of a warp group.
inline constexpr int warp_group_threads = 128;

/// One warp group's wgmma accumulator: (M:64, N:Cols) of float, Cols / 2 per thread.
/// Warp w of the group holds rows 16w .. 16w + 15; in every 8 columns each thread holds
/// what an mma.sync accumulator (MmaC) holds. An aggregate: `WgmmaAccumulator<M, N, 128>
/// acc{}` is zero.
template <class M, class N, int Cols>
struct WgmmaAccumulator {
  static_assert(is_dim<M> && is_dim<N> && !same_dimension<M, N>,
                "an accumulator spans two different typed dimensions");
  static_assert(Cols == 64 || Cols == 128 || Cols == 256,
                "wgmma accumulators here are 64, 128 or 256 columns wide");
  using row_dim = M;
  using col_dim = N;
  static constexpr int rows = 64;
  static constexpr int cols = Cols;
  /// Floats each thread holds.
  static constexpr int size = Cols / 2;

  float values[size];

  KILN_HOST_DEVICE constexpr float& operator[](int e) { return values[e]; }
  KILN_HOST_DEVICE constexpr const float& operator[](int e) const { return values[e]; }

  /// The coordinates of element e of thread `thread` (0 to 127 in its warp group),
  /// relative to the accumulator's origin.
  KILN_HOST_DEVICE static constexpr auto coords(int thread, int e) {
    return MmaC<float, M, N>::coords(thread % 32, e % 4) + Fold<M, 16>(thread / 32) +
           Fold<N, 8>(e / 4);
  }
};

/// A wgmma shared-memory matrix descriptor (64 bits: address, strides, swizzle).
struct WgmmaDescriptor {
  unsigned long long bits;
};

namespace detail {

template <class Tile, class X, int I = 0, bool End = (I >= Tile::layout_type::rank)>
struct OtherDimension {
  using type = void;
};
template <class Tile, class X, int I>
struct OtherDimension<Tile, X, I, false> {
  using D = typename Tile::layout_type::template dim_at<I>;
  using type = conditional_t<same_dimension<D, X>, typename OtherDimension<Tile, X, I + 1>::type,
                             base_of<D>>;
};

template <class Sw>
struct WgmmaSwizzle {
  static constexpr int span = 0;
};
template <int Bits>
struct WgmmaSwizzle<Swizzle<Bits, 3, 3>> {
  static constexpr int span = 16 << Bits;                         // bytes in a swizzled row
  static constexpr int mode = Bits == 3 ? 1 : Bits == 2 ? 2 : 3;  // 128, 64, 32 bytes
};

}  // namespace detail

/// How a shared tile of type Tile is read as a wgmma operand whose depth dimension is
/// Depth (K): its swizzle mode, whether it is stored K-major, and its strides in bytes.
template <class Tile, class Depth>
struct WgmmaOperand {
  using T = typename detail::RemoveConst<typename Tile::element_type>::type;
  using L = typename Tile::layout_type;
  using Sw = detail::WgmmaSwizzle<typename Tile::swizzle_type>;
  static_assert(sizeof(T) == 2, "wgmma operands here are 16-bit (f16, bf16)");
  static_assert(Sw::span > 0,
                "a wgmma operand's tile is swizzled as TmaSwizzle<T, 32, 64 or 128> lays out "
                "TMA boxes");
  using Contiguous = typename L::template dim_at<L::contiguous_index>;
  static_assert(Contiguous::stride == 1 &&
                    L().template size_at<L::contiguous_index>() == Sw::span / 2,
                "a wgmma operand's tile has rows of exactly one swizzle span");
  /// K-major: each row holds consecutive K; otherwise the row runs along M (or N).
  static constexpr bool k_major = same_dimension<Contiguous, Depth>;
  using Outer = detail::conditional_t<k_major, void, base_of<Contiguous>>;
  /// Bytes between groups of 8 rows (the stride dimension offset).
  static constexpr int sbo = 8 * Sw::span;
  /// Bytes between the row-wide chunks of an M/N-major tile (the leading dimension
  /// offset); unused (16) for K-major tiles.
  KILN_HOST_DEVICE static constexpr int lbo() {
    if constexpr (k_major) {
      return 16;
    } else {
      return L().offset(to_coords(Outer(Sw::span / 2))) * 2;
    }
  }
  /// The descriptor for the operand whose origin is `linear_offset` elements (before the
  /// swizzle) from the tile at shared address `base` (1024-byte aligned for 128 bytes).
  KILN_HOST_DEVICE static constexpr WgmmaDescriptor descriptor(unsigned base, int linear_offset) {
    const unsigned long long address = base + unsigned(linear_offset) * 2u;
    return {((address & 0x3ffffull) >> 4) | ((unsigned long long)((lbo() >> 4) & 0x3fff) << 16) |
            ((unsigned long long)((sbo >> 4) & 0x3fff) << 32) |
            ((unsigned long long)Sw::mode << 62)};
  }
};

namespace detail {
template <class X, class Cursor>
using DepthOf = typename OtherDimension<typename Cursor::tensor_type, X>::type;

#if KILN_DEVICE_PASS && !KILN_SM90A
KILN_DEVICE KILN_FORCEINLINE void trap_no_sm90a() {
#if KILN_HIP
  __builtin_trap();
#else
  __trap();
#endif
}
#endif
}  // namespace detail

#if KILN_GPU_COMPILER
/// The descriptor of the operand at cursor `at` of a shared tile (Depth: its K).
template <class Depth, class Cursor>
KILN_DEVICE KILN_FORCEINLINE WgmmaDescriptor wgmma_descriptor(const Cursor& at) {
  using Op = WgmmaOperand<typename Cursor::tensor_type, Depth>;
  return Op::descriptor(detail::shared_window_address(at.tensor().data()),
                        at.tensor().linear_offset(at.coords()));
}

/// Orders the warp group's accumulator registers (and shared memory) before wgmma reads
/// them: before the first wgmma, and whenever the registers were touched since.
KILN_DEVICE KILN_FORCEINLINE void wgmma_fence() {
#if KILN_SM90A
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90a();
#endif
}
/// Closes the group of wgmma issued since the last commit.
KILN_DEVICE KILN_FORCEINLINE void wgmma_commit_group() {
#if KILN_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90a();
#endif
}
/// Waits until at most N committed groups are still running; their accumulators are then
/// ready (and their shared operands free).
template <int N>
KILN_DEVICE KILN_FORCEINLINE void wgmma_wait_group() {
#if KILN_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90a();
#endif
}

/// Raises (Inc) or lowers this warp group's registers per thread to Count (a multiple of 8,
/// 24 to 256): producer warp groups give registers to the consumers that hold
/// accumulators. Every thread of the warp group calls it.
template <int Count>
KILN_DEVICE KILN_FORCEINLINE void warp_group_registers_increase() {
  static_assert(Count % 8 == 0 && Count >= 24 && Count <= 256, "setmaxnreg takes 24 to 256, by 8");
#if KILN_SM90A
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Count));
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90a();
#endif
}
template <int Count>
KILN_DEVICE KILN_FORCEINLINE void warp_group_registers_decrease() {
  static_assert(Count % 8 == 0 && Count >= 24 && Count <= 256, "setmaxnreg takes 24 to 256, by 8");
#if KILN_SM90A
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Count));
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90a();
#endif
}

/// acc (+)= A x B for the warp group (every thread calls it): A the (M:64, K:16) operand at
/// cursor `a` of a shared tile, B the (K:16, N:Cols) operand at cursor `b`; accumulate
/// false overwrites acc. Asynchronous: see wgmma_fence, wgmma_commit_group and
/// wgmma_wait_group.
template <class M, class N, int Cols, class ACursor, class BCursor>
KILN_DEVICE KILN_FORCEINLINE void wgmma(WgmmaAccumulator<M, N, Cols>& acc, const ACursor& a,
                                        const BCursor& b, bool accumulate) {
  using K = detail::DepthOf<M, ACursor>;
  static_assert(same_dimension<K, detail::DepthOf<N, BCursor>>,
                "A and B share their depth dimension");
  using OpA = WgmmaOperand<typename ACursor::tensor_type, K>;
  using OpB = WgmmaOperand<typename BCursor::tensor_type, K>;
  using T = typename OpA::T;
  static_assert(detail::is_same<T, typename OpB::T>, "wgmma takes A and B of one type");
  static_assert(detail::is_same<T, f16> || detail::is_same<T, bf16>, "wgmma takes f16 or bf16");
#if KILN_SM90A
  constexpr int TransA = OpA::k_major ? 0 : 1;
  constexpr int TransB = OpB::k_major ? 0 : 1;
  const unsigned long long desc_a = wgmma_descriptor<K>(a).bits;
  const unsigned long long desc_b = wgmma_descriptor<K>(b).bits;
  const int scale_d = accumulate ? 1 : 0;
  float* d = acc.values;
#define KILN_WGMMA_N64_(type)                                                                      \
  asm volatile(                                                                                    \
      "{\n .reg .pred p;\n setp.ne.b32 p, %34, 0;\n"                                               \
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." type "." type                                  \
      " {"                                                                                         \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"                      \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"             \
      "}, %32, %33, p, 1, 1, %35, %36;\n}\n"                                                       \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),        \
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),    \
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), \
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), \
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])                                         \
      : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(TransA), "n"(TransB))

#define KILN_WGMMA_N128_(type)                                                                     \
  asm volatile(                                                                                    \
      "{\n .reg .pred p;\n setp.ne.b32 p, %66, 0;\n"                                               \
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." type "." type                                 \
      " {"                                                                                         \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"                      \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"            \
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"            \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"             \
      "}, %64, %65, p, 1, 1, %67, %68;\n}\n"                                                       \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),        \
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),    \
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), \
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), \
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), \
        "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), \
        "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), \
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), \
        "+f"(d[63])                                                                                \
      : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(TransA), "n"(TransB))

#define KILN_WGMMA_N256_(type)                                                                     \
  asm volatile(                                                                                    \
      "{\n .reg .pred p;\n setp.ne.b32 p, %130, 0;\n"                                              \
      "wgmma.mma_async.sync.aligned.m64n256k16.f32." type "." type                                 \
      " {"                                                                                         \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"                      \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"            \
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"            \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63,"            \
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79,"            \
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95,"            \
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, "     \
      "%111,"                                                                                      \
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, " \
      "%127"                                                                                       \
      "}, %128, %129, p, 1, 1, %131, %132;\n}\n"                                                   \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),        \
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),    \
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), \
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), \
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), \
        "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), \
        "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), \
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), \
        "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), \
        "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), \
        "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), \
        "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), \
        "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), \
        "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),          \
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]),        \
        "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]),        \
        "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]),        \
        "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])         \
      : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(TransA), "n"(TransB))

  if constexpr (Cols == 64 && detail::is_same<T, f16>) {
    KILN_WGMMA_N64_("f16");
  } else if constexpr (Cols == 64) {
    KILN_WGMMA_N64_("bf16");
  } else if constexpr (Cols == 128 && detail::is_same<T, f16>) {
    KILN_WGMMA_N128_("f16");
  } else if constexpr (Cols == 128) {
    KILN_WGMMA_N128_("bf16");
  } else if constexpr (detail::is_same<T, f16>) {
    KILN_WGMMA_N256_("f16");
  } else {
    KILN_WGMMA_N256_("bf16");
  }
#undef KILN_WGMMA_N64_
#undef KILN_WGMMA_N128_
#undef KILN_WGMMA_N256_
#elif KILN_DEVICE_PASS
  (void)acc;
  (void)a;
  (void)b;
  (void)accumulate;
  detail::trap_no_sm90a();
#endif
}
#endif

}  // namespace kiln
