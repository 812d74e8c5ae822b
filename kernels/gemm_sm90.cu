// C = epilogue(alpha * op(A) op(B) + beta * C) on the Hopper tensor cores (sm_90a): TMA
// copies A's and B's tiles into a ring of swizzled shared-memory stages, counted on
// mbarriers, and warp groups multiply them with wgmma straight from shared memory.
//
// The host (include/kiln/ops/gemm.hpp) generates spec.hpp as for gemm_sm80.cu (dimensions
// M, N, K; tensors A, B, C; constants kBM, kBN, kStages, kGroupM, kEpilogueArgsBytes;
// `struct Epilogue`; KILN_KERNEL_NAME) plus kConsumers, the consumer warp groups. The
// tiles' depth is 64 (one 128-byte swizzled row of 16-bit elements).
//
// Warp specialization: warp group kConsumers is the producer (one thread issues every TMA
// copy, the rest give their registers away); warp groups 0 .. kConsumers - 1 consume,
// each owning kBM / kConsumers rows of the block's tile as (M:64, N:kBN) accumulators.
// Persistent: the grid is at most one block per SM and block b takes tiles b, b + grid,
// ...; the producer runs up to kStages stages ahead, across tile boundaries, so the next
// tile's copies overlap this tile's epilogue. TMA zero-fills what lies outside A and B;
// the epilogue stores only what lies inside C.
#include "kiln/device/wgmma.hpp"
#include "spec.hpp"

namespace gemm {

using kiln::Extent;
using kiln::Fold;
using In = typename kiln::detail::RemoveConst<typename A::element_type>::type;
using Out = typename C::element_type;

constexpr int kThreads = kiln::warp_group_threads * (kConsumers + 1);
constexpr int kWgRows = kBM / kConsumers;  // a consumer's rows of the block tile
constexpr int kWgTiles = kWgRows / 64;     // its (M:64, N:kBN) accumulators

static_assert(kBM % (64 * kConsumers) == 0, "each consumer owns whole 64-row accumulators");
static_assert(kBN == 64 || kBN == 128 || kBN == 256, "block_n is 64, 128 or 256");
static_assert(kWgTiles * kBN <= 256, "a consumer holds at most 128 accumulator floats a thread");
static_assert(kStages >= 2, "a pipeline has at least two stages");
static_assert(kBK == 64, "the depth of a stage is one 128-byte swizzled row of 16-bit elements");
static_assert(kEpilogueArgsBytes == 0 || sizeof(Epilogue) == kEpilogueArgsBytes,
              "the epilogue's device struct and the arguments the host passes differ in size");
static_assert(sizeof(Epilogue) <= 128, "an epilogue's arguments take at most 128 bytes");

template <class T>
using Contiguous = typename T::layout_type::template dim_at<T::layout_type::contiguous_index>;

using Swz = kiln::TmaSwizzle<In, 128>;

// The shared tile of one stage of Global (A or B) as TMA stores it: K-major rows of 64
// (X:kX, K:64) in one box, or X-major in boxes of 64 along X, (Fold<X, 64>, K:64, X:64).
template <class Global, class X, int kX>
struct StageTile {
  static constexpr bool k_major = kiln::detail::is_same<Contiguous<Global>, K>;
  static constexpr int boxes = k_major ? 1 : kX / 64;
  using Box =
      kiln::detail::conditional_t<k_major,
                                  kiln::SwizzledTensor<In, Swz, Extent<X, kX>, Extent<K, kBK>>,
                                  kiln::SwizzledTensor<In, Swz, Extent<K, kBK>, Extent<X, 64>>>;
  using type = kiln::detail::conditional_t<
      k_major, Box,
      kiln::SwizzledTensor<In, Swz, Extent<Fold<X, 64>, kX / 64>, Extent<K, kBK>, Extent<X, 64>>>;
  static_assert(k_major || kX % 64 == 0, "X-major tiles are whole 64-element rows");
};
using ATiles = StageTile<A, M, kBM>;
using BTiles = StageTile<B, N, kBN>;
using ATile = typename ATiles::type;
using BTile = typename BTiles::type;
using ARing = kiln::Ring<ATile, kStages>;
using BRing = kiln::Ring<BTile, kStages>;
using Bars = kiln::BarrierRing<kStages>;
constexpr int kStageBytes = kiln::tma_bytes<ATile>() + kiln::tma_bytes<BTile>();

// Stage k's box(es) of Global at (x0, k0) into `tile`, counted on `bar`.
template <class Global, class Tiles, class X>
KILN_DEVICE KILN_FORCEINLINE void load_stage(const typename Tiles::type& tile,
                                             const kiln::TmaDescriptor& map, X x0, K k0,
                                             kiln::Mbarrier bar) {
  if constexpr (Tiles::k_major) {
    kiln::tma_load<Global>(tile, map, x0 + k0, bar);
  } else {
#pragma unroll
    for (int c = 0; c < Tiles::boxes; ++c) {
      const typename Tiles::Box box(tile[X(64 * c)].ptr());
      kiln::tma_load<Global>(box, map, x0 + X(64 * c) + k0, bar);
    }
  }
}

// Tile t's (block row, block column): kGroupM block rows walked together, column by
// column, so concurrent blocks share B's tiles in L2.
KILN_DEVICE KILN_FORCEINLINE void tile_coords(int t, int tiles_m, int tiles_n, int& tm, int& tn) {
  const int per_group = kGroupM * tiles_n;
  const int group = t / per_group;
  const int first = group * kGroupM;
  const int rows = tiles_m - first < kGroupM ? tiles_m - first : kGroupM;
  const int in_group = t - group * per_group;
  tm = first + in_group % rows;
  tn = in_group / rows;
}

struct alignas(16) EpilogueArgs {
  unsigned char bytes[128];
};

}  // namespace gemm

extern "C" __global__ void KILN_LAUNCH_BOUNDS(gemm::kThreads, 1)
    KILN_KERNEL_NAME(const __grid_constant__ kiln::TmaDescriptor a_map,
                     const __grid_constant__ kiln::TmaDescriptor b_map, gemm::Out* c_data, int m,
                     int n, int k, float alpha, float beta, gemm::EpilogueArgs epilogue_args) {
  using namespace gemm;
  const C c(c_data, M(m), N(n));

  // The rings start 1024-byte aligned (the 128-byte swizzle's period); the host adds the
  // slack to the launch's shared memory.
  unsigned char* raw = static_cast<unsigned char*>(kiln::dynamic_shared_memory());
  const unsigned misalign = kiln::detail::shared_window_address(raw) & 1023u;
  kiln::SharedCarver smem(raw + (misalign ? 1024u - misalign : 0u));
  const ARing ring_a = smem.take<ARing, 1024>();
  const BRing ring_b = smem.take<BRing, 1024>();
  const Bars bars = smem.take<Bars, 8>();

  const int warp_group = kiln::thread_index() / kiln::warp_group_threads;
  const int wg_thread = kiln::thread_index() % kiln::warp_group_threads;
  if (kiln::thread_index() == 0) {
    bars.init(1, kConsumers);
    kiln::fence_barrier_init();
  }
  if (warp_group == kConsumers && wg_thread == 0) {
    kiln::tma_prefetch(a_map);
    kiln::tma_prefetch(b_map);
  }
  kiln::sync_threads();

  const int tiles_m = (m + kBM - 1) / kBM;
  const int tiles_n = (n + kBN - 1) / kBN;
  const int tiles = tiles_m * tiles_n;
  const int k_tiles = (k + kBK - 1) / kBK;

  if (warp_group == kConsumers) {
    // The producer.
    kiln::warp_group_registers_decrease<40>();
    if (wg_thread != 0) return;
    int fill = 0;
    for (int t = kiln::block_index(); t < tiles; t += kiln::grid_size()) {
      int tm, tn;
      tile_coords(t, tiles_m, tiles_n, tm, tn);
      for (int kt = 0; kt < k_tiles; ++kt, ++fill) {
        const kiln::RING_STAGE s(fill);
        bars.empty(s).wait_for(Bars::reuse_parity(fill));
        bars.full(s).arrive_expect_tx(kStageBytes);
        load_stage<A, ATiles>(ring_a[s], a_map, M(tm * kBM), K(kt * kBK), bars.full(s));
        load_stage<B, BTiles>(ring_b[s], b_map, N(tn * kBN), K(kt * kBK), bars.full(s));
      }
    }
    return;
  }

  // A consumer.
  kiln::warp_group_registers_increase<kConsumers == 1 ? 240 : 232>();
  const Epilogue& epilogue = *reinterpret_cast<const Epilogue*>(&epilogue_args);
  const bool pairs = (n & 1) == 0;  // element pairs (even columns) start 2-aligned in C
  const M wm(warp_group * kWgRows);
  int fill = 0;
  for (int t = kiln::block_index(); t < tiles; t += kiln::grid_size()) {
    int tm, tn;
    tile_coords(t, tiles_m, tiles_n, tm, tn);
    kiln::WgmmaAccumulator<M, N, kBN> acc[kWgTiles] = {};
    for (int kt = 0; kt < k_tiles; ++kt, ++fill) {
      const kiln::RING_STAGE s(fill);
      bars.full(s).wait_for(Bars::parity(fill));
      const ATile sa = ring_a[s];
      const BTile sb = ring_b[s];
      kiln::wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kBK / 16; ++ks) {
#pragma unroll
        for (int i = 0; i < kWgTiles; ++i) {
          kiln::wgmma(acc[i], sa[wm + M(64 * i) + K(16 * ks)], sb[K(16 * ks)], true);
        }
      }
      kiln::wgmma_commit_group();
      // The products of the stage before are done: hand it back to the producer.
      kiln::wgmma_wait_group<1>();
      if (kt > 0 && wg_thread == 0) bars.empty(kiln::RING_STAGE(fill - 1)).arrive();
    }
    kiln::wgmma_wait_group<0>();
    if (k_tiles > 0 && wg_thread == 0) bars.empty(kiln::RING_STAGE(fill - 1)).arrive();

    // Epilogue: every accumulator element through its typed coordinates.
    const M m0(tm * kBM);
    const N n0(tn * kBN);
#pragma unroll
    for (int i = 0; i < kWgTiles; ++i) {
#pragma unroll
      for (int e = 0; e < acc[i].size; e += 2) {
        const auto at =
            m0 + wm + M(64 * i) + n0 + kiln::WgmmaAccumulator<M, N, kBN>::coords(wg_thread, e);
        const M row = kiln::get<M>(at);
        const N col = kiln::get<N>(at);
        if (row.get() >= m || col.get() >= n) continue;
        float v[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          v[h] = alpha * acc[i][e + h];
          if (beta != 0.0f && col.get() + h < n) v[h] += beta * float(*c[at + N(h)]);
          v[h] = epilogue(v[h], row, col + N(h));
        }
        const auto out = c[at];
        if (pairs && col.get() + 1 < n) {
          kiln::Vec<Out, 2> pair{{Out(v[0]), Out(v[1])}};
          *reinterpret_cast<kiln::Vec<Out, 2>*>(out.ptr()) = pair;
        } else {
          *out = Out(v[0]);
          if (col.get() + 1 < n) *c[at + N(1)] = Out(v[1]);
        }
      }
    }
  }
}
