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
// kConsumers is 1 to 3; three (64 x 128 rows and columns each, in 192 x 128 tiles) get 152
// registers a thread.
// Persistent: the grid is at most one block per SM and block b takes tiles b, b + grid,
// ...; the producer runs up to kStages stages ahead, across tile boundaries, so the next
// tile's copies overlap this tile's epilogue. TMA zero-fills what lies outside A and B;
// the epilogue stores only what lies inside C: 16-bit C through shared memory and TMA
// stores (`c_map`, boxes of 16 rows by 64 bytes, where the host could make one: c_by_tma),
// else straight from the registers.
//
// Split K (kSplitK of 2 or 4, for problems with too few tiles to fill the GPU): the blocks
// of a thread-block cluster of kSplitK share each tile, block r taking the r-th part of K.
// Blocks 1 .. kSplitK - 1 leave their sums in their shared memory; block 0 adds them
// through distributed shared memory and runs the epilogue. Two mbarriers per consumer warp
// group order it: `slot_full` in block 0 (every thread of the others arrives after writing
// its sums), `slot_free` in each other block (block 0's threads arrive after reading them).
//
// Clusters on block rows (kClusterM = 2, B stored N-contiguous): the two blocks of a
// cluster take tiles (2p, n) and (2p + 1, n), which need the same stages of B. Block r
// copies the r-th half of the 64-column boxes of each stage of B into both blocks' shared
// memory (TMA multicast, counted on both blocks' `full` barrier) and its own A. A stage may
// be refilled only once the consumers of both blocks are done with it, so every consumer
// releases it in both blocks (`empty` counts kConsumers x kClusterM arrivals; a CTA-scope
// arrival: the stage's reads have completed), and before leaving, each producer waits
// until every stage is released: the other block's arrivals must land while this block
// still runs.
#include "kiln/device/cluster.hpp"
#include "kiln/device/wgmma.hpp"
#include "spec.hpp"

namespace gemm {

using kiln::Extent;
using kiln::Fold;
using In = typename kiln::detail::RemoveConst<typename A::element_type>::type;
using Out = typename C::element_type;

constexpr int kThreads = kiln::warp_group_threads * (kConsumers + 1);
constexpr int kClusterBlocks = kSplitK * kClusterM;  // blocks a cluster
constexpr int kWgRows = kBM / kConsumers;            // a consumer's rows of the block tile
constexpr int kWgTiles = kWgRows / 64;               // its (M:64, N:kBN) accumulators

static_assert(kBM % (64 * kConsumers) == 0, "each consumer owns whole 64-row accumulators");
static_assert(kBN == 64 || kBN == 128 || kBN == 256, "block_n is 64, 128 or 256");
static_assert(kWgTiles * kBN <= 256, "a consumer holds at most 128 accumulator floats a thread");
static_assert(kConsumers >= 1 && kConsumers <= 3, "1 to 3 consumer warp groups");
static_assert(kConsumers < 3 || kWgTiles * kBN <= 128,
              "three consumers get 152 registers a thread: at most 64 accumulator floats");
static_assert(kStages >= 2, "a pipeline has at least two stages");
static_assert(kBK == 64, "the depth of a stage is one 128-byte swizzled row of 16-bit elements");
static_assert(kSplitK == 1 || kSplitK == 2 || kSplitK == 4, "K is split over 1, 2 or 4 blocks");
static_assert(kClusterM == 1 || ((kClusterM == 2 || kClusterM == 4) && kSplitK == 1),
              "clusters on block rows: 2 or 4 blocks, no split K");
static_assert(kEpilogueArgsBytes == 0 || sizeof(Epilogue) == kEpilogueArgsBytes,
              "the epilogue's device struct and the arguments the host passes differ in size");
static_assert(sizeof(Epilogue) <= 128, "an epilogue's arguments take at most 128 bytes");

template <class T>
using Contiguous = typename T::layout_type::template dim_at<T::layout_type::contiguous_index>;

using Swz = kiln::TmaSwizzle<In, 128>;

// The shared tile of one stage of Global (A or B) as TMA stores it: K-major rows of 64
// (X:kX, K:64), copied in kParts boxes of kX / kParts rows, or X-major in boxes of 64 along
// X, (Fold<X, 64>, K:64, X:64). X-major tiles of fewer 64-column boxes than kParts split
// each box along K too (depth_parts boxes of box_k rows of K: an address-based swizzle
// makes a box starting at a 1024-byte multiple lie as part of the whole one would).
template <class Global, class X, int kX, int kParts = 1>
struct StageTile {
  static constexpr bool k_major = kiln::detail::is_same<Contiguous<Global>, K>;
  static constexpr int box_x = k_major ? kX / kParts : 64;  // a box's extent along X
  static constexpr int columns = kX / box_x;                // boxes along X
  static constexpr int depth_parts = !k_major && kParts > columns ? kParts / columns : 1;
  static constexpr int box_k = kBK / depth_parts;  // a box's extent along K
  static constexpr int boxes = columns * depth_parts;
  using Box =
      kiln::detail::conditional_t<k_major,
                                  kiln::SwizzledTensor<In, Swz, Extent<X, box_x>, Extent<K, kBK>>,
                                  kiln::SwizzledTensor<In, Swz, Extent<K, box_k>, Extent<X, 64>>>;
  using type = kiln::detail::conditional_t<
      k_major, kiln::SwizzledTensor<In, Swz, Extent<X, kX>, Extent<K, kBK>>,
      kiln::SwizzledTensor<In, Swz, Extent<Fold<X, 64>, kX / 64>, Extent<K, kBK>, Extent<X, 64>>>;
  static_assert(k_major || kX % 64 == 0, "X-major tiles are whole 64-element rows");
  static_assert(kX % kParts == 0 && box_x % 8 == 0, "boxes of whole swizzle periods");
  static_assert(depth_parts * columns == kParts || kParts <= columns,
                "the parts share the boxes evenly");
  static_assert(box_k % 8 == 0, "boxes of whole swizzle periods along K");
};
using ATiles = StageTile<A, M, kBM>;
using BTiles = StageTile<B, N, kBN, kClusterM>;
// A K-major stage of B is copied in kClusterM boxes of kBN / kClusterM rows (the host's
// tensor map has boxes of that many rows: with boxes of kBN rows, as before, each copy
// wrote twice its bytes and the kernel hung).
using ATile = typename ATiles::type;
using BTile = typename BTiles::type;
using ARing = kiln::Ring<ATile, kStages>;
using BRing = kiln::Ring<BTile, kStages>;
using Bars = kiln::BarrierRing<kStages>;
constexpr int kStageBytes = kiln::tma_bytes<ATile>() + kiln::tma_bytes<BTile>();

// 16-bit C leaves through shared memory and TMA where the host could describe C to the TMA
// (rows of whole 16-byte vectors): each consumer warp stages its 16 rows of the tile 32
// columns at a time (one 64-byte swizzled row each, written without bank conflicts) in one
// of its two tiles, and one lane stores the box. 16-byte rows and whole sectors to L2,
// where the accumulators' own layout gives each lane 4 bytes of a row; TMA skips what lies
// outside C. (f32 C keeps the direct stores: 8 bytes a lane already fill whole sectors.)
constexpr bool kStoreByTma = sizeof(Out) == 2;
constexpr int kConsumerWarps = kConsumers * kiln::warp_group_threads / kiln::warp_size;
constexpr int kOutCols = int(64 / sizeof(Out));  // a staged chunk's columns: 64 bytes
using OutTile =
    kiln::SwizzledTensor<Out, kiln::TmaSwizzle<Out, 64>, Extent<M, 16>, Extent<N, kOutCols>>;
using OutRing = kiln::Ring<OutTile, 2 * kConsumerWarps>;  // a warp's two: 2 * warp, 2 * warp + 1
static_assert(!kStoreByTma || kiln::tma_bytes<OutTile>() == 1024, "16 rows of 64 bytes");

// Part `part` of kParts of a stage's boxes of Global at (x0, k0) into `tile`, counted on
// `bar`; with kParts > 1 into the tile and barrier of every block of the cluster
// (multicast), each block copying its own part.
template <class Global, class Tiles, int kParts, class X>
KILN_DEVICE KILN_FORCEINLINE void load_stage(const typename Tiles::type& tile,
                                             const kiln::TmaDescriptor& map, X x0, K k0,
                                             kiln::Mbarrier bar, int part) {
  constexpr int per_part = Tiles::boxes / kParts;
  static_assert(per_part * kParts == Tiles::boxes, "the parts share the boxes evenly");
#pragma unroll
  for (int j = 0; j < per_part; ++j) {
    const int b = part * per_part + j;  // box b: column b / depth_parts, depth b % depth_parts
    const X x(Tiles::box_x * (b / Tiles::depth_parts));
    const K kd(Tiles::box_k * (b % Tiles::depth_parts));
    const typename Tiles::Box box(tile[x + kd].ptr());
    if constexpr (kParts > 1) {
      kiln::tma_load_multicast<Global>(box, map, x0 + x + k0 + kd, bar, (1u << kParts) - 1u);
    } else {
      kiln::tma_load<Global>(box, map, x0 + x + k0 + kd, bar);
    }
  }
}

// A consumer warp group is done with a stage: one arrival on its `empty` barrier in every
// block that copied a part of it.
KILN_DEVICE KILN_FORCEINLINE void release(kiln::Mbarrier empty) {
  if constexpr (kClusterM > 1) {
#pragma unroll
    for (int r = 0; r < kClusterM; ++r) empty.arrive_peer(unsigned(r));
  } else {
    empty.arrive();
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

using Acc = kiln::WgmmaAccumulator<M, N, kBN>;

// The sums a consumer warp group of a block other than the cluster's first leaves for it
// (split K): every thread's accumulator floats, element e of thread t at e * 128 + t.
constexpr int kSlotFloats = kWgTiles * Acc::size * kiln::warp_group_threads;
struct SplitSlots {
  using element_type = float;
  KILN_HOST_DEVICE static constexpr int storage_size() {
    return kSplitK > 1 ? kConsumers * kSlotFloats : 1;
  }
  KILN_HOST_DEVICE explicit SplitSlots(float* d) : data(d) {}
  float* data;
};
// slot_full (used in the cluster's first block) and slot_free (in the others), one each a
// consumer warp group.
struct SplitBarriers {
  using element_type = unsigned long long;
  KILN_HOST_DEVICE static constexpr int storage_size() { return 2 * kConsumers; }
  KILN_HOST_DEVICE explicit SplitBarriers(unsigned long long* d) : words(d) {}
  KILN_DEVICE kiln::Mbarrier full(int wg) const { return kiln::Mbarrier(words + wg); }
  KILN_DEVICE kiln::Mbarrier free(int wg) const { return kiln::Mbarrier(words + kConsumers + wg); }
  unsigned long long* words;
};

// The epilogue's values of a consumer's rows of a tile, from (m0, n0), in place: every
// accumulator element through its typed coordinates, all before any direct store (reads of
// C and of the epilogue's arguments), so no load waits behind a store that might alias it
// (store_by_tma takes them a group of chunks at a time, each read before its own store). The
// copy for tiles wholly inside C (kChecked false) has no bounds checks, so the compiler can
// issue its loads (bias, residual, C) together rather than each behind its own branch.
// (Elements [E0, E1) of accumulators [I0, I1) alone: one chunk of a tile, as store_by_tma
// takes them.)
template <bool kChecked, int I0 = 0, int I1 = kWgTiles, int E0 = 0, int E1 = Acc::size>
KILN_DEVICE KILN_FORCEINLINE void tile_values(Acc (&acc)[kWgTiles], const C& c, int m, int n, M m0,
                                              N n0, int wg_thread, float alpha, float beta,
                                              const Epilogue& epilogue) {
#pragma unroll
  for (int i = I0; i < I1; ++i) {
#pragma unroll
    for (int e = E0; e < E1; ++e) {
      const auto at = m0 + M(64 * i) + n0 + Acc::coords(wg_thread, e);
      const M row = kiln::get<M>(at);
      const N col = kiln::get<N>(at);
      if (kChecked && (row.get() >= m || col.get() >= n)) continue;
      float v = alpha * acc[i][e];
      if (beta != 0.0f) v += beta * float(*c[at]);
      acc[i][e] = epilogue(v, row, col);
    }
  }
}

// The values into C from each thread's registers (element pairs where they are aligned).
template <bool kChecked>
KILN_DEVICE KILN_FORCEINLINE void store_direct(const Acc (&acc)[kWgTiles], const C& c, int m, int n,
                                               M m0, N n0, int wg_thread, bool pairs) {
#pragma unroll
  for (int i = 0; i < kWgTiles; ++i) {
#pragma unroll
    for (int e = 0; e < Acc::size; e += 2) {
      const auto at = m0 + M(64 * i) + n0 + Acc::coords(wg_thread, e);
      const int row = kiln::get<M>(at).get();
      const int col = kiln::get<N>(at).get();
      if (kChecked && (row >= m || col >= n)) continue;
      const auto out = c[at];
      if (pairs && (!kChecked || col + 1 < n)) {
        kiln::Vec<Out, 2> pair{{Out(acc[i][e]), Out(acc[i][e + 1])}};
        *reinterpret_cast<kiln::Vec<Out, 2>*>(out.ptr()) = pair;
      } else {
        *out = Out(acc[i][e]);
        if (!kChecked || col + 1 < n) *c[at + N(1)] = Out(acc[i][e + 1]);
      }
    }
  }
}

// The values into C through this warp's two shared tiles and TMA (kStoreByTma): for each
// 32-column chunk of the warp's 16 rows (chunk Q of accumulator I, then the next, ...),
// wait until the store issued from the same tile two chunks ago has read it, write the
// chunk's pairs, and store the box from one lane. The epilogue's values are computed
// kValueChunks chunks at a time (128 columns of 16-bit C), each group just before its
// chunks' stores: the values of the whole tile first left the erf GELU epilogue's bias
// loads issued late, each just before its use (ptxas's schedule within the consumers'
// registers), and cost 9.0-9.7% over the plain kernel at 8192^3 on the H200; groups of 4
// chunks 5.4-6.4%, of 2 6.3-7.2%, chunk by chunk 7.8-8.0% (the tanh form, whose arithmetic
// is little, lost 1-3 points chunk by chunk, and nothing in groups of 4).
constexpr int kOutChunks = kBN / kOutCols;  // an accumulator's chunks
constexpr int kValueChunks = kOutChunks < 4 ? kOutChunks : 4;
static_assert(kOutChunks % kValueChunks == 0, "whole groups of chunks");
template <bool kChecked, int I = 0, int Q = 0>
KILN_DEVICE KILN_FORCEINLINE void store_by_tma(Acc (&acc)[kWgTiles], const OutRing& ring,
                                               const kiln::TmaDescriptor& c_map, const C& c, int m,
                                               int n, M m0, N n0, int wg_thread, int consumer_warp,
                                               float alpha, float beta, const Epilogue& epilogue) {
  if constexpr (I < kWgTiles) {
    // Accumulator columns [Q * kOutCols, (Q + 1) * kOutCols) are elements [Q * kOutCols / 2,
    // (Q + 1) * kOutCols / 2) of each thread (4 of every 8 columns), rows 16 * warp on.
    constexpr int kE0 = Q * kOutCols / 2;
    if constexpr (Q % kValueChunks == 0) {
      tile_values<kChecked, I, I + 1, kE0, kE0 + kValueChunks * kOutCols / 2>(
          acc, c, m, n, m0, n0, wg_thread, alpha, beta, epilogue);
    }
    const int lane = wg_thread % kiln::warp_size;
    const int warp = wg_thread / kiln::warp_size;  // its rows: 16 * warp of each accumulator
    const OutTile tile = ring[kiln::RING_STAGE(2 * consumer_warp + (Q & 1))];
    if (lane == 0) kiln::tma_store_wait<1>();
    kiln::sync_warp();
#pragma unroll
    for (int j = 0; j < kOutCols / 2; j += 2) {
      const int e = kE0 + j;
      const auto at = Acc::coords(wg_thread, e);
      const M row(kiln::get<M>(at).get() - 16 * warp);
      const N col(kiln::get<N>(at).get() - Q * kOutCols);
      kiln::Vec<Out, 2> pair{{Out(acc[I][e]), Out(acc[I][e + 1])}};
      *reinterpret_cast<kiln::Vec<Out, 2>*>(tile[row + col].ptr()) = pair;
    }
    kiln::fence_async_shared();
    kiln::sync_warp();
    if (lane == 0) {
      kiln::tma_store<C>(c_map, m0 + M(64 * I + 16 * warp) + n0 + N(Q * kOutCols), tile);
      kiln::tma_store_commit();
    }
    constexpr bool kLast = Q + 1 == kOutChunks;
    store_by_tma<kChecked, kLast ? I + 1 : I, kLast ? 0 : Q + 1>(
        acc, ring, c_map, c, m, n, m0, n0, wg_thread, consumer_warp, alpha, beta, epilogue);
  }
}

}  // namespace gemm

extern "C" __global__ void KILN_LAUNCH_BOUNDS(gemm::kThreads, 1)
    KILN_KERNEL_NAME(const __grid_constant__ kiln::TmaDescriptor a_map,
                     const __grid_constant__ kiln::TmaDescriptor b_map,
                     const __grid_constant__ kiln::TmaDescriptor c_map, gemm::Out* c_data, int m,
                     int n, int k, float alpha, float beta, int c_by_tma,
                     gemm::EpilogueArgs epilogue_args) {
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
  const SplitBarriers split_bars = smem.take<SplitBarriers, 8>();
  const SplitSlots slots = smem.take<SplitSlots, 16>();
  const OutRing out_ring = smem.take<OutRing, 1024>();  // (its 64-byte swizzle's period: 512)

  const int warp_group = kiln::thread_index() / kiln::warp_group_threads;
  const int wg_thread = kiln::thread_index() % kiln::warp_group_threads;
  if (kiln::thread_index() == 0) {
    bars.init(1, kConsumers * kClusterM);  // the consumers that read each stage
    if constexpr (kSplitK > 1) {
      for (int w = 0; w < kConsumers; ++w) {
        split_bars.full(w).init((kSplitK - 1) * kiln::warp_group_threads);
        split_bars.free(w).init(kiln::warp_group_threads);
      }
    }
    kiln::fence_barrier_init();
  }
  if (warp_group == kConsumers && wg_thread == 0) {
    kiln::tma_prefetch(a_map);
    kiln::tma_prefetch(b_map);
  }
  if constexpr (kClusterBlocks > 1) {
    kiln::cluster_sync();  // every block's barriers are set before any remote arrival
  } else {
    kiln::sync_threads();
  }

  // A cluster takes a unit of work at a time: a tile (each block with a part of K, split
  // K), or kClusterM tiles on adjacent block rows (block r the r-th row).
  const int tiles_m = (m + kBM - 1) / kBM;
  const int tiles_n = (n + kBN - 1) / kBN;
  const int units_m = (tiles_m + kClusterM - 1) / kClusterM;
  const int tiles = units_m * tiles_n;
  const int rank = kClusterBlocks > 1 ? int(kiln::cluster_block_rank()) : 0;
  const int first_tile = kiln::block_index() / kClusterBlocks;
  const int tile_step = kiln::grid_size() / kClusterBlocks;
  // This block takes K tiles [kt0, kt1).
  const int split_rank = kSplitK > 1 ? rank : 0;
  const int all_k_tiles = (k + kBK - 1) / kBK;
  const int kt0 = int((long long)all_k_tiles * split_rank / kSplitK);
  const int kt1 = int((long long)all_k_tiles * (split_rank + 1) / kSplitK);

  if (warp_group == kConsumers) {
    // The producer.
    kiln::warp_group_registers_decrease<40>();
    if (wg_thread != 0) return;
    int fill = 0;
    for (int t = first_tile; t < tiles; t += tile_step) {
      int tm, tn;
      tile_coords(t, units_m, tiles_n, tm, tn);
      tm = tm * kClusterM + (kClusterM > 1 ? rank : 0);
      for (int kt = kt0; kt < kt1; ++kt, ++fill) {
        const kiln::RING_STAGE s(fill);
        bars.empty(s).wait_for(Bars::reuse_parity(fill));
        bars.full(s).arrive_expect_tx(kStageBytes);
        load_stage<A, ATiles, 1>(ring_a[s], a_map, M(tm * kBM), K(kt * kBK), bars.full(s), 0);
        load_stage<B, BTiles, kClusterM>(ring_b[s], b_map, N(tn * kBN), K(kt * kBK), bars.full(s),
                                         kClusterM > 1 ? rank : 0);
      }
    }
    if constexpr (kClusterM > 1) {
      // Stay until both blocks' consumers have released every stage (their arrivals on
      // this block's barriers, and their reads of what this block copied, are done).
      for (int j = 0; j < kStages; ++j, ++fill) {
        bars.empty(kiln::RING_STAGE(fill)).wait_for(Bars::reuse_parity(fill));
      }
    }
    return;
  }

  // A consumer.
  // The registers the producer gave away: 128 x (40 + kConsumers x R) fits the SM's 65536.
  kiln::warp_group_registers_increase<kConsumers == 1 ? 240 : kConsumers == 2 ? 232 : 152>();
  const Epilogue& epilogue = *reinterpret_cast<const Epilogue*>(&epilogue_args);
  // Element pairs (even columns) are stored as one where they are aligned in C: n even and
  // C's address a multiple of a pair's size (a C starting mid-pair stores elements alone).
  const bool pairs =
      (n & 1) == 0 && reinterpret_cast<unsigned long long>(c_data) % (2 * sizeof(Out)) == 0;
  const M wm(warp_group * kWgRows);
  int fill = 0;
  int round = 0;  // tiles this block has worked on
  for (int t = first_tile; t < tiles; t += tile_step, ++round) {
    int tm, tn;
    tile_coords(t, units_m, tiles_n, tm, tn);
    tm = tm * kClusterM + (kClusterM > 1 ? rank : 0);  // past the last block row: stores none
    Acc acc[kWgTiles] = {};
    for (int kt = kt0; kt < kt1; ++kt, ++fill) {
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
      if (kt > kt0 && wg_thread == 0) release(bars.empty(kiln::RING_STAGE(fill - 1)));
    }
    kiln::wgmma_wait_group<0>();
    if (kt1 > kt0 && wg_thread == 0) release(bars.empty(kiln::RING_STAGE(fill - 1)));

    if constexpr (kSplitK > 1) {
      float* slot = slots.data + warp_group * kSlotFloats;
      if (rank != 0) {
        // Leave this part's sums for block 0 once it has read the previous tile's.
        split_bars.free(warp_group).wait_for(kiln::BarrierRing<1>::reuse_parity(round));
#pragma unroll
        for (int i = 0; i < kWgTiles; ++i) {
#pragma unroll
          for (int e = 0; e < Acc::size; ++e) {
            slot[(i * Acc::size + e) * kiln::warp_group_threads + wg_thread] = acc[i][e];
          }
        }
        split_bars.full(warp_group).arrive_cluster(0);
        continue;
      }
      split_bars.full(warp_group).wait_for_cluster(round & 1);
      for (int r = 1; r < kSplitK; ++r) {
        const float* theirs = kiln::cluster_shared(slot, unsigned(r));
#pragma unroll
        for (int i = 0; i < kWgTiles; ++i) {
#pragma unroll
          for (int e = 0; e < Acc::size; ++e) {
            acc[i][e] += theirs[(i * Acc::size + e) * kiln::warp_group_threads + wg_thread];
          }
        }
      }
      for (int r = 1; r < kSplitK; ++r) split_bars.free(warp_group).arrive_cluster(unsigned(r));
    }

    // Epilogue, without bounds checks where the tile lies wholly inside C.
    const M m0(tm * kBM);
    const N n0(tn * kBN);
    const bool inside = m0.get() + kBM <= m && n0.get() + kBN <= n;
    if (kStoreByTma && c_by_tma) {
      // The values in groups of chunks, each group just before its stores.
      const int warp =
          warp_group * (kiln::warp_group_threads / kiln::warp_size) + wg_thread / kiln::warp_size;
      if (inside) {
        store_by_tma<false>(acc, out_ring, c_map, c, m, n, m0 + wm, n0, wg_thread, warp, alpha,
                            beta, epilogue);
      } else {
        store_by_tma<true>(acc, out_ring, c_map, c, m, n, m0 + wm, n0, wg_thread, warp, alpha, beta,
                           epilogue);
      }
      continue;
    }
    if (inside) {
      tile_values<false>(acc, c, m, n, m0 + wm, n0, wg_thread, alpha, beta, epilogue);
    } else {
      tile_values<true>(acc, c, m, n, m0 + wm, n0, wg_thread, alpha, beta, epilogue);
    }
    if (inside) {
      store_direct<false>(acc, c, m, n, m0 + wm, n0, wg_thread, pairs);
    } else {
      store_direct<true>(acc, c, m, n, m0 + wm, n0, wg_thread, pairs);
    }
  }
  // The last stores' reads of the shared tiles are done before the block's memory goes.
  if (kStoreByTma && c_by_tma && wg_thread % kiln::warp_size == 0) kiln::tma_store_wait<0>();
  if constexpr (kSplitK > 1) {
    // Block 0 reads this block's shared memory: stay until it has read the last sums.
    if (rank != 0) split_bars.free(warp_group).wait_for(kiln::BarrierRing<1>::reuse_parity(round));
  }
}
