// C = epilogue(alpha * op(A) op(B) + beta * C) on the tensor cores of sm_80 and later:
// mma.sync m16n8k16 with f16 or bf16 inputs and f32 accumulators, operands staged through
// a multi-stage ring of swizzled shared-memory tiles filled by cp.async.
//
// The host (include/kiln/ops/gemm.hpp) generates spec.hpp with:
//   dimensions  M, N, K (the problem's rows, columns and depth)
//   tensors     A: (M, K) or (K, M), B: (K, N) or (N, K), C: (M, N), every size run-time.
//               Which dimension of A and B is contiguous is the layout (NN, NT, TN, TT):
//               the kernel reads it from the types and never names the layout.
//   constants   kBM, kBN, kBK (the block's tile), kWarpsM, kWarpsN (its warps),
//               kStages (the ring's depth), kVectorA, kVectorB (the elements each copy
//               of A's and B's tiles moves: 8, 4 or 2 for 16-, 8- or 4-byte cp.async, as
//               the rows are aligned; 1 element by element),
//               kGroupM (block rows walked together, for L2 reuse), kEpilogueArgsBytes
//   code        `struct Epilogue` with the epilogue's run-time arguments as members and
//               `float operator()(float v, M m, N n) const`, applied to every element
//   KILN_KERNEL_NAME, e.g. gemm__f16_f32__nn__128x256x64_w2x4_s3_g8
//
// Each warp owns a (kBM / kWarpsM) x (kBN / kWarpsN) piece of the block's tile as a grid of
// MmaC accumulators. Per K step of 16 it loads A's and B's fragments with ldmatrix (the
// tiles' types say whether to transpose) and issues one mma.sync per accumulator. The
// ring keeps kStages - 1 tiles of A and B in flight while the warps work on the oldest.
// Ragged edges are zero-filled by the copies, and the epilogue stores only what lies
// inside C.
#include "kiln/device/ldmatrix.hpp"
#include "spec.hpp"

namespace gemm {

using kiln::Extent;
using In = typename kiln::detail::RemoveConst<typename A::element_type>::type;
using Out = typename C::element_type;

constexpr int kThreads = 32 * kWarpsM * kWarpsN;
constexpr int kWarpM = kBM / kWarpsM;  // a warp's rows of the block tile
constexpr int kWarpN = kBN / kWarpsN;  // and its columns
constexpr int kFragsM = kWarpM / 16;   // MmaA / MmaC fragments down a warp's rows
constexpr int kFragsN = kWarpN / 8;    // MmaB / MmaC fragments across its columns

static_assert(kBM % (16 * kWarpsM) == 0 && kBN % (8 * kWarpsN) == 0,
              "each warp's tile is whole 16 x 8 accumulator fragments");
static_assert(kBK % 16 == 0, "the block's depth is whole m16n8k16 steps");
static_assert(kStages >= 2, "a pipeline has at least two stages");
static_assert(kEpilogueArgsBytes == 0 || sizeof(Epilogue) == kEpilogueArgsBytes,
              "the epilogue's device struct and the arguments the host passes differ in size");
static_assert(sizeof(Epilogue) <= 128, "an epilogue's arguments take at most 128 bytes");

// The dimension a global tensor type stores contiguously.
template <class T>
using Contiguous = typename T::layout_type::template dim_at<T::layout_type::contiguous_index>;

// A swizzle that spreads 8 consecutive rows' 16-byte chunks over different banks, for rows
// of `Row` 16-bit elements: XOR the row (mod 8) into the chunk index. 64-byte rows hold 4
// chunks, so pairs of rows share one XOR value and sit in the two halves of 128 bytes.
template <int Row>
struct RowSwizzle {
  KILN_HOST_DEVICE static constexpr int log2(int v) { return v <= 1 ? 0 : 1 + log2(v / 2); }
  static_assert(Row >= 32 && (Row & (Row - 1)) == 0,
                "shared tiles have rows of a power of 2 of at least 32 elements");
  using type = kiln::detail::conditional_t<Row == 32, kiln::Swizzle<2, 3, 3>,
                                           kiln::Swizzle<3, 3, log2(Row) - 3>>;
};

// A (Outer: kOuter) x (Depth: kDepth) shared tile of In laid out as Global is: the
// dimension Global stores contiguously is the tile's innermost, swizzled.
template <class Global, class Outer, int kOuter, class Depth, int kDepth>
struct SharedTileOf {
  static constexpr bool depth_inner = kiln::detail::is_same<Contiguous<Global>, Depth>;
  using type = kiln::detail::conditional_t<
      depth_inner,
      kiln::SwizzledTensor<In, typename RowSwizzle<kDepth>::type, Extent<Outer, kOuter>,
                           Extent<Depth, kDepth>>,
      kiln::SwizzledTensor<In, typename RowSwizzle<kOuter>::type, Extent<Depth, kDepth>,
                           Extent<Outer, kOuter>>>;
};

using ATile = typename SharedTileOf<A, M, kBM, K, kBK>::type;
using BTile = typename SharedTileOf<B, N, kBN, K, kBK>::type;
using ARing = kiln::Ring<ATile, kStages>;
using BRing = kiln::Ring<BTile, kStages>;

// The tile of `src` at `from` into `dst`, kVector elements a copy. Where rows hold whole
// vectors of 2 or more, by cp.async of that size (completing with the thread's commit
// group), zero-filled outside src unless the caller knows the tile is inside
// (Checked = false); else element by element, now.
template <bool Checked, int kVector, class Tile, class Global, class At>
KILN_DEVICE KILN_FORCEINLINE void load_tile(const Tile& dst, const Global& src, At from) {
  if constexpr (kVector > 1) {
    constexpr int kBytes = kVector * int(sizeof(In));
    kiln::async_copy_tile<kThreads, Checked, kBytes>(dst, src[from], kiln::thread_index());
  } else {
    constexpr int n = Tile::layout_type().num_elements();
    const auto at = src[from];
    for (int x = kiln::thread_index(); x < n; x += kThreads) {
      const auto c = typename Tile::layout_type().coords_of(x);
      const auto s = at[c];
      *dst[c] = s.in_bounds() ? *s : In(0.0f);
    }
  }
}

// K tile t (of a depth of k) of `src` from `origin` into its stage of `ring`. Where the
// block's rows (columns) lie inside the tensor (`inside`) and so does the tile's K, the
// copies skip the bounds checks.
template <int kVector, class Ring, class Global, class Origin>
KILN_DEVICE KILN_FORCEINLINE void load_k_tile(const Ring& ring, const Global& src, Origin origin,
                                              bool inside, int t, int k) {
  if (t >= (k + kBK - 1) / kBK) return;
  if (inside && (t + 1) * kBK <= k) {
    load_tile<false, kVector>(ring[kiln::RING_STAGE(t)], src, origin + K(t * kBK));
  } else {
    load_tile<true, kVector>(ring[kiln::RING_STAGE(t)], src, origin + K(t * kBK));
  }
}

// One warp's operands for one K step of 16: its column of A fragments and row of B ones.
struct Fragments {
  kiln::MmaA<In, M, K> a[kFragsM];
  kiln::MmaB<In, K, N> b[kFragsN];
};

// B's fragments load in pairs where they can: one ldmatrix .x4 for two (N:8) fragments
// side by side.
constexpr int kPairB = kFragsN % 2 == 0 ? 2 : 1;

// A warp's fragment loads from every stage, each lane's addresses worked out once.
struct WarpLoaders {
  kiln::FragmentLoader<kiln::MmaA<In, M, K>, ATile> a;
  kiln::FragmentLoader<kiln::MmaB<In, K, N>, BTile, kPairB> b;

  // Step `ks` of the stage tiles `sa` and `sb`.
  KILN_DEVICE KILN_FORCEINLINE void load(Fragments& f, const ATile& sa, const BTile& sb,
                                         int ks) const {
#pragma unroll
    for (int i = 0; i < kFragsM; ++i) a.load(&f.a[i], sa, M(16 * i) + K(16 * ks));
#pragma unroll
    for (int j = 0; j < kFragsN; j += kPairB) b.load(&f.b[j], sb, N(8 * j) + K(16 * ks));
  }
};

// Which block tile this block computes: blocks walk kGroupM block rows at a time, column
// by column, so the tiles of A and B they share are read from L2 rather than DRAM.
KILN_DEVICE KILN_FORCEINLINE void block_tile(int tiles_m, int tiles_n, int& tm, int& tn) {
  const int block = kiln::block_index();
  const int per_group = kGroupM * tiles_n;
  const int group = block / per_group;
  const int first = group * kGroupM;
  const int rows = tiles_m - first < kGroupM ? tiles_m - first : kGroupM;
  const int in_group = block - group * per_group;
  tm = first + in_group % rows;
  tn = in_group / rows;
}

struct alignas(16) EpilogueArgs {
  unsigned char bytes[128];
};

}  // namespace gemm

extern "C" __global__ void KILN_LAUNCH_BOUNDS(gemm::kThreads, 1)
    KILN_KERNEL_NAME(const gemm::In* __restrict__ a_data, const gemm::In* __restrict__ b_data,
                     gemm::Out* c_data, int m, int n, int k, float alpha, float beta,
                     gemm::EpilogueArgs epilogue_args) {
  using namespace gemm;
  using kiln::f16;
  const A a(a_data, M(m), K(k));
  const B b(b_data, N(n), K(k));
  const C c(c_data, M(m), N(n));

  int tm, tn;
  block_tile((m + kBM - 1) / kBM, (n + kBN - 1) / kBN, tm, tn);
  const M m0(tm * kBM);
  const N n0(tn * kBN);

  kiln::SharedCarver smem(kiln::dynamic_shared_memory());
  const ARing ring_a = smem.take<ARing>();
  const BRing ring_b = smem.take<BRing>();

  const int warp = kiln::thread_index() / 32;
  const M wm(warp / kWarpsN * kWarpM);  // the warp's rows within the block tile
  const N wn(warp % kWarpsN * kWarpN);  // and columns

  kiln::MmaC<float, M, N> acc[kFragsM][kFragsN] = {};

  const int k_tiles = (k + kBK - 1) / kBK;
  constexpr int kSteps = kBK / 16;
  // Tiles wholly inside A (B) along M (N) skip the bounds checks, unless K is ragged there.
  const bool a_inside = m0.get() + kBM <= m;
  const bool b_inside = n0.get() + kBN <= n;
  auto load_a = [&](int t) { load_k_tile<kVectorA>(ring_a, a, m0, a_inside, t, k); };
  auto load_b = [&](int t) { load_k_tile<kVectorB>(ring_b, b, n0, b_inside, t, k); };

  // Prologue: the first kStages - 1 tiles in flight, one commit group each (empty groups
  // past the end keep the count of groups, and so the waits, uniform).
  for (int s = 0; s < kStages - 1; ++s) {
    load_a(s);
    load_b(s);
    kiln::async_commit_group();
  }
  kiln::async_wait_group<kStages - 2>();
  kiln::sync_threads();

  // Fragments are double-buffered: while the tensor cores work on step ks, the next
  // step's (the next tile's first, at the last step) come in from shared memory.
  Fragments frag[2];
  const WarpLoaders loaders{{wm, kiln::lane_index()}, {wn, kiln::lane_index()}};
  loaders.load(frag[0], ring_a[kiln::RING_STAGE(0)], ring_b[kiln::RING_STAGE(0)], 0);
  for (int kt = 0; kt < k_tiles; ++kt) {
    const ATile sa = ring_a[kiln::RING_STAGE(kt)];
    const BTile sb = ring_b[kiln::RING_STAGE(kt)];
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks) {
      if (ks == kSteps - 1) {
        // Tile kt + 1 has landed for everyone; every warp has also loaded its last
        // fragments of tile kt (a step ago), so the next iteration's copies may refill
        // tile kt's stage.
        kiln::async_wait_group<kStages - 2>();
        kiln::sync_threads();
        loaders.load(frag[(ks + 1) % 2], ring_a[kiln::RING_STAGE(kt + 1)],
                     ring_b[kiln::RING_STAGE(kt + 1)], 0);
      } else {
        loaders.load(frag[(ks + 1) % 2], sa, sb, ks + 1);
      }
      // The copies of tile kt + kStages - 1, spread over the first steps, committed
      // before the wait above counts them.
      if (ks == 0) load_a(kt + kStages - 1);
      if (ks == (kSteps > 2 ? 1 : 0)) {
        load_b(kt + kStages - 1);
        kiln::async_commit_group();
      }
      const Fragments& f = frag[ks % 2];
#pragma unroll
      for (int i = 0; i < kFragsM; ++i) {
#pragma unroll
        for (int j = 0; j < kFragsN; ++j) kiln::mma(acc[i][j], f.a[i], f.b[j], acc[i][j]);
      }
    }
  }
  kiln::async_wait_group<0>();

  // Epilogue: every accumulator element through its typed coordinates. All values first
  // (reads of C and of the epilogue's arguments), then all stores, so no load waits behind
  // a store that might alias it.
  const Epilogue& epilogue = *reinterpret_cast<const Epilogue*>(&epilogue_args);
  const int lane = kiln::lane_index();
  // Element pairs (even columns) are stored as one where they are aligned in C: n even and
  // C's address a multiple of a pair's size (a C starting mid-pair stores elements alone).
  const bool pairs =
      (n & 1) == 0 && reinterpret_cast<unsigned long long>(c_data) % (2 * sizeof(Out)) == 0;
  using Acc = kiln::MmaC<float, M, N>;
#pragma unroll
  for (int i = 0; i < kFragsM; ++i) {
#pragma unroll
    for (int j = 0; j < kFragsN; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const auto at = m0 + wm + M(16 * i) + n0 + wn + N(8 * j) + Acc::coords(lane, e);
        const M row = kiln::get<M>(at);
        const N col = kiln::get<N>(at);
        if (row.get() >= m || col.get() >= n) continue;
        float v = alpha * acc[i][j][e];
        if (beta != 0.0f) v += beta * float(*c[at]);
        acc[i][j][e] = epilogue(v, row, col);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kFragsM; ++i) {
#pragma unroll
    for (int j = 0; j < kFragsN; ++j) {
#pragma unroll
      for (int e = 0; e < 4; e += 2) {
        const auto at = m0 + wm + M(16 * i) + n0 + wn + N(8 * j) + Acc::coords(lane, e);
        const int row = kiln::get<M>(at).get();
        const int col = kiln::get<N>(at).get();
        if (row >= m || col >= n) continue;
        const auto out = c[at];
        if (pairs && col + 1 < n) {
          kiln::Vec<Out, 2> pair{{Out(acc[i][j][e]), Out(acc[i][j][e + 1])}};
          *reinterpret_cast<kiln::Vec<Out, 2>*>(out.ptr()) = pair;
        } else {
          *out = Out(acc[i][j][e]);
          if (col + 1 < n) *c[at + N(1)] = Out(acc[i][j][e + 1]);
        }
      }
    }
  }
}
